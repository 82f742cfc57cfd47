/*
 * ttd-pageserver: rebuilds a recorded process at a tick and serves its memory.
 *
 * Started by gdb_plugin/remat/client.py with the control socket on fd 0:
 *
 *   ttd-pageserver --out-fd N --err-fd M [--stub PATH]
 *
 * 1. reads the spec (struct spec_head below, then maps, auxv, xstate, db path);
 * 2. checks the host: userfaultfd permission and features (probed on a
 *    throwaway descriptor: UFFDIO_API may be called once per descriptor),
 *    PAGEMAP_SCAN, and that no recorded mapping overlaps ttd-stub's image;
 *    picks the tracker (see enum tracker): wp-async when the kernel has
 *    WP_ASYNC and PAGEMAP_SCAN, else diff, unless the spec forces one;
 * 3. starts ttd-stub traced (fds 0 = /dev/null, 1/2 = the caller's pipes,
 *    3 = a socket), sends it the layout, receives its userfaultfd, sets the
 *    recorded registers while it is stopped and detaches with SIGSTOP;
 * 4. answers "READY <pid> <tracker>" ("wp-async" or "diff"; when the
 *    tracker was not forced and the kernel made it diff, what it lacks follows:
 *    "READY 123 diff UFFD_FEATURE_WP_ASYNC") and serves: every fault is
 *    filled with UFFDIO_COPY_MODE_WP (diff: plain UFFDIO_COPY, and a copy of
 *    the page is kept) from the page's content at the tick (zeros included),
 *    so fills never count as writes and PAGEMAP_SCAN reports exactly the
 *    pages written since. With the sandbox, refused system calls are answered
 *    EPERM and recorded with their telling argument (see "the sandbox").
 *    Control requests, one line each:
 *      STATS   -> "OK {json}" (faults, ..., "tracker", "blocked_syscalls":
 *                 [{"name": "unlink", "count": 1, "detail": "/tmp/x"}, ...])
 *      WRITTEN -> "OK n" then n lines "start end" (hex, page ranges written)
 *      CLEAR   -> "OK" after write-protecting every registered page again
 *                 (diff: after taking the current bytes as the baseline)
 *      FILL lo hi -> "OK" after filling the unfilled pages of [lo, hi) (hex),
 *                 as faults would (benchmarks prefill with it)
 *      KILL    -> "OK" after killing and reaping the process; then exits
 *    Unasked: "GONE <wait status> {json}" when the process ended (then exits 0),
 *    "ERROR <message>" on a fatal error (then exits 2; the process is killed).
 * EOF on the control socket kills the process too: nothing outlives the caller.
 *
 * The hot path, per fault: one range query on page_version/page_content (one
 * read transaction per burst of faults, the file memory-mapped), zstd into a
 * staging buffer, sha256 of every page (on two cores for multi-page fills, see
 * "Verifying pages on two cores"), one UFFDIO_COPY_MODE_WP for the range. The
 * range is the faulting page, or 64 KiB from it when the fault comes where the
 * previous fill ended (sequential access). A page whose hash does not match is
 * never installed: the process is killed and the range poisoned (UFFDIO_POISON)
 * so a reader waiting on it gets an error, not zeros.
 *
 * The process gets the recorded thread's id when that id is free (clone3
 * set_tid): glibc keeps the tid in the thread descriptor and GDB's
 * libthread_db (TLS variables) compares it with the real one.
 *
 * The process may change its memory map after the tick: madvise(MADV_DONTNEED)
 * (UFFD_EVENT_REMOVE: those pages read as zeros from then on, and count as
 * written), mremap moving recorded memory (UFFD_EVENT_REMAP: its pages keep
 * their recorded contents at the new place), growth in place (zeros).
 *
 * The serving thread and the process share one CPU (see pin_to_one_cpu()).
 *
 * Testing knobs (environment): TTD_UFFD_FEATURES_MASK=0x... pretends the
 * kernel offers only these userfaultfd features; TTD_NO_PAGEMAP_SCAN=1
 * pretends PAGEMAP_SCAN is missing; TTD_NO_PIN=1 leaves CPU placement to the
 * scheduler (benchmarks compare).
 */
