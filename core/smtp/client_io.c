/*
 * client_io.c - the SMTP client's transport: a non-blocking TCP connection
 * (IPv4 or IPv6, optionally from a chosen local address) or UNIX-domain
 * stream connection, buffered reading
 * of reply lines and writing of commands over the socket or a GnuTLS
 * client session, the STARTTLS handshake with certificate verification,
 * and the reader that puts a bounded reply together from its lines.
 *
 * Every wait is a poll() bounded by the deadline of the step, so a silent
 * or slow server costs at most the step's timeout.  Nothing here raises
 * SIGPIPE: plain writes use MSG_NOSIGNAL and GnuTLS sessions are made with
 * GNUTLS_NO_SIGNAL.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>
#include <gio/gio.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <imta/smtp.h>
#include <imta/smtp_client.h>
#include "client_private.h"

/* Non-fatal GnuTLS results (warning alerts) tolerated in a row. */
#define SMTP_IO_TLS_RETRIES 8
/* How much of a malformed reply line an error message repeats. */
#define SMTP_IO_SHOWN_MAX 60

/* ---- errors and waiting ----------------------------------------------- */

char *
smtp_io_duration_text(guint ms)
{
	if (ms >= 60000 && ms % 60000 == 0)
		return g_strdup_printf("%u min", ms / 60000);
	if (ms >= 1000 && ms % 1000 == 0)
		return g_strdup_printf("%u s", ms / 1000);
	return g_strdup_printf("%u ms", ms);
}

static gboolean
io_timed_out(guint timeout_ms, GError **error)
{
	g_autofree char *duration = smtp_io_duration_text(timeout_ms);

	g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "timed out (%s)", duration);
	return FALSE;
}

static gboolean
io_lost(GError **error)
{
	g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED, "connection lost");
	return FALSE;
}

static gboolean
io_errno_error(int err, GError **error)
{
	if (err == EPIPE || err == ECONNRESET || err == ECONNABORTED)
		return io_lost(error);
	g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "connection error (%s)",
		    g_strerror(err));
	return FALSE;
}

/* GnuTLS's text for rc, without its final full stop: it goes inside
 * sentences. */
static char *
io_tls_text(int rc)
{
	char *text = g_strdup(gnutls_strerror(rc));
	gsize n = strlen(text);

	if (n > 0 && text[n - 1] == '.')
		text[n - 1] = '\0';
	return text;
}

static gboolean
io_tls_error(int rc, const char *what, GError **error)
{
	g_autofree char *text = NULL;

	if (rc == GNUTLS_E_PREMATURE_TERMINATION || rc == GNUTLS_E_PUSH_ERROR ||
	    rc == GNUTLS_E_PULL_ERROR)
		return io_lost(error);
	text = io_tls_text(rc);
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: %s", what, text);
	return FALSE;
}

static gint64
io_deadline(guint timeout_ms)
{
	return g_get_monotonic_time() + (gint64) timeout_ms * 1000;
}

/* Wait until fd is ready for `events` or the deadline passes.  Errors and
 * hang-ups count as ready: the read or write that follows reports them. */
static gboolean
io_wait(int fd, short events, gint64 deadline, guint timeout_ms, GError **error)
{
	for (;;) {
		gint64 left = deadline - g_get_monotonic_time();
		struct pollfd p = { .fd = fd, .events = events };
		int rc;

		if (left <= 0)
			return io_timed_out(timeout_ms, error);
		rc = poll(&p, 1, (int) MIN((left + 999) / 1000, (gint64) INT_MAX));
		if (rc > 0)
			return TRUE;
		if (rc < 0 && errno != EINTR)
			return io_errno_error(errno, error);
	}
}

static short
io_tls_events(const SmtpIo *io)
{
	return gnutls_record_get_direction(io->tls) == 1 ? POLLOUT : POLLIN;
}

/* ---- connecting ------------------------------------------------------- */

char *
smtp_io_peer_name(const char *host, const char *address)
{
	if (host != NULL && host[0] != '\0')
		return g_strdup_printf("%s [%s]", host, address);
	return g_strdup_printf("[%s]", address);
}

