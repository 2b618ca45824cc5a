/*
 * mboxlist.c - the system area: one small text record per user (its
 * partition, folders with their UIDVALIDITY and totals, quota state),
 * each replaced atomically under a per-user lock; usage and quota state;
 * snapshots (hard-link copies of the record tree) and their restore.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <glib.h>

#include <imta/store.h>

#include "store_private.h"

#define LIST_MAGIC "IMTA-MBOXLIST 1"
#define LIST_RECORD_MAX (1024 * 1024)
#define LIST_FOLDERS_MAX 100000
#define LIST_LOCK_PREFIX ".lock."

static void
list_folder_free(gpointer p)
{
	StoreListFolder *f = p;

	g_free(f->name);
	g_free(f);
}

void
store_list_record_free(StoreListRecord *rec)
{
	if (rec == NULL)
		return;
	g_free(rec->partition);
	g_ptr_array_unref(rec->folders);
	g_free(rec);
}

StoreListRecord *
store_list_record_new(const char *partition)
{
	StoreListRecord *rec = g_new0(StoreListRecord, 1);

	rec->partition = g_strdup(partition);
	rec->folders = g_ptr_array_new_with_free_func(list_folder_free);
	return rec;
}

static gint
list_folder_cmp(gconstpointer a, gconstpointer b)
{
	const StoreListFolder *x = *(StoreListFolder *const *)a;
	const StoreListFolder *y = *(StoreListFolder *const *)b;

	return strcmp(x->name, y->name);
}

void
store_list_record_sort(StoreListRecord *rec)
{
	g_ptr_array_sort(rec->folders, list_folder_cmp);
}

StoreListFolder *
store_list_record_folder(StoreListRecord *rec, const char *name)
{
	for (guint i = 0; i < rec->folders->len; i++) {
		StoreListFolder *f = rec->folders->pdata[i];

		if (strcmp(f->name, name) == 0)
			return f;
	}
	return NULL;
}

void
store_list_record_set_folder(StoreListRecord *rec, const char *name, guint32 uidvalidity,
			     const StoreIdxHeader *h)
{
	StoreListFolder *f = store_list_record_folder(rec, name);

	if (f == NULL) {
		f = g_new0(StoreListFolder, 1);
		f->name = g_strdup(name);
		g_ptr_array_add(rec->folders, f);
		g_ptr_array_sort(rec->folders, list_folder_cmp);
	}
	f->uidvalidity = uidvalidity;
	if (h != NULL) {
		f->modseq = h->modseq;
		f->messages = h->count;
		f->bytes = h->bytes;
	}
}

void
store_list_record_remove_folder(StoreListRecord *rec, const char *name)
{
	StoreListFolder *f = store_list_record_folder(rec, name);

	if (f != NULL)
		g_ptr_array_remove(rec->folders, f);
}

guint32
store_list_next_uidvalidity(const StoreListRecord *rec)
{
	guint32 v = (guint32)time(NULL);

	for (guint i = 0; rec != NULL && i < rec->folders->len; i++) {
		const StoreListFolder *f = rec->folders->pdata[i];

		if (f->uidvalidity >= v && f->uidvalidity < G_MAXUINT32)
			v = f->uidvalidity + 1;
	}
	return v;
}

/* ---- the text format ---------------------------------------------------- */

char *
store_list_record_format(const StoreListRecord *rec)
{
	GString *out = g_string_new(LIST_MAGIC "\n");

	g_string_append_printf(out, "partition %s\n", rec->partition);
	g_string_append_printf(out, "quota %" G_GINT64_FORMAT " %" G_GINT64_FORMAT "\n",
			       rec->warned_at, rec->over_since);
	for (guint i = 0; i < rec->folders->len; i++) {
		const StoreListFolder *f = rec->folders->pdata[i];

		g_string_append_printf(out, "folder %u %" G_GUINT64_FORMAT " %u %"
				       G_GUINT64_FORMAT " %s\n", f->uidvalidity, f->modseq,
				       f->messages, f->bytes, f->name);
	}
	return g_string_free(out, FALSE);
}

