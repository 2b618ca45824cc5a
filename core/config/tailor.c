/*
 * tailor.c - imta_tailor: the paths, host name and account of one MTA
 * instance, with relative paths taken from the configuration directory.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include <imta/cfgfile.h>
#include <imta/options.h>
#include <imta/tailor.h>

/* The build defines these from configure's directories. */
#ifndef IMTA_LOCALSTATEDIR
#define IMTA_LOCALSTATEDIR "/var/lib/imta"
#endif
#ifndef IMTA_RUNSTATEDIR
#define IMTA_RUNSTATEDIR "/run/imta"
#endif
#ifndef IMTA_PLUGINSDIR
#define IMTA_PLUGINSDIR "/usr/lib/imta/plugins"
#endif
#ifndef IMTA_SYSCONFDIR
#define IMTA_SYSCONFDIR "/etc/imta"
#endif

#define TAILOR_FILE "imta_tailor"
#define TAILOR_COMMENTS "!#"
#define TL(field) G_STRUCT_OFFSET(ImtaTailor, field)

static gboolean tailor_check_directory(const char *value, const char **expected_r);
static gboolean tailor_check_mail_log(const char *value, const char **expected_r);

const ImtaOptionSpec imta_tailor_options[] = {
	{ .name = "IMTA_QUEUE", .kind = IMTA_OPT_STRING,
	  .default_value = IMTA_LOCALSTATEDIR "/queue",
	  .offset = TL(queue_dir), .scopes = IMTA_SCOPE_GLOBAL,
	  .doc = "queue root, one directory per channel below it" },
	{ .name = "IMTA_LOG", .kind = IMTA_OPT_STRING, .default_value = IMTA_LOCALSTATEDIR "/log",
	  .offset = TL(log_dir), .scopes = IMTA_SCOPE_GLOBAL, .doc = "log directory" },
	{ .name = "IMTA_STORE", .kind = IMTA_OPT_STRING,
	  .default_value = IMTA_LOCALSTATEDIR "/store",
	  .offset = TL(store_dir), .scopes = IMTA_SCOPE_GLOBAL, .doc = "message store root" },
	{ .name = "IMTA_RUN", .kind = IMTA_OPT_STRING, .default_value = IMTA_RUNSTATEDIR,
	  .offset = TL(run_dir), .scopes = IMTA_SCOPE_GLOBAL, .doc = "sockets and pid files" },
	{ .name = "IMTA_PLUGIN_DIR", .kind = IMTA_OPT_STRING, .default_value = IMTA_PLUGINSDIR,
	  .offset = TL(plugin_dir), .scopes = IMTA_SCOPE_GLOBAL,
	  .doc = "directory of the channel plugins" },
	{ .name = "IMTA_TABLE", .kind = IMTA_OPT_STRING, .offset = TL(table_dir),
	  .scopes = IMTA_SCOPE_GLOBAL,
	  .doc = "where imta.cnf, mappings, option.dat... live (default: the configuration"
		 " directory)" },
	{ .name = "IMTA_USER", .kind = IMTA_OPT_STRING, .offset = TL(user),
	  .scopes = IMTA_SCOPE_GLOBAL, .check = imta_option_check_user,
	  .doc = "unprivileged account the daemons run as after binding (default: unchanged)" },
	{ .name = "IMTA_HOSTNAME", .kind = IMTA_OPT_STRING, .offset = TL(hostname),
	  .scopes = IMTA_SCOPE_GLOBAL, .check = imta_option_check_hostname,
	  .doc = "this system's host name (default: the system's own)" },
	{ .name = "IMTA_DIRECTORY", .kind = IMTA_OPT_STRING, .default_value = "ldif:directory.ldif",
	  .offset = TL(directory), .scopes = IMTA_SCOPE_GLOBAL, .check = tailor_check_directory,
	  .doc = "directory backend: ldif:FILE, or ldap: (servers from option.dat LDAP_*)" },
	{ .name = "IMTA_MAIL_LOG", .kind = IMTA_OPT_STRING, .default_value = "file",
	  .offset = TL(mail_log), .scopes = IMTA_SCOPE_GLOBAL, .check = tailor_check_mail_log,
	  .doc = "message log: file (<IMTA_LOG>/mail.log_current) or syslog" },
	{ .name = "IMTA_CONVERSION_FILE", .kind = IMTA_OPT_STRING, .offset = TL(conversion_file),
	  .scopes = IMTA_SCOPE_GLOBAL,
	  .doc = "the conversion channel's conversions file (default: conversions in IMTA_TABLE)" },
};
const gsize imta_tailor_n_options = G_N_ELEMENTS(imta_tailor_options);

static gboolean
tailor_check_directory(const char *value, const char **expected_r)
{
	*expected_r = "ldif:FILE, ldap: or an ldap://host[:port]/BASE-DN URL";
	if (g_ascii_strncasecmp(value, "ldif:", 5) == 0)
		return value[5] != '\0';
	return g_ascii_strcasecmp(value, "ldap:") == 0 ||
	       g_ascii_strncasecmp(value, "ldap://", 7) == 0 ||
	       g_ascii_strncasecmp(value, "ldaps://", 8) == 0 ||
	       g_ascii_strncasecmp(value, "ldapi://", 8) == 0;
}

