/*
 * server_session.c - the ESMTP server session engine of smtp_server.h:
 * the connection's callbacks, the command pump, replies, DATA and BDAT
 * input, STARTTLS and the ways a session ends, shared by the SMTP and
 * LMTP servers; what differs comes through the plugin's hooks.
 *
 * One session per connection, touched only on the connection's thread.
 * Input is taken command by command in the order it arrived; a command
 * that must wait runs through imta_smtp_server_run(), and the session is
 * "busy" (takes no input, ignores its timeout) until the done callback has
 * answered, after which the pump goes on with whatever is buffered.
 */
#include "config.h"

#include <stdarg.h>
#include <string.h>

#include <glib.h>

#include <imta/config.h>
#include <imta/mail_log.h>
#include <imta/slave.h>
#include <imta/smtp.h>
#include <imta/smtp_server.h>
#include <imta/tailor.h>

/* The message header is kept up to this size for the hop count; a longer
 * header is counted as far as it was kept. */
#define SERVER_HEAD_MAX (64 * 1024)

typedef enum {
	STATE_STARTING,  /* hooks->start runs; no greeting yet */
	STATE_COMMAND,
	STATE_DATA,
	STATE_BDAT,
	STATE_PLUGIN,    /* hooks->input reads (imta_smtp_server_own_input) */
	STATE_CLOSED,
} ServerState;

/* The content of the current transaction. */
typedef struct {
	gboolean started;          /* DATA or BDAT began */
	gboolean bdat;             /* it comes in BDAT chunks */
	ImtaSmtpDataReader reader;
	GString *head;             /* the header so far; NULL once complete */
	guint received;            /* Received: lines of the client's header */
	guint64 size;              /* content bytes from the client */
	gint64 limit;              /* bytes; 0 = none */
	gboolean too_big, looping;
	guint fail_code;           /* != 0: the sink failed, refuse with this */
	const char *fail_enhanced;
	char *fail_text;
} ServerContent;

struct _ImtaSmtpServer {
	ImtaConn *conn;
	const ImtaConfig *config;
	const ImtaSmtpServerHooks *hooks;
	gpointer session;          /* the plugin's */
	ImtaSmtpServerLimits limits;
	ServerState state;
	char *hostname;
	char *client_ip;
	char *client_name;
	char *helo;                /* NULL until HELO, EHLO or LHLO */
	gboolean esmtp;
	char *auth_user;
	gboolean busy;             /* an imta_smtp_server_run() is pending */
	gboolean draining;
	gboolean tls_starting;     /* STARTTLS said: read nothing more in clear */
	guint errors;
	guint messages;
	/* The transaction. */
	gpointer txn;
	const char *txn_id;
	guint rcpts;               /* accepted recipients */
	char *first_rcpt;          /* as given, for the Received: header */
	ServerContent content;
	/* A BDAT chunk being read. */
	guint64 chunk_size;
	guint64 chunk_left;
	gboolean chunk_last;
	ImtaSmtpServerRefusal chunk_refusal; /* code != 0: discard, then refuse */
	GString *scratch;          /* content out of the readers */
};

static void server_pump(ImtaSmtpServer *s);

/* ---- who and where ------------------------------------------------------ */

ImtaConn *
imta_smtp_server_conn(const ImtaSmtpServer *server)
{
	return server->conn;
}

const ImtaConfig *
imta_smtp_server_config(const ImtaSmtpServer *server)
{
	return server->config;
}

const ImtaChannel *
imta_smtp_server_channel(const ImtaSmtpServer *server)
{
	return imta_conn_channel(server->conn);
}

const char *
imta_smtp_server_hostname(const ImtaSmtpServer *server)
{
	return server->hostname;
}

const char *
imta_smtp_server_client_ip(const ImtaSmtpServer *server)
{
	return server->client_ip;
}

gboolean
imta_smtp_server_debug(const ImtaSmtpServer *server)
{
	return server->limits.debug;
}

void
imta_smtp_server_set_client_name(ImtaSmtpServer *server, const char *name)
{
	g_free(server->client_name);
	server->client_name = g_strdup(name);
}

const char *
imta_smtp_server_client_name(const ImtaSmtpServer *server)
{
	return server->client_name;
}

void
imta_smtp_server_set_helo(ImtaSmtpServer *server, const char *helo, gboolean esmtp)
{
	g_free(server->helo);
	server->helo = g_strdup(helo);
	server->esmtp = helo != NULL && esmtp;
}

