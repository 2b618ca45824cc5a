/*
 * job_controller_cnf.c - job_controller.cnf: global settings, processing
 * pools and per-channel job commands, read through the option-table
 * engine, with the channel-section lookup the job controller uses.
 */
#include "config.h"

#include <stdarg.h>
#include <string.h>
#include <glib.h>

#include <imta/cfgfile.h>
#include <imta/options.h>
#include <imta/job_controller_cnf.h>

#define JC_COMMENTS "!#"
#define JC_CHANNEL_MAX 64

#define CNF(field) G_STRUCT_OFFSET(ImtaJobControllerCnf, field)
#define CHAN(field) G_STRUCT_OFFSET(ImtaJcChannelSection, field)
#define CHAN_SCOPE (IMTA_SCOPE_GLOBAL | IMTA_SCOPE_CHANNEL)

static gboolean jc_check_interface(const char *value, const char **expected_r);

const ImtaOptionSpec imta_job_controller_options[] = {
	{ .name = "TCP_PORT", .kind = IMTA_OPT_INT, .default_value = "0", .min = 0, .max = 65535,
	  .offset = CNF(tcp_port), .scopes = IMTA_SCOPE_GLOBAL,
	  .doc = "TCP port for enqueuers and jobs of other hosts (0 = local socket only)" },
	{ .name = "SECRET", .kind = IMTA_OPT_STRING, .offset = CNF(secret),
	  .scopes = IMTA_SCOPE_GLOBAL, .flags = IMTA_OPT_HIDDEN,
	  .doc = "shared secret of TCP connections (required with TCP_PORT)" },
	{ .name = "INTERFACE_ADDRESS", .kind = IMTA_OPT_STRING, .default_value = "ANY",
	  .offset = CNF(interface_address), .scopes = IMTA_SCOPE_GLOBAL,
	  .check = jc_check_interface,
	  .doc = "TCP listening address: ANY or ALL, LOCALHOST, or an IP address" },
	{ .name = "DEBUG", .kind = IMTA_OPT_MASK, .default_value = "0", .offset = CNF(debug),
	  .scopes = IMTA_SCOPE_GLOBAL,
	  .doc = "debug bit mask, -1 = everything (nonzero writes a debug log)" },
	{ .name = "MAX_MESSAGES", .kind = IMTA_OPT_INT, .default_value = "100000",
	  .min = 100, .max = 10000000, .offset = CNF(max_messages), .scopes = IMTA_SCOPE_GLOBAL,
	  .doc = "messages tracked in memory; the rest wait on disk for a rescan" },
	{ .name = "REBUILD_PARALLEL_CHANNEL", .kind = IMTA_OPT_INT, .default_value = "12",
	  .min = 1, .max = 100, .offset = CNF(rebuild_parallel_channel),
	  .scopes = IMTA_SCOPE_GLOBAL,
	  .doc = "channel queue directories read at once when rebuilding" },
	{ .name = "SYNCH_TIME", .kind = IMTA_OPT_DURATION, .default_value = "3600",
	  .min = 0, .max = 604800, .offset = CNF(synch_time), .scopes = IMTA_SCOPE_GLOBAL,
	  .doc = "seconds between resynchronisations with the queue on disk (0 = never)" },
	{ .name = "SOCKET", .kind = IMTA_OPT_STRING, .default_value = "job_controller.sock",
	  .offset = CNF(socket), .scopes = IMTA_SCOPE_GLOBAL,
	  .doc = "local socket, relative to IMTA_RUN unless absolute" },
};
const gsize imta_job_controller_n_options = G_N_ELEMENTS(imta_job_controller_options);

const ImtaOptionSpec imta_job_controller_pool_options[] = {
	{ .name = "JOB_LIMIT", .kind = IMTA_OPT_INT, .default_value = "10", .min = 1,
	  .max = 100000, .offset = G_STRUCT_OFFSET(ImtaJcPool, job_limit),
	  .scopes = IMTA_SCOPE_GLOBAL | IMTA_SCOPE_POOL,
	  .doc = "most jobs running at once in the pool" },
};
const gsize imta_job_controller_n_pool_options = G_N_ELEMENTS(imta_job_controller_pool_options);

