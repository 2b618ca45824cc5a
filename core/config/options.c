/*
 * options.c - the option-table engine behind dispatcher.cnf,
 * job_controller.cnf, option.dat and imta_tailor: one ImtaOptionSpec row
 * per option drives parsing, range checks, defaults, freeing and dumps.
 */
#include "config.h"

#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <glib.h>

#include <imta/options.h>
#include <imta/number.h>

#define OPT_FIELD(target, row, type) \
	((type *)(void *)((char *)(target) + (row)->offset))
#define OPT_CFIELD(target, row, type) \
	((const type *)(const void *)((const char *)(target) + (row)->offset))

#define OPT_MAX_PORTS 64     /* ports per PORT value when the row sets no limit */
#define OPT_QUOTE_MAX 60     /* bytes of a value quoted in a message */
#define OPT_SUGGEST_MAX 64   /* names longer than this get no suggestion */

static gboolean
opt_is_blank(char c)
{
	return c == ' ' || c == '\t';
}

const ImtaOptionSpec *
imta_option_lookup(const ImtaOptionSpec *table, gsize n_rows, const char *name)
{
	if (name == NULL)
		return NULL;
	for (gsize i = 0; i < n_rows; i++)
		if (g_ascii_strcasecmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

char *
imta_option_quote(const char *value)
{
	GString *out = g_string_new("\"");
	gboolean utf8;
	gsize i;

	if (value == NULL)
		value = "";
	utf8 = g_utf8_validate(value, -1, NULL);
	for (i = 0; value[i] != '\0' && out->len < OPT_QUOTE_MAX; i++) {
		guchar c = (guchar)value[i];

		if (c == '"' || c == '\\')
			g_string_append_printf(out, "\\%c", c);
		else if (c == '\t')
			g_string_append(out, "\\t");
		else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8))
			g_string_append_printf(out, "\\x%02x", c);
		else
			g_string_append_c(out, (char)c);
	}
	/* Never stop inside a UTF-8 sequence. */
	while (utf8 && value[i] != '\0' && ((guchar)value[i] & 0xc0) == 0x80)
		g_string_append_c(out, value[i++]);
	if (value[i] != '\0')
		g_string_append(out, "...");
	g_string_append_c(out, '"');
	return g_string_free(out, FALSE);
}

static gboolean
opt_bounded(const ImtaOptionSpec *row)
{
	return row->min <= row->max;
}

static gboolean
opt_in_range(const ImtaOptionSpec *row, gint64 value)
{
	return !opt_bounded(row) || (value >= row->min && value <= row->max);
}

static char *
opt_describe_range(const ImtaOptionSpec *row, const char *what)
{
	if (!opt_bounded(row))
		return g_strdup(what);
	if (row->min == G_MININT64)
		return g_strdup_printf("%s of at most %" G_GINT64_FORMAT, what, row->max);
	if (row->max == G_MAXINT64)
		return g_strdup_printf("%s of at least %" G_GINT64_FORMAT, what, row->min);
	return g_strdup_printf("%s between %" G_GINT64_FORMAT " and %" G_GINT64_FORMAT,
			       what, row->min, row->max);
}

char *
imta_option_describe(const ImtaOptionSpec *row)
{
	switch (row->kind) {
	case IMTA_OPT_INT:
		return opt_describe_range(row, "an integer");
	case IMTA_OPT_BOOL:
		return g_strdup("0 or 1");
	case IMTA_OPT_MASK:
		return g_strdup("a 32-bit mask (such as 16%1000000, or -1 for all bits)");
	case IMTA_OPT_DURATION:
		return opt_describe_range(row, "a number of seconds or an ISO 8601 duration"
					  " (such as PT30M)");
	case IMTA_OPT_PORTS:
		return g_strdup("port numbers from 1 to 65535 separated by commas or blanks,"
				" or 0 alone for none");
	case IMTA_OPT_STRING:
		return g_strdup("text");
	case IMTA_OPT_STRINGS:
		return g_strdup("a non-empty value");
	}
	g_assert_not_reached();
}

