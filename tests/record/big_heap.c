/* 256 MiB of heap, every page written before checkpoint(1); then exactly 10 of its pages
 * are written, and checkpoint(2). Prints the heap's address and the 10 page numbers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 4096
#define PAGES ((256u << 20) / PAGE)

__attribute__((noinline)) void checkpoint(int round)
{
	__asm__ volatile("" : : "r"(round) : "memory");
}

int main(void)
{
	unsigned char *heap = aligned_alloc(PAGE, (size_t)PAGES * PAGE);
	unsigned written[10];

	for (size_t p = 0; p < PAGES; p++)
		memset(heap + p * PAGE, 1 + p % 251, PAGE);
	checkpoint(1);
	for (int k = 0; k < 10; k++) {
		written[k] = (unsigned)((k * 6151u + 17) % PAGES);
		heap[(size_t)written[k] * PAGE + k] = 0;
	}
	checkpoint(2);
	printf("heap %p pages", (void *)heap);
	for (int k = 0; k < 10; k++)
		printf(" %u", written[k]);
	printf("\n");
	return 0;
}
