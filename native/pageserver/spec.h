/*
 * The spec: what gdb_plugin/remat/client.py sends the page server on its control
 * socket to start one process: struct spec_head, then nr_maps x struct stub_map
 * (layout.h), auxv_size bytes of auxv, nr_threads x (struct spec_thread, then its
 * xstate_size bytes of XSAVE area; the first thread is the thread-group leader)
 * and db_path_size bytes of the recording's path. Host order, packed.
 *
 * The Python side (gdb_plugin/remat/spec.py) is checked against this by
 * `ttd-pageserver --abi` (abi.c), which prints every field's offset and size,
 * the flags, the modes and the mm-field order from the definitions below: change
 * them here, and spec.py's test says what to change there.
 */
#ifndef TTD_SPEC_H
#define TTD_SPEC_H

#include <stdint.h>

#include "err.h"
#include "layout.h"

#define SPEC_MAGIC "TTDSPEC3"
#define SPEC_GPREGS_SIZE 216	/* struct user_regs_struct (snapshotdb/regs.py) */
#define SPEC_FPREGS_SIZE 512	/* struct user_fpregs_struct */

/* spec_head.flags: X(name, value) */
#define SPEC_FLAGS(X) \
	X(SPEC_SANDBOX, 1)		/* install the seccomp sandbox in the process */ \
	X(SPEC_TRACKER_DIFF, 2)		/* force the diff tracker */ \
	X(SPEC_TRACKER_WP_ASYNC, 4)	/* force wp-async; neither: the best the kernel has */

/* spec_head.mode: X(name, value, word); modes but lazy exist in ttd-pageserver-bench only */
#define SPEC_MODES(X) \
	X(MODE_LAZY, 0, lazy)		/* fill on demand: what ttd uses */ \
	X(MODE_EAGER, 1, eager)		/* fill everything before READY */ \
	X(MODE_WORKAROUND, 2, workaround)	/* the soft-dirty workaround per fault */

enum {
#define SPEC_FLAG_ENUM(name, value) name = value,
	SPEC_FLAGS(SPEC_FLAG_ENUM)
#undef SPEC_FLAG_ENUM
};

enum serve_mode {
#define SPEC_MODE_ENUM(name, value, word) name = value,
	SPEC_MODES(SPEC_MODE_ENUM)
#undef SPEC_MODE_ENUM
};

/* X(type, name, array dimension or nothing) */
#define SPEC_HEAD_FIELDS(X) \
	X(char, magic, [8])		/* SPEC_MAGIC */ \
	X(uint64_t, tick, ) \
	X(uint32_t, nr_maps, ) \
	X(uint32_t, auxv_size, ) \
	X(uint32_t, nr_threads, )	/* 1 to STUB_MAX_THREADS */ \
	X(uint32_t, db_path_size, ) \
	X(uint32_t, mode, )		/* enum serve_mode */ \
	X(uint32_t, fault_around_pages, )	/* 1 = no fault-around */ \
	X(uint32_t, flags, )		/* SPEC_FLAGS */ \
	X(uint64_t, mem_margin, )	/* bytes the process may map past the recording's size */ \
	X(uint64_t, mm, [MM_NR])	/* MM_FIELDS order */

/* One recorded thread: its id is reused when free; its name; its registers */
#define SPEC_THREAD_FIELDS(X) \
	X(int32_t, tid, ) \
	X(uint32_t, xstate_size, )	/* bytes of XSAVE area after it; 0: FP/SSE from fpregs */ \
	X(char, name, [STUB_COMM_LEN]) \
	X(uint8_t, gpregs, [SPEC_GPREGS_SIZE]) \
	X(uint8_t, fpregs, [SPEC_FPREGS_SIZE])

#define SPEC_FIELD(type, name, dim) type name dim;
struct spec_head {
	SPEC_HEAD_FIELDS(SPEC_FIELD)
} __attribute__((packed));

struct spec_thread {
	SPEC_THREAD_FIELDS(SPEC_FIELD)
} __attribute__((packed));
#undef SPEC_FIELD

struct spec {
	struct spec_head head;
	struct stub_map *maps;
	uint8_t *auxv;
	struct spec_thread *threads;	/* nr_threads; [0] is the leader */
	uint8_t **xstate;		/* of each thread; NULL when its xstate_size is 0 */
	char *db_path;
};

/* Read nr_maps x struct stub_map from fd into a malloc'd array (NULL on error). */
struct stub_map *spec_read_maps(int fd, uint32_t nr_maps);

/* Read and check the spec from fd: 0, or -1 with the error. */
int spec_read(int fd, struct spec *spec, struct err *e);

#endif
