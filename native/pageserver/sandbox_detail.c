/*
 * sandbox.h: the telling argument of a refused system call, read from the
 * process while the call waits: the path(s) of a file system call ("old -> new"
 * for rename, link, symlink), the signal and its target, the address of a
 * socket call.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
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

/* "SIGKILL to pid 1234" for the signal-sending calls; 0 when nr is not one. */
static int signal_detail(char *out, const struct seccomp_data *d)
{
	char sig[32];

	switch (d->nr) {
	case SYS_kill:
		signal_name(sig, sizeof(sig), d->args[1]);
		snprintf(out, MAX_DETAIL, "%s to pid %d", sig, (int)d->args[0]);
		return 1;
	case SYS_tkill:
		signal_name(sig, sizeof(sig), d->args[1]);
		snprintf(out, MAX_DETAIL, "%s to thread %d", sig, (int)d->args[0]);
		return 1;
	case SYS_tgkill: case SYS_rt_tgsigqueueinfo:
		signal_name(sig, sizeof(sig), d->args[2]);
		snprintf(out, MAX_DETAIL, "%s to pid %d", sig, (int)d->args[0]);
		return 1;
	case SYS_rt_sigqueueinfo:
		signal_name(sig, sizeof(sig), d->args[1]);
		snprintf(out, MAX_DETAIL, "%s to pid %d", sig, (int)d->args[0]);
		return 1;
	case SYS_pidfd_send_signal:
		signal_name(sig, sizeof(sig), d->args[1]);
		snprintf(out, MAX_DETAIL, "%s to pidfd %d", sig, (int)d->args[0]);
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

void sandbox_detail(struct pager *p, char *out, const struct seccomp_data *d, struct err *e)
{
	int first, second;

	out[0] = 0;
	if (signal_detail(out, d))
		return;
	switch (d->nr) {
	case SYS_socket: case SYS_socketpair:
		socket_detail(out, d->args[0], d->args[1]);
		return;
	case SYS_connect: case SYS_bind:
		sockaddr_detail(p, out, d->args[1], d->args[2], e);
		return;
	case SYS_sendto:
		sockaddr_detail(p, out, d->args[4], d->args[5], e);
		return;
	}
	path_args(d->nr, &first, &second);
	if (first < 0)
		return;
	read_target_string(p, out, d->args[first], e);
	if (second >= 0) {
		char other[MAX_DETAIL];
		read_target_string(p, other, d->args[second], e);
		size_t n = strlen(out);
		snprintf(out + n, MAX_DETAIL - n, " -> %s", other);
	}
}

