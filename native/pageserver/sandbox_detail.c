/*
 * sandbox.h: the telling argument of a refused system call, read from the
 * process while the call waits: the path(s) of a file system call ("old -> new"
 * for rename, link, symlink), the signal and its target, the address of a
 * socket call, the fcntl command and its target, the madvise advice.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include "fault.h"
#include "sandbox.h"

#define MAX_DETAIL SANDBOX_MAX_DETAIL
#ifndef MADV_SOFT_OFFLINE
#define MADV_SOFT_OFFLINE 101	/* <asm-generic/mman-common.h>, not in glibc's */
#endif
#define MADV_COLLAPSE_ 25	/* Linux 6.1+ */

/* The NUL-terminated string at target_addr, cut at MAX_DETAIL - 1 bytes. */
static void read_target_string(struct pager *p, char *out, uint64_t target_addr, struct err *e)
{
	size_t got = 0;

	out[0] = 0;
	if (!target_addr)
		return;
	while (got < MAX_DETAIL - 1) {
		size_t want = MAX_DETAIL - 1 - got < 64 ? MAX_DETAIL - 1 - got : 64;
		size_t n = pager_read_target(p, out + got, target_addr + got, want, e);
		if (!n)
			break;
		if (memchr(out + got, 0, n))
			return;
		got += n;
	}
	out[got] = 0;
}

/* Which arguments of system call nr are paths: -1 when not. */
static void path_args(int nr, int *first, int *second)
{
	*first = *second = -1;
	switch (nr) {
	case SYS_open: case SYS_creat: case SYS_unlink: case SYS_mkdir: case SYS_rmdir:
	case SYS_truncate: case SYS_chmod: case SYS_chown: case SYS_lchown: case SYS_execve:
	case SYS_mknod: case SYS_access: case SYS_stat: case SYS_lstat: case SYS_readlink:
	case SYS_chdir: case SYS_chroot: case SYS_utime: case SYS_utimes: case SYS_statfs:
	case SYS_acct: case SYS_swapon: case SYS_swapoff: case SYS_umount2: case SYS_uselib:
	case SYS_setxattr: case SYS_lsetxattr: case SYS_getxattr: case SYS_lgetxattr:
	case SYS_listxattr: case SYS_llistxattr: case SYS_removexattr: case SYS_lremovexattr:
		*first = 0;
		break;
	case SYS_openat: case SYS_openat2: case SYS_unlinkat: case SYS_mkdirat: case SYS_fchmodat:
	case SYS_newfstatat:
	case SYS_fchownat: case SYS_execveat: case SYS_mknodat: case SYS_faccessat:
	case SYS_faccessat2: case SYS_readlinkat: case SYS_utimensat: case SYS_futimesat:
	case SYS_statx: case SYS_name_to_handle_at: case SYS_inotify_add_watch: case SYS_open_tree:
		*first = 1;
		break;
	case SYS_rename: case SYS_link: case SYS_symlink: case SYS_mount: case SYS_pivot_root:
		*first = 0, *second = 1;
		break;
	case SYS_renameat: case SYS_renameat2: case SYS_linkat:
		*first = 1, *second = 3;
		break;
	case SYS_symlinkat:
		*first = 0, *second = 2;
		break;
	}
}

static void signal_name(char *out, size_t len, uint64_t sig)
{
	const char *abbrev = sig > 0 && sig < 65 ? sigabbrev_np((int)sig) : NULL;

	if (abbrev)
		snprintf(out, len, "SIG%s", abbrev);
	else
		snprintf(out, len, "signal %d", (int)sig);
}

/* The signal-sending calls: which argument is the signal, and what the target is. */
static const struct {
	int nr, sig_arg;
	const char *target;
} signal_calls[] = {
	{ SYS_kill, 1, "pid" }, { SYS_tkill, 1, "thread" }, { SYS_tgkill, 2, "pid" },
	{ SYS_rt_tgsigqueueinfo, 2, "pid" }, { SYS_rt_sigqueueinfo, 1, "pid" },
	{ SYS_pidfd_send_signal, 1, "pidfd" },
};

