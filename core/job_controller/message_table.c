/*
 * message_table.c - tracked messages, destination hosts and the order in
 * which a channel's jobs get them (see message_table.h).
 *
 * Memory layout.  Records live in one array of max_messages entries; the
 * bucket array holds 32-bit indices (bit 31 set for a host), chained
 * through each object's hash_next.  A record is in exactly one of: its
 * host's ready list (prev/next links), the delayed heap (prev = heap slot),
 * in progress (no links), or the free list (hash_next).  Hosts are few
 * compared with messages and grow on demand up to max_messages.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include "message_table.h"

#define MT_HOST_TAG 0x80000000u
#define MT_STATE_MASK 0x03u
#define MT_RETURNED 0x04u
#define MT_NO_RING 0xffu
#define MT_FREE_CHANNEL 0xffffu

typedef struct {
	char id[MT_ID_LENGTH];   /* not NUL-terminated */
	guint32 hash_next;       /* bucket chain, or free list */
	guint32 prev;            /* ready list, or heap slot while delayed */
	guint32 next;            /* ready list */
	guint32 host;
	guint32 when;            /* next attempt while delayed (Unix time) */
	guint16 channel;         /* MT_FREE_CHANNEL when unused */
	guint16 subdir;
	guint16 attempts;
	guint8 priority;
	guint8 flags;            /* MtState | MT_RETURNED */
} MtRecord;

G_STATIC_ASSERT(sizeof(MtRecord) == 44);

typedef struct {
	char *name;              /* lower case; NULL when the slot is free */
	guint32 hash_next;       /* bucket chain, or free list */
	guint32 ring_prev, ring_next;
	guint32 head[IMTA_PRIORITY_COUNT], tail[IMTA_PRIORITY_COUNT];
	guint32 refs;            /* tracked messages to this host */
	guint32 ready;
	guint32 in_progress;
	guint16 channel;
	guint8 level, prio;      /* ring the host is in; prio MT_NO_RING = none */
} MtHost;

typedef struct {
	guint32 ring[MT_LEVELS][IMTA_PRIORITY_COUNT];
	MtCounts counts;
} MtChannel;

struct _MessageTable {
	guint max;
	guint n_channels;
	guint32 mask;
	guint32 seed;
	guint32 *buckets;
	MtRecord *records;
	guint32 free_record;
	guint32 next_unused;     /* records past this were never used */
	guint32 *heap;
	guint heap_len;
	MtHost *hosts;
	guint hosts_alloc, hosts_used, n_hosts;
	guint32 free_host;
	gsize host_name_bytes;
	MtChannel *channels;
	guint tracked;
	MtCounts counts;
	gboolean overflow;
	GMutex lock;             /* bucket chains and the host array */
};

/* ---- sizes ----------------------------------------------------------- */

static guint32
mt_bucket_count(guint max)
{
	guint32 size = 1;

	while (size <= max)
		size <<= 1;
	return size;
}

double
message_table_bytes_per_message_for(guint max_messages)
{
	double buckets = (double)mt_bucket_count(max_messages) * sizeof(guint32);

	return sizeof(MtRecord) + sizeof(guint32) + buckets / max_messages;
}

double
message_table_bytes_per_message(const MessageTable *table)
{
	return message_table_bytes_per_message_for(table->max);
}

gsize
message_table_bytes(const MessageTable *table)
{
	return sizeof(*table) + (gsize)table->max * (sizeof(MtRecord) + sizeof(guint32)) +
	       ((gsize)table->mask + 1) * sizeof(guint32) +
	       (gsize)table->hosts_alloc * sizeof(MtHost) + table->host_name_bytes +
	       (gsize)table->n_channels * sizeof(MtChannel);
}

/* ---- construction ---------------------------------------------------- */

