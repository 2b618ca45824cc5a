/*
 * resolver.c - name server lookups through c-ares: the DNS_SERVERS list,
 * a locked pool of c-ares channels (a channel serves one thread at a
 * time), a poll() loop bounded by timeout x tries x servers, and the
 * address, MX and PTR lookups of dns.h.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <netdb.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <ares.h>
#include <glib.h>
#include <gio/gio.h>

#include <imta/dns.h>
#include <imta/options.h>
#include "dns_private.h"

#define DNS_MAX_SERVERS 8          /* entries of a server list */
#define DNS_POOL_MAX 16            /* idle channels kept for reuse */
#define DNS_DEFAULT_TIMEOUT_MS 5000
#define DNS_DEFAULT_TRIES 2
#define DNS_MAX_TIMEOUT_MS 600000
#define DNS_MAX_TRIES 10
#define DNS_MAX_ADDRESSES 64       /* A or AAAA records taken from one answer */
#define DNS_MAX_MX 64
#define DNS_MAX_NAME 253
#define DNS_MAX_LABEL 63
/* c-ares opens at most a UDP and a TCP socket per server. */
#define DNS_MAX_POLL (2 * DNS_MAX_SERVERS + 2)
#define DNS_RESOLV_CONF "/etc/resolv.conf"

static const char servers_expected[] =
	"expected \"addr\", \"addr:port\", \"[v6]\" or \"[v6]:port\"";

typedef struct {
	int family;
	guint8 addr[16];
	guint16 port;
} DnsServer;

typedef struct {
	ares_socket_t fd;
	gboolean readable, writable;
} DnsSocket;

typedef struct {
	ares_channel channel;
	GArray *sockets;        /* DnsSocket: what c-ares wants watched */
	guint n_servers;
	guint64 generation;     /* the resolver's generation it was made in */
} DnsChannel;

struct _ImtaResolver {
	gint refs;
	GArray *servers;        /* DnsServer; empty = the system's */
	guint timeout_ms, tries;
	GMutex lock;            /* guards the members below */
	GPtrArray *idle;        /* DnsChannel *, free for any thread */
	guint64 generation;     /* bumped when /etc/resolv.conf changes */
	struct stat resolv_conf;
	char *servers_text;
};

/* ---------------------------------------------------------------------- */
/* The server list. */

static void
dns_server_format(const DnsServer *server, GString *out)
{
	char text[INET6_ADDRSTRLEN];

	inet_ntop(server->family, server->addr, text, sizeof text);
	if (server->family == AF_INET6)
		g_string_append_printf(out, "[%s]:%u", text, server->port);
	else
		g_string_append_printf(out, "%s:%u", text, server->port);
}

static gboolean
server_parse_port(const char *entry, const char *text, guint16 *port_r, GError **error)
{
	g_autofree char *quoted_entry = imta_option_quote(entry);
	g_autofree char *quoted_port = imta_option_quote(text);
	guint value = 0;
	gsize i;

	for (i = 0; g_ascii_isdigit(text[i]) && i < 5; i++)
		value = value * 10 + (guint)(text[i] - '0');
	if (i == 0 || text[i] != '\0' || value < 1 || value > 65535) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "name server %s: expected a port from 1 to 65535, got %s",
			    quoted_entry, quoted_port);
		return FALSE;
	}
	*port_r = (guint16)value;
	return TRUE;
}

static gboolean
server_fail(const char *entry, const char *why, GError **error)
{
	g_autofree char *quoted = imta_option_quote(entry);

	g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "name server %s: %s; %s",
		    quoted, why, servers_expected);
	return FALSE;
}

static gboolean
server_parse_v6(const char *entry, DnsServer *server, GError **error)
{
	const char *close = strchr(entry, ']');
	g_autofree char *host = NULL;

	if (close == NULL)
		return server_fail(entry, "no \"]\" after the IPv6 address", error);
	host = g_strndup(entry + 1, (gsize)(close - entry - 1));
	if (inet_pton(AF_INET6, host, server->addr) != 1)
		return server_fail(entry, "not an IPv6 address inside \"[...]\"", error);
	server->family = AF_INET6;
	if (close[1] == '\0')
		return TRUE;
	if (close[1] != ':')
		return server_fail(entry, "unexpected text after \"]\"", error);
	return server_parse_port(entry, close + 2, &server->port, error);
}

static gboolean
server_parse(const char *entry, DnsServer *server, GError **error)
{
	const char *colon;
	g_autofree char *host = NULL;
	guint8 v6[16];

	server->port = 53;
	if (entry[0] == '[')
		return server_parse_v6(entry, server, error);
	if (inet_pton(AF_INET6, entry, v6) == 1)
		return server_fail(entry, "an IPv6 address must be written in brackets", error);
	colon = strchr(entry, ':');
	host = colon != NULL ? g_strndup(entry, (gsize)(colon - entry)) : g_strdup(entry);
	if (inet_pton(AF_INET, host, server->addr) != 1)
		return server_fail(entry, "not an IP address", error);
	server->family = AF_INET;
	return colon == NULL || server_parse_port(entry, colon + 1, &server->port, error);
}

