/* fault.h: serving faults and fills. */
#include <inttypes.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define LOG_PREFIX "ttd-pageserver: fault: "
#include "log.h"
#include "bench.h"
#include "fault.h"
#include "io.h"
#include "page.h"
#include "uffd_compat.h"

int pager_init(struct pager *p, const struct stub_map *maps, uint32_t nr_maps, struct err *e)
{
	p->buf = aligned_alloc(PAGE_SIZE, MAX_FILL_PAGES * PAGE_SIZE);
	if (!p->buf)
		return err_set(e, ERR_INTERNAL, "out of memory for the fill buffer");
	verifier_open(p->verifier, p->store->location, p->tick);	/* the page map, meanwhile */
	return regions_init(&p->regions, maps, nr_maps, e);
}

/* UFFDIO_COPY of [lo, hi) from src: pager_copy()'s results. */
static long copy_from(struct pager *p, const uint8_t *src, uint64_t lo, uint64_t hi,
		      uint64_t mode, struct err *e)
{
	struct uffdio_copy copy = { .dst = lo, .src = (uint64_t)src, .len = hi - lo, .mode = mode };

	if (ioctl(p->target->uffd, UFFDIO_COPY, &copy) == 0)
		return copy.copy;
	/* the real result is in copy.copy: bytes done, or -errno */
	if (copy.copy > 0)
		return copy.copy;
	switch (errno) {
	case EEXIST: return 0;
	case EAGAIN: return COPY_RETRY;
	case ENOENT: return COPY_UNREGISTERED;
	case ESRCH: case ENOSPC: return COPY_GONE;
	}
	return err_set(e, ERR_INTERNAL, "UFFDIO_COPY at 0x%" PRIx64 " (%" PRIu64 " bytes) of process "
		       "%d: %s", lo, hi - lo, p->target->pid, strerror(errno));
}

long pager_copy(struct pager *p, uint64_t lo, uint64_t hi, uint64_t mode, struct err *e)
{
	return copy_from(p, p->buf, lo, hi, mode, e);
}

int pager_wake(struct pager *p, uint64_t lo, uint64_t len, struct err *e)
{
	struct uffdio_range range = { .start = lo, .len = len };

	if (ioctl(p->target->uffd, UFFDIO_WAKE, &range) && errno != ESRCH && errno != ENOSPC)
		return err_set(e, ERR_INTERNAL, "UFFDIO_WAKE at 0x%" PRIx64 " of process %d: %s", lo,
			       p->target->pid, strerror(errno));
	return 0;
}

/* Poison [lo, hi) and wake its waiters; without UFFDIO_POISON, only wake them (the
 * process is being killed; see server_fail()). */
static void poison(struct pager *p, uint64_t lo, uint64_t hi)
{
	struct uffdio_poison poison = { .range = { .start = lo, .len = hi - lo } };
	struct uffdio_range range = { .start = lo, .len = hi - lo };

	if (p->can_poison && ioctl(p->target->uffd, UFFDIO_POISON, &poison) == 0)
		return;
	if (p->can_poison)
		pr_debug("UFFDIO_POISON 0x%" PRIx64 ": %s", lo, strerror(errno));
	ioctl(p->target->uffd, UFFDIO_WAKE, &range);
}

void pager_poison_serving(struct pager *p)
{
	p->failed = 1;
	p->nr_retry = 0;
	if (p->target->uffd >= 0 && p->serving_hi > p->serving_lo)
		poison(p, p->serving_lo, p->serving_hi);
	p->serving_hi = 0;
}

/* Recorded [rec_lo, rec_hi) into dst, verified; zero pages counted. */
static int fetch(struct pager *p, uint64_t rec_lo, uint64_t rec_hi, uint8_t *dst, struct err *e)
{
	uint32_t nr_zero = 0;

	if (fetch_verified(p->verifier, p->store, p->tick, rec_lo, rec_hi, dst, &nr_zero, e))
		return -1;
	p->stats.zero_pages += nr_zero;
	return 0;
}

int pager_read_recorded(void *ctx, uint64_t rec_page, uint8_t *dst, struct err *e)
{
	return fetch(ctx, rec_page, rec_page + PAGE_SIZE, dst, e);
}

/* One zero page: for a removed range (mode 0: written), or for memory the process
 * added to a registered mapping after the tick (the tracker's mode: fresh memory
 * reads as zeros and counts as written once written). Not woken (handle_fault). */
static long serve_zero(struct pager *p, uint64_t page, uint64_t mode, struct err *e)
{
	p->serving_lo = page;
	p->serving_hi = page + PAGE_SIZE;
	memset(p->buf, 0, PAGE_SIZE);
	long done = pager_copy(p, page, page + PAGE_SIZE, mode | UFFDIO_COPY_MODE_DONTWAKE, e);
	if (done == -1)
		return -1;
	p->serving_hi = 0;
	return done;
}

