/*
 * service.c - the dispatcher's services: their listening sockets,
 * accepting within the limits, the path of a connection from accept() to
 * a worker, and the dispatcher's life (start, the one-second tick, stop).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <glib.h>
#include <glib-unix.h>

#include <imta/fd_watch.h>
#include <imta/config.h>
#include <imta/dns.h>
#include <imta/log.h>
#include "access.h"
#include "control.h"
#include "service.h"
#include "workers.h"

#ifndef IMTA_LIBEXECDIR
#define IMTA_LIBEXECDIR "/usr/local/libexec/imta"
#endif

#define DISP_WORKER_PROGRAM "imta-worker"
#define DISP_DEFAULT_CHANNEL "tcp_local"
#define DISP_ACCEPTS_PER_WAKE 64
#define DISP_ACCEPT_PAUSE_US G_USEC_PER_SEC
#define DISP_LINGER_MAX 256
#define DISP_LINGER_SECONDS 5
#define DISP_LINGER_READ_MAX (64 * 1024)
#define DISP_REPLY_SHUTDOWN "421 4.3.2 Service shutting down, try again later\r\n"
#define DISP_REPLY_NO_WORKER "421 4.3.2 Service not available, try again later\r\n"
#define DISP_WORKER_REFUSALS_MAX 3

/* A refused client being closed: our reply is sent and our side shut;
 * its input is read and dropped until it closes too (or a few seconds
 * pass), so the reply is not destroyed by a reset. */
struct _DispLinger {
	Dispatcher *disp;
	int fd;
	guint io_source, timeout_source;
	gsize read;
	GList link;
};

/* The service's queues chain links embedded in their elements: take the
 * head link without freeing it (g_queue_pop_head would free the link). */
static gpointer
disp_queue_pop(GQueue *queue)
{
	GList *link = g_queue_pop_head_link(queue);

	return link != NULL ? link->data : NULL;
}

static void disp_check_stopped(Dispatcher *disp);

gint64
disp_now(void)
{
	return g_get_real_time() / G_USEC_PER_SEC;
}

const char *
disp_conn_state_name(DispConnState state)
{
	switch (state) {
	case DISP_CONN_CHECKING:
		return "checking";
	case DISP_CONN_QUEUED:
		return "queued";
	case DISP_CONN_HANDING:
		return "handing";
	case DISP_CONN_TAKEN:
		return "taken";
	case DISP_CONN_CLOSED:
		return "closed";
	}
	return "unknown";
}

/* ---- addresses --------------------------------------------------------- */

/* The text form of a socket address (an IPv4-mapped IPv6 address as plain
 * IPv4, as mappings and workers expect) and its port. */
static void
disp_sockaddr_text(const struct sockaddr_storage *ss, char ip[DISP_IP_MAX], guint16 *port_r)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, ip, DISP_IP_MAX);
		*port_r = ntohs(sin->sin_port);
		return;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
			inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], ip, DISP_IP_MAX);
		else
			inet_ntop(AF_INET6, &sin6->sin6_addr, ip, DISP_IP_MAX);
		*port_r = ntohs(sin6->sin6_port);
		return;
	}
	g_strlcpy(ip, "unknown", DISP_IP_MAX);
	*port_r = 0;
}

/* ---- lingering close of refused clients -------------------------------- */

static void
disp_linger_end(DispLinger *linger)
{
	if (linger->io_source != 0)
		g_source_remove(linger->io_source);
	if (linger->timeout_source != 0)
		g_source_remove(linger->timeout_source);
	close(linger->fd);
	g_queue_unlink(&linger->disp->lingering, &linger->link);
	g_free(linger);
}

static gboolean
disp_linger_on_input(gint fd, GIOCondition condition, gpointer user_data)
{
	DispLinger *linger = user_data;
	char buf[4096];

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return G_SOURCE_CONTINUE;
		if (n <= 0 || (linger->read += (gsize)n) > DISP_LINGER_READ_MAX)
			break;
	}
	linger->io_source = 0;
	disp_linger_end(linger);
	return G_SOURCE_REMOVE;
}

static gboolean
disp_linger_on_timeout(gpointer user_data)
{
	DispLinger *linger = user_data;

	linger->timeout_source = 0;
	disp_linger_end(linger);
	return G_SOURCE_REMOVE;
}

/* Send `text` on a client socket and close it gracefully. */
static void
disp_linger_start(Dispatcher *disp, int fd, const char *text)
{
	DispLinger *linger;

	/* A new socket's buffer is empty: a short reply goes out whole or
	 * the client is gone already. */
	(void)!send(fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT);
	if (disp->stopping || disp->lingering.length >= DISP_LINGER_MAX ||
	    shutdown(fd, SHUT_WR) < 0) {
		disp_debug(disp->debug, DISP_DEBUG_MISC, "refused client closed at once");
		close(fd);
		return;
	}
	linger = g_new0(DispLinger, 1);
	linger->disp = disp;
	linger->fd = fd;
	linger->link.data = linger;
	linger->io_source = imta_fd_watch_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR, disp_linger_on_input,
					  linger);
	linger->timeout_source = g_timeout_add_seconds(DISP_LINGER_SECONDS, disp_linger_on_timeout,
						       linger);
	g_queue_push_tail_link(&disp->lingering, &linger->link);
}

