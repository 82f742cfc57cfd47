/*
 * The page map of a tick: for every recorded page with content at the tick, its
 * content reference (store.h; a page not in the map is zeros then). Loaded in
 * one query (store_map) when the process is built, looked up per fault (a
 * binary search instead of a query), and moved to another tick by the pages
 * that changed in between (store_changes), not reloaded.
 *
 *   rec_pfn: 0x100000 0x100001 0x100005 ...    (rec_addr / PAGE_SIZE, ascending)
 *   ref:     17       18       4         ...    (page_content ids)
 */
#ifndef TTD_PAGEMAP_H
#define TTD_PAGEMAP_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "store.h"

struct pagemap {
	uint64_t tick;
	uint64_t *rec_pfn;	/* sorted */
	store_ref *ref;		/* of each rec_pfn; never 0 */
	size_t n, cap;
};

/* The map of tick from the store; on error m is empty. */
int pagemap_load(struct pagemap *m, struct store *s, uint64_t tick, struct err *e);

/* The content of the page at rec_addr at the map's tick; 0: zeros. */
store_ref pagemap_ref(const struct pagemap *m, uint64_t rec_addr);

/* The pages whose content differs between two ticks, ascending, to differ (a page
 * that changed and changed back is left out). */
typedef int (*pagemap_differ_fn)(void *ctx, uint64_t rec_addr, struct err *e);
int pagemap_differ(struct store *s, uint64_t tick_a, uint64_t tick_b, pagemap_differ_fn differ,
		   void *ctx, struct err *e);

/*
 * Move the map to tick. Every page whose content differs between the two ticks is
 * passed to differ (ascending rec_addr), before the map changes. On error the map
 * is as it was (differ may have seen some of the pages).
 */
int pagemap_set_tick(struct pagemap *m, struct store *s, uint64_t tick, pagemap_differ_fn differ,
		     void *ctx, struct err *e);

void pagemap_free(struct pagemap *m);

#endif
