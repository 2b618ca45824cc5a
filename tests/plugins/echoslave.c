/*
 * echoslave.c - a line echo server on the slave API, the workload of the
 * worker's and the dispatcher's tests.  Keyword `echoslave [SECONDS]`
 * (input timeout, default 30; 0 = none).
 *
 *   greeting   220 echo <service> <channel> <remote-ip> <local-port>
 *   QUIT       221 bye, then close
 *   STARTTLS   220 go, then TLS (454 when unavailable)
 *   TLS        250 <the TLS description, or "none">
 *   SLEEP <ms> sleeps on the blocking pool (ms <= 60000), then 250 slept
 *   BIG <n>    n bytes of 'x' then CRLF (n <= 64 MiB)
 *   other      250 <line>
 *
 * A line over 1000 bytes gets "500 too long"; an idle client gets
 * "421 timeout" and is closed; once the worker retires, the next line gets
 * "421 draining" and the session ends.
 */
#include "config.h"

#include <string.h>
#include <imta/imta.h>

#define ECHO_LINE_MAX 1000
#define ECHO_DEFAULT_TIMEOUT 30
#define ECHO_MAX_TIMEOUT 86400
#define ECHO_MAX_SLEEP_MS 60000
#define ECHO_MAX_BIG (64 * 1024 * 1024)

static const ImtaPluginKeyword echo_keywords[] = {
	{ "echoslave", 0, 1, "line echo server for tests; argument: input timeout in seconds" },
	{ NULL }
};

typedef struct {
	gboolean draining;
} EchoSession;

/* The keyword's argument as written, with its position. */
static const ImtaKeywordUse *
echo_keyword(const ImtaChannel *channel)
{
	const ImtaKeywordUse *found = NULL;

	for (guint i = 0; i < channel->keywords->len; i++) {
		const ImtaKeywordUse *use = channel->keywords->pdata[i];

		if (strcmp(use->name, "echoslave") == 0)
			found = use;
	}
	return found;
}

static gboolean
echo_parse_timeout(const ImtaChannel *channel, guint *seconds_r, GError **error)
{
	const ImtaKeywordUse *use = echo_keyword(channel);
	guint64 value;

	*seconds_r = ECHO_DEFAULT_TIMEOUT;
	if (use == NULL || use->args[0] == NULL)
		return TRUE;
	if (!g_ascii_string_to_unsigned(use->args[0], 10, 0, ECHO_MAX_TIMEOUT, &value, NULL)) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_RANGE, &use->arg_pos[0],
				  "echoslave: expected a timeout in seconds between 0 and %d, "
				  "got \"%s\"", ECHO_MAX_TIMEOUT, use->args[0]);
		return FALSE;
	}
	*seconds_r = (guint)value;
	return TRUE;
}

static gboolean
echo_validate_channel(const ImtaChannel *channel, GError **error)
{
	guint seconds;

	return echo_parse_timeout(channel, &seconds, error);
}

static gboolean
echo_is(const char *line, gsize len, const char *word)
{
	gsize n = strlen(word);

	return len == n && g_ascii_strncasecmp(line, word, n) == 0;
}

static gboolean
echo_has_arg(const char *line, gsize len, const char *word, guint64 max, guint64 *value_r)
{
	gsize n = strlen(word);
	g_autofree char *arg = NULL;

	if (len <= n + 1 || g_ascii_strncasecmp(line, word, n) != 0 || line[n] != ' ')
		return FALSE;
	arg = g_strndup(line + n + 1, len - n - 1);
	return g_ascii_string_to_unsigned(arg, 10, 0, max, value_r, NULL);
}

static void
echo_sleep_work(gpointer data)
{
	g_usleep((gulong)GPOINTER_TO_UINT(data) * 1000);
}

static void
echo_sleep_done(ImtaConn *conn, gpointer session, gpointer data)
{
	imta_conn_printf(conn, "250 slept\r\n");
}

static void
echo_big(ImtaConn *conn, gsize n)
{
	static const char xs[] =
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

	while (n > 0) {
		gsize piece = MIN(n, sizeof(xs) - 1);

		imta_conn_write(conn, xs, piece);
		n -= piece;
	}
	imta_conn_write(conn, "\r\n", 2);
}

