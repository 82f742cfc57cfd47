/* Incremental-capture target: a 64 MiB heap block of pseudo-random (incompressible)
 * bytes; each of ROUNDS rounds rewrites PAGES_PER_ROUND pages, then calls checkpoint(). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HEAP_BYTES (64u << 20)
#define PAGE 4096u
#define PAGES_PER_ROUND 10

static uint64_t state = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return state;
}

__attribute__((noinline)) void checkpoint(int round)
{
	__asm__ volatile("" : : "r"(round) : "memory");
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 100;
	uint64_t *heap = aligned_alloc(PAGE, HEAP_BYTES); /* page-aligned: one write, one page */

	for (size_t i = 0; i < HEAP_BYTES / 8; i++)
		heap[i] = next();
	for (int r = 1; r <= rounds; r++) {
		for (int k = 0; k < PAGES_PER_ROUND; k++) {
			uint64_t *page = heap + (next() % (HEAP_BYTES / PAGE)) * (PAGE / 8);
			for (size_t j = 0; j < PAGE / 8; j++)
				page[j] = next();
		}
		checkpoint(r);
	}
	free(heap);
	return 0;
}
