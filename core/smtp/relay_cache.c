/*
 * relay_cache.c - sessions of the SMTP and LMTP clients left idle after a
 * transaction, kept by hop for the next message there: the most recently
 * used first, a bounded number, each for a bounded time, with a thread
 * that QUITs the expired ones while the job waits for work.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/imta.h>
#include <imta/smtp_client.h>
#include <imta/smtp_relay.h>

typedef struct {
	char *key;
	ImtaSmtpClient *client;
	gint64 since;         /* monotonic, when it became idle */
} CacheEntry;

struct _ImtaSmtpCache {
	char *channel;
	GMutex lock;
	GCond wake;
	GQueue idle;          /* CacheEntry *, oldest first */
	GHashTable *tls_failed; /* keys of hops whose handshake failed */
	guint max_idle;
	gint64 idle_us;
	guint reuses;
	gboolean stopping;
	GThread *janitor;
};

static void
cache_entry_close(CacheEntry *entry, const char *channel)
{
	imta_smtp_relay_close(entry->client, channel);
	g_free(entry->key);
	g_free(entry);
}

/* Entries idle too long, taken out of the cache (lock held). */
static GSList *
cache_collect_expired(ImtaSmtpCache *cache, gint64 now)
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
	ImtaSmtpCache *cache = data;

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

ImtaSmtpCache *
imta_smtp_cache_new(const char *channel, guint max_idle, guint idle_ms)
{
	ImtaSmtpCache *cache = g_new0(ImtaSmtpCache, 1);

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
imta_smtp_cache_take(ImtaSmtpCache *cache, const char *key)
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
imta_smtp_cache_give(ImtaSmtpCache *cache, const char *key, ImtaSmtpClient *c)
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
imta_smtp_cache_tls_failed(ImtaSmtpCache *cache, const char *key)
{
	gboolean failed;

	g_mutex_lock(&cache->lock);
	failed = g_hash_table_contains(cache->tls_failed, key);
	g_mutex_unlock(&cache->lock);
	return failed;
}

void
imta_smtp_cache_note_tls_failed(ImtaSmtpCache *cache, const char *key)
{
	g_mutex_lock(&cache->lock);
	g_hash_table_add(cache->tls_failed, g_strdup(key));
	g_mutex_unlock(&cache->lock);
}

guint
imta_smtp_cache_reuses(ImtaSmtpCache *cache)
{
	guint n;

	g_mutex_lock(&cache->lock);
	n = cache->reuses;
	g_mutex_unlock(&cache->lock);
	return n;
}

void
imta_smtp_cache_free(ImtaSmtpCache *cache)
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

