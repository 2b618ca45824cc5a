/*
 * daemon.c - the process skeleton shared by the long-running programs:
 * detaching with a readiness report, the locked pid file, the privilege
 * drop, signals, and the main loop around the program's callbacks.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>
#include <glib-unix.h>
#include <glib/gstdio.h>

#include <imta/daemon.h>
#include <imta/log.h>
#include <imta/mail_log.h>
#include <imta/tailor.h>

#define DAEMON_PID_FILE_TRIES 5

G_DEFINE_QUARK(imta-daemon-error-quark, imta_daemon_error)

struct _ImtaDaemon {
	const ImtaDaemonSpec *spec;
	gpointer user_data;
	ImtaConfig *config;
	gboolean foreground;
	GMainLoop *loop;
	int status;
	gboolean stopping;
	gboolean log_open;       /* the log is the file, not stderr */
	guint signal_sources[3];
};

struct _ImtaPidFile {
	int fd;
	char *path;
};

/* The write end of the pipe the starting process waits on; -1 when there
 * is none (foreground, or already reported). */
static int daemon_report_fd = -1;

/* ---- detaching ------------------------------------------------------- */

/* Close what the starting process left open above stderr (its pipes must
 * not stay open for as long as the daemon lives). */
static void
daemon_close_inherited(void)
{
	GDir *dir = g_dir_open("/proc/self/fd", 0, NULL);
	g_autoptr(GArray) fds = g_array_new(FALSE, FALSE, sizeof(int));
	const char *name;

	if (dir == NULL) {
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		return;
	}
	/* Collect first: closing while listing would close the listing. */
	while ((name = g_dir_read_name(dir)) != NULL) {
		int fd = atoi(name);

		if (fd > STDERR_FILENO)
			g_array_append_val(fds, fd);
	}
	g_dir_close(dir);
	for (guint i = 0; i < fds->len; i++)
		close(g_array_index(fds, int, i));
}

static void
daemon_write_all(int fd, const char *data, gsize len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		data += n;
		len -= (gsize)n;
	}
}

/* In the starting process: wait for the daemon's report and exit. */
static G_GNUC_NORETURN void
daemon_wait_for_report(int fd, pid_t child)
{
	GString *report = g_string_new(NULL);
	char buf[512];
	ssize_t n;

	/* The intermediate child exits at once; reap it. */
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (report->len < 4096)
			g_string_append_len(report, buf, n);
	}
	if (report->len > 0 && report->str[0] == '0')
		_exit(IMTA_DAEMON_EXIT_OK);
	/* "1", two digits of exit status, the message. */
	if (report->len > 3 && report->str[0] == '1' && g_ascii_isdigit(report->str[1]) &&
	    g_ascii_isdigit(report->str[2])) {
		int status = (report->str[1] - '0') * 10 + (report->str[2] - '0');

		fprintf(stderr, "%s\n", report->str + 3);
		_exit(status != 0 ? status : IMTA_DAEMON_EXIT_FAILURE);
	}
	fprintf(stderr, "%s: the daemon exited before it was ready\n", g_get_prgname());
	_exit(IMTA_DAEMON_EXIT_FAILURE);
}