/* Parse a DNS_SERVERS value; an empty (or blank) one is the system's. */
static GArray *
servers_parse(const char *text, GError **error)
{
	g_autoptr(GArray) servers = g_array_new(FALSE, TRUE, sizeof(DnsServer));
	g_auto(GStrv) entries = NULL;

	if (text == NULL || text[strspn(text, " \t")] == '\0')
		return g_steal_pointer(&servers);
	entries = g_strsplit(text, ",", -1);
	for (guint i = 0; entries[i] != NULL; i++) {
		const char *entry = g_strstrip(entries[i]);
		DnsServer server = { 0 };

		if (*entry == '\0') {
			g_autofree char *quoted = imta_option_quote(text);

			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
				    "name server list %s: entry %u is empty; %s", quoted, i + 1,
				    servers_expected);
			return NULL;
		}
		if (i >= DNS_MAX_SERVERS) {
			g_autofree char *quoted = imta_option_quote(text);

			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
				    "name server list %s: more than %d servers", quoted,
				    DNS_MAX_SERVERS);
			return NULL;
		}
		if (!server_parse(entry, &server, error))
			return NULL;
		g_array_append_val(servers, server);
	}
	return g_steal_pointer(&servers);
}

gboolean
imta_dns_check_servers(const char *value, const char **expected_r)
{
	g_autoptr(GArray) servers = servers_parse(value, NULL);

	if (servers == NULL)
		*expected_r = "a comma-separated list of \"addr\", \"addr:port\", \"[v6]\" or "
			      "\"[v6]:port\" (ports 1 to 65535)";
	return servers != NULL;
}

/* ---------------------------------------------------------------------- */
/* Channels and their pool. */

static gpointer
dns_library_init(gpointer unused)
{
	return GINT_TO_POINTER(ares_library_init(ARES_LIB_INIT_ALL));
}

static void
channel_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	DnsChannel *ch = data;
	DnsSocket added = { fd, readable != 0, writable != 0 };

	for (guint i = 0; i < ch->sockets->len; i++) {
		DnsSocket *sock = &g_array_index(ch->sockets, DnsSocket, i);

		if (sock->fd != fd)
			continue;
		if (!readable && !writable)
			g_array_remove_index_fast(ch->sockets, i);
		else
			*sock = added;
		return;
	}
	if (readable || writable)
		g_array_append_val(ch->sockets, added);
}

static void
channel_free(DnsChannel *ch)
{
	if (ch == NULL)
		return;
	if (ch->channel != NULL)
		ares_destroy(ch->channel);
	g_array_unref(ch->sockets);
	g_free(ch);
}

static gboolean
channel_set_servers(DnsChannel *ch, GArray *servers)
{
	g_autofree struct ares_addr_port_node *nodes = NULL;

	if (servers->len == 0)
		return TRUE;
	nodes = g_new0(struct ares_addr_port_node, servers->len);
	for (guint i = 0; i < servers->len; i++) {
		const DnsServer *server = &g_array_index(servers, DnsServer, i);

		nodes[i].next = i + 1 < servers->len ? &nodes[i + 1] : NULL;
		nodes[i].family = server->family;
		memcpy(&nodes[i].addr, server->addr, server->family == AF_INET6 ? 16 : 4);
		nodes[i].udp_port = server->port;
		nodes[i].tcp_port = server->port;
	}
	return ares_set_servers_ports(ch->channel, nodes) == ARES_SUCCESS;
}

/* The servers a channel asks, as text; also counts them. */
static char *
channel_servers_text(DnsChannel *ch)
{
	struct ares_addr_port_node *nodes = NULL;
	g_autoptr(GString) out = g_string_new(NULL);

	ch->n_servers = 0;
	if (ares_get_servers_ports(ch->channel, &nodes) != ARES_SUCCESS)
		return g_strdup("(unknown)");
	for (struct ares_addr_port_node *n = nodes; n != NULL; n = n->next) {
		DnsServer server = { .family = n->family, .port = n->udp_port };

		if (server.port == 0)
			server.port = 53;
		memcpy(server.addr, &n->addr, n->family == AF_INET6 ? 16 : 4);
		if (out->len > 0)
			g_string_append(out, ", ");
		dns_server_format(&server, out);
		ch->n_servers++;
	}
	ares_free_data(nodes);
	if (out->len == 0)
		g_string_append(out, "(none)");
	return g_string_free(g_steal_pointer(&out), FALSE);
}