MessageTable *
message_table_new(guint max_messages, guint n_channels)
{
	MessageTable *table;

	g_return_val_if_fail(max_messages >= 1 && max_messages < MT_HOST_TAG / 2, NULL);
	g_return_val_if_fail(n_channels <= MT_MAX_CHANNELS, NULL);
	table = g_new0(MessageTable, 1);
	table->max = max_messages;
	table->n_channels = n_channels;
	table->mask = mt_bucket_count(max_messages) - 1;
	table->seed = g_random_int();
	table->buckets = g_new(guint32, (gsize)table->mask + 1);
	memset(table->buckets, 0xff, ((gsize)table->mask + 1) * sizeof(guint32));
	table->records = g_new(MtRecord, max_messages);
	table->free_record = MT_NONE;
	table->heap = g_new(guint32, max_messages);
	table->free_host = MT_NONE;
	table->channels = g_new(MtChannel, MAX(n_channels, 1));
	memset(table->channels, 0xff, sizeof(MtChannel) * MAX(n_channels, 1));
	for (guint i = 0; i < n_channels; i++)
		memset(&table->channels[i].counts, 0, sizeof(MtCounts));
	g_mutex_init(&table->lock);
	return table;
}

void
message_table_free(MessageTable *table)
{
	if (table == NULL)
		return;
	for (guint i = 0; i < table->hosts_used; i++)
		g_free(table->hosts[i].name);
	g_free(table->hosts);
	g_free(table->heap);
	g_free(table->records);
	g_free(table->buckets);
	g_free(table->channels);
	g_mutex_clear(&table->lock);
	g_free(table);
}

guint
message_table_max(const MessageTable *table)
{
	return table->max;
}

guint
message_table_hash_size(const MessageTable *table)
{
	return table->mask + 1;
}

guint
message_table_tracked(const MessageTable *table)
{
	return table->tracked;
}

void
message_table_counts(const MessageTable *table, MtCounts *counts_r)
{
	*counts_r = table->counts;
}

void
message_table_channel_counts(const MessageTable *table, guint channel, MtCounts *counts_r)
{
	g_return_if_fail(channel < table->n_channels);
	*counts_r = table->channels[channel].counts;
}

guint
message_table_host_count(const MessageTable *table)
{
	return table->n_hosts;
}

/* ---- hashing --------------------------------------------------------- */

static guint32
mt_mix(guint32 h)
{
	h ^= h >> 16;
	h *= 0x7feb352du;
	h ^= h >> 15;
	h *= 0x846ca68bu;
	h ^= h >> 16;
	return h;
}

/* FNV-1a with a per-process seed, so bucket placement cannot be predicted
 * from host names chosen by outsiders. */
static guint32
mt_hash_bytes(guint32 h, const char *bytes, gsize len)
{
	for (gsize i = 0; i < len; i++) {
		h ^= (guchar)bytes[i];
		h *= 16777619u;
	}
	return h;
}

static guint32
mt_hash_id(const MessageTable *table, const char *id)
{
	return mt_mix(mt_hash_bytes(table->seed ^ 2166136261u, id, MT_ID_LENGTH));
}

static guint32
mt_hash_host(const MessageTable *table, guint channel, const char *name)
{
	guint32 h = mt_hash_bytes(table->seed ^ 2166136261u ^ (channel * 0x9e3779b9u), name,
				  strlen(name));

	return mt_mix(h ^ 0x5bd1e995u);
}

static guint32 *
mt_chain_link(MessageTable *table, guint32 entry)
{
	if (entry & MT_HOST_TAG)
		return &table->hosts[entry & ~MT_HOST_TAG].hash_next;
	return &table->records[entry].hash_next;
}

static guint32
mt_chain_next(const MessageTable *table, guint32 entry)
{
	if (entry & MT_HOST_TAG)
		return table->hosts[entry & ~MT_HOST_TAG].hash_next;
	return table->records[entry].hash_next;
}

static void
mt_hash_insert(MessageTable *table, guint32 hash, guint32 entry)
{
	guint32 *bucket = &table->buckets[hash & table->mask];

	*mt_chain_link(table, entry) = *bucket;
	*bucket = entry;
}

static void
mt_hash_remove(MessageTable *table, guint32 hash, guint32 entry)
{
	guint32 *link = &table->buckets[hash & table->mask];

	while (*link != MT_NONE) {
		if (*link == entry) {
			*link = mt_chain_next(table, entry);
			return;
		}
		link = mt_chain_link(table, *link);
	}
	g_assert_not_reached();
}

static MtIndex
mt_lookup(const MessageTable *table, const char *id)
{
	guint32 entry = table->buckets[mt_hash_id(table, id) & table->mask];

	for (; entry != MT_NONE; entry = mt_chain_next(table, entry)) {
		if (entry & MT_HOST_TAG)
			continue;
		if (memcmp(table->records[entry].id, id, MT_ID_LENGTH) == 0)
			return entry;
	}
	return MT_NONE;
}

