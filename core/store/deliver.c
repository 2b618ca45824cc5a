/*
 * deliver.c - delivery into the store: the content written once per
 * partition, hard-linked into each recipient's folder under the folder's
 * lock, indexed, counted in the user's record, and made durable with one
 * file system sync per partition at the end.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <glib.h>

#include <imta/stat_untimed.h>
#include <imta/store.h>

#include "store_private.h"

/* The content's file on one partition. */
typedef struct {
	char *partition;
	char *path;         /* PARTITION/tmp/UNIQUE */
	GError *error;      /* it could not be written */
} DeliverCopy;

typedef struct {
	ImtaStore *store;
	const char *content;
	gsize length;
	gint64 internal_date;
	GByteArray *entry;  /* the cache entry, uid patched per target */
	GHashTable *copies; /* partition name -> DeliverCopy */
	GHashTable *dirs;   /* directories whose file system must be synced */
} Delivery;

static void
deliver_copy_free(gpointer p)
{
	DeliverCopy *copy = p;

	if (copy->path != NULL)
		unlink(copy->path);
	g_free(copy->partition);
	g_free(copy->path);
	g_clear_error(&copy->error);
	g_free(copy);
}

/* The file's times are the internal date: reconstruct takes it from
 * there when it rebuilds an index. */
static gboolean
deliver_write_file(const char *path, const char *content, gsize length, gint64 internal_date,
		   GError **error)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	struct timespec times[2] = { { (time_t)internal_date, 0 }, { (time_t)internal_date, 0 } };

	if (fd < 0)
		return store_set_io_error(error, "create", path, errno);
	if (!store_write_fd(fd, path, content, length, error)) {
		close(fd);
		unlink(path);
		return FALSE;
	}
	if (futimens(fd, times) < 0 || fsync(fd) < 0) {
		int errnum = errno;

		close(fd);
		unlink(path);
		return store_set_io_error(error, "write", path, errnum);
	}
	if (close(fd) < 0) {
		int errnum = errno;

		unlink(path);
		return store_set_io_error(error, "write", path, errnum);
	}
	return TRUE;
}

/* A fresh copy of the content on `partition` (replacing the old one,
 * which may have reached the file system's link limit). */
static DeliverCopy *
deliver_new_copy(Delivery *d, const char *partition)
{
	DeliverCopy *copy = g_new0(DeliverCopy, 1);
	const char *ppath = imta_store_partition_path(d->store, partition);
	g_autofree char *name = store_tmp_name(d->store);
	g_autofree char *path = g_strdup_printf("%s/tmp/%s", ppath, name);

	copy->partition = g_strdup(partition);
	if (deliver_write_file(path, d->content, d->length, d->internal_date, &copy->error))
		copy->path = g_steal_pointer(&path);
	g_hash_table_replace(d->copies, copy->partition, copy);
	g_hash_table_add(d->dirs, g_strdup(ppath));
	return copy;
}

static DeliverCopy *
deliver_copy(Delivery *d, const char *partition)
{
	DeliverCopy *copy = g_hash_table_lookup(d->copies, partition);

	return copy != NULL ? copy : deliver_new_copy(d, partition);
}

static gboolean
deliver_link(Delivery *d, const char *partition, const char *dst, GError **error)
{
	DeliverCopy *copy = deliver_copy(d, partition);

	if (copy->error != NULL) {
		*error = g_error_copy(copy->error);
		return FALSE;
	}
	if (link(copy->path, dst) == 0)
		return TRUE;
	if (errno == EMLINK) {
		copy = deliver_new_copy(d, partition);
		if (copy->error != NULL) {
			*error = g_error_copy(copy->error);
			return FALSE;
		}
		if (link(copy->path, dst) == 0)
			return TRUE;
	}
	{
		int errnum = errno;

		store_set_io_error(error, "link", dst, errnum);
		errno = errnum;
		return FALSE;
	}
}

