/*
 * cmd_plugin_list.c - imsimta plugin-list: what the plugin directory holds,
 * what was refused and why, and which channels each plugin serves.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <glib.h>

#include <imta/imta.h>
#include "commands.h"

/* Channels of imta.cnf bound to `plugin`, as a NULL-terminated vector. */
static GStrv
bound_channels(const ImtaConfig *config, const ImtaPlugin *plugin)
{
	g_autoptr(GStrvBuilder) builder = g_strv_builder_new();

	for (guint i = 0; config->cnf != NULL && i < config->cnf->channels->len; i++) {
		const ImtaChannel *channel = config->cnf->channels->pdata[i];

		if (plugin != NULL && channel->plugin == plugin)
			g_strv_builder_add(builder, channel->name);
	}
	return g_strv_builder_end(builder);
}

static GStrv
plugin_keywords(const ImtaPlugin *plugin)
{
	g_autoptr(GStrvBuilder) builder = g_strv_builder_new();

	for (const ImtaPluginKeyword *kw = plugin->keywords; kw->name != NULL; kw++)
		g_strv_builder_add(builder, kw->name);
	return g_strv_builder_end(builder);
}

static void
json_string(GString *out, const char *text)
{
	g_string_append_c(out, '"');
	for (const unsigned char *p = (const unsigned char *)(text != NULL ? text : ""); *p; p++) {
		if (*p == '"' || *p == '\\')
			g_string_append_printf(out, "\\%c", *p);
		else if (*p < 0x20)
			g_string_append_printf(out, "\\u%04x", *p);
		else
			g_string_append_c(out, (char)*p);
	}
	g_string_append_c(out, '"');
}

static void
json_strings(GString *out, char **values)
{
	g_string_append_c(out, '[');
	for (guint i = 0; values[i] != NULL; i++) {
		if (i > 0)
			g_string_append(out, ", ");
		json_string(out, values[i]);
	}
	g_string_append_c(out, ']');
}

static void
print_json(const ImtaConfig *config)
{
	g_autoptr(GString) out = g_string_new("[");
	const GPtrArray *modules = config->plugins->modules;

	for (guint i = 0; i < modules->len; i++) {
		const ImtaPluginModule *module = modules->pdata[i];
		const ImtaPlugin *plugin = module->plugin;

		g_string_append(out, i == 0 ? "\n  {" : ",\n  {");
		g_string_append(out, "\"path\": ");
		json_string(out, module->path);
		if (module->state == IMTA_PLUGIN_REFUSED) {
			g_string_append(out, ", \"state\": \"refused\", \"error\": ");
			json_string(out, module->error);
		} else {
			g_auto(GStrv) keywords = plugin_keywords(plugin);
			g_auto(GStrv) channels = bound_channels(config, plugin);

			g_string_append(out, ", \"state\": \"loaded\", \"name\": ");
			json_string(out, plugin->name);
			g_string_append(out, ", \"version\": ");
			json_string(out, plugin->version);
			g_string_append_printf(out, ", \"abi\": %u, \"master\": %s, \"slave\": %s",
					       plugin->abi_version, plugin->master ? "true" : "false",
					       plugin->slave ? "true" : "false");
			g_string_append(out, ", \"description\": ");
			json_string(out, plugin->description);
			g_string_append(out, ", \"keywords\": ");
			json_strings(out, keywords);
			g_string_append(out, ", \"channels\": ");
			json_strings(out, channels);
		}
		g_string_append_c(out, '}');
	}
	g_string_append(out, modules->len > 0 ? "\n]\n" : "]\n");
	fputs(out->str, stdout);
}

static void
print_text(const ImtaConfig *config)
{
	const GPtrArray *modules = config->plugins->modules;

	printf("Plugin directory: %s\n", config->tailor->plugin_dir);
	if (modules->len == 0)
		printf("\n(no plugins)\n");
	for (guint i = 0; i < modules->len; i++) {
		const ImtaPluginModule *module = modules->pdata[i];
		const ImtaPlugin *plugin = module->plugin;
		g_auto(GStrv) keywords = NULL;
		g_auto(GStrv) channels = NULL;
		g_autofree char *kw_text = NULL, *ch_text = NULL;

		if (module->state == IMTA_PLUGIN_REFUSED) {
			printf("\nREFUSED %s\n  reason:      %s\n", module->path, module->error);
			continue;
		}
		keywords = plugin_keywords(plugin);
		channels = bound_channels(config, plugin);
		kw_text = g_strjoinv(" ", keywords);
		ch_text = channels[0] != NULL ? g_strjoinv(" ", channels) : g_strdup("(none)");
		printf("\n%s %s\n", plugin->name, plugin->version);
		printf("  abi:         %u\n", plugin->abi_version);
		printf("  programs:    %s%s%s\n", plugin->master ? "master" : "",
		       plugin->master && plugin->slave ? " " : "", plugin->slave ? "slave" : "");
		printf("  keywords:    %s\n", kw_text);
		printf("  channels:    %s\n", ch_text);
		printf("  path:        %s\n", module->path);
		if (plugin->description != NULL)
			printf("  description: %s\n", plugin->description);
	}
}

int
cli_plugin_list(const CliGlobal *global, int argc, char **argv)
{
	gboolean json = FALSE;
	const GOptionEntry entries[] = {
		{ "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON (one object per plugin file)", NULL },
		{ NULL }
	};
	g_autoptr(ImtaConfig) config = NULL;
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	int status = 0;

	if (!cli_parse_options(&argc, &argv, "plugin-list", "",
			       "Lists every file of the plugin directory: the plugin's name, version, "
			       "ABI, keywords, master/slave programs, path, and the imta.cnf channels "
			       "bound to it, or why the file was refused.", entries, &status))
		return status;
	/* A broken imta.cnf must not hide the plugins: list what loaded and
	 * report the configuration errors after. */
	config = imta_config_load(global->config_dir, IMTA_CONFIG_LOAD_PLUGINS | IMTA_CONFIG_KEEP_GOING |
				  IMTA_CONFIG_PARTIAL, errors, NULL);
	if (config == NULL || config->plugins == NULL) {
		for (guint i = 0; i < errors->len; i++)
			fprintf(stderr, "imsimta: %s\n", (char *)errors->pdata[i]);
		return EXIT_CONFIG;
	}
	if (json)
		print_json(config);
	else
		print_text(config);
	for (guint i = 0; i < errors->len; i++)
		fprintf(stderr, "imsimta: %s\n", (char *)errors->pdata[i]);
	return errors->len > 0 ? EXIT_CONFIG : 0;
}
