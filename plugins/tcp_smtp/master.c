/*
 * master.c - the master program of SMTP channels: the client threads of
 * smtp_relay.h take messages from the job; each message's recipients are
 * grouped by destination domain, each domain is routed (MX records, a
 * smart host, a literal) and its recipients relayed over the route's
 * hops, sessions shared through the relay's cache so that the next
 * message to the same hop needs no new connection.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/imta.h>
#include <imta/dns.h>
#include <imta/smtp_relay.h>

#include "master.h"
#include "options.h"

typedef struct {
	const char *channel;
	guint rcpt_cap;
	ImtaSmtpRelayConfig relay;
	ImtaSmtpRouteDns dns;
	ImtaSmtpRoutePolicy policy;
} MasterState;

static char *
master_domain_of(const ImtaMessage *msg, guint index, gpointer data)
{
	return imta_smtp_route_domain(imta_message_recipient(msg, index)->address);
}

GPtrArray *
tcp_smtp_master_group(const ImtaMessage *msg, guint cap)
{
	return imta_smtp_relay_group(msg, cap, master_domain_of, NULL);
}

static void
master_report_all(ImtaMasterJob *job, ImtaMessage *msg, const GArray *rcpts,
		  ImtaOutcome outcome, const char *diagnostic)
{
	for (guint k = 0; k < rcpts->len; k++)
		imta_master_job_report(job, msg, g_array_index(rcpts, guint, k), outcome,
				       diagnostic);
}

static void
master_deliver_group(MasterState *state, ImtaMasterJob *job, ImtaSmtpRelayMessage *message,
		     const ImtaSmtpGroup *group, GHashTable *routes)
{
	const guint *rcpts = (const guint *)(gpointer)group->rcpts->data;
	guint n = group->rcpts->len;
	ImtaSmtpRcptResult *results;
	ImtaSmtpRoute *route;

	if (group->key == NULL) {
		master_report_all(job, message->msg, group->rcpts, IMTA_OUTCOME_FAILED,
				  "5.1.3 the address has no domain to route to");
		return;
	}
	route = g_hash_table_lookup(routes, group->key);
	if (route == NULL) {
		route = imta_smtp_route_resolve(&state->dns, &state->policy, group->key);
		g_hash_table_insert(routes, g_strdup(group->key), route);
		if (route->outcome != IMTA_OUTCOME_NONE)
			imta_log(IMTA_LOG_INFO, "%s: message %s, domain %s: %s", state->channel,
				 imta_message_id(message->msg), group->key, route->diagnostic);
	}
	results = g_new0(ImtaSmtpRcptResult, n);
	imta_smtp_relay_deliver(&state->relay, message, rcpts, n, route, results);
	imta_smtp_relay_report(job, message->msg, rcpts, n, results);
	g_free(results);
}

static void
master_deliver(ImtaMasterJob *job, ImtaSmtpRelayMessage *message, gpointer data)
{
	MasterState *state = data;
	g_autoptr(GPtrArray) groups = tcp_smtp_master_group(message->msg, state->rcpt_cap);
	g_autoptr(GHashTable) routes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
							     (GDestroyNotify)imta_smtp_route_free);

	for (guint g = 0; g < groups->len; g++)
		master_deliver_group(state, job, message, groups->pdata[g], routes);
}

/* This system's names, for the MX loop check: the l channel's host names
 * and the tailor file's host name. */
static GStrv
master_local_names(const ImtaConfig *config)
{
	g_autoptr(GStrvBuilder) names = g_strv_builder_new();
	const ImtaChannel *local = config->cnf != NULL ? imta_cnf_local_channel(config->cnf) : NULL;

	for (guint i = 0; local != NULL && i < local->hosts->len; i++) {
		const ImtaChannelHost *host = local->hosts->pdata[i];

		g_strv_builder_add(names, host->name);
	}
	if (config->tailor != NULL && config->tailor->hostname != NULL)
		g_strv_builder_add(names, config->tailor->hostname);
	return g_strv_builder_end(names);
}

ImtaEntryStatus
tcp_smtp_master(ImtaMasterJob *job)
{
	const ImtaConfig *config = imta_master_job_config(job);
	const ImtaChannel *channel = imta_master_job_channel(job);
	g_autoptr(ImtaResolver) resolver = NULL;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) local_names = NULL;
	g_autofree char *ca_file = NULL;
	const TcpSmtpOptions *options;
	MasterState state = { 0 };
	gboolean failed = FALSE;
	guint n_threads, messages;

	if (config == NULL || channel == NULL) {
		imta_log(IMTA_LOG_ERROR, "tcp_smtp: a master job needs a configuration and a channel");
		return IMTA_ENTRY_SOFTWARE;
	}
	options = tcp_smtp_options_get(config, channel, &error);
	if (options == NULL) {
		imta_log(IMTA_LOG_ERROR, "%s: %s", channel->name, error->message);
		return IMTA_ENTRY_TEMPFAIL;
	}
	resolver = imta_smtp_relay_resolver(config, channel);
	if (resolver == NULL)
		return IMTA_ENTRY_TEMPFAIL;
	local_names = master_local_names(config);
	ca_file = imta_smtp_relay_ca_file(config, options->tls_ca_file);
	n_threads = (guint)CLAMP(options->max_client_threads, 1, 1000);

	state.channel = channel->name;
	state.rcpt_cap = options->recipients_per_transaction_given
				 ? (guint)CLAMP(options->recipients_per_transaction, 1, G_MAXINT32)
				 : TCP_SMTP_RECIPIENTS_PER_TRANSACTION;
	state.dns = (ImtaSmtpRouteDns){ imta_smtp_route_dns_mx, imta_smtp_route_dns_addresses,
					resolver };
	state.policy = (ImtaSmtpRoutePolicy){
		.mx = channel->mx, .daemon = channel->daemon,
		.official_host = imta_channel_official_host(channel),
		.local_names = (const char *const *)local_names,
	};
	imta_smtp_relay_config_init(&state.relay, config, channel, options->tls_client_verify,
				    ca_file);
	state.relay.port = channel->port > 0 && channel->port <= 65535 ? (guint16)channel->port
									: 25;
	state.relay.max_transactions = TCP_SMTP_SESSION_MAX_TRANSACTIONS;
	state.relay.cache = imta_smtp_cache_new(channel->name, 2 * n_threads,
						TCP_SMTP_SESSION_IDLE_MS);
	imta_log(IMTA_LOG_INFO, "%s: SMTP client with %u thread%s, port %u, TLS %s", channel->name,
		 n_threads, n_threads == 1 ? "" : "s", state.relay.port,
		 imta_smtp_relay_tls_text(channel->tls_client));
	messages = imta_smtp_relay_run(job, channel->name, n_threads, master_deliver, &state,
				       &failed);
	imta_smtp_relay_log_done(&state.relay, messages);
	imta_smtp_cache_free(state.relay.cache);
	return failed ? IMTA_ENTRY_TEMPFAIL : IMTA_ENTRY_OK;
}