/* The end of the fill for a fault at page of r: its window, up to the first filled page. */
static uint64_t fill_end(struct pager *p, struct region *r, uint64_t page)
{
	uint64_t window = page == p->last_fill_end ? p->fault_around_pages : 1;
	uint64_t hi = page + window * PAGE_SIZE;

	if (hi > r->target_end)
		hi = r->target_end;
	for (uint64_t q = page + PAGE_SIZE; q < hi; q += PAGE_SIZE)
		if (region_page_filled(r, q))
			return q;
	return hi;
}

/*
 * A sequential reader's next windows, prepared on the helper while we install
 * this one and the reader goes through it: its next fault finds them verified.
 */
#define READ_AHEAD_WINDOWS 4

static void read_ahead(struct pager *p, struct region *r, uint64_t target_addr)
{
	uint64_t end = target_addr + READ_AHEAD_WINDOWS * p->fault_around_pages * PAGE_SIZE;

	if (end > r->target_end)
		end = r->target_end;
	verifier_readahead(p->verifier, target_addr + r->rec_delta, end + r->rec_delta);
}

/* Install [page, hi) of r from src (the window, verified), not woken yet: the end of
 * what was installed (page when nothing), or COPY_RETRY, or -1. */
static long install(struct pager *p, struct region *r, const uint8_t *src, uint64_t page,
		    uint64_t hi, struct err *e)
{
	uint64_t mode = p->tracker->ops->copy_mode | UFFDIO_COPY_MODE_DONTWAKE;
	long done = copy_from(p, src, page, hi, mode, e);

	if (done == COPY_UNREGISTERED && hi - page > PAGE_SIZE) {
		/* the window crossed into another mapping (one region, two mappings in
		 * the process: split by mprotect, or mapped apart by a move): the page */
		hi = page + PAGE_SIZE;
		done = copy_from(p, src, page, hi, mode, e);
	}
	if (done == -1)
		return -1;
	p->serving_hi = 0;
	if (done == COPY_RETRY)
		return done;
	hi = done > 0 ? page + done : page;
	if (p->tracker->ops->on_fill(p->tracker, r, page, hi, src, e))
		return -1;
	return hi;
}

/*
 * Fill [page, hi) of r from the recording, not woken yet (handle_fault): install()'s
 * results. A window the helper prepared whole is installed from its slots; any other
 * is fetched into the staging buffer first.
 */
static long fill_from_recording(struct pager *p, struct region *r, uint64_t page, uint64_t hi,
				struct err *e)
{
	uint64_t rec_lo = page + r->rec_delta, rec_hi = hi + r->rec_delta;
	const uint8_t *prepared = hi - page > PAGE_SIZE ?
		verifier_take_prepared(p->verifier, p->tick, rec_lo, rec_hi) : NULL;
	long end;

	p->serving_lo = page;
	p->serving_hi = hi;
	if (!prepared && fetch(p, rec_lo, rec_hi, p->buf, e))
		return -1;	/* serving_hi stays: the caller poisons the range */
	if (hi - page > PAGE_SIZE)
		read_ahead(p, r, hi);
	end = install(p, r, prepared ? prepared : p->buf, page, hi, e);
	if (prepared)
		verifier_release(p->verifier, rec_lo, rec_hi);
	return end;
}

/*
 * Serve one fault: the faulting page and, when access looks sequential (the
 * fault is where the previous fill ended, like file readahead), up to
 * fault_around_pages - 1 unfilled neighbours after it. bench/lazy_fill.py: in
 * order, 16 pages per fault cost a third per page of one page per fault; at
 * random, a window triples the fault's latency for neighbours that may never
 * be touched, so random faults get one page. The end of the range installed
 * (page itself when it was there already), COPY_RETRY or -1; nobody is woken yet.
 */
static long serve_fault(struct pager *p, uint64_t fault_addr, struct err *e)
{
	uint64_t page = page_down(fault_addr);
	struct region *r = region_find(&p->regions, page);
	int dropped = p->regions.nr_removed && regions_page_removed(&p->regions, page);
	long hi;

	if (r && dropped && p->tracker->ops->on_drop(p->tracker, r, page, e))
		return -1;
	if (!r || dropped) {
		/* !r: beyond the recorded mappings, e.g. grown in place by mremap (the
		 * growth inherits the registration); waking without a fill would only
		 * make the access fault again */
		long done = serve_zero(p, page, r ? 0 : p->tracker->ops->copy_mode, e);
		if (done == COPY_RETRY || done == -1)
			return done;
		p->stats.pages_served++;
		return page + PAGE_SIZE;
	}
#ifdef TTD_BENCH
	if (p->bench)
		hi = bench_fault(p, r, page, e);
	else
#endif
		hi = fill_from_recording(p, r, page, fill_end(p, r, page), e);
	if (hi == COPY_RETRY || hi == -1)
		return hi;
	if (region_mark_filled(r, page, hi, e))
		return -1;
	p->last_fill_end = hi;
	p->stats.pages_served += (hi - page) / PAGE_SIZE;
	p->stats.bytes += hi - page;
	return hi;
}

