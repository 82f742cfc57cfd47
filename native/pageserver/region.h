/*
 * The registered ranges of the process, and what the page server knows of them.
 *
 * A region starts out as a recorded mapping at its recorded address; mremap may
 * move it, so its pages' contents are looked up at target_addr + rec_delta (the
 * address they had in the recorded process). Regions are sorted and disjoint.
 * Ranges the process dropped since the tick (madvise MADV_DONTNEED/REMOVE:
 * UFFD_EVENT_REMOVE) read as zeros from then on: `removed` lists them.
 */
#ifndef TTD_REGION_H
#define TTD_REGION_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "layout.h"

struct region {
	uint64_t target_start, target_end;
	int64_t rec_delta;	/* recorded address = target address + rec_delta */
	uint8_t *filled;	/* one bit per page, allocated on first fill; NULL: unknown */
	uint32_t *slot;		/* the diff tracker's baselines per page (tracker_diff.c); a
				 * piece cut from a region points into the same array */
};

struct target_range {
	uint64_t lo, hi;
};

struct regions {
	struct region *r;
	uint32_t n;
	struct target_range *removed;
	size_t nr_removed;
};

/* The regions of the recorded mappings marked register_uffd. */
int regions_init(struct regions *rs, const struct stub_map *maps, uint32_t nr_maps, struct err *e);

struct region *region_find(struct regions *rs, uint64_t target_addr);
int region_page_filled(const struct region *r, uint64_t target_addr);
int region_mark_filled(struct region *r, uint64_t lo, uint64_t hi, struct err *e);
/* The page at target_addr of r is not filled any more (its content at the tick changed). */
void region_mark_unfilled(struct region *r, uint64_t target_addr);

/* The process moved [from, from + len) to `to` (UFFD_EVENT_REMAP). */
int regions_remap(struct regions *rs, uint64_t from, uint64_t to, uint64_t len, struct err *e);

/* The process unmapped [lo, hi) (UFFD_EVENT_UNMAP). */
int regions_unmap(struct regions *rs, uint64_t lo, uint64_t hi, struct err *e);

/*
 * The process was moved to another tick (move.c): the regions become the
 * registered mappings of maps, at their recorded addresses. A page keeps its
 * "filled" bit from a region at its recorded address that held it, unless it lies
 * in one of the sorted ranges of `fresh` (mapped anew) or was dropped (the removed
 * list, emptied here: its pages are served from the recording again).
 */
int regions_reshape(struct regions *rs, const struct stub_map *maps, uint32_t nr_maps,
		    const struct target_range *fresh, size_t nr_fresh, struct err *e);

/* The process dropped [lo, hi) (UFFD_EVENT_REMOVE); and whether a page is in such a range. */
int regions_note_removed(struct regions *rs, uint64_t lo, uint64_t hi, struct err *e);
int regions_page_removed(const struct regions *rs, uint64_t target_addr);

#endif
