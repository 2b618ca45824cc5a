/*
 * jc_client.c - the blocking client side of the job controller protocol,
 * used by master jobs and imsimta.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <glib.h>

#include <imta/jc_client.h>
#include <imta/xtext.h>

struct _ImtaJcClient {
	int fd;
	int timeout_ms;
	guint protocol;
	volatile sig_atomic_t *interrupt;
	/* Bytes received but not yet returned as lines. */
	char buf[IMTA_JC_MAX_LINE];
	gsize buf_len;
};

G_DEFINE_QUARK(imta-jc-error-quark, imta_jc_error)

static gboolean
jc_socket_address(const char *run_dir, const char *name, struct sockaddr_un *addr, GError **error)
{
	g_autofree char *path = g_build_filename(run_dir, name, NULL);

	memset(addr, 0, sizeof *addr);
	addr->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof addr->sun_path) {
		g_set_error(error, IMTA_JC_ERROR, IMTA_JC_ERROR_IO,
			    "%s: socket path longer than %zu bytes", path,
			    sizeof addr->sun_path - 1);
		return FALSE;
	}
	memcpy(addr->sun_path, path, strlen(path) + 1);
	return TRUE;
}

static gint64
jc_deadline(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : g_get_monotonic_time() + (gint64)timeout_ms * 1000;
}

/* Wait until fd is ready for `events` or the deadline (-1 = none) passes. */
static gboolean
jc_wait(ImtaJcClient *client, short events, gint64 deadline, GError **error)
{
	for (;;) {
		struct pollfd pfd = { client->fd, events, 0 };
		int wait_ms = -1;
		int n;

		if (deadline >= 0) {
			gint64 left = deadline - g_get_monotonic_time();

			if (left <= 0) {
				g_set_error(error, IMTA_JC_ERROR, IMTA_JC_ERROR_TIMEOUT,
					    "the job controller did not answer within %d ms",
					    client->timeout_ms);
				return FALSE;
			}
			wait_ms = (int)MIN(left / 1000 + 1, G_MAXINT);
		}
		n = poll(&pfd, 1, wait_ms);
		if (n > 0)
			return TRUE;
		if (n < 0 && errno != EINTR) {
			g_set_error(error, IMTA_JC_ERROR, IMTA_JC_ERROR_IO, "poll: %s",
				    g_strerror(errno));
			return FALSE;
		}
		if (n < 0 && client->interrupt != NULL && *client->interrupt) {
			g_set_error_literal(error, IMTA_JC_ERROR, IMTA_JC_ERROR_INTERRUPTED,
					    "interrupted by a signal");
			return FALSE;
		}
	}
}

/* A UNIX stream connect does not complete in the background: a full
 * listen backlog (EAGAIN) is retried until the timeout. */
static gboolean
jc_connect(ImtaJcClient *client, const struct sockaddr_un *addr, GError **error)
{
	gint64 deadline = jc_deadline(client->timeout_ms);

	for (;;) {
		int saved;

		if (connect(client->fd, (const struct sockaddr *)addr, sizeof *addr) == 0)
			return TRUE;
		saved = errno;
		if (saved == EINTR)
			continue;
		if (saved == ENOENT || saved == ECONNREFUSED) {
			g_set_error(error, IMTA_JC_ERROR, IMTA_JC_ERROR_NOT_RUNNING,
				    "the job controller is not running (%s: %s)",
				    addr->sun_path, g_strerror(saved));
			return FALSE;
		}
		if (saved == EINPROGRESS)
			return jc_wait(client, POLLOUT, deadline, error);
		if (saved != EAGAIN) {
			g_set_error(error, IMTA_JC_ERROR, IMTA_JC_ERROR_IO, "connect %s: %s",
				    addr->sun_path, g_strerror(saved));
			return FALSE;
		}
		if (g_get_monotonic_time() >= deadline) {
			g_set_error(error, IMTA_JC_ERROR, IMTA_JC_ERROR_TIMEOUT,
				    "the job controller accepted no connection within %d ms",
				    client->timeout_ms);
			return FALSE;
		}
		g_usleep(10000);
	}
}