const ImtaOptionSpec imta_job_controller_channel_options[] = {
	{ .name = "MASTER_COMMAND", .kind = IMTA_OPT_STRING, .offset = CHAN(master_command),
	  .scopes = CHAN_SCOPE, .flags = IMTA_OPT_NULL_WORD,
	  .doc = "program delivering the channel's queue (default: the channel plugin's)" },
	{ .name = "SLAVE_COMMAND", .kind = IMTA_OPT_STRING, .default_value = "NULL",
	  .offset = CHAN(slave_command), .scopes = CHAN_SCOPE, .flags = IMTA_OPT_NULL_WORD,
	  .doc = "program polling the channel for inbound mail; NULL = none" },
	{ .name = "MAX_LIFE_AGE", .kind = IMTA_OPT_DURATION, .default_value = "3600",
	  .min = 0, .max = 31536000, .offset = CHAN(max_life_age), .scopes = CHAN_SCOPE,
	  .doc = "seconds a master job may live before it exits (0 = no limit)" },
	{ .name = "MAX_LIFE_CONNS", .kind = IMTA_OPT_INT, .default_value = "1000",
	  .min = 1, .max = G_MAXINT32, .offset = CHAN(max_life_conns), .scopes = CHAN_SCOPE,
	  .doc = "messages a master job handles before it exits" },
	{ .name = "IDLE_LINGER", .kind = IMTA_OPT_DURATION, .default_value = "60",
	  .min = 0, .max = 3600, .offset = CHAN(idle_linger), .scopes = CHAN_SCOPE,
	  .doc = "seconds an idle master job waits for more work before exiting" },
};
const gsize imta_job_controller_n_channel_options =
	G_N_ELEMENTS(imta_job_controller_channel_options);

static const char jc_builtin_text[] =
	"[POOL=DEFAULT]\n"
	"JOB_LIMIT=10\n";

static gboolean
jc_interface_keyword(const char *value)
{
	return g_ascii_strcasecmp(value, "ANY") == 0 || g_ascii_strcasecmp(value, "ALL") == 0 ||
	       g_ascii_strcasecmp(value, "LOCALHOST") == 0;
}

static gboolean
jc_check_interface(const char *value, const char **expected_r)
{
	if (jc_interface_keyword(value) || imta_option_check_ip(value, expected_r))
		return TRUE;
	*expected_r = "ANY, ALL, LOCALHOST or an IP address";
	return FALSE;
}

typedef enum {
	JC_IN_GLOBAL,
	JC_IN_POOL,
	JC_IN_CHANNEL,
	JC_IN_PERIODIC,
} JcWhere;

/* One table and the place its values go. */
typedef enum {
	JC_TABLE_GLOBAL,
	JC_TABLE_POOL,
	JC_TABLE_CHANNEL,
	JC_N_TABLES,
} JcTable;

static const struct {
	const ImtaOptionSpec *rows;
	const gsize *n_rows;
	const char *section;   /* where the table's options belong */
} jc_tables[JC_N_TABLES] = {
	{ imta_job_controller_options, &imta_job_controller_n_options,
	  "before the first section" },
	{ imta_job_controller_pool_options, &imta_job_controller_n_pool_options,
	  "in a [POOL=...] section or before the first section" },
	{ imta_job_controller_channel_options, &imta_job_controller_n_channel_options,
	  "in a [CHANNEL=...] section or before the first section" },
};

/* A global pool or channel assignment, replayed into each section. */
typedef struct {
	const ImtaOptionSpec *row;
	char *value;
	ImtaSourcePos value_pos;
} JcGlobal;

typedef struct {
	ImtaJobControllerCnf *cnf;
	JcWhere where;
	void *target;                   /* pool or channel section being filled */
	guint64 seen[JC_N_TABLES];      /* rows assigned in the current section */
	GArray *globals[JC_N_TABLES];   /* JcGlobal; [JC_TABLE_GLOBAL] unused */
	GHashTable *pools_by_name;      /* folded name -> ImtaJcPool * */
	GHashTable *channels_by_name;   /* folded pattern -> ImtaJcChannelSection * */
	ImtaSourcePos tcp_port_pos;
	ImtaSourcePos whole;
} JcParse;

