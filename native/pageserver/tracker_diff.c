/*
 * tracker.h, diff: for kernels without WP_ASYNC or PAGEMAP_SCAN.
 *
 * The tracker keeps, for every filled page, the bytes it was filled with (or,
 * after clear, the bytes it had then): its baseline. Baselines live in slots
 * of 4 KiB, allocated in chunks of 2 MiB (populated at once: one kernel call
 * instead of 512 page faults); a region's `slot` array maps its pages to
 * slots (1 + index, 0 = no baseline). Pieces of a region cut by mremap keep
 * pointing into the same array (region.c). Nothing is freed before exit.
 *
 * New memory (outside the recorded mappings: new mappings, brk growth) starts
 * as zeros: its pages count as written when present and not zero, or, after
 * clear, when they differ from what they held then (kept as a hash).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#define LOG_PREFIX "ttd-pageserver: diff: "
#include "log.h"
#include "page.h"
#include "tracker.h"
#include "uffd_compat.h"

#define SLOT_CHUNK_PAGES 512
#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62)
#define PM_FILE (1ULL << 61)	/* a file page (or shared anonymous): not the process's own bytes */

struct page_hash {
	uint64_t page, hash;
};

struct tracker_diff {
	struct tracker base;
	uint8_t **slot_chunks;
	uint32_t nr_slots, cap_chunks;
	struct page_hash *outside_base;	/* sorted by page */
	size_t nr_outside_base;
	uint8_t *scratch;		/* MAX_FILL_PAGES pages */
	uint64_t ents[MAX_FILL_PAGES];	/* pagemap entries */
};

static uint8_t *slot_bytes(struct tracker_diff *d, uint32_t slot)
{
	uint32_t i = slot - 1;

	return d->slot_chunks[i / SLOT_CHUNK_PAGES] + (uint64_t)(i % SLOT_CHUNK_PAGES) * PAGE_SIZE;
}

