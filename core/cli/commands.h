/*
 * commands.h - the verbs of imsimta(8).
 *
 * Each verb is a function taking its own argv (argv[0] is the verb) and
 * the global options, returning the process exit status (sysexits).
 */
#ifndef IMTA_CLI_COMMANDS_H
#define IMTA_CLI_COMMANDS_H

#include <sys/types.h>
#include <glib.h>
#include <imta/config.h>
#include <imta/jc_client.h>
#include <imta/store.h>
#include <imta/queue.h>

#define EXIT_USAGE 64        /* EX_USAGE */
#define EXIT_DATAERR 65      /* EX_DATAERR: an address did not route */
#define EXIT_NOUSER 67       /* EX_NOUSER: no such user or mailbox */
#define EXIT_UNAVAILABLE 69  /* EX_UNAVAILABLE */
#define EXIT_SOFTWARE 70     /* EX_SOFTWARE */
#define EXIT_CANTCREAT 73    /* EX_CANTCREAT: the mailbox exists already */
#define EXIT_IOERR 74        /* EX_IOERR: a queue file could not be changed */
#define EXIT_TEMPFAIL 75     /* EX_TEMPFAIL: try again later */
#define EXIT_CONFIG 78       /* EX_CONFIG: the configuration is invalid */

typedef struct {
	const char *config_dir;  /* chosen by imta_config_dir_choose() */
	gboolean as_user;        /* cli_load_config() switches root to IMTA_USER */
	const char *user;        /* who runs imsimta, named before any switch */
} CliGlobal;

typedef int (*CliVerb)(const CliGlobal *global, int argc, char **argv);

/* Load the configuration for a verb; prints the error and returns NULL.
 * Run by root, it then switches to IMTA_USER unless the verb keeps root
 * (starting and stopping the daemons), so that the files the verb writes
 * belong to the account the daemons run as. */
ImtaConfig *cli_load_config(const CliGlobal *global, guint flags);

/* Parse a verb's options; handles --help.  Returns FALSE (after printing
 * the problem) when the command line is wrong; *exit_r says how to exit. */
gboolean cli_parse_options(int *argc, char ***argv, const char *verb, const char *args,
			   const char *summary, const GOptionEntry *entries, int *exit_r);

int cli_plugin_list(const CliGlobal *global, int argc, char **argv);
int cli_test(const CliGlobal *global, int argc, char **argv);
int cli_check(const CliGlobal *global, int argc, char **argv);
int cli_service(const CliGlobal *global, int argc, char **argv);
int cli_qm(const CliGlobal *global, int argc, char **argv);
int cli_counters(const CliGlobal *global, int argc, char **argv);
int cli_state(const CliGlobal *global, int argc, char **argv);
int cli_submit(const CliGlobal *global, int argc, char **argv);
int cli_enqueue(const CliGlobal *global, int argc, char **argv);
int cli_mboxutil(const CliGlobal *global, int argc, char **argv);
int cli_hashdir(const CliGlobal *global, int argc, char **argv);
int cli_reconstruct(const CliGlobal *global, int argc, char **argv);
int cli_directory(const CliGlobal *global, int argc, char **argv);

/* The pid of the running dispatcher (its pid file, checked to name a live
 * imta-dispatcher), or 0. */
pid_t cli_dispatcher_pid(const ImtaConfig *config);

/* imsimta qm reprocess: hold queue file `path` of channel `from`, queue
 * its pending recipients with the same envelope and content to channel
 * `target` (without a leading route through `from`'s own hosts), then
 * remove it; *new_id_r gets the new queue id (NULL when nothing was
 * pending).  A held file is refused, unless `from` holds all its mail
 * (keyword held).  On failure the original is left in place. */
gboolean cli_qm_move(ImtaQueue *queue, const char *path, const ImtaChannel *from,
		     const ImtaChannel *target, char **new_id_r, GError **error);

/* Open the instance's message store (store.cnf in the configuration
 * directory, IMTA_STORE as its default root); *store_config_r (optional)
 * gets the store configuration.  Prints why not and returns NULL with
 * *exit_r set (78 configuration, 74 the store could not be opened). */
ImtaStore *cli_store_open(const ImtaConfig *config, const char *verb,
			  ImtaStoreConfig **store_config_r, int *exit_r);
/* The exit status for an IMTA_STORE_ERROR (67 not found, 73 exists, 64
 * invalid name, 65 damaged index, 74 otherwise). */
int cli_store_exit(const GError *error);

/* Connect to the running job controller as an administrator; prints why
 * not (exit 69 in *exit_r) and returns NULL when none answers. */
ImtaJcClient *cli_jc_connect(const ImtaConfig *config, const char *verb, int *exit_r);

#endif
