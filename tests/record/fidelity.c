/* Fidelity target: globals, a heap list, three threads, and known values in the
 * vector and x87 registers of the main thread when it stops in stop_here(). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct node {
	long value;
	struct node *next;
	char tag[40];
};

long counter = 41;
char banner[64] = "fidelity target";
static struct node *head;
static pthread_barrier_t ready;

__attribute__((noinline)) void stop_here(int step)
{
	counter += step;
}

static void *worker(void *arg)
{
	volatile long spin = (long)arg;

	pthread_barrier_wait(&ready);
	for (;;)
		pause(); /* stays blocked in a syscall while main is stopped */
	return (void *)spin;
}

static void load_vector_registers(void)
{
	static uint8_t pattern[32 * 4];

	for (unsigned i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 37 + 11);
	__asm__ volatile("vmovdqu (%0), %%ymm2\n\t"
			 "vmovdqu 32(%0), %%ymm7\n\t"
			 "vmovdqu 64(%0), %%ymm12\n\t"
			 "fldpi\n\t"
			 "fld1\n\t"
			 : : "r"(pattern) : "xmm2", "xmm7", "xmm12", "st", "st(1)");
}

int main(void)
{
	pthread_t threads[2];

	pthread_barrier_init(&ready, NULL, 3);
	for (long i = 0; i < 2; i++)
		pthread_create(&threads[i], NULL, worker, (void *)i);
	for (int i = 0; i < 300; i++) {
		struct node *n = malloc(sizeof(*n));
		n->value = i * i;
		snprintf(n->tag, sizeof(n->tag), "node-%d", i);
		n->next = head;
		head = n;
	}
	char *big = malloc(3 << 20); /* a separate mmap'ed region, half populated */
	memset(big, 0x5a, 3 << 19);
	pthread_barrier_wait(&ready);
	load_vector_registers();
	stop_here(1);
	printf("%ld %s %p\n", counter, banner, (void *)big);
	return 0;
}
