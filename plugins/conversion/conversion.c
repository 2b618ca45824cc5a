/*
 * conversion.c - the conversion plugin: the conversion channel, which runs
 * external programs on body parts as the conversions file says (see
 * convert.c), and the defragment channel, which reassembles message/
 * partial (see defragment.c).  Messages reach both by diversion at
 * enqueue time (queue.h); both queue what they made for the channel the
 * message was going to, and report their recipients done only once that
 * is durable.  This file holds the descriptor and what both share.
 */
#include "config.h"

#include <string.h>
#include <gio/gio.h>

#include <imta/jc_protocol.h>

#include "conversion.h"

static const ImtaPluginKeyword conversion_keywords[] = {
	{ "conversion", 0, 0,
	  "the conversion channel: run the conversions file's programs on body parts" },
	{ "reassemble", 0, 1,
	  "the defragment channel: reassemble message/partial; argument: time limit "
	  "(ISO 8601 duration or seconds, default PT12H)" },
	{ NULL }
};

GBytes *
conversion_read_content(const ImtaMessage *msg, GError **error)
{
	g_autoptr(GInputStream) in = NULL;
	goffset size = imta_message_size(msg);
	g_autoptr(GByteArray) buf = NULL;
	guint8 chunk[65536];
	gssize n;

	if (size > CONVERSION_MAX_MESSAGE) {
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_LIMIT,
			    "the message is larger than %" G_GINT64_FORMAT " bytes",
			    (gint64) CONVERSION_MAX_MESSAGE);
		return NULL;
	}
	in = imta_message_open_content(msg, error);
	if (in == NULL)
		return NULL;
	buf = g_byte_array_sized_new(size > 0 ? (guint) size : 0);
	while ((n = g_input_stream_read(in, chunk, sizeof chunk, NULL, error)) > 0) {
		if ((goffset) buf->len + n > CONVERSION_MAX_MESSAGE) {
			g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_LIMIT,
				    "the message is larger than %" G_GINT64_FORMAT " bytes",
				    (gint64) CONVERSION_MAX_MESSAGE);
			return NULL;
		}
		g_byte_array_append(buf, chunk, (guint) n);
	}
	if (n < 0)
		return NULL;
	return g_byte_array_free_to_bytes(g_steal_pointer(&buf));
}

ImtaQueue *
conversion_queue(ConvChannelJob *cj, GError **error)
{
	g_autofree char *notify = NULL;

	if (cj->queue != NULL)
		return cj->queue;
	notify = g_build_filename(cj->config->tailor->run_dir, IMTA_JC_NOTIFY_SOCKET, NULL);
	cj->queue = imta_queue_open(cj->config->tailor->queue_dir, cj->config->cnf, notify, error);
	return cj->queue;
}

gboolean
conversion_enqueue(ConvChannelJob *cj, const ImtaMessage *msg, GBytes *content,
		   const ImtaChannel *channel, const GArray *indices, char *const *addresses,
		   char **queue_id_r, GError **error)
{
	ImtaQueue *queue = conversion_queue(cj, error);
	g_autoptr(ImtaEnqueue) enq = NULL;
	const char *const *files;
	gsize len = 0;
	const char *data = g_bytes_get_data(content, &len);

	if (queue == NULL)
		return FALSE;
	enq = imta_enqueue_new(queue, cj->channel->name, imta_message_return_path(msg));
	if (imta_message_envid(msg) != NULL)
		imta_enqueue_set_envid(enq, imta_message_envid(msg));
	imta_enqueue_set_ret(enq, imta_message_ret(msg));
	imta_enqueue_set_priority(enq, imta_message_priority(msg));
	for (guint i = 0; i < indices->len; i++) {
		guint k = g_array_index(indices, guint, i);
		const ImtaRecipient *rcpt = imta_message_recipient(msg, k);
		const char *address = addresses != NULL && addresses[i] != NULL ? addresses[i]
										 : rcpt->address;

		if (!imta_enqueue_add_recipient(enq, channel, address, rcpt->orcpt, rcpt->notify,
						error))
			return FALSE;
	}
	if (!imta_enqueue_write(enq, data, len, error) || !imta_enqueue_commit(enq, error))
		return FALSE;
	files = imta_enqueue_files(enq);
	if (queue_id_r != NULL) {
		const char *name = files[0] != NULL ? strrchr(files[0], '/') : NULL;

		*queue_id_r = g_strndup(name != NULL ? name + 3 : "", IMTA_QUEUE_ID_LENGTH);
	}
	return TRUE;
}

gboolean
defragment_expiry(const ImtaChannel *channel, gint64 *seconds_r, GError **error)
{
	const char *const *args = imta_channel_keyword(channel, "reassemble");
	const char *why = NULL;
	gint64 v = 0;

	*seconds_r = DEFRAGMENT_DEFAULT_EXPIRY;
	if (args == NULL || args[0] == NULL)
		return TRUE;
	if ((imta_parse_int(args[0], &v, &why) || imta_parse_duration(args[0], &v, &why)) &&
	    v >= 1 && v <= 366 * 24 * 60 * 60) {
		*seconds_r = v;
		return TRUE;
	}
	g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_RANGE,
		    "reassemble: expected a time limit (ISO 8601 duration such as P2D or PT30M, "
		    "or seconds) from 1 second to 366 days, got \"%s\"", args[0]);
	return FALSE;
}

static gboolean
conversion_validate_channel(const ImtaChannel *channel, GError **error)
{
	gint64 expiry;
	g_autoptr(GError) local = NULL;

	if (!imta_channel_has_keyword(channel, "reassemble"))
		return TRUE;
	if (imta_channel_has_keyword(channel, "conversion")) {
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_SYNTAX,
			    "channel %s: conversion and reassemble exclude each other",
			    channel->name);
		return FALSE;
	}
	if (!defragment_expiry(channel, &expiry, &local)) {
		const ImtaKeywordUse *use = NULL;

		for (guint i = 0; i < channel->keywords->len; i++) {
			const ImtaKeywordUse *k = g_ptr_array_index(channel->keywords, i);

			if (strcmp(k->name, "reassemble") == 0)
				use = k;
		}
		imta_set_error_at(error, IMTA_CONFIG_ERROR_RANGE,
				  use != NULL && use->arg_pos != NULL ? &use->arg_pos[0] : NULL,
				  "%s", local->message);
		return FALSE;
	}
	return TRUE;
}

static ImtaEntryStatus
conversion_entry(ImtaMasterJob *job)
{
	ConvChannelJob cj = {
		.job = job,
		.config = imta_master_job_config(job),
		.channel = imta_master_job_channel(job),
	};
	ImtaEntryStatus status;

	if (cj.config == NULL || cj.channel == NULL) {
		imta_log(IMTA_LOG_ERROR, "conversion: the job has no configuration or channel");
		return IMTA_ENTRY_SOFTWARE;
	}
	if (imta_channel_has_keyword(cj.channel, "reassemble"))
		status = defragment_master(&cj);
	else
		status = conversion_master(&cj);
	g_clear_pointer(&cj.queue, imta_queue_close);
	return status;
}

IMTA_PLUGIN_DEFINE(
	.name = "conversion",
	.version = PACKAGE_VERSION,
	.description = "body-part conversion by external programs (CONVERSIONS) and "
		       "message/partial reassembly (defragment)",
	.keywords = conversion_keywords,
	.validate_channel = conversion_validate_channel,
	.master = conversion_entry,
);
