/*
 * server.c - the job controller's event loop: notices on the datagram
 * socket, master and admin connections on the stream socket (protocol in
 * jc_protocol.h), queue scans, job starts and exits, and the one-second
 * tick that releases delayed messages and enforces time limits.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <glib.h>
#include <glib-unix.h>

#include <imta/fd_watch.h>
#include <imta/daemon.h>
#include <imta/jc_protocol.h>
#include <imta/log.h>
#include <imta/queue.h>
#include <imta/xtext.h>
#include "jobs.h"
#include "message_table.h"
#include "rebuild.h"
#include "scheduler.h"
#include "server.h"

#define SERVER_MAX_FIELDS 8
#define SERVER_NOTICES_PER_WAKE 1000
#define SERVER_READ_PER_WAKE 65536
#define SERVER_NOTICE_RCVBUF (1024 * 1024)

typedef enum {
	ROLE_NONE,
	ROLE_MASTER,
	ROLE_ADMIN,
} JcRole;

typedef struct {
	const ImtaChannel *channel;
	const ImtaJcChannelSection *section;
	const char *pool_name;       /* as imta.cnf names it, or the default pool's */
	GQueue waiters;              /* JcConn with a NEXT pending, oldest first */
	guint64 enqueued, delivered, failed, deferred;
	gboolean pool_warned;
} JcChannel;

typedef struct {
	JcServer *server;
	int fd;
	guint read_source, write_source, idle_source;
	GString *in, *out;
	JcRole role;
	guint channel;
	JcJob *job;
	GArray *held;                /* MtIndex of the messages it delivers */
	gboolean waiting;
	gint64 waiting_since;
	GList wait_link;             /* in the channel's waiters */
	GList link;                  /* in server->conns */
	gint64 connected;
	pid_t pid;
	uid_t uid;
} JcConn;

struct _JcServer {
	const ImtaConfig *config;
	const ImtaCnf *cnf;
	const ImtaJobControllerCnf *jcnf;
	ImtaJobControllerCnf *own_jcnf;
	JcChannel *channels;
	guint n_channels;
	guint *due;
	MessageTable *table;
	Scheduler *sched;
	JcJobs *jobs;
	ImtaQueue *queue;
	int root_fd;
	int listen_fd, notify_fd;
	char *socket_path, *notify_path;
	guint listen_source, notify_source, tick_source, kick_source, finish_source;
	GQueue conns;
	Rebuild *rebuild;
	gboolean rebuild_again;
	gint64 last_synch, last_rescan;
	gboolean stopping, stop_termed, finished;
	gint64 stop_started;
	gint64 started;
	guint64 notices, notices_bad;
	guint64 rebuilds;
	uid_t euid;                  /* who we run as once started */
	JcServerStoppedFn stopped;
	gpointer stopped_data;
};

static void conn_close(JcConn *conn, const char *why);
static gboolean conn_process(JcConn *conn);
static void server_kick(JcServer *server);
static void server_rescan(JcServer *server, const char *why);
static void server_check_stopped(JcServer *server, gint64 now);

static gint64
server_now(void)
{
	return g_get_real_time() / G_USEC_PER_SEC;
}

/* ---- setup ----------------------------------------------------------- */

static guint
server_pool_index(const ImtaJobControllerCnf *jcnf, const char *name)
{
	const ImtaJcPool *pool = name != NULL ? imta_job_controller_cnf_pool(jcnf, name) :
				 imta_job_controller_cnf_default_pool(jcnf);

	for (guint i = 0; pool != NULL && i < jcnf->pools->len; i++)
		if (g_ptr_array_index(jcnf->pools, i) == pool)
			return i;
	return SCHED_NONE;
}

JcServer *
server_new(const ImtaConfig *config, JcServerStoppedFn stopped, gpointer user_data,
	   GError **error)
{
	JcServer *server;

	if (config->cnf->channels->len > MT_MAX_CHANNELS) {
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_LIMIT,
			    "%u channels: the job controller handles at most %u",
			    config->cnf->channels->len, MT_MAX_CHANNELS);
		return NULL;
	}
	server = g_new0(JcServer, 1);
	server->config = config;
	server->cnf = config->cnf;
	server->jcnf = config->job_controller;
	if (server->jcnf == NULL)
		server->jcnf = server->own_jcnf = imta_job_controller_cnf_new_default();
	server->stopped = stopped;
	server->stopped_data = user_data;
	server->root_fd = server->listen_fd = server->notify_fd = -1;
	server->n_channels = server->cnf->channels->len;
	server->channels = g_new0(JcChannel, MAX(server->n_channels, 1));
	server->due = g_new0(guint, MAX(server->n_channels, 1));
	server->table = message_table_new((guint)server->jcnf->max_messages, server->n_channels);
	server->sched = scheduler_new(server->n_channels, server->jcnf->pools->len);
	for (guint i = 0; i < server->jcnf->pools->len; i++) {
		const ImtaJcPool *pool = g_ptr_array_index(server->jcnf->pools, i);

		scheduler_set_pool(server->sched, i, (guint)pool->job_limit);
	}
	for (guint i = 0; i < server->n_channels; i++) {
		JcChannel *ch = &server->channels[i];
		const ImtaChannel *channel = g_ptr_array_index(server->cnf->channels, i);
		guint pool = server_pool_index(server->jcnf, channel->pool);

		ch->channel = channel;
		ch->section = imta_job_controller_cnf_channel(server->jcnf, channel->name);
		ch->pool_name = channel->pool != NULL ? channel->pool :
				imta_job_controller_cnf_default_pool(server->jcnf)->name;
		g_queue_init(&ch->waiters);
		scheduler_set_channel(server->sched, i, pool, (guint)MAX(channel->maxjobs, 1),
				      (guint)MAX(channel->threaddepth, 1));
	}
	g_queue_init(&server->conns);
	return server;
}

/* ---- sockets --------------------------------------------------------- */

