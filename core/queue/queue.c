/*
 * queue.c - the queue area: opening it, directories, queue file names and
 * ids, the attempt prefix, scanning a channel, and removing temporary
 * files that dead processes left behind.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/queue.h>

#include "group_commit.h"
#include "journal.h"
#include "queue_file.h"

G_DEFINE_QUARK(imta-queue-error-quark, imta_queue_error)

static const char queue_alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

#define QUEUE_DIR_MODE 0750

/* ---- errors and small helpers ------------------------------------------ */

void
queue_set_io_error(GError **error, const ImtaQueue *queue, const char *what, const char *rel,
		   int errnum)
{
	if (rel == NULL || strcmp(rel, ".") == 0) {
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_IO, "cannot %s %s: %s", what,
			    queue->root, g_strerror(errnum));
		return;
	}
	g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_IO, "cannot %s %s/%s: %s", what,
		    queue->root, rel, g_strerror(errnum));
}

int
queue_write_all(int fd, const void *data, gsize length)
{
	struct iovec iov = { .iov_base = (void *)data, .iov_len = length };

	return queue_writev_all(fd, &iov, 1);
}

int
queue_writev_all(int fd, struct iovec *iov, int count)
{
	while (count > 0) {
		ssize_t n = writev(fd, iov, count);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		while (count > 0 && (gsize)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			count--;
		}
		if (count > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (gsize)n;
		}
	}
	return 0;
}

int
queue_syncfs(int fd)
{
#ifdef __linux__
	return syncfs(fd) < 0 ? errno : 0;
#else
	(void)fd;
	return ENOSYS;
#endif
}

static int
queue_alphabet_index(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'Z')
		return c - 'A' + 10;
	return -1;
}

static void
queue_put_base36(char *out, guint64 value, guint width)
{
	for (guint i = width; i > 0; i--) {
		out[i - 1] = queue_alphabet[value % 36];
		value /= 36;
	}
}

/* ---- ids and names --------------------------------------------------- */

/* The per-process counter starts at a random value, so a process that
 * reuses a dead process's pid within the same second does not repeat its
 * ids; the random last character covers what remains. */
static guint
queue_counter_next(void)
{
	static gsize initialised;
	static gint counter;

	if (g_once_init_enter(&initialised)) {
		g_atomic_int_set(&counter, (gint)g_random_int_range(0, 36 * 36 * 36 * 36));
		g_once_init_leave(&initialised, 1);
	}
	return (guint)g_atomic_int_add(&counter, 1);
}

/* Layout: 6 characters of time (seconds, modulo 36^6: wraps every 69
 * years), 5 of pid (pid_max is at most 2^22 < 36^5), 4 of a per-process
 * counter, 1 random.  Unique while a process makes fewer than 36^4 ids a
 * second; a clash would still be caught by the no-replace rename. */
void
queue_id_new(char id[IMTA_QUEUE_ID_LENGTH + 1])
{
	guint64 now = (guint64)time(NULL);

	queue_put_base36(id, now % G_GUINT64_CONSTANT(2176782336), 6);
	queue_put_base36(id + 6, (guint64)getpid() % 60466176, 5);
	queue_put_base36(id + 11, queue_counter_next() % 1679616, 4);
	id[15] = queue_alphabet[g_random_int_range(0, 36)];
	id[IMTA_QUEUE_ID_LENGTH] = '\0';
}

void
imta_queue_new_id(char id[IMTA_QUEUE_ID_LENGTH + 1])
{
	queue_id_new(id);
}

char *
queue_tmp_name_new(void)
{
	static gint tmp_counter;

	return g_strdup_printf("$%ld-%u.tmp", (long)getpid(),
			       (guint)g_atomic_int_add(&tmp_counter, 1));
}

