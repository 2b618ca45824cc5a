/*
 * fuzz-smtp.c - libFuzzer harness for the SMTP protocol library.  The input
 * is taken as command lines (split at LF) for the command parser under
 * several offers, and as DATA content fed whole, in pieces cut at places
 * derived from the input, and byte by byte: every way of feeding must give
 * the same content, counters and end.  It also checks that the client
 * encoder's output reads back as it was, that replies and the Received:
 * header stay well-formed whatever text goes into them, and the hop count.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <imta/smtp.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ImtaSmtpOffer fuzz_offers[] = {
	{ .esmtp = TRUE, .dsn = TRUE, .eightbitmime = TRUE, .binarymime = TRUE, .smtputf8 = TRUE,
	  .auth = TRUE, .max_size = 10485760, .smtputf8_transaction = TRUE },
	{ .esmtp = TRUE, .dsn = TRUE, .eightbitmime = TRUE, .smtputf8 = TRUE, .auth = TRUE },
	{ .esmtp = FALSE },
};

static gboolean
fuzz_has_control(const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		if ((guchar) *s < 0x20 || *s == 0x7f)
			return TRUE;
	}
	return FALSE;
}

static void
fuzz_check_refusal(const ImtaSmtpCommand *cmd, const ImtaSmtpError *err)
{
	static const guint codes[] = { 500, 501, 504, 552, 553, 555 };
	g_autoptr(GString) reply = g_string_new(NULL);
	gboolean known = FALSE;

	for (gsize i = 0; i < G_N_ELEMENTS(codes); i++)
		known = known || err->code == codes[i];
	if (!known || err->enhanced == NULL || err->text == NULL || fuzz_has_control(err->text))
		abort();
	if (cmd->verb != IMTA_SMTP_UNKNOWN || cmd->path != NULL || cmd->arg != NULL ||
	    cmd->envid != NULL || cmd->orcpt != NULL || cmd->auth != NULL)
		abort();
	imta_smtp_reply(reply, err->code, err->enhanced, "%s", err->text);
	if (strchr(reply->str, '\n') != reply->str + reply->len - 1 || reply->len > 512)
		abort();
}

static void
fuzz_check_command(const ImtaSmtpCommand *cmd)
{
	if (cmd->verb == IMTA_SMTP_UNKNOWN)
		abort();
	if (cmd->verb == IMTA_SMTP_MAIL || cmd->verb == IMTA_SMTP_RCPT) {
		if (cmd->path == NULL || strlen(cmd->path) > IMTA_SMTP_PATH_MAX ||
		    fuzz_has_control(cmd->path))
			abort();
		if (cmd->verb == IMTA_SMTP_RCPT && cmd->path[0] == '\0')
			abort();
	}
	if (fuzz_has_control(cmd->envid) || fuzz_has_control(cmd->orcpt) ||
	    fuzz_has_control(cmd->auth))
		abort();
	if (cmd->orcpt != NULL && strchr(cmd->orcpt, ';') == NULL)
		abort();
	if ((cmd->notify & IMTA_NOTIFY_NEVER) && cmd->notify != IMTA_NOTIFY_NEVER)
		abort();
}

static void
fuzz_commands(const char *text, gsize size)
{
	gsize start = 0;

	while (start <= size) {
		const char *nl = memchr(text + start, '\n', size - start);
		gsize end = nl != NULL ? (gsize) (nl - text) : size;
		gsize len = end - start;

		/* the server strips the CR of CR LF */
		if (len > 0 && text[end - 1] == '\r')
			len--;
		for (gsize i = 0; i < G_N_ELEMENTS(fuzz_offers); i++) {
			const ImtaSmtpOffer *offer = &fuzz_offers[i];
			ImtaSmtpCommand cmd;
			ImtaSmtpError err = { 0 };

			if (imta_smtp_parse_command(text + start, len, offer, &cmd, &err))
				fuzz_check_command(&cmd);
			else
				fuzz_check_refusal(&cmd, &err);
			imta_smtp_command_clear(&cmd);
			imta_smtp_error_clear(&err);
		}
		if (nl == NULL)
			break;
		start = end + 1;
	}
	if (size > 0) {
		g_autofree char *helo = g_strndup(text, size);

		(void) imta_smtp_valid_helo(helo);
	}
}

typedef struct {
	GString *out;
	gsize consumed;
	gboolean done;
	ImtaSmtpDataReader r;
} FuzzDataRun;

static void
fuzz_data_feed(FuzzDataRun *run, const char *in, gsize len)
{
	gsize n;

	if (run->done)
		return;
	n = imta_smtp_data_reader_feed(&run->r, in, len, run->out, &run->done);
	if (n > len || (!run->done && n != len))
		abort();
	run->consumed += n;
}

static void
fuzz_data_same(const FuzzDataRun *a, const FuzzDataRun *b)
{
	if (a->out->len != b->out->len || memcmp(a->out->str, b->out->str, a->out->len) != 0 ||
	    a->consumed != b->consumed || a->done != b->done || a->r.bytes != b->r.bytes ||
	    a->r.long_lines != b->r.long_lines || a->r.bare_lf != b->r.bare_lf ||
	    a->r.nul != b->r.nul || a->r.eight_bit != b->r.eight_bit ||
	    a->r.bytes != a->out->len)
		abort();
}

static guint32
fuzz_hash(const char *s, gsize n)
{
	guint32 h = 2166136261u;

	for (gsize i = 0; i < n; i++)
		h = (h ^ (guchar) s[i]) * 16777619u;
	return h;
}

