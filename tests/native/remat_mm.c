/* Target for tests/native: after tick 1 (its int3) it changes its memory map the
 * way called code might: madvise(MADV_DONTNEED) on recorded pages; it stops itself
 * (SIGSTOP) so the test can look at the written set; then it grows the region in
 * place with mremap and reads the new part, moves recorded pages elsewhere and
 * reads them there. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void)
{
	/* 96 pages reserved, 64 kept: the hole above lets the region grow in place */
	char *region = mmap(NULL, 96 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	munmap(region + 64 * 4096, 32 * 4096);

	for (int i = 0; i < 64; i++)
		memset(region + i * 4096, 'a' + i % 26, 4096);
	printf("region=%p\n", region);
	fflush(stdout);
	asm volatile("int3");	/* tick 1 */

	madvise(region, 4 * 4096, MADV_DONTNEED);
	printf("dontneed: %d %d %c\n", region[0], region[3 * 4096 + 5], region[4 * 4096]);
	fflush(stdout);
	kill(getpid(), SIGSTOP);

	char *grown = mremap(region, 64 * 4096, 96 * 4096, 0);
	printf("grown: %d %c\n", grown == region ? grown[80 * 4096] : -1, region[63 * 4096]);
	fflush(stdout);
	char *scratch = mmap(NULL, 8 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *moved = mremap(region + 8 * 4096, 8 * 4096, 8 * 4096, MREMAP_MAYMOVE | MREMAP_FIXED, scratch);
	printf("moved: %c %c\n", moved[4096], moved[7 * 4096 + 9]);
	return 0;
}