/* ---- connections --------------------------------------------------------- */

static void
disp_conn_free(DispConn *conn)
{
	disp_ident_cancel(conn);
	if (conn->cancellable != NULL) {
		g_cancellable_cancel(conn->cancellable);
		g_object_unref(conn->cancellable);
	}
	if (conn->fd >= 0)
		close(conn->fd);
	g_free(conn->ident_user);
	g_free(conn);
}

/* Give a connection's place in a worker back. */
static void
disp_conn_leave_worker(DispConn *conn)
{
	DispWorker *worker = conn->worker;

	if (worker == NULL)
		return;
	conn->worker = NULL;
	if (worker->current > 0 && --worker->current == 0)
		worker->idle_since = g_get_monotonic_time();
	disp_workers_check(worker);
}

/* The connection is over for the dispatcher: keep its record for the
 * statistics. */
static void
disp_conn_finish(DispConn *conn, const char *outcome)
{
	DispService *svc = conn->service;

	switch (conn->state) {
	case DISP_CONN_CHECKING:
		if (conn->cancellable != NULL) {
			g_cancellable_cancel(conn->cancellable);
			g_clear_object(&conn->cancellable);
		}
		svc->handoffs--;
		break;
	case DISP_CONN_QUEUED:
		g_queue_unlink(&svc->queue, &conn->queue_link);
		svc->handoffs--;
		break;
	case DISP_CONN_HANDING:
		svc->handing--;
		svc->handoffs--;
		disp_conn_leave_worker(conn);
		break;
	case DISP_CONN_TAKEN:
		disp_conn_leave_worker(conn);
		break;
	case DISP_CONN_CLOSED:
		return;
	}
	if (conn->fd >= 0) {
		close(conn->fd);
		conn->fd = -1;
	}
	conn->state = DISP_CONN_CLOSED;
	conn->ended = disp_now();
	conn->outcome = outcome;
	g_hash_table_remove(svc->disp->conns, &conn->id);
	g_queue_unlink(&svc->live, &conn->live_link);
	g_queue_push_tail_link(&svc->history, &conn->live_link);
	if (svc->history.length > DISP_HISTORY_MAX)
		disp_conn_free(disp_queue_pop(&svc->history));
	disp_debug(svc->debug, DISP_DEBUG_SERVICE,
		   "service %s: connection %" G_GUINT64_FORMAT " from %s port %u: %s",
		   svc->name, conn->id, conn->remote_ip, conn->remote_port, outcome);
}

void
disp_service_conn_reject(DispConn *conn, const char *text, const char *outcome,
			 gboolean refusal)
{
	DispService *svc = conn->service;

	if (conn->fd >= 0) {
		disp_linger_start(svc->disp, conn->fd, text);
		conn->fd = -1;
	}
	if (refusal)
		svc->refused++;
	disp_conn_finish(conn, outcome);
	disp_service_pump(svc);
}

void
disp_service_conn_admit(DispConn *conn)
{
	DispService *svc = conn->service;

	if (svc->disp->stopping) {
		disp_service_conn_reject(conn, DISP_REPLY_SHUTDOWN, "dispatcher shutting down",
					 FALSE);
		return;
	}
	conn->state = DISP_CONN_QUEUED;
	conn->since = g_get_monotonic_time();
	g_queue_push_tail_link(&svc->queue, &conn->queue_link);
	disp_service_pump(svc);
}

static void
disp_conn_begin(DispService *svc, const DispListener *listener, int fd,
		const struct sockaddr_storage *peer)
{
	Dispatcher *disp = svc->disp;
	DispConn *conn = g_new0(DispConn, 1);
	struct sockaddr_storage local;
	socklen_t len = sizeof(local);
	g_autofree char *refusal = NULL;

	conn->id = ++disp->next_conn_id;
	conn->service = svc;
	conn->fd = fd;
	conn->state = DISP_CONN_CHECKING;
	conn->started = disp_now();
	conn->since = g_get_monotonic_time();
	conn->live_link.data = conn;
	conn->queue_link.data = conn;
	disp_sockaddr_text(peer, conn->remote_ip, &conn->remote_port);
	if (getsockname(fd, (struct sockaddr *)&local, &len) == 0) {
		disp_sockaddr_text(&local, conn->local_ip, &conn->local_port);
	} else {
		g_strlcpy(conn->local_ip, listener->address, sizeof(conn->local_ip));
		conn->local_port = listener->port;
	}
	g_queue_push_tail_link(&svc->live, &conn->live_link);
	g_hash_table_insert(disp->conns, &conn->id, conn);
	svc->handoffs++;
	svc->total++;
	disp_debug(svc->debug, DISP_DEBUG_SERVICE,
		   "service %s: connection %" G_GUINT64_FORMAT " from %s port %u to %s port %u",
		   svc->name, conn->id, conn->remote_ip, conn->remote_port, conn->local_ip,
		   conn->local_port);
	if (svc->cnf->ident)
		disp_ident_start(conn);
	refusal = disp_access_port(conn);
	if (refusal != NULL) {
		disp_service_conn_reject(conn, refusal, "refused by PORT_ACCESS", TRUE);
		return;
	}
	if (svc->zones != NULL && disp->resolver != NULL) {
		disp_access_dnsbl_start(conn);
		return;
	}
	disp_service_conn_admit(conn);
}

