/*
 * store.h on a recording in a PostgreSQL database (snapshotdb/server.py): the page
 * server reads it through libpq, as it reads a SQLite file.
 *
 * The location is a libpq connection URI that snapshotdb built (Recording.
 * pageserver_location): the recording's schema first on the search path (its
 * page_version, then the shared page_content), default_transaction_read_only on
 * (nothing this connection runs can write), application_name ttd-pageserver. It
 * may hold a password: it is never printed; messages name the server by host,
 * port and database (libpq's view of them).
 *
 * What crosses the network is what a call touches: a fetch is one prepared query
 * for the whole fault-around window, binary results, one row per page with content
 * at the tick (DISTINCT ON keeps the newest version of each address, so older
 * versions' data stays on the server). The page map of a tick (store_map) is not
 * offered: on a 1 GiB recording it is 262144 rows, megabytes, for a call that
 * touches dozens of pages; the verifier then serves from range queries, each
 * page hashed as it is decoded (verify.c), and the verified-page cache, keyed by
 * the map's digests, stays out of it (bench/team.py measures what it would save).
 * store_changes (moving between ticks) is the SQLite store's query.
 *
 * The connection is made by the first query, not by store_open(): the verifier's
 * helper thread opens a store of its own for the page map, which it never gets here.
 * Every statement runs in its own read-only transaction (autocommit): a recording's
 * versions up to a tick never change once written, so a burst needs no snapshot of
 * its own; store_idle() has nothing to release. A server that stops or restarts
 * fails the query in progress, with libpq's reason and the server's name.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <inttypes.h>
#include <stdlib.h>
#include <libpq-fe.h>
#include <zstd.h>

#define LOG_PREFIX "ttd-pageserver: store_pg: "
#include "log.h"
#include "codec.h"
#include "page.h"
#include "store.h"

static const char RANGE_SQL[] =
	"SELECT v.address, c.codec, c.data, c.digest, v.content_id FROM "
	"(SELECT DISTINCT ON (address) address, content_id FROM page_version "
	" WHERE address >= $1 AND address < $2 AND first_tick <= $3 "
	" ORDER BY address, first_tick DESC) v "
	"LEFT JOIN page_content c ON c.id = v.content_id";

/* The addresses with a version in ($3, $4], with their content at $1 and at $2. */
static const char CHANGES_SQL[] =
	"SELECT a.address, "
	"(SELECT content_id FROM page_version WHERE address = a.address AND first_tick <= $1 "
	" ORDER BY first_tick DESC LIMIT 1), "
	"(SELECT content_id FROM page_version WHERE address = a.address AND first_tick <= $2 "
	" ORDER BY first_tick DESC LIMIT 1) "
	"FROM (SELECT DISTINCT address FROM page_version WHERE first_tick > $3 AND first_tick <= $4) a "
	"ORDER BY a.address";

static const char CONTENT_SQL[] = "SELECT codec, data, digest FROM page_content WHERE id = $1";

enum { Q_RANGE, Q_CONTENT, NR_PREPARED };
static const char *const PREPARED[NR_PREPARED] = { RANGE_SQL, CONTENT_SQL };
static const int NR_PARAMS[NR_PREPARED] = { 3, 1 };
/* Every parameter is an int8, sent in binary (big-endian 8 bytes). */
static const Oid INT8_PARAMS[4] = { 20, 20, 20, 20 };

struct store_pg {
	struct store base;
	char *uri;		/* secret: may hold a password */
	PGconn *conn;
	char server[192];	/* "the PostgreSQL server at HOST:PORT (database DB)" */
	ZSTD_DCtx *dctx;
};

/* The server's name for messages: host (or socket directory), port and database as libpq
 * has them, never the URI. */
static void name_server(struct store_pg *s)
{
	const char *host = s->conn ? PQhost(s->conn) : NULL, *port = s->conn ? PQport(s->conn) : NULL;
	const char *db = s->conn ? PQdb(s->conn) : NULL;

	snprintf(s->server, sizeof(s->server), "the PostgreSQL server at %s:%s (database %s)",
		 host && *host ? host : "localhost", port && *port ? port : "5432",
		 db && *db ? db : "?");
}

/* libpq's message, first line only (it ends with a newline, and may have a DETAIL). */
static const char *first_line(const char *msg, char *buf, size_t len)
{
	size_t n = strcspn(msg ? msg : "", "\n");

	snprintf(buf, len, "%.*s", (int)n, msg ? msg : "");
	return buf;
}

static int pg_error(struct store_pg *s, const char *what, const char *msg, struct err *e)
{
	char line[256];

	return err_set(e, ERR_INTERNAL, "cannot %s from %s: %s", what, s->server,
		       first_line(msg, line, sizeof(line)));
}

