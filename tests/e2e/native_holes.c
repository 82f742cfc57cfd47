/* Target for tests/e2e/test_native_containment.py: functions a user might call at a
 * tick that try the ways out of issue 8; recorded at the hits of checkpoint. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static char page[4096] __attribute__((aligned(4096)));
int step;

/* O_ASYNC on a pipe owned by `owner` (< 0: a process group), SIGKILL as its signal, then
 * readable: how many of F_SETOWN, F_SETSIG, O_ASYNC were refused with EPERM. */
int try_fsetown(int owner)
{
	int p[2], refused = 0;

	if (pipe(p))
		return -errno;
	refused += fcntl(p[0], F_SETOWN, owner) < 0 && errno == EPERM;
	refused += fcntl(p[0], F_SETSIG, SIGKILL) < 0 && errno == EPERM;
	refused += fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_ASYNC) < 0 && errno == EPERM;
	write(p[1], "x", 1);
	close(p[0]);
	close(p[1]);
	return refused;
}

int try_stat(const char *path) { struct stat st; return stat(path, &st) == 0 ? 0 : errno; }
int fstat_is_pipe(int fd) { struct stat st; return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode); }
int try_madvise(int advice) { page[0] = 1; return madvise(page, 4096, advice) == 0 ? 0 : errno; }

/* mib MiB at once: 0, or errno (ENOMEM past the memory limit) */
int try_alloc(long mib)
{
	void *p = mmap(NULL, (size_t)mib << 20, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return errno;
	munmap(p, (size_t)mib << 20);
	return 0;
}

long try_int80(long nr)
{
	long ret;

	asm volatile("int $0x80" : "=a"(ret) : "a"(nr) : "memory");
	return ret;
}

/* n distinct refused calls (unknown system call numbers) */
int many_blocked(int n)
{
	for (int i = 0; i < n; i++)
		syscall(1000 + i);
	return n;
}

/* mib MiB to stdout */
int write_mib(int mib)
{
	static char chunk[65536];

	memset(chunk, 'w', sizeof(chunk));
	for (int i = 0; i < mib * 16; i++)
		if (write(1, chunk, sizeof(chunk)) != sizeof(chunk))
			return -1;
	return mib;
}

void checkpoint(int n) { __asm__ volatile("" ::"r"(n) : "memory"); }

int main(void)
{
	for (step = 1; step <= 2; step++)
		checkpoint(step);
	return 0;
}
