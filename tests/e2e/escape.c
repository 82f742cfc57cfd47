/* Target for the containment tests: functions that try to reach outside the
   process (files, other processes, the network, fork, exec), crash, hang or exit,
   defeat the timeout, write without end, or leave state behind for the next call.
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
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
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

/* --- the timeout: SIGINT made useless (0 blocked, 1 ignored, 2 handled), then a spin */
static void on_signal(int sig) { (void)sig; }
int spin_shielded(int how)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	if (how == 0)
		sigprocmask(SIG_BLOCK, &set, NULL);
	else if (how == 1)
		signal(SIGINT, SIG_IGN);
	else
		signal(SIGINT, on_signal);
	for (;;)
		__asm__ volatile("");
	return 0;
}
/* every signal that can be blocked blocked, then a long sleep in the kernel */
int sleep_shielded(void)
{
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	return sleep(1000);
}

/* with the sandbox off: the caller waits in vfork until its child has slept `seconds`, a
   wait that SIGSTOP cannot interrupt and SIGKILL can */
int vfork_wait(int seconds)
{
	pid_t pid = vfork();
	if (pid == 0) {
		sleep(seconds);
		_exit(0);
	}
	return pid < 0 ? errno : 0;
}

/* --- output: n bytes between markers, or without end */
long write_much(long n)
{
	static char buf[65536];
	long left = n;
	memset(buf, 'x', sizeof buf);
	write(1, "BEGIN\n", 6);
	while (left > 0) {
		long len = left < (long)sizeof buf ? left : (long)sizeof buf;
		if (write(1, buf, len) != len)
			return -1;
		left -= len;
	}
	write(1, "\nEND\n", 5);
	return n;
}
/* 64 KiB every pause_us microseconds, without end */
int write_forever(int pause_us)
{
	static char buf[65536];
	memset(buf, 'y', sizeof buf);
	for (;;) {
		write(1, buf, sizeof buf);
		usleep(pause_us);
	}
	return 0;
}
/* n unlinks of distinct paths: n distinct blocked calls */
int unlink_many(int n)
{
	char path[64];
	int refused = 0;
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof path, "/tmp/ttd-no-such-file-%d", i);
		refused += unlink(path) != 0;
	}
	return refused;
}
/* an OSC 52 clipboard write, a screen clear and a bell on stdout, a carriage return on stderr */
int write_escapes(void)
{
	static const char out[] = "\033]52;c;aGVsbG8=\007\033[2Jcleared\a\n";
	static const char err[] = "progress\rdone\n";
	write(1, out, sizeof out - 1);
	write(2, err, sizeof err - 1);
	return 0;
}

/* --- state a call can leave behind in its process */
int unmap_table_page(void)
{
	long page = ((long)&table[4096] + 4095) & ~4095L;
	return munmap((void *)page, 4096);
}
int table_page_value(void) { long page = ((long)&table[4096] + 4095) & ~4095L; return *(long *)page; }
int protect_table_page(void)
{
	long page = ((long)&table[4096] + 4095) & ~4095L;
	return mprotect((void *)page, 4096, PROT_NONE);
}
unsigned set_alarm(unsigned seconds) { alarm(seconds); return seconds; }
int set_timer(long ms)
{
	timer_t timer;
	struct sigevent ev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGALRM };
	struct itimerspec when = { .it_value = { ms / 1000, (ms % 1000) * 1000000 } };
	if (timer_create(CLOCK_MONOTONIC, &ev, &timer) != 0)
		return errno;
	return timer_settime(timer, 0, &when, NULL) == 0 ? 0 : errno;
}
int block_sigint(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	return sigprocmask(SIG_BLOCK, &set, NULL);
}
int sigint_blocked(void)
{
	sigset_t set;
	sigprocmask(SIG_BLOCK, NULL, &set);
	return sigismember(&set, SIGINT);
}
int handle_sigterm(void) { return signal(SIGTERM, on_signal) == SIG_ERR; }
int sigterm_handled(void)
{
	struct sigaction now;
	sigaction(SIGTERM, NULL, &now);
	return now.sa_handler == on_signal;
}
int close_stdout(void) { return close(1); }
long move_brk(long by) { return (long)sbrk(by); }
long brk_now(void) { return (long)sbrk(0); }
/* an i386 system call (getpid, 20) through int $0x80 */
long int80(void)
{
	long ret;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
	return ret;
}
/* a new mapping of `mib` MiB, every byte written */
long scribble(int mib)
{
	char *block = malloc((size_t)mib << 20);
	if (block)
		memset(block, 1, (size_t)mib << 20);
	return block != NULL;
}
/* every other byte of one page of table changed: 2048 changed ranges */
int stripes(void)
{
	unsigned char *page = (unsigned char *)(((long)&table[1024] + 4095) & ~4095L);
	for (int i = 0; i < 4096; i += 2)
		page[i] ^= 0xff;
	return 2048;
}
void checkpoint(int n) { __asm__ volatile("" ::"r"(n) : "memory"); }

int main(void)
{
	for (int i = 0; i < 8192; i++)
		table[i] = i;
	for (step = 1; step <= 3; step++)
		checkpoint(step);
	return 0;
}
