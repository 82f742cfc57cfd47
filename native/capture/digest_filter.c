/* digest_filter.h: a Bloom filter of digests. */
#include <stdlib.h>
#include <string.h>

#include "digest_filter.h"

#define BITS_PER_PAGE 16
#define PROBES 3 /* each the next 8 bytes of the digest */

int digest_filter_init(struct digest_filter *f, uint64_t npages)
{
	uint64_t nbits = 1 << 12;

	while (nbits < npages * BITS_PER_PAGE)
		nbits <<= 1;
	f->mask = nbits - 1;
	f->bits = calloc(nbits / 64, sizeof(uint64_t));
	return f->bits ? 0 : -1;
}

static uint64_t probe(const struct digest_filter *f, const uint8_t *digest, int k)
{
	uint64_t h;

	memcpy(&h, digest + 8 * k, sizeof(h));
	return h & f->mask;
}

void digest_filter_add(struct digest_filter *f, const uint8_t *digest)
{
	for (int k = 0; k < PROBES; k++) {
		uint64_t bit = probe(f, digest, k);

		f->bits[bit / 64] |= 1ULL << (bit % 64);
	}
}

int digest_filter_maybe(const struct digest_filter *f, const uint8_t *digest)
{
	for (int k = 0; k < PROBES; k++) {
		uint64_t bit = probe(f, digest, k);

		if (!(f->bits[bit / 64] & (1ULL << (bit % 64))))
			return 0;
	}
	return 1;
}

void digest_filter_fini(struct digest_filter *f)
{
	free(f->bits);
	f->bits = NULL;
}
