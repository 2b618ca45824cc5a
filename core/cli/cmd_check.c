/*
 * cmd_check.c - imsimta check / cnbuild: validate every configuration file
 * and report each error at its file:line:column.
 *
 * The configuration is read from the text files at every program start, so
 * there is no compiled image to build: cnbuild is the same check, kept for
 * administrators' habits and scripts.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <glib.h>

#include <imta/imta.h>
#include <imta/conversions.h>
#include "commands.h"

static void
dump_channels(const ImtaCnf *cnf, GString *out)
{
	g_string_append(out, "# imta.cnf: rewrite rules\n");
	for (guint i = 0; i < cnf->rules->len; i++) {
		const ImtaRewriteRule *rule = cnf->rules->pdata[i];

		g_string_append_printf(out, "%s %s\n", rule->pattern, rule->template_);
	}
	g_string_append(out, "\n# imta.cnf: channels (inherited keywords marked *)\n");
	for (guint i = 0; i < cnf->channels->len; i++) {
		const ImtaChannel *channel = cnf->channels->pdata[i];

		g_string_append(out, channel->name);
		for (guint k = 0; k < channel->keywords->len; k++) {
			const ImtaKeywordUse *use = channel->keywords->pdata[k];

			g_string_append_printf(out, " %s%s", use->inherited ? "*" : "", use->name);
			for (guint a = 0; use->args[a] != NULL; a++)
				g_string_append_printf(out, " %s", use->args[a]);
		}
		g_string_append_printf(out, "    ! plugin %s\n",
				       channel->plugin != NULL ? channel->plugin->name : "(none)");
		for (guint h = 0; h < channel->hosts->len; h++) {
			const ImtaChannelHost *host = channel->hosts->pdata[h];

			g_string_append_printf(out, "%s%s%s\n", host->name, host->extra ? " " : "",
					       host->extra ? host->extra : "");
		}
		g_string_append_c(out, '\n');
	}
}

static void
dump_config(const ImtaConfig *config)
{
	g_autoptr(GString) out = g_string_new(NULL);
	const ImtaTailor *tailor = config->tailor;

	g_string_append_printf(out, "# configuration directory %s\n# queue %s\n# log %s\n"
			       "# store %s\n# run %s\n# plugins %s\n\n", config->dir,
			       tailor->queue_dir, tailor->log_dir, tailor->store_dir,
			       tailor->run_dir, tailor->plugin_dir);
	dump_channels(config->cnf, out);
	g_string_append(out, "# option.dat\n");
	imta_option_dat_dump(config->options, out);
	g_string_append(out, "\n# dispatcher.cnf\n");
	imta_dispatcher_cnf_dump(config->dispatcher, out);
	g_string_append(out, "\n# job_controller.cnf\n");
	imta_job_controller_cnf_dump(config->job_controller, out);
	fputs(out->str, stdout);
}

/* Channels queue to pools; a pool nobody defined silently stalls them. */
static guint
check_pools(const ImtaConfig *config)
{
	guint problems = 0;

	for (guint i = 0; i < config->cnf->channels->len; i++) {
		const ImtaChannel *channel = config->cnf->channels->pdata[i];
		g_autofree char *where = NULL;

		if (channel->pool == NULL ||
		    imta_job_controller_cnf_pool(config->job_controller, channel->pool) != NULL)
			continue;
		where = imta_source_pos_format(&channel->pos);
		fprintf(stderr, "imsimta: %s: channel \"%s\" names pool \"%s\", which "
			"job_controller.cnf does not define\n", where, channel->name, channel->pool);
		problems++;
	}
	return problems;
}

static gboolean
check_is_program(const char *path)
{
	return g_file_test(path, G_FILE_TEST_IS_EXECUTABLE) &&
	       !g_file_test(path, G_FILE_TEST_IS_DIR);
}

/* A converter that is not there fails every message it should convert;
 * the program may be installed later, so this is only a warning. */
static void
check_conversion_program(const ImtaConversionEntry *entry, const char *program)
{
	g_autofree char *where = imta_source_pos_format(&entry->pos);
	g_auto(GStrv) dirs = NULL;

	if (strchr(program, '/') != NULL) {
		if (!g_path_is_absolute(program))
			fprintf(stderr, "imsimta: warning: %s: command: \"%s\" is not an absolute "
				"path (converters run in a private directory)\n", where, program);
		else if (!check_is_program(program))
			fprintf(stderr, "imsimta: warning: %s: command: \"%s\" is not an "
				"executable file\n", where, program);
		return;
	}
	dirs = g_strsplit(IMTA_CONVERSION_PATH, ":", 0);
	for (guint i = 0; dirs[i] != NULL; i++) {
		g_autofree char *path = g_build_filename(dirs[i], program, NULL);

		if (check_is_program(path))
			return;
	}
	fprintf(stderr, "imsimta: warning: %s: command: \"%s\" is not in the converters' PATH "
		"(%s)\n", where, program, IMTA_CONVERSION_PATH);
}

