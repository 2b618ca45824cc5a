/*
 * master.c - the master program of LMTP channels: the client threads of
 * smtp_relay.h take messages from the job; each message's recipients are
 * grouped by the LMTP server that holds their mailboxes and handed to it
 * in one transaction, with one reply per recipient after the content
 * (RFC 2033 section 4.2); sessions are kept for the next message to the
 * same server.
 *
 * Where a recipient goes:
 *   - a source route names its message store: "@store.example.net.lmtp:
 *     joe%example.org@lmtp-daemon", as the directory's DELIVERY_OPTIONS
 *     template "@$X.LMTP:$M%$\$2I$_+$2S@lmtp-daemon" writes it from the
 *     user's mailHost ($X).  The route's first host, without a final
 *     ".lmtp" label, is the server (its addresses, on the channel's
 *     `port`, 24 by default), and the route is removed from the address
 *     the server gets in RCPT TO;
 *   - any other address goes to the channel's server: LMTP_SERVER of the
 *     channel option file (host, host:port or a UNIX-domain socket), else
 *     the channel's `daemon` host;
 *   - with neither, the recipient waits (4.3.5) for the configuration to
 *     be fixed.
 * A server that cannot be reached, or whose name does not resolve, defers
 * its recipients: mail for a store that is down waits in the queue.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/imta.h>
#include <imta/dns.h>
#include <imta/smtp_relay.h>

#include "master.h"
#include "options.h"

/* RFC 2033 section 5: LMTP has no port of its own; IANA lists 24. */
#define LMTP_DEFAULT_PORT 24
#define LMTP_SESSION_MAX_TRANSACTIONS 1000
#define LMTP_ROUTE_SUFFIX ".lmtp"
/* The group key of recipients that go to the channel's own server. */
#define LMTP_KEY_CHANNEL "="

typedef struct {
	const char *channel;
	guint rcpt_cap;
	guint16 port;                /* for servers named without a port */
	char *server_host;           /* the channel's server: a name or literal */
	guint16 server_port;
	char *server_socket;         /* ...or a UNIX-domain socket */
	ImtaSmtpRelayConfig relay;
	ImtaSmtpRouteDns dns;
} LmtpMaster;

/* ---- addresses ------------------------------------------------------- */

/* The server an address names in its source route ("@a.lmtp,@b:mbox" ->
 * "a"), lower-cased, or NULL; *mailbox_r (may be NULL) points after the
 * route. */
char *
lmtp_master_route_host(const char *address, const char **mailbox_r)
{
	const char *colon, *end;
	gsize len;

	if (mailbox_r != NULL)
		*mailbox_r = address;
	if (address == NULL || address[0] != '@' || (colon = strchr(address, ':')) == NULL)
		return NULL;
	if (mailbox_r != NULL)
		*mailbox_r = colon + 1;
	end = memchr(address, ',', colon - address);
	if (end == NULL)
		end = colon;
	len = end - (address + 1);
	if (len > 0 && address[len] == '.')    /* "host.:" */
		len--;
	if (len >= strlen(LMTP_ROUTE_SUFFIX) &&
	    g_ascii_strncasecmp(address + 1 + len - strlen(LMTP_ROUTE_SUFFIX), LMTP_ROUTE_SUFFIX,
				strlen(LMTP_ROUTE_SUFFIX)) == 0)
		len -= strlen(LMTP_ROUTE_SUFFIX);
	if (len == 0)
		return NULL;
	return g_ascii_strdown(address + 1, (gssize)len);
}

static char *
lmtp_master_key_of(const ImtaMessage *msg, guint index, gpointer data)
{
	g_autofree char *host =
		lmtp_master_route_host(imta_message_recipient(msg, index)->address, NULL);

	if (host != NULL)
		return g_strconcat("@", host, NULL);
	return g_strdup(LMTP_KEY_CHANNEL);
}

/* The message as the servers see it: every recipient without its source
 * route, in the same order, so results map back index for index. */
