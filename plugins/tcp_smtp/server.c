/*
 * server.c - the SMTP server session: the state machine of RFC 5321 and
 * its extensions on the event-driven connection of slave.h.
 *
 * One session per connection, touched only on the connection's thread.
 * Input is taken command by command in the order it arrived, so pipelined
 * commands (RFC 2920) are answered in order and their replies leave
 * together.  A command that must wait (a recipient's directory lookup,
 * the password check, the queue commit) runs through imta_conn_run();
 * the session is "busy" until its done callback, which answers and goes on
 * with whatever input is buffered.  Message content streams from the DATA
 * or BDAT reader into the queue's spool; only the commit, which syncs the
 * disk, leaves the connection's thread.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <glib.h>

#include <imta/imta.h>
#include <imta/mail_log.h>
#include <imta/queue.h>
#include <imta/slave.h>
#include <imta/smtp.h>

#include "auth.h"
#include "options.h"
#include "policy.h"
#include "server.h"

/* The message header is kept up to this size for the hop count; a longer
 * header is counted as far as it was kept. */
#define SESSION_HEAD_MAX (64 * 1024)

typedef enum {
	STATE_STARTING,  /* the client check runs; no greeting yet */
	STATE_COMMAND,
	STATE_DATA,
	STATE_BDAT,
	STATE_AUTH,      /* an AUTH exchange waits for a response line */
	STATE_CLOSED,
} SessionState;

typedef struct {
	char *given;               /* the recipient as the client gave it */
	char *address;             /* rewritten */
	const ImtaChannel *channel;
} TxnRecipient;

/* One mail transaction, from MAIL to the end of the content or RSET. */
typedef struct {
	char id[IMTA_QUEUE_ID_LENGTH + 1];
	ImtaEnqueue *enq;
	char *from;
	gint64 declared_size;      /* SIZE=, -1 when not given */
	GPtrArray *rcpts;          /* TxnRecipient * */
	GHashTable *seen;          /* "channel address" of queued recipients */
	guint queued;              /* recipients handed to the enqueue */
	gboolean discard;          /* an access table said: queue nothing */
	/* Content. */
	gboolean content;          /* DATA or BDAT began */
	gboolean bdat;             /* content comes in BDAT chunks */
	ImtaSmtpDataReader reader;
	GString *head;             /* the header so far; NULL once complete */
	guint received;            /* Received: lines of the client's header */
	guint64 size;              /* content bytes from the client */
	gint64 limit;              /* bytes; 0 = none */
	gboolean too_big, looping, io_failed, disk_full;
	gboolean cr_pending;       /* BDAT: a CR ended the last chunk */
} Txn;

typedef struct {
	ImtaConn *conn;
	const ImtaConfig *config;
	const TcpSmtpOptions *options;
	SmtpPolicy policy;
	SessionState state;
	char *hostname;
	char *client_ip;
	char *client_name;
	char *port_probe;          /* for the access tables */
	char *helo;                /* NULL until HELO or EHLO */
	gboolean esmtp;
	gboolean busy;             /* an imta_conn_run() is pending */
	gboolean draining;
	gboolean tls_starting;     /* STARTTLS said: read nothing more in clear */
	gboolean debug;
	char *auth_user;           /* NULL until AUTH succeeded */
	SmtpAuth *auth;            /* an exchange in progress */
	guint errors;
	guint messages;
	Txn *txn;
	/* A BDAT chunk being read. */
	guint64 chunk_size;
	guint64 chunk_left;
	gboolean chunk_last;
	SmtpVerdict chunk_refusal; /* code != 0: discard the chunk, then refuse */
	GString *scratch;          /* content out of the readers */
} SmtpSession;

static void session_pump(SmtpSession *s);

/* ---- replies ------------------------------------------------------------ */

static void
session_log(SmtpSession *s, ImtaLogLevel level, const char *format, ...) G_GNUC_PRINTF(3, 4);

static void
session_log(SmtpSession *s, ImtaLogLevel level, const char *format, ...)
{
	g_autofree char *text = NULL;
	va_list args;

	va_start(args, format);
	text = g_strdup_vprintf(format, args);
	va_end(args);
	imta_conn_log(s->conn, level, "%s", text);
}

static void
session_replyv(SmtpSession *s, gboolean counted, guint code, const char *enhanced,
	       const char *format, va_list args)
{
	g_autofree char *text = g_strdup_vprintf(format, args);
	GString *out = g_string_new(NULL);

	imta_smtp_reply(out, code, enhanced != NULL && enhanced[0] != '\0' ? enhanced : NULL, "%s",
			text);
	imta_conn_write(s->conn, out->str, out->len);
	if (s->debug)
		session_log(s, IMTA_LOG_INFO, "> %.*s", (int)MIN(out->len, 400) - 2, out->str);
	g_string_free(out, TRUE);
	/* Trouble of this system (4.3.x: a full disk, a directory down) is
	 * not the client's error. */
	if (counted && code >= 400 && code != 421 &&
	    !(code < 500 && enhanced != NULL && g_str_has_prefix(enhanced, "4.3.")))
		s->errors++;
}

/* A reply; refusals (4xx, 5xx) count against ALLOW_REJECTIONS_PER_SESSION. */
static void
session_reply(SmtpSession *s, guint code, const char *enhanced, const char *format, ...)
	G_GNUC_PRINTF(4, 5);

static void
session_reply(SmtpSession *s, guint code, const char *enhanced, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	session_replyv(s, TRUE, code, enhanced, format, args);
	va_end(args);
}

/* A refusal that does not count as an error of the client. */
static void
session_reply_uncounted(SmtpSession *s, guint code, const char *enhanced, const char *format, ...)
	G_GNUC_PRINTF(4, 5);

static void
session_reply_uncounted(SmtpSession *s, guint code, const char *enhanced, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	session_replyv(s, FALSE, code, enhanced, format, args);
	va_end(args);
}

static void
session_reply_verdict(SmtpSession *s, const SmtpVerdict *verdict)
{
	session_reply(s, verdict->code, verdict->enhanced, "%s", verdict->text);
}

/* ---- the message log -------------------------------------------------- */

/* The S and A suffixes of the session's mail.log entries. */
static guint
session_mail_log_flags(SmtpSession *s)
{
	return (imta_conn_tls_active(s->conn) ? IMTA_MAIL_LOG_TLS : 0) |
	       (s->auth_user != NULL ? IMTA_MAIL_LOG_SASL : 0);
}

/* A J entry: the reply `code enhanced text` refused the sender (to NULL),
 * a recipient, or the message for recipient `to`.  `size`: -1 before the
 * content. */