/* The conversions file is read by each conversion job, which defers all
 * its messages while the file does not parse: its mistakes belong here.
 * No file is valid (nothing is converted). */
static guint
check_conversions(const ImtaConfig *config)
{
	const char *path = config->tailor->conversion_file;
	g_autoptr(ImtaConversions) conversions = NULL;
	g_autoptr(GError) error = NULL;
	guint problems = 0;

	if (path == NULL || !g_file_test(path, G_FILE_TEST_EXISTS))
		return 0;
	conversions = imta_conversions_load(path, &error);
	if (conversions == NULL) {
		fprintf(stderr, "imsimta: %s\n", error->message);
		return 1;
	}
	for (guint i = 0; i < conversions->entries->len; i++) {
		const ImtaConversionEntry *entry = g_ptr_array_index(conversions->entries, i);
		g_auto(GStrv) argv = NULL;

		if (entry->command == NULL)
			continue;
		argv = imta_conversion_argv(entry, "INPUT_FILE", "OUTPUT_FILE", &error);
		if (argv == NULL) {
			fprintf(stderr, "imsimta: %s\n", error->message);
			g_clear_error(&error);
			problems++;
			continue;
		}
		check_conversion_program(entry, argv[0]);
	}
	return problems;
}

/* A plugin's own files (tcp_smtp's <channel>_option, say) are read by its
 * init hook: run it, as the daemons will, so their mistakes show here. */
static guint
check_plugin_init(const ImtaConfig *config)
{
	g_autoptr(GError) error = NULL;

	if (config->plugins == NULL || imta_plugin_registry_init(config->plugins, config, &error))
		return 0;
	fprintf(stderr, "imsimta: %s\n", error->message);
	return 1;
}

static void
print_warnings(const GPtrArray *warnings)
{
	for (guint i = 0; warnings != NULL && i < warnings->len; i++)
		fprintf(stderr, "imsimta: warning: %s\n", (const char *)warnings->pdata[i]);
}

/* Deprecated options, repeated settings and refused plugins do not stop
 * the MTA, but an administrator should hear about them. */
static void
print_all_warnings(const ImtaConfig *config)
{
	if (config->plugins != NULL) {
		for (guint i = 0; i < config->plugins->modules->len; i++) {
			const ImtaPluginModule *module = config->plugins->modules->pdata[i];

			if (module->state == IMTA_PLUGIN_REFUSED)
				fprintf(stderr, "imsimta: warning: %s\n", module->error);
		}
	}
	if (config->dispatcher != NULL)
		print_warnings(config->dispatcher->warnings);
	if (config->job_controller != NULL)
		print_warnings(config->job_controller->warnings);
	if (config->options != NULL)
		print_warnings(config->options->warnings);
}

int
cli_check(const CliGlobal *global, int argc, char **argv)
{
	gboolean dump = FALSE;
	const GOptionEntry entries[] = {
		{ "dump", 0, 0, G_OPTION_ARG_NONE, &dump, "Print the effective configuration", NULL },
		{ NULL }
	};
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(ImtaConfig) config = NULL;
	guint problems;
	int status = 0;

	if (!cli_parse_options(&argc, &argv, argv[0], "",
			       "Reads imta_tailor, imta.cnf, mappings, option.dat, dispatcher.cnf, "
			       "job_controller.cnf, the conversions file and the directory, loads the "
			       "plugins, and reports every error as file:line:column: what was "
			       "expected.  Exits 0 when the configuration is valid, 78 otherwise.",
			       entries, &status))
		return status;
	config = imta_config_load(global->config_dir,
				  IMTA_CONFIG_LOAD_PLUGINS | IMTA_CONFIG_OPEN_DIRECTORY |
				  IMTA_CONFIG_KEEP_GOING | IMTA_CONFIG_PARTIAL, errors, NULL);
	for (guint i = 0; i < errors->len; i++)
		fprintf(stderr, "imsimta: %s\n", (char *)errors->pdata[i]);
	problems = errors->len;
	if (config != NULL)
		print_all_warnings(config);
	if (config != NULL && config->cnf != NULL && config->job_controller != NULL)
		problems += check_pools(config);
	if (config != NULL && config->tailor != NULL)
		problems += check_conversions(config);
	if (problems == 0)
		problems += check_plugin_init(config);
	if (problems > 0) {
		fprintf(stderr, "imsimta: %u configuration error%s in %s\n", problems,
			problems == 1 ? "" : "s", global->config_dir);
		return EXIT_CONFIG;
	}
	if (dump)
		dump_config(config);
	else
		printf("%s: configuration valid: %u rewrite rules, %u channels, %u plugins\n",
		       config->dir, config->cnf->rules->len, config->cnf->channels->len,
		       config->plugins->modules->len);
	return 0;
}
