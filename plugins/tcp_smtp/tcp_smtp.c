/*
 * tcp_smtp.c - the tcp_smtp channel plugin: the keywords that bind a
 * channel to SMTP, their checks, the slave program (the SMTP server of
 * server.c) and the master program (the SMTP client of master.c, which
 * routes with route.c and hands messages over with relay.c).
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/imta.h>

#include "master.h"
#include "options.h"
#include "policy.h"
#include "server.h"

#define TCP_SMTP_NAME "tcp_smtp"

static const ImtaPluginKeyword tcp_smtp_keywords[] = {
	{ "smtp", 0, 0, "the channel speaks SMTP (CR LF line ends)" },
	{ "smtp_crlf", 0, 0, "the channel speaks SMTP with CR LF line ends (as smtp)" },
	{ "smtp_cr", 0, 0, "refused: bare CR line ends allow SMTP smuggling" },
	{ "smtp_lf", 0, 0, "refused: bare LF line ends allow SMTP smuggling" },
	{ "smtp_crorlf", 0, 0, "refused: bare CR or LF line ends allow SMTP smuggling" },
	{ "vrfydefault", 0, 0, "VRFY answers as HIDE_VERIFY in the option file says (default)" },
	{ "vrfyallow", 0, 0, "VRFY looks addresses up and answers in detail" },
	{ "vrfyhide", 0, 0, "VRFY answers 252 without looking anything up" },
	{ "expndefault", 0, 0, "EXPN allowed unless DISABLE_EXPAND=1 (the default)" },
	{ "expnallow", 0, 0, "EXPN lists the members of groups" },
	{ "expndisable", 0, 0, "EXPN is always refused" },
	{ NULL }
};

/* The keyword use of `channel` named one of `names`, the last given. */
static const ImtaKeywordUse *
tcp_smtp_find_use(const ImtaChannel *channel, const char *const *names)
{
	const ImtaKeywordUse *found = NULL;

	for (guint i = 0; i < channel->keywords->len; i++) {
		const ImtaKeywordUse *use = channel->keywords->pdata[i];

		for (guint n = 0; names[n] != NULL; n++)
			if (g_ascii_strcasecmp(use->name, names[n]) == 0)
				found = use;
	}
	return found;
}

/* Two keywords of one family written in the block itself contradict each
 * other; an inherited one is simply overridden. */
static gboolean
tcp_smtp_check_family(const ImtaChannel *channel, const char *const *names, GError **error)
{
	const ImtaKeywordUse *first = NULL;

	for (guint i = 0; i < channel->keywords->len; i++) {
		const ImtaKeywordUse *use = channel->keywords->pdata[i];

		if (use->inherited || !g_strv_contains(names, use->name))
			continue;
		if (first != NULL && g_ascii_strcasecmp(first->name, use->name) != 0) {
			imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &use->pos,
					  "channel %s: %s contradicts %s; keep one of them",
					  channel->name, use->name, first->name);
			return FALSE;
		}
		first = use;
	}
	return TRUE;
}

static gboolean
tcp_smtp_check_line_ends(const ImtaChannel *channel, GError **error)
{
	static const char *const bare[] = { "smtp_cr", "smtp_lf", "smtp_crorlf", NULL };
	const ImtaKeywordUse *use = tcp_smtp_find_use(channel, bare);

	if (use == NULL)
		return TRUE;
	imta_set_error_at(error, IMTA_CONFIG_ERROR_RANGE, &use->pos,
			  "channel %s: %s is not supported: only CR LF ends SMTP lines here, "
			  "since bare CR or LF line ends make SMTP smuggling possible; use smtp",
			  channel->name, use->name);
	return FALSE;
}

