/* sandbox.h: answering and recording what the sandbox refused. */
#include <errno.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define LOG_PREFIX "ttd-pageserver: sandbox: "
#include "log.h"
#include "sandbox.h"

/* At most MAX_BLOCKED_KINDS groups keep their detail; further ones are counted
 * under their name alone. */
#define MAX_BLOCKED_KINDS 256

static int note_blocked(struct sandbox *sb, int nr, const char *detail, struct err *e)
{
	if (sb->nr_blocked >= MAX_BLOCKED_KINDS)
		detail = NULL;
	for (size_t i = 0; i < sb->nr_blocked; i++) {
		struct blocked_call *b = &sb->blocked[i];
		if (b->nr == nr && (b->detail == detail ||
				    (b->detail && detail && !strcmp(b->detail, detail)))) {
			b->count++;
			return 0;
		}
	}
	struct blocked_call *more = realloc(sb->blocked, (sb->nr_blocked + 1) * sizeof(*more));
	if (!more)
		return err_set(e, ERR_INTERNAL, "out of memory recording a blocked system call");
	sb->blocked = more;
	sb->blocked[sb->nr_blocked++] = (struct blocked_call){ nr, detail ? strdup(detail) : NULL, 1 };
	return 0;
}

/*
 * A system call the sandbox did not let through: refuse it with EPERM and
 * record it. The detail is read from the process while the call waits; it
 * counts only if the notification is still valid after the read (the call
 * may have been interrupted, and its memory reused, meanwhile).
 */
int sandbox_handle(struct sandbox *sb, struct err *e)
{
	struct seccomp_notif req;
	struct seccomp_notif_resp resp = { 0 };
	char detail[SANDBOX_MAX_DETAIL];

	memset(&req, 0, sizeof(req));	/* the kernel insists on a zeroed request */
	if (ioctl(sb->listener, SECCOMP_IOCTL_NOTIF_RECV, &req)) {
		if (errno != EINTR && errno != ENOENT)
			return err_set(e, ERR_INTERNAL, "seccomp listener: %s", strerror(errno));
		return 0;
	}
	sandbox_detail(sb->pager, detail, &req.data, e);
	if (e->kind != ERR_NONE && e->kind != ERR_GONE)
		return -1;
	if (ioctl(sb->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) == 0 &&
	    note_blocked(sb, req.data.nr, detail[0] ? detail : NULL, e))
		return -1;
	resp.id = req.id;
	resp.error = -EPERM;
	/* ENOENT: the call was interrupted, or the process is gone */
	if (ioctl(sb->listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) && errno != ENOENT)
		return err_set(e, ERR_INTERNAL, "seccomp listener: %s", strerror(errno));
	return 0;
}

/* A JSON string (quoted) for s: control characters escaped, other bytes as they are
 * (paths are UTF-8 as a rule; the reader replaces what is not). */
static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

void sandbox_format(const struct sandbox *sb, FILE *f)
{
	fputc('[', f);
	for (size_t i = 0; i < sb->nr_blocked; i++) {
		const struct blocked_call *b = &sb->blocked[i];
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, b->nr);
		fprintf(f, "%s{\"name\": ", i ? ", " : "");
		if (name)
			json_string(f, name);
		else
			fprintf(f, "\"syscall %d\"", b->nr);
		free(name);
		fprintf(f, ", \"count\": %u, \"detail\": ", b->count);
		if (b->detail)
			json_string(f, b->detail);
		else
			fputs("null", f);
		fputc('}', f);
	}
	fputc(']', f);
}