static void
jc_global_clear(gpointer p)
{
	JcGlobal *g = p;

	g_free(g->value);
}

static void
jc_pool_free(ImtaJcPool *pool)
{
	if (pool == NULL)
		return;
	imta_option_table_clear(imta_job_controller_pool_options,
				imta_job_controller_n_pool_options, pool);
	g_free(pool->name);
	g_free(pool);
}

static void
jc_channel_free(ImtaJcChannelSection *section)
{
	if (section == NULL)
		return;
	imta_option_table_clear(imta_job_controller_channel_options,
				imta_job_controller_n_channel_options, section);
	g_free(section->pattern);
	g_free(section);
}

void
imta_job_controller_cnf_free(ImtaJobControllerCnf *cnf)
{
	if (cnf == NULL)
		return;
	g_ptr_array_unref(cnf->pools);
	g_ptr_array_unref(cnf->channels);
	g_ptr_array_unref(cnf->warnings);
	imta_option_table_clear(imta_job_controller_options, imta_job_controller_n_options, cnf);
	imta_option_table_clear(imta_job_controller_pool_options,
				imta_job_controller_n_pool_options, &cnf->pool_defaults);
	imta_option_table_clear(imta_job_controller_channel_options,
				imta_job_controller_n_channel_options, &cnf->channel_defaults);
	g_free(cnf->path);
	if (cnf->own_names != NULL)
		g_string_chunk_free(cnf->own_names);
	g_free(cnf);
}

static ImtaJobControllerCnf *
jc_cnf_new(const char *path)
{
	ImtaJobControllerCnf *cnf = g_new0(ImtaJobControllerCnf, 1);

	cnf->path = g_strdup(path);
	cnf->pools = g_ptr_array_new_with_free_func((GDestroyNotify)jc_pool_free);
	cnf->channels = g_ptr_array_new_with_free_func((GDestroyNotify)jc_channel_free);
	cnf->warnings = g_ptr_array_new_with_free_func(g_free);
	imta_option_table_defaults(imta_job_controller_options, imta_job_controller_n_options,
				   cnf, IMTA_SCOPE_GLOBAL);
	imta_option_table_defaults(imta_job_controller_pool_options,
				   imta_job_controller_n_pool_options, &cnf->pool_defaults,
				   IMTA_SCOPE_GLOBAL);
	imta_option_table_defaults(imta_job_controller_channel_options,
				   imta_job_controller_n_channel_options, &cnf->channel_defaults,
				   IMTA_SCOPE_GLOBAL);
	return cnf;
}

