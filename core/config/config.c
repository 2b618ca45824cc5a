/*
 * config.c - load every configuration file of one MTA instance.
 */
#include "config.h"

#include <pwd.h>
#include <string.h>
#include <ldap.h>
#include <glib.h>

#include <imta/config.h>
#include <imta/rewrite.h>
#include <imta/queue.h>

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

/* IMTA_DIRECTORY=ldap://host[:port]/BASE: the server and base DN. */
static gboolean
config_ldap_url(const char *spec, char **uri_r, char **base_r, GError **error)
{
	LDAPURLDesc *desc = NULL;

	if (ldap_url_parse(spec, &desc) != LDAP_URL_SUCCESS) {
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_SYNTAX,
			    "IMTA_DIRECTORY \"%s\": expected ldap://host[:port]/BASE-DN", spec);
		return FALSE;
	}
	if (desc->lud_attrs != NULL || desc->lud_filter != NULL || desc->lud_exts != NULL ||
	    strchr(spec, '?') != NULL) {
		ldap_free_urldesc(desc);
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_SYNTAX,
			    "IMTA_DIRECTORY \"%s\": the URL names a server and a base DN only",
			    spec);
		return FALSE;
	}
	*base_r = desc->lud_dn != NULL && *desc->lud_dn != '\0' ? g_strdup(desc->lud_dn) : NULL;
	ldap_free_urldesc(desc);
	/* The server part: everything before the path. */
	{
		const char *path = strchr(strstr(spec, "://") + 3, '/');

		*uri_r = path != NULL ? g_strndup(spec, (gsize)(path - spec)) : g_strdup(spec);
	}
	return TRUE;
}

static ImtaDirectory *
config_open_ldap(const ImtaConfig *config, const char *spec,
		 const ImtaDirectoryOptions *options, GError **error)
{
	const ImtaOptionDat *od = config->options;
	g_autofree char *url_uri = NULL;
	g_autofree char *url_base = NULL;
	g_autofree char *host_uris = NULL;
	g_autofree char *password_file = NULL;
	g_autofree char *ca_file = NULL;
	ImtaDirectoryLdapOptions ldap = {
		.uris = od->ldap_uris,
		.bind_dn = od->ldap_bind_dn,
		.bind_password = od->ldap_bind_password,
		.sasl_mech = od->ldap_sasl_mech,
		.sasl_authcid = od->ldap_sasl_authcid,
		.sasl_authzid = od->ldap_sasl_authzid,
		.sasl_realm = od->ldap_sasl_realm,
		.base_dn = od->ldap_base_dn,
		.domain_root = od->ldap_domain_root,
		.timeout = (guint)od->ldap_timeout,
		.connect_timeout = (guint)od->ldap_connect_timeout,
		.pool_size = (guint)od->ldap_pool_size,
		.retry_interval = (guint)od->ldap_retry_interval,
		.auth_method = od->ldap_auth_method != NULL &&
			       g_ascii_strcasecmp(od->ldap_auth_method, "bind") == 0
			       ? IMTA_DIR_LDAP_AUTH_BIND : IMTA_DIR_LDAP_AUTH_COMPARE,
		.starttls = od->ldap_starttls != 0,
		.tls_no_verify = od->ldap_tls_verify == 0,
	};
	ImtaDirectory *dir;

	if (g_ascii_strcasecmp(spec, "ldap:") != 0) {
		if (!config_ldap_url(spec, &url_uri, &url_base, error))
			return NULL;
		ldap.uris = url_uri;
		if (url_base != NULL)
			ldap.base_dn = url_base;
	} else if (od->ldap_uris != NULL && od->ldap_host != NULL) {
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_DUPLICATE,
			    "%s: set LDAP_URIS or LDAP_HOST, not both",
			    od->path != NULL ? od->path : "option.dat");
		return NULL;
	} else if (od->ldap_host != NULL) {
		host_uris = imta_directory_ldap_hosts_to_uris(od->ldap_host, (guint)od->ldap_port,
							      error);
		if (host_uris == NULL)
			return NULL;
		ldap.uris = host_uris;
	}
	if (od->ldap_bind_password_file != NULL) {
		password_file = g_canonicalize_filename(od->ldap_bind_password_file, config->dir);
		ldap.bind_password_file = password_file;
	}
	if (od->ldap_tls_ca_file != NULL) {
		ca_file = g_canonicalize_filename(od->ldap_tls_ca_file, config->dir);
		ldap.tls_ca_file = ca_file;
	}
	dir = imta_directory_open_ldap(&ldap, options, error);
	if (dir == NULL)
		g_prefix_error(error, "%s: ", od->path != NULL ? od->path : "option.dat");
	return dir;
}

/* The host names of the local channel l: other names of this system, for
 * the mailHost and mailRoutingHosts tests (imta-directory(5)). */
static GPtrArray *
config_local_aliases(const ImtaConfig *config)
{
	GPtrArray *aliases = g_ptr_array_new();
	const ImtaChannel *local = config->cnf != NULL ? imta_cnf_local_channel(config->cnf)
						       : NULL;

	for (guint i = 0; local != NULL && i < local->hosts->len; i++) {
		const ImtaChannelHost *host = local->hosts->pdata[i];

		g_ptr_array_add(aliases, host->name);
	}
	g_ptr_array_add(aliases, NULL);
	return aliases;
}

ImtaDirectory *
imta_config_open_directory(const ImtaConfig *config, gboolean cache, GError **error)
{
	const char *spec = config->tailor->directory;
	g_autoptr(GPtrArray) aliases = config_local_aliases(config);
	ImtaDirectoryOptions options = {
		.cache_size = cache ? (guint)config->options->directory_cache_size : 0,
		.cache_ttl = (guint)config->options->directory_cache_ttl,
		.negative_ttl = (guint)config->options->directory_negative_ttl,
		.local_host = config->tailor->hostname,
		.local_host_aliases = (const char *const *)aliases->pdata,
		.domain_uplevel = (guint)config->options->domain_uplevel,
	};

	if (g_ascii_strncasecmp(spec, "ldif:", 5) == 0)
		return imta_directory_open_ldif(spec + strlen("ldif:"), &options, error);
	if (g_ascii_strncasecmp(spec, "ldap:", 5) == 0 ||
	    g_ascii_strncasecmp(spec, "ldaps:", 6) == 0 ||
	    g_ascii_strncasecmp(spec, "ldapi:", 6) == 0)
		return config_open_ldap(config, spec, &options, error);
	g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_UNKNOWN,
		    "IMTA_DIRECTORY: unknown directory backend \"%s\" (expected ldif:FILE or "
		    "ldap:)", spec);
	return NULL;
}

static gboolean
config_open_directory(ImtaConfig *config, ConfigLoad *load)
{
	GError *error = NULL;

	config->directory = imta_config_open_directory(config, TRUE, &error);
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
	if (config->cnf != NULL && config->mappings != NULL)
		imta_queue_bind_mappings(config->cnf, config->mappings);
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
	if (config->cnf != NULL)
		imta_queue_bind_mappings(config->cnf, NULL);
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
