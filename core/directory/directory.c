/*
 * directory.c - the directory API: the rules every backend shares.
 *
 * Backends only find entries (directory_private.h).  Here live the parts
 * that must behave the same whatever holds the data: normalising
 * addresses and DNs, interpreting the messaging schema (object classes,
 * statuses, quotas, domains), the catch-all and ambiguity rules of an
 * address lookup, group expansion, password checks and the cache in front
 * of it all.
 */
#include "config.h"

#include <string.h>
#ifdef HAVE_CRYPT_R
#include <crypt.h>
#endif
#include <ldap.h>
#include <glib.h>

#include <imta/directory.h>
#include <imta/error.h>
#include <imta/number.h>

#include "directory_private.h"
#include "ldap_filter.h"

/* Defaults when imta_directory_open_ldif() gets no options (those of
 * option.dat DIRECTORY_CACHE_SIZE, _TTL and DIRECTORY_NEGATIVE_TTL). */
#define DIR_DEFAULT_CACHE_SIZE   10000
#define DIR_DEFAULT_CACHE_TTL    600
#define DIR_DEFAULT_NEGATIVE_TTL 60

/* mailQuota may not exceed 4096G. */
#define DIR_MAX_QUOTA_BYTES ((gint64)4096 * 1024 * 1024 * 1024)

/* Login names longer than this find nobody (RFC 5321 allows 64 + 255). */
#define DIR_MAX_LOGIN 1024

/* Groups nested deeper than this are refused (the stack stays bounded
 * even when the visited set would not catch a long chain). */
#define DIR_GROUP_MAX_DEPTH 32

struct _ImtaDirectory {
	ImtaDirBackend *backend;
	ImtaDirCache *cache;
	char *local_host;       /* lower case, no trailing dot */
	GStrv local_aliases;    /* the same, never NULL */
	ImtaDirClock clock;
	gpointer clock_data;
	guint uplevel;          /* IMTA_DIR_UPLEVEL_* */
};

/* ---------------------------------------------------------------------- */
/* Entries and domains. */

ImtaDirEntry *
imta_dir_entry_ref(ImtaDirEntry *entry)
{
	g_atomic_int_inc(&entry->refcount);
	return entry;
}

void
imta_dir_entry_unref(ImtaDirEntry *entry)
{
	if (entry == NULL || !g_atomic_int_dec_and_test(&entry->refcount))
		return;
	g_free(entry->dn);
	g_free(entry->uid);
	g_free(entry->cn);
	g_free(entry->mail);
	g_strfreev(entry->alternate_addresses);
	g_strfreev(entry->equivalent_addresses);
	g_free(entry->mail_host);
	g_strfreev(entry->delivery_options);
	g_strfreev(entry->forwarding_addresses);
	g_free(entry->message_store);
	g_free(entry->password);
	g_free(entry->domain);
	g_strfreev(entry->rfc822_members);
	g_strfreev(entry->member_dns);
	g_strfreev(entry->member_urls);
	g_free(entry->errors_to);
	if (entry->attributes != NULL)
		g_hash_table_unref(entry->attributes);
	g_free(entry);
}

ImtaDirDomain *
imta_dir_domain_ref(ImtaDirDomain *domain)
{
	g_atomic_int_inc(&domain->refcount);
	return domain;
}

void
imta_dir_domain_unref(ImtaDirDomain *domain)
{
	if (domain == NULL || !g_atomic_int_dec_and_test(&domain->refcount))
		return;
	g_free(domain->name);
	g_free(domain->canonical);
	g_free(domain->base_dn);
	g_strfreev(domain->routing_hosts);
	g_free(domain->smart_host);
	if (domain->attributes != NULL)
		g_hash_table_unref(domain->attributes);
	g_free(domain);
}

static char **
attr_values(GHashTable *attributes, const char *name)
{
	char **values = g_hash_table_lookup(attributes, name);

	return values != NULL && values[0] != NULL ? values : NULL;
}

static const char *
attr_first(GHashTable *attributes, const char *name)
{
	char **values = attr_values(attributes, name);

	return values != NULL ? values[0] : NULL;
}

const char *
imta_dir_entry_attr(const ImtaDirEntry *entry, const char *name)
{
	if (entry->attributes == NULL)
		return NULL;
	return attr_first(entry->attributes, name);
}

static gboolean
attr_has_value(GHashTable *attributes, const char *name, const char *value)
{
	char **values = attr_values(attributes, name);

	for (guint i = 0; values != NULL && values[i] != NULL; i++)
		if (g_ascii_strcasecmp(values[i], value) == 0)
			return TRUE;
	return FALSE;
}

/* The values of up to two attributes, concatenated; never NULL. */
static GStrv
attr_collect(GHashTable *attributes, const char *first, const char *second, gboolean lower)
{
	GPtrArray *out = g_ptr_array_new();
	const char *names[] = { first, second };

	for (guint n = 0; n < G_N_ELEMENTS(names); n++) {
		char **values = names[n] != NULL ? attr_values(attributes, names[n]) : NULL;

		for (guint i = 0; values != NULL && values[i] != NULL; i++)
			g_ptr_array_add(out, lower ? g_ascii_strdown(values[i], -1)
					       : g_strdup(values[i]));
	}
	g_ptr_array_add(out, NULL);
	return (GStrv)g_ptr_array_free(out, FALSE);
}

/* ---------------------------------------------------------------------- */
/* Normalisation. */

char *
imta_dir_domain_normalize(const char *domain)
{
	char *lower = g_ascii_strdown(domain, -1);
	gsize len = strlen(lower);

	if (len > 0 && lower[len - 1] == '.')
		lower[len - 1] = '\0';
	return lower;
}

char *
imta_dir_address_normalize(const char *address)
{
	g_autofree char *lower = g_ascii_strdown(address, -1);
	char *at = strrchr(lower, '@');
	gsize len;

	if (at == NULL || at[1] == '\0')
		return NULL;
	len = strlen(lower);
	if (lower[len - 1] == '.')
		lower[len - 1] = '\0';
	if (at[1] == '\0')
		return NULL;
	return g_steal_pointer(&lower);
}

static gboolean
dn_is_separator(char c)
{
	return c == ',' || c == '+' || c == '=';
}

