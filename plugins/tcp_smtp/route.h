/*
 * route.h - next hops of the SMTP client: where the mail for one
 * destination domain goes (a domain literal, the channel's smart host,
 * the domain's MX hosts or its own addresses), as a bounded list of
 * addresses to try in order.
 */
#ifndef TCP_SMTP_ROUTE_H
#define TCP_SMTP_ROUTE_H

#include <glib.h>
#include <imta/imta.h>
#include <imta/dns.h>

G_BEGIN_DECLS

/* Per delivery attempt, at most this many host names and addresses. */
#define TCP_SMTP_ROUTE_MAX_HOSTS 5
#define TCP_SMTP_ROUTE_MAX_ADDRESSES 10

/* One address to connect to. */
typedef struct {
	char *host;     /* the name it was found under, or NULL (a literal) */
	char *address;  /* IPv4 or IPv6 address as text */
} TcpSmtpHop;

/* Where a destination's mail goes: hops, or the reason there are none. */
typedef struct {
	GPtrArray *hops;      /* TcpSmtpHop *, in the order to try */
	ImtaOutcome outcome;  /* NONE when there are hops; else RETRY or FAILED */
	char *diagnostic;     /* with outcome: "X.Y.Z reason" */
} TcpSmtpRoute;

/* The lookups a route needs; imta_dns_* in the master, tables in tests.
 * Same contract as imta_dns_lookup_mx / imta_dns_lookup_addresses. */
typedef struct {
	ImtaDnsStatus (*lookup_mx)(gpointer data, const char *domain, GPtrArray **mx_r,
				   GError **error);
	ImtaDnsStatus (*lookup_addresses)(gpointer data, const char *name,
					  GPtrArray **addresses_r, GError **error);
	gpointer data;
} TcpSmtpDns;

/* What the channel says about routing. */
typedef struct {
	ImtaMxMode mx;
	const char *daemon;          /* smart host, or NULL */
	const char *official_host;   /* the channel's, for an unqualified daemon name */
	const char *const *local_names; /* this system's names (NULL-terminated) */
} TcpSmtpRoutePolicy;

/* The domain of `address` (after its last '@'), lower-cased, or NULL when
 * there is none. */
char *tcp_smtp_route_domain(const char *address);

/* Is `domain` a domain literal ("[192.0.2.1]", "[IPv6:2001:db8::1]")?
 * When it is, *address_r is the address in canonical text form, or NULL
 * when the literal is malformed. */
gboolean tcp_smtp_route_literal(const char *domain, char **address_r);

/* The host names to try out of an MX answer (sorted by preference):
 * equal preferences shuffled when `shuffle`; records naming this system,
 * and every record of the same or a worse preference, dropped.  NULL with
 * *outcome_r FAILED and a diagnostic for a null MX (RFC 7505, 5.1.10) or
 * when the best MX is this system (5.4.6). */
GPtrArray *tcp_smtp_route_mx_hosts(const GPtrArray *mx, const char *domain,
				   const char *const *local_names, gboolean shuffle,
				   ImtaOutcome *outcome_r, char **diagnostic_r);

/* The route for `domain` (lower-cased, no trailing dot).  Never NULL. */
TcpSmtpRoute *tcp_smtp_route_resolve(const TcpSmtpDns *dns, const TcpSmtpRoutePolicy *policy,
				     const char *domain);

/* Adapters of imta_dns_lookup_mx / _addresses for TcpSmtpDns (data: the
 * ImtaResolver). */
ImtaDnsStatus tcp_smtp_route_dns_mx(gpointer data, const char *domain, GPtrArray **mx_r,
				    GError **error);
ImtaDnsStatus tcp_smtp_route_dns_addresses(gpointer data, const char *name,
					   GPtrArray **addresses_r, GError **error);

void tcp_smtp_route_free(TcpSmtpRoute *route);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TcpSmtpRoute, tcp_smtp_route_free)

G_END_DECLS

#endif /* TCP_SMTP_ROUTE_H */
