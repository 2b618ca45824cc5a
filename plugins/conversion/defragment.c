/*
 * defragment.c - the defragment channel's master: message/partial parts
 * (RFC 2046 5.2.2) for a channel carrying `defragment` wait here, as
 * ordinary queue files of this channel, until every part with the same
 * id, for the same channel and recipients, has arrived; the part that
 * completes the set reassembles the message, queues it for that channel
 * and retires the other parts' files.  A part still waiting after the time
 * limit (the reassemble keyword) is sent on as it is, and so are parts
 * that cannot be reassembled (conflicting totals, a part that is not
 * message/partial after all): nothing waits forever, nothing is lost.
 *
 * The order gives crash safety: the whole message is durable before any
 * part is retired.  A crash in between leaves parts that later find their
 * set incomplete and are sent on by themselves after the time limit: a
 * duplicate, never a loss.  One job at a time should serve the channel
 * (maxjobs 1): two jobs could both complete a set.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include "conversion.h"

/* Queue files of this channel looked at for one part. */
#define DEFRAG_MAX_SCAN 10000
/* Header bytes read from another part to learn its id and number. */
#define DEFRAG_HEAD 65536

typedef struct {
	char *path;
	ImtaQueueEntry *entry;        /* NULL for the message being delivered */
	GBytes *content;
	guint number;
	gint64 created;
} DefragPart;

static void
defrag_part_free(gpointer p)
{
	DefragPart *part = p;

	g_free(part->path);
	if (part->entry != NULL)
		imta_queue_entry_free(part->entry);
	if (part->content != NULL)
		g_bytes_unref(part->content);
	g_free(part);
}

/* The recipients of a message as one comparable string. */
static char *
defrag_recipients_key(const ImtaMessage *msg, gboolean pending_only)
{
	g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func(g_free);
	GString *key = g_string_new(NULL);

	for (guint i = 0; i < imta_message_recipient_count(msg); i++) {
		const ImtaRecipient *r = imta_message_recipient(msg, i);

		if (pending_only && (r->outcome == IMTA_OUTCOME_DELIVERED ||
				     r->outcome == IMTA_OUTCOME_FAILED))
			continue;
		g_ptr_array_add(list, g_ascii_strdown(r->address, -1));
	}
	g_ptr_array_sort(list, (GCompareFunc) g_strcmp0);
	for (guint i = 0; i < list->len; i++)
		g_string_append_printf(key, "%s\n", (const char *) g_ptr_array_index(list, i));
	return g_string_free(key, FALSE);
}

typedef struct {
	GPtrArray *paths;
} DefragScan;

static gboolean
defrag_visit(const char *path, guint attempts, gboolean held, gpointer user_data)
{
	DefragScan *scan = user_data;

	if (!held)
		g_ptr_array_add(scan->paths, g_strdup(path));
	return scan->paths->len < DEFRAG_MAX_SCAN;
}

static GBytes *
defrag_read_head(const ImtaQueueEntry *entry, gboolean whole, GError **error)
{
	return imta_message_read_content(entry->message,
					 whole ? (gsize)CONVERSION_MAX_MESSAGE : DEFRAG_HEAD, error);
}

/* The other queue files of this channel holding parts of the same set. */
static GPtrArray *
defrag_find_set(ConvChannelJob *cj, const ImtaMessage *msg, const ImtaMimePartial *info,
		gint64 *self_created_r, GError **error)
{
	ImtaQueue *queue = conversion_queue(cj, error);
	GPtrArray *found = g_ptr_array_new_with_free_func(defrag_part_free);
	g_autofree char *rkey = defrag_recipients_key(msg, FALSE);
	const char *onward = imta_message_onward_channel(msg);
	DefragScan scan = { g_ptr_array_new_with_free_func(g_free) };

	if (queue == NULL ||
	    !imta_queue_scan_channel(queue, cj->channel->name, FALSE, defrag_visit, &scan, error)) {
		g_ptr_array_unref(scan.paths);
		g_ptr_array_unref(found);
		return NULL;
	}
	for (guint i = 0; i < scan.paths->len; i++) {
		const char *path = g_ptr_array_index(scan.paths, i);
		g_autoptr(GError) local = NULL;
		g_autoptr(ImtaQueueEntry) entry = imta_queue_entry_read(queue, path, &local);
		g_autoptr(GBytes) head = NULL;
		g_autofree char *key = NULL;
		ImtaMimePartial other = { 0 };
		const char *other_onward;
		gsize hl = 0;
		const char *h;
		DefragPart *part;

		if (entry == NULL)
			continue;	/* gone meanwhile, or not ours to judge */
		if (strcmp(entry->id, imta_message_id(msg)) == 0) {
			*self_created_r = entry->created;
			continue;
		}
		other_onward = imta_message_onward_channel(entry->message);
		key = defrag_recipients_key(entry->message, TRUE);
		if (g_strcmp0(other_onward, onward) != 0 || strcmp(key, rkey) != 0)
			continue;
		head = defrag_read_head(entry, FALSE, NULL);
		if (head == NULL)
			continue;
		h = g_bytes_get_data(head, &hl);
		if (!imta_mime_partial_parse(h, hl, &other, NULL))
			continue;
		if (strcmp(other.id, info->id) == 0) {
			part = g_new0(DefragPart, 1);
			part->path = g_strdup(path);
			part->number = other.number;
			part->created = entry->created;
			part->entry = g_steal_pointer(&entry);
			g_ptr_array_add(found, part);
		}
		imta_mime_partial_clear(&other);
	}
	g_ptr_array_unref(scan.paths);
	return found;
}

