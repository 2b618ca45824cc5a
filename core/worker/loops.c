/*
 * loops.c - the worker's event-loop threads and their inboxes.
 *
 * Each loop thread owns a GMainContext with one source per connection
 * and one inbox source.  Other threads post to the inbox under its lock
 * and wake the loop by making the inbox source ready, so no message is
 * lost between a loop's last look and its next poll.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <glib.h>

#include <imta/log.h>
#include <imta/slave.h>
#include "conn_private.h"
#include "loops.h"

typedef enum {
	LOOP_MSG_ADOPT,             /* data: ImtaConn * */
	LOOP_MSG_DONE,              /* data: WorkerJob * */
	LOOP_MSG_DRAIN,
	LOOP_MSG_ABORT,
	LOOP_MSG_QUIT,
} LoopMsgType;

typedef struct {
	GList link;
	LoopMsgType type;
	gpointer data;
} LoopMsg;

struct _WorkerLoop {
	WorkerLoops *owner;
	guint index;
	GMainContext *context;
	GMainLoop *main_loop;
	pthread_t thread;
	gboolean started;
	GSource *inbox_source;
	GMutex inbox_lock;
	GQueue inbox;               /* LoopMsg, linked through their own link */
	gint n_conns;               /* atomic: counted by the assigning thread */
	gint blocked;               /* atomic: running blocking work itself */
	GQueue conns;               /* ImtaConn, through conn->link; loop thread only */
	char *scratch;
	gboolean draining;          /* loop thread only */
};

struct _WorkerLoops {
	WorkerLoop *loops;
	guint count;
	WorkerConnEndedFn ended;
	gpointer ended_data;
};

/* ---- the inbox --------------------------------------------------------- */

static void
loop_post(WorkerLoop *loop, LoopMsgType type, gpointer data)
{
	LoopMsg *msg = g_new0(LoopMsg, 1);

	msg->type = type;
	msg->data = data;
	msg->link.data = msg;
	g_mutex_lock(&loop->inbox_lock);
	g_queue_push_tail_link(&loop->inbox, &msg->link);
	g_source_set_ready_time(loop->inbox_source, 0);
	g_mutex_unlock(&loop->inbox_lock);
}

/* Every connection of the loop, referenced, so callbacks that end some
 * of them do not disturb the walk. */
static GPtrArray *
loop_snapshot(WorkerLoop *loop)
{
	GPtrArray *conns = g_ptr_array_new_with_free_func((GDestroyNotify)g_source_unref);

	for (GList *l = loop->conns.head; l != NULL; l = l->next)
		g_ptr_array_add(conns, g_source_ref(l->data));
	return conns;
}

static void
loop_drain(WorkerLoop *loop)
{
	g_autoptr(GPtrArray) conns = NULL;

	loop->draining = TRUE;
	conns = loop_snapshot(loop);
	for (guint i = 0; i < conns->len; i++)
		worker_conn_drain(conns->pdata[i]);
}

static void
loop_abort(WorkerLoop *loop)
{
	g_autoptr(GPtrArray) conns = loop_snapshot(loop);

	for (guint i = 0; i < conns->len; i++)
		worker_conn_abort(conns->pdata[i], "closed: the worker is shutting down");
}

static void
loop_start_conn(WorkerLoop *loop, ImtaConn *conn)
{
	conn->link.data = conn;
	g_queue_push_tail_link(&loop->conns, &conn->link);
	worker_conn_start(conn, loop);
}

static void
loop_handle(WorkerLoop *loop, LoopMsg *msg)
{
	switch (msg->type) {
	case LOOP_MSG_ADOPT:
		loop_start_conn(loop, msg->data);
		break;
	case LOOP_MSG_DONE:
		worker_conn_job_done(msg->data);
		break;
	case LOOP_MSG_DRAIN:
		loop_drain(loop);
		break;
	case LOOP_MSG_ABORT:
		loop_abort(loop);
		break;
	case LOOP_MSG_QUIT:
		g_main_loop_quit(loop->main_loop);
		break;
	}
}

