/*
 * relay_route.c - next hops of the SMTP and LMTP clients: domain
 * literals, the smart host of `daemon`, MX records (RFC 5321 section 5.1)
 * with the fallback to the domain's own addresses, null MX (RFC 7505) and
 * the MX loop check, and single named servers (LMTP message stores), all
 * bounded to a few hosts and addresses per attempt.
 */
#include "config.h"

#include <string.h>
#include <arpa/inet.h>
#include <glib.h>

#include <imta/imta.h>
#include <imta/dns.h>
#include <imta/smtp_relay.h>

static void
route_hop_free(gpointer data)
{
	ImtaSmtpHop *hop = data;

	g_free(hop->host);
	g_free(hop->address);
	g_free(hop->socket_path);
	g_free(hop);
}

void
imta_smtp_route_free(ImtaSmtpRoute *route)
{
	if (route == NULL)
		return;
	g_ptr_array_unref(route->hops);
	g_free(route->diagnostic);
	g_free(route);
}

ImtaSmtpRoute *
imta_smtp_route_new(void)
{
	ImtaSmtpRoute *route = g_new0(ImtaSmtpRoute, 1);

	route->hops = g_ptr_array_new_with_free_func(route_hop_free);
	return route;
}

void
imta_smtp_route_fail(ImtaSmtpRoute *route, ImtaOutcome outcome, char *diagnostic)
{
	g_ptr_array_set_size(route->hops, 0);
	route->outcome = outcome;
	g_free(route->diagnostic);
	route->diagnostic = diagnostic;
}

gboolean
imta_smtp_route_add_hop(ImtaSmtpRoute *route, const char *host, const char *address,
			guint16 port, const char *socket_path)
{
	ImtaSmtpHop *hop;

	g_return_val_if_fail(address != NULL || socket_path != NULL, FALSE);
	if (route->hops->len >= IMTA_SMTP_ROUTE_MAX_ADDRESSES)
		return FALSE;
	for (guint i = 0; i < route->hops->len; i++) {
		const ImtaSmtpHop *had = route->hops->pdata[i];

		if (had->port == port && g_strcmp0(had->address, address) == 0 &&
		    g_strcmp0(had->socket_path, socket_path) == 0)
			return TRUE;
	}
	hop = g_new0(ImtaSmtpHop, 1);
	hop->host = g_strdup(host);
	hop->address = g_strdup(address);
	hop->port = port;
	hop->socket_path = g_strdup(socket_path);
	g_ptr_array_add(route->hops, hop);
	return TRUE;
}

char *
imta_smtp_route_domain(const char *address)
{
	const char *at = address != NULL ? strrchr(address, '@') : NULL;
	gsize len;

	if (at == NULL || at[1] == '\0')
		return NULL;
	len = strlen(at + 1);
	/* An absolute name ("example.org.") is the same destination. */
	if (at[1] != '[' && len > 1 && at[len] == '.')
		len--;
	return g_ascii_strdown(at + 1, (gssize)len);
}

gboolean
imta_smtp_route_literal(const char *domain, char **address_r)
{
	gsize len = strlen(domain);
	g_autofree char *inner = NULL;
	const char *text;
	char canon[INET6_ADDRSTRLEN];
	guchar bin[16];
	int family = AF_INET;

	*address_r = NULL;
	if (len < 2 || domain[0] != '[' || domain[len - 1] != ']')
		return FALSE;
	inner = g_strndup(domain + 1, len - 2);
	text = inner;
	if (g_ascii_strncasecmp(text, "IPv6:", 5) == 0) {
		family = AF_INET6;
		text += 5;
	}
	if (inet_pton(family, text, bin) == 1 &&
	    inet_ntop(family, bin, canon, sizeof canon) != NULL)
		*address_r = g_strdup(canon);
	return TRUE;
}

/* ---- MX answers ------------------------------------------------------ */

static gboolean
route_is_local(const char *host, const char *const *local_names)
{
	gsize len = strlen(host);

	if (len > 1 && host[len - 1] == '.')
		len--;
	for (guint i = 0; local_names != NULL && local_names[i] != NULL; i++) {
		const char *name = local_names[i];
		gsize n = strlen(name);

		if (n > 1 && name[n - 1] == '.')
			n--;
		if (n == len && g_ascii_strncasecmp(name, host, len) == 0)
			return TRUE;
	}
	return FALSE;
}

