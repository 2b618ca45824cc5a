/*
 * smtp_server.h - the server side of SMTP (RFC 5321) and LMTP (RFC 2033)
 * on the event-driven connection of slave.h: one session engine for every
 * slave program that takes mail in (tcp_smtp, lmtp, or a filtering or
 * conversion service of a third party).
 *
 * The engine owns what every ESMTP server does the same way:
 *
 *   the connection  the ImtaSlaveOps callbacks (open, input, timeout,
 *                   drain, close), the timeouts and the 421 that ends a
 *                   session (timeout, too many errors, worker retiring);
 *   input           command lines of at most IMTA_SMTP_COMMAND_LINE_MAX
 *                   octets with their CR LF, taken one at a time in the
 *                   order they came, so pipelined commands (RFC 2920) are
 *                   answered in order and their replies leave together;
 *                   input stops while a reply backlog waits to be sent;
 *   replies         imta_smtp_reply() formatting (multi-line, enhanced
 *                   status codes) and the count of the client's errors;
 *   content         DATA (dot-unstuffing, only CR LF . CR LF ends it) and
 *                   BDAT chunks (RFC 3030; a refused chunk is still read
 *                   to its end, its bytes are never commands), the size
 *                   limit, the hop count of the Received: lines, our own
 *                   Received: header in front of the content;
 *   STARTTLS        the 220, the handshake, and forgetting what the client
 *                   said in clear (pipelined input is discarded);
 *   sequence        RSET, NOOP, QUIT, DATA and BDAT answered by the
 *                   engine, and MAIL or RCPT out of sequence refused.
 *
 * The plugin supplies what differs through ImtaSmtpServerHooks: its own
 * session state, the greeting, the hello verb and the other commands
 * (MAIL, RCPT, AUTH, VRFY, ...), the content sink, and what happens once
 * the content is complete (one reply after a queue commit for SMTP, one
 * reply per recipient for LMTP).
 *
 * Use:
 *
 *	static const ImtaSmtpServerHooks my_hooks = { .open = ..., ... };
 *	static gpointer my_open(ImtaConn *conn)
 *	{
 *		return imta_smtp_server_open(conn, &my_hooks);
 *	}
 *	const ImtaSlaveOps my_slave_ops = IMTA_SMTP_SERVER_SLAVE_OPS(my_open);
 *
 * Ownership.  The engine owns the ImtaSmtpServer (the session pointer the
 * worker hands to the callbacks) and frees it in ops->close; the plugin's
 * session (returned by hooks->open) is freed by hooks->free just before.
 * A transaction handed to imta_smtp_server_begin() belongs to the engine,
 * which frees it with hooks->txn_free on RSET, imta_smtp_server_reset(),
 * a refused content or the end of the session, or hands it back to the
 * plugin with hooks->content_end.
 *
 * Threads.  Every hook runs on the connection's thread (slave.h), never
 * two at once for one connection, and may call any function of this
 * header.  Work that blocks goes through imta_smtp_server_run(): its
 * work function runs on the worker's blocking pool and must not call
 * this header (it may read what the plugin owns: the engine touches
 * nothing of the plugin's while the work runs, and takes no input).
 * Functions of this header may only be called from hooks and done
 * callbacks of the connection they belong to.
 */
#ifndef IMTA_SMTP_SERVER_H
#define IMTA_SMTP_SERVER_H

#include <glib.h>
#include <imta/channel.h>
#include <imta/log.h>
#include <imta/slave.h>
#include <imta/smtp.h>

G_BEGIN_DECLS

typedef struct _ImtaSmtpServer ImtaSmtpServer;

typedef enum {
	/* RFC 5321: HELO/EHLO; DATA without recipients is 554; the end of
	 * the content gets one reply; a BDAT chunk over the size limit
	 * ends the transaction at once. */
	IMTA_SMTP_SERVER_SMTP,
	/* RFC 2033: LHLO; DATA without recipients is 503; the end of the
	 * content gets one reply per accepted recipient, so a refusal
	 * waits for the LAST chunk. */
	IMTA_SMTP_SERVER_LMTP,
} ImtaSmtpServerProtocol;

