/*
 * The sandbox's reporting: every system call the seccomp filter hands to us
 * (SECCOMP_RET_USER_NOTIF) is answered EPERM and recorded with its telling
 * argument (sandbox_detail.c), grouped by (system call, detail) in first-seen
 * order; the statistics list them as "blocked_syscalls".
 */
#ifndef TTD_SANDBOX_H
#define TTD_SANDBOX_H

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "err.h"

#define SANDBOX_MAX_DETAIL 512
#define SANDBOX_MAX_INSNS BPF_MAXINSNS	/* what the kernel loads, and the stub reads */

struct pager;

struct blocked_call {
	char *name;		/* "unlink", "i386 system call 5 (open)" */
	char *detail;		/* NULL: none */
	uint32_t count;
};

struct sandbox {
	int listener;		/* seccomp user notifications of the process, or -1: no sandbox */
	struct pager *pager;	/* reads the process's memory for details */
	struct blocked_call *blocked;	/* the first distinct (name, detail) pairs */
	size_t nr_blocked;
	uint32_t left_out_kinds;	/* distinct pairs past those */
	uint64_t left_out_calls;	/* and their calls */
	uint64_t *left_out_seen;	/* hashes of the pairs left out (sandbox.c) */
	uint64_t brk_calls;	/* brk system calls let through so far (sandbox_filter.c) */
};

/* Answer one notification (the listener is readable): EPERM, recorded; fstat of its
 * own descriptors passes, and brk (counted). -1 with the error when the listener failed or a detail could
 * not be read (a corrupt page). */
int sandbox_handle(struct sandbox *sb, struct err *e);

/* `, "blocked_syscalls": [{"name": "unlink", "count": 1, "detail": "/tmp/x"}, ...],
 *  "blocked_syscalls_left_out": {"distinct": 0, "calls": 0}` */
void sandbox_format(const struct sandbox *sb, FILE *json);

/* Forget what was refused so far (the list and the counts past it). */
void sandbox_forget(struct sandbox *sb);

/* The filter for process pid (sandbox_filter.c): *prog (malloc'd) of *len instructions.
 * ttd-pageserver-bench builds the one TTD_FILTER names: "tree" (the default: libseccomp,
 * a binary tree), "priority" (libseccomp's default order), "linear" (the hand-written
 * filter libseccomp replaced: sandbox_legacy.c). */
/* Whether every brk of the process comes to sandbox_handle() (and so counts in
 * sb->brk_calls): the sandbox is on, with the filter sandbox_filter() builds. */
int sandbox_sees_brk(const struct sandbox *sb);

int sandbox_filter(pid_t pid, struct sock_filter **prog, uint32_t *len, struct err *e);
int sandbox_legacy_filter(pid_t pid, struct sock_filter **prog, uint32_t *len, struct err *e);

/* The telling argument of the call in d into out (SANDBOX_MAX_DETAIL bytes): 1, or 0
 * when the call has none (a path may be "": 1). */
int sandbox_detail(struct pager *p, char *out, const struct seccomp_data *d, struct err *e);

#endif
