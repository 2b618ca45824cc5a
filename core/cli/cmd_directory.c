/*
 * cmd_directory.c - imsimta directory: ask the configured directory
 * (embedded LDIF or LDAP) what the MTA would ask it, and show the answer.
 *
 *   imsimta directory [-lookup] ADDRESS...   the entry and where mail goes
 *   imsimta directory -domain DOMAIN...      the hosted domain
 *   imsimta directory -auth USER             check a password (standard input)
 *
 * One line per argument, the same whatever the backend, so the answers of
 * two backends can be compared line by line.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <glib.h>

#include <imta/imta.h>
#include "commands.h"

typedef enum { DIR_CMD_LOOKUP, DIR_CMD_DOMAIN, DIR_CMD_AUTH } DirCommand;

/* Longest password line read from standard input. */
#define DIR_CMD_MAX_PASSWORD 1024

static const char directory_help[] =
	"Usage: imsimta directory [-lookup] ADDRESS...\n"
	"       imsimta directory -domain DOMAIN...\n"
	"       imsimta directory -auth USER < PASSWORD-FILE\n"
	"\n"
	"Ask the directory IMTA_DIRECTORY names (imta-directory(5)), as the MTA\n"
	"asks it, without a cache.  One line per argument:\n"
	"-lookup  (the default) the entry receiving mail for ADDRESS (a\n"
	"         \"+subaddress\" falls back to the address without it):\n"
	"           ADDRESS: user|group DN status=S [domain=D] [host=H]\n"
	"             [quota=BYTES/MESSAGES] [store=P] deliver=ADDR,...\n"
	"         or \"ADDRESS: not found\"; deliver= lists where mail is delivered\n"
	"         (option.dat DELIVERY_OPTIONS applied), or delivery-error=\"...\".\n"
	"-domain  DOMAIN: domain canonical=C base=DN status=S local|not-local\n"
	"-auth    check the password on the first line of standard input for USER\n"
	"         (an address or uid): \"USER: accepted\" or \"USER: refused\".\n"
	"A directory that cannot answer prints \"ARG: temporary failure: why\".\n"
	"Exit status: 0 all found (accepted), 67 some not found (refused),\n"
	"75 some temporary failure, 64 usage, 78 configuration error.\n";

static const char *
dir_cmd_status_name(ImtaDirUserStatus status)
{
	switch (status) {
	case IMTA_DIR_STATUS_ACTIVE:    return "active";
	case IMTA_DIR_STATUS_INACTIVE:  return "inactive";
	case IMTA_DIR_STATUS_DELETED:   return "deleted";
	case IMTA_DIR_STATUS_HOLD:      return "hold";
	case IMTA_DIR_STATUS_OVERQUOTA: return "overquota";
	case IMTA_DIR_STATUS_DISABLED:  return "disabled";
	}
	return "unknown";
}

static char *
dir_cmd_quota(gint64 value)
{
	if (value == IMTA_DIR_QUOTA_DEFAULT)
		return g_strdup("default");
	if (value == IMTA_DIR_QUOTA_UNLIMITED)
		return g_strdup("unlimited");
	return g_strdup_printf("%" G_GINT64_FORMAT, value);
}

/* Worst outcome so far: 0 < 67 (not found) < 75 (temporary). */
static int
dir_cmd_worse(int a, int b)
{
	return MAX(a, b);
}

static int
dir_cmd_tempfail(GString *out, const char *arg, const GError *error)
{
	g_string_append_printf(out, "%s: temporary failure: %s\n", arg,
			       error != NULL ? error->message : "no answer");
	return EXIT_TEMPFAIL;
}

static void
dir_cmd_deliveries(GString *out, ImtaDirectory *dir, const ImtaConfig *config,
		   const ImtaDirEntry *entry, const char *address)
{
	g_autoptr(GPtrArray) addresses = NULL;
	g_autoptr(GError) error = NULL;
	ImtaDirStatus status;

	status = imta_directory_delivery_addresses(dir, config->options->delivery_options, entry,
						   address, &addresses, &error);
	if (status != IMTA_DIR_FOUND) {
		g_autofree char *quoted = g_strescape(error != NULL ? error->message : "", NULL);

		g_string_append_printf(out, " delivery-%s=\"%s\"",
				       status == IMTA_DIR_TEMPFAIL ? "tempfail" : "error", quoted);
		return;
	}
	g_string_append(out, " deliver=");
	for (guint i = 0; i < addresses->len; i++)
		g_string_append_printf(out, "%s%s", i > 0 ? "," : "",
				       (const char *)g_ptr_array_index(addresses, i));
}

