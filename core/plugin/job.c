/*
 * job.c - messages as master programs see them, and the master job
 * interface between a plugin and whatever feeds it messages.
 */
#include "config.h"

#include <gio/gio.h>

#include <imta/job.h>
#include <imta/log.h>

struct _ImtaMessage {
	char *id;
	char *return_path;
	char *envid;
	ImtaRet ret;
	ImtaPriority priority;
	char *source_channel;   /* NULL = unknown */
	char *onward_channel;
	GArray *recipients;     /* ImtaRecipient */
	GBytes *content;        /* in memory, or NULL */
	char *content_path;     /* or a region of a file */
	goffset content_offset, content_length;
};

struct _ImtaMasterJob {
	const ImtaConfig *config;
	const ImtaChannel *channel;
	const ImtaMasterJobSource *ops;
	gpointer source;
};

static void
recipient_clear(gpointer p)
{
	ImtaRecipient *rcpt = p;

	g_free(rcpt->address);
	g_free(rcpt->orcpt);
	g_free(rcpt->diagnostic);
}

ImtaMessage *
imta_message_new(const char *id, const char *return_path)
{
	ImtaMessage *msg = g_new0(ImtaMessage, 1);

	msg->id = g_strdup(id);
	msg->return_path = g_strdup(return_path != NULL ? return_path : "");
	msg->priority = IMTA_PRIORITY_NORMAL;
	msg->recipients = g_array_new(FALSE, TRUE, sizeof(ImtaRecipient));
	g_array_set_clear_func(msg->recipients, recipient_clear);
	return msg;
}

void
imta_message_set_envid(ImtaMessage *msg, const char *envid)
{
	g_free(msg->envid);
	msg->envid = g_strdup(envid);
}

void
imta_message_set_ret(ImtaMessage *msg, ImtaRet ret)
{
	msg->ret = ret;
}

void
imta_message_set_priority(ImtaMessage *msg, ImtaPriority priority)
{
	g_return_if_fail(priority < IMTA_PRIORITY_COUNT);
	msg->priority = priority;
}

void
imta_message_add_recipient(ImtaMessage *msg, const char *address, const char *orcpt, guint notify)
{
	ImtaRecipient rcpt = { g_strdup(address), g_strdup(orcpt), notify, IMTA_OUTCOME_NONE, NULL };

	g_array_append_val(msg->recipients, rcpt);
}

void
imta_message_set_content_bytes(ImtaMessage *msg, GBytes *content)
{
	g_clear_pointer(&msg->content, g_bytes_unref);
	g_clear_pointer(&msg->content_path, g_free);
	msg->content = g_bytes_ref(content);
}

void
imta_message_set_content_file(ImtaMessage *msg, const char *path, goffset offset, goffset length)
{
	g_clear_pointer(&msg->content, g_bytes_unref);
	g_free(msg->content_path);
	msg->content_path = g_strdup(path);
	msg->content_offset = offset;
	msg->content_length = length;
}

void
imta_message_share_content(ImtaMessage *msg, const ImtaMessage *from)
{
	if (from->content != NULL)
		imta_message_set_content_bytes(msg, from->content);
	else
		imta_message_set_content_file(msg, from->content_path, from->content_offset,
					      from->content_length);
}

GBytes *
imta_message_content_bytes(const ImtaMessage *msg)
{
	return msg->content;
}

GBytes *
imta_message_read_content(const ImtaMessage *msg, gsize max, GError **error)
{
	goffset size = imta_message_size(msg);
	gsize want = size > 0 ? (gsize)MIN((guint64)size, (guint64)max) : 0;
	g_autoptr(GInputStream) in = NULL;
	g_autofree char *buf = NULL;
	gsize got = 0;

	if (msg->content != NULL)
		return g_bytes_new_from_bytes(msg->content, 0, want);
	in = imta_message_open_content(msg, error);
	if (in == NULL)
		return NULL;
	buf = g_malloc(want + 1);
	if (want > 0 && !g_input_stream_read_all(in, buf, want, &got, NULL, error))
		return NULL;
	return g_bytes_new_take(g_steal_pointer(&buf), got);
}

const char *
imta_message_id(const ImtaMessage *msg)
{
	return msg->id;
}

const char *
imta_message_return_path(const ImtaMessage *msg)
{
	return msg->return_path;
}

const char *
imta_message_envid(const ImtaMessage *msg)
{
	return msg->envid;
}

ImtaRet
imta_message_ret(const ImtaMessage *msg)
{
	return msg->ret;
}

ImtaPriority
imta_message_priority(const ImtaMessage *msg)
{
	return msg->priority;
}

void
imta_message_set_source_channel(ImtaMessage *msg, const char *channel)
{
	g_free(msg->source_channel);
	msg->source_channel = g_strdup(channel);
}

const char *
imta_message_source_channel(const ImtaMessage *msg)
{
	return msg->source_channel != NULL ? msg->source_channel : "";
}

void
imta_message_set_onward_channel(ImtaMessage *msg, const char *channel)
{
	g_free(msg->onward_channel);
	msg->onward_channel = g_strdup(channel);
}

const char *
imta_message_onward_channel(const ImtaMessage *msg)
{
	return msg->onward_channel;
}

