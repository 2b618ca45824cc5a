/*
 * control.h - the dispatcher's control socket (IMTA_RUN/dispatcher.sock):
 * one request per line, STATS or SHUTDOWN.
 *
 * STATS is answered by records, one per line, then a line ".":
 *
 *   dispatcher pid=N started=T now=T stopping=0|1
 *   service name=S ports=P[,P...] address=A accepting=0|1 workers=N
 *           current=N total=N refused=N handoffs=N
 *   worker service=S pid=N state=X started=T current=N total=N
 *           exited=T|- status=X|-
 *   conn id=N service=S client=A client_port=N server=A server_port=N
 *        ident=X|- worker=N|- state=X start=T end=T|- outcome=X|-
 *
 * (each record on one line).  Times are seconds since the epoch; values
 * that are free text are xtext (xtext.h); "-" means none.  SHUTDOWN is
 * answered "OK shutting down" and stops the dispatcher as SIGTERM does.
 * Errors are "ERR <text>".  Only root and the dispatcher's own user may
 * ask SHUTDOWN; members of its group may ask STATS.
 */
#ifndef IMTA_DISPATCHER_CONTROL_H
#define IMTA_DISPATCHER_CONTROL_H

#include <glib.h>
#include "service.h"

#define DISP_CONTROL_SOCKET "dispatcher.sock"
#define DISP_PID_FILE "dispatcher.pid"
#define DISP_CONTROL_LINE_MAX 1024
#define DISP_CONTROL_CLIENTS_MAX 32
#define DISP_CONTROL_IDLE_SECONDS 30

/* Create and bind the socket at `path` (mode 0660). */
DispControl *disp_control_new(Dispatcher *disp, const char *path, GError **error);
/* Begin accepting requests. */
void disp_control_start(DispControl *control);
/* Close the socket, its clients, and remove the file. */
void disp_control_free(DispControl *control);

/* The STATS answer, without the final ".". */
void disp_control_stats(Dispatcher *disp, GString *out);

#endif /* IMTA_DISPATCHER_CONTROL_H */