/* A new slot (1 + index), or 0 when out of memory. */
static uint32_t slot_new(struct tracker_diff *d)
{
	if (d->nr_slots % SLOT_CHUNK_PAGES == 0) {
		uint32_t chunk = d->nr_slots / SLOT_CHUNK_PAGES;
		if (chunk == d->cap_chunks) {
			uint32_t cap = d->cap_chunks ? 2 * d->cap_chunks : 64;
			uint8_t **more = realloc(d->slot_chunks, cap * sizeof(*more));
			if (!more)
				return 0;
			d->slot_chunks = more;
			d->cap_chunks = cap;
		}
		void *p = mmap(NULL, SLOT_CHUNK_PAGES * PAGE_SIZE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (p == MAP_FAILED)
			return 0;
		d->slot_chunks[chunk] = p;
	}
	return ++d->nr_slots;
}

/* The slot of the page at target_addr in r, allocated when `create`; 0 when none. */
static uint32_t page_slot(struct tracker_diff *d, struct region *r, uint64_t target_addr, int create)
{
	uint64_t i = (target_addr - r->target_start) / PAGE_SIZE;

	if (!r->slot) {
		if (!create)
			return 0;
		/* calloc of a large array is lazily zeroed memory: sparse use is cheap */
		r->slot = calloc((r->target_end - r->target_start) / PAGE_SIZE, sizeof(*r->slot));
		if (!r->slot)
			return 0;
	}
	if (!r->slot[i] && create)
		r->slot[i] = slot_new(d);
	return r->slot[i];
}

static int diff_on_fill(struct tracker *t, struct region *r, uint64_t lo, uint64_t hi,
			const uint8_t *src, struct err *e)
{
	struct tracker_diff *d = (struct tracker_diff *)t;

	for (uint64_t p = lo; p < hi; p += PAGE_SIZE) {
		uint32_t slot = page_slot(d, r, p, 1);
		if (!slot)
			return err_set(e, ERR_INTERNAL, "out of memory for the baseline of page 0x%"
				       PRIx64, p);
		memcpy(slot_bytes(d, slot), src + (p - lo), PAGE_SIZE);
	}
	return 0;
}

/*
 * A page the process dropped (MADV_DONTNEED) faults again and gets zeros. Its
 * baseline stays what it was (the recorded bytes if it was never filled), so it
 * counts as written when the zeros differ from it.
 */
static int diff_on_drop(struct tracker *t, struct region *r, uint64_t page, struct err *e)
{
	struct tracker_diff *d = (struct tracker_diff *)t;

	if (page_slot(d, r, page, 0))
		return 0;
	if (t->env.read_recorded(t->env.ctx, page + r->rec_delta, d->scratch, e))
		return -1;
	return diff_on_fill(t, r, page, page + PAGE_SIZE, d->scratch, e);
}

/* pagemap entries of npages pages from target_addr (classic /proc/PID/pagemap). */
static void read_pagemap(struct tracker_diff *d, uint64_t target_addr, size_t npages)
{
	ssize_t got = pread(d->base.env.target->pagemap_fd, d->ents, npages * 8,
			    (off_t)(target_addr / PAGE_SIZE * 8));
	size_t n = got > 0 ? (size_t)got : 0;

	if (n < npages * 8)
		memset((char *)d->ents + n, 0, npages * 8 - n);	/* unreadable: not present */
}

/*
 * Read present pages [lo, hi) of the process into scratch: process_vm_readv, and
 * /proc/PID/mem for what it refuses (mappings without read permission).
 * Only present pages: a missing one would wait for us to serve it. 0 when all read.
 */
static int read_present(struct tracker_diff *d, uint64_t lo, uint64_t hi)
{
	const struct target *tg = d->base.env.target;
	struct iovec local = { d->scratch, hi - lo }, remote = { (void *)lo, hi - lo };
	ssize_t n = process_vm_readv(tg->pid, &local, 1, &remote, 1, 0);

	if (n == (ssize_t)(hi - lo))
		return 0;
	if (n < 0)
		n = 0;
	return pread(tg->mem_fd, d->scratch + n, hi - lo - n, (off_t)(lo + n)) ==
	       (ssize_t)(hi - lo - n) ? 0 : -1;
}

/* Compare the present pages [k, m) of a run starting at page i of r with their baselines. */
static void diff_present(struct tracker_diff *d, struct region *r, uint64_t i, uint64_t k,
			 uint64_t m, struct range_list *out)
{
	uint64_t lo = r->target_start + i * PAGE_SIZE;

	if (read_present(d, lo + k * PAGE_SIZE, lo + m * PAGE_SIZE))
		return;
	for (uint64_t q = k; q < m; q++) {
		uint8_t *now = d->scratch + (q - k) * PAGE_SIZE, *base = slot_bytes(d, r->slot[i + q]);
		if (!memcmp(now, base, PAGE_SIZE))
			continue;
		if (out)
			ranges_add(out, lo + q * PAGE_SIZE, lo + (q + 1) * PAGE_SIZE);
		else	/* rebase */
			memcpy(base, now, PAGE_SIZE);
	}
}

/*
 * The pages of r that have a baseline and differ from it now: into out; or,
 * with out NULL, make their current bytes the baseline. Pages not present (the
 * process dropped them and has not touched them since) are skipped.
 */
static void diff_region(struct tracker_diff *d, struct region *r, struct range_list *out)
{
	uint64_t npages = (r->target_end - r->target_start) / PAGE_SIZE;

	for (uint64_t i = 0; r->slot && i < npages;) {
		if (!r->slot[i]) {
			i++;
			continue;
		}
		uint64_t j = i;
		while (j < npages && j - i < MAX_FILL_PAGES && r->slot[j])
			j++;
		read_pagemap(d, r->target_start + i * PAGE_SIZE, j - i);
		for (uint64_t k = 0; k < j - i;) {
			if (!(d->ents[k] & (PM_PRESENT | PM_SWAPPED))) {
				k++;
				continue;
			}
			uint64_t m = k;
			while (m < j - i && d->ents[m] & (PM_PRESENT | PM_SWAPPED))
				m++;
			diff_present(d, r, i, k, m, out);
			k = m;
		}
		i = j;
	}
}

static uint64_t page_hash(const uint8_t *page)
{
	const uint64_t *w = (const uint64_t *)page;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < PAGE_SIZE / 8; i++)
		h = (h ^ w[i]) * 0x100000001b3ULL;
	return h ^ (h >> 29);
}

