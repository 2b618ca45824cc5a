/*
 * cfgfile.c - logical lines of the MTA's text configuration files, with
 * the file, line and column of every byte so errors point at the token.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/cfgfile.h>

/* Configuration files are small; refuse anything absurd rather than read
 * a runaway file into memory. */
#define CFG_MAX_FILE_SIZE (64u * 1024 * 1024)

typedef struct {
	const char *name;   /* interned */
	char *data;
	gsize length;
	gsize offset;
	guint line;         /* number of the last line read */
} CfgFrame;

/* Where a stretch of the logical line came from. */
typedef struct {
	gsize offset;       /* first byte of the stretch in the logical line */
	const char *file;
	guint line;
} CfgSegment;

struct _ImtaCfgFile {
	GStringChunk *names;
	ImtaCfgFlags flags;
	char *comment_chars;
	GPtrArray *frames;  /* CfgFrame *, innermost last */
	GString *text;
	GArray *segments;   /* CfgSegment */
	const char *top_name;
};

static void
cfg_frame_free(gpointer p)
{
	CfgFrame *frame = p;

	g_free(frame->data);
	g_free(frame);
}

static ImtaCfgFile *
cfg_file_new(ImtaCfgFlags flags, const char *comment_chars, GStringChunk *names)
{
	ImtaCfgFile *cf = g_new0(ImtaCfgFile, 1);

	cf->names = names;
	cf->flags = flags;
	cf->comment_chars = g_strdup(comment_chars != NULL ? comment_chars : "");
	cf->frames = g_ptr_array_new_with_free_func(cfg_frame_free);
	cf->text = g_string_new(NULL);
	cf->segments = g_array_new(FALSE, FALSE, sizeof(CfgSegment));
	return cf;
}

static void
cfg_push(ImtaCfgFile *cf, const char *name, char *data, gsize length)
{
	CfgFrame *frame = g_new0(CfgFrame, 1);

	frame->name = g_string_chunk_insert_const(cf->names, name);
	frame->data = data;
	frame->length = length;
	g_ptr_array_add(cf->frames, frame);
	if (cf->top_name == NULL)
		cf->top_name = frame->name;
}

static gboolean
cfg_read_file(const char *path, char **data_r, gsize *length_r, GError **error)
{
	g_autoptr(GError) local = NULL;

	if (!g_file_get_contents(path, data_r, length_r, &local)) {
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_IO, "%s", local->message);
		return FALSE;
	}
	if (*length_r > CFG_MAX_FILE_SIZE) {
		g_clear_pointer(data_r, g_free);
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_IO,
			    "%s: file larger than %u bytes", path, CFG_MAX_FILE_SIZE);
		return FALSE;
	}
	return TRUE;
}

ImtaCfgFile *
imta_cfg_file_open(const char *path, ImtaCfgFlags flags, const char *comment_chars,
		   GStringChunk *names, GError **error)
{
	char *data = NULL;
	gsize length = 0;
	ImtaCfgFile *cf;

	if (!cfg_read_file(path, &data, &length, error))
		return NULL;
	cf = cfg_file_new(flags, comment_chars, names);
	cfg_push(cf, path, data, length);
	return cf;
}

ImtaCfgFile *
imta_cfg_file_open_text(const char *name, const char *text, gsize length,
			ImtaCfgFlags flags, const char *comment_chars, GStringChunk *names)
{
	ImtaCfgFile *cf = cfg_file_new(flags, comment_chars, names);

	cfg_push(cf, name, g_memdup2(text, length), length);
	return cf;
}

/* The next physical line of the innermost file, without its line end. */
static gboolean
cfg_physical_line(CfgFrame *frame, const char **start_r, gsize *length_r)
{
	const char *start, *nl;
	gsize length;

	if (frame->offset >= frame->length)
		return FALSE;
	start = frame->data + frame->offset;
	nl = memchr(start, '\n', frame->length - frame->offset);
	length = nl != NULL ? (gsize)(nl - start) : frame->length - frame->offset;
	frame->offset += length + (nl != NULL ? 1 : 0);
	frame->line++;
	if (length > 0 && start[length - 1] == '\r')
		length--;
	*start_r = start;
	*length_r = length;
	return TRUE;
}

static void
cfg_append(ImtaCfgFile *cf, const CfgFrame *frame, const char *start, gsize length)
{
	CfgSegment seg = { cf->text->len, frame->name, frame->line };

	g_array_append_val(cf->segments, seg);
	g_string_append_len(cf->text, start, (gssize)length);
}

static gboolean
cfg_is_blank(const char *text, gsize length)
{
	for (gsize i = 0; i < length; i++)
		if (text[i] != ' ' && text[i] != '\t')
			return FALSE;
	return TRUE;
}