static gboolean
loop_inbox_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
	WorkerLoop *loop = user_data;
	GQueue batch = G_QUEUE_INIT;
	GList *link;

	g_mutex_lock(&loop->inbox_lock);
	batch = loop->inbox;
	g_queue_init(&loop->inbox);
	g_source_set_ready_time(source, -1);
	g_mutex_unlock(&loop->inbox_lock);
	while ((link = g_queue_pop_head_link(&batch)) != NULL) {
		LoopMsg *msg = link->data;

		loop_handle(loop, msg);
		g_free(msg);
	}
	return G_SOURCE_CONTINUE;
}

static GSourceFuncs loop_inbox_funcs = {
	.dispatch = loop_inbox_dispatch,
};

/* ---- threads --------------------------------------------------------- */

static void *
loop_thread(void *data)
{
	WorkerLoop *loop = data;
	char name[16];

	g_snprintf(name, sizeof(name), "imta-loop-%u", loop->index);
	pthread_setname_np(pthread_self(), name);
	g_main_context_push_thread_default(loop->context);
	g_main_loop_run(loop->main_loop);
	g_main_context_pop_thread_default(loop->context);
	return NULL;
}

static gboolean
loop_init(WorkerLoops *loops, WorkerLoop *loop, guint index, const pthread_attr_t *attr,
	  GError **error)
{
	int rc;

	loop->owner = loops;
	loop->index = index;
	loop->context = g_main_context_new();
	loop->main_loop = g_main_loop_new(loop->context, FALSE);
	loop->scratch = g_malloc(IMTA_CONN_INPUT_MAX);
	g_mutex_init(&loop->inbox_lock);
	g_queue_init(&loop->inbox);
	g_queue_init(&loop->conns);
	loop->inbox_source = g_source_new(&loop_inbox_funcs, sizeof(GSource));
	g_source_set_callback(loop->inbox_source, NULL, loop, NULL);
	g_source_set_name(loop->inbox_source, "worker inbox");
	/* Before the connections: orders and finished work come first. */
	g_source_set_priority(loop->inbox_source, G_PRIORITY_HIGH);
	g_source_attach(loop->inbox_source, loop->context);
	rc = pthread_create(&loop->thread, attr, loop_thread, loop);
	if (rc != 0) {
		g_set_error(error, G_THREAD_ERROR, G_THREAD_ERROR_AGAIN,
			    "cannot start an event-loop thread: %s", g_strerror(rc));
		return FALSE;
	}
	loop->started = TRUE;
	return TRUE;
}

static void
loop_clear(WorkerLoop *loop)
{
	GList *link;

	if (loop->context == NULL)
		return;
	if (loop->started) {
		loop_post(loop, LOOP_MSG_QUIT, NULL);
		pthread_join(loop->thread, NULL);
	}
	g_warn_if_fail(loop->conns.length == 0);
	while ((link = g_queue_pop_head_link(&loop->inbox)) != NULL)
		g_free(link->data);
	g_source_destroy(loop->inbox_source);
	g_source_unref(loop->inbox_source);
	g_main_loop_unref(loop->main_loop);
	g_main_context_unref(loop->context);
	g_mutex_clear(&loop->inbox_lock);
	g_free(loop->scratch);
}

WorkerLoops *
worker_loops_new(guint count, gsize stack_size, WorkerConnEndedFn ended, gpointer user_data,
		 GError **error)
{
	WorkerLoops *loops = g_new0(WorkerLoops, 1);
	pthread_attr_t attr;
	gboolean ok = TRUE;
	int rc;

	g_return_val_if_fail(count > 0, NULL);
	loops->loops = g_new0(WorkerLoop, count);
	loops->count = count;
	loops->ended = ended;
	loops->ended_data = user_data;
	pthread_attr_init(&attr);
	if (stack_size > 0 && (rc = pthread_attr_setstacksize(&attr, stack_size)) != 0)
		imta_log(IMTA_LOG_WARNING, "stack size %" G_GSIZE_FORMAT " refused (%s); "
			 "event-loop threads use the default", stack_size, g_strerror(rc));
	for (guint i = 0; i < count && ok; i++)
		ok = loop_init(loops, &loops->loops[i], i, &attr, error);
	pthread_attr_destroy(&attr);
	if (!ok) {
		worker_loops_free(loops);
		return NULL;
	}
	return loops;
}

