/*
 * conversions.c - the conversions file (syntax in <imta/conversions.h>):
 * parsing it into entries, choosing the entry for a body part, and
 * building a converter's argument vector.
 */
#include "config.h"

#include <string.h>

#include <glib.h>

#include <imta/conversions.h>
#include <imta/mappings.h>

typedef enum {
	CLAUSE_PATTERN,
	CLAUSE_STRING,
	CLAUSE_BOOL,
	CLAUSE_TIMEOUT,
	CLAUSE_ON_ERROR,
} ClauseKind;

typedef struct {
	const char *name;
	ClauseKind kind;
	gsize offset;
} ClauseSpec;

#define ENTRY_FIELD(f) G_STRUCT_OFFSET(ImtaConversionEntry, f)

static const ClauseSpec clause_specs[] = {
	{ "in-chan", CLAUSE_PATTERN, ENTRY_FIELD(in_chan) },
	{ "out-chan", CLAUSE_PATTERN, ENTRY_FIELD(out_chan) },
	{ "in-type", CLAUSE_PATTERN, ENTRY_FIELD(in_type) },
	{ "in-subtype", CLAUSE_PATTERN, ENTRY_FIELD(in_subtype) },
	{ "in-description", CLAUSE_PATTERN, ENTRY_FIELD(in_description) },
	{ "in-disposition", CLAUSE_PATTERN, ENTRY_FIELD(in_disposition) },
	{ "in-filename", CLAUSE_PATTERN, ENTRY_FIELD(in_filename) },
	{ "command", CLAUSE_STRING, ENTRY_FIELD(command) },
	{ "relabel", CLAUSE_BOOL, ENTRY_FIELD(relabel) },
	{ "out-type", CLAUSE_STRING, ENTRY_FIELD(out_type) },
	{ "out-subtype", CLAUSE_STRING, ENTRY_FIELD(out_subtype) },
	{ "out-charset", CLAUSE_STRING, ENTRY_FIELD(out_charset) },
	{ "timeout", CLAUSE_TIMEOUT, ENTRY_FIELD(timeout) },
	{ "on-error", CLAUSE_ON_ERROR, ENTRY_FIELD(on_error) },
};

typedef struct {
	ImtaConversions *conv;
	const char *file;
	ImtaConversionEntry *entry;  /* open entry, or NULL */
	guint64 seen;                /* clause_specs bits given in the open entry */
} ConvParser;

static void
conversion_entry_free(gpointer p)
{
	ImtaConversionEntry *e = p;

	g_free(e->in_chan);
	g_free(e->out_chan);
	g_free(e->in_type);
	g_free(e->in_subtype);
	g_free(e->in_description);
	g_free(e->in_disposition);
	g_free(e->in_filename);
	g_free(e->command);
	g_free(e->out_type);
	g_free(e->out_subtype);
	g_free(e->out_charset);
	g_free(e);
}

void
imta_conversions_free(ImtaConversions *conversions)
{
	if (conversions == NULL)
		return;
	g_ptr_array_unref(conversions->entries);
	g_string_chunk_free(conversions->names);
	g_free(conversions);
}

static gboolean
conv_word_char(char c)
{
	return c != '\0' && c != ';' && c != '"' && !g_ascii_isspace(c);
}

/* A MIME token (RFC 2045 5.1) for out-type, out-subtype, out-charset. */
static gboolean
conv_is_token(const char *s)
{
	if (*s == '\0')
		return FALSE;
	for (; *s != '\0'; s++)
		if ((guchar) *s <= 32 || (guchar) *s >= 127 || strchr("()<>@,;:\\\"/[]?=", *s))
			return FALSE;
	return TRUE;
}

