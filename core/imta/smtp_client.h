/*
 * smtp_client.h - the client side of SMTP (RFC 5321) and LMTP (RFC 2033):
 * one session with one server over a TCP connection, for masters that
 * hand messages on (tcp_smtp, lmtp).
 *
 * A session is blocking and belongs to one thread at a time; every read
 * and write is bounded by the timeouts of ImtaSmtpClientTimeouts (the
 * RFC 5321 section 4.5.3.2 minimums by default), so a server that stops
 * answering costs at most that long, never a hang.  Replies are bounded
 * (IMTA_SMTP_CLIENT_MAX_REPLY bytes, at most 100 lines); a longer or
 * malformed reply breaks the session like a lost connection.
 *
 * Use:
 *
 *	c = imta_smtp_client_connect(&peer, &opts, &error);   greeting read
 *	imta_smtp_client_hello(c, &reply, &error);           EHLO, else HELO
 *	if (imta_smtp_client_has(c, IMTA_SMTP_EXT_STARTTLS))
 *		imta_smtp_client_starttls(c, &tls, &reply, &error); EHLO again
 *	imta_smtp_client_send(c, msg, rcpts, n, content, &result, &error);
 *	... more messages on the same session (imta_smtp_client_reusable) ...
 *	imta_smtp_client_quit(c);
 *
 * A broken session (lost connection, timeout, bad reply, failed TLS
 * handshake) sets an error in G_IO_ERROR (TIMED_OUT, CONNECTION_CLOSED,
 * INVALID_DATA, ...) whose message says at which step
 * ("connection lost after RCPT TO:<b@example.org>"); the session is then
 * unusable and only imta_smtp_client_free() is allowed.
 */
#ifndef IMTA_SMTP_CLIENT_H
#define IMTA_SMTP_CLIENT_H

#include <gio/gio.h>
#include <imta/job.h>

G_BEGIN_DECLS

#define IMTA_SMTP_CLIENT_MAX_REPLY 8192

typedef struct _ImtaSmtpClient ImtaSmtpClient;

/* Extensions the server offered in its EHLO (LHLO) reply. */
typedef enum {
	IMTA_SMTP_EXT_PIPELINING          = 1 << 0,
	IMTA_SMTP_EXT_SIZE                = 1 << 1,
	IMTA_SMTP_EXT_8BITMIME            = 1 << 2,
	IMTA_SMTP_EXT_DSN                 = 1 << 3,
	IMTA_SMTP_EXT_STARTTLS            = 1 << 4,
	IMTA_SMTP_EXT_ENHANCEDSTATUSCODES = 1 << 5,
	IMTA_SMTP_EXT_CHUNKING            = 1 << 6,
	IMTA_SMTP_EXT_SMTPUTF8            = 1 << 7,
	IMTA_SMTP_EXT_AUTH                = 1 << 8,
} ImtaSmtpExt;

/* Milliseconds; 0 in a field means its default. */
typedef struct {
	guint connect_ms;    /* TCP connect: 30 s */
	guint greeting_ms;   /* the 220 greeting: 5 min */
	guint command_ms;    /* EHLO, STARTTLS, MAIL, RCPT, RSET, QUIT replies: 5 min */
	guint data_init_ms;  /* the 354 after DATA: 2 min */
	guint data_block_ms; /* each write of the content: 3 min */
	guint data_term_ms;  /* the reply(ies) after the final dot: 10 min */
} ImtaSmtpClientTimeouts;

/* Where to connect and how to introduce ourselves. */
typedef struct {
	const char *host;          /* server's name, for diagnostics and TLS (may be NULL) */
	const char *address;       /* IPv4 or IPv6 address as text */
	guint16 port;
	const char *bind_address;  /* local address to connect from, or NULL */
	const char *helo_name;     /* our name in EHLO/HELO/LHLO */
	gboolean lmtp;             /* LHLO, and one reply per recipient after DATA */
	ImtaSmtpClientTimeouts timeouts;
	/* A UNIX-domain socket to connect to instead of address:port (an
	 * LMTP server on this system); address may then be NULL, and
	 * diagnostics name the peer "host [unix:PATH]". */
	const char *socket_path;
} ImtaSmtpClientPeer;

