/*
 * workers.c - the worker processes of a service (see workers.h): their
 * start with the control socket as descriptor 3, the messages of
 * handoff.h, the choice of a worker for a connection, retirement and
 * replacement, and the backoff for a program that keeps dying.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>
#include <glib-unix.h>

#include <imta/fd_watch.h>
#include <imta/daemon.h>
#include <imta/log.h>
#include "handoff.h"
#include "service.h"
#include "workers.h"

#define WORKERS_START_TIMEOUT 30        /* seconds to READY */
#define WORKERS_FAST_EXIT 10            /* dying sooner counts toward the backoff */
#define WORKERS_BACKOFF_MAX 60          /* seconds between starts at worst */
#define WORKERS_RETIRE_GRACE 300        /* a retiring worker's sessions may last this long */
#define WORKERS_DRAIN_GRACE 300         /* then SIGTERM, which closes them 30 s later */
#define WORKERS_TERM_GRACE 60           /* then SIGKILL */
#define WORKERS_PACKETS_PER_WAKE 64
#define WORKERS_EXIT_GRACE 10           /* seconds from a closed control socket to SIGKILL */

static const char *
worker_service_name(const DispWorker *worker)
{
	return worker->service->name;
}

const char *
disp_worker_state_name(DispWorkerState state)
{
	switch (state) {
	case DISP_WORKER_STARTING:
		return "starting";
	case DISP_WORKER_READY:
		return "ready";
	case DISP_WORKER_RETIRING:
		return "retiring";
	case DISP_WORKER_DRAINING:
		return "draining";
	case DISP_WORKER_EXITED:
		return "exited";
	}
	return "unknown";
}

/* A worker's message for the log: printable ASCII only. */
static char *
worker_printable(const char *text)
{
	GString *out = g_string_new(NULL);

	for (const char *p = text; *p != '\0' && out->len < 200; p++) {
		if (*p >= 0x20 && *p < 0x7f)
			g_string_append_c(out, *p);
		else
			g_string_append_printf(out, "\\x%02x", (guchar)*p);
	}
	return g_string_free(out, FALSE);
}

/* The worker cannot be managed any more: it takes nothing, and is killed
 * unless it exits by itself soon. */
static void
worker_set_broken(DispWorker *worker)
{
	if (worker->broken)
		return;
	worker->broken = TRUE;
	worker->broken_since = g_get_monotonic_time();
}

void
disp_worker_kill(DispWorker *worker)
{
	worker_set_broken(worker);
	if (worker->killed || worker->state == DISP_WORKER_EXITED)
		return;
	worker->killed = TRUE;
	if (kill(worker->pid, SIGKILL) < 0 && errno != ESRCH)
		imta_log(IMTA_LOG_WARNING, "cannot kill worker pid %ld: %s", (long)worker->pid,
			 g_strerror(errno));
}

static gboolean
worker_is_active(const DispWorker *worker)
{
	return !worker->broken && (worker->state == DISP_WORKER_STARTING ||
				   worker->state == DISP_WORKER_READY);
}

static guint
workers_shutting_down(const DispService *svc)
{
	guint n = 0;

	for (GList *link = svc->workers.head; link != NULL; link = link->next) {
		const DispWorker *worker = link->data;

		if (worker->state == DISP_WORKER_RETIRING || worker->state == DISP_WORKER_DRAINING)
			n++;
	}
	return n;
}

guint
disp_workers_running(const DispService *svc)
{
	return svc->workers.length;
}

/* ---- the control socket -------------------------------------------------- */

static void
worker_close_socket(DispWorker *worker)
{
	if (worker->sock_source != 0)
		g_clear_handle_id(&worker->sock_source, g_source_remove);
	if (worker->sock >= 0) {
		close(worker->sock);
		worker->sock = -1;
	}
}

static gboolean
worker_parse_id(const char *text, guint64 *id_r)
{
	return text != NULL && g_ascii_string_to_unsigned(text, 10, 1, G_MAXUINT64, id_r, NULL);
}

