/*
 * trace.c - trace information (RFC 5321 4.4): the Received: header a
 * server adds to each message, the protocol names of its WITH clause
 * (RFC 3848), and the count of Received: headers used to stop mail loops.
 *
 * Everything the client chose (its HELO name) or that comes from outside
 * (reverse DNS, the TLS description) is checked before it goes into the
 * header: a value that is not what it should be is shown in a comment with
 * its unsafe bytes replaced, or left out, so no client can add header
 * lines or break the header's syntax.
 */
#include "config.h"

#include <string.h>
#include <arpa/inet.h>

#include <glib.h>

#include <imta/notice.h>
#include <imta/smtp.h>

/* RFC 5322 2.1.1: lines SHOULD be at most 78 characters. */
#define TRACE_LINE_MAX 78
#define TRACE_TAB_WIDTH 8
/* How much of an invalid HELO name the comment repeats. */
#define TRACE_SHOWN_MAX 64

typedef struct {
	GString *out;
	gsize column;
} TraceFold;

/* Append a word, folding before it when the line would grow too long or
 * when it starts a clause of its own. */
static void
trace_word(TraceFold *f, const char *word, gboolean new_line)
{
	gsize n = strlen(word);

	if (new_line || f->column + 1 + n > TRACE_LINE_MAX) {
		g_string_append(f->out, "\n\t");
		f->column = TRACE_TAB_WIDTH;
	} else {
		g_string_append_c(f->out, ' ');
		f->column++;
	}
	g_string_append(f->out, word);
	f->column += n;
}

/* Text safe inside a comment: printable ASCII without parentheses,
 * backslashes or spaces; anything else becomes '?'.  Cut at `max`. */
static char *
trace_comment_text(const char *s, gsize max)
{
	gsize n = strlen(s);
	GString *out = g_string_sized_new(MIN(n, max) + 3);

	for (gsize i = 0; i < n && i < max; i++) {
		guchar c = (guchar) s[i];

		if (c > 0x20 && c < 0x7f && c != '(' && c != ')' && c != '\\')
			g_string_append_c(out, (char) c);
		else
			g_string_append_c(out, '?');
	}
	if (n > max)
		g_string_append(out, "...");
	return g_string_free(out, FALSE);
}

/* An atom for the WITH and ID clauses; NULL when nothing usable is left. */
static char *
trace_atom(const char *s)
{
	GString *out;

	if (s == NULL)
		return NULL;
	out = g_string_new(NULL);
	for (; *s != '\0'; s++) {
		if (g_ascii_isalnum(*s) || *s == '.' || *s == '-' || *s == '_')
			g_string_append_c(out, *s);
	}
	if (out->len == 0) {
		g_string_free(out, TRUE);
		return NULL;
	}
	return g_string_free(out, FALSE);
}

static gboolean
trace_valid_name(const char *name)
{
	return name != NULL && name[0] != '[' && imta_smtp_valid_helo(name);
}

/* "[192.0.2.1]" or "[IPv6:2001:db8::1]"; NULL when ip is not an address.
 * An IPv6 zone ("%eth0") has no place in an RFC 5321 address literal and
 * is left out: g_hostname_is_ip_address() takes any bytes after the '%',
 * line ends included. */
static char *
trace_ip_literal(const char *ip)
{
	g_autofree char *bare = NULL;
	struct in6_addr in6;
	struct in_addr in4;

	if (ip == NULL)
		return NULL;
	if (inet_pton(AF_INET, ip, &in4) == 1)
		return g_strdup_printf("[%s]", ip);
	bare = g_strndup(ip, strcspn(ip, "%"));
	if (inet_pton(AF_INET6, bare, &in6) == 1)
		return g_strdup_printf("[IPv6:%s]", bare);
	return NULL;
}

/* A comment made of words, each kept whole when the line folds. */
static void
trace_comment(TraceFold *f, GPtrArray *words, gboolean new_line)
{
	for (guint i = 0; i < words->len; i++) {
		g_autofree char *word = g_strdup_printf("%s%s%s", i == 0 ? "(" : "",
							(const char *) words->pdata[i],
							i + 1 == words->len ? ")" : "");

		trace_word(f, word, new_line && i == 0);
	}
}

/* RFC 5321 From-domain: the HELO name when it is valid, otherwise the
 * best name known for the client; then the TCP-info comment with the
 * reverse DNS name and the address, and an invalid HELO name, made safe,
 * in a comment of its own.  FALSE when nothing is known of the client. */
static gboolean
trace_from(TraceFold *f, const ImtaSmtpTrace *t)
{
	g_autofree char *literal = trace_ip_literal(t->client_ip);
	gboolean helo_ok = t->helo != NULL && imta_smtp_valid_helo(t->helo);
	gboolean name_ok = trace_valid_name(t->client_name);

	if (t->helo == NULL && literal == NULL)
		return FALSE;
	trace_word(f, "from", FALSE);
	trace_word(f, helo_ok ? t->helo : name_ok ? t->client_name
		   : literal != NULL ? literal : "unknown", FALSE);
	if (literal != NULL) {
		g_autoptr(GPtrArray) info = g_ptr_array_new_with_free_func(g_free);

		g_ptr_array_add(info, g_strdup(name_ok ? t->client_name : "unknown"));
		g_ptr_array_add(info, g_strdup(literal));
		trace_comment(f, info, FALSE);
	}
	if (t->helo != NULL && !helo_ok) {
		g_autoptr(GPtrArray) bad = g_ptr_array_new_with_free_func(g_free);
		g_autofree char *shown = trace_comment_text(t->helo, TRACE_SHOWN_MAX);

		g_ptr_array_add(bad, g_strdup_printf("helo=%s", shown));
		trace_comment(f, bad, FALSE);
	}
	return TRUE;
}

