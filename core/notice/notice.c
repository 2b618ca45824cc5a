/*
 * notice.c - deciding and queueing delivery status notifications: who
 * wants which notice (NOTIFY, the empty return path), the postmaster's
 * copies (sendpost, warnpost), the notice's signature (returnaddress,
 * RETURN_ADDRESS, RETURN_PERSONAL), and the enqueue itself, routed by the
 * rewrite rules like any message.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/imta.h>
#include <imta/queue.h>
#include <imta/route.h>
#include <imta/notice.h>

G_DEFINE_QUARK(imta-notice-error-quark, imta_notice_error)

const char *
imta_notice_kind_name(ImtaNoticeKind kind)
{
	switch (kind) {
	case IMTA_NOTICE_FAILURE:
		return "failure notice";
	case IMTA_NOTICE_DELAY:
		return "delay warning";
	case IMTA_NOTICE_SUCCESS:
		break;
	}
	return "success notice";
}

/* ---- decisions ------------------------------------------------------ */

gboolean
imta_notice_wanted(ImtaNoticeKind kind, guint notify)
{
	if (notify & IMTA_NOTIFY_NEVER)
		return FALSE;
	switch (kind) {
	case IMTA_NOTICE_FAILURE:
		return notify == 0 || (notify & IMTA_NOTIFY_FAILURE);
	case IMTA_NOTICE_DELAY:
		return notify == 0 || (notify & IMTA_NOTIFY_DELAY);
	case IMTA_NOTICE_SUCCESS:
		break;
	}
	return (notify & IMTA_NOTIFY_SUCCESS) != 0;
}

gboolean
imta_notice_postmaster_copy(ImtaNoticeKind kind, ImtaPostCopy mode, const char *return_path)
{
	if (return_path == NULL || return_path[0] == '\0' || kind == IMTA_NOTICE_SUCCESS)
		return FALSE;
	switch (mode) {
	case IMTA_POST_ALWAYS:
	case IMTA_POST_COPY:
		return TRUE;
	case IMTA_POST_DEFAULT:
		return kind == IMTA_NOTICE_FAILURE;
	case IMTA_POST_ERR:
	case IMTA_POST_NEVER:
		break;
	}
	return FALSE;
}

ImtaNoticeAction
imta_notice_success_action(const ImtaChannel *channel)
{
	static const char *const network[] = { "mx", "nomx", "defaultmx", "randommx",
					       "nonrandommx", "daemon" };

	for (guint i = 0; channel != NULL && i < G_N_ELEMENTS(network); i++)
		if (imta_channel_has_keyword(channel, network[i]))
			return IMTA_NOTICE_ACTION_RELAYED;
	return IMTA_NOTICE_ACTION_DELIVERED;
}

/* ---- the notice's particulars ----------------------------------------- */

static const char *
notice_host(const ImtaNoticeContext *ctx)
{
	const ImtaTailor *tailor = ctx->config->tailor;

	return tailor != NULL && tailor->hostname != NULL ? tailor->hostname : g_get_host_name();
}

/* The channel's returnaddress, else RETURN_ADDRESS, else postmaster@host. */
static char *
notice_return_address(const ImtaNoticeContext *ctx)
{
	const ImtaOptionDat *options = ctx->config->options;

	if (ctx->channel != NULL && ctx->channel->returnaddress != NULL)
		return g_strdup(ctx->channel->returnaddress);
	if (options != NULL && options->return_address != NULL)
		return g_strdup(options->return_address);
	return g_strconcat("postmaster@", notice_host(ctx), NULL);
}

/* CONTENT_RETURN_BLOCK_LIMIT in bytes; 0 = no limit. */
static goffset
notice_content_limit(const ImtaNoticeContext *ctx)
{
	const ImtaOptionDat *options = ctx->config->options;
	gint64 block = options != NULL && options->block_size > 0 ? options->block_size : 1024;

	if (options == NULL || options->content_return_block_limit <= 0 ||
	    options->content_return_block_limit > G_MAXINT64 / block)
		return 0;
	return options->content_return_block_limit * block;
}

static char
notice_kind_letter(ImtaNoticeKind kind)
{
	return kind == IMTA_NOTICE_FAILURE ? 'F' : kind == IMTA_NOTICE_DELAY ? 'W' : 'S';
}

/* ---- routing ---------------------------------------------------------- */

static const char *
notice_source_channel(const ImtaNoticeContext *ctx)
{
	const ImtaChannel *local = imta_cnf_local_channel(ctx->config->cnf);

	return local != NULL ? local->name : "l";
}

/* Route `address` as an envelope recipient of a message the local
 * channel sends and add it to the notice, its ORCPT the address as
 * given; *address_r (may be NULL) gets the rewritten address. */
