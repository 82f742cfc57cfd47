/*
 * ttd-pageserver-bench only: the sandbox's filter as ttd-stub built it before
 * libseccomp (hand-computed BPF: one comparison per allowed system call, in list
 * order), kept as the reference bench/syscall_cost.py measures the libseccomp
 * filter against (TTD_FILTER=linear). Its list is frozen as it was.
 */
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <sys/syscall.h>

#include "sandbox.h"

static const unsigned short sandbox_allowed[] = {
	__NR_read, __NR_write, __NR_readv, __NR_writev, __NR_pread64, __NR_pwrite64, __NR_lseek,
	__NR_close, __NR_close_range, __NR_dup, __NR_dup2, __NR_dup3, __NR_fcntl, __NR_fstat,
	__NR_newfstatat, __NR_pipe, __NR_pipe2, __NR_poll, __NR_ppoll, __NR_select, __NR_pselect6,
	__NR_mmap, __NR_munmap, __NR_mprotect, __NR_brk, __NR_madvise, __NR_mremap, __NR_mincore,
	__NR_msync, __NR_mlock, __NR_mlock2, __NR_munlock, __NR_mlockall, __NR_munlockall,
	__NR_membarrier, __NR_futex, __NR_set_robust_list,
	__NR_get_robust_list, __NR_rseq, __NR_set_tid_address, __NR_arch_prctl, __NR_clock_gettime,
	__NR_clock_getres, __NR_gettimeofday, __NR_time, __NR_nanosleep, __NR_clock_nanosleep,
	__NR_rt_sigaction, __NR_rt_sigprocmask, __NR_rt_sigreturn, __NR_sigaltstack,
	__NR_rt_sigpending, __NR_rt_sigsuspend, __NR_rt_sigtimedwait, __NR_pause, __NR_restart_syscall,
	__NR_alarm, __NR_getitimer, __NR_setitimer, __NR_timer_create, __NR_timer_settime,
	__NR_timer_gettime, __NR_timer_getoverrun, __NR_timer_delete, __NR_getpid,
	__NR_gettid, __NR_getppid, __NR_getpgrp, __NR_getsid, __NR_getuid, __NR_geteuid, __NR_getgid,
	__NR_getegid, __NR_getresuid, __NR_getresgid, __NR_getgroups,
	__NR_getrandom, __NR_uname, __NR_sysinfo, __NR_sched_yield, __NR_sched_getaffinity,
	__NR_sched_getparam, __NR_sched_getscheduler, __NR_sched_get_priority_max,
	__NR_sched_get_priority_min, __NR_getcpu, __NR_getcwd,
	__NR_getrlimit, __NR_getrusage, __NR_times, __NR_exit, __NR_exit_group, __NR_sendmsg,
	__NR_eventfd2, __NR_epoll_create1, __NR_epoll_ctl, __NR_epoll_wait, __NR_epoll_pwait,
};
static const unsigned short sandbox_signals[] = {
	__NR_kill, __NR_tkill, __NR_tgkill, __NR_rt_sigqueueinfo, __NR_rt_tgsigqueueinfo,
};
#define NR_ALLOWED (sizeof(sandbox_allowed) / sizeof(sandbox_allowed[0]))
#define NR_SIGNALS (sizeof(sandbox_signals) / sizeof(sandbox_signals[0]))
#define SANDBOX_LEN (4 + NR_ALLOWED + NR_SIGNALS + 1 + 9)

#define ARCH_OFF __builtin_offsetof(struct seccomp_data, arch)
#define NR_OFF __builtin_offsetof(struct seccomp_data, nr)
#define ARG0_OFF __builtin_offsetof(struct seccomp_data, args[0])	/* low half: little endian */

static struct sock_filter stmt(unsigned short code, unsigned int k)
{
	return (struct sock_filter){ code, 0, 0, k };
}

/* JEQ k at index `at`: to `yes` or `no` (absolute indexes; BPF jumps forward only, by < 256) */
static struct sock_filter jump(unsigned int k, unsigned int at, unsigned int yes, unsigned int no)
{
	return (struct sock_filter){ BPF_JMP | BPF_JEQ | BPF_K, (unsigned char)(yes - at - 1),
				     (unsigned char)(no - at - 1), k };
}

int sandbox_legacy_filter(pid_t pid, struct sock_filter **prog, uint32_t *len, struct err *e)
{
	/* the program, in order: */
	const unsigned int signals = 4 + NR_ALLOWED;	/* after arch, nr, x32 and the allowed */
	const unsigned int limits = signals + NR_SIGNALS;	/* prlimit64 */
	const unsigned int deny = limits + 1;		/* RET USER_NOTIF */
	const unsigned int zero_or_self = deny + 1;	/* LD arg0; JEQ 0 */
	const unsigned int self = zero_or_self + 2;	/* LD arg0; JEQ pid */
	const unsigned int allow = self + 2;		/* RET ALLOW */
	const unsigned int deny_other = allow + 1;	/* RET USER_NOTIF */
	const unsigned int kill_all = deny_other + 1;	/* RET KILL_PROCESS: another arch */
	struct sock_filter *p = calloc(SANDBOX_LEN, sizeof(*p));
	unsigned int i = 0;

	if (!p)
		return err_set(e, ERR_INTERNAL, "out of memory for the sandbox's filter");
	p[i] = stmt(BPF_LD | BPF_W | BPF_ABS, ARCH_OFF), i++;
	p[i] = jump(AUDIT_ARCH_X86_64, i, i + 1, kill_all), i++;
	p[i] = stmt(BPF_LD | BPF_W | BPF_ABS, NR_OFF), i++;
	/* x32 system calls (bit 30) are another door: not through this one */
	p[i] = (struct sock_filter){ BPF_JMP | BPF_JGE | BPF_K, (unsigned char)(deny - i - 1), 0,
				     0x40000000 }, i++;
	for (unsigned int k = 0; k < NR_ALLOWED; k++, i++)
		p[i] = jump(sandbox_allowed[k], i, allow, i + 1);
	for (unsigned int k = 0; k < NR_SIGNALS; k++, i++)
		p[i] = jump(sandbox_signals[k], i, self, i + 1);
	p[i] = jump(__NR_prlimit64, i, zero_or_self, i + 1), i++;
	p[i] = stmt(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF), i++;
	p[i] = stmt(BPF_LD | BPF_W | BPF_ABS, ARG0_OFF), i++;
	p[i] = jump(0, i, allow, i + 2), i++;	/* to the JEQ pid below */
	p[i] = stmt(BPF_LD | BPF_W | BPF_ABS, ARG0_OFF), i++;
	p[i] = jump((unsigned int)pid, i, allow, deny_other), i++;
	p[i] = stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW), i++;
	p[i] = stmt(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF), i++;
	p[i] = stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS), i++;
	_Static_assert(4 + NR_ALLOWED + NR_SIGNALS + 1 < 250, "BPF jumps reach 255 instructions at most");
	*prog = p;
	*len = i;
	return 0;
}
