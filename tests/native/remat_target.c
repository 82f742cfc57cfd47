/* Target for tests/native: builds some state, stops at two int3 "breakpoints"
 * (ticks 1 and 2 of the recording), changes state in between, and after the
 * second prints what it sees, so a rematerialized run from tick 2 can be checked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

__thread long tls_counter = 41;
long global_counter = 7;
static char big_data[256 * 1024];

int main(void)
{
	char *heap = malloc(100000);
	char *region = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned long xmm_in = 0x1122334455667788UL, xmm_out;

	strcpy(heap, "heap string");
	memset(heap + 4096, 0x5a, 50000);
	for (int i = 0; i < 256; i += 2)	/* every other page populated, the rest zero */
		region[i * 4096] = i + 1;
	for (int i = 0; i < 64; i += 3)
		big_data[i * 4096 + 7] = i + 2;
	printf("region=%p\n", region);
	fflush(stdout);
	asm volatile("int3");	/* tick 1 */

	global_counter += 100;
	strcpy(heap, "changed heap");
	region[0] = 99;
	region[2 * 4096] = 0;
	big_data[0] = 1;
	tls_counter++;
	asm volatile("movq %0, %%xmm15" : : "r"(xmm_in) : "xmm15");
	asm volatile("int3");	/* tick 2 */

	asm volatile("movq %%xmm15, %0" : "=r"(xmm_out));
	printf("global=%ld tls=%ld heap=%s region0=%d big0=%d xmm15=%lx\n", global_counter,
	       tls_counter, heap, region[0], big_data[0], xmm_out);
	fprintf(stderr, "bye\n");
	return 42;
}
