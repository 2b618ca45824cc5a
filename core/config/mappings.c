/*
 * mappings.c - the mappings file: table syntax, the compiled form of
 * patterns and templates, and the storage of the loaded tables.
 *
 * Everything that can be wrong with a table is found here, at load time,
 * and reported with its file, line and column; mapping_apply.c then runs
 * the compiled entries without ever parsing text.
 */
#include "config.h"

#include <string.h>
#include <arpa/inet.h>
#include <glib.h>

#include <imta/cfgfile.h>
#include <imta/error.h>
#include <imta/log.h>
#include <imta/mappings.h>
#include "mappings_private.h"

#define MAPPINGS_CFG_FLAGS (IMTA_CFG_INCLUDES | IMTA_CFG_CONTINUATION | IMTA_CFG_KEEP_BLANK)

/* ------------------------------------------------------------------ */
/* Diagnostics */

static gboolean
diag_set(MappingDiag *diag, gsize offset, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static gboolean
diag_set(MappingDiag *diag, gsize offset, const char *fmt, ...)
{
	va_list args;

	diag->offset = offset;
	va_start(args, fmt);
	diag->message = g_strdup_vprintf(fmt, args);
	va_end(args);
	return FALSE;
}

static void
diag_warn(GArray *warnings, gsize offset, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static void
diag_warn(GArray *warnings, gsize offset, const char *fmt, ...)
{
	va_list args;
	MappingDiag w = { offset, NULL };

	if (warnings == NULL)
		return;
	va_start(args, fmt);
	w.message = g_strdup_vprintf(fmt, args);
	va_end(args);
	g_array_append_val(warnings, w);
}

void
mapping_diag_clear(MappingDiag *diag)
{
	g_clear_pointer(&diag->message, g_free);
}

static void
diag_array_clear(gpointer p)
{
	mapping_diag_clear(p);
}

/* ------------------------------------------------------------------ */
/* Patterns */

void
mapping_pattern_clear(MappingPattern *pattern)
{
	g_clear_pointer(&pattern->tokens, g_free);
	g_clear_pointer(&pattern->literals, g_free);
	pattern->n_tokens = 0;
}

/* Parse "address/bits" (bits optional) into a network over 128 bits,
 * IPv4 stored as an IPv4-mapped IPv6 address. */
static gboolean
pattern_parse_network(const char *spec, gsize length, MappingPatToken *tok)
{
	g_autofree char *copy = g_strndup(spec, length);
	char *slash = strchr(copy, '/');
	gboolean v6 = strchr(copy, ':') != NULL;
	guint max_bits = v6 ? 128 : 32;
	guint64 bits = max_bits;
	guint8 addr[16] = { 0 };

	if (slash != NULL) {
		*slash = '\0';
		if (slash[1] == '\0' || !g_ascii_isdigit(slash[1]) ||
		    !g_ascii_string_to_unsigned(slash + 1, 10, 0, max_bits, &bits, NULL))
			return FALSE;
	}
	if (v6) {
		if (inet_pton(AF_INET6, copy, addr) != 1)
			return FALSE;
	} else {
		addr[10] = addr[11] = 0xff;
		if (inet_pton(AF_INET, copy, addr + 12) != 1)
			return FALSE;
		bits += 96;
	}
	for (guint i = 0; i < 16; i++) {
		guint keep = bits >= (i + 1) * 8 ? 8 : bits > i * 8 ? (guint)bits - i * 8 : 0;

		tok->net[i] = addr[i] & (guint8)(0xff00 >> keep);
	}
	tok->bits = (guint)bits;
	tok->v6 = v6;
	return TRUE;
}

static MappingPatToken *
pattern_add(GArray *tokens, MappingPatKind kind)
{
	MappingPatToken tok = { .kind = kind, .memo_row = -1 };

	g_array_append_val(tokens, tok);
	return &g_array_index(tokens, MappingPatToken, tokens->len - 1);
}

static void
pattern_add_char(GArray *tokens, GString *literals, char c)
{
	MappingPatToken *last = tokens->len > 0
		? &g_array_index(tokens, MappingPatToken, tokens->len - 1) : NULL;

	if (last == NULL || last->kind != MAPPING_PAT_LITERAL) {
		last = pattern_add(tokens, MAPPING_PAT_LITERAL);
		last->lit_offset = literals->len;
	}
	g_string_append_c(literals, g_ascii_tolower(c));
	last->lit_length++;
}

/* One "$x" sequence at text[i] (text[i] == '$'); returns the offset after it. */
static gboolean
pattern_dollar(const char *text, gsize length, gsize i, GArray *tokens, GString *literals,
	       guint *n_captures, gsize *next_r, MappingDiag *diag)
{
	char d;
	MappingPatToken *tok;

	if (i + 1 >= length)
		return diag_set(diag, i, "expected a character after '$' (write \"$$\" for a "
				"literal dollar sign)");
	d = text[i + 1];
	if (g_ascii_isdigit(d)) {
		guint n = (guint)(d - '0');

		if (i + 2 >= length || text[i + 2] != '*')
			return diag_set(diag, i, "expected '*' after \"$%c\" (a back-reference "
					"is written \"$n*\")", d);
		if (n >= *n_captures)
			return diag_set(diag, i, "back-reference \"$%u*\" refers to no earlier "
					"wildcard (%u before it)", n, *n_captures);
		tok = pattern_add(tokens, MAPPING_PAT_BACKREF);
		tok->capture = n;
		*next_r = i + 3;
		return TRUE;
	}
	if (d == '(') {
		const char *close = memchr(text + i + 2, ')', length - (i + 2));

		if (close == NULL)
			return diag_set(diag, i, "expected ')' closing \"$(\"");
		tok = pattern_add(tokens, MAPPING_PAT_IP);
		if (!pattern_parse_network(text + i + 2, (gsize)(close - (text + i + 2)), tok))
			return diag_set(diag, i + 2, "expected an IPv4 or IPv6 network "
					"(address/bits), got \"%.*s\"",
					(int)(close - (text + i + 2)), text + i + 2);
		tok->capture = (*n_captures)++;
		*next_r = (gsize)(close - text) + 1;
		return TRUE;
	}
	if (d == '_') {
		if (i + 2 >= length || text[i + 2] != '*')
			return diag_set(diag, i, "expected '*' after \"$_\" (minimal matching "
					"applies to a '*')");
		tok = pattern_add(tokens, MAPPING_PAT_STAR);
		tok->lazy = TRUE;
		tok->capture = (*n_captures)++;
		*next_r = i + 3;
		return TRUE;
	}
	if (g_ascii_isalpha(d))
		return diag_set(diag, i, "unknown pattern metacharacter \"$%c\" (quote "
				"special characters as \"$*\", \"$%%\", \"$ \" or \"$$\")", d);
	pattern_add_char(tokens, literals, d);
	*next_r = i + 2;
	return TRUE;
}

/* Length bounds of every pattern suffix, which let the matcher skip end
 * positions of a '*' that cannot leave enough text for the rest. */
static void
pattern_assign_lengths(MappingPattern *pattern)
{
	gsize min = 0;
	gboolean fixed = TRUE;

	for (guint i = pattern->n_tokens; i-- > 0;) {
		MappingPatToken *tok = &pattern->tokens[i];

		switch (tok->kind) {
		case MAPPING_PAT_LITERAL:
			min += tok->lit_length;
			break;
		case MAPPING_PAT_ONE:
			min++;
			break;
		case MAPPING_PAT_IP:
			min += 2;   /* "::" */
			fixed = FALSE;
			break;
		case MAPPING_PAT_STAR:
		case MAPPING_PAT_BACKREF:
			fixed = FALSE;
			break;
		}
		tok->min_from = min;
		tok->fixed_from = fixed;
	}
}

/* Every branching token ('*', "$(...)") gets a row of the matcher's
 * failure memo.  The outcome of the rest of the pattern after a token
 * depends on the position and, when back-references follow, on the
 * captures they read: those are recorded in `deps` so the matcher can tell
 * when a memo entry still applies. */
static void
pattern_assign_memo_rows(MappingPattern *pattern)
{
	gint last_ref[10];

	for (guint k = 0; k < G_N_ELEMENTS(last_ref); k++)
		last_ref[k] = -1;
	for (guint i = 0; i < pattern->n_tokens; i++)
		if (pattern->tokens[i].kind == MAPPING_PAT_BACKREF)
			last_ref[pattern->tokens[i].capture] = (gint)i;
	pattern->n_memo_rows = 0;
	for (guint i = 0; i < pattern->n_tokens; i++) {
		MappingPatToken *tok = &pattern->tokens[i];

		if (tok->kind == MAPPING_PAT_LITERAL || tok->kind == MAPPING_PAT_BACKREF)
			continue;
		if (tok->capture < G_N_ELEMENTS(last_ref) && last_ref[tok->capture] > (gint)i)
			tok->bump = TRUE;
		if (tok->kind == MAPPING_PAT_ONE)
			continue;
		for (guint k = 0; k < G_N_ELEMENTS(last_ref) && k <= tok->capture; k++)
			if (last_ref[k] > (gint)i)
				tok->deps |= (guint16)(1u << k);
		tok->memo_row = (gint)pattern->n_memo_rows++;
	}
}

gboolean
mapping_pattern_compile(const char *text, gsize length, MappingPattern *pattern_r,
			MappingDiag *diag_r)
{
	g_autoptr(GArray) tokens = g_array_new(FALSE, FALSE, sizeof(MappingPatToken));
	g_autoptr(GString) literals = g_string_new(NULL);
	guint n_captures = 0;
	gsize i = 0;

	memset(pattern_r, 0, sizeof(*pattern_r));
	while (i < length) {
		char c = text[i];
		MappingPatToken *tok;

		if (c == '*' || c == '%') {
			tok = pattern_add(tokens, c == '*' ? MAPPING_PAT_STAR : MAPPING_PAT_ONE);
			tok->capture = n_captures++;
			i++;
		} else if (c == '$') {
			if (!pattern_dollar(text, length, i, tokens, literals, &n_captures, &i,
					    diag_r))
				return FALSE;
		} else {
			pattern_add_char(tokens, literals, c);
			i++;
		}
	}
	pattern_r->n_tokens = tokens->len;
	pattern_r->tokens = (MappingPatToken *)(void *)g_array_free(g_steal_pointer(&tokens),
								    FALSE);
	pattern_r->literals = g_string_free(g_steal_pointer(&literals), FALSE);
	pattern_r->n_captures = n_captures;
	pattern_assign_lengths(pattern_r);
	pattern_assign_memo_rows(pattern_r);
	return TRUE;
}

/* ------------------------------------------------------------------ */
/* Templates */

static void
tpl_seq_clear(MappingTplSeq *seq)
{
	for (guint i = 0; i < seq->n_items; i++) {
		g_free(seq->items[i].text);
		tpl_seq_clear(&seq->items[i].argument);
	}
	g_clear_pointer(&seq->items, g_free);
	seq->n_items = 0;
}

void
mapping_template_clear(MappingTemplate *template)
{
	tpl_seq_clear(&template->seq);
}

typedef struct {
	const char *text;
	gsize length;
	gsize i;
	guint n_captures;
	guint depth;              /* nesting of "$|...|" */
	MappingTemplate *tpl;
	GArray *warnings;
	MappingDiag *diag;
} TplParser;

static void
tpl_seq_steal(GArray *items, MappingTplSeq *seq)
{
	seq->n_items = items->len;
	seq->items = (MappingTplItem *)(void *)g_array_free(items, FALSE);
}

static void
tpl_items_free(GArray *items)
{
	MappingTplSeq seq;

	tpl_seq_steal(items, &seq);
	tpl_seq_clear(&seq);
}

static void
tpl_add_text(GArray *items, const char *text, gsize length)
{
	MappingTplItem *last = items->len > 0
		? &g_array_index(items, MappingTplItem, items->len - 1) : NULL;
	MappingTplItem item = { .kind = MAPPING_TPL_TEXT };

	if (last != NULL && last->kind == MAPPING_TPL_TEXT) {
		last->text = g_realloc(last->text, last->text_length + length + 1);
		memcpy(last->text + last->text_length, text, length);
		last->text_length += length;
		last->text[last->text_length] = '\0';
		return;
	}
	item.text = g_strndup(text, length);
	item.text_length = length;
	g_array_append_val(items, item);
}

/* Skip an unsupported "$<open>...<close>" construct starting at p->i. */
static gboolean
tpl_skip_unsupported(TplParser *p, char close, const char *what)
{
	gsize start = p->i;
	gsize i = p->i + 2;
	guint nesting = 0;

	while (i < p->length) {
		char c = p->text[i];

		if (c == '$' && i + 1 < p->length) {
			if (close == '}' && p->text[i + 1] == '{')
				nesting++;
			i += 2;
			continue;
		}
		if (c == close) {
			if (nesting == 0)
				break;
			nesting--;
		}
		i++;
	}
	if (i >= p->length)
		return diag_set(p->diag, start, "expected '%c' closing \"$%c\"", close,
				p->text[start + 1]);
	diag_warn(p->warnings, start, "%s \"$%c...%c\" are not supported: this entry never "
		  "matches", what, p->text[start + 1], close);
	p->tpl->unsupported = TRUE;
	p->i = i + 1;
	return TRUE;
}

static gboolean tpl_parse_seq(TplParser *p, GArray *items, gboolean in_call);

static gboolean
tpl_valid_table_char(char c)
{
	return g_ascii_isalnum(c) || c == '_' || c == '-' || c == '.';
}

static gboolean
tpl_parse_call(TplParser *p, GArray *items)
{
	gsize start = p->i;
	gsize name_start = p->i + 2;
	gsize i = name_start;
	MappingTplItem item = { .kind = MAPPING_TPL_CALL };
	GArray *argument;

	while (i < p->length && tpl_valid_table_char(p->text[i]))
		i++;
	if (i == name_start || !g_ascii_isalpha(p->text[name_start]) || i >= p->length ||
	    p->text[i] != ';')
		return diag_set(p->diag, start, "expected \"$|table;string|\" (a table name "
				"and ';' after \"$|\")");
	if (p->depth >= IMTA_MAPPING_MAX_DEPTH)
		return diag_set(p->diag, start, "\"$|...|\" calls nested deeper than %d",
				IMTA_MAPPING_MAX_DEPTH);
	p->i = i + 1;
	p->depth++;
	argument = g_array_new(FALSE, FALSE, sizeof(MappingTplItem));
	if (!tpl_parse_seq(p, argument, TRUE)) {
		tpl_items_free(argument);
		return FALSE;
	}
	p->depth--;
	if (p->i > p->length) {
		tpl_items_free(argument);
		return diag_set(p->diag, start, "expected '|' closing \"$|%.*s;\"",
				(int)(i - name_start), p->text + name_start);
	}
	item.text = g_strndup(p->text + name_start, i - name_start);
	item.text_length = i - name_start;
	tpl_seq_steal(argument, &item.argument);
	g_array_append_val(items, item);
	return TRUE;
}

static gboolean
tpl_flag(TplParser *p, char d, gboolean in_call)
{
	static const struct {
		char letter;
		guint flag;
	} flags[] = {
		{ 'Y', IMTA_MAP_FLAG_Y }, { 'N', IMTA_MAP_FLAG_N }, { 'n', IMTA_MAP_FLAG_N },
		{ 'F', IMTA_MAP_FLAG_N }, { 'f', IMTA_MAP_FLAG_N }, { 'B', IMTA_MAP_FLAG_B },
		{ 'H', IMTA_MAP_FLAG_H }, { 'V', IMTA_MAP_FLAG_V }, { 'Z', IMTA_MAP_FLAG_V },
		{ 'D', IMTA_MAP_FLAG_D }, { 'J', IMTA_MAP_FLAG_J }, { 'K', IMTA_MAP_FLAG_K },
		{ '<', IMTA_MAP_FLAG_LOG_MATCH }, { '>', IMTA_MAP_FLAG_LOG_DENY },
		{ '!', IMTA_MAP_FLAG_NO_VACATION },
		{ 'C', 0 }, { 'E', 0 }, { 'L', 0 }, { 'R', 0 },
	};
	static const char controls[] = "CELR";

	for (guint k = 0; k < G_N_ELEMENTS(flags); k++) {
		if (flags[k].letter != d)
			continue;
		if (in_call)
			return diag_set(p->diag, p->i, "expected a string inside \"$|...|\", got "
					"the flag \"$%c\" (flags belong outside the call)", d);
		if (flags[k].flag != 0)
			p->tpl->flags |= flags[k].flag;
		else
			p->tpl->controls |= 1u << (strchr(controls, d) - controls);
		return TRUE;
	}
	diag_warn(p->warnings, p->i, "unknown flag \"$%c\" ignored", d);
	return TRUE;
}

static gboolean
tpl_parse_dollar(TplParser *p, GArray *items, gboolean in_call)
{
	char d;

	if (p->i + 1 >= p->length)
		return diag_set(p->diag, p->i, "expected a character after '$' (write \"$$\" "
				"for a literal dollar sign)");
	d = p->text[p->i + 1];
	if (g_ascii_isdigit(d)) {
		guint n = (guint)(d - '0');
		MappingTplItem item = { .kind = MAPPING_TPL_CAPTURE, .capture = n };

		if (n >= p->n_captures) {
			if (p->n_captures == 0)
				return diag_set(p->diag, p->i, "expected no \"$n\" substitution (the "
						"pattern has no wildcards), got \"$%u\"", n);
			return diag_set(p->diag, p->i, "expected \"$0\" to \"$%u\" (the pattern "
					"has %u wildcard%s), got \"$%u\"", p->n_captures - 1,
					p->n_captures, p->n_captures == 1 ? "" : "s", n);
		}
		g_array_append_val(items, item);
		p->i += 2;
		return TRUE;
	}
	switch (d) {
	case '|':
		return tpl_parse_call(p, items);
	case '[':
		return tpl_skip_unsupported(p, ']', "site routine calls");
	case '#':
		return tpl_skip_unsupported(p, '#', "sequence number substitutions");
	case ']':
		return tpl_skip_unsupported(p, '[', "LDAP URL substitutions");
	case '{':
		return tpl_skip_unsupported(p, '}', "database substitutions");
	default:
		break;
	}
	if (g_ascii_isalpha(d) || d == '<' || d == '>' || d == '!') {
		if (!tpl_flag(p, d, in_call))
			return FALSE;
		p->i += 2;
		return TRUE;
	}
	tpl_add_text(items, &d, 1);
	p->i += 2;
	return TRUE;
}

/* Parse items up to the end of the text, or in a call up to and including
 * its closing '|' (p->i is then just past it). */
static gboolean
tpl_parse_seq(TplParser *p, GArray *items, gboolean in_call)
{
	while (p->i < p->length) {
		char c = p->text[p->i];

		if (c == '|' && in_call) {
			p->i++;
			return TRUE;
		}
		if (c != '$') {
			gsize start = p->i;

			while (p->i < p->length && p->text[p->i] != '$' &&
			       !(in_call && p->text[p->i] == '|'))
				p->i++;
			tpl_add_text(items, p->text + start, p->i - start);
			continue;
		}
		if (!tpl_parse_dollar(p, items, in_call))
			return FALSE;
	}
	if (in_call)
		p->i = p->length + 1;   /* tells the caller the '|' is missing */
	return TRUE;
}

gboolean
mapping_template_compile(const char *text, gsize length, guint n_captures,
			 MappingTemplate *template_r, GArray *warnings, MappingDiag *diag_r)
{
	TplParser p = { text, length, 0, n_captures, 0, template_r, warnings, diag_r };
	GArray *items = g_array_new(FALSE, FALSE, sizeof(MappingTplItem));

	memset(template_r, 0, sizeof(*template_r));
	if (!tpl_parse_seq(&p, items, FALSE)) {
		tpl_items_free(items);
		return FALSE;
	}
	tpl_seq_steal(items, &template_r->seq);
	return TRUE;
}

/* ------------------------------------------------------------------ */
/* Table storage */

static void
mapping_entry_free(gpointer p)
{
	MappingEntry *entry = p;

	g_free(entry->pattern_text);
	g_free(entry->template_text);
	mapping_pattern_clear(&entry->pattern);
	mapping_template_clear(&entry->template);
	g_free(entry);
}

static void
mapping_table_free(gpointer p)
{
	ImtaMappingTable *table = p;

	g_free(table->name);
	g_ptr_array_unref(table->entries);
	g_free(table);
}

static ImtaMappings *
mappings_new(void)
{
	ImtaMappings *m = g_new0(ImtaMappings, 1);

	m->tables = g_ptr_array_new_with_free_func(mapping_table_free);
	m->by_name = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	m->names = g_ptr_array_new();
	return m;
}

void
imta_mappings_free(ImtaMappings *mappings)
{
	if (mappings == NULL)
		return;
	g_ptr_array_unref(mappings->names);
	g_hash_table_unref(mappings->by_name);
	g_ptr_array_unref(mappings->tables);
	g_free(mappings);
}

const ImtaMappingTable *
imta_mappings_table(const ImtaMappings *mappings, const char *name)
{
	g_autofree char *key = NULL;

	if (mappings == NULL || name == NULL)
		return NULL;
	key = g_ascii_strdown(name, -1);
	return g_hash_table_lookup(mappings->by_name, key);
}

const char *const *
imta_mappings_table_names(const ImtaMappings *mappings)
{
	static const char *const none[] = { NULL };

	if (mappings == NULL)
		return none;
	return (const char *const *)mappings->names->pdata;
}

guint
imta_mapping_table_size(const ImtaMappingTable *table)
{
	return table != NULL ? table->entries->len : 0;
}

/* ------------------------------------------------------------------ */
/* File syntax */

typedef enum {
	MAP_OUTSIDE,     /* between tables */
	MAP_AFTER_NAME,  /* a table name, waiting for its blank line */
	MAP_OPEN,        /* name and blank line seen, no entry yet */
	MAP_ENTRIES,     /* inside the entries; a blank line closes the table */
} MapState;

typedef struct {
	ImtaMappings *m;
	ImtaCfgFile *cf;
	const ImtaCfgLine *line;
	MapState state;
	ImtaMappingTable *table;   /* the current (or last closed) table */
} MapParser;

static void
map_pos(MapParser *mp, gsize offset, ImtaSourcePos *pos_r)
{
	imta_cfg_file_pos(mp->cf, offset, pos_r);
}

static gboolean
map_error(MapParser *mp, GError **error, ImtaConfigErrorCode code, gsize offset,
	  const char *fmt, ...) G_GNUC_PRINTF(5, 6);

static gboolean
map_error(MapParser *mp, GError **error, ImtaConfigErrorCode code, gsize offset,
	  const char *fmt, ...)
{
	va_list args;
	g_autofree char *what = NULL;
	ImtaSourcePos pos;

	va_start(args, fmt);
	what = g_strdup_vprintf(fmt, args);
	va_end(args);
	map_pos(mp, offset, &pos);
	imta_set_error_at(error, code, &pos, "%s", what);
	return FALSE;
}

static void
map_warn_at(const ImtaSourcePos *pos, const char *message)
{
	g_autofree char *where = imta_source_pos_format(pos);

	imta_log(IMTA_LOG_WARNING, "%s: %s", where, message);
}

static gboolean
map_table_line(MapParser *mp, GError **error)
{
	const ImtaCfgLine *line = mp->line;
	gsize end = 0;
	g_autofree char *key = NULL;
	ImtaMappingTable *table, *previous;

	if (mp->state == MAP_AFTER_NAME)
		return map_error(mp, error, IMTA_CONFIG_ERROR_SYNTAX, 0,
				 "expected a blank line after table name %s", mp->table->name);
	if (!g_ascii_isalpha(line->text[0]))
		return map_error(mp, error, IMTA_CONFIG_ERROR_SYNTAX, 0,
				 "expected a table name starting with a letter, got \"%s\"",
				 line->text);
	while (end < line->length && tpl_valid_table_char(line->text[end]))
		end++;
	if (end < line->length && line->text[end] != ' ' && line->text[end] != '\t')
		return map_error(mp, error, IMTA_CONFIG_ERROR_SYNTAX, end,
				 "expected letters, digits, '_', '-' or '.' in a table name, "
				 "got '%c'", line->text[end]);
	for (gsize i = end; i < line->length; i++)
		if (line->text[i] != ' ' && line->text[i] != '\t')
			return map_error(mp, error, IMTA_CONFIG_ERROR_SYNTAX, i,
					 "expected only a table name on this line, got \"%s\"",
					 line->text + i);
	if (mp->state == MAP_ENTRIES)
		return map_error(mp, error, IMTA_CONFIG_ERROR_SYNTAX, 0,
				 "expected a blank line before table name %.*s (a blank line "
				 "ends table %s)", (int)end, line->text, mp->table->name);

	key = g_ascii_strdown(line->text, (gssize)end);
	previous = g_hash_table_lookup(mp->m->by_name, key);
	if (previous != NULL) {
		g_autofree char *first = imta_source_pos_format(&previous->pos);

		return map_error(mp, error, IMTA_CONFIG_ERROR_DUPLICATE, 0,
				 "duplicate table %.*s (first defined at %s)", (int)end,
				 line->text, first);
	}
	table = g_new0(ImtaMappingTable, 1);
	table->name = g_strndup(line->text, end);
	table->entries = g_ptr_array_new_with_free_func(mapping_entry_free);
	map_pos(mp, 0, &table->pos);
	g_ptr_array_add(mp->m->tables, table);
	g_hash_table_insert(mp->m->by_name, g_steal_pointer(&key), table);
	g_ptr_array_add(mp->m->names, table->name);
	mp->table = table;
	mp->state = MAP_AFTER_NAME;
	return TRUE;
}

static void
map_log_warnings(MapParser *mp, GArray *warnings, gsize base)
{
	for (guint i = 0; i < warnings->len; i++) {
		const MappingDiag *w = &g_array_index(warnings, MappingDiag, i);
		ImtaSourcePos pos;

		map_pos(mp, base + w->offset, &pos);
		map_warn_at(&pos, w->message);
	}
	g_array_set_size(warnings, 0);
}

static gboolean
map_entry_line(MapParser *mp, GError **error)
{
	const ImtaCfgLine *line = mp->line;
	gsize offset = 0, pstart = 0, plen = 0, tstart = 0, tlen = 0, xstart = 0, xlen = 0;
	g_autoptr(GArray) warnings = g_array_new(FALSE, FALSE, sizeof(MappingDiag));
	MappingDiag diag = { 0, NULL };
	MappingEntry *entry;

	g_array_set_clear_func(warnings, diag_array_clear);
	/* Columns are runs of non-blanks in which "$ " and "$<TAB>" are quoted
	 * blanks, part of the column. */
	imta_cfg_next_word_quoted(line, '$', &offset, &pstart, &plen);
	if (mp->state == MAP_AFTER_NAME)
		return map_error(mp, error, IMTA_CONFIG_ERROR_SYNTAX, 0,
				 "expected a blank line after table name %s", mp->table->name);
	if (mp->state == MAP_OUTSIDE && mp->table == NULL)
		return map_error(mp, error, IMTA_CONFIG_ERROR_SYNTAX, pstart,
				 "expected a table name in column 1, got an indented entry "
				 "before the first table");
	if (mp->state == MAP_OUTSIDE)
		return map_error(mp, error, IMTA_CONFIG_ERROR_SYNTAX, pstart,
				 "expected a table name in column 1, got an indented entry "
				 "(a blank line ended table %s)", mp->table->name);
	if (!imta_cfg_next_word_quoted(line, '$', &offset, &tstart, &tlen))
		return map_error(mp, error, IMTA_CONFIG_ERROR_SYNTAX, pstart + plen,
				 "expected a template after the pattern");
	if (imta_cfg_next_word_quoted(line, '$', &offset, &xstart, &xlen))
		return map_error(mp, error, IMTA_CONFIG_ERROR_SYNTAX, xstart,
				 "expected only a pattern and a template, got a third column "
				 "\"%.*s\" (quote spaces as \"$ \")", (int)MIN(xlen, 40),
				 line->text + xstart);
	if (plen > IMTA_MAPPING_MAX_PATTERN)
		return map_error(mp, error, IMTA_CONFIG_ERROR_RANGE, pstart,
				 "expected a pattern of at most %d characters, got %" G_GSIZE_FORMAT,
				 IMTA_MAPPING_MAX_PATTERN, plen);
	if (tlen > IMTA_MAPPING_MAX_TEMPLATE)
		return map_error(mp, error, IMTA_CONFIG_ERROR_RANGE, tstart,
				 "expected a template of at most %d characters, got %" G_GSIZE_FORMAT,
				 IMTA_MAPPING_MAX_TEMPLATE, tlen);

	entry = g_new0(MappingEntry, 1);
	entry->pattern_text = g_strndup(line->text + pstart, plen);
	entry->template_text = g_strndup(line->text + tstart, tlen);
	map_pos(mp, pstart, &entry->pos);
	g_ptr_array_add(mp->table->entries, entry);
	mp->state = MAP_ENTRIES;
	if (!mapping_pattern_compile(line->text + pstart, plen, &entry->pattern, &diag)) {
		map_error(mp, error, IMTA_CONFIG_ERROR_SYNTAX, pstart + diag.offset, "%s",
			  diag.message);
		mapping_diag_clear(&diag);
		return FALSE;
	}
	if (!mapping_template_compile(line->text + tstart, tlen, entry->pattern.n_captures,
				      &entry->template, warnings, &diag)) {
		map_error(mp, error, IMTA_CONFIG_ERROR_SYNTAX, tstart + diag.offset, "%s",
			  diag.message);
		mapping_diag_clear(&diag);
		return FALSE;
	}
	map_log_warnings(mp, warnings, tstart);
	return TRUE;
}

static gboolean
map_blank_line(MapParser *mp)
{
	switch (mp->state) {
	case MAP_AFTER_NAME:
	case MAP_OPEN:
		mp->state = MAP_OPEN;
		break;
	case MAP_ENTRIES:
	case MAP_OUTSIDE:
		mp->state = MAP_OUTSIDE;
		break;
	}
	return TRUE;
}

/* Point every "$|table;...|" at its table, now that all are known. */
static void
map_resolve_seq(const ImtaMappings *m, const MappingEntry *entry, MappingTplSeq *seq)
{
	for (guint i = 0; i < seq->n_items; i++) {
		MappingTplItem *item = &seq->items[i];

		if (item->kind != MAPPING_TPL_CALL)
			continue;
		item->table = imta_mappings_table(m, item->text);
		if (item->table == NULL) {
			g_autofree char *message = g_strdup_printf(
				"table %s named in \"$|%s;...|\" is not defined: this entry "
				"never matches", item->text, item->text);

			map_warn_at(&entry->pos, message);
		}
		map_resolve_seq(m, entry, &item->argument);
	}
}

static void
map_resolve_calls(ImtaMappings *m)
{
	for (guint t = 0; t < m->tables->len; t++) {
		ImtaMappingTable *table = g_ptr_array_index(m->tables, t);

		for (guint e = 0; e < table->entries->len; e++) {
			MappingEntry *entry = g_ptr_array_index(table->entries, e);

			map_resolve_seq(m, entry, &entry->template.seq);
		}
	}
}

static ImtaMappings *
map_parse(ImtaCfgFile *cf, GError **error)
{
	g_autoptr(ImtaMappings) m = mappings_new();
	MapParser mp = { m, cf, NULL, MAP_OUTSIDE, NULL };
	ImtaCfgLine line;
	GError *local = NULL;

	while (imta_cfg_file_next(cf, &line, &local)) {
		gboolean ok;

		mp.line = &line;
		if (line.blank)
			ok = map_blank_line(&mp);
		else if (line.indented)
			ok = map_entry_line(&mp, error);
		else
			ok = map_table_line(&mp, error);
		if (!ok)
			return NULL;
	}
	if (local != NULL) {
		g_propagate_error(error, local);
		return NULL;
	}
	g_ptr_array_add(m->names, NULL);
	map_resolve_calls(m);
	return g_steal_pointer(&m);
}

ImtaMappings *
imta_mappings_parse_text(const char *name, const char *text, gsize length,
			 GStringChunk *names, GError **error)
{
	g_autoptr(ImtaCfgFile) cf = imta_cfg_file_open_text(name, text, length,
							     MAPPINGS_CFG_FLAGS, "!", names);

	return map_parse(cf, error);
}

ImtaMappings *
imta_mappings_load(const char *path, GStringChunk *names, GError **error)
{
	g_autoptr(ImtaCfgFile) cf = imta_cfg_file_open(path, MAPPINGS_CFG_FLAGS, "!", names,
						       error);

	if (cf == NULL)
		return NULL;
	return map_parse(cf, error);
}
