/*
 * tls.c - GnuTLS server sessions over the worker's non-blocking sockets.
 *
 * The session moves bytes through its own push and pull functions on the
 * socket (MSG_NOSIGNAL, EINTR retried), so GnuTLS reports GNUTLS_E_AGAIN
 * instead of blocking; the direction it waits for comes from
 * gnutls_record_get_direction().  A send that returned GNUTLS_E_AGAIN has
 * its record inside the session already: it is finished by calling
 * gnutls_record_send(NULL, 0), as the GnuTLS manual allows, so the
 * caller's buffer may move in between.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <glib.h>
#include <gnutls/gnutls.h>

#include <imta/config.h>
#include <imta/error.h>
#include "tls.h"

/* Non-fatal results (warning alerts) retried before giving up a call. */
#define TLS_MAX_RETRIES 8

struct _WorkerTls {
	gnutls_certificate_credentials_t credentials;
	gnutls_priority_t priority;
	gnutls_datum_t ticket_key;
};

struct _WorkerTlsSession {
	gnutls_session_t session;
	int fd;
	gboolean send_pending;      /* a record waits inside the session */
};

/* ---- credentials ------------------------------------------------------- */

static char *
tls_config_path(const ImtaConfig *config, const char *name)
{
	if (g_path_is_absolute(name))
		return g_strdup(name);
	return g_build_filename(config->dir, name, NULL);
}

/* Read a PEM file; the buffer is wiped by tls_wipe(). */
static gboolean
tls_read_pem(const char *option, const char *path, gnutls_datum_t *out, GError **error)
{
	g_autoptr(GError) local = NULL;
	char *text;
	gsize len;

	if (!g_file_get_contents(path, &text, &len, &local)) {
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_IO, "option.dat %s: %s",
			    option, local->message);
		return FALSE;
	}
	out->data = (unsigned char *)text;
	out->size = (unsigned int)len;
	return TRUE;
}

static void
tls_wipe(gnutls_datum_t *datum)
{
	if (datum->data == NULL)
		return;
	explicit_bzero(datum->data, datum->size);
	g_free(datum->data);
	datum->data = NULL;
}

static gboolean
tls_load_credentials(WorkerTls *tls, const char *cert_path, const char *key_path,
		     GError **error)
{
	gnutls_datum_t cert = { NULL, 0 }, key = { NULL, 0 };
	int rc;

	if (!tls_read_pem("TLS_CERTIFICATE_FILE", cert_path, &cert, error) ||
	    !tls_read_pem(key_path == cert_path ? "TLS_CERTIFICATE_FILE" : "TLS_KEY_FILE",
			  key_path, &key, error)) {
		tls_wipe(&cert);
		return FALSE;
	}
	rc = gnutls_certificate_allocate_credentials(&tls->credentials);
	if (rc >= 0)
		rc = gnutls_certificate_set_x509_key_mem2(tls->credentials, &cert, &key,
							  GNUTLS_X509_FMT_PEM, NULL, 0);
	tls_wipe(&cert);
	tls_wipe(&key);
	if (rc < 0) {
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_SYNTAX,
			    "option.dat TLS_CERTIFICATE_FILE %s with TLS_KEY_FILE %s: %s",
			    cert_path, key_path, gnutls_strerror(rc));
		return FALSE;
	}
	/* Only for TLS 1.2 clients that insist on finite-field DHE. */
	gnutls_certificate_set_known_dh_params(tls->credentials, GNUTLS_SEC_PARAM_MEDIUM);
	return TRUE;
}

static gboolean
tls_load_priority(WorkerTls *tls, const char *text, GError **error)
{
	const char *where = NULL;
	int rc = gnutls_priority_init(&tls->priority, text, &where);

	if (rc < 0) {
		tls->priority = NULL;
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_SYNTAX,
			    "option.dat TLS_PRIORITY \"%s\": %s%s%s%s", text, gnutls_strerror(rc),
			    where != NULL ? " at \"" : "", where != NULL ? where : "",
			    where != NULL ? "\"" : "");
		return FALSE;
	}
	return TRUE;
}