static void
jc_warn(JcParse *p, const ImtaSourcePos *pos, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static void
jc_warn(JcParse *p, const ImtaSourcePos *pos, const char *fmt, ...)
{
	g_autofree char *where = imta_source_pos_format(pos);
	g_autofree char *what = NULL;
	va_list args;

	va_start(args, fmt);
	what = g_strdup_vprintf(fmt, args);
	va_end(args);
	g_ptr_array_add(p->cnf->warnings, g_strdup_printf("%s: %s", where, what));
}

static const ImtaOptionSpec *
jc_lookup(const char *name, JcTable *table_r)
{
	for (int t = 0; t < JC_N_TABLES; t++) {
		const ImtaOptionSpec *row = imta_option_lookup(jc_tables[t].rows,
							       *jc_tables[t].n_rows, name);

		if (row != NULL) {
			*table_r = (JcTable)t;
			return row;
		}
	}
	return NULL;
}

static gboolean
jc_unknown(const ImtaOptionLine *line, GError **error)
{
	const char *hint = NULL;
	guint best = G_MAXUINT;

	for (int t = 0; t < JC_N_TABLES; t++) {
		guint d;
		const char *h = imta_option_suggest(jc_tables[t].rows, *jc_tables[t].n_rows,
						    line->name, &d);

		if (h != NULL && d < best) {
			best = d;
			hint = h;
		}
	}
	return imta_option_unknown(error, &line->name_pos, "job_controller.cnf", line->name, hint);
}

/* Which table may be set where, and into which struct. */
static void *
jc_target(JcParse *p, JcTable table)
{
	switch (p->where) {
	case JC_IN_GLOBAL:
		if (table == JC_TABLE_GLOBAL)
			return p->cnf;
		return table == JC_TABLE_POOL ? (void *)&p->cnf->pool_defaults
					      : (void *)&p->cnf->channel_defaults;
	case JC_IN_POOL:
		return table == JC_TABLE_POOL ? p->target : NULL;
	case JC_IN_CHANNEL:
		return table == JC_TABLE_CHANNEL ? p->target : NULL;
	case JC_IN_PERIODIC:
		break;
	}
	return NULL;
}

static gboolean
jc_set(JcParse *p, const ImtaOptionLine *line, GError **error)
{
	JcTable table = JC_TABLE_GLOBAL;
	const ImtaOptionSpec *row;
	void *target;
	guint64 bit;

	if (p->where == JC_IN_PERIODIC)
		return TRUE;
	row = jc_lookup(line->name, &table);
	if (row == NULL)
		return jc_unknown(line, error);
	target = jc_target(p, table);
	if (target == NULL) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &line->name_pos,
				  "%s is not allowed in a [%s=...] section (it belongs %s)",
				  row->name, p->where == JC_IN_POOL ? "POOL" : "CHANNEL",
				  jc_tables[table].section);
		return FALSE;
	}
	G_STATIC_ASSERT(G_N_ELEMENTS(imta_job_controller_options) <= 64);
	G_STATIC_ASSERT(G_N_ELEMENTS(imta_job_controller_channel_options) <= 64);
	bit = G_GUINT64_CONSTANT(1) << (row - jc_tables[table].rows);
	if (p->seen[table] & bit)
		jc_warn(p, &line->name_pos, "%s is set again in this section; the later value wins",
			row->name);
	p->seen[table] |= bit;
	if (!imta_option_set_row(row, target, line->value, &line->value_pos, error))
		return FALSE;
	if (row->offset == CNF(interface_address) && table == JC_TABLE_GLOBAL &&
	    p->cnf->interface_address != NULL &&
	    jc_interface_keyword(p->cnf->interface_address)) {
		char *upper = g_ascii_strup(p->cnf->interface_address, -1);

		g_free(p->cnf->interface_address);
		p->cnf->interface_address = upper;
	}
	if (row->offset == CNF(tcp_port) && table == JC_TABLE_GLOBAL)
		p->tcp_port_pos = line->name_pos;
	if (p->where == JC_IN_GLOBAL && table != JC_TABLE_GLOBAL) {
		JcGlobal g = { row, g_strdup(line->value), line->value_pos };

		g_array_append_val(p->globals[table], g);
	}
	return TRUE;
}

static gboolean
jc_replay(JcParse *p, JcTable table, void *target, GError **error)
{
	const GArray *globals = p->globals[table];

	imta_option_table_defaults(jc_tables[table].rows, *jc_tables[table].n_rows, target,
				   table == JC_TABLE_POOL ? IMTA_SCOPE_POOL : IMTA_SCOPE_CHANNEL);
	for (guint i = 0; i < globals->len; i++) {
		const JcGlobal *g = &g_array_index(globals, JcGlobal, i);

		if (!imta_option_set_row(g->row, target, g->value, &g->value_pos, error))
			return FALSE;
	}
	return TRUE;
}

static gboolean
jc_name_ok(const char *name, gsize max, gboolean star)
{
	gsize len = strlen(name);

	if (len == 0 || len > max)
		return FALSE;
	for (gsize i = 0; i < len; i++)
		if (!g_ascii_isalnum(name[i]) && strchr("_-.", name[i]) == NULL &&
		    !(star && name[i] == '*'))
			return FALSE;
	return TRUE;
}

static gboolean
jc_duplicate(GHashTable *by_name, const char *what, const ImtaOptionLine *line,
	     gpointer section, const ImtaSourcePos *(*pos_of)(gconstpointer), GError **error)
{
	g_autofree char *folded = g_ascii_strdown(line->value, -1);
	gconstpointer other = g_hash_table_lookup(by_name, folded);

	if (other != NULL) {
		g_autofree char *first = imta_source_pos_format(pos_of(other));

		imta_set_error_at(error, IMTA_CONFIG_ERROR_DUPLICATE, &line->pos,
				  "%s %s is defined twice (first at %s)", what, line->value, first);
		return FALSE;
	}
	g_hash_table_insert(by_name, g_steal_pointer(&folded), section);
	return TRUE;
}

