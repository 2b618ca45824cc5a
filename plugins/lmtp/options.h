/*
 * options.h - the channel option file of an LMTP channel,
 * <table directory>/<channel>_option (NAME=value lines, the syntax of
 * option.dat), declared once as an option table for both sides of the
 * plugin.
 */
#ifndef LMTP_OPTIONS_H
#define LMTP_OPTIONS_H

#include <glib.h>
#include <imta/imta.h>
#include <imta/options.h>

G_BEGIN_DECLS

#define LMTP_PLUGIN_NAME "lmtp"

typedef struct {
	/* The client (master). */
	char *server;                      /* LMTP_SERVER: host[:port] or /socket; NULL = none */
	gint64 max_client_threads;         /* MAX_CLIENT_THREADS */
	gint64 recipients_per_transaction; /* ALLOW_RECIPIENTS_PER_TRANSACTION */
	gint64 connect_timeout;            /* CONNECT_TIMEOUT, seconds */
	gint64 reply_timeout;              /* REPLY_TIMEOUT, seconds */
	gint64 delivery_timeout;           /* DELIVERY_TIMEOUT, seconds */
	gint64 session_idle;               /* SESSION_IDLE_TIMEOUT, seconds */
	char *tls_client_verify;           /* TLS_CLIENT_VERIFY: none|chain|name; NULL = by mode */
	char *tls_ca_file;                 /* TLS_CA_FILE; NULL = the system's */
	/* The server (slave). */
	gint64 command_timeout;            /* COMMAND_TIMEOUT, seconds */
	gint64 data_timeout;               /* DATA_TIMEOUT, seconds */
	gint64 transactions_per_session;   /* ALLOW_TRANSACTIONS_PER_SESSION */
	gint64 rejections_per_session;     /* ALLOW_REJECTIONS_PER_SESSION */
	gint64 max_received_lines;         /* MAX_RECEIVED_LINES: hop-count limit */
	guint32 debug;                     /* DEBUG; with slave_debug */
	char *path;                        /* the file read; NULL when absent */
} LmtpOptions;

extern const ImtaOptionSpec lmtp_option_specs[];
extern const gsize lmtp_n_option_specs;

/* Read an option file; a missing file gives the defaults.  Errors are
 * "file:line:column: ..." configuration errors. */
LmtpOptions *lmtp_options_load(const char *path, GError **error);
void lmtp_options_free(LmtpOptions *options);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LmtpOptions, lmtp_options_free)

/* The options of `channel`, read once per process; safe from any thread. */
const LmtpOptions *lmtp_options_get(const ImtaConfig *config, const ImtaChannel *channel,
				    GError **error);

/* Forget every file read (plugin deinit). */
void lmtp_options_forget(void);

/* An LMTP_SERVER value: "/path" (a UNIX-domain socket), "host",
 * "host:port", "[address]" or "[address]:port" (IPv6 literals in
 * brackets, as "[IPv6:2001:db8::1]:24" or "[2001:db8::1]:24").  *host_r gets the host
 * name or the literal (brackets included), *port_r the port or 0,
 * *socket_r the path; unused outputs are NULL / 0.  FALSE when malformed. */
gboolean lmtp_options_parse_server(const char *value, char **host_r, guint16 *port_r,
				   char **socket_r);

G_END_DECLS

#endif /* LMTP_OPTIONS_H */