ImtaJcClient *
imta_jc_client_connect(const char *run_dir, const char *role, const char *channel,
		       int timeout_ms, GError **error)
{
	g_autoptr(ImtaJcClient) client = g_new0(ImtaJcClient, 1);
	g_autofree char *hello = NULL;
	g_autofree char *reply = NULL;
	g_auto(GStrv) fields = NULL;
	struct sockaddr_un addr;
	guint64 version;

	client->fd = -1;
	client->timeout_ms = timeout_ms > 0 ? timeout_ms : IMTA_JC_DEFAULT_TIMEOUT_MS;
	if (!jc_socket_address(run_dir, IMTA_JC_SOCKET, &addr, error))
		return NULL;
	client->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (client->fd < 0) {
		g_set_error(error, IMTA_JC_ERROR, IMTA_JC_ERROR_IO, "socket: %s",
			    g_strerror(errno));
		return NULL;
	}
	if (!jc_connect(client, &addr, error))
		return NULL;
	hello = channel != NULL ? g_strdup_printf("HELLO %s %s", role, channel)
				: g_strdup_printf("HELLO %s", role);
	reply = imta_jc_client_request(client, hello, error);
	if (reply == NULL)
		return NULL;
	fields = imta_jc_split_fields(reply);
	if (g_strv_length(fields) != 2 || strcmp(fields[0], "OK") != 0 ||
	    !g_ascii_string_to_unsigned(fields[1], 10, 1, G_MAXUINT, &version, NULL)) {
		g_set_error(error, IMTA_JC_ERROR, IMTA_JC_ERROR_PROTOCOL,
			    "unexpected greeting from the job controller: \"%s\"", reply);
		return NULL;
	}
	client->protocol = (guint)version;
	return g_steal_pointer(&client);
}

guint
imta_jc_client_protocol(const ImtaJcClient *client)
{
	return client->protocol;
}

void
imta_jc_client_set_interrupt(ImtaJcClient *client, volatile sig_atomic_t *flag)
{
	client->interrupt = flag;
}

gboolean
imta_jc_client_send(ImtaJcClient *client, const char *line, GError **error)
{
	g_autofree char *data = NULL;
	gint64 deadline = jc_deadline(client->timeout_ms);
	gsize length, done = 0;

	g_return_val_if_fail(strchr(line, '\n') == NULL, FALSE);
	length = strlen(line) + 1;
	if (length > IMTA_JC_MAX_LINE) {
		g_set_error(error, IMTA_JC_ERROR, IMTA_JC_ERROR_PROTOCOL,
			    "request longer than %d bytes", IMTA_JC_MAX_LINE);
		return FALSE;
	}
	data = g_strconcat(line, "\n", NULL);
	while (done < length) {
		ssize_t n = send(client->fd, data + done, length - done, MSG_NOSIGNAL);

		if (n > 0) {
			done += (gsize)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!jc_wait(client, POLLOUT, deadline, error))
				return FALSE;
			continue;
		}
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
			g_set_error_literal(error, IMTA_JC_ERROR, IMTA_JC_ERROR_CLOSED,
					    "the job controller closed the connection");
			return FALSE;
		}
		g_set_error(error, IMTA_JC_ERROR, IMTA_JC_ERROR_IO, "send: %s",
			    n < 0 ? g_strerror(errno) : "nothing written");
		return FALSE;
	}
	return TRUE;
}

/* A complete line in the buffer, taken out of it; NULL if none yet.
 * *bad_r tells whether it held a NUL or CR byte. */
static char *
jc_take_line(ImtaJcClient *client, gboolean *bad_r)
{
	char *nl = memchr(client->buf, '\n', client->buf_len);
	gsize used;
	char *line;

	if (nl == NULL)
		return NULL;
	used = (gsize)(nl - client->buf) + 1;
	*bad_r = memchr(client->buf, '\0', used - 1) != NULL ||
		 memchr(client->buf, '\r', used - 1) != NULL;
	line = g_strndup(client->buf, used - 1);
	memmove(client->buf, client->buf + used, client->buf_len - used);
	client->buf_len -= used;
	return line;
}

