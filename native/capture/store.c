/*
 * store.h. Per batch, two statements instead of one or two per page (SQLite's per-row
 * cost was the whole first snapshot's critical path):
 *
 *   contents   the batch's contents not stored yet, each once, with one INSERT OR IGNORE
 *              ... SELECT from ttd_rows (rows.h). When every row went in, their ids are
 *              the next ones in order (an INTEGER PRIMARY KEY takes max(id) + 1; the
 *              last rowid checks it), as one INSERT per page made them; otherwise (a
 *              recording made before page_digest, its page_digest missing a content its
 *              page_content has) each is looked up by its digest there.
 *   versions   one INSERT OR FAIL ... SELECT of the pages whose id is not PREV's (FAIL:
 *              an error ends the statement without a statement journal, and the caller's
 *              transaction is rolled back).
 *
 * and at the end of the call (store_finish), one INSERT into page_digest of every content
 * the call stored, in digest order: appended to its b-tree in order. Inserting each digest
 * with its content, in sha256's random order, into a unique index cost a 1 GiB first
 * snapshot 0.3 s of this thread (measured), half of its time.
 *
 * Statements are prepared with the connection's foreign key checks off, and the setting
 * restored by store_close(): every content id they write was inserted or found in
 * page_content by this call, and with the checks, each INSERT ... SELECT into page_version
 * (one that may abort) first copies the pages it changes that existed before it into a
 * statement journal, a temporary file: 208 MB of writes for a 1 GiB first snapshot
 * (measured), and looks up each parent row.
 *
 * A content is found in the batch (the local table), among the contents of the call's
 * earlier batches (the content map), or in page_digest (stored by an earlier call; not
 * asked when page_content was empty: a first snapshot). A content repeated within the
 * batch is inserted once. The result is the same rows, ids and order as a page-by-page
 * insert would make.
 */
#include <string.h>

#include "store.h"

SQLITE_EXTENSION_INIT3

/* page_content has the xxh3 column (page_check.h): a recording made before it has not. */
static int has_check_column(sqlite3 *db)
{
	return sqlite3_table_column_metadata(db, "main", "page_content", "xxh3", NULL, NULL, NULL,
					     NULL, NULL) == SQLITE_OK;
}

static int prepare(struct store *st)
{
	const char *sql[] = {
		has_check_column(st->db) ?
			"INSERT OR IGNORE INTO page_content (digest, codec, data, xxh3) "
			"SELECT digest, codec, data, xxh3 FROM ttd_rows(?1)" :
			"INSERT OR IGNORE INTO page_content (digest, codec, data) "
			"SELECT digest, codec, data FROM ttd_rows(?1)",
		"INSERT OR FAIL INTO page_version (address, first_tick, content_id) "
		"SELECT address, ?2, content_id FROM ttd_rows(?1)",
		"SELECT content_id FROM page_digest WHERE digest = ?",
		"SELECT max(id) FROM page_content",
		"INSERT OR FAIL INTO page_digest (digest, content_id) "
		"SELECT digest, content_id FROM ttd_rows(?1)",
		"SELECT id FROM page_content WHERE digest = ?",
	};
	sqlite3_stmt **stmt[] = { &st->insert_contents, &st->insert_versions, &st->lookup,
				  &st->max_id, &st->insert_digests, &st->lookup_content };

	for (int i = 0; i < 6; i++) {
		int rc = sqlite3_prepare_v2(st->db, sql[i], -1, stmt[i], NULL);
		if (rc != SQLITE_OK)
			return rc;
	}
	return SQLITE_OK;
}

/* st->next_id from the table: max(id) + 1. */
static int read_next_id(struct store *st)
{
	int rc = sqlite3_step(st->max_id);

	if (rc == SQLITE_ROW)
		st->next_id = sqlite3_column_int64(st->max_id, 0) + 1;
	sqlite3_reset(st->max_id);
	return rc == SQLITE_ROW ? SQLITE_OK : rc;
}

