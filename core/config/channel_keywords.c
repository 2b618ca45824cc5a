/*
 * channel_keywords.c - the core channel keywords, one row each.
 *
 * Keywords that a plugin registers (smtp, lmtp, ...) are not here: the
 * plugin that implements a protocol owns its keywords.  Everything here is
 * understood by the core: routing, queueing, scheduling, notices, content
 * limits and postmaster copies.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/channel.h>
#include <imta/error.h>
#include <imta/number.h>
#include "channel_keywords.h"

#define OFF(field) G_STRUCT_OFFSET(ImtaChannel, field)
#define FLAG(n, field, v, d) { n, CHANNEL_KW_FLAG, OFF(field), 0, v, 0, 0, d }
#define FLAG2(n, field, field2, v, d) { n, CHANNEL_KW_FLAG, OFF(field), OFF(field2), v, 0, 0, d }
#define IDENT(n, d) { n, CHANNEL_KW_FLAG, OFF(ident), 0, 0, 0, 0, d }
#define INT(n, field, lo, hi, d) { n, CHANNEL_KW_INT, OFF(field), 0, 0, lo, hi, d }
#define INT64(n, field, lo, hi, d) { n, CHANNEL_KW_INT64, OFF(field), 0, 0, lo, hi, d }
#define STR(n, field, d) { n, CHANNEL_KW_STRING, OFF(field), 0, 0, 0, 0, d }
#define BACKOFF(n, prio, d) { n, CHANNEL_KW_BACKOFF, 0, 0, prio, 0, 0, d }
#define NOTICES(n, prio, d) { n, CHANNEL_KW_NOTICES, 0, 0, prio, 0, 0, d }
#define MARK(n, d) { n, CHANNEL_KW_MARK, 0, 0, 0, 0, 0, d }

/* Retry intervals may be listed up to this many times; the last repeats. */
#define BACKOFF_MAX 32
#define SIZE_MAX_BLOCKS ((gint64)1 << 40)

