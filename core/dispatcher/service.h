/*
 * service.h - the dispatcher's state: its services (listening sockets,
 * connections on their way to a worker, statistics), shared by the other
 * parts of the program.
 *
 * A connection is accepted by a service, checked (PORT_ACCESS, then the
 * DNS block lists of DNS_VERIFY_DOMAIN), queued until a worker has room,
 * sent to that worker (CONN, handoff.h) and forgotten by the dispatcher
 * once the worker has TAKEN it; the record stays for the statistics until
 * the worker says the session is CLOSED and HISTORICAL_TIME has passed.
 */
#ifndef IMTA_DISPATCHER_SERVICE_H
#define IMTA_DISPATCHER_SERVICE_H

#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/types.h>
#include <glib.h>
#include <gio/gio.h>

#include <imta/config.h>
#include <imta/daemon.h>
#include <imta/dns.h>
#include <imta/log.h>

/* DEBUG bits (dispatcher.cnf(5), imta-dispatcher(8)). */
#define DISP_DEBUG_MAIN          0x00000001u
#define DISP_DEBUG_MAIN_EXTRA    0x00000002u
#define DISP_DEBUG_CONFIG        0x00000004u
#define DISP_DEBUG_MISC          0x00000008u
#define DISP_DEBUG_SERVICE       0x00000010u
#define DISP_DEBUG_SERVICE_EXTRA 0x00000020u
#define DISP_DEBUG_PROCESS       0x00000040u
#define DISP_DEBUG_COMM          0x00000100u
#define DISP_DEBUG_COMM_EXTRA    0x00000200u
#define DISP_DEBUG_PACKET        0x00000400u
#define DISP_DEBUG_WORKER_BITS   0x00037000u  /* passed on to the workers */
#define DISP_DEBUG_STATS         0x00100000u
#define DISP_DEBUG_STATS_EXTRA   0x00200000u
#define DISP_DEBUG_ACCESS        0x01000000u  /* refusals logged to dispatcher.log */
/* The bits that make the dispatcher itself write debug lines. */
#define DISP_DEBUG_OWN_BITS      0x003007ffu

#define disp_debug(mask, bit, ...)                                          \
	do {                                                                \
		if (((mask) & (bit)) != 0)                                  \
			imta_log(IMTA_LOG_DEBUG, __VA_ARGS__);              \
	} while (0)

#define DISP_IP_MAX INET6_ADDRSTRLEN

typedef struct _Dispatcher Dispatcher;
typedef struct _DispService DispService;
typedef struct _DispWorker DispWorker;
typedef struct _DispConn DispConn;
typedef struct _DispControl DispControl;
typedef struct _DispIdent DispIdent;
typedef struct _DispLinger DispLinger;

typedef enum {
	DISP_CONN_CHECKING,   /* DNS_VERIFY_DOMAIN lookups in progress */
	DISP_CONN_QUEUED,     /* waiting for a worker with room */
	DISP_CONN_HANDING,    /* CONN sent, TAKEN not yet received */
	DISP_CONN_TAKEN,      /* a worker serves it; our descriptor is closed */
	DISP_CONN_CLOSED,     /* over; kept for the statistics */
} DispConnState;

struct _DispConn {
	guint64 id;
	DispService *service;
	DispConnState state;
	int fd;                       /* ours until TAKEN, then -1 */
	char local_ip[DISP_IP_MAX];
	char remote_ip[DISP_IP_MAX];
	guint16 local_port, remote_port;
	gint64 started;               /* real time, seconds */
	gint64 ended;                 /* real time, seconds; 0 while open */
	gint64 since;                 /* monotonic time the state was entered */
	DispWorker *worker;           /* HANDING and TAKEN */
	pid_t worker_pid;             /* the last worker it went to, for the statistics */
	guint tries;                  /* hand-offs a worker refused */
	char *ident_user;             /* IDENT answer, or NULL */
	const char *outcome;          /* how it ended (static text) */
	GCancellable *cancellable;    /* the DNS check while CHECKING */
	DispIdent *ident;             /* the IDENT query while it runs */
	GList live_link;              /* service->live, or service->history once closed */
	GList queue_link;             /* service->queue while QUEUED */
};

typedef struct {
	int fd;
	guint source;                 /* accept watch while accepting, else 0 */
	char address[DISP_IP_MAX];    /* as bound, "::" for every address */
	guint16 port;
	DispService *service;
} DispListener;

