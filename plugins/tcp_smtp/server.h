/*
 * server.h - the SMTP server session (RFC 5321 with PIPELINING, SIZE,
 * 8BITMIME, ENHANCEDSTATUSCODES, DSN, CHUNKING, STARTTLS and AUTH), driven
 * by a worker through the callbacks of slave.h.
 */
#ifndef TCP_SMTP_SERVER_H
#define TCP_SMTP_SERVER_H

#include <imta/slave.h>

G_BEGIN_DECLS

extern const ImtaSlaveOps tcp_smtp_slave_ops;

G_END_DECLS

#endif /* TCP_SMTP_SERVER_H */
