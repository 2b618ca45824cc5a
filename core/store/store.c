/*
 * store.c - opening a message store, the names it accepts (user ids,
 * folder names), the paths they map to (the user hash, folder and message
 * directories) and the small file helpers the other store files share.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/store.h>

#include "store_private.h"

#define STORE_RM_DEPTH_MAX 64

G_DEFINE_QUARK(imta-store-error-quark, imta_store_error)

gboolean
store_set_io_error(GError **error, const char *what, const char *path, int errnum)
{
	g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_IO, "cannot %s %s: %s", what, path,
		    g_strerror(errnum));
	return FALSE;
}

guint32
store_fnv1a(const void *data, gsize len, guint32 seed)
{
	const guint8 *p = data;
	guint32 h = seed;

	for (gsize i = 0; i < len; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

/* ---- names -------------------------------------------------------------- */

gboolean
store_check_userid(const char *userid, GError **error)
{
	gsize n;

	if (userid == NULL || userid[0] == '\0') {
		g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_INVALID,
			    "a user id must not be empty");
		return FALSE;
	}
	n = strlen(userid);
	if (n > STORE_USERID_MAX) {
		g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_INVALID,
			    "user id longer than %d bytes", STORE_USERID_MAX);
		return FALSE;
	}
	if (userid[0] == '.') {
		g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_INVALID,
			    "user id \"%s\" starts with '.'", userid);
		return FALSE;
	}
	for (gsize i = 0; i < n; i++) {
		guchar c = (guchar)userid[i];

		if (c == '/' || c < 0x20 || c == 0x7f) {
			g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_INVALID,
				    "user id has a forbidden character (0x%02x) at byte %zu", c,
				    i + 1);
			return FALSE;
		}
	}
	return TRUE;
}

static gboolean
folder_invalid(GError **error, const char *name, const char *why)
{
	g_autofree char *shown = g_strescape(name, NULL);

	g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_INVALID,
		    "invalid folder name \"%.80s\": %s", shown, why);
	return FALSE;
}

static gboolean
folder_check(const char *name, GError **error)
{
	gsize n = strlen(name);
	guint depth = 0;

	if (n == 0)
		return folder_invalid(error, name, "empty");
	if (n > STORE_NAME_MAX)
		return folder_invalid(error, name, "longer than 255 bytes");
	if (!g_utf8_validate(name, (gssize)n, NULL))
		return folder_invalid(error, name, "not UTF-8");
	for (gsize i = 0; i < n; i++)
		if ((guchar)name[i] < 0x20 || name[i] == 0x7f)
			return folder_invalid(error, name, "control character");
	for (const char *p = name; ; ) {
		const char *slash = strchr(p, '/');
		gsize len = slash != NULL ? (gsize)(slash - p) : strlen(p);

		if (len == 0)
			return folder_invalid(error, name, "empty component");
		if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
			return folder_invalid(error, name, "\".\" or \"..\" component");
		if (++depth > STORE_FOLDER_DEPTH_MAX)
			return folder_invalid(error, name, "too many levels");
		if (slash == NULL)
			break;
		p = slash + 1;
	}
	return TRUE;
}

char *
store_folder_canonical(const char *name, GError **error)
{
	if (name == NULL)
		return g_strdup("INBOX");
	if (!folder_check(name, error))
		return NULL;
	if (g_ascii_strncasecmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == '/'))
		return g_strconcat("INBOX", name + 5, NULL);
	return g_strdup(name);
}

/* '%', and '.' at the start, are written %XX so a component never is "."
 * or "..", never hides, and decodes back unambiguously. */
static void
folder_encode_component(GString *out, const char *p, gsize len)
{
	g_string_append_c(out, STORE_FOLDER_PREFIX);
	for (gsize i = 0; i < len; i++) {
		guchar c = (guchar)p[i];

		if (c == '%' || (i == 0 && c == '.'))
			g_string_append_printf(out, "%%%02X", c);
		else
			g_string_append_c(out, (char)c);
	}
}

char *
store_folder_decode_component(const char *entry)
{
	GString *out;

	if (entry[0] != STORE_FOLDER_PREFIX || entry[1] == '\0')
		return NULL;
	out = g_string_new(NULL);
	for (const char *p = entry + 1; *p != '\0'; p++) {
		if (*p != '%') {
			g_string_append_c(out, *p);
			continue;
		}
		if (!g_ascii_isxdigit(p[1]) || !g_ascii_isxdigit(p[2])) {
			g_string_free(out, TRUE);
			return NULL;
		}
		g_string_append_c(out, (char)(g_ascii_xdigit_value(p[1]) * 16 +
					      g_ascii_xdigit_value(p[2])));
		p += 2;
	}
	return g_string_free(out, FALSE);
}

gboolean
store_folder_entry_matches(const char *entry, const char *name)
{
	GString *enc = g_string_new(NULL);
	gboolean same;

	folder_encode_component(enc, name, strlen(name));
	same = strcmp(enc->str, entry) == 0;
	g_string_free(enc, TRUE);
	return same;
}