static int
server_socket(const char *path, int type, GError **error)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FILENAME_TOO_LONG,
			    "socket path %s is longer than the %zu bytes a socket address holds",
			    path, sizeof(addr.sun_path) - 1);
		return -1;
	}
	strcpy(addr.sun_path, path);
	/* A socket left by an earlier instance: we hold the pid file, so no
	 * other instance is using it.  Anything else is not ours to remove. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS,
				    "%s exists and is not a socket", path);
			return -1;
		}
		unlink(path);
	}
	fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    chmod(path, 0660) < 0 || (type == SOCK_STREAM && listen(fd, 128) < 0)) {
		int errnum = errno;

		if (fd >= 0)
			close(fd);
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errnum),
			    "cannot listen on %s: %s", path, g_strerror(errnum));
		return -1;
	}
	return fd;
}

gboolean
server_bind(JcServer *server, const char *socket_path, const char *notify_path, GError **error)
{
	int rcvbuf = SERVER_NOTICE_RCVBUF;

	server->listen_fd = server_socket(socket_path, SOCK_STREAM, error);
	if (server->listen_fd < 0)
		return FALSE;
	server->socket_path = g_strdup(socket_path);
	server->notify_fd = server_socket(notify_path, SOCK_DGRAM, error);
	if (server->notify_fd < 0)
		return FALSE;
	server->notify_path = g_strdup(notify_path);
	/* Room for a burst of notices while the loop is busy; failure only
	 * means a smaller buffer. */
	(void)setsockopt(server->notify_fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	return TRUE;
}

/* ---- connections: output --------------------------------------------- */

static gboolean conn_on_writable(gint fd, GIOCondition condition, gpointer user_data);

/* Write what is pending; FALSE when the connection was closed. */
static gboolean
conn_flush(JcConn *conn)
{
	while (conn->out->len > 0) {
		ssize_t n = send(conn->fd, conn->out->str, conn->out->len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (conn->out->len > SERVER_MAX_OUTPUT) {
				conn_close(conn, "the client does not read its replies");
				return FALSE;
			}
			if (conn->write_source == 0)
				conn->write_source = imta_fd_watch_add(conn->fd, G_IO_OUT,
								   conn_on_writable, conn);
			return TRUE;
		}
		if (n < 0) {
			conn_close(conn, g_strerror(errno));
			return FALSE;
		}
		g_string_erase(conn->out, 0, (gssize)n);
	}
	if (conn->write_source != 0) {
		g_source_remove(conn->write_source);
		conn->write_source = 0;
	}
	return TRUE;
}

static gboolean
conn_on_writable(gint fd, GIOCondition condition, gpointer user_data)
{
	JcConn *conn = user_data;

	/* conn_flush removes this source when done; keep it otherwise. */
	if (conn->out->len == 0) {
		conn->write_source = 0;
		return G_SOURCE_REMOVE;
	}
	if (!conn_flush(conn))
		return G_SOURCE_REMOVE;
	if (conn->write_source == 0)
		return G_SOURCE_REMOVE;
	return G_SOURCE_CONTINUE;
}

static G_GNUC_PRINTF(2, 3) gboolean
conn_reply(JcConn *conn, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	g_string_append_vprintf(conn->out, fmt, args);
	va_end(args);
	g_string_append_c(conn->out, '\n');
	return conn_flush(conn);
}

static gboolean
conn_error(JcConn *conn, const char *reason)
{
	g_string_append(conn->out, "ERR ");
	imta_xtext_append(conn->out, reason, -1);
	g_string_append_c(conn->out, '\n');
	return conn_flush(conn);
}

/* ---- connections: life ----------------------------------------------- */

static const char *
conn_name(const JcConn *conn)
{
	switch (conn->role) {
	case ROLE_MASTER:
		return "master";
	case ROLE_ADMIN:
		return "admin";
	case ROLE_NONE:
		break;
	}
	return "client";
}

/* Give back what the connection was delivering: due again at once, or
 * after a backoff when a job already died holding it once. */
static void
conn_give_back(JcConn *conn)
{
	JcServer *server = conn->server;
	gint64 now = server_now();

	for (guint i = 0; i < conn->held->len; i++) {
		MtIndex index = g_array_index(conn->held, MtIndex, i);
		MtView view;
		gint64 again;

		message_table_view(server->table, index, &view);
		again = scheduler_retry_time(server->channels[view.channel].channel, view.priority,
					     view.attempts + 1, 0, now);
		message_table_give_back(server->table, index, again, now);
		imta_log(IMTA_LOG_WARNING, "job %u of channel %s went away delivering %s: %s",
			 conn->job != NULL ? conn->job->serial : 0,
			 server->channels[view.channel].channel->name, view.id,
			 view.returned ? "it happened before, retried after its backoff" :
			 "due again at once");
	}
	g_array_set_size(conn->held, 0);
}

static void
conn_close(JcConn *conn, const char *why)
{
	JcServer *server = conn->server;

	if (why != NULL)
		imta_log(IMTA_LOG_DEBUG, "%s connection (pid %ld) closed: %s", conn_name(conn),
			 (long)conn->pid, why);
	if (conn->held->len > 0)
		conn_give_back(conn);
	if (conn->waiting)
		g_queue_unlink(&server->channels[conn->channel].waiters, &conn->wait_link);
	if (conn->job != NULL && jobs_disconnect(server->jobs, conn->job))
		scheduler_job_ended(server->sched, conn->channel, FALSE, server_now());
	if (conn->read_source != 0)
		g_source_remove(conn->read_source);
	if (conn->write_source != 0)
		g_source_remove(conn->write_source);
	if (conn->idle_source != 0)
		g_source_remove(conn->idle_source);
	g_queue_unlink(&server->conns, &conn->link);
	close(conn->fd);
	g_string_free(conn->in, TRUE);
	g_string_free(conn->out, TRUE);
	g_array_unref(conn->held);
	g_free(conn);
	server_kick(server);
}

static gboolean
conn_on_idle(gpointer user_data)
{
	JcConn *conn = user_data;

	conn->idle_source = 0;
	conn_process(conn);
	return G_SOURCE_REMOVE;
}

/* After a pending NEXT was answered: serve lines that arrived meanwhile. */
static void
conn_resume(JcConn *conn)
{
	if (conn->idle_source == 0 && memchr(conn->in->str, '\n', conn->in->len) != NULL)
		conn->idle_source = g_idle_add(conn_on_idle, conn);
}