static struct addrinfo *
io_numeric_address(const char *address, guint16 port)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai = NULL;
	char service[8];

	if (address == NULL)
		return NULL;
	g_snprintf(service, sizeof service, "%u", port);
	if (getaddrinfo(address, service, &hints, &ai) != 0)
		return NULL;
	return ai;
}

static gboolean
io_bind(int fd, const struct addrinfo *remote, const char *bind_address, GError **error)
{
	struct addrinfo *local = io_numeric_address(bind_address, 0);
	int one = 1;
	int rc;

	if (local == NULL || local->ai_family != remote->ai_family) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "cannot connect from \"%s\": %s", bind_address,
			    local == NULL ? "not an IP address" : "not of the server's family");
		if (local != NULL)
			freeaddrinfo(local);
		return FALSE;
	}
#ifdef IP_BIND_ADDRESS_NO_PORT
	/* the port is chosen at connect(), so many connections can share it */
	(void) setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#else
	(void) one;
#endif
	rc = bind(fd, local->ai_addr, local->ai_addrlen);
	freeaddrinfo(local);
	if (rc < 0) {
		int err = errno;

		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err),
			    "cannot connect from %s: %s", bind_address, g_strerror(err));
		return FALSE;
	}
	return TRUE;
}

/* Finish a non-blocking connect(). */
static gboolean
io_connect_wait(int fd, guint timeout_ms, GError **error)
{
	int err = 0;
	socklen_t len = sizeof err;

	if (!io_wait(fd, POLLOUT, io_deadline(timeout_ms), timeout_ms, error))
		return FALSE;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		g_set_error_literal(error, G_IO_ERROR, g_io_error_from_errno(err), g_strerror(err));
		return FALSE;
	}
	return TRUE;
}

/* Every write is a whole command group, block or reply-awaiting end of
 * data: Nagle's algorithm would only hold the last piece back until the
 * server's delayed acknowledgement, milliseconds later. */
static gboolean
io_connect_fd(int fd, const struct addrinfo *remote, guint timeout_ms, GError **error)
{
	int one = 1;
	int err;

	(void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, remote->ai_addr, remote->ai_addrlen) == 0)
		return TRUE;
	err = errno;
	/* an interrupted connect() goes on in the background */
	if (err == EINPROGRESS || err == EINTR)
		return io_connect_wait(fd, timeout_ms, error);
	g_set_error_literal(error, G_IO_ERROR, g_io_error_from_errno(err), g_strerror(err));
	return FALSE;
}

char *
smtp_io_peer_address(const ImtaSmtpClientPeer *peer)
{
	if (peer->socket_path != NULL)
		return g_strconcat("unix:", peer->socket_path, NULL);
	return g_strdup(peer->address != NULL ? peer->address : "unknown");
}

static int
io_connect_unix(const ImtaSmtpClientPeer *peer, const char *name, guint timeout_ms,
		GError **error)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	gsize len = strlen(peer->socket_path);
	GError *local = NULL;
	int fd, err;

	if (len == 0 || len >= sizeof sun.sun_path) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "cannot connect to %s: the socket path is %s", name,
			    len == 0 ? "empty" : "too long");
		return -1;
	}
	memcpy(sun.sun_path, peer->socket_path, len + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = errno;
		g_set_error(&local, G_IO_ERROR, g_io_error_from_errno(err), "%s", g_strerror(err));
	} else if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0) {
		return fd;
	} else if ((err = errno) == EINPROGRESS || err == EINTR) {
		if (io_connect_wait(fd, timeout_ms, &local))
			return fd;
	} else {
		/* EAGAIN: the server's backlog is full; like a refusal, try later */
		g_set_error_literal(&local, G_IO_ERROR, g_io_error_from_errno(err),
				    g_strerror(err));
	}
	if (fd >= 0)
		close(fd);
	g_prefix_error(&local, "cannot connect to %s: ", name);
	g_propagate_error(error, local);
	return -1;
}