char *
store_folder_dir(const char *user_dir, const char *canonical)
{
	GString *out = g_string_new(user_dir);

	if (strcmp(canonical, "INBOX") == 0)
		return g_string_free(out, FALSE);
	for (const char *p = canonical; ; ) {
		const char *slash = strchr(p, '/');
		gsize len = slash != NULL ? (gsize)(slash - p) : strlen(p);

		g_string_append_c(out, '/');
		folder_encode_component(out, p, len);
		if (slash == NULL)
			break;
		p = slash + 1;
	}
	return g_string_free(out, FALSE);
}

char *
store_message_rel(guint32 uid)
{
	return g_strdup_printf("%02x/%u.msg", (uid / STORE_MSGS_PER_DIR) % 256, uid);
}

char *
store_message_path(const char *folder_dir, guint32 uid)
{
	return g_strdup_printf("%s/%02x/%u.msg", folder_dir, (uid / STORE_MSGS_PER_DIR) % 256,
			       uid);
}

char *
imta_store_hash_dir(const char *userid)
{
	guint32 h = store_fnv1a(userid, strlen(userid), 2166136261u);

	return g_strdup_printf("%02x/%02x", h & 0xff, (h >> 8) & 0xff);
}

char *
store_user_dir_on(ImtaStore *store, const char *userid, const char *partition_path)
{
	g_autofree char *hash = imta_store_hash_dir(userid);

	return g_strdup_printf("%s/=user/%s/=%s", partition_path, hash, userid);
}

/* ---- the store ---------------------------------------------------------- */

const char *
imta_store_root(const ImtaStore *store)
{
	return store->root;
}

const char *
imta_store_partition_path(const ImtaStore *store, const char *partition)
{
	if (partition == NULL)
		return NULL;
	return g_hash_table_lookup(store->partitions, partition);
}

char *
imta_store_user_path(ImtaStore *store, const char *userid, const char *partition)
{
	g_autofree char *found = NULL;
	const char *path;

	if (partition == NULL) {
		g_autofree char *dir = store_find_user(store, userid, &found, NULL);

		partition = found != NULL ? found : store->default_partition;
	}
	path = imta_store_partition_path(store, partition);
	if (path == NULL)
		return NULL;
	return store_user_dir_on(store, userid, path);
}

gboolean
store_mkdir_p(const char *path, GError **error)
{
	if (g_mkdir_with_parents(path, 0750) < 0)
		return store_set_io_error(error, "create the directory", path, errno);
	return TRUE;
}

static gboolean
rm_rf_at(int dirfd, const char *name, const char *path, guint depth, GError **error)
{
	struct stat st;
	int fd;
	GDir *dir;
	const char *entry;

	if (depth > STORE_RM_DEPTH_MAX) {
		g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_IO,
			    "cannot remove %s: nested too deeply", path);
		return FALSE;
	}
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? TRUE : store_set_io_error(error, "examine", path, errno);
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
			return store_set_io_error(error, "remove", path, errno);
		return TRUE;
	}
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return store_set_io_error(error, "open", path, errno);
	dir = g_dir_open(path, 0, NULL);
	while (dir != NULL && (entry = g_dir_read_name(dir)) != NULL) {
		g_autofree char *sub = g_build_filename(path, entry, NULL);

		if (!rm_rf_at(fd, entry, sub, depth + 1, error)) {
			g_dir_close(dir);
			close(fd);
			return FALSE;
		}
	}
	if (dir != NULL)
		g_dir_close(dir);
	close(fd);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return store_set_io_error(error, "remove", path, errno);
	return TRUE;
}

gboolean
store_rm_rf(const char *path, GError **error)
{
	return rm_rf_at(AT_FDCWD, path, path, 0, error);
}

gboolean
store_fsync_path(const char *path, gboolean directory, GError **error)
{
	int fd = open(path, (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);

	if (fd < 0)
		return store_set_io_error(error, "open", path, errno);
	if (fsync(fd) < 0) {
		int errnum = errno;

		close(fd);
		return store_set_io_error(error, "sync", path, errnum);
	}
	close(fd);
	return TRUE;
}

gboolean
store_syncfs(const char *path, GError **error)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return store_set_io_error(error, "open", path, errno);
#ifdef __linux__
	rc = syncfs(fd);
#else
	sync();
	rc = 0;
#endif
	if (rc < 0) {
		int errnum = errno;

		close(fd);
		return store_set_io_error(error, "sync the file system of", path, errnum);
	}
	close(fd);
	return TRUE;
}

char *
store_tmp_name(ImtaStore *store)
{
	guint n;

	g_mutex_lock(&store->lock);
	n = ++store->tmp_counter;
	g_mutex_unlock(&store->lock);
	return g_strdup_printf("%d.%u.%08x", (int)getpid(), n, g_random_int());
}

