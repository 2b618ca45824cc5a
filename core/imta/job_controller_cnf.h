/*
 * job_controller_cnf.h - job_controller.cnf: the job controller's own
 * settings, its processing pools and the per-channel job commands.
 *
 * Syntax (job_controller.cnf(5)): "OPTION=value" lines, '!' or '#' as the
 * first non-blank character starts a comment, integers may be written b%v,
 * names are case-insensitive.  Section lines:
 *   [POOL=name]      a processing pool (name at most 12 bytes) with JOB_LIMIT
 *   [CHANNEL=name]   job commands of a channel; '*' in the name matches any
 *                    run of characters ([CHANNEL=tcp_*])
 *   [PERIODIC_JOB=x] deprecated: accepted with a warning, its lines ignored
 * Options before the first section are global; pool and channel options
 * given there are defaults that each section starts from (a section's own
 * value overrides).  The first pool in the file is the default pool; a file
 * without any pool behaves as if it began with [POOL=DEFAULT].
 */
#ifndef IMTA_JOB_CONTROLLER_CNF_H
#define IMTA_JOB_CONTROLLER_CNF_H

#include <glib.h>
#include <imta/error.h>
#include <imta/options.h>

G_BEGIN_DECLS

#define IMTA_JC_POOL_NAME_MAX 12

typedef struct {
	char *name;              /* as written */
	ImtaSourcePos pos;       /* the [POOL=...] line (line 0 for the implicit DEFAULT) */
	gint64 job_limit;        /* >= 1 */
} ImtaJcPool;

typedef struct {
	char *pattern;           /* as written; NULL for the global defaults */
	ImtaSourcePos pos;
	char *master_command;    /* NULL = the channel plugin's own master program */
	char *slave_command;     /* NULL = none (SLAVE_COMMAND=NULL) */
	gint64 max_life_age;     /* seconds a master job may live; 0 = no limit */
	gint64 max_life_conns;   /* requests a job serves before exiting */
	gint64 idle_linger;      /* seconds an idle master job waits for work */
} ImtaJcChannelSection;

typedef struct {
	char *path;              /* NULL for the built-in configuration */
	gint64 tcp_port;         /* 0 = no TCP listener (local socket only) */
	char *secret;
	char *interface_address; /* "ANY", "ALL", "LOCALHOST" or an IP literal */
	guint32 debug;
	gint64 max_messages;
	gint64 rebuild_parallel_channel;
	gint64 synch_time;       /* seconds between queue resynchronisations; 0 = never */
	char *socket;            /* local socket, relative to IMTA_RUN unless absolute */
	ImtaJcPool pool_defaults;            /* global JOB_LIMIT (name NULL) */
	ImtaJcChannelSection channel_defaults; /* global channel options (pattern NULL) */
	GPtrArray *pools;        /* ImtaJcPool *, file order; [0] is the default; never empty */
	GPtrArray *channels;     /* ImtaJcChannelSection *, file order */
	GPtrArray *warnings;     /* char *, "file:line:column: text" */
	GStringChunk *own_names; /* file names, when the caller gave no chunk */
} ImtaJobControllerCnf;

/* Option tables, one per place an option is stored.  Pool and channel
 * options are also accepted globally (as defaults). */
extern const ImtaOptionSpec imta_job_controller_options[];      /* ImtaJobControllerCnf */
extern const gsize imta_job_controller_n_options;
extern const ImtaOptionSpec imta_job_controller_pool_options[]; /* ImtaJcPool */
extern const gsize imta_job_controller_n_pool_options;
extern const ImtaOptionSpec imta_job_controller_channel_options[]; /* ImtaJcChannelSection */
extern const gsize imta_job_controller_n_channel_options;

ImtaJobControllerCnf *imta_job_controller_cnf_load(const char *path, GStringChunk *names,
						   GError **error);
ImtaJobControllerCnf *imta_job_controller_cnf_parse_text(const char *name, const char *text,
							 gsize len, GStringChunk *names,
							 GError **error);

/* What an absent job_controller.cnf means: the global defaults and one
 * pool, DEFAULT, with JOB_LIMIT 10. */
ImtaJobControllerCnf *imta_job_controller_cnf_new_default(void);

/* The section for `channel`: the one named exactly (case-insensitive),
 * else the matching '*' pattern with the most literal characters (the
 * first in the file on a tie), else &cnf->channel_defaults.  Never NULL. */
const ImtaJcChannelSection *imta_job_controller_cnf_channel(const ImtaJobControllerCnf *cnf,
							    const char *channel);

/* The pool called `name` (case-insensitive), or NULL. */
const ImtaJcPool *imta_job_controller_cnf_pool(const ImtaJobControllerCnf *cnf,
					       const char *name);
/* The first pool of the file. */
const ImtaJcPool *imta_job_controller_cnf_default_pool(const ImtaJobControllerCnf *cnf);

/* Does `pattern` ('*' = any run of characters, case-insensitive) match? */
gboolean imta_job_controller_pattern_match(const char *pattern, const char *channel);

void imta_job_controller_cnf_dump(const ImtaJobControllerCnf *cnf, GString *out);

void imta_job_controller_cnf_free(ImtaJobControllerCnf *cnf);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaJobControllerCnf, imta_job_controller_cnf_free)

G_END_DECLS

#endif
