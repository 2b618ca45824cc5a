/*
 * imta_cnf.c - imta.cnf: rewrite rules, a blank line, the channel host table.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/cfgfile.h>
#include <imta/imta_cnf.h>
#include <imta/plugin.h>
#include "channel_keywords.h"

#define CHANNEL_NAME_MAX 32

/* A word of a line and where it stands. */
typedef struct {
	char *text;
	ImtaSourcePos pos;
} CnfWord;

typedef struct {
	ImtaCnf *cnf;
	ImtaCfgFile *cf;
	const ImtaPluginRegistry *registry;
	GPtrArray *defaults;        /* ImtaKeywordUse * inherited by later blocks */
	/* The block being read. */
	ImtaChannel *channel;       /* NULL between blocks */
	gboolean block_is_defaults, block_is_nodefaults;
	gboolean in_keywords;       /* still reading keyword lines */
	gboolean seen_local;
	char *block_name;           /* name of the block being read, for errors */
} CnfParser;

static void
cnf_word_clear(gpointer p)
{
	g_free(((CnfWord *)p)->text);
}

static GArray *
cnf_split_words(CnfParser *parser, const ImtaCfgLine *line)
{
	GArray *words = g_array_new(FALSE, FALSE, sizeof(CnfWord));
	gsize offset = 0, start, length;

	g_array_set_clear_func(words, cnf_word_clear);
	while (imta_cfg_next_word(line, &offset, &start, &length)) {
		CnfWord word = { g_strndup(line->text + start, length) };

		imta_cfg_file_pos(parser->cf, start, &word.pos);
		g_array_append_val(words, word);
	}
	return words;
}

static void
keyword_use_free(gpointer p)
{
	ImtaKeywordUse *use = p;

	g_free(use->name);
	g_strfreev(use->args);
	g_free(use->arg_pos);
	g_free(use);
}

static ImtaKeywordUse *
keyword_use_copy(const ImtaKeywordUse *use, gboolean inherited)
{
	ImtaKeywordUse *copy = g_new0(ImtaKeywordUse, 1);
	guint n = g_strv_length(use->args);

	copy->name = g_strdup(use->name);
	copy->args = g_strdupv(use->args);
	copy->pos = use->pos;
	copy->arg_pos = g_memdup2(use->arg_pos, sizeof(ImtaSourcePos) * (n + 1));
	copy->inherited = inherited;
	return copy;
}

static void
channel_host_free(gpointer p)
{
	ImtaChannelHost *host = p;

	g_free(host->name);
	g_free(host->extra);
	g_free(host);
}

static ImtaChannel *
channel_new(const char *name, const ImtaSourcePos *pos)
{
	ImtaChannel *channel = g_new0(ImtaChannel, 1);

	channel->name = g_strdup(name);
	channel->pos = *pos;
	channel->hosts = g_ptr_array_new_with_free_func(channel_host_free);
	channel->keywords = g_ptr_array_new_with_free_func(keyword_use_free);
	channel_keyword_defaults(channel);
	return channel;
}

static void
channel_free(gpointer p)
{
	ImtaChannel *channel = p;

	if (channel == NULL)
		return;
	g_free(channel->name);
	g_ptr_array_unref(channel->hosts);
	g_ptr_array_unref(channel->keywords);
	channel_keyword_clear(channel);
	g_free(channel);
}

static gboolean
is_known_keyword(const CnfParser *parser, const char *word)
{
	g_autofree char *lower = g_ascii_strdown(word, -1);

	if (channel_keyword_lookup(lower) != NULL)
		return TRUE;
	return parser->registry != NULL &&
	       imta_plugin_registry_by_keyword(parser->registry, lower) != NULL;
}

/* The registered plugin keyword row for `name`, or NULL. */
static const ImtaPluginKeyword *
plugin_keyword_row(const ImtaPluginRegistry *registry, const char *name)
{
	const ImtaPlugin *plugin;

	if (registry == NULL)
		return NULL;
	plugin = imta_plugin_registry_by_keyword(registry, name);
	if (plugin == NULL)
		return NULL;
	for (const ImtaPluginKeyword *kw = plugin->keywords; kw->name != NULL; kw++)
		if (g_ascii_strcasecmp(kw->name, name) == 0)
			return kw;
	return NULL;
}

