/* Benchmark target for bench/travel.py: SIZE_MIB of heap touched, then TICKS times:
   about 10 pages changed, one node more on a list, checkpoint(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 4096
#define PAGES_PER_TICK 10

struct node { int value; struct node *next; };
struct node *head;
char *ballast;

int list_length(void) { int n = 0; for (struct node *p = head; p; p = p->next) n++; return n; }
void checkpoint(void) { __asm__ volatile("" ::: "memory"); }

int main(int argc, char **argv)
{
	size_t size_mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 64;
	int ticks = argc > 2 ? atoi(argv[2]) : 20;
	size_t pages = (size_mib << 20) / PAGE;

	ballast = malloc(size_mib << 20);
	memset(ballast, 0x5a, size_mib << 20);
	for (int t = 0; t < ticks; t++) {
		for (int i = 0; i < PAGES_PER_TICK - 1; i++)	/* the node's page is the tenth */
			ballast[((size_t)t * PAGES_PER_TICK + i) % pages * PAGE] = (char)t;
		struct node *n = malloc(sizeof *n);
		n->value = t;
		n->next = head;
		head = n;
		checkpoint();
	}
	return 0;
}
