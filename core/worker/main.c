/*
 * main.c - imta-worker: serves the connections the dispatcher hands over
 * for one service, with the slave program of the service's channel.
 *
 * The dispatcher starts it with the arguments of dispatcher/handoff.h and
 * one end of a socketpair as descriptor 3.  The main thread reads that
 * control socket (CONN, DRAIN) and handles signals; the connections live
 * on the event-loop threads of loops.c, blocking work on a thread pool.
 *
 * The first event loop reads the control socket too, and handles what
 * it reads itself but DRAIN, which it passes on: a connection then
 * reaches its loop without waking the main thread on the way, one thread
 * wake-up less before the greeting.  The main thread watches the socket
 * as well, because that loop can be busy with blocking work, but steps
 * aside for a while each time it finds the loop free; whichever thread
 * reads a message first handles it.  TAKEN and REFUSED come from the
 * thread that read the CONN, CLOSED from the connection's loop (a packet
 * each, so threads do not interleave them); TAKEN is sent before the
 * connection starts, so it always precedes its CLOSED.
 *
 * Retiring: DRAIN, the end of the control socket (the dispatcher is
 * gone), SIGTERM or SIGINT stop new connections and ask every session to
 * end at its next safe point (ops->drain); the worker exits 0 when the
 * last one has closed.  After a signal, sessions still open 30 seconds
 * later are closed.  SIGHUP reopens the log and flushes the directory
 * cache.
 *
 * Exit statuses: 0 after retiring, 1 when blocking work never ended at
 * shutdown, 64 for a wrong command line, 69 when the event threads
 * cannot start, 75 when the queue cannot be opened, 78 when the
 * configuration or the channel's binding is unusable.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>
#include <glib-unix.h>

#include <imta/fd_watch.h>
#include <imta/imta.h>
#include <imta/queue.h>
#include <imta/jc_protocol.h>
#include <imta/mail_log.h>
#include "dispatcher/handoff.h"
#include "conn_private.h"
#include "loops.h"
#include "tls.h"

#define EXIT_USAGE 64
#define EXIT_UNAVAILABLE 69
#define EXIT_TEMPFAIL 75
#define EXIT_CONFIG 78

#define WORKER_MIN_LOOPS 2
#define WORKER_MAX_LOOPS 8
#define WORKER_POOL_THREADS 32
/* Sessions left this long after SIGTERM are closed; blocking work still
 * running that much later is given up. */
#define WORKER_SHUTDOWN_GRACE 30
#define WORKER_GIVE_UP_GRACE 10
/* The stack-size range of dispatcher.cnf STACKSIZE, and the least the
 * event threads are given (TLS handshakes run on them). */
#define WORKER_STACK_MIN 65536
#define WORKER_STACK_MAX 1073741824
#define WORKER_LOOP_STACK_FLOOR (256 * 1024)
/* How long the main thread leaves the control socket to a free first
 * loop before it looks again, in case that loop has since blocked. */
#define WORKER_CONTROL_ASIDE_MS 20

typedef struct {
	WorkerContext ctx;
	ImtaConfig *config;
	WorkerLoops *loops;
	GMainLoop *main_loop;
	int control_fd;             /* open to the end: loop threads send on it */
	gint control_open;          /* atomic: the dispatcher has not gone */
	guint control_watch;        /* the main thread's, 0 while it steps aside */
	guint control_aside;        /* the timer that ends a step aside */
	GSource *loop_control_watch; /* the first loop's */
	gint loop_reads_control;    /* atomic: the first loop's watch is on */
	guint signal_sources[3];
	guint shutdown_timer;
	gboolean shutdown_expired;
	gint live;                  /* atomic: connections taken and not yet closed */
	gboolean draining;          /* main thread; ctx.draining is the shared copy */
} Worker;

/* ---- the control socket -------------------------------------------------- */

static void
worker_send(Worker *w, const char *text)
{
	if (!g_atomic_int_get(&w->control_open))
		return;
	if (!imta_handoff_send(w->control_fd, text, -1))
		imta_log(errno == EPIPE ? IMTA_LOG_INFO : IMTA_LOG_WARNING,
			 "cannot tell the dispatcher \"%s\": %s", text, g_strerror(errno));
}