char *
imta_jc_client_read_line(ImtaJcClient *client, int timeout_ms, GError **error)
{
	gint64 deadline = jc_deadline(timeout_ms == 0 ? client->timeout_ms : timeout_ms);

	for (;;) {
		gboolean bad = FALSE;
		char *line = jc_take_line(client, &bad);
		ssize_t n;

		if (line != NULL) {
			if (bad) {
				g_free(line);
				g_set_error_literal(error, IMTA_JC_ERROR, IMTA_JC_ERROR_PROTOCOL,
						    "a reply line holds a NUL or CR byte");
				return NULL;
			}
			return line;
		}
		if (client->buf_len == sizeof client->buf) {
			g_set_error(error, IMTA_JC_ERROR, IMTA_JC_ERROR_PROTOCOL,
				    "a reply line is longer than %d bytes", IMTA_JC_MAX_LINE);
			return NULL;
		}
		n = recv(client->fd, client->buf + client->buf_len,
			 sizeof client->buf - client->buf_len, 0);
		if (n > 0) {
			client->buf_len += (gsize)n;
			continue;
		}
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			g_set_error_literal(error, IMTA_JC_ERROR, IMTA_JC_ERROR_CLOSED,
					    client->buf_len > 0
						    ? "the job controller closed the connection "
						      "in the middle of a line"
						    : "the job controller closed the connection");
			return NULL;
		}
		if (errno == EINTR && !(client->interrupt != NULL && *client->interrupt))
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
			if (!jc_wait(client, POLLIN, deadline, error))
				return NULL;
			continue;
		}
		g_set_error(error, IMTA_JC_ERROR, IMTA_JC_ERROR_IO, "recv: %s", g_strerror(errno));
		return NULL;
	}
}

/* "ERR <xtext reason>" as a GError; FALSE when the line is something else. */
static gboolean
jc_reply_is_error(const char *line, GError **error)
{
	g_autofree char *reason = NULL;

	if (strcmp(line, "ERR") != 0 && !g_str_has_prefix(line, "ERR "))
		return FALSE;
	reason = line[3] == ' ' ? imta_xtext_decode(line + 4, -1, NULL, NULL) : NULL;
	g_set_error(error, IMTA_JC_ERROR, IMTA_JC_ERROR_REFUSED, "the job controller refused: %s",
		    reason != NULL ? reason : line[3] == ' ' ? line + 4 : "no reason given");
	return TRUE;
}

char *
imta_jc_client_read_reply(ImtaJcClient *client, GError **error)
{
	char *reply = imta_jc_client_read_line(client, 0, error);

	if (reply != NULL && jc_reply_is_error(reply, error))
		g_clear_pointer(&reply, g_free);
	return reply;
}

char *
imta_jc_client_request(ImtaJcClient *client, const char *line, GError **error)
{
	if (!imta_jc_client_send(client, line, error))
		return NULL;
	return imta_jc_client_read_reply(client, error);
}

GPtrArray *
imta_jc_client_request_list(ImtaJcClient *client, const char *line, guint max_lines,
			    GError **error)
{
	g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func(g_free);

	if (!imta_jc_client_send(client, line, error))
		return NULL;
	for (;;) {
		char *reply = imta_jc_client_read_line(client, 0, error);

		if (reply == NULL)
			return NULL;
		if (strcmp(reply, ".") == 0) {
			g_free(reply);
			return g_steal_pointer(&lines);
		}
		if (lines->len == 0 && jc_reply_is_error(reply, error)) {
			g_free(reply);
			return NULL;
		}
		if (lines->len >= max_lines) {
			g_free(reply);
			g_set_error(error, IMTA_JC_ERROR, IMTA_JC_ERROR_PROTOCOL,
				    "the reply to %s has more than %u lines", line, max_lines);
			return NULL;
		}
		g_ptr_array_add(lines, reply);
	}
}

void
imta_jc_client_close(ImtaJcClient *client)
{
	if (client == NULL)
		return;
	if (client->fd >= 0)
		close(client->fd);
	g_free(client);
}

GStrv
imta_jc_split_fields(const char *line)
{
	return g_strsplit(line, " ", -1);
}
