/*
 * options.c - the channel option file of an LMTP channel: where the
 * client connects when a recipient names no message store, how many
 * threads and sessions it uses, its timeouts and TLS checks; one table
 * row per option, read once per process and channel.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/imta.h>
#include <imta/channel_options.h>
#include <imta/options.h>

#include "options.h"

#define OPT(field) G_STRUCT_OFFSET(LmtpOptions, field)
#define OPT_SCOPE IMTA_SCOPE_GLOBAL

static gboolean options_check_server(const char *value, const char **expected_r);
static gboolean options_check_verify(const char *value, const char **expected_r);

const ImtaOptionSpec lmtp_option_specs[] = {
	{ .name = "LMTP_SERVER", .kind = IMTA_OPT_STRING, .offset = OPT(server),
	  .scopes = OPT_SCOPE, .check = options_check_server,
	  .doc = "where recipients without a store host in their address go: host, host:port, "
		 "[address]:port or the path of a UNIX-domain socket" },
	{ .name = "MAX_CLIENT_THREADS", .kind = IMTA_OPT_INT, .default_value = "10", .min = 1,
	  .max = 1000, .offset = OPT(max_client_threads), .scopes = OPT_SCOPE,
	  .doc = "LMTP client threads (messages delivered at once) per delivery job" },
	{ .name = "ALLOW_RECIPIENTS_PER_TRANSACTION", .kind = IMTA_OPT_INT,
	  .default_value = "100", .min = 1, .max = 1000000,
	  .offset = OPT(recipients_per_transaction), .scopes = OPT_SCOPE,
	  .doc = "recipients the client sends in one transaction; more go in the next (the "
		 "server accepts as many, then answers 452 4.5.3)" },
	{ .name = "CONNECT_TIMEOUT", .kind = IMTA_OPT_DURATION, .default_value = "30",
	  .min = 1, .max = 3600, .offset = OPT(connect_timeout), .scopes = OPT_SCOPE,
	  .doc = "seconds to wait for a connection to an LMTP server" },
	{ .name = "REPLY_TIMEOUT", .kind = IMTA_OPT_DURATION, .default_value = "300",
	  .min = 1, .max = 86400, .offset = OPT(reply_timeout), .scopes = OPT_SCOPE,
	  .doc = "seconds to wait for the greeting and each command's reply, and for each "
		 "write of the message" },
	{ .name = "DELIVERY_TIMEOUT", .kind = IMTA_OPT_DURATION, .default_value = "600",
	  .min = 1, .max = 86400, .offset = OPT(delivery_timeout), .scopes = OPT_SCOPE,
	  .doc = "seconds to wait for the recipients' replies after the end of the message "
		 "(the store delivers meanwhile)" },
	{ .name = "SESSION_IDLE_TIMEOUT", .kind = IMTA_OPT_DURATION, .default_value = "5",
	  .min = 1, .max = 3600, .offset = OPT(session_idle), .scopes = OPT_SCOPE,
	  .doc = "seconds an idle connection is kept open for the next message" },
	{ .name = "TLS_CLIENT_VERIFY", .kind = IMTA_OPT_STRING, .offset = OPT(tls_client_verify),
	  .scopes = OPT_SCOPE, .check = options_check_verify,
	  .doc = "certificate check of the LMTP server: none, chain or name "
		 "(default none with maytls, name with musttls)" },
	{ .name = "TLS_CA_FILE", .kind = IMTA_OPT_STRING, .offset = OPT(tls_ca_file),
	  .scopes = OPT_SCOPE,
	  .doc = "PEM file of the CAs the LMTP client trusts (default: the system's); "
		 "relative to the configuration directory" },
	/* The server (slave). */
	{ .name = "COMMAND_TIMEOUT", .kind = IMTA_OPT_DURATION, .default_value = "300",
	  .min = 1, .max = 86400, .offset = OPT(command_timeout), .scopes = OPT_SCOPE,
	  .doc = "server: seconds to wait for the next command (RFC 5321 4.5.3.2: 5 minutes)" },
	{ .name = "DATA_TIMEOUT", .kind = IMTA_OPT_DURATION, .default_value = "180",
	  .min = 1, .max = 86400, .offset = OPT(data_timeout), .scopes = OPT_SCOPE,
	  .doc = "server: seconds to wait for more message content (RFC 5321: 3 minutes)" },
	{ .name = "ALLOW_TRANSACTIONS_PER_SESSION", .kind = IMTA_OPT_INT,
	  .default_value = "1000", .min = 1, .max = 1000000,
	  .offset = OPT(transactions_per_session), .scopes = OPT_SCOPE,
	  .doc = "server: messages accepted per connection; the next MAIL gets 421 4.7.0" },
	{ .name = "ALLOW_REJECTIONS_PER_SESSION", .kind = IMTA_OPT_INT,
	  .default_value = "100", .min = 1, .max = 1000000,
	  .offset = OPT(rejections_per_session), .scopes = OPT_SCOPE,
	  .doc = "server: 5xx replies per connection; the next command gets 421 4.7.0" },
	{ .name = "MAX_RECEIVED_LINES", .kind = IMTA_OPT_INT, .default_value = "50",
	  .min = 1, .max = 10000, .offset = OPT(max_received_lines), .scopes = OPT_SCOPE,
	  .doc = "server: Received: header lines a message may carry; more is a loop "
		 "(554 5.4.6)" },
	{ .name = "DEBUG", .kind = IMTA_OPT_MASK, .default_value = "0", .offset = OPT(debug),
	  .scopes = OPT_SCOPE,
	  .doc = "server, with slave_debug on the channel: nonzero logs every command and "
		 "reply" },
};
const gsize lmtp_n_option_specs = G_N_ELEMENTS(lmtp_option_specs);

