/*
 * queue.h - durable channel queues.
 *
 * Layout.  One directory per channel under the queue root (IMTA_QUEUE),
 * named like the channel; with `subdirs N` the channel's files are spread
 * over subdirectories 000 ... N-1.  A queue file is named
 *
 *	<AA><unique>.<TT>      e.g. ZZ0SJX2K5A1B3C9F.00
 *
 * AA counts delivery attempts so far in complemented base 36 (ZZ = never
 * tried, ZY = once, ... saturating at 00); the file is renamed after every
 * attempt, so the job controller can read untried files first.  <unique>
 * is 16 characters of [0-9A-Z], unique across the queue, and is the
 * message's queue id (the AA prefix changes; the id does not).  TT is "00",
 * or "HELD" for a message held by the administrator.  New queue files are
 * written unnamed (O_TMPFILE) where the file system allows it; otherwise
 * temporary files live in the queue root and start with '$'.  Nothing else
 * may be stored in the queue tree.
 *
 * File format (imta-queue(5)).  A text envelope, a blank line, the message
 * content (exactly `size` bytes, LF line ends), then an append-only trailer
 * of outcome records:
 *
 *	IMTAQ1
 *	id 0SJX2K5A1B3C9FQW
 *	created 1795000000
 *	source tcp_local
 *	channel ims-ms
 *	host example.com             destination host, for per-host scheduling
 *	priority normal
 *	from ann@example.org         the return path, xtext ("" = <>)
 *	envid xtext                  optional
 *	ret hdrs                     optional
 *	rcpt <notify> <orcpt|-> <address>     one per recipient, fields xtext
 *	size 1234
 *	(blank line)
 *	...content...
 *	A <time> <attempt> <next-attempt-time> <xtext reason>
 *	R <time> <index> <D|F|Q> <xtext diagnostic>
 *	W <time> <age> <notice-id|-> <xtext note>
 *
 * An "R" record gives a recipient's outcome (Delivered, Failed, or Queued
 * for retry); the last record for an index wins.  "A" closes an attempt.
 * "W" says that the delay warning due at the notices age of <age> seconds
 * was dealt with: sent as the message <notice-id>, or not sent ("-") for
 * the reason in <note>; it is never sent again for that age.  Files
 * without "W" records (written before they existed) read as having had
 * no warning yet.
 * A torn last line (crash mid-append) is ignored.  All fields are xtext
 * (RFC 3461: '+' and bytes outside 0x21..0x7e written as +XX), so a field
 * never holds a space or a newline.
 *
 * Durability.  Enqueue writes a temporary file, makes it durable, puts it
 * in place (links the unnamed file, or renames the named one) and makes
 * that durable before imta_enqueue_commit() returns; only then may a slave
 * answer 250.  A crash before that leaves no trace of the message.  Concurrent commits in one
 * process share their syncs (group commit): one committer thread syncs the
 * file system once for every batch of files that arrived meanwhile.
 * Outcome records are appended and synced before the job controller hears
 * of them; a message whose recipients are all final is unlinked.
 */
#ifndef IMTA_QUEUE_H
#define IMTA_QUEUE_H

#include <glib.h>
#include <imta/error.h>
#include <imta/channel.h>
#include <imta/imta_cnf.h>
#include <imta/job.h>
#include <imta/mappings.h>

G_BEGIN_DECLS

#define IMTA_QUEUE_ERROR (imta_queue_error_quark())
GQuark imta_queue_error_quark(void);

typedef enum {
	IMTA_QUEUE_ERROR_IO,        /* a file system call failed (ENOSPC...) */
	IMTA_QUEUE_ERROR_FORMAT,    /* a queue file is malformed */
	IMTA_QUEUE_ERROR_NOT_FOUND, /* no such queue file */
	IMTA_QUEUE_ERROR_LIMIT,     /* a size or count limit */
} ImtaQueueErrorCode;

#define IMTA_QUEUE_ID_LENGTH 16

typedef struct _ImtaQueue ImtaQueue;

/* Open the queue rooted at `root` for channels of `cnf` (which must
 * outlive the queue).  Creates the root and channel directories on demand.
 * `notify_socket` is the job controller's notice socket (NULL: none). */
ImtaQueue *imta_queue_open(const char *root, const ImtaCnf *cnf, const char *notify_socket,
			   GError **error);
