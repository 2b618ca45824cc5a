/*
 * queue_source.c - what a channel's master job delivers from: queue files
 * the job controller hands out, read and recorded through the queue store.
 *
 * The order in finish() is the crash-safety contract: outcomes are made
 * durable in the queue file first, and only then is the controller told
 * (DONE).  A crash in between leaves a file whose delivered recipients are
 * already recorded, so nothing is delivered twice because of it; a crash
 * after delivery but before the record is durable is the one window in
 * which a recipient can get a message twice.
 *
 * Notices come before both: a failure notice is queued durably before the
 * failures it reports are recorded.  A crash in between leaves the
 * recipients pending, so the next attempt fails them again and sends a
 * second notice; no failure ever goes unreported.  Delay warnings are
 * remembered ("W" records) in the same append as the outcomes, with the
 * same consequence: at worst a warning twice, never none.
 */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/imta.h>
#include <imta/xtext.h>
#include <imta/queue.h>
#include <imta/notice.h>
#include <imta/jc_client.h>
#include <imta/mail_log.h>
#include <imta/mime.h>
#include "queue_source.h"

struct _MasterSource {
	const ImtaConfig *config;
	const ImtaChannel *channel;
	ImtaQueue *queue;
	ImtaJcClient *jc;
	ImtaMasterJob *job;
	volatile sig_atomic_t *stop;
	volatile sig_atomic_t *reopen;
	GHashTable *deliveries;     /* ImtaMessage * -> MasterDelivery *, owned */
	GQueue unanswered;          /* paths of the DONE lines whose reply is unread */
	gboolean more_due;          /* the last MSG said MORE */
	gboolean disconnected;
	guint finished;
};

/* DONE lines sent before their replies are read, at most. */
#define MASTER_MAX_UNANSWERED 64

/* ---- decisions ------------------------------------------------------ */

gint64
master_notices_unit(gint64 return_units)
{
	return return_units == 1 ? 3600 : 86400;
}

gboolean
master_notices_expired(gint64 created, gint64 now, const gint *ages, guint n_ages,
		       gint64 return_units)
{
	gint64 last;

	if (n_ages == 0 || ages[n_ages - 1] <= 0)
		return FALSE;
	last = (gint64)ages[n_ages - 1] * master_notices_unit(return_units);
	return now - created >= last;
}

gint64
master_retry_delay(const ImtaChannel *channel, ImtaPriority priority, guint attempts)
{
	/* Attempt numbers count from 1 for the first failure; the count in
	 * the file name saturates long before guint wraps. */
	return imta_channel_backoff(channel, priority, MIN(attempts, G_MAXUINT - 1) + 1);
}

static gboolean
master_outcome_final(ImtaOutcome outcome)
{
	return outcome == IMTA_OUTCOME_DELIVERED || outcome == IMTA_OUTCOME_FAILED;
}

guint
master_expire_pending(ImtaMasterJob *job, ImtaMessage *msg)
{
	guint n = imta_message_recipient_count(msg);
	guint changed = 0;

	for (guint i = 0; i < n; i++) {
		const ImtaRecipient *rcpt = imta_message_recipient(msg, i);
		g_autofree char *diagnostic = NULL;

		if (master_outcome_final(rcpt->outcome))
			continue;
		if (rcpt->diagnostic != NULL && rcpt->diagnostic[0] != '\0')
			diagnostic = g_strdup_printf("%s; last error: %s", MASTER_EXPIRED_DIAGNOSTIC,
						     rcpt->diagnostic);
		else
			diagnostic = g_strdup(MASTER_EXPIRED_DIAGNOSTIC);
		imta_master_job_report(job, msg, i, IMTA_OUTCOME_FAILED, diagnostic);
		changed++;
	}
	return changed;
}

void
master_count_outcomes(const ImtaMessage *msg, guint *delivered_r, guint *failed_r, guint *retry_r)
{
	guint n = imta_message_recipient_count(msg);

	*delivered_r = *failed_r = *retry_r = 0;
	for (guint i = 0; i < n; i++) {
		switch (imta_message_recipient(msg, i)->outcome) {
		case IMTA_OUTCOME_DELIVERED:
			(*delivered_r)++;
			break;
		case IMTA_OUTCOME_FAILED:
			(*failed_r)++;
			break;
		case IMTA_OUTCOME_RETRY:
		case IMTA_OUTCOME_NONE:
			(*retry_r)++;
			break;
		}
	}
}

char *
master_done_line(const char *path, const char *new_path, guint delivered, guint failed,
		 guint retry, gint64 next_attempt)
{
	g_autofree char *xpath = imta_xtext_encode(path, -1);
	g_autofree char *xnew = new_path != NULL ? imta_xtext_encode(new_path, -1) : g_strdup("-");

	return g_strdup_printf("DONE %s %s %u %u %u %" G_GINT64_FORMAT, xpath, xnew, delivered,
			       failed, retry, new_path != NULL ? next_attempt : 0);
}

/* A path the controller may hand out: relative, no empty, "." or ".."
 * component, and its last component a queue file name. */
static gboolean
master_path_acceptable(const char *path)
{
	g_auto(GStrv) parts = NULL;
	char id[IMTA_QUEUE_ID_LENGTH + 1];
	guint attempts, n;
	gboolean held;

	if (path[0] == '\0' || path[0] == '/' || strlen(path) > IMTA_JC_MAX_LINE)
		return FALSE;
	parts = g_strsplit(path, "/", -1);
	n = g_strv_length(parts);
	for (guint i = 0; i < n; i++)
		if (parts[i][0] == '\0' || strcmp(parts[i], ".") == 0 ||
		    strcmp(parts[i], "..") == 0)
			return FALSE;
	return n >= 2 && imta_queue_parse_name(parts[n - 1], &attempts, id, &held);
}

