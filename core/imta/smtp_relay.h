/*
 * smtp_relay.h - handing messages on over SMTP or LMTP, for the master
 * programs of the channels that do (tcp_smtp, lmtp): what both share
 * above the client session of smtp_client.h.
 *
 *   routes   where one destination's mail goes: a bounded list of hops
 *            (addresses, or a UNIX-domain socket) found from a domain's MX
 *            records, a smart host, a domain literal or a named host;
 *   relay    one message's recipients for one destination, handed over
 *            its hops: sessions (new or cached), STARTTLS as the channel
 *            asks, SIZE and 8-bit checks, the transaction, and what each
 *            reply means for each recipient (delivered, relayed with the
 *            DSN request, failed, deferred, or left for the next hop);
 *   cache    sessions idle after a transaction, kept for the next message
 *            to the same hop and closed after a while;
 *   job      the client threads of a master: messages taken from the job
 *            (without holding back the outcomes of those in flight), the
 *            content read once, the outcomes reported and made durable.
 *
 * A master supplies what differs: how recipients group into destinations
 * and how a destination becomes a route.  Its entry point is then
 *
 *	relay = (ImtaSmtpRelayConfig){ ... .cache = imta_smtp_cache_new(...) };
 *	imta_smtp_relay_run(job, channel->name, n_threads, deliver, data, &failed);
 *
 * with deliver() called on a client thread for every message:
 *
 *	groups = imta_smtp_relay_group(message->msg, cap, key_of, data);
 *	for each group: route = ...;
 *		imta_smtp_relay_deliver(&relay, message, rcpts, n, route, results);
 *		imta_smtp_relay_report(job, message->msg, rcpts, n, results);
 *
 * Everything here is safe from several client threads at once except a
 * route, a message and a results array, which belong to one thread.
 */
#ifndef IMTA_SMTP_RELAY_H
#define IMTA_SMTP_RELAY_H

#include <glib.h>
#include <imta/channel.h>
#include <imta/config.h>
#include <imta/dns.h>
#include <imta/job.h>
#include <imta/smtp_client.h>

G_BEGIN_DECLS

/* ---- routes ------------------------------------------------------------ */

/* Per delivery attempt, at most this many host names and addresses. */
#define IMTA_SMTP_ROUTE_MAX_HOSTS 5
#define IMTA_SMTP_ROUTE_MAX_ADDRESSES 10

/* One place to connect to. */
typedef struct {
	char *host;         /* the name it was found under, or NULL (a literal) */
	char *address;      /* IPv4 or IPv6 address as text; NULL with socket_path */
	guint16 port;       /* 0: the relay's port (ImtaSmtpRelayConfig.port) */
	char *socket_path;  /* a UNIX-domain socket instead of address:port, or NULL */
} ImtaSmtpHop;

/* Where a destination's mail goes: hops, or the reason there are none. */
typedef struct {
	GPtrArray *hops;      /* ImtaSmtpHop *, in the order to try */
	ImtaOutcome outcome;  /* NONE when there are hops; else RETRY or FAILED */
	char *diagnostic;     /* with outcome: "X.Y.Z reason" */
} ImtaSmtpRoute;

/* The lookups a route needs: imta_dns_* in the masters (data: the
 * ImtaResolver, with the adapters below), tables in tests.  Same contract
 * as imta_dns_lookup_mx / imta_dns_lookup_addresses. */
typedef struct {
	ImtaDnsStatus (*lookup_mx)(gpointer data, const char *domain, GPtrArray **mx_r,
				   GError **error);
	ImtaDnsStatus (*lookup_addresses)(gpointer data, const char *name,
					  GPtrArray **addresses_r, GError **error);
	gpointer data;
} ImtaSmtpRouteDns;

ImtaDnsStatus imta_smtp_route_dns_mx(gpointer data, const char *domain, GPtrArray **mx_r,
				     GError **error);
ImtaDnsStatus imta_smtp_route_dns_addresses(gpointer data, const char *name,
					    GPtrArray **addresses_r, GError **error);

