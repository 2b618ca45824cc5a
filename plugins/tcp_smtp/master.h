/*
 * master.h - the master program of SMTP channels: recipients grouped by
 * destination domain, each domain routed by DNS and relayed by the
 * client threads of smtp_relay.h.
 */
#ifndef TCP_SMTP_MASTER_H
#define TCP_SMTP_MASTER_H

#include <glib.h>
#include <imta/imta.h>
#include <imta/smtp_relay.h>

G_BEGIN_DECLS

/* Without ALLOW_RECIPIENTS_PER_TRANSACTION in the option file. */
#define TCP_SMTP_RECIPIENTS_PER_TRANSACTION 100
/* Transactions per session, and seconds a session may stay idle. */
#define TCP_SMTP_SESSION_MAX_TRANSACTIONS 100
#define TCP_SMTP_SESSION_IDLE_MS 5000

/* The master entry (ImtaPlugin.master). */
ImtaEntryStatus tcp_smtp_master(ImtaMasterJob *job);

/* Group msg's recipients by domain (case-insensitive; key NULL for
 * addresses without one), at most `cap` to a group, groups in the order
 * of their first recipient: ImtaSmtpGroup *. */
GPtrArray *tcp_smtp_master_group(const ImtaMessage *msg, guint cap);

G_END_DECLS

#endif /* TCP_SMTP_MASTER_H */
