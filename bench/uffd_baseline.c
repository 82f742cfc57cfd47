/*
 * uffd_baseline: the kernel's own price of a userfaultfd fault, for bench/lazy_fill.py
 * to print beside ttd's figures from the same run (issue 12).
 *
 *   uffd_baseline BASE SIZE WINDOW [--no-pin] [--missing]
 *
 * A target process maps SIZE bytes of anonymous memory at BASE, registers it
 * with userfaultfd exactly as ttd-stub does (UFFD_FEATURE_WP_ASYNC |
 * WP_UNPOPULATED, MISSING | WP), hands the descriptor over and sleeps. This
 * process serves its faults from an image in memory, the way ttd-pageserver
 * serves them from the recording and nothing more: a blocking read of the
 * userfaultfd, one UFFDIO_COPY_MODE_WP (DONTWAKE) and one UFFDIO_WAKE per fault,
 * as ttd-pageserver does (fault.c: its serve time ends before the woken process
 * runs, which on one CPU it does inside the waking call), WINDOW pages when the fault
 * comes where the previous fill ended (ttd's fault-around rule: from the
 * faulting page up to the first filled page), one page otherwise. Unless
 * --no-pin, it pins itself and the target to the CPU it runs on, as
 * ttd-pageserver does (main.c pin_to_one_cpu()). --missing registers MISSING
 * only and copies without write protection, as ttd's diff tracker does.
 *
 * Prints "READY <target pid>" once the target can be touched (bench/lazy_fill.py's
 * toucher reads it with process_vm_readv). On SIGTERM it prints
 * "STATS <faults> <pages> <serve p50 ns>" (its own time per fault, from the read to
 * the end of the copy: the kernel's copy) and exits; the target dies with it (PR_SET_PDEATHSIG).
 *
 * Built by bench/lazy_fill.py: gcc -O2 -I native.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "uffd_compat.h"

#define PAGE 4096UL

#define err(...) do { fprintf(stderr, "uffd_baseline: " __VA_ARGS__); \
		      fprintf(stderr, ": %s\n", strerror(errno)); exit(1); } while (0)

static volatile sig_atomic_t stop;

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000ULL + t.tv_nsec;
}

static void send_fd(int sock, int fd)
{
	char data = 0, ctl[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { &data, 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			    .msg_controllen = sizeof(ctl) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	if (sendmsg(sock, &m, 0) != 1)
		err("sendmsg");
}

static int recv_fd(int sock)
{
	char data, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &data, 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			    .msg_controllen = sizeof(ctl) };
	int fd;

	if (recvmsg(sock, &m, 0) != 1 || !CMSG_FIRSTHDR(&m))
		err("recvmsg");
	memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof(int));
	return fd;
}

/* The target: the registered region, then sleep until the handler is gone. */
static void target_main(int sock, uint64_t base, uint64_t size, int missing)
{
	struct uffdio_api api = { .api = UFFD_API, .features = missing ? 0 : NEED_UFFD_API_FEATURES };
	struct uffdio_register reg = {
		.range = { .start = base, .len = size },
		.mode = UFFDIO_REGISTER_MODE_MISSING | (missing ? 0 : UFFDIO_REGISTER_MODE_WP),
	};
	int uffd;
	char c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (mmap((void *)base, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) != (void *)base)
		err("mmap of %#lx", (unsigned long)base);
	uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
	if (uffd < 0)
		err("userfaultfd");
	if (ioctl(uffd, UFFDIO_API, &api) || ioctl(uffd, UFFDIO_REGISTER, &reg))
		err("UFFDIO_API/REGISTER");
	send_fd(sock, uffd);
	close(uffd);
	while (read(sock, &c, 1) != 0 && errno == EINTR)
		;
	_exit(0);
}

static void pin(pid_t target)
{
	cpu_set_t one;
	int cpu = sched_getcpu();

	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_setaffinity(0, sizeof(one), &one) || sched_setaffinity(target, sizeof(one), &one))
		err("sched_setaffinity");
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	int pinned = 1, missing = 0;

	if (argc < 4) {
		fprintf(stderr, "usage: uffd_baseline BASE SIZE WINDOW [--no-pin] [--missing]\n");
		return 2;
	}
	for (int i = 4; i < argc; i++) {
		pinned &= strcmp(argv[i], "--no-pin") != 0;
		missing |= strcmp(argv[i], "--missing") == 0;
	}
	uint64_t base = strtoull(argv[1], NULL, 0), size = strtoull(argv[2], NULL, 0);
	uint64_t window = strtoull(argv[3], NULL, 0), npages = size / PAGE, last_end = 0;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		err("socketpair");
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		target_main(sv[1], base, size, missing);
	}
	close(sv[1]);
	int uffd = recv_fd(sv[0]);
	if (pinned)
		pin(pid);

	/* the image: every page distinct, touched now so serving never faults here */
	uint8_t *image = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
			      MAP_POPULATE, -1, 0), *filled = calloc(npages, 1);
	uint32_t *lat = malloc((npages + 1) * sizeof(*lat));
	if (image == MAP_FAILED || !filled || !lat)
		err("out of memory");
	for (uint64_t i = 0; i < npages; i++)
		memset(image + i * PAGE, (int)(i % 251) + 1, PAGE);

	struct sigaction sa = { .sa_handler = on_term };	/* no SA_RESTART: read returns */
	sigaction(SIGTERM, &sa, NULL);
	printf("READY %d\n", pid);
	fflush(stdout);

	uint64_t nfaults = 0, npages_served = 0;
	while (!stop) {
		struct uffd_msg msg;
		if (read(uffd, &msg, sizeof(msg)) != sizeof(msg)) {
			if (errno == EINTR)
				continue;
			err("read of the userfaultfd");
		}
		uint64_t t0 = now_ns();
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		uint64_t page = msg.arg.pagefault.address & ~(PAGE - 1), k = (page - base) / PAGE;
		uint64_t end = k + (page == last_end ? window : 1), j = k;
		while (j < end && j < npages && !filled[j])
			filled[j++] = 1;
		struct uffdio_copy copy = { .dst = page, .src = (uint64_t)(image + k * PAGE),
					    .len = (j - k) * PAGE,
					    .mode = (missing ? 0 : UFFDIO_COPY_MODE_WP) |
						    UFFDIO_COPY_MODE_DONTWAKE };
		struct uffdio_range woken = { .start = page, .len = PAGE };
		if (ioctl(uffd, UFFDIO_COPY, &copy) && errno != EEXIST)
			err("UFFDIO_COPY at %#lx", (unsigned long)page);
		lat[nfaults++ % (npages + 1)] = (uint32_t)(now_ns() - t0);
		if (ioctl(uffd, UFFDIO_WAKE, &woken))
			err("UFFDIO_WAKE at %#lx", (unsigned long)page);
		last_end = base + j * PAGE;
		npages_served += j - k;
	}
	uint64_t n = nfaults < npages + 1 ? nfaults : npages + 1;
	qsort(lat, n, sizeof(*lat), cmp_u32);
	printf("STATS %lu %lu %u\n", (unsigned long)nfaults, (unsigned long)npages_served,
	       n ? lat[n / 2] : 0);
	return 0;
}
