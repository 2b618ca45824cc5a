/*
 * report.c - the text of a delivery status notification (RFC 3464): the
 * notice's header, the part for people, the message/delivery-status part
 * and the returned original, handed to a sink piece by piece so that a
 * large original never sits in memory.
 *
 * What the original may be returned as is decided before anything is
 * written, because the outermost header must already say whether 8-bit
 * bytes follow: a message returned whole is read twice, once to check
 * that every line fits in 998 octets and holds no NUL, once to copy it.
 */
#include "config.h"

#include <string.h>
#include <time.h>
#include <gio/gio.h>

#include <imta/notice.h>

#define REPORT_WRAP 76                  /* columns of the text for people */
#define REPORT_FOLD 78                  /* header fields are folded beyond this */
#define REPORT_MAX_LINE 998             /* RFC 5322 2.1.1, without the line end */
#define REPORT_MAX_HEADER (256 * 1024)  /* most of an original header returned */
#define REPORT_CHUNK (64 * 1024)

/* ---- text helpers ----------------------------------------------------- */

static gboolean
report_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Printable US-ASCII on one line: blanks and control characters become
 * single spaces, 8-bit bytes '?', and the ends are trimmed. */
static char *
report_sanitize(const char *text)
{
	GString *out = g_string_sized_new(strlen(text));

	for (const char *p = text; *p != '\0'; p++) {
		guchar c = (guchar)*p;

		if (report_blank(*p) || c < 0x20 || c == 0x7f) {
			if (out->len > 0 && out->str[out->len - 1] != ' ')
				g_string_append_c(out, ' ');
		} else {
			g_string_append_c(out, c >= 0x80 ? '?' : (char)c);
		}
	}
	if (out->len > 0 && out->str[out->len - 1] == ' ')
		g_string_truncate(out, out->len - 1);
	return g_string_free(out, FALSE);
}

/* An address or identifier as a field value: bytes outside printable
 * US-ASCII are written "+XX", as xtext would. */
static char *
report_clean_field(const char *text)
{
	GString *out = g_string_sized_new(strlen(text));

	for (const guchar *p = (const guchar *)text; *p != '\0'; p++) {
		if (*p < 0x20 || *p >= 0x7f)
			g_string_append_printf(out, "+%02X", *p);
		else
			g_string_append_c(out, (char)*p);
	}
	return g_string_free(out, FALSE);
}

/* Append "Name: value" folded (RFC 5322 2.2.3) before blanks so that
 * lines stay near REPORT_FOLD columns.  A run without a blank longer
 * than a line may be is split with an inserted blank: only absurd input
 * (a 990-octet word) is changed by that. */
static void
report_field(GString *out, const char *name, const char *value)
{
	g_autofree char *line = g_strdup_printf("%s: %s", name, value);
	gsize len = strlen(line), start = 0, first_min = strlen(name) + 2;

	while (len - start > REPORT_FOLD) {
		gsize min = start == 0 ? first_min : start + 1;
		gsize cut = 0;

		for (gsize i = start + REPORT_FOLD; i > min && cut == 0; i--)
			if (line[i] == ' ' && line[i - 1] != ' ')
				cut = i;
		for (gsize i = start + REPORT_FOLD + 1; i < len && cut == 0; i++)
			if (line[i] == ' ' && line[i - 1] != ' ')
				cut = i;
		if (cut == 0 || cut - start > REPORT_MAX_LINE - 1) {
			if (len - start <= REPORT_MAX_LINE - 1)
				break;  /* no blank to fold at, but the rest fits */
			cut = start + REPORT_MAX_LINE - 2;
			g_string_append_len(out, line + start, (gssize)(cut - start));
			g_string_append(out, "\n ");
		} else {
			g_string_append_len(out, line + start, (gssize)(cut - start));
			g_string_append_c(out, '\n');
		}
		start = cut;
	}
	g_string_append(out, line + start);
	g_string_append_c(out, '\n');
}

/* Append `text` (one line, sanitised) wrapped to REPORT_WRAP columns,
 * every line starting with `indent` spaces. */
