/*
 * config.h - the whole configuration of one MTA instance.
 *
 * A configuration directory holds imta_tailor (paths), imta.cnf (rewrite
 * rules and channels), mappings, option.dat, dispatcher.cnf,
 * job_controller.cnf and the embedded directory's LDIF file.  Only
 * imta.cnf is required; the others default to empty or built-in values.
 * imta_config_load() reads them all, loads the plugins of the plugin
 * directory, binds channels to plugins and, on request, opens the
 * directory.  The result is immutable and shared by every thread.
 *
 * Every program takes its configuration directory from --config DIR or the
 * IMTA_CONFIG environment variable (imta_config_dir_choose), so several
 * instances run side by side.
 */
#ifndef IMTA_CONFIG_H
#define IMTA_CONFIG_H

#include <glib.h>
#include <imta/error.h>
#include <imta/tailor.h>
#include <imta/imta_cnf.h>
#include <imta/mappings.h>
#include <imta/option_dat.h>
#include <imta/dispatcher_cnf.h>
#include <imta/job_controller_cnf.h>
#include <imta/plugin.h>
#include <imta/directory.h>

G_BEGIN_DECLS

typedef enum {
	IMTA_CONFIG_LOAD_PLUGINS   = 1 << 0, /* load plugins and bind channels */
	IMTA_CONFIG_OPEN_DIRECTORY = 1 << 1, /* open the directory backend */
	IMTA_CONFIG_TRUST_PLUGINS  = 1 << 2, /* skip plugin owner/mode checks (tests) */
	IMTA_CONFIG_KEEP_GOING     = 1 << 3, /* collect every error (imsimta check) */
	IMTA_CONFIG_PARTIAL        = 1 << 4, /* with KEEP_GOING: return what loaded */
} ImtaConfigLoadFlags;

struct _ImtaConfig {
	char *dir;                       /* absolute configuration directory */
	GStringChunk *names;             /* file names that positions point to */
	ImtaTailor *tailor;
	ImtaOptionDat *options;
	ImtaCnf *cnf;
	ImtaMappings *mappings;          /* empty set when there is no mappings file */
	ImtaDispatcherCnf *dispatcher;
	ImtaJobControllerCnf *job_controller;
	ImtaPluginRegistry *plugins;     /* NULL unless IMTA_CONFIG_LOAD_PLUGINS */
	ImtaDirectory *directory;        /* NULL unless IMTA_CONFIG_OPEN_DIRECTORY */
};

/* Load the configuration in `dir`.  Without IMTA_CONFIG_KEEP_GOING the
 * first error stops the load and is returned.  With it, every file is read
 * and each error is appended to `errors` (char *, "file:line:column:
 * message"); the call then fails when any error was found, unless
 * IMTA_CONFIG_PARTIAL is also given: then it returns the parts that loaded
 * (any member may be NULL) and leaves the errors in `errors` only. */
ImtaConfig *imta_config_load(const char *dir, guint flags, GPtrArray *errors, GError **error);

/* Open the directory backend IMTA_DIRECTORY names ("ldif:FILE", "ldap:"
 * with option.dat's LDAP_* settings, or an ldap://host/BASE-DN URL that
 * overrides LDAP_URIS and LDAP_BASE_DN), with option.dat's cache
 * settings; `cache` FALSE opens it without a cache.  Needs
 * config->options.  Errors name the setting at fault. */
ImtaDirectory *imta_config_open_directory(const ImtaConfig *config, gboolean cache,
					  GError **error);

/* The path of file `name` in the table directory; caller frees. */
char *imta_config_path(const ImtaConfig *config, const char *name);

void imta_config_free(ImtaConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaConfig, imta_config_free)

G_END_DECLS

#endif
