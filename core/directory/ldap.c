/*
 * ldap.c - the LDAP directory backend: users, groups and hosted domains
 * read from an LDAP server with libldap.
 *
 * Each backend operation is one or two searches on a pooled connection
 * (ldap_pool.c).  Entries are returned with all their user attributes, as
 * the embedded backend returns them, and directory.c interprets them.  A
 * connection that breaks during a request is replaced and the request
 * made once more (pooled connections go stale when a server restarts or
 * drops idle clients); every other failure to get an answer is TEMPFAIL
 * with IMTA_DIRECTORY_ERROR_TEMPORARY, never NOT_FOUND.
 *
 * Hosted domains are domain entries below the domain root: found by
 * sunPreferredDomain or associatedDomain, or as the DC-tree node
 * dc=<label>,...,<root>.  An entry's domain is the hosted domain read
 * most recently whose base DN is the entry's closest ancestor; the API
 * reads an address's domain before the address, so a lookup by address
 * always knows its own.
 */
#include "config.h"

#include <string.h>
#include <ldap.h>
#include <glib.h>

#include <imta/directory.h>
#include <imta/error.h>

#include "directory_private.h"
#include "ldap_filter.h"
#include "ldap_private.h"

/* Hosted domains remembered for giving entries their domain; the table
 * starts over when it grows beyond this. */
#define LDAP_MAX_DOMAINS 100000

typedef struct {
	ImtaDirBackend base;
	LdapSettings *settings;
	LdapPool *pool;          /* the MTA's own identity */
	LdapPool *auth_pool;     /* binds as users; NULL with LDAP_AUTH_METHOD=compare */
	GMutex domains_lock;
	GHashTable *domains;     /* normalised base DN -> ImtaDirDomain */
} LdapBackend;

typedef struct {
	char *dn;
	GHashTable *attributes;  /* lower-case name -> GStrv */
} LdapRecord;

static void
ldap_record_free(LdapRecord *record)
{
	g_free(record->dn);
	g_hash_table_unref(record->attributes);
	g_free(record);
}

/* ---------------------------------------------------------------------- */
/* Searching. */

static void
ldap_add_value(GHashTable *values, const char *attribute, const struct berval *value)
{
	g_autofree char *name = NULL;
	const char *semicolon = strchr(attribute, ';');
	GPtrArray *list;

	/* A NUL byte makes a value no mail attribute can use (photos,
	 * certificates); the embedded backend drops those too. */
	if (value->bv_len > 0 && memchr(value->bv_val, '\0', value->bv_len) != NULL)
		return;
	name = g_ascii_strdown(attribute, semicolon != NULL ? semicolon - attribute : -1);
	list = g_hash_table_lookup(values, name);
	if (list == NULL) {
		list = g_ptr_array_new_with_free_func(g_free);
		g_hash_table_insert(values, g_steal_pointer(&name), list);
	}
	g_ptr_array_add(list, g_strndup(value->bv_val, value->bv_len));
}

static GHashTable *
ldap_values_to_attributes(GHashTable *values)
{
	GHashTable *attributes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
						       (GDestroyNotify)g_strfreev);
	GHashTableIter iter;
	gpointer key, value;

	g_hash_table_iter_init(&iter, values);
	while (g_hash_table_iter_next(&iter, &key, &value)) {
		GPtrArray *list = value;

		g_ptr_array_add(list, NULL);
		g_hash_table_insert(attributes, g_strdup(key),
				    g_ptr_array_steal(list, NULL));
	}
	return attributes;
}

