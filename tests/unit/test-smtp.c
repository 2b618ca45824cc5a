/*
 * test-smtp.c - the SMTP protocol library: every verb and ESMTP parameter,
 * every refusal with its reply code, enhanced code and text, the path
 * limits at their boundaries, the DATA reader under every split of its
 * input (including the smuggling sequences), BDAT, the client encoder,
 * replies, reply-line parsing, the Received: header and hop counting.
 */
#include "config.h"

#include <string.h>

#include <time.h>
#include <glib.h>
#include <imta/smtp.h>

/* ---- offers ----------------------------------------------------------- */

typedef enum { OFFER_FULL, OFFER_HELO, OFFER_BARE, OFFER_UTF8TX, OFFER_8BIT } OfferKind;

static const ImtaSmtpOffer test_offers[] = {
	[OFFER_FULL] = { .esmtp = TRUE, .dsn = TRUE, .eightbitmime = TRUE, .binarymime = TRUE,
			 .smtputf8 = TRUE, .auth = TRUE, .max_size = 10000000 },
	[OFFER_HELO] = { .esmtp = FALSE },
	[OFFER_BARE] = { .esmtp = TRUE },
	[OFFER_UTF8TX] = { .esmtp = TRUE, .dsn = TRUE, .eightbitmime = TRUE, .smtputf8 = TRUE,
			   .smtputf8_transaction = TRUE },
	[OFFER_8BIT] = { .esmtp = TRUE, .eightbitmime = TRUE },
};

/* ---- commands ----------------------------------------------------------- */

typedef struct {
	OfferKind offer;
	const char *line;
	const char *expected;   /* the command described, or "code enhanced text" */
} CommandRow;

static void
describe_notify(GString *out, guint notify)
{
	static const char *const names[] = { "NEVER", "SUCCESS", "FAILURE", "DELAY" };
	const char *sep = " notify=";

	for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
		if (notify & (1u << i)) {
			g_string_append_printf(out, "%s%s", sep, names[i]);
			sep = ",";
		}
	}
}

/* Every field the parser set, in one line the rows can spell out. */
static char *
describe_command(const ImtaSmtpCommand *cmd)
{
	static const char *const bodies[] = { "", "7BIT", "8BITMIME", "BINARYMIME" };
	GString *out = g_string_new(imta_smtp_verb_name(cmd->verb));

	if (cmd->arg != NULL)
		g_string_append_printf(out, " arg=\"%s\"", cmd->arg);
	if (cmd->arg2 != NULL)
		g_string_append_printf(out, " arg2=\"%s\"", cmd->arg2);
	if (cmd->path != NULL)
		g_string_append_printf(out, " path=<%s>", cmd->path);
	if (cmd->size >= 0)
		g_string_append_printf(out, " size=%" G_GINT64_FORMAT, cmd->size);
	if (cmd->body != IMTA_SMTP_BODY_NONE)
		g_string_append_printf(out, " body=%s", bodies[cmd->body]);
	if (cmd->ret != IMTA_RET_DEFAULT)
		g_string_append_printf(out, " ret=%s",
				       cmd->ret == IMTA_RET_FULL ? "FULL" : "HDRS");
	if (cmd->envid != NULL)
		g_string_append_printf(out, " envid=\"%s\"", cmd->envid);
	if (cmd->auth != NULL)
		g_string_append_printf(out, " auth=\"%s\"", cmd->auth);
	if (cmd->smtputf8)
		g_string_append(out, " smtputf8");
	describe_notify(out, cmd->notify);
	if (cmd->orcpt != NULL)
		g_string_append_printf(out, " orcpt=\"%s\"", cmd->orcpt);
	if (cmd->verb == IMTA_SMTP_BDAT)
		g_string_append_printf(out, " chunk=%" G_GUINT64_FORMAT, cmd->chunk_size);
	if (cmd->last)
		g_string_append(out, " last");
	return g_string_free(out, FALSE);
}

static char *
parse_describe(const ImtaSmtpOffer *offer, const char *line, gsize len)
{
	ImtaSmtpCommand cmd;
	ImtaSmtpError err = { 0 };
	char *result;

	if (!imta_smtp_parse_command(line, len, offer, &cmd, &err)) {
		g_assert_cmpint(cmd.verb, ==, IMTA_SMTP_UNKNOWN);
		g_assert_null(cmd.path);
		g_assert_null(cmd.arg);
		g_assert_nonnull(err.text);
		result = g_strdup_printf("%u %s %s", err.code, err.enhanced, err.text);
		imta_smtp_error_clear(&err);
		g_assert_null(err.text);
		return result;
	}
	g_assert_null(err.text);
	result = describe_command(&cmd);
	imta_smtp_command_clear(&cmd);
	g_assert_null(cmd.path);
	g_assert_cmpint(cmd.size, ==, -1);
	return result;
}

static void
run_command_rows(const CommandRow *rows, gsize n)
{
	for (gsize i = 0; i < n; i++) {
		g_autofree char *got = parse_describe(&test_offers[rows[i].offer], rows[i].line,
						      strlen(rows[i].line));

		if (g_strcmp0(got, rows[i].expected) != 0)
			g_test_message("row %zu: \"%s\"", i, rows[i].line);
		g_assert_cmpstr(got, ==, rows[i].expected);
	}
}

#define FULL OFFER_FULL
#define HELO OFFER_HELO
#define BARE OFFER_BARE
#define UTF8TX OFFER_UTF8TX
#define EIGHT OFFER_8BIT

static const CommandRow verb_rows[] = {
	{ FULL, "HELO mail.example.com", "HELO arg=\"mail.example.com\"" },
	{ FULL, "helo mail.example.com", "HELO arg=\"mail.example.com\"" },
	{ FULL, "EHLO [192.0.2.1]", "EHLO arg=\"[192.0.2.1]\"" },
	{ FULL, "eHlO client", "EHLO arg=\"client\"" },
	{ FULL, "LHLO client.example", "LHLO arg=\"client.example\"" },
	{ FULL, "EHLO   spaced.example   ", "EHLO arg=\"spaced.example\"" },
	{ FULL, "  EHLO leading.example", "EHLO arg=\"leading.example\"" },
	{ FULL, "EHLO\tbad_but_one_word", "EHLO arg=\"bad_but_one_word\"" },
	{ FULL, "EHLO", "501 5.5.4 Syntax: EHLO hostname" },
	{ FULL, "HELO ", "501 5.5.4 Syntax: HELO hostname" },
	{ FULL, "EHLO two words", "501 5.5.4 Syntax: EHLO hostname" },
	{ FULL, "LHLO", "501 5.5.4 Syntax: LHLO hostname" },
	{ FULL, "DATA", "DATA" },
	{ FULL, "data", "DATA" },
	{ FULL, "DATA ", "DATA" },
	{ FULL, "DATA now", "501 5.5.4 Syntax: DATA (no arguments)" },
	{ FULL, "RSET", "RSET" },
	{ FULL, "RSET all", "501 5.5.4 Syntax: RSET (no arguments)" },
	{ FULL, "QUIT", "QUIT" },
	{ FULL, "quit", "QUIT" },
	{ FULL, "QUIT bye", "501 5.5.4 Syntax: QUIT (no arguments)" },
	{ FULL, "STARTTLS", "STARTTLS" },
	{ FULL, "StartTLS", "STARTTLS" },
	{ FULL, "STARTTLS now", "501 5.5.4 Syntax: STARTTLS (no arguments)" },
	{ FULL, "NOOP", "NOOP" },
	{ FULL, "NOOP hello there", "NOOP arg=\"hello there\"" },
	{ FULL, "HELP", "HELP" },
	{ FULL, "HELP MAIL", "HELP arg=\"MAIL\"" },
	{ FULL, "VRFY postmaster", "VRFY arg=\"postmaster\"" },
	{ FULL, "VRFY <user@example.com>", "VRFY arg=\"<user@example.com>\"" },
	{ FULL, "VRFY", "501 5.5.4 Syntax: VRFY address" },
	{ FULL, "EXPN staff", "EXPN arg=\"staff\"" },
	{ FULL, "EXPN", "501 5.5.4 Syntax: EXPN list" },
	{ FULL, "BDAT 1000", "BDAT chunk=1000" },
	{ FULL, "BDAT 0 LAST", "BDAT chunk=0 last" },
	{ FULL, "bdat 5 last", "BDAT chunk=5 last" },
	{ FULL, "BDAT 9223372036854775807", "BDAT chunk=9223372036854775807" },
	{ FULL, "BDAT", "501 5.5.4 Syntax: BDAT size [LAST]" },
	{ FULL, "BDAT x", "501 5.5.4 Syntax: BDAT size [LAST]" },
	{ FULL, "BDAT -1", "501 5.5.4 Syntax: BDAT size [LAST]" },
	{ FULL, "BDAT 10 FIRST", "501 5.5.4 Syntax: BDAT size [LAST]" },
	{ FULL, "BDAT 10 LAST more", "501 5.5.4 Syntax: BDAT size [LAST]" },
	{ FULL, "BDAT 12345678901234567890", "501 5.5.4 Syntax: BDAT size [LAST]" },
	{ FULL, "AUTH PLAIN", "AUTH arg=\"PLAIN\"" },
	{ FULL, "auth login dXNlcg==", "AUTH arg=\"LOGIN\" arg2=\"dXNlcg==\"" },
	{ FULL, "AUTH PLAIN =", "AUTH arg=\"PLAIN\" arg2=\"=\"" },
	{ FULL, "AUTH scram-sha-256", "AUTH arg=\"SCRAM-SHA-256\"" },
	{ FULL, "AUTH", "501 5.5.4 Syntax: AUTH mechanism [initial-response]" },
	{ FULL, "AUTH PLAIN a b", "501 5.5.4 Syntax: AUTH mechanism [initial-response]" },
	{ FULL, "AUTH PL@IN", "501 5.5.4 Syntax: AUTH mechanism [initial-response]" },
	{ FULL, "AUTH ABCDEFGHIJKLMNOPQRSTU",
	  "501 5.5.4 Syntax: AUTH mechanism [initial-response]" },
	{ FULL, "AUTH ABCDEFGHIJKLMNOPQRST", "AUTH arg=\"ABCDEFGHIJKLMNOPQRST\"" },
	{ FULL, "FOO", "500 5.5.1 Unknown command \"FOO\"" },
	{ FULL, "GET / HTTP/1.1", "500 5.5.1 Unknown command \"GET\"" },
	{ FULL, "MAILFROM:<a@example.com>",
	  "500 5.5.1 Unknown command \"MAILFROM:<a@example.com>\"" },
	{ FULL, "\x01\x7f\xc3\xa9\"", "500 5.5.1 Unknown command \"?????\"" },
	{ FULL, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghij",
	  "500 5.5.1 Unknown command \"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd...\"" },
	{ FULL, "", "500 5.5.2 Empty command" },
	{ FULL, "   \t ", "500 5.5.2 Empty command" },
	{ HELO, "EHLO client.example", "EHLO arg=\"client.example\"" },
};