char *
imta_dir_dn_normalize(const char *dn)
{
	GString *out = g_string_sized_new(strlen(dn));
	gsize keep = 0;   /* never trim below this (escaped characters) */
	const char *p = dn;
	g_autofree char *ascii = NULL;

	while (*p == ' ')
		p++;
	while (*p != '\0') {
		if (*p == '\\' && p[1] != '\0') {
			g_string_append_c(out, '\\');
			g_string_append_c(out, g_ascii_tolower(p[1]));
			keep = out->len;
			p += 2;
			continue;
		}
		if (dn_is_separator(*p)) {
			while (out->len > keep && out->str[out->len - 1] == ' ')
				g_string_truncate(out, out->len - 1);
			g_string_append_c(out, *p++);
			while (*p == ' ')
				p++;
			continue;
		}
		g_string_append_c(out, g_ascii_tolower(*p++));
	}
	while (out->len > keep && out->str[out->len - 1] == ' ')
		g_string_truncate(out, out->len - 1);
	ascii = g_string_free(out, FALSE);
	if (g_utf8_validate(ascii, -1, NULL))
		return g_utf8_casefold(ascii, -1);
	return g_steal_pointer(&ascii);
}

/* Is text[pos] preceded by an odd number of backslashes (escaped)? */
static gboolean
dn_char_escaped(const char *text, gsize pos)
{
	gsize n = 0;

	while (pos > n && text[pos - n - 1] == '\\')
		n++;
	return n % 2 == 1;
}

/* Does text[0..len) contain a ',' that separates RDNs? */
static gboolean
dn_has_separator(const char *text, gsize len)
{
	for (gsize i = 0; i < len; i++)
		if (text[i] == ',' && !dn_char_escaped(text, i))
			return TRUE;
	return FALSE;
}

gboolean
imta_dir_dn_in_scope(const char *dn, const char *base, ImtaDirScope scope)
{
	gsize dlen = strlen(dn), blen = strlen(base);
	gsize rdns;   /* length of the part of dn above base, without the ',' */

	if (blen == 0) {
		if (scope == IMTA_DIR_SCOPE_BASE)
			return dlen == 0;
		if (scope == IMTA_DIR_SCOPE_ONE)
			return dlen > 0 && !dn_has_separator(dn, dlen);
		return TRUE;
	}
	if (dlen == blen)
		return scope != IMTA_DIR_SCOPE_ONE && strcmp(dn, base) == 0;
	if (scope == IMTA_DIR_SCOPE_BASE || dlen < blen + 2)
		return FALSE;
	rdns = dlen - blen - 1;
	if (strcmp(dn + rdns + 1, base) != 0 || dn[rdns] != ',' || dn_char_escaped(dn, rdns))
		return FALSE;
	return scope == IMTA_DIR_SCOPE_SUBTREE || !dn_has_separator(dn, rdns);
}

/* ---------------------------------------------------------------------- */
/* Statuses. */

static int
status_rank(ImtaDirUserStatus status)
{
	switch (status) {
	case IMTA_DIR_STATUS_ACTIVE:    return 0;
	case IMTA_DIR_STATUS_OVERQUOTA: return 1;
	case IMTA_DIR_STATUS_HOLD:      return 2;
	case IMTA_DIR_STATUS_INACTIVE:  return 3;
	case IMTA_DIR_STATUS_DISABLED:  return 4;
	case IMTA_DIR_STATUS_DELETED:   return 5;
	}
	return 3;
}

ImtaDirUserStatus
imta_dir_status_stricter(ImtaDirUserStatus a, ImtaDirUserStatus b)
{
	return status_rank(a) >= status_rank(b) ? a : b;
}

ImtaDirUserStatus
imta_dir_status_parse(const char *value, gboolean group)
{
	g_autofree char *v = NULL;

	if (value == NULL)
		return IMTA_DIR_STATUS_ACTIVE;
	v = g_strstrip(g_ascii_strdown(value, -1));
	if (strcmp(v, "active") == 0)
		return IMTA_DIR_STATUS_ACTIVE;
	if (strcmp(v, "inactive") == 0)
		return IMTA_DIR_STATUS_INACTIVE;
	if (strcmp(v, "deleted") == 0)
		return IMTA_DIR_STATUS_DELETED;
	if (!group && strcmp(v, "hold") == 0)
		return IMTA_DIR_STATUS_HOLD;
	if (!group && strcmp(v, "overquota") == 0)
		return IMTA_DIR_STATUS_OVERQUOTA;
	if (group && strcmp(v, "disabled") == 0)
		return IMTA_DIR_STATUS_DISABLED;
	/* An illegal value is treated as inactive: mail waits, nothing bounces. */
	return IMTA_DIR_STATUS_INACTIVE;
}

/* Every value of every named status attribute, the strictest winning. */
static ImtaDirUserStatus
status_combine(GHashTable *attributes, const char *general, const char *mail, gboolean group)
{
	ImtaDirUserStatus status = IMTA_DIR_STATUS_ACTIVE;
	const char *names[] = { general, mail };

	for (guint n = 0; n < G_N_ELEMENTS(names); n++) {
		char **values = attr_values(attributes, names[n]);

		for (guint i = 0; values != NULL && values[i] != NULL; i++)
			status = imta_dir_status_stricter(status,
							  imta_dir_status_parse(values[i], group));
	}
	return status;
}

/* ---------------------------------------------------------------------- */
/* Building entries and domains from attributes. */

gboolean
imta_dir_attributes_kind(GHashTable *attributes, ImtaDirKind *kind_r)
{
	if (!attr_has_value(attributes, "objectclass", "inetLocalMailRecipient"))
		return FALSE;
	if (attr_has_value(attributes, "objectclass", "inetMailUser")) {
		*kind_r = IMTA_DIR_USER;
		return TRUE;
	}
	if (attr_has_value(attributes, "objectclass", "inetMailGroup")) {
		*kind_r = IMTA_DIR_GROUP;
		return TRUE;
	}
	return FALSE;
}

/* A quota attribute: bytes (`size`) or a message count.  Absent or -2 is
 * IMTA_DIR_QUOTA_DEFAULT, -1 unlimited. */
static gboolean
quota_parse(GHashTable *attributes, const char *name, const char *label, gboolean size,
	    gint64 absent, gint64 *quota_r, GError **error)
{
	const char *text = attr_first(attributes, name);
	gint64 value;
	gboolean ok;

	if (text == NULL) {
		*quota_r = absent;
		return TRUE;
	}
	ok = size ? imta_parse_size(text, &value, NULL) : imta_parse_int(text, &value, NULL);
	if (!ok || value < -2) {
		g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA,
			    "%s: expected %s, -1 (unlimited) or -2 (default), got \"%s\"",
			    label, size ? "a size in bytes with an optional K, M or G suffix"
				        : "a number of messages", text);
		return FALSE;
	}
	if (size && value > DIR_MAX_QUOTA_BYTES) {
		g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA,
			    "%s: \"%s\" is more than the maximum of 4096G", label, text);
		return FALSE;
	}
	*quota_r = value == -2 ? IMTA_DIR_QUOTA_DEFAULT
		 : value == -1 ? IMTA_DIR_QUOTA_UNLIMITED : value;
	return TRUE;
}

