/*
 * main.c - imta-dispatcher: listens on the ports of the dispatcher.cnf
 * services and hands each connection to a worker process of its service.
 * The process skeleton (options, detaching, pid file, privilege drop,
 * signals) is the shared one of <imta/daemon.h>; the work is in service.c
 * and workers.c.
 */
#include "config.h"

#include <stdio.h>
#include <glib.h>

#include <imta/daemon.h>
#include <imta/log.h>
#include "control.h"
#include "service.h"

#define DISP_DEBUG_ENV "IMTA_DISPATCHER_DEBUG"

typedef struct {
	Dispatcher *disp;
	ImtaDaemon *daemon;
	guint32 env_debug;
	char *env_debug_error;
} DispMain;

/* IMTA_DISPATCHER_DEBUG: a hexadecimal mask ("1000000", "0x10"), or -1. */
static gboolean
disp_parse_env_debug(const char *text, guint32 *mask_r)
{
	guint64 value;

	if (text == NULL || *text == '\0') {
		*mask_r = 0;
		return TRUE;
	}
	if (g_strcmp0(text, "-1") == 0) {
		*mask_r = G_MAXUINT32;
		return TRUE;
	}
	if (g_ascii_strncasecmp(text, "0x", 2) == 0)
		text += 2;
	if (!g_ascii_string_to_unsigned(text, 16, 0, G_MAXUINT32, &value, NULL))
		return FALSE;
	*mask_r = (guint32)value;
	return TRUE;
}

static void
disp_main_on_stopped(Dispatcher *disp)
{
	imta_daemon_quit(disp->daemon, IMTA_DAEMON_EXIT_OK);
}

static gboolean
disp_main_bind(ImtaDaemon *daemon, GError **error)
{
	DispMain *m = imta_daemon_user_data(daemon);

	m->daemon = daemon;
	if (m->env_debug_error != NULL)
		imta_log(IMTA_LOG_WARNING, "%s", m->env_debug_error);
	m->disp = disp_new(imta_daemon_config(daemon), daemon, m->env_debug, error);
	if (m->disp == NULL)
		return FALSE;
	m->disp->stopped = disp_main_on_stopped;
	return disp_bind(m->disp, error);
}

static gboolean
disp_main_start(ImtaDaemon *daemon, GError **error)
{
	DispMain *m = imta_daemon_user_data(daemon);

	return disp_start(m->disp, error);
}

static void
disp_main_stop(ImtaDaemon *daemon)
{
	DispMain *m = imta_daemon_user_data(daemon);

	disp_stop(m->disp, "stop signal");
}

static void
disp_main_reopen(ImtaDaemon *daemon)
{
	DispMain *m = imta_daemon_user_data(daemon);

	disp_reopen(m->disp);
}

static void
disp_main_cleanup(ImtaDaemon *daemon)
{
	DispMain *m = imta_daemon_user_data(daemon);

	g_clear_pointer(&m->disp, disp_free);
}

static const ImtaDaemonSpec disp_spec = {
	.program = "imta-dispatcher",
	.summary = "Listen on the TCP ports of the services of dispatcher.cnf and hand each "
		   "connection to a worker process of its service (for mail, the SMTP server), "
		   "starting, spreading the load over and retiring workers within the limits "
		   "of dispatcher.cnf.  Clients refused by PORT_ACCESS or listed on a "
		   "DNS_VERIFY_DOMAIN list never reach a worker.  SIGTERM (or the SHUTDOWN "
		   "request on IMTA_RUN/dispatcher.sock) stops listening and lets the workers "
		   "finish their sessions; SIGHUP reopens the logs.  The environment variable "
		   "IMTA_DISPATCHER_DEBUG adds a hexadecimal DEBUG mask.",
	.pid_file = DISP_PID_FILE,
	.log_file = "dispatcher.log",
	.config_flags = 0,
	.bind = disp_main_bind,
	.start = disp_main_start,
	.stop = disp_main_stop,
	.reopen = disp_main_reopen,
	.cleanup = disp_main_cleanup,
};

int
main(int argc, char **argv)
{
	DispMain m = { NULL, NULL, 0, NULL };
	const char *env = g_getenv(DISP_DEBUG_ENV);
	int status;

	if (!disp_parse_env_debug(env, &m.env_debug))
		m.env_debug_error = g_strdup_printf("%s=\"%s\" is not a hexadecimal mask; ignored",
						    DISP_DEBUG_ENV, env);
	status = imta_daemon_main(&disp_spec, &m, argc, argv);
	g_free(m.env_debug_error);
	return status;
}