static const CommandRow mail_rows[] = {
	{ FULL, "MAIL FROM:<user@example.com>", "MAIL path=<user@example.com>" },
	{ FULL, "mail from:<user@example.com>", "MAIL path=<user@example.com>" },
	{ FULL, "MAIL FROM: <user@example.com>", "MAIL path=<user@example.com>" },
	{ FULL, "MAIL FROM:  <user@example.com>  ", "MAIL path=<user@example.com>" },
	{ FULL, "MAIL FROM:<>", "MAIL path=<>" },
	{ FULL, "MAIL FROM:<> SIZE=100", "MAIL path=<> size=100" },
	{ FULL, "MAIL FROM:<@relay.example:user@example.com>", "MAIL path=<user@example.com>" },
	{ FULL, "MAIL FROM:<@a.example,@b.example:user@example.com>",
	  "MAIL path=<user@example.com>" },
	{ FULL, "MAIL FROM:<\"john doe\"@example.com>", "MAIL path=<\"john doe\"@example.com>" },
	{ FULL, "MAIL FROM:<\"a>b\"@example.com>", "MAIL path=<\"a>b\"@example.com>" },
	{ FULL, "MAIL FROM:<\"a\\\"> x\"@example.com>", "MAIL path=<\"a\\\"> x\"@example.com>" },
	{ FULL, "MAIL FROM:<user@[192.0.2.1]>", "MAIL path=<user@[192.0.2.1]>" },
	{ FULL, "MAIL FROM:<user@[IPv6:2001:db8::1]>", "MAIL path=<user@[IPv6:2001:db8::1]>" },
	{ FULL, "MAIL FROM:<User@Example.COM.>", "MAIL path=<User@Example.COM>" },
	{ FULL, "MAIL FROM:<user+tag@sub_domain.example>",
	  "MAIL path=<user+tag@sub_domain.example>" },
	{ HELO, "MAIL FROM:<user@example.com>", "MAIL path=<user@example.com>" },
	/* the command's shape */
	{ FULL, "MAIL", "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]" },
	{ FULL, "MAIL FROM:", "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]" },
	{ FULL, "MAIL FROM: ", "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]" },
	{ FULL, "MAIL TO:<user@example.com>",
	  "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]" },
	{ FULL, "MAIL FROM <user@example.com>",
	  "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]" },
	{ FULL, "MAIL FROM:<user@example.com>SIZE=10",
	  "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]" },
	{ FULL, "MAIL FROM:user@example.com",
	  "501 5.1.7 Bad sender address syntax: the address must be in angle brackets "
	  "(Syntax: MAIL FROM:<address> [parameters])" },
	{ FULL, "MAIL FROM:<user@example.com",
	  "501 5.1.7 Bad sender address syntax: missing '>'" },
	{ FULL, "MAIL FROM:<\"user>@example.com",
	  "501 5.1.7 Bad sender address syntax: missing '>'" },
	/* the path's grammar, through the address parser */
	{ FULL, "MAIL FROM:<user>",
	  "501 5.1.7 Bad sender address syntax: expected '@' at offset 5" },
	{ FULL, "MAIL FROM:<a b@example.com>",
	  "501 5.1.7 Bad sender address syntax: unexpected space in local part at offset 2" },
	{ FULL, "MAIL FROM:<.user@example.com>",
	  "501 5.1.7 Bad sender address syntax: local part begins with '.' at offset 1" },
	{ FULL, "MAIL FROM:<user@-bad.example>",
	  "501 5.1.7 Bad sender address syntax: label begins with '-' in domain at offset 6" },
	{ FULL, "MAIL FROM:<user@example.com> FOO=1", "555 5.5.4 Unsupported parameter \"FOO\"" },
	{ FULL, "MAIL FROM:<a b@example.com> FOO=1",
	  "501 5.1.7 Bad sender address syntax: unexpected space in local part at offset 2" },
	{ FULL, "MAIL FROM:<\"a\tb\"@example.com>",
	  "501 5.1.7 Bad sender address syntax: control character in address" },
	{ FULL, "MAIL FROM:<\"a\\\x01\"@example.com>",
	  "501 5.1.7 Bad sender address syntax: control character in address" },
	{ FULL, "MAIL FROM:<@relay.example:user>",
	  "501 5.1.7 Bad sender address syntax: expected '@' at offset 20" },
	/* non-ASCII addresses need SMTPUTF8 (RFC 6531) */
	{ FULL, "MAIL FROM:<j\xc3\xb6rg@example.com>",
	  "553 5.6.7 Non-ASCII address not permitted without SMTPUTF8" },
	{ FULL, "MAIL FROM:<j\xc3\xb6rg@example.com> SMTPUTF8",
	  "MAIL path=<j\xc3\xb6rg@example.com> smtputf8" },
	{ FULL, "MAIL FROM:<user@b\xc3\xbc\x63her.example> SMTPUTF8",
	  "MAIL path=<user@b\xc3\xbc\x63her.example> smtputf8" },
	{ BARE, "MAIL FROM:<j\xc3\xb6rg@example.com> SMTPUTF8",
	  "553 5.6.7 Non-ASCII address not permitted without SMTPUTF8" },
	{ FULL, "MAIL FROM:<j\xff@example.com> SMTPUTF8",
	  "501 5.1.7 Bad sender address syntax: invalid UTF-8 in local part at offset 2" },
};

static const CommandRow mail_param_rows[] = {
	{ FULL, "MAIL FROM:<a@example.com> SIZE=0", "MAIL path=<a@example.com> size=0" },
	{ FULL, "MAIL FROM:<a@example.com> size=12345", "MAIL path=<a@example.com> size=12345" },
	{ FULL, "MAIL FROM:<a@example.com> SIZE=10000000",
	  "MAIL path=<a@example.com> size=10000000" },
	{ FULL, "MAIL FROM:<a@example.com> SIZE=10000001",
	  "552 5.3.4 Message size exceeds fixed limit of 10000000 bytes" },
	{ FULL, "MAIL FROM:<a@example.com> SIZE=99999999999999999999",
	  "552 5.3.4 Message size exceeds fixed limit of 10000000 bytes" },
	{ BARE, "MAIL FROM:<a@example.com> SIZE=9223372036854775807",
	  "MAIL path=<a@example.com> size=9223372036854775807" },
	{ BARE, "MAIL FROM:<a@example.com> SIZE=9223372036854775808",
	  "552 5.3.4 Message size too large" },
	{ FULL, "MAIL FROM:<a@example.com> SIZE=abc",
	  "501 5.5.4 Bad SIZE value \"abc\" (expected a number of bytes)" },
	{ FULL, "MAIL FROM:<a@example.com> SIZE=-1",
	  "501 5.5.4 Bad SIZE value \"-1\" (expected a number of bytes)" },
	{ FULL, "MAIL FROM:<a@example.com> SIZE=1=2",
	  "501 5.5.4 Bad SIZE value \"1=2\" (expected a number of bytes)" },
	{ FULL, "MAIL FROM:<a@example.com> SIZE=",
	  "501 5.5.4 Bad parameter \"SIZE=\" (expected keyword=value)" },
	{ FULL, "MAIL FROM:<a@example.com> SIZE", "501 5.5.4 SIZE needs a value (SIZE=...)" },
	{ FULL, "MAIL FROM:<a@example.com> BODY=8BITMIME",
	  "MAIL path=<a@example.com> body=8BITMIME" },
	{ FULL, "MAIL FROM:<a@example.com> body=7bit", "MAIL path=<a@example.com> body=7BIT" },
	{ FULL, "MAIL FROM:<a@example.com> BODY=BINARYMIME",
	  "MAIL path=<a@example.com> body=BINARYMIME" },
	{ FULL, "MAIL FROM:<a@example.com> BODY=8BIT",
	  "501 5.5.4 Bad BODY value \"8BIT\" (expected 7BIT, 8BITMIME or BINARYMIME)" },
	{ EIGHT, "MAIL FROM:<a@example.com> BODY=8BITMIME",
	  "MAIL path=<a@example.com> body=8BITMIME" },
	{ EIGHT, "MAIL FROM:<a@example.com> BODY=BINARYMIME",
	  "504 5.5.4 BODY=BINARYMIME is not supported" },
	{ BARE, "MAIL FROM:<a@example.com> BODY=8BITMIME",
	  "555 5.5.4 Unsupported parameter \"BODY\"" },
	{ FULL, "MAIL FROM:<a@example.com> RET=FULL", "MAIL path=<a@example.com> ret=FULL" },
	{ FULL, "MAIL FROM:<a@example.com> ret=hdrs", "MAIL path=<a@example.com> ret=HDRS" },
	{ FULL, "MAIL FROM:<a@example.com> RET=ALL",
	  "501 5.5.4 Bad RET value \"ALL\" (expected FULL or HDRS)" },
	{ BARE, "MAIL FROM:<a@example.com> RET=FULL", "555 5.5.4 Unsupported parameter \"RET\"" },
	{ FULL, "MAIL FROM:<a@example.com> ENVID=QQ314159",
	  "MAIL path=<a@example.com> envid=\"QQ314159\"" },
	{ FULL, "MAIL FROM:<a@example.com> ENVID=a+2Bb+3Dc",
	  "MAIL path=<a@example.com> envid=\"a+b=c\"" },
	{ FULL, "MAIL FROM:<a@example.com> ENVID=a+2bb",
	  "501 5.5.4 Bad ENVID value: malformed xtext at offset 1: \"+2b\" "
	  "(expected '+' and two upper-case hex digits)" },
	{ FULL, "MAIL FROM:<a@example.com> ENVID=a+00",
	  "501 5.5.4 Bad ENVID value: malformed xtext at offset 1: \"+00\" (a NUL byte) "
	  "is not allowed here" },
	{ FULL, "MAIL FROM:<a@example.com> ENVID=a+0D+0AX-Injected:+20yes",
	  "501 5.5.4 Bad ENVID value: control characters are not allowed" },
	{ BARE, "MAIL FROM:<a@example.com> ENVID=x", "555 5.5.4 Unsupported parameter \"ENVID\"" },
	{ FULL, "MAIL FROM:<a@example.com> AUTH=<>", "MAIL path=<a@example.com> auth=\"<>\"" },
	{ FULL, "MAIL FROM:<a@example.com> AUTH=user+40example.com",
	  "MAIL path=<a@example.com> auth=\"user@example.com\"" },
	{ FULL, "MAIL FROM:<a@example.com> AUTH=a+0Ab",
	  "501 5.5.4 Bad AUTH value: control characters are not allowed" },
	{ BARE, "MAIL FROM:<a@example.com> AUTH=<>", "555 5.5.4 Unsupported parameter \"AUTH\"" },
	{ FULL, "MAIL FROM:<a@example.com> SMTPUTF8", "MAIL path=<a@example.com> smtputf8" },
	{ FULL, "MAIL FROM:<a@example.com> smtputf8", "MAIL path=<a@example.com> smtputf8" },
	{ FULL, "MAIL FROM:<a@example.com> SMTPUTF8=yes", "501 5.5.4 SMTPUTF8 takes no value" },
	{ BARE, "MAIL FROM:<a@example.com> SMTPUTF8",
	  "555 5.5.4 Unsupported parameter \"SMTPUTF8\"" },
	{ FULL, "MAIL FROM:<a@example.com> FOO=bar", "555 5.5.4 Unsupported parameter \"FOO\"" },
	{ FULL, "MAIL FROM:<a@example.com> x-custom",
	  "555 5.5.4 Unsupported parameter \"X-CUSTOM\"" },
	{ FULL, "MAIL FROM:<a@example.com> NOTIFY=NEVER",
	  "555 5.5.4 Unsupported parameter \"NOTIFY\"" },
	{ HELO, "MAIL FROM:<a@example.com> SIZE=10", "555 5.5.4 Unsupported parameter \"SIZE\"" },
	{ FULL, "MAIL FROM:<a@example.com> SIZE=10 SIZE=20",
	  "501 5.5.4 Duplicate parameter \"SIZE\"" },
	{ FULL, "MAIL FROM:<a@example.com> size=10 SIZE=10",
	  "501 5.5.4 Duplicate parameter \"SIZE\"" },
	{ FULL, "MAIL FROM:<a@example.com> SMTPUTF8 SMTPUTF8",
	  "501 5.5.4 Duplicate parameter \"SMTPUTF8\"" },
	{ FULL, "MAIL FROM:<a@example.com> =x",
	  "501 5.5.4 Bad parameter \"=x\" (expected keyword=value)" },
	{ FULL, "MAIL FROM:<a@example.com> -X=1",
	  "501 5.5.4 Bad parameter \"-X=1\" (expected keyword=value)" },
	{ FULL, "MAIL FROM:<a@example.com> SIZE=1\x01",
	  "501 5.5.4 Bad parameter \"SIZE=1?\" (expected keyword=value)" },
	{ FULL, "MAIL FROM:<a@example.com> ENVID=\xc3\xa9",
	  "501 5.5.4 Bad parameter \"ENVID=??\" (expected keyword=value)" },
	{ FULL, "MAIL FROM:<a@example.com>   SIZE=10 \t BODY=8BITMIME",
	  "MAIL path=<a@example.com> size=10 body=8BITMIME" },
	{ FULL,
	  "MAIL FROM:<a@example.com> SIZE=500 BODY=8BITMIME RET=HDRS ENVID=abc AUTH=<> SMTPUTF8",
	  "MAIL path=<a@example.com> size=500 body=8BITMIME ret=HDRS envid=\"abc\" auth=\"<>\" "
	  "smtputf8" },
};