static gboolean
conn_on_readable(gint fd, GIOCondition condition, gpointer user_data)
{
	JcConn *conn = user_data;
	char buf[4096];
	gsize total = 0;

	while (total < SERVER_READ_PER_WAKE) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			const char *why = n == 0 ? "end of file" : g_strerror(errno);

			/* Requests already read are still served. */
			if (conn->in->len > 0 && !conn_process(conn))
				return G_SOURCE_REMOVE;
			conn_close(conn, why);
			return G_SOURCE_REMOVE;
		}
		g_string_append_len(conn->in, buf, n);
		total += (gsize)n;
		/* A client that keeps sending while a NEXT is pending. */
		if (conn->in->len > 4 * IMTA_JC_MAX_LINE) {
			if (conn_error(conn, "too much input while a request is pending"))
				conn_close(conn, "flooding");
			return G_SOURCE_REMOVE;
		}
	}
	if (!conn_process(conn))
		return G_SOURCE_REMOVE;
	return G_SOURCE_CONTINUE;
}

static gboolean
server_on_connect(gint fd, GIOCondition condition, gpointer user_data)
{
	JcServer *server = user_data;

	for (;;) {
		struct ucred cred;
		JcConn *conn;
		int cfd = imta_daemon_accept_local(fd, server->socket_path, &cred);

		if (cfd < 0)
			break;
		if (cred.uid != 0 && cred.uid != server->euid) {
			static const char refusal[] = "ERR permission+20denied\n";

			imta_log(IMTA_LOG_WARNING, "refused a connection from uid %ld (pid %ld)",
				 (long)cred.uid, (long)cred.pid);
			(void)!send(cfd, refusal, sizeof(refusal) - 1,
				    MSG_NOSIGNAL | MSG_DONTWAIT);
			close(cfd);
			continue;
		}
		if (server->conns.length >= SERVER_MAX_CONNECTIONS) {
			static const char busy[] = "ERR too+20many+20connections\n";

			(void)!send(cfd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(cfd);
			continue;
		}
		conn = g_new0(JcConn, 1);
		conn->server = server;
		conn->fd = cfd;
		conn->in = g_string_new(NULL);
		conn->out = g_string_new(NULL);
		conn->held = g_array_new(FALSE, FALSE, sizeof(MtIndex));
		conn->connected = server_now();
		conn->pid = cred.pid;
		conn->uid = cred.uid;
		conn->wait_link.data = conn;
		conn->link.data = conn;
		g_queue_push_tail_link(&server->conns, &conn->link);
		conn->read_source = imta_fd_watch_add(cfd, G_IO_IN, conn_on_readable, conn);
	}
	return G_SOURCE_CONTINUE;
}

/* ---- handing out messages -------------------------------------------- */

static void
server_append_path(JcServer *server, MtIndex index, GString *out)
{
	MtView view;
	char prefix[3];

	message_table_view(server->table, index, &view);
	imta_queue_attempt_prefix(view.attempts, prefix);
	g_string_append(out, server->channels[view.channel].channel->name);
	if (view.subdir != MT_NO_SUBDIR)
		g_string_append_printf(out, "/%03u", view.subdir);
	g_string_append_printf(out, "/%s%s.00", prefix, view.id);
}

/* Answer a NEXT with a message, and say whether more of the channel's
 * are due at this moment; FALSE when the connection was closed. */
static gboolean
conn_give(JcConn *conn, MtIndex index)
{
	g_autoptr(GString) path = g_string_new(NULL);
	MtCounts counts;

	g_array_append_val(conn->held, index);
	conn->job->served++;
	server_append_path(conn->server, index, path);
	message_table_channel_counts(conn->server->table, conn->channel, &counts);
	imta_log(IMTA_LOG_DEBUG, "job %u: MSG %s", conn->job->serial, path->str);
	return conn_reply(conn, "MSG %s%s", path->str, counts.ready > 0 ? " MORE" : "");
}

static gboolean
conn_tell_exit(JcConn *conn)
{
	conn->job->told_exit = TRUE;
	return conn_reply(conn, "EXIT");
}

static void
conn_stop_waiting(JcConn *conn)
{
	JcServer *server = conn->server;

	g_queue_unlink(&server->channels[conn->channel].waiters, &conn->wait_link);
	conn->waiting = FALSE;
}

/* Should this job take no more work? */
static gboolean
server_job_over(JcServer *server, const JcConn *conn, gint64 now)
{
	const ImtaJcChannelSection *section = server->channels[conn->channel].section;

	if (server->stopping)
		return TRUE;
	if (section->max_life_age > 0 && now - conn->job->started >= section->max_life_age)
		return TRUE;
	return section->max_life_conns > 0 && conn->job->served >= section->max_life_conns;
}

static void
server_dispatch(JcServer *server, guint channel)
{
	JcChannel *ch = &server->channels[channel];

	while (!g_queue_is_empty(&ch->waiters)) {
		MtIndex index = message_table_take(server->table, channel);
		JcConn *conn;

		if (index == MT_NONE)
			break;
		conn = ch->waiters.head->data;
		conn_stop_waiting(conn);
		if (conn_give(conn, index))
			conn_resume(conn);
	}
}

/* ---- jobs ------------------------------------------------------------ */

static void
server_start_job(JcServer *server, guint channel, gint64 now)
{
	JcChannel *ch = &server->channels[channel];
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) argv = jobs_master_argv(server->config, ch->channel->name,
					      ch->section->master_command, &error);
	JcJob *job = NULL;

	if (argv != NULL)
		job = jobs_spawn(server->jobs, channel, argv, &error);
	scheduler_job_started(server->sched, channel);
	if (job == NULL) {
		imta_log(IMTA_LOG_ERROR, "cannot start a master job for channel %s: %s",
			 ch->channel->name, error->message);
		scheduler_job_ended(server->sched, channel, TRUE, now);
		return;
	}
	imta_log(IMTA_LOG_INFO, "started job %u (pid %ld) for channel %s: %s", job->serial,
		 (long)job->pid, ch->channel->name, argv[0]);
}