gboolean
master_parse_next_reply(const char *line, MasterReply *reply_r, char **path_r, gboolean *more_r,
			GError **error)
{
	g_autofree char *path = NULL;
	const char *space;

	*path_r = NULL;
	*more_r = FALSE;
	if (strcmp(line, "EXIT") == 0) {
		*reply_r = MASTER_REPLY_EXIT;
		return TRUE;
	}
	if (strcmp(line, "NONE") == 0) {
		*reply_r = MASTER_REPLY_NONE;
		return TRUE;
	}
	space = g_str_has_prefix(line, "MSG ") ? strchr(line + 4, ' ') : NULL;
	if (!g_str_has_prefix(line, "MSG ") || (space != NULL && strcmp(space, " MORE") != 0)) {
		g_set_error(error, IMTA_JC_ERROR, IMTA_JC_ERROR_PROTOCOL,
			    "expected \"MSG <path>\" or \"EXIT\" from the job controller, got \"%s\"",
			    line);
		return FALSE;
	}
	path = imta_xtext_decode(line + 4, space != NULL ? space - (line + 4) : -1, NULL, NULL);
	if (path == NULL || !master_path_acceptable(path)) {
		g_set_error(error, IMTA_JC_ERROR, IMTA_JC_ERROR_PROTOCOL,
			    "the job controller handed out an invalid queue path \"%s\"", line + 4);
		return FALSE;
	}
	*reply_r = MASTER_REPLY_MSG;
	*path_r = g_steal_pointer(&path);
	*more_r = space != NULL;
	return TRUE;
}

char
master_outcome_code(ImtaOutcome outcome)
{
	switch (outcome) {
	case IMTA_OUTCOME_DELIVERED:
		return 'D';
	case IMTA_OUTCOME_FAILED:
		return 'R';
	case IMTA_OUTCOME_RETRY:
	case IMTA_OUTCOME_NONE:
		break;
	}
	return 'Q';
}

gint64
master_blocks(goffset size, gint64 block_size)
{
	if (block_size <= 0)
		block_size = 1024;
	if (size <= 0)
		return 0;
	return (size - 1) / block_size + 1;
}

/* ---- the source ----------------------------------------------------- */

/* A message handed to the plugin: the pending recipients of a queue
 * entry, with map[i] the entry's index of the plugin's recipient i. */
typedef struct {
	ImtaQueueEntry *entry;
	ImtaMessage *msg;
	GArray *map;            /* guint */
} MasterDelivery;

static void
master_delivery_free(gpointer data)
{
	MasterDelivery *delivery = data;

	imta_queue_entry_free(delivery->entry);
	imta_message_free(delivery->msg);
	g_array_unref(delivery->map);
	g_free(delivery);
}

MasterSource *
master_source_new(const ImtaConfig *config, const ImtaChannel *channel, ImtaQueue *queue,
		  ImtaJcClient *jc, volatile sig_atomic_t *stop, volatile sig_atomic_t *reopen)
{
	MasterSource *source = g_new0(MasterSource, 1);

	source->config = config;
	source->channel = channel;
	source->queue = queue;
	source->jc = jc;
	source->stop = stop;
	source->reopen = reopen;
	source->deliveries = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
						   master_delivery_free);
	return source;
}

void
master_source_set_job(MasterSource *source, ImtaMasterJob *job)
{
	source->job = job;
}

gboolean
master_source_disconnected(const MasterSource *source)
{
	return source->disconnected;
}

guint
master_source_finished(const MasterSource *source)
{
	return source->finished;
}

static gint64
master_now(void)
{
	return g_get_real_time() / G_USEC_PER_SEC;
}

/* The connection to the controller failed, after the DONE of `after`
 * (NULL: while asking for work). */
static void
master_lost(MasterSource *source, const char *after, const GError *error)
{
	if (after != NULL)
		imta_log(IMTA_LOG_WARNING, "%s: job controller connection lost after %s: %s",
			 source->channel->name, after, error->message);
	else
		imta_log(IMTA_LOG_WARNING, "%s: job controller connection lost: %s",
			 source->channel->name, error->message);
	source->disconnected = TRUE;
	g_queue_clear_full(&source->unanswered, g_free);
}

/* Read the replies to the DONE lines sent so far.  They hold nothing but
 * an acknowledgement, so they are read when the connection is used next,
 * not waited for one by one. */
static void
master_read_done_replies(MasterSource *source)
{
	while (!source->disconnected && source->unanswered.length > 0) {
		g_autoptr(GError) error = NULL;
		g_autofree char *reply = imta_jc_client_read_reply(source->jc, &error);
		g_autofree char *path = NULL;

		/* Stopping: what the replies say changes nothing. */
		if (g_error_matches(error, IMTA_JC_ERROR, IMTA_JC_ERROR_INTERRUPTED))
			break;
		path = g_queue_pop_head(&source->unanswered);
		if (reply == NULL && g_error_matches(error, IMTA_JC_ERROR, IMTA_JC_ERROR_REFUSED))
			imta_log(IMTA_LOG_WARNING, "%s: DONE %s: %s", source->channel->name, path,
				 error->message);
		else if (reply == NULL)
			master_lost(source, path, error);
		else if (strcmp(reply, "OK") != 0 && !g_str_has_prefix(reply, "OK "))
			imta_log(IMTA_LOG_WARNING, "%s: unexpected reply to DONE %s: \"%s\"",
				 source->channel->name, path, reply);
	}
}

/* Tell the controller a message is done.  A lost connection is noted and
 * is not an error: the queue file already says everything. */
