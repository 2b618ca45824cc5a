/*
 * cmd_service.c - imsimta start|stop|restart [dispatcher|job_controller]
 * (and start-msg / stop-msg, the same verbs under their old names), and
 * imsimta stats, the dispatcher's statistics.
 *
 * start runs the component's program (imta-dispatcher or
 * imta-job-controller) from $IMTA_LIBEXEC (else the installed libexec
 * directory) in a session of its own; the program detaches by itself and
 * its first process exits once the daemon is ready, after which its
 * socket must answer.  stop asks the component to SHUTDOWN over its
 * socket (the job controller lets master jobs finish the message in hand,
 * the dispatcher lets its workers finish their sessions) and waits for the
 * process named in its pid file to go; only if it outlives the wait is
 * that one pid sent SIGTERM.  Nothing else is ever signalled.  Without a
 * component, both are acted on: the job controller starts first and stops
 * last, so mail the dispatcher accepts always finds it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/daemon.h>
#include <imta/imta.h>
#include <imta/jc_client.h>
#include <imta/xtext.h>
#include "commands.h"

#define SERVICE_START_TIMEOUT 10   /* seconds until the new daemon must answer */
#define SERVICE_TERM_TIMEOUT 10    /* seconds after SIGTERM */
#define SERVICE_READY_GRACE 3      /* seconds from "ready" to an answer */
#define SERVICE_POLL_US 50000
#define SERVICE_REPLY_TIMEOUT_MS 10000
#define SERVICE_STATS_MAX (256 * 1024 * 1024)

/* As the dispatcher names them (core/dispatcher/control.h). */
#define DISPATCHER_SOCKET "dispatcher.sock"
#define DISPATCHER_PID_FILE "dispatcher.pid"

typedef struct {
	const char *name;            /* on the command line */
	const char *title;           /* in messages */
	const char *program;
	const char *pid_file;
	const char *stderr_file;     /* the start's error output, in IMTA_LOG */
	guint stop_timeout;          /* default seconds for a clean stop */
	gboolean (*answers)(const ImtaConfig *config);
	char *(*shutdown)(const ImtaConfig *config, GError **error);
} ServiceComponent;

/* ---- talking to the daemons --------------------------------------------- */

static gboolean
jc_answers(const ImtaConfig *config)
{
	g_autoptr(ImtaJcClient) jc = imta_jc_client_connect(config->tailor->run_dir, "admin", NULL,
							    1000, NULL);

	return jc != NULL;
}

static char *
jc_shutdown(const ImtaConfig *config, GError **error)
{
	g_autoptr(ImtaJcClient) jc = imta_jc_client_connect(config->tailor->run_dir, "admin", NULL,
							    2000, error);

	if (jc == NULL)
		return NULL;
	return imta_jc_client_request(jc, "SHUTDOWN", error);
}

/* A connection to the dispatcher's control socket, or -1 (error set). */
static int
dispatcher_connect(const ImtaConfig *config, int timeout_ms, GError **error)
{
	g_autofree char *path = g_build_filename(config->tailor->run_dir, DISPATCHER_SOCKET, NULL);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FILENAME_TOO_LONG,
			    "%s: path too long for a socket", path);
		return -1;
	}
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int errnum = errno;

		if (fd >= 0)
			close(fd);
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errnum),
			    "the dispatcher is not running (no answer on %s: %s)", path,
			    g_strerror(errnum));
		return -1;
	}
	return fd;
}

/* Send `request`; read the answer: one line, or (multi) lines up to ".".
 * The answer is returned without the final line end (and "."). */
static char *
dispatcher_request(int fd, const char *request, gboolean multi, GError **error)
{
	g_autofree char *line = g_strdup_printf("%s\n", request);
	g_autoptr(GString) reply = g_string_new(NULL);
	char buf[65536];

	if (send(fd, line, strlen(line), MSG_NOSIGNAL) != (ssize_t)strlen(line)) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
			    "cannot send %s to the dispatcher: %s", request, g_strerror(errno));
		return NULL;
	}
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
				    "no answer from the dispatcher to %s: %s", request,
				    errno == EAGAIN ? "timed out" : g_strerror(errno));
			return NULL;
		}
		if (n == 0)
			break;
		g_string_append_len(reply, buf, n);
		if (reply->len > SERVICE_STATS_MAX) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
				    "the dispatcher's answer to %s exceeds %d bytes", request,
				    SERVICE_STATS_MAX);
			return NULL;
		}
		if (g_str_has_prefix(reply->str, "ERR ") ||
		    (!multi && memchr(reply->str, '\n', reply->len) != NULL) ||
		    (multi && (strcmp(reply->str, ".\n") == 0 ||
			       g_str_has_suffix(reply->str, "\n.\n"))))
			break;
	}
	if (g_str_has_prefix(reply->str, "ERR ")) {
		g_strchomp(reply->str);
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
			    "the dispatcher refused %s: %s", request, reply->str + 4);
		return NULL;
	}
	if (multi ? !g_str_has_suffix(reply->str, ".\n") : reply->len == 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
			    "the dispatcher closed the connection before answering %s", request);
		return NULL;
	}
	g_string_truncate(reply, reply->len - (multi ? 2 : 1));
	return g_string_free(g_steal_pointer(&reply), FALSE);
}