/* Turn words[i..] into keyword uses appended to `out`; returns FALSE with
 * an error at the offending word. */
static gboolean
cnf_parse_keywords(CnfParser *parser, GArray *words, guint i, GPtrArray *out, GError **error)
{
	while (i < words->len) {
		const CnfWord *word = &g_array_index(words, CnfWord, i);
		g_autofree char *name = g_ascii_strdown(word->text, -1);
		const ChannelKeywordSpec *spec = channel_keyword_lookup(name);
		const ImtaPluginKeyword *pkw = spec == NULL ? plugin_keyword_row(parser->registry, name) : NULL;
		guint min_args = 0, max_args = 0, n = 0;
		ImtaKeywordUse *use;

		if (spec != NULL) {
			channel_keyword_arity(spec, &min_args, &max_args);
		} else if (pkw != NULL) {
			min_args = pkw->min_args;
			max_args = pkw->max_args;
		} else if (parser->registry != NULL) {
			imta_set_error_at(error, IMTA_CONFIG_ERROR_UNKNOWN, &word->pos,
					  "unknown channel keyword \"%s\" in channel \"%s\" (not a "
					  "core keyword, and no loaded plugin registers it)",
					  word->text, parser->block_name);
			return FALSE;
		}
		/* Fixed-arity keywords take the next words whatever they are; a
		 * variable list stops at the next keyword. */
		while (i + 1 + n < words->len && n < max_args) {
			const char *next = g_array_index(words, CnfWord, i + 1 + n).text;

			if (n >= min_args && (is_known_keyword(parser, next) ||
					      (spec != NULL && !channel_keyword_takes_word(spec, next))))
				break;
			n++;
		}
		if (n < min_args) {
			ImtaSourcePos after = word->pos;

			after.column += (guint)strlen(word->text);
			imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &after,
					  "expected %s after keyword \"%s\"",
					  min_args == 1 ? "an argument" : "arguments", name);
			return FALSE;
		}
		use = g_new0(ImtaKeywordUse, 1);
		use->name = g_steal_pointer(&name);
		use->pos = word->pos;
		use->args = g_new0(char *, n + 1);
		use->arg_pos = g_new0(ImtaSourcePos, n + 1);
		for (guint a = 0; a < n; a++) {
			const CnfWord *arg = &g_array_index(words, CnfWord, i + 1 + a);

			use->args[a] = g_strdup(arg->text);
			use->arg_pos[a] = arg->pos;
		}
		g_ptr_array_add(out, use);
		i += 1 + n;
	}
	return TRUE;
}

static gboolean
cnf_parse_rule(CnfParser *parser, const ImtaCfgLine *line, GError **error)
{
	g_autoptr(GArray) words = cnf_split_words(parser, line);
	const CnfWord *pattern, *template_;
	ImtaRewriteRule *rule;

	pattern = &g_array_index(words, CnfWord, 0);
	if (words->len == 1) {
		ImtaSourcePos after = pattern->pos;

		after.column += (guint)strlen(pattern->text);
		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &after,
				  "expected a template after the rewrite pattern \"%s\" "
				  "(rewrite rules end at the first blank line)", pattern->text);
		return FALSE;
	}
	if (words->len > 2) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX,
				  &g_array_index(words, CnfWord, 2).pos,
				  "expected the end of the rewrite rule: a rule is \"pattern template\" "
				  "and neither may contain blanks or a trailing comment");
		return FALSE;
	}
	template_ = &g_array_index(words, CnfWord, 1);
	rule = g_new0(ImtaRewriteRule, 1);
	rule->pattern = g_strdup(pattern->text);
	rule->template_ = g_strdup(template_->text);
	rule->pos = pattern->pos;
	rule->template_pos = template_->pos;
	g_ptr_array_add(parser->cnf->rules, rule);
	return TRUE;
}

static gboolean
cnf_valid_channel_name(const char *name)
{
	gsize len = strlen(name);

	if (len == 0 || len > CHANNEL_NAME_MAX)
		return FALSE;
	for (const char *p = name; *p != '\0'; p++)
		if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-' && *p != '.')
			return FALSE;
	return TRUE;
}