/* ---- accepting ------------------------------------------------------------ */

static gboolean disp_listener_on_ready(gint fd, GIOCondition condition, gpointer user_data);

static void
disp_service_set_accepting(DispService *svc, gboolean on, const char *why)
{
	if (svc->accepting == on)
		return;
	svc->accepting = on;
	for (guint i = 0; i < svc->listeners->len; i++) {
		DispListener *listener = g_ptr_array_index(svc->listeners, i);

		if (listener->fd < 0)
			continue;
		if (on && listener->source == 0)
			listener->source = imta_fd_watch_add(listener->fd, G_IO_IN,
							 disp_listener_on_ready, listener);
		else if (!on && listener->source != 0)
			g_clear_handle_id(&listener->source, g_source_remove);
	}
	disp_debug(svc->debug, DISP_DEBUG_SERVICE_EXTRA, "service %s: %s accepting (%s)",
		   svc->name, on ? "resumes" : "stops", why);
}

static void
disp_service_update_accepting(DispService *svc)
{
	const ImtaDispatcherService *cnf = svc->cnf;

	if (svc->disp->stopping)
		disp_service_set_accepting(svc, FALSE, "shutting down");
	else if (g_get_monotonic_time() < svc->accept_pause_until)
		disp_service_set_accepting(svc, FALSE, "accept() failed");
	else if (svc->handoffs >= (guint)cnf->max_handoffs)
		disp_service_set_accepting(svc, FALSE, "MAX_HANDOFFS hand-offs in progress");
	else if (disp_workers_room(svc) <= 0)
		disp_service_set_accepting(svc, FALSE,
					   "every worker is full (MAX_CONNS, MAX_PROCS)");
	else
		disp_service_set_accepting(svc, TRUE, "room for connections");
}

/* Accept one client; FALSE when there is none (or accepting must pause). */
static gboolean
disp_service_accept_one(DispService *svc, DispListener *listener)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);
	int fd = accept4(listener->fd, (struct sockaddr *)&peer, &len,
			 SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd >= 0) {
		disp_conn_begin(svc, listener, fd, &peer);
		return TRUE;
	}
	switch (errno) {
	case EINTR:
	case ECONNABORTED:
	case EPROTO:
		return TRUE;
	case EAGAIN:
#if EWOULDBLOCK != EAGAIN
	case EWOULDBLOCK:
#endif
		return FALSE;
	default:
		/* Out of descriptors or memory: the listener stays readable, so
		 * pause instead of spinning. */
		imta_log(IMTA_LOG_WARNING, "service %s: cannot accept on %s port %u: %s; "
			 "pausing for a second", svc->name, listener->address, listener->port,
			 g_strerror(errno));
		svc->accept_pause_until = g_get_monotonic_time() + DISP_ACCEPT_PAUSE_US;
		disp_service_update_accepting(svc);
		return FALSE;
	}
}

static gboolean
disp_listener_on_ready(gint fd, GIOCondition condition, gpointer user_data)
{
	DispListener *listener = user_data;
	DispService *svc = listener->service;

	for (guint i = 0; i < DISP_ACCEPTS_PER_WAKE && svc->accepting; i++)
		if (!disp_service_accept_one(svc, listener))
			break;
	/* When accepting stopped, this source is gone already. */
	return G_SOURCE_CONTINUE;
}

/* ---- handing connections to workers ------------------------------------- */

/* Send the queue's first connection to `worker`.  FALSE: stop for now
 * (the worker's socket is full). */
static gboolean
disp_service_hand(DispService *svc, DispConn *conn, DispWorker *worker)
{
	if (!disp_worker_send_conn(worker, conn))
		return errno != EAGAIN && errno != EWOULDBLOCK;
	g_queue_unlink(&svc->queue, &conn->queue_link);
	conn->state = DISP_CONN_HANDING;
	conn->since = g_get_monotonic_time();
	conn->worker = worker;
	conn->worker_pid = worker->pid;
	worker->current++;
	worker->assigned++;
	svc->handing++;
	disp_workers_check(worker);
	return TRUE;
}

