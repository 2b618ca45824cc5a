/*
 * conn.c - one client connection of the worker: the socket, its buffers,
 * timeouts and TLS, and every connection function of <imta/slave.h>.
 *
 * All of it runs on the connection's loop thread.  Each event ends in
 * conn_process(), which calls the plugin while it has something to do,
 * sends what it wrote, ends the connection when it is over, and then
 * tells the loop what the socket should wait for and when the next
 * deadline falls.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <glib.h>
#include <glib-unix.h>
#include <glib/gprintf.h>

#include <imta/log.h>
#include <imta/slave.h>
#include "conn_private.h"

/* Plugin calls per event before other connections get their turn. */
#define CONN_MAX_ROUNDS 16
/* Largest piece handed to one send() or TLS record. */
#define CONN_SEND_CHUNK (16 * 1024)
/* Smallest buffer allocated for leftover input or pending output. */
#define CONN_BUFFER_MIN 256

static void conn_process(ImtaConn *conn);

/* ---- small helpers ------------------------------------------------------ */

static gint64
conn_now(void)
{
	return g_get_monotonic_time();
}

static guint32
conn_round_up(gsize need)
{
	gsize cap = CONN_BUFFER_MIN;

	while (cap < need)
		cap *= 2;
	return (guint32)cap;
}

gboolean
worker_conn_parse_ip(const char *text, char out[INET6_ADDRSTRLEN])
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, text, &a4) == 1)
		return inet_ntop(AF_INET, &a4, out, INET6_ADDRSTRLEN) != NULL;
	if (inet_pton(AF_INET6, text, &a6) != 1)
		return FALSE;
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		memcpy(&a4, &a6.s6_addr[12], sizeof(a4));
		return inet_ntop(AF_INET, &a4, out, INET6_ADDRSTRLEN) != NULL;
	}
	return inet_ntop(AF_INET6, &a6, out, INET6_ADDRSTRLEN) != NULL;
}

static guint
conn_output_timeout(const ImtaConn *conn)
{
	return conn->timeout > 0 ? conn->timeout : WORKER_OUTPUT_TIMEOUT_DEFAULT;
}

/* Input the plugin may be given now (not paused in any way). */
static gboolean
conn_input_open(const ImtaConn *conn)
{
	return !conn->paused && conn->run_pending == 0 && !conn->closing && !conn->dead &&
	       conn->out_len <= IMTA_CONN_OUTPUT_HIGH &&
	       (conn->tls_state == CONN_TLS_NONE || conn->tls_state == CONN_TLS_ACTIVE);
}

/* The connection waits for the client: the input timeout runs. */
static gboolean
conn_awaits_input(const ImtaConn *conn)
{
	return conn_input_open(conn) && !conn->eof;
}

/* The socket should be read now. */
static gboolean
conn_wants_read(const ImtaConn *conn)
{
	return conn_awaits_input(conn) && conn->in_len < IMTA_CONN_INPUT_MAX;
}

/* ---- the socket ---------------------------------------------------------- */

/* Stop polling and close the socket; the session may live on until its
 * pending work is done. */
static void
conn_close_socket(ImtaConn *conn, gboolean clean)
{
	if (conn->fd_tag != NULL) {
		g_source_remove_unix_fd(&conn->source, conn->fd_tag);
		conn->fd_tag = NULL;
	}
	if (conn->fd < 0)
		return;
	if (clean) {
		char *scratch = conn->loop != NULL ? worker_loop_scratch(conn->loop) : NULL;

		if (conn->tls != NULL && conn->tls_state == CONN_TLS_ACTIVE)
			worker_tls_bye(conn->tls);
		shutdown(conn->fd, SHUT_WR);
		/* Unread bytes would make the close a reset, which can destroy
		 * the last reply before the client reads it. */
		for (int i = 0; scratch != NULL && i < 4; i++)
			if (recv(conn->fd, scratch, IMTA_CONN_INPUT_MAX, MSG_DONTWAIT) <= 0)
				break;
	}
	close(conn->fd);
	conn->fd = -1;
}

