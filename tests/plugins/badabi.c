/*
 * badabi.c - a plugin built for another ABI version; the loader must
 * refuse it without calling into it.
 */
#include "config.h"

#include <imta/plugin.h>

static const ImtaPluginKeyword keywords[] = { { "badabi", 0, 0, "never registered" }, { NULL } };

static ImtaEntryStatus
badabi_master(ImtaMasterJob *job)
{
	return IMTA_ENTRY_SOFTWARE;
}

G_MODULE_EXPORT const ImtaPlugin imta_plugin_descriptor = {
	.abi_version = 999,    /* never a real version */
	.name = "badabi",
	.version = "0",
	.keywords = keywords,
	.master = badabi_master,
};