const char *
imta_smtp_server_helo(const ImtaSmtpServer *server)
{
	return server->helo;
}

gboolean
imta_smtp_server_esmtp(const ImtaSmtpServer *server)
{
	return server->esmtp;
}

void
imta_smtp_server_set_auth_user(ImtaSmtpServer *server, char *user)
{
	g_free(server->auth_user);
	server->auth_user = user;
}

const char *
imta_smtp_server_auth_user(const ImtaSmtpServer *server)
{
	return server->auth_user;
}

guint
imta_smtp_server_mail_log_flags(const ImtaSmtpServer *server)
{
	return (imta_conn_tls_active(server->conn) ? IMTA_MAIL_LOG_TLS : 0) |
	       (server->auth_user != NULL ? IMTA_MAIL_LOG_SASL : 0);
}

guint
imta_smtp_server_messages(const ImtaSmtpServer *server)
{
	return server->messages;
}

void
imta_smtp_server_count_message(ImtaSmtpServer *server)
{
	server->messages++;
}

/* ---- replies, logs, the end ---------------------------------------------- */

void
imta_smtp_server_log(const ImtaSmtpServer *server, ImtaLogLevel level, const char *format, ...)
{
	g_autofree char *text = NULL;
	va_list args;

	va_start(args, format);
	text = g_strdup_vprintf(format, args);
	va_end(args);
	imta_conn_log(server->conn, level, "%s", text);
}

/* Trouble of this system (4.3.x: a full disk, a directory down) is not
 * the client's error, nor is the 421 that ends the session. */
static gboolean
server_client_error(guint code, const char *enhanced)
{
	return code >= 400 && code != 421 &&
	       !(code < 500 && enhanced != NULL &&
		 (g_str_has_prefix(enhanced, "4.3.") || g_str_has_prefix(enhanced, "4.4.")));
}

static void
server_replyv(ImtaSmtpServer *s, guint code, const char *enhanced, const char *format,
	      va_list args)
{
	g_autofree char *text = g_strdup_vprintf(format, args);
	g_autoptr(GString) out = g_string_new(NULL);
	gboolean (*client_error)(guint, const char *) =
		s->hooks->client_error != NULL ? s->hooks->client_error : server_client_error;

	if (enhanced != NULL && enhanced[0] == '\0')
		enhanced = NULL;
	imta_smtp_reply(out, code, enhanced, "%s", text);
	imta_conn_write(s->conn, out->str, out->len);
	if (s->limits.debug)
		imta_smtp_server_log(s, IMTA_LOG_INFO, "> %.*s", (int)MIN(out->len, 400) - 2,
				     out->str);
	if (client_error(code, enhanced))
		s->errors++;
}

void
imta_smtp_server_reply(ImtaSmtpServer *server, guint code, const char *enhanced,
		       const char *format, ...)
{
	va_list args;

	va_start(args, format);
	server_replyv(server, code, enhanced, format, args);
	va_end(args);
}

void
imta_smtp_server_reply_uncounted(ImtaSmtpServer *server, guint code, const char *enhanced,
				 const char *format, ...)
{
	guint errors = server->errors;
	va_list args;

	va_start(args, format);
	server_replyv(server, code, enhanced, format, args);
	va_end(args);
	server->errors = errors;
}

static void
server_refuse(ImtaSmtpServer *s, const ImtaSmtpServerRefusal *refusal)
{
	imta_smtp_server_reply(s, refusal->code, refusal->enhanced, "%s", refusal->text);
}

void
imta_smtp_server_close(ImtaSmtpServer *server)
{
	if (server->state == STATE_CLOSED)
		return;
	server->state = STATE_CLOSED;
	imta_conn_close(server->conn);
}

void
imta_smtp_server_close_with(ImtaSmtpServer *server, const char *enhanced, const char *text)
{
	imta_smtp_server_reply(server, 421, enhanced, "%s %s", server->hostname, text);
	imta_smtp_server_close(server);
}

/* The worker retires: end the session between commands. */
static void
server_shutting_down(ImtaSmtpServer *s)
{
	imta_smtp_server_close_with(s, "4.3.2", "Service shutting down, closing transmission channel");
}

/* What became of a message whose content was cut off. */
static const char *
server_nothing(const ImtaSmtpServer *s)
{
	return s->hooks->protocol == IMTA_SMTP_SERVER_LMTP ? "nothing was delivered"
							    : "nothing was queued";
}

