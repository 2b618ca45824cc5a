/*
 * test-number.c - b%v integers, ISO 8601 durations and byte sizes.
 */
#include "config.h"

#include <glib.h>
#include <imta/number.h>

typedef struct {
	const char *text;
	gboolean ok;
	gint64 value;
} NumberRow;

static void
test_int(void)
{
	static const NumberRow rows[] = {
		{ "0", TRUE, 0 }, { "42", TRUE, 42 }, { "-1", TRUE, -1 }, { "+7", TRUE, 7 },
		{ "16%1000000", TRUE, 0x1000000 }, { "8%777", TRUE, 511 }, { "2%1010", TRUE, 10 },
		{ "36%zz", TRUE, 1295 }, { "16%FFFFFFFF", TRUE, 0xFFFFFFFFLL }, { "-16%10", TRUE, -16 },
		{ "9223372036854775807", TRUE, G_MAXINT64 },
		{ "-9223372036854775808", TRUE, G_MININT64 },
		{ "9223372036854775808", FALSE, 0 }, { "", FALSE, 0 }, { "-", FALSE, 0 },
		{ "12a", FALSE, 0 }, { " 1", FALSE, 0 }, { "1%1", FALSE, 0 }, { "37%1", FALSE, 0 },
		{ "8%9", FALSE, 0 }, { "%10", FALSE, 0 }, { "16%", FALSE, 0 }, { "1.5", FALSE, 0 },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		gint64 value = -12345;
		const char *why = NULL;
		gboolean ok = imta_parse_int(rows[i].text, &value, &why);

		g_test_message("int \"%s\"", rows[i].text);
		g_assert_cmpint(ok, ==, rows[i].ok);
		if (ok)
			g_assert_cmpint(value, ==, rows[i].value);
		else
			g_assert_nonnull(why);
	}
}

static void
test_duration(void)
{
	static const NumberRow rows[] = {
		{ "PT5M", TRUE, 300 }, { "pt30m", TRUE, 1800 }, { "\"pt2h\"", TRUE, 7200 },
		{ "P1D", TRUE, 86400 }, { "P1W", TRUE, 604800 }, { "P1DT12H", TRUE, 129600 },
		{ "PT1H30M15S", TRUE, 5415 }, { "P2DT0S", TRUE, 172800 },
		{ "P", FALSE, 0 }, { "PT", FALSE, 0 }, { "P1M", FALSE, 0 }, { "P1Y", FALSE, 0 },
		{ "T5M", FALSE, 0 }, { "PT5", FALSE, 0 }, { "PT5X", FALSE, 0 }, { "P5H", FALSE, 0 },
		{ "PTT5M", FALSE, 0 }, { "\"PT5M", FALSE, 0 }, { "", FALSE, 0 },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		gint64 value = -1;
		gboolean ok = imta_parse_duration(rows[i].text, &value, NULL);

		g_test_message("duration \"%s\"", rows[i].text);
		g_assert_cmpint(ok, ==, rows[i].ok);
		if (ok)
			g_assert_cmpint(value, ==, rows[i].value);
	}
}

static void
test_size(void)
{
	static const NumberRow rows[] = {
		{ "0", TRUE, 0 }, { "1024", TRUE, 1024 }, { "10K", TRUE, 10240 },
		{ "10M", TRUE, 10485760 }, { "2g", TRUE, 2147483648LL }, { "-1", TRUE, -1 },
		{ "-2", TRUE, -2 }, { "4096G", TRUE, 4398046511104LL }, { "K", FALSE, 0 },
		{ "10T", FALSE, 0 }, { "", FALSE, 0 }, { "9223372036854775807G", FALSE, 0 },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		gint64 value = -99;
		gboolean ok = imta_parse_size(rows[i].text, &value, NULL);

		g_test_message("size \"%s\"", rows[i].text);
		g_assert_cmpint(ok, ==, rows[i].ok);
		if (ok)
			g_assert_cmpint(value, ==, rows[i].value);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/number/int", test_int);
	g_test_add_func("/number/duration", test_duration);
	g_test_add_func("/number/size", test_size);
	return g_test_run();
}
