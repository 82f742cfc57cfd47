/*
 * The encoders: worker threads that read the runs of a stopped process's memory in
 * batches (one read of BATCH_PAGES pages) and encode every page of a batch (zero or not,
 * sha256, the stored form) for the one thread that stores them, which takes the batches
 * in address order.
 */
#ifndef TTDCAP_ENCODER_H
#define TTDCAP_ENCODER_H

#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <sys/types.h>

#include "page.h" /* native/pageserver/page.h: PAGE_SIZE, PAGE_DIGEST_SIZE */

#define BATCH_PAGES 256 /* 1 MiB: one read */
#define ENCODERS 2
#define RING (2 * ENCODERS) /* a multiple of ENCODERS: slot b % RING is worker b % ENCODERS's */

struct ttdcap_run {
	uint64_t start, end; /* rec_addr, page-aligned */
};

enum page_kind { KIND_ZERO, KIND_RAW, KIND_ZSTD };

/* One batch: the pages of [addr, addr + npages * PAGE_SIZE) of one run. */
struct batch {
	sem_t empty, full; /* posted by the consumer / by the slot's worker */
	uint64_t addr;	   /* rec_addr */
	uint32_t npages;
	uint8_t raw[BATCH_PAGES * PAGE_SIZE];
	uint8_t kind[BATCH_PAGES];
	uint8_t digest[BATCH_PAGES][PAGE_DIGEST_SIZE]; /* of every page not KIND_ZERO */
	uint8_t check[BATCH_PAGES][PAGE_CHECK_SIZE];   /* its page_check.h, the same pages */
	uint32_t packed_len[BATCH_PAGES];
	uint8_t packed[BATCH_PAGES][PAGE_SIZE]; /* the zstd frame of a KIND_ZSTD page */
};

struct encoders;

struct encoder_worker {
	struct encoders *enc;
	unsigned index;
};

struct encoders {
	int mem_fd;
	pid_t pid;	     /* the process mem_fd is /proc/PID/mem of, or 0 */
	const struct ttdcap_run *runs;
	uint64_t nruns;
	uint64_t *run_first; /* batch index where each run starts */
	uint64_t nbatches;
	uint64_t next;	     /* the batch the consumer takes next */
	int stop;	     /* set by the consumer when it gives up */
	int x16;	     /* hash 16 pages at once (sha256x16) */
	struct batch *slots;
	int ready;	     /* the slots' semaphores are made */
	struct encoder_worker workers[ENCODERS];
	pthread_t threads[ENCODERS];
	int started;
};

/* Start the encoders on the runs (page-aligned, in order); 0, or -1 without memory or
 * threads (encoders_stop() still frees what was made). */
int encoders_start(struct encoders *enc, int mem_fd, const struct ttdcap_run *runs,
		   uint64_t nruns);

/* The next batch in address order, once encoded; NULL after the last. Give it back with
 * encoders_done() before taking the next. */
struct batch *encoders_next(struct encoders *enc);
void encoders_done(struct encoders *enc, struct batch *b);

/* Stop the encoders (where they are) and free everything. */
void encoders_stop(struct encoders *enc);

#endif
