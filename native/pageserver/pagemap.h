/*
 * The page map of a tick: for every recorded page with content at the tick, its
 * content reference (store.h; a page not in the map is zeros then) and, when
 * asked for, its digest (the key of the verified-page cache, pagecache.h, and what
 * the page is checked against) and codec: then a page is read by its data alone.
 * Loaded in one query (store_map) when the process is built, looked up per
 * fault, and moved to another tick by the pages that changed in between
 * (store_changes), not reloaded.
 *
 * Pages come in runs of nearby page numbers (a mapping's pages), so a lookup is
 * a binary search among the runs and an index into its slots; a gap of a few
 * pages inside a run is slots with reference 0 (zeros):
 *
 *   runs:  {first_pfn 0x100000, n 3, at 0}  {first_pfn 0x7ff000, n 2, at 3}
 *   ref:   17  0  4 | 9  12                  (0x100001 is zeros)
 */
#ifndef TTD_PAGEMAP_H
#define TTD_PAGEMAP_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "store.h"

struct pagemap_run {
	uint64_t first_pfn;	/* rec_addr / PAGE_SIZE */
	uint32_t n;		/* pages */
	uint32_t at;		/* index of its first slot */
};

struct pagemap {
	uint64_t tick;
	int with_digests;	/* known[] is there (pagemap_load_digests) */
	struct pagemap_run *runs;	/* ascending, disjoint */
	size_t nr_runs, cap_runs;
	store_ref *ref;		/* of each slot; 0: zeros */
	struct store_known *known;	/* of each slot (a digest all zero: not known) */
	size_t n, cap;		/* slots */
};

/* The map of tick from the store (without digests); on error m is empty. */
int pagemap_load(struct pagemap *m, struct store *s, uint64_t tick, struct err *e);

/* The digests and codecs of the map's pages, in a second query (three times the work of the
 * first: the map is of use before they come), calling meanwhile (if not NULL) every
 * few thousand pages. On error the map has none. */
int pagemap_load_digests(struct pagemap *m, struct store *s, void (*meanwhile)(void *ctx),
			 void *ctx, struct err *e);

/* The content of the page at rec_addr at the map's tick (0: zeros); with known not
 * NULL, what is known of it (NULL when its digest is not known). */
store_ref pagemap_ref(const struct pagemap *m, uint64_t rec_addr,
		      const struct store_known **known);

/* The pages whose content differs between two ticks, ascending, to differ (a page
 * that changed and changed back is left out). */
typedef int (*pagemap_differ_fn)(void *ctx, uint64_t rec_addr, struct err *e);
int pagemap_differ(struct store *s, uint64_t tick_a, uint64_t tick_b, pagemap_differ_fn differ,
		   void *ctx, struct err *e);

/*
 * Move the map to tick. Every page whose content differs between the two ticks is
 * passed to differ (ascending rec_addr), before the map changes; their digests are
 * not known afterwards. On error the map is as it was (differ may have seen some of
 * the pages).
 */
int pagemap_set_tick(struct pagemap *m, struct store *s, uint64_t tick, pagemap_differ_fn differ,
		     void *ctx, struct err *e);

void pagemap_free(struct pagemap *m);

#endif
