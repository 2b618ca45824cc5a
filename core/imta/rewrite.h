/*
 * rewrite.h - the rewrite engine: from an address to a destination channel.
 *
 * Implements imta.cnf part 1 as imta.cnf(5) describes it:
 *   1. extract the first host spec (source route, right of '@', right of
 *      the last single '%', left of the first '!'; `bangoverpercent` on the
 *      source channel swaps the last two);
 *   2. find a rule: "$*" first, then an exact rule for the whole spec, then
 *      a channel host name equal to the spec (an implicit "spec $U%spec@spec"),
 *      then the domain walk (a.b.c, *.b.c, .b.c, *.*.c, .c, *.*.*, .) or the
 *      literal walk ([1.2.3.4], [1.2.3.], [1.2.], [1.], [], ...), then the
 *      "$%" and "$!" fallbacks, then "." (only when the spec names no channel
 *      host); rules whose conditions fail are skipped;
 *   3. apply the template: substitutions ($U $0U $1U $D $nD $H $nH $L $&n
 *      $!n $*n $#n $$ $% $@ $\ $^ $_ $W), conditions ($E $B $F $R $S $A $P
 *      $X $M $N $Q $C $1M $1N $1~ $V $Z), $T tags, $? error text,
 *      ${table,string} mapping lookups; forms A%B@C, A@C, A%B (rewrite
 *      again), A@B@C@D, A@B@C;
 *   4. strip routes through the local system, and map the routing host to
 *      the channel owning that host name.
 * Rewriting is bounded (IMTA_REWRITE_MAX_PASSES); a looping rule set gives
 * IMTA_REWRITE_ERROR_LOOP, never a hang.
 *
 * The engine is re-entrant: all state lives in the call.
 */
#ifndef IMTA_REWRITE_H
#define IMTA_REWRITE_H

#include <glib.h>
#include <imta/error.h>
#include <imta/imta_cnf.h>
#include <imta/mappings.h>
#include <imta/directory.h>

G_BEGIN_DECLS

#define IMTA_REWRITE_MAX_PASSES 32

typedef enum {
	IMTA_REWRITE_ENVELOPE = 1 << 0, /* envelope address ($E); else header/body ($B) */
	IMTA_REWRITE_FORWARD  = 1 << 1, /* To/Cc/envelope To ($F); else From-like ($R) */
} ImtaRewriteFlags;

typedef struct {
	const ImtaCnf *cnf;
	const ImtaMappings *mappings;   /* may be NULL: ${...} lookups then fail */
	ImtaDirectory *directory;       /* may be NULL: $V fails, $Z succeeds */
	const char *source_channel;     /* channel doing the rewriting; NULL = "l" */
	guint flags;                    /* ImtaRewriteFlags */
	/* When set, every probe and rule tried is appended as one line, for
	 * `imsimta test -rewrite`. */
	GString *trace;
} ImtaRewriteContext;

typedef struct {
	char *address;            /* the rewritten address ("user@domain", maybe with route) */
	const ImtaChannel *channel; /* destination channel; NULL when unroutable */
	char *routing_host;       /* the host name that selected the channel */
	char *error_text;         /* "$?" text, if a rule set one */
	const ImtaRewriteRule *rule; /* the rule that decided routing; NULL = implicit */
	char *tag;                /* final "$T" tag, if any */
} ImtaRewriteResult;

/* Rewrite `address` (an RFC 5321 path without angle brackets).  On
 * success fills *result_r and returns TRUE.  Failures:
 *   IMTA_REWRITE_ERROR_UNROUTABLE  no channel owns the routing host (the
 *                                  message is "$?" text when set);
 *   IMTA_REWRITE_ERROR_TEMPORARY   a directory lookup failed temporarily;
 *   IMTA_REWRITE_ERROR_LOOP        rewriting did not converge;
 *   IMTA_ADDRESS_ERROR_*           the address does not parse. */
gboolean imta_rewrite_address(const ImtaRewriteContext *ctx, const char *address,
			      ImtaRewriteResult *result_r, GError **error);

void imta_rewrite_result_clear(ImtaRewriteResult *result);

G_END_DECLS

#endif
