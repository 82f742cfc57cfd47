/*
 * The benchmark-only ways of serving a process (bench/lazy_fill.py compares them
 * with the lazy fill): mode "eager" fills everything before READY; mode
 * "workaround" serves each fault as the known soft-dirty workaround does.
 * Compiled into ttd-pageserver-bench only (-DTTD_BENCH); ttd-pageserver refuses
 * any mode but lazy.
 */
#ifndef TTD_BENCH_H
#define TTD_BENCH_H

#include <stdint.h>

#include "err.h"

struct pager;
struct region;

#ifdef TTD_BENCH
/* Set up the spec's mode (p->bench for "workaround"): 0, or -1 with the error. */
int bench_open(struct pager *p, uint32_t mode, struct err *e);

/* Mode workaround: serve the fault at page of r; the end of the fill, or -1. */
long bench_fault(struct pager *p, struct region *r, uint64_t page, struct err *e);

/* Before READY: mode eager fills every page now. */
int bench_before_ready(struct pager *p, uint32_t mode, struct err *e);

#else
#include "spec.h"

static inline int bench_open(struct pager *p, uint32_t mode, struct err *e)
{
	(void)p;
	if (mode == MODE_LAZY)
		return 0;
	return err_set(e, ERR_INTERNAL, "ttd-pageserver serves mode lazy only: the benchmark "
		       "modes are in ttd-pageserver-bench (make -C native)");
}

static inline int bench_before_ready(struct pager *p, uint32_t mode, struct err *e)
{
	(void)p, (void)mode, (void)e;
	return 0;
}
#endif

#endif