static gboolean
notice_add(const ImtaNoticeContext *ctx, ImtaEnqueue *enq, const char *address,
	   char **address_r, GError **error)
{
	g_autoptr(GError) local = NULL;
	g_autofree char *orcpt = g_strconcat("rfc822;", address, NULL);
	ImtaRouteContext route_ctx = { ctx->config, notice_source_channel(ctx), NULL };
	ImtaRoute route;

	if (!imta_route_enqueue_recipient(&route_ctx, enq, address, orcpt, 0, &route, &local)) {
		g_set_error(error, IMTA_NOTICE_ERROR,
			    imta_route_error_is_temporary(local) ? IMTA_NOTICE_ERROR_TEMPORARY
								 : IMTA_NOTICE_ERROR_PERMANENT,
			    local->code == IMTA_ROUTE_ERROR_REFUSED ? "<%s> cannot be queued: %s"
								    : "<%s> does not route: %s",
			    address, local->message);
		return FALSE;
	}
	if (address_r != NULL)
		*address_r = g_steal_pointer(&route.address);
	imta_route_clear(&route);
	return TRUE;
}

/* The postmaster as a second recipient; a copy that cannot be made is
 * logged and left out rather than holding up the notice. */
static char *
notice_add_postmaster(const ImtaNoticeContext *ctx, const ImtaNoticeEvent *event,
		      ImtaEnqueue *enq, const char *postmaster, const char *return_path)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *address = NULL;

	if (g_ascii_strcasecmp(postmaster, return_path) == 0)
		return NULL;
	if (!notice_add(ctx, enq, postmaster, &address, &error)) {
		imta_log(IMTA_LOG_WARNING, "%s: no postmaster copy of the %s: %s",
			 event->entry->id, imta_notice_kind_name(event->kind), error->message);
		return NULL;
	}
	return g_steal_pointer(&address);
}

static gboolean
notice_enqueue_sink(gpointer data, const void *bytes, gsize length, GError **error)
{
	return imta_enqueue_write(data, bytes, length, error);
}

static void
notice_fill_files(ImtaNoticeOutcome *outcome, ImtaEnqueue *enq)
{
	const char *const *files = imta_enqueue_files(enq);
	g_autoptr(GStrvBuilder) ids = g_strv_builder_new();

	for (guint i = 0; files[i] != NULL; i++) {
		g_autofree char *base = g_path_get_basename(files[i]);
		char id[IMTA_QUEUE_ID_LENGTH + 1];
		guint attempts;
		gboolean held;

		if (!imta_queue_parse_name(base, &attempts, id, &held))
			g_strlcpy(id, "?", sizeof id);
		g_strv_builder_add(ids, id);
	}
	outcome->ids = g_strv_builder_end(ids);
	outcome->files = g_strdupv((char **)files);
}

/* ---- sending ------------------------------------------------------------ */

/* The recipients of the event that want this notice. */
static GArray *
notice_select(const ImtaNoticeContext *ctx, const ImtaNoticeEvent *event, gint64 now,
	      guint *declined_r)
{
	const ImtaMessage *msg = event->entry->message;
	GArray *rcpts = g_array_new(FALSE, TRUE, sizeof(ImtaNoticeRecipient));
	ImtaNoticeAction action = event->kind == IMTA_NOTICE_FAILURE ? IMTA_NOTICE_ACTION_FAILED
				  : event->kind == IMTA_NOTICE_DELAY
					  ? IMTA_NOTICE_ACTION_DELAYED
					  : imta_notice_success_action(ctx->channel);

	*declined_r = 0;
	for (guint i = 0; i < event->n_indices; i++) {
		const ImtaRecipient *rcpt;
		ImtaNoticeRecipient r;

		if (event->indices[i] >= imta_message_recipient_count(msg))
			continue;
		rcpt = imta_message_recipient(msg, event->indices[i]);
		if (!imta_notice_wanted(event->kind, rcpt->notify)) {
			(*declined_r)++;
			continue;
		}
		r = (ImtaNoticeRecipient){ rcpt->address, rcpt->orcpt, action, rcpt->diagnostic,
					   now };
		g_array_append_val(rcpts, r);
	}
	return rcpts;
}

