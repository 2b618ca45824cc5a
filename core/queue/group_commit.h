/*
 * group_commit.h - private to the queue store: the committer that makes
 * the temporary files of concurrent enqueues durable and renames them into
 * place, sharing one file system sync among everything that is waiting.
 *
 * A commit hands over the temporary names and the final names of one
 * enqueue (relative to the queue root) and blocks.  The committer thread
 * takes the whole batch that is waiting, then:
 *
 *   1. puts each temporary file in place under its final name, never
 *      replacing an existing file: an unnamed file (O_TMPFILE) is linked
 *      in, a named one renamed;
 *   2. makes data and names durable together: ONE syncfs() on the queue
 *      file system, or, where syncfs() is missing (not Linux, or ENOSYS),
 *      fsync() of each file and of each directory linked into;
 *   3. wakes the batch.
 *
 * So a commit costs one sync, shared by everything in its batch.  The
 * price is a window between steps 1 and 2 in which a file is visible
 * before it is durable:
 *   - a process crash (kill -9) in the window loses nothing: the written
 *     data is in the page cache, and the file is complete.  It was never
 *     acknowledged, so its sender sends again and the message may be
 *     delivered twice, never lost;
 *   - a system crash in the window may leave a file shorter than its
 *     envelope's size (file systems that order data before metadata,
 *     ext4 and XFS among them, do not expose unwritten blocks); readers
 *     refuse such a file as truncated (queue_file.c), and nothing was
 *     acknowledged for it.
 *
 * A commit either has every one of its files in place and durable, or
 * fails with no file of it left behind, temporary or final: a failed
 * syncfs() fails every commit of its batch, a failed fsync() the commits
 * whose file or directory it was, a failed link or rename its own commit.
 * The final files of a failed commit are unlinked again, since its client
 * is about to be told to send again.
 *
 * syncfs() also writes back whatever else is dirty on that file system, so
 * the queue should have a file system of its own on a busy host; the sync
 * is still one flush for the batch instead of one per file.
 */
#ifndef IMTA_QUEUE_GROUP_COMMIT_H
#define IMTA_QUEUE_GROUP_COMMIT_H

#include <glib.h>

G_BEGIN_DECLS

typedef struct _QueueCommitter QueueCommitter;

/* `root_fd` and `root` (for messages) stay owned by the caller and must
 * outlive the committer.  Starts the committer thread. */
QueueCommitter *queue_committer_new(int root_fd, const char *root);
/* Stops the thread once every waiting commit is done. */
void queue_committer_free(QueueCommitter *committer);

/* A temporary queue file: an unnamed file (name NULL, fd open), or a named
 * one relative to the root (fd -1).  Unnamed files are preferred: linking
 * one into place is a single directory operation where create + rename
 * are two, and a crash leaves nothing to clean up.  The caller keeps
 * owning (and closes) the descriptors. */
typedef struct {
	int fd;
	const char *name;
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
	guint64 syncs;     /* syncfs() calls (0 on the per-file fallback) */
} QueueCommitStats;

void queue_committer_stats(QueueCommitter *committer, QueueCommitStats *stats_r);

typedef enum {
	QUEUE_COMMIT_FAULT_NONE,
	QUEUE_COMMIT_FAULT_RENAME,       /* step 1: a link or rename fails */
	QUEUE_COMMIT_FAULT_SYNC,         /* step 2: syncfs, or a file's fsync, fails */
	QUEUE_COMMIT_FAULT_SYNC_DIR,     /* step 2 without syncfs: a directory's fsync fails */
} QueueCommitFault;

/* Make the next occurrence of `fault` fail with `errnum`, after `skip`
 * successful occurrences (renames count one per file).  One-shot. */
void queue_committer_inject_fault(QueueCommitter *committer, QueueCommitFault fault, int errnum,
				  guint skip);

/* Force the fallback of step 2 (fsync per file and directory), as on a
 * system without syncfs(). */
void queue_committer_set_use_syncfs(QueueCommitter *committer, gboolean use_syncfs);

G_END_DECLS

#endif
