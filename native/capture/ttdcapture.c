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
 *                               frame (ZSTD_LEVEL) when smaller, codec 'zstd', else the
 *                               bytes, codec 'raw' (docs/internals.md; see compressible())
 *   id != PREV's                a page_version row (address, TICK, id or NULL)
 *
 * It returns a blob: u64 contents inserted, u64 versions written, then the i64 id of every
 * page. Errors are SQL errors (SQLITE_FULL for a full disk); the caller's transaction
 * decides. The function may only be called directly (SQLITE_DIRECTONLY), never from a
 * trigger or view of a database.
 *
 * Threads: ENCODERS workers read batches of BATCH_PAGES pages (pread) and encode them (zero
 * check, SHA256, ZSTD) into a ring of RING slots, worker k the batches k, k + ENCODERS, ...
 * so that a slot only ever passes between one worker and the calling thread, which inserts
 * the batches in order: two semaphores per slot, no lock shared by all (a shared lock held
 * by a preempted worker cost the inserter a quarter of its time on 2 CPUs). Memory: the
 * ring (a few MiB), whatever the process's size.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/sha.h>
#include <sqlite3ext.h>
#include <zstd.h>

SQLITE_EXTENSION_INIT1

#define PAGE_SIZE 4096
#define BATCH_PAGES 256 /* 1 MiB: one pread */
#define ENCODERS 2
#define RING (2 * ENCODERS) /* a multiple of ENCODERS: slot b % RING is worker b % ENCODERS's */
/* Level 1: 1.3-1.5x faster than 3 on code and data pages for 1-3% more bytes (measured) */
#define ZSTD_LEVEL 1
#define PROBE_BYTES 1024
#define PROBE_GAIN_BYTES 24 /* a random KiB comes out 1033 bytes long */

struct ttdcap_run {
	uint64_t start, end; /* rec_addr, page-aligned */
};

struct slot {
	sem_t empty, full;	     /* posted by the inserter / by the slot's worker */
	uint32_t npages;
	uint8_t raw[BATCH_PAGES * PAGE_SIZE];
	uint8_t kind[BATCH_PAGES];   /* KIND_ZERO, KIND_RAW, KIND_ZSTD */
	uint8_t digest[BATCH_PAGES][SHA256_DIGEST_LENGTH];
	uint32_t packed_len[BATCH_PAGES];
	uint8_t packed[BATCH_PAGES][PAGE_SIZE];
};

enum { KIND_ZERO, KIND_RAW, KIND_ZSTD };

struct job {
	int mem_fd;
	const struct ttdcap_run *runs;
	uint64_t nruns;
	uint64_t *run_first;  /* batch index where each run starts */
	uint64_t nbatches;
	int stop;	      /* set by the inserter when it gives up */
	struct slot *slots;
};

struct worker {
	struct job *job;
	unsigned index;
};

static const uint8_t zero_page[PAGE_SIZE];

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

/* Does the page's first PROBE_BYTES compress by PROBE_GAIN_BYTES at least? Random or
 * already compressed bytes (encrypted data, media) then cost a 1 KiB attempt instead of a
 * 4 KiB one: zstd spends as long on bytes it cannot compress as on others. A page whose
 * first KiB does not compress is stored raw even when the rest would. */
static int compressible(ZSTD_CCtx *cctx, uint8_t *scratch, const uint8_t *page)
{
	size_t n = ZSTD_compressCCtx(cctx, scratch, PAGE_SIZE, page, PROBE_BYTES, ZSTD_LEVEL);

	return !ZSTD_isError(n) && n + PROBE_GAIN_BYTES <= PROBE_BYTES;
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
		size_t n = PAGE_SIZE;
		if (cctx && compressible(cctx, s->packed[i], page))
			n = ZSTD_compressCCtx(cctx, s->packed[i], PAGE_SIZE, page, PAGE_SIZE, ZSTD_LEVEL);
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
	struct worker *w = arg;
	struct job *job = w->job;
	ZSTD_CCtx *cctx = ZSTD_createCCtx();

	for (uint64_t b = w->index; b < job->nbatches; b += ENCODERS) {
		struct slot *s = &job->slots[b % RING];

		sem_wait(&s->empty);
		if (__atomic_load_n(&job->stop, __ATOMIC_ACQUIRE))
			break;
		uint64_t addr = batch_span(job, b, &s->npages);
		read_batch(job->mem_fd, addr, s);
		encode_batch(cctx, s); /* without a context (no memory): stored raw */
		sem_post(&s->full);
	}
	ZSTD_freeCCtx(cctx);
	return NULL;
}