static void
master_send_done(MasterSource *source, const char *path, const char *new_path, guint delivered,
		 guint failed, guint retry, gint64 next_attempt)
{
	g_autofree char *line = master_done_line(path, new_path, delivered, failed, retry,
						 next_attempt);
	g_autoptr(GError) error = NULL;

	if (source->disconnected)
		return;
	if (!imta_jc_client_send(source->jc, line, &error)) {
		master_lost(source, path, error);
		return;
	}
	g_queue_push_tail(&source->unanswered, g_strdup(path));
	if (source->unanswered.length >= MASTER_MAX_UNANSWERED)
		master_read_done_replies(source);
}

/* Larger messages are handed on without the content keywords applied. */
#define MASTER_MAX_CONVERT (G_GINT64_CONSTANT(64) * 1024 * 1024)

/* The channel's content keywords (charset7, charset8, charsetesc; sevenbit)
 * apply to what its program gets; the queue file keeps the message as it
 * came, so a changed keyword changes queued mail too. */
static void
master_content_keywords(const MasterSource *source, ImtaMessage *msg,
			const ImtaQueueEntry *entry)
{
	const ImtaChannel *ch = source->channel;
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) content = NULL;
	g_autoptr(GBytes) labelled = NULL;
	g_autoptr(GBytes) seven = NULL;
	const char *buf;
	gsize got = 0;

	if (ch->charset7 == NULL && ch->charset8 == NULL && ch->charsetesc == NULL &&
	    ch->eightbit != IMTA_EIGHT_SEVENBIT)
		return;
	if (entry->content_size > MASTER_MAX_CONVERT)
		return;
	content = imta_message_read_content(msg, (gsize)entry->content_size, &error);
	if (content == NULL) {
		imta_log(IMTA_LOG_WARNING, "%s: %s: content keywords not applied: %s",
			 ch->name, entry->path, error != NULL ? error->message : "unreadable");
		return;
	}
	buf = g_bytes_get_data(content, &got);
	if (buf == NULL)
		buf = ""; /* an empty message */
	labelled = imta_mime_label_charsets(buf, got, ch->charset7, ch->charset8, ch->charsetesc);
	if (ch->eightbit == IMTA_EIGHT_SEVENBIT) {
		gsize n = 0;
		const char *d = labelled != NULL ? g_bytes_get_data(labelled, &n) : buf;

		seven = imta_mime_downgrade_7bit(d, labelled != NULL ? n : got);
	}
	if (seven != NULL)
		imta_message_set_content_bytes(msg, seven);
	else if (labelled != NULL)
		imta_message_set_content_bytes(msg, labelled);
}

/* Only recipients still pending go to the plugin: one delivered or failed
 * in an earlier attempt is never handed out again, whatever the plugin
 * does with what it gets. */
static MasterDelivery *
master_delivery_new(const MasterSource *source, ImtaQueueEntry *entry)
{
	MasterDelivery *delivery = g_new0(MasterDelivery, 1);
	const ImtaMessage *whole = entry->message;
	guint n = imta_message_recipient_count(whole);

	delivery->entry = entry;
	delivery->msg = imta_message_new(entry->id, imta_message_return_path(whole));
	delivery->map = g_array_new(FALSE, FALSE, sizeof(guint));
	imta_message_set_envid(delivery->msg, imta_message_envid(whole));
	imta_message_set_ret(delivery->msg, imta_message_ret(whole));
	imta_message_set_priority(delivery->msg, imta_message_priority(whole));
	imta_message_set_source_channel(delivery->msg, imta_message_source_channel(whole));
	imta_message_set_onward_channel(delivery->msg, imta_message_onward_channel(whole));
	imta_message_share_content(delivery->msg, whole);
	for (guint i = 0; i < n; i++) {
		const ImtaRecipient *rcpt = imta_message_recipient(whole, i);

		if (master_outcome_final(rcpt->outcome))
			continue;
		imta_message_add_recipient(delivery->msg, rcpt->address, rcpt->orcpt, rcpt->notify);
		g_array_append_val(delivery->map, i);
	}
	if (delivery->map->len > 0)
		master_content_keywords(source, delivery->msg, entry);
	return delivery;
}

/* Read the file the controller handed out; a file we cannot deliver from
 * is reported back here and NULL returned, so the caller asks again. */
static ImtaQueueEntry *
master_open_entry(MasterSource *source, const char *path)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaQueueEntry) entry = imta_queue_entry_load(source->queue, path, &error);
	const char *name = source->channel->name;
	gint64 delay = master_retry_delay(source->channel, IMTA_PRIORITY_NORMAL, 0);

	if (entry == NULL) {
		if (g_error_matches(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_NOT_FOUND)) {
			/* Delivered by an earlier job, deleted or held by the
			 * administrator meanwhile: nothing left to do. */
			imta_log(IMTA_LOG_INFO, "%s: %s is gone: %s", name, path, error->message);
			master_send_done(source, path, NULL, 0, 0, 0, 0);
			return NULL;
		}
		/* Malformed or unreadable: keep it for the administrator (imsimta
		 * qm read/delete) and look again after the first retry interval. */
		imta_log(IMTA_LOG_ERROR, "%s: cannot use queue file %s, retrying in %" G_GINT64_FORMAT
			 " s: %s", name, path, delay, error->message);
		master_send_done(source, path, path, 0, 0, 0, master_now() + delay);
		return NULL;
	}
	if (entry->held) {
		imta_log(IMTA_LOG_INFO, "%s: %s is held; it waits for imsimta qm release", name,
			 path);
		master_send_done(source, path, NULL, 0, 0, 0, 0);
		return NULL;
	}
	if (entry->channel == NULL || strcmp(entry->channel, name) != 0) {
		imta_log(IMTA_LOG_ERROR, "%s: queue file %s belongs to channel %s, not to this job; "
			 "retrying in %" G_GINT64_FORMAT " s", name, path,
			 entry->channel != NULL ? entry->channel : "(none)", delay);
		master_send_done(source, path, path, 0, 0, 0, master_now() + delay);
		return NULL;
	}
	return g_steal_pointer(&entry);
}

