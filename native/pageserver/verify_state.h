/*
 * The verifier's state, shared by its two sides: verify.c (the serving thread:
 * fetch_verified, moving to another tick) and verify_helper.c (the helper
 * thread: the page map's load, pages prepared ahead, the cache's puts). See
 * verify.c for how they share the work. Private to those two files.
 */
#ifndef TTD_VERIFY_STATE_H
#define TTD_VERIFY_STATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "err.h"
#include "page.h"
#include "pagecache.h"
#include "pagemap.h"
#include "sha256x16.h"
#include "store.h"

#define HELP_MIN_PAGES 4
#define NR_SLOTS 512	/* 2 MiB: a whole fill (MAX_FILL_PAGES) and the readahead after it */
#define BATCH_PAGES SHA256X16_LANES	/* prepared together */
#define PUT_WAKE_NS 1000000ULL
#define DRAIN_WAIT_NS 5000000000ULL
#define PUT_RING 256	/* pages waiting to be put in the cache by the helper (1 MiB) */
#define PUTS_AT_ONCE 8
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
	uint8_t by_check[PUT_RING];	/* verified by its check alone: sha256 before the put */
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
	_Atomic int loading_digests;	/* the helper loads the map's digests and codecs */
	_Atomic int digests_ready;	/* they are there: look in the cache, read data alone */
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

/* Pages prepared together: fetched and decoded one by one, then hashed together. */
struct batch {
	int n;
	uint64_t rec_addr[BATCH_PAGES];
	uint8_t *dst[BATCH_PAGES];
	int got[BATCH_PAGES];		/* out: 1 zeros (dst untouched), 0 verified, -1 err[k] */
	struct err err[BATCH_PAGES];
	uint8_t digest[BATCH_PAGES][PAGE_DIGEST_SIZE];
	uint8_t has_check[BATCH_PAGES];	/* check[k] holds the page's XXH3 check */
	uint8_t by_check[BATCH_PAGES];	/* out: verified by that check, sha256 not run */
	uint8_t check[BATCH_PAGES][PAGE_CHECK_SIZE];
};

void batch_add(struct batch *b, uint64_t rec_addr, uint8_t *dst);

/* The pages of b at the map's tick into their dst, verified (see struct batch): from the
 * verified-page cache, or from the store, hashed, and then put in the cache. */
void prepare_batch(struct verifier *v, struct worker *w, struct batch *b);

/* The helper puts (some of) what r holds in the cache, PUTS_AT_ONCE at most (5 us
 * each on ext4: it looks for pages to prepare in between). 1 when there was some. */
int drain_puts(struct pagecache *c, struct put_ring *r);
int puts_waiting(struct verifier *v);

/* Wake the helper if it sleeps; ask it to prepare [lo, hi) (replacing what it was
 * asked before). */
void wake_helper(struct verifier *v);
void want(struct verifier *v, uint64_t lo, uint64_t hi);

static inline struct slot *slot_of(struct verifier *v, uint64_t rec_addr)
{
	return &v->slots[rec_addr / PAGE_SIZE % NR_SLOTS];
}

static inline uint64_t key_of(const struct verifier *v, uint64_t rec_addr)
{
	return SLOT_KEY(SLOT_WORD(rec_addr / PAGE_SIZE, v->gen, 0));
}

/* Claim the slot of rec_addr for preparing it: 1, or 0 when it is busy with another
 * page or has seen this one already (prepared, or taken: installed, not wanted again). */
static inline int claim(struct verifier *v, uint64_t rec_addr)
{
	struct slot *s = slot_of(v, rec_addr);
	uint64_t word = atomic_load(&s->word), key = key_of(v, rec_addr);

	if (SLOT_KEY(word) == key && word)
		return 0;
	if (SLOT_STATE(word) == SLOT_BUSY || SLOT_STATE(word) == SLOT_TAKEN)
		return 0;
	return atomic_compare_exchange_strong(&s->word, &word, key << 3 | SLOT_BUSY);
}

static inline void slot_set(struct verifier *v, uint64_t rec_addr, enum slot_state state)
{
	atomic_store(&slot_of(v, rec_addr)->word, key_of(v, rec_addr) << 3 | state);
}

static inline uint8_t *slot_page(struct verifier *v, uint64_t rec_addr)
{
	return v->slot_bytes + (slot_of(v, rec_addr) - v->slots) * PAGE_SIZE;
}

#endif
