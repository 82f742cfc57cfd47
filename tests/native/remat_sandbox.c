/* Target for tests/native: after tick 1 (its int3) it tries what the sandbox must
 * refuse: create a file, delete one, signal its parent, fork; and what it must let
 * through: signal itself, write to stdout. It prints what each call returned. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	char keep[64], created[64];
	int fd;

	snprintf(keep, sizeof(keep), "/tmp/ttd-sandbox-%d.keep", getpid());
	snprintf(created, sizeof(created), "/tmp/ttd-sandbox-%d.new", getpid());
	fd = open(keep, O_CREAT | O_WRONLY, 0644);
	close(fd);
	printf("base=/tmp/ttd-sandbox-%d\n", getpid());
	fflush(stdout);
	asm volatile("int3");	/* tick 1 */

	int open_ret = open(created, O_CREAT | O_WRONLY, 0644), open_errno = errno;
	int unlink_ret = unlink(keep), unlink_errno = errno;
	int parent_ret = kill(getppid(), 0), parent_errno = errno;
	int self_ret = kill(getpid(), 0);
	int fork_ret = fork(), fork_errno = errno;
	if (fork_ret == 0)
		_exit(0);
	printf("open %d %d unlink %d %d kill-parent %d %d kill-self %d fork %d %d\n", open_ret,
	       open_errno, unlink_ret, unlink_errno, parent_ret, parent_errno, self_ret, fork_ret,
	       fork_errno);
	return 0;
}
