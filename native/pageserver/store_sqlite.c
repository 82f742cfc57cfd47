/*
 * store.h on a SQLite recording: the page server reads the recording file itself.
 *
 * "page at (A, T)" is the newest page_version of A with first_tick <= T; its
 * content row holds codec, data and digest (NULL content: zero at T). One
 * range query serves a whole fetch: every version of every page in the range
 * up to the tick, newest first per address (docs/internals.md). The page map
 * of a tick is one query through the (address, first_tick) index; a content by
 * reference is its page_content row id (unique per digest: equal ids, equal
 * contents). A version whose content row is missing is a corrupt page.
 *
 * One read transaction per burst of fetches instead of one per query: each
 * transaction costs a lock, an unlock and a header check (fcntl, fstat,
 * pread), which was a third of a fault. store_idle() ends it (the serve loop
 * calls it once no fault has come for a while), so a writer appending to the
 * recording waits at most that long after a burst.
 *
 * A page whose codec and digest the caller has from the page map (store_data) is
 * read through a kept blob handle on page_content.data, moved to the row with
 * sqlite3_blob_reopen: 0.8 us a random row in a 256 MiB recording against 1.2
 * through the content statement (the statement's step, three columns; a seek
 * either way). The handle is a read of the current transaction: closed when the
 * transaction ends (store_idle), opened again by the next read. The recording is
 * read-only to us, so nothing we do moves the row under the handle; a write on
 * this connection would make it SQLITE_ABORT, and any failure (that, a missing
 * row, a NULL or oversized data, bytes that do not decode) closes it and leaves
 * the page to the content statement, which says what is wrong.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <sqlite3.h>
#include <zstd.h>

#define LOG_PREFIX "ttd-pageserver: store: "
#include "log.h"
#include "codec.h"
#include "page.h"
#include "store.h"

static const char RANGE_SQL[] =
	"SELECT v.address, c.codec, c.data, c.digest, v.content_id FROM page_version v "
	"LEFT JOIN page_content c ON c.id = v.content_id "
	"WHERE v.address >= ?1 AND v.address < ?2 AND v.first_tick <= ?3 "
	"ORDER BY v.address DESC, v.first_tick DESC";

/* Every version up to the tick through the (address, first_tick) index: the last one
 * of each address is its version at the tick. */
static const char MAP_SQL[] =
	"SELECT address, content_id FROM page_version WHERE first_tick <= ?1 "
	"ORDER BY address, first_tick";
/* With each content's digest, codec and check (page_content.xxh3: XXH3-128 of the page
 * then its digest, snapshotdb/pages.py); a recording made before the column existed has
 * NULL in its place and its pages are checked by sha256 alone. */
static const char MAP_DIGESTS_SQL[] =
	"SELECT v.address, v.content_id, c.digest, c.codec, c.xxh3 FROM page_version v "
	"LEFT JOIN page_content c ON c.id = v.content_id WHERE v.first_tick <= ?1 "
	"ORDER BY v.address, v.first_tick";
static const char MAP_DIGESTS_NO_CHECK_SQL[] =
	"SELECT v.address, v.content_id, c.digest, c.codec, NULL FROM page_version v "
	"LEFT JOIN page_content c ON c.id = v.content_id WHERE v.first_tick <= ?1 "
	"ORDER BY v.address, v.first_tick";

/* The addresses with a version in (?3, ?4] (the first_tick index), with their
 * content at ?1 and at ?2 (the (address, first_tick) index; NULL: zeros). */
static const char CHANGES_SQL[] =
	"SELECT a.address, "
	"(SELECT content_id FROM page_version WHERE address = a.address AND first_tick <= ?1 "
	" ORDER BY first_tick DESC LIMIT 1), "
	"(SELECT content_id FROM page_version WHERE address = a.address AND first_tick <= ?2 "
	" ORDER BY first_tick DESC LIMIT 1) "
	"FROM (SELECT DISTINCT address FROM page_version WHERE first_tick > ?3 AND first_tick <= ?4) a "
	"ORDER BY a.address";

static const char CONTENT_SQL[] = "SELECT codec, data, digest FROM page_content WHERE id = ?1";

struct store_sqlite {
	struct store base;
	char *path;
	sqlite3 *db;
	sqlite3_stmt *range_stmt, *content_stmt;
	sqlite3_blob *data;	/* on page_content.data inside the read transaction, or NULL */
	const char *map_digests_sql;	/* with page_content.xxh3 when the recording has it */
	ZSTD_DCtx *dctx;
};

