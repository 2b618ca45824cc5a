/*
 * ldif.c - the embedded directory backend: an LDIF file held in memory.
 *
 * The file (RFC 2849 content records) is parsed into immutable entries and
 * indexed by address, DN and domain name.  A loaded generation is one
 * reference-counted snapshot: lookups take a reference and work without
 * the lock, and a reload builds a new snapshot beside the old one and
 * swaps it in, so readers never see half a file.  A reload that fails
 * keeps the previous snapshot.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/directory.h>
#include <imta/error.h>
#include <imta/log.h>

#include "directory_private.h"

/* A logical line (after unfolding) longer than this is refused. */
#define LDIF_MAX_LINE (1024 * 1024)

/* ---------------------------------------------------------------------- */
/* Parsing. */

typedef struct {
	char *dn;
	guint line;               /* of the "dn:" line */
	GHashTable *values;       /* lower-case name -> GPtrArray of char * */
} LdifRecord;

typedef struct {
	const char *path;
	const char *text;
	gsize len;
	gsize pos;
	guint line;               /* number of the next physical line */
} LdifReader;

static void
ldif_record_free(LdifRecord *record)
{
	g_free(record->dn);
	g_hash_table_unref(record->values);
	g_free(record);
}

static void G_GNUC_PRINTF(4, 5)
ldif_fail(GError **error, const char *path, guint line, const char *fmt, ...)
{
	ImtaSourcePos pos = { .file = path, .line = line, .column = 0 };
	g_autofree char *what = NULL;
	va_list args;

	va_start(args, fmt);
	what = g_strdup_vprintf(fmt, args);
	va_end(args);
	imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &pos, "%s", what);
}

/* One physical line without its terminator; FALSE at the end. */
static gboolean
ldif_physical_line(LdifReader *r, const char **start_r, gsize *len_r)
{
	const char *start, *nl;
	gsize len;

	if (r->pos >= r->len)
		return FALSE;
	start = r->text + r->pos;
	nl = memchr(start, '\n', r->len - r->pos);
	len = nl != NULL ? (gsize)(nl - start) : r->len - r->pos;
	r->pos += len + (nl != NULL ? 1 : 0);
	if (len > 0 && start[len - 1] == '\r')
		len--;
	*start_r = start;
	*len_r = len;
	r->line++;
	return TRUE;
}

/*
 * The next logical line, unfolded (a physical line starting with one space
 * continues the previous one).  An empty `out` is a separator.  FALSE at
 * the end of the file or on error (then *error is set).
 */
static gboolean
ldif_logical_line(LdifReader *r, GString *out, guint *line_r, GError **error)
{
	const char *start;
	gsize len;

	g_string_truncate(out, 0);
	if (!ldif_physical_line(r, &start, &len))
		return FALSE;
	*line_r = r->line;
	if (len > 0 && start[0] == ' ') {
		ldif_fail(error, r->path, r->line, "a continuation line (one starting with a "
			  "space) must follow the line it continues");
		return FALSE;
	}
	g_string_append_len(out, start, (gssize)len);
	if (len == 0)
		return TRUE;
	while (r->pos < r->len && r->text[r->pos] == ' ') {
		ldif_physical_line(r, &start, &len);
		g_string_append_len(out, start + 1, (gssize)len - 1);
		if (out->len > LDIF_MAX_LINE) {
			ldif_fail(error, r->path, *line_r, "line longer than %d bytes",
				  LDIF_MAX_LINE);
			return FALSE;
		}
	}
	if (out->len > LDIF_MAX_LINE) {
		ldif_fail(error, r->path, *line_r, "line longer than %d bytes", LDIF_MAX_LINE);
		return FALSE;
	}
	return TRUE;
}

/* AttributeDescription = (keystring / numericoid) *(";" option); options
 * are dropped.  NULL if `name` is not one. */
