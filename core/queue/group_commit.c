/*
 * group_commit.c - one committer thread per queue: concurrent enqueues
 * share the file system syncs that make their files durable (the protocol
 * is described in group_commit.h).
 *
 * The committer runs in turns.  Each turn takes the whole batch that is
 * waiting, puts its files in place, makes them durable with one sync and
 * wakes the batch; commits arriving meanwhile form the next batch.
 *
 * A commit that finds nothing running and nothing waiting runs its own
 * turn in its own thread: under light load a turn then costs no thread
 * hand-offs, each of which is a wake-up (often of an idle CPU) on the
 * path to the client's 250.  Everything that arrives during a turn waits
 * for the committer thread, which takes the next turns and the
 * checkpoints, so batches still form under load.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include <imta/queue.h>

#include "group_commit.h"
#include "journal.h"
#include "queue_file.h"

typedef struct {
	const QueueTmpFile *tmps;
	const char *const *final_names;
	guint n;
	guint renamed;          /* how many of final_names exist */
	GError *error;
	gboolean done;
	GCond cond;             /* signalled when done */
} CommitRequest;

struct _QueueCommitter {
	int root_fd;
	const char *root;
	GMutex lock;
	GCond wake;             /* the committer waits for work */
	GQueue pending;         /* CommitRequest * */
	gboolean turn;          /* a turn or a checkpoint is running */
	gboolean checkpoint_due; /* asked of the thread after a caller's turn */
	gboolean stopping;
	GThread *thread;
	QueueCommitStats stats;
	gboolean use_syncfs;
	gboolean use_journal;
	QueueJournal *journal;  /* NULL when it could not be had */
	QueueCommitFault fault;
	int fault_errno;
	guint fault_skip;
};

static void
commit_set_error(GError **error, const char *root, const char *what, const char *rel,
		 int errnum)
{
	if (rel == NULL) {
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_IO, "cannot %s %s: %s", what,
			    root, g_strerror(errnum));
		return;
	}
	g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_IO, "cannot %s %s/%s: %s", what, root,
		    rel, g_strerror(errnum));
}

/* The errno of the injected fault for `stage` if it fires now, else 0. */
static int
commit_fault(QueueCommitter *committer, QueueCommitFault stage)
{
	int errnum = 0;

	g_mutex_lock(&committer->lock);
	if (committer->fault == stage) {
		if (committer->fault_skip > 0) {
			committer->fault_skip--;
		} else {
			errnum = committer->fault_errno;
			committer->fault = QUEUE_COMMIT_FAULT_NONE;
		}
	}
	g_mutex_unlock(&committer->lock);
	return errnum;
}

static gboolean
commit_use_syncfs(QueueCommitter *committer)
{
	gboolean use;

	g_mutex_lock(&committer->lock);
	use = committer->use_syncfs;
	g_mutex_unlock(&committer->lock);
	return use;
}

static void
commit_disable_syncfs(QueueCommitter *committer)
{
	g_mutex_lock(&committer->lock);
	committer->use_syncfs = FALSE;
	g_mutex_unlock(&committer->lock);
}

/* Remove what a failed request left: its renamed final files and its
 * remaining temporary files. */
static void
commit_discard(QueueCommitter *committer, CommitRequest *req)
{
	for (guint i = 0; i < req->n; i++) {
		const char *name = i < req->renamed ? req->final_names[i] : req->tmps[i].name;

		/* An unnamed file not yet linked vanishes when its owner closes it. */
		if (name == NULL)
			continue;
		if (unlinkat(committer->root_fd, name, 0) < 0 && errno != ENOENT)
			g_warning("cannot remove %s/%s after a failed commit: %s", committer->root,
				  name, g_strerror(errno));
	}
	req->renamed = 0;
}

static void
commit_fail(QueueCommitter *committer, CommitRequest *req, GError *error)
{
	if (req->error == NULL)
		req->error = g_error_copy(error);
	commit_discard(committer, req);
}

static gboolean
commit_request_ok(const CommitRequest *req)
{
	return req->error == NULL;
}