static void
opt_value_error(GError **error, ImtaConfigErrorCode code, const ImtaOptionSpec *row,
		const char *expected, const char *value, const ImtaSourcePos *pos)
{
	g_autofree char *quoted = imta_option_quote(value);

	imta_set_error_at(error, code, pos, "expected %s for %s, got %s", expected, row->name,
			  quoted);
}

/* The position `offset` bytes into a value that starts at `pos`. */
static ImtaSourcePos
opt_pos_at(const ImtaSourcePos *pos, gsize offset)
{
	ImtaSourcePos at = { NULL, 0, 0 };

	if (pos == NULL)
		return at;
	at = *pos;
	if (at.column != 0)
		at.column += (guint)offset;
	return at;
}

static void
opt_clear_row(const ImtaOptionSpec *row, void *target)
{
	switch (row->kind) {
	case IMTA_OPT_INT:
	case IMTA_OPT_DURATION:
		*OPT_FIELD(target, row, gint64) = 0;
		break;
	case IMTA_OPT_BOOL:
		*OPT_FIELD(target, row, gboolean) = FALSE;
		break;
	case IMTA_OPT_MASK:
		*OPT_FIELD(target, row, guint32) = 0;
		break;
	case IMTA_OPT_STRING:
		g_clear_pointer(OPT_FIELD(target, row, char *), g_free);
		break;
	case IMTA_OPT_PORTS:
		g_clear_pointer(OPT_FIELD(target, row, GArray *), g_array_unref);
		break;
	case IMTA_OPT_STRINGS:
		g_clear_pointer(OPT_FIELD(target, row, GPtrArray *), g_ptr_array_unref);
		break;
	}
}

static gboolean
opt_set_int(const ImtaOptionSpec *row, void *target, const char *value,
	    const ImtaSourcePos *pos, GError **error)
{
	gint64 v;

	if (!imta_parse_int(value, &v, NULL) || !opt_in_range(row, v)) {
		g_autofree char *expected = imta_option_describe(row);
		gint64 ignored;

		opt_value_error(error, imta_parse_int(value, &ignored, NULL) ?
				IMTA_CONFIG_ERROR_RANGE : IMTA_CONFIG_ERROR_SYNTAX,
				row, expected, value, pos);
		return FALSE;
	}
	*OPT_FIELD(target, row, gint64) = v;
	return TRUE;
}

static gboolean
opt_set_bool(const ImtaOptionSpec *row, void *target, const char *value,
	     const ImtaSourcePos *pos, GError **error)
{
	gint64 v;

	if (!imta_parse_int(value, &v, NULL) || (v != 0 && v != 1)) {
		opt_value_error(error, IMTA_CONFIG_ERROR_SYNTAX, row, "0 or 1", value, pos);
		return FALSE;
	}
	*OPT_FIELD(target, row, gboolean) = v == 1;
	return TRUE;
}

static gboolean
opt_set_mask(const ImtaOptionSpec *row, void *target, const char *value,
	     const ImtaSourcePos *pos, GError **error)
{
	gint64 v;

	/* Both the signed and the unsigned spelling of a 32-bit mask are
	 * accepted: -1 and 16%FFFFFFFF mean the same. */
	if (!imta_parse_int(value, &v, NULL) || v < G_MININT32 || v > (gint64)G_MAXUINT32) {
		g_autofree char *expected = imta_option_describe(row);

		opt_value_error(error, IMTA_CONFIG_ERROR_SYNTAX, row, expected, value, pos);
		return FALSE;
	}
	*OPT_FIELD(target, row, guint32) = (guint32)((guint64)v & 0xffffffffu);
	return TRUE;
}

static gboolean
opt_set_duration(const ImtaOptionSpec *row, void *target, const char *value,
		 const ImtaSourcePos *pos, GError **error)
{
	gint64 v;
	gboolean parsed = imta_parse_int(value, &v, NULL) ||
			  imta_parse_duration(value, &v, NULL);

	if (!parsed || !opt_in_range(row, v)) {
		g_autofree char *expected = imta_option_describe(row);

		opt_value_error(error, parsed ? IMTA_CONFIG_ERROR_RANGE : IMTA_CONFIG_ERROR_SYNTAX,
				row, expected, value, pos);
		return FALSE;
	}
	*OPT_FIELD(target, row, gint64) = v;
	return TRUE;
}

