/* Benchmark target of bench/team.py: a heap of N MiB of random bytes (incompressible,
 * every page its own content), then ready() (the recorded tick) and the exit.
 * probe(k) reads k pages spread over the heap: a call that touches k + a few pages. */
#include <stdio.h>
#include <stdlib.h>

unsigned long *heap;
size_t heap_pages;

long probe(long pages)
{
	long sum = 0;

	for (long k = 0; k < pages; k++)
		sum += heap[(k * (heap_pages / pages)) * 512];
	return sum;
}

void ready(void)
{
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 64;
	size_t len = mib << 20;
	unsigned long x = 88172645463325252UL;

	heap = malloc(len);
	if (!heap) {
		perror("malloc");
		return 1;
	}
	heap_pages = len / 4096;
	for (size_t i = 0; i < len / sizeof(*heap); i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		heap[i] = x;
	}
	ready();
	return 0;
}