void
imta_smtp_server_vanished(ImtaSmtpServer *server)
{
	if (server->txn != NULL && server->content.started)
		imta_smtp_server_log(server, IMTA_LOG_NOTICE, "message %s: the client left during "
				     "the content; %s", server->txn_id, server_nothing(server));
	imta_smtp_server_close(server);
}

/* ---- the transaction ------------------------------------------------------ */

static void
server_free_scratch(ImtaSmtpServer *s)
{
	if (s->scratch != NULL)
		g_string_free(s->scratch, TRUE);
	s->scratch = NULL;
}

static void
server_clear_content(ServerContent *c)
{
	if (c->head != NULL)
		g_string_free(c->head, TRUE);
	g_free(c->fail_text);
	memset(c, 0, sizeof *c);
}

/* Forget the transaction; the plugin's part is the caller's now. */
static gpointer
server_steal_txn(ImtaSmtpServer *s)
{
	gpointer txn = g_steal_pointer(&s->txn);

	s->txn_id = NULL;
	s->rcpts = 0;
	g_clear_pointer(&s->first_rcpt, g_free);
	server_clear_content(&s->content);
	server_free_scratch(s);
	return txn;
}

void
imta_smtp_server_reset(ImtaSmtpServer *server)
{
	gpointer txn = server_steal_txn(server);

	if (txn != NULL)
		server->hooks->txn_free(txn);
}

void
imta_smtp_server_begin(ImtaSmtpServer *server, gpointer txn, const char *id)
{
	imta_smtp_server_reset(server);
	server->txn = txn;
	server->txn_id = id;
}

gpointer
imta_smtp_server_txn(const ImtaSmtpServer *server)
{
	return server->txn;
}

void
imta_smtp_server_recipient_accepted(ImtaSmtpServer *server, const char *given)
{
	if (server->rcpts++ == 0)
		server->first_rcpt = g_strdup(given);
}

gboolean
imta_smtp_server_content_started(const ImtaSmtpServer *server)
{
	return server->content.started;
}

void
imta_smtp_server_content_failed(ImtaSmtpServer *server, guint code, const char *enhanced,
				const char *format, ...)
{
	ServerContent *c = &server->content;
	va_list args;

	if (c->fail_code != 0)
		return;
	c->fail_code = code;
	c->fail_enhanced = enhanced;
	va_start(args, format);
	c->fail_text = g_strdup_vprintf(format, args);
	va_end(args);
}

/* ---- blocking work ------------------------------------------------------- */

typedef struct {
	ImtaSmtpServer *server;
	ImtaConnWorkFn work;
	ImtaSmtpServerDoneFn done;
	gpointer data;
} ServerJob;

static void
server_job_work(gpointer data)
{
	ServerJob *job = data;

	job->work(job->data);
}

static void
server_job_done(ImtaConn *conn, gpointer unused, gpointer data)
{
	ServerJob *job = data;
	ImtaSmtpServer *s = job->server;

	s->busy = FALSE;
	job->done(s, s->session, job->data);
	g_free(job);
	server_pump(s);
}

void
imta_smtp_server_run(ImtaSmtpServer *server, ImtaConnWorkFn work, ImtaSmtpServerDoneFn done,
		     gpointer data)
{
	ServerJob *job = g_new0(ServerJob, 1);

	job->server = server;
	job->work = work;
	job->done = done;
	job->data = data;
	server->busy = TRUE;
	imta_conn_run(server->conn, server_job_work, server_job_done, job);
}

/* ---- message content ------------------------------------------------------ */

/* The header is complete (or as much as is kept): count its Received:
 * lines. */
static void
content_head_done(ImtaSmtpServer *s)
{
	ServerContent *c = &s->content;
	guint limit = s->limits.max_received_lines;

	c->received = imta_smtp_count_received(c->head->str, c->head->len, limit);
	c->looping = c->received > limit;
	g_string_free(c->head, TRUE);
	c->head = NULL;
}

