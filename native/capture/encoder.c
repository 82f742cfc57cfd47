/*
 * encoder.h: ENCODERS workers read batches of BATCH_PAGES pages (read_batch()) and encode
 * them (zero check, sha256, zstd) into a ring of RING slots, worker k the batches k,
 * k + ENCODERS, ... so that a slot only ever passes between one worker and the consumer,
 * which takes the batches in order: two semaphores per slot, no lock shared by all (a
 * shared lock held by a preempted worker cost the consumer a quarter of its time on
 * 2 CPUs). Memory: the ring (a few MiB), whatever the process's size.
 *
 * Stored form (docs/internals.md): one zstd frame (ZSTD_LEVEL) when smaller than the
 * page, else the bytes; see compressible().
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/sha.h>
#include <zstd.h>

#include "encoder.h"
#include "page_check.h"
#include "sha256x16.h"

/* Level 1: 1.3-1.5x faster than 3 on code and data pages for 1-3% more bytes (measured) */
#define ZSTD_LEVEL 1
#define PROBE_BYTES 256
/* sum of count^2 over the byte values of PROBE_BYTES bytes: 256 + 256 * 255 / 256 = 511 on
 * average for random bytes (standard deviation 23; at most 642 in 65536 random pages,
 * measured), 65536 for one byte repeated; 669 is the random mean + 7 deviations */
#define PROBE_MIN_COLLISIONS 669

static const uint8_t zero_page[PAGE_SIZE];

/* The address and page count of batch b (batches never span two runs). */
static uint64_t batch_span(const struct encoders *enc, uint64_t b, uint32_t *npages)
{
	uint64_t lo = 0, hi = enc->nruns; /* the run whose first batch is the last <= b */

	while (hi - lo > 1) {
		uint64_t mid = (lo + hi) / 2;

		if (enc->run_first[mid] <= b)
			lo = mid;
		else
			hi = mid;
	}
	uint64_t addr = enc->runs[lo].start + (b - enc->run_first[lo]) * BATCH_PAGES * PAGE_SIZE;
	uint64_t left = (enc->runs[lo].end - addr) / PAGE_SIZE;

	*npages = left < BATCH_PAGES ? (uint32_t)left : BATCH_PAGES;
	return addr;
}

/* Read a batch: one process_vm_readv where the descriptor names a process (0.09 s per GiB
 * against 0.16 s for pread of /proc/PID/mem, which takes each page on its own; measured),
 * else, or when it falls short, the descriptor's pread (which reads pages without read
 * permission too). Pages the kernel refuses (a PROT_NONE guard, [vvar], past a file's
 * end) are then read one by one and left as zeros. */
static void read_batch(int mem_fd, pid_t pid, struct batch *s)
{
	size_t len = (size_t)s->npages * PAGE_SIZE;
	struct iovec local = { s->raw, len }, remote = { (void *)(uintptr_t)s->addr, len };

	if (pid > 0 && process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)len)
		return;
	if (pread(mem_fd, s->raw, len, (off_t)s->addr) == (ssize_t)len)
		return;
	for (uint32_t i = 0; i < s->npages; i++) {
		uint8_t *page = s->raw + (size_t)i * PAGE_SIZE;

		if (pread(mem_fd, page, PAGE_SIZE, (off_t)(s->addr + (uint64_t)i * PAGE_SIZE)) != PAGE_SIZE)
			memset(page, 0, PAGE_SIZE);
	}
}

/* The number in the link `path` points to, after `prefix` and before `suffix`, or 0. */
static pid_t pid_in_link(const char *path, const char *prefix, const char *suffix)
{
	char target[64];
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	size_t len = strlen(prefix);
	char *end;

	if (n <= 0)
		return 0;
	target[n] = '\0';
	if (strncmp(target, prefix, len) != 0)
		return 0;
	long pid = strtol(target + len, &end, 10);

	return pid > 0 && end != target + len && strcmp(end, suffix) == 0 ? (pid_t)pid : 0;
}

/* The process whose /proc/PID/mem the descriptor is, or 0 (another file, or a /proc of
 * another pid namespace than ours: its numbers are not the ones process_vm_readv takes).
 * The caller keeps the process stopped under ptrace: it can die but not be reaped, so its
 * pid names no other process meanwhile. */
static pid_t mem_fd_pid(int mem_fd)
{
	char link[64];

	if (pid_in_link("/proc/self", "", "") != getpid())
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", mem_fd);
	return pid_in_link(link, "/proc/", "/mem");
}

/* The digests of the pages listed in `which`: 16 at a time where the CPU can (twice as
 * fast as OpenSSL's one at a time with the SHA instructions: sha256x16.h), else one by one.
 * The same sha256 either way. */
static void hash_pages(int x16, struct batch *s, const uint32_t *which, uint32_t n)
{
	uint32_t i = 0;

	for (; x16 && i < n; i += SHA256X16_LANES) {
		const uint8_t *pages[SHA256X16_LANES];
		uint8_t digests[SHA256X16_LANES][PAGE_DIGEST_SIZE];
		int lanes = n - i < SHA256X16_LANES ? (int)(n - i) : SHA256X16_LANES;

		for (int k = 0; k < lanes; k++)
			pages[k] = s->raw + (size_t)which[i + k] * PAGE_SIZE;
		sha256x16_pages(pages, lanes, digests);
		for (int k = 0; k < lanes; k++)
			memcpy(s->digest[which[i + k]], digests[k], PAGE_DIGEST_SIZE);
	}
	for (; i < n; i++)
		SHA256(s->raw + (size_t)which[i] * PAGE_SIZE, PAGE_SIZE, s->digest[which[i]]);
}

