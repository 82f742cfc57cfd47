/*
 * verify.h: verifying pages, on two cores.
 *
 * Where a page's microseconds go here (2 vCPUs, bench/lazy_fill.py's pages,
 * clock_gettime around each stage): sha256 2.1 (OpenSSL with the CPU's SHA
 * instructions: EVP with the algorithm fetched once 2.1, the low-level calls
 * 2.1, one-shot SHA256() 2.4: it fetches the algorithm each call), zstd 0.5,
 * the range query for one page at random 2.5-3.0 (one content row by id
 * 1.3-1.7: the page map saves the search), UFFDIO_COPY of the page 1.7.
 *
 * Two ways to a page:
 * - before the page map is loaded (the first milliseconds, or never when the
 *   recording's map cannot be read): the store's range query, each page
 *   hashed on the calling thread as it is decoded;
 * - with the map: each page is looked up (a binary search), fetched by its
 *   content reference, decoded and hashed, independently of the others, so
 *   the serving thread and the helper can share a range page by page.
 *
 * Prepared pages: the helper works into slots (NR_SLOTS pages, a page in the
 * slot of its page number modulo NR_SLOTS). A slot's state, the page it holds
 * and the generation of the map it came from change together, by
 * compare-and-swap on one word:
 *
 *   FREE -> BUSY (claimed by whoever prepares it) -> READY | ZERO | BAD (corrupt, why)
 *   READY -> TAKEN (the serving thread copies it out) -> FREE
 *
 * The serving thread takes prepared pages, claims the others and prepares
 * them itself straight into its buffer (top down, while the helper goes bottom
 * up), then waits for the pages the helper is still on. A page is installed
 * only from a slot that passed the hash, or from the buffer after the hash:
 * never unverified. A corrupt page is reported when it is needed, not when the
 * helper meets it ahead of time.
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
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#define LOG_PREFIX "ttd-pageserver: verify: "
#include "log.h"
#include "io.h"
#include "page.h"
#include "pagecache.h"
#include "sha256x16.h"
#include "verify.h"

#define HELP_MIN_PAGES 4
#define HELPER_SPIN_NS 50000ULL
#define NR_SLOTS 512	/* 2 MiB: a whole fill (MAX_FILL_PAGES) and the readahead after it */
#define BATCH_PAGES SHA256X16_LANES	/* prepared together */
#define PUT_WAKE_NS 1000000ULL
#define DRAIN_WAIT_NS 5000000000ULL
#define PUT_RING 256	/* pages waiting to be put in the cache by the helper (1 MiB) */
#define X16_MIN_PAGES 7	/* from here 16 lanes (14 us) beat the SHA instructions (2.1 us a page) */

_Static_assert(SHA256_DIGEST_LENGTH == PAGE_DIGEST_SIZE, "a page's digest is its sha256");
_Static_assert(NR_SLOTS >= 2 * MAX_FILL_PAGES, "a fill and its readahead fit in the slots");

enum slot_state { SLOT_FREE, SLOT_BUSY, SLOT_READY, SLOT_ZERO, SLOT_BAD, SLOT_TAKEN };

/* A slot's word: rec page number (36 bits: addresses below 2^48), generation (25), state (3). */
#define GEN_MASK ((1U << 25) - 1)
#define SLOT_WORD(pfn, gen, state) ((pfn) << 28 | (uint64_t)((gen) & GEN_MASK) << 3 | (state))
#define SLOT_KEY(word) ((word) >> 3)
#define SLOT_STATE(word) ((enum slot_state)((word) & 7))

enum map_state { MAP_NONE, MAP_LOADING, MAP_READY, MAP_FAILED };

struct slot {
	_Atomic uint64_t word;
	char why[sizeof(((struct err *)0)->msg)];	/* SLOT_BAD: the error */
};

/* What one thread needs to prepare pages: its store and its hashing context. */
struct worker {
	struct store *store;
	EVP_MD_CTX *md_ctx;
	uint8_t digest[PAGE_DIGEST_SIZE];
};

/* Pages to put in the cache: one thread pushes, the helper takes. */
struct put_ring {
	_Atomic uint32_t head, tail;
	uint8_t digest[PUT_RING][PAGE_DIGEST_SIZE];
	uint8_t *pages;			/* PUT_RING pages */
};

