/* A program under a seccomp filter (one that allows every call), then checkpoint(1..3)
 * with a counter that goes 1, 2, 3: the recorder makes no system call in it. */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <sys/prctl.h>

int value;

__attribute__((noinline)) void checkpoint(int round)
{
	__asm__ volatile("" : : "r"(round) : "memory");
}

int main(void)
{
	struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = { .len = 1, .filter = &allow };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		return 1;
	for (value = 1; value <= 3; value++)
		checkpoint(value);
	printf("seccomp ok\n");
	return 0;
}