static void
worker_ready(DispWorker *worker)
{
	DispService *svc = worker->service;

	if (worker->state != DISP_WORKER_STARTING)
		return;
	worker->state = DISP_WORKER_READY;
	worker->idle_since = g_get_monotonic_time();
	imta_log(IMTA_LOG_INFO, "worker pid %ld of service %s is ready", (long)worker->pid,
		 svc->name);
	disp_service_pump(svc);
}

static void
worker_handle(DispWorker *worker, const char *text)
{
	DispService *svc = worker->service;
	g_auto(GStrv) words = g_strsplit(text, " ", 3);
	g_autofree char *shown = NULL;
	guint64 id;

	disp_debug(svc->debug, DISP_DEBUG_PACKET, "worker pid %ld -> dispatcher: %s",
		   (long)worker->pid, text);
	if (words[0] == NULL)
		goto unknown;
	if (strcmp(words[0], "READY") == 0 && words[1] == NULL) {
		worker_ready(worker);
		return;
	}
	if (!worker_parse_id(words[1], &id))
		goto unknown;
	disp_debug(svc->debug, DISP_DEBUG_COMM, "worker pid %ld of service %s: %s %"
		   G_GUINT64_FORMAT, (long)worker->pid, svc->name, words[0], id);
	if (strcmp(words[0], "TAKEN") == 0 && words[2] == NULL) {
		disp_service_conn_taken(svc, worker, id);
		return;
	}
	if (strcmp(words[0], "CLOSED") == 0 && words[2] == NULL) {
		disp_service_conn_closed(svc, worker, id);
		return;
	}
	if (strcmp(words[0], "REFUSED") == 0) {
		shown = worker_printable(words[2] != NULL ? words[2] : "no reason given");
		disp_service_conn_refused(svc, worker, id, shown);
		return;
	}
unknown:
	shown = worker_printable(text);
	imta_log(IMTA_LOG_WARNING, "worker pid %ld of service %s sent an unknown message: %s",
		 (long)worker->pid, svc->name, shown);
}