static char *
ldif_attribute_name(const char *name, gsize len)
{
	gsize i = 0, base_len;

	if (len == 0)
		return NULL;
	if (g_ascii_isalpha(name[0])) {
		while (i < len && (g_ascii_isalnum(name[i]) || name[i] == '-'))
			i++;
	} else if (g_ascii_isdigit(name[0])) {
		while (i < len && (g_ascii_isdigit(name[i]) || name[i] == '.'))
			i++;
	}
	if (i == 0)
		return NULL;
	base_len = i;
	while (i < len && name[i] == ';') {
		gsize start = ++i;

		while (i < len && (g_ascii_isalnum(name[i]) || name[i] == '-'))
			i++;
		if (i == start)
			return NULL;
	}
	if (i != len)
		return NULL;
	return g_ascii_strdown(name, (gssize)base_len);
}

static gboolean
ldif_base64_valid(const char *text)
{
	gsize len = strlen(text), pad = 0;

	if (len % 4 != 0)
		return FALSE;
	for (gsize i = 0; i < len; i++) {
		if (text[i] == '=') {
			pad++;
			continue;
		}
		if (pad > 0 || !(g_ascii_isalnum(text[i]) || text[i] == '+' || text[i] == '/'))
			return FALSE;
	}
	return pad <= 2;
}

/*
 * Split "name: value", "name:: base64" into a lower-case name and a value.
 * *value_r is NULL (and the call succeeds) for a binary value holding a
 * NUL byte, which no mail attribute can use.
 */
static gboolean
ldif_attribute_line(LdifReader *r, const char *text, guint line, char **name_r,
		    char **value_r, GError **error)
{
	const char *colon = strchr(text, ':');
	const char *value;
	g_autofree char *name = NULL;

	*name_r = *value_r = NULL;
	if (colon == NULL) {
		ldif_fail(error, r->path, line, "expected \"name: value\", got \"%.40s%s\"",
			  text, strlen(text) > 40 ? "..." : "");
		return FALSE;
	}
	name = ldif_attribute_name(text, (gsize)(colon - text));
	if (name == NULL) {
		ldif_fail(error, r->path, line, "invalid attribute name \"%.*s\"",
			  (int)MIN(colon - text, 64), text);
		return FALSE;
	}
	value = colon + 1;
	if (*value == '<') {
		ldif_fail(error, r->path, line, "attribute \"%s\": values by URL (\":<\") are "
			  "not supported; write the value itself", name);
		return FALSE;
	}
	if (*value == ':') {
		g_autofree char *encoded = g_strstrip(g_strdup(value + 1));
		g_autofree guchar *decoded = NULL;
		gsize len = 0;

		if (!ldif_base64_valid(encoded)) {
			ldif_fail(error, r->path, line, "attribute \"%s\": invalid base64 value",
				  name);
			return FALSE;
		}
		decoded = *encoded != '\0' ? g_base64_decode(encoded, &len) : NULL;
		if (decoded == NULL)
			*value_r = g_strdup("");
		else if (memchr(decoded, '\0', len) == NULL)
			*value_r = g_strndup((const char *)decoded, len);
	} else {
		while (*value == ' ')
			value++;
		/* Trailing spaces are invisible in an editor; base64 keeps them. */
		*value_r = g_strchomp(g_strdup(value));
	}
	*name_r = g_steal_pointer(&name);
	return TRUE;
}

static void
ldif_record_add(LdifRecord *record, char *name, char *value)
{
	GPtrArray *values = g_hash_table_lookup(record->values, name);

	if (values == NULL) {
		values = g_ptr_array_new_with_free_func(g_free);
		g_hash_table_insert(record->values, g_strdup(name), values);
	}
	g_ptr_array_add(values, value);
}

static gboolean
ldif_record_start(LdifReader *r, const char *name, char *value, guint line,
		  LdifRecord **record_r, GError **error)
{
	LdifRecord *record;

	if (strcmp(name, "dn") != 0) {
		ldif_fail(error, r->path, line, "expected \"dn:\" to start an entry, got \"%s:\"",
			  name);
		return FALSE;
	}
	if (value == NULL || *g_strstrip(value) == '\0') {
		ldif_fail(error, r->path, line, "empty DN");
		return FALSE;
	}
	record = g_new0(LdifRecord, 1);
	record->dn = g_strdup(value);
	record->line = line;
	record->values = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					       (GDestroyNotify)g_ptr_array_unref);
	*record_r = record;
	return TRUE;
}

