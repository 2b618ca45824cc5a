/*
 * folder.c - users and folders of the store (create, list, rename,
 * delete) and what a client does with a folder's messages: status,
 * listing from the index and cache, flags, expunge, reading a message.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <glib.h>
#include <gio/gio.h>
#include <gio/gunixinputstream.h>

#include <imta/store.h>

#include "store_private.h"

static gboolean
is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- users -------------------------------------------------------------- */

char *
store_find_user(ImtaStore *store, const char *userid, char **partition_r, GError **error)
{
	const char *def = store->default_partition;
	g_autofree char *dir = store_user_dir_on(store, userid,
						 g_hash_table_lookup(store->partitions, def));

	if (is_dir(dir)) {
		if (partition_r != NULL)
			*partition_r = g_strdup(def);
		return g_steal_pointer(&dir);
	}
	for (guint i = 0; i < store->partition_names->len; i++) {
		const char *name = store->partition_names->pdata[i];

		if (strcmp(name, def) == 0)
			continue;
		g_free(dir);
		dir = store_user_dir_on(store, userid, g_hash_table_lookup(store->partitions, name));
		if (is_dir(dir)) {
			if (partition_r != NULL)
				*partition_r = g_strdup(name);
			return g_steal_pointer(&dir);
		}
	}
	g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND,
		    "%s has no mailbox", userid);
	return NULL;
}

char *
imta_store_user_partition(ImtaStore *store, const char *userid, GError **error)
{
	char *partition = NULL;
	g_autofree char *dir = NULL;

	if (!store_check_userid(userid, error))
		return NULL;
	dir = store_find_user(store, userid, &partition, error);
	return partition;
}

static gint
cmp_strings(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

GPtrArray *
imta_store_list_users(ImtaStore *store, GError **error)
{
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);

	for (guint p = 0; p < store->partition_names->len; p++) {
		const char *path = g_hash_table_lookup(store->partitions,
						       store->partition_names->pdata[p]);
		g_autofree char *top = g_build_filename(path, "=user", NULL);
		g_autoptr(GDir) d1 = g_dir_open(top, 0, NULL);
		const char *a, *b, *c;

		while (d1 != NULL && (a = g_dir_read_name(d1)) != NULL) {
			g_autofree char *p1 = g_build_filename(top, a, NULL);
			g_autoptr(GDir) d2 = strlen(a) == 2 ? g_dir_open(p1, 0, NULL) : NULL;

			while (d2 != NULL && (b = g_dir_read_name(d2)) != NULL) {
				g_autofree char *p2 = g_build_filename(p1, b, NULL);
				g_autoptr(GDir) d3 = strlen(b) == 2 ? g_dir_open(p2, 0, NULL) : NULL;

				while (d3 != NULL && (c = g_dir_read_name(d3)) != NULL) {
					char *userid;

					if (c[0] != '=' || !store_check_userid(c + 1, NULL) ||
					    g_hash_table_contains(seen, c + 1))
						continue;
					userid = g_strdup(c + 1);
					g_ptr_array_add(out, userid);
					g_hash_table_add(seen, userid);
				}
			}
		}
	}
	g_ptr_array_sort(out, cmp_strings);
	return out;
}

