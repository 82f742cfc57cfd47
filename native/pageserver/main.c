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

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

#define EAGER_WINDOW_PAGES 256	/* 1 MiB per copy when filling everything up front */

int log_debug_enabled;


/*
 * How written pages are found.
 * wp-async: fills are installed write-protected (UFFDIO_COPY_MODE_WP with
 *   WP_ASYNC), the kernel marks a page written on the first write, and
 *   PAGEMAP_SCAN lists them: exact (Linux 6.7+).
 * diff: for kernels without WP_ASYNC or PAGEMAP_SCAN. Fills are plain
 *   UFFDIO_COPY; a copy of each filled page is kept (the baseline), and the
 *   written set is every filled page whose bytes now differ from it, plus
 *   non-zero pages outside the recorded mappings (new memory). A write that
 *   leaves the bytes as they were is not seen. See "The diff tracker".
 */
enum tracker { TRACKER_WP_ASYNC, TRACKER_DIFF };


/*
 * A registered range of the process. It starts out as a recorded mapping at its
 * recorded address; mremap may move it, so its pages' contents are looked up at
 * target_addr + rec_delta (the address they had in the recorded process).
 */
struct region {
	uint64_t target_start, target_end;
	int64_t rec_delta;
	uint8_t *filled;	/* one bit per page, allocated on first fill; NULL: unknown */
	uint32_t *slot;		/* diff tracker: per page, 1 + its baseline slot, 0: none */
};

struct server {
	struct spec spec;
	int ctl_fd, out_fd, err_fd;
	const char *stub_path;
	struct target target;

	struct region *regions;
	uint32_t nr_regions;
	int clear_refs_fd;
	enum tracker tracker;
	const char *fallback;	/* what the kernel lacks when auto chose the diff tracker */
	uint64_t copy_mode;	/* UFFDIO_COPY_MODE_WP (wp-async) or 0 (diff) */

	struct store *store;
	struct verifier *verifier;
	uint8_t *buf;		/* staging for UFFDIO_COPY, EAGER_WINDOW_PAGES pages */

	/* statistics */
	uint64_t faults, pages_served, zero_pages, bytes;
	uint32_t *lat_ns;
	size_t nr_lat, cap_lat;
	int can_poison;		/* UFFDIO_POISON available */
	uint64_t serving_lo, serving_hi;	/* the range being filled, for poison_serving() */
};

static struct server srv = { .ctl_fd = 0, .out_fd = -1, .err_fd = -1, .target = TARGET_INIT,
			     .clear_refs_fd = -1, .copy_mode = UFFDIO_COPY_MODE_WP };

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

/*
 * Make the range being filled fail for whoever waits on it (UFFDIO_POISON: the
 * access gets EFAULT/SIGBUS). Without this, once the server is gone the kernel
 * lets the waiting access retry as plain anonymous memory, which reads zeros.
 */
static void poison_serving(void)
{
	struct uffdio_poison poison = {
		.range = { .start = srv.serving_lo, .len = srv.serving_hi - srv.serving_lo },
	};

	if (!srv.can_poison || srv.target.uffd < 0 || srv.serving_hi <= srv.serving_lo)
		return;
	if (ioctl(srv.target.uffd, UFFDIO_POISON, &poison))
		pr_debug("UFFDIO_POISON 0x%" PRIx64 ": %s", srv.serving_lo, strerror(errno));
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
	poison_serving();
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
	srv.tracker = TRACKER_WP_ASYNC;
	if (srv.spec.head.flags & SPEC_TRACKER_DIFF || missing[0] || scan_err)
		srv.tracker = TRACKER_DIFF;
	if (srv.tracker == TRACKER_DIFF && !(srv.spec.head.flags & SPEC_TRACKER_DIFF)) {
		if (missing[0])	/* the first one it lacks: WP_ASYNC, else WP_UNPOPULATED */
			snprintf(fallback, sizeof(fallback), "UFFD_FEATURE_%.*s",
				 (int)strcspn(missing, " "), missing);
		else
			snprintf(fallback, sizeof(fallback), "the PAGEMAP_SCAN ioctl");
		srv.fallback = fallback;
	}
	if (srv.tracker == TRACKER_DIFF)
		srv.copy_mode = 0;
}

/* ---- the stub ------------------------------------------------------------ */

static void build_regions(void);

static void start_stub(uint64_t features)
{
	struct stub_args args = { .path = srv.stub_path, .out_fd = srv.out_fd, .err_fd = srv.err_fd,
				  .spec = &srv.spec, .uffd_features = features,
				  .register_wp = srv.tracker == TRACKER_WP_ASYNC };
	struct err e = { 0 };

	if (stub_start(&srv.target, &args, &e))
		die("%s", e.msg);
	if (srv.spec.head.mode == MODE_WORKAROUND) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/clear_refs", srv.target.pid);
		srv.clear_refs_fd = open(path, O_WRONLY | O_CLOEXEC);
		if (srv.clear_refs_fd < 0)
			die("cannot open %s: %s", path, strerror(errno));
	}
	build_regions();
}

/* ---- recorded pages ------------------------------------------------------ */

static void open_db(void)
{
	struct err e = { 0 };

	srv.store = store_open(srv.spec.db_path, &e);
	if (!srv.store)
		die("%s", e.msg);
	srv.verifier = verifier_start();
	srv.buf = aligned_alloc(PAGE_SIZE, EAGER_WINDOW_PAGES * PAGE_SIZE);
	if (!srv.verifier || !srv.buf)
		die("out of memory");
}

/* Fill dst with the verified contents of the recorded range [lo, hi) at the
 * tick; pages without data are zero. */
static void fetch_range(uint64_t lo, uint64_t hi, uint8_t *dst)
{
	struct err e = { 0 };
	uint32_t nr_zero;

	if (fetch_verified(srv.verifier, srv.store, srv.spec.head.tick, lo, hi, dst, &nr_zero, &e))
		die("%s", e.msg);
	srv.zero_pages += nr_zero;
}

