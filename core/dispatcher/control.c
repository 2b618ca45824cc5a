/*
 * control.c - the dispatcher's control socket (see control.h): who may
 * connect, the request lines, and the STATS records.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <glib.h>
#include <glib-unix.h>

#include <imta/fd_watch.h>
#include <imta/daemon.h>
#include <imta/log.h>
#include <imta/xtext.h>
#include "control.h"
#include "service.h"
#include "workers.h"

#define CONTROL_OUTPUT_MAX (256 * 1024 * 1024)

struct _DispControl {
	Dispatcher *disp;
	int fd;
	char *path;
	guint source;
	GQueue clients;
	uid_t euid;
	gid_t egid;
};

typedef struct {
	DispControl *control;
	int fd;
	guint read_source, write_source, idle_source;
	GString *in, *out;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	gboolean closing;             /* close once the output is sent */
	GList link;
} ControlClient;

static void control_client_close(ControlClient *client);

/* ---- STATS ---------------------------------------------------------------- */

static void
control_append_text(GString *out, const char *key, const char *value)
{
	g_string_append_printf(out, " %s=", key);
	if (value == NULL || *value == '\0')
		g_string_append_c(out, '-');
	else
		imta_xtext_append(out, value, -1);
}

static void
control_append_time(GString *out, const char *key, gint64 t)
{
	if (t == 0)
		g_string_append_printf(out, " %s=-", key);
	else
		g_string_append_printf(out, " %s=%" G_GINT64_FORMAT, key, t);
}

static void
control_stats_service(const DispService *svc, GString *out)
{
	const ImtaDispatcherService *cnf = svc->cnf;

	g_string_append(out, "service");
	control_append_text(out, "name", svc->name);
	g_string_append(out, " ports=");
	for (guint i = 0; i < cnf->ports->len; i++)
		g_string_append_printf(out, "%s%u", i > 0 ? "," : "",
				       g_array_index(cnf->ports, guint16, i));
	control_append_text(out, "address", cnf->interface_address);
	g_string_append_printf(out, " accepting=%d workers=%u current=%u total=%" G_GUINT64_FORMAT
			       " refused=%" G_GUINT64_FORMAT " handoffs=%u\n",
			       svc->accepting ? 1 : 0, disp_workers_running(svc),
			       svc->live.length, svc->total, svc->refused, svc->handoffs);
}

static void
control_stats_worker(const DispWorker *worker, GString *out)
{
	g_string_append(out, "worker");
	control_append_text(out, "service", worker->service->name);
	g_string_append_printf(out, " pid=%ld state=%s", (long)worker->pid,
			       disp_worker_state_name(worker->state));
	control_append_time(out, "started", worker->started);
	g_string_append_printf(out, " current=%u total=%" G_GUINT64_FORMAT, worker->current,
			       worker->total);
	control_append_time(out, "exited", worker->exited);
	control_append_text(out, "status", worker->status);
	g_string_append_c(out, '\n');
}

static void
control_stats_conn(const DispConn *conn, GString *out)
{
	g_string_append_printf(out, "conn id=%" G_GUINT64_FORMAT, conn->id);
	control_append_text(out, "service", conn->service->name);
	g_string_append_printf(out, " client=%s client_port=%u server=%s server_port=%u",
			       conn->remote_ip, conn->remote_port, conn->local_ip,
			       conn->local_port);
	control_append_text(out, "ident", conn->ident_user);
	if (conn->worker_pid > 0)
		g_string_append_printf(out, " worker=%ld", (long)conn->worker_pid);
	else
		g_string_append(out, " worker=-");
	g_string_append_printf(out, " state=%s", disp_conn_state_name(conn->state));
	control_append_time(out, "start", conn->started);
	control_append_time(out, "end", conn->ended);
	control_append_text(out, "outcome", conn->outcome);
	g_string_append_c(out, '\n');
}

void
disp_control_stats(Dispatcher *disp, GString *out)
{
	g_string_append_printf(out, "dispatcher pid=%ld started=%" G_GINT64_FORMAT " now=%"
			       G_GINT64_FORMAT " stopping=%d\n", (long)getpid(), disp->started,
			       disp_now(), disp->stopping ? 1 : 0);
	for (guint i = 0; i < disp->services->len; i++) {
		const DispService *svc = g_ptr_array_index(disp->services, i);

		control_stats_service(svc, out);
		for (GList *link = svc->workers.head; link != NULL; link = link->next)
			control_stats_worker(link->data, out);
		for (GList *link = svc->exited.head; link != NULL; link = link->next)
			control_stats_worker(link->data, out);
		for (GList *link = svc->history.head; link != NULL; link = link->next)
			control_stats_conn(link->data, out);
		for (GList *link = svc->live.head; link != NULL; link = link->next)
			control_stats_conn(link->data, out);
	}
}