int
smtp_io_connect(const ImtaSmtpClientPeer *peer, guint timeout_ms, GError **error)
{
	g_autofree char *where = smtp_io_peer_address(peer);
	g_autofree char *name = smtp_io_peer_name(peer->host, where);
	struct addrinfo *remote;
	GError *local = NULL;
	int fd;

	if (peer->socket_path != NULL)
		return io_connect_unix(peer, name, timeout_ms, error);
	remote = io_numeric_address(peer->address, peer->port);
	if (remote == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "cannot connect to %s: not an IP address", name);
		return -1;
	}
	fd = socket(remote->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int err = errno;

		g_set_error(&local, G_IO_ERROR, g_io_error_from_errno(err), "%s", g_strerror(err));
	} else if ((peer->bind_address == NULL || io_bind(fd, remote, peer->bind_address, &local)) &&
		   io_connect_fd(fd, remote, timeout_ms, &local)) {
		freeaddrinfo(remote);
		return fd;
	}
	freeaddrinfo(remote);
	if (fd >= 0)
		close(fd);
	g_prefix_error(&local, "cannot connect to %s port %u: ", name, peer->port);
	g_propagate_error(error, local);
	return -1;
}

/* ---- the connection --------------------------------------------------- */

void
smtp_io_init(SmtpIo *io, int fd)
{
	int flags = fcntl(fd, F_GETFL);

	memset(io, 0, sizeof *io);
	io->fd = fd;
	if (flags >= 0 && !(flags & O_NONBLOCK))
		(void) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

void
smtp_io_tls_discard(SmtpIo *io)
{
	if (io->tls != NULL)
		gnutls_deinit(io->tls);
	if (io->creds != NULL)
		gnutls_certificate_free_credentials(io->creds);
	io->tls = NULL;
	io->creds = NULL;
	io->secure = FALSE;
}

void
smtp_io_close(SmtpIo *io)
{
	/* one try, without waiting: the close follows whatever happens */
	if (io->secure)
		(void) gnutls_bye(io->tls, GNUTLS_SHUT_WR);
	smtp_io_tls_discard(io);
	if (io->fd >= 0)
		close(io->fd);
	io->fd = -1;
	io->start = io->end = 0;
}

gboolean
smtp_io_is_tls(const SmtpIo *io)
{
	return io->secure;
}

gsize
smtp_io_buffered(const SmtpIo *io)
{
	return io->end - io->start;
}

/* ---- reading ---------------------------------------------------------- */

/* >0: bytes read; 0: would block (*events says for what); -1: error or
 * end of stream, with *error set. */
static gssize
io_recv_tls(SmtpIo *io, char *buf, gsize len, short *events, GError **error)
{
	for (int tries = 0; tries < SMTP_IO_TLS_RETRIES; tries++) {
		ssize_t rc = gnutls_record_recv(io->tls, buf, len);

		if (rc > 0)
			return rc;
		if (rc == 0) {
			io_lost(error);
			return -1;
		}
		if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
			*events = io_tls_events(io);
			return 0;
		}
		/* a TLS 1.2 server asking to renegotiate may be ignored */
		if (gnutls_error_is_fatal((int) rc)) {
			io_tls_error((int) rc, "TLS error", error);
			return -1;
		}
	}
	g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_FAILED, "TLS error: too many alerts");
	return -1;
}

static gssize
io_recv(SmtpIo *io, char *buf, gsize len, short *events, GError **error)
{
	ssize_t n;

	if (io->secure)
		return io_recv_tls(io, buf, len, events, error);
	do
		n = recv(io->fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		return n;
	if (n == 0) {
		io_lost(error);
		return -1;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		*events = POLLIN;
		return 0;
	}
	io_errno_error(errno, error);
	return -1;
}

/* Read more into the buffer (which has room: lines are consumed first). */
static gboolean
io_fill(SmtpIo *io, gint64 deadline, guint timeout_ms, GError **error)
{
	if (io->start > 0) {
		memmove(io->buf, io->buf + io->start, io->end - io->start);
		io->end -= io->start;
		io->start = 0;
	}
	for (;;) {
		short events = POLLIN;
		gssize n = io_recv(io, io->buf + io->end, sizeof io->buf - io->end, &events, error);

		if (n > 0) {
			io->end += (gsize) n;
			return TRUE;
		}
		if (n < 0 || !io_wait(io->fd, events, deadline, timeout_ms, error))
			return FALSE;
	}
}

static gboolean
io_too_long(GError **error)
{
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "reply longer than %d bytes",
		    IMTA_SMTP_CLIENT_MAX_REPLY);
	return FALSE;
}

