/*
 * test-notice.c - delivery status notifications: who gets which notice
 * (NOTIFY, the empty return path, the postmaster's copies), how a
 * diagnostic becomes Status, Remote-MTA and Diagnostic-Code, the exact
 * text of reports for fixed inputs (fixed time, TZ=UTC, fixed Message-ID
 * and boundary), what is returned of the original, notices queued through
 * a real queue, and the queue file's "W" record of delay warnings.
 */
#include "config.h"

#include <string.h>
#include <time.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/imta.h>
#include <imta/queue.h>
#include <imta/notice.h>

#define T_NOW 1700000000        /* Tue, 14 Nov 2023 22:13:20 +0000 */
#define T_ARRIVAL 1699990000    /* Tue, 14 Nov 2023 19:26:40 +0000 */
#define T_UNTIL 1700345600      /* Sat, 18 Nov 2023 22:13:20 +0000 */
#define MSGID "<1700000000.0SJX2K5A1B3C9FQW.F1@mail.example.com>"
#define BOUNDARY "=_0SJX2K5A1B3C9FQW_test"

/* ---- who gets what ------------------------------------------------------ */

static const struct {
	ImtaNoticeKind kind;
	guint notify;
	gboolean wanted;
} wanted_rows[] = {
	/* No NOTIFY: failures and delays (RFC 3461 4.1). */
	{ IMTA_NOTICE_FAILURE, 0, TRUE },
	{ IMTA_NOTICE_DELAY, 0, TRUE },
	{ IMTA_NOTICE_SUCCESS, 0, FALSE },
	/* NEVER: nothing. */
	{ IMTA_NOTICE_FAILURE, IMTA_NOTIFY_NEVER, FALSE },
	{ IMTA_NOTICE_DELAY, IMTA_NOTIFY_NEVER, FALSE },
	{ IMTA_NOTICE_SUCCESS, IMTA_NOTIFY_NEVER, FALSE },
	/* A list: what it names. */
	{ IMTA_NOTICE_FAILURE, IMTA_NOTIFY_SUCCESS, FALSE },
	{ IMTA_NOTICE_SUCCESS, IMTA_NOTIFY_SUCCESS, TRUE },
	{ IMTA_NOTICE_DELAY, IMTA_NOTIFY_SUCCESS, FALSE },
	{ IMTA_NOTICE_FAILURE, IMTA_NOTIFY_FAILURE, TRUE },
	{ IMTA_NOTICE_DELAY, IMTA_NOTIFY_FAILURE, FALSE },
	{ IMTA_NOTICE_DELAY, IMTA_NOTIFY_DELAY, TRUE },
	{ IMTA_NOTICE_FAILURE, IMTA_NOTIFY_DELAY, FALSE },
	{ IMTA_NOTICE_SUCCESS, IMTA_NOTIFY_SUCCESS | IMTA_NOTIFY_FAILURE, TRUE },
	{ IMTA_NOTICE_FAILURE, IMTA_NOTIFY_SUCCESS | IMTA_NOTIFY_FAILURE, TRUE },
	{ IMTA_NOTICE_DELAY, IMTA_NOTIFY_SUCCESS | IMTA_NOTIFY_FAILURE, FALSE },
	{ IMTA_NOTICE_DELAY, IMTA_NOTIFY_FAILURE | IMTA_NOTIFY_DELAY, TRUE },
	/* NEVER wins over anything it came with (a malformed file). */
	{ IMTA_NOTICE_FAILURE, IMTA_NOTIFY_NEVER | IMTA_NOTIFY_FAILURE, FALSE },
};

static void
test_rules_wanted(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(wanted_rows); i++) {
		g_test_message("row %u", i);
		g_assert_cmpint(imta_notice_wanted(wanted_rows[i].kind, wanted_rows[i].notify), ==,
				wanted_rows[i].wanted);
	}
}

static const struct {
	ImtaNoticeKind kind;
	ImtaPostCopy mode;
	const char *return_path;
	gboolean copy;
} postmaster_rows[] = {
	/* No keyword: failures are copied, warnings are not. */
	{ IMTA_NOTICE_FAILURE, IMTA_POST_DEFAULT, "ann@sender.example", TRUE },
	{ IMTA_NOTICE_DELAY, IMTA_POST_DEFAULT, "ann@sender.example", FALSE },
	{ IMTA_NOTICE_FAILURE, IMTA_POST_ALWAYS, "ann@sender.example", TRUE },
	{ IMTA_NOTICE_DELAY, IMTA_POST_ALWAYS, "ann@sender.example", TRUE },
	{ IMTA_NOTICE_FAILURE, IMTA_POST_COPY, "ann@sender.example", TRUE },
	{ IMTA_NOTICE_DELAY, IMTA_POST_COPY, "ann@sender.example", TRUE },
	/* err*: only when the notice itself fails, which is not done. */
	{ IMTA_NOTICE_FAILURE, IMTA_POST_ERR, "ann@sender.example", FALSE },
	{ IMTA_NOTICE_DELAY, IMTA_POST_ERR, "ann@sender.example", FALSE },
	{ IMTA_NOTICE_FAILURE, IMTA_POST_NEVER, "ann@sender.example", FALSE },
	{ IMTA_NOTICE_DELAY, IMTA_POST_NEVER, "ann@sender.example", FALSE },
	/* An empty return path: no notice, so no copy, whatever the mode. */
	{ IMTA_NOTICE_FAILURE, IMTA_POST_ALWAYS, "", FALSE },
	{ IMTA_NOTICE_FAILURE, IMTA_POST_COPY, "", FALSE },
	{ IMTA_NOTICE_FAILURE, IMTA_POST_DEFAULT, "", FALSE },
	{ IMTA_NOTICE_FAILURE, IMTA_POST_ALWAYS, NULL, FALSE },
	/* Success notices are the sender's business alone. */
	{ IMTA_NOTICE_SUCCESS, IMTA_POST_ALWAYS, "ann@sender.example", FALSE },
	{ IMTA_NOTICE_SUCCESS, IMTA_POST_DEFAULT, "ann@sender.example", FALSE },
};

static void
test_rules_postmaster(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(postmaster_rows); i++) {
		g_test_message("row %u", i);
		g_assert_cmpint(imta_notice_postmaster_copy(postmaster_rows[i].kind,
							    postmaster_rows[i].mode,
							    postmaster_rows[i].return_path),
				==, postmaster_rows[i].copy);
	}
}

static const char test_cnf[] =
	"sender.example      $U%$D@parked-daemon\n"
	"test.example        $U%$D@test-daemon\n"
	"nowhere.example     $?no-route-to-this-domain\n"
	"\n"
	"l\n"
	"mail.example.com\n"
	"\n"
	"test\n"
	"test-daemon\n"
	"\n"
	"test_copy copysendpost copywarnpost\n"
	"test_copy-daemon\n"
	"\n"
	"test_always sendpost warnpost\n"
	"test_always-daemon\n"
	"\n"
	"test_err errsendpost errwarnpost\n"
	"test_err-daemon\n"
	"\n"
	"test_never nosendpost nowarnpost\n"
	"test_never-daemon\n"
	"\n"
	"test_return returnaddress bounces@mail.example.com\n"
	"test_return-daemon\n"
	"\n"
	"relay mx\n"
	"relay-daemon\n"
	"\n"
	"smarthost daemon smtp.example.net\n"
	"smarthost-daemon\n"
	"\n"
	"lookups defaultmx\n"
	"lookups-daemon\n"
	"\n"
	"parked\n"
	"parked-daemon\n";

static ImtaCnf *
load_test_cnf(void)
{
	g_autoptr(GError) error = NULL;
	ImtaCnf *cnf = imta_cnf_parse_text("imta.cnf", test_cnf, strlen(test_cnf), NULL, &error);

	g_assert_no_error(error);
	g_assert_nonnull(cnf);
	return cnf;
}

static void
test_rules_success_action(void)
{
	g_autoptr(ImtaCnf) cnf = load_test_cnf();

	g_assert_cmpint(imta_notice_success_action(imta_cnf_channel_by_name(cnf, "test")), ==,
			IMTA_NOTICE_ACTION_DELIVERED);
	g_assert_cmpint(imta_notice_success_action(imta_cnf_channel_by_name(cnf, "relay")), ==,
			IMTA_NOTICE_ACTION_RELAYED);
	g_assert_cmpint(imta_notice_success_action(imta_cnf_channel_by_name(cnf, "smarthost")),
			==, IMTA_NOTICE_ACTION_RELAYED);
	g_assert_cmpint(imta_notice_success_action(imta_cnf_channel_by_name(cnf, "lookups")), ==,
			IMTA_NOTICE_ACTION_RELAYED);
	g_assert_cmpint(imta_notice_success_action(imta_cnf_channel_by_name(cnf, "parked")), ==,
			IMTA_NOTICE_ACTION_DELIVERED);
	g_assert_cmpint(imta_notice_success_action(NULL), ==, IMTA_NOTICE_ACTION_DELIVERED);
	g_assert_cmpstr(imta_notice_kind_name(IMTA_NOTICE_FAILURE), ==, "failure notice");
	g_assert_cmpstr(imta_notice_kind_name(IMTA_NOTICE_DELAY), ==, "delay warning");
	g_assert_cmpstr(imta_notice_kind_name(IMTA_NOTICE_SUCCESS), ==, "success notice");
}

/* ---- diagnostics ------------------------------------------------------------ */