#define _GNU_SOURCE
#define OPENSSL_SUPPRESS_DEPRECATED
#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


#define LOG_PREFIX "ttd-pageserver: "
#include "log.h"
#include "layout.h"
#include "uffd_compat.h"
#include "err.h"
#include "io.h"
#include "store.h"
#include "verify.h"
#include "page.h"
#include "spec.h"
#include "stub.h"
#include "target.h"
#include "bench.h"
#include "fault.h"
#include "ranges.h"
#include "region.h"
#include "tracker.h"
#include "sandbox.h"

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

#define EAGER_WINDOW_PAGES 256	/* 1 MiB per copy when filling everything up front */

int log_debug_enabled;


struct server {
	struct spec spec;
	int ctl_fd, out_fd, err_fd;
	const char *stub_path;
	struct target target;
	struct pager pager;
	struct tracker *tracker;
	struct sandbox sandbox;
	const char *fallback;	/* what the kernel lacks when auto chose the diff tracker */
};

static struct server srv = { .ctl_fd = 0, .out_fd = -1, .err_fd = -1, .target = TARGET_INIT,
			     .pager = { .target = &srv.target },
			     .sandbox = { .listener = -1, .pager = &srv.pager } };

/* ---- control channel ---------------------------------------------------- */

static void ctl_printf(const char *fmt, ...)
{
	char *line = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (n > 0)
		write_all(srv.ctl_fd, line, n);
	free(line);
}

#define KILL_REAP_MS 5000

static void kill_stub(void)
{
	stub_kill(&srv.target, KILL_REAP_MS);
}

/* A fatal error: the process must not run on; tell the caller in one line. */
static __attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kill_stub();	/* first: whoever waits on the range wakes up to a dead process */
	pager_poison_serving(&srv.pager);
	pr_debug("%s", msg);
	ctl_printf("ERROR %s\n", msg);
	exit(2);
}

/* ---- reading the spec --------------------------------------------------- */

/* ---- host checks -------------------------------------------------------- */

/* A userfaultfd the way the stub makes one: syscall first, /dev/userfaultfd second. */
static int open_uffd(void)
{
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd >= 0 || (errno != EPERM && errno != EACCES))
		return fd;
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		errno = EPERM;
		return -1;
	}
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	close(dev);
	return fd;
}

static uint64_t probe_uffd_features(void)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	const char *mask = getenv("TTD_UFFD_FEATURES_MASK");
	int fd = open_uffd();

	if (fd < 0 && (errno == EPERM || errno == EACCES))
		die("no permission for userfaultfd: run as root or with CAP_SYS_PTRACE, "
		    "or set sysctl vm.unprivileged_userfaultfd=1, or give this user "
		    "read-write access to /dev/userfaultfd");
	if (fd < 0)
		die("userfaultfd is not available (%s): ttd needs a kernel built with "
		    "CONFIG_USERFAULTFD, Linux 6.7 or newer", strerror(errno));
	if (ioctl(fd, UFFDIO_API, &api) || api.api != UFFD_API)
		die("userfaultfd API handshake failed (%s)", strerror(errno));
	close(fd);
	if (mask)
		api.features &= strtoull(mask, NULL, 0);	/* testing knob */
	return api.features;
}

/* What the wp-async tracker needs and this kernel lacks: "" when nothing. */
static const char *missing_features(uint64_t features)
{
	static char missing[128];

	missing[0] = 0;
	if (!(features & UFFD_FEATURE_WP_ASYNC))
		strcat(missing, " WP_ASYNC");
	if (!(features & UFFD_FEATURE_WP_UNPOPULATED))
		strcat(missing, " WP_UNPOPULATED");
	return missing[0] ? missing + 1 : missing;
}