/* What a channel says about routing. */
typedef struct {
	ImtaMxMode mx;
	const char *daemon;          /* smart host, or NULL */
	const char *official_host;   /* the channel's, for an unqualified daemon name */
	const char *const *local_names; /* this system's names (NULL-terminated) */
} ImtaSmtpRoutePolicy;

/* An empty route (no hops, outcome NONE). */
ImtaSmtpRoute *imta_smtp_route_new(void);
void imta_smtp_route_free(ImtaSmtpRoute *route);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaSmtpRoute, imta_smtp_route_free)

/* Add a hop (an address with `port`, 0 = the relay's; or a socket path
 * when `address` is NULL) once; FALSE when the route is full. */
gboolean imta_smtp_route_add_hop(ImtaSmtpRoute *route, const char *host, const char *address,
				 guint16 port, const char *socket_path);

/* Drop every hop and record why there are none (takes `diagnostic`). */
void imta_smtp_route_fail(ImtaSmtpRoute *route, ImtaOutcome outcome, char *diagnostic);

/* The domain of `address` (after its last '@'), lower-cased, without a
 * trailing dot, or NULL when there is none. */
char *imta_smtp_route_domain(const char *address);

/* Is `domain` a domain literal ("[192.0.2.1]", "[IPv6:2001:db8::1]")?
 * When it is, *address_r is the address in canonical text form, or NULL
 * when the literal is malformed. */
gboolean imta_smtp_route_literal(const char *domain, char **address_r);

/* The host names to try out of an MX answer (sorted by preference):
 * equal preferences shuffled when `shuffle`; records naming this system,
 * and every record of the same or a worse preference, dropped.  NULL with
 * *outcome_r FAILED and a diagnostic for a null MX (RFC 7505, 5.1.10) or
 * when the best MX is this system (5.4.6). */
GPtrArray *imta_smtp_route_mx_hosts(const GPtrArray *mx, const char *domain,
				    const char *const *local_names, gboolean shuffle,
				    ImtaOutcome *outcome_r, char **diagnostic_r);

/* The route for `domain` (lower-cased, no trailing dot): a domain
 * literal's address, the policy's smart host, the domain's MX hosts or
 * (nomx, or no MX record) its own addresses.  Never NULL. */
ImtaSmtpRoute *imta_smtp_route_resolve(const ImtaSmtpRouteDns *dns,
				       const ImtaSmtpRoutePolicy *policy, const char *domain);

/* The route to one named server (no MX lookup): a host name's addresses
 * or an address literal's ("[192.0.2.1]", or the address without
 * brackets), every hop on `port` (0: the relay's).  The
 * name comes from this system's configuration or directory, so a name
 * that does not resolve is a RETRY ("4.4.3 <what> <name>: why"): mail
 * waits for the fix instead of bouncing.  `what` names the server's role
 * in diagnostics ("LMTP server"). */
ImtaSmtpRoute *imta_smtp_route_host(const ImtaSmtpRouteDns *dns, const char *name,
				    guint16 port, const char *what);

/* ---- the relay ------------------------------------------------------- */

typedef struct _ImtaSmtpCache ImtaSmtpCache;

/* What every delivery of one job shares (read-only while it runs). */
typedef struct {
	const char *channel;         /* channel name, for the log */
	const char *helo_name;
	guint16 port;                /* of hops that name none */
	const char *bind_address;    /* NULL = any */
	ImtaTlsMode tls;             /* the channel's tls_client */
	ImtaSmtpTlsClientOptions tls_options;
	ImtaEightBit eightbit;
	ImtaSmtpClientTimeouts timeouts;
	guint max_transactions;      /* per session */
	ImtaSmtpCache *cache;        /* idle sessions; NULL = none kept */
	gboolean lmtp;               /* LHLO, one reply per recipient after DATA */
} ImtaSmtpRelayConfig;

/* A message being delivered, with its content read once. */
typedef struct {
	ImtaMessage *msg;
	GBytes *content;             /* as queued */
	gboolean eight_bit;          /* imta_mime_is_8bit(content) */
	GBytes *seven_bit;           /* the downgrade, made on first need */
} ImtaSmtpRelayMessage;