static char *
attr_dup_first(GHashTable *attributes, const char *name)
{
	return g_strdup(attr_first(attributes, name));
}

ImtaDirEntry *
imta_dir_entry_build(const char *dn, ImtaDirKind kind, GHashTable *attributes,
		     const ImtaDirDomain *domain, GError **error)
{
	g_autoptr(ImtaDirEntry) entry = g_new0(ImtaDirEntry, 1);
	gboolean group = kind == IMTA_DIR_GROUP;

	entry->refcount = 1;
	entry->kind = kind;
	entry->dn = g_strdup(dn);
	entry->attributes = g_hash_table_ref(attributes);
	entry->uid = attr_dup_first(attributes, "uid");
	entry->cn = attr_dup_first(attributes, "cn");
	entry->mail = attr_dup_first(attributes, "mail");
	entry->alternate_addresses = attr_collect(attributes, "mailalternateaddress", NULL, FALSE);
	entry->equivalent_addresses = attr_collect(attributes, "mailequivalentaddress", NULL,
						   FALSE);
	entry->mail_host = attr_dup_first(attributes, "mailhost");
	entry->delivery_options = attr_collect(attributes, "maildeliveryoption", NULL, TRUE);
	entry->forwarding_addresses = attr_collect(attributes, "mailforwardingaddress", NULL,
						   FALSE);
	entry->status = status_combine(attributes, "inetuserstatus",
				       group ? "inetmailgroupstatus" : "mailuserstatus", group);
	if (domain != NULL) {
		entry->domain = g_strdup(domain->canonical);
		entry->status = imta_dir_status_stricter(entry->status, domain->status);
	}
	if (!quota_parse(attributes, "mailquota", "mailQuota", TRUE, IMTA_DIR_QUOTA_DEFAULT,
			 &entry->quota_bytes, error) ||
	    !quota_parse(attributes, "mailmsgquota", "mailMsgQuota", FALSE,
			 IMTA_DIR_QUOTA_DEFAULT, &entry->quota_messages, error))
		return NULL;
	entry->message_store = attr_dup_first(attributes, "mailmessagestore");
	entry->password = attr_dup_first(attributes, "userpassword");
	entry->rfc822_members = attr_collect(attributes, "mgrprfc822mailmember",
					     "rfc822mailmember", FALSE);
	entry->member_dns = attr_collect(attributes, "uniquemember", "member", FALSE);
	entry->member_urls = attr_collect(attributes, "memberurl", "mgrpdeliverto", FALSE);
	entry->errors_to = attr_dup_first(attributes, "mgrperrorsto");
	return g_steal_pointer(&entry);
}

/* "example.org" from "dc=example,dc=org,o=internet"; NULL without dc=. */
static char *
domain_from_dn(const char *dn)
{
	g_autofree char *norm = imta_dir_dn_normalize(dn);
	g_autoptr(GString) name = g_string_new(NULL);
	const char *p = norm;

	while (g_str_has_prefix(p, "dc=")) {
		const char *end;

		p += 3;
		end = p;
		while (*end != '\0' && !(*end == ',' && !dn_char_escaped(norm, (gsize)(end - norm))))
			end++;
		if (end == p || memchr(p, '\\', (gsize)(end - p)) != NULL)
			return NULL;
		if (name->len > 0)
			g_string_append_c(name, '.');
		g_string_append_len(name, p, end - p);
		if (*end == '\0')
			break;
		p = end + 1;
	}
	return name->len > 0 ? g_strdup(name->str) : NULL;
}

GStrv
imta_dir_domain_names(const char *dn, GHashTable *attributes)
{
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	const char *sources[] = { "sunpreferreddomain", "associateddomain" };
	gboolean domain_class = attr_has_value(attributes, "objectclass", "mailDomain") ||
		attr_has_value(attributes, "objectclass", "sunManagedOrganization") ||
		attr_has_value(attributes, "objectclass", "inetDomain");

	for (guint s = 0; s < G_N_ELEMENTS(sources); s++) {
		char **values = attr_values(attributes, sources[s]);

		for (guint i = 0; values != NULL && values[i] != NULL; i++) {
			g_autofree char *name = imta_dir_domain_normalize(values[i]);

			if (*name != '\0' && !g_ptr_array_find_with_equal_func(names, name,
									 g_str_equal, NULL))
				g_ptr_array_add(names, g_steal_pointer(&name));
		}
	}
	if (names->len == 0 && domain_class) {
		char *derived = domain_from_dn(dn);

		if (derived != NULL)
			g_ptr_array_add(names, derived);
	}
	if (names->len == 0)
		return NULL;
	g_ptr_array_add(names, NULL);
	return (GStrv)g_ptr_array_free(g_steal_pointer(&names), FALSE);
}

ImtaDirDomain *
imta_dir_domain_build(const char *name, const char *dn, GHashTable *attributes, GError **error)
{
	g_autoptr(ImtaDirDomain) domain = g_new0(ImtaDirDomain, 1);
	const char *canonical = attr_first(attributes, "inetcanonicaldomainname");
	g_autofree char *derived = NULL;
	const char *base = attr_first(attributes, "inetdomainbasedn");

	if (canonical == NULL)
		canonical = attr_first(attributes, "sunpreferreddomain");
	if (canonical == NULL)
		canonical = attr_first(attributes, "associateddomain");
	if (canonical == NULL)
		canonical = derived = domain_from_dn(dn);
	if (canonical == NULL)
		canonical = name;
	domain->refcount = 1;
	domain->name = imta_dir_domain_normalize(name);
	domain->canonical = imta_dir_domain_normalize(canonical);
	/* Schema 2 keeps users below the organisation entry itself. */
	domain->base_dn = g_strdup(base != NULL ? base : dn);
	domain->status = status_combine(attributes, "inetdomainstatus", "maildomainstatus", FALSE);
	domain->routing_hosts = attr_collect(attributes, "mailroutinghosts", NULL, TRUE);
	domain->smart_host = attr_dup_first(attributes, "mailroutingsmarthost");
	domain->attributes = g_hash_table_ref(attributes);
	if (!quota_parse(attributes, "maildomaindiskquota", "mailDomainDiskQuota", TRUE,
			 IMTA_DIR_QUOTA_UNLIMITED, &domain->disk_quota, error) ||
	    !quota_parse(attributes, "maildomainmsgquota", "mailDomainMsgQuota", FALSE,
			 IMTA_DIR_QUOTA_UNLIMITED, &domain->msg_quota, error))
		return NULL;
	return g_steal_pointer(&domain);
}

