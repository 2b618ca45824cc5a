/*
 * server.c - the LMTP server session (RFC 2033) on the event-driven
 * connection of slave.h: the relays' final hop into this system's message
 * store.
 *
 * One session per connection, touched only on the connection's thread.
 * Commands are taken in the order they arrived, so pipelined commands
 * are answered in order.  Each RCPT is resolved in the directory and
 * checked against its quota on the worker's blocking pool (the same
 * store_delivery.h code as the ims-ms channel), and refused at once when
 * it cannot be delivered.  The content is spooled, with our Received:
 * header in front, to an unlinked file in the store's tmp directory, so
 * memory stays bounded; after the final dot (or BDAT LAST) the store
 * takes the message once per partition for every accepted recipient, and
 * only then does each recipient get its own reply, in RCPT order: a 250
 * means the copy is on disk.
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
#include <imta/store.h>
#include <imta/store_delivery.h>

#include "options.h"
#include "server.h"
#include "server_notice.h"

/* The message header is kept up to this size for the hop count. */
#define SERVER_HEAD_MAX (64 * 1024)

typedef enum {
	STATE_COMMAND,
	STATE_DATA,
	STATE_BDAT,
	STATE_CLOSED,
} ServerState;

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
	/* Content. */
	gboolean content;
	gboolean bdat;
	ImtaSmtpDataReader reader;
	GString *head;             /* the header so far; NULL once complete */
	guint received;            /* Received: lines of the client's header */
	guint64 size;              /* content bytes from the client */
	gint64 limit;              /* bytes; 0 = none */
	gboolean too_big, looping;
	int spool;                 /* unlinked spool file; -1 when none */
	char *spool_error;         /* why the spool failed, or NULL */
	guint64 spooled;           /* bytes in the spool */
} Txn;

typedef struct {
	ImtaConn *conn;
	const ImtaConfig *config;
	const ImtaChannel *channel;
	const LmtpOptions *options;
	ServerState state;
	char *hostname;
	char *client_ip;
	char *helo;                /* NULL until LHLO */
	gboolean busy;             /* an imta_conn_run() is pending */
	gboolean draining;
	gboolean tls_starting;
	gboolean debug;
	guint errors;
	guint messages;
	ImtaStoreDelivery *delivery; /* opened by the first recipient's lookup */
	Txn *txn;
	/* A BDAT chunk being read. */
	guint64 chunk_size;
	guint64 chunk_left;
	gboolean chunk_last;
	guint refusal_code;        /* != 0: discard the chunk, then refuse */
	const char *refusal_enhanced;
	const char *refusal_text;
	GString *scratch;          /* content out of the readers */
} LmtpSession;

static void session_pump(LmtpSession *s);

/* ---- replies and logs ------------------------------------------------- */

static void
session_log(LmtpSession *s, ImtaLogLevel level, const char *format, ...) G_GNUC_PRINTF(3, 4);

static void
session_log(LmtpSession *s, ImtaLogLevel level, const char *format, ...)
{
	g_autofree char *text = NULL;
	va_list args;

	va_start(args, format);
	text = g_strdup_vprintf(format, args);
	va_end(args);
	imta_conn_log(s->conn, level, "%s", text);
}

static void
session_reply(LmtpSession *s, guint code, const char *enhanced, const char *format, ...)
	G_GNUC_PRINTF(4, 5);

