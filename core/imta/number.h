/*
 * number.h - the numeric notations the configuration files share.
 *
 * Integers may be written in the "b%v" base notation of the MTA files
 * (16%1000000 is 0x1000000, 8%777 is 511); a leading '-' is allowed.
 * Retry intervals are ISO 8601 durations (P1D, PT30M, P1W, P1DT12H),
 * case-insensitive, optionally quoted.
 */
#ifndef IMTA_NUMBER_H
#define IMTA_NUMBER_H

#include <glib.h>

G_BEGIN_DECLS

/* Parse the whole of `text` as a decimal or b%v integer (base 2..36).
 * Returns FALSE on any junk, an empty string, a bad base or overflow;
 * *why_r (static text, may be NULL) then says what was expected. */
gboolean imta_parse_int(const char *text, gint64 *value_r, const char **why_r);

/* Parse an ISO 8601 duration such as "PT5M" or "\"p1dT2h\"" into seconds.
 * Years and months are refused (their length is not fixed). */
gboolean imta_parse_duration(const char *text, gint64 *seconds_r, const char **why_r);

/* Parse a byte size with an optional K, M or G suffix (powers of 1024),
 * as in mailQuota.  Negative values pass through (-1 = unlimited). */
gboolean imta_parse_size(const char *text, gint64 *bytes_r, const char **why_r);

G_END_DECLS

#endif