static LdapRecord *
ldap_record_read(LDAP *ld, LDAPMessage *msg)
{
	g_autoptr(GHashTable) values = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
							     (GDestroyNotify)g_ptr_array_unref);
	char *dn = ldap_get_dn(ld, msg);
	BerElement *ber = NULL;
	LdapRecord *record;

	if (dn == NULL)
		return NULL;
	for (char *a = ldap_first_attribute(ld, msg, &ber); a != NULL;
	     a = ldap_next_attribute(ld, msg, ber)) {
		struct berval **vals = ldap_get_values_len(ld, msg, a);

		for (guint i = 0; vals != NULL && vals[i] != NULL; i++)
			ldap_add_value(values, a, vals[i]);
		ldap_value_free_len(vals);
		ldap_memfree(a);
	}
	if (ber != NULL)
		ber_free(ber, 0);
	record = g_new0(LdapRecord, 1);
	record->dn = g_strdup(dn);
	record->attributes = ldap_values_to_attributes(values);
	ldap_memfree(dn);
	return record;
}

static GPtrArray *
ldap_records_read(LDAP *ld, LDAPMessage *res)
{
	GPtrArray *records = g_ptr_array_new_with_free_func((GDestroyNotify)ldap_record_free);

	for (LDAPMessage *msg = ldap_first_entry(ld, res); msg != NULL;
	     msg = ldap_next_entry(ld, msg)) {
		LdapRecord *record = ldap_record_read(ld, msg);

		if (record != NULL)
			g_ptr_array_add(records, record);
	}
	return records;
}

/*
 * One search, all user attributes.  FOUND with the records (possibly
 * none; a size limit hit keeps those that came), NOT_FOUND when the base
 * does not exist or is not a DN, TEMPFAIL otherwise.
 */
static ImtaDirStatus
ldap_run_search(LdapBackend *b, const char *base, int scope, const char *filter,
		guint size_limit, GPtrArray **records_r, GError **error)
{
	*records_r = NULL;
	for (guint attempt = 0; attempt < 2; attempt++) {
		struct timeval tv = { .tv_sec = b->settings->timeout };
		LDAPMessage *res = NULL;
		LdapConn *conn = NULL;
		g_autofree char *why = NULL;
		ImtaDirStatus status;
		int rc;

		status = imta_dir_ldap_pool_acquire(b->pool, &conn, error);
		if (status != IMTA_DIR_FOUND)
			return status;
		rc = ldap_search_ext_s(conn->ld, base, scope, filter, NULL, 0, NULL, NULL, &tv,
				       (int)MIN(size_limit, (guint)G_MAXINT), &res);
		if (rc == LDAP_SUCCESS || rc == LDAP_SIZELIMIT_EXCEEDED) {
			*records_r = ldap_records_read(conn->ld, res);
			ldap_msgfree(res);
			imta_dir_ldap_pool_release(b->pool, conn, FALSE, FALSE);
			return IMTA_DIR_FOUND;
		}
		ldap_msgfree(res);
		if (rc == LDAP_NO_SUCH_OBJECT || rc == LDAP_INVALID_DN_SYNTAX) {
			imta_dir_ldap_pool_release(b->pool, conn, FALSE, FALSE);
			return IMTA_DIR_NOT_FOUND;
		}
		why = imta_dir_ldap_describe(b->pool, conn, rc);
		if (!imta_dir_ldap_rc_broken(rc)) {
			imta_dir_ldap_pool_release(b->pool, conn, FALSE, FALSE);
			g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_TEMPORARY,
				    "LDAP search failed: %s", why);
			return IMTA_DIR_TEMPFAIL;
		}
		/* A dropped connection may only have gone stale: try a fresh
		 * one (which fails over if the server is really gone).  A
		 * server that lets requests time out is avoided instead. */
		imta_dir_ldap_pool_release(b->pool, conn, TRUE, rc != LDAP_SERVER_DOWN);
		if (rc != LDAP_SERVER_DOWN || attempt == 1) {
			g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_TEMPORARY,
				    "LDAP search failed: %s", why);
			return IMTA_DIR_TEMPFAIL;
		}
	}
	g_assert_not_reached();
}

/* ---------------------------------------------------------------------- */
/* Domains. */

/* The hosted domain whose base DN is the closest ancestor of `dn` (or
 * `dn` itself), among those read so far; a new reference or NULL. */
