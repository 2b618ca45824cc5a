/*
 * channel_options.h - channel option files: <table directory>/<channel>_option,
 * NAME=value lines in the syntax of option.dat, read against a plugin's
 * own option table (options.h).
 *
 * A plugin declares its options once as ImtaOptionSpec rows (scope
 * IMTA_SCOPE_GLOBAL) over a struct of its own; this reads a file into
 * such a struct, and keeps the result per channel for the life of the
 * process, so that every session and thread of a program shares one copy.
 *
 *	static const ImtaOptionSpec specs[] = { ... };
 *	static const ImtaChannelOptionsSpec spec = { "LMTP channel", specs, n };
 *	static ImtaChannelOptionsCache cache;
 *
 *	load(config, channel, error):     a new struct, filled by
 *		imta_channel_options_read(&spec, path, options, NULL, NULL, error)
 *	options = imta_channel_options_cached(&cache, config, channel, load,
 *					      free_func, &error);
 *
 * Errors are configuration errors ("file:line:column: ..."): an unknown
 * name (with the closest known one), a value out of range, a section line.
 * A name set twice is a warning; the later value wins.  A missing file
 * gives the defaults.
 */
#ifndef IMTA_CHANNEL_OPTIONS_H
#define IMTA_CHANNEL_OPTIONS_H

#include <glib.h>
#include <imta/config.h>
#include <imta/channel.h>
#include <imta/options.h>

G_BEGIN_DECLS

typedef struct {
	const char *what;             /* "SMTP channel": names the file kind in errors */
	const ImtaOptionSpec *table;
	gsize n_rows;
} ImtaChannelOptionsSpec;

/* Read `path` into `target` (set to the table's defaults first).  A
 * missing file is not an error: *found_r (may be NULL) says whether
 * there was one.  `given` (may be NULL), a set of row pointers, gets the
 * rows the file sets. */
gboolean imta_channel_options_read(const ImtaChannelOptionsSpec *spec, const char *path,
				   void *target, GHashTable *given, gboolean *found_r,
				   GError **error);

/* The file of `channel` in the configuration's table directory:
 * "<dir>/<channel>_option"; caller frees. */
char *imta_channel_options_path(const ImtaConfig *config, const ImtaChannel *channel);

/* A per-process cache of loaded option structs, by channel: static
 * storage, zero-initialised, safe from any thread. */
typedef struct {
	GMutex lock;
	GHashTable *by_channel;       /* const ImtaChannel * -> the loaded struct */
} ImtaChannelOptionsCache;

/* The options of `channel`, loaded once by `load` (which returns a new
 * struct, or NULL with an error) and freed by `free_func` when the cache
 * is cleared. */
typedef gpointer (*ImtaChannelOptionsLoad)(const ImtaConfig *config, const ImtaChannel *channel,
					   GError **error);
gconstpointer imta_channel_options_cached(ImtaChannelOptionsCache *cache,
					  const ImtaConfig *config, const ImtaChannel *channel,
					  ImtaChannelOptionsLoad load, GDestroyNotify free_func,
					  GError **error);

/* Forget everything loaded (plugin deinit). */
void imta_channel_options_cache_clear(ImtaChannelOptionsCache *cache);

G_END_DECLS

#endif /* IMTA_CHANNEL_OPTIONS_H */