guint
imta_message_recipient_count(const ImtaMessage *msg)
{
	return msg->recipients->len;
}

const ImtaRecipient *
imta_message_recipient(const ImtaMessage *msg, guint index)
{
	g_return_val_if_fail(index < msg->recipients->len, NULL);
	return &g_array_index(msg->recipients, ImtaRecipient, index);
}

goffset
imta_message_size(const ImtaMessage *msg)
{
	if (msg->content != NULL)
		return (goffset)g_bytes_get_size(msg->content);
	return msg->content_path != NULL ? msg->content_length : 0;
}

GInputStream *
imta_message_open_content(const ImtaMessage *msg, GError **error)
{
	g_autoptr(GFile) file = NULL;
	g_autoptr(GFileInputStream) stream = NULL;

	if (msg->content != NULL)
		return g_memory_input_stream_new_from_bytes(msg->content);
	if (msg->content_path == NULL)
		return g_memory_input_stream_new();
	file = g_file_new_for_path(msg->content_path);
	stream = g_file_read(file, NULL, error);
	if (stream == NULL)
		return NULL;
	if (!g_seekable_seek(G_SEEKABLE(stream), msg->content_offset, G_SEEK_SET, NULL, error))
		return NULL;
	/* Callers read exactly imta_message_size() bytes; the queue file has
	 * nothing after the content, so the stream ends where the message does. */
	return G_INPUT_STREAM(g_steal_pointer(&stream));
}

void
imta_message_free(ImtaMessage *msg)
{
	if (msg == NULL)
		return;
	g_free(msg->id);
	g_free(msg->return_path);
	g_free(msg->envid);
	g_free(msg->source_channel);
	g_free(msg->onward_channel);
	g_array_unref(msg->recipients);
	g_clear_pointer(&msg->content, g_bytes_unref);
	g_free(msg->content_path);
	g_free(msg);
}

ImtaMasterJob *
imta_master_job_new(const ImtaConfig *config, const ImtaChannel *channel,
		    const ImtaMasterJobSource *ops, gpointer source)
{
	ImtaMasterJob *job = g_new0(ImtaMasterJob, 1);

	job->config = config;
	job->channel = channel;
	job->ops = ops;
	job->source = source;
	return job;
}

void
imta_master_job_free(ImtaMasterJob *job)
{
	if (job == NULL)
		return;
	if (job->ops->free != NULL)
		job->ops->free(job->source);
	g_free(job);
}

const ImtaChannel *
imta_master_job_channel(const ImtaMasterJob *job)
{
	return job->channel;
}

const ImtaConfig *
imta_master_job_config(const ImtaMasterJob *job)
{
	return job->config;
}

ImtaMessage *
imta_master_job_next(ImtaMasterJob *job, GError **error)
{
	return job->ops->next(job->source, error);
}

ImtaMessage *
imta_master_job_try_next(ImtaMasterJob *job, gboolean *idle_r, GError **error)
{
	*idle_r = FALSE;
	if (job->ops->try_next == NULL)
		return job->ops->next(job->source, error);
	return job->ops->try_next(job->source, idle_r, error);
}

gboolean
imta_master_job_more_due(ImtaMasterJob *job)
{
	return job->ops->more_due == NULL || job->ops->more_due(job->source);
}

void
imta_master_job_report(ImtaMasterJob *job, ImtaMessage *msg, guint index, ImtaOutcome outcome,
		       const char *diagnostic)
{
	ImtaRecipient *rcpt;

	g_return_if_fail(index < msg->recipients->len);
	rcpt = &g_array_index(msg->recipients, ImtaRecipient, index);
	rcpt->outcome = outcome;
	rcpt->dsn_passed = FALSE;
	g_free(rcpt->diagnostic);
	rcpt->diagnostic = g_strdup(diagnostic);
}

void
imta_master_job_report_relayed(ImtaMasterJob *job, ImtaMessage *msg, guint index,
			       const char *diagnostic)
{
	g_return_if_fail(index < msg->recipients->len);
	imta_master_job_report(job, msg, index, IMTA_OUTCOME_DELIVERED, diagnostic);
	g_array_index(msg->recipients, ImtaRecipient, index).dsn_passed = TRUE;
}

gboolean
imta_master_job_finish(ImtaMasterJob *job, ImtaMessage *msg, GError **error)
{
	return job->ops->finish(job->source, msg, error);
}

ImtaEntryStatus
imta_master_job_each(ImtaMasterJob *job, ImtaMasterMessageFn deliver, gpointer data)
{
	g_autoptr(GError) error = NULL;
	gboolean finished = TRUE;
	ImtaMessage *msg;

	while (finished && (msg = imta_master_job_next(job, &error)) != NULL) {
		deliver(job, msg, data);
		finished = imta_master_job_finish(job, msg, &error);
	}
	if (finished && error == NULL)
		return IMTA_ENTRY_OK;
	imta_log(IMTA_LOG_ERROR, "%s: %s", job->channel != NULL ? job->channel->name : "master job",
		 error != NULL ? error->message : "the outcomes could not be recorded");
	return IMTA_ENTRY_TEMPFAIL;
}