static ImtaMessage *
lmtp_master_unrouted(const ImtaMessage *msg, GBytes *content)
{
	ImtaMessage *copy = imta_message_new(imta_message_id(msg), imta_message_return_path(msg));

	if (imta_message_envid(msg) != NULL)
		imta_message_set_envid(copy, imta_message_envid(msg));
	imta_message_set_ret(copy, imta_message_ret(msg));
	for (guint i = 0; i < imta_message_recipient_count(msg); i++) {
		const ImtaRecipient *r = imta_message_recipient(msg, i);
		const char *mailbox;

		g_free(lmtp_master_route_host(r->address, &mailbox));
		imta_message_add_recipient(copy, mailbox, r->orcpt, r->notify);
	}
	imta_message_set_content_bytes(copy, content);
	return copy;
}

/* ---- routes ---------------------------------------------------------- */

static ImtaSmtpRoute *
lmtp_master_route(LmtpMaster *lm, const char *key)
{
	ImtaSmtpRoute *route;

	if (key[0] == '@')
		return imta_smtp_route_host(&lm->dns, key + 1, lm->port, "LMTP server");
	if (lm->server_socket != NULL) {
		route = imta_smtp_route_new();
		imta_smtp_route_add_hop(route, NULL, NULL, 0, lm->server_socket);
		return route;
	}
	if (lm->server_host != NULL)
		return imta_smtp_route_host(&lm->dns, lm->server_host,
					    lm->server_port != 0 ? lm->server_port : lm->port,
					    "LMTP server");
	route = imta_smtp_route_new();
	imta_smtp_route_fail(route, IMTA_OUTCOME_RETRY,
			     g_strdup_printf("4.3.5 no LMTP server for this address: it names no "
					     "message store (@host:) and channel %s sets neither "
					     "LMTP_SERVER nor daemon", lm->channel));
	return route;
}

static void
lmtp_master_deliver(ImtaMasterJob *job, ImtaSmtpRelayMessage *message, gpointer data)
{
	LmtpMaster *lm = data;
	g_autoptr(GPtrArray) groups = imta_smtp_relay_group(message->msg, lm->rcpt_cap,
							    lmtp_master_key_of, lm);
	g_autoptr(ImtaMessage) unrouted = lmtp_master_unrouted(message->msg, message->content);
	ImtaSmtpRelayMessage sent = *message;

	sent.msg = unrouted;
	for (guint g = 0; g < groups->len; g++) {
		const ImtaSmtpGroup *group = groups->pdata[g];
		const guint *rcpts = (const guint *)(gpointer)group->rcpts->data;
		guint n = group->rcpts->len;
		g_autoptr(ImtaSmtpRoute) route = lmtp_master_route(lm, group->key);
		g_autofree ImtaSmtpRcptResult *results = g_new0(ImtaSmtpRcptResult, n);

		if (route->outcome != IMTA_OUTCOME_NONE)
			imta_log(IMTA_LOG_INFO, "%s: message %s: %s", lm->channel,
				 imta_message_id(message->msg), route->diagnostic);
		imta_smtp_relay_deliver(&lm->relay, &sent, rcpts, n, route, results);
		imta_smtp_relay_report(job, message->msg, rcpts, n, results);
	}
	/* A 7-bit form made on the way belongs to the caller's message. */
	message->seven_bit = sent.seven_bit;
}

/* ---- the job --------------------------------------------------------- */

static gboolean
lmtp_master_setup(LmtpMaster *lm, const ImtaChannel *channel, const LmtpOptions *options)
{
	lm->channel = channel->name;
	lm->rcpt_cap = (guint)CLAMP(options->recipients_per_transaction, 1, G_MAXINT32);
	lm->port = channel->port > 0 && channel->port <= 65535 ? (guint16)channel->port
							       : LMTP_DEFAULT_PORT;
	if (options->server != NULL)
		return lmtp_options_parse_server(options->server, &lm->server_host,
						 &lm->server_port, &lm->server_socket);
	lm->server_host = g_strdup(channel->daemon);
	return TRUE;
}

