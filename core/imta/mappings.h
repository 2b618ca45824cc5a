/*
 * mappings.h - the mappings file and mapping tables.
 *
 * File syntax (mappings(5)): a table starts with its name in column 1,
 * then a blank line, then indented entry lines "pattern template"; one
 * blank line separates tables; '!' in column 1 is a comment; "<file"
 * includes (nesting at most 3); a trailing '\' continues a line.  Table
 * names are case-insensitive and unique.
 *
 * Matching (imta_mapping_apply): entries are tried top to bottom, the input
 * compared case-blind with each pattern.  Pattern wildcards: '*' (any
 * run, greedy), '%' (one char), "$(a.b.c.d/bits)" (an IPv4 or IPv6 address in
 * that network), "$n*" back-references; "$*", "$%", "$ ", "$$" and "$|"
 * quote.  Templates substitute "$n" (n-th wildcard, counted from 0),
 * "$|TABLE;string|" (apply another table; the entry fails if that table has
 * no match), and obey the control metacharacters $C, $E, $L, $R.  The flag
 * metacharacters ($Y $N $F $B $H $V $Z $D $J $K $< $> $! and the flags a
 * caller declares) are removed from the result and reported in
 * ImtaMappingResult.flags; arguments of flags that take one ($D, $J, $K,
 * $<, $>) are taken in that fixed order from the leading '|'-separated
 * fields of the result text.
 *
 * Site routine calls "$[image,routine,args]" are not supported: such an
 * entry fails to match (and imta_mappings_load reports a warning through
 * imta_log).  Recursion through $| and $R is bounded
 * (IMTA_MAPPING_MAX_DEPTH, IMTA_MAPPING_MAX_STEPS) so a looping table ends
 * with "no match" instead of hanging.
 *
 * Thread safety: a loaded ImtaMappings is immutable; apply it from any
 * thread.
 */
#ifndef IMTA_MAPPINGS_H
#define IMTA_MAPPINGS_H

#include <glib.h>
#include <imta/error.h>

G_BEGIN_DECLS

#define IMTA_MAPPING_MAX_DEPTH 8     /* nested $|table;...| calls */
/* Matching entries and nested calls in one apply() (a $C, $L or $R scan
 * goes on after a match; entries that do not match are not counted, so
 * long tables are fine). */
#define IMTA_MAPPING_MAX_STEPS 1000
#define IMTA_MAPPING_MAX_PATTERN 1024
#define IMTA_MAPPING_MAX_TEMPLATE 1024

typedef struct _ImtaMappings ImtaMappings;
typedef struct _ImtaMappingTable ImtaMappingTable;

/* Flags a template can set; each is one bit, named by its letter. */
typedef enum {
	IMTA_MAP_FLAG_Y = 1 << 0,  /* $Y allow */
	IMTA_MAP_FLAG_N = 1 << 1,  /* $N / $F reject */
	IMTA_MAP_FLAG_B = 1 << 2,  /* $B bitbucket */
	IMTA_MAP_FLAG_H = 1 << 3,  /* $H hold */
	IMTA_MAP_FLAG_V = 1 << 4,  /* $V / $Z discard */
	IMTA_MAP_FLAG_D = 1 << 5,  /* $D delay (argument) */
	IMTA_MAP_FLAG_J = 1 << 6,  /* $J replace envelope From (argument) */
	IMTA_MAP_FLAG_K = 1 << 7,  /* $K replace Sender (argument) */
	IMTA_MAP_FLAG_LOG_MATCH = 1 << 8,   /* $< log when matched (argument) */
	IMTA_MAP_FLAG_LOG_DENY  = 1 << 9,   /* $> log when denied (argument) */
	IMTA_MAP_FLAG_NO_VACATION = 1 << 10, /* $! */
} ImtaMappingFlags;

typedef struct {
	gboolean matched;   /* some entry matched */
	char *result;       /* the template's text after substitution, flags and
			     * their arguments removed ("$ " unquoted to ' ') */
	guint flags;        /* ImtaMappingFlags */
	gint delay;         /* $D argument (hundredths of a second) */
	char *from;         /* $J argument */
	char *sender;       /* $K argument */
	char *log_text;     /* $< / $> argument */
	char *log_deny_text; /* $> argument (log_text holds the $< one when both are set) */
} ImtaMappingResult;

/* Load a mappings file.  Errors give file:line:column and what was expected
 * (e.g. "expected a blank line after table name FOO", "duplicate table"). */
ImtaMappings *imta_mappings_load(const char *path, GStringChunk *names, GError **error);
ImtaMappings *imta_mappings_parse_text(const char *name, const char *text, gsize length,
				       GStringChunk *names, GError **error);

/* A table by name (case-insensitive), or NULL. */
const ImtaMappingTable *imta_mappings_table(const ImtaMappings *mappings, const char *name);

/* Names of all tables in file order (NULL-terminated, owned by mappings). */
const char *const *imta_mappings_table_names(const ImtaMappings *mappings);

/* Number of entries of a table. */
guint imta_mapping_table_size(const ImtaMappingTable *table);

/* Map `input` through `table`.  `input_flags` are the caller's probe flags
 * (reserved; pass 0).  Fills *result_r (clear it with
 * imta_mapping_result_clear); returns result_r->matched. */
gboolean imta_mapping_apply(const ImtaMappings *mappings, const ImtaMappingTable *table,
			    const char *input, guint input_flags, ImtaMappingResult *result_r);

/* Convenience: look up table `name`; no such table = no match. */
gboolean imta_mappings_apply_named(const ImtaMappings *mappings, const char *name,
				   const char *input, ImtaMappingResult *result_r);

/* Match one pattern against a string (what `imsimta test -match` shows);
 * returns the wildcard captures (NULL-terminated) or NULL on no match
 * (an invalid pattern, or one longer than IMTA_MAPPING_MAX_PATTERN, never
 * matches). */
GStrv imta_mapping_match_pattern(const char *pattern, const char *input);

void imta_mapping_result_clear(ImtaMappingResult *result);
void imta_mappings_free(ImtaMappings *mappings);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaMappings, imta_mappings_free)

G_END_DECLS

#endif
