/*
 * cmd_service.c - imsimta start|stop|restart [dispatcher|job_controller]
 * (and start-msg / stop-msg, the same verbs under their old names).
 *
 * start runs the imta-job-controller program from $IMTA_LIBEXEC (else the
 * installed libexec directory) in a session of its own and waits, bounded,
 * until its socket answers HELLO.  stop asks it to SHUTDOWN over that
 * socket, which lets master jobs finish the message in hand, and waits for
 * the process named in its pid file to go; only if it outlives the wait is
 * that one pid sent SIGTERM.  Nothing else is ever signalled.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/imta.h>
#include <imta/jc_client.h>
#include "commands.h"

#define SERVICE_START_TIMEOUT 10   /* seconds until the new controller must answer */
#define SERVICE_STOP_TIMEOUT 30    /* seconds for a clean shutdown by default */
#define SERVICE_TERM_TIMEOUT 10    /* seconds after SIGTERM */
#define SERVICE_READY_GRACE 3      /* seconds from "ready" to an answer */
#define SERVICE_POLL_US 50000
#define SERVICE_PROGRAM "imta-job-controller"
#define SERVICE_STDERR_FILE "job_controller.stderr"

static const char *const components[] = { "dispatcher", "job_controller", NULL };

/* ---- the job controller's process ------------------------------------- */

/* The pid in <run>/job_controller.pid, or 0. */
static pid_t
service_read_pid(const ImtaConfig *config)
{
	g_autofree char *path = g_build_filename(config->tailor->run_dir, IMTA_JC_PID_FILE, NULL);
	g_autofree char *text = NULL;
	guint64 pid;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return 0;
	g_strstrip(text);
	if (!g_ascii_string_to_unsigned(text, 10, 2, G_MAXINT32, &pid, NULL))
		return 0;
	return (pid_t)pid;
}

/* Is `pid` a live (not zombie) job controller?  Where /proc exists, its
 * program name must be the controller's, so a stale pid file whose pid
 * was reused never gets another process signalled. */
static gboolean
service_pid_is_controller(pid_t pid)
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
	return g_str_has_suffix(base, SERVICE_PROGRAM);
}

static gboolean
service_answers(const ImtaConfig *config)
{
	g_autoptr(ImtaJcClient) jc = imta_jc_client_connect(config->tailor->run_dir, "admin", NULL,
							    1000, NULL);

	return jc != NULL;
}

static char *
service_program(void)
{
	const char *dir = g_getenv("IMTA_LIBEXEC");

	return g_build_filename(dir != NULL && dir[0] != '\0' ? dir : IMTA_LIBEXECDIR,
				SERVICE_PROGRAM, NULL);
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
service_start(const ImtaConfig *config, const char *verb)
{
	g_autofree char *program = service_program();
	g_autofree char *stderr_path = g_build_filename(config->tailor->log_dir,
							SERVICE_STDERR_FILE, NULL);
	pid_t running = service_read_pid(config);
	gint64 deadline;
	pid_t child;
	gboolean child_exited = FALSE;

	if (service_answers(config) || (running > 0 && service_pid_is_controller(running))) {
		if (running > 0)
			fprintf(stderr, "imsimta %s: the job controller is already running "
				"(pid %d)\n", verb, (int)running);
		else
			fprintf(stderr, "imsimta %s: the job controller is already running\n", verb);
		return 1;
	}
	if (!g_file_test(program, G_FILE_TEST_IS_EXECUTABLE)) {
		fprintf(stderr, "imsimta %s: cannot run %s: %s (IMTA_LIBEXEC names the directory "
			"of the MTA's programs)\n", verb, program, g_strerror(ENOENT));
		return EXIT_UNAVAILABLE;
	}
	if (g_mkdir_with_parents(config->tailor->run_dir, 0750) < 0 ||
	    g_mkdir_with_parents(config->tailor->log_dir, 0750) < 0) {
		fprintf(stderr, "imsimta %s: cannot create %s or %s: %s\n", verb,
			config->tailor->run_dir, config->tailor->log_dir, g_strerror(errno));
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

		if (service_answers(config)) {
			pid_t pid = service_read_pid(config);
			GStatBuf st;

			/* Keep the start-up error file only when it says something. */
			if (g_stat(stderr_path, &st) == 0 && st.st_size == 0)
				g_unlink(stderr_path);
			printf("job controller started (pid %d)\n", pid > 0 ? (int)pid : (int)child);
			return 0;
		}
		/* The controller detaches by itself: the process we started
		 * exits 0 once the daemon is ready (its socket should answer
		 * within moments), or nonzero after printing why it failed. */
		if (!child_exited && waitpid(child, &wstatus, WNOHANG) == child) {
			child_exited = TRUE;
			deadline = MIN(deadline, g_get_monotonic_time() +
						 SERVICE_READY_GRACE * G_USEC_PER_SEC);
			if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
				gboolean exited = WIFEXITED(wstatus);

				fprintf(stderr, "imsimta %s: the job controller did not start "
					"(%s %d):\n", verb, exited ? "exit status" : "signal",
					exited ? WEXITSTATUS(wstatus) : WTERMSIG(wstatus));
				service_show_stderr(stderr_path);
				return WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == EXIT_CONFIG
					       ? EXIT_CONFIG
					       : EXIT_UNAVAILABLE;
			}
		}
		g_usleep(SERVICE_POLL_US);
	}
	if (child_exited)
		fprintf(stderr, "imsimta %s: the job controller started but does not answer on "
			"%s/%s; see its log in %s\n", verb, config->tailor->run_dir, IMTA_JC_SOCKET,
			config->tailor->log_dir);
	else
		fprintf(stderr, "imsimta %s: the job controller (pid %d) did not answer within %d s; "
			"see %s and the job controller's log in %s\n", verb, (int)child,
			SERVICE_START_TIMEOUT, stderr_path, config->tailor->log_dir);
	return EXIT_UNAVAILABLE;
}

