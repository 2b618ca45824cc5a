/*
 * server.c - the LMTP server session (RFC 2033): the relays' final hop into
 * this system's message store, on the session engine of smtp_server.h.
 *
 * The engine takes the input, answers DATA, BDAT, RSET, NOOP and QUIT and
 * reads the content; this file decides the rest.  Each RCPT is resolved
 * in the directory and checked against its quota on the worker's blocking
 * pool (the same store_delivery.h code as the ims-ms channel), and refused
 * at once when it cannot be delivered.  The content is spooled, with our
 * Received: header in front, to an unlinked file in the store's tmp
 * directory, so memory stays bounded; after the final dot (or BDAT LAST)
 * the store takes the message once per partition for every accepted
 * recipient, and only then does each recipient get its own reply, in RCPT
 * order: a 250 means the copy is on disk.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/imta.h>
#include <imta/mail_log.h>
#include <imta/queue.h>
#include <imta/slave.h>
#include <imta/smtp.h>
#include <imta/smtp_server.h>
#include <imta/store.h>
#include <imta/store_delivery.h>

#include "options.h"
#include "server.h"
#include "server_notice.h"

/* An accepted recipient. */
typedef struct {
	char *given;               /* as the client gave it */
	char *orcpt;               /* "rfc822;..." */
	guint notify;              /* NOTIFY= bits; 0 when not given */
	ImtaStoreRecipient rcpt;
} TxnRecipient;

/* One mail transaction, from MAIL to the replies after the content. */
typedef struct {
	char id[IMTA_QUEUE_ID_LENGTH + 1];
	char *from;
	gint64 declared_size;      /* SIZE=, -1 when not given */
	char *envid;               /* ENVID=, or NULL */
	ImtaRet ret;
	GPtrArray *rcpts;          /* TxnRecipient *, accepted ones */
	guint64 size;              /* content bytes from the client, once complete */
	int spool;                 /* unlinked spool file; -1 when none */
	gboolean spool_failed;     /* the spool took no more */
	guint64 spooled;           /* bytes in the spool */
} Txn;

typedef struct {
	ImtaSmtpServer *server;
	ImtaConn *conn;
	const ImtaConfig *config;
	const ImtaChannel *channel;
	const LmtpOptions *options;
	const char *hostname;
	ImtaStoreDelivery *delivery; /* opened by the first recipient's lookup */
} LmtpSession;

#define session_log(s, ...) imta_smtp_server_log((s)->server, __VA_ARGS__)
#define session_reply(s, ...) imta_smtp_server_reply((s)->server, __VA_ARGS__)

/* ---- replies and logs ------------------------------------------------- */

/* Trouble of this system (4.2.x, 4.3.x, 4.4.x: a full mailbox, a disk,
 * the directory) is not the client's error. */
static gboolean
session_client_error(guint code, const char *enhanced)
{
	return code >= 500 && code != 552;
}

/* A mail.log entry of the session's channel. */
static void
session_mail_log(LmtpSession *s, ImtaMailLogCode code, const Txn *t, const char *to,
		 const char *orcpt, gint64 size, const char *diagnostic)
{
	if (!imta_mail_log_enabled(s->channel->name))
		return;
	imta_mail_log_entry(&(ImtaMailLogEntry){
		.code = code,
		.flags = imta_conn_tls_active(s->conn) ? IMTA_MAIL_LOG_TLS : 0,
		.source = s->channel->name,
		.destination = code == IMTA_MAIL_LOG_REFUSED && to == NULL ? NULL
									   : s->channel->name,
		.queue_id = t != NULL && code != IMTA_MAIL_LOG_REFUSED ? t->id : NULL,
		.size = size,
		.from = t != NULL ? t->from : NULL,
		.orcpt = orcpt,
		.to = to,
		.diagnostic = diagnostic,
	});
}

/* ---- outcomes as replies ------------------------------------------------ */

/* A diagnostic "x.y.z text" as a reply: the code its status and
 * outcome call for (RFC 3463 subjects), the status, the text. */
typedef struct {
	guint code;
	char enhanced[16];
	const char *text;
} ServerReply;

