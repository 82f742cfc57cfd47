/*
 * sandbox.h: answering and recording what the sandbox refused.
 *
 * The list is bounded: the first MAX_BLOCKED_KINDS distinct (name, detail) pairs
 * keep their counts; past them only how many more distinct pairs and calls there
 * were is kept ("blocked_syscalls_left_out"). A call making 20,000 distinct
 * refused system calls made a 1.2 MB list.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/audit.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#define LOG_PREFIX "ttd-pageserver: sandbox: "
#include "log.h"
#include "fault.h"
#include "sandbox.h"

#define MAX_BLOCKED_KINDS 100
#define LEFT_OUT_SLOTS (1u << 20)	/* distinct pairs past the list counted exactly up to this */
#define X32_SYSCALL_BIT 0x40000000

/* 64-bit FNV-1a of name and detail: the identity of a pair left out of the list. */
static uint64_t pair_hash(const char *name, const char *detail)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
	h = (h ^ 0xff) * 0x100000001b3ULL;
	for (const char *p = detail ? detail : ""; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
	return h | 1;	/* 0 marks an empty slot */
}

/* A pair past the list: counted, and remembered (by hash) to count distinct ones. */
static void note_left_out(struct sandbox *sb, const char *name, const char *detail)
{
	uint64_t h = pair_hash(name, detail);

	sb->left_out_calls++;
	if (!sb->left_out_seen) {
		sb->left_out_seen = calloc(LEFT_OUT_SLOTS, sizeof(*sb->left_out_seen));
		if (!sb->left_out_seen)
			return;
	}
	for (uint32_t i = h % LEFT_OUT_SLOTS, n = 0; n < LEFT_OUT_SLOTS / 2;
	     i = (i + 1) % LEFT_OUT_SLOTS, n++) {
		if (sb->left_out_seen[i] == h)
			return;
		if (sb->left_out_seen[i] == 0) {
			if (sb->left_out_kinds < LEFT_OUT_SLOTS / 2) {
				sb->left_out_seen[i] = h;
				sb->left_out_kinds++;
			}
			return;
		}
	}
}

static int note_blocked(struct sandbox *sb, const char *name, const char *detail, struct err *e)
{
	for (size_t i = 0; i < sb->nr_blocked; i++) {
		struct blocked_call *b = &sb->blocked[i];
		if (!strcmp(b->name, name) && (b->detail == detail ||
					       (b->detail && detail && !strcmp(b->detail, detail)))) {
			b->count++;
			return 0;
		}
	}
	if (sb->nr_blocked == MAX_BLOCKED_KINDS) {
		note_left_out(sb, name, detail);
		return 0;
	}
	if (!sb->blocked && !(sb->blocked = calloc(MAX_BLOCKED_KINDS, sizeof(*sb->blocked))))
		return err_set(e, ERR_INTERNAL, "out of memory recording a blocked system call");
	sb->blocked[sb->nr_blocked++] = (struct blocked_call){
		strdup(name), detail ? strdup(detail) : NULL, 1 };
	return 0;
}

/* "openat"; "i386 system call 5 (open)", "x32 system call 2 (open)": another ABI's
 * calls (int $0x80, the x32 bit) are named in their own table. */
static void call_name(char *out, size_t len, const struct seccomp_data *d)
{
	uint32_t arch = d->arch == AUDIT_ARCH_I386 ? SCMP_ARCH_X86 :
			d->arch != AUDIT_ARCH_X86_64 ? 0 :
			d->nr & X32_SYSCALL_BIT ? SCMP_ARCH_X32 : SCMP_ARCH_X86_64;
	char *name = arch ? seccomp_syscall_resolve_num_arch(arch, d->nr) : NULL;
	const char *abi = arch == SCMP_ARCH_X86 ? "i386" : arch == SCMP_ARCH_X32 ? "x32" : NULL;

	if (arch == SCMP_ARCH_X86_64 && name)
		snprintf(out, len, "%s", name);
	else if (arch == SCMP_ARCH_X86_64)
		snprintf(out, len, "syscall %d", d->nr);
	else if (abi && name)
		snprintf(out, len, "%s system call %d (%s)", abi, d->nr & ~X32_SYSCALL_BIT, name);
	else if (abi)
		snprintf(out, len, "%s system call %d", abi, d->nr & ~X32_SYSCALL_BIT);
	else
		snprintf(out, len, "system call %d of architecture %#x", d->nr, d->arch);
	free(name);
}

