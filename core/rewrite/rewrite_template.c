/*
 * rewrite_template.c - rewrite rule templates: lexing, substitutions,
 * conditions and the split of the result into its '%' / '@' form.
 *
 * A template is evaluated in two phases.  First every top-level token is
 * lexed (so a malformed template is reported even when its rule would be
 * skipped) and the location and address-kind conditions ($E $B $F $R $S $A
 * $P $X) are decided; a failing one skips the rule before any directory or
 * mapping lookup runs.  Then the tokens are evaluated left to right:
 * substitutions append text, '%' and '@' written in the template separate
 * segments, and the argument of $M $N $Q $C $V $Z $T $? collects the text
 * that follows it until a separator or the next condition or control
 * sequence.  $V / $Z are decided as soon as their argument ends; the
 * channel checks ($M $N $Q $C $1M $1N) are pending until $1~ or the end.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/rewrite.h>
#include <imta/mappings.h>
#include <imta/directory.h>
#include "rewrite_private.h"

/* Channels the MTA itself re-enqueues through ($1M / $1N). */
static const char *const rw_internal_channels[] = {
	"reprocess", "process", "conversion", "defragment",
};

typedef enum {
	RW_TOK_END,
	RW_TOK_TEXT,        /* plain characters */
	RW_TOK_SEPARATOR,   /* '%' or '@' written in the template */
	RW_TOK_SUBST,       /* $U $D $H $L $&n $!n $*n $#n $W $$ $% $@ */
	RW_TOK_CASE,        /* $\ $^ $_ */
	RW_TOK_FLAG,        /* $E $B $F $R $S $A $P $X */
	RW_TOK_ARG,         /* $M $N $Q $C $V $Z $T $? with an argument */
	RW_TOK_INTERNAL,    /* $1M / $1N */
	RW_TOK_RUN_CHECKS,  /* $1~ */
	RW_TOK_MAPPING,     /* ${table,string} */
	RW_TOK_UNSUPPORTED, /* $= $( $[ $] */
} RwTokKind;

typedef struct {
	RwTokKind kind;
	char c;               /* the sequence letter, or the separator */
	gint n;               /* numeric prefix or suffix; -1 = none */
	const char *text;     /* TEXT: the characters; MAPPING: the table name */
	gsize len;
	const char *arg;      /* MAPPING: the string to map */
	gsize arg_len;
	const char *start;    /* the token in the template */
} RwToken;

typedef struct {
	const char *base;             /* the whole template, for columns */
	const ImtaSourcePos *pos;
	const char *p, *end;
	gboolean check_only;          /* errors are configuration errors */
} RwLexer;

typedef enum { RW_CASE_ORIGINAL, RW_CASE_LOWER, RW_CASE_UPPER } RwCase;

typedef struct {
	const RwEnv *env;
	const RwMatch *m;
	const ImtaSourcePos *pos;
	const char *base;
	RwOutput *out;
	GString *segment;
	RwCase case_mode;
	char arg_kind;                /* '\0' when no argument is being collected */
	GString *arg;
	GPtrArray *want_source, *not_source, *want_dest, *not_dest;
	gboolean want_internal, not_internal;
	gsize total;
	char *reason;
} RwEval;

static void G_GNUC_PRINTF(4, 5)
rw_lex_error(const RwLexer *lex, const char *at, GError **error, const char *fmt, ...)
{
	ImtaSourcePos where = { NULL, 0, 0 };
	g_autofree char *msg = NULL;
	va_list args;

	va_start(args, fmt);
	msg = g_strdup_vprintf(fmt, args);
	va_end(args);
	if (lex->pos != NULL) {
		where = *lex->pos;
		if (where.column > 0)
			where.column += (guint)(at - lex->base);
	}
	if (lex->check_only) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &where, "%s", msg);
	} else {
		g_autofree char *place = imta_source_pos_format(&where);

		if (place != NULL && *place != '\0')
			g_set_error(error, IMTA_REWRITE_ERROR, IMTA_REWRITE_ERROR_TEMPLATE,
				    "%s: %s", place, msg);
		else
			g_set_error(error, IMTA_REWRITE_ERROR, IMTA_REWRITE_ERROR_TEMPLATE,
				    "%s", msg);
	}
}

/* Scan "table,string}" after "${"; nested "${...}" and "$x" escapes are
 * skipped so that their braces do not end the outer one. */