static const ChannelKeywordSpec keywords[] = {
	/* Addressing and routing. */
	FLAG("mx", mx, IMTA_MX_MX, "look up MX records (equal preferences in received order)"),
	FLAG("nomx", mx, IMTA_MX_NOMX, "no MX lookups: connect to the host's addresses"),
	FLAG("defaultmx", mx, IMTA_MX_DEFAULT, "MX lookups as the network configuration says"),
	FLAG("randommx", mx, IMTA_MX_RANDOM, "MX lookups, equal preferences shuffled"),
	FLAG("nonrandommx", mx, IMTA_MX_NONRANDOM, "MX lookups, equal preferences in received order"),
	STR("daemon", daemon, "send everything through this smart host"),
	INT("port", port, 1, 65535, "TCP port for outgoing connections (25)"),
	STR("interfaceaddress", interface_address, "source address of outgoing connections"),
	FLAG("single", copies, IMTA_COPIES_SINGLE, "one queue copy per recipient"),
	FLAG("single_sys", copies, IMTA_COPIES_SINGLE_SYS, "one queue copy per destination system"),
	FLAG("multiple", copies, IMTA_COPIES_MULTIPLE, "one queue copy for all recipients (default)"),
	INT("addrsperfile", addrsperfile, 0, 100000, "at most this many recipients per queue file (0: no limit)"),
	FLAG("reverse", reverse, TRUE, "apply address reversal (default)"),
	FLAG("noreverse", reverse, FALSE, "no address reversal"),
	FLAG("rules", rules, TRUE, "honour channel-specific rewrite conditions (default)"),
	FLAG("norules", rules, FALSE, "ignore $M $N $Q $C rewrite conditions for this channel"),
	FLAG("routelocal", routelocal, TRUE, "strip source routes through this channel's hosts"),
	FLAG("bangoverpercent", bangoverpercent, TRUE, "A!B%C is routed to A, not C"),
	FLAG("nobangoverpercent", bangoverpercent, FALSE, "A!B%C is routed to C (default)"),

	/* Switching and security. */
	FLAG("switchchannel", switchchannel, IMTA_SWITCH_SWITCH, "switch to the channel of the client's address"),
	FLAG("allowswitchchannel", switchchannel, IMTA_SWITCH_ALLOW, "may be switched to (default)"),
	FLAG("noswitchchannel", switchchannel, IMTA_SWITCH_NONE, "no switching to or from this channel"),
	STR("saslswitchchannel", saslswitchchannel, "source channel after successful SMTP AUTH"),
	STR("tlsswitchchannel", tlsswitchchannel, "source channel after successful STARTTLS"),
	FLAG("nosasl", sasl_server, IMTA_SASL_NONE, "no SMTP AUTH (default)"),
	FLAG("nosaslserver", sasl_server, IMTA_SASL_NONE, "no SMTP AUTH (default)"),
	FLAG("maysaslserver", sasl_server, IMTA_SASL_MAY, "offer SMTP AUTH"),
	FLAG("mustsaslserver", sasl_server, IMTA_SASL_MUST, "require SMTP AUTH before mail is accepted"),
	FLAG2("notls", tls_server, tls_client, IMTA_TLS_NONE, "no STARTTLS in either direction (default)"),
	FLAG2("maytls", tls_server, tls_client, IMTA_TLS_MAY, "STARTTLS offered inbound and used outbound when offered"),
	FLAG2("musttls", tls_server, tls_client, IMTA_TLS_MUST, "STARTTLS required in both directions"),
	FLAG("notlsserver", tls_server, IMTA_TLS_NONE, "no STARTTLS offered"),
	FLAG("maytlsserver", tls_server, IMTA_TLS_MAY, "offer STARTTLS"),
	FLAG("musttlsserver", tls_server, IMTA_TLS_MUST, "require STARTTLS before mail is accepted"),
	FLAG("notlsclient", tls_client, IMTA_TLS_NONE, "never use STARTTLS outbound"),
	FLAG("maytlsclient", tls_client, IMTA_TLS_MAY, "use STARTTLS outbound when offered"),
	FLAG("musttlsclient", tls_client, IMTA_TLS_MUST, "refuse to send without STARTTLS"),
	IDENT("identnone", "no IDENT lookups; log the client's address"),
	IDENT("identnonelimited", "no IDENT lookups, DNS name in Received: only"),
	IDENT("identnonenumeric", "no IDENT and no reverse DNS lookups"),
	IDENT("identnonesymbolic", "no IDENT lookups, reverse DNS only"),
	IDENT("identtcp", "IDENT lookups and reverse DNS"),
	IDENT("identtcplimited", "IDENT lookups, DNS name in Received: only"),
	IDENT("identtcpnumeric", "IDENT lookups, no reverse DNS"),
	IDENT("identtcpsymbolic", "IDENT lookups and reverse DNS, names only"),

	/* Queueing, jobs and scheduling. */
	INT("subdirs", subdirs, 0, 1000, "spread the queue over this many subdirectories"),
	INT("maxjobs", maxjobs, 1, 10000, "at most this many concurrent jobs (default 1)"),
	STR("pool", pool, "job controller pool (default: the first pool)"),
	INT("threaddepth", threaddepth, 1, 100000, "backlog per extra delivery thread (default 10)"),
	INT("filesperjob", filesperjob, 0, 100000, "one more job per this many queue files (0: one job)"),
	INT("addrsperjob", addrsperjob, 0, 100000, "one more job per this many recipients (0: one job)"),
	FLAG("immnonurgent", immnonurgent, TRUE, "deliver non-urgent messages at once"),
	FLAG("master", direction, IMTA_DIRECTION_MASTER, "run only the master program"),
	FLAG("slave", direction, IMTA_DIRECTION_SLAVE, "run only the slave program"),
	FLAG("bidirectional", direction, IMTA_DIRECTION_BIDIRECTIONAL, "run master and slave (default)"),
	BACKOFF("backoff", -1, "retry intervals for every priority"),
	BACKOFF("urgentbackoff", IMTA_PRIORITY_URGENT, "retry intervals for urgent messages"),
	BACKOFF("normalbackoff", IMTA_PRIORITY_NORMAL, "retry intervals for normal messages"),
	BACKOFF("nonurgentbackoff", IMTA_PRIORITY_NONURGENT, "retry intervals for non-urgent messages"),
	NOTICES("notices", -1, "ages of delay warnings and of the final return"),
	NOTICES("urgentnotices", IMTA_PRIORITY_URGENT, "notice ages for urgent messages"),
	NOTICES("normalnotices", IMTA_PRIORITY_NORMAL, "notice ages for normal messages"),
	NOTICES("nonurgentnotices", IMTA_PRIORITY_NONURGENT, "notice ages for non-urgent messages"),
	FLAG("deferred", deferred, TRUE, "honour Deferred-delivery: headers"),
	FLAG("nodeferred", deferred, FALSE, "ignore Deferred-delivery: headers (default)"),
	MARK(IMTA_CHANNEL_KEYWORD_HELD, "queue messages held (*.HELD) until released: no jobs, retries, notices"),

	/* Content and size. */
	FLAG("defragment", defragment, TRUE, "reassemble message/partial before delivery"),
	FLAG("nodefragment", defragment, FALSE, "no reassembly (default)"),
	STR("charset7", charset7, "charset label for unlabelled 7-bit text"),
	STR("charset8", charset8, "charset label for unlabelled 8-bit text"),
	STR("charsetesc", charsetesc, "charset label for unlabelled 7-bit text with escapes"),
	FLAG("sevenbit", eightbit, IMTA_EIGHT_SEVENBIT, "encode 8-bit content for this channel"),
	FLAG("eightbit", eightbit, IMTA_EIGHT_EIGHTBIT, "pass 8-bit content"),
	FLAG("eightnegotiate", eightbit, IMTA_EIGHT_NEGOTIATE, "encode unless the peer offers 8BITMIME (default)"),
	FLAG("eightstrict", eightbit, IMTA_EIGHT_STRICT, "refuse 8-bit content without 8BITMIME"),
	INT64("maxblocks", maxblocks, 0, SIZE_MAX_BLOCKS, "fragment messages larger than this many blocks"),
	INT64("maxlines", maxlines, 0, SIZE_MAX_BLOCKS, "fragment messages longer than this many lines"),
	INT64("blocklimit", blocklimit, 0, SIZE_MAX_BLOCKS, "refuse messages to this channel larger than this many blocks"),
	INT64("linelimit", linelimit, 0, SIZE_MAX_BLOCKS, "refuse messages to this channel with more lines"),
	INT64("sourceblocklimit", sourceblocklimit, 0, SIZE_MAX_BLOCKS, "refuse messages from this channel larger than this"),

	/* Delivery, filters, diagnostics, postmaster. */
	FLAG("exquota", exquota, IMTA_EXQUOTA_DELIVER, "deliver to over-quota users anyway"),
	FLAG("holdexquota", exquota, IMTA_EXQUOTA_HOLD, "keep mail to over-quota users queued"),
	FLAG("noexquota", exquota, IMTA_EXQUOTA_BOUNCE, "return mail to over-quota users"),
	STR("fileinto", fileinto, "address template for Sieve fileinto"),
	STR("filter", filter, "per-user Sieve filter location"),
	STR("sourcefilter", sourcefilter, "Sieve filter for messages enqueued by this channel"),
	STR("destinationfilter", destinationfilter, "Sieve filter for messages queued to this channel"),
	STR("channelfilter", destinationfilter, "old name of destinationfilter"),
	FLAG("master_debug", master_debug, TRUE, "debug output from the master program"),
	FLAG("nomaster_debug", master_debug, FALSE, "no master debug output (default)"),
	FLAG("slave_debug", slave_debug, TRUE, "debug output from the slave program"),
	FLAG("noslave_debug", slave_debug, FALSE, "no slave debug output (default)"),
	FLAG("logging", logging, TRUE, "write message events to mail.log"),
	FLAG("nologging", logging, FALSE, "no mail.log entries (default)"),
	FLAG("sendpost", sendpost, IMTA_POST_ALWAYS, "postmaster gets a copy of every failure notice"),
	FLAG("copysendpost", sendpost, IMTA_POST_COPY, "copy of failures unless the sender is empty"),
	FLAG("errsendpost", sendpost, IMTA_POST_ERR, "copy only when the sender cannot be told"),
	FLAG("nosendpost", sendpost, IMTA_POST_NEVER, "no copies of failure notices"),
	FLAG("warnpost", warnpost, IMTA_POST_ALWAYS, "postmaster gets a copy of every delay warning"),
	FLAG("copywarnpost", warnpost, IMTA_POST_COPY, "copy of warnings unless the sender is empty"),
	FLAG("errwarnpost", warnpost, IMTA_POST_ERR, "copy only when the sender cannot be told"),
	FLAG("nowarnpost", warnpost, IMTA_POST_NEVER, "no copies of delay warnings"),
	STR("returnaddress", returnaddress, "postmaster address used in notices"),
	FLAG("aliaspostmaster", aliaspostmaster, TRUE, "postmaster@this channel goes to the local postmaster"),
};