/* Put the message file of `uid` in place: a leftover of an interrupted
 * delivery (a name at or above UIDNEXT) is replaced. */
static gboolean
deliver_place(Delivery *d, const char *partition, const char *folder_dir, guint32 uid,
	      GError **error)
{
	g_autofree char *path = store_message_path(folder_dir, uid);
	g_autoptr(GError) local = NULL;

	/* Optimistic: the hash directory exists and the name is free. */
	if (deliver_link(d, partition, path, &local))
		return TRUE;
	if (!g_error_matches(local, IMTA_STORE_ERROR, IMTA_STORE_ERROR_IO) ||
	    (errno != EEXIST && errno != ENOENT)) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	if (errno == EEXIST && unlink(path) < 0 && errno != ENOENT)
		return store_set_io_error(error, "remove the leftover", path, errno);
	if (errno == ENOENT) {
		g_autofree char *hdir = g_path_get_dirname(path);

		if (mkdir(hdir, 0750) < 0 && errno != EEXIST)
			return store_set_io_error(error, "create the directory", hdir, errno);
	}
	return deliver_link(d, partition, path, error);
}

static char *
deliver_target_folder(const char *user_dir, const char *folder, char **canon_r)
{
	g_autofree char *canon = store_folder_canonical(folder, NULL);
	g_autofree char *dir = NULL;
	g_autofree char *idx = NULL;

	/* A folder that does not exist (or a bad name) falls back to INBOX. */
	if (canon != NULL) {
		dir = store_folder_dir(user_dir, canon);
		idx = g_build_filename(dir, "store.idx", NULL);
		if (g_file_test(idx, G_FILE_TEST_EXISTS)) {
			*canon_r = g_steal_pointer(&canon);
			return g_steal_pointer(&dir);
		}
	}
	*canon_r = g_strdup("INBOX");
	return g_strdup(user_dir);
}

/* One target, under its user's lock. */
static gboolean
deliver_target_locked(Delivery *d, ImtaStoreTarget *t, GError **error)
{
	g_autofree char *partition = NULL;
	g_autofree char *user_dir = NULL;
	g_autofree char *canon = NULL;
	g_autofree char *dir = NULL;
	g_autoptr(StoreListRecord) rec = NULL;
	g_autoptr(StoreFolder) folder = NULL;
	g_autoptr(GByteArray) entry = NULL;
	guint32 uid;

	user_dir = store_find_user(d->store, t->userid, &partition, NULL);
	if (user_dir == NULL) {
		const char *p = t->partition != NULL ? t->partition :
				d->store->default_partition;

		if (!store_create_user_locked(d->store, t->userid, p, FALSE, NULL, error))
			return FALSE;
		user_dir = store_find_user(d->store, t->userid, &partition, error);
		if (user_dir == NULL)
			return FALSE;
	}
	/* Only the delivered folder's totals matter here; stale totals of
	 * others are brought up to date when usage is read. */
	rec = store_list_read(d->store, t->userid, NULL);
	if (rec == NULL)
		rec = store_list_load_locked(d->store, t->userid, error);
	if (rec == NULL)
		return FALSE;
	dir = deliver_target_folder(user_dir, t->folder, &canon);
	folder = store_folder_open(dir, TRUE, error);
	if (folder == NULL)
		return FALSE;
	uid = folder->header.uidnext;
	if (uid == G_MAXUINT32) {
		g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_IO,
			    "%s has run out of UIDs", dir);
		return FALSE;
	}
	if (!deliver_place(d, partition, dir, uid, error))
		return FALSE;
	entry = g_byte_array_sized_new(d->entry->len);
	g_byte_array_append(entry, d->entry->data, d->entry->len);
	entry->data[0] = uid & 0xff;
	entry->data[1] = (uid >> 8) & 0xff;
	entry->data[2] = (uid >> 16) & 0xff;
	entry->data[3] = (uid >> 24) & 0xff;
	if (!store_folder_append(folder, uid, IMTA_STORE_FLAG_RECENT, d->length,
				 d->internal_date, entry, error))
		return FALSE;
	/* The record's totals of a folder are checked against the folder's
	 * change counter whenever they are read, so a known folder's record
	 * needs no rewrite here: one file creation less per recipient. */
	{
		StoreListFolder *lf = store_list_record_folder(rec, canon);

		if (lf == NULL || lf->uidvalidity != folder->header.uidvalidity) {
			store_list_record_set_folder(rec, canon, folder->header.uidvalidity,
						     &folder->header);
			if (!store_list_write(d->store, t->userid, rec, FALSE, error))
				return FALSE;
		}
	}
	t->uid = uid;
	return TRUE;
}