gboolean
store_create_user_locked(ImtaStore *store, const char *userid, const char *partition,
			 gboolean sync, StoreListRecord **rec_r, GError **error)
{
	const char *ppath;
	g_autofree char *user_dir = NULL;
	g_autofree char *parent = NULL;
	g_autofree char *tmpname = store_tmp_name(store);
	g_autofree char *tmp = NULL;
	g_autoptr(StoreListRecord) old = NULL;
	g_autoptr(StoreListRecord) rec = NULL;
	g_autoptr(StoreFolder) inbox = NULL;
	guint32 uidvalidity;

	if (partition == NULL)
		partition = store->default_partition;
	ppath = imta_store_partition_path(store, partition);
	if (ppath == NULL) {
		g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND,
			    "no partition %s", partition);
		return FALSE;
	}
	{
		g_autofree char *where = store_find_user(store, userid, NULL, NULL);

		if (where != NULL) {
			g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_EXISTS,
				    "%s already has a mailbox", userid);
			return FALSE;
		}
	}
	/* A record left by a deleted mailbox keeps its UIDVALIDITYs unique. */
	old = store_list_read(store, userid, NULL);
	uidvalidity = store_list_next_uidvalidity(old);
	user_dir = store_user_dir_on(store, userid, ppath);
	parent = g_path_get_dirname(user_dir);
	tmp = g_strdup_printf("%s/tmp/new.%s", ppath, tmpname);
	/* Built aside and renamed into place: an INBOX appears complete. */
	if (!store_folder_init(tmp, uidvalidity, sync, error))
		return FALSE;
	if (!store_mkdir_p(parent, error) || rename(tmp, user_dir) < 0) {
		if (error != NULL && *error == NULL)
			store_set_io_error(error, "create", user_dir, errno);
		store_rm_rf(tmp, NULL);
		return FALSE;
	}
	if (sync && !store_fsync_path(parent, TRUE, error))
		return FALSE;
	inbox = store_folder_open(user_dir, FALSE, error);
	if (inbox == NULL)
		return FALSE;
	rec = store_list_record_new(partition);
	if (old != NULL) {
		rec->warned_at = old->warned_at;
		rec->over_since = old->over_since;
	}
	store_list_record_set_folder(rec, "INBOX", uidvalidity, &inbox->header);
	if (!store_list_write(store, userid, rec, sync, error))
		return FALSE;
	if (rec_r != NULL)
		*rec_r = g_steal_pointer(&rec);
	return TRUE;
}

gboolean
imta_store_create_user(ImtaStore *store, const char *userid, const char *partition,
		       GError **error)
{
	gboolean ok;
	int lock;

	if (!store_check_userid(userid, error))
		return FALSE;
	lock = store_list_lock(store, userid, error);
	if (lock < 0)
		return FALSE;
	ok = store_create_user_locked(store, userid, partition, TRUE, NULL, error);
	store_list_unlock(lock);
	return ok;
}

gboolean
imta_store_delete_user(ImtaStore *store, const char *userid, GError **error)
{
	g_autofree char *partition = NULL;
	g_autofree char *dir = NULL;
	g_autofree char *tmpname = NULL;
	g_autofree char *trash = NULL;
	gboolean ok;
	int lock;

	if (!store_check_userid(userid, error))
		return FALSE;
	lock = store_list_lock(store, userid, error);
	if (lock < 0)
		return FALSE;
	dir = store_find_user(store, userid, &partition, error);
	if (dir == NULL) {
		store_list_unlock(lock);
		return FALSE;
	}
	tmpname = store_tmp_name(store);
	trash = g_strdup_printf("%s/tmp/deleted.%s", imta_store_partition_path(store, partition),
				tmpname);
	/* Out of sight at once; the files go afterwards. */
	ok = rename(dir, trash) == 0 || store_set_io_error(error, "remove", dir, errno);
	ok = ok && store_list_remove(store, userid, error);
	store_list_unlock(lock);
	return ok && store_rm_rf(trash, error);
}

/* ---- folders ------------------------------------------------------------ */

static gboolean
walk_folders(const char *dir, const char *prefix, guint depth, GPtrArray *out)
{
	g_autoptr(GDir) d = NULL;
	const char *e;

	if (depth > STORE_FOLDER_DEPTH_MAX)
		return TRUE;
	d = g_dir_open(dir, 0, NULL);
	while (d != NULL && (e = g_dir_read_name(d)) != NULL) {
		g_autofree char *name = store_folder_decode_component(e);
		g_autofree char *sub = NULL;
		g_autofree char *full = NULL;
		g_autofree char *canon = NULL;

		if (name == NULL)
			continue;
		sub = g_build_filename(dir, e, NULL);
		if (!is_dir(sub))
			continue;
		full = prefix != NULL ? g_strconcat(prefix, "/", name, NULL) : g_strdup(name);
		canon = store_folder_canonical(full, NULL);
		/* A name that would not encode back to this entry is not ours. */
		if (canon == NULL || !store_folder_entry_matches(e, name))
			continue;
		if (prefix == NULL && strcmp(canon, "INBOX") == 0) {
			/* "+INBOX" only holds the folders below INBOX. */
			if (strcmp(name, "INBOX") == 0)
				walk_folders(sub, canon, depth + 1, out);
			continue;
		}
		g_ptr_array_add(out, g_strdup(canon));
		walk_folders(sub, canon, depth + 1, out);
	}
	return TRUE;
}

