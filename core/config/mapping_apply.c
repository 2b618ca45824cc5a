/*
 * mapping_apply.c - applying mapping tables: pattern matching with
 * captures, template substitution, nested "$|table;string|" calls, the
 * control metacharacters $C $E $L $R and the flags of access tables.
 *
 * Matching is backtracking in the order the wildcards promise (greedy '*'
 * tries the longest run first), but a failure memo over (token, position)
 * makes it polynomial: many stars against a long string cost at most
 * tokens x length states instead of an exponential search.  Where a
 * back-reference follows, a memo entry also records the captures it read,
 * and a work budget shared by every entry and nested call of one apply
 * bounds whatever remains.
 */
#include "config.h"

#include <string.h>
#include <arpa/inet.h>
#include <glib.h>

#include <imta/error.h>
#include <imta/log.h>
#include <imta/mappings.h>
#include <imta/number.h>
#include "mappings_private.h"

typedef struct {
	guint steps;           /* matching entries and nested calls */
	guint64 work;          /* entries tried, matcher states, characters scanned / 64 */
	gboolean exhausted;    /* a budget ran out: the whole apply fails */
} ApplyCtx;

typedef struct {
	gsize start;
	gsize length;
} Capture;

typedef enum {
	MATCH_FAIL,
	MATCH_OK,
	MATCH_ABORT,           /* work budget exhausted */
} MatchOutcome;

/* Memory the failure memo may take in one match; rows beyond it are not
 * memoized (the work budget still bounds the search). */
#define MATCH_MEMO_BYTES (8u * 1024 * 1024)

typedef struct {
	const MappingPattern *pat;
	const char *s;
	gsize n;
	Capture *caps;
	/* Failure memo, one row per branching token.  For a token whose
	 * continuation reads no capture (deps == 0) a row is a bitmap: bit e
	 * set = the rest of the pattern fails from position e.  Otherwise
	 * entry e holds the capture stamp (+1) under which it failed, and is
	 * believed only while that stamp is current. */
	gpointer *memo;
	gsize memo_bytes;
	/* Per row: a '*' that failed starting at p fails at every p' >= p
	 * (it would only try a subset of the same ends), under fail_stamp. */
	gsize *fail_from;
	guint32 *fail_stamp;
	/* Bumped whenever a capture that a back-reference reads is assigned;
	 * only ever grows, so a sum over a set of captures identifies their
	 * values for as long as it stays the same. */
	guint32 version[10];
	ApplyCtx *ctx;
} Matcher;

/* ------------------------------------------------------------------ */
/* Pattern matching */

static gboolean
match_casecmp(const char *a, const char *lower, gsize length)
{
	for (gsize i = 0; i < length; i++)
		if (g_ascii_tolower(a[i]) != lower[i])
			return FALSE;
	return TRUE;
}

static gboolean
match_same_text(const char *a, const char *b, gsize length)
{
	for (gsize i = 0; i < length; i++)
		if (g_ascii_tolower(a[i]) != g_ascii_tolower(b[i]))
			return FALSE;
	return TRUE;
}

static gboolean
match_is_ip_char(char c)
{
	return g_ascii_isxdigit(c) || c == '.' || c == ':';
}

/* Is text (not NUL-terminated) an IP address inside the token's network? */
static gboolean
match_ip_in_net(const MappingPatToken *tok, const char *text, gsize length)
{
	char buf[MAPPING_MAX_IP_TEXT + 1];
	guint8 addr[16] = { 0 };
	guint bits = tok->bits;

	memcpy(buf, text, length);
	buf[length] = '\0';
	if (memchr(buf, ':', length) != NULL) {
		if (inet_pton(AF_INET6, buf, addr) != 1)
			return FALSE;
	} else {
		if (tok->v6)
			return FALSE;
		addr[10] = addr[11] = 0xff;
		if (inet_pton(AF_INET, buf, addr + 12) != 1)
			return FALSE;
	}
	for (guint i = 0; i < 16 && bits > 0; i++) {
		guint keep = MIN(bits, 8u);
		guint8 mask = (guint8)(0xff00 >> keep);

		if ((addr[i] & mask) != tok->net[i])
			return FALSE;
		bits -= keep;
	}
	return TRUE;
}

