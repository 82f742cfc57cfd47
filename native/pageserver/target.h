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
	uint64_t image_lo, image_hi;	/* ttd-stub's image, page-aligned */
	int same_tid;		/* it got the recorded thread's id */
	int xstate_restored;	/* the whole XSAVE area was set, not only FXSAVE */
};

#define TARGET_INIT { .pidfd = -1, .uffd = -1, .listener = -1, .pagemap_fd = -1, .mem_fd = -1 }

#endif