static void
disp_service_hand_queued(DispService *svc)
{
	DispConn *conn;

	if (svc->disp->stopping)
		return;
	while ((conn = g_queue_peek_head(&svc->queue)) != NULL) {
		DispWorker *worker = disp_workers_choose(svc);

		if (worker == NULL || !disp_service_hand(svc, conn, worker))
			return;
	}
}

void
disp_service_pump(DispService *svc)
{
	if (svc->pumping) {
		svc->pump_again = TRUE;
		return;
	}
	svc->pumping = TRUE;
	do {
		svc->pump_again = FALSE;
		disp_service_hand_queued(svc);
		disp_workers_spawn_needed(svc);
		disp_service_update_accepting(svc);
	} while (svc->pump_again);
	svc->pumping = FALSE;
}

/* ---- what workers say ------------------------------------------------------ */

static DispConn *
disp_service_worker_conn(DispService *svc, DispWorker *worker, guint64 id, const char *what)
{
	DispConn *conn = g_hash_table_lookup(svc->disp->conns, &id);

	if (conn == NULL || conn->worker != worker ||
	    (conn->state != DISP_CONN_HANDING && conn->state != DISP_CONN_TAKEN)) {
		imta_log(IMTA_LOG_WARNING, "worker pid %ld of service %s: %s %" G_GUINT64_FORMAT
			 " names no connection it was given; ignored", (long)worker->pid,
			 svc->name, what, id);
		return NULL;
	}
	return conn;
}

void
disp_service_conn_taken(DispService *svc, DispWorker *worker, guint64 id)
{
	DispConn *conn = disp_service_worker_conn(svc, worker, id, "TAKEN");

	if (conn == NULL || conn->state != DISP_CONN_HANDING)
		return;
	close(conn->fd);
	conn->fd = -1;
	conn->state = DISP_CONN_TAKEN;
	conn->since = g_get_monotonic_time();
	svc->handing--;
	svc->handoffs--;
	worker->total++;
	disp_service_pump(svc);
}

void
disp_service_conn_closed(DispService *svc, DispWorker *worker, guint64 id)
{
	DispConn *conn = disp_service_worker_conn(svc, worker, id, "CLOSED");

	if (conn == NULL)
		return;
	/* CLOSED before TAKEN: it was taken and ended at once. */
	if (conn->state == DISP_CONN_HANDING)
		worker->total++;
	disp_conn_finish(conn, "closed");
	disp_service_pump(svc);
}

void
disp_service_conn_refused(DispService *svc, DispWorker *worker, guint64 id, const char *reason)
{
	DispConn *conn = disp_service_worker_conn(svc, worker, id, "REFUSED");

	if (conn == NULL || conn->state != DISP_CONN_HANDING)
		return;
	imta_log(IMTA_LOG_WARNING, "worker pid %ld of service %s refused connection %"
		 G_GUINT64_FORMAT " from %s: %s", (long)worker->pid, svc->name, id,
		 conn->remote_ip, reason);
	svc->handing--;
	disp_conn_leave_worker(conn);
	conn->tries++;
	conn->state = DISP_CONN_QUEUED;
	conn->since = g_get_monotonic_time();
	g_queue_push_head_link(&svc->queue, &conn->queue_link);
	if (conn->tries >= DISP_WORKER_REFUSALS_MAX || svc->disp->stopping) {
		disp_service_conn_reject(conn, svc->disp->stopping ? DISP_REPLY_SHUTDOWN :
					 DISP_REPLY_NO_WORKER, "refused by the workers", FALSE);
		return;
	}
	disp_service_pump(svc);
}

void
disp_service_worker_gone(DispService *svc, DispWorker *worker, gboolean expected)
{
	GList *link, *prev;

	/* From the newest back, each pushed to the queue's head: the queue
	 * keeps accept order. */
	for (link = svc->live.tail; link != NULL; link = prev) {
		DispConn *conn = link->data;

		prev = link->prev;
		if (conn->worker != worker)
			continue;
		conn->worker = NULL;
		if (conn->state == DISP_CONN_HANDING) {
			svc->handing--;
			conn->state = DISP_CONN_QUEUED;
			conn->since = g_get_monotonic_time();
			g_queue_push_head_link(&svc->queue, &conn->queue_link);
		} else {
			disp_conn_finish(conn, expected ? "closed" : "lost: the worker died");
		}
	}
	worker->current = 0;
	disp_service_pump(svc);
	if (svc->disp->stopping)
		disp_check_stopped(svc->disp);
}

/* ---- the tick ------------------------------------------------------------- */

