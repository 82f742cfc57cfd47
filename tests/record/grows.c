/* ttd record target of the full-disk test: each of argv[1] rounds fills a new MiB with
 * pseudo-random bytes (they do not compress), then calls checkpoint(round). */
#include <stdint.h>
#include <stdlib.h>

static uint64_t state = 0x9e3779b97f4a7c15ull;

__attribute__((noinline)) void checkpoint(int round)
{
	__asm__ volatile("" : : "r"(round) : "memory");
}

int grown;  /* the rounds done: read by `ttd call` at a recorded tick */

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 8;

	for (int r = 1; r <= rounds; r++) {
		uint64_t *block = malloc(1 << 20);

		for (size_t i = 0; i < (1 << 20) / 8; i++) {
			state ^= state << 13;
			state ^= state >> 7;
			state ^= state << 17;
			block[i] = state;
		}
		grown = r;
		checkpoint(r);
	}
	return 0;
}