static ImtaDirDomain *
ldap_domain_of(LdapBackend *b, const char *dn)
{
	g_autofree char *norm = imta_dir_dn_normalize(dn);
	ImtaDirDomain *found = NULL;
	const char *p = norm;

	g_mutex_lock(&b->domains_lock);
	while (p != NULL && *p != '\0') {
		const char *comma;

		found = g_hash_table_lookup(b->domains, p);
		if (found != NULL)
			break;
		/* The next ancestor starts after the next unescaped ','. */
		comma = p;
		while (*comma != '\0' && *comma != ',')
			comma += comma[0] == '\\' && comma[1] != '\0' ? 2 : 1;
		p = *comma == ',' ? comma + 1 : NULL;
	}
	if (found != NULL)
		imta_dir_domain_ref(found);
	g_mutex_unlock(&b->domains_lock);
	return found;
}

static void
ldap_domain_remember(LdapBackend *b, ImtaDirDomain *domain)
{
	char *key = imta_dir_dn_normalize(domain->base_dn);

	g_mutex_lock(&b->domains_lock);
	if (g_hash_table_size(b->domains) >= LDAP_MAX_DOMAINS)
		g_hash_table_remove_all(b->domains);
	g_hash_table_replace(b->domains, key, imta_dir_domain_ref(domain));
	g_mutex_unlock(&b->domains_lock);
}

static gboolean
ldap_record_names_domain(const LdapRecord *record, const char *domain)
{
	g_auto(GStrv) names = imta_dir_domain_names(record->dn, record->attributes);

	return names != NULL && g_strv_contains((const char *const *)names, domain);
}

/* "dc=example,dc=org,<root>", or NULL when a label would need escaping. */
static char *
ldap_dc_tree_dn(const char *domain, const char *root)
{
	g_auto(GStrv) labels = g_strsplit(domain, ".", -1);
	g_autoptr(GString) dn = g_string_new(NULL);

	for (guint i = 0; labels[i] != NULL; i++) {
		if (*labels[i] == '\0')
			return NULL;
		for (const char *c = labels[i]; *c != '\0'; c++)
			if (!g_ascii_isalnum(*c) && *c != '-' && *c != '_')
				return NULL;
		g_string_append_printf(dn, "dc=%s,", labels[i]);
	}
	g_string_append(dn, root);
	return g_string_free(g_steal_pointer(&dn), FALSE);
}

/* The one record among `records` that stands for `domain`: the entries
 * that name it, as the embedded backend names domains; more than one is
 * a directory to fix. */
static ImtaDirStatus
ldap_domain_choose(GPtrArray *records, const char *domain, LdapRecord **record_r,
		   GError **error)
{
	LdapRecord *chosen = NULL;
	guint n = 0;

	*record_r = NULL;
	for (guint i = 0; i < records->len; i++) {
		LdapRecord *record = g_ptr_array_index(records, i);

		if (!ldap_record_names_domain(record, domain))
			continue;
		if (chosen == NULL)
			chosen = record;
		n++;
	}
	if (n > 1) {
		g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_AMBIGUOUS,
			    "ambiguous directory: %u domain entries claim \"%s\" (one is \"%s\")",
			    n, domain, chosen->dn);
		return IMTA_DIR_TEMPFAIL;
	}
	*record_r = chosen;
	return chosen != NULL ? IMTA_DIR_FOUND : IMTA_DIR_NOT_FOUND;
}