static gboolean
conv_set(ConvParser *p, const ClauseSpec *spec, char *value, const ImtaSourcePos *pos,
	 GError **error)
{
	guint8 *base = (guint8 *) p->entry;
	gint64 n;
	char *end = NULL;

	switch (spec->kind) {
	case CLAUSE_PATTERN:
	case CLAUSE_STRING:
		if ((spec->offset == ENTRY_FIELD(out_type) ||
		     spec->offset == ENTRY_FIELD(out_subtype) ||
		     spec->offset == ENTRY_FIELD(out_charset)) && !conv_is_token(value)) {
			imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, pos,
					  "%s: expected a MIME token, got \"%s\"", spec->name, value);
			return FALSE;
		}
		if (spec->kind == CLAUSE_STRING && value[0] == '\0') {
			imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, pos,
					  "%s: expected a value", spec->name);
			return FALSE;
		}
		*(char **) (base + spec->offset) = g_strdup(value);
		return TRUE;
	case CLAUSE_BOOL:
		if (strcmp(value, "0") != 0 && strcmp(value, "1") != 0) {
			imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, pos,
					  "%s: expected 0 or 1, got \"%s\"", spec->name, value);
			return FALSE;
		}
		*(gboolean *) (base + spec->offset) = value[0] == '1';
		return TRUE;
	case CLAUSE_TIMEOUT:
		n = g_ascii_strtoll(value, &end, 10);
		if (value[0] == '\0' || *end != '\0' || !g_ascii_isdigit(value[0]) || n < 1 ||
		    n > IMTA_CONVERSION_MAX_TIMEOUT) {
			imta_set_error_at(error, IMTA_CONFIG_ERROR_RANGE, pos,
					  "timeout: expected an integer between 1 and %d, got "
					  "\"%s\"", IMTA_CONVERSION_MAX_TIMEOUT, value);
			return FALSE;
		}
		*(guint *) (base + spec->offset) = (guint) n;
		return TRUE;
	case CLAUSE_ON_ERROR:
	default:
		if (g_ascii_strcasecmp(value, "defer") == 0) {
			p->entry->on_error = IMTA_CONVERSION_DEFER;
		} else if (g_ascii_strcasecmp(value, "return") == 0) {
			p->entry->on_error = IMTA_CONVERSION_RETURN;
		} else {
			imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, pos,
					  "on-error: expected defer or return, got \"%s\"", value);
			return FALSE;
		}
		return TRUE;
	}
}

static gboolean
conv_clause(ConvParser *p, const char *name, char *value, const ImtaSourcePos *name_pos,
	    const ImtaSourcePos *value_pos, GError **error)
{
	for (guint i = 0; i < G_N_ELEMENTS(clause_specs); i++) {
		if (g_ascii_strcasecmp(name, clause_specs[i].name) != 0)
			continue;
		if (p->seen & (G_GUINT64_CONSTANT(1) << i)) {
			imta_set_error_at(error, IMTA_CONFIG_ERROR_DUPLICATE, name_pos,
					  "%s given twice in one entry", clause_specs[i].name);
			return FALSE;
		}
		p->seen |= G_GUINT64_CONSTANT(1) << i;
		return conv_set(p, &clause_specs[i], value, value_pos, error);
	}
	imta_set_error_at(error, IMTA_CONFIG_ERROR_UNKNOWN, name_pos,
			  "unknown clause \"%s\" (expected in-chan, out-chan, in-type, in-subtype, "
			  "in-description, in-disposition, in-filename, command, relabel, "
			  "out-type, out-subtype, out-charset, timeout or on-error)", name);
	return FALSE;
}

static gboolean
conv_finish(ConvParser *p, GError **error)
{
	ImtaConversionEntry *e = p->entry;

	if (e == NULL)
		return TRUE;
	p->entry = NULL;
	p->seen = 0;
	if (e->command == NULL && !e->relabel) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_MISSING, &e->pos,
				  "the entry has neither a command nor relabel=1");
		conversion_entry_free(e);
		return FALSE;
	}
	if (e->command != NULL && e->relabel) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &e->pos,
				  "the entry has both a command and relabel=1; give one");
		conversion_entry_free(e);
		return FALSE;
	}
	if (e->relabel && e->out_type == NULL && e->out_subtype == NULL) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_MISSING, &e->pos,
				  "relabel=1 needs out-type or out-subtype");
		conversion_entry_free(e);
		return FALSE;
	}
	if (p->conv->entries->len >= IMTA_CONVERSION_MAX_ENTRIES) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_RANGE, &e->pos,
				  "more than %d entries", IMTA_CONVERSION_MAX_ENTRIES);
		conversion_entry_free(e);
		return FALSE;
	}
	g_ptr_array_add(p->conv->entries, e);
	return TRUE;
}

