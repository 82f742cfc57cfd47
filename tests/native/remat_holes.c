/* Target for tests/native/test_containment.py: prints the addresses of `action` and
 * `arg`, stops at its int3 (tick 1; recorded with max_ticks=1, so the live run ends
 * there), and, rematerialized, does what the test wrote into `action` with `arg`:
 * the ways out of issue 8 the sandbox must close. One line of results at the end. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { FSETOWN = 1, STAT, MADVISE, PRIVILEGES, ALLOC, OTHER_ABI, MANY, OUTPUT };

volatile long action, arg;
static char page[4096] __attribute__((aligned(4096)));

#define ERR(call) ((call) < 0 ? errno : 0)

/* O_ASYNC on pipes whose owner is arg (a process group when negative; F_SETOWN_EX: the
 * pid -arg), with SIGKILL as their signal; then make them readable. */
static void fsetown(void)
{
	int a[2], b[2];
	struct f_owner_ex owner = { F_OWNER_PID, (pid_t)-arg };

	pipe(a);
	pipe(b);
	int own = ERR(fcntl(a[0], F_SETOWN, (int)arg)), sig = ERR(fcntl(a[0], F_SETSIG, SIGKILL));
	int async = ERR(fcntl(a[0], F_SETFL, fcntl(a[0], F_GETFL) | O_ASYNC));
	int own_ex = ERR(fcntl(b[0], F_SETOWN_EX, &owner)), sig_b = ERR(fcntl(b[0], F_SETSIG, SIGKILL));
	int async_b = ERR(fcntl(b[0], F_SETFL, fcntl(b[0], F_GETFL) | O_ASYNC));
	int nonblock = ERR(fcntl(a[0], F_SETFL, O_NONBLOCK)), getfd = ERR(fcntl(a[0], F_GETFD));
	int lock = ERR(fcntl(0, F_SETLK, &(struct flock){ .l_type = F_RDLCK }));
	write(a[1], "x", 1);
	write(b[1], "x", 1);
	printf("setown %d setsig %d async %d setown_ex %d %d %d nonblock %d getfd %d lock %d\n",
	       own, sig, async, own_ex, sig_b, async_b, nonblock, getfd, lock);
}

/* Looking at files: refused with the path; fstat of its own descriptor passes. */
static void look(void)
{
	struct stat st;
	char target[64];
	int stat_e = ERR(stat("/etc/passwd", &st));
	int proc_e = ERR(stat("/proc/1", &st));
	int fstat_e = ERR(fstat(1, &st));
	int fifo = S_ISFIFO(st.st_mode);
	int cwd_e = ERR(fstatat(AT_FDCWD, "", &st, AT_EMPTY_PATH));
	int statx_e = ERR(syscall(SYS_statx, AT_FDCWD, "/etc/hostname", 0, 0x7ff, page));
	int statx_fd = ERR(syscall(SYS_statx, 2, "", AT_EMPTY_PATH, 0x7ff, page));
	int access_e = ERR(access("/etc/shadow", R_OK));
	int faccess_e = ERR(syscall(SYS_faccessat2, AT_FDCWD, "/etc/group", R_OK, 0));
	int readlink_e = ERR(readlink("/proc/self/exe", target, sizeof(target)));
	printf("stat %d proc %d fstat %d fifo %d cwd %d statx %d statx-fd %d access %d "
	       "faccessat2 %d readlink %d\n", stat_e, proc_e, fstat_e, fifo, cwd_e, statx_e,
	       statx_fd, access_e, faccess_e, readlink_e);
}

static void advise(void)
{
	page[0] = 1;
	int hwpoison = ERR(madvise(page, 4096, MADV_HWPOISON));
	int soft_offline = ERR(madvise(page, 4096, 101));
	int mergeable = ERR(madvise(page, 4096, MADV_MERGEABLE));
	int dontneed = ERR(madvise(page, 4096, MADV_DONTNEED));
	int willneed = ERR(madvise(page, 4096, MADV_WILLNEED));
	printf("hwpoison %d soft-offline %d mergeable %d dontneed %d willneed %d\n", hwpoison,
	       soft_offline, mergeable, dontneed, willneed);
}

static void privileges(void)
{
	uid_t r, e, s;
	gid_t gr, ge, gs;

	getresuid(&r, &e, &s);
	getresgid(&gr, &ge, &gs);
	printf("uid %u %u %u gid %u %u %u groups %d setuid %d\n", r, e, s, gr, ge, gs,
	       getgroups(0, NULL), ERR(setuid(0)));
}

/* arg MiB at once: past the memory limit, ENOMEM. */
static void alloc(void)
{
	void *p = mmap(NULL, (size_t)arg << 20, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	int mmap_e = p == MAP_FAILED ? errno : 0;
	if (p != MAP_FAILED)
		munmap(p, (size_t)arg << 20);
	errno = 0;
	void *m = malloc((size_t)arg << 20);
	printf("mmap %d malloc %s %d small %s\n", mmap_e, m ? "ok" : "null", errno,
	       malloc(1 << 20) ? "ok" : "null");
}

static long int80(long nr, long a)
{
	long ret;

	asm volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a) : "memory");
	return ret;
}

/* int $0x80 getpid (20) and execve (11), x32 getpid (0x40000000 | 39) */
static void other_abi(void)
{
	long getpid32 = int80(20, 0), exec32 = int80(11, 0);
	long x32 = syscall(0x40000000 | 39);
	printf("i386-getpid %ld i386-execve %ld x32-getpid %ld %d\n", getpid32, exec32, x32, errno);
}

/* arg distinct refused calls: unknown system call numbers and unlink of distinct paths */
static void many(void)
{
	char path[64];

	for (long i = 0; i < arg; i++) {
		syscall(1000 + i);
		snprintf(path, sizeof(path), "/nonexistent/%ld", i);
		unlink(path);
	}
	unlink("/nonexistent/\x1b]52;c;x\x07");	/* control bytes in a detail */
	printf("many %ld\n", arg);
}

/* arg MiB to stdout, a recognizable first and last line */
static void output(void)
{
	static char line[1024];

	memset(line, 'm', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\n';
	fputs("first line\n", stdout);
	for (long i = 0; i < arg * 1024; i++)
		fwrite(line, 1, sizeof(line), stdout);
	fputs("last line\n", stdout);
}

int main(void)
{
	printf("action=%p arg=%p\n", (void *)&action, (void *)&arg);
	fflush(stdout);
	asm volatile("int3");	/* tick 1 */

	switch (action) {
	case FSETOWN: fsetown(); break;
	case STAT: look(); break;
	case MADVISE: advise(); break;
	case PRIVILEGES: privileges(); break;
	case ALLOC: alloc(); break;
	case OTHER_ABI: other_abi(); break;
	case MANY: many(); break;
	case OUTPUT: output(); break;
	}
	return 0;
}