static void
report_wrap(GString *out, const char *text, guint indent)
{
	g_auto(GStrv) words = g_strsplit(text, " ", -1);
	gsize col = 0;

	for (guint i = 0; words[i] != NULL; i++) {
		const char *word = words[i];
		gsize len = strlen(word);

		if (len == 0)
			continue;
		if (col > indent && col + 1 + len > REPORT_WRAP) {
			g_string_append_c(out, '\n');
			col = 0;
		}
		if (col == 0) {
			for (guint s = 0; s < indent; s++)
				g_string_append_c(out, ' ');
			col = indent;
		} else {
			g_string_append_c(out, ' ');
			col++;
		}
		/* A word too long for any line is cut where the line must end. */
		while (col + len > REPORT_MAX_LINE) {
			gsize part = REPORT_MAX_LINE - col;

			g_string_append_len(out, word, (gssize)part);
			g_string_append_c(out, '\n');
			for (guint s = 0; s < indent; s++)
				g_string_append_c(out, ' ');
			word += part;
			len -= part;
			col = indent;
		}
		g_string_append(out, word);
		col += len;
	}
	if (col > 0)
		g_string_append_c(out, '\n');
}

static gboolean
report_atext(char c)
{
	return g_ascii_isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* RFC 2047 encoded words for UTF-8 `text`, each under 75 octets and
 * holding whole characters, separated by blanks (where folding may go). */
static void
report_append_encoded(GString *out, const char *text)
{
	const char *p = text;

	while (*p != '\0') {
		const char *end = p;
		g_autofree char *b64 = NULL;

		/* 45 octets make 60 base64 characters, 72 with the markers. */
		while (*end != '\0' && g_utf8_next_char(end) - p <= 45)
			end = g_utf8_next_char(end);
		b64 = g_base64_encode((const guchar *)p, (gsize)(end - p));
		g_string_append_printf(out, "%s=?UTF-8?B?%s?=", p != text ? " " : "", b64);
		p = end;
	}
}

/* A display name as an RFC 5322 phrase: as it is when it is atoms,
 * quoted when it is other printable ASCII, an RFC 2047 encoded word when
 * it is UTF-8. */
static void
report_append_phrase(GString *out, const char *name)
{
	gboolean atoms = TRUE, ascii = TRUE;

	for (const char *p = name; *p != '\0'; p++) {
		if (!report_atext(*p) && *p != ' ')
			atoms = FALSE;
		if ((guchar)*p < 0x20 || (guchar)*p >= 0x7f)
			ascii = FALSE;
	}
	if (atoms && ascii && name[0] != ' ' && name[strlen(name) - 1] != ' ') {
		g_string_append(out, name);
	} else if (ascii) {
		g_string_append_c(out, '"');
		for (const char *p = name; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				g_string_append_c(out, '\\');
			g_string_append_c(out, *p);
		}
		g_string_append_c(out, '"');
	} else if (g_utf8_validate(name, -1, NULL) && strlen(name) <= 200) {
		report_append_encoded(out, name);
	} else {
		g_autofree char *clean = report_sanitize(name);

		report_append_phrase(out, clean);
	}
}

char *
imta_notice_format_date(gint64 when)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t seconds = (time_t)when;
	struct tm tm;
	long offset, minutes;

	/* localtime_r() reads the zone once per process; GLib's local time
	 * looks for the zone's files again on every call, and this runs for
	 * every message received. */
	if (localtime_r(&seconds, &tm) == NULL) {
		seconds = 0;
		gmtime_r(&seconds, &tm);
		tm.tm_gmtoff = 0;
	}
	offset = tm.tm_gmtoff;
	minutes = ABS(offset) / 60;
	return g_strdup_printf("%s, %d %s %04d %02d:%02d:%02d %c%02ld%02ld",
			       days[CLAMP(tm.tm_wday, 0, 6)], tm.tm_mday,
			       months[CLAMP(tm.tm_mon, 0, 11)], tm.tm_year + 1900, tm.tm_hour,
			       tm.tm_min, tm.tm_sec, offset < 0 ? '-' : '+', minutes / 60,
			       minutes % 60);
}

/* ---- diagnostics ------------------------------------------------------ */

