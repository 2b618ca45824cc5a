/*
 * ldap_pool.c - the LDAP backend's connections: a bounded pool shared by
 * a process's threads, server failover, binds and timeouts.
 *
 * A libldap handle is used by one thread at a time; the pool lends each
 * connection to one caller and takes it back.  Servers are tried in the
 * configured order.  A server that cannot be reached (or says it is busy
 * or unavailable) is avoided for the retry interval; connections to any
 * but the first server are closed when they are that old, so traffic
 * returns to the first server once it is back.  Every network step is
 * bounded: the TCP connect by the connect timeout, every request (the
 * bind included) by the operation timeout, the wait for a free
 * connection by the operation timeout too.
 */
#include "config.h"

#include <string.h>
#include <ldap.h>
#ifdef HAVE_SASL_SASL_H
#include <sasl/sasl.h>
#endif
#include <glib.h>

#include <imta/directory.h>
#include <imta/error.h>
#include <imta/log.h>

#include "ldap_private.h"

struct _LdapPool {
	const LdapSettings *settings;  /* borrowed from the backend */
	gboolean as_service;
	GMutex lock;                   /* guards everything below */
	GCond freed;                   /* a connection came back or a slot opened */
	GQueue idle;                   /* LdapConn *, most recently used first */
	guint open;                    /* connections lent, idle or being made */
	guint n_servers;
	gint64 *down_until;            /* per server: avoid it until then (µs) */
};

gboolean
imta_dir_ldap_rc_broken(int rc)
{
	switch (rc) {
	case LDAP_SERVER_DOWN:
	case LDAP_CONNECT_ERROR:
	case LDAP_TIMEOUT:
	case LDAP_LOCAL_ERROR:
	case LDAP_ENCODING_ERROR:
	case LDAP_DECODING_ERROR:
	case LDAP_NO_MEMORY:
	case LDAP_BUSY:
	case LDAP_UNAVAILABLE:
		return TRUE;
	default:
		return FALSE;
	}
}

/* "URI: text (diagnostic)" */
static char *
pool_describe(const char *uri, LDAP *ld, int rc)
{
	char *diag = NULL;
	char *text;

	if (ld != NULL)
		ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
	/* libldap's text for an error it has no words for says nothing. */
	if (diag != NULL && strcmp(diag, "(unknown error code)") == 0) {
		ldap_memfree(diag);
		diag = NULL;
	}
	text = g_strdup_printf("%s: %s%s%s%s", uri, ldap_err2string(rc),
			       diag != NULL && *diag != '\0' ? " (" : "",
			       diag != NULL && *diag != '\0' ? diag : "",
			       diag != NULL && *diag != '\0' ? ")" : "");
	ldap_memfree(diag);
	return text;
}

char *
imta_dir_ldap_describe(LdapPool *pool, const LdapConn *conn, int rc)
{
	return pool_describe(pool->settings->uris[conn->server], conn->ld, rc);
}

LdapPool *
imta_dir_ldap_pool_new(const LdapSettings *settings, gboolean as_service)
{
	LdapPool *pool = g_new0(LdapPool, 1);

	pool->settings = settings;
	pool->as_service = as_service;
	g_mutex_init(&pool->lock);
	g_cond_init(&pool->freed);
	g_queue_init(&pool->idle);
	pool->n_servers = g_strv_length(settings->uris);
	pool->down_until = g_new0(gint64, pool->n_servers);
	return pool;
}

static void
pool_conn_close(LdapConn *conn)
{
	ldap_unbind_ext_s(conn->ld, NULL, NULL);
	g_free(conn);
}

void
imta_dir_ldap_pool_free(LdapPool *pool)
{
	LdapConn *conn;

	if (pool == NULL)
		return;
	while ((conn = g_queue_pop_head(&pool->idle)) != NULL)
		pool_conn_close(conn);
	g_free(pool->down_until);
	g_cond_clear(&pool->freed);
	g_mutex_clear(&pool->lock);
	g_free(pool);
}

/* ---------------------------------------------------------------------- */
/* Binding. */

#ifdef HAVE_SASL_SASL_H
/* libsasl2 asks for the identity, password and realm of mechanisms such
 * as DIGEST-MD5 or SCRAM through this callback. */
