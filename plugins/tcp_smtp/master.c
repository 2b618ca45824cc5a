/*
 * master.c - the master program of SMTP channels: MAX_CLIENT_THREADS
 * threads take messages from the job, group each message's recipients by
 * destination domain, route and relay each group, report the outcomes
 * and finish the message; idle sessions are shared through a cache so
 * that the next message to the same hop needs no new connection.
 *
 * The job's next() and finish() share one connection to whatever feeds
 * the job, so they run under one lock, finishing threads first.  A
 * waiting next() (the job controller holds it until a message is due)
 * would hold back every finish(), so while messages are in flight the
 * threads ask with try_next(), which answers at once: one thread at a
 * time polls, again whenever a delivery ends and every MASTER_POLL_US
 * meanwhile; only with nothing in flight does a thread wait in next().
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/imta.h>
#include <imta/dns.h>
#include <imta/mime.h>
#include <imta/option_dat.h>
#include <imta/smtp_client.h>

#include "master.h"
#include "options.h"
#include "relay.h"
#include "route.h"

/* While messages are in flight, how often an idle thread asks for new
 * work that arrived meanwhile. */
#define MASTER_POLL_US (50 * G_TIME_SPAN_MILLISECOND)
/* The largest message read into memory. */
#define MASTER_MAX_CONTENT ((goffset)G_MAXINT32)

/* ---- idle sessions --------------------------------------------------- */

typedef struct {
	char *key;
	ImtaSmtpClient *client;
	gint64 since;         /* monotonic, when it became idle */
} CacheEntry;

struct _TcpSmtpCache {
	char *channel;
	GMutex lock;
	GCond wake;
	GQueue idle;          /* CacheEntry *, oldest first */
	GHashTable *tls_failed; /* addresses */
	guint max_idle;
	gint64 idle_us;
	guint reuses;
	gboolean stopping;
	GThread *janitor;
};

static void
cache_entry_close(CacheEntry *entry, const char *channel)
{
	tcp_smtp_relay_close(entry->client, channel);
	g_free(entry->key);
	g_free(entry);
}

/* Entries idle too long, taken out of the cache (lock held). */
static GSList *
cache_collect_expired(TcpSmtpCache *cache, gint64 now)
{
	GSList *expired = NULL;

	while (cache->idle.length > 0) {
		CacheEntry *entry = g_queue_peek_head(&cache->idle);

		if (now - entry->since < cache->idle_us)
			break;
		expired = g_slist_prepend(expired, g_queue_pop_head(&cache->idle));
	}
	return expired;
}

static void
cache_close_list(GSList *entries, const char *channel)
{
	for (GSList *l = entries; l != NULL; l = l->next)
		cache_entry_close(l->data, channel);
	g_slist_free(entries);
}

/* QUITs sessions that stayed idle too long, also while every client
 * thread waits for work. */
static gpointer
cache_janitor(gpointer data)
{
	TcpSmtpCache *cache = data;

	g_mutex_lock(&cache->lock);
	while (!cache->stopping) {
		GSList *expired;

		g_cond_wait_until(&cache->wake, &cache->lock,
				  g_get_monotonic_time() + G_TIME_SPAN_SECOND / 2);
		expired = cache_collect_expired(cache, g_get_monotonic_time());
		if (expired == NULL)
			continue;
		g_mutex_unlock(&cache->lock);
		cache_close_list(expired, cache->channel);
		g_mutex_lock(&cache->lock);
	}
	g_mutex_unlock(&cache->lock);
	return NULL;
}

TcpSmtpCache *
tcp_smtp_cache_new(const char *channel, guint max_idle, guint idle_ms)
{
	TcpSmtpCache *cache = g_new0(TcpSmtpCache, 1);

	cache->channel = g_strdup(channel);
	g_mutex_init(&cache->lock);
	g_cond_init(&cache->wake);
	g_queue_init(&cache->idle);
	cache->tls_failed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	cache->max_idle = MAX(max_idle, 1);
	cache->idle_us = (gint64)idle_ms * G_TIME_SPAN_MILLISECOND;
	cache->janitor = g_thread_new("smtp-cache", cache_janitor, cache);
	return cache;
}