/* The connection cannot go on (I/O or TLS error, timeout, shutdown). */
static void
conn_fail(ImtaConn *conn, ImtaLogLevel level, const char *reason)
{
	if (conn->dead)
		return;
	if (reason != NULL)
		imta_conn_log(conn, level, "%s", reason);
	conn->dead = TRUE;
	conn->closing = TRUE;
	conn->want_write = FALSE;
	conn->out_len = conn->out_off = conn->out_clear = 0;
	g_clear_pointer(&conn->out, g_free);
	conn->out_cap = 0;
	conn_close_socket(conn, FALSE);
}

static void
conn_fail_errno(ImtaConn *conn, const char *what, int errnum)
{
	g_autofree char *text = g_strdup_printf("%s: %s", what, g_strerror(errnum));

	/* A client that resets is ordinary; anything else is worth a look. */
	conn_fail(conn, errnum == ECONNRESET || errnum == EPIPE ? IMTA_LOG_INFO : IMTA_LOG_NOTICE,
		  text);
}

/* ---- input buffer -------------------------------------------------------- */

static void
conn_input_clear(ImtaConn *conn)
{
	if (!conn->in_borrowed)
		g_free(conn->in);
	conn->in = NULL;
	conn->in_borrowed = FALSE;
	conn->in_off = conn->in_len = conn->in_cap = 0;
}

/* After the plugin's turn: an empty buffer is given back, leftovers in
 * the loop's scratch move to memory of the connection's own. */
static void
conn_input_settle(ImtaConn *conn)
{
	if (conn->in_len == 0) {
		conn_input_clear(conn);
		return;
	}
	if (conn->in_borrowed) {
		guint32 cap = conn_round_up(conn->in_len);
		char *own = g_malloc(cap);

		memcpy(own, conn->in + conn->in_off, conn->in_len);
		conn->in = own;
		conn->in_cap = cap;
		conn->in_off = 0;
		conn->in_borrowed = FALSE;
		return;
	}
	if (conn->in_off > 0) {
		memmove(conn->in, conn->in + conn->in_off, conn->in_len);
		conn->in_off = 0;
	}
	if (conn->in_cap > 4 * CONN_BUFFER_MIN && conn->in_len * 4 < conn->in_cap) {
		conn->in_cap = conn_round_up(conn->in_len);
		conn->in = g_realloc(conn->in, conn->in_cap);
	}
}

/* Append n bytes read into the scratch buffer at `data`. */
static void
conn_input_append(ImtaConn *conn, const char *data, gsize n)
{
	gsize need;

	if (conn->in_len == 0 || conn->in_borrowed) {
		/* The bytes were read in place, right after what is there. */
		if (conn->in_len == 0) {
			conn_input_clear(conn);
			conn->in = (char *)data;
			conn->in_borrowed = TRUE;
		}
		conn->in_len += (guint32)n;
		return;
	}
	need = (gsize)conn->in_len + n;
	if (conn->in_off > 0) {
		memmove(conn->in, conn->in + conn->in_off, conn->in_len);
		conn->in_off = 0;
	}
	if (need > conn->in_cap) {
		conn->in_cap = conn_round_up(need);
		conn->in = g_realloc(conn->in, conn->in_cap);
	}
	memcpy(conn->in + conn->in_len, data, n);
	conn->in_len = (guint32)need;
}

/* Where the next read goes, and how much it may take. */
static char *
conn_read_target(ImtaConn *conn, gsize *space_r)
{
	char *scratch = worker_loop_scratch(conn->loop);

	if (conn->in_len == 0) {
		*space_r = IMTA_CONN_INPUT_MAX;
		return scratch;
	}
	if (conn->in_borrowed) {
		gsize used = (gsize)conn->in_off + conn->in_len;

		*space_r = IMTA_CONN_INPUT_MAX - used;
		return scratch + used;
	}
	*space_r = IMTA_CONN_INPUT_MAX - conn->in_len;
	return scratch;
}

/* Read what the socket has, once (plain) or until the session holds no
 * more decrypted bytes (TLS), within the input bound. */