static gboolean
list_bad(GError **error, guint line, const char *why)
{
	g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_CORRUPT,
		    "mailbox list record, line %u: %s", line, why);
	return FALSE;
}

static gboolean
list_number(const char *word, guint64 max, guint64 *out)
{
	return word != NULL && g_ascii_string_to_unsigned(word, 10, 0, max, out, NULL);
}

static gboolean
list_signed(const char *word, gint64 *out)
{
	return word != NULL && g_ascii_string_to_signed(word, 10, 0, G_MAXINT64, out, NULL);
}

static gboolean
list_parse_folder(StoreListRecord *rec, const char *rest, guint lineno, GError **error)
{
	g_auto(GStrv) w = g_strsplit(rest, " ", 5);
	guint64 v[4];
	g_autofree char *canon = NULL;
	StoreListFolder *f;

	if (g_strv_length(w) != 5 || !list_number(w[0], G_MAXUINT32, &v[0]) ||
	    !list_number(w[1], G_MAXUINT64, &v[1]) || !list_number(w[2], G_MAXUINT32, &v[2]) ||
	    !list_number(w[3], G_MAXINT64, &v[3]))
		return list_bad(error, lineno, "expected folder UIDVALIDITY MODSEQ MESSAGES BYTES NAME");
	canon = store_folder_canonical(w[4], NULL);
	if (canon == NULL || strcmp(canon, w[4]) != 0 || store_list_record_folder(rec, canon))
		return list_bad(error, lineno, "bad or repeated folder name");
	if (rec->folders->len >= LIST_FOLDERS_MAX)
		return list_bad(error, lineno, "too many folders");
	f = g_new0(StoreListFolder, 1);
	f->name = g_steal_pointer(&canon);
	f->uidvalidity = (guint32)v[0];
	f->modseq = v[1];
	f->messages = (guint32)v[2];
	f->bytes = v[3];
	g_ptr_array_add(rec->folders, f);
	return TRUE;
}

StoreListRecord *
store_list_record_parse(const char *text, gsize len, GError **error)
{
	g_autoptr(StoreListRecord) rec = store_list_record_new(NULL);
	g_autofree char *copy = NULL;
	g_auto(GStrv) lines = NULL;
	gboolean quota = FALSE;

	if (len > LIST_RECORD_MAX || memchr(text, '\0', len) != NULL) {
		list_bad(error, 0, "too large or binary");
		return NULL;
	}
	copy = g_strndup(text, len);
	lines = g_strsplit(copy, "\n", -1);
	if (lines[0] == NULL || strcmp(lines[0], LIST_MAGIC) != 0) {
		list_bad(error, 1, "expected " LIST_MAGIC);
		return NULL;
	}
	for (guint i = 1; lines[i] != NULL; i++) {
		const char *l = lines[i];

		if (l[0] == '\0' && lines[i + 1] == NULL)
			break;
		if (g_str_has_prefix(l, "partition ") && rec->partition == NULL) {
			rec->partition = g_strdup(l + 10);
		} else if (g_str_has_prefix(l, "quota ") && !quota) {
			g_auto(GStrv) w = g_strsplit(l + 6, " ", 3);

			if (g_strv_length(w) != 2 || !list_signed(w[0], &rec->warned_at) ||
			    !list_signed(w[1], &rec->over_since)) {
				list_bad(error, i + 1, "expected quota WARNED_AT OVER_SINCE");
				return NULL;
			}
			quota = TRUE;
		} else if (g_str_has_prefix(l, "folder ")) {
			if (!list_parse_folder(rec, l + 7, i + 1, error))
				return NULL;
		} else {
			list_bad(error, i + 1, "unexpected line");
			return NULL;
		}
	}
	if (rec->partition == NULL || rec->partition[0] == '\0' || !quota ||
	    store_list_record_folder(rec, "INBOX") == NULL) {
		list_bad(error, 0, "partition, quota or INBOX missing");
		return NULL;
	}
	g_ptr_array_sort(rec->folders, list_folder_cmp);
	return g_steal_pointer(&rec);
}

