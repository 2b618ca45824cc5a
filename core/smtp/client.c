/*
 * client.c - one SMTP (RFC 5321) or LMTP (RFC 2033) client session: the
 * greeting, EHLO/LHLO with the extensions offered (falling back to HELO),
 * STARTTLS (RFC 3207), and mail transactions with the ESMTP parameters of
 * SIZE (RFC 1870), 8BITMIME (RFC 6152), DSN (RFC 3461) and SMTPUTF8
 * (RFC 6531), pipelined when the server offers PIPELINING (RFC 2920).
 *
 * Every recipient comes out with the reply that decided it, and every way
 * a session can break (lost connection, timeout, bad reply) is reported
 * with the step it broke at.
 */
#include "config.h"

#include <stdarg.h>
#include <poll.h>
#include <string.h>

#include <glib.h>
#include <gio/gio.h>

#include <imta/job.h>
#include <imta/smtp.h>
#include <imta/smtp_client.h>
#include <imta/xtext.h>
#include "client_private.h"

/* RFC 5321 4.5.3.2 minimums. */
#define SMTP_CLIENT_CONNECT_MS    (30 * 1000)
#define SMTP_CLIENT_GREETING_MS   (5 * 60 * 1000)
#define SMTP_CLIENT_COMMAND_MS    (5 * 60 * 1000)
#define SMTP_CLIENT_DATA_INIT_MS  (2 * 60 * 1000)
#define SMTP_CLIENT_DATA_BLOCK_MS (3 * 60 * 1000)
#define SMTP_CLIENT_DATA_TERM_MS  (10 * 60 * 1000)
/* QUIT is a courtesy: it is not worth waiting long for. */
#define SMTP_CLIENT_QUIT_MS       (5 * 1000)
/* Content is read and sent in blocks of this size. */
#define SMTP_CLIENT_BLOCK_SIZE    (64 * 1024)
/* Commands pipelined before their replies are read: the replies of a
 * group must fit in the socket buffers, or both sides would wait for
 * each other. */
#define SMTP_CLIENT_PIPELINE_GROUP 100

struct _ImtaSmtpClient {
	SmtpIo io;
	char *host;
	char *address;
	char *helo_name;
	char *peer_text;
	gboolean lmtp;
	ImtaSmtpClientTimeouts timeouts;  /* defaults filled in */
	guint ext;
	guint64 max_size;
	gboolean broken;                  /* only free() is left */
	gboolean closing;                 /* the server said 421 */
	guint transactions;
};

G_DEFINE_QUARK(imta-smtp-client-error-quark, imta_smtp_client_error)

/* ---- replies and results ---------------------------------------------- */

void
imta_smtp_reply_clear(ImtaSmtpReply *reply)
{
	if (reply == NULL)
		return;
	g_free(reply->text);
	memset(reply, 0, sizeof *reply);
}

static void
client_reply_copy(ImtaSmtpReply *to, const ImtaSmtpReply *from)
{
	imta_smtp_reply_clear(to);
	to->code = from->code;
	memcpy(to->enhanced, from->enhanced, sizeof to->enhanced);
	to->text = g_strdup(from->text);
}

void
imta_smtp_send_result_clear(ImtaSmtpSendResult *result)
{
	if (result == NULL)
		return;
	imta_smtp_reply_clear(&result->mail);
	for (guint i = 0; result->rcpt != NULL && i < result->n_rcpts; i++)
		imta_smtp_reply_clear(&result->rcpt[i]);
	g_free(result->rcpt);
	memset(result, 0, sizeof *result);
}

char *
imta_smtp_client_diagnostic(const ImtaSmtpClient *c, const ImtaSmtpReply *reply)
{
	GString *out;
	guint cls = reply->code / 100;

	g_return_val_if_fail(c != NULL && reply != NULL, NULL);
	if (reply->code == 0)
		return g_strdup_printf("remote %s gave no reply", c->peer_text);
	out = g_string_new(NULL);
	g_string_append_printf(out, "remote %s said: %03u", c->peer_text, reply->code);
	if (reply->enhanced[0] == '\0' && (cls == 2 || cls == 4 || cls == 5))
		g_string_append_printf(out, " %u.0.0", cls);
	if (reply->text != NULL && reply->text[0] != '\0')
		g_string_append_printf(out, " %s", reply->text);
	return g_string_free(out, FALSE);
}

/* ---- session state ---------------------------------------------------- */

static guint
client_default(guint value, guint fallback)
{
	return value != 0 ? value : fallback;
}

