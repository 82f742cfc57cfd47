/*
 * sha256x16.h: 16 pages hashed side by side with AVX-512.
 *
 * Each 64-byte block of the 16 pages is loaded as 16 rows of 16 words and
 * transposed, so that register t holds word t of every page (lane j: page j);
 * the 64 rounds then run on all lanes at once, with rotates and three-input
 * logic (vprord, vpternlogd). A page is 64 blocks and one padding block (0x80,
 * zeros, the length 32768 bits), the same for every page.
 */
#include <immintrin.h>
#include <string.h>

#include "sha256x16.h"

#define TARGET __attribute__((target("avx512f,avx512bw")))

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t H0[8] = {
	0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

int sha256x16_available(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}

#define ROR(x, n) _mm512_ror_epi32(x, n)
#define XOR3(a, b, c) _mm512_ternarylogic_epi32(a, b, c, 0x96)
#define CH(e, f, g) _mm512_ternarylogic_epi32(e, f, g, 0xCA)	/* e ? f : g */
#define MAJ(a, b, c) _mm512_ternarylogic_epi32(a, b, c, 0xE8)

/* The 128-bit lanes of x[0], x[4], x[8], x[12] (and so on from m) transposed as 4x4. */
TARGET static void transpose_lanes(__m512i *b, __m512i *w, int m)
{
	__m512i t0 = _mm512_shuffle_i32x4(b[m], b[4 + m], 0x44);
	__m512i t1 = _mm512_shuffle_i32x4(b[m], b[4 + m], 0xEE);
	__m512i t2 = _mm512_shuffle_i32x4(b[8 + m], b[12 + m], 0x44);
	__m512i t3 = _mm512_shuffle_i32x4(b[8 + m], b[12 + m], 0xEE);

	w[m] = _mm512_shuffle_i32x4(t0, t2, 0x88);
	w[m + 4] = _mm512_shuffle_i32x4(t0, t2, 0xDD);
	w[m + 8] = _mm512_shuffle_i32x4(t1, t3, 0x88);
	w[m + 12] = _mm512_shuffle_i32x4(t1, t3, 0xDD);
}

/* Block `block` of the 16 pages as w[t] = word t of every page, big-endian decoded. */
TARGET static void load_words(const uint8_t *const pages[16], int block, __m512i w[16])
{
	const __m512i bswap = _mm512_set4_epi32(0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203);
	__m512i r[16], a[16];

	for (int j = 0; j < 16; j++)
		r[j] = _mm512_loadu_si512(pages[j] + block * 64);
	for (int k = 0; k < 8; k++) {	/* dwords of row pairs */
		a[2 * k] = _mm512_unpacklo_epi32(r[2 * k], r[2 * k + 1]);
		a[2 * k + 1] = _mm512_unpackhi_epi32(r[2 * k], r[2 * k + 1]);
	}
	for (int k = 0; k < 4; k++) {	/* qwords of row quads: r[4k+m] has words m, m+4, ... */
		r[4 * k] = _mm512_unpacklo_epi64(a[4 * k], a[4 * k + 2]);
		r[4 * k + 1] = _mm512_unpackhi_epi64(a[4 * k], a[4 * k + 2]);
		r[4 * k + 2] = _mm512_unpacklo_epi64(a[4 * k + 1], a[4 * k + 3]);
		r[4 * k + 3] = _mm512_unpackhi_epi64(a[4 * k + 1], a[4 * k + 3]);
	}
	for (int m = 0; m < 4; m++)
		transpose_lanes(r, w, m);
	for (int t = 0; t < 16; t++)
		w[t] = _mm512_shuffle_epi8(w[t], bswap);
}

/* The padding block of a 4096-byte message, in every lane. */
TARGET static void padding_words(__m512i w[16])
{
	for (int t = 0; t < 16; t++)
		w[t] = _mm512_set1_epi32(t == 0 ? 0x80000000 : t == 15 ? PAGE_SIZE * 8 : 0);
}

/* The 64 rounds of one block on the state st, message words w (consumed). */
TARGET static void rounds(__m512i st[8], __m512i w[16])
{
	__m512i v[8];

	memcpy(v, st, sizeof(v));
	for (int t = 0; t < 64; t++) {
		__m512i x;
		if (t < 16) {
			x = w[t];
		} else {
			__m512i w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15];
			__m512i s0 = XOR3(ROR(w15, 7), ROR(w15, 18), _mm512_srli_epi32(w15, 3));
			__m512i s1 = XOR3(ROR(w2, 17), ROR(w2, 19), _mm512_srli_epi32(w2, 10));
			x = _mm512_add_epi32(_mm512_add_epi32(w[t & 15], s0),
					     _mm512_add_epi32(w[(t - 7) & 15], s1));
			w[t & 15] = x;
		}
		__m512i s1 = XOR3(ROR(v[4], 6), ROR(v[4], 11), ROR(v[4], 25));
		__m512i t1 = _mm512_add_epi32(_mm512_add_epi32(v[7], s1),
					      _mm512_add_epi32(CH(v[4], v[5], v[6]),
							       _mm512_add_epi32(x, _mm512_set1_epi32(K[t]))));
		__m512i s0 = XOR3(ROR(v[0], 2), ROR(v[0], 13), ROR(v[0], 22));
		__m512i t2 = _mm512_add_epi32(s0, MAJ(v[0], v[1], v[2]));
		v[7] = v[6];
		v[6] = v[5];
		v[5] = v[4];
		v[4] = _mm512_add_epi32(v[3], t1);
		v[3] = v[2];
		v[2] = v[1];
		v[1] = v[0];
		v[0] = _mm512_add_epi32(t1, t2);
	}
	for (int i = 0; i < 8; i++)
		st[i] = _mm512_add_epi32(st[i], v[i]);
}

TARGET void sha256x16_pages(const uint8_t *const pages[], int n,
			    uint8_t digests[][PAGE_DIGEST_SIZE])
{
	const uint8_t *lanes[16];
	uint32_t words[8][16];
	__m512i st[8], w[16];

	for (int j = 0; j < 16; j++)	/* unused lanes hash the first page again */
		lanes[j] = pages[j < n ? j : 0];
	for (int i = 0; i < 8; i++)
		st[i] = _mm512_set1_epi32(H0[i]);
	for (int block = 0; block < (int)(PAGE_SIZE / 64); block++) {
		load_words(lanes, block, w);
		rounds(st, w);
	}
	padding_words(w);
	rounds(st, w);
	for (int i = 0; i < 8; i++)
		_mm512_storeu_si512(words[i], st[i]);
	for (int j = 0; j < n; j++)
		for (int i = 0; i < 8; i++) {
			uint32_t x = words[i][j];
			digests[j][4 * i] = x >> 24;
			digests[j][4 * i + 1] = x >> 16;
			digests[j][4 * i + 2] = x >> 8;
			digests[j][4 * i + 3] = x;
		}
}