gboolean
imta_daemon_detach(GError **error)
{
	int pipe_fds[2];
	pid_t pid;

	if (!g_unix_open_pipe(pipe_fds, FD_CLOEXEC, error))
		return FALSE;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		int errnum = errno;

		close(pipe_fds[0]);
		close(pipe_fds[1]);
		g_set_error(error, IMTA_DAEMON_ERROR, IMTA_DAEMON_ERROR_SYSTEM,
			    "cannot fork: %s", g_strerror(errnum));
		return FALSE;
	}
	if (pid > 0) {
		close(pipe_fds[1]);
		daemon_wait_for_report(pipe_fds[0], pid);
	}
	close(pipe_fds[0]);
	if (setsid() < 0)
		_exit(IMTA_DAEMON_EXIT_FAILURE);
	/* A second fork: the daemon is not a session leader, so opening a
	 * terminal can never make it one's controlling process. */
	pid = fork();
	if (pid < 0)
		_exit(IMTA_DAEMON_EXIT_FAILURE);
	if (pid > 0)
		_exit(IMTA_DAEMON_EXIT_OK);
	daemon_report_fd = pipe_fds[1];
	if (chdir("/") < 0) {
		g_set_error(error, IMTA_DAEMON_ERROR, IMTA_DAEMON_ERROR_SYSTEM,
			    "cannot change to /: %s", g_strerror(errno));
		return FALSE;
	}
	umask(022);
	return TRUE;
}

void
imta_daemon_ready(void)
{
	int null_fd;

	if (daemon_report_fd < 0)
		return;
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd >= 0) {
		fflush(NULL);
		dup2(null_fd, STDIN_FILENO);
		dup2(null_fd, STDOUT_FILENO);
		dup2(null_fd, STDERR_FILENO);
		if (null_fd > STDERR_FILENO)
			close(null_fd);
	}
	daemon_write_all(daemon_report_fd, "0", 1);
	close(daemon_report_fd);
	daemon_report_fd = -1;
}

static void
daemon_report_failure(int status, const char *message)
{
	char head[4];

	if (daemon_report_fd < 0)
		return;
	g_snprintf(head, sizeof(head), "1%02d", CLAMP(status, 1, 99));
	daemon_write_all(daemon_report_fd, head, 3);
	daemon_write_all(daemon_report_fd, message, strlen(message));
	close(daemon_report_fd);
	daemon_report_fd = -1;
}

void
imta_daemon_fail(const char *message)
{
	daemon_report_failure(IMTA_DAEMON_EXIT_FAILURE, message);
}

/* ---- the pid file ---------------------------------------------------- */

static pid_t
daemon_pid_file_holder(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	guint64 pid;
	char *end;

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	pid = g_ascii_strtoull(buf, &end, 10);
	if (end == buf || pid > G_MAXINT32)
		return 0;
	return (pid_t)pid;
}

/* Open and lock; *retry_r when the file was replaced meanwhile. */
static int
daemon_pid_file_lock(const char *path, gboolean *retry_r, GError **error)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	struct stat fd_st, path_st;

	*retry_r = FALSE;
	if (fd < 0) {
		g_set_error(error, IMTA_DAEMON_ERROR, IMTA_DAEMON_ERROR_SYSTEM,
			    "cannot open the pid file %s: %s", path, g_strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int errnum = errno;
		pid_t holder = daemon_pid_file_holder(fd);

		close(fd);
		if (errnum == EWOULDBLOCK) {
			g_set_error(error, IMTA_DAEMON_ERROR, IMTA_DAEMON_ERROR_RUNNING,
				    "another instance is running (pid %ld holds %s)",
				    (long)holder, path);
		} else {
			g_set_error(error, IMTA_DAEMON_ERROR, IMTA_DAEMON_ERROR_SYSTEM,
				    "cannot lock the pid file %s: %s", path, g_strerror(errnum));
		}
		return -1;
	}
	/* The previous holder may have removed the file between our open and
	 * our lock: then we locked a file nobody else will ever see. */
	if (fstat(fd, &fd_st) < 0 || stat(path, &path_st) < 0 || fd_st.st_ino != path_st.st_ino ||
	    fd_st.st_dev != path_st.st_dev) {
		close(fd);
		*retry_r = TRUE;
		return -1;
	}
	return fd;
}

