/*
 * Logging for the native programs, after CRIU's log.h: define LOG_PREFIX
 * before including; pr_perror appends the errno text, so call it right
 * after the failing call, while errno is still valid. Name the object in the
 * message ("UFFDIO_COPY at 0x7f0000 (4096 bytes)"), or use a per-object macro
 * built on these (ttd-pageserver's proc_err: "process 1234: ...").
 *
 * What the log is for: a developer running with TTD_DEBUG=1 (the caller
 * discards stderr otherwise). What the user sees goes on the control channel.
 */
#ifndef TTD_LOG_H
#define TTD_LOG_H

#include <errno.h>
#include <stdio.h>
#include <string.h>

#ifndef LOG_PREFIX
#define LOG_PREFIX ""
#endif

extern int log_debug_enabled;

#define pr_err(fmt, ...) fprintf(stderr, LOG_PREFIX "error: " fmt "\n", ##__VA_ARGS__)
#define pr_perror(fmt, ...) \
	fprintf(stderr, LOG_PREFIX "error: " fmt ": %s\n", ##__VA_ARGS__, strerror(errno))
#define pr_warn(fmt, ...) fprintf(stderr, LOG_PREFIX "warning: " fmt "\n", ##__VA_ARGS__)
#define pr_debug(fmt, ...) \
	do { if (log_debug_enabled) fprintf(stderr, LOG_PREFIX fmt "\n", ##__VA_ARGS__); } while (0)

#endif
