/* Small helpers every part of the page server uses. */
#ifndef TTD_IO_H
#define TTD_IO_H

#include <stddef.h>
#include <stdint.h>

/* Write or read exactly len bytes (EINTR retried): 0, or -1 (errno set; 0 at EOF). */
int write_all(int fd, const void *buf, size_t len);
int read_all(int fd, void *buf, size_t len);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t now_ns(void);

#endif