static gint
cmp_folders(gconstpointer a, gconstpointer b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;

	if (strcmp(x, "INBOX") == 0)
		return strcmp(y, "INBOX") == 0 ? 0 : -1;
	if (strcmp(y, "INBOX") == 0)
		return 1;
	return strcmp(x, y);
}

GPtrArray *
store_walk_folders(const char *user_dir, GError **error)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);

	g_ptr_array_add(out, g_strdup("INBOX"));
	walk_folders(user_dir, NULL, 1, out);
	g_ptr_array_sort(out, cmp_folders);
	return out;
}

GPtrArray *
imta_store_list_folders(ImtaStore *store, const char *userid, GError **error)
{
	g_autofree char *dir = NULL;

	if (!store_check_userid(userid, error))
		return NULL;
	dir = store_find_user(store, userid, NULL, error);
	if (dir == NULL)
		return NULL;
	return store_walk_folders(dir, error);
}

char *
store_folder_path(ImtaStore *store, const char *userid, const char *folder,
		  char **canonical_r, GError **error)
{
	g_autofree char *user_dir = NULL;
	g_autofree char *canon = NULL;
	g_autofree char *dir = NULL;

	if (!store_check_userid(userid, error))
		return NULL;
	canon = store_folder_canonical(folder, error);
	if (canon == NULL)
		return NULL;
	user_dir = store_find_user(store, userid, NULL, error);
	if (user_dir == NULL)
		return NULL;
	dir = store_folder_dir(user_dir, canon);
	if (!is_dir(dir)) {
		g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND,
			    "%s has no folder %s", userid, canon);
		return NULL;
	}
	if (canonical_r != NULL)
		*canonical_r = g_steal_pointer(&canon);
	return g_steal_pointer(&dir);
}

/* Create `canon` and any missing parent folders; EXISTS only for `canon`. */
static gboolean
folder_create_chain(const char *user_dir, const char *canon, StoreListRecord *rec,
		    GError **error)
{
	g_auto(GStrv) parts = g_strsplit(canon, "/", -1);
	GString *name = g_string_new(NULL);
	gboolean ok = TRUE;

	for (guint i = 0; ok && parts[i] != NULL; i++) {
		g_autofree char *dir = NULL;
		g_autofree char *idx = NULL;
		gboolean last = parts[i + 1] == NULL;

		if (i > 0)
			g_string_append_c(name, '/');
		g_string_append(name, parts[i]);
		if (strcmp(name->str, "INBOX") == 0)
			continue;
		dir = store_folder_dir(user_dir, name->str);
		idx = g_build_filename(dir, "store.idx", NULL);
		if (!last && g_file_test(idx, G_FILE_TEST_EXISTS))
			continue;
		{
			guint32 uidvalidity = store_list_next_uidvalidity(rec);
			g_autoptr(StoreFolder) f = NULL;

			ok = store_folder_init(dir, uidvalidity, TRUE, error);
			if (ok)
				f = store_folder_open(dir, FALSE, error);
			ok = ok && f != NULL;
			if (ok)
				store_list_record_set_folder(rec, name->str, uidvalidity,
							     &f->header);
		}
	}
	g_string_free(name, TRUE);
	return ok;
}