static void
worker_sendf(Worker *w, const char *format, ...) G_GNUC_PRINTF(2, 3);
static void
worker_sendf(Worker *w, const char *format, ...)
{
	va_list args;
	g_autofree char *text = NULL;

	va_start(args, format);
	text = g_strdup_vprintf(format, args);
	va_end(args);
	worker_send(w, text);
}

static void
worker_maybe_exit(Worker *w)
{
	if (w->draining && g_atomic_int_get(&w->live) == 0)
		g_main_loop_quit(w->main_loop);
}

static gboolean
worker_maybe_exit_main(gpointer data)
{
	worker_maybe_exit(data);
	return G_SOURCE_REMOVE;
}

/* Any thread: queue `func` for the main thread, never run it here
 * (g_main_context_invoke would, whenever the main loop is not running). */
static void
worker_run_on_main(GSourceFunc func, gpointer data, GDestroyNotify destroy)
{
	GSource *source = g_idle_source_new();

	g_source_set_priority(source, G_PRIORITY_DEFAULT);
	g_source_set_callback(source, func, data, destroy);
	g_source_attach(source, NULL);
	g_source_unref(source);
}

/* Any thread: a connection counted in `live` is gone.  The main thread
 * hears of it only when it may be waiting for the last one.  The count
 * drops before `draining` is read, and worker_drain sets `draining`
 * before it reads the count, so one of the two always sees the end. */
static void
worker_release(Worker *w)
{
	if (g_atomic_int_dec_and_test(&w->live) && g_atomic_int_get(&w->ctx.draining))
		worker_run_on_main(worker_maybe_exit_main, w, NULL);
}

static gboolean
worker_shutdown_give_up(gpointer data)
{
	Worker *w = data;
	guint live = (guint)g_atomic_int_get(&w->live);

	imta_log(IMTA_LOG_ERROR, "%u connection%s still wait%s for blocking work %d s after "
		 "they were closed; exiting without them", live, live == 1 ? "" : "s",
		 live == 1 ? "s" : "", WORKER_GIVE_UP_GRACE);
	/* Pool threads are still inside plugin code: no orderly unload. */
	_exit(1);
}

static gboolean
worker_shutdown_timeout(gpointer data)
{
	Worker *w = data;
	guint live = (guint)g_atomic_int_get(&w->live);

	w->shutdown_timer = 0;
	w->shutdown_expired = TRUE;
	imta_log(IMTA_LOG_NOTICE, "%u connection%s still open %d s after the shutdown began: "
		 "closing", live, live == 1 ? "" : "s", WORKER_SHUTDOWN_GRACE);
	worker_loops_abort(w->loops);
	g_timeout_add_seconds(WORKER_GIVE_UP_GRACE, worker_shutdown_give_up, w);
	return G_SOURCE_REMOVE;
}

/* Take no more connections and end the sessions at their next safe
 * point; `bounded`: close what is left after WORKER_SHUTDOWN_GRACE. */
static void
worker_drain(Worker *w, const char *why, gboolean bounded)
{
	if (!w->draining) {
		guint live = (guint)g_atomic_int_get(&w->live);

		w->draining = TRUE;
		g_atomic_int_set(&w->ctx.draining, 1);
		imta_log(IMTA_LOG_INFO, "retiring (%s) with %u open connection%s", why, live,
			 live == 1 ? "" : "s");
		worker_loops_drain(w->loops);
	}
	if (bounded && w->shutdown_timer == 0 && !w->shutdown_expired)
		w->shutdown_timer = g_timeout_add_seconds(WORKER_SHUTDOWN_GRACE,
							  worker_shutdown_timeout, w);
	worker_maybe_exit(w);
}

/* Loop thread: a connection has ended. */
static void
worker_on_ended(guint64 id, gpointer user_data)
{
	Worker *w = user_data;

	worker_sendf(w, "CLOSED %" G_GUINT64_FORMAT, id);
	worker_release(w);
}

