/*
 * command.c - SMTP and LMTP command lines (RFC 5321 4.1): the verb, its
 * arguments, the MAIL and RCPT paths, and the ESMTP parameters of the
 * extensions the server offers (RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 3030
 * BINARYMIME, RFC 3461 DSN, RFC 4954 AUTH, RFC 6531 SMTPUTF8).  Every
 * refusal carries the reply the server sends as it is.
 */
#include "config.h"

#include <string.h>

#include <glib.h>

#include <imta/address.h>
#include <imta/smtp.h>
#include <imta/xtext.h>

/* RFC 3461 4.4 and 4.2: ENVID and ORCPT value lengths (as xtext). */
#define SMTP_ENVID_MAX 100
#define SMTP_ORCPT_MAX 500
/* AUTH= holds an xtext addr-spec: room for a path written as +XX. */
#define SMTP_AUTH_PARAM_MAX (3 * IMTA_SMTP_PATH_MAX)
/* RFC 4422 3.1: SASL mechanism names are 1 to 20 characters. */
#define SMTP_SASL_MECH_MAX 20
/* How much of the client's text an error message repeats. */
#define SMTP_SHOWN_MAX 40

typedef struct {
	const char *s;              /* the arguments after the verb, trimmed */
	gsize len;
	const ImtaSmtpOffer *offer;
	ImtaSmtpCommand *cmd;
	ImtaSmtpError *err;
	guint seen;                 /* SmtpParam bits already given */
} SmtpArgs;

typedef struct {
	const char *name;
	ImtaSmtpVerb verb;
	gboolean (*parse)(SmtpArgs *a, const char *name);
} SmtpVerbRow;

typedef enum {
	SMTP_PARAM_SIZE     = 1 << 0,
	SMTP_PARAM_BODY     = 1 << 1,
	SMTP_PARAM_RET      = 1 << 2,
	SMTP_PARAM_ENVID    = 1 << 3,
	SMTP_PARAM_AUTH     = 1 << 4,
	SMTP_PARAM_SMTPUTF8 = 1 << 5,
	SMTP_PARAM_NOTIFY   = 1 << 6,
	SMTP_PARAM_ORCPT    = 1 << 7,
} SmtpParam;

/* One ESMTP parameter as given; value is NULL when there is no '='. */
typedef struct {
	const char *keyword;
	gsize keyword_len;
	const char *value;
	gsize value_len;
} SmtpParamText;

typedef struct {
	const char *keyword;
	SmtpParam bit;
	gboolean (*apply)(SmtpArgs *a, const SmtpParamText *p);
} SmtpParamRow;

static gboolean G_GNUC_PRINTF(4, 5)
smtp_fail(ImtaSmtpError *err, guint code, const char *enhanced, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	err->code = code;
	err->enhanced = enhanced;
	err->text = g_strdup_vprintf(fmt, args);
	va_end(args);
	return FALSE;
}

/* The client's bytes made safe to repeat in a reply: printable ASCII kept,
 * anything else shown as '?', long text cut short. */
static char *
smtp_shown(const char *s, gsize n)
{
	GString *out = g_string_sized_new(MIN(n, SMTP_SHOWN_MAX) + 3);

	for (gsize i = 0; i < n && i < SMTP_SHOWN_MAX; i++) {
		guchar c = (guchar) s[i];

		g_string_append_c(out, c >= 0x20 && c < 0x7f && c != '"' ? (char) c : '?');
	}
	if (n > SMTP_SHOWN_MAX)
		g_string_append(out, "...");
	return g_string_free(out, FALSE);
}

static gboolean
smtp_is_space(char c)
{
	return c == ' ' || c == '\t';
}

static gsize
smtp_skip_space(const char *s, gsize len, gsize i)
{
	while (i < len && smtp_is_space(s[i]))
		i++;
	return i;
}

static gsize
smtp_word_end(const char *s, gsize len, gsize i)
{
	while (i < len && !smtp_is_space(s[i]))
		i++;
	return i;
}

static gboolean
smtp_has_8bit(const char *s, gsize n)
{
	for (gsize i = 0; i < n; i++) {
		if ((guchar) s[i] >= 0x80)
			return TRUE;
	}
	return FALSE;
}

