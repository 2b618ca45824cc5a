/*
 * index.c - a folder's store.idx (fixed-size records behind a header)
 * and store.cache (the envelope fields of each message), their locking,
 * validation, appends and rewrites.  Every number is little-endian; every
 * field read from disk is checked before use, so a damaged index is
 * reported as CORRUPT, never trusted.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <glib.h>

#include <imta/stat_untimed.h>
#include <imta/store.h>

#include "store_private.h"

#define IDX_OPEN_RETRIES 100
#define IDX_MAX_BYTES ((gsize)STORE_IDX_HEADER_SIZE + \
		       (gsize)STORE_IDX_MAX_RECORDS * STORE_IDX_RECORD_SIZE)
#define CACHE_MAX_BYTES ((gsize)1 << 31)
#define HEADER_SCAN_MAX (256 * 1024)  /* bytes of a message searched for its header */
#define FNV_SEED 2166136261u

static const char *const cache_field_names[STORE_CACHE_FIELDS] = {
	"Date", "From", "To", "Cc", "Subject", "Message-ID",
};

static void
put32(guint8 *p, guint32 v)
{
	v = GUINT32_TO_LE(v);
	memcpy(p, &v, 4);
}

static void
put64(guint8 *p, guint64 v)
{
	v = GUINT64_TO_LE(v);
	memcpy(p, &v, 8);
}

static guint32
get32(const guint8 *p)
{
	guint32 v;

	memcpy(&v, p, 4);
	return GUINT32_FROM_LE(v);
}

static guint64
get64(const guint8 *p)
{
	guint64 v;

	memcpy(&v, p, 8);
	return GUINT64_FROM_LE(v);
}

static gboolean
corrupt(GError **error, const char *dir, const char *what)
{
	g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_CORRUPT,
		    "%s/store.idx: %s (run reconstruct)", dir, what);
	return FALSE;
}

/* ---- header and records ------------------------------------------------- */

void
store_header_encode(const StoreIdxHeader *h, guint8 *out)
{
	memset(out, 0, STORE_IDX_HEADER_SIZE);
	memcpy(out, STORE_IDX_MAGIC, 8);
	put32(out + 8, STORE_IDX_VERSION);
	put32(out + 12, STORE_IDX_RECORD_SIZE);
	put32(out + 16, h->uidvalidity);
	put32(out + 20, h->uidnext);
	put32(out + 24, h->count);
	put64(out + 32, h->bytes);
	put64(out + 40, h->cache_end);
	put64(out + 48, h->modseq);
	/* The id of the cache file the index goes with, so a cache
	 * replaced without its index is noticed. */
	put32(out + 28, h->cache_id);
	put32(out + 60, store_fnv1a(out, 60, FNV_SEED));
}

gboolean
store_header_parse(const guint8 *data, gsize len, StoreIdxHeader *h, GError **error)
{
	if (len < STORE_IDX_HEADER_SIZE || memcmp(data, STORE_IDX_MAGIC, 8) != 0) {
		g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_CORRUPT,
			    "not an index (bad magic or too short)");
		return FALSE;
	}
	if (get32(data + 8) != STORE_IDX_VERSION || get32(data + 12) != STORE_IDX_RECORD_SIZE) {
		g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_CORRUPT,
			    "unknown index version %u", get32(data + 8));
		return FALSE;
	}
	if (get32(data + 60) != store_fnv1a(data, 60, FNV_SEED)) {
		g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_CORRUPT,
			    "bad header checksum");
		return FALSE;
	}
	h->uidvalidity = get32(data + 16);
	h->uidnext = get32(data + 20);
	h->count = get32(data + 24);
	h->bytes = get64(data + 32);
	h->cache_end = get64(data + 40);
	h->modseq = get64(data + 48);
	h->cache_id = get32(data + 28);
	if (h->uidvalidity == 0 || h->uidnext == 0 || h->count > STORE_IDX_MAX_RECORDS ||
	    h->count >= h->uidnext || h->cache_end < STORE_CACHE_HEADER_SIZE ||
	    h->cache_end > CACHE_MAX_BYTES) {
		g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_CORRUPT,
			    "header fields out of range");
		return FALSE;
	}
	return TRUE;
}

static guint32
record_checksum(const guint8 *p)
{
	guint32 h = store_fnv1a(p, 4, FNV_SEED);

	return store_fnv1a(p + 8, 28, h);
}

