/*
 * options.h - declarative option tables.
 *
 * dispatcher.cnf, job_controller.cnf, option.dat and imta_tailor are lists
 * of NAME=value settings.  Each file declares its options once, as rows of
 * an ImtaOptionSpec table (name, kind, default, range, where the value is
 * stored); parsing, range checks, defaults, `imsimta check` dumps and the
 * man pages' option lists all come from the table, so an option is never
 * described in two places.
 *
 * Names are matched case-insensitively.  An unknown name is an error.
 */
#ifndef IMTA_OPTIONS_H
#define IMTA_OPTIONS_H

#include <glib.h>
#include <imta/error.h>

G_BEGIN_DECLS

typedef enum {
	IMTA_OPT_INT,      /* gint64; decimal or b%v; checked against min..max */
	IMTA_OPT_BOOL,     /* gboolean; 0/1 (also b%v); */
	IMTA_OPT_STRING,   /* char * (g_free'd by imta_option_table_clear) */
	IMTA_OPT_PORTS,    /* GArray of guint16: "25" or "25,587" or "25 587"; 0 alone = none */
	IMTA_OPT_STRINGS,  /* GPtrArray of char *: the option may repeat; each adds one value */
	IMTA_OPT_DURATION, /* gint64 seconds, ISO 8601 or plain seconds */
} ImtaOptionKind;

/* Where an option may appear; a table row lists the scopes it accepts. */
typedef enum {
	IMTA_SCOPE_GLOBAL  = 1 << 0,
	IMTA_SCOPE_SERVICE = 1 << 1, /* dispatcher.cnf [SERVICE=...] */
	IMTA_SCOPE_POOL    = 1 << 2, /* job_controller.cnf [POOL=...] */
	IMTA_SCOPE_CHANNEL = 1 << 3, /* job_controller.cnf [CHANNEL=...] */
} ImtaOptionScope;

typedef struct {
	const char *name;          /* upper case, as documented */
	ImtaOptionKind kind;
	const char *default_value; /* parsed like file text; NULL = unset/empty */
	gint64 min, max;           /* for INT (and list length for STRINGS); min > max = unbounded */
	gsize offset;              /* G_STRUCT_OFFSET into the target struct */
	guint scopes;              /* ImtaOptionScope bits */
	const char *doc;           /* one line for dumps and man pages */
	guint max_count;           /* STRINGS: how many values at most (0 = no limit) */
} ImtaOptionSpec;

/* Find a row by name (case-insensitive); NULL when unknown. */
const ImtaOptionSpec *imta_option_lookup(const ImtaOptionSpec *table, gsize n_rows,
					 const char *name);

/* Set every row accepted in `scope` to its default in `target`. */
void imta_option_table_defaults(const ImtaOptionSpec *table, gsize n_rows,
				void *target, guint scope);

/* Parse `value` for option `name` and store it in `target`.  Errors name
 * `pos` (the option's position) or `value_pos` (the value's), say what was
 * expected ("an integer between 1 and 100", "a port number"), and refuse
 * unknown names and options used outside their scope. */
gboolean imta_option_set(const ImtaOptionSpec *table, gsize n_rows, void *target,
			 guint scope, const char *name, const char *value,
			 const ImtaSourcePos *name_pos, const ImtaSourcePos *value_pos,
			 GError **error);

/* Free the strings and arrays the table stored in `target`. */
void imta_option_table_clear(const ImtaOptionSpec *table, gsize n_rows, void *target);

/* Append "NAME=value" lines of `target` (every row in `scope`) to `out`. */
void imta_option_table_dump(const ImtaOptionSpec *table, gsize n_rows,
			    const void *target, guint scope, GString *out);

/* Split a "NAME=value" logical line.  Blanks around the name and the value
 * are trimmed.  Returns FALSE when there is no '=' or no name; the caller
 * reports that at the line's position.  *name_r and *value_r are new strings
 * the caller frees; the offsets say where they start in `text`. */
gboolean imta_option_split_line(const char *text, char **name_r, char **value_r,
				gsize *name_offset_r, gsize *value_offset_r);

G_END_DECLS

#endif