static const struct {
	const char *diagnostic;
	ImtaNoticeAction action;
	const char *status, *remote, *type, *text;
} diag_rows[] = {
	/* A local reason with an enhanced code. */
	{ "5.1.1 refused by the test channel", IMTA_NOTICE_ACTION_FAILED, "5.1.1", NULL,
	  "X-IMTA", "5.1.1 refused by the test channel" },
	/* An SMTP reply, with and without an enhanced code. */
	{ "550 5.1.1 <bob@example.net>: no such user", IMTA_NOTICE_ACTION_FAILED, "5.1.1", NULL,
	  "smtp", "550 5.1.1 <bob@example.net>: no such user" },
	{ "554 transaction failed", IMTA_NOTICE_ACTION_FAILED, "5.0.0", NULL, "smtp",
	  "554 transaction failed" },
	{ "550-5.7.1 first line\n550 5.7.1 second line", IMTA_NOTICE_ACTION_FAILED, "5.7.1", NULL,
	  "smtp", "550-5.7.1 first line 550 5.7.1 second line" },
	{ "550", IMTA_NOTICE_ACTION_FAILED, "5.0.0", NULL, "smtp", "550" },
	/* The enhanced code must be of the reply's class. */
	{ "550 4.2.2 mailbox full", IMTA_NOTICE_ACTION_FAILED, "5.0.0", NULL, "smtp",
	  "550 4.2.2 mailbox full" },
	/* Named remote servers. */
	{ "remote mx.example.net [192.0.2.25] said: 550 5.1.1 no such mailbox",
	  IMTA_NOTICE_ACTION_FAILED, "5.1.1", "mx.example.net", "smtp",
	  "550 5.1.1 no such mailbox" },
	{ "remote mx.example.net said: 452 4.2.2 over quota", IMTA_NOTICE_ACTION_DELAYED,
	  "4.2.2", "mx.example.net", "smtp", "452 4.2.2 over quota" },
	{ "remote [192.0.2.25] said: 421 closing", IMTA_NOTICE_ACTION_DELAYED, "4.0.0",
	  "[192.0.2.25]", "smtp", "421 closing" },
	/* Not the remote form: "said:" missing, a bad name. */
	{ "remote mx.example.net: 550 no", IMTA_NOTICE_ACTION_FAILED, "5.0.0", NULL, "X-IMTA",
	  "remote mx.example.net: 550 no" },
	{ "remote m/x said: 550 no", IMTA_NOTICE_ACTION_FAILED, "5.0.0", NULL, "X-IMTA",
	  "remote m/x said: 550 no" },
	/* Expiry: the final reason's code wins, the last error gives the rest. */
	{ "4.4.7 message expired; last error: remote mx.example.net said: 451 4.3.0 try later",
	  IMTA_NOTICE_ACTION_FAILED, "4.4.7", "mx.example.net", "smtp", "451 4.3.0 try later" },
	{ "4.4.7 message expired; last error: 4.2.0 deferred", IMTA_NOTICE_ACTION_FAILED,
	  "4.4.7", NULL, "X-IMTA", "4.4.7 message expired; last error: 4.2.0 deferred" },
	{ "4.4.7 message expired", IMTA_NOTICE_ACTION_FAILED, "4.4.7", NULL, "X-IMTA",
	  "4.4.7 message expired" },
	/* No code: the action's default. */
	{ "mailbox is full", IMTA_NOTICE_ACTION_FAILED, "5.0.0", NULL, "X-IMTA",
	  "mailbox is full" },
	{ "no answer", IMTA_NOTICE_ACTION_DELAYED, "4.0.0", NULL, "X-IMTA", "no answer" },
	{ "2.0.0 ok", IMTA_NOTICE_ACTION_DELIVERED, "2.0.0", NULL, "X-IMTA", "2.0.0 ok" },
	{ "250 2.6.0 queued as 4711", IMTA_NOTICE_ACTION_RELAYED, "2.6.0", NULL, "smtp",
	  "250 2.6.0 queued as 4711" },
	/* A code that does not fit the action is not used. */
	{ "5.1.1 nope", IMTA_NOTICE_ACTION_DELAYED, "4.0.0", NULL, "X-IMTA", "5.1.1 nope" },
	{ "2.0.0 ok", IMTA_NOTICE_ACTION_FAILED, "5.0.0", NULL, "X-IMTA", "2.0.0 ok" },
	/* Malformed codes are text. */
	{ "5.1 short", IMTA_NOTICE_ACTION_FAILED, "5.0.0", NULL, "X-IMTA", "5.1 short" },
	{ "5.1.1234 long", IMTA_NOTICE_ACTION_FAILED, "5.0.0", NULL, "X-IMTA", "5.1.1234 long" },
	{ "5.1.1: colon", IMTA_NOTICE_ACTION_FAILED, "5.0.0", NULL, "X-IMTA", "5.1.1: colon" },
	{ "3.1.1 class", IMTA_NOTICE_ACTION_FAILED, "5.0.0", NULL, "X-IMTA", "3.1.1 class" },
	{ "5501 five digits", IMTA_NOTICE_ACTION_FAILED, "5.0.0", NULL, "X-IMTA",
	  "5501 five digits" },
	/* Control characters, 8-bit bytes, blanks. */
	{ "  550\r\n5.1.1\tno\x01such \xc3\xa9 user  ", IMTA_NOTICE_ACTION_FAILED, "5.1.1", NULL,
	  "smtp", "550 5.1.1 no such ?? user" },
	/* None at all. */
	{ NULL, IMTA_NOTICE_ACTION_FAILED, "5.0.0", NULL, NULL, NULL },
	{ " \t\n", IMTA_NOTICE_ACTION_DELAYED, "4.0.0", NULL, NULL, NULL },
	{ "", IMTA_NOTICE_ACTION_DELIVERED, "2.0.0", NULL, NULL, NULL },
};

static void
test_diagnostic_parse(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(diag_rows); i++) {
		g_auto(ImtaNoticeDiagnostic) diag = { 0 };

		g_test_message("row %u: %s", i, diag_rows[i].diagnostic);
		imta_notice_parse_diagnostic(diag_rows[i].diagnostic, diag_rows[i].action, &diag);
		g_assert_cmpstr(diag.status, ==, diag_rows[i].status);
		g_assert_cmpstr(diag.remote_mta, ==, diag_rows[i].remote);
		g_assert_cmpstr(diag.type, ==, diag_rows[i].type);
		g_assert_cmpstr(diag.text, ==, diag_rows[i].text);
	}
}

static const struct {
	gint64 when;
	const char *text;
} date_rows[] = {
	{ 0, "Thu, 1 Jan 1970 00:00:00 +0000" },
	{ T_NOW, "Tue, 14 Nov 2023 22:13:20 +0000" },
	{ 951782400, "Tue, 29 Feb 2000 00:00:00 +0000" },
	{ 1735689599, "Tue, 31 Dec 2024 23:59:59 +0000" },
	{ 1719792000, "Mon, 1 Jul 2024 00:00:00 +0000" },
	{ 1720310400, "Sun, 7 Jul 2024 00:00:00 +0000" },
	{ 1714953600, "Mon, 6 May 2024 00:00:00 +0000" },
	{ 1712102400, "Wed, 3 Apr 2024 00:00:00 +0000" },
	{ 1709856000, "Fri, 8 Mar 2024 00:00:00 +0000" },
	{ 1709942400, "Sat, 9 Mar 2024 00:00:00 +0000" },
	{ 1725148800, "Sun, 1 Sep 2024 00:00:00 +0000" },
	{ 1728000000, "Fri, 4 Oct 2024 00:00:00 +0000" },
	{ 1738368000, "Sat, 1 Feb 2025 00:00:00 +0000" },
	{ 1737936000, "Mon, 27 Jan 2025 00:00:00 +0000" },
	{ 1718236800, "Thu, 13 Jun 2024 00:00:00 +0000" },
	{ 1723593600, "Wed, 14 Aug 2024 00:00:00 +0000" },
};

static void
test_date(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(date_rows); i++) {
		g_autofree char *text = imta_notice_format_date(date_rows[i].when);

		g_test_message("row %u", i);
		g_assert_cmpstr(text, ==, date_rows[i].text);
	}
}

/* ---- reports ------------------------------------------------------------------ */

static const char original_text[] =
	"From: Ann <ann@sender.example>\n"
	"To: Bob <bob@example.net>\n"
	"Subject: lunch\n"
	"\n"
	"Shall we meet at noon?\n";

static const ImtaNoticeRecipient bob_failed = {
	"bob@example.net", NULL, IMTA_NOTICE_ACTION_FAILED, NULL, T_NOW
};

static gboolean
string_sink(gpointer data, const void *bytes, gsize length, GError **error)
{
	g_string_append_len(data, bytes, (gssize)length);
	return TRUE;
}

static ImtaMessage *
original_new(const char *text, gssize length)
{
	ImtaMessage *msg = imta_message_new("0SJX2K5A1B3C9FQW", "ann@sender.example");
	g_autoptr(GBytes) bytes = g_bytes_new(text, length < 0 ? strlen(text) : (gsize)length);

	imta_message_set_content_bytes(msg, bytes);
	return msg;
}

static ImtaNoticeReport
report_base(ImtaNoticeKind kind, const ImtaNoticeRecipient *rcpts, guint n)
{
	return (ImtaNoticeReport){
		.kind = kind,
		.reporting_mta = "mail.example.com",
		.from_address = "postmaster@mail.example.com",
		.from_personal = "Mail Delivery System",
		.to = "ann@sender.example",
		.queue_id = "0SJX2K5A1B3C9FQW",
		.ret = IMTA_RET_DEFAULT,
		.arrival = T_ARRIVAL,
		.date = T_NOW,
		.message_id = MSGID,
		.boundary = BOUNDARY,
		.rcpts = rcpts,
		.n_rcpts = n,
	};
}

static char *
report_text(const ImtaNoticeReport *report, const ImtaMessage *original)
{
	g_autoptr(GError) error = NULL;
	GString *out = g_string_new(NULL);

	g_assert_true(imta_notice_report_write(report, original, string_sink, out, &error));
	g_assert_no_error(error);
	return g_string_free(out, FALSE);
}