ImtaSmtpClient *
tcp_smtp_cache_take(TcpSmtpCache *cache, const char *key)
{
	ImtaSmtpClient *found = NULL;
	GSList *expired;

	g_mutex_lock(&cache->lock);
	expired = cache_collect_expired(cache, g_get_monotonic_time());
	/* The most recently used first: the likeliest to be still open. */
	for (GList *l = cache->idle.tail, *prev; l != NULL; l = prev) {
		CacheEntry *entry = l->data;

		prev = l->prev;
		if (strcmp(entry->key, key) != 0)
			continue;
		g_queue_delete_link(&cache->idle, l);
		/* A session the server closed meanwhile is dropped, not tried. */
		if (!imta_smtp_client_check_idle(entry->client)) {
			expired = g_slist_prepend(expired, entry);
			continue;
		}
		found = entry->client;
		g_free(entry->key);
		g_free(entry);
		cache->reuses++;
		break;
	}
	g_mutex_unlock(&cache->lock);
	cache_close_list(expired, cache->channel);
	return found;
}

void
tcp_smtp_cache_give(TcpSmtpCache *cache, const char *key, ImtaSmtpClient *c)
{
	CacheEntry *entry = g_new0(CacheEntry, 1);
	CacheEntry *evicted = NULL;

	entry->key = g_strdup(key);
	entry->client = c;
	entry->since = g_get_monotonic_time();
	g_mutex_lock(&cache->lock);
	g_queue_push_tail(&cache->idle, entry);
	if (cache->idle.length > cache->max_idle)
		evicted = g_queue_pop_head(&cache->idle);
	g_mutex_unlock(&cache->lock);
	if (evicted != NULL)
		cache_entry_close(evicted, cache->channel);
}

gboolean
tcp_smtp_cache_tls_failed(TcpSmtpCache *cache, const char *address)
{
	gboolean failed;

	g_mutex_lock(&cache->lock);
	failed = g_hash_table_contains(cache->tls_failed, address);
	g_mutex_unlock(&cache->lock);
	return failed;
}

void
tcp_smtp_cache_note_tls_failed(TcpSmtpCache *cache, const char *address)
{
	g_mutex_lock(&cache->lock);
	g_hash_table_add(cache->tls_failed, g_strdup(address));
	g_mutex_unlock(&cache->lock);
}

guint
tcp_smtp_cache_reuses(TcpSmtpCache *cache)
{
	guint n;

	g_mutex_lock(&cache->lock);
	n = cache->reuses;
	g_mutex_unlock(&cache->lock);
	return n;
}

void
tcp_smtp_cache_free(TcpSmtpCache *cache)
{
	CacheEntry *entry;

	if (cache == NULL)
		return;
	g_mutex_lock(&cache->lock);
	cache->stopping = TRUE;
	g_cond_broadcast(&cache->wake);
	g_mutex_unlock(&cache->lock);
	g_thread_join(cache->janitor);
	while ((entry = g_queue_pop_head(&cache->idle)) != NULL)
		cache_entry_close(entry, cache->channel);
	g_hash_table_unref(cache->tls_failed);
	g_mutex_clear(&cache->lock);
	g_cond_clear(&cache->wake);
	g_free(cache->channel);
	g_free(cache);
}

/* ---- grouping -------------------------------------------------------- */

static void
group_free(gpointer data)
{
	TcpSmtpGroup *group = data;

	g_free(group->domain);
	g_array_unref(group->rcpts);
	g_free(group);
}

static TcpSmtpGroup *
group_new(GPtrArray *groups, const char *domain)
{
	TcpSmtpGroup *group = g_new0(TcpSmtpGroup, 1);

	group->domain = g_strdup(domain);
	group->rcpts = g_array_new(FALSE, FALSE, sizeof(guint));
	g_ptr_array_add(groups, group);
	return group;
}

GPtrArray *
tcp_smtp_master_group(const ImtaMessage *msg, guint cap)
{
	GPtrArray *groups = g_ptr_array_new_with_free_func(group_free);
	/* domain ("" for none) -> the group being filled */
	g_autoptr(GHashTable) open = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	cap = MAX(cap, 1);
	for (guint i = 0; i < imta_message_recipient_count(msg); i++) {
		g_autofree char *domain =
			tcp_smtp_route_domain(imta_message_recipient(msg, i)->address);
		const char *key = domain != NULL ? domain : "";
		TcpSmtpGroup *group = g_hash_table_lookup(open, key);

		if (group == NULL || group->rcpts->len >= cap) {
			group = group_new(groups, domain);
			g_hash_table_replace(open, g_strdup(key), group);
		}
		g_array_append_val(group->rcpts, i);
	}
	return groups;
}

