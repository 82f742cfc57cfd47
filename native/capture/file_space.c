/* file_space.h: disk space allocated ahead of a large store's writes. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_space.h"

SQLITE_EXTENSION_INIT3

#define MIN_STORE (64LL << 20) /* smaller stores allocate as they write */
#define MIN_LEAD (8LL << 20)
#define MAX_LEAD (64LL << 20)

/* A descriptor of this process open for writing on the file at `path`, or -1. SQLite keeps
 * every descriptor of a file open while its connection holds a lock on it (a connection's
 * close is deferred until then), so inside the caller's transaction the one found stays
 * the file's; it is used only there and never closed here (closing any descriptor of a
 * file drops the process's POSIX locks on it, SQLite's included). */
static int find_fd(const char *path)
{
	struct stat want, st;
	DIR *dir;
	struct dirent *d;
	int found = -1;

	if (!path || !*path || stat(path, &want) != 0 || !S_ISREG(want.st_mode))
		return -1;
	dir = opendir("/proc/self/fd");
	if (!dir)
		return -1;
	while (found < 0 && (d = readdir(dir)) != NULL) {
		char *end;
		long fd = strtol(d->d_name, &end, 10);

		if (*end || end == d->d_name || fd == dirfd(dir) || fstat((int)fd, &st) != 0)
			continue;
		if (st.st_dev == want.st_dev && st.st_ino == want.st_ino &&
		    (fcntl((int)fd, F_GETFL) & O_ACCMODE) == O_RDWR)
			found = (int)fd;
	}
	closedir(dir);
	return found;
}

/* The one integer a pragma gives, or -1. */
static int64_t pragma_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *stmt;
	int64_t v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(stmt) == SQLITE_ROW)
		v = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return v;
}

/* The database's size now, in bytes (pages not written yet included), or -1. */
static int64_t db_bytes(struct file_space *fs)
{
	int64_t pages = -1;

	if (sqlite3_step(fs->page_count) == SQLITE_ROW)
		pages = sqlite3_column_int64(fs->page_count, 0);
	sqlite3_reset(fs->page_count);
	return pages < 0 ? -1 : pages * fs->page_size;
}

static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

void file_space_open(struct file_space *fs, sqlite3 *db, int64_t bytes)
{
	struct stat st;

	*fs = (struct file_space){ .fd = -1 };
	if (bytes < MIN_STORE)
		return;
	fs->page_size = pragma_int(db, "PRAGMA main.page_size");
	if (fs->page_size <= 0 ||
	    sqlite3_prepare_v2(db, "PRAGMA main.page_count", -1, &fs->page_count, NULL) != SQLITE_OK)
		return;
	fs->fd = find_fd(sqlite3_db_filename(db, "main"));
	if (fs->fd < 0 || fstat(fs->fd, &st) != 0) {
		fs->fd = -1;
		return;
	}
	fs->lead = clamp(bytes / 16, MIN_LEAD, MAX_LEAD);
	fs->allocated = st.st_size;
	file_space_ahead(fs);
}

void file_space_ahead(struct file_space *fs)
{
	int64_t end;

	if (fs->fd < 0 || fs->stopped)
		return;
	end = db_bytes(fs);
	if (end < 0 || fs->allocated - end >= fs->lead / 2)
		return;
	if (end > fs->allocated)
		fs->allocated = end; /* SQLite got there first: allocate from its end on */
	if (fallocate(fs->fd, FALLOC_FL_KEEP_SIZE, fs->allocated, fs->lead) != 0) {
		fs->stopped = 1; /* no fallocate here, or no space: SQLite's writes will say */
		return;
	}
	fs->allocated += fs->lead;
}

void file_space_close(struct file_space *fs)
{
	struct stat st;

	/* Truncating a file to its own size frees the blocks past its end, and changes no
	 * byte; SQLite writes the pages it has not yet written where they were to go. */
	if (fs->fd >= 0 && fstat(fs->fd, &st) == 0 && fs->allocated > st.st_size)
		(void)!ftruncate(fs->fd, st.st_size);
	sqlite3_finalize(fs->page_count);
	*fs = (struct file_space){ .fd = -1 };
}
