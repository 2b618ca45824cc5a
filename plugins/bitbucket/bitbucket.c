/*
 * bitbucket.c - the bitbucket channel: every message queued to it is
 * accepted and discarded.
 *
 * It is also the smallest complete channel plugin, and the example the
 * imta-plugin(3) manual walks through: one descriptor naming the keyword
 * that binds a channel to the plugin, and a master entry point that takes
 * each message from the job and reports every recipient's outcome.
 */
#include "config.h"

#include <imta/imta.h>

static const ImtaPluginKeyword bitbucket_keywords[] = {
	{ "bitbucket", 0, 0, "discard every message queued to this channel" },
	{ NULL }
};

static void
bitbucket_discard(ImtaMasterJob *job, ImtaMessage *msg, gpointer data)
{
	const ImtaChannel *channel = imta_master_job_channel(job);
	guint n = imta_message_recipient_count(msg);

	for (guint i = 0; i < n; i++)
		imta_master_job_report(job, msg, i, IMTA_OUTCOME_DELIVERED,
				       "2.0.0 discarded by the bitbucket channel");
	imta_log(IMTA_LOG_INFO, "%s: discarded message %s for %u recipient%s",
		 channel != NULL ? channel->name : "bitbucket", imta_message_id(msg), n,
		 n == 1 ? "" : "s");
}

static ImtaEntryStatus
bitbucket_master(ImtaMasterJob *job)
{
	return imta_master_job_each(job, bitbucket_discard, NULL);
}

IMTA_PLUGIN_DEFINE(
	.name = "bitbucket",
	.version = PACKAGE_VERSION,
	.description = "accepts and discards messages",
	.keywords = bitbucket_keywords,
	.master = bitbucket_master,
);
