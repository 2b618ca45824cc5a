/*
 * workers.h - the worker processes of a service: starting them (IMAGE with
 * the arguments of handoff.h), choosing one for a connection, retiring
 * them (MAX_LIFE_CONNS, MAX_LIFE_TIME, MAX_IDLE_TIME within MAX_SHUTDOWN),
 * replacing those that die, and backing off from a program that keeps
 * failing at start.
 */
#ifndef IMTA_DISPATCHER_WORKERS_H
#define IMTA_DISPATCHER_WORKERS_H

#include <glib.h>
#include "service.h"

typedef enum {
	DISP_WORKER_STARTING,   /* started, READY not yet received */
	DISP_WORKER_READY,      /* takes connections */
	DISP_WORKER_RETIRING,   /* takes no more; DRAIN once its sessions ended */
	DISP_WORKER_DRAINING,   /* DRAIN sent; exits when its sessions end */
	DISP_WORKER_EXITED,
} DispWorkerState;

struct _DispWorker {
	DispService *service;
	guint serial;
	GPid pid;
	int sock;                     /* our end of the control socket, -1 once closed */
	guint sock_source;
	guint child_watch;
	DispWorkerState state;
	gboolean broken;              /* the control socket failed: takes nothing */
	gboolean killed;              /* SIGKILL sent */
	gint64 broken_since;          /* monotonic */
	gint64 started;               /* real time, seconds */
	gint64 started_mono;
	gint64 idle_since;            /* monotonic: when it last had no connection */
	gint64 retired_since;         /* monotonic: when RETIRING began */
	gint64 drained_since;         /* monotonic: when DRAIN was sent */
	gboolean termed;              /* SIGTERM sent: it drained for too long */
	gint64 exited;                /* real time, seconds */
	guint current;                /* connections sent and not yet closed */
	guint64 assigned;             /* CONN sent */
	guint64 total;                /* TAKEN */
	const char *retire_reason;
	char *status;                 /* how it exited */
	GList link;                   /* service->workers, then service->exited */
};

/* Start one worker; FALSE when the program could not be run. */
DispWorker *disp_worker_spawn(DispService *svc, GError **error);
/* Send CONN with the connection's descriptor.  FALSE with errno set
 * (EAGAIN: the worker's socket is full, try later). */
gboolean disp_worker_send_conn(DispWorker *worker, DispConn *conn);
/* Send DRAIN: no more connections; the worker exits when its sessions end. */
void disp_worker_drain(DispWorker *worker, const char *why);
/* SIGKILL (once); the worker takes nothing more. */
void disp_worker_kill(DispWorker *worker);
void disp_worker_free(DispWorker *worker);
const char *disp_worker_state_name(DispWorkerState state);

/* The worker that should take the next connection: READY, fewest
 * connections below MAX_CONNS; NULL when none has room. */
DispWorker *disp_workers_choose(DispService *svc);
/* Start the workers MIN_PROCS, MIN_CONNS and the queue ask for, within
 * MAX_PROCS and the restart backoff. */
void disp_workers_spawn_needed(DispService *svc);
/* Connections the service could still take: room in its workers and in
 * the workers MAX_PROCS still allows. */
gint64 disp_workers_room(DispService *svc);
/* The once-a-second checks: start timeouts, retirement, idle workers. */
void disp_workers_tick(DispService *svc, gint64 now);
/* A worker's connection count changed; retire or drain it when due. */
void disp_workers_check(DispWorker *worker);
/* Drain every worker (shutdown). */
void disp_workers_drain_all(DispService *svc, const char *why);
/* Kill what is left (shutdown took too long, or the program ends). */
void disp_workers_kill_all(DispService *svc);
/* Running workers (any state but EXITED). */
guint disp_workers_running(const DispService *svc);

#endif /* IMTA_DISPATCHER_WORKERS_H */
