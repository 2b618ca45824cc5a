/*
 * dns_private.h - what resolver.c shares with dnsbl.c: running a batch
 * of queries on one pooled c-ares channel, turning c-ares statuses into
 * ImtaDnsStatus and GError, and reverse query names.
 */
#ifndef IMTA_DNS_PRIVATE_H
#define IMTA_DNS_PRIVATE_H

#include <glib.h>
#include <gio/gio.h>
#include <imta/dns.h>

G_BEGIN_DECLS

/* An address parsed from text; IPv4-mapped IPv6 addresses become IPv4. */
typedef struct {
	int family;        /* AF_INET or AF_INET6 */
	guint8 bytes[16];  /* 4 or 16 significant bytes, network order */
} DnsIp;

/* One question of a batch and, after dns_query_run(), its answer. */
typedef struct {
	const char *name;       /* normalised (dns_name_normalize), borrowed */
	int type;               /* ns_t_a, ns_t_mx... */
	int status;             /* ARES_SUCCESS or an ARES_E* code */
	guint8 *answer;         /* the reply when ARES_SUCCESS; g_free()d by dns_queries_clear */
	int answer_len;
	gboolean finished;
} DnsQuery;

/* Decides, after each step, that the batch need not wait for the rest. */
typedef gboolean (*DnsQueryDoneFunc)(const DnsQuery *queries, guint n, gpointer data);

/* Ask every query of `queries` at once and wait until all are answered,
 * `done` (optional) says enough, the resolver's time bound passes (the
 * unanswered ones end with ARES_ETIMEOUT) or `cancellable` is cancelled
 * (ARES_ECANCELLED).  Never fails as a whole: each query has its status. */
void dns_query_run(ImtaResolver *resolver, DnsQuery *queries, guint n,
		   DnsQueryDoneFunc done, gpointer done_data, GCancellable *cancellable);
void dns_queries_clear(DnsQuery *queries, guint n);

/* The status of a finished query whose answer did not parse into
 * records or had none: NOT_FOUND or TEMPFAIL with `error` saying which
 * name, which type and why.  `ares_status` is the query's status or, for
 * a reply that arrived, the status of parsing it. */
ImtaDnsStatus dns_status_from_ares(ImtaResolver *resolver, int ares_status, const char *name,
				   const char *type, GError **error);

/* `name` as it is asked: A-label form, no trailing dot; NULL with
 * G_IO_ERROR_INVALID_ARGUMENT when it is no domain name.  `what` names
 * the lookup in the message ("MX lookup"). */
char *dns_name_normalize(const char *name, const char *what, GError **error);

gboolean dns_ip_parse(const char *text, DnsIp *ip);

/* The reverse name of `ip` under `v4_suffix` or `v6_suffix`. */
char *dns_reverse_name(const DnsIp *ip, const char *v4_suffix, const char *v6_suffix);

/* Keep the resolver alive for an _async lookup. */
ImtaResolver *dns_resolver_ref(ImtaResolver *resolver);

G_END_DECLS

#endif