static const char *
report_default_status(ImtaNoticeAction action)
{
	switch (action) {
	case IMTA_NOTICE_ACTION_FAILED:
		return "5.0.0";
	case IMTA_NOTICE_ACTION_DELAYED:
		return "4.0.0";
	case IMTA_NOTICE_ACTION_DELIVERED:
	case IMTA_NOTICE_ACTION_RELAYED:
		break;
	}
	return "2.0.0";
}

/* May a status of class `c` ('2', '4', '5') describe `action`?  A failure
 * may carry the 4.x.x of the error that outlived the queue (4.4.7). */
static gboolean
report_status_fits(ImtaNoticeAction action, char c)
{
	switch (action) {
	case IMTA_NOTICE_ACTION_FAILED:
		return c == '4' || c == '5';
	case IMTA_NOTICE_ACTION_DELAYED:
		return c == '4';
	case IMTA_NOTICE_ACTION_DELIVERED:
	case IMTA_NOTICE_ACTION_RELAYED:
		break;
	}
	return c == '2';
}

static guint
report_digits(const char *p, guint max)
{
	guint n = 0;

	while (n <= max && g_ascii_isdigit(p[n]))
		n++;
	return n;
}

/* Length of an RFC 3463 code "c.sss.ddd" at `p`, followed by a blank or
 * the end; 0 when there is none. */
static gsize
report_enhanced_length(const char *p)
{
	guint a, b;

	if (p[0] != '2' && p[0] != '4' && p[0] != '5')
		return 0;
	if (p[1] != '.')
		return 0;
	a = report_digits(p + 2, 3);
	if (a == 0 || a > 3 || p[2 + a] != '.')
		return 0;
	b = report_digits(p + 3 + a, 3);
	if (b == 0 || b > 3)
		return 0;
	if (p[3 + a + b] != '\0' && p[3 + a + b] != ' ')
		return 0;
	return 3 + a + b;
}

/* An SMTP reply "NNN", "NNN text" or "NNN-text" at `p`? */
static gboolean
report_is_reply(const char *p)
{
	return p[0] >= '2' && p[0] <= '5' && g_ascii_isdigit(p[1]) && g_ascii_isdigit(p[2]) &&
	       (p[3] == '\0' || p[3] == ' ' || p[3] == '-');
}

/* "remote NAME said: REST" or "remote NAME [ADDR] said: REST": NAME and
 * REST, or FALSE. */
static gboolean
report_split_remote(const char *text, char **name_r, const char **rest_r)
{
	static const char said[] = " said: ";
	const char *start, *end, *at;

	if (!g_str_has_prefix(text, "remote "))
		return FALSE;
	start = text + strlen("remote ");
	at = strstr(start, said);
	if (at == NULL)
		return FALSE;
	end = start;
	while (end < at && *end != ' ' && (*end != '[' || end == start))
		end++;
	if (end == start)
		return FALSE;
	for (const char *p = start; p < end; p++)
		if (!g_ascii_isalnum(*p) && strchr(".-_:[]", *p) == NULL)
			return FALSE;
	*name_r = g_strndup(start, (gsize)(end - start));
	*rest_r = at + strlen(said);
	return TRUE;
}

void
imta_notice_parse_diagnostic(const char *diagnostic, ImtaNoticeAction action,
			     ImtaNoticeDiagnostic *diag_r)
{
	static const char last_error[] = "; last error: ";
	const char *inner, *reply, *status = NULL;
	gsize outer_len, reply_len = 0;
	gboolean is_reply;
	g_autofree char *clean = NULL;

	memset(diag_r, 0, sizeof *diag_r);
	g_strlcpy(diag_r->status, report_default_status(action), sizeof diag_r->status);
	if (diagnostic == NULL)
		return;
	clean = report_sanitize(diagnostic);
	if (clean[0] == '\0')
		return;
	outer_len = report_enhanced_length(clean);
	inner = strstr(clean, last_error);
	inner = inner != NULL ? inner + strlen(last_error) : clean;
	if (!report_split_remote(inner, &diag_r->remote_mta, &reply))
		reply = inner;
	is_reply = report_is_reply(reply);
	if (is_reply) {
		diag_r->type = g_strdup("smtp");
		diag_r->text = g_strdup(reply);
		reply_len = reply[3] != '\0' ? report_enhanced_length(reply + 4) : 0;
		if (reply_len > 0 && reply[4] == reply[0])
			status = reply + 4;
	} else {
		diag_r->type = g_strdup("X-IMTA");
		diag_r->text = g_strdup(clean);
	}
	/* The final reason's own code wins over the last error's. */
	if (outer_len > 0 && (inner != clean || status == NULL)) {
		status = clean;
		reply_len = outer_len;
	}
	if (status == NULL && is_reply) {
		char cls[8] = { reply[0], '.', '0', '.', '0', '\0' };

		if (report_status_fits(action, reply[0]))
			g_strlcpy(diag_r->status, cls, sizeof diag_r->status);
	} else if (status != NULL && report_status_fits(action, status[0]) &&
		   reply_len < sizeof diag_r->status) {
		memcpy(diag_r->status, status, reply_len);
		diag_r->status[reply_len] = '\0';
	}
	diag_r->human = g_steal_pointer(&clean);
}

