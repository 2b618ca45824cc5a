/*
 * ldap_filter.c - RFC 4515 search filter parser and evaluator.
 *
 * Parsing is a recursive descent bounded by IMTA_LDAP_FILTER_MAX_DEPTH and
 * IMTA_LDAP_FILTER_MAX_LENGTH, so hostile directory data (a memberURL is
 * written by whoever manages a list) cannot exhaust the stack.  Assertion
 * values are case-folded once at parse time; attribute values at match
 * time.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include <imta/error.h>

#include "ldap_filter.h"

typedef struct {
	char *raw;    /* unescaped bytes (may contain NUL) */
	gsize len;
	char *folded; /* case-folded text; NULL when raw holds a NUL byte */
} FilterValue;

struct _ImtaLdapFilter {
	ImtaLdapFilterKind kind;
	char *attr;             /* items: lower case, options dropped */
	GPtrArray *children;    /* AND, OR, NOT: ImtaLdapFilter * */
	FilterValue *value;     /* EQUAL, APPROX, GREATER_OR_EQUAL, LESS_OR_EQUAL */
	FilterValue *initial;   /* SUBSTRINGS; NULL = none */
	GPtrArray *any;         /* SUBSTRINGS: FilterValue *, in order */
	FilterValue *final;     /* SUBSTRINGS; NULL = none */
};

typedef struct {
	const char *text;
	gsize pos;
	GError **error;
} FilterParser;

static void
filter_value_free(FilterValue *value)
{
	if (value == NULL)
		return;
	g_free(value->raw);
	g_free(value->folded);
	g_free(value);
}

/* Case-fold `len` bytes for caseIgnoreMatch; NULL if they hold a NUL. */
static char *
filter_fold(const char *text, gsize len)
{
	if (memchr(text, '\0', len) != NULL)
		return NULL;
	if (g_utf8_validate(text, (gssize)len, NULL))
		return g_utf8_casefold(text, (gssize)len);
	return g_ascii_strdown(text, (gssize)len);
}

static FilterValue *
filter_value_new(const char *raw, gsize len)
{
	FilterValue *value = g_new0(FilterValue, 1);

	value->raw = g_malloc(len + 1);
	memcpy(value->raw, raw, len);
	value->raw[len] = '\0';
	value->len = len;
	value->folded = filter_fold(raw, len);
	return value;
}

void
imta_ldap_filter_free(ImtaLdapFilter *filter)
{
	if (filter == NULL)
		return;
	g_free(filter->attr);
	if (filter->children != NULL)
		g_ptr_array_unref(filter->children);
	filter_value_free(filter->value);
	filter_value_free(filter->initial);
	if (filter->any != NULL)
		g_ptr_array_unref(filter->any);
	filter_value_free(filter->final);
	g_free(filter);
}

static ImtaLdapFilter *
filter_new(ImtaLdapFilterKind kind)
{
	ImtaLdapFilter *filter = g_new0(ImtaLdapFilter, 1);

	filter->kind = kind;
	return filter;
}

ImtaLdapFilterKind
imta_ldap_filter_kind(const ImtaLdapFilter *filter)
{
	return filter->kind;
}

/* ---------------------------------------------------------------------- */
/* Parsing. */

static gboolean G_GNUC_PRINTF(3, 4)
parser_fail(FilterParser *p, gsize pos, const char *fmt, ...)
{
	va_list args;
	g_autofree char *what = NULL;

	va_start(args, fmt);
	what = g_strdup_vprintf(fmt, args);
	va_end(args);
	g_set_error(p->error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA,
		    "invalid LDAP filter at column %zu: %s", pos + 1, what);
	return FALSE;
}

static char
parser_peek(const FilterParser *p)
{
	return p->text[p->pos];
}

static void
parser_skip_spaces(FilterParser *p)
{
	while (p->text[p->pos] == ' ')
		p->pos++;
}

static gboolean
is_keychar(char c)
{
	return g_ascii_isalnum(c) || c == '-';
}