static gboolean
worker_parse_port(const char *text, guint16 *port_r)
{
	guint64 value;

	if (!g_ascii_string_to_unsigned(text, 10, 0, G_MAXUINT16, &value, NULL))
		return FALSE;
	*port_r = (guint16)value;
	return TRUE;
}

/* The reason a passed descriptor cannot be served, or NULL. */
static const char *
worker_check_socket(int fd)
{
	int type = 0;
	socklen_t len = sizeof(type);
	int flags;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM)
		return "the descriptor is not a stream socket";
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return "cannot make the socket non-blocking";
	return NULL;
}

/* CONN <id> <local-ip> <local-port> <remote-ip> <remote-port>, with a
 * socket.  The main thread or the first loop. */
static void
worker_on_conn(Worker *w, const char *text, int fd)
{
	g_auto(GStrv) words = g_strsplit(text, " ", 0);
	guint64 id;
	guint16 local_port, remote_port;
	const char *refusal = NULL;
	ImtaConn *conn;

	if (g_strv_length(words) < 2 ||
	    !g_ascii_string_to_unsigned(words[1], 10, 0, G_MAXUINT64, &id, NULL)) {
		imta_log(IMTA_LOG_WARNING, "ignoring a CONN message without an id: \"%s\"", text);
		if (fd >= 0)
			close(fd);
		return;
	}
	/* Counted before `draining` is read: see worker_release. */
	g_atomic_int_inc(&w->live);
	if (g_strv_length(words) != 6 || !worker_parse_port(words[3], &local_port) ||
	    !worker_parse_port(words[5], &remote_port))
		refusal = "malformed CONN message";
	else if (fd < 0)
		refusal = "no socket attached";
	else if (g_atomic_int_get(&w->ctx.draining))
		refusal = "worker is retiring";
	else
		refusal = worker_check_socket(fd);
	conn = refusal == NULL ? worker_conn_new(&w->ctx, id, fd, words[2], local_port, words[4],
						 remote_port)
			       : NULL;
	if (refusal == NULL && conn == NULL)
		refusal = "malformed address";
	if (refusal != NULL) {
		imta_log(IMTA_LOG_WARNING, "refusing connection %" G_GUINT64_FORMAT ": %s",
			 id, refusal);
		if (fd >= 0)
			close(fd);
		worker_sendf(w, "REFUSED %" G_GUINT64_FORMAT " %s", id, refusal);
		worker_release(w);
		return;
	}
	worker_sendf(w, "TAKEN %" G_GUINT64_FORMAT, id);
	worker_loop_adopt(worker_loops_assign(w->loops), conn);
}

static gboolean
worker_drain_asked(gpointer data)
{
	worker_drain(data, "the dispatcher asked", FALSE);
	return G_SOURCE_REMOVE;
}

/* The main thread or the first loop; a drain is the main thread's
 * business. */
static void
worker_on_message(Worker *w, const char *text, int fd, gboolean on_main)
{
	g_autofree char *shown = NULL;

	if (g_str_has_prefix(text, "CONN ")) {
		worker_on_conn(w, text, fd);
		return;
	}
	if (fd >= 0)
		close(fd);
	if (strcmp(text, "DRAIN") == 0) {
		if (on_main)
			worker_drain_asked(w);
		else
			worker_run_on_main(worker_drain_asked, w, NULL);
		return;
	}
	shown = g_strescape(text, NULL);
	imta_log(IMTA_LOG_WARNING, "ignoring an unknown control message \"%s\"", shown);
}

/* Handle the next control message, if another thread has not taken it;
 * FALSE when the socket has ended (the dispatcher is gone) or failed. */