static gboolean
smtp_has_control(const char *s, gsize n)
{
	for (gsize i = 0; i < n; i++) {
		guchar c = (guchar) s[i];

		if (c < 0x20 || c == 0x7f)
			return TRUE;
	}
	return FALSE;
}

/* ---- verbs without paths ------------------------------------------- */

/* HELO, EHLO, LHLO: one word; whether it is a valid host name is the
 * server's decision (imta_smtp_valid_helo). */
static gboolean
smtp_parse_hello(SmtpArgs *a, const char *name)
{
	if (a->len == 0 || smtp_word_end(a->s, a->len, 0) != a->len)
		return smtp_fail(a->err, 501, "5.5.4", "Syntax: %s hostname", name);
	a->cmd->arg = g_strndup(a->s, a->len);
	return TRUE;
}

static gboolean
smtp_parse_no_args(SmtpArgs *a, const char *name)
{
	if (a->len != 0)
		return smtp_fail(a->err, 501, "5.5.4", "Syntax: %s (no arguments)", name);
	return TRUE;
}

static gboolean
smtp_parse_optional_arg(SmtpArgs *a, const char *name)
{
	if (a->len > 0)
		a->cmd->arg = g_strndup(a->s, a->len);
	return TRUE;
}

static gboolean
smtp_parse_required_arg(SmtpArgs *a, const char *name)
{
	if (a->len == 0)
		return smtp_fail(a->err, 501, "5.5.4", "Syntax: %s %s", name,
				 a->cmd->verb == IMTA_SMTP_EXPN ? "list" : "address");
	a->cmd->arg = g_strndup(a->s, a->len);
	return TRUE;
}

/* A decimal number of at most 19 digits (so it fits a gint64). */
static gboolean
smtp_parse_number(const char *s, gsize n, guint64 *value)
{
	guint64 v = 0;

	if (n == 0 || n > 19)
		return FALSE;
	for (gsize i = 0; i < n; i++) {
		if (!g_ascii_isdigit(s[i]))
			return FALSE;
		v = v * 10 + (guint64) (s[i] - '0');
	}
	*value = v;
	return TRUE;
}

/* RFC 3030: BDAT chunk-size [SP "LAST"]. */
static gboolean
smtp_parse_bdat(SmtpArgs *a, const char *name)
{
	gsize end = smtp_word_end(a->s, a->len, 0);
	gsize next = smtp_skip_space(a->s, a->len, end);

	if (!smtp_parse_number(a->s, end, &a->cmd->chunk_size))
		return smtp_fail(a->err, 501, "5.5.4", "Syntax: BDAT size [LAST]");
	if (next == a->len)
		return TRUE;
	if (a->len - next != 4 || g_ascii_strncasecmp(a->s + next, "LAST", 4) != 0)
		return smtp_fail(a->err, 501, "5.5.4", "Syntax: BDAT size [LAST]");
	a->cmd->last = TRUE;
	return TRUE;
}

static gboolean
smtp_valid_mechanism(const char *s, gsize n)
{
	if (n == 0 || n > SMTP_SASL_MECH_MAX)
		return FALSE;
	for (gsize i = 0; i < n; i++) {
		if (!g_ascii_isalnum(s[i]) && s[i] != '-' && s[i] != '_')
			return FALSE;
	}
	return TRUE;
}

/* RFC 4954: AUTH mechanism [SP initial-response]; the response is checked
 * by whoever decodes it. */
static gboolean
smtp_parse_auth(SmtpArgs *a, const char *name)
{
	gsize end = smtp_word_end(a->s, a->len, 0);
	gsize next = smtp_skip_space(a->s, a->len, end);
	gsize resp_end = smtp_word_end(a->s, a->len, next);

	if (!smtp_valid_mechanism(a->s, end) || resp_end != a->len)
		return smtp_fail(a->err, 501, "5.5.4",
				 "Syntax: AUTH mechanism [initial-response]");
	a->cmd->arg = g_ascii_strup(a->s, (gssize) end);
	if (next < a->len)
		a->cmd->arg2 = g_strndup(a->s + next, a->len - next);
	return TRUE;
}

/* ---- MAIL parameters ------------------------------------------------- */

