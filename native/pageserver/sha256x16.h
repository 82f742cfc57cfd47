/*
 * sha256 of up to 16 pages at once, one page per 32-bit lane of AVX-512
 * registers: FIPS 180-4 as written, 16 independent messages side by side.
 *
 * Why: OpenSSL hashes one page at a time with the CPU's SHA instructions at
 * 2.1 us a page here (their rounds are sequential within a message); the 16
 * lanes hash 16 pages in about 0.9 us a page (tests/native/test_fault_sha.py
 * compares both, bench/lazy_fill.py's figures come from it). The helper thread
 * uses it for the pages it prepares ahead of a sequential reader, which it
 * must keep pace with. The same digest, as strong: only faster for many pages.
 */
#ifndef TTD_SHA256X16_H
#define TTD_SHA256X16_H

#include <stdint.h>

#include "page.h"

#define SHA256X16_LANES 16

/* The CPU has what sha256x16_pages() needs (AVX-512 F and BW). */
int sha256x16_available(void);

/* The sha256 of n pages (1 <= n <= 16; PAGE_SIZE bytes each) into digests. */
void sha256x16_pages(const uint8_t *const pages[], int n,
		     uint8_t digests[][PAGE_DIGEST_SIZE]);

#endif