/* Parse the whole text into records (LdifRecord *). */
static GPtrArray *
ldif_parse(const char *path, const char *text, gsize len, GError **error)
{
	LdifReader r = { .path = path, .text = text, .len = len, .pos = 0, .line = 0 };
	g_autoptr(GPtrArray) records = g_ptr_array_new_with_free_func((GDestroyNotify)ldif_record_free);
	g_autoptr(GString) buf = g_string_new(NULL);
	LdifRecord *current = NULL;
	gboolean version_allowed = TRUE;
	guint line = 0;
	const char *nul = memchr(text, '\0', len);

	if (nul != NULL) {
		guint at = 1;

		for (const char *p = text; p < nul; p++)
			at += *p == '\n';
		ldif_fail(error, path, at, "NUL byte in the file");
		return NULL;
	}
	for (;;) {
		g_autofree char *name = NULL;
		g_autofree char *value = NULL;
		GError *local = NULL;

		if (!ldif_logical_line(&r, buf, &line, &local)) {
			if (local != NULL) {
				g_propagate_error(error, local);
				goto fail;
			}
			break;
		}
		if (buf->len == 0) {
			if (current != NULL)
				g_ptr_array_add(records, g_steal_pointer(&current));
			continue;
		}
		if (buf->str[0] == '#')
			continue;
		if (!ldif_attribute_line(&r, buf->str, line, &name, &value, error))
			goto fail;
		if (current == NULL && version_allowed && strcmp(name, "version") == 0) {
			version_allowed = FALSE;
			if (value == NULL || strcmp(value, "1") != 0) {
				ldif_fail(error, path, line, "unsupported LDIF version \"%s\" "
					  "(expected 1)", value != NULL ? value : "");
				goto fail;
			}
			continue;
		}
		version_allowed = FALSE;
		if (current == NULL) {
			if (!ldif_record_start(&r, name, value, line, &current, error))
				goto fail;
			continue;
		}
		if (strcmp(name, "dn") == 0) {
			ldif_fail(error, path, line, "a second \"dn:\" in one entry (entries are "
				  "separated by an empty line)");
			goto fail;
		}
		if (strcmp(name, "changetype") == 0 || strcmp(name, "control") == 0) {
			ldif_fail(error, path, line, "change records (\"%s:\") are not supported: "
				  "the directory file holds entries only", name);
			goto fail;
		}
		if (value != NULL)
			ldif_record_add(current, name, g_steal_pointer(&value));
	}
	if (current != NULL)
		g_ptr_array_add(records, current);
	return g_steal_pointer(&records);
fail:
	if (current != NULL)
		ldif_record_free(current);
	return NULL;
}

/* The record's values as the API wants them: name -> GStrv. */
static GHashTable *
ldif_record_attributes(LdifRecord *record)
{
	GHashTable *attributes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
						       (GDestroyNotify)g_strfreev);
	GHashTableIter iter;
	gpointer key, value;

	g_hash_table_iter_init(&iter, record->values);
	while (g_hash_table_iter_next(&iter, &key, &value)) {
		GPtrArray *values = value;
		char **strv = g_new0(char *, values->len + 1);

		for (guint i = 0; i < values->len; i++)
			strv[i] = g_strdup(g_ptr_array_index(values, i));
		g_hash_table_insert(attributes, g_strdup(key), strv);
	}
	return attributes;
}

/* ---------------------------------------------------------------------- */
/* One loaded generation. */

typedef struct {
	gint refcount;
	GPtrArray *entries;      /* ImtaDirEntry *, in file order (owned) */
	GPtrArray *entry_dns;    /* their normalised DNs, same order */
	GHashTable *by_dn;       /* normalised DN -> ImtaDirEntry (borrowed) */
	GHashTable *by_address;  /* normalised address -> GPtrArray of borrowed entries */
	GHashTable *domains;     /* domain name -> ImtaDirDomain (owned) */
} LdifData;

typedef struct {
	char *base;              /* normalised base DN */
	ImtaDirDomain *domain;   /* borrowed from LdifData.domains */
} DomainScope;