int store_open(struct store *st, sqlite3 *db, int64_t tick, uint64_t npages)
{
	*st = (struct store){ .db = db, .tick = tick, .foreign_keys = -1, .space.fd = -1 };
	if (content_map_init(&st->stored, npages) != 0)
		return SQLITE_NOMEM;
	/* The statements are made without foreign key checks (see the head of this file) */
	int rc = sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_FKEY, -1, &st->foreign_keys);

	if (rc == SQLITE_OK)
		rc = sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_FKEY, 0, NULL);
	if (rc == SQLITE_OK)
		rc = prepare(st);
	if (rc == SQLITE_OK)
		file_space_open(&st->space, db, (int64_t)(npages * PAGE_SIZE));

	if (rc == SQLITE_OK)
		rc = read_next_id(st);
	st->first = st->next_id == 1; /* nothing stored before: nothing to look up */
	return rc;
}

void store_close(struct store *st)
{
	file_space_close(&st->space);
	sqlite3_finalize(st->insert_contents);
	sqlite3_finalize(st->insert_versions);
	sqlite3_finalize(st->lookup);
	sqlite3_finalize(st->max_id);
	sqlite3_finalize(st->insert_digests);
	sqlite3_finalize(st->lookup_content);
	if (st->foreign_keys >= 0)
		sqlite3_db_config(st->db, SQLITE_DBCONFIG_ENABLE_FKEY, st->foreign_keys, NULL);
	content_map_fini(&st->stored);
}

/* The id `stmt` finds for a digest: SQLITE_ROW (found), SQLITE_DONE (none) or an error. */
static int lookup(sqlite3_stmt *stmt, const uint8_t *digest, int64_t *id)
{
	sqlite3_bind_blob(stmt, 1, digest, PAGE_DIGEST_SIZE, SQLITE_STATIC);
	int rc = sqlite3_step(stmt);

	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(stmt, 0);
	sqlite3_reset(stmt);
	return rc;
}

static uint32_t local_slot(const uint8_t *digest)
{
	uint32_t h;

	memcpy(&h, digest, sizeof(h));
	return h % LOCAL_SLOTS;
}

/* The index in contents[] of this batch's new content with this digest, or -1. */
static int local_find(const struct store *st, const uint8_t *digest)
{
	for (uint32_t s = local_slot(digest); st->local[s]; s = (s + 1) % LOCAL_SLOTS) {
		int j = st->local[s] - 1;

		if (memcmp(st->contents[j].digest, digest, PAGE_DIGEST_SIZE) == 0)
			return j;
	}
	return -1;
}

static void local_add(struct store *st, const uint8_t *digest, int j)
{
	uint32_t s = local_slot(digest);

	while (st->local[s])
		s = (s + 1) % LOCAL_SLOTS;
	st->local[s] = (uint16_t)(j + 1);
}

/* Insert contents[0, n) and learn their ids. */
static int insert_contents(struct store *st, uint32_t n)
{
	if (n == 0)
		return SQLITE_OK;
	struct rows rows = { .n = n, .row = st->contents };

	sqlite3_bind_pointer(st->insert_contents, 1, &rows, ROWS_POINTER, NULL);
	int rc = sqlite3_step(st->insert_contents);

	sqlite3_reset(st->insert_contents);
	if (rc != SQLITE_DONE)
		return rc;
	uint32_t inserted = (uint32_t)sqlite3_changes(st->db);

	st->contents_inserted += inserted;
	if (inserted == n && sqlite3_last_insert_rowid(st->db) == st->next_id + n - 1) {
		for (uint32_t j = 0; j < n; j++)
			st->content_ids[j] = st->next_id + j;
		st->next_id += n;
	} else {
		for (uint32_t j = 0; j < n; j++) {
			rc = lookup(st->lookup_content, st->contents[j].digest, &st->content_ids[j]);
			if (rc != SQLITE_ROW)
				return rc == SQLITE_DONE ? SQLITE_CORRUPT : rc;
		}
		rc = read_next_id(st);
		if (rc != SQLITE_OK)
			return rc;
	}
	for (uint32_t j = 0; j < n; j++)
		if (content_map_add(&st->stored, st->contents[j].digest, st->content_ids[j]) != 0)
			return SQLITE_INTERNAL; /* more contents than pages: cannot be */
	return SQLITE_OK;
}