static const ImtaSourcePos *
jc_pool_pos(gconstpointer p)
{
	return &((const ImtaJcPool *)p)->pos;
}

static const ImtaSourcePos *
jc_channel_pos(gconstpointer p)
{
	return &((const ImtaJcChannelSection *)p)->pos;
}

static gboolean
jc_pool_section(JcParse *p, const ImtaOptionLine *line, GError **error)
{
	g_autofree char *quoted = imta_option_quote(line->value);
	ImtaJcPool *pool;

	if (strlen(line->value) > IMTA_JC_POOL_NAME_MAX) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_RANGE, &line->value_pos,
				  "pool name %s is longer than %d bytes", quoted,
				  IMTA_JC_POOL_NAME_MAX);
		return FALSE;
	}
	if (!jc_name_ok(line->value, IMTA_JC_POOL_NAME_MAX, FALSE)) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &line->value_pos,
				  "expected a pool name (letters, digits, '_', '-' and '.'),"
				  " got %s", quoted);
		return FALSE;
	}
	pool = g_new0(ImtaJcPool, 1);
	pool->name = g_strdup(line->value);
	pool->pos = line->pos;
	if (!jc_duplicate(p->pools_by_name, "pool", line, pool, jc_pool_pos, error)) {
		jc_pool_free(pool);
		return FALSE;
	}
	g_ptr_array_add(p->cnf->pools, pool);
	p->where = JC_IN_POOL;
	p->target = pool;
	return jc_replay(p, JC_TABLE_POOL, pool, error);
}

static gboolean
jc_channel_section(JcParse *p, const ImtaOptionLine *line, GError **error)
{
	ImtaJcChannelSection *section;

	if (!jc_name_ok(line->value, JC_CHANNEL_MAX, TRUE)) {
		g_autofree char *quoted = imta_option_quote(line->value);

		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &line->value_pos,
				  "expected a channel name or pattern (letters, digits, '_', '-',"
				  " '.' and '*', at most %d), got %s", JC_CHANNEL_MAX, quoted);
		return FALSE;
	}
	section = g_new0(ImtaJcChannelSection, 1);
	section->pattern = g_strdup(line->value);
	section->pos = line->pos;
	if (!jc_duplicate(p->channels_by_name, "channel section", line, section, jc_channel_pos,
			  error)) {
		jc_channel_free(section);
		return FALSE;
	}
	g_ptr_array_add(p->cnf->channels, section);
	p->where = JC_IN_CHANNEL;
	p->target = section;
	return jc_replay(p, JC_TABLE_CHANNEL, section, error);
}

static gboolean
jc_section(JcParse *p, const ImtaOptionLine *line, GError **error)
{
	memset(p->seen, 0, sizeof(p->seen));
	if (g_ascii_strcasecmp(line->name, "POOL") == 0)
		return jc_pool_section(p, line, error);
	if (g_ascii_strcasecmp(line->name, "CHANNEL") == 0)
		return jc_channel_section(p, line, error);
	if (g_ascii_strcasecmp(line->name, "PERIODIC_JOB") == 0) {
		jc_warn(p, &line->pos, "[PERIODIC_JOB=...] sections are deprecated and ignored");
		p->where = JC_IN_PERIODIC;
		p->target = NULL;
		return TRUE;
	}
	{
		g_autofree char *quoted = imta_option_quote(line->name);

		imta_set_error_at(error, IMTA_CONFIG_ERROR_UNKNOWN, &line->name_pos,
				  "unknown section type %s (expected [POOL=name] or"
				  " [CHANNEL=name])", quoted);
	}
	return FALSE;
}

