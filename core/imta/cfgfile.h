/*
 * cfgfile.h - the line reader every configuration parser is built on.
 *
 * The MTA's text files share a physical syntax: comment lines starting in
 * column 1, long lines continued with a trailing backslash, and, in some
 * files, "<file" lines that include another file at that point.  The reader
 * turns a file into logical lines and remembers, for every byte of a
 * logical line, which file, line and column it came from, so that a parser
 * can report an error at the exact place of the offending token even on a
 * continuation line or inside an included file.
 *
 * Ownership: the ImtaCfgFile owns every logical line it returns (valid
 * until the next call).  File names are interned in a GStringChunk that the
 * caller owns (normally the parsed configuration), so positions stay valid
 * as long as the configuration lives, long after the reader is freed.
 */
#ifndef IMTA_CFGFILE_H
#define IMTA_CFGFILE_H

#include <glib.h>
#include <imta/error.h>

G_BEGIN_DECLS

typedef enum {
	IMTA_CFG_INCLUDES      = 1 << 0, /* "<file" lines include a file */
	IMTA_CFG_CONTINUATION  = 1 << 1, /* a trailing '\' joins the next line */
	IMTA_CFG_KEEP_BLANK    = 1 << 2, /* return blank lines (they separate sections) */
} ImtaCfgFlags;

typedef struct _ImtaCfgFile ImtaCfgFile;

typedef struct {
	const char *text;   /* the logical line, without newline; owned by the reader */
	gsize length;
	gboolean blank;     /* empty or whitespace only */
	gboolean indented;  /* the first physical line starts with a space or tab */
} ImtaCfgLine;

/* Open `path`.  `comment_chars` lists the characters that make a line a
 * comment when they stand in column 1 (e.g. "!" or "!#;").  Includes are
 * resolved relative to the including file's directory and nest at most
 * IMTA_CFG_MAX_INCLUDE_DEPTH deep. */
#define IMTA_CFG_MAX_INCLUDE_DEPTH 3
ImtaCfgFile *imta_cfg_file_open(const char *path, ImtaCfgFlags flags,
				const char *comment_chars, GStringChunk *names,
				GError **error);

/* Open in-memory text as if it were the file `name` (tests, fuzzing).
 * Includes are resolved relative to the current directory. */
ImtaCfgFile *imta_cfg_file_open_text(const char *name, const char *text, gsize length,
				     ImtaCfgFlags flags, const char *comment_chars,
				     GStringChunk *names);

/* Next logical line into *line_r.  Returns FALSE at the end of input, and
 * FALSE with *error set when an include fails (missing file, too deep) or a
 * line holds a NUL byte. */
gboolean imta_cfg_file_next(ImtaCfgFile *cf, ImtaCfgLine *line_r, GError **error);

/* Position of byte `offset` of the line last returned (offset may equal the
 * length: the position just after the last character). */
void imta_cfg_file_pos(ImtaCfgFile *cf, gsize offset, ImtaSourcePos *pos_r);

/* Position of the whole file (line 0), for errors such as a missing
 * section that belong to no line. */
void imta_cfg_file_whole(ImtaCfgFile *cf, ImtaSourcePos *pos_r);

void imta_cfg_file_free(ImtaCfgFile *cf);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaCfgFile, imta_cfg_file_free)

/* Split helpers shared by the parsers.  They skip blanks (space, tab) from
 * *offset, return the token's start offset in *start_r and its length, and
 * advance *offset past it.  Returns FALSE at the end of the line. */
gboolean imta_cfg_next_word(const ImtaCfgLine *line, gsize *offset,
			    gsize *start_r, gsize *length_r);

/* The same, where `quote` (e.g. '$') makes the character after it part of
 * the word even when it is a blank, as in mapping entries' "$ ". */
gboolean imta_cfg_next_word_quoted(const ImtaCfgLine *line, char quote, gsize *offset,
				   gsize *start_r, gsize *length_r);

G_END_DECLS

#endif