static void
server_reply_of(ImtaOutcome outcome, const char *diagnostic, gboolean rcpt_time,
		ServerReply *reply_r)
{
	const char *space = diagnostic != NULL ? strchr(diagnostic, ' ') : NULL;
	gsize len = space != NULL ? (gsize)(space - diagnostic) : 0;
	const char *st;

	memset(reply_r, 0, sizeof *reply_r);
	if (len >= 5 && len < sizeof reply_r->enhanced && g_ascii_isdigit(diagnostic[0]) &&
	    diagnostic[1] == '.') {
		memcpy(reply_r->enhanced, diagnostic, len);
		reply_r->text = space + 1;
	} else {
		g_strlcpy(reply_r->enhanced, outcome == IMTA_OUTCOME_DELIVERED ? "2.0.0"
					      : outcome == IMTA_OUTCOME_FAILED ? "5.0.0" : "4.0.0",
			  sizeof reply_r->enhanced);
		reply_r->text = diagnostic != NULL ? diagnostic : "";
	}
	st = reply_r->enhanced;
	if (outcome == IMTA_OUTCOME_DELIVERED) {
		reply_r->code = 250;
	} else if (outcome == IMTA_OUTCOME_FAILED || st[0] == '5') {
		if (st[0] != '5')
			reply_r->enhanced[0] = '5';
		if (g_str_has_prefix(st + 1, ".1.3"))
			reply_r->code = 553;
		else if (g_str_has_prefix(st + 1, ".1."))
			reply_r->code = 550;
		else if (g_str_has_prefix(st + 1, ".2.") || g_str_has_prefix(st + 1, ".3.4"))
			reply_r->code = 552;
		else
			reply_r->code = rcpt_time ? 550 : 554;
	} else {
		if (st[0] != '4')
			reply_r->enhanced[0] = '4';
		if (g_str_has_prefix(st + 1, ".2.2") || g_str_has_prefix(st + 1, ".3.1"))
			reply_r->code = 452;
		else if (g_str_has_prefix(st + 1, ".2.1"))
			reply_r->code = 450;
		else
			reply_r->code = 451;
	}
}
/* ---- transactions ------------------------------------------------------- */

static void
txn_recipient_free(gpointer p)
{
	TxnRecipient *r = p;

	g_free(r->given);
	g_free(r->orcpt);
	imta_store_recipient_clear(&r->rcpt);
	g_free(r);
}

static void
txn_free(gpointer p)
{
	Txn *t = p;

	if (t == NULL)
		return;
	if (t->spool >= 0)
		close(t->spool);
	g_free(t->from);
	g_free(t->envid);
	g_ptr_array_unref(t->rcpts);
	g_free(t);
}

/* Every accepted recipient gets the same reply: the content was refused. */
static void
txn_refuse_all(LmtpSession *s, const Txn *t, guint64 size, guint code, const char *enhanced,
	       const char *text)
{
	g_autofree char *logged = g_strdup_printf("%u %s %s", code, enhanced, text);

	for (guint i = 0; i < t->rcpts->len; i++) {
		const TxnRecipient *r = t->rcpts->pdata[i];

		session_reply(s, code, enhanced, "<%s> %s", r->given, text);
		session_mail_log(s, IMTA_MAIL_LOG_REFUSED, t, r->given, r->orcpt, (gint64)size,
				 logged);
	}
}

/* The smallest of the size limits: option.dat BLOCK_LIMIT, the channel's
 * blocklimit and sourceblocklimit (in BLOCK_SIZE blocks); 0 = none. */
static gint64
session_size_limit(const LmtpSession *s)
{
	const ImtaOptionDat *options = s->config->options;
	gint64 block = options != NULL && options->block_size > 0 ? options->block_size : 1024;
	gint64 blocks[] = { options != NULL ? options->block_limit : 0, s->channel->blocklimit,
			    s->channel->sourceblocklimit };
	gint64 limit = 0;

	for (guint i = 0; i < G_N_ELEMENTS(blocks); i++) {
		gint64 bytes;

		if (blocks[i] <= 0)
			continue;
		bytes = blocks[i] > G_MAXINT64 / block ? G_MAXINT64 : blocks[i] * block;
		if (limit == 0 || bytes < limit)
			limit = bytes;
	}
	return limit;
}

/* ---- LHLO --------------------------------------------------------------- */