static void
fuzz_data(const char *text, gsize size)
{
	guint32 h = fuzz_hash(text, size);
	gsize cut1 = size > 0 ? h % (size + 1) : 0;
	gsize cut2 = size > 0 ? (h >> 11) % (size + 1) : 0;
	gsize lo = MIN(cut1, cut2), hi = MAX(cut1, cut2);
	FuzzDataRun runs[3];

	for (guint i = 0; i < G_N_ELEMENTS(runs); i++) {
		runs[i].out = g_string_new(NULL);
		runs[i].consumed = 0;
		runs[i].done = FALSE;
		imta_smtp_data_reader_init(&runs[i].r);
	}
	fuzz_data_feed(&runs[0], text, size);
	fuzz_data_feed(&runs[1], text, lo);
	fuzz_data_feed(&runs[1], text + lo, hi - lo);
	fuzz_data_feed(&runs[1], text + hi, size - hi);
	for (gsize i = 0; i < size && i < 512; i++)
		fuzz_data_feed(&runs[2], text + i, 1);
	fuzz_data_feed(&runs[2], text + MIN(size, 512), size - MIN(size, 512));
	fuzz_data_same(&runs[0], &runs[1]);
	fuzz_data_same(&runs[0], &runs[2]);
	for (guint i = 0; i < G_N_ELEMENTS(runs); i++)
		g_string_free(runs[i].out, TRUE);
}

/* The client's encoding of any content reads back as that content, with a
 * line end added when the last line had none. */
static void
fuzz_encode(const char *text, gsize size)
{
	g_autoptr(GString) wire = g_string_new(NULL);
	g_autoptr(GString) back = g_string_new(NULL);
	guint32 h = fuzz_hash(text, size);
	gsize cut = size > 0 ? h % (size + 1) : 0;
	ImtaSmtpDataReader r;
	guint state = 0;
	gboolean done = FALSE;
	gboolean add_lf = size > 0 && text[size - 1] != '\n';

	imta_smtp_data_encode(&state, text, cut, FALSE, wire);
	imta_smtp_data_encode(&state, text + cut, size - cut, TRUE, wire);
	imta_smtp_data_reader_init(&r);
	if (imta_smtp_data_reader_feed(&r, wire->str, wire->len, back, &done) != wire->len)
		abort();
	if (!done)
		abort();
	if (back->len != size + (add_lf ? 1 : 0) || memcmp(back->str, text, size) != 0)
		abort();
	if (add_lf && back->str[size] != '\n')
		abort();
}

static void
fuzz_bdat(const char *text, gsize size)
{
	g_autoptr(GString) whole = g_string_new(NULL);
	g_autoptr(GString) split = g_string_new(NULL);
	gsize cut = size > 0 ? fuzz_hash(text, size) % (size + 1) : 0;
	ImtaSmtpDataReader a, b;

	imta_smtp_bdat_reader_init(&a);
	imta_smtp_bdat_reader_feed(&a, text, size, whole);
	imta_smtp_bdat_reader_finish(&a, whole);
	imta_smtp_bdat_reader_init(&b);
	imta_smtp_bdat_reader_feed(&b, text, cut, split);
	imta_smtp_bdat_reader_feed(&b, text + cut, size - cut, split);
	imta_smtp_bdat_reader_finish(&b, split);
	if (!g_string_equal(whole, split) || a.bytes != whole->len || a.bare_lf != b.bare_lf ||
	    a.long_lines != b.long_lines || whole->len > size)
		abort();
}

/* Whatever the text, a reply is lines of at most 512 octets, each ending
 * in CR LF and holding no other control character. */
static void
fuzz_reply(const char *text, gsize size)
{
	g_autofree char *t = g_strndup(text, size);
	g_autoptr(GString) out = g_string_new(NULL);
	gsize start = 0;

	imta_smtp_reply(out, 250, "2.0.0", "%s", t);
	while (start < out->len) {
		const char *line = out->str + start;
		const char *crlf = strstr(line, "\r\n");
		guint code;
		gboolean last;
		const char *rest;
		gsize len;

		if (crlf == NULL)
			abort();
		len = (gsize) (crlf - line);
		if (len + 2 > 512)
			abort();
		if (!imta_smtp_parse_reply_line(line, len, &code, &last, &rest) || code != 250)
			abort();
		for (gsize i = 0; i < len; i++) {
			if ((guchar) line[i] < 0x20 || (guchar) line[i] >= 0x7f)
				abort();
		}
		start += len + 2;
		if (last != (start == out->len))
			abort();
	}
	(void) imta_smtp_count_received(text, size, 50);
}

/* The Received: header holds no control character but its line ends, and
 * every line after the first is a continuation. */
static void
fuzz_received(const char *text, gsize size)
{
	g_autofree char *t = g_strndup(text, size);
	gsize third = strlen(t) / 3;
	g_autofree char *helo = g_strndup(t, third);
	g_autofree char *name = g_strndup(t + third, third);
	const char *addr = t + 2 * third;
	ImtaSmtpTrace trace = { helo, name, name, helo, addr, name, addr, addr,
				(gint64) fuzz_hash(text, size) };
	g_autofree char *header = imta_smtp_received_header(&trace);
	gsize n = strlen(header);

	if (!g_str_has_prefix(header, "Received: ") || n == 0 || header[n - 1] != '\n')
		abort();
	for (gsize i = 0; i + 1 < n; i++) {
		guchar c = (guchar) header[i];

		if (c == '\n' && header[i + 1] != '\t')
			abort();
		if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *) data;

	fuzz_commands(text, size);
	fuzz_data(text, size);
	fuzz_encode(text, size);
	fuzz_bdat(text, size);
	fuzz_reply(text, size);
	fuzz_received(text, size);
	return 0;
}