/* A file whose recipients are all final already (a crash came between
 * the last record and the unlink): finish it without the plugin. */
static void
master_finish_settled(MasterSource *source, ImtaQueueEntry *entry)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = g_strdup(entry->path);
	gint64 delay = master_retry_delay(source->channel, entry->priority, entry->attempts);

	if (!imta_queue_entry_record(source->queue, entry, delay, "every recipient final",
				     &error)) {
		imta_log(IMTA_LOG_ERROR, "%s %s: cannot remove %s: %s", entry->id,
			 source->channel->name, path, error->message);
		master_send_done(source, path, path, 0, 0, 0, master_now() + delay);
		return;
	}
	imta_log(IMTA_LOG_INFO, "%s %s: every recipient was final already; %s removed", entry->id,
		 source->channel->name, path);
	master_send_done(source, path, NULL, 0, 0, 0, 0);
}

static void
master_next_failed(MasterSource *source, const GError *error)
{
	if (g_error_matches(error, IMTA_JC_ERROR, IMTA_JC_ERROR_INTERRUPTED)) {
		imta_log(IMTA_LOG_NOTICE, "%s: stopping on a signal", source->channel->name);
		return;
	}
	master_lost(source, NULL, error);
}

/* After SIGHUP (the job controller passes it on): reopen the process log
 * and the message log, which may have been rotated. */
static void
master_source_reopen_if_asked(MasterSource *source)
{
	if (source->reopen == NULL || !*source->reopen)
		return;
	*source->reopen = 0;
	imta_log_reopen();
	imta_mail_log_reopen();
}

/* The next message: with `wait`, a long poll (NULL at the end of work);
 * without, NULL and *idle_r TRUE when nothing is due now. */
static ImtaMessage *
master_source_take(MasterSource *source, gboolean wait, gboolean *idle_r, GError **error)
{
	*idle_r = FALSE;
	for (guint bad = 0; bad < MASTER_MAX_BAD_FILES; bad++) {
		g_autofree char *reply = NULL;
		g_autofree char *path = NULL;
		g_autoptr(GError) local = NULL;
		MasterDelivery *delivery;
		ImtaQueueEntry *entry;
		MasterReply kind;

		if (source->disconnected || (source->stop != NULL && *source->stop))
			return NULL;
		master_source_reopen_if_asked(source);
		if (!imta_jc_client_send(source->jc, wait ? "NEXT" : "NEXT NOWAIT", &local)) {
			master_next_failed(source, local);
			return NULL;
		}
		/* The replies to earlier DONE lines come first. */
		master_read_done_replies(source);
		if (source->disconnected || source->unanswered.length > 0)
			return NULL; /* lost, or interrupted while reading them */
		reply = imta_jc_client_read_line(source->jc, -1, &local);
		/* The signal may have come during the long wait for work: the
		 * message this answer brings is logged in the new files. */
		master_source_reopen_if_asked(source);
		if (reply == NULL) {
			master_next_failed(source, local);
			return NULL;
		}
		if (!master_parse_next_reply(reply, &kind, &path, &source->more_due, error)) {
			source->disconnected = TRUE;
			return NULL;
		}
		if (kind == MASTER_REPLY_EXIT)
			return NULL;
		if (kind == MASTER_REPLY_NONE) {
			*idle_r = TRUE;
			return NULL;
		}
		entry = master_open_entry(source, path);
		if (entry == NULL)
			continue;
		delivery = master_delivery_new(source, entry);
		if (delivery->map->len == 0) {
			master_finish_settled(source, entry);
			master_delivery_free(delivery);
			continue;
		}
		g_hash_table_insert(source->deliveries, delivery->msg, delivery);
		return delivery->msg;
	}
	g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_LIMIT,
		    "%u unusable queue files in a row; stopping this job", MASTER_MAX_BAD_FILES);
	return NULL;
}

static ImtaMessage *
master_source_next(gpointer data, GError **error)
{
	gboolean idle;

	return master_source_take(data, TRUE, &idle, error);
}

static ImtaMessage *
master_source_try_next(gpointer data, gboolean *idle_r, GError **error)
{
	return master_source_take(data, FALSE, idle_r, error);
}

static gboolean
master_source_more_due(gpointer data)
{
	const MasterSource *source = data;

	return source->more_due;
}

/* The Message-ID for the message log, when it shows them; read while
 * the queue file is still in place. */
static char *
master_message_id(const MasterSource *source, const ImtaMessage *msg)
{
	if (!imta_mail_log_wants_message_id() || !imta_mail_log_enabled(source->channel->name))
		return NULL;
	return imta_mail_log_message_id_of(msg);
}

/* One line per recipient of this attempt in the mail.log spirit:
 * id, source channel, channel, code, blocks, from, ORCPT, address, diagnostic;
 * and the recipient's D, Q or R entry in mail.log itself. */