static gboolean
session_tls_offered_now(LmtpSession *s)
{
	return !imta_conn_tls_active(s->conn) && s->channel->tls_server != IMTA_TLS_NONE &&
	       imta_conn_tls_available(s->conn);
}

static void
session_offer(ImtaSmtpServer *server, gpointer session, ImtaSmtpOffer *offer)
{
	offer->esmtp = imta_smtp_server_helo(server) != NULL;
	offer->dsn = TRUE;
	offer->eightbitmime = TRUE;
	offer->max_size = session_size_limit(session);
}

static char *
session_greeting(ImtaSmtpServer *server, gpointer session)
{
	return g_strdup_printf("%s LMTP service ready", imta_smtp_server_hostname(server));
}

static void
cmd_lhlo(LmtpSession *s, const ImtaSmtpCommand *cmd)
{
	gint64 limit = session_size_limit(s);
	g_autoptr(GString) text = NULL;

	if (cmd->arg == NULL || !imta_smtp_valid_helo(cmd->arg)) {
		session_reply(s, 501, "5.5.4", "Syntax: LHLO hostname");
		return;
	}
	imta_smtp_server_reset(s->server);
	imta_smtp_server_set_helo(s->server, cmd->arg, TRUE);
	text = g_string_new(s->hostname);
	g_string_append(text, "\nPIPELINING\nENHANCEDSTATUSCODES\n8BITMIME");
	if (limit > 0)
		g_string_append_printf(text, "\nSIZE %" G_GINT64_FORMAT, limit);
	else
		g_string_append(text, "\nSIZE");
	g_string_append(text, "\nDSN\nCHUNKING");
	if (session_tls_offered_now(s))
		g_string_append(text, "\nSTARTTLS");
	session_reply(s, 250, NULL, "%s", text->str);
}

/* ---- MAIL --------------------------------------------------------------- */

static void
cmd_mail(ImtaSmtpServer *server, gpointer session, const ImtaSmtpCommand *cmd)
{
	LmtpSession *s = session;
	Txn *t;

	if (s->channel->tls_server == IMTA_TLS_MUST && !imta_conn_tls_active(s->conn)) {
		session_reply(s, 530, "5.7.0", "Must issue a STARTTLS command first");
		return;
	}
	if (imta_smtp_server_messages(s->server) >= (guint64)s->options->transactions_per_session) {
		imta_smtp_server_close_with(s->server, "4.7.0",
					    "Error: too many messages in this session");
		return;
	}
	t = g_new0(Txn, 1);
	imta_queue_new_id(t->id);
	t->from = g_strdup(cmd->path);
	t->declared_size = cmd->size;
	t->envid = g_strdup(cmd->envid);
	t->ret = cmd->ret;
	t->rcpts = g_ptr_array_new_with_free_func(txn_recipient_free);
	t->spool = -1;
	imta_smtp_server_begin(s->server, t, t->id);
	session_reply(s, 250, "2.1.0", "Ok");
}

/* ---- RCPT --------------------------------------------------------------- */

typedef struct {
	LmtpSession *session;      /* its delivery context only, while busy */
	ImtaQueue *queue;
	char *given;
	char *orcpt;
	gint64 size;               /* declared, or 0 */
	TxnRecipient *rcpt;
} RcptJob;

static void
rcpt_job_free(RcptJob *job)
{
	g_free(job->given);
	g_free(job->orcpt);
	if (job->rcpt != NULL)
		txn_recipient_free(job->rcpt);
	g_free(job);
}

/* The store recipient of an address: the store's own forms (with a '%'
 * or a host the directory does not know) as they are; a mail address of
 * the directory as its user's uid, hosted domain and sub-address
 * ("alice.smith+Lists@example.com" -> "alice%example.com+Lists@...").
 * NULL with *diagnostic_r when the directory did not answer. */