static gboolean
mt_valid_id(const char *id)
{
	return id != NULL && strnlen(id, MT_ID_LENGTH + 1) == MT_ID_LENGTH;
}

MtIndex
message_table_lookup(const MessageTable *table, const char *id)
{
	if (!mt_valid_id(id))
		return MT_NONE;
	return mt_lookup(table, id);
}

gboolean
message_table_contains(MessageTable *table, const char *id)
{
	gboolean found;

	if (!mt_valid_id(id))
		return FALSE;
	g_mutex_lock(&table->lock);
	found = mt_lookup(table, id) != MT_NONE;
	g_mutex_unlock(&table->lock);
	return found;
}

/* ---- hosts ----------------------------------------------------------- */

static guint32
mt_host_find(const MessageTable *table, guint channel, const char *name, guint32 hash)
{
	guint32 entry = table->buckets[hash & table->mask];

	for (; entry != MT_NONE; entry = mt_chain_next(table, entry)) {
		const MtHost *host;

		if (!(entry & MT_HOST_TAG))
			continue;
		host = &table->hosts[entry & ~MT_HOST_TAG];
		if (host->channel == channel && strcmp(host->name, name) == 0)
			return entry & ~MT_HOST_TAG;
	}
	return MT_NONE;
}

/* Called with the lock held: may move the host array. */
static guint32
mt_host_slot(MessageTable *table)
{
	guint32 index;

	if (table->free_host != MT_NONE) {
		index = table->free_host;
		table->free_host = table->hosts[index].hash_next;
		return index;
	}
	if (table->hosts_used == table->hosts_alloc) {
		guint grow = MAX(64, table->hosts_alloc * 2);

		grow = MIN(grow, table->max);
		g_assert(grow > table->hosts_alloc);
		table->hosts = g_renew(MtHost, table->hosts, grow);
		table->hosts_alloc = grow;
	}
	return table->hosts_used++;
}

static guint32
mt_host_ref(MessageTable *table, guint channel, const char *name)
{
	char small[256];
	g_autofree char *big = NULL;
	gsize len = name != NULL ? strlen(name) : 0;
	char *lower = len < sizeof(small) ? small : (big = g_malloc(len + 1));
	guint32 hash, index;
	MtHost *host;

	for (gsize i = 0; i < len; i++)
		lower[i] = g_ascii_tolower(name[i]);
	lower[len] = '\0';
	hash = mt_hash_host(table, channel, lower);
	index = mt_host_find(table, channel, lower, hash);
	if (index != MT_NONE) {
		table->hosts[index].refs++;
		return index;
	}
	g_mutex_lock(&table->lock);
	index = mt_host_slot(table);
	host = &table->hosts[index];
	memset(host, 0, sizeof(*host));
	memset(host->head, 0xff, sizeof(host->head));
	memset(host->tail, 0xff, sizeof(host->tail));
	host->ring_prev = host->ring_next = MT_NONE;
	host->prio = MT_NO_RING;
	host->channel = channel;
	host->refs = 1;
	table->host_name_bytes += len + 1;
	host->name = g_memdup2(lower, len + 1);
	mt_hash_insert(table, hash, index | MT_HOST_TAG);
	g_mutex_unlock(&table->lock);
	table->n_hosts++;
	return index;
}

static void
mt_host_unref(MessageTable *table, guint32 index)
{
	MtHost *host = &table->hosts[index];

	g_assert(host->refs > 0);
	if (--host->refs > 0)
		return;
	g_assert(host->ready == 0 && host->in_progress == 0 && host->prio == MT_NO_RING);
	g_mutex_lock(&table->lock);
	mt_hash_remove(table, mt_hash_host(table, host->channel, host->name), index | MT_HOST_TAG);
	table->host_name_bytes -= strlen(host->name) + 1;
	g_clear_pointer(&host->name, g_free);
	host->hash_next = table->free_host;
	table->free_host = index;
	g_mutex_unlock(&table->lock);
	table->n_hosts--;
}

/* ---- host rings ------------------------------------------------------ */

