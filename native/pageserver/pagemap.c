/* pagemap.h: the page map of a tick, and moving it to another tick. */
#include <inttypes.h>
#include <stdlib.h>

#define LOG_PREFIX "ttd-pageserver: pagemap: "
#include "log.h"
#include "page.h"
#include "pagemap.h"

#define RUN_GAP_PAGES 16	/* a gap up to this long stays inside a run (slots of zeros) */

static int grow_slots(struct pagemap *m, size_t need, struct err *e)
{
	if (need <= m->cap)
		return 0;
	size_t cap = m->cap ? m->cap : 4096;
	while (cap < need)
		cap *= 2;
	store_ref *ref = realloc(m->ref, cap * sizeof(*ref));
	if (ref)
		m->ref = ref;
	if (ref && m->with_digests) {
		struct store_known *known = realloc(m->known, cap * sizeof(*known));
		if (!known)
			ref = NULL;
		else
			m->known = known;
	}
	if (!ref)
		return err_set(e, ERR_INTERNAL, "out of memory for the page map (%zu pages)", need);
	m->cap = cap;
	return 0;
}

static int grow_runs(struct pagemap *m, struct err *e)
{
	if (m->nr_runs < m->cap_runs)
		return 0;
	size_t cap = m->cap_runs ? 2 * m->cap_runs : 64;
	struct pagemap_run *runs = realloc(m->runs, cap * sizeof(*runs));
	if (!runs)
		return err_set(e, ERR_INTERNAL, "out of memory for the page map's runs");
	m->runs = runs;
	m->cap_runs = cap;
	return 0;
}

/* Append a page after every page the map has (ref 0: zeros, skipped). */
static int append(struct pagemap *m, uint64_t pfn, store_ref ref,
		  const struct store_known *known, struct err *e)
{
	struct pagemap_run *last = m->nr_runs ? &m->runs[m->nr_runs - 1] : NULL;
	uint64_t gap = last ? pfn - (last->first_pfn + last->n) : UINT64_MAX;

	if (!ref)
		return 0;
	if (gap > RUN_GAP_PAGES || last->n + gap + 1 > UINT32_MAX) {
		if (grow_runs(m, e))
			return -1;
		last = &m->runs[m->nr_runs++];
		*last = (struct pagemap_run){ .first_pfn = pfn, .at = m->n };
		gap = 0;
	}
	if (grow_slots(m, m->n + gap + 1, e))
		return -1;
	for (uint64_t i = 0; i <= gap; i++) {
		m->ref[m->n] = i == gap ? ref : 0;
		if (m->with_digests) {
			if (i == gap && known)
				m->known[m->n] = *known;
			else
				memset(&m->known[m->n], 0, sizeof(*m->known));
		}
		m->n++;
	}
	last->n += gap + 1;
	return 0;
}

/* store_map's emit: pages come in ascending order. */
static int take_page(void *ctx, uint64_t rec_addr, store_ref ref,
		     const struct store_known *known, struct err *e)
{
	return append(ctx, rec_addr / PAGE_SIZE, ref, known, e);
}

static void clear(struct pagemap *m)
{
	m->n = m->nr_runs = 0;
}

int pagemap_load(struct pagemap *m, struct store *s, uint64_t tick, struct err *e)
{
	clear(m);
	m->tick = tick;
	m->with_digests = 0;
	if (store_map(s, tick, 0, take_page, m, e)) {
		clear(m);
		return -1;
	}
	pr_debug("tick %" PRIu64 ": %zu slots in %zu runs", tick, m->n, m->nr_runs);
	return 0;
}

static long slot_of_pfn(const struct pagemap *m, uint64_t pfn);

struct digests {
	struct pagemap *m;
	void (*meanwhile)(void *ctx);
	void *ctx;
	uint32_t rows;
};

#define MEANWHILE_ROWS 128	/* about 50 us of the join between looks at wanted pages */

/* store_map's emit for the digests: into the slot of the page, when it is the same
 * content (it is: the same tick; a page the map lacks is left out). */
static int take_digest(void *ctx, uint64_t rec_addr, store_ref ref,
		       const struct store_known *known, struct err *e)
{
	struct digests *d = ctx;
	long i = slot_of_pfn(d->m, rec_addr / PAGE_SIZE);

	(void)e;
	if (i >= 0 && d->m->ref[i] == ref && known)
		d->m->known[i] = *known;
	if (d->meanwhile && ++d->rows % MEANWHILE_ROWS == 0)
		d->meanwhile(d->ctx);
	return 0;
}