static int
dir_cmd_lookup(GString *out, ImtaDirectory *dir, const ImtaConfig *config, const char *address)
{
	g_autoptr(ImtaDirEntry) entry = NULL;
	g_autoptr(GError) error = NULL;
	ImtaDirStatus status = imta_directory_lookup_local(dir, address, &entry, &error);

	if (status == IMTA_DIR_TEMPFAIL)
		return dir_cmd_tempfail(out, address, error);
	if (status == IMTA_DIR_NOT_FOUND) {
		g_string_append_printf(out, "%s: not found%s%s\n", address,
				       error != NULL ? ": " : "",
				       error != NULL ? error->message : "");
		return EXIT_NOUSER;
	}
	g_string_append_printf(out, "%s: %s %s status=%s", address,
			       entry->kind == IMTA_DIR_USER ? "user" : "group", entry->dn,
			       dir_cmd_status_name(entry->status));
	if (entry->domain != NULL)
		g_string_append_printf(out, " domain=%s", entry->domain);
	if (entry->mail_host != NULL)
		g_string_append_printf(out, " host=%s", entry->mail_host);
	if (entry->kind == IMTA_DIR_USER) {
		g_autofree char *bytes = dir_cmd_quota(entry->quota_bytes);
		g_autofree char *messages = dir_cmd_quota(entry->quota_messages);

		g_string_append_printf(out, " quota=%s/%s", bytes, messages);
	}
	if (entry->message_store != NULL)
		g_string_append_printf(out, " store=%s", entry->message_store);
	dir_cmd_deliveries(out, dir, config, entry, address);
	g_string_append_c(out, '\n');
	return 0;
}

static int
dir_cmd_domain(GString *out, ImtaDirectory *dir, const char *name)
{
	g_autoptr(ImtaDirDomain) domain = NULL;
	g_autoptr(GError) error = NULL;
	ImtaDirStatus status = imta_directory_lookup_domain(dir, name, &domain, &error);
	ImtaDirStatus local;

	if (status == IMTA_DIR_TEMPFAIL)
		return dir_cmd_tempfail(out, name, error);
	if (status == IMTA_DIR_NOT_FOUND) {
		g_string_append_printf(out, "%s: not found\n", name);
		return EXIT_NOUSER;
	}
	local = imta_directory_domain_is_local(dir, name, &error);
	if (local == IMTA_DIR_TEMPFAIL)
		return dir_cmd_tempfail(out, name, error);
	g_string_append_printf(out, "%s: domain canonical=%s base=%s status=%s %s\n", name,
			       domain->canonical, domain->base_dn,
			       dir_cmd_status_name(domain->status),
			       local == IMTA_DIR_FOUND ? "local" : "not-local");
	return 0;
}

static int
dir_cmd_auth(GString *out, ImtaDirectory *dir, const char *user)
{
	char line[DIR_CMD_MAX_PASSWORD + 2];
	g_autoptr(GError) error = NULL;
	ImtaDirStatus status;
	gsize len;

	if (fgets(line, sizeof(line), stdin) == NULL) {
		fprintf(stderr, "imsimta directory: -auth reads the password from standard "
			"input\n");
		return EXIT_USAGE;
	}
	len = strcspn(line, "\r\n");
	line[len] = '\0';
	status = imta_directory_authenticate(dir, user, line, &error);
	memset(line, 0, sizeof(line));
	if (status == IMTA_DIR_TEMPFAIL)
		return dir_cmd_tempfail(out, user, error);
	g_string_append_printf(out, "%s: %s%s%s\n", user,
			       status == IMTA_DIR_FOUND ? "accepted" : "refused",
			       error != NULL ? ": " : "", error != NULL ? error->message : "");
	return status == IMTA_DIR_FOUND ? 0 : EXIT_NOUSER;
}

int
cli_directory(const CliGlobal *global, int argc, char **argv)
{
	g_autoptr(ImtaConfig) config = NULL;
	g_autoptr(ImtaDirectory) dir = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GString) out = g_string_new(NULL);
	DirCommand command = DIR_CMD_LOOKUP;
	int first = 1, status = 0;

	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-help") == 0)) {
		fputs(directory_help, stdout);
		return 0;
	}
	if (argc > 1 && argv[1][0] == '-') {
		if (strcmp(argv[1], "-lookup") == 0)
			command = DIR_CMD_LOOKUP;
		else if (strcmp(argv[1], "-domain") == 0)
			command = DIR_CMD_DOMAIN;
		else if (strcmp(argv[1], "-auth") == 0)
			command = DIR_CMD_AUTH;
		else {
			fprintf(stderr, "imsimta directory: unknown option %s\n", argv[1]);
			return EXIT_USAGE;
		}
		first = 2;
	}
	if (first >= argc || (command == DIR_CMD_AUTH && argc - first != 1)) {
		fputs(directory_help, stderr);
		return EXIT_USAGE;
	}
	config = cli_load_config(global, 0);
	if (config == NULL)
		return EXIT_CONFIG;
	dir = imta_config_open_directory(config, FALSE, &error);
	if (dir == NULL) {
		fprintf(stderr, "imsimta directory: %s\n", error->message);
		return EXIT_CONFIG;
	}
	for (int i = first; i < argc; i++) {
		int one = 0;

		switch (command) {
		case DIR_CMD_LOOKUP:
			one = dir_cmd_lookup(out, dir, config, argv[i]);
			break;
		case DIR_CMD_DOMAIN:
			one = dir_cmd_domain(out, dir, argv[i]);
			break;
		case DIR_CMD_AUTH:
			one = dir_cmd_auth(out, dir, argv[i]);
			break;
		}
		if (one == EXIT_USAGE)
			return one;
		status = dir_cmd_worse(status, one);
	}
	fputs(out->str, stdout);
	return status;
}
