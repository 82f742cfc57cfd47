/* stub.h: ttd-stub, from fork to a stopped process with the recorded registers. */
#define _GNU_SOURCE
#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define LOG_PREFIX "ttd-pageserver: stub: "
#include "log.h"
#include "io.h"
#include "page.h"
#include "sandbox.h"
#include "stub.h"

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

#define STUB_SETUP_MS 60000	/* from exec to its stop: mapping thousands of regions */
#define DESCENDANT_REAP_MS 100

_Static_assert(sizeof(struct user_regs_struct) == SPEC_GPREGS_SIZE, "gpregs layout");
_Static_assert(sizeof(struct user_fpregs_struct) == SPEC_FPREGS_SIZE, "fpregs layout");

/* The addresses of ttd_stub_apply and stub_apply_args from the image's symbol table
 * (left 0 when missing: moves are refused then). */
static void read_apply_symbols(int fd, const Elf64_Ehdr *eh, struct target *t)
{
	Elf64_Shdr symtab, strtab;
	Elf64_Sym sym;
	char name[32];

	for (int i = 0; i < eh->e_shnum; i++) {
		if (pread(fd, &symtab, sizeof(symtab), eh->e_shoff + i * eh->e_shentsize) !=
		    sizeof(symtab) || symtab.sh_type != SHT_SYMTAB)
			continue;
		if (pread(fd, &strtab, sizeof(strtab), eh->e_shoff + symtab.sh_link *
			  eh->e_shentsize) != sizeof(strtab))
			return;
		for (uint64_t off = 0; off + sizeof(sym) <= symtab.sh_size; off += sizeof(sym)) {
			if (pread(fd, &sym, sizeof(sym), symtab.sh_offset + off) != sizeof(sym))
				return;
			ssize_t n = pread(fd, name, sizeof(name) - 1, strtab.sh_offset + sym.st_name);
			name[n > 0 ? n : 0] = 0;
			if (strcmp(name, "ttd_stub_apply") == 0)
				t->apply_fn = sym.st_value;
			else if (strcmp(name, "stub_apply_args") == 0)
				t->apply_args = sym.st_value;
		}
		return;
	}
}

int stub_read_image(const char *path, struct target *t, struct err *e)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = -1;

	if (fd < 0 || pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG)) {
		err_set(e, ERR_INTERNAL, "cannot read ttd-stub at %s: run make -C native", path);
		goto out;
	}
	t->image_lo = UINT64_MAX;
	t->image_hi = 0;
	for (int i = 0; i < eh.e_phnum; i++) {
		if (pread(fd, &ph, sizeof(ph), eh.e_phoff + i * eh.e_phentsize) != sizeof(ph)) {
			err_set(e, ERR_INTERNAL, "cannot read ttd-stub's program headers at %s", path);
			goto out;
		}
		if (ph.p_type != PT_LOAD)
			continue;
		if (page_down(ph.p_vaddr) < t->image_lo)
			t->image_lo = page_down(ph.p_vaddr);
		if (page_up(ph.p_vaddr + ph.p_memsz) > t->image_hi)
			t->image_hi = page_up(ph.p_vaddr + ph.p_memsz);
	}
	read_apply_symbols(fd, &eh, t);
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

int stub_check_layout(const struct target *t, const struct spec *spec, struct err *e)
{
	for (uint32_t i = 0; i < spec->head.nr_maps; i++) {
		const struct stub_map *m = &spec->maps[i];
		if (m->rec_start < t->image_hi && m->rec_end > t->image_lo)
			return err_set(e, ERR_INTERNAL, "recorded mapping 0x%" PRIx64 "-0x%" PRIx64
				       " overlaps ttd-stub's image 0x%" PRIx64 "-0x%" PRIx64 ": rebuild "
				       "native/ with another STUB_BASE (native/Makefile)",
				       m->rec_start, m->rec_end, t->image_lo, t->image_hi);
	}
	return 0;
}

static const char *step_name(int step)
{
	switch (step) {
	case STEP_READ_LAYOUT: return "reading the layout";
	case STEP_UNMAP: return "unmapping its own mappings";
	case STEP_MMAP: return "mapping";
	case STEP_MADVISE: return "madvise(MADV_NOHUGEPAGE) of";
	case STEP_USERFAULTFD: return "userfaultfd()";
	case STEP_UFFDIO_API: return "UFFDIO_API";
	case STEP_UFFDIO_REGISTER: return "UFFDIO_REGISTER of";
	case STEP_PR_SET_MM_MAP: return "prctl(PR_SET_MM_MAP) with the recorded auxv and mm fields";
	case STEP_SEND_UFFD: return "sending its userfaultfd";
	case STEP_SECCOMP: return "installing the seccomp sandbox";
	case STEP_RLIMIT: return "setting its memory limit (RLIMIT_AS, RLIMIT_DATA)";
	case STEP_DROP_PRIVILEGES: return "dropping its privileges (capabilities, uid, gid)";
	case STEP_CLONE: return "creating a recorded thread (clone3)";
	case STEP_SEND_TIDS: return "sending its threads' ids";
	}
	return "an unknown step";
}