static gboolean
route_mx_is_null(const ImtaDnsMx *mx)
{
	return strcmp(mx->host, ".") == 0 || mx->host[0] == '\0';
}

/* Shuffle runs of equal preference in place (records sorted already). */
static void
route_shuffle_equal(GPtrArray *records)
{
	guint start = 0;

	while (start < records->len) {
		guint16 pref = ((ImtaDnsMx *)records->pdata[start])->preference;
		guint end = start + 1;

		while (end < records->len && ((ImtaDnsMx *)records->pdata[end])->preference == pref)
			end++;
		for (guint i = end - 1; i > start; i--) {
			guint j = start + (guint)g_random_int_range(0, (gint32)(i - start + 1));
			gpointer tmp = records->pdata[i];

			records->pdata[i] = records->pdata[j];
			records->pdata[j] = tmp;
		}
		start = end;
	}
}

static gboolean
route_host_listed(const GPtrArray *hosts, const char *host)
{
	for (guint i = 0; i < hosts->len; i++)
		if (g_ascii_strcasecmp(hosts->pdata[i], host) == 0)
			return TRUE;
	return FALSE;
}

GPtrArray *
imta_smtp_route_mx_hosts(const GPtrArray *mx, const char *domain, const char *const *local_names,
			gboolean shuffle, ImtaOutcome *outcome_r, char **diagnostic_r)
{
	g_autoptr(GPtrArray) kept = g_ptr_array_new();
	g_autoptr(GPtrArray) hosts = g_ptr_array_new_with_free_func(g_free);
	gboolean have_local = FALSE, have_real = FALSE;
	guint16 local_pref = 0;

	*outcome_r = IMTA_OUTCOME_NONE;
	*diagnostic_r = NULL;
	for (guint i = 0; i < mx->len; i++) {
		const ImtaDnsMx *r = mx->pdata[i];

		if (route_mx_is_null(r))
			continue;
		have_real = TRUE;
		if (route_is_local(r->host, local_names) && (!have_local || r->preference < local_pref)) {
			have_local = TRUE;
			local_pref = r->preference;
		}
	}
	/* RFC 7505: a domain whose only MX is "." takes no mail. */
	if (!have_real) {
		*outcome_r = IMTA_OUTCOME_FAILED;
		*diagnostic_r = g_strdup_printf("5.1.10 domain %s does not accept mail "
						"(null MX, RFC 7505)", domain);
		return NULL;
	}
	for (guint i = 0; i < mx->len; i++) {
		ImtaDnsMx *r = mx->pdata[i];

		if (route_mx_is_null(r) || (have_local && r->preference >= local_pref))
			continue;
		g_ptr_array_add(kept, r);
	}
	/* RFC 5321 5.1: only MX hosts better than this one may be used. */
	if (kept->len == 0) {
		*outcome_r = IMTA_OUTCOME_FAILED;
		*diagnostic_r = g_strdup_printf("5.4.6 mail for %s loops back to myself", domain);
		return NULL;
	}
	if (shuffle)
		route_shuffle_equal(kept);
	for (guint i = 0; i < kept->len; i++) {
		const char *host = ((ImtaDnsMx *)kept->pdata[i])->host;

		if (!route_host_listed(hosts, host))
			g_ptr_array_add(hosts, g_ascii_strdown(host, -1));
	}
	return g_steal_pointer(&hosts);
}

/* ---- resolving ------------------------------------------------------- */

/* The addresses of `hosts`, bounded.  `via_mx`: the hosts came from MX
 * records (an MX host without an address is the domain's mistake, not a
 * missing domain). */