static gboolean
opt_check(const ImtaOptionSpec *row, const char *value, const ImtaSourcePos *pos,
	  GError **error)
{
	const char *expected = "a valid value";

	if (row->check == NULL || row->check(value, &expected))
		return TRUE;
	opt_value_error(error, IMTA_CONFIG_ERROR_SYNTAX, row, expected, value, pos);
	return FALSE;
}

static gboolean
opt_set_string(const ImtaOptionSpec *row, void *target, const char *value,
	       const ImtaSourcePos *pos, GError **error)
{
	char **field = OPT_FIELD(target, row, char *);

	if (*value == '\0' ||
	    ((row->flags & IMTA_OPT_NULL_WORD) && g_ascii_strcasecmp(value, "NULL") == 0)) {
		g_clear_pointer(field, g_free);
		return TRUE;
	}
	if (!opt_check(row, value, pos, error))
		return FALSE;
	g_free(*field);
	*field = g_strdup(value);
	return TRUE;
}

static gboolean
opt_set_strings(const ImtaOptionSpec *row, void *target, const char *value,
		const ImtaSourcePos *pos, GError **error)
{
	GPtrArray **field = OPT_FIELD(target, row, GPtrArray *);

	if (*value == '\0') {
		opt_value_error(error, IMTA_CONFIG_ERROR_SYNTAX, row, "a non-empty value", value,
				pos);
		return FALSE;
	}
	if (!opt_check(row, value, pos, error))
		return FALSE;
	if (*field == NULL)
		*field = g_ptr_array_new_with_free_func(g_free);
	if (row->max_count != 0 && (*field)->len >= row->max_count) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_RANGE, pos,
				  "too many %s values: at most %u are allowed", row->name,
				  row->max_count);
		return FALSE;
	}
	g_ptr_array_add(*field, g_strdup(value));
	return TRUE;
}

static gsize
opt_skip_blanks(const char *text, gsize i)
{
	while (opt_is_blank(text[i]))
		i++;
	return i;
}

/* One port of a PORT list, text[start..end).  0 is returned as is; the
 * caller decides whether "none" is allowed there. */
static gboolean
opt_parse_port(const ImtaOptionSpec *row, const char *text, gsize start, gsize end,
	       const ImtaSourcePos *pos, guint16 *port_r, GError **error)
{
	g_autofree char *token = g_strndup(text + start, end - start);
	ImtaSourcePos at = opt_pos_at(pos, start);
	gint64 v;

	if (!imta_parse_int(token, &v, NULL) || v < 0 || v > 65535) {
		opt_value_error(error, IMTA_CONFIG_ERROR_RANGE, row,
				"a port number between 1 and 65535", token, &at);
		return FALSE;
	}
	*port_r = (guint16)v;
	return TRUE;
}

static gboolean
opt_port_seen(const GArray *ports, guint16 port)
{
	for (guint i = 0; i < ports->len; i++)
		if (g_array_index(ports, guint16, i) == port)
			return TRUE;
	return FALSE;
}