void
store_record_encode(const StoreIdxRecord *r, guint8 *out)
{
	put32(out, r->uid);
	put32(out + STORE_IDX_FLAGS_OFFSET, r->flags);
	put64(out + 8, r->size);
	put64(out + 16, (guint64)r->internal_date);
	put64(out + 24, r->cache_offset);
	put32(out + 32, r->cache_length);
	put32(out + 36, record_checksum(out));
}

gboolean
store_record_parse(const guint8 *p, StoreIdxRecord *r)
{
	if (get32(p + 36) != record_checksum(p))
		return FALSE;
	r->uid = get32(p);
	r->flags = get32(p + STORE_IDX_FLAGS_OFFSET);
	r->size = get64(p + 8);
	r->internal_date = (gint64)get64(p + 16);
	r->cache_offset = get64(p + 24);
	r->cache_length = get32(p + 32);
	return r->uid != 0;
}

/* ---- locking ------------------------------------------------------------ */

static gboolean
pread_full(int fd, void *buf, gsize len, off_t off)
{
	gsize done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return FALSE;
		}
		done += (gsize)n;
	}
	return TRUE;
}

static gboolean
pwrite_full(int fd, const void *buf, gsize len, off_t off)
{
	gsize done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return FALSE;
		}
		done += (gsize)n;
	}
	return TRUE;
}

/* Lock the index file that is in place: a rewrite renames a new index
 * over the old one, so a lock taken on a replaced file is retried. */
static int
idx_open_locked(const char *path, gboolean exclusive, GError **error)
{
	for (guint attempt = 0; attempt < IDX_OPEN_RETRIES; attempt++) {
		struct stat a, b;
		int fd = open(path, (exclusive ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);

		if (fd < 0) {
			if (errno == ENOENT)
				g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND,
					    "no folder at %s", path);
			else
				store_set_io_error(error, "open", path, errno);
			return -1;
		}
		while (flock(fd, exclusive ? LOCK_EX : LOCK_SH) < 0) {
			if (errno != EINTR) {
				int errnum = errno;

				close(fd);
				store_set_io_error(error, "lock", path, errnum);
				return -1;
			}
		}
		if (imta_fstat_untimed(fd, &a) == 0 && imta_stat_untimed(AT_FDCWD, path, 0, &b) == 0 &&
		    a.st_ino == b.st_ino &&
		    a.st_dev == b.st_dev)
			return fd;
		close(fd);
	}
	g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_IO,
		    "cannot lock %s: it keeps being replaced", path);
	return -1;
}

void
store_folder_close(StoreFolder *folder)
{
	if (folder == NULL)
		return;
	if (folder->cache_fd >= 0)
		close(folder->cache_fd);
	if (folder->idx_fd >= 0)
		close(folder->idx_fd);	/* releases the lock */
	g_free(folder->dir);
	g_free(folder);
}

StoreFolder *
store_folder_open(const char *dir, gboolean exclusive, GError **error)
{
	g_autoptr(StoreFolder) folder = g_new0(StoreFolder, 1);
	g_autofree char *idx = g_build_filename(dir, "store.idx", NULL);
	g_autofree char *cache = g_build_filename(dir, "store.cache", NULL);
	guint8 head[STORE_IDX_HEADER_SIZE];
	GError *local = NULL;

	folder->dir = g_strdup(dir);
	folder->cache_fd = -1;
	folder->idx_fd = idx_open_locked(idx, exclusive, error);
	if (folder->idx_fd < 0)
		return NULL;
	if (!pread_full(folder->idx_fd, head, sizeof head, 0)) {
		corrupt(error, dir, "the header cannot be read");
		return NULL;
	}
	if (!store_header_parse(head, sizeof head, &folder->header, &local)) {
		corrupt(error, dir, local->message);
		g_error_free(local);
		return NULL;
	}
	folder->cache_fd = open(cache, (exclusive ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
	if (folder->cache_fd < 0) {
		if (errno == ENOENT)
			corrupt(error, dir, "store.cache is missing");
		else
			store_set_io_error(error, "open", cache, errno);
		return NULL;
	}
	return g_steal_pointer(&folder);
}

gboolean
store_header_write(StoreFolder *folder, GError **error)
{
	guint8 head[STORE_IDX_HEADER_SIZE];

	store_header_encode(&folder->header, head);
	if (!pwrite_full(folder->idx_fd, head, sizeof head, 0))
		return store_set_io_error(error, "write the index of", folder->dir, errno);
	return TRUE;
}

/* ---- new folders -------------------------------------------------------- */

static void
cache_header_encode(guint8 *out, guint32 cache_id)
{
	memset(out, 0, STORE_CACHE_HEADER_SIZE);
	memcpy(out, STORE_CACHE_MAGIC, 8);
	put32(out + 8, STORE_IDX_VERSION);
	put32(out + 12, cache_id);
}

static gboolean
write_new_file(const char *path, const guint8 *data, gsize len, gboolean sync, GError **error)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);

	if (fd < 0)
		return store_set_io_error(error, "create", path, errno);
	if (!pwrite_full(fd, data, len, 0) || (sync && fsync(fd) < 0)) {
		int errnum = errno;

		close(fd);
		return store_set_io_error(error, "write", path, errnum);
	}
	close(fd);
	return TRUE;
}