/* ---- files -------------------------------------------------------------- */

static char *
list_dir(ImtaStore *store, const char *userid)
{
	g_autofree char *hash = imta_store_hash_dir(userid);

	return g_build_filename(store->mboxlist, hash, NULL);
}

char *
store_list_path(ImtaStore *store, const char *userid)
{
	g_autofree char *dir = list_dir(store, userid);

	return g_strdup_printf("%s/=%s", dir, userid);
}

int
store_list_lock(ImtaStore *store, const char *userid, GError **error)
{
	g_autofree char *dir = list_dir(store, userid);
	/* Named by a hash so any user id fits; two users sharing a lock
	 * only wait for each other. */
	g_autofree char *path = g_strdup_printf("%s/" LIST_LOCK_PREFIX "%08x", dir,
						store_fnv1a(userid, strlen(userid), 0x811c9dc5u));
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);

	if (fd < 0 && errno == ENOENT) {
		if (!store_mkdir_p(dir, error))
			return -1;
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	}
	if (fd < 0) {
		store_set_io_error(error, "open", path, errno);
		return -1;
	}
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int errnum = errno;

			close(fd);
			store_set_io_error(error, "lock", path, errnum);
			return -1;
		}
	}
	return fd;
}

void
store_list_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

StoreListRecord *
store_list_read(ImtaStore *store, const char *userid, GError **error)
{
	g_autofree char *path = store_list_path(store, userid);
	g_autofree char *text = NULL;
	g_autoptr(GError) local = NULL;
	gsize len = 0;
	StoreListRecord *rec;

	if (!g_file_get_contents(path, &text, &len, &local)) {
		if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND,
				    "%s has no mailbox list record", userid);
		else
			g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_IO, "%s",
				    local->message);
		return NULL;
	}
	rec = store_list_record_parse(text, len, &local);
	if (rec == NULL)
		g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_CORRUPT, "%s: %s", path,
			    local->message);
	return rec;
}

gboolean
store_list_write(ImtaStore *store, const char *userid, const StoreListRecord *rec,
		 gboolean sync, GError **error)
{
	g_autofree char *path = store_list_path(store, userid);
	g_autofree char *text = store_list_record_format(rec);

	return store_write_atomic(store, path, text, strlen(text), sync, error);
}

gboolean
store_list_remove(ImtaStore *store, const char *userid, GError **error)
{
	g_autofree char *path = store_list_path(store, userid);

	if (unlink(path) < 0 && errno != ENOENT)
		return store_set_io_error(error, "remove", path, errno);
	return TRUE;
}

/* The header of a folder, read under a shared lock. */
static gboolean
list_folder_header(const char *dir, StoreIdxHeader *h, GError **error)
{
	g_autoptr(StoreFolder) folder = store_folder_open(dir, FALSE, error);

	if (folder == NULL)
		return FALSE;
	*h = folder->header;
	return TRUE;
}

StoreListRecord *
store_list_rebuild(ImtaStore *store, const char *userid, const StoreListRecord *old,
		   GError **error)
{
	g_autofree char *partition = NULL;
	g_autofree char *user_dir = store_find_user(store, userid, &partition, error);
	g_autoptr(GPtrArray) names = NULL;
	g_autoptr(StoreListRecord) rec = NULL;

	if (user_dir == NULL)
		return NULL;
	names = store_walk_folders(user_dir, error);
	if (names == NULL)
		return NULL;
	rec = store_list_record_new(partition);
	if (old != NULL) {
		rec->warned_at = old->warned_at;
		rec->over_since = old->over_since;
	}
	for (guint i = 0; i < names->len; i++) {
		g_autofree char *dir = store_folder_dir(user_dir, names->pdata[i]);
		StoreIdxHeader h;

		/* A damaged folder counts as empty until reconstruct repairs it. */
		if (!list_folder_header(dir, &h, NULL))
			memset(&h, 0, sizeof h);
		store_list_record_set_folder(rec, names->pdata[i], h.uidvalidity, &h);
	}
	return g_steal_pointer(&rec);
}

