/*
 * client_private.h - what the SMTP client's session (client.c) and its
 * transport (client_io.c) share: the socket or TLS stream with its read
 * buffer, the bounded reply reader, and entry points for tests and fuzzing
 * that start a session on a socket someone else connected.
 */
#ifndef IMTA_SMTP_CLIENT_PRIVATE_H
#define IMTA_SMTP_CLIENT_PRIVATE_H

#include <glib.h>
#include <gnutls/gnutls.h>

#include <imta/smtp_client.h>

G_BEGIN_DECLS

/* RFC 5321 4.5.3.1.5 allows any number of lines; we stop at this many. */
#define SMTP_CLIENT_MAX_REPLY_LINES 100
#define SMTP_IO_BUFFER_SIZE 16384

/* The connection: plain until smtp_io_start_tls() succeeds. */
typedef struct {
	int fd;
	gnutls_session_t tls;
	gnutls_certificate_credentials_t creds;
	gboolean secure;             /* the handshake succeeded: bytes go through tls */
	char buf[SMTP_IO_BUFFER_SIZE];    /* read ahead, for pipelined replies */
	gsize start, end;
} SmtpIo;

/* A reply being put together from its lines. */
typedef struct {
	guint code;
	guint n_lines;
	gsize bytes;                 /* with the line ends, against MAX_REPLY */
	gboolean done;               /* the last line was seen */
	char enhanced[16];
	GString *text;
	GPtrArray *lines;            /* each line's text after the code, or NULL */
} SmtpReplyReader;

/* ---- client_io.c ------------------------------------------------------ */

/* A connected, non-blocking socket to peer->address (or to the UNIX-domain
 * socket peer->socket_path), or -1 with an error naming the peer. */
int smtp_io_connect(const ImtaSmtpClientPeer *peer, guint timeout_ms, GError **error);

/* Take over `fd` (made non-blocking and closed by smtp_io_close()). */
void smtp_io_init(SmtpIo *io, int fd);
void smtp_io_close(SmtpIo *io);
gboolean smtp_io_is_tls(const SmtpIo *io);
/* Bytes received and not consumed yet. */
gsize smtp_io_buffered(const SmtpIo *io);

/* Write all of data within timeout_ms.  Errors: G_IO_ERROR_TIMED_OUT,
 * G_IO_ERROR_CONNECTION_CLOSED, ...; the message says what happened
 * ("connection lost") and the caller adds where. */
gboolean smtp_io_write(SmtpIo *io, const char *data, gsize len, guint timeout_ms,
		       GError **error);

/* Read one whole reply within timeout_ms into *reply (cleared first).
 * With `lines`, each line's text is added to it (for EHLO). */
gboolean smtp_io_read_reply(SmtpIo *io, guint timeout_ms, ImtaSmtpReply *reply,
			    GPtrArray *lines, GError **error);

/* After smtp_io_tls_prepare(): the client handshake, and the check of
 * opts->verify against `host`.  IMTA_SMTP_CLIENT_ERROR_TLS when the certificate does
 * not verify; G_IO_ERROR_* otherwise. */
gboolean smtp_io_start_tls(SmtpIo *io, const ImtaSmtpTlsClientOptions *opts, const char *host,
			   guint timeout_ms, GError **error);

/* Credentials and a client session for opts (SNI: host, when it is a
 * name), made before STARTTLS is sent so that a local mistake leaves the
 * session as it was.  smtp_io_tls_discard() drops them when the server
 * refuses STARTTLS. */
gboolean smtp_io_tls_prepare(SmtpIo *io, const ImtaSmtpTlsClientOptions *opts, const char *host,
			     GError **error);
void smtp_io_tls_discard(SmtpIo *io);

/* "mx.example.org [192.0.2.1]", or "[192.0.2.1]" without a name. */
char *smtp_io_peer_name(const char *host, const char *address);

/* The peer's address as diagnostics show it: "192.0.2.1", "unix:/path". */
char *smtp_io_peer_address(const ImtaSmtpClientPeer *peer);

/* "300 ms", "30 s", "5 min": for timeout messages. */
char *smtp_io_duration_text(guint ms);

/* ---- the reply reader (client_io.c) ------------------------------------ */

void smtp_reply_reader_init(SmtpReplyReader *r, GPtrArray *lines);
/* One line without its line end.  FALSE with G_IO_ERROR_INVALID_DATA when
 * it is not a reply line, changes the code, or passes a limit. */
gboolean smtp_reply_reader_line(SmtpReplyReader *r, const char *line, gsize len,
				GError **error);
/* Move the finished reply to *reply and free the reader's text. */
void smtp_reply_reader_finish(SmtpReplyReader *r, ImtaSmtpReply *reply);
void smtp_reply_reader_clear(SmtpReplyReader *r);

/* ---- client.c --------------------------------------------------------- */

/* The ImtaSmtpExt bits and SIZE limit of an EHLO reply's lines (the text
 * after the code of each line; the first is the server's name). */
void smtp_client_parse_ehlo(const GPtrArray *lines, guint *ext_r, guint64 *max_size_r);

/* imta_smtp_client_connect() on a socket already connected: fd is taken
 * over (closed on failure too). */
ImtaSmtpClient *smtp_client_new_fd(int fd, const ImtaSmtpClientPeer *peer,
				   ImtaSmtpReply *greeting_r, GError **error);

G_END_DECLS

#endif