/* Wait until `pid` is gone (or, without a pid, the socket stops answering). */
static gboolean
service_wait_gone(const ImtaConfig *config, pid_t pid, guint seconds)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)seconds * G_USEC_PER_SEC;

	do {
		if (pid > 0 ? !service_pid_is_controller(pid) : !service_answers(config))
			return TRUE;
		g_usleep(SERVICE_POLL_US);
	} while (g_get_monotonic_time() < deadline);
	return FALSE;
}

static int
service_stop(const ImtaConfig *config, const char *verb, guint timeout)
{
	pid_t pid = service_read_pid(config);
	g_autoptr(ImtaJcClient) jc = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *reply = NULL;

	if (pid > 0 && !service_pid_is_controller(pid))
		pid = 0; /* a stale pid file */
	jc = imta_jc_client_connect(config->tailor->run_dir, "admin", NULL, 2000, &error);
	if (jc == NULL && pid == 0) {
		printf("job controller not running\n");
		return 0;
	}
	if (jc != NULL) {
		reply = imta_jc_client_request(jc, "SHUTDOWN", &error);
		if (reply == NULL)
			fprintf(stderr, "imsimta %s: SHUTDOWN: %s\n", verb, error->message);
		g_clear_pointer(&jc, imta_jc_client_close);
		if (service_wait_gone(config, pid, timeout)) {
			printf("job controller stopped\n");
			return 0;
		}
	}
	if (pid == 0) {
		fprintf(stderr, "imsimta %s: the job controller still answers after %u s and its "
			"pid file names no running job controller; not signalling anything\n",
			verb, timeout);
		return EXIT_SOFTWARE;
	}
	if (reply != NULL)
		fprintf(stderr, "imsimta %s: the job controller (pid %d) is still running after "
			"%u s; sending SIGTERM\n", verb, (int)pid, timeout);
	else
		fprintf(stderr, "imsimta %s: the job controller (pid %d) does not answer; sending "
			"SIGTERM\n", verb, (int)pid);
	if (kill(pid, SIGTERM) < 0 && errno != ESRCH) {
		fprintf(stderr, "imsimta %s: kill %d: %s\n", verb, (int)pid, g_strerror(errno));
		return EXIT_SOFTWARE;
	}
	if (!service_wait_gone(config, pid, SERVICE_TERM_TIMEOUT)) {
		fprintf(stderr, "imsimta %s: the job controller (pid %d) is still running %d s "
			"after SIGTERM\n", verb, (int)pid, SERVICE_TERM_TIMEOUT);
		return EXIT_SOFTWARE;
	}
	printf("job controller stopped\n");
	return 0;
}

/* ---- the verb -------------------------------------------------------------- */

int
cli_service(const CliGlobal *global, int argc, char **argv)
{
	const char *verb = argv[0];
	gint timeout = SERVICE_STOP_TIMEOUT;
	const GOptionEntry entries[] = {
		{ "timeout", 0, 0, G_OPTION_ARG_INT, &timeout,
		  "seconds stop waits for a clean shutdown before SIGTERM (default 30)", "SECONDS" },
		{ NULL }
	};
	g_autofree char *summary = g_strdup_printf(
		"%s the MTA's long-running processes: the dispatcher (SMTP and LMTP "
		"services) and the job controller (channel queues and master jobs). "
		"Without COMPONENT, both.  start waits up to %d s for the job controller "
		"to answer; stop asks it to shut down, waits --timeout seconds for master "
		"jobs to finish the message in hand, then sends SIGTERM to the pid in its "
		"pid file.  Exit status: 0 done (stop also when nothing ran), 1 already "
		"running, 64 usage, 69 could not start or the component is not part of "
		"this release, 70 would not stop, 78 configuration error.",
		verb, SERVICE_START_TIMEOUT);
	g_autoptr(ImtaConfig) config = NULL;
	gboolean is_start, is_stop;
	int status = 0;

	if (!cli_parse_options(&argc, &argv, verb, "[dispatcher|job_controller]", summary, entries,
			       &status))
		return status;
	if (argc > 2 || (argc == 2 && !g_strv_contains(components, argv[1])) || timeout < 0) {
		fprintf(stderr, "imsimta %s: expected dispatcher or job_controller\n", verb);
		return EXIT_USAGE;
	}
	if (argc == 2 && strcmp(argv[1], "dispatcher") == 0) {
		fprintf(stderr, "imsimta %s: the dispatcher is not part of this release yet\n", verb);
		return EXIT_UNAVAILABLE;
	}
	if (argc == 1)
		fprintf(stderr, "imsimta %s: the dispatcher is not part of this release yet; "
			"acting on the job controller only\n", verb);
	config = cli_load_config(global, 0);
	if (config == NULL)
		return EXIT_CONFIG;
	is_start = strcmp(verb, "start") == 0 || strcmp(verb, "start-msg") == 0;
	is_stop = strcmp(verb, "stop") == 0 || strcmp(verb, "stop-msg") == 0;
	if (is_start)
		return service_start(config, verb);
	status = service_stop(config, verb, (guint)timeout);
	if (is_stop || status != 0)
		return status;
	return service_start(config, verb);
}
