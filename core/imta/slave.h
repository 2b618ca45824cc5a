/*
 * slave.h - a connection handed to a channel's slave program.
 *
 * The dispatcher accepts a TCP connection and passes it to a worker
 * process of the service (dispatcher.cnf); the worker finds the plugin of
 * the service's channel (PARAMETER=CHANNEL=name) and drives the plugin's
 * slave program through the callbacks of ImtaSlaveOps.  The worker owns the
 * socket, TLS, buffers, timers and threads; the plugin owns the protocol.
 *
 * Event model.  A worker runs a few event-loop threads; each connection
 * lives on one of them for its whole life, and every callback for it runs
 * on that thread, never two at once.  Callbacks must not block: work that
 * waits on disks or servers (enqueue, directory lookups) goes through
 * imta_conn_run(), which runs it on the worker's blocking pool (or on the
 * connection's own thread, when no other connection shares it) and calls
 * back on the connection's thread when it is done.  Different connections'
 * callbacks run concurrently on different threads, so a plugin's shared
 * state needs locks (or none: prefer per-session state).
 *
 * Input.  Bytes the client sent (decrypted, under TLS) wait in the
 * connection's input buffer; ops->input is called whenever more arrived,
 * and the plugin takes what it can use (imta_conn_read_line,
 * imta_conn_peek + imta_conn_consume) and leaves the rest for the next call.
 * The buffer holds at most IMTA_CONN_INPUT_MAX bytes: the worker stops
 * reading from the socket while it is full, so memory per connection is
 * bounded whatever the client sends.  While input is paused
 * (imta_conn_pause_input, or implicitly during imta_conn_run) ops->input is
 * not called; resuming calls it at once if input is waiting.
 *
 * Output.  imta_conn_write() appends to the output buffer; the buffer is
 * sent when the current callback returns, so the replies to pipelined
 * commands leave in one segment.  While more than IMTA_CONN_OUTPUT_HIGH
 * bytes wait to be sent, input is paused (a client that does not read its
 * replies stops being read); ops->input is called again once the output
 * has drained below that mark, if input is waiting, so a plugin that
 * writes much for each command may stop taking commands while
 * imta_conn_output_pending() is above it.  Output that makes no progress
 * for the input timeout (5 minutes when none is set) ends the connection.
 *
 * End.  A connection ends when the plugin calls imta_conn_close() (output
 * is sent first, bounded by the output timeout), when the client goes away
 * (ops->input sees imta_conn_eof(); the plugin should then close), on an
 * I/O or TLS error, or when the worker stops.  ops->close is then called
 * exactly once, and the plugin frees its session there; the ImtaConn is
 * invalid after it returns.  A pending imta_conn_run() keeps the
 * connection alive until its done callback has run.  When ops->input
 * returns after the end of input without closing, pausing input, starting
 * TLS or starting work, the worker closes the connection: nothing would
 * call the plugin for it again.
 *
 * These functions are part of libimta, so a plugin that uses them loads
 * in every program; they may only be called by the worker's callbacks, on
 * the connection's thread.
 */
#ifndef IMTA_SLAVE_H
#define IMTA_SLAVE_H

#include <glib.h>
#include <imta/channel.h>
#include <imta/log.h>

G_BEGIN_DECLS

typedef struct _ImtaConfig ImtaConfig;          /* config.h */
typedef struct _ImtaQueue ImtaQueue;            /* queue.h */
typedef struct _ImtaConn ImtaConn;

/* Bounds of the per-connection buffers. */
#define IMTA_CONN_INPUT_MAX   (64 * 1024)
#define IMTA_CONN_OUTPUT_HIGH (64 * 1024)

/* The plugin's side of a connection (ImtaPlugin.slave). */
typedef struct {
	/* A new connection: allocate the session, write the greeting (or a
	 * refusal and imta_conn_close).  Returns the session pointer handed
	 * to the other callbacks (may be NULL if the plugin needs none). */
	gpointer (*open)(ImtaConn *conn);
	/* More input is buffered, or the client closed its side
	 * (imta_conn_eof). */
	void (*input)(ImtaConn *conn, gpointer session);
	/* No input arrived for the time set with imta_conn_set_timeout.
	 * The plugin typically writes a 421 reply and closes. */
	void (*timeout)(ImtaConn *conn, gpointer session);
	/* The worker is retiring (dispatcher MAX_LIFE_TIME, shutdown): end
	 * the session at the next point where no transaction is lost, e.g.
	 * answer the next command with 421.  May be NULL: the session then
	 * runs to its own end (after SIGTERM, at most 30 seconds). */
	void (*drain)(ImtaConn *conn, gpointer session);
	/* The connection is over: free the session. */
	void (*close)(ImtaConn *conn, gpointer session);
} ImtaSlaveOps;

/* ---- who and where ---------------------------------------------------- */

const ImtaConfig *imta_conn_config(const ImtaConn *conn);
/* The channel of the service (PARAMETER=CHANNEL=...), never NULL. */
const ImtaChannel *imta_conn_channel(const ImtaConn *conn);
/* The dispatcher service name, e.g. "SMTP". */
const char *imta_conn_service(const ImtaConn *conn);
/* The worker's queue handle (shared by its connections; enqueue is
 * thread-safe and blocking: call it from imta_conn_run work). */