/* ---- the job --------------------------------------------------------- */

typedef struct {
	ImtaMasterJob *job;
	const char *channel;
	GMutex lock;            /* the job's next() and finish() */
	GCond changed;
	gint finishing;         /* threads waiting to finish (atomic) */
	guint in_flight;
	gboolean polling;       /* a thread is asking for work */
	gboolean done;
	gboolean failed;
	guint messages;
	guint rcpt_cap;
	TcpSmtpRelayConfig relay;
	TcpSmtpDns dns;
	TcpSmtpRoutePolicy policy;
} MasterState;

/* Ask for one message, under the lock: without waiting while others are
 * in flight.  NULL with *idle_r when there is nothing now. */
static ImtaMessage *
master_ask(MasterState *state, gboolean *idle_r)
{
	g_autoptr(GError) error = NULL;
	ImtaMessage *msg;

	*idle_r = FALSE;
	if (state->in_flight > 0)
		msg = imta_master_job_try_next(state->job, idle_r, &error);
	else
		msg = imta_master_job_next(state->job, &error);
	if (msg != NULL) {
		state->in_flight++;
		return msg;
	}
	if (*idle_r)
		return NULL;
	state->done = TRUE;
	if (error != NULL) {
		imta_log(IMTA_LOG_ERROR, "%s: %s", state->channel, error->message);
		state->failed = TRUE;
	}
	return NULL;
}

static ImtaMessage *
master_take(MasterState *state)
{
	ImtaMessage *msg = NULL;

	g_mutex_lock(&state->lock);
	while (msg == NULL && !state->done) {
		gboolean idle;

		if (g_atomic_int_get(&state->finishing) > 0 || state->polling) {
			g_cond_wait(&state->changed, &state->lock);
			continue;
		}
		msg = master_ask(state, &idle);
		if (!idle)
			break;
		/* Nothing now: this thread keeps polling, the others sleep. */
		state->polling = TRUE;
		g_cond_wait_until(&state->changed, &state->lock,
				  g_get_monotonic_time() + MASTER_POLL_US);
		state->polling = FALSE;
	}
	/* Another thread may take the next message at once. */
	g_cond_broadcast(&state->changed);
	g_mutex_unlock(&state->lock);
	return msg;
}

static gboolean
master_finish(MasterState *state, ImtaMessage *msg)
{
	g_autoptr(GError) error = NULL;
	gboolean ok;

	g_atomic_int_inc(&state->finishing);
	g_mutex_lock(&state->lock);
	g_atomic_int_add(&state->finishing, -1);
	ok = imta_master_job_finish(state->job, msg, &error);
	state->in_flight--;
	state->messages++;
	if (!ok) {
		imta_log(IMTA_LOG_ERROR, "%s: %s", state->channel, error->message);
		state->failed = TRUE;
		state->done = TRUE;
	}
	g_cond_broadcast(&state->changed);
	g_mutex_unlock(&state->lock);
	return ok;
}

/* The whole content, read once (bounded by the channel's size limits). */
static GBytes *
master_read_content(const ImtaMessage *msg, GError **error)
{
	goffset size = imta_message_size(msg);
	g_autoptr(GInputStream) stream = NULL;
	g_autofree char *data = NULL;
	gsize got = 0;

	if (size < 0 || size > MASTER_MAX_CONTENT) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
			    "the message is too large to send (%" G_GINT64_FORMAT " bytes)",
			    (gint64)size);
		return NULL;
	}
	stream = imta_message_open_content(msg, error);
	if (stream == NULL)
		return NULL;
	data = g_malloc((gsize)size + 1);
	if (!g_input_stream_read_all(stream, data, (gsize)size, &got, NULL, error))
		return NULL;
	if (got != (gsize)size) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
			    "the content ends after %" G_GSIZE_FORMAT " of %" G_GINT64_FORMAT
			    " bytes", got, (gint64)size);
		return NULL;
	}
	return g_bytes_new_take(g_steal_pointer(&data), (gsize)size);
}

static void
master_report_all(MasterState *state, ImtaMessage *msg, const GArray *rcpts,
		  ImtaOutcome outcome, const char *diagnostic)
{
	for (guint k = 0; k < rcpts->len; k++)
		imta_master_job_report(state->job, msg, g_array_index(rcpts, guint, k), outcome,
				       diagnostic);
}