static void
ldif_data_unref(LdifData *data)
{
	if (data == NULL || !g_atomic_int_dec_and_test(&data->refcount))
		return;
	g_hash_table_unref(data->by_dn);
	g_hash_table_unref(data->by_address);
	g_hash_table_unref(data->domains);
	g_ptr_array_unref(data->entry_dns);
	g_ptr_array_unref(data->entries);
	g_free(data);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(LdifData, ldif_data_unref)

static LdifData *
ldif_data_new(void)
{
	LdifData *data = g_new0(LdifData, 1);

	data->refcount = 1;
	data->entries = g_ptr_array_new_with_free_func((GDestroyNotify)imta_dir_entry_unref);
	data->entry_dns = g_ptr_array_new_with_free_func(g_free);
	data->by_dn = g_hash_table_new(g_str_hash, g_str_equal);
	data->by_address = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
						 (GDestroyNotify)g_ptr_array_unref);
	data->domains = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					      (GDestroyNotify)imta_dir_domain_unref);
	return data;
}

static void
domain_scope_free(DomainScope *scope)
{
	g_free(scope->base);
	g_free(scope);
}

/* Register the domain names of `record`, if it describes a domain. */
static gboolean
ldif_add_domain(LdifData *data, const char *path, LdifRecord *record, GHashTable *attributes,
		GHashTable *domain_lines, GPtrArray *scopes, GError **error)
{
	g_auto(GStrv) names = imta_dir_domain_names(record->dn, attributes);
	ImtaDirDomain *first = NULL;

	for (guint i = 0; names != NULL && names[i] != NULL; i++) {
		g_autoptr(GError) local = NULL;
		ImtaDirDomain *domain;
		gpointer other;

		if (g_hash_table_lookup_extended(domain_lines, names[i], NULL, &other)) {
			ImtaSourcePos pos = { .file = path, .line = record->line };

			imta_set_error_at(error, IMTA_CONFIG_ERROR_DUPLICATE, &pos,
					  "domain \"%s\" is already defined at line %u", names[i],
					  GPOINTER_TO_UINT(other));
			return FALSE;
		}
		domain = imta_dir_domain_build(names[i], record->dn, attributes, &local);
		if (domain == NULL) {
			ldif_fail(error, path, record->line, "entry \"%s\": %s", record->dn,
				  local->message);
			return FALSE;
		}
		g_hash_table_insert(domain_lines, g_strdup(names[i]),
				    GUINT_TO_POINTER(record->line));
		g_hash_table_insert(data->domains, g_strdup(names[i]), domain);
		if (first == NULL)
			first = domain;
	}
	if (first != NULL) {
		DomainScope *scope = g_new0(DomainScope, 1);

		scope->base = imta_dir_dn_normalize(first->base_dn);
		scope->domain = first;
		g_ptr_array_add(scopes, scope);
	}
	return TRUE;
}

/* The domain whose base DN is the closest ancestor of `dn`. */
static const ImtaDirDomain *
ldif_domain_of(GPtrArray *scopes, const char *dn)
{
	const DomainScope *best = NULL;

	for (guint i = 0; i < scopes->len; i++) {
		const DomainScope *scope = g_ptr_array_index(scopes, i);

		if (imta_dir_dn_in_scope(dn, scope->base, IMTA_DIR_SCOPE_SUBTREE) &&
		    (best == NULL || strlen(scope->base) > strlen(best->base)))
			best = scope;
	}
	return best != NULL ? best->domain : NULL;
}

static void
ldif_index_address(LdifData *data, const char *address, ImtaDirEntry *entry)
{
	g_autofree char *key = imta_dir_address_normalize(address);
	GPtrArray *list;

	if (key == NULL)
		return;
	list = g_hash_table_lookup(data->by_address, key);
	if (list == NULL) {
		list = g_ptr_array_new();
		g_hash_table_insert(data->by_address, g_steal_pointer(&key), list);
	}
	/* One entry may list an address twice (mail and alternate). */
	if (list->len == 0 || g_ptr_array_index(list, list->len - 1) != entry)
		g_ptr_array_add(list, entry);
}