static gboolean
jc_finish(JcParse *p, GError **error)
{
	ImtaJobControllerCnf *cnf = p->cnf;

	if (cnf->tcp_port != 0 && cnf->secret == NULL) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_MISSING, &p->tcp_port_pos,
				  "TCP_PORT is set but SECRET is not: the TCP listener needs a"
				  " shared secret");
		return FALSE;
	}
	if (cnf->pools->len == 0) {
		ImtaJcPool *pool = g_new0(ImtaJcPool, 1);

		pool->name = g_strdup("DEFAULT");
		pool->pos = p->whole;
		imta_option_table_defaults(imta_job_controller_pool_options,
					   imta_job_controller_n_pool_options, pool,
					   IMTA_SCOPE_POOL);
		pool->job_limit = cnf->pool_defaults.job_limit;
		g_ptr_array_add(cnf->pools, pool);
		jc_warn(p, &p->whole, "no [POOL=...] section: using pool DEFAULT with JOB_LIMIT=%"
			G_GINT64_FORMAT, pool->job_limit);
	}
	return TRUE;
}

static ImtaJobControllerCnf *
jc_parse(ImtaCfgFile *cf, const char *path, GError **error)
{
	g_autoptr(ImtaJobControllerCnf) cnf = jc_cnf_new(path);
	g_autoptr(GHashTable) pools = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GHashTable) channels = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
							       NULL);
	g_autoptr(GError) local = NULL;
	ImtaOptionLine line = { 0 };
	JcParse p = { .cnf = cnf, .where = JC_IN_GLOBAL, .pools_by_name = pools,
		      .channels_by_name = channels };
	gboolean ok = TRUE;

	imta_cfg_file_whole(cf, &p.whole);
	for (int t = 0; t < JC_N_TABLES; t++) {
		p.globals[t] = g_array_new(FALSE, TRUE, sizeof(JcGlobal));
		g_array_set_clear_func(p.globals[t], jc_global_clear);
	}
	while (ok && imta_option_next_line(cf, JC_COMMENTS, &line, &local)) {
		if (line.kind == IMTA_OPTION_LINE_SECTION)
			ok = jc_section(&p, &line, &local);
		else
			ok = jc_set(&p, &line, &local);
	}
	imta_option_line_clear(&line);
	if (local == NULL)
		jc_finish(&p, &local);
	for (int t = 0; t < JC_N_TABLES; t++)
		g_array_unref(p.globals[t]);
	if (local != NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return NULL;
	}
	return g_steal_pointer(&cnf);
}

ImtaJobControllerCnf *
imta_job_controller_cnf_load(const char *path, GStringChunk *names, GError **error)
{
	g_autoptr(GStringChunk) own = NULL;
	g_autoptr(ImtaCfgFile) cf = NULL;
	ImtaJobControllerCnf *cnf;

	if (names == NULL)
		own = g_string_chunk_new(256);
	cf = imta_cfg_file_open(path, 0, JC_COMMENTS, names != NULL ? names : own, error);
	if (cf == NULL)
		return NULL;
	cnf = jc_parse(cf, path, error);
	if (cnf != NULL && own != NULL)
		cnf->own_names = g_steal_pointer(&own);
	return cnf;
}

ImtaJobControllerCnf *
imta_job_controller_cnf_parse_text(const char *name, const char *text, gsize len,
				   GStringChunk *names, GError **error)
{
	g_autoptr(GStringChunk) own = NULL;
	g_autoptr(ImtaCfgFile) cf = NULL;
	ImtaJobControllerCnf *cnf;

	if (names == NULL)
		own = g_string_chunk_new(256);
	cf = imta_cfg_file_open_text(name, text, len, 0, JC_COMMENTS,
				     names != NULL ? names : own);
	cnf = jc_parse(cf, name, error);
	if (cnf != NULL && own != NULL)
		cnf->own_names = g_steal_pointer(&own);
	return cnf;
}

ImtaJobControllerCnf *
imta_job_controller_cnf_new_default(void)
{
	g_autoptr(GError) error = NULL;
	ImtaJobControllerCnf *cnf;

	cnf = imta_job_controller_cnf_parse_text("(built-in job_controller.cnf)",
						 jc_builtin_text, sizeof(jc_builtin_text) - 1,
						 NULL, &error);
	if (cnf == NULL)
		g_error("built-in job_controller.cnf: %s", error->message);
	g_clear_pointer(&cnf->path, g_free);
	return cnf;
}