static char *
rcpt_store_address(ImtaDirectory *dir, const char *address, char **diagnostic_r)
{
	g_autoptr(ImtaDirEntry) entry = NULL;
	g_autoptr(GError) error = NULL;
	const char *at = strrchr(address, '@');
	const char *plus;
	GString *out;

	if (dir == NULL || at == NULL || memchr(address, '%', (gsize)(at - address)) != NULL)
		return g_strdup(address);
	switch (imta_directory_lookup_local(dir, address, &entry, &error)) {
	case IMTA_DIR_TEMPFAIL:
		*diagnostic_r = g_strdup_printf("4.4.3 directory unavailable: %s",
						error != NULL ? error->message : "no answer");
		return NULL;
	case IMTA_DIR_NOT_FOUND:
		return g_strdup(address);
	case IMTA_DIR_FOUND:
		break;
	}
	if (entry->kind != IMTA_DIR_USER || entry->uid == NULL)
		return g_strdup(address);
	out = g_string_new(entry->uid);
	if (entry->domain != NULL)
		g_string_append_printf(out, "%%%s", entry->domain);
	plus = memchr(address, '+', (gsize)(at - address));
	if (plus != NULL)
		g_string_append_len(out, plus, at - plus);
	g_string_append(out, at);
	return g_string_free(out, FALSE);
}
static void
rcpt_work(gpointer data)
{
	RcptJob *job = data;
	LmtpSession *s = job->session;
	g_autofree char *diagnostic = NULL;
	g_autofree char *address = NULL;
	ImtaStoreRecipient *r = &job->rcpt->rcpt;

	if (s->delivery == NULL) {
		s->delivery = imta_store_delivery_new(s->config, s->channel);
		imta_store_delivery_set_queue(s->delivery, job->queue);
	} else {
		imta_store_delivery_refresh(s->delivery);
	}
	address = rcpt_store_address(s->config->directory, job->given, &diagnostic);
	if (address == NULL) {
		r->outcome = IMTA_OUTCOME_RETRY;
		r->diagnostic = g_steal_pointer(&diagnostic);
		return;
	}
	if (imta_store_delivery_resolve(s->delivery, address, r))
		imta_store_delivery_check(s->delivery, r, job->size);
}

static void
rcpt_done(ImtaSmtpServer *server, gpointer session, gpointer data)
{
	LmtpSession *s = session;
	RcptJob *job = data;
	TxnRecipient *rcpt = job->rcpt;
	Txn *t = imta_smtp_server_txn(server);

	if (rcpt->rcpt.outcome != IMTA_OUTCOME_NONE) {
		ServerReply reply;
		g_autofree char *logged = NULL;

		server_reply_of(rcpt->rcpt.outcome, rcpt->rcpt.diagnostic, TRUE, &reply);
		session_log(s, IMTA_LOG_INFO, "recipient <%s> refused: %u %s %s", rcpt->given,
			    reply.code, reply.enhanced, reply.text);
		session_reply(s, reply.code, reply.enhanced, "<%s> %s", rcpt->given, reply.text);
		logged = g_strdup_printf("%u %s %s", reply.code, reply.enhanced, reply.text);
		session_mail_log(s, IMTA_MAIL_LOG_REFUSED, t, rcpt->given, rcpt->orcpt, -1,
				 logged);
	} else if (t != NULL) {
		g_ptr_array_add(t->rcpts, g_steal_pointer(&job->rcpt));
		imta_smtp_server_recipient_accepted(server, rcpt->given);
		session_reply(s, 250, "2.1.5", "Ok");
	}
	rcpt_job_free(job);
}

static void
cmd_rcpt(ImtaSmtpServer *server, gpointer session, const ImtaSmtpCommand *cmd)
{
	LmtpSession *s = session;
	Txn *t = imta_smtp_server_txn(s->server);
	RcptJob *job;

	if (t->rcpts->len >= (guint64)s->options->recipients_per_transaction) {
		session_reply(s, 452, "4.5.3", "Error: too many recipients");
		return;
	}
	job = g_new0(RcptJob, 1);
	job->session = s;
	job->queue = imta_conn_queue(s->conn);
	job->given = g_strdup(cmd->path);
	job->orcpt = cmd->orcpt != NULL ? g_strdup(cmd->orcpt)
					: g_strconcat("rfc822;", cmd->path, NULL);
	job->size = MAX(t->declared_size, 0);
	job->rcpt = g_new0(TxnRecipient, 1);
	job->rcpt->given = g_strdup(job->given);
	job->rcpt->orcpt = g_strdup(job->orcpt);
	job->rcpt->notify = cmd->notify;
	imta_smtp_server_run(s->server, rcpt_work, rcpt_done, job);
}

/* ---- message content: the spool ------------------------------------------ */