void imta_queue_close(ImtaQueue *queue);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaQueue, imta_queue_close)

const char *imta_queue_root(const ImtaQueue *queue);

/* Diversions at enqueue time (divert.c).  A recipient queued for channel
 * X goes instead to
 *   - the `defragment` channel, when X carries the defragment keyword and
 *     the message is message/partial (unless the defragment channel
 *     enqueues it);
 *   - else the `conversion` channel, when the mappings' CONVERSIONS table
 *     maps "IN-CHAN=source;OUT-CHAN=X;CONVERT" to Yes (unless the
 *     conversion channel enqueues it);
 * and its queue file names X as the channel to go on to ("then" in the
 * envelope, imta_message_onward_channel() for the master).  No such
 * channel in imta.cnf: no diversion.  A queue opened for the ImtaCnf of a
 * loaded configuration uses that configuration's mappings (imta_config_load
 * binds them); without a CONVERSIONS table the check costs nothing. */
void imta_queue_set_mappings(ImtaQueue *queue, const ImtaMappings *mappings);
/* Bind `mappings` to `cnf` for the queues opened for it later (NULL
 * unbinds); imta_config_load() and imta_config_free() do this. */
void imta_queue_bind_mappings(const ImtaCnf *cnf, const ImtaMappings *mappings);
/* The CONVERSIONS decision alone (what `imsimta test` would show): TRUE
 * when a message from `source` to `destination` goes through conversion. */
gboolean imta_queue_conversion_wanted(const ImtaMappings *mappings, const char *source,
				      const char *destination);

/* Remove temporary files left by processes that died (their pid no longer
 * runs, or older than a day).  Returns how many were removed. */
guint imta_queue_clean_stale(ImtaQueue *queue, GError **error);

/* ---- enqueue -------------------------------------------------------- */

typedef struct _ImtaEnqueue ImtaEnqueue;

ImtaEnqueue *imta_enqueue_new(ImtaQueue *queue, const char *source_channel,
			      const char *return_path);
/* A fresh queue id (IMTA_QUEUE_ID_LENGTH characters of [0-9A-Z]), unique
 * across the queue in practice; a clash is still caught at commit. */
void imta_queue_new_id(char id[IMTA_QUEUE_ID_LENGTH + 1]);
/* Give the first queue file of this enqueue `id` (from imta_queue_new_id,
 * so that a Received: header written before the commit names the file);
 * the other files get ids of their own.  FALSE when `id` is not one. */
gboolean imta_enqueue_set_id(ImtaEnqueue *enq, const char *id);
void imta_enqueue_set_envid(ImtaEnqueue *enq, const char *envid);
void imta_enqueue_set_ret(ImtaEnqueue *enq, ImtaRet ret);
void imta_enqueue_set_priority(ImtaEnqueue *enq, ImtaPriority priority);
/* ImtaMailLogFlags (mail_log.h) of the session the message came by (TLS,
 * SASL), shown in its E entries in mail.log; default none. */
void imta_enqueue_set_mail_log_flags(ImtaEnqueue *enq, guint flags);

/* A recipient, already rewritten, for `channel`. */
gboolean imta_enqueue_add_recipient(ImtaEnqueue *enq, const ImtaChannel *channel,
				    const char *address, const char *orcpt, guint notify,
				    GError **error);

/* Message content, in any number of pieces; spooled to disk, so memory
 * stays bounded whatever the size. */
gboolean imta_enqueue_write(ImtaEnqueue *enq, const void *data, gsize length, GError **error);

/* Write one queue file per destination channel (more with single,
 * single_sys or addrsperfile), make them durable, report them (below).
 * TRUE means every file is on disk: acknowledge now. */
gboolean imta_enqueue_commit(ImtaEnqueue *enq, GError **error);
/* What a commit reports once the files are durable: its E entries in
 * mail.log and its notices to the job controller.  Held, they wait for
 * imta_enqueue_report() (or the free), so that a server can send its
 * reply first and let the client go on meanwhile.  Reported once.  The
 * controller's scans find the files whatever becomes of a notice. */
void imta_enqueue_hold_reports(ImtaEnqueue *enq);
void imta_enqueue_report(ImtaEnqueue *enq);

