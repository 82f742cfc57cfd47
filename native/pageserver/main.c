/*
 * ttd-pageserver: rebuilds a recorded process at a tick and serves its memory.
 *
 * Started by gdb_plugin/remat/client.py with the control socket on fd 0:
 *
 *   ttd-pageserver --out-fd N --err-fd M [--stub PATH]
 *   ttd-pageserver --abi        (the contract with remat/spec.py as JSON: abi.c)
 *
 * 1. reads the spec (spec.h: struct spec_head, then maps, auxv, xstate, db path);
 * 2. checks the host (host.c): userfaultfd permission and features,
 *    PAGEMAP_SCAN, and that no recorded mapping overlaps ttd-stub's image;
 *    picks the tracker (tracker.h): wp-async when the kernel has WP_ASYNC and
 *    PAGEMAP_SCAN, else diff, unless the spec forces one;
 * 3. starts ttd-stub (stub.c), which rebuilds the address space, and sets the
 *    recorded registers while it is stopped; detaches leaving it stopped;
 * 4. answers "READY <pid> <tracker>" ("wp-async" or "diff"; when the
 *    tracker was not forced and the kernel made it diff, what it lacks follows:
 *    "READY 123 diff UFFD_FEATURE_WP_ASYNC") and serves (fault.c): every fault
 *    is filled from the page's content at the tick (zeros included), verified
 *    (verify.c), with the tracker's copy mode, so fills never count as writes.
 *    With the sandbox, refused system calls are answered EPERM and recorded
 *    with their telling argument (sandbox.c).
 *    Control requests, one line each (ctl.c):
 *      STATS   -> "OK {json}" (faults, ..., "tracker", "blocked_syscalls":
 *                 [{"name": "unlink", "count": 1, "detail": "/tmp/x"}, ...] (the first
 *                 100 (name, detail) pairs), "blocked_syscalls_left_out": {"distinct":
 *                 N, "calls": M} (the rest))
 *      WRITTEN -> "OK n" then n lines "start end" (hex, page ranges written)
 *      CLEAR   -> "OK" after write-protecting every registered page again
 *                 (diff: after taking the current bytes as the baseline)
 *      FILL lo hi -> "OK" after filling the unfilled pages of [lo, hi) (hex),
 *                 as faults would (benchmarks prefill with it)
 *      TAKE_BLOCKED -> "OK {"sandbox": true, "blocked_syscalls": [...],
 *                 "blocked_syscalls_left_out": {"distinct": 0, "calls": 0}}": what the
 *                 sandbox refused since the last TAKE_BLOCKED (STATS shows the same);
 *                 the list starts again
 *      THREADS -> "OK tid ..." the id each recorded thread got, in the spec's order
 *      MOVE tick nr_maps brk ran + nr_maps x struct stub_map -> "OK fn arg" (hex: the
 *                 caller, the process's tracer, calls fn(arg) in it when fn is not 0),
 *                 or "NO <why>" (refused, the process as it was); then
 *      MOVED   -> "OK {json}" once the process is the recording at the tick (move.h)
 *      KILL    -> "OK" after killing and reaping the process; then exits
 *    Unasked: "GONE <wait status> {json}" when the process ended (then exits 0),
 *    "ERROR <message>" on a fatal error (then exits 2; the process is killed).
 * EOF on the control socket kills the process too: nothing outlives the caller.
 * Before READY every error is "ERROR <message>" and exit 2 (die()).
 *
 * The hot path, per fault: one range query on page_version/page_content (one
 * read transaction per burst of faults, the file memory-mapped: store_sqlite.c),
 * zstd into a staging buffer, sha256 of every page (on two cores for
 * multi-page fills: verify.c), one UFFDIO_COPY_MODE_WP for the range. The
 * range is the faulting page, or 64 KiB from it when the fault comes where the
 * previous fill ended (sequential access). A page whose hash does not match is
 * never installed: the process is killed and the range poisoned (UFFDIO_POISON)
 * so a reader waiting on it gets an error, not zeros.
 *
 * The process gets the recorded thread's id when that id is free (clone3
 * set_tid): glibc keeps the tid in the thread descriptor and GDB's
 * libthread_db (TLS variables) compares it with the real one.
 *
 * The process may change its memory map after the tick (region.c):
 * madvise(MADV_DONTNEED) (UFFD_EVENT_REMOVE: those pages read as zeros from
 * then on, and count as written), mremap moving recorded memory
 * (UFFD_EVENT_REMAP: its pages keep their recorded contents at the new place),
 * growth in place (zeros).
 *
 * The serving thread and the process share one CPU (see pin_to_one_cpu()).
 *
 * Testing knobs (environment): TTD_UFFD_FEATURES_MASK, TTD_NO_PAGEMAP_SCAN
 * (host.h); TTD_NO_PIN=1 leaves CPU placement to the scheduler (benchmarks
 * compare); TTD_DEBUG=1 logs to stderr.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#define LOG_PREFIX "ttd-pageserver: "
#include "log.h"
#include "abi.h"
#include "bench.h"
#include "host.h"
#include "io.h"
#include "server.h"
#include "store.h"
#include "stub.h"
#include "uffd_compat.h"
#include "verify.h"

int log_debug_enabled;

static struct server srv = {
	.ctl_fd = 0, .out_fd = -1, .err_fd = -1, .target = TARGET_INIT,
	.pager = { .target = &srv.target },
	.sandbox = { .listener = -1, .pager = &srv.pager },
};

#define DIE_REAP_MS 5000

void die(struct server *s, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	stub_kill(&s->target, DIE_REAP_MS);	/* first: whoever waits wakes up to a dead process */
	pager_poison_serving(&s->pager);
	pr_debug("%s", msg);
	ctl_printf(s, "ERROR %s\n", msg);
	exit(2);
}

