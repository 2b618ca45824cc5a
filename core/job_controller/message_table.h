/*
 * message_table.h - the job controller's in-memory view of the queue.
 *
 * At most `max_messages` messages are tracked.  Every named object (a
 * message by its queue id, a destination host by channel and name) lives in
 * one hash table whose bucket array is sized once, at the next power of two
 * above max_messages, and never resized.  Buckets and links are 32-bit
 * indices into arrays allocated when the table is made, so tracking a
 * message allocates nothing.
 *
 * A tracked message is in one of three states:
 *   ready        due now, waiting in its host's list for a job;
 *   delayed      waiting for its next attempt time (a binary heap);
 *   in progress  handed to a master job, which reports back with DONE.
 * Held messages are never tracked.
 *
 * Each channel keeps its destination hosts that have ready messages in
 * rings grouped by how many of the host's messages are in progress and by
 * the best priority the host has ready.  message_table_take() serves the
 * host with the fewest messages in progress, then the best priority, round
 * robin among equals, and the oldest ready message of that host and
 * priority: one slow destination cannot occupy every job of a channel.
 *
 * Capacity rules (job controller documentation, "MAX_MESSAGES"):
 *   - a message beyond max_messages stays on disk untracked, and the table
 *     remembers that something was left behind ("overflow");
 *   - a queue scan reclaims files only while fewer than 3/4 max_messages are
 *     tracked, leaving headroom for new arrivals;
 *   - a message that has just failed an attempt is forgotten (left on disk)
 *     when more than 5/8 max_messages are tracked and more than 3/8 are
 *     delayed;
 *   - a rescan is wanted once fewer than 1/2 max_messages are tracked and
 *     something was left on disk (or a periodic resynchronisation is due).
 *
 * Not thread-safe, except message_table_contains(), which queue-scan
 * threads may call while the owning thread works on the table.  This file
 * depends on GLib only (benchmarks link it alone).
 */
#ifndef JC_MESSAGE_TABLE_H
#define JC_MESSAGE_TABLE_H

#include <glib.h>
#include <imta/channel.h>

G_BEGIN_DECLS

#define MT_NONE G_MAXUINT32
#define MT_ID_LENGTH 16
#define MT_NO_SUBDIR G_MAXUINT16
#define MT_MAX_CHANNELS 0xfffe
/* Hosts are ranked by messages in progress up to this many; beyond it they
 * share the last rank. */
#define MT_LEVELS 16

typedef guint32 MtIndex;
typedef struct _MessageTable MessageTable;

typedef enum {
	MT_READY,
	MT_DELAYED,
	MT_IN_PROGRESS,
} MtState;

/* What a notice, a scan or a DONE knows about a queue file. */
typedef struct {
	const char *id;          /* MT_ID_LENGTH characters, [0-9A-Z] */
	guint channel;           /* index of the channel, < n_channels */
	guint subdir;            /* MT_NO_SUBDIR when the channel has none */
	const char *host;        /* destination host; NULL or "" = unknown */
	ImtaPriority priority;
	guint attempts;          /* from the AA prefix of the file name */
	gint64 next_attempt;     /* Unix time; 0 or in the past = due now */
} MtMessageInfo;

/* Where a message comes from decides what happens when it is known. */
typedef enum {
	MT_FROM_NOTICE,  /* "E": a new file; a known message is left as it is */
	MT_FROM_RETRY,   /* "R" or RETRY: a known message becomes due now */
	MT_FROM_SCAN,    /* queue scan: known messages untouched, 3/4 limit */
} MtOrigin;

typedef enum {
	MT_ADD_NEW,      /* now tracked */
	MT_ADD_KNOWN,    /* already tracked (updated as its origin says) */
	MT_ADD_BUSY,     /* already tracked and in progress: left alone */
	MT_ADD_FULL,     /* no room: left on disk, overflow recorded */
	MT_ADD_CONFLICT, /* the id is tracked for another channel */
} MtAddResult;