/* Every line ends with LF and holds at most `max` octets. */
static void
assert_lines_at_most(const char *text, gsize max)
{
	const char *p = text;

	g_assert_true(g_str_has_suffix(text, "\n"));
	while (*p != '\0') {
		const char *nl = strchr(p, '\n');

		g_assert_nonnull(nl);
		if ((gsize)(nl - p) > max)
			g_error("line longer than %" G_GSIZE_FORMAT ": %.60s...", max, p);
		g_assert_null(memchr(p, '\r', (gsize)(nl - p)));
		p = nl + 1;
	}
}

static void
assert_report(const ImtaNoticeReport *report, const ImtaMessage *original, const char *expected)
{
	g_autofree char *text = report_text(report, original);

	g_assert_cmpstr(text, ==, expected);
	assert_lines_at_most(text, 998);
}

/* The exact reports for the fixed inputs below. */
static const char expected_failure[] =
	"From: Mail Delivery System <postmaster@mail.example.com>\n"
	"To: <ann@sender.example>\n"
	"Subject: Delivery failure: your message was returned\n"
	"Date: Tue, 14 Nov 2023 22:13:20 +0000\n"
	"Message-ID: " MSGID "\n"
	"Auto-Submitted: auto-replied\n"
	"MIME-Version: 1.0\n"
	"Content-Type: multipart/report; report-type=delivery-status;\n"
	" boundary=\"" BOUNDARY "\"\n"
	"\n"
	"This is a delivery status notification in MIME format.\n"
	"\n"
	"--" BOUNDARY "\n"
	"Content-Type: text/plain; charset=us-ascii\n"
	"Content-Description: Notification\n"
	"\n"
	"This is the mail system at mail.example.com.\n"
	"\n"
	"Your message could not be delivered to the 2 recipients below. Delivery\n"
	"failed for good, and no further attempt will be made.\n"
	"\n"
	"<fail1@test.example>\n"
	"    failed: 5.1.1 refused by the test channel\n"
	"\n"
	"<bob@example.net>\n"
	"    failed: remote mx.example.net [192.0.2.25] said: 550 5.1.1\n"
	"    <bob@example.net>: no such mailbox here, and this reply goes on for long\n"
	"    enough to need folding\n"
	"\n"
	"Your message is attached below.\n"
	"\n"
	"--" BOUNDARY "\n"
	"Content-Type: message/delivery-status\n"
	"Content-Description: Delivery report\n"
	"\n"
	"Reporting-MTA: dns; mail.example.com\n"
	"Arrival-Date: Tue, 14 Nov 2023 19:26:40 +0000\n"
	"X-IMTA-Queue-ID: 0SJX2K5A1B3C9FQW\n"
	"\n"
	"Original-Recipient: rfc822;fail1@test.example\n"
	"Final-Recipient: rfc822; fail1@test.example\n"
	"Action: failed\n"
	"Status: 5.1.1\n"
	"Diagnostic-Code: X-IMTA; 5.1.1 refused by the test channel\n"
	"Last-Attempt-Date: Tue, 14 Nov 2023 22:13:20 +0000\n"
	"\n"
	"Final-Recipient: rfc822; bob@example.net\n"
	"Action: failed\n"
	"Status: 5.1.1\n"
	"Remote-MTA: dns; mx.example.net\n"
	"Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: no such mailbox here, and\n"
	" this reply goes on for long enough to need folding\n"
	"Last-Attempt-Date: Tue, 14 Nov 2023 22:13:20 +0000\n"
	"\n"
	"--" BOUNDARY "\n"
	"Content-Type: message/rfc822\n"
	"Content-Description: Undelivered message\n"
	"\n"
	"From: Ann <ann@sender.example>\n"
	"To: Bob <bob@example.net>\n"
	"Subject: lunch\n"
	"\n"
	"Shall we meet at noon?\n"
	"\n"
	"--" BOUNDARY "--\n";

static const char expected_hdrs[] =
	"From: <postmaster@mail.example.com>\n"
	"To: <ann@sender.example>\n"
	"Subject: Delivery failure: your message was returned\n"
	"Date: Tue, 14 Nov 2023 22:13:20 +0000\n"
	"Message-ID: " MSGID "\n"
	"Auto-Submitted: auto-replied\n"
	"MIME-Version: 1.0\n"
	"Content-Type: multipart/report; report-type=delivery-status;\n"
	" boundary=\"" BOUNDARY "\"\n"
	"\n"
	"This is a delivery status notification in MIME format.\n"
	"\n"
	"--" BOUNDARY "\n"
	"Content-Type: text/plain; charset=us-ascii\n"
	"Content-Description: Notification\n"
	"\n"
	"This is the mail system at mail.example.com.\n"
	"\n"
	"Your message could not be delivered to the 3 recipients below. Delivery\n"
	"failed for good, and no further attempt will be made.\n"
	"\n"
	"<bob@internal.example> (originally <Bob.Smith@example.com>)\n"
	"    failed: 550 5.1.1 user unknown\n"
	"\n"
	"<carol@example.com>\n"
	"    failed: 5.2.2 mailbox full\n"
	"\n"
	"<dave@example.com> (originally dave)\n"
	"    failed\n"
	"\n"
	"Only the header of your message is attached below, as you asked.\n"
	"\n"
	"--" BOUNDARY "\n"
	"Content-Type: message/delivery-status\n"
	"Content-Description: Delivery report\n"
	"\n"
	"Original-Envelope-Id: QQ314159\n"
	"Reporting-MTA: dns; mail.example.com\n"
	"Arrival-Date: Tue, 14 Nov 2023 19:26:40 +0000\n"
	"X-IMTA-Queue-ID: 0SJX2K5A1B3C9FQW\n"
	"\n"
	"Original-Recipient: rfc822;Bob.Smith@example.com\n"
	"Final-Recipient: rfc822; bob@internal.example\n"
	"Action: failed\n"
	"Status: 5.1.1\n"
	"Diagnostic-Code: smtp; 550 5.1.1 user unknown\n"
	"Last-Attempt-Date: Tue, 14 Nov 2023 22:13:20 +0000\n"
	"\n"
	"Original-Recipient: rfc822;CAROL@example.com\n"
	"Final-Recipient: rfc822; carol@example.com\n"
	"Action: failed\n"
	"Status: 5.2.2\n"
	"Diagnostic-Code: X-IMTA; 5.2.2 mailbox full\n"
	"Last-Attempt-Date: Tue, 14 Nov 2023 22:13:20 +0000\n"
	"\n"
	"Original-Recipient: x-local;dave\n"
	"Final-Recipient: rfc822; dave@example.com\n"
	"Action: failed\n"
	"Status: 5.0.0\n"
	"Last-Attempt-Date: Tue, 14 Nov 2023 22:13:20 +0000\n"
	"\n"
	"--" BOUNDARY "\n"
	"Content-Type: text/rfc822-headers\n"
	"Content-Description: Undelivered message header\n"
	"\n"
	"From: Ann <ann@sender.example>\n"
	"To: Bob <bob@example.net>\n"
	"Subject: lunch\n"
	"\n"
	"--" BOUNDARY "--\n";

static const char expected_delay[] =
	"From: Mail Delivery System <postmaster@mail.example.com>\n"
	"To: <ann@sender.example>\n"
	"Subject: Delivery delayed: your message is still queued\n"
	"Date: Tue, 14 Nov 2023 22:13:20 +0000\n"
	"Message-ID: " MSGID "\n"
	"Auto-Submitted: auto-replied\n"
	"MIME-Version: 1.0\n"
	"Content-Type: multipart/report; report-type=delivery-status;\n"
	" boundary=\"" BOUNDARY "\"\n"
	"\n"
	"This is a delivery status notification in MIME format.\n"
	"\n"
	"--" BOUNDARY "\n"
	"Content-Type: text/plain; charset=us-ascii\n"
	"Content-Description: Notification\n"
	"\n"
	"This is the mail system at mail.example.com.\n"
	"\n"
	"Your message has not yet been delivered to the recipient below. The mail\n"
	"system will keep trying until Sat, 18 Nov 2023 22:13:20 +0000, so you do not\n"
	"need to send it again. If it still cannot be delivered by then, it will be\n"
	"returned to you.\n"
	"\n"
	"<bob@example.net>\n"
	"    delayed: remote mx.example.net said: 451 4.3.0 try again later\n"
	"\n"
	"The header of your message is attached below.\n"
	"\n"
	"--" BOUNDARY "\n"
	"Content-Type: message/delivery-status\n"
	"Content-Description: Delivery report\n"
	"\n"
	"Original-Envelope-Id: QQ314159\n"
	"Reporting-MTA: dns; mail.example.com\n"
	"Arrival-Date: Tue, 14 Nov 2023 19:26:40 +0000\n"
	"X-IMTA-Queue-ID: 0SJX2K5A1B3C9FQW\n"
	"\n"
	"Original-Recipient: rfc822;bob@example.net\n"
	"Final-Recipient: rfc822; bob@example.net\n"
	"Action: delayed\n"
	"Status: 4.3.0\n"
	"Remote-MTA: dns; mx.example.net\n"
	"Diagnostic-Code: smtp; 451 4.3.0 try again later\n"
	"Last-Attempt-Date: Tue, 14 Nov 2023 22:13:20 +0000\n"
	"Will-Retry-Until: Sat, 18 Nov 2023 22:13:20 +0000\n"
	"\n"
	"--" BOUNDARY "\n"
	"Content-Type: text/rfc822-headers\n"
	"Content-Description: Delayed message header\n"
	"\n"
	"From: Ann <ann@sender.example>\n"
	"To: Bob <bob@example.net>\n"
	"Subject: lunch\n"
	"\n"
	"--" BOUNDARY "--\n";

