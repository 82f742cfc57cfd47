/*
 * libttdcapture.so: the bulk path of snapshotdb/capture/bulk_store.py for SQLite recordings.
 * A stopped process's pages, read from /proc/PID/mem, stored at the speed of memory.
 *
 *   int ttdcap_store(const char *db_path, int mem_fd,
 *                    const struct ttdcap_run *runs, uint64_t nruns,
 *                    int64_t *ids, struct ttdcap_result *res);
 *
 * For every page of the runs, in order (runs are page-aligned [start, end) in the process):
 *
 *   unreadable, or 4096 zeros   ids[i] = 0
 *   any other bytes             ids[i] = the id of the page_content row of its digest
 *                               (sha256 of the 4096 bytes), inserted when there is none:
 *                               data = one zstd frame (ZSTD_LEVEL) when smaller, codec 'zstd',
 *                               else the bytes, codec 'raw' (docs/internals.md)
 *
 * in one transaction on a connection of its own, committed before it returns; page versions
 * are the caller's (SnapshotWriter, in the snapshot's transaction). Page contents are
 * content-addressed and never change, so rows of a snapshot that is not written in the end
 * are harmless. The caller must not hold a write transaction on the database meanwhile.
 * Returns 0, or -1 with res->error set (res->disk_full when SQLITE_FULL was the cause).
 *
 * Threads: ENCODERS workers take batches of BATCH_PAGES pages in turn, read them (pread) and
 * encode them (zero check, SHA256, ZSTD) into a ring of RING slots; the calling thread
 * inserts the batches in order. Memory: the ring (a few MiB), whatever the process's size.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/sha.h>
#include <sqlite3.h>
#include <zstd.h>

#define PAGE_SIZE 4096
#define BATCH_PAGES 256 /* 1 MiB: one pread */
#define RING 8
#define ENCODERS 2
/* Level 1: 1.3-1.5x faster than 3 on code and data pages for 1-3% more bytes (measured) */
#define ZSTD_LEVEL 1
#define BUSY_TIMEOUT_MS 30000

struct ttdcap_run {
	uint64_t start, end; /* rec_addr, page-aligned */
};

struct ttdcap_result {
	uint64_t pages_read;	    /* pages of the runs */
	uint64_t contents_inserted; /* page_content rows added */
	int32_t disk_full;
	char error[256];
};

struct slot {
	uint64_t batch;		     /* which batch it holds; valid while state == FULL */
	int state;		     /* EMPTY, BUSY (an encoder fills it), FULL */
	uint32_t npages;
	uint8_t raw[BATCH_PAGES * PAGE_SIZE];
	uint8_t kind[BATCH_PAGES];   /* KIND_ZERO, KIND_RAW, KIND_ZSTD */
	uint8_t digest[BATCH_PAGES][SHA256_DIGEST_LENGTH];
	uint32_t packed_len[BATCH_PAGES];
	uint8_t packed[BATCH_PAGES][PAGE_SIZE];
};

enum { EMPTY, BUSY, FULL };
enum { KIND_ZERO, KIND_RAW, KIND_ZSTD };

struct job {
	int mem_fd;
	const struct ttdcap_run *runs;
	uint64_t nruns;
	uint64_t *run_first;  /* batch index where each run starts */
	uint64_t nbatches;
	uint64_t next_batch;  /* next batch an encoder takes */
	int stop;
	struct slot *slots;
	pthread_mutex_t lock;
	pthread_cond_t changed;
};

static const uint8_t zero_page[PAGE_SIZE];

static void set_error(struct ttdcap_result *res, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(res->error, sizeof(res->error), fmt, ap);
	va_end(ap);
}

/* The address and page count of batch b (batches never span two runs). */
static uint64_t batch_span(const struct job *job, uint64_t b, uint32_t *npages)
{
	uint64_t lo = 0, hi = job->nruns; /* the run whose first batch is the last <= b */

	while (hi - lo > 1) {
		uint64_t mid = (lo + hi) / 2;

		if (job->run_first[mid] <= b)
			lo = mid;
		else
			hi = mid;
	}
	uint64_t addr = job->runs[lo].start + (b - job->run_first[lo]) * BATCH_PAGES * PAGE_SIZE;
	uint64_t left = (job->runs[lo].end - addr) / PAGE_SIZE;

	*npages = left < BATCH_PAGES ? (uint32_t)left : BATCH_PAGES;
	return addr;
}

/* Read a batch; pages the kernel refuses (a PROT_NONE guard, [vvar], past a file's end)
 * are read one by one and left as zeros. */