/* The connection, made on first use, and the statements prepared on it. */
static int connected(struct store_pg *s, struct err *e)
{
	if (s->conn && PQstatus(s->conn) == CONNECTION_OK)
		return 0;
	if (s->conn)	/* lost: a later query does not reconnect behind a failed one */
		return pg_error(s, "read the recording", PQerrorMessage(s->conn), e);
	s->conn = PQconnectdb(s->uri);
	name_server(s);
	if (!s->conn)
		return err_set(e, ERR_INTERNAL, "out of memory connecting to the recording's server");
	if (PQstatus(s->conn) != CONNECTION_OK)
		return pg_error(s, "connect to the recording", PQerrorMessage(s->conn), e);
	for (int i = 0; i < NR_PREPARED; i++) {
		char name[8];
		snprintf(name, sizeof(name), "q%d", i);
		PGresult *r = PQprepare(s->conn, name, PREPARED[i], NR_PARAMS[i], INT8_PARAMS);
		int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok)
			pg_error(s, "read the recording",
				 r ? PQresultErrorMessage(r) : PQerrorMessage(s->conn), e);
		PQclear(r);
		if (!ok)
			return -1;
	}
	pr_debug("connected to %s", s->server);
	return 0;
}

/* Run a statement (prepared: q0.., else sql) with int8 parameters, binary both ways:
 * its result, or NULL with the error. */
static PGresult *run(struct store_pg *s, int prepared, const char *sql, const uint64_t *params,
		     int nr_params, struct err *e)
{
	uint64_t be[4];
	const char *values[4];
	int lengths[4], formats[4];
	char name[8];
	PGresult *r;

	if (connected(s, e))
		return NULL;
	for (int i = 0; i < nr_params; i++) {
		be[i] = htobe64(params[i]);
		values[i] = (const char *)&be[i];
		lengths[i] = sizeof(be[i]);
		formats[i] = 1;
	}
	if (prepared >= 0) {
		snprintf(name, sizeof(name), "q%d", prepared);
		r = PQexecPrepared(s->conn, name, nr_params, values, lengths, formats, 1);
	} else {
		r = PQexecParams(s->conn, sql, nr_params, INT8_PARAMS, values, lengths, formats, 1);
	}
	if (r && PQresultStatus(r) == PGRES_TUPLES_OK)
		return r;
	pg_error(s, "read the recording", r ? PQresultErrorMessage(r) : PQerrorMessage(s->conn), e);
	PQclear(r);
	return NULL;
}

/* A binary int8 column (NULL: 0). */
static uint64_t get_u64(const PGresult *r, int row, int col)
{
	uint64_t be;

	if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != sizeof(be))
		return 0;
	memcpy(&be, PQgetvalue(r, row, col), sizeof(be));
	return be64toh(be);
}

static int corrupt(struct err *e, uint64_t rec_addr, uint64_t tick, const char *why)
{
	return err_set(e, ERR_CORRUPT, "page %#" PRIx64 " at tick %" PRIu64 " is corrupt (%s)",
		       rec_addr, tick, why);
}

/* Columns col.. (codec, data, digest) of a row: the page decoded into dst, its digest;
 * -1 when it is corrupt (a NULL codec: the content row is missing). */
static int take_content(struct store_pg *s, const PGresult *r, int row, int col,
			uint64_t rec_addr, uint64_t tick, uint8_t *dst, const uint8_t **digest,
			struct err *e)
{
	char codec[16], why[160];
	int codec_len = PQgetlength(r, row, col);

	if (PQgetisnull(r, row, col))
		return corrupt(e, rec_addr, tick, "its content row is missing");
	snprintf(codec, sizeof(codec), "%.*s", codec_len, PQgetvalue(r, row, col));
	if (page_decode(s->dctx, codec, PQgetvalue(r, row, col + 1), PQgetlength(r, row, col + 1),
			dst, why, sizeof(why)))
		return corrupt(e, rec_addr, tick, why);
	if (PQgetlength(r, row, col + 2) != PAGE_DIGEST_SIZE) {
		snprintf(why, sizeof(why), "a digest of %d bytes", PQgetlength(r, row, col + 2));
		return corrupt(e, rec_addr, tick, why);
	}
	*digest = (const uint8_t *)PQgetvalue(r, row, col + 2);
	return 0;
}

