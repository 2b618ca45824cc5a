/*
 * group_commit.h - private to the queue store: the committer that makes
 * the temporary files of concurrent enqueues durable and renames them into
 * place, sharing one file system sync among everything that is waiting.
 *
 * A commit hands over the temporary names and the final names of one
 * enqueue (relative to the queue root) and blocks.  The committer thread
 * takes the whole batch that is waiting (a commit that finds the
 * committer idle and nothing waiting is its own batch, run in the calling
 * thread), then:
 *
 *   1. puts each temporary file in place under its final name, never
 *      replacing an existing file: an unnamed file (O_TMPFILE) is linked
 *      in, a named one renamed;
 *   2. makes the batch durable with ONE sync:
 *      - with the commit journal (journal.h, the default): appends one
 *        record per commit, holding the final names and complete contents
 *        of its files, to this committer's journal segment, and
 *        fdatasync()s the segment; the queue files themselves are made
 *        durable later by a checkpoint (syncfs), after which the records
 *        are dropped.  A batch too big for the segment's free space takes
 *        the next way instead;
 *      - without it: ONE syncfs() on the queue file system, or, where
 *        syncfs() is missing (not Linux, or ENOSYS), fsync() of each file
 *        and of each directory linked into (the journal needs syncfs for
 *        its checkpoints, so it is not used then either);
 *   3. wakes the batch.
 *
 * So a commit costs one sync, shared by everything in its batch; a journal
 * sync writes a few data blocks of a preallocated file, far cheaper than a
 * syncfs.  Records are appended after step 1, so a record only ever
 * describes files that are in place.  The price is a window between steps
 * 1 and 2 in which a file is visible before it is durable:
 *   - a process crash (kill -9) in the window loses nothing: the written
 *     data is in the page cache, and the file is complete.  It was never
 *     acknowledged, so its sender sends again and the message may be
 *     delivered twice, never lost.  After step 2 the same holds, and the
 *     next process that opens the queue runs one syncfs for the segment
 *     the dead one left before removing it;
 *   - a system crash in the window may leave a file shorter than its
 *     envelope's size (file systems that order data before metadata,
 *     ext4 and XFS among them, do not expose unwritten blocks); readers
 *     refuse such a file as truncated (queue_file.c), and nothing was
 *     acknowledged for it.  After step 2, the journal's record is durable:
 *     recovery after the reboot rewrites the file from it if it is missing
 *     or short.  A message delivered and removed after its record but
 *     before the next checkpoint is rewritten too: delivered twice, never
 *     lost.
 *
 * A commit either has every one of its files in place and durable, or
 * fails with no file of it left behind, temporary or final: a failed
 * journal write or sync, or a failed syncfs(), fails every commit of its
 * batch, a failed fsync() the commits
 * whose file or directory it was, a failed link or rename its own commit.
 * The final files of a failed commit are unlinked again, since its client
 * is about to be told to send again.
 *
 * (A record of a batch whose journal sync failed may still reach the disk;
 * after a system crash its files come back and are delivered although the
 * client was told to send again: twice, never lost.)
 *
 * syncfs() also writes back whatever else is dirty on that file system, so
 * the queue should have a file system of its own on a busy host; the sync
 * is still one flush for the batch instead of one per file.
 */
#ifndef IMTA_QUEUE_GROUP_COMMIT_H
#define IMTA_QUEUE_GROUP_COMMIT_H

#include <sys/uio.h>

#include <glib.h>

G_BEGIN_DECLS

typedef struct _QueueCommitter QueueCommitter;

/* `root_fd` and `root` (for messages) stay owned by the caller and must
 * outlive the committer.  Starts the committer thread and creates its
 * journal segment; when the journal cannot be had (a full disk, no
 * O_TMPFILE, no boot id) it commits without one, and says so. */
QueueCommitter *queue_committer_new(int root_fd, const char *root);
/* Stops the thread once every waiting commit is done. */
void queue_committer_free(QueueCommitter *committer);

/* A temporary queue file: an unnamed file (name NULL, fd open), or a named
 * one relative to the root (fd -1).  Unnamed files are preferred: linking
 * one into place is a single directory operation where create + rename
 * are two, and a crash leaves nothing to clean up.  The caller keeps
 * owning (and closes) the descriptors.  `data`, when not NULL, is what
 * the file holds, still in the caller's memory until the commit returns:
 * the journal copies it from there rather than read the file back. */
typedef struct {
	int fd;
	const char *name;
	const struct iovec *data;
	guint n_data;
} QueueTmpFile;

/* Make `n` temporary files durable under their final names (relative to
 * the root).  Blocks until done.  On failure nothing of the commit is
 * left, and the error (IMTA_QUEUE_ERROR_IO) names the path and the cause. */
gboolean queue_committer_commit(QueueCommitter *committer, const QueueTmpFile *tmps,
				const char *const *final_names, guint n, GError **error);

/* ---- for the tests ---------------------------------------------------- */

typedef struct {
	guint64 commits;   /* queue_committer_commit calls */
	guint64 batches;   /* batches processed */
	guint64 syncs;     /* syncfs() calls for batches (0 on the per-file fallback) */
	guint64 journal_syncs; /* fdatasync() calls of the journal, one per batch */
	guint64 checkpoints;   /* journal segments retired (syncfs, then reset) */
} QueueCommitStats;

void queue_committer_stats(QueueCommitter *committer, QueueCommitStats *stats_r);

typedef enum {
	QUEUE_COMMIT_FAULT_NONE,
	QUEUE_COMMIT_FAULT_RENAME,       /* step 1: a link or rename fails */
	QUEUE_COMMIT_FAULT_SYNC,         /* step 2: syncfs, or a file's fsync, fails */
	QUEUE_COMMIT_FAULT_SYNC_DIR,     /* step 2 without syncfs: a directory's fsync fails */
	QUEUE_COMMIT_FAULT_JOURNAL_WRITE, /* step 2: appending the batch's records fails */
	QUEUE_COMMIT_FAULT_JOURNAL_SYNC, /* step 2: the journal's fdatasync fails */
} QueueCommitFault;

/* Make the next occurrence of `fault` fail with `errnum`, after `skip`
 * successful occurrences (renames count one per file).  One-shot. */
void queue_committer_inject_fault(QueueCommitter *committer, QueueCommitFault fault, int errnum,
				  guint skip);

/* Force the fallback of step 2 (fsync per file and directory), as on a
 * system without syncfs(). */
void queue_committer_set_use_syncfs(QueueCommitter *committer, gboolean use_syncfs);

/* Turn the commit journal off (step 2 then syncs the file system, as when
 * the journal cannot be had) or on again. */
void queue_committer_set_use_journal(QueueCommitter *committer, gboolean use_journal);

/* Stop (FALSE) or resume the timed checkpoints that retire the journal
 * (when the committer is idle, or its oldest record is a second old); a
 * segment that fills up is still checkpointed. */
void queue_committer_set_idle_checkpoints(QueueCommitter *committer, gboolean on);

G_END_DECLS

#endif
