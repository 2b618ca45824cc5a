/*
 * rewrite.c - the rewrite engine: host-spec extraction, the rule search
 * (domain and literal walks), the passes loop with meta rules and route
 * stripping, and the final channel selection.
 *
 * The address being rewritten is kept as a source route, a local part (in
 * which "u%host" and "host!u" forms live) and an optional domain; nothing
 * is re-parsed between passes, so text a rule produces is never mistaken
 * for syntax.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/rewrite.h>
#include <imta/address.h>
#include "rewrite_private.h"

typedef struct {
	GPtrArray *route;   /* char *: source-route hosts, left to right */
	char *local;
	char *domain;       /* NULL: none */
} RwAddress;

/* The first host spec of an address and what surrounds it. */
typedef struct {
	char *host;
	RwLocation location;
	char *user;         /* $U */
	RwAddress *rest;    /* the address without this host (route stripping) */
} RwSpec;

typedef enum {
	RW_PROBE_ANY,        /* $* $% $!: $H and $D are the whole spec */
	RW_PROBE_EXACT,      /* the whole spec */
	RW_PROBE_SUFFIX,     /* .b.c: `arg` = where the suffix starts in the spec */
	RW_PROBE_WILD,       /* *.*.c */
	RW_PROBE_DOT,        /* . */
	RW_PROBE_LIT_PREFIX, /* [1.2.]: `arg` = length of the literal's text kept */
	RW_PROBE_LIT_ANY,    /* [] */
	RW_PROBE_LIT_WILD,   /* [*.*.*.*] */
} RwProbeKind;

typedef struct {
	char *text;
	RwProbeKind kind;
	gsize arg;
} RwProbe;

typedef struct {
	const ImtaRewriteContext *ctx;
	RwEnv env;
	const ImtaChannel *local;
	gboolean bang_first;
	char *tag;            /* current tag ("name|"), "" = none; sticky */
	char *error_text;     /* last $? text; sticky */
	GString *trace;
} RwState;

/* The outcome of the rule search for one host spec. */
typedef struct {
	const ImtaRewriteRule *rule;  /* NULL: the implicit "spec $U%spec@spec" */
	RwOutput out;
} RwDecision;

typedef enum { RW_TRY_NONE, RW_TRY_MATCHED, RW_TRY_ERROR } RwTry;

static const char *const rw_location_names[] = {
	[RW_LOC_ROUTE] = "source route",
	[RW_LOC_AT] = "right of @",
	[RW_LOC_PERCENT] = "right of %",
	[RW_LOC_BANG] = "left of !",
};

static void G_GNUC_PRINTF(2, 3)
rw_trace(const RwState *st, const char *fmt, ...)
{
	va_list args;

	if (st->trace == NULL)
		return;
	va_start(args, fmt);
	g_string_append_vprintf(st->trace, fmt, args);
	va_end(args);
	g_string_append_c(st->trace, '\n');
}

/* ---- addresses -------------------------------------------------------- */

static RwAddress *
rw_address_new(void)
{
	RwAddress *a = g_new0(RwAddress, 1);

	a->route = g_ptr_array_new_with_free_func(g_free);
	return a;
}

