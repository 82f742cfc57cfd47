/* The library dlopens.c loads late: lib_step is a breakpoint location that resolves only
 * then. */
int lib_total;

__attribute__((noinline)) int lib_step(int i)
{
	lib_total += i;
	return lib_total;
}