/* A quoted value starting at line[*i] == '"'. */
static gboolean
conv_quoted(const char *line, gsize *i, GString *value, const ImtaSourcePos *pos,
	    GError **error)
{
	gsize k = *i + 1;

	for (; line[k] != '\0' && line[k] != '"'; k++) {
		if (line[k] == '\\' && (line[k + 1] == '"' || line[k + 1] == '\\'))
			k++;
		g_string_append_c(value, line[k]);
	}
	if (line[k] != '"') {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, pos,
				  "expected a closing '\"' before the end of the line");
		return FALSE;
	}
	*i = k + 1;
	return TRUE;
}

/* One line holding clauses; *open_r says whether it ended with ';'. */
static gboolean
conv_line(ConvParser *p, const char *line, guint lineno, gboolean *open_r, GError **error)
{
	gsize i = 0;

	*open_r = FALSE;
	for (;;) {
		ImtaSourcePos name_pos = { p->file, lineno, 0 };
		ImtaSourcePos value_pos = { p->file, lineno, 0 };
		g_autoptr(GString) value = g_string_new(NULL);
		g_autofree char *name = NULL;
		gsize start;

		while (g_ascii_isspace(line[i]))
			i++;
		if (line[i] == '\0')
			return TRUE;
		*open_r = FALSE;
		name_pos.column = (guint) i + 1;
		start = i;
		while (g_ascii_isalnum(line[i]) || line[i] == '-' || line[i] == '_')
			i++;
		if (i == start) {
			imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &name_pos,
					  "expected a clause name, got \"%.20s\"", line + i);
			return FALSE;
		}
		name = g_strndup(line + start, i - start);
		while (line[i] == ' ' || line[i] == '\t')
			i++;
		if (line[i] != '=') {
			ImtaSourcePos at = { p->file, lineno, (guint) i + 1 };

			imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &at,
					  "expected '=' after \"%s\"", name);
			return FALSE;
		}
		i++;
		while (line[i] == ' ' || line[i] == '\t')
			i++;
		value_pos.column = (guint) i + 1;
		if (line[i] == '"') {
			if (!conv_quoted(line, &i, value, &value_pos, error))
				return FALSE;
		} else {
			while (conv_word_char(line[i]))
				g_string_append_c(value, line[i++]);
		}
		if (value->len > IMTA_CONVERSION_MAX_VALUE) {
			imta_set_error_at(error, IMTA_CONFIG_ERROR_RANGE, &value_pos,
					  "a value longer than %d bytes", IMTA_CONVERSION_MAX_VALUE);
			return FALSE;
		}
		if (memchr(value->str, '\0', value->len) != NULL) {
			imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &value_pos,
					  "a NUL byte in the value");
			return FALSE;
		}
		if (p->entry == NULL) {
			p->entry = g_new0(ImtaConversionEntry, 1);
			p->entry->timeout = IMTA_CONVERSION_DEFAULT_TIMEOUT;
			p->entry->pos = name_pos;
		}
		if (!conv_clause(p, name, value->str, &name_pos, &value_pos, error))
			return FALSE;
		while (line[i] == ' ' || line[i] == '\t')
			i++;
		if (line[i] == ';') {
			i++;
			*open_r = TRUE;
		} else if (line[i] != '\0') {
			ImtaSourcePos at = { p->file, lineno, (guint) i + 1 };

			imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &at,
					  "expected ';' or the end of the line after the value of "
					  "%s", name);
			return FALSE;
		}
	}
}