void
imta_queue_attempt_prefix(guint attempts, char prefix[3])
{
	guint high = attempts / 36, low = attempts % 36;

	if (high > 35) {
		prefix[0] = prefix[1] = '0';
	} else {
		prefix[0] = queue_alphabet[35 - high];
		prefix[1] = queue_alphabet[35 - low];
	}
	prefix[2] = '\0';
}

gboolean
imta_queue_parse_name(const char *name, guint *attempts_r, char *id_r, gboolean *held_r)
{
	gsize len;
	int high, low;
	const char *type;
	gboolean held;

	if (name == NULL)
		return FALSE;
	len = strlen(name);
	if (len != 2 + IMTA_QUEUE_ID_LENGTH + 3 && len != 2 + IMTA_QUEUE_ID_LENGTH + 5)
		return FALSE;
	for (guint i = 0; i < 2 + IMTA_QUEUE_ID_LENGTH; i++)
		if (queue_alphabet_index(name[i]) < 0)
			return FALSE;
	if (name[2 + IMTA_QUEUE_ID_LENGTH] != '.')
		return FALSE;
	type = name + 2 + IMTA_QUEUE_ID_LENGTH + 1;
	if (strcmp(type, "00") == 0)
		held = FALSE;
	else if (strcmp(type, "HELD") == 0)
		held = TRUE;
	else
		return FALSE;
	high = 35 - queue_alphabet_index(name[0]);
	low = 35 - queue_alphabet_index(name[1]);
	if (attempts_r != NULL)
		*attempts_r = (guint)(high * 36 + low);
	if (id_r != NULL) {
		memcpy(id_r, name + 2, IMTA_QUEUE_ID_LENGTH);
		id_r[IMTA_QUEUE_ID_LENGTH] = '\0';
	}
	if (held_r != NULL)
		*held_r = held;
	return TRUE;
}

gboolean
queue_channel_name_valid(const char *name)
{
	gsize len = name != NULL ? strlen(name) : 0;

	if (len == 0 || len > 200 || name[0] == '.' || name[0] == '$')
		return FALSE;
	for (gsize i = 0; i < len; i++) {
		guchar c = (guchar)name[i];

		if (c <= 0x20 || c >= 0x7f || c == '/')
			return FALSE;
	}
	return TRUE;
}

static gboolean
queue_is_subdir_name(const char *name)
{
	return g_ascii_isdigit(name[0]) && g_ascii_isdigit(name[1]) && g_ascii_isdigit(name[2]) &&
	       name[3] == '\0';
}

gboolean
queue_path_split(const char *rel, char **dir_r, char **name_r)
{
	g_auto(GStrv) parts = NULL;
	guint n;

	if (rel == NULL || rel[0] == '/')
		return FALSE;
	parts = g_strsplit(rel, "/", 4);
	n = g_strv_length(parts);
	if (n < 2 || n > 3 || !queue_channel_name_valid(parts[0]))
		return FALSE;
	if (n == 3 && !queue_is_subdir_name(parts[1]))
		return FALSE;
	if (!imta_queue_parse_name(parts[n - 1], NULL, NULL, NULL))
		return FALSE;
	if (dir_r != NULL)
		*dir_r = n == 3 ? g_strconcat(parts[0], "/", parts[1], NULL) : g_strdup(parts[0]);
	if (name_r != NULL)
		*name_r = g_strdup(parts[n - 1]);
	return TRUE;
}

/* A file's subdirectory follows from its id alone (a stable string hash),
 * so it never moves while the id lives. */
char *
queue_dir_for(const ImtaChannel *channel, const char *id)
{
	if (channel->subdirs <= 0)
		return g_strdup(channel->name);
	return g_strdup_printf("%s/%03u", channel->name, g_str_hash(id) % (guint)channel->subdirs);
}

/* ---- directories ------------------------------------------------------ */

static gboolean
queue_fsync_dir(ImtaQueue *queue, const char *rel_dir, GError **error)
{
	int fd = openat(queue->root_fd, rel_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0) {
		int errnum = errno;

		if (fd >= 0)
			close(fd);
		queue_set_io_error(error, queue, "sync the directory", rel_dir, errnum);
		return FALSE;
	}
	close(fd);
	return TRUE;
}

