/* ttd record target: prints, hits step() three times, then dies of SIGSEGV. */
#include <stdio.h>

int steps;

__attribute__((noinline)) void step(int i)
{
	steps += i;
}

int main(void)
{
	volatile int *nowhere = 0;

	for (int i = 1; i <= 3; i++)
		step(i);
	printf("about to crash after %d\n", steps);
	fflush(stdout);
	*nowhere = steps; /* SIGSEGV */
	return 0;
}
