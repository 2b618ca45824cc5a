/*
 * options.h - the channel option file of an SMTP channel,
 * <table directory>/<channel>_option (NAME=value lines, the syntax of
 * option.dat), declared once as an option table.
 */
#ifndef TCP_SMTP_OPTIONS_H
#define TCP_SMTP_OPTIONS_H

#include <glib.h>
#include <imta/imta.h>
#include <imta/options.h>

G_BEGIN_DECLS

typedef struct {
	gint64 recipients_per_transaction; /* ALLOW_RECIPIENTS_PER_TRANSACTION */
	gint64 transactions_per_session;   /* ALLOW_TRANSACTIONS_PER_SESSION */
	gint64 rejections_per_session;     /* ALLOW_REJECTIONS_PER_SESSION */
	gint64 max_received_lines;         /* MAX_RECEIVED_LINES: hop-count limit */
	gint64 command_timeout;            /* COMMAND_TIMEOUT, seconds */
	gint64 data_timeout;               /* DATA_TIMEOUT, seconds */
	gint64 expand_limit;               /* EXPAND_LIMIT: EXPN answer lines */
	gboolean disable_expand;           /* DISABLE_EXPAND */
	gboolean hide_verify;              /* HIDE_VERIFY */
	char *banner_addition;             /* BANNER_ADDITION; NULL = none */
	guint32 debug;                     /* DEBUG; with slave_debug */
	gint64 max_client_threads;         /* MAX_CLIENT_THREADS (SMTP client) */
	char *tls_client_verify;           /* TLS_CLIENT_VERIFY: none|chain|name; NULL = by mode */
	char *tls_ca_file;                 /* TLS_CA_FILE: PEM trust anchors; NULL = the system's */
	gboolean recipients_per_transaction_given; /* the file sets ALLOW_RECIPIENTS_... */
	char *path;                        /* the file read; NULL when absent */
} TcpSmtpOptions;

extern const ImtaOptionSpec tcp_smtp_option_specs[];
extern const gsize tcp_smtp_n_option_specs;

/* Read an option file; a missing file gives the defaults.  Errors are
 * "file:line:column: ..." configuration errors. */
TcpSmtpOptions *tcp_smtp_options_load(const char *path, GError **error);
void tcp_smtp_options_free(TcpSmtpOptions *options);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TcpSmtpOptions, tcp_smtp_options_free)

/* The options of `channel` (its file in the configuration's table
 * directory), read once per process and shared by every session; safe
 * from any thread. */
const TcpSmtpOptions *tcp_smtp_options_get(const ImtaConfig *config, const ImtaChannel *channel,
					   GError **error);

/* Forget every file read (plugin deinit). */
void tcp_smtp_options_forget(void);

G_END_DECLS

#endif /* TCP_SMTP_OPTIONS_H */