static gboolean
dispatcher_answers(const ImtaConfig *config)
{
	int fd = dispatcher_connect(config, 1000, NULL);

	if (fd < 0)
		return FALSE;
	close(fd);
	return TRUE;
}

static char *
dispatcher_shutdown(const ImtaConfig *config, GError **error)
{
	int fd = dispatcher_connect(config, 2000, error);
	char *reply;

	if (fd < 0)
		return NULL;
	reply = dispatcher_request(fd, "SHUTDOWN", FALSE, error);
	close(fd);
	return reply;
}

static const ServiceComponent components[] = {
	{ "job_controller", "job controller", "imta-job-controller", IMTA_JC_PID_FILE,
	  "job_controller.stderr", 30, jc_answers, jc_shutdown },
	/* The dispatcher kills workers still draining after 30 s itself. */
	{ "dispatcher", "dispatcher", "imta-dispatcher", DISPATCHER_PID_FILE,
	  "dispatcher.stderr", 40, dispatcher_answers, dispatcher_shutdown },
};

static const ServiceComponent *
service_component(const char *name)
{
	for (gsize i = 0; i < G_N_ELEMENTS(components); i++)
		if (strcmp(components[i].name, name) == 0)
			return &components[i];
	return NULL;
}

/* ---- the daemon's process --------------------------------------------- */

/* The pid in the component's pid file, or 0. */
static pid_t
service_read_pid(const ImtaConfig *config, const ServiceComponent *comp)
{
	g_autofree char *path = g_build_filename(config->tailor->run_dir, comp->pid_file, NULL);
	g_autofree char *text = NULL;
	guint64 pid;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return 0;
	g_strstrip(text);
	if (!g_ascii_string_to_unsigned(text, 10, 2, G_MAXINT32, &pid, NULL))
		return 0;
	return (pid_t)pid;
}

/* Is `pid` a live (not zombie) process of the component?  Where /proc
 * exists, its program name must be the component's, so a stale pid file
 * whose pid was reused never gets another process signalled. */
static gboolean
service_pid_is_component(pid_t pid, const ServiceComponent *comp)
{
	g_autofree char *stat_path = g_strdup_printf("/proc/%d/stat", (int)pid);
	g_autofree char *cmd_path = g_strdup_printf("/proc/%d/cmdline", (int)pid);
	g_autofree char *stat = NULL;
	g_autofree char *cmdline = NULL;
	g_autofree char *base = NULL;
	const char *paren;

	if (pid <= 1 || (kill(pid, 0) < 0 && errno == ESRCH))
		return FALSE;
	if (!g_file_test("/proc/self/stat", G_FILE_TEST_EXISTS))
		return TRUE;
	if (!g_file_get_contents(stat_path, &stat, NULL, NULL) ||
	    !g_file_get_contents(cmd_path, &cmdline, NULL, NULL))
		return FALSE;
	/* "pid (comm) S ...": a zombie has exited already. */
	paren = strrchr(stat, ')');
	if (paren == NULL || paren[1] != ' ' || paren[2] == 'Z' || paren[2] == 'X')
		return FALSE;
	base = g_path_get_basename(cmdline);
	return g_str_has_suffix(base, comp->program);
}

static char *
service_program(const ServiceComponent *comp)
{
	const char *dir = g_getenv("IMTA_LIBEXEC");

	return g_build_filename(dir != NULL && dir[0] != '\0' ? dir : IMTA_LIBEXECDIR,
				comp->program, NULL);
}

static void
service_show_stderr(const char *path)
{
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;

	if (!g_file_get_contents(path, &text, NULL, NULL) || text[0] == '\0')
		return;
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL && i < 40; i++)
		if (lines[i][0] != '\0')
			fprintf(stderr, "  %s\n", lines[i]);
}

