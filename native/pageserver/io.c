/* io.h */
#include <errno.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io.h"

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = 0;
			return -1;
		}
		p += n;
		len -= n;
	}
	return 0;
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/*
 * Bounded waits: an interval timer interrupts the blocking waitpid (SIGALRM,
 * handled without SA_RESTART). The timer repeats every 10 ms after it first
 * fires, so an alarm that came just before waitpid blocked is not lost.
 */
static volatile sig_atomic_t alarm_fired;

static void on_alarm(int sig)
{
	(void)sig;
	alarm_fired = 1;
}

void wait_bounded_init(void)
{
	struct sigaction sa = { .sa_handler = on_alarm };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
}

pid_t wait_bounded(pid_t pid, int *status, int options, int timeout_ms)
{
	struct itimerval timer = {
		.it_value = { timeout_ms / 1000, timeout_ms % 1000 * 1000 + 1 },
		.it_interval = { 0, 10000 },
	};
	struct itimerval off = { 0 };
	pid_t r;

	alarm_fired = 0;
	setitimer(ITIMER_REAL, &timer, NULL);
	for (;;) {
		r = waitpid(pid, status, options);
		if (r >= 0 || errno != EINTR)
			break;
		if (alarm_fired) {
			errno = ETIMEDOUT;
			break;
		}
	}
	int saved = errno;
	setitimer(ITIMER_REAL, &off, NULL);
	errno = saved;
	return r;
}