static void
session_mail_log_refused(SmtpSession *s, const char *from, const char *to, const char *orcpt,
			 const char *destination, gint64 size, guint code, const char *enhanced,
			 const char *text)
{
	g_autofree char *reply = NULL;

	if (!imta_mail_log_enabled(s->policy.source->name))
		return;
	if (enhanced != NULL && enhanced[0] != '\0')
		reply = g_strdup_printf("%u %s %s", code, enhanced, text);
	else
		reply = g_strdup_printf("%u %s", code, text);
	imta_mail_log_entry(&(ImtaMailLogEntry){
		.code = IMTA_MAIL_LOG_REFUSED,
		.flags = session_mail_log_flags(s),
		.source = s->policy.source->name,
		.destination = destination,
		.size = size,
		.from = from,
		.orcpt = orcpt,
		.to = to,
		.diagnostic = reply,
	});
}

/* Refuse the content of transaction `t`: the reply, and a J entry for
 * each of its recipients. */
static void
txn_refuse(SmtpSession *s, const Txn *t, guint code, const char *enhanced, const char *format,
	   ...) G_GNUC_PRINTF(5, 6);

static void
txn_refuse(SmtpSession *s, const Txn *t, guint code, const char *enhanced, const char *format,
	   ...)
{
	g_autofree char *text = NULL;
	va_list args;

	va_start(args, format);
	text = g_strdup_vprintf(format, args);
	va_end(args);
	session_reply(s, code, enhanced, "%s", text);
	for (guint i = 0; i < t->rcpts->len; i++) {
		const TxnRecipient *rcpt = t->rcpts->pdata[i];
		g_autofree char *orcpt = g_strconcat("rfc822;", rcpt->given, NULL);

		session_mail_log_refused(s, t->from, rcpt->address, orcpt, rcpt->channel->name,
					 (gint64)t->size, code, enhanced, text);
	}
}

static void
session_close(SmtpSession *s)
{
	if (s->state == STATE_CLOSED)
		return;
	s->state = STATE_CLOSED;
	imta_conn_close(s->conn);
}

/* 421: the session ends here. */
static void
session_close_with(SmtpSession *s, const char *enhanced, const char *text)
{
	session_reply(s, 421, enhanced, "%s %s", s->hostname, text);
	session_close(s);
}

/* The worker retires: end the session between commands. */
static void
session_shutting_down(SmtpSession *s)
{
	session_close_with(s, "4.3.2", "Service shutting down, closing transmission channel");
}

/* ---- transactions ------------------------------------------------------- */

static void
txn_recipient_free(gpointer p)
{
	TxnRecipient *rcpt = p;

	g_free(rcpt->given);
	g_free(rcpt->address);
	g_free(rcpt);
}

static void
txn_free(Txn *t)
{
	if (t == NULL)
		return;
	imta_enqueue_free(t->enq);
	g_free(t->from);
	g_ptr_array_unref(t->rcpts);
	g_hash_table_unref(t->seen);
	if (t->head != NULL)
		g_string_free(t->head, TRUE);
	g_free(t);
}

static void
session_free_scratch(SmtpSession *s)
{
	if (s->scratch != NULL)
		g_string_free(s->scratch, TRUE);
	s->scratch = NULL;
}

static void
session_reset_txn(SmtpSession *s)
{
	g_clear_pointer(&s->txn, txn_free);
	session_free_scratch(s);
}

/* ---- the greeting and EHLO ------------------------------------------- */

static gboolean
session_tls_offered_now(SmtpSession *s)
{
	return !imta_conn_tls_active(s->conn) && smtp_policy_tls_offered(&s->policy) &&
	       imta_conn_tls_available(s->conn);
}

static gboolean
session_auth_offered_now(SmtpSession *s)
{
	return imta_conn_tls_active(s->conn) && smtp_policy_sasl_offered(&s->policy);
}

static gboolean
session_needs_tls(SmtpSession *s)
{
	return smtp_policy_tls_required(&s->policy) && !imta_conn_tls_active(s->conn);
}

static void
session_offer(SmtpSession *s, ImtaSmtpOffer *offer)
{
	memset(offer, 0, sizeof *offer);
	offer->esmtp = s->esmtp;
	offer->dsn = TRUE;
	offer->eightbitmime = TRUE;
	offer->auth = s->esmtp && session_auth_offered_now(s);
	offer->max_size = smtp_policy_message_limit(&s->policy);
}

static void
session_greet(SmtpSession *s)
{
	const char *addition = s->options->banner_addition;

	s->state = STATE_COMMAND;
	session_reply(s, 220, NULL, "%s ESMTP%s%s", s->hostname, addition != NULL ? " " : "",
		      addition != NULL ? addition : "");
}

