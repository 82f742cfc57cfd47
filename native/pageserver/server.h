/*
 * The page server as one object: the spec it was started with, the process, the
 * fault path, the tracker, the sandbox's reports and the control channel.
 * main.c starts it up (die() on any error until READY); ctl.c answers the
 * caller and handles what happens after READY (server_fail(), server_gone()).
 */
#ifndef TTD_SERVER_H
#define TTD_SERVER_H

#include <stddef.h>

#include "err.h"
#include "fault.h"
#include "move.h"
#include "sandbox.h"
#include "spec.h"
#include "target.h"
#include "tracker.h"

struct server {
	struct spec spec;
	int ctl_fd;		/* the control socket: requests in, replies out */
	int out_fd, err_fd;	/* the process's fds 1 and 2, until it has them */
	const char *stub_path;
	struct target target;
	struct pager pager;
	struct tracker *tracker;
	struct sandbox sandbox;
	struct move move;	/* the move between MOVE and MOVED, and the break served */
	const char *fallback;	/* what the kernel lacks when auto chose the diff tracker */
	struct err failure;	/* the error that stopped the process after READY (server_fail) */
	uint64_t gone_since_ns;	/* the process ended under an operation: GONE once reaped */
	char line[256];		/* the request being read */
	size_t used;
};

/* Start-up failed: the caller reads ERROR <message>; exit 2 (main.c). */
__attribute__((noreturn, format(printf, 2, 3))) void die(struct server *s, const char *fmt, ...);

/* len bytes that follow the request line (a request's binary part): 0, or -1 at EOF. */
int ctl_read_payload(struct server *s, void *buf, size_t len);

/* One line (or more) to the caller. */
__attribute__((format(printf, 2, 3))) void ctl_printf(struct server *s, const char *fmt, ...);

/* Read and answer the requests that came; -1 at EOF (the caller is gone). */
int ctl_handle(struct server *s);

/* The names of the requests, NULL-terminated (for --abi). */
extern const char *const ctl_request_names[];

/*
 * An error after READY, handled as it needs:
 * - ERR_GONE: the process ended under an operation: that is no error; GONE with
 *   its wait status once it is reaped (server_check_exit());
 * - otherwise (a corrupt page, a failed system call): whoever waits on the range
 *   being filled gets an error at once, and so does every later fault (poison);
 *   the process is killed; the caller reads "ERROR <message>", and every later
 *   request gets the same line, until KILL or EOF. Nothing here waits.
 */
void server_fail(struct server *s, struct err *e);

/* The process has exited: GONE with its wait status and the statistics once it
 * has been reaped (a tracer reaps first); otherwise nothing yet. After a failure
 * the server ends without a word (the caller has the ERROR). */
void server_check_exit(struct server *s);

/* Waiting for the reap of a process gone under an operation: poll this often; an
 * error when it takes longer than GONE_WAIT_MS. */
void server_check_gone(struct server *s);

/* Kill the process (bounded) and end the server: the caller is gone or asked. */
__attribute__((noreturn)) void server_end(struct server *s);

#endif
