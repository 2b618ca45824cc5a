/*
 * handoff.h - the channel between the dispatcher and its worker processes.
 *
 * The dispatcher starts each worker (IMAGE, default imta-worker) with one
 * end of a socketpair(AF_UNIX, SOCK_SEQPACKET) as file descriptor 3 and
 * the arguments
 *
 *	--config DIR --service NAME --channel CHANNEL --control-fd 3
 *	[--log FILE] [--debug MASK]
 *
 * Every message is one packet of text (at most IMTA_HANDOFF_MAX bytes, no
 * newline), words separated by single spaces:
 *
 *   worker -> dispatcher
 *	READY                    the worker has loaded its configuration and
 *	                         plugins and takes connections
 *	TAKEN <id>               it has the connection <id> and serves it
 *	CLOSED <id>              the session <id> has ended
 *	REFUSED <id> <reason>    it could not take <id> (the dispatcher
 *	                         closes the connection)
 *
 *   dispatcher -> worker
 *	CONN <id> <local-ip> <local-port> <remote-ip> <remote-port>
 *	                         with the connected socket attached
 *	                         (SCM_RIGHTS, exactly one descriptor)
 *	DRAIN                    retire: no more connections will come; end
 *	                         the sessions at the next safe point
 *	                         (ops->drain) and exit 0 when none is left
 *
 * <id> is a decimal number unique within the dispatcher's life.  A worker
 * that sees its control socket close (the dispatcher is gone) drains and
 * exits.  A worker that receives a message it does not understand logs it
 * and ignores it.
 */
#ifndef IMTA_DISPATCHER_HANDOFF_H
#define IMTA_DISPATCHER_HANDOFF_H

#include <glib.h>

G_BEGIN_DECLS

#define IMTA_HANDOFF_MAX 512
#define IMTA_HANDOFF_CONTROL_FD 3

/* Send `text` (and `fd` when >= 0) as one packet.  Blocks only as long as
 * the socket's buffer is full; EINTR is retried.  FALSE with errno set. */
gboolean imta_handoff_send(int sock, const char *text, int fd);

/* Receive one packet into buf (NUL-terminated, size IMTA_HANDOFF_MAX + 1);
 * *fd_r is the attached descriptor (close-on-exec) or -1.  Never waits,
 * so several threads may read one socket.  Returns the length, 0 when
 * the peer has closed, -1 on error (errno; EAGAIN when nothing is
 * waiting).  Extra descriptors and truncated packets are refused: the
 * descriptors are closed and -1 is returned with errno EPROTO. */
gssize imta_handoff_recv(int sock, char buf[IMTA_HANDOFF_MAX + 1], int *fd_r);

G_END_DECLS

#endif /* IMTA_DISPATCHER_HANDOFF_H */
