/* codec.h: decoding a stored page. */
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "page.h"

int page_decode(ZSTD_DCtx *dctx, const char *codec, const void *blob, size_t len, uint8_t *dst,
		char *why, size_t why_len)
{
	if (!codec) {
		snprintf(why, why_len, "no codec");
		return -1;
	}
	if (strcmp(codec, "raw") == 0) {
		if (len != PAGE_SIZE) {
			snprintf(why, why_len, "raw blob of %zu bytes", len);
			return -1;
		}
		memcpy(dst, blob, PAGE_SIZE);
		return 0;
	}
	if (strcmp(codec, "zstd") != 0) {
		snprintf(why, why_len, "unknown codec '%.32s'", codec);
		return -1;
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
