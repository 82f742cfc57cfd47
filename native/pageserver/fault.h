/*
 * The fault path: serving the process's page faults (and fills asked for) from
 * the recording, through its userfaultfd.
 *
 * Every fill is a verified range of recorded pages (verify.h) installed with
 * the tracker's copy mode, so a fill never counts as a write (wp-async); a page
 * the process dropped since the tick, or memory it grew, gets zeros. Events of
 * the userfaultfd (remove, remap) update the regions (region.h).
 *
 * A fault is installed without waking its waiters (UFFDIO_COPY_MODE_DONTWAKE),
 * its serve time is taken, then they are woken: on one CPU the woken process
 * runs inside the waking call. After a sequential fault the next windows are
 * prepared ahead on the verifier's helper thread while the process reads this
 * one. The userfaultfd is read again after each fault before the serve loop
 * polls (the next fault is usually there). A page is served at the tick of the
 * page map; pager_set_tick() moves it.
 */
#ifndef TTD_FAULT_H
#define TTD_FAULT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "ranges.h"
#include "region.h"
#include "store.h"
#include "target.h"
#include "tracker.h"
#include "verify.h"

struct fault_stats {
	uint64_t faults, pages_served, zero_pages, bytes;
	uint32_t *lat_ns;	/* serve time of each fault */
	size_t nr_lat, cap_lat;
};

struct pager {
	struct target *target;
	struct regions regions;
	struct tracker *tracker;
	struct store *store;
	struct verifier *verifier;
	uint64_t tick;
	uint32_t fault_around_pages;	/* the window of a sequential fault */
	int can_poison;			/* UFFDIO_POISON available */
	uint8_t *buf;			/* staging for UFFDIO_COPY, MAX_FILL_PAGES pages */
	uint64_t last_fill_end;		/* where the previous fill ended: sequential access */
	uint64_t serving_lo, serving_hi;	/* the range being filled, for pager_poison_serving() */
	uint64_t *retry;		/* faults to serve again after the next read of the uffd */
	size_t nr_retry, cap_retry;
	struct fault_stats stats;
	int failed;			/* after an error: every fault is poisoned, nothing filled */
	struct bench *bench;		/* ttd-pageserver-bench's modes (bench.c), or NULL */
};

/* Regions from the recorded mappings, the staging buffer. */
int pager_init(struct pager *p, const struct stub_map *maps, uint32_t nr_maps, struct err *e);

/* Read the userfaultfd's messages and serve them, and the faults waiting for a retry.
 * An error leaves the faulting access waiting (see pager_poison_serving()). */
int pager_handle_uffd(struct pager *p, struct err *e);

/* Fill the unfilled pages of [lo, hi) (page-aligned) inside registered regions, as
 * faults would. ERR_GONE when the process is gone. */
int pager_fill(struct pager *p, uint64_t lo, uint64_t hi, struct err *e);

/* Read up to len bytes of the process at target_addr through /proc/PID/mem: a
 * page not filled yet fails there (EIO) instead of blocking on us, so it is filled
 * first. The bytes read; a fill that failed sets e (ERR_GONE: the process ended). */
size_t pager_read_target(struct pager *p, void *dst, uint64_t target_addr, size_t len,
			 struct err *e);

/*
 * Make the range being filled fail for whoever waits on it (UFFDIO_POISON: the
 * process gets SIGBUS, process_vm_readv EFAULT), and every later fault too
 * (p->failed). Without this, once the server is gone the kernel lets a waiting
 * access retry as plain anonymous memory, which reads zeros.
 */
void pager_poison_serving(struct pager *p);

/*
 * Serve the pages of tick from now on (moving the process between ticks, issue
 * 10). The pages whose content differs between the tick served so far and this
 * one are added to `differ` as target ranges (where the process has them now,
 * sorted and merged) and forgotten as filled: once the caller has dropped them
 * from the process (the process still holds the old contents), their next
 * access faults and gets the new ones. Pages the process wrote, dropped or
 * added are the caller's business. The recorded addresses that differ, without
 * moving: pagemap_differ() (pagemap.h).
 */
int pager_set_tick(struct pager *p, uint64_t tick, struct range_list *differ, struct err *e);

/* struct tracker_env's read_recorded: one verified recorded page. */
int pager_read_recorded(void *ctx, uint64_t rec_page, uint8_t *dst, struct err *e);

/* UFFDIO_COPY of [lo, hi) from p->buf: the bytes installed, 0 when the first page was
 * there already (EEXIST, benign), or one of these; -1 with the error otherwise. */
#define COPY_GONE (-2)		/* the process is gone */
#define COPY_RETRY (-3)		/* an event is pending: read it first, then retry */
#define COPY_UNREGISTERED (-4)	/* no registered mapping there any more */
long pager_copy(struct pager *p, uint64_t lo, uint64_t hi, uint64_t mode, struct err *e);
int pager_wake(struct pager *p, uint64_t lo, uint64_t len, struct err *e);

#endif
