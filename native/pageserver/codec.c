/* codec.h: decoding a stored page. */
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "page.h"

enum page_codec page_codec_of(const char *name)
{
	if (name && strcmp(name, "raw") == 0)
		return CODEC_RAW;
	if (name && strcmp(name, "zstd") == 0)
		return CODEC_ZSTD;
	return CODEC_UNKNOWN;
}

int page_decode(ZSTD_DCtx *dctx, const char *codec, const void *blob, size_t len, uint8_t *dst,
		char *why, size_t why_len)
{
	if (!codec) {
		snprintf(why, why_len, "no codec");
		return -1;
	}
	if (page_codec_of(codec) == CODEC_UNKNOWN) {
		snprintf(why, why_len, "unknown codec '%.32s'", codec);
		return -1;
	}
	return page_decode_as(dctx, page_codec_of(codec), blob, len, dst, why, why_len);
}

int page_decode_as(ZSTD_DCtx *dctx, enum page_codec codec, const void *blob, size_t len,
		   uint8_t *dst, char *why, size_t why_len)
{
	if (codec == CODEC_RAW) {
		if (len != PAGE_SIZE) {
			snprintf(why, why_len, "raw blob of %zu bytes", len);
			return -1;
		}
		memcpy(dst, blob, PAGE_SIZE);
		return 0;
	}
	size_t n = ZSTD_decompressDCtx(dctx, dst, PAGE_SIZE, blob, len);
	if (ZSTD_isError(n)) {
		snprintf(why, why_len, "zstd blob of %zu bytes: %s", len, ZSTD_getErrorName(n));
		return -1;
	}
	if (n != PAGE_SIZE) {
		snprintf(why, why_len, "zstd blob of %zu bytes decodes to %zu bytes", len, n);
		return -1;
	}
	return 0;
}