/* attributedescription = (keystring / numericoid) *(";" option) */
static char *
parse_attribute(FilterParser *p)
{
	const char *text = p->text;
	gsize start = p->pos, end;

	if (g_ascii_isalpha(text[p->pos])) {
		while (is_keychar(text[p->pos]))
			p->pos++;
	} else if (g_ascii_isdigit(text[p->pos])) {
		while (g_ascii_isdigit(text[p->pos]) || text[p->pos] == '.')
			p->pos++;
	} else {
		parser_fail(p, p->pos, "expected an attribute name");
		return NULL;
	}
	end = p->pos;
	while (text[p->pos] == ';') {
		gsize option = ++p->pos;

		while (is_keychar(text[p->pos]))
			p->pos++;
		if (p->pos == option) {
			parser_fail(p, p->pos, "expected an attribute option after \";\"");
			return NULL;
		}
	}
	return g_ascii_strdown(text + start, (gssize)(end - start));
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Read an assertion value up to the closing ')' (or the end of a bare
 * filter), splitting it at unescaped '*' into `segments` (GByteArray *).
 * `stars_allowed` is FALSE for ~=, >= and <=, where '*' must be escaped.
 */
static gboolean
parse_value(FilterParser *p, gboolean stars_allowed, GPtrArray *segments)
{
	GByteArray *current = g_byte_array_new();

	g_ptr_array_add(segments, current);
	for (;;) {
		char c = p->text[p->pos];
		int hi, lo;
		guint8 byte;

		switch (c) {
		case '\0':
		case ')':
			return TRUE;
		case '(':
			return parser_fail(p, p->pos, "unescaped \"(\" in a value "
					   "(write it as \\28)");
		case '*':
			if (!stars_allowed)
				return parser_fail(p, p->pos, "unescaped \"*\" in a value "
						   "(write it as \\2a)");
			current = g_byte_array_new();
			g_ptr_array_add(segments, current);
			p->pos++;
			continue;
		case '\\':
			hi = hex_value(p->text[p->pos + 1]);
			lo = hi < 0 ? -1 : hex_value(p->text[p->pos + 2]);
			if (hi < 0 || lo < 0)
				return parser_fail(p, p->pos, "expected two hexadecimal digits "
						   "after \"\\\"");
			byte = (guint8)(hi * 16 + lo);
			g_byte_array_append(current, &byte, 1);
			p->pos += 3;
			continue;
		default:
			byte = (guint8)c;
			g_byte_array_append(current, &byte, 1);
			p->pos++;
			continue;
		}
	}
}

static FilterValue *
segment_value(GPtrArray *segments, guint i)
{
	GByteArray *bytes = g_ptr_array_index(segments, i);

	/* An empty GByteArray has no data pointer at all. */
	return filter_value_new(bytes->len > 0 ? (const char *)bytes->data : "", bytes->len);
}

static ImtaLdapFilter *
build_equality(char *attr, GPtrArray *segments)
{
	ImtaLdapFilter *filter;
	GByteArray *first = g_ptr_array_index(segments, 0);
	GByteArray *last = g_ptr_array_index(segments, segments->len - 1);

	if (segments->len == 1) {
		filter = filter_new(IMTA_LDAP_FILTER_EQUAL);
		filter->value = segment_value(segments, 0);
	} else if (segments->len == 2 && first->len == 0 && last->len == 0) {
		filter = filter_new(IMTA_LDAP_FILTER_PRESENT);
	} else {
		filter = filter_new(IMTA_LDAP_FILTER_SUBSTRINGS);
		if (first->len > 0)
			filter->initial = segment_value(segments, 0);
		if (last->len > 0)
			filter->final = segment_value(segments, segments->len - 1);
		filter->any = g_ptr_array_new_with_free_func((GDestroyNotify)filter_value_free);
		for (guint i = 1; i + 1 < segments->len; i++) {
			GByteArray *piece = g_ptr_array_index(segments, i);

			/* "a**b" has an empty piece that constrains nothing. */
			if (piece->len > 0)
				g_ptr_array_add(filter->any, segment_value(segments, i));
		}
	}
	filter->attr = attr;
	return filter;
}

/* item = attr ("=" / "~=" / ">=" / "<=") value; stops before ')' */
static ImtaLdapFilter *
parse_item(FilterParser *p)
{
	g_autofree char *attr = NULL;
	g_autoptr(GPtrArray) segments = NULL;
	ImtaLdapFilterKind kind;
	ImtaLdapFilter *filter;
	gsize op = p->pos;

	attr = parse_attribute(p);
	if (attr == NULL)
		return NULL;
	op = p->pos;
	switch (parser_peek(p)) {
	case '=':
		kind = IMTA_LDAP_FILTER_EQUAL;
		p->pos++;
		break;
	case '~':
	case '>':
	case '<':
		if (p->text[p->pos + 1] != '=') {
			parser_fail(p, p->pos + 1, "expected \"=\" after \"%c\"", parser_peek(p));
			return NULL;
		}
		kind = parser_peek(p) == '~' ? IMTA_LDAP_FILTER_APPROX
		     : parser_peek(p) == '>' ? IMTA_LDAP_FILTER_GREATER_OR_EQUAL
		     : IMTA_LDAP_FILTER_LESS_OR_EQUAL;
		p->pos += 2;
		break;
	case ':':
		parser_fail(p, op, "extensible match filters (\":=\") are not supported");
		return NULL;
	default:
		parser_fail(p, op, "expected \"=\", \"~=\", \">=\" or \"<=\" after the "
			    "attribute name");
		return NULL;
	}
	segments = g_ptr_array_new_with_free_func((GDestroyNotify)g_byte_array_unref);
	if (!parse_value(p, kind == IMTA_LDAP_FILTER_EQUAL, segments))
		return NULL;
	if (kind == IMTA_LDAP_FILTER_EQUAL)
		return build_equality(g_steal_pointer(&attr), segments);
	filter = filter_new(kind);
	filter->attr = g_steal_pointer(&attr);
	filter->value = segment_value(segments, 0);
	return filter;
}

static ImtaLdapFilter *parse_filter(FilterParser *p, guint depth);

static ImtaLdapFilter *
parse_list(FilterParser *p, ImtaLdapFilterKind kind, guint depth)
{
	g_autoptr(ImtaLdapFilter) filter = filter_new(kind);

	filter->children = g_ptr_array_new_with_free_func((GDestroyNotify)imta_ldap_filter_free);
	parser_skip_spaces(p);
	while (parser_peek(p) == '(') {
		ImtaLdapFilter *child = parse_filter(p, depth + 1);

		if (child == NULL)
			return NULL;
		g_ptr_array_add(filter->children, child);
		parser_skip_spaces(p);
		if (kind == IMTA_LDAP_FILTER_NOT)
			break;
	}
	if (kind == IMTA_LDAP_FILTER_NOT && filter->children->len == 0) {
		parser_fail(p, p->pos, "expected \"(\" after \"!\"");
		return NULL;
	}
	return g_steal_pointer(&filter);
}

/* filter = "(" filtercomp ")" */
static ImtaLdapFilter *
parse_filter(FilterParser *p, guint depth)
{
	g_autoptr(ImtaLdapFilter) filter = NULL;
	gsize open = p->pos;

	if (depth > IMTA_LDAP_FILTER_MAX_DEPTH) {
		parser_fail(p, open, "nested more than %d levels deep",
			    IMTA_LDAP_FILTER_MAX_DEPTH);
		return NULL;
	}
	g_assert(parser_peek(p) == '(');
	p->pos++;
	parser_skip_spaces(p);
	switch (parser_peek(p)) {
	case '&':
		p->pos++;
		filter = parse_list(p, IMTA_LDAP_FILTER_AND, depth);
		break;
	case '|':
		p->pos++;
		filter = parse_list(p, IMTA_LDAP_FILTER_OR, depth);
		break;
	case '!':
		p->pos++;
		filter = parse_list(p, IMTA_LDAP_FILTER_NOT, depth);
		break;
	default:
		filter = parse_item(p);
		break;
	}
	if (filter == NULL)
		return NULL;
	parser_skip_spaces(p);
	if (parser_peek(p) != ')') {
		if (parser_peek(p) == '\0')
			parser_fail(p, p->pos, "expected \")\" to close the \"(\" at column %zu",
				    open + 1);
		else
			parser_fail(p, p->pos, "expected \")\", got \"%c\"", parser_peek(p));
		return NULL;
	}
	p->pos++;
	return g_steal_pointer(&filter);
}

ImtaLdapFilter *
imta_ldap_filter_parse(const char *text, GError **error)
{
	FilterParser p = { .text = text, .pos = 0, .error = error };
	g_autoptr(ImtaLdapFilter) filter = NULL;
	gsize len = strlen(text);

	if (len > IMTA_LDAP_FILTER_MAX_LENGTH) {
		g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA,
			    "invalid LDAP filter: longer than %d bytes",
			    IMTA_LDAP_FILTER_MAX_LENGTH);
		return NULL;
	}
	parser_skip_spaces(&p);
	if (parser_peek(&p) == '\0') {
		parser_fail(&p, p.pos, "empty filter");
		return NULL;
	}
	if (parser_peek(&p) == '(') {
		filter = parse_filter(&p, 1);
	} else {
		/* A bare item, as ldapsearch accepts: "mail=a@example.com". */
		filter = parse_item(&p);
		if (filter != NULL && parser_peek(&p) == ')') {
			parser_fail(&p, p.pos, "unexpected \")\"");
			return NULL;
		}
	}
	if (filter == NULL)
		return NULL;
	parser_skip_spaces(&p);
	if (parser_peek(&p) != '\0') {
		parser_fail(&p, p.pos, "unexpected text after the filter");
		return NULL;
	}
	return g_steal_pointer(&filter);
}