static void
server_on_job_exit(JcJob *job, int status, gpointer user_data)
{
	JcServer *server = user_data;
	g_autofree char *how = imta_daemon_describe_status(status);
	gboolean abnormal = jobs_status_abnormal(status);

	imta_log(abnormal ? IMTA_LOG_WARNING : IMTA_LOG_INFO,
		 "job %u (pid %ld) of channel %s exited: %s", job->serial, (long)job->pid,
		 server->channels[job->channel].channel->name, how);
	scheduler_job_ended(server->sched, job->channel, abnormal && !server->stopping,
			    server_now());
	server_kick(server);
}

/* ---- scheduling ------------------------------------------------------ */

static void
server_schedule(JcServer *server)
{
	gint64 now = server_now();
	guint channel;

	message_table_release_due(server->table, now, NULL);
	for (guint i = 0; i < server->n_channels; i++)
		server_dispatch(server, i);
	if (server->stopping)
		return;
	for (guint i = 0; i < server->n_channels; i++) {
		JcChannel *ch = &server->channels[i];
		MtCounts counts;

		message_table_channel_counts(server->table, i, &counts);
		server->due[i] = counts.ready;
		if (counts.ready > 0 && scheduler_channel_pool(server->sched, i) == SCHED_NONE &&
		    !ch->pool_warned) {
			imta_log(IMTA_LOG_ERROR, "channel %s names pool %s, which %s does not "
				 "define: its messages are not delivered", ch->channel->name,
				 ch->pool_name, server->jcnf->path != NULL ? server->jcnf->path :
				 "job_controller.cnf");
			ch->pool_warned = TRUE;
		}
	}
	while ((channel = scheduler_pick(server->sched, server->due, now)) != SCHED_NONE)
		server_start_job(server, channel, now);
}

static gboolean
server_on_kick(gpointer user_data)
{
	JcServer *server = user_data;

	server->kick_source = 0;
	server_schedule(server);
	server_check_stopped(server, server_now());
	return G_SOURCE_REMOVE;
}

/* Schedule once the current event is handled (many events, one pass). */
static void
server_kick(JcServer *server)
{
	if (server->kick_source == 0 && !server->finished)
		server->kick_source = g_idle_add(server_on_kick, server);
}

/* ---- queue scans ----------------------------------------------------- */

static void
server_on_batch(RebuildBatch *batch, gpointer user_data)
{
	JcServer *server = user_data;
	gint64 now = server_now();
	guint added = 0;

	if (batch->last) {
		const RebuildStats *stats = &batch->stats;

		imta_log(IMTA_LOG_INFO, "queue scan done in %.2f s: %u files, %u already "
			 "tracked, %u read, %u held, %u errors%s; %u tracked", stats->seconds,
			 stats->files, stats->known, stats->read, stats->held, stats->errors,
			 stats->complete ? "" : ", more left on disk",
			 message_table_tracked(server->table));
		if (!stats->complete)
			message_table_note_overflow(server->table);
		rebuild_free(server->rebuild);
		server->rebuild = NULL;
		rebuild_batch_free(batch);
		if (server->rebuild_again && !server->stopping) {
			server->rebuild_again = FALSE;
			server_rescan(server, "requested during the previous scan");
		}
		server_kick(server);
		return;
	}
	for (guint i = 0; i < batch->items->len; i++) {
		const RebuildItem *item = &g_array_index(batch->items, RebuildItem, i);
		MtMessageInfo info = {
			.id = item->id, .channel = item->channel, .subdir = item->subdir,
			.host = item->host, .priority = item->priority,
			.attempts = item->attempts, .next_attempt = item->next_attempt,
		};

		if (message_table_add(server->table, &info, MT_FROM_SCAN, now, NULL) == MT_ADD_NEW)
			added++;
	}
	imta_log(IMTA_LOG_DEBUG, "queue scan: %u of %u files tracked", added, batch->items->len);
	rebuild_batch_free(batch);
	server_kick(server);
}

static void
server_rescan(JcServer *server, const char *why)
{
	gint64 now = server_now();
	guint room;

	if (server->stopping || server->queue == NULL)
		return;
	if (server->rebuild != NULL) {
		server->rebuild_again = TRUE;
		return;
	}
	server->last_rescan = server->last_synch = now;
	room = message_table_scan_room(server->table);
	if (room == 0) {
		imta_log(IMTA_LOG_INFO, "queue scan (%s) skipped: %u messages tracked, 3/4 of "
			 "MAX_MESSAGES", why, message_table_tracked(server->table));
		return;
	}
	imta_log(IMTA_LOG_INFO, "scanning the queue (%s): room for %u messages", why, room);
	message_table_clear_overflow(server->table);
	server->rebuilds++;
	server->rebuild = rebuild_start(server->queue, server->root_fd, server->cnf, server->table,
					room, (guint)server->jcnf->rebuild_parallel_channel,
					server_on_batch, server);
}

/* ---- notices --------------------------------------------------------- */

static void
server_bad_notice(JcServer *server, const char *text, const char *why)
{
	server->notices_bad++;
	/* 1st, 2nd, 4th, 8th...: a flood cannot fill the log. */
	if ((server->notices_bad & (server->notices_bad - 1)) == 0) {
		g_autofree char *shown = g_strndup(text, 120);

		g_strcanon(shown, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			   "0123456789 /._-$+", '?');
		imta_log(IMTA_LOG_WARNING, "ignored notice \"%s\": %s (%" G_GUINT64_FORMAT
			 " so far)", shown, why, server->notices_bad);
	}
}

