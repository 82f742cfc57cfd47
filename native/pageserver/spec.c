/* spec.h: reading the spec from the caller. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "spec.h"

#define MAX_FAULT_AROUND 16	/* 64 KiB: laziness is the point */
#define MAX_XSTATE 65536	/* the largest XSAVE area is a few KiB */
#define MAX_DB_PATH 4096

/* len bytes (plus a NUL) from fd, or NULL. */
static void *read_blob(int fd, size_t len)
{
	void *p = calloc(1, len + 1);

	if (p && read_all(fd, p, len)) {
		free(p);
		return NULL;
	}
	return p;
}

/* The threads, each with its XSAVE area. */
static int read_threads(int fd, struct spec *spec, struct err *e)
{
	uint32_t n = spec->head.nr_threads;

	spec->threads = calloc(n, sizeof(*spec->threads));
	spec->xstate = calloc(n, sizeof(*spec->xstate));
	if (!spec->threads || !spec->xstate)
		return err_set(e, ERR_INTERNAL, "out of memory for %u threads", n);
	for (uint32_t i = 0; i < n; i++) {
		struct spec_thread *t = &spec->threads[i];
		if (read_all(fd, t, sizeof(*t)))
			return -1;
		if (t->xstate_size > MAX_XSTATE)
			return err_set(e, ERR_INTERNAL, "ttd-pageserver: bad spec from the caller (%u "
				       "bytes of xstate)", t->xstate_size);
		t->name[STUB_COMM_LEN - 1] = 0;
		if (t->xstate_size && !(spec->xstate[i] = read_blob(fd, t->xstate_size)))
			return -1;
	}
	return 0;
}

int spec_read(int fd, struct spec *spec, struct err *e)
{
	struct spec_head *h = &spec->head;

	if (read_all(fd, h, sizeof(*h)) || memcmp(h->magic, SPEC_MAGIC, 8))
		return err_set(e, ERR_INTERNAL, "ttd-pageserver: bad spec from the caller (version "
			       "mismatch between gdb_plugin/remat/ and native/? run make -C native)");
	if (h->nr_maps > STUB_MAX_MAPS)
		return err_set(e, ERR_INTERNAL, "the recording has %u mappings at tick %" PRIu64
			       "; ttd-stub takes at most %d", h->nr_maps, h->tick, STUB_MAX_MAPS);
	if (h->auxv_size > STUB_MAX_AUXV)
		return err_set(e, ERR_INTERNAL, "the recorded auxv is %u bytes; at most %d are "
			       "supported", h->auxv_size, STUB_MAX_AUXV);
	if (h->nr_threads < 1 || h->nr_threads > STUB_MAX_THREADS)
		return err_set(e, ERR_INTERNAL, "the recording has %u threads at tick %" PRIu64
			       "; ttd-stub takes 1 to %d", h->nr_threads, h->tick, STUB_MAX_THREADS);
	if (h->db_path_size > MAX_DB_PATH)
		return err_set(e, ERR_INTERNAL, "ttd-pageserver: bad spec from the caller (%u bytes "
			       "of path)", h->db_path_size);
	if (h->mode > MODE_WORKAROUND)
		return err_set(e, ERR_INTERNAL, "ttd-pageserver: bad spec from the caller (mode %u)",
			       h->mode);
	if (h->fault_around_pages < 1 || h->fault_around_pages > MAX_FAULT_AROUND)
		h->fault_around_pages = 1;
	spec->maps = spec_read_maps(fd, h->nr_maps);
	spec->auxv = read_blob(fd, h->auxv_size);
	if (!spec->maps || !spec->auxv || read_threads(fd, spec, e))
		return err_set(e, ERR_INTERNAL, "ttd-pageserver: short spec from the caller");
	spec->db_path = read_blob(fd, h->db_path_size);
	if (!spec->db_path)
		return err_set(e, ERR_INTERNAL, "ttd-pageserver: short spec from the caller");
	return 0;
}

struct stub_map *spec_read_maps(int fd, uint32_t nr_maps)
{
	return nr_maps <= STUB_MAX_MAPS ? read_blob(fd, nr_maps * sizeof(struct stub_map)) : NULL;
}
