/* ttd record target: calls step(), then exits with the status argv[1] names, or dies of
 * SIGABRT when argv[1] is "abort". */
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void step(void)
{
	__asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv)
{
	step();
	if (argc > 1 && strcmp(argv[1], "abort") == 0)
		abort();
	return argc > 1 ? atoi(argv[1]) : 0;
}
