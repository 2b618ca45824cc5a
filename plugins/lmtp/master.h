/*
 * master.h - the master program of LMTP channels: each message's
 * recipients grouped by the message store that holds their mailboxes,
 * and handed to its LMTP server with one reply per recipient.
 */
#ifndef LMTP_MASTER_H
#define LMTP_MASTER_H

#include <glib.h>
#include <imta/imta.h>

G_BEGIN_DECLS

/* The master entry (ImtaPlugin.master). */
ImtaEntryStatus lmtp_master(ImtaMasterJob *job);

/* The message store an address names in its source route: the first
 * host of "@store.example.net.lmtp,@b:joe@lmtp-daemon", without a final
 * ".lmtp" label ("store.example.net"), lower-cased; NULL when the
 * address has no route.  *mailbox_r (may be NULL) gets what follows the
 * route ("joe@lmtp-daemon"; the address itself when there is none). */
char *lmtp_master_route_host(const char *address, const char **mailbox_r);

G_END_DECLS

#endif /* LMTP_MASTER_H */