static DnsChannel *
channel_new(ImtaResolver *resolver, guint64 generation, char **servers_text_r,
	    GError **error)
{
	struct ares_options opts = { 0 };
	int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_DOMAINS |
		   ARES_OPT_LOOKUPS | ARES_OPT_SOCK_STATE_CB;
	DnsChannel *ch = g_new0(DnsChannel, 1);
	int status;

	ch->sockets = g_array_new(FALSE, FALSE, sizeof(DnsSocket));
	ch->generation = generation;
	/* Mail domains are absolute: no search list, no HOSTALIASES, DNS only. */
	opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	opts.timeout = (int)resolver->timeout_ms;
	opts.tries = (int)resolver->tries;
	opts.domains = NULL;
	opts.ndomains = 0;
	opts.lookups = (char *)"b";
	opts.sock_state_cb = channel_sock_state;
	opts.sock_state_cb_data = ch;
	status = ares_init_options(&ch->channel, &opts, mask);
	if (status != ARES_SUCCESS) {
		ch->channel = NULL;
		channel_free(ch);
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "cannot set up a DNS resolver: %s", ares_strerror(status));
		return NULL;
	}
	if (!channel_set_servers(ch, resolver->servers)) {
		channel_free(ch);
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "cannot set up a DNS resolver: the name servers were refused");
		return NULL;
	}
	*servers_text_r = channel_servers_text(ch);
	return ch;
}

/* With the system's servers, a changed /etc/resolv.conf retires every
 * channel made from the old one.  Called with the lock held; returns the
 * channels to free. */
static GPtrArray *
resolver_check_resolv_conf(ImtaResolver *resolver)
{
	struct stat st = { 0 };
	GPtrArray *retired;

	if (resolver->servers->len > 0)
		return NULL;
	if (stat(DNS_RESOLV_CONF, &st) != 0)
		memset(&st, 0, sizeof st);
	if (st.st_ino == resolver->resolv_conf.st_ino &&
	    st.st_dev == resolver->resolv_conf.st_dev && st.st_size == resolver->resolv_conf.st_size &&
	    st.st_mtim.tv_sec == resolver->resolv_conf.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == resolver->resolv_conf.st_mtim.tv_nsec)
		return NULL;
	resolver->resolv_conf = st;
	resolver->generation++;
	retired = resolver->idle;
	resolver->idle = g_ptr_array_new();
	return retired;
}

static DnsChannel *
resolver_acquire(ImtaResolver *resolver, GError **error)
{
	g_autoptr(GPtrArray) retired = NULL;
	g_autofree char *text = NULL;
	DnsChannel *ch = NULL;
	guint64 generation;

	g_mutex_lock(&resolver->lock);
	retired = resolver_check_resolv_conf(resolver);
	generation = resolver->generation;
	if (resolver->idle->len > 0)
		ch = g_ptr_array_steal_index_fast(resolver->idle, resolver->idle->len - 1);
	g_mutex_unlock(&resolver->lock);
	for (guint i = 0; retired != NULL && i < retired->len; i++)
		channel_free(retired->pdata[i]);
	if (ch != NULL)
		return ch;
	ch = channel_new(resolver, generation, &text, error);
	if (ch == NULL)
		return NULL;
	g_mutex_lock(&resolver->lock);
	if (generation == resolver->generation) {
		g_free(resolver->servers_text);
		resolver->servers_text = g_steal_pointer(&text);
	}
	g_mutex_unlock(&resolver->lock);
	return ch;
}

static void
resolver_release(ImtaResolver *resolver, DnsChannel *ch)
{
	g_mutex_lock(&resolver->lock);
	if (ch->generation == resolver->generation && resolver->idle->len < DNS_POOL_MAX) {
		g_ptr_array_add(resolver->idle, ch);
		ch = NULL;
	}
	g_mutex_unlock(&resolver->lock);
	channel_free(ch);
}

char *
imta_resolver_servers_text(ImtaResolver *resolver)
{
	char *text;

	g_mutex_lock(&resolver->lock);
	text = g_strdup(resolver->servers_text != NULL ? resolver->servers_text : "(unknown)");
	g_mutex_unlock(&resolver->lock);
	return text;
}