void
worker_loops_free(WorkerLoops *loops)
{
	if (loops == NULL)
		return;
	for (guint i = 0; i < loops->count; i++)
		loop_clear(&loops->loops[i]);
	g_free(loops->loops);
	g_free(loops);
}

/* ---- any thread ------------------------------------------------------ */

/* A blocked loop only gets a connection when every loop is blocked.  A
 * loop may block just after being picked; the connection then waits for
 * that one piece of work, as it would for a busy pool. */
static gint
loop_load(WorkerLoop *loop)
{
	gint n = g_atomic_int_get(&loop->n_conns);

	return g_atomic_int_get(&loop->blocked) ? n + G_MAXINT / 2 : n;
}

WorkerLoop *
worker_loops_assign(WorkerLoops *loops)
{
	WorkerLoop *best = &loops->loops[0];
	gint best_load = loop_load(best);

	for (guint i = 1; i < loops->count; i++) {
		gint load = loop_load(&loops->loops[i]);

		if (load < best_load) {
			best = &loops->loops[i];
			best_load = load;
		}
	}
	g_atomic_int_inc(&best->n_conns);
	return best;
}

void
worker_loop_adopt(WorkerLoop *loop, ImtaConn *conn)
{
	/* A drain still waiting in the inbox reaches it too: it walks
	 * every connection the loop has. */
	if (g_main_context_is_owner(loop->context)) {
		loop_start_conn(loop, conn);
		return;
	}
	loop_post(loop, LOOP_MSG_ADOPT, conn);
}

GMainContext *
worker_loops_first_context(WorkerLoops *loops)
{
	return loops->loops[0].context;
}

gboolean
worker_loops_first_free(WorkerLoops *loops)
{
	return !g_atomic_int_get(&loops->loops[0].blocked);
}

void
worker_loop_post_done(WorkerLoop *loop, gpointer job)
{
	loop_post(loop, LOOP_MSG_DONE, job);
}

void
worker_loops_drain(WorkerLoops *loops)
{
	for (guint i = 0; i < loops->count; i++)
		loop_post(&loops->loops[i], LOOP_MSG_DRAIN, NULL);
}

void
worker_loops_abort(WorkerLoops *loops)
{
	for (guint i = 0; i < loops->count; i++)
		loop_post(&loops->loops[i], LOOP_MSG_ABORT, NULL);
}

/* ---- the loop's own thread ------------------------------------------- */

GMainContext *
worker_loop_context(WorkerLoop *loop)
{
	return loop->context;
}

char *
worker_loop_scratch(WorkerLoop *loop)
{
	return loop->scratch;
}

gboolean
worker_loop_draining(WorkerLoop *loop)
{
	return loop->draining;
}

gboolean
worker_loop_block(WorkerLoop *loop)
{
	if (loop->draining || loop->conns.length != 1 || g_atomic_int_get(&loop->n_conns) != 1)
		return FALSE;
	g_atomic_int_set(&loop->blocked, 1);
	return TRUE;
}

void
worker_loop_unblock(WorkerLoop *loop)
{
	g_atomic_int_set(&loop->blocked, 0);
}

void
worker_loop_conn_ended(WorkerLoop *loop, ImtaConn *conn)
{
	guint64 id = conn->id;

	g_queue_unlink(&loop->conns, &conn->link);
	g_atomic_int_add(&loop->n_conns, -1);
	loop->owner->ended(id, loop->owner->ended_data);
}