static void
client_set_timeouts(ImtaSmtpClientTimeouts *t, const ImtaSmtpClientTimeouts *given)
{
	t->connect_ms = client_default(given->connect_ms, SMTP_CLIENT_CONNECT_MS);
	t->greeting_ms = client_default(given->greeting_ms, SMTP_CLIENT_GREETING_MS);
	t->command_ms = client_default(given->command_ms, SMTP_CLIENT_COMMAND_MS);
	t->data_init_ms = client_default(given->data_init_ms, SMTP_CLIENT_DATA_INIT_MS);
	t->data_block_ms = client_default(given->data_block_ms, SMTP_CLIENT_DATA_BLOCK_MS);
	t->data_term_ms = client_default(given->data_term_ms, SMTP_CLIENT_DATA_TERM_MS);
}

static void
client_close_broken(ImtaSmtpClient *c)
{
	c->broken = TRUE;
	smtp_io_close(&c->io);
}

/* The session broke: append where to an I/O error, and close. */
static gboolean G_GNUC_PRINTF(3, 4)
client_broke(ImtaSmtpClient *c, GError **error, const char *format, ...)
{
	client_close_broken(c);
	if (error != NULL && *error != NULL && (*error)->domain == G_IO_ERROR) {
		va_list args;
		g_autofree char *where = NULL;
		char *message;

		va_start(args, format);
		where = g_strdup_vprintf(format, args);
		va_end(args);
		message = g_strdup_printf("%s %s", (*error)->message, where);
		g_free((*error)->message);
		(*error)->message = message;
	}
	return FALSE;
}

static gboolean
client_usable(const ImtaSmtpClient *c, GError **error)
{
	if (!c->broken)
		return TRUE;
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED, "the session with %s is closed",
		    c->peer_text);
	return FALSE;
}

/* A refusal as an error: the diagnostic, and what it answered. */
static gboolean
client_refused(const ImtaSmtpClient *c, const ImtaSmtpReply *reply, const char *step,
	       GError **error)
{
	g_autofree char *diagnostic = imta_smtp_client_diagnostic(c, reply);

	g_set_error(error, IMTA_SMTP_CLIENT_ERROR, IMTA_SMTP_CLIENT_ERROR_REPLY, "%s (%s)",
		    diagnostic, step);
	return FALSE;
}

/* A reply; `where` completes an error ("after RCPT TO:<b@example.org>"). */
static gboolean
client_read_reply(ImtaSmtpClient *c, guint timeout_ms, const char *where, ImtaSmtpReply *reply,
		  GPtrArray *lines, GError **error)
{
	if (!smtp_io_read_reply(&c->io, timeout_ms, reply, lines, error))
		return client_broke(c, error, "%s", where);
	/* RFC 5321 3.8: the server is going away */
	if (reply->code == 421)
		c->closing = TRUE;
	return TRUE;
}

static gboolean
client_write(ImtaSmtpClient *c, const char *data, gsize len, guint timeout_ms, const char *shown,
	     GError **error)
{
	if (!smtp_io_write(&c->io, data, len, timeout_ms, error))
		return client_broke(c, error, "while sending %s", shown);
	return TRUE;
}

/* One command (without CR LF) and its reply. */
static gboolean
client_command(ImtaSmtpClient *c, const char *line, ImtaSmtpReply *reply, GPtrArray *lines,
	       GError **error)
{
	g_autofree char *wire = g_strconcat(line, "\r\n", NULL);
	g_autofree char *where = g_strconcat("after ", line, NULL);

	return client_write(c, wire, strlen(wire), c->timeouts.command_ms, line, error) &&
	       client_read_reply(c, c->timeouts.command_ms, where, reply, lines, error);
}

/* ---- connecting ------------------------------------------------------- */

static ImtaSmtpClient *
client_new(int fd, const ImtaSmtpClientPeer *peer)
{
	ImtaSmtpClient *c = g_new0(ImtaSmtpClient, 1);

	smtp_io_init(&c->io, fd);
	c->host = g_strdup(peer->host);
	c->address = smtp_io_peer_address(peer);
	c->helo_name = g_strdup(peer->helo_name != NULL ? peer->helo_name : g_get_host_name());
	c->peer_text = smtp_io_peer_name(c->host, c->address);
	c->lmtp = peer->lmtp;
	client_set_timeouts(&c->timeouts, &peer->timeouts);
	return c;
}

ImtaSmtpClient *
smtp_client_new_fd(int fd, const ImtaSmtpClientPeer *peer, ImtaSmtpReply *greeting_r,
		   GError **error)
{
	g_autoptr(ImtaSmtpClient) c = client_new(fd, peer);
	ImtaSmtpReply local = { 0 };
	ImtaSmtpReply *greeting = greeting_r != NULL ? greeting_r : &local;

	if (!client_read_reply(c, c->timeouts.greeting_ms, "waiting for the greeting", greeting,
			       NULL, error))
		return NULL;
	if (greeting->code / 100 != 2) {
		client_refused(c, greeting, "greeting", error);
		imta_smtp_reply_clear(&local);
		/* RFC 5321 3.1: QUIT, then close */
		imta_smtp_client_quit(g_steal_pointer(&c));
		return NULL;
	}
	imta_smtp_reply_clear(&local);
	return g_steal_pointer(&c);
}

