/*
 * server_notice.h - success notices of the LMTP server: the final hop
 * offers DSN (RFC 3461), so a recipient delivered into the store that
 * asked for NOTIFY=SUCCESS gets its notice from here.
 */
#ifndef LMTP_SERVER_NOTICE_H
#define LMTP_SERVER_NOTICE_H

#include <glib.h>
#include <imta/imta.h>
#include <imta/queue.h>

G_BEGIN_DECLS

/* One delivered recipient that asked for a success notice. */
typedef struct {
	const char *address;     /* as the client gave it */
	const char *orcpt;       /* "type;address", or NULL */
	const char *diagnostic;  /* "2.0.0 delivered ..." */
} LmtpNoticeRecipient;

typedef struct {
	const ImtaConfig *config;
	const ImtaChannel *channel; /* the server's: source of the notice */
	ImtaQueue *queue;
	const char *hostname;       /* Reporting-MTA */
	const char *id;             /* the transaction's id */
	const char *return_path;    /* MAIL FROM; "" = none (no notice) */
	const char *envid;          /* ENVID, or NULL */
	ImtaRet ret;
	gint64 arrival;             /* when the content was complete */
	GBytes *content;            /* the message as stored */
} LmtpNoticeMessage;

/* Queue one success notice to the return path for `rcpts`: routed by
 * the rewrite rules from the server's channel, from the null path,
 * durable on TRUE.  Nothing is queued for an empty return path or no
 * recipients (TRUE). */
gboolean lmtp_server_success_notice(const LmtpNoticeMessage *message,
				    const LmtpNoticeRecipient *rcpts, guint n_rcpts,
				    GError **error);

G_END_DECLS

#endif /* LMTP_SERVER_NOTICE_H */