static ImtaDirStatus
ldap_find_domain_record(LdapBackend *b, const char *domain, GPtrArray **records_r,
			LdapRecord **record_r, GError **error)
{
	g_autofree char *esc = imta_ldap_filter_escape(domain);
	g_autofree char *filter = g_strdup_printf("(|(sunPreferredDomain=%s)(associatedDomain=%s))",
						  esc, esc);
	g_autofree char *dc_dn = NULL;
	ImtaDirStatus status;

	status = ldap_run_search(b, b->settings->domain_root, LDAP_SCOPE_SUBTREE, filter, 0,
				 records_r, error);
	if (status == IMTA_DIR_FOUND) {
		status = ldap_domain_choose(*records_r, domain, record_r, error);
		if (status != IMTA_DIR_NOT_FOUND)
			return status;
	}
	if (status == IMTA_DIR_TEMPFAIL)
		return status;
	/* Schema 1: the node of the DC tree, found by its name. */
	g_clear_pointer(records_r, g_ptr_array_unref);
	dc_dn = ldap_dc_tree_dn(domain, b->settings->domain_root);
	if (dc_dn == NULL)
		return IMTA_DIR_NOT_FOUND;
	status = ldap_run_search(b, dc_dn, LDAP_SCOPE_BASE, "(objectClass=*)", 0, records_r, error);
	if (status != IMTA_DIR_FOUND)
		return status;
	return ldap_domain_choose(*records_r, domain, record_r, error);
}

static ImtaDirStatus
ldap_lookup_domain(ImtaDirBackend *backend, const char *domain, ImtaDirDomain **domain_r,
		   GError **error)
{
	LdapBackend *b = (LdapBackend *)backend;
	g_autoptr(GPtrArray) records = NULL;
	g_autoptr(GError) local = NULL;
	LdapRecord *record = NULL;
	ImtaDirDomain *built;
	ImtaDirStatus status;

	*domain_r = NULL;
	status = ldap_find_domain_record(b, domain, &records, &record, error);
	if (status != IMTA_DIR_FOUND)
		return status;
	built = imta_dir_domain_build(domain, record->dn, record->attributes, &local);
	if (built == NULL) {
		/* Bad data is fixed by an administrator; mail waits. */
		g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA,
			    "domain entry \"%s\": %s", record->dn, local->message);
		return IMTA_DIR_TEMPFAIL;
	}
	ldap_domain_remember(b, built);
	*domain_r = built;
	return IMTA_DIR_FOUND;
}

/* ---------------------------------------------------------------------- */
/* Users and groups. */

/* The mail users and groups among `records`, as entries. */
static ImtaDirStatus
ldap_records_to_entries(LdapBackend *b, GPtrArray *records, GPtrArray **entries_r,
			GError **error)
{
	g_autoptr(GPtrArray) entries =
		g_ptr_array_new_with_free_func((GDestroyNotify)imta_dir_entry_unref);

	*entries_r = NULL;
	for (guint i = 0; i < records->len; i++) {
		LdapRecord *record = g_ptr_array_index(records, i);
		g_autoptr(ImtaDirDomain) domain = NULL;
		g_autoptr(GError) local = NULL;
		ImtaDirEntry *entry;
		ImtaDirKind kind;

		if (!imta_dir_attributes_kind(record->attributes, &kind))
			continue;
		domain = ldap_domain_of(b, record->dn);
		entry = imta_dir_entry_build(record->dn, kind, record->attributes, domain, &local);
		if (entry == NULL) {
			g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA,
				    "entry \"%s\": %s", record->dn, local->message);
			return IMTA_DIR_TEMPFAIL;
		}
		g_ptr_array_add(entries, entry);
	}
	*entries_r = g_steal_pointer(&entries);
	return IMTA_DIR_FOUND;
}

static ImtaDirStatus
ldap_lookup_address(ImtaDirBackend *backend, const char *address, const char *base_dn,
		    GPtrArray **entries_r, GError **error)
{
	LdapBackend *b = (LdapBackend *)backend;
	g_autofree char *esc = imta_ldap_filter_escape(address);
	g_autofree char *filter = g_strdup_printf("(&(objectClass=inetLocalMailRecipient)"
						  "(|(mail=%s)(mailAlternateAddress=%s)"
						  "(mailEquivalentAddress=%s)))", esc, esc, esc);
	g_autoptr(GPtrArray) records = NULL;
	ImtaDirStatus status;

	*entries_r = NULL;
	status = ldap_run_search(b, base_dn != NULL ? base_dn : b->settings->base_dn,
				 LDAP_SCOPE_SUBTREE, filter, 0, &records, error);
	if (status != IMTA_DIR_FOUND)
		return status;
	status = ldap_records_to_entries(b, records, entries_r, error);
	if (status != IMTA_DIR_FOUND)
		return status;
	if ((*entries_r)->len == 0) {
		g_clear_pointer(entries_r, g_ptr_array_unref);
		return IMTA_DIR_NOT_FOUND;
	}
	return IMTA_DIR_FOUND;
}