static gboolean
cnf_begin_block(CnfParser *parser, GArray *words, GError **error)
{
	const CnfWord *name = &g_array_index(words, CnfWord, 0);
	g_autoptr(GPtrArray) uses = g_ptr_array_new_with_free_func(keyword_use_free);

	if (!cnf_valid_channel_name(name->text)) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &name->pos,
				  "expected a channel name of 1 to %d letters, digits, '_', '-' "
				  "or '.', got \"%s\"", CHANNEL_NAME_MAX, name->text);
		return FALSE;
	}
	g_free(parser->block_name);
	parser->block_name = g_strdup(name->text);
	parser->block_is_defaults = strcmp(name->text, "defaults") == 0;
	parser->block_is_nodefaults = strcmp(name->text, "nodefaults") == 0;
	if (parser->block_is_nodefaults) {
		if (words->len > 1) {
			imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX,
					  &g_array_index(words, CnfWord, 1).pos,
					  "expected no keywords after nodefaults");
			return FALSE;
		}
		g_ptr_array_set_size(parser->defaults, 0);
		return TRUE;
	}
	if (!cnf_parse_keywords(parser, words, 1, uses, error))
		return FALSE;
	if (parser->block_is_defaults) {
		for (guint i = 0; i < uses->len; i++)
			g_ptr_array_add(parser->defaults, keyword_use_copy(uses->pdata[i], TRUE));
		return TRUE;
	}
	if (!parser->seen_local && strcmp(name->text, "l") != 0) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &name->pos,
				  "expected the local channel \"l\" as the first channel "
				  "(only defaults and nodefaults blocks may precede it), got \"%s\"",
				  name->text);
		return FALSE;
	}
	if (g_hash_table_contains(parser->cnf->by_name, name->text)) {
		const ImtaChannel *other = g_hash_table_lookup(parser->cnf->by_name, name->text);
		g_autofree char *where = imta_source_pos_format(&other->pos);

		imta_set_error_at(error, IMTA_CONFIG_ERROR_DUPLICATE, &name->pos,
				  "channel \"%s\" is already defined at %s", name->text, where);
		return FALSE;
	}
	parser->seen_local = TRUE;
	parser->channel = channel_new(name->text, &name->pos);
	for (guint i = 0; i < parser->defaults->len; i++)
		g_ptr_array_add(parser->channel->keywords,
				keyword_use_copy(parser->defaults->pdata[i], TRUE));
	for (guint i = 0; i < uses->len; i++)
		g_ptr_array_add(parser->channel->keywords, keyword_use_copy(uses->pdata[i], FALSE));
	parser->in_keywords = TRUE;
	return TRUE;
}

static gboolean
cnf_add_host(CnfParser *parser, GArray *words, GError **error)
{
	ImtaChannel *channel = parser->channel;
	const CnfWord *name = &g_array_index(words, CnfWord, 0);
	g_autofree char *key = g_ascii_strdown(name->text, -1);
	const ImtaChannel *owner;
	ImtaChannelHost *host;

	if (words->len > 2) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX,
				  &g_array_index(words, CnfWord, 2).pos,
				  "expected at most two words on a host name line of channel \"%s\"",
				  channel->name);
		return FALSE;
	}
	owner = g_hash_table_lookup(parser->cnf->by_host, key);
	if (owner != NULL) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_DUPLICATE, &name->pos,
				  "host name \"%s\" already belongs to channel \"%s\"",
				  name->text, owner->name);
		return FALSE;
	}
	host = g_new0(ImtaChannelHost, 1);
	host->name = g_strdup(name->text);
	host->extra = words->len > 1 ? g_strdup(g_array_index(words, CnfWord, 1).text) : NULL;
	host->pos = name->pos;
	g_ptr_array_add(channel->hosts, host);
	g_hash_table_insert(parser->cnf->by_host, g_steal_pointer(&key), channel);
	return TRUE;
}