static void
master_log_recipients(const MasterSource *source, const ImtaQueueEntry *entry,
		      const ImtaMessage *msg, const char *message_id)
{
	g_autofree char *path = g_build_filename(imta_queue_root(source->queue), entry->path,
						 NULL);
	gint64 blocks = master_blocks(imta_message_size(msg),
				      source->config->options != NULL
					      ? source->config->options->block_size
					      : 1024);
	const char *from = imta_message_return_path(msg);
	guint n = imta_message_recipient_count(msg);

	for (guint i = 0; i < n; i++) {
		const ImtaRecipient *rcpt = imta_message_recipient(msg, i);
		g_autofree char *orcpt = rcpt->orcpt != NULL
						 ? g_strdup(rcpt->orcpt)
						 : g_strdup_printf("rfc822;%s", rcpt->address);

		imta_log(IMTA_LOG_INFO, "%s %s %s %c %" G_GINT64_FORMAT " %s %s %s %s",
			 entry->id, entry->source != NULL ? entry->source : "-",
			 source->channel->name, master_outcome_code(rcpt->outcome), blocks,
			 from[0] != '\0' ? from : "<>", orcpt, rcpt->address,
			 rcpt->diagnostic != NULL ? rcpt->diagnostic : "no outcome reported");
		imta_mail_log_entry(&(ImtaMailLogEntry){
			.code = (ImtaMailLogCode)master_outcome_code(rcpt->outcome),
			.source = entry->source,
			.destination = source->channel->name,
			.queue_id = entry->id,
			.size = imta_message_size(msg),
			.from = from,
			.orcpt = rcpt->orcpt,
			.to = rcpt->address,
			.diagnostic = rcpt->diagnostic != NULL ? rcpt->diagnostic
							       : "no outcome reported",
			.message_id = message_id,
			.filename = path,
		});
	}
}

/* The first temporary diagnostic, as the attempt's reason. */
static const char *
master_attempt_reason(const ImtaMessage *msg)
{
	guint n = imta_message_recipient_count(msg);

	for (guint i = 0; i < n; i++) {
		const ImtaRecipient *rcpt = imta_message_recipient(msg, i);

		if (!master_outcome_final(rcpt->outcome))
			return rcpt->diagnostic != NULL ? rcpt->diagnostic
							: "no outcome reported by the channel";
	}
	return "every recipient final";
}

static gint64
master_return_units(const MasterSource *source)
{
	return source->config->options != NULL ? source->config->options->return_units : 0;
}

/* Past the last notices age, what is still pending fails (4.4.7) and is
 * reported in this attempt's failure notice.  TRUE when past that age. */
static gboolean
master_apply_expiry(MasterSource *source, const ImtaQueueEntry *entry, ImtaMessage *msg,
		    gint64 now)
{
	gint ages[IMTA_MAX_NOTICES];
	gint64 units = master_return_units(source);
	guint n_ages = imta_cnf_notices(source->config->cnf, source->channel, entry->priority, ages);
	guint expired;

	if (!master_notices_expired(entry->created, now, ages, n_ages, units))
		return FALSE;
	expired = master_expire_pending(source->job, msg);
	if (expired > 0)
		imta_log(IMTA_LOG_NOTICE, "%s %s: queued for longer than the last notices age "
			 "(%d %s): %u recipient%s failed with %s", entry->id,
			 source->channel->name, ages[n_ages - 1], units == 1 ? "hours" : "days",
			 expired, expired == 1 ? "" : "s", MASTER_EXPIRED_DIAGNOSTIC);
	return TRUE;
}

/* ---- notices ---------------------------------------------------------- */

static ImtaNoticeContext
master_notice_context(const MasterSource *source)
{
	return (ImtaNoticeContext){ source->config, source->queue, source->channel, 0, NULL,
				    NULL };
}

/* NOTIFY as given in ESMTP ("NEVER", "SUCCESS,DELAY"). */
static char *
master_notify_text(guint notify)
{
	GString *out = g_string_new(NULL);

	if (notify & IMTA_NOTIFY_NEVER)
		g_string_append(out, "NEVER");
	if (notify & IMTA_NOTIFY_SUCCESS)
		g_string_append(out, ",SUCCESS");
	if (notify & IMTA_NOTIFY_FAILURE)
		g_string_append(out, ",FAILURE");
	if (notify & IMTA_NOTIFY_DELAY)
		g_string_append(out, ",DELAY");
	if (out->str[0] == ',')
		g_string_erase(out, 0, 1);
	return g_string_free(out, FALSE);
}

/* The message log's W and K entries: W for each recipient a delay
 * warning reports; K for each one a failure notice or delay warning was
 * due for but not sent, because of its NOTIFY or the empty return path.
 * A failure notice sent needs no line: the recipient's R line stands for
 * it.  Success notices are asked for, never due. */
static void
master_mail_log_notice(const MasterSource *source, const ImtaQueueEntry *entry,
		       ImtaNoticeKind kind, const ImtaNoticeEvent *event,
		       const ImtaNoticeOutcome *outcome)
{
	const char *what = imta_notice_kind_name(kind);
	g_autofree char *path = NULL;
	g_autofree char *message_id = NULL;

	if (kind == IMTA_NOTICE_SUCCESS || !imta_mail_log_enabled(source->channel->name))
		return;
	path = g_build_filename(imta_queue_root(source->queue), entry->path, NULL);
	message_id = master_message_id(source, entry->message);
	for (guint i = 0; i < event->n_indices; i++) {
		const ImtaRecipient *rcpt = imta_message_recipient(entry->message,
								   event->indices[i]);
		g_autofree char *notify = master_notify_text(rcpt->notify);
		g_autofree char *diagnostic = NULL;
		ImtaMailLogCode code = IMTA_MAIL_LOG_NOT_NOTIFIED;

		if (outcome->result == IMTA_NOTICE_NULL_RETURN_PATH)
			diagnostic = g_strdup_printf("no %s: the return path is empty", what);
		else if (!imta_notice_wanted(kind, rcpt->notify))
			diagnostic = g_strdup_printf("no %s: NOTIFY=%s", what, notify);
		else if (outcome->result == IMTA_NOTICE_SENT && kind == IMTA_NOTICE_DELAY) {
			code = IMTA_MAIL_LOG_WARNED;
			diagnostic = g_strdup_printf("%s queued as %s to %s", what, outcome->ids[0],
						     outcome->recipient);
		} else
			continue;
		imta_mail_log_entry(&(ImtaMailLogEntry){
			.code = code,
			.source = entry->source,
			.destination = source->channel->name,
			.queue_id = entry->id,
			.size = entry->content_size,
			.from = imta_message_return_path(entry->message),
			.orcpt = rcpt->orcpt,
			.to = rcpt->address,
			.diagnostic = diagnostic,
			.message_id = message_id,
			.filename = path,
		});
	}
}

