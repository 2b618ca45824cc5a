/*
 * directory_private.h - what the directory API and its backends share.
 *
 * A backend is a struct whose first member is ImtaDirBackend, pointing at a
 * table of operations.  The API layer (directory.c) owns everything that
 * must not differ between backends: address and DN normalisation, the
 * catch-all and ambiguity rules, status and quota interpretation (through
 * imta_dir_entry_build), group expansion, authentication and the cache.
 * A backend only finds entries.  Every operation may answer
 * IMTA_DIR_TEMPFAIL with an IMTA_DIRECTORY_ERROR_TEMPORARY error, so a
 * network backend (libldap) fits behind the same table.
 */
#ifndef IMTA_DIRECTORY_PRIVATE_H
#define IMTA_DIRECTORY_PRIVATE_H

#include <glib.h>
#include <imta/directory.h>

#include "ldap_filter.h"

G_BEGIN_DECLS

typedef enum {
	IMTA_DIR_SCOPE_BASE,     /* the base entry itself */
	IMTA_DIR_SCOPE_ONE,      /* its immediate children */
	IMTA_DIR_SCOPE_SUBTREE,  /* the base and everything below it */
} ImtaDirScope;

typedef struct _ImtaDirBackend ImtaDirBackend;

typedef struct {
	const char *name;

	/* Called with the current time (microseconds, from the directory's
	 * clock) before every API call; returns TRUE when the data changed
	 * since the previous call, so the caller flushes its cache.  NULL
	 * when the backend has nothing to refresh. */
	gboolean (*refresh)(ImtaDirBackend *backend, gint64 now);

	/* Every mail user and group whose mail, mailAlternateAddress or
	 * mailEquivalentAddress equals `address` (already normalised by
	 * imta_dir_address_normalize; "@domain" finds catch-alls), limited
	 * to the subtree `base_dn` (NULL = the whole directory).  FOUND with
	 * a non-empty array of new references, NOT_FOUND, or TEMPFAIL. */
	ImtaDirStatus (*lookup_address)(ImtaDirBackend *backend, const char *address,
					const char *base_dn, GPtrArray **entries_r,
					GError **error);

	/* The mail user or group with this DN (any spelling). */
	ImtaDirStatus (*lookup_dn)(ImtaDirBackend *backend, const char *dn,
				   ImtaDirEntry **entry_r, GError **error);

	/* The domain named `domain` (lower case, no trailing dot). */
	ImtaDirStatus (*lookup_domain)(ImtaDirBackend *backend, const char *domain,
				       ImtaDirDomain **domain_r, GError **error);

	/* Mail users and groups matching `filter` within `scope` of
	 * `base_dn` ("" = the root), at most `size_limit` of them (0 = no
	 * limit; a caller that must notice overflow asks for one more than
	 * it accepts).  FOUND with a possibly empty array, or TEMPFAIL. */
	ImtaDirStatus (*search)(ImtaDirBackend *backend, const char *base_dn, ImtaDirScope scope,
				const ImtaLdapFilter *filter, guint size_limit,
				GPtrArray **entries_r, GError **error);

	void (*free)(ImtaDirBackend *backend);

	/* Optional: check `password` for the user entry `dn` at the source
	 * (an LDAP bind as the user).  FOUND = good, NOT_FOUND = refused,
	 * TEMPFAIL = no answer.  NULL: directory.c compares the entry's
	 * userPassword itself. */
	ImtaDirStatus (*authenticate)(ImtaDirBackend *backend, const char *dn,
				      const char *password, GError **error);

	/* Optional: forget what the backend keeps besides the API's cache
	 * (imta_directory_flush). */
	void (*flush)(ImtaDirBackend *backend);
} ImtaDirBackendOps;

struct _ImtaDirBackend {
	const ImtaDirBackendOps *ops;
};

/* ---------------------------------------------------------------------- */
/* The API layer (directory.c). */

/* Wrap a backend (taken) in a directory with `options`. */
ImtaDirectory *imta_directory_new(ImtaDirBackend *backend, const ImtaDirectoryOptions *options);

/* Time source for cache expiry and reload checks, in microseconds;
 * g_get_monotonic_time unless a test installs another. */
typedef gint64 (*ImtaDirClock)(gpointer data);
void imta_directory_set_clock(ImtaDirectory *dir, ImtaDirClock clock, gpointer data);

/* This system's host name as the directory was opened with (lower case,
 * no trailing dot). */
const char *imta_directory_local_host(const ImtaDirectory *dir);
/* Is `host` (any case, a trailing dot allowed) this system: the local
 * host name or one of the aliases the directory was opened with? */
