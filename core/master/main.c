/*
 * main.c - imta-master: the master program of one channel.  The job
 * controller starts it as "imta-master --config DIR --channel NAME"; it
 * loads the channel's plugin and runs the plugin's master entry over the
 * queue files the controller hands out, until the controller says EXIT,
 * goes away, or a signal asks the job to stop.
 *
 * Exit statuses: the master entry's (0, 70, 75), 64 for a wrong command
 * line, 69 when the job controller cannot be reached, 75 when the queue
 * cannot be opened, 78 when the configuration or the channel's binding is
 * unusable.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/imta.h>
#include <imta/queue.h>
#include <imta/jc_client.h>
#include <imta/mail_log.h>
#include "queue_source.h"

#define EXIT_USAGE 64
#define EXIT_UNAVAILABLE 69
#define EXIT_TEMPFAIL 75
#define EXIT_CONFIG 78

static volatile sig_atomic_t master_stop;
static volatile sig_atomic_t master_reopen;

static void
master_on_signal(int signo)
{
	if (signo == SIGHUP)
		master_reopen = 1;
	else
		master_stop = 1;
}

/* No SA_RESTART: a stop request must end the long poll of NEXT. */
static void
master_install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = master_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void
master_open_log(const ImtaConfig *config, const char *channel, const char *override)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *file = g_strdup_printf("%s_master.log", channel);
	g_autofree char *path = NULL;

	if (override != NULL && strcmp(override, "-") == 0)
		return;
	path = override != NULL ? g_strdup(override)
				: g_build_filename(config->tailor->log_dir, file, NULL);
	if (override == NULL && g_mkdir_with_parents(config->tailor->log_dir, 0750) < 0)
		imta_log(IMTA_LOG_WARNING, "cannot create %s: %s", config->tailor->log_dir,
			 g_strerror(errno));
	if (!imta_log_open("imta-master", path, &error))
		imta_log(IMTA_LOG_WARNING, "%s; logging to standard error", error->message);
}

/* The channel and its plugin's master entry, or NULL after logging why. */
static const ImtaChannel *
master_find_channel(const ImtaConfig *config, const char *name)
{
	const ImtaChannel *channel = imta_cnf_channel_by_name(config->cnf, name);

	if (channel == NULL) {
		imta_log(IMTA_LOG_ERROR, "no channel %s in %s", name, config->cnf->path);
		return NULL;
	}
	if (channel->plugin == NULL) {
		imta_plugin_registry_log_refusals(config->plugins);
		imta_log(IMTA_LOG_ERROR, "channel %s is bound to no plugin: it routes only and "
			 "has no master program (imsimta plugin-list shows the bindings)", name);
		return NULL;
	}
	if (channel->plugin->master == NULL) {
		imta_log(IMTA_LOG_ERROR, "plugin %s of channel %s has no master entry: messages "
			 "queued to %s cannot be delivered", channel->plugin->name, name, name);
		return NULL;
	}
	return channel;
}