static void
lmtp_master_clear(LmtpMaster *lm)
{
	g_free(lm->server_host);
	g_free(lm->server_socket);
	g_clear_pointer(&lm->relay.cache, imta_smtp_cache_free);
}

static char *
lmtp_master_describe(const LmtpMaster *lm)
{
	if (lm->server_socket != NULL)
		return g_strdup_printf("socket %s", lm->server_socket);
	if (lm->server_host != NULL)
		return g_strdup_printf("%s port %u", lm->server_host,
				       lm->server_port != 0 ? lm->server_port : lm->port);
	return g_strdup("none");
}

ImtaEntryStatus
lmtp_master(ImtaMasterJob *job)
{
	const ImtaConfig *config = imta_master_job_config(job);
	const ImtaChannel *channel = imta_master_job_channel(job);
	g_autoptr(ImtaResolver) resolver = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *ca_file = NULL;
	g_autofree char *server = NULL;
	const LmtpOptions *options;
	LmtpMaster lm = { 0 };
	gboolean failed = FALSE;
	guint n_threads, messages;

	if (config == NULL || channel == NULL) {
		imta_log(IMTA_LOG_ERROR, "lmtp: a master job needs a configuration and a channel");
		return IMTA_ENTRY_SOFTWARE;
	}
	options = lmtp_options_get(config, channel, &error);
	if (options == NULL) {
		imta_log(IMTA_LOG_ERROR, "%s: %s", channel->name, error->message);
		return IMTA_ENTRY_TEMPFAIL;
	}
	resolver = imta_smtp_relay_resolver(config, channel);
	if (resolver == NULL)
		return IMTA_ENTRY_TEMPFAIL;
	if (!lmtp_master_setup(&lm, channel, options)) {
		imta_log(IMTA_LOG_ERROR, "%s: LMTP_SERVER \"%s\" is not host, host:port or a "
			 "socket path", channel->name, options->server);
		lmtp_master_clear(&lm);
		return IMTA_ENTRY_TEMPFAIL;
	}
	ca_file = imta_smtp_relay_ca_file(config, options->tls_ca_file);
	n_threads = (guint)CLAMP(options->max_client_threads, 1, 1000);
	lm.dns = (ImtaSmtpRouteDns){ imta_smtp_route_dns_mx, imta_smtp_route_dns_addresses,
				     resolver };
	imta_smtp_relay_config_init(&lm.relay, config, channel, options->tls_client_verify,
				    ca_file);
	lm.relay.port = lm.port;
	lm.relay.timeouts = (ImtaSmtpClientTimeouts){
		.connect_ms = (guint)options->connect_timeout * 1000,
		.greeting_ms = (guint)options->reply_timeout * 1000,
		.command_ms = (guint)options->reply_timeout * 1000,
		.data_init_ms = (guint)options->reply_timeout * 1000,
		.data_block_ms = (guint)options->reply_timeout * 1000,
		.data_term_ms = (guint)options->delivery_timeout * 1000,
	};
	lm.relay.max_transactions = LMTP_SESSION_MAX_TRANSACTIONS;
	lm.relay.cache = imta_smtp_cache_new(channel->name, 2 * n_threads,
					     (guint)options->session_idle * 1000);
	lm.relay.lmtp = TRUE;
	server = lmtp_master_describe(&lm);
	imta_log(IMTA_LOG_INFO, "%s: LMTP client with %u thread%s, channel server %s, stores "
		 "on port %u, TLS %s", channel->name, n_threads, n_threads == 1 ? "" : "s",
		 server, lm.port, imta_smtp_relay_tls_text(channel->tls_client));
	messages = imta_smtp_relay_run(job, channel->name, n_threads, lmtp_master_deliver, &lm,
				       &failed);
	imta_smtp_relay_log_done(&lm.relay, messages);
	lmtp_master_clear(&lm);
	return failed ? IMTA_ENTRY_TEMPFAIL : IMTA_ENTRY_OK;
}