/*
 * fork, but with the recorded thread id when it is free (clone3 set_tid, as
 * CRIU restores pids; needs CAP_SYS_ADMIN): glibc keeps the tid in the thread
 * descriptor, and libthread_db (GDB's TLS lookups) insists they agree.
 */
static pid_t fork_as_recorded(pid_t want, int *same_tid)
{
	struct clone_args {
		uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size,
			 tls, set_tid, set_tid_size, cgroup;
	} args = { .exit_signal = SIGCHLD };

	if (want > 0) {
		args.set_tid = (uint64_t)&want;
		args.set_tid_size = 1;
		pid_t pid = syscall(SYS_clone3, &args, sizeof(args));
		if (pid > 0)
			*same_tid = 1;
		if (pid >= 0)
			return pid;
		pr_debug("clone3 with the recorded tid %d: %s; any pid will do", want, strerror(errno));
	}
	return fork();
}

/* In the child: fds 0-3 in place, nothing else open, traced, exec the stub. */
static __attribute__((noreturn)) void exec_stub(const struct stub_args *a, int devnull, int sock)
{
	char *argv[] = { "ttd-stub", NULL }, *envp[] = { NULL };
	/* Move everything above 3 first, then into place. */
	int in = fcntl(devnull, F_DUPFD, 10), out = fcntl(a->out_fd, F_DUPFD, 10);
	int err = fcntl(a->err_fd, F_DUPFD, 10), s = fcntl(sock, F_DUPFD, 10);

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (in < 0 || out < 0 || err < 0 || s < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
	    dup2(err, 2) < 0 || dup2(s, STUB_SOCK_FD) < 0)
		_exit(126);
	syscall(SYS_close_range, STUB_SOCK_FD + 1, ~0U, 0);
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL))
		_exit(126);
	execve(a->path, argv, envp);
	_exit(127);
}

static int spawn(struct target *t, const struct stub_args *a, int sock, struct err *e)
{
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pid_t pid;

	if (devnull < 0)
		return err_set(e, ERR_INTERNAL, "cannot open /dev/null: %s", strerror(errno));
	pid = fork_as_recorded((pid_t)a->spec->threads[0].tid, &t->same_tid);
	if (pid == 0)
		exec_stub(a, devnull, sock);
	close(devnull);
	if (pid < 0)
		return err_set(e, ERR_INTERNAL, "fork: %s", strerror(errno));
	t->pid = pid;
	return 0;
}

/* Wait (bounded) for the stub to stop with `sig`; the error says what happened otherwise. */
static int wait_stop(struct target *t, int sig, const char *when, struct err *e)
{
	int status;

	if (wait_bounded(t->pid, &status, __WALL, STUB_SETUP_MS) < 0)
		return err_set(e, ERR_INTERNAL, "waiting for ttd-stub to stop %s: %s", when,
			       strerror(errno));
	if (WIFSTOPPED(status) && WSTOPSIG(status) == sig)
		return 0;
	if (WIFEXITED(status) || WIFSIGNALED(status))
		t->pid = 0;
	return err_set(e, ERR_INTERNAL, "ttd-stub did not stop %s (wait status 0x%x): run make "
		       "-C native", when, status);
}

/*
 * The ids the sandboxed process runs the called code as, when the stub starts as
 * root: nobody's (65534), which owns nothing; otherwise it keeps ours.
 */
#define SANDBOX_UID 65534
#define SANDBOX_GID 65534

/* The recording's mapped size, the stub's image and the spec's margin: the most the
 * process may map (RLIMIT_AS). */
static uint64_t memory_limit(const struct target *t, const struct spec *spec)
{
	uint64_t total = (t->image_hi - t->image_lo) + spec->head.mem_margin;

	for (uint32_t i = 0; i < spec->head.nr_maps; i++)
		total += spec->maps[i].rec_end - spec->maps[i].rec_start;
	return total;
}