static void
disp_service_timeouts(DispService *svc, gint64 now)
{
	DispConn *conn;
	guint expired = 0;

	while ((conn = g_queue_peek_head(&svc->queue)) != NULL &&
	       now - conn->since >= DISP_QUEUE_TIMEOUT * G_USEC_PER_SEC) {
		disp_service_conn_reject(conn, DISP_REPLY_NO_WORKER, "no worker took it in time",
					 FALSE);
		expired++;
	}
	if (expired > 0)
		imta_log(IMTA_LOG_WARNING, "service %s: %u connections waited %d s for a worker "
			 "and were sent 421 (see %s)", svc->name, expired, DISP_QUEUE_TIMEOUT,
			 svc->log_path);
	for (GList *link = svc->live.head; link != NULL; link = link->next) {
		conn = link->data;
		if (conn->state != DISP_CONN_HANDING || conn->worker == NULL ||
		    conn->worker->broken ||
		    now - conn->since < DISP_HANDOFF_TIMEOUT * G_USEC_PER_SEC)
			continue;
		imta_log(IMTA_LOG_ERROR, "worker pid %ld of service %s has not taken connection %"
			 G_GUINT64_FORMAT " in %d s: killing it", (long)conn->worker->pid,
			 svc->name, conn->id, DISP_HANDOFF_TIMEOUT);
		disp_worker_kill(conn->worker);
	}
}

static void
disp_service_prune(DispService *svc, gint64 now)
{
	gint64 keep = svc->cnf->historical_time;
	DispConn *conn;
	DispWorker *worker;

	while ((conn = g_queue_peek_head(&svc->history)) != NULL && conn->ended + keep <= now)
		disp_conn_free(disp_queue_pop(&svc->history));
	while ((worker = g_queue_peek_head(&svc->exited)) != NULL &&
	       (worker->exited + keep <= now || svc->exited.length > DISP_EXITED_MAX))
		disp_worker_free(disp_queue_pop(&svc->exited));
}

/* DEBUG 16%2: each second, what every service holds. */
static void
disp_debug_load(const DispService *svc)
{
	imta_log(IMTA_LOG_DEBUG, "service %s: %u workers, %u connections, %u not yet taken "
		 "(%u queued), %s", svc->name, disp_workers_running(svc), svc->live.length,
		 svc->handoffs, svc->queue.length, svc->accepting ? "accepting" : "not accepting");
}

static gboolean
disp_on_tick(gpointer user_data)
{
	Dispatcher *disp = user_data;
	gint64 now = g_get_monotonic_time();
	gint64 real = disp_now();

	for (guint i = 0; i < disp->services->len; i++) {
		DispService *svc = g_ptr_array_index(disp->services, i);

		disp_workers_tick(svc, now);
		disp_service_timeouts(svc, now);
		disp_service_prune(svc, real);
		disp_service_pump(svc);
		if ((disp->debug & DISP_DEBUG_MAIN_EXTRA) != 0)
			disp_debug_load(svc);
	}
	if (disp->stopping)
		disp_check_stopped(disp);
	return G_SOURCE_CONTINUE;
}

void
disp_reopen(Dispatcher *disp)
{
	for (guint i = 0; i < disp->services->len; i++) {
		DispService *svc = g_ptr_array_index(disp->services, i);

		for (GList *link = svc->workers.head; link != NULL; link = link->next) {
			DispWorker *worker = link->data;

			if (kill(worker->pid, SIGHUP) < 0 && errno != ESRCH)
				imta_log(IMTA_LOG_WARNING, "cannot signal worker pid %ld: %s",
					 (long)worker->pid, g_strerror(errno));
		}
	}
}

/* ---- services -------------------------------------------------------------- */

static void
disp_listener_free(gpointer data)
{
	DispListener *listener = data;

	if (listener->source != 0)
		g_source_remove(listener->source);
	if (listener->fd >= 0)
		close(listener->fd);
	g_free(listener);
}

static void
disp_service_free(gpointer data)
{
	DispService *svc = data;
	DispConn *conn;
	DispWorker *worker;

	if (svc == NULL)
		return;
	disp_workers_kill_all(svc);
	if (svc->backoff_source != 0)
		g_source_remove(svc->backoff_source);
	while ((worker = disp_queue_pop(&svc->workers)) != NULL)
		disp_worker_free(worker);
	while ((worker = disp_queue_pop(&svc->exited)) != NULL)
		disp_worker_free(worker);
	/* The queue links point into the connections freed below. */
	g_queue_init(&svc->queue);
	while ((conn = disp_queue_pop(&svc->live)) != NULL) {
		g_hash_table_remove(svc->disp->conns, &conn->id);
		disp_conn_free(conn);
	}
	while ((conn = disp_queue_pop(&svc->history)) != NULL)
		disp_conn_free(conn);
	g_ptr_array_unref(svc->listeners);
	g_strfreev(svc->zones);
	g_free(svc->name);
	g_free(svc->image);
	g_free(svc->log_path);
	g_free(svc->channel);
	g_free(svc);
}

static char *
disp_service_image(const Dispatcher *disp, const ImtaDispatcherService *cnf)
{
	const char *dir;

	if (cnf->image != NULL) {
		if (g_path_is_absolute(cnf->image))
			return g_strdup(cnf->image);
		return g_build_filename(disp->config->dir, cnf->image, NULL);
	}
	dir = g_getenv("IMTA_LIBEXEC");
	return g_build_filename(dir != NULL && *dir != '\0' ? dir : IMTA_LIBEXECDIR,
				DISP_WORKER_PROGRAM, NULL);
}

