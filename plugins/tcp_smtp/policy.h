/*
 * policy.h - what an SMTP session may do: its source channel (switched by
 * the client's address, by AUTH and by STARTTLS), the TLS and SASL
 * requirements of that channel, size limits, the access mapping tables,
 * and the routing and directory checks of senders and recipients.
 *
 * Checks that may wait on the directory or the DNS are "work" functions
 * taking one self-contained request, meant for imta_conn_run(); the rest
 * is quick and runs on the connection's thread.
 */
#ifndef TCP_SMTP_POLICY_H
#define TCP_SMTP_POLICY_H

#include <glib.h>
#include <imta/imta.h>

G_BEGIN_DECLS

/* A decision about a command: code 0 = go ahead, else the reply. */
typedef struct {
	guint code;
	char enhanced[16];
	char *text;
} SmtpVerdict;

void smtp_verdict_set(SmtpVerdict *verdict, guint code, const char *enhanced,
		      const char *format, ...) G_GNUC_PRINTF(4, 5);
void smtp_verdict_clear(SmtpVerdict *verdict);

/* The channels of one session. */
typedef struct {
	const ImtaConfig *config;
	const ImtaChannel *service;   /* the service's channel */
	const ImtaChannel *source;    /* the source channel now */
} SmtpPolicy;

void smtp_policy_init(SmtpPolicy *policy, const ImtaConfig *config, const ImtaChannel *service);

/* Switch the source channel to `name` (saslswitchchannel,
 * tlsswitchchannel).  FALSE, with the reason in *why_r, when there is no
 * such channel or it may not be switched to. */
gboolean smtp_policy_switch_to(SmtpPolicy *policy, const char *name, char **why_r);

gboolean smtp_policy_tls_offered(const SmtpPolicy *policy);
gboolean smtp_policy_tls_required(const SmtpPolicy *policy);
gboolean smtp_policy_sasl_offered(const SmtpPolicy *policy);
gboolean smtp_policy_sasl_required(const SmtpPolicy *policy);

/* May relaying be refused by the built-in rule?  Only when the mappings
 * have neither ORIG_SEND_ACCESS nor SEND_ACCESS. */
gboolean smtp_policy_default_relay_rule(const ImtaConfig *config);

/* The largest message the session's source channel takes, in bytes
 * (option.dat BLOCK_LIMIT, the channel's sourceblocklimit); 0 = none. */
gint64 smtp_policy_message_limit(const SmtpPolicy *policy);
/* The blocklimit of a destination channel in bytes; 0 = none. */
gint64 smtp_policy_channel_limit(const ImtaConfig *config, const ImtaChannel *channel);

/* VRFY and EXPN as the source channel's keywords and the option file
 * say. */
typedef enum { SMTP_VRFY_DEFAULT, SMTP_VRFY_ALLOW, SMTP_VRFY_HIDE } SmtpVrfyMode;
typedef enum { SMTP_EXPN_DEFAULT, SMTP_EXPN_ALLOW, SMTP_EXPN_DISABLE } SmtpExpnMode;
SmtpVrfyMode smtp_policy_vrfy_mode(const ImtaChannel *channel);
SmtpExpnMode smtp_policy_expn_mode(const ImtaChannel *channel);

/* ---- the client, before the greeting -------------------------------- */

typedef struct {
	/* in */
	const ImtaConfig *config;
	const ImtaChannel *service;
	char *client_ip;
	gboolean want_name;       /* look up the client's host name */
	gboolean name_switches;   /* the name may select the channel too */
	/* out */
	char *client_name;        /* forward-confirmed name, or NULL */
	const ImtaChannel *switch_to; /* the channel switchchannel chose, or NULL */
	GPtrArray *log;           /* char *: lines for the connection's log */
} SmtpClientCheck;

void smtp_client_check_work(gpointer data);
void smtp_client_check_free(SmtpClientCheck *check);

/* ---- MAIL FROM ------------------------------------------------------- */

typedef struct {
	const char *port_probe;   /* "TCP|server-ip|server-port|client-ip|client-port" */
	const char *app_info;     /* "SMTP/helo" */
	const char *from;         /* the reverse path ("" = <>) */
	const char *auth_from;    /* the authenticated user, "" when none */
} SmtpSenderProbe;

/* FROM_ACCESS.  Sets a refusal in *verdict, and *new_from_r when the
 * table replaced the envelope From ($J); *log_r gets text to log ($<,
 * $>).  Quick: runs on the connection's thread. */
void smtp_policy_check_sender(const SmtpPolicy *policy, const SmtpSenderProbe *probe,
			      SmtpVerdict *verdict, char **new_from_r, char **log_r);

/* ---- RCPT TO --------------------------------------------------------- */

typedef struct {
	/* in */
	const ImtaConfig *config;
	const ImtaChannel *source;
	gboolean relay_allowed;   /* authenticated, or the source was switched */
	char *port_probe, *app_info;
	char *from;               /* "" = <> */
	char *rcpt;               /* the recipient as given, qualified */
	char *orcpt;              /* ORCPT as "type;address", or NULL */
	gint64 declared_size;     /* SIZE= of MAIL, -1 when not given */
	guint notify;             /* NOTIFY=, carried for the caller */
	/* out */
	SmtpVerdict verdict;      /* code 0: accepted */
	char *address;            /* the rewritten address */
	const ImtaChannel *channel; /* its destination channel */
	gboolean discard_message; /* accept, but queue nothing at all ($V, $Z) */
	gboolean discard_recipient; /* accept, but do not queue this one ($B) */
	GPtrArray *log;           /* char * */
} SmtpRcptCheck;

void smtp_rcpt_check_work(gpointer data);
void smtp_rcpt_check_free(SmtpRcptCheck *check);

/* ---- VRFY and EXPN ---------------------------------------------------- */

typedef struct {
	/* in */
	const ImtaConfig *config;
	const ImtaChannel *source;
	char *argument;
	gboolean expand;          /* EXPN: list a group's members */
	guint limit;              /* members listed at most */
	/* out */
	SmtpVerdict verdict;      /* always set; text may hold '\n' (multi-line) */
} SmtpLookup;

void smtp_lookup_work(gpointer data);
void smtp_lookup_free(SmtpLookup *lookup);

/* Drop the process's resolver (plugin deinit). */
void smtp_policy_forget(void);

G_END_DECLS

#endif /* TCP_SMTP_POLICY_H */