static void
spool_failed(LmtpSession *s, Txn *t, const char *format, ...) G_GNUC_PRINTF(3, 4);

/* The spool takes no more: the content is refused at its end. */
static void
spool_failed(LmtpSession *s, Txn *t, const char *format, ...)
{
	g_autofree char *why = NULL;
	va_list args;

	va_start(args, format);
	why = g_strdup_vprintf(format, args);
	va_end(args);
	t->spool_failed = TRUE;
	session_log(s, IMTA_LOG_ERROR, "message %s: %s", t->id, why);
	imta_smtp_server_content_failed(s->server, 451, "4.3.0", "Error: %s; try again later",
					why);
}

static void
spool_write(LmtpSession *s, Txn *t, const char *data, gsize len)
{
	while (len > 0 && !t->spool_failed) {
		ssize_t n = write(t->spool, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			spool_failed(s, t, "spool file: %s", g_strerror(n < 0 ? errno : ENOSPC));
			return;
		}
		data += n;
		len -= (gsize)n;
		t->spooled += (guint64)n;
	}
}

/* An unlinked file in the store's tmp directory: nothing is left behind
 * whatever happens to the process.  Returns the size limit. */
static gint64
content_start(ImtaSmtpServer *server, gpointer session, gpointer txn)
{
	LmtpSession *s = session;
	Txn *t = txn;
	ImtaStore *store = s->delivery != NULL ? imta_store_delivery_store(s->delivery) : NULL;
	g_autofree char *dir = store != NULL ? g_build_filename(imta_store_root(store), "tmp", NULL)
					     : g_strdup(g_get_tmp_dir());
	g_autofree char *path = g_build_filename(dir, "lmtp-XXXXXX", NULL);

	if (g_mkdir_with_parents(dir, 0700) < 0 ||
	    (t->spool = g_mkstemp_full(path, O_RDWR | O_CLOEXEC, 0600)) < 0)
		spool_failed(s, t, "cannot make a spool file in %s: %s", dir, g_strerror(errno));
	else
		g_unlink(path);
	return session_size_limit(s);
}

static void
content_write(ImtaSmtpServer *server, gpointer session, gpointer txn, const char *data,
	      gsize len)
{
	spool_write(session, txn, data, len);
}

/* Refused content ends the transaction like a delivered one. */
static void
content_refuse(ImtaSmtpServer *server, gpointer session, gpointer txn, guint64 size, guint code,
	       const char *enhanced, const char *text)
{
	txn_refuse_all(session, txn, size, code, enhanced, text);
	imta_smtp_server_count_message(server);
}

typedef struct {
	LmtpSession *session;      /* its delivery context only, while busy */
	Txn *txn;
	ImtaQueue *queue;          /* for success notices */
	char *error;               /* the spool could not be read */
	char *notice_error;        /* a success notice could not be queued */
} DeliverJob;

/* NOTIFY=SUCCESS recipients that were delivered get their notice now:
 * their 250 tells the client that this server took it over. */
static void
deliver_notices(DeliverJob *job, GBytes *content)
{
	const LmtpSession *s = job->session;
	const Txn *t = job->txn;
	g_autoptr(GArray) wanted = g_array_new(FALSE, TRUE, sizeof(LmtpNoticeRecipient));
	g_autoptr(GError) error = NULL;
	LmtpNoticeMessage message = {
		.config = s->config,
		.channel = s->channel,
		.queue = job->queue,
		.hostname = s->hostname,
		.id = t->id,
		.return_path = t->from,
		.envid = t->envid,
		.ret = t->ret,
		.arrival = g_get_real_time() / G_USEC_PER_SEC,
		.content = content,
	};

	for (guint i = 0; i < t->rcpts->len; i++) {
		const TxnRecipient *r = t->rcpts->pdata[i];

		if (r->rcpt.outcome != IMTA_OUTCOME_DELIVERED || !(r->notify & IMTA_NOTIFY_SUCCESS))
			continue;
		g_array_append_val(wanted, ((LmtpNoticeRecipient){
			.address = r->given,
			.orcpt = r->orcpt,
			.diagnostic = r->rcpt.diagnostic,
		}));
	}
	if (!lmtp_server_success_notice(&message, (const LmtpNoticeRecipient *)(void *)wanted->data,
					wanted->len, &error))
		job->notice_error = g_strdup(error->message);
}
/* Store the spooled message for every accepted recipient, after a last
 * quota check with the real size. */
