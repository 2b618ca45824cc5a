/*
 * fuzz-imta_cnf.c - libFuzzer harness for the imta.cnf parser, with and
 * without plugins registered, followed by plugin binding.
 */
#include "config.h"

#include <stdint.h>
#include <glib.h>
#include <imta/imta_cnf.h>
#include <imta/plugin.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ImtaEntryStatus
fuzz_master(ImtaMasterJob *job)
{
	return IMTA_ENTRY_OK;
}

static const ImtaPluginKeyword fuzz_keywords[] = {
	{ "smtp", 0, 0, "" }, { "lmtp", 1, 3, "" }, { "bitbucket", 0, 0, "" }, { NULL }
};
static const ImtaPlugin fuzz_plugin = {
	IMTA_PLUGIN_ABI_VERSION, "fuzz", "1", "", fuzz_keywords, .master = fuzz_master,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static ImtaPluginRegistry *registry;
	ImtaCnf *cnf;

	if (registry == NULL) {
		registry = imta_plugin_registry_new();
		imta_plugin_registry_add_static(registry, &fuzz_plugin, "fuzz", NULL);
	}
	/* Without a registry every word is accepted at parse time and judged
	 * when binding; with one, unknown words fail at once. */
	cnf = imta_cnf_parse_text("fuzz.cnf", (const char *)data, size, NULL, NULL);
	if (cnf != NULL) {
		imta_cnf_bind_plugins(cnf, registry, NULL);
		for (guint i = 0; i < cnf->channels->len; i++) {
			gint ages[IMTA_MAX_NOTICES];
			const ImtaChannel *channel = cnf->channels->pdata[i];

			imta_cnf_notices(cnf, channel, IMTA_PRIORITY_NORMAL, ages);
			imta_channel_backoff(channel, IMTA_PRIORITY_URGENT, 3);
			imta_cnf_channel_by_host(cnf, imta_channel_official_host(channel));
		}
		imta_cnf_free(cnf);
	}
	cnf = imta_cnf_parse_text("fuzz.cnf", (const char *)data, size, registry, NULL);
	imta_cnf_free(cnf);
	return 0;
}