static gboolean
worker_read_control(Worker *w, int fd, gboolean on_main)
{
	char buf[IMTA_HANDOFF_MAX + 1];
	int passed = -1;
	gssize n = imta_handoff_recv(fd, buf, &passed);

	if (n > 0) {
		worker_on_message(w, buf, passed, on_main);
		return TRUE;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return TRUE;
	if (n < 0 && errno == EPROTO) {
		imta_log(IMTA_LOG_WARNING, "ignoring a truncated control message or one with "
			 "several descriptors");
		return TRUE;
	}
	if (on_main && n < 0 && errno != ECONNRESET)
		imta_log(IMTA_LOG_ERROR, "control socket: %s", g_strerror(errno));
	return FALSE;
}

static gboolean worker_on_control(gint fd, GIOCondition condition, gpointer data);

static gboolean
worker_control_rearm(gpointer data)
{
	Worker *w = data;

	w->control_aside = 0;
	w->control_watch = imta_fd_watch_add(w->control_fd, G_IO_IN | G_IO_HUP | G_IO_ERR,
					     worker_on_control, w);
	return G_SOURCE_REMOVE;
}

/* A free first loop reads the message too, and starts a connection it
 * reads without a hand-over between threads: the main thread then stops
 * watching for a while, rather than wake for every connection.  Not
 * when the loop runs blocking work, nor once its watch has ended. */
static gboolean
worker_control_step_aside(Worker *w, GIOCondition condition)
{
	if ((condition & (G_IO_HUP | G_IO_ERR)) || !g_atomic_int_get(&w->loop_reads_control) ||
	    !worker_loops_first_free(w->loops))
		return FALSE;
	w->control_watch = 0;
	w->control_aside = g_timeout_add(WORKER_CONTROL_ASIDE_MS, worker_control_rearm, w);
	return TRUE;
}

static gboolean
worker_on_control(gint fd, GIOCondition condition, gpointer data)
{
	Worker *w = data;

	if (worker_control_step_aside(w, condition))
		return G_SOURCE_REMOVE;
	if (worker_read_control(w, fd, TRUE))
		return G_SOURCE_CONTINUE;
	w->control_watch = 0;
	g_atomic_int_set(&w->control_open, 0);
	worker_drain(w, "the dispatcher is gone", FALSE);
	return G_SOURCE_REMOVE;
}

/* The first loop: its watch ends with the socket, the main thread's
 * handles the end. */
static gboolean
worker_on_control_loop(gint fd, GIOCondition condition, gpointer data)
{
	Worker *w = data;

	if (worker_read_control(w, fd, FALSE))
		return G_SOURCE_CONTINUE;
	g_atomic_int_set(&w->loop_reads_control, 0);
	return G_SOURCE_REMOVE;
}

/* ---- signals ------------------------------------------------------------- */

static gboolean
worker_on_stop_signal(gpointer data)
{
	worker_drain(data, "stop signal", TRUE);
	return G_SOURCE_CONTINUE;
}

static gboolean
worker_on_sighup(gpointer data)
{
	Worker *w = data;

	imta_log_reopen();
	imta_mail_log_reopen();
	/* imsimta cache -flush: directory changes show at once. */
	if (w->ctx.config != NULL && w->ctx.config->directory != NULL)
		imta_directory_flush(w->ctx.config->directory);
	imta_log(IMTA_LOG_INFO, "log reopened, directory cache flushed");
	return G_SOURCE_CONTINUE;
}

/* ---- start-up ------------------------------------------------------------- */

typedef struct {
	char *config_dir;
	char *service;
	char *channel;
	int control_fd;
	char *log_path;
	char *debug;
	char *stack_size;
} WorkerArgs;

static void
worker_args_clear(WorkerArgs *args)
{
	g_free(args->config_dir);
	g_free(args->service);
	g_free(args->channel);
	g_free(args->log_path);
	g_free(args->debug);
	g_free(args->stack_size);
}

static gboolean
worker_parse_args(WorkerArgs *args, int *argc, char ***argv)
{
	const GOptionEntry entries[] = {
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &args->config_dir,
		  "configuration directory (default: $IMTA_CONFIG, else the installed one)", "DIR" },
		{ "service", 0, 0, G_OPTION_ARG_STRING, &args->service,
		  "the dispatcher service, e.g. SMTP", "NAME" },
		{ "channel", 0, 0, G_OPTION_ARG_STRING, &args->channel,
		  "the channel whose slave program serves the connections", "NAME" },
		{ "control-fd", 0, 0, G_OPTION_ARG_INT, &args->control_fd,
		  "the dispatcher's socket (default 3)", "FD" },
		{ "log", 0, 0, G_OPTION_ARG_FILENAME, &args->log_path,
		  "log file (default: standard error)", "FILE" },
		{ "debug", 'd', 0, G_OPTION_ARG_STRING, &args->debug,
		  "debug mask (decimal or 0x hexadecimal); not 0 logs debugging detail", "MASK" },
		{ "stack-size", 0, 0, G_OPTION_ARG_STRING, &args->stack_size,
		  "stack of the worker's threads, in bytes (dispatcher.cnf STACKSIZE)", "BYTES" },
		{ NULL }
	};
	g_autoptr(GOptionContext) context = g_option_context_new(NULL);
	g_autoptr(GError) error = NULL;

	args->control_fd = IMTA_HANDOFF_CONTROL_FD;
	g_option_context_set_summary(context,
		"Serve the connections the dispatcher passes over its control socket with the "
		"slave program of the service's channel.  Started by imta-dispatcher.");
	g_option_context_add_main_entries(context, entries, NULL);
	if (!g_option_context_parse(context, argc, argv, &error)) {
		fprintf(stderr, "imta-worker: %s\n", error->message);
		return FALSE;
	}
	if (args->service == NULL || args->channel == NULL || *argc > 1) {
		fprintf(stderr, "imta-worker: %s\n", *argc > 1 ? "unexpected arguments"
			: "--service NAME and --channel NAME are required");
		return FALSE;
	}
	if (args->control_fd < 0) {
		fprintf(stderr, "imta-worker: --control-fd: expected a descriptor number, got %d\n",
			args->control_fd);
		return FALSE;
	}
	return TRUE;
}