static void
conn_read(ImtaConn *conn)
{
	for (int i = 0; i < 8 && conn_wants_read(conn); i++) {
		gsize space;
		char *target = conn_read_target(conn, &space);
		gssize n;

		if (space == 0)
			return;
		if (conn->tls_state == CONN_TLS_ACTIVE) {
			WorkerTlsStatus status = WORKER_TLS_OK;
			g_autofree char *error = NULL;

			n = worker_tls_recv(conn->tls, target, space, &status, &error);
			if (n < 0) {
				if (status == WORKER_TLS_ERROR) {
					g_autofree char *text = g_strdup_printf("TLS: %s", error);

					conn_fail(conn, IMTA_LOG_NOTICE, text);
				}
				return;
			}
		} else {
			do
				n = recv(conn->fd, target, space, 0);
			while (n < 0 && errno == EINTR);
			if (n < 0) {
				if (errno != EAGAIN && errno != EWOULDBLOCK)
					conn_fail_errno(conn, "read", errno);
				return;
			}
		}
		if (n == 0) {
			conn->eof = TRUE;
			conn->notify = TRUE;
			return;
		}
		conn_input_append(conn, target, (gsize)n);
		conn->notify = TRUE;
		conn->input_deadline = 0;   /* restarted from now */
		if (conn->tls_state != CONN_TLS_ACTIVE || !worker_tls_pending(conn->tls))
			return;
	}
}

/* ---- output ---------------------------------------------------------- */

static void
conn_output_consume(ImtaConn *conn, gsize n)
{
	conn->out_off += (guint32)n;
	conn->out_len -= (guint32)n;
	if (conn->out_len == 0) {
		g_clear_pointer(&conn->out, g_free);
		conn->out_off = conn->out_cap = 0;
	}
}

/* Send one piece; FALSE when the socket takes no more now (or failed). */
static gboolean
conn_send_some(ImtaConn *conn, gsize limit)
{
	const char *data = conn->out + conn->out_off;
	gsize len = MIN(limit, CONN_SEND_CHUNK);
	gssize n;

	if (conn->tls_state == CONN_TLS_ACTIVE) {
		WorkerTlsStatus status = WORKER_TLS_OK;
		g_autofree char *error = NULL;

		n = worker_tls_send(conn->tls, data, len, &status, &error);
		if (n < 0) {
			if (status == WORKER_TLS_ERROR) {
				g_autofree char *text = g_strdup_printf("TLS: %s", error);

				conn_fail(conn, IMTA_LOG_NOTICE, text);
			} else {
				conn->want_write = TRUE;
			}
			return FALSE;
		}
	} else {
		do
			n = send(conn->fd, data, len, MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				conn->want_write = TRUE;
			else
				conn_fail_errno(conn, "write", errno);
			return FALSE;
		}
	}
	if (conn->tls_state == CONN_TLS_PENDING)
		conn->out_clear -= (guint32)n;
	conn_output_consume(conn, (gsize)n);
	conn->output_deadline = 0;  /* progress: the output timeout starts over */
	return TRUE;
}

/* Send as much of the output as the socket takes. */
static void
conn_flush(ImtaConn *conn)
{
	gboolean was_high = conn->out_len > IMTA_CONN_OUTPUT_HIGH;

	conn->want_write = FALSE;
	while (conn->out_len > 0 && !conn->dead) {
		gsize limit = conn->out_len;

		if (conn->tls_state == CONN_TLS_HANDSHAKE)
			return;
		if (conn->tls_state == CONN_TLS_PENDING)
			limit = MIN(limit, conn->out_clear);
		if (limit == 0 || !conn_send_some(conn, limit))
			break;
	}
	if (conn->want_write && conn->output_deadline == 0)
		conn->output_deadline = conn_now() + (gint64)conn_output_timeout(conn) * G_USEC_PER_SEC;
	if (!conn->want_write)
		conn->output_deadline = 0;
	/* Input paused for the output's sake is open again. */
	if (was_high && conn->out_len <= IMTA_CONN_OUTPUT_HIGH && (conn->in_len > 0 || conn->eof))
		conn->notify = TRUE;
}

/* ---- TLS --------------------------------------------------------------- */

static void
conn_tls_step(ImtaConn *conn)
{
	g_autofree char *error = NULL;
	WorkerTlsStatus status = worker_tls_handshake(conn->tls, &error);

	switch (status) {
	case WORKER_TLS_OK:
		conn->tls_state = CONN_TLS_ACTIVE;
		conn->handshake_deadline = 0;
		conn->handshake_write = FALSE;
		conn->tls_description = worker_tls_describe(conn->tls);
		imta_conn_log(conn, IMTA_LOG_INFO, "TLS established: %s", conn->tls_description);
		/* Decrypted bytes may already wait inside the session. */
		if (worker_tls_pending(conn->tls))
			conn->again = TRUE;
		break;
	case WORKER_TLS_WANT_READ:
	case WORKER_TLS_WANT_WRITE:
		conn->handshake_write = status == WORKER_TLS_WANT_WRITE;
		break;
	case WORKER_TLS_ERROR: {
		g_autofree char *text = g_strdup_printf("TLS handshake failed: %s", error);

		conn_fail(conn, IMTA_LOG_NOTICE, text);
		break;
	}
	}
}