/* One reply.  code 0: no reply (the session broke first).  A reply
 * filled in by a function here must start zeroed (= { 0 }): each call
 * clears what it held before writing it. */
typedef struct {
	guint code;
	char enhanced[16];   /* "5.1.1", or "" when the server gave none */
	char *text;          /* the reply as received, lines joined by " " (code
			      * of continuation lines dropped), or NULL; the
			      * first line's enhanced code stays at its start,
			      * the same code on later lines is dropped, and
			      * bytes other than printable ASCII become '?' */
} ImtaSmtpReply;

void imta_smtp_reply_clear(ImtaSmtpReply *reply);

typedef enum {
	IMTA_SMTP_TLS_VERIFY_NONE,   /* encrypt; accept any certificate */
	IMTA_SMTP_TLS_VERIFY_CHAIN,  /* the chain must verify to a trusted CA */
	IMTA_SMTP_TLS_VERIFY_NAME,   /* ...and name the host (peer.host) */
} ImtaSmtpTlsVerify;

typedef struct {
	ImtaSmtpTlsVerify verify;
	const char *ca_file;       /* PEM trust anchors; NULL = the system's */
	const char *priority;      /* GnuTLS priority string; NULL = "NORMAL" */
	const char *cert_file, *key_file; /* client certificate, or NULL */
} ImtaSmtpTlsClientOptions;

/* Connect (trying nothing else: the caller walks MX hosts and addresses)
 * and read the greeting into *greeting_r (optional).  NULL with error when
 * the connection fails or times out, and also when the greeting is not
 * 2xx: then the error is IMTA_SMTP_CLIENT_ERROR_REPLY and *greeting_r
 * holds the reply. */
ImtaSmtpClient *imta_smtp_client_connect(const ImtaSmtpClientPeer *peer,
					 ImtaSmtpReply *greeting_r, GError **error);

/* EHLO, falling back to HELO on a 5xx (SMTP only).  FALSE with
 * IMTA_SMTP_CLIENT_ERROR_REPLY when refused (the reply in *reply_r). */
gboolean imta_smtp_client_hello(ImtaSmtpClient *c, ImtaSmtpReply *reply_r, GError **error);

/* STARTTLS, the handshake and the check of `opts->verify`, then EHLO
 * again.  On FALSE the session is unusable (a server may not be spoken to
 * in clear after a failed handshake); the error says why ("certificate of
 * mx.example.org: signer not trusted"), and is IMTA_SMTP_CLIENT_ERROR_TLS
 * when verification failed.  Two failures leave the session usable in
 * clear: the server refused STARTTLS (IMTA_SMTP_CLIENT_ERROR_REPLY, the
 * reply in *reply_r), or the local TLS setup failed (unreadable ca_file or
 * client certificate, bad priority string: G_IO_ERROR, nothing was sent);
 * imta_smtp_client_reusable() tells them apart. */
gboolean imta_smtp_client_starttls(ImtaSmtpClient *c, const ImtaSmtpTlsClientOptions *opts,
				   ImtaSmtpReply *reply_r, GError **error);

guint imta_smtp_client_extensions(const ImtaSmtpClient *c);    /* ImtaSmtpExt bits */
gboolean imta_smtp_client_has(const ImtaSmtpClient *c, ImtaSmtpExt ext);
guint64 imta_smtp_client_max_size(const ImtaSmtpClient *c);    /* SIZE n; 0 = none given */
gboolean imta_smtp_client_is_tls(const ImtaSmtpClient *c);
/* "mx.example.org [192.0.2.1]" (or "[192.0.2.1]" without a name). */
const char *imta_smtp_client_peer_text(const ImtaSmtpClient *c);

/* The outcome of one transaction. */
typedef struct {
	ImtaSmtpReply mail;        /* code 0 when not reached */
	guint n_rcpts;
	/* Per recipient, the reply that decides it: the MAIL reply when that
	 * was not 2xx, else the RCPT reply when that was not 2xx, else the
	 * DATA reply when that was not 354, else the reply to the end of
	 * data (LMTP: that recipient's own), else code 0 (the session broke
	 * before).  A 421 decides every recipient not decided before it. */
	ImtaSmtpReply *rcpt;
	gboolean data_sent;        /* the final dot went out */
} ImtaSmtpSendResult;