/*
 * fstat(fd) in glibc is newfstatat(fd, "", buf, AT_EMPTY_PATH): a look at the
 * process's own descriptor. Exactly that passes (and statx(fd, "", AT_EMPTY_PATH,
 * ...)): a descriptor, an empty path, AT_EMPTY_PATH; any path is refused.
 * The call is let through with SECCOMP_USER_NOTIF_FLAG_CONTINUE, so the kernel
 * reads the path again after we did (TOCTOU). That is safe here: the path can
 * only change if another thread of the process, or another process sharing its
 * memory, writes it meanwhile, and there is neither: new threads and fork are
 * refused, it cannot open anything to share, and the calling thread waits.
 */
static int own_descriptor_stat(struct sandbox *sb, const struct seccomp_data *d, struct err *e)
{
	uint64_t path, flags;
	char first = 1;

	if (d->arch != AUDIT_ARCH_X86_64 || (d->nr != SYS_newfstatat && d->nr != SYS_statx))
		return 0;
	path = d->args[1];
	flags = d->nr == SYS_newfstatat ? d->args[3] : d->args[2];
	if ((int)d->args[0] < 0 || !(flags & AT_EMPTY_PATH))
		return 0;
	return pager_read_target(sb->pager, &first, path, 1, e) == 1 && first == 0;
}

int sandbox_handle(struct sandbox *sb, struct err *e)
{
	struct seccomp_notif req;
	struct seccomp_notif_resp resp = { 0 };
	char detail[SANDBOX_MAX_DETAIL], name[96];

	memset(&req, 0, sizeof(req));	/* the kernel insists on a zeroed request */
	if (ioctl(sb->listener, SECCOMP_IOCTL_NOTIF_RECV, &req)) {
		if (errno != EINTR && errno != ENOENT)
			return err_set(e, ERR_INTERNAL, "seccomp listener: %s", strerror(errno));
		return 0;
	}
	resp.id = req.id;
	if (req.data.arch == AUDIT_ARCH_X86_64 && req.data.nr == SYS_brk) {
		sb->brk_calls++;	/* counted before the answer: the call returns after */
		resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	} else if (own_descriptor_stat(sb, &req.data, e)) {
		resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	} else {
		/* The detail is read from the process while the call waits; it counts only
		 * if the notification is still valid after the read (the call may have been
		 * interrupted, and its memory reused, meanwhile). */
		int has_detail = req.data.arch == AUDIT_ARCH_X86_64 &&
				 !(req.data.nr & X32_SYSCALL_BIT) &&
				 sandbox_detail(sb->pager, detail, &req.data, e);
		if (e->kind != ERR_NONE && e->kind != ERR_GONE)
			return -1;
		call_name(name, sizeof(name), &req.data);
		if (ioctl(sb->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) == 0 &&
		    note_blocked(sb, name, has_detail ? detail : NULL, e))
			return -1;
		resp.error = -EPERM;
	}
	/* ENOENT: the call was interrupted, or the process is gone */
	if (ioctl(sb->listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) && errno != ENOENT)
		return err_set(e, ERR_INTERNAL, "seccomp listener: %s", strerror(errno));
	return 0;
}

void sandbox_forget(struct sandbox *sb)
{
	for (size_t i = 0; i < sb->nr_blocked; i++) {
		free(sb->blocked[i].name);
		free(sb->blocked[i].detail);
	}
	sb->nr_blocked = 0;
	sb->left_out_kinds = 0;
	sb->left_out_calls = 0;
	if (sb->left_out_seen)
		memset(sb->left_out_seen, 0, LEFT_OUT_SLOTS * sizeof(*sb->left_out_seen));
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
	fputs(", \"blocked_syscalls\": [", f);
	for (size_t i = 0; i < sb->nr_blocked; i++) {
		const struct blocked_call *b = &sb->blocked[i];
		fprintf(f, "%s{\"name\": ", i ? ", " : "");
		json_string(f, b->name);
		fprintf(f, ", \"count\": %u, \"detail\": ", b->count);
		if (b->detail)
			json_string(f, b->detail);
		else
			fputs("null", f);
		fputc('}', f);
	}
	fprintf(f, "], \"blocked_syscalls_left_out\": {\"distinct\": %u, \"calls\": %" PRIu64 "}",
		sb->left_out_kinds, sb->left_out_calls);
}