void
imta_notice_diagnostic_clear(ImtaNoticeDiagnostic *diag)
{
	g_clear_pointer(&diag->remote_mta, g_free);
	g_clear_pointer(&diag->type, g_free);
	g_clear_pointer(&diag->text, g_free);
	g_clear_pointer(&diag->human, g_free);
}

/* ---- what is returned of the original ------------------------------------ */

typedef enum {
	RETURN_FULL,
	RETURN_HEADERS_ASKED,   /* RET=HDRS */
	RETURN_HEADERS_USUAL,   /* delays and successes without RET=FULL */
	RETURN_HEADERS_SIZE,    /* above CONTENT_RETURN_BLOCK_LIMIT */
	RETURN_HEADERS_SHAPE,   /* a line over 998 octets or a NUL byte */
} ReturnMode;

typedef struct {
	ReturnMode mode;
	gboolean eight_bit;
	gboolean header_cut;    /* the header was longer than REPORT_MAX_HEADER */
	GString *header;        /* the header, for the RETURN_HEADERS_* modes */
} ReportReturn;

/* Read from the original until `left` is used up: bounded by its size,
 * since the queue file goes on after the content. */
static gssize
report_read(GInputStream *in, char *buf, gsize size, goffset *left, GError **error)
{
	gssize n;

	if (*left <= 0)
		return 0;
	n = g_input_stream_read(in, buf, (gsize)MIN((goffset)size, *left), NULL, error);
	if (n == 0) {
		g_set_error(error, IMTA_NOTICE_ERROR, IMTA_NOTICE_ERROR_TEMPORARY,
			    "the original message ends %" G_GOFFSET_FORMAT " bytes early", *left);
		return -1;
	}
	if (n > 0)
		*left -= n;
	return n;
}

static GInputStream *
report_open(const ImtaMessage *original, GError **error)
{
	g_autoptr(GError) local = NULL;
	GInputStream *in = imta_message_open_content(original, &local);

	if (in == NULL)
		g_set_error(error, IMTA_NOTICE_ERROR, IMTA_NOTICE_ERROR_TEMPORARY,
			    "cannot read the original message: %s", local->message);
	return in;
}

/* Can the whole original go into a message: no line over 998 octets, no
 * NUL?  Notes 8-bit bytes on the way. */
static gboolean
report_scan(const ImtaMessage *original, gboolean *clean_r, gboolean *eight_bit_r,
	    GError **error)
{
	g_autoptr(GInputStream) in = report_open(original, error);
	g_autofree char *buf = g_malloc(REPORT_CHUNK);
	goffset left = imta_message_size(original);
	gsize col = 0;
	gssize n;

	*clean_r = TRUE;
	*eight_bit_r = FALSE;
	if (in == NULL)
		return FALSE;
	while ((n = report_read(in, buf, REPORT_CHUNK, &left, error)) > 0) {
		for (gssize i = 0; i < n; i++) {
			guchar c = (guchar)buf[i];

			if (c == '\n') {
				col = 0;
				continue;
			}
			if (c == '\0' || ++col > REPORT_MAX_LINE) {
				*clean_r = FALSE;
				return TRUE;
			}
			if (c >= 0x80)
				*eight_bit_r = TRUE;
		}
	}
	return n == 0;
}