static gboolean
tailor_check_mail_log(const char *value, const char **expected_r)
{
	*expected_r = "file or syslog";
	return g_ascii_strcasecmp(value, "file") == 0 || g_ascii_strcasecmp(value, "syslog") == 0;
}

const char *
imta_config_dir_choose(const char *cli_value)
{
	const char *env;

	if (cli_value != NULL && *cli_value != '\0')
		return cli_value;
	env = g_getenv("IMTA_CONFIG");
	if (env != NULL && *env != '\0')
		return env;
	return IMTA_SYSCONFDIR;
}

void
imta_tailor_free(ImtaTailor *tailor)
{
	if (tailor == NULL)
		return;
	imta_option_table_clear(imta_tailor_options, imta_tailor_n_options, tailor);
	g_free(tailor->config_dir);
	g_free(tailor);
}

static void
tailor_resolve(char **path, const char *base)
{
	char *absolute;

	if (*path == NULL)
		return;
	absolute = g_canonicalize_filename(*path, base);
	g_free(*path);
	*path = absolute;
}

/* Relative paths mean "relative to the configuration directory"; unset
 * ones take the values only known at run time. */
static void
tailor_finish(ImtaTailor *tailor)
{
	char **paths[] = { &tailor->queue_dir, &tailor->log_dir, &tailor->store_dir,
			   &tailor->run_dir, &tailor->plugin_dir, &tailor->table_dir };

	if (tailor->table_dir == NULL)
		tailor->table_dir = g_strdup(tailor->config_dir);
	for (gsize i = 0; i < G_N_ELEMENTS(paths); i++)
		tailor_resolve(paths[i], tailor->config_dir);
	if (tailor->conversion_file == NULL)
		tailor->conversion_file = g_build_filename(tailor->table_dir, "conversions", NULL);
	else
		tailor_resolve(&tailor->conversion_file, tailor->config_dir);
	if (tailor->hostname == NULL)
		tailor->hostname = g_strdup(g_get_host_name());
	if (tailor->directory != NULL && g_ascii_strncasecmp(tailor->directory, "ldif:", 5) == 0) {
		g_autofree char *file = g_canonicalize_filename(tailor->directory + 5,
								tailor->config_dir);

		g_free(tailor->directory);
		tailor->directory = g_strconcat("ldif:", file, NULL);
	}
}

static gboolean
tailor_set(ImtaTailor *tailor, const ImtaOptionLine *line, GError **error)
{
	const ImtaOptionSpec *row;

	if (line->kind == IMTA_OPTION_LINE_SECTION) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &line->pos,
				  "imta_tailor has no sections; expected NAME=value");
		return FALSE;
	}
	row = imta_option_lookup(imta_tailor_options, imta_tailor_n_options, line->name);
	if (row == NULL)
		return imta_option_unknown(error, &line->name_pos, "imta_tailor", line->name,
					   imta_option_suggest(imta_tailor_options,
							       imta_tailor_n_options, line->name,
							       NULL));
	return imta_option_set_row(row, tailor, line->value, &line->value_pos, error);
}

static gboolean
tailor_read(ImtaTailor *tailor, const char *path, GStringChunk *names, GError **error)
{
	g_autoptr(ImtaCfgFile) cf = NULL;
	g_autoptr(GError) local = NULL;
	ImtaOptionLine line = { 0 };

	cf = imta_cfg_file_open(path, 0, TAILOR_COMMENTS, names, error);
	if (cf == NULL)
		return FALSE;
	while (imta_option_next_line(cf, TAILOR_COMMENTS, &line, &local))
		if (!tailor_set(tailor, &line, &local))
			break;
	imta_option_line_clear(&line);
	if (local != NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	return TRUE;
}

ImtaTailor *
imta_tailor_load(const char *config_dir, GStringChunk *names, GError **error)
{
	g_autoptr(ImtaTailor) tailor = g_new0(ImtaTailor, 1);
	g_autoptr(GStringChunk) own = NULL;
	g_autofree char *path = NULL;

	tailor->config_dir = g_canonicalize_filename(config_dir, NULL);
	imta_option_table_defaults(imta_tailor_options, imta_tailor_n_options, tailor,
				   IMTA_SCOPE_GLOBAL);
	path = g_build_filename(tailor->config_dir, TAILOR_FILE, NULL);
	/* An instance without imta_tailor uses the installation's paths. */
	if (g_file_test(path, G_FILE_TEST_EXISTS)) {
		if (names == NULL)
			names = own = g_string_chunk_new(256);
		if (!tailor_read(tailor, path, names, error))
			return NULL;
	}
	tailor_finish(tailor);
	return g_steal_pointer(&tailor);
}

void
imta_tailor_dump(const ImtaTailor *tailor, GString *out)
{
	g_string_append_printf(out, "! imta_tailor: %s/%s\n", tailor->config_dir, TAILOR_FILE);
	imta_option_table_dump(imta_tailor_options, imta_tailor_n_options, tailor,
			       IMTA_SCOPE_GLOBAL, out);
}
