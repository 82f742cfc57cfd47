/* A growing list of [start, end) page ranges of the process: the written set. */
#ifndef TTD_RANGES_H
#define TTD_RANGES_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct range_list {
	uint64_t (*r)[2];
	size_t n, cap;
	int failed;	/* out of memory: the list is incomplete */
};

/* Append the pair (a, b). */
void ranges_push(struct range_list *l, uint64_t a, uint64_t b);
/* Append [start, end), merged with the last range when adjacent. */
void ranges_add(struct range_list *l, uint64_t start, uint64_t end);
/* Sort and merge adjacent ranges. */
void ranges_normalize(struct range_list *l);
/* -1 with the error when an append failed (out of memory). */
int ranges_check(const struct range_list *l, struct err *e);
void ranges_free(struct range_list *l);

#endif