/* ---------------------------------------------------------------------- */
/* Evaluation. */

/* A decimal integer of at most 18 digits (so it fits without overflow). */
static gboolean
parse_integer(const char *text, gint64 *value_r)
{
	const char *digits = text;
	char *end;

	if (*digits == '-' || *digits == '+')
		digits++;
	if (*digits == '\0' || strlen(digits) > 18)
		return FALSE;
	for (const char *c = digits; *c != '\0'; c++)
		if (!g_ascii_isdigit(*c))
			return FALSE;
	errno = 0;
	*value_r = g_ascii_strtoll(text, &end, 10);
	return errno == 0 && *end == '\0';
}

/* Negative, zero or positive as `value` sorts before, with or after the
 * assertion. */
static int
filter_order(const char *value, const char *folded_value, const FilterValue *assertion)
{
	gint64 a, b;

	if (parse_integer(value, &a) && parse_integer(assertion->folded, &b))
		return a < b ? -1 : a > b;
	return strcmp(folded_value, assertion->folded);
}

static gboolean
filter_substrings(const ImtaLdapFilter *filter, const char *folded)
{
	gsize len = strlen(folded);
	gsize pos = 0, end = len;

	if (filter->initial != NULL) {
		if (filter->initial->folded == NULL)
			return FALSE;
		pos = strlen(filter->initial->folded);
		if (pos > len || strncmp(folded, filter->initial->folded, pos) != 0)
			return FALSE;
	}
	if (filter->final != NULL) {
		gsize flen;

		if (filter->final->folded == NULL)
			return FALSE;
		flen = strlen(filter->final->folded);
		if (flen > end - pos || strcmp(folded + len - flen, filter->final->folded) != 0)
			return FALSE;
		end = len - flen;
	}
	for (guint i = 0; i < filter->any->len; i++) {
		const FilterValue *piece = g_ptr_array_index(filter->any, i);
		const char *found;

		if (piece->folded == NULL)
			return FALSE;
		found = g_strstr_len(folded + pos, (gssize)(end - pos), piece->folded);
		if (found == NULL)
			return FALSE;
		pos = (gsize)(found - folded) + strlen(piece->folded);
	}
	return TRUE;
}