static gboolean
match_charge(Matcher *m, gsize units)
{
	m->ctx->work += units;
	return m->ctx->work <= MAPPING_MAX_WORK;
}

static MatchOutcome match_from(Matcher *m, guint pi, gsize si);

static guint32
match_stamp(const Matcher *m, guint deps)
{
	guint32 sum = 0;

	for (guint k = 0; deps != 0; k++, deps >>= 1)
		if (deps & 1)
			sum += m->version[k];
	return sum;
}

static gpointer
match_memo_row(Matcher *m, gint row, gboolean stamped)
{
	gsize bytes = stamped ? (m->n + 1) * sizeof(guint32) : m->n / 8 + 1;

	if (m->memo[row] != NULL)
		return m->memo[row];
	if (m->memo_bytes + bytes > MATCH_MEMO_BYTES)
		return NULL;
	m->memo_bytes += bytes;
	m->ctx->work += bytes / 256;
	m->memo[row] = g_malloc0(bytes);
	return m->memo[row];
}

static void
match_assign(Matcher *m, const MappingPatToken *tok, gsize start, gsize length)
{
	m->caps[tok->capture].start = start;
	m->caps[tok->capture].length = length;
	if (tok->bump)
		m->version[tok->capture]++;
}

/* The rest of the pattern after branching token pi, from position e. */
static MatchOutcome
match_rest(Matcher *m, guint pi, gsize e)
{
	const MappingPatToken *tok = &m->pat->tokens[pi];
	gint row = tok->memo_row;
	guint32 stamp, *stamps;
	guint8 *bits;
	MatchOutcome r;

	if (m->memo == NULL || row < 0)
		return match_from(m, pi + 1, e);
	if (tok->deps == 0) {
		bits = m->memo[row];
		if (bits != NULL && (bits[e / 8] & (1u << (e % 8))))
			return MATCH_FAIL;
		r = match_from(m, pi + 1, e);
		if (r == MATCH_FAIL && (bits = match_memo_row(m, row, FALSE)) != NULL)
			bits[e / 8] |= (guint8)(1u << (e % 8));
		return r;
	}
	/* Later tokens assign only later captures, so the stamp cannot change
	 * during the call below. */
	stamp = match_stamp(m, tok->deps) + 1;
	stamps = m->memo[row];
	if (stamps != NULL && stamps[e] == stamp)
		return MATCH_FAIL;
	r = match_from(m, pi + 1, e);
	if (r == MATCH_FAIL && (stamps = match_memo_row(m, row, TRUE)) != NULL)
		stamps[e] = stamp;
	return r;
}

/* Fewest characters the tokens after pi need, and whether exactly that. */
static void
match_rest_length(const MappingPattern *pat, guint pi, gsize *min_r, gboolean *fixed_r)
{
	if (pi + 1 >= pat->n_tokens) {
		*min_r = 0;
		*fixed_r = TRUE;
		return;
	}
	*min_r = pat->tokens[pi + 1].min_from;
	*fixed_r = pat->tokens[pi + 1].fixed_from;
}

