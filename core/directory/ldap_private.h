/*
 * ldap_private.h - what the parts of the LDAP backend share.
 *
 * ldap_config.c turns the public options into checked settings,
 * ldap_pool.c keeps the connections (failover, binds, timeouts) and
 * ldap.c answers the backend operations with searches.
 */
#ifndef IMTA_DIR_LDAP_PRIVATE_H
#define IMTA_DIR_LDAP_PRIVATE_H

#include <ldap.h>
#include <glib.h>
#include <imta/directory.h>

G_BEGIN_DECLS

/* At most this many servers in LDAP_URIS. */
#define IMTA_DIR_LDAP_MAX_URIS 16

typedef struct {
	GStrv uris;              /* normalised, in order of preference */
	char *bind_dn;           /* NULL = anonymous (simple) */
	char *password;          /* simple or SASL password; NULL = none */
	char *sasl_mech;         /* upper case; NULL = simple bind */
	char *sasl_authcid;
	char *sasl_authzid;
	char *sasl_realm;
	char *base_dn;           /* what "" and a NULL base mean */
	char *domain_root;       /* domain entries are searched below it */
	guint timeout;           /* seconds per operation */
	guint connect_timeout;   /* seconds per TCP connect */
	guint pool_size;
	guint retry_interval;    /* seconds */
	ImtaDirLdapAuthMethod auth_method;
	char *tls_ca_file;       /* NULL = libldap's default */
	gboolean starttls;       /* on ldap:// URIs */
	gboolean tls_no_verify;
} LdapSettings;

/* Check and copy `options`; errors are IMTA_CONFIG_ERROR_* and name the
 * option.dat option at fault. */
LdapSettings *imta_dir_ldap_settings_new(const ImtaDirectoryLdapOptions *options,
					 GError **error);
void imta_dir_ldap_settings_free(LdapSettings *settings);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LdapSettings, imta_dir_ldap_settings_free)

/* Is the mechanism one this build can bind with? */
gboolean imta_dir_ldap_sasl_supported(const char *mech);

/* ---------------------------------------------------------------------- */
/* The connection pool (ldap_pool.c).  Thread-safe. */

typedef struct _LdapPool LdapPool;

typedef struct {
	LDAP *ld;
	guint server;            /* index into settings->uris */
	gint64 since;            /* monotonic time of the connect */
} LdapConn;

/* A pool of at most settings->pool_size connections.  With `as_service`
 * every connection binds with the configured identity; without, it
 * binds anonymously (a pool for binds as users). */
LdapPool *imta_dir_ldap_pool_new(const LdapSettings *settings, gboolean as_service);
void imta_dir_ldap_pool_free(LdapPool *pool);

/* A connection for one thread's use, waiting (at most the operation
 * timeout) while all are busy.  TEMPFAIL with
 * IMTA_DIRECTORY_ERROR_TEMPORARY when no server answers. */
ImtaDirStatus imta_dir_ldap_pool_acquire(LdapPool *pool, LdapConn **conn_r, GError **error);

/* Give the connection back; with `broken` it is closed, and its server
 * avoided for the retry interval when `server_down`. */
void imta_dir_ldap_pool_release(LdapPool *pool, LdapConn *conn, gboolean broken,
				gboolean server_down);

/* Does `rc` mean the connection (not the request) failed? */
gboolean imta_dir_ldap_rc_broken(int rc);

/* "server URI: message" for a result code, for errors and the log. */
char *imta_dir_ldap_describe(LdapPool *pool, const LdapConn *conn, int rc);

G_END_DECLS

#endif