/* --debug MASK: any bit on means debugging detail in the log. */
static gboolean
worker_parse_debug(const char *text, gboolean *debug_r)
{
	guint64 mask;
	gboolean hex = g_str_has_prefix(text, "0x") || g_str_has_prefix(text, "0X");

	if (!g_ascii_string_to_unsigned(hex ? text + 2 : text, hex ? 16 : 10, 0, G_MAXUINT64,
					&mask, NULL)) {
		fprintf(stderr, "imta-worker: --debug: expected a number, got \"%s\"\n", text);
		return FALSE;
	}
	*debug_r = mask != 0;
	return TRUE;
}

static gboolean
worker_parse_stack(const char *text, gsize *size_r)
{
	guint64 size;

	if (text == NULL) {
		*size_r = 0;
		return TRUE;
	}
	if (!g_ascii_string_to_unsigned(text, 10, WORKER_STACK_MIN, WORKER_STACK_MAX, &size,
					NULL)) {
		fprintf(stderr, "imta-worker: --stack-size: expected bytes between %d and %d, "
			"got \"%s\"\n", WORKER_STACK_MIN, WORKER_STACK_MAX, text);
		return FALSE;
	}
	*size_r = (gsize)size;
	return TRUE;
}

/* Threads this program does not create itself (the blocking pool's, made
 * by GLib) take the process default; set it before any thread exists. */
static void
worker_set_default_stack(gsize size)
{
#ifdef __GLIBC__
	pthread_attr_t attr;
	int rc;

	if (size == 0)
		return;
	pthread_attr_init(&attr);
	rc = pthread_attr_setstacksize(&attr, size);
	if (rc == 0)
		rc = pthread_setattr_default_np(&attr);
	if (rc != 0)
		imta_log(IMTA_LOG_WARNING, "cannot set the pool threads' stack to %" G_GSIZE_FORMAT
			 " bytes: %s", size, g_strerror(rc));
	pthread_attr_destroy(&attr);
#else
	(void)size;
#endif
}

static void
worker_open_log(const char *path)
{
	g_autoptr(GError) error = NULL;

	if (path == NULL || strcmp(path, "-") == 0)
		return;
	if (!imta_log_open("imta-worker", path, &error))
		imta_log(IMTA_LOG_WARNING, "%s; logging to standard error", error->message);
}

