/*
 * The page store: where the recorded pages come from: a SQLite file
 * (store_sqlite.c: the recording itself, its page_version/page_content
 * tables, see docs/internals.md) or a PostgreSQL database (store_pg.c, through
 * libpq), chosen by store_open() from the location.
 *
 * A page's content at a tick is either stored (a content row: codec, data, and
 * the sha256 digest of the 4096 bytes) or zeros (never stored, or recorded as
 * zero then). A store names each stored content by a reference (store_ref, its
 * row id: equal references are equal contents, and different ones differ);
 * 0 means zeros.
 *
 *   store_open(location)            -> a store, or NULL with the error
 *   store_fetch(store, request)     -> the pages of [rec_lo, rec_hi) at a tick, decoded into
 *                                      the request's buffer, each with the digest it must
 *                                      have (checking it is verify.c's job): one range query
 *   store_map(store, tick, digests, emit) -> every page with content at the tick, with its
 *                                      reference (and digest and codec, when asked: a join,
 *                                      three times the work), in address order: the page
 *                                      map of a tick, in one query (pagemap.c)
 *   store_changes(store, a, b, emit) -> every page that has a version after the earlier of
 *                                      two ticks and up to the later, with its reference at
 *                                      each (a page that changed and changed back has equal
 *                                      ones): what moving between the ticks may change
 *   store_content(store, ref, ...)  -> one content by reference, decoded, with its digest
 *   store_data(store, ref, codec, dst) -> the same when the caller knows the codec and the
 *                                      digest (the page map's): the data column alone, the
 *                                      cheapest read of a page (SQLite: a kept blob handle);
 *                                      -1 when the store cannot, then store_content() does
 *                                      (and says what is wrong with the row, if anything)
 *   store_idle(store)               -> nothing asked for a while: release what a writer may
 *                                      wait for (SQLite: the read transaction)
 *   store_close(store)
 *
 * A store instance belongs to one thread; another thread opens its own with
 * store_open(store->location). A store never installs anything and never sees
 * the process: it reads.
 */
#ifndef TTD_STORE_H
#define TTD_STORE_H

#include <stdint.h>

#include "err.h"
#include "page.h"

typedef uint64_t store_ref;	/* a stored content; 0: zeros */

struct store_request {
	uint64_t rec_lo, rec_hi;	/* page-aligned, in the recorded process; at most MAX_FILL_PAGES */
	uint64_t tick;
	uint8_t *dst;			/* rec_hi - rec_lo bytes: a page with no content at the tick
					 * (never stored, or zero then) is zeroed */
	/* Called for each page with content once it is decoded at dst + offset. */
	void (*stored)(void *ctx, uint32_t offset, const uint8_t *digest);
	void *ctx;
	uint32_t nr_stored;		/* out: pages with content */
};

/* What a map knows of a page's content besides its reference, when asked for (store_map):
 * its digest and codec, so that reading the page needs its data alone (store_data). */
struct store_known {
	uint8_t digest[PAGE_DIGEST_SIZE];
	uint8_t codec;		/* enum page_codec (codec.h); CODEC_UNKNOWN: read the whole row */
	uint8_t has_check;
	uint8_t check[PAGE_CHECK_SIZE];	/* page_content.xxh3: XXH3-128 of the page then its digest */
};

/* One page of a map (store_map; known NULL unless asked for) or of the changes between
 * two ticks (store_changes): 0 to go on, -1 (with e set) to stop. */
typedef int (*store_map_fn)(void *ctx, uint64_t rec_addr, store_ref ref,
			    const struct store_known *known, struct err *e);
typedef int (*store_change_fn)(void *ctx, uint64_t rec_addr, store_ref ref_a, store_ref ref_b,
			       struct err *e);

struct store;

/* Every operation returns 0, or -1 with ERR_CORRUPT ("page 0x... at tick T is corrupt
 * (why)", or a malformed row) or ERR_INTERNAL (the store cannot be read). */
struct store_ops {
	int (*fetch)(struct store *s, struct store_request *req, struct err *e);
	int (*map)(struct store *s, uint64_t tick, int digests, store_map_fn emit, void *ctx,
		   struct err *e);
	int (*changes)(struct store *s, uint64_t tick_a, uint64_t tick_b, store_change_fn emit,
		       void *ctx, struct err *e);
	/* ref's bytes into dst (PAGE_SIZE) and its digest; rec_addr and tick name the
	 * page in an error */
	int (*content)(struct store *s, store_ref ref, uint64_t rec_addr, uint64_t tick,
		       uint8_t *dst, uint8_t digest[PAGE_DIGEST_SIZE], struct err *e);
	/* ref's data decoded with codec into dst (PAGE_SIZE): 0, or -1 (nothing said: ask
	 * content()); NULL in a store without a cheaper way */
	int (*data)(struct store *s, store_ref ref, int codec, uint8_t *dst);
	void (*idle)(struct store *s);
	void (*close)(struct store *s);
};

struct store {
	const struct store_ops *ops;
	const char *location;	/* what store_open() was given */
	int holding;	/* something is held that idle() releases (the caller polls for idleness) */
};

struct store *store_open(const char *location, struct err *e);
struct store *store_sqlite_open(const char *path, struct err *e);
/* A libpq connection URI ("postgresql://..."): store_pg.c */
struct store *store_pg_open(const char *uri, struct err *e);

static inline int store_fetch(struct store *s, struct store_request *req, struct err *e)
{
	return s->ops->fetch(s, req, e);
}

static inline int store_map(struct store *s, uint64_t tick, int digests, store_map_fn emit,
			    void *ctx, struct err *e)
{
	return s->ops->map(s, tick, digests, emit, ctx, e);
}

static inline int store_changes(struct store *s, uint64_t tick_a, uint64_t tick_b,
				store_change_fn emit, void *ctx, struct err *e)
{
	return s->ops->changes(s, tick_a, tick_b, emit, ctx, e);
}

static inline int store_content(struct store *s, store_ref ref, uint64_t rec_addr, uint64_t tick,
				uint8_t *dst, uint8_t digest[PAGE_DIGEST_SIZE], struct err *e)
{
	return s->ops->content(s, ref, rec_addr, tick, dst, digest, e);
}

static inline int store_has_data(const struct store *s)
{
	return s->ops->data != NULL;
}

static inline int store_data(struct store *s, store_ref ref, int codec, uint8_t *dst)
{
	return s->ops->data ? s->ops->data(s, ref, codec, dst) : -1;
}

static inline void store_idle(struct store *s)
{
	s->ops->idle(s);
}

static inline void store_close(struct store *s)
{
	if (s)
		s->ops->close(s);
}

#endif