static int
master_run(const ImtaConfig *config, const ImtaChannel *channel)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *notify = g_build_filename(config->tailor->run_dir,
						   IMTA_JC_NOTIFY_SOCKET, NULL);
	g_autoptr(ImtaQueue) queue = NULL;
	g_autoptr(ImtaJcClient) jc = NULL;
	g_autoptr(ImtaMasterJob) job = NULL;
	MasterSource *source;
	ImtaEntryStatus status;

	queue = imta_queue_open(config->tailor->queue_dir, config->cnf, notify, &error);
	if (queue == NULL) {
		imta_log(IMTA_LOG_ERROR, "cannot open the queue: %s", error->message);
		return EXIT_TEMPFAIL;
	}
	jc = imta_jc_client_connect(config->tailor->run_dir, "master", channel->name,
				    IMTA_JC_DEFAULT_TIMEOUT_MS, &error);
	if (jc == NULL) {
		imta_log(IMTA_LOG_ERROR, "%s: %s", channel->name, error->message);
		return g_error_matches(error, IMTA_JC_ERROR, IMTA_JC_ERROR_NOT_RUNNING)
			       ? EXIT_UNAVAILABLE
			       : EXIT_TEMPFAIL;
	}
	imta_jc_client_set_interrupt(jc, &master_stop);
	source = master_source_new(config, channel, queue, jc, &master_stop, &master_reopen);
	job = imta_master_job_new(config, channel, &master_source_ops, source);
	master_source_set_job(source, job);
	imta_log(IMTA_LOG_INFO, "%s: master job started (plugin %s %s)", channel->name,
		 channel->plugin->name, channel->plugin->version);
	status = channel->plugin->master(job);
	imta_log(IMTA_LOG_INFO, "%s: master job ends after %u message%s, status %d%s",
		 channel->name, master_source_finished(source),
		 master_source_finished(source) == 1 ? "" : "s", (int)status,
		 master_source_disconnected(source) ? " (job controller gone)" : "");
	return (int)status;
}

int
main(int argc, char **argv)
{
	g_autofree char *config_dir = NULL;
	g_autofree char *channel_name = NULL;
	g_autofree char *log_path = NULL;
	gboolean debug = FALSE;
	const GOptionEntry entries[] = {
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_dir,
		  "configuration directory (default: $IMTA_CONFIG, else the installed one)", "DIR" },
		{ "channel", 0, 0, G_OPTION_ARG_STRING, &channel_name,
		  "the channel whose queue this job delivers", "NAME" },
		{ "log", 0, 0, G_OPTION_ARG_FILENAME, &log_path,
		  "log file (default: <IMTA_LOG>/<channel>_master.log; - = standard error)",
		  "FILE" },
		{ "debug", 'd', 0, G_OPTION_ARG_NONE, &debug, "log debugging detail", NULL },
		{ NULL }
	};
	g_autoptr(GOptionContext) context = g_option_context_new("--channel NAME");
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaConfig) config = NULL;
	const ImtaChannel *channel;
	int status;

	g_set_prgname("imta-master");
	g_option_context_set_summary(context,
		"Deliver the queue of one channel with its plugin's master entry, taking "
		"messages from the job controller.  Normally started by the job controller.");
	g_option_context_add_main_entries(context, entries, NULL);
	if (!g_option_context_parse(context, &argc, &argv, &error)) {
		fprintf(stderr, "imta-master: %s\n", error->message);
		return EXIT_USAGE;
	}
	if (channel_name == NULL || argc > 1) {
		fprintf(stderr, "imta-master: %s\n", channel_name == NULL
			? "--channel NAME is required" : "unexpected arguments");
		return EXIT_USAGE;
	}
	imta_log_open("imta-master", NULL, NULL);
	if (debug)
		imta_log_set_level(IMTA_LOG_DEBUG);
	umask(027);
	/* The directory too: a notice's recipient is routed like any
	 * address, and the rewrite rules may consult it ($V, $Z). */
	config = imta_config_load(imta_config_dir_choose(config_dir),
				  IMTA_CONFIG_LOAD_PLUGINS | IMTA_CONFIG_OPEN_DIRECTORY, NULL, &error);
	if (config == NULL) {
		imta_log(IMTA_LOG_ERROR, "%s", error->message);
		return EXIT_CONFIG;
	}
	/* The channel first: a wrong name must not create a log file. */
	channel = master_find_channel(config, channel_name);
	if (channel == NULL)
		return EXIT_CONFIG;
	master_open_log(config, channel_name, log_path);
	imta_mail_log_init(config);
	if (!imta_plugin_registry_init(config->plugins, config, &error)) {
		imta_log(IMTA_LOG_ERROR, "%s: %s", channel_name, error->message);
		return EXIT_CONFIG;
	}
	master_install_signals();
	status = master_run(config, channel);
	imta_mail_log_close();
	imta_log_close();
	return status;
}