static int db_error(struct store_sqlite *s, struct err *e)
{
	return err_set(e, ERR_INTERNAL, "cannot read the recording '%s': %s", s->path,
		       sqlite3_errmsg(s->db));
}

static int begin_read(struct store_sqlite *s, struct err *e)
{
	if (s->base.holding)
		return 0;
	if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return db_error(s, e);
	s->base.holding = 1;
	return 0;
}

static void close_data(struct store_sqlite *s)
{
	sqlite3_blob_close(s->data);
	s->data = NULL;
}

static void sqlite_idle(struct store *base)
{
	struct store_sqlite *s = (struct store_sqlite *)base;

	if (!s->base.holding)
		return;
	close_data(s);	/* its statement would keep the transaction open */
	sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	s->base.holding = 0;
}

static int corrupt(struct err *e, uint64_t rec_addr, uint64_t tick, const char *why)
{
	return err_set(e, ERR_CORRUPT, "page %#" PRIx64 " at tick %" PRIu64 " is corrupt (%s)",
		       rec_addr, tick, why);
}

/*
 * A content row's columns from `col` on (codec, data, digest): its page decoded into
 * dst and its digest; -1 when it is corrupt. A NULL codec is a content row that is
 * missing (the LEFT JOIN found none for the version's content_id).
 */
static int take_content(struct store_sqlite *s, sqlite3_stmt *st, int col, uint64_t rec_addr,
			uint64_t tick, uint8_t *dst, const uint8_t **digest, struct err *e)
{
	const char *codec = (const char *)sqlite3_column_text(st, col);
	int digest_len = sqlite3_column_bytes(st, col + 2);
	char why[160];

	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return corrupt(e, rec_addr, tick, "its content row is missing");
	if (page_decode(s->dctx, codec, sqlite3_column_blob(st, col + 1),
			sqlite3_column_bytes(st, col + 1), dst, why, sizeof(why)))
		return corrupt(e, rec_addr, tick, why);
	if (digest_len != PAGE_DIGEST_SIZE) {
		snprintf(why, sizeof(why), "a digest of %d bytes", digest_len);
		return corrupt(e, rec_addr, tick, why);
	}
	*digest = sqlite3_column_blob(st, col + 2);
	return 0;
}

/* One row of the range query: decode its page into place; -1 when it is corrupt. */
static int take_row(struct store_sqlite *s, struct store_request *req, sqlite3_stmt *st,
		    uint64_t rec_addr, struct err *e)
{
	uint32_t offset = rec_addr - req->rec_lo;
	const uint8_t *digest;

	if (take_content(s, st, 1, rec_addr, req->tick, req->dst + offset, &digest, e))
		return -1;
	req->stored(req->ctx, offset, digest);
	req->nr_stored++;
	return 0;
}

static int unaligned(struct err *e, uint64_t rec_addr)
{
	return err_set(e, ERR_CORRUPT, "page version at unaligned address %#" PRIx64
		       " in the recording", rec_addr);
}

static int sqlite_fetch(struct store *base, struct store_request *req, struct err *e)
{
	struct store_sqlite *s = (struct store_sqlite *)base;
	sqlite3_stmt *st = s->range_stmt;
	uint32_t npages = (req->rec_hi - req->rec_lo) / PAGE_SIZE;
	uint64_t has_data[MAX_FILL_PAGES / 64] = { 0 };
	uint64_t last = UINT64_MAX;
	int rc, ret = 0;

	req->nr_stored = 0;
	if (begin_read(s, e))
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)req->rec_lo);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)req->rec_hi);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)req->tick);
	while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t rec_addr = (uint64_t)sqlite3_column_int64(st, 0);
		if (rec_addr == last)
			continue;	/* an older version of the same page */
		last = rec_addr;
		if (rec_addr & (PAGE_SIZE - 1)) {
			ret = unaligned(e, rec_addr);
			break;
		}
		if (sqlite3_column_type(st, 4) == SQLITE_NULL)
			continue;	/* zero at this tick */
		ret = take_row(s, req, st, rec_addr, e);
		uint32_t k = (rec_addr - req->rec_lo) / PAGE_SIZE;
		has_data[k / 64] |= 1ULL << (k % 64);
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = db_error(s, e);
	sqlite3_reset(st);
	for (uint32_t k = 0; ret == 0 && k < npages; k++)	/* never stored, or zero at this tick */
		if (!(has_data[k / 64] & (1ULL << (k % 64))))
			memset(req->dst + k * PAGE_SIZE, 0, PAGE_SIZE);
	return ret;
}