WorkerTls *
worker_tls_new(const ImtaConfig *config, GError **error)
{
	const ImtaOptionDat *options = config->options;
	g_autofree char *cert_path = NULL;
	g_autofree char *key_path = NULL;
	WorkerTls *tls;
	const char *priority;
	int rc;

	if (options == NULL || options->tls_certificate_file == NULL ||
	    options->tls_certificate_file[0] == '\0')
		return NULL;
	cert_path = tls_config_path(config, options->tls_certificate_file);
	if (options->tls_key_file != NULL && options->tls_key_file[0] != '\0')
		key_path = tls_config_path(config, options->tls_key_file);
	tls = g_new0(WorkerTls, 1);
	priority = options->tls_priority != NULL ? options->tls_priority : "NORMAL";
	if (!tls_load_credentials(tls, cert_path, key_path != NULL ? key_path : cert_path,
				  error) ||
	    !tls_load_priority(tls, priority, error)) {
		worker_tls_free(tls);
		return NULL;
	}
	rc = gnutls_session_ticket_key_generate(&tls->ticket_key);
	if (rc < 0) {
		tls->ticket_key.data = NULL;
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_IO,
			    "cannot make a session ticket key: %s", gnutls_strerror(rc));
		worker_tls_free(tls);
		return NULL;
	}
	return tls;
}

void
worker_tls_free(WorkerTls *tls)
{
	if (tls == NULL)
		return;
	if (tls->credentials != NULL)
		gnutls_certificate_free_credentials(tls->credentials);
	if (tls->priority != NULL)
		gnutls_priority_deinit(tls->priority);
	if (tls->ticket_key.data != NULL) {
		explicit_bzero(tls->ticket_key.data, tls->ticket_key.size);
		gnutls_free(tls->ticket_key.data);
	}
	g_free(tls);
}

/* ---- transport --------------------------------------------------------- */

