/*
 * xtext.c - RFC 3461 xtext encoding and strict decoding.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/xtext.h>

G_DEFINE_QUARK(imta-xtext-error-quark, imta_xtext_error)

static const char xtext_hex[] = "0123456789ABCDEF";

static gboolean
xtext_is_plain(guchar c)
{
	return c >= 0x21 && c <= 0x7e && c != '+' && c != '=';
}

/* Upper-case hex digit value, or -1: RFC 3461 only allows upper case. */
static int
xtext_hex_value(guchar c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void
imta_xtext_append(GString *out, const char *data, gssize length)
{
	gsize n = length < 0 ? strlen(data) : (gsize)length;

	for (gsize i = 0; i < n; i++) {
		guchar c = (guchar)data[i];

		if (xtext_is_plain(c)) {
			g_string_append_c(out, (char)c);
			continue;
		}
		g_string_append_c(out, '+');
		g_string_append_c(out, xtext_hex[c >> 4]);
		g_string_append_c(out, xtext_hex[c & 0x0f]);
	}
}

char *
imta_xtext_encode(const char *data, gssize length)
{
	GString *out = g_string_sized_new(length < 0 ? strlen(data) : (gsize)length);

	imta_xtext_append(out, data, length);
	return g_string_free(out, FALSE);
}

/* Decode into `out` (may be NULL to only validate).  Returns the offset of
 * the first malformed byte, or -1 when the whole text is well-formed. */
static gssize
xtext_decode_into(const char *text, gsize n, GString *out, gboolean allow_nul)
{
	gsize i = 0;

	while (i < n) {
		guchar c = (guchar)text[i];
		int hi, lo;

		if (c != '+') {
			if (c < 0x21 || c > 0x7e)
				return (gssize)i;
			if (out != NULL)
				g_string_append_c(out, (char)c);
			i++;
			continue;
		}
		if (n - i < 3)
			return (gssize)i;
		hi = xtext_hex_value((guchar)text[i + 1]);
		lo = xtext_hex_value((guchar)text[i + 2]);
		if (hi < 0 || lo < 0 || (!allow_nul && hi == 0 && lo == 0))
			return (gssize)i;
		if (out != NULL)
			g_string_append_c(out, (char)(hi << 4 | lo));
		i += 3;
	}
	return -1;
}

gboolean
imta_xtext_valid(const char *text, gssize length)
{
	gsize n = length < 0 ? strlen(text) : (gsize)length;

	return xtext_decode_into(text, n, NULL, TRUE) < 0;
}

static void
xtext_set_error(GError **error, const char *text, gsize n, gsize bad)
{
	guchar c = (guchar)text[bad];
	g_autofree char *raw = NULL;
	g_autofree char *shown = NULL;

	if (c != '+') {
		g_set_error(error, IMTA_XTEXT_ERROR, IMTA_XTEXT_ERROR_SYNTAX,
			    "malformed xtext at offset %" G_GSIZE_FORMAT
			    ": byte 0x%02x is not allowed (expected 0x21 to 0x7e)", bad, c);
		return;
	}
	raw = g_strndup(text + bad, MIN(n - bad, 3));
	shown = g_strescape(raw, NULL);
	if (n - bad >= 3 && text[bad + 1] == '0' && text[bad + 2] == '0') {
		g_set_error(error, IMTA_XTEXT_ERROR, IMTA_XTEXT_ERROR_SYNTAX,
			    "malformed xtext at offset %" G_GSIZE_FORMAT
			    ": \"+00\" (a NUL byte) is not allowed here", bad);
		return;
	}
	g_set_error(error, IMTA_XTEXT_ERROR, IMTA_XTEXT_ERROR_SYNTAX,
		    "malformed xtext at offset %" G_GSIZE_FORMAT
		    ": \"%s\" (expected '+' and two upper-case hex digits)", bad, shown);
}

char *
imta_xtext_decode(const char *text, gssize length, gsize *length_r, GError **error)
{
	gsize n = length < 0 ? strlen(text) : (gsize)length;
	GString *out = g_string_sized_new(n);
	gssize bad = xtext_decode_into(text, n, out, length_r != NULL);

	if (bad >= 0) {
		xtext_set_error(error, text, n, (gsize)bad);
		g_string_free(out, TRUE);
		return NULL;
	}
	if (length_r != NULL)
		*length_r = out->len;
	return g_string_free(out, FALSE);
}