gboolean
imta_job_controller_pattern_match(const char *pattern, const char *channel)
{
	const char *p = pattern, *c = channel;
	const char *star = NULL, *resume = NULL;

	/* Greedy matching with one backtrack point: each '*' only ever moves
	 * forward, so this ends after at most strlen(pattern)*strlen(channel)
	 * steps. */
	while (*c != '\0') {
		if (*p == '*') {
			star = ++p;
			resume = c;
		} else if (*p != '\0' && g_ascii_tolower(*p) == g_ascii_tolower(*c)) {
			p++;
			c++;
		} else if (star != NULL) {
			p = star;
			c = ++resume;
		} else {
			return FALSE;
		}
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

static gsize
jc_literal_length(const char *pattern)
{
	gsize n = 0;

	for (; *pattern != '\0'; pattern++)
		if (*pattern != '*')
			n++;
	return n;
}

const ImtaJcChannelSection *
imta_job_controller_cnf_channel(const ImtaJobControllerCnf *cnf, const char *channel)
{
	const ImtaJcChannelSection *best = NULL;
	gsize best_length = 0;

	for (guint i = 0; i < cnf->channels->len; i++) {
		const ImtaJcChannelSection *s = g_ptr_array_index(cnf->channels, i);

		if (strchr(s->pattern, '*') == NULL && g_ascii_strcasecmp(s->pattern, channel) == 0)
			return s;
	}
	for (guint i = 0; i < cnf->channels->len; i++) {
		const ImtaJcChannelSection *s = g_ptr_array_index(cnf->channels, i);
		gsize length;

		if (strchr(s->pattern, '*') == NULL ||
		    !imta_job_controller_pattern_match(s->pattern, channel))
			continue;
		length = jc_literal_length(s->pattern);
		if (best == NULL || length > best_length) {
			best = s;
			best_length = length;
		}
	}
	return best != NULL ? best : &cnf->channel_defaults;
}

const ImtaJcPool *
imta_job_controller_cnf_pool(const ImtaJobControllerCnf *cnf, const char *name)
{
	for (guint i = 0; i < cnf->pools->len; i++) {
		const ImtaJcPool *pool = g_ptr_array_index(cnf->pools, i);

		if (g_ascii_strcasecmp(pool->name, name) == 0)
			return pool;
	}
	return NULL;
}

const ImtaJcPool *
imta_job_controller_cnf_default_pool(const ImtaJobControllerCnf *cnf)
{
	return g_ptr_array_index(cnf->pools, 0);
}

void
imta_job_controller_cnf_dump(const ImtaJobControllerCnf *cnf, GString *out)
{
	g_string_append_printf(out, "! job_controller.cnf: %s\n",
			       cnf->path != NULL ? cnf->path : "(built-in)");
	imta_option_table_dump(imta_job_controller_options, imta_job_controller_n_options, cnf,
			       IMTA_SCOPE_GLOBAL, out);
	imta_option_table_dump(imta_job_controller_pool_options,
			       imta_job_controller_n_pool_options, &cnf->pool_defaults,
			       IMTA_SCOPE_GLOBAL, out);
	imta_option_table_dump(imta_job_controller_channel_options,
			       imta_job_controller_n_channel_options, &cnf->channel_defaults,
			       IMTA_SCOPE_GLOBAL, out);
	for (guint i = 0; i < cnf->pools->len; i++) {
		const ImtaJcPool *pool = g_ptr_array_index(cnf->pools, i);

		g_string_append_printf(out, "\n[POOL=%s]\n", pool->name);
		imta_option_table_dump(imta_job_controller_pool_options,
				       imta_job_controller_n_pool_options, pool, IMTA_SCOPE_POOL,
				       out);
	}
	for (guint i = 0; i < cnf->channels->len; i++) {
		const ImtaJcChannelSection *s = g_ptr_array_index(cnf->channels, i);

		g_string_append_printf(out, "\n[CHANNEL=%s]\n", s->pattern);
		imta_option_table_dump(imta_job_controller_channel_options,
				       imta_job_controller_n_channel_options, s,
				       IMTA_SCOPE_CHANNEL, out);
	}
}