ImtaResolver *
imta_resolver_new(const char *servers, guint timeout_ms, guint tries, GError **error)
{
	static GOnce library_once = G_ONCE_INIT;
	g_autoptr(GArray) parsed = NULL;
	g_autoptr(GError) local = NULL;
	ImtaResolver *resolver;
	DnsChannel *ch;
	int status;

	status = GPOINTER_TO_INT(g_once(&library_once, dns_library_init, NULL));
	if (status != ARES_SUCCESS) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot start c-ares: %s",
			    ares_strerror(status));
		return NULL;
	}
	timeout_ms = timeout_ms == 0 ? DNS_DEFAULT_TIMEOUT_MS : timeout_ms;
	tries = tries == 0 ? DNS_DEFAULT_TRIES : tries;
	if (timeout_ms > DNS_MAX_TIMEOUT_MS) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "expected a DNS timeout from 1 to %d ms, got %u", DNS_MAX_TIMEOUT_MS,
			    timeout_ms);
		return NULL;
	}
	if (tries > DNS_MAX_TRIES) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "expected 1 to %d DNS tries, got %u", DNS_MAX_TRIES, tries);
		return NULL;
	}
	parsed = servers_parse(servers, error);
	if (parsed == NULL)
		return NULL;
	resolver = g_new0(ImtaResolver, 1);
	resolver->refs = 1;
	resolver->servers = g_steal_pointer(&parsed);
	resolver->timeout_ms = timeout_ms;
	resolver->tries = tries;
	g_mutex_init(&resolver->lock);
	resolver->idle = g_ptr_array_new();
	/* Make one channel now, so that a resolver that cannot work fails here. */
	ch = resolver_acquire(resolver, &local);
	if (ch == NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		imta_resolver_free(resolver);
		return NULL;
	}
	resolver_release(resolver, ch);
	return resolver;
}

ImtaResolver *
imta_resolver_new_from_options(const ImtaOptionDat *od, GError **error)
{
	guint timeout_ms = (guint)CLAMP(od->dns_timeout, 1, DNS_MAX_TIMEOUT_MS / 1000) * 1000;
	ImtaResolver *resolver = imta_resolver_new(od->dns_servers, timeout_ms, 0, error);

	if (resolver == NULL && error != NULL &&
	    g_error_matches(*error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT))
		g_prefix_error(error, "%s: DNS_SERVERS: ",
			       od->path != NULL ? od->path : "option.dat");
	return resolver;
}

ImtaResolver *
dns_resolver_ref(ImtaResolver *resolver)
{
	g_atomic_int_inc(&resolver->refs);
	return resolver;
}

void
imta_resolver_free(ImtaResolver *resolver)
{
	if (resolver == NULL || !g_atomic_int_dec_and_test(&resolver->refs))
		return;
	for (guint i = 0; i < resolver->idle->len; i++)
		channel_free(resolver->idle->pdata[i]);
	g_ptr_array_unref(resolver->idle);
	g_array_unref(resolver->servers);
	g_mutex_clear(&resolver->lock);
	g_free(resolver->servers_text);
	g_free(resolver);
}

/* ---------------------------------------------------------------------- */
/* Running queries. */

static void
query_answered(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	DnsQuery *query = arg;

	if (query->finished)
		return;  /* given up on by dns_query_run() */
	query->finished = TRUE;
	query->status = status;
	if (status != ARES_SUCCESS)
		return;
	if (abuf == NULL || alen <= 0) {
		query->status = ARES_EBADRESP;
		return;
	}
	query->answer = g_memdup2(abuf, (gsize)alen);
	query->answer_len = alen;
}

static gboolean
queries_finished(const DnsQuery *queries, guint n)
{
	for (guint i = 0; i < n; i++)
		if (!queries[i].finished)
			return FALSE;
	return TRUE;
}

/* One wait for c-ares's sockets (or its next timeout, or the deadline, or
 * a cancellation), then let it process what happened. */