/* The original's header (up to its first empty line), with NUL bytes
 * made spaces and lines over 998 octets folded. */
static gboolean
report_read_header(const ImtaMessage *original, ReportReturn *ret, GError **error)
{
	g_autoptr(GInputStream) in = report_open(original, error);
	char buf[8192];
	goffset left = imta_message_size(original);
	gsize col = 0;
	gssize n;

	if (in == NULL)
		return FALSE;
	while ((n = report_read(in, buf, sizeof buf, &left, error)) > 0) {
		for (gssize i = 0; i < n; i++) {
			char c = buf[i] == '\0' ? ' ' : buf[i];

			if (c == '\n' && col == 0)
				return TRUE;            /* the empty line ending the header */
			if (ret->header->len >= REPORT_MAX_HEADER) {
				if (col > 0)
					g_string_append_c(ret->header, '\n');
				ret->header_cut = TRUE;
				return TRUE;
			}
			if (c != '\n' && col >= REPORT_MAX_LINE) {
				g_string_append(ret->header, "\n ");
				col = 1;
			}
			g_string_append_c(ret->header, c);
			col = c == '\n' ? 0 : col + 1;
			if ((guchar)c >= 0x80)
				ret->eight_bit = TRUE;
		}
	}
	if (n < 0)
		return FALSE;
	if (col > 0)
		g_string_append_c(ret->header, '\n');
	return TRUE;
}

static gboolean
report_plan_return(const ImtaNoticeReport *report, const ImtaMessage *original,
		   ReportReturn *ret, GError **error)
{
	gboolean clean = TRUE;

	memset(ret, 0, sizeof *ret);
	if (report->ret == IMTA_RET_HDRS)
		ret->mode = RETURN_HEADERS_ASKED;
	else if (report->kind != IMTA_NOTICE_FAILURE && report->ret != IMTA_RET_FULL)
		ret->mode = RETURN_HEADERS_USUAL;
	else if (report->content_limit > 0 && imta_message_size(original) > report->content_limit)
		ret->mode = RETURN_HEADERS_SIZE;
	else if (!report_scan(original, &clean, &ret->eight_bit, error))
		return FALSE;
	else
		ret->mode = clean ? RETURN_FULL : RETURN_HEADERS_SHAPE;
	if (ret->mode == RETURN_FULL)
		return TRUE;
	ret->eight_bit = FALSE;
	ret->header = g_string_new(NULL);
	return report_read_header(original, ret, error);
}

/* ---- the parts ------------------------------------------------------------- */

static const char *
report_action_name(ImtaNoticeAction action)
{
	static const char *const names[] = {
		[IMTA_NOTICE_ACTION_FAILED] = "failed",
		[IMTA_NOTICE_ACTION_DELAYED] = "delayed",
		[IMTA_NOTICE_ACTION_DELIVERED] = "delivered",
		[IMTA_NOTICE_ACTION_RELAYED] = "relayed",
	};

	return action < G_N_ELEMENTS(names) ? names[action] : "failed";
}

static const char *
report_subject(ImtaNoticeKind kind)
{
	switch (kind) {
	case IMTA_NOTICE_FAILURE:
		return "Delivery failure: your message was returned";
	case IMTA_NOTICE_DELAY:
		return "Delivery delayed: your message is still queued";
	case IMTA_NOTICE_SUCCESS:
		break;
	}
	return "Delivery report: your message was delivered";
}