static const CommandRow rcpt_rows[] = {
	{ FULL, "RCPT TO:<user@example.com>", "RCPT path=<user@example.com>" },
	{ FULL, "rcpt to: <user@example.com>", "RCPT path=<user@example.com>" },
	{ FULL, "RCPT TO:<Postmaster>", "RCPT path=<postmaster>" },
	{ FULL, "RCPT TO:<postmaster>", "RCPT path=<postmaster>" },
	{ FULL, "RCPT TO:<POSTMASTER> NOTIFY=NEVER", "RCPT path=<postmaster> notify=NEVER" },
	{ FULL, "RCPT TO:<Postmaster@Example.COM>", "RCPT path=<Postmaster@Example.COM>" },
	{ FULL, "RCPT TO:<@relay.example:user@example.com>", "RCPT path=<user@example.com>" },
	{ FULL, "RCPT TO:<>",
	  "501 5.1.3 Bad recipient address syntax: expected an address at offset 1 "
	  "(the null path is not allowed here)" },
	{ FULL, "RCPT TO:<user>",
	  "501 5.1.3 Bad recipient address syntax: expected '@' at offset 5" },
	{ FULL, "RCPT TO:<postmaster2>",
	  "501 5.1.3 Bad recipient address syntax: expected '@' at offset 12" },
	{ FULL, "RCPT TO:user@example.com",
	  "501 5.1.3 Bad recipient address syntax: the address must be in angle brackets "
	  "(Syntax: RCPT TO:<address> [parameters])" },
	{ FULL, "RCPT TO:<user@example.com",
	  "501 5.1.3 Bad recipient address syntax: missing '>'" },
	{ FULL, "RCPT FROM:<user@example.com>",
	  "501 5.5.4 Syntax: RCPT TO:<address> [parameters]" },
	{ FULL, "RCPT", "501 5.5.4 Syntax: RCPT TO:<address> [parameters]" },
	{ FULL, "RCPT TO:", "501 5.5.4 Syntax: RCPT TO:<address> [parameters]" },
	{ FULL, "RCPT TO:<user@example..com>",
	  "501 5.1.3 Bad recipient address syntax: empty label in domain at offset 14" },
	{ FULL, "RCPT TO:<user@[300.1.1.1]>",
	  "501 5.1.3 Bad recipient address syntax: invalid IPv4 address in address literal "
	  "at offset 7" },
	{ FULL, "RCPT TO:<u\x7f@example.com>",
	  "501 5.1.3 Bad recipient address syntax: control character in address" },
	{ FULL, "RCPT TO:<j\xc3\xb6rg@example.com>",
	  "553 5.6.7 Non-ASCII address not permitted without SMTPUTF8" },
	{ UTF8TX, "RCPT TO:<j\xc3\xb6rg@example.com>", "RCPT path=<j\xc3\xb6rg@example.com>" },
	{ FULL, "RCPT TO:<user@example.com> NOTIFY=NEVER",
	  "RCPT path=<user@example.com> notify=NEVER" },
	{ FULL, "RCPT TO:<user@example.com> NOTIFY=SUCCESS,FAILURE",
	  "RCPT path=<user@example.com> notify=SUCCESS,FAILURE" },
	{ FULL, "RCPT TO:<user@example.com> notify=delay,failure,success",
	  "RCPT path=<user@example.com> notify=SUCCESS,FAILURE,DELAY" },
	{ FULL, "RCPT TO:<user@example.com> NOTIFY=SUCCESS,SUCCESS",
	  "RCPT path=<user@example.com> notify=SUCCESS" },
	{ FULL, "RCPT TO:<user@example.com> NOTIFY=NEVER,SUCCESS",
	  "501 5.5.4 Bad NOTIFY value \"NEVER,SUCCESS\" (expected NEVER alone)" },
	{ FULL, "RCPT TO:<user@example.com> NOTIFY=SUCCESS,",
	  "501 5.5.4 Bad NOTIFY value \"SUCCESS,\" (expected NEVER, or SUCCESS, FAILURE and "
	  "DELAY separated by commas)" },
	{ FULL, "RCPT TO:<user@example.com> NOTIFY=,DELAY",
	  "501 5.5.4 Bad NOTIFY value \",DELAY\" (expected NEVER, or SUCCESS, FAILURE and "
	  "DELAY separated by commas)" },
	{ FULL, "RCPT TO:<user@example.com> NOTIFY=ALWAYS",
	  "501 5.5.4 Bad NOTIFY value \"ALWAYS\" (expected NEVER, or SUCCESS, FAILURE and "
	  "DELAY separated by commas)" },
	{ FULL, "RCPT TO:<user@example.com> ORCPT=rfc822;user@example.com",
	  "RCPT path=<user@example.com> orcpt=\"rfc822;user@example.com\"" },
	{ FULL, "RCPT TO:<user@example.com> ORCPT=rfc822;a+2Bb@example.com",
	  "RCPT path=<user@example.com> orcpt=\"rfc822;a+b@example.com\"" },
	{ FULL, "RCPT TO:<user@example.com> ORCPT=RFC822;a+3Db+20c@example.com",
	  "RCPT path=<user@example.com> orcpt=\"RFC822;a=b c@example.com\"" },
	{ FULL, "RCPT TO:<user@example.com> ORCPT=rfc822",
	  "501 5.5.4 Bad ORCPT value \"rfc822\" (expected type;address, as in "
	  "rfc822;user@example.com)" },
	{ FULL, "RCPT TO:<user@example.com> ORCPT=;a@example.com",
	  "501 5.5.4 Bad ORCPT value \";a@example.com\" (expected type;address, as in "
	  "rfc822;user@example.com)" },
	{ FULL, "RCPT TO:<user@example.com> ORCPT=rfc822;",
	  "501 5.5.4 Bad ORCPT value \"rfc822;\" (expected type;address, as in "
	  "rfc822;user@example.com)" },
	{ FULL, "RCPT TO:<user@example.com> ORCPT=rfc[822];a@example.com",
	  "501 5.5.4 Bad ORCPT value \"rfc[822];a@example.com\" (expected type;address, as in "
	  "rfc822;user@example.com)" },
	{ FULL, "RCPT TO:<user@example.com> ORCPT=rfc822;a+zz",
	  "501 5.5.4 Bad ORCPT value: malformed xtext at offset 1: \"+zz\" "
	  "(expected '+' and two upper-case hex digits)" },
	{ FULL, "RCPT TO:<user@example.com> ORCPT=rfc822;a+0D+0Ab",
	  "501 5.5.4 Bad ORCPT value: control characters are not allowed" },
	{ FULL, "RCPT TO:<user@example.com> NOTIFY=FAILURE ORCPT=rfc822;user@example.com",
	  "RCPT path=<user@example.com> notify=FAILURE orcpt=\"rfc822;user@example.com\"" },
	{ FULL, "RCPT TO:<user@example.com> NOTIFY=FAILURE notify=DELAY",
	  "501 5.5.4 Duplicate parameter \"NOTIFY\"" },
	{ FULL, "RCPT TO:<user@example.com> NOTIFY",
	  "501 5.5.4 NOTIFY needs a value (NOTIFY=...)" },
	{ BARE, "RCPT TO:<user@example.com> NOTIFY=NEVER",
	  "555 5.5.4 Unsupported parameter \"NOTIFY\"" },
	{ BARE, "RCPT TO:<user@example.com> ORCPT=rfc822;a@example.com",
	  "555 5.5.4 Unsupported parameter \"ORCPT\"" },
	{ FULL, "RCPT TO:<user@example.com> SIZE=10", "555 5.5.4 Unsupported parameter \"SIZE\"" },
	{ HELO, "RCPT TO:<user@example.com> NOTIFY=NEVER",
	  "555 5.5.4 Unsupported parameter \"NOTIFY\"" },
};