/* ---------------------------------------------------------------------- */
/* The directory object. */

static gint64
dir_default_clock(gpointer data)
{
	return g_get_monotonic_time();
}

static GStrv
dir_aliases_normalize(const char *const *aliases)
{
	GPtrArray *list = g_ptr_array_new();

	for (guint i = 0; aliases != NULL && aliases[i] != NULL; i++)
		if (aliases[i][0] != '\0')
			g_ptr_array_add(list, imta_dir_domain_normalize(aliases[i]));
	g_ptr_array_add(list, NULL);
	return (GStrv)g_ptr_array_free(list, FALSE);
}

ImtaDirectory *
imta_directory_new(ImtaDirBackend *backend, const ImtaDirectoryOptions *options)
{
	ImtaDirectory *dir = g_new0(ImtaDirectory, 1);
	ImtaDirectoryOptions defaults = {
		.cache_size = DIR_DEFAULT_CACHE_SIZE,
		.cache_ttl = DIR_DEFAULT_CACHE_TTL,
		.negative_ttl = DIR_DEFAULT_NEGATIVE_TTL,
	};

	if (options == NULL)
		options = &defaults;
	dir->backend = backend;
	dir->cache = imta_dir_cache_new(options->cache_size, options->cache_ttl,
					options->negative_ttl);
	dir->local_host = imta_dir_domain_normalize(options->local_host != NULL
						    ? options->local_host : g_get_host_name());
	dir->local_aliases = dir_aliases_normalize(options->local_host_aliases);
	dir->clock = dir_default_clock;
	dir->uplevel = options->domain_uplevel;
	return dir;
}

ImtaDirectory *
imta_directory_open_ldif(const char *path, const ImtaDirectoryOptions *options, GError **error)
{
	ImtaDirBackend *backend = imta_dir_ldif_backend_new(path, error);

	if (backend == NULL)
		return NULL;
	return imta_directory_new(backend, options);
}

ImtaDirectory *
imta_directory_open_ldap(const ImtaDirectoryLdapOptions *ldap, const ImtaDirectoryOptions *options,
			 GError **error)
{
	ImtaDirBackend *backend = imta_dir_ldap_backend_new(ldap, options, error);

	if (backend == NULL)
		return NULL;
	return imta_directory_new(backend, options);
}

void
imta_directory_set_clock(ImtaDirectory *dir, ImtaDirClock clock, gpointer data)
{
	dir->clock = clock != NULL ? clock : dir_default_clock;
	dir->clock_data = data;
}

const char *
imta_directory_local_host(const ImtaDirectory *dir)
{
	return dir->local_host;
}

gboolean
imta_directory_is_local_host(const ImtaDirectory *dir, const char *host)
{
	g_autofree char *name = imta_dir_domain_normalize(host);

	if (strcmp(name, dir->local_host) == 0)
		return TRUE;
	return g_strv_contains((const char *const *)dir->local_aliases, name);
}

void
imta_directory_free(ImtaDirectory *dir)
{
	if (dir == NULL)
		return;
	imta_dir_cache_free(dir->cache);
	dir->backend->ops->free(dir->backend);
	g_free(dir->local_host);
	g_strfreev(dir->local_aliases);
	g_free(dir);
}

void
imta_directory_flush(ImtaDirectory *dir)
{
	imta_dir_cache_flush(dir->cache);
	if (dir->backend->ops->flush != NULL)
		dir->backend->ops->flush(dir->backend);
}

const char *
imta_directory_backend_name(const ImtaDirectory *dir)
{
	return dir->backend->ops->name;
}

void
imta_directory_stats(ImtaDirectory *dir, ImtaDirectoryStats *stats_r)
{
	imta_dir_cache_stats(dir->cache, stats_r);
}

static gint64
dir_now(ImtaDirectory *dir)
{
	return dir->clock(dir->clock_data);
}

/* Let the backend notice new data; stale answers then leave the cache. */
static void
dir_refresh(ImtaDirectory *dir)
{
	if (dir->backend->ops->refresh != NULL &&
	    dir->backend->ops->refresh(dir->backend, dir_now(dir)))
		imta_dir_cache_flush(dir->cache);
}

/* ---------------------------------------------------------------------- */
/* Lookups. */

static ImtaDirStatus
dir_domain_cached(ImtaDirectory *dir, const char *domain, ImtaDirDomain **domain_r,
		  GError **error)
{
	ImtaDirStatus status;
	gpointer value = NULL;

	*domain_r = NULL;
	if (imta_dir_cache_get(dir->cache, IMTA_DIR_CACHE_DOMAIN, domain, dir_now(dir),
			       &status, &value)) {
		*domain_r = value;
		return status;
	}
	status = dir->backend->ops->lookup_domain(dir->backend, domain, domain_r, error);
	imta_dir_cache_put(dir->cache, IMTA_DIR_CACHE_DOMAIN, domain, dir_now(dir), status,
			   *domain_r);
	return status;
}

/* The entry of `domain` or, with DOMAIN_UPLEVEL's walk, of its nearest
 * parent that has one.  A parent of one label ("com") is never asked. */
static ImtaDirStatus
dir_domain_walk(ImtaDirectory *dir, const char *domain, ImtaDirDomain **domain_r,
		GError **error)
{
	const char *name = domain;

	for (;;) {
		ImtaDirStatus status = dir_domain_cached(dir, name, domain_r, error);
		const char *dot = strchr(name, '.');

		if (status != IMTA_DIR_NOT_FOUND || !(dir->uplevel & IMTA_DIR_UPLEVEL_WALK))
			return status;
		if (dot == NULL || strchr(dot + 1, '.') == NULL)
			return status;
		name = dot + 1;
	}
}

/* Several entries claim one address: keep the live user or group with a
 * uid, if there is exactly one; otherwise the data needs fixing. */