/* The outcome decided for one recipient. */
typedef struct {
	ImtaOutcome outcome;
	gboolean relayed;            /* DELIVERED to a hop that took the DSN request */
	char *diagnostic;
} ImtaSmtpRcptResult;

/* What one reply or failure means for a recipient still pending. */
typedef enum {
	IMTA_SMTP_VERDICT_DELIVERED,
	IMTA_SMTP_VERDICT_RELAYED,   /* delivered; the hop took NOTIFY/ORCPT */
	IMTA_SMTP_VERDICT_FAILED,    /* permanent: return to the sender */
	IMTA_SMTP_VERDICT_RETRY,     /* temporary: try again after the backoff */
	IMTA_SMTP_VERDICT_NEXT_HOP,  /* no answer: try the next hop; RETRY after the last */
	IMTA_SMTP_VERDICT_NEXT_HOP_FAILED, /* the same, but FAILED after the last */
	IMTA_SMTP_VERDICT_UNSURE,    /* lost after the final dot: RETRY (RFC 1047) */
} ImtaSmtpVerdict;

/* Session steps before the transaction. */
typedef enum {
	IMTA_SMTP_STEP_CONNECT,
	IMTA_SMTP_STEP_GREETING,
	IMTA_SMTP_STEP_HELLO,
	IMTA_SMTP_STEP_TLS,
} ImtaSmtpStep;

/* A step that failed with reply `code` (0: no reply, the session broke). */
ImtaSmtpVerdict imta_smtp_relay_step_verdict(ImtaSmtpStep step, guint code);

/* Recipient `i` of a transaction's result; `broken`: send() returned
 * FALSE; `dsn`: the hop offered DSN. */
ImtaSmtpVerdict imta_smtp_relay_verdict(const ImtaSmtpSendResult *result, guint i,
					gboolean broken, gboolean dsn);

/* A reply in the form of imta_smtp_client_diagnostic, for replies that
 * came without a session (a refused greeting): "remote PEER said: 554
 * 5.7.1 text", an enhanced code of the reply's class added when it has
 * none. */
char *imta_smtp_relay_reply_diagnostic(const char *peer, const ImtaSmtpReply *reply);

/* "host [address]", "[address]", "host [unix:/path]". */
char *imta_smtp_relay_peer_text(const ImtaSmtpHop *hop);

/* Deliver msg's recipients rcpts[0..n) over the hops of `route`;
 * results[0..n) (zeroed by the caller) get the outcomes, every one
 * decided.  Each hop is tried in turn until every recipient has a final
 * answer or a temporary one from a hop that spoke; a lost connection
 * after the final dot ends the attempt (the message may have arrived). */
void imta_smtp_relay_deliver(const ImtaSmtpRelayConfig *config, ImtaSmtpRelayMessage *message,
			     const guint *rcpts, guint n, const ImtaSmtpRoute *route,
			     ImtaSmtpRcptResult *results);

/* Report results[0..n) of recipients rcpts[0..n) to the job (relayed
 * ones with imta_master_job_report_relayed) and free their diagnostics. */
void imta_smtp_relay_report(ImtaMasterJob *job, ImtaMessage *msg, const guint *rcpts, guint n,
			    ImtaSmtpRcptResult *results);

/* QUIT a session and log it (cached sessions end here too). */
void imta_smtp_relay_close(ImtaSmtpClient *c, const char *channel);

/* The certificate check TLS_CLIENT_VERIFY asks for ("none", "chain",
 * "name"; NULL or empty: name with musttls, none otherwise). */
ImtaSmtpTlsVerify imta_smtp_relay_tls_verify(ImtaTlsMode mode, const char *value);

/* TLS_CA_FILE as a path: relative to the configuration directory; NULL
 * when unset.  Caller frees. */
char *imta_smtp_relay_ca_file(const ImtaConfig *config, const char *value);

/* Our name in EHLO / LHLO: the l channel's official host name, else the
 * tailor file's host name, else the system's. */
const char *imta_smtp_relay_helo_name(const ImtaConfig *config);

/* The fields of `relay` every master takes from its channel the same
 * way: the channel's name, our HELO name, the bind address, the TLS mode
 * and certificate check (TLS_CLIENT_VERIFY `tls_client_verify`, CA file
 * `ca_file`, which must outlive the relay) and the 8-bit handling; the
 * others are zeroed. */