static gboolean
cnf_block_line(CnfParser *parser, const ImtaCfgLine *line, GError **error)
{
	g_autoptr(GArray) words = cnf_split_words(parser, line);

	if (parser->channel == NULL && !parser->block_is_defaults && !parser->block_is_nodefaults)
		return cnf_begin_block(parser, words, error);
	if (parser->channel == NULL)
		return TRUE; /* further lines of a defaults block are ignored */
	/* A line that starts with a keyword continues the keyword list. */
	if (parser->in_keywords && is_known_keyword(parser, g_array_index(words, CnfWord, 0).text)) {
		g_autoptr(GPtrArray) uses = g_ptr_array_new_with_free_func(keyword_use_free);

		if (!cnf_parse_keywords(parser, words, 0, uses, error))
			return FALSE;
		for (guint i = 0; i < uses->len; i++)
			g_ptr_array_add(parser->channel->keywords,
					keyword_use_copy(uses->pdata[i], FALSE));
		return TRUE;
	}
	parser->in_keywords = FALSE;
	return cnf_add_host(parser, words, error);
}

static gboolean
channel_apply_keywords(ImtaChannel *channel, GError **error)
{
	for (guint i = 0; i < channel->keywords->len; i++) {
		const ImtaKeywordUse *use = channel->keywords->pdata[i];
		const ChannelKeywordSpec *spec = channel_keyword_lookup(use->name);

		if (spec != NULL && !channel_keyword_apply(channel, spec, use, error))
			return FALSE;
	}
	if (channel->pool != NULL && strlen(channel->pool) > 12) {
		const ImtaKeywordUse *use = NULL;

		for (guint i = 0; i < channel->keywords->len; i++)
			if (strcmp(((ImtaKeywordUse *)channel->keywords->pdata[i])->name, "pool") == 0)
				use = channel->keywords->pdata[i];
		imta_set_error_at(error, IMTA_CONFIG_ERROR_RANGE, use != NULL ? &use->arg_pos[0] : &channel->pos,
				  "pool: expected a pool name of at most 12 bytes, got \"%s\"",
				  channel->pool);
		return FALSE;
	}
	return TRUE;
}

static gboolean
cnf_end_block(CnfParser *parser, GError **error)
{
	ImtaChannel *channel = g_steal_pointer(&parser->channel);

	parser->block_is_defaults = parser->block_is_nodefaults = FALSE;
	parser->in_keywords = FALSE;
	if (channel == NULL)
		return TRUE;
	g_ptr_array_add(parser->cnf->channels, channel);
	g_hash_table_insert(parser->cnf->by_name, channel->name, channel);
	if (channel->hosts->len == 0) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_MISSING, &channel->pos,
				  "no official host name for channel \"%s\": expected the channel "
				  "tag on the line after its keywords", channel->name);
		return FALSE;
	}
	return channel_apply_keywords(channel, error);
}

static ImtaCnf *
cnf_new(void)
{
	ImtaCnf *cnf = g_new0(ImtaCnf, 1);

	cnf->rules = g_ptr_array_new();
	cnf->channels = g_ptr_array_new_with_free_func(channel_free);
	cnf->by_name = g_hash_table_new(g_str_hash, g_str_equal);
	cnf->by_host = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	cnf->names = g_string_chunk_new(256);
	return cnf;
}

