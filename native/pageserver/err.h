/*
 * An error of the page server, for the control channel: one line that names the
 * object ("page 0x7f0000001000 at tick 3 is corrupt (bad zstd frame)"), and its
 * kind, which says what the server does about it (main.c: fail()).
 *
 * Functions that can fail take a struct err * last and return -1 after
 * err_set(), 0 on success (CRIU's convention), unless they say otherwise.
 */
#ifndef TTD_ERR_H
#define TTD_ERR_H

enum err_kind {
	ERR_NONE,
	ERR_INTERNAL,	/* a system or database call failed: the process cannot be served on */
	ERR_CORRUPT,	/* the recording holds a page that cannot be served */
	ERR_GONE,	/* the process ended under an operation (ESRCH, ENOSPC): not an error */
};

struct err {
	enum err_kind kind;
	char msg[512];
};

/* Set e (the first error wins: a later one is only logged); returns -1. */
int err_set(struct err *e, enum err_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