static void
server_notice(JcServer *server, const char *text, gsize len)
{
	g_autoptr(GError) error = NULL;
	RebuildHeader header;
	RebuildPath path;
	MtAddResult result;
	MtMessageInfo info;
	gboolean tried;

	if (len < 3 || memchr(text, '\0', len) != NULL || (text[0] != 'E' && text[0] != 'R') ||
	    text[1] != ' ') {
		server_bad_notice(server, text, "expected \"E <path>\" or \"R <path>\"");
		return;
	}
	if (!rebuild_parse_path(server->cnf, text + 2, &path, &error)) {
		server_bad_notice(server, text, error->message);
		return;
	}
	server->notices++;
	if (text[0] == 'E')
		server->channels[path.channel].enqueued++;
	if (path.held)
		return;
	/* Only a tried file's mtime is of use here. */
	tried = text[0] == 'E' && path.attempts > 0;
	if (!rebuild_read_header(server->root_fd, text + 2, tried, &header, &error)) {
		imta_log(g_error_matches(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_NOT_FOUND) ?
			 IMTA_LOG_DEBUG : IMTA_LOG_WARNING, "notice %s: %s", text, error->message);
		return;
	}
	/* A new file is due now, unless it was already tried (a recipient
	 * split off for retry): then its mtime says when.  A release is due
	 * now whatever the file says. */
	info = (MtMessageInfo) {
		.id = path.id, .channel = path.channel, .subdir = path.subdir,
		.host = header.host, .priority = header.priority, .attempts = path.attempts,
		.next_attempt = tried ? header.mtime : 0,
	};
	result = message_table_add(server->table, &info, text[0] == 'E' ? MT_FROM_NOTICE :
				   MT_FROM_RETRY, server_now(), NULL);
	if (result == MT_ADD_FULL)
		imta_log(IMTA_LOG_DEBUG, "notice %s: MAX_MESSAGES reached, left on disk", text);
	else if (result == MT_ADD_CONFLICT)
		imta_log(IMTA_LOG_WARNING, "notice %s: queue id %s is tracked for another channel",
			 text, path.id);
}

static gboolean
server_on_notices(gint fd, GIOCondition condition, gpointer user_data)
{
	JcServer *server = user_data;
	char buf[IMTA_JC_MAX_LINE + 2];

	for (guint i = 0; i < SERVER_NOTICES_PER_WAKE; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_TRUNC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				imta_log(IMTA_LOG_WARNING, "notice socket: %s", g_strerror(errno));
			break;
		}
		if ((gsize)n > IMTA_JC_MAX_LINE) {
			buf[MIN((gsize)n, sizeof(buf) - 1)] = '\0';
			server_bad_notice(server, buf, "longer than the protocol allows");
			continue;
		}
		if (n > 0 && buf[n - 1] == '\n')
			n--;
		buf[n] = '\0';
		server_notice(server, buf, (gsize)n);
	}
	server_kick(server);
	return G_SOURCE_CONTINUE;
}

/* ---- requests -------------------------------------------------------- */

/* Split on single spaces; FALSE for empty fields or too many. */
static gboolean
server_split(char *line, char **fields, guint *n_r)
{
	guint n = 0;
	char *p = line;

	for (;;) {
		char *space = strchr(p, ' ');

		if (n == SERVER_MAX_FIELDS)
			return FALSE;
		fields[n++] = p;
		if (space == NULL)
			break;
		*space = '\0';
		p = space + 1;
	}
	for (guint i = 0; i < n; i++)
		if (*fields[i] == '\0')
			return FALSE;
	*n_r = n;
	return TRUE;
}

static gboolean
conn_hello(JcConn *conn, char **f, guint n)
{
	JcServer *server = conn->server;

	if (conn->role != ROLE_NONE)
		return conn_error(conn, "HELLO was already given");
	if (n == 2 && strcmp(f[1], "admin") == 0) {
		conn->role = ROLE_ADMIN;
		return conn_reply(conn, "OK %d", IMTA_JC_PROTOCOL_VERSION);
	}
	if (n == 3 && strcmp(f[1], "master") == 0) {
		guint channel = rebuild_channel_index(server->cnf, f[2]);
		JcJob *job;

		if (channel == G_MAXUINT)
			return conn_error(conn, "no such channel");
		job = jobs_find_pid(server->jobs, conn->pid);
		if (job != NULL && job->channel != channel)
			return conn_error(conn, "this job was started for another channel");
		if (job == NULL) {
			job = jobs_adopt(server->jobs, channel, conn->pid);
			scheduler_job_started(server->sched, channel);
			imta_log(IMTA_LOG_INFO, "adopted job %u (pid %ld) of channel %s started "
				 "elsewhere", job->serial, (long)conn->pid, f[2]);
		}
		jobs_connect(server->jobs, job);
		conn->job = job;
		conn->channel = channel;
		conn->role = ROLE_MASTER;
		return conn_reply(conn, "OK %d", IMTA_JC_PROTOCOL_VERSION);
	}
	return conn_error(conn, "expected HELLO master <channel> or HELLO admin");
}

static gboolean
conn_next(JcConn *conn, char **f, guint n)
{
	JcServer *server = conn->server;
	gint64 now = server_now();
	gboolean nowait = n == 2 && strcmp(f[1], "NOWAIT") == 0;
	MtIndex index;

	if (n != 1 && !nowait)
		return conn_error(conn, "expected NEXT or NEXT NOWAIT");
	if (server_job_over(server, conn, now))
		return conn_tell_exit(conn);
	message_table_release_due(server->table, now, NULL);
	index = message_table_take(server->table, conn->channel);
	if (index != MT_NONE)
		return conn_give(conn, index);
	/* A job still delivering asks without waiting, so that its DONE lines
	 * are never stuck behind a long poll. */
	if (nowait)
		return conn_reply(conn, "NONE");
	if (server->channels[conn->channel].section->idle_linger <= 0)
		return conn_tell_exit(conn);
	conn->waiting = TRUE;
	conn->waiting_since = now;
	g_queue_push_tail_link(&server->channels[conn->channel].waiters, &conn->wait_link);
	return TRUE;
}

static gboolean
server_parse_count(const char *text, guint64 max, guint64 *value_r)
{
	return g_ascii_string_to_unsigned(text, 10, 0, max, value_r, NULL);
}

