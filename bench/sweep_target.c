/* Benchmark target of bench/sweep.py: a heap of N MiB (argv[1], default 64) filled with
 * random bytes, then TICKS rounds (argv[2], default 200), each changing CHANGED pages
 * (argv[3], default 10) at random and calling checkpoint(round), where
 * `ttd record --break checkpoint` snapshots it. value() is what a sweep calls. */
#include <stdio.h>
#include <stdlib.h>

static unsigned long *heap;
static size_t pages;
long rounds;

long value(void) { return rounds * 1000 + (long)(heap[0] & 0xff); }

void checkpoint(long n) { __asm__ volatile("" : : "r"(n) : "memory"); }

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 64;
	long ticks = argc > 2 ? atol(argv[2]) : 200;
	int changed = argc > 3 ? atoi(argv[3]) : 10;
	size_t len = mib << 20;
	unsigned long x = 88172645463325252UL;

	pages = len / 4096;
	heap = malloc(len);
	if (!heap) {
		perror("malloc");
		return 1;
	}
	for (size_t i = 0; i < len / sizeof(*heap); i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		heap[i] = x;
	}
	for (rounds = 1; rounds <= ticks; rounds++) {
		for (int k = 0; k < changed; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			heap[(x % pages) * 512] ^= x;
		}
		checkpoint(rounds);
	}
	return 0;
}
