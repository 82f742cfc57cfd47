/*
 * ttd-stub: the process that becomes the recorded process at a tick.
 *
 * ttd-pageserver starts it traced (PTRACE_TRACEME before execve) with
 *   fd 0 = /dev/null, fd 1/2 = pipes the caller reads, fd 3 = a socket to the server.
 * It then:
 *   1. runs on a stack inside its own image (.bss), so it can drop everything else;
 *   2. reads the layout (layout.h) from fd 3;
 *   3. unmaps every mapping the kernel gave it ([stack], [vdso], [vvar],
 *      [vvar_vclock]) except its own image and [vsyscall], which cannot go;
 *   4. maps each recorded region at its recorded address with its recorded
 *      protection as private anonymous memory (MADV_NOHUGEPAGE: 4 KiB tracking);
 *   5. creates a userfaultfd with the features the server asks for and
 *      registers the regions MISSING|WP (MISSING only for the diff tracker);
 *   6. sets auxv and the mm fields (prctl PR_SET_MM_MAP, exe_fd = -1);
 *   7. takes its memory limit (RLIMIT_AS, RLIMIT_DATA: the recording's size plus
 *      a margin);
 *   8. creates the other recorded threads (clone3, each with its recorded id when
 *      it is free: that needs CAP_SYS_ADMIN, so before anything is dropped); each
 *      takes its recorded name (PR_SET_NAME), with the sandbox drops its own
 *      privileges (credentials are per thread), says it is ready and waits on a
 *      futex that never comes, on a small stack in our image; then our own thread
 *      takes the leader's recorded name;
 *   9. with the sandbox, drops what the called code does not need: every
 *      capability (the bounding set too) and root's uid and gid (setresuid and
 *      setresgid to the ids the server names; the page server and gdbserver, root,
 *      still trace it and read its memory), and installs the seccomp filter the
 *      server sent (built with libseccomp: native/pageserver/sandbox_filter.c) on
 *      every thread (SECCOMP_FILTER_FLAG_TSYNC): what only affects the process
 *      passes, everything else goes to the server (SECCOMP_RET_USER_NOTIF), which
 *      answers EPERM and counts it;
 *  10. sends the userfaultfd (and the filter's listener) to the server
 *      (SCM_RIGHTS) and the threads' ids, closes every descriptor but 0, 1, 2 and
 *      stops itself with SIGSTOP.
 * The server then sets every thread's recorded registers (ptrace: its own thread
 * was traced from the start, the others it seizes) and detaches, leaving them all
 * in one group stop.
 *
 * ttd_stub_apply() stays in the image for later: moving the process to another
 * tick may need changes of the memory map that only the process can make (see
 * struct stub_apply in layout.h); its tracer calls it.
 *
 * Freestanding: no libc, raw syscalls only. Linked at 0x2f0000000000 (Makefile),
 * far from where programs live, so recorded regions rarely collide with it; the
 * server refuses layouts that do.
 */
#include <stddef.h>
#include <stdint.h>
#include <asm/unistd.h>
#include <linux/mman.h>
#include <linux/prctl.h>
#include <linux/signal.h>
#include <linux/fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "layout.h"
#include "uffd_compat.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MADV_NOHUGEPAGE
#define MADV_NOHUGEPAGE 15
#endif
#ifndef SECCOMP_FILTER_FLAG_TSYNC_ESRCH
#define SECCOMP_FILTER_FLAG_TSYNC_ESRCH (1UL << 4)
#endif
#define CLONE_THREAD_FLAGS 0x50f00	/* CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM */
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129
#define THREAD_STACK_SIZE 4096	/* a thread's few frames (under 1 KiB) until it waits for ever */
#define APPLY_STACK_SIZE 16384
#define EEXIST 17
#define SOL_SOCKET 1
#define SCM_RIGHTS 1
#define VSYSCALL_START 0xffffffffff600000UL
#define PAGE_SIZE 4096UL

/* Linker-provided bounds of our own image. */
extern char __executable_start[], _end[];