static void
deliver_target(Delivery *d, ImtaStoreTarget *t)
{
	int lock;

	t->uid = 0;
	g_clear_error(&t->error);
	if (!store_check_userid(t->userid, &t->error))
		return;
	if (t->partition != NULL && imta_store_partition_path(d->store, t->partition) == NULL) {
		g_set_error(&t->error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND,
			    "no partition %s", t->partition);
		return;
	}
	lock = store_list_lock(d->store, t->userid, &t->error);
	if (lock < 0)
		return;
	if (!deliver_target_locked(d, t, &t->error))
		t->uid = 0;
	store_list_unlock(lock);
}

/* One sync per file system touched: the partitions' and the system
 * area's, which may be the same. */
static gboolean
deliver_sync(Delivery *d, GError **error)
{
	g_autoptr(GHashTable) devs = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
							   NULL);
	GHashTableIter it;
	gpointer key;

	g_hash_table_add(d->dirs, g_strdup(d->store->mboxlist));
	g_hash_table_iter_init(&it, d->dirs);
	while (g_hash_table_iter_next(&it, &key, NULL)) {
		struct stat st;
		gint64 *dev;

		if (imta_stat_untimed(AT_FDCWD, key, 0, &st) < 0)
			return store_set_io_error(error, "examine", key, errno);
		if (g_hash_table_contains(devs, &(gint64){ (gint64)st.st_dev }))
			continue;
		if (!store_syncfs(key, error))
			return FALSE;
		dev = g_new(gint64, 1);
		*dev = (gint64)st.st_dev;
		g_hash_table_add(devs, dev);
	}
	return TRUE;
}

gboolean
imta_store_deliver(ImtaStore *store, const char *content, gsize length, gint64 internal_date,
		   ImtaStoreTarget *targets, guint n_targets, GError **error)
{
	Delivery d = { store, content, length, internal_date > 0 ? internal_date : time(NULL) };
	g_autoptr(GError) sync_error = NULL;
	guint delivered = 0;

	d.entry = store_cache_entry(0, content, length);
	d.copies = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, deliver_copy_free);
	d.dirs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	/* The default partition's copy first: a content that cannot be
	 * written at all fails the whole call. */
	if (deliver_copy(&d, store->default_partition)->error != NULL && n_targets > 0) {
		DeliverCopy *copy = deliver_copy(&d, store->default_partition);

		g_propagate_error(error, g_error_copy(copy->error));
		g_hash_table_unref(d.copies);
		g_hash_table_unref(d.dirs);
		g_byte_array_unref(d.entry);
		return FALSE;
	}
	for (guint i = 0; i < n_targets; i++) {
		deliver_target(&d, &targets[i]);
		delivered += targets[i].error == NULL ? 1 : 0;
	}
	if (delivered > 0 && !deliver_sync(&d, &sync_error)) {
		for (guint i = 0; i < n_targets; i++)
			if (targets[i].error == NULL) {
				targets[i].error = g_error_copy(sync_error);
				targets[i].uid = 0;
			}
	}
	/* The tmp files go last: each delivered message has its own links. */
	g_hash_table_unref(d.copies);
	g_hash_table_unref(d.dirs);
	g_byte_array_unref(d.entry);
	return TRUE;
}
