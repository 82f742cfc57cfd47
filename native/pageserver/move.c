/* move.h: moving the kept process to another tick. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define LOG_PREFIX "ttd-pageserver: move: "
#include "log.h"
#include "io.h"
#include "move.h"
#include "page.h"
#include "server.h"
#include "uffd_compat.h"

#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62)
#define PM_SWAP_TYPE 0x1fULL
#define SWP_PTE_MARKER 31	/* the swap type pagemap shows for a pte marker (5 bits) */

/* A page map entry holds data: present, or swapped out. A uffd-wp pte marker (what
 * write-protecting a page not there leaves: rearm()) shows as swapped but holds
 * nothing; writing it through /proc/PID/mem fails (EIO), and it faults as missing. */
static int holds_data(uint64_t ent)
{
	return (ent & PM_PRESENT) || ((ent & PM_SWAPPED) && (ent & PM_SWAP_TYPE) != SWP_PTE_MARKER);
}

/* Address ranges with a protection, sorted and disjoint. */
struct span {
	uint64_t start, end;
	uint32_t prot;
};

struct spans {
	struct span *s;
	size_t n, cap;
	int failed;	/* out of memory: incomplete */
};

/* Append, as its own span (one mapping of the process). */
static void spans_push(struct spans *l, uint64_t start, uint64_t end, uint32_t prot)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct span *more = realloc(l->s, cap * sizeof(*more));
		if (!more) {
			l->failed = 1;
			return;
		}
		l->s = more;
		l->cap = cap;
	}
	l->s[l->n++] = (struct span){ start, end, prot };
}

/* Append, merged with the last span when adjacent with the same protection. */
static void spans_add(struct spans *l, uint64_t start, uint64_t end, uint32_t prot)
{
	if (start >= end)
		return;
	if (l->n && l->s[l->n - 1].end == start && l->s[l->n - 1].prot == prot) {
		l->s[l->n - 1].end = end;
		return;
	}
	spans_push(l, start, end, prot);
}

static int spans_check(const struct spans *l, struct err *e)
{
	return l->failed ? err_set(e, ERR_INTERNAL, "out of memory comparing memory maps") : 0;
}

static uint32_t prot_of(const char *perms)
{
	return (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
	       (perms[2] == 'x' ? PROT_EXEC : 0);
}

/* The process's mappings but ttd-stub's image and [vsyscall], as /proc/PID/maps has them
 * (adjacent ones of one protection as one); each mapping apart in vmas when not NULL. */
static int read_actual(const struct target *t, struct spans *out, struct spans *vmas,
		       struct err *e)
{
	char path[64], perms[5];
	char *line = NULL;
	size_t cap = 0;
	uint64_t lo, hi;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", t->pid);
	f = fopen(path, "re");
	if (!f)
		return err_set(e, errno == ENOENT ? ERR_GONE : ERR_INTERNAL, "cannot read %s: %s",
			       path, strerror(errno));
	while (getline(&line, &cap, f) > 0) {
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s", &lo, &hi, perms) != 3 ||
		    lo >= TASK_SIZE_MAX || (lo >= t->image_lo && hi <= t->image_hi))
			continue;
		spans_add(out, lo, hi, prot_of(perms));
		if (vmas)
			spans_push(vmas, lo, hi, prot_of(perms));
	}
	free(line);
	fclose(f);
	return spans_check(out, e) || (vmas && spans_check(vmas, e)) ? -1 : 0;
}

/* What of the actual mappings is registered at its recorded address (cur, with the
 * actual protection), and what is not: the called code's (foreign). */
static void split_actual(const struct spans *actual, const struct regions *rs, struct spans *cur,
			 struct spans *foreign)
{
	uint32_t first = 0;

	for (size_t i = 0; i < actual->n; i++) {
		const struct span *a = &actual->s[i];
		uint64_t at = a->start;
		while (first < rs->n && rs->r[first].target_end <= a->start)
			first++;
		for (uint32_t j = first; j < rs->n && rs->r[j].target_start < a->end; j++) {
			const struct region *r = &rs->r[j];
			if (r->rec_delta)
				continue;
			uint64_t lo = r->target_start > at ? r->target_start : at;
			uint64_t hi = r->target_end < a->end ? r->target_end : a->end;
			if (lo >= hi)
				continue;
			spans_add(foreign, at, lo, a->prot);
			spans_add(cur, lo, hi, a->prot);
			at = hi;
		}
		spans_add(foreign, at, a->end, a->prot);
	}
}

