/*
 * route.c - rewrite a recipient and add it to an enqueue on the channel
 * the rules chose; the one place where a routing failure becomes a
 * temporary or a permanent one, with its RFC 3463 status.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/rewrite.h>
#include <imta/route.h>
#include <imta/jc_protocol.h>

G_DEFINE_QUARK(imta-route-error-quark, imta_route_error)

static ImtaRouteErrorCode
route_code_of(const GError *error)
{
	if (error->domain == IMTA_ADDRESS_ERROR)
		return IMTA_ROUTE_ERROR_SYNTAX;
	if (error->domain == IMTA_REWRITE_ERROR) {
		switch ((ImtaRewriteErrorCode)error->code) {
		case IMTA_REWRITE_ERROR_TEMPORARY:
			return IMTA_ROUTE_ERROR_TEMPORARY;
		case IMTA_REWRITE_ERROR_LOOP:
			return IMTA_ROUTE_ERROR_LOOP;
		case IMTA_REWRITE_ERROR_TEMPLATE:
			return IMTA_ROUTE_ERROR_CONFIG;
		case IMTA_REWRITE_ERROR_UNROUTABLE:
			break;
		}
		return IMTA_ROUTE_ERROR_UNROUTABLE;
	}
	if (error->domain == IMTA_DIRECTORY_ERROR)
		return IMTA_ROUTE_ERROR_TEMPORARY;
	if (error->domain == IMTA_QUEUE_ERROR && error->code != IMTA_QUEUE_ERROR_IO)
		return IMTA_ROUTE_ERROR_REFUSED;
	return IMTA_ROUTE_ERROR_TEMPORARY;
}

gboolean
imta_route_address(const ImtaRouteContext *ctx, const char *address, ImtaRoute *route_r,
		   GError **error)
{
	g_autoptr(GError) local = NULL;
	ImtaRewriteResult result = { 0 };
	ImtaRewriteContext rw = {
		.cnf = ctx->config->cnf,
		.mappings = ctx->config->mappings,
		.directory = ctx->config->directory,
		.source_channel = ctx->source_channel,
		.flags = IMTA_REWRITE_ENVELOPE | IMTA_REWRITE_FORWARD,
		.trace = ctx->trace,
	};

	route_r->channel = NULL;
	route_r->address = NULL;
	if (address == NULL || address[0] == '\0') {
		g_set_error(error, IMTA_ROUTE_ERROR, IMTA_ROUTE_ERROR_SYNTAX,
			    "an empty address cannot be routed");
		return FALSE;
	}
	if (!imta_rewrite_address(&rw, address, &result, &local)) {
		g_set_error_literal(error, IMTA_ROUTE_ERROR, route_code_of(local), local->message);
		return FALSE;
	}
	if (result.channel == NULL) {
		g_set_error(error, IMTA_ROUTE_ERROR, IMTA_ROUTE_ERROR_UNROUTABLE,
			    "no channel owns the routing host %s",
			    result.routing_host != NULL ? result.routing_host : "(none)");
		imta_rewrite_result_clear(&result);
		return FALSE;
	}
	route_r->channel = result.channel;
	route_r->address = g_steal_pointer(&result.address);
	imta_rewrite_result_clear(&result);
	return TRUE;
}

gboolean
imta_route_enqueue_recipient(const ImtaRouteContext *ctx, ImtaEnqueue *enq, const char *address,
			     const char *orcpt, guint notify, ImtaRoute *route_r, GError **error)
{
	g_autoptr(GError) local = NULL;
	ImtaRoute route;

	if (route_r != NULL) {
		route_r->channel = NULL;
		route_r->address = NULL;
	}
	if (!imta_route_address(ctx, address, &route, error))
		return FALSE;
	if (!imta_enqueue_add_recipient(enq, route.channel, route.address, orcpt, notify,
					&local)) {
		g_set_error_literal(error, IMTA_ROUTE_ERROR, route_code_of(local), local->message);
		imta_route_clear(&route);
		return FALSE;
	}
	if (route_r != NULL)
		*route_r = route;
	else
		imta_route_clear(&route);
	return TRUE;
}

void
imta_route_clear(ImtaRoute *route)
{
	route->channel = NULL;
	g_clear_pointer(&route->address, g_free);
}

gboolean
imta_route_error_is_temporary(const GError *error)
{
	return error == NULL || error->domain != IMTA_ROUTE_ERROR ||
	       error->code == IMTA_ROUTE_ERROR_TEMPORARY || error->code == IMTA_ROUTE_ERROR_CONFIG;
}

const char *
imta_route_error_status(const GError *error)
{
	if (error == NULL || error->domain != IMTA_ROUTE_ERROR)
		return "4.3.0";
	switch ((ImtaRouteErrorCode)error->code) {
	case IMTA_ROUTE_ERROR_TEMPORARY:
		return "4.4.3";
	case IMTA_ROUTE_ERROR_SYNTAX:
		return "5.1.3";
	case IMTA_ROUTE_ERROR_LOOP:
		return "5.4.6";
	case IMTA_ROUTE_ERROR_UNROUTABLE:
		return "5.1.2";
	case IMTA_ROUTE_ERROR_REFUSED:
		return "5.3.0";
	case IMTA_ROUTE_ERROR_CONFIG:
		return "4.3.5";
	}
	return "4.3.0";
}

char *
imta_route_diagnostic(const char *address, const GError *error)
{
	const char *status = imta_route_error_status(error);
	const char *reason = error != NULL ? error->message : "failed";

	if (imta_route_error_is_temporary(error))
		return g_strdup_printf("%s %s: %s", status, address, reason);
	if (error->code == IMTA_ROUTE_ERROR_REFUSED)
		return g_strdup_printf("%s %s cannot be queued: %s", status, address, reason);
	return g_strdup_printf("%s %s does not route: %s", status, address, reason);
}

static gboolean
route_is_channel_host(const ImtaChannel *channel, const char *host, gsize len)
{
	for (guint i = 0; i < channel->hosts->len; i++) {
		const ImtaChannelHost *h = channel->hosts->pdata[i];

		if (strlen(h->name) == len && g_ascii_strncasecmp(h->name, host, len) == 0)
			return TRUE;
	}
	return FALSE;
}

char *
imta_route_strip_channel(const ImtaChannel *channel, const char *address)
{
	const char *colon, *end;

	if (address[0] != '@' || (colon = strchr(address, ':')) == NULL)
		return g_strdup(address);
	end = strpbrk(address + 1, ",:");
	if (!route_is_channel_host(channel, address + 1, (gsize)(end - address - 1)))
		return g_strdup(address);
	/* "@a,@b:x@y" keeps "@b:x@y"; "@a:x@y" becomes "x@y". */
	return g_strdup(*end == ',' ? end + 1 : colon + 1);
}

ImtaQueue *
imta_route_open_queue(const ImtaConfig *config, GError **error)
{
	g_autofree char *notify = g_build_filename(config->tailor->run_dir, IMTA_JC_NOTIFY_SOCKET,
						   NULL);

	return imta_queue_open(config->tailor->queue_dir, config->cnf, notify, error);
}