/* Bring the totals of folders changed since the record was written up to
 * date: an update interrupted between a folder and its record is
 * finished here.  FALSE when the record no longer matches the folders. */
static gboolean
list_refresh(ImtaStore *store, const char *userid, StoreListRecord *rec, gboolean *changed)
{
	const char *ppath = imta_store_partition_path(store, rec->partition);
	g_autofree char *user_dir = NULL;

	if (ppath == NULL)
		return FALSE;
	user_dir = store_user_dir_on(store, userid, ppath);
	for (guint i = 0; i < rec->folders->len; i++) {
		StoreListFolder *f = rec->folders->pdata[i];
		g_autofree char *dir = store_folder_dir(user_dir, f->name);
		StoreIdxHeader h;

		if (!list_folder_header(dir, &h, NULL) || h.uidvalidity != f->uidvalidity)
			return FALSE;
		if (h.modseq != f->modseq) {
			f->modseq = h.modseq;
			f->messages = h.count;
			f->bytes = h.bytes;
			*changed = TRUE;
		}
	}
	return TRUE;
}

StoreListRecord *
store_list_load_locked(ImtaStore *store, const char *userid, GError **error)
{
	g_autoptr(GError) local = NULL;
	g_autoptr(StoreListRecord) rec = store_list_read(store, userid, &local);
	gboolean changed = FALSE;

	if (rec == NULL && local->code == IMTA_STORE_ERROR_IO) {
		g_propagate_error(error, g_steal_pointer(&local));
		return NULL;
	}
	if (rec != NULL && list_refresh(store, userid, rec, &changed)) {
		if (changed && !store_list_write(store, userid, rec, FALSE, error))
			return NULL;
		return g_steal_pointer(&rec);
	}
	{
		StoreListRecord *fresh = store_list_rebuild(store, userid, rec, error);

		if (fresh == NULL || !store_list_write(store, userid, fresh, FALSE, error)) {
			store_list_record_free(fresh);
			return NULL;
		}
		return fresh;
	}
}

/* ---- usage and quota state ---------------------------------------------- */

gboolean
imta_store_get_usage(ImtaStore *store, const char *userid, ImtaStoreUsage *usage_r,
		     GError **error)
{
	g_autoptr(StoreListRecord) rec = NULL;
	int lock;

	memset(usage_r, 0, sizeof *usage_r);
	if (!store_check_userid(userid, error))
		return FALSE;
	lock = store_list_lock(store, userid, error);
	if (lock < 0)
		return FALSE;
	rec = store_list_load_locked(store, userid, error);
	store_list_unlock(lock);
	if (rec == NULL)
		return FALSE;
	for (guint i = 0; i < rec->folders->len; i++) {
		const StoreListFolder *f = rec->folders->pdata[i];

		usage_r->bytes += (gint64)f->bytes;
		usage_r->messages += f->messages;
	}
	usage_r->warned_at = rec->warned_at;
	usage_r->over_since = rec->over_since;
	return TRUE;
}

gboolean
imta_store_set_quota_state(ImtaStore *store, const char *userid, gint64 warned_at,
			   gint64 over_since, GError **error)
{
	g_autoptr(StoreListRecord) rec = NULL;
	gboolean ok;
	int lock;

	if (!store_check_userid(userid, error))
		return FALSE;
	if (warned_at < 0 || over_since < 0) {
		g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_INVALID,
			    "quota times must not be negative");
		return FALSE;
	}
	lock = store_list_lock(store, userid, error);
	if (lock < 0)
		return FALSE;
	rec = store_list_load_locked(store, userid, error);
	ok = rec != NULL;
	if (ok) {
		rec->warned_at = warned_at;
		rec->over_since = over_since;
		ok = store_list_write(store, userid, rec, TRUE, error);
	}
	store_list_unlock(lock);
	return ok;
}

/* ---- snapshots ---------------------------------------------------------- */