/* Keep the header until its blank line, for the hop count. */
static void
content_head(ImtaSmtpServer *s, const char *data, gsize len)
{
	GString *head = s->content.head;
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

static gboolean
content_sinking(const ServerContent *c)
{
	return !c->too_big && !c->looping && c->fail_code == 0;
}

/* Content from the client, LF line ends: counted, checked, handed on. */
static void
content_write(ImtaSmtpServer *s, const char *data, gsize len)
{
	ServerContent *c = &s->content;

	if (len == 0)
		return;
	if (c->head != NULL)
		content_head(s, data, len);
	c->size += len;
	if (c->limit > 0 && c->size > (guint64)c->limit)
		c->too_big = TRUE;
	if (content_sinking(c))
		s->hooks->content_write(s, s->session, s->txn, data, len);
}

/* Our Received: header, first in the content. */
static void
content_trace(ImtaSmtpServer *s)
{
	gboolean tls = imta_conn_tls_active(s->conn);
	g_autofree char *header = NULL;
	gsize len;
	ImtaSmtpTrace trace = {
		.helo = s->helo,
		.client_name = s->client_name,
		.client_ip = s->client_ip,
		.by_host = s->hostname,
		.protocol = imta_smtp_protocol_name(s->esmtp, tls, s->auth_user != NULL,
						    s->hooks->protocol == IMTA_SMTP_SERVER_LMTP),
		.tls = tls ? imta_conn_tls_description(s->conn) : NULL,
		.queue_id = s->txn_id,
		.for_address = s->rcpts == 1 ? s->first_rcpt : NULL,
		.time = g_get_real_time() / G_USEC_PER_SEC,
	};

	header = imta_smtp_received_header(&trace);
	len = strlen(header);
	if (content_sinking(&s->content))
		s->hooks->content_write(s, s->session, s->txn, header, len);
	if ((len == 0 || header[len - 1] != '\n') && content_sinking(&s->content))
		s->hooks->content_write(s, s->session, s->txn, "\n", 1);
}

static void
content_start(ImtaSmtpServer *s, gboolean bdat)
{
	ServerContent *c = &s->content;

	c->started = TRUE;
	c->bdat = bdat;
	c->head = g_string_new(NULL);
	if (bdat)
		imta_smtp_bdat_reader_init(&c->reader);
	else
		imta_smtp_data_reader_init(&c->reader);
	c->limit = s->hooks->content_start(s, s->session, s->txn);
	content_trace(s);
	if (s->scratch == NULL)
		s->scratch = g_string_sized_new(4096);
	imta_conn_set_timeout(s->conn, s->limits.data_timeout);
}

static void
content_refuse(ImtaSmtpServer *s, guint code, const char *enhanced, const char *format, ...)
	G_GNUC_PRINTF(4, 5);

static void
content_refuse(ImtaSmtpServer *s, guint code, const char *enhanced, const char *format, ...)
{
	g_autofree char *text = NULL;
	va_list args;

	va_start(args, format);
	text = g_strdup_vprintf(format, args);
	va_end(args);
	s->hooks->content_refuse(s, s->session, s->txn, s->content.size, code, enhanced, text);
}

/* What could only be checked once the content is in (or a chunk broke a
 * limit).  FALSE when it refused. */
static gboolean
content_verdict(ImtaSmtpServer *s)
{
	ServerContent *c = &s->content;

	if (c->head != NULL)
		content_head_done(s);
	if (c->looping) {
		imta_smtp_server_log(s, IMTA_LOG_NOTICE, "message %s refused: %u Received: lines",
				     s->txn_id, c->received);
		content_refuse(s, 554, "5.4.6", "Too many hops: the message has more than %u "
			       "Received: header lines (a mail loop?)", s->limits.max_received_lines);
		return FALSE;
	}
	if (c->too_big) {
		content_refuse(s, 552, "5.3.4", "Message size exceeds fixed limit of %"
			       G_GINT64_FORMAT " bytes", c->limit);
		return FALSE;
	}
	if (c->fail_code != 0) {
		content_refuse(s, c->fail_code, c->fail_enhanced, "%s", c->fail_text);
		return FALSE;
	}
	return TRUE;
}

/* The last byte of the content is in: refuse, or let the plugin answer. */
static void
content_end(ImtaSmtpServer *s)
{
	guint64 size = s->content.size;

	s->state = STATE_COMMAND;
	imta_conn_set_timeout(s->conn, s->limits.command_timeout);
	server_free_scratch(s);
	if (!content_verdict(s)) {
		imta_smtp_server_reset(s);
		return;
	}
	s->hooks->content_end(s, s->session, server_steal_txn(s), size);
}

/* ---- DATA ----------------------------------------------------------------- */

/* Why the transaction cannot take content now (code 0: it can). */
static void
server_content_refusal(ImtaSmtpServer *s, gboolean bdat, ImtaSmtpServerRefusal *refusal)
{
	static const ImtaSmtpServerRefusal no_mail = { 503, "5.5.1", "Error: need MAIL command" };
	static const ImtaSmtpServerRefusal after_bdat = { 503, "5.5.1", "Error: DATA after BDAT" };
	static const ImtaSmtpServerRefusal after_data = { 503, "5.5.1", "Error: BDAT after DATA" };
	/* RFC 2033 4.2: with LMTP, no successful RCPT makes DATA fail with
	 * 503. */
	static const ImtaSmtpServerRefusal no_rcpt_smtp = { 554, "5.5.1",
							    "Error: no valid recipients" };
	static const ImtaSmtpServerRefusal no_rcpt_lmtp = { 503, "5.5.1",
							    "Error: no valid recipients" };

	if (s->txn == NULL)
		*refusal = no_mail;
	else if (!bdat && s->content.bdat)
		*refusal = after_bdat;
	else if (bdat && s->content.started && !s->content.bdat)
		*refusal = after_data;
	else if (s->rcpts == 0)
		*refusal = s->hooks->protocol == IMTA_SMTP_SERVER_LMTP ? no_rcpt_lmtp : no_rcpt_smtp;
}

static void
server_data(ImtaSmtpServer *s)
{
	ImtaSmtpServerRefusal refusal = { 0 };

	server_content_refusal(s, FALSE, &refusal);
	if (refusal.code != 0) {
		server_refuse(s, &refusal);
		return;
	}
	content_start(s, FALSE);
	s->state = STATE_DATA;
	imta_smtp_server_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
}

static gboolean
server_data_input(ImtaSmtpServer *s)
{
	gsize len, used;
	const char *in = imta_conn_peek(s->conn, &len);
	gboolean done = FALSE;

	if (len == 0) {
		if (imta_conn_eof(s->conn))
			imta_smtp_server_vanished(s);
		return FALSE;
	}
	g_string_truncate(s->scratch, 0);
	used = imta_smtp_data_reader_feed(&s->content.reader, in, len, s->scratch, &done);
	imta_conn_consume(s->conn, used);
	content_write(s, s->scratch->str, s->scratch->len);
	if (done)
		content_end(s);
	return used > 0 || done;
}

/* ---- BDAT (RFC 3030) ------------------------------------------------------ */

static void
bdat_chunk_end(ImtaSmtpServer *s)
{
	ServerContent *c = &s->content;

	s->state = STATE_COMMAND;
	if (s->chunk_refusal.code != 0) {
		imta_conn_set_timeout(s->conn, s->limits.command_timeout);
		server_refuse(s, &s->chunk_refusal);
		s->chunk_refusal = (ImtaSmtpServerRefusal){ 0 };
		return;
	}
	if (s->chunk_last) {
		g_string_truncate(s->scratch, 0);
		imta_smtp_bdat_reader_finish(&c->reader, s->scratch);
		content_write(s, s->scratch->str, s->scratch->len);
		content_end(s);
		return;
	}
	imta_conn_set_timeout(s->conn, s->limits.command_timeout);
	/* A chunk that broke a limit ends an SMTP transaction at once (RFC
	 * 3030: the client sends no more chunks after an error); LMTP
	 * answers a refusal per recipient, after the LAST chunk. */
	if (s->hooks->protocol == IMTA_SMTP_SERVER_SMTP && (c->too_big || c->fail_code != 0)) {
		content_verdict(s);
		imta_smtp_server_reset(s);
		return;
	}
	imta_smtp_server_reply(s, 250, "2.0.0", "Ok: %" G_GUINT64_FORMAT " octets received",
			       s->chunk_size);
}

static gboolean
server_bdat_input(ImtaSmtpServer *s)
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
			imta_smtp_server_vanished(s);
		return FALSE;
	}
	take = (gsize)MIN((guint64)len, s->chunk_left);
	if (s->chunk_refusal.code == 0) {
		g_string_truncate(s->scratch, 0);
		imta_smtp_bdat_reader_feed(&s->content.reader, in, take, s->scratch);
		content_write(s, s->scratch->str, s->scratch->len);
	}
	imta_conn_consume(s->conn, take);
	s->chunk_left -= take;
	return TRUE;
}