/* LOGFILE with %s replaced by the host name (relative to IMTA_LOG), else
 * IMTA_LOG/<service>_server.log. */
static char *
disp_service_log_path(const Dispatcher *disp, const ImtaDispatcherService *cnf)
{
	const ImtaTailor *tailor = disp->config->tailor;
	g_autofree char *name = NULL;

	if (cnf->logfile != NULL) {
		g_auto(GStrv) parts = g_strsplit(cnf->logfile, "%s", -1);

		name = g_strjoinv(tailor->hostname != NULL ? tailor->hostname : g_get_host_name(),
				  parts);
	} else {
		g_autofree char *lower = g_ascii_strdown(cnf->name, -1);

		name = g_strdup_printf("%s_server.log", lower);
	}
	if (g_path_is_absolute(name))
		return g_steal_pointer(&name);
	return g_build_filename(tailor->log_dir, name, NULL);
}

static DispService *
disp_service_new(Dispatcher *disp, const ImtaDispatcherService *cnf, GError **error)
{
	g_autoptr(GString) where = NULL;
	DispService *svc = g_new0(DispService, 1);

	svc->disp = disp;
	svc->cnf = cnf;
	svc->name = g_strdup(cnf->name);
	svc->debug = cnf->debug | disp->env_debug;
	svc->image = disp_service_image(disp, cnf);
	svc->log_path = disp_service_log_path(disp, cnf);
	svc->channel = g_strdup(cnf->channel != NULL ? cnf->channel : DISP_DEFAULT_CHANNEL);
	svc->listeners = g_ptr_array_new_with_free_func(disp_listener_free);
	g_queue_init(&svc->workers);
	g_queue_init(&svc->exited);
	g_queue_init(&svc->live);
	g_queue_init(&svc->history);
	g_queue_init(&svc->queue);
	if (cnf->dns_verify_domains != NULL && cnf->dns_verify_domains->len > 0) {
		svc->zones = g_new0(char *, cnf->dns_verify_domains->len + 1);
		for (guint i = 0; i < cnf->dns_verify_domains->len; i++)
			svc->zones[i] = g_strdup(g_ptr_array_index(cnf->dns_verify_domains, i));
	}
	if (!g_file_test(svc->image, G_FILE_TEST_IS_REGULAR) ||
	    !g_file_test(svc->image, G_FILE_TEST_IS_EXECUTABLE)) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_MISSING, &cnf->pos,
				  "service %s: the worker program %s is not an executable file%s",
				  cnf->name, svc->image, cnf->image != NULL ? " (IMAGE)" :
				  " (IMTA_LIBEXEC names the directory of the MTA's programs)");
		disp_service_free(svc);
		return NULL;
	}
	if (imta_cnf_channel_by_name(disp->config->cnf, svc->channel) == NULL) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_MISSING, &cnf->pos,
				  "service %s: channel %s%s is not defined in imta.cnf", cnf->name,
				  svc->channel, cnf->channel != NULL ? " (PARAMETER=CHANNEL=)" :
				  " (the default when PARAMETER names no CHANNEL)");
		disp_service_free(svc);
		return NULL;
	}
	return svc;
}

static int
disp_listen_socket(const struct sockaddr *sa, socklen_t len, gboolean v6only, int backlog)
{
	int one = 1, v6 = v6only ? 1 : 0;
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int errnum;

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
	    (sa->sa_family != AF_INET6 ||
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof(v6)) == 0) &&
	    bind(fd, sa, len) == 0 && listen(fd, backlog) == 0)
		return fd;
	errnum = errno;
	close(fd);
	errno = errnum;
	return -1;
}

static gboolean
disp_service_listen(DispService *svc, guint16 port, GError **error)
{
	const char *address = svc->cnf->interface_address;
	int backlog = (int)svc->cnf->backlog;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	const char *shown = address;
	DispListener *listener;
	int fd;

	if (address == NULL) {
		/* Every address: one IPv6 socket takes IPv4 too; without IPv6,
		 * an IPv4 socket. */
		sin6.sin6_addr = in6addr_any;
		shown = "::";
		fd = disp_listen_socket((struct sockaddr *)&sin6, sizeof(sin6), FALSE, backlog);
		if (fd < 0 && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL ||
			       errno == EPROTONOSUPPORT)) {
			sin.sin_addr.s_addr = htonl(INADDR_ANY);
			shown = "0.0.0.0";
			fd = disp_listen_socket((struct sockaddr *)&sin, sizeof(sin), FALSE,
						backlog);
		}
	} else if (inet_pton(AF_INET, address, &sin.sin_addr) == 1) {
		fd = disp_listen_socket((struct sockaddr *)&sin, sizeof(sin), FALSE, backlog);
	} else if (inet_pton(AF_INET6, address, &sin6.sin6_addr) == 1) {
		fd = disp_listen_socket((struct sockaddr *)&sin6, sizeof(sin6), TRUE, backlog);
	} else {
		errno = EINVAL;
		fd = -1;
	}
	if (fd < 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
			    "service %s: cannot listen on %s port %u: %s", svc->name,
			    address != NULL ? address : "every address", port, g_strerror(errno));
		return FALSE;
	}
	listener = g_new0(DispListener, 1);
	listener->fd = fd;
	listener->port = port;
	listener->service = svc;
	g_strlcpy(listener->address, shown, sizeof(listener->address));
	g_ptr_array_add(svc->listeners, listener);
	imta_log(IMTA_LOG_INFO, "service %s: listening on %s port %u (backlog %d)", svc->name,
		 address != NULL ? address : "every address", port, backlog);
	return TRUE;
}

