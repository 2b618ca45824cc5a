/*
 * loops.h - the worker's event-loop threads.  Each thread runs its own
 * GMainContext; a connection stays on the thread it was given for its
 * whole life.  Other threads talk to a loop only through its inbox
 * (new connections, finished blocking work, drain and abort orders).
 */
#ifndef IMTA_WORKER_LOOPS_H
#define IMTA_WORKER_LOOPS_H

#include <glib.h>

typedef struct _ImtaConn ImtaConn;
typedef struct _WorkerLoops WorkerLoops;
typedef struct _WorkerLoop WorkerLoop;

/* Called on a loop thread when a connection has ended (after ops->close). */
typedef void (*WorkerConnEndedFn)(guint64 id, gpointer user_data);

/* Start `count` threads with `stack_size` bytes of stack each (0: the
 * system's default). */
WorkerLoops *worker_loops_new(guint count, gsize stack_size, WorkerConnEndedFn ended,
			      gpointer user_data, GError **error);
/* Stop and join the threads; every connection must have ended. */
void worker_loops_free(WorkerLoops *loops);

/* ---- any thread ------------------------------------------------------ */

/* The loop with the fewest connections, leaving out loops blocked in
 * work of their only connection while another loop is free; counts the
 * new one there. */
WorkerLoop *worker_loops_assign(WorkerLoops *loops);
/* Hand a connection counted by worker_loops_assign to its loop; on the
 * loop's own thread it starts at once. */
void worker_loop_adopt(WorkerLoop *loop, ImtaConn *conn);
/* The context of the first loop, the one worker_loops_assign prefers
 * among equals: work that starts connections is best done there. */
GMainContext *worker_loops_first_context(WorkerLoops *loops);
/* Whether the first loop is free of blocking work (it may block the
 * moment after). */
gboolean worker_loops_first_free(WorkerLoops *loops);
/* Queue a finished job (a WorkerJob of conn_private.h) for its loop. */
void worker_loop_post_done(WorkerLoop *loop, gpointer job);
/* Every loop: call ops->drain on each of its connections. */
void worker_loops_drain(WorkerLoops *loops);
/* Every loop: close every connection now. */
void worker_loops_abort(WorkerLoops *loops);

/* ---- the loop's own thread ------------------------------------------- */

GMainContext *worker_loop_context(WorkerLoop *loop);
/* IMTA_CONN_INPUT_MAX bytes the loop's connections read into. */
char *worker_loop_scratch(WorkerLoop *loop);
gboolean worker_loop_draining(WorkerLoop *loop);
/* Blocking work for the loop's only connection may run on the loop
 * thread itself: nothing else waits on the loop, and sparing the trip to
 * the pool and back spares two thread wake-ups, which is most of what a
 * lone session's command costs.  TRUE: the loop counts as blocked (new
 * connections go elsewhere if they can) until worker_loop_unblock(). */
gboolean worker_loop_block(WorkerLoop *loop);
void worker_loop_unblock(WorkerLoop *loop);
/* A connection of this loop has ended; forget it. */
void worker_loop_conn_ended(WorkerLoop *loop, ImtaConn *conn);

#endif
