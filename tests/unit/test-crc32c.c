/*
 * test-crc32c.c - CRC-32C against the published check values, and the
 * CPU-instruction path against the table path and a bit-by-bit reference
 * at every alignment and length around the eight-byte steps.
 */
#include "config.h"

#include <string.h>

#include <glib.h>
#include <imta/crc32c.h>

/* The definition itself, one bit at a time: slow and obviously right. */
static guint32
crc32c_reference(const guchar *p, gsize length)
{
	guint32 crc = 0xFFFFFFFFu;

	while (length-- > 0) {
		crc ^= *p++;
		for (int bit = 0; bit < 8; bit++)
			crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
	}
	return ~crc;
}

static void
check_both(const void *data, gsize length, guint32 want)
{
	g_assert_cmphex(imta_crc32c(0, data, length), ==, want);
	g_assert_cmphex(imta_crc32c_portable(0, data, length), ==, want);
}

/* RFC 3720 B.4 and the usual "123456789" check value. */
static void
test_check_values(void)
{
	guchar buf[32];

	check_both("", 0, 0);
	check_both("123456789", 9, 0xE3069283u);
	memset(buf, 0, sizeof buf);
	check_both(buf, sizeof buf, 0x8A9136AAu);
	memset(buf, 0xFF, sizeof buf);
	check_both(buf, sizeof buf, 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (guchar) i;
	check_both(buf, sizeof buf, 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (guchar) (31 - i);
	check_both(buf, sizeof buf, 0x113FDB5Cu);
}

static void
test_alignments(void)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(3720);
	g_autofree guchar *buf = g_malloc(70000);
	static const gsize long_lengths[] = { 4095, 4096, 65536, 69983 };

	for (gsize i = 0; i < 70000; i++)
		buf[i] = (guchar) g_rand_int_range(rand, 0, 256);
	for (gsize offset = 0; offset < 16; offset++) {
		for (gsize length = 0; length <= 80; length++)
			check_both(buf + offset, length, crc32c_reference(buf + offset, length));
		for (gsize i = 0; i < G_N_ELEMENTS(long_lengths); i++)
			check_both(buf + offset, long_lengths[i],
				   crc32c_reference(buf + offset, long_lengths[i]));
	}
}

/* A CRC taken in pieces equals the CRC of the whole. */
static void
test_continuation(void)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(5);
	guchar buf[1000];

	for (gsize i = 0; i < sizeof buf; i++)
		buf[i] = (guchar) g_rand_int_range(rand, 0, 256);
	guint32 whole = crc32c_reference(buf, sizeof buf);
	for (int round = 0; round < 200; round++) {
		gsize cut = (gsize) g_rand_int_range(rand, 0, sizeof buf + 1);

		g_assert_cmphex(imta_crc32c(imta_crc32c(0, buf, cut), buf + cut, sizeof buf - cut),
				==, whole);
		g_assert_cmphex(imta_crc32c_portable(imta_crc32c_portable(0, buf, cut), buf + cut,
						     sizeof buf - cut), ==, whole);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/crc32c/check-values", test_check_values);
	g_test_add_func("/crc32c/alignments", test_alignments);
	g_test_add_func("/crc32c/continuation", test_continuation);
	return g_test_run();
}
