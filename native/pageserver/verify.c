/*
 * verify.h: verifying pages, on two cores.
 *
 * Where a page's microseconds go here (2 vCPUs, bench/lazy_fill.py's pages,
 * clock_gettime around each stage): sha256 2.1 (OpenSSL with the CPU's SHA
 * instructions: EVP with the algorithm fetched once 2.1, the low-level calls
 * 2.1, one-shot SHA256() 2.4: it fetches the algorithm each call), zstd 0.5,
 * the range query for one page at random 2.5-3.0 (one content row by id
 * 1.3-1.7: the page map saves the search), UFFDIO_COPY of the page 1.7.
 * The content row through SQLite's API, at random in a 256 MiB recording:
 * the prepared statement 1.4-1.6, sqlite3_blob_reopen on data alone 1.3, on
 * data and digest 1.45, on the three columns 1.6 (a seek each), with
 * SQLITE_CONFIG_MEMSTATUS off no change in the server; a walk of the file's
 * b-tree outside SQLite 0.9, not done: it must read under SQLite's lock and
 * mapping and leave WAL, overflow pages and damage to SQLite. Three blob
 * handles moved with sqlite3_blob_reopen in place of the statement were tried:
 * a cold random fault's serve 5.8 us against 5.7 with the statement (median of 7
 * runs each, taking turns in one run), no gain, not kept. One handle on the data
 * alone, the codec and digest from the page map (store_data): the row 0.8 us
 * against 1.2 (a 32 KiB-page recording of 256 MiB, pages of 1.1 KiB packed),
 * a cold random fault's serve 5.76 -> 5.40 us, kept. Where a cold random fault's
 * serve goes now: lookup 0.2, data 0.8, zstd 0.4, sha256 2.05, UFFDIO_COPY
 * 1.4-1.7: the hash and the copy are most of it, and the hash must come first.
 * So a page read with the map is checked against its recorded check
 * (page_content.xxh3, page_check.h: 0.22 us) in place of sha256, which runs only
 * on a mismatch (it decides, and says why) or where the recording has no check:
 * a cold random fault's serve 3.7 us against 5.6 in one bench run (prototype).
 *
 * A window the helper prepared whole (every page READY, the slots side by side)
 * is installed straight from the slots, held TAKEN meanwhile
 * (verifier_take_prepared): copying 64 KiB into the staging buffer first cost
 * 0.25-0.65 us a page, a fifth of an in-order fault.
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
 * The helper thread is verify_helper.c; the state both share, verify_state.h.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <linux/futex.h>
#include <openssl/sha.h>
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
#include "page_check.h"

/* The page's check (page_check.h) matches the recorded one. */
static int check_matches(const uint8_t *page, const uint8_t *digest, const uint8_t *check)
{
	uint8_t got[PAGE_CHECK_SIZE];

	page_check(page, digest, got);
	return memcmp(got, check, PAGE_CHECK_SIZE) == 0;
}

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