static const char expected_success[] =
	"From: \"Postmaster, Example Inc.\" <postmaster@mail.example.com>\n"
	"To: <ann@sender.example>\n"
	"Subject: Delivery report: your message was delivered\n"
	"Date: Tue, 14 Nov 2023 22:13:20 +0000\n"
	"Message-ID: " MSGID "\n"
	"Auto-Submitted: auto-replied\n"
	"MIME-Version: 1.0\n"
	"Content-Type: multipart/report; report-type=delivery-status;\n"
	" boundary=\"" BOUNDARY "\"\n"
	"\n"
	"This is a delivery status notification in MIME format.\n"
	"\n"
	"--" BOUNDARY "\n"
	"Content-Type: text/plain; charset=us-ascii\n"
	"Content-Description: Notification\n"
	"\n"
	"This is the mail system at mail.example.com.\n"
	"\n"
	"Your message was delivered to the 2 recipients below, as you asked to be\n"
	"told. A recipient marked \"relayed\" was handed on to another mail system,\n"
	"which may not report its final delivery.\n"
	"\n"
	"<bob@example.com>\n"
	"    delivered: 2.0.0 delivered\n"
	"\n"
	"<carol@example.net>\n"
	"    relayed: remote mx.example.net said: 250 2.0.0 queued as 4711\n"
	"\n"
	"Your message is attached below.\n"
	"\n"
	"--" BOUNDARY "\n"
	"Content-Type: message/delivery-status\n"
	"Content-Description: Delivery report\n"
	"\n"
	"Reporting-MTA: dns; mail.example.com\n"
	"Arrival-Date: Tue, 14 Nov 2023 19:26:40 +0000\n"
	"X-IMTA-Queue-ID: 0SJX2K5A1B3C9FQW\n"
	"\n"
	"Final-Recipient: rfc822; bob@example.com\n"
	"Action: delivered\n"
	"Status: 2.0.0\n"
	"Diagnostic-Code: X-IMTA; 2.0.0 delivered\n"
	"Last-Attempt-Date: Tue, 14 Nov 2023 22:13:20 +0000\n"
	"\n"
	"Final-Recipient: rfc822; carol@example.net\n"
	"Action: relayed\n"
	"Status: 2.0.0\n"
	"Remote-MTA: dns; mx.example.net\n"
	"Diagnostic-Code: smtp; 250 2.0.0 queued as 4711\n"
	"Last-Attempt-Date: Tue, 14 Nov 2023 22:13:20 +0000\n"
	"\n"
	"--" BOUNDARY "\n"
	"Content-Type: message/rfc822\n"
	"Content-Description: Delivered message\n"
	"\n"
	"From: Ann <ann@sender.example>\n"
	"To: Bob <bob@example.net>\n"
	"Subject: lunch\n"
	"\n"
	"Shall we meet at noon?\n"
	"\n"
	"--" BOUNDARY "--\n";

static void
test_report_failure(void)
{
	static const ImtaNoticeRecipient rcpts[] = {
		{ "fail1@test.example", "rfc822;fail1@test.example", IMTA_NOTICE_ACTION_FAILED,
		  "5.1.1 refused by the test channel", T_NOW },
		{ "bob@example.net", NULL, IMTA_NOTICE_ACTION_FAILED,
		  "remote mx.example.net [192.0.2.25] said: 550 5.1.1 <bob@example.net>: no such "
		  "mailbox here, and this reply goes on for long enough to need folding", T_NOW },
	};
	g_autoptr(ImtaMessage) original = original_new(original_text, -1);
	ImtaNoticeReport report = report_base(IMTA_NOTICE_FAILURE, rcpts, G_N_ELEMENTS(rcpts));

	assert_report(&report, original, expected_failure);
}

static void
test_report_hdrs(void)
{
	static const ImtaNoticeRecipient rcpts[] = {
		{ "bob@internal.example", "rfc822;Bob.Smith@example.com",
		  IMTA_NOTICE_ACTION_FAILED, "550 5.1.1 user unknown", T_NOW },
		{ "carol@example.com", "rfc822;CAROL@example.com", IMTA_NOTICE_ACTION_FAILED,
		  "5.2.2 mailbox full", T_NOW },
		{ "dave@example.com", "x-local;dave", IMTA_NOTICE_ACTION_FAILED, NULL, T_NOW },
	};
	g_autoptr(ImtaMessage) original = original_new(original_text, -1);
	ImtaNoticeReport report = report_base(IMTA_NOTICE_FAILURE, rcpts, G_N_ELEMENTS(rcpts));

	report.ret = IMTA_RET_HDRS;
	report.envid = "QQ314159";
	report.from_personal = NULL;
	assert_report(&report, original, expected_hdrs);
}

static void
test_report_delay(void)
{
	static const ImtaNoticeRecipient rcpts[] = {
		{ "bob@example.net", "rfc822;bob@example.net", IMTA_NOTICE_ACTION_DELAYED,
		  "remote mx.example.net said: 451 4.3.0 try again later", T_NOW },
	};
	g_autoptr(ImtaMessage) original = original_new(original_text, -1);
	ImtaNoticeReport report = report_base(IMTA_NOTICE_DELAY, rcpts, G_N_ELEMENTS(rcpts));

	report.retry_until = T_UNTIL;
	report.envid = "QQ314159";
	assert_report(&report, original, expected_delay);
}

static void
test_report_success(void)
{
	static const ImtaNoticeRecipient rcpts[] = {
		{ "bob@example.com", NULL, IMTA_NOTICE_ACTION_DELIVERED, "2.0.0 delivered", T_NOW },
		{ "carol@example.net", NULL, IMTA_NOTICE_ACTION_RELAYED,
		  "remote mx.example.net said: 250 2.0.0 queued as 4711", T_NOW },
	};
	g_autoptr(ImtaMessage) original = original_new(original_text, -1);
	ImtaNoticeReport report = report_base(IMTA_NOTICE_SUCCESS, rcpts, G_N_ELEMENTS(rcpts));

	report.ret = IMTA_RET_FULL;
	report.from_personal = "Postmaster, Example Inc.";
	assert_report(&report, original, expected_success);
}

/* ---- what is returned of the original ------------------------------------- */

/* The part that carries the original: from its Content-Type to the end. */
static const char *
returned_part(const char *text)
{
	const char *part = strstr(text, "Content-Type: message/rfc822\n");

	return part != NULL ? part : strstr(text, "Content-Type: text/rfc822-headers\n");
}

static const struct {
	const char *name;
	ImtaNoticeKind kind;
	ImtaRet ret;
	goffset limit;
	const char *part;       /* the returned part, from its Content-Type */
	const char *note;       /* what the text part says about it */
} return_rows[] = {
	{ "failure: the whole message", IMTA_NOTICE_FAILURE, IMTA_RET_DEFAULT, 0,
	  "Content-Type: message/rfc822\nContent-Description: Undelivered message\n\n"
	  "From: Ann <ann@sender.example>\nTo: Bob <bob@example.net>\nSubject: lunch\n\n"
	  "Shall we meet at noon?\n\n--" BOUNDARY "--\n",
	  "\nYour message is attached below.\n" },
	{ "failure, RET=FULL", IMTA_NOTICE_FAILURE, IMTA_RET_FULL, 0,
	  "Content-Type: message/rfc822\n", "\nYour message is attached below.\n" },
	{ "failure, RET=HDRS", IMTA_NOTICE_FAILURE, IMTA_RET_HDRS, 0,
	  "Content-Type: text/rfc822-headers\nContent-Description: Undelivered message header\n\n"
	  "From: Ann <ann@sender.example>\nTo: Bob <bob@example.net>\nSubject: lunch\n\n--"
	  BOUNDARY "--\n",
	  "\nOnly the header of your message is attached below, as you asked.\n" },
	{ "failure, exactly at the limit", IMTA_NOTICE_FAILURE, IMTA_RET_DEFAULT, 96,
	  "Content-Type: message/rfc822\n", "\nYour message is attached below.\n" },
	{ "failure, above the limit", IMTA_NOTICE_FAILURE, IMTA_RET_DEFAULT, 95,
	  "Content-Type: text/rfc822-headers\n",
	  "\nOnly the header of your message is attached below: the whole message is\n"
	  "larger than the 95 bytes returned at most.\n" },
	{ "failure, RET=FULL above the limit", IMTA_NOTICE_FAILURE, IMTA_RET_FULL, 50,
	  "Content-Type: text/rfc822-headers\n", "larger than the 50 bytes returned at most.\n" },
	{ "delay: the header", IMTA_NOTICE_DELAY, IMTA_RET_DEFAULT, 0,
	  "Content-Type: text/rfc822-headers\nContent-Description: Delayed message header\n",
	  "\nThe header of your message is attached below.\n" },
	{ "delay, RET=FULL", IMTA_NOTICE_DELAY, IMTA_RET_FULL, 0,
	  "Content-Type: message/rfc822\nContent-Description: Delayed message\n",
	  "\nYour message is attached below.\n" },
	{ "success: the header", IMTA_NOTICE_SUCCESS, IMTA_RET_DEFAULT, 0,
	  "Content-Type: text/rfc822-headers\nContent-Description: Delivered message header\n",
	  "\nThe header of your message is attached below.\n" },
	{ "success, RET=HDRS", IMTA_NOTICE_SUCCESS, IMTA_RET_HDRS, 0,
	  "Content-Type: text/rfc822-headers\n", "attached below, as you asked.\n" },
};

static void
test_report_returned(void)
{
	g_autoptr(ImtaMessage) original = original_new(original_text, -1);

	g_assert_cmpint(imta_message_size(original), ==, 96);
	for (guint i = 0; i < G_N_ELEMENTS(return_rows); i++) {
		ImtaNoticeRecipient r = bob_failed;
		ImtaNoticeReport report = report_base(return_rows[i].kind, &r, 1);
		g_autofree char *text = NULL;

		g_test_message("row %s", return_rows[i].name);
		r.action = return_rows[i].kind == IMTA_NOTICE_FAILURE ? IMTA_NOTICE_ACTION_FAILED
			   : return_rows[i].kind == IMTA_NOTICE_DELAY ? IMTA_NOTICE_ACTION_DELAYED
								       : IMTA_NOTICE_ACTION_DELIVERED;
		report.ret = return_rows[i].ret;
		report.content_limit = return_rows[i].limit;
		text = report_text(&report, original);
		g_assert_true(g_str_has_prefix(returned_part(text), return_rows[i].part));
		g_assert_nonnull(strstr(text, return_rows[i].note));
		g_assert_null(strstr(text, "Content-Transfer-Encoding"));
	}
}

