/*
 * Starting ttd-stub and making it the recorded process (ptrace), and ending it.
 *
 *   stub_read_image(path)  ttd-stub's image range, from its ELF program headers
 *   stub_start(target, args)
 *       forks the stub traced (fds 0 = /dev/null, 1/2 = the caller's pipes,
 *       3 = a socket), sends it the layout, receives its userfaultfd (and the
 *       sandbox's listener), sets the recorded registers while it is stopped
 *       and detaches with SIGSTOP: a group stop, ready for gdbserver --attach
 *   stub_kill(target)      SIGKILL and a bounded reap, and every descendant
 */
#ifndef TTD_STUB_H
#define TTD_STUB_H

#include <stdint.h>

#include "err.h"
#include "spec.h"
#include "target.h"

struct stub_args {
	const char *path;	/* ttd-stub */
	int out_fd, err_fd;	/* the process's fds 1 and 2 */
	const struct spec *spec;
	uint64_t uffd_features;	/* for UFFDIO_API */
	int register_wp;	/* register MISSING|WP, not MISSING only */
};

/* 0, or -1 with the error ("cannot read ttd-stub at ..."). */
int stub_read_image(const char *path, struct target *t, struct err *e);

/* A recorded mapping overlapping the stub's image: 0 when none, else -1 with the error. */
int stub_check_layout(const struct target *t, const struct spec *spec, struct err *e);

/* 0 with t->pid, uffd, listener, pidfd, pagemap_fd, mem_fd set; -1 with the error
 * (t->pid stays set while there is a process to kill). */
int stub_start(struct target *t, const struct stub_args *args, struct err *e);

/*
 * Kill the process and reap it, and end whatever it started (without the sandbox
 * it may fork: we are a child subreaper, so its descendants come to us). The reap
 * waits at most timeout_ms: a tracer (gdbserver) reaps a traced process first, and
 * a tracer that hangs must not hang us. 0 reaped (or none), -1 not within the time.
 */
int stub_kill(struct target *t, int timeout_ms);

/* Kill and reap the process's descendants but the process itself (bounded). */
void stub_end_descendants(pid_t process);

#endif