ImtaSmtpClient *
imta_smtp_client_connect(const ImtaSmtpClientPeer *peer, ImtaSmtpReply *greeting_r,
			 GError **error)
{
	guint timeout_ms;
	int fd;

	g_return_val_if_fail(peer != NULL && (peer->address != NULL || peer->socket_path != NULL),
			     NULL);
	if (greeting_r != NULL)
		imta_smtp_reply_clear(greeting_r);
	timeout_ms = client_default(peer->timeouts.connect_ms, SMTP_CLIENT_CONNECT_MS);
	fd = smtp_io_connect(peer, timeout_ms, error);
	if (fd < 0)
		return NULL;
	return smtp_client_new_fd(fd, peer, greeting_r, error);
}

/* ---- EHLO ------------------------------------------------------------- */

static const struct {
	const char *keyword;
	ImtaSmtpExt ext;
} client_extensions[] = {
	{ "PIPELINING", IMTA_SMTP_EXT_PIPELINING },
	{ "SIZE", IMTA_SMTP_EXT_SIZE },
	{ "8BITMIME", IMTA_SMTP_EXT_8BITMIME },
	{ "DSN", IMTA_SMTP_EXT_DSN },
	{ "STARTTLS", IMTA_SMTP_EXT_STARTTLS },
	{ "ENHANCEDSTATUSCODES", IMTA_SMTP_EXT_ENHANCEDSTATUSCODES },
	{ "CHUNKING", IMTA_SMTP_EXT_CHUNKING },
	{ "SMTPUTF8", IMTA_SMTP_EXT_SMTPUTF8 },
	{ "AUTH", IMTA_SMTP_EXT_AUTH },
};

/* SIZE's argument: the largest message taken, 0 (or none) for no limit. */
static guint64
client_parse_size(const char *param)
{
	g_autofree char *word = g_strndup(param, strcspn(param, " "));
	guint64 size = 0;

	if (!g_ascii_string_to_unsigned(word, 10, 0, G_MAXUINT64, &size, NULL))
		return 0;
	return size;
}

static void
client_parse_ehlo_line(const char *line, guint *ext, guint64 *max_size)
{
	/* "AUTH=LOGIN" is an old spelling of "AUTH LOGIN" */
	gsize n = strcspn(line, " =");

	for (gsize i = 0; i < G_N_ELEMENTS(client_extensions); i++) {
		if (strlen(client_extensions[i].keyword) != n ||
		    g_ascii_strncasecmp(line, client_extensions[i].keyword, n) != 0)
			continue;
		*ext |= client_extensions[i].ext;
		if (client_extensions[i].ext == IMTA_SMTP_EXT_SIZE)
			*max_size = line[n] == ' ' ? client_parse_size(line + n + 1) : 0;
		return;
	}
}

void
smtp_client_parse_ehlo(const GPtrArray *lines, guint *ext_r, guint64 *max_size_r)
{
	*ext_r = 0;
	*max_size_r = 0;
	/* the first line names the server */
	for (guint i = 1; i < lines->len; i++)
		client_parse_ehlo_line(lines->pdata[i], ext_r, max_size_r);
}

/* EHLO or LHLO; the extensions when accepted. */
static gboolean
client_ehlo(ImtaSmtpClient *c, ImtaSmtpReply *reply, GError **error)
{
	g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *line = g_strdup_printf("%s %s", c->lmtp ? "LHLO" : "EHLO", c->helo_name);

	c->ext = 0;
	c->max_size = 0;
	if (!client_command(c, line, reply, lines, error))
		return FALSE;
	if (reply->code / 100 == 2)
		smtp_client_parse_ehlo(lines, &c->ext, &c->max_size);
	return TRUE;
}

gboolean
imta_smtp_client_hello(ImtaSmtpClient *c, ImtaSmtpReply *reply_r, GError **error)
{
	ImtaSmtpReply local = { 0 };
	ImtaSmtpReply *reply = reply_r != NULL ? reply_r : &local;
	g_autofree char *helo = NULL;
	gboolean ok;

	g_return_val_if_fail(c != NULL, FALSE);
	imta_smtp_reply_clear(reply);
	if (!client_usable(c, error) || !client_ehlo(c, reply, error))
		return FALSE;
	if (reply->code / 100 == 2) {
		imta_smtp_reply_clear(&local);
		return TRUE;
	}
	/* RFC 5321 3.2: a server that does not know EHLO says 5xx */
	if (c->lmtp || reply->code / 100 != 5) {
		ok = client_refused(c, reply, c->lmtp ? "in reply to LHLO" : "in reply to EHLO",
				    error);
		imta_smtp_reply_clear(&local);
		return ok;
	}
	helo = g_strdup_printf("HELO %s", c->helo_name);
	ok = client_command(c, helo, reply, NULL, error);
	if (ok && reply->code / 100 != 2)
		ok = client_refused(c, reply, "in reply to HELO", error);
	imta_smtp_reply_clear(&local);
	return ok;
}