/* AUTH is offered only inside TLS, so SASL without TLS could never work. */
static gboolean
tcp_smtp_check_sasl(const ImtaChannel *channel, GError **error)
{
	static const char *const sasl[] = { "maysaslserver", "mustsaslserver", NULL };
	const ImtaKeywordUse *use;

	if (channel->sasl_server == IMTA_SASL_NONE || channel->tls_server != IMTA_TLS_NONE)
		return TRUE;
	use = tcp_smtp_find_use(channel, sasl);
	imta_set_error_at(error, IMTA_CONFIG_ERROR_MISSING, use != NULL ? &use->pos : &channel->pos,
			  "channel %s: %s needs maytlsserver or musttlsserver: SMTP AUTH is "
			  "offered only after STARTTLS", channel->name,
			  use != NULL ? use->name : "SASL");
	return FALSE;
}

static gboolean
tcp_smtp_validate_channel(const ImtaChannel *channel, GError **error)
{
	static const char *const vrfy[] = { "vrfydefault", "vrfyallow", "vrfyhide", NULL };
	static const char *const expn[] = { "expndefault", "expnallow", "expndisable", NULL };

	return tcp_smtp_check_line_ends(channel, error) &&
	       tcp_smtp_check_family(channel, vrfy, error) &&
	       tcp_smtp_check_family(channel, expn, error) && tcp_smtp_check_sasl(channel, error);
}

static gboolean
tcp_smtp_check_switch_target(const ImtaConfig *config, const ImtaChannel *channel,
			     const char *keyword, const char *target, GError **error)
{
	const char *const names[] = { keyword, NULL };
	const ImtaKeywordUse *use;

	if (target == NULL || imta_cnf_channel_by_name(config->cnf, target) != NULL)
		return TRUE;
	use = tcp_smtp_find_use(channel, names);
	imta_set_error_at(error, IMTA_CONFIG_ERROR_MISSING,
			  use != NULL && use->arg_pos != NULL ? &use->arg_pos[0] : &channel->pos,
			  "channel %s: %s names channel %s, which imta.cnf does not define",
			  channel->name, keyword, target);
	return FALSE;
}

/* Read every SMTP channel's option file now, so that a mistake in one
 * stops the program at start instead of refusing connections later. */
static gboolean
tcp_smtp_init(const ImtaConfig *config, GError **error)
{
	gboolean have_tls;

	if (config == NULL || config->cnf == NULL)
		return TRUE;
	have_tls = config->options != NULL && config->options->tls_certificate_file != NULL;
	for (guint i = 0; i < config->cnf->channels->len; i++) {
		const ImtaChannel *channel = config->cnf->channels->pdata[i];

		if (channel->plugin == NULL || strcmp(channel->plugin->name, TCP_SMTP_NAME) != 0)
			continue;
		if (tcp_smtp_options_get(config, channel, error) == NULL ||
		    !tcp_smtp_check_switch_target(config, channel, "saslswitchchannel",
						  channel->saslswitchchannel, error) ||
		    !tcp_smtp_check_switch_target(config, channel, "tlsswitchchannel",
						  channel->tlsswitchchannel, error))
			return FALSE;
		if (channel->tls_server == IMTA_TLS_MUST && !have_tls)
			imta_log(IMTA_LOG_WARNING, "channel %s has musttlsserver, but option.dat "
				 "sets no TLS_CERTIFICATE_FILE: its SMTP server refuses all mail",
				 channel->name);
	}
	return TRUE;
}

static void
tcp_smtp_deinit(void)
{
	tcp_smtp_options_forget();
	smtp_policy_forget();
}

IMTA_PLUGIN_DEFINE(
	.name = TCP_SMTP_NAME,
	.version = PACKAGE_VERSION,
	.description = "SMTP channels: the ESMTP server (slave) and client (master)",
	.keywords = tcp_smtp_keywords,
	.init = tcp_smtp_init,
	.validate_channel = tcp_smtp_validate_channel,
	.deinit = tcp_smtp_deinit,
	.master = tcp_smtp_master,
	.slave = &tcp_smtp_slave_ops,
);