/* The TLS description: its spaces are word breaks, the rest made
 * comment-safe. */
static gboolean
trace_tls(TraceFold *f, const char *tls, gboolean new_line)
{
	g_auto(GStrv) words = NULL;
	g_autoptr(GPtrArray) comment = g_ptr_array_new_with_free_func(g_free);

	if (tls == NULL)
		return FALSE;
	words = g_strsplit(tls, " ", -1);
	for (gsize i = 0; words[i] != NULL; i++) {
		if (words[i][0] != '\0')
			g_ptr_array_add(comment, trace_comment_text(words[i], TRACE_SHOWN_MAX));
	}
	if (comment->len == 0)
		return FALSE;
	trace_comment(f, comment, new_line);
	return TRUE;
}

static void
trace_by(TraceFold *f, const ImtaSmtpTrace *t, gboolean new_line)
{
	g_autofree char *protocol = trace_atom(t->protocol);
	g_autofree char *id = trace_atom(t->queue_id);

	trace_word(f, "by", new_line);
	trace_word(f, trace_valid_name(t->by_host) ? t->by_host : "localhost", FALSE);
	trace_word(f, "(imta)", FALSE);
	if (protocol != NULL) {
		trace_word(f, "with", FALSE);
		trace_word(f, protocol, FALSE);
	}
	if (id != NULL) {
		trace_word(f, "id", FALSE);
		trace_word(f, id, FALSE);
	}
}

/* The recipient goes in only when it cannot disturb the header: no
 * control characters, no angle brackets, valid UTF-8. */
static gboolean
trace_safe_address(const char *address)
{
	if (address == NULL || address[0] == '\0' || !g_utf8_validate(address, -1, NULL))
		return FALSE;
	for (const char *s = address; *s != '\0'; s++) {
		guchar c = (guchar) *s;

		if (c < 0x20 || c == 0x7f || c == '<' || c == '>')
			return FALSE;
	}
	return strlen(address) <= IMTA_SMTP_PATH_MAX;
}

char *
imta_smtp_received_header(const ImtaSmtpTrace *trace)
{
	TraceFold f = { g_string_new("Received:"), strlen("Received:") };
	g_autofree char *date = NULL;
	gboolean started;

	g_return_val_if_fail(trace != NULL, NULL);
	started = trace_from(&f, trace);
	started = trace_tls(&f, trace->tls, started) || started;
	trace_by(&f, trace, started);
	if (trace_safe_address(trace->for_address)) {
		g_autofree char *word = g_strdup_printf("<%s>;", trace->for_address);

		trace_word(&f, "for", TRUE);
		trace_word(&f, word, FALSE);
	} else {
		g_string_append_c(f.out, ';');
		f.column++;
	}
	date = imta_notice_format_date(trace->time);
	trace_word(&f, date, FALSE);
	g_string_append_c(f.out, '\n');
	return g_string_free(f.out, FALSE);
}

const char *
imta_smtp_protocol_name(gboolean esmtp, gboolean tls, gboolean auth, gboolean lmtp)
{
	/* indexed by tls * 2 + auth */
	static const char *const esmtp_names[] = { "ESMTP", "ESMTPA", "ESMTPS", "ESMTPSA" };
	static const char *const lmtp_names[] = { "LMTP", "LMTPA", "LMTPS", "LMTPSA" };
	guint i = (tls ? 2 : 0) + (auth ? 1 : 0);

	if (lmtp)
		return lmtp_names[i];
	/* TLS and AUTH are extensions: a HELO session has neither */
	if (!esmtp)
		return "SMTP";
	return esmtp_names[i];
}

/* "Received" then optional spaces then ':' (RFC 5322 4.5.3 obsolete
 * syntax allows the spaces). */
static gboolean
trace_is_received(const char *line, gsize n)
{
	static const char name[] = "Received";
	gsize i = sizeof(name) - 1;

	if (n < i || g_ascii_strncasecmp(line, name, i) != 0)
		return FALSE;
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	return i < n && line[i] == ':';
}

guint
imta_smtp_count_received(const char *head, gsize len, guint max)
{
	guint count = 0;
	gsize i = 0;

	g_return_val_if_fail(head != NULL || len == 0, 0);
	while (i < len && count <= max) {
		const char *nl = memchr(head + i, '\n', len - i);
		gsize end = nl != NULL ? (gsize) (nl - head) : len;

		if (end == i || (end == i + 1 && head[i] == '\r'))
			break;
		if (trace_is_received(head + i, end - i))
			count++;
		i = end + 1;
	}
	return count;
}