/* A new file, written, synced, locked and left open read-write. */
static int
write_new_fd(const char *path, const guint8 *data, gsize len, GError **error)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);

	if (fd < 0) {
		store_set_io_error(error, "create", path, errno);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0 || !pwrite_full(fd, data, len, 0) || fsync(fd) < 0) {
		int errnum = errno;

		close(fd);
		store_set_io_error(error, "write", path, errnum);
		return -1;
	}
	return fd;
}

/* The index is created last: a folder exists once its store.idx does. */
gboolean
store_index_write_empty(const char *dir, guint32 uidvalidity, gboolean sync, GError **error)
{
	g_autofree char *idx = g_build_filename(dir, "store.idx", NULL);
	g_autofree char *cache = g_build_filename(dir, "store.cache", NULL);
	g_autofree char *tmp = g_build_filename(dir, ".new.store.idx", NULL);
	StoreIdxHeader h = { uidvalidity, 1, 0, 0, STORE_CACHE_HEADER_SIZE, 1, g_random_int() };
	guint8 head[STORE_IDX_HEADER_SIZE];
	guint8 chead[STORE_CACHE_HEADER_SIZE];

	cache_header_encode(chead, h.cache_id);
	store_header_encode(&h, head);
	if (!write_new_file(cache, chead, sizeof chead, sync, error) ||
	    !write_new_file(tmp, head, sizeof head, sync, error))
		return FALSE;
	if (rename(tmp, idx) < 0)
		return store_set_io_error(error, "rename", tmp, errno);
	return !sync || store_fsync_path(dir, TRUE, error);
}

gboolean
store_folder_init(const char *dir, guint32 uidvalidity, gboolean sync, GError **error)
{
	g_autofree char *idx = g_build_filename(dir, "store.idx", NULL);

	if (g_mkdir_with_parents(dir, 0750) < 0)
		return store_set_io_error(error, "create the directory", dir, errno);
	if (g_file_test(idx, G_FILE_TEST_EXISTS)) {
		g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_EXISTS, "%s exists", dir);
		return FALSE;
	}
	return store_index_write_empty(dir, uidvalidity, sync, error);
}

/* ---- reading ------------------------------------------------------------ */

gboolean
store_cache_entry_ok(const StoreIdxRecord *r, const GByteArray *cache, guint64 end)
{
	guint64 off = r->cache_offset, len = r->cache_length;
	guint64 pos;

	if (off < STORE_CACHE_HEADER_SIZE || len < 8 || off > end || len > end - off ||
	    end > cache->len)
		return FALSE;
	if (get32(cache->data + off) != r->uid || get32(cache->data + off + 4) != len)
		return FALSE;
	pos = off + 8;
	for (guint i = 0; i < STORE_CACHE_FIELDS; i++) {
		guint32 flen;

		if (pos + 2 > off + len)
			return FALSE;
		flen = cache->data[pos] | (guint32)cache->data[pos + 1] << 8;
		pos += 2;
		if (flen == STORE_CACHE_ABSENT)
			continue;
		if (flen > STORE_CACHE_FIELD_MAX || pos + flen > off + len)
			return FALSE;
		pos += flen;
	}
	return pos == off + len;
}