/* PAGEMAP_SCAN works: 0, or the errno it failed with. */
static int probe_pagemap_scan(void)
{
	struct page_region vec[4];
	static char probe_page[PAGE_SIZE] __attribute__((aligned(4096)));
	struct pm_scan_arg arg = {
		.size = sizeof(arg), .start = (uint64_t)probe_page,
		.end = (uint64_t)probe_page + PAGE_SIZE, .vec = (uint64_t)vec, .vec_len = 4,
		.category_mask = PAGE_IS_PRESENT, .return_mask = PAGE_IS_PRESENT,
	};
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	long ret = fd < 0 ? -1 : ioctl(fd, PAGEMAP_SCAN, &arg);
	int err = errno;

	if (fd >= 0)
		close(fd);
	if (getenv("TTD_NO_PAGEMAP_SCAN") && strcmp(getenv("TTD_NO_PAGEMAP_SCAN"), "1") == 0) {
		ret = -1;	/* testing knob */
		err = ENOTTY;
	}
	return ret < 0 ? err : 0;
}

/*
 * wp-async when the kernel has what it needs (or when forced: then its lack is
 * the error), else the diff tracker; srv.fallback names what made auto fall back.
 */
static void choose_tracker(uint64_t features)
{
	const char *missing = missing_features(features);
	int scan_err = probe_pagemap_scan();
	static char fallback[160];

	if (srv.spec.head.flags & SPEC_TRACKER_WP_ASYNC) {
		if (missing[0])
			die("this kernel's userfaultfd lacks %s: the wp-async tracker needs Linux 6.7 "
			    "or newer (the diff tracker works without it)", missing);
		if (scan_err)
			die("this kernel lacks the PAGEMAP_SCAN ioctl (%s): the wp-async tracker needs "
			    "Linux 6.7 or newer (the diff tracker works without it)", strerror(scan_err));
	}
	struct tracker_env env = { .target = &srv.target, .regions = &srv.pager.regions,
				   .read_recorded = pager_read_recorded, .ctx = &srv.pager };
	int diff = srv.spec.head.flags & SPEC_TRACKER_DIFF || missing[0] || scan_err;
	srv.tracker = diff ? tracker_diff_new(&env) : tracker_wp_new(&env);
	if (!srv.tracker)
		die("out of memory");
	srv.pager.tracker = srv.tracker;
	if (diff && !(srv.spec.head.flags & SPEC_TRACKER_DIFF)) {
		if (missing[0])	/* the first one it lacks: WP_ASYNC, else WP_UNPOPULATED */
			snprintf(fallback, sizeof(fallback), "UFFD_FEATURE_%.*s",
				 (int)strcspn(missing, " "), missing);
		else
			snprintf(fallback, sizeof(fallback), "the PAGEMAP_SCAN ioctl");
		srv.fallback = fallback;
	}
}

/* ---- the process ----------------------------------------------------------- */

static void start_stub(uint64_t features)
{
	struct stub_args args = { .path = srv.stub_path, .out_fd = srv.out_fd, .err_fd = srv.err_fd,
				  .spec = &srv.spec, .uffd_features = features,
				  .register_wp = srv.tracker->ops->register_wp };
	struct err e = { 0 };

	if (stub_start(&srv.target, &args, &e) ||
	    pager_init(&srv.pager, srv.spec.maps, srv.spec.head.nr_maps, &e) ||
	    bench_open(&srv.pager, srv.spec.head.mode, &e))
		die("%s", e.msg);
	srv.sandbox.listener = srv.target.listener;
}

static void open_store(void)
{
	struct err e = { 0 };

	srv.pager.store = store_open(srv.spec.db_path, &e);
	if (!srv.pager.store)
		die("%s", e.msg);
	srv.pager.verifier = verifier_start();
	if (!srv.pager.verifier)
		die("out of memory");
	srv.pager.tick = srv.spec.head.tick;
	srv.pager.fault_around_pages = srv.spec.head.fault_around_pages;
}