/* The read transaction ends once no fault has come for this long (store_sqlite.c). */
#define IDLE_COMMIT_MS 20

static void db_end(void)
{
	store_idle(srv.store);
}

/* ---- the stub ----------------------------------------------------------- */

static void build_regions(void)
{
	srv.regions = calloc(srv.spec.head.nr_maps + 1, sizeof(*srv.regions));
	for (uint32_t i = 0; i < srv.spec.head.nr_maps; i++) {
		if (!srv.spec.maps[i].register_uffd)
			continue;
		struct region *r = &srv.regions[srv.nr_regions++];
		r->target_start = srv.spec.maps[i].rec_start;
		r->target_end = srv.spec.maps[i].rec_end;
	}
}

/* ---- the diff tracker: baselines ---------------------------------------- */

/*
 * The diff tracker keeps, for every filled page, the bytes it was filled with
 * (or, after clear_written, the bytes it had then): its baseline. Baselines
 * live in slots of 4 KiB, allocated in chunks of 2 MiB (populated at once:
 * one kernel call instead of 512 page faults); a region's `slot` array maps its
 * pages to slots (1 + index, 0 = no baseline). Pieces of a region cut by
 * mremap keep pointing into the same array. Nothing is freed before exit.
 */
#define SLOT_CHUNK_PAGES 512

static uint8_t **slot_chunks;
static uint32_t nr_slots, cap_chunks;

static uint8_t *slot_bytes(uint32_t slot)
{
	uint32_t i = slot - 1;

	return slot_chunks[i / SLOT_CHUNK_PAGES] + (uint64_t)(i % SLOT_CHUNK_PAGES) * PAGE_SIZE;
}