static gboolean
smtp_param_is(const SmtpParamText *p, const char *word)
{
	return strlen(word) == p->value_len &&
	       g_ascii_strncasecmp(p->value, word, p->value_len) == 0;
}

static gboolean
smtp_bad_value(SmtpArgs *a, const SmtpParamText *p, const char *expected)
{
	g_autofree char *shown = smtp_shown(p->value, p->value_len);
	g_autofree char *keyword = g_ascii_strup(p->keyword, (gssize) p->keyword_len);

	return smtp_fail(a->err, 501, "5.5.4", "Bad %s value \"%s\" (expected %s)", keyword, shown,
			 expected);
}

static gboolean
smtp_unsupported(SmtpArgs *a, const SmtpParamText *p)
{
	g_autofree char *shown = smtp_shown(p->keyword, p->keyword_len);
	g_autofree char *keyword = g_ascii_strup(shown, -1);

	return smtp_fail(a->err, 555, "5.5.4", "Unsupported parameter \"%s\"", keyword);
}

static gboolean
smtp_param_size(SmtpArgs *a, const SmtpParamText *p)
{
	guint64 size = 0;
	gint64 max = a->offer->max_size;
	gboolean overflow;

	for (gsize i = 0; i < p->value_len; i++) {
		if (!g_ascii_isdigit(p->value[i]))
			return smtp_bad_value(a, p, "a number of bytes");
	}
	overflow = !smtp_parse_number(p->value, p->value_len, &size) || size > G_MAXINT64;
	if (max > 0 && (overflow || size > (guint64) max))
		return smtp_fail(a->err, 552, "5.3.4",
				 "Message size exceeds fixed limit of %" G_GINT64_FORMAT " bytes",
				 max);
	if (overflow)
		return smtp_fail(a->err, 552, "5.3.4", "Message size too large");
	a->cmd->size = (gint64) size;
	return TRUE;
}

/* RFC 6152 and RFC 3030.  A value of an extension not offered is a
 * parameter value not implemented (RFC 5321 4.2.3: 504). */
static gboolean
smtp_param_body(SmtpArgs *a, const SmtpParamText *p)
{
	const ImtaSmtpOffer *o = a->offer;

	if (!o->eightbitmime && !o->binarymime)
		return smtp_unsupported(a, p);
	if (smtp_param_is(p, "7BIT")) {
		a->cmd->body = IMTA_SMTP_BODY_7BIT;
	} else if (smtp_param_is(p, "8BITMIME")) {
		if (!o->eightbitmime)
			return smtp_fail(a->err, 504, "5.5.4", "BODY=8BITMIME is not supported");
		a->cmd->body = IMTA_SMTP_BODY_8BITMIME;
	} else if (smtp_param_is(p, "BINARYMIME")) {
		if (!o->binarymime)
			return smtp_fail(a->err, 504, "5.5.4", "BODY=BINARYMIME is not supported");
		a->cmd->body = IMTA_SMTP_BODY_BINARYMIME;
	} else {
		return smtp_bad_value(a, p, "7BIT, 8BITMIME or BINARYMIME");
	}
	return TRUE;
}

static gboolean
smtp_param_ret(SmtpArgs *a, const SmtpParamText *p)
{
	if (!a->offer->dsn)
		return smtp_unsupported(a, p);
	if (smtp_param_is(p, "FULL"))
		a->cmd->ret = IMTA_RET_FULL;
	else if (smtp_param_is(p, "HDRS"))
		a->cmd->ret = IMTA_RET_HDRS;
	else
		return smtp_bad_value(a, p, "FULL or HDRS");
	return TRUE;
}

/* Decode an xtext value; control characters are refused even when encoded,
 * since ENVID, ORCPT and AUTH= end up in DSN and trace header fields. */
static char *
smtp_decode_xtext(SmtpArgs *a, const char *keyword, const char *value, gsize len)
{
	g_autoptr(GError) error = NULL;
	char *decoded = imta_xtext_decode(value, (gssize) len, NULL, &error);

	if (decoded == NULL) {
		smtp_fail(a->err, 501, "5.5.4", "Bad %s value: %s", keyword, error->message);
		return NULL;
	}
	if (smtp_has_control(decoded, strlen(decoded))) {
		g_free(decoded);
		smtp_fail(a->err, 501, "5.5.4", "Bad %s value: control characters are not allowed",
			  keyword);
		return NULL;
	}
	return decoded;
}