struct _DispService {
	Dispatcher *disp;
	const ImtaDispatcherService *cnf;
	char *name;
	guint32 debug;                /* the service's DEBUG with IMTA_DISPATCHER_DEBUG */
	char *image;                  /* the worker program */
	char *log_path;               /* the workers' log file */
	char *channel;                /* --channel of the workers */
	char **zones;                 /* DNS_VERIFY_DOMAIN, NULL-terminated, or NULL */
	GPtrArray *listeners;         /* DispListener * */
	gboolean accepting;
	gint64 accept_pause_until;    /* monotonic; after EMFILE and the like */

	GQueue workers;               /* DispWorker *, running, oldest first */
	GQueue exited;                /* DispWorker *, gone, kept for the statistics */
	guint worker_serial;
	guint fast_failures;          /* workers in a row that died right after start */
	gint64 spawn_not_before;      /* monotonic: the restart backoff */
	guint backoff_source;

	GQueue live;                  /* DispConn *, not closed, in accept order */
	GQueue history;               /* DispConn *, closed, in closing order */
	GQueue queue;                 /* DispConn *, QUEUED, oldest first (queue_link) */
	guint handoffs;               /* accepted and not yet TAKEN */
	guint handing;                /* of those, sent to a worker (HANDING) */
	guint64 total, refused;
	gint64 tempfail_logged;       /* monotonic: rate limit of the DNS failure line */
	guint tempfail_quiet;         /* failures not logged since */

	gboolean pumping, pump_again;
};

struct _Dispatcher {
	const ImtaConfig *config;
	ImtaDaemon *daemon;
	GPtrArray *services;          /* DispService *, enabled ones, file order */
	guint32 debug;                /* every DEBUG mask with IMTA_DISPATCHER_DEBUG */
	guint32 env_debug;            /* IMTA_DISPATCHER_DEBUG alone */
	ImtaResolver *resolver;       /* NULL when no service checks DNS lists */
	DispControl *control;
	GHashTable *conns;            /* guint64 id -> DispConn *, not closed */
	guint64 next_conn_id;
	gint64 started;               /* real time, seconds */
	gboolean stopping;
	gint64 stop_deadline;         /* monotonic: SIGKILL for workers left */
	gboolean killed;
	guint tick_source;
	GQueue lingering;             /* DispLinger *: refusals being closed */
	void (*stopped)(Dispatcher *disp);
};

/* Seconds, and counts, the dispatcher keeps to. */
#define DISP_STOP_KILL_SECONDS 30      /* SIGTERM: workers left then are killed */
#define DISP_QUEUE_TIMEOUT 60          /* a connection no worker takes: 421 */
#define DISP_HANDOFF_TIMEOUT 30        /* CONN without TAKEN: the worker is stuck */
#define DISP_HISTORY_MAX 10000         /* closed connections kept per service */
#define DISP_EXITED_MAX 1000           /* exited workers kept per service */

/* ---- the dispatcher (service.c) ---------------------------------------- */

Dispatcher *disp_new(const ImtaConfig *config, ImtaDaemon *daemon, guint32 env_debug,
		     GError **error);
/* Open every service's listening sockets (as the starting user). */
gboolean disp_bind(Dispatcher *disp, GError **error);
/* Begin: MIN_PROCS workers per service, accepting, the tick. */
gboolean disp_start(Dispatcher *disp, GError **error);
/* Stop listening and drain every worker; disp->stopped is called once none
 * is left. */
void disp_stop(Dispatcher *disp, const char *why);
/* SIGHUP: every worker is signalled to reopen its logs. */
void disp_reopen(Dispatcher *disp);
void disp_free(Dispatcher *disp);

gint64 disp_now(void);

/* ---- a service's connections (service.c) -------------------------------- */

/* Move queued connections to workers, start workers the load asks for,
 * and accept or not as room allows.  Called after every change. */
void disp_service_pump(DispService *svc);

/* Events of a worker about a connection (workers.c calls them). */
void disp_service_conn_taken(DispService *svc, DispWorker *worker, guint64 id);
void disp_service_conn_closed(DispService *svc, DispWorker *worker, guint64 id);
void disp_service_conn_refused(DispService *svc, DispWorker *worker, guint64 id,
			       const char *reason);
/* The worker is gone: connections it had not taken go back to the queue,
 * sessions it served are over. */
void disp_service_worker_gone(DispService *svc, DispWorker *worker, gboolean expected);

/* After the access checks: queue the connection for a worker. */
void disp_service_conn_admit(DispConn *conn);
/* Send `text` (a complete reply line with CRLF) and close.  `refusal`:
 * counts as a refused connection. */
void disp_service_conn_reject(DispConn *conn, const char *text, const char *outcome,
			      gboolean refusal);

/* "checking", "queued", "handing", "taken", "closed". */
const char *disp_conn_state_name(DispConnState state);

#endif /* IMTA_DISPATCHER_SERVICE_H */