static gboolean
rw_lex_mapping(RwLexer *lex, RwToken *tok, GError **error)
{
	const char *p = lex->p;
	guint depth = 1;

	tok->text = p;
	while (p < lex->end && *p != ',' && *p != '}' && *p != '$')
		p++;
	if (p >= lex->end || *p != ',') {
		rw_lex_error(lex, tok->start, error,
			     "expected \"${table,string}\": no ',' after the table name");
		return FALSE;
	}
	tok->len = (gsize)(p - tok->text);
	if (tok->len == 0) {
		rw_lex_error(lex, tok->start, error,
			     "expected a mapping table name after \"${\"");
		return FALSE;
	}
	tok->arg = ++p;
	while (p < lex->end) {
		if (*p == '$' && p + 1 < lex->end) {
			if (p[1] == '{')
				depth++;
			p += 2;
			continue;
		}
		if (*p == '}' && --depth == 0)
			break;
		p++;
	}
	if (p >= lex->end) {
		rw_lex_error(lex, tok->start, error, "expected '}' to end \"${\"");
		return FALSE;
	}
	tok->arg_len = (gsize)(p - tok->arg);
	lex->p = p + 1;
	return TRUE;
}

static gboolean
rw_lex_no_prefix(RwLexer *lex, const RwToken *tok, GError **error)
{
	if (tok->n < 0)
		return TRUE;
	rw_lex_error(lex, tok->start, error, "the sequence \"$%c\" takes no number", tok->c);
	return FALSE;
}

/* One "$..." sequence; lex->p is just after the '$'. */
static gboolean
rw_lex_dollar(RwLexer *lex, RwToken *tok, GError **error)
{
	gint64 n = -1;
	char c;

	while (lex->p < lex->end && g_ascii_isdigit(*lex->p)) {
		n = MIN((n < 0 ? 0 : n) * 10 + (*lex->p - '0'), G_MAXINT);
		lex->p++;
	}
	tok->n = (gint)n;
	if (lex->p >= lex->end) {
		rw_lex_error(lex, tok->start, error,
			     "expected a sequence letter after '$' at the end of the template");
		return FALSE;
	}
	c = tok->c = *lex->p++;
	switch (c) {
	case 'U':
		if (n > 1) {
			rw_lex_error(lex, tok->start, error,
				     "expected $U, $0U or $1U, got \"$%dU\"", tok->n);
			return FALSE;
		}
		tok->kind = RW_TOK_SUBST;
		return TRUE;
	case 'D': case 'H':
		tok->kind = RW_TOK_SUBST;
		return TRUE;
	case 'L': case 'W': case '$': case '%': case '@':
		tok->kind = RW_TOK_SUBST;
		return rw_lex_no_prefix(lex, tok, error);
	case '&': case '!': case '*': case '#':
		tok->kind = RW_TOK_SUBST;
		if (!rw_lex_no_prefix(lex, tok, error))
			return FALSE;
		if (lex->p >= lex->end || !g_ascii_isdigit(*lex->p)) {
			rw_lex_error(lex, tok->start, error,
				     "expected a digit after \"$%c\"", c);
			return FALSE;
		}
		tok->n = *lex->p++ - '0';
		return TRUE;
	case '\\': case '^': case '_':
		tok->kind = RW_TOK_CASE;
		return rw_lex_no_prefix(lex, tok, error);
	case 'E': case 'B': case 'F': case 'R': case 'S': case 'A': case 'P': case 'X':
		tok->kind = RW_TOK_FLAG;
		return rw_lex_no_prefix(lex, tok, error);
	case 'M': case 'N':
		if (n == 1) {
			tok->kind = RW_TOK_INTERNAL;
			return TRUE;
		}
		tok->kind = RW_TOK_ARG;
		return rw_lex_no_prefix(lex, tok, error);
	case 'Q': case 'C': case 'V': case 'Z': case 'T':
		tok->kind = RW_TOK_ARG;
		return rw_lex_no_prefix(lex, tok, error);
	case '?':
		/* A number before '?' (as in the DOMAIN_FAILURE default) is
		 * accepted and ignored. */
		tok->kind = RW_TOK_ARG;
		return TRUE;
	case '~':
		if (n != 1) {
			rw_lex_error(lex, tok->start, error, "expected \"$1~\"");
			return FALSE;
		}
		tok->kind = RW_TOK_RUN_CHECKS;
		return TRUE;
	case '{':
		tok->kind = RW_TOK_MAPPING;
		return rw_lex_no_prefix(lex, tok, error) && rw_lex_mapping(lex, tok, error);
	case '=': case '(': case '[': case ']':
		tok->kind = RW_TOK_UNSUPPORTED;
		return TRUE;
	default:
		if (g_ascii_isprint(c))
			rw_lex_error(lex, tok->start, error,
				     "unknown template sequence \"$%c\"", c);
		else
			rw_lex_error(lex, tok->start, error,
				     "unknown template sequence: '$' followed by byte 0x%02x",
				     (guchar)c);
		return FALSE;
	}
}