static gboolean
conn_done(JcConn *conn, char **f, guint n)
{
	JcServer *server = conn->server;
	g_autoptr(GError) error = NULL;
	RebuildPath path, renamed = { 0 };
	guint64 delivered, failed, retry, next;
	gint64 now = server_now(), at;
	JcChannel *ch;
	MtIndex index;
	MtView view;
	guint i;

	if (n != 7)
		return conn_error(conn, "expected DONE <path> <new-path|-> <delivered> <failed> "
				  "<retry> <next-attempt>");
	if (!rebuild_parse_path(server->cnf, f[1], &path, &error))
		return conn_error(conn, error->message);
	if (!server_parse_count(f[3], G_MAXUINT32, &delivered) ||
	    !server_parse_count(f[4], G_MAXUINT32, &failed) ||
	    !server_parse_count(f[5], G_MAXUINT32, &retry) ||
	    !server_parse_count(f[6], G_MAXINT64, &next))
		return conn_error(conn, "expected counts and a time as decimal numbers");
	index = message_table_lookup(server->table, path.id);
	for (i = 0; index != MT_NONE && i < conn->held->len; i++)
		if (g_array_index(conn->held, MtIndex, i) == index)
			break;
	if (index == MT_NONE || i == conn->held->len)
		return conn_error(conn, "not a message this job is delivering");
	if (strcmp(f[2], "-") != 0) {
		g_clear_error(&error);
		if (!rebuild_parse_path(server->cnf, f[2], &renamed, &error))
			return conn_error(conn, error->message);
		if (strcmp(renamed.id, path.id) != 0 || renamed.channel != path.channel)
			return conn_error(conn, "the new path names another message");
	}
	g_array_remove_index_fast(conn->held, i);
	ch = &server->channels[path.channel];
	ch->delivered += delivered;
	ch->failed += failed;
	ch->deferred += retry;
	message_table_view(server->table, index, &view);
	if (strcmp(f[2], "-") == 0 || renamed.held) {
		message_table_forget(server->table, index);
		imta_log(IMTA_LOG_DEBUG, "%s done: %s", f[1], strcmp(f[2], "-") == 0 ? "gone" :
			 "held");
	} else {
		at = scheduler_retry_time(ch->channel, view.priority, renamed.attempts,
					  (gint64)next, now);
		if (at > now && message_table_should_forget_failed(server->table)) {
			/* Mostly delayed mail in memory: leave this one to a later scan. */
			message_table_forget(server->table, index);
			message_table_note_overflow(server->table);
			imta_log(IMTA_LOG_DEBUG, "%s deferred and left on disk", f[2]);
		} else {
			message_table_defer(server->table, index, renamed.attempts, renamed.subdir,
					    at, now);
			imta_log(IMTA_LOG_DEBUG, "%s deferred until %" G_GINT64_FORMAT, f[2], at);
		}
	}
	server_kick(server);
	return conn_reply(conn, "OK");
}

static void
server_state_line(GString *out, const char *key, guint64 value)
{
	g_string_append_printf(out, "%s %" G_GUINT64_FORMAT "\n", key, value);
}

static gboolean
conn_state(JcConn *conn)
{
	JcServer *server = conn->server;
	GString *out = conn->out;
	MtCounts counts;

	message_table_counts(server->table, &counts);
	server_state_line(out, "tracked", message_table_tracked(server->table));
	server_state_line(out, "ready", counts.ready);
	server_state_line(out, "delayed", counts.delayed);
	server_state_line(out, "in_progress", counts.in_progress);
	server_state_line(out, "max_messages", message_table_max(server->table));
	server_state_line(out, "hash_size", message_table_hash_size(server->table));
	server_state_line(out, "hosts", message_table_host_count(server->table));
	server_state_line(out, "memory", message_table_bytes(server->table));
	g_string_append_printf(out, "bytes_per_message %.1f\n",
			       message_table_bytes_per_message(server->table));
	server_state_line(out, "overflow", message_table_overflowed(server->table));
	server_state_line(out, "rebuilding", server->rebuild != NULL);
	server_state_line(out, "rebuilds", server->rebuilds);
	server_state_line(out, "jobs", scheduler_total_jobs(server->sched));
	server_state_line(out, "notices", server->notices);
	server_state_line(out, "notices_ignored", server->notices_bad);
	server_state_line(out, "stopping", server->stopping);
	server_state_line(out, "uptime", (guint64)MAX(server_now() - server->started, 0));
	for (guint i = 0; i < server->jcnf->pools->len; i++) {
		const ImtaJcPool *pool = g_ptr_array_index(server->jcnf->pools, i);

		g_string_append_printf(out, "pool.%s.jobs %u\n", pool->name,
				       scheduler_pool_jobs(server->sched, i));
		g_string_append_printf(out, "pool.%s.limit %u\n", pool->name,
				       scheduler_pool_limit(server->sched, i));
	}
	for (guint i = 0; i < server->n_channels; i++) {
		const JcChannel *ch = &server->channels[i];
		const char *name = ch->channel->name;

		message_table_channel_counts(server->table, i, &counts);
		g_string_append_printf(out, "channel.%s.queued %u\n", name,
				       counts.ready + counts.delayed + counts.in_progress);
		g_string_append_printf(out, "channel.%s.ready %u\n", name, counts.ready);
		g_string_append_printf(out, "channel.%s.delayed %u\n", name, counts.delayed);
		g_string_append_printf(out, "channel.%s.in_progress %u\n", name,
				       counts.in_progress);
		g_string_append_printf(out, "channel.%s.jobs %u\n", name,
				       scheduler_channel_jobs(server->sched, i));
		g_string_append_printf(out, "channel.%s.waiting %u\n", name, ch->waiters.length);
		g_string_append_printf(out, "channel.%s.limit %u\n", name,
				       scheduler_channel_limit(server->sched, i));
		g_string_append_printf(out, "channel.%s.pool ", name);
		imta_xtext_append(out, ch->pool_name, -1);
		g_string_append_c(out, '\n');
	}
	g_string_append(out, ".\n");
	return conn_flush(conn);
}

static gboolean
conn_counters(JcConn *conn)
{
	JcServer *server = conn->server;

	for (guint i = 0; i < server->n_channels; i++) {
		const JcChannel *ch = &server->channels[i];

		g_string_append_printf(conn->out, "%s %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT
				       " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT "\n",
				       ch->channel->name, ch->enqueued, ch->delivered,
				       ch->deferred, ch->failed);
	}
	g_string_append(conn->out, ".\n");
	return conn_flush(conn);
}

static gboolean
server_valid_id(const char *text)
{
	if (strlen(text) != MT_ID_LENGTH)
		return FALSE;
	for (const char *p = text; *p != '\0'; p++)
		if (!g_ascii_isdigit(*p) && !g_ascii_isupper(*p))
			return FALSE;
	return TRUE;
}

