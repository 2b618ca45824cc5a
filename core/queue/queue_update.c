/*
 * queue_update.c - reading a queue file and changing it afterwards: the
 * outcomes of a delivery attempt, and the administrator's hold, release
 * and delete.
 *
 * After an attempt the outcome records are appended and synced, the file
 * is renamed to the next attempt count, and its mtime is set to the time
 * of the next attempt, so a queue scan learns when a file is due from
 * stat() alone, without opening it.  The mtime is a hint (the "A" record
 * is what counts): a release moves it back to now to make the message due
 * at once.  Renames and unlinks are made durable by syncing the directory.
 *
 * When every recipient is final the file is unlinked and entry->path
 * becomes NULL (as after imta_queue_entry_delete).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <glib.h>

#include <imta/queue.h>
#include <imta/stat_untimed.h>

#include "queue_file.h"

static ImtaQueueEntry *
queue_entry_read(ImtaQueue *queue, const char *path, gsize content_max, GError **error)
{
	QueueEntryPrivate *priv;
	int fd;

	if (!queue_path_split(path, NULL, NULL)) {
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_NOT_FOUND,
			    "\"%s\" is not the path of a queue file", path != NULL ? path : "");
		return NULL;
	}
	fd = openat(queue->root_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_NOT_FOUND,
			    "no queue file %s/%s", queue->root, path);
		return NULL;
	}
	if (fd < 0) {
		queue_set_io_error(error, queue, "open", path, errno);
		return NULL;
	}
	priv = queue_file_read(queue, fd, path, content_max, error);
	close(fd);
	return priv != NULL ? &priv->pub : NULL;
}

ImtaQueueEntry *
imta_queue_entry_read(ImtaQueue *queue, const char *path, GError **error)
{
	return queue_entry_read(queue, path, 0, error);
}

ImtaQueueEntry *
imta_queue_entry_load(ImtaQueue *queue, const char *path, GError **error)
{
	return queue_entry_read(queue, path, IMTA_QUEUE_LOAD_CONTENT_MAX, error);
}

void
imta_queue_entry_free(ImtaQueueEntry *entry)
{
	QueueEntryPrivate *priv = (QueueEntryPrivate *)entry;

	if (entry == NULL)
		return;
	g_free(entry->path);
	g_free(entry->id);
	g_free(entry->channel);
	g_free(entry->source);
	g_free(entry->host);
	g_free(entry->last_error);
	imta_message_free(entry->message);
	if (priv->recorded != NULL) {
		for (guint i = 0; i < priv->recorded->len; i++)
			g_free(g_array_index(priv->recorded, QueueRecorded, i).diagnostic);
		g_array_unref(priv->recorded);
	}
	if (priv->warned != NULL)
		g_array_unref(priv->warned);
	if (priv->warnings != NULL)
		g_ptr_array_unref(priv->warnings);
	g_free(priv);
}

/* ---- delay warnings ------------------------------------------------------ */

static void
queue_warning_free(gpointer data)
{
	QueueWarning *warning = data;

	g_free(warning->notice_id);
	g_free(warning->note);
	g_free(warning);
}

gboolean
imta_queue_entry_warned(const ImtaQueueEntry *entry, gint64 age)
{
	const QueueEntryPrivate *priv = (const QueueEntryPrivate *)entry;

	for (guint i = 0; priv->warned != NULL && i < priv->warned->len; i++)
		if (g_array_index(priv->warned, gint64, i) == age)
			return TRUE;
	for (guint i = 0; priv->warnings != NULL && i < priv->warnings->len; i++)
		if (((const QueueWarning *)priv->warnings->pdata[i])->age == age)
			return TRUE;
	return FALSE;
}

void
imta_queue_entry_note_warning(ImtaQueueEntry *entry, gint64 age, const char *notice_id,
			      const char *note)
{
	QueueEntryPrivate *priv = (QueueEntryPrivate *)entry;
	QueueWarning *warning;

	if (imta_queue_entry_warned(entry, age))
		return;
	if (priv->warnings == NULL)
		priv->warnings = g_ptr_array_new_with_free_func(queue_warning_free);
	warning = g_new0(QueueWarning, 1);
	warning->age = age;
	warning->notice_id = g_strdup(notice_id);
	warning->note = g_strdup(note);
	g_ptr_array_add(priv->warnings, warning);
}

/* ---- helpers --------------------------------------------------------------- */

/* entry->path with another attempt count and type. */
static char *
entry_path_with(const ImtaQueueEntry *entry, guint attempts, gboolean held)
{
	g_autofree char *dir = g_path_get_dirname(entry->path);
	char prefix[3];

	imta_queue_attempt_prefix(attempts, prefix);
	return g_strdup_printf("%s/%s%s.%s", dir, prefix, entry->id, held ? "HELD" : "00");
}

