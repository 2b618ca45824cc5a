/*
 * journal.h - private to the queue store: the commit journal that lets the
 * group committer make a batch durable with one fdatasync() of a file it
 * owns instead of a sync of the whole queue file system.
 *
 * Each committer owns one segment file in <queue root>/.journal/, created
 * at its start, filled with zeros and synced once (so later fdatasync()
 * calls write data blocks only, never block allocation), and held under an
 * exclusive flock() for its life.  A segment is a header (magic, version,
 * generation, boot id) followed by records; a record holds, for one
 * commit, the final name and the complete content of each of its files,
 * and is valid only if its magic, length, CRC-32C and generation check.
 *
 * A record is appended after the files it describes were linked into
 * place, and the commit is acknowledged after the record is durable.  The
 * queue files themselves become durable later, at a checkpoint: a syncfs()
 * of the queue file system, after which the segment is reset (a new
 * generation in its header makes every older record stale).  A thread
 * checkpoints once the committer has appended nothing for
 * QUEUE_JOURNAL_CHECKPOINT_MS; under steady load the committer does it
 * between batches when the segment is three quarters full or its oldest
 * record is QUEUE_JOURNAL_MAX_AGE_MS old, so commits wait for a
 * checkpoint only then.  The age bound keeps short the time in which a
 * delivered message could come back after a system crash (below).
 *
 * Recovery (queue_journal_recover) takes every segment nobody holds:
 *   - written in this boot (same boot id): only processes died, the page
 *     cache kept every linked file complete; one syncfs() makes them
 *     durable and the segment is removed;
 *   - written in an earlier boot: the system crashed and linked files may
 *     be missing or short.  Every valid record up to the first invalid one
 *     (a torn tail) is replayed: a file that is missing, or does not begin
 *     with the record's bytes, is rewritten atomically from it (one that
 *     is longer but begins with them got the outcome records of an
 *     attempt appended and synced, and is kept).  A message delivered and
 *     removed, or renamed to its next attempt, after its record but before
 *     the next checkpoint, comes back under its first name: it may be
 *     delivered twice, never lost.
 */
#ifndef IMTA_QUEUE_JOURNAL_H
#define IMTA_QUEUE_JOURNAL_H

#include <glib.h>

#include "group_commit.h"

G_BEGIN_DECLS

#define QUEUE_JOURNAL_DIR ".journal"
#define QUEUE_JOURNAL_DEFAULT_SIZE (8 * 1024 * 1024)
#define QUEUE_JOURNAL_CHECKPOINT_MS 100
#define QUEUE_JOURNAL_MAX_AGE_MS 1000

typedef struct _QueueJournal QueueJournal;

/* Create this committer's segment (and .journal, 0700, if missing) and
 * start its checkpoint thread.  `root_fd` and `root` stay owned by the
 * caller and must outlive the journal.  The segment size is
 * QUEUE_JOURNAL_DEFAULT_SIZE unless the environment variable
 * IMTA_TEST_JOURNAL_SIZE (for the tests) says otherwise.  NULL with an
 * error when the journal cannot be had; the committer then syncs the
 * file system for every batch, as without a journal. */
QueueJournal *queue_journal_open(int root_fd, const char *root, GError **error);
/* Make everything recorded durable (one syncfs) and remove the segment;
 * if that sync fails the segment is left for recovery. */
void queue_journal_free(QueueJournal *journal);

/* Building a batch: add one record per commit, then write and sync them
 * together.  Only the thread running the committer's turn calls these
 * (group_commit.c: one turn at a time). */
void queue_journal_batch_begin(QueueJournal *journal);
/* Add a record of `n` files under their final names (relative to the
 * root), which must be in place: each file's bytes come from its
 * tmps[i].data, or are read back from the file when that is NULL.  0 or
 * an errno. */
int queue_journal_batch_add(QueueJournal *journal, const char *const *final_names,
			    const QueueTmpFile *tmps, guint n);
/* Whether the batch fits in the free part of the segment.  When it does
 * not, the committer syncs the file system instead, then calls
 * queue_journal_reset. */
gboolean queue_journal_batch_fits(QueueJournal *journal);
/* Append the batch (one write); 0 or an errno, the segment unchanged. */
int queue_journal_batch_write(QueueJournal *journal);
/* fdatasync the segment; 0 or an errno. */
int queue_journal_sync(QueueJournal *journal);
/* Whether the segment is three quarters full, or (unless timed
 * checkpoints are stopped) its oldest record is QUEUE_JOURNAL_MAX_AGE_MS
 * old: the committer then checkpoints between batches
 * (queue_journal_checkpoint). */
gboolean queue_journal_wants_checkpoint(QueueJournal *journal);
/* syncfs() the queue file system, then queue_journal_reset; 0 or an
 * errno.  The committer thread only, between batches. */
int queue_journal_checkpoint(QueueJournal *journal);
/* Everything recorded so far is durable in the queue itself (the caller
 * just synced the file system after the last record's files were in
 * place): start a new generation, which makes every record stale, and
 * count a checkpoint.  0 or an errno (the segment is then unchanged). */
int queue_journal_reset(QueueJournal *journal);

/* Checkpoints done (syncfs + reset), by the thread and by reset. */
guint64 queue_journal_checkpoints(QueueJournal *journal);

/* For the tests: stop (FALSE) or resume the timed checkpoints (of an
 * idle committer, and by the age of the oldest record), so that a test
 * can take a copy of a segment with records. */
void queue_journal_set_idle_checkpoints(QueueJournal *journal, gboolean on);

/* Replay or retire the segments in <root>/.journal that no live process
 * holds (see the top of this file).  The boot id is read from
 * /proc/sys/kernel/random/boot_id unless IMTA_TEST_BOOT_ID is set.  A
 * segment that cannot be fully recovered is left in place for the next
 * try, and FALSE returned with the error. */
gboolean queue_journal_recover(int root_fd, const char *root, GError **error);

G_END_DECLS

#endif