/* `why` (may be "") follows the kind of notice in the log line. */
static void
master_log_notice(const MasterSource *source, const ImtaQueueEntry *entry, ImtaNoticeKind kind,
		  const char *why, const ImtaNoticeEvent *event, const ImtaNoticeOutcome *outcome)
{
	const char *what = imta_notice_kind_name(kind);
	const char *channel = source->channel->name;

	master_mail_log_notice(source, entry, kind, event, outcome);
	switch (outcome->result) {
	case IMTA_NOTICE_SENT: {
		g_autofree char *ids = g_strjoinv(" ", outcome->ids);
		g_autofree char *files = g_strjoinv(" ", outcome->files);
		g_autofree char *copy = NULL;

		if (outcome->postmaster != NULL)
			copy = g_strdup_printf(", with a postmaster copy to <%s>",
					       outcome->postmaster);

		imta_log(IMTA_LOG_NOTICE, "%s %s: %s%s %s queued as %s to <%s>%s, about %u "
			 "recipient%s", entry->id, channel, what, why, ids, files,
			 outcome->recipient, copy != NULL ? copy : "", outcome->reported,
			 outcome->reported == 1 ? "" : "s");
		break;
	}
	case IMTA_NOTICE_NULL_RETURN_PATH:
		imta_log(IMTA_LOG_NOTICE, "%s %s: no %s%s sent: the return path is empty, and no "
			 "notice is ever sent about a notice", entry->id, channel, what, why);
		return;
	case IMTA_NOTICE_NOT_REQUESTED:
	case IMTA_NOTICE_NOTHING:
		break;
	}
	/* K, as in the message log: a notice was due and the sender said no. */
	if (outcome->declined > 0)
		imta_log(IMTA_LOG_NOTICE, "%s %s: K no %s%s about %u recipient%s: the sender "
			 "asked not to be told (NOTIFY)", entry->id, channel, what, why,
			 outcome->declined, outcome->declined == 1 ? "" : "s");
}

/* Test hook: with IMTA_TEST_CRASH_AFTER_NOTICE naming an existing file,
 * the job removes that file and kills itself with SIGKILL just after a
 * failure notice is durable and before the failures are recorded, the
 * crash the order above is designed for (once per file).  Documented in
 * imta-queue(5) as a test hook. */
static void
master_test_crash_point(void)
{
	const char *flag = g_getenv("IMTA_TEST_CRASH_AFTER_NOTICE");

	if (flag != NULL && flag[0] != '\0' && g_unlink(flag) == 0)
		kill(getpid(), SIGKILL);
}

/* Indices (into the entry, and into msg) of this attempt's recipients
 * that ended with `outcome`. */
static void
master_collect(const MasterDelivery *delivery, const ImtaMessage *msg, ImtaOutcome outcome,
	       GArray *entry_idx, GArray *msg_idx)
{
	for (guint i = 0; i < delivery->map->len; i++) {
		const ImtaRecipient *rcpt = imta_message_recipient(msg, i);

		if (rcpt->outcome != outcome)
			continue;
		/* The next hop that took the DSN request reports success itself. */
		if (outcome == IMTA_OUTCOME_DELIVERED && rcpt->dsn_passed)
			continue;
		g_array_append_val(entry_idx, g_array_index(delivery->map, guint, i));
		g_array_append_val(msg_idx, i);
	}
}

/* A failure notice that cannot be queued now leaves its recipients to be
 * tried again: recording them failed would lose the notice. */
static void
master_notify_failures(MasterSource *source, MasterDelivery *delivery, ImtaMessage *msg)
{
	g_autoptr(GArray) entry_idx = g_array_new(FALSE, FALSE, sizeof(guint));
	g_autoptr(GArray) msg_idx = g_array_new(FALSE, FALSE, sizeof(guint));
	ImtaNoticeContext ctx = master_notice_context(source);
	ImtaQueueEntry *entry = delivery->entry;
	ImtaNoticeOutcome outcome;
	g_autoptr(GError) error = NULL;
	ImtaNoticeEvent event = { IMTA_NOTICE_FAILURE, entry, NULL, 0, 0 };

	master_collect(delivery, msg, IMTA_OUTCOME_FAILED, entry_idx, msg_idx);
	if (entry_idx->len == 0)
		return;
	event.indices = (const guint *)entry_idx->data;
	event.n_indices = entry_idx->len;
	if (imta_notice_send(&ctx, &event, &outcome, &error)) {
		master_log_notice(source, entry, IMTA_NOTICE_FAILURE, "", &event, &outcome);
		if (outcome.result == IMTA_NOTICE_SENT)
			master_test_crash_point();
		imta_notice_outcome_clear(&outcome);
		return;
	}
	if (g_error_matches(error, IMTA_NOTICE_ERROR, IMTA_NOTICE_ERROR_PERMANENT)) {
		imta_log(IMTA_LOG_ERROR, "%s %s: no failure notice can be sent to <%s>, the "
			 "failures are recorded without one: %s", entry->id, source->channel->name,
			 imta_message_return_path(entry->message), error->message);
		return;
	}
	imta_log(IMTA_LOG_WARNING, "%s %s: cannot queue the failure notice now, so %u failed "
		 "recipient%s will be tried again: %s", entry->id, source->channel->name,
		 entry_idx->len, entry_idx->len == 1 ? "" : "s", error->message);
	for (guint i = 0; i < entry_idx->len; i++) {
		guint m = g_array_index(msg_idx, guint, i);
		g_autofree char *diagnostic = g_strdup(imta_message_recipient(msg, m)->diagnostic);

		imta_master_job_report(source->job, msg, m, IMTA_OUTCOME_RETRY, diagnostic);
		imta_master_job_report(source->job, entry->message,
				       g_array_index(entry_idx, guint, i), IMTA_OUTCOME_RETRY,
				       diagnostic);
	}
}

