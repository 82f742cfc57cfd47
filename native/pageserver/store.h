/*
 * The page store: where the recorded pages come from. Today a SQLite file
 * (store_sqlite.c: the recording itself, its page_version/page_content
 * tables, see docs/internals.md); a server database (PostgreSQL) plugs in as a
 * second implementation of struct store_ops, chosen by store_open().
 *
 *   store_open(location)          -> a store, or NULL with the error
 *   store_fetch(store, request)   -> the pages of [rec_lo, rec_hi) at a tick, decoded
 *                                    into the request's buffer, each with the digest it
 *                                    must have (checking it is verify.c's job)
 *   store_idle(store)             -> nothing asked for a while: release what a writer
 *                                    may wait for (SQLite: the read transaction)
 *   store_close(store)
 *
 * A store never installs anything and never sees the process: it reads.
 */
#ifndef TTD_STORE_H
#define TTD_STORE_H

#include <stdint.h>

#include "err.h"

struct store_request {
	uint64_t rec_lo, rec_hi;	/* page-aligned, in the recorded process; at most MAX_FILL_PAGES */
	uint64_t tick;
	uint8_t *dst;			/* rec_hi - rec_lo bytes: a page with no content at the tick
					 * (never stored, or zero then) is zeroed */
	/* Called for each page with content once it is decoded at dst + offset. */
	void (*stored)(void *ctx, uint32_t offset, const uint8_t *digest);
	void *ctx;
	uint32_t nr_stored;		/* out: pages with content */
};

struct store;

struct store_ops {
	/* 0; or -1 with ERR_CORRUPT ("page 0x... at tick T is corrupt (why)") or ERR_INTERNAL */
	int (*fetch)(struct store *s, struct store_request *req, struct err *e);
	void (*idle)(struct store *s);
	void (*close)(struct store *s);
};

struct store {
	const struct store_ops *ops;
	int holding;	/* something is held that idle() releases (the caller polls for idleness) */
};

struct store *store_open(const char *location, struct err *e);
struct store *store_sqlite_open(const char *path, struct err *e);

static inline int store_fetch(struct store *s, struct store_request *req, struct err *e)
{
	return s->ops->fetch(s, req, e);
}

static inline void store_idle(struct store *s)
{
	s->ops->idle(s);
}

static inline void store_close(struct store *s)
{
	if (s)
		s->ops->close(s);
}

#endif
