/*
 * directory_cache.c - the in-process cache of directory answers.
 *
 * Keys are the lookup kind followed by the normalised key, so an address
 * and a DN that happen to be spelt alike never collide.  Found answers live
 * for the positive TTL, NOT_FOUND for the negative TTL, temporary failures
 * are never stored.  The cache holds at most `size` answers and drops the
 * least recently used one to make room.  One mutex guards it all: every
 * operation is a hash lookup and a list splice.
 */
#include "config.h"

#include <glib.h>

#include <imta/directory.h>

#include "directory_private.h"

typedef struct {
	char *key;          /* kind character + normalised key */
	ImtaDirStatus status;
	gpointer value;     /* ImtaDirEntry or ImtaDirDomain, by key[0]; NULL if NOT_FOUND */
	gint64 expires;     /* microseconds on the directory's clock */
	GList *link;        /* in ImtaDirCache.lru; data points back here */
} CacheItem;

struct _ImtaDirCache {
	GMutex lock;
	guint size;
	gint64 ttl, negative_ttl;   /* microseconds */
	GHashTable *items;          /* key -> CacheItem (owned) */
	GQueue lru;                 /* head = least recently used */
	guint64 hits, misses;
};

static gpointer
cache_value_ref(char kind, gpointer value)
{
	if (value == NULL)
		return NULL;
	if (kind == IMTA_DIR_CACHE_DOMAIN)
		return imta_dir_domain_ref(value);
	return imta_dir_entry_ref(value);
}

static void
cache_value_unref(char kind, gpointer value)
{
	if (value == NULL)
		return;
	if (kind == IMTA_DIR_CACHE_DOMAIN)
		imta_dir_domain_unref(value);
	else
		imta_dir_entry_unref(value);
}

static void
cache_item_free(CacheItem *item)
{
	cache_value_unref(item->key[0], item->value);
	g_free(item->key);
	g_free(item);
}

ImtaDirCache *
imta_dir_cache_new(guint size, guint ttl, guint negative_ttl)
{
	ImtaDirCache *cache = g_new0(ImtaDirCache, 1);

	g_mutex_init(&cache->lock);
	cache->size = size;
	cache->ttl = (gint64)ttl * G_USEC_PER_SEC;
	cache->negative_ttl = (gint64)negative_ttl * G_USEC_PER_SEC;
	cache->items = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
					     (GDestroyNotify)cache_item_free);
	g_queue_init(&cache->lru);
	return cache;
}

static char *
cache_key(ImtaDirCacheKind kind, const char *key)
{
	return g_strdup_printf("%c%s", (char)kind, key);
}

/* Caller holds the lock. */
static void
cache_remove(ImtaDirCache *cache, CacheItem *item)
{
	g_queue_delete_link(&cache->lru, item->link);
	g_hash_table_remove(cache->items, item->key);
}

gboolean
imta_dir_cache_get(ImtaDirCache *cache, ImtaDirCacheKind kind, const char *key,
		   gint64 now, ImtaDirStatus *status_r, gpointer *value_r)
{
	g_autofree char *full = NULL;
	CacheItem *item;
	gboolean hit = FALSE;

	if (cache->size == 0)
		return FALSE;
	full = cache_key(kind, key);
	g_mutex_lock(&cache->lock);
	item = g_hash_table_lookup(cache->items, full);
	if (item != NULL && now >= item->expires) {
		cache_remove(cache, item);
		item = NULL;
	}
	if (item != NULL) {
		/* Most recently used moves to the tail. */
		g_queue_unlink(&cache->lru, item->link);
		g_queue_push_tail_link(&cache->lru, item->link);
		*status_r = item->status;
		*value_r = cache_value_ref((char)kind, item->value);
		cache->hits++;
		hit = TRUE;
	} else {
		cache->misses++;
	}
	g_mutex_unlock(&cache->lock);
	return hit;
}

void
imta_dir_cache_put(ImtaDirCache *cache, ImtaDirCacheKind kind, const char *key,
		   gint64 now, ImtaDirStatus status, gpointer value)
{
	CacheItem *item, *old;
	gint64 ttl;

	if (cache->size == 0 || status == IMTA_DIR_TEMPFAIL)
		return;
	ttl = status == IMTA_DIR_FOUND ? cache->ttl : cache->negative_ttl;
	if (ttl == 0)
		return;
	item = g_new0(CacheItem, 1);
	item->key = cache_key(kind, key);
	item->status = status;
	item->value = status == IMTA_DIR_FOUND ? cache_value_ref((char)kind, value) : NULL;
	item->expires = now + ttl;
	g_mutex_lock(&cache->lock);
	old = g_hash_table_lookup(cache->items, item->key);
	if (old != NULL)
		cache_remove(cache, old);
	while (g_hash_table_size(cache->items) >= cache->size) {
		CacheItem *oldest = g_queue_peek_head(&cache->lru);

		cache_remove(cache, oldest);
	}
	g_queue_push_tail(&cache->lru, item);
	item->link = g_queue_peek_tail_link(&cache->lru);
	g_hash_table_insert(cache->items, item->key, item);
	g_mutex_unlock(&cache->lock);
}

void
imta_dir_cache_flush(ImtaDirCache *cache)
{
	g_mutex_lock(&cache->lock);
	g_queue_clear(&cache->lru);
	g_hash_table_remove_all(cache->items);
	g_mutex_unlock(&cache->lock);
}

void
imta_dir_cache_stats(ImtaDirCache *cache, ImtaDirectoryStats *stats_r)
{
	g_mutex_lock(&cache->lock);
	stats_r->hits = cache->hits;
	stats_r->misses = cache->misses;
	stats_r->entries = g_hash_table_size(cache->items);
	g_mutex_unlock(&cache->lock);
}

void
imta_dir_cache_free(ImtaDirCache *cache)
{
	if (cache == NULL)
		return;
	g_queue_clear(&cache->lru);
	g_hash_table_unref(cache->items);
	g_mutex_clear(&cache->lock);
	g_free(cache);
}
