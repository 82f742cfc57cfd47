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
static int wake[2]; /* the handler writes a byte: a signal is never lost, as with pause() */

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
	char c = 'w';
	write(wake[1], &c, 1);
}

int main(int argc, char **argv)
{
	heap_bytes = (size_t)atol(argv[1]) << 20;
	heap = aligned_alloc(PAGE, heap_bytes);
	for (size_t i = 0; i < heap_bytes / 8; i++)
		heap[i] = next();
	if (pipe(wake))
		return 1;
	signal(SIGUSR1, on_usr1);
	write(1, "r", 1);
	for (;;) {
		char c;
		if (read(wake[0], &c, 1) != 1)
			continue;
		for (int k = 0; k < 10; k++) {
			uint64_t *page = heap + (next() % (heap_bytes / PAGE)) * (PAGE / 8);
			for (size_t j = 0; j < PAGE / 8; j++)
				page[j] = next();
		}
		write(1, "c", 1);
	}
}