struct verifier {
	_Atomic int map_state;
	struct pagemap map;		/* read by both threads; changed only with the helper quiet */
	uint32_t gen;			/* of the map: bumped when it moves to another tick */
	char *location;
	const EVP_MD *sha256;
	int x16;			/* sha256x16 can run here */
	struct pagecache *cache;	/* verified pages shared with other page servers, or NULL */
	_Atomic int loading_digests;	/* the helper loads the map's digests (the cache's keys) */
	_Atomic int digests_ready;	/* they are there: look in the cache */
	struct worker main, helper;

	pthread_mutex_t want_lock;	/* the range the helper is asked to prepare */
	uint64_t want_lo, want_hi;
	_Atomic int quiet;		/* the serving thread changes the map: touch nothing */
	_Atomic int working;		/* the helper is preparing a page */
	_Atomic uint32_t wake_seq;	/* futex word the helper sleeps on */
	_Atomic int sleeping;
	int have_helper;
	_Atomic uint64_t helper_pages;	/* statistics */

	uint8_t *slot_bytes;		/* NR_SLOTS pages */
	struct slot slots[NR_SLOTS];

	/* pages verified (by the serving thread, by the helper), for the cache */
	struct put_ring main_puts, helper_puts;
	uint64_t put_woken_ns;		/* when the serving thread last woke the helper for them */
	pid_t main_tid;			/* the serving thread */
};

/* sha256 of the page at `bytes` matches `digest`. */
static int page_matches(const struct verifier *v, struct worker *w, const uint8_t *bytes,
			const uint8_t *digest)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	unsigned int len = 0;

	if (!EVP_DigestInit_ex(w->md_ctx, v->sha256, NULL) ||
	    !EVP_DigestUpdate(w->md_ctx, bytes, PAGE_SIZE) ||
	    !EVP_DigestFinal_ex(w->md_ctx, md, &len))
		return 0;
	return len == sizeof(md) && memcmp(md, digest, sizeof(md)) == 0;
}

static int mismatch(struct err *e, uint64_t rec_addr, uint64_t tick)
{
	return err_set(e, ERR_CORRUPT, "page %#" PRIx64 " at tick %" PRIu64 " is corrupt (its "
		       "sha256 does not match the recorded digest)", rec_addr, tick);
}

/* Pages prepared together: fetched and decoded one by one, then hashed together. */
struct batch {
	int n;
	uint64_t rec_addr[BATCH_PAGES];
	uint8_t *dst[BATCH_PAGES];
	int got[BATCH_PAGES];		/* out: 1 zeros (dst untouched), 0 verified, -1 err[k] */
	struct err err[BATCH_PAGES];
	uint8_t digest[BATCH_PAGES][PAGE_DIGEST_SIZE];
};

static void batch_add(struct batch *b, uint64_t rec_addr, uint8_t *dst)
{
	b->rec_addr[b->n] = rec_addr;
	b->dst[b->n] = dst;
	b->err[b->n].kind = ERR_NONE;
	b->n++;
}

/* Hash the stored pages of b (got == 0) and check them: 16 at a time when there are
 * enough for the lanes to beat the SHA instructions page by page. */
static void verify_batch(const struct verifier *v, struct worker *w, struct batch *b)
{
	const uint8_t *pages[BATCH_PAGES];
	uint8_t digests[BATCH_PAGES][PAGE_DIGEST_SIZE];
	int which[BATCH_PAGES], n = 0;

	for (int k = 0; k < b->n; k++)
		if (b->got[k] == 0) {
			which[n] = k;
			pages[n++] = b->dst[k];
		}
	if (n >= X16_MIN_PAGES && v->x16) {
		sha256x16_pages(pages, n, digests);
		for (int i = 0; i < n; i++)
			if (memcmp(digests[i], b->digest[which[i]], PAGE_DIGEST_SIZE))
				b->got[which[i]] = mismatch(&b->err[which[i]], b->rec_addr[which[i]],
							    v->map.tick);
		return;
	}
	for (int i = 0; i < n; i++)
		if (!page_matches(v, w, pages[i], b->digest[which[i]]))
			b->got[which[i]] = mismatch(&b->err[which[i]], b->rec_addr[which[i]],
						    v->map.tick);
}

static void wake_helper(struct verifier *v);

/*
 * A page just verified, for the cache: the helper puts it in once it has nothing
 * to prepare (a write to a page of the cache file not written before costs 3 us
 * on tmpfs and 5 on ext4: neither a fault nor the readahead should wait for it).
 * Dropped when the ring is full. The serving thread wakes the helper for them
 * when the ring is half full or at most once per PUT_WAKE_NS, not per page.
 */
