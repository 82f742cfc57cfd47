/*
 * Disk space for a large store, allocated ahead of SQLite's writes. ext4 reserves and
 * maps every 4 KiB block a buffered write extends the file by (delayed allocation); into
 * blocks fallocate() allocated beforehand, the same writes cost about two thirds as much
 * (measured: 1 GiB in 32 KiB writes, 0.25-0.30 s of system time against 0.17 s).
 *
 * The space is allocated past the file's end, its size unchanged (FALLOC_FL_KEEP_SIZE):
 * SQLite and every reader see the file as it is. What is past the file's end when the
 * store ends is given back (file_space_close). Any failure (a file system without fallocate, a full
 * disk) only turns this off: SQLite's own writes then meet the condition and report it.
 */
#ifndef TTDCAP_FILE_SPACE_H
#define TTDCAP_FILE_SPACE_H

#include <sqlite3ext.h>
#include <stdint.h>

struct file_space {
	int fd;		  /* SQLite's own descriptor of the main database file, or -1 */
	int stopped;	  /* a fallocate failed: allocate no more (what was is given back) */
	sqlite3_stmt *page_count; /* prepared once: the database's size in pages */
	int64_t page_size;
	int64_t lead;	  /* bytes kept allocated past the database's current size */
	int64_t allocated; /* the file is allocated up to here */
};

/* Get ready to allocate ahead of a store of about `bytes`. Does nothing (fd -1) for a small
 * store, or when SQLite's descriptor of the file cannot be found. */
void file_space_open(struct file_space *fs, sqlite3 *db, int64_t bytes);
/* Keep the space past the database's current size allocated (one fallocate per lead/2). */
void file_space_ahead(struct file_space *fs);
/* Give back the space past the file's end. */
void file_space_close(struct file_space *fs);

#endif