static void
master_deliver_group(MasterState *state, TcpSmtpRelayMessage *message,
		     const TcpSmtpGroup *group, GHashTable *routes)
{
	const guint *rcpts = (const guint *)(gpointer)group->rcpts->data;
	guint n = group->rcpts->len;
	TcpSmtpRcptResult *results;
	TcpSmtpRoute *route;

	if (group->domain == NULL) {
		master_report_all(state, message->msg, group->rcpts, IMTA_OUTCOME_FAILED,
				  "5.1.3 the address has no domain to route to");
		return;
	}
	route = g_hash_table_lookup(routes, group->domain);
	if (route == NULL) {
		route = tcp_smtp_route_resolve(&state->dns, &state->policy, group->domain);
		g_hash_table_insert(routes, g_strdup(group->domain), route);
		if (route->outcome != IMTA_OUTCOME_NONE)
			imta_log(IMTA_LOG_INFO, "%s: message %s, domain %s: %s", state->channel,
				 imta_message_id(message->msg), group->domain, route->diagnostic);
	}
	results = g_new0(TcpSmtpRcptResult, n);
	tcp_smtp_relay_deliver(&state->relay, message, rcpts, n, route, results);
	for (guint k = 0; k < n; k++) {
		if (results[k].relayed)
			imta_master_job_report_relayed(state->job, message->msg, rcpts[k],
						       results[k].diagnostic);
		else
			imta_master_job_report(state->job, message->msg, rcpts[k],
					       results[k].outcome, results[k].diagnostic);
		g_free(results[k].diagnostic);
	}
	g_free(results);
}

static void
master_deliver(MasterState *state, ImtaMessage *msg)
{
	g_autoptr(GPtrArray) groups = tcp_smtp_master_group(msg, state->rcpt_cap);
	g_autoptr(GHashTable) routes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
							     (GDestroyNotify)tcp_smtp_route_free);
	g_autoptr(GError) error = NULL;
	TcpSmtpRelayMessage message = { msg, NULL, FALSE, NULL };
	gsize len;
	const char *data;

	message.content = master_read_content(msg, &error);
	if (message.content == NULL) {
		g_autofree char *why = g_strdup_printf("4.3.0 cannot read the message: %s",
						       error->message);

		imta_log(IMTA_LOG_ERROR, "%s: message %s: %s", state->channel,
			 imta_message_id(msg), why);
		for (guint i = 0; i < imta_message_recipient_count(msg); i++)
			imta_master_job_report(state->job, msg, i, IMTA_OUTCOME_RETRY, why);
		return;
	}
	data = g_bytes_get_data(message.content, &len);
	message.eight_bit = len > 0 && imta_mime_is_8bit(data, len);
	for (guint g = 0; g < groups->len; g++)
		master_deliver_group(state, &message, groups->pdata[g], routes);
	g_bytes_unref(message.content);
	g_clear_pointer(&message.seven_bit, g_bytes_unref);
}

static gpointer
master_thread(gpointer data)
{
	MasterState *state = data;
	ImtaMessage *msg;

	while ((msg = master_take(state)) != NULL) {
		master_deliver(state, msg);
		if (!master_finish(state, msg))
			break;
	}
	return NULL;
}

/* ---- setting up ------------------------------------------------------ */

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

static const char *
master_helo_name(const ImtaConfig *config)
{
	const ImtaChannel *local = config->cnf != NULL ? imta_cnf_local_channel(config->cnf) : NULL;
	const char *name = local != NULL ? imta_channel_official_host(local) : NULL;

	if (name != NULL)
		return name;
	if (config->tailor != NULL && config->tailor->hostname != NULL)
		return config->tailor->hostname;
	return g_get_host_name();
}

static ImtaSmtpTlsVerify
master_tls_verify(const ImtaChannel *channel, const TcpSmtpOptions *options)
{
	const char *value = options->tls_client_verify;

	if (value == NULL || value[0] == '\0')
		return channel->tls_client == IMTA_TLS_MUST ? IMTA_SMTP_TLS_VERIFY_NAME
							    : IMTA_SMTP_TLS_VERIFY_NONE;
	if (g_ascii_strcasecmp(value, "name") == 0)
		return IMTA_SMTP_TLS_VERIFY_NAME;
	if (g_ascii_strcasecmp(value, "chain") == 0)
		return IMTA_SMTP_TLS_VERIFY_CHAIN;
	return IMTA_SMTP_TLS_VERIFY_NONE;
}