static gboolean
filter_match_value(const ImtaLdapFilter *filter, const char *value)
{
	g_autofree char *folded = filter_fold(value, strlen(value));

	switch (filter->kind) {
	case IMTA_LDAP_FILTER_EQUAL:
	case IMTA_LDAP_FILTER_APPROX:
		return filter->value->folded != NULL && strcmp(folded, filter->value->folded) == 0;
	case IMTA_LDAP_FILTER_GREATER_OR_EQUAL:
		return filter->value->folded != NULL && filter_order(value, folded, filter->value) >= 0;
	case IMTA_LDAP_FILTER_LESS_OR_EQUAL:
		return filter->value->folded != NULL && filter_order(value, folded, filter->value) <= 0;
	case IMTA_LDAP_FILTER_SUBSTRINGS:
		return filter_substrings(filter, folded);
	default:
		g_assert_not_reached();
	}
}

gboolean
imta_ldap_filter_match(const ImtaLdapFilter *filter, GHashTable *attributes)
{
	char **values;

	switch (filter->kind) {
	case IMTA_LDAP_FILTER_AND:
		for (guint i = 0; i < filter->children->len; i++)
			if (!imta_ldap_filter_match(g_ptr_array_index(filter->children, i), attributes))
				return FALSE;
		return TRUE;
	case IMTA_LDAP_FILTER_OR:
		for (guint i = 0; i < filter->children->len; i++)
			if (imta_ldap_filter_match(g_ptr_array_index(filter->children, i), attributes))
				return TRUE;
		return FALSE;
	case IMTA_LDAP_FILTER_NOT:
		return !imta_ldap_filter_match(g_ptr_array_index(filter->children, 0), attributes);
	default:
		break;
	}
	values = attributes != NULL ? g_hash_table_lookup(attributes, filter->attr) : NULL;
	if (values == NULL || values[0] == NULL)
		return FALSE;
	if (filter->kind == IMTA_LDAP_FILTER_PRESENT)
		return TRUE;
	for (guint i = 0; values[i] != NULL; i++)
		if (filter_match_value(filter, values[i]))
			return TRUE;
	return FALSE;
}

