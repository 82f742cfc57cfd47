/*
 * A page's check, page_content.xxh3 (snapshotdb/pages.py, check_of): XXH3-128 of its
 * 4096 bytes then its 32-byte sha256 digest, in XXH3's canonical (big-endian) form.
 *
 * The page server checks a page read from a recording against it before installing it,
 * in place of sha256: 0.22 us a page against 2.05 us for sha256 with the CPU's SHA
 * instructions (verify.c's head). It is as strong for what the check is for, finding
 * a page or a digest damaged on disk or in transit: whoever writes a recording can
 * write any digest and any check, so no hash read from the recording stops a forged one.
 * The digest stays the identity of a content everywhere (the unique index, the shared
 * page cache's key, ttd copy). A page whose check does not match is hashed with sha256,
 * which decides and says why; a recording without checks is checked by sha256 alone.
 * Written by the recorder (native/capture, snapshotdb/capture): header-only
 * (XXH_INLINE_ALL), Debian's libxxhash-dev.
 */
#ifndef TTD_PAGE_CHECK_H
#define TTD_PAGE_CHECK_H

#include <stdint.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "page.h"

static inline void page_check(const uint8_t *page, const uint8_t *digest,
			      uint8_t out[PAGE_CHECK_SIZE])
{
	XXH3_state_t st;
	XXH128_canonical_t c;

	XXH3_128bits_reset(&st);
	XXH3_128bits_update(&st, page, PAGE_SIZE);
	XXH3_128bits_update(&st, digest, PAGE_DIGEST_SIZE);
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(&st));
	memcpy(out, c.digest, PAGE_CHECK_SIZE);
}

#endif