/* Fill [lo, hi) now; a process gone is the process ended. */
static int fill_range(uint64_t lo, uint64_t hi)
{
	struct err e = { 0 };

	if (pager_fill(&srv.pager, lo, hi, &e) == 0)
		return 0;
	if (e.kind != ERR_GONE)
		die("%s", e.msg);
	return -1;
}

/* ---- control requests ---------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double percentile_us(const uint32_t *sorted, size_t n, double q)
{
	if (!n)
		return 0;
	size_t i = (size_t)(q * (n - 1) + 0.5);
	return sorted[i] / 1000.0;
}

/* The statistics as one JSON object (malloc'd). */
static char *format_stats(void)
{
	static const char *modes[] = { "lazy", "eager", "workaround" };
	const struct fault_stats *st = &srv.pager.stats;
	uint32_t *sorted = malloc((st->nr_lat + 1) * sizeof(*sorted));
	double sum = 0;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	if (!sorted || !f)
		die("out of memory");
	memcpy(sorted, st->lat_ns, st->nr_lat * sizeof(*sorted));
	qsort(sorted, st->nr_lat, sizeof(*sorted), cmp_u32);
	for (size_t i = 0; i < st->nr_lat; i++)
		sum += sorted[i];
	fprintf(f,
		"{\"faults\": %" PRIu64 ", \"pages_served\": %" PRIu64 ", \"zero_pages\": %" PRIu64
		", \"bytes\": %" PRIu64 ", \"serve_us_p50\": %.2f, \"serve_us_p99\": %.2f"
		", \"serve_us_max\": %.2f, \"serve_us_mean\": %.2f, \"mode\": \"%s\""
		", \"fault_around_pages\": %u, \"xstate_restored\": %s"
		", \"same_tid\": %s, \"pages_verified_by_helper\": %" PRIu64
		", \"tracker\": \"%s\", \"sandbox\": %s",
		st->faults, st->pages_served, st->zero_pages, st->bytes,
		percentile_us(sorted, st->nr_lat, 0.5), percentile_us(sorted, st->nr_lat, 0.99),
		st->nr_lat ? sorted[st->nr_lat - 1] / 1000.0 : 0.0,
		st->nr_lat ? sum / st->nr_lat / 1000.0 : 0.0, modes[srv.spec.head.mode % 3],
		srv.spec.head.fault_around_pages, srv.target.xstate_restored ? "true" : "false", srv.target.same_tid ? "true" : "false",
		verifier_helper_pages(srv.pager.verifier),
		srv.tracker->ops->name, srv.sandbox.listener >= 0 ? "true" : "false");
	srv.tracker->ops->stats(srv.tracker, f);
	fputs(", \"blocked_syscalls\": ", f);
	sandbox_format(&srv.sandbox, f);
	fputc('}', f);
	fclose(f);
	free(sorted);
	return out;
}

static __attribute__((noreturn)) void stub_gone(int status)
{
	char *stats;

	srv.target.pid = 0;
	stub_end_descendants(0);
	stats = format_stats();
	ctl_printf("GONE %d %s\n", status, stats);
	exit(0);
}

/*
 * An operation on the process failed with ESRCH: it has ended (its memory is
 * gone before its tracer and we have reaped it). That is "the process ended",
 * never an internal error: wait for its wait status and say GONE. The wait is
 * bounded: the tracer (gdbserver) reaps first, and a tracer that hangs must
 * not hang us.
 */
#define GONE_WAIT_MS 5000

static __attribute__((noreturn)) void process_gone(const char *what)
{
	int status;

	for (int ms = 0; ms < GONE_WAIT_MS; ms += 5) {
		pid_t r = waitpid(srv.target.pid, &status, WNOHANG | __WALL);
		if (r == srv.target.pid && (WIFEXITED(status) || WIFSIGNALED(status)))
			stub_gone(status);
		if (r < 0 && errno != EINTR)
			break;
		usleep(5000);
	}
	die("%s: the process ended, but its exit status did not come within %d ms",
	    what, GONE_WAIT_MS);
}