static void record_latency(struct fault_stats *s, uint64_t ns)
{
	if (s->nr_lat == s->cap_lat) {
		size_t cap = s->cap_lat ? s->cap_lat * 2 : 4096;
		uint32_t *more = realloc(s->lat_ns, cap * sizeof(*more));
		if (!more)
			return;	/* statistics only */
		s->lat_ns = more;
		s->cap_lat = cap;
	}
	s->lat_ns[s->nr_lat++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

/*
 * Faults whose fill met a pending event (UFFDIO_COPY: EAGAIN): their readers
 * still wait; they are served again after the next read of the userfaultfd,
 * which delivers the event.
 */
static int fault_later(struct pager *p, uint64_t fault_addr, struct err *e)
{
	if (p->nr_retry == p->cap_retry) {
		size_t cap = p->cap_retry ? 2 * p->cap_retry : 64;
		uint64_t *more = realloc(p->retry, cap * sizeof(*more));
		if (!more)
			return err_set(e, ERR_INTERNAL, "out of memory queueing the fault at 0x%"
				       PRIx64, fault_addr);
		p->retry = more;
		p->cap_retry = cap;
	}
	p->retry[p->nr_retry++] = fault_addr;
	return 0;
}

/*
 * Serve a fault, then wake whoever waits on it. The serve time ends before the
 * wake: on one CPU the woken process runs inside the waking call until it
 * blocks again (its next fault), which is not the page server's time.
 */
static int handle_fault(struct pager *p, uint64_t fault_addr, struct err *e)
{
	uint64_t t0 = now_ns(), page = page_down(fault_addr);
	long hi = serve_fault(p, fault_addr, e);

	if (hi == COPY_RETRY)
		return fault_later(p, fault_addr, e);
	if (hi < 0)
		return -1;
	record_latency(&p->stats, now_ns() - t0);
	p->stats.faults++;
	/* hi == page: it was there already (EEXIST) */
	return pager_wake(p, page, hi > (long)page ? (uint64_t)hi - page : PAGE_SIZE, e);
}

static int handle_event(struct pager *p, const struct uffd_msg *msg, struct err *e)
{
	if (p->failed) {	/* fill nothing more: an error at once for whoever waits */
		if (msg->event == UFFD_EVENT_PAGEFAULT)
			poison(p, page_down(msg->arg.pagefault.address),
			       page_down(msg->arg.pagefault.address) + PAGE_SIZE);
		return 0;
	}
	switch (msg->event) {
	case UFFD_EVENT_PAGEFAULT:
		return handle_fault(p, msg->arg.pagefault.address, e);
	case UFFD_EVENT_REMOVE:
		return regions_note_removed(&p->regions, msg->arg.remove.start, msg->arg.remove.end, e);
	case UFFD_EVENT_REMAP:
		return regions_remap(&p->regions, msg->arg.remap.from, msg->arg.remap.to,
				     msg->arg.remap.len, e);
	case UFFD_EVENT_UNMAP:
		return regions_unmap(&p->regions, msg->arg.remove.start, msg->arg.remove.end, e);
	}
	return 0;
}

/* Read what the userfaultfd has and handle it: the messages read, or -1. */
static ssize_t read_messages(struct pager *p, struct err *e)
{
	struct uffd_msg msgs[64];
	ssize_t n = read(p->target->uffd, msgs, sizeof(msgs));

	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return err_set(e, ERR_INTERNAL, "reading the userfaultfd of process %d: %s",
			       p->target->pid, strerror(errno));
	if (n <= 0)
		return 0;
	if (n % sizeof(msgs[0]))
		return err_set(e, ERR_INTERNAL, "reading the userfaultfd of process %d: a short "
			       "message", p->target->pid);
	n /= sizeof(msgs[0]);
	for (ssize_t i = 0; i < n; i++)
		if (handle_event(p, &msgs[i], e))
			return -1;
	return n;
}

/*
 * Rounds of reading before the serve loop polls again. A process reading its
 * memory faults again as soon as it is woken: on one CPU it runs inside our
 * wake until it blocks on its next fault, so that fault is there to read at
 * once, and a poll before each read would only add a system call. The bound
 * lets the control socket and the sandbox in.
 */
#define READ_ROUNDS 64

int pager_handle_uffd(struct pager *p, struct err *e)
{
	for (int round = 0; round < READ_ROUNDS; round++) {
		ssize_t n = read_messages(p, e);
		if (n < 0)
			return -1;
		/* retry the faults that met an event, now that it has been read */
		size_t pending = p->nr_retry;
		p->nr_retry = 0;
		for (size_t i = 0; i < pending; i++)
			if (handle_fault(p, p->retry[i], e))
				return -1;
		if (n == 0)
			break;
	}
	return 0;
}

/* Fill the unfilled run [q, end) of r, at most MAX_FILL_PAGES at a time: where the
 * next run starts, or COPY_RETRY, COPY_UNREGISTERED, -1. */
static long fill_run(struct pager *p, struct region *r, uint64_t q, uint64_t end, struct err *e)
{
	uint64_t run = q + PAGE_SIZE;

	while (run < end && run - q < MAX_FILL_PAGES * PAGE_SIZE && !region_page_filled(r, run))
		run += PAGE_SIZE;
	if (fetch(p, q + r->rec_delta, run + r->rec_delta, p->buf, e))
		return -1;
	long done = pager_copy(p, q, run, p->tracker->ops->copy_mode, e);
	if (done == COPY_GONE)
		return err_set(e, ERR_GONE, "filling 0x%" PRIx64 " of process %d: it has ended", q,
			       p->target->pid);
	if (done < 0)
		return done;
	/* EEXIST part way: the rest is there already or will fault normally */
	uint64_t filled_to = done > 0 ? q + done : q + PAGE_SIZE;
	if (done > 0 && p->tracker->ops->on_fill(p->tracker, r, q, filled_to, p->buf, e))
		return -1;
	if (region_mark_filled(r, q, filled_to, e))
		return -1;
	p->stats.pages_served += (filled_to - q) / PAGE_SIZE;
	p->stats.bytes += filled_to - q;
	return filled_to;
}

int pager_fill(struct pager *p, uint64_t lo, uint64_t hi, struct err *e)
{
	for (uint32_t i = 0; i < p->regions.n; i++) {
		struct region *r = &p->regions.r[i];
		uint64_t q = lo > r->target_start ? lo : r->target_start;
		uint64_t end = hi < r->target_end ? hi : r->target_end;
		while (q < end) {
			if (region_page_filled(r, q)) {
				q += PAGE_SIZE;
				continue;
			}
			long next = fill_run(p, r, q, end, e);
			if (next == COPY_RETRY) {
				/* read the pending event (it may move regions), then start over:
				 * what is filled already is skipped or refused (EEXIST) */
				if (pager_handle_uffd(p, e))
					return -1;
				return pager_fill(p, lo, hi, e);
			}
			if (next == COPY_UNREGISTERED)
				break;	/* unmapped since the tick: nothing to fill */
			if (next < 0)
				return -1;
			q = next;
		}
	}
	return 0;
}

size_t pager_read_target(struct pager *p, void *dst, uint64_t target_addr, size_t len,
			 struct err *e)
{
	size_t done = 0;

	while (done < len) {
		uint64_t at = target_addr + done;
		size_t n = PAGE_SIZE - (at & (PAGE_SIZE - 1));
		if (n > len - done)
			n = len - done;
		ssize_t got = pread(p->target->mem_fd, (char *)dst + done, n, (off_t)at);
		if (got <= 0 && errno == EIO) {
			uint64_t page = page_down(at);
			/* a dropped page must fault as the process would (zeros): not here */
			if (regions_page_removed(&p->regions, page) ||
			    pager_fill(p, page, page + PAGE_SIZE, e))
				break;
			got = pread(p->target->mem_fd, (char *)dst + done, n, (off_t)at);
		}
		if (got <= 0)
			break;
		done += got;
	}
	return done;
}

struct moving {
	struct pager *p;
	struct range_list *differ;
};

/* A recorded page whose content differs at the new tick: where the process has it. */
static int forget_page(void *ctx, uint64_t rec_addr, struct err *e)
{
	struct moving *m = ctx;
	struct regions *rs = &m->p->regions;

	(void)e;
	for (uint32_t i = 0; i < rs->n; i++) {
		struct region *r = &rs->r[i];
		uint64_t target_addr = rec_addr - r->rec_delta;
		if (target_addr < r->target_start || target_addr >= r->target_end)
			continue;
		region_mark_unfilled(r, target_addr);
		ranges_add(m->differ, target_addr, target_addr + PAGE_SIZE);
	}
	return 0;
}

int pager_set_tick(struct pager *p, uint64_t tick, struct range_list *differ, struct err *e)
{
	struct moving m = { p, differ };

	if (verifier_set_tick(p->verifier, p->store, tick, forget_page, &m, e))
		return -1;
	p->tick = tick;
	p->last_fill_end = 0;
	ranges_normalize(differ);
	return ranges_check(differ, e);
}