/* Success notices are best effort: the recipients are delivered whatever
 * becomes of the notice. */
static void
master_notify_successes(MasterSource *source, MasterDelivery *delivery, ImtaMessage *msg)
{
	g_autoptr(GArray) entry_idx = g_array_new(FALSE, FALSE, sizeof(guint));
	g_autoptr(GArray) msg_idx = g_array_new(FALSE, FALSE, sizeof(guint));
	ImtaNoticeContext ctx = master_notice_context(source);
	ImtaNoticeOutcome outcome;
	g_autoptr(GError) error = NULL;
	ImtaNoticeEvent event = { IMTA_NOTICE_SUCCESS, delivery->entry, NULL, 0, 0 };

	master_collect(delivery, msg, IMTA_OUTCOME_DELIVERED, entry_idx, msg_idx);
	if (entry_idx->len == 0)
		return;
	event.indices = (const guint *)entry_idx->data;
	event.n_indices = entry_idx->len;
	if (!imta_notice_send(&ctx, &event, &outcome, &error)) {
		imta_log(IMTA_LOG_ERROR, "%s %s: the success notice to <%s> is lost: %s",
			 delivery->entry->id, source->channel->name,
			 imta_message_return_path(delivery->entry->message), error->message);
		return;
	}
	/* Success notices are asked for one by one: no line for those who
	 * did not ask. */
	if (outcome.result == IMTA_NOTICE_SENT)
		master_log_notice(source, delivery->entry, IMTA_NOTICE_SUCCESS, "", &event,
				  &outcome);
	imta_notice_outcome_clear(&outcome);
}

/* The delay warning due at a notices age but the last, once per age, at
 * the first attempt after the age passed.  Ages passed together (the
 * queue was stopped) give one warning. */
static void
master_warn_delay(MasterSource *source, ImtaQueueEntry *entry, gint64 now)
{
	gint ages[IMTA_MAX_NOTICES];
	gint64 units = master_return_units(source), unit = master_notices_unit(units);
	guint n_ages = imta_cnf_notices(source->config->cnf, source->channel, entry->priority,
					ages);
	g_autoptr(GArray) due = g_array_new(FALSE, FALSE, sizeof(gint64));
	g_autoptr(GArray) pending = g_array_new(FALSE, FALSE, sizeof(guint));
	ImtaNoticeContext ctx = master_notice_context(source);
	ImtaNoticeEvent event = { IMTA_NOTICE_DELAY, entry, NULL, 0, 0 };
	ImtaNoticeOutcome outcome;
	g_autoptr(GError) error = NULL;
	g_autofree char *note = NULL;
	g_autofree char *why = NULL;
	g_autofree char *notice_id = NULL;
	gint latest = 0;

	for (guint k = 0; k + 1 < n_ages; k++) {
		gint64 age = (gint64)ages[k] * unit;

		if (ages[k] > 0 && now - entry->created >= age &&
		    !imta_queue_entry_warned(entry, age)) {
			g_array_append_val(due, age);
			latest = ages[k];
		}
	}
	if (due->len == 0)
		return;
	for (guint i = 0; i < imta_message_recipient_count(entry->message); i++)
		if (!master_outcome_final(imta_message_recipient(entry->message, i)->outcome))
			g_array_append_val(pending, i);
	if (pending->len == 0)
		return;
	event.indices = (const guint *)pending->data;
	event.n_indices = pending->len;
	event.retry_until = entry->created + (gint64)ages[n_ages - 1] * unit;
	why = g_strdup_printf(" (notices age %d %s%s)", latest, units == 1 ? "hour" : "day",
			      latest == 1 ? "" : "s");
	if (!imta_notice_send(&ctx, &event, &outcome, &error)) {
		if (!g_error_matches(error, IMTA_NOTICE_ERROR, IMTA_NOTICE_ERROR_PERMANENT)) {
			imta_log(IMTA_LOG_WARNING, "%s %s: cannot queue the delay warning now; it "
				 "is tried again at the next attempt: %s", entry->id,
				 source->channel->name, error->message);
			return;
		}
		imta_log(IMTA_LOG_ERROR, "%s %s: no delay warning can be sent to <%s>: %s",
			 entry->id, source->channel->name,
			 imta_message_return_path(entry->message), error->message);
		note = g_strdup_printf("not sent: %s", error->message);
	} else {
		master_log_notice(source, entry, IMTA_NOTICE_DELAY, why, &event, &outcome);
		if (outcome.result == IMTA_NOTICE_SENT) {
			notice_id = g_strdup(outcome.ids[0]);
			note = g_strdup_printf("sent to %s", outcome.recipient);
		} else if (outcome.result == IMTA_NOTICE_NULL_RETURN_PATH) {
			note = g_strdup("not sent: empty return path");
		} else {
			note = g_strdup("not sent: not requested (NOTIFY)");
		}
		imta_notice_outcome_clear(&outcome);
	}
	for (guint i = 0; i < due->len; i++)
		imta_queue_entry_note_warning(entry, g_array_index(due, gint64, i), notice_id,
					      note);
}