/* Lines a server must refuse as a whole, whatever the verb. */
static const CommandRow line_rows[] = {
	{ FULL, "NOOP\rRSET", "500 5.5.2 Bare CR or LF in command" },
	{ FULL, "NOOP\nRSET", "500 5.5.2 Bare CR or LF in command" },
	{ FULL, "DATA\r", "500 5.5.2 Bare CR or LF in command" },
	{ FULL, "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>",
	  "500 5.5.2 Bare CR or LF in command" },
};

static void
test_command_verbs(void)
{
	run_command_rows(verb_rows, G_N_ELEMENTS(verb_rows));
}

static void
test_command_mail(void)
{
	run_command_rows(mail_rows, G_N_ELEMENTS(mail_rows));
}

static void
test_command_mail_params(void)
{
	run_command_rows(mail_param_rows, G_N_ELEMENTS(mail_param_rows));
}

static void
test_command_rcpt(void)
{
	run_command_rows(rcpt_rows, G_N_ELEMENTS(rcpt_rows));
}

static void
test_command_line(void)
{
	static const struct {
		const char *line;
		gsize len;
		const char *expected;
	} nul_rows[] = {
		{ "MAIL FROM:<a@example.com>\0", 26, "500 5.5.2 NUL byte in command" },
		{ "\0", 1, "500 5.5.2 NUL byte in command" },
		{ "NO\0OP", 5, "500 5.5.2 NUL byte in command" },
		{ "RCPT TO:<a\0b@example.com>", 25, "500 5.5.2 NUL byte in command" },
		{ "NOOP", 0, "500 5.5.2 Empty command" },
	};

	run_command_rows(line_rows, G_N_ELEMENTS(line_rows));
	for (gsize i = 0; i < G_N_ELEMENTS(nul_rows); i++) {
		g_autofree char *got = parse_describe(&test_offers[FULL], nul_rows[i].line,
						      nul_rows[i].len);

		g_assert_cmpstr(got, ==, nul_rows[i].expected);
	}
}