typedef gboolean (*ListVisit)(const char *hash, const char *entry, gpointer data,
			      GError **error);

/* Every record file of a tree laid out like ROOT/mboxlist: HH/HH/=USER. */
static gboolean
list_walk(const char *top, ListVisit visit, gpointer data, GError **error)
{
	g_autoptr(GDir) d1 = g_dir_open(top, 0, NULL);
	const char *a, *b, *c;

	while (d1 != NULL && (a = g_dir_read_name(d1)) != NULL) {
		g_autofree char *p1 = g_build_filename(top, a, NULL);
		g_autoptr(GDir) d2 = NULL;

		if (strlen(a) != 2 || !g_ascii_isxdigit(a[0]) || !g_ascii_isxdigit(a[1]))
			continue;
		d2 = g_dir_open(p1, 0, NULL);
		while (d2 != NULL && (b = g_dir_read_name(d2)) != NULL) {
			g_autofree char *p2 = g_build_filename(p1, b, NULL);
			g_autofree char *hash = g_strdup_printf("%s/%s", a, b);
			g_autoptr(GDir) d3 = NULL;

			if (strlen(b) != 2 || !g_ascii_isxdigit(b[0]) || !g_ascii_isxdigit(b[1]))
				continue;
			d3 = g_dir_open(p2, 0, NULL);
			while (d3 != NULL && (c = g_dir_read_name(d3)) != NULL)
				if (c[0] == '=' && !visit(hash, c, data, error))
					return FALSE;
		}
	}
	return TRUE;
}

typedef struct {
	const char *from;
	const char *to;
} LinkWalk;

static gboolean
snapshot_link_one(const char *hash, const char *entry, gpointer data, GError **error)
{
	LinkWalk *w = data;
	g_autofree char *src = g_build_filename(w->from, hash, entry, NULL);
	g_autofree char *dir = g_build_filename(w->to, hash, NULL);
	g_autofree char *dst = g_build_filename(dir, entry, NULL);

	if (!store_mkdir_p(dir, error))
		return FALSE;
	if (link(src, dst) < 0)
		return store_set_io_error(error, "link", dst, errno);
	return TRUE;
}

gboolean
imta_store_snapshot(ImtaStore *store, char **name_r, GError **error)
{
	g_autoptr(GDateTime) now = g_date_time_new_now_utc();
	g_autofree char *base = g_date_time_format(now, "%Y%m%dT%H%M%SZ");
	g_autofree char *name = g_strdup(base);
	g_autofree char *tmp = NULL;
	g_autofree char *final = NULL;
	LinkWalk w;

	for (guint i = 2; ; i++) {
		g_free(final);
		final = g_build_filename(store->snapshots, name, NULL);
		if (!g_file_test(final, G_FILE_TEST_EXISTS))
			break;
		if (i > 1000) {
			g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_EXISTS,
				    "too many snapshots named %s", base);
			return FALSE;
		}
		g_free(name);
		name = g_strdup_printf("%s-%u", base, i);
	}
	tmp = g_strdup_printf("%s/.tmp.%s", store->snapshots, name);
	if (!store_rm_rf(tmp, error) || !store_mkdir_p(tmp, error))
		return FALSE;
	w.from = store->mboxlist;
	w.to = tmp;
	if (!list_walk(store->mboxlist, snapshot_link_one, &w, error) ||
	    !store_syncfs(store->snapshots, error)) {
		store_rm_rf(tmp, NULL);
		return FALSE;
	}
	if (rename(tmp, final) < 0) {
		store_set_io_error(error, "rename", tmp, errno);
		store_rm_rf(tmp, NULL);
		return FALSE;
	}
	if (!store_fsync_path(store->snapshots, TRUE, error))
		return FALSE;
	if (name_r != NULL)
		*name_r = g_steal_pointer(&name);
	return TRUE;
}

