/*
 * ims_ms.c - the ims-ms channel: delivery into the message store.
 *
 * The master program takes each queued message, resolves every recipient
 * (uid[%domain][+folder]@host) through the directory, applies the quota
 * policy, and stores the message once for all recipients that may have
 * it (store_delivery.h, shared with the LMTP server: one file per
 * partition, linked into every mailbox).  Outcomes are reported only after the store returned,
 * so a message is never marked delivered before it is durable, and a
 * delivery record (IMTA_RUN/ims-ms/<queue id>) lets the retry after a
 * killed job find what was stored already instead of storing it twice.
 * A user whose usage crosses the warning threshold gets one warning message,
 * queued to a channel of this plugin marked `exquota` (the guaranteed
 * delivery channel) so that it arrives even in a full mailbox.
 *
 * Binding: the plugin registers "ims-ms"; the channel of that name binds
 * by name, and any other channel (ims-ms-guaranteed) by carrying the
 * keyword.  ims_ms(8) describes recipients, statuses and the policy.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/imta.h>
#include <imta/store.h>
#include <imta/store_delivery.h>
#include <imta/mail_log.h>

static const ImtaPluginKeyword ims_ms_keywords[] = {
	{ "ims-ms", 0, 0, "deliver this channel's messages into the message store "
	  "(with exquota: whatever the users' quotas)" },
	{ NULL }
};

/* One job: the store opened once. */
typedef struct {
	ImtaMasterJob *job;
	const ImtaConfig *config;
	const ImtaChannel *channel;
	ImtaStoreDelivery *delivery;
	/* The message being delivered. */
	guint pending;           /* recipients left to retry */
	char *record;            /* its delivery record (see below), or NULL */
	gint64 record_since;     /* when an earlier attempt made it; 0: none */
	char *record_message_id; /* its Message-ID, when looking for earlier deliveries */
	ImtaQueue *queue;        /* for held users' mail; opened on first use */
} MsJob;

/* One recipient of the message being delivered. */
typedef struct {
	guint index;             /* the message's recipient */
	ImtaStoreRecipient rcpt;
	ImtaRoute hold;          /* held user: where the mail waits instead */
} MsDelivery;

static void
ms_delivery_free(gpointer data)
{
	MsDelivery *d = data;

	imta_store_recipient_clear(&d->rcpt);
	imta_route_clear(&d->hold);
	g_free(d);
}

static void
ms_report(MsJob *ms, ImtaMessage *msg, guint index, ImtaOutcome outcome, const char *diagnostic)
{
	if (outcome != IMTA_OUTCOME_DELIVERED && outcome != IMTA_OUTCOME_FAILED)
		ms->pending++;
	imta_master_job_report(ms->job, msg, index, outcome, diagnostic);
}

/* ---- delivery records ---------------------------------------------------- */

/*
 * The store makes a delivery durable before imta_store_deliver() returns;
 * the queue records the outcome only at finish().  A job killed between
 * the two would store the message again on the retry.  So a record
 * IMTA_RUN/ims-ms/<queue id> is made before the store is called and
 * removed once the outcomes are durable and final; a message that comes
 * with a record left behind is first looked for in each recipient's
 * folder (same Message-ID and size, stored after the record was made), and
 * a recipient found there is reported delivered instead of being stored
 * twice.  The record is not synced: it guards against a killed process,
 * not against a system crash, after which a message may be stored twice
 * (never lost).  A message without a Message-ID is not looked for.
 */
#define MS_RECORD_DIR "ims-ms"
/* Records older than any queued message can be are removed. */
#define MS_RECORD_MAX_AGE ((gint64)60 * 24 * 3600)
/* Slack between the record's time and the store's clock. */
#define MS_RECORD_SLACK 2

static char *
ms_record_path(const MsJob *ms, const ImtaMessage *msg)
{
	const char *id = imta_message_id(msg);

	if (id == NULL || *id == '\0' || strlen(id) > 64)
		return NULL;
	for (const char *p = id; *p != '\0'; p++)
		if (!g_ascii_isalnum(*p))
			return NULL;
	return g_build_filename(ms->config->tailor->run_dir, MS_RECORD_DIR, id, NULL);
}