/* ---- clients ---------------------------------------------------------------- */

static gboolean control_client_on_writable(gint fd, GIOCondition condition, gpointer user_data);

/* Send what is pending; FALSE when the client was closed. */
static gboolean
control_client_flush(ControlClient *client)
{
	while (client->out->len > 0) {
		ssize_t n = send(client->fd, client->out->str, client->out->len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (client->write_source == 0)
				client->write_source = imta_fd_watch_add(client->fd, G_IO_OUT,
								     control_client_on_writable,
								     client);
			return TRUE;
		}
		if (n < 0) {
			control_client_close(client);
			return FALSE;
		}
		g_string_erase(client->out, 0, n);
	}
	if (client->write_source != 0)
		g_clear_handle_id(&client->write_source, g_source_remove);
	if (client->closing) {
		control_client_close(client);
		return FALSE;
	}
	return TRUE;
}

static gboolean
control_client_on_writable(gint fd, GIOCondition condition, gpointer user_data)
{
	ControlClient *client = user_data;
	guint source = client->write_source;

	/* control_client_flush() must not remove the source being dispatched. */
	client->write_source = 0;
	if (!control_client_flush(client))
		return G_SOURCE_REMOVE;
	if (client->out->len == 0)
		return G_SOURCE_REMOVE;
	if (client->write_source != 0)
		g_source_remove(client->write_source);
	client->write_source = source;
	return G_SOURCE_CONTINUE;
}

static void
control_client_close(ControlClient *client)
{
	if (client->read_source != 0)
		g_source_remove(client->read_source);
	if (client->write_source != 0)
		g_source_remove(client->write_source);
	if (client->idle_source != 0)
		g_source_remove(client->idle_source);
	g_queue_unlink(&client->control->clients, &client->link);
	close(client->fd);
	g_string_free(client->in, TRUE);
	g_string_free(client->out, TRUE);
	g_free(client);
}

static gboolean
control_client_may_stop(const ControlClient *client)
{
	return client->uid == 0 || client->uid == client->control->euid;
}

/* Answer one request line; FALSE when the client was closed. */
static gboolean
control_client_request(ControlClient *client, const char *line)
{
	Dispatcher *disp = client->control->disp;

	disp_debug(disp->debug, DISP_DEBUG_STATS, "control request from pid %ld: %s",
		   (long)client->pid, line);
	if (g_ascii_strcasecmp(line, "STATS") == 0) {
		disp_control_stats(disp, client->out);
		g_string_append(client->out, ".\n");
	} else if (g_ascii_strcasecmp(line, "SHUTDOWN") == 0) {
		if (!control_client_may_stop(client)) {
			g_string_append(client->out, "ERR permission denied\n");
		} else {
			imta_log(IMTA_LOG_NOTICE, "SHUTDOWN requested by pid %ld (uid %ld)",
				 (long)client->pid, (long)client->uid);
			g_string_append(client->out, "OK shutting down\n");
			client->closing = TRUE;
			if (!control_client_flush(client))
				client = NULL;
			disp_stop(disp, "SHUTDOWN request");
			return client != NULL;
		}
	} else if (*line != '\0') {
		g_string_append(client->out, "ERR unknown request (expected STATS or SHUTDOWN)\n");
	}
	if (client->out->len > CONTROL_OUTPUT_MAX) {
		control_client_close(client);
		return FALSE;
	}
	return control_client_flush(client);
}