struct ops {
	struct stub_op *op;
	uint32_t n, cap;
	int failed;
};

static void ops_add(struct ops *l, uint32_t kind, uint64_t start, uint64_t end, uint32_t prot)
{
	struct stub_op *last = l->n ? &l->op[l->n - 1] : NULL;

	if (last && last->kind == kind && last->prot == prot && last->end == start) {
		last->end = end;
		return;
	}
	if (l->n == l->cap) {
		uint32_t cap = l->cap ? 2 * l->cap : 64;
		struct stub_op *more = realloc(l->op, cap * sizeof(*more));
		if (!more) {
			l->failed = 1;
			return;
		}
		l->op = more;
		l->cap = cap;
	}
	l->op[l->n++] = (struct stub_op){ .kind = kind, .prot = prot, .start = start, .end = end };
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* The ops that turn the layout cur into b: ranges only in cur go, ranges only in b
 * come, ranges in both with another protection get b's. */
static void diff_layouts(const struct spans *cur, const struct stub_map *b, uint32_t nb,
			 struct ops *ops)
{
	size_t i = 0, j = 0;
	uint64_t x = 0;

	for (;;) {
		while (i < cur->n && cur->s[i].end <= x)
			i++;
		while (j < nb && b[j].rec_end <= x)
			j++;
		if (i == cur->n && j == nb)
			return;
		uint64_t next_c = i < cur->n ? cur->s[i].start : UINT64_MAX;
		uint64_t next_b = j < nb ? b[j].rec_start : UINT64_MAX;
		int in_c = next_c <= x, in_b = next_b <= x;
		if (!in_c && !in_b) {
			x = min64(next_c, next_b);
			continue;
		}
		uint64_t y = min64(in_c ? cur->s[i].end : next_c, in_b ? b[j].rec_end : next_b);
		if (in_c && !in_b)
			ops_add(ops, OP_UNMAP, x, y, 0);
		else if (!in_c && in_b)
			ops_add(ops, OP_MAP, x, y, b[j].prot);
		else if (cur->s[i].prot != b[j].prot)
			ops_add(ops, OP_PROTECT, x, y, b[j].prot);
		x = y;
	}
}

/* b's maps: page-aligned, sorted, disjoint, below the stub's image or above it. */
static int check_maps(const struct target *t, const struct stub_map *b, uint32_t nb,
		      struct err *e)
{
	for (uint32_t i = 0; i < nb; i++) {
		const struct stub_map *m = &b[i];
		if (m->rec_start >= m->rec_end || page_down(m->rec_start) != m->rec_start ||
		    page_down(m->rec_end) != m->rec_end || m->rec_end > TASK_SIZE_MAX ||
		    (i && m->rec_start < b[i - 1].rec_end) ||
		    (m->rec_start < t->image_hi && m->rec_end > t->image_lo))
			return err_set(e, ERR_INTERNAL, "MOVE: bad mapping 0x%" PRIx64 "-0x%" PRIx64
				       " (unaligned, unsorted, overlapping or over ttd-stub's image)",
				       m->rec_start, m->rec_end);
	}
	return 0;
}

static int mem_rw(struct target *t, struct err *e)
{
	char path[64];

	if (t->mem_rw_fd >= 0)
		return t->mem_rw_fd;
	snprintf(path, sizeof(path), "/proc/%d/mem", t->pid);
	t->mem_rw_fd = open(path, O_RDWR | O_CLOEXEC);
	if (t->mem_rw_fd < 0)
		err_set(e, ERR_INTERNAL, "cannot open %s for writing: %s", path, strerror(errno));
	return t->mem_rw_fd;
}

/* The ops and the break into the stub's struct stub_apply; failed -2 until it ran. */
static int write_apply(struct target *t, const struct ops *ops, uint64_t brk, struct err *e)
{
	struct stub_apply head = { .brk = brk, .nr_ops = ops->n, .failed = -2 };
	size_t ops_len = ops->n * sizeof(*ops->op);
	int fd = mem_rw(t, e);

	if (fd < 0)
		return -1;
	if (pwrite(fd, ops->op, ops_len, t->apply_args + offsetof(struct stub_apply, ops)) !=
	    (ssize_t)ops_len || pwrite(fd, &head, offsetof(struct stub_apply, ops), t->apply_args) !=
	    (ssize_t)offsetof(struct stub_apply, ops))
		return err_set(e, ERR_INTERNAL, "cannot write the move's changes into process %d: %s",
			       t->pid, strerror(errno));
	return 0;
}

static void forget_plan(struct move *m)
{
	free(m->maps);
	free(m->ops);
	m->maps = NULL;
	m->ops = NULL;
	m->nr_maps = m->nr_ops = 0;
	m->pending = 0;
}

int move_plan(struct server *s, uint64_t tick, struct stub_map *maps, uint32_t nr_maps,
	      uint64_t brk, int ran, uint64_t *fn, uint64_t *arg, struct err *e)
{
	struct target *t = &s->target;
	struct spans actual = { 0 }, cur = { 0 }, foreign = { 0 };
	struct ops ops = { 0 };
	struct move *m = &s->move;
	int ret = -1;

	forget_plan(m);
	if (!s->tracker->ops->register_wp)
		err_set(e, ERR_INTERNAL, "MOVE needs the wp-async tracker (this process has %s)",
			s->tracker->ops->name);
	else if (!t->apply_fn || !t->apply_args)
		err_set(e, ERR_INTERNAL, "ttd-stub has no ttd_stub_apply: run make -C native");
	else if (check_maps(t, maps, nr_maps, e) == 0 && read_actual(t, &actual, NULL, e) == 0) {
		split_actual(&actual, &s->pager.regions, &cur, &foreign);
		for (size_t i = 0; i < foreign.n; i++)
			ops_add(&ops, OP_UNMAP, foreign.s[i].start, foreign.s[i].end, 0);
		diff_layouts(&cur, maps, nr_maps, &ops);
		ret = spans_check(&cur, e) || spans_check(&foreign, e) ? -1 : 0;
	}
	if (ret == 0 && (ops.failed || ops.n > STUB_MAX_OPS))
		ret = err_set(e, ERR_INTERNAL, "moving to tick %" PRIu64 " changes %u ranges of the "
			      "memory map; at most %d can be", tick, ops.n, STUB_MAX_OPS);
	m->new_brk = brk;
	if (ran && sandbox_sees_brk(&s->sandbox) && s->sandbox.brk_calls == m->brk_calls)
		ran = 0;	/* it ran, but never called brk: the break is the one served */
	if (brk != m->brk)
		ran = 1;
	m->called = ret == 0 && (ops.n || ran);
	if (m->called)
		ret = write_apply(t, &ops, ran ? brk : 0, e);
	free(actual.s);
	free(cur.s);
	free(foreign.s);
	if (ret) {
		free(ops.op);
		free(maps);
		return -1;
	}
	*m = (struct move){ .brk = m->brk, .brk_calls = m->brk_calls, .pending = 1, .called = m->called, .tick = tick,
			    .new_brk = brk, .maps = maps, .nr_maps = nr_maps, .ops = ops.op,
			    .nr_ops = ops.n };
	*fn = m->called ? t->apply_fn : 0;
	*arg = m->called ? t->apply_args : 0;
	pr_debug("MOVE %" PRIu64 ": %u ops, brk 0x%" PRIx64 "%s", tick, ops.n, brk,
		 m->called ? ", call" : "");
	return 0;
}

/* What ttd_stub_apply() said: 0, or -1 with what failed. */
static int check_applied(struct server *s, struct err *e)
{
	struct target *t = &s->target;
	const struct move *m = &s->move;
	struct stub_apply head;

	if (pread(t->mem_fd, &head, offsetof(struct stub_apply, ops), t->apply_args) !=
	    (ssize_t)offsetof(struct stub_apply, ops))
		return err_set(e, ERR_INTERNAL, "cannot read the move's result in process %d: %s",
			       t->pid, strerror(errno));
	if (head.failed == -1)
		return 0;
	if (head.failed == -2)
		return err_set(e, ERR_INTERNAL, "moving to tick %" PRIu64 ": ttd_stub_apply was "
			       "not called", m->tick);
	if ((uint32_t)head.failed >= m->nr_ops)
		return err_set(e, ERR_INTERNAL, "moving to tick %" PRIu64 ": brk(0x%" PRIx64 ") "
			       "failed (the break stayed 0x%" PRIx64 ")", m->tick, m->new_brk,
			       head.old_brk);
	const struct stub_op *op = &m->ops[head.failed];
	static const char *const kinds[] = { "?", "munmap", "mmap", "mprotect" };
	return err_set(e, ERR_INTERNAL, "moving to tick %" PRIu64 ": %s of 0x%" PRIx64 "-0x%"
		       PRIx64 " failed: %s", m->tick, kinds[op->kind <= OP_PROTECT ? op->kind : 0],
		       op->start, op->end, strerror((int)head.err));
}

/* The memory map is the tick's (adjacent mappings with one protection as one); vmas:
 * the process's mappings, each apart. */
static int check_layout(struct server *s, struct spans *vmas, struct err *e)
{
	const struct move *m = &s->move;
	struct spans actual = { 0 }, want = { 0 };
	int ret = read_actual(&s->target, &actual, vmas, e);

	for (uint32_t i = 0; i < m->nr_maps; i++)
		spans_add(&want, m->maps[i].rec_start, m->maps[i].rec_end, m->maps[i].prot);
	if (ret == 0)
		ret = spans_check(&want, e);
	for (size_t i = 0; ret == 0 && i < (actual.n > want.n ? actual.n : want.n); i++) {
		const struct span *a = i < actual.n ? &actual.s[i] : NULL;
		const struct span *w = i < want.n ? &want.s[i] : NULL;
		if (!a || !w || a->start != w->start || a->end != w->end || a->prot != w->prot)
			ret = err_set(e, ERR_INTERNAL, "moving to tick %" PRIu64 ": the memory map "
				      "differs from the recorded one at 0x%" PRIx64, m->tick,
				      a ? a->start : w->start);
	}
	free(actual.s);
	free(want.s);
	return ret;
}

/* Register the ranges mapped anew with the userfaultfd, as the stub did its own. */
static int register_fresh(struct server *s, struct err *e)
{
	const struct move *m = &s->move;

	for (uint32_t i = 0; i < m->nr_ops; i++) {
		const struct stub_op *op = &m->ops[i];
		struct uffdio_register reg = {
			.range = { .start = op->start, .len = op->end - op->start },
			.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
		};
		if (op->kind == OP_MAP && ioctl(s->target.uffd, UFFDIO_REGISTER, &reg))
			return err_set(e, ERR_INTERNAL, "moving to tick %" PRIu64 ": UFFDIO_REGISTER "
				       "of 0x%" PRIx64 "-0x%" PRIx64 ": %s", m->tick, op->start,
				       op->end, strerror(errno));
	}
	return 0;
}

/* The ranges mapped anew, for regions_reshape(); the ranges dropped since the tick. */
static int fresh_and_removed(const struct move *m, const struct regions *rs,
			     struct target_range **fresh, size_t *nr_fresh, struct range_list *out,
			     struct err *e)
{
	*fresh = calloc(m->nr_ops + 1, sizeof(**fresh));
	*nr_fresh = 0;
	if (!*fresh)
		return err_set(e, ERR_INTERNAL, "out of memory moving the process");
	for (uint32_t i = 0; i < m->nr_ops; i++)
		if (m->ops[i].kind == OP_MAP)
			(*fresh)[(*nr_fresh)++] = (struct target_range){ m->ops[i].start, m->ops[i].end };
	for (size_t i = 0; i < rs->nr_removed; i++)
		ranges_push(out, rs->removed[i].lo, rs->removed[i].hi);
	return ranges_check(out, e);
}

static int cmp_pair(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* Sorted, overlapping ranges merged, cut to the regions. */
static void clip_to_regions(struct range_list *l, const struct regions *rs, struct range_list *out)
{
	size_t n = 0;
	uint32_t j = 0;

	if (l->n)
		qsort(l->r, l->n, sizeof(*l->r), cmp_pair);
	for (size_t i = 0; i < l->n; i++) {	/* merge in place */
		if (n && l->r[i][0] <= l->r[n - 1][1]) {
			if (l->r[i][1] > l->r[n - 1][1])
				l->r[n - 1][1] = l->r[i][1];
			continue;
		}
		l->r[n][0] = l->r[i][0];
		l->r[n++][1] = l->r[i][1];
	}
	for (size_t i = 0; i < n; i++) {
		while (j < rs->n && rs->r[j].target_end <= l->r[i][0])
			j++;
		for (uint32_t k = j; k < rs->n && rs->r[k].target_start < l->r[i][1]; k++) {
			uint64_t lo = l->r[i][0] > rs->r[k].target_start ? l->r[i][0] : rs->r[k].target_start;
			uint64_t hi = l->r[i][1] < rs->r[k].target_end ? l->r[i][1] : rs->r[k].target_end;
			if (lo < hi)
				ranges_add(out, lo, hi);
		}
	}
}

struct restored {
	uint64_t pages_written, pages_dropped;
};

/* [lo, hi) of r (at most MAX_FILL_PAGES): present pages get the tick's bytes, the
 * others are left to fault (not filled). */
static int restore_chunk(struct server *s, struct region *r, uint64_t lo, uint64_t hi,
			 struct restored *done, struct err *e)
{
	struct pager *p = &s->pager;
	uint64_t ents[MAX_FILL_PAGES];
	size_t npages = (hi - lo) / PAGE_SIZE;
	ssize_t got = pread(s->target.pagemap_fd, ents, npages * 8, (off_t)(lo / PAGE_SIZE * 8));
	uint32_t nr_zero;
	int fd = mem_rw(&s->target, e);

	if (fd < 0)
		return -1;
	if (got != (ssize_t)(npages * 8))
		return err_set(e, ERR_INTERNAL, "reading the page map of process %d at 0x%" PRIx64
			       ": %s", s->target.pid, lo, got < 0 ? strerror(errno) : "short read");
	for (size_t k = 0; k < npages;) {
		int present = holds_data(ents[k]);
		size_t m = k;
		while (m < npages && holds_data(ents[m]) == present)
			m++;
		uint64_t a = lo + k * PAGE_SIZE, b = lo + m * PAGE_SIZE;
		if (present) {
			if (fetch_verified(p->verifier, p->store, p->tick, a, b, p->buf, &nr_zero, e))
				return -1;
			if (pwrite(fd, p->buf, b - a, (off_t)a) != (ssize_t)(b - a))
				return err_set(e, ERR_INTERNAL, "writing tick %" PRIu64 "'s pages at 0x%"
					       PRIx64 " into process %d: %s", p->tick, a,
					       s->target.pid, strerror(errno));
			if (region_mark_filled(r, a, b, e))
				return -1;
			done->pages_written += m - k;
		} else {
			for (uint64_t q = a; q < b; q += PAGE_SIZE)
				region_mark_unfilled(r, q);
			done->pages_dropped += m - k;
		}
		k = m;
	}
	return 0;
}

/* Every page of the ranges (inside the regions) as the tick served has it. */
static int restore_pages(struct server *s, const struct range_list *d, struct restored *done,
			 struct err *e)
{
	for (size_t i = 0; i < d->n; i++) {
		for (uint64_t lo = d->r[i][0]; lo < d->r[i][1];) {
			struct region *r = region_find(&s->pager.regions, lo);
			uint64_t hi = lo + MAX_FILL_PAGES * PAGE_SIZE;
			if (hi > d->r[i][1])
				hi = d->r[i][1];
			if (r && hi > r->target_end)
				hi = r->target_end;
			if (r && restore_chunk(s, r, lo, hi, done, e))
				return -1;
			lo = hi;
		}
	}
	return 0;
}

/* Write-protect the ranges again (wp-async): the next writes alone count. */
static int rearm(struct server *s, const struct range_list *d, struct err *e)
{
	for (size_t i = 0; i < d->n; i++) {
		struct pm_scan_arg arg = {
			.size = sizeof(arg), .flags = PM_SCAN_WP_MATCHING,
			.start = d->r[i][0], .end = d->r[i][1],
			.category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN,
		};
		if (ioctl(s->target.pagemap_fd, PAGEMAP_SCAN, &arg) < 0)
			return err_set(e, errno == ESRCH ? ERR_GONE : ERR_INTERNAL, "PAGEMAP_SCAN"
				       "(PM_SCAN_WP_MATCHING) of process %d at 0x%" PRIx64 ": %s",
				       s->target.pid, d->r[i][0], strerror(errno));
	}
	return 0;
}

/* The pages to restore: written (tracker), differing between the ticks (the pager
 * moves to the new tick), and dropped since (removed): cut to the regions. */
static int moved_memory(struct server *s, struct range_list *dropped, struct restored *done,
			struct err *e)
{
	struct range_list all = { 0 }, d = { 0 };
	int ret = s->tracker->ops->written(s->tracker, &all, e);

	if (ret == 0)
		ret = pager_set_tick(&s->pager, s->move.tick, &all, e);
	for (size_t i = 0; ret == 0 && i < dropped->n; i++)
		ranges_push(&all, dropped->r[i][0], dropped->r[i][1]);
	if (ret == 0)
		ret = ranges_check(&all, e);
	if (ret == 0) {
		clip_to_regions(&all, &s->pager.regions, &d);
		ret = ranges_check(&d, e);
	}
	if (ret == 0)
		ret = restore_pages(s, &d, done, e);
	if (ret == 0)
		ret = rearm(s, &d, e);
	ranges_free(&all);
	ranges_free(&d);
	return ret;
}

/*
 * The tick's maps cut where the process's own mappings start or end: the tick's
 * recorded map may show as one what the process holds as two (a range mapped by
 * a move beside one mapped before: the kernel merges neither), and a fill must
 * not cross from one mapping into another (UFFDIO_COPY: ENOENT). Sorted; malloc'd.
 */
static struct stub_map *cut_maps(const struct move *m, const struct spans *vmas, uint32_t *n,
				 struct err *e)
{
	struct stub_map *out = malloc((m->nr_maps + vmas->n + 1) * sizeof(*out));
	size_t j = 0;

	*n = 0;
	if (!out) {
		err_set(e, ERR_INTERNAL, "out of memory moving the process");
		return NULL;
	}
	for (uint32_t i = 0; i < m->nr_maps; i++) {
		struct stub_map piece = m->maps[i];
		while (j < vmas->n && vmas->s[j].end <= piece.rec_start)
			j++;
		for (size_t k = j; k < vmas->n && vmas->s[k].end < piece.rec_end; k++) {
			if (vmas->s[k].end <= piece.rec_start || *n >= m->nr_maps + vmas->n)
				continue;
			out[*n] = piece;
			out[(*n)++].rec_end = vmas->s[k].end;
			piece.rec_start = vmas->s[k].end;
		}
		out[(*n)++] = piece;
	}
	return out;
}

int move_finish(struct server *s, char **json, struct err *e)
{
	struct move *m = &s->move;
	struct range_list dropped = { 0 };
	struct spans vmas = { 0 };
	struct stub_map *cut = NULL;
	uint32_t nr_cut = 0;
	struct target_range *fresh = NULL;
	struct restored done = { 0 };
	size_t nr_fresh = 0;
	uint64_t t0 = now_ns();
	int ret;

	if (!m->pending)
		return err_set(e, ERR_INTERNAL, "MOVED without MOVE");
	ret = m->called ? check_applied(s, e) : 0;
	if (ret == 0)
		ret = check_layout(s, &vmas, e);
	if (ret == 0 && !(cut = cut_maps(m, &vmas, &nr_cut, e)))
		ret = -1;
	if (ret == 0)
		ret = register_fresh(s, e);
	if (ret == 0)
		ret = fresh_and_removed(m, &s->pager.regions, &fresh, &nr_fresh, &dropped, e);
	if (ret == 0)
		ret = regions_reshape(&s->pager.regions, cut, nr_cut, fresh, nr_fresh, e);
	if (ret == 0)
		ret = moved_memory(s, &dropped, &done, e);
	m->brk_calls = s->sandbox.brk_calls;	/* the stub's own brk calls are the move's */
	if (ret == 0) {
		m->brk = m->new_brk;
		char calls[24] = "null";	/* brk calls are not seen */
		if (sandbox_sees_brk(&s->sandbox))
			snprintf(calls, sizeof(calls), "%" PRIu64, m->brk_calls);
		if (asprintf(json, "{\"tick\": %" PRIu64 ", \"ops\": %u, \"called\": %s, "
			     "\"pages_written\": %" PRIu64 ", \"pages_dropped\": %" PRIu64
			     ", \"brk_calls\": %s, \"server_ms\": %.3f}", m->tick, m->nr_ops,
			     m->called ? "true" : "false", done.pages_written, done.pages_dropped,
			     calls, (now_ns() - t0) / 1e6) < 0)
			*json = NULL;
	}
	free(fresh);
	free(cut);
	free(vmas.s);
	ranges_free(&dropped);
	forget_plan(m);
	return ret;
}
