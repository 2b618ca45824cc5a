/*
 * imta_cnf.h - imta.cnf: rewrite rules, a blank line, the channel host table.
 *
 * Syntax (imta.cnf(5)): '!' in column 1 starts a comment; "<file" includes a
 * file; a trailing '\' continues a line.  Part 1 is one rule per line,
 * "pattern template"; the first blank line ends it.  Part 2 is channel
 * blocks separated by blank lines: the first line holds the channel name and
 * its keywords with their arguments, the next lines hold the channel's host
 * names (the first being the official host name, which is mandatory).  A
 * `defaults` block sets keywords inherited by the blocks after it,
 * `nodefaults` clears them; the first real channel must be `l`.
 *
 * Every word must be a core keyword (channel_keywords.c) or a keyword that a
 * loaded plugin registers; anything else is an error at its position.  The
 * parse itself does not know plugins: it records plugin keywords, and
 * imta_cnf_bind_plugins() checks and binds them once plugins are loaded.
 */
#ifndef IMTA_IMTA_CNF_H
#define IMTA_IMTA_CNF_H

#include <glib.h>
#include <imta/error.h>
#include <imta/channel.h>

G_BEGIN_DECLS

typedef struct {
	char *pattern;      /* as written, including a "tag|" prefix if any */
	char *template_;    /* as written */
	ImtaSourcePos pos;  /* the pattern */
	ImtaSourcePos template_pos;
} ImtaRewriteRule;

typedef struct _ImtaPluginRegistry ImtaPluginRegistry; /* plugin.h */

typedef struct {
	GPtrArray *rules;        /* ImtaRewriteRule *, file order */
	GPtrArray *channels;     /* ImtaChannel *, file order; [0] is `l` */
	GHashTable *by_name;     /* channel name -> ImtaChannel * (case-sensitive) */
	GHashTable *by_host;     /* lower-cased host name -> ImtaChannel * */
	GStringChunk *names;     /* file names positions point to */
	char *path;
} ImtaCnf;

/* Parse imta.cnf at `path`.  Keywords that are not core keywords are kept
 * for imta_cnf_bind_plugins(); `registry` may be NULL, in which case any
 * non-core keyword is accepted here and judged at binding time. */
ImtaCnf *imta_cnf_load(const char *path, const ImtaPluginRegistry *registry, GError **error);
ImtaCnf *imta_cnf_parse_text(const char *name, const char *text, gsize length,
			     const ImtaPluginRegistry *registry, GError **error);

/* Bind each channel to the plugin that registered one of its keywords (or,
 * failing that, a keyword equal to the channel name).  A keyword that is
 * neither core nor registered is an error naming it and its position; so
 * are keywords of two different plugins in one block. */
gboolean imta_cnf_bind_plugins(ImtaCnf *cnf, const ImtaPluginRegistry *registry, GError **error);

/* The channel owning host name `host` (case-insensitive), or NULL. */
ImtaChannel *imta_cnf_channel_by_host(const ImtaCnf *cnf, const char *host);
ImtaChannel *imta_cnf_channel_by_name(const ImtaCnf *cnf, const char *name);
/* The local channel `l`. */
ImtaChannel *imta_cnf_local_channel(const ImtaCnf *cnf);

/* Notice ages for a channel: its own, else the l channel's, else the
 * built-in 3 6 9 12.  Returns the count written to ages. */
guint imta_cnf_notices(const ImtaCnf *cnf, const ImtaChannel *channel, ImtaPriority priority,
		       gint ages[IMTA_MAX_NOTICES]);

void imta_cnf_free(ImtaCnf *cnf);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaCnf, imta_cnf_free)

/* Core keywords, for `imsimta check`, man pages and the loader's collision
 * check: NULL-terminated, lower case. */
const char *const *imta_cnf_core_keywords(void);
gboolean imta_cnf_is_core_keyword(const char *name);

G_END_DECLS

#endif