void imta_smtp_relay_config_init(ImtaSmtpRelayConfig *relay, const ImtaConfig *config,
				 const ImtaChannel *channel, const char *tls_client_verify,
				 const char *ca_file);

/* The resolver of option.dat's DNS options, or NULL (logged as an error
 * of the channel). */
ImtaResolver *imta_smtp_relay_resolver(const ImtaConfig *config, const ImtaChannel *channel);

/* "required", "when offered" or "off", for the log. */
const char *imta_smtp_relay_tls_text(ImtaTlsMode mode);

/* Log the end of a master's run: messages handled, sessions reused. */
void imta_smtp_relay_log_done(const ImtaSmtpRelayConfig *relay, guint messages);

/* ---- idle sessions ------------------------------------------------------ */

/* Sessions idle after a transaction, by key (hop, port, TLS mode), kept
 * for the next message to the same hop: at most `max_idle` of them, each
 * for `idle_ms`, then QUIT (a thread of the cache does that while the
 * job waits for work). */
ImtaSmtpCache *imta_smtp_cache_new(const char *channel, guint max_idle, guint idle_ms);

/* An idle session for `key` (the caller owns it now), or NULL.  One the
 * server closed meanwhile is dropped, not returned. */
ImtaSmtpClient *imta_smtp_cache_take(ImtaSmtpCache *cache, const char *key);

/* Keep `c` for reuse (the cache owns it now). */
void imta_smtp_cache_give(ImtaSmtpCache *cache, const char *key, ImtaSmtpClient *c);

/* maytls: a handshake with the hop of `key` failed during this job, so
 * later sessions with it go without TLS at once. */
gboolean imta_smtp_cache_tls_failed(ImtaSmtpCache *cache, const char *key);
void imta_smtp_cache_note_tls_failed(ImtaSmtpCache *cache, const char *key);

/* Sessions taken from the cache so far. */
guint imta_smtp_cache_reuses(ImtaSmtpCache *cache);

/* QUIT every idle session and free. */
void imta_smtp_cache_free(ImtaSmtpCache *cache);

/* ---- the job ------------------------------------------------------------ */

/* Recipients of one message for one destination, in message order. */
typedef struct {
	char *key;           /* the destination; NULL: recipients without one */
	GArray *rcpts;       /* guint indices into the message */
} ImtaSmtpGroup;

/* The destination of recipient `index` of msg (a new string), or NULL. */
typedef char *(*ImtaSmtpGroupKeyFunc)(const ImtaMessage *msg, guint index, gpointer data);

/* Group msg's recipients by key (compared exactly), at most `cap` to a
 * group, groups in the order of their first recipient.  A GPtrArray of
 * ImtaSmtpGroup * that frees them. */
GPtrArray *imta_smtp_relay_group(const ImtaMessage *msg, guint cap, ImtaSmtpGroupKeyFunc key_of,
				 gpointer data);

/* Deliver one message: called on a client thread with the content read;
 * every recipient should get an outcome (one without is retried). */
typedef void (*ImtaSmtpRelayDeliverFunc)(ImtaMasterJob *job, ImtaSmtpRelayMessage *message,
					 gpointer data);

/* Run a master job with `n_threads` client threads (at least one) until
 * the job has no more work: each takes a message, reads its content (a
 * message that cannot be read is deferred, 4.3.0), calls `deliver` and
 * finishes it.  The job's next() and finish() share one connection to
 * whatever feeds the job, so they run under one lock, finishing threads
 * first; while messages are in flight the threads ask with try_next(),
 * so that a waiting next() never holds back their outcomes.  Returns the
 * number of messages finished; *failed_r (may be NULL) is TRUE when the
 * job's source failed (logged). */
guint imta_smtp_relay_run(ImtaMasterJob *job, const char *channel, guint n_threads,
			  ImtaSmtpRelayDeliverFunc deliver, gpointer data, gboolean *failed_r);

G_END_DECLS

#endif /* IMTA_SMTP_RELAY_H */