/* Read and handle what the worker sent; FALSE once its socket closed. */
static gboolean
worker_read_packets(DispWorker *worker)
{
	char buf[IMTA_HANDOFF_MAX + 1];

	for (guint i = 0; i < WORKERS_PACKETS_PER_WAKE; i++) {
		int passed = -1;
		gssize n = imta_handoff_recv(worker->sock, buf, &passed);

		if (passed >= 0) {
			close(passed);
			imta_log(IMTA_LOG_WARNING, "worker pid %ld of service %s sent a "
				 "descriptor; closed it", (long)worker->pid,
				 worker_service_name(worker));
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return TRUE;
		if (n < 0 && errno == EPROTO) {
			imta_log(IMTA_LOG_WARNING, "worker pid %ld of service %s sent a malformed "
				 "packet; ignored", (long)worker->pid,
				 worker_service_name(worker));
			continue;
		}
		if (n <= 0) {
			disp_debug(worker->service->debug, DISP_DEBUG_COMM,
				   "worker pid %ld of service %s closed its control socket%s%s",
				   (long)worker->pid, worker_service_name(worker),
				   n < 0 ? ": " : "", n < 0 ? g_strerror(errno) : "");
			worker_close_socket(worker);
			worker_set_broken(worker);
			return FALSE;
		}
		worker_handle(worker, buf);
		if (worker->sock < 0)
			return FALSE;
	}
	return TRUE;
}

static gboolean
worker_on_message(gint fd, GIOCondition condition, gpointer user_data)
{
	DispWorker *worker = user_data;
	guint source = worker->sock_source;

	/* worker_close_socket() must not remove the source being dispatched. */
	worker->sock_source = 0;
	if (worker_read_packets(worker)) {
		worker->sock_source = source;
		return G_SOURCE_CONTINUE;
	}
	disp_service_pump(worker->service);
	return G_SOURCE_REMOVE;
}

gboolean
disp_worker_send_conn(DispWorker *worker, DispConn *conn)
{
	char text[IMTA_HANDOFF_MAX + 1];
	int errnum;

	g_snprintf(text, sizeof(text), "CONN %" G_GUINT64_FORMAT " %s %u %s %u", conn->id,
		   conn->local_ip, conn->local_port, conn->remote_ip, conn->remote_port);
	if (worker->sock >= 0 && imta_handoff_send(worker->sock, text, conn->fd)) {
		disp_debug(worker->service->debug, DISP_DEBUG_PACKET,
			   "dispatcher -> worker pid %ld: %s", (long)worker->pid, text);
		disp_debug(worker->service->debug, DISP_DEBUG_COMM,
			   "service %s: connection %" G_GUINT64_FORMAT " to worker pid %ld",
			   worker_service_name(worker), conn->id, (long)worker->pid);
		return TRUE;
	}
	errnum = worker->sock >= 0 ? errno : EPIPE;
	if (errnum == EAGAIN || errnum == EWOULDBLOCK) {
		disp_debug(worker->service->debug, DISP_DEBUG_COMM,
			   "worker pid %ld: control socket full; connection %" G_GUINT64_FORMAT
			   " waits", (long)worker->pid, conn->id);
		errno = errnum;
		return FALSE;
	}
	/* A worker that cannot be told anything cannot be managed. */
	imta_log(IMTA_LOG_ERROR, "worker pid %ld of service %s: cannot send a connection: %s; "
		 "stopping it", (long)worker->pid, worker_service_name(worker),
		 g_strerror(errnum));
	disp_worker_kill(worker);
	errno = errnum;
	return FALSE;
}

void
disp_worker_drain(DispWorker *worker, const char *why)
{
	if (worker->state == DISP_WORKER_DRAINING || worker->state == DISP_WORKER_EXITED)
		return;
	worker->state = DISP_WORKER_DRAINING;
	worker->drained_since = g_get_monotonic_time();
	disp_debug(worker->service->debug, DISP_DEBUG_PROCESS,
		   "worker pid %ld of service %s: DRAIN (%s)", (long)worker->pid,
		   worker_service_name(worker), why);
	if (worker->sock >= 0 && imta_handoff_send(worker->sock, "DRAIN", -1))
		return;
	/* SIGTERM means the same to a worker. */
	if (kill(worker->pid, SIGTERM) < 0 && errno != ESRCH)
		imta_log(IMTA_LOG_WARNING, "cannot signal worker pid %ld: %s", (long)worker->pid,
			 g_strerror(errno));
}

/* ---- starting and ending ----------------------------------------------------- */

static void
worker_on_exit(GPid pid, gint status, gpointer user_data)
{
	DispWorker *worker = user_data;
	DispService *svc = worker->service;
	gint64 lived = g_get_monotonic_time() - worker->started_mono;
	gboolean expected = worker->state == DISP_WORKER_DRAINING && !worker->killed;
	gboolean clean = expected && WIFEXITED(status) && WEXITSTATUS(status) == 0;

	worker->child_watch = 0;
	g_spawn_close_pid(pid);
	/* The pid is reaped: never signal it again.  What the worker said
	 * before it went still counts. */
	worker->state = DISP_WORKER_EXITED;
	worker_set_broken(worker);
	if (worker->sock >= 0 && worker->sock_source != 0)
		worker_read_packets(worker);
	worker_close_socket(worker);
	worker->status = imta_daemon_describe_status(status);
	worker->exited = disp_now();
	if (clean) {
		imta_log(IMTA_LOG_INFO, "worker pid %ld of service %s exited (%s)", (long)pid,
			 svc->name, worker->retire_reason != NULL ? worker->retire_reason :
			 "drained");
	} else if (svc->disp->stopping) {
		imta_log(IMTA_LOG_WARNING, "worker pid %ld of service %s ended with %s", (long)pid,
			 svc->name, worker->status);
	} else {
		g_autofree char *lost = worker->current == 0 ? g_strdup("") :
			g_strdup_printf(" with %u sessions, which are lost", worker->current);

		imta_log(IMTA_LOG_WARNING, "worker pid %ld of service %s died unexpectedly (%s) "
			 "after %" G_GINT64_FORMAT " s%s; see %s", (long)pid, svc->name,
			 worker->status, lived / G_USEC_PER_SEC, lost, svc->log_path);
	}
	if (!clean && !svc->disp->stopping) {
		if (lived < WORKERS_FAST_EXIT * G_USEC_PER_SEC) {
			guint delay;

			svc->fast_failures++;
			delay = MIN(WORKERS_BACKOFF_MAX, 1u << MIN(svc->fast_failures - 1, 6u));
			svc->spawn_not_before = g_get_monotonic_time() + delay * G_USEC_PER_SEC;
			if (svc->fast_failures > 1)
				imta_log(IMTA_LOG_ERROR, "service %s: %u workers in a row exited "
					 "within %d s of their start; next start in %u s (see %s)",
					 svc->name, svc->fast_failures, WORKERS_FAST_EXIT, delay,
					 svc->log_path);
		} else {
			svc->fast_failures = 0;
		}
	}
	g_queue_unlink(&svc->workers, &worker->link);
	g_queue_push_tail_link(&svc->exited, &worker->link);
	disp_service_worker_gone(svc, worker, clean);
}

/* The worker's command line (handoff.h). */
static char **
worker_argv(const DispService *svc)
{
	g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
	g_autofree char *fd = g_strdup_printf("%d", IMTA_HANDOFF_CONTROL_FD);
	g_autofree char *stack = g_strdup_printf("%" G_GINT64_FORMAT, svc->cnf->stacksize);
	guint32 debug = svc->debug & DISP_DEBUG_WORKER_BITS;

	g_strv_builder_add_many(builder, svc->image, "--config", svc->disp->config->dir,
				"--service", svc->name, "--channel", svc->channel,
				"--control-fd", fd, "--log", svc->log_path,
				"--stack-size", stack, NULL);
	if (debug != 0) {
		g_autofree char *mask = g_strdup_printf("0x%x", debug);

		g_strv_builder_add_many(builder, "--debug", mask, NULL);
	}
	return g_strv_builder_end(builder);
}

DispWorker *
disp_worker_spawn(DispService *svc, GError **error)
{
	g_auto(GStrv) argv = worker_argv(svc);
	GSpawnFlags flags = G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDIN_FROM_DEV_NULL;
	int pair[2], log_fd;
	gint source_fds[1], target_fds[1] = { IMTA_HANDOFF_CONTROL_FD };
	DispWorker *worker;
	GPid pid;
	gboolean ok;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
			    "cannot create a control socket: %s", g_strerror(errno));
		return NULL;
	}
	log_fd = open(svc->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (log_fd < 0) {
		imta_log(IMTA_LOG_WARNING, "service %s: cannot open %s: %s; the worker's output is "
			 "lost", svc->name, svc->log_path, g_strerror(errno));
		flags |= G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL;
	}
	source_fds[0] = pair[1];
	ok = g_spawn_async_with_pipes_and_fds(NULL, (const char *const *)argv, NULL, flags,
					      NULL, NULL, -1, log_fd, log_fd, source_fds,
					      target_fds, 1, &pid, NULL, NULL, NULL, error);
	close(pair[1]);
	if (log_fd >= 0)
		close(log_fd);
	if (!ok) {
		close(pair[0]);
		return NULL;
	}
	if (fcntl(pair[0], F_SETFL, fcntl(pair[0], F_GETFL) | O_NONBLOCK) < 0)
		imta_log(IMTA_LOG_WARNING, "control socket of worker pid %ld: %s", (long)pid,
			 g_strerror(errno));
	worker = g_new0(DispWorker, 1);
	worker->service = svc;
	worker->serial = ++svc->worker_serial;
	worker->pid = pid;
	worker->sock = pair[0];
	worker->state = DISP_WORKER_STARTING;
	worker->started = disp_now();
	worker->started_mono = g_get_monotonic_time();
	worker->idle_since = worker->started_mono;
	worker->link.data = worker;
	worker->sock_source = imta_fd_watch_add(worker->sock, G_IO_IN | G_IO_HUP | G_IO_ERR,
					    worker_on_message, worker);
	worker->child_watch = g_child_watch_add(pid, worker_on_exit, worker);
	g_queue_push_tail_link(&svc->workers, &worker->link);
	imta_log(IMTA_LOG_INFO, "service %s: started worker pid %ld (%s)", svc->name, (long)pid,
		 svc->image);
	if ((svc->debug & DISP_DEBUG_PROCESS) != 0) {
		g_autofree char *command = g_strjoinv(" ", argv);

		imta_log(IMTA_LOG_DEBUG, "service %s: worker pid %ld runs %s", svc->name,
			 (long)pid, command);
	}
	return worker;
}