/* Lines a message cannot carry: only the header returns, itself folded
 * where a line is too long; NUL bytes become spaces. */
static void
test_report_long_lines(void)
{
	ImtaNoticeReport report = report_base(IMTA_NOTICE_FAILURE, &bob_failed, 1);
	g_autoptr(GString) content = g_string_new("Subject: x\nX-Long: ");
	g_autoptr(ImtaMessage) with_long_body = NULL;
	g_autoptr(ImtaMessage) with_nul = NULL;
	g_autoptr(ImtaMessage) fits = NULL;
	g_autofree char *text = NULL;
	g_autofree char *expected = NULL;
	const char *part;

	for (guint i = 0; i < 2500; i++)
		g_string_append_c(content, (char)('a' + i % 26));
	g_string_append(content, "\n\nbody\n");
	for (guint i = 0; i < 1200; i++)
		g_string_append_c(content, 'b');
	g_string_append_c(content, '\n');
	with_long_body = original_new(content->str, (gssize)content->len);
	text = report_text(&report, with_long_body);
	assert_lines_at_most(text, 998);
	part = returned_part(text);
	g_assert_true(g_str_has_prefix(part, "Content-Type: text/rfc822-headers\n"));
	g_assert_nonnull(strstr(text, "\nOnly the header of your message is attached below: its "
				      "body has lines longer\nthan 998 octets or NUL bytes, "
				      "which a message cannot carry.\n"));
	/* The 2508-octet header line is cut into 998 + 997 + 513, continued
	 * by a blank each time. */
	expected = g_strdup_printf("Subject: x\n%.*s\n %.*s\n %.*s\n\n--" BOUNDARY "--\n", 998,
				   content->str + 11, 997, content->str + 11 + 998, 513,
				   content->str + 11 + 998 + 997);
	g_assert_nonnull(strstr(part, expected));
	g_assert_null(strstr(text, "bbbb"));

	/* A NUL in the body: headers only too; one in the header: a space. */
	g_clear_pointer(&text, g_free);
	with_nul = original_new("Subject: a\0b\n\nbody\0here\n", 24);
	text = report_text(&report, with_nul);
	g_assert_nonnull(strstr(returned_part(text), "\n\nSubject: a b\n\n--" BOUNDARY "--\n"));

	/* A line of exactly 998 octets is fine. */
	g_clear_pointer(&text, g_free);
	g_string_assign(content, "Subject: y\n\n");
	for (guint i = 0; i < 998; i++)
		g_string_append_c(content, 'c');
	g_string_append(content, "\nno newline at the end");
	fits = original_new(content->str, (gssize)content->len);
	text = report_text(&report, fits);
	part = returned_part(text);
	g_assert_true(g_str_has_prefix(part, "Content-Type: message/rfc822\n"));
	g_assert_true(g_str_has_suffix(part, "\nno newline at the end\n\n--" BOUNDARY "--\n"));
	assert_lines_at_most(text, 998);
}

/* 8-bit content is declared, on the returned part and on the whole. */
static void
test_report_eight_bit(void)
{
	ImtaNoticeReport report = report_base(IMTA_NOTICE_FAILURE, &bob_failed, 1);
	g_autoptr(ImtaMessage) in_body = original_new("Subject: x\n\ncaf\xc3\xa9\n", -1);
	g_autoptr(ImtaMessage) in_header = original_new("Subject: caf\xc3\xa9\n\nbody\n", -1);
	g_autofree char *text = report_text(&report, in_body);
	g_autofree char *hdrs = NULL;

	g_assert_nonnull(strstr(text, "boundary=\"" BOUNDARY "\"\n"
				      "Content-Transfer-Encoding: 8bit\n\n"));
	g_assert_nonnull(strstr(text, "Content-Type: message/rfc822\n"
				      "Content-Description: Undelivered message\n"
				      "Content-Transfer-Encoding: 8bit\n\n"));
	/* Headers only: the body's 8-bit bytes are not returned, so no 8bit. */
	report.ret = IMTA_RET_HDRS;
	g_clear_pointer(&text, g_free);
	text = report_text(&report, in_body);
	g_assert_null(strstr(text, "8bit"));
	hdrs = report_text(&report, in_header);
	g_assert_nonnull(strstr(hdrs, "Content-Type: text/rfc822-headers\n"
				      "Content-Description: Undelivered message header\n"
				      "Content-Transfer-Encoding: 8bit\n\n"));
}

typedef struct {
	GString *out;
	guint calls;
	guint fail_at;   /* fail the nth call; 0 = never */
} SinkState;

static gboolean
state_sink(gpointer data, const void *bytes, gsize length, GError **error)
{
	SinkState *state = data;

	if (++state->calls == state->fail_at) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "disk full");
		return FALSE;
	}
	g_assert_cmpuint(length, >, 0);
	g_string_append_len(state->out, bytes, (gssize)length);
	return TRUE;
}

/* A large original goes through in pieces and comes out whole; a sink
 * that fails stops the report with its error. */
