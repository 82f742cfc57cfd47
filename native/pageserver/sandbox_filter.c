/*
 * The sandbox's seccomp filter, built with libseccomp in the page server and sent
 * to ttd-stub (freestanding: it cannot link libseccomp), which installs it with
 * SECCOMP_FILTER_FLAG_NEW_LISTENER as its last step and hands the listener back.
 * Before that the stub drops what the called code does not need (ttd-stub.c:
 * every capability, root's uid, NO_NEW_PRIVS) and takes its memory limit.
 *
 * What passes is what only affects the process itself: memory, futexes, clocks,
 * its own signals and timers, reads and writes on the descriptors it has (0, 1,
 * 2 and pipes of its own: it cannot open anything). Some pass on a condition on
 * their arguments:
 * - kill, tkill, tgkill, rt_sigqueueinfo, rt_tgsigqueueinfo: aimed at itself;
 *   prlimit64: about itself (pid 0 or its own);
 * - fcntl: the commands a program needs on its own descriptors: F_DUPFD(_CLOEXEC),
 *   F_GETFD/F_SETFD, F_GETFL, F_GETPIPE_SZ, and F_SETFL without O_ASYNC. Refused:
 *   F_SETOWN(_EX), F_SETSIG and O_ASYNC (with them a pipe of its own delivers any
 *   signal to any process or process group: a called function killed the page
 *   server and the user's shell), leases and F_NOTIFY (files it cannot have),
 *   F_SETPIPE_SZ (kernel memory of the pipes ttd reads), and locks: the only file
 *   it holds is /dev/null on fd 0, which every process on the host shares (a lock
 *   there would block other processes' locks), and pipes need none;
 * - madvise: advice about its own pages (below); refused are the advice values
 *   that reach past the process: MADV_HWPOISON and MADV_SOFT_OFFLINE (pages of
 *   the machine), MADV_MERGEABLE/UNMERGEABLE (KSM merges pages across processes:
 *   a side channel), MADV_REMOVE (shared memory and files), MADV_COLLAPSE (work
 *   of the whole machine's khugepaged).
 * newfstatat and statx go to the page server, which lets exactly fstat of its own
 * descriptor through (sandbox.c); any path is refused and reported. Everything
 * else (files, sockets, other processes, fork/clone and new threads, ...) goes to
 * the page server (SCMP_ACT_NOTIFY), which answers EPERM and records it. sendmsg
 * and close_range pass for the stub's own last steps: by then the process has no
 * socket and cannot make one. brk goes to the page server too, which lets it
 * through and counts it (sandbox.c): a break moved inside one page shows nowhere
 * else, and a move of the process to another tick must put it back (move.c). System calls of another ABI (int $0x80, x32) go to
 * the page server as well (SCMP_FLTATR_ACT_BADARCH): refused and reported.
 *
 * The filter is a binary tree of system call numbers (SCMP_FLTATR_CTL_OPTIMIZE 2):
 * bench/syscall_cost.py compares its cost per call with the linear filter it
 * replaced (sandbox_legacy.c, in ttd-pageserver-bench only).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LOG_PREFIX "ttd-pageserver: sandbox: "
#include "log.h"
#include "sandbox.h"

static const int allowed[] = {
	SYS_read, SYS_write, SYS_readv, SYS_writev, SYS_pread64, SYS_pwrite64, SYS_lseek,
	SYS_close, SYS_close_range, SYS_dup, SYS_dup2, SYS_dup3, SYS_fstat,
	SYS_pipe, SYS_pipe2, SYS_poll, SYS_ppoll, SYS_select, SYS_pselect6,
	SYS_mmap, SYS_munmap, SYS_mprotect, SYS_mremap, SYS_mincore,
	SYS_msync, SYS_mlock, SYS_mlock2, SYS_munlock, SYS_mlockall, SYS_munlockall,
	SYS_membarrier, SYS_futex, SYS_set_robust_list, SYS_get_robust_list, SYS_rseq,
	SYS_set_tid_address, SYS_arch_prctl, SYS_clock_gettime, SYS_clock_getres, SYS_gettimeofday,
	SYS_time, SYS_nanosleep, SYS_clock_nanosleep, SYS_rt_sigaction, SYS_rt_sigprocmask,
	SYS_rt_sigreturn, SYS_sigaltstack, SYS_rt_sigpending, SYS_rt_sigsuspend,
	SYS_rt_sigtimedwait, SYS_pause, SYS_restart_syscall, SYS_alarm, SYS_getitimer,
	SYS_setitimer, SYS_timer_create, SYS_timer_settime, SYS_timer_gettime,
	SYS_timer_getoverrun, SYS_timer_delete, SYS_getpid, SYS_gettid, SYS_getppid, SYS_getpgrp,
	SYS_getsid, SYS_getuid, SYS_geteuid, SYS_getgid, SYS_getegid, SYS_getresuid, SYS_getresgid,
	SYS_getgroups, SYS_getrandom, SYS_uname, SYS_sysinfo, SYS_sched_yield,
	SYS_sched_getaffinity, SYS_sched_getparam, SYS_sched_getscheduler,
	SYS_sched_get_priority_max, SYS_sched_get_priority_min, SYS_getcpu, SYS_getcwd,
	SYS_getrlimit, SYS_getrusage, SYS_times, SYS_exit, SYS_exit_group, SYS_sendmsg,
	SYS_eventfd2, SYS_epoll_create1, SYS_epoll_ctl, SYS_epoll_wait, SYS_epoll_pwait,
};

/* signals: allowed to itself (the first argument: its pid, tgid or tid) */
static const int to_self[] = {
	SYS_kill, SYS_tkill, SYS_tgkill, SYS_rt_sigqueueinfo, SYS_rt_tgsigqueueinfo,
};

