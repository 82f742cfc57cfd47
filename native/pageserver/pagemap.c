/* pagemap.h: the page map of a tick, and moving it to another tick. */
#include <inttypes.h>
#include <stdlib.h>

#define LOG_PREFIX "ttd-pageserver: pagemap: "
#include "log.h"
#include "page.h"
#include "pagemap.h"

static int grow(struct pagemap *m, size_t need, struct err *e)
{
	if (need <= m->cap)
		return 0;
	size_t cap = m->cap ? m->cap : 4096;
	while (cap < need)
		cap *= 2;
	uint64_t *pfn = realloc(m->rec_pfn, cap * sizeof(*pfn));
	if (pfn)
		m->rec_pfn = pfn;
	store_ref *ref = pfn ? realloc(m->ref, cap * sizeof(*ref)) : NULL;
	if (!ref)
		return err_set(e, ERR_INTERNAL, "out of memory for the page map (%zu pages)", need);
	m->ref = ref;
	m->cap = cap;
	return 0;
}

/* store_map's emit: pages come in ascending order. */
static int append(void *ctx, uint64_t rec_addr, store_ref ref, struct err *e)
{
	struct pagemap *m = ctx;

	if (grow(m, m->n + 1, e))
		return -1;
	m->rec_pfn[m->n] = rec_addr / PAGE_SIZE;
	m->ref[m->n++] = ref;
	return 0;
}

int pagemap_load(struct pagemap *m, struct store *s, uint64_t tick, struct err *e)
{
	m->n = 0;
	m->tick = tick;
	if (store_map(s, tick, append, m, e)) {
		m->n = 0;
		return -1;
	}
	pr_debug("tick %" PRIu64 ": %zu pages with content", tick, m->n);
	return 0;
}

/* The index of the first page >= pfn. */
static size_t lower_bound(const struct pagemap *m, uint64_t pfn)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->rec_pfn[mid] < pfn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

store_ref pagemap_ref(const struct pagemap *m, uint64_t rec_addr)
{
	uint64_t pfn = rec_addr / PAGE_SIZE;
	size_t i = lower_bound(m, pfn);

	return i < m->n && m->rec_pfn[i] == pfn ? m->ref[i] : 0;
}

struct changes {
	struct pagemap *changed;	/* the changed pages with their ref at the new tick (0 too),
					 * or NULL */
	pagemap_differ_fn differ;
	void *ctx;
};

static int take_change(void *ctx, uint64_t rec_addr, store_ref ref_a, store_ref ref_b,
		       struct err *e)
{
	struct changes *c = ctx;

	if (ref_a == ref_b)
		return 0;	/* changed and changed back */
	if (c->differ && c->differ(c->ctx, rec_addr, e))
		return -1;
	if (!c->changed)
		return 0;
	if (grow(c->changed, c->changed->n + 1, e))
		return -1;
	c->changed->rec_pfn[c->changed->n] = rec_addr / PAGE_SIZE;
	c->changed->ref[c->changed->n++] = ref_b;
	return 0;
}

/* m with the changed pages merged in (both sorted), pages that became zeros dropped. */
static int merge(struct pagemap *m, const struct pagemap *changed, struct err *e)
{
	struct pagemap out = { .tick = m->tick };
	size_t i = 0, j = 0;

	if (grow(&out, m->n + changed->n, e))
		return -1;
	while (i < m->n || j < changed->n) {
		int take_changed = j < changed->n &&
				   (i == m->n || changed->rec_pfn[j] <= m->rec_pfn[i]);
		if (take_changed && i < m->n && changed->rec_pfn[j] == m->rec_pfn[i])
			i++;	/* replaced */
		const struct pagemap *from = take_changed ? changed : m;
		size_t k = take_changed ? j++ : i++;
		if (from->ref[k]) {
			out.rec_pfn[out.n] = from->rec_pfn[k];
			out.ref[out.n++] = from->ref[k];
		}
	}
	pagemap_free(m);
	*m = out;
	return 0;
}

int pagemap_differ(struct store *s, uint64_t tick_a, uint64_t tick_b, pagemap_differ_fn differ,
		   void *ctx, struct err *e)
{
	struct changes c = { NULL, differ, ctx };

	return tick_a == tick_b ? 0 : store_changes(s, tick_a, tick_b, take_change, &c, e);
}

int pagemap_set_tick(struct pagemap *m, struct store *s, uint64_t tick, pagemap_differ_fn differ,
		     void *ctx, struct err *e)
{
	struct pagemap changed = { 0 };
	struct changes c = { &changed, differ, ctx };
	int ret = 0;

	if (tick != m->tick && (store_changes(s, m->tick, tick, take_change, &c, e) ||
				merge(m, &changed, e)))
		ret = -1;
	if (ret == 0) {
		pr_debug("tick %" PRIu64 " -> %" PRIu64 ": %zu pages differ, %zu with content",
			 m->tick, tick, changed.n, m->n);
		m->tick = tick;
	}
	pagemap_free(&changed);
	return ret;
}

void pagemap_free(struct pagemap *m)
{
	free(m->rec_pfn);
	free(m->ref);
	m->rec_pfn = NULL;
	m->ref = NULL;
	m->n = m->cap = 0;
}