void batch_add(struct batch *b, uint64_t rec_addr, uint8_t *dst)
{
	b->has_check[b->n] = b->by_check[b->n] = 0;
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
		if (b->got[k] == 0 && b->has_check[k] &&
		    check_matches(b->dst[k], b->digest[k], b->check[k]))
			b->by_check[k] = 1;	/* on a mismatch sha256 decides and says why */
		else if (b->got[k] == 0) {
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

/*
 * A page just verified, for the cache: the helper puts it in once it has nothing
 * to prepare (a write to a page of the cache file not written before costs 3 us
 * on tmpfs and 5 on ext4: neither a fault nor the readahead should wait for it).
 * Dropped when the ring is full. The serving thread wakes the helper for them
 * when the ring is half full or at most once per PUT_WAKE_NS, not per page.
 * A page verified by its check alone is hashed with sha256 by the helper before
 * the put: the cache holds only pages whose sha256 is their key, so bytes made
 * to fit a check (page_check.h) never reach another recording at that file.
 */
static void push_put(struct verifier *v, struct put_ring *r, const uint8_t *digest,
		     const uint8_t *page, int by_check)
{
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);

	if (head - atomic_load(&r->tail) >= PUT_RING || !v->have_helper)
		return;
	memcpy(r->digest[head % PUT_RING], digest, PAGE_DIGEST_SIZE);
	r->by_check[head % PUT_RING] = (uint8_t)by_check;
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
int drain_puts(struct pagecache *c, struct put_ring *r)
{
	uint32_t tail = atomic_load(&r->tail), head = atomic_load_explicit(&r->head,
									   memory_order_acquire);
	int some = tail != head;

	if (head - tail > PUTS_AT_ONCE)
		head = tail + PUTS_AT_ONCE;
	for (; tail != head; tail++) {
		const uint8_t *page = r->pages + tail % PUT_RING * PAGE_SIZE;
		uint8_t sha[PAGE_DIGEST_SIZE];

		if (!r->by_check[tail % PUT_RING] ||
		    !memcmp(SHA256(page, PAGE_SIZE, sha), r->digest[tail % PUT_RING], sizeof(sha)))
			pagecache_put(c, r->digest[tail % PUT_RING], page);
		atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
	}
	return some;
}

int puts_waiting(struct verifier *v)
{
	return atomic_load(&v->main_puts.head) != atomic_load(&v->main_puts.tail) ||
	       atomic_load(&v->helper_puts.head) != atomic_load(&v->helper_puts.tail);
}

#define CACHED 2	/* struct batch's got, inside prepare_batch: from the verified-page cache */

void prepare_batch(struct verifier *v, struct worker *w, struct batch *b)
{
	for (int k = 0; k < b->n; k++) {
		const struct store_known *known = NULL;
		store_ref ref = pagemap_ref(&v->map, b->rec_addr[k],
					    atomic_load(&v->digests_ready) ? &known : NULL);
		if (!ref)
			b->got[k] = 1;
		else if (v->cache && known && pagecache_get(v->cache, known->digest, b->dst[k]))
			b->got[k] = CACHED;
		else if (known && store_data(w->store, ref, known->codec, b->dst[k]) == 0) {
			memcpy(b->digest[k], known->digest, PAGE_DIGEST_SIZE);	/* checked below */
			b->has_check[k] = known->has_check;
			memcpy(b->check[k], known->check, PAGE_CHECK_SIZE);
			b->got[k] = 0;
		} else
			b->got[k] = store_content(w->store, ref, b->rec_addr[k], v->map.tick,
						  b->dst[k], b->digest[k], &b->err[k]);
	}
	verify_batch(v, w, b);
	for (int k = 0; k < b->n; k++) {
		if (b->got[k] == 0 && v->cache)
			push_put(v, w == &v->helper ? &v->helper_puts : &v->main_puts, b->digest[k],
				 b->dst[k], b->by_check[k]);
		if (b->got[k] == CACHED)
			b->got[k] = 0;
	}
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

/* Hold the prepared page at rec_addr (READY -> TAKEN): 1, or 0 when it is not there. */
static int hold(struct verifier *v, uint64_t rec_addr)
{
	uint64_t key = key_of(v, rec_addr), ready = key << 3 | SLOT_READY;

	return atomic_compare_exchange_strong(&slot_of(v, rec_addr)->word, &ready,
					      key << 3 | SLOT_TAKEN);
}

/* Give back held pages: to the helper as prepared (unused), or as used (FREE: not
 * prepared again, like a page take() copied out). */
static void unhold(struct verifier *v, uint64_t rec_lo, uint64_t rec_hi, enum slot_state state)
{
	for (uint64_t rec_addr = rec_lo; rec_addr < rec_hi; rec_addr += PAGE_SIZE)
		slot_set(v, rec_addr, state);
}

const uint8_t *verifier_take_prepared(struct verifier *v, uint64_t tick, uint64_t rec_lo,
				      uint64_t rec_hi)
{
	uint64_t rec_addr;

	if (atomic_load(&v->map_state) != MAP_READY || v->map.tick != tick ||
	    slot_of(v, rec_lo) > slot_of(v, rec_hi - PAGE_SIZE))
		return NULL;
	for (rec_addr = rec_lo; rec_addr < rec_hi && hold(v, rec_addr); rec_addr += PAGE_SIZE)
		;
	if (rec_addr == rec_hi)
		return slot_page(v, rec_lo);
	unhold(v, rec_lo, rec_addr, SLOT_READY);
	return NULL;
}

void verifier_release(struct verifier *v, uint64_t rec_lo, uint64_t rec_hi)
{
	unhold(v, rec_lo, rec_hi, SLOT_FREE);
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