/* The clear output before STARTTLS's handshake has gone: start it. */
static void
conn_tls_begin(ImtaConn *conn)
{
	g_autoptr(GError) error = NULL;
	guint secs = conn->timeout > 0 ? conn->timeout : WORKER_TLS_HANDSHAKE_TIMEOUT;

	conn->tls = worker_tls_session_new(conn->worker->tls, conn->fd, &error);
	if (conn->tls == NULL) {
		conn_fail(conn, IMTA_LOG_ERROR, error->message);
		return;
	}
	conn->tls_state = CONN_TLS_HANDSHAKE;
	conn->handshake_deadline = conn_now() + (gint64)secs * G_USEC_PER_SEC;
	conn_tls_step(conn);
}

/* ---- the end ------------------------------------------------------------ */

static void
conn_finish(ImtaConn *conn)
{
	WorkerLoop *loop = conn->loop;

	conn->finished = TRUE;
	if (conn->opened && conn->worker->ops->close != NULL)
		conn->worker->ops->close(conn, conn->session);
	conn->session = NULL;
	conn_close_socket(conn, !conn->dead);
	g_clear_pointer(&conn->tls, worker_tls_session_free);
	g_clear_pointer(&conn->tls_description, g_free);
	conn_input_clear(conn);
	g_clear_pointer(&conn->out, g_free);
	conn->out_len = conn->out_off = conn->out_cap = 0;
	imta_conn_log(conn, IMTA_LOG_DEBUG, "closed");
	worker_loop_conn_ended(loop, conn);
	g_source_destroy(&conn->source);
	g_source_unref(&conn->source);
}

/* ---- the event cycle ------------------------------------------------------ */

static gboolean
conn_input_due(const ImtaConn *conn)
{
	return conn->notify && conn_input_open(conn) && (conn->in_len > 0 || conn->eof);
}

static void
conn_call_input(ImtaConn *conn)
{
	conn->notify = FALSE;
	conn->worker->ops->input(conn, conn->session);
	/* A plugin that saw the end of input and neither closed nor waits for
	 * anything would never hear of this connection again. */
	if (conn->eof && !conn->closing && conn_input_open(conn) && !conn->notify) {
		imta_conn_log(conn, IMTA_LOG_DEBUG, "client closed; closing");
		conn->closing = TRUE;
	}
}

static void
conn_update_events(ImtaConn *conn)
{
	GIOCondition events = 0;

	if (conn->fd_tag == NULL)
		return;
	if (conn->tls_state == CONN_TLS_HANDSHAKE)
		events = conn->handshake_write ? G_IO_OUT : G_IO_IN;
	else {
		if (conn->want_write)
			events |= G_IO_OUT;
		if (conn_wants_read(conn))
			events |= G_IO_IN;
	}
	/* Each change wakes the context up: make only real ones. */
	if (events != conn->poll_events) {
		conn->poll_events = events;
		g_source_modify_unix_fd(&conn->source, conn->fd_tag, events);
	}
}

static void
conn_update_deadline(ImtaConn *conn)
{
	gint64 now = conn_now(), next = -1, current;

	if (conn->timeout > 0 && conn_awaits_input(conn)) {
		if (conn->input_deadline == 0)
			conn->input_deadline = now + (gint64)conn->timeout * G_USEC_PER_SEC;
	} else {
		conn->input_deadline = 0;
	}
	if (conn->again) {
		conn->again = FALSE;
		g_source_set_ready_time(&conn->source, 0);
		return;
	}
	if (conn->input_deadline > 0)
		next = conn->input_deadline;
	if (conn->output_deadline > 0 && (next < 0 || conn->output_deadline < next))
		next = conn->output_deadline;
	if (conn->handshake_deadline > 0 && (next < 0 || conn->handshake_deadline < next))
		next = conn->handshake_deadline;
	/* A deadline that only moved later is found when the earlier wake-up
	 * fires, which spares a call (and a context lock) on every read. */
	current = g_source_get_ready_time(&conn->source);
	if (current > now && (next < 0 || current <= next))
		return;
	g_source_set_ready_time(&conn->source, next);
}