/* The time of a record an earlier attempt left, else 0. */
static gint64
ms_record_left(const char *path)
{
	GStatBuf st;

	if (path == NULL || g_stat(path, &st) < 0)
		return 0;
	return st.st_mtime > 0 ? (gint64)st.st_mtime : 1;
}

static void
ms_record_make(const MsJob *ms, const char *path)
{
	g_autofree char *dir = g_path_get_dirname(path);
	int fd;

	if (g_mkdir_with_parents(dir, 0750) < 0 ||
	    (fd = g_open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0640)) < 0) {
		imta_log(IMTA_LOG_WARNING, "%s: cannot make %s (a crash now could store the "
			 "message twice): %s", ms->channel->name, path, g_strerror(errno));
		return;
	}
	close(fd);
}

static void
ms_record_clean(const MsJob *ms)
{
	g_autofree char *dir = g_build_filename(ms->config->tailor->run_dir, MS_RECORD_DIR, NULL);
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	const char *name;

	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		g_autofree char *path = g_build_filename(dir, name, NULL);
		gint64 made = ms_record_left(path);

		if (made != 0 && now - made > MS_RECORD_MAX_AGE)
			g_unlink(path);
	}
}

/* Did an earlier attempt store this message for `d`?  The folder asked
 * for and INBOX (where a missing folder's mail goes) are searched from
 * the newest message back to the record's time. */
static gboolean
ms_record_find(MsJob *ms, const char *userid, const char *folder, const char *message_id,
	       gint64 size, gint64 since, guint32 *uid_r)
{
	const char *folders[] = { folder, "INBOX" };

	for (guint f = 0; f < G_N_ELEMENTS(folders); f++) {
		g_autoptr(GPtrArray) messages = NULL;

		if (folders[f] == NULL || (f == 1 && folder != NULL &&
					   g_ascii_strcasecmp(folder, "INBOX") == 0))
			continue;
		messages = imta_store_folder_messages(imta_store_delivery_store(ms->delivery),
						      userid, folders[f], NULL);
		for (guint i = messages != NULL ? messages->len : 0; i-- > 0;) {
			const ImtaStoreMessage *m = g_ptr_array_index(messages, i);

			if (m->internal_date < since - MS_RECORD_SLACK)
				break;
			if (m->size == size && g_strcmp0(m->message_id, message_id) == 0) {
				*uid_r = m->uid;
				return TRUE;
			}
		}
	}
	return FALSE;
}

/* ---- one message -------------------------------------------------------- */

/* A user put on hold after the mail was queued here: route the recipient
 * to the hold channel, as the directory would have at enqueue.  FALSE
 * (the recipient keeps its temporary failure) when that does not route. */
static gboolean
ms_route_hold(MsJob *ms, const char *address, MsDelivery *d)
{
	ImtaRouteContext ctx = { ms->config, ms->channel->name, NULL };
	g_autofree char *held = g_strconcat(IMTA_DIR_HOLD_ROUTE, address, NULL);
	g_autoptr(GError) error = NULL;

	if (imta_route_address(&ctx, held, &d->hold, &error))
		return TRUE;
	imta_log(IMTA_LOG_WARNING, "%s: %s is held, but %s does not route: %s",
		 ms->channel->name, address, held, error->message);
	return FALSE;
}

/* Check recipient `index`; a MsDelivery when it goes to the store or to
 * the hold channel, NULL after reporting its outcome. */