static char *
master_ca_file(const ImtaConfig *config, const TcpSmtpOptions *options)
{
	const char *path = options->tls_ca_file;

	if (path == NULL || path[0] == '\0')
		return NULL;
	if (g_path_is_absolute(path) || config->dir == NULL)
		return g_strdup(path);
	return g_build_filename(config->dir, path, NULL);
}

static void
master_run_threads(MasterState *state, guint n_threads)
{
	g_autoptr(GPtrArray) threads = g_ptr_array_new();

	for (guint i = 0; i < n_threads; i++) {
		g_autoptr(GError) error = NULL;
		GThread *thread = g_thread_try_new("smtp-client", master_thread, state, &error);

		if (thread == NULL) {
			imta_log(IMTA_LOG_WARNING, "%s: cannot start client thread %u: %s",
				 state->channel, i + 1, error->message);
			break;
		}
		g_ptr_array_add(threads, thread);
	}
	/* Without any thread, this one does the work. */
	if (threads->len == 0)
		master_thread(state);
	for (guint i = 0; i < threads->len; i++)
		g_thread_join(threads->pdata[i]);
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
	guint n_threads;

	if (config == NULL || channel == NULL) {
		imta_log(IMTA_LOG_ERROR, "tcp_smtp: a master job needs a configuration and a channel");
		return IMTA_ENTRY_SOFTWARE;
	}
	options = tcp_smtp_options_get(config, channel, &error);
	if (options == NULL) {
		imta_log(IMTA_LOG_ERROR, "%s: %s", channel->name, error->message);
		return IMTA_ENTRY_TEMPFAIL;
	}
	resolver = imta_resolver_new_from_options(config->options, &error);
	if (resolver == NULL) {
		imta_log(IMTA_LOG_ERROR, "%s: %s", channel->name, error->message);
		return IMTA_ENTRY_TEMPFAIL;
	}
	local_names = master_local_names(config);
	ca_file = master_ca_file(config, options);
	n_threads = (guint)CLAMP(options->max_client_threads, 1, 1000);

	state.job = job;
	state.channel = channel->name;
	g_mutex_init(&state.lock);
	g_cond_init(&state.changed);
	state.rcpt_cap = options->recipients_per_transaction_given
				 ? (guint)CLAMP(options->recipients_per_transaction, 1, G_MAXINT32)
				 : TCP_SMTP_RECIPIENTS_PER_TRANSACTION;
	state.dns = (TcpSmtpDns){ tcp_smtp_route_dns_mx, tcp_smtp_route_dns_addresses, resolver };
	state.policy = (TcpSmtpRoutePolicy){
		.mx = channel->mx, .daemon = channel->daemon,
		.official_host = imta_channel_official_host(channel),
		.local_names = (const char *const *)local_names,
	};
	state.relay = (TcpSmtpRelayConfig){
		.channel = channel->name,
		.helo_name = master_helo_name(config),
		.port = channel->port > 0 && channel->port <= 65535 ? (guint16)channel->port : 25,
		.bind_address = channel->interface_address,
		.tls = channel->tls_client,
		.tls_options = { .verify = master_tls_verify(channel, options), .ca_file = ca_file },
		.eightbit = channel->eightbit,
		.max_transactions = TCP_SMTP_SESSION_MAX_TRANSACTIONS,
		.cache = tcp_smtp_cache_new(channel->name, 2 * n_threads, TCP_SMTP_SESSION_IDLE_MS),
	};
	imta_log(IMTA_LOG_INFO, "%s: SMTP client with %u thread%s, port %u, TLS %s", channel->name,
		 n_threads, n_threads == 1 ? "" : "s", state.relay.port,
		 channel->tls_client == IMTA_TLS_MUST ? "required"
		 : channel->tls_client == IMTA_TLS_MAY ? "when offered" : "off");
	master_run_threads(&state, n_threads);
	imta_log(IMTA_LOG_INFO, "%s: SMTP client done: %u message%s, %u connection reuse%s",
		 channel->name, state.messages, state.messages == 1 ? "" : "s",
		 tcp_smtp_cache_reuses(state.relay.cache),
		 tcp_smtp_cache_reuses(state.relay.cache) == 1 ? "" : "s");
	tcp_smtp_cache_free(state.relay.cache);
	g_mutex_clear(&state.lock);
	g_cond_clear(&state.changed);
	return state.failed ? IMTA_ENTRY_TEMPFAIL : IMTA_ENTRY_OK;
}
