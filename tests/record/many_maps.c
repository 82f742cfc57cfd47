/* More mappings than an ELF header can count (65535, PN_XNUM), then a crash: the
 * kernel's core of it has e_phnum = PN_XNUM and the real count in section 0's sh_info.
 * Usage: many_maps NPAGES  (needs vm.max_map_count above NPAGES). Page i of the region
 * is read-only for odd i, so every page is a mapping of its own; the first and the last
 * page hold a marker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int main(int argc, char **argv)
{
	long npages = argc > 1 ? atol(argv[1]) : 70000;
	char *region = mmap(NULL, npages * 4096, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (region == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	strcpy(region, "first page of many");
	strcpy(region + (npages - 1) * 4096, "last page of many");
	for (long i = 1; i < npages; i += 2) {
		if (mprotect(region + i * 4096, 4096, PROT_READ)) {
			perror("mprotect");
			return 1;
		}
	}
	printf("%p\n", (void *)region);
	fflush(stdout);
	*(volatile int *)0 = 1;
	return 0;
}