/* The layout, and with the sandbox the filter for this process (its pid is in it). */
static int send_layout(const struct target *t, int sock, const struct stub_args *a,
		       struct err *e)
{
	const struct spec *spec = a->spec;
	int sandbox = !!(spec->head.flags & SPEC_SANDBOX), root = geteuid() == 0;
	struct stub_layout l = { .nr_maps = spec->head.nr_maps, .nr_threads = spec->head.nr_threads,
				 .auxv_size = spec->head.auxv_size,
				 .uffd_features = a->uffd_features, .register_wp = a->register_wp,
				 .as_limit = memory_limit(t, spec),
				 .run_uid = sandbox && root ? SANDBOX_UID : (uint32_t)-1,
				 .run_gid = sandbox && root ? SANDBOX_GID : (uint32_t)-1 };
	struct sock_filter *filter = NULL;
	struct stub_thread *threads = calloc(l.nr_threads, sizeof(*threads));
	int ret = 0;

	if (!threads)
		return err_set(e, ERR_INTERNAL, "out of memory for %u threads", l.nr_threads);
	for (uint32_t i = 0; i < l.nr_threads; i++) {
		threads[i].tid = spec->threads[i].tid;
		memcpy(threads[i].name, spec->threads[i].name, STUB_COMM_LEN);
	}
	if (sandbox && sandbox_filter(t->pid, &filter, &l.filter_len, e)) {
		free(threads);
		return -1;
	}
	memcpy(l.mm, spec->head.mm, sizeof(l.mm));
	if (write_all(sock, &l, sizeof(l)) ||
	    write_all(sock, spec->maps, spec->head.nr_maps * sizeof(struct stub_map)) ||
	    write_all(sock, spec->auxv, spec->head.auxv_size) ||
	    write_all(sock, threads, l.nr_threads * sizeof(*threads)) ||
	    write_all(sock, filter, l.filter_len * sizeof(*filter)))
		ret = err_set(e, ERR_INTERNAL, "cannot send the layout to ttd-stub: %s",
			      strerror(errno));
	free(filter);
	free(threads);
	return ret;
}

/* The stub's userfaultfd into t->uffd; its seccomp listener, if any, into t->listener. */
static int recv_uffd(struct target *t, int sock, int sandbox, struct err *e)
{
	struct stub_reply reply = { .step = -1 };
	char control[CMSG_SPACE(2 * sizeof(int))] = { 0 };
	struct iovec iov = { &reply, sizeof(reply) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = control, .msg_controllen = sizeof(control) };
	ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
	int fds[2] = { -1, -1 };

	if (n != sizeof(reply))
		return err_set(e, ERR_INTERNAL, "ttd-stub ended before it was set up: run make -C native");
	if (reply.step == STEP_CLONE)
		return err_set(e, ERR_INTERNAL, "ttd-stub failed at %s %" PRIu64 ": %s",
			       step_name(reply.step), reply.rec_start, strerror(reply.err));
	if (reply.step != STEP_OK && reply.rec_end)
		return err_set(e, ERR_INTERNAL, "ttd-stub failed at %s recorded mapping 0x%" PRIx64
			       "-0x%" PRIx64 ": %s", step_name(reply.step), reply.rec_start,
			       reply.rec_end, strerror(reply.err));
	if (reply.step != STEP_OK)
		return err_set(e, ERR_INTERNAL, "ttd-stub failed at %s: %s", step_name(reply.step),
			       strerror(reply.err));
	if (!cmsg || cmsg->cmsg_type != SCM_RIGHTS)
		return err_set(e, ERR_INTERNAL, "ttd-stub sent no userfaultfd");
	memcpy(fds, CMSG_DATA(cmsg), cmsg->cmsg_len - CMSG_LEN(0));
	t->uffd = fds[0];
	t->listener = fds[1];
	if (sandbox && t->listener < 0)
		return err_set(e, ERR_INTERNAL, "ttd-stub sent no seccomp listener");
	return 0;
}

/* The id each thread got, in the spec's order; whether all are the recorded ones. */
static int recv_tids(struct target *t, int sock, const struct spec *spec, struct err *e)
{
	int32_t *tids = calloc(spec->head.nr_threads, sizeof(*tids));

	t->tids = calloc(spec->head.nr_threads, sizeof(*t->tids));
	if (!tids || !t->tids) {
		free(tids);
		return err_set(e, ERR_INTERNAL, "out of memory for %u threads", spec->head.nr_threads);
	}
	if (read_all(sock, tids, spec->head.nr_threads * sizeof(*tids))) {
		free(tids);
		return err_set(e, ERR_INTERNAL, "ttd-stub did not send its threads' ids");
	}
	t->nr_threads = spec->head.nr_threads;
	t->same_tid = t->same_tid && tids[0] == t->pid;
	for (uint32_t i = 0; i < t->nr_threads; i++) {
		t->tids[i] = i ? tids[i] : t->pid;
		t->same_tid = t->same_tid && t->tids[i] == spec->threads[i].tid;
	}
	free(tids);
	return 0;
}

