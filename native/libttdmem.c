/*
 * libttdmem.so: LD_PRELOAD for gdbserver attached to a rematerialized process.
 *
 * pread/pwrite on /proc/PID/mem of a userfaultfd-registered page that is not
 * filled yet fail with EIO: that path does not forward faults to userfaultfd
 * (DESIGN.md "GDB cannot read missing pages"). process_vm_readv does. So:
 *   - pread64 on a /proc/PID/mem descriptor: process_vm_readv first; if that
 *     does not give every byte (e.g. an unreadable page), the real pread;
 *     a read that fails both ways (a page the page server poisoned, a process
 *     gone) is EIO at once: gdbserver says "Cannot access memory";
 *   - pwrite64 on one: touch every page with a 1-byte process_vm_readv so it
 *     is present, then the real pwrite (which, unlike process_vm_writev, may
 *     write read-only pages: breakpoints into code).
 * And, loaded (a constructor):
 *   - PR_SET_PDEATHSIG(SIGKILL): a gdbserver whose GDB died ends with it (an
 *     orphaned gdbserver spun at 100% CPU, writing to its log);
 *   - its log is bounded: when fd 2 is a regular file, RLIMIT_FSIZE stops it
 *     LOG_MAX bytes past where it stands (writes past it fail with EFBIG;
 *     SIGXFSZ is ignored). gdbserver writes no other regular file: its writes
 *     to /proc/PID/mem are not bound by RLIMIT_FSIZE (procfs does not check it).
 * Rules: no allocation, raw syscalls for the work (never the libc wrappers we
 * override), everything else passes through untouched.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define PAGE_SIZE 4096UL
#define LOG_MAX (1UL << 20)	/* bytes of gdbserver's log from now on */

__attribute__((constructor)) static void ttdmem_init(void)
{
	struct stat st;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(1);	/* the parent died before the prctl */
	if (fstat(2, &st) == 0 && S_ISREG(st.st_mode)) {
		off_t at = lseek(2, 0, SEEK_CUR);
		rlim_t limit = (at > st.st_size ? at : st.st_size) + LOG_MAX;
		struct rlimit fsize = { limit, limit };
		signal(SIGXFSZ, SIG_IGN);
		setrlimit(RLIMIT_FSIZE, &fsize);
	}
}

static ssize_t raw_pread(int fd, void *buf, size_t count, off_t off)
{
	return syscall(SYS_pread64, fd, buf, count, off);
}

static ssize_t raw_pwrite(int fd, const void *buf, size_t count, off_t off)
{
	return syscall(SYS_pwrite64, fd, buf, count, off);
}

/* The pid whose /proc/PID/mem `fd` is, or -1. */
static pid_t mem_fd_pid(int fd)
{
	char link[64], target[128];
	ssize_t n;
	int pid, len = 0;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = syscall(SYS_readlink, link, target, sizeof(target) - 1);
	if (n <= 0)
		return -1;
	target[n] = 0;
	/* "/proc/PID/mem" or "/proc/PID/task/TID/mem" */
	if (sscanf(target, "/proc/%d/%n", &pid, &len) != 1 || len == 0)
		return -1;
	n = strlen(target);
	if (n < 4 || strcmp(target + n - 4, "/mem") != 0)
		return -1;
	return pid;
}

static ssize_t remote_read(pid_t pid, void *buf, size_t count, uint64_t target_addr)
{
	struct iovec local = { buf, count }, remote = { (void *)target_addr, count };

	return syscall(SYS_process_vm_readv, pid, &local, 1, &remote, 1, 0);
}

ssize_t pread64(int fd, void *buf, size_t count, off_t off)
{
	pid_t pid = mem_fd_pid(fd);

	if (pid > 0 && count) {
		ssize_t n = remote_read(pid, buf, count, (uint64_t)off);
		if (n == (ssize_t)count)
			return n;
		ssize_t r = raw_pread(fd, buf, count, off);
		if (r == 0) {	/* the process's memory is gone: a failed read, not an end */
			errno = EIO;
			return -1;
		}
		return r;	/* what it read, or -1 with its errno (EIO: a page not served) */
	}
	return raw_pread(fd, buf, count, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t off)
{
	pid_t pid = mem_fd_pid(fd);

	if (pid > 0 && count) {
		/* pages counted, not compared with off + count: near the top of the address
		 * space the page address wraps to 0 and a comparison never ends the loop */
		uint64_t first = (uint64_t)off & ~(PAGE_SIZE - 1);
		uint64_t pages = ((uint64_t)off - first + count + PAGE_SIZE - 1) / PAGE_SIZE;
		char byte;
		for (uint64_t i = 0; i < pages; i++)
			remote_read(pid, &byte, 1, first + i * PAGE_SIZE);	/* fault it in */
	}
	return raw_pwrite(fd, buf, count, off);
}

/* glibc on x86_64 exports pread/pwrite as separate symbols of the same functions. */
ssize_t pread(int fd, void *buf, size_t count, off_t off) __attribute__((alias("pread64")));
ssize_t pwrite(int fd, const void *buf, size_t count, off_t off) __attribute__((alias("pwrite64")));