gboolean
store_write_fd(int fd, const char *path, const char *data, gsize len, GError **error)
{
	gsize done = 0;

	while (done < len) {
		ssize_t n = write(fd, data + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return store_set_io_error(error, "write", path, n < 0 ? errno : EIO);
		done += (gsize)n;
	}
	return TRUE;
}

gboolean
store_write_atomic(ImtaStore *store, const char *path, const char *data, gsize len,
		   gboolean sync, GError **error)
{
	g_autofree char *dir = g_path_get_dirname(path);
	g_autofree char *tmpname = store != NULL ? store_tmp_name(store) :
				   g_strdup_printf("%d", (int)getpid());
	g_autofree char *tmp = g_strdup_printf("%s/.tmp.%s", dir, tmpname);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);

	if (fd < 0 && errno == ENOENT) {
		if (!store_mkdir_p(dir, error))
			return FALSE;
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	}

	if (fd < 0)
		return store_set_io_error(error, "create", tmp, errno);
	if (!store_write_fd(fd, tmp, data, len, error)) {
		close(fd);
		unlink(tmp);
		return FALSE;
	}
	if ((sync && fsync(fd) < 0) || close(fd) < 0) {
		int errnum = errno;

		unlink(tmp);
		return store_set_io_error(error, "write", tmp, errnum);
	}
	if (rename(tmp, path) < 0) {
		int errnum = errno;

		unlink(tmp);
		return store_set_io_error(error, "rename", tmp, errnum);
	}
	return !sync || store_fsync_path(dir, TRUE, error);
}

gboolean
store_read_all(int fd, const char *path, gsize max, GByteArray **out_r, GError **error)
{
	struct stat st;
	g_autoptr(GByteArray) buf = NULL;
	gsize done = 0;

	if (fstat(fd, &st) < 0)
		return store_set_io_error(error, "examine", path, errno);
	if ((guint64)st.st_size > max) {
		g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_CORRUPT,
			    "%s is too large (%lld bytes)", path, (long long)st.st_size);
		return FALSE;
	}
	buf = g_byte_array_sized_new((guint)st.st_size);
	g_byte_array_set_size(buf, (guint)st.st_size);
	while (done < buf->len) {
		ssize_t n = pread(fd, buf->data + done, buf->len - done, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return store_set_io_error(error, "read", path, errno);
		if (n == 0)
			break;
		done += (gsize)n;
	}
	g_byte_array_set_size(buf, (guint)done);
	*out_r = g_steal_pointer(&buf);
	return TRUE;
}

/* ---- open and close ----------------------------------------------------- */

static gint
store_cmp_names(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

ImtaStore *
imta_store_open(const ImtaStoreConfig *config, GError **error)
{
	ImtaStore *store;
	GHashTableIter it;
	gpointer key, value;

	if (config->root == NULL || !g_path_is_absolute(config->root)) {
		g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_INVALID,
			    "the store root must be an absolute path");
		return NULL;
	}
	store = g_new0(ImtaStore, 1);
	g_mutex_init(&store->lock);
	store->root = g_strdup(config->root);
	store->mboxlist = g_build_filename(store->root, "mboxlist", NULL);
	store->snapshots = g_build_filename(store->root, "snapshots", NULL);
	store->default_partition = g_strdup(config->default_partition != NULL ?
					    config->default_partition : "primary");
	store->partitions = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	store->partition_names = g_ptr_array_new();
	if (config->partitions != NULL) {
		g_hash_table_iter_init(&it, config->partitions);
		while (g_hash_table_iter_next(&it, &key, &value))
			g_hash_table_insert(store->partitions, g_strdup(key), g_strdup(value));
	}
	if (!g_hash_table_contains(store->partitions, "primary"))
		g_hash_table_insert(store->partitions, g_strdup("primary"),
				    g_build_filename(store->root, "partition", "primary", NULL));
	g_hash_table_iter_init(&it, store->partitions);
	while (g_hash_table_iter_next(&it, &key, &value))
		g_ptr_array_add(store->partition_names, key);
	g_ptr_array_sort(store->partition_names, store_cmp_names);
	if (!g_hash_table_contains(store->partitions, store->default_partition)) {
		g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_INVALID,
			    "the default partition %s is not defined", store->default_partition);
		imta_store_close(store);
		return NULL;
	}
	if (!store_mkdir_p(store->mboxlist, error) || !store_mkdir_p(store->snapshots, error)) {
		imta_store_close(store);
		return NULL;
	}
	for (guint i = 0; i < store->partition_names->len; i++) {
		const char *path = g_hash_table_lookup(store->partitions,
						       store->partition_names->pdata[i]);
		g_autofree char *users = g_build_filename(path, "=user", NULL);
		g_autofree char *tmp = g_build_filename(path, "tmp", NULL);

		if (!store_mkdir_p(users, error) || !store_mkdir_p(tmp, error)) {
			imta_store_close(store);
			return NULL;
		}
	}
	return store;
}

void
imta_store_close(ImtaStore *store)
{
	if (store == NULL)
		return;
	g_free(store->root);
	g_free(store->mboxlist);
	g_free(store->snapshots);
	g_free(store->default_partition);
	g_ptr_array_unref(store->partition_names);
	g_hash_table_unref(store->partitions);
	g_mutex_clear(&store->lock);
	g_free(store);
}
