/* ttd record target: loads the library argv[1] with dlopen and calls its lib_step 3 times. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	void *lib = argc > 1 ? dlopen(argv[1], RTLD_NOW) : NULL;
	int (*step)(int);
	int total = 0;

	if (lib == NULL) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	step = (int (*)(int))dlsym(lib, "lib_step");
	for (int i = 1; i <= 3; i++)
		total = step(i);
	printf("lib total %d\n", total);
	return 0;
}
