/*
 * verify.h, the helper thread: the page map's load (its first job), pages
 * prepared ahead into slots (verify.c says how the work is shared), the
 * verified-page cache's puts when there is nothing to prepare.
 *
 * The helper spins a little after its work (the next request of a sequential
 * reader comes within tens of microseconds) and then sleeps on a futex. It
 * works only on ranges of HELP_MIN_PAGES pages or more and on readahead: a
 * one-page fault is not worth a wake-up, and a helper spinning through a
 * stream of one-page faults took the core the woken reader needed.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LOG_PREFIX "ttd-pageserver: verify: "
#include "log.h"
#include "io.h"
#include "verify.h"
#include "verify_state.h"

#define HELPER_SPIN_NS 50000ULL

/* ---- the helper thread ---------------------------------------------------------------- */

void wake_helper(struct verifier *v)
{
	if (atomic_load(&v->sleeping)) {
		atomic_fetch_add(&v->wake_seq, 1);
		syscall(SYS_futex, &v->wake_seq, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	}
}

/* Ask the helper to prepare [lo, hi) (replacing what it was asked before). */
void want(struct verifier *v, uint64_t lo, uint64_t hi)
{
	pthread_mutex_lock(&v->want_lock);
	v->want_lo = lo;
	v->want_hi = hi;
	pthread_mutex_unlock(&v->want_lock);
	wake_helper(v);
}

/* The next page the helper should prepare, or 0. */
static uint64_t next_wanted(struct verifier *v)
{
	uint64_t rec_addr = 0;

	pthread_mutex_lock(&v->want_lock);
	if (v->want_lo < v->want_hi) {
		rec_addr = v->want_lo;
		v->want_lo += PAGE_SIZE;
	}
	pthread_mutex_unlock(&v->want_lock);
	return rec_addr;
}

/* Prepare up to a batch of wanted pages into their slots: 1 when there were some. */
static int helper_prepare(struct verifier *v)
{
	struct batch b;
	uint64_t rec_addr;
	int some = 0;

	b.n = 0;
	atomic_store(&v->working, 1);
	while (b.n < BATCH_PAGES && !atomic_load(&v->quiet) && (rec_addr = next_wanted(v))) {
		some = 1;
		if (claim(v, rec_addr))
			batch_add(&b, rec_addr, slot_page(v, rec_addr));
	}
	prepare_batch(v, &v->helper, &b);
	for (int k = 0; k < b.n; k++) {
		struct slot *s = slot_of(v, b.rec_addr[k]);
		int corrupt = b.got[k] < 0 && b.err[k].kind == ERR_CORRUPT;
		if (corrupt)
			memcpy(s->why, b.err[k].msg, sizeof(s->why));
		else if (b.got[k] < 0)
			pr_debug("%s", b.err[k].msg);	/* the serving thread will try it itself */
		slot_set(v, b.rec_addr[k], b.got[k] == 1 ? SLOT_ZERO : b.got[k] == 0 ? SLOT_READY :
					   corrupt ? SLOT_BAD : SLOT_FREE);
	}
	atomic_fetch_add_explicit(&v->helper_pages, b.n, memory_order_relaxed);
	atomic_store(&v->working, 0);
	return some;
}

static int helper_prepare(struct verifier *v);

/* While the digests load: the pages a sequential reader will want meanwhile. */
static void prepare_meanwhile(void *ctx)
{
	while (helper_prepare(ctx))
		;
}

/*
 * The helper's first job: its own store, the page map (then the serving thread
 * uses it), and the map's digests and codecs (then the cache is looked in, and
 * pages are read by their data alone).
 */
static void load_map(struct verifier *v)
{
	struct err e = { 0 };
	uint64_t t0 = now_ns();

	v->helper.store = store_open(v->location, &e);
	if (!v->helper.store || pagemap_load(&v->map, v->helper.store, v->map.tick, &e)) {
		pr_debug("no page map, range queries only: %s", e.msg);
		atomic_store(&v->map_state, MAP_FAILED);
		return;
	}
	pr_debug("page map of tick %" PRIu64 ": %zu pages in %.1f ms", v->map.tick, v->map.n,
		 (now_ns() - t0) / 1e6);
	v->cache = pagecache_open(v->location);
	/* the digests are the cache's keys, and with the codecs a page is read by its data
	 * alone (store_data) */
	int digests = v->cache || store_has_data(v->helper.store);
	atomic_store(&v->loading_digests, digests);
	atomic_store(&v->map_state, MAP_READY);
	if (!digests)
		return;
	if (pagemap_load_digests(&v->map, v->helper.store, prepare_meanwhile, v, &e))
		pr_debug("no digests (no cache, whole rows): %s", e.msg);
	else
		atomic_store(&v->digests_ready, 1);
	atomic_store(&v->loading_digests, 0);
}

static int has_work(struct verifier *v)
{
	int some;

	if (atomic_load(&v->map_state) == MAP_LOADING || puts_waiting(v))
		return 1;
	pthread_mutex_lock(&v->want_lock);
	some = v->want_lo < v->want_hi;
	pthread_mutex_unlock(&v->want_lock);
	return some && !atomic_load(&v->quiet);
}

/*
 * Work on a CPU other than the serving thread's: main.c pins it and the process to
 * one CPU, where a spinning helper would take turns with the process (a
 * sequential reader's fault took twice as long). Looked at after each sleep:
 * the pinning comes after the helper has started.
 */
static void keep_off_the_serving_cpu(struct verifier *v)
{
	cpu_set_t serving, others;
	int nr_cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (sched_getaffinity(v->main_tid, sizeof(serving), &serving) ||
	    CPU_COUNT(&serving) != 1 || nr_cpus < 2)
		return;
	CPU_ZERO(&others);
	for (int cpu = 0; cpu < nr_cpus && cpu < CPU_SETSIZE; cpu++)
		if (!CPU_ISSET(cpu, &serving))
			CPU_SET(cpu, &others);
	if (sched_setaffinity(0, sizeof(others), &others))
		pr_debug("helper affinity: %s", strerror(errno));
}

static void *helper_main(void *arg)
{
	struct verifier *v = arg;

	for (;;) {
		uint64_t idle_since = now_ns();
		keep_off_the_serving_cpu(v);
		while (now_ns() - idle_since < HELPER_SPIN_NS) {
			int worked = 0;
			if (atomic_load(&v->map_state) == MAP_LOADING)
				load_map(v);
			if (atomic_load(&v->map_state) == MAP_READY)
				worked = helper_prepare(v);
			if (!worked && v->cache)	/* nothing to prepare: now the cache */
				worked = drain_puts(v->cache, &v->main_puts) |
					 drain_puts(v->cache, &v->helper_puts);
			if (worked)
				idle_since = now_ns();
			else
				sched_yield();	/* on a busy machine the main thread may share our core */
		}
		if (v->helper.store)
			store_idle(v->helper.store);	/* let writers in while we sleep */
		uint32_t seq = atomic_load(&v->wake_seq);
		atomic_store(&v->sleeping, 1);
		if (!has_work(v))	/* re-check after announcing the sleep */
			syscall(SYS_futex, &v->wake_seq, FUTEX_WAIT_PRIVATE, seq, NULL, NULL, 0);
		atomic_store(&v->sleeping, 0);
	}
	return NULL;
}

static int worker_init(struct worker *w)
{
	w->md_ctx = EVP_MD_CTX_new();
	return w->md_ctx ? 0 : -1;
}

struct verifier *verifier_start(void)
{
	struct verifier *v = calloc(1, sizeof(*v));
	pthread_t thread;
	sigset_t all, old;

	if (!v || !(v->slot_bytes = aligned_alloc(PAGE_SIZE, NR_SLOTS * PAGE_SIZE)) ||
	    !(v->main_puts.pages = aligned_alloc(PAGE_SIZE, PUT_RING * PAGE_SIZE)) ||
	    !(v->helper_puts.pages = aligned_alloc(PAGE_SIZE, PUT_RING * PAGE_SIZE)) ||
	    worker_init(&v->main) || worker_init(&v->helper))
		return NULL;
	v->main_tid = gettid();
	/* fetched once: EVP_sha256() and SHA256() look the algorithm up on every use */
	v->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!v->sha256)
		return NULL;
	v->x16 = sha256x16_available();
	pthread_mutex_init(&v->want_lock, NULL);
	/* the helper takes no signals: they belong to the main thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	v->have_helper = pthread_create(&thread, NULL, helper_main, v) == 0;
	if (!v->have_helper)
		pr_debug("no helper thread: pages are verified on one core");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return v;
}

void verifier_open(struct verifier *v, const char *location, uint64_t tick)
{
	v->map.tick = tick;
	v->location = strdup(location);
	if (!v->have_helper || !v->location)
		return;	/* range queries only */
	atomic_store(&v->map_state, MAP_LOADING);
	wake_helper(v);
}

uint64_t verifier_helper_pages(struct verifier *v)
{
	return atomic_load(&v->helper_pages);
}

void verifier_readahead(struct verifier *v, uint64_t rec_lo, uint64_t rec_hi)
{
	/* beyond the slots a fill leaves, pages would push out each other */
	if (rec_hi - rec_lo > (NR_SLOTS - MAX_FILL_PAGES) * PAGE_SIZE)
		rec_hi = rec_lo + (NR_SLOTS - MAX_FILL_PAGES) * PAGE_SIZE;
	if (atomic_load(&v->map_state) == MAP_READY && rec_lo < rec_hi)
		want(v, rec_lo, rec_hi);
}