/* The child side of start: its own session, no terminal, stderr kept in
 * a file for the parent to show when start fails. */
static void G_GNUC_NORETURN
service_exec(const char *program, const char *config_dir, const char *stderr_path)
{
	int null_fd = open("/dev/null", O_RDWR);
	int err_fd = open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0640);

	setsid();
	if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(null_fd, STDOUT_FILENO) < 0)
		_exit(126);
	if (err_fd >= 0)
		dup2(err_fd, STDERR_FILENO);
	else
		dup2(null_fd, STDERR_FILENO);
	for (int fd = STDERR_FILENO + 1; fd < 1024; fd++)
		close(fd);
	if (chdir("/") < 0)
		_exit(126);
	execl(program, program, "--config", config_dir, (char *)NULL);
	fprintf(stderr, "cannot run %s: %s\n", program, g_strerror(errno));
	_exit(127);
}

static int
service_start(const ImtaConfig *config, const ServiceComponent *comp, const char *verb)
{
	g_autofree char *program = service_program(comp);
	g_autofree char *stderr_path = g_build_filename(config->tailor->log_dir, comp->stderr_file,
							NULL);
	pid_t running = service_read_pid(config, comp);
	gint64 deadline;
	pid_t child;
	gboolean child_exited = FALSE;
	g_autoptr(GError) error = NULL;

	if (comp->answers(config) || (running > 0 && service_pid_is_component(running, comp))) {
		if (running > 0)
			fprintf(stderr, "imsimta %s: the %s is already running (pid %d)\n", verb,
				comp->title, (int)running);
		else
			fprintf(stderr, "imsimta %s: the %s is already running\n", verb,
				comp->title);
		return 1;
	}
	if (!g_file_test(program, G_FILE_TEST_IS_EXECUTABLE)) {
		fprintf(stderr, "imsimta %s: cannot run %s: %s (IMTA_LIBEXEC names the directory "
			"of the MTA's programs)\n", verb, program, g_strerror(ENOENT));
		return EXIT_UNAVAILABLE;
	}
	/* The daemon's standard error goes to IMTA_LOG before it runs. */
	if (!imta_daemon_prepare_dirs(config, &error)) {
		fprintf(stderr, "imsimta %s: %s\n", verb, error->message);
		return EXIT_UNAVAILABLE;
	}
	fflush(NULL);
	child = fork();
	if (child < 0) {
		fprintf(stderr, "imsimta %s: fork: %s\n", verb, g_strerror(errno));
		return EXIT_UNAVAILABLE;
	}
	if (child == 0)
		service_exec(program, config->dir, stderr_path);
	deadline = g_get_monotonic_time() + SERVICE_START_TIMEOUT * G_USEC_PER_SEC;
	while (g_get_monotonic_time() < deadline) {
		int wstatus;

		/* The daemon detaches by itself: the process we started exits 0
		 * once it is ready (its socket answers within moments), or
		 * nonzero after printing why it failed. */
		if (!child_exited && waitpid(child, &wstatus, WNOHANG) == child) {
			child_exited = TRUE;
			deadline = MIN(deadline, g_get_monotonic_time() +
						 SERVICE_READY_GRACE * G_USEC_PER_SEC);
			if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
				gboolean exited = WIFEXITED(wstatus);

				fprintf(stderr, "imsimta %s: the %s did not start (%s %d):\n", verb,
					comp->title, exited ? "exit status" : "signal",
					exited ? WEXITSTATUS(wstatus) : WTERMSIG(wstatus));
				service_show_stderr(stderr_path);
				return WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == EXIT_CONFIG
					       ? EXIT_CONFIG
					       : EXIT_UNAVAILABLE;
			}
		}
		if (child_exited && comp->answers(config)) {
			pid_t pid = service_read_pid(config, comp);
			GStatBuf st;

			/* Keep the start-up error file only when it says something. */
			if (g_stat(stderr_path, &st) == 0 && st.st_size == 0)
				g_unlink(stderr_path);
			printf("%s started (pid %d)\n", comp->title,
			       pid > 0 ? (int)pid : (int)child);
			return 0;
		}
		g_usleep(SERVICE_POLL_US);
	}
	if (child_exited)
		fprintf(stderr, "imsimta %s: the %s started but does not answer on its socket in "
			"%s; see its log in %s\n", verb, comp->title, config->tailor->run_dir,
			config->tailor->log_dir);
	else
		fprintf(stderr, "imsimta %s: the %s (pid %d) did not become ready within %d s; "
			"see %s and its log in %s\n", verb, comp->title, (int)child,
			SERVICE_START_TIMEOUT, stderr_path, config->tailor->log_dir);
	return EXIT_UNAVAILABLE;
}

