/*
 * The rematerialized process as the page server holds it: started, stopped and
 * handed out by stub.c, served by fault.c, watched by the serve loop (main.c).
 */
#ifndef TTD_TARGET_H
#define TTD_TARGET_H

#include <stdint.h>
#include <sys/types.h>

struct target {
	pid_t pid;		/* 0 once reaped */
	int pidfd;		/* readable when it has exited */
	int uffd;		/* its userfaultfd */
	int listener;		/* the sandbox's seccomp notifications, or -1 */
	int pagemap_fd;		/* /proc/PID/pagemap */
	int mem_fd;		/* /proc/PID/mem: reads that fail on missing pages, never block */
	int mem_rw_fd;		/* /proc/PID/mem for writes (move.c), opened when first needed */
	uint64_t image_lo, image_hi;	/* ttd-stub's image, page-aligned */
	uint64_t apply_fn;	/* ttd_stub_apply() in the image (layout.h), or 0 */
	uint64_t apply_args;	/* its struct stub_apply, or 0 */
	uint32_t nr_threads;
	pid_t *tids;		/* each thread's id, in the spec's order ([0] == pid) */
	int same_tid;		/* every thread got its recorded id */
	int xstate_restored;	/* the whole XSAVE area was set, not only FXSAVE */
};

#define TARGET_INIT { .pidfd = -1, .uffd = -1, .listener = -1, .pagemap_fd = -1, .mem_fd = -1, \
		      .mem_rw_fd = -1 }

#endif