/* Call a finished job's done; the caller processes the connection. */
static void
conn_job_finish(ImtaConn *conn, WorkerJob *job)
{
	conn->run_pending--;
	if (job->done != NULL)
		job->done(conn, conn->session, job->data);
	g_free(job);
	if (conn->run_pending == 0 && (conn->in_len > 0 || conn->eof))
		conn->notify = TRUE;
}

/* The dones owed for work that ran inline; TRUE when there were any.
 * Dropping a job's reference cannot free the connection: its own
 * reference goes only in conn_finish, which waits for run_pending 0. */
static gboolean
conn_finish_inline(ImtaConn *conn)
{
	WorkerJob *job;
	gboolean any = FALSE;

	while ((job = conn->ran_inline) != NULL) {
		conn->ran_inline = job->next;
		conn_job_finish(conn, job);
		g_source_unref(&conn->source);
		any = TRUE;
	}
	return any;
}

static void
conn_process(ImtaConn *conn)
{
	for (int round = 0; round < CONN_MAX_ROUNDS; round++) {
		gboolean called = FALSE;

		if (conn->finished)
			return;
		if (conn->tls_state == CONN_TLS_PENDING && conn->out_clear == 0 && !conn->dead &&
		    !conn->closing)
			conn_tls_begin(conn);
		if (conn_finish_inline(conn))
			called = TRUE;
		if (conn_input_due(conn)) {
			conn_call_input(conn);
			called = TRUE;
		}
		if (conn->out_len > 0 && !conn->dead)
			conn_flush(conn);
		if (conn->closing && conn->run_pending == 0 &&
		    (conn->out_len == 0 || conn->dead ||
		     (conn->tls_state == CONN_TLS_PENDING && conn->out_clear == 0))) {
			conn_finish(conn);
			return;
		}
		if (!called && !(conn->tls_state == CONN_TLS_PENDING && conn->out_clear == 0))
			break;
		if (round == CONN_MAX_ROUNDS - 1)
			conn->again = TRUE;
	}
	conn_input_settle(conn);
	conn_update_events(conn);
	conn_update_deadline(conn);
}

static void
conn_check_deadlines(ImtaConn *conn, gint64 now)
{
	const ImtaSlaveOps *ops = conn->worker->ops;

	if (conn->handshake_deadline > 0 && now >= conn->handshake_deadline) {
		conn_fail(conn, IMTA_LOG_NOTICE, "TLS handshake timed out");
		return;
	}
	if (conn->output_deadline > 0 && now >= conn->output_deadline) {
		conn_fail(conn, IMTA_LOG_NOTICE, "output timeout: the client reads nothing");
		return;
	}
	if (conn->input_deadline > 0 && now >= conn->input_deadline && conn_awaits_input(conn)) {
		conn->input_deadline = 0;
		if (ops->timeout != NULL)
			ops->timeout(conn, conn->session);
		else
			imta_conn_close(conn);
	}
}

/* Poll reported an error or hang-up that a read or write did not explain. */
static void
conn_socket_trouble(ImtaConn *conn, GIOCondition revents)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (conn->dead || conn->fd < 0)
		return;
	if ((revents & G_IO_ERR) && getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
	    err != 0) {
		conn_fail_errno(conn, "socket", err);
		return;
	}
	if (revents & G_IO_NVAL) {
		conn_fail(conn, IMTA_LOG_ERROR, "socket: invalid descriptor");
		return;
	}
	conn_fail(conn, IMTA_LOG_INFO, "the client disconnected");
}