static ImtaDirStatus
dir_resolve(const char *address, GPtrArray *entries, ImtaDirEntry **entry_r, GError **error)
{
	ImtaDirEntry *chosen = NULL;
	guint candidates = 0;
	g_autoptr(GString) dns = NULL;

	if (entries->len == 1) {
		*entry_r = imta_dir_entry_ref(g_ptr_array_index(entries, 0));
		return IMTA_DIR_FOUND;
	}
	for (guint i = 0; i < entries->len; i++) {
		ImtaDirEntry *entry = g_ptr_array_index(entries, i);

		if (entry->status == IMTA_DIR_STATUS_DELETED || entry->uid == NULL)
			continue;
		chosen = entry;
		candidates++;
	}
	if (candidates == 1) {
		*entry_r = imta_dir_entry_ref(chosen);
		return IMTA_DIR_FOUND;
	}
	dns = g_string_new(NULL);
	for (guint i = 0; i < entries->len && i < 3; i++) {
		ImtaDirEntry *entry = g_ptr_array_index(entries, i);

		g_string_append_printf(dns, "%s\"%s\"", i > 0 ? ", " : "", entry->dn);
	}
	if (entries->len > 3)
		g_string_append(dns, ", ...");
	g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_AMBIGUOUS,
		    "ambiguous directory: %u entries claim \"%s\": %s", entries->len, address,
		    dns->str);
	return IMTA_DIR_TEMPFAIL;
}

static ImtaDirStatus
dir_find_exact(ImtaDirectory *dir, const char *address, const char *base_dn,
	       ImtaDirEntry **entry_r, GError **error)
{
	g_autoptr(GPtrArray) entries = NULL;
	ImtaDirStatus status;

	status = dir->backend->ops->lookup_address(dir->backend, address, base_dn, &entries,
						   error);
	if (status != IMTA_DIR_FOUND)
		return status;
	return dir_resolve(address, entries, entry_r, error);
}

/*
 * `address` is normalised.  Exact addresses first, then the same local
 * part in the parent domain DOMAIN_UPLEVEL found (when asked to), then
 * (for domain aliases) in the canonical domain, then the catch-alls of
 * those domains in the same order, all within the domain's subtree.
 */
static ImtaDirStatus
dir_find_address(ImtaDirectory *dir, const char *address, gboolean catch_all,
		 ImtaDirEntry **entry_r, GError **error)
{
	g_autoptr(ImtaDirDomain) domain = NULL;
	g_autofree char *local = NULL;
	const char *domain_name = strrchr(address, '@') + 1;
	const char *canonical = NULL;
	const char *parent = NULL;
	const char *base_dn = NULL;
	ImtaDirStatus status;
	char *candidates[6] = { NULL };
	guint n = 0;

	*entry_r = NULL;
	status = dir_domain_walk(dir, domain_name, &domain, error);
	if (status == IMTA_DIR_TEMPFAIL)
		return status;
	if (domain != NULL) {
		gboolean walked = strcmp(domain->name, domain_name) != 0;

		base_dn = domain->base_dn;
		/* A parent's own names stand for the subdomain's addresses only
		 * when DOMAIN_UPLEVEL says so. */
		if (walked && (dir->uplevel & IMTA_DIR_UPLEVEL_LOCAL_PART))
			parent = domain->name;
		if ((!walked || parent != NULL) && strcmp(domain->canonical, domain_name) != 0 &&
		    g_strcmp0(domain->canonical, parent) != 0)
			canonical = domain->canonical;
	}
	local = g_strndup(address, (gsize)(domain_name - address));   /* "user@" */
	candidates[n++] = g_strdup(address);
	if (parent != NULL)
		candidates[n++] = g_strconcat(local, parent, NULL);
	if (canonical != NULL)
		candidates[n++] = g_strconcat(local, canonical, NULL);
	if (catch_all) {
		candidates[n++] = g_strconcat("@", domain_name, NULL);
		if (parent != NULL)
			candidates[n++] = g_strconcat("@", parent, NULL);
		if (canonical != NULL)
			candidates[n++] = g_strconcat("@", canonical, NULL);
	}
	status = IMTA_DIR_NOT_FOUND;
	for (guint i = 0; i < n && status == IMTA_DIR_NOT_FOUND; i++)
		status = dir_find_exact(dir, candidates[i], base_dn, entry_r, error);
	for (guint i = 0; i < n; i++)
		g_free(candidates[i]);
	return status;
}

static ImtaDirStatus
dir_lookup_address(ImtaDirectory *dir, const char *address, ImtaDirEntry **entry_r,
		   GError **error)
{
	g_autofree char *key = imta_dir_address_normalize(address);
	ImtaDirStatus status;
	gpointer value = NULL;

	*entry_r = NULL;
	/* No domain or no local part ("@example.com" is a catch-all's
	 * spelling, not an address): nobody has it. */
	if (key == NULL || key[0] == '@')
		return IMTA_DIR_NOT_FOUND;
	if (imta_dir_cache_get(dir->cache, IMTA_DIR_CACHE_ADDRESS, key, dir_now(dir),
			       &status, &value)) {
		*entry_r = value;
		return status;
	}
	status = dir_find_address(dir, key, TRUE, entry_r, error);
	imta_dir_cache_put(dir->cache, IMTA_DIR_CACHE_ADDRESS, key, dir_now(dir), status, *entry_r);
	return status;
}

ImtaDirStatus
imta_directory_lookup_address(ImtaDirectory *dir, const char *address, ImtaDirEntry **entry_r,
			      GError **error)
{
	dir_refresh(dir);
	return dir_lookup_address(dir, address, entry_r, error);
}

static ImtaDirStatus
dir_lookup_dn(ImtaDirectory *dir, const char *dn, ImtaDirEntry **entry_r, GError **error)
{
	g_autofree char *key = imta_dir_dn_normalize(dn);
	ImtaDirStatus status;
	gpointer value = NULL;

	*entry_r = NULL;
	if (*key == '\0')
		return IMTA_DIR_NOT_FOUND;
	if (imta_dir_cache_get(dir->cache, IMTA_DIR_CACHE_DN, key, dir_now(dir), &status,
			       &value)) {
		*entry_r = value;
		return status;
	}
	status = dir->backend->ops->lookup_dn(dir->backend, key, entry_r, error);
	imta_dir_cache_put(dir->cache, IMTA_DIR_CACHE_DN, key, dir_now(dir), status, *entry_r);
	return status;
}

ImtaDirStatus
imta_directory_lookup_dn(ImtaDirectory *dir, const char *dn, ImtaDirEntry **entry_r,
			 GError **error)
{
	dir_refresh(dir);
	return dir_lookup_dn(dir, dn, entry_r, error);
}

ImtaDirStatus
imta_directory_lookup_domain(ImtaDirectory *dir, const char *domain, ImtaDirDomain **domain_r,
			     GError **error)
{
	g_autofree char *key = imta_dir_domain_normalize(domain);

	*domain_r = NULL;
	if (*key == '\0')
		return IMTA_DIR_NOT_FOUND;
	dir_refresh(dir);
	return dir_domain_walk(dir, key, domain_r, error);
}