gboolean
store_folder_read(StoreFolder *folder, GArray **records_r, GByteArray **cache_r,
		  GError **error)
{
	g_autoptr(GByteArray) idx = NULL;
	g_autoptr(GByteArray) cache = NULL;
	g_autoptr(GArray) records = NULL;
	g_autofree char *idx_path = g_build_filename(folder->dir, "store.idx", NULL);
	g_autofree char *cache_path = g_build_filename(folder->dir, "store.cache", NULL);
	StoreIdxHeader *h = &folder->header;
	guint64 bytes = 0;
	guint32 last = 0;
	GError *local = NULL;

	if (!store_read_all(folder->idx_fd, idx_path, IDX_MAX_BYTES, &idx, error) ||
	    !store_read_all(folder->cache_fd, cache_path, CACHE_MAX_BYTES, &cache, error))
		return FALSE;
	if (!store_header_parse(idx->data, idx->len, h, &local)) {
		corrupt(error, folder->dir, local->message);
		g_error_free(local);
		return FALSE;
	}
	if (idx->len < STORE_IDX_HEADER_SIZE + (gsize)h->count * STORE_IDX_RECORD_SIZE)
		return corrupt(error, folder->dir, "fewer records than the header counts");
	if (cache->len < h->cache_end || cache->len < STORE_CACHE_HEADER_SIZE ||
	    memcmp(cache->data, STORE_CACHE_MAGIC, 8) != 0 ||
	    get32(cache->data + 12) != h->cache_id)
		return corrupt(error, folder->dir, "store.cache does not belong to this index");
	records = g_array_sized_new(FALSE, FALSE, sizeof(StoreIdxRecord), h->count);
	for (guint32 i = 0; i < h->count; i++) {
		StoreIdxRecord r;

		if (!store_record_parse(idx->data + STORE_IDX_HEADER_SIZE +
					(gsize)i * STORE_IDX_RECORD_SIZE, &r))
			return corrupt(error, folder->dir, "a record has a bad checksum");
		if (r.uid <= last || r.uid >= h->uidnext)
			return corrupt(error, folder->dir, "UIDs out of order");
		if (!store_cache_entry_ok(&r, cache, h->cache_end))
			return corrupt(error, folder->dir, "a cache entry is out of bounds");
		if (r.size > G_MAXINT64 - bytes)
			return corrupt(error, folder->dir, "sizes overflow");
		bytes += r.size;
		last = r.uid;
		g_array_append_val(records, r);
	}
	if (bytes != h->bytes)
		return corrupt(error, folder->dir, "the header's byte count is wrong");
	*records_r = g_steal_pointer(&records);
	if (cache_r != NULL)
		*cache_r = g_steal_pointer(&cache);
	return TRUE;
}

ImtaStoreMessage *
store_message_from(const StoreIdxRecord *r, const GByteArray *cache, GError **error)
{
	ImtaStoreMessage *m = g_new0(ImtaStoreMessage, 1);
	char **fields[STORE_CACHE_FIELDS] = {
		&m->date, &m->from, &m->to, &m->cc, &m->subject, &m->message_id,
	};
	gsize pos = (gsize)r->cache_offset + 8;

	m->uid = r->uid;
	m->flags = r->flags;
	m->size = (gint64)r->size;
	m->internal_date = r->internal_date;
	/* The entry was checked by store_cache_entry_ok(). */
	for (guint i = 0; cache != NULL && i < STORE_CACHE_FIELDS; i++) {
		guint32 flen = cache->data[pos] | (guint32)cache->data[pos + 1] << 8;

		pos += 2;
		if (flen == STORE_CACHE_ABSENT)
			continue;
		*fields[i] = g_strndup((const char *)cache->data + pos, flen);
		pos += flen;
	}
	return m;
}

void
imta_store_message_free(ImtaStoreMessage *message)
{
	if (message == NULL)
		return;
	g_free(message->date);
	g_free(message->from);
	g_free(message->to);
	g_free(message->cc);
	g_free(message->subject);
	g_free(message->message_id);
	g_free(message);
}

/* ---- the envelope fields ------------------------------------------------ */

/* Unfold a header value: line breaks go, the blanks after them stay;
 * leading and trailing blanks are trimmed; at most STORE_CACHE_FIELD_MAX
 * bytes, cut at a character boundary. */
static GString *
cache_unfold(const char *p, gsize len)
{
	GString *out = g_string_sized_new(MIN(len, STORE_CACHE_FIELD_MAX) + 1);

	for (gsize i = 0; i < len && out->len < STORE_CACHE_FIELD_MAX; i++) {
		if (p[i] == '\r' || p[i] == '\n')
			continue;
		if (p[i] == '\0')
			continue;
		g_string_append_c(out, p[i] == '\t' ? ' ' : p[i]);
	}
	while (out->len > 0 && out->str[out->len - 1] == ' ')
		g_string_truncate(out, out->len - 1);
	gsize lead = 0;

	while (lead < out->len && out->str[lead] == ' ')
		lead++;
	g_string_erase(out, 0, (gssize)lead);
	if (out->len >= STORE_CACHE_FIELD_MAX) {
		gsize cut = STORE_CACHE_FIELD_MAX;

		while (cut > 0 && ((guchar)out->str[cut] & 0xc0) == 0x80)
			cut--;
		g_string_truncate(out, cut);
	}
	return out;
}