/* Mark every recipient of another part's file done; the file goes. */
static void
defrag_retire(ConvChannelJob *cj, DefragPart *part, const char *text)
{
	g_autoptr(GError) error = NULL;
	ImtaMessage *m = part->entry->message;

	for (guint i = 0; i < imta_message_recipient_count(m); i++) {
		/* The entry is ours: imta_queue_entry_record() records what its
		 * recipients say (queue.h). */
		ImtaRecipient *r = (ImtaRecipient *) imta_message_recipient(m, i);

		if (r->outcome == IMTA_OUTCOME_DELIVERED || r->outcome == IMTA_OUTCOME_FAILED)
			continue;
		r->outcome = IMTA_OUTCOME_DELIVERED;
		g_free(r->diagnostic);
		r->diagnostic = g_strdup(text);
	}
	if (!imta_queue_entry_record(cj->queue, part->entry, 0, text, &error))
		imta_log(IMTA_LOG_WARNING, "%s: cannot retire part file %s: %s; it will be sent "
			 "on by itself later", cj->channel->name, part->path, error->message);
}

static void
defrag_report(ConvChannelJob *cj, ImtaMessage *msg, ImtaOutcome outcome, const char *text)
{
	for (guint i = 0; i < imta_message_recipient_count(msg); i++)
		imta_master_job_report(cj->job, msg, i, outcome, text);
}

/* Send this part (or anything that is no part) on unchanged. */
static void
defrag_pass(ConvChannelJob *cj, ImtaMessage *msg, GBytes *content, const ImtaChannel *onward,
	    const char *why)
{
	g_autoptr(GArray) all = g_array_new(FALSE, FALSE, sizeof(guint));
	g_autoptr(GError) error = NULL;
	g_autofree char *id = NULL;
	g_autofree char *text = NULL;

	for (guint i = 0; i < imta_message_recipient_count(msg); i++)
		g_array_append_val(all, i);
	if (!conversion_enqueue(cj, msg, content, onward, all, NULL, &id, &error)) {
		text = g_strdup_printf("4.3.0 cannot queue for %s: %s", onward->name,
				       error->message);
		defrag_report(cj, msg, IMTA_OUTCOME_RETRY, text);
		return;
	}
	text = g_strdup_printf("2.0.0 %s; sent on to %s as %s", why, onward->name, id);
	imta_log(IMTA_LOG_INFO, "%s: message %s: %s", cj->channel->name, imta_message_id(msg),
		 text);
	defrag_report(cj, msg, IMTA_OUTCOME_DELIVERED, text);
}

static GString *
defrag_missing(const GPtrArray *set, const ImtaMimePartial *info, guint total)
{
	GString *text = g_string_new(NULL);
	guint listed = 0;

	for (guint k = 1; k <= total && listed < 10; k++) {
		gboolean have = k == info->number;

		for (guint i = 0; i < set->len && !have; i++)
			have = ((const DefragPart *) g_ptr_array_index(set, i))->number == k;
		if (!have) {
			g_string_append_printf(text, "%s%u", listed > 0 ? ", " : "", k);
			listed++;
		}
	}
	return text;
}

/* Try to complete the set with this part; TRUE when the message was
 * reassembled and queued (the other parts retired). */
static gboolean
defrag_try_assemble(ConvChannelJob *cj, ImtaMessage *msg, GBytes *content,
		    const ImtaChannel *onward, GPtrArray *set, guint total, GError **error)
{
	g_autoptr(GPtrArray) pieces = g_ptr_array_new();
	g_autoptr(GPtrArray) used = g_ptr_array_new();
	g_autoptr(GArray) all = g_array_new(FALSE, FALSE, sizeof(guint));
	g_autoptr(GBytes) whole = NULL;
	g_autofree char *id = NULL;
	g_autofree char *text = NULL;
	ImtaMimePartial self = { 0 };
	gsize len = 0;
	const char *d = g_bytes_get_data(content, &len);
	gboolean ok = FALSE;

	if (!imta_mime_partial_parse(d, len, &self, error))
		return FALSE;
	g_ptr_array_add(pieces, content);
	/* One file per number; duplicates are retired with the rest. */
	for (guint k = 1; k <= total; k++) {
		if (k == self.number)
			continue;
		for (guint i = 0; i < set->len; i++) {
			DefragPart *part = g_ptr_array_index(set, i);

			if (part->number != k)
				continue;
			part->content = defrag_read_head(part->entry, TRUE, error);
			if (part->content == NULL)
				goto out;
			g_ptr_array_add(pieces, part->content);
			break;
		}
	}
	whole = imta_mime_partial_assemble((GBytes *const *) pieces->pdata, pieces->len, error);
	if (whole == NULL)
		goto out;
	for (guint i = 0; i < imta_message_recipient_count(msg); i++)
		g_array_append_val(all, i);
	if (!conversion_enqueue(cj, msg, whole, onward, all, NULL, &id, error))
		goto out;
	text = g_strdup_printf("2.0.0 reassembled from %u parts (id %s); queued to %s as %s",
			       total, self.id, onward->name, id);
	imta_log(IMTA_LOG_INFO, "%s: message %s: %s", cj->channel->name, imta_message_id(msg),
		 text);
	for (guint i = 0; i < set->len; i++)
		defrag_retire(cj, g_ptr_array_index(set, i), text);
	defrag_report(cj, msg, IMTA_OUTCOME_DELIVERED, text);
	ok = TRUE;
out:
	imta_mime_partial_clear(&self);
	return ok;
}