void
disp_worker_free(DispWorker *worker)
{
	if (worker == NULL)
		return;
	if (worker->child_watch != 0) {
		g_source_remove(worker->child_watch);
		/* Still running at the program's end: it was killed; reap it. */
		while (waitpid(worker->pid, NULL, 0) < 0 && errno == EINTR)
			;
		g_spawn_close_pid(worker->pid);
	}
	worker_close_socket(worker);
	g_free(worker->status);
	g_free(worker);
}

/* ---- choosing, starting, retiring --------------------------------------------- */

/* Is `a` a better choice than `b` (NULL: none yet)?  Workers are filled
 * one at a time up to MIN_CONNS, the busiest of them first, so that a
 * light load keeps few workers busy: sessions that share a worker share
 * its threads and its group commits.  Once every worker is busy enough
 * the least busy gets the connection.  Ties go to the oldest. */
static gboolean
worker_better(const DispWorker *a, const DispWorker *b, guint min_conns)
{
	gboolean a_fills = a->current < min_conns;

	if (b == NULL)
		return TRUE;
	if (a_fills != (b->current < min_conns))
		return a_fills;
	return a_fills ? a->current > b->current : a->current < b->current;
}

DispWorker *
disp_workers_choose(DispService *svc)
{
	DispWorker *best = NULL;

	for (GList *link = svc->workers.head; link != NULL; link = link->next) {
		DispWorker *worker = link->data;

		if (worker->state != DISP_WORKER_READY || worker->broken ||
		    worker->current >= (guint)svc->cnf->max_conns)
			continue;
		if (worker_better(worker, best, (guint)svc->cnf->min_conns))
			best = worker;
	}
	return best;
}