/* Wait until `pid` is gone (or, without a pid, the socket stops answering). */
static gboolean
service_wait_gone(const ImtaConfig *config, const ServiceComponent *comp, pid_t pid,
		  guint seconds)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)seconds * G_USEC_PER_SEC;

	do {
		if (pid > 0 ? !service_pid_is_component(pid, comp) : !comp->answers(config))
			return TRUE;
		g_usleep(SERVICE_POLL_US);
	} while (g_get_monotonic_time() < deadline);
	return FALSE;
}

static int
service_stop(const ImtaConfig *config, const ServiceComponent *comp, const char *verb,
	     guint timeout)
{
	pid_t pid = service_read_pid(config, comp);
	g_autoptr(GError) error = NULL;
	g_autofree char *reply = NULL;

	if (pid > 0 && !service_pid_is_component(pid, comp))
		pid = 0; /* a stale pid file */
	if (pid == 0 && !comp->answers(config)) {
		printf("%s not running\n", comp->title);
		return 0;
	}
	reply = comp->shutdown(config, &error);
	if (reply == NULL)
		fprintf(stderr, "imsimta %s: SHUTDOWN: %s\n", verb, error->message);
	if (reply != NULL && service_wait_gone(config, comp, pid, timeout)) {
		printf("%s stopped\n", comp->title);
		return 0;
	}
	if (pid == 0) {
		fprintf(stderr, "imsimta %s: the %s still answers after %u s and its pid file "
			"names no running %s; not signalling anything\n", verb, comp->title,
			timeout, comp->title);
		return EXIT_SOFTWARE;
	}
	if (reply != NULL)
		fprintf(stderr, "imsimta %s: the %s (pid %d) is still running after %u s; "
			"sending SIGTERM\n", verb, comp->title, (int)pid, timeout);
	else
		fprintf(stderr, "imsimta %s: the %s (pid %d) does not answer; sending SIGTERM\n",
			verb, comp->title, (int)pid);
	if (kill(pid, SIGTERM) < 0 && errno != ESRCH) {
		fprintf(stderr, "imsimta %s: kill %d: %s\n", verb, (int)pid, g_strerror(errno));
		return EXIT_SOFTWARE;
	}
	if (!service_wait_gone(config, comp, pid, SERVICE_TERM_TIMEOUT)) {
		fprintf(stderr, "imsimta %s: the %s (pid %d) is still running %d s after "
			"SIGTERM\n", verb, comp->title, (int)pid, SERVICE_TERM_TIMEOUT);
		return EXIT_SOFTWARE;
	}
	printf("%s stopped\n", comp->title);
	return 0;
}

/* ---- stats --------------------------------------------------------------- */

typedef struct {
	char *type;
	GHashTable *fields;          /* key -> decoded value; "-" is absent */
} StatsRecord;

static void
stats_record_free(gpointer data)
{
	StatsRecord *rec = data;

	g_free(rec->type);
	g_hash_table_unref(rec->fields);
	g_free(rec);
}

static const char *
stats_get(const StatsRecord *rec, const char *key)
{
	return g_hash_table_lookup(rec->fields, key);
}

static gint64
stats_int(const StatsRecord *rec, const char *key)
{
	const char *value = stats_get(rec, key);

	return value != NULL ? g_ascii_strtoll(value, NULL, 10) : 0;
}

static GPtrArray *
stats_parse(const char *text, GError **error)
{
	g_autoptr(GPtrArray) records = g_ptr_array_new_with_free_func(stats_record_free);
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

	for (guint i = 0; lines[i] != NULL; i++) {
		g_auto(GStrv) words = NULL;
		StatsRecord *rec;

		if (lines[i][0] == '\0')
			continue;
		words = g_strsplit(lines[i], " ", -1);
		rec = g_new0(StatsRecord, 1);
		rec->type = g_strdup(words[0]);
		rec->fields = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
		g_ptr_array_add(records, rec);
		for (guint j = 1; words[j] != NULL; j++) {
			const char *eq = strchr(words[j], '=');
			char *value;

			if (eq == NULL) {
				g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
					    "malformed statistics line %u: %s", i + 1, lines[i]);
				return NULL;
			}
			if (strcmp(eq + 1, "-") == 0)
				continue;
			value = imta_xtext_decode(eq + 1, -1, NULL, error);
			if (value == NULL)
				return NULL;
			g_hash_table_insert(rec->fields, g_strndup(words[j], eq - words[j]), value);
		}
	}
	return g_steal_pointer(&records);
}

