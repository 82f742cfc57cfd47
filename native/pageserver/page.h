/* Sizes every part of the page server shares. */
#ifndef TTD_PAGE_H
#define TTD_PAGE_H

#undef PAGE_SIZE	/* <sys/user.h> has one; ours is unsigned long */
#define PAGE_SIZE 4096UL
#define PAGE_DIGEST_SIZE 32	/* sha256 of the page's 4096 bytes (snapshotdb/pages.py) */
#define PAGE_CHECK_SIZE 16	/* XXH3-128 of the page then its digest, big-endian (pages.py) */
#define TASK_SIZE_MAX 0x7ffffffff000UL
#define MAX_FILL_PAGES 256	/* 1 MiB: the most one UFFDIO_COPY (and one store fetch) fills */

#define page_down(x) ((uint64_t)(x) & ~(PAGE_SIZE - 1))
#define page_up(x) (((uint64_t)(x) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1))

#endif