gboolean
queue_sync_parent(ImtaQueue *queue, const char *rel, GError **error)
{
	g_autofree char *dir = g_path_get_dirname(rel);

	return queue_fsync_dir(queue, dir, error);
}

static gboolean
queue_mkdir_one(ImtaQueue *queue, const char *rel_dir, GError **error)
{
	struct stat st;

	if (mkdirat(queue->root_fd, rel_dir, QUEUE_DIR_MODE) == 0)
		return queue_sync_parent(queue, rel_dir, error);
	if (errno != EEXIST) {
		queue_set_io_error(error, queue, "create the directory", rel_dir, errno);
		return FALSE;
	}
	if (fstatat(queue->root_fd, rel_dir, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		queue_set_io_error(error, queue, "examine", rel_dir, errno);
		return FALSE;
	}
	if (!S_ISDIR(st.st_mode)) {
		queue_set_io_error(error, queue, "use the directory", rel_dir, ENOTDIR);
		return FALSE;
	}
	return TRUE;
}

gboolean
queue_ensure_dir(ImtaQueue *queue, const char *rel_dir, GError **error)
{
	const char *slash;
	gboolean ok = TRUE;

	g_mutex_lock(&queue->lock);
	if (g_hash_table_contains(queue->dirs_made, rel_dir))
		goto out;
	slash = strchr(rel_dir, '/');
	if (slash != NULL) {
		g_autofree char *parent = g_strndup(rel_dir, (gsize)(slash - rel_dir));

		ok = queue_mkdir_one(queue, parent, error);
	}
	if (ok)
		ok = queue_mkdir_one(queue, rel_dir, error);
	if (ok)
		g_hash_table_add(queue->dirs_made, g_strdup(rel_dir));
out:
	g_mutex_unlock(&queue->lock);
	return ok;
}

void
queue_forget_dir(ImtaQueue *queue, const char *rel_dir)
{
	g_mutex_lock(&queue->lock);
	g_hash_table_remove(queue->dirs_made, rel_dir);
	g_mutex_unlock(&queue->lock);
}

int
queue_rename_noreplace(int dir_fd, const char *from, const char *to)
{
#ifdef RENAME_NOREPLACE
	if (renameat2(dir_fd, from, dir_fd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
#endif
	/* The file system cannot refuse to replace: link() can. */
	if (linkat(dir_fd, from, dir_fd, to, 0) < 0)
		return -1;
	if (unlinkat(dir_fd, from, 0) < 0) {
		int errnum = errno;

		unlinkat(dir_fd, to, 0);
		errno = errnum;
		return -1;
	}
	return 0;
}

/* ---- notices ------------------------------------------------------------ */

/* How long a notice may wait for room at the controller, in all. */
#define QUEUE_NOTIFY_WAIT_MS 500

/* Aim the notice socket at the controller's.  Connected, a full receive
 * queue at the other end shows as the socket not being writable, so a
 * sender can wait for room with poll() instead of sleeping and trying
 * again.  -1 with errno when the controller is not there. */
static int
queue_notify_connect(ImtaQueue *queue)
{
	int rc;

	do
		rc = connect(queue->notify_fd, (const struct sockaddr *)&queue->notify_addr,
			     queue->notify_len);
	while (rc < 0 && errno == EINTR);
	return rc;
}

/* Wait until the controller has room for a notice, or `deadline`
 * (monotonic) passes; FALSE then. */
static gboolean
queue_notify_wait(ImtaQueue *queue, gint64 deadline)
{
	struct pollfd pfd = { .fd = queue->notify_fd, .events = POLLOUT };
	gint64 left = deadline - g_get_monotonic_time();

	if (left <= 0)
		return FALSE;
	return poll(&pfd, 1, (int)((left + 999) / 1000)) >= 0 || errno == EINTR;
}

void
queue_notify(ImtaQueue *queue, char kind, const char *rel)
{
	g_autofree char *notice = NULL;
	gboolean reconnected = FALSE;
	gint64 deadline;
	gsize len;

	if (queue->notify_fd < 0)
		return;
	notice = g_strdup_printf("%c %s", kind, rel);
	len = strlen(notice);
	deadline = g_get_monotonic_time() + QUEUE_NOTIFY_WAIT_MS * G_TIME_SPAN_MILLISECOND;
	/* A datagram socket's receive queue is short (net.unix.max_dgram_qlen,
	 * often 10), so a burst of commits can find it full while the
	 * controller is busy: wait a little for room rather than leave the
	 * message until the next scan.  A controller that is not running is
	 * not waited for. */
	for (;;) {
		if (send(queue->notify_fd, notice, len, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
			return;
		if (errno == EINTR)
			continue;
		if ((errno == ENOTCONN || errno == ECONNREFUSED) && !reconnected) {
			/* Not connected yet, or the controller restarted and its
			 * socket is a new one. */
			reconnected = TRUE;
			if (queue_notify_connect(queue) < 0)
				return;
			continue;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return;
		if (!queue_notify_wait(queue, deadline))
			return;
	}
}

/* ---- open and close ---------------------------------------------------- */

static gboolean
queue_open_notify(ImtaQueue *queue, const char *path, GError **error)
{
	gsize len = strlen(path);

	if (len >= sizeof(queue->notify_addr.sun_path)) {
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_LIMIT,
			    "notice socket path %s is longer than the %zu bytes a socket "
			    "address holds", path, sizeof(queue->notify_addr.sun_path) - 1);
		return FALSE;
	}
	queue->notify_addr.sun_family = AF_UNIX;
	memcpy(queue->notify_addr.sun_path, path, len + 1);
	queue->notify_len = (socklen_t)(G_STRUCT_OFFSET(struct sockaddr_un, sun_path) + len + 1);
	queue->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (queue->notify_fd < 0) {
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_IO,
			    "cannot create a socket for notices to %s: %s", path,
			    g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

/* Every process that opens the queue finishes the commits of dead ones
 * before it looks at a message (journal.h).  A failure is reported but
 * does not keep the queue closed: the segment stays for the next try, and
 * without it the queue is what it would be without a journal. */
static void
queue_recover_journal(ImtaQueue *queue)
{
	g_autoptr(GError) error = NULL;

	if (!queue_journal_recover(queue->root_fd, queue->root, &error))
		g_warning("%s", error->message);
}

ImtaQueue *
imta_queue_open(const char *root, const ImtaCnf *cnf, const char *notify_socket, GError **error)
{
	g_autoptr(ImtaQueue) queue = NULL;

	g_return_val_if_fail(root != NULL && root[0] != '\0', NULL);
	g_return_val_if_fail(cnf != NULL, NULL);
	queue = g_new0(ImtaQueue, 1);
	queue->root = g_canonicalize_filename(root, NULL);
	queue->root_fd = -1;
	queue->notify_fd = -1;
	queue->spare_fd = -1;
	queue->cnf = cnf;
	queue->pid = getpid();
	imta_queue_set_mappings(queue, queue_bound_mappings(cnf));
	g_mutex_init(&queue->lock);
	queue->dirs_made = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	if (g_mkdir_with_parents(queue->root, QUEUE_DIR_MODE) < 0) {
		queue_set_io_error(error, queue, "create the queue directory", NULL, errno);
		return NULL;
	}
	queue->root_fd = open(queue->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (queue->root_fd < 0) {
		queue_set_io_error(error, queue, "open the queue directory", NULL, errno);
		return NULL;
	}
	if (notify_socket != NULL && !queue_open_notify(queue, notify_socket, error))
		return NULL;
	queue_recover_journal(queue);
	return g_steal_pointer(&queue);
}

void
imta_queue_close(ImtaQueue *queue)
{
	if (queue == NULL)
		return;
	queue_committer_free(queue->committer);
	if (queue->spare_fd >= 0)
		close(queue->spare_fd);
	g_free(queue->spare_dir);
	if (queue->notify_fd >= 0)
		close(queue->notify_fd);
	if (queue->root_fd >= 0)
		close(queue->root_fd);
	g_hash_table_unref(queue->dirs_made);
	g_mutex_clear(&queue->lock);
	g_free(queue->root);
	g_free(queue);
}

static int
queue_unnamed_new(ImtaQueue *queue, const char *rel_dir)
{
#ifdef O_TMPFILE
	return openat(queue->root_fd, rel_dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0640);
#else
	errno = ENOTSUP;
	return -1;
#endif
}

int
queue_unnamed_take(ImtaQueue *queue, const char *rel_dir)
{
	int fd = -1;

	g_mutex_lock(&queue->lock);
	if (queue->spare_fd >= 0 && strcmp(queue->spare_dir, rel_dir) == 0) {
		fd = queue->spare_fd;
		queue->spare_fd = -1;
	}
	g_mutex_unlock(&queue->lock);
	return fd >= 0 ? fd : queue_unnamed_new(queue, rel_dir);
}

void
queue_unnamed_restock(ImtaQueue *queue, const char *rel_dir)
{
	gboolean have;
	int fd, old;

	g_mutex_lock(&queue->lock);
	have = queue->spare_fd >= 0 && strcmp(queue->spare_dir, rel_dir) == 0;
	g_mutex_unlock(&queue->lock);
	if (have || (fd = queue_unnamed_new(queue, rel_dir)) < 0)
		return;
	g_mutex_lock(&queue->lock);
	/* The newest directory wins: it is the likeliest for the next commit. */
	old = queue->spare_fd;
	queue->spare_fd = fd;
	g_free(queue->spare_dir);
	queue->spare_dir = g_strdup(rel_dir);
	g_mutex_unlock(&queue->lock);
	if (old >= 0)
		close(old);
}

const char *
imta_queue_root(const ImtaQueue *queue)
{
	return queue->root;
}

QueueCommitter *
queue_get_committer(ImtaQueue *queue)
{
	QueueCommitter *committer;

	g_mutex_lock(&queue->lock);
	if (queue->committer == NULL)
		queue->committer = queue_committer_new(queue->root_fd, queue->root);
	committer = queue->committer;
	g_mutex_unlock(&queue->lock);
	return committer;
}

/* ---- scanning ------------------------------------------------------------ */

typedef enum { SCAN_CONTINUE, SCAN_STOP, SCAN_ERROR } ScanResult;

typedef struct {
	ImtaQueue *queue;
	int pass;               /* -1: every file; 0: untried only; 1: tried only */
	ImtaQueueVisit fn;
	gpointer user_data;
} ScanState;

static DIR *
queue_opendir(ImtaQueue *queue, const char *rel_dir)
{
	int fd = openat(queue->root_fd, rel_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir;

	if (fd < 0)
		return NULL;
	dir = fdopendir(fd);
	if (dir == NULL) {
		int errnum = errno;

		close(fd);
		errno = errnum;
	}
	return dir;
}

static ScanResult
scan_dir(ScanState *state, const char *rel_dir, gboolean top, GError **error)
{
	DIR *dir = queue_opendir(state->queue, rel_dir);
	ScanResult result = SCAN_CONTINUE;
	struct dirent *de;

	if (dir == NULL) {
		/* A missing channel directory is an empty queue; a subdirectory
		 * name that is a file is a stray. */
		if (errno == ENOENT || (!top && errno == ENOTDIR))
			return SCAN_CONTINUE;
		queue_set_io_error(error, state->queue, "read the directory", rel_dir, errno);
		return SCAN_ERROR;
	}
	for (errno = 0; result == SCAN_CONTINUE && (de = readdir(dir)) != NULL; errno = 0) {
		g_autofree char *rel = NULL;
		guint attempts;
		gboolean held;

		if (top && queue_is_subdir_name(de->d_name)) {
			rel = g_strconcat(rel_dir, "/", de->d_name, NULL);
			result = scan_dir(state, rel, FALSE, error);
			continue;
		}
		if (!imta_queue_parse_name(de->d_name, &attempts, NULL, &held))
			continue;
		if ((state->pass == 0 && attempts != 0) || (state->pass == 1 && attempts == 0))
			continue;
		rel = g_strconcat(rel_dir, "/", de->d_name, NULL);
		if (!state->fn(rel, attempts, held, state->user_data))
			result = SCAN_STOP;
	}
	if (result == SCAN_CONTINUE && errno != 0) {
		queue_set_io_error(error, state->queue, "read the directory", rel_dir, errno);
		result = SCAN_ERROR;
	}
	closedir(dir);
	return result;
}

/* Two passes over the directories rather than a sorted list: memory
 * stays constant however long the queue is. */
gboolean
imta_queue_scan_channel(ImtaQueue *queue, const char *channel, gboolean untried_first,
			ImtaQueueVisit fn, gpointer user_data, GError **error)
{
	ScanState state = { queue, untried_first ? 0 : -1, fn, user_data };
	ScanResult result;

	if (!queue_channel_name_valid(channel)) {
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_NOT_FOUND,
			    "\"%s\" is not a channel name", channel != NULL ? channel : "");
		return FALSE;
	}
	result = scan_dir(&state, channel, TRUE, error);
	if (result == SCAN_CONTINUE && untried_first) {
		state.pass = 1;
		result = scan_dir(&state, channel, TRUE, error);
	}
	return result != SCAN_ERROR;
}

/* ---- stale temporary files ----------------------------------------------- */

/* The pid in "$<pid>-<counter>.tmp", or 0 for any other name. */
static pid_t
queue_tmp_owner(const char *name)
{
	const char *p = name + 1;
	char *end;
	guint64 pid;

	if (!g_ascii_isdigit(*p))
		return 0;
	pid = g_ascii_strtoull(p, &end, 10);
	if (*end != '-' || pid == 0 || pid > G_MAXINT32)
		return 0;
	p = end + 1;
	if (!g_ascii_isdigit(*p))
		return 0;
	g_ascii_strtoull(p, &end, 10);
	if (strcmp(end, ".tmp") != 0)
		return 0;
	return (pid_t)pid;
}

static gboolean
queue_tmp_is_stale(ImtaQueue *queue, const char *name, gint64 now)
{
	pid_t owner = queue_tmp_owner(name);
	struct stat st;

	if (owner > 0 && kill(owner, 0) < 0 && errno == ESRCH)
		return TRUE;
	if (fstatat(queue->root_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return FALSE;
	return now - (gint64)st.st_mtime > QUEUE_STALE_AGE;
}

guint
imta_queue_clean_stale(ImtaQueue *queue, GError **error)
{
	DIR *dir = queue_opendir(queue, ".");
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	struct dirent *de;
	guint removed = 0;

	if (dir == NULL) {
		queue_set_io_error(error, queue, "read the directory", NULL, errno);
		return 0;
	}
	for (errno = 0; (de = readdir(dir)) != NULL; errno = 0) {
		if (de->d_name[0] != '$' || !queue_tmp_is_stale(queue, de->d_name, now))
			continue;
		if (unlinkat(queue->root_fd, de->d_name, 0) == 0) {
			removed++;
		} else if (errno != ENOENT) {
			if (error != NULL && *error == NULL)
				queue_set_io_error(error, queue, "remove", de->d_name, errno);
		}
	}
	if (errno != 0 && error != NULL && *error == NULL)
		queue_set_io_error(error, queue, "read the directory", NULL, errno);
	closedir(dir);
	return removed;
}
