/*
 * fault_driver: the page server's fault path without a process, for
 * test_fault_pagemap.py. Linked with ttd-pageserver's own objects (store, page
 * map, verifier, regions, fault path) and run on a real recording:
 *
 *   fault_driver DB fetch TICK REC_LO NPAGES map|ranged
 *       every page of [REC_LO, +NPAGES) at TICK, one fetch_verified() per page,
 *       through the page map (loaded first) or through range queries
 *   fault_driver DB window TICK REC_LO NPAGES
 *       the same pages in one fetch_verified() through the page map
 *   fault_driver DB ahead TICK REC_LO NPAGES
 *       the helper prepares the pages first (readahead), then each is fetched
 *   fault_driver DB held TICK REC_LO NPAGES
 *       the helper prepares the pages, then verifier_take_prepared() holds them in
 *       place: the pages from there, or "not prepared"; after verifier_release() a
 *       second take must find nothing ("released"), and each page is fetched
 *   fault_driver DB reread TICK REC_LO NPAGES idle|busy SQL
 *       every page fetched through the page map; then (idle) store_idle(), and SQL run
 *       by a writer of its own (busy: without waiting for the lock): "writer ok" or
 *       "writer busy"; then every page fetched again, as the recording is now
 *   fault_driver DB move TICK_A TICK_B REC_LO NPAGES
 *       pager_set_tick() from A to B on a region [REC_LO, +NPAGES) recorded at its
 *       address: the ranges that differ, then every page fetched at B
 *   fault_driver FILE cache-stress SECONDS
 *       two threads put and get 64 pages in a tiny verified-page cache (its tag from
 *       FILE; run it twice at once for two processes): every page a get returns must
 *       hash to its key: "ok <hits>", or "TORN ..."
 *   fault_driver - sha SEED ROUNDS
 *       sha256x16_pages() of 1 to 16 pseudo-random pages, ROUNDS times each, against
 *       OpenSSL: "ok N" (digests compared), "unavailable" (no AVX-512), or "MISMATCH ..."
 *
 * Prints one line per page: "0x... <sha256 hex>", "0x... zero" or "0x... ERROR <msg>"
 * (then stops); "differ 0x...-0x..." per range for move. Before it exits, what it
 * verified is in the verified-page cache (TTD_PAGE_CACHE, pagecache.h).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "pageserver/fault.h"
#include "pageserver/io.h"
#include "pageserver/page.h"
#include "pageserver/pagecache.h"
#include "pageserver/sha256x16.h"
#include "pageserver/verify.h"

int log_debug_enabled;

static uint8_t buf[MAX_FILL_PAGES * PAGE_SIZE] __attribute__((aligned(4096)));

static int print_pages(uint64_t rec_lo, uint32_t npages, const uint8_t *pages)
{
	static const uint8_t zeros[PAGE_SIZE];

	for (uint32_t k = 0; k < npages; k++) {
		const uint8_t *page = pages + (size_t)k * PAGE_SIZE;
		unsigned char md[32];
		unsigned int len;

		printf("%#" PRIx64, rec_lo + (uint64_t)k * PAGE_SIZE);
		if (!memcmp(page, zeros, PAGE_SIZE)) {
			puts(" zero");
			continue;
		}
		EVP_Digest(page, PAGE_SIZE, md, &len, EVP_sha256(), NULL);
		putchar(' ');
		for (unsigned int i = 0; i < len; i++)
			printf("%02x", md[i]);
		putchar('\n');
	}
	return 0;
}

static int fail(struct err *e)
{
	printf("ERROR %s\n", e->msg);
	return 0;
}

/* Each page alone; stops at the first error. */
static int fetch_each(struct verifier *v, struct store *s, uint64_t tick, uint64_t rec_lo,
		      uint32_t npages)
{
	for (uint32_t k = 0; k < npages; k++) {
		uint64_t rec_addr = rec_lo + (uint64_t)k * PAGE_SIZE;
		struct err e = { 0 };
		uint32_t nr_zero;
		if (fetch_verified(v, s, tick, rec_addr, rec_addr + PAGE_SIZE, buf, &nr_zero, &e)) {
			printf("%#" PRIx64 " ", rec_addr);
			return fail(&e);
		}
		print_pages(rec_addr, 1, buf);
	}
	return 0;
}