ImtaDirStatus
imta_directory_domain_is_local(ImtaDirectory *dir, const char *domain, GError **error)
{
	g_autoptr(ImtaDirDomain) entry = NULL;
	ImtaDirStatus status;

	status = imta_directory_lookup_domain(dir, domain, &entry, error);
	if (status != IMTA_DIR_FOUND)
		return status;
	if (entry->routing_hosts[0] == NULL)
		return IMTA_DIR_FOUND;
	for (guint i = 0; entry->routing_hosts[i] != NULL; i++)
		if (imta_directory_is_local_host(dir, entry->routing_hosts[i]))
			return IMTA_DIR_FOUND;
	return IMTA_DIR_NOT_FOUND;
}

/* ---------------------------------------------------------------------- */
/* LDAP URLs. */

static const char *
url_error_text(int code)
{
	switch (code) {
	case LDAP_URL_ERR_BADSCHEME:    return "it does not start with ldap://";
	case LDAP_URL_ERR_BADENCLOSURE: return "the closing \">\" is missing";
	case LDAP_URL_ERR_BADHOST:      return "bad host or port";
	case LDAP_URL_ERR_BADATTRS:     return "bad attribute list";
	case LDAP_URL_ERR_BADSCOPE:     return "the scope is not base, one or sub";
	case LDAP_URL_ERR_BADFILTER:    return "bad filter";
	case LDAP_URL_ERR_BADEXTS:      return "bad extensions";
	default:                        return "malformed URL";
	}
}

static ImtaDirStatus
dir_search_url(ImtaDirectory *dir, const char *url, guint size_limit, GPtrArray **entries_r,
	       GError **error)
{
	LDAPURLDesc *desc = NULL;
	g_autoptr(ImtaLdapFilter) filter = NULL;
	ImtaDirScope scope;
	ImtaDirStatus status;
	int rc;

	*entries_r = NULL;
	rc = ldap_url_parse(url, &desc);
	if (rc != LDAP_URL_SUCCESS) {
		g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA,
			    "invalid LDAP URL \"%s\": %s", url, url_error_text(rc));
		return IMTA_DIR_NOT_FOUND;
	}
	switch (desc->lud_scope) {
	case LDAP_SCOPE_BASE:
		scope = IMTA_DIR_SCOPE_BASE;
		break;
	case LDAP_SCOPE_ONELEVEL:
		scope = IMTA_DIR_SCOPE_ONE;
		break;
	case LDAP_SCOPE_SUBTREE:
		scope = IMTA_DIR_SCOPE_SUBTREE;
		break;
	default:
		ldap_free_urldesc(desc);
		g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA,
			    "invalid LDAP URL \"%s\": %s", url, url_error_text(LDAP_URL_ERR_BADSCOPE));
		return IMTA_DIR_NOT_FOUND;
	}
	if (desc->lud_crit_exts > 0) {
		ldap_free_urldesc(desc);
		g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA,
			    "invalid LDAP URL \"%s\": critical extensions are not supported", url);
		return IMTA_DIR_NOT_FOUND;
	}
	filter = imta_ldap_filter_parse(desc->lud_filter != NULL ? desc->lud_filter
					: "(objectClass=*)", error);
	if (filter == NULL) {
		ldap_free_urldesc(desc);
		g_prefix_error(error, "LDAP URL \"%s\": ", url);
		return IMTA_DIR_NOT_FOUND;
	}
	{
		g_autofree char *base = imta_dir_dn_normalize(desc->lud_dn != NULL
							      ? desc->lud_dn : "");

		ldap_free_urldesc(desc);
		status = dir->backend->ops->search(dir->backend, base, scope, filter, size_limit,
						   entries_r, error);
	}
	return status;
}

ImtaDirStatus
imta_directory_search_url(ImtaDirectory *dir, const char *url, GPtrArray **entries_r,
			  GError **error)
{
	ImtaDirStatus status;

	dir_refresh(dir);
	status = dir_search_url(dir, url, 0, entries_r, error);
	if (status == IMTA_DIR_FOUND && (*entries_r)->len == 0) {
		g_clear_pointer(entries_r, g_ptr_array_unref);
		return IMTA_DIR_NOT_FOUND;
	}
	return status;
}

/* ---------------------------------------------------------------------- */
/* Group expansion. */

typedef struct {
	ImtaDirectory *dir;
	const ImtaDirEntry *top;
	guint limit;
	GPtrArray *addresses;         /* char *, in the order found */
	GHashTable *seen;             /* normalised addresses already in `addresses` */
	GHashTable *groups;           /* normalised DNs of the groups entered */
	GHashTable *group_addresses;  /* normalised addresses of those groups */
} Expansion;

static ImtaDirStatus expand_group(Expansion *ex, const ImtaDirEntry *group, guint depth,
				  GError **error);

static const char *
entry_name(const ImtaDirEntry *entry)
{
	return entry->mail != NULL ? entry->mail : entry->dn;
}

static ImtaDirStatus
expand_add(Expansion *ex, const char *address, GError **error)
{
	char *key = g_ascii_strdown(address, -1);

	if (g_hash_table_contains(ex->seen, key)) {
		g_free(key);
		return IMTA_DIR_FOUND;
	}
	if (ex->limit > 0 && ex->addresses->len >= ex->limit) {
		g_free(key);
		g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA,
			    "group \"%s\" expands to more than %u addresses", entry_name(ex->top),
			    ex->limit);
		return IMTA_DIR_NOT_FOUND;
	}
	g_hash_table_add(ex->seen, key);
	g_ptr_array_add(ex->addresses, g_strdup(address));
	return IMTA_DIR_FOUND;
}

static void
expand_mark_group(Expansion *ex, const ImtaDirEntry *group)
{
	GStrv lists[] = { group->alternate_addresses, group->equivalent_addresses };

	g_hash_table_add(ex->groups, imta_dir_dn_normalize(group->dn));
	if (group->mail != NULL) {
		char *key = imta_dir_address_normalize(group->mail);

		if (key != NULL)
			g_hash_table_add(ex->group_addresses, key);
	}
	for (guint l = 0; l < G_N_ELEMENTS(lists); l++) {
		for (guint i = 0; lists[l][i] != NULL; i++) {
			char *key = imta_dir_address_normalize(lists[l][i]);

			if (key != NULL)
				g_hash_table_add(ex->group_addresses, key);
		}
	}
}