ImtaQueue *imta_conn_queue(const ImtaConn *conn);
/* Addresses as text ("192.0.2.1", "2001:db8::1"; an IPv4-mapped IPv6
 * address is given as IPv4) and ports. */
const char *imta_conn_remote_ip(const ImtaConn *conn);
guint16 imta_conn_remote_port(const ImtaConn *conn);
const char *imta_conn_local_ip(const ImtaConn *conn);
guint16 imta_conn_local_port(const ImtaConn *conn);
/* A number unique within the worker's life, for logs. */
guint64 imta_conn_id(const ImtaConn *conn);
/* The worker is retiring: end sessions soon (see ops->drain). */
gboolean imta_conn_draining(const ImtaConn *conn);

/* ---- input ----------------------------------------------------------- */

typedef enum {
	IMTA_CONN_LINE,         /* *line, *len: one line without its LF and
				 * without one CR just before the LF; consumed */
	IMTA_CONN_NEED_MORE,    /* no complete line buffered yet */
	IMTA_CONN_TOO_LONG,     /* a line longer than max: it has been (or is
				 * being) discarded up to and including its LF;
				 * reported once, when its LF arrives */
	IMTA_CONN_EOF,          /* the client closed, no complete line left */
} ImtaConnLineStatus;

/* Take one line of at most `max` bytes (without the line end).  *line
 * points into the input buffer and stays valid until the callback
 * returns or input is consumed again.  The line may contain NUL bytes:
 * use *len. */
ImtaConnLineStatus imta_conn_read_line(ImtaConn *conn, gsize max, const char **line,
				       gsize *len);
/* Everything buffered (may be empty), and taking `n` bytes of it. */
const char *imta_conn_peek(ImtaConn *conn, gsize *len);
void imta_conn_consume(ImtaConn *conn, gsize n);
/* The client closed its side (read returned 0); buffered input may remain. */
gboolean imta_conn_eof(const ImtaConn *conn);
void imta_conn_pause_input(ImtaConn *conn);
void imta_conn_resume_input(ImtaConn *conn);
/* Input timeout in seconds (0: none), restarted by every read. */
void imta_conn_set_timeout(ImtaConn *conn, guint seconds);

/* ---- output ---------------------------------------------------------- */

void imta_conn_write(ImtaConn *conn, const void *data, gsize len);
void imta_conn_printf(ImtaConn *conn, const char *format, ...) G_GNUC_PRINTF(2, 3);
/* Bytes waiting to be sent. */
gsize imta_conn_output_pending(const ImtaConn *conn);
/* Send what is buffered now, as far as the socket takes it without
 * waiting, rather than when the callback returns: for a reply that
 * should not wait for what the callback does next.  The rest goes as
 * usual. */
void imta_conn_flush(ImtaConn *conn);
/* Send what is buffered, then close (the close callback follows). */
void imta_conn_close(ImtaConn *conn);

/* ---- TLS (GnuTLS) ---------------------------------------------------- */

/* Has the worker a certificate and key (option.dat TLS_CERTIFICATE_FILE,
 * TLS_KEY_FILE), so STARTTLS may be offered? */
gboolean imta_conn_tls_available(const ImtaConn *conn);
/* Start the server side of a TLS handshake once the output buffered so
 * far (the "220 ready" reply) has been sent.  Input buffered before this
 * call is discarded: commands a client pipelined after STARTTLS must not
 * be executed inside the TLS session.  ops->input resumes with the first
 * decrypted bytes; a failed handshake closes the connection (logged), as
 * does one that takes longer than the input timeout (60 seconds when none
 * is set).  FALSE when TLS is unavailable or already active. */
gboolean imta_conn_start_tls(ImtaConn *conn);
gboolean imta_conn_tls_active(const ImtaConn *conn);
/* "TLS1.3 with cipher AES-256-GCM" style description for Received: and
 * logs; NULL without TLS.  Owned by the connection. */
const char *imta_conn_tls_description(const ImtaConn *conn);

/* ---- blocking work --------------------------------------------------- */

typedef void (*ImtaConnWorkFn)(gpointer data);
typedef void (*ImtaConnDoneFn)(ImtaConn *conn, gpointer session, gpointer data);

/* Run work(data) on the worker's blocking pool, then done(conn, session,
 * data) on the connection's thread.  When the connection is alone on its
 * thread, work may run there, before imta_conn_run returns; done never
 * runs before imta_conn_run has returned.  Input is paused from the call
 * until done returns (done may resume it earlier by design of the plugin,
 * or call imta_conn_close).  done always runs, even if the client went away
 * meanwhile (imta_conn_eof, or writes are then discarded), so `data` has
 * one owner: the done callback. */
void imta_conn_run(ImtaConn *conn, ImtaConnWorkFn work, ImtaConnDoneFn done, gpointer data);

/* ---- logging --------------------------------------------------------- */

/* Log at `level` (imta/log.h) with the connection's id and client
 * address in front. */
void imta_conn_log(const ImtaConn *conn, ImtaLogLevel level, const char *format, ...)
	G_GNUC_PRINTF(3, 4);

G_END_DECLS

#endif /* IMTA_SLAVE_H */