static gint
cache_field_index(const char *name, gsize len)
{
	for (guint i = 0; i < STORE_CACHE_FIELDS; i++)
		if (strlen(cache_field_names[i]) == len &&
		    g_ascii_strncasecmp(cache_field_names[i], name, len) == 0)
			return (gint)i;
	return -1;
}

GByteArray *
store_cache_entry(guint32 uid, const char *content, gsize length)
{
	GString *values[STORE_CACHE_FIELDS] = { NULL };
	GByteArray *out = g_byte_array_sized_new(256);
	gsize end = MIN(length, (gsize)HEADER_SCAN_MAX), pos = 0;
	guint8 word[4];

	while (pos < end && content[pos] != '\n' && !(content[pos] == '\r' && pos + 1 < end &&
						      content[pos + 1] == '\n')) {
		gsize line_end = pos, colon, fend;
		gint idx;

		/* One field: its first line and the continuation lines. */
		while (line_end < end) {
			const char *nl = memchr(content + line_end, '\n', end - line_end);

			line_end = nl != NULL ? (gsize)(nl - content) + 1 : end;
			if (line_end >= end || (content[line_end] != ' ' &&
						content[line_end] != '\t'))
				break;
		}
		fend = line_end;
		for (colon = pos; colon < fend && content[colon] != ':'; colon++)
			;
		idx = colon < fend ? cache_field_index(content + pos, colon - pos) : -1;
		if (idx >= 0 && values[idx] == NULL)
			values[idx] = cache_unfold(content + colon + 1, fend - colon - 1);
		pos = line_end;
	}
	put32(word, uid);
	g_byte_array_append(out, word, 4);
	g_byte_array_append(out, word, 4);	/* the length, set below */
	for (guint i = 0; i < STORE_CACHE_FIELDS; i++) {
		guint8 len2[2];
		guint32 flen = values[i] != NULL ? (guint32)values[i]->len : STORE_CACHE_ABSENT;

		len2[0] = flen & 0xff;
		len2[1] = (flen >> 8) & 0xff;
		g_byte_array_append(out, len2, 2);
		if (values[i] != NULL) {
			g_byte_array_append(out, (const guint8 *)values[i]->str, values[i]->len);
			g_string_free(values[i], TRUE);
		}
	}
	put32(out->data + 4, out->len);
	return out;
}

GArray *
store_index_salvage(const guint8 *data, gsize len, StoreIdxHeader *h_r, gboolean *header_ok_r)
{
	GArray *records = g_array_new(FALSE, FALSE, sizeof(StoreIdxRecord));
	gsize n = len > STORE_IDX_HEADER_SIZE ?
		  (len - STORE_IDX_HEADER_SIZE) / STORE_IDX_RECORD_SIZE : 0;
	guint32 last = 0;

	*header_ok_r = store_header_parse(data, len, h_r, NULL);
	if (*header_ok_r && h_r->count < n)
		n = h_r->count;
	for (gsize i = 0; i < n && i < STORE_IDX_MAX_RECORDS; i++) {
		StoreIdxRecord r;

		if (!store_record_parse(data + STORE_IDX_HEADER_SIZE + i * STORE_IDX_RECORD_SIZE,
					&r) || r.uid <= last || r.uid == G_MAXUINT32)
			continue;
		if (*header_ok_r && r.uid >= h_r->uidnext)
			continue;
		last = r.uid;
		g_array_append_val(records, r);
	}
	return records;
}

/* ---- writing ------------------------------------------------------------ */

/* Records and cache entries are written whole before the header that
 * makes them visible, so a process killed in between leaves only
 * invisible bytes past the end the header names. */
