/* Small helpers every part of the page server uses. */
#ifndef TTD_IO_H
#define TTD_IO_H

#include <stddef.h>
#include <stdint.h>

/* Write or read exactly len bytes (EINTR retried): 0, or -1 (errno set; 0 at EOF). */
int write_all(int fd, const void *buf, size_t len);
int read_all(int fd, void *buf, size_t len);

/*
 * waitpid(pid, status, options) that blocks at most timeout_ms: the pid (or 0 with
 * WNOHANG), or -1 with errno (ETIMEDOUT when the time ran out). Needs
 * wait_bounded_init() once, in the main thread (a SIGALRM handler).
 */
#include <sys/types.h>
void wait_bounded_init(void);
pid_t wait_bounded(pid_t pid, int *status, int options, int timeout_ms);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t now_ns(void);

#endif