static void
route_addresses(ImtaSmtpRoute *route, const ImtaSmtpRouteDns *dns, const GPtrArray *hosts,
		guint16 port, const char *domain, gboolean via_mx)
{
	g_autofree char *absent = NULL;
	g_autofree char *temporary = NULL;

	for (guint i = 0; i < hosts->len && i < IMTA_SMTP_ROUTE_MAX_HOSTS; i++) {
		const char *host = hosts->pdata[i];
		g_autoptr(GPtrArray) addresses = NULL;
		g_autoptr(GError) error = NULL;
		ImtaDnsStatus status = dns->lookup_addresses(dns->data, host, &addresses, &error);

		if (status == IMTA_DNS_OK) {
			for (guint a = 0; a < addresses->len; a++)
				if (!imta_smtp_route_add_hop(route, host, addresses->pdata[a], port, NULL))
					return;
		} else if (status == IMTA_DNS_TEMPFAIL) {
			g_free(temporary);
			temporary = g_strdup(error != NULL ? error->message : "lookup failed");
		} else {
			g_free(absent);
			absent = g_strdup(error != NULL ? error->message : "no address");
		}
	}
	if (route->hops->len > 0)
		return;
	if (temporary != NULL)
		imta_smtp_route_fail(route, IMTA_OUTCOME_RETRY, g_strdup_printf("4.4.3 %s", temporary));
	else if (via_mx)
		imta_smtp_route_fail(route, IMTA_OUTCOME_FAILED,
			   g_strdup_printf("5.4.4 no MX host of %s has an address: %s", domain,
					   absent != NULL ? absent : "no address"));
	else
		imta_smtp_route_fail(route, IMTA_OUTCOME_FAILED,
			   g_strdup_printf("5.1.2 Host or domain name not found: %s",
					   absent != NULL ? absent : "no address"));
}

static void
route_by_address(ImtaSmtpRoute *route, const ImtaSmtpRouteDns *dns, const char *name,
		 guint16 port)
{
	g_autoptr(GPtrArray) hosts = g_ptr_array_new();

	g_ptr_array_add(hosts, (gpointer)name);
	route_addresses(route, dns, hosts, port, name, FALSE);
}

static void
route_by_mx(ImtaSmtpRoute *route, const ImtaSmtpRouteDns *dns, const ImtaSmtpRoutePolicy *policy,
	    const char *name)
{
	g_autoptr(GPtrArray) mx = NULL;
	g_autoptr(GPtrArray) hosts = NULL;
	g_autoptr(GError) error = NULL;
	ImtaDnsStatus status = dns->lookup_mx(dns->data, name, &mx, &error);
	const char *why = error != NULL ? error->message : "lookup failed";
	char *diagnostic = NULL;
	ImtaOutcome outcome;

	if (status == IMTA_DNS_TEMPFAIL) {
		imta_smtp_route_fail(route, IMTA_OUTCOME_RETRY, g_strdup_printf("4.4.3 %s", why));
		return;
	}
	if (status == IMTA_DNS_NOT_FOUND) {
		if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT))
			imta_smtp_route_fail(route, IMTA_OUTCOME_FAILED, g_strdup_printf("5.1.2 %s", why));
		else    /* RFC 5321 5.1: no MX, the domain itself is the host. */
			route_by_address(route, dns, name, 0);
		return;
	}
	hosts = imta_smtp_route_mx_hosts(mx, name, policy->local_names,
					policy->mx == IMTA_MX_RANDOM, &outcome, &diagnostic);
	if (hosts == NULL) {
		imta_smtp_route_fail(route, outcome, diagnostic);
		return;
	}
	route_addresses(route, dns, hosts, 0, name, TRUE);
}

/* A mistake in the smart host's name or records is this system's: mail
 * waits for the fix instead of bouncing. */
static void
route_soften(ImtaSmtpRoute *route)
{
	if (route->outcome != IMTA_OUTCOME_FAILED)
		return;
	route->outcome = IMTA_OUTCOME_RETRY;
	if (route->diagnostic != NULL && route->diagnostic[0] == '5')
		route->diagnostic[0] = '4';
}

