/* Benchmark target: a heap of N MiB filled with random bytes (incompressible,
 * every page populated). Each byte read on stdin changes CHANGED pages at random
 * and answers one byte on stdout, so the benchmark can snapshot between rounds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 64;
	int changed = argc > 2 ? atoi(argv[2]) : 10;
	size_t len = mib << 20, pages = len / 4096;
	unsigned long *heap = malloc(len);
	unsigned long x = 88172645463325252UL;
	char c;

	if (!heap) {
		perror("malloc");
		return 1;
	}
	for (size_t i = 0; i < len / sizeof(*heap); i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		heap[i] = x;
	}
	if (write(1, "r", 1) != 1)
		return 1;
	while (read(0, &c, 1) == 1) {
		for (int k = 0; k < changed; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			heap[(x % pages) * 512] ^= x;
		}
		if (write(1, "r", 1) != 1)
			return 1;
	}
	return 0;
}
