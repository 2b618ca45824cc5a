/*
 * test-xtext.c - RFC 3461 xtext: encoding, strict decoding, and the exact
 * errors for malformed input.
 */
#include "config.h"

#include <string.h>
#include <glib.h>
#include <imta/xtext.h>

static const struct {
	const char *raw;
	const char *xtext;
} encode_cases[] = {
	{ "", "" },
	{ "ann@example.org", "ann@example.org" },
	/* RFC 3461 section 4: '+' and '=' are always encoded. */
	{ "rfc822;ann+list@example.org", "rfc822;ann+2Blist@example.org" },
	{ "a=b", "a+3Db" },
	{ "two words", "two+20words" },
	{ "line\r\nbreak", "line+0D+0Abreak" },
	{ "tab\there", "tab+09here" },
	{ "\x7f", "+7F" },
	{ "caf\xc3\xa9", "caf+C3+A9" },
	{ "~!", "~!" },
	{ "\"quoted local\"@example.com", "\"quoted+20local\"@example.com" },
};

static void
test_encode(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(encode_cases); i++) {
		g_autofree char *got = imta_xtext_encode(encode_cases[i].raw, -1);

		g_assert_cmpstr(got, ==, encode_cases[i].xtext);
	}
}

static void
test_decode(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(encode_cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *got = imta_xtext_decode(encode_cases[i].xtext, -1, NULL, &error);

		g_assert_no_error(error);
		g_assert_cmpstr(got, ==, encode_cases[i].raw);
	}
}

/* Every byte value survives a round trip, and the encoded form never holds
 * a space, a control character or an 8-bit byte. */
static void
test_roundtrip_all_bytes(void)
{
	char raw[256];
	g_autofree char *enc = NULL;
	g_autofree char *dec = NULL;
	g_autoptr(GError) error = NULL;
	gsize len = 0;

	for (guint i = 0; i < 256; i++)
		raw[i] = (char)i;
	enc = imta_xtext_encode(raw, sizeof raw);
	for (const char *p = enc; *p != '\0'; p++)
		g_assert_true(*p > 0x20 && *p < 0x7f);
	g_assert_true(imta_xtext_valid(enc, -1));
	dec = imta_xtext_decode(enc, -1, &len, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(len, ==, sizeof raw);
	g_assert_cmpmem(dec, len, raw, sizeof raw);
}

static const struct {
	const char *xtext;
	const char *message;
} malformed_cases[] = {
	{ "abc+", "malformed xtext at offset 3: \"+\" (expected '+' and two upper-case hex digits)" },
	{ "abc+4", "malformed xtext at offset 3: \"+4\" (expected '+' and two upper-case hex digits)" },
	{ "a+2b", "malformed xtext at offset 1: \"+2b\" (expected '+' and two upper-case hex digits)" },
	{ "+G1x", "malformed xtext at offset 0: \"+G1\" (expected '+' and two upper-case hex digits)" },
	{ "a++41", "malformed xtext at offset 1: \"++4\" (expected '+' and two upper-case hex digits)" },
	{ "two words", "malformed xtext at offset 3: byte 0x20 is not allowed (expected 0x21 to 0x7e)" },
	{ "new\nline", "malformed xtext at offset 3: byte 0x0a is not allowed (expected 0x21 to 0x7e)" },
	{ "caf\xc3\xa9",
	  "malformed xtext at offset 3: byte 0xc3 is not allowed (expected 0x21 to 0x7e)" },
	{ "nul+00", "malformed xtext at offset 3: \"+00\" (a NUL byte) is not allowed here" },
};

static void
test_malformed(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(malformed_cases); i++) {
		g_autoptr(GError) error = NULL;
		char *got = imta_xtext_decode(malformed_cases[i].xtext, -1, NULL, &error);

		g_assert_null(got);
		g_assert_error(error, IMTA_XTEXT_ERROR, IMTA_XTEXT_ERROR_SYNTAX);
		g_assert_cmpstr(error->message, ==, malformed_cases[i].message);
	}
}

static void
test_valid(void)
{
	g_assert_true(imta_xtext_valid("", -1));
	g_assert_true(imta_xtext_valid("a+2Bb", -1));
	g_assert_true(imta_xtext_valid("+00", -1));
	/* A bare '=' is tolerated on input. */
	g_assert_true(imta_xtext_valid("a=b", -1));
	g_assert_false(imta_xtext_valid("a+2b", -1));
	g_assert_false(imta_xtext_valid("a b", -1));
	g_assert_false(imta_xtext_valid("+", -1));
	/* The length bounds the text: "+41" cut after two bytes is malformed. */
	g_assert_false(imta_xtext_valid("+41", 2));
}

/* A NUL is refused by the C-string form and accepted, with its length, by
 * the other. */
static void
test_nul(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *got = NULL;
	gsize len = 0;

	got = imta_xtext_decode("a+00b", -1, &len, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(len, ==, 3);
	g_assert_cmpmem(got, len, "a\0b", 3);
	g_clear_pointer(&got, g_free);
	got = imta_xtext_encode("a\0b", 3);
	g_assert_cmpstr(got, ==, "a+00b");
}

/* Encoding into an existing string appends. */
static void
test_append(void)
{
	g_autoptr(GString) out = g_string_new("rcpt ");

	imta_xtext_append(out, "x y", -1);
	imta_xtext_append(out, "+zzz", 2);
	g_assert_cmpstr(out->str, ==, "rcpt x+20y+2Bz");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/xtext/encode", test_encode);
	g_test_add_func("/xtext/decode", test_decode);
	g_test_add_func("/xtext/roundtrip-all-bytes", test_roundtrip_all_bytes);
	g_test_add_func("/xtext/malformed", test_malformed);
	g_test_add_func("/xtext/valid", test_valid);
	g_test_add_func("/xtext/nul", test_nul);
	g_test_add_func("/xtext/append", test_append);
	return g_test_run();
}
