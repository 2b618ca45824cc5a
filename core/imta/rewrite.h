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
 *
 * Details the manual leaves open, as implemented:
 *   - Substitution values per kind of probe: exact match: $D = spec, $H
 *     empty; ".b.c": $D = the matching suffix of the spec (leading dot
 *     included), $H = what is left of it; "*.*.c": $D = spec, $H empty,
 *     $&n / $!n = the wildcarded labels; ".": $H = spec, $D = "."; "$*",
 *     "$%", "$!": $H = $D = spec; literals: "[1.2.]" gives $D = "[1.2.]"
 *     and $L = "3.4", "[]" gives $L = "1.2.3.4", and $&n / $!n index the
 *     parts of $L.  $nD / $nH drop n labels and never keep a leading dot;
 *     $*n / $#n are the labels of the rule's pattern as written.  A label
 *     number past the end substitutes nothing.  $&n $!n $*n $#n take one
 *     digit.  For a source-route host, $U is the mailbox's local part.
 *   - $0U is $U up to its first '+', $1U what follows that '+'.
 *   - Arguments of $M $N $Q $C $V $Z $T $? run to the next '%' or '@' of
 *     the template or the next condition or control sequence; substitutions
 *     inside them are expanded ("$V$H@..." tests the domain $H).
 *   - $E/$B, $F/$R and $S/$A/$P/$X are decided before anything else, so a
 *     rule they exclude does no lookups; $V / $Z are decided when their
 *     argument ends; $M $N $Q $C $1M $1N at $1~ or the end of the template.
 *     $1M / $1N: the source channel is / is not one of reprocess, process,
 *     conversion, defragment.  $Q / $C are checked only when the context
 *     names a destination channel.
 *   - ${table,string}: the rule applies iff the table matches and the entry
 *     does not set $N; the entry's result text (flags removed) is
 *     substituted.  No mappings, or no such table: the rule is skipped.
 *   - $= (LDAP filter quoting), $]url[ (LDAP lookup), $[image,routine,arg]
 *     (site routine) and $(text) (general database) are not supported: a
 *     rule using them is skipped (the trace says why).
 *   - $Tname sets the tag "name|" (a trailing '|' may be written); "$T"
 *     alone clears it.  While a tag is set only "tag|pattern" rules are
 *     candidates; the channel-host and implicit rules apply regardless.
 *   - Sequences are upper case; anything unknown is a template error
 *     (IMTA_REWRITE_ERROR_TEMPLATE at file:line:column), as is a result
 *     that is none of the forms or longer than 1024 characters.  A template
 *     that produces nothing (only conditions and $?) leaves the address
 *     unrouted: IMTA_REWRITE_ERROR_UNROUTABLE with the $? text.
 *   - A number before '?' ("$4000000?text", as in the DOMAIN_FAILURE
 *     default) is accepted and ignored.
 *   - A rewritten source-route host replaces that host in the route (the
 *     mailbox is kept); any other spec yields "user@domain".  A form's
 *     empty domain drops the "@domain"; an address without any host gets
 *     the l channel's official host name.
 *   - A routing host "localhost" that no channel claims is the l channel
 *     (result->routing_host is then the l channel's official host name).
 *   - The null path "<>" is not rewritten (address syntax error).
 *
 * Trace (ImtaRewriteContext.trace), one line each:
 *   rewriting ADDRESS (source channel CH, envelope|header, forward|backward)
 *   pass N: ADDRESS, host spec HOST (source route|right of @|right of %|left of !)
 *   try [TAG|]PROBE              every pattern probe, in order
 *     rule N at FILE:LINE: PATTERN -> TEMPLATE      a rule for that probe
 *     skipped: REASON            "$N condition: the source channel is verify"
 *     output: TEXT               the template's result
 *   channel table: HOST belongs to CH (implicit rule ...) | HOST not found
 *   no rule: HOST is used as domain and routing host
 *   no host: using the local host name HOST
 *   routing host HOST is channel CH: removing HOST, continuing with ADDRESS
 *   routing host HOST: channel CH
 *   result: ADDRESS on channel CH
 *   unroutable: MESSAGE | loop: MESSAGE | address error: MESSAGE
 * The probes of one pass are the "try" lines; e.g. for sc.cs.siroe.edu:
 *   $*, sc.cs.siroe.edu, *.cs.siroe.edu, .cs.siroe.edu, *.*.siroe.edu,
 *   .siroe.edu, *.*.*.edu, .edu, *.*.*.*, . (with $% / $! before "." for
 *   hosts taken from '%' / '!' forms).
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
	/* The channel the message is already queued to, when header
	 * addresses are rewritten after routing; NULL (while the envelope
	 * To that decides routing is rewritten) = $Q / $C are ignored. */
	const char *destination_channel;
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

/* Check the syntax of every rule of `cnf` (templates, "tag|" prefixes)
 * without rewriting anything, for load time and `imsimta check`; errors
 * are IMTA_CONFIG_ERROR_SYNTAX at file:line:column. */
gboolean imta_rewrite_check_rules(const ImtaCnf *cnf, GError **error);

G_END_DECLS

#endif
