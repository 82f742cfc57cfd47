/*
 * Page verification: every page the store hands out is hashed (sha256) and
 * compared with its recorded digest before anything installs it.
 * fetch_verified() is the one way the page server reads recorded pages.
 *
 * The verifier works on two cores: a helper thread loads the page map of the
 * serving tick (pagemap.h) in the background once the process is built, and
 * prepares pages (fetched, decoded and verified) ahead of the faults that will
 * need them (verifier_readahead) or beside the thread serving a large fill.
 */
#ifndef TTD_VERIFY_H
#define TTD_VERIFY_H

#include <stdint.h>

#include "err.h"
#include "pagemap.h"
#include "store.h"

struct verifier;

/* A verifier with its helper thread, idle (on failure to start one: everything on the
 * calling thread). NULL when out of memory. */
struct verifier *verifier_start(void);

/* Serve pages of tick from location: the helper opens its own store there and loads
 * the page map; until it has, pages come from range queries. */
void verifier_open(struct verifier *v, const char *location, uint64_t tick);

/* Wait for the page map verifier_open() asked for (its load is one query): 1 when it
 * is there, 0 when pages come from range queries. */
int verifier_wait_map(struct verifier *v);

/*
 * The contents of [rec_lo, rec_hi) (page-aligned, at most MAX_FILL_PAGES) at tick
 * into dst, every stored page verified; pages with no content are zero and counted
 * in *nr_zero. -1 with ERR_CORRUPT ("page 0x... at tick T is corrupt (why)") or the
 * store's error. s is the calling thread's store.
 */
int fetch_verified(struct verifier *v, struct store *s, uint64_t tick, uint64_t rec_lo,
		   uint64_t rec_hi, uint8_t *dst, uint32_t *nr_zero, struct err *e);

/*
 * Where the pages of [rec_lo, rec_hi) at tick lie verified already, side by side in
 * the helper's slots: held for the caller (the helper leaves them) until
 * verifier_release(). NULL, with nothing held, unless every page is prepared with
 * content (not zeros) and their slots do not wrap around: fetch_verified() then.
 * The serving thread's way to install a prepared window without copying it first.
 */
const uint8_t *verifier_take_prepared(struct verifier *v, uint64_t tick, uint64_t rec_lo,
				      uint64_t rec_hi);
void verifier_release(struct verifier *v, uint64_t rec_lo, uint64_t rec_hi);

/* Prepare the pages of [rec_lo, rec_hi) now, on the helper (best effort: a later
 * request replaces it). */
void verifier_readahead(struct verifier *v, uint64_t rec_lo, uint64_t rec_hi);

/*
 * Serve tick from now on (waits for the page map to be loaded): every page whose
 * content differs between the old tick and this one is passed to differ, ascending.
 * Pages prepared for the old tick are dropped. s is the calling thread's store.
 */
int verifier_set_tick(struct verifier *v, struct store *s, uint64_t tick,
		      pagemap_differ_fn differ, void *ctx, struct err *e);

/* Wait (at most 5 s) until the pages verified so far are in the verified-page cache
 * (pagecache.h; the helper puts them in when it has nothing else to do). */
void verifier_drain(struct verifier *v);

/* Pages verified by the helper thread so far (statistics). */
uint64_t verifier_helper_pages(struct verifier *v);

#endif
