/*
 * queue_file.h - private to the queue store: the queue file format
 * (imta-queue(5), summarised in <imta/queue.h>) and the internals that
 * queue.c, enqueue.c, queue_update.c and group_commit.c share.
 *
 * Everything here works relative to the queue root's directory descriptor
 * (the *at() calls), so a path never needs to be longer than one queue
 * name and no symbolic link inside the queue is followed.
 */
#ifndef IMTA_QUEUE_FILE_H
#define IMTA_QUEUE_FILE_H

#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <glib.h>
#include <imta/queue.h>

#include "group_commit.h"

G_BEGIN_DECLS

#define QUEUE_FILE_MAGIC "IMTAQ1"
/* Limits on what a queue file may hold; a file beyond them is refused as
 * malformed rather than read into memory without bound. */
#define QUEUE_MAX_FIELD (16 * 1024)            /* one address, orcpt, envid (raw bytes) */
#define QUEUE_MAX_LINE (4 * QUEUE_MAX_FIELD)   /* one envelope line, encoded */
#define QUEUE_MAX_ENVELOPE (64 * 1024 * 1024)  /* the whole envelope */
#define QUEUE_MAX_TRAILER (16 * 1024 * 1024)   /* all outcome records */
#define QUEUE_STALE_AGE (24 * 60 * 60)         /* seconds: a temporary file this old is dead */
#define QUEUE_MAX_DELAY (G_GINT64_CONSTANT(366) * 24 * 60 * 60) /* longest retry delay */
#define QUEUE_MAX_WARNINGS 64                 /* distinct "W" ages kept per file */

struct _ImtaQueue {
	char *root;                 /* absolute */
	int root_fd;
	const ImtaCnf *cnf;
	pid_t pid;                  /* the process that opened it */
	int notify_fd;              /* -1: no notices */
	struct sockaddr_un notify_addr;
	socklen_t notify_len;
	GMutex lock;                /* dirs_made, committer and the spare */
	GHashTable *dirs_made;      /* directories known to exist (relative) */
	QueueCommitter *committer;  /* started on the first commit */
	int spare_fd;               /* an unnamed file made ahead, or -1 */
	char *spare_dir;            /* the directory it was made in */
	const ImtaMappings *mappings;          /* divert.c: NULL = none */
	const ImtaMappingTable *conversions;   /* its CONVERSIONS table, or NULL */
	gboolean divert_warned;                /* a missing channel was reported */
};

/* ---- queue.c: names, directories, errors ------------------------------ */

/* Set an IMTA_QUEUE_ERROR_IO error "cannot <what> <root>/<rel>: <strerror>". */
void queue_set_io_error(GError **error, const ImtaQueue *queue, const char *what,
			const char *rel, int errnum);
/* A fresh queue id (IMTA_QUEUE_ID_LENGTH characters and a NUL). */
void queue_id_new(char id[IMTA_QUEUE_ID_LENGTH + 1]);
/* A fresh temporary file name "$<pid>-<counter>.tmp" (caller frees). */
char *queue_tmp_name_new(void);
/* TRUE for a channel name usable as a directory name. */
gboolean queue_channel_name_valid(const char *name);
/* The directory of a new file of `channel` with queue id `id`
 * ("channel" or "channel/NNN"); caller frees. */
char *queue_dir_for(const ImtaChannel *channel, const char *id);
/* Create `rel_dir` (and its channel directory) unless known to exist,
 * making the new directory entries durable. */
gboolean queue_ensure_dir(ImtaQueue *queue, const char *rel_dir, GError **error);
/* Forget that `rel_dir` exists (after a failure that may mean it does not). */
void queue_forget_dir(ImtaQueue *queue, const char *rel_dir);
/* An unnamed temporary file (O_TMPFILE) in `rel_dir`, to be linked into
 * it by a commit: the spare made by queue_unnamed_restock() when it is
 * for that directory, else a new one.  -1 with errno, or ENOTSUP where
 * the system has no unnamed files. */
int queue_unnamed_take(ImtaQueue *queue, const char *rel_dir);
/* Make a spare unnamed file in `rel_dir` unless there is one.  Making
 * one allocates an inode, 15-20 us on ext4: a server calls this once its
 * reply is out, and its next commit finds the file ready. */
void queue_unnamed_restock(ImtaQueue *queue, const char *rel_dir);
/* fsync() the directory holding `rel` (a file path). */
gboolean queue_sync_parent(ImtaQueue *queue, const char *rel, GError **error);
/* rename() that never replaces an existing file (renameat2 RENAME_NOREPLACE,
 * or link+unlink where the file system lacks it); -1 with errno. */