/* Written pages everywhere but in ttd-stub's own image. */
static void reply_written(void)
{
	struct range_list list = { 0 };
	struct err e = { 0 };
	char line[64];

	if (srv.tracker->ops->written(srv.tracker, &list, &e)) {
		if (e.kind == ERR_GONE)
			process_gone(e.msg);
		die("%s", e.msg);
	}
	ctl_printf("OK %zu\n", list.n);
	for (size_t i = 0; i < list.n; i++) {
		int k = snprintf(line, sizeof(line), "%" PRIx64 " %" PRIx64 "\n", list.r[i][0], list.r[i][1]);
		write_all(srv.ctl_fd, line, k);
	}
	ranges_free(&list);
}

/* Forget the writes so far. */
static void clear_written(void)
{
	struct err e = { 0 };

	if (srv.tracker->ops->clear(srv.tracker, &e)) {
		if (e.kind == ERR_GONE)
			process_gone(e.msg);
		die("%s", e.msg);
	}
}

/* Handle one request line; returns -1 at EOF (the caller is gone). */
static int handle_control(void)
{
	static char line[256];
	static size_t used;
	ssize_t n = read(srv.ctl_fd, line + used, sizeof(line) - 1 - used);

	if (n < 0 && errno == EINTR)
		return 0;
	if (n <= 0)
		return -1;
	used += n;
	char *nl;
	while ((nl = memchr(line, '\n', used))) {
		*nl = 0;
		if (strcmp(line, "STATS") == 0) {
			char *stats = format_stats();
			ctl_printf("OK %s\n", stats);
			free(stats);
		} else if (strcmp(line, "WRITTEN") == 0) {
			reply_written();
		} else if (strcmp(line, "CLEAR") == 0) {
			clear_written();
			ctl_printf("OK\n");
		} else if (strncmp(line, "FILL ", 5) == 0) {
			uint64_t lo = 0, hi = 0;
			if (sscanf(line + 5, "%" SCNx64 " %" SCNx64, &lo, &hi) != 2) {
				ctl_printf("ERROR FILL needs two hex addresses\n");
			} else {
				fill_range(lo & ~(PAGE_SIZE - 1), (hi + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1));
				ctl_printf("OK\n");
			}
		} else if (strcmp(line, "KILL") == 0) {
			kill_stub();
			ctl_printf("OK\n");
			exit(0);
		} else {
			ctl_printf("ERROR unknown request '%s'\n", line);
		}
		used -= nl + 1 - line;
		memmove(line, nl + 1, used);
	}
	if (used == sizeof(line) - 1)
		used = 0;	/* an overlong line: drop it */
	return 0;
}

static void check_stub_exit(void)
{
	int status;
	pid_t r = waitpid(srv.target.pid, &status, WNOHANG | __WALL);

	if (r == srv.target.pid && (WIFEXITED(status) || WIFSIGNALED(status)))
		stub_gone(status);
}

/* The store releases its read transaction once no fault has come for this long
 * (store_sqlite.c), so a writer appending to the recording waits at most that long. */
#define IDLE_COMMIT_MS 20