static gboolean
smtp_param_envid(SmtpArgs *a, const SmtpParamText *p)
{
	if (!a->offer->dsn)
		return smtp_unsupported(a, p);
	if (p->value_len > SMTP_ENVID_MAX)
		return smtp_fail(a->err, 501, "5.5.4", "ENVID longer than %d characters",
				 SMTP_ENVID_MAX);
	a->cmd->envid = smtp_decode_xtext(a, "ENVID", p->value, p->value_len);
	return a->cmd->envid != NULL;
}

static gboolean
smtp_param_auth(SmtpArgs *a, const SmtpParamText *p)
{
	if (!a->offer->auth)
		return smtp_unsupported(a, p);
	if (p->value_len > SMTP_AUTH_PARAM_MAX)
		return smtp_fail(a->err, 501, "5.5.4", "AUTH= longer than %d characters",
				 SMTP_AUTH_PARAM_MAX);
	a->cmd->auth = smtp_decode_xtext(a, "AUTH", p->value, p->value_len);
	return a->cmd->auth != NULL;
}

static gboolean
smtp_param_smtputf8(SmtpArgs *a, const SmtpParamText *p)
{
	if (!a->offer->smtputf8)
		return smtp_unsupported(a, p);
	a->cmd->smtputf8 = TRUE;
	return TRUE;
}

/* ---- RCPT parameters ------------------------------------------------- */

static guint
smtp_notify_word(const char *s, gsize n)
{
	static const struct { const char *word; guint bit; } words[] = {
		{ "NEVER", IMTA_NOTIFY_NEVER }, { "SUCCESS", IMTA_NOTIFY_SUCCESS },
		{ "FAILURE", IMTA_NOTIFY_FAILURE }, { "DELAY", IMTA_NOTIFY_DELAY },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(words); i++) {
		if (strlen(words[i].word) == n && g_ascii_strncasecmp(s, words[i].word, n) == 0)
			return words[i].bit;
	}
	return 0;
}

static gboolean
smtp_param_notify(SmtpArgs *a, const SmtpParamText *p)
{
	guint notify = 0;
	gsize i = 0;

	if (!a->offer->dsn)
		return smtp_unsupported(a, p);
	while (i <= p->value_len) {
		const char *comma = memchr(p->value + i, ',', p->value_len - i);
		gsize end = comma != NULL ? (gsize) (comma - p->value) : p->value_len;
		guint bit = smtp_notify_word(p->value + i, end - i);

		if (bit == 0)
			return smtp_bad_value(a, p, "NEVER, or SUCCESS, FAILURE and DELAY "
					      "separated by commas");
		notify |= bit;
		i = end + 1;
	}
	if ((notify & IMTA_NOTIFY_NEVER) && notify != IMTA_NOTIFY_NEVER)
		return smtp_bad_value(a, p, "NEVER alone");
	a->cmd->notify = notify;
	return TRUE;
}

