/*
 * cmd_reconstruct.c - imsimta reconstruct: compare the message store's
 * system area and folder indexes with the message files and repair them,
 * and keep snapshots of the system area.
 *
 *   imsimta reconstruct [--check] [USER...]   all users without arguments
 *   imsimta reconstruct --snapshot
 *   imsimta reconstruct --list-snapshots
 *   imsimta reconstruct --restore NAME --yes
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <glib.h>

#include <imta/imta.h>
#include <imta/store.h>
#include "commands.h"

static const char rc_help[] =
	"Without --check, every problem found is repaired: a missing or damaged system\n"
	"area, index or header cache is rebuilt from the message files, leftovers of\n"
	"interrupted deliveries are removed and usage is counted again.  Findings are\n"
	"printed one per line, then a summary.\n"
	"\n"
	"--restore puts a snapshot back as the system area; stop the MTA and\n"
	"everything else that uses the store first.\n"
	"\n"
	"Exit status: 0 nothing to repair (or repaired), 1 --check found problems,\n"
	"64 usage, 67 no such user or snapshot, 74 I/O error, 78 configuration error.\n";

static int
rc_fail(const char *what, const GError *error)
{
	fprintf(stderr, "imsimta reconstruct: %s%s%s\n", what != NULL ? what : "",
		what != NULL ? ": " : "", error->message);
	return cli_store_exit(error);
}

static const char *
rc_plural(gint n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/* Check or repair `users` (all when empty); prints the findings as they
 * come, user by user, then one summary line. */
static int
rc_reconstruct(ImtaStore *store, gboolean check_only, int argc, char **argv)
{
	gint total = 0;
	int status = 0;
	int n_users = argc > 1 ? argc - 1 : 1;

	for (int i = 0; i < n_users; i++) {
		const char *user = argc > 1 ? argv[i + 1] : NULL;
		g_autoptr(GPtrArray) findings = g_ptr_array_new_with_free_func(g_free);
		g_autoptr(GError) error = NULL;
		gint found;

		if (user != NULL && (*user == '\0' || strchr(user, '/') != NULL)) {
			fprintf(stderr, "imsimta reconstruct: \"%s\" is not a user id\n", user);
			return EXIT_USAGE;
		}
		if (user != NULL) {
			g_autofree char *partition = imta_store_user_partition(store, user, &error);

			if (partition == NULL) {
				if (g_error_matches(error, IMTA_STORE_ERROR,
						    IMTA_STORE_ERROR_NOT_FOUND))
					fprintf(stderr, "imsimta reconstruct: no such user \"%s\" in "
						"the message store\n", user);
				else
					rc_fail(user, error);
				status = status != 0 ? status : cli_store_exit(error);
				continue;
			}
		}
		found = imta_store_reconstruct(store, user, check_only, findings, &error);
		for (guint f = 0; f < findings->len; f++)
			printf("%s\n", (const char *)findings->pdata[f]);
		if (found < 0) {
			if (g_error_matches(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND) &&
			    user != NULL)
				fprintf(stderr, "imsimta reconstruct: no such user \"%s\" in the "
					"message store\n", user);
			else
				rc_fail(user, error);
			status = status != 0 ? status : cli_store_exit(error);
			continue;
		}
		total += found;
	}
	if (total == 0)
		printf("no problems found\n");
	else if (check_only)
		printf("%d %s found (imsimta reconstruct repairs %s)\n", total,
		       rc_plural(total, "problem", "problems"), rc_plural(total, "it", "them"));
	else
		printf("%d %s found and repaired\n", total, rc_plural(total, "problem", "problems"));
	if (fflush(stdout) != 0)
		return EXIT_IOERR;
	if (status != 0)
		return status;
	return check_only && total > 0 ? 1 : 0;
}

static int
rc_snapshot(ImtaStore *store)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *name = NULL;

	if (!imta_store_snapshot(store, &name, &error))
		return rc_fail("--snapshot", error);
	printf("snapshot %s\n", name);
	return 0;
}

static int
rc_list_snapshots(ImtaStore *store)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) names = imta_store_list_snapshots(store, &error);

	if (names == NULL)
		return rc_fail("--list-snapshots", error);
	if (names->len == 0)
		printf("No snapshots.\n");
	for (guint i = 0; i < names->len; i++)
		printf("%s\n", (const char *)names->pdata[i]);
	return 0;
}

static int
rc_restore(ImtaStore *store, const char *name)
{
	g_autoptr(GError) error = NULL;

	if (*name == '\0' || strchr(name, '/') != NULL || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0) {
		fprintf(stderr, "imsimta reconstruct: --restore: \"%s\" is not a snapshot name "
			"(imsimta reconstruct --list-snapshots lists them)\n", name);
		return EXIT_USAGE;
	}
	if (!imta_store_restore_snapshot(store, name, &error)) {
		if (g_error_matches(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND)) {
			fprintf(stderr, "imsimta reconstruct: --restore: no snapshot \"%s\" "
				"(imsimta reconstruct --list-snapshots lists them)\n", name);
			return EXIT_NOUSER;
		}
		return rc_fail("--restore", error);
	}
	printf("restored the system area from snapshot %s\n", name);
	return 0;
}

int
cli_reconstruct(const CliGlobal *global, int argc, char **argv)
{
	gboolean check = FALSE, snapshot = FALSE, list = FALSE, yes = FALSE;
	g_autofree char *restore = NULL;
	const GOptionEntry entries[] = {
		{ "check", 0, 0, G_OPTION_ARG_NONE, &check,
		  "Report problems without repairing them (exit 1 when there are some)", NULL },
		{ "snapshot", 0, 0, G_OPTION_ARG_NONE, &snapshot,
		  "Copy the system area to ROOT/snapshots/NAME", NULL },
		{ "list-snapshots", 0, 0, G_OPTION_ARG_NONE, &list, "List the snapshots", NULL },
		{ "restore", 0, 0, G_OPTION_ARG_STRING, &restore,
		  "Put snapshot NAME back as the system area (needs --yes)", "NAME" },
		{ "yes", 0, 0, G_OPTION_ARG_NONE, &yes, "Confirm --restore", NULL },
		{ NULL }
	};
	g_autoptr(ImtaConfig) config = NULL;
	g_autoptr(ImtaStore) store = NULL;
	int status;

	if (!cli_parse_options(&argc, &argv, "reconstruct", "[--check] [USER...]", rc_help,
			       entries, &status))
		return status;
	if (check + snapshot + list + (restore != NULL) > 1 ||
	    ((snapshot || list || restore != NULL) && argc > 1)) {
		fprintf(stderr, "imsimta reconstruct: --check [USER...], --snapshot, "
			"--list-snapshots and --restore NAME go alone\n");
		return EXIT_USAGE;
	}
	if (yes && restore == NULL) {
		fprintf(stderr, "imsimta reconstruct: --yes confirms --restore only\n");
		return EXIT_USAGE;
	}
	if (restore != NULL && !yes) {
		fprintf(stderr, "imsimta reconstruct: --restore replaces the system area with "
			"snapshot %s: stop everything that uses the store, then add --yes\n",
			restore);
		return EXIT_USAGE;
	}
	config = cli_load_config(global, 0);
	if (config == NULL)
		return EXIT_CONFIG;
	store = cli_store_open(config, "reconstruct", NULL, &status);
	if (store == NULL)
		return status;
	if (snapshot)
		return rc_snapshot(store);
	if (list)
		return rc_list_snapshots(store);
	if (restore != NULL)
		return rc_restore(store, restore);
	return rc_reconstruct(store, check, argc, argv);
}