static void serve_loop(void)
{
	int stub_exited = 0;

	for (;;) {
		struct pollfd fds[4] = {
			{ .fd = srv.target.uffd, .events = POLLIN },
			{ .fd = srv.ctl_fd, .events = POLLIN },
			{ .fd = stub_exited ? -1 : srv.target.pidfd, .events = POLLIN },
			{ .fd = stub_exited ? -1 : srv.sandbox.listener, .events = POLLIN },
		};
		/* Once it has exited, poll for the reap: a tracer may reap first. */
		int ret = poll(fds, 4, srv.pager.nr_retry ? 1 : stub_exited ? 20 : srv.pager.store->holding ? IDLE_COMMIT_MS : -1);
		if (ret < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		if (ret == 0)
			store_idle(srv.pager.store);	/* idle: let writers in */
		if (fds[0].revents & POLLIN || srv.pager.nr_retry) {
			struct err e = { 0 };
			if (pager_handle_uffd(&srv.pager, &e))
				die("%s", e.msg);
		}
		if (fds[3].revents & POLLIN)
		{
			struct err e = { 0 };
			if (sandbox_handle(&srv.sandbox, &e))
				die("%s", e.msg);
		}
		if (fds[1].revents & (POLLIN | POLLHUP | POLLERR) && handle_control() < 0) {
			kill_stub();
			exit(0);
		}
		if (fds[2].revents & POLLIN)
			stub_exited = 1;
		if (stub_exited || fds[0].revents & (POLLHUP | POLLERR))
			check_stub_exit();
	}
}

static const char *default_stub_path(void)
{
	static char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 16);

	if (n <= 0)
		return "ttd-stub";
	path[n] = 0;
	char *slash = strrchr(path, '/');
	strcpy(slash ? slash + 1 : path, "ttd-stub");
	return path;
}

static void parse_args(int argc, char **argv)
{
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--out-fd") == 0)
			srv.out_fd = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--err-fd") == 0)
			srv.err_fd = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--stub") == 0)
			srv.stub_path = argv[i + 1];
	}
	if (!srv.stub_path)
		srv.stub_path = default_stub_path();
	if (srv.out_fd < 0 || srv.err_fd < 0)
		die("usage: ttd-pageserver --out-fd N --err-fd M [--stub PATH] (spec on fd 0)");
}

/*
 * Pin the serving thread and the process to the CPU we run on. A fault is a
 * round trip: the faulting thread sleeps until we fill the page. On two CPUs
 * each side's CPU goes idle in between, and leaving idle costs tens of
 * microseconds in a VM: measured here, a random fault took 58 us p50 on an
 * idle machine against 14 us with both on one CPU, where the blocked faulter
 * hands its CPU straight to us. The verifier thread, started before, keeps
 * every CPU for the multi-page hashing. Best effort: placement is no
 * correctness matter.
 */
static void pin_to_one_cpu(pid_t pid)
{
	cpu_set_t one;
	int cpu = sched_getcpu();

	if (getenv("TTD_NO_PIN") || cpu < 0)
		return;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_setaffinity(0, sizeof(one), &one) || sched_setaffinity(pid, sizeof(one), &one))
		pr_debug("cannot pin to CPU %d: %s", cpu, strerror(errno));
}

int main(int argc, char **argv)
{
	uint64_t features;

	log_debug_enabled = getenv("TTD_DEBUG") != NULL;
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_CHILD_SUBREAPER, 1);	/* see stub_kill() */
	parse_args(argc, argv);
	struct err e = { 0 };
	wait_bounded_init();
	if (spec_read(srv.ctl_fd, &srv.spec, &e))
		die("%s", e.msg);
	features = probe_uffd_features();
	choose_tracker(features);
	if (stub_read_image(srv.stub_path, &srv.target, &e) ||
	    stub_check_layout(&srv.target, &srv.spec, &e))
		die("%s", e.msg);
	open_store();
	srv.pager.can_poison = !!(features & UFFD_FEATURE_POISON);
	start_stub((srv.tracker->ops->register_wp ? NEED_UFFD_API_FEATURES : 0) |
		   (features & (UFFD_FEATURE_POISON | UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_REMAP)));
	close(srv.out_fd);
	close(srv.err_fd);
	pin_to_one_cpu(srv.target.pid);
	if (bench_before_ready(&srv.pager, srv.spec.head.mode, &e))
		die("%s", e.msg);
	if (srv.fallback)
		ctl_printf("READY %d diff %s\n", srv.target.pid, srv.fallback);
	else
		ctl_printf("READY %d %s\n", srv.target.pid, srv.tracker->ops->name);
	serve_loop();
}