static void
report_header(GString *out, const ImtaNoticeReport *report, gboolean eight_bit)
{
	g_autofree char *date = imta_notice_format_date(report->date);
	g_autofree char *from = report_clean_field(report->from_address);
	g_autofree char *to = report_clean_field(report->to);
	g_autofree char *content_type = g_strdup_printf(
		"multipart/report; report-type=delivery-status; boundary=\"%s\"",
		report->boundary);
	g_autoptr(GString) from_field = g_string_new(NULL);
	g_autoptr(GString) to_field = g_string_new(NULL);

	if (report->from_personal != NULL && report->from_personal[0] != '\0') {
		report_append_phrase(from_field, report->from_personal);
		g_string_append_c(from_field, ' ');
	}
	g_string_append_printf(from_field, "<%s>", from);
	report_field(out, "From", from_field->str);
	g_string_append_printf(to_field, "<%s>", to);
	report_field(out, "To", to_field->str);
	report_field(out, "Subject", report_subject(report->kind));
	report_field(out, "Date", date);
	report_field(out, "Message-ID", report->message_id);
	g_string_append(out, "Auto-Submitted: auto-replied\n");
	g_string_append(out, "MIME-Version: 1.0\n");
	report_field(out, "Content-Type", content_type);
	if (eight_bit)
		g_string_append(out, "Content-Transfer-Encoding: 8bit\n");
	g_string_append(out, "\nThis is a delivery status notification in MIME format.\n");
}

static void
report_boundary(GString *out, const ImtaNoticeReport *report, gboolean last)
{
	g_string_append_printf(out, "\n--%s%s\n", report->boundary, last ? "--" : "");
}

/* "the recipient" / "the 3 recipients" */
static char *
report_count(guint n)
{
	return n == 1 ? g_strdup("the recipient") : g_strdup_printf("the %u recipients", n);
}

static const char report_relayed_note[] =
	" A recipient marked \"relayed\" was handed on to another mail system, which may "
	"not report its final delivery.";

static void
report_intro(GString *out, const ImtaNoticeReport *report)
{
	g_autofree char *who = report_count(report->n_rcpts);
	g_autofree char *text = NULL;
	gboolean relayed = FALSE;

	for (guint i = 0; i < report->n_rcpts; i++)
		relayed = relayed || report->rcpts[i].action == IMTA_NOTICE_ACTION_RELAYED;
	switch (report->kind) {
	case IMTA_NOTICE_FAILURE:
		text = g_strdup_printf("Your message could not be delivered to %s below. "
				       "Delivery failed for good, and no further attempt will "
				       "be made.", who);
		break;
	case IMTA_NOTICE_DELAY: {
		g_autofree char *until = report->retry_until > 0
						 ? imta_notice_format_date(report->retry_until)
						 : NULL;

		text = g_strdup_printf("Your message has not yet been delivered to %s below. "
				       "The mail system will keep trying%s%s, so you do not "
				       "need to send it again. If it still cannot be delivered "
				       "by then, it will be returned to you.", who,
				       until != NULL ? " until " : "", until != NULL ? until : "");
		break;
	}
	case IMTA_NOTICE_SUCCESS:
		text = g_strdup_printf("Your message was delivered to %s below, as you asked "
				       "to be told.%s", who, relayed ? report_relayed_note : "");
		break;
	}
	report_wrap(out, text, 0);
}

/* "<bob@example.com> (originally <Bob@Example.COM>)" */
static char *
report_recipient_line(const ImtaNoticeRecipient *rcpt)
{
	g_autofree char *address = report_clean_field(rcpt->address);
	const char *semi = rcpt->orcpt != NULL ? strchr(rcpt->orcpt, ';') : NULL;
	g_autofree char *original = NULL;

	if (semi == NULL || semi[1] == '\0')
		return g_strdup_printf("<%s>", address);
	original = report_clean_field(semi + 1);
	if (g_ascii_strcasecmp(original, address) == 0)
		return g_strdup_printf("<%s>", address);
	if (semi - rcpt->orcpt == 6 && g_ascii_strncasecmp(rcpt->orcpt, "rfc822", 6) == 0)
		return g_strdup_printf("<%s> (originally <%s>)", address, original);
	return g_strdup_printf("<%s> (originally %s)", address, original);
}