/* The queue file names committed (relative to the queue root, e.g.
 * "ims-ms/003/ZZ0SJX2K5A1B3C9F.00"); valid until the enqueue is freed. */
const char *const *imta_enqueue_files(const ImtaEnqueue *enq);

/* Free; an uncommitted enqueue leaves nothing behind. */
void imta_enqueue_free(ImtaEnqueue *enq);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaEnqueue, imta_enqueue_free)

/* ---- queue files ---------------------------------------------------- */

typedef struct {
	char *path;            /* relative to the queue root */
	char *id;              /* the 16-character queue id */
	char *channel;
	char *source;
	char *host;
	ImtaPriority priority;
	gint64 created;
	guint attempts;        /* from the AA prefix */
	gint64 next_attempt;   /* 0 = now */
	char *last_error;      /* reason of the last "A" record, or NULL */
	gboolean held;
	goffset content_offset, content_size;
	ImtaMessage *message;  /* envelope, recipients with their outcomes, content */
} ImtaQueueEntry;

/* Read a queue file (path relative to the root).  The message's content
 * stays in the file and is read from there on each use. */
ImtaQueueEntry *imta_queue_entry_read(ImtaQueue *queue, const char *path, GError **error);
/* The same for a file about to be delivered: content of up to
 * IMTA_QUEUE_LOAD_CONTENT_MAX bytes comes into memory with the envelope,
 * in the same read when it fits, so each use of it costs no open. */
#define IMTA_QUEUE_LOAD_CONTENT_MAX (1024 * 1024)
ImtaQueueEntry *imta_queue_entry_load(ImtaQueue *queue, const char *path, GError **error);

/* Record the outcomes the master reported in entry->message's recipients
 * (DELIVERED and FAILED are final; RETRY and NONE are retried):
 *   - every recipient final: the file is unlinked;
 *   - otherwise: the records are appended and synced, the file is renamed
 *     to the next attempt count, and next_attempt is set to now + `delay`.
 * entry->path is updated.  Durable when it returns TRUE. */
gboolean imta_queue_entry_record(ImtaQueue *queue, ImtaQueueEntry *entry, gint64 delay,
				 const char *reason, GError **error);

/* Delay warnings.  TRUE when the "W" record for the notices age of `age`
 * seconds is in the file (or noted below since it was read). */
gboolean imta_queue_entry_warned(const ImtaQueueEntry *entry, gint64 age);
/* Note that the warning for `age` was dealt with: `notice_id` is the
 * queue id of the warning sent, or NULL when none was; `note` says what
 * happened.  Written by the next imta_queue_entry_record() that keeps the
 * file, in the same durable append as the outcomes. */
void imta_queue_entry_note_warning(ImtaQueueEntry *entry, gint64 age, const char *notice_id,
				   const char *note);

/* Administrator actions; entry->path is updated. */
gboolean imta_queue_entry_hold(ImtaQueue *queue, ImtaQueueEntry *entry, GError **error);
gboolean imta_queue_entry_release(ImtaQueue *queue, ImtaQueueEntry *entry, GError **error);
gboolean imta_queue_entry_delete(ImtaQueue *queue, ImtaQueueEntry *entry, GError **error);

void imta_queue_entry_free(ImtaQueueEntry *entry);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaQueueEntry, imta_queue_entry_free)

/* ---- names ------------------------------------------------------------ */

/* "ZZ", "ZY", ... for an attempt count. */
void imta_queue_attempt_prefix(guint attempts, char prefix[3]);
/* Parse a queue file name; FALSE for anything else (temporary files,
 * strays).  id_r: IMTA_QUEUE_ID_LENGTH + 1 bytes. */
gboolean imta_queue_parse_name(const char *name, guint *attempts_r, char *id_r, gboolean *held_r);

/* Visit every queue file of `channel` (untried "ZZ" files first when
 * untried_first), calling fn(relative path, attempts, user_data); stops
 * when fn returns FALSE. */
typedef gboolean (*ImtaQueueVisit)(const char *path, guint attempts, gboolean held,
				   gpointer user_data);
gboolean imta_queue_scan_channel(ImtaQueue *queue, const char *channel, gboolean untried_first,
				 ImtaQueueVisit fn, gpointer user_data, GError **error);

G_END_DECLS

#endif