static MatchOutcome
match_star(Matcher *m, guint pi, gsize si)
{
	const MappingPatToken *tok = &m->pat->tokens[pi];
	const MappingPatToken *next = pi + 1 < m->pat->n_tokens ? tok + 1 : NULL;
	/* The fail_from shortcut needs the star's own capture to be unread:
	 * otherwise another start gives the rest different input. */
	gboolean bounded = m->memo != NULL && tok->memo_row >= 0 && !tok->bump;
	char first = next != NULL && next->kind == MAPPING_PAT_LITERAL
		? m->pat->literals[next->lit_offset] : '\0';
	guint32 stamp = bounded ? match_stamp(m, tok->deps) : 0;
	gsize rest_min, lo = si, hi;
	gboolean rest_fixed;

	match_rest_length(m->pat, pi, &rest_min, &rest_fixed);
	if (m->n - si < rest_min)
		return MATCH_FAIL;
	hi = m->n - rest_min;
	if (rest_fixed)
		lo = hi;   /* the rest has one possible start */
	if (bounded && m->fail_stamp[tok->memo_row] == stamp) {
		gsize fail_from = m->fail_from[tok->memo_row];

		if (si >= fail_from)
			return MATCH_FAIL;
		/* Every end at or beyond fail_from was tried and failed. */
		hi = MIN(hi, fail_from - 1);
	}
	if (hi < lo)
		return MATCH_FAIL;
	/* The scan below compares up to one character per end position. */
	if (!match_charge(m, (hi - lo) / 64 + 1))
		return MATCH_ABORT;
	for (gsize k = 0; k <= hi - lo; k++) {
		gsize e = tok->lazy ? lo + k : hi - k;
		MatchOutcome r;

		if (first != '\0' && g_ascii_tolower(m->s[e]) != first)
			continue;
		if (!match_charge(m, 1))
			return MATCH_ABORT;
		match_assign(m, tok, si, e - si);
		r = match_rest(m, pi, e);
		if (r != MATCH_FAIL)
			return r;
	}
	if (bounded) {
		m->fail_from[tok->memo_row] = si;
		m->fail_stamp[tok->memo_row] = stamp;
	}
	return MATCH_FAIL;
}

static MatchOutcome
match_ip(Matcher *m, guint pi, gsize si)
{
	const MappingPatToken *tok = &m->pat->tokens[pi];
	gsize run = 0;

	while (si + run < m->n && run < MAPPING_MAX_IP_TEXT && match_is_ip_char(m->s[si + run]))
		run++;
	for (gsize len = run; len > 0; len--) {
		MatchOutcome r;

		if (!match_charge(m, 4))
			return MATCH_ABORT;
		if (!match_ip_in_net(tok, m->s + si, len))
			continue;
		match_assign(m, tok, si, len);
		r = match_rest(m, pi, si + len);
		if (r != MATCH_FAIL)
			return r;
	}
	return MATCH_FAIL;
}

/* Match tokens pi.. against s[si..]; deterministic tokens are walked in a
 * loop, so recursion only happens at branching tokens. */
static MatchOutcome
match_from(Matcher *m, guint pi, gsize si)
{
	for (;;) {
		const MappingPatToken *tok;
		const Capture *ref;

		if (pi == m->pat->n_tokens)
			return si == m->n ? MATCH_OK : MATCH_FAIL;
		tok = &m->pat->tokens[pi];
		if (m->n - si < tok->min_from)
			return MATCH_FAIL;
		if (!match_charge(m, 1))
			return MATCH_ABORT;
		switch (tok->kind) {
		case MAPPING_PAT_LITERAL:
			if (!match_charge(m, tok->lit_length / 16) ||
			    !match_casecmp(m->s + si, m->pat->literals + tok->lit_offset,
					   tok->lit_length))
				return m->ctx->work > MAPPING_MAX_WORK ? MATCH_ABORT : MATCH_FAIL;
			si += tok->lit_length;
			break;
		case MAPPING_PAT_ONE:
			match_assign(m, tok, si, 1);
			si++;
			break;
		case MAPPING_PAT_BACKREF:
			ref = &m->caps[tok->capture];
			if (!match_charge(m, ref->length / 16))
				return MATCH_ABORT;
			if (m->n - si < ref->length ||
			    !match_same_text(m->s + si, m->s + ref->start, ref->length))
				return MATCH_FAIL;
			si += ref->length;
			break;
		case MAPPING_PAT_STAR:
			return match_star(m, pi, si);
		case MAPPING_PAT_IP:
			return match_ip(m, pi, si);
		}
		pi++;
	}
}