static char *
stats_time(gint64 t)
{
	g_autoptr(GDateTime) dt = NULL;

	if (t == 0)
		return g_strdup("-");
	dt = g_date_time_new_from_unix_local(t);
	return dt != NULL ? g_date_time_format(dt, "%Y-%m-%d %H:%M:%S") : g_strdup("-");
}

static char *
stats_duration(gint64 seconds)
{
	if (seconds < 0)
		seconds = 0;
	if (seconds >= 86400)
		return g_strdup_printf("%" G_GINT64_FORMAT "d %02" G_GINT64_FORMAT "h%02"
				       G_GINT64_FORMAT "m", seconds / 86400, seconds % 86400 / 3600,
				       seconds % 3600 / 60);
	return g_strdup_printf("%" G_GINT64_FORMAT ":%02" G_GINT64_FORMAT ":%02" G_GINT64_FORMAT,
			       seconds / 3600, seconds % 3600 / 60, seconds % 60);
}

static const char *
stats_or_dash(const char *value)
{
	return value != NULL ? value : "-";
}

static gboolean
stats_in_service(const StatsRecord *rec, const char *service)
{
	return g_strcmp0(stats_get(rec, "service"), service) == 0;
}

static void
stats_print_service(GPtrArray *records, const StatsRecord *svc)
{
	const char *name = stats_get(svc, "name");
	const char *address = stats_get(svc, "address");
	gboolean header = FALSE;

	printf("\nService %s: port%s %s on %s, %s\n", stats_or_dash(name),
	       strchr(stats_or_dash(stats_get(svc, "ports")), ',') != NULL ? "s" : "",
	       stats_or_dash(stats_get(svc, "ports")),
	       address != NULL ? address : "every address",
	       stats_int(svc, "accepting") ? "accepting" : "not accepting");
	printf("  %" G_GINT64_FORMAT " workers; connections: %" G_GINT64_FORMAT " current, %"
	       G_GINT64_FORMAT " total, %" G_GINT64_FORMAT " refused, %" G_GINT64_FORMAT
	       " waiting for a worker\n", stats_int(svc, "workers"), stats_int(svc, "current"),
	       stats_int(svc, "total"), stats_int(svc, "refused"), stats_int(svc, "handoffs"));
	for (guint i = 0; i < records->len; i++) {
		const StatsRecord *rec = g_ptr_array_index(records, i);
		g_autofree char *started = NULL, *exited = NULL;

		if (strcmp(rec->type, "worker") != 0 || !stats_in_service(rec, name))
			continue;
		if (!header)
			printf("  Workers:\n    %-8s %-9s %-19s %7s %7s  %s\n", "PID", "STATE",
			       "STARTED", "CURRENT", "TOTAL", "EXITED");
		header = TRUE;
		started = stats_time(stats_int(rec, "started"));
		exited = stats_time(stats_int(rec, "exited"));
		printf("    %-8s %-9s %-19s %7" G_GINT64_FORMAT " %7" G_GINT64_FORMAT "  %s%s%s\n",
		       stats_or_dash(stats_get(rec, "pid")), stats_or_dash(stats_get(rec, "state")),
		       started, stats_int(rec, "current"), stats_int(rec, "total"), exited,
		       stats_get(rec, "status") != NULL ? " " : "",
		       stats_get(rec, "status") != NULL ? stats_get(rec, "status") : "");
	}
	header = FALSE;
	for (guint i = 0; i < records->len; i++) {
		const StatsRecord *rec = g_ptr_array_index(records, i);
		g_autofree char *client = NULL, *start = NULL, *end = NULL;

		if (strcmp(rec->type, "conn") != 0 || !stats_in_service(rec, name))
			continue;
		if (!header)
			printf("  Connections:\n    %-7s %-28s %-12s %-8s %-8s %-19s %-19s %s\n",
			       "ID", "CLIENT", "IDENT", "WORKER", "STATE", "START", "END",
			       "OUTCOME");
		header = TRUE;
		client = g_strdup_printf("%s:%s", stats_or_dash(stats_get(rec, "client")),
					 stats_or_dash(stats_get(rec, "client_port")));
		start = stats_time(stats_int(rec, "start"));
		end = stats_time(stats_int(rec, "end"));
		printf("    %-7s %-28s %-12s %-8s %-8s %-19s %-19s %s\n",
		       stats_or_dash(stats_get(rec, "id")), client,
		       stats_or_dash(stats_get(rec, "ident")),
		       stats_or_dash(stats_get(rec, "worker")),
		       stats_or_dash(stats_get(rec, "state")), start, end,
		       stats_or_dash(stats_get(rec, "outcome")));
	}
}