static int pg_fetch(struct store *base, struct store_request *req, struct err *e)
{
	struct store_pg *s = (struct store_pg *)base;
	uint64_t params[3] = { req->rec_lo, req->rec_hi, req->tick };
	uint32_t npages = (req->rec_hi - req->rec_lo) / PAGE_SIZE;
	uint64_t has_data[MAX_FILL_PAGES / 64] = { 0 };
	int ret = 0;

	req->nr_stored = 0;
	PGresult *r = run(s, Q_RANGE, NULL, params, 3, e);
	if (!r)
		return -1;
	for (int row = 0; ret == 0 && row < PQntuples(r); row++) {
		uint64_t rec_addr = get_u64(r, row, 0);
		const uint8_t *digest;
		if (rec_addr & (PAGE_SIZE - 1) || rec_addr < req->rec_lo || rec_addr >= req->rec_hi) {
			ret = err_set(e, ERR_CORRUPT, "page version at address %#" PRIx64 " outside "
				      "the pages asked for", rec_addr);
			break;
		}
		if (PQgetisnull(r, row, 4))
			continue;	/* zero at this tick */
		uint32_t offset = rec_addr - req->rec_lo, k = offset / PAGE_SIZE;
		ret = take_content(s, r, row, 1, rec_addr, req->tick, req->dst + offset, &digest, e);
		if (ret == 0) {
			req->stored(req->ctx, offset, digest);
			req->nr_stored++;
			has_data[k / 64] |= 1ULL << (k % 64);
		}
	}
	PQclear(r);
	for (uint32_t k = 0; ret == 0 && k < npages; k++)	/* never stored, or zero at this tick */
		if (!(has_data[k / 64] & (1ULL << (k % 64))))
			memset(req->dst + k * PAGE_SIZE, 0, PAGE_SIZE);
	return ret;
}

static int pg_map(struct store *base, uint64_t tick, int digests, store_map_fn emit, void *ctx,
		  struct err *e)
{
	(void)base; (void)digests; (void)emit; (void)ctx;
	return err_set(e, ERR_INTERNAL, "the page map of tick %" PRIu64 " is not read from a "
		       "server (range queries move only what a call touches)", tick);
}

static int pg_changes(struct store *base, uint64_t tick_a, uint64_t tick_b,
		      store_change_fn emit, void *ctx, struct err *e)
{
	struct store_pg *s = (struct store_pg *)base;
	uint64_t ticks[4] = { tick_a, tick_b, tick_a < tick_b ? tick_a : tick_b,
			      tick_a < tick_b ? tick_b : tick_a };
	PGresult *r = run(s, -1, CHANGES_SQL, ticks, 4, e);
	int ret = 0;

	if (!r)
		return -1;
	for (int row = 0; ret == 0 && row < PQntuples(r); row++) {
		uint64_t rec_addr = get_u64(r, row, 0);
		if (rec_addr & (PAGE_SIZE - 1))
			ret = err_set(e, ERR_CORRUPT, "page version at unaligned address %#" PRIx64
				      " in the recording", rec_addr);
		else
			ret = emit(ctx, rec_addr, get_u64(r, row, 1), get_u64(r, row, 2), e);
	}
	PQclear(r);
	return ret;
}

static int pg_content(struct store *base, store_ref ref, uint64_t rec_addr, uint64_t tick,
		      uint8_t *dst, uint8_t digest[PAGE_DIGEST_SIZE], struct err *e)
{
	struct store_pg *s = (struct store_pg *)base;
	const uint8_t *stored_digest;
	PGresult *r = run(s, Q_CONTENT, NULL, &ref, 1, e);
	int ret;

	if (!r)
		return -1;
	if (PQntuples(r) != 1)
		ret = corrupt(e, rec_addr, tick, "its content row is missing");
	else
		ret = take_content(s, r, 0, 0, rec_addr, tick, dst, &stored_digest, e);
	if (ret == 0)
		memcpy(digest, stored_digest, PAGE_DIGEST_SIZE);
	PQclear(r);
	return ret;
}

static void pg_idle(struct store *base)
{
	(void)base;	/* autocommit: nothing is held between statements */
}

static void pg_close(struct store *base)
{
	struct store_pg *s = (struct store_pg *)base;

	if (!s)
		return;
	PQfinish(s->conn);
	ZSTD_freeDCtx(s->dctx);
	if (s->uri) {
		explicit_bzero(s->uri, strlen(s->uri));	/* the password, if any */
		free(s->uri);
	}
	free(s);
}

static const struct store_ops pg_ops = {
	.fetch = pg_fetch,
	.map = pg_map,
	.changes = pg_changes,
	.content = pg_content,
	.idle = pg_idle,
	.close = pg_close,
};

struct store *store_pg_open(const char *uri, struct err *e)
{
	struct store_pg *s = calloc(1, sizeof(*s));

	if (!s || !(s->uri = strdup(uri)) || !(s->dctx = ZSTD_createDCtx())) {
		pg_close(s ? &s->base : NULL);
		err_set(e, ERR_INTERNAL, "out of memory opening the recording's server");
		return NULL;
	}
	s->base.ops = &pg_ops;
	s->base.location = s->uri;
	name_server(s);
	return &s->base;
}