static void
report_returned_note(GString *out, const ImtaNoticeReport *report, const ReportReturn *ret)
{
	g_autofree char *text = NULL;

	switch (ret->mode) {
	case RETURN_FULL:
		text = g_strdup("Your message is attached below.");
		break;
	case RETURN_HEADERS_ASKED:
		text = g_strdup("Only the header of your message is attached below, as you "
				"asked.");
		break;
	case RETURN_HEADERS_USUAL:
		text = g_strdup("The header of your message is attached below.");
		break;
	case RETURN_HEADERS_SIZE:
		text = g_strdup_printf("Only the header of your message is attached below: the "
				       "whole message is larger than the %" G_GOFFSET_FORMAT
				       " bytes returned at most.", report->content_limit);
		break;
	case RETURN_HEADERS_SHAPE:
		text = g_strdup("Only the header of your message is attached below: its body "
				"has lines longer than 998 octets or NUL bytes, which a message "
				"cannot carry.");
		break;
	}
	if (ret->header_cut) {
		char *longer = g_strdup_printf("%s The header is cut short after %d bytes.", text,
					       REPORT_MAX_HEADER);

		g_free(text);
		text = longer;
	}
	report_wrap(out, text, 0);
}

static void
report_text_part(GString *out, const ImtaNoticeReport *report, const ReportReturn *ret)
{
	g_autofree char *host = report_sanitize(report->reporting_mta);

	report_boundary(out, report, FALSE);
	g_string_append(out, "Content-Type: text/plain; charset=us-ascii\n"
			     "Content-Description: Notification\n\n");
	g_string_append_printf(out, "This is the mail system at %s.\n\n", host);
	report_intro(out, report);
	for (guint i = 0; i < report->n_rcpts; i++) {
		const ImtaNoticeRecipient *rcpt = &report->rcpts[i];
		g_auto(ImtaNoticeDiagnostic) diag = { 0 };
		g_autofree char *who = report_recipient_line(rcpt);
		g_autofree char *what = NULL;

		imta_notice_parse_diagnostic(rcpt->diagnostic, rcpt->action, &diag);
		what = g_strdup_printf("%s%s%s", report_action_name(rcpt->action),
				       diag.human != NULL ? ": " : "",
				       diag.human != NULL ? diag.human : "");
		g_string_append_c(out, '\n');
		report_wrap(out, who, 0);
		report_wrap(out, what, 4);
	}
	g_string_append_c(out, '\n');
	report_returned_note(out, report, ret);
}

static void
report_date_field(GString *out, const char *name, gint64 when)
{
	g_autofree char *date = imta_notice_format_date(when);

	report_field(out, name, date);
}

static void
report_status_recipient(GString *out, const ImtaNoticeReport *report,
			const ImtaNoticeRecipient *rcpt)
{
	g_auto(ImtaNoticeDiagnostic) diag = { 0 };
	g_autofree char *final = report_clean_field(rcpt->address);
	g_autofree char *value = NULL;

	imta_notice_parse_diagnostic(rcpt->diagnostic, rcpt->action, &diag);
	g_string_append_c(out, '\n');
	if (rcpt->orcpt != NULL && rcpt->orcpt[0] != '\0') {
		g_autofree char *orcpt = report_clean_field(rcpt->orcpt);

		value = strchr(orcpt, ';') != NULL ? g_strdup(orcpt)
						   : g_strconcat("rfc822;", orcpt, NULL);
		report_field(out, "Original-Recipient", value);
		g_clear_pointer(&value, g_free);
	}
	value = g_strconcat("rfc822; ", final, NULL);
	report_field(out, "Final-Recipient", value);
	g_string_append_printf(out, "Action: %s\n", report_action_name(rcpt->action));
	g_string_append_printf(out, "Status: %s\n", diag.status);
	if (diag.remote_mta != NULL) {
		g_clear_pointer(&value, g_free);
		value = g_strconcat("dns; ", diag.remote_mta, NULL);
		report_field(out, "Remote-MTA", value);
	}
	if (diag.type != NULL) {
		g_clear_pointer(&value, g_free);
		value = g_strconcat(diag.type, "; ", diag.text, NULL);
		report_field(out, "Diagnostic-Code", value);
	}
	if (rcpt->last_attempt > 0)
		report_date_field(out, "Last-Attempt-Date", rcpt->last_attempt);
	if (rcpt->action == IMTA_NOTICE_ACTION_DELAYED && report->retry_until > 0)
		report_date_field(out, "Will-Retry-Until", report->retry_until);
}

