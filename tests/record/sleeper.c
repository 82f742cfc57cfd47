/* ttd record --timeout target: writes its pid to argv[1], then never ends. */
#include <stdio.h>
#include <unistd.h>

__attribute__((noinline)) void tick(int i)
{
	(void)i;
}

int main(int argc, char **argv)
{
	FILE *f = fopen(argv[1], "w");

	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
	for (int i = 0;; i++) {
		tick(i);
		sleep(1);
	}
}