/* A tracked message, as read back. */
typedef struct {
	char id[MT_ID_LENGTH + 1];
	guint channel;
	guint subdir;
	const char *host;        /* owned by the table; "" when unknown */
	ImtaPriority priority;
	guint attempts;
	gint64 next_attempt;     /* delayed messages; 0 otherwise */
	MtState state;
	gboolean returned;       /* given back once by a job that died holding it */
} MtView;

typedef struct {
	guint ready, delayed, in_progress;
} MtCounts;

/* `max_messages` >= 1; channels are numbered 0 .. n_channels-1. */
MessageTable *message_table_new(guint max_messages, guint n_channels);
void message_table_free(MessageTable *table);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MessageTable, message_table_free)

guint message_table_max(const MessageTable *table);
guint message_table_hash_size(const MessageTable *table);
guint message_table_tracked(const MessageTable *table);
void message_table_counts(const MessageTable *table, MtCounts *counts_r);
void message_table_channel_counts(const MessageTable *table, guint channel, MtCounts *counts_r);
guint message_table_host_count(const MessageTable *table);

/* Memory: every byte the table allocated, and the bytes each tracked
 * message costs when the table is full (record, heap slot and its share
 * of the bucket array; destination hosts are shared and counted apart). */
gsize message_table_bytes(const MessageTable *table);
double message_table_bytes_per_message(const MessageTable *table);
/* The same figure for a table of `max_messages`, without building one. */
double message_table_bytes_per_message_for(guint max_messages);

/* ---- tracking ------------------------------------------------------- */

MtAddResult message_table_add(MessageTable *table, const MtMessageInfo *info, MtOrigin origin,
			      gint64 now, MtIndex *index_r);
MtIndex message_table_lookup(const MessageTable *table, const char *id);
/* Thread-safe lookup for queue-scan threads. */
gboolean message_table_contains(MessageTable *table, const char *id);
void message_table_view(const MessageTable *table, MtIndex index, MtView *view_r);
/* Stop tracking (the file is gone, held, or left on disk). */
void message_table_forget(MessageTable *table, MtIndex index);

/* ---- scheduling ----------------------------------------------------- */

/* The next message of `channel` for a job: it becomes in progress.
 * MT_NONE when the channel has nothing ready. */
MtIndex message_table_take(MessageTable *table, guint channel);

/* An attempt ended and the message stays queued: with `attempts` and
 * `subdir` of its renamed file, due at `next_attempt`. */
void message_table_defer(MessageTable *table, MtIndex index, guint attempts, guint subdir,
			 gint64 next_attempt, gint64 now);

/* A job went away holding the message: due again at once the first time;
 * when it was already given back once, at `again_at` (a poison message
 * must not kill every job of its channel in a loop). */
void message_table_give_back(MessageTable *table, MtIndex index, gint64 again_at, gint64 now);

/* Make delayed messages whose time has come ready; returns how many.
 * `per_channel` (n_channels entries, may be NULL) is incremented. */
guint message_table_release_due(MessageTable *table, gint64 now, guint *per_channel);
/* The earliest next attempt of a delayed message, 0 when none. */
gint64 message_table_next_due(const MessageTable *table);

/* RETRY: make one delayed message, or every delayed message of a channel,
 * due now.  Return how many became due. */
guint message_table_retry(MessageTable *table, MtIndex index, gint64 now);
guint message_table_retry_channel(MessageTable *table, guint channel, gint64 now);

/* ---- capacity ------------------------------------------------------- */

/* Should a message that has just failed be forgotten (5/8 - 3/8 rule)? */
gboolean message_table_should_forget_failed(const MessageTable *table);
/* Record that a message was left on disk untracked. */
void message_table_note_overflow(MessageTable *table);
gboolean message_table_overflowed(const MessageTable *table);
/* A complete rescan found everything that was left on disk. */
void message_table_clear_overflow(MessageTable *table);
/* How many more files a queue scan may reclaim (up to 3/4 max). */
guint message_table_scan_room(const MessageTable *table);
/* Below half full, with files left on disk or a resync due? */
gboolean message_table_rescan_wanted(const MessageTable *table, gboolean synch_due);

G_END_DECLS

#endif
