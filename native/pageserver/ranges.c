/* ranges.h */
#include <stdlib.h>
#include <string.h>

#include "ranges.h"

void ranges_push(struct range_list *l, uint64_t a, uint64_t b)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 256;
		void *more = realloc(l->r, cap * sizeof(*l->r));
		if (!more) {
			l->failed = 1;
			return;
		}
		l->r = more;
		l->cap = cap;
	}
	l->r[l->n][0] = a;
	l->r[l->n][1] = b;
	l->n++;
}

void ranges_add(struct range_list *l, uint64_t start, uint64_t end)
{
	if (l->n && l->r[l->n - 1][1] == start)
		l->r[l->n - 1][1] = end;
	else
		ranges_push(l, start, end);
}

static int cmp_range(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return x[0] < y[0] ? -1 : x[0] > y[0];
}

void ranges_normalize(struct range_list *l)
{
	size_t n = 0;

	if (!l->n)
		return;
	qsort(l->r, l->n, sizeof(*l->r), cmp_range);
	for (size_t i = 0; i < l->n; i++) {
		if (n && l->r[n - 1][1] == l->r[i][0])
			l->r[n - 1][1] = l->r[i][1];
		else if (n++ != i)
			memcpy(l->r[n - 1], l->r[i], sizeof(*l->r));
	}
	l->n = n;
}

int ranges_check(const struct range_list *l, struct err *e)
{
	return l->failed ? err_set(e, ERR_INTERNAL, "out of memory listing written pages") : 0;
}

void ranges_free(struct range_list *l)
{
	free(l->r);
	memset(l, 0, sizeof(*l));
}