static void
mt_ring_unlink(MessageTable *table, MtHost *host, guint32 index)
{
	MtChannel *channel = &table->channels[host->channel];
	guint32 *head = &channel->ring[host->level][host->prio];

	if (host->ring_next == index) {
		*head = MT_NONE;
	} else {
		table->hosts[host->ring_prev].ring_next = host->ring_next;
		table->hosts[host->ring_next].ring_prev = host->ring_prev;
		if (*head == index)
			*head = host->ring_next;
	}
	host->ring_prev = host->ring_next = MT_NONE;
	host->prio = MT_NO_RING;
}

/* Append at the tail of its ring: the host waits for every host already
 * there (round robin). */
static void
mt_ring_append(MessageTable *table, MtHost *host, guint32 index, guint level, guint prio)
{
	guint32 *head = &table->channels[host->channel].ring[level][prio];

	if (*head == MT_NONE) {
		host->ring_prev = host->ring_next = index;
		*head = index;
	} else {
		MtHost *first = &table->hosts[*head];
		guint32 last = first->ring_prev;

		host->ring_next = *head;
		host->ring_prev = last;
		table->hosts[last].ring_next = index;
		first->ring_prev = index;
	}
	host->level = level;
	host->prio = prio;
}

/* Put the host in the ring its in-progress count and best ready priority
 * call for (or none when nothing is ready). */
static void
mt_host_relink(MessageTable *table, guint32 index)
{
	MtHost *host = &table->hosts[index];
	guint level = MIN(host->in_progress, MT_LEVELS - 1);
	guint prio = MT_NO_RING;

	for (guint p = 0; p < IMTA_PRIORITY_COUNT && host->ready > 0; p++) {
		if (host->head[p] != MT_NONE) {
			prio = p;
			break;
		}
	}
	if (host->prio == prio && (prio == MT_NO_RING || host->level == level))
		return;
	if (host->prio != MT_NO_RING)
		mt_ring_unlink(table, host, index);
	if (prio != MT_NO_RING)
		mt_ring_append(table, host, index, level, prio);
}

/* ---- states ---------------------------------------------------------- */

static MtState
mt_state(const MtRecord *record)
{
	return record->flags & MT_STATE_MASK;
}

static guint *
mt_count_of(MtCounts *counts, MtState state)
{
	switch (state) {
	case MT_READY:
		return &counts->ready;
	case MT_DELAYED:
		return &counts->delayed;
	case MT_IN_PROGRESS:
		return &counts->in_progress;
	}
	g_assert_not_reached();
}

static void
mt_count(MessageTable *table, const MtRecord *record, MtState state, int delta)
{
	*mt_count_of(&table->counts, state) += delta;
	*mt_count_of(&table->channels[record->channel].counts, state) += delta;
}

static void
mt_set_state(MessageTable *table, MtRecord *record, MtState state)
{
	record->flags = (record->flags & ~MT_STATE_MASK) | state;
	mt_count(table, record, state, +1);
}

/* Into the host's ready list: at the tail (oldest first), or at the head
 * for a message that was already being delivered. */
static void
mt_make_ready(MessageTable *table, MtIndex index, gboolean at_head)
{
	MtRecord *record = &table->records[index];
	MtHost *host = &table->hosts[record->host];
	guint p = record->priority;

	record->prev = record->next = MT_NONE;
	if (host->head[p] == MT_NONE) {
		host->head[p] = host->tail[p] = index;
	} else if (at_head) {
		record->next = host->head[p];
		table->records[host->head[p]].prev = index;
		host->head[p] = index;
	} else {
		record->prev = host->tail[p];
		table->records[host->tail[p]].next = index;
		host->tail[p] = index;
	}
	host->ready++;
	mt_set_state(table, record, MT_READY);
	mt_host_relink(table, record->host);
}

static void
mt_unready(MessageTable *table, MtIndex index)
{
	MtRecord *record = &table->records[index];
	MtHost *host = &table->hosts[record->host];
	guint p = record->priority;

	if (record->prev != MT_NONE)
		table->records[record->prev].next = record->next;
	else
		host->head[p] = record->next;
	if (record->next != MT_NONE)
		table->records[record->next].prev = record->prev;
	else
		host->tail[p] = record->prev;
	record->prev = record->next = MT_NONE;
	host->ready--;
	mt_count(table, record, MT_READY, -1);
	mt_host_relink(table, record->host);
}

/* ---- the delayed heap ------------------------------------------------ */

static void
mt_heap_put(MessageTable *table, guint slot, guint32 index)
{
	table->heap[slot] = index;
	table->records[index].prev = slot;
}