static long sys6(long nr, long a, long b, long c, long d, long e, long f)
{
	long ret;
	register long r10 asm("r10") = d;
	register long r8 asm("r8") = e;
	register long r9 asm("r9") = f;

	asm volatile("syscall"
		     : "=a"(ret)
		     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
		     : "rcx", "r11", "memory");
	return ret;
}
#define sys3(nr, a, b, c) sys6(nr, (long)(a), (long)(b), (long)(c), 0, 0, 0)

/* The stack we run on after _start; 64 KiB is plenty for these few frames. */
__attribute__((used, aligned(16))) static char stub_stack[65536];

static struct stub_layout layout;
static struct stub_map maps[STUB_MAX_MAPS];
static uint64_t auxv[STUB_MAX_AUXV / 8];
static struct stub_thread threads[STUB_MAX_THREADS];
static int32_t thread_ids[STUB_MAX_THREADS];	/* what each got; [0]: ours */
__attribute__((aligned(16))) static char thread_stacks[STUB_MAX_THREADS][THREAD_STACK_SIZE];
static volatile int threads_ready;	/* futex: the other threads set up so far */
static int never;			/* futex the threads wait on for ever */
/* ttd_stub_apply(): its argument (the server writes it), and the stack it runs on */
__attribute__((used)) struct stub_apply stub_apply_args;
__attribute__((used, aligned(16))) static char apply_stack[APPLY_STACK_SIZE];
static struct sock_filter filter[STUB_MAX_FILTER];
static char self_maps[16384];

struct iov { void *base; size_t len; };
struct msg_hdr {
	void *name; int namelen; struct iov *iov; size_t iovlen;
	void *control; size_t controllen; int flags;
};

static __attribute__((noreturn)) void stub_exit(int code)
{
	for (;;)
		sys3(__NR_exit_group, code, 0, 0);
}

/* Report a failed step to the server and exit; the server turns it into a message. */
static __attribute__((noreturn)) void stub_fail(int step, long ret, uint64_t rec_start, uint64_t rec_end)
{
	struct stub_reply reply = { .step = step, .err = (int)-ret,
				    .rec_start = rec_start, .rec_end = rec_end };

	sys3(__NR_write, STUB_SOCK_FD, &reply, sizeof(reply));
	stub_exit(100 + step);
}

