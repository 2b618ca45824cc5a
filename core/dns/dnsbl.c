/*
 * dnsbl.c - DNS block lists (RFC 5782): query names, the meaning of an
 * answer, and checking one client address against several lists at once,
 * synchronously or from a GTask thread.
 */
#include "config.h"

#include <string.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <ares.h>
#include <glib.h>
#include <gio/gio.h>

#include <imta/dns.h>
#include <imta/options.h>
#include "dns_private.h"

#define DNSBL_MAX_ZONES 32
#define DNSBL_MAX_ANSWERS 16

typedef enum {
	DNSBL_LISTED,
	DNSBL_NOT_LISTED,
	DNSBL_FAILED,
} DnsblVerdict;

char *
imta_dnsbl_query_name(const char *ip, const char *zone)
{
	g_autofree char *suffix = NULL;
	gsize len;
	DnsIp addr;

	if (zone == NULL || !dns_ip_parse(ip, &addr))
		return NULL;
	suffix = g_strdup(zone);
	len = strlen(suffix);
	if (len > 0 && suffix[len - 1] == '.')
		suffix[--len] = '\0';
	if (len == 0)
		return NULL;
	return dns_reverse_name(&addr, suffix, suffix);
}

/* Is `addr` (network order) a listing?  RFC 5782 answers are in
 * 127.0.0.0/8; 127.255.255.0/24 is where lists put their error codes. */
static gboolean
dnsbl_is_listing(const struct in_addr *addr)
{
	guint32 a = ntohl(addr->s_addr);

	return (a >> 24) == 127 && (a >> 8) != 0x7fffff;
}

/* What a finished query of `zone` says.  For DNSBL_LISTED, *answer_r (if
 * asked for) is the listing address. */
static DnsblVerdict
dnsbl_verdict(ImtaResolver *resolver, const DnsQuery *query, const char *zone,
	      char **answer_r, GError **error)
{
	struct ares_addrttl ttls[DNSBL_MAX_ANSWERS];
	char text[INET_ADDRSTRLEN];
	int n = DNSBL_MAX_ANSWERS;
	int status = query->status;

	if (status == ARES_SUCCESS)
		status = ares_parse_a_reply(query->answer, query->answer_len, NULL, ttls, &n);
	if (status == ARES_SUCCESS && n == 0)
		status = ARES_ENODATA;
	if (status != ARES_SUCCESS) {
		if (dns_status_from_ares(resolver, status, query->name, "A", error) ==
		    IMTA_DNS_NOT_FOUND)
			return DNSBL_NOT_LISTED;
		return DNSBL_FAILED;
	}
	for (int i = 0; i < n; i++) {
		if (!dnsbl_is_listing(&ttls[i].ipaddr))
			continue;
		if (answer_r != NULL) {
			inet_ntop(AF_INET, &ttls[i].ipaddr, text, sizeof text);
			*answer_r = g_strdup(text);
		}
		return DNSBL_LISTED;
	}
	inet_ntop(AF_INET, &ttls[0].ipaddr, text, sizeof text);
	if ((ntohl(ttls[0].ipaddr.s_addr) >> 24) == 127)
		g_set_error(error, G_RESOLVER_ERROR, G_RESOLVER_ERROR_TEMPORARY_FAILURE,
			    "A lookup of \"%s\": %s answered %s, an error code of the list "
			    "(127.255.255.0/24), not a listing", query->name, zone, text);
	else
		g_set_error(error, G_RESOLVER_ERROR, G_RESOLVER_ERROR_TEMPORARY_FAILURE,
			    "A lookup of \"%s\": %s answered %s, outside 127.0.0.0/8: not a "
			    "block list answer", query->name, zone, text);
	return DNSBL_FAILED;
}

static ImtaDnsStatus
dnsbl_invalid_ip(const char *ip, GError **error)
{
	g_autofree char *quoted = imta_option_quote(ip);

	g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
		    "block list check of %s: not an IP address", quoted);
	return IMTA_DNS_NOT_FOUND;
}

ImtaDnsStatus
imta_dnsbl_check(ImtaResolver *resolver, const char *ip, const char *zone, char **answer_r,
		 GError **error)
{
	g_autofree char *query_name = imta_dnsbl_query_name(ip, zone);
	g_autofree char *asked = NULL;
	DnsQuery query = { .type = ns_t_a };
	DnsblVerdict verdict;
	DnsIp addr;

	if (answer_r != NULL)
		*answer_r = NULL;
	if (!dns_ip_parse(ip, &addr))
		return dnsbl_invalid_ip(ip, error);
	if (query_name == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "block list check of %s: no zone given", ip);
		return IMTA_DNS_NOT_FOUND;
	}
	asked = dns_name_normalize(query_name, "block list check", error);
	if (asked == NULL)
		return IMTA_DNS_NOT_FOUND;
	query.name = asked;
	dns_query_run(resolver, &query, 1, NULL, NULL, NULL);
	verdict = dnsbl_verdict(resolver, &query, zone, answer_r, error);
	dns_queries_clear(&query, 1);
	if (verdict == DNSBL_LISTED)
		return IMTA_DNS_OK;
	return verdict == DNSBL_NOT_LISTED ? IMTA_DNS_NOT_FOUND : IMTA_DNS_TEMPFAIL;
}

typedef struct {
	ImtaResolver *resolver;
	const char *const *zones;
} ZonesRun;

/* The batch may stop once some zone lists the address and every zone
 * before it in the list has answered. */