gint64
disp_workers_room(DispService *svc)
{
	const ImtaDispatcherService *cnf = svc->cnf;
	gint64 room = 0;
	guint active = 0;

	for (GList *link = svc->workers.head; link != NULL; link = link->next) {
		DispWorker *worker = link->data;

		if (!worker_is_active(worker))
			continue;
		active++;
		room += MAX(0, cnf->max_conns - (gint64)worker->current);
	}
	if (active < cnf->max_procs)
		room += (cnf->max_procs - active) * cnf->max_conns;
	/* Accepted connections not yet given to a worker will need room. */
	return room - (svc->handoffs - svc->handing);
}

static gboolean
worker_on_backoff(gpointer user_data)
{
	DispService *svc = user_data;

	svc->backoff_source = 0;
	disp_service_pump(svc);
	return G_SOURCE_REMOVE;
}

static void
worker_schedule_backoff(DispService *svc)
{
	gint64 wait = svc->spawn_not_before - g_get_monotonic_time();

	if (svc->backoff_source != 0 || wait <= 0)
		return;
	svc->backoff_source = g_timeout_add((guint)(wait / 1000) + 1, worker_on_backoff, svc);
}

/* How many workers the service should start now. */
static guint
workers_wanted(DispService *svc)
{
	const ImtaDispatcherService *cnf = svc->cnf;
	guint active = 0, starting = 0, busy = 0, room = 0;
	guint queued = svc->queue.length;
	guint max_conns = (guint)cnf->max_conns;

	for (GList *link = svc->workers.head; link != NULL; link = link->next) {
		DispWorker *worker = link->data;

		/* One whose control socket failed is replaced once it is reaped
		 * (its exit status decides the backoff), not before. */
		if (worker->broken) {
			active++;
			starting++;
			continue;
		}
		if (!worker_is_active(worker))
			continue;
		active++;
		if (worker->state == DISP_WORKER_STARTING) {
			starting++;
			continue;
		}
		if (worker->current >= (guint)cnf->min_conns)
			busy++;
		if (worker->current < max_conns)
			room += max_conns - worker->current;
	}
	if (active >= (guint)cnf->max_procs)
		return 0;
	if (active < (guint)cnf->min_procs)
		return (guint)cnf->min_procs - active;
	/* Connections wait that neither the ready workers nor those starting
	 * can take. */
	if (queued > room + starting * max_conns) {
		guint need = (queued - room - starting * max_conns + max_conns - 1) / max_conns;

		return MIN(need, (guint)cnf->max_procs - active);
	}
	/* Every worker has its MIN_CONNS: one more to spread the load. */
	if (active > 0 && starting == 0 && busy == active)
		return 1;
	return 0;
}

