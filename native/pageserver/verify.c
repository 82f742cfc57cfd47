/*
 * verify.h: verifying pages on two cores.
 *
 * sha256 of a page costs 2.4 us here, more than half of a fill. While a fault
 * is served its reader sleeps, so the second core is free: the main thread
 * steps the store's query and decodes pages into the staging buffer,
 * publishing each; the main thread and a helper thread claim published pages
 * one at a time and hash them. Nothing is installed before every page of the
 * range has been hashed and matched (verify_wait), so a page is never served
 * unverified.
 *
 * Claims and publications carry the job's generation in their upper 32 bits,
 * so a helper that looked at an old job can never claim a page of a new one
 * (a compare-and-swap on the whole word fails). The helper spins a little
 * after each job (the next fault of a sequential reader comes within tens of
 * microseconds) and then sleeps on a futex. It works only on ranges of
 * HELP_MIN_PAGES pages or more (fault-around, eager fills): a one-page fault
 * is not worth a wake-up, and a helper spinning through a stream of one-page
 * faults took the core the woken reader needed (fault p50 13 -> 50 us).
 */
#define _GNU_SOURCE
#define OPENSSL_SUPPRESS_DEPRECATED
#include <inttypes.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <openssl/sha.h>

#define LOG_PREFIX "ttd-pageserver: verify: "
#include "log.h"
#include "io.h"
#include "page.h"
#include "verify.h"

#define HELP_MIN_PAGES 4
#define HELPER_SPIN_NS 50000ULL

_Static_assert(SHA256_DIGEST_LENGTH == PAGE_DIGEST_SIZE, "a page's digest is its sha256");

struct verifier {
	_Atomic uint64_t claim;		/* gen << 32 | next page index to claim */
	_Atomic uint64_t published;	/* gen << 32 | pages decoded so far */
	_Atomic uint32_t done;		/* pages hashed in this job */
	_Atomic uint32_t bad;		/* 1 + index of a page whose hash mismatched */
	_Atomic uint32_t wake_seq;	/* futex word the helper sleeps on */
	_Atomic int sleeping;
	_Atomic uint32_t help_gen;	/* the latest job the helper may work on */
	_Atomic uint64_t helper_pages;	/* statistics */
	uint32_t gen;
	uint32_t nr_published;
	uint8_t *dst;
	uint32_t offset[MAX_FILL_PAGES];	/* of each page in dst */
	uint8_t digest[MAX_FILL_PAGES][PAGE_DIGEST_SIZE];
};

static int page_matches(struct verifier *v, uint32_t i)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256_CTX ctx;

	/* the low-level calls: OpenSSL 3's SHA256() fetches the algorithm on every call */
	SHA256_Init(&ctx);
	SHA256_Update(&ctx, v->dst + v->offset[i], PAGE_SIZE);
	SHA256_Final(md, &ctx);
	return memcmp(md, v->digest[i], sizeof(md)) == 0;
}

/* Claim and hash one published page; 0 when none is available now. */
static int verify_one(struct verifier *v, int helper)
{
	uint64_t c = atomic_load_explicit(&v->claim, memory_order_acquire);
	uint64_t pub = atomic_load_explicit(&v->published, memory_order_acquire);

	if (pub >> 32 != c >> 32 || (uint32_t)c >= (uint32_t)pub)
		return 0;
	if (helper && atomic_load(&v->help_gen) != c >> 32)
		return 0;	/* a small job: not worth a second core */
	if (!atomic_compare_exchange_weak(&v->claim, &c, c + 1))
		return 1;	/* lost the race: try again */
	uint32_t i = (uint32_t)c;
	if (!page_matches(v, i)) {
		uint32_t none = 0;
		atomic_compare_exchange_strong(&v->bad, &none, i + 1);
	}
	if (helper)
		atomic_fetch_add_explicit(&v->helper_pages, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&v->done, 1, memory_order_release);
	return 1;
}