static MsDelivery *
ms_check_recipient(MsJob *ms, ImtaMessage *msg, guint index)
{
	const ImtaRecipient *rcpt = imta_message_recipient(msg, index);
	MsDelivery *d = g_new0(MsDelivery, 1);
	ImtaStoreRecipient *r = &d->rcpt;
	guint32 uid = 0;

	d->index = index;
	if (!imta_store_delivery_resolve(ms->delivery, rcpt->address, r)) {
		if (r->user.state == IMTA_STORE_USER_HOLD && ms_route_hold(ms, rcpt->address, d))
			return d;
		goto settled;
	}
	if (ms->record_message_id != NULL &&
	    ms_record_find(ms, r->user.userid, r->folder, ms->record_message_id,
			   imta_message_size(msg), ms->record_since, &uid)) {
		g_autofree char *diagnostic = g_strdup_printf(
			"2.0.0 delivered to the message store: %s %s, UID %u (by an earlier "
			"attempt)", r->user.userid, r->folder != NULL ? r->folder : "INBOX", uid);

		ms_report(ms, msg, index, IMTA_OUTCOME_DELIVERED, diagnostic);
		imta_log(IMTA_LOG_INFO, "%s: %s: %s", ms->channel->name, imta_message_id(msg),
			 diagnostic);
		ms_delivery_free(d);
		return NULL;
	}
	if (imta_store_delivery_check(ms->delivery, r, imta_message_size(msg)))
		return d;
settled:
	ms_report(ms, msg, index, r->outcome, r->diagnostic);
	ms_delivery_free(d);
	return NULL;
}

static char *
ms_read_content(ImtaMessage *msg, gsize *length_r, GError **error)
{
	g_autoptr(GInputStream) in = imta_message_open_content(msg, error);
	goffset size = imta_message_size(msg);
	g_autofree char *buf = NULL;
	gsize got = 0;

	if (in == NULL)
		return NULL;
	if (size < 0 || (guint64)size >= G_MAXSIZE) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "bad message size %" G_GINT64_FORMAT, (gint64)size);
		return NULL;
	}
	buf = g_malloc((gsize)size + 1);
	if (!g_input_stream_read_all(in, buf, (gsize)size, &got, NULL, error))
		return NULL;
	if (got != (gsize)size) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
			    "message content is %" G_GSIZE_FORMAT " bytes, expected %"
			    G_GINT64_FORMAT, got, (gint64)size);
		return NULL;
	}
	buf[got] = '\0';
	*length_r = got;
	return g_steal_pointer(&buf);
}

static void
ms_store_message(MsJob *ms, ImtaMessage *msg, GPtrArray *deliveries)
{
	g_autoptr(GError) error = NULL;
	g_autofree ImtaStoreRecipient **rcpts = g_new0(ImtaStoreRecipient *, deliveries->len);
	g_autofree char *content = NULL;
	gsize length = 0;

	content = ms_read_content(msg, &length, &error);
	if (content == NULL) {
		g_autofree char *diagnostic = g_strdup_printf("4.3.1 message not stored: %s",
							      error->message);

		for (guint i = 0; i < deliveries->len; i++) {
			MsDelivery *d = g_ptr_array_index(deliveries, i);

			ms_report(ms, msg, d->index, IMTA_OUTCOME_RETRY, diagnostic);
		}
		imta_log(IMTA_LOG_WARNING, "%s: %s: %s", ms->channel->name, imta_message_id(msg),
			 diagnostic);
		return;
	}
	if (ms->record != NULL && ms->record_since == 0)
		ms_record_make(ms, ms->record);
	for (guint i = 0; i < deliveries->len; i++)
		rcpts[i] = &((MsDelivery *)g_ptr_array_index(deliveries, i))->rcpt;
	imta_store_delivery_deliver(ms->delivery, content, length, rcpts, deliveries->len);
	for (guint i = 0; i < deliveries->len; i++) {
		MsDelivery *d = g_ptr_array_index(deliveries, i);

		ms_report(ms, msg, d->index, d->rcpt.outcome, d->rcpt.diagnostic);
	}
}

/* Queue the message for the held recipients, then report them: relayed
 * once the copy is durable, else still waiting here. */
