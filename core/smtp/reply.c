/*
 * reply.c - SMTP replies (RFC 5321 4.2): writing them as a server, single-
 * and multi-line with RFC 2034 enhanced status codes, and reading their
 * lines as a client.
 */
#include "config.h"

#include <stdarg.h>
#include <string.h>

#include <glib.h>

#include <imta/smtp.h>

/* RFC 5321 4.5.3.1.5: a reply line is at most 512 octets with its CRLF. */
#define SMTP_REPLY_LINE_MAX 512

/* One reply line.  The text may come from the client (an address, a host
 * name), so anything that could break the reply apart or is not ASCII is
 * replaced. */
static void
smtp_reply_line(GString *out, guint code, char sep, const char *enhanced, const char *text,
		gsize n)
{
	g_string_append_printf(out, "%03u", code);
	/* RFC 5321 4.2: a last line may be the bare code */
	if (sep == '-' || enhanced != NULL || n > 0)
		g_string_append_c(out, sep);
	if (enhanced != NULL) {
		g_string_append(out, enhanced);
		if (n > 0)
			g_string_append_c(out, ' ');
	}
	for (gsize i = 0; i < n; i++) {
		guchar c = (guchar) text[i];

		g_string_append_c(out, c >= 0x20 && c < 0x7f ? (char) c : '?');
	}
	g_string_append(out, "\r\n");
}

/* How much of a text line fits on one reply line after "250-5.1.1 ". */
static gsize
smtp_reply_room(const char *enhanced)
{
	return SMTP_REPLY_LINE_MAX - 2 - 4 - (enhanced != NULL ? strlen(enhanced) + 1 : 0);
}

void
imta_smtp_reply(GString *out, guint code, const char *enhanced, const char *format, ...)
{
	va_list args;
	g_autofree char *text = NULL;
	gsize room, len, start = 0;

	g_return_if_fail(out != NULL && format != NULL);
	g_return_if_fail(code >= 200 && code <= 599);
	va_start(args, format);
	text = g_strdup_vprintf(format, args);
	va_end(args);
	len = strlen(text);
	/* a final line end does not start another line */
	if (len > 0 && text[len - 1] == '\n')
		len--;
	if (len > 0 && text[len - 1] == '\r')
		len--;
	room = smtp_reply_room(enhanced);
	for (;;) {
		const char *nl = memchr(text + start, '\n', len - start);
		gsize end = nl != NULL ? (gsize) (nl - text) : len;
		gsize line_end = end > start && text[end - 1] == '\r' ? end - 1 : end;

		/* an over-long line goes on in the next one */
		if (line_end - start > room) {
			smtp_reply_line(out, code, '-', enhanced, text + start, room);
			start += room;
			continue;
		}
		if (nl == NULL) {
			smtp_reply_line(out, code, ' ', enhanced, text + start, line_end - start);
			return;
		}
		smtp_reply_line(out, code, '-', enhanced, text + start, line_end - start);
		start = end + 1;
	}
}

gboolean
imta_smtp_parse_reply_line(const char *line, gsize len, guint *code_r, gboolean *last_r,
			   const char **text_r)
{
	g_return_val_if_fail(line != NULL || len == 0, FALSE);
	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
	    !g_ascii_isdigit(line[2]))
		return FALSE;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return FALSE;
	if (memchr(line, '\0', len) != NULL)
		return FALSE;
	if (code_r != NULL)
		*code_r = (guint) ((line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0'));
	if (last_r != NULL)
		*last_r = len == 3 || line[3] == ' ';
	if (text_r != NULL)
		*text_r = len > 4 ? line + 4 : "";
	return TRUE;
}