/* Set by hooks->open; the engine reads them for the whole session. */
typedef struct {
	guint command_timeout;     /* seconds waiting for a command (0: none) */
	guint data_timeout;        /* seconds within DATA or a BDAT chunk */
	guint rejections;          /* client errors before "421 4.7.0 too many errors" */
	guint max_received_lines;  /* more Received: lines: a loop, refused 554 5.4.6 */
	gboolean debug;            /* log every command and reply */
} ImtaSmtpServerLimits;

/* A refusal with static strings. */
typedef struct {
	guint code;
	const char *enhanced;      /* "5.7.0", or NULL */
	const char *text;
} ImtaSmtpServerRefusal;

/* The plugin's side.  `session` is what hooks->open returned, `txn`
 * what the plugin gave imta_smtp_server_begin().  Only the hooks marked
 * optional may be NULL. */
typedef struct {
	ImtaSmtpServerProtocol protocol;
	/* Close with "421 4.7.0 Error: non-SMTP command" on a line that
	 * looks like HTTP (a browser, or a proxy abused to reach the port). */
	gboolean refuse_non_smtp;

	/* ---- the session ---- */

	/* A new connection: allocate the plugin's session and set *limits.
	 * NULL with *error set when the configuration does not allow a
	 * session: the engine logs the error and closes with "421 4.3.5
	 * Server configuration error" (the plugin keeps nothing allocated). */
	gpointer (*open)(ImtaSmtpServer *server, ImtaSmtpServerLimits *limits, GError **error);
	/* Optional: the session's start, e.g. a client check through
	 * imta_smtp_server_run().  It must lead to imta_smtp_server_greet(),
	 * at once or from the done callback.  A check started after the
	 * greeting runs while the greeting travels, and no command is taken
	 * before its done.  NULL: greet at once. */
	void (*start)(ImtaSmtpServer *server, gpointer session);
	/* The greeting's text after "220 " (newly allocated). */
	char *(*greeting)(ImtaSmtpServer *server, gpointer session);
	/* The session is over: free what hooks->open allocated. */
	void (*free)(ImtaSmtpServer *server, gpointer session);

	/* ---- commands ---- */

	/* What the parser may accept now (ESMTP parameters, SIZE); *offer
	 * comes zeroed. */
	void (*offer)(ImtaSmtpServer *server, gpointer session, ImtaSmtpOffer *offer);
	/* Optional: refuse a command before anything else looks at it
	 * (e.g. 530 before STARTTLS on a channel that requires TLS): TRUE
	 * with *refusal set.  A refused BDAT chunk is read, then refused. */
	gboolean (*refuse)(ImtaSmtpServer *server, gpointer session, const ImtaSmtpCommand *cmd,
			   ImtaSmtpServerRefusal *refusal);
	/* MAIL after the hello and outside a transaction (the engine
	 * refuses the others with 503): check it, and begin a transaction
	 * with imta_smtp_server_begin() or refuse.  Like every command
	 * hook, it answers at once or from a done callback of
	 * imta_smtp_server_run(). */
	void (*mail)(ImtaSmtpServer *server, gpointer session, const ImtaSmtpCommand *cmd);
	/* RCPT within a transaction, before its content (the engine
	 * refuses the others with 503): accept it with
	 * imta_smtp_server_recipient_accepted() and 250, or refuse. */
	void (*rcpt)(ImtaSmtpServer *server, gpointer session, const ImtaSmtpCommand *cmd);
	/* Every other command but DATA, BDAT, RSET, NOOP and QUIT: the
	 * hello, STARTTLS, AUTH, VRFY, HELP, an unknown verb. */
	void (*command)(ImtaSmtpServer *server, gpointer session, const ImtaSmtpCommand *cmd);
	/* Optional: input while the plugin reads it itself
	 * (imta_smtp_server_own_input, e.g. an AUTH exchange).  Take what
	 * can be used now; FALSE when nothing more can be taken yet. */
	gboolean (*input)(ImtaSmtpServer *server, gpointer session);
	/* Optional: is a counted reply an error of the client?  NULL: every
	 * 4xx and 5xx but 421 and this system's trouble (4.3.x, and 4.4.x
	 * such as a directory that cannot answer). */
	gboolean (*client_error)(guint code, const char *enhanced);

	/* ---- the transaction and its content ---- */

	void (*txn_free)(gpointer txn);
	/* The content begins (DATA accepted, or the first BDAT chunk): make
	 * the sink ready and return the size limit in bytes (0: none).
	 * Our Received: header is the first write. */
	gint64 (*content_start)(ImtaSmtpServer *server, gpointer session, gpointer txn);
	/* Content with LF line ends, header included.  Not called once the
	 * content is over the limit, a loop, or failed: a sink that cannot
	 * take it calls imta_smtp_server_content_failed(). */
	void (*content_write)(ImtaSmtpServer *server, gpointer session, gpointer txn,
			      const char *data, gsize len);
	/* The content is refused (a loop, too big, the sink failed): reply
	 * (once, or once per recipient with LMTP).  `size`: the client's
	 * content bytes so far.  The engine frees the transaction after. */
	void (*content_refuse)(ImtaSmtpServer *server, gpointer session, gpointer txn,
			       guint64 size, guint code, const char *enhanced, const char *text);
	/* The content is complete and passed the engine's checks: the hook
	 * owns `txn` now and answers, at once or through
	 * imta_smtp_server_run(). */
	void (*content_end)(ImtaSmtpServer *server, gpointer session, gpointer txn, guint64 size);
} ImtaSmtpServerHooks;