static int
pool_sasl_interact(LDAP *ld, unsigned flags, void *defaults, void *data)
{
	const LdapSettings *s = defaults;

	for (sasl_interact_t *in = data; in->id != SASL_CB_LIST_END; in++) {
		const char *value = NULL;

		switch (in->id) {
		case SASL_CB_AUTHNAME:
			value = s->sasl_authcid;
			break;
		case SASL_CB_USER:
			value = s->sasl_authzid != NULL ? s->sasl_authzid : "";
			break;
		case SASL_CB_PASS:
			value = s->password;
			break;
		case SASL_CB_GETREALM:
			value = s->sasl_realm;
			break;
		default:
			break;
		}
		if (value == NULL)
			value = in->defresult != NULL ? in->defresult : "";
		in->result = value;
		in->len = (unsigned)strlen(value);
	}
	return LDAP_SUCCESS;
}
#endif

/* PLAIN (RFC 4616) is one message: authzid NUL authcid NUL password. */
static int
pool_bind_plain(LDAP *ld, const LdapSettings *s)
{
	const char *authzid = s->sasl_authzid != NULL ? s->sasl_authzid : "";
	gsize zlen = strlen(authzid), clen = strlen(s->sasl_authcid);
	gsize plen = strlen(s->password);
	g_autofree char *buf = g_malloc(zlen + clen + plen + 2);
	struct berval cred = { .bv_val = buf, .bv_len = zlen + clen + plen + 2 };
	int rc;

	memcpy(buf, authzid, zlen);
	buf[zlen] = '\0';
	memcpy(buf + zlen + 1, s->sasl_authcid, clen);
	buf[zlen + 1 + clen] = '\0';
	memcpy(buf + zlen + clen + 2, s->password, plen);
	rc = ldap_sasl_bind_s(ld, NULL, "PLAIN", &cred, NULL, NULL, NULL);
	memset(buf, 0, cred.bv_len);
	return rc;
}

static int
pool_bind(LdapPool *pool, LDAP *ld)
{
	const LdapSettings *s = pool->settings;

	/* Binds as users come later; ldap_connect only opens the socket. */
	if (!pool->as_service)
		return ldap_connect(ld);
	if (s->sasl_mech == NULL) {
		struct berval cred = {
			.bv_val = s->password != NULL ? s->password : "",
			.bv_len = s->password != NULL ? strlen(s->password) : 0,
		};

		return ldap_sasl_bind_s(ld, s->bind_dn != NULL ? s->bind_dn : "", LDAP_SASL_SIMPLE,
					&cred, NULL, NULL, NULL);
	}
	if (strcmp(s->sasl_mech, "EXTERNAL") == 0) {
		struct berval authzid = {
			.bv_val = s->sasl_authzid != NULL ? s->sasl_authzid : "",
			.bv_len = s->sasl_authzid != NULL ? strlen(s->sasl_authzid) : 0,
		};

		return ldap_sasl_bind_s(ld, NULL, "EXTERNAL", &authzid, NULL, NULL, NULL);
	}
	if (strcmp(s->sasl_mech, "PLAIN") == 0)
		return pool_bind_plain(ld, s);
#ifdef HAVE_SASL_SASL_H
	return ldap_sasl_interactive_bind_s(ld, NULL, s->sasl_mech, NULL, NULL, LDAP_SASL_QUIET,
					    pool_sasl_interact, (void *)s);
#else
	return LDAP_AUTH_METHOD_NOT_SUPPORTED;
#endif
}

/* ---------------------------------------------------------------------- */
/* Connecting. */

static int
pool_set_options(LdapPool *pool, LDAP *ld)
{
	const LdapSettings *s = pool->settings;
	struct timeval connect_tv = { .tv_sec = s->connect_timeout };
	struct timeval op_tv = { .tv_sec = s->timeout };
	int version = LDAP_VERSION3;
	int rc;

	if ((rc = ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version)) != LDAP_OPT_SUCCESS ||
	    (rc = ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &connect_tv)) != LDAP_OPT_SUCCESS ||
	    (rc = ldap_set_option(ld, LDAP_OPT_TIMEOUT, &op_tv)) != LDAP_OPT_SUCCESS ||
	    (rc = ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF)) != LDAP_OPT_SUCCESS ||
	    (rc = ldap_set_option(ld, LDAP_OPT_RESTART, LDAP_OPT_ON)) != LDAP_OPT_SUCCESS)
		return LDAP_LOCAL_ERROR;
	return LDAP_SUCCESS;
}

static gboolean
pool_uri_has_scheme(const char *uri, const char *scheme)
{
	return g_ascii_strncasecmp(uri, scheme, strlen(scheme)) == 0;
}

/* A TLS context of the handle's own, with the configured CAs and
 * verification: libldap's global one would follow ldap.conf instead. */