static void
ms_hold_message(MsJob *ms, ImtaMessage *msg, GPtrArray *held)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaForward) fwd = NULL;
	gboolean queued = FALSE;

	if (ms->queue == NULL)
		ms->queue = imta_route_open_queue(ms->config, &error);
	if (ms->queue != NULL) {
		fwd = imta_forward_new(ms->queue, ms->channel->name, msg);
		queued = TRUE;
		for (guint i = 0; queued && i < held->len; i++) {
			MsDelivery *d = g_ptr_array_index(held, i);

			queued = imta_forward_add(fwd, d->index, d->hold.channel, d->hold.address,
						  &error);
		}
		queued = queued && imta_forward_commit(fwd, &error);
	}
	if (!queued)
		imta_log(IMTA_LOG_ERROR, "%s: message %s: cannot move held recipients to the hold "
			 "channel: %s", ms->channel->name, imta_message_id(msg), error->message);
	for (guint i = 0; i < held->len; i++) {
		MsDelivery *d = g_ptr_array_index(held, i);
		g_autofree char *text = NULL;

		if (!queued) {
			ms_report(ms, msg, d->index, d->rcpt.outcome, d->rcpt.diagnostic);
			continue;
		}
		text = g_strdup_printf("2.0.0 mailbox %s is on hold: moved to the %s channel",
				       d->rcpt.user.userid != NULL ? d->rcpt.user.userid : "",
				       d->hold.channel->name);
		imta_master_job_report_relayed(ms->job, msg, d->index, text);
	}
}

static void
ms_deliver_message(MsJob *ms, ImtaMessage *msg)
{
	guint n = imta_message_recipient_count(msg);
	g_autoptr(GPtrArray) deliveries = g_ptr_array_new_with_free_func(ms_delivery_free);
	g_autoptr(GPtrArray) held = g_ptr_array_new_with_free_func(ms_delivery_free);
	const char *failure = imta_store_delivery_failure(ms->delivery);

	ms->pending = 0;
	g_clear_pointer(&ms->record, g_free);
	g_clear_pointer(&ms->record_message_id, g_free);
	ms->record = ms_record_path(ms, msg);
	ms->record_since = ms_record_left(ms->record);
	if (ms->record_since != 0)
		ms->record_message_id = imta_mail_log_message_id_of(msg);
	if (failure != NULL) {
		for (guint i = 0; i < n; i++)
			ms_report(ms, msg, i, IMTA_OUTCOME_RETRY, failure);
		return;
	}
	for (guint i = 0; i < n; i++) {
		MsDelivery *d = ms_check_recipient(ms, msg, i);

		if (d != NULL)
			g_ptr_array_add(d->hold.channel != NULL ? held : deliveries, d);
	}
	if (held->len > 0)
		ms_hold_message(ms, msg, held);
	if (deliveries->len > 0)
		ms_store_message(ms, msg, deliveries);
}

static ImtaEntryStatus
ims_ms_master(ImtaMasterJob *job)
{
	MsJob ms = {
		.job = job,
		.config = imta_master_job_config(job),
		.channel = imta_master_job_channel(job),
	};
	g_autoptr(GError) error = NULL;
	ImtaEntryStatus status = IMTA_ENTRY_OK;
	ImtaMessage *msg;

	ms.delivery = imta_store_delivery_new(ms.config, ms.channel);
	ms_record_clean(&ms);
	while ((msg = imta_master_job_next(job, &error)) != NULL) {
		/* A job lives as long as mail keeps coming: an edited
		 * store.cnf applies from the next message on. */
		imta_store_delivery_refresh(ms.delivery);
		ms_deliver_message(&ms, msg);
		if (!imta_master_job_finish(job, msg, &error)) {
			imta_log(IMTA_LOG_ERROR, "%s: %s", ms.channel->name, error->message);
			status = IMTA_ENTRY_TEMPFAIL;
			break;
		}
		/* Kept while recipients remain: their next attempt looks again. */
		if (ms.record != NULL && ms.pending == 0)
			g_unlink(ms.record);
	}
	if (status == IMTA_ENTRY_OK && error != NULL) {
		imta_log(IMTA_LOG_ERROR, "%s: %s", ms.channel->name, error->message);
		status = IMTA_ENTRY_TEMPFAIL;
	}
	imta_store_delivery_free(ms.delivery);
	g_clear_pointer(&ms.queue, imta_queue_close);
	g_clear_pointer(&ms.record, g_free);
	g_clear_pointer(&ms.record_message_id, g_free);
	return status;
}

IMTA_PLUGIN_DEFINE(
	.name = "ims_ms",
	.version = PACKAGE_VERSION,
	.description = "delivers into the message store, with quotas",
	.keywords = ims_ms_keywords,
	.master = ims_ms_master,
);