/* The tracker host_probe() chose, on the pager's regions. */
static void make_tracker(struct server *s, const struct host *h)
{
	struct tracker_env env = { .target = &s->target, .regions = &s->pager.regions,
				   .read_recorded = pager_read_recorded, .ctx = &s->pager };

	s->tracker = h->diff ? tracker_diff_new(&env) : tracker_wp_new(&env);
	if (!s->tracker)
		die(s, "out of memory");
	s->pager.tracker = s->tracker;
	s->fallback = h->fallback[0] ? h->fallback : NULL;
}

static void open_store(struct server *s, const struct host *h)
{
	struct err e = { 0 };

	s->pager.store = store_open(s->spec.db_path, &e);
	if (!s->pager.store)
		die(s, "%s", e.msg);
	s->pager.verifier = verifier_start();
	if (!s->pager.verifier)
		die(s, "out of memory");
	s->pager.tick = s->spec.head.tick;
	s->pager.fault_around_pages = s->spec.head.fault_around_pages;
	s->pager.can_poison = !!(h->uffd_features & UFFD_FEATURE_POISON);
}

static void start_process(struct server *s, const struct host *h)
{
	uint64_t events = UFFD_FEATURE_POISON | UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_REMAP |
			  UFFD_FEATURE_EVENT_UNMAP;
	struct stub_args args = {
		.path = s->stub_path, .out_fd = s->out_fd, .err_fd = s->err_fd, .spec = &s->spec,
		.uffd_features = (s->tracker->ops->register_wp ? NEED_UFFD_API_FEATURES : 0) |
				 (h->uffd_features & events),
		.register_wp = s->tracker->ops->register_wp,
	};
	struct err e = { 0 };

	if (stub_start(&s->target, &args, &e) ||
	    pager_init(&s->pager, s->spec.maps, s->spec.head.nr_maps, &e) ||
	    bench_open(&s->pager, s->spec.head.mode, &e))
		die(s, "%s", e.msg);
	s->sandbox.listener = s->target.listener;
	close(s->out_fd);
	close(s->err_fd);
}