static gboolean
conn_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
	ImtaConn *conn = (ImtaConn *)source;
	GIOCondition revents = 0;
	gint64 now;

	if (conn->finished)
		return G_SOURCE_REMOVE;
	if (conn->fd_tag != NULL)
		revents = g_source_query_unix_fd(source, conn->fd_tag);
	if (conn->tls_state == CONN_TLS_HANDSHAKE) {
		if (revents & (G_IO_IN | G_IO_OUT | G_IO_HUP | G_IO_ERR))
			conn_tls_step(conn);
	} else {
		if ((revents & (G_IO_OUT | G_IO_ERR | G_IO_HUP)) && conn->out_len > 0)
			conn_flush(conn);
		if ((revents & (G_IO_IN | G_IO_HUP | G_IO_ERR)) ||
		    (conn->tls_state == CONN_TLS_ACTIVE && worker_tls_pending(conn->tls)))
			conn_read(conn);
	}
	/* Hang-up or error with nothing to read or write: the socket would
	 * keep polling ready, so the connection is over. */
	if ((revents & (G_IO_HUP | G_IO_ERR | G_IO_NVAL)) && !conn->dead && !conn->eof &&
	    !conn_wants_read(conn) && conn->tls_state != CONN_TLS_HANDSHAKE)
		conn_socket_trouble(conn, revents);
	if ((revents & (G_IO_HUP | G_IO_ERR)) && conn->eof && !conn->dead && conn->fd_tag != NULL &&
	    !conn->want_write) {
		/* Nothing more will come; stop polling a socket that stays ready. */
		g_source_remove_unix_fd(source, conn->fd_tag);
		conn->fd_tag = NULL;
	}
	now = g_source_get_time(source);
	if (!conn->dead)
		conn_check_deadlines(conn, now);
	conn_process(conn);
	return conn->finished ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

static void
conn_source_finalize(GSource *source)
{
	ImtaConn *conn = (ImtaConn *)source;

	if (conn->fd >= 0)
		close(conn->fd);
	conn->fd = -1;
	g_clear_pointer(&conn->tls, worker_tls_session_free);
	g_clear_pointer(&conn->tls_description, g_free);
	conn_input_clear(conn);
	g_clear_pointer(&conn->out, g_free);
}

static GSourceFuncs conn_source_funcs = {
	.dispatch = conn_dispatch,
	.finalize = conn_source_finalize,
};

/* ---- the worker's side ---------------------------------------------------- */

ImtaConn *
worker_conn_new(const WorkerContext *worker, guint64 id, int fd, const char *local_ip,
		guint16 local_port, const char *remote_ip, guint16 remote_port)
{
	char local[INET6_ADDRSTRLEN], remote[INET6_ADDRSTRLEN];
	ImtaConn *conn;
	int one = 1;

	if (!worker_conn_parse_ip(local_ip, local) || !worker_conn_parse_ip(remote_ip, remote))
		return NULL;
	/* Replies are gathered per callback already; Nagle would only add
	 * a delayed-ACK wait to each of them. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	conn = (ImtaConn *)g_source_new(&conn_source_funcs, sizeof(ImtaConn));
	/* Stays in the poll set while dispatched: imta/fd_watch.h says why. */
	g_source_set_can_recurse(&conn->source, TRUE);
	conn->worker = worker;
	conn->id = id;
	conn->fd = fd;
	conn->local_port = local_port;
	conn->remote_port = remote_port;
	memcpy(conn->local_ip, local, sizeof(local));
	memcpy(conn->remote_ip, remote, sizeof(remote));
	conn->fd_tag = g_source_add_unix_fd(&conn->source, fd, 0);
	return conn;
}

void
worker_conn_start(ImtaConn *conn, WorkerLoop *loop)
{
	conn->loop = loop;
	g_source_attach(&conn->source, worker_loop_context(loop));
	imta_conn_log(conn, IMTA_LOG_DEBUG, "connection to %s port %u from port %u",
		      conn->local_ip, conn->local_port, conn->remote_port);
	conn->opened = TRUE;
	conn->session = conn->worker->ops->open(conn);
	if (worker_loop_draining(loop) && !conn->closing)
		worker_conn_drain(conn);
	else
		conn_process(conn);
}

void
worker_conn_drain(ImtaConn *conn)
{
	if (conn->finished)
		return;
	if (!conn->drained && !conn->closing && conn->worker->ops->drain != NULL) {
		conn->drained = TRUE;
		conn->worker->ops->drain(conn, conn->session);
	}
	conn_process(conn);
}

void
worker_conn_abort(ImtaConn *conn, const char *reason)
{
	if (conn->finished)
		return;
	conn_fail(conn, IMTA_LOG_NOTICE, reason);
	conn_process(conn);
}

