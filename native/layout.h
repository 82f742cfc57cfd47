/*
 * What ttd-pageserver sends ttd-stub over their socket (fd 3 of the stub), and
 * what the stub answers. Both sides are built from this tree, so the format is
 * plain structs in host order.
 *
 *   server -> stub: struct stub_layout, then nr_maps x struct stub_map, then
 *                   auxv_size bytes of auxv, then nr_threads x struct stub_thread
 *                   (the first is the thread-group leader: the stub's own thread),
 *                   then filter_len x struct sock_filter: the sandbox's seccomp
 *                   filter (built with libseccomp by the server:
 *                   pageserver/sandbox_filter.c), none without the sandbox
 *   stub -> server: struct stub_reply; with status 0 it carries the userfaultfd
 *                   and, with sandbox set, the seccomp listener (SCM_RIGHTS), and
 *                   nr_threads x int32_t follow: the id each thread got (the
 *                   recorded one when it was free); otherwise the step that failed
 *                   and its errno
 *
 * Later, while the process is kept and moved between ticks (pageserver/move.c),
 * the server writes a struct stub_apply into the stub's image (the symbol
 * stub_apply_args, through /proc/PID/mem) and whoever traces the process (GDB,
 * through gdbserver) calls ttd_stub_apply(&stub_apply_args) in it: the changes
 * of the memory map only the process itself can make (brk, munmap, mmap,
 * mprotect). The stub's image stays mapped for that.
 */
#ifndef TTD_LAYOUT_H
#define TTD_LAYOUT_H

#include <stdint.h>

#define STUB_MAX_MAPS 8192
#define STUB_MAX_AUXV 1024	/* bytes; the kernel keeps at most AT_VECTOR_SIZE longs */
#define STUB_MAX_FILTER 4096	/* instructions: BPF_MAXINSNS */
#define STUB_MAX_THREADS 1024
#define STUB_SOCK_FD 3
#define STUB_COMM_LEN 16	/* a thread's name with its NUL: TASK_COMM_LEN */

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

/* A recorded thread: its id (taken when free: clone3 set_tid) and its name. */
struct stub_thread {
	int32_t tid;
	char name[STUB_COMM_LEN];
};

struct stub_layout {
	uint32_t nr_maps;
	uint32_t nr_threads;	/* >= 1 */
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
	STEP_RLIMIT, STEP_DROP_PRIVILEGES, STEP_CLONE, STEP_SEND_TIDS,
};

struct stub_reply {
	int32_t step;		/* enum stub_step; STEP_OK with the descriptor attached */
	int32_t err;		/* errno of the failed call */
	uint64_t rec_start;	/* the mapping concerned, for STEP_MMAP/REGISTER */
	uint64_t rec_end;
};

/*
 * What ttd_stub_apply() does in the process, in this order (pageserver/move.c
 * plans it): old = brk(0); when brk < old, brk(brk) (shrinking needs the heap
 * still mapped); the OP_UNMAP ops; when brk > old, brk(brk) (growing needs the
 * room free); the OP_MAP ops (anonymous, private, at their address; the part
 * brk just mapped is only given its protection); the OP_PROTECT ops. Every
 * mapped range gets MADV_NOHUGEPAGE (4 KiB tracking). Stops at the first
 * failure: failed is its index (nr_ops for brk), err its errno.
 */
#define STUB_MAX_OPS 4096

enum stub_op_kind { OP_UNMAP = 1, OP_MAP, OP_PROTECT };

struct stub_op {
	uint32_t kind;		/* enum stub_op_kind */
	uint32_t prot;		/* PROT_*, for OP_MAP and OP_PROTECT */
	uint64_t start, end;	/* page-aligned */
};

struct stub_apply {
	uint64_t brk;		/* the program break to set; 0: leave it */
	uint32_t nr_ops;
	int32_t failed;		/* out: -1, or the op that failed (nr_ops: brk) */
	int64_t err;		/* out: its errno */
	uint64_t old_brk;	/* out: the break before */
	struct stub_op ops[STUB_MAX_OPS];
};

#endif
