/*
 * jobs.h - the master job processes of the job controller.
 *
 * A job is a process running a channel's master program with
 * "--config <dir> --channel <name>": MASTER_COMMAND from the channel's
 * job_controller.cnf section (split like a shell command line; a program
 * name without '/' is looked up in PATH), else
 * imta-master from $IMTA_LIBEXEC when set, else from the installed
 * libexec directory.  Exits are reaped with a child watch.  A master that
 * connects without having been started here (an administrator ran one by
 * hand) is adopted as a job without a process of ours; it counts against
 * the limits while it is connected.
 *
 * A job lives until its process was reaped (or, adopted, until its last
 * connection closed) and no connection refers to it.
 */
#ifndef JC_JOBS_H
#define JC_JOBS_H

#include <glib.h>
#include <sys/types.h>
#include <imta/config.h>

G_BEGIN_DECLS

typedef struct {
	guint serial;          /* for the log */
	GPid pid;
	guint channel;
	gboolean adopted;      /* not started by us */
	gint64 started;        /* Unix time */
	guint served;          /* messages handed out */
	guint connections;     /* open master connections */
	gboolean exited;       /* reaped (or, adopted, gone) */
	gboolean told_exit;    /* answered EXIT */
	gboolean signalled;    /* sent SIGTERM already */
	guint child_watch;
} JcJob;

typedef struct _JcJobs JcJobs;

/* A started job exited: `status` as waitpid() gives it. */
typedef void (*JcJobExitFn)(JcJob *job, int status, gpointer user_data);

JcJobs *jobs_new(JcJobExitFn exit_fn, gpointer user_data);
/* Kill what still runs (SIGKILL) and free everything. */
void jobs_free(JcJobs *jobs);

/* The command that runs `channel`'s master jobs; caller frees. */
char **jobs_master_argv(const ImtaConfig *config, const char *channel,
			const char *master_command, GError **error);

JcJob *jobs_spawn(JcJobs *jobs, guint channel, char **argv, GError **error);
JcJob *jobs_find_pid(JcJobs *jobs, GPid pid);
JcJob *jobs_adopt(JcJobs *jobs, guint channel, GPid pid);

/* A connection of the job opened or closed.  Returns TRUE when the job
 * ended with that close (adopted job, last connection): the caller
 * releases its slot. */
void jobs_connect(JcJobs *jobs, JcJob *job);
gboolean jobs_disconnect(JcJobs *jobs, JcJob *job);

guint jobs_count(const JcJobs *jobs);
/* Every job, oldest first (owned by `jobs`). */
GPtrArray *jobs_list(JcJobs *jobs);
void jobs_signal(JcJob *job, int signum);
void jobs_signal_all(JcJobs *jobs, int signum);

gboolean jobs_status_abnormal(int status);

G_END_DECLS

#endif