static void
mt_heap_up(MessageTable *table, guint slot)
{
	guint32 index = table->heap[slot];
	guint32 when = table->records[index].when;

	while (slot > 0) {
		guint parent = (slot - 1) / 2;

		if (table->records[table->heap[parent]].when <= when)
			break;
		mt_heap_put(table, slot, table->heap[parent]);
		slot = parent;
	}
	mt_heap_put(table, slot, index);
}

static void
mt_heap_down(MessageTable *table, guint slot)
{
	guint32 index = table->heap[slot];
	guint32 when = table->records[index].when;

	for (;;) {
		guint child = 2 * slot + 1;

		if (child >= table->heap_len)
			break;
		if (child + 1 < table->heap_len && table->records[table->heap[child + 1]].when <
						       table->records[table->heap[child]].when)
			child++;
		if (when <= table->records[table->heap[child]].when)
			break;
		mt_heap_put(table, slot, table->heap[child]);
		slot = child;
	}
	mt_heap_put(table, slot, index);
}

static guint32
mt_time(gint64 t)
{
	return (guint32)CLAMP(t, 0, (gint64)G_MAXUINT32);
}

static void
mt_make_delayed(MessageTable *table, MtIndex index, gint64 when)
{
	MtRecord *record = &table->records[index];

	record->when = mt_time(when);
	record->next = MT_NONE;
	g_assert(table->heap_len < table->max);
	table->heap[table->heap_len] = index;
	mt_heap_up(table, table->heap_len++);
	mt_set_state(table, record, MT_DELAYED);
}

static void
mt_undelay(MessageTable *table, MtIndex index)
{
	MtRecord *record = &table->records[index];
	guint slot = record->prev;

	g_assert(slot < table->heap_len && table->heap[slot] == index);
	table->heap_len--;
	if (slot < table->heap_len) {
		guint32 moved = table->heap[table->heap_len];

		mt_heap_put(table, slot, moved);
		mt_heap_down(table, slot);
		if (table->records[moved].prev == slot)
			mt_heap_up(table, slot);
	}
	record->prev = MT_NONE;
	mt_count(table, record, MT_DELAYED, -1);
}

/* Leave whatever structure the record's state puts it in. */
static void
mt_detach(MessageTable *table, MtIndex index)
{
	MtRecord *record = &table->records[index];

	switch (mt_state(record)) {
	case MT_READY:
		mt_unready(table, index);
		break;
	case MT_DELAYED:
		mt_undelay(table, index);
		break;
	case MT_IN_PROGRESS:
		table->hosts[record->host].in_progress--;
		mt_count(table, record, MT_IN_PROGRESS, -1);
		mt_host_relink(table, record->host);
		break;
	}
}

static void
mt_schedule(MessageTable *table, MtIndex index, gint64 next_attempt, gint64 now,
	    gboolean at_head)
{
	if (next_attempt > now)
		mt_make_delayed(table, index, next_attempt);
	else
		mt_make_ready(table, index, at_head);
}

/* ---- tracking -------------------------------------------------------- */

static guint
mt_scan_limit(const MessageTable *table)
{
	return (guint)(((guint64)table->max * 3) / 4);
}

static MtIndex
mt_record_alloc(MessageTable *table)
{
	MtIndex index;

	if (table->free_record != MT_NONE) {
		index = table->free_record;
		table->free_record = table->records[index].hash_next;
		return index;
	}
	g_assert(table->next_unused < table->max);
	return table->next_unused++;
}

static MtAddResult
mt_add_known(MessageTable *table, MtIndex index, const MtMessageInfo *info, MtOrigin origin,
	     gint64 now)
{
	MtRecord *record = &table->records[index];

	if (record->channel != info->channel)
		return MT_ADD_CONFLICT;
	if (mt_state(record) == MT_IN_PROGRESS)
		return MT_ADD_BUSY;
	if (origin == MT_FROM_SCAN)
		return MT_ADD_KNOWN;
	/* The file may have been renamed (a retry) since it was tracked. */
	record->attempts = MIN(info->attempts, G_MAXUINT16);
	record->subdir = MIN(info->subdir, MT_NO_SUBDIR);
	if (origin == MT_FROM_RETRY && mt_state(record) == MT_DELAYED) {
		mt_undelay(table, index);
		mt_make_ready(table, index, FALSE);
	}
	return MT_ADD_KNOWN;
}

