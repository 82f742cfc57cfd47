/*
 * The store: the pages of encoded batches into page_content and page_version, inside the
 * caller's transaction, batch after batch in address order, then the digests of the
 * contents it stored into page_digest (ttdcapture.c's header says what becomes of a page).
 */
#ifndef TTDCAP_STORE_H
#define TTDCAP_STORE_H

#include <sqlite3ext.h>
#include <stdint.h>

#include "content_map.h"
#include "encoder.h"
#include "file_space.h"
#include "rows.h"

#define LOCAL_SLOTS (2 * BATCH_PAGES) /* the batch's new digests, open addressing */

struct store {
	sqlite3 *db;
	int foreign_keys; /* the connection's setting, restored by store_close() */
	sqlite3_stmt *insert_contents, *insert_versions, *lookup, *max_id;
	sqlite3_stmt *insert_digests, *lookup_content;
	int64_t tick;
	int64_t next_id; /* the id SQLite gives the next page_content row */
	int first;		     /* page_content was empty: nothing to look up */
	struct content_map stored;   /* the contents this call stored */
	struct file_space space;     /* allocated ahead of a large store's writes */
	uint64_t contents_inserted, versions_written;
	/* the batch being stored */
	struct row contents[BATCH_PAGES], versions[BATCH_PAGES];
	int64_t content_ids[BATCH_PAGES]; /* of contents[] */
	int16_t ref[BATCH_PAGES];	  /* a page's new content: its index in contents[] */
	uint16_t local[LOCAL_SLOTS];	  /* index in contents[] + 1, by digest; 0: free */
};

/* SQLite result codes. store_close() after store_open(), whatever it returned. */
int store_open(struct store *st, sqlite3 *db, int64_t tick, uint64_t npages);
/* Store batch b; `prev` and `ids` hold one id per page of b: the content id at the
 * previous tick (0: zeros), and the id now. */
int store_batch(struct store *st, const struct batch *b, const int64_t *prev, int64_t *ids);
/* Add the digests of the contents the call stored to page_digest. */
int store_finish(struct store *st);
void store_close(struct store *st);

#endif
