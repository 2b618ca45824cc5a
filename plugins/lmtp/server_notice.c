/*
 * server_notice.c - the LMTP server's success notices (server_notice.h):
 * the report is written by the notice module from the stored message,
 * then queued like any message, routed from the server's channel.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/imta.h>
#include <imta/notice.h>
#include <imta/queue.h>
#include <imta/route.h>

#include "server_notice.h"

static gboolean
notice_sink(gpointer data, const void *bytes, gsize length, GError **error)
{
	return imta_enqueue_write(data, bytes, length, error);
}

gboolean
lmtp_server_success_notice(const LmtpNoticeMessage *m, const LmtpNoticeRecipient *rcpts,
			   guint n_rcpts, GError **error)
{
	const ImtaOptionDat *options = m->config->options;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	g_autofree ImtaNoticeRecipient *report_rcpts = NULL;
	g_autofree char *from = NULL;
	g_autofree char *message_id = NULL;
	g_autofree char *boundary = NULL;
	g_autoptr(ImtaEnqueue) enq = NULL;
	ImtaMessage *original;
	ImtaRouteContext route = {
		.config = m->config,
		.source_channel = m->channel->name,
	};
	ImtaNoticeReport report;
	gboolean ok;

	if (n_rcpts == 0 || m->return_path == NULL || m->return_path[0] == '\0')
		return TRUE;
	from = options != NULL && options->return_address != NULL
		? g_strdup(options->return_address) : g_strconcat("postmaster@", m->hostname, NULL);
	message_id = g_strdup_printf("<%s.success.%08x@%s>", m->id, g_random_int(), m->hostname);
	boundary = g_strdup_printf("=_%s.%08x%08x", m->id, g_random_int(), g_random_int());
	report_rcpts = g_new0(ImtaNoticeRecipient, n_rcpts);
	for (guint i = 0; i < n_rcpts; i++)
		report_rcpts[i] = (ImtaNoticeRecipient){
			.address = rcpts[i].address,
			.orcpt = rcpts[i].orcpt,
			.action = IMTA_NOTICE_ACTION_DELIVERED,
			.diagnostic = rcpts[i].diagnostic,
			.last_attempt = now,
		};
	report = (ImtaNoticeReport){
		.kind = IMTA_NOTICE_SUCCESS,
		.reporting_mta = m->hostname,
		.from_address = from,
		.to = m->return_path,
		.queue_id = m->id,
		.envid = m->envid,
		.ret = m->ret,
		.arrival = m->arrival,
		.date = now,
		.message_id = message_id,
		.boundary = boundary,
		.content_limit = options != NULL && options->content_return_block_limit > 0
			? options->content_return_block_limit * MAX(options->block_size, 1) : 0,
		.rcpts = report_rcpts,
		.n_rcpts = n_rcpts,
	};
	original = imta_message_new(m->id, m->return_path);
	if (m->envid != NULL)
		imta_message_set_envid(original, m->envid);
	imta_message_set_ret(original, m->ret);
	imta_message_set_content_bytes(original, m->content);
	enq = imta_enqueue_new(m->queue, m->channel->name, "");
	ok = imta_route_enqueue_recipient(&route, enq, m->return_path, NULL, IMTA_NOTIFY_NEVER,
					  NULL, error) &&
	     imta_notice_report_write(&report, original, notice_sink, enq, error) &&
	     imta_enqueue_commit(enq, error);
	imta_message_free(original);
	return ok;
}
