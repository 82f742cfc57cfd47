/*
 * What ttd-pageserver sends ttd-stub over their socket (fd 3 of the stub), and
 * what the stub answers. Both sides are built from this tree, so the format is
 * plain structs in host order.
 *
 *   server -> stub: struct stub_layout, then nr_maps x struct stub_map, then
 *                   auxv_size bytes of auxv, then filter_len x struct sock_filter:
 *                   the sandbox's seccomp filter (built with libseccomp by the
 *                   server: pageserver/sandbox_filter.c), none without the sandbox
 *   stub -> server: struct stub_reply; with status 0 it carries the userfaultfd
 *                   and, with sandbox set, the seccomp listener (SCM_RIGHTS),
 *                   otherwise the step that failed and its errno
 */
#ifndef TTD_LAYOUT_H
#define TTD_LAYOUT_H

#include <stdint.h>

#define STUB_MAX_MAPS 8192
#define STUB_MAX_AUXV 1024	/* bytes; the kernel keeps at most AT_VECTOR_SIZE longs */
#define STUB_MAX_FILTER 4096	/* instructions: BPF_MAXINSNS */
#define STUB_SOCK_FD 3

/*
 * The mm fields, in the order of struct prctl_mm_map and of the spec's mm[]
 * (gdb_plugin/remat/spec.py reads this order from `ttd-pageserver --abi`):
 * X(enum name, snapshot column).
 */
#define MM_FIELDS(X) \
	X(MM_START_CODE, start_code) X(MM_END_CODE, end_code) \
	X(MM_START_DATA, start_data) X(MM_END_DATA, end_data) \
	X(MM_START_BRK, start_brk) X(MM_BRK, brk) X(MM_START_STACK, start_stack) \
	X(MM_ARG_START, arg_start) X(MM_ARG_END, arg_end) \
	X(MM_ENV_START, env_start) X(MM_ENV_END, env_end)

enum {
#define MM_ENUM(name, column) name,
	MM_FIELDS(MM_ENUM)
#undef MM_ENUM
	MM_NR
};

/* X(type, name): struct stub_map, also sent by gdb_plugin/remat/ in the spec */
#define STUB_MAP_FIELDS(X) \
	X(uint64_t, rec_start) \
	X(uint64_t, rec_end) \
	X(uint32_t, prot)		/* PROT_* */ \
	X(uint32_t, register_uffd)	/* 1: register with the userfaultfd */

struct stub_map {
#define STUB_MAP_FIELD(type, name) type name;
	STUB_MAP_FIELDS(STUB_MAP_FIELD)
#undef STUB_MAP_FIELD
};

struct stub_layout {
	uint32_t nr_maps;
	uint32_t auxv_size;
	uint64_t uffd_features;	/* requested in UFFDIO_API */
	uint64_t mm[MM_NR];
	uint32_t filter_len;	/* > 0: install the seccomp filter that follows, send its listener */
	uint32_t register_wp;	/* 1: register MISSING|WP (wp-async tracker); 0: MISSING only (diff) */
	uint64_t as_limit;	/* bytes: RLIMIT_AS and RLIMIT_DATA before the called code runs */
	uint32_t run_uid;	/* with the sandbox: the ids it runs the called code as; */
	uint32_t run_gid;	/* (uint32_t)-1: keep them (not root) */
};

enum stub_step {
	STEP_OK, STEP_READ_LAYOUT, STEP_UNMAP, STEP_MMAP, STEP_MADVISE, STEP_USERFAULTFD,
	STEP_UFFDIO_API, STEP_UFFDIO_REGISTER, STEP_PR_SET_MM_MAP, STEP_SEND_UFFD, STEP_SECCOMP,
	STEP_RLIMIT, STEP_DROP_PRIVILEGES,
};

struct stub_reply {
	int32_t step;		/* enum stub_step; STEP_OK with the descriptor attached */
	int32_t err;		/* errno of the failed call */
	uint64_t rec_start;	/* the mapping concerned, for STEP_MMAP/REGISTER */
	uint64_t rec_end;
};

#endif