/* ---- STARTTLS --------------------------------------------------------- */

static gboolean
client_tls_handshake(ImtaSmtpClient *c, const ImtaSmtpTlsClientOptions *opts, GError **error)
{
	/* RFC 3207 4.2 (and the command injection of 2011): nothing sent
	 * in clear after the 220 may be read as if it came through TLS */
	if (smtp_io_buffered(&c->io) > 0) {
		g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
				    "the server sent more than its reply");
		return client_broke(c, error, "to STARTTLS");
	}
	if (!smtp_io_start_tls(&c->io, opts, c->host, c->timeouts.command_ms, error))
		return client_broke(c, error, "after STARTTLS");
	/* RFC 3207 4.2: forget what was learnt in clear */
	c->ext = 0;
	c->max_size = 0;
	return TRUE;
}

gboolean
imta_smtp_client_starttls(ImtaSmtpClient *c, const ImtaSmtpTlsClientOptions *opts,
			  ImtaSmtpReply *reply_r, GError **error)
{
	ImtaSmtpReply local = { 0 };
	ImtaSmtpReply *reply = reply_r != NULL ? reply_r : &local;
	gboolean ok;

	g_return_val_if_fail(c != NULL && opts != NULL, FALSE);
	imta_smtp_reply_clear(reply);
	if (!client_usable(c, error))
		return FALSE;
	if (smtp_io_is_tls(&c->io)) {
		g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_EXISTS, "TLS is already on");
		return FALSE;
	}
	if (!smtp_io_tls_prepare(&c->io, opts, c->host, error) ||
	    !client_command(c, "STARTTLS", reply, NULL, error))
		return FALSE;
	if (reply->code != 220) {
		smtp_io_tls_discard(&c->io);
		ok = client_refused(c, reply, "in reply to STARTTLS", error);
		imta_smtp_reply_clear(&local);
		return ok;
	}
	imta_smtp_reply_clear(&local);
	return client_tls_handshake(c, opts, error) && imta_smtp_client_hello(c, reply_r, error);
}

/* ---- session queries -------------------------------------------------- */

guint
imta_smtp_client_extensions(const ImtaSmtpClient *c)
{
	g_return_val_if_fail(c != NULL, 0);
	return c->ext;
}

gboolean
imta_smtp_client_has(const ImtaSmtpClient *c, ImtaSmtpExt ext)
{
	g_return_val_if_fail(c != NULL, FALSE);
	return (c->ext & ext) == ext;
}

guint64
imta_smtp_client_max_size(const ImtaSmtpClient *c)
{
	g_return_val_if_fail(c != NULL, 0);
	return c->max_size;
}

gboolean
imta_smtp_client_is_tls(const ImtaSmtpClient *c)
{
	g_return_val_if_fail(c != NULL, FALSE);
	return smtp_io_is_tls(&c->io);
}

const char *
imta_smtp_client_peer_text(const ImtaSmtpClient *c)
{
	g_return_val_if_fail(c != NULL, NULL);
	return c->peer_text;
}

gboolean
imta_smtp_client_reusable(const ImtaSmtpClient *c, guint max_transactions)
{
	g_return_val_if_fail(c != NULL, FALSE);
	return !c->broken && !c->closing &&
	       (max_transactions == 0 || c->transactions < max_transactions);
}

gboolean
imta_smtp_client_check_idle(ImtaSmtpClient *c)
{
	struct pollfd pfd = { .fd = c->io.fd, .events = POLLIN };

	g_return_val_if_fail(c != NULL, FALSE);
	if (c->broken || c->closing)
		return FALSE;
	if (smtp_io_buffered(&c->io) == 0 && poll(&pfd, 1, 0) == 0)
		return TRUE;
	c->broken = TRUE;
	return FALSE;
}

guint
imta_smtp_client_transactions(const ImtaSmtpClient *c)
{
	g_return_val_if_fail(c != NULL, 0);
	return c->transactions;
}

/* ---- commands of a transaction ---------------------------------------- */

static gboolean
client_is_ascii(const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		if ((guchar) *s >= 0x80)
			return FALSE;
	}
	return TRUE;
}

/* An address that could end the command line early or add a command. */
static gboolean
client_unsafe_address(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((guchar) *s < 0x20 || *s == 0x7f)
			return TRUE;
	}
	return FALSE;
}