static uint32_t slot_new(void)
{
	if (nr_slots % SLOT_CHUNK_PAGES == 0) {
		uint32_t chunk = nr_slots / SLOT_CHUNK_PAGES;
		if (chunk == cap_chunks) {
			cap_chunks = cap_chunks ? 2 * cap_chunks : 64;
			slot_chunks = realloc(slot_chunks, cap_chunks * sizeof(*slot_chunks));
			if (!slot_chunks)
				die("out of memory");
		}
		void *p = mmap(NULL, SLOT_CHUNK_PAGES * PAGE_SIZE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (p == MAP_FAILED)
			die("out of memory for the diff tracker's baselines");
		slot_chunks[chunk] = p;
	}
	return ++nr_slots;
}

/* The slot array of r from target_addr on (for a piece of r that starts there). */
static uint32_t *slots_from(const struct region *r, uint64_t target_addr)
{
	return r->slot ? r->slot + (target_addr - r->target_start) / PAGE_SIZE : NULL;
}

/* The slot of the page at target_addr in r, allocated when `create`; 0 when none. */
static uint32_t page_slot(struct region *r, uint64_t target_addr, int create)
{
	uint64_t i = (target_addr - r->target_start) / PAGE_SIZE;

	if (!r->slot) {
		if (!create)
			return 0;
		/* calloc of a large array is lazily zeroed memory: sparse use is cheap */
		r->slot = calloc((r->target_end - r->target_start) / PAGE_SIZE, sizeof(*r->slot));
		if (!r->slot)
			die("out of memory");
	}
	if (!r->slot[i] && create)
		r->slot[i] = slot_new();
	return r->slot[i];
}

/* Diff tracker: [lo, hi) of r was just filled from src; remember those bytes. */
static void baseline_store(struct region *r, uint64_t lo, uint64_t hi, const uint8_t *src)
{
	if (srv.tracker != TRACKER_DIFF)
		return;
	for (uint64_t p = lo; p < hi; p += PAGE_SIZE)
		memcpy(slot_bytes(page_slot(r, p, 1)), src + (p - lo), PAGE_SIZE);
}

/*
 * Diff tracker: a page the process dropped (MADV_DONTNEED) faults again and
 * gets zeros. Its baseline stays what it was (the recorded bytes if it was
 * never filled), so it counts as written when the zeros differ from it.
 */
static void baseline_keep_recorded(struct region *r, uint64_t page)
{
	if (srv.tracker != TRACKER_DIFF || page_slot(r, page, 0))
		return;
	fetch_range(page + r->rec_delta, page + PAGE_SIZE + r->rec_delta, srv.buf);
	baseline_store(r, page, page + PAGE_SIZE, srv.buf);
}

/* ---- serving faults ------------------------------------------------------ */

static struct region *find_region(uint64_t target_addr)
{
	uint32_t lo = 0, hi = srv.nr_regions;

	while (lo < hi) {	/* regions are sorted and disjoint */
		uint32_t mid = (lo + hi) / 2;
		struct region *r = &srv.regions[mid];
		if (target_addr < r->target_start)
			hi = mid;
		else if (target_addr >= r->target_end)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

static int page_filled(struct region *r, uint64_t target_addr)
{
	uint64_t i = (target_addr - r->target_start) / PAGE_SIZE;

	return r->filled && (r->filled[i / 8] & (1 << (i % 8)));
}

static void mark_filled(struct region *r, uint64_t lo, uint64_t hi)
{
	if (!r->filled)	/* calloc of a large bitmap is lazily zeroed memory */
		r->filled = calloc((r->target_end - r->target_start) / PAGE_SIZE / 8 + 1, 1);
	if (!r->filled)
		die("out of memory");
	for (uint64_t p = lo; p < hi; p += PAGE_SIZE) {
		uint64_t i = (p - r->target_start) / PAGE_SIZE;
		r->filled[i / 8] |= 1 << (i % 8);
	}
}

/*
 * Install [lo, hi) from srv.buf. Returns the bytes installed: 0 when the
 * first page was already there (EEXIST, benign: someone else filled it), or
 * COPY_GONE (the process is gone), COPY_RETRY (an event such as a remove is
 * pending: read it first, then retry), COPY_UNREGISTERED (no registered
 * mapping there any more). A copy wakes the waiters of the range it filled.
 */
#define COPY_GONE (-1)
#define COPY_RETRY (-2)
#define COPY_UNREGISTERED (-3)

static long uffd_copy(uint64_t lo, uint64_t hi, uint64_t mode)
{
	struct uffdio_copy copy = { .dst = lo, .src = (uint64_t)srv.buf, .len = hi - lo, .mode = mode };

	if (ioctl(srv.target.uffd, UFFDIO_COPY, &copy) == 0)
		return copy.copy;
	/* the real result is in copy.copy: bytes done, or -errno */
	if (copy.copy > 0)
		return copy.copy;
	switch (errno) {
	case EEXIST: return 0;
	case EAGAIN: return COPY_RETRY;
	case ENOENT: return COPY_UNREGISTERED;
	case ESRCH: case ENOSPC: return COPY_GONE;
	}
	die("UFFDIO_COPY at 0x%" PRIx64 " (%" PRIu64 " bytes): %s", lo, hi - lo, strerror(errno));
}

static void uffd_wake(uint64_t lo, uint64_t len)
{
	struct uffdio_range range = { .start = lo, .len = len };

	if (ioctl(srv.target.uffd, UFFDIO_WAKE, &range) && errno != ESRCH && errno != ENOSPC)
		die("UFFDIO_WAKE at 0x%" PRIx64 ": %s", lo, strerror(errno));
}

/* The known soft-dirty workaround, per fault (benchmark comparison only). */
static void workaround_fill(struct region *fault_region, uint64_t page)
{
	static uint64_t *entries;
	const size_t chunk = 1 << 17;	/* entries per pread */

	if (!entries)
		entries = malloc(chunk * sizeof(*entries));
	for (uint32_t i = 0; i < srv.nr_regions; i++) {
		struct region *r = &srv.regions[i];
		for (uint64_t p = r->target_start; p < r->target_end; p += chunk * PAGE_SIZE) {
			uint64_t n = (r->target_end - p) / PAGE_SIZE;
			if (n > chunk)
				n = chunk;
			if (pread(srv.target.pagemap_fd, entries, n * 8, p / PAGE_SIZE * 8) < 0)
				die("workaround: pagemap read: %s", strerror(errno));
		}
	}
	srv.serving_lo = page;
	srv.serving_hi = page + PAGE_SIZE;
	fetch_range(page + fault_region->rec_delta, page + PAGE_SIZE + fault_region->rec_delta, srv.buf);
	long done = uffd_copy(page, page + PAGE_SIZE, UFFDIO_COPY_MODE_DONTWAKE);
	srv.serving_hi = 0;
	if (pwrite(srv.clear_refs_fd, "4", 1, 0) != 1)
		die("workaround: write to clear_refs: %s", strerror(errno));
	if (done >= 0)
		uffd_wake(page, PAGE_SIZE);
}

/*
 * Ranges the process dropped with madvise(MADV_DONTNEED/REMOVE) since the
 * tick (UFFD_EVENT_REMOVE): they read as zeros now, not as recorded. Faults
 * there get a zero page without UFFDIO_COPY_MODE_WP, so it counts as written:
 * it differs from the recording. The event comes before the kernel zaps the
 * range, so nothing is filled eagerly (a zap would undo it).
 */
static struct { uint64_t lo, hi; } *removed;
static size_t nr_removed;

static void note_removed(uint64_t lo, uint64_t hi)
{
	removed = realloc(removed, (nr_removed + 1) * sizeof(*removed));
	if (!removed)
		die("out of memory");
	removed[nr_removed].lo = lo;
	removed[nr_removed].hi = hi;
	nr_removed++;
}

static int page_removed(uint64_t rec_addr)
{
	for (size_t i = 0; i < nr_removed; i++)
		if (rec_addr >= removed[i].lo && rec_addr < removed[i].hi)
			return 1;
	return 0;
}

/* One zero page: for a removed range (mode 0: written), or for memory the
 * process added to a registered mapping after the tick (mode WP: fresh memory
 * reads as zeros and counts as written once written). */
static long serve_zero(uint64_t page, uint64_t mode)
{
	memset(srv.buf, 0, PAGE_SIZE);
	long done = uffd_copy(page, page + PAGE_SIZE, mode);
	if (done == 0)
		uffd_wake(page, PAGE_SIZE);
	return done;
}

/*
 * Serve one fault: the faulting page and, when access looks sequential (the
 * fault is where the previous fill ended, like file readahead), up to
 * fault_around_pages - 1 unfilled neighbours after it. bench/lazy_fill.py: in
 * order, 16 pages per fault cost a third per page of one page per fault; at
 * random, a window triples the fault's latency for neighbours that may never
 * be touched, so random faults get one page.
 */
static int serve_fault(uint64_t fault_addr)
{
	static uint64_t last_fill_end;
	uint64_t page = fault_addr & ~(PAGE_SIZE - 1);
	struct region *r = find_region(page);
	uint64_t window = page == last_fill_end ? srv.spec.head.fault_around_pages : 1;
	uint64_t hi = page + window * PAGE_SIZE;

	if (r && nr_removed && page_removed(page))
		baseline_keep_recorded(r, page);
	if (!r || (nr_removed && page_removed(page))) {
		/* !r: beyond the recorded mappings, e.g. grown in place by mremap (the
		 * growth inherits the registration); waking without a fill would only
		 * make the access fault again */
		long done = serve_zero(page, r ? 0 : srv.copy_mode);
		if (done == COPY_RETRY)
			return COPY_RETRY;
		srv.pages_served++;
		return 0;
	}
	if (srv.spec.head.mode == MODE_WORKAROUND) {
		workaround_fill(r, page);
		hi = page + PAGE_SIZE;
	} else {
		if (hi > r->target_end)
			hi = r->target_end;
		for (uint64_t p = page + PAGE_SIZE; p < hi; p += PAGE_SIZE)
			if (page_filled(r, p)) {
				hi = p;
				break;
			}
		srv.serving_lo = page;
		srv.serving_hi = hi;
		fetch_range(page + r->rec_delta, hi + r->rec_delta, srv.buf);
		long done = uffd_copy(page, hi, srv.copy_mode);
		srv.serving_hi = 0;
		if (done == COPY_RETRY)
			return COPY_RETRY;
		if (done == 0)
			uffd_wake(page, PAGE_SIZE);	/* already there: just wake the faulter */
		hi = done > 0 ? page + done : page;
		baseline_store(r, page, hi, srv.buf);
	}
	mark_filled(r, page, hi);
	last_fill_end = hi;
	srv.pages_served += (hi - page) / PAGE_SIZE;
	srv.bytes += hi - page;
	return 0;
}

static void record_latency(uint64_t ns)
{
	if (srv.nr_lat == srv.cap_lat) {
		srv.cap_lat = srv.cap_lat ? srv.cap_lat * 2 : 4096;
		srv.lat_ns = realloc(srv.lat_ns, srv.cap_lat * sizeof(*srv.lat_ns));
		if (!srv.lat_ns)
			die("out of memory");
	}
	srv.lat_ns[srv.nr_lat++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

static int cmp_region(const void *a, const void *b)
{
	const struct region *x = a, *y = b;

	return x->target_start < y->target_start ? -1 : x->target_start > y->target_start;
}

/*
 * Cut [lo, hi) out of the regions into `out` (which has room), keeping the
 * pieces outside it. With `to` != 0 the cut parts move to `to` and keep
 * their contents' recorded addresses (rec_delta). Fill bitmaps of the pieces
 * are dropped: "unknown" only costs an EEXIST on a later fill.
 */
static uint32_t cut_regions(struct region *out, uint64_t lo, uint64_t hi, uint64_t to)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < srv.nr_regions; i++) {
		struct region r = srv.regions[i];
		if (r.target_end <= lo || r.target_start >= hi) {
			out[n++] = r;
			continue;
		}
		free(r.filled);
		r.filled = NULL;
		if (r.target_start < lo) {
			out[n] = r;
			out[n++].target_end = lo;
		}
		if (r.target_end > hi) {
			out[n] = r;
			out[n].slot = slots_from(&r, hi);
			out[n++].target_start = hi;
		}
		if (to) {
			uint64_t a = r.target_start > lo ? r.target_start : lo;
			uint64_t b = r.target_end < hi ? r.target_end : hi;
			out[n] = r;
			out[n].slot = slots_from(&r, a);	/* baselines move with their pages */
			out[n].target_start = to + (a - lo);
			out[n].target_end = to + (b - lo);
			out[n++].rec_delta = r.rec_delta + (int64_t)(lo - to);
		}
	}
	return n;
}

/*
 * The process moved [from, from + len) to `to` with mremap (UFFD_EVENT_REMAP;
 * it waits in mremap until we have read the event). Filled pages moved with
 * their write-protection; the others now fault at the new place and must get
 * the contents recorded at the old one. Whatever was at `to` is gone.
 */
static void apply_remap(uint64_t from, uint64_t to, uint64_t len)
{
	/* each cut splits at most one region in two and moves at most all of them */
	uint32_t cap = 3 * srv.nr_regions + 4;
	struct region *replaced = calloc(cap, sizeof(*replaced)), *moved = calloc(cap, sizeof(*moved));

	if (!replaced || !moved)
		die("out of memory");
	srv.nr_regions = cut_regions(replaced, to, to + len, 0);	/* gone: mremap unmapped it */
	free(srv.regions);
	srv.regions = replaced;
	srv.nr_regions = cut_regions(moved, from, from + len, to);
	qsort(moved, srv.nr_regions, sizeof(*moved), cmp_region);
	free(srv.regions);
	srv.regions = moved;
	size_t nr_before = nr_removed;
	for (size_t i = 0; i < nr_before; i++)	/* dropped ranges move along */
		if (removed[i].lo < from + len && removed[i].hi > from)
			note_removed(to + (removed[i].lo > from ? removed[i].lo - from : 0),
				     to + (removed[i].hi < from + len ? removed[i].hi - from : len));
	pr_debug("mremap 0x%" PRIx64 "-0x%" PRIx64 " to 0x%" PRIx64 ": %u regions",
		 from, from + len, to, srv.nr_regions);
}

/*
 * Faults whose fill met a pending event (UFFDIO_COPY: EAGAIN): their readers
 * still wait; they are served again after the next read of the userfaultfd,
 * which delivers the event.
 */
static uint64_t *retry_faults;
static size_t nr_retry, cap_retry;

static void fault_later(uint64_t fault_addr)
{
	if (nr_retry == cap_retry) {
		cap_retry = cap_retry ? 2 * cap_retry : 64;
		retry_faults = realloc(retry_faults, cap_retry * sizeof(*retry_faults));
		if (!retry_faults)
			die("out of memory");
	}
	retry_faults[nr_retry++] = fault_addr;
}

static void handle_fault(uint64_t fault_addr)
{
	uint64_t t0 = now_ns();

	if (serve_fault(fault_addr) == COPY_RETRY) {
		fault_later(fault_addr);
		return;
	}
	record_latency(now_ns() - t0);
	srv.faults++;
}

static void handle_event(const struct uffd_msg *msg)
{
	switch (msg->event) {
	case UFFD_EVENT_PAGEFAULT:
		handle_fault(msg->arg.pagefault.address);
		break;
	case UFFD_EVENT_REMOVE:
		note_removed(msg->arg.remove.start, msg->arg.remove.end);
		break;
	case UFFD_EVENT_REMAP:
		apply_remap(msg->arg.remap.from, msg->arg.remap.to, msg->arg.remap.len);
		break;
	}
}

static void handle_uffd(void)
{
	struct uffd_msg msgs[64];
	ssize_t n = read(srv.target.uffd, msgs, sizeof(msgs));

	if (n < 0 && errno != EAGAIN && errno != EINTR)
		die("reading the userfaultfd: %s", strerror(errno));
	if (n > 0 && n % sizeof(msgs[0]))
		die("reading the userfaultfd: short message");
	for (ssize_t i = 0; n > 0 && i < n / (ssize_t)sizeof(msgs[0]); i++)
		handle_event(&msgs[i]);
	/* retry the faults that met an event, now that it has been read */
	size_t pending = nr_retry;
	nr_retry = 0;
	for (size_t i = 0; i < pending; i++)
		handle_fault(retry_faults[i]);
}

/*
 * Fill the unfilled pages of [lo, hi) (page-aligned) inside registered regions,
 * write-protected like any fill. Returns 0, or -1 when the process is gone.
 */
static int fill_range(uint64_t lo, uint64_t hi)
{
	for (uint32_t i = 0; i < srv.nr_regions; i++) {
		struct region *r = &srv.regions[i];
		uint64_t p = lo > r->target_start ? lo : r->target_start;
		uint64_t end = hi < r->target_end ? hi : r->target_end;
		while (p < end) {
			if (page_filled(r, p)) {
				p += PAGE_SIZE;
				continue;
			}
			uint64_t run = p + PAGE_SIZE;
			while (run < end && run - p < EAGER_WINDOW_PAGES * PAGE_SIZE && !page_filled(r, run))
				run += PAGE_SIZE;
			fetch_range(p + r->rec_delta, run + r->rec_delta, srv.buf);
			long done = uffd_copy(p, run, srv.copy_mode);
			if (done == COPY_RETRY) {
				/* read the pending event (it may move regions), then start over:
				 * what is filled already is skipped or refused (EEXIST) */
				handle_uffd();
				return fill_range(lo, hi);
			}
			if (done == COPY_UNREGISTERED)
				break;	/* unmapped since the tick: nothing to fill */
			if (done < 0)
				return -1;
			/* EEXIST part way: the rest is there already or will fault normally */
			uint64_t filled_to = done > 0 ? p + done : p + PAGE_SIZE;
			if (done > 0)
				baseline_store(r, p, filled_to, srv.buf);
			mark_filled(r, p, filled_to);
			srv.pages_served += (filled_to - p) / PAGE_SIZE;
			srv.bytes += filled_to - p;
			p = filled_to;
		}
	}
	return 0;
}

/* Fill everything before the process is handed out (benchmark comparison). */
static void fill_eagerly(void)
{
	for (uint32_t i = 0; i < srv.nr_regions; i++)
		if (fill_range(srv.regions[i].target_start, srv.regions[i].target_end))
			die("the process ended while being filled");
	db_end();
}

/* ---- the sandbox ----------------------------------------------------------- */

static const char *const syscall_names[512] = {
#include "syscall_names.h"
};

/*
 * What the sandbox refused, grouped by (system call, detail) in first-seen
 * order. The detail is the telling argument: the path(s) of a file system
 * call, the signal and its target, the address of a socket call; NULL for the
 * rest. At most MAX_BLOCKED_KINDS groups keep their detail; further ones are
 * counted under their name alone.
 */
#define MAX_BLOCKED_KINDS 256
#define MAX_DETAIL 512

struct blocked_call {
	int nr;
	char *detail;		/* NULL: none */
	uint32_t count;
};
static struct blocked_call *blocked;
static size_t nr_blocked;

static void note_blocked(int nr, const char *detail)
{
	if (nr_blocked >= MAX_BLOCKED_KINDS)
		detail = NULL;
	for (size_t i = 0; i < nr_blocked; i++) {
		struct blocked_call *b = &blocked[i];
		if (b->nr == nr && (b->detail == detail || (b->detail && detail && !strcmp(b->detail, detail)))) {
			b->count++;
			return;
		}
	}
	blocked = realloc(blocked, (nr_blocked + 1) * sizeof(*blocked));
	if (!blocked)
		die("out of memory");
	blocked[nr_blocked++] = (struct blocked_call){ nr, detail ? strdup(detail) : NULL, 1 };
}

/*
 * Read up to len bytes of the process at target_addr through /proc/PID/mem:
 * a page not filled yet fails there (EIO) instead of blocking on us, so we
 * fill it first and read again. Returns the bytes read.
 */
static size_t read_target(void *dst, uint64_t target_addr, size_t len)
{
	size_t done = 0;

	while (done < len) {
		uint64_t at = target_addr + done;
		size_t n = PAGE_SIZE - (at & (PAGE_SIZE - 1));
		if (n > len - done)
			n = len - done;
		ssize_t got = pread(srv.target.mem_fd, (char *)dst + done, n, (off_t)at);
		if (got <= 0 && errno == EIO) {
			uint64_t page = at & ~(PAGE_SIZE - 1);
			/* a dropped page must fault as the process would (zeros): not here */
			if ((nr_removed && page_removed(page)) || fill_range(page, page + PAGE_SIZE))
				break;
			got = pread(srv.target.mem_fd, (char *)dst + done, n, (off_t)at);
		}
		if (got <= 0)
			break;
		done += got;
	}
	return done;
}

/* The NUL-terminated string at target_addr, cut at MAX_DETAIL - 1 bytes. */
static void read_target_string(char *out, uint64_t target_addr)
{
	size_t got = 0;

	out[0] = 0;
	if (!target_addr)
		return;
	while (got < MAX_DETAIL - 1) {
		size_t n = read_target(out + got, target_addr + got, 64 < MAX_DETAIL - 1 - got ? 64 : MAX_DETAIL - 1 - got);
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
static void sockaddr_detail(char *out, uint64_t target_addr, uint64_t len)
{
	union { struct sockaddr sa; struct sockaddr_in in; struct sockaddr_in6 in6;
		struct sockaddr_un un; uint8_t raw[128]; } a;
	char text[INET6_ADDRSTRLEN];

	memset(&a, 0, sizeof(a));
	if (len > sizeof(a))
		len = sizeof(a);
	out[0] = 0;
	if (!target_addr || len < sizeof(sa_family_t) || read_target(&a, target_addr, len) < len)
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

/* The telling argument of a refused call into out (MAX_DETAIL bytes); "" when none. */
static void blocked_detail(char *out, const struct seccomp_data *d)
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
		sockaddr_detail(out, d->args[1], d->args[2]);
		return;
	case SYS_sendto:
		sockaddr_detail(out, d->args[4], d->args[5]);
		return;
	}
	path_args(d->nr, &first, &second);
	if (first < 0)
		return;
	read_target_string(out, d->args[first]);
	if (second >= 0) {
		char other[MAX_DETAIL];
		read_target_string(other, d->args[second]);
		size_t n = strlen(out);
		snprintf(out + n, MAX_DETAIL - n, " -> %s", other);
	}
}

/*
 * A system call the sandbox did not let through: refuse it with EPERM and
 * record it. The detail is read from the process while the call waits; it
 * counts only if the notification is still valid after the read (the call
 * may have been interrupted, and its memory reused, meanwhile).
 */
static void handle_blocked(void)
{
	struct seccomp_notif req;
	struct seccomp_notif_resp resp = { 0 };
	char detail[MAX_DETAIL];

	memset(&req, 0, sizeof(req));	/* the kernel insists on a zeroed request */
	if (ioctl(srv.target.listener, SECCOMP_IOCTL_NOTIF_RECV, &req)) {
		if (errno != EINTR && errno != ENOENT)
			die("seccomp listener: %s", strerror(errno));
		return;
	}
	blocked_detail(detail, &req.data);
	if (ioctl(srv.target.listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) == 0)
		note_blocked(req.data.nr, detail[0] ? detail : NULL);
	resp.id = req.id;
	resp.error = -EPERM;
	/* ENOENT: the call was interrupted, or the process is gone */
	if (ioctl(srv.target.listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) && errno != ENOENT)
		die("seccomp listener: %s", strerror(errno));
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

/* [{"name": "unlink", "count": 1, "detail": "/tmp/x"}, ...] */
static void format_blocked(FILE *f)
{
	fputc('[', f);
	for (size_t i = 0; i < nr_blocked; i++) {
		const char *name = blocked[i].nr >= 0 && blocked[i].nr < 512 ? syscall_names[blocked[i].nr] : NULL;
		fprintf(f, "%s{\"name\": ", i ? ", " : "");
		if (name)
			json_string(f, name);
		else
			fprintf(f, "\"syscall %d\"", blocked[i].nr);
		fprintf(f, ", \"count\": %u, \"detail\": ", blocked[i].count);
		if (blocked[i].detail)
			json_string(f, blocked[i].detail);
		else
			fputs("null", f);
		fputc('}', f);
	}
	fputc(']', f);
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
	uint32_t *sorted = malloc((srv.nr_lat + 1) * sizeof(*sorted));
	double sum = 0;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	if (!sorted || !f)
		die("out of memory");
	memcpy(sorted, srv.lat_ns, srv.nr_lat * sizeof(*sorted));
	qsort(sorted, srv.nr_lat, sizeof(*sorted), cmp_u32);
	for (size_t i = 0; i < srv.nr_lat; i++)
		sum += sorted[i];
	fprintf(f,
		"{\"faults\": %" PRIu64 ", \"pages_served\": %" PRIu64 ", \"zero_pages\": %" PRIu64
		", \"bytes\": %" PRIu64 ", \"serve_us_p50\": %.2f, \"serve_us_p99\": %.2f"
		", \"serve_us_max\": %.2f, \"serve_us_mean\": %.2f, \"mode\": \"%s\""
		", \"fault_around_pages\": %u, \"xstate_restored\": %s"
		", \"same_tid\": %s, \"pages_verified_by_helper\": %" PRIu64
		", \"tracker\": \"%s\", \"baseline_pages\": %u, \"sandbox\": %s, \"blocked_syscalls\": ",
		srv.faults, srv.pages_served, srv.zero_pages, srv.bytes,
		percentile_us(sorted, srv.nr_lat, 0.5), percentile_us(sorted, srv.nr_lat, 0.99),
		srv.nr_lat ? sorted[srv.nr_lat - 1] / 1000.0 : 0.0,
		srv.nr_lat ? sum / srv.nr_lat / 1000.0 : 0.0, modes[srv.spec.head.mode % 3],
		srv.spec.head.fault_around_pages, srv.target.xstate_restored ? "true" : "false", srv.target.same_tid ? "true" : "false",
		verifier_helper_pages(srv.verifier),
		srv.tracker == TRACKER_DIFF ? "diff" : "wp-async", nr_slots,
		srv.target.listener >= 0 ? "true" : "false");
	format_blocked(f);
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

/* One PAGEMAP_SCAN walk over [lo, hi); emit(start, end) per written range. */
static void scan_written(uint64_t lo, uint64_t hi, void (*emit)(uint64_t, uint64_t, void *), void *ctx)
{
	struct page_region vec[512];
	struct pm_scan_arg arg = {
		.size = sizeof(arg), .start = lo, .end = hi, .vec = (uint64_t)vec, .vec_len = 512,
		/* PRESENT avoids the fast path that reports unpopulated pages as written;
		 * not PFNZERO: a read of a new mapping maps the zero page, no write */
		.category_mask = PAGE_IS_WRITTEN | PAGE_IS_PRESENT | PAGE_IS_PFNZERO,
		.category_inverted = PAGE_IS_PFNZERO,
		.return_mask = PAGE_IS_WRITTEN,
	};

	while (arg.start < arg.end) {
		long n = ioctl(srv.target.pagemap_fd, PAGEMAP_SCAN, &arg);
		if (n < 0 && errno == ESRCH)
			process_gone("PAGEMAP_SCAN of the process");
		if (n < 0)
			die("PAGEMAP_SCAN of the process: %s", strerror(errno));
		for (long i = 0; i < n; i++)
			emit(vec[i].start, vec[i].end, ctx);
		if (arg.walk_end <= arg.start)
			break;
		arg.start = arg.walk_end;
	}
}

struct range_list { uint64_t (*r)[2]; size_t n, cap; };

/* Append the pair (a, b) to l. */
static void push_pair(struct range_list *l, uint64_t a, uint64_t b)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 256;
		l->r = realloc(l->r, l->cap * sizeof(*l->r));
		if (!l->r)
			die("out of memory");
	}
	l->r[l->n][0] = a;
	l->r[l->n][1] = b;
	l->n++;
}

/* Append [start, end) to l, merged with the last range when adjacent. */
static void collect_range(uint64_t start, uint64_t end, void *ctx)
{
	struct range_list *l = ctx;

	if (l->n && l->r[l->n - 1][1] == start)
		l->r[l->n - 1][1] = end;
	else
		push_pair(l, start, end);
}

/* ---- the diff tracker: the written set ------------------------------------ */

#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62)
#define PM_FILE (1ULL << 61)	/* a file page (or shared anonymous): not the process's own bytes */

/* pagemap entries of npages pages from target_addr (classic /proc/PID/pagemap). */
static void read_pagemap(uint64_t target_addr, size_t npages, uint64_t *ents)
{
	ssize_t got = pread(srv.target.pagemap_fd, ents, npages * 8, (off_t)(target_addr / PAGE_SIZE * 8));
	size_t n = got > 0 ? (size_t)got : 0;

	if (n < npages * 8)
		memset((char *)ents + n, 0, npages * 8 - n);	/* unreadable: not present */
}

/*
 * Read present pages [lo, hi) of the process into dst: process_vm_readv, and
 * /proc/PID/mem for what it refuses (mappings without read permission).
 * Only present pages: a missing one would wait for us to serve it. 0 when all read.
 */
static int read_present(uint8_t *dst, uint64_t lo, uint64_t hi)
{
	struct iovec local = { dst, hi - lo }, remote = { (void *)lo, hi - lo };
	ssize_t n = process_vm_readv(srv.target.pid, &local, 1, &remote, 1, 0);

	if (n == (ssize_t)(hi - lo))
		return 0;
	if (n < 0)
		n = 0;
	return pread(srv.target.mem_fd, dst + n, hi - lo - n, (off_t)(lo + n)) == (ssize_t)(hi - lo - n) ? 0 : -1;
}

/*
 * The pages of r that have a baseline and differ from it now: into out; or,
 * with rebase, make their current bytes the baseline. Pages not present (the
 * process dropped them and has not touched them since) are skipped.
 */
static void diff_region(struct region *r, struct range_list *out, int rebase)
{
	uint64_t npages = (r->target_end - r->target_start) / PAGE_SIZE;
	static uint64_t ents[EAGER_WINDOW_PAGES];

	for (uint64_t i = 0; r->slot && i < npages;) {
		if (!r->slot[i]) {
			i++;
			continue;
		}
		uint64_t j = i, lo = r->target_start + i * PAGE_SIZE;
		while (j < npages && j - i < EAGER_WINDOW_PAGES && r->slot[j])
			j++;
		read_pagemap(lo, j - i, ents);
		for (uint64_t k = 0; k < j - i;) {
			if (!(ents[k] & (PM_PRESENT | PM_SWAPPED))) {
				k++;
				continue;
			}
			uint64_t m = k;
			while (m < j - i && ents[m] & (PM_PRESENT | PM_SWAPPED))
				m++;
			if (read_present(srv.buf, lo + k * PAGE_SIZE, lo + m * PAGE_SIZE) == 0) {
				for (uint64_t q = k; q < m; q++) {
					uint8_t *now = srv.buf + (q - k) * PAGE_SIZE, *base = slot_bytes(r->slot[i + q]);
					if (!memcmp(now, base, PAGE_SIZE))
						continue;
					if (rebase)
						memcpy(base, now, PAGE_SIZE);
					else
						collect_range(lo + q * PAGE_SIZE, lo + (q + 1) * PAGE_SIZE, out);
				}
			}
			k = m;
		}
		i = j;
	}
}

/*
 * New memory (outside the recorded mappings: new mappings, brk growth) starts
 * as zeros: its pages count as written when present and not zero, or, after
 * clear_written, when they differ from what they held then (kept as a hash).
 */
struct page_hash { uint64_t page, hash; };
static struct page_hash *outside_base;
static size_t nr_outside_base;

static uint64_t page_hash(const uint8_t *page)
{
	const uint64_t *w = (const uint64_t *)page;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < PAGE_SIZE / 8; i++)
		h = (h ^ w[i]) * 0x100000001b3ULL;
	return h ^ (h >> 29);
}

static const struct page_hash *outside_baseline(uint64_t page)
{
	size_t lo = 0, hi = nr_outside_base;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (outside_base[mid].page == page)
			return &outside_base[mid];
		if (outside_base[mid].page < page)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int is_zero_page(const uint8_t *page)
{
	static const uint8_t zeros[PAGE_SIZE];

	return !memcmp(page, zeros, PAGE_SIZE);
}

/* One present page of new memory: written? (rebase: remember it instead) */
static void diff_outside_page(uint64_t page, const uint8_t *now, struct range_list *out,
			      struct range_list *rebased)
{
	if (rebased) {
		if (!is_zero_page(now))
			push_pair(rebased, page, page_hash(now));
		return;
	}
	const struct page_hash *was = outside_baseline(page);
	if (was ? was->hash != page_hash(now) : !is_zero_page(now))
		collect_range(page, page + PAGE_SIZE, out);
}

/* The present anonymous pages of [lo, hi) outside every region. */
static void diff_outside_range(uint64_t lo, uint64_t hi, struct range_list *out, struct range_list *rebased)
{
	static uint64_t ents[EAGER_WINDOW_PAGES];

	for (uint64_t at = lo; at < hi; at += EAGER_WINDOW_PAGES * PAGE_SIZE) {
		uint64_t end = hi - at > EAGER_WINDOW_PAGES * PAGE_SIZE ? at + EAGER_WINDOW_PAGES * PAGE_SIZE : hi;
		read_pagemap(at, (end - at) / PAGE_SIZE, ents);
		for (uint64_t p = at; p < end; p += PAGE_SIZE) {
			uint64_t e = ents[(p - at) / PAGE_SIZE];
			if (!(e & (PM_PRESENT | PM_SWAPPED)) || e & PM_FILE || find_region(p))
				continue;
			if (read_present(srv.buf, p, p + PAGE_SIZE) == 0)
				diff_outside_page(p, srv.buf, out, rebased);
		}
	}
}

/* Every mapping of the process but ttd-stub's image and [vsyscall], outside the regions. */
static void diff_outside(struct range_list *out, struct range_list *rebased)
{
	char path[64], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", srv.target.pid);
	f = fopen(path, "re");
	if (!f)
		die("cannot read %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		uint64_t lo, hi;
		if (sscanf(line, "%" SCNx64 "-%" SCNx64, &lo, &hi) != 2 || lo >= TASK_SIZE_MAX)
			continue;
		if (lo < srv.target.image_hi && hi > srv.target.image_lo)
			continue;	/* the stub's own image (a mapping never straddles it) */
		diff_outside_range(lo, hi, out, rebased);
	}
	fclose(f);
}

static int cmp_range(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* Sort and merge adjacent ranges. */
static void normalize_ranges(struct range_list *l)
{
	size_t n = 0;

	qsort(l->r, l->n, sizeof(*l->r), cmp_range);
	for (size_t i = 0; i < l->n; i++) {
		if (n && l->r[n - 1][1] == l->r[i][0])
			l->r[n - 1][1] = l->r[i][1];
		else if (n++ != i)
			memcpy(l->r[n - 1], l->r[i], sizeof(*l->r));
	}
	l->n = n;
}

static void diff_written(struct range_list *out)
{
	for (uint32_t i = 0; i < srv.nr_regions; i++)
		diff_region(&srv.regions[i], out, 0);
	diff_outside(out, NULL);
	normalize_ranges(out);
}

/* clear_written for the diff tracker: the current bytes become the baseline. */
static void diff_rebase(void)
{
	struct range_list pairs = { 0 };

	for (uint32_t i = 0; i < srv.nr_regions; i++)
		diff_region(&srv.regions[i], NULL, 1);
	diff_outside(NULL, &pairs);
	free(outside_base);
	outside_base = (struct page_hash *)pairs.r;	/* same layout: two u64 per entry */
	nr_outside_base = pairs.n;
}

/* Written pages everywhere but in ttd-stub's own image. */
static void reply_written(void)
{
	struct range_list list = { 0 };
	char line[64];

	if (srv.tracker == TRACKER_DIFF) {
		diff_written(&list);
	} else {
		scan_written(0, srv.target.image_lo, collect_range, &list);
		scan_written(srv.target.image_hi, TASK_SIZE_MAX, collect_range, &list);
	}
	ctl_printf("OK %zu\n", list.n);
	for (size_t i = 0; i < list.n; i++) {
		int k = snprintf(line, sizeof(line), "%" PRIx64 " %" PRIx64 "\n", list.r[i][0], list.r[i][1]);
		write_all(srv.ctl_fd, line, k);
	}
	free(list.r);
}

/* Forget the writes so far: write-protect every page of every registered
 * region again (wp-async), or take the current bytes as the baseline (diff). */
static void clear_written(void)
{
	if (srv.tracker == TRACKER_DIFF) {
		diff_rebase();
		return;
	}
	for (uint32_t i = 0; i < srv.nr_regions; i++) {
		struct region *r = &srv.regions[i];
		struct pm_scan_arg arg = {
			/* no PM_SCAN_CHECK_WPASYNC: WP_ASYNC was checked at start, and a
			 * mapping the process made in place of a recorded one (not
			 * registered) must be skipped, not fail the request */
			.size = sizeof(arg), .flags = PM_SCAN_WP_MATCHING,
			.start = r->target_start, .end = r->target_end,
			.category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN,
		};
		if (ioctl(srv.target.pagemap_fd, PAGEMAP_SCAN, &arg) == 0)
			continue;
		if (errno == ESRCH)
			process_gone("PAGEMAP_SCAN(PM_SCAN_WP_MATCHING)");
		die("PAGEMAP_SCAN(PM_SCAN_WP_MATCHING) of 0x%" PRIx64 "-0x%" PRIx64 ": %s",
			    r->target_start, r->target_end, strerror(errno));
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

static void serve_loop(void)
{
	int stub_exited = 0;

	for (;;) {
		struct pollfd fds[4] = {
			{ .fd = srv.target.uffd, .events = POLLIN },
			{ .fd = srv.ctl_fd, .events = POLLIN },
			{ .fd = stub_exited ? -1 : srv.target.pidfd, .events = POLLIN },
			{ .fd = stub_exited ? -1 : srv.target.listener, .events = POLLIN },
		};
		/* Once it has exited, poll for the reap: a tracer may reap first. */
		int ret = poll(fds, 4, nr_retry ? 1 : stub_exited ? 20 : srv.store->holding ? IDLE_COMMIT_MS : -1);
		if (ret < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		if (ret == 0)
			db_end();	/* idle: let writers in */
		if (fds[0].revents & POLLIN || nr_retry)
			handle_uffd();
		if (fds[3].revents & POLLIN)
			handle_blocked();
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
	open_db();
	srv.can_poison = !!(features & UFFD_FEATURE_POISON);
	start_stub((srv.tracker == TRACKER_WP_ASYNC ? NEED_UFFD_API_FEATURES : 0) |
		   (features & (UFFD_FEATURE_POISON | UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_REMAP)));
	close(srv.out_fd);
	close(srv.err_fd);
	pin_to_one_cpu(srv.target.pid);
	if (srv.spec.head.mode == MODE_EAGER)
		fill_eagerly();
	if (srv.fallback)
		ctl_printf("READY %d diff %s\n", srv.target.pid, srv.fallback);
	else
		ctl_printf("READY %d %s\n", srv.target.pid, srv.tracker == TRACKER_DIFF ? "diff" : "wp-async");
	serve_loop();
}