static void
channel_wait(DnsChannel *ch, gint64 remaining_us, const GPollFD *cancel_fd)
{
	struct pollfd fds[DNS_MAX_POLL + 1];
	struct timeval max_tv, tv_buf, *tv;
	nfds_t n_fds = 0;
	gint64 wait_ms;
	int ready;

	max_tv.tv_sec = (time_t)(remaining_us / G_USEC_PER_SEC);
	max_tv.tv_usec = (suseconds_t)(remaining_us % G_USEC_PER_SEC);
	tv = ares_timeout(ch->channel, &max_tv, &tv_buf);
	wait_ms = (gint64)tv->tv_sec * 1000 + (tv->tv_usec + 999) / 1000;
	for (guint i = 0; i < ch->sockets->len && n_fds < DNS_MAX_POLL; i++) {
		const DnsSocket *sock = &g_array_index(ch->sockets, DnsSocket, i);

		fds[n_fds].fd = sock->fd;
		fds[n_fds].events = (short)((sock->readable ? POLLIN : 0) |
					    (sock->writable ? POLLOUT : 0));
		fds[n_fds].revents = 0;
		n_fds++;
	}
	if (cancel_fd != NULL) {
		fds[n_fds].fd = cancel_fd->fd;
		fds[n_fds].events = POLLIN;
		fds[n_fds].revents = 0;
		n_fds++;
	}
	ready = poll(fds, n_fds, (int)MIN(wait_ms, G_MAXINT));
	if (ready < 0) {
		/* The caller's loop checks the deadline; do not spin until it. */
		if (errno != EINTR)
			g_usleep(1000);
		return;
	}
	for (nfds_t i = 0; ready > 0 && i < n_fds; i++) {
		gboolean readable = (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) != 0;
		gboolean writable = (fds[i].revents & POLLOUT) != 0;

		if ((!readable && !writable) || (cancel_fd != NULL && fds[i].fd == cancel_fd->fd))
			continue;
		ares_process_fd(ch->channel, readable ? fds[i].fd : ARES_SOCKET_BAD,
				writable ? fds[i].fd : ARES_SOCKET_BAD);
	}
	/* Retransmissions and timeouts. */
	ares_process_fd(ch->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

void
dns_query_run(ImtaResolver *resolver, DnsQuery *queries, guint n, DnsQueryDoneFunc done,
	      gpointer done_data, GCancellable *cancellable)
{
	GPollFD cancel_fd = { .fd = -1 };
	gboolean have_cancel_fd = FALSE;
	int stop_status = ARES_ECANCELLED;
	DnsChannel *ch;
	gint64 deadline;
	guint servers;

	for (guint i = 0; i < n; i++) {
		queries[i].finished = queries[i].name == NULL;
		queries[i].status = queries[i].name == NULL ? ARES_EBADNAME : ARES_ETIMEOUT;
		queries[i].answer = NULL;
		queries[i].answer_len = 0;
	}
	ch = resolver_acquire(resolver, NULL);
	if (ch == NULL) {
		for (guint i = 0; i < n; i++) {
			if (!queries[i].finished) {
				queries[i].finished = TRUE;
				queries[i].status = ARES_ENOTINITIALIZED;
			}
		}
		return;
	}
	servers = MAX(ch->n_servers, 1);
	deadline = g_get_monotonic_time() +
		   (gint64)resolver->timeout_ms * 1000 * resolver->tries * servers;
	if (cancellable != NULL)
		have_cancel_fd = g_cancellable_make_pollfd(cancellable, &cancel_fd);
	for (guint i = 0; i < n; i++)
		if (!queries[i].finished)
			ares_query(ch->channel, queries[i].name, ns_c_in, queries[i].type,
				   query_answered, &queries[i]);
	while (!queries_finished(queries, n)) {
		gint64 now = g_get_monotonic_time();

		if (done != NULL && done(queries, n, done_data))
			break;
		if (g_cancellable_is_cancelled(cancellable))
			break;
		if (now >= deadline) {
			stop_status = ARES_ETIMEOUT;
			break;
		}
		channel_wait(ch, deadline - now, have_cancel_fd ? &cancel_fd : NULL);
	}
	if (!queries_finished(queries, n)) {
		for (guint i = 0; i < n; i++) {
			if (!queries[i].finished) {
				queries[i].finished = TRUE;
				queries[i].status = stop_status;
			}
		}
		ares_cancel(ch->channel);
	}
	if (have_cancel_fd)
		g_cancellable_release_fd(cancellable);
	resolver_release(resolver, ch);
}

void
dns_queries_clear(DnsQuery *queries, guint n)
{
	for (guint i = 0; i < n; i++) {
		g_clear_pointer(&queries[i].answer, g_free);
		queries[i].answer_len = 0;
	}
}

ImtaDnsStatus
dns_status_from_ares(ImtaResolver *resolver, int ares_status, const char *name, const char *type,
		     GError **error)
{
	g_autofree char *servers = NULL;
	g_autofree char *why = NULL;

	switch (ares_status) {
	case ARES_ENOTFOUND:
		g_set_error(error, G_RESOLVER_ERROR, G_RESOLVER_ERROR_NOT_FOUND,
			    "%s lookup of \"%s\": no such domain (NXDOMAIN)", type, name);
		return IMTA_DNS_NOT_FOUND;
	case ARES_ENODATA:
		g_set_error(error, G_RESOLVER_ERROR, G_RESOLVER_ERROR_NOT_FOUND,
			    "%s lookup of \"%s\": no %s record", type, name, type);
		return IMTA_DNS_NOT_FOUND;
	case ARES_ETIMEOUT:
		servers = imta_resolver_servers_text(resolver);
		why = g_strdup_printf("timed out: no answer from %s (%u ms per try, %u %s)",
				      servers, resolver->timeout_ms, resolver->tries,
				      resolver->tries == 1 ? "try" : "tries");
		break;
	case ARES_ESERVFAIL:
		why = g_strdup("the name server failed (SERVFAIL)");
		break;
	case ARES_EREFUSED:
		why = g_strdup("the name server refused the query (REFUSED)");
		break;
	case ARES_EFORMERR:
		why = g_strdup("the name server could not parse the query (FORMERR)");
		break;
	case ARES_ENOTIMP:
		why = g_strdup("the name server does not do this query (NOTIMP)");
		break;
	case ARES_EBADRESP:
	case ARES_EBADNAME:  /* from parsing: names were checked before asking */
		why = g_strdup("malformed answer");
		break;
	case ARES_ECONNREFUSED:
		/* What c-ares reports once every server answered SERVFAIL or
		 * REFUSED, or its port was unreachable. */
		servers = imta_resolver_servers_text(resolver);
		why = g_strdup_printf("every name server failed or refused (SERVFAIL, REFUSED or "
				      "port unreachable): %s", servers);
		break;
	case ARES_ECANCELLED:
		why = g_strdup("cancelled");
		break;
	default:
		why = g_strdup(ares_strerror(ares_status));
		break;
	}
	g_set_error(error, G_RESOLVER_ERROR, G_RESOLVER_ERROR_TEMPORARY_FAILURE,
		    "%s lookup of \"%s\": %s", type, name, why);
	return IMTA_DNS_TEMPFAIL;
}

/* ---------------------------------------------------------------------- */
/* Names and addresses. */

static gboolean
dns_label_char(char c)
{
	return g_ascii_isalnum(c) || c == '-' || c == '_';
}

/* Why `name` (ASCII, no trailing dot) is not a domain name; NULL if it is. */
static const char *
dns_name_problem(const char *name)
{
	gsize len = strlen(name), label = 0;

	if (len == 0)
		return "expected a domain name";
	if (len > DNS_MAX_NAME)
		return "longer than 253 characters";
	for (gsize i = 0; i <= len; i++) {
		if (name[i] == '.' || name[i] == '\0') {
			if (label == 0)
				return "an empty label";
			label = 0;
			continue;
		}
		if (!dns_label_char(name[i]))
			return "a character that is not a letter, digit, '-' or '_'";
		if (++label > DNS_MAX_LABEL)
			return "a label longer than 63 characters";
	}
	return NULL;
}

char *
dns_name_normalize(const char *name, const char *what, GError **error)
{
	g_autofree char *ascii = NULL;
	g_autofree char *quoted = imta_option_quote(name);
	const char *problem;
	gsize len;

	if (name != NULL && g_utf8_validate(name, -1, NULL) && g_hostname_is_non_ascii(name))
		ascii = g_hostname_to_ascii(name);
	else if (name != NULL)
		ascii = g_strdup(name);
	if (ascii == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "%s of %s: not a domain name", what, quoted);
		return NULL;
	}
	len = strlen(ascii);
	if (len > 1 && ascii[len - 1] == '.')
		ascii[len - 1] = '\0';
	problem = dns_name_problem(ascii);
	if (problem != NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "%s of %s: not a domain name (%s)", what, quoted, problem);
		return NULL;
	}
	return g_steal_pointer(&ascii);
}