static char *
client_mail_line(const ImtaSmtpClient *c, const ImtaMessage *msg, gint64 size,
		 gboolean eight_bit, gboolean utf8)
{
	GString *line = g_string_new(NULL);
	ImtaRet ret = imta_message_ret(msg);
	const char *envid = imta_message_envid(msg);

	g_string_append_printf(line, "MAIL FROM:<%s>", imta_message_return_path(msg));
	if ((c->ext & IMTA_SMTP_EXT_SIZE) && size > 0)
		g_string_append_printf(line, " SIZE=%" G_GINT64_FORMAT, size);
	if (eight_bit && (c->ext & IMTA_SMTP_EXT_8BITMIME))
		g_string_append(line, " BODY=8BITMIME");
	if (c->ext & IMTA_SMTP_EXT_DSN) {
		if (ret != IMTA_RET_DEFAULT)
			g_string_append(line, ret == IMTA_RET_HDRS ? " RET=HDRS" : " RET=FULL");
		if (envid != NULL) {
			g_string_append(line, " ENVID=");
			imta_xtext_append(line, envid, -1);
		}
	}
	if (utf8)
		g_string_append(line, " SMTPUTF8");
	return g_string_free(line, FALSE);
}

static void
client_append_notify(GString *line, guint notify)
{
	static const struct {
		ImtaNotify bit;
		const char *name;
	} names[] = {
		{ IMTA_NOTIFY_SUCCESS, "SUCCESS" },
		{ IMTA_NOTIFY_FAILURE, "FAILURE" },
		{ IMTA_NOTIFY_DELAY, "DELAY" },
	};
	const char *sep = " NOTIFY=";

	if (notify & IMTA_NOTIFY_NEVER) {
		g_string_append(line, " NOTIFY=NEVER");
		return;
	}
	for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
		if (notify & names[i].bit) {
			g_string_append_printf(line, "%s%s", sep, names[i].name);
			sep = ",";
		}
	}
}

/* ORCPT=type;xtext (RFC 3461 4.2); the type is an atom, rfc822 when the
 * original recipient was stored without one. */
static void
client_append_orcpt(GString *line, const char *orcpt)
{
	const char *semi = strchr(orcpt, ';');
	gboolean typed = semi != NULL && semi > orcpt;

	for (const char *p = orcpt; typed && p < semi; p++)
		typed = g_ascii_isalnum(*p) || *p == '-';
	g_string_append(line, " ORCPT=");
	if (typed) {
		g_string_append_len(line, orcpt, semi - orcpt + 1);
		imta_xtext_append(line, semi + 1, -1);
	} else {
		g_string_append(line, "rfc822;");
		imta_xtext_append(line, orcpt, -1);
	}
}

static char *
client_rcpt_line(const ImtaSmtpClient *c, const ImtaRecipient *r)
{
	GString *line = g_string_new(NULL);

	g_string_append_printf(line, "RCPT TO:<%s>", r->address);
	if (c->ext & IMTA_SMTP_EXT_DSN) {
		client_append_notify(line, r->notify);
		if (r->orcpt != NULL && r->orcpt[0] != '\0')
			client_append_orcpt(line, r->orcpt);
	}
	return g_string_free(line, FALSE);
}

/* "MAIL FROM:<a@x>" of "MAIL FROM:<a@x> SIZE=10": errors name no more. */
static char *
client_shown(const char *line)
{
	const char *end = strchr(line, '>');

	return end != NULL ? g_strndup(line, (gsize) (end - line) + 1) : g_strdup(line);
}

static char *
client_after(const char *line)
{
	g_autofree char *shown = client_shown(line);

	return g_strconcat("after ", shown, NULL);
}

/* ---- transactions ----------------------------------------------------- */

typedef struct {
	ImtaSmtpClient *c;
	const ImtaMessage *msg;
	const guint *rcpts;
	guint n;
	GInputStream *content;
	gint64 size;                  /* the SIZE= value; 0: none */
	ImtaSmtpSendResult *result;
	char **lines;                 /* MAIL, the RCPTs, DATA */
	gboolean *accepted;           /* RCPT got 2xx: decided after the data */
	guint n_accepted;
	gboolean done;                /* every recipient decided (421, MAIL refused) */
} ClientTx;

static const ImtaRecipient *
tx_recipient(const ClientTx *t, guint i)
{
	return imta_message_recipient(t->msg, t->rcpts[i]);
}

