/*
 * rebuild.c - scanning the queue directories for the message table, with
 * a thread per channel directory being read (see rebuild.h), and the
 * checks on the queue file paths that notices and jobs send.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>
#include <glib-unix.h>

#include <imta/fd_watch.h>
#include <imta/log.h>
#include <imta/queue.h>
#include <imta/stat_untimed.h>
#include <imta/xtext.h>
#include "rebuild.h"

#define REBUILD_PATH_MAX 1024

typedef enum {
	REBUILD_UNTRIED,
	REBUILD_TRIED,
} RebuildPhase;

struct _Rebuild {
	ImtaQueue *queue;
	int root_fd;
	const ImtaCnf *cnf;
	MessageTable *table;
	guint parallel;
	RebuildBatchFn fn;
	gpointer user_data;
	GThread *coordinator;
	GAsyncQueue *batches;
	int wake[2];                /* workers write a byte after queueing */
	guint wake_source;
	gint budget;                /* files that may still be read */
	gint cancelled;
	gint exhausted;
	gint errors;
	RebuildPhase phase;
	GMutex stats_lock;
	RebuildStats stats;
	gint64 started;
};

typedef struct {
	Rebuild *rebuild;
	guint channel;
	RebuildBatch *batch;
	gboolean stop;
} RebuildScan;

/* ---- paths ----------------------------------------------------------- */

guint
rebuild_channel_index(const ImtaCnf *cnf, const char *channel)
{
	const ImtaChannel *found = imta_cnf_channel_by_name(cnf, channel);

	if (found == NULL)
		return G_MAXUINT;
	for (guint i = 0; i < cnf->channels->len; i++)
		if (g_ptr_array_index(cnf->channels, i) == found)
			return i;
	return G_MAXUINT;
}

static gboolean
rebuild_path_error(GError **error, const char *path, const char *why)
{
	g_autofree char *shown = g_strndup(path, 200);

	g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_FORMAT,
		    "\"%s\" is not a queue file path: %s", shown, why);
	return FALSE;
}

/* "000" ... "999" exactly as the queue names its subdirectories. */
static gboolean
rebuild_parse_subdir(const char *part, guint *subdir_r)
{
	if (strlen(part) != 3 || !g_ascii_isdigit(part[0]) || !g_ascii_isdigit(part[1]) ||
	    !g_ascii_isdigit(part[2]))
		return FALSE;
	*subdir_r = (guint)((part[0] - '0') * 100 + (part[1] - '0') * 10 + (part[2] - '0'));
	return TRUE;
}

gboolean
rebuild_parse_path(const ImtaCnf *cnf, const char *path, RebuildPath *path_r, GError **error)
{
	g_auto(GStrv) parts = NULL;
	guint n;

	if (path == NULL || *path == '\0')
		return rebuild_path_error(error, "", "empty");
	if (strlen(path) > REBUILD_PATH_MAX)
		return rebuild_path_error(error, path, "too long");
	if (path[0] == '/')
		return rebuild_path_error(error, path, "absolute");
	for (const char *p = path; *p != '\0'; p++)
		if ((guchar)*p <= 0x20 || (guchar)*p >= 0x7f)
			return rebuild_path_error(error, path,
						  "control, space or 8-bit character");
	parts = g_strsplit(path, "/", 4);
	n = g_strv_length(parts);
	if (n < 2 || n > 3)
		return rebuild_path_error(error, path, "expected <channel>/[<NNN>/]<file>");
	for (guint i = 0; i < n; i++)
		if (strcmp(parts[i], ".") == 0 || strcmp(parts[i], "..") == 0 || *parts[i] == '\0')
			return rebuild_path_error(error, path, "empty, \".\" or \"..\" part");
	path_r->channel = rebuild_channel_index(cnf, parts[0]);
	if (path_r->channel == G_MAXUINT)
		return rebuild_path_error(error, path, "no such channel");
	path_r->subdir = MT_NO_SUBDIR;
	if (n == 3 && !rebuild_parse_subdir(parts[1], &path_r->subdir))
		return rebuild_path_error(error, path, "expected a subdirectory 000 to 999");
	if (!imta_queue_parse_name(parts[n - 1], &path_r->attempts, path_r->id, &path_r->held))
		return rebuild_path_error(error, path, "not a queue file name");
	return TRUE;
}

/* ---- headers --------------------------------------------------------- */

