/*
 * plugin.h - the channel plugin ABI.
 *
 * A channel plugin is a shared object in the plugin directory that exports
 * one symbol, `imta_plugin_descriptor`, of type ImtaPlugin.  The descriptor
 * names the plugin, its version, the ABI version it was built for, the
 * channel keywords it registers, and its entry points:
 *
 *   init(config)              once per process after loading, before use;
 *   validate_channel(channel) once for each imta.cnf channel bound to the
 *                             plugin: refuse bad keyword arguments here;
 *   master(job)               the channel's master program: dequeue and
 *                             deliver the messages the job hands out;
 *   slave                     the channel's slave program: callbacks
 *                             (slave.h) driven by a worker process for each
 *                             connection the dispatcher hands over, which
 *                             accept messages and enqueue them;
 *   deinit()                  before the process unloads the plugin.
 *
 * A plugin has a master, a slave or both.  A channel in imta.cnf is bound
 * to the plugin that registered one of its keywords (`smtp` binds a channel
 * to tcp_smtp), or, when no keyword does, to the plugin that registered the
 * channel's own name (a channel named `bitbucket`).
 *
 * The loader (imta_plugin_registry_load_dir) opens every "*.so" file of the
 * plugin directory with RTLD_NOW | RTLD_LOCAL and refuses, naming the file
 * and the fix: a file or directory writable by group or others, or owned by
 * anyone but root or the MTA user; a missing descriptor symbol; another ABI
 * version; a keyword that a core keyword or an earlier plugin already
 * registered.  A refused plugin is still listed, with its reason.
 *
 * Versioning: IMTA_PLUGIN_ABI_VERSION changes whenever this struct or any
 * struct a plugin can see (ImtaChannel, ImtaConfig...) changes layout; the
 * loader accepts only an exact match.
 *
 * Threads: master entries may run on several threads of one process at
 * once (one job per thread); slave callbacks run on the worker's event
 * threads (slave.h); init, validate and deinit run on one thread with no
 * entry running.
 */
#ifndef IMTA_PLUGIN_H
#define IMTA_PLUGIN_H

#include <glib.h>
#include <imta/error.h>
#include <imta/channel.h>
#include <imta/slave.h>

G_BEGIN_DECLS

#define IMTA_PLUGIN_ABI_VERSION 4
#define IMTA_PLUGIN_DESCRIPTOR_SYMBOL "imta_plugin_descriptor"

typedef struct _ImtaMasterJob ImtaMasterJob;    /* job.h */

/* A channel keyword the plugin registers, with its number of arguments. */
typedef struct {
	const char *name;   /* lower case; NULL ends the list */
	guint min_args;
	guint max_args;
	const char *doc;    /* one line for `imsimta plugin-list` */
} ImtaPluginKeyword;

/* Exit codes of master entries. */
typedef enum {
	IMTA_ENTRY_OK = 0,        /* the job or session ended normally */
	IMTA_ENTRY_TEMPFAIL = 75, /* could not work now (EX_TEMPFAIL) */
	IMTA_ENTRY_SOFTWARE = 70, /* internal error (EX_SOFTWARE) */
} ImtaEntryStatus;

struct _ImtaPlugin {
	guint32 abi_version;            /* IMTA_PLUGIN_ABI_VERSION */
	const char *name;               /* unique, e.g. "tcp_smtp" */
	const char *version;            /* the plugin's own version */
	const char *description;        /* one line */
	const ImtaPluginKeyword *keywords; /* ends with a {NULL} row; at least one */

	gboolean (*init)(const ImtaConfig *config, GError **error);
	gboolean (*validate_channel)(const ImtaChannel *channel, GError **error);
	void (*deinit)(void);
	ImtaEntryStatus (*master)(ImtaMasterJob *job);
	const ImtaSlaveOps *slave;      /* NULL: no slave program */

	gpointer reserved[8];           /* zero; room to grow within one ABI */
};

/* Declare a plugin's descriptor with the right symbol name and ABI:
 *   IMTA_PLUGIN_DEFINE(.name = "x", .version = "1", .keywords = kw, ...); */
#define IMTA_PLUGIN_DEFINE(...) \
	G_MODULE_EXPORT const ImtaPlugin imta_plugin_descriptor = { \
		.abi_version = IMTA_PLUGIN_ABI_VERSION, __VA_ARGS__ }
#ifndef G_MODULE_EXPORT
#define G_MODULE_EXPORT __attribute__((visibility("default")))
#endif

/* ---- the loader's view -------------------------------------------- */

typedef enum {
	IMTA_PLUGIN_PENDING,   /* being checked; never seen outside the loader */
	IMTA_PLUGIN_LOADED,
	IMTA_PLUGIN_REFUSED,
} ImtaPluginState;

/* One file of the plugin directory. */
typedef struct {
	char *path;
	ImtaPluginState state;
	const ImtaPlugin *plugin;   /* LOADED only */
	char *error;                /* REFUSED only: why, and what to do */
	gpointer handle;            /* dlopen handle */
	gboolean initialised;
} ImtaPluginModule;

struct _ImtaPluginRegistry {
	GPtrArray *modules;         /* ImtaPluginModule *, in load order */
	GHashTable *by_keyword;     /* keyword -> ImtaPluginModule * (loaded only) */
	char *dir;
};
typedef struct _ImtaPluginRegistry ImtaPluginRegistry;

typedef enum {
	/* Skip the owner/mode checks (tests run as an ordinary user on build
	 * trees); never set by the daemons. */
	IMTA_PLUGIN_LOAD_TRUST_FILES = 1 << 0,
} ImtaPluginLoadFlags;

ImtaPluginRegistry *imta_plugin_registry_new(void);

/* Load every "*.so" of `dir`, in name order.  Refusals are recorded in the
 * registry (state REFUSED) and are not errors; FALSE only when the directory
 * itself cannot be read or is unsafe.  `mta_uid` is the other owner accepted
 * besides root ((uid_t)-1: none). */
gboolean imta_plugin_registry_load_dir(ImtaPluginRegistry *registry, const char *dir,
				       guint flags, guint mta_uid, GError **error);

/* Load one file; on refusal returns FALSE with the reason (also recorded). */
gboolean imta_plugin_registry_load_file(ImtaPluginRegistry *registry, const char *path,
					guint flags, guint mta_uid, GError **error);

/* Register a plugin linked into the program itself (tests, built-in
 * channels), with the same descriptor and keyword checks as a file;
 * `origin` stands in for the path in listings and errors. */
gboolean imta_plugin_registry_add_static(ImtaPluginRegistry *registry, const ImtaPlugin *plugin,
					 const char *origin, GError **error);

/* The loaded plugin registering `keyword`, or NULL. */
const ImtaPlugin *imta_plugin_registry_by_keyword(const ImtaPluginRegistry *registry,
						  const char *keyword);
const ImtaPluginModule *imta_plugin_registry_module_of(const ImtaPluginRegistry *registry,
						       const ImtaPlugin *plugin);

/* Log, as warnings, every plugin file the directory held but the loader
 * refused, with the reason; for a daemon that finds a channel without its
 * plugin.  Returns how many were refused. */
guint imta_plugin_registry_log_refusals(const ImtaPluginRegistry *registry);

/* Run every loaded plugin's init hook once. */
gboolean imta_plugin_registry_init(ImtaPluginRegistry *registry, const ImtaConfig *config,
				   GError **error);

/* Run deinit hooks and dlclose everything. */
void imta_plugin_registry_free(ImtaPluginRegistry *registry);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaPluginRegistry, imta_plugin_registry_free)

G_END_DECLS

#endif