static gboolean
opt_set_ports(const ImtaOptionSpec *row, void *target, const char *value,
	      const ImtaSourcePos *pos, GError **error)
{
	g_autoptr(GArray) ports = g_array_new(FALSE, FALSE, sizeof(guint16));
	guint limit = row->max_count != 0 ? row->max_count : OPT_MAX_PORTS;
	gboolean none = FALSE, any = FALSE;
	gsize i = opt_skip_blanks(value, 0);

	while (value[i] != '\0') {
		gsize start = i;
		ImtaSourcePos at;
		guint16 port;

		while (value[i] != '\0' && value[i] != ',' && !opt_is_blank(value[i]))
			i++;
		at = opt_pos_at(pos, start);
		if (i == start) {
			imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &at,
					  "expected a port number before ',' in %s", row->name);
			return FALSE;
		}
		if (!opt_parse_port(row, value, start, i, pos, &port, error))
			return FALSE;
		any = TRUE;
		if (port == 0) {
			none = TRUE;
		} else if (opt_port_seen(ports, port)) {
			imta_set_error_at(error, IMTA_CONFIG_ERROR_DUPLICATE, &at,
					  "port %u is listed twice in %s", port, row->name);
			return FALSE;
		} else if (ports->len >= limit) {
			imta_set_error_at(error, IMTA_CONFIG_ERROR_RANGE, &at,
					  "too many ports in %s: at most %u are allowed",
					  row->name, limit);
			return FALSE;
		} else {
			g_array_append_val(ports, port);
		}
		i = opt_skip_blanks(value, i);
		if (value[i] == ',') {
			i = opt_skip_blanks(value, i + 1);
			if (value[i] == '\0') {
				at = opt_pos_at(pos, i);
				imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &at,
						  "expected a port number after ',' in %s",
						  row->name);
				return FALSE;
			}
		}
	}
	if (!any) {
		g_autofree char *expected = imta_option_describe(row);

		opt_value_error(error, IMTA_CONFIG_ERROR_SYNTAX, row, expected, value, pos);
		return FALSE;
	}
	if (none && ports->len > 0) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, pos,
				  "%s=0 means none and cannot be combined with other ports",
				  row->name);
		return FALSE;
	}
	g_clear_pointer(OPT_FIELD(target, row, GArray *), g_array_unref);
	*OPT_FIELD(target, row, GArray *) = g_steal_pointer(&ports);
	return TRUE;
}

gboolean
imta_option_set_row(const ImtaOptionSpec *row, void *target, const char *value,
		    const ImtaSourcePos *value_pos, GError **error)
{
	if (value == NULL)
		value = "";
	switch (row->kind) {
	case IMTA_OPT_INT:
		return opt_set_int(row, target, value, value_pos, error);
	case IMTA_OPT_BOOL:
		return opt_set_bool(row, target, value, value_pos, error);
	case IMTA_OPT_MASK:
		return opt_set_mask(row, target, value, value_pos, error);
	case IMTA_OPT_DURATION:
		return opt_set_duration(row, target, value, value_pos, error);
	case IMTA_OPT_STRING:
		return opt_set_string(row, target, value, value_pos, error);
	case IMTA_OPT_STRINGS:
		return opt_set_strings(row, target, value, value_pos, error);
	case IMTA_OPT_PORTS:
		return opt_set_ports(row, target, value, value_pos, error);
	}
	g_assert_not_reached();
}

void
imta_option_reset_row(const ImtaOptionSpec *row, void *target)
{
	g_autoptr(GError) error = NULL;

	opt_clear_row(row, target);
	if (row->default_value == NULL)
		return;
	/* A default that does not parse is a bug in the table, not in a file. */
	if (!imta_option_set_row(row, target, row->default_value, NULL, &error))
		g_error("built-in default of option %s: %s", row->name, error->message);
}

void
imta_option_table_defaults(const ImtaOptionSpec *table, gsize n_rows, void *target,
			   guint scope)
{
	for (gsize i = 0; i < n_rows; i++)
		if (table[i].scopes & scope)
			imta_option_reset_row(&table[i], target);
}

void
imta_option_table_clear(const ImtaOptionSpec *table, gsize n_rows, void *target)
{
	for (gsize i = 0; i < n_rows; i++)
		opt_clear_row(&table[i], target);
}

/* Edit distance between two names, case-insensitive; G_MAXUINT when either
 * is too long to be worth comparing. */
static guint
opt_distance(const char *a, const char *b)
{
	gsize la = strlen(a), lb = strlen(b);
	guint prev[OPT_SUGGEST_MAX + 1], cur[OPT_SUGGEST_MAX + 1];

	if (la > OPT_SUGGEST_MAX || lb > OPT_SUGGEST_MAX)
		return G_MAXUINT;
	for (gsize j = 0; j <= lb; j++)
		prev[j] = (guint)j;
	for (gsize i = 1; i <= la; i++) {
		cur[0] = (guint)i;
		for (gsize j = 1; j <= lb; j++) {
			guint cost = g_ascii_toupper(a[i - 1]) == g_ascii_toupper(b[j - 1]) ? 0 : 1;
			guint best = prev[j - 1] + cost;

			best = MIN(best, prev[j] + 1);
			best = MIN(best, cur[j - 1] + 1);
			cur[j] = best;
		}
		memcpy(prev, cur, sizeof(guint) * (lb + 1));
	}
	return prev[lb];
}

