/*
 * ttd_rows(ROWS): an eponymous virtual table over rows the extension holds in memory, so
 * that a batch of rows goes into a table with one INSERT ... SELECT instead of one
 * statement per row (its cursors are opened once, its bindings made once: measured, a
 * third of the cost of a page_version row). ROWS is a pointer bound with
 * sqlite3_bind_pointer(stmt, i, rows, ROWS_POINTER, NULL): SQL text cannot make one, and
 * without one the table is empty. It may be used directly only, never from a trigger or a
 * view of a database (SQLITE_VTAB_DIRECTONLY).
 *
 *   address     INTEGER   rec_addr of the page
 *   content_id  INTEGER   NULL for 0 (a zero page)
 *   digest      BLOB      32 bytes
 *   codec       TEXT      'zstd' or 'raw'
 *   data        BLOB
 *   xxh3        BLOB      16 bytes, or NULL (check NULL)
 */
#ifndef TTDCAP_ROWS_H
#define TTDCAP_ROWS_H

#include <sqlite3ext.h>
#include <stdint.h>

#define ROWS_POINTER "ttd_rows"

struct row {
	uint64_t address;
	int64_t content_id;
	const uint8_t *digest;
	const uint8_t *check; /* PAGE_CHECK_SIZE bytes (page_check.h) */
	const void *data;
	uint32_t len;
	uint8_t zstd; /* data is a zstd frame */
};

struct rows {
	uint32_t n;
	struct row *row;
};

int rows_register(sqlite3 *db);

#endif