void imta_smtp_send_result_clear(ImtaSmtpSendResult *result);

/* One transaction for recipients rcpts[0..n_rcpts) (indices into msg):
 * MAIL FROM with SIZE (when offered), BODY=8BITMIME when `eight_bit` and
 * offered, RET/ENVID when DSN is offered and the message has them,
 * SMTPUTF8 when offered and an address is not ASCII; RCPT
 * TO with NOTIFY/ORCPT when DSN is offered; DATA and the content of
 * `content` (the message's own when NULL), LF turned into CR LF and
 * dot-stuffed.  Commands are pipelined when PIPELINING is offered.  When
 * no recipient is accepted the transaction ends with RSET.
 *
 * TRUE when the session is still usable (whatever the replies were;
 * after a 421 see imta_smtp_client_reusable()); FALSE with error when it
 * broke: *result then holds what was learnt until then, and code 0 for
 * the rest.  *result is overwritten (clear it before reusing it).  FALSE
 * with the session untouched and usable when nothing was sent: the
 * content could not be opened, or an address holds a control character
 * (G_IO_ERROR_INVALID_ARGUMENT).  The caller must not send 8-bit
 * content with eight_bit FALSE to a server without 8BITMIME: convert it
 * first (mime.h). */
gboolean imta_smtp_client_send(ImtaSmtpClient *c, const ImtaMessage *msg, const guint *rcpts,
			       guint n_rcpts, GInputStream *content, gboolean eight_bit,
			       ImtaSmtpSendResult *result, GError **error);

/* As imta_smtp_client_send(), with SIZE= `wire_size` (RFC 1870: the
 * content's bytes with CR LF line ends; 0: no SIZE parameter).  send()
 * itself declares imta_message_size(), the stored size with LF line
 * ends, which is short by one byte a line. */
gboolean imta_smtp_client_send_sized(ImtaSmtpClient *c, const ImtaMessage *msg,
				     const guint *rcpts, guint n_rcpts, GInputStream *content,
				     gint64 wire_size, gboolean eight_bit,
				     ImtaSmtpSendResult *result, GError **error);

/* Can another transaction run on this session (not broken, no 421 seen,
 * RSET not refused, under `max_transactions` done; 0 = no limit)?
 * Transactions count from each MAIL FROM sent. */
gboolean imta_smtp_client_reusable(const ImtaSmtpClient *c, guint max_transactions);
guint imta_smtp_client_transactions(const ImtaSmtpClient *c);

/* For a session that sat idle between transactions: a live server says
 * nothing unasked, so anything to read (the end of the connection, a 421
 * before closing, a TLS alert) means it is gone.  FALSE then, and the
 * session is broken; TRUE when it looks usable.  Does not block. */
gboolean imta_smtp_client_check_idle(ImtaSmtpClient *c);

/* "remote mx.example.org [192.0.2.1] said: 550 5.1.1 <b@example.org>: no
 * such user" -- the form notices parse (notice.h) and mail.log shows.
 * When the reply carries no enhanced code, one matching its class is put
 * before the text (2.0.0, 4.0.0, 5.0.0).  Caller frees. */
char *imta_smtp_client_diagnostic(const ImtaSmtpClient *c, const ImtaSmtpReply *reply);

/* QUIT (best effort, short timeout) and free. */
void imta_smtp_client_quit(ImtaSmtpClient *c);
void imta_smtp_client_free(ImtaSmtpClient *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaSmtpClient, imta_smtp_client_free)

#define IMTA_SMTP_CLIENT_ERROR (imta_smtp_client_error_quark())
GQuark imta_smtp_client_error_quark(void);
typedef enum {
	IMTA_SMTP_CLIENT_ERROR_REPLY,   /* the server refused a step; see the reply */
	IMTA_SMTP_CLIENT_ERROR_TLS,     /* the certificate did not verify */
} ImtaSmtpClientError;

G_END_DECLS

#endif