gboolean
imta_store_create_folder(ImtaStore *store, const char *userid, const char *name,
			 GError **error)
{
	g_autofree char *canon = NULL;
	g_autofree char *user_dir = NULL;
	g_autoptr(StoreListRecord) rec = NULL;
	gboolean ok = FALSE;
	int lock;

	if (!store_check_userid(userid, error))
		return FALSE;
	canon = store_folder_canonical(name, error);
	if (canon == NULL)
		return FALSE;
	if (strcmp(canon, "INBOX") == 0) {
		g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_EXISTS,
			    "%s already has an INBOX", userid);
		return FALSE;
	}
	lock = store_list_lock(store, userid, error);
	if (lock < 0)
		return FALSE;
	user_dir = store_find_user(store, userid, NULL, error);
	if (user_dir != NULL)
		rec = store_list_load_locked(store, userid, error);
	if (rec != NULL && folder_create_chain(user_dir, canon, rec, error))
		ok = store_list_write(store, userid, rec, TRUE, error);
	store_list_unlock(lock);
	return ok;
}

static gboolean
folder_in(const char *name, const char *top)
{
	gsize n = strlen(top);

	return strcmp(name, top) == 0 || (strncmp(name, top, n) == 0 && name[n] == '/');
}

gboolean
imta_store_delete_folder(ImtaStore *store, const char *userid, const char *name,
			 GError **error)
{
	g_autofree char *canon = NULL;
	g_autofree char *dir = NULL;
	g_autofree char *parent = NULL;
	g_autofree char *tmpname = store_tmp_name(store);
	g_autofree char *trash = NULL;
	g_autoptr(StoreListRecord) rec = NULL;
	gboolean ok = FALSE;
	int lock;

	if (!store_check_userid(userid, error))
		return FALSE;
	lock = store_list_lock(store, userid, error);
	if (lock < 0)
		return FALSE;
	dir = store_folder_path(store, userid, name, &canon, error);
	if (dir != NULL && strcmp(canon, "INBOX") == 0) {
		g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_INVALID,
			    "INBOX cannot be deleted");
	} else if (dir != NULL) {
		rec = store_list_load_locked(store, userid, error);
	}
	if (rec != NULL) {
		parent = g_path_get_dirname(dir);
		trash = g_strdup_printf("%s/" STORE_TRASH_PREFIX "%s", parent, tmpname);
		ok = rename(dir, trash) == 0 || store_set_io_error(error, "remove", dir, errno);
		for (guint i = rec->folders->len; ok && i > 0; i--) {
			StoreListFolder *f = rec->folders->pdata[i - 1];

			if (folder_in(f->name, canon))
				g_ptr_array_remove_index(rec->folders, i - 1);
		}
		ok = ok && store_list_write(store, userid, rec, TRUE, error);
	}
	store_list_unlock(lock);
	return ok && store_rm_rf(trash, error);
}

gboolean
imta_store_rename_folder(ImtaStore *store, const char *userid, const char *from,
			 const char *to, GError **error)
{
	g_autofree char *cfrom = NULL;
	g_autofree char *cto = NULL;
	g_autofree char *src = NULL;
	g_autofree char *dst = NULL;
	g_autofree char *user_dir = NULL;
	g_autofree char *dst_parent = NULL;
	g_autofree char *dst_parent_name = NULL;
	g_autoptr(StoreListRecord) rec = NULL;
	gboolean ok = FALSE;
	int lock;

	if (!store_check_userid(userid, error))
		return FALSE;
	cto = store_folder_canonical(to, error);
	if (cto == NULL)
		return FALSE;
	lock = store_list_lock(store, userid, error);
	if (lock < 0)
		return FALSE;
	src = store_folder_path(store, userid, from, &cfrom, error);
	if (src == NULL)
		goto out;
	if (strcmp(cfrom, "INBOX") == 0 || strcmp(cto, "INBOX") == 0 || folder_in(cto, cfrom)) {
		g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_INVALID,
			    "cannot rename %s to %s", cfrom, cto);
		goto out;
	}
	user_dir = store_find_user(store, userid, NULL, error);
	rec = user_dir != NULL ? store_list_load_locked(store, userid, error) : NULL;
	if (rec == NULL)
		goto out;
	dst = store_folder_dir(user_dir, cto);
	if (is_dir(dst)) {
		g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_EXISTS,
			    "%s already has a folder %s", userid, cto);
		goto out;
	}
	dst_parent = g_path_get_dirname(dst);
	dst_parent_name = strchr(cto, '/') != NULL ?
			  g_strndup(cto, (gsize)(strrchr(cto, '/') - cto)) : NULL;
	if (dst_parent_name != NULL && !is_dir(dst_parent) &&
	    !folder_create_chain(user_dir, dst_parent_name, rec, error))
		goto out;
	if (rename(src, dst) < 0) {
		store_set_io_error(error, "rename", src, errno);
		goto out;
	}
	for (guint i = 0; i < rec->folders->len; i++) {
		StoreListFolder *f = rec->folders->pdata[i];

		if (folder_in(f->name, cfrom)) {
			char *renamed = g_strconcat(cto, f->name + strlen(cfrom), NULL);

			g_free(f->name);
			f->name = renamed;
		}
	}
	store_list_record_sort(rec);
	ok = store_fsync_path(dst_parent, TRUE, error) &&
	     store_list_write(store, userid, rec, TRUE, error);
