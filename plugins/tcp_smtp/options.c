/*
 * options.c - the channel option file of an SMTP channel: limits, timeouts
 * and the VRFY/EXPN policy of the server, one table row per option, read
 * once per process and channel.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/imta.h>
#include <imta/channel_options.h>
#include <imta/options.h>

#include "options.h"

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

static const ImtaChannelOptionsSpec tcp_smtp_options_spec = {
	"SMTP channel", tcp_smtp_option_specs, G_N_ELEMENTS(tcp_smtp_option_specs)
};

void
tcp_smtp_options_free(TcpSmtpOptions *options)
{
	if (options == NULL)
		return;
	imta_option_table_clear(tcp_smtp_option_specs, tcp_smtp_n_option_specs, options);
	g_free(options->path);
	g_free(options);
}

TcpSmtpOptions *
tcp_smtp_options_load(const char *path, GError **error)
{
	g_autoptr(TcpSmtpOptions) options = g_new0(TcpSmtpOptions, 1);
	g_autoptr(GHashTable) given = g_hash_table_new(g_direct_hash, g_direct_equal);
	const ImtaOptionSpec *rcpts;
	gboolean found;

	if (!imta_channel_options_read(&tcp_smtp_options_spec, path, options, given, &found,
				       error))
		return NULL;
	if (found)
		options->path = g_strdup(path);
	rcpts = imta_option_lookup(tcp_smtp_option_specs, tcp_smtp_n_option_specs,
				   "ALLOW_RECIPIENTS_PER_TRANSACTION");
	options->recipients_per_transaction_given = g_hash_table_contains(given, rcpts);
	return g_steal_pointer(&options);
}

/* ---- the per-process cache ------------------------------------------ */

static ImtaChannelOptionsCache options_cache;

static gpointer
options_load_channel(const ImtaConfig *config, const ImtaChannel *channel, GError **error)
{
	g_autofree char *path = imta_channel_options_path(config, channel);

	return tcp_smtp_options_load(path, error);
}

const TcpSmtpOptions *
tcp_smtp_options_get(const ImtaConfig *config, const ImtaChannel *channel, GError **error)
{
	return imta_channel_options_cached(&options_cache, config, channel, options_load_channel,
					   (GDestroyNotify)tcp_smtp_options_free, error);
}

void
tcp_smtp_options_forget(void)
{
	imta_channel_options_cache_clear(&options_cache);
}