/* ---- the dispatcher ---------------------------------------------------------- */

static void
disp_log_config(Dispatcher *disp)
{
	g_autoptr(GString) dump = g_string_new(NULL);
	g_auto(GStrv) lines = NULL;

	imta_dispatcher_cnf_dump(disp->config->dispatcher, dump);
	lines = g_strsplit(dump->str, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++)
		if (lines[i][0] != '\0')
			imta_log(IMTA_LOG_DEBUG, "dispatcher.cnf: %s", lines[i]);
}

Dispatcher *
disp_new(const ImtaConfig *config, ImtaDaemon *daemon, guint32 env_debug, GError **error)
{
	const ImtaDispatcherCnf *cnf = config->dispatcher;
	Dispatcher *disp = g_new0(Dispatcher, 1);
	gboolean dns = FALSE;

	disp->config = config;
	disp->daemon = daemon;
	disp->env_debug = env_debug;
	disp->debug = cnf->defaults.debug | env_debug;
	disp->started = disp_now();
	disp->services = g_ptr_array_new_with_free_func(disp_service_free);
	disp->conns = g_hash_table_new(g_int64_hash, g_int64_equal);
	g_queue_init(&disp->lingering);
	for (guint i = 0; i < cnf->services->len; i++) {
		const ImtaDispatcherService *scnf = g_ptr_array_index(cnf->services, i);
		DispService *svc;

		disp->debug |= scnf->debug;
		if (!imta_dispatcher_service_enabled(scnf)) {
			imta_log(IMTA_LOG_INFO, "service %s is disabled (PORT=0)", scnf->name);
			continue;
		}
		svc = disp_service_new(disp, scnf, error);
		if (svc == NULL) {
			disp_free(disp);
			return NULL;
		}
		g_ptr_array_add(disp->services, svc);
		dns = dns || svc->zones != NULL;
	}
	if ((disp->debug & DISP_DEBUG_OWN_BITS) != 0)
		imta_log_set_level(IMTA_LOG_DEBUG);
	if ((disp->debug & DISP_DEBUG_CONFIG) != 0)
		disp_log_config(disp);
	if (disp->services->len == 0) {
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_MISSING,
			    "%s enables no service (every service has PORT=0)",
			    cnf->path != NULL ? cnf->path : "dispatcher.cnf");
		disp_free(disp);
		return NULL;
	}
	if (cnf->user != NULL && g_strcmp0(cnf->user, config->tailor->user) != 0)
		imta_log(IMTA_LOG_WARNING, "dispatcher.cnf USER=%s is not used: the dispatcher "
			 "and its workers run as IMTA_USER (%s) of imta_tailor", cnf->user,
			 config->tailor->user != NULL ? config->tailor->user : "not set");
	if (dns) {
		disp->resolver = imta_resolver_new_from_options(config->options, error);
		if (disp->resolver == NULL) {
			disp_free(disp);
			return NULL;
		}
	}
	return disp;
}

gboolean
disp_bind(Dispatcher *disp, GError **error)
{
	g_autofree char *path = imta_daemon_run_path(disp->daemon, DISP_CONTROL_SOCKET);

	for (guint i = 0; i < disp->services->len; i++) {
		DispService *svc = g_ptr_array_index(disp->services, i);

		for (guint j = 0; j < svc->cnf->ports->len; j++)
			if (!disp_service_listen(svc, g_array_index(svc->cnf->ports, guint16, j),
						 error))
				return FALSE;
	}
	disp->control = disp_control_new(disp, path, error);
	return disp->control != NULL && imta_daemon_give_to_user(disp->daemon, path, error);
}

/* Workers serve up to MAX_CONNS clients each: let them have as many
 * descriptors as the hard limit allows. */