/*
 * The recorded registers of thread i, as recorded: orig_rax too, so a thread
 * recorded inside a system call (rax -ERESTARTSYS) restarts it when it is
 * resumed, as the live one would (GDB's calls set orig_rax to -1 themselves).
 */
static int set_registers(struct target *t, const struct spec *spec, uint32_t i, struct err *e)
{
	const struct spec_thread *th = &spec->threads[i];
	pid_t tid = t->tids[i];
	struct user_regs_struct regs;
	struct iovec iov;

	memcpy(&regs, th->gpregs, sizeof(regs));
	if (ptrace(PTRACE_SETREGS, tid, NULL, &regs))
		return err_set(e, ERR_INTERNAL, "cannot set the recorded registers of thread %d "
			       "(PTRACE_SETREGS: %s)", th->tid, strerror(errno));
	if (spec->xstate[i]) {
		iov.iov_base = spec->xstate[i];
		iov.iov_len = th->xstate_size;
		if (ptrace(PTRACE_SETREGSET, tid, (void *)NT_X86_XSTATE, &iov) == 0) {
			t->xstate_restored = i ? t->xstate_restored : 1;
			return 0;
		}
		pr_debug("PTRACE_SETREGSET(NT_X86_XSTATE, %u bytes) of %d: %s; FXSAVE area only",
			 th->xstate_size, tid, strerror(errno));
	}
	if (i == 0)
		t->xstate_restored = 0;
	if (ptrace(PTRACE_SETFPREGS, tid, NULL, th->fpregs))
		return err_set(e, ERR_INTERNAL, "cannot set the recorded FP registers of thread %d "
			       "(PTRACE_SETFPREGS: %s)", th->tid, strerror(errno));
	return 0;
}

/* Trace the threads but ours (which is traced since exec): seized and interrupted
 * in their futex wait (ptrace stops, no signal). */
static int seize_threads(struct target *t, struct err *e)
{
	int status;

	for (uint32_t i = 1; i < t->nr_threads; i++) {
		pid_t tid = t->tids[i];
		if (ptrace(PTRACE_SEIZE, tid, NULL, (void *)PTRACE_O_EXITKILL) ||
		    ptrace(PTRACE_INTERRUPT, tid, NULL, NULL))
			return err_set(e, ERR_INTERNAL, "cannot trace thread %d of ttd-stub: %s", tid,
				       strerror(errno));
		if (wait_bounded(tid, &status, __WALL, STUB_SETUP_MS) != tid || !WIFSTOPPED(status))
			return err_set(e, ERR_INTERNAL, "thread %d of ttd-stub did not stop (wait "
				       "status 0x%x)", tid, status);
	}
	return 0;
}

static int set_all_registers(struct target *t, const struct spec *spec, struct err *e)
{
	for (uint32_t i = 0; i < t->nr_threads; i++)
		if (set_registers(t, spec, i, e))
			return -1;
	return 0;
}

static int open_proc(const struct target *t, const char *name, int flags, struct err *e)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/%s", t->pid, name);
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		err_set(e, ERR_INTERNAL, "cannot open %s: %s", path, strerror(errno));
	return fd;
}

/* Thread tid's state letter in /proc (R, S, T, t, Z...), or 0 when it cannot be read. */
static char thread_state(pid_t pid, pid_t tid)
{
	char path[64], buf[512], *end;
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	end = strrchr(buf, ')');
	return end && end[1] == ' ' ? end[2] : 0;
}

/* Every thread in the group stop (T). A detached thread passes through "running" in
 * the kernel on its way into it (woken from its ptrace stop, it stops again before
 * returning to user space): READY promises them all stopped. */
static int wait_all_stopped(const struct target *t, struct err *e)
{
	uint64_t deadline = now_ns() + STUB_SETUP_MS * 1000000ULL;

	for (uint32_t i = 0; i < t->nr_threads; i++) {
		while (thread_state(t->pid, t->tids[i]) != 'T') {
			if (now_ns() > deadline)
				return err_set(e, ERR_INTERNAL, "thread %d of ttd-stub did not stay "
					       "stopped", t->tids[i]);
			sched_yield();
		}
	}
	return 0;
}

