/*
 * rewrite_private.h - declarations shared by the rule search (rewrite.c)
 * and the template evaluator (rewrite_template.c).
 */
#ifndef IMTA_REWRITE_PRIVATE_H
#define IMTA_REWRITE_PRIVATE_H

#include <glib.h>
#include <imta/rewrite.h>

G_BEGIN_DECLS

/* Longest text one template may produce (all segments and arguments
 * together); rewriting that grows an address past it is a template error,
 * which also bounds the host specs the domain walk has to cut up. */
#define RW_MAX_TEXT 1024

/* Deepest nesting of "${table,...${table,...}...}". */
#define RW_MAX_MAPPING_DEPTH 4

/* Where the host spec being rewritten came from: the $S $A $P $X
 * conditions test it. */
typedef enum {
	RW_LOC_ROUTE,   /* a source-route host ($S) */
	RW_LOC_AT,      /* right of '@' ($A) */
	RW_LOC_PERCENT, /* right of the last single '%' ($P) */
	RW_LOC_BANG,    /* left of the first '!' ($X) */
} RwLocation;

/* What the substitutions of one matched rule insert. */
typedef struct {
	const char *user;          /* $U */
	const char *spec;          /* the whole host spec */
	RwLocation location;
	char *matched;             /* $D */
	char *unmatched;           /* $H */
	char *literal_rest;        /* $L */
	GStrv host_labels;         /* $&n / $!n: unmatched or wildcarded labels */
	GStrv pattern_labels;      /* $*n / $#n: labels of the rule's pattern */
} RwMatch;

void rw_match_clear(RwMatch *m);

/* The call's view of the world, for conditions. */
typedef struct {
	const ImtaRewriteContext *ctx;
	const char *source_name;         /* never NULL */
	const ImtaChannel *source;       /* NULL when not in the channel table */
	const char *destination_name;    /* NULL: $Q / $C are not checked */
	const ImtaChannel *destination;  /* NULL when not in the channel table */
} RwEnv;

/* A template's result: segments separated by the '%' and '@' the
 * template wrote itself (substituted text never separates). */
typedef struct {
	GPtrArray *segments;   /* char *; always one more than separators */
	GString *separators;   /* each '%' or '@' */
	gboolean tag_set;      /* $T seen; `tag` is the new tag ("" clears) */
	char *tag;
	char *error_text;      /* $? text, NULL if none */
} RwOutput;

void rw_output_init(RwOutput *out);
void rw_output_clear(RwOutput *out);
/* The segments and separators joined again, for traces and messages. */
char *rw_output_render(const RwOutput *out);

typedef enum {
	RW_APPLY_OK,     /* the rule applies; *out holds its result */
	RW_APPLY_SKIP,   /* a condition failed: try the next candidate */
	RW_APPLY_ERROR,  /* malformed template or a temporary failure */
} RwApplyStatus;

/* Evaluate `template_` for match `m`.  On RW_APPLY_SKIP, *reason_r (if not
 * NULL) says which condition failed.  `pos` places template errors; it may
 * be NULL for built-in templates. */
RwApplyStatus rw_template_apply(const RwEnv *env, const char *template_,
				const ImtaSourcePos *pos, const RwMatch *m,
				RwOutput *out, char **reason_r, GError **error);

/* Check a template's syntax without evaluating it; errors are
 * IMTA_CONFIG_ERROR_SYNTAX at the offending column. */
gboolean rw_template_check(const char *template_, const ImtaSourcePos *pos, GError **error);

/* Split on '.' and ':' (literals) into non-empty labels. */
GStrv rw_split_labels(const char *text, gboolean literal);

G_END_DECLS

#endif
