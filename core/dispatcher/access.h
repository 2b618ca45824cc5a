/*
 * access.h - what the dispatcher checks about a new connection before a
 * worker sees it: the PORT_ACCESS mapping, the DNS block lists of
 * DNS_VERIFY_DOMAIN, and (for the statistics only) the client's IDENT
 * answer.
 */
#ifndef IMTA_DISPATCHER_ACCESS_H
#define IMTA_DISPATCHER_ACCESS_H

#include <glib.h>
#include "service.h"

/* The reply sent to a client listed on a DNS_VERIFY_DOMAIN list. */
#define DISP_DNSBL_REPLY "500 5.7.1 access_control: host found on DNS list and rejected\r\n"
#define DISP_IDENT_TIMEOUT_MS 5000
#define DISP_IDENT_REPLY_MAX 1000
#define DISP_IDENT_USER_MAX 64

/* Apply PORT_ACCESS to the probe "TCP|server-ip|server-port|client-ip|
 * client-port".  NULL: the connection may go on; else the reply line
 * (with CRLF) to send before closing it.  Caller frees. */
char *disp_access_port(const DispConn *conn);

/* The reply for a PORT_ACCESS refusal text: as it is when it starts with
 * a three-digit code, else "554 5.7.1 <text>"; CRLF added. */
char *disp_access_reply(const char *text);

/* Check the client against the service's zones; then admit the
 * connection (not listed, or the DNS failed) or reject it (listed). */
void disp_access_dnsbl_start(DispConn *conn);

/* Ask the client's IDENT server (RFC 1413) who holds the connection, and
 * keep the answer in conn->ident_user.  Runs beside the hand-off, never
 * delaying it; ends by itself after DISP_IDENT_TIMEOUT_MS. */
void disp_ident_start(DispConn *conn);
void disp_ident_cancel(DispConn *conn);

/* The user named by an IDENT reply line ("6191, 23 : USERID : UNIX : joe"),
 * or NULL for an error reply or a malformed one.  Caller frees. */
char *disp_ident_parse(const char *reply);

#endif /* IMTA_DISPATCHER_ACCESS_H */
