/* Arming the write tracking leaves nothing in the program: after checkpoint(1) (the first
 * snapshot, where it is armed) the program's next open() gets the number it would have got
 * and errno is what it set. Prints "fd N errno E". */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>

__attribute__((noinline)) void checkpoint(int round)
{
	__asm__ volatile("" : : "r"(round) : "memory");
}

int main(void)
{
	int fd, err;

	errno = 77;
	checkpoint(1);
	err = errno;
	fd = open("/dev/null", O_RDONLY);
	checkpoint(2);
	printf("fd %d errno %d\n", fd, err);
	return 0;
}
