/*
 * lmtp.c - the lmtp channel plugin: the keyword that binds a channel to
 * LMTP (RFC 2033), the master program (the LMTP client of master.c, which
 * hands each message to the message stores its recipients live on) and
 * the slave program (the LMTP server that delivers into this system's
 * store).
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/imta.h>

#include "master.h"
#include "options.h"
#include "server.h"

static const ImtaPluginKeyword lmtp_keywords[] = {
	{ "lmtp", 0, 0, "the channel speaks LMTP (RFC 2033): delivery to message stores" },
	{ NULL }
};

/* Read every LMTP channel's option file now, so that a mistake in one
 * stops the program at start instead of deferring all its mail. */
static gboolean
lmtp_init(const ImtaConfig *config, GError **error)
{
	if (config == NULL || config->cnf == NULL)
		return TRUE;
	for (guint i = 0; i < config->cnf->channels->len; i++) {
		const ImtaChannel *channel = config->cnf->channels->pdata[i];

		if (channel->plugin == NULL || strcmp(channel->plugin->name, LMTP_PLUGIN_NAME) != 0)
			continue;
		if (lmtp_options_get(config, channel, error) == NULL)
			return FALSE;
	}
	return TRUE;
}

static void
lmtp_deinit(void)
{
	lmtp_options_forget();
}

IMTA_PLUGIN_DEFINE(
	.name = LMTP_PLUGIN_NAME,
	.version = PACKAGE_VERSION,
	.description = "LMTP channels: delivery to message stores (master) and into this "
		       "one (slave)",
	.keywords = lmtp_keywords,
	.init = lmtp_init,
	.deinit = lmtp_deinit,
	.master = lmtp_master,
	.slave = &lmtp_slave_ops,
);