/* RFC 5322 atext: what an atom is made of. */
static gboolean
smtp_is_atext(char c)
{
	return g_ascii_isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* RFC 3461 4.2: ORCPT=addr-type ";" xtext, addr-type an atom. */
static gboolean
smtp_param_orcpt(SmtpArgs *a, const SmtpParamText *p)
{
	const char *semi = memchr(p->value, ';', p->value_len);
	gsize type_len = semi != NULL ? (gsize) (semi - p->value) : 0;
	g_autofree char *decoded = NULL;

	if (!a->offer->dsn)
		return smtp_unsupported(a, p);
	if (p->value_len > SMTP_ORCPT_MAX)
		return smtp_fail(a->err, 501, "5.5.4", "ORCPT longer than %d characters",
				 SMTP_ORCPT_MAX);
	if (semi == NULL || type_len == 0 || type_len + 1 == p->value_len)
		return smtp_bad_value(a, p, "type;address, as in rfc822;user@example.com");
	for (gsize i = 0; i < type_len; i++) {
		if (!smtp_is_atext(p->value[i]))
			return smtp_bad_value(a, p, "type;address, as in rfc822;user@example.com");
	}
	decoded = smtp_decode_xtext(a, "ORCPT", semi + 1, p->value_len - type_len - 1);
	if (decoded == NULL)
		return FALSE;
	a->cmd->orcpt = g_strdup_printf("%.*s;%s", (int) type_len, p->value, decoded);
	return TRUE;
}

static const SmtpParamRow smtp_mail_params[] = {
	{ "SIZE", SMTP_PARAM_SIZE, smtp_param_size },
	{ "BODY", SMTP_PARAM_BODY, smtp_param_body },
	{ "RET", SMTP_PARAM_RET, smtp_param_ret },
	{ "ENVID", SMTP_PARAM_ENVID, smtp_param_envid },
	{ "AUTH", SMTP_PARAM_AUTH, smtp_param_auth },
	{ "SMTPUTF8", SMTP_PARAM_SMTPUTF8, smtp_param_smtputf8 },
	{ NULL, 0, NULL },
};

static const SmtpParamRow smtp_rcpt_params[] = {
	{ "NOTIFY", SMTP_PARAM_NOTIFY, smtp_param_notify },
	{ "ORCPT", SMTP_PARAM_ORCPT, smtp_param_orcpt },
	{ NULL, 0, NULL },
};

/* ---- the parameter list ---------------------------------------------- */

/* RFC 5321 esmtp-keyword: (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"). */
static gboolean
smtp_valid_keyword(const char *s, gsize n)
{
	if (n == 0 || !g_ascii_isalnum(s[0]))
		return FALSE;
	for (gsize i = 1; i < n; i++) {
		if (!g_ascii_isalnum(s[i]) && s[i] != '-')
			return FALSE;
	}
	return TRUE;
}

/* RFC 5321 esmtp-value: printable ASCII.  '=' is let through for the xtext
 * values, which some clients do not encode. */
static gboolean
smtp_valid_value(const char *s, gsize n)
{
	if (n == 0)
		return FALSE;
	for (gsize i = 0; i < n; i++) {
		if ((guchar) s[i] < 0x21 || (guchar) s[i] > 0x7e)
			return FALSE;
	}
	return TRUE;
}

static gboolean
smtp_split_param(SmtpArgs *a, const char *s, gsize n, SmtpParamText *p)
{
	const char *eq = memchr(s, '=', n);
	g_autofree char *shown = NULL;

	p->keyword = s;
	p->keyword_len = eq != NULL ? (gsize) (eq - s) : n;
	p->value = eq != NULL ? eq + 1 : NULL;
	p->value_len = eq != NULL ? n - p->keyword_len - 1 : 0;
	if (smtp_valid_keyword(p->keyword, p->keyword_len) &&
	    (p->value == NULL || smtp_valid_value(p->value, p->value_len)))
		return TRUE;
	shown = smtp_shown(s, n);
	return smtp_fail(a->err, 501, "5.5.4", "Bad parameter \"%s\" (expected keyword=value)",
			 shown);
}

static const SmtpParamRow *
smtp_find_param(const SmtpParamRow *table, const SmtpParamText *p)
{
	for (const SmtpParamRow *row = table; row->keyword != NULL; row++) {
		if (strlen(row->keyword) == p->keyword_len &&
		    g_ascii_strncasecmp(row->keyword, p->keyword, p->keyword_len) == 0)
			return row;
	}
	return NULL;
}

static gboolean
smtp_apply_param(SmtpArgs *a, const SmtpParamRow *table, const SmtpParamText *p)
{
	const SmtpParamRow *row = smtp_find_param(table, p);

	if (row == NULL || !a->offer->esmtp)
		return smtp_unsupported(a, p);
	if (a->seen & row->bit)
		return smtp_fail(a->err, 501, "5.5.4", "Duplicate parameter \"%s\"", row->keyword);
	a->seen |= row->bit;
	if (row->bit == SMTP_PARAM_SMTPUTF8) {
		if (p->value != NULL)
			return smtp_fail(a->err, 501, "5.5.4", "SMTPUTF8 takes no value");
	} else if (p->value == NULL) {
		return smtp_fail(a->err, 501, "5.5.4", "%s needs a value (%s=...)", row->keyword,
				 row->keyword);
	}
	return row->apply(a, p);
}

/* Parameters separated by spaces, from offset i of the arguments. */
static gboolean
smtp_parse_params(SmtpArgs *a, gsize i, const SmtpParamRow *table)
{
	for (i = smtp_skip_space(a->s, a->len, i); i < a->len;
	     i = smtp_skip_space(a->s, a->len, i)) {
		gsize end = smtp_word_end(a->s, a->len, i);
		SmtpParamText p;

		if (!smtp_split_param(a, a->s + i, end - i, &p) || !smtp_apply_param(a, table, &p))
			return FALSE;
		i = end;
	}
	return TRUE;
}

/* ---- MAIL and RCPT ---------------------------------------------------- */

/* Length of "<...>" at the start of s up to and including the '>' that is
 * not inside a quoted string, or 0 when it is not closed. */
static gsize
smtp_path_extent(const char *s, gsize n)
{
	gboolean quoted = FALSE;

	for (gsize i = 1; i < n; i++) {
		if (quoted && s[i] == '\\')
			i++;
		else if (s[i] == '"')
			quoted = !quoted;
		else if (!quoted && s[i] == '>')
			return i + 1;
	}
	return 0;
}

typedef struct {
	const char *usage;          /* "Syntax: MAIL FROM:<address> [parameters]" */
	const char *enhanced;       /* "5.1.7" */
	const char *who;            /* "sender" */
	const char *too_long;       /* "Sender address too long" */
	gboolean sender;
} SmtpPathKind;

static const SmtpPathKind smtp_sender_path = {
	"Syntax: MAIL FROM:<address> [parameters]", "5.1.7", "sender",
	"Sender address too long", TRUE,
};
static const SmtpPathKind smtp_recipient_path = {
	"Syntax: RCPT TO:<address> [parameters]", "5.1.3", "recipient",
	"Recipient address too long", FALSE,
};

static gboolean
smtp_is_postmaster(const char *path, gsize n)
{
	return n == 12 && g_ascii_strncasecmp(path, "<postmaster>", n) == 0;
}

/* The path between its angle brackets, through the address parser; the
 * source route is dropped (RFC 5321 C). */
static gboolean
smtp_check_path(SmtpArgs *a, const SmtpPathKind *kind, const char *path, gsize n, gboolean utf8)
{
	ImtaAddressFlags flags = IMTA_ADDRESS_ANGLE | (utf8 ? IMTA_ADDRESS_UTF8 : 0);
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaAddress) address = NULL;

	if (kind->sender)
		flags |= IMTA_ADDRESS_ALLOW_EMPTY;
	if (!kind->sender && smtp_is_postmaster(path, n)) {
		a->cmd->path = g_strdup("postmaster");
		return TRUE;
	}
	if (smtp_has_control(path, n))
		return smtp_fail(a->err, 501, kind->enhanced,
				 "Bad %s address syntax: control character in address", kind->who);
	address = imta_address_parse(path, (gssize) n, flags, &error);
	if (address == NULL && g_error_matches(error, IMTA_ADDRESS_ERROR,
					       IMTA_ADDRESS_ERROR_TOO_LONG))
		return smtp_fail(a->err, 501, kind->enhanced, "%s: %s", kind->too_long,
				 error->message);
	if (address == NULL)
		return smtp_fail(a->err, 501, kind->enhanced, "Bad %s address syntax: %s",
				 kind->who, error->message);
	if (address->empty)
		a->cmd->path = g_strdup("");
	else
		a->cmd->path = g_strdup_printf("%s@%s", address->local, address->domain);
	return TRUE;
}

