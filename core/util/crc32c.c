/*
 * crc32c.c - table-driven CRC-32C (reflected polynomial 0x82F63B78), the
 * checksum of iSCSI and ext4 metadata.  GLib has no CRC and zlib is not
 * linked; a byte-wise table is fast enough for journal records, which are
 * bounded by the disk's write speed anyway.
 */
#include "config.h"

#include <glib.h>

#include <imta/crc32c.h>

#define CRC32C_POLY 0x82F63B78u

static guint32 crc32c_table[256];

static gpointer
crc32c_init_table(gpointer unused)
{
	for (guint32 i = 0; i < 256; i++) {
		guint32 crc = i;

		for (int bit = 0; bit < 8; bit++)
			crc = (crc & 1) != 0 ? (crc >> 1) ^ CRC32C_POLY : crc >> 1;
		crc32c_table[i] = crc;
	}
	return NULL;
}

guint32
imta_crc32c(guint32 crc, const void *data, gsize length)
{
	static GOnce once = G_ONCE_INIT;
	const guchar *p = data;

	g_once(&once, crc32c_init_table, NULL);
	crc = ~crc;
	while (length-- > 0)
		crc = crc32c_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}