static const struct page_hash *outside_baseline(const struct tracker_diff *d, uint64_t page)
{
	size_t lo = 0, hi = d->nr_outside_base;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (d->outside_base[mid].page == page)
			return &d->outside_base[mid];
		if (d->outside_base[mid].page < page)
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

/* One present page of new memory: written? (rebased != NULL: remember it instead) */
static void diff_outside_page(struct tracker_diff *d, uint64_t page, const uint8_t *now,
			      struct range_list *out, struct range_list *rebased)
{
	if (rebased) {
		if (!is_zero_page(now))
			ranges_push(rebased, page, page_hash(now));
		return;
	}
	const struct page_hash *was = outside_baseline(d, page);
	if (was ? was->hash != page_hash(now) : !is_zero_page(now))
		ranges_add(out, page, page + PAGE_SIZE);
}

/* The present anonymous pages of [lo, hi) outside every region. */
static void diff_outside_range(struct tracker_diff *d, uint64_t lo, uint64_t hi,
			       struct range_list *out, struct range_list *rebased)
{
	for (uint64_t at = lo; at < hi; at += MAX_FILL_PAGES * PAGE_SIZE) {
		uint64_t end = hi - at > MAX_FILL_PAGES * PAGE_SIZE ? at + MAX_FILL_PAGES * PAGE_SIZE : hi;
		read_pagemap(d, at, (end - at) / PAGE_SIZE);
		for (uint64_t p = at; p < end; p += PAGE_SIZE) {
			uint64_t ent = d->ents[(p - at) / PAGE_SIZE];
			if (!(ent & (PM_PRESENT | PM_SWAPPED)) || ent & PM_FILE ||
			    region_find(d->base.env.regions, p))
				continue;
			if (read_present(d, p, p + PAGE_SIZE) == 0)
				diff_outside_page(d, p, d->scratch, out, rebased);
		}
	}
}

/* Every mapping of the process but ttd-stub's image and [vsyscall], outside the regions. */
static int diff_outside(struct tracker_diff *d, struct range_list *out, struct range_list *rebased,
			struct err *e)
{
	const struct target *tg = d->base.env.target;
	char path[64], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", tg->pid);
	f = fopen(path, "re");
	if (!f && (errno == ENOENT || errno == ESRCH))
		return err_set(e, ERR_GONE, "reading %s: the process has ended", path);
	if (!f)
		return err_set(e, ERR_INTERNAL, "cannot read %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		uint64_t lo, hi;
		if (sscanf(line, "%" SCNx64 "-%" SCNx64, &lo, &hi) != 2 || lo >= TASK_SIZE_MAX)
			continue;
		if (lo < tg->image_hi && hi > tg->image_lo)
			continue;	/* the stub's own image (a mapping never straddles it) */
		diff_outside_range(d, lo, hi, out, rebased);
	}
	fclose(f);
	return 0;
}

static int diff_written(struct tracker *t, struct range_list *out, struct err *e)
{
	struct tracker_diff *d = (struct tracker_diff *)t;
	struct regions *rs = t->env.regions;

	for (uint32_t i = 0; i < rs->n; i++)
		diff_region(d, &rs->r[i], out);
	if (diff_outside(d, out, NULL, e))
		return -1;
	ranges_normalize(out);
	return ranges_check(out, e);
}

/* clear: the current bytes become the baseline. */
static int diff_clear(struct tracker *t, struct err *e)
{
	struct tracker_diff *d = (struct tracker_diff *)t;
	struct regions *rs = t->env.regions;
	struct range_list pairs = { 0 };

	for (uint32_t i = 0; i < rs->n; i++)
		diff_region(d, &rs->r[i], NULL);
	if (diff_outside(d, NULL, &pairs, e) || ranges_check(&pairs, e)) {
		ranges_free(&pairs);
		return -1;
	}
	free(d->outside_base);
	_Static_assert(sizeof(struct page_hash) == sizeof(*pairs.r), "two u64 per entry");
	d->outside_base = (struct page_hash *)pairs.r;
	d->nr_outside_base = pairs.n;
	return 0;
}

static void diff_stats(struct tracker *t, FILE *json)
{
	fprintf(json, ", \"baseline_pages\": %u", ((struct tracker_diff *)t)->nr_slots);
}

static const struct tracker_ops diff_ops = {
	.name = "diff",
	.copy_mode = 0,
	.register_wp = 0,
	.on_fill = diff_on_fill,
	.on_drop = diff_on_drop,
	.written = diff_written,
	.clear = diff_clear,
	.stats = diff_stats,
};

struct tracker *tracker_diff_new(const struct tracker_env *env)
{
	struct tracker_diff *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->scratch = aligned_alloc(PAGE_SIZE, MAX_FILL_PAGES * PAGE_SIZE);
	if (!d->scratch) {
		free(d);
		return NULL;
	}
	d->base.ops = &diff_ops;
	d->base.env = *env;
	return &d->base;
}