void
disp_workers_spawn_needed(DispService *svc)
{
	guint need;

	if (svc->disp->stopping)
		return;
	need = workers_wanted(svc);
	if (need == 0)
		return;
	if (g_get_monotonic_time() < svc->spawn_not_before) {
		worker_schedule_backoff(svc);
		return;
	}
	/* While the program keeps failing, one try at a time. */
	if (svc->fast_failures > 0)
		need = 1;
	for (guint i = 0; i < need; i++) {
		g_autoptr(GError) error = NULL;

		if (disp_worker_spawn(svc, &error) != NULL)
			continue;
		svc->fast_failures++;
		svc->spawn_not_before = g_get_monotonic_time() +
			MIN(WORKERS_BACKOFF_MAX, 1u << MIN(svc->fast_failures - 1, 6u)) *
			G_USEC_PER_SEC;
		imta_log(IMTA_LOG_ERROR, "service %s: cannot start the worker program %s: %s",
			 svc->name, svc->image, error->message);
		worker_schedule_backoff(svc);
		return;
	}
}

static void
worker_retire(DispWorker *worker, const char *reason)
{
	worker->state = DISP_WORKER_RETIRING;
	worker->retired_since = g_get_monotonic_time();
	worker->retire_reason = reason;
	imta_log(IMTA_LOG_INFO, "worker pid %ld of service %s retires (%s) with %u sessions",
		 (long)worker->pid, worker_service_name(worker), reason, worker->current);
	if (worker->current == 0)
		disp_worker_drain(worker, reason);
}

/* Why a ready worker should retire, or NULL. */
static const char *
worker_retire_reason(const DispWorker *worker, gint64 now, guint active)
{
	const ImtaDispatcherService *cnf = worker->service->cnf;

	if (worker->assigned >= (guint64)cnf->max_life_conns)
		return "served MAX_LIFE_CONNS connections";
	if (now - worker->started_mono >= cnf->max_life_time * G_USEC_PER_SEC)
		return "reached MAX_LIFE_TIME";
	if (worker->current == 0 && cnf->max_idle_time > 0 && active > (guint)cnf->min_procs &&
	    now - worker->idle_since >= cnf->max_idle_time * G_USEC_PER_SEC)
		return "idle for MAX_IDLE_TIME";
	return NULL;
}

void
disp_workers_check(DispWorker *worker)
{
	DispService *svc = worker->service;
	const char *reason;
	guint active = 0;

	if (worker->state == DISP_WORKER_RETIRING) {
		if (worker->current == 0)
			disp_worker_drain(worker, worker->retire_reason);
		return;
	}
	if (worker->state != DISP_WORKER_READY || worker->broken || svc->disp->stopping)
		return;
	for (GList *link = svc->workers.head; link != NULL; link = link->next)
		active += worker_is_active(link->data) ? 1 : 0;
	reason = worker_retire_reason(worker, g_get_monotonic_time(), active);
	if (reason != NULL && workers_shutting_down(svc) < (guint)svc->cnf->max_shutdown)
		worker_retire(worker, reason);
}