/* The service's channel and its plugin's slave program, or NULL after
 * logging why and what to change. */
static const ImtaSlaveOps *
worker_find_slave(const ImtaConfig *config, const char *service, const char *name,
		  const ImtaChannel **channel_r)
{
	const ImtaChannel *channel = imta_cnf_channel_by_name(config->cnf, name);
	const ImtaSlaveOps *ops;

	if (channel == NULL) {
		imta_log(IMTA_LOG_ERROR, "service %s: no channel %s in %s; name an existing channel "
			 "in PARAMETER=CHANNEL= of [SERVICE=%s] in dispatcher.cnf", service, name,
			 config->cnf->path, service);
		return NULL;
	}
	if (channel->plugin == NULL) {
		imta_plugin_registry_log_refusals(config->plugins);
		imta_log(IMTA_LOG_ERROR, "service %s: channel %s is bound to no plugin, so nothing "
			 "can serve its connections; give it a keyword of a plugin with a slave "
			 "program (e.g. smtp) in imta.cnf, or name another channel in "
			 "PARAMETER=CHANNEL= of [SERVICE=%s] in dispatcher.cnf", service, name,
			 service);
		return NULL;
	}
	ops = channel->plugin->slave;
	if (ops == NULL || ops->open == NULL || ops->input == NULL) {
		imta_log(IMTA_LOG_ERROR, "service %s: plugin %s of channel %s has %s slave program; "
			 "name a channel whose plugin serves connections (imsimta plugin-list shows "
			 "them) in PARAMETER=CHANNEL= of [SERVICE=%s] in dispatcher.cnf", service,
			 channel->plugin->name, name, ops == NULL ? "no" : "an incomplete", service);
		return NULL;
	}
	*channel_r = channel;
	return ops;
}

static guint
worker_loop_count(void)
{
	return CLAMP(g_get_num_processors(), WORKER_MIN_LOOPS, WORKER_MAX_LOOPS);
}

/* Configuration, plugin, queue, TLS: an exit status, 0 when all is set. */
static int
worker_setup(Worker *w, const WorkerArgs *args)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *notify = NULL;

	w->config = imta_config_load(imta_config_dir_choose(args->config_dir),
				     IMTA_CONFIG_LOAD_PLUGINS | IMTA_CONFIG_OPEN_DIRECTORY,
				     NULL, &error);
	if (w->config == NULL) {
		imta_log(IMTA_LOG_ERROR, "%s", error->message);
		return EXIT_CONFIG;
	}
	imta_mail_log_init(w->config);
	w->ctx.config = w->config;
	w->ctx.service = args->service;
	w->ctx.ops = worker_find_slave(w->config, args->service, args->channel, &w->ctx.channel);
	if (w->ctx.ops == NULL)
		return EXIT_CONFIG;
	if (!imta_plugin_registry_init(w->config->plugins, w->config, &error)) {
		imta_log(IMTA_LOG_ERROR, "%s", error->message);
		return EXIT_CONFIG;
	}
	notify = g_build_filename(w->config->tailor->run_dir, IMTA_JC_NOTIFY_SOCKET, NULL);
	w->ctx.queue = imta_queue_open(w->config->tailor->queue_dir, w->config->cnf, notify,
				       &error);
	if (w->ctx.queue == NULL) {
		imta_log(IMTA_LOG_ERROR, "cannot open the queue: %s", error->message);
		return EXIT_TEMPFAIL;
	}
	w->ctx.tls = worker_tls_new(w->config, &error);
	if (error != NULL)
		imta_log(IMTA_LOG_ERROR, "TLS disabled, STARTTLS is not offered: %s",
			 error->message);
	return 0;
}