static void
rebuild_header_line(RebuildHeader *header, const char *line, gsize len)
{
	const char *space = memchr(line, ' ', len);
	gsize key_len, value_len;
	const char *value;

	if (space == NULL)
		return;
	key_len = (gsize)(space - line);
	value = space + 1;
	value_len = len - key_len - 1;
	if (key_len == 4 && memcmp(line, "host", 4) == 0) {
		g_autofree char *host = imta_xtext_decode(value, (gssize)value_len, NULL, NULL);

		if (host != NULL)
			g_strlcpy(header->host, host, sizeof(header->host));
		else
			g_strlcpy(header->host, value, MIN(value_len + 1, sizeof(header->host)));
		header->well_formed = TRUE;
	} else if (key_len == 8 && memcmp(line, "priority", 8) == 0) {
		if (value_len == 6 && memcmp(value, "urgent", 6) == 0)
			header->priority = IMTA_PRIORITY_URGENT;
		else if ((value_len == 9 && memcmp(value, "nonurgent", 9) == 0) ||
			 (value_len == 10 && memcmp(value, "non-urgent", 10) == 0))
			header->priority = IMTA_PRIORITY_NONURGENT;
	} else if (key_len == 7 && memcmp(line, "created", 7) == 0) {
		g_autofree char *text = g_strndup(value, value_len);
		char *end;
		gint64 created = g_ascii_strtoll(text, &end, 10);

		if (*end == '\0' && created > 0)
			header->created = created;
	}
}

static void
rebuild_parse_header(RebuildHeader *header, const char *buf, gsize len)
{
	const char *p = buf, *end = buf + len;
	gboolean first = TRUE;

	while (p < end) {
		const char *nl = memchr(p, '\n', (gsize)(end - p));

		if (nl == NULL)
			break;                 /* cut by the read size: ignore */
		if (nl == p)
			break;                 /* the blank line ends the envelope */
		if (first) {
			if ((gsize)(nl - p) != 6 || memcmp(p, "IMTAQ1", 6) != 0) {
				header->well_formed = FALSE;
				return;
			}
			first = FALSE;
		} else {
			rebuild_header_line(header, p, (gsize)(nl - p));
		}
		p = nl + 1;
	}
}

gboolean
rebuild_read_header(int root_fd, const char *path, gboolean with_mtime, RebuildHeader *header_r,
		    GError **error)
{
	char buf[REBUILD_HEADER_BYTES];
	struct stat st;
	ssize_t n;
	int fd;

	memset(header_r, 0, sizeof(*header_r));
	header_r->priority = IMTA_PRIORITY_NORMAL;
	fd = openat(root_fd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		g_set_error(error, IMTA_QUEUE_ERROR,
			    errno == ENOENT ? IMTA_QUEUE_ERROR_NOT_FOUND : IMTA_QUEUE_ERROR_IO,
			    "cannot open %s: %s", path, g_strerror(errno));
		return FALSE;
	}
	if ((with_mtime ? fstat(fd, &st) : imta_fstat_untimed(fd, &st)) < 0 ||
	    !S_ISREG(st.st_mode)) {
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_FORMAT,
			    "%s is not a regular file", path);
		close(fd);
		return FALSE;
	}
	do
		n = pread(fd, buf, sizeof(buf), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_IO, "cannot read %s: %s",
			    path, g_strerror(errno));
		close(fd);
		return FALSE;
	}
	close(fd);
	header_r->mtime = (gint64)st.st_mtime;
	header_r->created = (gint64)st.st_mtime;
	rebuild_parse_header(header_r, buf, (gsize)n);
	return TRUE;
}

/* ---- batches --------------------------------------------------------- */

static RebuildBatch *
rebuild_batch_new(void)
{
	RebuildBatch *batch = g_new0(RebuildBatch, 1);

	batch->items = g_array_sized_new(FALSE, FALSE, sizeof(RebuildItem), REBUILD_BATCH);
	batch->strings = g_string_chunk_new(4096);
	return batch;
}

void
rebuild_batch_free(RebuildBatch *batch)
{
	if (batch == NULL)
		return;
	g_array_unref(batch->items);
	g_string_chunk_free(batch->strings);
	g_free(batch);
}

static gint
rebuild_item_compare(gconstpointer a, gconstpointer b)
{
	const RebuildItem *ia = a, *ib = b;

	return ia->order < ib->order ? -1 : ia->order > ib->order;
}

static void
rebuild_post(Rebuild *rebuild, RebuildBatch *batch)
{
	char byte = 'b';

	g_async_queue_push(rebuild->batches, batch);
	(void)!write(rebuild->wake[1], &byte, 1);
}

static void
rebuild_flush(RebuildScan *scan)
{
	if (scan->batch == NULL || scan->batch->items->len == 0)
		return;
	g_array_sort(scan->batch->items, rebuild_item_compare);
	rebuild_post(scan->rebuild, g_steal_pointer(&scan->batch));
}