/* A retired worker whose sessions never end: SIGTERM makes it close them
 * 30 s later; SIGKILL if even that does not end it. */
static void
workers_check_draining(DispWorker *worker, gint64 now)
{
	gint64 draining = now - worker->drained_since;

	if (worker->broken)
		return;
	if (!worker->termed && draining >= WORKERS_DRAIN_GRACE * G_USEC_PER_SEC) {
		imta_log(IMTA_LOG_WARNING, "worker pid %ld of service %s still has %u sessions "
			 "%d s after DRAIN: sending SIGTERM", (long)worker->pid,
			 worker_service_name(worker), worker->current, WORKERS_DRAIN_GRACE);
		worker->termed = TRUE;
		if (kill(worker->pid, SIGTERM) < 0 && errno != ESRCH)
			imta_log(IMTA_LOG_WARNING, "cannot signal worker pid %ld: %s",
				 (long)worker->pid, g_strerror(errno));
	} else if (draining >= (WORKERS_DRAIN_GRACE + WORKERS_TERM_GRACE) * G_USEC_PER_SEC) {
		imta_log(IMTA_LOG_ERROR, "worker pid %ld of service %s did not exit after SIGTERM: "
			 "killing it", (long)worker->pid, worker_service_name(worker));
		disp_worker_kill(worker);
	}
}

void
disp_workers_tick(DispService *svc, gint64 now)
{
	guint active = 0, shutting = workers_shutting_down(svc);

	if (svc->disp->stopping)
		return;
	for (GList *link = svc->workers.head; link != NULL; link = link->next)
		active += worker_is_active(link->data) ? 1 : 0;
	for (GList *link = svc->workers.head; link != NULL; link = link->next) {
		DispWorker *worker = link->data;
		const char *reason;

		if (worker->broken && !worker->killed &&
		    now - worker->broken_since >= WORKERS_EXIT_GRACE * G_USEC_PER_SEC) {
			imta_log(IMTA_LOG_ERROR, "worker pid %ld of service %s closed its control "
				 "socket %d s ago and still runs: killing it", (long)worker->pid,
				 svc->name, WORKERS_EXIT_GRACE);
			disp_worker_kill(worker);
		}
		switch (worker->state) {
		case DISP_WORKER_STARTING:
			if (worker->broken ||
			    now - worker->started_mono < WORKERS_START_TIMEOUT * G_USEC_PER_SEC)
				break;
			imta_log(IMTA_LOG_ERROR, "worker pid %ld of service %s did not become "
				 "ready within %d s: killing it (see %s)", (long)worker->pid, svc->name,
				 WORKERS_START_TIMEOUT, svc->log_path);
			disp_worker_kill(worker);
			break;
		case DISP_WORKER_READY:
			if (worker->broken || shutting >= (guint)svc->cnf->max_shutdown)
				break;
			reason = worker_retire_reason(worker, now, active);
			if (reason == NULL)
				break;
			worker_retire(worker, reason);
			shutting++;
			active--;
			break;
		case DISP_WORKER_RETIRING:
			if (now - worker->retired_since >= WORKERS_RETIRE_GRACE * G_USEC_PER_SEC)
				disp_worker_drain(worker,
						  "its sessions outlasted the retirement grace");
			break;
		case DISP_WORKER_DRAINING:
			workers_check_draining(worker, now);
			break;
		case DISP_WORKER_EXITED:
			break;
		}
	}
}

void
disp_workers_drain_all(DispService *svc, const char *why)
{
	for (GList *link = svc->workers.head; link != NULL; link = link->next)
		disp_worker_drain(link->data, why);
}

void
disp_workers_kill_all(DispService *svc)
{
	for (GList *link = svc->workers.head; link != NULL; link = link->next)
		disp_worker_kill(link->data);
}