static gboolean
conn_retry(JcConn *conn, char **f, guint n)
{
	JcServer *server = conn->server;
	gint64 now = server_now();
	guint channel, count = 0;

	if (n != 2)
		return conn_error(conn, "expected RETRY <queue-id|channel>");
	channel = rebuild_channel_index(server->cnf, f[1]);
	if (channel != G_MAXUINT) {
		count = message_table_retry_channel(server->table, channel, now);
	} else if (server_valid_id(f[1])) {
		MtIndex index = message_table_lookup(server->table, f[1]);

		if (index != MT_NONE)
			count = message_table_retry(server->table, index, now);
	} else {
		return conn_error(conn, "expected a queue id or a channel name");
	}
	imta_log(IMTA_LOG_INFO, "RETRY %s: %u messages due now", f[1], count);
	server_kick(server);
	return conn_reply(conn, "OK %u", count);
}

/* One request line; FALSE when the connection was closed. */
static gboolean
conn_request(JcConn *conn, char *line)
{
	char *f[SERVER_MAX_FIELDS];
	guint n;

	if (!server_split(line, f, &n))
		return conn_error(conn, "malformed request");
	if (strcmp(f[0], "HELLO") == 0)
		return conn_hello(conn, f, n);
	if (conn->role == ROLE_NONE)
		return conn_error(conn, "expected HELLO first");
	if (conn->role == ROLE_MASTER) {
		if (strcmp(f[0], "NEXT") == 0)
			return conn_next(conn, f, n);
		if (strcmp(f[0], "DONE") == 0)
			return conn_done(conn, f, n);
		return conn_error(conn, "unknown request for a master job");
	}
	if (n == 1 && strcmp(f[0], "STATE") == 0)
		return conn_state(conn);
	if (n == 1 && strcmp(f[0], "COUNTERS") == 0)
		return conn_counters(conn);
	if (strcmp(f[0], "RETRY") == 0)
		return conn_retry(conn, f, n);
	if (n == 1 && strcmp(f[0], "REBUILD") == 0) {
		server_rescan(conn->server, "requested by an administrator");
		return conn_reply(conn, "OK");
	}
	if (n == 1 && strcmp(f[0], "SHUTDOWN") == 0) {
		imta_log(IMTA_LOG_NOTICE, "SHUTDOWN requested (pid %ld)", (long)conn->pid);
		if (!conn_reply(conn, "OK"))
			return FALSE;
		server_stop(conn->server);
		return TRUE;
	}
	return conn_error(conn, "unknown request");
}

static gboolean
conn_too_long(JcConn *conn)
{
	if (conn_error(conn, "line too long"))
		conn_close(conn, "line too long");
	return FALSE;
}

/* Serve every complete line, unless a NEXT is pending; FALSE when the
 * connection was closed. */
static gboolean
conn_process(JcConn *conn)
{
	while (!conn->waiting) {
		char *nl = memchr(conn->in->str, '\n', conn->in->len);
		g_autofree char *line = NULL;
		gsize len;

		/* IMTA_JC_MAX_LINE counts the newline. */
		if (nl == NULL)
			return conn->in->len >= IMTA_JC_MAX_LINE ? conn_too_long(conn) : TRUE;
		len = (gsize)(nl - conn->in->str);
		if (len + 1 > IMTA_JC_MAX_LINE)
			return conn_too_long(conn);
		line = g_strndup(conn->in->str, len);
		g_string_erase(conn->in, 0, (gssize)len + 1);
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (strlen(line) != len) {
			if (!conn_error(conn, "NUL byte in request"))
				return FALSE;
			continue;
		}
		if (!conn_request(conn, line))
			return FALSE;
	}
	return TRUE;
}

/* ---- the tick -------------------------------------------------------- */

static void
server_expire_waiters(JcServer *server, gint64 now)
{
	for (guint i = 0; i < server->n_channels; i++) {
		JcChannel *ch = &server->channels[i];
		GList *link = ch->waiters.head;

		while (link != NULL) {
			JcConn *conn = link->data;

			link = link->next;
			if (!server_job_over(server, conn, now) &&
			    now - conn->waiting_since < ch->section->idle_linger)
				continue;
			conn_stop_waiting(conn);
			if (conn_tell_exit(conn))
				conn_resume(conn);
		}
	}
}

static void
server_expire_hellos(JcServer *server, gint64 now)
{
	GList *link = server->conns.head;

	while (link != NULL) {
		JcConn *conn = link->data;

		link = link->next;
		if (conn->role == ROLE_NONE && now - conn->connected >= SERVER_HELLO_TIMEOUT &&
		    conn_error(conn, "no HELLO"))
			conn_close(conn, "no HELLO in time");
	}
}

/* A job far past MAX_LIFE_AGE that never came back for more work is
 * stuck: ask it to stop. */
static void
server_watch_jobs(JcServer *server, gint64 now)
{
	GPtrArray *list = jobs_list(server->jobs);

	for (guint i = 0; i < list->len; i++) {
		JcJob *job = g_ptr_array_index(list, i);
		const ImtaJcChannelSection *section = server->channels[job->channel].section;

		if (job->adopted || job->exited || job->signalled || section->max_life_age <= 0 ||
		    now - job->started < 2 * section->max_life_age + 300)
			continue;
		imta_log(IMTA_LOG_WARNING, "job %u (pid %ld) of channel %s is %" G_GINT64_FORMAT
			 " s old: stopping it", job->serial, (long)job->pid,
			 server->channels[job->channel].channel->name, now - job->started);
		job->signalled = TRUE;
		jobs_signal(job, SIGTERM);
	}
}

static gboolean
server_tick(gpointer user_data)
{
	JcServer *server = user_data;
	gint64 now = server_now();
	gboolean synch_due;

	server_schedule(server);
	server_expire_waiters(server, now);
	server_expire_hellos(server, now);
	server_watch_jobs(server, now);
	synch_due = server->jcnf->synch_time > 0 &&
		    now - server->last_synch >= server->jcnf->synch_time;
	if (server->rebuild == NULL && message_table_rescan_wanted(server->table, synch_due) &&
	    now - server->last_rescan >= SERVER_RESCAN_INTERVAL)
		server_rescan(server, message_table_overflowed(server->table) ?
			      "messages left on disk" : "periodic resynchronisation");
	server_check_stopped(server, now);
	return G_SOURCE_CONTINUE;
}