static int
pool_set_tls(LdapPool *pool, LDAP *ld)
{
	const LdapSettings *s = pool->settings;
	int require = s->tls_no_verify ? LDAP_OPT_X_TLS_NEVER : LDAP_OPT_X_TLS_DEMAND;
	int server_ctx = 0;

	if (ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &require) != LDAP_OPT_SUCCESS)
		return LDAP_LOCAL_ERROR;
	if (s->tls_ca_file != NULL &&
	    ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, s->tls_ca_file) != LDAP_OPT_SUCCESS)
		return LDAP_LOCAL_ERROR;
	if (ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &server_ctx) != LDAP_OPT_SUCCESS)
		return LDAP_LOCAL_ERROR;
	return LDAP_SUCCESS;
}

/* What to check when TLS to `uri` failed: libldap does not say whether
 * the connection or the certificate was at fault. */
static char *
pool_tls_failure(LdapPool *pool, LDAP *ld, const char *uri, int rc, gboolean starttls)
{
	g_autofree char *what = pool_describe(uri, ld, rc);
	LDAPURLDesc *desc = NULL;
	g_autofree char *host = NULL;

	if (ldap_url_parse(uri, &desc) == LDAP_URL_SUCCESS) {
		host = g_strdup(desc->lud_host != NULL ? desc->lud_host : "");
		ldap_free_urldesc(desc);
	}
	return g_strdup_printf("%s (%s failed: no TLS connection, or the server's certificate "
			       "is not signed by a CA %s%s or does not name %s)", what,
			       starttls ? "StartTLS" : "TLS",
			       pool->settings->tls_ca_file != NULL ? "in " : "the system trusts",
			       pool->settings->tls_ca_file != NULL ? pool->settings->tls_ca_file : "",
			       host != NULL ? host : "the server");
}

/* TLS where the URI or LDAP_STARTTLS asks for it, established here, before
 * any credential crosses the connection. */
static int
pool_secure(LdapPool *pool, LDAP *ld, const char *uri, char **why_r)
{
	gboolean starttls = pool->settings->starttls && pool_uri_has_scheme(uri, "ldap://");
	int rc;

	if (!starttls && !pool_uri_has_scheme(uri, "ldaps://"))
		return LDAP_SUCCESS;
	rc = pool_set_tls(pool, ld);
	if (rc != LDAP_SUCCESS)
		return rc;
	rc = starttls ? ldap_start_tls_s(ld, NULL, NULL) : ldap_connect(ld);
	if (rc != LDAP_SUCCESS)
		*why_r = pool_tls_failure(pool, ld, uri, rc, starttls);
	return rc;
}

/* Open and bind one connection to server `i`; *why_r on failure. */
static int
pool_open_server(LdapPool *pool, guint i, LDAP **ld_r, char **why_r)
{
	const char *uri = pool->settings->uris[i];
	LDAP *ld = NULL;
	int rc;

	*ld_r = NULL;
	rc = ldap_initialize(&ld, uri);
	if (rc != LDAP_SUCCESS) {
		*why_r = pool_describe(uri, NULL, rc);
		return rc;
	}
	rc = pool_set_options(pool, ld);
	if (rc == LDAP_SUCCESS)
		rc = pool_secure(pool, ld, uri, why_r);
	if (rc == LDAP_SUCCESS)
		rc = pool_bind(pool, ld);
	if (rc != LDAP_SUCCESS) {
		if (*why_r == NULL)
			*why_r = pool_describe(uri, ld, rc);
		ldap_unbind_ext_s(ld, NULL, NULL);
		return rc;
	}
	*ld_r = ld;
	return LDAP_SUCCESS;
}

static void
pool_mark_down(LdapPool *pool, guint server, const char *why)
{
	gint64 now = g_get_monotonic_time();
	gboolean was_up;

	g_mutex_lock(&pool->lock);
	was_up = pool->down_until[server] <= now;
	pool->down_until[server] = now + (gint64)pool->settings->retry_interval * G_USEC_PER_SEC;
	g_mutex_unlock(&pool->lock);
	if (was_up)
		imta_log(IMTA_LOG_WARNING, "LDAP server unavailable, avoided for %u s: %s",
			 pool->settings->retry_interval, why);
}

/* Servers to try: those not avoided first, in the configured order, then
 * the avoided ones (an answer late is better than none). */
static guint *
pool_server_order(LdapPool *pool)
{
	guint *order = g_new(guint, pool->n_servers);
	gint64 now = g_get_monotonic_time();
	guint n = 0;

	g_mutex_lock(&pool->lock);
	for (guint pass = 0; pass < 2; pass++)
		for (guint i = 0; i < pool->n_servers; i++)
			if ((pool->down_until[i] <= now) == (pass == 0))
				order[n++] = i;
	g_mutex_unlock(&pool->lock);
	return order;
}