/* ---- scanning -------------------------------------------------------- */

static void
rebuild_count(Rebuild *rebuild, guint *field)
{
	g_mutex_lock(&rebuild->stats_lock);
	(*field)++;
	g_mutex_unlock(&rebuild->stats_lock);
}

static gboolean
rebuild_visit(const char *path, guint attempts, gboolean held, gpointer user_data)
{
	RebuildScan *scan = user_data;
	Rebuild *rebuild = scan->rebuild;
	g_autoptr(GError) error = NULL;
	RebuildHeader header;
	RebuildPath parsed;
	RebuildItem item;

	if (g_atomic_int_get(&rebuild->cancelled))
		return FALSE;
	/* Untried files come first: the first tried one ends this phase. */
	if (rebuild->phase == REBUILD_UNTRIED && attempts > 0)
		return FALSE;
	if (rebuild->phase == REBUILD_TRIED && attempts == 0)
		return TRUE;
	rebuild_count(rebuild, &rebuild->stats.files);
	if (held) {
		rebuild_count(rebuild, &rebuild->stats.held);
		return TRUE;
	}
	if (!rebuild_parse_path(rebuild->cnf, path, &parsed, &error)) {
		imta_log(IMTA_LOG_WARNING, "queue scan: %s", error->message);
		return TRUE;
	}
	if (message_table_contains(rebuild->table, parsed.id)) {
		rebuild_count(rebuild, &rebuild->stats.known);
		return TRUE;
	}
	if (g_atomic_int_add(&rebuild->budget, -1) <= 0) {
		g_atomic_int_set(&rebuild->exhausted, 1);
		return FALSE;
	}
	if (!rebuild_read_header(rebuild->root_fd, path, TRUE, &header, &error)) {
		/* Gone meanwhile (delivered, or moved by an administrator). */
		if (!g_error_matches(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_NOT_FOUND)) {
			imta_log(IMTA_LOG_WARNING, "queue scan: %s", error->message);
			g_atomic_int_inc(&rebuild->errors);
		}
		return TRUE;
	}
	if (!header.well_formed)
		imta_log(IMTA_LOG_WARNING, "queue scan: %s: no envelope header in its first %d "
			 "bytes; delivering it as a message to an unknown host", path,
			 REBUILD_HEADER_BYTES);
	memset(&item, 0, sizeof(item));
	memcpy(item.id, parsed.id, sizeof(item.id));
	item.channel = parsed.channel;
	item.subdir = parsed.subdir;
	item.attempts = parsed.attempts;
	item.priority = header.priority;
	item.next_attempt = header.mtime;
	item.order = attempts == 0 ? header.created : header.mtime;
	if (scan->batch == NULL)
		scan->batch = rebuild_batch_new();
	item.host = g_string_chunk_insert_const(scan->batch->strings, header.host);
	g_array_append_val(scan->batch->items, item);
	rebuild_count(rebuild, &rebuild->stats.read);
	if (scan->batch->items->len >= REBUILD_BATCH)
		rebuild_flush(scan);
	return TRUE;
}

static void
rebuild_worker(gpointer data, gpointer user_data)
{
	Rebuild *rebuild = user_data;
	RebuildScan scan = { rebuild, GPOINTER_TO_UINT(data) - 1, NULL, FALSE };
	const ImtaChannel *channel = g_ptr_array_index(rebuild->cnf->channels, scan.channel);
	g_autoptr(GError) error = NULL;

	if (g_atomic_int_get(&rebuild->cancelled) || g_atomic_int_get(&rebuild->exhausted))
		return;
	/* Untried files: the queue lists them first.  Tried files: one pass
	 * over every file, skipping untried ones. */
	if (!imta_queue_scan_channel(rebuild->queue, channel->name,
				     rebuild->phase == REBUILD_UNTRIED, rebuild_visit, &scan,
				     &error)) {
		imta_log(IMTA_LOG_ERROR, "queue scan of channel %s: %s", channel->name,
			 error->message);
		g_atomic_int_inc(&rebuild->errors);
	}
	rebuild_flush(&scan);
	rebuild_batch_free(scan.batch);
}

