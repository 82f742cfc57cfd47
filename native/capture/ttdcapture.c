/*
 * ttdcapture: an SQLite loadable extension, the bulk path of snapshotdb/capture/bulk_store.py.
 * The writer loads it into its own connection and, inside a snapshot's transaction, runs
 *
 *   SELECT ttd_store_pages(MEM_FD, RUNS, PREV, TICK)
 *
 *   MEM_FD  an open /proc/PID/mem of the stopped process
 *   RUNS    blob of u64 pairs: page-aligned [start, end) runs of its memory, in order
 *   PREV    blob of i64, one per page of the runs: the content id the page has at the
 *           previous tick (0: zeros)
 *   TICK    the snapshot's tick
 *
 * and for every page of the runs, as SnapshotWriter decides for any page:
 *
 *   unreadable, or 4096 zeros   id 0
 *   any other bytes             the id of the page_content row of its digest (sha256 of the
 *                               4096 bytes), inserted when there is none: data = one zstd
 *                               frame when smaller, codec 'zstd', else the bytes, codec
 *                               'raw' (docs/internals.md; encoder.c)
 *   id != PREV's                a page_version row (address, TICK, id or NULL)
 *
 * and a page_digest row (digest, id) of every content it inserted (or found in page_content
 * and not in page_digest), in digest order at the end of the call (store.c).
 *
 * New contents get their ids in address order, as if each page were inserted in turn.
 * It returns a blob: u64 contents inserted, u64 versions written, then the i64 id of every
 * page. Errors are SQL errors (SQLITE_FULL for a full disk); the caller's transaction
 * decides. The function may only be called directly (SQLITE_DIRECTONLY), never from a
 * trigger or view of a database.
 *
 * Rooms: encoder.c (worker threads read and encode batches of pages), store.c (the calling
 * thread stores them in order: the critical path), rows.c (the ttd_rows table the store
 * inserts from), content_map.c (the contents one call stored), file_space.c (disk space
 * allocated ahead of SQLite's writes).
 */
#include <stdlib.h>

#include <sqlite3ext.h>

#include "encoder.h"
#include "rows.h"
#include "store.h"

SQLITE_EXTENSION_INIT1

/* Store every batch the encoders make; an SQLite result code. */
static int store_all(struct encoders *enc, struct store *st, const int64_t *prev, int64_t *ids)
{
	uint64_t page = 0;
	struct batch *b;

	while ((b = encoders_next(enc)) != NULL) {
		int rc = store_batch(st, b, prev + page, ids + page);

		page += b->npages;
		encoders_done(enc, b);
		if (rc != SQLITE_OK)
			return rc;
	}
	return SQLITE_OK;
}

/* The page count of RUNS, or -1 when a run is not page-aligned. */
static int64_t count_pages(const struct ttdcap_run *runs, uint64_t nruns)
{
	uint64_t npages = 0;

	for (uint64_t r = 0; r < nruns; r++) {
		if (runs[r].start % PAGE_SIZE || runs[r].end % PAGE_SIZE || runs[r].end <= runs[r].start)
			return -1;
		npages += (runs[r].end - runs[r].start) / PAGE_SIZE;
	}
	return (int64_t)npages;
}

/* ttd_store_pages(MEM_FD, RUNS, PREV, TICK): see the head of this file. */
static void store_pages(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	sqlite3 *db = sqlite3_context_db_handle(ctx);
	const struct ttdcap_run *runs = sqlite3_value_blob(argv[1]);
	uint64_t nruns = (uint64_t)sqlite3_value_bytes(argv[1]) / sizeof(struct ttdcap_run);
	const int64_t *prev = sqlite3_value_blob(argv[2]);
	int64_t npages = count_pages(runs, nruns);
	struct encoders enc = { 0 };
	struct store *st = NULL;
	int64_t *out = NULL;
	int rc = SQLITE_NOMEM;

	if (npages < 0) {
		sqlite3_result_error(ctx, "ttd_store_pages: a run is not page-aligned", -1);
		return;
	}
	if ((uint64_t)sqlite3_value_bytes(argv[2]) != (uint64_t)npages * sizeof(int64_t)) {
		sqlite3_result_error(ctx, "ttd_store_pages: PREV does not have one id per page", -1);
		return;
	}
	st = malloc(sizeof(*st));
	out = malloc(((size_t)npages + 2) * sizeof(int64_t));
	if (st && out) {
		rc = store_open(st, db, sqlite3_value_int64(argv[3]), (uint64_t)npages);
		if (rc == SQLITE_OK)
			rc = encoders_start(&enc, sqlite3_value_int(argv[0]), runs, nruns) == 0 ?
				     store_all(&enc, st, prev, out + 2) :
				     SQLITE_NOMEM;
		if (rc == SQLITE_OK)
			rc = store_finish(st);
		encoders_stop(&enc);
		out[0] = (int64_t)st->contents_inserted;
		out[1] = (int64_t)st->versions_written;
		store_close(st);
	}
	free(st);
	if (rc == SQLITE_OK) {
		sqlite3_result_blob64(ctx, out, ((size_t)npages + 2) * sizeof(int64_t), free);
		return;
	}
	free(out);
	if (rc == SQLITE_NOMEM) {
		sqlite3_result_error_nomem(ctx);
	} else {
		/* an error of ours (SQLITE_CORRUPT: a content neither inserted nor found) has no
		 * message on the connection */
		sqlite3_result_error(ctx, sqlite3_errcode(db) == rc ? sqlite3_errmsg(db) :
								       sqlite3_errstr(rc),
				     -1);
		sqlite3_result_error_code(ctx, rc);
	}
}

int sqlite3_ttdcapture_init(sqlite3 *db, char **errmsg, const sqlite3_api_routines *api)
{
	SQLITE_EXTENSION_INIT2(api);
	int rc = rows_register(db);

	if (rc != SQLITE_OK)
		return rc;
	return sqlite3_create_function(db, "ttd_store_pages", 4, SQLITE_UTF8 | SQLITE_DIRECTONLY,
				       NULL, store_pages, NULL, NULL);
}
