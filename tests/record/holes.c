/* A file mapping longer than its file: the pages past the end cannot be read
 * (SIGBUS in the process, EIO through /proc/PID/mem); the page before can. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

char *mapped;

__attribute__((noinline)) void stop_here(void)
{
	__asm__ volatile("" : : : "memory");
}

int main(int argc, char **argv)
{
	int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || ftruncate(fd, 4096) != 0) {
		perror(argv[1]);
		return 1;
	}
	mapped = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mapped == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	strcpy(mapped, "inside the file");
	stop_here();
	return 0;
}