out:
	store_list_unlock(lock);
	return ok;
}

/* ---- messages ----------------------------------------------------------- */

gboolean
imta_store_folder_status(ImtaStore *store, const char *userid, const char *folder,
			 ImtaStoreFolderStatus *status_r, GError **error)
{
	g_autofree char *dir = store_folder_path(store, userid, folder, NULL, error);
	g_autoptr(StoreFolder) f = NULL;

	memset(status_r, 0, sizeof *status_r);
	if (dir == NULL)
		return FALSE;
	f = store_folder_open(dir, FALSE, error);
	if (f == NULL)
		return FALSE;
	status_r->uidvalidity = f->header.uidvalidity;
	status_r->uidnext = f->header.uidnext;
	status_r->messages = f->header.count;
	status_r->bytes = (gint64)f->header.bytes;
	return TRUE;
}

GPtrArray *
imta_store_folder_messages(ImtaStore *store, const char *userid, const char *folder,
			   GError **error)
{
	g_autofree char *dir = store_folder_path(store, userid, folder, NULL, error);
	g_autoptr(StoreFolder) f = NULL;
	g_autoptr(GArray) records = NULL;
	g_autoptr(GByteArray) cache = NULL;
	GPtrArray *out;

	if (dir == NULL)
		return NULL;
	f = store_folder_open(dir, FALSE, error);
	if (f == NULL || !store_folder_read(f, &records, &cache, error))
		return NULL;
	out = g_ptr_array_new_full(records->len, (GDestroyNotify)imta_store_message_free);
	for (guint i = 0; i < records->len; i++)
		g_ptr_array_add(out, store_message_from(&g_array_index(records, StoreIdxRecord, i),
							cache, NULL));
	return out;
}

/* Find the record of `uid` by bisection: a flag change reads a few
 * records, not the whole index. */
static gboolean
folder_find_record(StoreFolder *f, guint32 uid, off_t *offset_r, StoreIdxRecord *r,
		   GError **error)
{
	guint32 lo = 0, hi = f->header.count;

	while (lo < hi) {
		guint32 mid = lo + (hi - lo) / 2;
		guint8 buf[STORE_IDX_RECORD_SIZE];
		off_t off = STORE_IDX_HEADER_SIZE + (off_t)mid * STORE_IDX_RECORD_SIZE;

		if (pread(f->idx_fd, buf, sizeof buf, off) != (ssize_t)sizeof buf ||
		    !store_record_parse(buf, r)) {
			g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_CORRUPT,
				    "%s/store.idx: a record has a bad checksum (run reconstruct)",
				    f->dir);
			return FALSE;
		}
		if (r->uid == uid) {
			*offset_r = off;
			return TRUE;
		}
		if (r->uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND, "no message %u in %s",
		    uid, f->dir);
	return FALSE;
}