const char *
imta_option_suggest(const ImtaOptionSpec *table, gsize n_rows, const char *name,
		    guint *distance_r)
{
	const char *best = NULL;
	guint best_distance = G_MAXUINT;
	gsize len = strlen(name);

	for (gsize i = 0; i < n_rows; i++) {
		guint d = opt_distance(name, table[i].name);

		if (d < best_distance) {
			best_distance = d;
			best = table[i].name;
		}
	}
	/* Two edits is a typo; more is a different word.  Very short names
	 * are too easily "close" to anything. */
	if (best_distance > 2 || best_distance >= len)
		best = NULL;
	if (distance_r != NULL)
		*distance_r = best != NULL ? best_distance : G_MAXUINT;
	return best;
}

gboolean
imta_option_unknown(GError **error, const ImtaSourcePos *pos, const char *file, const char *name,
		    const char *hint)
{
	g_autofree char *quoted = imta_option_quote(name);
	g_autofree char *what = file != NULL ? g_strdup_printf("%s option", file)
					     : g_strdup("option");

	if (hint != NULL)
		imta_set_error_at(error, IMTA_CONFIG_ERROR_UNKNOWN, pos,
				  "unknown %s %s (did you mean %s?)", what, quoted, hint);
	else
		imta_set_error_at(error, IMTA_CONFIG_ERROR_UNKNOWN, pos, "unknown %s %s", what,
				  quoted);
	return FALSE;
}

gboolean
imta_option_set(const ImtaOptionSpec *table, gsize n_rows, void *target, guint scope,
		const char *name, const char *value, const ImtaSourcePos *name_pos,
		const ImtaSourcePos *value_pos, GError **error)
{
	const ImtaOptionSpec *row = imta_option_lookup(table, n_rows, name);

	if (row == NULL)
		return imta_option_unknown(error, name_pos, NULL, name,
					   imta_option_suggest(table, n_rows, name, NULL));
	if (!(row->scopes & scope)) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, name_pos,
				  "option %s is not allowed here", row->name);
		return FALSE;
	}
	return imta_option_set_row(row, target, value, value_pos, error);
}

char *
imta_option_value_text(const ImtaOptionSpec *table, gsize n_rows, const void *target,
		       const char *name)
{
	const ImtaOptionSpec *row = imta_option_lookup(table, n_rows, name);
	GString *out;

	if (row == NULL)
		return NULL;
	out = g_string_new(NULL);
	imta_option_format_value(row, target, out);
	return g_string_free(out, FALSE);
}

void
imta_option_format_value(const ImtaOptionSpec *row, const void *target, GString *out)
{
	switch (row->kind) {
	case IMTA_OPT_INT:
	case IMTA_OPT_DURATION:
		g_string_append_printf(out, "%" G_GINT64_FORMAT, *OPT_CFIELD(target, row, gint64));
		return;
	case IMTA_OPT_BOOL:
		g_string_append_c(out, *OPT_CFIELD(target, row, gboolean) ? '1' : '0');
		return;
	case IMTA_OPT_MASK: {
		guint32 mask = *OPT_CFIELD(target, row, guint32);

		if (mask == 0)
			g_string_append_c(out, '0');
		else
			g_string_append_printf(out, "16%%%X", mask);
		return;
	}
	case IMTA_OPT_STRING: {
		const char *s = *OPT_CFIELD(target, row, char *);

		if (s != NULL)
			g_string_append(out, s);
		else if (row->flags & IMTA_OPT_NULL_WORD)
			g_string_append(out, "NULL");
		return;
	}
	case IMTA_OPT_PORTS: {
		const GArray *ports = *OPT_CFIELD(target, row, GArray *);

		if (ports == NULL)
			return;
		if (ports->len == 0)
			g_string_append_c(out, '0');
		for (guint i = 0; i < ports->len; i++)
			g_string_append_printf(out, "%s%u", i > 0 ? "," : "",
					       g_array_index(ports, guint16, i));
		return;
	}
	case IMTA_OPT_STRINGS: {
		const GPtrArray *values = *OPT_CFIELD(target, row, GPtrArray *);

		for (guint i = 0; values != NULL && i < values->len; i++)
			g_string_append_printf(out, "%s%s", i > 0 ? ", " : "",
					       (const char *)g_ptr_array_index(values, i));
		return;
	}
	}
	g_assert_not_reached();
}