/* Refuse, before anything is sent, addresses that could inject commands. */
static gboolean
tx_check_addresses(const ClientTx *t, GError **error)
{
	const char *bad = NULL;

	if (client_unsafe_address(imta_message_return_path(t->msg)))
		bad = imta_message_return_path(t->msg);
	g_autofree char *shown = NULL;

	for (guint i = 0; bad == NULL && i < t->n; i++) {
		if (t->rcpts[i] >= imta_message_recipient_count(t->msg)) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
				    "message %s has no recipient %u", imta_message_id(t->msg),
				    t->rcpts[i]);
			return FALSE;
		}
		if (client_unsafe_address(tx_recipient(t, i)->address))
			bad = tx_recipient(t, i)->address;
	}
	if (bad == NULL)
		return TRUE;
	shown = g_strescape(bad, NULL);
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
		    "message %s: address with a control character: \"%s\"",
		    imta_message_id(t->msg), shown);
	return FALSE;
}

static gboolean
tx_needs_smtputf8(const ClientTx *t)
{
	if (!(t->c->ext & IMTA_SMTP_EXT_SMTPUTF8))
		return FALSE;
	if (!client_is_ascii(imta_message_return_path(t->msg)))
		return TRUE;
	for (guint i = 0; i < t->n; i++) {
		if (!client_is_ascii(tx_recipient(t, i)->address))
			return TRUE;
	}
	return FALSE;
}

static void
tx_build_lines(ClientTx *t, gboolean eight_bit)
{
	t->lines = g_new0(char *, t->n + 3);
	t->lines[0] = client_mail_line(t->c, t->msg, t->size, eight_bit, tx_needs_smtputf8(t));
	for (guint i = 0; i < t->n; i++)
		t->lines[i + 1] = client_rcpt_line(t->c, tx_recipient(t, i));
	t->lines[t->n + 1] = g_strdup("DATA");
}

/* Every recipient not decided yet gets `reply`. */
static void
tx_decide_rest(ClientTx *t, const ImtaSmtpReply *reply)
{
	for (guint i = 0; i < t->n; i++) {
		if (t->result->rcpt[i].code == 0)
			client_reply_copy(&t->result->rcpt[i], reply);
	}
	t->done = TRUE;
}

/* The reply to command k (0 MAIL, 1..n RCPT, n+1 DATA), except DATA's. */
static void
tx_take_reply(ClientTx *t, guint k, ImtaSmtpReply *reply)
{
	ImtaSmtpSendResult *res = t->result;

	if (t->done)
		return;
	if (k == 0) {
		client_reply_copy(&res->mail, reply);
		if (reply->code / 100 != 2)
			tx_decide_rest(t, reply);
	} else if (reply->code == 421) {
		tx_decide_rest(t, reply);
	} else if (reply->code / 100 == 2) {
		t->accepted[k - 1] = TRUE;
		t->n_accepted++;
	} else {
		client_reply_copy(&res->rcpt[k - 1], reply);
	}
}

/* A reply that answers nothing the command could get (354 to RCPT, 250
 * to DATA) means the two sides no longer agree where they are: taking it
 * as an outcome could report mail delivered that never was. */
static gboolean
tx_check_reply(ClientTx *t, guint k, const ImtaSmtpReply *reply, GError **error)
{
	guint cls = reply->code / 100;
	gboolean fits = k == t->n + 1 ? reply->code == 354 || cls == 4 || cls == 5
				      : cls == 2 || cls == 4 || cls == 5;
	g_autofree char *shown = NULL;

	if (fits)
		return TRUE;
	shown = client_shown(t->lines[k]);
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "unexpected reply %u to %s",
		    reply->code, shown);
	client_close_broken(t->c);
	return FALSE;
}

static guint
tx_timeout(const ClientTx *t, guint k)
{
	return k == t->n + 1 ? t->c->timeouts.data_init_ms : t->c->timeouts.command_ms;
}

/* Commands [from, to) in one write, then their replies in order; the DATA
 * reply, when DATA is among them, goes to *data_reply. */
static gboolean
tx_pipeline_group(ClientTx *t, guint from, guint to, ImtaSmtpReply *data_reply,
		  GError **error)
{
	g_autoptr(GString) out = g_string_new(NULL);
	g_autofree char *first = client_shown(t->lines[from]);

	for (guint k = from; k < to; k++)
		g_string_append_printf(out, "%s\r\n", t->lines[k]);
	if (!client_write(t->c, out->str, out->len, t->c->timeouts.command_ms, first, error))
		return FALSE;
	for (guint k = from; k < to; k++) {
		g_autofree char *where = client_after(t->lines[k]);
		ImtaSmtpReply reply = { 0 };

		if (!client_read_reply(t->c, tx_timeout(t, k), where, &reply, NULL, error))
			return FALSE;
		if (!tx_check_reply(t, k, &reply, error)) {
			imta_smtp_reply_clear(&reply);
			return FALSE;
		}
		if (k == t->n + 1)
			*data_reply = reply;
		else
			tx_take_reply(t, k, &reply);
		if (k != t->n + 1)
			imta_smtp_reply_clear(&reply);
		/* RFC 5321 3.8: nothing more will be answered */
		if (t->c->closing)
			return TRUE;
	}
	return TRUE;
}

