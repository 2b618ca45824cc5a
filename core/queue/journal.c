/*
 * journal.c - the commit journal of the group committer: one preallocated
 * segment file per committer, records of whole queue files, checkpoints,
 * and recovery of the segments that dead processes left (the protocol is
 * described in journal.h).
 *
 * Integers are stored little-endian.  Segment header (JOURNAL_HEADER_SIZE
 * bytes): magic "IMTAJRN\0", version, header size, generation, boot id
 * (40 bytes, NUL padded), CRC-32C of what precedes it.  Record: magic,
 * total length, CRC-32C of everything after the CRC field, file count,
 * generation, sequence number; then per file: name length, zero, content
 * length (64 bits), name, content.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <glib.h>

#include <imta/crc32c.h>
#include <imta/queue.h>

#include "journal.h"
#include "queue_file.h"

#define JOURNAL_MAGIC "IMTAJRN"          /* 8 bytes with its NUL */
#define JOURNAL_VERSION 1
#define JOURNAL_BOOT_ID_SIZE 40
#define JOURNAL_HEADER_SIZE 72
#define JOURNAL_HEADER_CRC_AT 64
#define JOURNAL_RECORD_MAGIC 0x4345524au /* "JREC" */
#define JOURNAL_RECORD_HEADER 32
#define JOURNAL_FILE_HEADER 16
#define JOURNAL_FILL_CHUNK (1024 * 1024)
#define JOURNAL_MIN_SIZE (64 * 1024)
#define JOURNAL_SEGMENT_SUFFIX ".seg"

struct _QueueJournal {
	int root_fd;
	const char *root;
	int dir_fd;             /* <root>/.journal */
	int fd;                 /* the segment, flock()ed for our life */
	char *name;             /* in dir_fd */
	gsize size;
	char boot_id[JOURNAL_BOOT_ID_SIZE];
	GByteArray *batch;      /* records being built: the turn's thread only */
	gboolean batch_too_big; /* a record of it would not fit an empty segment */
	guint64 seq;            /* the turn's thread only */

	GMutex lock;            /* protects what follows */
	GCond kick;
	gboolean stopping;
	guint64 generation;
	gsize tail;             /* where the next record goes */
	gint64 last_write;      /* monotonic time of the last append */
	gint64 first_write;     /* monotonic time of the oldest live record */
	gboolean idle_checkpoints;
	guint64 checkpoints;
	GThread *thread;
};

/* ---- encoding ------------------------------------------------------------ */

static void
put_u32(guchar *p, guint32 v)
{
	v = GUINT32_TO_LE(v);
	memcpy(p, &v, sizeof v);
}

static void
put_u64(guchar *p, guint64 v)
{
	v = GUINT64_TO_LE(v);
	memcpy(p, &v, sizeof v);
}

static guint32
get_u32(const guchar *p)
{
	guint32 v;

	memcpy(&v, p, sizeof v);
	return GUINT32_FROM_LE(v);
}

static guint64
get_u64(const guchar *p)
{
	guint64 v;

	memcpy(&v, p, sizeof v);
	return GUINT64_FROM_LE(v);
}

static void
journal_encode_header(guchar *h, guint64 generation, const char *boot_id)
{
	memset(h, 0, JOURNAL_HEADER_SIZE);
	memcpy(h, JOURNAL_MAGIC, sizeof JOURNAL_MAGIC);
	put_u32(h + 8, JOURNAL_VERSION);
	put_u32(h + 12, JOURNAL_HEADER_SIZE);
	put_u64(h + 16, generation);
	memcpy(h + 24, boot_id, JOURNAL_BOOT_ID_SIZE);
	put_u32(h + JOURNAL_HEADER_CRC_AT, imta_crc32c(0, h, JOURNAL_HEADER_CRC_AT));
}

