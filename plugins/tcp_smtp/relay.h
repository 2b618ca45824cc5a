/*
 * relay.h - one message's recipients for one destination, handed over a
 * list of next hops: sessions (new or cached), STARTTLS, SIZE and 8-bit
 * checks, the transaction, and what each reply means for each recipient.
 */
#ifndef TCP_SMTP_RELAY_H
#define TCP_SMTP_RELAY_H

#include <glib.h>
#include <imta/imta.h>
#include <imta/smtp_client.h>

#include "route.h"

G_BEGIN_DECLS

typedef struct _TcpSmtpCache TcpSmtpCache; /* master.h */

/* What every delivery of one job shares (read-only while it runs). */
typedef struct {
	const char *channel;         /* channel name, for the log */
	const char *helo_name;
	guint16 port;
	const char *bind_address;    /* NULL = any */
	ImtaTlsMode tls;             /* the channel's tls_client */
	ImtaSmtpTlsClientOptions tls_options;
	ImtaEightBit eightbit;
	ImtaSmtpClientTimeouts timeouts;
	guint max_transactions;      /* per session */
	TcpSmtpCache *cache;         /* idle sessions; NULL = none kept */
} TcpSmtpRelayConfig;

/* A message being delivered, with its content read once. */
typedef struct {
	ImtaMessage *msg;
	GBytes *content;             /* as queued */
	gboolean eight_bit;          /* imta_mime_is_8bit(content) */
	GBytes *seven_bit;           /* the downgrade, made on first need */
} TcpSmtpRelayMessage;

/* The outcome decided for one recipient. */
typedef struct {
	ImtaOutcome outcome;
	gboolean relayed;            /* DELIVERED to a hop that took the DSN request */
	char *diagnostic;
} TcpSmtpRcptResult;

/* What one reply or failure means for a recipient still pending. */
typedef enum {
	TCP_SMTP_VERDICT_DELIVERED,
	TCP_SMTP_VERDICT_RELAYED,    /* delivered; the hop took NOTIFY/ORCPT */
	TCP_SMTP_VERDICT_FAILED,     /* permanent: return to the sender */
	TCP_SMTP_VERDICT_RETRY,      /* temporary: try again after the backoff */
	TCP_SMTP_VERDICT_NEXT_HOP,   /* no answer: try the next hop; RETRY after the last */
	TCP_SMTP_VERDICT_NEXT_HOP_FAILED, /* the same, but FAILED after the last */
	TCP_SMTP_VERDICT_UNSURE,     /* lost after the final dot: RETRY (RFC 1047) */
} TcpSmtpVerdict;

/* Session steps before the transaction. */
typedef enum {
	TCP_SMTP_STEP_CONNECT,
	TCP_SMTP_STEP_GREETING,
	TCP_SMTP_STEP_HELLO,
	TCP_SMTP_STEP_TLS,
} TcpSmtpStep;

/* A step that failed with reply `code` (0: no reply, the session broke). */
TcpSmtpVerdict tcp_smtp_relay_step_verdict(TcpSmtpStep step, guint code);

/* Recipient `i` of a transaction's result; `broken`: send() returned
 * FALSE; `dsn`: the hop offered DSN. */
TcpSmtpVerdict tcp_smtp_relay_verdict(const ImtaSmtpSendResult *result, guint i,
				      gboolean broken, gboolean dsn);

/* A reply in the form of imta_smtp_client_diagnostic, for replies that
 * came without a session (a refused greeting): "remote PEER said: 554
 * 5.7.1 text", an enhanced code of the reply's class added when it has
 * none. */
char *tcp_smtp_relay_reply_diagnostic(const char *peer, const ImtaSmtpReply *reply);

/* "host [address]" or "[address]". */
char *tcp_smtp_relay_peer_text(const TcpSmtpHop *hop);

/* Deliver msg's recipients rcpts[0..n) over the hops of `route`;
 * results[0..n) get the outcomes (every one decided). */
void tcp_smtp_relay_deliver(const TcpSmtpRelayConfig *config, TcpSmtpRelayMessage *message,
			    const guint *rcpts, guint n, const TcpSmtpRoute *route,
			    TcpSmtpRcptResult *results);

/* QUIT a session and log it (cached sessions end here too). */
void tcp_smtp_relay_close(ImtaSmtpClient *c, const char *channel);

G_END_DECLS

#endif /* TCP_SMTP_RELAY_H */
