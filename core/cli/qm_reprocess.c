/*
 * qm_reprocess.c - moving a queued message to the reprocess channel for
 * `imsimta qm reprocess`, so that it is routed again by the rules and the
 * directory as they are now.
 *
 * The original is held first, so that no master job starts on it while
 * it is copied; the copy (the recipients still pending, with the same
 * envelope and content) is then queued durably to the reprocess channel,
 * and only then is the held original removed.  A crash before the copy
 * is durable leaves the original held (`qm release` undoes it); a crash
 * after leaves both, the original held: never a loss, and no duplicate
 * delivery unless the administrator releases the original.
 *
 * Messages of a channel marked `held` (the hold channel) are held from
 * the start; they move as they are, and their addresses lose the route
 * through the channel ("@hold-daemon:bob@example.com" is queued as
 * "bob@example.com"), so that they are routed as if never held.
 */
#include "config.h"

#include <string.h>
#include <gio/gio.h>

#include <imta/imta.h>
#include "commands.h"

#define QM_MOVE_BUFFER 65536

static gboolean
qm_move_pending(ImtaOutcome outcome)
{
	return outcome != IMTA_OUTCOME_DELIVERED && outcome != IMTA_OUTCOME_FAILED;
}

static gboolean
qm_move_content(const ImtaMessage *msg, ImtaEnqueue *enq, GError **error)
{
	g_autoptr(GInputStream) in = imta_message_open_content(msg, error);
	g_autofree char *buffer = NULL;
	goffset left = imta_message_size(msg);

	if (in == NULL)
		return FALSE;
	buffer = g_malloc(QM_MOVE_BUFFER);
	while (left > 0) {
		gssize n = g_input_stream_read(in, buffer, (gsize)MIN(left, QM_MOVE_BUFFER), NULL,
					       error);

		if (n < 0)
			return FALSE;
		if (n == 0) {
			g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_FORMAT,
				    "the content ends %" G_GOFFSET_FORMAT " bytes early", left);
			return FALSE;
		}
		if (!imta_enqueue_write(enq, buffer, (gsize)n, error))
			return FALSE;
		left -= n;
	}
	return TRUE;
}

/* Queue the pending recipients of `entry` to `target`; *id_r gets the
 * new queue id, NULL when nothing was pending. */
static gboolean
qm_move_enqueue(ImtaQueue *queue, const ImtaQueueEntry *entry, const ImtaChannel *from,
		const ImtaChannel *target, char **id_r, GError **error)
{
	const ImtaMessage *msg = entry->message;
	g_autoptr(ImtaEnqueue) enq = imta_enqueue_new(queue, entry->source,
						      imta_message_return_path(msg));
	const char *const *files;
	guint added = 0;

	*id_r = NULL;
	if (imta_message_envid(msg) != NULL)
		imta_enqueue_set_envid(enq, imta_message_envid(msg));
	imta_enqueue_set_ret(enq, imta_message_ret(msg));
	imta_enqueue_set_priority(enq, entry->priority);
	for (guint i = 0; i < imta_message_recipient_count(msg); i++) {
		const ImtaRecipient *rcpt = imta_message_recipient(msg, i);
		g_autofree char *address = NULL;

		if (!qm_move_pending(rcpt->outcome))
			continue;
		address = from != NULL ? imta_route_strip_channel(from, rcpt->address)
				       : g_strdup(rcpt->address);
		if (!imta_enqueue_add_recipient(enq, target, address, rcpt->orcpt, rcpt->notify,
						error))
			return FALSE;
		added++;
	}
	if (added == 0)
		return TRUE;
	if (!qm_move_content(msg, enq, error) || !imta_enqueue_commit(enq, error))
		return FALSE;
	files = imta_enqueue_files(enq);
	if (files != NULL && files[0] != NULL) {
		g_autofree char *base = g_path_get_basename(files[0]);
		char id[IMTA_QUEUE_ID_LENGTH + 1];
		guint attempts;
		gboolean held;

		if (imta_queue_parse_name(base, &attempts, id, &held))
			*id_r = g_strdup(id);
	}
	if (*id_r == NULL)
		*id_r = g_strdup("?");
	return TRUE;
}

/* Move a file that was held when queued (a `held` channel's): no job
 * can have it, so it is copied and removed as it is, and a failure
 * leaves it held. */
static gboolean
qm_move_held(ImtaQueue *queue, ImtaQueueEntry *entry, const ImtaChannel *from,
	     const ImtaChannel *target, char **new_id_r, GError **error)
{
	if (!qm_move_enqueue(queue, entry, from, target, new_id_r, error))
		return FALSE;
	return imta_queue_entry_delete(queue, entry, error);
}

gboolean
cli_qm_move(ImtaQueue *queue, const char *path, const ImtaChannel *from,
	    const ImtaChannel *target, char **new_id_r, GError **error)
{
	g_autoptr(ImtaQueueEntry) entry = NULL;
	g_autoptr(ImtaQueueEntry) held = NULL;

	*new_id_r = NULL;
	entry = imta_queue_entry_read(queue, path, error);
	if (entry == NULL)
		return FALSE;
	if (entry->held && imta_channel_holds_mail(from))
		return qm_move_held(queue, entry, from, target, new_id_r, error);
	if (entry->held) {
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_LIMIT,
			    "the message is held; release it first");
		return FALSE;
	}
	if (!imta_queue_entry_hold(queue, entry, error))
		return FALSE;
	/* Read again: an attempt that ended meanwhile recorded outcomes. */
	held = imta_queue_entry_read(queue, entry->path, error);
	if (held == NULL)
		return FALSE;
	if (!qm_move_enqueue(queue, held, from, target, new_id_r, error)) {
		g_autoptr(GError) undo = NULL;

		/* Nothing was queued: the original goes back as it was. */
		if (!imta_queue_entry_release(queue, held, &undo))
			g_prefix_error(error, "%s (and it stays held: %s): ", held->path,
				       undo->message);
		return FALSE;
	}
	return imta_queue_entry_delete(queue, held, error);
}
