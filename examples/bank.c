/* A tiny bank: accounts on the heap, a global ledger, and a loop of transfers.
 * The README demo records it at every call of transfer() and lists the timeline;
 * later, functions like balance_of() can be called as they were at any tick. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct account {
	int id;
	char owner[16];
	long balance_cents;
	struct account *next;
};

struct ledger {
	long transfers;
	long moved_cents;
} ledger;

static struct account *accounts;

static struct account *open_account(int id, const char *owner, long cents)
{
	struct account *a = calloc(1, sizeof(*a));

	if (!a) {
		perror("calloc");
		exit(1);
	}
	a->id = id;
	strncpy(a->owner, owner, sizeof(a->owner) - 1);
	a->balance_cents = cents;
	a->next = accounts;
	accounts = a;
	return a;
}

struct account *find_account(int id)
{
	for (struct account *a = accounts; a; a = a->next)
		if (a->id == id)
			return a;
	return NULL;
}

long balance_of(int id)
{
	struct account *a = find_account(id);

	return a ? a->balance_cents : -1;
}

long total_cents(void)
{
	long sum = 0;

	for (struct account *a = accounts; a; a = a->next)
		sum += a->balance_cents;
	return sum;
}

int transfer(int from, int to, long cents)
{
	struct account *src = find_account(from), *dst = find_account(to);

	if (!src || !dst || src->balance_cents < cents)
		return -1;
	src->balance_cents -= cents;
	dst->balance_cents += cents;
	ledger.transfers++;
	ledger.moved_cents += cents;
	return 0;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 5;

	open_account(1, "alice", 10000);
	open_account(2, "bob", 2500);
	open_account(3, "carol", 700);
	for (int i = 0; i < rounds; i++)
		transfer(1 + i % 3, 1 + (i + 1) % 3, 100 * (i + 1));
	printf("%ld transfers, %ld cents moved, total %ld\n", ledger.transfers,
	       ledger.moved_cents, total_cents());
	return 0;
}
