/* tracker.h, wp-async: the kernel marks written pages; PAGEMAP_SCAN lists them. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/ioctl.h>

#define LOG_PREFIX "ttd-pageserver: wp-async: "
#include "log.h"
#include "page.h"
#include "tracker.h"
#include "uffd_compat.h"

#define SCAN_VEC 512

static int scan_error(struct tracker *t, const char *what, uint64_t lo, uint64_t hi, struct err *e)
{
	if (errno == ESRCH)
		return err_set(e, ERR_GONE, "%s of process %d: it has ended", what, t->env.target->pid);
	return err_set(e, ERR_INTERNAL, "%s of process %d at 0x%" PRIx64 "-0x%" PRIx64 ": %s", what,
		       t->env.target->pid, lo, hi, strerror(errno));
}

/* One PAGEMAP_SCAN walk over [lo, hi): every written range into out. */
static int scan_written(struct tracker *t, uint64_t lo, uint64_t hi, struct range_list *out,
			struct err *e)
{
	struct page_region vec[SCAN_VEC];
	struct pm_scan_arg arg = {
		.size = sizeof(arg), .start = lo, .end = hi, .vec = (uint64_t)vec, .vec_len = SCAN_VEC,
		/* PRESENT avoids the fast path that reports unpopulated pages as written;
		 * not PFNZERO: a read of a new mapping maps the zero page, no write */
		.category_mask = PAGE_IS_WRITTEN | PAGE_IS_PRESENT | PAGE_IS_PFNZERO,
		.category_inverted = PAGE_IS_PFNZERO,
		.return_mask = PAGE_IS_WRITTEN,
	};

	while (arg.start < arg.end) {
		long n = ioctl(t->env.target->pagemap_fd, PAGEMAP_SCAN, &arg);
		if (n < 0)
			return scan_error(t, "PAGEMAP_SCAN", lo, hi, e);
		for (long i = 0; i < n; i++)
			ranges_add(out, vec[i].start, vec[i].end);
		if (arg.walk_end <= arg.start)
			break;
		arg.start = arg.walk_end;
	}
	return 0;
}

/* Written pages everywhere but in ttd-stub's own image. */
static int wp_written(struct tracker *t, struct range_list *out, struct err *e)
{
	const struct target *tg = t->env.target;

	if (scan_written(t, 0, tg->image_lo, out, e) ||
	    scan_written(t, tg->image_hi, TASK_SIZE_MAX, out, e))
		return -1;
	return ranges_check(out, e);
}

/* Write-protect every page of every registered region again. */
static int wp_clear(struct tracker *t, struct err *e)
{
	struct regions *rs = t->env.regions;

	for (uint32_t i = 0; i < rs->n; i++) {
		struct region *r = &rs->r[i];
		struct pm_scan_arg arg = {
			/* no PM_SCAN_CHECK_WPASYNC: WP_ASYNC was checked at start, and a
			 * mapping the process made in place of a recorded one (not
			 * registered) must be skipped, not fail the request */
			.size = sizeof(arg), .flags = PM_SCAN_WP_MATCHING,
			.start = r->target_start, .end = r->target_end,
			.category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN,
		};
		if (ioctl(t->env.target->pagemap_fd, PAGEMAP_SCAN, &arg))
			return scan_error(t, "PAGEMAP_SCAN(PM_SCAN_WP_MATCHING)", r->target_start,
					  r->target_end, e);
	}
	return 0;
}

static int wp_nothing(struct tracker *t, struct region *r, uint64_t lo, uint64_t hi,
		      const uint8_t *src, struct err *e)
{
	(void)t, (void)r, (void)lo, (void)hi, (void)src, (void)e;
	return 0;
}

static int wp_no_drop(struct tracker *t, struct region *r, uint64_t page, struct err *e)
{
	(void)t, (void)r, (void)page, (void)e;
	return 0;
}

static void wp_stats(struct tracker *t, FILE *json)
{
	(void)t;
	fputs(", \"baseline_pages\": 0", json);
}

static const struct tracker_ops wp_ops = {
	.name = "wp-async",
	.copy_mode = UFFDIO_COPY_MODE_WP,
	.register_wp = 1,
	.on_fill = wp_nothing,
	.on_drop = wp_no_drop,
	.written = wp_written,
	.clear = wp_clear,
	.stats = wp_stats,
};

struct tracker *tracker_wp_new(const struct tracker_env *env)
{
	struct tracker *t = calloc(1, sizeof(*t));

	if (t) {
		t->ops = &wp_ops;
		t->env = *env;
	}
	return t;
}
