/*
 * The digests of the contents one call has stored, as a Bloom filter: "surely not seen"
 * or "maybe seen" (then the page_content index says). 16 bits and 3 probes per page of
 * the call: a new content is taken for a seen one (and looked up in vain) 0.5% of the
 * time; 512 KiB for a 1 GiB process. The probes are bits of the digest itself, which
 * sha256 spreads evenly.
 */
#ifndef TTDCAP_DIGEST_FILTER_H
#define TTDCAP_DIGEST_FILTER_H

#include <stdint.h>

struct digest_filter {
	uint64_t *bits;
	uint64_t mask; /* bit count - 1, a power of two */
};

/* For a call of `npages` pages; 0, or -1 without memory. */
int digest_filter_init(struct digest_filter *f, uint64_t npages);
void digest_filter_add(struct digest_filter *f, const uint8_t *digest);
int digest_filter_maybe(const struct digest_filter *f, const uint8_t *digest);
void digest_filter_fini(struct digest_filter *f);

#endif
