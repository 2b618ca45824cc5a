/*
 * forward.c - a copy of a message a master holds, queued onward to new
 * recipients with its envelope kept (forward.h).
 */
#include "config.h"

#include <gio/gio.h>

#include <imta/forward.h>

/* Content is copied in pieces this large: memory stays bounded. */
#define FORWARD_COPY_BUFFER 65536

struct _ImtaForward {
	ImtaMessage *msg;
	ImtaEnqueue *enq;
	GHashTable *added;      /* "channel address" of every recipient added */
	gboolean committed;
};

ImtaForward *
imta_forward_new(ImtaQueue *queue, const char *source_channel, ImtaMessage *msg)
{
	ImtaForward *fwd = g_new0(ImtaForward, 1);

	fwd->msg = msg;
	fwd->enq = imta_enqueue_new(queue, source_channel, imta_message_return_path(msg));
	if (imta_message_envid(msg) != NULL)
		imta_enqueue_set_envid(fwd->enq, imta_message_envid(msg));
	imta_enqueue_set_ret(fwd->enq, imta_message_ret(msg));
	imta_enqueue_set_priority(fwd->enq, imta_message_priority(msg));
	fwd->added = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	return fwd;
}

gboolean
imta_forward_add(ImtaForward *fwd, guint index, const ImtaChannel *channel, const char *address,
		 GError **error)
{
	const ImtaRecipient *rcpt = imta_message_recipient(fwd->msg, index);
	char *key = g_strdup_printf("%s %s", channel->name, address);
	g_autofree char *orcpt = NULL;

	if (!g_hash_table_add(fwd->added, key))
		return TRUE;
	orcpt = rcpt->orcpt != NULL ? g_strdup(rcpt->orcpt)
				    : g_strdup_printf("rfc822;%s", rcpt->address);
	if (imta_enqueue_add_recipient(fwd->enq, channel, address, orcpt, rcpt->notify, error))
		return TRUE;
	g_hash_table_remove(fwd->added, key);
	return FALSE;
}

guint
imta_forward_count(const ImtaForward *fwd)
{
	return g_hash_table_size(fwd->added);
}

static gboolean
forward_copy_content(ImtaForward *fwd, GError **error)
{
	g_autoptr(GInputStream) in = imta_message_open_content(fwd->msg, error);
	g_autofree char *buffer = NULL;
	gssize n;

	if (in == NULL)
		return FALSE;
	buffer = g_malloc(FORWARD_COPY_BUFFER);
	while ((n = g_input_stream_read(in, buffer, FORWARD_COPY_BUFFER, NULL, error)) > 0)
		if (!imta_enqueue_write(fwd->enq, buffer, (gsize)n, error))
			return FALSE;
	return n == 0;
}

gboolean
imta_forward_commit(ImtaForward *fwd, GError **error)
{
	if (imta_forward_count(fwd) == 0)
		return TRUE;
	if (!forward_copy_content(fwd, error) || !imta_enqueue_commit(fwd->enq, error))
		return FALSE;
	fwd->committed = TRUE;
	return TRUE;
}

const char *const *
imta_forward_files(const ImtaForward *fwd)
{
	return fwd->committed ? imta_enqueue_files(fwd->enq) : NULL;
}

void
imta_forward_free(ImtaForward *fwd)
{
	if (fwd == NULL)
		return;
	imta_enqueue_free(fwd->enq);
	g_hash_table_unref(fwd->added);
	g_free(fwd);
}
