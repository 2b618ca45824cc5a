/*
 * dns.h - DNS lookups for the MTA: addresses, MX, PTR and DNS block lists,
 * through the name servers the configuration names.
 *
 * Name servers come from option.dat DNS_SERVERS ("127.0.0.1:5353,
 * [::1]:53, 192.0.2.53"; port 53 when not given) or, when that is empty,
 * from the system (/etc/resolv.conf).  Every lookup is bounded by the
 * resolver's timeout and number of tries; a server that does not answer,
 * answers SERVFAIL, or answers garbage is a temporary failure, never a
 * "does not exist".
 *
 * Bounds: one try gives each server `timeout_ms`; a lookup makes at most
 * `tries` rounds over the servers and gives up, TEMPFAIL, after
 * timeout_ms * tries * (number of servers) in all, whatever the servers do.
 * Every name is absolute: no search domains, no /etc/hosts.  A name may
 * end in '.'; a non-ASCII (IDN) name is asked as its A-label form.
 *
 * Errors: NOT_FOUND and TEMPFAIL always set `error`, whose message names
 * the name, the record type and the reason ("MX lookup of \"example.com\":
 * no such domain (NXDOMAIN)").  The domain is G_RESOLVER_ERROR (codes
 * NOT_FOUND and TEMPORARY_FAILURE), except for input that cannot be asked
 * at all (not a domain name, not an IP address): NOT_FOUND with
 * G_IO_ERROR_INVALID_ARGUMENT.  OK never sets it.
 *
 * Threads: a resolver may be used from any number of threads at once.
 * The synchronous calls block the calling thread (masters, the worker's
 * blocking pool); the _async calls run the lookup elsewhere and call back
 * on the thread-default main context of the thread that called them.  A
 * resolver may be freed while _async lookups are still running: they keep
 * what they need until they finish.
 */
#ifndef IMTA_DNS_H
#define IMTA_DNS_H

#include <gio/gio.h>
#include <imta/option_dat.h>

G_BEGIN_DECLS

typedef enum {
	IMTA_DNS_OK,           /* found (for a block list: the address is listed) */
	IMTA_DNS_NOT_FOUND,    /* NXDOMAIN or no record of that type */
	IMTA_DNS_TEMPFAIL,     /* timeout, SERVFAIL, malformed answer... */
} ImtaDnsStatus;

typedef struct _ImtaResolver ImtaResolver;

/* servers: as DNS_SERVERS above (at most 8), NULL or "" for the system's,
 * which are read again when /etc/resolv.conf changes.  timeout_ms: per try
 * (0 = 5000, at most 600000); tries: 0 = 2, at most 10.  NULL with
 * G_IO_ERROR_INVALID_ARGUMENT and the offending entry named when `servers`
 * does not parse, or a limit is passed. */
ImtaResolver *imta_resolver_new(const char *servers, guint timeout_ms, guint tries,
				GError **error);
void imta_resolver_free(ImtaResolver *resolver);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaResolver, imta_resolver_free)

/* A resolver for option.dat's DNS_SERVERS and DNS_TIMEOUT (seconds per
 * try), with the default number of tries.  A DNS_SERVERS that does not
 * parse fails as imta_resolver_new() does, the message starting with the
 * file's path and "DNS_SERVERS: ". */
ImtaResolver *imta_resolver_new_from_options(const ImtaOptionDat *od, GError **error);

/* The servers asked, as "127.0.0.1:5353, [::1]:53" (for the system's,
 * those of /etc/resolv.conf); caller frees. */
char *imta_resolver_servers_text(ImtaResolver *resolver);

/* Does `value` parse as a DNS_SERVERS list?  The shape of an
 * ImtaOptionCheck (options.h), for validating the option where it is
 * read; *expected_r is set to static text on refusal. */
gboolean imta_dns_check_servers(const char *value, const char **expected_r);