static void
test_report_large(void)
{
	ImtaNoticeReport report = report_base(IMTA_NOTICE_FAILURE, &bob_failed, 1);
	g_autoptr(GString) content = g_string_new("Subject: big\n\n");
	g_autoptr(ImtaMessage) original = NULL;
	SinkState state = { g_string_new(NULL), 0, 0 };
	g_autoptr(GError) error = NULL;
	const char *part;

	while (content->len < 1024 * 1024)
		g_string_append(content, "0123456789 abcdefghijklmnopqrstuvwxyz 0123456789\n");
	original = original_new(content->str, (gssize)content->len);
	g_assert_true(imta_notice_report_write(&report, original, state_sink, &state, &error));
	g_assert_cmpuint(state.calls, >, 10);
	part = strstr(state.out->str, "Content-Description: Undelivered message\n\n");
	g_assert_nonnull(part);
	part += strlen("Content-Description: Undelivered message\n\n");
	g_assert_cmpuint(strlen(part), ==, content->len + strlen("\n--" BOUNDARY "--\n"));
	g_assert_true(strncmp(part, content->str, content->len) == 0);
	g_string_free(state.out, TRUE);

	state = (SinkState){ g_string_new(NULL), 0, 3 };
	g_assert_false(imta_notice_report_write(&report, original, state_sink, &state, &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE);
	g_string_free(state.out, TRUE);
}

/* The original is read from its queue file, never past its size (the
 * outcome records follow); a file shorter than the size is an error. */
static void
test_report_file(void)
{
	ImtaNoticeReport report = report_base(IMTA_NOTICE_FAILURE, &bob_failed, 1);
	g_autofree char *dir = g_dir_make_tmp("test-notice-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "file", NULL);
	g_autoptr(ImtaMessage) original = imta_message_new("0SJX2K5A1B3C9FQW", "ann@sender.example");
	g_autoptr(GError) error = NULL;
	g_autofree char *text = NULL;
	GString *out = g_string_new(NULL);

	g_assert_true(g_file_set_contents(path, "ENVELOPE\nSubject: s\n\nbody\nR 1 0 F x\n", -1,
					  NULL));
	imta_message_set_content_file(original, path, 9, 17);
	text = report_text(&report, original);
	g_assert_true(g_str_has_suffix(text, "\n\nSubject: s\n\nbody\n\n--" BOUNDARY "--\n"));

	imta_message_set_content_file(original, path, 9, 4000);
	g_assert_false(imta_notice_report_write(&report, original, string_sink, out, &error));
	g_assert_error(error, IMTA_NOTICE_ERROR, IMTA_NOTICE_ERROR_TEMPORARY);
	g_assert_cmpstr(error->message, ==, "the original message ends 3973 bytes early");
	g_string_free(out, TRUE);
	g_unlink(path);
	g_rmdir(dir);
}

/* Long values fold before blanks near 78 columns; a word too long for
 * any line is cut; control characters and 8-bit bytes never get in. */
static void
test_report_fold(void)
{
	g_autoptr(GString) word = g_string_new("550 5.1.1 ");
	g_autoptr(GString) words = g_string_new("550 5.1.1");
	ImtaNoticeRecipient rcpts[] = {
		{ "bob@example.net", NULL, IMTA_NOTICE_ACTION_FAILED, NULL, T_NOW },
		{ "carol@example.net", NULL, IMTA_NOTICE_ACTION_FAILED, NULL, T_NOW },
		{ "dan\xc3\xa9\r\n@example.net", "rfc822;d\x01n@example.net",
		  IMTA_NOTICE_ACTION_FAILED, "5.1.1 bad\r\nInjected: header", T_NOW },
	};
	ImtaNoticeReport report = report_base(IMTA_NOTICE_FAILURE, rcpts, G_N_ELEMENTS(rcpts));
	g_autoptr(ImtaMessage) original = original_new(original_text, -1);
	g_autofree char *text = NULL;
	g_autofree char *envid = NULL;
	g_autofree char *expected_envid = NULL;
	const char *status, *p;

	for (guint i = 0; i < 3000; i++)
		g_string_append_c(word, 'x');
	for (guint i = 0; i < 100; i++)
		g_string_append(words, " word");
	rcpts[0].diagnostic = word->str;
	rcpts[1].diagnostic = words->str;
	/* No blank to fold at, but short enough for one line: kept whole. */
	envid = g_strnfill(300, 'e');
	report.envid = envid;
	text = report_text(&report, original);
	expected_envid = g_strdup_printf("\nOriginal-Envelope-Id: %s\n", envid);
	g_assert_nonnull(strstr(text, expected_envid));
	assert_lines_at_most(text, 998);
	g_assert_null(strstr(text, "\nInjected:"));
	g_assert_nonnull(strstr(text, "Final-Recipient: rfc822; dan+C3+A9+0D+0A@example.net\n"));
	g_assert_nonnull(strstr(text, "Original-Recipient: rfc822;d+01n@example.net\n"));
	g_assert_nonnull(strstr(text, "Diagnostic-Code: X-IMTA; 5.1.1 bad Injected: header\n"));
	/* In the delivery-status part every line but the cut word's is
	 * under 79 columns. */
	status = strstr(text, "Content-Type: message/delivery-status");
	g_assert_nonnull(status);
	for (p = status; *p != '\0' && !g_str_has_prefix(p, "--" BOUNDARY);) {
		const char *nl = strchr(p, '\n');

		if ((strstr(p, "xxxxxxxxxx") == NULL || strstr(p, "xxxxxxxxxx") > nl) &&
		    !g_str_has_prefix(p, "Original-Envelope-Id: "))
			g_assert_cmpint(nl - p, <=, 78);
		p = nl + 1;
	}
	g_assert_nonnull(strstr(status, "Diagnostic-Code: smtp; 550 5.1.1 word word"));
	g_assert_nonnull(strstr(status, " word word\n word word"));
	g_assert_nonnull(strstr(status, "Diagnostic-Code: smtp; 550 5.1.1\n xxxxxxxx"));
}

static const struct {
	const char *personal;
	const char *from;
} phrase_rows[] = {
	{ "Mail Delivery System", "From: Mail Delivery System <postmaster@mail.example.com>\n" },
	{ NULL, "From: <postmaster@mail.example.com>\n" },
	{ "", "From: <postmaster@mail.example.com>\n" },
	{ "Postmaster, Example Inc.",
	  "From: \"Postmaster, Example Inc.\" <postmaster@mail.example.com>\n" },
	{ "The \"Mail\" Desk\\", "From: \"The \\\"Mail\\\" Desk\\\\\" <postmaster@mail.example.com>\n" },
	{ "Syst\xc3\xa8me de messagerie",
	  "From: =?UTF-8?B?U3lzdMOobWUgZGUgbWVzc2FnZXJpZQ==?=\n <postmaster@mail.example.com>\n" },
	/* Long: several encoded words of whole characters, folded between. */
	{ "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
	  "From: =?UTF-8?B?w6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6k=?=\n"
	  " =?UTF-8?B?w6nDqcOpw6k=?= <postmaster@mail.example.com>\n" },
	{ "Bad\xff\r\nName", "From: Bad? Name <postmaster@mail.example.com>\n" },
};

static void
test_report_phrase(void)
{
	g_autoptr(ImtaMessage) original = original_new(original_text, -1);

	for (guint i = 0; i < G_N_ELEMENTS(phrase_rows); i++) {
		ImtaNoticeReport report = report_base(IMTA_NOTICE_FAILURE, &bob_failed, 1);
		g_autofree char *text = NULL;

		g_test_message("row %u", i);
		report.from_personal = phrase_rows[i].personal;
		text = report_text(&report, original);
		g_assert_true(g_str_has_prefix(text, phrase_rows[i].from));
	}
}

/* ---- notices queued ------------------------------------------------------------ */

typedef struct {
	char *dir;
	ImtaConfig *config;
	ImtaQueue *queue;
} QueueFixture;

static void
queue_fixture_set_up(QueueFixture *fx, gconstpointer data)
{
	const char *options = data;
	g_autoptr(GError) error = NULL;
	g_autofree char *root = NULL;

	fx->dir = g_dir_make_tmp("test-notice-q-XXXXXX", &error);
	g_assert_no_error(error);
	root = g_build_filename(fx->dir, "queue", NULL);
	fx->config = g_new0(ImtaConfig, 1);
	fx->config->cnf = load_test_cnf();
	fx->config->tailor = g_new0(ImtaTailor, 1);
	fx->config->tailor->hostname = g_strdup("mail.example.com");
	fx->config->options = imta_option_dat_parse_text("option.dat", options != NULL ? options : "",
							 options != NULL ? strlen(options) : 0,
							 NULL, &error);
	g_assert_no_error(error);
	fx->queue = imta_queue_open(root, fx->config->cnf, NULL, &error);
	g_assert_no_error(error);
}

static void
queue_fixture_tear_down(QueueFixture *fx, gconstpointer data)
{
	g_autofree char *command = g_strdup_printf("rm -rf '%s'", fx->dir);

	imta_queue_close(fx->queue);
	imta_config_free(fx->config);
	g_assert_cmpint(system(command), ==, 0);
	g_free(fx->dir);
}

static ImtaMessage *
dummy_next(gpointer source, GError **error)
{
	return NULL;
}

static gboolean
dummy_finish(gpointer source, ImtaMessage *msg, GError **error)
{
	return TRUE;
}

static const ImtaMasterJobSource dummy_ops = { dummy_next, dummy_finish, NULL };

/* Queue a message from `return_path` to r0@test.example ... with the
 * given NOTIFY values, each recipient with a diagnostic; read it back. */
static ImtaQueueEntry *
queue_original(QueueFixture *fx, const char *return_path, const guint *notify, guint n)
{
	const ImtaChannel *channel = imta_cnf_channel_by_name(fx->config->cnf, "test");
	g_autoptr(ImtaEnqueue) enq = imta_enqueue_new(fx->queue, "tcp_local", return_path);
	g_autoptr(ImtaMasterJob) job = imta_master_job_new(NULL, NULL, &dummy_ops, NULL);
	g_autoptr(GError) error = NULL;
	ImtaQueueEntry *entry;

	for (guint i = 0; i < MAX(n, 1); i++) {
		g_autofree char *address = g_strdup_printf("r%u@test.example", i);
		g_autofree char *orcpt = g_strdup_printf("rfc822;r%u@test.example", i);

		g_assert_true(imta_enqueue_add_recipient(enq, channel, address, orcpt,
							 i < n ? notify[i] : 0, &error));
	}
	imta_enqueue_set_envid(enq, "ENV1");
	g_assert_true(imta_enqueue_write(enq, original_text, strlen(original_text), &error));
	g_assert_true(imta_enqueue_commit(enq, &error));
	g_assert_no_error(error);
	entry = imta_queue_entry_read(fx->queue, imta_enqueue_files(enq)[0], &error);
	g_assert_no_error(error);
	for (guint i = 0; i < MAX(n, 1); i++)
		imta_master_job_report(job, entry->message, i, IMTA_OUTCOME_FAILED,
				       "5.1.1 no such user");
	return entry;
}

static gboolean
count_visit(const char *path, guint attempts, gboolean held, gpointer user_data)
{
	g_ptr_array_add(user_data, g_strdup(path));
	return TRUE;
}

/* The queue files of `channel`, relative to the root. */
static GPtrArray *
queue_files(QueueFixture *fx, const char *channel)
{
	GPtrArray *files = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GError) error = NULL;

	g_assert_true(imta_queue_scan_channel(fx->queue, channel, FALSE, count_visit, files,
					      &error) ||
		      g_error_matches(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_NOT_FOUND) ||
		      error == NULL);
	return files;
}

static char *
queue_file_text(QueueFixture *fx, const char *rel)
{
	g_autofree char *path = g_build_filename(imta_queue_root(fx->queue), rel, NULL);
	char *text = NULL;

	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	return text;
}

static guint
count_lines_starting(const char *text, const char *prefix)
{
	guint n = 0;

	for (const char *p = text; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p)
		if (g_str_has_prefix(p, prefix))
			n++;
	return n;
}

static const struct {
	const char *name;
	const char *channel;        /* where the event happened */
	ImtaNoticeKind kind;
	const char *return_path;
	guint notify[2];
	guint n;                    /* recipients of the event */
	ImtaNoticeResult result;
	guint reported, declined;
	const char *recipient;      /* where the notice goes */
	const char *postmaster;     /* the copy's address */
} send_rows[] = {
	{ "failure, no NOTIFY: both, copied by default", "test", IMTA_NOTICE_FAILURE,
	  "ann@sender.example", { 0, 0 }, 2, IMTA_NOTICE_SENT, 2, 0, "ann@sender.example",
	  "postmaster@mail.example.com" },
	{ "failure, NOTIFY=NEVER", "test", IMTA_NOTICE_FAILURE, "ann@sender.example",
	  { IMTA_NOTIFY_NEVER }, 1, IMTA_NOTICE_NOT_REQUESTED, 0, 1, NULL, NULL },
	{ "failure, one NEVER, one not given", "test", IMTA_NOTICE_FAILURE, "ann@sender.example",
	  { IMTA_NOTIFY_NEVER, 0 }, 2, IMTA_NOTICE_SENT, 1, 1, "ann@sender.example",
	  "postmaster@mail.example.com" },
	{ "failure, NOTIFY=SUCCESS,DELAY", "test", IMTA_NOTICE_FAILURE, "ann@sender.example",
	  { IMTA_NOTIFY_SUCCESS | IMTA_NOTIFY_DELAY }, 1, IMTA_NOTICE_NOT_REQUESTED, 0, 1, NULL,
	  NULL },
	{ "failure, NOTIFY=FAILURE", "test_never", IMTA_NOTICE_FAILURE, "ann@sender.example",
	  { IMTA_NOTIFY_FAILURE }, 1, IMTA_NOTICE_SENT, 1, 0, "ann@sender.example", NULL },
	{ "failure, empty return path, even with sendpost", "test_always", IMTA_NOTICE_FAILURE,
	  "", { 0 }, 1, IMTA_NOTICE_NULL_RETURN_PATH, 0, 0, NULL, NULL },
	{ "failure, errsendpost: no copy", "test_err", IMTA_NOTICE_FAILURE, "ann@sender.example",
	  { 0 }, 1, IMTA_NOTICE_SENT, 1, 0, "ann@sender.example", NULL },
	{ "failure, returnaddress", "test_return", IMTA_NOTICE_FAILURE, "ann@sender.example",
	  { 0 }, 1, IMTA_NOTICE_SENT, 1, 0, "ann@sender.example", "bounces@mail.example.com" },
	{ "failure, the sender is the postmaster: no second copy", "test", IMTA_NOTICE_FAILURE,
	  "postmaster@mail.example.com", { 0 }, 1, IMTA_NOTICE_SENT, 1, 0,
	  "postmaster@mail.example.com", NULL },
	{ "delay, no NOTIFY, no copy by default", "test", IMTA_NOTICE_DELAY, "ann@sender.example",
	  { 0 }, 1, IMTA_NOTICE_SENT, 1, 0, "ann@sender.example", NULL },
	{ "delay, NOTIFY=FAILURE", "test", IMTA_NOTICE_DELAY, "ann@sender.example",
	  { IMTA_NOTIFY_FAILURE }, 1, IMTA_NOTICE_NOT_REQUESTED, 0, 1, NULL, NULL },
	{ "delay, copywarnpost", "test_copy", IMTA_NOTICE_DELAY, "ann@sender.example",
	  { IMTA_NOTIFY_DELAY }, 1, IMTA_NOTICE_SENT, 1, 0, "ann@sender.example",
	  "postmaster@mail.example.com" },
	{ "delay, errwarnpost", "test_err", IMTA_NOTICE_DELAY, "ann@sender.example", { 0 }, 1,
	  IMTA_NOTICE_SENT, 1, 0, "ann@sender.example", NULL },
	{ "delay, empty return path", "test", IMTA_NOTICE_DELAY, "", { 0 }, 1,
	  IMTA_NOTICE_NULL_RETURN_PATH, 0, 0, NULL, NULL },
	{ "success, NOTIFY=SUCCESS, never copied", "test_always", IMTA_NOTICE_SUCCESS,
	  "ann@sender.example", { IMTA_NOTIFY_SUCCESS }, 1, IMTA_NOTICE_SENT, 1, 0,
	  "ann@sender.example", NULL },
	{ "success, no NOTIFY", "test", IMTA_NOTICE_SUCCESS, "ann@sender.example", { 0, 0 }, 2,
	  IMTA_NOTICE_NOT_REQUESTED, 0, 2, NULL, NULL },
	{ "no recipients in the event", "test", IMTA_NOTICE_FAILURE, "ann@sender.example",
	  { 0 }, 0, IMTA_NOTICE_NOTHING, 0, 0, NULL, NULL },
};

static const char *const send_subjects[] = {
	[IMTA_NOTICE_FAILURE] = "\nSubject: Delivery failure: your message was returned\n",
	[IMTA_NOTICE_DELAY] = "\nSubject: Delivery delayed: your message is still queued\n",
	[IMTA_NOTICE_SUCCESS] = "\nSubject: Delivery report: your message was delivered\n",
};

/* Every recipient of the notice's files, "address orcpt notify". */
static GPtrArray *
notice_recipients(QueueFixture *fx, const ImtaNoticeOutcome *outcome, const char *orig_id)
{
	GPtrArray *found = g_ptr_array_new_with_free_func(g_free);

	for (guint f = 0; outcome->files[f] != NULL; f++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaQueueEntry) notice = imta_queue_entry_read(fx->queue,
									 outcome->files[f], &error);
		g_autofree char *text = queue_file_text(fx, outcome->files[f]);
		g_autofree char *queue_id = g_strdup_printf("\nX-IMTA-Queue-ID: %s\n", orig_id);

		g_assert_no_error(error);
		g_assert_cmpstr(notice->id, ==, outcome->ids[f]);
		g_assert_cmpstr(imta_message_return_path(notice->message), ==, "");
		g_assert_cmpstr(notice->source, ==, "l");
		g_assert_nonnull(strstr(text, queue_id));
		for (guint i = 0; i < imta_message_recipient_count(notice->message); i++) {
			const ImtaRecipient *r = imta_message_recipient(notice->message, i);

			g_ptr_array_add(found, g_strdup_printf("%s %s %u %s", r->address, r->orcpt,
							       r->notify, notice->channel));
		}
	}
	return found;
}

