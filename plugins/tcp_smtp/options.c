/*
 * options.c - the channel option file of an SMTP channel: limits, timeouts
 * and the VRFY/EXPN policy of the server, one table row per option, read
 * once per process and channel.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/imta.h>
#include <imta/cfgfile.h>
#include <imta/options.h>

#include "options.h"

#define OPT_COMMENTS "!#;"
#define OPT(field) G_STRUCT_OFFSET(TcpSmtpOptions, field)
#define OPT_SCOPE IMTA_SCOPE_GLOBAL

static gboolean options_check_banner(const char *value, const char **expected_r);
static gboolean options_check_verify(const char *value, const char **expected_r);

const ImtaOptionSpec tcp_smtp_option_specs[] = {
	{ .name = "ALLOW_RECIPIENTS_PER_TRANSACTION", .kind = IMTA_OPT_INT,
	  .default_value = "1000", .min = 1, .max = 1000000,
	  .offset = OPT(recipients_per_transaction), .scopes = OPT_SCOPE,
	  .doc = "recipients accepted per message; more get 452 4.5.3" },
	{ .name = "ALLOW_TRANSACTIONS_PER_SESSION", .kind = IMTA_OPT_INT,
	  .default_value = "1000", .min = 1, .max = 1000000,
	  .offset = OPT(transactions_per_session), .scopes = OPT_SCOPE,
	  .doc = "messages accepted per connection; the next MAIL gets 421 4.7.0" },
	{ .name = "ALLOW_REJECTIONS_PER_SESSION", .kind = IMTA_OPT_INT,
	  .default_value = "20", .min = 1, .max = 1000000,
	  .offset = OPT(rejections_per_session), .scopes = OPT_SCOPE,
	  .doc = "error replies per connection; the next command gets 421 4.7.0" },
	{ .name = "MAX_RECEIVED_LINES", .kind = IMTA_OPT_INT, .default_value = "50",
	  .min = 1, .max = 10000, .offset = OPT(max_received_lines), .scopes = OPT_SCOPE,
	  .doc = "Received: header lines a message may carry; more is a loop (554 5.4.6)" },
	{ .name = "COMMAND_TIMEOUT", .kind = IMTA_OPT_DURATION, .default_value = "300",
	  .min = 1, .max = 86400, .offset = OPT(command_timeout), .scopes = OPT_SCOPE,
	  .doc = "seconds to wait for the next command (RFC 5321 4.5.3.2: 5 minutes)" },
	{ .name = "DATA_TIMEOUT", .kind = IMTA_OPT_DURATION, .default_value = "180",
	  .min = 1, .max = 86400, .offset = OPT(data_timeout), .scopes = OPT_SCOPE,
	  .doc = "seconds to wait for more message content (RFC 5321 4.5.3.2: 3 minutes)" },
	{ .name = "DISABLE_EXPAND", .kind = IMTA_OPT_BOOL, .default_value = "1",
	  .offset = OPT(disable_expand), .scopes = OPT_SCOPE,
	  .doc = "1 = EXPN is refused unless the channel has expnallow" },
	{ .name = "EXPAND_LIMIT", .kind = IMTA_OPT_INT, .default_value = "100", .min = 1,
	  .max = 100000, .offset = OPT(expand_limit), .scopes = OPT_SCOPE,
	  .doc = "members an EXPN answer lists at most" },
	{ .name = "HIDE_VERIFY", .kind = IMTA_OPT_BOOL, .default_value = "0",
	  .offset = OPT(hide_verify), .scopes = OPT_SCOPE,
	  .doc = "1 = VRFY answers 252 without looking, unless the channel has vrfyallow" },
	{ .name = "BANNER_ADDITION", .kind = IMTA_OPT_STRING, .offset = OPT(banner_addition),
	  .scopes = OPT_SCOPE, .check = options_check_banner,
	  .doc = "text added to the 220 greeting after \"ESMTP\"" },
	{ .name = "DEBUG", .kind = IMTA_OPT_MASK, .default_value = "0", .offset = OPT(debug),
	  .scopes = OPT_SCOPE,
	  .doc = "with slave_debug on the channel: nonzero logs every command and reply" },
	{ .name = "MAX_CLIENT_THREADS", .kind = IMTA_OPT_INT, .default_value = "20", .min = 1,
	  .max = 1000, .offset = OPT(max_client_threads), .scopes = OPT_SCOPE,
	  .doc = "SMTP client threads per delivery job (read by the client side)" },
	{ .name = "TLS_CLIENT_VERIFY", .kind = IMTA_OPT_STRING, .offset = OPT(tls_client_verify),
	  .scopes = OPT_SCOPE, .check = options_check_verify,
	  .doc = "SMTP client certificate check: none, chain or name "
		 "(default none with maytls, name with musttls)" },
	{ .name = "TLS_CA_FILE", .kind = IMTA_OPT_STRING, .offset = OPT(tls_ca_file),
	  .scopes = OPT_SCOPE,
	  .doc = "PEM file of the CAs the SMTP client trusts (default: the system's); "
		 "relative to the configuration directory" },
};
const gsize tcp_smtp_n_option_specs = G_N_ELEMENTS(tcp_smtp_option_specs);

/* The greeting is one reply line: printable ASCII only. */
static gboolean
options_check_banner(const char *value, const char **expected_r)
{
	*expected_r = "printable ASCII text of at most 200 characters";
	if (strlen(value) > 200)
		return FALSE;
	for (const char *c = value; *c != '\0'; c++)
		if ((guchar)*c < 0x20 || (guchar)*c > 0x7e)
			return FALSE;
	return TRUE;
}