/* Addresses (A then AAAA) of `name` as text, each once.  OK when either
 * family has an address, even if the other lookup failed. */
ImtaDnsStatus imta_dns_lookup_addresses(ImtaResolver *resolver, const char *name,
					GPtrArray **addresses_r, GError **error);

typedef struct {
	guint16 preference;
	char *host;
} ImtaDnsMx;

/* MX records of `domain`, sorted by preference (ties in answer order);
 * *mx_r is a GPtrArray of ImtaDnsMx * that frees its elements.  Host
 * names have no trailing dot; a null MX (RFC 7505, "0 .") is returned as
 * it is, one record whose host is ".". */
ImtaDnsStatus imta_dns_lookup_mx(ImtaResolver *resolver, const char *domain, GPtrArray **mx_r,
				 GError **error);

/* The PTR name of an IPv4 or IPv6 address given as text (an IPv4-mapped
 * IPv6 address is asked as the IPv4 address); the first when there are
 * several. */
ImtaDnsStatus imta_dns_lookup_ptr(ImtaResolver *resolver, const char *ip, char **name_r,
				  GError **error);

/* The query name of `ip` in the block list `zone`: "2.0.0.127.zone" for
 * IPv4, 32 reversed nibbles for IPv6, an IPv4-mapped IPv6 address
 * (::ffff:127.0.0.2) as its IPv4 address.  A trailing '.' of `zone` is
 * dropped.  NULL when `ip` is not an address or `zone` is empty. */
char *imta_dnsbl_query_name(const char *ip, const char *zone);

/* Is `ip` listed in `zone` (an A record for the query name in
 * 127.0.0.0/8, RFC 5782)?  OK: listed, *answer_r (optional) the address
 * returned.  Answers that are not listings are TEMPFAIL, since the zone
 * is then not working as a block list: an address outside 127.0.0.0/8
 * (a lapsed zone whose wildcard points at a parking page) or in
 * 127.255.255.0/24 (the error codes some lists return, e.g. to queries
 * through public resolvers). */
ImtaDnsStatus imta_dnsbl_check(ImtaResolver *resolver, const char *ip, const char *zone,
			       char **answer_r, GError **error);

/* imta_dnsbl_check against every zone of `zones` (NULL-terminated) at
 * once, with the verdict of imta_dnsbl_check_async: OK and *zone_r (a
 * pointer into `zones`) for the first zone in list order that lists
 * `ip`; NOT_FOUND when none does; TEMPFAIL (error set) when one could
 * not be asked and none listed it. */
ImtaDnsStatus imta_dnsbl_check_zones(ImtaResolver *resolver, const char *ip,
				     const char *const *zones, const char **zone_r,
				     GError **error);

/* Check `ip` against every zone of `zones` (NULL-terminated) and call
 * back once: OK with the first zone (in list order) that lists it,
 * NOT_FOUND when none does, TEMPFAIL when one could not be asked and none
 * listed it.  `zone` is valid during the call only.  Not called once
 * `cancellable` has been cancelled from the calling thread. */
typedef void (*ImtaDnsblCallback)(ImtaDnsStatus status, const char *zone, gpointer user_data);
void imta_dnsbl_check_async(ImtaResolver *resolver, const char *ip, const char *const *zones,
			    GCancellable *cancellable, ImtaDnsblCallback callback,
			    gpointer user_data);

/* The PTR lookup of imta_dns_lookup_ptr, called back on the caller's
 * context with the name (NULL unless OK; valid during the call only).
 * Not called once `cancellable` has been cancelled from the calling
 * thread. */
typedef void (*ImtaDnsNameCallback)(ImtaDnsStatus status, const char *name, gpointer user_data);
void imta_dns_lookup_ptr_async(ImtaResolver *resolver, const char *ip,
			       GCancellable *cancellable, ImtaDnsNameCallback callback,
			       gpointer user_data);

G_END_DECLS

#endif /* IMTA_DNS_H */