static void
cmd_ehlo(SmtpSession *s, const ImtaSmtpCommand *cmd, gboolean esmtp)
{
	gint64 limit = smtp_policy_message_limit(&s->policy);
	g_autoptr(GString) text = NULL;

	if (cmd->arg == NULL || !imta_smtp_valid_helo(cmd->arg)) {
		session_reply(s, 501, "5.5.4", "Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
		return;
	}
	session_reset_txn(s);
	g_free(s->helo);
	s->helo = g_strdup(cmd->arg);
	s->esmtp = esmtp;
	if (!esmtp) {
		session_reply(s, 250, NULL, "%s", s->hostname);
		return;
	}
	text = g_string_new(s->hostname);
	g_string_append(text, "\nPIPELINING");
	if (limit > 0)
		g_string_append_printf(text, "\nSIZE %" G_GINT64_FORMAT, limit);
	else
		g_string_append(text, "\nSIZE");
	g_string_append(text, "\n8BITMIME\nENHANCEDSTATUSCODES\nDSN\nCHUNKING");
	if (session_tls_offered_now(s))
		g_string_append(text, "\nSTARTTLS");
	if (session_auth_offered_now(s))
		g_string_append(text, "\nAUTH " SMTP_AUTH_MECHANISMS);
	session_reply(s, 250, NULL, "%s", text->str);
}

/* ---- MAIL, RCPT ------------------------------------------------------ */

/* The app-info field of the access probes. */
static char *
session_app_info(SmtpSession *s)
{
	return g_strdup_printf("SMTP/%s", s->helo != NULL ? s->helo : "");
}

static void
cmd_mail(SmtpSession *s, const ImtaSmtpCommand *cmd)
{
	g_autofree char *app = session_app_info(s);
	g_autofree char *new_from = NULL;
	g_autofree char *note = NULL;
	SmtpVerdict verdict = { 0 };
	SmtpSenderProbe probe;
	Txn *t;

	if (s->helo == NULL) {
		session_reply(s, 503, "5.5.1", "Error: send HELO/EHLO first");
		return;
	}
	if (s->txn != NULL) {
		session_reply(s, 503, "5.5.1", "Error: nested MAIL command");
		return;
	}
	if (smtp_policy_sasl_required(&s->policy) && s->auth_user == NULL) {
		session_reply(s, 530, "5.7.0", "Authentication required");
		return;
	}
	if (s->messages >= (guint64)s->options->transactions_per_session) {
		session_close_with(s, "4.7.0", "Error: too many messages in this session");
		return;
	}
	probe = (SmtpSenderProbe){ s->port_probe, app, cmd->path,
				   s->auth_user != NULL ? s->auth_user : "" };
	smtp_policy_check_sender(&s->policy, &probe, &verdict, &new_from, &note);
	if (note != NULL)
		session_log(s, IMTA_LOG_NOTICE, "%s", note);
	if (verdict.code != 0) {
		session_reply_verdict(s, &verdict);
		session_mail_log_refused(s, cmd->path, NULL, NULL, NULL, -1, verdict.code,
					 verdict.enhanced, verdict.text);
		smtp_verdict_clear(&verdict);
		return;
	}
	t = g_new0(Txn, 1);
	/* The first queue file takes this id: Received:, log and reply agree. */
	imta_queue_new_id(t->id);
	t->from = g_strdup(new_from != NULL ? new_from : cmd->path);
	t->declared_size = cmd->size;
	t->rcpts = g_ptr_array_new_with_free_func(txn_recipient_free);
	t->seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	t->limit = smtp_policy_message_limit(&s->policy);
	t->enq = imta_enqueue_new(imta_conn_queue(s->conn), s->policy.source->name, t->from);
	imta_enqueue_set_id(t->enq, t->id);
	/* STARTTLS and AUTH are refused within a transaction: this holds. */
	imta_enqueue_set_mail_log_flags(t->enq, session_mail_log_flags(s));
	if (cmd->envid != NULL)
		imta_enqueue_set_envid(t->enq, cmd->envid);
	if (cmd->ret != IMTA_RET_DEFAULT)
		imta_enqueue_set_ret(t->enq, cmd->ret);
	s->txn = t;
	session_reply(s, 250, "2.1.0", "Ok");
}

/* RFC 5321 4.5.1: "postmaster" alone names this system's postmaster. */
static char *
session_qualify(SmtpSession *s, const char *path)
{
	const ImtaChannel *local = imta_cnf_local_channel(s->config->cnf);

	if (strchr(path, '@') != NULL)
		return g_strdup(path);
	return g_strdup_printf("%s@%s", path, imta_channel_official_host(local));
}

static void
rcpt_accept(SmtpSession *s, SmtpRcptCheck *check)
{
	Txn *t = s->txn;
	g_autoptr(GError) error = NULL;
	g_autofree char *orcpt = NULL;
	g_autofree char *key = g_strdup_printf("%s %s", check->channel->name, check->address);
	TxnRecipient *rcpt;

	t->discard |= check->discard_message;
	if (!check->discard_recipient && !g_hash_table_contains(t->seen, key)) {
		orcpt = check->orcpt != NULL ? g_strdup(check->orcpt)
					     : g_strdup_printf("rfc822;%s", check->rcpt);
		if (!imta_enqueue_add_recipient(t->enq, check->channel, check->address, orcpt,
						check->notify, &error)) {
			g_autofree char *text = g_strdup_printf("<%s>: Recipient address "
								"rejected: cannot be queued",
								check->rcpt);

			session_log(s, IMTA_LOG_WARNING, "cannot queue %s: %s", check->address,
				    error->message);
			session_reply(s, 550, "5.1.3", "%s", text);
			session_mail_log_refused(s, t->from, check->address, orcpt,
						 check->channel->name, -1, 550, "5.1.3", text);
			return;
		}
		g_hash_table_add(t->seen, g_steal_pointer(&key));
		t->queued++;
	}
	rcpt = g_new0(TxnRecipient, 1);
	rcpt->given = g_strdup(check->rcpt);
	rcpt->address = g_strdup(check->address);
	rcpt->channel = check->channel;
	g_ptr_array_add(t->rcpts, rcpt);
	session_reply(s, 250, "2.1.5", "Ok");
}

static void
rcpt_done(ImtaConn *conn, gpointer session, gpointer data)
{
	SmtpSession *s = session;
	SmtpRcptCheck *check = data;

	s->busy = FALSE;
	for (guint i = 0; i < check->log->len; i++)
		session_log(s, IMTA_LOG_NOTICE, "%s", (const char *)check->log->pdata[i]);
	if (check->verdict.code != 0) {
		g_autofree char *orcpt = check->orcpt != NULL
						 ? g_strdup(check->orcpt)
						 : g_strconcat("rfc822;", check->rcpt, NULL);

		session_log(s, IMTA_LOG_INFO, "recipient <%s> refused: %u %s %s", check->rcpt,
			    check->verdict.code, check->verdict.enhanced, check->verdict.text);
		session_reply_verdict(s, &check->verdict);
		session_mail_log_refused(s, check->from,
					 check->address != NULL ? check->address : check->rcpt,
					 orcpt, check->channel != NULL ? check->channel->name : NULL,
					 check->declared_size >= 0 ? check->declared_size : -1,
					 check->verdict.code, check->verdict.enhanced,
					 check->verdict.text);
	} else if (s->txn != NULL) {
		rcpt_accept(s, check);
	}
	smtp_rcpt_check_free(check);
	session_pump(s);
}

static void
cmd_rcpt(SmtpSession *s, const ImtaSmtpCommand *cmd)
{
	Txn *t = s->txn;
	SmtpRcptCheck *check;

	if (t == NULL) {
		session_reply(s, 503, "5.5.1", "Error: need MAIL command");
		return;
	}
	if (t->content) {
		session_reply(s, 503, "5.5.1", "Error: RCPT after message content");
		return;
	}
	if (t->rcpts->len >= (guint64)s->options->recipients_per_transaction) {
		session_reply_uncounted(s, 452, "4.5.3", "Error: too many recipients");
		session_mail_log_refused(s, t->from, cmd->path, cmd->orcpt, NULL, -1, 452,
					 "4.5.3", "Error: too many recipients");
		return;
	}
	check = g_new0(SmtpRcptCheck, 1);
	check->config = s->config;
	check->source = s->policy.source;
	check->relay_allowed = s->auth_user != NULL || s->policy.source != s->policy.service;
	check->port_probe = g_strdup(s->port_probe);
	check->app_info = session_app_info(s);
	check->from = g_strdup(t->from);
	check->rcpt = session_qualify(s, cmd->path);
	check->orcpt = g_strdup(cmd->orcpt);
	check->declared_size = t->declared_size;
	check->notify = cmd->notify;
	check->log = g_ptr_array_new_with_free_func(g_free);
	s->busy = TRUE;
	imta_conn_run(s->conn, smtp_rcpt_check_work, rcpt_done, check);
}

/* ---- message content ------------------------------------------------- */

static gboolean
session_disk_full(const GError *error)
{
	/* The queue reports file system errors with their strerror text. */
	return strstr(error->message, g_strerror(ENOSPC)) != NULL ||
	       strstr(error->message, g_strerror(EDQUOT)) != NULL;
}

/* The header is complete (or as much as is kept): count its Received:
 * lines. */
static void
content_head_done(SmtpSession *s)
{
	Txn *t = s->txn;
	guint limit = (guint)s->options->max_received_lines;

	t->received = imta_smtp_count_received(t->head->str, t->head->len, limit);
	t->looping = t->received > limit;
	g_string_free(t->head, TRUE);
	t->head = NULL;
}

/* Keep the header until its blank line, for the hop count. */
static void
content_head(SmtpSession *s, const char *data, gsize len)
{
	GString *head = s->txn->head;
	gsize from = head->len > 0 ? head->len - 1 : 0;

	g_string_append_len(head, data, (gssize)MIN(len, SESSION_HEAD_MAX - head->len));
	if (head->len > 0 && head->str[0] == '\n') {
		content_head_done(s);
		return;
	}
	for (gsize i = from; i + 1 < head->len; i++)
		if (head->str[i] == '\n' && head->str[i + 1] == '\n') {
			content_head_done(s);
			return;
		}
	if (head->len >= SESSION_HEAD_MAX)
		content_head_done(s);
}

/* Content from the client, LF line ends: counted, checked, spooled. */
static void
content_write(SmtpSession *s, const char *data, gsize len)
{
	Txn *t = s->txn;
	g_autoptr(GError) error = NULL;

	if (len == 0)
		return;
	if (t->head != NULL)
		content_head(s, data, len);
	t->size += len;
	if (t->limit > 0 && t->size > (guint64)t->limit)
		t->too_big = TRUE;
	if (t->too_big || t->looping || t->io_failed || t->discard)
		return;
	if (!imta_enqueue_write(t->enq, data, len, &error)) {
		t->io_failed = TRUE;
		t->disk_full = session_disk_full(error);
		session_log(s, IMTA_LOG_ERROR, "message %s: %s", t->id, error->message);
	}
}

static const char *
txn_for_address(const Txn *t)
{
	return t->rcpts->len == 1 ? ((const TxnRecipient *)t->rcpts->pdata[0])->given : NULL;
}

/* The message content begins: our Received: header goes first. */
static void
content_start(SmtpSession *s, gboolean bdat)
{
	Txn *t = s->txn;
	gboolean tls = imta_conn_tls_active(s->conn);
	g_autofree char *header = NULL;
	gint64 limit;
	ImtaSmtpTrace trace = {
		.helo = s->helo,
		.client_name = s->client_name,
		.client_ip = s->client_ip,
		.by_host = s->hostname,
		.protocol = imta_smtp_protocol_name(s->esmtp, tls, s->auth_user != NULL, FALSE),
		.tls = tls ? imta_conn_tls_description(s->conn) : NULL,
		.queue_id = t->id,
		.for_address = txn_for_address(t),
		.time = g_get_real_time() / G_USEC_PER_SEC,
	};

	t->content = TRUE;
	t->bdat = bdat;
	t->head = g_string_new(NULL);
	imta_smtp_data_reader_init(&t->reader);
	/* The smallest blocklimit among the recipients' channels applies. */
	for (guint i = 0; i < t->rcpts->len; i++) {
		const TxnRecipient *rcpt = t->rcpts->pdata[i];

		limit = smtp_policy_channel_limit(s->config, rcpt->channel);
		if (limit > 0 && (t->limit == 0 || limit < t->limit))
			t->limit = limit;
	}
	header = imta_smtp_received_header(&trace);
	if (!t->discard) {
		g_autoptr(GError) error = NULL;
		gsize len = strlen(header);
		gboolean ok = imta_enqueue_write(t->enq, header, len, &error);

		if (ok && (len == 0 || header[len - 1] != '\n'))
			ok = imta_enqueue_write(t->enq, "\n", 1, &error);
		if (!ok) {
			t->io_failed = TRUE;
			t->disk_full = session_disk_full(error);
			session_log(s, IMTA_LOG_ERROR, "message %s: %s", t->id, error->message);
		}
	}
	if (s->scratch == NULL)
		s->scratch = g_string_sized_new(4096);
	imta_conn_set_timeout(s->conn, (guint)s->options->data_timeout);
}

/* The content ended without a refusal so far: check what could only be
 * checked at the end, then commit.  Returns FALSE when it replied. */
static gboolean
content_verdict(SmtpSession *s)
{
	Txn *t = s->txn;

	if (t->head != NULL)
		content_head_done(s);
	if (t->looping) {
		session_log(s, IMTA_LOG_NOTICE, "message %s refused: %u Received: lines", t->id,
			    t->received);
		txn_refuse(s, t, 554, "5.4.6", "Too many hops: the message has more than %u "
			   "Received: header lines (a mail loop?)",
			   (guint)s->options->max_received_lines);
		return FALSE;
	}
	if (t->too_big) {
		txn_refuse(s, t, 552, "5.3.4", "Message size exceeds fixed limit of %"
			   G_GINT64_FORMAT " bytes", t->limit);
		return FALSE;
	}
	if (t->io_failed && t->disk_full) {
		txn_refuse(s, t, 452, "4.3.1", "Insufficient system storage");
		return FALSE;
	}
	if (t->io_failed) {
		txn_refuse(s, t, 451, "4.3.0", "Error: queue file write error; try again later");
		return FALSE;
	}
	return TRUE;
}

typedef struct {
	Txn *txn;
	gboolean ok;
	GError *error;
} CommitJob;

static void
commit_work(gpointer data)
{
	CommitJob *job = data;

	job->ok = imta_enqueue_commit(job->txn->enq, &job->error);
}

static char *
commit_first_id(const char *const *files)
{
	char id[IMTA_QUEUE_ID_LENGTH + 1];
	g_autofree char *base = NULL;
	guint attempts;
	gboolean held;

	if (files == NULL || files[0] == NULL)
		return g_strdup("?");
	base = g_path_get_basename(files[0]);
	return imta_queue_parse_name(base, &attempts, id, &held) ? g_strdup(id) : g_strdup("?");
}

static void
commit_log(SmtpSession *s, const Txn *t)
{
	const char *const *files = imta_enqueue_files(t->enq);
	g_autofree char *list = g_strjoinv(" ", (char **)files);

	session_log(s, IMTA_LOG_NOTICE,
		    "message %s from <%s>: %u recipient%s, %" G_GUINT64_FORMAT
		    " bytes, source %s, queued as %s", t->id, t->from, t->rcpts->len,
		    t->rcpts->len == 1 ? "" : "s", t->size, s->policy.source->name, list);
}

static void
commit_done(ImtaConn *conn, gpointer session, gpointer data)
{
	SmtpSession *s = session;
	CommitJob *job = data;
	Txn *t = job->txn;

	s->busy = FALSE;
	if (job->ok) {
		g_autofree char *id = commit_first_id(imta_enqueue_files(t->enq));

		commit_log(s, t);
		s->messages++;
		session_reply(s, 250, "2.0.0", "Ok: queued as %s", id);
	} else {
		gboolean full = session_disk_full(job->error);

		session_log(s, IMTA_LOG_ERROR, "message %s not queued: %s", t->id,
			    job->error->message);
		if (full)
			txn_refuse(s, t, 452, "4.3.1", "Insufficient system storage");
		else
			txn_refuse(s, t, 451, "4.3.0", "Error: queue file write error; "
				   "try again later");
	}
	g_clear_error(&job->error);
	txn_free(t);
	g_free(job);
	session_pump(s);
}

/* The last byte of the content is in: refuse, or commit and answer once
 * the message is on disk. */
static void
content_end(SmtpSession *s)
{
	Txn *t = s->txn;
	CommitJob *job;

	s->state = STATE_COMMAND;
	imta_conn_set_timeout(s->conn, (guint)s->options->command_timeout);
	session_free_scratch(s);
	if (!content_verdict(s)) {
		session_reset_txn(s);
		return;
	}
	if (t->discard || t->queued == 0) {
		session_log(s, IMTA_LOG_NOTICE, "message %s from <%s> discarded as the access "
			    "tables said", t->id, t->from);
		s->messages++;
		session_reply(s, 250, "2.0.0", "Ok: queued as %s", t->id);
		session_reset_txn(s);
		return;
	}
	job = g_new0(CommitJob, 1);
	job->txn = g_steal_pointer(&s->txn);
	s->busy = TRUE;
	imta_conn_run(s->conn, commit_work, commit_done, job);
}

/* ---- DATA ------------------------------------------------------------ */

static void
cmd_data(SmtpSession *s)
{
	Txn *t = s->txn;

	if (t == NULL) {
		session_reply(s, 503, "5.5.1", "Error: need MAIL command");
		return;
	}
	if (t->bdat) {
		session_reply(s, 503, "5.5.1", "Error: DATA after BDAT");
		return;
	}
	if (t->rcpts->len == 0) {
		session_reply(s, 554, "5.5.1", "Error: no valid recipients");
		return;
	}
	content_start(s, FALSE);
	s->state = STATE_DATA;
	session_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
}

static void
session_vanished(SmtpSession *s)
{
	if (s->txn != NULL && s->txn->content)
		session_log(s, IMTA_LOG_NOTICE, "message %s: the client left during the "
			    "content; nothing was queued", s->txn->id);
	session_close(s);
}

static gboolean
session_data_input(SmtpSession *s)
{
	gsize len, used;
	const char *in = imta_conn_peek(s->conn, &len);
	gboolean done = FALSE;

	if (len == 0) {
		if (imta_conn_eof(s->conn))
			session_vanished(s);
		return FALSE;
	}
	g_string_truncate(s->scratch, 0);
	used = imta_smtp_data_reader_feed(&s->txn->reader, in, len, s->scratch, &done);
	imta_conn_consume(s->conn, used);
	content_write(s, s->scratch->str, s->scratch->len);
	if (done)
		content_end(s);
	return used > 0 || done;
}

/* ---- BDAT (RFC 3030) ------------------------------------------------- */

/* Chunk bytes to LF line ends; a CR at the end of a chunk waits for the
 * next one. */
static void
bdat_convert(SmtpSession *s, const char *in, gsize len, gboolean last_piece)
{
	Txn *t = s->txn;
	GString *out = s->scratch;

	g_string_truncate(out, 0);
	for (gsize i = 0; i < len; i++) {
		if (t->cr_pending && in[i] != '\n')
			g_string_append_c(out, '\r');
		t->cr_pending = in[i] == '\r';
		if (!t->cr_pending)
			g_string_append_c(out, in[i]);
	}
	if (last_piece && t->cr_pending) {
		g_string_append_c(out, '\r');
		t->cr_pending = FALSE;
	}
	content_write(s, out->str, out->len);
}

static void
bdat_chunk_end(SmtpSession *s)
{
	Txn *t = s->txn;

	s->state = STATE_COMMAND;
	if (s->chunk_refusal.code != 0) {
		imta_conn_set_timeout(s->conn, (guint)s->options->command_timeout);
		session_reply_verdict(s, &s->chunk_refusal);
		smtp_verdict_clear(&s->chunk_refusal);
		return;
	}
	if (s->chunk_last) {
		if (t->cr_pending)
			bdat_convert(s, "", 0, TRUE);
		content_end(s);
		return;
	}
	imta_conn_set_timeout(s->conn, (guint)s->options->command_timeout);
	/* A chunk that broke a limit ends the transaction at once (RFC 3030:
	 * the client sends no more chunks after an error). */
	if (t->too_big || t->io_failed) {
		content_verdict(s);
		session_reset_txn(s);
		return;
	}
	session_reply(s, 250, "2.0.0", "Ok: %" G_GUINT64_FORMAT " octets received",
		      s->chunk_size);
}

static gboolean
session_bdat_input(SmtpSession *s)
{
	gsize len, take;
	const char *in;

	if (s->chunk_left == 0) {
		bdat_chunk_end(s);
		return TRUE;
	}
	in = imta_conn_peek(s->conn, &len);
	if (len == 0) {
		if (imta_conn_eof(s->conn))
			session_vanished(s);
		return FALSE;
	}
	take = (gsize)MIN((guint64)len, s->chunk_left);
	if (s->chunk_refusal.code == 0)
		bdat_convert(s, in, take, FALSE);
	imta_conn_consume(s->conn, take);
	s->chunk_left -= take;
	return TRUE;
}

/* Why this BDAT cannot add to a transaction (verdict code 0: it can). */
static void
bdat_refusal(SmtpSession *s, SmtpVerdict *verdict)
{
	Txn *t = s->txn;

	if (session_needs_tls(s))
		smtp_verdict_set(verdict, 530, "5.7.0", "Must issue a STARTTLS command first");
	else if (t == NULL)
		smtp_verdict_set(verdict, 503, "5.5.1", "Error: need MAIL command");
	else if (t->content && !t->bdat)
		smtp_verdict_set(verdict, 503, "5.5.1", "Error: BDAT after DATA");
	else if (t->rcpts->len == 0)
		smtp_verdict_set(verdict, 554, "5.5.1", "Error: no valid recipients");
}

static void
cmd_bdat(SmtpSession *s, const ImtaSmtpCommand *cmd)
{
	smtp_verdict_clear(&s->chunk_refusal);
	bdat_refusal(s, &s->chunk_refusal);
	/* Even a refused chunk is read to its end: its bytes are not
	 * commands. */
	s->chunk_size = cmd->chunk_size;
	s->chunk_left = cmd->chunk_size;
	s->chunk_last = cmd->last;
	s->state = STATE_BDAT;
	if (s->chunk_refusal.code == 0 && !s->txn->content)
		content_start(s, TRUE);
	else if (s->scratch == NULL)
		s->scratch = g_string_sized_new(4096);
	imta_conn_set_timeout(s->conn, (guint)s->options->data_timeout);
}

/* ---- STARTTLS and AUTH ----------------------------------------------- */

static void
cmd_starttls(SmtpSession *s)
{
	g_autofree char *why = NULL;
	const char *next = s->policy.source->tlsswitchchannel;

	if (imta_conn_tls_active(s->conn)) {
		session_reply(s, 503, "5.5.1", "Error: TLS already active");
		return;
	}
	if (!smtp_policy_tls_offered(&s->policy)) {
		session_reply(s, 502, "5.5.1", "Error: command not implemented");
		return;
	}
	if (!imta_conn_tls_available(s->conn)) {
		session_reply(s, 454, "4.7.0", "TLS not available due to temporary reason");
		return;
	}
	if (s->txn != NULL) {
		session_reply(s, 503, "5.5.1", "Error: MAIL transaction in progress");
		return;
	}
	session_reply(s, 220, "2.0.0", "Ready to start TLS");
	if (!imta_conn_start_tls(s->conn)) {
		session_log(s, IMTA_LOG_ERROR, "STARTTLS: the TLS handshake could not start");
		session_close(s);
		return;
	}
	/* RFC 3207 4.2: forget what the client said in clear. */
	s->tls_starting = TRUE;
	g_clear_pointer(&s->helo, g_free);
	s->esmtp = FALSE;
	if (next != NULL && !smtp_policy_switch_to(&s->policy, next, &why))
		session_log(s, IMTA_LOG_WARNING, "tlsswitchchannel %s: %s", next, why);
}

static void
auth_done(ImtaConn *conn, gpointer session, gpointer data)
{
	SmtpSession *s = session;
	SmtpAuthCheck *check = data;
	const char *next = s->policy.source->saslswitchchannel;
	g_autofree char *why = NULL;

	s->busy = FALSE;
	if (check->status == IMTA_DIR_FOUND) {
		s->auth_user = g_steal_pointer(&check->user);
		if (next != NULL && !smtp_policy_switch_to(&s->policy, next, &why))
			session_log(s, IMTA_LOG_WARNING, "saslswitchchannel %s: %s", next, why);
		session_log(s, IMTA_LOG_NOTICE, "authenticated as %s; source channel %s",
			    s->auth_user, s->policy.source->name);
		session_reply(s, 235, "2.7.0", "Authentication successful");
	} else if (check->status == IMTA_DIR_NOT_FOUND) {
		session_log(s, IMTA_LOG_NOTICE, "authentication failed for %s%s%s", check->user,
			    check->error != NULL ? ": " : "",
			    check->error != NULL ? check->error : "");
		session_reply(s, 535, "5.7.8", "Authentication credentials invalid");
	} else {
		session_log(s, IMTA_LOG_WARNING, "authentication of %s failed temporarily: %s",
			    check->user, check->error != NULL ? check->error : "unknown reason");
		session_reply_uncounted(s, 454, "4.7.0", "Temporary authentication failure");
	}
	smtp_auth_check_free(check);
	session_pump(s);
}

static void
auth_result(SmtpSession *s, const SmtpAuthResult *result)
{
	SmtpAuthCheck *check;

	switch (result->step) {
	case SMTP_AUTH_CHALLENGE:
		/* "334 " and the challenge, even an empty one (RFC 4954 4). */
		s->state = STATE_AUTH;
		imta_conn_printf(s->conn, "334 %s\r\n", result->challenge);
		return;
	case SMTP_AUTH_REFUSE:
		s->state = STATE_COMMAND;
		g_clear_pointer(&s->auth, smtp_auth_free);
		session_reply(s, result->code, result->enhanced, "%s", result->text);
		return;
	case SMTP_AUTH_CHECK:
		s->state = STATE_COMMAND;
		check = smtp_auth_check_new(s->config->directory, g_steal_pointer(&s->auth));
		s->busy = TRUE;
		imta_conn_run(s->conn, smtp_auth_check_work, auth_done, check);
		return;
	}
}

static void
cmd_auth(SmtpSession *s, const ImtaSmtpCommand *cmd)
{
	SmtpAuthResult result = { 0 };

	if (!smtp_policy_sasl_offered(&s->policy)) {
		session_reply(s, 503, "5.5.1", "Error: authentication not enabled");
		return;
	}
	if (!s->esmtp) {
		session_reply(s, 503, "5.5.1", "Error: send EHLO first");
		return;
	}
	if (s->auth_user != NULL) {
		session_reply(s, 503, "5.5.1", "Error: already authenticated");
		return;
	}
	if (s->txn != NULL) {
		session_reply(s, 503, "5.5.1", "Error: MAIL transaction in progress");
		return;
	}
	if (!imta_conn_tls_active(s->conn)) {
		session_reply(s, 538, "5.7.11",
			      "Encryption required for requested authentication mechanism");
		return;
	}
	if (!smtp_auth_mechanism_known(cmd->arg)) {
		session_reply(s, 504, "5.5.4", "Unrecognized authentication type");
		return;
	}
	s->auth = smtp_auth_start(cmd->arg, cmd->arg2, &result);
	auth_result(s, &result);
}

static gboolean
session_auth_input(SmtpSession *s)
{
	SmtpAuthResult result = { 0 };
	const char *line;
	gsize len;

	switch (imta_conn_read_line(s->conn, SMTP_AUTH_LINE_MAX, &line, &len)) {
	case IMTA_CONN_NEED_MORE:
		return FALSE;
	case IMTA_CONN_EOF:
		session_vanished(s);
		return FALSE;
	case IMTA_CONN_TOO_LONG:
		s->state = STATE_COMMAND;
		g_clear_pointer(&s->auth, smtp_auth_free);
		session_reply(s, 500, "5.5.6", "Authentication exchange line is too long");
		return TRUE;
	case IMTA_CONN_LINE:
		break;
	}
	if (s->debug)
		session_log(s, IMTA_LOG_INFO, "< (an AUTH response)");
	smtp_auth_step(s->auth, line, len, &result);
	auth_result(s, &result);
	return TRUE;
}

/* ---- VRFY, EXPN, HELP ------------------------------------------------ */

static void
lookup_done(ImtaConn *conn, gpointer session, gpointer data)
{
	SmtpSession *s = session;
	SmtpLookup *lookup = data;

	s->busy = FALSE;
	session_reply_verdict(s, &lookup->verdict);
	smtp_lookup_free(lookup);
	session_pump(s);
}

static void
session_lookup(SmtpSession *s, const char *argument, gboolean expand)
{
	SmtpLookup *lookup = g_new0(SmtpLookup, 1);

	lookup->config = s->config;
	lookup->source = s->policy.source;
	lookup->argument = g_strdup(argument);
	lookup->expand = expand;
	lookup->limit = (guint)s->options->expand_limit;
	s->busy = TRUE;
	imta_conn_run(s->conn, smtp_lookup_work, lookup_done, lookup);
}

static void
cmd_vrfy(SmtpSession *s, const ImtaSmtpCommand *cmd)
{
	SmtpVrfyMode mode = smtp_policy_vrfy_mode(s->policy.source);

	if (mode == SMTP_VRFY_HIDE || (mode == SMTP_VRFY_DEFAULT && s->options->hide_verify)) {
		session_reply(s, 252, "2.5.2", "Cannot VRFY user; try RCPT to attempt delivery");
		return;
	}
	if (cmd->arg == NULL || cmd->arg[0] == '\0') {
		session_reply(s, 501, "5.5.4", "Syntax: VRFY address");
		return;
	}
	session_lookup(s, cmd->arg, FALSE);
}

static void
cmd_expn(SmtpSession *s, const ImtaSmtpCommand *cmd)
{
	SmtpExpnMode mode = smtp_policy_expn_mode(s->policy.source);

	if (mode == SMTP_EXPN_DISABLE ||
	    (mode == SMTP_EXPN_DEFAULT && s->options->disable_expand)) {
		session_reply(s, 502, "5.5.1", "EXPN command is disabled");
		return;
	}
	if (cmd->arg == NULL || cmd->arg[0] == '\0') {
		session_reply(s, 501, "5.5.4", "Syntax: EXPN list");
		return;
	}
	session_lookup(s, cmd->arg, TRUE);
}

static void
cmd_help(SmtpSession *s)
{
	session_reply(s, 214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT "
		      "VRFY EXPN HELP STARTTLS AUTH\nSee RFC 5321 and tcp_smtp(8)");
}

/* ---- commands ------------------------------------------------------------ */

/* May the session go on with a command?  The error limit and draining end
 * it at a command boundary. */
static gboolean
session_gate(SmtpSession *s)
{
	if (s->errors >= (guint64)s->options->rejections_per_session) {
		session_log(s, IMTA_LOG_NOTICE, "closing after %u errors", s->errors);
		session_close_with(s, "4.7.0", "Error: too many errors");
		return FALSE;
	}
	if (s->draining || imta_conn_draining(s->conn)) {
		session_shutting_down(s);
		return FALSE;
	}
	return TRUE;
}

/* An HTTP request or header, sent by a browser or a proxy abused to
 * reach the port: not a mail client, end it at once. */
static gboolean
session_non_smtp(const char *line, gsize len)
{
	static const char *const methods[] = { "GET ", "POST ", "CONNECT ", "HEAD ", "PUT ", NULL };
	gsize i;

	for (guint m = 0; methods[m] != NULL; m++)
		if (len >= strlen(methods[m]) && memcmp(line, methods[m], strlen(methods[m])) == 0)
			return TRUE;
	for (i = 0; i < len && (g_ascii_isalnum(line[i]) || line[i] == '-'); i++)
		;
	return i > 0 && i < len && line[i] == ':';
}

/* Commands allowed before STARTTLS on a musttlsserver channel. */
static gboolean
session_allowed_before_tls(ImtaSmtpVerb verb)
{
	return verb == IMTA_SMTP_EHLO || verb == IMTA_SMTP_HELO || verb == IMTA_SMTP_STARTTLS ||
	       verb == IMTA_SMTP_NOOP || verb == IMTA_SMTP_RSET || verb == IMTA_SMTP_QUIT ||
	       verb == IMTA_SMTP_HELP;
}

static void
session_dispatch(SmtpSession *s, const ImtaSmtpCommand *cmd)
{
	/* BDAT decides for itself: a refused chunk must still be read. */
	if (session_needs_tls(s) && cmd->verb != IMTA_SMTP_BDAT &&
	    !session_allowed_before_tls(cmd->verb)) {
		session_reply(s, 530, "5.7.0", "Must issue a STARTTLS command first");
		return;
	}
	switch (cmd->verb) {
	case IMTA_SMTP_EHLO:
		cmd_ehlo(s, cmd, TRUE);
		break;
	case IMTA_SMTP_HELO:
		cmd_ehlo(s, cmd, FALSE);
		break;
	case IMTA_SMTP_MAIL:
		cmd_mail(s, cmd);
		break;
	case IMTA_SMTP_RCPT:
		cmd_rcpt(s, cmd);
		break;
	case IMTA_SMTP_DATA:
		cmd_data(s);
		break;
	case IMTA_SMTP_BDAT:
		cmd_bdat(s, cmd);
		break;
	case IMTA_SMTP_RSET:
		session_reset_txn(s);
		session_reply(s, 250, "2.0.0", "Ok");
		break;
	case IMTA_SMTP_NOOP:
		session_reply(s, 250, "2.0.0", "Ok");
		break;
	case IMTA_SMTP_QUIT:
		session_reply(s, 221, "2.0.0", "%s closing connection", s->hostname);
		session_close(s);
		break;
	case IMTA_SMTP_VRFY:
		cmd_vrfy(s, cmd);
		break;
	case IMTA_SMTP_EXPN:
		cmd_expn(s, cmd);
		break;
	case IMTA_SMTP_HELP:
		cmd_help(s);
		break;
	case IMTA_SMTP_STARTTLS:
		cmd_starttls(s);
		break;
	case IMTA_SMTP_AUTH:
		cmd_auth(s, cmd);
		break;
	case IMTA_SMTP_LHLO:
	case IMTA_SMTP_UNKNOWN:
	default:
		session_reply(s, 500, "5.5.1", "Error: command not recognized");
		break;
	}
}

static void
session_command(SmtpSession *s, const char *line, gsize len)
{
	ImtaSmtpCommand cmd = { 0 };
	ImtaSmtpError err = { 0 };
	ImtaSmtpOffer offer;

	if (!session_gate(s))
		return;
	if (s->debug && len >= 5 && g_ascii_strncasecmp(line, "AUTH ", 5) == 0)
		session_log(s, IMTA_LOG_INFO, "< AUTH ...");
	else if (s->debug)
		session_log(s, IMTA_LOG_INFO, "< %.*s", (int)MIN(len, 200), line);
	if (session_non_smtp(line, len)) {
		session_log(s, IMTA_LOG_NOTICE, "non-SMTP command from the client; closing");
		session_close_with(s, "4.7.0", "Error: non-SMTP command");
		return;
	}
	session_offer(s, &offer);
	if (!imta_smtp_parse_command(line, len, &offer, &cmd, &err)) {
		session_reply(s, err.code, err.enhanced, "%s",
			      err.text != NULL ? err.text : "Syntax error");
		imta_smtp_error_clear(&err);
		imta_smtp_command_clear(&cmd);
		return;
	}
	session_dispatch(s, &cmd);
	imta_smtp_command_clear(&cmd);
}

static gboolean
session_command_input(SmtpSession *s)
{
	const char *line;
	gsize len;

	/* IMTA_SMTP_COMMAND_LINE_MAX counts the CR LF. */
	switch (imta_conn_read_line(s->conn, IMTA_SMTP_COMMAND_LINE_MAX - 2, &line, &len)) {
	case IMTA_CONN_NEED_MORE:
		return FALSE;
	case IMTA_CONN_EOF:
		session_vanished(s);
		return FALSE;
	case IMTA_CONN_TOO_LONG:
		if (session_gate(s))
			session_reply(s, 500, "5.5.2", "Line too long");
		return TRUE;
	case IMTA_CONN_LINE:
		session_command(s, line, len);
		return TRUE;
	}
	return FALSE;
}

/* Take every buffered command or content byte the session can use now. */
static void
session_pump(SmtpSession *s)
{
	gboolean more = TRUE;

	while (more && !s->busy && !s->tls_starting) {
		if (imta_conn_output_pending(s->conn) > IMTA_CONN_OUTPUT_HIGH)
			return;
		switch (s->state) {
		case STATE_COMMAND:
			more = session_command_input(s);
			break;
		case STATE_DATA:
			more = session_data_input(s);
			break;
		case STATE_BDAT:
			more = session_bdat_input(s);
			break;
		case STATE_AUTH:
			more = session_auth_input(s);
			break;
		case STATE_STARTING:
		case STATE_CLOSED:
			return;
		}
	}
}

/* ---- the connection's callbacks ------------------------------------------ */

typedef struct {
	SmtpSession *session;
	SmtpClientCheck *check;
} OpenJob;

static void
open_work(gpointer data)
{
	OpenJob *job = data;

	smtp_client_check_work(job->check);
}

static void
open_done(ImtaConn *conn, gpointer unused, gpointer data)
{
	OpenJob *job = data;
	SmtpSession *s = job->session;
	SmtpClientCheck *check = job->check;

	s->busy = FALSE;
	for (guint i = 0; i < check->log->len; i++)
		session_log(s, IMTA_LOG_INFO, "%s", (const char *)check->log->pdata[i]);
	s->client_name = g_steal_pointer(&check->client_name);
	if (check->switch_to != NULL) {
		s->policy.source = check->switch_to;
		session_log(s, IMTA_LOG_INFO, "switchchannel: source channel %s",
			    check->switch_to->name);
	}
	smtp_client_check_free(check);
	g_free(job);
	if (s->draining || imta_conn_draining(conn)) {
		session_shutting_down(s);
		return;
	}
	session_greet(s);
	session_pump(s);
}

/* identnone* and identtcp*: "numeric" looks no name up; "limited" looks
 * it up for the Received: header only. */
static void
session_ident(const ImtaChannel *channel, gboolean *want_name_r, gboolean *name_switches_r)
{
	const char *ident = channel->ident;

	*want_name_r = ident == NULL || !g_str_has_suffix(ident, "numeric");
	*name_switches_r = ident == NULL || !g_str_has_suffix(ident, "limited");
}

static void
session_start(SmtpSession *s)
{
	const ImtaChannel *service = s->policy.service;
	OpenJob *job;
	gboolean want_name, name_switches;

	session_ident(service, &want_name, &name_switches);
	if (!want_name && service->switchchannel != IMTA_SWITCH_SWITCH) {
		session_greet(s);
		return;
	}
	job = g_new0(OpenJob, 1);
	job->session = s;
	job->check = g_new0(SmtpClientCheck, 1);
	job->check->config = s->config;
	job->check->service = service;
	job->check->client_ip = g_strdup(s->client_ip);
	job->check->want_name = want_name;
	job->check->name_switches = name_switches;
	job->check->log = g_ptr_array_new_with_free_func(g_free);
	s->busy = TRUE;
	imta_conn_run(s->conn, open_work, open_done, job);
}

static const char *
session_hostname(const ImtaConfig *config)
{
	if (config->tailor != NULL && config->tailor->hostname != NULL)
		return config->tailor->hostname;
	return g_get_host_name();
}

static gpointer
session_open(ImtaConn *conn)
{
	SmtpSession *s = g_new0(SmtpSession, 1);
	const ImtaChannel *channel = imta_conn_channel(conn);
	g_autoptr(GError) error = NULL;

	s->conn = conn;
	s->config = imta_conn_config(conn);
	s->state = STATE_STARTING;
	s->hostname = g_strdup(session_hostname(s->config));
	s->client_ip = g_strdup(imta_conn_remote_ip(conn));
	s->port_probe = g_strdup_printf("TCP|%s|%u|%s|%u", imta_conn_local_ip(conn),
					imta_conn_local_port(conn), s->client_ip,
					imta_conn_remote_port(conn));
	smtp_policy_init(&s->policy, s->config, channel);
	s->options = tcp_smtp_options_get(s->config, channel, &error);
	if (s->options == NULL) {
		session_log(s, IMTA_LOG_ERROR, "%s", error->message);
		s->options = NULL;
		static const char refusal[] = "421 4.3.5 Server configuration error\r\n";

		imta_conn_write(s->conn, refusal, sizeof refusal - 1);
		session_close(s);
		return s;
	}
	s->debug = channel->slave_debug && s->options->debug != 0;
	session_log(s, IMTA_LOG_INFO, "connection on channel %s", channel->name);
	imta_conn_set_timeout(conn, (guint)s->options->command_timeout);
	if (imta_conn_draining(conn)) {
		session_shutting_down(s);
		return s;
	}
	session_start(s);
	return s;
}

static void
session_input(ImtaConn *conn, gpointer session)
{
	SmtpSession *s = session;

	if (s->tls_starting && imta_conn_tls_active(conn))
		s->tls_starting = FALSE;
	session_pump(s);
	/* The client is gone and nothing it sent can be used any more. */
	if (s->state != STATE_CLOSED && !s->busy && !s->tls_starting && imta_conn_eof(conn)) {
		gsize len;

		imta_conn_peek(conn, &len);
		if (len == 0)
			session_vanished(s);
	}
}

static void
session_timeout(ImtaConn *conn, gpointer session)
{
	SmtpSession *s = session;

	/* A commit or lookup in progress answers when it is done. */
	if (s->busy || s->state == STATE_CLOSED)
		return;
	session_log(s, IMTA_LOG_NOTICE, "timeout %s",
		    s->state == STATE_DATA || s->state == STATE_BDAT ? "during the content"
								     : "waiting for a command");
	if (s->txn != NULL && s->txn->content)
		session_log(s, IMTA_LOG_NOTICE, "message %s: nothing was queued", s->txn->id);
	session_close_with(s, "4.4.2", "Error: timeout exceeded");
}

static void
session_drain(ImtaConn *conn, gpointer session)
{
	SmtpSession *s = session;

	s->draining = TRUE;
}

static void
session_free(ImtaConn *conn, gpointer session)
{
	SmtpSession *s = session;

	if (s == NULL)
		return;
	session_log(s, IMTA_LOG_INFO, "closed: %u message%s, %u error%s", s->messages,
		    s->messages == 1 ? "" : "s", s->errors, s->errors == 1 ? "" : "s");
	txn_free(s->txn);
	smtp_auth_free(s->auth);
	smtp_verdict_clear(&s->chunk_refusal);
	session_free_scratch(s);
	g_free(s->hostname);
	g_free(s->client_ip);
	g_free(s->client_name);
	g_free(s->port_probe);
	g_free(s->helo);
	g_free(s->auth_user);
	g_free(s);
}

const ImtaSlaveOps tcp_smtp_slave_ops = {
	.open = session_open,
	.input = session_input,
	.timeout = session_timeout,
	.drain = session_drain,
	.close = session_free,
};