/* 998 octets plus CR LF is the longest line accepted. */
static void
test_command_line_limit(void)
{
	static const struct {
		gsize len;
		const char *expected_prefix;
	} rows[] = {
		{ IMTA_SMTP_COMMAND_LINE_MAX - 2, "NOOP arg=\"xxx" },
		{ IMTA_SMTP_COMMAND_LINE_MAX - 1, "500 5.5.2 Line too long" },
		{ IMTA_SMTP_COMMAND_LINE_MAX, "500 5.5.2 Line too long" },
		{ 10 * 1024 * 1024, "500 5.5.2 Line too long" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *line = g_malloc(rows[i].len);
		g_autofree char *got = NULL;

		memset(line, 'x', rows[i].len);
		memcpy(line, "NOOP ", 5);
		got = parse_describe(&test_offers[FULL], line, rows[i].len);
		g_assert_true(g_str_has_prefix(got, rows[i].expected_prefix));
		if (i == 0)
			g_assert_cmpuint(strlen(got), ==,
					 strlen("NOOP arg=\"\"") + rows[i].len - 5);
		else
			g_assert_cmpstr(got, ==, rows[i].expected_prefix);
	}
}

static char *
repeat(char c, gsize n)
{
	char *s = g_malloc(n + 1);

	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* A host name of exactly n octets, in labels of at most 63. */
static char *
domain_of_length(gsize n)
{
	GString *d = g_string_new(NULL);
	gsize rem;

	while (n - d->len > 64) {
		for (guint i = 0; i < 63; i++)
			g_string_append_c(d, 'a');
		g_string_append_c(d, '.');
	}
	rem = n - d->len;
	for (gsize i = 0; i < (rem == 64 ? 62 : rem); i++)
		g_string_append_c(d, 'a');
	if (rem == 64)
		g_string_append(d, ".a");
	g_assert_cmpuint(d->len, ==, n);
	return g_string_free(d, FALSE);
}

typedef struct {
	const char *verb;      /* "MAIL FROM:" / "RCPT TO:" */
	gsize local;
	gsize domain;
	const char *expected;  /* NULL: accepted */
} LimitRow;

/* RFC 5321 4.5.3.1: local part 64, domain 255, path 256 with brackets. */
static void
test_command_path_limits(void)
{
	static const LimitRow rows[] = {
		{ "MAIL FROM:", 64, 20, NULL },
		{ "MAIL FROM:", 65, 20,
		  "501 5.1.7 Sender address too long: local part longer than 64 octets at "
		  "offset 1" },
		{ "RCPT TO:", 65, 20,
		  "501 5.1.3 Recipient address too long: local part longer than 64 octets at "
		  "offset 1" },
		/* 1 + 1 + 252 and the brackets: 256 octets */
		{ "MAIL FROM:", 1, 252, NULL },
		{ "RCPT TO:", 1, 252, NULL },
		{ "MAIL FROM:", 2, 252,
		  "501 5.1.7 Sender address too long: path longer than 256 octets" },
		{ "RCPT TO:", 2, 252,
		  "501 5.1.3 Recipient address too long: path longer than 256 octets" },
		{ "RCPT TO:", 1, 256,
		  "501 5.1.3 Recipient address too long: domain longer than 255 octets at "
		  "offset 3" },
		{ "MAIL FROM:", 64, 189, NULL },
		{ "MAIL FROM:", 64, 190,
		  "501 5.1.7 Sender address too long: path longer than 256 octets" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *local = repeat('l', rows[i].local);
		g_autofree char *domain = domain_of_length(rows[i].domain);
		g_autofree char *line = g_strdup_printf("%s<%s@%s>", rows[i].verb, local, domain);
		g_autofree char *got = parse_describe(&test_offers[FULL], line, strlen(line));

		if (rows[i].expected == NULL) {
			const char *verb = rows[i].verb[0] == 'M' ? "MAIL" : "RCPT";
			g_autofree char *want = g_strdup_printf("%s path=<%s@%s>", verb, local,
								domain);

			g_assert_cmpstr(got, ==, want);
		} else {
			g_assert_cmpstr(got, ==, rows[i].expected);
		}
	}
}

/* RFC 3461 4.4: ENVID at most 100 characters; ORCPT at most 500. */
static void
test_command_dsn_limits(void)
{
	g_autofree char *envid100 = repeat('e', 100);
	g_autofree char *envid101 = repeat('e', 101);
	g_autofree char *ok = g_strdup_printf("MAIL FROM:<> ENVID=%s", envid100);
	g_autofree char *bad = g_strdup_printf("MAIL FROM:<> ENVID=%s", envid101);
	g_autofree char *orcpt493 = repeat('o', 493);
	g_autofree char *orcpt494 = repeat('o', 494);
	g_autofree char *orcpt_ok = g_strdup_printf("RCPT TO:<a@example.com> ORCPT=rfc822;%s",
						    orcpt493);
	g_autofree char *orcpt_bad = g_strdup_printf("RCPT TO:<a@example.com> ORCPT=rfc822;%s",
						     orcpt494);
	g_autofree char *got_ok = parse_describe(&test_offers[FULL], ok, strlen(ok));
	g_autofree char *got_bad = parse_describe(&test_offers[FULL], bad, strlen(bad));
	g_autofree char *want_ok = g_strdup_printf("MAIL path=<> envid=\"%s\"", envid100);
	g_autofree char *got_orcpt_ok = parse_describe(&test_offers[FULL], orcpt_ok,
						       strlen(orcpt_ok));
	g_autofree char *got_orcpt_bad = parse_describe(&test_offers[FULL], orcpt_bad,
							strlen(orcpt_bad));
	g_autofree char *want_orcpt = g_strdup_printf("RCPT path=<a@example.com> "
						      "orcpt=\"rfc822;%s\"", orcpt493);

	g_assert_cmpstr(got_ok, ==, want_ok);
	g_assert_cmpstr(got_bad, ==, "501 5.5.4 ENVID longer than 100 characters");
	g_assert_cmpstr(got_orcpt_ok, ==, want_orcpt);
	g_assert_cmpstr(got_orcpt_bad, ==, "501 5.5.4 ORCPT longer than 500 characters");
}

/* AUTH= holds an xtext addr-spec: up to three times the longest path. */
static void
test_command_auth_param_limit(void)
{
	g_autofree char *v768 = repeat('u', 768);
	g_autofree char *v769 = repeat('u', 769);
	g_autofree char *ok = g_strdup_printf("MAIL FROM:<> AUTH=%s", v768);
	g_autofree char *bad = g_strdup_printf("MAIL FROM:<> AUTH=%s", v769);
	g_autofree char *want = g_strdup_printf("MAIL path=<> auth=\"%s\"", v768);
	g_autofree char *got_ok = parse_describe(&test_offers[FULL], ok, strlen(ok));
	g_autofree char *got_bad = parse_describe(&test_offers[FULL], bad, strlen(bad));

	g_assert_cmpstr(got_ok, ==, want);
	g_assert_cmpstr(got_bad, ==, "501 5.5.4 AUTH= longer than 768 characters");
}

/* A NULL offer is a HELO session: parameters are refused. */
static void
test_command_no_offer(void)
{
	ImtaSmtpCommand cmd;
	ImtaSmtpError err = { 0 };
	const char *line = "MAIL FROM:<a@example.com> SIZE=1";

	g_assert_false(imta_smtp_parse_command(line, strlen(line), NULL, &cmd, &err));
	g_assert_cmpuint(err.code, ==, 555);
	g_assert_cmpstr(err.enhanced, ==, "5.5.4");
	g_assert_cmpstr(err.text, ==, "Unsupported parameter \"SIZE\"");
	imta_smtp_error_clear(&err);
	line = "MAIL FROM:<a@example.com>";
	g_assert_true(imta_smtp_parse_command(line, strlen(line), NULL, &cmd, &err));
	g_assert_cmpstr(cmd.path, ==, "a@example.com");
	g_assert_cmpint(cmd.size, ==, -1);
	g_assert_cmpint(cmd.ret, ==, IMTA_RET_DEFAULT);
	g_assert_cmpint(cmd.body, ==, IMTA_SMTP_BODY_NONE);
	imta_smtp_command_clear(&cmd);
	imta_smtp_command_clear(NULL);
	imta_smtp_error_clear(NULL);
}

static void
test_command_verb_names(void)
{
	static const struct { ImtaSmtpVerb verb; const char *name; } rows[] = {
		{ IMTA_SMTP_UNKNOWN, "unknown" }, { IMTA_SMTP_HELO, "HELO" },
		{ IMTA_SMTP_EHLO, "EHLO" }, { IMTA_SMTP_LHLO, "LHLO" }, { IMTA_SMTP_MAIL, "MAIL" },
		{ IMTA_SMTP_RCPT, "RCPT" }, { IMTA_SMTP_DATA, "DATA" }, { IMTA_SMTP_BDAT, "BDAT" },
		{ IMTA_SMTP_RSET, "RSET" }, { IMTA_SMTP_NOOP, "NOOP" }, { IMTA_SMTP_QUIT, "QUIT" },
		{ IMTA_SMTP_VRFY, "VRFY" }, { IMTA_SMTP_EXPN, "EXPN" }, { IMTA_SMTP_HELP, "HELP" },
		{ IMTA_SMTP_STARTTLS, "STARTTLS" }, { IMTA_SMTP_AUTH, "AUTH" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++)
		g_assert_cmpstr(imta_smtp_verb_name(rows[i].verb), ==, rows[i].name);
}

static void
test_command_valid_helo(void)
{
	static const struct { const char *helo; gboolean valid; } rows[] = {
		{ "mail.example.com", TRUE },
		{ "example.com.", TRUE },
		{ "localhost", TRUE },
		{ "MYPC", TRUE },
		{ "host_name.example", TRUE },
		{ "xn--bcher-kva.example", TRUE },
		{ "123host.example", TRUE },
		{ "mail.example.c0m", TRUE },
		{ "[192.0.2.1]", TRUE },
		{ "[IPv6:2001:db8::1]", TRUE },
		{ "[ipv6:::1]", TRUE },
		{ "", FALSE },
		{ NULL, FALSE },
		{ "1.2.3.4", FALSE },
		{ "192.0.2.1.", FALSE },
		{ "12345", FALSE },
		{ "[1.2.3]", FALSE },
		{ "[300.1.1.1]", FALSE },
		{ "[IPv6:zz]", FALSE },
		{ "[192.0.2.1", FALSE },
		{ "-bad.example", FALSE },
		{ "bad-.example", FALSE },
		{ "a..b", FALSE },
		{ ".example", FALSE },
		{ ".", FALSE },
		{ "ex ample", FALSE },
		{ "example.com>", FALSE },
		{ "a@b.example", FALSE },
		{ "\"quoted\"", FALSE },
		{ "exa\x01mple.com", FALSE },
		{ "m\xc3\xa4il.example", FALSE },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
		  FALSE },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
		  TRUE },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		if (imta_smtp_valid_helo(rows[i].helo) != rows[i].valid)
			g_error("helo \"%s\": expected %s", rows[i].helo,
				rows[i].valid ? "valid" : "invalid");
	}
}

/* ---- replies ------------------------------------------------------------ */

static void
test_reply_format(void)
{
	static const struct {
		guint code;
		const char *enhanced;
		const char *text;
		const char *expected;
	} rows[] = {
		{ 250, "2.1.0", "Ok", "250 2.1.0 Ok\r\n" },
		{ 220, NULL, "mx.example.com ESMTP", "220 mx.example.com ESMTP\r\n" },
		{ 250, NULL, "mx.example.com\nPIPELINING\nSIZE 10000000\n8BITMIME",
		  "250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10000000\r\n"
		  "250 8BITMIME\r\n" },
		{ 550, "5.1.1", "first\nsecond", "550-5.1.1 first\r\n550 5.1.1 second\r\n" },
		{ 250, "2.0.0", "Ok\n", "250 2.0.0 Ok\r\n" },
		{ 250, "2.0.0", "one\r\ntwo\r\n", "250-2.0.0 one\r\n250 2.0.0 two\r\n" },
		{ 214, "2.0.0", "a\n\nb", "214-2.0.0 a\r\n214-2.0.0\r\n214 2.0.0 b\r\n" },
		{ 250, "2.0.0", "", "250 2.0.0\r\n" },
		{ 250, NULL, "", "250\r\n" },
		{ 501, "5.5.4", "a\x01\x7f\xc3\xa9\rb", "501 5.5.4 a????\?b\r\n" },
		{ 421, "4.4.2", "mx.example.com Error: timeout exceeded",
		  "421 4.4.2 mx.example.com Error: timeout exceeded\r\n" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(GString) out = g_string_new(NULL);

		imta_smtp_reply(out, rows[i].code, rows[i].enhanced, "%s", rows[i].text);
		g_assert_cmpstr(out->str, ==, rows[i].expected);
	}
}

static void
test_reply_append_and_format(void)
{
	g_autoptr(GString) out = g_string_new("354 go\r\n");

	imta_smtp_reply(out, 552, "5.3.4", "Message size exceeds fixed limit of %d bytes", 100);
	g_assert_cmpstr(out->str, ==,
			"354 go\r\n552 5.3.4 Message size exceeds fixed limit of 100 bytes\r\n");
}

/* RFC 5321 4.5.3.1.5: 512 octets per reply line; longer text goes on in
 * the next line. */
static void
test_reply_long_line(void)
{
	g_autoptr(GString) out = g_string_new(NULL);
	g_autofree char *text = repeat('x', 600);
	g_autofree char *first = repeat('x', 500);
	g_autofree char *rest = repeat('x', 100);
	g_autofree char *want = g_strdup_printf("550-5.0.0 %s\r\n550 5.0.0 %s\r\n", first, rest);
	g_autofree char *plain_first = repeat('x', 506);
	g_autofree char *plain_rest = repeat('x', 94);
	g_autofree char *plain_want = g_strdup_printf("550-%s\r\n550 %s\r\n", plain_first,
						      plain_rest);

	imta_smtp_reply(out, 550, "5.0.0", "%s", text);
	g_assert_cmpstr(out->str, ==, want);
	g_assert_cmpuint(strlen("550-5.0.0 ") + 500 + 2, ==, 512);
	g_string_truncate(out, 0);
	imta_smtp_reply(out, 550, NULL, "%s", text);
	g_assert_cmpstr(out->str, ==, plain_want);
}

static void
test_reply_parse(void)
{
	static const struct {
		const char *line;
		gsize len;
		gboolean ok;
		guint code;
		gboolean last;
		const char *text;
	} rows[] = {
		{ "250 Ok", 6, TRUE, 250, TRUE, "Ok" },
		{ "250-PIPELINING", 14, TRUE, 250, FALSE, "PIPELINING" },
		{ "250", 3, TRUE, 250, TRUE, "" },
		{ "250 ", 4, TRUE, 250, TRUE, "" },
		{ "250-", 4, TRUE, 250, FALSE, "" },
		{ "354 End data with <CR><LF>.<CR><LF>", 35, TRUE, 354, TRUE,
		  "End data with <CR><LF>.<CR><LF>" },
		{ "550-5.1.1 User unknown", 22, TRUE, 550, FALSE, "5.1.1 User unknown" },
		{ "421 4.4.2 Timeout", 17, TRUE, 421, TRUE, "4.4.2 Timeout" },
		{ "250 Ok trailing", 6, TRUE, 250, TRUE, "Ok" },
		{ "abc", 3, FALSE, 0, FALSE, NULL },
		{ "25", 2, FALSE, 0, FALSE, NULL },
		{ "", 0, FALSE, 0, FALSE, NULL },
		{ "2500 x", 6, FALSE, 0, FALSE, NULL },
		{ "250x", 4, FALSE, 0, FALSE, NULL },
		{ "150 x", 5, FALSE, 0, FALSE, NULL },
		{ "650 x", 5, FALSE, 0, FALSE, NULL },
		{ "260 x", 5, FALSE, 0, FALSE, NULL },
		{ "25a x", 5, FALSE, 0, FALSE, NULL },
		{ "250 a\0b", 7, FALSE, 0, FALSE, NULL },
		{ " 250 x", 6, FALSE, 0, FALSE, NULL },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		guint code = 0;
		gboolean last = FALSE;
		const char *text = NULL;
		gboolean ok = imta_smtp_parse_reply_line(rows[i].line, rows[i].len, &code, &last,
							 &text);

		g_assert_cmpint(ok, ==, rows[i].ok);
		if (!ok)
			continue;
		g_assert_cmpuint(code, ==, rows[i].code);
		g_assert_cmpint(last, ==, rows[i].last);
		g_assert_cmpuint(rows[i].len - MIN(rows[i].len, 4), ==, strlen(rows[i].text));
		g_assert_cmpmem(text, strlen(rows[i].text), rows[i].text, strlen(rows[i].text));
	}
}

/* A server's multi-line reply reads back line by line. */
static void
test_reply_round_trip(void)
{
	g_autoptr(GString) out = g_string_new(NULL);
	g_auto(GStrv) lines = NULL;
	static const char *const texts[] = { "2.0.0 mx.example.com", "2.0.0 PIPELINING",
					     "2.0.0 8BITMIME" };

	imta_smtp_reply(out, 250, "2.0.0", "mx.example.com\nPIPELINING\n8BITMIME");
	lines = g_strsplit(out->str, "\r\n", -1);
	g_assert_cmpuint(g_strv_length(lines), ==, 4);
	g_assert_cmpstr(lines[3], ==, "");
	for (guint i = 0; i < 3; i++) {
		guint code;
		gboolean last;
		const char *text;

		g_assert_true(imta_smtp_parse_reply_line(lines[i], strlen(lines[i]), &code, &last,
							 &text));
		g_assert_cmpuint(code, ==, 250);
		g_assert_cmpint(last, ==, i == 2);
		g_assert_cmpstr(text, ==, texts[i]);
	}
}

/* ---- DATA ---------------------------------------------------------------- */

typedef struct {
	const char *input;
	gssize len;             /* -1: strlen */
	const char *output;
	gssize output_len;      /* -1: strlen */
	gsize consumed;
	gboolean done;
	guint bare_lf;
	guint nul;
	gboolean eight_bit;
} DataRow;

static const DataRow data_rows[] = {
	{ ".\r\n", -1, "", -1, 3, TRUE, 0, 0, FALSE },
	{ "Hello\r\n.\r\n", -1, "Hello\n", -1, 10, TRUE, 0, 0, FALSE },
	{ "Hello\r\n.\r\nMAIL FROM:<x@example.com>\r\n", -1, "Hello\n", -1, 10, TRUE, 0, 0,
	  FALSE },
	{ "a\r\n.\r\n.\r\n", -1, "a\n", -1, 6, TRUE, 0, 0, FALSE },
	{ "\r\n.\r\n", -1, "\n", -1, 5, TRUE, 0, 0, FALSE },
	{ "a\r\n\r\n.\r\n", -1, "a\n\n", -1, 8, TRUE, 0, 0, FALSE },
	/* dot-stuffing, the first line included */
	{ "a\r\n..b\r\n.\r\n", -1, "a\n.b\n", -1, 11, TRUE, 0, 0, FALSE },
	{ "..\r\n.\r\n", -1, ".\n", -1, 7, TRUE, 0, 0, FALSE },
	{ ".x\r\n.\r\n", -1, "x\n", -1, 7, TRUE, 0, 0, FALSE },
	{ "...\r\n.\r\n", -1, "..\n", -1, 8, TRUE, 0, 0, FALSE },
	{ " .\r\n.\r\n", -1, " .\n", -1, 7, TRUE, 0, 0, FALSE },
	{ "a.\r\n.\r\n", -1, "a.\n", -1, 7, TRUE, 0, 0, FALSE },
	/* the smuggling sequences are content */
	{ "a\n.\nb\r\n.\r\n", -1, "a\n.\nb\n", -1, 10, TRUE, 2, 0, FALSE },
	{ "a\r.\rb\r\n.\r\n", -1, "a\r.\rb\n", -1, 10, TRUE, 0, 0, FALSE },
	{ "a\r.\nb\r\n.\r\n", -1, "a\r.\nb\n", -1, 10, TRUE, 1, 0, FALSE },
	{ "a\n.\r\nb\r\n.\r\n", -1, "a\n.\nb\n", -1, 11, TRUE, 1, 0, FALSE },
	{ "a\r\n.\nb\r\n.\r\n", -1, "a\n.\nb\n", -1, 11, TRUE, 1, 0, FALSE },
	{ "a\r\n.\r.\r\n.\r\n", -1, "a\n.\r.\n", -1, 11, TRUE, 0, 0, FALSE },
	{ "a\r\n.\rb\r\n.\r\n", -1, "a\n.\rb\n", -1, 11, TRUE, 0, 0, FALSE },
	{ "a\n..\nb\r\n.\r\n", -1, "a\n.\nb\n", -1, 11, TRUE, 2, 0, FALSE },
	{ "a\r\n.\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n"
	  "evil\r\n.\r\nQUIT\r\n", -1,
	  "a\n.\nMAIL FROM:<evil@example.com>\nRCPT TO:<victim@example.com>\nDATA\nevil\n", -1,
	  80, TRUE, 1, 0, FALSE },
	{ "a\n.\r\nMAIL FROM:<evil@example.com>\r\n.\r\n", -1,
	  "a\n.\nMAIL FROM:<evil@example.com>\n", -1, 38, TRUE, 1, 0, FALSE },
	{ "\n.\r\n", -1, "\n.\n", -1, 4, FALSE, 1, 0, FALSE },
	{ "\n.\n", -1, "\n.\n", -1, 3, FALSE, 2, 0, FALSE },
	{ "\r.\r\n", -1, "\r.\n", -1, 4, FALSE, 0, 0, FALSE },
	/* bare CRs stay, CR LF and bare LF become LF */
	{ "a\r\r\n.\r\n", -1, "a\r\n", -1, 7, TRUE, 0, 0, FALSE },
	{ "a\rb\nc\r\n.\r\n", -1, "a\rb\nc\n", -1, 10, TRUE, 1, 0, FALSE },
	{ "\r\r\r\n.\r\n", -1, "\r\r\n", -1, 7, TRUE, 0, 0, FALSE },
	/* what is counted */
	{ "a\0b\r\n\0\r\n.\r\n", 11, "a\0b\n\0\n", 6, 11, TRUE, 0, 2, FALSE },
	{ "caf\xc3\xa9\r\n.\r\n", -1, "caf\xc3\xa9\n", -1, 10, TRUE, 0, 0, TRUE },
	/* spans longer than a word: the high bit and NULs anywhere in them */
	{ "0123456789abcdefghij\r\n.\r\n", -1, "0123456789abcdefghij\n", -1, 25, TRUE, 0, 0,
	  FALSE },
	{ "0123456789abcdefghij\xff\r\n.\r\n", -1, "0123456789abcdefghij\xff\n", -1, 26, TRUE, 0,
	  0, TRUE },
	{ "01234567\xe9" "bcdefghij\r\n.\r\n", -1, "01234567\xe9" "bcdefghij\n", -1, 23, TRUE, 0, 0,
	  TRUE },
	{ "0123456789\0\0abcdef\0\r\n.\r\n", 24, "0123456789\0\0abcdef\0\n", 20, 24, TRUE, 0, 3,
	  FALSE },
	/* not finished yet: the pending ".", ".\r" or "\r" is held */
	{ "abc", -1, "abc", -1, 3, FALSE, 0, 0, FALSE },
	{ "abc\r\n.", -1, "abc\n", -1, 6, FALSE, 0, 0, FALSE },
	{ "abc\r\n.\r", -1, "abc\n", -1, 7, FALSE, 0, 0, FALSE },
	{ "abc\r", -1, "abc", -1, 4, FALSE, 0, 0, FALSE },
	{ "", -1, "", -1, 0, FALSE, 0, 0, FALSE },
};

typedef struct {
	GString *out;
	gsize consumed;
	gboolean done;
	ImtaSmtpDataReader r;
} DataRun;

static void
data_run_init(DataRun *run)
{
	run->out = g_string_new(NULL);
	run->consumed = 0;
	run->done = FALSE;
	imta_smtp_data_reader_init(&run->r);
}

static void
data_run_feed(DataRun *run, const char *in, gsize len)
{
	gsize n;

	if (run->done)
		return;
	n = imta_smtp_data_reader_feed(&run->r, in, len, run->out, &run->done);
	g_assert_cmpuint(n, <=, len);
	/* what is not consumed is only ever what follows the end */
	if (!run->done)
		g_assert_cmpuint(n, ==, len);
	run->consumed += n;
}

static void
data_check(const DataRow *row, const DataRun *run, const char *how)
{
	gsize out_len = row->output_len < 0 ? strlen(row->output) : (gsize) row->output_len;

	if (run->out->len != out_len || memcmp(run->out->str, row->output, out_len) != 0) {
		g_autofree char *in = g_strescape(row->input, NULL);
		g_autofree char *got = g_strescape(run->out->str, NULL);

		g_error("\"%s\" fed %s gave \"%s\"", in, how, got);
	}
	g_assert_cmpuint(run->consumed, ==, row->consumed);
	g_assert_cmpint(run->done, ==, row->done);
	g_assert_cmpuint(run->r.bytes, ==, out_len);
	g_assert_cmpuint(run->r.bare_lf, ==, row->bare_lf);
	g_assert_cmpuint(run->r.nul, ==, row->nul);
	g_assert_cmpint(run->r.eight_bit, ==, row->eight_bit);
	g_assert_cmpuint(run->r.long_lines, ==, 0);
}

static void
test_data_whole(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(data_rows); i++) {
		const DataRow *row = &data_rows[i];
		gsize len = row->len < 0 ? strlen(row->input) : (gsize) row->len;
		DataRun run;

		data_run_init(&run);
		data_run_feed(&run, row->input, len);
		data_check(row, &run, "whole");
		g_string_free(run.out, TRUE);
	}
}

/* Input can arrive in any pieces: one byte at a time, or cut anywhere. */
static void
test_data_every_split(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(data_rows); i++) {
		const DataRow *row = &data_rows[i];
		gsize len = row->len < 0 ? strlen(row->input) : (gsize) row->len;
		DataRun run;

		data_run_init(&run);
		for (gsize k = 0; k < len; k++)
			data_run_feed(&run, row->input + k, 1);
		data_check(row, &run, "byte by byte");
		g_string_free(run.out, TRUE);
		for (gsize a = 0; a <= len; a++) {
			for (gsize b = a; b <= len; b++) {
				data_run_init(&run);
				data_run_feed(&run, row->input, a);
				data_run_feed(&run, row->input + a, b - a);
				data_run_feed(&run, row->input + b, len - b);
				data_check(row, &run, "in three pieces");
				g_string_free(run.out, TRUE);
			}
		}
	}
}

/* Once the end is read, nothing more is taken. */
static void
test_data_after_done(void)
{
	ImtaSmtpDataReader r;
	g_autoptr(GString) out = g_string_new(NULL);
	gboolean done = FALSE;

	imta_smtp_data_reader_init(&r);
	g_assert_cmpuint(imta_smtp_data_reader_feed(&r, ".\r\n", 3, out, &done), ==, 3);
	g_assert_true(done);
	done = FALSE;
	g_assert_cmpuint(imta_smtp_data_reader_feed(&r, "more\r\n", 6, out, &done), ==, 0);
	g_assert_true(done);
	g_assert_cmpuint(imta_smtp_data_reader_feed(&r, NULL, 0, out, &done), ==, 0);
	g_assert_cmpstr(out->str, ==, "");
}

/* RFC 5321 4.5.3.1.6: 998 octets and CR LF; a longer line is passed on
 * whole and counted once. */
static void
test_data_long_lines(void)
{
	static const struct {
		const char *prefix;
		gsize xs;
		const char *suffix;
		guint long_lines;
	} rows[] = {
		{ "", 998, "\r\n.\r\n", 0 },
		{ "", 999, "\r\n.\r\n", 1 },
		{ "", 5000, "\r\n.\r\n", 1 },
		{ ".", 997, "\r\n.\r\n", 0 },   /* the stuffing dot is on the wire */
		{ ".", 998, "\r\n.\r\n", 1 },
		{ "", 999, "\n", 1 },
		{ "", 999, "", 1 },
		{ "", 997, "\r\r\n.\r\n", 0 }, /* a bare CR is part of the line */
		{ "", 998, "\r\r\n.\r\n", 1 },
		{ "a\r\n", 998, "\r\nb\r\n.\r\n", 0 },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *xs = repeat('x', rows[i].xs);
		g_autofree char *in = g_strconcat(rows[i].prefix, xs, rows[i].suffix, NULL);
		gsize len = strlen(in);
		DataRun whole, bytes;

		data_run_init(&whole);
		data_run_feed(&whole, in, len);
		data_run_init(&bytes);
		for (gsize k = 0; k < len; k++)
			data_run_feed(&bytes, in + k, 1);
		g_assert_cmpint(whole.done, ==, g_str_has_suffix(rows[i].suffix, ".\r\n"));
		g_assert_cmpuint(whole.r.long_lines, ==, rows[i].long_lines);
		g_assert_cmpuint(bytes.r.long_lines, ==, rows[i].long_lines);
		g_assert_cmpstr(bytes.out->str, ==, whole.out->str);
		g_string_free(whole.out, TRUE);
		g_string_free(bytes.out, TRUE);
	}
}

static void
test_data_long_lines_counted_each(void)
{
	g_autofree char *xs = repeat('x', 999);
	g_autofree char *in = g_strconcat(xs, "\r\n", xs, "\n", xs, "\r\n.\r\n", NULL);
	DataRun run;

	data_run_init(&run);
	data_run_feed(&run, in, strlen(in));
	g_assert_true(run.done);
	g_assert_cmpuint(run.r.long_lines, ==, 3);
	g_assert_cmpuint(run.r.bare_lf, ==, 1);
	g_assert_cmpuint(run.out->len, ==, 3 * 1000);
	g_string_free(run.out, TRUE);
}

/* ---- BDAT ----------------------------------------------------------------- */

static void
test_bdat(void)
{
	static const struct {
		const char *input;
		const char *output;
		guint bare_lf;
	} rows[] = {
		{ "a\r\nb", "a\nb", 0 },
		{ "a\r", "a\r", 0 },
		{ "a\nb\r\n", "a\nb\n", 1 },
		{ "\r\n.\r\n", "\n.\n", 0 },
		{ ".\r\n", ".\n", 0 },
		{ "..x\r\n", "..x\n", 0 },
		{ "a\r\rb", "a\r\rb", 0 },
		{ "\r\r\n", "\r\n", 0 },
		{ "", "", 0 },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		gsize len = strlen(rows[i].input);

		for (gsize a = 0; a <= len; a++) {
			ImtaSmtpDataReader r;
			g_autoptr(GString) out = g_string_new(NULL);

			imta_smtp_bdat_reader_init(&r);
			imta_smtp_bdat_reader_feed(&r, rows[i].input, a, out);
			imta_smtp_bdat_reader_feed(&r, rows[i].input + a, len - a, out);
			imta_smtp_bdat_reader_finish(&r, out);
			g_assert_cmpstr(out->str, ==, rows[i].output);
			g_assert_cmpuint(r.bytes, ==, out->len);
			g_assert_cmpuint(r.bare_lf, ==, rows[i].bare_lf);
		}
	}
}

/* ---- the client's encoder ----------------------------------------------- */

static void
test_encode(void)
{
	static const struct {
		const char *input;
		const char *output;
	} rows[] = {
		{ "Hello\n", "Hello\r\n.\r\n" },
		{ ".hidden\n", "..hidden\r\n.\r\n" },
		{ "a\n.\n", "a\r\n..\r\n.\r\n" },
		{ "a\n..\nb", "a\r\n...\r\nb\r\n.\r\n" },
		{ "no newline", "no newline\r\n.\r\n" },
		{ "", ".\r\n" },
		{ "\n", "\r\n.\r\n" },
		{ "a\n\n", "a\r\n\r\n.\r\n" },
		{ "x.y\n", "x.y\r\n.\r\n" },
		{ "a\rb\n", "a\rb\r\n.\r\n" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		gsize len = strlen(rows[i].input);

		for (gsize a = 0; a <= len; a++) {
			g_autoptr(GString) out = g_string_new(NULL);
			guint state = 0;

			imta_smtp_data_encode(&state, rows[i].input, a, FALSE, out);
			imta_smtp_data_encode(&state, rows[i].input + a, len - a, TRUE, out);
			g_assert_cmpstr(out->str, ==, rows[i].output);
			g_assert_cmpuint(state, ==, 0);
		}
	}
}

/* What the client encodes, the server reads back as it was. */
static void
test_encode_round_trip(void)
{
	static const char *const contents[] = {
		"Hello\n", ".\n", "..\n", "a\n.\nb\n", "a\r\n.\r\n", "\r", ".\r", "a\r.\n",
		"x\r\n.\n", "\n.\n", "From: a\n\n.body\n...\n",
	};

	for (gsize i = 0; i < G_N_ELEMENTS(contents); i++) {
		g_autoptr(GString) wire = g_string_new(NULL);
		g_autoptr(GString) back = g_string_new(NULL);
		g_autofree char *want = NULL;
		ImtaSmtpDataReader r;
		guint state = 0;
		gboolean done = FALSE;
		gsize n;

		imta_smtp_data_encode(&state, contents[i], strlen(contents[i]), TRUE, wire);
		imta_smtp_data_reader_init(&r);
		n = imta_smtp_data_reader_feed(&r, wire->str, wire->len, back, &done);
		g_assert_true(done);
		g_assert_cmpuint(n, ==, wire->len);
		/* the encoder ends an unfinished last line */
		want = g_str_has_suffix(contents[i], "\n") ? g_strdup(contents[i])
							   : g_strconcat(contents[i], "\n", NULL);
		g_assert_cmpstr(back->str, ==, want);
	}
}

/* ---- trace ------------------------------------------------------------------ */

#define TEST_TIME G_GINT64_CONSTANT(1700000000)   /* Tue, 14 Nov 2023 22:13:20 UTC */

typedef struct {
	ImtaSmtpTrace trace;
	const char *expected;
} ReceivedRow;

static const ReceivedRow received_rows[] = {
	{ { "client.example.org", "mail.example.org", "192.0.2.1", "mx.example.com", "ESMTPS",
	    "TLS1.3 with cipher TLS_AES_256_GCM_SHA384", "0123456789ABCDEF", "user@example.com",
	    TEST_TIME },
	  "Received: from client.example.org (mail.example.org [192.0.2.1])\n"
	  "\t(TLS1.3 with cipher TLS_AES_256_GCM_SHA384)\n"
	  "\tby mx.example.com (imta) with ESMTPS id 0123456789ABCDEF\n"
	  "\tfor <user@example.com>; Tue, 14 Nov 2023 22:13:20 +0000\n" },
	{ { "client.example.org", "mail.example.org", "192.0.2.1", "mx.example.com", "ESMTP", NULL,
	    "0123456789ABCDEF", NULL, TEST_TIME },
	  "Received: from client.example.org (mail.example.org [192.0.2.1])\n"
	  "\tby mx.example.com (imta) with ESMTP id 0123456789ABCDEF;\n"
	  "\tTue, 14 Nov 2023 22:13:20 +0000\n" },
	/* a HELO name that would add a header line */
	{ { "bad helo\r\nX-Injected: yes", "mail.example.org", "192.0.2.1", "mx.example.com",
	    "SMTP", NULL, "ID1", "user@example.com", TEST_TIME },
	  "Received: from mail.example.org (mail.example.org [192.0.2.1])\n"
	  "\t(helo=bad?helo??X-Injected:?yes)\n"
	  "\tby mx.example.com (imta) with SMTP id ID1\n"
	  "\tfor <user@example.com>; Tue, 14 Nov 2023 22:13:20 +0000\n" },
	{ { "[IPv6:2001:db8::25]", NULL, "2001:db8::25", "mx.example.com", "ESMTP", NULL, "ID2",
	    "user@example.com", TEST_TIME },
	  "Received: from [IPv6:2001:db8::25] (unknown [IPv6:2001:db8::25])\n"
	  "\tby mx.example.com (imta) with ESMTP id ID2\n"
	  "\tfor <user@example.com>; Tue, 14 Nov 2023 22:13:20 +0000\n" },
	{ { NULL, NULL, "192.0.2.7", "mx.example.com", "SMTP", NULL, "ID3", "user@example.com",
	    TEST_TIME },
	  "Received: from [192.0.2.7] (unknown [192.0.2.7])\n"
	  "\tby mx.example.com (imta) with SMTP id ID3\n"
	  "\tfor <user@example.com>; Tue, 14 Nov 2023 22:13:20 +0000\n" },
	{ { "1.2.3.4", NULL, "192.0.2.7", "mx.example.com", "SMTP", NULL, "ID4",
	    "user@example.com", TEST_TIME },
	  "Received: from [192.0.2.7] (unknown [192.0.2.7]) (helo=1.2.3.4)\n"
	  "\tby mx.example.com (imta) with SMTP id ID4\n"
	  "\tfor <user@example.com>; Tue, 14 Nov 2023 22:13:20 +0000\n" },
	/* no HELO: the reverse name stands in */
	{ { NULL, "mail.example.org", "192.0.2.1", "mx.example.com", "SMTP", NULL, "ID11",
	    "user@example.com", TEST_TIME },
	  "Received: from mail.example.org (mail.example.org [192.0.2.1])\n"
	  "\tby mx.example.com (imta) with SMTP id ID11\n"
	  "\tfor <user@example.com>; Tue, 14 Nov 2023 22:13:20 +0000\n" },
	/* a reverse name that is not a host name is not trusted */
	{ { "client.example.org", "bad name(", "192.0.2.7", "mx.example.com", "ESMTPA", NULL,
	    "ID5", "user@example.com", TEST_TIME },
	  "Received: from client.example.org (unknown [192.0.2.7])\n"
	  "\tby mx.example.com (imta) with ESMTPA id ID5\n"
	  "\tfor <user@example.com>; Tue, 14 Nov 2023 22:13:20 +0000\n" },
	/* an address that is not an IP address is left out */
	{ { "client.example.org", NULL, "192.0.2.7)\n", "mx.example.com", "ESMTP", NULL, "ID6",
	    NULL, TEST_TIME },
	  "Received: from client.example.org\n"
	  "\tby mx.example.com (imta) with ESMTP id ID6;\n"
	  "\tTue, 14 Nov 2023 22:13:20 +0000\n" },
	/* an IPv6 zone is left out of the literal, whatever it holds */
	{ { "client.example.org", NULL, "fe80::1%eth0", "mx.example.com", "ESMTP", NULL, "ID12",
	    NULL, TEST_TIME },
	  "Received: from client.example.org (unknown [IPv6:fe80::1])\n"
	  "\tby mx.example.com (imta) with ESMTP id ID12;\n"
	  "\tTue, 14 Nov 2023 22:13:20 +0000\n" },
	{ { NULL, NULL, "2001:db8::1%]>\nRCPT TO:<a@b]", "mx.example.com", "ESMTP", NULL, "ID13",
	    NULL, TEST_TIME },
	  "Received: from [IPv6:2001:db8::1] (unknown [IPv6:2001:db8::1])\n"
	  "\tby mx.example.com (imta) with ESMTP id ID13;\n"
	  "\tTue, 14 Nov 2023 22:13:20 +0000\n" },
	{ { "client.example.org", "mail.example.org", "192.0.2.1", "mx.example.com", NULL, NULL,
	    NULL, NULL, TEST_TIME },
	  "Received: from client.example.org (mail.example.org [192.0.2.1])\n"
	  "\tby mx.example.com (imta); Tue, 14 Nov 2023 22:13:20 +0000\n" },
	/* nothing known of the client: locally submitted */
	{ { NULL, NULL, NULL, "mx.example.com", "SMTP", NULL, "0123456789ABCDEF", NULL,
	    TEST_TIME },
	  "Received: by mx.example.com (imta) with SMTP id 0123456789ABCDEF;\n"
	  "\tTue, 14 Nov 2023 22:13:20 +0000\n" },
	{ { "bad helo", NULL, NULL, "mx.example.com", "SMTP", NULL, "ID7", NULL, TEST_TIME },
	  "Received: from unknown (helo=bad?helo)\n"
	  "\tby mx.example.com (imta) with SMTP id ID7;\n"
	  "\tTue, 14 Nov 2023 22:13:20 +0000\n" },
	/* a recipient that could break the header is left out */
	{ { "client.example.org", NULL, "192.0.2.7", "mx.example.com", "ESMTP", NULL, "ID8",
	    "a@example.com>\r\nX-Injected: yes", TEST_TIME },
	  "Received: from client.example.org (unknown [192.0.2.7])\n"
	  "\tby mx.example.com (imta) with ESMTP id ID8;\n"
	  "\tTue, 14 Nov 2023 22:13:20 +0000\n" },
	{ { "client.example.org", NULL, "192.0.2.7", "mx.example.com", "ESMTP", NULL, "ID9",
	    "\"john doe\"@example.com", TEST_TIME },
	  "Received: from client.example.org (unknown [192.0.2.7])\n"
	  "\tby mx.example.com (imta) with ESMTP id ID9\n"
	  "\tfor <\"john doe\"@example.com>; Tue, 14 Nov 2023 22:13:20 +0000\n" },
	/* long names fold between words */
	{ { "a-very-long-host-name-for-folding-tests.subdomain.example.org",
	    "a-very-long-host-name-for-folding-tests.subdomain.example.net", "192.0.2.1",
	    "mx.example.com", "ESMTPS", "TLS1.2 (weird)\r\n", "ID10", NULL, TEST_TIME },
	  "Received: from a-very-long-host-name-for-folding-tests.subdomain.example.org\n"
	  "\t(a-very-long-host-name-for-folding-tests.subdomain.example.net\n"
	  "\t[192.0.2.1])\n"
	  "\t(TLS1.2 ?weird??\?)\n"
	  "\tby mx.example.com (imta) with ESMTPS id ID10;\n"
	  "\tTue, 14 Nov 2023 22:13:20 +0000\n" },
	/* words of the protocol and id that are not atoms lose their bad bytes */
	{ { "client.example.org", NULL, "192.0.2.1", "bad host!", "ES MTP\n", NULL, "a;b", NULL,
	    TEST_TIME },
	  "Received: from client.example.org (unknown [192.0.2.1])\n"
	  "\tby localhost (imta) with ESMTP id ab; Tue, 14 Nov 2023 22:13:20 +0000\n" },
	/* 78 columns fit; 79 fold */
	{ { "client.example.org", NULL, "192.0.2.1", "localhost", "ESMTP", NULL, "abc", NULL,
	    TEST_TIME },
	  "Received: from client.example.org (unknown [192.0.2.1])\n"
	  "\tby localhost (imta) with ESMTP id abc; Tue, 14 Nov 2023 22:13:20 +0000\n" },
	{ { "client.example.org", NULL, "192.0.2.1", "localhost", "ESMTP", NULL, "abcd", NULL,
	    TEST_TIME },
	  "Received: from client.example.org (unknown [192.0.2.1])\n"
	  "\tby localhost (imta) with ESMTP id abcd;\n"
	  "\tTue, 14 Nov 2023 22:13:20 +0000\n" },
	/* the day of the month is not padded */
	{ { NULL, NULL, NULL, "mx.example.com", NULL, NULL, NULL, NULL,
	    G_GINT64_CONSTANT(1704067199) },
	  "Received: by mx.example.com (imta); Sun, 31 Dec 2023 23:59:59 +0000\n" },
	{ { NULL, NULL, NULL, "mx.example.com", NULL, NULL, NULL, NULL,
	    G_GINT64_CONSTANT(1709251200) },
	  "Received: by mx.example.com (imta); Fri, 1 Mar 2024 00:00:00 +0000\n" },
};

static void
test_received(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(received_rows); i++) {
		g_autofree char *got = imta_smtp_received_header(&received_rows[i].trace);
		g_auto(GStrv) lines = g_strsplit(got, "\n", -1);

		g_assert_cmpstr(got, ==, received_rows[i].expected);
		/* every line fits in 78 columns, a tab counted as 8 */
		for (guint k = 0; lines[k] != NULL; k++) {
			gsize len = strlen(lines[k]);
			gsize cols = lines[k][0] == '\t' ? 8 + len - 1 : len;

			g_assert_cmpuint(cols, <=, 78);
		}
	}
}

/* The date follows the local time zone (TZ, read again by tzset() as
 * the C library wants), as a numeric offset. */
static void
test_received_time_zone(void)
{
	static const struct { const char *tz; const char *date; } rows[] = {
		{ "UTC", "Tue, 14 Nov 2023 22:13:20 +0000" },
		{ "XST-5:30", "Wed, 15 Nov 2023 03:43:20 +0530" },
		{ "YST9", "Tue, 14 Nov 2023 13:13:20 -0900" },
	};
	ImtaSmtpTrace trace = { .by_host = "mx.example.com", .time = TEST_TIME };

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *got = NULL;
		g_autofree char *want = g_strdup_printf("Received: by mx.example.com (imta); %s\n",
							rows[i].date);

		g_setenv("TZ", rows[i].tz, TRUE);
		tzset();
		got = imta_smtp_received_header(&trace);
		g_assert_cmpstr(got, ==, want);
	}
	g_setenv("TZ", "UTC", TRUE);
	tzset();
}