static gboolean
options_check_verify(const char *value, const char **expected_r)
{
	*expected_r = "none, chain or name";
	return g_ascii_strcasecmp(value, "none") == 0 || g_ascii_strcasecmp(value, "chain") == 0 ||
	       g_ascii_strcasecmp(value, "name") == 0;
}

static TcpSmtpOptions *
options_new(const char *path)
{
	TcpSmtpOptions *options = g_new0(TcpSmtpOptions, 1);

	imta_option_table_defaults(tcp_smtp_option_specs, tcp_smtp_n_option_specs, options,
				   OPT_SCOPE);
	options->path = g_strdup(path);
	return options;
}

void
tcp_smtp_options_free(TcpSmtpOptions *options)
{
	if (options == NULL)
		return;
	imta_option_table_clear(tcp_smtp_option_specs, tcp_smtp_n_option_specs, options);
	g_free(options->path);
	g_free(options);
}

static gboolean
options_unknown(const ImtaOptionLine *line, GError **error)
{
	return imta_option_unknown(error, &line->name_pos, "SMTP channel", line->name,
				   imta_option_suggest(tcp_smtp_option_specs,
						       tcp_smtp_n_option_specs, line->name, NULL));
}

static gboolean
options_set(TcpSmtpOptions *options, GHashTable *seen, const ImtaOptionLine *line,
	    GError **error)
{
	const ImtaOptionSpec *row;

	if (line->kind == IMTA_OPTION_LINE_SECTION) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &line->pos,
				  "a channel option file has no sections; expected NAME=value");
		return FALSE;
	}
	row = imta_option_lookup(tcp_smtp_option_specs, tcp_smtp_n_option_specs, line->name);
	if (row == NULL)
		return options_unknown(line, error);
	if (g_hash_table_contains(seen, row)) {
		g_autofree char *where = imta_source_pos_format(&line->name_pos);

		imta_log(IMTA_LOG_WARNING, "%s: %s is set again; the later value wins", where,
			 row->name);
	}
	g_hash_table_add(seen, (gpointer)row);
	if (row->offset == OPT(recipients_per_transaction))
		options->recipients_per_transaction_given = TRUE;
	return imta_option_set_row(row, options, line->value, &line->value_pos, error);
}

TcpSmtpOptions *
tcp_smtp_options_load(const char *path, GError **error)
{
	g_autoptr(TcpSmtpOptions) options = NULL;
	g_autoptr(GHashTable) seen = NULL;
	g_autoptr(ImtaCfgFile) cf = NULL;
	GStringChunk *names;
	GError *local = NULL;
	ImtaOptionLine line = { 0 };

	if (!g_file_test(path, G_FILE_TEST_EXISTS))
		return options_new(NULL);
	/* Error messages are complete strings, so the file names their
	 * positions point to need not outlive the parse. */
	names = g_string_chunk_new(128);
	cf = imta_cfg_file_open(path, IMTA_CFG_CONTINUATION, OPT_COMMENTS, names, &local);
	if (cf != NULL) {
		options = options_new(path);
		seen = g_hash_table_new(g_direct_hash, g_direct_equal);
		while (imta_option_next_line(cf, OPT_COMMENTS, &line, &local))
			if (!options_set(options, seen, &line, &local))
				break;
		imta_option_line_clear(&line);
	}
	g_clear_pointer(&cf, imta_cfg_file_free);
	g_string_chunk_free(names);
	if (local != NULL) {
		g_propagate_error(error, local);
		return NULL;
	}
	return g_steal_pointer(&options);
}

/* ---- the per-process cache ------------------------------------------ */

static GMutex options_lock;
static GHashTable *options_by_channel; /* const ImtaChannel * -> TcpSmtpOptions * */

const TcpSmtpOptions *
tcp_smtp_options_get(const ImtaConfig *config, const ImtaChannel *channel, GError **error)
{
	g_autofree char *name = NULL;
	g_autofree char *path = NULL;
	TcpSmtpOptions *options;

	g_mutex_lock(&options_lock);
	if (options_by_channel == NULL)
		options_by_channel = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
							   (GDestroyNotify)tcp_smtp_options_free);
	options = g_hash_table_lookup(options_by_channel, channel);
	if (options == NULL) {
		name = g_strdup_printf("%s_option", channel->name);
		path = imta_config_path(config, name);
		options = tcp_smtp_options_load(path, error);
		if (options != NULL)
			g_hash_table_insert(options_by_channel, (gpointer)channel, options);
	}
	g_mutex_unlock(&options_lock);
	return options;
}

void
tcp_smtp_options_forget(void)
{
	g_mutex_lock(&options_lock);
	g_clear_pointer(&options_by_channel, g_hash_table_unref);
	g_mutex_unlock(&options_lock);
}