static void
test_send_rules(QueueFixture *fx, gconstpointer data)
{
	for (guint i = 0; i < G_N_ELEMENTS(send_rows); i++) {
		g_autoptr(ImtaQueueEntry) entry = queue_original(fx, send_rows[i].return_path,
								  send_rows[i].notify,
								  send_rows[i].n);
		guint indices[] = { 0, 1 };
		ImtaNoticeContext ctx = {
			fx->config, fx->queue,
			imta_cnf_channel_by_name(fx->config->cnf, send_rows[i].channel),
			T_NOW, MSGID, BOUNDARY
		};
		ImtaNoticeEvent event = { send_rows[i].kind, entry, indices, send_rows[i].n, T_UNTIL };
		ImtaNoticeOutcome outcome;
		g_autoptr(GError) error = NULL;
		g_autoptr(GPtrArray) parked_before = queue_files(fx, "parked");
		g_autoptr(GPtrArray) l_before = queue_files(fx, "l");
		g_autoptr(GPtrArray) parked = NULL;
		g_autoptr(GPtrArray) l = NULL;

		g_test_message("row %s", send_rows[i].name);
		g_assert_nonnull(ctx.channel);
		g_assert_true(imta_notice_send(&ctx, &event, &outcome, &error));
		g_assert_no_error(error);
		g_assert_cmpint(outcome.result, ==, send_rows[i].result);
		g_assert_cmpuint(outcome.reported, ==, send_rows[i].reported);
		g_assert_cmpuint(outcome.declined, ==, send_rows[i].declined);
		g_assert_cmpstr(outcome.recipient, ==, send_rows[i].recipient);
		g_assert_cmpstr(outcome.postmaster, ==, send_rows[i].postmaster);
		parked = queue_files(fx, "parked");
		l = queue_files(fx, "l");
		if (send_rows[i].result != IMTA_NOTICE_SENT) {
			g_assert_null(outcome.ids);
			g_assert_cmpuint(parked->len, ==, parked_before->len);
			g_assert_cmpuint(l->len, ==, l_before->len);
		} else {
			g_autoptr(GPtrArray) rcpts = notice_recipients(fx, &outcome, entry->id);
			g_autofree char *text = queue_file_text(fx, outcome.files[0]);
			g_autofree char *expect = g_strdup_printf(
				"%s rfc822;%s 0 %s", send_rows[i].recipient, send_rows[i].return_path,
				g_str_has_suffix(send_rows[i].recipient, "sender.example") ? "parked"
											   : "l");

			g_assert_cmpuint(rcpts->len, ==, send_rows[i].postmaster != NULL ? 2 : 1);
			g_assert_cmpstr(rcpts->pdata[0], ==, expect);
			if (send_rows[i].postmaster != NULL) {
				g_autofree char *copy = g_strdup_printf("%s rfc822;%s 0 l",
									send_rows[i].postmaster,
									send_rows[i].postmaster);

				g_assert_cmpstr(rcpts->pdata[1], ==, copy);
			}
			g_assert_cmpuint(g_strv_length(outcome.ids), ==,
					 (parked->len - parked_before->len) + (l->len - l_before->len));
			g_assert_nonnull(strstr(text, send_subjects[send_rows[i].kind]));
			g_assert_nonnull(strstr(text, "\nDate: Tue, 14 Nov 2023 22:13:20 +0000\n"
						      "Message-ID: " MSGID "\n"));
			g_assert_nonnull(strstr(text, "\nOriginal-Envelope-Id: ENV1\n"));
			g_assert_cmpuint(count_lines_starting(text, "Final-Recipient: "), ==,
					 send_rows[i].reported);
		}
		imta_notice_outcome_clear(&outcome);
	}
}

/* The signature and the size limit come from option.dat, the returned
 * part follows CONTENT_RETURN_BLOCK_LIMIT in BLOCK_SIZE blocks. */
static void
test_send_options(QueueFixture *fx, gconstpointer data)
{
	static const guint notify[] = { 0 };
	g_autoptr(ImtaQueueEntry) entry = queue_original(fx, "ann@sender.example", notify, 1);
	guint index = 0;
	ImtaNoticeContext ctx = { fx->config, fx->queue,
				  imta_cnf_channel_by_name(fx->config->cnf, "test"), 0, NULL, NULL };
	ImtaNoticeEvent event = { IMTA_NOTICE_FAILURE, entry, &index, 1, 0 };
	ImtaNoticeOutcome outcome;
	g_autoptr(GError) error = NULL;
	g_autofree char *text = NULL;
	g_autofree char *date = NULL;
	g_autofree char *msgid_prefix = NULL;
	gint64 before = g_get_real_time() / G_USEC_PER_SEC;

	g_assert_true(imta_notice_send(&ctx, &event, &outcome, &error));
	g_assert_cmpint(outcome.result, ==, IMTA_NOTICE_SENT);
	g_assert_cmpstr(outcome.postmaster, ==, "mailer@mail.example.com");
	text = queue_file_text(fx, outcome.files[0]);
	g_assert_nonnull(strstr(text, "\n\nFrom: \"Example, Inc. Mail\" <mailer@mail.example.com>\n"));
	g_assert_nonnull(strstr(text, "\nContent-Type: text/rfc822-headers\n"));
	g_assert_nonnull(strstr(text, "larger than the 64 bytes returned at most."));
	/* Fresh Date, Message-ID and boundary when no test hook fixes them. */
	date = imta_notice_format_date(before);
	g_assert_nonnull(strstr(text, "\nDate: "));
	msgid_prefix = g_strdup_printf("\nMessage-ID: <%" G_GINT64_FORMAT ".%s.F", before,
				       entry->id);
	if (strstr(text, msgid_prefix) == NULL) {
		/* The second may have turned meanwhile. */
		g_free(msgid_prefix);
		msgid_prefix = g_strdup_printf("\nMessage-ID: <%" G_GINT64_FORMAT ".%s.F",
					       before + 1, entry->id);
	}
	g_assert_nonnull(strstr(text, msgid_prefix));
	g_assert_nonnull(strstr(text, "@mail.example.com>\n"));
	g_assert_nonnull(strstr(text, "boundary=\"=_"));
	imta_notice_outcome_clear(&outcome);
}