static gboolean
expand_group_entered(Expansion *ex, const ImtaDirEntry *group)
{
	g_autofree char *key = imta_dir_dn_normalize(group->dn);

	return g_hash_table_contains(ex->groups, key);
}

/* A member known by its entry (a DN or a URL result): a user contributes
 * its mail, an active group its members; a group that is not active
 * contributes its address so that delivery applies its status. */
static ImtaDirStatus
expand_member_entry(Expansion *ex, const ImtaDirEntry *member, guint depth, GError **error)
{
	if (member->kind == IMTA_DIR_GROUP) {
		if (expand_group_entered(ex, member))
			return IMTA_DIR_FOUND;
		if (member->status == IMTA_DIR_STATUS_ACTIVE)
			return expand_group(ex, member, depth + 1, error);
	}
	if (member->mail == NULL)
		return IMTA_DIR_FOUND;
	return expand_add(ex, member->mail, error);
}

/* An rfc822 member stays as written unless it names a group of this
 * directory, which is expanded in place. */
static ImtaDirStatus
expand_rfc822(Expansion *ex, const char *address, guint depth, GError **error)
{
	g_autofree char *key = imta_dir_address_normalize(address);
	g_autoptr(ImtaDirEntry) entry = NULL;
	ImtaDirStatus status;

	if (key == NULL || key[0] == '@')
		return expand_add(ex, address, error);
	if (g_hash_table_contains(ex->group_addresses, key))
		return IMTA_DIR_FOUND;
	status = dir_lookup_address(ex->dir, key, &entry, error);
	if (status == IMTA_DIR_TEMPFAIL)
		return status;
	if (status == IMTA_DIR_FOUND && entry->kind == IMTA_DIR_GROUP) {
		if (expand_group_entered(ex, entry))
			return IMTA_DIR_FOUND;
		if (entry->status == IMTA_DIR_STATUS_ACTIVE)
			return expand_group(ex, entry, depth + 1, error);
	}
	return expand_add(ex, address, error);
}

static gint
expand_entry_dn_cmp(gconstpointer a, gconstpointer b)
{
	const ImtaDirEntry *ea = *(ImtaDirEntry *const *)a;
	const ImtaDirEntry *eb = *(ImtaDirEntry *const *)b;
	g_autofree char *na = imta_dir_dn_normalize(ea->dn);
	g_autofree char *nb = imta_dir_dn_normalize(eb->dn);

	return strcmp(na, nb);
}

static ImtaDirStatus
expand_group(Expansion *ex, const ImtaDirEntry *group, guint depth, GError **error)
{
	ImtaDirStatus status;

	if (depth > DIR_GROUP_MAX_DEPTH) {
		g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA,
			    "group \"%s\": groups nested more than %d levels deep",
			    entry_name(ex->top), DIR_GROUP_MAX_DEPTH);
		return IMTA_DIR_NOT_FOUND;
	}
	expand_mark_group(ex, group);
	for (guint i = 0; group->rfc822_members[i] != NULL; i++) {
		status = expand_rfc822(ex, group->rfc822_members[i], depth, error);
		if (status != IMTA_DIR_FOUND)
			return status;
	}
	for (guint i = 0; group->member_dns[i] != NULL; i++) {
		g_autoptr(ImtaDirEntry) member = NULL;

		status = dir_lookup_dn(ex->dir, group->member_dns[i], &member, error);
		if (status == IMTA_DIR_TEMPFAIL)
			return status;
		/* A member whose entry is gone is skipped, as LDAP servers
		 * leave dangling uniqueMember values behind. */
		if (status == IMTA_DIR_NOT_FOUND)
			continue;
		status = expand_member_entry(ex, member, depth, error);
		if (status != IMTA_DIR_FOUND)
			return status;
	}
	for (guint i = 0; group->member_urls[i] != NULL; i++) {
		g_autoptr(GPtrArray) members = NULL;

		/* No size limit on the search: entries without mail and
		 * duplicates do not count against the group's limit. */
		status = dir_search_url(ex->dir, group->member_urls[i], 0, &members, error);
		if (status != IMTA_DIR_FOUND) {
			if (status == IMTA_DIR_NOT_FOUND)
				g_prefix_error(error, "group \"%s\": ", entry_name(group));
			return status;
		}
		/* Servers return search results in their own order; by DN,
		 * every backend expands a group the same way. */
		g_ptr_array_sort(members, expand_entry_dn_cmp);
		for (guint m = 0; m < members->len; m++) {
			status = expand_member_entry(ex, g_ptr_array_index(members, m), depth,
						     error);
			if (status != IMTA_DIR_FOUND)
				return status;
		}
	}
	return IMTA_DIR_FOUND;
}

ImtaDirStatus
imta_directory_expand_group(ImtaDirectory *dir, const ImtaDirEntry *group, guint limit,
			    GPtrArray **addresses_r, GError **error)
{
	Expansion ex = {
		.dir = dir,
		.top = group,
		.limit = limit,
	};
	ImtaDirStatus status;

	*addresses_r = NULL;
	dir_refresh(dir);
	ex.addresses = g_ptr_array_new_with_free_func(g_free);
	ex.seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	ex.groups = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	ex.group_addresses = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	status = expand_group(&ex, group, 1, error);
	g_hash_table_unref(ex.seen);
	g_hash_table_unref(ex.groups);
	g_hash_table_unref(ex.group_addresses);
	if (status != IMTA_DIR_FOUND) {
		g_ptr_array_unref(ex.addresses);
		return status;
	}
	*addresses_r = ex.addresses;
	return IMTA_DIR_FOUND;
}

/* ---------------------------------------------------------------------- */
/* Authentication. */