/* Match the whole of s against the pattern; caps gets n_captures slots. */
static MatchOutcome
match_pattern(ApplyCtx *ctx, const MappingPattern *pat, const char *s, gsize n, Capture *caps)
{
	Matcher m = { .pat = pat, .s = s, .n = n, .caps = caps, .ctx = ctx };
	MatchOutcome r;

	/* With one branching token the search reaches it once: nothing to memo. */
	if (pat->n_memo_rows >= 2) {
		m.memo = g_new0(gpointer, pat->n_memo_rows);
		m.fail_from = g_new(gsize, pat->n_memo_rows);
		m.fail_stamp = g_new0(guint32, pat->n_memo_rows);
		for (guint i = 0; i < pat->n_memo_rows; i++)
			m.fail_from[i] = n + 1;
	}
	r = match_from(&m, 0, 0);
	if (m.memo != NULL) {
		for (guint i = 0; i < pat->n_memo_rows; i++)
			g_free(m.memo[i]);
		g_free(m.memo);
		g_free(m.fail_from);
		g_free(m.fail_stamp);
	}
	return r;
}

GStrv
imta_mapping_match_pattern(const char *pattern, const char *input)
{
	MappingPattern pat;
	MappingDiag diag = { 0, NULL };
	ApplyCtx ctx = { 0 };
	g_autofree Capture *caps = NULL;
	GStrv captures;
	gsize n;

	if (pattern == NULL || input == NULL)
		return NULL;
	n = strlen(input);
	/* The matcher recurses once per wildcard: keep to the file's limit. */
	if (n > MAPPING_MAX_STRING || strlen(pattern) > IMTA_MAPPING_MAX_PATTERN)
		return NULL;
	if (!mapping_pattern_compile(pattern, strlen(pattern), &pat, &diag)) {
		mapping_diag_clear(&diag);
		return NULL;
	}
	caps = g_new0(Capture, pat.n_captures + 1);
	if (match_pattern(&ctx, &pat, input, n, caps) != MATCH_OK) {
		mapping_pattern_clear(&pat);
		return NULL;
	}
	captures = g_new0(char *, pat.n_captures + 1);
	for (guint i = 0; i < pat.n_captures; i++)
		captures[i] = g_strndup(input + caps[i].start, caps[i].length);
	mapping_pattern_clear(&pat);
	return captures;
}

/* ------------------------------------------------------------------ */
/* Templates */

static gboolean apply_table(ApplyCtx *ctx, const ImtaMappingTable *table, const char *input,
			    guint depth, ImtaMappingResult *result_r);

static gboolean expand_seq(ApplyCtx *ctx, const MappingTplSeq *seq, const char *input,
			   const Capture *caps, guint depth, GString *out);

/* A nested "$|table;argument|" call; FALSE when the entry must fail. */
static gboolean
expand_call(ApplyCtx *ctx, const MappingTplItem *item, const char *input, const Capture *caps,
	    guint depth, GString *out)
{
	g_autoptr(GString) argument = g_string_new(NULL);
	ImtaMappingResult sub = { 0 };
	gboolean ok;

	if (item->table == NULL || depth >= IMTA_MAPPING_MAX_DEPTH)
		return FALSE;
	if (++ctx->steps > IMTA_MAPPING_MAX_STEPS) {
		ctx->exhausted = TRUE;
		return FALSE;
	}
	if (!expand_seq(ctx, &item->argument, input, caps, depth, argument))
		return FALSE;
	ok = apply_table(ctx, item->table, argument->str, depth + 1, &sub);
	/* A rejecting entry ($N) in the called table is a failed lookup: this
	 * is what lets INTERNAL_IP end with "*  $N". */
	if (ok && !(sub.flags & IMTA_MAP_FLAG_N))
		g_string_append(out, sub.result);
	else
		ok = FALSE;
	imta_mapping_result_clear(&sub);
	return ok;
}