static ImtaDirStatus
ldap_lookup_dn(ImtaDirBackend *backend, const char *dn, ImtaDirEntry **entry_r,
	       GError **error)
{
	LdapBackend *b = (LdapBackend *)backend;
	g_autoptr(GPtrArray) records = NULL;
	g_autoptr(GPtrArray) entries = NULL;
	ImtaDirStatus status;

	*entry_r = NULL;
	if (*dn == '\0')
		return IMTA_DIR_NOT_FOUND;
	status = ldap_run_search(b, dn, LDAP_SCOPE_BASE, "(objectClass=*)", 0, &records, error);
	if (status != IMTA_DIR_FOUND)
		return status;
	status = ldap_records_to_entries(b, records, &entries, error);
	if (status != IMTA_DIR_FOUND)
		return status;
	if (entries->len == 0)
		return IMTA_DIR_NOT_FOUND;
	*entry_r = imta_dir_entry_ref(g_ptr_array_index(entries, 0));
	return IMTA_DIR_FOUND;
}

static ImtaDirStatus
ldap_search(ImtaDirBackend *backend, const char *base_dn, ImtaDirScope scope,
	    const ImtaLdapFilter *filter, guint size_limit, GPtrArray **entries_r,
	    GError **error)
{
	LdapBackend *b = (LdapBackend *)backend;
	static const int scopes[] = {
		[IMTA_DIR_SCOPE_BASE] = LDAP_SCOPE_BASE,
		[IMTA_DIR_SCOPE_ONE] = LDAP_SCOPE_ONELEVEL,
		[IMTA_DIR_SCOPE_SUBTREE] = LDAP_SCOPE_SUBTREE,
	};
	g_autofree char *text = imta_ldap_filter_to_string(filter);
	g_autofree char *full = g_strdup_printf("(&(objectClass=inetLocalMailRecipient)%s)", text);
	g_autoptr(GPtrArray) records = NULL;
	ImtaDirStatus status;

	*entries_r = NULL;
	/* The root of the embedded directory holds everything; here that
	 * is the configured base.  Nothing sits at or just below "". */
	if (*base_dn == '\0' && scope != IMTA_DIR_SCOPE_SUBTREE) {
		*entries_r = g_ptr_array_new_with_free_func((GDestroyNotify)imta_dir_entry_unref);
		return IMTA_DIR_FOUND;
	}
	status = ldap_run_search(b, *base_dn != '\0' ? base_dn : b->settings->base_dn,
				 scopes[scope], full, size_limit, &records, error);
	if (status == IMTA_DIR_NOT_FOUND) {
		*entries_r = g_ptr_array_new_with_free_func((GDestroyNotify)imta_dir_entry_unref);
		return IMTA_DIR_FOUND;
	}
	if (status != IMTA_DIR_FOUND)
		return status;
	return ldap_records_to_entries(b, records, entries_r, error);
}

/* ---------------------------------------------------------------------- */
/* Binding as a user. */