/* A one-off statement (map, changes: once per process or per move) bound to ticks. */
static sqlite3_stmt *prepare_ticks(struct store_sqlite *s, const char *sql, const uint64_t *ticks,
				   int nr_ticks, struct err *e)
{
	sqlite3_stmt *st = NULL;

	if (begin_read(s, e))
		return NULL;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		db_error(s, e);
		return NULL;
	}
	for (int i = 0; i < nr_ticks; i++)
		sqlite3_bind_int64(st, i + 1, (sqlite3_int64)ticks[i]);
	return st;
}

/* The end of a one-off statement's rows: 0, or -1 with the error. */
static int finish(struct store_sqlite *s, sqlite3_stmt *st, int rc, int ret, struct err *e)
{
	if (ret == 0 && rc != SQLITE_DONE)
		ret = db_error(s, e);
	sqlite3_finalize(st);
	return ret;
}

/* A map row's digest and codec into known: NULL unless asked for and the digest is 32
 * bytes (a bad one is found when the page is read). */
static const struct store_known *row_known(sqlite3_stmt *st, int digests,
					   struct store_known *known)
{
	if (!digests || sqlite3_column_bytes(st, 2) != PAGE_DIGEST_SIZE)
		return NULL;
	memcpy(known->digest, sqlite3_column_blob(st, 2), PAGE_DIGEST_SIZE);
	known->codec = page_codec_of((const char *)sqlite3_column_text(st, 3));
	known->has_check = sqlite3_column_bytes(st, 4) == PAGE_CHECK_SIZE;
	if (known->has_check)
		memcpy(known->check, sqlite3_column_blob(st, 4), PAGE_CHECK_SIZE);
	return known;
}

static int sqlite_map(struct store *base, uint64_t tick, int digests, store_map_fn emit,
		      void *ctx, struct err *e)
{
	struct store_sqlite *s = (struct store_sqlite *)base;
	sqlite3_stmt *st = prepare_ticks(s, digests ? s->map_digests_sql : MAP_SQL, &tick, 1, e);
	uint64_t last = UINT64_MAX;
	struct store_known known;
	const struct store_known *has_known = NULL;
	store_ref ref = 0;
	int rc, ret = 0;

	if (!st)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t rec_addr = (uint64_t)sqlite3_column_int64(st, 0);
		if (rec_addr & (PAGE_SIZE - 1)) {
			ret = unaligned(e, rec_addr);
			break;
		}
		if (rec_addr != last && last != UINT64_MAX && ref &&
		    (ret = emit(ctx, last, ref, has_known, e)))
			break;
		last = rec_addr;	/* the last version of an address is its version at tick */
		ref = (store_ref)sqlite3_column_int64(st, 1);	/* NULL: 0, zeros */
		has_known = row_known(st, digests, &known);
	}
	if (ret == 0 && rc == SQLITE_DONE && last != UINT64_MAX && ref)
		ret = emit(ctx, last, ref, has_known, e);
	return finish(s, st, rc, ret, e);
}

static int sqlite_changes(struct store *base, uint64_t tick_a, uint64_t tick_b,
			  store_change_fn emit, void *ctx, struct err *e)
{
	struct store_sqlite *s = (struct store_sqlite *)base;
	uint64_t ticks[4] = { tick_a, tick_b, tick_a < tick_b ? tick_a : tick_b,
			      tick_a < tick_b ? tick_b : tick_a };
	sqlite3_stmt *st = prepare_ticks(s, CHANGES_SQL, ticks, 4, e);
	int rc, ret = 0;

	if (!st)
		return -1;
	while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t rec_addr = (uint64_t)sqlite3_column_int64(st, 0);
		if (rec_addr & (PAGE_SIZE - 1))
			ret = unaligned(e, rec_addr);
		else
			ret = emit(ctx, rec_addr, (store_ref)sqlite3_column_int64(st, 1),
				   (store_ref)sqlite3_column_int64(st, 2), e);
	}
	return finish(s, st, rc, ret, e);
}

static int sqlite_content(struct store *base, store_ref ref, uint64_t rec_addr, uint64_t tick,
			  uint8_t *dst, uint8_t digest[PAGE_DIGEST_SIZE], struct err *e)
{
	struct store_sqlite *s = (struct store_sqlite *)base;
	sqlite3_stmt *st = s->content_stmt;
	const uint8_t *stored_digest;
	int rc, ret;

	if (begin_read(s, e))
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)ref);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		ret = take_content(s, st, 0, rec_addr, tick, dst, &stored_digest, e);
		if (ret == 0)
			memcpy(digest, stored_digest, PAGE_DIGEST_SIZE);
	} else if (rc == SQLITE_DONE) {
		ret = corrupt(e, rec_addr, tick, "its content row is missing");
	} else {
		ret = db_error(s, e);
	}
	sqlite3_reset(st);
	return ret;
}

