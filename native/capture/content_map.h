/*
 * The contents one call has stored, by digest, exactly: found again when a later batch of
 * the call has the same page, and added to page_digest, in digest order, when the call
 * ends (store.c). 40 bytes per content and at most 16 per page of the call (12 MiB for a
 * 1 GiB process whose pages all differ), freed when the call ends.
 */
#ifndef TTDCAP_CONTENT_MAP_H
#define TTDCAP_CONTENT_MAP_H

#include <stdint.h>

#include "page.h" /* PAGE_DIGEST_SIZE */

struct content_entry {
	uint8_t digest[PAGE_DIGEST_SIZE];
	int64_t id;
};

struct content_map {
	struct content_entry *entries; /* in the order added */
	uint32_t *slots;	       /* index in entries + 1, by digest; 0: free */
	uint64_t mask;		       /* slot count - 1, a power of two */
	uint64_t n, cap;
};

/* For a call of `npages` pages; 0, or -1 without memory. */
int content_map_init(struct content_map *m, uint64_t npages);
/* The id of a content with this digest: 1 and *id, or 0 when there is none. */
int content_map_find(const struct content_map *m, const uint8_t *digest, int64_t *id);
/* Add a content not in the map; 0, or -1 when the call has more contents than pages. */
int content_map_add(struct content_map *m, const uint8_t *digest, int64_t id);
/* The indexes in entries of the n contents, by digest, or NULL without memory. Use the map
 * for nothing else after it: the order takes the place of its slots. */
const uint32_t *content_map_sort(struct content_map *m);
void content_map_fini(struct content_map *m);

#endif