static void
entry_set_path(ImtaQueue *queue, ImtaQueueEntry *entry, char *path)
{
	g_autofree char *abs = g_build_filename(queue->root, path, NULL);

	g_free(entry->path);
	entry->path = path;
	imta_message_set_content_file(entry->message, abs, entry->content_offset,
				      entry->content_size);
}

/* Find the entry's file where it was read, or under the other type (an
 * administrator may have held or released it since). */
static gboolean
entry_find(ImtaQueue *queue, ImtaQueueEntry *entry, GError **error)
{
	struct stat st;
	char *other;

	if (entry->path == NULL) {
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_NOT_FOUND,
			    "queue file %s is gone", entry->id);
		return FALSE;
	}
	if (imta_stat_untimed(queue->root_fd, entry->path, AT_SYMLINK_NOFOLLOW, &st) == 0)
		return TRUE;
	if (errno != ENOENT) {
		queue_set_io_error(error, queue, "examine", entry->path, errno);
		return FALSE;
	}
	other = entry_path_with(entry, entry->attempts, !entry->held);
	if (imta_stat_untimed(queue->root_fd, other, AT_SYMLINK_NOFOLLOW, &st) == 0) {
		entry->held = !entry->held;
		entry_set_path(queue, entry, other);
		return TRUE;
	}
	g_free(other);
	g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_NOT_FOUND, "no queue file %s/%s",
		    queue->root, entry->path);
	return FALSE;
}

static gboolean
entry_rename(ImtaQueue *queue, ImtaQueueEntry *entry, char *new_path, GError **error)
{
	if (strcmp(new_path, entry->path) == 0) {
		g_free(new_path);
		return TRUE;
	}
	if (queue_rename_noreplace(queue->root_fd, entry->path, new_path) < 0) {
		queue_set_io_error(error, queue, "rename", entry->path, errno);
		g_free(new_path);
		return FALSE;
	}
	entry_set_path(queue, entry, new_path);
	return queue_sync_parent(queue, entry->path, error);
}

/* Remove the file; with `durable`, also sync its directory so that the
 * removal survives a system crash.  The last attempt of a message removes
 * it without that sync: a crash that undoes the removal can only make the
 * message be delivered again, never lost, and a delivery costs one sync
 * fewer (the kernel writes the directory back within its writeback
 * interval anyway). */
static gboolean
entry_unlink(ImtaQueue *queue, ImtaQueueEntry *entry, gboolean durable, GError **error)
{
	if (unlinkat(queue->root_fd, entry->path, 0) < 0) {
		queue_set_io_error(error, queue, "remove", entry->path, errno);
		return FALSE;
	}
	if (durable && !queue_sync_parent(queue, entry->path, error))
		return FALSE;
	g_clear_pointer(&entry->path, g_free);
	return TRUE;
}

static gboolean
outcome_is_final(ImtaOutcome outcome)
{
	return outcome == IMTA_OUTCOME_DELIVERED || outcome == IMTA_OUTCOME_FAILED;
}

/* The R records for outcomes that changed since the file last said, then
 * the A record closing the attempt. */
static void
entry_format_records(QueueEntryPrivate *priv, GString *out, gint64 now, gint64 next,
		     const char *reason)
{
	ImtaMessage *msg = priv->pub.message;

	for (guint i = 0; i < imta_message_recipient_count(msg); i++) {
		const ImtaRecipient *rcpt = imta_message_recipient(msg, i);
		const QueueRecorded *rec = &g_array_index(priv->recorded, QueueRecorded, i);

		if (rcpt->outcome == IMTA_OUTCOME_NONE)
			continue;
		if (rcpt->outcome == rec->outcome && g_strcmp0(rcpt->diagnostic, rec->diagnostic) == 0)
			continue;
		queue_file_format_outcome(out, now, i, rcpt->outcome, rcpt->diagnostic);
	}
	for (guint i = 0; priv->warnings != NULL && i < priv->warnings->len; i++)
		queue_file_format_warning(out, now, priv->warnings->pdata[i]);
	queue_file_format_attempt(out, now, priv->pub.attempts + 1, next, reason);
}

static void
entry_remember_recorded(QueueEntryPrivate *priv)
{
	ImtaMessage *msg = priv->pub.message;

	for (guint i = 0; i < imta_message_recipient_count(msg); i++) {
		const ImtaRecipient *rcpt = imta_message_recipient(msg, i);
		QueueRecorded *rec = &g_array_index(priv->recorded, QueueRecorded, i);

		if (rcpt->outcome == IMTA_OUTCOME_NONE)
			continue;
		rec->outcome = rcpt->outcome;
		g_free(rec->diagnostic);
		rec->diagnostic = g_strdup(rcpt->diagnostic);
	}
	for (guint i = 0; priv->warnings != NULL && i < priv->warnings->len; i++) {
		gint64 age = ((const QueueWarning *)priv->warnings->pdata[i])->age;

		g_array_append_val(priv->warned, age);
	}
	if (priv->warnings != NULL)
		g_ptr_array_set_size(priv->warnings, 0);
}