const ChannelKeywordSpec *
channel_keyword_table(gsize *n_rows_r)
{
	*n_rows_r = G_N_ELEMENTS(keywords);
	return keywords;
}

const ChannelKeywordSpec *
channel_keyword_lookup(const char *name)
{
	for (gsize i = 0; i < G_N_ELEMENTS(keywords); i++)
		if (strcmp(keywords[i].name, name) == 0)
			return &keywords[i];
	return NULL;
}

void
channel_keyword_arity(const ChannelKeywordSpec *spec, guint *min_r, guint *max_r)
{
	switch (spec->kind) {
	case CHANNEL_KW_FLAG:
	case CHANNEL_KW_MARK:
		*min_r = *max_r = 0;
		return;
	case CHANNEL_KW_INT:
	case CHANNEL_KW_INT64:
	case CHANNEL_KW_STRING:
		*min_r = *max_r = 1;
		return;
	case CHANNEL_KW_BACKOFF:
		*min_r = 1;
		*max_r = BACKOFF_MAX;
		return;
	case CHANNEL_KW_NOTICES:
		*min_r = 1;
		*max_r = IMTA_MAX_NOTICES;
		return;
	}
	g_assert_not_reached();
}

gboolean
channel_keyword_takes_word(const ChannelKeywordSpec *spec, const char *word)
{
	gint64 value;

	switch (spec->kind) {
	case CHANNEL_KW_BACKOFF:
		return word[0] == '"' || word[0] == 'p' || word[0] == 'P';
	case CHANNEL_KW_NOTICES:
		return imta_parse_int(word, &value, NULL) || strchr(word, ',') != NULL;
	default:
		return TRUE;
	}
}

