/*
 * server.h - the lmtp plugin's slave program: an LMTP server (RFC 2033)
 * under the dispatcher that delivers straight into this system's message
 * store, answering once per recipient after the content, each answer only
 * once that recipient's copy is on disk.  lmtp(8) describes it.
 */
#ifndef LMTP_SERVER_H
#define LMTP_SERVER_H

#include <imta/slave.h>

G_BEGIN_DECLS

extern const ImtaSlaveOps lmtp_slave_ops;

G_END_DECLS

#endif /* LMTP_SERVER_H */
