/*
 * rebuild.h - reading the queue area into the message table.
 *
 * At start, on REBUILD, every SYNCH_TIME seconds and after an overflow,
 * the job controller scans every channel's queue directory.  A coordinator
 * thread runs two phases, each over all channels with at most
 * REBUILD_PARALLEL_CHANNEL directories read at once: first the untried
 * "ZZ" files of every channel, then the tried ones, so new mail is never
 * left on disk behind old retries.  A file already tracked is skipped by
 * name, without opening it.  For the others the scan reads the file's
 * first REBUILD_HEADER_BYTES (the destination host and the priority are
 * near the top of the envelope): one open, one read and one close per
 * file, about a page of cache; the file's mtime is its next attempt time.
 * A budget (the 3/4 MAX_MESSAGES room) bounds how many files are read.
 *
 * Found files travel to the owning thread in batches of up to
 * REBUILD_BATCH files sorted oldest first (by creation for untried files,
 * by next attempt for tried ones), delivered through the callback from the
 * main context.
 */
#ifndef JC_REBUILD_H
#define JC_REBUILD_H

#include <glib.h>
#include <imta/imta_cnf.h>
#include <imta/queue.h>
#include "message_table.h"

G_BEGIN_DECLS

#define REBUILD_HEADER_BYTES 1024
#define REBUILD_BATCH 512
#define REBUILD_HOST_MAX 255

/* A queue file path as notices, DONE and scans give it, checked. */
typedef struct {
	guint channel;              /* index in cnf->channels */
	guint subdir;               /* MT_NO_SUBDIR when none */
	guint attempts;
	gboolean held;
	char id[MT_ID_LENGTH + 1];
} RebuildPath;

/* What the envelope's first lines say. */
typedef struct {
	char host[REBUILD_HOST_MAX + 1];
	ImtaPriority priority;
	gint64 created;
	gint64 mtime;               /* the next attempt time */
	gboolean well_formed;       /* the magic line and a host line were seen */
} RebuildHeader;

typedef struct {
	char id[MT_ID_LENGTH + 1];
	guint channel, subdir, attempts;
	ImtaPriority priority;
	gint64 next_attempt;
	const char *host;           /* in the batch's strings */
	gint64 order;
} RebuildItem;

typedef struct {
	guint files;                /* queue files seen */
	guint known;                /* already tracked: skipped */
	guint read;                 /* headers read and offered to the table */
	guint held;
	guint errors;               /* unreadable directories or files */
	gboolean complete;          /* every file on disk was offered */
	gdouble seconds;
} RebuildStats;

typedef struct {
	GArray *items;              /* RebuildItem */
	GStringChunk *strings;
	gboolean last;              /* the final report: stats are set */
	RebuildStats stats;
} RebuildBatch;

typedef struct _Rebuild Rebuild;

/* Called from the main context: a batch (owned by the callee; free it with
 * rebuild_batch_free), then once with batch->last; that last call may
 * free the rebuild. */
typedef void (*RebuildBatchFn)(RebuildBatch *batch, gpointer user_data);

/* Scan `cnf`'s channel directories.  `table` is only looked up (with
 * message_table_contains); at most `budget` files are read. */
Rebuild *rebuild_start(ImtaQueue *queue, int root_fd, const ImtaCnf *cnf, MessageTable *table,
		       guint budget, guint parallel, RebuildBatchFn fn, gpointer user_data);
/* Ask the threads to stop early; the final batch still comes. */
void rebuild_cancel(Rebuild *rebuild);
/* Stop, wait for the threads and drop undelivered batches. */
void rebuild_free(Rebuild *rebuild);
void rebuild_batch_free(RebuildBatch *batch);

/* Check a path relative to the queue root: "<channel>/[<NNN>/]<name>" with
 * a channel of `cnf`, no "." or ".." parts, a queue file name. */
gboolean rebuild_parse_path(const ImtaCnf *cnf, const char *path, RebuildPath *path_r,
			    GError **error);

/* Read the header of the queue file `path` (relative to `root_fd`).
 * Without `with_mtime` the file's times are not asked for (imta/
 * stat_untimed.h says why): header_r->mtime is then 0, and so is
 * header_r->created when the header has no creation time. */
gboolean rebuild_read_header(int root_fd, const char *path, gboolean with_mtime,
			     RebuildHeader *header_r, GError **error);

/* The index of `channel` in cnf->channels, or G_MAXUINT. */
guint rebuild_channel_index(const ImtaCnf *cnf, const char *channel);

G_END_DECLS

#endif