static ssize_t
tls_push(gnutls_transport_ptr_t ptr, const giovec_t *iov, int iovcnt)
{
	WorkerTlsSession *ts = ptr;
	struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
	ssize_t n;

	do
		n = sendmsg(ts->fd, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		gnutls_transport_set_errno(ts->session, errno);
	return n;
}

static ssize_t
tls_pull(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
	WorkerTlsSession *ts = ptr;
	ssize_t n;

	do
		n = recv(ts->fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		gnutls_transport_set_errno(ts->session, errno);
	return n;
}

WorkerTlsSession *
worker_tls_session_new(WorkerTls *tls, int fd, GError **error)
{
	WorkerTlsSession *ts = g_new0(WorkerTlsSession, 1);
	int rc;

	ts->fd = fd;
	rc = gnutls_init(&ts->session, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
	if (rc < 0) {
		ts->session = NULL;
		goto fail;
	}
	if ((rc = gnutls_priority_set(ts->session, tls->priority)) < 0 ||
	    (rc = gnutls_credentials_set(ts->session, GNUTLS_CRD_CERTIFICATE,
					 tls->credentials)) < 0 ||
	    (rc = gnutls_session_ticket_enable_server(ts->session, &tls->ticket_key)) < 0)
		goto fail;
	gnutls_certificate_server_set_request(ts->session, GNUTLS_CERT_IGNORE);
	gnutls_transport_set_ptr(ts->session, ts);
	gnutls_transport_set_vec_push_function(ts->session, tls_push);
	gnutls_transport_set_pull_function(ts->session, tls_pull);
	return ts;

fail:
	g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_IO,
		    "cannot start a TLS session: %s", gnutls_strerror(rc));
	worker_tls_session_free(ts);
	return NULL;
}

void
worker_tls_session_free(WorkerTlsSession *ts)
{
	if (ts == NULL)
		return;
	if (ts->session != NULL)
		gnutls_deinit(ts->session);
	g_free(ts);
}

/* ---- records ----------------------------------------------------------- */

static WorkerTlsStatus
tls_direction(WorkerTlsSession *ts)
{
	return gnutls_record_get_direction(ts->session) == 1 ? WORKER_TLS_WANT_WRITE
							    : WORKER_TLS_WANT_READ;
}

static char *
tls_error_text(WorkerTlsSession *ts, int rc)
{
	if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED || rc == GNUTLS_E_WARNING_ALERT_RECEIVED)
		return g_strdup_printf("%s (%s)", gnutls_strerror(rc),
				       gnutls_alert_get_name(gnutls_alert_get(ts->session)));
	return g_strdup(gnutls_strerror(rc));
}

static gboolean
tls_retry(int rc)
{
	return rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED;
}

WorkerTlsStatus
worker_tls_handshake(WorkerTlsSession *ts, char **error_r)
{
	int rc = GNUTLS_E_AGAIN;

	for (int i = 0; i < TLS_MAX_RETRIES; i++) {
		rc = gnutls_handshake(ts->session);
		if (rc == GNUTLS_E_SUCCESS)
			return WORKER_TLS_OK;
		if (tls_retry(rc))
			return tls_direction(ts);
		if (gnutls_error_is_fatal(rc))
			break;
	}
	*error_r = tls_error_text(ts, rc);
	return WORKER_TLS_ERROR;
}

gssize
worker_tls_recv(WorkerTlsSession *ts, void *buf, gsize len, WorkerTlsStatus *status_r,
		char **error_r)
{
	ssize_t rc = GNUTLS_E_AGAIN;

	for (int i = 0; i < TLS_MAX_RETRIES; i++) {
		rc = gnutls_record_recv(ts->session, buf, len);
		if (rc >= 0)
			return rc;
		if (tls_retry((int)rc)) {
			*status_r = tls_direction(ts);
			return -1;
		}
		/* Clients commonly drop TCP after QUIT without close_notify;
		 * SMTP has its own end of session, so nothing is lost. */
		if (rc == GNUTLS_E_PREMATURE_TERMINATION)
			return 0;
		if (rc == GNUTLS_E_REHANDSHAKE) {
			*status_r = WORKER_TLS_ERROR;
			*error_r = g_strdup("the client asked for renegotiation, which is refused");
			return -1;
		}
		if (gnutls_error_is_fatal((int)rc))
			break;
	}
	*status_r = WORKER_TLS_ERROR;
	*error_r = tls_error_text(ts, (int)rc);
	return -1;
}

gboolean
worker_tls_pending(WorkerTlsSession *ts)
{
	return gnutls_record_check_pending(ts->session) > 0;
}

gssize
worker_tls_send(WorkerTlsSession *ts, const void *data, gsize len, WorkerTlsStatus *status_r,
		char **error_r)
{
	ssize_t rc;

	if (ts->send_pending)
		rc = gnutls_record_send(ts->session, NULL, 0);
	else
		rc = gnutls_record_send(ts->session, data, len);
	if (rc > 0) {
		ts->send_pending = FALSE;
		return rc;
	}
	if (tls_retry((int)rc)) {
		ts->send_pending = TRUE;
		*status_r = tls_direction(ts);
		return -1;
	}
	*status_r = WORKER_TLS_ERROR;
	*error_r = tls_error_text(ts, (int)rc);
	return -1;
}

void
worker_tls_bye(WorkerTlsSession *ts)
{
	/* One try: the close follows whatever happens. */
	(void)gnutls_bye(ts->session, GNUTLS_SHUT_WR);
}

char *
worker_tls_describe(WorkerTlsSession *ts)
{
	const char *version = gnutls_protocol_get_name(gnutls_protocol_get_version(ts->session));
	const char *cipher = gnutls_cipher_get_name(gnutls_cipher_get(ts->session));

	return g_strdup_printf("%s with cipher %s", version != NULL ? version : "TLS",
			       cipher != NULL ? cipher : "unknown");
}