static gboolean
tx_pipelined(ClientTx *t, ImtaSmtpReply *data_reply, GError **error)
{
	guint total = t->n + 2;

	for (guint from = 0; from < total && !t->c->closing; from += SMTP_CLIENT_PIPELINE_GROUP) {
		if (!tx_pipeline_group(t, from, MIN(from + SMTP_CLIENT_PIPELINE_GROUP, total),
				       data_reply, error))
			return FALSE;
	}
	return TRUE;
}

/* One command at a time, stopping when there is no point going on. */
static gboolean
tx_sequential(ClientTx *t, ImtaSmtpReply *data_reply, GError **error)
{
	for (guint k = 0; k <= t->n + 1; k++) {
		g_autofree char *wire = g_strconcat(t->lines[k], "\r\n", NULL);
		g_autofree char *shown = client_shown(t->lines[k]);
		g_autofree char *where = client_after(t->lines[k]);
		ImtaSmtpReply reply = { 0 };

		if (t->done || (k == t->n + 1 && t->n_accepted == 0))
			return TRUE;
		if (!client_write(t->c, wire, strlen(wire), t->c->timeouts.command_ms, shown,
				  error) ||
		    !client_read_reply(t->c, tx_timeout(t, k), where, &reply, NULL, error))
			return FALSE;
		if (!tx_check_reply(t, k, &reply, error)) {
			imta_smtp_reply_clear(&reply);
			return FALSE;
		}
		if (k == t->n + 1) {
			*data_reply = reply;
			return TRUE;
		}
		tx_take_reply(t, k, &reply);
		imta_smtp_reply_clear(&reply);
	}
	return TRUE;
}

static gboolean
tx_rset(ClientTx *t, GError **error)
{
	ImtaSmtpReply reply = { 0 };

	if (t->c->closing)
		return TRUE;
	if (!client_command(t->c, "RSET", &reply, NULL, error))
		return FALSE;
	/* a server that cannot reset is in no state for another message */
	if (reply.code / 100 != 2)
		t->c->closing = TRUE;
	imta_smtp_reply_clear(&reply);
	return TRUE;
}

/* A 354 without any recipient accepted (RFC 2920 3.1): an empty message
 * ends the data phase; its reply means nothing. */
static gboolean
tx_empty_data(ClientTx *t, GError **error)
{
	ImtaSmtpReply reply = { 0 };

	if (!client_write(t->c, ".\r\n", 3, t->c->timeouts.data_block_ms, "an empty message",
			  error) ||
	    !client_read_reply(t->c, t->c->timeouts.data_term_ms, "after an empty message", &reply,
			       NULL, error))
		return FALSE;
	imta_smtp_reply_clear(&reply);
	return tx_rset(t, error);
}

/* The content, LF turned into CR LF and dot-stuffed, then the final dot.
 * A failure to read it breaks the session: without the dot the server
 * drops the partial message, which is the only safe end.  What is encoded
 * is written a block at a time, and the last of it with the final dot:
 * a small message goes out in one write. */
static gboolean
tx_content(ClientTx *t, GError **error)
{
	g_autofree char *block = g_malloc(SMTP_CLIENT_BLOCK_SIZE);
	g_autoptr(GString) wire = g_string_sized_new(SMTP_CLIENT_BLOCK_SIZE + 1024);
	guint state = 0;
	gssize n;

	do {
		GError *local = NULL;

		n = g_input_stream_read(t->content, block, SMTP_CLIENT_BLOCK_SIZE, NULL, &local);
		if (n < 0) {
			g_propagate_prefixed_error(error, local, "cannot read message %s: ",
						   imta_message_id(t->msg));
			client_close_broken(t->c);
			return FALSE;
		}
		imta_smtp_data_encode(&state, block, (gsize) n, n == 0, wire);
		if (wire->len < SMTP_CLIENT_BLOCK_SIZE && n > 0)
			continue;
		if (!smtp_io_write(&t->c->io, wire->str, wire->len, t->c->timeouts.data_block_ms,
				   error))
			return client_broke(t->c, error, "while sending the message content");
		g_string_truncate(wire, 0);
	} while (n > 0);
	t->result->data_sent = TRUE;
	return TRUE;
}

/* The reply to the final dot decides every accepted recipient; LMTP gives
 * one reply per accepted recipient, in RCPT order (RFC 2033 4.2). */
