/*
 * conversions.h - the conversions file: which external program the
 * conversion channel runs on which body part (conversion(8)).
 *
 * Syntax.  '!' or '#' as the first non-blank character starts a comment
 * line.  An entry is a run of `name=value` clauses separated by ';'; it
 * goes on over the following lines while a line ends with ';' and ends at
 * the first line that does not (blank lines between entries are allowed,
 * not inside one).  Names are case-insensitive; a value is a word, or a
 * "quoted string" in which \" and \\ stand for " and \.
 *
 *   in-chan=tcp_local; out-chan=*;
 *     in-type=text; in-subtype=plain;
 *     out-type=text; out-subtype=plain;
 *     command="/usr/local/libexec/to-upper INPUT_FILE OUTPUT_FILE";
 *     timeout=30; on-error=defer
 *
 * Match clauses (all given must match; values are patterns with '*' and
 * '%' as in mapping tables, compared case-blind): in-chan (the source
 * channel), out-chan (the channel the message goes on to), in-type,
 * in-subtype, in-description, in-disposition, in-filename.  Action
 * clauses: command (the program and its arguments, split like a shell
 * would without running one; the words INPUT_FILE and OUTPUT_FILE, also
 * written $INPUT_FILE or ${INPUT_FILE}, become the file names), relabel=1
 * (change the type only, no command), out-type and out-subtype (the new
 * type; default: the old one), out-charset (a charset for a text
 * result), timeout (seconds, 1 to 3600, default 60), on-error (defer:
 * retry later, the default; return: return the message to its sender).
 * An entry has a command or relabel=1, not both.  The first matching
 * entry wins.
 */
#ifndef IMTA_CONVERSIONS_H
#define IMTA_CONVERSIONS_H

#include <glib.h>
#include <imta/error.h>
#include <imta/mime.h>

G_BEGIN_DECLS

#define IMTA_CONVERSION_DEFAULT_TIMEOUT 60
#define IMTA_CONVERSION_MAX_TIMEOUT 3600
#define IMTA_CONVERSION_MAX_ENTRIES 10000
#define IMTA_CONVERSION_MAX_VALUE 4096
/* The only PATH a converter gets (a command without '/' is looked up in it). */
#define IMTA_CONVERSION_PATH "/usr/local/bin:/usr/bin:/bin"

typedef enum {
	IMTA_CONVERSION_DEFER,   /* retry the message later */
	IMTA_CONVERSION_RETURN,  /* return it to its sender */
} ImtaConversionOnError;

typedef struct {
	/* Patterns; NULL matches anything. */
	char *in_chan, *out_chan, *in_type, *in_subtype;
	char *in_description, *in_disposition, *in_filename;
	/* What to do. */
	char *command;              /* NULL with relabel */
	gboolean relabel;
	char *out_type, *out_subtype, *out_charset; /* NULL: keep */
	guint timeout;              /* seconds */
	ImtaConversionOnError on_error;
	ImtaSourcePos pos;          /* the entry's first clause */
} ImtaConversionEntry;

typedef struct {
	GPtrArray *entries;         /* ImtaConversionEntry *, file order */
	GStringChunk *names;        /* the file name positions point to */
} ImtaConversions;

/* Parse the file; errors are "file:line:column: what was expected". */
ImtaConversions *imta_conversions_load(const char *path, GError **error);
ImtaConversions *imta_conversions_parse_text(const char *name, const char *text, gsize length,
					     GError **error);

/* The first entry for a part of a message going from `in_chan` to
 * `out_chan`, or NULL. */
const ImtaConversionEntry *imta_conversions_match(const ImtaConversions *conversions,
						  const char *in_chan, const char *out_chan,
						  const ImtaMimePart *part);

/* The command's argument vector with INPUT_FILE and OUTPUT_FILE words
 * replaced; NULL (with error) when the command cannot be split. */
GStrv imta_conversion_argv(const ImtaConversionEntry *entry, const char *input_file,
			   const char *output_file, GError **error);

void imta_conversions_free(ImtaConversions *conversions);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaConversions, imta_conversions_free)

G_END_DECLS

#endif
