/*
 * registry.c - the loaded plugins and the channel keywords they own.
 */
#include "config.h"

#include <dlfcn.h>
#include <glib.h>

#include <imta/log.h>
#include <imta/plugin.h>

static void
plugin_module_free(gpointer p)
{
	ImtaPluginModule *module = p;

	if (module->initialised && module->plugin->deinit != NULL)
		module->plugin->deinit();
	/* Sanitizer builds keep modules mapped so leak reports can still
	 * symbolize their frames; the process is exiting anyway. */
#ifndef __SANITIZE_ADDRESS__
	if (module->handle != NULL)
		dlclose(module->handle);
#endif
	g_free(module->path);
	g_free(module->error);
	g_free(module);
}

ImtaPluginRegistry *
imta_plugin_registry_new(void)
{
	ImtaPluginRegistry *registry = g_new0(ImtaPluginRegistry, 1);

	registry->modules = g_ptr_array_new_with_free_func(plugin_module_free);
	registry->by_keyword = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	return registry;
}

const ImtaPlugin *
imta_plugin_registry_by_keyword(const ImtaPluginRegistry *registry, const char *keyword)
{
	g_autofree char *key = NULL;
	const ImtaPluginModule *module;

	if (registry == NULL)
		return NULL;
	key = g_ascii_strdown(keyword, -1);
	module = g_hash_table_lookup(registry->by_keyword, key);
	return module != NULL ? module->plugin : NULL;
}

guint
imta_plugin_registry_log_refusals(const ImtaPluginRegistry *registry)
{
	guint refused = 0;

	if (registry == NULL)
		return 0;
	for (guint i = 0; i < registry->modules->len; i++) {
		const ImtaPluginModule *module = registry->modules->pdata[i];

		if (module->state != IMTA_PLUGIN_REFUSED)
			continue;
		imta_log(IMTA_LOG_WARNING, "plugin file refused: %s", module->error);
		refused++;
	}
	return refused;
}

const ImtaPluginModule *
imta_plugin_registry_module_of(const ImtaPluginRegistry *registry, const ImtaPlugin *plugin)
{
	for (guint i = 0; i < registry->modules->len; i++) {
		const ImtaPluginModule *module = registry->modules->pdata[i];

		if (module->plugin == plugin)
			return module;
	}
	return NULL;
}

gboolean
imta_plugin_registry_init(ImtaPluginRegistry *registry, const ImtaConfig *config, GError **error)
{
	for (guint i = 0; i < registry->modules->len; i++) {
		ImtaPluginModule *module = registry->modules->pdata[i];
		g_autoptr(GError) local = NULL;

		if (module->state != IMTA_PLUGIN_LOADED || module->initialised)
			continue;
		if (module->plugin->init != NULL && !module->plugin->init(config, &local)) {
			g_set_error(error, IMTA_PLUGIN_ERROR, IMTA_PLUGIN_ERROR_INIT,
				    "%s: plugin %s failed to initialise: %s", module->path,
				    module->plugin->name, local != NULL ? local->message : "no reason given");
			return FALSE;
		}
		module->initialised = TRUE;
	}
	return TRUE;
}

void
imta_plugin_registry_free(ImtaPluginRegistry *registry)
{
	if (registry == NULL)
		return;
	g_hash_table_unref(registry->by_keyword);
	g_ptr_array_unref(registry->modules);
	g_free(registry->dir);
	g_free(registry);
}
