/* Target for the containment tests: functions that try to reach outside the
   process (files, other processes, the network, fork, exec), crash, hang or exit.
   Each try_* returns 0 when the attempt succeeded, else the errno it met, so a
   test sees both what the sandbox blocked and what the call was told.
   `checkpoint` is where the recording stops (steps 1..3). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int step;                      /* 1..3 at the recorded ticks */
int touched;                   /* written by crash_null before it crashes */
long table[8192];              /* 16 pages read only by sum_table */

int try_unlink(const char *path) { return unlink(path) == 0 ? 0 : errno; }
int try_truncate(const char *path)
{
	int fd = open(path, O_WRONLY | O_TRUNC);
	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}
int try_rename(const char *from, const char *to) { return rename(from, to) == 0 ? 0 : errno; }
int try_kill(int pid) { return kill(pid, SIGKILL) == 0 ? 0 : errno; }
int try_kill_parent(void) { return try_kill(getppid()); }
int try_connect(int port)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return errno;
	int rc = connect(fd, (struct sockaddr *)&to, sizeof to) == 0 ? 0 : errno;
	close(fd);
	return rc;
}
int try_fork(void)
{
	pid_t pid = fork();
	if (pid < 0)
		return errno;
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	return 0;
}
int try_exec(const char *path)
{
	char *argv[] = { (char *)path, NULL };
	char *envp[] = { NULL };
	execve(path, argv, envp);
	return errno;
}
int write_both(int n)
{
	char line[64];
	int len = snprintf(line, sizeof line, "out %d\n", n);
	write(1, line, len);
	len = snprintf(line, sizeof line, "err %d\n", n);
	write(2, line, len);
	return n;
}
int step_value(void) { return step * 10; }
long sum_table(void) { long s = 0; for (int i = 0; i < 8192; i++) s += table[i]; return s; }
int crash_null(void) { touched = 1234; return *(volatile int *)0; }
int divide(int a, int b) { return a / b; }          /* SIGFPE for b == 0 */
int crash_trap(void) { __builtin_trap(); }           /* SIGILL (ud2) */
int spin(void) { for (;;) __asm__ volatile(""); return 0; }
void do_exit(int code) { exit(code); }
void checkpoint(int n) { __asm__ volatile("" ::"r"(n) : "memory"); }

int main(void)
{
	for (int i = 0; i < 8192; i++)
		table[i] = i;
	for (step = 1; step <= 3; step++)
		checkpoint(step);
	return 0;
}