static void
deliver_work(gpointer data)
{
	DeliverJob *job = data;
	ImtaStoreDelivery *delivery = job->session->delivery;
	Txn *t = job->txn;
	g_autoptr(GError) error = NULL;
	g_autoptr(GMappedFile) map = NULL;
	g_autoptr(GBytes) bytes = NULL;
	g_autofree ImtaStoreRecipient **rcpts = g_new0(ImtaStoreRecipient *, t->rcpts->len);
	const char *content = "";
	gsize length = 0;

	if (t->spooled > 0) {
		map = g_mapped_file_new_from_fd(t->spool, FALSE, &error);
		if (map == NULL) {
			job->error = g_strdup_printf("spool file: %s", error->message);
			return;
		}
		content = g_mapped_file_get_contents(map);
		length = g_mapped_file_get_length(map);
	}
	for (guint i = 0; i < t->rcpts->len; i++) {
		TxnRecipient *r = t->rcpts->pdata[i];

		rcpts[i] = &r->rcpt;
		imta_store_delivery_check(delivery, &r->rcpt, (gint64)length);
	}
	imta_store_delivery_deliver(delivery, content, length, rcpts, t->rcpts->len);
	bytes = map != NULL ? g_mapped_file_get_bytes(map) : g_bytes_new_static("", 0);
	deliver_notices(job, bytes);
}

/* Each recipient's reply, in RCPT order. */
static void
deliver_replies(LmtpSession *s, const Txn *t)
{
	guint delivered = 0;

	for (guint i = 0; i < t->rcpts->len; i++) {
		TxnRecipient *r = t->rcpts->pdata[i];
		ServerReply reply;
		g_autofree char *logged = NULL;

		server_reply_of(r->rcpt.outcome, r->rcpt.diagnostic, FALSE, &reply);
		session_reply(s, reply.code, reply.enhanced, "<%s> %s", r->given, reply.text);
		logged = g_strdup_printf("%u %s %s", reply.code, reply.enhanced, reply.text);
		if (r->rcpt.outcome == IMTA_OUTCOME_DELIVERED) {
			delivered++;
			session_mail_log(s, IMTA_MAIL_LOG_DELIVERED, t, r->given, r->orcpt,
					 (gint64)t->spooled, logged);
		} else {
			session_mail_log(s, IMTA_MAIL_LOG_REFUSED, t, r->given, r->orcpt,
					 (gint64)t->spooled, logged);
		}
	}
	session_log(s, IMTA_LOG_NOTICE, "message %s from <%s>: %" G_GUINT64_FORMAT " bytes, "
		    "delivered to %u of %u recipient%s", t->id, t->from, t->spooled, delivered,
		    t->rcpts->len, t->rcpts->len == 1 ? "" : "s");
}

static void
deliver_done(ImtaSmtpServer *server, gpointer session, gpointer data)
{
	LmtpSession *s = session;
	DeliverJob *job = data;
	Txn *t = job->txn;

	if (job->notice_error != NULL)
		session_log(s, IMTA_LOG_WARNING, "message %s: success notice not queued: %s",
			    t->id, job->notice_error);
	if (job->error != NULL) {
		g_autofree char *text = g_strdup_printf("Error: %s; try again later", job->error);

		session_log(s, IMTA_LOG_ERROR, "message %s: %s", t->id, job->error);
		txn_refuse_all(s, t, t->size, 451, "4.3.0", text);
	} else {
		deliver_replies(s, t);
	}
	imta_smtp_server_count_message(server);
	g_free(job->error);
	g_free(job->notice_error);
	txn_free(t);
	g_free(job);
}

/* The content is in and passed the checks: store it, and answer once
 * the copies are on disk. */