static gboolean
const_equal(const guint8 *a, gsize alen, const guint8 *b, gsize blen)
{
	guint8 diff = 0;

	if (alen != blen)
		return FALSE;
	for (gsize i = 0; i < alen; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

static gboolean
base64_valid(const char *text)
{
	gsize len = strlen(text), pad = 0;

	if (len == 0 || len % 4 != 0)
		return FALSE;
	for (gsize i = 0; i < len; i++) {
		char c = text[i];

		if (c == '=') {
			pad++;
			continue;
		}
		if (pad > 0 || !(g_ascii_isalnum(c) || c == '+' || c == '/'))
			return FALSE;
	}
	return pad <= 2;
}

typedef struct {
	const char *scheme;
	GChecksumType type;
	gboolean salted;
} PasswordScheme;

static const PasswordScheme password_schemes[] = {
	{ "SHA", G_CHECKSUM_SHA1, FALSE },
	{ "SSHA", G_CHECKSUM_SHA1, TRUE },
	{ "SHA256", G_CHECKSUM_SHA256, FALSE },
	{ "SSHA256", G_CHECKSUM_SHA256, TRUE },
	{ "SHA384", G_CHECKSUM_SHA384, FALSE },
	{ "SSHA384", G_CHECKSUM_SHA384, TRUE },
	{ "SHA512", G_CHECKSUM_SHA512, FALSE },
	{ "SSHA512", G_CHECKSUM_SHA512, TRUE },
	{ "MD5", G_CHECKSUM_MD5, FALSE },
	{ "SMD5", G_CHECKSUM_MD5, TRUE },
};

/* {SCHEME}base64(digest(password + salt) + salt) */
static gboolean
password_digest_verify(const PasswordScheme *scheme, const char *stored, const char *password,
		       const char *dn, GError **error)
{
	g_autoptr(GChecksum) checksum = g_checksum_new(scheme->type);
	g_autofree guint8 *decoded = NULL;
	gssize dlen = g_checksum_type_get_length(scheme->type);
	guint8 digest[64];
	gsize len, digest_len = sizeof(digest);

	if (!base64_valid(stored) ||
	    (decoded = g_base64_decode(stored, &len)) == NULL ||
	    len < (gsize)dlen || (!scheme->salted && len != (gsize)dlen)) {
		g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA,
			    "\"%s\": malformed {%s} userPassword", dn, scheme->scheme);
		return FALSE;
	}
	g_checksum_update(checksum, (const guchar *)password, (gssize)strlen(password));
	g_checksum_update(checksum, decoded + dlen, (gssize)(len - (gsize)dlen));
	g_checksum_get_digest(checksum, digest, &digest_len);
	return const_equal(digest, digest_len, decoded, (gsize)dlen);
}

static gboolean
password_crypt_verify(const char *stored, const char *password, const char *dn,
		      GError **error)
{
#ifdef HAVE_CRYPT_R
	g_autofree struct crypt_data *data = g_new0(struct crypt_data, 1);
	const char *hash = crypt_r(password, stored, data);

	/* Failures come back as NULL or as a string starting with '*'. */
	if (hash == NULL || hash[0] == '*') {
		g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA,
			    "\"%s\": malformed or unsupported {CRYPT} userPassword", dn);
		return FALSE;
	}
	return const_equal((const guint8 *)hash, strlen(hash), (const guint8 *)stored,
			   strlen(stored));
#else
	g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA,
		    "\"%s\": {CRYPT} passwords are not supported by this build", dn);
	return FALSE;
#endif
}

static gboolean
password_verify(const char *stored, const char *password, const char *dn, GError **error)
{
	const char *close;
	g_autofree char *scheme = NULL;

	if (stored[0] != '{' || (close = strchr(stored, '}')) == NULL)
		return const_equal((const guint8 *)stored, strlen(stored),
				   (const guint8 *)password, strlen(password));
	scheme = g_ascii_strup(stored + 1, close - stored - 1);
	for (guint i = 0; i < G_N_ELEMENTS(password_schemes); i++)
		if (strcmp(scheme, password_schemes[i].scheme) == 0)
			return password_digest_verify(&password_schemes[i], close + 1, password,
						      dn, error);
	if (strcmp(scheme, "CRYPT") == 0)
		return password_crypt_verify(close + 1, password, dn, error);
	if (strcmp(scheme, "CLEARTEXT") == 0 || strcmp(scheme, "PLAIN") == 0)
		return const_equal((const guint8 *)close + 1, strlen(close + 1),
				   (const guint8 *)password, strlen(password));
	g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA,
		    "\"%s\": unsupported password scheme {%s}", dn, scheme);
	return FALSE;
}

/* The user whose uid is `uid`, fresh from the backend. */
static ImtaDirStatus
dir_find_uid(ImtaDirectory *dir, const char *uid, ImtaDirEntry **entry_r, GError **error)
{
	g_autofree char *escaped = imta_ldap_filter_escape(uid);
	g_autofree char *text = g_strdup_printf("(&(objectClass=inetMailUser)(uid=%s))", escaped);
	g_autoptr(ImtaLdapFilter) filter = imta_ldap_filter_parse(text, error);
	g_autoptr(GPtrArray) entries = NULL;
	ImtaDirStatus status;

	*entry_r = NULL;
	if (filter == NULL)
		return IMTA_DIR_NOT_FOUND;
	status = dir->backend->ops->search(dir->backend, "", IMTA_DIR_SCOPE_SUBTREE, filter, 0,
					   &entries, error);
	if (status != IMTA_DIR_FOUND)
		return status;
	if (entries->len == 0)
		return IMTA_DIR_NOT_FOUND;
	return dir_resolve(uid, entries, entry_r, error);
}

ImtaDirStatus
imta_directory_authenticate(ImtaDirectory *dir, const char *user, const char *password,
			    GError **error)
{
	g_autoptr(ImtaDirEntry) entry = NULL;
	g_autofree char *address = NULL;
	ImtaDirStatus status = IMTA_DIR_NOT_FOUND;

	/* An empty password would be an anonymous bind in LDAP terms. */
	if (user == NULL || *user == '\0' || strlen(user) > DIR_MAX_LOGIN ||
	    password == NULL || *password == '\0')
		return IMTA_DIR_NOT_FOUND;
	dir_refresh(dir);
	/* Bypass the cache: a changed password must work at once.  No
	 * catch-all: it would accept any local part. */
	address = imta_dir_address_normalize(user);
	if (address != NULL && address[0] != '@')
		status = dir_find_address(dir, address, FALSE, &entry, error);
	if (status == IMTA_DIR_NOT_FOUND)
		status = dir_find_uid(dir, user, &entry, error);
	if (status != IMTA_DIR_FOUND)
		return status;
	/* Over-quota users may log in (to make room); others must be active. */
	if (entry->kind != IMTA_DIR_USER ||
	    (entry->status != IMTA_DIR_STATUS_ACTIVE && entry->status != IMTA_DIR_STATUS_OVERQUOTA))
		return IMTA_DIR_NOT_FOUND;
	/* The source checks the password (an LDAP bind as the user). */
	if (dir->backend->ops->authenticate != NULL)
		return dir->backend->ops->authenticate(dir->backend, entry->dn, password, error);
	if (entry->password == NULL)
		return IMTA_DIR_NOT_FOUND;
	return password_verify(entry->password, password, entry->dn, error)
		? IMTA_DIR_FOUND : IMTA_DIR_NOT_FOUND;
}