static void push_put(struct verifier *v, struct put_ring *r, const uint8_t *digest,
		     const uint8_t *page)
{
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);

	if (head - atomic_load(&r->tail) >= PUT_RING || !v->have_helper)
		return;
	memcpy(r->digest[head % PUT_RING], digest, PAGE_DIGEST_SIZE);
	memcpy(r->pages + head % PUT_RING * PAGE_SIZE, page, PAGE_SIZE);
	atomic_store_explicit(&r->head, head + 1, memory_order_release);
	if (r != &v->main_puts)
		return;
	uint64_t now = now_ns();
	if (head + 1 - atomic_load(&r->tail) >= PUT_RING / 2 || now - v->put_woken_ns > PUT_WAKE_NS) {
		v->put_woken_ns = now;
		wake_helper(v);
	}
}

/* The helper: put what r holds in the cache. 1 when there was something. */
static int drain_puts(struct pagecache *c, struct put_ring *r)
{
	uint32_t tail = atomic_load(&r->tail), head = atomic_load_explicit(&r->head,
									   memory_order_acquire);
	int some = tail != head;

	for (; tail != head; tail++) {
		pagecache_put(c, r->digest[tail % PUT_RING], r->pages + tail % PUT_RING * PAGE_SIZE);
		atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
	}
	return some;
}

static int puts_waiting(struct verifier *v)
{
	return atomic_load(&v->main_puts.head) != atomic_load(&v->main_puts.tail) ||
	       atomic_load(&v->helper_puts.head) != atomic_load(&v->helper_puts.tail);
}

#define CACHED 2	/* struct batch's got, inside prepare_batch: from the verified-page cache */

/* The pages of b at the map's tick into their dst, verified (see struct batch): from the
 * verified-page cache, or from the store, hashed, and then put in the cache. */
static void prepare_batch(struct verifier *v, struct worker *w, struct batch *b)
{
	for (int k = 0; k < b->n; k++) {
		const uint8_t *digest = NULL;
		store_ref ref = pagemap_ref(&v->map, b->rec_addr[k],
					    atomic_load(&v->digests_ready) ? &digest : NULL);
		if (!ref)
			b->got[k] = 1;
		else if (v->cache && digest && pagecache_get(v->cache, digest, b->dst[k]))
			b->got[k] = CACHED;
		else
			b->got[k] = store_content(w->store, ref, b->rec_addr[k], v->map.tick,
						  b->dst[k], b->digest[k], &b->err[k]);
	}
	verify_batch(v, w, b);
	for (int k = 0; k < b->n; k++) {
		if (b->got[k] == 0 && v->cache)
			push_put(v, w == &v->helper ? &v->helper_puts : &v->main_puts, b->digest[k],
				 b->dst[k]);
		if (b->got[k] == CACHED)
			b->got[k] = 0;
	}
}

static struct slot *slot_of(struct verifier *v, uint64_t rec_addr)
{
	return &v->slots[rec_addr / PAGE_SIZE % NR_SLOTS];
}

static uint64_t key_of(const struct verifier *v, uint64_t rec_addr)
{
	return SLOT_KEY(SLOT_WORD(rec_addr / PAGE_SIZE, v->gen, 0));
}

/* Claim the slot of rec_addr for preparing it: 1, or 0 when it is busy with another
 * page or has seen this one already (prepared, or taken: installed, not wanted again). */
static int claim(struct verifier *v, uint64_t rec_addr)
{
	struct slot *s = slot_of(v, rec_addr);
	uint64_t word = atomic_load(&s->word), key = key_of(v, rec_addr);

	if (SLOT_KEY(word) == key && word)
		return 0;
	if (SLOT_STATE(word) == SLOT_BUSY || SLOT_STATE(word) == SLOT_TAKEN)
		return 0;
	return atomic_compare_exchange_strong(&s->word, &word, key << 3 | SLOT_BUSY);
}

static void slot_set(struct verifier *v, uint64_t rec_addr, enum slot_state state)
{
	atomic_store(&slot_of(v, rec_addr)->word, key_of(v, rec_addr) << 3 | state);
}

/* ---- the helper thread ---------------------------------------------------------------- */

