/* Capture outside GDB: argv[1] MiB of pseudo-random heap, a marker in .data; on each
 * SIGUSR1 it rewrites 10 heap pages and answers one byte on stdout. Then waits. */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE 4096u

char marker[32] = "hold-marker";
static uint64_t state = 88172645463325252ull;
static uint64_t *heap;
static size_t heap_bytes;
static volatile sig_atomic_t pending;

static uint64_t next(void)
{
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return state;
}

static void on_usr1(int sig)
{
	(void)sig;
	pending = 1;
}

int main(int argc, char **argv)
{
	heap_bytes = (size_t)atol(argv[1]) << 20;
	heap = aligned_alloc(PAGE, heap_bytes);
	for (size_t i = 0; i < heap_bytes / 8; i++)
		heap[i] = next();
	signal(SIGUSR1, on_usr1);
	write(1, "r", 1);
	for (;;) {
		while (!pending)
			pause();
		pending = 0;
		for (int k = 0; k < 10; k++) {
			uint64_t *page = heap + (next() % (heap_bytes / PAGE)) * (PAGE / 8);
			for (size_t j = 0; j < PAGE / 8; j++)
				page[j] = next();
		}
		write(1, "c", 1);
	}
}
