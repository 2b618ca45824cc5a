/*
 * server.h - the job controller proper: its two sockets and the protocol
 * of jc_protocol.h, the message table kept in step with the queue, and
 * the master jobs that drain it.
 *
 * Single-threaded: everything runs on the default main context; only the
 * queue scans (rebuild.c) use threads of their own.
 */
#ifndef JC_SERVER_H
#define JC_SERVER_H

#include <glib.h>
#include <imta/config.h>

G_BEGIN_DECLS

/* Seconds the controller waits for its jobs after a stop before it sends
 * them SIGTERM, and before it gives up on them (SIGKILL). */
#define SERVER_STOP_TERM_AFTER 30
#define SERVER_STOP_KILL_AFTER 60
/* Connections that have not said HELLO within this many seconds are closed. */
#define SERVER_HELLO_TIMEOUT 30
#define SERVER_MAX_CONNECTIONS 1024
/* Output a client does not read beyond this closes the connection. */
#define SERVER_MAX_OUTPUT (1024 * 1024)
/* Least seconds between two rescans triggered by an overflow. */
#define SERVER_RESCAN_INTERVAL 5

typedef struct _JcServer JcServer;

/* Called once every job is gone after server_stop(). */
typedef void (*JcServerStoppedFn)(gpointer user_data);

JcServer *server_new(const ImtaConfig *config, JcServerStoppedFn stopped, gpointer user_data,
		     GError **error);
/* Create the stream socket `socket_path` and the notice socket
 * `notify_path` (replacing stale ones: the caller holds the pid file). */
gboolean server_bind(JcServer *server, const char *socket_path, const char *notify_path,
		     GError **error);
/* Open the queue, start the first scan, accept connections. */
gboolean server_start(JcServer *server, GError **error);
/* Orderly stop: jobs are told EXIT; `stopped` runs when they are gone. */
void server_stop(JcServer *server);
/* SIGHUP: every running master job is signalled to reopen its logs. */
void server_reopen(JcServer *server);
/* Close everything and remove the sockets. */
void server_free(JcServer *server);

G_END_DECLS

#endif