static gboolean
apply_int(ImtaChannel *channel, const ChannelKeywordSpec *spec, const ImtaKeywordUse *use,
	  GError **error)
{
	gint64 value;

	if (!imta_parse_int(use->args[0], &value, NULL) || value < spec->min || value > spec->max) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_RANGE, &use->arg_pos[0],
				  "%s: expected an integer between %" G_GINT64_FORMAT " and %"
				  G_GINT64_FORMAT ", got \"%s\"",
				  spec->name, spec->min, spec->max, use->args[0]);
		return FALSE;
	}
	if (spec->kind == CHANNEL_KW_INT)
		G_STRUCT_MEMBER(gint, channel, spec->offset) = (gint)value;
	else
		G_STRUCT_MEMBER(gint64, channel, spec->offset) = value;
	return TRUE;
}

static gboolean
apply_backoff(ImtaChannel *channel, const ChannelKeywordSpec *spec, const ImtaKeywordUse *use,
	      GError **error)
{
	g_autoptr(GArray) intervals = g_array_new(FALSE, FALSE, sizeof(gint64));
	GArray **slot = spec->value < 0 ? &channel->backoff_any : &channel->backoff[spec->value];

	for (guint i = 0; use->args[i] != NULL; i++) {
		gint64 seconds;
		const char *why;

		if (!imta_parse_duration(use->args[i], &seconds, &why) || seconds <= 0) {
			imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &use->arg_pos[i],
					  "%s: expected %s, got \"%s\"", spec->name,
					  "a positive ISO 8601 duration such as \"pt30m\"",
					  use->args[i]);
			return FALSE;
		}
		g_array_append_val(intervals, seconds);
	}
	g_clear_pointer(slot, g_array_unref);
	*slot = g_steal_pointer(&intervals);
	return TRUE;
}

