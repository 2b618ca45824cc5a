/*
 * store_cnf.c - store.cnf, the message store's settings: an option table
 * for the fixed names and the per-partition "store.partition.NAME.path"
 * lines, parsed with the shared option-file reader.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/store.h>
#include <imta/options.h>
#include <imta/cfgfile.h>

#define CNF_COMMENTS "#!"
#define CNF_PARTITION_PREFIX "store.partition."
#define CNF_PARTITION_SUFFIX ".path"
#define CNF_PARTITION_NAME_MAX 64

typedef struct {
	char *root;
	char *default_partition;
	gboolean quota_enforcement;
	gint64 default_mailbox_quota;
	gint64 default_message_quota;
	gint64 quota_warn;
	gint64 grace_hours;
	gboolean overquota_status;
} CnfValues;

static gboolean
cnf_check_partition(const char *value, const char **expected_r)
{
	gsize n = strlen(value);

	for (gsize i = 0; i < n; i++)
		if (!g_ascii_isalnum(value[i]) && value[i] != '_' && value[i] != '-') {
			*expected_r = "a partition name (letters, digits, '_' and '-')";
			return FALSE;
		}
	if (n > CNF_PARTITION_NAME_MAX) {
		*expected_r = "a partition name of at most 64 characters";
		return FALSE;
	}
	return TRUE;
}

static gboolean
cnf_check_abs_path(const char *value, const char **expected_r)
{
	if (g_path_is_absolute(value))
		return TRUE;
	*expected_r = "an absolute path";
	return FALSE;
}

#define CNF_ROW(name, kind, def, min, max, field, doc, check) \
	{ name, kind, def, min, max, G_STRUCT_OFFSET(CnfValues, field), IMTA_SCOPE_GLOBAL, \
	  doc, 0, 0, check }

static const ImtaOptionSpec cnf_options[] = {
	CNF_ROW("STORE.ROOT", IMTA_OPT_STRING, NULL, 1, 0, root,
		"the store's root directory (default: IMTA_STORE of imta_tailor)",
		cnf_check_abs_path),
	CNF_ROW("STORE.DEFAULTPARTITION", IMTA_OPT_STRING, "primary", 1, 0, default_partition,
		"the partition of new users", cnf_check_partition),
	CNF_ROW("STORE.QUOTAENFORCEMENT", IMTA_OPT_BOOL, "1", 1, 0, quota_enforcement,
		"refuse delivery to users over quota", NULL),
	CNF_ROW("STORE.DEFAULTMAILBOXQUOTA", IMTA_OPT_INT, "-1", -1, G_MAXINT64,
		default_mailbox_quota, "bytes a user may use without mailQuota; -1 unlimited",
		NULL),
	CNF_ROW("STORE.DEFAULTMESSAGEQUOTA", IMTA_OPT_INT, "-1", -1, G_MAXINT64,
		default_message_quota,
		"messages a user may keep without mailMsgQuota; -1 unlimited", NULL),
	CNF_ROW("STORE.QUOTAWARN", IMTA_OPT_INT, "90", 0, 100, quota_warn,
		"percentage of the quota that triggers a warning; 0 none", NULL),
	CNF_ROW("STORE.QUOTAGRACEPERIOD", IMTA_OPT_INT, "120", 0, 876000, grace_hours,
		"hours over quota before mail bounces", NULL),
	CNF_ROW("STORE.OVERQUOTASTATUS", IMTA_OPT_BOOL, "0", 1, 0, overquota_status,
		"stop delivering to users whose status is overquota", NULL),
};

void
imta_store_config_free(ImtaStoreConfig *config)
{
	if (config == NULL)
		return;
	g_free(config->root);
	g_free(config->default_partition);
	g_clear_pointer(&config->partitions, g_hash_table_unref);
	g_free(config->path);
	g_free(config);
}

/* "store.partition.NAME.path": the NAME, or NULL for any other name. */
static char *
cnf_partition_name(const char *name)
{
	gsize n = strlen(name), p = strlen(CNF_PARTITION_PREFIX), s = strlen(CNF_PARTITION_SUFFIX);

	if (n <= p + s || g_ascii_strncasecmp(name, CNF_PARTITION_PREFIX, p) != 0 ||
	    g_ascii_strcasecmp(name + n - s, CNF_PARTITION_SUFFIX) != 0)
		return NULL;
	return g_strndup(name + p, n - p - s);
}

static gboolean
cnf_set_partition(ImtaStoreConfig *config, const char *part, const ImtaOptionLine *line,
		  GError **error)
{
	const char *expected = NULL;
	g_autofree char *quoted = NULL;
	ImtaSourcePos pos = line->name_pos;

	pos.column += (guint)strlen(CNF_PARTITION_PREFIX);
	if (part[0] == '\0' || !cnf_check_partition(part, &expected)) {
		quoted = imta_option_quote(part);
		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &pos,
				  "expected %s, got %s",
				  expected != NULL ? expected : "a partition name", quoted);
		return FALSE;
	}
	if (!cnf_check_abs_path(line->value, &expected)) {
		quoted = imta_option_quote(line->value);
		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &line->value_pos,
				  "expected an absolute path for %s, got %s", line->name, quoted);
		return FALSE;
	}
	if (g_hash_table_contains(config->partitions, part)) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_DUPLICATE, &line->name_pos,
				  "partition %s is defined twice", part);
		return FALSE;
	}
	g_hash_table_insert(config->partitions, g_strdup(part), g_strdup(line->value));
	return TRUE;
}