/* `refusal`: the plugin's, or NULL. */
static void
server_bdat(ImtaSmtpServer *s, const ImtaSmtpCommand *cmd, const ImtaSmtpServerRefusal *refusal)
{
	s->chunk_refusal = (ImtaSmtpServerRefusal){ 0 };
	if (refusal != NULL)
		s->chunk_refusal = *refusal;
	else
		server_content_refusal(s, TRUE, &s->chunk_refusal);
	/* Even a refused chunk is read to its end: its bytes are not
	 * commands. */
	s->chunk_size = cmd->chunk_size;
	s->chunk_left = cmd->chunk_size;
	s->chunk_last = cmd->last;
	s->state = STATE_BDAT;
	if (s->chunk_refusal.code == 0 && !s->content.started)
		content_start(s, TRUE);
	else if (s->scratch == NULL)
		s->scratch = g_string_sized_new(4096);
	imta_conn_set_timeout(s->conn, s->limits.data_timeout);
}

/* ---- STARTTLS --------------------------------------------------------------- */

gboolean
imta_smtp_server_start_tls(ImtaSmtpServer *server)
{
	if (server->txn != NULL) {
		imta_smtp_server_reply(server, 503, "5.5.1", "Error: MAIL transaction in progress");
		return FALSE;
	}
	imta_smtp_server_reply(server, 220, "2.0.0", "Ready to start TLS");
	if (!imta_conn_start_tls(server->conn)) {
		imta_smtp_server_log(server, IMTA_LOG_ERROR,
				     "STARTTLS: the TLS handshake could not start");
		imta_smtp_server_close(server);
		return FALSE;
	}
	/* RFC 3207 4.2: forget what the client said in clear. */
	server->tls_starting = TRUE;
	imta_smtp_server_set_helo(server, NULL, FALSE);
	return TRUE;
}