/* Put one temporary file in place; 0 or -1 with errno. */
static int
commit_place(QueueCommitter *committer, const QueueTmpFile *tmp, const char *final_name)
{
	char proc_path[64];

	if (tmp->name != NULL)
		return queue_rename_noreplace(committer->root_fd, tmp->name, final_name);
	/* linkat(fd, "", AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; the /proc
	 * path does the same for any user.  Like rename(RENAME_NOREPLACE),
	 * linkat never replaces an existing name. */
	g_snprintf(proc_path, sizeof proc_path, "/proc/self/fd/%d", tmp->fd);
	return linkat(AT_FDCWD, proc_path, committer->root_fd, final_name, AT_SYMLINK_FOLLOW);
}

/* Step 1: every file of the request under its final name. */
static void
commit_place_request(QueueCommitter *committer, CommitRequest *req)
{
	for (guint i = 0; i < req->n; i++) {
		g_autoptr(GError) error = NULL;
		int errnum = commit_fault(committer, QUEUE_COMMIT_FAULT_RENAME);

		if (errnum == 0 && commit_place(committer, &req->tmps[i], req->final_names[i]) == 0) {
			req->renamed++;
			continue;
		}
		if (errnum == 0)
			errnum = errno;
		commit_set_error(&error, committer->root, "put in place", req->final_names[i],
				 errnum);
		commit_fail(committer, req, error);
		return;
	}
}