/* Every notice this attempt calls for, before anything is recorded. */
static void
master_send_notices(MasterSource *source, MasterDelivery *delivery, ImtaMessage *msg,
		    gint64 now, gboolean expired)
{
	master_notify_failures(source, delivery, msg);
	master_notify_successes(source, delivery, msg);
	if (!expired)
		master_warn_delay(source, delivery->entry, now);
}

static gboolean
master_source_finish(gpointer data, ImtaMessage *msg, GError **error)
{
	MasterSource *source = data;
	MasterDelivery *delivery = g_hash_table_lookup(source->deliveries, msg);
	ImtaQueueEntry *entry;
	g_autofree char *old_path = NULL;
	g_autofree char *message_id = NULL;
	g_autoptr(GError) local = NULL;
	guint delivered, failed, retry, left_d, left_f, left_r, attempt;
	gint64 now = master_now(), delay, next_attempt;
	gboolean expired;

	g_return_val_if_fail(delivery != NULL, FALSE);
	entry = delivery->entry;
	old_path = g_strdup(entry->path);
	attempt = entry->attempts + 1;
	expired = master_apply_expiry(source, entry, msg, now);
	for (guint i = 0; i < delivery->map->len; i++) {
		const ImtaRecipient *rcpt = imta_message_recipient(msg, i);

		imta_master_job_report(source->job, entry->message,
				       g_array_index(delivery->map, guint, i), rcpt->outcome,
				       rcpt->diagnostic);
	}
	master_send_notices(source, delivery, msg, now, expired);
	message_id = master_message_id(source, msg);
	master_count_outcomes(msg, &delivered, &failed, &retry);
	master_count_outcomes(entry->message, &left_d, &left_f, &left_r);
	delay = master_retry_delay(source->channel, entry->priority, entry->attempts);
	if (!imta_queue_entry_record(source->queue, entry, delay, master_attempt_reason(msg),
				     &local)) {
		if (g_error_matches(local, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_NOT_FOUND)) {
			/* Deleted by the administrator during delivery: the
			 * deletion wins and no outcome is kept. */
			master_log_recipients(source, entry, msg, message_id);
			imta_log(IMTA_LOG_WARNING, "%s %s: %s was deleted during delivery; outcomes "
				 "not recorded", entry->id, source->channel->name, old_path);
			master_send_done(source, old_path, NULL, delivered, failed, 0, 0);
			g_hash_table_remove(source->deliveries, msg);
			source->finished++;
			return TRUE;
		}
		/* The file is as before this attempt, so every recipient of it is
		 * tried again.  Tell the controller when, then stop the job. */
		imta_log(IMTA_LOG_ERROR, "%s %s: cannot record the outcomes in %s, all %u "
			 "recipient%s of this attempt will be retried: %s", entry->id,
			 source->channel->name, old_path, delivery->map->len,
			 delivery->map->len == 1 ? "" : "s", local->message);
		master_send_done(source, old_path, old_path, 0, 0, delivery->map->len, now + delay);
		g_hash_table_remove(source->deliveries, msg);
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	/* Logged once durable, so the log never claims more than the queue. */
	master_log_recipients(source, entry, msg, message_id);
	if (left_r == 0) {
		imta_log(IMTA_LOG_NOTICE, "%s %s: attempt %u: %u delivered, %u failed, %u deferred; "
			 "%s removed", entry->id, source->channel->name, attempt, delivered, failed,
			 retry, old_path);
		master_send_done(source, old_path, NULL, delivered, failed, 0, 0);
	} else if (entry->held) {
		/* Held by the administrator during delivery: the outcomes went
		 * into the held file, which waits for a release. */
		imta_log(IMTA_LOG_NOTICE, "%s %s: attempt %u: %u delivered, %u failed, %u deferred; "
			 "held meanwhile as %s", entry->id, source->channel->name, attempt,
			 delivered, failed, retry, entry->path);
		master_send_done(source, old_path, NULL, delivered, failed, retry, 0);
	} else {
		next_attempt = entry->next_attempt > 0 ? entry->next_attempt : now + delay;
		imta_log(IMTA_LOG_NOTICE, "%s %s: attempt %u: %u delivered, %u failed, %u deferred; "
			 "next attempt in %" G_GINT64_FORMAT " s as %s", entry->id,
			 source->channel->name, attempt, delivered, failed, retry,
			 next_attempt - now, entry->path);
		master_send_done(source, old_path, entry->path, delivered, failed, retry,
				 next_attempt);
	}
	g_hash_table_remove(source->deliveries, msg);
	source->finished++;
	return TRUE;
}

static void
master_source_free(gpointer data)
{
	MasterSource *source = data;

	/* Messages never finished are given back by the controller when the
	 * connection closes; their files are untouched. */
	master_read_done_replies(source);
	g_queue_clear_full(&source->unanswered, g_free);
	g_hash_table_destroy(source->deliveries);
	g_free(source);
}

const ImtaMasterJobSource master_source_ops = {
	.next = master_source_next,
	.try_next = master_source_try_next,
	.more_due = master_source_more_due,
	.finish = master_source_finish,
	.free = master_source_free,
};