gboolean
store_folder_append(StoreFolder *folder, guint32 uid, guint32 flags, guint64 size,
		    gint64 internal_date, const GByteArray *entry, GError **error)
{
	StoreIdxHeader *h = &folder->header;
	StoreIdxRecord r = { uid, flags, size, internal_date, h->cache_end, entry->len };
	guint8 rec[STORE_IDX_RECORD_SIZE];

	if (h->count >= STORE_IDX_MAX_RECORDS || uid == G_MAXUINT32 ||
	    h->cache_end + entry->len > CACHE_MAX_BYTES) {
		g_set_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_IO,
			    "the folder %s is full", folder->dir);
		return FALSE;
	}
	store_record_encode(&r, rec);
	if (!pwrite_full(folder->cache_fd, entry->data, entry->len, (off_t)h->cache_end))
		return store_set_io_error(error, "write the cache of", folder->dir, errno);
	if (!pwrite_full(folder->idx_fd, rec, sizeof rec, STORE_IDX_HEADER_SIZE +
			 (off_t)h->count * STORE_IDX_RECORD_SIZE))
		return store_set_io_error(error, "write the index of", folder->dir, errno);
	h->cache_end += entry->len;
	h->count++;
	h->bytes += size;
	h->uidnext = uid + 1;
	h->modseq++;
	return store_header_write(folder, error);
}

static gboolean
rewrite_cache_entry(StoreFolder *folder, const StoreIdxRecord *r, const GByteArray *cache,
		    guint64 cache_end, GByteArray *out)
{
	g_autofree char *path = NULL;
	g_autofree char *text = NULL;
	g_autoptr(GByteArray) entry = NULL;
	gsize len = 0;

	if (cache != NULL && store_cache_entry_ok(r, cache, cache_end)) {
		g_byte_array_append(out, cache->data + r->cache_offset, r->cache_length);
		return TRUE;
	}
	/* Only the header part of the message is needed. */
	path = store_message_path(folder->dir, r->uid);
	if (!g_file_get_contents(path, &text, &len, NULL)) {
		text = g_strdup("");
		len = 0;
	}
	entry = store_cache_entry(r->uid, text, len);
	g_byte_array_append(out, entry->data, entry->len);
	return TRUE;
}

gboolean
store_folder_rewrite(StoreFolder *folder, GArray *records, const GByteArray *cache,
		     GError **error)
{
	g_autofree char *idx_path = g_build_filename(folder->dir, "store.idx", NULL);
	g_autofree char *cache_path = g_build_filename(folder->dir, "store.cache", NULL);
	g_autofree char *idx_tmp = g_build_filename(folder->dir, ".new.store.idx", NULL);
	g_autofree char *cache_tmp = g_build_filename(folder->dir, ".new.store.cache", NULL);
	g_autoptr(GByteArray) idx = g_byte_array_new();
	g_autoptr(GByteArray) ncache = g_byte_array_new();
	StoreIdxHeader h = folder->header;
	guint64 old_end = folder->header.cache_end;
	guint8 buf[STORE_IDX_HEADER_SIZE];
	int idx_fd, cache_fd;

	h.cache_id = g_random_int();
	cache_header_encode(buf, h.cache_id);
	g_byte_array_append(ncache, buf, STORE_CACHE_HEADER_SIZE);
	g_byte_array_set_size(idx, STORE_IDX_HEADER_SIZE);
	h.count = 0;
	h.bytes = 0;
	for (guint i = 0; i < records->len; i++) {
		StoreIdxRecord *r = &g_array_index(records, StoreIdxRecord, i);
		guint64 off = ncache->len;

		rewrite_cache_entry(folder, r, cache, old_end, ncache);
		r->cache_offset = off;
		r->cache_length = (guint32)(ncache->len - off);
		store_record_encode(r, buf);
		g_byte_array_append(idx, buf, STORE_IDX_RECORD_SIZE);
		h.count++;
		h.bytes += r->size;
		if (r->uid >= h.uidnext)
			h.uidnext = r->uid + 1;
	}
	h.cache_end = ncache->len;
	h.modseq++;
	store_header_encode(&h, idx->data);
	cache_fd = write_new_fd(cache_tmp, ncache->data, ncache->len, error);
	if (cache_fd < 0)
		return FALSE;
	/* The new index is locked before it is put in place, so no other
	 * writer gets in between. */
	idx_fd = write_new_fd(idx_tmp, idx->data, idx->len, error);
	if (idx_fd < 0) {
		close(cache_fd);
		return FALSE;
	}
	/* The cache first: an index never names a cache that is not there;
	 * a crash between the renames leaves a mismatch that reconstruct
	 * repairs from the index records and the message files. */
	if (rename(cache_tmp, cache_path) < 0 || rename(idx_tmp, idx_path) < 0) {
		close(cache_fd);
		close(idx_fd);
		return store_set_io_error(error, "replace the index of", folder->dir, errno);
	}
	close(folder->idx_fd);
	close(folder->cache_fd);
	folder->idx_fd = idx_fd;
	folder->cache_fd = cache_fd;
	folder->header = h;
	return store_fsync_path(folder->dir, TRUE, error);
}