MtAddResult
message_table_add(MessageTable *table, const MtMessageInfo *info, MtOrigin origin, gint64 now,
		  MtIndex *index_r)
{
	MtIndex index;
	MtRecord *record;
	guint limit;
	guint32 hash;

	g_return_val_if_fail(mt_valid_id(info->id), MT_ADD_CONFLICT);
	g_return_val_if_fail(info->channel < table->n_channels, MT_ADD_CONFLICT);
	g_return_val_if_fail(info->priority < IMTA_PRIORITY_COUNT, MT_ADD_CONFLICT);
	if (index_r != NULL)
		*index_r = MT_NONE;
	hash = mt_hash_id(table, info->id);
	index = mt_lookup(table, info->id);
	if (index != MT_NONE) {
		if (index_r != NULL)
			*index_r = index;
		return mt_add_known(table, index, info, origin, now);
	}
	limit = origin == MT_FROM_SCAN ? mt_scan_limit(table) : table->max;
	if (table->tracked >= limit) {
		table->overflow = TRUE;
		return MT_ADD_FULL;
	}
	g_mutex_lock(&table->lock);
	index = mt_record_alloc(table);
	record = &table->records[index];
	memcpy(record->id, info->id, MT_ID_LENGTH);
	record->channel = info->channel;
	record->subdir = MIN(info->subdir, MT_NO_SUBDIR);
	record->attempts = MIN(info->attempts, G_MAXUINT16);
	record->priority = info->priority;
	record->flags = 0;
	record->when = 0;
	mt_hash_insert(table, hash, index);
	g_mutex_unlock(&table->lock);
	record->host = mt_host_ref(table, info->channel, info->host);
	table->tracked++;
	mt_schedule(table, index, info->next_attempt, now, FALSE);
	if (index_r != NULL)
		*index_r = index;
	return MT_ADD_NEW;
}

void
message_table_view(const MessageTable *table, MtIndex index, MtView *view_r)
{
	const MtRecord *record;

	g_return_if_fail(index < table->max);
	record = &table->records[index];
	memcpy(view_r->id, record->id, MT_ID_LENGTH);
	view_r->id[MT_ID_LENGTH] = '\0';
	view_r->channel = record->channel;
	view_r->subdir = record->subdir;
	view_r->host = table->hosts[record->host].name;
	view_r->priority = record->priority;
	view_r->attempts = record->attempts;
	view_r->state = mt_state(record);
	view_r->next_attempt = view_r->state == MT_DELAYED ? record->when : 0;
	view_r->returned = (record->flags & MT_RETURNED) != 0;
}

void
message_table_forget(MessageTable *table, MtIndex index)
{
	MtRecord *record;

	g_return_if_fail(index < table->max);
	record = &table->records[index];
	g_return_if_fail(record->channel != MT_FREE_CHANNEL);
	mt_detach(table, index);
	mt_host_unref(table, record->host);
	g_mutex_lock(&table->lock);
	mt_hash_remove(table, mt_hash_id(table, record->id), index);
	record->channel = MT_FREE_CHANNEL;
	record->hash_next = table->free_record;
	table->free_record = index;
	g_mutex_unlock(&table->lock);
	table->tracked--;
}

/* ---- scheduling ------------------------------------------------------ */

MtIndex
message_table_take(MessageTable *table, guint channel)
{
	MtChannel *ch;

	g_return_val_if_fail(channel < table->n_channels, MT_NONE);
	ch = &table->channels[channel];
	if (ch->counts.ready == 0)
		return MT_NONE;
	for (guint level = 0; level < MT_LEVELS; level++) {
		for (guint p = 0; p < IMTA_PRIORITY_COUNT; p++) {
			guint32 host_index = ch->ring[level][p];
			MtHost *host;
			MtIndex index;

			if (host_index == MT_NONE)
				continue;
			host = &table->hosts[host_index];
			index = host->head[p];
			g_assert(index != MT_NONE);
			host->in_progress++;
			mt_unready(table, index);
			mt_set_state(table, &table->records[index], MT_IN_PROGRESS);
			/* Still in this ring (the last rank): let the others go first. */
			if (ch->ring[level][p] == host_index)
				ch->ring[level][p] = host->ring_next;
			return index;
		}
	}
	g_assert_not_reached();
}