static gboolean
rw_lex_next(RwLexer *lex, RwToken *tok, GError **error)
{
	memset(tok, 0, sizeof *tok);
	tok->n = -1;
	tok->start = lex->p;
	if (lex->p >= lex->end) {
		tok->kind = RW_TOK_END;
		return TRUE;
	}
	if (*lex->p == '%' || *lex->p == '@') {
		tok->kind = RW_TOK_SEPARATOR;
		tok->c = *lex->p++;
		return TRUE;
	}
	if (*lex->p == '$') {
		lex->p++;
		return rw_lex_dollar(lex, tok, error);
	}
	tok->kind = RW_TOK_TEXT;
	tok->text = lex->p;
	while (lex->p < lex->end && *lex->p != '$' && *lex->p != '%' && *lex->p != '@')
		lex->p++;
	tok->len = (gsize)(lex->p - tok->text);
	return TRUE;
}

static void
rw_lexer_init(RwLexer *lex, const char *base, const char *start, gsize len,
	      const ImtaSourcePos *pos, gboolean check_only)
{
	lex->base = base;
	lex->pos = pos;
	lex->p = start;
	lex->end = start + len;
	lex->check_only = check_only;
}

/* ---- labels ----------------------------------------------------------- */

GStrv
rw_split_labels(const char *text, gboolean literal)
{
	g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
	const char *p = text;

	if (literal && *p == '[')
		p++;
	while (*p != '\0') {
		const char *q = p;

		while (*q != '\0' && *q != '.' && !(literal && (*q == ':' || *q == ']')))
			q++;
		if (q > p) {
			g_autofree char *label = g_strndup(p, (gsize)(q - p));

			g_strv_builder_add(builder, label);
		}
		if (*q == '\0' || (literal && *q == ']'))
			break;
		p = q + 1;
	}
	return g_strv_builder_end(builder);
}

/* `text` with its leftmost `n` labels dropped ($nD, $nH); a leading dot
 * is not a label, and the remainder never starts with one. */
static char *
rw_drop_labels(const char *text, gint n)
{
	const char *p = text;

	if (n <= 0)
		return g_strdup(text);
	if (*p == '.')
		p++;
	while (n-- > 0) {
		const char *dot = strchr(p, '.');

		if (dot == NULL)
			return g_strdup("");
		p = dot + 1;
	}
	return g_strdup(p);
}

static const char *
rw_label_at(GStrv labels, gint n, gboolean from_right)
{
	guint count = labels != NULL ? g_strv_length(labels) : 0;

	if (n < 0 || (guint)n >= count)
		return "";
	return labels[from_right ? count - 1 - (guint)n : (guint)n];
}

/* ---- evaluation ------------------------------------------------------- */

void
rw_match_clear(RwMatch *m)
{
	g_clear_pointer(&m->matched, g_free);
	g_clear_pointer(&m->unmatched, g_free);
	g_clear_pointer(&m->literal_rest, g_free);
	g_clear_pointer(&m->host_labels, g_strfreev);
	g_clear_pointer(&m->pattern_labels, g_strfreev);
}

void
rw_output_init(RwOutput *out)
{
	memset(out, 0, sizeof *out);
	out->segments = g_ptr_array_new_with_free_func(g_free);
	out->separators = g_string_new(NULL);
}

void
rw_output_clear(RwOutput *out)
{
	if (out->segments != NULL)
		g_ptr_array_unref(out->segments);
	if (out->separators != NULL)
		g_string_free(out->separators, TRUE);
	g_free(out->tag);
	g_free(out->error_text);
	memset(out, 0, sizeof *out);
}

