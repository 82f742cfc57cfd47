/* Benchmark target for bench/call_at_time.py: SIZE_MIB of heap touched, a linked
   list, then checkpoint(). With "stop" as second argument it stops itself with
   SIGSTOP at the checkpoint instead, for a live gdbserver attach of the same size. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node { int value; struct node *next; };
struct node *head;
char *ballast;

int list_length(void) { int n = 0; for (struct node *p = head; p; p = p->next) n++; return n; }
void checkpoint(void) { __asm__ volatile("" ::: "memory"); }

int main(int argc, char **argv)
{
	size_t size_mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 64;
	ballast = malloc(size_mib << 20);
	memset(ballast, 0x5a, size_mib << 20);
	for (int i = 0; i < 1000; i++) {
		struct node *n = malloc(sizeof *n);
		n->value = i;
		n->next = head;
		head = n;
	}
	if (argc > 2 && strcmp(argv[2], "stop") == 0)
		raise(SIGSTOP);
	checkpoint();
	return 0;
}
