/*
 * Page verification: every page the store hands out is hashed (sha256) and
 * compared with its recorded digest before anything installs it.
 * fetch_verified() is the one way the page server reads recorded pages.
 */
#ifndef TTD_VERIFY_H
#define TTD_VERIFY_H

#include <stdint.h>

#include "err.h"
#include "store.h"

struct verifier;

/* A verifier with its helper thread (on failure to start one: hashing on one core).
 * NULL when out of memory. */
struct verifier *verifier_start(void);

/*
 * The contents of [rec_lo, rec_hi) (page-aligned, at most MAX_FILL_PAGES) at tick
 * into dst, every stored page verified; pages with no content are zero and counted
 * in *nr_zero. -1 with ERR_CORRUPT ("page 0x... at tick T is corrupt (why)") or the
 * store's error.
 */
int fetch_verified(struct verifier *v, struct store *s, uint64_t tick, uint64_t rec_lo,
		   uint64_t rec_hi, uint8_t *dst, uint32_t *nr_zero, struct err *e);

/* Pages hashed by the helper thread so far (statistics). */
uint64_t verifier_helper_pages(struct verifier *v);

#endif