/* One line, without its LF and the CR before it; more than `max` octets
 * with the line end is an error. */
static gboolean
io_read_line(SmtpIo *io, GString *line, gsize max, gint64 deadline, guint timeout_ms,
	     GError **error)
{
	g_string_truncate(line, 0);
	for (;;) {
		const char *p = io->buf + io->start;
		gsize avail = io->end - io->start;
		const char *nl = memchr(p, '\n', avail);
		gsize take = nl != NULL ? (gsize) (nl - p) + 1 : avail;

		if (line->len + take > max)
			return io_too_long(error);
		g_string_append_len(line, p, (gssize) take);
		io->start += take;
		if (nl != NULL) {
			g_string_truncate(line, line->len - 1);
			if (line->len > 0 && line->str[line->len - 1] == '\r')
				g_string_truncate(line, line->len - 1);
			return TRUE;
		}
		if (!io_fill(io, deadline, timeout_ms, error))
			return FALSE;
	}
}

gboolean
smtp_io_read_reply(SmtpIo *io, guint timeout_ms, ImtaSmtpReply *reply, GPtrArray *lines,
		   GError **error)
{
	gint64 deadline = io_deadline(timeout_ms);
	g_autoptr(GString) line = g_string_new(NULL);
	SmtpReplyReader r;

	imta_smtp_reply_clear(reply);
	smtp_reply_reader_init(&r, lines);
	while (!r.done) {
		if (r.bytes >= IMTA_SMTP_CLIENT_MAX_REPLY) {
			smtp_reply_reader_clear(&r);
			return io_too_long(error);
		}
		if (!io_read_line(io, line, IMTA_SMTP_CLIENT_MAX_REPLY - r.bytes, deadline,
				  timeout_ms, error) ||
		    !smtp_reply_reader_line(&r, line->str, line->len, error)) {
			smtp_reply_reader_clear(&r);
			return FALSE;
		}
	}
	smtp_reply_reader_finish(&r, reply);
	return TRUE;
}

/* ---- writing ---------------------------------------------------------- */

/* Like io_recv(). */
static gssize
io_send(SmtpIo *io, const char *data, gsize len, short *events, GError **error)
{
	ssize_t n;

	if (io->secure) {
		n = gnutls_record_send(io->tls, data, len);
		if (n > 0)
			return n;
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
			*events = io_tls_events(io);
			return 0;
		}
		io_tls_error((int) n, "TLS error", error);
		return -1;
	}
	do
		n = send(io->fd, data, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n >= 0) {
		*events = POLLOUT;
		return n;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		*events = POLLOUT;
		return 0;
	}
	io_errno_error(errno, error);
	return -1;
}

gboolean
smtp_io_write(SmtpIo *io, const char *data, gsize len, guint timeout_ms, GError **error)
{
	gint64 deadline = io_deadline(timeout_ms);
	gsize done = 0;

	/* GnuTLS wants the same data again after GNUTLS_E_AGAIN: it is */
	while (done < len) {
		short events = POLLOUT;
		gssize n = io_send(io, data + done, len - done, &events, error);

		if (n < 0)
			return FALSE;
		done += (gsize) n;
		if (n == 0 && !io_wait(io->fd, events, deadline, timeout_ms, error))
			return FALSE;
	}
	return TRUE;
}

/* ---- TLS -------------------------------------------------------------- */

