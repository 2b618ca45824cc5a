/*
 * server.c - the SMTP server session: what RFC 5321 and its extensions ask
 * of a server that queues mail, on the session engine of smtp_server.h.
 *
 * The engine takes the input, answers DATA, BDAT, RSET, NOOP and QUIT and
 * reads the content; this file decides: the greeting and the client
 * check, HELO and EHLO, the access checks of MAIL and RCPT (a recipient's
 * directory lookup runs on the blocking pool), STARTTLS and AUTH with the
 * channel switches they may cause, VRFY, EXPN and HELP, and the content's
 * way into the queue: it streams into the enqueue, and only the commit,
 * which syncs the disk, leaves the connection's thread before the one
 * reply.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <glib.h>

#include <imta/imta.h>
#include <imta/mail_log.h>
#include <imta/queue.h>
#include <imta/slave.h>
#include <imta/smtp.h>
#include <imta/smtp_server.h>

#include "auth.h"
#include "options.h"
#include "policy.h"
#include "server.h"

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
	guint64 size;              /* content bytes from the client, once complete */
	gint64 limit;              /* bytes; 0 = none */
} Txn;

typedef struct {
	ImtaSmtpServer *server;
	ImtaConn *conn;
	const ImtaConfig *config;
	const TcpSmtpOptions *options;
	SmtpPolicy policy;
	char *port_probe;          /* for the access tables */
	SmtpAuth *auth;            /* an exchange in progress */
} SmtpSession;

#define session_log(s, ...) imta_smtp_server_log((s)->server, __VA_ARGS__)
#define session_reply(s, ...) imta_smtp_server_reply((s)->server, __VA_ARGS__)

static void
session_reply_verdict(SmtpSession *s, const SmtpVerdict *verdict)
{
	session_reply(s, verdict->code, verdict->enhanced, "%s", verdict->text);
}

static const char *
session_auth_user(const SmtpSession *s)
{
	return imta_smtp_server_auth_user(s->server);
}

/* ---- the message log -------------------------------------------------- */

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
		.flags = imta_smtp_server_mail_log_flags(s->server),
		.source = s->policy.source->name,
		.destination = destination,
		.size = size,
		.from = from,
		.orcpt = orcpt,
		.to = to,
		.diagnostic = reply,
	});
}

/* Refuse the content of transaction `t` of `size` bytes: the reply, and a
 * J entry for each of its recipients. */