ImtaPidFile *
imta_daemon_pid_file_acquire(const char *path, GError **error)
{
	ImtaPidFile *pid_file;
	g_autofree char *text = NULL;
	gboolean retry = TRUE;
	int fd = -1;

	for (guint i = 0; i < DAEMON_PID_FILE_TRIES && fd < 0 && retry; i++)
		fd = daemon_pid_file_lock(path, &retry, error);
	if (fd < 0) {
		if (retry)
			g_set_error(error, IMTA_DAEMON_ERROR, IMTA_DAEMON_ERROR_SYSTEM,
				    "the pid file %s keeps being replaced", path);
		return NULL;
	}
	text = g_strdup_printf("%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, text, strlen(text), 0) != (ssize_t)strlen(text)) {
		g_set_error(error, IMTA_DAEMON_ERROR, IMTA_DAEMON_ERROR_SYSTEM,
			    "cannot write the pid file %s: %s", path, g_strerror(errno));
		close(fd);
		return NULL;
	}
	pid_file = g_new0(ImtaPidFile, 1);
	pid_file->fd = fd;
	pid_file->path = g_strdup(path);
	return pid_file;
}

void
imta_daemon_pid_file_release(ImtaPidFile *pid_file)
{
	if (pid_file == NULL)
		return;
	/* Unlink before unlocking, so nobody locks the file we remove. */
	if (unlink(pid_file->path) < 0 && errno != ENOENT)
		imta_log(IMTA_LOG_WARNING, "cannot remove the pid file %s: %s", pid_file->path,
			 g_strerror(errno));
	close(pid_file->fd);
	g_free(pid_file->path);
	g_free(pid_file);
}

/* ---- privileges ------------------------------------------------------ */

static gboolean
daemon_lookup_user(const char *user, uid_t *uid_r, gid_t *gid_r, GError **error)
{
	struct passwd pw, *result = NULL;
	long size = sysconf(_SC_GETPW_R_SIZE_MAX);
	g_autofree char *buf = NULL;
	int rc;

	if (size <= 0)
		size = 16384;
	buf = g_malloc((gsize)size);
	rc = getpwnam_r(user, &pw, buf, (size_t)size, &result);
	if (result == NULL) {
		if (rc != 0)
			g_set_error(error, IMTA_DAEMON_ERROR, IMTA_DAEMON_ERROR_USER,
				    "cannot look up IMTA_USER \"%s\": %s", user, g_strerror(rc));
		else if (geteuid() == 0)
			g_set_error(error, IMTA_DAEMON_ERROR, IMTA_DAEMON_ERROR_USER,
				    "IMTA_USER \"%s\" does not exist: refusing to run as root",
				    user);
		else
			g_set_error(error, IMTA_DAEMON_ERROR, IMTA_DAEMON_ERROR_USER,
				    "IMTA_USER \"%s\" does not exist", user);
		return FALSE;
	}
	*uid_r = pw.pw_uid;
	*gid_r = pw.pw_gid;
	return TRUE;
}

gboolean
imta_daemon_drop_privileges(const char *user, GError **error)
{
	uid_t uid;
	gid_t gid;

	if (user == NULL || *user == '\0')
		return TRUE;
	if (!daemon_lookup_user(user, &uid, &gid, error))
		return FALSE;
	if (geteuid() != 0) {
		if (geteuid() == uid && getuid() == uid)
			return TRUE;
		g_set_error(error, IMTA_DAEMON_ERROR, IMTA_DAEMON_ERROR_USER,
			    "cannot switch to IMTA_USER \"%s\": not running as root (uid %ld)",
			    user, (long)geteuid());
		return FALSE;
	}
	if (initgroups(user, gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
		g_set_error(error, IMTA_DAEMON_ERROR, IMTA_DAEMON_ERROR_USER,
			    "cannot switch to IMTA_USER \"%s\": %s", user, g_strerror(errno));
		return FALSE;
	}
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		g_set_error(error, IMTA_DAEMON_ERROR, IMTA_DAEMON_ERROR_USER,
			    "switched to IMTA_USER \"%s\" but root could be regained", user);
		return FALSE;
	}
	return TRUE;
}