/* "SIGKILL to pid 1234" for the signal-sending calls; 0 when nr is not one. */
static int signal_detail(char *out, const struct seccomp_data *d)
{
	char sig[32];

	for (size_t i = 0; i < sizeof(signal_calls) / sizeof(signal_calls[0]); i++) {
		if (signal_calls[i].nr != d->nr)
			continue;
		signal_name(sig, sizeof(sig), d->args[signal_calls[i].sig_arg]);
		snprintf(out, MAX_DETAIL, "%s to %s %d", sig, signal_calls[i].target, (int)d->args[0]);
		return 1;
	}
	return 0;
}

static const char *family_name(int family)
{
	switch (family) {
	case AF_UNIX: return "AF_UNIX";
	case AF_INET: return "AF_INET";
	case AF_INET6: return "AF_INET6";
	case AF_NETLINK: return "AF_NETLINK";
	case AF_PACKET: return "AF_PACKET";
	}
	return NULL;
}

/* "AF_INET 127.0.0.1:9", "AF_INET6 [::1]:9", "AF_UNIX /path" ("@name": abstract). */
static void sockaddr_detail(struct pager *p, char *out, uint64_t target_addr, uint64_t len,
			    struct err *e)
{
	union { struct sockaddr sa; struct sockaddr_in in; struct sockaddr_in6 in6;
		struct sockaddr_un un; uint8_t raw[128]; } a;
	char text[INET6_ADDRSTRLEN];

	memset(&a, 0, sizeof(a));
	if (len > sizeof(a))
		len = sizeof(a);
	out[0] = 0;
	if (!target_addr || len < sizeof(sa_family_t) || pager_read_target(p, &a, target_addr, len, e) < len)
		return;
	const char *family = family_name(a.sa.sa_family);
	if (a.sa.sa_family == AF_INET && len >= sizeof(a.in)) {
		inet_ntop(AF_INET, &a.in.sin_addr, text, sizeof(text));
		snprintf(out, MAX_DETAIL, "AF_INET %s:%u", text, ntohs(a.in.sin_port));
	} else if (a.sa.sa_family == AF_INET6 && len >= sizeof(a.in6)) {
		inet_ntop(AF_INET6, &a.in6.sin6_addr, text, sizeof(text));
		snprintf(out, MAX_DETAIL, "AF_INET6 [%s]:%u", text, ntohs(a.in6.sin6_port));
	} else if (a.sa.sa_family == AF_UNIX) {
		size_t n = len - offsetof(struct sockaddr_un, sun_path);
		const char *path = a.un.sun_path;
		int abstract = n > 0 && path[0] == 0;
		snprintf(out, MAX_DETAIL, "AF_UNIX %s%.*s", abstract ? "@" : "",
			 (int)(abstract ? n - 1 : strnlen(path, n)), path + abstract);
	} else if (family) {
		snprintf(out, MAX_DETAIL, "%s", family);
	} else {
		snprintf(out, MAX_DETAIL, "address family %d", a.sa.sa_family);
	}
}

static void socket_detail(char *out, uint64_t domain, uint64_t type)
{
	static const char *const types[] = { [1] = "SOCK_STREAM", [2] = "SOCK_DGRAM", [3] = "SOCK_RAW",
					     [5] = "SOCK_SEQPACKET" };
	const char *family = family_name((int)domain);
	unsigned kind = type & 0xf;
	const char *type_name = kind < 6 ? types[kind] : NULL;

	if (family)
		snprintf(out, MAX_DETAIL, "%s %s", family, type_name ? type_name : "");
	else
		snprintf(out, MAX_DETAIL, "address family %d", (int)domain);
	size_t n = strlen(out);
	if (n && out[n - 1] == ' ')
		out[n - 1] = 0;
}

static const char *fcntl_name(int cmd)
{
	switch (cmd) {
	case F_SETFL: return "F_SETFL";
	case F_GETLK: return "F_GETLK";
	case F_SETLK: return "F_SETLK";
	case F_SETLKW: return "F_SETLKW";
	case F_SETOWN: return "F_SETOWN";
	case F_GETOWN: return "F_GETOWN";
	case F_SETSIG: return "F_SETSIG";
	case F_GETSIG: return "F_GETSIG";
	case F_SETOWN_EX: return "F_SETOWN_EX";
	case F_GETOWN_EX: return "F_GETOWN_EX";
	case F_OFD_GETLK: return "F_OFD_GETLK";
	case F_OFD_SETLK: return "F_OFD_SETLK";
	case F_OFD_SETLKW: return "F_OFD_SETLKW";
	case F_SETLEASE: return "F_SETLEASE";
	case F_GETLEASE: return "F_GETLEASE";
	case F_NOTIFY: return "F_NOTIFY";
	case F_SETPIPE_SZ: return "F_SETPIPE_SZ";
	case F_ADD_SEALS: return "F_ADD_SEALS";
	case F_GET_SEALS: return "F_GET_SEALS";
	}
	return NULL;
}