/* ---------------------------------------------------------------------- */
/* Printing. */

static void
append_escaped(GString *out, const char *raw, gsize len)
{
	for (gsize i = 0; i < len; i++) {
		guchar c = (guchar)raw[i];

		if (c == '*' || c == '(' || c == ')' || c == '\\' || c < 0x20 || c == 0x7f)
			g_string_append_printf(out, "\\%02x", c);
		else
			g_string_append_c(out, (char)c);
	}
}

static void
append_value(GString *out, const FilterValue *value)
{
	if (value != NULL)
		append_escaped(out, value->raw, value->len);
}

static void
filter_print(GString *out, const ImtaLdapFilter *filter)
{
	static const char *const ops[] = {
		[IMTA_LDAP_FILTER_EQUAL] = "=",
		[IMTA_LDAP_FILTER_APPROX] = "~=",
		[IMTA_LDAP_FILTER_GREATER_OR_EQUAL] = ">=",
		[IMTA_LDAP_FILTER_LESS_OR_EQUAL] = "<=",
	};

	g_string_append_c(out, '(');
	switch (filter->kind) {
	case IMTA_LDAP_FILTER_AND:
	case IMTA_LDAP_FILTER_OR:
	case IMTA_LDAP_FILTER_NOT:
		g_string_append_c(out, filter->kind == IMTA_LDAP_FILTER_AND ? '&'
				  : filter->kind == IMTA_LDAP_FILTER_OR ? '|' : '!');
		for (guint i = 0; i < filter->children->len; i++)
			filter_print(out, g_ptr_array_index(filter->children, i));
		break;
	case IMTA_LDAP_FILTER_PRESENT:
		g_string_append_printf(out, "%s=*", filter->attr);
		break;
	case IMTA_LDAP_FILTER_SUBSTRINGS:
		g_string_append_printf(out, "%s=", filter->attr);
		append_value(out, filter->initial);
		g_string_append_c(out, '*');
		for (guint i = 0; i < filter->any->len; i++) {
			append_value(out, g_ptr_array_index(filter->any, i));
			g_string_append_c(out, '*');
		}
		append_value(out, filter->final);
		break;
	default:
		g_string_append_printf(out, "%s%s", filter->attr, ops[filter->kind]);
		append_value(out, filter->value);
		break;
	}
	g_string_append_c(out, ')');
}

char *
imta_ldap_filter_to_string(const ImtaLdapFilter *filter)
{
	GString *out = g_string_new(NULL);

	filter_print(out, filter);
	return g_string_free(out, FALSE);
}

char *
imta_ldap_filter_escape(const char *value)
{
	GString *out = g_string_new(NULL);

	append_escaped(out, value, strlen(value));
	return g_string_free(out, FALSE);
}