static void
route_daemon(ImtaSmtpRoute *route, const ImtaSmtpRouteDns *dns, const ImtaSmtpRoutePolicy *policy)
{
	g_autofree char *address = NULL;
	g_autofree char *target = NULL;
	g_autofree char *detail = NULL;

	if (imta_smtp_route_literal(policy->daemon, &address)) {
		if (address != NULL)
			imta_smtp_route_add_hop(route, NULL, address, 0, NULL);
		else
			imta_smtp_route_fail(route, IMTA_OUTCOME_RETRY,
				   g_strdup_printf("4.4.4 daemon %s is not a valid address literal",
						   policy->daemon));
		return;
	}
	/* As in the original: an unqualified name means the channel's
	 * official host name is the smart host. */
	if (strchr(policy->daemon, '.') == NULL && policy->official_host != NULL &&
	    strchr(policy->official_host, '.') != NULL)
		target = g_ascii_strdown(policy->official_host, -1);
	else
		target = g_ascii_strdown(policy->daemon, -1);
	if (policy->mx == IMTA_MX_MX || policy->mx == IMTA_MX_RANDOM ||
	    policy->mx == IMTA_MX_NONRANDOM)
		route_by_mx(route, dns, policy, target);
	else
		route_by_address(route, dns, target, 0);
	route_soften(route);
	if (route->outcome != IMTA_OUTCOME_NONE) {
		const char *space = strchr(route->diagnostic, ' ');

		/* "4.4.3 why" -> "4.4.3 smart host NAME: why" */
		detail = g_strdup_printf("%.*s smart host %s: %s",
					 (int)(space - route->diagnostic), route->diagnostic,
					 target, space + 1);
		g_free(route->diagnostic);
		route->diagnostic = g_steal_pointer(&detail);
	}
}

ImtaSmtpRoute *
imta_smtp_route_resolve(const ImtaSmtpRouteDns *dns, const ImtaSmtpRoutePolicy *policy,
		       const char *domain)
{
	ImtaSmtpRoute *route = imta_smtp_route_new();
	g_autofree char *address = NULL;

	if (imta_smtp_route_literal(domain, &address)) {
		if (address != NULL)
			imta_smtp_route_add_hop(route, NULL, address, 0, NULL);
		else
			imta_smtp_route_fail(route, IMTA_OUTCOME_FAILED,
				   g_strdup_printf("5.1.2 bad domain literal %s", domain));
	} else if (policy->daemon != NULL) {
		route_daemon(route, dns, policy);
	} else if (policy->mx == IMTA_MX_NOMX) {
		route_by_address(route, dns, domain, 0);
	} else {
		route_by_mx(route, dns, policy, domain);
	}
	return route;
}

ImtaSmtpRoute *
imta_smtp_route_host(const ImtaSmtpRouteDns *dns, const char *name, guint16 port,
		     const char *what)
{
	ImtaSmtpRoute *route = imta_smtp_route_new();
	g_autofree char *address = NULL;
	g_autofree char *target = NULL;
	g_autofree char *detail = NULL;
	const char *space;

	if (imta_smtp_route_literal(name, &address)) {
		if (address != NULL)
			imta_smtp_route_add_hop(route, NULL, address, port, NULL);
		else
			imta_smtp_route_fail(route, IMTA_OUTCOME_RETRY,
					     g_strdup_printf("4.4.4 %s %s is not a valid address "
							     "literal", what, name));
		return route;
	}
	/* An address written without brackets is an address too. */
	if (g_hostname_is_ip_address(name)) {
		imta_smtp_route_add_hop(route, NULL, name, port, NULL);
		return route;
	}
	target = g_ascii_strdown(name, -1);
	route_by_address(route, dns, target, port);
	route_soften(route);
	if (route->outcome == IMTA_OUTCOME_NONE)
		return route;
	/* "4.4.3 why" -> "4.4.3 LMTP server NAME: why" */
	space = strchr(route->diagnostic, ' ');
	if (space == NULL)
		space = route->diagnostic + strlen(route->diagnostic);
	detail = g_strdup_printf("%.*s %s %s: %s", (int)(space - route->diagnostic),
				 route->diagnostic, what, target, *space != '\0' ? space + 1 : "");
	g_free(route->diagnostic);
	route->diagnostic = g_steal_pointer(&detail);
	return route;
}

ImtaDnsStatus
imta_smtp_route_dns_mx(gpointer data, const char *domain, GPtrArray **mx_r, GError **error)
{
	return imta_dns_lookup_mx(data, domain, mx_r, error);
}

ImtaDnsStatus
imta_smtp_route_dns_addresses(gpointer data, const char *name, GPtrArray **addresses_r,
			     GError **error)
{
	return imta_dns_lookup_addresses(data, name, addresses_r, error);
}