gboolean
dns_ip_parse(const char *text, DnsIp *ip)
{
	static const guint8 v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (text == NULL)
		return FALSE;
	memset(ip, 0, sizeof *ip);
	if (inet_pton(AF_INET, text, ip->bytes) == 1) {
		ip->family = AF_INET;
		return TRUE;
	}
	if (inet_pton(AF_INET6, text, ip->bytes) != 1)
		return FALSE;
	ip->family = AF_INET6;
	if (memcmp(ip->bytes, v4_mapped, sizeof v4_mapped) == 0) {
		memmove(ip->bytes, ip->bytes + 12, 4);
		memset(ip->bytes + 4, 0, 12);
		ip->family = AF_INET;
	}
	return TRUE;
}

char *
dns_reverse_name(const DnsIp *ip, const char *v4_suffix, const char *v6_suffix)
{
	static const char hex[] = "0123456789abcdef";
	GString *out;

	if (ip->family == AF_INET)
		return g_strdup_printf("%u.%u.%u.%u.%s", ip->bytes[3], ip->bytes[2], ip->bytes[1],
				       ip->bytes[0], v4_suffix);
	out = g_string_sized_new(64 + strlen(v6_suffix));
	for (int i = 15; i >= 0; i--) {
		g_string_append_c(out, hex[ip->bytes[i] & 0x0f]);
		g_string_append_c(out, '.');
		g_string_append_c(out, hex[ip->bytes[i] >> 4]);
		g_string_append_c(out, '.');
	}
	g_string_append(out, v6_suffix);
	return g_string_free(out, FALSE);
}

/* ---------------------------------------------------------------------- */
/* Addresses. */