static gboolean
expand_seq(ApplyCtx *ctx, const MappingTplSeq *seq, const char *input, const Capture *caps,
	   guint depth, GString *out)
{
	for (guint i = 0; i < seq->n_items; i++) {
		const MappingTplItem *item = &seq->items[i];

		switch (item->kind) {
		case MAPPING_TPL_TEXT:
			g_string_append_len(out, item->text, (gssize)item->text_length);
			break;
		case MAPPING_TPL_CAPTURE:
			g_string_append_len(out, input + caps[item->capture].start,
					    (gssize)caps[item->capture].length);
			break;
		case MAPPING_TPL_CALL:
			if (!expand_call(ctx, item, input, caps, depth, out))
				return FALSE;
			break;
		}
		if (out->len > MAPPING_MAX_STRING)
			return FALSE;
	}
	return TRUE;
}

/* ------------------------------------------------------------------ */
/* Results */

static void
result_take_field(const char **p, char **field_r)
{
	const char *bar = strchr(*p, '|');
	gsize length = bar != NULL ? (gsize)(bar - *p) : strlen(*p);

	g_free(*field_r);
	*field_r = g_strndup(*p, length);
	*p += length + (bar != NULL ? 1 : 0);
}

static gint
result_delay(const char *text)
{
	gint64 value = 0;

	if (!imta_parse_int(text, &value, NULL))
		return 0;
	return (gint)CLAMP(value, G_MININT, G_MAXINT);
}

/* Flags that take an argument take it, in this fixed order, from the
 * leading '|'-separated fields of the text. */
static void
result_fill(ImtaMappingResult *result, const char *text, guint flags)
{
	const char *p = text;
	g_autofree char *delay = NULL;
	g_autofree char *log_match = NULL;

	result->matched = TRUE;
	result->flags = flags;
	if (flags & IMTA_MAP_FLAG_D) {
		result_take_field(&p, &delay);
		result->delay = result_delay(delay);
	}
	if (flags & IMTA_MAP_FLAG_J)
		result_take_field(&p, &result->from);
	if (flags & IMTA_MAP_FLAG_K)
		result_take_field(&p, &result->sender);
	if (flags & IMTA_MAP_FLAG_LOG_MATCH)
		result_take_field(&p, &log_match);
	if (flags & IMTA_MAP_FLAG_LOG_DENY)
		result_take_field(&p, &result->log_deny_text);
	if (log_match != NULL)
		result->log_text = g_steal_pointer(&log_match);
	else if (result->log_deny_text != NULL)
		result->log_text = g_strdup(result->log_deny_text);
	result->result = g_strdup(p);
}

void
imta_mapping_result_clear(ImtaMappingResult *result)
{
	if (result == NULL)
		return;
	g_free(result->result);
	g_free(result->from);
	g_free(result->sender);
	g_free(result->log_text);
	g_free(result->log_deny_text);
	memset(result, 0, sizeof(*result));
}

/* ------------------------------------------------------------------ */
/* Tables */

typedef struct {
	char *input;            /* what the next entry sees */
	char *output;           /* text of the last matching entry */
	guint flags;            /* its flags */
	gboolean matched;
} ApplyState;

