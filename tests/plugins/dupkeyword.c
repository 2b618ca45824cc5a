/*
 * dupkeyword.c - a plugin claiming the keyword of the bitbucket plugin.
 */
#include "config.h"

#include <imta/plugin.h>

static const ImtaPluginKeyword keywords[] = { { "bitbucket", 0, 0, "taken already" }, { NULL } };

static ImtaEntryStatus
dupkeyword_master(ImtaMasterJob *job)
{
	return IMTA_ENTRY_SOFTWARE;
}

IMTA_PLUGIN_DEFINE(
	.name = "dupkeyword",
	.version = "0",
	.keywords = keywords,
	.master = dupkeyword_master,
);