/* "F_SETOWN pid 1234 on fd 3", "F_SETSIG SIGKILL on fd 3", "F_SETFL O_ASYNC on fd 3" */
static void fcntl_detail(struct pager *p, char *out, const struct seccomp_data *d, struct err *e)
{
	int fd = (int)d->args[0], cmd = (int)d->args[1];
	int arg = (int)d->args[2];	/* an int for every command but F_SETOWN_EX (a pointer) */
	const char *name = fcntl_name(cmd);
	char what[64];

	if (cmd == F_SETOWN) {
		snprintf(what, sizeof(what), arg < 0 ? "process group %d" : "pid %d",
			 arg < 0 ? -arg : arg);
	} else if (cmd == F_SETSIG) {
		signal_name(what, sizeof(what), (uint64_t)arg);
	} else if (cmd == F_SETFL) {
		snprintf(what, sizeof(what), "%s", arg & O_ASYNC ? "O_ASYNC" : "");
	} else if (cmd == F_SETOWN_EX) {
		struct f_owner_ex owner = { 0 };
		pager_read_target(p, &owner, d->args[2], sizeof(owner), e);
		snprintf(what, sizeof(what), "%s %d", owner.type == F_OWNER_PGRP ? "process group" :
			 owner.type == F_OWNER_TID ? "thread" : "pid", owner.pid);
	} else {
		what[0] = 0;
	}
	if (name)
		snprintf(out, MAX_DETAIL, "%s%s%s on fd %d", name, what[0] ? " " : "", what, fd);
	else
		snprintf(out, MAX_DETAIL, "command %d on fd %d", cmd, fd);
}

/* "MADV_HWPOISON", "advice 77" */
static void madvise_detail(char *out, const struct seccomp_data *d)
{
	static const char *const names[] = {
		[MADV_REMOVE] = "MADV_REMOVE", [MADV_MERGEABLE] = "MADV_MERGEABLE",
		[MADV_UNMERGEABLE] = "MADV_UNMERGEABLE", [MADV_COLLAPSE_] = "MADV_COLLAPSE",
		[MADV_HWPOISON] = "MADV_HWPOISON", [MADV_SOFT_OFFLINE] = "MADV_SOFT_OFFLINE",
	};
	int advice = (int)d->args[2];

	if (advice >= 0 && advice < (int)(sizeof(names) / sizeof(names[0])) && names[advice])
		snprintf(out, MAX_DETAIL, "%s", names[advice]);
	else
		snprintf(out, MAX_DETAIL, "advice %d", advice);
}

int sandbox_detail(struct pager *p, char *out, const struct seccomp_data *d, struct err *e)
{
	int first, second;

	out[0] = 0;
	if (signal_detail(out, d))
		return 1;
	switch (d->nr) {
	case SYS_socket: case SYS_socketpair:
		socket_detail(out, d->args[0], d->args[1]);
		return out[0] != 0;
	case SYS_connect: case SYS_bind:
		sockaddr_detail(p, out, d->args[1], d->args[2], e);
		return out[0] != 0;
	case SYS_sendto:
		sockaddr_detail(p, out, d->args[4], d->args[5], e);
		return out[0] != 0;
	case SYS_fcntl:
		fcntl_detail(p, out, d, e);
		return 1;
	case SYS_madvise:
		madvise_detail(out, d);
		return 1;
	}
	path_args(d->nr, &first, &second);
	if (first < 0 || !d->args[first])
		return 0;	/* no path, or a NULL one */
	read_target_string(p, out, d->args[first], e);
	if (second >= 0) {
		char other[MAX_DETAIL];
		read_target_string(p, other, d->args[second], e);
		size_t n = strlen(out);
		snprintf(out + n, MAX_DETAIL - n, " -> %s", other);
	}
	return 1;	/* a path, maybe "" */
}