ImtaConversions *
imta_conversions_parse_text(const char *name, const char *text, gsize length, GError **error)
{
	g_autoptr(ImtaConversions) conv = g_new0(ImtaConversions, 1);
	ConvParser p = { conv, NULL, NULL, 0 };
	gsize pos = 0;
	guint lineno = 0;
	gboolean ok = TRUE;

	conv->entries = g_ptr_array_new_with_free_func(conversion_entry_free);
	conv->names = g_string_chunk_new(256);
	p.file = g_string_chunk_insert_const(conv->names, name != NULL ? name : "conversions");
	while (ok && pos < length) {
		const char *nl = memchr(text + pos, '\n', length - pos);
		gsize len = nl != NULL ? (gsize) (nl - (text + pos)) : length - pos;
		g_autofree char *line = NULL;
		const char *s;
		gboolean open = FALSE;

		lineno++;
		if (memchr(text + pos, '\0', len) != NULL) {
			ImtaSourcePos at = { p.file, lineno, 1 };

			imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &at, "a NUL byte in the line");
			ok = FALSE;
			break;
		}
		line = g_strndup(text + pos, len);
		if (len > 0 && line[len - 1] == '\r')
			line[len - 1] = '\0';
		pos += len + 1;
		for (s = line; g_ascii_isspace(*s); s++)
			;
		if (*s == '!' || *s == '#')
			continue;
		if (*s == '\0') {
			ok = conv_finish(&p, error);
			continue;
		}
		ok = conv_line(&p, line, lineno, &open, error);
		if (ok && !open)
			ok = conv_finish(&p, error);
	}
	if (ok)
		ok = conv_finish(&p, error);
	if (p.entry != NULL)
		conversion_entry_free(p.entry);
	return ok ? g_steal_pointer(&conv) : NULL;
}

ImtaConversions *
imta_conversions_load(const char *path, GError **error)
{
	g_autofree char *text = NULL;
	g_autoptr(GError) local = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &text, &len, &local)) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_IO, NULL, "cannot read %s: %s", path,
				  local->message);
		return NULL;
	}
	return imta_conversions_parse_text(path, text, len, error);
}

/* ------------------------------------------------------------------ */
/* Matching */

static gboolean
conv_matches(const char *pattern, const char *value)
{
	g_auto(GStrv) captures = NULL;

	if (pattern == NULL || strcmp(pattern, "*") == 0)
		return TRUE;
	captures = imta_mapping_match_pattern(pattern, value != NULL ? value : "");
	return captures != NULL;
}

const ImtaConversionEntry *
imta_conversions_match(const ImtaConversions *conversions, const char *in_chan,
		       const char *out_chan, const ImtaMimePart *part)
{
	if (conversions == NULL)
		return NULL;
	for (guint i = 0; i < conversions->entries->len; i++) {
		const ImtaConversionEntry *e = g_ptr_array_index(conversions->entries, i);

		if (conv_matches(e->in_chan, in_chan) && conv_matches(e->out_chan, out_chan) &&
		    conv_matches(e->in_type, part->type) &&
		    conv_matches(e->in_subtype, part->subtype) &&
		    conv_matches(e->in_description, part->description) &&
		    conv_matches(e->in_disposition, part->disposition) &&
		    conv_matches(e->in_filename, part->filename))
			return e;
	}
	return NULL;
}

static const char *
conv_placeholder(const char *word, const char *input_file, const char *output_file)
{
	static const char *const inputs[] = { "INPUT_FILE", "$INPUT_FILE", "${INPUT_FILE}" };
	static const char *const outputs[] = { "OUTPUT_FILE", "$OUTPUT_FILE", "${OUTPUT_FILE}" };

	for (guint i = 0; i < G_N_ELEMENTS(inputs); i++) {
		if (strcmp(word, inputs[i]) == 0)
			return input_file;
		if (strcmp(word, outputs[i]) == 0)
			return output_file;
	}
	return NULL;
}

GStrv
imta_conversion_argv(const ImtaConversionEntry *entry, const char *input_file,
		     const char *output_file, GError **error)
{
	g_autoptr(GError) local = NULL;
	char **argv = NULL;

	if (entry->command == NULL) {
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_MISSING,
			    "the entry has no command");
		return NULL;
	}
	if (!g_shell_parse_argv(entry->command, NULL, &argv, &local)) {
		g_autofree char *where = imta_source_pos_format(&entry->pos);

		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_SYNTAX,
			    "%s: command: %s", where, local->message);
		return NULL;
	}
	for (guint i = 0; argv[i] != NULL; i++) {
		const char *with = conv_placeholder(argv[i], input_file, output_file);

		if (with != NULL) {
			g_free(argv[i]);
			argv[i] = g_strdup(with);
		}
	}
	return argv;
}