/* FALSE when `h` is not a header this version wrote, or is damaged. */
static gboolean
journal_decode_header(const guchar *h, guint64 *generation_r, char *boot_id_r)
{
	if (memcmp(h, JOURNAL_MAGIC, sizeof JOURNAL_MAGIC) != 0 ||
	    get_u32(h + 8) != JOURNAL_VERSION || get_u32(h + 12) != JOURNAL_HEADER_SIZE ||
	    get_u32(h + JOURNAL_HEADER_CRC_AT) != imta_crc32c(0, h, JOURNAL_HEADER_CRC_AT))
		return FALSE;
	*generation_r = get_u64(h + 16);
	memcpy(boot_id_r, h + 24, JOURNAL_BOOT_ID_SIZE);
	return TRUE;
}

/* ---- small I/O helpers ------------------------------------------------- */

static int
journal_pwrite_all(int fd, const void *data, gsize length, off_t offset)
{
	const guchar *p = data;

	while (length > 0) {
		ssize_t n = pwrite(fd, p, length, offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		p += n;
		length -= (gsize)n;
		offset += n;
	}
	return 0;
}

/* 0, or an errno; EIO when the file is shorter than `length`. */
static int
journal_pread_all(int fd, void *data, gsize length, off_t offset)
{
	guchar *p = data;

	while (length > 0) {
		ssize_t n = pread(fd, p, length, offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		if (n == 0)
			return EIO;
		p += n;
		length -= (gsize)n;
		offset += n;
	}
	return 0;
}

static int
journal_fsync_fd(int fd)
{
	return fsync(fd) < 0 ? errno : 0;
}

static void
journal_set_error(GError **error, const char *root, const char *what, const char *rel,
		  int errnum)
{
	g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_IO, "cannot %s %s/%s: %s", what, root,
		    rel, g_strerror(errnum));
}

/* The id of this boot, NUL padded; FALSE when it cannot be read.  Tests
 * pretend a reboot by setting IMTA_TEST_BOOT_ID. */
static gboolean
journal_boot_id(char boot_id_r[JOURNAL_BOOT_ID_SIZE])
{
	g_autofree char *contents = NULL;
	const char *id = g_getenv("IMTA_TEST_BOOT_ID");

	if (id == NULL) {
		if (!g_file_get_contents("/proc/sys/kernel/random/boot_id", &contents, NULL, NULL))
			return FALSE;
		id = g_strstrip(contents);
	}
	if (id[0] == '\0' || strlen(id) >= JOURNAL_BOOT_ID_SIZE)
		return FALSE;
	memset(boot_id_r, 0, JOURNAL_BOOT_ID_SIZE);
	memcpy(boot_id_r, id, strlen(id));
	return TRUE;
}

/* ---- the segment ------------------------------------------------------- */

static gsize
journal_segment_size(void)
{
	const char *s = g_getenv("IMTA_TEST_JOURNAL_SIZE");
	guint64 size;

	if (s == NULL)
		return QUEUE_JOURNAL_DEFAULT_SIZE;
	size = g_ascii_strtoull(s, NULL, 10);
	return size < JOURNAL_MIN_SIZE ? JOURNAL_MIN_SIZE : (gsize)size;
}

/* <root>/.journal, made (and the root synced) when missing; -1 with errno. */
static int
journal_open_dir(int root_fd)
{
	if (mkdirat(root_fd, QUEUE_JOURNAL_DIR, 0700) == 0) {
		if (fsync(root_fd) < 0)
			return -1;
	} else if (errno != EEXIST) {
		return -1;
	}
	return openat(root_fd, QUEUE_JOURNAL_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* Write real zeros over the whole segment rather than posix_fallocate()
 * alone: fallocated blocks are "unwritten" extents, and the first write
 * into each would make fdatasync() write the extent tree too.  Then the
 * header, then one fsync: from now on only data blocks change. */
static int
journal_fill(QueueJournal *journal)
{
	g_autofree guchar *zeros = g_malloc0(JOURNAL_FILL_CHUNK);
	guchar header[JOURNAL_HEADER_SIZE];
	int errnum;

	for (gsize off = 0; off < journal->size; off += JOURNAL_FILL_CHUNK) {
		gsize n = MIN(JOURNAL_FILL_CHUNK, journal->size - off);

		errnum = journal_pwrite_all(journal->fd, zeros, n, (off_t)off);
		if (errnum != 0)
			return errnum;
	}
	journal_encode_header(header, journal->generation, journal->boot_id);
	errnum = journal_pwrite_all(journal->fd, header, sizeof header, 0);
	if (errnum != 0)
		return errnum;
	return journal_fsync_fd(journal->fd);
}

/* The segment is made and filled unnamed, and locked before it gets its
 * name: recovery in another process never sees it unheld or half made. */
static int
journal_create_segment(QueueJournal *journal)
{
	g_autofree char *name = NULL;
	char proc_path[64];
	int errnum;

#ifdef O_TMPFILE
	journal->fd = openat(journal->dir_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
#else
	errno = ENOSYS;
#endif
	if (journal->fd < 0)
		return errno;
	if (flock(journal->fd, LOCK_EX) < 0)
		return errno;
	errnum = journal_fill(journal);
	if (errnum != 0)
		return errnum;
	name = g_strdup_printf("%ld-%08x%s", (long)getpid(), g_random_int(),
			       JOURNAL_SEGMENT_SUFFIX);
	g_snprintf(proc_path, sizeof proc_path, "/proc/self/fd/%d", journal->fd);
	if (linkat(AT_FDCWD, proc_path, journal->dir_fd, name, AT_SYMLINK_FOLLOW) < 0)
		return errno;
	/* Named: from now on it is removed when we are done with it. */
	journal->name = g_steal_pointer(&name);
	return journal_fsync_fd(journal->dir_fd);
}

/* Start a new generation: every record written so far becomes stale.
 * Called with the lock held. */
static int
journal_reset_locked(QueueJournal *journal)
{
	guchar header[JOURNAL_HEADER_SIZE];
	int errnum;

	journal_encode_header(header, journal->generation + 1, journal->boot_id);
	errnum = journal_pwrite_all(journal->fd, header, sizeof header, 0);
	if (errnum == 0 && fdatasync(journal->fd) < 0)
		errnum = errno;
	if (errnum != 0)
		return errnum;
	journal->generation++;
	journal->tail = JOURNAL_HEADER_SIZE;
	journal->checkpoints++;
	return 0;
}

/* ---- the checkpoint thread --------------------------------------------- */

/* Retire the segment once the committer has been idle for a while: the
 * syncfs makes every recorded file durable, and the segment is reset only
 * if nothing was appended meanwhile (a record written during the syncfs
 * may describe files it did not cover).  Under steady load the committer
 * checkpoints by itself (queue_journal_wants_checkpoint). */
static gpointer
journal_checkpoint_thread(gpointer data)
{
	QueueJournal *journal = data;

	g_mutex_lock(&journal->lock);
	while (!journal->stopping) {
		gint64 due = journal->last_write + QUEUE_JOURNAL_CHECKPOINT_MS * G_TIME_SPAN_MILLISECOND;
		gsize mark;
		guint64 generation;
		int errnum;

		if (journal->tail == JOURNAL_HEADER_SIZE || !journal->idle_checkpoints) {
			g_cond_wait(&journal->kick, &journal->lock);
			continue;
		}
		if (g_get_monotonic_time() < due) {
			g_cond_wait_until(&journal->kick, &journal->lock, due);
			continue;
		}
		mark = journal->tail;
		generation = journal->generation;
		g_mutex_unlock(&journal->lock);
		errnum = queue_syncfs(journal->root_fd);
		g_mutex_lock(&journal->lock);
		if (errnum == 0 && journal->tail == mark && journal->generation == generation)
			errnum = journal_reset_locked(journal);
		if (errnum != 0) {
			g_warning("cannot checkpoint the journal %s/%s/%s: %s", journal->root,
				  QUEUE_JOURNAL_DIR, journal->name, g_strerror(errnum));
			/* Try again later rather than spin. */
			journal->last_write = g_get_monotonic_time();
		}
	}
	g_mutex_unlock(&journal->lock);
	return NULL;
}

/* ---- open and free ----------------------------------------------------- */

QueueJournal *
queue_journal_open(int root_fd, const char *root, GError **error)
{
	QueueJournal *journal = g_new0(QueueJournal, 1);
	int errnum;

	journal->root_fd = root_fd;
	journal->root = root;
	journal->fd = -1;
	journal->dir_fd = -1;
	journal->size = journal_segment_size();
	journal->tail = JOURNAL_HEADER_SIZE;
	journal->idle_checkpoints = TRUE;
	journal->batch = g_byte_array_new();
	g_mutex_init(&journal->lock);
	g_cond_init(&journal->kick);
	if (!journal_boot_id(journal->boot_id)) {
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_IO,
			    "cannot start a commit journal in %s: no boot id", root);
		queue_journal_free(journal);
		return NULL;
	}
	journal->dir_fd = journal_open_dir(root_fd);
	errnum = journal->dir_fd < 0 ? errno : journal_create_segment(journal);
	if (errnum != 0) {
		journal_set_error(error, root, "create a commit journal in", QUEUE_JOURNAL_DIR,
				  errnum);
		queue_journal_free(journal);
		return NULL;
	}
	/* At most 15 characters, or the thread keeps its creator's name. */
	journal->thread = g_thread_new("queue-ckpt", journal_checkpoint_thread, journal);
	return journal;
}

/* Remove our segment once everything it records is durable.  The
 * directory is synced so that a crash cannot bring the segment back. */
static void
journal_retire_segment(QueueJournal *journal)
{
	int errnum = journal->tail > JOURNAL_HEADER_SIZE ? queue_syncfs(journal->root_fd) : 0;

	if (errnum == 0 && unlinkat(journal->dir_fd, journal->name, 0) < 0)
		errnum = errno;
	if (errnum == 0)
		errnum = journal_fsync_fd(journal->dir_fd);
	if (errnum != 0)
		g_warning("cannot retire the journal %s/%s/%s, left for recovery: %s",
			  journal->root, QUEUE_JOURNAL_DIR, journal->name, g_strerror(errnum));
}

void
queue_journal_free(QueueJournal *journal)
{
	if (journal == NULL)
		return;
	if (journal->thread != NULL) {
		g_mutex_lock(&journal->lock);
		journal->stopping = TRUE;
		g_cond_signal(&journal->kick);
		g_mutex_unlock(&journal->lock);
		g_thread_join(journal->thread);
	}
	if (journal->name != NULL)
		journal_retire_segment(journal);
	if (journal->fd >= 0)
		close(journal->fd);
	if (journal->dir_fd >= 0)
		close(journal->dir_fd);
	g_byte_array_unref(journal->batch);
	g_mutex_clear(&journal->lock);
	g_cond_clear(&journal->kick);
	g_free(journal->name);
	g_free(journal);
}

/* ---- batches ----------------------------------------------------------- */

void
queue_journal_batch_begin(QueueJournal *journal)
{
	g_byte_array_set_size(journal->batch, 0);
	journal->batch_too_big = FALSE;
}

/* Make room for one file's header, name and `size` bytes of content at
 * the end of the batch; returns where the content goes, or NULL for
 * content larger than a segment, which is not copied at all: the batch
 * goes to syncfs instead. */
static guchar *
journal_append_file(QueueJournal *journal, const char *final_name, gsize size)
{
	GByteArray *b = journal->batch;
	gsize name_len = strlen(final_name);
	gsize at = b->len;

	if ((guint64)size > journal->size)
		return NULL;
	g_byte_array_set_size(b, (guint)(at + JOURNAL_FILE_HEADER + name_len + size));
	put_u32(b->data + at, (guint32)name_len);
	put_u32(b->data + at + 4, 0);
	put_u64(b->data + at + 8, (guint64)size);
	memcpy(b->data + at + JOURNAL_FILE_HEADER, final_name, name_len);
	return b->data + at + JOURNAL_FILE_HEADER + name_len;
}

/* Append a file whose bytes the committing process still holds. */
static int
journal_add_data(QueueJournal *journal, const char *final_name, const QueueTmpFile *tmp)
{
	gsize size = 0;
	guchar *p;

	for (guint i = 0; i < tmp->n_data; i++)
		size += tmp->data[i].iov_len;
	p = journal_append_file(journal, final_name, size);
	if (p == NULL)
		return EFBIG;
	for (guint i = 0; i < tmp->n_data; i++) {
		memcpy(p, tmp->data[i].iov_base, tmp->data[i].iov_len);
		p += tmp->data[i].iov_len;
	}
	return 0;
}

/* Append one file (header, name, content) to the batch, its content read
 * back from the page cache; 0 or an errno. */
static int
journal_add_file(QueueJournal *journal, const char *final_name)
{
	struct stat st;
	guchar *p;
	int errnum;
	int fd = openat(journal->root_fd, final_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return errno;
	if (fstat(fd, &st) < 0) {
		errnum = errno;
		close(fd);
		return errnum;
	}
	p = journal_append_file(journal, final_name, (gsize)st.st_size);
	errnum = p != NULL ? journal_pread_all(fd, p, (gsize)st.st_size, 0) : EFBIG;
	close(fd);
	return errnum;
}

int
queue_journal_batch_add(QueueJournal *journal, const char *const *final_names,
			const QueueTmpFile *tmps, guint n)
{
	GByteArray *b = journal->batch;
	gsize start = b->len;
	int errnum = 0;

	g_byte_array_set_size(b, (guint)(start + JOURNAL_RECORD_HEADER));
	for (guint i = 0; errnum == 0 && i < n; i++)
		errnum = tmps[i].data != NULL ? journal_add_data(journal, final_names[i], &tmps[i])
					      : journal_add_file(journal, final_names[i]);
	if (errnum == 0 && b->len - start > journal->size - JOURNAL_HEADER_SIZE)
		errnum = EFBIG;
	if (errnum != 0)
		g_byte_array_set_size(b, (guint)start);
	if (errnum == EFBIG) {
		journal->batch_too_big = TRUE;
		return 0;
	}
	if (errnum != 0)
		return errnum;
	put_u32(b->data + start, JOURNAL_RECORD_MAGIC);
	put_u32(b->data + start + 4, (guint32)(b->len - start));
	put_u32(b->data + start + 12, n);
	/* The generation is set when the batch is written. */
	put_u64(b->data + start + 24, ++journal->seq);
	return 0;
}

gboolean
queue_journal_batch_fits(QueueJournal *journal)
{
	gboolean fits;

	g_mutex_lock(&journal->lock);
	fits = !journal->batch_too_big && journal->batch->len <= journal->size - journal->tail;
	g_mutex_unlock(&journal->lock);
	return fits;
}

/* Stamp each record of the batch with `generation` and seal it with its
 * CRC. */
static void
journal_seal_batch(QueueJournal *journal, guint64 generation)
{
	GByteArray *b = journal->batch;

	for (gsize at = 0; at < b->len; at += get_u32(b->data + at + 4)) {
		guchar *rec = b->data + at;
		gsize len = get_u32(rec + 4);

		put_u64(rec + 16, generation);
		put_u32(rec + 8, imta_crc32c(0, rec + 12, len - 12));
	}
}

int
queue_journal_batch_write(QueueJournal *journal)
{
	int errnum;

	g_mutex_lock(&journal->lock);
	/* A checkpoint may have reset the segment since the batch was built:
	 * seal it with the generation it lands in. */
	journal_seal_batch(journal, journal->generation);
	if (journal->batch->len > journal->size - journal->tail) {
		g_mutex_unlock(&journal->lock);
		return ENOSPC;
	}
	errnum = journal_pwrite_all(journal->fd, journal->batch->data, journal->batch->len,
				    (off_t)journal->tail);
	if (errnum == 0) {
		gboolean was_empty = journal->tail == JOURNAL_HEADER_SIZE;

		journal->last_write = g_get_monotonic_time();
		if (was_empty)
			journal->first_write = journal->last_write;
		journal->tail += journal->batch->len;
		/* Only an empty segment has the checkpoint thread waiting with no
		 * deadline; otherwise it wakes at the old deadline and finds the
		 * new one by itself, and a wake-up per batch would be wasted. */
		if (was_empty)
			g_cond_signal(&journal->kick);
	}
	g_mutex_unlock(&journal->lock);
	return errnum;
}

int
queue_journal_sync(QueueJournal *journal)
{
	return fdatasync(journal->fd) < 0 ? errno : 0;
}

gboolean
queue_journal_wants_checkpoint(QueueJournal *journal)
{
	gboolean wants;

	g_mutex_lock(&journal->lock);
	wants = journal->tail > journal->size / 4 * 3 ||
		(journal->idle_checkpoints && journal->tail > JOURNAL_HEADER_SIZE &&
		 g_get_monotonic_time() - journal->first_write >=
			 QUEUE_JOURNAL_MAX_AGE_MS * G_TIME_SPAN_MILLISECOND);
	g_mutex_unlock(&journal->lock);
	return wants;
}

int
queue_journal_reset(QueueJournal *journal)
{
	int errnum;

	g_mutex_lock(&journal->lock);
	errnum = journal_reset_locked(journal);
	g_mutex_unlock(&journal->lock);
	return errnum;
}

int
queue_journal_checkpoint(QueueJournal *journal)
{
	int errnum = queue_syncfs(journal->root_fd);

	return errnum != 0 ? errnum : queue_journal_reset(journal);
}

guint64
queue_journal_checkpoints(QueueJournal *journal)
{
	guint64 n;

	g_mutex_lock(&journal->lock);
	n = journal->checkpoints;
	g_mutex_unlock(&journal->lock);
	return n;
}

void
queue_journal_set_idle_checkpoints(QueueJournal *journal, gboolean on)
{
	g_mutex_lock(&journal->lock);
	journal->idle_checkpoints = on;
	g_cond_signal(&journal->kick);
	g_mutex_unlock(&journal->lock);
}

/* ---- recovery ------------------------------------------------------------ */

/* A name a record may hold: relative, inside the queue, not hidden. */
static gboolean
journal_name_ok(const guchar *name, gsize len)
{
	g_autofree char *s = NULL;
	g_auto(GStrv) parts = NULL;

	if (len == 0 || len > 4096 || memchr(name, '\0', len) != NULL || name[0] == '/')
		return FALSE;
	s = g_strndup((const char *)name, len);
	parts = g_strsplit(s, "/", -1);
	for (guint i = 0; parts[i] != NULL; i++) {
		if (parts[i][0] == '\0' || parts[i][0] == '.')
			return FALSE;
	}
	return TRUE;
}

/* Make the directories above `rel` that a crash lost. */
static void
journal_make_parents(int root_fd, const char *rel)
{
	g_autofree char *dir = g_path_get_dirname(rel);

	if (strcmp(dir, ".") == 0)
		return;
	journal_make_parents(root_fd, dir);
	if (mkdirat(root_fd, dir, 0750) == 0) {
		g_autofree char *parent = g_path_get_dirname(dir);
		int fd = openat(root_fd, parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd >= 0) {
			fsync(fd);
			close(fd);
		}
	}
}

/* Write `rel` from a record, atomically: temporary file, fsync, rename over
 * whatever is there, fsync the directory.  0 or an errno. */
static int
journal_rewrite_file(int root_fd, const char *rel, const guchar *content, gsize len)
{
	g_autofree char *dir = g_path_get_dirname(rel);
	g_autofree char *base = g_path_get_basename(rel);
	g_autofree char *tmp = g_strdup_printf("%s/.%s.recover", dir, base);
	int fd, dir_fd, errnum;

	journal_make_parents(root_fd, rel);
	fd = openat(root_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		return errno;
	errnum = journal_pwrite_all(fd, content, len, 0);
	if (errnum == 0)
		errnum = journal_fsync_fd(fd);
	close(fd);
	if (errnum == 0 && renameat(root_fd, tmp, root_fd, rel) < 0)
		errnum = errno;
	if (errnum != 0) {
		unlinkat(root_fd, tmp, 0);
		return errnum;
	}
	dir_fd = openat(root_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return errno;
	errnum = journal_fsync_fd(dir_fd);
	close(dir_fd);
	return errnum;
}

/* Whether the file `rel` begins with the `len` bytes of `content`. */
static gboolean
journal_file_starts_with(int root_fd, const char *rel, const guchar *content, gsize len)
{
	g_autofree guchar *got = NULL;
	struct stat st;
	int fd = openat(root_fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	gboolean same;

	if (fd < 0)
		return FALSE;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (guint64)st.st_size < len) {
		close(fd);
		return FALSE;
	}
	got = g_malloc(MAX(len, 1));
	same = journal_pread_all(fd, got, len, 0) == 0 && memcmp(got, content, len) == 0;
	close(fd);
	return same;
}

/* One file of a record after a system crash: rewritten if missing, short
 * or different (the page cache that held its data was lost).  A file
 * that is longer but begins with the record's bytes is kept: a delivery
 * attempt appended its outcome records and synced them. */
static int
journal_restore_file(int root_fd, const char *root, const char *rel, const guchar *content,
		     gsize len)
{
	if (journal_file_starts_with(root_fd, rel, content, len))
		return 0;
	g_message("recovering %s/%s (%zu bytes) from the commit journal", root, rel, len);
	return journal_rewrite_file(root_fd, rel, content, len);
}

/* The length of the valid record at `off`, or 0 if there is none (end of
 * the records, a torn tail or a stale generation). */
static gsize
journal_record_at(const guchar *seg, gsize size, gsize off, guint64 generation)
{
	const guchar *rec = seg + off;
	gsize len;

	if (size - off < JOURNAL_RECORD_HEADER || get_u32(rec) != JOURNAL_RECORD_MAGIC)
		return 0;
	len = get_u32(rec + 4);
	if (len < JOURNAL_RECORD_HEADER || len > size - off)
		return 0;
	if (get_u32(rec + 8) != imta_crc32c(0, rec + 12, len - 12))
		return 0;
	return get_u64(rec + 16) == generation ? len : 0;
}

/* Replay the files of one valid record; 0 or an errno (EINVAL: a record
 * whose CRC matched but whose layout is wrong). */
static int
journal_replay_record(int root_fd, const char *root, const guchar *rec, gsize len)
{
	guint32 n = get_u32(rec + 12);
	gsize off = JOURNAL_RECORD_HEADER;

	for (guint32 i = 0; i < n; i++) {
		g_autofree char *name = NULL;
		gsize name_len, content_len;
		int errnum;

		if (len - off < JOURNAL_FILE_HEADER)
			return EINVAL;
		name_len = get_u32(rec + off);
		content_len = (gsize)get_u64(rec + off + 8);
		off += JOURNAL_FILE_HEADER;
		if (name_len > len - off || content_len > len - off - name_len ||
		    !journal_name_ok(rec + off, name_len))
			return EINVAL;
		name = g_strndup((const char *)rec + off, name_len);
		off += name_len;
		errnum = journal_restore_file(root_fd, root, name, rec + off, content_len);
		if (errnum != 0)
			return errnum;
		off += content_len;
	}
	return 0;
}

/* After a system crash: replay every valid record of the segment. */
static int
journal_replay(int root_fd, const char *root, int fd, gsize size, guint64 generation)
{
	g_autofree guchar *seg = g_malloc(size);
	int errnum = journal_pread_all(fd, seg, size, 0);
	gsize len;

	if (errnum != 0)
		return errnum;
	for (gsize off = JOURNAL_HEADER_SIZE;
	     (len = journal_record_at(seg, size, off, generation)) > 0; off += len) {
		errnum = journal_replay_record(root_fd, root, seg + off, len);
		if (errnum != 0)
			return errnum;
	}
	return 0;
}

/* Whether `fd`, opened as `name` in `dir_fd`, is still that name: another
 * process may have recovered and removed it while we waited. */
static gboolean
journal_same_file(int dir_fd, const char *name, int fd)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && fstatat(dir_fd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Recover an orphaned segment we hold the lock of; 0 or an errno. */
static int
journal_recover_locked(int root_fd, const char *root, int dir_fd, const char *name, int fd,
		       const char *boot_id)
{
	guchar header[JOURNAL_HEADER_SIZE];
	char seg_boot_id[JOURNAL_BOOT_ID_SIZE];
	guint64 generation;
	struct stat st;
	int errnum;

	if (fstat(fd, &st) < 0)
		return errno;
	errnum = journal_pread_all(fd, header, sizeof header, 0);
	if (errnum != 0 || !journal_decode_header(header, &generation, seg_boot_id)) {
		/* Never the case for a segment we wrote: it is named only once
		 * its header is durable. */
		g_warning("%s/%s/%s is not a commit journal, removing it", root, QUEUE_JOURNAL_DIR,
			  name);
	} else if (memcmp(seg_boot_id, boot_id, JOURNAL_BOOT_ID_SIZE) != 0) {
		errnum = journal_replay(root_fd, root, fd, (gsize)st.st_size, generation);
		if (errnum != 0)
			return errnum;
	}
	/* Same boot: the page cache kept every linked file; make them
	 * durable before the segment that vouches for them goes. */
	errnum = queue_syncfs(root_fd);
	if (errnum == 0 && unlinkat(dir_fd, name, 0) < 0)
		errnum = errno;
	return errnum != 0 ? errnum : journal_fsync_fd(dir_fd);
}

/* One segment: skipped if a live process holds it; 0 or an errno. */
static int
journal_recover_segment(int root_fd, const char *root, int dir_fd, const char *name,
			const char *boot_id)
{
	int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int errnum = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		errnum = errno == EWOULDBLOCK ? 0 : errno;
		close(fd);
		return errnum;
	}
	if (journal_same_file(dir_fd, name, fd))
		errnum = journal_recover_locked(root_fd, root, dir_fd, name, fd, boot_id);
	close(fd);
	return errnum;
}

gboolean
queue_journal_recover(int root_fd, const char *root, GError **error)
{
	char boot_id[JOURNAL_BOOT_ID_SIZE];
	struct dirent *de;
	DIR *dir;
	int dir_fd = openat(root_fd, QUEUE_JOURNAL_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	gboolean ok = TRUE;

	if (dir_fd < 0 && errno == ENOENT)
		return TRUE;
	if (dir_fd < 0 || (dir = fdopendir(dup(dir_fd))) == NULL) {
		journal_set_error(error, root, "open", QUEUE_JOURNAL_DIR, errno);
		if (dir_fd >= 0)
			close(dir_fd);
		return FALSE;
	}
	if (!journal_boot_id(boot_id))
		memset(boot_id, 0, sizeof boot_id);   /* unknown: treat as a reboot */
	while ((de = readdir(dir)) != NULL) {
		g_autofree char *rel = NULL;
		int errnum;

		if (!g_str_has_suffix(de->d_name, JOURNAL_SEGMENT_SUFFIX))
			continue;
		errnum = journal_recover_segment(root_fd, root, dir_fd, de->d_name, boot_id);
		if (errnum == 0 || !ok)
			continue;
		rel = g_strconcat(QUEUE_JOURNAL_DIR, "/", de->d_name, NULL);
		journal_set_error(error, root, "recover the commit journal", rel, errnum);
		ok = FALSE;
	}
	closedir(dir);
	close(dir_fd);
	return ok;
}