/* The store releases its read transaction once no fault has come for this long
 * (store_sqlite.c), so a writer appending to the recording waits at most that long. */
#define IDLE_COMMIT_MS 20
#define REAP_POLL_MS 20		/* the process has exited: poll for the reap (a tracer first) */
#define RETRY_POLL_MS 1		/* faults wait for a retry */

static void serve_loop(struct server *s)
{
	int exited = 0;

	for (;;) {
		struct err e = { 0 };
		int failed = s->failure.kind != ERR_NONE;
		struct pollfd fds[4] = {
			{ .fd = s->target.uffd, .events = POLLIN },
			{ .fd = s->ctl_fd, .events = POLLIN },
			{ .fd = exited ? -1 : s->target.pidfd, .events = POLLIN },
			/* a killed process's notifications end with it: none to answer */
			{ .fd = exited || failed ? -1 : s->sandbox.listener, .events = POLLIN },
		};
		int timeout = s->pager.nr_retry ? RETRY_POLL_MS :
			      exited || s->gone_since_ns ? REAP_POLL_MS :
			      s->pager.store->holding ? IDLE_COMMIT_MS : -1;
		int ret = poll(fds, 4, timeout);

		if (ret < 0 && errno != EINTR) {
			err_set(&e, ERR_INTERNAL, "poll: %s", strerror(errno));
			server_fail(s, &e);
		}
		if (ret == 0)
			store_idle(s->pager.store);	/* idle: let writers in */
		if ((fds[0].revents & POLLIN || s->pager.nr_retry) && pager_handle_uffd(&s->pager, &e))
			server_fail(s, &e);
		if (fds[3].revents & POLLIN && sandbox_handle(&s->sandbox, &e))
			server_fail(s, &e);
		if (fds[1].revents & (POLLIN | POLLHUP | POLLERR) && ctl_handle(s) < 0)
			server_end(s);	/* EOF: nothing outlives the caller */
		if (fds[2].revents & POLLIN)
			exited = 1;
		if (exited || fds[0].revents & (POLLHUP | POLLERR))
			server_check_exit(s);
		if (s->gone_since_ns)
			server_check_gone(s);
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

static void parse_args(struct server *s, int argc, char **argv)
{
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--out-fd") == 0)
			s->out_fd = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--err-fd") == 0)
			s->err_fd = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--stub") == 0)
			s->stub_path = argv[i + 1];
	}
	if (!s->stub_path)
		s->stub_path = default_stub_path();
	if (s->out_fd < 0 || s->err_fd < 0)
		die(s, "usage: ttd-pageserver --out-fd N --err-fd M [--stub PATH] (spec on fd 0)");
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
	struct server *s = &srv;
	struct host host = { 0 };
	struct err e = { 0 };

	if (argc == 2 && strcmp(argv[1], "--abi") == 0) {
		abi_print(stdout);
		return 0;
	}
	log_debug_enabled = getenv("TTD_DEBUG") != NULL;
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_CHILD_SUBREAPER, 1);	/* see stub_kill() */
	wait_bounded_init();
	parse_args(s, argc, argv);
	if (spec_read(s->ctl_fd, &s->spec, &e) || host_probe(&host, s->spec.head.flags, &e) ||
	    stub_read_image(s->stub_path, &s->target, &e) ||
	    stub_check_layout(&s->target, &s->spec, &e))
		die(s, "%s", e.msg);
	make_tracker(s, &host);
	open_store(s, &host);
	start_process(s, &host);
	pin_to_one_cpu(s->target.pid);
	if (bench_before_ready(&s->pager, s->spec.head.mode, &e))
		die(s, "%s", e.msg);
	if (s->fallback)
		ctl_printf(s, "READY %d diff %s\n", s->target.pid, s->fallback);
	else
		ctl_printf(s, "READY %d %s\n", s->target.pid, s->tracker->ops->name);
	serve_loop(s);
}
