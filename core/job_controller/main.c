/*
 * main.c - imta-job-controller: keeps the channel queues moving by running
 * their master jobs.  The process skeleton (options, detaching, pid file,
 * privilege drop, signals) is the shared one of <imta/daemon.h>; the work
 * is in server.c.
 */
#include "config.h"

#include <glib.h>

#include <imta/daemon.h>
#include <imta/jc_protocol.h>
#include <imta/log.h>
#include "server.h"

typedef struct {
	JcServer *server;
	ImtaDaemon *daemon;
} JobController;

static void
jc_on_stopped(gpointer user_data)
{
	JobController *jc = user_data;

	imta_daemon_quit(jc->daemon, IMTA_DAEMON_EXIT_OK);
}

static gboolean
jc_bind(ImtaDaemon *daemon, GError **error)
{
	JobController *jc = imta_daemon_user_data(daemon);
	const ImtaConfig *config = imta_daemon_config(daemon);
	g_autofree char *socket_path = NULL;
	g_autofree char *notify_path = imta_daemon_run_path(daemon, IMTA_JC_NOTIFY_SOCKET);

	jc->daemon = daemon;
	jc->server = server_new(config, jc_on_stopped, jc, error);
	if (jc->server == NULL)
		return FALSE;
	socket_path = imta_daemon_run_path(daemon, config->job_controller != NULL &&
					   config->job_controller->socket != NULL ?
					   config->job_controller->socket : IMTA_JC_SOCKET);
	return server_bind(jc->server, socket_path, notify_path, error) &&
	       imta_daemon_give_to_user(daemon, socket_path, error) &&
	       imta_daemon_give_to_user(daemon, notify_path, error);
}

static gboolean
jc_start(ImtaDaemon *daemon, GError **error)
{
	JobController *jc = imta_daemon_user_data(daemon);

	return server_start(jc->server, error);
}

static void
jc_stop(ImtaDaemon *daemon)
{
	JobController *jc = imta_daemon_user_data(daemon);

	server_stop(jc->server);
}

static void
jc_reopen(ImtaDaemon *daemon)
{
	JobController *jc = imta_daemon_user_data(daemon);

	server_reopen(jc->server);
}

static void
jc_cleanup(ImtaDaemon *daemon)
{
	JobController *jc = imta_daemon_user_data(daemon);

	g_clear_pointer(&jc->server, server_free);
}

static const ImtaDaemonSpec jc_spec = {
	.program = "imta-job-controller",
	.summary = "Keep the channel queues moving: track the queued messages, run each "
		   "channel's master jobs within the limits of imta.cnf (maxjobs, pool) and "
		   "job_controller.cnf (JOB_LIMIT), retry deferred messages when their backoff "
		   "has passed.  SIGTERM (or the SHUTDOWN request) stops it once its jobs have "
		   "finished; SIGHUP reopens its log and the logs of its jobs.",
	.pid_file = IMTA_JC_PID_FILE,
	.log_file = "job_controller.log",
	.config_flags = 0,
	.bind = jc_bind,
	.start = jc_start,
	.stop = jc_stop,
	.reopen = jc_reopen,
	.cleanup = jc_cleanup,
};

int
main(int argc, char **argv)
{
	JobController jc = { NULL, NULL };

	return imta_daemon_main(&jc_spec, &jc, argc, argv);
}
