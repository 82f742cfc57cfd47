/* Target for tests/native: after tick 1 (its int3) it makes new memory the way
 * called code might: a new mapping (page 0 written with data, page 2 written
 * with zeros, page 4 only read) and heap growth (sbrk, one page written). It
 * prints the addresses and stops itself (SIGSTOP); continued, it writes page 0
 * of the new mapping again, page 1 of the heap growth with the byte it holds,
 * and stops again. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void)
{
	printf("start\n");
	fflush(stdout);
	asm volatile("int3");	/* tick 1 */

	char *mapped = mmap(NULL, 8 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *grown = sbrk(3 * 4096);
	mapped[0] = 1;
	mapped[2 * 4096] = 0;
	grown[4096] = 7;
	printf("mapped=%p grown=%p read=%d\n", mapped, grown, mapped[4 * 4096]);
	fflush(stdout);
	kill(getpid(), SIGSTOP);

	mapped[0] = 2;
	grown[4096] = 7;
	kill(getpid(), SIGSTOP);
	return 0;
}