/* Is the page worth a zstd attempt? Its first PROBE_BYTES bytes' values repeat clearly
 * more than random bytes' do. Random or already compressed bytes (encrypted data, media)
 * then cost a histogram of 256 bytes instead of a 4 KiB attempt: zstd spends as long on
 * bytes it cannot compress as on others. Measured on a 97.2 MB dump of a Python process's
 * pages, stored: 40.39 MB (every page tried: 40.29 MB; the 1 KiB zstd probe this replaces:
 * 40.34 MB, at 6 us a page where this takes 0.3 us; a histogram of 1 KiB: 40.31 MB at
 * 0.65 us). A page whose start looks random is stored raw even when the rest would
 * compress. */
static int compressible(const uint8_t *page)
{
	/* four tables: no wait on the previous increment; at most 64 in each */
	uint8_t count[4][256] = { 0 };
	uint32_t collisions = 0;

	for (int i = 0; i < PROBE_BYTES; i += 4) {
		count[0][page[i]]++;
		count[1][page[i + 1]]++;
		count[2][page[i + 2]]++;
		count[3][page[i + 3]]++;
	}
	for (int b = 0; b < 256; b++) {
		uint32_t c = (uint32_t)count[0][b] + count[1][b] + count[2][b] + count[3][b];

		collisions += c * c;
	}
	return collisions >= PROBE_MIN_COLLISIONS;
}

static void encode_batch(ZSTD_CCtx *cctx, int x16, struct batch *s)
{
	uint32_t which[BATCH_PAGES], n = 0;

	for (uint32_t i = 0; i < s->npages; i++) {
		if (memcmp(s->raw + (size_t)i * PAGE_SIZE, zero_page, PAGE_SIZE) == 0)
			s->kind[i] = KIND_ZERO;
		else
			which[n++] = i;
	}
	hash_pages(x16, s, which, n);
	for (uint32_t k = 0; k < n; k++) {
		uint32_t i = which[k];
		const uint8_t *page = s->raw + (size_t)i * PAGE_SIZE;
		size_t len = PAGE_SIZE;

		page_check(page, s->digest[i], s->check[i]);

		if (cctx && compressible(page))
			len = ZSTD_compressCCtx(cctx, s->packed[i], PAGE_SIZE, page, PAGE_SIZE, ZSTD_LEVEL);
		if (!ZSTD_isError(len) && len < PAGE_SIZE) {
			s->kind[i] = KIND_ZSTD;
			s->packed_len[i] = (uint32_t)len;
		} else {
			s->kind[i] = KIND_RAW;
		}
	}
}

static void *encoder(void *arg)
{
	struct encoder_worker *w = arg;
	struct encoders *enc = w->enc;
	ZSTD_CCtx *cctx = ZSTD_createCCtx();

	for (uint64_t b = w->index; b < enc->nbatches; b += ENCODERS) {
		struct batch *s = &enc->slots[b % RING];

		sem_wait(&s->empty);
		if (__atomic_load_n(&enc->stop, __ATOMIC_ACQUIRE))
			break;
		s->addr = batch_span(enc, b, &s->npages);
		read_batch(enc->mem_fd, enc->pid, s);
		encode_batch(cctx, enc->x16, s); /* without a context (no memory): stored raw */
		sem_post(&s->full);
	}
	ZSTD_freeCCtx(cctx);
	return NULL;
}

int encoders_start(struct encoders *enc, int mem_fd, const struct ttdcap_run *runs,
		   uint64_t nruns)
{
	*enc = (struct encoders){ .mem_fd = mem_fd, .pid = mem_fd_pid(mem_fd), .runs = runs,
				   .nruns = nruns };
	enc->run_first = calloc(nruns + 1, sizeof(*enc->run_first));
	enc->slots = calloc(RING, sizeof(*enc->slots));
	if (!enc->run_first || !enc->slots)
		return -1;
	for (uint64_t r = 0; r < nruns; r++) {
		uint64_t pages = (runs[r].end - runs[r].start) / PAGE_SIZE;

		enc->run_first[r] = enc->nbatches;
		enc->nbatches += (pages + BATCH_PAGES - 1) / BATCH_PAGES;
	}
	enc->x16 = sha256x16_available();
	for (int i = 0; i < RING; i++) {
		sem_init(&enc->slots[i].empty, 0, 1);
		sem_init(&enc->slots[i].full, 0, 0);
	}
	enc->ready = 1;
	for (; enc->started < ENCODERS; enc->started++) {
		struct encoder_worker *w = &enc->workers[enc->started];

		*w = (struct encoder_worker){ .enc = enc, .index = enc->started };
		if (pthread_create(&enc->threads[enc->started], NULL, encoder, w) != 0)
			return -1;
	}
	return 0;
}

struct batch *encoders_next(struct encoders *enc)
{
	if (enc->next == enc->nbatches)
		return NULL;
	struct batch *s = &enc->slots[enc->next++ % RING];

	sem_wait(&s->full);
	return s;
}

void encoders_done(struct encoders *enc, struct batch *b)
{
	(void)enc;
	sem_post(&b->empty);
}

void encoders_stop(struct encoders *enc)
{
	if (enc->ready) {
		/* wake workers waiting for a slot the consumer will not give back */
		__atomic_store_n(&enc->stop, 1, __ATOMIC_RELEASE);
		for (int i = 0; i < RING; i++)
			sem_post(&enc->slots[i].empty);
		for (int t = 0; t < enc->started; t++)
			pthread_join(enc->threads[t], NULL);
		for (int i = 0; i < RING; i++) {
			sem_destroy(&enc->slots[i].empty);
			sem_destroy(&enc->slots[i].full);
		}
	}
	free(enc->run_first);
	free(enc->slots);
	*enc = (struct encoders){ 0 };
}
