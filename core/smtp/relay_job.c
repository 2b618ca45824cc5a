/*
 * relay_job.c - the client threads of the SMTP and LMTP masters: messages
 * taken from the job, their recipients grouped by destination, the content
 * read once, and each message finished when its deliveries are done.
 *
 * The job's next() and finish() share one connection to whatever feeds
 * the job, so they run under one lock, finishing threads first.  A
 * waiting next() (the job controller holds it until a message is due)
 * would hold back every finish(), so while messages are in flight the
 * threads ask with try_next(), which answers at once; only with nothing
 * in flight does a thread wait in next().
 *
 * A thread that has finished a message asks for the next one itself.  An
 * idle thread is woken to take one only when the source said more were
 * due, or when nobody watches for new work while messages are out: then
 * one idle thread asks again every RELAY_POLL_US.  With one message at a
 * time (a lone client upstream) a job thus makes no thread wake-up of its
 * own per message, and with a burst its threads join in one by one.
 * Waking threads that will find nothing to do cost the client threads
 * more CPU than sending the messages did.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/imta.h>
#include <imta/mime.h>
#include <imta/smtp_relay.h>

/* While messages are in flight, how often an idle thread asks for new
 * work that arrived meanwhile. */
#define RELAY_POLL_US (50 * G_TIME_SPAN_MILLISECOND)
/* The largest message read into memory. */
#define RELAY_MAX_CONTENT ((goffset)G_MAXINT32)

/* ---- grouping -------------------------------------------------------- */

static void
group_free(gpointer data)
{
	ImtaSmtpGroup *group = data;

	g_free(group->key);
	g_array_unref(group->rcpts);
	g_free(group);
}

static ImtaSmtpGroup *
group_new(GPtrArray *groups, const char *key)
{
	ImtaSmtpGroup *group = g_new0(ImtaSmtpGroup, 1);

	group->key = g_strdup(key);
	group->rcpts = g_array_new(FALSE, FALSE, sizeof(guint));
	g_ptr_array_add(groups, group);
	return group;
}

GPtrArray *
imta_smtp_relay_group(const ImtaMessage *msg, guint cap, ImtaSmtpGroupKeyFunc key_of,
		      gpointer data)
{
	GPtrArray *groups = g_ptr_array_new_with_free_func(group_free);
	/* key ("\1" for none: keys are text) -> the group being filled */
	g_autoptr(GHashTable) open = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	cap = MAX(cap, 1);
	for (guint i = 0; i < imta_message_recipient_count(msg); i++) {
		g_autofree char *key = key_of(msg, i, data);
		const char *index = key != NULL ? key : "\1";
		ImtaSmtpGroup *group = g_hash_table_lookup(open, index);

		if (group == NULL || group->rcpts->len >= cap) {
			group = group_new(groups, key);
			g_hash_table_replace(open, g_strdup(index), group);
		}
		g_array_append_val(group->rcpts, i);
	}
	return groups;
}

/* ---- the job --------------------------------------------------------- */

typedef struct {
	ImtaMasterJob *job;
	const char *channel;
	ImtaSmtpRelayDeliverFunc deliver;
	gpointer data;
	GMutex lock;            /* the job's next() and finish() */
	GCond turn;             /* an idle thread may ask: signalled one at a time */
	GCond poll_wake;        /* the polling thread: the job is over */
	gint finishing;         /* threads waiting to finish (atomic) */
	guint in_flight;
	gboolean polling;       /* an idle thread watches for new work */
	gboolean done;
	gboolean failed;
	guint messages;
} RelayJob;

/* Ask for one message, under the lock: without waiting while others are
 * in flight.  NULL with *idle_r when there is nothing now. */
static ImtaMessage *
job_ask(RelayJob *rj, gboolean *idle_r)
{
	g_autoptr(GError) error = NULL;
	ImtaMessage *msg;

	*idle_r = FALSE;
	if (rj->in_flight > 0)
		msg = imta_master_job_try_next(rj->job, idle_r, &error);
	else
		msg = imta_master_job_next(rj->job, &error);
	if (msg != NULL) {
		rj->in_flight++;
		return msg;
	}
	if (*idle_r)
		return NULL;
	rj->done = TRUE;
	if (error != NULL) {
		imta_log(IMTA_LOG_ERROR, "%s: %s", rj->channel, error->message);
		rj->failed = TRUE;
	}
	return NULL;
}

/* Under the lock, once a thread has taken a message (or the job is
 * over): whom to wake. */
static void
job_pass_turn(RelayJob *rj, ImtaMessage *msg)
{
	if (rj->done) {
		g_cond_broadcast(&rj->turn);
		g_cond_broadcast(&rj->poll_wake);
		return;
	}
	if (msg != NULL && (imta_master_job_more_due(rj->job) || !rj->polling))
		g_cond_signal(&rj->turn);
}