static gboolean
cnf_parse(CnfParser *parser, GError **error)
{
	ImtaCfgLine line;
	gboolean in_rules = TRUE;
	g_autoptr(GError) local = NULL;

	while (imta_cfg_file_next(parser->cf, &line, &local)) {
		if (in_rules) {
			if (line.blank) {
				in_rules = FALSE;
				continue;
			}
			if (!cnf_parse_rule(parser, &line, error))
				return FALSE;
			continue;
		}
		if (line.blank) {
			if (!cnf_end_block(parser, error))
				return FALSE;
			continue;
		}
		if (!cnf_block_line(parser, &line, error))
			return FALSE;
	}
	if (local != NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	if (!cnf_end_block(parser, error))
		return FALSE;
	if (parser->cnf->channels->len == 0) {
		ImtaSourcePos whole;

		imta_cfg_file_whole(parser->cf, &whole);
		imta_set_error_at(error, IMTA_CONFIG_ERROR_MISSING, &whole,
				  "no channel host table: expected a blank line after the rewrite "
				  "rules, then the local channel \"l\"");
		return FALSE;
	}
	return TRUE;
}

static ImtaCnf *
cnf_parse_from(ImtaCnf *cnf, ImtaCfgFile *cf, const ImtaPluginRegistry *registry, GError **error)
{
	CnfParser parser = { cnf, cf, registry };
	gboolean ok;

	parser.defaults = g_ptr_array_new_with_free_func(keyword_use_free);
	ok = cnf_parse(&parser, error);
	channel_free(parser.channel);
	g_ptr_array_unref(parser.defaults);
	g_free(parser.block_name);
	if (!ok) {
		imta_cnf_free(cnf);
		return NULL;
	}
	return cnf;
}

#define CNF_FLAGS (IMTA_CFG_INCLUDES | IMTA_CFG_CONTINUATION | IMTA_CFG_KEEP_BLANK)

ImtaCnf *
imta_cnf_load(const char *path, const ImtaPluginRegistry *registry, GError **error)
{
	ImtaCnf *cnf = cnf_new();
	g_autoptr(ImtaCfgFile) cf = imta_cfg_file_open(path, CNF_FLAGS, "!", cnf->names, error);

	if (cf == NULL) {
		imta_cnf_free(cnf);
		return NULL;
	}
	cnf->path = g_strdup(path);
	return cnf_parse_from(cnf, cf, registry, error);
}

ImtaCnf *
imta_cnf_parse_text(const char *name, const char *text, gsize length,
		    const ImtaPluginRegistry *registry, GError **error)
{
	ImtaCnf *cnf = cnf_new();
	g_autoptr(ImtaCfgFile) cf = imta_cfg_file_open_text(name, text, length, CNF_FLAGS, "!",
							     cnf->names);

	cnf->path = g_strdup(name);
	return cnf_parse_from(cnf, cf, registry, error);
}

/* The plugin a channel's keyword (or failing that, its name) selects. */
static gboolean
cnf_bind_channel(ImtaChannel *channel, const ImtaPluginRegistry *registry, GError **error)
{
	const ImtaKeywordUse *binding = NULL;

	channel->plugin = NULL;
	for (guint i = 0; i < channel->keywords->len; i++) {
		const ImtaKeywordUse *use = channel->keywords->pdata[i];
		const ImtaPlugin *plugin;

		if (channel_keyword_lookup(use->name) != NULL)
			continue;
		plugin = imta_plugin_registry_by_keyword(registry, use->name);
		if (plugin == NULL) {
			imta_set_error_at(error, IMTA_CONFIG_ERROR_PLUGIN, &use->pos,
					  "unknown channel keyword \"%s\" in channel \"%s\" (not a "
					  "core keyword, and no loaded plugin registers it)",
					  use->name, channel->name);
			return FALSE;
		}
		if (channel->plugin != NULL && channel->plugin != plugin) {
			g_autofree char *where = imta_source_pos_format(&binding->pos);

			imta_set_error_at(error, IMTA_CONFIG_ERROR_PLUGIN, &use->pos,
					  "keyword \"%s\" binds channel \"%s\" to plugin %s, but "
					  "\"%s\" at %s already bound it to plugin %s",
					  use->name, channel->name, plugin->name, binding->name,
					  where, channel->plugin->name);
			return FALSE;
		}
		channel->plugin = plugin;
		binding = use;
	}
	if (channel->plugin == NULL)
		channel->plugin = imta_plugin_registry_by_keyword(registry, channel->name);
	if (channel->plugin != NULL && channel->plugin->validate_channel != NULL)
		return channel->plugin->validate_channel(channel, error);
	return TRUE;
}

gboolean
imta_cnf_bind_plugins(ImtaCnf *cnf, const ImtaPluginRegistry *registry, GError **error)
{
	for (guint i = 0; i < cnf->channels->len; i++)
		if (!cnf_bind_channel(cnf->channels->pdata[i], registry, error))
			return FALSE;
	return TRUE;
}

ImtaChannel *
imta_cnf_channel_by_host(const ImtaCnf *cnf, const char *host)
{
	g_autofree char *key = g_ascii_strdown(host, -1);

	return g_hash_table_lookup(cnf->by_host, key);
}

ImtaChannel *
imta_cnf_channel_by_name(const ImtaCnf *cnf, const char *name)
{
	return g_hash_table_lookup(cnf->by_name, name);
}

ImtaChannel *
imta_cnf_local_channel(const ImtaCnf *cnf)
{
	return cnf->channels->len > 0 ? cnf->channels->pdata[0] : NULL;
}

guint
imta_cnf_notices(const ImtaCnf *cnf, const ImtaChannel *channel, ImtaPriority priority,
		 gint ages[IMTA_MAX_NOTICES])
{
	static const gint builtin[] = { 3, 6, 9, 12 };
	const ImtaChannel *local = imta_cnf_local_channel(cnf);
	guint n = imta_channel_notices(channel, priority, ages);

	if (n == 0 && local != NULL)
		n = imta_channel_notices(local, priority, ages);
	if (n == 0) {
		memcpy(ages, builtin, sizeof builtin);
		n = G_N_ELEMENTS(builtin);
	}
	return n;
}

void
imta_cnf_free(ImtaCnf *cnf)
{
	if (cnf == NULL)
		return;
	for (guint i = 0; i < cnf->rules->len; i++) {
		ImtaRewriteRule *rule = cnf->rules->pdata[i];

		g_free(rule->pattern);
		g_free(rule->template_);
		g_free(rule);
	}
	g_ptr_array_unref(cnf->rules);
	g_hash_table_unref(cnf->by_name);
	g_hash_table_unref(cnf->by_host);
	g_ptr_array_unref(cnf->channels);
	g_string_chunk_free(cnf->names);
	g_free(cnf->path);
	g_free(cnf);
}

const char *const *
imta_cnf_core_keywords(void)
{
	static const char **names;
	gsize n;

	if (g_once_init_enter(&names)) {
		const ChannelKeywordSpec *table = channel_keyword_table(&n);
		const char **list = g_new0(const char *, n + 1);

		for (gsize i = 0; i < n; i++)
			list[i] = table[i].name;
		g_once_init_leave(&names, list);
	}
	return names;
}

gboolean
imta_cnf_is_core_keyword(const char *name)
{
	g_autofree char *lower = g_ascii_strdown(name, -1);

	return channel_keyword_lookup(lower) != NULL;
}

/* ---- channel accessors ------------------------------------------------ */

const char *
imta_channel_official_host(const ImtaChannel *channel)
{
	const ImtaChannelHost *host = channel->hosts->len > 0 ? channel->hosts->pdata[0] : NULL;

	return host != NULL ? host->name : NULL;
}

const char *const *
imta_channel_keyword(const ImtaChannel *channel, const char *name)
{
	for (guint i = channel->keywords->len; i > 0; i--) {
		const ImtaKeywordUse *use = channel->keywords->pdata[i - 1];

		if (g_ascii_strcasecmp(use->name, name) == 0)
			return (const char *const *)use->args;
	}
	return NULL;
}

gboolean
imta_channel_has_keyword(const ImtaChannel *channel, const char *name)
{
	return imta_channel_keyword(channel, name) != NULL;
}

/* The documented retry schedule, in minutes, when no backoff is set. */
static const gint64 default_backoff[IMTA_PRIORITY_COUNT][7] = {
	[IMTA_PRIORITY_URGENT] = { 30, 60, 60, 120, 120, 120, 240 },
	[IMTA_PRIORITY_NORMAL] = { 60, 120, 120, 240, 240, 240, 480 },
	[IMTA_PRIORITY_NONURGENT] = { 120, 240, 240, 480, 480, 480, 960 },
};

gint64
imta_channel_backoff(const ImtaChannel *channel, ImtaPriority priority, guint attempt)
{
	const GArray *list;
	guint index = attempt > 0 ? attempt - 1 : 0;

	g_return_val_if_fail(priority < IMTA_PRIORITY_COUNT, 0);
	list = channel->backoff[priority] != NULL ? channel->backoff[priority] : channel->backoff_any;
	if (list != NULL && list->len > 0)
		return g_array_index(list, gint64, MIN(index, list->len - 1));
	return default_backoff[priority][MIN(index, G_N_ELEMENTS(default_backoff[0]) - 1)] * 60;
}

guint
imta_channel_notices(const ImtaChannel *channel, ImtaPriority priority,
		     gint ages[IMTA_MAX_NOTICES])
{
	g_return_val_if_fail(priority < IMTA_PRIORITY_COUNT, 0);
	if (channel->n_notices[priority] > 0) {
		memcpy(ages, channel->notices[priority], channel->n_notices[priority] * sizeof(gint));
		return channel->n_notices[priority];
	}
	memcpy(ages, channel->notices_any, channel->n_notices_any * sizeof(gint));
	return channel->n_notices_any;
}