/* ---- the connection (ImtaSlaveOps) ------------------------------------ */

/* ops->open: a session under `hooks` (static: they must outlive it). */
gpointer imta_smtp_server_open(ImtaConn *conn, const ImtaSmtpServerHooks *hooks);
void imta_smtp_server_input(ImtaConn *conn, gpointer server);
void imta_smtp_server_timeout(ImtaConn *conn, gpointer server);
void imta_smtp_server_drain(ImtaConn *conn, gpointer server);
void imta_smtp_server_close_cb(ImtaConn *conn, gpointer server);

#define IMTA_SMTP_SERVER_SLAVE_OPS(open_fn) { \
		.open = (open_fn), \
		.input = imta_smtp_server_input, \
		.timeout = imta_smtp_server_timeout, \
		.drain = imta_smtp_server_drain, \
		.close = imta_smtp_server_close_cb, \
	}

/* ---- who and where ---------------------------------------------------- */

ImtaConn *imta_smtp_server_conn(const ImtaSmtpServer *server);
const ImtaConfig *imta_smtp_server_config(const ImtaSmtpServer *server);
/* The service's channel (imta_conn_channel). */
const ImtaChannel *imta_smtp_server_channel(const ImtaSmtpServer *server);
/* Our name: the tailor file's host name, else the system's. */
const char *imta_smtp_server_hostname(const ImtaSmtpServer *server);
const char *imta_smtp_server_client_ip(const ImtaSmtpServer *server);
gboolean imta_smtp_server_debug(const ImtaSmtpServer *server);

/* The client's name for the Received: header (reverse DNS); NULL. */
void imta_smtp_server_set_client_name(ImtaSmtpServer *server, const char *name);
const char *imta_smtp_server_client_name(const ImtaSmtpServer *server);
/* The HELO/EHLO/LHLO argument (NULL until then, and again after
 * STARTTLS); `esmtp`: EHLO or LHLO. */
void imta_smtp_server_set_helo(ImtaSmtpServer *server, const char *helo, gboolean esmtp);
const char *imta_smtp_server_helo(const ImtaSmtpServer *server);
gboolean imta_smtp_server_esmtp(const ImtaSmtpServer *server);
/* The AUTH identity (takes `user`); NULL until AUTH succeeded. */
void imta_smtp_server_set_auth_user(ImtaSmtpServer *server, char *user);
const char *imta_smtp_server_auth_user(const ImtaSmtpServer *server);
/* IMTA_MAIL_LOG_TLS and IMTA_MAIL_LOG_SASL as they are now (mail_log.h). */
guint imta_smtp_server_mail_log_flags(const ImtaSmtpServer *server);

