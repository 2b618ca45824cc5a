/*
 * config.c - load every configuration file of one MTA instance.
 */
#include "config.h"

#include <pwd.h>
#include <string.h>
#include <glib.h>

#include <imta/config.h>
#include <imta/rewrite.h>

typedef struct {
	guint flags;
	GPtrArray *errors;   /* KEEP_GOING: collected messages */
	GError *first;       /* otherwise: the first error */
} ConfigLoad;

/* Record a failure; returns TRUE when loading should go on. */
static gboolean
config_fail(ConfigLoad *load, GError *error)
{
	if (load->flags & IMTA_CONFIG_KEEP_GOING) {
		if (load->errors != NULL)
			g_ptr_array_add(load->errors, g_strdup(error->message));
		if (load->first == NULL)
			load->first = error;
		else
			g_error_free(error);
		return TRUE;
	}
	load->first = error;
	return FALSE;
}

char *
imta_config_path(const ImtaConfig *config, const char *name)
{
	return g_build_filename(config->tailor->table_dir, name, NULL);
}

/* The uid of the MTA user, accepted besides root as a plugin owner. */
static guint
config_mta_uid(const ImtaTailor *tailor)
{
	struct passwd *pw;

	if (tailor->user == NULL)
		return (guint)-1;
	pw = getpwnam(tailor->user);
	return pw != NULL ? (guint)pw->pw_uid : (guint)-1;
}

static gboolean
config_load_plugins(ImtaConfig *config, ConfigLoad *load)
{
	GError *error = NULL;
	guint flags = (load->flags & IMTA_CONFIG_TRUST_PLUGINS) ? IMTA_PLUGIN_LOAD_TRUST_FILES : 0;

	config->plugins = imta_plugin_registry_new();
	if (!imta_plugin_registry_load_dir(config->plugins, config->tailor->plugin_dir, flags,
					   config_mta_uid(config->tailor), &error))
		return config_fail(load, error);
	return TRUE;
}

static gboolean
config_load_cnf(ImtaConfig *config, ConfigLoad *load)
{
	g_autofree char *path = imta_config_path(config, "imta.cnf");
	GError *error = NULL;

	config->cnf = imta_cnf_load(path, config->plugins, &error);
	if (config->cnf == NULL)
		return config_fail(load, error);
	/* A malformed template would otherwise surface only when some address
	 * first reaches its rule. */
	if (!imta_rewrite_check_rules(config->cnf, &error) && !config_fail(load, error))
		return FALSE;
	error = NULL;
	if (config->plugins != NULL && !imta_cnf_bind_plugins(config->cnf, config->plugins, &error))
		return config_fail(load, error);
	return TRUE;
}

/* Optional files: absent means built-in defaults. */
static gboolean
config_load_optional(ImtaConfig *config, ConfigLoad *load)
{
	g_autofree char *options = imta_config_path(config, "option.dat");
	g_autofree char *mappings = imta_config_path(config, "mappings");
	g_autofree char *dispatcher = imta_config_path(config, "dispatcher.cnf");
	g_autofree char *jc = imta_config_path(config, "job_controller.cnf");
	GError *error = NULL;

	if (g_file_test(options, G_FILE_TEST_EXISTS))
		config->options = imta_option_dat_load(options, config->names, &error);
	else
		config->options = imta_option_dat_new_default();
	if (config->options == NULL && !config_fail(load, g_steal_pointer(&error)))
		return FALSE;

	if (g_file_test(mappings, G_FILE_TEST_EXISTS))
		config->mappings = imta_mappings_load(mappings, config->names, &error);
	else
		config->mappings = imta_mappings_parse_text("mappings", "", 0, config->names, &error);
	if (config->mappings == NULL && !config_fail(load, g_steal_pointer(&error)))
		return FALSE;

	if (g_file_test(dispatcher, G_FILE_TEST_EXISTS))
		config->dispatcher = imta_dispatcher_cnf_load(dispatcher, config->names, &error);
	else
		config->dispatcher = imta_dispatcher_cnf_new_default();
	if (config->dispatcher == NULL && !config_fail(load, g_steal_pointer(&error)))
		return FALSE;

	if (g_file_test(jc, G_FILE_TEST_EXISTS))
		config->job_controller = imta_job_controller_cnf_load(jc, config->names, &error);
	else
		config->job_controller = imta_job_controller_cnf_new_default();
	if (config->job_controller == NULL && !config_fail(load, g_steal_pointer(&error)))
		return FALSE;
	return TRUE;
}

static gboolean
config_open_directory(ImtaConfig *config, ConfigLoad *load)
{
	const char *spec = config->tailor->directory;
	ImtaDirectoryOptions options = {
		.cache_size = (guint)config->options->directory_cache_size,
		.cache_ttl = (guint)config->options->directory_cache_ttl,
		.negative_ttl = (guint)config->options->directory_negative_ttl,
		.local_host = config->tailor->hostname,
	};
	GError *error = NULL;

	if (!g_str_has_prefix(spec, "ldif:")) {
		g_set_error(&error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_UNKNOWN,
			    "IMTA_DIRECTORY: unknown directory backend \"%s\" (expected ldif:FILE)",
			    spec);
		return config_fail(load, error);
	}
	config->directory = imta_directory_open_ldif(spec + strlen("ldif:"), &options, &error);
	if (config->directory == NULL)
		return config_fail(load, error);
	return TRUE;
}

ImtaConfig *
imta_config_load(const char *dir, guint flags, GPtrArray *errors, GError **error)
{
	g_autoptr(ImtaConfig) config = g_new0(ImtaConfig, 1);
	ConfigLoad load = { flags, errors, NULL };
	GError *local = NULL;

	config->dir = g_canonicalize_filename(dir, NULL);
	config->names = g_string_chunk_new(256);
	config->tailor = imta_tailor_load(config->dir, config->names, &local);
	if (config->tailor == NULL) {
		config_fail(&load, local);
		goto out;
	}
	if ((flags & IMTA_CONFIG_LOAD_PLUGINS) && !config_load_plugins(config, &load))
		goto out;
	if (!config_load_cnf(config, &load))
		goto out;
	if (!config_load_optional(config, &load))
		goto out;
	if ((flags & IMTA_CONFIG_OPEN_DIRECTORY) && config->options != NULL &&
	    !config_open_directory(config, &load))
		goto out;
out:
	if (load.first != NULL && (flags & IMTA_CONFIG_PARTIAL) && (flags & IMTA_CONFIG_KEEP_GOING)) {
		g_error_free(load.first);
		return g_steal_pointer(&config);
	}
	if (load.first != NULL) {
		g_propagate_error(error, load.first);
		return NULL;
	}
	return g_steal_pointer(&config);
}

void
imta_config_free(ImtaConfig *config)
{
	if (config == NULL)
		return;
	g_clear_pointer(&config->directory, imta_directory_free);
	g_clear_pointer(&config->job_controller, imta_job_controller_cnf_free);
	g_clear_pointer(&config->dispatcher, imta_dispatcher_cnf_free);
	g_clear_pointer(&config->mappings, imta_mappings_free);
	g_clear_pointer(&config->cnf, imta_cnf_free);
	g_clear_pointer(&config->plugins, imta_plugin_registry_free);
	g_clear_pointer(&config->options, imta_option_dat_free);
	g_clear_pointer(&config->tailor, imta_tailor_free);
	if (config->names != NULL)
		g_string_chunk_free(config->names);
	g_free(config->dir);
	g_free(config);
}