char *
rw_output_render(const RwOutput *out)
{
	GString *s = g_string_new(NULL);

	for (guint i = 0; i < out->segments->len; i++) {
		g_string_append(s, out->segments->pdata[i]);
		if (i < out->separators->len)
			g_string_append_c(s, out->separators->str[i]);
	}
	return g_string_free(s, FALSE);
}

static gboolean
rw_eval_append(RwEval *ev, GString *to, const char *text, gsize len, GError **error)
{
	gsize start = to->len;

	ev->total += len;
	if (ev->total > RW_MAX_TEXT) {
		RwLexer lex = { .base = ev->base, .pos = ev->pos };

		rw_lex_error(&lex, ev->base, error,
			     "the template produces more than %d characters", RW_MAX_TEXT);
		return FALSE;
	}
	g_string_append_len(to, text, (gssize)len);
	for (gsize i = start; i < to->len; i++) {
		if (ev->case_mode == RW_CASE_LOWER)
			to->str[i] = g_ascii_tolower(to->str[i]);
		else if (ev->case_mode == RW_CASE_UPPER)
			to->str[i] = g_ascii_toupper(to->str[i]);
	}
	return TRUE;
}

static gboolean
rw_eval_emit(RwEval *ev, const char *text, GError **error)
{
	return rw_eval_append(ev, ev->arg_kind != '\0' ? ev->arg : ev->segment,
			      text, strlen(text), error);
}

static char *
rw_random_unique(void)
{
	static gint counter;
	g_autofree char *uuid = g_uuid_string_random();
	GString *s = g_string_new(NULL);

	/* 122 random bits plus a process-wide counter: unique in practice. */
	for (const char *p = uuid; *p != '\0'; p++)
		if (*p != '-')
			g_string_append_c(s, *p);
	g_string_append_printf(s, "%x", (guint)g_atomic_int_add(&counter, 1));
	return g_string_free(s, FALSE);
}

/* The text of a substitution token. */
static char *
rw_subst_value(const RwEval *ev, const RwToken *tok)
{
	const RwMatch *m = ev->m;
	const char *user = m->user != NULL ? m->user : "";
	const char *plus;

	switch (tok->c) {
	case 'U':
		plus = strchr(user, '+');
		if (tok->n == 0)
			return plus != NULL ? g_strndup(user, (gsize)(plus - user)) :
					      g_strdup(user);
		if (tok->n == 1)
			return g_strdup(plus != NULL ? plus + 1 : "");
		return g_strdup(user);
	case 'D':
		return rw_drop_labels(m->matched != NULL ? m->matched : "", tok->n);
	case 'H':
		return rw_drop_labels(m->unmatched != NULL ? m->unmatched : "", tok->n);
	case 'L':
		return g_strdup(m->literal_rest != NULL ? m->literal_rest : "");
	case '&': case '!':
		return g_strdup(rw_label_at(m->host_labels, tok->n, tok->c == '!'));
	case '*': case '#':
		return g_strdup(rw_label_at(m->pattern_labels, tok->n, tok->c == '#'));
	case 'W':
		return rw_random_unique();
	default:  /* $$ $% $@ */
		return g_strndup(&tok->c, 1);
	}
}

static RwApplyStatus rw_eval_string(RwEval *ev, const char *start, gsize len, guint depth,
				    GString *into, GError **error);

static const char *
rw_unsupported_name(char c)
{
	switch (c) {
	case '=': return "$= (LDAP filter quoting)";
	case '(': return "$( (general database lookup)";
	case '[': return "$[ (site routine call)";
	default: return "$] (LDAP URL lookup)";
	}
}

/* ${table,string}: the rule applies only when the table matches and its
 * entry does not set $N (a "$Y" entry, or one without flags, passes); the
 * entry's result text, flags removed, is substituted. */
