/* Target for tests/native: after tick 1 (its int3) it tries every way out the
 * sandbox must refuse: delete a file (twice), truncate one, rename one, SIGKILL
 * its parent, open a socket and connect (IPv4, IPv6), send to a unix socket,
 * fork, execve; and signals itself,
 * which must pass. It prints what each call returned and its errno.
 * Recorded with max_ticks=1: the live run ends at the int3 and does none of it. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;
static volatile sig_atomic_t got_usr1;

static void on_usr1(int sig)
{
	got_usr1 = sig;
}

static void make_file(const char *path)
{
	FILE *f = fopen(path, "w");

	fputs("recorded\n", f);
	fclose(f);
}

int main(void)
{
	char keep[64], victim[64], moved[64];
	char *args[] = { "/bin/true", NULL };
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(9) };
	struct sockaddr_in6 addr6 = { .sin6_family = AF_INET6, .sin6_port = htons(53),
				      .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sockaddr_un unix_addr = { .sun_family = AF_UNIX };

	snprintf(keep, sizeof(keep), "/tmp/ttd-escape-%d.keep", getpid());
	snprintf(victim, sizeof(victim), "/tmp/ttd-escape-%d.victim", getpid());
	snprintf(moved, sizeof(moved), "/tmp/ttd-escape-%d.moved", getpid());
	make_file(keep);
	make_file(victim);
	snprintf(unix_addr.sun_path, sizeof(unix_addr.sun_path), "/tmp/ttd-escape-%d.sock", getpid());
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	printf("base=/tmp/ttd-escape-%d\n", getpid());
	fflush(stdout);
	asm volatile("int3");	/* tick 1 */

	int unlink_ret = unlink(keep), unlink_errno = errno;
	unlink(keep);
	int open_ret = open(victim, O_WRONLY | O_TRUNC), open_errno = errno;
	int rename_ret = rename(victim, moved), rename_errno = errno;
	int kill_ret = kill(getppid(), SIGKILL), kill_errno = errno;
	int sock = socket(AF_INET, SOCK_STREAM, 0), sock_errno = errno;
	int connect_ret = connect(sock, (struct sockaddr *)&addr, sizeof(addr)), connect_errno = errno;
	connect(sock, (struct sockaddr *)&addr6, sizeof(addr6));
	sendto(sock, "x", 1, 0, (struct sockaddr *)&unix_addr, sizeof(unix_addr));
	int fork_ret = fork(), fork_errno = errno;
	if (fork_ret == 0)
		_exit(0);
	int exec_ret = execve(args[0], args, environ), exec_errno = errno;
	signal(SIGUSR1, on_usr1);	/* after the tick: handlers are kernel state, not recorded */
	int self_ret = kill(getpid(), SIGUSR1);
	printf("unlink %d %d open %d %d rename %d %d kill %d %d socket %d %d connect %d %d "
	       "fork %d %d execve %d %d self %d %d\n", unlink_ret, unlink_errno, open_ret, open_errno,
	       rename_ret, rename_errno, kill_ret, kill_errno, sock, sock_errno, connect_ret,
	       connect_errno, fork_ret, fork_errno, exec_ret, exec_errno, self_ret, got_usr1);
	return 0;
}
