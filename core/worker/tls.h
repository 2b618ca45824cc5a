/*
 * tls.h - the server side of TLS in the worker (GnuTLS), non-blocking.
 *
 * The certificate, key and priority cache are loaded once per worker
 * (WorkerTls) and shared by every session.  A session reads and writes
 * the connection's socket itself; the calls below never block and say
 * which way the socket must become ready when they cannot go on.
 */
#ifndef IMTA_WORKER_TLS_H
#define IMTA_WORKER_TLS_H

#include <glib.h>

#include <imta/config.h>

typedef struct _WorkerTls WorkerTls;
typedef struct _WorkerTlsSession WorkerTlsSession;

typedef enum {
	WORKER_TLS_OK,
	WORKER_TLS_WANT_READ,       /* call again when the socket is readable */
	WORKER_TLS_WANT_WRITE,      /* call again when the socket is writable */
	WORKER_TLS_ERROR,           /* the session is unusable; *error_r says why */
} WorkerTlsStatus;

/* Load TLS_CERTIFICATE_FILE, TLS_KEY_FILE and TLS_PRIORITY of option.dat
 * (paths relative to the configuration directory).  NULL without an error
 * when no certificate is configured; NULL with an error when one is but
 * cannot be used. */
WorkerTls *worker_tls_new(const ImtaConfig *config, GError **error);
void worker_tls_free(WorkerTls *tls);

WorkerTlsSession *worker_tls_session_new(WorkerTls *tls, int fd, GError **error);
void worker_tls_session_free(WorkerTlsSession *session);

/* One step of the handshake: OK when it is complete. */
WorkerTlsStatus worker_tls_handshake(WorkerTlsSession *session, char **error_r);

/* Decrypted bytes into buf: > 0 bytes, 0 at the end of the stream, -1 with
 * *status_r (and *error_r for WORKER_TLS_ERROR). */
gssize worker_tls_recv(WorkerTlsSession *session, void *buf, gsize len,
		       WorkerTlsStatus *status_r, char **error_r);
/* Bytes that were received and decrypted but not yet returned. */
gboolean worker_tls_pending(WorkerTlsSession *session);

/* Encrypt and send up to len bytes: the count taken, or -1 with
 * *status_r.  After WANT_WRITE the next call must offer the same bytes
 * again first (they are already inside the session); the count it
 * returns includes them. */
gssize worker_tls_send(WorkerTlsSession *session, const void *data, gsize len,
		       WorkerTlsStatus *status_r, char **error_r);

/* Send close_notify if the socket takes it now; never waits. */
void worker_tls_bye(WorkerTlsSession *session);

/* "TLS1.3 with cipher AES-256-GCM"; caller frees. */
char *worker_tls_describe(WorkerTlsSession *session);

#endif