static RwApplyStatus
rw_eval_mapping(RwEval *ev, const RwToken *tok, guint depth, GString *into, GError **error)
{
	const ImtaMappings *mappings = ev->env->ctx->mappings;
	g_autofree char *table = g_strndup(tok->text, tok->len);
	g_autoptr(GString) input = g_string_new(NULL);
	ImtaMappingResult res = { 0 };
	RwApplyStatus status;
	RwCase saved = ev->case_mode;

	if (depth >= RW_MAX_MAPPING_DEPTH) {
		RwLexer lex = { .base = ev->base, .pos = ev->pos };

		rw_lex_error(&lex, tok->start, error, "\"${\" nested more than %d deep",
			     RW_MAX_MAPPING_DEPTH);
		return RW_APPLY_ERROR;
	}
	status = rw_eval_string(ev, tok->arg, tok->arg_len, depth + 1, input, error);
	ev->case_mode = saved;
	if (status != RW_APPLY_OK)
		return status;
	if (mappings == NULL || !imta_mappings_apply_named(mappings, table, input->str, &res) ||
	    (res.flags & IMTA_MAP_FLAG_N)) {
		ev->reason = g_strdup_printf("mapping %s gave no match for \"%s\"", table,
					     input->str);
		imta_mapping_result_clear(&res);
		return RW_APPLY_SKIP;
	}
	if (!rw_eval_append(ev, into, res.result != NULL ? res.result : "",
			    res.result != NULL ? strlen(res.result) : 0, error)) {
		imta_mapping_result_clear(&res);
		return RW_APPLY_ERROR;
	}
	imta_mapping_result_clear(&res);
	return RW_APPLY_OK;
}

/* The string part of "${table,string}": text and substitutions only. */
static RwApplyStatus
rw_eval_string(RwEval *ev, const char *start, gsize len, guint depth, GString *into,
	       GError **error)
{
	RwLexer lex;
	RwToken tok;

	rw_lexer_init(&lex, ev->base, start, len, ev->pos, FALSE);
	for (;;) {
		g_autofree char *value = NULL;
		RwApplyStatus status;

		if (!rw_lex_next(&lex, &tok, error))
			return RW_APPLY_ERROR;
		switch (tok.kind) {
		case RW_TOK_END:
			return RW_APPLY_OK;
		case RW_TOK_TEXT:
			if (!rw_eval_append(ev, into, tok.text, tok.len, error))
				return RW_APPLY_ERROR;
			break;
		case RW_TOK_SEPARATOR:
			if (!rw_eval_append(ev, into, &tok.c, 1, error))
				return RW_APPLY_ERROR;
			break;
		case RW_TOK_SUBST:
			value = rw_subst_value(ev, &tok);
			if (!rw_eval_append(ev, into, value, strlen(value), error))
				return RW_APPLY_ERROR;
			break;
		case RW_TOK_CASE:
			ev->case_mode = tok.c == '\\' ? RW_CASE_LOWER :
					tok.c == '^' ? RW_CASE_UPPER : RW_CASE_ORIGINAL;
			break;
		case RW_TOK_MAPPING:
			status = rw_eval_mapping(ev, &tok, depth, into, error);
			if (status != RW_APPLY_OK)
				return status;
			break;
		case RW_TOK_UNSUPPORTED:
			ev->reason = g_strdup_printf("%s is not supported",
						     rw_unsupported_name(tok.c));
			return RW_APPLY_SKIP;
		default:
			rw_lex_error(&lex, tok.start, error,
				     "a condition cannot appear inside \"${...}\"");
			return RW_APPLY_ERROR;
		}
	}
}

static gboolean
rw_name_in(GPtrArray *names, const char *name)
{
	for (guint i = 0; i < names->len; i++)
		if (g_ascii_strcasecmp(names->pdata[i], name) == 0)
			return TRUE;
	return FALSE;
}

static gboolean
rw_is_internal(const char *name)
{
	for (gsize i = 0; i < G_N_ELEMENTS(rw_internal_channels); i++)
		if (g_ascii_strcasecmp(rw_internal_channels[i], name) == 0)
			return TRUE;
	return FALSE;
}

