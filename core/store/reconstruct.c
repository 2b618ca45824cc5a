/*
 * reconstruct.c - checking the store against its files and repairing it:
 * each folder's index and cache against the message files, each user's
 * mailbox list record against the folders; leftovers of interrupted
 * deliveries and deletions are removed without being counted.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <glib.h>

#include <imta/store.h>

#include "store_private.h"

typedef struct {
	ImtaStore *store;
	gboolean check_only;
	GPtrArray *findings;
	guint problems;
} Recon;

static void G_GNUC_PRINTF(2, 3)
recon_problem(Recon *rc, const char *fmt, ...)
{
	va_list ap;
	char *line;

	va_start(ap, fmt);
	line = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	rc->problems++;
	if (rc->findings != NULL)
		g_ptr_array_add(rc->findings, line);
	else
		g_free(line);
}

typedef struct {
	guint64 size;
	gint64 mtime;
} FileInfo;

static gboolean
recon_hex2(const char *s)
{
	return strlen(s) == 2 && g_ascii_isxdigit(s[0]) && g_ascii_isxdigit(s[1]);
}

static gboolean
recon_msg_uid(const char *name, guint32 *uid_r)
{
	guint64 v;
	const char *dot = strchr(name, '.');
	g_autofree char *num = NULL;

	if (dot == NULL || strcmp(dot, ".msg") != 0 || dot == name || dot - name > 10)
		return FALSE;
	num = g_strndup(name, (gsize)(dot - name));
	if (!g_ascii_string_to_unsigned(num, 10, 1, G_MAXUINT32 - 1, &v, NULL) ||
	    num[0] == '0')
		return FALSE;
	*uid_r = (guint32)v;
	return TRUE;
}

/* The message files of a folder: uid -> FileInfo; trash of deleted
 * sub-folders is removed on the way (not a problem). */
static GHashTable *
recon_scan_files(Recon *rc, const char *dir)
{
	GHashTable *files = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *e, *f;

	while (d != NULL && (e = g_dir_read_name(d)) != NULL) {
		g_autofree char *sub = g_build_filename(dir, e, NULL);
		g_autoptr(GDir) hd = NULL;

		if (g_str_has_prefix(e, STORE_TRASH_PREFIX) && !rc->check_only) {
			store_rm_rf(sub, NULL);
			continue;
		}
		if (!recon_hex2(e) || (hd = g_dir_open(sub, 0, NULL)) == NULL)
			continue;
		while ((f = g_dir_read_name(hd)) != NULL) {
			g_autofree char *path = g_build_filename(sub, f, NULL);
			struct stat st;
			guint32 uid;
			FileInfo *info;

			if (!recon_msg_uid(f, &uid) || stat(path, &st) < 0 || !S_ISREG(st.st_mode))
				continue;
			/* Only the directory its UID maps to counts. */
			if ((uid / STORE_MSGS_PER_DIR) % 256 != g_ascii_strtoull(e, NULL, 16))
				continue;
			info = g_new(FileInfo, 1);
			info->size = (guint64)st.st_size;
			info->mtime = st.st_mtime;
			g_hash_table_insert(files, GUINT_TO_POINTER(uid), info);
		}
	}
	return files;
}

