/*
 * runner.c - running one converter: a clean environment, no terminal, a
 * process group of its own so that the whole group can be killed at the
 * time limit, and its output kept for the diagnostic.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include <glib.h>

#include "conversion.h"

#define RUNNER_OUTPUT_KEEP 1024
/* Between TERM and KILL at the time limit. */
#define RUNNER_GRACE_US (1 * G_USEC_PER_SEC)

void
conversion_run_clear(ConvRun *run)
{
	g_clear_pointer(&run->output, g_free);
}

static void
runner_kill_group(pid_t pid, int sig)
{
	if (kill(-pid, sig) < 0 && errno != ESRCH)
		imta_log(IMTA_LOG_WARNING, "conversion: cannot signal process group %ld: %s",
			 (long) pid, g_strerror(errno));
}

/* Wait for pid until `deadline` (monotonic microseconds); TRUE when it
 * ended, with its wait status. */
static gboolean
runner_wait_until(pid_t pid, gint64 deadline, int *wstatus)
{
	gulong pause = 1000;

	for (;;) {
		pid_t r = waitpid(pid, wstatus, WNOHANG);

		if (r == pid)
			return TRUE;
		if (r < 0 && errno != EINTR) {
			/* Reaped elsewhere (SIGCHLD ignored): nothing to wait for. */
			*wstatus = 0;
			return TRUE;
		}
		if (g_get_monotonic_time() >= deadline)
			return FALSE;
		g_usleep(pause);
		pause = MIN(pause * 2, 50000);
	}
}

static char *
runner_read_output(const char *path)
{
	g_autofree char *text = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &text, &len, NULL))
		return g_strdup("");
	if (len > RUNNER_OUTPUT_KEEP)
		text[RUNNER_OUTPUT_KEEP] = '\0';
	/* Control characters and 8-bit bytes do not belong in a diagnostic. */
	for (char *p = text; *p != '\0'; p++)
		if ((guchar) *p < 32 || (guchar) *p > 126)
			*p = ' ';
	return g_strstrip(g_steal_pointer(&text));
}

/* posix_spawnp() would search the master's own PATH; a converter is
 * looked up in the PATH it is given, the one imsimta check looks in. */
static char *
runner_find_program(const char *name)
{
	g_auto(GStrv) dirs = NULL;

	if (strchr(name, '/') != NULL)
		return g_strdup(name);
	dirs = g_strsplit(IMTA_CONVERSION_PATH, ":", 0);
	for (guint i = 0; dirs[i] != NULL; i++) {
		char *path = g_build_filename(dirs[i], name, NULL);

		if (g_file_test(path, G_FILE_TEST_IS_EXECUTABLE) &&
		    !g_file_test(path, G_FILE_TEST_IS_DIR))
			return path;
		g_free(path);
	}
	return NULL;
}

gboolean
conversion_run(char *const *argv, char *const *envp, const char *workdir, guint timeout,
	       ConvRun *run, GError **error)
{
	g_autofree char *log = g_build_filename(workdir, "converter.log", NULL);
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	sigset_t none, all;
	g_autofree char *program = NULL;
	pid_t pid = -1;
	int wstatus = 0;
	int rc;

	memset(run, 0, sizeof *run);
	posix_spawn_file_actions_init(&actions);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
				 POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&actions, 1, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
	posix_spawn_file_actions_addclosefrom_np(&actions, 3);
#endif
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
	posix_spawn_file_actions_addchdir_np(&actions, workdir);
#endif
	program = runner_find_program(argv[0]);
	rc = program != NULL ? posix_spawn(&pid, program, &actions, &attr, argv, envp) : ENOENT;
	posix_spawn_file_actions_destroy(&actions);
	posix_spawnattr_destroy(&attr);
	if (rc != 0) {
		g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED, "cannot run %s: %s",
			    argv[0], g_strerror(rc));
		return FALSE;
	}
	if (!runner_wait_until(pid, g_get_monotonic_time() + (gint64) timeout * G_USEC_PER_SEC,
			       &wstatus)) {
		run->timed_out = TRUE;
		runner_kill_group(pid, SIGTERM);
		if (!runner_wait_until(pid, g_get_monotonic_time() + RUNNER_GRACE_US, &wstatus)) {
			runner_kill_group(pid, SIGKILL);
			while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
				;
		}
	}
	/* What the converter left running in its group goes with it. */
	runner_kill_group(pid, SIGKILL);
	if (WIFSIGNALED(wstatus)) {
		run->signalled = TRUE;
		run->status = WTERMSIG(wstatus);
	} else {
		run->status = WEXITSTATUS(wstatus);
	}
	run->output = runner_read_output(log);
	return TRUE;
}
