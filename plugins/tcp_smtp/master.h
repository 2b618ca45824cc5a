/*
 * master.h - the master program of SMTP channels: client threads pulling
 * messages from the job, recipients grouped by destination, and the cache
 * of idle sessions they share.
 */
#ifndef TCP_SMTP_MASTER_H
#define TCP_SMTP_MASTER_H

#include <glib.h>
#include <imta/imta.h>
#include <imta/smtp_client.h>

#include "relay.h"

G_BEGIN_DECLS

/* Without ALLOW_RECIPIENTS_PER_TRANSACTION in the option file. */
#define TCP_SMTP_RECIPIENTS_PER_TRANSACTION 100
/* Transactions per session, and seconds a session may stay idle. */
#define TCP_SMTP_SESSION_MAX_TRANSACTIONS 100
#define TCP_SMTP_SESSION_IDLE_MS 5000

/* The master entry (ImtaPlugin.master). */
ImtaEntryStatus tcp_smtp_master(ImtaMasterJob *job);

/* Recipients of one message for one destination, in message order. */
typedef struct {
	char *domain;        /* lower-cased; NULL: addresses without a domain */
	GArray *rcpts;       /* guint indices into the message */
} TcpSmtpGroup;

/* Group msg's recipients by domain (case-insensitive), at most `cap` to a
 * group, groups in the order of their first recipient. */
GPtrArray *tcp_smtp_master_group(const ImtaMessage *msg, guint cap);

/* ---- idle sessions --------------------------------------------------- */

/* Sessions idle after a transaction, by key (address, port, host, TLS
 * mode), kept for the next message to the same hop: at most `max_idle`
 * of them, each for `idle_ms`, then QUIT (a thread of the cache does that
 * while the job waits for work). */
TcpSmtpCache *tcp_smtp_cache_new(const char *channel, guint max_idle, guint idle_ms);

/* An idle session for `key` (the caller owns it now), or NULL. */
ImtaSmtpClient *tcp_smtp_cache_take(TcpSmtpCache *cache, const char *key);

/* Keep `c` for reuse (the cache owns it now). */
void tcp_smtp_cache_give(TcpSmtpCache *cache, const char *key, ImtaSmtpClient *c);

/* maytls: a handshake with `address` failed during this job, so later
 * sessions with it go without TLS at once. */
gboolean tcp_smtp_cache_tls_failed(TcpSmtpCache *cache, const char *address);
void tcp_smtp_cache_note_tls_failed(TcpSmtpCache *cache, const char *address);

/* Sessions taken from the cache so far. */
guint tcp_smtp_cache_reuses(TcpSmtpCache *cache);

/* QUIT every idle session and free. */
void tcp_smtp_cache_free(TcpSmtpCache *cache);

G_END_DECLS

#endif /* TCP_SMTP_MASTER_H */