/* "FROM:" / "TO:" then, with spaces allowed before it, the bracketed path
 * and its parameters. */
static gboolean
smtp_parse_path_command(SmtpArgs *a, const SmtpPathKind *kind, const char *prefix,
			const SmtpParamRow *params)
{
	gsize plen = strlen(prefix);
	gsize start, extent;
	gboolean eight_bit, utf8_allowed;
	const ImtaSmtpOffer *o = a->offer;

	if (a->len < plen || g_ascii_strncasecmp(a->s, prefix, plen) != 0)
		return smtp_fail(a->err, 501, "5.5.4", "%s", kind->usage);
	start = smtp_skip_space(a->s, a->len, plen);
	if (start == a->len)
		return smtp_fail(a->err, 501, "5.5.4", "%s", kind->usage);
	if (a->s[start] != '<')
		return smtp_fail(a->err, 501, kind->enhanced,
				 "Bad %s address syntax: the address must be in angle brackets "
				 "(%s)", kind->who, kind->usage);
	extent = smtp_path_extent(a->s + start, a->len - start);
	if (extent == 0)
		return smtp_fail(a->err, 501, kind->enhanced, "Bad %s address syntax: missing '>'",
				 kind->who);
	if (start + extent < a->len && !smtp_is_space(a->s[start + extent]))
		return smtp_fail(a->err, 501, "5.5.4", "%s", kind->usage);

	eight_bit = smtp_has_8bit(a->s + start, extent);
	utf8_allowed = o->smtputf8 && (kind->sender || o->smtputf8_transaction);
	if (eight_bit && !utf8_allowed)
		return smtp_fail(a->err, 553, "5.6.7",
				 "Non-ASCII address not permitted without SMTPUTF8");
	if (!smtp_check_path(a, kind, a->s + start, extent, utf8_allowed) ||
	    !smtp_parse_params(a, start + extent, params))
		return FALSE;
	/* the sender's own SMTPUTF8 parameter comes after its path */
	if (eight_bit && kind->sender && !a->cmd->smtputf8)
		return smtp_fail(a->err, 553, "5.6.7",
				 "Non-ASCII address not permitted without SMTPUTF8");
	return TRUE;
}

