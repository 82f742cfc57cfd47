/*
 * Moving the kept process from the tick it is served at to another (issue 10),
 * in two requests (ctl.c):
 *
 *   MOVE <tick> <nr_maps> <brk> <ran>  + nr_maps x struct stub_map (tick's layout)
 *       move_plan(): what of the memory map only the process can change (layout.h,
 *       struct stub_apply): mappings that are not registered at their recorded
 *       address (the called code's), mappings missing, extra or protected
 *       otherwise at the new tick, and the program break (when it differs from
 *       the one served, or the process ran code and may have called brk: a break
 *       moved inside one page shows nowhere; with the sandbox on, the page server
 *       sees every brk, so only a process that called it since the last move). The ops go into the stub's image; the answer names the
 *       function to call (0: nothing to call) and its argument.
 *   (the caller, the process's tracer, calls ttd_stub_apply(args) in the process)
 *   MOVED
 *       move_finish(): checks the call's result and that the memory map is the
 *       tick's; registers the new mappings with the userfaultfd; serves the new
 *       tick (pager_set_tick); writes the new tick's bytes into every present page
 *       that differs between the ticks or was written (PAGEMAP_SCAN) or dropped
 *       since the last reset; pages not present are left to fault; then
 *       write-protects what was written, so the next call's writes alone count.
 *
 * Work in proportion to what differs: the pages of the ranges above, the
 * mappings, never the whole address space. The wp-async tracker only (the diff
 * tracker's baselines would all have to move): with diff, MOVE is refused and
 * the caller builds a new process.
 */
#ifndef TTD_MOVE_H
#define TTD_MOVE_H

#include <stdint.h>

#include "err.h"
#include "layout.h"

struct server;

struct move {
	uint64_t brk;			/* the program break at the tick served */
	int pending;			/* planned, MOVED awaited */
	int called;			/* the plan needs ttd_stub_apply() */
	uint64_t tick;			/* the tick moved to */
	uint64_t new_brk;
	struct stub_map *maps;		/* its layout, sorted */
	uint32_t nr_maps;
	struct stub_op *ops;		/* what the stub was asked to do */
	uint32_t nr_ops;
	uint64_t brk_calls;		/* the sandbox's count of brk calls at the last move */
};

/* Plan the move (maps: malloc'd, taken over); *fn and *arg: what to call (fn 0: no
 * call). 0, or -1 with the error (the process is as it was). */
int move_plan(struct server *s, uint64_t tick, struct stub_map *maps, uint32_t nr_maps,
	      uint64_t brk, int ran, uint64_t *fn, uint64_t *arg, struct err *e);

/* Finish the planned move; *json: its counts (malloc'd). 0, or -1 with the error
 * (ERR_INTERNAL: the process is not as the tick had it; the caller gives it up). */
int move_finish(struct server *s, char **json, struct err *e);

#endif