int pagemap_load_digests(struct pagemap *m, struct store *s, void (*meanwhile)(void *ctx),
			 void *ctx, struct err *e)
{
	struct digests d = { m, meanwhile, ctx, 0 };

	free(m->known);
	m->known = calloc(m->cap ? m->cap : 1, sizeof(*m->known));	/* zeros: not known */
	if (!m->known)
		return err_set(e, ERR_INTERNAL, "out of memory for the page map's digests");
	if (store_map(s, m->tick, 1, take_digest, &d, e)) {
		free(m->known);
		m->known = NULL;
		return -1;
	}
	m->with_digests = 1;
	return 0;
}

/* The slot of pfn, or -1. */
static long slot_of_pfn(const struct pagemap *m, uint64_t pfn)
{
	size_t lo = 0, hi = m->nr_runs;

	while (lo < hi) {	/* the last run starting at or before pfn */
		size_t mid = lo + (hi - lo) / 2;
		if (m->runs[mid].first_pfn <= pfn)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -1;
	const struct pagemap_run *r = &m->runs[lo - 1];
	return pfn - r->first_pfn < r->n ? (long)(r->at + (pfn - r->first_pfn)) : -1;
}

static int digest_known(const uint8_t *digest)
{
	static const uint8_t none[PAGE_DIGEST_SIZE];

	return memcmp(digest, none, PAGE_DIGEST_SIZE) != 0;
}

store_ref pagemap_ref(const struct pagemap *m, uint64_t rec_addr,
		      const struct store_known **known)
{
	long i = slot_of_pfn(m, rec_addr / PAGE_SIZE);

	if (known)
		*known = i >= 0 && m->with_digests && digest_known(m->known[i].digest) ?
			 &m->known[i] : NULL;
	return i < 0 ? 0 : m->ref[i];
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
	struct pagemap *changed = c->changed;

	if (ref_a == ref_b)
		return 0;	/* changed and changed back */
	if (c->differ && c->differ(c->ctx, rec_addr, e))
		return -1;
	if (!changed)
		return 0;
	/* kept as runs of one page each: zeros too (they replace a page) */
	if (grow_runs(changed, e) || grow_slots(changed, changed->n + 1, e))
		return -1;
	changed->runs[changed->nr_runs++] = (struct pagemap_run){ rec_addr / PAGE_SIZE, 1,
								  changed->n };
	changed->ref[changed->n++] = ref_b;
	return 0;
}

/* m with the changed pages in their place (their digests not known), rebuilt. */
static int merge(struct pagemap *m, const struct pagemap *changed, struct err *e)
{
	struct pagemap out = { .tick = m->tick, .with_digests = m->with_digests };
	size_t j = 0;

	for (size_t i = 0; i < m->nr_runs; i++) {
		const struct pagemap_run *r = &m->runs[i];
		for (uint64_t k = 0; k < r->n; k++) {
			uint64_t pfn = r->first_pfn + k;
			for (; j < changed->nr_runs && changed->runs[j].first_pfn < pfn; j++)
				if (append(&out, changed->runs[j].first_pfn, changed->ref[j], NULL, e))
					goto fail;
			int replaced = j < changed->nr_runs && changed->runs[j].first_pfn == pfn;
			store_ref ref = replaced ? changed->ref[j++] : m->ref[r->at + k];
			const struct store_known *known = replaced || !m->with_digests ? NULL :
							  &m->known[r->at + k];
			if (append(&out, pfn, ref, known, e))
				goto fail;
		}
	}
	for (; j < changed->nr_runs; j++)
		if (append(&out, changed->runs[j].first_pfn, changed->ref[j], NULL, e))
			goto fail;
	pagemap_free(m);
	*m = out;
	return 0;
fail:
	pagemap_free(&out);
	return -1;
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
		pr_debug("tick %" PRIu64 " -> %" PRIu64 ": %zu pages differ, %zu slots",
			 m->tick, tick, changed.nr_runs, m->n);
		m->tick = tick;
	}
	pagemap_free(&changed);
	return ret;
}

void pagemap_free(struct pagemap *m)
{
	free(m->runs);
	free(m->ref);
	free(m->known);
	m->runs = NULL;
	m->ref = NULL;
	m->known = NULL;
	m->n = m->cap = m->nr_runs = m->cap_runs = 0;
}