static void
rebuild_run_phase(Rebuild *rebuild, RebuildPhase phase)
{
	g_autoptr(GError) error = NULL;
	GThreadPool *pool;

	rebuild->phase = phase;
	pool = g_thread_pool_new(rebuild_worker, rebuild, (gint)rebuild->parallel, FALSE, &error);
	if (pool == NULL) {
		imta_log(IMTA_LOG_ERROR, "queue scan: cannot start threads: %s", error->message);
		g_atomic_int_inc(&rebuild->errors);
		return;
	}
	for (guint i = 0; i < rebuild->cnf->channels->len; i++) {
		if (!g_thread_pool_push(pool, GUINT_TO_POINTER(i + 1), &error)) {
			imta_log(IMTA_LOG_ERROR, "queue scan: %s", error->message);
			g_clear_error(&error);
			g_atomic_int_inc(&rebuild->errors);
		}
	}
	/* Wait for every directory of this phase. */
	g_thread_pool_free(pool, FALSE, TRUE);
}

static gpointer
rebuild_coordinate(gpointer data)
{
	Rebuild *rebuild = data;
	RebuildBatch *last;

	rebuild_run_phase(rebuild, REBUILD_UNTRIED);
	if (!g_atomic_int_get(&rebuild->cancelled) && !g_atomic_int_get(&rebuild->exhausted))
		rebuild_run_phase(rebuild, REBUILD_TRIED);
	last = g_new0(RebuildBatch, 1);
	last->items = g_array_new(FALSE, FALSE, sizeof(RebuildItem));
	last->strings = g_string_chunk_new(16);
	last->last = TRUE;
	g_mutex_lock(&rebuild->stats_lock);
	last->stats = rebuild->stats;
	g_mutex_unlock(&rebuild->stats_lock);
	last->stats.errors = (guint)g_atomic_int_get(&rebuild->errors);
	last->stats.complete = !g_atomic_int_get(&rebuild->cancelled) &&
			       !g_atomic_int_get(&rebuild->exhausted) && last->stats.errors == 0;
	last->stats.seconds = (g_get_monotonic_time() - rebuild->started) / 1e6;
	rebuild_post(rebuild, last);
	return NULL;
}

/* ---- the owner's side ------------------------------------------------ */

static gboolean
rebuild_on_wake(gint fd, GIOCondition condition, gpointer user_data)
{
	Rebuild *rebuild = user_data;
	char buf[256];
	RebuildBatch *batch;

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	while ((batch = g_async_queue_try_pop(rebuild->batches)) != NULL) {
		gboolean last = batch->last;

		rebuild->fn(batch, rebuild->user_data);
		/* Nothing follows the last batch, and its callback may free us. */
		if (last)
			break;
	}
	return G_SOURCE_CONTINUE;
}

Rebuild *
rebuild_start(ImtaQueue *queue, int root_fd, const ImtaCnf *cnf, MessageTable *table,
	      guint budget, guint parallel, RebuildBatchFn fn, gpointer user_data)
{
	Rebuild *rebuild = g_new0(Rebuild, 1);
	g_autoptr(GError) error = NULL;

	rebuild->queue = queue;
	rebuild->root_fd = root_fd;
	rebuild->cnf = cnf;
	rebuild->table = table;
	rebuild->parallel = CLAMP(parallel, 1, 100);
	rebuild->fn = fn;
	rebuild->user_data = user_data;
	rebuild->budget = (gint)MIN(budget, (guint)G_MAXINT);
	rebuild->batches = g_async_queue_new();
	rebuild->started = g_get_monotonic_time();
	g_mutex_init(&rebuild->stats_lock);
	if (!g_unix_open_pipe(rebuild->wake, FD_CLOEXEC, &error) ||
	    !g_unix_set_fd_nonblocking(rebuild->wake[0], TRUE, &error) ||
	    !g_unix_set_fd_nonblocking(rebuild->wake[1], TRUE, &error))
		g_error("queue scan: cannot make a pipe: %s", error->message);
	rebuild->wake_source = imta_fd_watch_add(rebuild->wake[0], G_IO_IN, rebuild_on_wake, rebuild);
	rebuild->coordinator = g_thread_new("rebuild", rebuild_coordinate, rebuild);
	return rebuild;
}

void
rebuild_cancel(Rebuild *rebuild)
{
	g_atomic_int_set(&rebuild->cancelled, 1);
}

void
rebuild_free(Rebuild *rebuild)
{
	RebuildBatch *batch;

	if (rebuild == NULL)
		return;
	rebuild_cancel(rebuild);
	g_thread_join(rebuild->coordinator);
	g_source_remove(rebuild->wake_source);
	while ((batch = g_async_queue_try_pop(rebuild->batches)) != NULL)
		rebuild_batch_free(batch);
	g_async_queue_unref(rebuild->batches);
	close(rebuild->wake[0]);
	close(rebuild->wake[1]);
	g_mutex_clear(&rebuild->stats_lock);
	g_free(rebuild);
}
