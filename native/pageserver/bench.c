/* bench.h: ttd-pageserver-bench's modes. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#define LOG_PREFIX "ttd-pageserver: bench: "
#include "log.h"
#include "bench.h"
#include "fault.h"
#include "page.h"
#include "spec.h"
#include "uffd_compat.h"

#define PAGEMAP_CHUNK (1 << 17)	/* entries per pread */

struct bench {
	int clear_refs_fd;	/* /proc/PID/clear_refs */
	uint64_t *entries;	/* PAGEMAP_CHUNK pagemap entries */
};

int bench_open(struct pager *p, uint32_t mode, struct err *e)
{
	char path[64];

	if (mode != MODE_WORKAROUND)
		return 0;
	p->bench = calloc(1, sizeof(*p->bench));
	if (!p->bench || !(p->bench->entries = malloc(PAGEMAP_CHUNK * sizeof(uint64_t))))
		return err_set(e, ERR_INTERNAL, "out of memory");
	snprintf(path, sizeof(path), "/proc/%d/clear_refs", p->target->pid);
	p->bench->clear_refs_fd = open(path, O_WRONLY | O_CLOEXEC);
	if (p->bench->clear_refs_fd < 0)
		return err_set(e, ERR_INTERNAL, "cannot open %s: %s", path, strerror(errno));
	return 0;
}

/* Per fault: read all of pagemap, UFFDIO_COPY without waking, clear soft-dirty
 * process-wide, wake: the known workaround (DESIGN.md). */
long bench_fault(struct pager *p, struct region *fault_region, uint64_t page, struct err *e)
{
	struct bench *b = p->bench;

	for (uint32_t i = 0; i < p->regions.n; i++) {
		struct region *r = &p->regions.r[i];
		for (uint64_t q = r->target_start; q < r->target_end; q += PAGEMAP_CHUNK * PAGE_SIZE) {
			uint64_t n = (r->target_end - q) / PAGE_SIZE;
			if (n > PAGEMAP_CHUNK)
				n = PAGEMAP_CHUNK;
			if (pread(p->target->pagemap_fd, b->entries, n * 8, q / PAGE_SIZE * 8) < 0)
				return err_set(e, ERR_INTERNAL, "workaround: pagemap read: %s",
					       strerror(errno));
		}
	}
	p->serving_lo = page;
	p->serving_hi = page + PAGE_SIZE;
	if (pager_read_recorded(p, page + fault_region->rec_delta, p->buf, e))
		return -1;
	long done = pager_copy(p, page, page + PAGE_SIZE, UFFDIO_COPY_MODE_DONTWAKE, e);
	p->serving_hi = 0;
	if (done == -1)
		return -1;
	if (pwrite(b->clear_refs_fd, "4", 1, 0) != 1)
		return err_set(e, ERR_INTERNAL, "workaround: write to clear_refs: %s", strerror(errno));
	if (done >= 0 && pager_wake(p, page, PAGE_SIZE, e))
		return -1;
	return page + PAGE_SIZE;
}

int bench_before_ready(struct pager *p, uint32_t mode, struct err *e)
{
	if (mode != MODE_EAGER)
		return 0;
	for (uint32_t i = 0; i < p->regions.n; i++)
		if (pager_fill(p, p->regions.r[i].target_start, p->regions.r[i].target_end, e))
			return -1;
	store_idle(p->store);
	return 0;
}