void
imta_smtp_server_own_input(ImtaSmtpServer *server, gboolean own)
{
	g_return_if_fail(!own || server->hooks->input != NULL);
	if (server->state == STATE_CLOSED)
		return;
	server->state = own ? STATE_PLUGIN : STATE_COMMAND;
}

/* ---- commands ---------------------------------------------------------------- */

/* May the session go on with a command?  The error limit and draining end
 * it at a command boundary. */
static gboolean
server_gate(ImtaSmtpServer *s)
{
	if (s->errors >= s->limits.rejections) {
		imta_smtp_server_log(s, IMTA_LOG_NOTICE, "closing after %u errors", s->errors);
		imta_smtp_server_close_with(s, "4.7.0", "Error: too many errors");
		return FALSE;
	}
	if (s->draining || imta_conn_draining(s->conn)) {
		server_shutting_down(s);
		return FALSE;
	}
	return TRUE;
}

/* An HTTP request or header: not a mail client. */
static gboolean
server_non_smtp(const char *line, gsize len)
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

/* MAIL and RCPT out of sequence (RFC 5321 4.1.4); the hooks see only
 * those that may begin or add to a transaction. */
static gboolean
server_sequence_refusal(ImtaSmtpServer *s, ImtaSmtpVerb verb, ImtaSmtpServerRefusal *refusal)
{
	static const ImtaSmtpServerRefusal no_helo_smtp = { 503, "5.5.1",
							    "Error: send HELO/EHLO first" };
	static const ImtaSmtpServerRefusal no_helo_lmtp = { 503, "5.5.1",
							    "Error: send LHLO first" };
	static const ImtaSmtpServerRefusal nested = { 503, "5.5.1", "Error: nested MAIL command" };
	static const ImtaSmtpServerRefusal no_mail = { 503, "5.5.1", "Error: need MAIL command" };
	static const ImtaSmtpServerRefusal late = { 503, "5.5.1",
						    "Error: RCPT after message content" };

	if (verb == IMTA_SMTP_MAIL && s->helo == NULL)
		*refusal = s->hooks->protocol == IMTA_SMTP_SERVER_LMTP ? no_helo_lmtp : no_helo_smtp;
	else if (verb == IMTA_SMTP_MAIL && s->txn != NULL)
		*refusal = nested;
	else if (verb == IMTA_SMTP_RCPT && s->txn == NULL)
		*refusal = no_mail;
	else if (verb == IMTA_SMTP_RCPT && s->content.started)
		*refusal = late;
	return refusal->code != 0;
}

