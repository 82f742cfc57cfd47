/* How a page is stored (snapshotdb/pages.py): codec "zstd" (one frame of the 4096
 * bytes) or "raw" (the bytes). Shared by every store. */
#ifndef TTD_CODEC_H
#define TTD_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <zstd.h>

/* Decode one stored page into dst (PAGE_SIZE bytes): 0, or -1 with what is wrong
 * with the blob in why ("unknown codec 'lz4'", "raw blob of 100 bytes", ...). */
int page_decode(ZSTD_DCtx *dctx, const char *codec, const void *blob, size_t len, uint8_t *dst,
		char *why, size_t why_len);

#endif
