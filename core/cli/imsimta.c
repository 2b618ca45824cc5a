/*
 * imsimta.c - the administrator's command: inspect, test and control an
 * MTA instance.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include <imta/daemon.h>
#include <imta/imta.h>
#include <imta/mail_log.h>
#include "commands.h"

typedef struct {
	const char *name;
	CliVerb run;
	const char *summary;
	gboolean keeps_root;    /* run by root, the verb does not switch to IMTA_USER */
} CliVerbRow;

static const CliVerbRow verbs[] = {
	{ "plugin-list", cli_plugin_list, "list the channel plugins and the channels bound to them" },
	{ "test", cli_test, "try address rewriting (-rewrite), a mapping table (-mapping), "
	  "a pattern (-match), a DNS lookup (-dns) or a block list (-dnsbl)" },
	{ "check", cli_check, "validate every configuration file" },
	{ "cnbuild", cli_check, "validate the configuration (there is no compiled image to build)" },
	{ "start", cli_service, "start dispatcher or job_controller", .keeps_root = TRUE },
	{ "stop", cli_service, "stop dispatcher or job_controller", .keeps_root = TRUE },
	{ "restart", cli_service, "restart dispatcher or job_controller", .keeps_root = TRUE },
	{ "reload", cli_service, "have dispatcher and job_controller reopen their logs",
	  .keeps_root = TRUE },
	{ "start-msg", cli_service, "same as start", .keeps_root = TRUE },
	{ "stop-msg", cli_service, "same as stop", .keeps_root = TRUE },
	{ "stats", cli_service, "the dispatcher's services, workers and connections", .keeps_root = TRUE },
	{ "qm", cli_qm, "the queue manager: list, read, hold, release, delete queued messages" },
	{ "enqueue", cli_enqueue, "queue a message from standard input for the given addresses" },
	{ "submit", cli_submit, "have the job controller deliver a channel's queue now" },
	{ "counters", cli_counters, "per-channel message counts since the job controller started" },
	{ "cache", cli_state, "the job controller's state (-view), a queue rescan (-sync) or "
	  "a directory cache flush (-flush)" },
	{ "state", cli_state, "the job controller's state: jobs per pool, messages tracked" },
	{ "mboxutil", cli_mboxutil, "the message store's mailboxes: list, create, delete, rename, "
				    "quota, messages, print" },
	{ "reconstruct", cli_reconstruct, "check or rebuild the message store's indexes and "
					  "system area" },
	{ "hashdir", cli_hashdir, "the hash directory of a user's mailbox" },
	{ "directory", cli_directory, "look up addresses, domains and passwords in the directory" },
};

static void
usage(FILE *out)
{
	fprintf(out, "Usage: imsimta [--config DIR] VERB [ARGS...]\n\n"
		"The configuration directory is --config DIR, else $IMTA_CONFIG, else %s.\n\n"
		"Verbs:\n", IMTA_SYSCONFDIR);
	for (gsize i = 0; i < G_N_ELEMENTS(verbs); i++)
		fprintf(out, "  %-12s %s\n", verbs[i].name, verbs[i].summary);
	fprintf(out, "\n`imsimta VERB --help` describes each verb.\n");
}

ImtaConfig *
cli_load_config(const CliGlobal *global, guint flags)
{
	g_autoptr(GError) error = NULL;
	ImtaConfig *config = imta_config_load(global->config_dir, flags, NULL, &error);

	if (config == NULL) {
		fprintf(stderr, "imsimta: %s\n", error->message);
		return NULL;
	}
	/* What the verb writes (queue files, the store, mail.log) must stay
	 * the daemons' to read and change after they dropped root. */
	if (global->as_user && geteuid() == 0 &&
	    !imta_daemon_drop_privileges(config->tailor->user, &error)) {
		fprintf(stderr, "imsimta: %s\n", error->message);
		imta_config_free(config);
		return NULL;
	}
	imta_mail_log_init(config); /* the file is opened at the first entry */
	return config;
}

gboolean
cli_parse_options(int *argc, char ***argv, const char *verb, const char *args,
		  const char *summary, const GOptionEntry *entries, int *exit_r)
{
	g_autofree char *param = g_strdup_printf("%s %s", verb, args);
	g_autoptr(GOptionContext) context = g_option_context_new(param);
	g_autoptr(GError) error = NULL;

	g_option_context_set_summary(context, summary);
	if (entries != NULL)
		g_option_context_add_main_entries(context, entries, NULL);
	if (!g_option_context_parse(context, argc, argv, &error)) {
		fprintf(stderr, "imsimta %s: %s\n", verb, error->message);
		*exit_r = EXIT_USAGE;
		return FALSE;
	}
	return TRUE;
}

int
main(int argc, char **argv)
{
	const char *config_dir = NULL;
	CliGlobal global = { 0 };
	int i = 1;

	g_set_prgname("imsimta");
	/* Global options come before the verb; everything after belongs to it. */
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("imsimta %s (plugin ABI %d)\n", PACKAGE_VERSION, IMTA_PLUGIN_ABI_VERSION);
			return 0;
		}
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			config_dir = argv[i + 1];
			i += 2;
			continue;
		}
		if (g_str_has_prefix(argv[i], "--config=")) {
			config_dir = argv[i] + strlen("--config=");
			i++;
			continue;
		}
		fprintf(stderr, "imsimta: unknown option %s\n", argv[i]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	global.config_dir = imta_config_dir_choose(config_dir);
	global.user = g_get_user_name();
	for (gsize v = 0; v < G_N_ELEMENTS(verbs); v++)
		if (strcmp(argv[i], verbs[v].name) == 0) {
			global.as_user = !verbs[v].keeps_root;
			return verbs[v].run(&global, argc - i, argv + i);
		}
	fprintf(stderr, "imsimta: unknown verb \"%s\"\n", argv[i]);
	usage(stderr);
	return EXIT_USAGE;
}
