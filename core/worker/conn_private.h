/*
 * conn_private.h - the worker's side of a connection (ImtaConn of
 * <imta/slave.h>): what the event loops, the blocking pool and the
 * control code of the worker share.
 *
 * A connection is its own GSource: the socket's poll record and the
 * connection's single deadline (the earliest of its input, output and
 * handshake timeouts) belong to that one source, so an idle connection
 * costs one small allocation besides the plugin's session.  Buffers exist
 * only while they hold bytes.
 */
#ifndef IMTA_WORKER_CONN_PRIVATE_H
#define IMTA_WORKER_CONN_PRIVATE_H

#include <arpa/inet.h>
#include <glib.h>

#include <imta/config.h>
#include <imta/queue.h>
#include <imta/slave.h>
#include "loops.h"
#include "tls.h"

/* Output timeout when the plugin set no input timeout. */
#define WORKER_OUTPUT_TIMEOUT_DEFAULT 300
/* Handshake timeout when the plugin set no input timeout. */
#define WORKER_TLS_HANDSHAKE_TIMEOUT 60

/* What every connection of the worker shares; read-only once serving
 * starts, except `draining`. */
typedef struct {
	const ImtaConfig *config;
	const ImtaChannel *channel;
	const ImtaSlaveOps *ops;
	const char *service;
	ImtaQueue *queue;
	WorkerTls *tls;             /* NULL: no certificate, no STARTTLS */
	GThreadPool *pool;          /* blocking work (imta_conn_run) */
	gint draining;              /* atomic: the worker is retiring */
} WorkerContext;

typedef enum {
	CONN_TLS_NONE,
	CONN_TLS_PENDING,           /* clear output being sent before the handshake */
	CONN_TLS_HANDSHAKE,
	CONN_TLS_ACTIVE,
} ConnTlsState;

/* One imta_conn_run() call, from the pool back to the loop. */
typedef struct _WorkerJob WorkerJob;
struct _WorkerJob {
	ImtaConn *conn;             /* holds a reference on the connection's source */
	ImtaConnWorkFn work;
	ImtaConnDoneFn done;
	gpointer data;
	WorkerJob *next;            /* in conn->ran_inline */
};

struct _ImtaConn {
	GSource source;             /* first: the connection is its own event source */
	gpointer fd_tag;            /* NULL once the socket is closed */
	GIOCondition poll_events;   /* what fd_tag waits for now */
	GList link;                 /* in its loop's list of connections */
	const WorkerContext *worker;
	WorkerLoop *loop;
	gpointer session;
	guint64 id;
	int fd;
	guint16 remote_port, local_port;
	char remote_ip[INET6_ADDRSTRLEN];
	char local_ip[INET6_ADDRSTRLEN];

	/* Input: bytes in[in_off, in_off + in_len).  While a callback runs
	 * the bytes may still be in the loop's scratch buffer (in_borrowed);
	 * what is left afterwards moves to a buffer of the connection's own,
	 * which is freed as soon as it is empty. */
	char *in;
	guint32 in_off, in_len, in_cap;
	/* Output: out[out_off, out_off + out_len), freed when empty. */
	char *out;
	guint32 out_off, out_len, out_cap;
	guint32 out_clear;          /* TLS pending: bytes still to send in clear */

	guint timeout;              /* input timeout, seconds; 0 = none */
	gint64 input_deadline;      /* monotonic microseconds; 0 = not running */
	gint64 output_deadline;
	gint64 handshake_deadline;
	guint run_pending;          /* imta_conn_run calls whose done has not run */
	WorkerJob *ran_inline;      /* work done on the loop thread, done still owed */
	WorkerTlsSession *tls;
	char *tls_description;
	ConnTlsState tls_state;

	guint in_borrowed : 1;
	guint opened : 1;           /* ops->open has run: ops->close is owed */
	guint paused : 1;           /* imta_conn_pause_input */
	guint eof : 1;              /* the client closed its side */
	guint closing : 1;          /* imta_conn_close, or the worker closes it */
	guint dead : 1;             /* the socket failed or is gone: writes discarded */
	guint finished : 1;         /* ops->close has run */
	guint notify : 1;           /* ops->input is due */
	guint discarding : 1;       /* inside a line that was too long */
	guint want_write : 1;       /* the socket refused output; wait for POLLOUT */
	guint handshake_write : 1;  /* the handshake waits to write, not to read */
	guint again : 1;            /* dispatch again at once */
	guint drained : 1;          /* ops->drain has been called */
};

/* Main thread: a connection for a passed socket (non-blocking already);
 * NULL when an address is malformed. */
ImtaConn *worker_conn_new(const WorkerContext *worker, guint64 id, int fd,
			  const char *local_ip, guint16 local_port,
			  const char *remote_ip, guint16 remote_port);

/* Loop thread: attach to `loop` and call ops->open. */
void worker_conn_start(ImtaConn *conn, WorkerLoop *loop);
/* Loop thread: the worker retires; call ops->drain once. */
void worker_conn_drain(ImtaConn *conn);
/* Loop thread: close at once (shutdown deadline), reason for the log. */
void worker_conn_abort(ImtaConn *conn, const char *reason);
/* Pool thread: run a WorkerJob's work (the GThreadPool function). */
void worker_conn_pool_run(gpointer job, gpointer user_data);
/* Loop thread: a job of the blocking pool has finished; run its done. */
void worker_conn_job_done(WorkerJob *job);

/* Normalise an address given as text: validated, an IPv4-mapped IPv6
 * address given as IPv4.  FALSE when it is not an IP address. */
gboolean worker_conn_parse_ip(const char *text, char out[INET6_ADDRSTRLEN]);

#endif