/* Wait (bounded: only a hang exceeds it) until the helper has prepared n more pages. */
static int wait_helper(struct verifier *v, uint64_t before, uint32_t n)
{
	uint64_t t0 = now_ns();

	while (verifier_helper_pages(v) < before + n)
		if (now_ns() - t0 > 20000000000ULL)
			return -1;
		else
			usleep(100);
	return 0;
}

/* The helper prepares the pages, which are then held in place, released, fetched. */
static int held(struct verifier *v, struct store *s, uint64_t tick, uint64_t rec_lo,
		uint32_t npages)
{
	uint64_t before = verifier_helper_pages(v), rec_hi = rec_lo + npages * PAGE_SIZE;
	const uint8_t *pages;

	verifier_readahead(v, rec_lo, rec_hi);
	if (wait_helper(v, before, npages))
		return puts("ERROR the helper did not prepare the pages") == EOF;
	pages = verifier_take_prepared(v, tick, rec_lo, rec_hi);
	if (!pages)
		puts("not prepared");
	else
		print_pages(rec_lo, npages, pages);
	if (pages) {
		verifier_release(v, rec_lo, rec_hi);
		if (verifier_take_prepared(v, tick, rec_lo, rec_hi))
			return puts("ERROR taken twice") == EOF;
		puts("released");
	}
	return fetch_each(v, s, tick, rec_lo, npages);
}

/* Every page, a writer's SQL (after store_idle() or while the store reads), every page. */
static int reread(struct verifier *v, struct store *s, const char *db_path, uint64_t tick,
		  uint64_t rec_lo, uint32_t npages, int idle, const char *sql)
{
	sqlite3 *w = NULL;
	int rc;

	fetch_each(v, s, tick, rec_lo, npages);
	if (idle) {
		store_idle(s);
		verifier_drain(v);	/* the helper's store is idle once it sleeps */
	}
	rc = sqlite3_open(db_path, &w);
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(w, idle ? 20000 : 0);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(w, sql, NULL, NULL, NULL);
	printf("writer %s\n", rc == SQLITE_OK ? "ok" : rc == SQLITE_BUSY ? "busy" : sqlite3_errmsg(w));
	sqlite3_close(w);
	return fetch_each(v, s, tick, rec_lo, npages);
}

static int move(struct verifier *v, struct store *s, uint64_t tick_a, uint64_t tick_b,
		uint64_t rec_lo, uint32_t npages)
{
	struct stub_map map = { .rec_start = rec_lo, .rec_end = rec_lo + npages * PAGE_SIZE,
				.register_uffd = 1 };
	struct pager p = { .store = s, .verifier = v, .tick = tick_a };
	struct range_list differ = { 0 };
	struct err e = { 0 };

	if (pager_init(&p, &map, 1, &e) || pager_set_tick(&p, tick_b, &differ, &e))
		return fail(&e);
	for (size_t i = 0; i < differ.n; i++)
		printf("differ %#" PRIx64 "-%#" PRIx64 "\n", differ.r[i][0], differ.r[i][1]);
	ranges_free(&differ);
	return fetch_each(v, s, tick_b, rec_lo, npages);
}

/* sha256x16 against OpenSSL on every batch size, pages of random, zero and 0xff bytes. */
static int sha_check(uint64_t seed, int rounds)
{
	static uint8_t pages[SHA256X16_LANES][PAGE_SIZE];
	uint8_t digests[SHA256X16_LANES][PAGE_DIGEST_SIZE], md[32];
	const uint8_t *p[SHA256X16_LANES];
	unsigned int len, compared = 0;

	if (!sha256x16_available())
		return puts("unavailable") == EOF;
	for (int r = 0; r < rounds; r++)
		for (int n = 1; n <= SHA256X16_LANES; n++) {
			for (int j = 0; j < n; j++) {
				for (size_t i = 0; i < PAGE_SIZE; i++) {
					seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
					pages[j][i] = (j + r) % 5 == 3 ? 0 : (j + r) % 5 == 4 ? 0xff : seed >> 56;
				}
				p[j] = pages[j];
			}
			sha256x16_pages(p, n, digests);
			for (int j = 0; j < n; j++, compared++) {
				EVP_Digest(pages[j], PAGE_SIZE, md, &len, EVP_sha256(), NULL);
				if (memcmp(md, digests[j], sizeof(md)))
					return printf("MISMATCH round %d batch %d page %d\n", r, n, j) < 0;
			}
		}
	return printf("ok %u\n", compared) < 0;
}

struct stress {
	struct pagecache *cache;
	uint64_t until_ns;
	_Atomic uint64_t hits, torn;
	int seed;
};

