/* region.h: the registered ranges, moved by mremap and dropped by madvise. */
#include <inttypes.h>
#include <stdlib.h>

#define LOG_PREFIX "ttd-pageserver: regions: "
#include "log.h"
#include "page.h"
#include "region.h"

int regions_init(struct regions *rs, const struct stub_map *maps, uint32_t nr_maps, struct err *e)
{
	rs->r = calloc(nr_maps + 1, sizeof(*rs->r));
	if (!rs->r)
		return err_set(e, ERR_INTERNAL, "out of memory for %u regions", nr_maps);
	rs->n = 0;
	for (uint32_t i = 0; i < nr_maps; i++) {
		if (!maps[i].register_uffd)
			continue;
		struct region *r = &rs->r[rs->n++];
		r->target_start = maps[i].rec_start;
		r->target_end = maps[i].rec_end;
	}
	return 0;
}

struct region *region_find(struct regions *rs, uint64_t target_addr)
{
	uint32_t lo = 0, hi = rs->n;

	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		struct region *r = &rs->r[mid];
		if (target_addr < r->target_start)
			hi = mid;
		else if (target_addr >= r->target_end)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

int region_page_filled(const struct region *r, uint64_t target_addr)
{
	uint64_t i = (target_addr - r->target_start) / PAGE_SIZE;

	return r->filled && (r->filled[i / 8] & (1 << (i % 8)));
}

int region_mark_filled(struct region *r, uint64_t lo, uint64_t hi, struct err *e)
{
	if (!r->filled)	/* calloc of a large bitmap is lazily zeroed memory */
		r->filled = calloc((r->target_end - r->target_start) / PAGE_SIZE / 8 + 1, 1);
	if (!r->filled)
		return err_set(e, ERR_INTERNAL, "out of memory for the fill bitmap of 0x%" PRIx64
			       "-0x%" PRIx64, r->target_start, r->target_end);
	for (uint64_t p = lo; p < hi; p += PAGE_SIZE) {
		uint64_t i = (p - r->target_start) / PAGE_SIZE;
		r->filled[i / 8] |= 1 << (i % 8);
	}
	return 0;
}

void region_mark_unfilled(struct region *r, uint64_t target_addr)
{
	uint64_t i = (target_addr - r->target_start) / PAGE_SIZE;

	if (r->filled)
		r->filled[i / 8] &= ~(1 << (i % 8));
}

int regions_note_removed(struct regions *rs, uint64_t lo, uint64_t hi, struct err *e)
{
	struct target_range *more = realloc(rs->removed, (rs->nr_removed + 1) * sizeof(*more));

	if (!more)
		return err_set(e, ERR_INTERNAL, "out of memory noting 0x%" PRIx64 "-0x%" PRIx64
			       " dropped", lo, hi);
	rs->removed = more;
	rs->removed[rs->nr_removed++] = (struct target_range){ lo, hi };
	return 0;
}

int regions_page_removed(const struct regions *rs, uint64_t target_addr)
{
	for (size_t i = 0; i < rs->nr_removed; i++)
		if (target_addr >= rs->removed[i].lo && target_addr < rs->removed[i].hi)
			return 1;
	return 0;
}

static int cmp_region(const void *a, const void *b)
{
	const struct region *x = a, *y = b;

	return x->target_start < y->target_start ? -1 : x->target_start > y->target_start;
}

/* The diff tracker's slot array of r from target_addr on (a piece of r starting there). */
static uint32_t *slots_from(const struct region *r, uint64_t target_addr)
{
	return r->slot ? r->slot + (target_addr - r->target_start) / PAGE_SIZE : NULL;
}

/*
 * Cut [lo, hi) out of the regions into `out` (which has room), keeping the
 * pieces outside it. With `to` != 0 the cut parts move to `to` and keep
 * their contents' recorded addresses (rec_delta). Fill bitmaps of the pieces
 * are dropped: "unknown" only costs an EEXIST on a later fill.
 */
static uint32_t cut_regions(const struct regions *rs, struct region *out, uint64_t lo,
			    uint64_t hi, uint64_t to)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < rs->n; i++) {
		struct region r = rs->r[i];
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
int regions_remap(struct regions *rs, uint64_t from, uint64_t to, uint64_t len, struct err *e)
{
	/* each cut splits at most one region in two and moves at most all of them */
	uint32_t cap = 3 * rs->n + 4;
	struct region *replaced = calloc(cap, sizeof(*replaced)), *moved = calloc(cap, sizeof(*moved));

	if (!replaced || !moved) {
		free(replaced);
		free(moved);
		return err_set(e, ERR_INTERNAL, "out of memory following mremap of 0x%" PRIx64
			       "-0x%" PRIx64, from, from + len);
	}
	rs->n = cut_regions(rs, replaced, to, to + len, 0);	/* gone: mremap unmapped it */
	free(rs->r);
	rs->r = replaced;
	rs->n = cut_regions(rs, moved, from, from + len, to);
	qsort(moved, rs->n, sizeof(*moved), cmp_region);
	free(rs->r);
	rs->r = moved;
	size_t nr_before = rs->nr_removed;
	for (size_t i = 0; i < nr_before; i++) {	/* dropped ranges move along */
		struct target_range d = rs->removed[i];
		if (d.lo < from + len && d.hi > from &&
		    regions_note_removed(rs, to + (d.lo > from ? d.lo - from : 0),
					 to + (d.hi < from + len ? d.hi - from : len), e))
			return -1;
	}
	pr_debug("mremap 0x%" PRIx64 "-0x%" PRIx64 " to 0x%" PRIx64 ": %u regions",
		 from, from + len, to, rs->n);
	return 0;
}

int regions_unmap(struct regions *rs, uint64_t lo, uint64_t hi, struct err *e)
{
	/* the cut splits at most one region in two */
	struct region *kept = calloc(rs->n + 2, sizeof(*kept));

	if (!kept)
		return err_set(e, ERR_INTERNAL, "out of memory following munmap of 0x%" PRIx64
			       "-0x%" PRIx64, lo, hi);
	rs->n = cut_regions(rs, kept, lo, hi, 0);
	free(rs->r);
	rs->r = kept;
	pr_debug("munmap 0x%" PRIx64 "-0x%" PRIx64 ": %u regions", lo, hi, rs->n);
	return 0;
}

static int in_ranges(const struct target_range *r, size_t n, uint64_t target_addr)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (target_addr < r[mid].lo)
			hi = mid;
		else if (target_addr >= r[mid].hi)
			lo = mid + 1;
		else
			return 1;
	}
	return 0;
}

