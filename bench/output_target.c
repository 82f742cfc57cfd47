/* bench/output_drain.py's target: after its int3 (tick 1 of the recording) it writes
 * MIB mebibytes to stdout in 64 KiB writes, as fast as the pipe takes them, and exits. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIB 16

int main(void)
{
	static char chunk[65536];

	memset(chunk, 'x', sizeof(chunk));
	chunk[sizeof(chunk) - 1] = '\n';
	asm volatile("int3");	/* tick 1 */
	for (int i = 0; i < MIB * 16; i++)
		for (size_t done = 0; done < sizeof(chunk);) {
			ssize_t n = write(1, chunk + done, sizeof(chunk) - done);
			if (n <= 0)
				return 1;
			done += n;
		}
	return 0;
}