static gboolean
opt_row_is_set(const ImtaOptionSpec *row, const void *target)
{
	switch (row->kind) {
	case IMTA_OPT_STRING:
		return *OPT_CFIELD(target, row, char *) != NULL;
	case IMTA_OPT_PORTS:
		return *OPT_CFIELD(target, row, GArray *) != NULL;
	case IMTA_OPT_STRINGS: {
		const GPtrArray *values = *OPT_CFIELD(target, row, GPtrArray *);

		return values != NULL && values->len > 0;
	}
	default:
		return TRUE;
	}
}

static void
opt_dump_row(const ImtaOptionSpec *row, const void *target, GString *out)
{
	if (row->flags & IMTA_OPT_HIDDEN) {
		g_string_append_printf(out, "! %s is %s\n", row->name,
				       opt_row_is_set(row, target) ? "set (not shown)" : "not set");
		return;
	}
	if (row->kind == IMTA_OPT_STRINGS) {
		const GPtrArray *values = *OPT_CFIELD(target, row, GPtrArray *);

		if (values == NULL || values->len == 0)
			g_string_append_printf(out, "! %s is not set\n", row->name);
		for (guint i = 0; values != NULL && i < values->len; i++)
			g_string_append_printf(out, "%s=%s\n", row->name,
					       (const char *)g_ptr_array_index(values, i));
		return;
	}
	if (row->kind == IMTA_OPT_PORTS && !opt_row_is_set(row, target)) {
		g_string_append_printf(out, "! %s is not set\n", row->name);
		return;
	}
	g_string_append_printf(out, "%s=", row->name);
	imta_option_format_value(row, target, out);
	g_string_append_c(out, '\n');
}

void
imta_option_table_dump(const ImtaOptionSpec *table, gsize n_rows, const void *target,
		       guint scope, GString *out)
{
	for (gsize i = 0; i < n_rows; i++)
		if (table[i].scopes & scope)
			opt_dump_row(&table[i], target, out);
}

gboolean
imta_option_split_line(const char *text, char **name_r, char **value_r,
		       gsize *name_offset_r, gsize *value_offset_r)
{
	const char *eq = strchr(text, '=');
	gsize name_start, name_end, value_start, value_end;

	if (eq == NULL)
		return FALSE;
	name_start = opt_skip_blanks(text, 0);
	name_end = (gsize)(eq - text);
	while (name_end > name_start && opt_is_blank(text[name_end - 1]))
		name_end--;
	if (name_end == name_start)
		return FALSE;
	value_start = opt_skip_blanks(text, (gsize)(eq - text) + 1);
	value_end = strlen(text);
	while (value_end > value_start &&
	       (opt_is_blank(text[value_end - 1]) || text[value_end - 1] == '\r'))
		value_end--;
	*name_r = g_strndup(text + name_start, name_end - name_start);
	*value_r = g_strndup(text + value_start, value_end - value_start);
	if (name_offset_r != NULL)
		*name_offset_r = name_start;
	if (value_offset_r != NULL)
		*value_offset_r = value_start;
	return TRUE;
}

/* "[TYPE=value]" starting at text[start] (the '['). */
static gboolean
opt_parse_section(ImtaCfgFile *cf, const ImtaCfgLine *raw, gsize start,
		  ImtaOptionLine *line_r, GError **error)
{
	gsize end = raw->length;
	g_autofree char *inner = NULL;
	gsize name_offset, value_offset;
	ImtaSourcePos pos;

	while (end > start && opt_is_blank(raw->text[end - 1]))
		end--;
	if (end - start < 2 || raw->text[end - 1] != ']') {
		imta_cfg_file_pos(cf, end, &pos);
		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &pos,
				  "expected ']' at the end of the section line");
		return FALSE;
	}
	inner = g_strndup(raw->text + start + 1, end - start - 2);
	if (!imta_option_split_line(inner, &line_r->name, &line_r->value, &name_offset,
				    &value_offset)) {
		imta_cfg_file_pos(cf, start + 1, &pos);
		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &pos,
				  "expected a section line of the form [TYPE=name]");
		return FALSE;
	}
	line_r->kind = IMTA_OPTION_LINE_SECTION;
	imta_cfg_file_pos(cf, start + 1 + name_offset, &line_r->name_pos);
	imta_cfg_file_pos(cf, start + 1 + value_offset, &line_r->value_pos);
	if (*line_r->value == '\0') {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &line_r->value_pos,
				  "expected a name after '=' in section [%s=...]", line_r->name);
		return FALSE;
	}
	return TRUE;
}