static gboolean
dnsbl_zones_decided(const DnsQuery *queries, guint n, gpointer data)
{
	ZonesRun *run = data;

	for (guint i = 0; i < n; i++) {
		if (!queries[i].finished)
			return FALSE;
		if (dnsbl_verdict(run->resolver, &queries[i], run->zones[i], NULL, NULL) ==
		    DNSBL_LISTED)
			return TRUE;
	}
	return TRUE;
}

static ImtaDnsStatus
dnsbl_check_zones(ImtaResolver *resolver, const char *ip, const char *const *zones,
		  GCancellable *cancellable, guint *zone_r, GError **error)
{
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GError) first_failure = NULL;
	g_autoptr(GString) listed_in = g_string_new(NULL);
	DnsQuery queries[DNSBL_MAX_ZONES] = { { 0 } };
	ZonesRun run = { resolver, zones };
	ImtaDnsStatus status = IMTA_DNS_NOT_FOUND;
	guint n = 0;
	DnsIp addr;

	if (!dns_ip_parse(ip, &addr))
		return dnsbl_invalid_ip(ip, error);
	while (zones != NULL && zones[n] != NULL)
		n++;
	if (n == 0 || n > DNSBL_MAX_ZONES) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "block list check: expected 1 to %d zones, got %u", DNSBL_MAX_ZONES, n);
		return IMTA_DNS_NOT_FOUND;
	}
	for (guint i = 0; i < n; i++) {
		g_autofree char *query_name = imta_dnsbl_query_name(ip, zones[i]);

		/* A zone that is no domain name is never asked; it lists nothing. */
		g_ptr_array_add(names, dns_name_normalize(query_name != NULL ? query_name : "",
							  "block list check", NULL));
		queries[i].name = names->pdata[i];
		queries[i].type = ns_t_a;
		g_string_append_printf(listed_in, "%s%s", i > 0 ? ", " : "", zones[i]);
	}
	dns_query_run(resolver, queries, n, dnsbl_zones_decided, &run, cancellable);
	for (guint i = 0; i < n && status != IMTA_DNS_OK; i++) {
		g_autoptr(GError) local = NULL;

		if (queries[i].name == NULL)
			continue;
		switch (dnsbl_verdict(resolver, &queries[i], zones[i], NULL, &local)) {
		case DNSBL_LISTED:
			*zone_r = i;
			status = IMTA_DNS_OK;
			break;
		case DNSBL_FAILED:
			if (first_failure == NULL)
				first_failure = g_steal_pointer(&local);
			break;
		case DNSBL_NOT_LISTED:
			break;
		}
	}
	dns_queries_clear(queries, n);
	if (status == IMTA_DNS_OK)
		return status;
	if (first_failure != NULL) {
		g_propagate_error(error, g_steal_pointer(&first_failure));
		return IMTA_DNS_TEMPFAIL;
	}
	g_set_error(error, G_RESOLVER_ERROR, G_RESOLVER_ERROR_NOT_FOUND,
		    "%s is not listed in %s", ip, listed_in->str);
	return IMTA_DNS_NOT_FOUND;
}

ImtaDnsStatus
imta_dnsbl_check_zones(ImtaResolver *resolver, const char *ip, const char *const *zones,
		       const char **zone_r, GError **error)
{
	guint index = 0;
	ImtaDnsStatus status = dnsbl_check_zones(resolver, ip, zones, NULL, &index, error);

	if (zone_r != NULL)
		*zone_r = status == IMTA_DNS_OK ? zones[index] : NULL;
	return status;
}

typedef struct {
	ImtaResolver *resolver;
	char *ip;
	GStrv zones;
	ImtaDnsblCallback callback;
	gpointer user_data;
	ImtaDnsStatus status;  /* the result, filled in by the thread */
	guint zone;
} DnsblTask;

static void
dnsbl_task_free(gpointer data)
{
	DnsblTask *task = data;

	imta_resolver_free(task->resolver);
	g_free(task->ip);
	g_strfreev(task->zones);
	g_free(task);
}

static void
dnsbl_task_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
	DnsblTask *check = task_data;

	check->status = dnsbl_check_zones(check->resolver, check->ip,
					  (const char *const *)check->zones, cancellable,
					  &check->zone, NULL);
	g_task_return_boolean(task, TRUE);
}

static void
dnsbl_task_done(GObject *source, GAsyncResult *result, gpointer unused)
{
	GTask *task = G_TASK(result);
	DnsblTask *check = g_task_get_task_data(task);
	const char *zone = check->status == IMTA_DNS_OK ? check->zones[check->zone] : NULL;

	/* Cancelled from this thread: the caller no longer expects an answer. */
	if (g_cancellable_is_cancelled(g_task_get_cancellable(task)))
		return;
	check->callback(check->status, zone, check->user_data);
}

void
imta_dnsbl_check_async(ImtaResolver *resolver, const char *ip, const char *const *zones,
		       GCancellable *cancellable, ImtaDnsblCallback callback, gpointer user_data)
{
	DnsblTask *check = g_new0(DnsblTask, 1);
	GTask *task = g_task_new(NULL, cancellable, dnsbl_task_done, NULL);

	check->resolver = dns_resolver_ref(resolver);
	check->ip = g_strdup(ip);
	check->zones = g_strdupv((char **)zones);
	check->callback = callback;
	check->user_data = user_data;
	g_task_set_source_tag(task, imta_dnsbl_check_async);
	g_task_set_check_cancellable(task, FALSE);
	g_task_set_task_data(task, check, dnsbl_task_free);
	g_task_run_in_thread(task, dnsbl_task_thread);
	g_object_unref(task);
}