void
worker_conn_pool_run(gpointer data, gpointer user_data)
{
	WorkerJob *job = data;

	job->work(job->data);
	worker_loop_post_done(job->conn->loop, job);
}

void
worker_conn_job_done(WorkerJob *job)
{
	ImtaConn *conn = job->conn;

	conn_job_finish(conn, job);
	conn_process(conn);
	g_source_unref(&conn->source);
}

/* ---- slave.h: who and where -------------------------------------------- */

const ImtaConfig *
imta_conn_config(const ImtaConn *conn)
{
	return conn->worker->config;
}

const ImtaChannel *
imta_conn_channel(const ImtaConn *conn)
{
	return conn->worker->channel;
}

const char *
imta_conn_service(const ImtaConn *conn)
{
	return conn->worker->service;
}

ImtaQueue *
imta_conn_queue(const ImtaConn *conn)
{
	return conn->worker->queue;
}

const char *
imta_conn_remote_ip(const ImtaConn *conn)
{
	return conn->remote_ip;
}

guint16
imta_conn_remote_port(const ImtaConn *conn)
{
	return conn->remote_port;
}

const char *
imta_conn_local_ip(const ImtaConn *conn)
{
	return conn->local_ip;
}

guint16
imta_conn_local_port(const ImtaConn *conn)
{
	return conn->local_port;
}

guint64
imta_conn_id(const ImtaConn *conn)
{
	return conn->id;
}

gboolean
imta_conn_draining(const ImtaConn *conn)
{
	return g_atomic_int_get(&conn->worker->draining) != 0;
}

/* ---- slave.h: input ------------------------------------------------------ */

ImtaConnLineStatus
imta_conn_read_line(ImtaConn *conn, gsize max, const char **line, gsize *len)
{
	const char *data = conn->in_len > 0 ? conn->in + conn->in_off : NULL;
	const char *lf = data != NULL ? memchr(data, '\n', conn->in_len) : NULL;
	gsize line_len;

	*line = NULL;
	*len = 0;
	if (lf == NULL) {
		/* No line end yet.  One byte more than max may still be the CR
		 * of a line of exactly max bytes; beyond that, or with a full
		 * buffer, the line cannot fit: drop it as it comes. */
		if (conn->in_len > 0 &&
		    (conn->in_len - 1 > max || conn->in_len >= IMTA_CONN_INPUT_MAX)) {
			conn->discarding = TRUE;
			imta_conn_consume(conn, conn->in_len);
		}
		return conn->eof ? IMTA_CONN_EOF : IMTA_CONN_NEED_MORE;
	}
	line_len = (gsize)(lf - data);
	imta_conn_consume(conn, line_len + 1);
	if (conn->discarding) {
		conn->discarding = FALSE;
		return IMTA_CONN_TOO_LONG;
	}
	if (line_len > 0 && data[line_len - 1] == '\r')
		line_len--;
	if (line_len > max)
		return IMTA_CONN_TOO_LONG;
	*line = data;
	*len = line_len;
	return IMTA_CONN_LINE;
}

const char *
imta_conn_peek(ImtaConn *conn, gsize *len)
{
	*len = conn->in_len;
	return conn->in_len > 0 ? conn->in + conn->in_off : "";
}

void
imta_conn_consume(ImtaConn *conn, gsize n)
{
	g_return_if_fail(n <= conn->in_len);
	conn->in_off += (guint32)n;
	conn->in_len -= (guint32)n;
	if (conn->in_len == 0)
		conn->in_off = 0;
}

gboolean
imta_conn_eof(const ImtaConn *conn)
{
	return conn->eof || conn->dead;
}

void
imta_conn_pause_input(ImtaConn *conn)
{
	conn->paused = TRUE;
}

void
imta_conn_resume_input(ImtaConn *conn)
{
	if (!conn->paused)
		return;
	conn->paused = FALSE;
	if (conn->in_len > 0 || conn->eof)
		conn->notify = TRUE;
}

void
imta_conn_set_timeout(ImtaConn *conn, guint seconds)
{
	conn->timeout = seconds;
	conn->input_deadline = 0;
}

/* ---- slave.h: output ------------------------------------------------------ */