static void
stats_print(GPtrArray *records)
{
	for (guint i = 0; i < records->len; i++) {
		const StatsRecord *rec = g_ptr_array_index(records, i);

		if (strcmp(rec->type, "dispatcher") == 0) {
			g_autofree char *since = stats_time(stats_int(rec, "started"));
			g_autofree char *up = stats_duration(stats_int(rec, "now") -
							     stats_int(rec, "started"));

			printf("Dispatcher pid %s, started %s, up %s%s\n",
			       stats_or_dash(stats_get(rec, "pid")), since, up,
			       stats_int(rec, "stopping") ? ", shutting down" : "");
		} else if (strcmp(rec->type, "service") == 0) {
			stats_print_service(records, rec);
		}
	}
}

static void
json_string(GString *out, const char *text)
{
	if (text == NULL) {
		g_string_append(out, "null");
		return;
	}
	g_string_append_c(out, '"');
	for (const guchar *p = (const guchar *)text; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			g_string_append_printf(out, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			g_string_append_printf(out, "\\u%04x", *p);
		else
			g_string_append_c(out, *p);
	}
	g_string_append_c(out, '"');
}

/* A field as a JSON number, or null when absent. */
static void
json_number(GString *out, const StatsRecord *rec, const char *key)
{
	const char *value = stats_get(rec, key);

	if (value == NULL || value[0] == '\0' || strspn(value, "0123456789") != strlen(value))
		g_string_append(out, "null");
	else
		g_string_append_printf(out, "%" G_GINT64_FORMAT, g_ascii_strtoll(value, NULL, 10));
}

static void
json_member(GString *out, const char *key, gboolean first)
{
	if (!first)
		g_string_append(out, ", ");
	json_string(out, key);
	g_string_append(out, ": ");
}

static void
json_worker(GString *out, const StatsRecord *rec)
{
	g_string_append_c(out, '{');
	json_member(out, "pid", TRUE);
	json_number(out, rec, "pid");
	json_member(out, "state", FALSE);
	json_string(out, stats_get(rec, "state"));
	json_member(out, "started", FALSE);
	json_number(out, rec, "started");
	json_member(out, "current", FALSE);
	json_number(out, rec, "current");
	json_member(out, "total", FALSE);
	json_number(out, rec, "total");
	json_member(out, "exited", FALSE);
	json_number(out, rec, "exited");
	json_member(out, "status", FALSE);
	json_string(out, stats_get(rec, "status"));
	g_string_append_c(out, '}');
}

static void
json_conn(GString *out, const StatsRecord *rec)
{
	static const char *const numbers[] = { "client_port", "server_port", "worker", "start",
					       "end" };

	g_string_append_c(out, '{');
	json_member(out, "id", TRUE);
	json_number(out, rec, "id");
	json_member(out, "client", FALSE);
	json_string(out, stats_get(rec, "client"));
	json_member(out, "server", FALSE);
	json_string(out, stats_get(rec, "server"));
	json_member(out, "ident", FALSE);
	json_string(out, stats_get(rec, "ident"));
	json_member(out, "state", FALSE);
	json_string(out, stats_get(rec, "state"));
	json_member(out, "outcome", FALSE);
	json_string(out, stats_get(rec, "outcome"));
	for (gsize i = 0; i < G_N_ELEMENTS(numbers); i++) {
		json_member(out, numbers[i], FALSE);
		json_number(out, rec, numbers[i]);
	}
	g_string_append_c(out, '}');
}

static void
json_service(GString *out, GPtrArray *records, const StatsRecord *svc)
{
	const char *name = stats_get(svc, "name");
	g_auto(GStrv) ports = g_strsplit(stats_or_dash(stats_get(svc, "ports")), ",", -1);
	static const char *const numbers[] = { "current", "total", "refused", "handoffs" };
	gboolean first = TRUE;

	g_string_append_c(out, '{');
	json_member(out, "name", TRUE);
	json_string(out, name);
	json_member(out, "ports", FALSE);
	g_string_append_c(out, '[');
	for (guint i = 0; ports[i] != NULL; i++)
		g_string_append_printf(out, "%s%s", i > 0 ? ", " : "", ports[i]);
	g_string_append_c(out, ']');
	json_member(out, "address", FALSE);
	json_string(out, stats_get(svc, "address"));
	json_member(out, "accepting", FALSE);
	g_string_append(out, stats_int(svc, "accepting") ? "true" : "false");
	json_member(out, "running_workers", FALSE);
	json_number(out, svc, "workers");
	for (gsize i = 0; i < G_N_ELEMENTS(numbers); i++) {
		json_member(out, numbers[i], FALSE);
		json_number(out, svc, numbers[i]);
	}
	json_member(out, "workers", FALSE);
	g_string_append_c(out, '[');
	for (guint i = 0; i < records->len; i++) {
		const StatsRecord *rec = g_ptr_array_index(records, i);

		if (strcmp(rec->type, "worker") != 0 || !stats_in_service(rec, name))
			continue;
		if (!first)
			g_string_append(out, ", ");
		first = FALSE;
		json_worker(out, rec);
	}
	g_string_append(out, "]");
	json_member(out, "connections", FALSE);
	g_string_append_c(out, '[');
	first = TRUE;
	for (guint i = 0; i < records->len; i++) {
		const StatsRecord *rec = g_ptr_array_index(records, i);

		if (strcmp(rec->type, "conn") != 0 || !stats_in_service(rec, name))
			continue;
		if (!first)
			g_string_append(out, ", ");
		first = FALSE;
		json_conn(out, rec);
	}
	g_string_append(out, "]}");
}

static void
stats_print_json(GPtrArray *records)
{
	g_autoptr(GString) out = g_string_new("{");
	gboolean first = TRUE;

	for (guint i = 0; i < records->len; i++) {
		const StatsRecord *rec = g_ptr_array_index(records, i);

		if (strcmp(rec->type, "dispatcher") != 0)
			continue;
		json_member(out, "pid", TRUE);
		json_number(out, rec, "pid");
		json_member(out, "started", FALSE);
		json_number(out, rec, "started");
		json_member(out, "now", FALSE);
		json_number(out, rec, "now");
		json_member(out, "stopping", FALSE);
		g_string_append(out, stats_int(rec, "stopping") ? "true" : "false");
	}
	json_member(out, "services", out->len == 1);
	g_string_append_c(out, '[');
	for (guint i = 0; i < records->len; i++) {
		const StatsRecord *rec = g_ptr_array_index(records, i);

		if (strcmp(rec->type, "service") != 0)
			continue;
		if (!first)
			g_string_append(out, ", ");
		first = FALSE;
		json_service(out, records, rec);
	}
	g_string_append(out, "]}\n");
	fputs(out->str, stdout);
}

static int
cli_stats(const CliGlobal *global, int argc, char **argv)
{
	gboolean json = FALSE;
	const GOptionEntry entries[] = {
		{ "json", 0, 0, G_OPTION_ARG_NONE, &json, "print one JSON object", NULL },
		{ NULL }
	};
	g_autoptr(ImtaConfig) config = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) records = NULL;
	g_autofree char *text = NULL;
	int status = 0;
	int fd;

	if (!cli_parse_options(&argc, &argv, "stats", "",
			       "The running dispatcher's statistics: each service's ports, "
			       "workers and connections (current, total, refused); each worker's "
			       "pid, state, start and connections; recent connections with their "
			       "client, IDENT user, worker, start and end.  Exit status: 0, 64 "
			       "usage, 69 the dispatcher is not running, 78 configuration error.",
			       entries, &status))
		return status;
	if (argc > 1) {
		fprintf(stderr, "imsimta stats: unexpected argument \"%s\"\n", argv[1]);
		return EXIT_USAGE;
	}
	config = cli_load_config(global, 0);
	if (config == NULL)
		return EXIT_CONFIG;
	fd = dispatcher_connect(config, SERVICE_REPLY_TIMEOUT_MS, &error);
	if (fd < 0) {
		fprintf(stderr, "imsimta stats: %s\n", error->message);
		return EXIT_UNAVAILABLE;
	}
	text = dispatcher_request(fd, "STATS", TRUE, &error);
	close(fd);
	if (text != NULL)
		records = stats_parse(text, &error);
	if (records == NULL) {
		fprintf(stderr, "imsimta stats: %s\n", error->message);
		return EXIT_SOFTWARE;
	}
	if (json)
		stats_print_json(records);
	else
		stats_print(records);
	return 0;
}