int queue_rename_noreplace(int dir_fd, const char *from, const char *to);
/* Send the job controller the notice "<kind> <rel>"; failures are ignored. */
void queue_notify(ImtaQueue *queue, char kind, const char *rel);
/* The committer, started on first use. */
QueueCommitter *queue_get_committer(ImtaQueue *queue);
/* Split a relative queue file path into its directory and file name and
 * check its shape (channel[/NNN]/name); FALSE for anything else. */
gboolean queue_path_split(const char *rel, char **dir_r, char **name_r);
/* write() all of `length` bytes; -1 with errno. */
int queue_write_all(int fd, const void *data, gsize length);
/* writev() all of `count` buffers, changing `iov` as it goes; -1 with
 * errno. */
int queue_writev_all(int fd, struct iovec *iov, int count);
/* syncfs() of the file system holding `fd`: 0, ENOSYS where there is no
 * syncfs(), or the errno. */
int queue_syncfs(int fd);

/* ---- enqueue.c ------------------------------------------------------ */

/* A message's content is kept in memory up to QUEUE_CONTENT_BUFFER bytes
 * always, and up to QUEUE_CONTENT_MEMORY_MAX while the enqueues of the
 * process hold at most QUEUE_CONTENT_MEMORY_BUDGET bytes beyond
 * QUEUE_CONTENT_BUFFER each; the rest is spooled to a file. */
#define QUEUE_CONTENT_BUFFER (64 * 1024)
#define QUEUE_CONTENT_MEMORY_MAX (1024 * 1024)
#define QUEUE_CONTENT_MEMORY_BUDGET (64 * 1024 * 1024)

/* What the enqueues of this process hold of the budget now. */
gsize queue_content_memory_reserved(void);
/* Has `enq` spooled its content to a file? */
gboolean queue_enqueue_spooled(const ImtaEnqueue *enq);

/* ---- divert.c ------------------------------------------------------- */

/* The mappings imta_queue_bind_mappings() bound to `cnf`, or NULL. */
const ImtaMappings *queue_bound_mappings(const ImtaCnf *cnf);
/* The channel a recipient for `channel` is queued to (see queue.h);
 * *onward_r is `channel`'s name when diverted, else NULL. */
const ImtaChannel *queue_divert(ImtaQueue *queue, const char *source,
				const ImtaChannel *channel, gboolean partial,
				const char **onward_r);

/* ---- queue_file.c: the format ---------------------------------------- */

typedef struct {
	const char *address;
	const char *orcpt;          /* NULL: none */
	guint notify;
} QueueFileRecipient;

typedef struct {
	const char *id;
	gint64 created;
	const char *source;
	const char *channel;
	const char *host;
	const char *then;           /* the channel to go on to, or NULL */
	ImtaPriority priority;
	const char *from;           /* "" = null return path */
	const char *envid;          /* NULL: none */
	ImtaRet ret;
	const QueueFileRecipient *rcpts;
	guint n_rcpts;
	goffset size;
} QueueFileEnvelope;

/* Append the envelope, up to and including the blank line. */
void queue_file_format_envelope(GString *out, const QueueFileEnvelope *env);

/* An outcome as last recorded in the file, per recipient. */
typedef struct {
	ImtaOutcome outcome;        /* NONE: no record yet */
	char *diagnostic;
} QueueRecorded;

/* A delay warning noted but not yet written ("W" record). */
typedef struct {
	gint64 age;                 /* seconds */
	char *notice_id;            /* NULL: none sent */
	char *note;
} QueueWarning;

/* What imta_queue_entry_read hands out: the public entry first. */
typedef struct {
	ImtaQueueEntry pub;
	GArray *recorded;           /* QueueRecorded, one per recipient */
	GArray *warned;             /* gint64 ages of the "W" records */
	GPtrArray *warnings;        /* QueueWarning *, noted since the file was read */
} QueueEntryPrivate;

/* Parse the queue file open on `fd`; `rel` is its path relative to the
 * root (its name gives the attempts, id and type).  Every error names the
 * file.  Content of at most `content_max` bytes is read into memory with
 * the envelope; larger content stays in the file, where the message's
 * stream finds it. */
QueueEntryPrivate *queue_file_read(ImtaQueue *queue, int fd, const char *rel, gsize content_max,
				   GError **error);

/* Append an "R" record and an "A" record. */
void queue_file_format_outcome(GString *out, gint64 now, guint index, ImtaOutcome outcome,
			       const char *diagnostic);
void queue_file_format_attempt(GString *out, gint64 now, guint attempt, gint64 next,
			       const char *reason);
/* Append a "W" record. */
void queue_file_format_warning(GString *out, gint64 now, const QueueWarning *warning);

const char *queue_priority_name(ImtaPriority priority);

G_END_DECLS

#endif