static void
server_dispatch(ImtaSmtpServer *s, const ImtaSmtpCommand *cmd)
{
	ImtaSmtpServerRefusal refusal = { 0 };

	if (s->hooks->refuse != NULL && s->hooks->refuse(s, s->session, cmd, &refusal)) {
		if (cmd->verb == IMTA_SMTP_BDAT)
			server_bdat(s, cmd, &refusal);
		else
			server_refuse(s, &refusal);
		return;
	}
	if (server_sequence_refusal(s, cmd->verb, &refusal)) {
		server_refuse(s, &refusal);
		return;
	}
	switch (cmd->verb) {
	case IMTA_SMTP_DATA:
		server_data(s);
		break;
	case IMTA_SMTP_BDAT:
		server_bdat(s, cmd, NULL);
		break;
	case IMTA_SMTP_RSET:
		imta_smtp_server_reset(s);
		imta_smtp_server_reply(s, 250, "2.0.0", "Ok");
		break;
	case IMTA_SMTP_NOOP:
		imta_smtp_server_reply(s, 250, "2.0.0", "Ok");
		break;
	case IMTA_SMTP_QUIT:
		imta_smtp_server_reply(s, 221, "2.0.0", "%s closing connection", s->hostname);
		imta_smtp_server_close(s);
		break;
	case IMTA_SMTP_MAIL:
		s->hooks->mail(s, s->session, cmd);
		break;
	case IMTA_SMTP_RCPT:
		s->hooks->rcpt(s, s->session, cmd);
		break;
	default:
		s->hooks->command(s, s->session, cmd);
		break;
	}
}

static void
server_command(ImtaSmtpServer *s, const char *line, gsize len)
{
	ImtaSmtpCommand cmd = { 0 };
	ImtaSmtpError err = { 0 };
	ImtaSmtpOffer offer;

	if (!server_gate(s))
		return;
	/* The AUTH initial response is a password in clear. */
	if (s->limits.debug && len >= 5 && g_ascii_strncasecmp(line, "AUTH ", 5) == 0)
		imta_smtp_server_log(s, IMTA_LOG_INFO, "< AUTH ...");
	else if (s->limits.debug)
		imta_smtp_server_log(s, IMTA_LOG_INFO, "< %.*s", (int)MIN(len, 200), line);
	if (s->hooks->refuse_non_smtp && server_non_smtp(line, len)) {
		imta_smtp_server_log(s, IMTA_LOG_NOTICE, "non-SMTP command from the client; closing");
		imta_smtp_server_close_with(s, "4.7.0", "Error: non-SMTP command");
		return;
	}
	memset(&offer, 0, sizeof offer);
	s->hooks->offer(s, s->session, &offer);
	if (!imta_smtp_parse_command(line, len, &offer, &cmd, &err)) {
		imta_smtp_server_reply(s, err.code, err.enhanced, "%s",
				       err.text != NULL ? err.text : "Syntax error");
		imta_smtp_error_clear(&err);
		imta_smtp_command_clear(&cmd);
		return;
	}
	server_dispatch(s, &cmd);
	imta_smtp_command_clear(&cmd);
}

static gboolean
server_command_input(ImtaSmtpServer *s)
{
	const char *line;
	gsize len;

	/* IMTA_SMTP_COMMAND_LINE_MAX counts the CR LF. */
	switch (imta_conn_read_line(s->conn, IMTA_SMTP_COMMAND_LINE_MAX - 2, &line, &len)) {
	case IMTA_CONN_NEED_MORE:
		return FALSE;
	case IMTA_CONN_EOF:
		imta_smtp_server_vanished(s);
		return FALSE;
	case IMTA_CONN_TOO_LONG:
		if (server_gate(s))
			imta_smtp_server_reply(s, 500, "5.5.2", "Line too long");
		return TRUE;
	case IMTA_CONN_LINE:
		server_command(s, line, len);
		return TRUE;
	}
	return FALSE;
}

/* Take every buffered command or content byte the session can use now. */
static void
server_pump(ImtaSmtpServer *s)
{
	gboolean more = TRUE;

	while (more && !s->busy && !s->tls_starting) {
		if (imta_conn_output_pending(s->conn) > IMTA_CONN_OUTPUT_HIGH)
			return;
		switch (s->state) {
		case STATE_COMMAND:
			more = server_command_input(s);
			break;
		case STATE_DATA:
			more = server_data_input(s);
			break;
		case STATE_BDAT:
			more = server_bdat_input(s);
			break;
		case STATE_PLUGIN:
			more = s->hooks->input(s, s->session);
			break;
		case STATE_STARTING:
		case STATE_CLOSED:
			return;
		}
	}
}