static int insert_versions(struct store *st, uint32_t n)
{
	if (n == 0)
		return SQLITE_OK;
	struct rows rows = { .n = n, .row = st->versions };

	sqlite3_bind_pointer(st->insert_versions, 1, &rows, ROWS_POINTER, NULL);
	sqlite3_bind_int64(st->insert_versions, 2, st->tick);
	int rc = sqlite3_step(st->insert_versions);

	sqlite3_reset(st->insert_versions);
	if (rc != SQLITE_DONE)
		return rc;
	st->versions_written += n;
	return SQLITE_OK;
}

/* Sort the batch's pages: zero (id 0), stored before (id known), or new (a row of
 * contents[], shared by the pages with its digest); ref[i] says which new one. */
static int classify(struct store *st, const struct batch *b, int64_t *ids, uint32_t *ncontents)
{
	uint32_t n = 0;

	memset(st->local, 0, sizeof(st->local));
	for (uint32_t i = 0; i < b->npages; i++) {
		const uint8_t *digest = b->digest[i];
		int j;

		st->ref[i] = -1;
		ids[i] = 0;
		if (b->kind[i] == KIND_ZERO)
			continue;
		j = local_find(st, digest);
		if (j < 0 && content_map_find(&st->stored, digest, &ids[i]))
			continue;
		if (j < 0 && !st->first) {
			int rc = lookup(st->lookup, digest, &ids[i]);

			if (rc == SQLITE_ROW)
				continue;
			if (rc != SQLITE_DONE)
				return rc;
		}
		if (j < 0) {
			int zstd = b->kind[i] == KIND_ZSTD;

			j = (int)n++;
			st->contents[j] = (struct row){
				.digest = digest,
				.check = b->check[i],
				.data = zstd ? b->packed[i] : b->raw + (size_t)i * PAGE_SIZE,
				.len = zstd ? b->packed_len[i] : PAGE_SIZE,
				.zstd = (uint8_t)zstd,
			};
			local_add(st, digest, j);
		}
		st->ref[i] = (int16_t)j;
	}
	*ncontents = n;
	return SQLITE_OK;
}

int store_batch(struct store *st, const struct batch *b, const int64_t *prev, int64_t *ids)
{
	uint32_t ncontents = 0, nversions = 0;
	int rc = classify(st, b, ids, &ncontents);

	file_space_ahead(&st->space);

	if (rc == SQLITE_OK)
		rc = insert_contents(st, ncontents);
	if (rc != SQLITE_OK)
		return rc;
	for (uint32_t i = 0; i < b->npages; i++) {
		if (st->ref[i] >= 0)
			ids[i] = st->content_ids[st->ref[i]];
		if (ids[i] != prev[i])
			st->versions[nversions++] = (struct row){
				.address = b->addr + (uint64_t)i * PAGE_SIZE,
				.content_id = ids[i],
			};
	}
	return insert_versions(st, nversions);
}

int store_finish(struct store *st)
{
	struct content_map *m = &st->stored;
	struct rows rows = { .row = st->versions };
	int rc = SQLITE_OK;

	const uint32_t *order = content_map_sort(m);

	if (!order)
		return SQLITE_NOMEM;
	for (uint64_t i = 0; i < m->n && rc == SQLITE_OK; i += rows.n) {
		rows.n = m->n - i < BATCH_PAGES ? (uint32_t)(m->n - i) : BATCH_PAGES;
		for (uint32_t k = 0; k < rows.n; k++)
			rows.row[k] = (struct row){ .digest = m->entries[order[i + k]].digest,
						    .content_id = m->entries[order[i + k]].id };
		sqlite3_bind_pointer(st->insert_digests, 1, &rows, ROWS_POINTER, NULL);
		rc = sqlite3_step(st->insert_digests);
		sqlite3_reset(st->insert_digests);
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	return rc;
}