/* fcntl commands on its own descriptors (F_SETFL: without O_ASYNC, below) */
static const int fcntl_commands[] = {
	F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_SETFD, F_GETFL, F_GETPIPE_SZ,
};

/* madvise advice about its own pages */
static const int advice[] = {
	MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED, MADV_DONTNEED, MADV_FREE,
	MADV_DONTFORK, MADV_DOFORK, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_DONTDUMP, MADV_DODUMP,
	MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_COLD, MADV_PAGEOUT, MADV_POPULATE_READ,
	MADV_POPULATE_WRITE, MADV_DONTNEED_LOCKED,
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The rules with conditions on arguments. */
static int add_conditional_rules(scmp_filter_ctx ctx, pid_t pid)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < NELEM(to_self); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, to_self[i], 1,
				      SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)pid));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SYS_prlimit64, 1, SCMP_A0_32(SCMP_CMP_EQ, 0));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SYS_prlimit64, 1,
				      SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)pid));
	for (size_t i = 0; rc == 0 && i < NELEM(fcntl_commands); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SYS_fcntl, 1,
				      SCMP_A1_32(SCMP_CMP_EQ, fcntl_commands[i]));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SYS_fcntl, 2, SCMP_A1_32(SCMP_CMP_EQ, F_SETFL),
				      SCMP_A2_64(SCMP_CMP_MASKED_EQ, O_ASYNC, 0));
	for (size_t i = 0; rc == 0 && i < NELEM(advice); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SYS_madvise, 1,
				      SCMP_A2_32(SCMP_CMP_EQ, advice[i]));
	return rc;
}

static int add_rules(scmp_filter_ctx ctx, pid_t pid)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < NELEM(allowed); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
	return rc ? rc : add_conditional_rules(ctx, pid);
}

/* The BPF program of ctx, exported through a memfd (libseccomp 2.5 exports to a
 * descriptor only): *prog malloc'd, *len instructions. */
static int export_bpf(scmp_filter_ctx ctx, struct sock_filter **prog, uint32_t *len, struct err *e)
{
	int fd = memfd_create("ttd-sandbox-filter", MFD_CLOEXEC), rc;
	off_t size;

	if (fd < 0)
		return err_set(e, ERR_INTERNAL, "memfd_create for the sandbox's filter: %s",
			       strerror(errno));
	rc = seccomp_export_bpf(ctx, fd);
	size = lseek(fd, 0, SEEK_END);
	if (rc || size <= 0 || size % sizeof(**prog) || size / sizeof(**prog) > SANDBOX_MAX_INSNS) {
		close(fd);
		return err_set(e, ERR_INTERNAL, "exporting the sandbox's filter: %s (%lld bytes)",
			       rc ? strerror(-rc) : "bad size", (long long)size);
	}
	*prog = malloc(size);
	if (!*prog || pread(fd, *prog, size, 0) != size) {
		close(fd);
		return err_set(e, ERR_INTERNAL, "reading back the sandbox's filter");
	}
	close(fd);
	*len = size / sizeof(**prog);
	return 0;
}

/* libseccomp's SCMP_FLTATR_CTL_OPTIMIZE: 2, a binary tree of system call numbers;
 * ttd-pageserver-bench: 1 (priority order) with TTD_FILTER=priority. */
static int optimize_level(void)
{
#ifdef TTD_BENCH
	const char *kind = getenv("TTD_FILTER");

	if (kind && strcmp(kind, "priority") == 0)
		return 1;
#endif
	return 2;
}

/* The filter built here hands every brk to the page server (the linear one lets it pass). */
static int brk_watched;

int sandbox_sees_brk(const struct sandbox *sb)
{
	return sb->listener >= 0 && brk_watched;
}

int sandbox_filter(pid_t pid, struct sock_filter **prog, uint32_t *len, struct err *e)
{
	scmp_filter_ctx ctx;
	int rc;

#ifdef TTD_BENCH
	const char *kind = getenv("TTD_FILTER");
	if (kind && strcmp(kind, "linear") == 0)
		return sandbox_legacy_filter(pid, prog, len, e);
#endif
	brk_watched = 1;
	ctx = seccomp_init(SCMP_ACT_NOTIFY);
	if (!ctx)
		return err_set(e, ERR_INTERNAL, "seccomp_init: cannot build the sandbox's filter");
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, optimize_level());
	if (rc == 0)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_NOTIFY);
	if (rc == 0)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);	/* the stub sets it itself */
	if (rc == 0)
		rc = add_rules(ctx, pid);
	if (rc) {
		seccomp_release(ctx);
		return err_set(e, ERR_INTERNAL, "building the sandbox's filter: %s", strerror(-rc));
	}
	rc = export_bpf(ctx, prog, len, e);
	seccomp_release(ctx);
	return rc;
}
