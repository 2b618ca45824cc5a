/*
 * fuzz-smtp_reply.c - libFuzzer harness for the SMTP client's side of the
 * conversation: the input is what a server says.  It goes line by line
 * through the reply reader and the EHLO parser, whose results must stay
 * within their limits, and then whole through a socket to a client
 * session (greeting, EHLO, a transaction with DSN parameters, QUIT) that
 * must end, break cleanly or succeed, never crash, hang or leak.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>
#include <gio/gio.h>

#include <imta/job.h>
#include <imta/smtp_client.h>
#include "smtp/client_private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_check_reply(const ImtaSmtpReply *reply)
{
	gsize elen = strlen(reply->enhanced);

	if (reply->code < 200 || reply->code > 559 || reply->text == NULL)
		abort();
	if (strlen(reply->text) > IMTA_SMTP_CLIENT_MAX_REPLY)
		abort();
	for (const char *p = reply->text; *p != '\0'; p++) {
		if ((guchar) *p < 0x20 || (guchar) *p >= 0x7f)
			abort();
	}
	if (elen > 0 && (reply->enhanced[0] != (char) ('0' + reply->code / 100) ||
			 strncmp(reply->text, reply->enhanced, elen) != 0))
		abort();
}

/* The input as reply lines: every finished reply is checked, and a bad
 * line starts the next reply afresh. */
static void
fuzz_reader(const char *text, gsize size)
{
	g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func(g_free);
	SmtpReplyReader r;
	gsize start = 0;

	smtp_reply_reader_init(&r, lines);
	while (start < size) {
		const char *line = text + start;
		const char *nl = memchr(line, '\n', size - start);
		gsize len = nl != NULL ? (gsize) (nl - line) : size - start;
		ImtaSmtpReply reply = { 0 };
		guint ext;
		guint64 max_size;

		start += len + 1;
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (!smtp_reply_reader_line(&r, line, len, NULL)) {
			smtp_reply_reader_clear(&r);
			g_ptr_array_set_size(lines, 0);
			smtp_reply_reader_init(&r, lines);
			continue;
		}
		if (!r.done)
			continue;
		smtp_client_parse_ehlo(lines, &ext, &max_size);
		if (ext > 0x1ff || (max_size != 0 && !(ext & IMTA_SMTP_EXT_SIZE)))
			abort();
		smtp_reply_reader_finish(&r, &reply);
		fuzz_check_reply(&reply);
		imta_smtp_reply_clear(&reply);
		g_ptr_array_set_size(lines, 0);
		smtp_reply_reader_init(&r, lines);
	}
	smtp_reply_reader_clear(&r);
}

static ImtaMessage *
fuzz_message(void)
{
	static const char content[] = "Subject: fuzz\n\n.line\nmore\n";
	ImtaMessage *msg = imta_message_new("fuzz", "a@x");

	imta_message_set_envid(msg, "env id");
	imta_message_set_ret(msg, IMTA_RET_FULL);
	imta_message_add_recipient(msg, "b@y", "rfc822;b@y", IMTA_NOTIFY_SUCCESS);
	imta_message_add_recipient(msg, "c@y", NULL, IMTA_NOTIFY_NEVER);
	imta_message_add_recipient(msg, "d@y", "x;d@y", 0);
	imta_message_set_content_bytes(msg, g_bytes_new_static(content, sizeof content - 1));
	return msg;
}

static void
fuzz_check_result(const ImtaSmtpSendResult *result)
{
	for (guint i = 0; i < result->n_rcpts; i++) {
		if (result->rcpt[i].code != 0)
			fuzz_check_reply(&result->rcpt[i]);
	}
	if (result->mail.code != 0)
		fuzz_check_reply(&result->mail);
}

/* The whole input is what the server says before it hangs up. */
static void
fuzz_session(const char *text, gsize size)
{
	static const guint rcpts[] = { 0, 1, 2 };
	ImtaSmtpClientPeer peer = {
		.host = "mx.fuzz.example", .address = "192.0.2.1", .port = 25,
		.helo_name = "client.example",
		/* a greeting that says LMTP makes an LMTP session */
		.lmtp = g_strstr_len(text, (gssize) MIN(size, 80), "LMTP") != NULL,
		.timeouts = { 50, 50, 50, 50, 50, 50 },
	};
	g_autoptr(ImtaMessage) msg = fuzz_message();
	ImtaSmtpSendResult result = { 0 };
	ImtaSmtpReply reply = { 0 };
	ImtaSmtpClient *c;
	int fds[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
		return;
	/* the client's own writes wait unread in fds[1]: they are small */
	if (size > 0 && write(fds[1], text, size) != (ssize_t) size)
		abort();
	shutdown(fds[1], SHUT_WR);
	c = smtp_client_new_fd(fds[0], &peer, &reply, NULL);
	if (reply.code != 0)
		fuzz_check_reply(&reply);
	if (c != NULL && imta_smtp_client_hello(c, &reply, NULL)) {
		g_autofree char *diagnostic = imta_smtp_client_diagnostic(c, &reply);

		fuzz_check_reply(&reply);
		(void) imta_smtp_client_send(c, msg, rcpts, G_N_ELEMENTS(rcpts), NULL, TRUE, &result,
					     NULL);
		fuzz_check_result(&result);
		imta_smtp_send_result_clear(&result);
		if (imta_smtp_client_reusable(c, 0))
			(void) imta_smtp_client_send(c, msg, rcpts, 1, NULL, FALSE, &result, NULL);
		fuzz_check_result(&result);
		imta_smtp_send_result_clear(&result);
	}
	imta_smtp_reply_clear(&reply);
	imta_smtp_client_quit(c);
	close(fds[1]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *) data;

	fuzz_reader(text, size);
	fuzz_session(text, size);
	return 0;
}