gboolean imta_directory_is_local_host(const ImtaDirectory *dir, const char *host);

/* Lower-case an address and drop a trailing dot from its domain; NULL
 * when it has no '@' or an empty domain. */
char *imta_dir_address_normalize(const char *address);
/* Lower-case a domain name and drop one trailing dot. */
char *imta_dir_domain_normalize(const char *domain);
/* Case-fold a DN and drop the spaces around its separators (",", "+",
 * "=") so that "uid=A, o=Example" and "uid=a,o=example" compare equal.
 * Backslash escapes are kept as written. */
char *imta_dir_dn_normalize(const char *dn);
/* Is the normalised `dn` within `scope` of the normalised `base`? */
gboolean imta_dir_dn_in_scope(const char *dn, const char *base, ImtaDirScope scope);

/* Parse one status value; `group` selects the group vocabulary
 * (inetMailGroupStatus knows "disabled", not "hold" or "overquota").
 * NULL is active; an unknown value is inactive. */
ImtaDirUserStatus imta_dir_status_parse(const char *value, gboolean group);
/* The stricter of two statuses: deleted, disabled, inactive, hold,
 * overquota, active, in that order. */
ImtaDirUserStatus imta_dir_status_stricter(ImtaDirUserStatus a, ImtaDirUserStatus b);

/* The kind of mail entry the object classes make of `attributes`;
 * FALSE when it is neither a mail user nor a mail group. */
gboolean imta_dir_attributes_kind(GHashTable *attributes, ImtaDirKind *kind_r);

/* Build an entry from its attributes (lower-case name -> GStrv; a new
 * reference is taken).  `domain` is the domain whose subtree holds it
 * (may be NULL); a non-active domain status applies to the entry.
 * Fails with IMTA_DIRECTORY_ERROR_DATA on a malformed quota. */
ImtaDirEntry *imta_dir_entry_build(const char *dn, ImtaDirKind kind, GHashTable *attributes,
				   const ImtaDirDomain *domain, GError **error);

/* Build a domain named `name` from a domain entry's attributes. */
ImtaDirDomain *imta_dir_domain_build(const char *name, const char *dn, GHashTable *attributes,
				     GError **error);

/* The names a domain entry stands for (sunPreferredDomain,
 * associatedDomain, or the leading dc= components of its DN), or NULL
 * when `attributes` do not describe a domain. */
GStrv imta_dir_domain_names(const char *dn, GHashTable *attributes);

/* ---------------------------------------------------------------------- */
/* The cache (directory_cache.c).  Thread-safe. */

typedef enum {
	IMTA_DIR_CACHE_ADDRESS = 'a', /* value: ImtaDirEntry */
	IMTA_DIR_CACHE_DN = 'd',      /* value: ImtaDirEntry */
	IMTA_DIR_CACHE_DOMAIN = 'D',  /* value: ImtaDirDomain */
} ImtaDirCacheKind;

typedef struct _ImtaDirCache ImtaDirCache;

/* `size` 0 disables the cache; TTLs are in seconds. */
ImtaDirCache *imta_dir_cache_new(guint size, guint ttl, guint negative_ttl);
/* TRUE on a hit: *status_r is FOUND (with a new reference in *value_r)
 * or NOT_FOUND (*value_r NULL).  `now` in microseconds. */
gboolean imta_dir_cache_get(ImtaDirCache *cache, ImtaDirCacheKind kind, const char *key,
			    gint64 now, ImtaDirStatus *status_r, gpointer *value_r);
/* Remember an answer; TEMPFAIL is never cached.  The cache takes its
 * own reference to `value`. */
void imta_dir_cache_put(ImtaDirCache *cache, ImtaDirCacheKind kind, const char *key,
			gint64 now, ImtaDirStatus status, gpointer value);
void imta_dir_cache_flush(ImtaDirCache *cache);
void imta_dir_cache_stats(ImtaDirCache *cache, ImtaDirectoryStats *stats_r);
void imta_dir_cache_free(ImtaDirCache *cache);

/* ---------------------------------------------------------------------- */
/* The embedded LDIF backend (ldif.c). */

/* Read `path`; errors say "file:line: ...". */
ImtaDirBackend *imta_dir_ldif_backend_new(const char *path, GError **error);

/* ---------------------------------------------------------------------- */
/* The LDAP backend (ldap.c, ldap_config.c, ldap_pool.c). */

/* Check the settings and make the (unconnected) backend; `options` are
 * those the directory is opened with. */
ImtaDirBackend *imta_dir_ldap_backend_new(const ImtaDirectoryLdapOptions *ldap,
					  const ImtaDirectoryOptions *options, GError **error);

G_END_DECLS

#endif
