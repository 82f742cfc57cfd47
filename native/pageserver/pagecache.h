/*
 * The verified-page cache: pages whose sha256 the page server has checked, kept
 * in a file that every page server given the same directory maps, so the
 * processes of one recording (one call after another, a sweep over ticks)
 * verify each page once, not once per process.
 *
 * Keyed by the page's digest and the recording (its file: device, inode, birth
 * time): an entry is bytes whose sha256 was checked to be its digest when they
 * were put in, i.e. what a page recorded with that digest holds. A hit is
 * installed without reading the recording, decoding or hashing again; a miss
 * goes the usual way (store, zstd, sha256) and is put in after. Another file
 * (a copy, a new recording) starts cold, so damage to a copy's stored pages is
 * found as before; damage done in place to a recording whose pages are cached
 * shows once they are read from it again.
 *
 * Where: TTD_PAGE_CACHE=DIR, or by default $XDG_CACHE_HOME/ttd, else
 * $HOME/.cache/ttd (created 0700); TTD_PAGE_CACHE=off: none. DIR must be a
 * directory of ours that nobody else can write; the file DIR/pages.v1 is created
 * 0600 and must be ours, not a link, and of our layout; otherwise there is no
 * cache (a line with TTD_DEBUG=1), never an error. Size: TTD_PAGE_CACHE_MIB
 * (default 512) when the file is created; a sparse file, filled as pages are
 * verified; delete it to start again.
 */
#ifndef TTD_PAGECACHE_H
#define TTD_PAGECACHE_H

#include <stdint.h>

#include "page.h"

struct pagecache;

/* The cache for the recording at path, or NULL (turned off, or not usable). */
struct pagecache *pagecache_open(const char *recording_path);

/* The page with this digest into dst (PAGE_SIZE bytes): 1, or 0 when not there. */
int pagecache_get(struct pagecache *c, const uint8_t digest[PAGE_DIGEST_SIZE], uint8_t *dst);

/* Keep page, whose sha256 is digest (checked by the caller). Best effort. */
void pagecache_put(struct pagecache *c, const uint8_t digest[PAGE_DIGEST_SIZE],
		   const uint8_t *page);

#endif