static gboolean
opt_parse_setting(ImtaCfgFile *cf, const ImtaCfgLine *raw, gsize start,
		  ImtaOptionLine *line_r, GError **error)
{
	gsize name_offset, value_offset;

	if (!imta_option_split_line(raw->text + start, &line_r->name, &line_r->value,
				    &name_offset, &value_offset)) {
		g_autofree char *quoted = imta_option_quote(raw->text + start);

		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &line_r->pos,
				  "expected NAME=value, got %s", quoted);
		return FALSE;
	}
	line_r->kind = IMTA_OPTION_LINE_SETTING;
	imta_cfg_file_pos(cf, start + name_offset, &line_r->name_pos);
	imta_cfg_file_pos(cf, start + value_offset, &line_r->value_pos);
	return TRUE;
}

gboolean
imta_option_next_line(ImtaCfgFile *cf, const char *comment_chars, ImtaOptionLine *line_r,
		      GError **error)
{
	ImtaCfgLine raw;

	imta_option_line_clear(line_r);
	while (imta_cfg_file_next(cf, &raw, error)) {
		gsize i = 0;

		while (i < raw.length && opt_is_blank(raw.text[i]))
			i++;
		if (i >= raw.length)
			continue;
		/* The reader only knows comments in column 1; indented ones are
		 * comments too. */
		if (comment_chars != NULL && strchr(comment_chars, raw.text[i]) != NULL)
			continue;
		imta_cfg_file_pos(cf, i, &line_r->pos);
		if (raw.text[i] == '[')
			return opt_parse_section(cf, &raw, i, line_r, error);
		return opt_parse_setting(cf, &raw, i, line_r, error);
	}
	return FALSE;
}

void
imta_option_line_clear(ImtaOptionLine *line)
{
	g_clear_pointer(&line->name, g_free);
	g_clear_pointer(&line->value, g_free);
	memset(line, 0, sizeof(*line));
}

gboolean
imta_option_check_ip(const char *value, const char **expected_r)
{
	guchar buf[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, value, buf) == 1 || inet_pton(AF_INET6, value, buf) == 1)
		return TRUE;
	*expected_r = "an IPv4 or IPv6 address";
	return FALSE;
}

gboolean
imta_option_check_hostname(const char *value, const char **expected_r)
{
	gsize len = strlen(value), label = 0;

	*expected_r = "a host name (letters, digits, '-', '_' and dots)";
	if (len > 0 && value[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return FALSE;
	for (gsize i = 0; i < len; i++) {
		char c = value[i];

		if (c == '.') {
			if (label == 0)
				return FALSE;
			label = 0;
			continue;
		}
		if (!g_ascii_isalnum(c) && c != '-' && c != '_')
			return FALSE;
		if (++label > 63)
			return FALSE;
	}
	return label > 0;
}

gboolean
imta_option_check_user(const char *value, const char **expected_r)
{
	gsize len = strlen(value);

	*expected_r = "an account name (letters, digits, '_', '-' and '.', at most 32)";
	if (len == 0 || len > 32 || value[0] == '-')
		return FALSE;
	for (gsize i = 0; i < len; i++)
		if (!g_ascii_isalnum(value[i]) && strchr("_-.", value[i]) == NULL)
			return FALSE;
	return TRUE;
}

gboolean
imta_option_check_word(const char *value, const char **expected_r)
{
	*expected_r = "a single word without blanks";
	for (gsize i = 0; value[i] != '\0'; i++)
		if (g_ascii_isspace(value[i]))
			return FALSE;
	return TRUE;
}