/* Try one entry; TRUE and the output in *out_r when it matches. */
static gboolean
apply_entry(ApplyCtx *ctx, const MappingEntry *entry, const char *input, gsize length,
	    guint depth, GString **out_r)
{
	Capture small[16];
	g_autofree Capture *heap = NULL;
	Capture *caps = small;
	g_autoptr(GString) out = NULL;
	MatchOutcome r;

	if (entry->template.unsupported)
		return FALSE;
	if (++ctx->work > MAPPING_MAX_WORK) {
		ctx->exhausted = TRUE;
		return FALSE;
	}
	if (entry->pattern.n_captures > G_N_ELEMENTS(small))
		caps = heap = g_new0(Capture, entry->pattern.n_captures);
	r = match_pattern(ctx, &entry->pattern, input, length, caps);
	if (r == MATCH_ABORT)
		ctx->exhausted = TRUE;
	if (r != MATCH_OK)
		return FALSE;
	if (++ctx->steps > IMTA_MAPPING_MAX_STEPS) {
		ctx->exhausted = TRUE;
		return FALSE;
	}
	out = g_string_new(NULL);
	if (!expand_seq(ctx, &entry->template.seq, input, caps, depth, out))
		return FALSE;
	*out_r = g_steal_pointer(&out);
	return TRUE;
}

static gboolean
apply_table(ApplyCtx *ctx, const ImtaMappingTable *table, const char *input, guint depth,
	    ImtaMappingResult *result_r)
{
	ApplyState st = { g_strdup(input), NULL, 0, FALSE };
	guint n = table->entries->len;
	guint i = 0;
	gboolean extra_pass_due = FALSE, in_extra_pass = FALSE;
	gsize input_length = strlen(input);

	memset(result_r, 0, sizeof(*result_r));
	if (input_length > MAPPING_MAX_STRING)
		n = 0;
	for (;;) {
		const MappingEntry *entry;
		GString *out = NULL;
		guint controls;

		if (i >= n) {
			if (!extra_pass_due)
				break;
			extra_pass_due = FALSE;
			in_extra_pass = TRUE;
			i = 0;
			continue;
		}
		if (ctx->exhausted)
			break;
		entry = g_ptr_array_index(table->entries, i);
		if (!apply_entry(ctx, entry, st.input, input_length, depth, &out)) {
			if (ctx->exhausted)
				break;
			i++;
			continue;
		}
		g_free(st.output);
		st.output = g_string_free(out, FALSE);
		st.flags = entry->template.flags;
		st.matched = TRUE;
		controls = entry->template.controls;
		if (controls & MAPPING_CTL_E)
			break;
		if (!(controls & (MAPPING_CTL_R | MAPPING_CTL_L | MAPPING_CTL_C)))
			break;
		g_free(st.input);
		st.input = g_strdup(st.output);
		input_length = strlen(st.input);
		if (controls & MAPPING_CTL_R) {
			extra_pass_due = in_extra_pass = FALSE;
			i = 0;
			continue;
		}
		if ((controls & MAPPING_CTL_L) && !in_extra_pass)
			extra_pass_due = TRUE;
		i++;
	}
	if (st.matched && !ctx->exhausted)
		result_fill(result_r, st.output, st.flags);
	g_free(st.input);
	g_free(st.output);
	return result_r->matched;
}

gboolean
imta_mapping_apply(const ImtaMappings *mappings, const ImtaMappingTable *table,
		   const char *input, guint input_flags, ImtaMappingResult *result_r)
{
	ApplyCtx ctx = { 0 };

	g_return_val_if_fail(result_r != NULL, FALSE);
	memset(result_r, 0, sizeof(*result_r));
	if (table == NULL || input == NULL)
		return FALSE;
	apply_table(&ctx, table, input, 0, result_r);
	if (ctx.exhausted) {
		g_autofree char *where = imta_source_pos_format(&table->pos);

		imta_mapping_result_clear(result_r);
		imta_log(IMTA_LOG_WARNING, "%s: mapping table %s: gave up after %u matching "
			 "entries (a $R or $L loop?) or too much matching work; treated as no "
			 "match", where, table->name, MIN(ctx.steps, IMTA_MAPPING_MAX_STEPS));
	}
	return result_r->matched;
}

gboolean
imta_mappings_apply_named(const ImtaMappings *mappings, const char *name, const char *input,
			  ImtaMappingResult *result_r)
{
	return imta_mapping_apply(mappings, imta_mappings_table(mappings, name), input, 0,
				  result_r);
}
