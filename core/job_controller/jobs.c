/*
 * jobs.c - starting master jobs and reaping them (see jobs.h).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>

#include <imta/log.h>
#include "jobs.h"

#ifndef IMTA_LIBEXECDIR
#define IMTA_LIBEXECDIR "/usr/local/libexec/imta"
#endif

#define JOBS_MASTER_PROGRAM "imta-master"

struct _JcJobs {
	GPtrArray *jobs;        /* JcJob *, oldest first */
	guint next_serial;
	JcJobExitFn exit_fn;
	gpointer user_data;
};

JcJobs *
jobs_new(JcJobExitFn exit_fn, gpointer user_data)
{
	JcJobs *jobs = g_new0(JcJobs, 1);

	jobs->jobs = g_ptr_array_new();
	jobs->exit_fn = exit_fn;
	jobs->user_data = user_data;
	jobs->next_serial = 1;
	return jobs;
}

static void
jobs_job_free(JcJob *job)
{
	if (job->child_watch != 0)
		g_source_remove(job->child_watch);
	if (!job->adopted && !job->exited)
		g_spawn_close_pid(job->pid);
	g_free(job);
}

void
jobs_free(JcJobs *jobs)
{
	if (jobs == NULL)
		return;
	for (guint i = 0; i < jobs->jobs->len; i++) {
		JcJob *job = g_ptr_array_index(jobs->jobs, i);

		if (!job->adopted && !job->exited) {
			kill(job->pid, SIGKILL);
			waitpid(job->pid, NULL, 0);
			job->exited = TRUE;
		}
		jobs_job_free(job);
	}
	g_ptr_array_unref(jobs->jobs);
	g_free(jobs);
}

char **
jobs_master_argv(const ImtaConfig *config, const char *channel, const char *master_command,
		 GError **error)
{
	g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
	g_auto(GStrv) command = NULL;

	if (master_command != NULL) {
		if (!g_shell_parse_argv(master_command, NULL, &command, error))
			return NULL;
		g_strv_builder_addv(builder, (const char **)command);
	} else {
		const char *dir = g_getenv("IMTA_LIBEXEC");
		g_autofree char *program = g_build_filename(dir != NULL && *dir != '\0' ? dir :
							    IMTA_LIBEXECDIR, JOBS_MASTER_PROGRAM,
							    NULL);

		g_strv_builder_add(builder, program);
	}
	g_strv_builder_add_many(builder, "--config", config->dir, "--channel", channel, NULL);
	return g_strv_builder_end(builder);
}

static void
jobs_remove(JcJobs *jobs, JcJob *job)
{
	g_ptr_array_remove(jobs->jobs, job);
	jobs_job_free(job);
}

static void
jobs_on_exit(GPid pid, gint status, gpointer user_data)
{
	JcJobs *jobs = user_data;

	for (guint i = 0; i < jobs->jobs->len; i++) {
		JcJob *job = g_ptr_array_index(jobs->jobs, i);

		if (job->adopted || job->pid != pid || job->exited)
			continue;
		job->exited = TRUE;
		job->child_watch = 0;      /* the source ends with this call */
		g_spawn_close_pid(pid);
		jobs->exit_fn(job, status, jobs->user_data);
		if (job->connections == 0)
			jobs_remove(jobs, job);
		return;
	}
}

JcJob *
jobs_spawn(JcJobs *jobs, guint channel, char **argv, GError **error)
{
	GPid pid;
	JcJob *job;

	if (!g_spawn_async(NULL, argv, NULL,
			   G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDIN_FROM_DEV_NULL |
			   G_SPAWN_SEARCH_PATH, NULL, NULL, &pid, error))
		return NULL;
	job = g_new0(JcJob, 1);
	job->serial = jobs->next_serial++;
	job->pid = pid;
	job->channel = channel;
	job->started = g_get_real_time() / G_USEC_PER_SEC;
	job->child_watch = g_child_watch_add(pid, jobs_on_exit, jobs);
	g_ptr_array_add(jobs->jobs, job);
	return job;
}

JcJob *
jobs_find_pid(JcJobs *jobs, GPid pid)
{
	for (guint i = 0; i < jobs->jobs->len; i++) {
		JcJob *job = g_ptr_array_index(jobs->jobs, i);

		if (job->pid == pid && !job->exited)
			return job;
	}
	return NULL;
}

JcJob *
jobs_adopt(JcJobs *jobs, guint channel, GPid pid)
{
	JcJob *job = g_new0(JcJob, 1);

	job->serial = jobs->next_serial++;
	job->pid = pid;
	job->channel = channel;
	job->adopted = TRUE;
	job->started = g_get_real_time() / G_USEC_PER_SEC;
	g_ptr_array_add(jobs->jobs, job);
	return job;
}

void
jobs_connect(JcJobs *jobs, JcJob *job)
{
	job->connections++;
}

gboolean
jobs_disconnect(JcJobs *jobs, JcJob *job)
{
	gboolean ended = FALSE;

	g_return_val_if_fail(job->connections > 0, FALSE);
	if (--job->connections > 0)
		return FALSE;
	if (job->adopted) {
		job->exited = TRUE;
		ended = TRUE;
	}
	if (job->exited)
		jobs_remove(jobs, job);
	return ended;
}

guint
jobs_count(const JcJobs *jobs)
{
	return jobs->jobs->len;
}

GPtrArray *
jobs_list(JcJobs *jobs)
{
	return jobs->jobs;
}

void
jobs_signal(JcJob *job, int signum)
{
	if (job->adopted || job->exited)
		return;
	if (kill(job->pid, signum) < 0 && errno != ESRCH)
		imta_log(IMTA_LOG_WARNING, "cannot signal job %u (pid %ld): %s", job->serial,
			 (long)job->pid, g_strerror(errno));
}

void
jobs_signal_all(JcJobs *jobs, int signum)
{
	for (guint i = 0; i < jobs->jobs->len; i++)
		jobs_signal(g_ptr_array_index(jobs->jobs, i), signum);
}

gboolean
jobs_status_abnormal(int status)
{
	return !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}