static ImtaDirStatus
pool_connect(LdapPool *pool, LdapConn **conn_r, GError **error)
{
	g_autofree guint *order = pool_server_order(pool);
	g_autoptr(GString) failures = g_string_new(NULL);

	for (guint k = 0; k < pool->n_servers; k++) {
		guint i = order[k];
		g_autofree char *why = NULL;
		LDAP *ld = NULL;
		int rc = pool_open_server(pool, i, &ld, &why);

		if (rc == LDAP_SUCCESS) {
			LdapConn *conn = g_new0(LdapConn, 1);

			conn->ld = ld;
			conn->server = i;
			conn->since = g_get_monotonic_time();
			g_mutex_lock(&pool->lock);
			pool->down_until[i] = 0;
			g_mutex_unlock(&pool->lock);
			*conn_r = conn;
			return IMTA_DIR_FOUND;
		}
		if (!imta_dir_ldap_rc_broken(rc)) {
			/* The server answered and refused: another copy of the
			 * same directory would refuse too. */
			g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_TEMPORARY,
				    "LDAP bind refused by %s", why);
			return IMTA_DIR_TEMPFAIL;
		}
		pool_mark_down(pool, i, why);
		g_string_append_printf(failures, "%s%s", failures->len > 0 ? "; " : "", why);
	}
	g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_TEMPORARY,
		    "no LDAP server answers: %s", failures->str);
	return IMTA_DIR_TEMPFAIL;
}

/* ---------------------------------------------------------------------- */
/* Lending. */

/* Is an idle connection still the one to use?  Connections to a fallback
 * server go after the retry interval, so the first server gets another
 * chance. */
static gboolean
pool_conn_current(LdapPool *pool, const LdapConn *conn, gint64 now)
{
	return conn->server == 0 ||
	       now - conn->since < (gint64)pool->settings->retry_interval * G_USEC_PER_SEC;
}

ImtaDirStatus
imta_dir_ldap_pool_acquire(LdapPool *pool, LdapConn **conn_r, GError **error)
{
	gint64 deadline = g_get_monotonic_time() +
			  (gint64)pool->settings->timeout * G_USEC_PER_SEC;
	GSList *stale = NULL;
	ImtaDirStatus status;
	LdapConn *conn;

	*conn_r = NULL;
	g_mutex_lock(&pool->lock);
	for (;;) {
		gint64 now = g_get_monotonic_time();

		while ((conn = g_queue_pop_head(&pool->idle)) != NULL) {
			if (pool_conn_current(pool, conn, now))
				break;
			stale = g_slist_prepend(stale, conn);
			pool->open--;
		}
		if (conn != NULL)
			break;
		if (pool->open < pool->settings->pool_size) {
			pool->open++;
			break;
		}
		if (!g_cond_wait_until(&pool->freed, &pool->lock, deadline)) {
			g_mutex_unlock(&pool->lock);
			g_slist_free_full(stale, (GDestroyNotify)pool_conn_close);
			g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_TEMPORARY,
				    "all %u LDAP connections stayed busy for %u s",
				    pool->settings->pool_size, pool->settings->timeout);
			return IMTA_DIR_TEMPFAIL;
		}
	}
	g_mutex_unlock(&pool->lock);
	g_slist_free_full(stale, (GDestroyNotify)pool_conn_close);
	if (conn != NULL) {
		*conn_r = conn;
		return IMTA_DIR_FOUND;
	}
	status = pool_connect(pool, conn_r, error);
	if (status != IMTA_DIR_FOUND) {
		g_mutex_lock(&pool->lock);
		pool->open--;
		g_cond_signal(&pool->freed);
		g_mutex_unlock(&pool->lock);
	}
	return status;
}

void
imta_dir_ldap_pool_release(LdapPool *pool, LdapConn *conn, gboolean broken, gboolean server_down)
{
	if (conn == NULL)
		return;
	if (broken) {
		if (server_down) {
			g_autofree char *why = imta_dir_ldap_describe(pool, conn, LDAP_SERVER_DOWN);

			pool_mark_down(pool, conn->server, why);
		}
		pool_conn_close(conn);
		g_mutex_lock(&pool->lock);
		pool->open--;
		g_cond_signal(&pool->freed);
		g_mutex_unlock(&pool->lock);
		return;
	}
	g_mutex_lock(&pool->lock);
	g_queue_push_head(&pool->idle, conn);
	g_cond_signal(&pool->freed);
	g_mutex_unlock(&pool->lock);
}