static void
ldif_index_entry(LdifData *data, ImtaDirEntry *entry, char *dn_norm)
{
	char **mails = g_hash_table_lookup(entry->attributes, "mail");
	GStrv lists[] = { mails, entry->alternate_addresses, entry->equivalent_addresses };

	g_ptr_array_add(data->entries, entry);
	g_ptr_array_add(data->entry_dns, dn_norm);
	g_hash_table_insert(data->by_dn, dn_norm, entry);
	for (guint l = 0; l < G_N_ELEMENTS(lists); l++)
		for (guint i = 0; lists[l] != NULL && lists[l][i] != NULL; i++)
			ldif_index_address(data, lists[l][i], entry);
}

static LdifData *
ldif_build(const char *path, GPtrArray *records, GError **error)
{
	g_autoptr(LdifData) data = ldif_data_new();
	g_autoptr(GHashTable) dn_lines = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
							      NULL);
	g_autoptr(GHashTable) domain_lines = g_hash_table_new_full(g_str_hash, g_str_equal,
								  g_free, NULL);
	g_autoptr(GPtrArray) scopes = g_ptr_array_new_with_free_func((GDestroyNotify)domain_scope_free);
	g_autoptr(GPtrArray) attributes = g_ptr_array_new_with_free_func((GDestroyNotify)g_hash_table_unref);

	/* First pass: unique DNs and the domains, which later entries need. */
	for (guint i = 0; i < records->len; i++) {
		LdifRecord *record = g_ptr_array_index(records, i);
		char *norm = imta_dir_dn_normalize(record->dn);
		gpointer other;

		if (g_hash_table_lookup_extended(dn_lines, norm, NULL, &other)) {
			ImtaSourcePos pos = { .file = path, .line = record->line };

			imta_set_error_at(error, IMTA_CONFIG_ERROR_DUPLICATE, &pos,
					  "duplicate entry \"%s\" (first defined at line %u)",
					  record->dn, GPOINTER_TO_UINT(other));
			g_free(norm);
			return NULL;
		}
		g_hash_table_insert(dn_lines, norm, GUINT_TO_POINTER(record->line));
		g_ptr_array_add(attributes, ldif_record_attributes(record));
		if (!ldif_add_domain(data, path, record, g_ptr_array_index(attributes, i),
				     domain_lines, scopes, error))
			return NULL;
	}
	/* Second pass: the mail users and groups. */
	for (guint i = 0; i < records->len; i++) {
		LdifRecord *record = g_ptr_array_index(records, i);
		GHashTable *attrs = g_ptr_array_index(attributes, i);
		g_autoptr(GError) local = NULL;
		g_autofree char *norm = NULL;
		ImtaDirEntry *entry;
		ImtaDirKind kind;

		if (!imta_dir_attributes_kind(attrs, &kind))
			continue;
		norm = imta_dir_dn_normalize(record->dn);
		entry = imta_dir_entry_build(record->dn, kind, attrs,
					     ldif_domain_of(scopes, norm), &local);
		if (entry == NULL) {
			ldif_fail(error, path, record->line, "entry \"%s\": %s", record->dn,
				  local->message);
			return NULL;
		}
		ldif_index_entry(data, entry, g_steal_pointer(&norm));
	}
	return g_steal_pointer(&data);
}

/* ---------------------------------------------------------------------- */
/* The file. */

typedef struct {
	gboolean valid;
	dev_t dev;
	ino_t ino;
	goffset size;
	gint64 mtime_ns;
} FileStamp;

static gboolean
ldif_stamp(const char *path, FileStamp *stamp_r, GError **error)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		int saved = errno;

		imta_set_error_at(error, IMTA_CONFIG_ERROR_IO, NULL,
				  "cannot read directory file \"%s\": %s", path, g_strerror(saved));
		return FALSE;
	}
	stamp_r->valid = TRUE;
	stamp_r->dev = st.st_dev;
	stamp_r->ino = st.st_ino;
	stamp_r->size = st.st_size;
	stamp_r->mtime_ns = (gint64)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	return TRUE;
}

static gboolean
ldif_stamp_equal(const FileStamp *a, const FileStamp *b)
{
	return a->valid && b->valid && a->dev == b->dev && a->ino == b->ino &&
	       a->size == b->size && a->mtime_ns == b->mtime_ns;
}