static gboolean
apply_notices(ImtaChannel *channel, const ChannelKeywordSpec *spec, const ImtaKeywordUse *use,
	      GError **error)
{
	gint ages[IMTA_MAX_NOTICES];
	guint n = 0;

	for (guint i = 0; use->args[i] != NULL; i++) {
		g_auto(GStrv) parts = g_strsplit(use->args[i], ",", -1);

		for (guint j = 0; parts[j] != NULL; j++) {
			gint64 age;

			if (parts[j][0] == '\0')
				continue;
			if (n == IMTA_MAX_NOTICES) {
				imta_set_error_at(error, IMTA_CONFIG_ERROR_RANGE, &use->arg_pos[i],
						  "%s: expected at most %d ages", spec->name,
						  IMTA_MAX_NOTICES);
				return FALSE;
			}
			if (!imta_parse_int(parts[j], &age, NULL) || age < 1 || age > 100000 ||
			    (n > 0 && age <= ages[n - 1])) {
				imta_set_error_at(error, IMTA_CONFIG_ERROR_RANGE, &use->arg_pos[i],
						  "%s: expected ascending positive ages, got \"%s\"",
						  spec->name, parts[j]);
				return FALSE;
			}
			ages[n++] = (gint)age;
		}
	}
	if (spec->value < 0) {
		memcpy(channel->notices_any, ages, n * sizeof ages[0]);
		channel->n_notices_any = n;
	} else {
		memcpy(channel->notices[spec->value], ages, n * sizeof ages[0]);
		channel->n_notices[spec->value] = n;
	}
	return TRUE;
}

gboolean
channel_keyword_apply(ImtaChannel *channel, const ChannelKeywordSpec *spec,
		      const ImtaKeywordUse *use, GError **error)
{
	char **field;

	switch (spec->kind) {
	case CHANNEL_KW_FLAG:
		if (spec->offset == OFF(ident)) {
			g_free(channel->ident);
			channel->ident = g_strdup(spec->name);
		} else {
			G_STRUCT_MEMBER(gint, channel, spec->offset) = spec->value;
			if (spec->also != 0)
				G_STRUCT_MEMBER(gint, channel, spec->also) = spec->value;
		}
		return TRUE;
	case CHANNEL_KW_INT:
	case CHANNEL_KW_INT64:
		return apply_int(channel, spec, use, error);
	case CHANNEL_KW_STRING:
		field = &G_STRUCT_MEMBER(char *, channel, spec->offset);
		g_free(*field);
		*field = g_strdup(use->args[0]);
		return TRUE;
	case CHANNEL_KW_BACKOFF:
		return apply_backoff(channel, spec, use, error);
	case CHANNEL_KW_NOTICES:
		return apply_notices(channel, spec, use, error);
	case CHANNEL_KW_MARK:
		return TRUE;
	}
	g_assert_not_reached();
}

gboolean
imta_channel_holds_mail(const ImtaChannel *channel)
{
	return channel != NULL && imta_channel_has_keyword(channel, IMTA_CHANNEL_KEYWORD_HELD);
}

void
channel_keyword_defaults(ImtaChannel *channel)
{
	channel->mx = IMTA_MX_DEFAULT;
	channel->port = 25;
	channel->copies = IMTA_COPIES_MULTIPLE;
	channel->reverse = TRUE;
	channel->rules = TRUE;
	channel->switchchannel = IMTA_SWITCH_ALLOW;
	channel->maxjobs = 1;
	channel->threaddepth = 10;
	channel->direction = IMTA_DIRECTION_BIDIRECTIONAL;
	channel->eightbit = IMTA_EIGHT_NEGOTIATE;
}

void
channel_keyword_clear(ImtaChannel *channel)
{
	for (gsize i = 0; i < G_N_ELEMENTS(keywords); i++) {
		if (keywords[i].kind == CHANNEL_KW_STRING)
			g_clear_pointer(&G_STRUCT_MEMBER(char *, channel, keywords[i].offset), g_free);
	}
	g_clear_pointer(&channel->ident, g_free);
	for (guint p = 0; p < IMTA_PRIORITY_COUNT; p++)
		g_clear_pointer(&channel->backoff[p], g_array_unref);
	g_clear_pointer(&channel->backoff_any, g_array_unref);
}