static void
test_send_unroutable(QueueFixture *fx, gconstpointer data)
{
	static const guint notify[] = { 0 };
	g_autoptr(ImtaQueueEntry) entry = queue_original(fx, "ann@nowhere.example", notify, 1);
	guint index = 0;
	ImtaNoticeContext ctx = { fx->config, fx->queue,
				  imta_cnf_channel_by_name(fx->config->cnf, "test"), T_NOW, MSGID,
				  BOUNDARY };
	ImtaNoticeEvent event = { IMTA_NOTICE_FAILURE, entry, &index, 1, 0 };
	ImtaNoticeOutcome outcome;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) parked = NULL;
	g_autoptr(GPtrArray) l = NULL;

	g_assert_false(imta_notice_send(&ctx, &event, &outcome, &error));
	g_assert_error(error, IMTA_NOTICE_ERROR, IMTA_NOTICE_ERROR_PERMANENT);
	g_assert_cmpstr(error->message, ==,
			"<ann@nowhere.example> does not route: no-route-to-this-domain");
	parked = queue_files(fx, "parked");
	l = queue_files(fx, "l");
	g_assert_cmpuint(parked->len + l->len, ==, 0);
}

/* ---- the "W" record ------------------------------------------------------------- */

static void
append_to(QueueFixture *fx, const ImtaQueueEntry *entry, const char *text)
{
	g_autofree char *path = g_build_filename(imta_queue_root(fx->queue), entry->path, NULL);
	FILE *f = fopen(path, "a");

	g_assert_nonnull(f);
	g_assert_cmpint(fputs(text, f), >=, 0);
	g_assert_cmpint(fclose(f), ==, 0);
}

static void
test_queue_warning_record(QueueFixture *fx, gconstpointer data)
{
	static const guint notify[] = { 0, 0 };
	g_autoptr(ImtaQueueEntry) entry = queue_original(fx, "ann@sender.example", notify, 2);
	g_autoptr(ImtaMasterJob) job = imta_master_job_new(NULL, NULL, &dummy_ops, NULL);
	g_autoptr(ImtaQueueEntry) again = NULL;
	g_autoptr(ImtaQueueEntry) third = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *text = NULL;
	const char *w;

	g_assert_false(imta_queue_entry_warned(entry, 3600));
	imta_queue_entry_note_warning(entry, 3600, "0NOTICE000000001", "sent to ann@sender.example");
	imta_queue_entry_note_warning(entry, 3600, "0NOTICE000000002", "noted twice");
	g_assert_true(imta_queue_entry_warned(entry, 3600));
	g_assert_false(imta_queue_entry_warned(entry, 7200));
	imta_master_job_report(job, entry->message, 0, IMTA_OUTCOME_RETRY, "4.2.0 later");
	imta_master_job_report(job, entry->message, 1, IMTA_OUTCOME_RETRY, "4.2.0 later");
	g_assert_true(imta_queue_entry_record(fx->queue, entry, 60, "4.2.0 later", &error));
	g_assert_no_error(error);
	text = queue_file_text(fx, entry->path);
	g_assert_cmpuint(count_lines_starting(text, "W "), ==, 1);
	w = strstr(text, "\nW ");
	g_assert_nonnull(w);
	g_assert_true(g_regex_match_simple("^\nW [0-9]+ 3600 0NOTICE000000001 "
					   "sent\\+20to\\+20ann@sender.example\nA [0-9]+ 1 ",
					   w, 0, 0));

	/* Read back: remembered; a second attempt writes no second record. */
	again = imta_queue_entry_read(fx->queue, entry->path, &error);
	g_assert_no_error(error);
	g_assert_true(imta_queue_entry_warned(again, 3600));
	g_assert_false(imta_queue_entry_warned(again, 7200));
	imta_master_job_report(job, again->message, 0, IMTA_OUTCOME_RETRY, "4.2.0 later");
	imta_queue_entry_note_warning(again, 7200, NULL, "not sent: not requested (NOTIFY)");
	g_assert_true(imta_queue_entry_record(fx->queue, again, 60, "4.2.0 later", &error));
	g_clear_pointer(&text, g_free);
	text = queue_file_text(fx, again->path);
	g_assert_cmpuint(count_lines_starting(text, "W "), ==, 2);
	g_assert_true(g_regex_match_simple("\nW [0-9]+ 7200 - not\\+20sent:\\+20not\\+20requested"
					   "\\+20\\(NOTIFY\\)\nA [0-9]+ 2 ", text, 0, 0));
	third = imta_queue_entry_read(fx->queue, again->path, &error);
	g_assert_no_error(error);
	g_assert_true(imta_queue_entry_warned(third, 3600));
	g_assert_true(imta_queue_entry_warned(third, 7200));
	g_assert_cmpuint(third->attempts, ==, 2);

	/* Every recipient final: the file goes, warnings and all. */
	imta_master_job_report(job, third->message, 0, IMTA_OUTCOME_DELIVERED, "2.0.0 ok");
	imta_master_job_report(job, third->message, 1, IMTA_OUTCOME_DELIVERED, "2.0.0 ok");
	imta_queue_entry_note_warning(third, 10800, NULL, "x");
	g_assert_true(imta_queue_entry_record(fx->queue, third, 60, "", &error));
	g_assert_null(third->path);
}

/* A file without "W" records (as written before they existed) has had
 * no warning; torn and malformed "W" lines are ignored. */
static void
test_queue_warning_lenient(QueueFixture *fx, gconstpointer data)
{
	static const guint notify[] = { 0 };
	g_autoptr(ImtaQueueEntry) entry = queue_original(fx, "ann@sender.example", notify, 1);
	g_autoptr(ImtaQueueEntry) back = NULL;
	g_autoptr(GError) error = NULL;

	append_to(fx, entry, "R 1700000000 0 Q 4.2.0+20later\n"
			     "A 1700000000 1 1700000060 4.2.0+20later\n");
	back = imta_queue_entry_read(fx->queue, entry->path, &error);
	g_assert_no_error(error);
	for (gint64 age = 0; age <= 5 * 86400; age += 3600)
		g_assert_false(imta_queue_entry_warned(back, age));
	g_clear_pointer(&back, imta_queue_entry_free);
	append_to(fx, entry, "W 1700000000 3600 - sent\n"
			     "W 1700000000 x - bad+20age\n"
			     "W 1700000000 7200 - bad+ZZxtext\n"
			     "W 1700000000 10800 bad+ZZ ok\n"
			     "W 1700000000 14400 - too many fields\n"
			     "W 1700000000 -18000 - negative\n"
			     "W 1700000000 21600 - torn");
	back = imta_queue_entry_read(fx->queue, entry->path, &error);
	g_assert_no_error(error);
	g_assert_true(imta_queue_entry_warned(back, 3600));
	g_assert_false(imta_queue_entry_warned(back, 7200));
	g_assert_false(imta_queue_entry_warned(back, 10800));
	g_assert_false(imta_queue_entry_warned(back, 14400));
	g_assert_false(imta_queue_entry_warned(back, 18000));
	g_assert_false(imta_queue_entry_warned(back, 21600));
	/* The outcome records around them still count. */
	g_assert_cmpint(imta_message_recipient(back->message, 0)->outcome, ==, IMTA_OUTCOME_RETRY);
	g_assert_cmpstr(back->last_error, ==, "4.2.0 later");
}

int
main(int argc, char **argv)
{
	/* Dates in the reports are local time: make that UTC. */
	g_setenv("TZ", "UTC", TRUE);
	tzset();
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/notice/rules/wanted", test_rules_wanted);
	g_test_add_func("/notice/rules/postmaster", test_rules_postmaster);
	g_test_add_func("/notice/rules/success-action", test_rules_success_action);
	g_test_add_func("/notice/diagnostic/parse", test_diagnostic_parse);
	g_test_add_func("/notice/report/date", test_date);
	g_test_add_func("/notice/report/failure", test_report_failure);
	g_test_add_func("/notice/report/ret-hdrs-envid-orcpt", test_report_hdrs);
	g_test_add_func("/notice/report/delay", test_report_delay);
	g_test_add_func("/notice/report/success", test_report_success);
	g_test_add_func("/notice/report/returned", test_report_returned);
	g_test_add_func("/notice/report/long-lines", test_report_long_lines);
	g_test_add_func("/notice/report/eight-bit", test_report_eight_bit);
	g_test_add_func("/notice/report/large", test_report_large);
	g_test_add_func("/notice/report/queue-file", test_report_file);
	g_test_add_func("/notice/report/fold", test_report_fold);
	g_test_add_func("/notice/report/from-phrase", test_report_phrase);
	g_test_add("/notice/send/rules", QueueFixture, NULL, queue_fixture_set_up,
		   test_send_rules, queue_fixture_tear_down);
	g_test_add("/notice/send/options", QueueFixture,
		   "RETURN_ADDRESS=mailer@mail.example.com\nRETURN_PERSONAL=Example, Inc. Mail\n"
		   "BLOCK_SIZE=64\nCONTENT_RETURN_BLOCK_LIMIT=1\n",
		   queue_fixture_set_up, test_send_options, queue_fixture_tear_down);
	g_test_add("/notice/send/unroutable", QueueFixture, NULL, queue_fixture_set_up,
		   test_send_unroutable, queue_fixture_tear_down);
	g_test_add("/notice/queue/warning-record", QueueFixture, NULL, queue_fixture_set_up,
		   test_queue_warning_record, queue_fixture_tear_down);
	g_test_add("/notice/queue/warning-lenient", QueueFixture, NULL, queue_fixture_set_up,
		   test_queue_warning_lenient, queue_fixture_tear_down);
	return g_test_run();
}