/* ---- replies, logs, the end ------------------------------------------- */

/* A reply (imta_smtp_reply; enhanced NULL or "" for none).  A refusal
 * counts against limits->rejections as hooks->client_error says. */
void imta_smtp_server_reply(ImtaSmtpServer *server, guint code, const char *enhanced,
			    const char *format, ...) G_GNUC_PRINTF(4, 5);
/* A reply that never counts as the client's error. */
void imta_smtp_server_reply_uncounted(ImtaSmtpServer *server, guint code, const char *enhanced,
				      const char *format, ...) G_GNUC_PRINTF(4, 5);
void imta_smtp_server_log(const ImtaSmtpServer *server, ImtaLogLevel level, const char *format,
			  ...) G_GNUC_PRINTF(3, 4);
/* Close after what is written (the close callback follows). */
void imta_smtp_server_close(ImtaSmtpServer *server);
/* "421 <enhanced> <hostname> <text>", then close. */
void imta_smtp_server_close_with(ImtaSmtpServer *server, const char *enhanced, const char *text);
/* The client went away: log a lost content, close. */
void imta_smtp_server_vanished(ImtaSmtpServer *server);

/* ---- greeting, TLS, input --------------------------------------------- */

/* "220 " and hooks->greeting and TRUE, or the 421 of a retiring worker
 * and FALSE (the session is closing). */
gboolean imta_smtp_server_greet(ImtaSmtpServer *server);
/* STARTTLS once the plugin's checks passed: 503 within a transaction;
 * else "220 2.0.0 Ready to start TLS", the handshake, and the HELO/EHLO
 * forgotten.  FALSE when it refused or the session closed. */
gboolean imta_smtp_server_start_tls(ImtaSmtpServer *server);
/* TRUE: hooks->input reads the input until called with FALSE, which
 * takes commands again. */
void imta_smtp_server_own_input(ImtaSmtpServer *server, gboolean own);

/* ---- blocking work ---------------------------------------------------- */

typedef void (*ImtaSmtpServerDoneFn)(ImtaSmtpServer *server, gpointer session, gpointer data);

/* work(data) on the blocking pool, then done() on the connection's
 * thread, then the engine goes on with buffered input.  No input is
 * taken and no timeout ends the session meanwhile; done owns `data` and
 * must answer what started the work. */
void imta_smtp_server_run(ImtaSmtpServer *server, ImtaConnWorkFn work, ImtaSmtpServerDoneFn done,
			  gpointer data);

/* ---- the transaction -------------------------------------------------- */

/* A transaction begins (MAIL accepted): the engine owns `txn` now; `id`
 * (its queue id, for logs and the Received: header) stays valid while
 * txn lives. */
void imta_smtp_server_begin(ImtaSmtpServer *server, gpointer txn, const char *id);
/* The current transaction, or NULL. */
gpointer imta_smtp_server_txn(const ImtaSmtpServer *server);
/* A recipient was accepted (RCPT answered 250), as the client gave it. */
void imta_smtp_server_recipient_accepted(ImtaSmtpServer *server, const char *given);
/* DATA or a BDAT chunk began the content of the current transaction. */
gboolean imta_smtp_server_content_started(const ImtaSmtpServer *server);
/* Drop the transaction (hooks->txn_free), e.g. after HELO. */
void imta_smtp_server_reset(ImtaSmtpServer *server);
/* The sink cannot take the content: it is refused with this reply at its
 * end (the first failure counts); nothing more is written. */
void imta_smtp_server_content_failed(ImtaSmtpServer *server, guint code, const char *enhanced,
				     const char *format, ...) G_GNUC_PRINTF(4, 5);

/* Messages answered in this session (for a per-session limit, and the
 * log when it ends); the plugin counts them. */
guint imta_smtp_server_messages(const ImtaSmtpServer *server);
void imta_smtp_server_count_message(ImtaSmtpServer *server);

G_END_DECLS

#endif /* IMTA_SMTP_SERVER_H */