static gboolean
notice_write(const ImtaNoticeContext *ctx, const ImtaNoticeEvent *event, GArray *rcpts,
	     gint64 now, ImtaEnqueue *enq, GError **error)
{
	const ImtaQueueEntry *entry = event->entry;
	const ImtaOptionDat *options = ctx->config->options;
	g_autofree char *from = notice_return_address(ctx);
	g_autofree char *message_id = NULL;
	g_autofree char *boundary = NULL;
	g_autoptr(GError) local = NULL;
	ImtaNoticeReport report = {
		.kind = event->kind,
		.reporting_mta = notice_host(ctx),
		.from_address = from,
		.from_personal = options != NULL ? options->return_personal : NULL,
		.to = imta_message_return_path(entry->message),
		.queue_id = entry->id,
		.envid = imta_message_envid(entry->message),
		.ret = imta_message_ret(entry->message),
		.arrival = entry->created,
		.date = now,
		.retry_until = event->retry_until,
		.content_limit = notice_content_limit(ctx),
		.rcpts = (const ImtaNoticeRecipient *)rcpts->data,
		.n_rcpts = rcpts->len,
	};

	message_id = ctx->message_id != NULL
			     ? g_strdup(ctx->message_id)
			     : g_strdup_printf("<%" G_GINT64_FORMAT ".%s.%c%08X@%s>", now,
					       entry->id, notice_kind_letter(event->kind),
					       g_random_int(), notice_host(ctx));
	boundary = ctx->boundary != NULL
			   ? g_strdup(ctx->boundary)
			   : g_strdup_printf("=_%s_%08X%08X", entry->id, g_random_int(),
					     g_random_int());
	report.message_id = message_id;
	report.boundary = boundary;
	if (imta_notice_report_write(&report, entry->message, notice_enqueue_sink, enq, &local))
		return TRUE;
	if (local->domain == IMTA_NOTICE_ERROR)
		g_propagate_error(error, g_steal_pointer(&local));
	else
		g_set_error(error, IMTA_NOTICE_ERROR, IMTA_NOTICE_ERROR_TEMPORARY, "%s",
			    local->message);
	return FALSE;
}

gboolean
imta_notice_send(const ImtaNoticeContext *ctx, const ImtaNoticeEvent *event,
		 ImtaNoticeOutcome *outcome_r, GError **error)
{
	const ImtaQueueEntry *entry = event->entry;
	const char *return_path = imta_message_return_path(entry->message);
	gint64 now = ctx->now > 0 ? ctx->now : g_get_real_time() / G_USEC_PER_SEC;
	g_autoptr(GArray) rcpts = NULL;
	g_autoptr(ImtaEnqueue) enq = NULL;
	g_autoptr(GError) local = NULL;
	g_autofree char *postmaster = NULL;
	g_autofree char *address = NULL;
	ImtaPostCopy mode;

	memset(outcome_r, 0, sizeof *outcome_r);
	outcome_r->result = IMTA_NOTICE_NOTHING;
	rcpts = notice_select(ctx, event, now, &outcome_r->declined);
	outcome_r->reported = rcpts->len;
	if (event->n_indices == 0)
		return TRUE;
	/* A notice about a notice could go back and forth for ever. */
	if (return_path[0] == '\0') {
		outcome_r->result = IMTA_NOTICE_NULL_RETURN_PATH;
		outcome_r->reported = 0;
		return TRUE;
	}
	if (rcpts->len == 0) {
		outcome_r->result = IMTA_NOTICE_NOT_REQUESTED;
		return TRUE;
	}
	enq = imta_enqueue_new(ctx->queue, notice_source_channel(ctx), "");
	imta_enqueue_set_priority(enq, entry->priority);
	if (!notice_add(ctx, enq, return_path, &address, error))
		return FALSE;
	mode = event->kind == IMTA_NOTICE_DELAY
		       ? (ctx->channel != NULL ? ctx->channel->warnpost : IMTA_POST_DEFAULT)
		       : (ctx->channel != NULL ? ctx->channel->sendpost : IMTA_POST_DEFAULT);
	if (imta_notice_postmaster_copy(event->kind, mode, return_path)) {
		g_autofree char *pm = notice_return_address(ctx);

		postmaster = notice_add_postmaster(ctx, event, enq, pm, return_path);
	}
	if (!notice_write(ctx, event, rcpts, now, enq, error))
		return FALSE;
	if (!imta_enqueue_commit(enq, &local)) {
		g_set_error(error, IMTA_NOTICE_ERROR, IMTA_NOTICE_ERROR_TEMPORARY,
			    "cannot queue the %s: %s", imta_notice_kind_name(event->kind),
			    local->message);
		return FALSE;
	}
	outcome_r->result = IMTA_NOTICE_SENT;
	outcome_r->recipient = g_steal_pointer(&address);
	outcome_r->postmaster = g_steal_pointer(&postmaster);
	notice_fill_files(outcome_r, enq);
	return TRUE;
}

void
imta_notice_outcome_clear(ImtaNoticeOutcome *outcome)
{
	g_clear_pointer(&outcome->ids, g_strfreev);
	g_clear_pointer(&outcome->files, g_strfreev);
	g_clear_pointer(&outcome->recipient, g_free);
	g_clear_pointer(&outcome->postmaster, g_free);
}