/* ---- the skeleton ---------------------------------------------------- */

gpointer
imta_daemon_user_data(const ImtaDaemon *daemon)
{
	return daemon->user_data;
}

const ImtaConfig *
imta_daemon_config(const ImtaDaemon *daemon)
{
	return daemon->config;
}

gboolean
imta_daemon_foreground(const ImtaDaemon *daemon)
{
	return daemon->foreground;
}

char *
imta_daemon_run_path(const ImtaDaemon *daemon, const char *name)
{
	if (g_path_is_absolute(name))
		return g_strdup(name);
	return g_build_filename(daemon->config->tailor->run_dir, name, NULL);
}

/* Give `path` to `user` (lchown); TRUE without doing anything unless root
 * runs this with IMTA_USER set. */
static gboolean
daemon_give_path(const char *user, const char *path, GError **error)
{
	uid_t uid;
	gid_t gid;

	if (geteuid() != 0 || user == NULL || *user == '\0')
		return TRUE;
	if (!daemon_lookup_user(user, &uid, &gid, error))
		return FALSE;
	if (lchown(path, uid, gid) < 0) {
		g_set_error(error, IMTA_DAEMON_ERROR, IMTA_DAEMON_ERROR_SYSTEM,
			    "cannot give %s to IMTA_USER \"%s\": %s", path, user,
			    g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

gboolean
imta_daemon_give_to_user(const ImtaDaemon *daemon, const char *path, GError **error)
{
	return daemon_give_path(daemon->config->tailor->user, path, error);
}

/* One directory of imta_daemon_prepare_dirs().  Its parents are made
 * 0755: made 0750 by root they would keep IMTA_USER out of the directory
 * itself. */
static gboolean
daemon_prepare_dir(const char *user, const char *dir, mode_t mode, GError **error)
{
	g_autofree char *parent = g_path_get_dirname(dir);
	struct stat st;

	if ((g_mkdir_with_parents(parent, 0755) < 0 || mkdir(dir, mode) < 0) &&
	    errno != EEXIST) {
		g_set_error(error, IMTA_DAEMON_ERROR, IMTA_DAEMON_ERROR_SYSTEM,
			    "cannot create %s: %s", dir, g_strerror(errno));
		return FALSE;
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		g_set_error(error, IMTA_DAEMON_ERROR, IMTA_DAEMON_ERROR_SYSTEM,
			    "%s is not a directory", dir);
		return FALSE;
	}
	/* Root's own directories are what an earlier start by root left; a
	 * directory another account owns, or a symbolic link, is the
	 * administrator's arrangement. */
	if (st.st_uid != 0 || (lstat(dir, &st) == 0 && S_ISLNK(st.st_mode)))
		return TRUE;
	return daemon_give_path(user, dir, error);
}

gboolean
imta_daemon_prepare_dirs(const ImtaConfig *config, GError **error)
{
	const ImtaTailor *tailor = config->tailor;
	const struct {
		const char *dir;
		mode_t mode;
	} dirs[] = {
		{ tailor->run_dir, 0755 },
		{ tailor->log_dir, 0750 },
		{ tailor->queue_dir, 0750 },
		{ tailor->store_dir, 0750 },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(dirs); i++)
		if (!daemon_prepare_dir(tailor->user, dirs[i].dir, dirs[i].mode, error))
			return FALSE;
	return TRUE;
}

void
imta_daemon_quit(ImtaDaemon *daemon, int status)
{
	daemon->status = status;
	if (daemon->loop != NULL)
		g_main_loop_quit(daemon->loop);
}

static gboolean
daemon_on_stop_signal(gpointer data)
{
	ImtaDaemon *daemon = data;

	if (daemon->stopping) {
		imta_log(IMTA_LOG_NOTICE, "second stop signal: exiting now");
		imta_daemon_quit(daemon, IMTA_DAEMON_EXIT_OK);
		return G_SOURCE_CONTINUE;
	}
	daemon->stopping = TRUE;
	imta_log(IMTA_LOG_NOTICE, "stop signal received");
	if (daemon->spec->stop != NULL)
		daemon->spec->stop(daemon);
	else
		imta_daemon_quit(daemon, IMTA_DAEMON_EXIT_OK);
	return G_SOURCE_CONTINUE;
}

static gboolean
daemon_on_hup(gpointer data)
{
	ImtaDaemon *daemon = data;

	imta_log_reopen();
	imta_mail_log_reopen();
	imta_log(IMTA_LOG_INFO, "log reopened");
	if (daemon->spec->reopen != NULL)
		daemon->spec->reopen(daemon);
	return G_SOURCE_CONTINUE;
}

/* Report a failure in the log, and on stderr or to the waiting starter. */
static int
daemon_failed(const ImtaDaemon *daemon, int status, const GError *error)
{
	g_autofree char *message = g_strdup_printf("%s: %s", daemon->spec->program,
						   error->message);

	if (daemon->log_open)
		imta_log(IMTA_LOG_ERROR, "%s", error->message);
	if (daemon_report_fd >= 0)
		daemon_report_failure(status, message);
	else
		fprintf(stderr, "%s\n", message);
	return status;
}

static int
daemon_parse_options(ImtaDaemon *daemon, int *argc, char ***argv, char **config_dir_r)
{
	g_autoptr(GOptionContext) context = g_option_context_new(NULL);
	g_autoptr(GError) error = NULL;
	GOptionEntry entries[] = {
		{ "config", 0, 0, G_OPTION_ARG_FILENAME, config_dir_r,
		  "configuration directory (default: $IMTA_CONFIG, else the installed one)",
		  "DIR" },
		{ "foreground", 'f', 0, G_OPTION_ARG_NONE, &daemon->foreground,
		  "stay in the foreground (do not detach)", NULL },
		{ NULL },
	};

	g_option_context_set_summary(context, daemon->spec->summary);
	g_option_context_add_main_entries(context, entries, NULL);
	if (daemon->spec->options != NULL)
		g_option_context_add_main_entries(context, daemon->spec->options, NULL);
	if (!g_option_context_parse(context, argc, argv, &error)) {
		fprintf(stderr, "%s: %s\n", daemon->spec->program, error->message);
		return IMTA_DAEMON_EXIT_USAGE;
	}
	if (*argc > 1) {
		fprintf(stderr, "%s: unexpected argument \"%s\"\n", daemon->spec->program,
			(*argv)[1]);
		return IMTA_DAEMON_EXIT_USAGE;
	}
	return IMTA_DAEMON_EXIT_OK;
}

static int
daemon_run(ImtaDaemon *daemon, ImtaPidFile **pid_file_r)
{
	const ImtaDaemonSpec *spec = daemon->spec;
	const ImtaTailor *tailor = daemon->config->tailor;
	g_autofree char *pid_path = imta_daemon_run_path(daemon, spec->pid_file);
	g_autofree char *log_path = g_build_filename(tailor->log_dir, spec->log_file, NULL);
	GError *error = NULL;
	int status;

	if (!imta_daemon_prepare_dirs(daemon->config, &error))
		goto fail;
	if (!daemon->foreground && !imta_daemon_detach(&error))
		goto fail;
	*pid_file_r = imta_daemon_pid_file_acquire(pid_path, &error);
	if (*pid_file_r == NULL)
		goto fail;
	if (!imta_log_open(spec->program, log_path, &error))
		goto fail;
	daemon->log_open = TRUE;
	if (!imta_daemon_give_to_user(daemon, log_path, &error))
		goto fail;
	imta_log(IMTA_LOG_NOTICE, "starting (pid %ld, configuration %s)", (long)getpid(),
		 daemon->config->dir);
	if (spec->bind != NULL && !spec->bind(daemon, &error))
		goto fail;
	if (!imta_daemon_drop_privileges(tailor->user, &error))
		goto fail;
	if (geteuid() == 0)
		imta_log(IMTA_LOG_WARNING, "running as root%s", tailor->user != NULL ?
			 " (IMTA_USER names root)" : ": set IMTA_USER in imta_tailor");
	daemon->loop = g_main_loop_new(NULL, FALSE);
	daemon->signal_sources[0] = g_unix_signal_add(SIGTERM, daemon_on_stop_signal, daemon);
	daemon->signal_sources[1] = g_unix_signal_add(SIGINT, daemon_on_stop_signal, daemon);
	daemon->signal_sources[2] = g_unix_signal_add(SIGHUP, daemon_on_hup, daemon);
	if (spec->start != NULL && !spec->start(daemon, &error))
		goto fail;
	imta_log(IMTA_LOG_NOTICE, "ready");
	imta_daemon_ready();
	g_main_loop_run(daemon->loop);
	imta_log(IMTA_LOG_NOTICE, "exiting with status %d", daemon->status);
	return daemon->status;
fail:
	status = error->domain == IMTA_DAEMON_ERROR && error->code == IMTA_DAEMON_ERROR_RUNNING ?
		 IMTA_DAEMON_EXIT_RUNNING : IMTA_DAEMON_EXIT_FAILURE;
	daemon_failed(daemon, status, error);
	g_error_free(error);
	return status;
}

int
imta_daemon_main(const ImtaDaemonSpec *spec, gpointer user_data, int argc, char **argv)
{
	ImtaDaemon daemon = { .spec = spec, .user_data = user_data };
	g_autofree char *config_dir = NULL;
	g_autoptr(GError) error = NULL;
	ImtaPidFile *pid_file = NULL;
	int status;

	g_set_prgname(spec->program);
	status = daemon_parse_options(&daemon, &argc, &argv, &config_dir);
	if (status != IMTA_DAEMON_EXIT_OK)
		return status;
	signal(SIGPIPE, SIG_IGN);
	if (!daemon.foreground)
		daemon_close_inherited();
	daemon.config = imta_config_load(imta_config_dir_choose(config_dir), spec->config_flags,
					 NULL, &error);
	if (daemon.config == NULL) {
		fprintf(stderr, "%s: %s\n", spec->program, error->message);
		return IMTA_DAEMON_EXIT_CONFIG;
	}
	status = daemon_run(&daemon, &pid_file);
	if (spec->cleanup != NULL)
		spec->cleanup(&daemon);
	imta_daemon_pid_file_release(pid_file);
	for (guint i = 0; i < G_N_ELEMENTS(daemon.signal_sources); i++)
		if (daemon.signal_sources[i] != 0)
			g_source_remove(daemon.signal_sources[i]);
	g_clear_pointer(&daemon.loop, g_main_loop_unref);
	imta_log_close();
	imta_config_free(daemon.config);
	return status;
}

int
imta_daemon_accept_local(int listen_fd, const char *what, struct ucred *cred_r)
{
	for (;;) {
		socklen_t len = sizeof(*cred_r);
		int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				imta_log(IMTA_LOG_WARNING, "accept on %s: %s", what,
					 g_strerror(errno));
			return -1;
		}
		/* A peer whose credentials cannot be read is never trusted. */
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred_r, &len) == 0)
			return fd;
		close(fd);
	}
}

char *
imta_daemon_describe_status(int status)
{
	if (WIFEXITED(status))
		return g_strdup_printf("exit status %d", WEXITSTATUS(status));
	if (WIFSIGNALED(status))
		return g_strdup_printf("signal %d (%s)%s", WTERMSIG(status),
				       g_strsignal(WTERMSIG(status)),
				       WCOREDUMP(status) ? ", core dumped" : "");
	return g_strdup_printf("wait status %#x", (guint)status);
}