/* The pending channel checks; FALSE sets ev->reason. */
static gboolean
rw_eval_channel_checks(RwEval *ev)
{
	const RwEnv *env = ev->env;
	const char *src = env->source_name;

	if (env->source == NULL || env->source->rules) {
		gboolean internal = rw_is_internal(src);

		if ((ev->want_source->len > 0 || ev->want_internal) &&
		    !rw_name_in(ev->want_source, src) && !(ev->want_internal && internal)) {
			ev->reason = g_strdup_printf("$M condition: the source channel is %s",
						     src);
			return FALSE;
		}
		if (rw_name_in(ev->not_source, src) || (ev->not_internal && internal)) {
			ev->reason = g_strdup_printf("$N condition: the source channel is %s",
						     src);
			return FALSE;
		}
	}
	if (env->destination_name != NULL &&
	    (env->destination == NULL || env->destination->rules)) {
		const char *dst = env->destination_name;

		if (ev->want_dest->len > 0 && !rw_name_in(ev->want_dest, dst)) {
			ev->reason = g_strdup_printf("$Q condition: the destination channel is %s",
						     dst);
			return FALSE;
		}
		if (rw_name_in(ev->not_dest, dst)) {
			ev->reason = g_strdup_printf("$C condition: the destination channel is %s",
						     dst);
			return FALSE;
		}
	}
	g_ptr_array_set_size(ev->want_source, 0);
	g_ptr_array_set_size(ev->not_source, 0);
	g_ptr_array_set_size(ev->want_dest, 0);
	g_ptr_array_set_size(ev->not_dest, 0);
	ev->want_internal = ev->not_internal = FALSE;
	return TRUE;
}

/* $V / $Z.  A temporary directory failure aborts rewriting; the
 * DOMAIN_FAILURE option (continue with another template) is not
 * implemented yet. */
static RwApplyStatus
rw_eval_domain_check(RwEval *ev, char kind, const char *domain, GError **error)
{
	ImtaDirectory *dir = ev->env->ctx->directory;
	g_autoptr(GError) local_error = NULL;
	ImtaDirStatus st = IMTA_DIR_NOT_FOUND;

	if (dir != NULL && *domain != '\0')
		st = imta_directory_domain_is_local(dir, domain, &local_error);
	if (st == IMTA_DIR_TEMPFAIL) {
		g_set_error(error, IMTA_REWRITE_ERROR, IMTA_REWRITE_ERROR_TEMPORARY,
			    "temporary failure looking up domain %s: %s", domain,
			    local_error != NULL ? local_error->message : "directory unavailable");
		return RW_APPLY_ERROR;
	}
	if (kind == 'V' && st != IMTA_DIR_FOUND) {
		ev->reason = g_strdup_printf("$V condition: %s is not a local domain", domain);
		return RW_APPLY_SKIP;
	}
	if (kind == 'Z' && st == IMTA_DIR_FOUND) {
		ev->reason = g_strdup_printf("$Z condition: %s is a local domain", domain);
		return RW_APPLY_SKIP;
	}
	return RW_APPLY_OK;
}

/* An argument ended (at a separator, a control sequence or the end). */
static RwApplyStatus
rw_eval_finish_arg(RwEval *ev, GError **error)
{
	char kind = ev->arg_kind;
	g_autofree char *arg = NULL;

	if (kind == '\0')
		return RW_APPLY_OK;
	ev->arg_kind = '\0';
	arg = g_strdup(ev->arg->str);
	g_string_truncate(ev->arg, 0);
	switch (kind) {
	case 'M':
		g_ptr_array_add(ev->want_source, g_steal_pointer(&arg));
		break;
	case 'N':
		g_ptr_array_add(ev->not_source, g_steal_pointer(&arg));
		break;
	case 'Q':
		g_ptr_array_add(ev->want_dest, g_steal_pointer(&arg));
		break;
	case 'C':
		g_ptr_array_add(ev->not_dest, g_steal_pointer(&arg));
		break;
	case 'V': case 'Z':
		return rw_eval_domain_check(ev, kind, arg, error);
	case 'T':
		/* Tags are compared with the "tag|" prefix of patterns; a bare
		 * "$Tname" means "name|". */
		g_free(ev->out->tag);
		if (*arg != '\0' && !g_str_has_suffix(arg, "|"))
			ev->out->tag = g_strconcat(arg, "|", NULL);
		else
			ev->out->tag = g_steal_pointer(&arg);
		ev->out->tag_set = TRUE;
		break;
	default: /* '?' */
		g_free(ev->out->error_text);
		ev->out->error_text = g_steal_pointer(&arg);
		break;
	}
	return RW_APPLY_OK;
}

/* $E $B $F $R $S $A $P $X over the whole template: each group is an OR of
 * what it lists; an absent group accepts anything. */
