/* bench/syscall_cost.py's target: after its int3 (tick 1 of the recording) it times
 * system calls the sandbox lets through and prints one JSON object of nanoseconds per
 * call. The calls sit at different places in the filter: read is the first of the
 * old linear filter's list, getppid in the middle, epoll_pwait its last, kill-to-self
 * after the list with an argument comparison, fcntl(F_GETFD) an argument comparison. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CALLS 200000

static unsigned long long now_ns(void)
{
	struct timespec t;

	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t);	/* no vDSO in the rebuilt process */
	return t.tv_sec * 1000000000ULL + t.tv_nsec;
}

static double per_call(long nr, long a, long b, long c, long d)
{
	for (int i = 0; i < CALLS / 10; i++)	/* warm up */
		syscall(nr, a, b, c, d);
	unsigned long long t0 = now_ns();
	for (int i = 0; i < CALLS; i++)
		syscall(nr, a, b, c, d);
	return (double)(now_ns() - t0) / CALLS;
}

int main(void)
{
	asm volatile("int3");	/* tick 1 */

	pid_t self = (pid_t)syscall(SYS_getpid);
	double read_ns = per_call(SYS_read, -1, 0, 0, 0);
	double getppid_ns = per_call(SYS_getppid, 0, 0, 0, 0);
	double epoll_ns = per_call(SYS_epoll_pwait, -1, 0, 0, 0);
	double kill_ns = per_call(SYS_kill, self, 0, 0, 0);
	double fcntl_ns = per_call(SYS_fcntl, 1, F_GETFD, 0, 0);
	printf("{\"read\": %.1f, \"getppid\": %.1f, \"epoll_pwait\": %.1f, \"kill_self\": %.1f, "
	       "\"fcntl_getfd\": %.1f}\n", read_ns, getppid_ns, epoll_ns, kill_ns, fcntl_ns);
	return 0;
}
