/* A program that uses userfaultfd itself, on memory it had before the first snapshot: after
 * checkpoint(1) it makes a userfaultfd and registers its buffer, which a recorder's own
 * registration would refuse (EBUSY), then writes it and calls checkpoint(2) and (3).
 * Prints "own userfaultfd ok" when its registration worked. */
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LEN (64 * 4096)

int value;  /* 1, 2, 3 at the checkpoints */

__attribute__((noinline)) void checkpoint(int round)
{
	__asm__ volatile("" : : "r"(round) : "memory");
}

int main(void)
{
	char *buf = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .range = { (unsigned long)buf, LEN },
				       .mode = UFFDIO_REGISTER_MODE_MISSING };
	int uffd, ok;

	memset(buf, 'b', LEN);
	value = 1;
	checkpoint(1);
	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	ok = uffd >= 0 && ioctl(uffd, UFFDIO_API, &api) == 0 && ioctl(uffd, UFFDIO_REGISTER, &reg) == 0;
	if (ok)
		ok = ioctl(uffd, UFFDIO_UNREGISTER, &reg.range) == 0;
	memset(buf, 'c', 4096);
	value = 2;
	checkpoint(2);
	value = 3;
	checkpoint(3);
	printf(ok ? "own userfaultfd ok\n" : "own userfaultfd FAILED\n");
	return ok ? 0 : 1;
}