static gboolean
rw_flags_accept(RwEval *ev, const char *template_, GError **error, gboolean *accept_r)
{
	guint want_kind = 0, want_dir = 0, want_loc = 0;
	guint kind, dir, loc;
	RwLexer lex;
	RwToken tok;

	rw_lexer_init(&lex, template_, template_, strlen(template_), ev->pos, FALSE);
	do {
		if (!rw_lex_next(&lex, &tok, error))
			return FALSE;
		if (tok.kind != RW_TOK_FLAG)
			continue;
		switch (tok.c) {
		case 'E': want_kind |= 1; break;
		case 'B': want_kind |= 2; break;
		case 'F': want_dir |= 1; break;
		case 'R': want_dir |= 2; break;
		case 'S': want_loc |= 1u << RW_LOC_ROUTE; break;
		case 'A': want_loc |= 1u << RW_LOC_AT; break;
		case 'P': want_loc |= 1u << RW_LOC_PERCENT; break;
		default: want_loc |= 1u << RW_LOC_BANG; break;
		}
	} while (tok.kind != RW_TOK_END);

	kind = (ev->env->ctx->flags & IMTA_REWRITE_ENVELOPE) ? 1 : 2;
	dir = (ev->env->ctx->flags & IMTA_REWRITE_FORWARD) ? 1 : 2;
	loc = 1u << ev->m->location;
	*accept_r = TRUE;
	if (want_kind != 0 && !(want_kind & kind))
		ev->reason = g_strdup_printf("%s condition: the address is %s", kind == 1 ?
					     "$B" : "$E", kind == 1 ? "from the envelope" :
					     "from a header");
	else if (want_dir != 0 && !(want_dir & dir))
		ev->reason = g_strdup_printf("%s condition: the address is %s", dir == 1 ?
					     "$R" : "$F", dir == 1 ? "forward-pointing" :
					     "backward-pointing");
	else if (want_loc != 0 && !(want_loc & loc))
		ev->reason = g_strdup("$S/$A/$P/$X condition: the host came from elsewhere");
	else
		return TRUE;
	*accept_r = FALSE;
	return TRUE;
}

static RwApplyStatus
rw_eval_token(RwEval *ev, const RwToken *tok, gboolean *stop_r, GError **error)
{
	g_autofree char *value = NULL;
	RwApplyStatus status;

	switch (tok->kind) {
	case RW_TOK_TEXT:
		return rw_eval_append(ev, ev->arg_kind != '\0' ? ev->arg : ev->segment,
				      tok->text, tok->len, error) ? RW_APPLY_OK : RW_APPLY_ERROR;
	case RW_TOK_SUBST:
		value = rw_subst_value(ev, tok);
		return rw_eval_emit(ev, value, error) ? RW_APPLY_OK : RW_APPLY_ERROR;
	case RW_TOK_CASE:
		ev->case_mode = tok->c == '\\' ? RW_CASE_LOWER :
				tok->c == '^' ? RW_CASE_UPPER : RW_CASE_ORIGINAL;
		return RW_APPLY_OK;
	case RW_TOK_MAPPING:
		return rw_eval_mapping(ev, tok, 0, ev->arg_kind != '\0' ? ev->arg : ev->segment,
				       error);
	case RW_TOK_UNSUPPORTED:
		ev->reason = g_strdup_printf("%s is not supported", rw_unsupported_name(tok->c));
		return RW_APPLY_SKIP;
	default:
		break;
	}

	/* Everything else ends an argument being collected. */
	status = rw_eval_finish_arg(ev, error);
	if (status != RW_APPLY_OK)
		return status;
	switch (tok->kind) {
	case RW_TOK_SEPARATOR:
		g_ptr_array_add(ev->out->segments, g_string_free(ev->segment, FALSE));
		ev->segment = g_string_new(NULL);
		g_string_append_c(ev->out->separators, tok->c);
		break;
	case RW_TOK_ARG:
		ev->arg_kind = tok->c;
		break;
	case RW_TOK_INTERNAL:
		if (tok->c == 'M')
			ev->want_internal = TRUE;
		else
			ev->not_internal = TRUE;
		break;
	case RW_TOK_RUN_CHECKS:
		/* Failing checks end the template here, successfully. */
		if (!rw_eval_channel_checks(ev)) {
			g_clear_pointer(&ev->reason, g_free);
			*stop_r = TRUE;
		}
		break;
	case RW_TOK_END:
		if (!rw_eval_channel_checks(ev))
			return RW_APPLY_SKIP;
		*stop_r = TRUE;
		break;
	default: /* RW_TOK_FLAG: decided before evaluation */
		break;
	}
	return RW_APPLY_OK;
}