static void
addresses_add(GPtrArray *addresses, int family, const void *addr)
{
	char text[INET6_ADDRSTRLEN];

	if (inet_ntop(family, addr, text, sizeof text) == NULL)
		return;
	for (guint i = 0; i < addresses->len; i++)
		if (strcmp(addresses->pdata[i], text) == 0)
			return;
	g_ptr_array_add(addresses, g_strdup(text));
}

/* Parse an A or AAAA answer into `addresses`; an ARES_* status. */
static int
addresses_parse(const DnsQuery *query, GPtrArray *addresses)
{
	int status, n = DNS_MAX_ADDRESSES;

	if (query->status != ARES_SUCCESS)
		return query->status;
	if (query->type == ns_t_a) {
		struct ares_addrttl ttls[DNS_MAX_ADDRESSES];

		status = ares_parse_a_reply(query->answer, query->answer_len, NULL, ttls, &n);
		for (int i = 0; status == ARES_SUCCESS && i < n; i++)
			addresses_add(addresses, AF_INET, &ttls[i].ipaddr);
	} else {
		struct ares_addr6ttl ttls[DNS_MAX_ADDRESSES];

		status = ares_parse_aaaa_reply(query->answer, query->answer_len, NULL, ttls, &n);
		for (int i = 0; status == ARES_SUCCESS && i < n; i++)
			addresses_add(addresses, AF_INET6, &ttls[i].ip6addr);
	}
	if (status == ARES_SUCCESS && n == 0)
		status = ARES_ENODATA;
	return status;
}

static gboolean
dns_status_is_absent(int status)
{
	return status == ARES_ENOTFOUND || status == ARES_ENODATA;
}

ImtaDnsStatus
imta_dns_lookup_addresses(ImtaResolver *resolver, const char *name, GPtrArray **addresses_r,
			  GError **error)
{
	g_autofree char *asked = dns_name_normalize(name, "A/AAAA lookup", error);
	g_autoptr(GPtrArray) addresses = g_ptr_array_new_with_free_func(g_free);
	DnsQuery queries[2] = { { .name = asked, .type = ns_t_a },
				{ .name = asked, .type = ns_t_aaaa } };
	int status_a, status_aaaa;

	*addresses_r = NULL;
	if (asked == NULL)
		return IMTA_DNS_NOT_FOUND;
	dns_query_run(resolver, queries, 2, NULL, NULL, NULL);
	status_a = addresses_parse(&queries[0], addresses);
	status_aaaa = addresses_parse(&queries[1], addresses);
	dns_queries_clear(queries, 2);
	/* Either family is enough to try delivery. */
	if (addresses->len > 0) {
		*addresses_r = g_steal_pointer(&addresses);
		return IMTA_DNS_OK;
	}
	if (!dns_status_is_absent(status_a))
		return dns_status_from_ares(resolver, status_a, asked, "A", error);
	if (!dns_status_is_absent(status_aaaa))
		return dns_status_from_ares(resolver, status_aaaa, asked, "AAAA", error);
	if (status_a == ARES_ENOTFOUND || status_aaaa == ARES_ENOTFOUND)
		return dns_status_from_ares(resolver, ARES_ENOTFOUND, asked, "A/AAAA", error);
	return dns_status_from_ares(resolver, ARES_ENODATA, asked, "A/AAAA", error);
}

/* ---------------------------------------------------------------------- */
/* MX. */

static void
mx_free(gpointer data)
{
	ImtaDnsMx *mx = data;

	g_free(mx->host);
	g_free(mx);
}

static gint
mx_compare(gconstpointer a, gconstpointer b)
{
	const ImtaDnsMx *x = *(ImtaDnsMx *const *)a, *y = *(ImtaDnsMx *const *)b;

	return (gint)x->preference - (gint)y->preference;
}

ImtaDnsStatus
imta_dns_lookup_mx(ImtaResolver *resolver, const char *domain, GPtrArray **mx_r, GError **error)
{
	g_autofree char *asked = dns_name_normalize(domain, "MX lookup", error);
	g_autoptr(GPtrArray) records = g_ptr_array_new_with_free_func(mx_free);
	DnsQuery query = { .name = asked, .type = ns_t_mx };
	struct ares_mx_reply *replies = NULL;
	int status;

	*mx_r = NULL;
	if (asked == NULL)
		return IMTA_DNS_NOT_FOUND;
	dns_query_run(resolver, &query, 1, NULL, NULL, NULL);
	status = query.status;
	if (status == ARES_SUCCESS)
		status = ares_parse_mx_reply(query.answer, query.answer_len, &replies);
	dns_queries_clear(&query, 1);
	for (const struct ares_mx_reply *r = replies; r != NULL && records->len < DNS_MAX_MX;
	     r = r->next) {
		ImtaDnsMx *mx = g_new0(ImtaDnsMx, 1);

		mx->preference = r->priority;
		mx->host = g_strdup(r->host[0] != '\0' ? r->host : ".");
		g_ptr_array_add(records, mx);
	}
	if (replies != NULL)
		ares_free_data(replies);
	if (status == ARES_SUCCESS && records->len == 0)
		status = ARES_ENODATA;
	if (status != ARES_SUCCESS)
		return dns_status_from_ares(resolver, status, asked, "MX", error);
	/* GLib's sort is stable: equal preferences keep the answer's order. */
	g_ptr_array_sort(records, mx_compare);
	*mx_r = g_steal_pointer(&records);
	return IMTA_DNS_OK;
}