/* Step 2 without syncfs: fsync each file (data and inode) of a request. */
static void
commit_sync_files(QueueCommitter *committer, CommitRequest *req)
{
	for (guint i = 0; commit_request_ok(req) && i < req->n; i++) {
		const QueueTmpFile *tmp = &req->tmps[i];
		g_autoptr(GError) error = NULL;
		int fd = tmp->name == NULL ? tmp->fd :
			 openat(committer->root_fd, req->final_names[i],
				O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		int errnum = commit_fault(committer, QUEUE_COMMIT_FAULT_SYNC);

		if (fd >= 0 && errnum == 0 && fsync(fd) < 0)
			errnum = errno;
		else if (fd < 0)
			errnum = errno;
		if (fd >= 0 && tmp->name != NULL)
			close(fd);
		if (errnum != 0) {
			commit_set_error(&error, committer->root, "sync", req->final_names[i],
					 errnum);
			commit_fail(committer, req, error);
		}
	}
}

/* Step 2 without syncfs, continued: fsync each directory linked into
 * (once per batch). */
static void
commit_sync_dirs(QueueCommitter *committer, GPtrArray *batch)
{
	g_autoptr(GHashTable) done = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	for (guint i = 0; i < batch->len; i++) {
		CommitRequest *req = batch->pdata[i];

		for (guint j = 0; commit_request_ok(req) && j < req->n; j++) {
			g_autoptr(GError) error = NULL;
			char *dir = g_path_get_dirname(req->final_names[j]);
			int errnum = commit_fault(committer, QUEUE_COMMIT_FAULT_SYNC_DIR);
			int fd;

			if (g_hash_table_contains(done, dir) && errnum == 0) {
				g_free(dir);
				continue;
			}
			fd = openat(committer->root_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (errnum == 0 && (fd < 0 || fsync(fd) < 0))
				errnum = errno;
			if (fd >= 0)
				close(fd);
			if (errnum != 0) {
				commit_set_error(&error, committer->root, "sync the directory", dir,
						 errnum);
				commit_fail(committer, req, error);
				g_free(dir);
				continue;
			}
			g_hash_table_add(done, dir);
		}
	}
}

static void
commit_fail_batch(QueueCommitter *committer, GPtrArray *batch, const char *what, int errnum)
{
	g_autoptr(GError) error = NULL;

	commit_set_error(&error, committer->root, what, NULL, errnum);
	for (guint i = 0; i < batch->len; i++)
		commit_fail(committer, batch->pdata[i], error);
}

/* Step 2: one syncfs() for the whole batch, data and names at once.
 * 0, ENOSYS when syncfs() is missing, or the errno that failed the batch. */
static int
commit_syncfs(QueueCommitter *committer, GPtrArray *batch)
{
	int errnum = commit_fault(committer, QUEUE_COMMIT_FAULT_SYNC);

	g_mutex_lock(&committer->lock);
	committer->stats.syncs++;
	g_mutex_unlock(&committer->lock);
	if (errnum == 0)
		errnum = queue_syncfs(committer->root_fd);
	if (errnum == ENOSYS || errnum == 0)
		return errnum;
	commit_fail_batch(committer, batch, "sync the file system of", errnum);
	return errnum;
}

/* A failed checkpoint loses nothing: the records stay valid until one
 * succeeds, and a full segment sends batches to syncfs meanwhile. */
static void
commit_checkpoint_done(QueueCommitter *committer, int errnum)
{
	if (errnum != 0)
		g_warning("cannot checkpoint the commit journal of %s: %s", committer->root,
			  g_strerror(errnum));
}

/* Step 2 without the journal: one syncfs, or the per-file fallback.
 * TRUE when a syncfs() succeeded, so that everything linked before it is
 * durable. */
static gboolean
commit_sync_batch(QueueCommitter *committer, GPtrArray *batch)
{
	int errnum = ENOSYS;

	if (commit_use_syncfs(committer)) {
		errnum = commit_syncfs(committer, batch);
		if (errnum == ENOSYS)
			commit_disable_syncfs(committer);
	}
	if (errnum != ENOSYS)
		return errnum == 0;
	for (guint i = 0; i < batch->len; i++)
		commit_sync_files(committer, batch->pdata[i]);
	commit_sync_dirs(committer, batch);
	return FALSE;
}

/* The journal needs syncfs() for its checkpoints: without it, or when
 * turned off, the batch is synced as it would be without a journal. */
static gboolean
commit_use_journal(QueueCommitter *committer)
{
	gboolean use;

	g_mutex_lock(&committer->lock);
	use = committer->journal != NULL && committer->use_journal && committer->use_syncfs;
	g_mutex_unlock(&committer->lock);
	return use;
}

/* Add a record for each request still standing; a file that cannot be
 * read back fails its own request. */
static void
commit_journal_records(QueueCommitter *committer, GPtrArray *batch)
{
	queue_journal_batch_begin(committer->journal);
	for (guint i = 0; i < batch->len; i++) {
		CommitRequest *req = batch->pdata[i];
		g_autoptr(GError) error = NULL;
		int errnum;

		if (!commit_request_ok(req))
			continue;
		errnum = queue_journal_batch_add(committer->journal, req->final_names, req->tmps,
						 req->n);
		if (errnum == 0)
			continue;
		commit_set_error(&error, committer->root, "record in the journal",
				 req->final_names[0], errnum);
		commit_fail(committer, req, error);
	}
}

/* Step 2 with the journal: the records of the batch appended to the
 * segment and ONE fdatasync of it.  Records are written only after their
 * files are in place, so a record never vouches for a file that a failed
 * link left out.  A batch too big for the segment's free part is synced
 * without the journal, which also retires every record before it. */
static void
commit_journal(QueueCommitter *committer, GPtrArray *batch)
{
	int errnum;

	commit_journal_records(committer, batch);
	if (!queue_journal_batch_fits(committer->journal)) {
		if (commit_sync_batch(committer, batch))
			commit_checkpoint_done(committer, queue_journal_reset(committer->journal));
		return;
	}
	errnum = commit_fault(committer, QUEUE_COMMIT_FAULT_JOURNAL_WRITE);
	if (errnum == 0)
		errnum = queue_journal_batch_write(committer->journal);
	if (errnum != 0) {
		commit_fail_batch(committer, batch, "write the journal of", errnum);
		return;
	}
	g_mutex_lock(&committer->lock);
	committer->stats.journal_syncs++;
	g_mutex_unlock(&committer->lock);
	errnum = commit_fault(committer, QUEUE_COMMIT_FAULT_JOURNAL_SYNC);
	if (errnum == 0)
		errnum = queue_journal_sync(committer->journal);
	if (errnum != 0)
		commit_fail_batch(committer, batch, "sync the journal of", errnum);
}

/* One turn of the committer: the batch in place, then durable. */
static void
commit_cycle(QueueCommitter *committer, GPtrArray *batch)
{
	guint placed = 0;

	for (guint i = 0; i < batch->len; i++) {
		commit_place_request(committer, batch->pdata[i]);
		placed += commit_request_ok(batch->pdata[i]) ? 1 : 0;
	}
	if (placed == 0)
		return;
	if (commit_use_journal(committer)) {
		commit_journal(committer, batch);
		return;
	}
	(void)commit_sync_batch(committer, batch);
}

static gboolean
commit_wants_checkpoint(QueueCommitter *committer)
{
	return commit_use_journal(committer) &&
	       queue_journal_wants_checkpoint(committer->journal);
}

/* Between batches: retire a segment that is three quarters full or whose
 * oldest record is QUEUE_JOURNAL_MAX_AGE_MS old, so that commits wait for
 * a checkpoint only then. */
static void
commit_maybe_checkpoint(QueueCommitter *committer)
{
	if (!commit_wants_checkpoint(committer))
		return;
	commit_checkpoint_done(committer, queue_journal_checkpoint(committer->journal));
}

/* Each waiter has its own condition, so a turn wakes only its batch. */
static void
commit_wake(CommitRequest *req)
{
	req->done = TRUE;
	g_cond_signal(&req->cond);
}

/* Start a turn with every waiting request as its batch (possibly none).
 * With the lock held. */
static GPtrArray *
commit_begin_turn(QueueCommitter *committer)
{
	GPtrArray *batch = g_ptr_array_sized_new(committer->pending.length);

	while (!g_queue_is_empty(&committer->pending))
		g_ptr_array_add(batch, g_queue_pop_head(&committer->pending));
	if (batch->len > 0)
		committer->stats.batches++;
	committer->turn = TRUE;
	return batch;
}

/* The body of a turn, by whichever thread runs it, without the lock: the
 * batch in place and durable, then woken. */
static void
commit_run_turn(QueueCommitter *committer, GPtrArray *batch)
{
	commit_cycle(committer, batch);
	g_mutex_lock(&committer->lock);
	for (guint i = 0; i < batch->len; i++)
		commit_wake(batch->pdata[i]);
	g_mutex_unlock(&committer->lock);
}

/* Work for the thread: a batch or a checkpoint, and no turn running. */
static gboolean
commit_thread_has_work(QueueCommitter *committer)
{
	return !committer->turn &&
	       (!g_queue_is_empty(&committer->pending) || committer->checkpoint_due);
}

static gpointer
commit_thread(gpointer data)
{
	QueueCommitter *committer = data;

	g_mutex_lock(&committer->lock);
	for (;;) {
		g_autoptr(GPtrArray) batch = NULL;

		/* Stopping, it still waits for a caller's turn, which may leave
		 * work behind. */
		while (!commit_thread_has_work(committer) &&
		       !(committer->stopping && !committer->turn))
			g_cond_wait(&committer->wake, &committer->lock);
		if (!commit_thread_has_work(committer))
			break;
		committer->checkpoint_due = FALSE;
		batch = commit_begin_turn(committer);
		g_mutex_unlock(&committer->lock);

		commit_run_turn(committer, batch);
		commit_maybe_checkpoint(committer);
		g_mutex_lock(&committer->lock);
		committer->turn = FALSE;
	}
	g_mutex_unlock(&committer->lock);
	return NULL;
}

/* The caller's own turn, its request alone in the batch.  Entered and
 * left with the lock held.  Whatever arrived meanwhile, and a checkpoint
 * that is due, go to the thread. */
static void
commit_caller_turn(QueueCommitter *committer)
{
	g_autoptr(GPtrArray) batch = commit_begin_turn(committer);
	gboolean checkpoint;

	g_mutex_unlock(&committer->lock);
	commit_run_turn(committer, batch);
	checkpoint = commit_wants_checkpoint(committer);
	g_mutex_lock(&committer->lock);
	committer->turn = FALSE;
	committer->checkpoint_due = committer->checkpoint_due || checkpoint;
	if (commit_thread_has_work(committer) || committer->stopping)
		g_cond_signal(&committer->wake);
}

QueueCommitter *
queue_committer_new(int root_fd, const char *root)
{
	QueueCommitter *committer = g_new0(QueueCommitter, 1);
	g_autoptr(GError) error = NULL;

	committer->root_fd = root_fd;
	committer->root = root;
	committer->use_syncfs = TRUE;
	committer->use_journal = TRUE;
	committer->journal = queue_journal_open(root_fd, root, &error);
	/* Not a failure: commits are as durable without it, only slower
	 * (a full disk is the usual cause). */
	if (committer->journal == NULL)
		g_message("%s; syncing the file system for every batch instead", error->message);
	g_mutex_init(&committer->lock);
	g_cond_init(&committer->wake);
	g_queue_init(&committer->pending);
	committer->thread = g_thread_new("queue-commit", commit_thread, committer);
	return committer;
}

void
queue_committer_free(QueueCommitter *committer)
{
	if (committer == NULL)
		return;
	g_mutex_lock(&committer->lock);
	committer->stopping = TRUE;
	g_cond_signal(&committer->wake);
	g_mutex_unlock(&committer->lock);
	g_thread_join(committer->thread);
	queue_journal_free(committer->journal);
	g_mutex_clear(&committer->lock);
	g_cond_clear(&committer->wake);
	g_free(committer);
}

gboolean
queue_committer_commit(QueueCommitter *committer, const QueueTmpFile *tmps,
		       const char *const *final_names, guint n, GError **error)
{
	CommitRequest req = { tmps, final_names, n, 0, NULL, FALSE };

	g_cond_init(&req.cond);
	g_mutex_lock(&committer->lock);
	committer->stats.commits++;
	g_queue_push_tail(&committer->pending, &req);
	if (!committer->turn && committer->pending.length == 1 && !committer->stopping)
		commit_caller_turn(committer);
	else
		g_cond_signal(&committer->wake);
	while (!req.done)
		g_cond_wait(&req.cond, &committer->lock);
	g_mutex_unlock(&committer->lock);
	g_cond_clear(&req.cond);
	if (req.error != NULL) {
		g_propagate_error(error, req.error);
		return FALSE;
	}
	return TRUE;
}

void
queue_committer_stats(QueueCommitter *committer, QueueCommitStats *stats_r)
{
	g_mutex_lock(&committer->lock);
	*stats_r = committer->stats;
	g_mutex_unlock(&committer->lock);
	if (committer->journal != NULL)
		stats_r->checkpoints = queue_journal_checkpoints(committer->journal);
}

void
queue_committer_inject_fault(QueueCommitter *committer, QueueCommitFault fault, int errnum,
			     guint skip)
{
	g_mutex_lock(&committer->lock);
	committer->fault = fault;
	committer->fault_errno = errnum;
	committer->fault_skip = skip;
	g_mutex_unlock(&committer->lock);
}

void
queue_committer_set_use_syncfs(QueueCommitter *committer, gboolean use_syncfs)
{
	g_mutex_lock(&committer->lock);
	committer->use_syncfs = use_syncfs;
	g_mutex_unlock(&committer->lock);
}

void
queue_committer_set_use_journal(QueueCommitter *committer, gboolean use_journal)
{
	g_mutex_lock(&committer->lock);
	committer->use_journal = use_journal;
	g_mutex_unlock(&committer->lock);
}

void
queue_committer_set_idle_checkpoints(QueueCommitter *committer, gboolean on)
{
	if (committer->journal != NULL)
		queue_journal_set_idle_checkpoints(committer->journal, on);
}