static const ImtaChannelOptionsSpec lmtp_options_spec = {
	"LMTP channel", lmtp_option_specs, G_N_ELEMENTS(lmtp_option_specs)
};

static gboolean
options_parse_port(const char *text, guint16 *port_r)
{
	guint64 port;

	if (!g_ascii_string_to_unsigned(text, 10, 1, 65535, &port, NULL))
		return FALSE;
	*port_r = (guint16)port;
	return TRUE;
}

gboolean
lmtp_options_parse_server(const char *value, char **host_r, guint16 *port_r, char **socket_r)
{
	const char *end, *colon;
	const char *expected;

	*host_r = NULL;
	*socket_r = NULL;
	*port_r = 0;
	if (value[0] == '/') {
		/* sockaddr_un holds 108 bytes with the NUL */
		if (strlen(value) > 107)
			return FALSE;
		*socket_r = g_strdup(value);
		return TRUE;
	}
	if (value[0] == '[') {
		end = strchr(value, ']');
		if (end == NULL || end == value + 1)
			return FALSE;
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			return FALSE;
		end++;
	} else {
		colon = strrchr(value, ':');
		end = colon != NULL ? colon : value + strlen(value);
		if (end == value)
			return FALSE;
		{
			g_autofree char *name = g_strndup(value, end - value);

			if (!imta_option_check_hostname(name, &expected))
				return FALSE;
		}
	}
	if (colon != NULL && !options_parse_port(colon + 1, port_r))
		return FALSE;
	*host_r = g_strndup(value, end - value);
	return TRUE;
}

static gboolean
options_check_server(const char *value, const char **expected_r)
{
	g_autofree char *host = NULL;
	g_autofree char *socket = NULL;
	guint16 port;

	*expected_r = "host, host:port, [address]:port or the absolute path of a socket";
	return lmtp_options_parse_server(value, &host, &port, &socket);
}

static gboolean
options_check_verify(const char *value, const char **expected_r)
{
	*expected_r = "none, chain or name";
	return g_ascii_strcasecmp(value, "none") == 0 || g_ascii_strcasecmp(value, "chain") == 0 ||
	       g_ascii_strcasecmp(value, "name") == 0;
}

void
lmtp_options_free(LmtpOptions *options)
{
	if (options == NULL)
		return;
	imta_option_table_clear(lmtp_option_specs, lmtp_n_option_specs, options);
	g_free(options->path);
	g_free(options);
}

LmtpOptions *
lmtp_options_load(const char *path, GError **error)
{
	g_autoptr(LmtpOptions) options = g_new0(LmtpOptions, 1);
	gboolean found;

	if (!imta_channel_options_read(&lmtp_options_spec, path, options, NULL, &found, error))
		return NULL;
	if (found)
		options->path = g_strdup(path);
	return g_steal_pointer(&options);
}

/* ---- the per-process cache ------------------------------------------ */

static ImtaChannelOptionsCache options_cache;

static gpointer
options_load_channel(const ImtaConfig *config, const ImtaChannel *channel, GError **error)
{
	g_autofree char *path = imta_channel_options_path(config, channel);

	return lmtp_options_load(path, error);
}

const LmtpOptions *
lmtp_options_get(const ImtaConfig *config, const ImtaChannel *channel, GError **error)
{
	return imta_channel_options_cached(&options_cache, config, channel, options_load_channel,
					   (GDestroyNotify)lmtp_options_free, error);
}

void
lmtp_options_forget(void)
{
	imta_channel_options_cache_clear(&options_cache);
}
