/* How a page is stored (snapshotdb/pages.py): codec "zstd" (one frame of the 4096
 * bytes) or "raw" (the bytes). Shared by every store. */
#ifndef TTD_CODEC_H
#define TTD_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <zstd.h>

/* A codec by name; CODEC_UNKNOWN for another name or none. */
enum page_codec { CODEC_UNKNOWN, CODEC_RAW, CODEC_ZSTD };
enum page_codec page_codec_of(const char *name);

/* Decode one stored page into dst (PAGE_SIZE bytes): 0, or -1 with what is wrong
 * with the blob in why ("unknown codec 'lz4'", "raw blob of 100 bytes", ...). */
int page_decode(ZSTD_DCtx *dctx, const char *codec, const void *blob, size_t len, uint8_t *dst,
		char *why, size_t why_len);
/* The same with the codec known (not CODEC_UNKNOWN). */
int page_decode_as(ZSTD_DCtx *dctx, enum page_codec codec, const void *blob, size_t len,
		   uint8_t *dst, char *why, size_t why_len);

#endif
