/* host.h: what this kernel offers, and the tracker. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "host.h"
#include "page.h"
#include "spec.h"
#include "uffd_compat.h"

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

/* A userfaultfd the way the stub makes one: syscall first, /dev/userfaultfd second. */
static int open_uffd(void)
{
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd >= 0 || (errno != EPERM && errno != EACCES))
		return fd;
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		errno = EPERM;
		return -1;
	}
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	close(dev);
	return fd;
}

static int probe_uffd_features(struct host *h, struct err *e)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	const char *mask = getenv("TTD_UFFD_FEATURES_MASK");
	int fd = open_uffd();

	if (fd < 0 && (errno == EPERM || errno == EACCES))
		return err_set(e, ERR_INTERNAL, "no permission for userfaultfd: run as root or with "
			       "CAP_SYS_PTRACE, or set sysctl vm.unprivileged_userfaultfd=1, or give "
			       "this user read-write access to /dev/userfaultfd");
	if (fd < 0)
		return err_set(e, ERR_INTERNAL, "userfaultfd is not available (%s): ttd needs a "
			       "kernel built with CONFIG_USERFAULTFD, Linux 6.7 or newer",
			       strerror(errno));
	if (ioctl(fd, UFFDIO_API, &api) || api.api != UFFD_API) {
		int err = errno;
		close(fd);
		return err_set(e, ERR_INTERNAL, "userfaultfd API handshake failed (%s)", strerror(err));
	}
	close(fd);
	if (mask)
		api.features &= strtoull(mask, NULL, 0);	/* testing knob */
	h->uffd_features = api.features;
	h->missing[0] = 0;
	if (!(api.features & UFFD_FEATURE_WP_ASYNC))
		strcat(h->missing, " WP_ASYNC");
	if (!(api.features & UFFD_FEATURE_WP_UNPOPULATED))
		strcat(h->missing, " WP_UNPOPULATED");
	if (h->missing[0])
		memmove(h->missing, h->missing + 1, strlen(h->missing));
	return 0;
}

/* PAGEMAP_SCAN works: 0, or the errno it failed with. */
static int probe_pagemap_scan(void)
{
	static char probe_page[PAGE_SIZE] __attribute__((aligned(4096)));
	struct page_region vec[4];
	struct pm_scan_arg arg = {
		.size = sizeof(arg), .start = (uint64_t)probe_page,
		.end = (uint64_t)probe_page + PAGE_SIZE, .vec = (uint64_t)vec, .vec_len = 4,
		.category_mask = PAGE_IS_PRESENT, .return_mask = PAGE_IS_PRESENT,
	};
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	long ret = fd < 0 ? -1 : ioctl(fd, PAGEMAP_SCAN, &arg);
	int err = errno;
	const char *knob = getenv("TTD_NO_PAGEMAP_SCAN");

	if (fd >= 0)
		close(fd);
	if (knob && strcmp(knob, "1") == 0) {
		ret = -1;	/* testing knob */
		err = ENOTTY;
	}
	return ret < 0 ? err : 0;
}

/* wp-async when the kernel has what it needs (or when forced: then its lack is the
 * error), else the diff tracker; fallback names what made auto fall back. */
int host_probe(struct host *h, uint32_t spec_flags, struct err *e)
{
	if (probe_uffd_features(h, e))
		return -1;
	h->scan_err = probe_pagemap_scan();
	if (spec_flags & SPEC_TRACKER_WP_ASYNC) {
		if (h->missing[0])
			return err_set(e, ERR_INTERNAL, "this kernel's userfaultfd lacks %s: the "
				       "wp-async tracker needs Linux 6.7 or newer (the diff tracker "
				       "works without it)", h->missing);
		if (h->scan_err)
			return err_set(e, ERR_INTERNAL, "this kernel lacks the PAGEMAP_SCAN ioctl (%s): "
				       "the wp-async tracker needs Linux 6.7 or newer (the diff "
				       "tracker works without it)", strerror(h->scan_err));
	}
	h->diff = (spec_flags & SPEC_TRACKER_DIFF) || h->missing[0] || h->scan_err;
	h->fallback[0] = 0;
	if (h->diff && !(spec_flags & SPEC_TRACKER_DIFF)) {
		if (h->missing[0])	/* the first one it lacks: WP_ASYNC, else WP_UNPOPULATED */
			snprintf(h->fallback, sizeof(h->fallback), "UFFD_FEATURE_%.*s",
				 (int)strcspn(h->missing, " "), h->missing);
		else
			snprintf(h->fallback, sizeof(h->fallback), "the PAGEMAP_SCAN ioctl");
	}
	return 0;
}
