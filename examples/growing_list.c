/* A list that grows by one node per tick: after the n-th node is pushed, checkpoint(n)
   is called, where `ttd record --break checkpoint` takes a snapshot. A sweep of
   list_length(head) over the recording gives 1, 2, ..., N (N = argv[1], default 50).

   make -C examples growing_list
   ttd record -o list.db --break checkpoint -- examples/growing_list 50
   ttd sweep list.db 'list_length(head)' --plot list.png */
#include <stdio.h>
#include <stdlib.h>

struct node { long value; struct node *next; };

struct node *head;

int list_length(struct node *list)
{
	int n = 0;
	for (; list; list = list->next)
		n++;
	return n;
}

long list_sum(struct node *list)
{
	long sum = 0;
	for (; list; list = list->next)
		sum += list->value;
	return sum;
}

static void push(long value)
{
	struct node *node = malloc(sizeof *node);
	if (!node)
		exit(1);
	node->value = value;
	node->next = head;
	head = node;
}

void checkpoint(int n)
{
	__asm__ volatile("" : : "r"(n) : "memory");  /* a place to stop; kept at any -O */
}

int main(int argc, char **argv)
{
	int count = argc > 1 ? atoi(argv[1]) : 50;
	for (int i = 1; i <= count; i++) {
		push(i * i);
		checkpoint(i);
	}
	printf("%d nodes, sum %ld\n", list_length(head), list_sum(head));
	return 0;
}