static void
report_status_part(GString *out, const ImtaNoticeReport *report)
{
	g_autofree char *host = report_clean_field(report->reporting_mta);
	g_autofree char *mta = g_strconcat("dns; ", host, NULL);

	report_boundary(out, report, FALSE);
	g_string_append(out, "Content-Type: message/delivery-status\n"
			     "Content-Description: Delivery report\n\n");
	if (report->envid != NULL && report->envid[0] != '\0') {
		g_autofree char *envid = report_clean_field(report->envid);

		report_field(out, "Original-Envelope-Id", envid);
	}
	report_field(out, "Reporting-MTA", mta);
	if (report->arrival > 0)
		report_date_field(out, "Arrival-Date", report->arrival);
	if (report->queue_id != NULL) {
		g_autofree char *id = report_clean_field(report->queue_id);

		report_field(out, "X-IMTA-Queue-ID", id);
	}
	for (guint i = 0; i < report->n_rcpts; i++)
		report_status_recipient(out, report, &report->rcpts[i]);
}

/* ---- writing ------------------------------------------------------------- */

typedef struct {
	ImtaNoticeSink sink;
	gpointer data;
	GString *buf;
} ReportOut;

static gboolean
report_flush(ReportOut *out, GError **error)
{
	gboolean ok = out->buf->len == 0 || out->sink(out->data, out->buf->str, out->buf->len,
						      error);

	g_string_truncate(out->buf, 0);
	return ok;
}

/* Stream the whole original to the sink, ending it with a newline. */
static gboolean
report_copy_original(ReportOut *out, const ImtaMessage *original, GError **error)
{
	g_autoptr(GInputStream) in = report_open(original, error);
	g_autofree char *buf = g_malloc(REPORT_CHUNK);
	goffset left = imta_message_size(original);
	char last = '\n';
	gssize n;

	if (in == NULL || !report_flush(out, error))
		return FALSE;
	while ((n = report_read(in, buf, REPORT_CHUNK, &left, error)) > 0) {
		if (!out->sink(out->data, buf, (gsize)n, error))
			return FALSE;
		last = buf[n - 1];
	}
	if (n < 0)
		return FALSE;
	if (last != '\n')
		g_string_append_c(out->buf, '\n');
	return TRUE;
}

static gboolean
report_original_part(ReportOut *out, const ImtaNoticeReport *report,
		     const ImtaMessage *original, const ReportReturn *ret, GError **error)
{
	gboolean whole = ret->mode == RETURN_FULL;
	const char *what = report->kind == IMTA_NOTICE_FAILURE ? "Undelivered message"
			   : report->kind == IMTA_NOTICE_DELAY ? "Delayed message"
								: "Delivered message";

	report_boundary(out->buf, report, FALSE);
	g_string_append_printf(out->buf, "Content-Type: %s\nContent-Description: %s%s\n",
			       whole ? "message/rfc822" : "text/rfc822-headers", what,
			       whole ? "" : " header");
	if (ret->eight_bit)
		g_string_append(out->buf, "Content-Transfer-Encoding: 8bit\n");
	g_string_append_c(out->buf, '\n');
	if (!whole) {
		g_string_append_len(out->buf, ret->header->str, (gssize)ret->header->len);
		return TRUE;
	}
	return report_copy_original(out, original, error);
}

gboolean
imta_notice_report_write(const ImtaNoticeReport *report, const ImtaMessage *original,
			 ImtaNoticeSink sink, gpointer data, GError **error)
{
	ReportOut out = { sink, data, NULL };
	ReportReturn ret;
	gboolean ok;

	g_return_val_if_fail(report->boundary != NULL && report->message_id != NULL, FALSE);
	if (!report_plan_return(report, original, &ret, error)) {
		if (ret.header != NULL)
			g_string_free(ret.header, TRUE);
		return FALSE;
	}
	out.buf = g_string_sized_new(8192);
	report_header(out.buf, report, ret.eight_bit);
	report_text_part(out.buf, report, &ret);
	report_status_part(out.buf, report);
	ok = report_original_part(&out, report, original, &ret, error);
	if (ok) {
		report_boundary(out.buf, report, TRUE);
		ok = report_flush(&out, error);
	}
	g_string_free(out.buf, TRUE);
	if (ret.header != NULL)
		g_string_free(ret.header, TRUE);
	return ok;
}