static gboolean
cfg_include(ImtaCfgFile *cf, const CfgFrame *frame, const char *line, gsize length,
	    GError **error)
{
	ImtaSourcePos pos = { frame->name, frame->line, 1 };
	g_autofree char *spec = g_strstrip(g_strndup(line + 1, length - 1));
	g_autofree char *dir = NULL;
	g_autofree char *path = NULL;
	g_autoptr(GError) local = NULL;
	char *data = NULL;
	gsize data_length = 0;

	if (*spec == '\0') {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &pos,
				  "expected a file name after '<'");
		return FALSE;
	}
	if (cf->frames->len > IMTA_CFG_MAX_INCLUDE_DEPTH) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &pos,
				  "includes nested deeper than %d levels", IMTA_CFG_MAX_INCLUDE_DEPTH);
		return FALSE;
	}
	dir = g_path_get_dirname(frame->name);
	path = g_path_is_absolute(spec) ? g_strdup(spec) : g_build_filename(dir, spec, NULL);
	if (!cfg_read_file(path, &data, &data_length, &local)) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_IO, &pos, "cannot include: %s",
				  local->message);
		return FALSE;
	}
	cfg_push(cf, path, data, data_length);
	return TRUE;
}

/* Does the logical line end in a continuation backslash?  An escaped
 * backslash ("\\") at the end is text, not a continuation. */
static gboolean
cfg_continues(const GString *text)
{
	gsize n = 0;

	while (n < text->len && text->str[text->len - 1 - n] == '\\')
		n++;
	return n % 2 == 1;
}

gboolean
imta_cfg_file_next(ImtaCfgFile *cf, ImtaCfgLine *line_r, GError **error)
{
	for (;;) {
		CfgFrame *frame;
		const char *start;
		gsize length;

		if (cf->frames->len == 0)
			return FALSE;
		frame = g_ptr_array_index(cf->frames, cf->frames->len - 1);
		if (!cfg_physical_line(frame, &start, &length)) {
			g_ptr_array_remove_index(cf->frames, cf->frames->len - 1);
			continue;
		}
		if (memchr(start, '\0', length) != NULL) {
			ImtaSourcePos pos = { frame->name, frame->line,
					      (guint)((const char *)memchr(start, '\0', length) - start) + 1 };

			imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &pos,
					  "NUL byte in configuration text");
			return FALSE;
		}
		if (length > 0 && strchr(cf->comment_chars, start[0]) != NULL)
			continue;
		if ((cf->flags & IMTA_CFG_INCLUDES) && length > 0 && start[0] == '<') {
			if (!cfg_include(cf, frame, start, length, error))
				return FALSE;
			continue;
		}

		g_string_truncate(cf->text, 0);
		g_array_set_size(cf->segments, 0);
		cfg_append(cf, frame, start, length);
		line_r->indented = length > 0 && (start[0] == ' ' || start[0] == '\t');
		while ((cf->flags & IMTA_CFG_CONTINUATION) && cfg_continues(cf->text)) {
			g_string_truncate(cf->text, cf->text->len - 1);
			if (!cfg_physical_line(frame, &start, &length))
				break;
			cfg_append(cf, frame, start, length);
		}
		line_r->text = cf->text->str;
		line_r->length = cf->text->len;
		line_r->blank = cfg_is_blank(cf->text->str, cf->text->len);
		if (line_r->blank && !(cf->flags & IMTA_CFG_KEEP_BLANK))
			continue;
		return TRUE;
	}
}

void
imta_cfg_file_pos(ImtaCfgFile *cf, gsize offset, ImtaSourcePos *pos_r)
{
	const CfgSegment *seg = NULL;

	for (guint i = 0; i < cf->segments->len; i++) {
		const CfgSegment *s = &g_array_index(cf->segments, CfgSegment, i);

		if (s->offset > offset)
			break;
		seg = s;
	}
	if (seg == NULL) {
		imta_cfg_file_whole(cf, pos_r);
		return;
	}
	pos_r->file = seg->file;
	pos_r->line = seg->line;
	pos_r->column = (guint)(offset - seg->offset) + 1;
}

void
imta_cfg_file_whole(ImtaCfgFile *cf, ImtaSourcePos *pos_r)
{
	pos_r->file = cf->top_name;
	pos_r->line = 0;
	pos_r->column = 0;
}

gboolean
imta_cfg_next_word(const ImtaCfgLine *line, gsize *offset, gsize *start_r, gsize *length_r)
{
	return imta_cfg_next_word_quoted(line, '\0', offset, start_r, length_r);
}

gboolean
imta_cfg_next_word_quoted(const ImtaCfgLine *line, char quote, gsize *offset,
			  gsize *start_r, gsize *length_r)
{
	gsize i = *offset;
	gsize start;

	while (i < line->length && (line->text[i] == ' ' || line->text[i] == '\t'))
		i++;
	if (i >= line->length) {
		*offset = i;
		return FALSE;
	}
	start = i;
	while (i < line->length && line->text[i] != ' ' && line->text[i] != '\t')
		i += quote != '\0' && line->text[i] == quote && i + 1 < line->length ? 2 : 1;
	*start_r = start;
	*length_r = i - start;
	*offset = i;
	return TRUE;
}

void
imta_cfg_file_free(ImtaCfgFile *cf)
{
	if (cf == NULL)
		return;
	g_ptr_array_unref(cf->frames);
	g_string_free(cf->text, TRUE);
	g_array_unref(cf->segments);
	g_free(cf->comment_chars);
	g_free(cf);
}