static void
session_reply(LmtpSession *s, guint code, const char *enhanced, const char *format, ...)
{
	g_autofree char *text = NULL;
	g_autoptr(GString) out = g_string_new(NULL);
	va_list args;

	va_start(args, format);
	text = g_strdup_vprintf(format, args);
	va_end(args);
	imta_smtp_reply(out, code, enhanced, "%s", text);
	imta_conn_write(s->conn, out->str, out->len);
	if (s->debug)
		session_log(s, IMTA_LOG_INFO, "> %.*s", (int)MIN(out->len, 400) - 2, out->str);
	/* Trouble of this system (4.2.x, 4.3.x, 4.4.x: a full mailbox, a
	 * disk, the directory) is not the client's error. */
	if (code >= 500 && code != 552)
		s->errors++;
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

static void
session_close(LmtpSession *s)
{
	if (s->state == STATE_CLOSED)
		return;
	s->state = STATE_CLOSED;
	imta_conn_close(s->conn);
}

static void
session_close_with(LmtpSession *s, const char *enhanced, const char *text)
{
	session_reply(s, 421, enhanced, "%s %s", s->hostname, text);
	session_close(s);
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
txn_free(Txn *t)
{
	if (t == NULL)
		return;
	if (t->spool >= 0)
		close(t->spool);
	g_free(t->spool_error);
	g_free(t->from);
	g_free(t->envid);
	g_ptr_array_unref(t->rcpts);
	if (t->head != NULL)
		g_string_free(t->head, TRUE);
	g_free(t);
}

static void
session_reset_txn(LmtpSession *s)
{
	g_clear_pointer(&s->txn, txn_free);
	if (s->scratch != NULL)
		g_string_free(s->scratch, TRUE);
	s->scratch = NULL;
}

/* Every accepted recipient gets the same reply: the content was refused. */
static void
txn_refuse_all(LmtpSession *s, const Txn *t, guint code, const char *enhanced,
	       const char *format, ...) G_GNUC_PRINTF(5, 6);

static void
txn_refuse_all(LmtpSession *s, const Txn *t, guint code, const char *enhanced,
	       const char *format, ...)
{
	g_autofree char *text = NULL;
	g_autofree char *logged = NULL;
	va_list args;

	va_start(args, format);
	text = g_strdup_vprintf(format, args);
	va_end(args);
	logged = g_strdup_printf("%u %s %s", code, enhanced, text);
	for (guint i = 0; i < t->rcpts->len; i++) {
		const TxnRecipient *r = t->rcpts->pdata[i];

		session_reply(s, code, enhanced, "<%s> %s", r->given, text);
		session_mail_log(s, IMTA_MAIL_LOG_REFUSED, t, r->given, r->orcpt, (gint64)t->size,
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
session_offer(LmtpSession *s, ImtaSmtpOffer *offer)
{
	memset(offer, 0, sizeof *offer);
	offer->esmtp = s->helo != NULL;
	offer->dsn = TRUE;
	offer->eightbitmime = TRUE;
	offer->max_size = session_size_limit(s);
}

static void
session_greet(LmtpSession *s)
{
	session_reply(s, 220, NULL, "%s LMTP service ready", s->hostname);
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
	session_reset_txn(s);
	g_free(s->helo);
	s->helo = g_strdup(cmd->arg);
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
cmd_mail(LmtpSession *s, const ImtaSmtpCommand *cmd)
{
	Txn *t;

	if (s->helo == NULL) {
		session_reply(s, 503, "5.5.1", "Error: send LHLO first");
		return;
	}
	if (s->txn != NULL) {
		session_reply(s, 503, "5.5.1", "Error: nested MAIL command");
		return;
	}
	if (s->channel->tls_server == IMTA_TLS_MUST && !imta_conn_tls_active(s->conn)) {
		session_reply(s, 530, "5.7.0", "Must issue a STARTTLS command first");
		return;
	}
	if (s->messages >= (guint64)s->options->transactions_per_session) {
		session_close_with(s, "4.7.0", "Error: too many messages in this session");
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
	s->txn = t;
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
rcpt_done(ImtaConn *conn, gpointer session, gpointer data)
{
	LmtpSession *s = session;
	RcptJob *job = data;
	TxnRecipient *rcpt = job->rcpt;
	Txn *t = s->txn;

	s->busy = FALSE;
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
		session_reply(s, 250, "2.1.5", "Ok");
	}
	rcpt_job_free(job);
	session_pump(s);
}

static void
cmd_rcpt(LmtpSession *s, const ImtaSmtpCommand *cmd)
{
	Txn *t = s->txn;
	RcptJob *job;

	if (t == NULL) {
		session_reply(s, 503, "5.5.1", "Error: need MAIL command");
		return;
	}
	if (t->content) {
		session_reply(s, 503, "5.5.1", "Error: RCPT after message content");
		return;
	}
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
	s->busy = TRUE;
	imta_conn_run(s->conn, rcpt_work, rcpt_done, job);
}

/* ---- message content ----------------------------------------------------- */

static void
spool_write(LmtpSession *s, const char *data, gsize len)
{
	Txn *t = s->txn;

	while (len > 0 && t->spool_error == NULL) {
		ssize_t n = write(t->spool, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			t->spool_error = g_strdup_printf("spool file: %s",
							 g_strerror(n < 0 ? errno : ENOSPC));
			session_log(s, IMTA_LOG_ERROR, "message %s: %s", t->id, t->spool_error);
			return;
		}
		data += n;
		len -= (gsize)n;
		t->spooled += (guint64)n;
	}
}

/* An unlinked file in the store's tmp directory: nothing is left behind
 * whatever happens to the process. */
static void
spool_open(LmtpSession *s)
{
	Txn *t = s->txn;
	ImtaStore *store = s->delivery != NULL ? imta_store_delivery_store(s->delivery) : NULL;
	g_autofree char *dir = store != NULL ? g_build_filename(imta_store_root(store), "tmp", NULL)
					     : g_strdup(g_get_tmp_dir());
	g_autofree char *path = g_build_filename(dir, "lmtp-XXXXXX", NULL);

	if (g_mkdir_with_parents(dir, 0700) < 0 ||
	    (t->spool = g_mkstemp_full(path, O_RDWR | O_CLOEXEC, 0600)) < 0) {
		t->spool_error = g_strdup_printf("cannot make a spool file in %s: %s", dir,
						 g_strerror(errno));
		session_log(s, IMTA_LOG_ERROR, "message %s: %s", t->id, t->spool_error);
		return;
	}
	g_unlink(path);
}

static void
content_head_done(LmtpSession *s)
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
content_head(LmtpSession *s, const char *data, gsize len)
{
	GString *head = s->txn->head;
	gsize from = head->len > 0 ? head->len - 1 : 0;

	g_string_append_len(head, data, (gssize)MIN(len, SERVER_HEAD_MAX - head->len));
	if (head->len > 0 && head->str[0] == '\n') {
		content_head_done(s);
		return;
	}
	for (gsize i = from; i + 1 < head->len; i++)
		if (head->str[i] == '\n' && head->str[i + 1] == '\n') {
			content_head_done(s);
			return;
		}
	if (head->len >= SERVER_HEAD_MAX)
		content_head_done(s);
}

/* Content from the client, LF line ends: counted, checked, spooled. */
static void
content_write(LmtpSession *s, const char *data, gsize len)
{
	Txn *t = s->txn;

	if (len == 0)
		return;
	if (t->head != NULL)
		content_head(s, data, len);
	t->size += len;
	if (t->limit > 0 && t->size > (guint64)t->limit)
		t->too_big = TRUE;
	if (t->too_big || t->looping || t->spool_error != NULL)
		return;
	spool_write(s, data, len);
}

static void
content_start(LmtpSession *s, gboolean bdat)
{
	Txn *t = s->txn;
	gboolean tls = imta_conn_tls_active(s->conn);
	g_autofree char *header = NULL;
	ImtaSmtpTrace trace = {
		.helo = s->helo,
		.client_ip = s->client_ip,
		.by_host = s->hostname,
		.protocol = imta_smtp_protocol_name(TRUE, tls, FALSE, TRUE),
		.tls = tls ? imta_conn_tls_description(s->conn) : NULL,
		.queue_id = t->id,
		.for_address = t->rcpts->len == 1
			? ((const TxnRecipient *)t->rcpts->pdata[0])->given : NULL,
		.time = g_get_real_time() / G_USEC_PER_SEC,
	};

	t->content = TRUE;
	t->bdat = bdat;
	t->head = g_string_new(NULL);
	t->limit = session_size_limit(s);
	if (bdat)
		imta_smtp_bdat_reader_init(&t->reader);
	else
		imta_smtp_data_reader_init(&t->reader);
	spool_open(s);
	header = imta_smtp_received_header(&trace);
	if (t->spool_error == NULL) {
		gsize len = strlen(header);

		spool_write(s, header, len);
		if (len == 0 || header[len - 1] != '\n')
			spool_write(s, "\n", 1);
	}
	if (s->scratch == NULL)
		s->scratch = g_string_sized_new(4096);
	imta_conn_set_timeout(s->conn, (guint)s->options->data_timeout);
}

/* What could only be checked at the end.  FALSE when it replied. */
static gboolean
content_verdict(LmtpSession *s)
{
	Txn *t = s->txn;

	if (t->head != NULL)
		content_head_done(s);
	if (t->looping) {
		session_log(s, IMTA_LOG_NOTICE, "message %s refused: %u Received: lines", t->id,
			    t->received);
		txn_refuse_all(s, t, 554, "5.4.6", "Too many hops: the message has more than %u "
			       "Received: header lines (a mail loop?)",
			       (guint)s->options->max_received_lines);
		return FALSE;
	}
	if (t->too_big) {
		txn_refuse_all(s, t, 552, "5.3.4", "Message size exceeds fixed limit of %"
			       G_GINT64_FORMAT " bytes", t->limit);
		return FALSE;
	}
	if (t->spool_error != NULL) {
		txn_refuse_all(s, t, 451, "4.3.0", "Error: %s; try again later", t->spool_error);
		return FALSE;
	}
	return TRUE;
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

static void
deliver_done(ImtaConn *conn, gpointer session, gpointer data)
{
	LmtpSession *s = session;
	DeliverJob *job = data;
	Txn *t = job->txn;
	guint delivered = 0;

	s->busy = FALSE;
	if (job->notice_error != NULL)
		session_log(s, IMTA_LOG_WARNING, "message %s: success notice not queued: %s",
			    t->id, job->notice_error);
	if (job->error != NULL) {
		session_log(s, IMTA_LOG_ERROR, "message %s: %s", t->id, job->error);
		txn_refuse_all(s, t, 451, "4.3.0", "Error: %s; try again later", job->error);
		goto out;
	}
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
out:
	s->messages++;
	g_free(job->error);
	g_free(job->notice_error);
	txn_free(t);
	g_free(job);
	session_pump(s);
}

/* The last byte of the content is in: refuse, or store and answer once
 * the copies are on disk. */
static void
content_end(LmtpSession *s)
{
	Txn *t = s->txn;
	DeliverJob *job;

	s->state = STATE_COMMAND;
	imta_conn_set_timeout(s->conn, (guint)s->options->command_timeout);
	if (!content_verdict(s)) {
		s->messages++;
		session_reset_txn(s);
		return;
	}
	for (guint i = 0; i < t->rcpts->len; i++) {
		const TxnRecipient *r = t->rcpts->pdata[i];

		session_mail_log(s, IMTA_MAIL_LOG_ENQUEUED, t, r->given, r->orcpt,
				 (gint64)t->spooled, NULL);
	}
	job = g_new0(DeliverJob, 1);
	job->session = s;
	job->txn = g_steal_pointer(&s->txn);
	job->queue = imta_conn_queue(s->conn);
	s->busy = TRUE;
	imta_conn_run(s->conn, deliver_work, deliver_done, job);
}

/* ---- DATA ----------------------------------------------------------------- */

static void
cmd_data(LmtpSession *s)
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
	/* RFC 2033 4.2: no successful RCPT, DATA fails with 503. */
	if (t->rcpts->len == 0) {
		session_reply(s, 503, "5.5.1", "Error: no valid recipients");
		return;
	}
	content_start(s, FALSE);
	s->state = STATE_DATA;
	session_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
}

static void
session_vanished(LmtpSession *s)
{
	if (s->txn != NULL && s->txn->content)
		session_log(s, IMTA_LOG_NOTICE, "message %s: the client left during the content; "
			    "nothing was delivered", s->txn->id);
	session_close(s);
}

static gboolean
session_data_input(LmtpSession *s)
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

/* ---- BDAT (RFC 3030; with LMTP, LAST is answered per recipient) ---------- */

static void
bdat_chunk_end(LmtpSession *s)
{
	Txn *t = s->txn;

	s->state = STATE_COMMAND;
	if (s->refusal_code != 0) {
		imta_conn_set_timeout(s->conn, (guint)s->options->command_timeout);
		session_reply(s, s->refusal_code, s->refusal_enhanced, "%s", s->refusal_text);
		s->refusal_code = 0;
		return;
	}
	if (s->chunk_last) {
		g_string_truncate(s->scratch, 0);
		imta_smtp_bdat_reader_finish(&t->reader, s->scratch);
		content_write(s, s->scratch->str, s->scratch->len);
		content_end(s);
		return;
	}
	imta_conn_set_timeout(s->conn, (guint)s->options->command_timeout);
	session_reply(s, 250, "2.0.0", "Ok: %" G_GUINT64_FORMAT " octets received",
		      s->chunk_size);
}

static gboolean
session_bdat_input(LmtpSession *s)
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
	if (s->refusal_code == 0) {
		g_string_truncate(s->scratch, 0);
		imta_smtp_bdat_reader_feed(&s->txn->reader, in, take, s->scratch);
		content_write(s, s->scratch->str, s->scratch->len);
	}
	imta_conn_consume(s->conn, take);
	s->chunk_left -= take;
	return TRUE;
}

static void
bdat_refuse(LmtpSession *s, guint code, const char *enhanced, const char *text)
{
	s->refusal_code = code;
	s->refusal_enhanced = enhanced;
	s->refusal_text = text;
}

static void
cmd_bdat(LmtpSession *s, const ImtaSmtpCommand *cmd)
{
	Txn *t = s->txn;

	s->refusal_code = 0;
	if (t == NULL)
		bdat_refuse(s, 503, "5.5.1", "Error: need MAIL command");
	else if (t->content && !t->bdat)
		bdat_refuse(s, 503, "5.5.1", "Error: BDAT after DATA");
	else if (t->rcpts->len == 0)
		bdat_refuse(s, 503, "5.5.1", "Error: no valid recipients");
	/* Even a refused chunk is read to its end: its bytes are not
	 * commands. */
	s->chunk_size = cmd->chunk_size;
	s->chunk_left = cmd->chunk_size;
	s->chunk_last = cmd->last;
	s->state = STATE_BDAT;
	if (s->refusal_code == 0 && !t->content)
		content_start(s, TRUE);
	else if (s->scratch == NULL)
		s->scratch = g_string_sized_new(4096);
	imta_conn_set_timeout(s->conn, (guint)s->options->data_timeout);
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
}

/* ---- commands ------------------------------------------------------------ */

static gboolean
session_gate(LmtpSession *s)
{
	if (s->errors >= (guint64)s->options->rejections_per_session) {
		session_log(s, IMTA_LOG_NOTICE, "closing after %u errors", s->errors);
		session_close_with(s, "4.7.0", "Error: too many errors");
		return FALSE;
	}
	if (s->draining || imta_conn_draining(s->conn)) {
		session_close_with(s, "4.3.2", "Service shutting down, closing transmission "
				   "channel");
		return FALSE;
	}
	return TRUE;
}

static void
session_dispatch(LmtpSession *s, const ImtaSmtpCommand *cmd)
{
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
		session_reply(s, 252, "2.5.2", "Cannot VRFY user; try RCPT to attempt delivery");
		break;
	case IMTA_SMTP_HELP:
		session_reply(s, 214, "2.0.0", "Commands: LHLO MAIL RCPT DATA BDAT RSET NOOP QUIT "
			      "STARTTLS\nSee RFC 2033 and lmtp(8)");
		break;
	case IMTA_SMTP_STARTTLS:
		cmd_starttls(s);
		break;
	case IMTA_SMTP_EXPN:
	case IMTA_SMTP_AUTH:
	case IMTA_SMTP_UNKNOWN:
	default:
		session_reply(s, 502, "5.5.1", "Error: command not implemented");
		break;
	}
}

static void
session_command(LmtpSession *s, const char *line, gsize len)
{
	ImtaSmtpCommand cmd = { 0 };
	ImtaSmtpError err = { 0 };
	ImtaSmtpOffer offer;

	if (!session_gate(s))
		return;
	if (s->debug)
		session_log(s, IMTA_LOG_INFO, "< %.*s", (int)MIN(len, 200), line);
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
session_command_input(LmtpSession *s)
{
	const char *line;
	gsize len;

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

static void
session_pump(LmtpSession *s)
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
		case STATE_CLOSED:
			return;
		}
	}
}

/* ---- the connection's callbacks ------------------------------------------ */

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
	LmtpSession *s = g_new0(LmtpSession, 1);
	g_autoptr(GError) error = NULL;

	s->conn = conn;
	s->config = imta_conn_config(conn);
	s->channel = imta_conn_channel(conn);
	s->state = STATE_COMMAND;
	s->hostname = g_strdup(session_hostname(s->config));
	s->client_ip = g_strdup(imta_conn_remote_ip(conn));
	s->options = lmtp_options_get(s->config, s->channel, &error);
	if (s->options == NULL) {
		static const char refusal[] = "421 4.3.5 Server configuration error\r\n";

		session_log(s, IMTA_LOG_ERROR, "%s", error->message);
		imta_conn_write(conn, refusal, sizeof refusal - 1);
		session_close(s);
		return s;
	}
	s->debug = s->channel->slave_debug && s->options->debug != 0;
	session_log(s, IMTA_LOG_INFO, "LMTP connection on channel %s", s->channel->name);
	imta_conn_set_timeout(conn, (guint)s->options->command_timeout);
	if (imta_conn_draining(conn)) {
		session_close_with(s, "4.3.2", "Service shutting down, closing transmission "
				   "channel");
		return s;
	}
	session_greet(s);
	return s;
}

static void
session_input(ImtaConn *conn, gpointer session)
{
	LmtpSession *s = session;

	if (s->state == STATE_CLOSED)
		return;
	if (s->tls_starting && imta_conn_tls_active(conn))
		s->tls_starting = FALSE;
	session_pump(s);
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
	LmtpSession *s = session;

	/* A lookup or delivery in progress answers when it is done. */
	if (s->busy || s->state == STATE_CLOSED)
		return;
	session_log(s, IMTA_LOG_NOTICE, "timeout %s",
		    s->state == STATE_DATA || s->state == STATE_BDAT ? "during the content"
								     : "waiting for a command");
	if (s->txn != NULL && s->txn->content)
		session_log(s, IMTA_LOG_NOTICE, "message %s: nothing was delivered", s->txn->id);
	session_close_with(s, "4.4.2", "Error: timeout exceeded");
}

static void
session_drain(ImtaConn *conn, gpointer session)
{
	LmtpSession *s = session;

	s->draining = TRUE;
}

static void
session_free(ImtaConn *conn, gpointer session)
{
	LmtpSession *s = session;

	if (s == NULL)
		return;
	session_log(s, IMTA_LOG_INFO, "closed: %u message%s, %u error%s", s->messages,
		    s->messages == 1 ? "" : "s", s->errors, s->errors == 1 ? "" : "s");
	session_reset_txn(s);
	imta_store_delivery_free(s->delivery);
	g_free(s->hostname);
	g_free(s->client_ip);
	g_free(s->helo);
	g_free(s);
}

const ImtaSlaveOps lmtp_slave_ops = {
	.open = session_open,
	.input = session_input,
	.timeout = session_timeout,
	.drain = session_drain,
	.close = session_free,
};