static gboolean
tx_end_replies(ClientTx *t, GError **error)
{
	static const char where[] = "after the end of data";
	ImtaSmtpReply reply = { 0 };

	for (guint i = 0; i < t->n; i++) {
		if (!t->accepted[i] || t->result->rcpt[i].code != 0)
			continue;
		if (!client_read_reply(t->c, t->c->timeouts.data_term_ms, where, &reply, NULL,
				       error))
			return FALSE;
		if (reply.code / 100 == 3) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
				    "unexpected reply %u %s", reply.code, where);
			imta_smtp_reply_clear(&reply);
			client_close_broken(t->c);
			return FALSE;
		}
		if (!t->c->lmtp || reply.code == 421) {
			for (guint j = i; j < t->n; j++) {
				if (t->accepted[j])
					client_reply_copy(&t->result->rcpt[j], &reply);
			}
			imta_smtp_reply_clear(&reply);
			return TRUE;
		}
		client_reply_copy(&t->result->rcpt[i], &reply);
		imta_smtp_reply_clear(&reply);
	}
	return TRUE;
}

/* After the commands: the content when DATA got 354, else the end of
 * the transaction. */
static gboolean
tx_finish(ClientTx *t, const ImtaSmtpReply *data_reply, GError **error)
{
	if (data_reply->code == 354) {
		if (t->n_accepted == 0 || t->done)
			return tx_empty_data(t, error);
		return tx_content(t, error) && tx_end_replies(t, error);
	}
	/* DATA refused: that decides the recipients accepted */
	for (guint i = 0; data_reply->code != 0 && !t->done && i < t->n; i++) {
		if (t->accepted[i])
			client_reply_copy(&t->result->rcpt[i], data_reply);
	}
	/* RFC 5321 3.3: a transaction that got nowhere ends with RSET */
	return tx_rset(t, error);
}

static void
tx_clear(ClientTx *t)
{
	g_strfreev(t->lines);
	g_free(t->accepted);
	g_clear_object(&t->content);
}

static gboolean
tx_run(ClientTx *t, GError **error)
{
	ImtaSmtpReply data_reply = { 0 };
	gboolean ok;

	t->c->transactions++;
	if (t->c->ext & IMTA_SMTP_EXT_PIPELINING)
		ok = tx_pipelined(t, &data_reply, error);
	else
		ok = tx_sequential(t, &data_reply, error);
	if (ok)
		ok = tx_finish(t, &data_reply, error);
	imta_smtp_reply_clear(&data_reply);
	return ok;
}

gboolean
imta_smtp_client_send(ImtaSmtpClient *c, const ImtaMessage *msg, const guint *rcpts,
		      guint n_rcpts, GInputStream *content, gboolean eight_bit,
		      ImtaSmtpSendResult *result, GError **error)
{
	return imta_smtp_client_send_sized(c, msg, rcpts, n_rcpts, content,
					   imta_message_size(msg), eight_bit, result, error);
}

gboolean
imta_smtp_client_send_sized(ImtaSmtpClient *c, const ImtaMessage *msg, const guint *rcpts,
			    guint n_rcpts, GInputStream *content, gint64 wire_size,
			    gboolean eight_bit, ImtaSmtpSendResult *result, GError **error)
{
	ClientTx t = { .c = c, .msg = msg, .rcpts = rcpts, .n = n_rcpts, .result = result,
		       .size = wire_size };
	gboolean ok;

	g_return_val_if_fail(c != NULL && msg != NULL && result != NULL, FALSE);
	g_return_val_if_fail(n_rcpts > 0 && rcpts != NULL, FALSE);
	memset(result, 0, sizeof *result);
	result->n_rcpts = n_rcpts;
	result->rcpt = g_new0(ImtaSmtpReply, n_rcpts);
	if (!client_usable(c, error) || !tx_check_addresses(&t, error))
		return FALSE;
	t.content = content != NULL ? g_object_ref(content)
				    : imta_message_open_content(msg, error);
	if (t.content == NULL)
		return FALSE;
	t.accepted = g_new0(gboolean, n_rcpts);
	tx_build_lines(&t, eight_bit);
	ok = tx_run(&t, error);
	tx_clear(&t);
	return ok;
}

/* ---- the end ---------------------------------------------------------- */

void
imta_smtp_client_quit(ImtaSmtpClient *c)
{
	guint timeout_ms;
	ImtaSmtpReply reply = { 0 };

	if (c == NULL)
		return;
	timeout_ms = MIN(c->timeouts.command_ms, SMTP_CLIENT_QUIT_MS);
	if (!c->broken && smtp_io_write(&c->io, "QUIT\r\n", 6, timeout_ms, NULL))
		(void) smtp_io_read_reply(&c->io, timeout_ms, &reply, NULL, NULL);
	imta_smtp_reply_clear(&reply);
	imta_smtp_client_free(c);
}

void
imta_smtp_client_free(ImtaSmtpClient *c)
{
	if (c == NULL)
		return;
	smtp_io_close(&c->io);
	g_free(c->host);
	g_free(c->address);
	g_free(c->helo_name);
	g_free(c->peer_text);
	g_free(c);
}