/* The data column of content ref through the kept handle (the file's header says why),
 * decoded: 0, or -1 for the content statement to read the row. */
static int sqlite_data(struct store *base, store_ref ref, int codec, uint8_t *dst)
{
	struct store_sqlite *s = (struct store_sqlite *)base;
	uint8_t packed[2 * PAGE_SIZE];	/* a zstd frame is smaller than its page */
	char why[160];
	struct err e;
	int n, raw;

	if (codec == CODEC_UNKNOWN || begin_read(s, &e))
		return -1;
	if (s->data ? sqlite3_blob_reopen(s->data, (sqlite3_int64)ref) != SQLITE_OK :
		      sqlite3_blob_open(s->db, "main", "page_content", "data", (sqlite3_int64)ref, 0,
					&s->data) != SQLITE_OK) {
		close_data(s);
		return -1;
	}
	n = sqlite3_blob_bytes(s->data);
	raw = codec == CODEC_RAW && n == PAGE_SIZE;	/* straight into place */
	if (n <= 0 || n > (int)sizeof(packed) ||
	    sqlite3_blob_read(s->data, raw ? dst : packed, n, 0) != SQLITE_OK) {
		close_data(s);
		return -1;
	}
	return raw ? 0 : page_decode_as(s->dctx, codec, packed, n, dst, why, sizeof(why));
}

static void sqlite_close(struct store *base)
{
	struct store_sqlite *s = (struct store_sqlite *)base;

	sqlite_idle(base);
	close_data(s);
	sqlite3_finalize(s->range_stmt);
	sqlite3_finalize(s->content_stmt);
	sqlite3_close(s->db);
	ZSTD_freeDCtx(s->dctx);
	free(s->path);
	free(s);
}

static const struct store_ops sqlite_ops = {
	.fetch = sqlite_fetch,
	.map = sqlite_map,
	.changes = sqlite_changes,
	.content = sqlite_content,
	.data = sqlite_data,
	.idle = sqlite_idle,
	.close = sqlite_close,
};

static int has_check_column(sqlite3 *db)
{
	return sqlite3_table_column_metadata(db, "main", "page_content", "xxh3", NULL, NULL, NULL,
					     NULL, NULL) == SQLITE_OK;
}

struct store *store_sqlite_open(const char *path, struct err *e)
{
	struct store_sqlite *s = calloc(1, sizeof(*s));
	int rc;

	if (!s || !(s->path = strdup(path)) || !(s->dctx = ZSTD_createDCtx())) {
		err_set(e, ERR_INTERNAL, "out of memory opening the recording '%s'", path);
		goto fail;
	}
	s->base.ops = &sqlite_ops;
	s->base.location = s->path;
	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	/* Reads through a memory map: no pread per b-tree page on the fault path. */
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(s->db, "PRAGMA mmap_size=2147418112", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(s->db, 30000);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v3(s->db, RANGE_SQL, -1, SQLITE_PREPARE_PERSISTENT,
					&s->range_stmt, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v3(s->db, CONTENT_SQL, -1, SQLITE_PREPARE_PERSISTENT,
					&s->content_stmt, NULL);
	if (rc == SQLITE_OK)
		s->map_digests_sql = has_check_column(s->db) ? MAP_DIGESTS_SQL :
							       MAP_DIGESTS_NO_CHECK_SQL;
	if (rc != SQLITE_OK) {
		err_set(e, ERR_INTERNAL, "cannot read the recording '%s': %s", path,
			s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto fail;
	}
	return &s->base;
fail:
	if (s && s->base.ops)
		sqlite_close(&s->base);
	else if (s) {
		ZSTD_freeDCtx(s->dctx);
		free(s->path);
		free(s);
	}
	return NULL;
}

/* The store for a location: a libpq URI names a PostgreSQL database (store_pg.c), a path
 * a SQLite file; another URL is refused (without quoting it: it may hold a password). */
struct store *store_open(const char *location, struct err *e)
{
	if (!strncmp(location, "postgresql://", 13) || !strncmp(location, "postgres://", 11))
		return store_pg_open(location, e);
	if (strstr(location, "://")) {
		err_set(e, ERR_INTERNAL, "the recording is at a URL the page server cannot read "
			"(SQLite files and PostgreSQL only)");
		return NULL;
	}
	return store_sqlite_open(location, e);
}
