/*
 * data.c - message content on the wire (RFC 5321 4.5.2, RFC 3030): the
 * server's DATA reader (end of data, dot-unstuffing, CR LF to LF), its BDAT
 * counterpart, and the client's dot-stuffing encoder.
 *
 * The reader is a byte-driven state machine that holds at most ".\r" of
 * pending input, so input may arrive in pieces of any size and the output
 * does not depend on where it was split.  Only CR LF "." CR LF ends the
 * content: a line ending in a bare LF or a bare CR never does, which is
 * what keeps a second message from being smuggled in behind a "." that
 * another MTA would have taken for the end.
 */
#include "config.h"

#include <string.h>

#include <glib.h>

#include <imta/smtp.h>

enum {
	DATA_BOL_CRLF = 0,  /* a line starts after CR LF (or the DATA command) */
	DATA_BOL_LF,        /* a line starts after a bare LF */
	DATA_DOT_CRLF,      /* "." first on a line that started after CR LF */
	DATA_DOT_LF,        /* "." first on a line that started after a bare LF */
	DATA_DOT_CR_CRLF,   /* "." CR ... */
	DATA_DOT_CR_LF,
	DATA_TEXT,          /* inside a line */
	DATA_CR,            /* inside a line, a CR not yet known to end it */
	DATA_DONE,          /* the terminator has been read */
};

void
imta_smtp_data_reader_init(ImtaSmtpDataReader *r)
{
	g_return_if_fail(r != NULL);
	memset(r, 0, sizeof(*r));
	r->state = DATA_BOL_CRLF;
}

static void
data_emit(ImtaSmtpDataReader *r, GString *out, char c)
{
	g_string_append_c(out, c);
	r->bytes++;
}

/* A byte of the current line as sent (line ends aside): RFC 5321 4.5.3.1.6
 * allows 998 of them. */
static void
data_line_byte(ImtaSmtpDataReader *r)
{
	if (++r->line_len == IMTA_SMTP_TEXT_LINE_MAX - 1)
		r->long_lines++;
}

static void
data_line_end(ImtaSmtpDataReader *r, GString *out, guint next_state)
{
	data_emit(r, out, '\n');
	r->line_len = 0;
	r->state = next_state;
}

static void
data_count(ImtaSmtpDataReader *r, guchar c)
{
	if (c == '\0')
		r->nul++;
	else if (c >= 0x80)
		r->eight_bit = TRUE;
}

/* A byte inside a line. */
static void
data_text_byte(ImtaSmtpDataReader *r, GString *out, guchar c)
{
	if (c == '\r') {
		r->state = DATA_CR;
		return;
	}
	if (c == '\n') {
		r->bare_lf++;
		data_line_end(r, out, DATA_BOL_LF);
		return;
	}
	data_count(r, c);
	data_line_byte(r);
	data_emit(r, out, (char) c);
	r->state = DATA_TEXT;
}

/* The byte after a CR inside a line: LF makes the pair a line end;
 * anything else leaves the CR a bare CR, kept as content. */
static void
data_after_cr(ImtaSmtpDataReader *r, GString *out, guchar c)
{
	if (c == '\n') {
		data_line_end(r, out, DATA_BOL_CRLF);
		return;
	}
	data_line_byte(r);
	data_emit(r, out, '\r');
	data_text_byte(r, out, c);
}

/* NUL bytes in `p`: rare, so memchr (vectorised by the C library) finds
 * them faster than a loop that looks at every byte. */
static guint
data_count_nul(const char *p, gsize n)
{
	const char *end = p + n;
	guint nul = 0;

	while (p < end && (p = memchr(p, '\0', (gsize)(end - p))) != NULL) {
		nul++;
		p++;
	}
	return nul;
}

/* Does `p` hold a byte above 0x7F?  Eight bytes at a time: -O2 does not
 * vectorise a byte loop, and most of a message passes through here. */
static gboolean
data_any_high(const char *p, gsize n)
{
	guint64 acc = 0;
	gsize i = 0;

	for (; i + sizeof(guint64) <= n; i += sizeof(guint64)) {
		guint64 word;

		memcpy(&word, p + i, sizeof word);
		acc |= word;
	}
	for (; i < n; i++)
		acc |= (guchar) p[i];
	return (acc & G_GUINT64_CONSTANT(0x8080808080808080)) != 0;
}

/* How many bytes from `in` are plain line content (no CR, no LF); they
 * are counted as such.  Most of a message passes through here, so the
 * span is found with memchr and counted a span at a time, not byte by
 * byte through data_count and data_line_byte. */
static gsize
data_text_span(ImtaSmtpDataReader *r, const char *in, gsize len)
{
	const char *lf = memchr(in, '\n', len);
	gsize end = lf != NULL ? (gsize)(lf - in) : len;
	const char *cr = memchr(in, '\r', end);
	gsize n = cr != NULL ? (gsize)(cr - in) : end;

	r->nul += data_count_nul(in, n);
	if (!r->eight_bit && data_any_high(in, n))
		r->eight_bit = TRUE;
	/* data_line_byte's count, once for the line that reaches the limit */
	if (r->line_len < IMTA_SMTP_TEXT_LINE_MAX - 1 &&
	    r->line_len + n >= IMTA_SMTP_TEXT_LINE_MAX - 1)
		r->long_lines++;
	r->line_len += n;
	return n;
}