static int overlaps_fresh(const struct target_range *r, size_t n, const struct region *reg)
{
	for (size_t i = 0; i < n; i++)
		if (r[i].lo < reg->target_end && r[i].hi > reg->target_start)
			return 1;
	return 0;
}

static int overlaps_removed(const struct regions *rs, const struct region *reg)
{
	return overlaps_fresh(rs->removed, rs->nr_removed, reg);
}

/* The filled bits of `to` from the old region `from` (at its recorded address) for
 * the pages both hold, but those mapped anew or dropped. */
static int carry_filled(struct region *to, const struct region *from, const struct regions *old,
			const struct target_range *fresh, size_t nr_fresh, struct err *e)
{
	uint64_t lo = to->target_start > from->target_start ? to->target_start : from->target_start;
	uint64_t hi = to->target_end < from->target_end ? to->target_end : from->target_end;

	for (uint64_t p = lo; p < hi; p += PAGE_SIZE) {
		if (!region_page_filled(from, p) || in_ranges(fresh, nr_fresh, p) ||
		    regions_page_removed(old, p))
			continue;
		if (region_mark_filled(to, p, p + PAGE_SIZE, e))
			return -1;
	}
	return 0;
}

int regions_reshape(struct regions *rs, const struct stub_map *maps, uint32_t nr_maps,
		    const struct target_range *fresh, size_t nr_fresh, struct err *e)
{
	struct regions out = { 0 };
	int ret = 0;

	if (regions_init(&out, maps, nr_maps, e))
		return -1;
	for (uint32_t i = 0; i < out.n && !ret; i++) {
		struct region *to = &out.r[i];
		for (uint32_t j = 0; j < rs->n && !ret; j++) {
			struct region *from = &rs->r[j];
			if (from->rec_delta || !from->filled || from->target_end <= to->target_start ||
			    from->target_start >= to->target_end)
				continue;
			if (from->target_start == to->target_start && from->target_end == to->target_end &&
			    !overlaps_fresh(fresh, nr_fresh, to) && !overlaps_removed(rs, to)) {
				to->filled = from->filled;	/* the same region: all it knew holds */
				from->filled = NULL;
				continue;
			}
			ret = carry_filled(to, from, rs, fresh, nr_fresh, e);
		}
	}
	for (uint32_t j = 0; j < rs->n; j++)
		free(rs->r[j].filled);
	free(rs->r);
	free(rs->removed);
	*rs = out;
	return ret;
}