static gint
list_cmp_str(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

GPtrArray *
imta_store_list_snapshots(ImtaStore *store, GError **error)
{
	g_autoptr(GError) local = NULL;
	g_autoptr(GDir) dir = g_dir_open(store->snapshots, 0, &local);
	GPtrArray *out;
	const char *e;

	if (dir == NULL) {
		g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_IO, "%s", local->message);
		return NULL;
	}
	out = g_ptr_array_new_with_free_func(g_free);
	while ((e = g_dir_read_name(dir)) != NULL)
		if (e[0] != '.')
			g_ptr_array_add(out, g_strdup(e));
	g_ptr_array_sort(out, list_cmp_str);
	return out;
}

static gboolean
users_collect(const char *hash, const char *entry, gpointer data, GError **error)
{
	if (store_check_userid(entry + 1, NULL))
		g_hash_table_add(data, g_strdup(entry + 1));
	return TRUE;
}

GHashTable *
store_list_recorded_users(ImtaStore *store, GError **error)
{
	GHashTable *users = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	if (!list_walk(store->mboxlist, users_collect, users, error)) {
		g_hash_table_unref(users);
		return NULL;
	}
	return users;
}

static gboolean
restore_collect(const char *hash, const char *entry, gpointer data, GError **error)
{
	g_hash_table_add(data, g_strdup(entry + 1));
	return TRUE;
}

static char *
restore_read(const char *top, const char *userid)
{
	g_autofree char *hash = imta_store_hash_dir(userid);
	g_autofree char *file = g_strdup_printf("=%s", userid);
	g_autofree char *path = g_build_filename(top, hash, file, NULL);
	char *text = NULL;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return NULL;
	return text;
}

/* Put one user's record back: the snapshot's (quota state and folder
 * list as they were), then brought up to date with the mailboxes. */
static gboolean
restore_user(ImtaStore *store, const char *snap, const char *userid, GError **error)
{
	g_autofree char *old = restore_read(snap, userid);
	g_autofree char *cur = restore_read(store->mboxlist, userid);
	g_autoptr(StoreListRecord) rec = NULL;
	gboolean ok = TRUE;
	int lock;

	if (g_strcmp0(old, cur) == 0)
		return TRUE;
	lock = store_list_lock(store, userid, error);
	if (lock < 0)
		return FALSE;
	if (old != NULL) {
		g_autofree char *path = store_list_path(store, userid);

		ok = store_write_atomic(store, path, old, strlen(old), FALSE, error);
	} else {
		ok = store_list_remove(store, userid, error);
	}
	if (ok) {
		g_autoptr(GError) local = NULL;

		rec = store_list_load_locked(store, userid, &local);
		/* A user without a mailbox simply has no record. */
		if (rec == NULL && local->code != IMTA_STORE_ERROR_NOT_FOUND) {
			g_propagate_error(error, g_steal_pointer(&local));
			ok = FALSE;
		} else if (rec == NULL) {
			ok = store_list_remove(store, userid, error);
		}
	}
	store_list_unlock(lock);
	return ok;
}

gboolean
imta_store_restore_snapshot(ImtaStore *store, const char *name, GError **error)
{
	g_autofree char *snap = NULL;
	g_autoptr(GHashTable) users = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	GHashTableIter it;
	gpointer key;

	if (name == NULL || name[0] == '\0' || name[0] == '.' || strchr(name, '/') != NULL) {
		g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_INVALID,
			    "invalid snapshot name \"%s\"", name != NULL ? name : "");
		return FALSE;
	}
	snap = g_build_filename(store->snapshots, name, NULL);
	if (!g_file_test(snap, G_FILE_TEST_IS_DIR)) {
		g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND,
			    "no snapshot %s", name);
		return FALSE;
	}
	if (!list_walk(snap, restore_collect, users, error) ||
	    !list_walk(store->mboxlist, restore_collect, users, error))
		return FALSE;
	g_hash_table_iter_init(&it, users);
	while (g_hash_table_iter_next(&it, &key, NULL))
		if (store_check_userid(key, NULL) && !restore_user(store, snap, key, error))
			return FALSE;
	return store_syncfs(store->mboxlist, error);
}