/* Read exactly len bytes; 0 on success. */
static int read_full(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		long n = sys3(__NR_read, fd, p, len);
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

static void read_layout(void)
{
	if (read_full(STUB_SOCK_FD, &layout, sizeof(layout)) ||
	    layout.nr_maps > STUB_MAX_MAPS || layout.auxv_size > STUB_MAX_AUXV ||
	    layout.nr_threads < 1 || layout.nr_threads > STUB_MAX_THREADS ||
	    layout.filter_len > STUB_MAX_FILTER ||
	    read_full(STUB_SOCK_FD, maps, layout.nr_maps * sizeof(maps[0])) ||
	    read_full(STUB_SOCK_FD, auxv, layout.auxv_size) ||
	    read_full(STUB_SOCK_FD, threads, layout.nr_threads * sizeof(threads[0])) ||
	    read_full(STUB_SOCK_FD, filter, layout.filter_len * sizeof(filter[0])))
		stub_fail(STEP_READ_LAYOUT, -22, 0, 0);
}

static unsigned long parse_hex(const char **pp)
{
	unsigned long v = 0;
	const char *p = *pp;

	for (;; p++) {
		char c = *p;
		if (c >= '0' && c <= '9')
			v = v * 16 + (c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (c - 'a' + 10);
		else
			break;
	}
	*pp = p;
	return v;
}

/* Unmap whatever the kernel mapped for us outside our image (all but [vsyscall]). */
static void unmap_foreign(void)
{
	unsigned long image_lo = (unsigned long)__executable_start & ~(PAGE_SIZE - 1);
	unsigned long image_hi = ((unsigned long)_end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	long fd = sys3(__NR_open, "/proc/self/maps", O_RDONLY, 0);
	long n = 0, k;

	if (fd < 0)
		stub_fail(STEP_UNMAP, fd, 0, 0);
	while ((k = sys3(__NR_read, fd, self_maps + n, sizeof(self_maps) - 1 - n)) > 0)
		n += k;
	self_maps[n] = 0;
	sys3(__NR_close, fd, 0, 0);

	for (const char *p = self_maps; *p;) {
		unsigned long lo = parse_hex(&p);
		p++;	/* '-' */
		unsigned long hi = parse_hex(&p);
		while (*p && *p != '\n')
			p++;
		if (*p)
			p++;
		if (lo >= VSYSCALL_START || (lo >= image_lo && hi <= image_hi))
			continue;
		long ret = sys3(__NR_munmap, lo, hi - lo, 0);
		if (ret)
			stub_fail(STEP_UNMAP, ret, lo, hi);
	}
}

/* [start, end) as private anonymous memory at its address, 4 KiB pages: 0 or -errno. */
static long map_anonymous(uint64_t start, uint64_t end, uint32_t prot)
{
	long ret = sys6(__NR_mmap, start, end - start, prot,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0);

	if (ret != (long)start)
		return ret < 0 ? ret : -EEXIST;
	return sys3(__NR_madvise, start, end - start, MADV_NOHUGEPAGE);
}

static void map_regions(void)
{
	for (uint32_t i = 0; i < layout.nr_maps; i++) {
		struct stub_map *m = &maps[i];
		long ret = map_anonymous(m->rec_start, m->rec_end, m->prot);
		if (ret)
			stub_fail(STEP_MMAP, ret, m->rec_start, m->rec_end);
	}
}

static long create_uffd(void)
{
	struct uffdio_api api = { .api = UFFD_API, .features = layout.uffd_features };
	long uffd = sys3(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK, 0, 0);
	long ret;

	if (uffd < 0)
		stub_fail(STEP_USERFAULTFD, uffd, 0, 0);
	ret = sys3(__NR_ioctl, uffd, UFFDIO_API, &api);
	if (ret)
		stub_fail(STEP_UFFDIO_API, ret, 0, 0);

	for (uint32_t i = 0; i < layout.nr_maps; i++) {
		struct stub_map *m = &maps[i];
		struct uffdio_register reg = {
			.range = { .start = m->rec_start, .len = m->rec_end - m->rec_start },
			.mode = UFFDIO_REGISTER_MODE_MISSING |
				(layout.register_wp ? UFFDIO_REGISTER_MODE_WP : 0),
		};
		if (!m->register_uffd)
			continue;
		ret = sys3(__NR_ioctl, uffd, UFFDIO_REGISTER, &reg);
		if (ret)
			stub_fail(STEP_UFFDIO_REGISTER, ret, m->rec_start, m->rec_end);
	}
	return uffd;
}

static void set_mm(void)
{
	struct prctl_mm_map mm = {
		.start_code = layout.mm[MM_START_CODE], .end_code = layout.mm[MM_END_CODE],
		.start_data = layout.mm[MM_START_DATA], .end_data = layout.mm[MM_END_DATA],
		.start_brk = layout.mm[MM_START_BRK], .brk = layout.mm[MM_BRK],
		.start_stack = layout.mm[MM_START_STACK],
		.arg_start = layout.mm[MM_ARG_START], .arg_end = layout.mm[MM_ARG_END],
		.env_start = layout.mm[MM_ENV_START], .env_end = layout.mm[MM_ENV_END],
		.auxv = (__u64 *)auxv, .auxv_size = layout.auxv_size,
		.exe_fd = (uint32_t)-1,
	};
	long ret = sys6(__NR_prctl, PR_SET_MM, PR_SET_MM_MAP, (long)&mm, sizeof(mm), 0, 0);

	if (ret)
		stub_fail(STEP_PR_SET_MM_MAP, ret, 0, 0);
}

struct rlimit64 { uint64_t cur, max; };
struct cap_header { uint32_t version; int pid; };
struct cap_data { uint32_t effective, permitted, inheritable; };
#define CAP_VERSION_3 0x20080522
#define RLIMIT_DATA 2
#define RLIMIT_AS 9

/* The memory limit: an allocation past it fails with ENOMEM. */
static void limit_memory(void)
{
	struct rlimit64 limit = { layout.as_limit, layout.as_limit };
	long ret;

	if (!layout.as_limit)
		return;
	ret = sys6(__NR_prlimit64, 0, RLIMIT_AS, (long)&limit, 0, 0, 0);
	if (ret == 0)
		ret = sys6(__NR_prlimit64, 0, RLIMIT_DATA, (long)&limit, 0, 0, 0);
	if (ret)
		stub_fail(STEP_RLIMIT, ret, 0, 0);
}

/*
 * Drop every privilege before the called code runs: the bounding set (needs
 * CAP_SETPCAP, so first), the supplementary groups, gid and uid (setresuid to a
 * non-root uid clears the permitted and effective sets), then every set left.
 * The process becomes non-dumpable (its uid changed): root, and only root, may
 * still trace it and read its memory, as the page server and gdbserver do.
 */
static void drop_privileges(void)
{
	struct cap_header header = { CAP_VERSION_3, 0 };
	struct cap_data none[2] = { { 0, 0, 0 }, { 0, 0, 0 } };
	long ret = 0;

	for (long cap = 0; cap < 64; cap++)	/* EINVAL past the last capability */
		if (sys3(__NR_prctl, PR_CAPBSET_DROP, cap, 0) == -22)
			break;
	if (layout.run_uid != (uint32_t)-1) {
		ret = sys3(__NR_setgroups, 0, 0, 0);
		if (ret == 0)
			ret = sys3(__NR_setresgid, layout.run_gid, layout.run_gid, layout.run_gid);
		if (ret == 0)
			ret = sys3(__NR_setresuid, layout.run_uid, layout.run_uid, layout.run_uid);
	}
	if (ret == 0)
		ret = sys3(__NR_capset, &header, none, 0);
	if (ret)
		stub_fail(STEP_DROP_PRIVILEGES, ret, 0, 0);
}

/* The sandbox's filter, sent by the server, on every thread (TSYNC; with a listener
 * that needs TSYNC_ESRCH); sealed with no new privileges, which TSYNC passes on. */
static long sandbox_install(void)
{
	struct sock_fprog prog = { .len = (unsigned short)layout.filter_len, .filter = filter };
	long ret = sys6(__NR_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0);

	if (ret)
		stub_fail(STEP_SECCOMP, ret, 0, 0);
	ret = sys3(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER |
		   SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_TSYNC_ESRCH, &prog);
	if (ret < 0)
		stub_fail(STEP_SECCOMP, ret, 0, 0);
	return ret;	/* the listener */
}

static void set_name(const char *name)
{
	char comm[STUB_COMM_LEN];

	for (int i = 0; i < STUB_COMM_LEN; i++)
		comm[i] = i < STUB_COMM_LEN - 1 ? name[i] : 0;
	if (comm[0])
		sys3(__NR_prctl, PR_SET_NAME, comm, 0);
}

/*
 * clone3(args) with the child running fn(arg) on args->stack: the child's id, or
 * -errno. The child starts with the parent's registers on its new stack, so it
 * must not return into C: fn and arg travel in r8 and r9, which the system call
 * keeps.
 */
#define UNUSED __attribute__((unused))
__attribute__((naked)) static long clone_thread(UNUSED void *args, UNUSED unsigned long size,
						UNUSED void (*fn)(void *), UNUSED void *arg)
{
	asm volatile("mov %rdx, %r8\n\t"
		     "mov %rcx, %r9\n\t"
		     "mov $435, %eax\n\t"	/* __NR_clone3 */
		     "syscall\n\t"
		     "test %rax, %rax\n\t"
		     "jnz 1f\n\t"
		     "xor %ebp, %ebp\n\t"
		     "mov %r9, %rdi\n\t"
		     "call *%r8\n\t"
		     "hlt\n"
		     "1:\n\t"
		     "ret");
}

static void drop_privileges(void);

/* A recorded thread other than the leader: named, without privileges under the
 * sandbox, then waiting until the server has set its registers. */
static __attribute__((noreturn)) void thread_main(void *arg)
{
	const struct stub_thread *t = arg;

	set_name(t->name);
	if (layout.filter_len)
		drop_privileges();
	__atomic_add_fetch(&threads_ready, 1, __ATOMIC_SEQ_CST);
	sys3(__NR_futex, &threads_ready, FUTEX_WAKE_PRIVATE, 1);
	for (;;)
		sys6(__NR_futex, (long)&never, FUTEX_WAIT_PRIVATE, 0, 0, 0, 0);
}

/* Thread i with its recorded id when it is free (EEXIST: taken), else any. */
static long clone_recorded(uint32_t i)
{
	struct clone_args {
		uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size,
			 tls, set_tid, set_tid_size, cgroup;
	} args = { .flags = CLONE_THREAD_FLAGS, .stack = (uint64_t)thread_stacks[i],
		   .stack_size = THREAD_STACK_SIZE };
	int32_t want = threads[i].tid;
	long tid = -1;

	if (want > 0) {
		args.set_tid = (uint64_t)&want;
		args.set_tid_size = 1;
		tid = clone_thread(&args, sizeof(args), thread_main, &threads[i]);
		if (tid > 0)
			return tid;
		args.set_tid = args.set_tid_size = 0;
	}
	return clone_thread(&args, sizeof(args), thread_main, &threads[i]);
}

static void create_threads(void)
{
	uint32_t others = layout.nr_threads - 1;

	for (uint32_t i = 1; i < layout.nr_threads; i++) {
		long tid = clone_recorded(i);
		if (tid < 0)
			stub_fail(STEP_CLONE, tid, (uint64_t)threads[i].tid, 0);
		thread_ids[i] = (int32_t)tid;
	}
	for (;;) {
		int ready = __atomic_load_n(&threads_ready, __ATOMIC_SEQ_CST);
		if ((uint32_t)ready == others)
			break;
		sys6(__NR_futex, (long)&threads_ready, FUTEX_WAIT_PRIVATE, ready, 0, 0, 0);
	}
	set_name(threads[0].name);
}

static void send_uffd(long uffd, long listener)
{
	struct stub_reply reply = { .step = STEP_OK };
	struct iov iov = { &reply, sizeof(reply) };
	struct cmsg_fds { size_t len; int level; int type; int fd[2]; } cmsg = {
		.len = listener >= 0 ? 24 : 20, .level = SOL_SOCKET, .type = SCM_RIGHTS,
		.fd = { (int)uffd, (int)listener },
	};
	struct msg_hdr msg = { .iov = &iov, .iovlen = 1, .control = &cmsg, .controllen = 24 };
	long ret = sys3(__NR_sendmsg, STUB_SOCK_FD, &msg, 0);

	if (ret != sizeof(reply))
		stub_fail(STEP_SEND_UFFD, ret < 0 ? ret : -5, 0, 0);
	ret = sys3(__NR_write, STUB_SOCK_FD, thread_ids, layout.nr_threads * sizeof(thread_ids[0]));
	if (ret != (long)(layout.nr_threads * sizeof(thread_ids[0])))
		stub_fail(STEP_SEND_TIDS, ret < 0 ? ret : -5, 0, 0);
}

__attribute__((used, noreturn)) static void stub_main(void)
{
	long uffd, listener = -1, pid = sys3(__NR_getpid, 0, 0, 0);

	read_layout();
	thread_ids[0] = (int32_t)pid;
	unmap_foreign();
	map_regions();
	uffd = create_uffd();
	set_mm();
	limit_memory();
	create_threads();
	if (layout.filter_len) {
		drop_privileges();
		listener = sandbox_install();
	}
	send_uffd(uffd, listener);
	sys3(__NR_close_range, 3, ~0U, 0);
	/* The server sets the recorded registers while we are stopped here (a signal
	 * to this thread: only we stop now, traced) and detaches; whoever continues us
	 * resumes at the recorded pc. */
	sys3(__NR_tgkill, pid, pid, SIGSTOP);
	stub_exit(127);	/* continued without registers: never run on */
}

/* ── ttd_stub_apply(): changes of the memory map for a move (layout.h) ── */

static int apply_brk(struct stub_apply *a)
{
	long got = sys3(__NR_brk, a->brk, 0, 0);

	if ((uint64_t)got == a->brk)
		return 0;
	a->failed = (int32_t)a->nr_ops;
	a->err = 12;	/* ENOMEM: brk says no only by keeping the old break */
	return -1;
}

/* An OP_MAP range: mapped, but the part brk just mapped [grown_lo, grown_hi) only
 * protected as asked (and kept at 4 KiB pages). 0 or -errno. */
static long apply_map(const struct stub_op *op, uint64_t grown_lo, uint64_t grown_hi)
{
	uint64_t lo = op->start > grown_lo ? op->start : grown_lo;
	uint64_t hi = op->end < grown_hi ? op->end : grown_hi;
	long ret = 0;

	if (lo >= hi)
		return map_anonymous(op->start, op->end, op->prot);
	if (op->start < lo)
		ret = map_anonymous(op->start, lo, op->prot);
	if (!ret && hi < op->end)
		ret = map_anonymous(hi, op->end, op->prot);
	if (!ret)
		ret = sys3(__NR_mprotect, lo, hi - lo, op->prot);
	if (!ret)
		ret = sys3(__NR_madvise, lo, hi - lo, MADV_NOHUGEPAGE);
	return ret;
}

static long apply_op(const struct stub_op *op, uint64_t grown_lo, uint64_t grown_hi)
{
	switch (op->kind) {
	case OP_UNMAP:
		return sys3(__NR_munmap, op->start, op->end - op->start, 0);
	case OP_MAP:
		return apply_map(op, grown_lo, grown_hi);
	case OP_PROTECT:
		return sys3(__NR_mprotect, op->start, op->end - op->start, op->prot);
	}
	return -22;
}

/* The ops of a kind, in order; 0, or -1 with a->failed and a->err set. */
static int apply_kind(struct stub_apply *a, uint32_t kind, uint64_t grown_lo, uint64_t grown_hi)
{
	for (uint32_t i = 0; i < a->nr_ops && i < STUB_MAX_OPS; i++) {
		if (a->ops[i].kind != kind)
			continue;
		long ret = apply_op(&a->ops[i], grown_lo, grown_hi);
		if (ret) {
			a->failed = (int32_t)i;
			a->err = -ret;
			return -1;
		}
	}
	return 0;
}

__attribute__((used)) static long apply_run(struct stub_apply *a)
{
	uint64_t grown_lo = 0, grown_hi = 0;

	a->failed = -1;
	a->err = 0;
	a->old_brk = (uint64_t)sys3(__NR_brk, 0, 0, 0);
	if (a->brk && a->brk < a->old_brk && apply_brk(a))
		return -1;
	if (apply_kind(a, OP_UNMAP, 0, 0))
		return -1;
	if (a->brk > a->old_brk) {
		if (apply_brk(a))
			return -1;
		grown_lo = (a->old_brk + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
		grown_hi = (a->brk + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	}
	if (apply_kind(a, OP_MAP, grown_lo, grown_hi) || apply_kind(a, OP_PROTECT, 0, 0))
		return -1;
	return 0;
}

/*
 * long ttd_stub_apply(struct stub_apply *): called by the tracer as a function of
 * the process, on whatever thread and stack it stopped with; runs apply_run() on
 * apply_stack (the ops may unmap the stack it was called on) and returns its value.
 */
__attribute__((naked, used)) long ttd_stub_apply(UNUSED struct stub_apply *a)
{
	asm volatile("mov %rsp, %rax\n\t"
		     "lea apply_stack+16384(%rip), %rsp\n\t"
		     "push %rax\n\t"
		     "sub $8, %rsp\n\t"
		     "call apply_run\n\t"
		     "add $8, %rsp\n\t"
		     "pop %rsp\n\t"
		     "ret");
}

__attribute__((naked, noreturn)) void _start(void)
{
	asm volatile("lea stub_stack+65536(%rip), %rsp\n\t"
		     "call stub_main\n\t"
		     "hlt");
}