/* ---- the connection's callbacks ---------------------------------------------- */

gboolean
imta_smtp_server_greet(ImtaSmtpServer *server)
{
	g_autofree char *text = NULL;

	if (server->draining || imta_conn_draining(server->conn)) {
		server_shutting_down(server);
		return FALSE;
	}
	text = server->hooks->greeting(server, server->session);
	server->state = STATE_COMMAND;
	imta_smtp_server_reply(server, 220, NULL, "%s", text);
	return TRUE;
}

static const char *
server_hostname(const ImtaConfig *config)
{
	if (config->tailor != NULL && config->tailor->hostname != NULL)
		return config->tailor->hostname;
	return g_get_host_name();
}

gpointer
imta_smtp_server_open(ImtaConn *conn, const ImtaSmtpServerHooks *hooks)
{
	ImtaSmtpServer *s = g_new0(ImtaSmtpServer, 1);
	g_autoptr(GError) error = NULL;

	s->conn = conn;
	s->hooks = hooks;
	s->config = imta_conn_config(conn);
	s->state = STATE_STARTING;
	s->hostname = g_strdup(server_hostname(s->config));
	s->client_ip = g_strdup(imta_conn_remote_ip(conn));
	s->session = hooks->open(s, &s->limits, &error);
	if (s->session == NULL) {
		static const char refusal[] = "421 4.3.5 Server configuration error\r\n";

		imta_smtp_server_log(s, IMTA_LOG_ERROR, "%s",
				     error != NULL ? error->message : "no session");
		imta_conn_write(conn, refusal, sizeof refusal - 1);
		imta_smtp_server_close(s);
		return s;
	}
	imta_conn_set_timeout(conn, s->limits.command_timeout);
	if (imta_conn_draining(conn)) {
		server_shutting_down(s);
		return s;
	}
	if (hooks->start != NULL)
		hooks->start(s, s->session);
	else
		imta_smtp_server_greet(s);
	return s;
}

void
imta_smtp_server_input(ImtaConn *conn, gpointer server)
{
	ImtaSmtpServer *s = server;

	if (s->state == STATE_CLOSED)
		return;
	if (s->tls_starting && imta_conn_tls_active(conn))
		s->tls_starting = FALSE;
	server_pump(s);
	/* The client is gone and nothing it sent can be used any more. */
	if (s->state != STATE_CLOSED && !s->busy && !s->tls_starting && imta_conn_eof(conn)) {
		gsize len;

		imta_conn_peek(conn, &len);
		if (len == 0)
			imta_smtp_server_vanished(s);
	}
}

void
imta_smtp_server_timeout(ImtaConn *conn, gpointer server)
{
	ImtaSmtpServer *s = server;

	/* Work in progress answers when it is done. */
	if (s->busy || s->state == STATE_CLOSED)
		return;
	imta_smtp_server_log(s, IMTA_LOG_NOTICE, "timeout %s",
			     s->state == STATE_DATA || s->state == STATE_BDAT
				     ? "during the content" : "waiting for a command");
	if (s->txn != NULL && s->content.started)
		imta_smtp_server_log(s, IMTA_LOG_NOTICE, "message %s: %s", s->txn_id,
				     server_nothing(s));
	imta_smtp_server_close_with(s, "4.4.2", "Error: timeout exceeded");
}

void
imta_smtp_server_drain(ImtaConn *conn, gpointer server)
{
	ImtaSmtpServer *s = server;

	s->draining = TRUE;
}

void
imta_smtp_server_close_cb(ImtaConn *conn, gpointer server)
{
	ImtaSmtpServer *s = server;

	if (s == NULL)
		return;
	imta_smtp_server_log(s, IMTA_LOG_INFO, "closed: %u message%s, %u error%s", s->messages,
			     s->messages == 1 ? "" : "s", s->errors, s->errors == 1 ? "" : "s");
	imta_smtp_server_reset(s);
	if (s->session != NULL)
		s->hooks->free(s, s->session);
	g_free(s->hostname);
	g_free(s->client_ip);
	g_free(s->client_name);
	g_free(s->helo);
	g_free(s->auth_user);
	g_free(s);
}