static void
disp_raise_nofile(Dispatcher *disp)
{
	struct rlimit limit;

	if (getrlimit(RLIMIT_NOFILE, &limit) < 0 || limit.rlim_cur >= limit.rlim_max)
		return;
	limit.rlim_cur = limit.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &limit) < 0)
		imta_log(IMTA_LOG_WARNING, "cannot raise the open files limit: %s",
			 g_strerror(errno));
	else
		disp_debug(disp->debug, DISP_DEBUG_MISC, "open files limit raised to %lu",
			   (unsigned long)limit.rlim_cur);
}

static void
disp_debug_services(Dispatcher *disp)
{
	for (guint i = 0; i < disp->services->len; i++) {
		const DispService *svc = g_ptr_array_index(disp->services, i);
		const ImtaDispatcherService *cnf = svc->cnf;

		imta_log(IMTA_LOG_DEBUG, "service %s: %u listening sockets, worker %s, channel %s, "
			 "log %s, MIN_PROCS %" G_GINT64_FORMAT ", MAX_PROCS %" G_GINT64_FORMAT
			 ", MIN_CONNS %" G_GINT64_FORMAT ", MAX_CONNS %" G_GINT64_FORMAT
			 ", MAX_HANDOFFS %" G_GINT64_FORMAT ", %u DNS lists%s", svc->name,
			 svc->listeners->len, svc->image, svc->channel, svc->log_path,
			 cnf->min_procs, cnf->max_procs, cnf->min_conns, cnf->max_conns,
			 cnf->max_handoffs, svc->zones != NULL ? g_strv_length(svc->zones) : 0,
			 cnf->ident ? ", IDENT" : "");
	}
}

gboolean
disp_start(Dispatcher *disp, GError **error)
{
	if ((disp->debug & DISP_DEBUG_MAIN) != 0)
		disp_debug_services(disp);
	disp_raise_nofile(disp);
	disp->tick_source = g_timeout_add_seconds(1, disp_on_tick, disp);
	disp_control_start(disp->control);
	for (guint i = 0; i < disp->services->len; i++)
		disp_service_pump(g_ptr_array_index(disp->services, i));
	return TRUE;
}

static void
disp_check_stopped(Dispatcher *disp)
{
	guint running = 0;

	for (guint i = 0; i < disp->services->len; i++)
		running += disp_workers_running(g_ptr_array_index(disp->services, i));
	if (running == 0) {
		if (disp->stopped != NULL) {
			void (*stopped)(Dispatcher *) = disp->stopped;

			disp->stopped = NULL;
			imta_log(IMTA_LOG_NOTICE, "every worker has exited");
			stopped(disp);
		}
		return;
	}
	disp_debug(disp->debug, DISP_DEBUG_MAIN, "stopping: %u workers still running", running);
	if (!disp->killed && g_get_monotonic_time() >= disp->stop_deadline) {
		imta_log(IMTA_LOG_WARNING, "%u workers still running %d s after the stop: "
			 "killing them", running, DISP_STOP_KILL_SECONDS);
		disp->killed = TRUE;
		for (guint i = 0; i < disp->services->len; i++)
			disp_workers_kill_all(g_ptr_array_index(disp->services, i));
	}
}

void
disp_stop(Dispatcher *disp, const char *why)
{
	if (disp->stopping)
		return;
	disp->stopping = TRUE;
	disp->stop_deadline = g_get_monotonic_time() + DISP_STOP_KILL_SECONDS * G_USEC_PER_SEC;
	imta_log(IMTA_LOG_NOTICE, "stopping (%s): no more connections; draining the workers",
		 why);
	for (guint i = 0; i < disp->services->len; i++) {
		DispService *svc = g_ptr_array_index(disp->services, i);
		GList *link, *next;

		disp_service_set_accepting(svc, FALSE, "shutting down");
		/* Clients still in the listen queue are refused by the kernel
		 * rather than left waiting for an answer that never comes. */
		for (guint j = 0; j < svc->listeners->len; j++) {
			DispListener *listener = g_ptr_array_index(svc->listeners, j);

			if (listener->fd >= 0) {
				close(listener->fd);
				listener->fd = -1;
			}
		}
		for (link = svc->live.head; link != NULL; link = next) {
			DispConn *conn = link->data;

			next = link->next;
			if (conn->state == DISP_CONN_CHECKING || conn->state == DISP_CONN_QUEUED)
				disp_service_conn_reject(conn, DISP_REPLY_SHUTDOWN,
							 "dispatcher shutting down", FALSE);
		}
		disp_workers_drain_all(svc, why);
	}
	disp_check_stopped(disp);
}

void
disp_free(Dispatcher *disp)
{
	DispLinger *linger;

	if (disp == NULL)
		return;
	if (disp->tick_source != 0)
		g_source_remove(disp->tick_source);
	g_clear_pointer(&disp->control, disp_control_free);
	g_ptr_array_unref(disp->services);
	while ((linger = g_queue_peek_head(&disp->lingering)) != NULL)
		disp_linger_end(linger);
	g_hash_table_unref(disp->conns);
	g_clear_pointer(&disp->resolver, imta_resolver_free);
	g_free(disp);
}