static LdifData *
ldif_load(const char *path, FileStamp *stamp_r, GError **error)
{
	g_autofree char *text = NULL;
	g_autoptr(GPtrArray) records = NULL;
	g_autoptr(GError) local = NULL;
	gsize len = 0;

	/* The stamp is taken before reading: a change racing with the read
	 * only causes one more reload later. */
	if (!ldif_stamp(path, stamp_r, error))
		return NULL;
	if (!g_file_get_contents(path, &text, &len, &local)) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_IO, NULL,
				  "cannot read directory file \"%s\": %s", path, local->message);
		return NULL;
	}
	records = ldif_parse(path, text, len, error);
	if (records == NULL)
		return NULL;
	return ldif_build(path, records, error);
}

/* ---------------------------------------------------------------------- */
/* The backend. */

typedef struct {
	ImtaDirBackend base;
	char *path;
	GMutex data_lock;        /* guards `data` */
	LdifData *data;
	GMutex reload_lock;      /* one reloader at a time; guards the rest */
	FileStamp loaded;        /* the file `data` came from */
	FileStamp failed;        /* the last version that failed to load */
	gboolean checked;        /* last_check is set */
	gint64 last_check;
	gboolean missing;        /* the file was gone at the last check */
} LdifBackend;

static LdifData *
ldif_data_get(LdifBackend *ldif)
{
	LdifData *data;

	g_mutex_lock(&ldif->data_lock);
	data = ldif->data;
	g_atomic_int_inc(&data->refcount);
	g_mutex_unlock(&ldif->data_lock);
	return data;
}

static gboolean
ldif_refresh(ImtaDirBackend *backend, gint64 now)
{
	LdifBackend *ldif = (LdifBackend *)backend;
	g_autoptr(GError) error = NULL;
	FileStamp stamp = { 0 };
	LdifData *fresh, *old;

	/* Another thread is checking or reloading: use what is loaded. */
	if (!g_mutex_trylock(&ldif->reload_lock))
		return FALSE;
	if (ldif->checked && now - ldif->last_check < G_USEC_PER_SEC)
		goto unchanged;
	ldif->checked = TRUE;
	ldif->last_check = now;
	if (!ldif_stamp(ldif->path, &stamp, &error)) {
		if (!ldif->missing)
			imta_log(IMTA_LOG_WARNING, "%s; keeping the directory data already loaded",
				 error->message);
		ldif->missing = TRUE;
		goto unchanged;
	}
	ldif->missing = FALSE;
	if (ldif_stamp_equal(&stamp, &ldif->loaded) || ldif_stamp_equal(&stamp, &ldif->failed))
		goto unchanged;
	fresh = ldif_load(ldif->path, &stamp, &error);
	if (fresh == NULL) {
		imta_log(IMTA_LOG_WARNING, "directory reload failed: %s; keeping the previous data",
			 error->message);
		ldif->failed = stamp;
		goto unchanged;
	}
	g_mutex_lock(&ldif->data_lock);
	old = ldif->data;
	ldif->data = fresh;
	g_mutex_unlock(&ldif->data_lock);
	ldif_data_unref(old);
	ldif->loaded = stamp;
	g_mutex_unlock(&ldif->reload_lock);
	return TRUE;
unchanged:
	g_mutex_unlock(&ldif->reload_lock);
	return FALSE;
}

static ImtaDirStatus
ldif_lookup_address(ImtaDirBackend *backend, const char *address, const char *base_dn,
		    GPtrArray **entries_r, GError **error)
{
	g_autoptr(LdifData) data = ldif_data_get((LdifBackend *)backend);
	g_autofree char *base = base_dn != NULL ? imta_dir_dn_normalize(base_dn) : NULL;
	GPtrArray *list = g_hash_table_lookup(data->by_address, address);
	GPtrArray *found;

	*entries_r = NULL;
	if (list == NULL)
		return IMTA_DIR_NOT_FOUND;
	found = g_ptr_array_new_with_free_func((GDestroyNotify)imta_dir_entry_unref);
	for (guint i = 0; i < list->len; i++) {
		ImtaDirEntry *entry = g_ptr_array_index(list, i);
		g_autofree char *dn = NULL;

		if (base != NULL) {
			dn = imta_dir_dn_normalize(entry->dn);
			if (!imta_dir_dn_in_scope(dn, base, IMTA_DIR_SCOPE_SUBTREE))
				continue;
		}
		g_ptr_array_add(found, imta_dir_entry_ref(entry));
	}
	if (found->len == 0) {
		g_ptr_array_unref(found);
		return IMTA_DIR_NOT_FOUND;
	}
	*entries_r = found;
	return IMTA_DIR_FOUND;
}