static void read_batch(int mem_fd, uint64_t addr, struct slot *s)
{
	size_t len = (size_t)s->npages * PAGE_SIZE;

	if (pread(mem_fd, s->raw, len, (off_t)addr) == (ssize_t)len)
		return;
	for (uint32_t i = 0; i < s->npages; i++) {
		uint8_t *page = s->raw + (size_t)i * PAGE_SIZE;

		if (pread(mem_fd, page, PAGE_SIZE, (off_t)(addr + (uint64_t)i * PAGE_SIZE)) != PAGE_SIZE)
			memset(page, 0, PAGE_SIZE);
	}
}

static void encode_batch(ZSTD_CCtx *cctx, struct slot *s)
{
	for (uint32_t i = 0; i < s->npages; i++) {
		const uint8_t *page = s->raw + (size_t)i * PAGE_SIZE;

		if (memcmp(page, zero_page, PAGE_SIZE) == 0) {
			s->kind[i] = KIND_ZERO;
			continue;
		}
		SHA256(page, PAGE_SIZE, s->digest[i]);
		size_t n = ZSTD_compressCCtx(cctx, s->packed[i], PAGE_SIZE, page, PAGE_SIZE, ZSTD_LEVEL);
		if (!ZSTD_isError(n) && n < PAGE_SIZE) {
			s->kind[i] = KIND_ZSTD;
			s->packed_len[i] = (uint32_t)n;
		} else {
			s->kind[i] = KIND_RAW;
		}
	}
}

static void *encoder(void *arg)
{
	struct job *job = arg;
	ZSTD_CCtx *cctx = ZSTD_createCCtx();

	pthread_mutex_lock(&job->lock);
	for (;;) {
		if (job->stop || job->next_batch >= job->nbatches)
			break;
		uint64_t b = job->next_batch;
		struct slot *s = &job->slots[b % RING];

		if (s->state != EMPTY) { /* the inserter is RING batches behind: wait */
			pthread_cond_wait(&job->changed, &job->lock);
			continue;
		}
		job->next_batch++;
		s->state = BUSY;
		s->batch = b;
		pthread_mutex_unlock(&job->lock);

		uint64_t addr = batch_span(job, b, &s->npages);
		read_batch(job->mem_fd, addr, s);
		if (cctx)
			encode_batch(cctx, s);

		pthread_mutex_lock(&job->lock);
		s->state = FULL;
		pthread_cond_broadcast(&job->changed);
	}
	pthread_mutex_unlock(&job->lock);
	ZSTD_freeCCtx(cctx);
	return NULL;
}

struct store {
	sqlite3 *db;
	sqlite3_stmt *insert, *lookup;
	struct ttdcap_result *res;
};

static int sql_failed(struct store *st, const char *what)
{
	int code = sqlite3_extended_errcode(st->db);

	st->res->disk_full = (code & 0xff) == SQLITE_FULL;
	set_error(st->res, "%s: %s", what, sqlite3_errmsg(st->db));
	return -1;
}

/* The id of a content: inserted when new, else the existing row's. */
static int content_id(struct store *st, const struct slot *s, uint32_t i, int64_t *id)
{
	int zstd = s->kind[i] == KIND_ZSTD;
	const void *data = zstd ? (const void *)s->packed[i] : (const void *)(s->raw + (size_t)i * PAGE_SIZE);
	int len = zstd ? (int)s->packed_len[i] : PAGE_SIZE;

	sqlite3_bind_blob(st->insert, 1, s->digest[i], SHA256_DIGEST_LENGTH, SQLITE_STATIC);
	sqlite3_bind_text(st->insert, 2, zstd ? "zstd" : "raw", -1, SQLITE_STATIC);
	sqlite3_bind_blob(st->insert, 3, data, len, SQLITE_STATIC);
	int rc = sqlite3_step(st->insert);
	sqlite3_reset(st->insert);
	if (rc != SQLITE_DONE)
		return sql_failed(st, "insert page_content");
	if (sqlite3_changes(st->db) == 1) {
		*id = sqlite3_last_insert_rowid(st->db);
		st->res->contents_inserted++;
		return 0;
	}
	sqlite3_bind_blob(st->lookup, 1, s->digest[i], SHA256_DIGEST_LENGTH, SQLITE_STATIC);
	rc = sqlite3_step(st->lookup);
	*id = rc == SQLITE_ROW ? sqlite3_column_int64(st->lookup, 0) : 0;
	sqlite3_reset(st->lookup);
	if (rc != SQLITE_ROW)
		return sql_failed(st, "look up page_content");
	return 0;
}

