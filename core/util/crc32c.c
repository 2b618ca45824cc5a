/*
 * crc32c.c - CRC-32C (reflected polynomial 0x82F63B78), the checksum of
 * iSCSI and ext4 metadata.  Every journal record is checksummed, message
 * content included, so the checksum is on the ingest path: where the CPU
 * has the SSE4.2 crc32 instruction (every x86-64 server since 2008) it is
 * used, eight bytes at a time; elsewhere a byte-wise table does the job.
 * GLib has no CRC and zlib's is CRC-32, not CRC-32C.
 */
#include "config.h"

#include <string.h>

#include <glib.h>

#include <imta/crc32c.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <nmmintrin.h>
#define CRC32C_HAVE_SSE42 1
#endif

#define CRC32C_POLY 0x82F63B78u

enum { CRC32C_UNPICKED, CRC32C_TABLE, CRC32C_SSE42 };

static guint32 crc32c_table[256];

static void
crc32c_init_table(void)
{
	static gsize ready = 0;

	if (!g_once_init_enter(&ready))
		return;
	for (guint32 i = 0; i < 256; i++) {
		guint32 crc = i;

		for (int bit = 0; bit < 8; bit++)
			crc = (crc & 1) != 0 ? (crc >> 1) ^ CRC32C_POLY : crc >> 1;
		crc32c_table[i] = crc;
	}
	g_once_init_leave(&ready, 1);
}

/* The running (inverted) CRC over `length` bytes, one byte at a time. */
static guint32
crc32c_bytes(guint32 crc, const guchar *p, gsize length)
{
	while (length-- > 0)
		crc = crc32c_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#ifdef CRC32C_HAVE_SSE42
__attribute__((target("sse4.2"))) static guint32
crc32c_sse42(guint32 crc, const guchar *p, gsize length)
{
	guint64 wide = crc;

	/* Aligned eight-byte loads after the leading bytes. */
	for (; length > 0 && ((guintptr) p & 7) != 0; length--)
		wide = _mm_crc32_u8((guint32) wide, *p++);
	for (; length >= 8; length -= 8, p += 8) {
		guint64 word;

		memcpy(&word, p, sizeof word);
		wide = _mm_crc32_u64(wide, word);
	}
	for (; length > 0; length--)
		wide = _mm_crc32_u8((guint32) wide, *p++);
	return (guint32) wide;
}
#endif

static gsize
crc32c_pick(void)
{
#ifdef CRC32C_HAVE_SSE42
	if (__builtin_cpu_supports("sse4.2"))
		return CRC32C_SSE42;
#endif
	crc32c_init_table();
	return CRC32C_TABLE;
}

guint32
imta_crc32c(guint32 crc, const void *data, gsize length)
{
	static gsize impl = CRC32C_UNPICKED;

	if (g_once_init_enter(&impl))
		g_once_init_leave(&impl, crc32c_pick());
#ifdef CRC32C_HAVE_SSE42
	if (impl == CRC32C_SSE42)
		return ~crc32c_sse42(~crc, data, length);
#endif
	return ~crc32c_bytes(~crc, data, length);
}

guint32
imta_crc32c_portable(guint32 crc, const void *data, gsize length)
{
	crc32c_init_table();
	return ~crc32c_bytes(~crc, data, length);
}