struct store {
	sqlite3 *db;
	sqlite3_stmt *insert, *lookup, *version;
	int64_t tick;
	uint64_t contents_inserted, versions_written;
};

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
		return rc;
	if (sqlite3_changes(st->db) == 1) {
		*id = sqlite3_last_insert_rowid(st->db);
		st->contents_inserted++;
		return SQLITE_OK;
	}
	sqlite3_bind_blob(st->lookup, 1, s->digest[i], SHA256_DIGEST_LENGTH, SQLITE_STATIC);
	rc = sqlite3_step(st->lookup);
	*id = rc == SQLITE_ROW ? sqlite3_column_int64(st->lookup, 0) : 0;
	sqlite3_reset(st->lookup);
	return rc == SQLITE_ROW ? SQLITE_OK : (rc == SQLITE_DONE ? SQLITE_CORRUPT : rc);
}

static int add_version(struct store *st, uint64_t addr, int64_t id)
{
	sqlite3_bind_int64(st->version, 1, (sqlite3_int64)addr);
	sqlite3_bind_int64(st->version, 2, st->tick);
	if (id)
		sqlite3_bind_int64(st->version, 3, id);
	else
		sqlite3_bind_null(st->version, 3);
	int rc = sqlite3_step(st->version);
	sqlite3_reset(st->version);
	st->versions_written++;
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int prepare(struct store *st)
{
	static const char *const sql[] = {
		"INSERT OR IGNORE INTO page_content (digest, codec, data) VALUES (?, ?, ?)",
		"SELECT id FROM page_content WHERE digest = ?",
		"INSERT INTO page_version (address, first_tick, content_id) VALUES (?, ?, ?)",
	};
	sqlite3_stmt **stmt[] = { &st->insert, &st->lookup, &st->version };

	for (int i = 0; i < 3; i++) {
		int rc = sqlite3_prepare_v2(st->db, sql[i], -1, stmt[i], NULL);
		if (rc != SQLITE_OK)
			return rc;
	}
	return SQLITE_OK;
}

/* Insert the batches in order as the encoders fill them; ids[] gets every page's id. */
static int insert_batches(struct job *job, struct store *st, const int64_t *prev, int64_t *ids)
{
	uint64_t page = 0;

	for (uint64_t b = 0; b < job->nbatches; b++) {
		struct slot *s = &job->slots[b % RING];
		uint32_t npages;
		uint64_t addr = batch_span(job, b, &npages);

		sem_wait(&s->full);

		for (uint32_t i = 0; i < s->npages; i++, page++) {
			int rc = SQLITE_OK;

			ids[page] = 0;
			if (s->kind[i] != KIND_ZERO)
				rc = content_id(st, s, i, &ids[page]);
			if (rc == SQLITE_OK && ids[page] != prev[page])
				rc = add_version(st, addr + (uint64_t)i * PAGE_SIZE, ids[page]);
			if (rc != SQLITE_OK)
				return rc;
		}

		sem_post(&s->empty);
	}
	return SQLITE_OK;
}

/* Run the encoders and insert what they make; an SQLite result code. */
static int run_job(struct job *job, struct store *st, const int64_t *prev, int64_t *ids)
{
	pthread_t threads[ENCODERS];
	struct worker workers[ENCODERS];
	int started = 0, rc = SQLITE_NOMEM;

	for (int i = 0; i < RING; i++) {
		sem_init(&job->slots[i].empty, 0, 1);
		sem_init(&job->slots[i].full, 0, 0);
	}
	for (; started < ENCODERS; started++) {
		workers[started] = (struct worker){ .job = job, .index = started };
		if (pthread_create(&threads[started], NULL, encoder, &workers[started]) != 0)
			break;
	}
	if (started == ENCODERS)
		rc = insert_batches(job, st, prev, ids);
	/* wake workers waiting for a slot the inserter will not give back */
	__atomic_store_n(&job->stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < RING; i++)
		sem_post(&job->slots[i].empty);
	for (int t = 0; t < started; t++)
		pthread_join(threads[t], NULL);
	for (int i = 0; i < RING; i++) {
		sem_destroy(&job->slots[i].empty);
		sem_destroy(&job->slots[i].full);
	}
	return rc;
}

/* ttd_store_pages(MEM_FD, RUNS, PREV, TICK): see the head of this file. */
static void store_pages(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	struct job job = { .mem_fd = sqlite3_value_int(argv[0]) };
	struct store st = { .db = sqlite3_context_db_handle(ctx), .tick = sqlite3_value_int64(argv[3]) };
	const int64_t *prev = sqlite3_value_blob(argv[2]);
	uint64_t npages = 0;
	int64_t *out = NULL;
	int rc = SQLITE_NOMEM;

	job.nruns = (uint64_t)sqlite3_value_bytes(argv[1]) / sizeof(struct ttdcap_run);
	job.runs = sqlite3_value_blob(argv[1]);
	for (uint64_t r = 0; r < job.nruns; r++) {
		if (job.runs[r].start % PAGE_SIZE || job.runs[r].end % PAGE_SIZE ||
		    job.runs[r].end <= job.runs[r].start) {
			sqlite3_result_error(ctx, "ttd_store_pages: a run is not page-aligned", -1);
			return;
		}
		npages += (job.runs[r].end - job.runs[r].start) / PAGE_SIZE;
	}
	if ((uint64_t)sqlite3_value_bytes(argv[2]) != npages * sizeof(int64_t)) {
		sqlite3_result_error(ctx, "ttd_store_pages: PREV does not have one id per page", -1);
		return;
	}
	job.run_first = calloc(job.nruns + 1, sizeof(*job.run_first));
	job.slots = calloc(RING, sizeof(*job.slots));
	out = malloc((npages + 2) * sizeof(int64_t));
	if (!job.run_first || !job.slots || !out)
		goto out;
	for (uint64_t r = 0; r < job.nruns; r++) {
		uint64_t pages = (job.runs[r].end - job.runs[r].start) / PAGE_SIZE;

		job.run_first[r] = job.nbatches;
		job.nbatches += (pages + BATCH_PAGES - 1) / BATCH_PAGES;
	}
	rc = prepare(&st);
	if (rc == SQLITE_OK)
		rc = run_job(&job, &st, prev, out + 2);
out:
	sqlite3_finalize(st.insert);
	sqlite3_finalize(st.lookup);
	sqlite3_finalize(st.version);
	if (rc == SQLITE_OK) {
		out[0] = (int64_t)st.contents_inserted;
		out[1] = (int64_t)st.versions_written;
		sqlite3_result_blob64(ctx, out, (npages + 2) * sizeof(int64_t), free);
		out = NULL;
	} else if (rc == SQLITE_NOMEM) {
		sqlite3_result_error_nomem(ctx);
	} else {
		sqlite3_result_error(ctx, sqlite3_errmsg(st.db), -1);
		sqlite3_result_error_code(ctx, rc);
	}
	free(out);
	free(job.run_first);
	free(job.slots);
}

int sqlite3_ttdcapture_init(sqlite3 *db, char **errmsg, const sqlite3_api_routines *api)
{
	SQLITE_EXTENSION_INIT2(api);
	return sqlite3_create_function(db, "ttd_store_pages", 4, SQLITE_UTF8 | SQLITE_DIRECTONLY,
				       NULL, store_pages, NULL, NULL);
}