static void
content_end(ImtaSmtpServer *server, gpointer session, gpointer txn, guint64 size)
{
	LmtpSession *s = session;
	Txn *t = txn;
	DeliverJob *job;

	t->size = size;
	for (guint i = 0; i < t->rcpts->len; i++) {
		const TxnRecipient *r = t->rcpts->pdata[i];

		session_mail_log(s, IMTA_MAIL_LOG_ENQUEUED, t, r->given, r->orcpt,
				 (gint64)t->spooled, NULL);
	}
	job = g_new0(DeliverJob, 1);
	job->session = s;
	job->txn = t;
	job->queue = imta_conn_queue(s->conn);
	imta_smtp_server_run(server, deliver_work, deliver_done, job);
}

/* ---- STARTTLS ------------------------------------------------------------ */

static void
cmd_starttls(LmtpSession *s)
{
	if (imta_conn_tls_active(s->conn)) {
		session_reply(s, 503, "5.5.1", "Error: TLS already active");
		return;
	}
	if (!session_tls_offered_now(s)) {
		session_reply(s, 454, "4.7.0", "TLS not available");
		return;
	}
	imta_smtp_server_start_tls(s->server);
}

/* ---- commands ------------------------------------------------------------ */

static void
session_command(ImtaSmtpServer *server, gpointer session, const ImtaSmtpCommand *cmd)
{
	LmtpSession *s = session;

	switch (cmd->verb) {
	case IMTA_SMTP_LHLO:
		cmd_lhlo(s, cmd);
		break;
	case IMTA_SMTP_HELO:
	case IMTA_SMTP_EHLO:
		/* RFC 2033 4.1: an LMTP server does not take HELO or EHLO, so a
		 * client that thinks it speaks SMTP stops at once. */
		session_reply(s, 500, "5.5.1", "Error: this is an LMTP server; use LHLO");
		break;
	case IMTA_SMTP_VRFY:
		session_reply(s, 252, "2.5.2", "Cannot VRFY user; try RCPT to attempt delivery");
		break;
	case IMTA_SMTP_HELP:
		session_reply(s, 214, "2.0.0", "Commands: LHLO MAIL RCPT DATA BDAT RSET NOOP QUIT "
			      "STARTTLS\nSee RFC 2033 and lmtp(8)");
		break;
	case IMTA_SMTP_STARTTLS:
		cmd_starttls(s);
		break;
	default:
		session_reply(s, 502, "5.5.1", "Error: command not implemented");
		break;
	}
}

/* ---- the session ---------------------------------------------------------- */

static gpointer
session_open(ImtaSmtpServer *server, ImtaSmtpServerLimits *limits, GError **error)
{
	const ImtaChannel *channel = imta_smtp_server_channel(server);
	const LmtpOptions *options;
	LmtpSession *s;

	options = lmtp_options_get(imta_smtp_server_config(server), channel, error);
	if (options == NULL)
		return NULL;
	s = g_new0(LmtpSession, 1);
	s->server = server;
	s->conn = imta_smtp_server_conn(server);
	s->config = imta_smtp_server_config(server);
	s->channel = channel;
	s->options = options;
	s->hostname = imta_smtp_server_hostname(server);
	*limits = (ImtaSmtpServerLimits){
		.command_timeout = (guint)options->command_timeout,
		.data_timeout = (guint)options->data_timeout,
		.rejections = (guint)options->rejections_per_session,
		.max_received_lines = (guint)options->max_received_lines,
		.debug = channel->slave_debug && options->debug != 0,
	};
	session_log(s, IMTA_LOG_INFO, "LMTP connection on channel %s", channel->name);
	return s;
}

static void
session_free(ImtaSmtpServer *server, gpointer session)
{
	LmtpSession *s = session;

	imta_store_delivery_free(s->delivery);
	g_free(s);
}

static const ImtaSmtpServerHooks lmtp_hooks = {
	.protocol = IMTA_SMTP_SERVER_LMTP,
	.open = session_open,
	.greeting = session_greeting,
	.free = session_free,
	.offer = session_offer,
	.mail = cmd_mail,
	.rcpt = cmd_rcpt,
	.command = session_command,
	.client_error = session_client_error,
	.txn_free = txn_free,
	.content_start = content_start,
	.content_write = content_write,
	.content_refuse = content_refuse,
	.content_end = content_end,
};

static gpointer
lmtp_open(ImtaConn *conn)
{
	return imta_smtp_server_open(conn, &lmtp_hooks);
}

const ImtaSlaveOps lmtp_slave_ops = IMTA_SMTP_SERVER_SLAVE_OPS(lmtp_open);