static gboolean
smtp_parse_mail(SmtpArgs *a, const char *name)
{
	return smtp_parse_path_command(a, &smtp_sender_path, "FROM:", smtp_mail_params);
}

static gboolean
smtp_parse_rcpt(SmtpArgs *a, const char *name)
{
	return smtp_parse_path_command(a, &smtp_recipient_path, "TO:", smtp_rcpt_params);
}

/* ---- the line --------------------------------------------------------- */

static const SmtpVerbRow smtp_verbs[] = {
	{ "HELO", IMTA_SMTP_HELO, smtp_parse_hello },
	{ "EHLO", IMTA_SMTP_EHLO, smtp_parse_hello },
	{ "LHLO", IMTA_SMTP_LHLO, smtp_parse_hello },
	{ "MAIL", IMTA_SMTP_MAIL, smtp_parse_mail },
	{ "RCPT", IMTA_SMTP_RCPT, smtp_parse_rcpt },
	{ "DATA", IMTA_SMTP_DATA, smtp_parse_no_args },
	{ "BDAT", IMTA_SMTP_BDAT, smtp_parse_bdat },
	{ "RSET", IMTA_SMTP_RSET, smtp_parse_no_args },
	{ "NOOP", IMTA_SMTP_NOOP, smtp_parse_optional_arg },
	{ "QUIT", IMTA_SMTP_QUIT, smtp_parse_no_args },
	{ "VRFY", IMTA_SMTP_VRFY, smtp_parse_required_arg },
	{ "EXPN", IMTA_SMTP_EXPN, smtp_parse_required_arg },
	{ "HELP", IMTA_SMTP_HELP, smtp_parse_optional_arg },
	{ "STARTTLS", IMTA_SMTP_STARTTLS, smtp_parse_no_args },
	{ "AUTH", IMTA_SMTP_AUTH, smtp_parse_auth },
};

static const SmtpVerbRow *
smtp_find_verb(const char *s, gsize n)
{
	for (gsize i = 0; i < G_N_ELEMENTS(smtp_verbs); i++) {
		if (strlen(smtp_verbs[i].name) == n &&
		    g_ascii_strncasecmp(smtp_verbs[i].name, s, n) == 0)
			return &smtp_verbs[i];
	}
	return NULL;
}

const char *
imta_smtp_verb_name(ImtaSmtpVerb verb)
{
	for (gsize i = 0; i < G_N_ELEMENTS(smtp_verbs); i++) {
		if (smtp_verbs[i].verb == verb)
			return smtp_verbs[i].name;
	}
	return "unknown";
}