static void
rw_address_free(RwAddress *a)
{
	if (a == NULL)
		return;
	g_ptr_array_unref(a->route);
	g_free(a->local);
	g_free(a->domain);
	g_free(a);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(RwAddress, rw_address_free)

static char *
rw_address_format(const RwAddress *a)
{
	GString *s = g_string_new(NULL);

	for (guint i = 0; i < a->route->len; i++)
		g_string_append_printf(s, "%s@%s", i > 0 ? "," : "",
				       (const char *)a->route->pdata[i]);
	if (a->route->len > 0)
		g_string_append_c(s, ':');
	g_string_append(s, a->local);
	if (a->domain != NULL)
		g_string_append_printf(s, "@%s", a->domain);
	return g_string_free(s, FALSE);
}

/* Positions of the last single '%' and the first '!' of a local part,
 * outside quoted strings; "%%" is not a separator.  -1 = none. */
static void
rw_local_separators(const char *local, gssize *percent_r, gssize *bang_r)
{
	gboolean quoted = FALSE;

	*percent_r = *bang_r = -1;
	for (gssize i = 0; local[i] != '\0'; i++) {
		char c = local[i];
		gssize run = 1;

		if (c == '\\' && local[i + 1] != '\0') {
			i++;
			continue;
		}
		if (c == '"')
			quoted = !quoted;
		if (quoted || c == '"')
			continue;
		if (c == '%') {
			while (local[i + run] == '%')
				run++;
			if (run == 1)
				*percent_r = i;
			i += run - 1;
		} else if (c == '!' && *bang_r < 0) {
			*bang_r = i;
		}
	}
	/* An empty host on either side is no host spec. */
	if (*percent_r >= 0 && local[*percent_r + 1] == '\0')
		*percent_r = -1;
	if (*bang_r == 0)
		*bang_r = -1;
}

static void
rw_spec_clear(RwSpec *spec)
{
	g_clear_pointer(&spec->host, g_free);
	g_clear_pointer(&spec->user, g_free);
	g_clear_pointer(&spec->rest, rw_address_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(RwSpec, rw_spec_clear)

/* Step 1: the first host spec.  Returns FALSE when the address has none;
 * `spec` may be NULL to only ask whether there is one. */
static gboolean
rw_extract(const RwAddress *a, gboolean bang_first, RwSpec *spec)
{
	gssize percent, bang;
	gboolean use_bang;

	if (a->route->len > 0) {
		if (spec != NULL) {
			spec->host = g_strdup(a->route->pdata[0]);
			spec->location = RW_LOC_ROUTE;
			spec->user = g_strdup(a->local);
			spec->rest = rw_address_new();
			for (guint i = 1; i < a->route->len; i++)
				g_ptr_array_add(spec->rest->route, g_strdup(a->route->pdata[i]));
			spec->rest->local = g_strdup(a->local);
			spec->rest->domain = g_strdup(a->domain);
		}
		return TRUE;
	}
	if (a->domain != NULL) {
		if (spec != NULL) {
			spec->host = g_strdup(a->domain);
			spec->location = RW_LOC_AT;
			spec->user = g_strdup(a->local);
			spec->rest = rw_address_new();
			spec->rest->local = g_strdup(a->local);
		}
		return TRUE;
	}
	rw_local_separators(a->local, &percent, &bang);
	if (percent < 0 && bang < 0)
		return FALSE;
	use_bang = bang >= 0 && (percent < 0 || bang_first);
	if (spec == NULL)
		return TRUE;
	spec->rest = rw_address_new();
	if (use_bang) {
		spec->host = g_strndup(a->local, (gsize)bang);
		spec->location = RW_LOC_BANG;
		spec->user = g_strdup(a->local + bang + 1);
	} else {
		spec->host = g_strdup(a->local + percent + 1);
		spec->location = RW_LOC_PERCENT;
		spec->user = g_strndup(a->local, (gsize)percent);
	}
	spec->rest->local = g_strdup(spec->user);
	return TRUE;
}

/* ---- probes ----------------------------------------------------------- */

static void
rw_probe_clear(gpointer p)
{
	g_free(((RwProbe *)p)->text);
}

static void
rw_probe_add(GArray *probes, char *text, RwProbeKind kind, gsize arg)
{
	RwProbe probe = { text, kind, arg };

	g_array_append_val(probes, probe);
}

static gboolean
rw_is_literal(const char *spec)
{
	gsize n = strlen(spec);

	return n >= 2 && spec[0] == '[' && spec[n - 1] == ']';
}

/* The domain walk after the exact probe and before ".":
 *   *.b.c  .b.c  *.*.c  .c  *.*.*
 * s1 drops its first label each round; s2 wildcards one more label. */
static void
rw_walk_domain(const char *spec, GArray *probes)
{
	g_auto(GStrv) labels = g_strsplit(spec, ".", -1);
	const char *s1 = spec;

	for (gboolean first = TRUE;; first = FALSE) {
		const char *t, *dot;

		if (!first)
			rw_probe_add(probes, g_strdup(s1), RW_PROBE_SUFFIX, (gsize)(s1 - spec));
		for (guint j = 0; labels[j] != NULL; j++) {
			if (strcmp(labels[j], "*") != 0) {
				g_free(labels[j]);
				labels[j] = g_strdup("*");
				rw_probe_add(probes, g_strjoinv(".", labels), RW_PROBE_WILD, 0);
				break;
			}
		}
		t = *s1 == '.' ? s1 + 1 : s1;
		dot = strchr(t, '.');
		if (dot == NULL)
			break;     /* s1 becomes ".", tried last */
		s1 = dot;
	}
}

static gboolean
rw_is_literal_separator(char c)
{
	return c == '.' || c == ':';
}

/* The literal walk after the exact probe and before ".":
 *   [1.2.3.]  [1.2.]  [1.]  []  [*.*.*.*]  */
static void
rw_walk_literal(const char *spec, GArray *probes)
{
	gsize n = strlen(spec) - 2;    /* the text between the brackets */
	const char *text = spec + 1;
	GString *wild = g_string_new("[");
	gboolean in_part = FALSE;

	for (gsize i = n; i > 0; i--) {
		if (!rw_is_literal_separator(text[i - 1]) || i == n)
			continue;
		rw_probe_add(probes, g_strdup_printf("[%.*s]", (int)i, text),
			     RW_PROBE_LIT_PREFIX, i);
	}
	rw_probe_add(probes, g_strdup("[]"), RW_PROBE_LIT_ANY, 0);
	for (gsize i = 0; i < n; i++) {
		if (rw_is_literal_separator(text[i])) {
			g_string_append_c(wild, text[i]);
			in_part = FALSE;
		} else if (!in_part) {
			g_string_append_c(wild, '*');
			in_part = TRUE;
		}
	}
	g_string_append_c(wild, ']');
	if (strcmp(wild->str, spec) != 0)
		rw_probe_add(probes, g_string_free(wild, FALSE), RW_PROBE_LIT_WILD, 0);
	else
		g_string_free(wild, TRUE);
}

/* What the substitutions see when `probe` matched `spec`. */
static void
rw_match_fill(RwMatch *m, const RwSpec *spec, const RwProbe *probe, const char *pattern)
{
	const char *host = spec->host;
	gboolean literal = rw_is_literal(host);
	gsize n = strlen(host);

	memset(m, 0, sizeof *m);
	m->user = spec->user;
	m->spec = host;
	m->location = spec->location;
	switch (probe->kind) {
	case RW_PROBE_ANY:
		m->matched = g_strdup(host);
		m->unmatched = g_strdup(host);
		m->host_labels = rw_split_labels(host, literal);
		break;
	case RW_PROBE_EXACT:
		m->matched = g_strdup(host);
		break;
	case RW_PROBE_SUFFIX:
		m->matched = g_strdup(host + probe->arg);
		m->unmatched = g_strndup(host, probe->arg);
		m->host_labels = rw_split_labels(m->unmatched, FALSE);
		break;
	case RW_PROBE_WILD: {
		g_auto(GStrv) hl = g_strsplit(host, ".", -1);
		g_auto(GStrv) pl = g_strsplit(probe->text, ".", -1);
		g_autoptr(GStrvBuilder) b = g_strv_builder_new();

		for (guint i = 0; hl[i] != NULL && pl[i] != NULL; i++)
			if (strcmp(pl[i], "*") == 0 && strcmp(hl[i], "*") != 0)
				g_strv_builder_add(b, hl[i]);
		m->matched = g_strdup(host);
		m->host_labels = g_strv_builder_end(b);
		break;
	}
	case RW_PROBE_DOT:
		m->matched = g_strdup(".");
		m->unmatched = g_strdup(host);
		m->host_labels = rw_split_labels(host, literal);
		break;
	case RW_PROBE_LIT_PREFIX:
		m->matched = g_strdup_printf("%.*s]", (int)probe->arg + 1, host);
		m->literal_rest = g_strndup(host + 1 + probe->arg, n - 2 - probe->arg);
		m->host_labels = rw_split_labels(m->literal_rest, TRUE);
		break;
	case RW_PROBE_LIT_ANY:
		m->matched = g_strdup("[]");
		m->literal_rest = g_strndup(host + 1, n - 2);
		m->host_labels = rw_split_labels(host, TRUE);
		break;
	case RW_PROBE_LIT_WILD:
		m->matched = g_strdup(host);
		m->host_labels = rw_split_labels(host, TRUE);
		break;
	}
	if (probe->kind == RW_PROBE_ANY)
		m->pattern_labels = g_new0(char *, 1);
	else
		m->pattern_labels = rw_split_labels(pattern, pattern[0] == '[');
}

/* ---- the rule search ---------------------------------------------------- */

/* Does `rule` stand for `probe` under the current tag?  Sets *pattern_r
 * to the pattern without its tag. */
static gboolean
rw_rule_matches(const ImtaRewriteRule *rule, const char *tag, const char *probe,
		const char **pattern_r)
{
	const char *bar = strrchr(rule->pattern, '|');
	gsize tag_len = bar != NULL ? (gsize)(bar + 1 - rule->pattern) : 0;

	if (tag_len != strlen(tag) || g_ascii_strncasecmp(rule->pattern, tag, tag_len) != 0)
		return FALSE;
	*pattern_r = rule->pattern + tag_len;
	return g_ascii_strcasecmp(*pattern_r, probe) == 0;
}

static void
rw_trace_rule(const RwState *st, guint index, const ImtaRewriteRule *rule)
{
	if (st->trace == NULL)
		return;
	rw_trace(st, "  rule %u at %s:%u: %s -> %s", index + 1,
		 rule->pos.file != NULL ? rule->pos.file : "imta.cnf", rule->pos.line,
		 rule->pattern, rule->template_);
}

/* Try the rules standing for one probe, in file order; a rule whose
 * conditions fail is skipped and the next one tried. */
static RwTry
rw_try_probe(RwState *st, const RwSpec *spec, const RwProbe *probe, RwDecision *d,
	     GError **error)
{
	const GPtrArray *rules = st->ctx->cnf->rules;

	rw_trace(st, "try %s%s", st->tag, probe->text);
	for (guint i = 0; i < rules->len; i++) {
		const ImtaRewriteRule *rule = rules->pdata[i];
		g_autofree char *reason = NULL;
		const char *pattern;
		RwApplyStatus status;
		RwMatch m;

		if (!rw_rule_matches(rule, st->tag, probe->text, &pattern))
			continue;
		rw_trace_rule(st, i, rule);
		rw_match_fill(&m, spec, probe, pattern);
		status = rw_template_apply(&st->env, rule->template_, &rule->template_pos, &m,
					   &d->out, &reason, error);
		rw_match_clear(&m);
		if (status == RW_APPLY_ERROR)
			return RW_TRY_ERROR;
		if (status == RW_APPLY_SKIP) {
			rw_trace(st, "  skipped: %s",
				 reason != NULL ? reason : "condition failed");
			continue;
		}
		if (st->trace != NULL) {
			g_autofree char *text = rw_output_render(&d->out);

			rw_trace(st, "  output: %s", text);
		}
		d->rule = rule;
		return RW_TRY_MATCHED;
	}
	return RW_TRY_NONE;
}

/* The implicit rule "spec $U%spec@spec". */
static void
rw_decide_implicit(const RwSpec *spec, RwDecision *d)
{
	rw_output_clear(&d->out);
	rw_output_init(&d->out);
	g_ptr_array_add(d->out.segments, g_strdup(spec->user));
	g_ptr_array_add(d->out.segments, g_strdup(spec->host));
	g_ptr_array_add(d->out.segments, g_strdup(spec->host));
	g_string_append(d->out.separators, "%@");
	d->rule = NULL;
}

/* Step 2 and 3: $* -> exact rule -> channel host -> walk -> $% / $! -> ".";
 * nothing at all gives the implicit rule too. */
static gboolean
rw_search(RwState *st, const RwSpec *spec, RwDecision *d, GError **error)
{
	g_autoptr(GArray) probes = g_array_new(FALSE, FALSE, sizeof(RwProbe));
	const ImtaChannel *owner;
	RwTry r = RW_TRY_NONE;

	g_array_set_clear_func(probes, rw_probe_clear);
	rw_probe_add(probes, g_strdup("$*"), RW_PROBE_ANY, 0);
	rw_probe_add(probes, g_strdup(spec->host), RW_PROBE_EXACT, 0);
	for (guint i = 0; i < 2 && r == RW_TRY_NONE; i++)
		r = rw_try_probe(st, spec, &g_array_index(probes, RwProbe, i), d, error);
	if (r != RW_TRY_NONE)
		return r == RW_TRY_MATCHED;

	owner = imta_cnf_channel_by_host(st->ctx->cnf, spec->host);
	if (owner != NULL) {
		rw_trace(st, "channel table: %s belongs to %s (implicit rule %s -> $U%%%s@%s)",
			 spec->host, owner->name, spec->host, spec->host, spec->host);
		rw_decide_implicit(spec, d);
		return TRUE;
	}
	rw_trace(st, "channel table: %s not found", spec->host);

	g_array_set_size(probes, 0);
	if (rw_is_literal(spec->host))
		rw_walk_literal(spec->host, probes);
	else
		rw_walk_domain(spec->host, probes);
	if (spec->location == RW_LOC_PERCENT)
		rw_probe_add(probes, g_strdup("$%"), RW_PROBE_ANY, 0);
	if (spec->location == RW_LOC_BANG)
		rw_probe_add(probes, g_strdup("$!"), RW_PROBE_ANY, 0);
	rw_probe_add(probes, g_strdup("."), RW_PROBE_DOT, 0);
	for (guint i = 0; i < probes->len && r == RW_TRY_NONE; i++)
		r = rw_try_probe(st, spec, &g_array_index(probes, RwProbe, i), d, error);
	if (r != RW_TRY_NONE)
		return r == RW_TRY_MATCHED;

	rw_trace(st, "no rule: %s is used as domain and routing host", spec->host);
	rw_decide_implicit(spec, d);
	return TRUE;
}

/* ---- forms ------------------------------------------------------------ */

typedef enum {
	RW_FORM_FINAL,   /* A%B@C, A@C, A@B@C@D, A@B@C */
	RW_FORM_META,    /* A%B: rewrite again */
	RW_FORM_EMPTY,   /* nothing but conditions / $?: the lookup fails */
} RwFormKind;

typedef struct {
	RwFormKind kind;
	const char *user, *domain, *route, *routing;
} RwForm;

static gboolean
rw_form_parse(const RwDecision *d, RwForm *f, GError **error)
{
	const char *seps = d->out.separators->str;
	char **s = (char **)d->out.segments->pdata;

	memset(f, 0, sizeof *f);
	f->kind = RW_FORM_FINAL;
	f->user = s[0];
	if (strcmp(seps, "%@") == 0) {
		f->domain = s[1];
		f->routing = s[2];
	} else if (strcmp(seps, "@") == 0) {
		f->domain = f->routing = s[1];
	} else if (strcmp(seps, "%") == 0) {
		f->kind = RW_FORM_META;
		f->domain = s[1];
	} else if (strcmp(seps, "@@@") == 0) {
		f->domain = s[1];
		f->route = s[2];
		f->routing = s[3];
	} else if (strcmp(seps, "@@") == 0) {
		f->domain = s[1];
		f->route = f->routing = s[2];
	} else if (*seps == '\0' && *s[0] == '\0') {
		f->kind = RW_FORM_EMPTY;
	} else {
		g_autofree char *text = rw_output_render(&d->out);
		g_autofree char *place = d->rule != NULL ?
			imta_source_pos_format(&d->rule->template_pos) : g_strdup("");

		g_set_error(error, IMTA_REWRITE_ERROR, IMTA_REWRITE_ERROR_TEMPLATE,
			    "%s%sthe template produced \"%s\", which is none of the forms "
			    "A%%B@C, A@C, A%%B, A@B@C@D, A@B@C", place, *place ? ": " : "", text);
		return FALSE;
	}
	return TRUE;
}

/* The address with the rewritten spec in place of the original one.  A
 * source-route host is replaced in the route (the mailbox stays); any
 * other spec yields user@domain. */
static RwAddress *
rw_address_rewritten(const RwAddress *orig, const RwSpec *spec, const RwForm *f)
{
	RwAddress *a = rw_address_new();

	if (f->route != NULL && *f->route != '\0')
		g_ptr_array_add(a->route, g_strdup(f->route));
	if (spec->location == RW_LOC_ROUTE) {
		if (*f->domain != '\0')
			g_ptr_array_add(a->route, g_strdup(f->domain));
		for (guint i = 1; i < orig->route->len; i++)
			g_ptr_array_add(a->route, g_strdup(orig->route->pdata[i]));
		a->local = g_strdup(orig->local);
		a->domain = g_strdup(orig->domain);
	} else {
		a->local = g_strdup(f->user);
		a->domain = *f->domain != '\0' ? g_strdup(f->domain) : NULL;
	}
	return a;
}

/* Step 4: the channel owning the routing host.  "localhost", when no
 * channel claims it, is this system: the l channel. */
static const ImtaChannel *
rw_route_channel(const RwState *st, const char *host)
{
	const ImtaChannel *ch = imta_cnf_channel_by_host(st->ctx->cnf, host);

	if (ch == NULL && g_ascii_strcasecmp(host, "localhost") == 0)
		ch = st->local;
	return ch;
}

/* ---- the passes loop -------------------------------------------------- */

static void
rw_state_take_effects(RwState *st, RwOutput *out)
{
	if (out->tag_set) {
		g_free(st->tag);
		st->tag = g_steal_pointer(&out->tag);
		if (st->tag == NULL)
			st->tag = g_strdup("");
	}
	if (out->error_text != NULL) {
		g_free(st->error_text);
		st->error_text = g_steal_pointer(&out->error_text);
	}
}

static gboolean
rw_unroutable(const RwState *st, const char *host, GError **error)
{
	g_autofree char *msg = st->error_text != NULL ? g_strdup(st->error_text) :
			       g_strdup_printf("illegal host/domain: %s", host);

	rw_trace(st, "unroutable: %s", msg);
	g_set_error_literal(error, IMTA_REWRITE_ERROR, IMTA_REWRITE_ERROR_UNROUTABLE, msg);
	return FALSE;
}

/* An address without any host is one of this system's. */
static gboolean
rw_add_local_host(RwState *st, RwAddress *a, GError **error)
{
	const char *host = st->local != NULL ? imta_channel_official_host(st->local) : NULL;

	if (host == NULL || *host == '\0')
		return rw_unroutable(st, a->local, error);
	rw_trace(st, "no host: using the local host name %s", host);
	a->domain = g_strdup(host);
	return TRUE;
}

static void
rw_finish(const RwState *st, RwAddress *a, const RwDecision *d, const char *routing,
	  const ImtaChannel *channel, ImtaRewriteResult *result)
{
	result->address = rw_address_format(a);
	result->channel = channel;
	if (channel == st->local && imta_cnf_channel_by_host(st->ctx->cnf, routing) == NULL)
		result->routing_host = g_strdup(imta_channel_official_host(channel));
	else
		result->routing_host = g_strdup(routing);
	result->error_text = g_strdup(st->error_text);
	result->rule = d->rule;
	result->tag = *st->tag != '\0' ? g_strdup(st->tag) : NULL;
	rw_trace(st, "result: %s on channel %s", result->address, channel->name);
}

static void
rw_decision_clear(RwDecision *d)
{
	rw_output_clear(&d->out);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(RwDecision, rw_decision_clear)

typedef enum { RW_PASS_AGAIN, RW_PASS_DONE, RW_PASS_FAILED } RwPassResult;

/* One pass over *a_io: find and apply a rule; on RW_PASS_AGAIN *a_io is
 * the address to rewrite next (meta rule or stripped route). */
static RwPassResult
rw_pass(RwState *st, guint pass, RwAddress **a_io, ImtaRewriteResult *result, GError **error)
{
	RwAddress *a = *a_io;
	g_auto(RwSpec) spec = { 0 };
	g_auto(RwDecision) d = { 0 };
	g_autoptr(RwAddress) next = NULL;
	const ImtaChannel *channel;
	RwForm f;

	if (!rw_extract(a, st->bang_first, &spec)) {
		if (!rw_add_local_host(st, a, error))
			return RW_PASS_FAILED;
		rw_extract(a, st->bang_first, &spec);
	}
	if (st->trace != NULL) {
		g_autofree char *text = rw_address_format(a);

		rw_trace(st, "pass %u: %s, host spec %s (%s)", pass, text, spec.host,
			 rw_location_names[spec.location]);
	}
	rw_output_init(&d.out);
	if (!rw_search(st, &spec, &d, error) || !rw_form_parse(&d, &f, error))
		return RW_PASS_FAILED;
	rw_state_take_effects(st, &d.out);
	if (f.kind == RW_FORM_EMPTY) {
		rw_unroutable(st, spec.host, error);
		return RW_PASS_FAILED;
	}
	next = rw_address_rewritten(a, &spec, &f);
	if (f.kind == RW_FORM_META) {
		rw_address_free(a);
		*a_io = g_steal_pointer(&next);
		return RW_PASS_AGAIN;
	}

	channel = rw_route_channel(st, f.routing);
	if (channel != NULL && (channel == st->local || channel->routelocal) &&
	    rw_extract(spec.rest, st->bang_first, NULL)) {
		if (st->trace != NULL) {
			g_autofree char *rest = rw_address_format(spec.rest);

			rw_trace(st, "routing host %s is channel %s: removing %s, continuing "
				 "with %s", f.routing, channel->name, spec.host, rest);
		}
		rw_address_free(a);
		*a_io = g_steal_pointer(&spec.rest);
		return RW_PASS_AGAIN;
	}
	if (channel == NULL) {
		rw_unroutable(st, f.routing, error);
		return RW_PASS_FAILED;
	}
	rw_trace(st, "routing host %s: channel %s", f.routing, channel->name);
	rw_finish(st, next, &d, f.routing, channel, result);
	return RW_PASS_DONE;
}

static gboolean
rw_run(RwState *st, RwAddress *start, ImtaRewriteResult *result, GError **error)
{
	g_autoptr(RwAddress) a = start;
	g_autofree char *first = rw_address_format(a);
	g_autofree char *msg = NULL;

	for (guint pass = 1; pass <= IMTA_REWRITE_MAX_PASSES; pass++) {
		switch (rw_pass(st, pass, &a, result, error)) {
		case RW_PASS_DONE:
			return TRUE;
		case RW_PASS_FAILED:
			return FALSE;
		case RW_PASS_AGAIN:
			break;
		}
	}
	msg = g_strdup_printf("rewriting %s did not converge after %d passes", first,
			      IMTA_REWRITE_MAX_PASSES);
	rw_trace(st, "loop: %s", msg);
	g_set_error_literal(error, IMTA_REWRITE_ERROR, IMTA_REWRITE_ERROR_LOOP, msg);
	return FALSE;
}

/* ---- public API ------------------------------------------------------- */

static RwAddress *
rw_address_from_parsed(const ImtaAddress *parsed)
{
	RwAddress *a = rw_address_new();

	for (guint i = 0; parsed->route != NULL && parsed->route[i] != NULL; i++)
		g_ptr_array_add(a->route, g_strdup(parsed->route[i]));
	a->local = g_strdup(parsed->local != NULL ? parsed->local : "");
	a->domain = g_strdup(parsed->domain);
	return a;
}

gboolean
imta_rewrite_address(const ImtaRewriteContext *ctx, const char *address,
		     ImtaRewriteResult *result_r, GError **error)
{
	g_autoptr(ImtaAddress) parsed = NULL;
	g_autoptr(GError) parse_error = NULL;
	RwState st = { 0 };
	gboolean ok;

	g_return_val_if_fail(ctx != NULL && ctx->cnf != NULL, FALSE);
	g_return_val_if_fail(address != NULL && result_r != NULL, FALSE);

	memset(result_r, 0, sizeof *result_r);
	st.ctx = ctx;
	st.trace = ctx->trace;
	st.local = imta_cnf_local_channel(ctx->cnf);
	st.env.ctx = ctx;
	st.env.source_name = ctx->source_channel != NULL ? ctx->source_channel : "l";
	st.env.source = imta_cnf_channel_by_name(ctx->cnf, st.env.source_name);
	st.env.destination_name = ctx->destination_channel;
	if (ctx->destination_channel != NULL)
		st.env.destination = imta_cnf_channel_by_name(ctx->cnf, ctx->destination_channel);
	st.bang_first = st.env.source != NULL && st.env.source->bangoverpercent;
	st.tag = g_strdup("");

	rw_trace(&st, "rewriting %s (source channel %s, %s, %s)", address, st.env.source_name,
		 (ctx->flags & IMTA_REWRITE_ENVELOPE) ? "envelope" : "header",
		 (ctx->flags & IMTA_REWRITE_FORWARD) ? "forward" : "backward");
	parsed = imta_address_parse(address, -1, IMTA_ADDRESS_NO_DOMAIN_OK | IMTA_ADDRESS_UTF8,
				    &parse_error);
	if (parsed == NULL) {
		rw_trace(&st, "address error: %s", parse_error->message);
		g_propagate_error(error, g_steal_pointer(&parse_error));
		ok = FALSE;
	} else {
		ok = rw_run(&st, rw_address_from_parsed(parsed), result_r, error);
	}
	if (!ok)
		imta_rewrite_result_clear(result_r);
	g_free(st.tag);
	g_free(st.error_text);
	return ok;
}

void
imta_rewrite_result_clear(ImtaRewriteResult *result)
{
	if (result == NULL)
		return;
	g_free(result->address);
	g_free(result->routing_host);
	g_free(result->error_text);
	g_free(result->tag);
	memset(result, 0, sizeof *result);
}

gboolean
imta_rewrite_check_rules(const ImtaCnf *cnf, GError **error)
{
	g_return_val_if_fail(cnf != NULL, FALSE);

	for (guint i = 0; i < cnf->rules->len; i++) {
		const ImtaRewriteRule *rule = cnf->rules->pdata[i];
		const char *bar = strrchr(rule->pattern, '|');

		if (bar != NULL && bar[1] == '\0') {
			ImtaSourcePos at = rule->pos;

			at.column += (guint)(bar + 1 - rule->pattern);
			imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &at,
					  "expected a pattern after the tag \"%s\"",
					  rule->pattern);
			return FALSE;
		}
		if (!rw_template_check(rule->template_, &rule->template_pos, error))
			return FALSE;
	}
	return TRUE;
}