/* ---------------------------------------------------------------------- */
/* PTR. */

static ImtaDnsStatus
dns_lookup_ptr(ImtaResolver *resolver, const char *ip, GCancellable *cancellable,
	       char **name_r, GError **error)
{
	g_autofree char *asked = NULL;
	g_autofree char *found = NULL;
	struct hostent *host = NULL;
	DnsQuery query = { .type = ns_t_ptr };
	DnsIp addr;
	int status;

	*name_r = NULL;
	if (!dns_ip_parse(ip, &addr)) {
		g_autofree char *quoted = imta_option_quote(ip);

		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "PTR lookup of %s: not an IP address", quoted);
		return IMTA_DNS_NOT_FOUND;
	}
	asked = dns_reverse_name(&addr, "in-addr.arpa", "ip6.arpa");
	query.name = asked;
	dns_query_run(resolver, &query, 1, NULL, NULL, cancellable);
	status = query.status;
	if (status == ARES_SUCCESS)
		status = ares_parse_ptr_reply(query.answer, query.answer_len, addr.bytes,
					      addr.family == AF_INET ? 4 : 16, addr.family, &host);
	dns_queries_clear(&query, 1);
	if (status == ARES_SUCCESS) {
		/* c-ares names the last PTR record h_name and lists them all, in
		 * answer order, in h_aliases. */
		const char *first = host->h_aliases != NULL && host->h_aliases[0] != NULL ?
			host->h_aliases[0] : host->h_name;

		found = g_strdup(first != NULL ? first : "");
		ares_free_hostent(host);
		g_strchomp(found);
		if (*found != '\0' && found[strlen(found) - 1] == '.')
			found[strlen(found) - 1] = '\0';
		/* The name goes into Received: headers and logs. */
		if (dns_name_problem(found) != NULL)
			status = ARES_EBADRESP;
	}
	if (status != ARES_SUCCESS)
		return dns_status_from_ares(resolver, status, asked, "PTR", error);
	*name_r = g_steal_pointer(&found);
	return IMTA_DNS_OK;
}

ImtaDnsStatus
imta_dns_lookup_ptr(ImtaResolver *resolver, const char *ip, char **name_r, GError **error)
{
	return dns_lookup_ptr(resolver, ip, NULL, name_r, error);
}

typedef struct {
	ImtaResolver *resolver;
	char *ip;
	ImtaDnsNameCallback callback;
	gpointer user_data;
	ImtaDnsStatus status;  /* the result, filled in by the thread */
	char *name;
} PtrTask;

static void
ptr_task_free(gpointer data)
{
	PtrTask *task = data;

	imta_resolver_free(task->resolver);
	g_free(task->ip);
	g_free(task->name);
	g_free(task);
}

static void
ptr_task_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
	PtrTask *ptr = task_data;

	ptr->status = dns_lookup_ptr(ptr->resolver, ptr->ip, cancellable, &ptr->name, NULL);
	g_task_return_boolean(task, TRUE);
}

static void
ptr_task_done(GObject *source, GAsyncResult *result, gpointer unused)
{
	GTask *task = G_TASK(result);
	PtrTask *ptr = g_task_get_task_data(task);

	/* Cancelled from this thread: the caller no longer expects an answer. */
	if (g_cancellable_is_cancelled(g_task_get_cancellable(task)))
		return;
	ptr->callback(ptr->status, ptr->name, ptr->user_data);
}

void
imta_dns_lookup_ptr_async(ImtaResolver *resolver, const char *ip, GCancellable *cancellable,
			  ImtaDnsNameCallback callback, gpointer user_data)
{
	PtrTask *ptr = g_new0(PtrTask, 1);
	GTask *task = g_task_new(NULL, cancellable, ptr_task_done, NULL);

	ptr->resolver = dns_resolver_ref(resolver);
	ptr->ip = g_strdup(ip);
	ptr->callback = callback;
	ptr->user_data = user_data;
	g_task_set_source_tag(task, imta_dns_lookup_ptr_async);
	g_task_set_check_cancellable(task, FALSE);
	g_task_set_task_data(task, ptr, ptr_task_free);
	g_task_run_in_thread(task, ptr_task_thread);
	g_object_unref(task);
}