static void
test_protocol_name(void)
{
	static const struct {
		gboolean esmtp, tls, auth, lmtp;
		const char *name;
	} rows[] = {
		{ FALSE, FALSE, FALSE, FALSE, "SMTP" },
		{ FALSE, TRUE, TRUE, FALSE, "SMTP" },
		{ TRUE, FALSE, FALSE, FALSE, "ESMTP" },
		{ TRUE, FALSE, TRUE, FALSE, "ESMTPA" },
		{ TRUE, TRUE, FALSE, FALSE, "ESMTPS" },
		{ TRUE, TRUE, TRUE, FALSE, "ESMTPSA" },
		{ TRUE, FALSE, FALSE, TRUE, "LMTP" },
		{ TRUE, FALSE, TRUE, TRUE, "LMTPA" },
		{ TRUE, TRUE, FALSE, TRUE, "LMTPS" },
		{ TRUE, TRUE, TRUE, TRUE, "LMTPSA" },
		{ FALSE, FALSE, FALSE, TRUE, "LMTP" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++)
		g_assert_cmpstr(imta_smtp_protocol_name(rows[i].esmtp, rows[i].tls, rows[i].auth,
							rows[i].lmtp), ==, rows[i].name);
}

static void
test_count_received(void)
{
	static const struct {
		const char *head;
		gssize len;
		guint max;
		guint count;
	} rows[] = {
		{ "Received: a\nReceived: b\nSubject: x\n\nReceived: body\n", -1, 50, 2 },
		{ "received : x\n", -1, 50, 1 },
		{ "RECEIVED:x\n", -1, 50, 1 },
		{ "Received\t:x\n", -1, 50, 1 },
		{ "X-Received: x\nReceivedX: x\nReceived-SPF: pass\nReceived\n", -1, 50, 0 },
		{ "Subject: x\n Received: folded\n", -1, 50, 0 },
		{ "Received: a\r\n\r\nReceived: b\n", -1, 50, 1 },
		{ "Received: a\n from x\n by y\nReceived: b\n", -1, 50, 2 },
		{ "Received: 1\nReceived: 2\nReceived: 3\nReceived: 4\nReceived: 5\n", -1, 3, 4 },
		{ "Received: 1\nReceived: 2\nReceived: 3\n", -1, 3, 3 },
		{ "Received: 1\nReceived: 2\n", 12, 50, 1 },
		{ "Received: 1\nReceived: 2\n", 14, 50, 1 },
		{ "Received:", -1, 50, 1 },
		{ "", -1, 50, 0 },
		{ "\nReceived: 1\n", -1, 50, 0 },
		{ "Received: 1\n", -1, 0, 1 },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		gsize len = rows[i].len < 0 ? strlen(rows[i].head) : (gsize) rows[i].len;

		g_assert_cmpuint(imta_smtp_count_received(rows[i].head, len, rows[i].max), ==,
				 rows[i].count);
	}
}

int
main(int argc, char **argv)
{
	g_setenv("TZ", "UTC", TRUE);
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/smtp/command/verbs", test_command_verbs);
	g_test_add_func("/smtp/command/mail", test_command_mail);
	g_test_add_func("/smtp/command/mail-params", test_command_mail_params);
	g_test_add_func("/smtp/command/rcpt", test_command_rcpt);
	g_test_add_func("/smtp/command/line", test_command_line);
	g_test_add_func("/smtp/command/line-limit", test_command_line_limit);
	g_test_add_func("/smtp/command/path-limits", test_command_path_limits);
	g_test_add_func("/smtp/command/dsn-limits", test_command_dsn_limits);
	g_test_add_func("/smtp/command/auth-limit", test_command_auth_param_limit);
	g_test_add_func("/smtp/command/no-offer", test_command_no_offer);
	g_test_add_func("/smtp/command/verb-names", test_command_verb_names);
	g_test_add_func("/smtp/command/valid-helo", test_command_valid_helo);
	g_test_add_func("/smtp/reply/format", test_reply_format);
	g_test_add_func("/smtp/reply/append", test_reply_append_and_format);
	g_test_add_func("/smtp/reply/long-line", test_reply_long_line);
	g_test_add_func("/smtp/reply/parse", test_reply_parse);
	g_test_add_func("/smtp/reply/round-trip", test_reply_round_trip);
	g_test_add_func("/smtp/data/whole", test_data_whole);
	g_test_add_func("/smtp/data/every-split", test_data_every_split);
	g_test_add_func("/smtp/data/after-done", test_data_after_done);
	g_test_add_func("/smtp/data/long-lines", test_data_long_lines);
	g_test_add_func("/smtp/data/long-lines-each", test_data_long_lines_counted_each);
	g_test_add_func("/smtp/bdat/chunks", test_bdat);
	g_test_add_func("/smtp/encode/stuffing", test_encode);
	g_test_add_func("/smtp/encode/round-trip", test_encode_round_trip);
	g_test_add_func("/smtp/trace/received", test_received);
	g_test_add_func("/smtp/trace/time-zone", test_received_time_zone);
	g_test_add_func("/smtp/trace/protocol-name", test_protocol_name);
	g_test_add_func("/smtp/trace/count-received", test_count_received);
	return g_test_run();
}