static gboolean
io_tls_setup_error(int rc, const char *what, GError **error)
{
	g_autofree char *text = io_tls_text(rc);

	g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: %s", what, text);
	return FALSE;
}

static gboolean
io_tls_load(SmtpIo *io, const ImtaSmtpTlsClientOptions *opts, GError **error)
{
	int rc = gnutls_certificate_allocate_credentials(&io->creds);

	if (rc < 0) {
		io->creds = NULL;
		return io_tls_setup_error(rc, "cannot make TLS credentials", error);
	}
	if (opts->ca_file != NULL) {
		rc = gnutls_certificate_set_x509_trust_file(io->creds, opts->ca_file,
							    GNUTLS_X509_FMT_PEM);
		if (rc == 0) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
				    "TLS CA file %s: no certificate in it", opts->ca_file);
			return FALSE;
		}
	} else if (opts->verify != IMTA_SMTP_TLS_VERIFY_NONE) {
		/* without a system store nothing is trusted, and verification
		 * says so for each server */
		rc = MAX(gnutls_certificate_set_x509_system_trust(io->creds), 0);
	}
	if (rc < 0) {
		g_autofree char *what = g_strdup_printf("TLS CA file %s", opts->ca_file);

		return io_tls_setup_error(rc, what, error);
	}
	if (opts->cert_file == NULL)
		return TRUE;
	rc = gnutls_certificate_set_x509_key_file(io->creds, opts->cert_file,
						  opts->key_file != NULL ? opts->key_file
									 : opts->cert_file,
						  GNUTLS_X509_FMT_PEM);
	if (rc < 0) {
		g_autofree char *what = g_strdup_printf("TLS client certificate %s",
							opts->cert_file);

		return io_tls_setup_error(rc, what, error);
	}
	return TRUE;
}

static gboolean
io_tls_session(SmtpIo *io, const ImtaSmtpTlsClientOptions *opts, const char *host,
	       GError **error)
{
	const char *priority = opts->priority != NULL ? opts->priority : "NORMAL";
	const char *where = NULL;
	int rc = gnutls_init(&io->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);

	if (rc < 0) {
		io->tls = NULL;
		return io_tls_setup_error(rc, "cannot start a TLS session", error);
	}
	rc = gnutls_priority_set_direct(io->tls, priority, &where);
	if (rc < 0) {
		g_autofree char *text = io_tls_text(rc);

		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "TLS priority \"%s\": %s%s%s%s", priority, text,
			    where != NULL ? " at \"" : "", where != NULL ? where : "",
			    where != NULL ? "\"" : "");
		return FALSE;
	}
	rc = gnutls_credentials_set(io->tls, GNUTLS_CRD_CERTIFICATE, io->creds);
	/* RFC 6066 3: no IP addresses in server_name */
	if (rc >= 0 && host != NULL && host[0] != '\0' && !g_hostname_is_ip_address(host))
		rc = gnutls_server_name_set(io->tls, GNUTLS_NAME_DNS, host, strlen(host));
	if (rc < 0)
		return io_tls_setup_error(rc, "cannot start a TLS session", error);
	gnutls_transport_set_int(io->tls, io->fd);
	return TRUE;
}

gboolean
smtp_io_tls_prepare(SmtpIo *io, const ImtaSmtpTlsClientOptions *opts, const char *host,
		    GError **error)
{
	smtp_io_tls_discard(io);
	if (!io_tls_load(io, opts, error) || !io_tls_session(io, opts, host, error)) {
		smtp_io_tls_discard(io);
		return FALSE;
	}
	return TRUE;
}

static gboolean
io_handshake(SmtpIo *io, guint timeout_ms, GError **error)
{
	gint64 deadline = io_deadline(timeout_ms);
	int warnings = 0;

	for (;;) {
		int rc = gnutls_handshake(io->tls);

		if (rc == GNUTLS_E_SUCCESS)
			return TRUE;
		if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
			if (!io_wait(io->fd, io_tls_events(io), deadline, timeout_ms, error))
				return FALSE;
			continue;
		}
		if (gnutls_error_is_fatal(rc) || ++warnings > SMTP_IO_TLS_RETRIES)
			return io_tls_error(rc, "TLS handshake failed", error);
	}
}

