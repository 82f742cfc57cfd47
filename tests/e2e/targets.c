/* Target for call-at-time end-to-end tests: state that grows over steps 1..3,
   reached by functions a test calls at each recorded tick. `checkpoint` is
   where the recording (and the live reference run) stops. */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct node { int value; struct node *next; };
struct pair { long whole; double half; };

struct node *head;
int counter_a;                 /* .bss, first page */
char spread_1[3 * 4096];
int counter_b;                 /* .bss, pages later */
char spread_2[3 * 4096];
int counter_c = 7;             /* .data */
__thread int tls_counter;
int worker_tid;
sem_t worker_ready;

int list_length(void) { int n = 0; for (struct node *p = head; p; p = p->next) n++; return n; }
int list_sum(void) { int s = 0; for (struct node *p = head; p; p = p->next) s += p->value; return s; }
int push(int value)
{
	struct node *n = malloc(sizeof *n);
	n->value = value;
	n->next = head;
	head = n;
	return list_length();
}
int bump_all(int by) { counter_a += by; counter_b += 2 * by; counter_c += 3 * by; return counter_a + counter_b + counter_c; }
struct pair make_pair(long whole) { struct pair p = { whole, whole / 2.0 }; return p; }
double average(void) { int n = list_length(); return n ? (double)list_sum() / n : 0.0; }
int bump_tls(int by) { tls_counter += by; return tls_counter; }
int say(int n) { return printf("say %d of %d\n", n, list_length()); }
int complain(int n) { return fprintf(stderr, "complaint %d\n", n); }  /* unbuffered */
long depth(int n)
{
	volatile char frame[200];
	frame[0] = (char)n;
	return n == 0 ? 0 : depth(n - 1) + 1 + frame[0] - (char)n;
}
long grow(int kib)
{
	char *block = malloc((size_t)kib << 10);  /* above the mmap threshold: a new mapping */
	memset(block, 1, (size_t)kib << 10);
	return block != NULL;
}
int bump_int(int *p) { return ++*p; }
int spin(void) { for (;;) __asm__ volatile(""); return 0; }
void checkpoint(int step) { __asm__ volatile("" ::"r"(step) : "memory"); }

static void *worker(void *arg)
{
	(void)arg;
	tls_counter = 100;
	worker_tid = gettid();
	sem_post(&worker_ready);
	for (;;)
		pause();
	return NULL;
}

int main(void)
{
	pthread_t thread;
	sem_init(&worker_ready, 0, 0);
	pthread_create(&thread, NULL, worker, NULL);
	sem_wait(&worker_ready);
	for (int step = 1; step <= 3; step++) {
		push(step * 10);
		bump_all(step);
		tls_counter += step;
		checkpoint(step);
	}
	return 0;
}