static gint
recon_cmp_uid(gconstpointer a, gconstpointer b)
{
	const StoreIdxRecord *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

typedef struct {
	StoreIdxHeader h;
	gboolean header_ok;
	GArray *records;
	GByteArray *cache;
	gboolean damaged;       /* the index must be rewritten */
	gboolean missing;       /* there is no index */
} FolderState;

/* What the index says, as far as it can be read. */
static void
recon_read_index(Recon *rc, const char *dir, const char *label, FolderState *st)
{
	g_autofree char *idx_path = g_build_filename(dir, "store.idx", NULL);
	g_autofree char *cache_path = g_build_filename(dir, "store.cache", NULL);
	g_autoptr(GError) local = NULL;
	g_autoptr(StoreFolder) folder = store_folder_open(dir, FALSE, &local);
	g_autofree char *data = NULL;
	g_autofree char *cdata = NULL;
	gsize len = 0, clen = 0;

	if (folder != NULL && store_folder_read(folder, &st->records, &st->cache, &local)) {
		st->h = folder->header;
		st->header_ok = TRUE;
		return;
	}
	if (!g_file_test(idx_path, G_FILE_TEST_EXISTS)) {
		recon_problem(rc, "%s: the index is missing", label);
		st->missing = TRUE;
		st->damaged = TRUE;
		st->records = g_array_new(FALSE, FALSE, sizeof(StoreIdxRecord));
		return;
	}
	recon_problem(rc, "%s: the index is damaged (%s)", label,
		      local != NULL ? local->message : "unreadable");
	st->damaged = TRUE;
	if (!g_file_get_contents(idx_path, &data, &len, NULL))
		len = 0;
	st->records = store_index_salvage((const guint8 *)(data != NULL ? data : ""), len, &st->h,
					  &st->header_ok);
	if (g_file_get_contents(cache_path, &cdata, &clen, NULL) && clen <= G_MAXUINT) {
		st->cache = g_byte_array_sized_new((guint)clen);
		g_byte_array_append(st->cache, (const guint8 *)cdata, (guint)clen);
	}
}

/* Compare the records with the files; FALSE when they disagree. */
static void
recon_compare(Recon *rc, const char *label, FolderState *st, GHashTable *files,
	      guint32 *uidnext)
{
	g_autoptr(GArray) kept = g_array_new(FALSE, FALSE, sizeof(StoreIdxRecord));
	GHashTableIter it;
	gpointer key, value;

	for (guint i = 0; i < st->records->len; i++) {
		StoreIdxRecord r = g_array_index(st->records, StoreIdxRecord, i);
		FileInfo *info = g_hash_table_lookup(files, GUINT_TO_POINTER(r.uid));

		if (info == NULL) {
			recon_problem(rc, "%s: message %u has no file", label, r.uid);
			st->damaged = TRUE;
			continue;
		}
		if (info->size != r.size) {
			recon_problem(rc, "%s: message %u is %" G_GUINT64_FORMAT " bytes, the index"
				      " says %" G_GUINT64_FORMAT, label, r.uid, info->size, r.size);
			r.size = info->size;
			st->damaged = TRUE;
		}
		if (st->cache != NULL && !st->damaged &&
		    !store_cache_entry_ok(&r, st->cache, st->h.cache_end)) {
			recon_problem(rc, "%s: message %u has a bad cache entry", label, r.uid);
			st->damaged = TRUE;
		}
		g_array_append_val(kept, r);
	}
	/* Without a header, every file counts as delivered. */
	if (!st->header_ok) {
		*uidnext = 1;
		g_hash_table_iter_init(&it, files);
		while (g_hash_table_iter_next(&it, &key, NULL))
			*uidnext = MAX(*uidnext, GPOINTER_TO_UINT(key) + 1);
		for (guint i = 0; i < kept->len; i++)
			*uidnext = MAX(*uidnext, g_array_index(kept, StoreIdxRecord, i).uid + 1);
	} else {
		*uidnext = st->h.uidnext;
	}
	g_hash_table_iter_init(&it, files);
	while (g_hash_table_iter_next(&it, &key, &value)) {
		guint32 uid = GPOINTER_TO_UINT(key);
		FileInfo *info = value;
		StoreIdxRecord r = { uid, 0, info->size, info->mtime, 0, 0 };
		gboolean known = FALSE;

		if (uid >= *uidnext)
			continue;
		for (guint i = 0; i < st->records->len && !known; i++)
			known = g_array_index(st->records, StoreIdxRecord, i).uid == uid;
		if (known)
			continue;
		if (!st->missing)
			recon_problem(rc, "%s: message %u has no index record", label, uid);
		st->damaged = TRUE;
		g_array_append_val(kept, r);
	}
	g_array_sort(kept, recon_cmp_uid);
	g_array_unref(st->records);
	st->records = g_steal_pointer(&kept);
}

/* Leftovers of interrupted deliveries: names at or above UIDNEXT. */
static void
recon_remove_leftovers(Recon *rc, const char *dir, GHashTable *files, guint32 uidnext)
{
	GHashTableIter it;
	gpointer key;

	if (rc->check_only)
		return;
	g_hash_table_iter_init(&it, files);
	while (g_hash_table_iter_next(&it, &key, NULL)) {
		g_autofree char *path = NULL;

		if (GPOINTER_TO_UINT(key) < uidnext)
			continue;
		path = store_message_path(dir, GPOINTER_TO_UINT(key));
		unlink(path);
	}
}

static gboolean
recon_rewrite(const char *dir, FolderState *st, guint32 uidvalidity, guint32 uidnext,
	      GError **error)
{
	g_autoptr(StoreFolder) folder = NULL;

	/* A damaged index is replaced by an empty one first, so it can be
	 * locked and then rewritten like any other. */
	if (!st->header_ok || st->missing) {
		if (!store_index_write_empty(dir, uidvalidity, TRUE, error))
			return FALSE;
	}
	folder = store_folder_open(dir, TRUE, error);
	if (folder == NULL)
		return FALSE;
	folder->header.uidnext = MAX(folder->header.uidnext, uidnext);
	return store_folder_rewrite(folder, st->records, st->cache, error);
}

static gboolean
recon_folder(Recon *rc, const char *dir, const char *label, guint32 uidvalidity_hint,
	     GError **error)
{
	FolderState st = { 0 };
	g_autoptr(GHashTable) files = recon_scan_files(rc, dir);
	guint32 uidnext = 1, uidvalidity;
	gboolean ok = TRUE;

	recon_read_index(rc, dir, label, &st);
	recon_compare(rc, label, &st, files, &uidnext);
	recon_remove_leftovers(rc, dir, files, uidnext);
	uidvalidity = st.header_ok ? st.h.uidvalidity : uidvalidity_hint;
	if (st.damaged && !rc->check_only)
		ok = recon_rewrite(dir, &st, uidvalidity, uidnext, error);
	g_array_unref(st.records);
	if (st.cache != NULL)
		g_byte_array_unref(st.cache);
	return ok;
}

/* The record against the folders (after their repair). */
static void
recon_check_record(Recon *rc, const char *userid, const char *partition,
		   const StoreListRecord *rec, const StoreListRecord *actual)
{
	if (strcmp(rec->partition, partition) != 0)
		recon_problem(rc, "%s: the mailbox list says partition %s, the mailbox is on %s",
			      userid, rec->partition, partition);
	for (guint i = 0; i < rec->folders->len; i++) {
		StoreListFolder *f = rec->folders->pdata[i];
		StoreListFolder *a = store_list_record_folder((StoreListRecord *)actual, f->name);

		if (a == NULL) {
			recon_problem(rc, "%s: the mailbox list names folder %s, which does not"
				      " exist", userid, f->name);
			continue;
		}
		/* An unreadable index was reported already. */
		if (a->uidvalidity == 0)
			continue;
		if (a->uidvalidity != f->uidvalidity)
			recon_problem(rc, "%s %s: UIDVALIDITY %u in the mailbox list, %u in the"
				      " index", userid, f->name, f->uidvalidity, a->uidvalidity);
		/* A folder changed since the record was written was being
		 * updated; only equal change counters must agree. */
		else if (a->modseq == f->modseq && (a->messages != f->messages ||
						      a->bytes != f->bytes))
			recon_problem(rc, "%s %s: usage %u messages, %" G_GUINT64_FORMAT " bytes in"
				      " the mailbox list, %u messages, %" G_GUINT64_FORMAT
				      " bytes in the folder", userid, f->name, f->messages,
				      f->bytes, a->messages, a->bytes);
	}
	for (guint i = 0; i < actual->folders->len; i++) {
		StoreListFolder *a = actual->folders->pdata[i];

		if (store_list_record_folder((StoreListRecord *)rec, a->name) == NULL)
			recon_problem(rc, "%s %s: the folder is missing from the mailbox list",
				      userid, a->name);
	}
}

static gboolean
recon_user_locked(Recon *rc, const char *userid, GError **error)
{
	g_autofree char *partition = NULL;
	g_autofree char *user_dir = store_find_user(rc->store, userid, &partition, NULL);
	g_autoptr(GError) local = NULL;
	g_autoptr(StoreListRecord) rec = store_list_read(rc->store, userid, &local);
	g_autoptr(StoreListRecord) actual = NULL;
	g_autoptr(GPtrArray) names = NULL;
	guint before = rc->problems;

	if (user_dir == NULL) {
		if (rec == NULL && local->code == IMTA_STORE_ERROR_NOT_FOUND)
			return TRUE;
		recon_problem(rc, "%s: the mailbox list has a record but there is no mailbox",
			      userid);
		return rc->check_only || store_list_remove(rc->store, userid, error);
	}
	names = store_walk_folders(user_dir, error);
	for (guint i = 0; i < names->len; i++) {
		const char *name = names->pdata[i];
		g_autofree char *dir = store_folder_dir(user_dir, name);
		g_autofree char *label = g_strdup_printf("%s %s", userid, name);
		StoreListFolder *f = rec != NULL ? store_list_record_folder(rec, name) : NULL;
		guint32 hint = f != NULL ? f->uidvalidity : store_list_next_uidvalidity(rec);

		if (!recon_folder(rc, dir, label, hint, error))
			return FALSE;
	}
	actual = store_list_rebuild(rc->store, userid, rec, error);
	if (actual == NULL)
		return FALSE;
	if (rec == NULL)
		recon_problem(rc, "%s: %s", userid, local->code == IMTA_STORE_ERROR_NOT_FOUND ?
			      "the mailbox list has no record" : local->message);
	else
		recon_check_record(rc, userid, partition, rec, actual);
	if (rc->check_only)
		return TRUE;
	/* Totals of folders in the middle of an update are refreshed
	 * silently; everything else was counted above. */
	{
		g_autofree char *was = rec != NULL ? store_list_record_format(rec) : NULL;
		g_autofree char *now = store_list_record_format(actual);

		if (rc->problems > before || g_strcmp0(was, now) != 0)
			return store_list_write(rc->store, userid, actual, TRUE, error);
	}
	return TRUE;
}

static gboolean
recon_user(Recon *rc, const char *userid, GError **error)
{
	gboolean ok;
	int lock = store_list_lock(rc->store, userid, error);

	if (lock < 0)
		return FALSE;
	ok = recon_user_locked(rc, userid, error);
	store_list_unlock(lock);
	return ok;
}

/* Files of deliveries whose process is gone. */
static void
recon_clean_tmp(Recon *rc)
{
	for (guint i = 0; i < rc->store->partition_names->len; i++) {
		const char *ppath = g_hash_table_lookup(rc->store->partitions,
							rc->store->partition_names->pdata[i]);
		g_autofree char *tmp = g_build_filename(ppath, "tmp", NULL);
		g_autoptr(GDir) d = g_dir_open(tmp, 0, NULL);
		const char *e;

		while (d != NULL && (e = g_dir_read_name(d)) != NULL) {
			const char *p = e;
			g_autofree char *path = g_build_filename(tmp, e, NULL);
			long pid;

			if (g_str_has_prefix(p, "new."))
				p += 4;
			else if (g_str_has_prefix(p, "deleted."))
				p += 8;
			pid = strtol(p, NULL, 10);
			if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
				continue;
			store_rm_rf(path, NULL);
		}
	}
}

static gint
recon_cmp_str(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

gint
imta_store_reconstruct(ImtaStore *store, const char *userid, gboolean check_only,
		       GPtrArray *findings, GError **error)
{
	Recon rc = { store, check_only, findings, 0 };
	g_autoptr(GPtrArray) users = NULL;

	if (userid != NULL) {
		if (!store_check_userid(userid, error))
			return -1;
		users = g_ptr_array_new_with_free_func(g_free);
		g_ptr_array_add(users, g_strdup(userid));
	} else {
		g_autoptr(GHashTable) recorded = store_list_recorded_users(store, error);
		GHashTableIter it;
		gpointer key;

		if (recorded == NULL)
			return -1;
		users = imta_store_list_users(store, error);
		if (users == NULL)
			return -1;
		for (guint i = 0; i < users->len; i++)
			g_hash_table_remove(recorded, users->pdata[i]);
		g_hash_table_iter_init(&it, recorded);
		while (g_hash_table_iter_next(&it, &key, NULL))
			g_ptr_array_add(users, g_strdup(key));
		g_ptr_array_sort(users, recon_cmp_str);
		if (!check_only)
			recon_clean_tmp(&rc);
	}
	for (guint i = 0; i < users->len; i++)
		if (!recon_user(&rc, users->pdata[i], error))
			return -1;
	return (gint)rc.problems;
}