static void wake_helper(struct verifier *v)
{
	if (atomic_load(&v->sleeping)) {
		atomic_fetch_add(&v->wake_seq, 1);
		syscall(SYS_futex, &v->wake_seq, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	}
}

/* Ask the helper to prepare [lo, hi) (replacing what it was asked before). */
static void want(struct verifier *v, uint64_t lo, uint64_t hi)
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

static uint8_t *slot_page(struct verifier *v, uint64_t rec_addr)
{
	return v->slot_bytes + (slot_of(v, rec_addr) - v->slots) * PAGE_SIZE;
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
 * uses it), and with the verified-page cache the map's digests, its keys (then
 * the cache is looked in).
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
	atomic_store(&v->loading_digests, v->cache != NULL);
	atomic_store(&v->map_state, MAP_READY);
	if (!v->cache)
		return;
	if (pagemap_load_digests(&v->map, v->helper.store, prepare_meanwhile, v, &e))
		pr_debug("no digests, no cache: %s", e.msg);
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

/* ---- the serving thread ------------------------------------------------------------- */

/* What the serving thread found in a page's slot. */
enum taken { TOOK, TOOK_ZERO, HELPER_ON_IT, NOT_THERE, CORRUPT };

/* Copy the page out of its slot when it is prepared (then the slot is free again). */
static enum taken take(struct verifier *v, uint64_t rec_addr, uint8_t *dst, struct err *e)
{
	struct slot *s = slot_of(v, rec_addr);
	uint64_t key = key_of(v, rec_addr);

	for (;;) {
		uint64_t word = atomic_load(&s->word);
		if (SLOT_KEY(word) != key)
			return NOT_THERE;
		switch (SLOT_STATE(word)) {
		case SLOT_FREE: case SLOT_TAKEN:
			return NOT_THERE;
		case SLOT_BUSY:
			return HELPER_ON_IT;
		case SLOT_BAD:
			err_set(e, ERR_CORRUPT, "%s", s->why);
			return CORRUPT;
		case SLOT_ZERO: case SLOT_READY:
			if (!atomic_compare_exchange_strong(&s->word, &word, key << 3 | SLOT_TAKEN))
				continue;	/* the helper moved on meanwhile: look again */
			if (SLOT_STATE(word) == SLOT_READY)
				memcpy(dst, v->slot_bytes + (s - v->slots) * PAGE_SIZE, PAGE_SIZE);
			else
				memset(dst, 0, PAGE_SIZE);
			atomic_store(&s->word, key << 3 | SLOT_FREE);
			return SLOT_STATE(word) == SLOT_READY ? TOOK : TOOK_ZERO;
		}
	}
}

/* Prepare the pages of b here, straight into their dst (claimed, so that the helper
 * leaves them); zero pages zeroed. 0, or -1 with the first page's error. */
static int prepare_here(struct verifier *v, struct batch *b, uint32_t *nr_zero, struct err *e)
{
	int claimed[BATCH_PAGES], ret = 0;

	for (int k = 0; k < b->n; k++)
		claimed[k] = claim(v, b->rec_addr[k]);
	prepare_batch(v, &v->main, b);
	for (int k = 0; k < b->n; k++) {
		if (claimed[k])
			slot_set(v, b->rec_addr[k], SLOT_FREE);
		if (b->got[k] == 1) {
			memset(b->dst[k], 0, PAGE_SIZE);
			++*nr_zero;
		}
		if (b->got[k] < 0 && ret == 0)
			ret = err_set(e, b->err[k].kind, "%s", b->err[k].msg);
	}
	b->n = 0;
	return ret;
}

/*
 * The pages of [rec_lo, rec_hi) into dst: the prepared ones copied out of their
 * slots, the others prepared here (top down, while the helper goes bottom up),
 * then the ones the helper was on when we came to them.
 */