static void
txn_refuse(SmtpSession *s, const Txn *t, guint64 size, guint code, const char *enhanced,
	   const char *text)
{
	session_reply(s, code, enhanced, "%s", text);
	for (guint i = 0; i < t->rcpts->len; i++) {
		const TxnRecipient *rcpt = t->rcpts->pdata[i];
		g_autofree char *orcpt = g_strconcat("rfc822;", rcpt->given, NULL);

		session_mail_log_refused(s, t->from, rcpt->address, orcpt, rcpt->channel->name,
					 (gint64)size, code, enhanced, text);
	}
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
txn_free(gpointer p)
{
	Txn *t = p;

	if (t == NULL)
		return;
	imta_enqueue_free(t->enq);
	g_free(t->from);
	g_ptr_array_unref(t->rcpts);
	g_hash_table_unref(t->seen);
	g_free(t);
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
session_offer(ImtaSmtpServer *server, gpointer session, ImtaSmtpOffer *offer)
{
	SmtpSession *s = session;
	gboolean esmtp = imta_smtp_server_esmtp(server);

	offer->esmtp = esmtp;
	offer->dsn = TRUE;
	offer->eightbitmime = TRUE;
	offer->auth = esmtp && session_auth_offered_now(s);
	offer->max_size = smtp_policy_message_limit(&s->policy);
}

static char *
session_greeting(ImtaSmtpServer *server, gpointer session)
{
	SmtpSession *s = session;
	const char *addition = s->options->banner_addition;

	return g_strdup_printf("%s ESMTP%s%s", imta_smtp_server_hostname(server),
			       addition != NULL ? " " : "", addition != NULL ? addition : "");
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
	imta_smtp_server_reset(s->server);
	imta_smtp_server_set_helo(s->server, cmd->arg, esmtp);
	text = g_string_new(imta_smtp_server_hostname(s->server));
	if (!esmtp) {
		session_reply(s, 250, NULL, "%s", text->str);
		return;
	}
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
	const char *helo = imta_smtp_server_helo(s->server);

	return g_strdup_printf("SMTP/%s", helo != NULL ? helo : "");
}

static void
cmd_mail(ImtaSmtpServer *server, gpointer session, const ImtaSmtpCommand *cmd)
{
	SmtpSession *s = session;
	g_autofree char *app = session_app_info(s);
	g_autofree char *new_from = NULL;
	g_autofree char *note = NULL;
	SmtpVerdict verdict = { 0 };
	SmtpSenderProbe probe;
	Txn *t;

	if (smtp_policy_sasl_required(&s->policy) && session_auth_user(s) == NULL) {
		session_reply(s, 530, "5.7.0", "Authentication required");
		return;
	}
	if (imta_smtp_server_messages(s->server) >= (guint64)s->options->transactions_per_session) {
		imta_smtp_server_close_with(s->server, "4.7.0",
					    "Error: too many messages in this session");
		return;
	}
	probe = (SmtpSenderProbe){ s->port_probe, app, cmd->path,
				   session_auth_user(s) != NULL ? session_auth_user(s) : "" };
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
	imta_enqueue_set_mail_log_flags(t->enq, imta_smtp_server_mail_log_flags(s->server));
	if (cmd->envid != NULL)
		imta_enqueue_set_envid(t->enq, cmd->envid);
	if (cmd->ret != IMTA_RET_DEFAULT)
		imta_enqueue_set_ret(t->enq, cmd->ret);
	imta_smtp_server_begin(s->server, t, t->id);
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
rcpt_accept(SmtpSession *s, Txn *t, SmtpRcptCheck *check)
{
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
	imta_smtp_server_recipient_accepted(s->server, rcpt->given);
	session_reply(s, 250, "2.1.5", "Ok");
}

static void
rcpt_done(ImtaSmtpServer *server, gpointer session, gpointer data)
{
	SmtpSession *s = session;
	SmtpRcptCheck *check = data;
	Txn *t = imta_smtp_server_txn(server);

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
	} else if (t != NULL) {
		rcpt_accept(s, t, check);
	}
	smtp_rcpt_check_free(check);
}

static void
cmd_rcpt(ImtaSmtpServer *server, gpointer session, const ImtaSmtpCommand *cmd)
{
	SmtpSession *s = session;
	Txn *t = imta_smtp_server_txn(s->server);
	SmtpRcptCheck *check;

	if (t->rcpts->len >= (guint64)s->options->recipients_per_transaction) {
		imta_smtp_server_reply_uncounted(s->server, 452, "4.5.3",
						 "Error: too many recipients");
		session_mail_log_refused(s, t->from, cmd->path, cmd->orcpt, NULL, -1, 452,
					 "4.5.3", "Error: too many recipients");
		return;
	}
	check = g_new0(SmtpRcptCheck, 1);
	check->config = s->config;
	check->source = s->policy.source;
	check->relay_allowed = session_auth_user(s) != NULL ||
			       s->policy.source != s->policy.service;
	check->port_probe = g_strdup(s->port_probe);
	check->app_info = session_app_info(s);
	check->from = g_strdup(t->from);
	check->rcpt = session_qualify(s, cmd->path);
	check->orcpt = g_strdup(cmd->orcpt);
	check->declared_size = t->declared_size;
	check->notify = cmd->notify;
	check->log = g_ptr_array_new_with_free_func(g_free);
	imta_smtp_server_run(s->server, smtp_rcpt_check_work, rcpt_done, check);
}

/* ---- message content: into the queue ---------------------------------- */

static gboolean
session_disk_full(const GError *error)
{
	/* The queue reports file system errors with their strerror text. */
	return strstr(error->message, g_strerror(ENOSPC)) != NULL ||
	       strstr(error->message, g_strerror(EDQUOT)) != NULL;
}

/* The queue cannot take the message: refuse it with the reply that says
 * whether retrying soon may help. */
static void
content_queue_failed(SmtpSession *s, const Txn *t, const GError *error)
{
	session_log(s, IMTA_LOG_ERROR, "message %s: %s", t->id, error->message);
	if (session_disk_full(error))
		imta_smtp_server_content_failed(s->server, 452, "4.3.1",
						"Insufficient system storage");
	else
		imta_smtp_server_content_failed(s->server, 451, "4.3.0", "Error: queue file "
						"write error; try again later");
}

/* The smallest blocklimit among the recipients' channels applies. */
static gint64
content_start(ImtaSmtpServer *server, gpointer session, gpointer txn)
{
	SmtpSession *s = session;
	Txn *t = txn;

	for (guint i = 0; i < t->rcpts->len; i++) {
		const TxnRecipient *rcpt = t->rcpts->pdata[i];
		gint64 limit = smtp_policy_channel_limit(s->config, rcpt->channel);

		if (limit > 0 && (t->limit == 0 || limit < t->limit))
			t->limit = limit;
	}
	return t->limit;
}

static void
content_write(ImtaSmtpServer *server, gpointer session, gpointer txn, const char *data,
	      gsize len)
{
	Txn *t = txn;
	g_autoptr(GError) error = NULL;

	if (t->discard)
		return;
	if (!imta_enqueue_write(t->enq, data, len, &error))
		content_queue_failed(session, t, error);
}

static void
content_refuse(ImtaSmtpServer *server, gpointer session, gpointer txn, guint64 size, guint code,
	       const char *enhanced, const char *text)
{
	txn_refuse(session, txn, size, code, enhanced, text);
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
commit_done(ImtaSmtpServer *server, gpointer session, gpointer data)
{
	SmtpSession *s = session;
	CommitJob *job = data;
	Txn *t = job->txn;

	if (job->ok) {
		g_autofree char *id = commit_first_id(imta_enqueue_files(t->enq));

		imta_smtp_server_count_message(server);
		session_reply(s, 250, "2.0.0", "Ok: queued as %s", id);
		/* The client hears of its message before the logs and the
		 * job controller do. */
		imta_conn_flush(s->conn);
		commit_log(s, t);
		imta_enqueue_report(t->enq);
	} else {
		session_log(s, IMTA_LOG_ERROR, "message %s not queued: %s", t->id,
			    job->error->message);
		if (session_disk_full(job->error))
			txn_refuse(s, t, t->size, 452, "4.3.1", "Insufficient system storage");
		else
			txn_refuse(s, t, t->size, 451, "4.3.0", "Error: queue file write error; "
				   "try again later");
	}
	g_clear_error(&job->error);
	txn_free(t);
	g_free(job);
}

/* The content is in and passed the checks: commit, and answer once the
 * message is on disk. */
static void
content_end(ImtaSmtpServer *server, gpointer session, gpointer txn, guint64 size)
{
	SmtpSession *s = session;
	Txn *t = txn;
	CommitJob *job;

	t->size = size;
	if (t->discard || t->queued == 0) {
		session_log(s, IMTA_LOG_NOTICE, "message %s from <%s> discarded as the access "
			    "tables said", t->id, t->from);
		imta_smtp_server_count_message(server);
		session_reply(s, 250, "2.0.0", "Ok: queued as %s", t->id);
		txn_free(t);
		return;
	}
	job = g_new0(CommitJob, 1);
	job->txn = t;
	imta_enqueue_hold_reports(t->enq);
	imta_smtp_server_run(server, commit_work, commit_done, job);
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
	if (!imta_smtp_server_start_tls(s->server))
		return;
	if (next != NULL && !smtp_policy_switch_to(&s->policy, next, &why))
		session_log(s, IMTA_LOG_WARNING, "tlsswitchchannel %s: %s", next, why);
}

static void
auth_done(ImtaSmtpServer *server, gpointer session, gpointer data)
{
	SmtpSession *s = session;
	SmtpAuthCheck *check = data;
	const char *next = s->policy.source->saslswitchchannel;
	g_autofree char *why = NULL;

	if (check->status == IMTA_DIR_FOUND) {
		imta_smtp_server_set_auth_user(server, g_steal_pointer(&check->user));
		if (next != NULL && !smtp_policy_switch_to(&s->policy, next, &why))
			session_log(s, IMTA_LOG_WARNING, "saslswitchchannel %s: %s", next, why);
		session_log(s, IMTA_LOG_NOTICE, "authenticated as %s; source channel %s",
			    session_auth_user(s), s->policy.source->name);
		session_reply(s, 235, "2.7.0", "Authentication successful");
	} else if (check->status == IMTA_DIR_NOT_FOUND) {
		session_log(s, IMTA_LOG_NOTICE, "authentication failed for %s%s%s", check->user,
			    check->error != NULL ? ": " : "",
			    check->error != NULL ? check->error : "");
		session_reply(s, 535, "5.7.8", "Authentication credentials invalid");
	} else {
		session_log(s, IMTA_LOG_WARNING, "authentication of %s failed temporarily: %s",
			    check->user, check->error != NULL ? check->error : "unknown reason");
		imta_smtp_server_reply_uncounted(server, 454, "4.7.0",
						 "Temporary authentication failure");
	}
	smtp_auth_check_free(check);
}

static void
auth_result(SmtpSession *s, const SmtpAuthResult *result)
{
	SmtpAuthCheck *check;

	switch (result->step) {
	case SMTP_AUTH_CHALLENGE:
		/* "334 " and the challenge, even an empty one (RFC 4954 4). */
		imta_smtp_server_own_input(s->server, TRUE);
		imta_conn_printf(s->conn, "334 %s\r\n", result->challenge);
		return;
	case SMTP_AUTH_REFUSE:
		imta_smtp_server_own_input(s->server, FALSE);
		g_clear_pointer(&s->auth, smtp_auth_free);
		session_reply(s, result->code, result->enhanced, "%s", result->text);
		return;
	case SMTP_AUTH_CHECK:
		imta_smtp_server_own_input(s->server, FALSE);
		check = smtp_auth_check_new(s->config->directory, g_steal_pointer(&s->auth));
		imta_smtp_server_run(s->server, smtp_auth_check_work, auth_done, check);
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
	if (!imta_smtp_server_esmtp(s->server)) {
		session_reply(s, 503, "5.5.1", "Error: send EHLO first");
		return;
	}
	if (session_auth_user(s) != NULL) {
		session_reply(s, 503, "5.5.1", "Error: already authenticated");
		return;
	}
	if (imta_smtp_server_txn(s->server) != NULL) {
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

/* A response line of the AUTH exchange. */
static gboolean
session_auth_input(ImtaSmtpServer *server, gpointer session)
{
	SmtpSession *s = session;
	SmtpAuthResult result = { 0 };
	const char *line;
	gsize len;

	switch (imta_conn_read_line(s->conn, SMTP_AUTH_LINE_MAX, &line, &len)) {
	case IMTA_CONN_NEED_MORE:
		return FALSE;
	case IMTA_CONN_EOF:
		imta_smtp_server_vanished(server);
		return FALSE;
	case IMTA_CONN_TOO_LONG:
		imta_smtp_server_own_input(server, FALSE);
		g_clear_pointer(&s->auth, smtp_auth_free);
		session_reply(s, 500, "5.5.6", "Authentication exchange line is too long");
		return TRUE;
	case IMTA_CONN_LINE:
		break;
	}
	if (imta_smtp_server_debug(server))
		session_log(s, IMTA_LOG_INFO, "< (an AUTH response)");
	smtp_auth_step(s->auth, line, len, &result);
	auth_result(s, &result);
	return TRUE;
}

/* ---- VRFY, EXPN, HELP ------------------------------------------------ */

static void
lookup_done(ImtaSmtpServer *server, gpointer session, gpointer data)
{
	SmtpLookup *lookup = data;

	session_reply_verdict(session, &lookup->verdict);
	smtp_lookup_free(lookup);
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
	imta_smtp_server_run(s->server, smtp_lookup_work, lookup_done, lookup);
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

/* ---- commands ------------------------------------------------------------ */

/* Commands allowed before STARTTLS on a musttlsserver channel. */
static gboolean
session_allowed_before_tls(ImtaSmtpVerb verb)
{
	return verb == IMTA_SMTP_EHLO || verb == IMTA_SMTP_HELO || verb == IMTA_SMTP_STARTTLS ||
	       verb == IMTA_SMTP_NOOP || verb == IMTA_SMTP_RSET || verb == IMTA_SMTP_QUIT ||
	       verb == IMTA_SMTP_HELP;
}

static gboolean
session_refuse(ImtaSmtpServer *server, gpointer session, const ImtaSmtpCommand *cmd,
	       ImtaSmtpServerRefusal *refusal)
{
	if (!session_needs_tls(session) || session_allowed_before_tls(cmd->verb))
		return FALSE;
	*refusal = (ImtaSmtpServerRefusal){ 530, "5.7.0", "Must issue a STARTTLS command first" };
	return TRUE;
}

static void
session_command(ImtaSmtpServer *server, gpointer session, const ImtaSmtpCommand *cmd)
{
	SmtpSession *s = session;

	switch (cmd->verb) {
	case IMTA_SMTP_EHLO:
		cmd_ehlo(s, cmd, TRUE);
		break;
	case IMTA_SMTP_HELO:
		cmd_ehlo(s, cmd, FALSE);
		break;
	case IMTA_SMTP_VRFY:
		cmd_vrfy(s, cmd);
		break;
	case IMTA_SMTP_EXPN:
		cmd_expn(s, cmd);
		break;
	case IMTA_SMTP_HELP:
		session_reply(s, 214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP "
			      "QUIT VRFY EXPN HELP STARTTLS AUTH\nSee RFC 5321 and tcp_smtp(8)");
		break;
	case IMTA_SMTP_STARTTLS:
		cmd_starttls(s);
		break;
	case IMTA_SMTP_AUTH:
		cmd_auth(s, cmd);
		break;
	default:
		session_reply(s, 500, "5.5.1", "Error: command not recognized");
		break;
	}
}

/* ---- the session: the greeting, then the client check ------------------ */

static void
open_done(ImtaSmtpServer *server, gpointer session, gpointer data)
{
	SmtpSession *s = session;
	SmtpClientCheck *check = data;

	for (guint i = 0; i < check->log->len; i++)
		session_log(s, IMTA_LOG_INFO, "%s", (const char *)check->log->pdata[i]);
	imta_smtp_server_set_client_name(server, check->client_name);
	if (check->switch_to != NULL) {
		s->policy.source = check->switch_to;
		session_log(s, IMTA_LOG_INFO, "switchchannel: source channel %s",
			    check->switch_to->name);
	}
	smtp_client_check_free(check);
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
session_start(ImtaSmtpServer *server, gpointer session)
{
	SmtpSession *s = session;
	const ImtaChannel *service = s->policy.service;
	SmtpClientCheck *check;
	gboolean want_name, name_switches;

	/* Greet first: the client's name and channel are needed only by its
	 * commands, which wait for the check, and the check (a DNS lookup,
	 * a rewrite) then overlaps the greeting's round trip. */
	if (!imta_smtp_server_greet(server))
		return;
	session_ident(service, &want_name, &name_switches);
	if (!want_name && service->switchchannel != IMTA_SWITCH_SWITCH)
		return;
	check = g_new0(SmtpClientCheck, 1);
	check->config = s->config;
	check->service = service;
	check->client_ip = g_strdup(imta_smtp_server_client_ip(server));
	check->want_name = want_name;
	check->name_switches = name_switches;
	check->log = g_ptr_array_new_with_free_func(g_free);
	imta_smtp_server_run(server, smtp_client_check_work, open_done, check);
}

static gpointer
session_open(ImtaSmtpServer *server, ImtaSmtpServerLimits *limits, GError **error)
{
	ImtaConn *conn = imta_smtp_server_conn(server);
	const ImtaChannel *channel = imta_smtp_server_channel(server);
	const TcpSmtpOptions *options;
	SmtpSession *s;

	options = tcp_smtp_options_get(imta_smtp_server_config(server), channel, error);
	if (options == NULL)
		return NULL;
	s = g_new0(SmtpSession, 1);
	s->server = server;
	s->conn = conn;
	s->config = imta_smtp_server_config(server);
	s->options = options;
	s->port_probe = g_strdup_printf("TCP|%s|%u|%s|%u", imta_conn_local_ip(conn),
					imta_conn_local_port(conn), imta_conn_remote_ip(conn),
					imta_conn_remote_port(conn));
	smtp_policy_init(&s->policy, s->config, channel);
	*limits = (ImtaSmtpServerLimits){
		.command_timeout = (guint)options->command_timeout,
		.data_timeout = (guint)options->data_timeout,
		.rejections = (guint)options->rejections_per_session,
		.max_received_lines = (guint)options->max_received_lines,
		.debug = channel->slave_debug && options->debug != 0,
	};
	session_log(s, IMTA_LOG_INFO, "connection on channel %s", channel->name);
	return s;
}

static void
session_free(ImtaSmtpServer *server, gpointer session)
{
	SmtpSession *s = session;

	smtp_auth_free(s->auth);
	g_free(s->port_probe);
	g_free(s);
}

static const ImtaSmtpServerHooks tcp_smtp_hooks = {
	.protocol = IMTA_SMTP_SERVER_SMTP,
	.refuse_non_smtp = TRUE,
	.open = session_open,
	.start = session_start,
	.greeting = session_greeting,
	.free = session_free,
	.offer = session_offer,
	.refuse = session_refuse,
	.mail = cmd_mail,
	.rcpt = cmd_rcpt,
	.command = session_command,
	.input = session_auth_input,
	.txn_free = txn_free,
	.content_start = content_start,
	.content_write = content_write,
	.content_refuse = content_refuse,
	.content_end = content_end,
};

static gpointer
tcp_smtp_open(ImtaConn *conn)
{
	return imta_smtp_server_open(conn, &tcp_smtp_hooks);
}

const ImtaSlaveOps tcp_smtp_slave_ops = IMTA_SMTP_SERVER_SLAVE_OPS(tcp_smtp_open);
