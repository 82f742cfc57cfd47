/* ttd record target: checkpoint(1), then it runs exec of itself ("again"), whose image
 * counts on to checkpoint(2) and (3): the memory the write tracking was armed on is gone. */
#include <string.h>
#include <unistd.h>

long value;

__attribute__((noinline)) void checkpoint(int round)
{
	__asm__ volatile("" : : "r"(round) : "memory");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		value = 1;
		checkpoint(1);
		execl("/proc/self/exe", argv[0], "again", (char *)NULL);
		return 1;
	}
	for (value = 2; value <= 3; value++)
		checkpoint((int)value);
	return 0;
}
