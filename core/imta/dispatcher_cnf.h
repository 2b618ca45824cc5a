/*
 * dispatcher_cnf.h - dispatcher.cnf: the services the dispatcher listens
 * for and how it manages their worker processes.
 *
 * Syntax (dispatcher.cnf(5)): "OPTION=value" lines; '!' or '#' as the
 * first non-blank character starts a comment; integers may be written
 * b%v.  "[SERVICE=name]" starts a service section.  Options before the
 * first section are defaults for every service: each service starts from
 * the built-in defaults, then the global assignments are replayed into it,
 * then its own assignments follow, so a service value overrides a global
 * one (a service's DNS_VERIFY_DOMAIN lines replace the global list).
 * Service names are case-insensitive and unique.
 *
 * After parsing, every service has PORT (0 = disabled), MIN_PROCS <=
 * MAX_PROCS, MIN_CONNS <= MAX_CONNS and a BACKLOG (MAX_CONNS*MAX_PROCS, at
 * least 5, when not set); two enabled services never listen on the same
 * port of the same address.
 */
#ifndef IMTA_DISPATCHER_CNF_H
#define IMTA_DISPATCHER_CNF_H

#include <glib.h>
#include <imta/error.h>
#include <imta/options.h>

G_BEGIN_DECLS

/* Our ceilings (the documented MAX_CONNS maximum of 50 is raised). */
#define IMTA_DISPATCHER_MAX_CONNS_LIMIT 1000
#define IMTA_DISPATCHER_MAX_PROCS_LIMIT 1000
#define IMTA_DISPATCHER_MAX_DNS_VERIFY  5
#define IMTA_DISPATCHER_MIN_BACKLOG     5

typedef struct {
	char *name;                  /* as written in [SERVICE=name]; NULL for the defaults */
	ImtaSourcePos pos;           /* the section line */
	GArray *ports;               /* guint16; empty = disabled (PORT=0) */
	char *interface_address;     /* IP literal; NULL = every address */
	char *image;                 /* worker program; NULL = the built-in SMTP server */
	char *logfile;               /* workers' output; may hold %s (host name) */
	char *parameter;             /* PARAMETER as written */
	char *channel;               /* from PARAMETER=CHANNEL=name, else NULL */
	gint64 stacksize;            /* bytes */
	gint64 min_procs;
	gint64 max_procs;
	gint64 min_conns;
	gint64 max_conns;
	gint64 max_life_time;        /* seconds */
	gint64 max_life_conns;
	gint64 max_idle_time;        /* seconds; 0 = never idle out */
	gint64 max_shutdown;
	gint64 max_handoffs;
	gint64 backlog;              /* computed when not set */
	gint64 historical_time;      /* seconds */
	gboolean ident;
	gboolean enable_rbl;         /* deprecated; accepted and kept */
	guint32 debug;
	GPtrArray *dns_verify_domains; /* char *, at most IMTA_DISPATCHER_MAX_DNS_VERIFY;
					* NULL when none */
} ImtaDispatcherService;

typedef struct {
	char *path;                  /* NULL for the built-in configuration */
	char *user;                  /* USER: account of the workers; NULL = IMTA_USER */
	ImtaDispatcherService defaults; /* the global section (BACKLOG 0 = computed) */
	GPtrArray *services;         /* ImtaDispatcherService *, file order */
	GPtrArray *warnings;         /* char *, "file:line:column: text" */
	GStringChunk *own_names;     /* file names, when the caller gave no chunk */
} ImtaDispatcherCnf;

/* Option tables: per-service options (also allowed globally), and the
 * options allowed only before the first section (stored in the cnf). */
extern const ImtaOptionSpec imta_dispatcher_options[];
extern const gsize imta_dispatcher_n_options;
extern const ImtaOptionSpec imta_dispatcher_global_options[];
extern const gsize imta_dispatcher_n_global_options;

/* Read `path`.  File names in positions are interned in `names` (the
 * caller's; NULL = a chunk the result owns). */
ImtaDispatcherCnf *imta_dispatcher_cnf_load(const char *path, GStringChunk *names,
					    GError **error);
ImtaDispatcherCnf *imta_dispatcher_cnf_parse_text(const char *name, const char *text,
						  gsize len, GStringChunk *names,
						  GError **error);

/* What an absent dispatcher.cnf means: one service, SMTP, on port 25 of
 * every address, with PARAMETER=CHANNEL=tcp_local. */
ImtaDispatcherCnf *imta_dispatcher_cnf_new_default(void);

/* The service called `name` (case-insensitive), or NULL. */
const ImtaDispatcherService *imta_dispatcher_cnf_service(const ImtaDispatcherCnf *cnf,
							 const char *name);

/* Does the service listen at all (PORT is not 0)? */
gboolean imta_dispatcher_service_enabled(const ImtaDispatcherService *service);

/* The effective configuration as dispatcher.cnf text, for `imsimta check --dump`. */
void imta_dispatcher_cnf_dump(const ImtaDispatcherCnf *cnf, GString *out);

void imta_dispatcher_cnf_free(ImtaDispatcherCnf *cnf);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaDispatcherCnf, imta_dispatcher_cnf_free)

G_END_DECLS

#endif