static ImtaDirStatus
ldif_lookup_dn(ImtaDirBackend *backend, const char *dn, ImtaDirEntry **entry_r,
	       GError **error)
{
	g_autoptr(LdifData) data = ldif_data_get((LdifBackend *)backend);
	g_autofree char *norm = imta_dir_dn_normalize(dn);
	ImtaDirEntry *entry = g_hash_table_lookup(data->by_dn, norm);

	*entry_r = entry != NULL ? imta_dir_entry_ref(entry) : NULL;
	return entry != NULL ? IMTA_DIR_FOUND : IMTA_DIR_NOT_FOUND;
}

static ImtaDirStatus
ldif_lookup_domain(ImtaDirBackend *backend, const char *domain, ImtaDirDomain **domain_r,
		   GError **error)
{
	g_autoptr(LdifData) data = ldif_data_get((LdifBackend *)backend);
	ImtaDirDomain *found = g_hash_table_lookup(data->domains, domain);

	*domain_r = found != NULL ? imta_dir_domain_ref(found) : NULL;
	return found != NULL ? IMTA_DIR_FOUND : IMTA_DIR_NOT_FOUND;
}

static ImtaDirStatus
ldif_search(ImtaDirBackend *backend, const char *base_dn, ImtaDirScope scope,
	    const ImtaLdapFilter *filter, guint size_limit, GPtrArray **entries_r,
	    GError **error)
{
	g_autoptr(LdifData) data = ldif_data_get((LdifBackend *)backend);
	g_autofree char *base = imta_dir_dn_normalize(base_dn);
	GPtrArray *found = g_ptr_array_new_with_free_func((GDestroyNotify)imta_dir_entry_unref);

	for (guint i = 0; i < data->entries->len; i++) {
		ImtaDirEntry *entry = g_ptr_array_index(data->entries, i);

		if (size_limit > 0 && found->len >= size_limit)
			break;
		if (!imta_dir_dn_in_scope(g_ptr_array_index(data->entry_dns, i), base, scope))
			continue;
		if (imta_ldap_filter_match(filter, entry->attributes))
			g_ptr_array_add(found, imta_dir_entry_ref(entry));
	}
	*entries_r = found;
	return IMTA_DIR_FOUND;
}

static void
ldif_free(ImtaDirBackend *backend)
{
	LdifBackend *ldif = (LdifBackend *)backend;

	ldif_data_unref(ldif->data);
	g_mutex_clear(&ldif->data_lock);
	g_mutex_clear(&ldif->reload_lock);
	g_free(ldif->path);
	g_free(ldif);
}

static const ImtaDirBackendOps ldif_ops = {
	.name = "ldif",
	.refresh = ldif_refresh,
	.lookup_address = ldif_lookup_address,
	.lookup_dn = ldif_lookup_dn,
	.lookup_domain = ldif_lookup_domain,
	.search = ldif_search,
	.free = ldif_free,
};

ImtaDirBackend *
imta_dir_ldif_backend_new(const char *path, GError **error)
{
	LdifBackend *ldif;
	FileStamp stamp = { 0 };
	LdifData *data = ldif_load(path, &stamp, error);

	if (data == NULL)
		return NULL;
	ldif = g_new0(LdifBackend, 1);
	ldif->base.ops = &ldif_ops;
	ldif->path = g_strdup(path);
	g_mutex_init(&ldif->data_lock);
	g_mutex_init(&ldif->reload_lock);
	ldif->data = data;
	ldif->loaded = stamp;
	return &ldif->base;
}