/* SIGHUP to a running daemon: it reopens its log and has its workers or
 * jobs reopen theirs.  Nothing running is not an error (log rotation
 * calls this whether the MTA runs or not). */
static int
service_reload(const ImtaConfig *config, const ServiceComponent *comp, const char *verb)
{
	pid_t pid = service_read_pid(config, comp);

	if (pid <= 0 || !service_pid_is_component(pid, comp)) {
		printf("%s not running\n", comp->title);
		return 0;
	}
	if (kill(pid, SIGHUP) < 0) {
		fprintf(stderr, "imsimta %s: kill %d: %s\n", verb, (int)pid, g_strerror(errno));
		return EXIT_SOFTWARE;
	}
	printf("%s reopens its logs (pid %d)\n", comp->title, (int)pid);
	return 0;
}

/* `action` on `chosen`, or on every component in start order (the job
 * controller first); the first failure's status, every one acted on. */
static int
service_each(const ImtaConfig *config, const ServiceComponent *chosen, const char *verb,
	     int (*action)(const ImtaConfig *config, const ServiceComponent *comp,
			   const char *verb))
{
	int status = 0;

	for (gsize i = 0; i < G_N_ELEMENTS(components); i++) {
		int rc;

		if (chosen != NULL && chosen != &components[i])
			continue;
		rc = action(config, &components[i], verb);
		if (status == 0)
			status = rc;
	}
	return status;
}