/* One line; FALSE when the session stops taking lines for now. */
static gboolean
echo_line(ImtaConn *conn, EchoSession *session, const char *line, gsize len)
{
	guint64 value;

	if (session->draining || imta_conn_draining(conn)) {
		imta_conn_printf(conn, "421 draining\r\n");
		imta_conn_close(conn);
		return FALSE;
	}
	if (echo_is(line, len, "QUIT")) {
		imta_conn_printf(conn, "221 bye\r\n");
		imta_conn_close(conn);
		return FALSE;
	}
	if (echo_is(line, len, "STARTTLS")) {
		if (!imta_conn_tls_available(conn) || imta_conn_tls_active(conn)) {
			imta_conn_printf(conn, "454 TLS not available\r\n");
			return TRUE;
		}
		imta_conn_printf(conn, "220 go\r\n");
		return !imta_conn_start_tls(conn);
	}
	if (echo_is(line, len, "TLS")) {
		const char *description = imta_conn_tls_description(conn);

		imta_conn_printf(conn, "250 %s\r\n", description != NULL ? description : "none");
		return TRUE;
	}
	if (echo_has_arg(line, len, "SLEEP", ECHO_MAX_SLEEP_MS, &value)) {
		imta_conn_run(conn, echo_sleep_work, echo_sleep_done, GUINT_TO_POINTER((guint)value));
		return FALSE;
	}
	if (echo_has_arg(line, len, "BIG", ECHO_MAX_BIG, &value)) {
		echo_big(conn, (gsize)value);
		return TRUE;
	}
	imta_conn_write(conn, "250 ", 4);
	imta_conn_write(conn, line, len);
	imta_conn_write(conn, "\r\n", 2);
	return TRUE;
}

static gpointer
echo_open(ImtaConn *conn)
{
	EchoSession *session = g_new0(EchoSession, 1);
	guint seconds;

	if (!echo_parse_timeout(imta_conn_channel(conn), &seconds, NULL))
		seconds = ECHO_DEFAULT_TIMEOUT;
	imta_conn_set_timeout(conn, seconds);
	imta_conn_printf(conn, "220 echo %s %s %s %u\r\n", imta_conn_service(conn),
			 imta_conn_channel(conn)->name, imta_conn_remote_ip(conn),
			 (guint)imta_conn_local_port(conn));
	return session;
}

static void
echo_input(ImtaConn *conn, gpointer data)
{
	EchoSession *session = data;

	/* Output beyond the high mark pauses input; the worker calls again
	 * once it has drained. */
	while (imta_conn_output_pending(conn) <= IMTA_CONN_OUTPUT_HIGH) {
		const char *line;
		gsize len;

		switch (imta_conn_read_line(conn, ECHO_LINE_MAX, &line, &len)) {
		case IMTA_CONN_NEED_MORE:
			return;
		case IMTA_CONN_EOF:
			imta_conn_close(conn);
			return;
		case IMTA_CONN_TOO_LONG:
			imta_conn_printf(conn, "500 too long\r\n");
			break;
		case IMTA_CONN_LINE:
			if (!echo_line(conn, session, line, len))
				return;
			break;
		}
	}
}

static void
echo_timeout(ImtaConn *conn, gpointer session)
{
	imta_conn_printf(conn, "421 timeout\r\n");
	imta_conn_close(conn);
}

static void
echo_drain(ImtaConn *conn, gpointer data)
{
	EchoSession *session = data;

	session->draining = TRUE;
}

static void
echo_close(ImtaConn *conn, gpointer session)
{
	g_free(session);
}

static const ImtaSlaveOps echo_slave_ops = {
	.open = echo_open,
	.input = echo_input,
	.timeout = echo_timeout,
	.drain = echo_drain,
	.close = echo_close,
};

IMTA_PLUGIN_DEFINE(.name = "echoslave", .version = "1",
		   .description = "line echo server for the worker and dispatcher tests",
		   .keywords = echo_keywords,
		   .validate_channel = echo_validate_channel,
		   .slave = &echo_slave_ops);
