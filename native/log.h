/*
 * Logging for the native programs, after CRIU's log.h: define LOG_PREFIX
 * before including; pr_perror appends the errno text, so call it right
 * after the failing call, while errno is still valid.
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
#define pr_debug(fmt, ...) \
	do { if (log_debug_enabled) fprintf(stderr, LOG_PREFIX fmt "\n", ##__VA_ARGS__); } while (0)

#endif
