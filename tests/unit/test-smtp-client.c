/*
 * test-smtp-client.c - the SMTP/LMTP client against scripted servers that
 * run in a thread of the test on a loopback port and record every byte
 * they receive: greetings, EHLO and its extensions, HELO fallback,
 * pipelined and one-at-a-time transactions byte for byte, refusals at
 * every step, LMTP per-recipient replies, dot-stuffing, broken and silent
 * servers, reply limits, 421, diagnostics, connecting, IPv6 and STARTTLS
 * with each kind of certificate verification.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <gio/gio.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <imta/job.h>
#include <imta/smtp_client.h>
#include "smtp/client_private.h"

/* ---- the scripted server ---------------------------------------------- */

typedef enum {
	STEP_END,
	STEP_SEND,      /* send arg (n bytes of it when n is not 0) */
	STEP_LINES,     /* read n lines */
	STEP_DATA,      /* read content up to and with CR LF . CR LF */
	STEP_DRAIN,     /* read n bytes */
	STEP_SILENCE,   /* nothing may arrive for a while: else "<more>" is recorded */
	STEP_PAUSE,     /* sleep n ms */
	STEP_TLS,       /* server side of the TLS handshake */
	STEP_CLOSE,
} StepOp;

typedef struct {
	StepOp op;
	const char *arg;
	guint n;
} Step;

#define SEND(text) { STEP_SEND, text, 0 }
#define LINE { STEP_LINES, NULL, 1 }
#define LINES(count) { STEP_LINES, NULL, count }
#define DATA { STEP_DATA, NULL, 0 }
#define DRAIN(count) { STEP_DRAIN, NULL, count }
#define SILENCE { STEP_SILENCE, NULL, 0 }
#define PAUSE(ms) { STEP_PAUSE, NULL, ms }
#define TLS { STEP_TLS, NULL, 0 }
#define CLOSE { STEP_CLOSE, NULL, 0 }
#define END { STEP_END, NULL, 0 }

#define GREETING SEND("220 mx.test.example ESMTP\r\n")
#define EHLO_BARE SEND("250 mx.test.example\r\n")
#define EHLO_FULL SEND("250-mx.test.example\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n" \
		       "250-8BITMIME\r\n250-DSN\r\n250 ENHANCEDSTATUSCODES\r\n")
#define QUIT LINE, SEND("221 2.0.0 bye\r\n")

typedef struct {
	gnutls_datum_t cert, key;
	char *dir;
	char *cert_path;
	char *key_path;
} TestCert;

static TestCert test_cert;

typedef struct {
	int listen_fd;
	int fd;
	guint16 port;
	const Step *script;
	GThread *thread;
	GString *got;
	char buf[65536];
	gsize start, end;
	gnutls_session_t tls;
	gnutls_certificate_credentials_t creds;
	char sni[256];               /* the name the client asked for */
	gboolean client_cert;        /* the client showed a certificate */
} TestServer;

static gssize
server_recv(TestServer *s, char *buf, gsize len)
{
	if (s->tls != NULL) {
		ssize_t n = gnutls_record_recv(s->tls, buf, len);

		return n > 0 ? n : 0;
	}
	{
		ssize_t n = recv(s->fd, buf, len, 0);

		return n > 0 ? n : 0;
	}
}

static void
server_send(TestServer *s, const char *text, gsize len)
{
	gsize done = 0;

	while (done < len) {
		ssize_t n = s->tls != NULL ? gnutls_record_send(s->tls, text + done, len - done)
					   : send(s->fd, text + done, len - done, MSG_NOSIGNAL);

		if (n <= 0)
			return;
		done += (gsize) n;
	}
}

/* Fill the buffer when it is empty; FALSE at the end of the stream. */
static gboolean
server_fill(TestServer *s)
{
	gssize n;

	if (s->start < s->end)
		return TRUE;
	n = server_recv(s, s->buf, sizeof s->buf);
	s->start = 0;
	s->end = (gsize) n;
	return n > 0;
}

static gboolean
server_read_line(TestServer *s)
{
	for (;;) {
		const char *p, *nl;

		if (!server_fill(s))
			return FALSE;
		p = s->buf + s->start;
		nl = memchr(p, '\n', s->end - s->start);
		if (nl != NULL) {
			g_string_append_len(s->got, p, nl - p + 1);
			s->start += (gsize) (nl - p) + 1;
			return TRUE;
		}
		g_string_append_len(s->got, p, (gssize) (s->end - s->start));
		s->start = s->end;
	}
}

static gboolean
server_read_data(TestServer *s)
{
	gsize from = s->got->len;

	for (;;) {
		if (!server_fill(s))
			return FALSE;
		g_string_append_c(s->got, s->buf[s->start++]);
		if (s->got->len - from >= 5 && g_str_has_suffix(s->got->str, "\r\n.\r\n"))
			return TRUE;
		/* an empty message is just the dot */
		if (s->got->len - from == 3 && g_str_has_suffix(s->got->str, ".\r\n"))
			return TRUE;
	}
}

static gboolean
server_drain(TestServer *s, guint n)
{
	while (n > 0) {
		gsize take;

		if (!server_fill(s))
			return FALSE;
		take = MIN(n, s->end - s->start);
		s->start += take;
		n -= take;
	}
	return TRUE;
}

static void
server_silence(TestServer *s)
{
	struct pollfd p = { .fd = s->fd, .events = POLLIN };

	if (s->start < s->end || poll(&p, 1, 150) > 0)
		g_string_append(s->got, "<more>");
}

static gboolean
server_tls(TestServer *s)
{
	int rc;

	gnutls_certificate_allocate_credentials(&s->creds);
	rc = gnutls_certificate_set_x509_key_mem2(s->creds, &test_cert.cert, &test_cert.key,
						  GNUTLS_X509_FMT_PEM, NULL, 0);
	g_assert_cmpint(rc, >=, 0);
	gnutls_init(&s->tls, GNUTLS_SERVER);
	gnutls_set_default_priority(s->tls);
	gnutls_credentials_set(s->tls, GNUTLS_CRD_CERTIFICATE, s->creds);
	gnutls_certificate_server_set_request(s->tls, GNUTLS_CERT_REQUEST);
	gnutls_transport_set_int(s->tls, s->fd);
	do
		rc = gnutls_handshake(s->tls);
	while (rc < 0 && !gnutls_error_is_fatal(rc) && rc != GNUTLS_E_AGAIN);
	if (rc < 0) {
		g_string_append_printf(s->got, "<handshake: %s>", gnutls_strerror(rc));
		return FALSE;
	}
	{
		size_t len = sizeof s->sni - 1;
		unsigned int type;

		unsigned int n_certs = 0;

		if (gnutls_server_name_get(s->tls, s->sni, &len, &type, 0) < 0)
			s->sni[0] = '\0';
		s->client_cert = gnutls_certificate_get_peers(s->tls, &n_certs) != NULL &&
				 n_certs > 0;
	}
	return TRUE;
}

static gboolean
server_step(TestServer *s, const Step *step)
{
	switch (step->op) {
	case STEP_SEND:
		server_send(s, step->arg, step->n != 0 ? step->n : strlen(step->arg));
		return TRUE;
	case STEP_LINES:
		for (guint i = 0; i < step->n; i++) {
			if (!server_read_line(s))
				return FALSE;
		}
		return TRUE;
	case STEP_DATA:
		return server_read_data(s);
	case STEP_DRAIN:
		return server_drain(s, step->n);
	case STEP_SILENCE:
		server_silence(s);
		return TRUE;
	case STEP_PAUSE:
		g_usleep(step->n * 1000);
		return TRUE;
	case STEP_TLS:
		return server_tls(s);
	case STEP_CLOSE:
	case STEP_END:
		return FALSE;
	}
	return FALSE;
}

static gpointer
server_thread(gpointer data)
{
	TestServer *s = data;
	struct pollfd p = { .fd = s->listen_fd, .events = POLLIN };
	struct timeval tv = { .tv_sec = 5 };

	if (poll(&p, 1, 5000) <= 0)
		return NULL;
	s->fd = accept(s->listen_fd, NULL, NULL);
	if (s->fd < 0)
		return NULL;
	/* a client that stops talking must not hang the test */
	setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	for (const Step *step = s->script; server_step(s, step); step++)
		;
	if (s->tls != NULL)
		gnutls_deinit(s->tls);
	if (s->creds != NULL)
		gnutls_certificate_free_credentials(s->creds);
	close(s->fd);
	return NULL;
}

/* A listener on 127.0.0.1 (or ::1), or NULL when that family is missing. */
static TestServer *
server_start_family(const Step *script, int family)
{
	TestServer *s = g_new0(TestServer, 1);
	struct sockaddr_storage ss = { 0 };
	socklen_t len;

	s->listen_fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	g_assert_cmpint(s->listen_fd, >=, 0);
	if (family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_loopback;
		len = sizeof *sin6;
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *) &ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof *sin;
	}
	if (bind(s->listen_fd, (struct sockaddr *) &ss, len) < 0) {
		close(s->listen_fd);
		g_free(s);
		return NULL;
	}
	g_assert_cmpint(listen(s->listen_fd, 4), ==, 0);
	g_assert_cmpint(getsockname(s->listen_fd, (struct sockaddr *) &ss, &len), ==, 0);
	s->port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *) &ss)->sin6_port
					   : ((struct sockaddr_in *) &ss)->sin_port);
	s->script = script;
	s->got = g_string_new(NULL);
	s->thread = g_thread_new("smtp-server", server_thread, s);
	return s;
}