static void
smtp_command_init(ImtaSmtpCommand *cmd)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->size = -1;
	cmd->ret = IMTA_RET_DEFAULT;
}

/* What is wrong with the line as a whole, before its words are looked at. */
static gboolean
smtp_check_line(const char *line, gsize len, ImtaSmtpError *err)
{
	if (len + 2 > IMTA_SMTP_COMMAND_LINE_MAX)
		return smtp_fail(err, 500, "5.5.2", "Line too long");
	if (memchr(line, '\0', len) != NULL)
		return smtp_fail(err, 500, "5.5.2", "NUL byte in command");
	if (memchr(line, '\r', len) != NULL || memchr(line, '\n', len) != NULL)
		return smtp_fail(err, 500, "5.5.2", "Bare CR or LF in command");
	return TRUE;
}

gboolean
imta_smtp_parse_command(const char *line, gsize len, const ImtaSmtpOffer *offer,
			ImtaSmtpCommand *cmd, ImtaSmtpError *err)
{
	static const ImtaSmtpOffer no_offer;
	const SmtpVerbRow *row;
	SmtpArgs a = { 0 };
	gsize start, end;

	g_return_val_if_fail(line != NULL || len == 0, FALSE);
	g_return_val_if_fail(cmd != NULL && err != NULL, FALSE);
	smtp_command_init(cmd);
	if (!smtp_check_line(line, len, err))
		return FALSE;
	/* spaces around the command are tolerated: some clients add them */
	while (len > 0 && smtp_is_space(line[len - 1]))
		len--;
	start = smtp_skip_space(line, len, 0);
	end = smtp_word_end(line, len, start);
	if (start == end)
		return smtp_fail(err, 500, "5.5.2", "Empty command");
	row = smtp_find_verb(line + start, end - start);
	if (row == NULL) {
		g_autofree char *shown = smtp_shown(line + start, end - start);

		return smtp_fail(err, 500, "5.5.1", "Unknown command \"%s\"", shown);
	}
	cmd->verb = row->verb;
	a.s = line + smtp_skip_space(line, len, end);
	a.len = (gsize) (line + len - a.s);
	a.offer = offer != NULL ? offer : &no_offer;
	a.cmd = cmd;
	a.err = err;
	if (row->parse(&a, row->name))
		return TRUE;
	imta_smtp_command_clear(cmd);
	return FALSE;
}

/* RFC 1123 2.1: a top-level label is never all digits, so a name like that
 * is an IP address written without its brackets. */
static gboolean
smtp_numeric_tld(const char *domain)
{
	const char *dot = strrchr(domain, '.');
	const char *label = dot != NULL ? dot + 1 : domain;

	for (const char *s = label; *s != '\0'; s++) {
		if (!g_ascii_isdigit(*s))
			return FALSE;
	}
	return TRUE;
}

gboolean
imta_smtp_valid_helo(const char *domain)
{
	g_autofree char *probe = NULL;
	g_autoptr(ImtaAddress) address = NULL;

	if (domain == NULL || domain[0] == '\0')
		return FALSE;
	/* the domain grammar lives in the address parser: ask it about a
	 * mailbox at this domain */
	probe = g_strconcat("postmaster@", domain, NULL);
	address = imta_address_parse(probe, -1, 0, NULL);
	if (address == NULL || address->domain == NULL)
		return FALSE;
	if (address->domain_kind == IMTA_DOMAIN_NAME)
		return !smtp_numeric_tld(address->domain);
	return TRUE;
}

void
imta_smtp_command_clear(ImtaSmtpCommand *cmd)
{
	if (cmd == NULL)
		return;
	g_free(cmd->arg);
	g_free(cmd->arg2);
	g_free(cmd->path);
	g_free(cmd->envid);
	g_free(cmd->auth);
	g_free(cmd->orcpt);
	smtp_command_init(cmd);
}

void
imta_smtp_error_clear(ImtaSmtpError *err)
{
	if (err == NULL)
		return;
	g_free(err->text);
	err->text = NULL;
	err->code = 0;
	err->enhanced = NULL;
}
