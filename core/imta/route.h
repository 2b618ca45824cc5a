/*
 * route.h - routing a recipient: rewrite its address by the rules of
 * imta.cnf and add it, on the channel the rules chose, to an enqueue.
 *
 * Everything that queues mail on its own account goes through here: the
 * local channel's alias expansion, `imsimta enqueue`, delivery status
 * notices and the reprocess channel.  One function decides what a routing
 * failure means, so that a directory that could not answer is always a
 * temporary failure (retry later) and an address no rule routes is always
 * a permanent one, whoever queues the message:
 *
 *	IMTA_ROUTE_ERROR_TEMPORARY   a lookup failed temporarily      4.4.3
 *	IMTA_ROUTE_ERROR_SYNTAX      the address does not parse       5.1.3
 *	IMTA_ROUTE_ERROR_LOOP        rewriting did not converge       5.4.6
 *	IMTA_ROUTE_ERROR_UNROUTABLE  no rule or channel routes it     5.1.2
 *	IMTA_ROUTE_ERROR_REFUSED     the queue would not take it      5.3.0
 *	IMTA_ROUTE_ERROR_CONFIG      a rule is malformed (temporary)  4.3.5
 *
 * The error's message is the reason alone (it does not repeat the
 * address); imta_route_diagnostic() gives the text a master reports.
 *
 * Routing is the rewrite engine's (rewrite.h): envelope recipient,
 * forward direction, as seen from the source channel, so $M / $N and
 * $1M / $1N in templates test the channel the message enters by.  A
 * source channel of NULL is the local channel l.  All of it is
 * re-entrant; the configuration (and its directory) is shared.
 */
#ifndef IMTA_ROUTE_H
#define IMTA_ROUTE_H

#include <glib.h>
#include <imta/config.h>
#include <imta/channel.h>
#include <imta/queue.h>

G_BEGIN_DECLS

#define IMTA_ROUTE_ERROR (imta_route_error_quark())
GQuark imta_route_error_quark(void);

typedef enum {
	IMTA_ROUTE_ERROR_TEMPORARY,  /* the directory could not answer: retry later */
	IMTA_ROUTE_ERROR_SYNTAX,     /* not an address */
	IMTA_ROUTE_ERROR_LOOP,       /* the rewrite rules loop */
	IMTA_ROUTE_ERROR_UNROUTABLE, /* no rule or channel routes the address */
	IMTA_ROUTE_ERROR_REFUSED,    /* the enqueue refused the recipient (a limit) */
	IMTA_ROUTE_ERROR_CONFIG,     /* a malformed rewrite template: fix and retry */
} ImtaRouteErrorCode;

typedef struct {
	const ImtaConfig *config;     /* cnf, mappings and directory to route with */
	const char *source_channel;   /* the channel the message enters by; NULL = l */
	GString *trace;               /* optional: the rewrite trace is appended */
} ImtaRouteContext;

/* Where one address goes. */
typedef struct {
	const ImtaChannel *channel;   /* the destination channel (never NULL on success) */
	char *address;                /* the rewritten address */
} ImtaRoute;

/* Rewrite `address` (an RFC 5321 path, no angle brackets) as an envelope
 * recipient.  TRUE with *route_r filled; FALSE with an IMTA_ROUTE_ERROR. */
gboolean imta_route_address(const ImtaRouteContext *ctx, const char *address,
			    ImtaRoute *route_r, GError **error);

/* Route `address` and add it to `enq` with its ORCPT ("type;address" or
 * NULL) and NOTIFY bits.  *route_r (may be NULL) says where it went.
 * Nothing is added on failure. */
gboolean imta_route_enqueue_recipient(const ImtaRouteContext *ctx, ImtaEnqueue *enq,
				      const char *address, const char *orcpt, guint notify,
				      ImtaRoute *route_r, GError **error);

void imta_route_clear(ImtaRoute *route);

/* Is this routing failure worth retrying later?  TRUE for TEMPORARY and
 * for any error from outside IMTA_ROUTE_ERROR (an unexpected failure is
 * never taken for a permanent one) and CONFIG (the administrator fixes
 * the rule; the mail waits). */
gboolean imta_route_error_is_temporary(const GError *error);

/* The RFC 3463 status of a routing failure: "4.4.3", "5.1.2"... */
const char *imta_route_error_status(const GError *error);

/* The diagnostic a master reports for a recipient that failed to route,
 * e.g. "5.1.2 bob@nowhere.test does not route: no rule for nowhere.test"
 * or "4.4.3 bob@example.com: temporary failure looking up ...". */
char *imta_route_diagnostic(const char *address, const GError *error);

/* The address as it was before the rules routed it to `channel`: a
 * leading source route whose first host is one of the channel's host
 * names is removed ("@hold-daemon:bob@example.com" on the hold channel
 * gives "bob@example.com"); any other address comes back unchanged.  For
 * masters and commands that route a channel's mail again.  Newly
 * allocated. */
char *imta_route_strip_channel(const ImtaChannel *channel, const char *address);

/* The instance's queue, opened with the job controller's notice socket
 * (so new files are scheduled at once), for plugins that queue mail. */
ImtaQueue *imta_route_open_queue(const ImtaConfig *config, GError **error);

G_END_DECLS

#endif