static int fetch_mapped(struct verifier *v, struct store *s, uint64_t rec_lo, uint64_t rec_hi,
			uint8_t *dst, uint32_t *nr_zero, struct err *e)
{
	uint32_t npages = (rec_hi - rec_lo) / PAGE_SIZE, waiting[MAX_FILL_PAGES], nr_waiting = 0;
	struct batch b;

	b.n = 0;
	v->main.store = s;
	if (npages >= HELP_MIN_PAGES && v->have_helper)
		want(v, rec_lo, rec_hi);	/* it starts at the bottom, we at the top */
	for (uint32_t k = npages; k-- > 0;) {
		uint64_t rec_addr = rec_lo + k * PAGE_SIZE;
		enum taken t = take(v, rec_addr, dst + k * PAGE_SIZE, e);
		if (t == CORRUPT)
			return -1;
		*nr_zero += t == TOOK_ZERO;
		if (t == HELPER_ON_IT)
			waiting[nr_waiting++] = k;
		if (t == NOT_THERE)
			batch_add(&b, rec_addr, dst + k * PAGE_SIZE);
		if ((b.n == BATCH_PAGES || (k == 0 && b.n)) && prepare_here(v, &b, nr_zero, e))
			return -1;
	}
	for (uint32_t i = 0; i < nr_waiting; i++) {
		uint64_t rec_addr = rec_lo + waiting[i] * PAGE_SIZE;
		enum taken t;
		while ((t = take(v, rec_addr, dst + waiting[i] * PAGE_SIZE, e)) == HELPER_ON_IT)
			sched_yield();	/* a batch takes the helper tens of microseconds */
		if (t == CORRUPT)
			return -1;
		*nr_zero += t == TOOK_ZERO;
		if (t == NOT_THERE) {	/* the helper could not read it: here */
			batch_add(&b, rec_addr, dst + waiting[i] * PAGE_SIZE);
			if (prepare_here(v, &b, nr_zero, e))
				return -1;
		}
	}
	return 0;
}

/* Range queries (no map): each page hashed as the store decodes it. */
struct ranged {
	struct verifier *v;
	uint8_t *dst;
	uint32_t bad;	/* 1 + offset of the first page that does not match, or 0 */
};

static void verify_stored(void *ctx, uint32_t offset, const uint8_t *digest)
{
	struct ranged *r = ctx;

	if (!r->bad && !page_matches(r->v, &r->v->main, r->dst + offset, digest))
		r->bad = offset + 1;
}

static int fetch_ranged(struct verifier *v, struct store *s, uint64_t tick, uint64_t rec_lo,
			uint64_t rec_hi, uint8_t *dst, uint32_t *nr_zero, struct err *e)
{
	struct ranged r = { .v = v, .dst = dst };
	struct store_request req = { .rec_lo = rec_lo, .rec_hi = rec_hi, .tick = tick, .dst = dst,
				     .stored = verify_stored, .ctx = &r };

	if (store_fetch(s, &req, e))
		return -1;
	if (r.bad)
		return mismatch(e, rec_lo + r.bad - 1, tick);
	*nr_zero = (rec_hi - rec_lo) / PAGE_SIZE - req.nr_stored;
	return 0;
}

int fetch_verified(struct verifier *v, struct store *s, uint64_t tick, uint64_t rec_lo,
		   uint64_t rec_hi, uint8_t *dst, uint32_t *nr_zero, struct err *e)
{
	*nr_zero = 0;
	if (atomic_load(&v->map_state) == MAP_READY && v->map.tick == tick)
		return fetch_mapped(v, s, rec_lo, rec_hi, dst, nr_zero, e);
	return fetch_ranged(v, s, tick, rec_lo, rec_hi, dst, nr_zero, e);
}

/* The helper finishes its page and touches nothing until quiet is cleared. */
static void quieten(struct verifier *v)
{
	atomic_store(&v->quiet, 1);
	while (atomic_load(&v->working))
		sched_yield();
	pthread_mutex_lock(&v->want_lock);
	v->want_lo = v->want_hi = 0;
	pthread_mutex_unlock(&v->want_lock);
}

void verifier_drain(struct verifier *v)
{
	uint64_t t0 = now_ns();

	wake_helper(v);
	while (v->have_helper && puts_waiting(v) && now_ns() - t0 < DRAIN_WAIT_NS)
		usleep(100);
}

int verifier_wait_map(struct verifier *v)
{
	while (atomic_load(&v->map_state) == MAP_LOADING || atomic_load(&v->loading_digests))
		sched_yield();	/* the helper's first job: bounded queries */
	return atomic_load(&v->map_state) == MAP_READY;
}

int verifier_set_tick(struct verifier *v, struct store *s, uint64_t tick,
		      pagemap_differ_fn differ, void *ctx, struct err *e)
{
	int ret;

	verifier_wait_map(v);
	quieten(v);
	if (atomic_load(&v->map_state) == MAP_READY)
		ret = pagemap_set_tick(&v->map, s, tick, differ, ctx, e);
	else
		ret = pagemap_differ(s, v->map.tick, tick, differ, ctx, e);
	if (ret == 0) {
		v->map.tick = tick;
		v->gen++;	/* what was prepared for the old tick is stale */
	}
	atomic_store(&v->quiet, 0);
	return ret;
}