static int open_store(struct store *st, const char *db_path)
{
	if (sqlite3_open_v2(db_path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		return sql_failed(st, "open");
	sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
	/* The caller's connection and this one are in one process: no fsync per snapshot, as
	 * gcore does none; a killed recorder still leaves a consistent database (rollback journal). */
	if (sqlite3_exec(st->db, "PRAGMA synchronous=OFF; PRAGMA cache_size=-16384", NULL, NULL, NULL) != SQLITE_OK)
		return sql_failed(st, "configure");
	if (sqlite3_prepare_v2(st->db, "INSERT OR IGNORE INTO page_content (digest, codec, data) "
			       "VALUES (?, ?, ?)", -1, &st->insert, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(st->db, "SELECT id FROM page_content WHERE digest = ?", -1,
			       &st->lookup, NULL) != SQLITE_OK)
		return sql_failed(st, "prepare");
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return sql_failed(st, "begin");
	return 0;
}

static void close_store(struct store *st, int commit)
{
	if (st->db && !sqlite3_get_autocommit(st->db)) {
		if (!commit || sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
			if (commit)
				sql_failed(st, "commit");
			sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		}
	}
	sqlite3_finalize(st->insert);
	sqlite3_finalize(st->lookup);
	sqlite3_close(st->db);
}

/* Insert the batches in order as the encoders fill them; ids[] gets every page's id. */
static int insert_batches(struct job *job, struct store *st, int64_t *ids)
{
	uint64_t page = 0;

	for (uint64_t b = 0; b < job->nbatches; b++) {
		struct slot *s = &job->slots[b % RING];

		pthread_mutex_lock(&job->lock);
		while (!(s->state == FULL && s->batch == b))
			pthread_cond_wait(&job->changed, &job->lock);
		pthread_mutex_unlock(&job->lock);

		for (uint32_t i = 0; i < s->npages; i++, page++) {
			ids[page] = 0;
			if (s->kind[i] != KIND_ZERO && content_id(st, s, i, &ids[page]) < 0)
				return -1;
		}
		st->res->pages_read += s->npages;

		pthread_mutex_lock(&job->lock);
		s->state = EMPTY;
		pthread_cond_broadcast(&job->changed);
		pthread_mutex_unlock(&job->lock);
	}
	return 0;
}

int ttdcap_store(const char *db_path, int mem_fd, const struct ttdcap_run *runs, uint64_t nruns,
		 int64_t *ids, struct ttdcap_result *res)
{
	struct job job = { .mem_fd = mem_fd, .runs = runs, .nruns = nruns };
	struct store st = { .res = res };
	pthread_t threads[ENCODERS];
	int started = 0, ret = -1;

	memset(res, 0, sizeof(*res));
	job.run_first = calloc(nruns + 1, sizeof(*job.run_first));
	job.slots = calloc(RING, sizeof(*job.slots));
	if (!job.run_first || !job.slots) {
		set_error(res, "out of memory");
		goto out;
	}
	for (uint64_t r = 0; r < nruns; r++) {
		if (runs[r].start % PAGE_SIZE || runs[r].end % PAGE_SIZE || runs[r].end <= runs[r].start) {
			set_error(res, "bad run %#llx-%#llx", (unsigned long long)runs[r].start,
				  (unsigned long long)runs[r].end);
			goto out;
		}
		uint64_t pages = (runs[r].end - runs[r].start) / PAGE_SIZE;

		job.run_first[r] = job.nbatches;
		job.nbatches += (pages + BATCH_PAGES - 1) / BATCH_PAGES;
	}
	if (open_store(&st, db_path) < 0)
		goto out;
	pthread_mutex_init(&job.lock, NULL);
	pthread_cond_init(&job.changed, NULL);
	for (; started < ENCODERS; started++) {
		if (pthread_create(&threads[started], NULL, encoder, &job) != 0) {
			set_error(res, "cannot start a thread: %s", strerror(errno));
			break;
		}
	}
	if (started == ENCODERS)
		ret = insert_batches(&job, &st, ids);
	pthread_mutex_lock(&job.lock);
	job.stop = 1;
	pthread_cond_broadcast(&job.changed);
	pthread_mutex_unlock(&job.lock);
	for (int t = 0; t < started; t++)
		pthread_join(threads[t], NULL);
	pthread_cond_destroy(&job.changed);
	pthread_mutex_destroy(&job.lock);
out:
	close_store(&st, ret == 0);
	if (ret == 0 && res->error[0])
		ret = -1; /* the commit failed */
	free(job.run_first);
	free(job.slots);
	return ret;
}