/*
 * Detach leaving one group stop: every thread stopped, untraced, ready for
 * gdbserver --attach. Our thread, resumed with SIGSTOP, starts the group stop and
 * reports its part in it; from then on the group stop is in effect, so a thread
 * detached stays stopped (detached before, a seized thread would run the program
 * with its recorded registers).
 */
static int detach_stopped(struct target *t, struct err *e)
{
	int status;

	if (ptrace(PTRACE_CONT, t->pid, NULL, (void *)SIGSTOP))
		return err_set(e, ERR_INTERNAL, "cannot resume ttd-stub: %s", strerror(errno));
	if (wait_stop(t, SIGSTOP, "in the group stop", e))
		return -1;
	for (uint32_t i = 1; i < t->nr_threads; i++)
		if (ptrace(PTRACE_DETACH, t->tids[i], NULL, NULL))
			return err_set(e, ERR_INTERNAL, "cannot detach from thread %d of ttd-stub: %s",
				       t->tids[i], strerror(errno));
	if (ptrace(PTRACE_DETACH, t->pid, NULL, NULL))
		return err_set(e, ERR_INTERNAL, "cannot detach from ttd-stub: %s", strerror(errno));
	if (wait_bounded(t->pid, &status, WUNTRACED, STUB_SETUP_MS) < 0)
		return err_set(e, ERR_INTERNAL, "waiting for ttd-stub's group stop: %s",
			       strerror(errno));
	if (!WIFSTOPPED(status))
		return err_set(e, ERR_INTERNAL, "ttd-stub did not stay stopped (wait status 0x%x)",
			       status);
	return wait_all_stopped(t, e);
}

int stub_start(struct target *t, const struct stub_args *a, struct err *e)
{
	int sv[2], ret = -1;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return err_set(e, ERR_INTERNAL, "socketpair: %s", strerror(errno));
	if (spawn(t, a, sv[1], e))
		goto out;
	close(sv[1]);
	sv[1] = -1;
	if (wait_stop(t, SIGTRAP, "at exec", e))
		goto out;
	if (ptrace(PTRACE_SETOPTIONS, t->pid, NULL, (void *)PTRACE_O_EXITKILL) ||
	    ptrace(PTRACE_CONT, t->pid, NULL, NULL)) {
		err_set(e, ERR_INTERNAL, "cannot trace ttd-stub: %s", strerror(errno));
		goto out;
	}
	if (send_layout(t, sv[0], a, e) ||
	    recv_uffd(t, sv[0], !!(a->spec->head.flags & SPEC_SANDBOX), e) ||
	    recv_tids(t, sv[0], a->spec, e) || wait_stop(t, SIGSTOP, "after setup", e) ||
	    seize_threads(t, e) || set_all_registers(t, a->spec, e) || detach_stopped(t, e))
		goto out;
	t->pidfd = syscall(SYS_pidfd_open, t->pid, 0);
	if (t->pidfd < 0) {
		err_set(e, ERR_INTERNAL, "pidfd_open of the process: %s", strerror(errno));
		goto out;
	}
	t->pagemap_fd = open_proc(t, "pagemap", O_RDONLY, e);
	t->mem_fd = open_proc(t, "mem", O_RDONLY, e);
	if (t->pagemap_fd >= 0 && t->mem_fd >= 0)
		ret = 0;
out:
	close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	return ret;
}

/* Kill every child of ours listed in /proc/self/task/TID/children but `spare`; how
 * many there were. */
static int kill_children(pid_t spare)
{
	DIR *tasks = opendir("/proc/self/task");
	struct dirent *task;
	int found = 0;

	while (tasks && (task = readdir(tasks))) {
		char path[300];
		if (task->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/children", task->d_name);
		FILE *f = fopen(path, "re");
		int child;
		while (f && fscanf(f, "%d", &child) == 1) {
			if (child == spare)
				continue;
			kill(child, SIGKILL);
			found++;
		}
		if (f)
			fclose(f);
	}
	if (tasks)
		closedir(tasks);
	return found;
}

void stub_end_descendants(pid_t process)
{
	/* a killed child ends at once; what it started comes to us as it does */
	for (int round = 0; round < 100 && kill_children(process); round++)
		while (wait_bounded(-1, NULL, __WALL, DESCENDANT_REAP_MS) > 0)
			;
}

int stub_kill(struct target *t, int timeout_ms)
{
	int ret = 0;

	if (t->pid > 0) {
		kill(t->pid, SIGKILL);
		pid_t r = wait_bounded(t->pid, NULL, __WALL, timeout_ms);
		if (r == t->pid || (r < 0 && errno == ECHILD))
			t->pid = 0;
		else
			ret = -1;
	}
	stub_end_descendants(t->pid);
	return ret;
}