/* One job's channel and how long a set may wait for its parts. */
typedef struct {
	ConvChannelJob *cj;
	gint64 expiry;
} DefragRun;

static void
defrag_message(ImtaMasterJob *job, ImtaMessage *msg, gpointer data)
{
	const DefragRun *run = data;
	ConvChannelJob *cj = run->cj;
	gint64 expiry = run->expiry;
	const char *onward_name = imta_message_onward_channel(msg);
	const ImtaChannel *onward = onward_name != NULL
					    ? imta_cnf_channel_by_name(cj->config->cnf, onward_name)
					    : NULL;
	g_autoptr(GBytes) content = NULL;
	g_autoptr(GPtrArray) set = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GString) missing = NULL;
	g_autofree char *text = NULL;
	ImtaMimePartial info = { 0 };
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	gint64 oldest = now;
	guint total;
	gsize len = 0;
	const char *d;

	if (onward == NULL) {
		text = g_strdup_printf("4.3.5 no channel to go on to (%s)",
				       onward_name != NULL ? onward_name : "none recorded");
		defrag_report(cj, msg, IMTA_OUTCOME_RETRY, text);
		return;
	}
	content = conversion_read_content(msg, &error);
	if (content == NULL) {
		text = g_strdup_printf("4.3.0 cannot read the message: %s", error->message);
		defrag_report(cj, msg, IMTA_OUTCOME_RETRY, text);
		return;
	}
	d = g_bytes_get_data(content, &len);
	if (!imta_mime_partial_parse(d, len, &info, &error)) {
		text = g_strdup_printf("not reassembled (%s)", error->message);
		defrag_pass(cj, msg, content, onward, text);
		return;
	}
	set = defrag_find_set(cj, msg, &info, &oldest, &error);
	if (set == NULL) {
		text = g_strdup_printf("4.3.0 cannot look for the other parts: %s", error->message);
		defrag_report(cj, msg, IMTA_OUTCOME_RETRY, text);
		imta_mime_partial_clear(&info);
		return;
	}
	total = info.total;
	for (guint i = 0; i < set->len; i++) {
		DefragPart *part = g_ptr_array_index(set, i);
		g_autoptr(GBytes) head = defrag_read_head(part->entry, FALSE, NULL);
		ImtaMimePartial other = { 0 };
		gsize hl = 0;
		const char *h = head != NULL ? g_bytes_get_data(head, &hl) : NULL;

		oldest = MIN(oldest, part->created);
		if (h != NULL && imta_mime_partial_parse(h, hl, &other, NULL) && other.total > 0)
			total = total == 0 ? other.total : total;
		imta_mime_partial_clear(&other);
	}
	missing = total > 0 ? defrag_missing(set, &info, total) : g_string_new("the last");
	if (total > 0 && missing->len == 0) {
		if (defrag_try_assemble(cj, msg, content, onward, set, total, &error))
			goto done;
		text = g_strdup_printf("parts of id %s not reassembled (%s)", info.id,
				       error->message);
		defrag_pass(cj, msg, content, onward, text);
		goto done;
	}
	/* Still incomplete: wait, unless this set has waited long enough. */
	if (now - oldest >= expiry) {
		text = g_strdup_printf("part %u of id %s: part(s) %s still missing after the time "
				       "limit", info.number, info.id, missing->str);
		defrag_pass(cj, msg, content, onward, text);
		goto done;
	}
	text = g_strdup_printf("4.4.0 part %u of id %s waits for part(s) %s", info.number, info.id,
			       missing->str);
	defrag_report(cj, msg, IMTA_OUTCOME_RETRY, text);
done:
	imta_mime_partial_clear(&info);
}

ImtaEntryStatus
defragment_master(ConvChannelJob *cj)
{
	g_autoptr(GError) error = NULL;
	DefragRun run = { cj, DEFRAGMENT_DEFAULT_EXPIRY };

	if (!defragment_expiry(cj->channel, &run.expiry, &error)) {
		imta_log(IMTA_LOG_ERROR, "%s: %s", cj->channel->name, error->message);
		return IMTA_ENTRY_SOFTWARE;
	}
	return imta_master_job_each(cj->job, defrag_message, &run);
}
