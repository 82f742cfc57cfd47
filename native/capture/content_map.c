/* content_map.h: the contents one call has stored, by digest, exactly. */
#include <stdlib.h>
#include <string.h>

#include "content_map.h"

int content_map_init(struct content_map *m, uint64_t npages)
{
	uint64_t slots = 16;

	while (slots < 2 * npages) /* at most half full: short probes */
		slots *= 2;
	*m = (struct content_map){ .mask = slots - 1, .cap = npages };
	if (npages >= UINT32_MAX)
		return -1;
	m->slots = calloc(slots, sizeof(*m->slots));
	m->entries = malloc((npages ? npages : 1) * sizeof(*m->entries));
	return m->slots && m->entries ? 0 : -1;
}

/* sha256 spreads a digest's bits evenly: its first 8 bytes are the hash. */
static uint64_t first_slot(const struct content_map *m, const uint8_t *digest)
{
	uint64_t h;

	memcpy(&h, digest, sizeof(h));
	return h & m->mask;
}

int content_map_find(const struct content_map *m, const uint8_t *digest, int64_t *id)
{
	for (uint64_t s = first_slot(m, digest); m->slots[s]; s = (s + 1) & m->mask) {
		const struct content_entry *e = &m->entries[m->slots[s] - 1];

		if (memcmp(e->digest, digest, PAGE_DIGEST_SIZE) == 0) {
			*id = e->id;
			return 1;
		}
	}
	return 0;
}

int content_map_add(struct content_map *m, const uint8_t *digest, int64_t id)
{
	uint64_t s = first_slot(m, digest);

	if (m->n >= m->cap)
		return -1;
	while (m->slots[s])
		s = (s + 1) & m->mask;
	memcpy(m->entries[m->n].digest, digest, PAGE_DIGEST_SIZE);
	m->entries[m->n].id = id;
	m->slots[s] = (uint32_t)++m->n;
	return 0;
}

#define BUCKETS 65536 /* by a digest's first two bytes: sha256 fills them evenly */

static uint32_t bucket_of(const struct content_entry *e)
{
	return (uint32_t)e->digest[0] << 8 | e->digest[1];
}

/* Sort order[lo, hi) (indexes in entries) by digest: a few entries share a bucket. */
static void insertion_sort(const struct content_entry *entries, uint32_t *order, uint64_t lo,
			   uint64_t hi)
{
	for (uint64_t i = lo + 1; i < hi; i++) {
		uint32_t x = order[i];
		uint64_t j = i;

		for (; j > lo && memcmp(entries[order[j - 1]].digest, entries[x].digest,
					PAGE_DIGEST_SIZE) > 0; j--)
			order[j] = order[j - 1];
		order[j] = x;
	}
}

const uint32_t *content_map_sort(struct content_map *m)
{
	uint64_t *start = calloc(BUCKETS + 1, sizeof(*start));
	uint32_t *order = m->slots; /* at least twice n of them; the map finds nothing after */

	if (!start)
		return NULL;
	for (uint64_t i = 0; i < m->n; i++)
		start[bucket_of(&m->entries[i]) + 1]++;
	for (uint32_t b = 0; b < BUCKETS; b++)
		start[b + 1] += start[b];
	for (uint64_t i = 0; i < m->n; i++) /* start[b] walks to where bucket b + 1 begins */
		order[start[bucket_of(&m->entries[i])]++] = (uint32_t)i;
	for (uint32_t b = 0; b < BUCKETS; b++)
		insertion_sort(m->entries, order, b ? start[b - 1] : 0, start[b]);
	free(start);
	m->mask = 0; /* a map of one slot, never read again */
	return order;
}

void content_map_fini(struct content_map *m)
{
	free(m->slots);
	free(m->entries);
	*m = (struct content_map){ 0 };
}