void
imta_conn_write(ImtaConn *conn, const void *data, gsize len)
{
	gsize need;

	if (len == 0 || conn->dead || conn->finished)
		return;
	need = (gsize)conn->out_off + conn->out_len + len;
	if (need > conn->out_cap && conn->out_off > 0) {
		memmove(conn->out, conn->out + conn->out_off, conn->out_len);
		conn->out_off = 0;
		need = (gsize)conn->out_len + len;
	}
	if (need > G_MAXUINT32 / 2)
		g_error("connection %" G_GUINT64_FORMAT ": more than 2 GiB of output buffered",
			conn->id);
	if (need > conn->out_cap) {
		conn->out_cap = conn_round_up(need);
		conn->out = g_realloc(conn->out, conn->out_cap);
	}
	memcpy(conn->out + conn->out_off + conn->out_len, data, len);
	conn->out_len += (guint32)len;
}

void
imta_conn_flush(ImtaConn *conn)
{
	if (conn->out_len > 0 && !conn->dead)
		conn_flush(conn);
}

void
imta_conn_printf(ImtaConn *conn, const char *format, ...)
{
	va_list args;
	g_autofree char *text = NULL;
	int len;

	va_start(args, format);
	len = g_vasprintf(&text, format, args);
	va_end(args);
	if (len > 0)
		imta_conn_write(conn, text, (gsize)len);
}

gsize
imta_conn_output_pending(const ImtaConn *conn)
{
	return conn->out_len;
}

void
imta_conn_close(ImtaConn *conn)
{
	conn->closing = TRUE;
}

/* ---- slave.h: TLS ---------------------------------------------------------- */

gboolean
imta_conn_tls_available(const ImtaConn *conn)
{
	return conn->worker->tls != NULL;
}

gboolean
imta_conn_start_tls(ImtaConn *conn)
{
	if (conn->worker->tls == NULL || conn->tls_state != CONN_TLS_NONE || conn->dead ||
	    conn->closing)
		return FALSE;
	/* Whatever the client sent after STARTTLS arrived in clear and must
	 * not be taken as coming from inside the TLS session. */
	conn_input_clear(conn);
	conn->discarding = FALSE;
	conn->notify = FALSE;
	conn->tls_state = CONN_TLS_PENDING;
	conn->out_clear = conn->out_len;
	return TRUE;
}

gboolean
imta_conn_tls_active(const ImtaConn *conn)
{
	return conn->tls_state == CONN_TLS_ACTIVE;
}

const char *
imta_conn_tls_description(const ImtaConn *conn)
{
	return conn->tls_description;
}

/* ---- slave.h: blocking work ------------------------------------------------ */

/* The work ran on the loop thread: its done is owed at the connection's
 * next round (conn_process), never from within the caller. */
static void
conn_run_inline(ImtaConn *conn, WorkerJob *job)
{
	WorkerJob **tail = &conn->ran_inline;

	/* What was answered before the work goes out before it, rather than
	 * wait for the work as well. */
	imta_conn_flush(conn);
	job->work(job->data);
	worker_loop_unblock(conn->loop);
	while (*tail != NULL)
		tail = &(*tail)->next;
	*tail = job;
}

void
imta_conn_run(ImtaConn *conn, ImtaConnWorkFn work, ImtaConnDoneFn done, gpointer data)
{
	WorkerJob *job = g_new0(WorkerJob, 1);
	g_autoptr(GError) error = NULL;

	job->conn = (ImtaConn *)g_source_ref(&conn->source);
	job->work = work;
	job->done = done;
	job->data = data;
	conn->run_pending++;
	if (worker_loop_block(conn->loop)) {
		conn_run_inline(conn, job);
		return;
	}
	/* On error the job is queued all the same and runs when a pool
	 * thread is free. */
	if (!g_thread_pool_push(conn->worker->pool, job, &error))
		imta_conn_log(conn, IMTA_LOG_WARNING, "blocking pool: %s", error->message);
}

/* ---- slave.h: logging --------------------------------------------------- */

void
imta_conn_log(const ImtaConn *conn, ImtaLogLevel level, const char *format, ...)
{
	va_list args;
	g_autofree char *text = NULL;

	va_start(args, format);
	text = g_strdup_vprintf(format, args);
	va_end(args);
	imta_log(level, "conn %" G_GUINT64_FORMAT " [%s]: %s", conn->id, conn->remote_ip, text);
}