/* ---- the verbs -------------------------------------------------------------- */

int
cli_service(const CliGlobal *global, int argc, char **argv)
{
	const char *verb = argv[0];
	gint timeout = -1;
	const GOptionEntry entries[] = {
		{ "timeout", 0, 0, G_OPTION_ARG_INT, &timeout,
		  "seconds stop waits for a clean shutdown before SIGTERM (default 30 for the "
		  "job controller, 40 for the dispatcher)", "SECONDS" },
		{ NULL }
	};
	g_autofree char *summary = g_strdup_printf(
		"%s the MTA's long-running processes: the dispatcher (SMTP and LMTP "
		"services) and the job controller (channel queues and master jobs). "
		"Without COMPONENT, both: the job controller starts first and stops last.  "
		"start waits up to %d s for each to answer; stop asks each to shut down, "
		"waits --timeout seconds for master jobs to finish the message in hand and "
		"for the dispatcher's workers to finish their sessions, then sends SIGTERM "
		"to the pid in its pid file; reload has each running one reopen its log and "
		"the logs of its workers or master jobs (after log rotation).  Exit status: "
		"0 done (stop and reload also when nothing ran), 1 already running, 64 usage, "
		"69 could not start, 70 would not stop, 78 configuration error.",
		verb, SERVICE_START_TIMEOUT);
	const ServiceComponent *chosen = NULL;
	g_autoptr(ImtaConfig) config = NULL;
	gboolean is_start, is_stop;
	int status = 0;

	if (strcmp(verb, "stats") == 0)
		return cli_stats(global, argc, argv);
	if (!cli_parse_options(&argc, &argv, verb, "[dispatcher|job_controller]", summary, entries,
			       &status))
		return status;
	if (argc == 2)
		chosen = service_component(argv[1]);
	if (argc > 2 || (argc == 2 && chosen == NULL) || timeout < -1) {
		fprintf(stderr, "imsimta %s: expected dispatcher or job_controller\n", verb);
		return EXIT_USAGE;
	}
	config = cli_load_config(global, 0);
	if (config == NULL)
		return EXIT_CONFIG;
	if (strcmp(verb, "reload") == 0)
		return service_each(config, chosen, verb, service_reload);
	is_start = strcmp(verb, "start") == 0 || strcmp(verb, "start-msg") == 0;
	is_stop = strcmp(verb, "stop") == 0 || strcmp(verb, "stop-msg") == 0;
	/* components[] lists the job controller first: start in that order,
	 * stop in the other. */
	if (!is_start) {
		for (gsize i = G_N_ELEMENTS(components); i-- > 0;) {
			const ServiceComponent *comp = &components[i];
			int rc;

			if (chosen != NULL && chosen != comp)
				continue;
			rc = service_stop(config, comp, verb,
					  timeout >= 0 ? (guint)timeout : comp->stop_timeout);
			if (status == 0)
				status = rc;
		}
		if (is_stop || status != 0)
			return status;
	}
	return service_each(config, chosen, verb, service_start);
}

pid_t
cli_dispatcher_pid(const ImtaConfig *config)
{
	const ServiceComponent *comp = service_component("dispatcher");
	pid_t pid = service_read_pid(config, comp);

	return pid > 0 && service_pid_is_component(pid, comp) ? pid : 0;
}