static gboolean
cnf_set(ImtaStoreConfig *config, CnfValues *values, GHashTable *seen,
	const ImtaOptionLine *line, GError **error)
{
	const ImtaOptionSpec *row;
	g_autofree char *part = NULL;

	if (line->kind == IMTA_OPTION_LINE_SECTION) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &line->pos,
				  "store.cnf has no sections; expected store.NAME = value");
		return FALSE;
	}
	part = cnf_partition_name(line->name);
	if (part != NULL)
		return cnf_set_partition(config, part, line, error);
	row = imta_option_lookup(cnf_options, G_N_ELEMENTS(cnf_options), line->name);
	if (row == NULL) {
		const char *hint = imta_option_suggest(cnf_options, G_N_ELEMENTS(cnf_options),
						       line->name, NULL);
		/* The names are written in lower case in this file. */
		g_autofree char *lower = hint != NULL ? g_ascii_strdown(hint, -1) : NULL;

		return imta_option_unknown(error, &line->name_pos, "store.cnf", line->name, lower);
	}
	if (g_hash_table_contains(seen, row)) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_DUPLICATE, &line->name_pos,
				  "%s is set twice", line->name);
		return FALSE;
	}
	g_hash_table_add(seen, (gpointer)row);
	return imta_option_set_row(row, values, line->value, &line->value_pos, error);
}

static gboolean
cnf_parse(ImtaCfgFile *cf, ImtaStoreConfig *config, CnfValues *values, GError **error)
{
	g_autoptr(GHashTable) seen = g_hash_table_new(g_direct_hash, g_direct_equal);
	g_autoptr(GError) local = NULL;
	ImtaOptionLine line = { 0 };

	while (imta_option_next_line(cf, CNF_COMMENTS, &line, &local))
		if (!cnf_set(config, values, seen, &line, &local))
			break;
	imta_option_line_clear(&line);
	if (local != NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	return TRUE;
}

static void
cnf_finish(ImtaStoreConfig *config, CnfValues *values, const char *default_root)
{
	config->root = g_strdup(values->root != NULL ? values->root : default_root);
	config->default_partition = g_strdup(values->default_partition != NULL ?
					     values->default_partition : "primary");
	config->quota_enforcement = values->quota_enforcement;
	config->default_mailbox_quota = values->default_mailbox_quota;
	config->default_message_quota = values->default_message_quota;
	config->quota_warn_percent = (gint)values->quota_warn;
	config->quota_grace_period = values->grace_hours * 3600;
	config->overquota_status = values->overquota_status;
	if (!g_hash_table_contains(config->partitions, "primary") && config->root != NULL)
		g_hash_table_insert(config->partitions, g_strdup("primary"),
				    g_build_filename(config->root, "partition", "primary", NULL));
}

ImtaStoreConfig *
imta_store_config_load(const char *path, const char *default_root, GError **error)
{
	g_autoptr(ImtaStoreConfig) config = g_new0(ImtaStoreConfig, 1);
	g_autoptr(GStringChunk) names = g_string_chunk_new(256);
	CnfValues values = { 0 };
	gboolean ok = TRUE;

	config->partitions = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	imta_option_table_defaults(cnf_options, G_N_ELEMENTS(cnf_options), &values,
				   IMTA_SCOPE_GLOBAL);
	if (path != NULL && g_file_test(path, G_FILE_TEST_EXISTS)) {
		g_autoptr(ImtaCfgFile) cf = imta_cfg_file_open(path, IMTA_CFG_CONTINUATION,
							       CNF_COMMENTS, names, error);

		ok = cf != NULL && cnf_parse(cf, config, &values, error);
		config->path = g_strdup(path);
	}
	if (ok && values.root == NULL && default_root == NULL) {
		ImtaSourcePos pos = { path, 0, 0 };

		imta_set_error_at(error, IMTA_CONFIG_ERROR_MISSING, &pos,
				  "store.root is not set and there is no default");
		ok = FALSE;
	}
	if (ok)
		cnf_finish(config, &values, default_root);
	imta_option_table_clear(cnf_options, G_N_ELEMENTS(cnf_options), &values);
	if (!ok)
		return NULL;
	if (!g_hash_table_contains(config->partitions, config->default_partition)) {
		ImtaSourcePos pos = { path, 0, 0 };

		imta_set_error_at(error, IMTA_CONFIG_ERROR_MISSING, &pos,
				  "the default partition %s has no store.partition.%s.path",
				  config->default_partition, config->default_partition);
		return NULL;
	}
	return g_steal_pointer(&config);
}
