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
#include <imta/cfgfile.h>

G_BEGIN_DECLS

typedef enum {
	IMTA_OPT_INT,      /* gint64; decimal or b%v; checked against min..max */
	IMTA_OPT_BOOL,     /* gboolean; 0/1 (also b%v); */
	IMTA_OPT_STRING,   /* char * (g_free'd by imta_option_table_clear) */
	IMTA_OPT_PORTS,    /* GArray of guint16: "25" or "25,587" or "25 587"; 0 alone = none */
	IMTA_OPT_STRINGS,  /* GPtrArray of char *: the option may repeat; each adds one value */
	IMTA_OPT_DURATION, /* gint64 seconds, ISO 8601 or plain seconds */
	IMTA_OPT_MASK,     /* guint32 bit mask; decimal or b%v, -1 = all bits */
} ImtaOptionKind;

/* Row flags (ImtaOptionSpec.flags). */
typedef enum {
	IMTA_OPT_NULL_WORD = 1 << 0, /* STRING: the word NULL (any case) means unset */
	IMTA_OPT_HIDDEN    = 1 << 1, /* dumps say whether it is set, never the value */
} ImtaOptionFlags;

/* Extra validation of a STRING or STRINGS value (called for non-empty
 * values).  On refusal it sets *expected_r to static text naming what was
 * expected ("an IP address"); the caller builds the message. */
typedef gboolean (*ImtaOptionCheck)(const char *value, const char **expected_r);

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
	gint64 min, max;           /* INT and DURATION range; min > max = unbounded */
	gsize offset;              /* G_STRUCT_OFFSET into the target struct */
	guint scopes;              /* ImtaOptionScope bits */
	const char *doc;           /* one line for dumps and man pages */
	guint max_count;           /* STRINGS: how many values at most (0 = no limit);
				    * PORTS: how many ports (0 = 64) */
	guint flags;               /* ImtaOptionFlags */
	ImtaOptionCheck check;     /* STRING, STRINGS: NULL = any text */
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

/* Row by row, for parsers that look names up themselves (to word their
 * own "unknown option" and scope errors).  imta_option_set_row() parses
 * `value` into the row's field: a STRINGS row appends, every other kind
 * replaces.  An empty STRING value (or the word NULL with
 * IMTA_OPT_NULL_WORD) stores NULL. */
gboolean imta_option_set_row(const ImtaOptionSpec *row, void *target, const char *value,
			     const ImtaSourcePos *value_pos, GError **error);

/* Free the row's value in `target` and set it back to its default. */
void imta_option_reset_row(const ImtaOptionSpec *row, void *target);

/* The row's value as it would be written in the file (STRINGS: the
 * values joined by ", "; unset strings and lists: empty). */
void imta_option_format_value(const ImtaOptionSpec *row, const void *target, GString *out);

/* The value of option `name` in `target`, as it would be written; NULL
 * when the table has no such option.  Caller frees. */
char *imta_option_value_text(const ImtaOptionSpec *table, gsize n_rows, const void *target,
			     const char *name);

/* What the row accepts, for messages and dumps: "an integer between 1 and
 * 100", "0 or 1", "port numbers"...; caller frees. */
char *imta_option_describe(const ImtaOptionSpec *row);

/* The row name closest to a misspelt `name` (at most two edits away), or
 * NULL; *distance_r (may be NULL) gets the edit distance. */
const char *imta_option_suggest(const ImtaOptionSpec *table, gsize n_rows,
				const char *name, guint *distance_r);

/* Set the error for an option `name` that no row has, at `pos`: "unknown
 * FILE option "NAME" (did you mean HINT?)", without FILE when `file` is
 * NULL and without the question when `hint` is.  Returns FALSE. */
gboolean imta_option_unknown(GError **error, const ImtaSourcePos *pos, const char *file,
			     const char *name, const char *hint);

/* One line of an option file, as the readers built on ImtaCfgFile see it:
 * either "NAME=value" or a section line "[TYPE=value]".  Blank lines and
 * comment lines (comment character as the first non-blank) are skipped. */
typedef enum {
	IMTA_OPTION_LINE_SETTING,
	IMTA_OPTION_LINE_SECTION,
} ImtaOptionLineKind;

typedef struct {
	ImtaOptionLineKind kind;
	char *name;              /* option name, or section type (trimmed) */
	char *value;             /* option value, or section value (trimmed) */
	ImtaSourcePos pos;       /* first non-blank character of the line */
	ImtaSourcePos name_pos;
	ImtaSourcePos value_pos;
} ImtaOptionLine;

/* Read the next setting or section from `cf` into *line_r, which must be
 * zero-initialised before the first call (each call frees the previous
 * line's strings; imta_option_line_clear() frees the last).  Returns FALSE
 * at the end of input (error unset) or on a malformed line (error set, at
 * its position). */
gboolean imta_option_next_line(ImtaCfgFile *cf, const char *comment_chars,
			       ImtaOptionLine *line_r, GError **error);
void imta_option_line_clear(ImtaOptionLine *line);

/* Ready-made ImtaOptionCheck functions: an IPv4 or IPv6 literal, a DNS
 * host name, an account name, a word without blanks. */
gboolean imta_option_check_ip(const char *value, const char **expected_r);
gboolean imta_option_check_hostname(const char *value, const char **expected_r);
gboolean imta_option_check_user(const char *value, const char **expected_r);
gboolean imta_option_check_word(const char *value, const char **expected_r);

/* Quote a value for a message: escaped, cut at 60 characters; caller frees. */
char *imta_option_quote(const char *value);

G_END_DECLS

#endif