static int
worker_start(Worker *w, gsize stack_size)
{
	g_autoptr(GError) error = NULL;
	guint loops = worker_loop_count();

	w->ctx.pool = g_thread_pool_new(worker_conn_pool_run, NULL, WORKER_POOL_THREADS, FALSE,
					&error);
	if (w->ctx.pool == NULL) {
		imta_log(IMTA_LOG_ERROR, "cannot start the blocking pool: %s", error->message);
		return EXIT_UNAVAILABLE;
	}
	if (stack_size > 0 && stack_size < WORKER_LOOP_STACK_FLOOR)
		stack_size = WORKER_LOOP_STACK_FLOOR;
	w->loops = worker_loops_new(loops, stack_size, worker_on_ended, w, &error);
	if (w->loops == NULL) {
		imta_log(IMTA_LOG_ERROR, "%s", error->message);
		return EXIT_UNAVAILABLE;
	}
	w->main_loop = g_main_loop_new(NULL, FALSE);
	w->control_watch = imta_fd_watch_add(w->control_fd, G_IO_IN | G_IO_HUP | G_IO_ERR,
					 worker_on_control, w);
	w->loop_control_watch = imta_fd_watch_attach(worker_loops_first_context(w->loops),
						     w->control_fd,
						     G_IO_IN | G_IO_HUP | G_IO_ERR,
						     worker_on_control_loop, w);
	g_atomic_int_set(&w->loop_reads_control, 1);
	w->signal_sources[0] = g_unix_signal_add(SIGTERM, worker_on_stop_signal, w);
	w->signal_sources[1] = g_unix_signal_add(SIGINT, worker_on_stop_signal, w);
	w->signal_sources[2] = g_unix_signal_add(SIGHUP, worker_on_sighup, w);
	imta_log(IMTA_LOG_INFO, "service %s, channel %s (plugin %s %s): %u event threads%s",
		 w->ctx.service, w->ctx.channel->name, w->ctx.channel->plugin->name,
		 w->ctx.channel->plugin->version, loops,
		 w->ctx.tls != NULL ? ", TLS available" : "");
	worker_send(w, "READY");
	return 0;
}

static void
worker_cleanup(Worker *w)
{
	if (w->control_watch != 0)
		g_source_remove(w->control_watch);
	if (w->control_aside != 0)
		g_source_remove(w->control_aside);
	if (w->loop_control_watch != NULL) {
		g_source_destroy(w->loop_control_watch);
		g_clear_pointer(&w->loop_control_watch, g_source_unref);
	}
	for (guint i = 0; i < G_N_ELEMENTS(w->signal_sources); i++)
		if (w->signal_sources[i] != 0)
			g_source_remove(w->signal_sources[i]);
	if (w->shutdown_timer != 0)
		g_source_remove(w->shutdown_timer);
	if (w->ctx.pool != NULL)
		g_thread_pool_free(w->ctx.pool, FALSE, TRUE);
	worker_loops_free(w->loops);
	g_clear_pointer(&w->main_loop, g_main_loop_unref);
	worker_tls_free(w->ctx.tls);
	g_clear_pointer(&w->ctx.queue, imta_queue_close);
	imta_mail_log_close();
	g_clear_pointer(&w->config, imta_config_free);
	if (w->control_fd >= 0)
		close(w->control_fd);
}

int
main(int argc, char **argv)
{
	WorkerArgs args = { NULL };
	Worker w = { .control_fd = -1 };
	gboolean debug = FALSE;
	gsize stack_size = 0;
	int status;

	g_set_prgname("imta-worker");
	if (!worker_parse_args(&args, &argc, &argv) ||
	    (args.debug != NULL && !worker_parse_debug(args.debug, &debug)) ||
	    !worker_parse_stack(args.stack_size, &stack_size)) {
		worker_args_clear(&args);
		return EXIT_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	umask(027);
	worker_set_default_stack(stack_size);
	imta_log_open("imta-worker", NULL, NULL);
	if (debug)
		imta_log_set_level(IMTA_LOG_DEBUG);
	worker_open_log(args.log_path);
	w.control_fd = args.control_fd;
	w.control_open = 1;
	status = worker_setup(&w, &args);
	if (status == 0)
		status = worker_start(&w, stack_size);
	if (status == 0) {
		g_main_loop_run(w.main_loop);
		imta_log(IMTA_LOG_INFO, "retired");
	}
	worker_cleanup(&w);
	worker_args_clear(&args);
	imta_log_close();
	return status;
}