static ImtaDirStatus
ldap_authenticate(ImtaDirBackend *backend, const char *dn, const char *password,
		  GError **error)
{
	LdapBackend *b = (LdapBackend *)backend;
	struct berval cred = { .bv_val = (char *)password, .bv_len = strlen(password) };

	for (guint attempt = 0; attempt < 2; attempt++) {
		LdapConn *conn = NULL;
		g_autofree char *why = NULL;
		ImtaDirStatus status;
		int rc;

		status = imta_dir_ldap_pool_acquire(b->auth_pool, &conn, error);
		if (status != IMTA_DIR_FOUND)
			return status;
		rc = ldap_sasl_bind_s(conn->ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
		switch (rc) {
		case LDAP_SUCCESS:
			imta_dir_ldap_pool_release(b->auth_pool, conn, FALSE, FALSE);
			return IMTA_DIR_FOUND;
		case LDAP_INVALID_CREDENTIALS:
		case LDAP_INAPPROPRIATE_AUTH:
		case LDAP_INVALID_DN_SYNTAX:
		case LDAP_UNWILLING_TO_PERFORM:
			/* Wrong password, no password stored, or refused. */
			imta_dir_ldap_pool_release(b->auth_pool, conn, FALSE, FALSE);
			return IMTA_DIR_NOT_FOUND;
		default:
			break;
		}
		why = imta_dir_ldap_describe(b->auth_pool, conn, rc);
		if (!imta_dir_ldap_rc_broken(rc)) {
			imta_dir_ldap_pool_release(b->auth_pool, conn, FALSE, FALSE);
			g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_TEMPORARY,
				    "LDAP bind as \"%s\" failed: %s", dn, why);
			return IMTA_DIR_TEMPFAIL;
		}
		imta_dir_ldap_pool_release(b->auth_pool, conn, TRUE, rc != LDAP_SERVER_DOWN);
		if (rc != LDAP_SERVER_DOWN || attempt == 1) {
			g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_TEMPORARY,
				    "LDAP bind as \"%s\" failed: %s", dn, why);
			return IMTA_DIR_TEMPFAIL;
		}
	}
	g_assert_not_reached();
}

/* ---------------------------------------------------------------------- */
/* The backend. */

static void
ldap_flush(ImtaDirBackend *backend)
{
	LdapBackend *b = (LdapBackend *)backend;

	g_mutex_lock(&b->domains_lock);
	g_hash_table_remove_all(b->domains);
	g_mutex_unlock(&b->domains_lock);
}

static void
ldap_backend_free(ImtaDirBackend *backend)
{
	LdapBackend *b = (LdapBackend *)backend;

	imta_dir_ldap_pool_free(b->pool);
	imta_dir_ldap_pool_free(b->auth_pool);
	g_hash_table_unref(b->domains);
	g_mutex_clear(&b->domains_lock);
	imta_dir_ldap_settings_free(b->settings);
	g_free(b);
}

static const ImtaDirBackendOps ldap_ops = {
	.name = "ldap",
	.lookup_address = ldap_lookup_address,
	.lookup_dn = ldap_lookup_dn,
	.lookup_domain = ldap_lookup_domain,
	.search = ldap_search,
	.free = ldap_backend_free,
	.flush = ldap_flush,
};

/* The same, with passwords checked by binding as the user. */
static const ImtaDirBackendOps ldap_bind_ops = {
	.name = "ldap",
	.lookup_address = ldap_lookup_address,
	.lookup_dn = ldap_lookup_dn,
	.lookup_domain = ldap_lookup_domain,
	.search = ldap_search,
	.free = ldap_backend_free,
	.authenticate = ldap_authenticate,
	.flush = ldap_flush,
};

ImtaDirBackend *
imta_dir_ldap_backend_new(const ImtaDirectoryLdapOptions *ldap,
			  const ImtaDirectoryOptions *options, GError **error)
{
	LdapSettings *settings = imta_dir_ldap_settings_new(ldap, error);
	LdapBackend *b;

	if (settings == NULL)
		return NULL;
	b = g_new0(LdapBackend, 1);
	b->settings = settings;
	b->pool = imta_dir_ldap_pool_new(settings, TRUE);
	if (settings->auth_method == IMTA_DIR_LDAP_AUTH_BIND) {
		b->auth_pool = imta_dir_ldap_pool_new(settings, FALSE);
		b->base.ops = &ldap_bind_ops;
	} else {
		b->base.ops = &ldap_ops;
	}
	g_mutex_init(&b->domains_lock);
	b->domains = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					   (GDestroyNotify)imta_dir_domain_unref);
	return &b->base;
}
