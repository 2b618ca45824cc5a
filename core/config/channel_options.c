/*
 * channel_options.c - channel option files (<channel>_option) read against
 * a plugin's option table, and the per-process cache that lets every
 * session of a channel share one parsed copy.
 */
#include "config.h"

#include <glib.h>

#include <imta/channel_options.h>
#include <imta/cfgfile.h>
#include <imta/log.h>

#define CHANNEL_OPTIONS_COMMENTS "!#;"

static gboolean
channel_options_set(const ImtaChannelOptionsSpec *spec, void *target, GHashTable *seen,
		    const ImtaOptionLine *line, GError **error)
{
	const ImtaOptionSpec *row;

	if (line->kind == IMTA_OPTION_LINE_SECTION) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &line->pos,
				  "a channel option file has no sections; expected NAME=value");
		return FALSE;
	}
	row = imta_option_lookup(spec->table, spec->n_rows, line->name);
	if (row == NULL)
		return imta_option_unknown(error, &line->name_pos, spec->what, line->name,
					   imta_option_suggest(spec->table, spec->n_rows,
							       line->name, NULL));
	if (g_hash_table_contains(seen, row)) {
		g_autofree char *where = imta_source_pos_format(&line->name_pos);

		imta_log(IMTA_LOG_WARNING, "%s: %s is set again; the later value wins", where,
			 row->name);
	}
	g_hash_table_add(seen, (gpointer)row);
	return imta_option_set_row(row, target, line->value, &line->value_pos, error);
}

gboolean
imta_channel_options_read(const ImtaChannelOptionsSpec *spec, const char *path, void *target,
			  GHashTable *given, gboolean *found_r, GError **error)
{
	g_autoptr(GHashTable) seen = g_hash_table_new(g_direct_hash, g_direct_equal);
	ImtaCfgFile *cf;
	GStringChunk *names;
	GError *local = NULL;
	ImtaOptionLine line = { 0 };

	imta_option_table_defaults(spec->table, spec->n_rows, target, IMTA_SCOPE_GLOBAL);
	if (found_r != NULL)
		*found_r = FALSE;
	if (!g_file_test(path, G_FILE_TEST_EXISTS))
		return TRUE;
	/* Error messages are complete strings, so the file names their
	 * positions point to need not outlive the parse. */
	names = g_string_chunk_new(128);
	cf = imta_cfg_file_open(path, IMTA_CFG_CONTINUATION, CHANNEL_OPTIONS_COMMENTS, names,
				&local);
	if (cf != NULL) {
		while (imta_option_next_line(cf, CHANNEL_OPTIONS_COMMENTS, &line, &local))
			if (!channel_options_set(spec, target, seen, &line, &local))
				break;
		imta_option_line_clear(&line);
		imta_cfg_file_free(cf);
	}
	g_string_chunk_free(names);
	if (local != NULL) {
		g_propagate_error(error, local);
		return FALSE;
	}
	if (found_r != NULL)
		*found_r = TRUE;
	if (given != NULL) {
		GHashTableIter iter;
		gpointer row;

		g_hash_table_iter_init(&iter, seen);
		while (g_hash_table_iter_next(&iter, &row, NULL))
			g_hash_table_add(given, row);
	}
	return TRUE;
}

char *
imta_channel_options_path(const ImtaConfig *config, const ImtaChannel *channel)
{
	g_autofree char *name = g_strdup_printf("%s_option", channel->name);

	return imta_config_path(config, name);
}

gconstpointer
imta_channel_options_cached(ImtaChannelOptionsCache *cache, const ImtaConfig *config,
			    const ImtaChannel *channel, ImtaChannelOptionsLoad load,
			    GDestroyNotify free_func, GError **error)
{
	gpointer options;

	g_mutex_lock(&cache->lock);
	if (cache->by_channel == NULL)
		cache->by_channel = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
							  free_func);
	options = g_hash_table_lookup(cache->by_channel, channel);
	if (options == NULL) {
		options = load(config, channel, error);
		if (options != NULL)
			g_hash_table_insert(cache->by_channel, (gpointer)channel, options);
	}
	g_mutex_unlock(&cache->lock);
	return options;
}

void
imta_channel_options_cache_clear(ImtaChannelOptionsCache *cache)
{
	g_mutex_lock(&cache->lock);
	g_clear_pointer(&cache->by_channel, g_hash_table_unref);
	g_mutex_unlock(&cache->lock);
}