static void stress_page(int i, int version, uint8_t *page, uint8_t *digest)
{
	unsigned int len;

	for (size_t k = 0; k < PAGE_SIZE; k++)
		page[k] = (uint8_t)(i * 31 + version * 7 + k * (i | 1));
	EVP_Digest(page, PAGE_SIZE, digest, &len, EVP_sha256(), NULL);
}

static void *stress_thread(void *arg)
{
	struct stress *st = arg;
	static _Thread_local uint8_t page[PAGE_SIZE], got[PAGE_SIZE];
	uint8_t digest[32], md[32];
	unsigned int len, x = st->seed;

	while (now_ns() < st->until_ns) {
		x = x * 1103515245 + 12345;
		stress_page(x % 64, (x >> 8) % 4, page, digest);
		if (x & 0x10000) {
			pagecache_put(st->cache, digest, page);
		} else if (pagecache_get(st->cache, digest, got)) {
			EVP_Digest(got, PAGE_SIZE, md, &len, EVP_sha256(), NULL);
			atomic_fetch_add(memcmp(md, digest, 32) ? &st->torn : &st->hits, 1);
		}
	}
	return NULL;
}

static int cache_stress(const char *tag_file, int seconds)
{
	struct stress st = { .cache = pagecache_open(tag_file),
			     .until_ns = now_ns() + seconds * 1000000000ULL };
	pthread_t threads[2];

	if (!st.cache)
		return puts("ERROR no cache") == EOF;
	for (int i = 0; i < 2; i++) {
		st.seed = getpid() * 2 + i;
		pthread_create(&threads[i], NULL, stress_thread, &st);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(threads[i], NULL);
	if (atomic_load(&st.torn))
		return printf("TORN %lu of %lu\n", atomic_load(&st.torn), atomic_load(&st.hits)) < 0;
	return printf("ok %lu\n", atomic_load(&st.hits)) < 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[2], "cache-stress"))
		return cache_stress(argv[1], atoi(argv[3]));
	if (argc == 5 && !strcmp(argv[2], "sha"))
		return sha_check(strtoull(argv[3], NULL, 0), atoi(argv[4]));
	struct err e = { 0 };
	struct store *s;
	struct verifier *v;

	if (argc < 6)
		return 2;
	log_debug_enabled = getenv("TTD_DEBUG") != NULL;
	const char *mode = argv[2];
	uint64_t tick = strtoull(argv[3], NULL, 0), rec_lo = strtoull(argv[4], NULL, 0);
	uint32_t npages = strtoul(argv[5], NULL, 0);
	if (!(s = store_open(argv[1], &e)) || !(v = verifier_start()))
		return fail(&e) + 1;
	if (!strcmp(mode, "move") && argc == 7) {
		uint64_t tick_b = strtoull(argv[4], NULL, 0);
		rec_lo = strtoull(argv[5], NULL, 0);
		npages = strtoul(argv[6], NULL, 0);
		verifier_open(v, argv[1], tick);
		move(v, s, tick, tick_b, rec_lo, npages);
		verifier_drain(v);
		return 0;
	}
	if (strcmp(mode, "fetch") || argc < 7 || strcmp(argv[6], "ranged")) {
		verifier_open(v, argv[1], tick);
		if (!verifier_wait_map(v))
			return puts("ERROR no page map") == EOF;
	}
	if (!strcmp(mode, "held")) {
		held(v, s, tick, rec_lo, npages);
		verifier_drain(v);
		return 0;
	}
	if (!strcmp(mode, "reread") && argc == 8) {
		reread(v, s, argv[1], tick, rec_lo, npages, !strcmp(argv[6], "idle"), argv[7]);
		verifier_drain(v);
		return 0;
	}
	if (!strcmp(mode, "window")) {
		uint32_t nr_zero;
		if (npages > MAX_FILL_PAGES ||
		    fetch_verified(v, s, tick, rec_lo, rec_lo + npages * PAGE_SIZE, buf, &nr_zero, &e))
			return fail(&e);
		print_pages(rec_lo, npages, buf);
		verifier_drain(v);
		return 0;
	}
	if (!strcmp(mode, "ahead")) {
		uint64_t before = verifier_helper_pages(v);
		verifier_readahead(v, rec_lo, rec_lo + npages * PAGE_SIZE);
		if (wait_helper(v, before, npages))
			return puts("ERROR the helper did not prepare the pages") == EOF;
	}
	fetch_each(v, s, tick, rec_lo, npages);
	verifier_drain(v);
	return 0;
}