/* What the status bits of gnutls_certificate_verify_peers3() mean. */
static const struct {
	unsigned int bit;
	const char *text;
} io_verify_texts[] = {
	{ GNUTLS_CERT_SIGNER_NOT_FOUND, "signer not trusted" },
	{ GNUTLS_CERT_SIGNER_NOT_CA, "signer is not a CA" },
	{ GNUTLS_CERT_UNEXPECTED_OWNER, "issued to another name" },
	{ GNUTLS_CERT_EXPIRED, "expired" },
	{ GNUTLS_CERT_NOT_ACTIVATED, "not valid yet" },
	{ GNUTLS_CERT_REVOKED, "revoked" },
	{ GNUTLS_CERT_INSECURE_ALGORITHM, "signed with an insecure algorithm" },
	{ GNUTLS_CERT_SIGNATURE_FAILURE, "bad signature" },
	{ GNUTLS_CERT_SIGNER_CONSTRAINTS_FAILURE, "signer's constraints not met" },
	{ GNUTLS_CERT_PURPOSE_MISMATCH, "not for this purpose" },
};

static char *
io_verify_text(unsigned int status)
{
	GString *out = g_string_new(NULL);

	for (gsize i = 0; i < G_N_ELEMENTS(io_verify_texts); i++) {
		if (!(status & io_verify_texts[i].bit))
			continue;
		if (out->len > 0)
			g_string_append(out, ", ");
		g_string_append(out, io_verify_texts[i].text);
	}
	if (out->len == 0)
		g_string_append_printf(out, "not trusted (status 0x%x)", status);
	return g_string_free(out, FALSE);
}

static gboolean
io_verify(SmtpIo *io, ImtaSmtpTlsVerify verify, const char *host, GError **error)
{
	const char *shown = host != NULL && host[0] != '\0' ? host : "the server";
	unsigned int status = 0;
	g_autofree char *why = NULL;
	int rc;

	if (verify == IMTA_SMTP_TLS_VERIFY_NONE)
		return TRUE;
	if (verify == IMTA_SMTP_TLS_VERIFY_NAME && (host == NULL || host[0] == '\0')) {
		g_set_error_literal(error, IMTA_SMTP_CLIENT_ERROR, IMTA_SMTP_CLIENT_ERROR_TLS,
				    "certificate of the server: no host name to check it against");
		return FALSE;
	}
	rc = gnutls_certificate_verify_peers3(io->tls,
					      verify == IMTA_SMTP_TLS_VERIFY_NAME ? host : NULL,
					      &status);
	if (rc == GNUTLS_E_NO_CERTIFICATE_FOUND)
		why = g_strdup("none was sent");
	else if (rc < 0)
		why = io_tls_text(rc);
	else if (status != 0)
		why = io_verify_text(status);
	else
		return TRUE;
	g_set_error(error, IMTA_SMTP_CLIENT_ERROR, IMTA_SMTP_CLIENT_ERROR_TLS,
		    "certificate of %s: %s", shown, why);
	return FALSE;
}

gboolean
smtp_io_start_tls(SmtpIo *io, const ImtaSmtpTlsClientOptions *opts, const char *host,
		  guint timeout_ms, GError **error)
{
	g_return_val_if_fail(io->tls != NULL, FALSE);
	if (!io_handshake(io, timeout_ms, error) || !io_verify(io, opts->verify, host, error))
		return FALSE;
	io->secure = TRUE;
	return TRUE;
}

/* ---- replies ---------------------------------------------------------- */

void
smtp_reply_reader_init(SmtpReplyReader *r, GPtrArray *lines)
{
	memset(r, 0, sizeof *r);
	r->text = g_string_new(NULL);
	r->lines = lines;
}

void
smtp_reply_reader_clear(SmtpReplyReader *r)
{
	if (r->text != NULL)
		g_string_free(r->text, TRUE);
	r->text = NULL;
}