static void
rw_eval_clear(RwEval *ev)
{
	if (ev->segment != NULL)
		g_string_free(ev->segment, TRUE);
	if (ev->arg != NULL)
		g_string_free(ev->arg, TRUE);
	g_clear_pointer(&ev->want_source, g_ptr_array_unref);
	g_clear_pointer(&ev->not_source, g_ptr_array_unref);
	g_clear_pointer(&ev->want_dest, g_ptr_array_unref);
	g_clear_pointer(&ev->not_dest, g_ptr_array_unref);
	g_free(ev->reason);
}

RwApplyStatus
rw_template_apply(const RwEnv *env, const char *template_, const ImtaSourcePos *pos,
		  const RwMatch *m, RwOutput *out, char **reason_r, GError **error)
{
	RwEval ev = {
		.env = env, .m = m, .pos = pos, .base = template_, .out = out,
	};
	RwApplyStatus status = RW_APPLY_OK;
	gboolean accept = TRUE, stop = FALSE;
	RwLexer lex;
	RwToken tok;

	rw_output_clear(out);
	rw_output_init(out);
	ev.segment = g_string_new(NULL);
	ev.arg = g_string_new(NULL);
	ev.want_source = g_ptr_array_new_with_free_func(g_free);
	ev.not_source = g_ptr_array_new_with_free_func(g_free);
	ev.want_dest = g_ptr_array_new_with_free_func(g_free);
	ev.not_dest = g_ptr_array_new_with_free_func(g_free);

	if (!rw_flags_accept(&ev, template_, error, &accept)) {
		status = RW_APPLY_ERROR;
		goto done;
	}
	if (!accept) {
		status = RW_APPLY_SKIP;
		goto done;
	}
	rw_lexer_init(&lex, template_, template_, strlen(template_), pos, FALSE);
	while (!stop) {
		if (!rw_lex_next(&lex, &tok, error)) {
			status = RW_APPLY_ERROR;
			break;
		}
		status = rw_eval_token(&ev, &tok, &stop, error);
		if (status != RW_APPLY_OK)
			break;
	}
	if (status == RW_APPLY_OK) {
		/* After a $1~ stop an argument may still be open. */
		status = rw_eval_finish_arg(&ev, error);
	}
	if (status == RW_APPLY_OK) {
		g_ptr_array_add(out->segments, g_string_free(ev.segment, FALSE));
		ev.segment = NULL;
	}
done:
	if (status == RW_APPLY_SKIP && reason_r != NULL)
		*reason_r = g_steal_pointer(&ev.reason);
	if (status != RW_APPLY_OK) {
		rw_output_clear(out);
		rw_output_init(out);
	}
	rw_eval_clear(&ev);
	return status;
}

static gboolean
rw_check_string(RwLexer *outer, const RwToken *map, guint depth, GError **error)
{
	RwLexer lex;
	RwToken tok;

	if (depth >= RW_MAX_MAPPING_DEPTH) {
		rw_lex_error(outer, map->start, error, "\"${\" nested more than %d deep",
			     RW_MAX_MAPPING_DEPTH);
		return FALSE;
	}
	rw_lexer_init(&lex, outer->base, map->arg, map->arg_len, outer->pos, TRUE);
	do {
		if (!rw_lex_next(&lex, &tok, error))
			return FALSE;
		switch (tok.kind) {
		case RW_TOK_FLAG: case RW_TOK_ARG: case RW_TOK_INTERNAL: case RW_TOK_RUN_CHECKS:
			rw_lex_error(&lex, tok.start, error,
				     "a condition cannot appear inside \"${...}\"");
			return FALSE;
		case RW_TOK_MAPPING:
			if (!rw_check_string(&lex, &tok, depth + 1, error))
				return FALSE;
			break;
		default:
			break;
		}
	} while (tok.kind != RW_TOK_END);
	return TRUE;
}

gboolean
rw_template_check(const char *template_, const ImtaSourcePos *pos, GError **error)
{
	RwLexer lex;
	RwToken tok;

	rw_lexer_init(&lex, template_, template_, strlen(template_), pos, TRUE);
	do {
		if (!rw_lex_next(&lex, &tok, error))
			return FALSE;
		if (tok.kind == RW_TOK_MAPPING && !rw_check_string(&lex, &tok, 0, error))
			return FALSE;
	} while (tok.kind != RW_TOK_END);
	return TRUE;
}