static void *helper_main(void *arg)
{
	struct verifier *v = arg;

	for (;;) {
		uint64_t idle_since = now_ns();
		while (now_ns() - idle_since < HELPER_SPIN_NS) {
			if (verify_one(v, 1))
				idle_since = now_ns();
			else
				sched_yield();	/* on a busy machine the main thread may share our core */
		}
		uint32_t seq = atomic_load(&v->wake_seq);
		atomic_store(&v->sleeping, 1);
		if (!verify_one(v, 1))	/* re-check after announcing the sleep */
			syscall(SYS_futex, &v->wake_seq, FUTEX_WAIT_PRIVATE, seq, NULL, NULL, 0);
		atomic_store(&v->sleeping, 0);
	}
	return NULL;
}

struct verifier *verifier_start(void)
{
	struct verifier *v = calloc(1, sizeof(*v));
	pthread_t thread;
	sigset_t all, old;

	if (!v)
		return NULL;
	/* the helper takes no signals: they belong to the main thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&thread, NULL, helper_main, v))
		pr_debug("no helper thread: pages are verified on one core");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return v;
}

uint64_t verifier_helper_pages(struct verifier *v)
{
	return atomic_load(&v->helper_pages);
}

static void verify_begin(struct verifier *v, uint8_t *dst, uint32_t npages)
{
	v->gen++;
	v->dst = dst;
	v->nr_published = 0;
	atomic_store(&v->done, 0);
	atomic_store(&v->bad, 0);
	atomic_store_explicit(&v->published, (uint64_t)v->gen << 32, memory_order_release);
	atomic_store_explicit(&v->claim, (uint64_t)v->gen << 32, memory_order_release);
	if (npages < HELP_MIN_PAGES)
		return;
	atomic_store(&v->help_gen, v->gen);
	if (atomic_load(&v->sleeping)) {
		atomic_fetch_add(&v->wake_seq, 1);
		syscall(SYS_futex, &v->wake_seq, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	}
}

/* The store decoded a page at dst + offset (struct store_request's `stored`). */
static void verify_publish(void *ctx, uint32_t offset, const uint8_t *digest)
{
	struct verifier *v = ctx;
	uint32_t k = v->nr_published++;

	v->offset[k] = offset;
	memcpy(v->digest[k], digest, PAGE_DIGEST_SIZE);
	atomic_store_explicit(&v->published, ((uint64_t)v->gen << 32) | (k + 1), memory_order_release);
}

/* Hash along until every published page is verified (also after a store error: the
 * helper must be done with dst before anyone reuses it). The offset of a page whose
 * hash did not match, or UINT32_MAX. */
static uint32_t verify_wait(struct verifier *v)
{
	while ((uint32_t)atomic_load(&v->claim) < v->nr_published)
		verify_one(v, 0);
	while (atomic_load_explicit(&v->done, memory_order_acquire) < v->nr_published)
		sched_yield();	/* the helper hashes its last page */
	uint32_t bad = atomic_load(&v->bad);
	return bad ? v->offset[bad - 1] : UINT32_MAX;
}

int fetch_verified(struct verifier *v, struct store *s, uint64_t tick, uint64_t rec_lo,
		   uint64_t rec_hi, uint8_t *dst, uint32_t *nr_zero, struct err *e)
{
	struct store_request req = { .rec_lo = rec_lo, .rec_hi = rec_hi, .tick = tick, .dst = dst,
				     .stored = verify_publish, .ctx = v };
	uint32_t npages = (rec_hi - rec_lo) / PAGE_SIZE;

	verify_begin(v, dst, npages);
	int ret = store_fetch(s, &req, e);
	uint32_t bad = verify_wait(v);
	if (ret)
		return ret;
	if (bad != UINT32_MAX)
		return err_set(e, ERR_CORRUPT, "page %#" PRIx64 " at tick %" PRIu64 " is corrupt "
			       "(its sha256 does not match the recorded digest)", rec_lo + bad, tick);
	*nr_zero = npages - req.nr_stored;
	return 0;
}