static TestServer *
server_start(const Step *script)
{
	return server_start_family(script, AF_INET);
}

/* Wait for the server to finish; what it received, and the SNI name. */
static char *
server_finish_sni(TestServer *s, char **sni_r, gboolean *client_cert_r)
{
	char *got;

	g_thread_join(s->thread);
	close(s->listen_fd);
	got = g_string_free(s->got, FALSE);
	if (sni_r != NULL)
		*sni_r = g_strdup(s->sni);
	if (client_cert_r != NULL)
		*client_cert_r = s->client_cert;
	g_free(s);
	return got;
}

static char *
server_finish(TestServer *s)
{
	return server_finish_sni(s, NULL, NULL);
}

/* ---- the client side -------------------------------------------------- */

static ImtaSmtpClientPeer
test_peer(const TestServer *s)
{
	ImtaSmtpClientPeer peer = {
		.host = "mx.test.example",
		.address = "127.0.0.1",
		.port = s->port,
		.helo_name = "client.example",
		.timeouts = { .connect_ms = 10000, .greeting_ms = 10000, .command_ms = 10000,
			      .data_init_ms = 10000, .data_block_ms = 10000,
			      .data_term_ms = 10000 },
	};

	return peer;
}

static ImtaSmtpClient *
test_connect(const ImtaSmtpClientPeer *peer)
{
	g_autoptr(GError) error = NULL;
	ImtaSmtpReply reply = { 0 };
	ImtaSmtpClient *c = imta_smtp_client_connect(peer, &reply, &error);

	g_assert_no_error(error);
	g_assert_nonnull(c);
	g_assert_cmpuint(reply.code, ==, 220);
	g_assert_true(imta_smtp_client_hello(c, &reply, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(reply.code, ==, 250);
	imta_smtp_reply_clear(&reply);
	return c;
}

/* From a@x to the recipients given, with DSN fields set: the message the
 * byte-exact tests expect. */
static ImtaMessage *
test_message(const char *content, const char *const *rcpts)
{
	ImtaMessage *msg = imta_message_new("test-1", "a@x");

	imta_message_set_envid(msg, "id+1=2 z");
	imta_message_set_ret(msg, IMTA_RET_HDRS);
	for (gsize i = 0; rcpts[i] != NULL; i++) {
		g_autofree char *orcpt = g_strconcat("rfc822;", rcpts[i], NULL);

		imta_message_add_recipient(msg, rcpts[i], orcpt,
					   IMTA_NOTIFY_SUCCESS | IMTA_NOTIFY_FAILURE);
	}
	imta_message_set_content_bytes(msg, g_bytes_new_static(content, strlen(content)));
	return msg;
}

static const guint test_indices[] = { 0, 1, 2, 3, 4, 5, 6, 7 };

typedef struct {
	const Step *script;
	const char *const *rcpts;
	gboolean lmtp;
	gboolean ok;                  /* imta_smtp_client_send()'s value */
	const char *expect_got;       /* every byte the server received */
	guint mail_code;
	const char *expect_rcpt[4];   /* "code|enhanced|text" per recipient */
	gboolean data_sent;
	gboolean reusable;
	const char *message;          /* the error when ok is FALSE */
} SendRow;

static char *
describe_reply(const ImtaSmtpReply *r)
{
	return g_strdup_printf("%u|%s|%s", r->code, r->enhanced, r->text != NULL ? r->text : "");
}

static const char test_content[] = "Subject: t\n\nhello\n";

static void
run_send_row(const SendRow *row)
{
	TestServer *s = server_start(row->script);
	ImtaSmtpClientPeer peer = test_peer(s);
	g_autoptr(ImtaMessage) msg = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *got = NULL;
	ImtaSmtpSendResult result = { 0 };
	ImtaSmtpClient *c;
	guint n = g_strv_length((char **) row->rcpts);
	gboolean ok;

	peer.lmtp = row->lmtp;
	c = test_connect(&peer);
	msg = test_message(test_content, row->rcpts);
	ok = imta_smtp_client_send(c, msg, test_indices, n, NULL, TRUE, &result, &error);
	if (row->ok)
		g_assert_no_error(error);
	else
		g_assert_cmpstr(error->message, ==, row->message);
	g_assert_cmpint(ok, ==, row->ok);
	g_assert_cmpuint(result.mail.code, ==, row->mail_code);
	g_assert_cmpuint(result.n_rcpts, ==, n);
	for (guint i = 0; i < n; i++) {
		g_autofree char *d = describe_reply(&result.rcpt[i]);

		g_assert_cmpstr(d, ==, row->expect_rcpt[i]);
	}
	g_assert_cmpint(result.data_sent, ==, row->data_sent);
	g_assert_cmpint(imta_smtp_client_reusable(c, 0), ==, row->reusable);
	g_assert_cmpuint(imta_smtp_client_transactions(c), ==, 1);
	imta_smtp_send_result_clear(&result);
	imta_smtp_client_quit(c);
	got = server_finish(s);
	g_assert_cmpstr(got, ==, row->expect_got);
}

/* ---- greeting and hello ----------------------------------------------- */

typedef struct {
	const char *greeting;
	guint code;
	const char *enhanced;
	const char *text;
	const char *message;
} GreetingRow;

static void
test_greeting_refused(void)
{
	static const GreetingRow rows[] = {
		{ "554 5.7.1 no mail from you\r\n", 554, "5.7.1", "5.7.1 no mail from you",
		  "remote mx.test.example [127.0.0.1] said: 554 5.7.1 no mail from you "
		  "(greeting)" },
		{ "421 busy, come back later\r\n", 421, "", "busy, come back later",
		  "remote mx.test.example [127.0.0.1] said: 421 4.0.0 busy, come back later "
		  "(greeting)" },
		{ "554-mx.test.example\r\n554 go away\r\n", 554, "", "mx.test.example go away",
		  "remote mx.test.example [127.0.0.1] said: 554 5.0.0 mx.test.example go away "
		  "(greeting)" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		const Step script[] = { SEND(rows[i].greeting), QUIT, END };
		TestServer *s = server_start(script);
		ImtaSmtpClientPeer peer = test_peer(s);
		g_autoptr(GError) error = NULL;
		g_autofree char *got = NULL;
		ImtaSmtpReply reply = { 0 };

		g_assert_null(imta_smtp_client_connect(&peer, &reply, &error));
		g_assert_error(error, IMTA_SMTP_CLIENT_ERROR, IMTA_SMTP_CLIENT_ERROR_REPLY);
		g_assert_cmpstr(error->message, ==, rows[i].message);
		g_assert_cmpuint(reply.code, ==, rows[i].code);
		g_assert_cmpstr(reply.enhanced, ==, rows[i].enhanced);
		g_assert_cmpstr(reply.text, ==, rows[i].text);
		imta_smtp_reply_clear(&reply);
		got = server_finish(s);
		/* RFC 5321 3.1: QUIT after a refusing greeting */
		g_assert_cmpstr(got, ==, "QUIT\r\n");
	}
}

typedef struct {
	const Step *script;
	gboolean lmtp;
	gboolean ok;
	guint code;
	const char *message;
	const char *expect_got;
} HelloRow;

static void
test_hello_fallback(void)
{
	static const Step helo_ok[] = { GREETING, LINE, SEND("502 5.5.1 what?\r\n"), LINE,
					SEND("250 mx.test.example\r\n"), QUIT, END };
	static const Step helo_refused[] = { GREETING, LINE, SEND("500 unknown\r\n"), LINE,
					     SEND("550 5.7.1 not you\r\n"), QUIT, END };
	static const Step ehlo_temp[] = { GREETING, LINE, SEND("450 4.3.2 later\r\n"), QUIT,
					  END };
	static const Step lhlo_refused[] = { GREETING, LINE, SEND("500 5.5.1 no\r\n"), QUIT,
					     END };
	static const HelloRow rows[] = {
		{ helo_ok, FALSE, TRUE, 250, NULL,
		  "EHLO client.example\r\nHELO client.example\r\nQUIT\r\n" },
		{ helo_refused, FALSE, FALSE, 550,
		  "remote mx.test.example [127.0.0.1] said: 550 5.7.1 not you "
		  "(in reply to HELO)",
		  "EHLO client.example\r\nHELO client.example\r\nQUIT\r\n" },
		/* only a 5xx means EHLO is unknown */
		{ ehlo_temp, FALSE, FALSE, 450,
		  "remote mx.test.example [127.0.0.1] said: 450 4.3.2 later (in reply to EHLO)",
		  "EHLO client.example\r\nQUIT\r\n" },
		/* LMTP has no HELO */
		{ lhlo_refused, TRUE, FALSE, 500,
		  "remote mx.test.example [127.0.0.1] said: 500 5.5.1 no (in reply to LHLO)",
		  "LHLO client.example\r\nQUIT\r\n" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		TestServer *s = server_start(rows[i].script);
		ImtaSmtpClientPeer peer = test_peer(s);
		g_autoptr(GError) error = NULL;
		g_autofree char *got = NULL;
		ImtaSmtpReply reply = { 0 };
		ImtaSmtpClient *c;

		peer.lmtp = rows[i].lmtp;
		c = imta_smtp_client_connect(&peer, NULL, &error);
		g_assert_no_error(error);
		g_assert_cmpint(imta_smtp_client_hello(c, &reply, &error), ==, rows[i].ok);
		g_assert_cmpuint(reply.code, ==, rows[i].code);
		if (rows[i].ok) {
			g_assert_no_error(error);
			g_assert_cmpuint(imta_smtp_client_extensions(c), ==, 0);
		} else {
			g_assert_error(error, IMTA_SMTP_CLIENT_ERROR, IMTA_SMTP_CLIENT_ERROR_REPLY);
			g_assert_cmpstr(error->message, ==, rows[i].message);
		}
		/* a refusal leaves the session usable */
		g_assert_true(imta_smtp_client_reusable(c, 0));
		imta_smtp_reply_clear(&reply);
		imta_smtp_client_quit(c);
		got = server_finish(s);
		g_assert_cmpstr(got, ==, rows[i].expect_got);
	}
}

typedef struct {
	const char *reply;
	guint ext;
	guint64 size;
} ExtRow;

static void
test_hello_extensions(void)
{
	static const ExtRow rows[] = {
		{ "250-mx.test.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
		  "250-8BITMIME\r\n250-DSN\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n"
		  "250-CHUNKING\r\n250-SMTPUTF8\r\n250 AUTH PLAIN LOGIN\r\n",
		  0x1ff, 10240000 },
		{ "250-mx\r\n250-pipelining\r\n250 size\r\n",
		  IMTA_SMTP_EXT_PIPELINING | IMTA_SMTP_EXT_SIZE, 0 },
		{ "250-mx\r\n250-AUTH=LOGIN\r\n250 SIZE x12\r\n",
		  IMTA_SMTP_EXT_AUTH | IMTA_SMTP_EXT_SIZE, 0 },
		{ "250-mx\r\n250-SIZE 0\r\n250 Dsn\r\n", IMTA_SMTP_EXT_SIZE | IMTA_SMTP_EXT_DSN,
		  0 },
		{ "250-mx\r\n250-SIZE 99999999999999999999999\r\n250 8BITMIME\r\n",
		  IMTA_SMTP_EXT_SIZE | IMTA_SMTP_EXT_8BITMIME, 0 },
		{ "250-mx\r\n250-SIZE 18446744073709551615\r\n250 X-EXT\r\n",
		  IMTA_SMTP_EXT_SIZE, G_MAXUINT64 },
		/* near misses are not extensions */
		{ "250-mx\r\n250-PIPELININGX\r\n250-XSIZE 5\r\n250- STARTTLS\r\n250 8BITMIME2\r\n",
		  0, 0 },
		/* the first line is the server's name, whatever it says */
		{ "250 mx.test.example PIPELINING\r\n", 0, 0 },
		{ "250-PIPELINING\r\n250 STARTTLS\r\n", IMTA_SMTP_EXT_STARTTLS, 0 },
		{ "250-mx\r\n250-\r\n250 CHUNKING\r\n", IMTA_SMTP_EXT_CHUNKING, 0 },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		const Step script[] = { GREETING, LINE, SEND(rows[i].reply), QUIT, END };
		TestServer *s = server_start(script);
		ImtaSmtpClientPeer peer = test_peer(s);
		ImtaSmtpClient *c = test_connect(&peer);
		g_autofree char *got = NULL;

		g_assert_cmphex(imta_smtp_client_extensions(c), ==, rows[i].ext);
		g_assert_cmpuint(imta_smtp_client_max_size(c), ==, rows[i].size);
		g_assert_cmpint(imta_smtp_client_has(c, IMTA_SMTP_EXT_PIPELINING), ==,
				(rows[i].ext & IMTA_SMTP_EXT_PIPELINING) != 0);
		g_assert_false(imta_smtp_client_is_tls(c));
		imta_smtp_client_quit(c);
		got = server_finish(s);
		g_assert_cmpstr(got, ==, "EHLO client.example\r\nQUIT\r\n");
	}
}

/* ---- transactions ----------------------------------------------------- */

static const char *const two_rcpts[] = { "b@y", "c@y", NULL };
static const char *const three_rcpts[] = { "b@y", "c@y", "d@y", NULL };
static const char *const one_rcpt[] = { "b@y", NULL };

#define DSN_MAIL "MAIL FROM:<a@x> SIZE=18 BODY=8BITMIME RET=HDRS ENVID=id+2B1+3D2+20z\r\n"
#define DSN_RCPT(a) "RCPT TO:<" a "> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;" a "\r\n"
#define WIRE_CONTENT "Subject: t\r\n\r\nhello\r\n.\r\n"

static void
test_send_pipelined(void)
{
	/* the server reads every command before it answers: a client that
	 * waited for the MAIL reply would time out */
	static const Step script[] = {
		GREETING, LINE, EHLO_FULL, LINES(4),
		SEND("250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n354 go on\r\n"), DATA,
		SEND("250 2.0.0 queued as 42\r\n"), QUIT, END,
	};
	static const SendRow row = {
		script, two_rcpts, FALSE, TRUE,
		"EHLO client.example\r\n" DSN_MAIL DSN_RCPT("b@y") DSN_RCPT("c@y")
		"DATA\r\n" WIRE_CONTENT "QUIT\r\n",
		250, { "250|2.0.0|2.0.0 queued as 42", "250|2.0.0|2.0.0 queued as 42" },
		TRUE, TRUE,
	};

	run_send_row(&row);
}

static void
test_send_sequential(void)
{
	/* no PIPELINING: after each command the client waits */
	static const Step script[] = {
		GREETING, LINE, EHLO_BARE,
		LINE, SILENCE, SEND("250 ok\r\n"),
		LINE, SILENCE, SEND("250 ok\r\n"),
		LINE, SILENCE, SEND("250 ok\r\n"),
		LINE, SILENCE, SEND("354 go on\r\n"), DATA,
		SEND("250 queued\r\n"), QUIT, END,
	};
	static const SendRow row = {
		script, two_rcpts, FALSE, TRUE,
		"EHLO client.example\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\n"
		"DATA\r\n" WIRE_CONTENT "QUIT\r\n",
		250, { "250||queued", "250||queued" }, TRUE, TRUE,
	};

	run_send_row(&row);
}

static void
test_send_some_refused(void)
{
	static const Step pipelined[] = {
		GREETING, LINE, EHLO_FULL, LINES(5),
		SEND("250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 <c@y>: no such user\r\n"
		     "450-4.2.0 mailbox busy,\r\n450 4.2.0 try later\r\n354 go on\r\n"),
		DATA, SEND("250 2.0.0 queued\r\n"), QUIT, END,
	};
	static const Step sequential[] = {
		GREETING, LINE, EHLO_BARE,
		LINE, SEND("250 ok\r\n"), LINE, SEND("250 ok\r\n"), LINE, SEND("550 5.1.1 no\r\n"),
		LINE, SEND("250 ok\r\n"), LINE, SEND("451 4.3.0 not now\r\n"),
		LINE, SEND("250 ok\r\n"), QUIT, END,
	};
	static const SendRow rows[] = {
		{ pipelined, three_rcpts, FALSE, TRUE,
		  "EHLO client.example\r\n" DSN_MAIL DSN_RCPT("b@y") DSN_RCPT("c@y")
		  DSN_RCPT("d@y") "DATA\r\n" WIRE_CONTENT "QUIT\r\n",
		  250, { "250|2.0.0|2.0.0 queued", "550|5.1.1|5.1.1 <c@y>: no such user",
			 "450|4.2.0|4.2.0 mailbox busy, try later" },
		  TRUE, TRUE },
		/* DATA refused: that decides the accepted ones; then RSET */
		{ sequential, three_rcpts, FALSE, TRUE,
		  "EHLO client.example\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\n"
		  "RCPT TO:<d@y>\r\nDATA\r\nRSET\r\nQUIT\r\n",
		  250, { "451|4.3.0|4.3.0 not now", "550|5.1.1|5.1.1 no",
			 "451|4.3.0|4.3.0 not now" },
		  FALSE, TRUE },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++)
		run_send_row(&rows[i]);
}

static void
test_send_all_refused(void)
{
	static const Step pipelined[] = {
		GREETING, LINE, EHLO_FULL, LINES(4),
		SEND("250 ok\r\n550 5.1.1 no\r\n550 5.1.1 no\r\n554 5.5.1 no valid recipients\r\n"),
		LINE, SEND("250 2.0.0 reset\r\n"), QUIT, END,
	};
	/* RFC 2920 3.1: a server that says 354 anyway gets an empty message */
	static const Step pipelined_354[] = {
		GREETING, LINE, EHLO_FULL, LINES(4),
		SEND("250 ok\r\n550 5.1.1 no\r\n550 5.1.1 no\r\n354 go on\r\n"),
		DATA, SEND("554 5.5.1 no recipients\r\n"),
		LINE, SEND("250 2.0.0 reset\r\n"), QUIT, END,
	};
	static const Step sequential[] = {
		GREETING, LINE, EHLO_BARE, LINE, SEND("250 ok\r\n"), LINE, SEND("550 no\r\n"),
		LINE, SEND("551 not here\r\n"), LINE, SEND("250 reset\r\n"), QUIT, END,
	};
	static const SendRow rows[] = {
		{ pipelined, two_rcpts, FALSE, TRUE,
		  "EHLO client.example\r\n" DSN_MAIL DSN_RCPT("b@y") DSN_RCPT("c@y")
		  "DATA\r\nRSET\r\nQUIT\r\n",
		  250, { "550|5.1.1|5.1.1 no", "550|5.1.1|5.1.1 no" }, FALSE, TRUE },
		{ pipelined_354, two_rcpts, FALSE, TRUE,
		  "EHLO client.example\r\n" DSN_MAIL DSN_RCPT("b@y") DSN_RCPT("c@y")
		  "DATA\r\n.\r\nRSET\r\nQUIT\r\n",
		  250, { "550|5.1.1|5.1.1 no", "550|5.1.1|5.1.1 no" }, FALSE, TRUE },
		{ sequential, two_rcpts, FALSE, TRUE,
		  "EHLO client.example\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\n"
		  "RSET\r\nQUIT\r\n",
		  250, { "550||no", "551||not here" }, FALSE, TRUE },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++)
		run_send_row(&rows[i]);
}

static void
test_send_mail_refused(void)
{
	static const Step pipelined[] = {
		GREETING, LINE, EHLO_FULL, LINES(3),
		SEND("553 5.7.1 <a@x>: sender rejected\r\n503 5.5.1 need MAIL\r\n"
		     "503 5.5.1 need MAIL\r\n"),
		LINE, SEND("250 ok\r\n"), QUIT, END,
	};
	static const Step sequential[] = {
		GREETING, LINE, EHLO_BARE, LINE, SEND("452 4.3.1 out of space\r\n"),
		LINE, SEND("250 ok\r\n"), QUIT, END,
	};
	static const SendRow rows[] = {
		{ pipelined, one_rcpt, FALSE, TRUE,
		  "EHLO client.example\r\n" DSN_MAIL DSN_RCPT("b@y") "DATA\r\nRSET\r\nQUIT\r\n",
		  553, { "553|5.7.1|5.7.1 <a@x>: sender rejected" }, FALSE, TRUE },
		/* nothing more is sent after a refused MAIL */
		{ sequential, two_rcpts, FALSE, TRUE,
		  "EHLO client.example\r\nMAIL FROM:<a@x>\r\nRSET\r\nQUIT\r\n",
		  452, { "452|4.3.1|4.3.1 out of space", "452|4.3.1|4.3.1 out of space" },
		  FALSE, TRUE },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++)
		run_send_row(&rows[i]);
}

static void
test_send_lmtp(void)
{
	/* RFC 2033 4.2: one reply per accepted recipient after the dot */
	static const Step script[] = {
		GREETING, LINE,
		SEND("250-store.test.example\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n"),
		LINES(5),
		SEND("250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 unknown\r\n250 2.1.5 ok\r\n"
		     "354 go on\r\n"),
		DATA, SEND("250 2.0.0 <b@y> delivered\r\n452 4.2.2 <d@y> over quota\r\n"),
		QUIT, END,
	};
	static const SendRow row = {
		script, three_rcpts, TRUE, TRUE,
		"LHLO client.example\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\n"
		"RCPT TO:<d@y>\r\nDATA\r\n" WIRE_CONTENT "QUIT\r\n",
		250, { "250|2.0.0|2.0.0 <b@y> delivered", "550|5.1.1|5.1.1 unknown",
		       "452|4.2.2|4.2.2 <d@y> over quota" },
		TRUE, TRUE,
	};

	run_send_row(&row);
}

static void
test_send_421(void)
{
	static const Step at_mail[] = {
		GREETING, LINE, EHLO_BARE, LINE, SEND("421 4.3.2 shutting down\r\n"), CLOSE,
	};
	/* pipelined: the server answers no more after its 421 */
	static const Step at_rcpt[] = {
		GREETING, LINE, EHLO_FULL, LINES(4),
		SEND("250 ok\r\n250 2.1.5 ok\r\n421 4.4.5 too busy\r\n"), CLOSE,
	};
	static const Step at_end[] = {
		GREETING, LINE, EHLO_BARE, LINE, SEND("250 ok\r\n"), LINE, SEND("250 ok\r\n"),
		LINE, SEND("354 go on\r\n"), DATA, SEND("421 timeout\r\n"), CLOSE,
	};
	static const SendRow rows[] = {
		{ at_mail, two_rcpts, FALSE, TRUE,
		  "EHLO client.example\r\nMAIL FROM:<a@x>\r\n",
		  421, { "421|4.3.2|4.3.2 shutting down", "421|4.3.2|4.3.2 shutting down" },
		  FALSE, FALSE },
		{ at_rcpt, two_rcpts, FALSE, TRUE,
		  "EHLO client.example\r\n" DSN_MAIL DSN_RCPT("b@y") DSN_RCPT("c@y") "DATA\r\n",
		  250, { "421|4.4.5|4.4.5 too busy", "421|4.4.5|4.4.5 too busy" }, FALSE, FALSE },
		{ at_end, one_rcpt, FALSE, TRUE,
		  "EHLO client.example\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"
		  WIRE_CONTENT,
		  250, { "421||timeout" }, TRUE, FALSE },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++)
		run_send_row(&rows[i]);
}

/* Lines starting with a dot are doubled and LF becomes CR LF, across
 * block boundaries too. */
static char *
expected_wire(const char *content)
{
	GString *out = g_string_new(NULL);
	gboolean bol = TRUE;

	for (const char *p = content; *p != '\0'; p++) {
		if (bol && *p == '.')
			g_string_append_c(out, '.');
		if (*p == '\n')
			g_string_append_c(out, '\r');
		g_string_append_c(out, *p);
		bol = *p == '\n';
	}
	if (!bol)
		g_string_append(out, "\r\n");
	g_string_append(out, ".\r\n");
	return g_string_free(out, FALSE);
}

static char *
long_content(void)
{
	GString *s = g_string_new("Subject: dots\n\n");

	/* 200 KiB of lines, some beginning with dots, one line over 64 KiB */
	for (guint i = 0; s->len < 200 * 1024; i++) {
		if (i == 7)
			g_string_append_len(s, "..............................", 30);
		if (i % 3 == 0)
			g_string_append_c(s, '.');
		g_string_append_printf(s, "line %u %s\n", i, i == 100 ? "" : "x");
		if (i == 100) {
			for (guint j = 0; j < 70000; j++)
				g_string_append_c(s, "abc"[j % 3]);
			g_string_append(s, "\n.\n");
		}
	}
	g_string_append(s, ".last line without end");
	return g_string_free(s, FALSE);
}

static void
test_send_dot_stuffing(void)
{
	static const Step script[] = {
		GREETING, LINE, EHLO_BARE, LINE, SEND("250 ok\r\n"), LINE, SEND("250 ok\r\n"),
		LINE, SEND("354 go on\r\n"), DATA, SEND("250 queued\r\n"), QUIT, END,
	};
	static const char *const contents[] = {
		".start\nmid\n..two\n.\nend",
		"\n.\n",
		"no end of line",
		"",
		NULL,
	};
	g_autofree char *big = long_content();

	for (gsize i = 0; i <= G_N_ELEMENTS(contents) - 1; i++) {
		const char *content = contents[i] != NULL ? contents[i] : big;
		TestServer *s = server_start(script);
		ImtaSmtpClientPeer peer = test_peer(s);
		ImtaSmtpClient *c = test_connect(&peer);
		g_autoptr(ImtaMessage) msg = test_message("unused\n", one_rcpt);
		g_autoptr(GInputStream) in = g_memory_input_stream_new_from_data(content, -1,
										  NULL);
		g_autoptr(GError) error = NULL;
		g_autofree char *wire = expected_wire(content);
		g_autofree char *expect = g_strconcat("EHLO client.example\r\n"
						      "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n"
						      "DATA\r\n", wire, "QUIT\r\n", NULL);
		g_autofree char *got = NULL;
		ImtaSmtpSendResult result = { 0 };

		g_assert_true(imta_smtp_client_send(c, msg, test_indices, 1, in, FALSE, &result,
						    &error));
		g_assert_no_error(error);
		g_assert_true(result.data_sent);
		g_assert_cmpuint(result.rcpt[0].code, ==, 250);
		imta_smtp_send_result_clear(&result);
		imta_smtp_client_quit(c);
		got = server_finish(s);
		g_assert_cmpstr(got, ==, expect);
	}
	{
		g_autofree char *w = expected_wire(contents[0]);

		/* the expectation itself, spelt out */
		g_assert_cmpstr(w, ==, "..start\r\nmid\r\n...two\r\n..\r\nend\r\n.\r\n");
	}
}

static void
test_send_reuse(void)
{
	static const Step script[] = {
		GREETING, LINE, EHLO_FULL,
		LINES(3), SEND("250 ok\r\n250 ok\r\n354 go\r\n"), DATA, SEND("250 one\r\n"),
		LINES(3), SEND("250 ok\r\n250 ok\r\n354 go\r\n"), DATA, SEND("250 two\r\n"),
		QUIT, END,
	};
	TestServer *s = server_start(script);
	ImtaSmtpClientPeer peer = test_peer(s);
	ImtaSmtpClient *c = test_connect(&peer);
	g_autoptr(ImtaMessage) msg = test_message(test_content, one_rcpt);
	g_autofree char *got = NULL;

	for (guint i = 0; i < 2; i++) {
		g_autoptr(GError) error = NULL;
		ImtaSmtpSendResult result = { 0 };

		g_assert_true(imta_smtp_client_reusable(c, 2));
		g_assert_true(imta_smtp_client_send(c, msg, test_indices, 1, NULL, FALSE,
						    &result, &error));
		g_assert_cmpstr(result.rcpt[0].text, ==, i == 0 ? "one" : "two");
		imta_smtp_send_result_clear(&result);
	}
	g_assert_cmpuint(imta_smtp_client_transactions(c), ==, 2);
	g_assert_false(imta_smtp_client_reusable(c, 2));
	g_assert_true(imta_smtp_client_reusable(c, 3));
	g_assert_true(imta_smtp_client_reusable(c, 0));
	imta_smtp_client_quit(c);
	got = server_finish(s);
	g_assert_cmpuint(strlen(got), >, 0);
}

static void
test_send_bad_address(void)
{
	static const Step script[] = { GREETING, LINE, EHLO_BARE, QUIT, END };
	TestServer *s = server_start(script);
	ImtaSmtpClientPeer peer = test_peer(s);
	ImtaSmtpClient *c = test_connect(&peer);
	static const char *const rcpts[] = { "b@y", "x@y>\r\nRSET", NULL };
	g_autoptr(ImtaMessage) msg = test_message(test_content, rcpts);
	g_autoptr(GError) error = NULL;
	g_autofree char *got = NULL;
	ImtaSmtpSendResult result = { 0 };

	g_assert_false(imta_smtp_client_send(c, msg, test_indices, 2, NULL, FALSE, &result,
					     &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
	g_assert_cmpstr(error->message, ==,
			"message test-1: address with a control character: \"x@y>\\r\\nRSET\"");
	g_assert_cmpuint(result.rcpt[0].code, ==, 0);
	g_assert_true(imta_smtp_client_reusable(c, 0));
	imta_smtp_send_result_clear(&result);
	imta_smtp_client_quit(c);
	got = server_finish(s);
	g_assert_cmpstr(got, ==, "EHLO client.example\r\nQUIT\r\n");
}

/* ---- broken sessions -------------------------------------------------- */

static void
test_broken_mid_data(void)
{
	static const Step script[] = {
		GREETING, LINE, EHLO_BARE, LINE, SEND("250 ok\r\n"), LINE, SEND("250 ok\r\n"),
		LINE, SEND("354 go on\r\n"), DRAIN(1000), CLOSE,
	};
	TestServer *s = server_start(script);
	ImtaSmtpClientPeer peer = test_peer(s);
	ImtaSmtpClient *c = test_connect(&peer);
	g_autoptr(ImtaMessage) msg = test_message(test_content, one_rcpt);
	gsize size = 16 * 1024 * 1024;
	g_autofree char *content = g_malloc(size);
	g_autoptr(GInputStream) in = NULL;
	g_autoptr(GError) error = NULL;
	ImtaSmtpSendResult result = { 0 };

	memset(content, 'x', size);
	in = g_memory_input_stream_new_from_data(content, (gssize) size, NULL);
	g_assert_false(imta_smtp_client_send(c, msg, test_indices, 1, in, FALSE, &result,
					     &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
	g_assert_cmpstr(error->message, ==, "connection lost while sending the message content");
	g_assert_cmpuint(result.mail.code, ==, 250);
	g_assert_cmpuint(result.rcpt[0].code, ==, 0);
	g_assert_false(result.data_sent);
	g_assert_false(imta_smtp_client_reusable(c, 0));
	imta_smtp_send_result_clear(&result);
	/* a broken session refuses another transaction */
	g_clear_error(&error);
	g_assert_false(imta_smtp_client_send(c, msg, test_indices, 1, NULL, FALSE, &result,
					     &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED);
	g_assert_cmpstr(error->message, ==,
			"the session with mx.test.example [127.0.0.1] is closed");
	imta_smtp_send_result_clear(&result);
	imta_smtp_client_quit(c);
	g_free(server_finish(s));
}

static void
test_broken_after_dot(void)
{
	static const Step script[] = {
		GREETING, LINE, EHLO_FULL, LINES(4),
		SEND("250 ok\r\n250 ok\r\n550 no\r\n354 go on\r\n"), DATA, CLOSE,
	};
	static const SendRow row = {
		script, two_rcpts, FALSE, FALSE,
		"EHLO client.example\r\n" DSN_MAIL DSN_RCPT("b@y") DSN_RCPT("c@y")
		"DATA\r\n" WIRE_CONTENT,
		250, { "0||", "550||no" }, TRUE, FALSE,
		"connection lost after the end of data",
	};

	run_send_row(&row);
}

/* Replies that fit no outcome of their command break the session rather
 * than pass for an outcome. */
static void
test_broken_unexpected(void)
{
	static const Step data_250[] = {
		GREETING, LINE, EHLO_FULL, LINES(3), SEND("250 ok\r\n250 ok\r\n250 ok\r\n"),
		CLOSE,
	};
	static const Step rcpt_354[] = {
		GREETING, LINE, EHLO_BARE, LINE, SEND("250 ok\r\n"), LINE, SEND("354 what\r\n"),
		CLOSE,
	};
	static const Step end_354[] = {
		GREETING, LINE, EHLO_BARE, LINE, SEND("250 ok\r\n"), LINE, SEND("250 ok\r\n"),
		LINE, SEND("354 go\r\n"), DATA, SEND("354 again\r\n"), CLOSE,
	};
	static const SendRow rows[] = {
		{ data_250, one_rcpt, FALSE, FALSE,
		  "EHLO client.example\r\n" DSN_MAIL DSN_RCPT("b@y") "DATA\r\n",
		  250, { "0||" }, FALSE, FALSE, "unexpected reply 250 to DATA" },
		{ rcpt_354, one_rcpt, FALSE, FALSE,
		  "EHLO client.example\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n",
		  250, { "0||" }, FALSE, FALSE, "unexpected reply 354 to RCPT TO:<b@y>" },
		{ end_354, one_rcpt, FALSE, FALSE,
		  "EHLO client.example\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"
		  WIRE_CONTENT,
		  250, { "0||" }, TRUE, FALSE,
		  "unexpected reply 354 after the end of data" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++)
		run_send_row(&rows[i]);
}

typedef struct {
	const Step *script;
	GQuark domain;
	gint code;
	const char *message;
	gboolean at_connect;
} BrokenRow;

static void
test_broken_replies(void)
{
	static const Step silent_greeting[] = { PAUSE(1200), END };
	static const Step silent_mail[] = { GREETING, LINE, EHLO_BARE, LINE, PAUSE(1200), END };
	static const Step dropped[] = { GREETING, LINE, EHLO_BARE, LINE, CLOSE };
	static const Step garbage[] = { SEND("hello there\r\n"), END };
	static const Step bare_lf[] = { SEND("220 ok\n"), LINE, SEND("250-mx\n250 SIZE\n"),
					LINE, SEND("250 ok\n"), END };
	static const Step code_change[] = { GREETING, LINE, SEND("250-mx\r\n251 x\r\n"), END };
	static const Step nul[] = { GREETING, LINE, { STEP_SEND, "250 a\0b\r\n", 9 }, END };
	const BrokenRow rows[] = {
		{ silent_greeting, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
		  "timed out (1 s) waiting for the greeting", TRUE },
		{ silent_mail, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
		  "timed out (1 s) after MAIL FROM:<a@x>", FALSE },
		{ dropped, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
		  "connection lost after MAIL FROM:<a@x>", FALSE },
		{ garbage, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
		  "malformed reply \"hello there\" waiting for the greeting", TRUE },
		/* LF alone ends a reply line too; then the server goes quiet */
		{ bare_lf, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
		  "connection lost after RCPT TO:<b@y>", FALSE },
		{ code_change, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
		  "malformed reply \"251 x\" after EHLO client.example", TRUE },
		{ nul, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
		  "malformed reply \"250 a?b\" after EHLO client.example", TRUE },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		TestServer *s = server_start(rows[i].script);
		ImtaSmtpClientPeer peer = test_peer(s);
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaMessage) msg = test_message(test_content, one_rcpt);
		ImtaSmtpSendResult result = { 0 };
		ImtaSmtpClient *c;
		gint64 start = g_get_monotonic_time(), elapsed;

		/* Long enough that a slow, loaded machine does not turn the
		 * other rows into timeouts. */
		peer.timeouts.greeting_ms = 1000;
		peer.timeouts.command_ms = 1000;
		c = imta_smtp_client_connect(&peer, NULL, &error);
		if (c != NULL && imta_smtp_client_hello(c, NULL, &error))
			imta_smtp_client_send(c, msg, test_indices, 1, NULL, FALSE, &result,
					      &error);
		elapsed = (g_get_monotonic_time() - start) / 1000;
		g_assert_error(error, rows[i].domain, rows[i].code);
		g_assert_cmpstr(error->message, ==, rows[i].message);
		/* a silent server costs the timeout, not more */
		g_assert_cmpint(elapsed, <, 6000);
		if (rows[i].code == G_IO_ERROR_TIMED_OUT)
			g_assert_cmpint(elapsed, >=, 990);
		if (c != NULL && !rows[i].at_connect) {
			g_assert_false(imta_smtp_client_reusable(c, 0));
			g_assert_cmpuint(result.rcpt[0].code, ==, 0);
		}
		imta_smtp_send_result_clear(&result);
		imta_smtp_client_quit(c);
		g_free(server_finish(s));
	}
}

static void
test_reply_limits(void)
{
	g_autoptr(GString) long_line = g_string_new("250 ");
	g_autoptr(GString) many_lines = g_string_new(NULL);
	g_autoptr(GString) just_fits = g_string_new(NULL);

	while (long_line->len < 9000)
		g_string_append_c(long_line, 'x');
	g_string_append(long_line, "\r\n");
	for (guint i = 0; i < 100; i++)
		g_string_append(many_lines, "250-x\r\n");
	g_string_append(many_lines, "250 x\r\n");
	/* 100 lines, 8192 bytes in all: accepted */
	for (guint i = 0; i < 99; i++)
		g_string_append_printf(just_fits, "250-%075u\r\n", i);
	g_string_append(just_fits, "250 ");
	while (just_fits->len < IMTA_SMTP_CLIENT_MAX_REPLY - 2)
		g_string_append_c(just_fits, 'y');
	g_string_append(just_fits, "\r\n");
	{
		const char *replies[] = { long_line->str, many_lines->str, just_fits->str };
		const char *messages[] = {
			"reply longer than 8192 bytes after EHLO client.example",
			"reply of more than 100 lines after EHLO client.example",
			NULL,
		};

		for (gsize i = 0; i < G_N_ELEMENTS(replies); i++) {
			const Step script[] = { GREETING, LINE, SEND(replies[i]), QUIT, END };
			TestServer *s = server_start(script);
			ImtaSmtpClientPeer peer = test_peer(s);
			g_autoptr(GError) error = NULL;
			ImtaSmtpReply reply = { 0 };
			ImtaSmtpClient *c = imta_smtp_client_connect(&peer, NULL, &error);
			gboolean ok = imta_smtp_client_hello(c, &reply, &error);

			g_assert_cmpint(ok, ==, messages[i] == NULL);
			if (messages[i] != NULL) {
				g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
				g_assert_cmpstr(error->message, ==, messages[i]);
				g_assert_cmpuint(reply.code, ==, 0);
			} else {
				g_assert_cmpuint(strlen(reply.text), ==,
						 99 * 76 + IMTA_SMTP_CLIENT_MAX_REPLY - 6 -
						 99 * 81);
			}
			imta_smtp_reply_clear(&reply);
			imta_smtp_client_quit(c);
			g_free(server_finish(s));
		}
	}
}

/* ---- diagnostics ------------------------------------------------------ */

typedef struct {
	ImtaSmtpReply reply;
	const char *host;
	const char *expected;
} DiagRow;

static void
test_diagnostic(void)
{
	static const Step script[] = { GREETING, CLOSE };
	static const DiagRow rows[] = {
		{ { 550, "5.1.1", (char *) "5.1.1 <b@example.org>: no such user" },
		  "mx.test.example",
		  "remote mx.test.example [127.0.0.1] said: 550 5.1.1 <b@example.org>: no such "
		  "user" },
		{ { 451, "", (char *) "try again later" }, "mx.test.example",
		  "remote mx.test.example [127.0.0.1] said: 451 4.0.0 try again later" },
		{ { 250, "", NULL }, "mx.test.example",
		  "remote mx.test.example [127.0.0.1] said: 250 2.0.0" },
		{ { 552, "5.3.4", (char *) "5.3.4" }, NULL,
		  "remote [127.0.0.1] said: 552 5.3.4" },
		{ { 354, "", (char *) "go on" }, NULL, "remote [127.0.0.1] said: 354 go on" },
		{ { 0, "", NULL }, NULL, "remote [127.0.0.1] gave no reply" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		TestServer *s = server_start(script);
		ImtaSmtpClientPeer peer = test_peer(s);
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaSmtpClient) c = NULL;
		g_autofree char *d = NULL;

		peer.host = rows[i].host;
		c = imta_smtp_client_connect(&peer, NULL, &error);
		g_assert_no_error(error);
		d = imta_smtp_client_diagnostic(c, &rows[i].reply);
		g_assert_cmpstr(d, ==, rows[i].expected);
		g_assert_cmpstr(imta_smtp_client_peer_text(c), ==,
				rows[i].host != NULL ? "mx.test.example [127.0.0.1]"
						     : "[127.0.0.1]");
		g_free(server_finish(s));
	}
}

/* Multi-line replies, repeated enhanced codes and unsafe bytes. */
static void
test_reply_text(void)
{
	static const struct {
		const char *wire;
		guint code;
		const char *enhanced;
		const char *text;
	} rows[] = {
		{ "550-5.1.1 first\r\n550 5.1.1 second\r\n", 550, "5.1.1", "5.1.1 first second" },
		{ "550-5.1.1 first\r\n550-5.1.2 other\r\n550 third\r\n", 550, "5.1.1",
		  "5.1.1 first 5.1.2 other third" },
		{ "550 4.1.1 class differs\r\n", 550, "", "4.1.1 class differs" },
		{ "550 5.1.1234 too long\r\n", 550, "", "5.1.1234 too long" },
		{ "550 5.1.1\r\n", 550, "5.1.1", "5.1.1" },
		{ "550 5.1\r\n", 550, "", "5.1" },
		{ "550\r\n", 550, "", "" },
		{ "550-\r\n550 \r\n", 550, "", "" },
		{ "550 tab\there \x1b[31m\xc3\xa9t\xc3\xa9\r\n", 550, "",
		  "tab?here ?[31m??t??" },
		{ "550-2.0.0\r\n550 2.0.0 ok\r\n", 550, "", "2.0.0 2.0.0 ok" },
		{ "450-4.7.1 a\r\n450-4.7.1\r\n450 4.7.1 b\r\n", 450, "4.7.1", "4.7.1 a b" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		const Step script[] = { GREETING, LINE, EHLO_BARE, LINE, SEND("250 ok\r\n"), LINE,
					SEND(rows[i].wire), LINE, SEND("250 ok\r\n"), QUIT, END };
		TestServer *s = server_start(script);
		ImtaSmtpClientPeer peer = test_peer(s);
		ImtaSmtpClient *c = test_connect(&peer);
		g_autoptr(ImtaMessage) msg = test_message(test_content, one_rcpt);
		g_autoptr(GError) error = NULL;
		ImtaSmtpSendResult result = { 0 };

		g_assert_true(imta_smtp_client_send(c, msg, test_indices, 1, NULL, FALSE,
						    &result, &error));
		g_assert_cmpuint(result.rcpt[0].code, ==, rows[i].code);
		g_assert_cmpstr(result.rcpt[0].enhanced, ==, rows[i].enhanced);
		g_assert_cmpstr(result.rcpt[0].text, ==, rows[i].text);
		imta_smtp_send_result_clear(&result);
		imta_smtp_client_quit(c);
		g_free(server_finish(s));
	}
}

/* ---- connecting ------------------------------------------------------- */

static guint16
closed_port(int family)
{
	int fd = socket(family, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sin;

	g_assert_cmpint(bind(fd, (struct sockaddr *) &sin, sizeof sin), ==, 0);
	g_assert_cmpint(getsockname(fd, (struct sockaddr *) &sin, &len), ==, 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static void
test_connect_errors(void)
{
	guint16 port = closed_port(AF_INET);
	struct {
		const char *address;
		const char *bind_address;
		gint code;
		const char *message;
	} rows[] = {
		{ "127.0.0.1", NULL, G_IO_ERROR_CONNECTION_REFUSED,
		  "cannot connect to mx.test.example [127.0.0.1] port PORT: Connection refused" },
		{ "mx.test.example", NULL, G_IO_ERROR_INVALID_ARGUMENT,
		  "cannot connect to mx.test.example [mx.test.example]: not an IP address" },
		{ "127.0.0.1", "::1", G_IO_ERROR_INVALID_ARGUMENT,
		  "cannot connect to mx.test.example [127.0.0.1] port PORT: cannot connect "
		  "from \"::1\": not of the server's family" },
		{ "127.0.0.1", "localhost", G_IO_ERROR_INVALID_ARGUMENT,
		  "cannot connect to mx.test.example [127.0.0.1] port PORT: cannot connect "
		  "from \"localhost\": not an IP address" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		ImtaSmtpClientPeer peer = { .host = "mx.test.example",
					    .address = rows[i].address, .port = port,
					    .bind_address = rows[i].bind_address,
					    .helo_name = "client.example" };
		g_autoptr(GError) error = NULL;
		g_auto(GStrv) parts = g_strsplit(rows[i].message, "PORT", -1);
		g_autofree char *port_text = g_strdup_printf("%u", port);
		g_autofree char *expected = g_strjoinv(port_text, parts);
		gint64 start = g_get_monotonic_time();

		g_assert_null(imta_smtp_client_connect(&peer, NULL, &error));
		g_assert_error(error, G_IO_ERROR, rows[i].code);
		g_assert_cmpstr(error->message, ==, expected);
		g_assert_cmpint(g_get_monotonic_time() - start, <, 5 * G_USEC_PER_SEC);
	}
}

static void
test_connect_bind_and_ipv6(void)
{
	static const Step script[] = { GREETING, LINE, EHLO_FULL, QUIT, END };
	static const struct {
		int family;
		const char *address;
		const char *bind_address;
		const char *peer_text;
	} rows[] = {
		{ AF_INET, "127.0.0.1", "127.0.0.1", "[127.0.0.1]" },
		{ AF_INET6, "::1", NULL, "[::1]" },
		{ AF_INET6, "::1", "::1", "[::1]" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		TestServer *s = server_start_family(script, rows[i].family);
		ImtaSmtpClientPeer peer;
		ImtaSmtpClient *c;
		g_autofree char *got = NULL;

		if (s == NULL) {
			g_test_message("no %s here", rows[i].address);
			continue;
		}
		peer = test_peer(s);
		peer.host = NULL;
		peer.address = rows[i].address;
		peer.bind_address = rows[i].bind_address;
		c = test_connect(&peer);
		g_assert_cmpstr(imta_smtp_client_peer_text(c), ==, rows[i].peer_text);
		g_assert_true(imta_smtp_client_has(c, IMTA_SMTP_EXT_DSN));
		imta_smtp_client_quit(c);
		got = server_finish(s);
		g_assert_cmpstr(got, ==, "EHLO client.example\r\nQUIT\r\n");
	}
}

/* ---- STARTTLS --------------------------------------------------------- */

static void
test_cert_make(TestCert *tc, const char *name)
{
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
	time_t now = time(NULL);
	GError *error = NULL;

	g_assert_cmpint(gnutls_x509_privkey_init(&key), ==, 0);
	g_assert_cmpint(gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
						     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1),
						     0), ==, 0);
	g_assert_cmpint(gnutls_x509_crt_init(&crt), ==, 0);
	gnutls_x509_crt_set_version(crt, 3);
	gnutls_x509_crt_set_serial(crt, "\x01\x02", 2);
	gnutls_x509_crt_set_activation_time(crt, now - 3600);
	gnutls_x509_crt_set_expiration_time(crt, now + 86400);
	gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, name, strlen(name));
	gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, name, strlen(name),
					     GNUTLS_FSAN_SET);
	gnutls_x509_crt_set_basic_constraints(crt, 1, -1);
	gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE |
					   GNUTLS_KEY_KEY_CERT_SIGN);
	gnutls_x509_crt_set_key(crt, key);
	g_assert_cmpint(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0), ==, 0);
	g_assert_cmpint(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &tc->cert), ==, 0);
	g_assert_cmpint(gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &tc->key), ==, 0);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
	tc->dir = g_dir_make_tmp("test-smtp-client-XXXXXX", &error);
	g_assert_no_error(error);
	tc->cert_path = g_build_filename(tc->dir, "cert.pem", NULL);
	g_file_set_contents(tc->cert_path, (const char *) tc->cert.data, tc->cert.size, &error);
	g_assert_no_error(error);
	tc->key_path = g_build_filename(tc->dir, "key.pem", NULL);
	g_file_set_contents(tc->key_path, (const char *) tc->key.data, tc->key.size, &error);
	g_assert_no_error(error);
}

static void
test_cert_free(TestCert *tc)
{
	g_unlink(tc->cert_path);
	g_unlink(tc->key_path);
	g_rmdir(tc->dir);
	g_free(tc->cert_path);
	g_free(tc->key_path);
	g_free(tc->dir);
	gnutls_free(tc->cert.data);
	gnutls_free(tc->key.data);
}

#define TLS_START GREETING, LINE, SEND("250-mx.test.example\r\n250 STARTTLS\r\n"), LINE, \
	SEND("220 2.0.0 go ahead\r\n"), TLS

typedef struct {
	ImtaSmtpTlsVerify verify;
	const char *host;
	gboolean with_ca;
	const char *message;      /* NULL: success */
} TlsRow;

static void
test_tls_verify(void)
{
	static const Step script[] = {
		TLS_START, LINE, SEND("250-mx.test.example\r\n250 PIPELINING\r\n"), QUIT, END,
	};
	static const TlsRow rows[] = {
		{ IMTA_SMTP_TLS_VERIFY_NONE, "mx.test.example", FALSE, NULL },
		{ IMTA_SMTP_TLS_VERIFY_NONE, NULL, FALSE, NULL },
		{ IMTA_SMTP_TLS_VERIFY_CHAIN, "mx.test.example", FALSE,
		  "certificate of mx.test.example: signer not trusted" },
		{ IMTA_SMTP_TLS_VERIFY_CHAIN, "other.example", TRUE, NULL },
		{ IMTA_SMTP_TLS_VERIFY_NAME, "mx.test.example", TRUE, NULL },
		{ IMTA_SMTP_TLS_VERIFY_NAME, "other.example", TRUE,
		  "certificate of other.example: issued to another name" },
		{ IMTA_SMTP_TLS_VERIFY_NAME, NULL, TRUE,
		  "certificate of the server: no host name to check it against" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		TestServer *s = server_start(script);
		ImtaSmtpClientPeer peer = test_peer(s);
		ImtaSmtpTlsClientOptions opts = { .verify = rows[i].verify,
						  .ca_file = rows[i].with_ca ? test_cert.cert_path
									     : NULL };
		g_autoptr(GError) error = NULL;
		g_autofree char *got = NULL;
		g_autofree char *sni = NULL;
		gboolean client_cert = TRUE;
		ImtaSmtpReply reply = { 0 };
		ImtaSmtpClient *c;
		gboolean ok;

		peer.host = rows[i].host;
		c = test_connect(&peer);
		g_assert_true(imta_smtp_client_has(c, IMTA_SMTP_EXT_STARTTLS));
		ok = imta_smtp_client_starttls(c, &opts, &reply, &error);
		if (rows[i].message == NULL) {
			g_assert_no_error(error);
			g_assert_true(ok);
			g_assert_true(imta_smtp_client_is_tls(c));
			g_assert_cmpuint(reply.code, ==, 250);
			/* what was offered in clear is forgotten */
			g_assert_cmphex(imta_smtp_client_extensions(c), ==,
					IMTA_SMTP_EXT_PIPELINING);
			g_assert_true(imta_smtp_client_reusable(c, 0));
		} else {
			g_assert_false(ok);
			g_assert_error(error, IMTA_SMTP_CLIENT_ERROR, IMTA_SMTP_CLIENT_ERROR_TLS);
			g_assert_cmpstr(error->message, ==, rows[i].message);
			g_assert_false(imta_smtp_client_reusable(c, 0));
		}
		imta_smtp_reply_clear(&reply);
		imta_smtp_client_quit(c);
		got = server_finish_sni(s, &sni, &client_cert);
		g_assert_false(client_cert);
		g_assert_cmpstr(sni, ==, rows[i].host != NULL ? rows[i].host : "");
		if (rows[i].message == NULL)
			g_assert_cmpstr(got, ==, "EHLO client.example\r\nSTARTTLS\r\n"
					"EHLO client.example\r\nQUIT\r\n");
		else
			g_assert_cmpstr(got, ==, "EHLO client.example\r\nSTARTTLS\r\n");
	}
}

static void
test_tls_transaction(void)
{
	static const Step script[] = {
		TLS_START, LINE, EHLO_FULL, LINES(3), SEND("250 ok\r\n250 ok\r\n354 go\r\n"), DATA,
		SEND("250 2.0.0 queued\r\n"), QUIT, END,
	};
	TestServer *s = server_start(script);
	ImtaSmtpClientPeer peer = test_peer(s);
	ImtaSmtpTlsClientOptions opts = { .verify = IMTA_SMTP_TLS_VERIFY_NAME,
					  .ca_file = test_cert.cert_path,
					  .priority = "NORMAL:-VERS-TLS1.3",
					  .cert_file = test_cert.cert_path,
					  .key_file = test_cert.key_path };
	ImtaSmtpClient *c = test_connect(&peer);
	g_autoptr(ImtaMessage) msg = test_message(test_content, one_rcpt);
	g_autoptr(GError) error = NULL;
	g_autofree char *got = NULL;
	g_autofree char *sni = NULL;
	gboolean client_cert = FALSE;
	ImtaSmtpSendResult result = { 0 };

	g_assert_true(imta_smtp_client_starttls(c, &opts, NULL, &error));
	g_assert_no_error(error);
	g_assert_true(imta_smtp_client_send(c, msg, test_indices, 1, NULL, TRUE, &result, &error));
	g_assert_cmpstr(result.rcpt[0].text, ==, "2.0.0 queued");
	g_assert_true(result.data_sent);
	imta_smtp_send_result_clear(&result);
	imta_smtp_client_quit(c);
	got = server_finish_sni(s, &sni, &client_cert);
	g_assert_cmpstr(sni, ==, "mx.test.example");
	g_assert_true(client_cert);
	g_assert_cmpstr(got, ==, "EHLO client.example\r\nSTARTTLS\r\nEHLO client.example\r\n"
			DSN_MAIL DSN_RCPT("b@y") "DATA\r\n" WIRE_CONTENT "QUIT\r\n");
}

typedef struct {
	const Step *script;
	ImtaSmtpTlsClientOptions opts;
	GQuark domain;
	gint code;
	const char *message;
	gboolean usable;
	const char *expect_got;
} TlsFailRow;

static void
test_tls_failures(void)
{
	static const Step refused[] = {
		GREETING, LINE, SEND("250-mx\r\n250 STARTTLS\r\n"), LINE,
		SEND("454 4.7.0 TLS not available\r\n"), QUIT, END,
	};
	/* replies sent in clear after the 220 must not pass for encrypted */
	static const Step injected[] = {
		GREETING, LINE, SEND("250-mx\r\n250 STARTTLS\r\n"), LINE,
		SEND("220 go ahead\r\n250 injected\r\n"), END,
	};
	static const Step no_tls[] = {
		GREETING, LINE, SEND("250-mx\r\n250 STARTTLS\r\n"), LINE, SEND("220 go ahead\r\n"),
		PAUSE(100), SEND("this is not TLS\r\n"), END,
	};
	static const Step unused[] = { GREETING, LINE, SEND("250-mx\r\n250 STARTTLS\r\n"), QUIT,
				       END };
	const TlsFailRow rows[] = {
		{ refused, { 0 }, IMTA_SMTP_CLIENT_ERROR, IMTA_SMTP_CLIENT_ERROR_REPLY,
		  "remote mx.test.example [127.0.0.1] said: 454 4.7.0 TLS not available "
		  "(in reply to STARTTLS)", TRUE,
		  "EHLO client.example\r\nSTARTTLS\r\nQUIT\r\n" },
		{ injected, { 0 }, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
		  "the server sent more than its reply to STARTTLS", FALSE,
		  "EHLO client.example\r\nSTARTTLS\r\n" },
		{ no_tls, { 0 }, G_IO_ERROR, G_IO_ERROR_FAILED,
		  "TLS handshake failed: An unexpected TLS packet was received after STARTTLS",
		  FALSE, "EHLO client.example\r\nSTARTTLS\r\n" },
		{ unused, { .ca_file = "/nonexistent/ca.pem" }, G_IO_ERROR, G_IO_ERROR_FAILED,
		  "TLS CA file /nonexistent/ca.pem: Error while reading file", TRUE,
		  "EHLO client.example\r\nQUIT\r\n" },
		{ unused, { .cert_file = "/nonexistent/client.pem" }, G_IO_ERROR, G_IO_ERROR_FAILED,
		  "TLS client certificate /nonexistent/client.pem: Error while reading file", TRUE,
		  "EHLO client.example\r\nQUIT\r\n" },
		{ unused, { .priority = "NORMAL:+BOGUS" }, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
		  "TLS priority \"NORMAL:+BOGUS\": The request is invalid at \"+BOGUS\"", TRUE,
		  "EHLO client.example\r\nQUIT\r\n" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		TestServer *s = server_start(rows[i].script);
		ImtaSmtpClientPeer peer = test_peer(s);
		g_autoptr(GError) error = NULL;
		g_autofree char *got = NULL;
		ImtaSmtpClient *c = test_connect(&peer);

		g_assert_false(imta_smtp_client_starttls(c, &rows[i].opts, NULL, &error));
		g_assert_error(error, rows[i].domain, rows[i].code);
		g_assert_cmpstr(error->message, ==, rows[i].message);
		g_assert_cmpint(imta_smtp_client_reusable(c, 0), ==, rows[i].usable);
		g_assert_false(imta_smtp_client_is_tls(c));
		imta_smtp_client_quit(c);
		got = server_finish(s);
		g_assert_cmpstr(got, ==, rows[i].expect_got);
	}
}

/* An idle session is usable while the server is quiet, and gone once the
 * server has closed it or said something unasked. */
static void
test_check_idle(void)
{
	static const char *const tails[] = { NULL, "421 4.4.2 idle too long\r\n" };

	for (guint i = 0; i < G_N_ELEMENTS(tails); i++) {
		ImtaSmtpClientPeer peer = { .host = "mx.example.test", .address = "192.0.2.1",
					    .port = 25, .helo_name = "client.example.test" };
		ImtaSmtpReply greeting = { 0 };
		g_autoptr(GError) error = NULL;
		ImtaSmtpClient *c;
		int fds[2];

		g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
		g_assert_cmpint(write(fds[1], "220 ready\r\n", 11), ==, 11);
		c = smtp_client_new_fd(fds[0], &peer, &greeting, &error);
		g_assert_no_error(error);
		g_assert_nonnull(c);
		g_assert_true(imta_smtp_client_check_idle(c));
		g_assert_true(imta_smtp_client_reusable(c, 0));
		if (tails[i] == NULL)
			close(fds[1]);
		else
			g_assert_cmpint(write(fds[1], tails[i], strlen(tails[i])), ==,
					(gssize)strlen(tails[i]));
		g_assert_false(imta_smtp_client_check_idle(c));
		g_assert_false(imta_smtp_client_reusable(c, 0));
		imta_smtp_client_free(c);
		if (tails[i] != NULL)
			close(fds[1]);
		imta_smtp_reply_clear(&greeting);
	}
}

int
main(int argc, char **argv)
{
	int rc;

	g_test_init(&argc, &argv, NULL);
	test_cert_make(&test_cert, "mx.test.example");
	g_test_add_func("/smtp-client/greeting/refused", test_greeting_refused);
	g_test_add_func("/smtp-client/hello/fallback", test_hello_fallback);
	g_test_add_func("/smtp-client/hello/extensions", test_hello_extensions);
	g_test_add_func("/smtp-client/send/pipelined", test_send_pipelined);
	g_test_add_func("/smtp-client/send/sequential", test_send_sequential);
	g_test_add_func("/smtp-client/send/some-refused", test_send_some_refused);
	g_test_add_func("/smtp-client/send/all-refused", test_send_all_refused);
	g_test_add_func("/smtp-client/send/mail-refused", test_send_mail_refused);
	g_test_add_func("/smtp-client/send/lmtp", test_send_lmtp);
	g_test_add_func("/smtp-client/send/421", test_send_421);
	g_test_add_func("/smtp-client/send/dot-stuffing", test_send_dot_stuffing);
	g_test_add_func("/smtp-client/send/reuse", test_send_reuse);
	g_test_add_func("/smtp-client/send/bad-address", test_send_bad_address);
	g_test_add_func("/smtp-client/broken/mid-data", test_broken_mid_data);
	g_test_add_func("/smtp-client/broken/after-dot", test_broken_after_dot);
	g_test_add_func("/smtp-client/broken/replies", test_broken_replies);
	g_test_add_func("/smtp-client/broken/unexpected", test_broken_unexpected);
	g_test_add_func("/smtp-client/reply/limits", test_reply_limits);
	g_test_add_func("/smtp-client/reply/text", test_reply_text);
	g_test_add_func("/smtp-client/diagnostic", test_diagnostic);
	g_test_add_func("/smtp-client/connect/errors", test_connect_errors);
	g_test_add_func("/smtp-client/connect/bind-ipv6", test_connect_bind_and_ipv6);
	g_test_add_func("/smtp-client/tls/verify", test_tls_verify);
	g_test_add_func("/smtp-client/tls/transaction", test_tls_transaction);
	g_test_add_func("/smtp-client/tls/failures", test_tls_failures);
	g_test_add_func("/smtp-client/session/check-idle", test_check_idle);
	rc = g_test_run();
	test_cert_free(&test_cert);
	return rc;
}
