/*
 * number.c - integers in b%v notation, ISO 8601 durations, byte sizes.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/number.h>

static int
digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'Z')
		return c - 'A' + 10;
	return 99;
}

/* Accumulate digits of `base` from text[0..len); FALSE on junk or overflow. */
static gboolean
parse_digits(const char *text, gsize len, guint base, guint64 limit, guint64 *value_r)
{
	guint64 value = 0;

	if (len == 0)
		return FALSE;
	for (gsize i = 0; i < len; i++) {
		int d = digit_value(text[i]);

		if (d >= (int)base)
			return FALSE;
		if (value > (limit - (guint64)d) / base)
			return FALSE;
		value = value * base + (guint64)d;
	}
	*value_r = value;
	return TRUE;
}

static void
set_why(const char **why_r, const char *why)
{
	if (why_r != NULL)
		*why_r = why;
}

gboolean
imta_parse_int(const char *text, gint64 *value_r, const char **why_r)
{
	gboolean negative = FALSE;
	const char *percent;
	guint base = 10;
	guint64 magnitude;
	guint64 limit;

	set_why(why_r, "an integer (decimal, or b%v with base b from 2 to 36)");
	if (text == NULL || *text == '\0')
		return FALSE;
	if (*text == '-' || *text == '+') {
		negative = *text == '-';
		text++;
	}
	percent = strchr(text, '%');
	if (percent != NULL) {
		guint64 b;

		if (!parse_digits(text, (gsize)(percent - text), 10, 36, &b) || b < 2)
			return FALSE;
		base = (guint)b;
		text = percent + 1;
	}
	limit = negative ? (guint64)G_MAXINT64 + 1 : (guint64)G_MAXINT64;
	if (!parse_digits(text, strlen(text), base, limit, &magnitude))
		return FALSE;
	if (negative)
		*value_r = magnitude == (guint64)G_MAXINT64 + 1 ? G_MININT64 : -(gint64)magnitude;
	else
		*value_r = (gint64)magnitude;
	return TRUE;
}

gboolean
imta_parse_duration(const char *text, gint64 *seconds_r, const char **why_r)
{
	gsize len;
	gboolean in_time = FALSE, any = FALSE;
	gint64 total = 0;

	set_why(why_r, "an ISO 8601 duration such as \"PT30M\", \"P1D\" or \"P1DT12H\"");
	if (text == NULL)
		return FALSE;
	len = strlen(text);
	if (len >= 2 && text[0] == '"' && text[len - 1] == '"') {
		text++;
		len -= 2;
	}
	if (len < 2 || g_ascii_toupper(text[0]) != 'P')
		return FALSE;
	for (gsize i = 1; i < len;) {
		gsize start = i;
		guint64 n;
		gint64 unit;
		char u;

		if (g_ascii_toupper(text[i]) == 'T') {
			if (in_time)
				return FALSE;
			in_time = TRUE;
			i++;
			continue;
		}
		while (i < len && g_ascii_isdigit(text[i]))
			i++;
		if (i == start || i == len)
			return FALSE;
		if (!parse_digits(text + start, i - start, 10, G_MAXINT32, &n))
			return FALSE;
		u = g_ascii_toupper(text[i++]);
		if (!in_time && u == 'W')
			unit = 7 * 86400;
		else if (!in_time && u == 'D')
			unit = 86400;
		else if (in_time && u == 'H')
			unit = 3600;
		else if (in_time && u == 'M')
			unit = 60;
		else if (in_time && u == 'S')
			unit = 1;
		else {
			/* Years and months have no fixed length; refuse them. */
			return FALSE;
		}
		total += (gint64)n * unit;
		any = TRUE;
	}
	if (!any)
		return FALSE;
	*seconds_r = total;
	return TRUE;
}

gboolean
imta_parse_size(const char *text, gint64 *bytes_r, const char **why_r)
{
	g_autofree char *copy = NULL;
	gsize len;
	gint64 value, mult = 1;

	if (text == NULL || *text == '\0') {
		set_why(why_r, "a size in bytes, optionally with a K, M or G suffix");
		return FALSE;
	}
	copy = g_strstrip(g_strdup(text));
	len = strlen(copy);
	if (len > 0) {
		switch (g_ascii_toupper(copy[len - 1])) {
		case 'K': mult = 1024; break;
		case 'M': mult = 1024 * 1024; break;
		case 'G': mult = (gint64)1024 * 1024 * 1024; break;
		default: break;
		}
		if (mult != 1)
			copy[len - 1] = '\0';
	}
	if (!imta_parse_int(copy, &value, NULL)) {
		set_why(why_r, "a size in bytes, optionally with a K, M or G suffix");
		return FALSE;
	}
	if (value > G_MAXINT64 / mult || value < G_MININT64 / mult) {
		set_why(why_r, "a size that fits in 64 bits");
		return FALSE;
	}
	*bytes_r = value * mult;
	return TRUE;
}
