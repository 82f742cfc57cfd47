/*
 * What this kernel offers, checked before anything starts: userfaultfd
 * permission and features (probed on a throwaway descriptor: UFFDIO_API may be
 * called once per descriptor) and PAGEMAP_SCAN; and from that the tracker.
 *
 * Testing knobs (environment): TTD_UFFD_FEATURES_MASK=0x... pretends the kernel
 * offers only these userfaultfd features; TTD_NO_PAGEMAP_SCAN=1 pretends
 * PAGEMAP_SCAN is missing.
 */
#ifndef TTD_HOST_H
#define TTD_HOST_H

#include <stdint.h>

#include "err.h"

struct host {
	uint64_t uffd_features;	/* what UFFDIO_API offers */
	char missing[128];	/* what wp-async needs and userfaultfd lacks: "WP_ASYNC ...", or "" */
	int scan_err;		/* PAGEMAP_SCAN works: 0, else the errno it failed with */
	int diff;		/* the tracker: diff (1) or wp-async (0) */
	char fallback[160];	/* why auto chose diff ("UFFD_FEATURE_WP_ASYNC"), or "" */
};

/* Probe the kernel and choose the tracker for the spec's flags: -1 with the error
 * when userfaultfd cannot be used, or wp-async is forced and missing. */
int host_probe(struct host *h, uint32_t spec_flags, struct err *e);

#endif