/* A "." first on a line is dot-stuffing and removed, except when a CR or
 * LF follows it: that line is a lone dot which is not the terminator, and
 * it is kept as it came. */
static void
data_after_dot(ImtaSmtpDataReader *r, GString *out, guchar c, gboolean after_crlf)
{
	if (c == '\r') {
		r->state = after_crlf ? DATA_DOT_CR_CRLF : DATA_DOT_CR_LF;
		return;
	}
	if (c == '\n') {
		data_emit(r, out, '.');
		r->bare_lf++;
		data_line_end(r, out, DATA_BOL_LF);
		return;
	}
	data_text_byte(r, out, c);
}

static void
data_after_dot_cr(ImtaSmtpDataReader *r, GString *out, guchar c, gboolean after_crlf)
{
	if (c == '\n' && after_crlf) {
		r->state = DATA_DONE;
		return;
	}
	data_emit(r, out, '.');
	data_after_cr(r, out, c);
}

static void
data_step(ImtaSmtpDataReader *r, GString *out, guchar c)
{
	switch (r->state) {
	case DATA_BOL_CRLF:
	case DATA_BOL_LF:
		if (c == '.') {
			data_line_byte(r);
			r->state = r->state == DATA_BOL_CRLF ? DATA_DOT_CRLF : DATA_DOT_LF;
			return;
		}
		data_text_byte(r, out, c);
		return;
	case DATA_DOT_CRLF:
	case DATA_DOT_LF:
		data_after_dot(r, out, c, r->state == DATA_DOT_CRLF);
		return;
	case DATA_DOT_CR_CRLF:
	case DATA_DOT_CR_LF:
		data_after_dot_cr(r, out, c, r->state == DATA_DOT_CR_CRLF);
		return;
	case DATA_CR:
		data_after_cr(r, out, c);
		return;
	case DATA_TEXT:
		data_text_byte(r, out, c);
		return;
	default:
		g_assert_not_reached();
	}
}

gsize
imta_smtp_data_reader_feed(ImtaSmtpDataReader *r, const char *in, gsize len, GString *out,
			   gboolean *done)
{
	gsize i = 0;

	g_return_val_if_fail(r != NULL && out != NULL && done != NULL, 0);
	g_return_val_if_fail(in != NULL || len == 0, 0);
	while (i < len && r->state != DATA_DONE) {
		if (r->state == DATA_TEXT) {
			gsize n = data_text_span(r, in + i, len - i);

			g_string_append_len(out, in + i, (gssize) n);
			r->bytes += n;
			i += n;
			if (i == len)
				break;
		}
		data_step(r, out, (guchar) in[i]);
		i++;
	}
	*done = r->state == DATA_DONE;
	return i;
}

/* ---- BDAT ------------------------------------------------------------- */

void
imta_smtp_bdat_reader_init(ImtaSmtpDataReader *r)
{
	imta_smtp_data_reader_init(r);
	r->state = DATA_TEXT;
}

void
imta_smtp_bdat_reader_feed(ImtaSmtpDataReader *r, const char *in, gsize len, GString *out)
{
	gsize i = 0;

	g_return_if_fail(r != NULL && out != NULL);
	g_return_if_fail(in != NULL || len == 0);
	while (i < len) {
		gsize n;

		if (r->state == DATA_CR) {
			data_after_cr(r, out, (guchar) in[i++]);
			continue;
		}
		/* no dot-stuffing in chunks: a line start is just text */
		r->state = DATA_TEXT;
		n = data_text_span(r, in + i, len - i);
		g_string_append_len(out, in + i, (gssize) n);
		r->bytes += n;
		i += n;
		if (i < len)
			data_text_byte(r, out, (guchar) in[i++]);
	}
}

void
imta_smtp_bdat_reader_finish(ImtaSmtpDataReader *r, GString *out)
{
	g_return_if_fail(r != NULL && out != NULL);
	if (r->state == DATA_CR) {
		data_line_byte(r);
		data_emit(r, out, '\r');
	}
	r->state = DATA_TEXT;
}

/* ---- the client side -------------------------------------------------- */

enum { ENCODE_LINE_START = 0, ENCODE_IN_LINE = 1 };

void
imta_smtp_data_encode(guint *state, const char *in, gsize len, gboolean final, GString *out)
{
	gsize i = 0;

	g_return_if_fail(state != NULL && out != NULL);
	g_return_if_fail(in != NULL || len == 0);
	while (i < len) {
		const char *nl = memchr(in + i, '\n', len - i);
		gsize end = nl != NULL ? (gsize) (nl - in) : len;

		if (*state == ENCODE_LINE_START && in[i] == '.')
			g_string_append_c(out, '.');
		g_string_append_len(out, in + i, (gssize) (end - i));
		if (nl == NULL) {
			*state = ENCODE_IN_LINE;
			break;
		}
		g_string_append(out, "\r\n");
		*state = ENCODE_LINE_START;
		i = end + 1;
	}
	if (!final)
		return;
	if (*state == ENCODE_IN_LINE)
		g_string_append(out, "\r\n");
	g_string_append(out, ".\r\n");
	*state = ENCODE_LINE_START;
}