void
smtp_reply_reader_finish(SmtpReplyReader *r, ImtaSmtpReply *reply)
{
	reply->code = r->code;
	g_strlcpy(reply->enhanced, r->enhanced, sizeof reply->enhanced);
	reply->text = g_string_free(r->text, FALSE);
	r->text = NULL;
}

/* Length of an RFC 3463 code "c.s.d" at the start of text whose class is
 * that of the reply code (then followed by a space or the end), else 0. */
static gsize
reply_enhanced_length(const char *text, gsize len, guint code)
{
	gsize i = 2;

	if (len < 5 || text[0] != (char) ('0' + code / 100) || text[1] != '.' ||
	    (text[0] != '2' && text[0] != '4' && text[0] != '5'))
		return 0;
	for (int part = 0; part < 2; part++) {
		gsize start = i;

		while (i < len && i - start < 3 && g_ascii_isdigit(text[i]))
			i++;
		if (i == start)
			return 0;
		if (part == 0) {
			if (i >= len || text[i] != '.')
				return 0;
			i++;
		}
	}
	return i == len || text[i] == ' ' ? i : 0;
}

/* Printable ASCII as it is; anything else could break a log line or a
 * notice, so it becomes '?'. */
static void
reply_append_safe(GString *out, const char *s, gsize n)
{
	for (gsize i = 0; i < n; i++) {
		guchar c = (guchar) s[i];

		g_string_append_c(out, c >= 0x20 && c < 0x7f ? (char) c : '?');
	}
}

static gboolean
reply_malformed(const char *line, gsize len, GError **error)
{
	g_autoptr(GString) shown = g_string_new(NULL);

	reply_append_safe(shown, line, MIN(len, SMTP_IO_SHOWN_MAX));
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "malformed reply \"%s%s\"",
		    shown->str, len > SMTP_IO_SHOWN_MAX ? "..." : "");
	return FALSE;
}

/* The first line's enhanced code is kept; the same code repeated on later
 * lines is dropped from the text, which reads better in diagnostics. */
static void
reply_add_text(SmtpReplyReader *r, const char *text, gsize len)
{
	gsize elen = strlen(r->enhanced);

	if (r->n_lines == 0) {
		gsize n = reply_enhanced_length(text, len, r->code);

		if (n > 0 && n < sizeof r->enhanced)
			memcpy(r->enhanced, text, n);
	} else if (elen > 0 && len >= elen && memcmp(text, r->enhanced, elen) == 0 &&
		   (len == elen || text[elen] == ' ')) {
		text += MIN(elen + 1, len);
		len -= MIN(elen + 1, len);
	}
	if (len == 0)
		return;
	if (r->text->len > 0)
		g_string_append_c(r->text, ' ');
	reply_append_safe(r->text, text, len);
}

gboolean
smtp_reply_reader_line(SmtpReplyReader *r, const char *line, gsize len, GError **error)
{
	guint code;
	gboolean last;
	const char *text;
	gsize text_len = len > 4 ? len - 4 : 0;

	g_return_val_if_fail(!r->done && r->text != NULL, FALSE);
	if (r->n_lines >= SMTP_CLIENT_MAX_REPLY_LINES) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
			    "reply of more than %d lines", SMTP_CLIENT_MAX_REPLY_LINES);
		return FALSE;
	}
	if (r->bytes + len + 2 > IMTA_SMTP_CLIENT_MAX_REPLY)
		return io_too_long(error);
	if (!imta_smtp_parse_reply_line(line, len, &code, &last, &text) ||
	    (r->n_lines > 0 && code != r->code))
		return reply_malformed(line, len, error);
	if (r->n_lines == 0)
		r->code = code;
	if (r->lines != NULL) {
		GString *safe = g_string_sized_new(text_len);

		reply_append_safe(safe, text, text_len);
		g_ptr_array_add(r->lines, g_string_free(safe, FALSE));
	}
	reply_add_text(r, text, text_len);
	r->n_lines++;
	r->bytes += len + 2;
	r->done = last;
	return TRUE;
}
