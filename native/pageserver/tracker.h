/*
 * How written pages are found: one interface, two trackers.
 *
 * wp-async (tracker_wp.c): fills are installed write-protected
 *   (UFFDIO_COPY_MODE_WP with WP_ASYNC), the kernel marks a page written on the
 *   first write, and PAGEMAP_SCAN lists them: exact (Linux 6.7+).
 * diff (tracker_diff.c): for kernels without WP_ASYNC or PAGEMAP_SCAN. Fills are
 *   plain UFFDIO_COPY; a copy of each filled page is kept (the baseline), and the
 *   written set is every filled page whose bytes now differ from it, plus
 *   non-zero pages outside the recorded mappings (new memory). A write that
 *   leaves the bytes as they were is not seen.
 */
#ifndef TTD_TRACKER_H
#define TTD_TRACKER_H

#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "ranges.h"
#include "region.h"
#include "target.h"

/* What a tracker sees of the page server. */
struct tracker_env {
	struct target *target;
	struct regions *regions;
	/* The recorded bytes of the page at rec_page (verified), for a baseline. */
	int (*read_recorded)(void *ctx, uint64_t rec_page, uint8_t *dst, struct err *e);
	void *ctx;
};

struct tracker;

struct tracker_ops {
	const char *name;	/* "wp-async", "diff": in READY and the statistics */
	uint64_t copy_mode;	/* the UFFDIO_COPY mode of every fill */
	int register_wp;	/* the stub registers MISSING|WP, not MISSING only */
	/* [lo, hi) of r (target addresses) was just filled from src */
	int (*on_fill)(struct tracker *t, struct region *r, uint64_t lo, uint64_t hi,
		       const uint8_t *src, struct err *e);
	/* the page of r the process dropped (MADV_DONTNEED) faults again: it gets zeros */
	int (*on_drop)(struct tracker *t, struct region *r, uint64_t page, struct err *e);
	/* the pages written since start or the last clear, sorted and merged;
	 * ERR_GONE when the process ended under the scan */
	int (*written)(struct tracker *t, struct range_list *out, struct err *e);
	/* forget the writes so far */
	int (*clear)(struct tracker *t, struct err *e);
	/* its own statistics: `, "key": value` pairs */
	void (*stats)(struct tracker *t, FILE *json);
};

struct tracker {
	const struct tracker_ops *ops;
	struct tracker_env env;
};

/* NULL when out of memory. */
struct tracker *tracker_wp_new(const struct tracker_env *env);
struct tracker *tracker_diff_new(const struct tracker_env *env);

#endif