static gboolean
control_client_on_readable(gint fd, GIOCondition condition, gpointer user_data)
{
	ControlClient *client = user_data;
	char buf[1024];
	ssize_t n;
	char *nl;

	do
		n = recv(fd, buf, sizeof(buf), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return G_SOURCE_CONTINUE;
	if (n <= 0 || client->closing) {
		client->read_source = 0;
		if (n <= 0 && client->out->len > 0 && !client->closing) {
			/* Half-closed: the answers still go out. */
			client->closing = TRUE;
			return G_SOURCE_REMOVE;
		}
		if (n <= 0)
			control_client_close(client);
		return G_SOURCE_REMOVE;
	}
	g_string_append_len(client->in, buf, n);
	while ((nl = memchr(client->in->str, '\n', client->in->len)) != NULL) {
		g_autofree char *line = g_strndup(client->in->str, nl - client->in->str);

		g_string_erase(client->in, 0, nl - client->in->str + 1);
		g_strstrip(line);
		if (!control_client_request(client, line))
			return G_SOURCE_REMOVE;
		if (client->closing) {
			client->read_source = 0;
			return G_SOURCE_REMOVE;
		}
	}
	if (client->in->len > DISP_CONTROL_LINE_MAX) {
		g_string_append(client->out, "ERR request line too long\n");
		client->closing = TRUE;
		client->read_source = 0;
		control_client_flush(client);
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

static gboolean
control_client_on_idle(gpointer user_data)
{
	ControlClient *client = user_data;

	client->idle_source = 0;
	control_client_close(client);
	return G_SOURCE_REMOVE;
}

static gboolean
control_on_connect(gint fd, GIOCondition condition, gpointer user_data)
{
	DispControl *control = user_data;

	for (;;) {
		struct ucred cred;
		ControlClient *client;
		int cfd = imta_daemon_accept_local(fd, control->path, &cred);

		if (cfd < 0)
			break;
		if ((cred.uid != 0 && cred.uid != control->euid && cred.gid != control->egid) ||
		    control->clients.length >= DISP_CONTROL_CLIENTS_MAX) {
			static const char denied[] = "ERR permission denied\n";
			static const char busy[] = "ERR too many connections\n";
			gboolean full = control->clients.length >= DISP_CONTROL_CLIENTS_MAX;

			if (!full)
				imta_log(IMTA_LOG_WARNING, "control socket: refused uid %ld "
					 "(pid %ld)", (long)cred.uid, (long)cred.pid);
			(void)!send(cfd, full ? busy : denied, full ? sizeof(busy) - 1 :
				    sizeof(denied) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(cfd);
			continue;
		}
		client = g_new0(ControlClient, 1);
		client->control = control;
		client->fd = cfd;
		client->uid = cred.uid;
		client->gid = cred.gid;
		client->pid = cred.pid;
		client->in = g_string_new(NULL);
		client->out = g_string_new(NULL);
		client->link.data = client;
		g_queue_push_tail_link(&control->clients, &client->link);
		client->read_source = imta_fd_watch_add(cfd, G_IO_IN, control_client_on_readable,
						    client);
		client->idle_source = g_timeout_add_seconds(DISP_CONTROL_IDLE_SECONDS,
							    control_client_on_idle, client);
	}
	return G_SOURCE_CONTINUE;
}

/* ---- the socket ----------------------------------------------------------- */

DispControl *
disp_control_new(Dispatcher *disp, const char *path, GError **error)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	DispControl *control;
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FILENAME_TOO_LONG,
			    "socket path %s is longer than the %zu bytes a socket address holds",
			    path, sizeof(addr.sun_path) - 1);
		return NULL;
	}
	strcpy(addr.sun_path, path);
	/* One left by an earlier instance: we hold the pid file, so nobody
	 * uses it.  Anything but a socket is not ours to remove. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS,
				    "%s exists and is not a socket", path);
			return NULL;
		}
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    chmod(path, 0660) < 0 || listen(fd, 16) < 0) {
		int errnum = errno;

		if (fd >= 0)
			close(fd);
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errnum),
			    "cannot listen on %s: %s", path, g_strerror(errnum));
		return NULL;
	}
	control = g_new0(DispControl, 1);
	control->disp = disp;
	control->fd = fd;
	control->path = g_strdup(path);
	g_queue_init(&control->clients);
	return control;
}

void
disp_control_start(DispControl *control)
{
	/* After the privilege drop: the user the requests are checked against. */
	control->euid = geteuid();
	control->egid = getegid();
	control->source = imta_fd_watch_add(control->fd, G_IO_IN, control_on_connect, control);
}

void
disp_control_free(DispControl *control)
{
	ControlClient *client;

	if (control == NULL)
		return;
	while ((client = g_queue_peek_head(&control->clients)) != NULL)
		control_client_close(client);
	if (control->source != 0)
		g_source_remove(control->source);
	close(control->fd);
	if (unlink(control->path) < 0 && errno != ENOENT)
		imta_log(IMTA_LOG_WARNING, "cannot remove %s: %s", control->path,
			 g_strerror(errno));
	g_free(control->path);
	g_free(control);
}