void
message_table_defer(MessageTable *table, MtIndex index, guint attempts, guint subdir,
		    gint64 next_attempt, gint64 now)
{
	MtRecord *record;

	g_return_if_fail(index < table->max);
	record = &table->records[index];
	g_return_if_fail(mt_state(record) == MT_IN_PROGRESS);
	mt_detach(table, index);
	record->attempts = MIN(attempts, G_MAXUINT16);
	record->subdir = MIN(subdir, MT_NO_SUBDIR);
	record->flags &= ~MT_RETURNED;
	mt_schedule(table, index, next_attempt, now, FALSE);
}

void
message_table_give_back(MessageTable *table, MtIndex index, gint64 again_at, gint64 now)
{
	MtRecord *record;

	g_return_if_fail(index < table->max);
	record = &table->records[index];
	g_return_if_fail(mt_state(record) == MT_IN_PROGRESS);
	mt_detach(table, index);
	if (record->flags & MT_RETURNED) {
		mt_schedule(table, index, again_at, now, FALSE);
		return;
	}
	record->flags |= MT_RETURNED;
	mt_make_ready(table, index, TRUE);
}

guint
message_table_release_due(MessageTable *table, gint64 now, guint *per_channel)
{
	guint released = 0;

	while (table->heap_len > 0 && (gint64)table->records[table->heap[0]].when <= now) {
		MtIndex index = table->heap[0];

		mt_undelay(table, index);
		mt_make_ready(table, index, FALSE);
		if (per_channel != NULL)
			per_channel[table->records[index].channel]++;
		released++;
	}
	return released;
}

gint64
message_table_next_due(const MessageTable *table)
{
	if (table->heap_len == 0)
		return 0;
	return table->records[table->heap[0]].when;
}

guint
message_table_retry(MessageTable *table, MtIndex index, gint64 now)
{
	g_return_val_if_fail(index < table->max, 0);
	if (mt_state(&table->records[index]) != MT_DELAYED)
		return 0;
	mt_undelay(table, index);
	mt_make_ready(table, index, FALSE);
	return 1;
}

static gint
mt_compare_when(gconstpointer a, gconstpointer b, gpointer user_data)
{
	const MessageTable *table = user_data;
	guint32 wa = table->records[*(const guint32 *)a].when;
	guint32 wb = table->records[*(const guint32 *)b].when;

	return wa < wb ? -1 : wa > wb;
}

guint
message_table_retry_channel(MessageTable *table, guint channel, gint64 now)
{
	g_autoptr(GArray) due = g_array_new(FALSE, FALSE, sizeof(guint32));
	guint kept = 0;

	g_return_val_if_fail(channel < table->n_channels, 0);
	if (table->channels[channel].counts.delayed == 0)
		return 0;
	for (guint i = 0; i < table->heap_len; i++) {
		guint32 index = table->heap[i];

		if (table->records[index].channel == channel)
			g_array_append_val(due, index);
		else
			table->heap[kept++] = index;
	}
	table->heap_len = kept;
	for (guint i = 0; i < kept; i++)
		table->records[table->heap[i]].prev = i;
	for (guint i = kept / 2; i-- > 0;)
		mt_heap_down(table, i);
	g_array_sort_with_data(due, mt_compare_when, table);
	for (guint i = 0; i < due->len; i++) {
		guint32 index = g_array_index(due, guint32, i);

		mt_count(table, &table->records[index], MT_DELAYED, -1);
		mt_make_ready(table, index, FALSE);
	}
	return due->len;
}

/* ---- capacity -------------------------------------------------------- */

gboolean
message_table_should_forget_failed(const MessageTable *table)
{
	return (guint64)table->tracked * 8 > (guint64)table->max * 5 &&
	       (guint64)table->counts.delayed * 8 > (guint64)table->max * 3;
}

void
message_table_note_overflow(MessageTable *table)
{
	table->overflow = TRUE;
}

gboolean
message_table_overflowed(const MessageTable *table)
{
	return table->overflow;
}

void
message_table_clear_overflow(MessageTable *table)
{
	table->overflow = FALSE;
}

guint
message_table_scan_room(const MessageTable *table)
{
	guint limit = mt_scan_limit(table);

	return table->tracked < limit ? limit - table->tracked : 0;
}

gboolean
message_table_rescan_wanted(const MessageTable *table, gboolean synch_due)
{
	return (guint64)table->tracked * 2 < table->max && (table->overflow || synch_due);
}