/* ---- start and stop -------------------------------------------------- */

/* Temporary files of enqueuers that died mid-write (the named fallback;
 * unnamed files vanish by themselves) are removed once, at start. */
static void
server_clean_stale(JcServer *server)
{
	g_autoptr(GError) error = NULL;
	guint removed = imta_queue_clean_stale(server->queue, &error);

	if (error != NULL)
		imta_log(IMTA_LOG_WARNING, "cleaning stale temporary files: %s", error->message);
	else if (removed > 0)
		imta_log(IMTA_LOG_NOTICE, "removed %u stale temporary file%s from the queue",
			 removed, removed == 1 ? "" : "s");
}

gboolean
server_start(JcServer *server, GError **error)
{
	const ImtaTailor *tailor = server->config->tailor;

	/* Privileges are dropped by now: jobs and enqueuers run as this user
	 * (IMTA_USER), and root may always connect. */
	server->euid = geteuid();
	if (server->jcnf->debug != 0)
		imta_log_set_level(IMTA_LOG_DEBUG);
	if (server->jcnf->tcp_port != 0)
		imta_log(IMTA_LOG_WARNING, "TCP_PORT=%" G_GINT64_FORMAT " ignored: jobs and "
			 "enqueuers reach the job controller by its local sockets only",
			 server->jcnf->tcp_port);
	server->queue = imta_queue_open(tailor->queue_dir, server->cnf, NULL, error);
	if (server->queue == NULL)
		return FALSE;
	server_clean_stale(server);
	server->root_fd = open(tailor->queue_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (server->root_fd < 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "cannot open %s: %s",
			    tailor->queue_dir, g_strerror(errno));
		return FALSE;
	}
	server->jobs = jobs_new(server_on_job_exit, server);
	server->started = server_now();
	server->listen_source = imta_fd_watch_add(server->listen_fd, G_IO_IN, server_on_connect,
					      server);
	server->notify_source = imta_fd_watch_add(server->notify_fd, G_IO_IN, server_on_notices,
					      server);
	server->tick_source = g_timeout_add_seconds(1, server_tick, server);
	imta_log(IMTA_LOG_INFO, "%u channels, %u pools, MAX_MESSAGES %u (hash table %u "
		 "buckets, %.1f bytes per message)", server->n_channels,
		 server->jcnf->pools->len, message_table_max(server->table),
		 message_table_hash_size(server->table),
		 message_table_bytes_per_message(server->table));
	server_rescan(server, "start");
	return TRUE;
}

static gboolean
server_on_finish(gpointer user_data)
{
	JcServer *server = user_data;

	server->finish_source = 0;
	server->finished = TRUE;
	if (server->stopped != NULL)
		server->stopped(server->stopped_data);
	return G_SOURCE_REMOVE;
}

static void
server_check_stopped(JcServer *server, gint64 now)
{
	guint jobs;

	if (!server->stopping || server->finished || server->finish_source != 0)
		return;
	jobs = server->jobs != NULL ? jobs_count(server->jobs) : 0;
	if (jobs > 0 && now - server->stop_started >= SERVER_STOP_KILL_AFTER) {
		imta_log(IMTA_LOG_WARNING, "%u jobs still running after %d s: killing them", jobs,
			 SERVER_STOP_KILL_AFTER);
		jobs_signal_all(server->jobs, SIGKILL);
		jobs = 0;
	} else if (jobs > 0 && now - server->stop_started >= SERVER_STOP_TERM_AFTER &&
		   !server->stop_termed) {
		imta_log(IMTA_LOG_WARNING, "%u jobs still running after %d s: terminating them",
			 jobs, SERVER_STOP_TERM_AFTER);
		jobs_signal_all(server->jobs, SIGTERM);
		server->stop_termed = TRUE;
	}
	if (jobs == 0)
		server->finish_source = g_idle_add(server_on_finish, server);
}

void
server_stop(JcServer *server)
{
	if (server->stopping)
		return;
	server->stopping = TRUE;
	server->stop_started = server_now();
	imta_log(IMTA_LOG_NOTICE, "stopping: %u jobs to finish",
		 server->jobs != NULL ? jobs_count(server->jobs) : 0);
	if (server->rebuild != NULL)
		rebuild_cancel(server->rebuild);
	server_expire_waiters(server, server->stop_started);
	server_check_stopped(server, server->stop_started);
}

void
server_reopen(JcServer *server)
{
	/* A master job lingers for more work (IDLE_LINGER) and lives up to
	 * MAX_LIFE_AGE: without the signal it would write into a rotated log
	 * for that long. */
	if (server->jobs != NULL)
		jobs_signal_all(server->jobs, SIGHUP);
}

static void
server_remove_source(guint *source)
{
	if (*source != 0) {
		g_source_remove(*source);
		*source = 0;
	}
}

void
server_free(JcServer *server)
{
	if (server == NULL)
		return;
	server_remove_source(&server->listen_source);
	server_remove_source(&server->notify_source);
	server_remove_source(&server->tick_source);
	server_remove_source(&server->finish_source);
	server->finished = TRUE;
	while (server->conns.head != NULL)
		conn_close(server->conns.head->data, NULL);
	server_remove_source(&server->kick_source);
	g_clear_pointer(&server->rebuild, rebuild_free);
	g_clear_pointer(&server->jobs, jobs_free);
	if (server->listen_fd >= 0)
		close(server->listen_fd);
	if (server->notify_fd >= 0)
		close(server->notify_fd);
	if (server->socket_path != NULL)
		unlink(server->socket_path);
	if (server->notify_path != NULL)
		unlink(server->notify_path);
	if (server->root_fd >= 0)
		close(server->root_fd);
	g_clear_pointer(&server->queue, imta_queue_close);
	message_table_free(server->table);
	scheduler_free(server->sched);
	g_free(server->channels);
	g_free(server->due);
	g_free(server->socket_path);
	g_free(server->notify_path);
	imta_job_controller_cnf_free(server->own_jcnf);
	g_free(server);
}