static ImtaMessage *
job_take(RelayJob *rj)
{
	ImtaMessage *msg = NULL;

	g_mutex_lock(&rj->lock);
	while (msg == NULL && !rj->done) {
		gboolean idle;

		if (g_atomic_int_get(&rj->finishing) > 0) {
			g_cond_wait(&rj->turn, &rj->lock);
			continue;
		}
		msg = job_ask(rj, &idle);
		if (!idle)
			break;
		/* Nothing now: one thread keeps asking, the others sleep. */
		if (rj->polling) {
			g_cond_wait(&rj->turn, &rj->lock);
			continue;
		}
		rj->polling = TRUE;
		g_cond_wait_until(&rj->poll_wake, &rj->lock,
				  g_get_monotonic_time() + RELAY_POLL_US);
		rj->polling = FALSE;
	}
	job_pass_turn(rj, msg);
	g_mutex_unlock(&rj->lock);
	return msg;
}

/* The caller goes on to job_take(): it asks for the next message itself,
 * so nobody else needs waking unless the job is over. */
static gboolean
job_finish(RelayJob *rj, ImtaMessage *msg)
{
	g_autoptr(GError) error = NULL;
	gboolean ok;

	g_atomic_int_inc(&rj->finishing);
	g_mutex_lock(&rj->lock);
	g_atomic_int_add(&rj->finishing, -1);
	ok = imta_master_job_finish(rj->job, msg, &error);
	rj->in_flight--;
	rj->messages++;
	if (!ok) {
		imta_log(IMTA_LOG_ERROR, "%s: %s", rj->channel, error->message);
		rj->failed = TRUE;
		rj->done = TRUE;
		job_pass_turn(rj, NULL);
	}
	g_mutex_unlock(&rj->lock);
	return ok;
}

/* The whole content, read once (bounded by the channel's size limits),
 * or shared when the message holds it in memory already. */
static GBytes *
job_read_content(const ImtaMessage *msg, GError **error)
{
	goffset size = imta_message_size(msg);
	g_autoptr(GBytes) content = NULL;

	if (size < 0 || size > RELAY_MAX_CONTENT) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
			    "the message is too large to send (%" G_GINT64_FORMAT " bytes)",
			    (gint64)size);
		return NULL;
	}
	content = imta_message_read_content(msg, (gsize)size, error);
	if (content == NULL)
		return NULL;
	if (g_bytes_get_size(content) != (gsize)size) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
			    "the content ends after %" G_GSIZE_FORMAT " of %" G_GINT64_FORMAT
			    " bytes", g_bytes_get_size(content), (gint64)size);
		return NULL;
	}
	return g_steal_pointer(&content);
}

static void
job_deliver(RelayJob *rj, ImtaMessage *msg)
{
	g_autoptr(GError) error = NULL;
	ImtaSmtpRelayMessage message = { msg, NULL, FALSE, NULL };
	gsize len;
	const char *data;

	message.content = job_read_content(msg, &error);
	if (message.content == NULL) {
		g_autofree char *why = g_strdup_printf("4.3.0 cannot read the message: %s",
						       error->message);

		imta_log(IMTA_LOG_ERROR, "%s: message %s: %s", rj->channel, imta_message_id(msg),
			 why);
		for (guint i = 0; i < imta_message_recipient_count(msg); i++)
			imta_master_job_report(rj->job, msg, i, IMTA_OUTCOME_RETRY, why);
		return;
	}
	data = g_bytes_get_data(message.content, &len);
	message.eight_bit = len > 0 && imta_mime_is_8bit(data, len);
	rj->deliver(rj->job, &message, rj->data);
	g_bytes_unref(message.content);
	g_clear_pointer(&message.seven_bit, g_bytes_unref);
}

static gpointer
job_thread(gpointer data)
{
	RelayJob *rj = data;
	ImtaMessage *msg;

	while ((msg = job_take(rj)) != NULL) {
		job_deliver(rj, msg);
		if (!job_finish(rj, msg))
			break;
	}
	return NULL;
}

guint
imta_smtp_relay_run(ImtaMasterJob *job, const char *channel, guint n_threads,
		    ImtaSmtpRelayDeliverFunc deliver, gpointer data, gboolean *failed_r)
{
	g_autoptr(GPtrArray) threads = g_ptr_array_new();
	RelayJob rj = { .job = job, .channel = channel, .deliver = deliver, .data = data };

	g_mutex_init(&rj.lock);
	g_cond_init(&rj.turn);
	g_cond_init(&rj.poll_wake);
	for (guint i = 0; i < MAX(n_threads, 1); i++) {
		g_autoptr(GError) error = NULL;
		GThread *thread = g_thread_try_new("smtp-client", job_thread, &rj, &error);

		if (thread == NULL) {
			imta_log(IMTA_LOG_WARNING, "%s: cannot start client thread %u: %s",
				 channel, i + 1, error->message);
			break;
		}
		g_ptr_array_add(threads, thread);
	}
	/* Without any thread, this one does the work. */
	if (threads->len == 0)
		job_thread(&rj);
	for (guint i = 0; i < threads->len; i++)
		g_thread_join(threads->pdata[i]);
	g_mutex_clear(&rj.lock);
	g_cond_clear(&rj.turn);
	g_cond_clear(&rj.poll_wake);
	if (failed_r != NULL)
		*failed_r = rj.failed;
	return rj.messages;
}