/* Append `records` durably; a failed append is cut off again. */
static gboolean
entry_append(ImtaQueue *queue, ImtaQueueEntry *entry, GString *records, gint64 next,
	     GError **error)
{
	goffset content_end = entry->content_offset + entry->content_size;
	struct timespec times[2] = { { 0, UTIME_OMIT }, { (time_t)next, 0 } };
	struct stat st;
	char last = '\n';
	int fd = openat(queue->root_fd, entry->path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0) {
		queue_set_io_error(error, queue, "open", entry->path, errno);
		return FALSE;
	}
	if (imta_fstat_untimed(fd, &st) < 0)
		goto fail;
	/* After a torn append, start on a line of our own. */
	if (st.st_size > content_end && pread(fd, &last, 1, st.st_size - 1) != 1)
		goto fail;
	if (last != '\n')
		g_string_prepend_c(records, '\n');
	if (queue_write_all(fd, records->str, records->len) < 0) {
		int errnum = errno;

		(void)!ftruncate(fd, st.st_size);
		errno = errnum;
		goto fail;
	}
	if (futimens(fd, times) < 0 || fdatasync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		queue_set_io_error(error, queue, "write", entry->path, errno);
		return FALSE;
	}
	return TRUE;
fail:
	queue_set_io_error(error, queue, "append outcomes to", entry->path, errno);
	close(fd);
	return FALSE;
}

/* ---- outcomes ---------------------------------------------------------- */

gboolean
imta_queue_entry_record(ImtaQueue *queue, ImtaQueueEntry *entry, gint64 delay,
			const char *reason, GError **error)
{
	QueueEntryPrivate *priv = (QueueEntryPrivate *)entry;
	ImtaMessage *msg = entry->message;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	gint64 next = now + CLAMP(delay, 0, QUEUE_MAX_DELAY);
	g_autoptr(GString) records = g_string_sized_new(256);
	gboolean all_final = TRUE;
	guint attempts = entry->attempts + 1;

	if (!entry_find(queue, entry, error))
		return FALSE;
	for (guint i = 0; i < imta_message_recipient_count(msg); i++)
		all_final = all_final && outcome_is_final(imta_message_recipient(msg, i)->outcome);
	if (all_final)
		return entry_unlink(queue, entry, FALSE, error);
	entry_format_records(priv, records, now, next, reason);
	if (!entry_append(queue, entry, records, next, error))
		return FALSE;
	entry_remember_recorded(priv);
	entry->next_attempt = next;
	g_free(entry->last_error);
	entry->last_error = reason != NULL && reason[0] != '\0' ? g_strdup(reason) : NULL;
	if (!entry_rename(queue, entry, entry_path_with(entry, attempts, entry->held), error))
		return FALSE;
	entry->attempts = attempts;
	return TRUE;
}

/* ---- administration ------------------------------------------------------ */

gboolean
imta_queue_entry_hold(ImtaQueue *queue, ImtaQueueEntry *entry, GError **error)
{
	if (!entry_find(queue, entry, error))
		return FALSE;
	if (entry->held)
		return TRUE;
	if (!entry_rename(queue, entry, entry_path_with(entry, entry->attempts, TRUE), error))
		return FALSE;
	entry->held = TRUE;
	return TRUE;
}

gboolean
imta_queue_entry_release(ImtaQueue *queue, ImtaQueueEntry *entry, GError **error)
{
	struct timespec times[2] = { { 0, UTIME_OMIT }, { 0, UTIME_NOW } };

	if (!entry_find(queue, entry, error))
		return FALSE;
	if (entry->held) {
		if (!entry_rename(queue, entry, entry_path_with(entry, entry->attempts, FALSE),
				  error))
			return FALSE;
		entry->held = FALSE;
	}
	/* Released means due now. */
	if (utimensat(queue->root_fd, entry->path, times, AT_SYMLINK_NOFOLLOW) < 0) {
		queue_set_io_error(error, queue, "set the time of", entry->path, errno);
		return FALSE;
	}
	entry->next_attempt = 0;
	queue_notify(queue, 'R', entry->path);
	return TRUE;
}

gboolean
imta_queue_entry_delete(ImtaQueue *queue, ImtaQueueEntry *entry, GError **error)
{
	if (!entry_find(queue, entry, error))
		return FALSE;
	return entry_unlink(queue, entry, TRUE, error);
}