gboolean
imta_store_set_flags(ImtaStore *store, const char *userid, const char *folder, guint32 uid,
		     guint32 add, guint32 remove, GError **error)
{
	g_autofree char *dir = store_folder_path(store, userid, folder, NULL, error);
	g_autoptr(StoreFolder) f = NULL;
	StoreIdxRecord r;
	off_t off;
	guint32 flags;

	if (dir == NULL)
		return FALSE;
	f = store_folder_open(dir, TRUE, error);
	if (f == NULL || !folder_find_record(f, uid, &off, &r, error))
		return FALSE;
	flags = GUINT32_TO_LE((r.flags | add) & ~remove);
	/* The flag word is outside the record checksum: one 4-byte write. */
	if (pwrite(f->idx_fd, &flags, 4, off + STORE_IDX_FLAGS_OFFSET) != 4)
		return store_set_io_error(error, "write the index of", dir, errno);
	if (fdatasync(f->idx_fd) < 0)
		return store_set_io_error(error, "sync the index of", dir, errno);
	return TRUE;
}

gint
imta_store_expunge(ImtaStore *store, const char *userid, const char *folder, GError **error)
{
	g_autofree char *canon = NULL;
	g_autofree char *dir = NULL;
	g_autoptr(StoreFolder) f = NULL;
	g_autoptr(GArray) records = NULL;
	g_autoptr(GArray) keep = NULL;
	g_autoptr(GArray) gone = g_array_new(FALSE, FALSE, sizeof(guint32));
	g_autoptr(GByteArray) cache = NULL;
	g_autoptr(StoreListRecord) rec = NULL;
	gint result = -1;
	int lock;

	if (!store_check_userid(userid, error))
		return -1;
	lock = store_list_lock(store, userid, error);
	if (lock < 0)
		return -1;
	dir = store_folder_path(store, userid, folder, &canon, error);
	/* The record first: reading it looks at the folder's header. */
	if (dir != NULL)
		rec = store_list_load_locked(store, userid, error);
	if (rec != NULL)
		f = store_folder_open(dir, TRUE, error);
	if (f == NULL || !store_folder_read(f, &records, &cache, error))
		goto out;
	keep = g_array_sized_new(FALSE, FALSE, sizeof(StoreIdxRecord), records->len);
	for (guint i = 0; i < records->len; i++) {
		StoreIdxRecord *r = &g_array_index(records, StoreIdxRecord, i);

		if (r->flags & IMTA_STORE_FLAG_DELETED)
			g_array_append_val(gone, r->uid);
		else
			g_array_append_val(keep, *r);
	}
	if (gone->len > 0 && !store_folder_rewrite(f, keep, cache, error))
		goto out;
	for (guint i = 0; i < gone->len; i++) {
		g_autofree char *path = store_message_path(dir, g_array_index(gone, guint32, i));

		if (unlink(path) < 0 && errno != ENOENT)
			g_warning("cannot remove %s: %s", path, g_strerror(errno));
	}
	store_list_record_set_folder(rec, canon, f->header.uidvalidity, &f->header);
	if (!store_list_write(store, userid, rec, FALSE, error))
		goto out;
	result = (gint)gone->len;
out:
	store_list_unlock(lock);
	return result;
}

GInputStream *
imta_store_open_message(ImtaStore *store, const char *userid, const char *folder,
			guint32 uid, GError **error)
{
	g_autofree char *dir = store_folder_path(store, userid, folder, NULL, error);
	g_autoptr(StoreFolder) f = NULL;
	g_autofree char *path = NULL;
	StoreIdxRecord r;
	off_t off;
	int fd;

	if (dir == NULL)
		return NULL;
	f = store_folder_open(dir, FALSE, error);
	if (f == NULL || !folder_find_record(f, uid, &off, &r, error))
		return NULL;
	path = store_message_path(dir, uid);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND,
				    "the file of message %u is missing: %s", uid, path);
		else
			store_set_io_error(error, "open", path, errno);
		return NULL;
	}
	return g_unix_input_stream_new(fd, TRUE);
}
