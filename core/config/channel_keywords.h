/*
 * channel_keywords.h - the table of core channel keywords (private).
 *
 * Each core keyword is one row: its name, how many arguments it takes and
 * of what kind, and where in ImtaChannel it stores its value.  The imta.cnf
 * parser, `imsimta check`, and the imta.cnf(5) keyword list all read this
 * table.
 */
#ifndef IMTA_CHANNEL_KEYWORDS_H
#define IMTA_CHANNEL_KEYWORDS_H

#include <glib.h>
#include <imta/channel.h>

typedef enum {
	CHANNEL_KW_FLAG,     /* no argument; stores `value` into an int-sized field */
	CHANNEL_KW_INT,      /* one integer in min..max into a gint field */
	CHANNEL_KW_INT64,    /* one integer in min..max into a gint64 field */
	CHANNEL_KW_STRING,   /* one word into a char * field */
	CHANNEL_KW_BACKOFF,  /* one or more ISO 8601 durations; value = priority or -1 */
	CHANNEL_KW_NOTICES,  /* one to five ascending ages; value = priority or -1 */
	CHANNEL_KW_MARK,     /* no argument and no field: read with imta_channel_has_keyword() */
} ChannelKeywordKind;

typedef struct {
	const char *name;
	ChannelKeywordKind kind;
	gsize offset;
	gsize also;          /* FLAG: a second field set to the same value (0: none) */
	gint value;
	gint64 min, max;
	const char *doc;
} ChannelKeywordSpec;

/* The row for `name` (lower case), or NULL. */
const ChannelKeywordSpec *channel_keyword_lookup(const char *name);

/* How many argument words the keyword takes. */
void channel_keyword_arity(const ChannelKeywordSpec *spec, guint *min_r, guint *max_r);

/* Does `word` look like an argument of a variadic keyword of this kind
 * (a duration for backoff, an integer for notices)? */
gboolean channel_keyword_takes_word(const ChannelKeywordSpec *spec, const char *word);

/* Store the keyword's value into `channel`; errors point at the argument. */
gboolean channel_keyword_apply(ImtaChannel *channel, const ChannelKeywordSpec *spec,
			       const ImtaKeywordUse *use, GError **error);

/* The built-in defaults of a channel without keywords. */
void channel_keyword_defaults(ImtaChannel *channel);

/* Free what channel_keyword_apply() stored in `channel`. */
void channel_keyword_clear(ImtaChannel *channel);

/* All rows, for listings. */
const ChannelKeywordSpec *channel_keyword_table(gsize *n_rows_r);

#endif
