/*
 * enqueue.c - accepting a message into the channel queues.
 *
 * Content stays in memory up to ENQUEUE_BUFFER bytes, and up to
 * ENQUEUE_MEMORY_MAX while the process as a whole holds less than
 * ENQUEUE_MEMORY_BUDGET beyond ENQUEUE_BUFFER per message (enqueue_reserve).
 * Beyond that it is spooled once, as it arrives, to an anonymous file in
 * the queue root (O_TMPFILE, or a file unlinked at once), so memory stays
 * bounded per message and per process, and an enqueue that is never
 * committed leaves nothing behind either way.  At commit the recipients
 * are grouped into queue files (per channel; per destination host with
 * single_sys; per recipient with single; at most addrsperfile recipients
 * each), and every file is written as a temporary file holding the
 * envelope and the content (from memory, or copied from the spool with
 * copy_file_range(), which may share blocks, else sendfile(), else read
 * and write), then handed to the group committer, which puts them in place
 * and makes them durable together.  Messages kept in memory, nearly all of
 * them, thus cost one file each, written once, and nothing more for the
 * file system to write back; a spooled one costs a second file and a
 * second copy of its content.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#ifdef __linux__
#include <sys/sendfile.h>
#endif
#include <glib.h>

#include <imta/mail_log.h>
#include <imta/mime.h>
#include <imta/queue.h>

#include "group_commit.h"
#include "queue_file.h"

#define ENQUEUE_BUFFER QUEUE_CONTENT_BUFFER
#define ENQUEUE_MEMORY_MAX QUEUE_CONTENT_MEMORY_MAX
#define ENQUEUE_MEMORY_BUDGET QUEUE_CONTENT_MEMORY_BUDGET
/* Reservations grow by this much, so that a message takes few of them. */
#define ENQUEUE_MEMORY_STEP (256 * 1024)
#define ENQUEUE_TMP_TRIES 16

typedef struct {
	const ImtaChannel *channel;
	char *address;
	char *orcpt;
	char *host;             /* the address's domain, lower case ("" if none) */
	guint notify;
} EnqueueRecipient;

/* One queue file being written. */
typedef struct {
	const ImtaChannel *channel;
	const char *host;
	const char *then;       /* diverted: the channel to go on to (divert.c) */
	GArray *rcpts;          /* guint indices into enq->rcpts */
	char id[IMTA_QUEUE_ID_LENGTH + 1];
	int tmp_fd;             /* an unnamed temporary file, or -1 */
	char *tmp_name;         /* a named one; NULL until created */
	char *final_name;
	GString *envelope;      /* kept with `data` when the content was in memory */
	struct iovec data[2];   /* what was written: envelope, content */
} EnqueueFile;

struct _ImtaEnqueue {
	ImtaQueue *queue;
	char *source;
	char *return_path;
	char *envid;
	ImtaRet ret;
	ImtaPriority priority;
	gint64 created;
	GArray *rcpts;          /* EnqueueRecipient */
	int spool_fd;           /* -1 until the first write */
	goffset size;           /* content bytes, spooled or buffered */
	GString *pending;       /* the content, or what is not yet in the spool */
	gsize reserved;         /* of the process's budget, beyond ENQUEUE_BUFFER */
	gboolean broken;        /* a spool write failed: the content is unknown */
	gboolean committed;
	gboolean hold_reports;
	GPtrArray *unreported;  /* EnqueueFile: committed, not yet logged nor notified */
	GPtrArray *files;       /* committed final names, NULL-terminated */
	guint log_flags;        /* ImtaMailLogFlags of the E entries */
	char first_id[IMTA_QUEUE_ID_LENGTH + 1]; /* imta_enqueue_set_id; "" = none */
};

static void
enqueue_recipient_clear(gpointer p)
{
	EnqueueRecipient *rcpt = p;

	g_free(rcpt->address);
	g_free(rcpt->orcpt);
	g_free(rcpt->host);
}

ImtaEnqueue *
imta_enqueue_new(ImtaQueue *queue, const char *source_channel, const char *return_path)
{
	ImtaEnqueue *enq;

	g_return_val_if_fail(queue != NULL, NULL);
	enq = g_new0(ImtaEnqueue, 1);
	enq->queue = queue;
	enq->source = g_strdup(source_channel != NULL ? source_channel : "");
	enq->return_path = g_strdup(return_path != NULL ? return_path : "");
	enq->priority = IMTA_PRIORITY_NORMAL;
	enq->created = g_get_real_time() / G_USEC_PER_SEC;
	enq->rcpts = g_array_new(FALSE, TRUE, sizeof(EnqueueRecipient));
	g_array_set_clear_func(enq->rcpts, enqueue_recipient_clear);
	enq->spool_fd = -1;
	enq->pending = g_string_sized_new(0);
	enq->files = g_ptr_array_new_with_free_func(g_free);
	g_ptr_array_add(enq->files, NULL);
	return enq;
}

gboolean
imta_enqueue_set_id(ImtaEnqueue *enq, const char *id)
{
	if (id == NULL || strlen(id) != IMTA_QUEUE_ID_LENGTH)
		return FALSE;
	for (const char *p = id; *p != '\0'; p++)
		if (!g_ascii_isdigit(*p) && !g_ascii_isupper(*p))
			return FALSE;
	memcpy(enq->first_id, id, sizeof enq->first_id);
	return TRUE;
}

void
imta_enqueue_set_envid(ImtaEnqueue *enq, const char *envid)
{
	g_free(enq->envid);
	enq->envid = g_strdup(envid);
}

void
imta_enqueue_set_ret(ImtaEnqueue *enq, ImtaRet ret)
{
	enq->ret = ret;
}

void
imta_enqueue_set_priority(ImtaEnqueue *enq, ImtaPriority priority)
{
	g_return_if_fail(priority < IMTA_PRIORITY_COUNT);
	enq->priority = priority;
}

void
imta_enqueue_set_mail_log_flags(ImtaEnqueue *enq, guint flags)
{
	enq->log_flags = flags;
}

/* The destination host of an address: its domain after the last '@'. */
static char *
enqueue_host_of(const char *address)
{
	const char *at = strrchr(address, '@');

	return g_ascii_strdown(at != NULL ? at + 1 : "", -1);
}

static gboolean
enqueue_check_field(const char *what, const char *value, GError **error)
{
	if (value != NULL && strlen(value) > QUEUE_MAX_FIELD) {
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_LIMIT,
			    "%s longer than %d bytes", what, QUEUE_MAX_FIELD);
		return FALSE;
	}
	return TRUE;
}

gboolean
imta_enqueue_add_recipient(ImtaEnqueue *enq, const ImtaChannel *channel, const char *address,
			   const char *orcpt, guint notify, GError **error)
{
	EnqueueRecipient rcpt = { 0 };

	g_return_val_if_fail(enq != NULL && !enq->committed, FALSE);
	g_return_val_if_fail(channel != NULL, FALSE);
	if (!queue_channel_name_valid(channel->name)) {
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_FORMAT,
			    "the channel name \"%s\" cannot name a queue directory", channel->name);
		return FALSE;
	}
	if (address == NULL || address[0] == '\0') {
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_FORMAT,
			    "an empty recipient address cannot be queued");
		return FALSE;
	}
	if ((notify & ~(guint)(IMTA_NOTIFY_NEVER | IMTA_NOTIFY_SUCCESS | IMTA_NOTIFY_FAILURE |
			       IMTA_NOTIFY_DELAY)) != 0) {
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_FORMAT,
			    "NOTIFY value 0x%x has unknown bits", notify);
		return FALSE;
	}
	if (!enqueue_check_field("recipient address", address, error) ||
	    !enqueue_check_field("ORCPT", orcpt, error))
		return FALSE;
	rcpt.channel = channel;
	rcpt.address = g_strdup(address);
	rcpt.orcpt = orcpt != NULL && orcpt[0] != '\0' ? g_strdup(orcpt) : NULL;
	rcpt.host = enqueue_host_of(address);
	rcpt.notify = notify;
	g_array_append_val(enq->rcpts, rcpt);
	return TRUE;
}

/* ---- the content spool ------------------------------------------------- */

static gboolean
enqueue_open_spool(ImtaEnqueue *enq, GError **error)
{
	ImtaQueue *queue = enq->queue;
	g_autofree char *name = NULL;

	if (enq->spool_fd >= 0)
		return TRUE;
#ifdef O_TMPFILE
	enq->spool_fd = openat(queue->root_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (enq->spool_fd >= 0)
		return TRUE;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL && errno != ENOENT) {
		queue_set_io_error(error, queue, "create a spool file in", NULL, errno);
		return FALSE;
	}
#endif
	for (guint tries = 0; tries < ENQUEUE_TMP_TRIES; tries++) {
		g_free(name);
		name = queue_tmp_name_new();
		enq->spool_fd = openat(queue->root_fd, name,
				       O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (enq->spool_fd >= 0 || errno != EEXIST)
			break;
	}
	if (enq->spool_fd < 0) {
		queue_set_io_error(error, queue, "create", name, errno);
		return FALSE;
	}
	if (unlinkat(queue->root_fd, name, 0) < 0) {
		queue_set_io_error(error, queue, "remove", name, errno);
		close(enq->spool_fd);
		enq->spool_fd = -1;
		return FALSE;
	}
	return TRUE;
}

static gboolean
enqueue_spool_write(ImtaEnqueue *enq, const void *data, gsize length, GError **error)
{
	if (length == 0)
		return TRUE;
	if (!enqueue_open_spool(enq, error))
		return FALSE;
	if (queue_write_all(enq->spool_fd, data, length) < 0) {
		queue_set_io_error(error, enq->queue, "write the spool file in", NULL, errno);
		enq->broken = TRUE;
		return FALSE;
	}
	return TRUE;
}

static gboolean
enqueue_flush(ImtaEnqueue *enq, GError **error)
{
	gboolean ok = enqueue_spool_write(enq, enq->pending->str, enq->pending->len, error);

	g_string_truncate(enq->pending, 0);
	return ok;
}

/* Once spooled, small writes are gathered into ENQUEUE_BUFFER before they
 * reach the spool. */
static gboolean
enqueue_write_spooled(ImtaEnqueue *enq, const void *data, gsize length, GError **error)
{
	if (enq->pending->len + length <= ENQUEUE_BUFFER) {
		g_string_append_len(enq->pending, data, (gssize)length);
		return TRUE;
	}
	if (!enqueue_flush(enq, error))
		return FALSE;
	if (length >= ENQUEUE_BUFFER)
		return enqueue_spool_write(enq, data, length, error);
	g_string_append_len(enq->pending, data, (gssize)length);
	return TRUE;
}

/* ---- the memory budget ----------------------------------------------- */

/* Bytes reserved beyond ENQUEUE_BUFFER by the enqueues of this process. */
static gint enqueue_memory_reserved;

/* May the content in memory grow to `want` bytes?  Within ENQUEUE_BUFFER
 * always; up to ENQUEUE_MEMORY_MAX when the process's budget has room. */
static gboolean
enqueue_reserve(ImtaEnqueue *enq, gsize want)
{
	gsize need;
	gint more;

	if (want <= ENQUEUE_BUFFER + enq->reserved)
		return TRUE;
	if (want > ENQUEUE_MEMORY_MAX)
		return FALSE;
	need = MIN((want - ENQUEUE_BUFFER + ENQUEUE_MEMORY_STEP - 1) / ENQUEUE_MEMORY_STEP *
			   ENQUEUE_MEMORY_STEP,
		   (gsize)(ENQUEUE_MEMORY_MAX - ENQUEUE_BUFFER));
	more = (gint)(need - enq->reserved);
	if (g_atomic_int_add(&enqueue_memory_reserved, more) + more > ENQUEUE_MEMORY_BUDGET) {
		g_atomic_int_add(&enqueue_memory_reserved, -more);
		return FALSE;
	}
	enq->reserved = need;
	return TRUE;
}

static void
enqueue_release(ImtaEnqueue *enq)
{
	if (enq->reserved == 0)
		return;
	g_atomic_int_add(&enqueue_memory_reserved, -(gint)enq->reserved);
	enq->reserved = 0;
}

gsize
queue_content_memory_reserved(void)
{
	return (gsize)g_atomic_int_get(&enqueue_memory_reserved);
}

gboolean
queue_enqueue_spooled(const ImtaEnqueue *enq)
{
	return enq->spool_fd >= 0;
}

/* The content outgrew memory: what is there goes to the spool, and the
 * buffer goes back to collecting writes for it. */
static gboolean
enqueue_spill(ImtaEnqueue *enq, GError **error)
{
	gboolean ok = enqueue_flush(enq, error);

	if (enq->reserved > 0) {
		g_string_free(enq->pending, TRUE);
		enq->pending = g_string_sized_new(0);
		enqueue_release(enq);
	}
	return ok;
}

gboolean
imta_enqueue_write(ImtaEnqueue *enq, const void *data, gsize length, GError **error)
{
	g_return_val_if_fail(enq != NULL && !enq->committed, FALSE);
	if (enq->broken) {
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_IO,
			    "an earlier write of this message's content failed");
		return FALSE;
	}
	enq->size += (goffset)length;
	if (enq->spool_fd < 0 && enqueue_reserve(enq, enq->pending->len + length)) {
		g_string_append_len(enq->pending, data, (gssize)length);
		return TRUE;
	}
	if (enq->spool_fd < 0)
		return enqueue_spill(enq, error) && enqueue_write_spooled(enq, data, length, error);
	return enqueue_write_spooled(enq, data, length, error);
}

/* Copy `size` bytes of the spool to the end of out_fd. */
static int
enqueue_copy_content(int in_fd, int out_fd, goffset size)
{
	off_t in_off = 0;
	gboolean try_range = TRUE, try_sendfile = TRUE;
	char *buf = NULL;
	int ret = 0;

	while (in_off < size) {
		size_t want = (size_t)MIN(size - in_off, (goffset)(1 << 30));
		ssize_t n = -1;

#ifdef __linux__
		if (try_range) {
			n = copy_file_range(in_fd, &in_off, out_fd, NULL, want, 0);
			if (n < 0 && errno != EINTR && errno != ENOSPC && errno != EIO &&
			    errno != EDQUOT && errno != EFBIG) {
				try_range = FALSE; /* not here: EXDEV, EINVAL, ENOSYS, ... */
				continue;
			}
		} else if (try_sendfile) {
			n = sendfile(out_fd, in_fd, &in_off, want);
			if (n < 0 && errno != EINTR && errno != ENOSPC && errno != EIO &&
			    errno != EDQUOT && errno != EFBIG) {
				try_sendfile = FALSE;
				continue;
			}
		} else
#endif
		{
			if (buf == NULL)
				buf = g_malloc(ENQUEUE_BUFFER);
			n = pread(in_fd, buf, MIN(want, (size_t)ENQUEUE_BUFFER), in_off);
			if (n > 0 && queue_write_all(out_fd, buf, (gsize)n) < 0)
				n = -1;
			else if (n > 0)
				in_off += n;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -1;
			break;
		}
		if (n == 0) {
			/* The spool is shorter than what was written to it. */
			errno = EIO;
			ret = -1;
			break;
		}
	}
	g_free(buf);
	(void)try_range;
	(void)try_sendfile;
	return ret;
}

/* ---- grouping recipients into files --------------------------------- */

static void
enqueue_file_free(gpointer p)
{
	EnqueueFile *file = p;

	if (file->tmp_fd >= 0)
		close(file->tmp_fd);
	g_array_unref(file->rcpts);
	g_free(file->tmp_name);
	g_free(file->final_name);
	if (file->envelope != NULL)
		g_string_free(file->envelope, TRUE);
	g_free(file);
}

static gboolean enqueue_is_partial(const ImtaEnqueue *enq);

/* Diversions (divert.c) are decided once per destination channel. */
typedef struct {
	const ImtaChannel *channel;
	const char *then;
} EnqueueRoute;

static EnqueueRoute *
enqueue_route(ImtaEnqueue *enq, GHashTable *routes, const ImtaChannel *channel, int *partial)
{
	EnqueueRoute *route = g_hash_table_lookup(routes, channel);

	if (route != NULL)
		return route;
	if (channel->defragment && *partial < 0)
		*partial = enqueue_is_partial(enq);
	route = g_new0(EnqueueRoute, 1);
	route->channel = queue_divert(enq->queue, enq->source, channel,
				      channel->defragment && *partial > 0, &route->then);
	g_hash_table_insert(routes, (gpointer)channel, route);
	return route;
}

static GPtrArray *
enqueue_plan(ImtaEnqueue *enq)
{
	GPtrArray *files = g_ptr_array_new_with_free_func(enqueue_file_free);
	g_autoptr(GHashTable) open = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GHashTable) routes = NULL;
	int partial = -1;       /* unknown until a defragment channel asks */

	for (guint i = 0; i < enq->rcpts->len; i++) {
		const EnqueueRecipient *rcpt = &g_array_index(enq->rcpts, EnqueueRecipient, i);
		const ImtaChannel *channel = rcpt->channel;
		const char *then = "";
		char *key = NULL;
		EnqueueFile *file = NULL;

		/* The common case, no CONVERSIONS and no defragment, asks nothing. */
		if (enq->queue->conversions != NULL || channel->defragment) {
			const EnqueueRoute *route;

			if (routes == NULL)
				routes = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
							       g_free);
			route = enqueue_route(enq, routes, channel, &partial);
			channel = route->channel;
			then = route->then != NULL ? route->then : "";
		}

		if (channel->copies == IMTA_COPIES_MULTIPLE)
			key = g_strconcat(channel->name, "\n", then, NULL);
		else if (channel->copies == IMTA_COPIES_SINGLE_SYS)
			key = g_strconcat(channel->name, "\n", then, "\n", rcpt->host, NULL);
		if (key != NULL)
			file = g_hash_table_lookup(open, key);
		if (file == NULL ||
		    (channel->addrsperfile > 0 && file->rcpts->len >= (guint)channel->addrsperfile)) {
			file = g_new0(EnqueueFile, 1);
			file->tmp_fd = -1;
			file->channel = channel;
			file->then = then[0] != '\0' ? then : NULL;
			file->host = rcpt->host;
			file->rcpts = g_array_new(FALSE, FALSE, sizeof(guint));
			g_ptr_array_add(files, file);
			if (key != NULL)
				g_hash_table_replace(open, g_steal_pointer(&key), file);
		}
		g_free(key);
		g_array_append_val(file->rcpts, i);
	}
	return files;
}

/* ---- the message log ------------------------------------------------- */

/* The start of the content, at most ENQUEUE_BUFFER bytes, from memory or
 * read from the spool into *buf_r (which the caller frees).  Its length;
 * 0 for an empty message or a spool that cannot be read. */
static gsize
enqueue_content_head(const ImtaEnqueue *enq, const char **head_r, char **buf_r)
{
	gsize want = (gsize)MIN(enq->size, (goffset)ENQUEUE_BUFFER);
	ssize_t n;

	*buf_r = NULL;
	if (enq->spool_fd < 0) {
		*head_r = enq->pending->str;
		return MIN(enq->pending->len, ENQUEUE_BUFFER);
	}
	*buf_r = g_malloc(want + 1);
	*head_r = *buf_r;
	do
		n = pread(enq->spool_fd, *buf_r, want, 0);
	while (n < 0 && errno == EINTR);
	return n > 0 ? (gsize)n : 0;
}

/* The Message-ID, from the start of the content. */
static char *
enqueue_message_id(const ImtaEnqueue *enq)
{
	g_autofree char *buf = NULL;
	const char *head;
	gsize len = enqueue_content_head(enq, &head, &buf);

	return len > 0 ? imta_mail_log_find_message_id(head, len) : NULL;
}

/* Is the message's own Content-Type message/partial?  Reads the header
 * from the start of the content. */
static gboolean
enqueue_is_partial(const ImtaEnqueue *enq)
{
	g_autofree char *buf = NULL;
	const char *head;
	gsize len = enqueue_content_head(enq, &head, &buf);

	return len > 0 && imta_mime_is_partial(head, len);
}

/* E entries, once the files are durable: one per recipient and file. */
static void
enqueue_mail_log(const ImtaEnqueue *enq, const EnqueueFile *file, const char *message_id)
{
	g_autofree char *path = g_build_filename(enq->queue->root, file->final_name, NULL);

	for (guint i = 0; i < file->rcpts->len; i++) {
		const EnqueueRecipient *r = &g_array_index(enq->rcpts, EnqueueRecipient,
							   g_array_index(file->rcpts, guint, i));
		ImtaMailLogEntry entry = {
			.code = IMTA_MAIL_LOG_ENQUEUED,
			.flags = enq->log_flags,
			.source = enq->source,
			.destination = file->channel->name,
			.queue_id = file->id,
			.size = enq->size,
			.from = enq->return_path,
			.orcpt = r->orcpt,
			.to = r->address,
			.message_id = message_id,
			.filename = path,
		};

		imta_mail_log_entry(&entry);
	}
}

/* ---- writing the files ------------------------------------------------- */

static gboolean
enqueue_envelope(ImtaEnqueue *enq, EnqueueFile *file, GString *out, GError **error)
{
	g_autofree QueueFileRecipient *rcpts = g_new0(QueueFileRecipient, file->rcpts->len);
	QueueFileEnvelope env = {
		.id = file->id,
		.created = enq->created,
		.source = enq->source,
		.channel = file->channel->name,
		.host = file->host,
		.then = file->then,
		.priority = enq->priority,
		.from = enq->return_path,
		.envid = enq->envid,
		.ret = enq->ret,
		.rcpts = rcpts,
		.n_rcpts = file->rcpts->len,
		.size = enq->size,
	};

	for (guint i = 0; i < file->rcpts->len; i++) {
		const EnqueueRecipient *r = &g_array_index(enq->rcpts, EnqueueRecipient,
							   g_array_index(file->rcpts, guint, i));

		rcpts[i].address = r->address;
		rcpts[i].orcpt = r->orcpt;
		rcpts[i].notify = r->notify;
	}
	queue_file_format_envelope(out, &env);
	if (out->len > QUEUE_MAX_ENVELOPE) {
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_LIMIT,
			    "the envelope of a queue file would be longer than %d bytes; "
			    "lower addrsperfile on channel %s", QUEUE_MAX_ENVELOPE,
			    file->channel->name);
		return FALSE;
	}
	return TRUE;
}

/* Each unnamed temporary file stays open until the commit; beyond this
 * many files per message, named ones keep the descriptor count bounded. */
#define ENQUEUE_MAX_UNNAMED 64

static int
enqueue_create_tmp(ImtaQueue *queue, char **name_r)
{
	int fd = -1;

	for (guint tries = 0; tries < ENQUEUE_TMP_TRIES; tries++) {
		g_free(*name_r);
		*name_r = queue_tmp_name_new();
		fd = openat(queue->root_fd, *name_r,
			    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	return fd;
}

/* The envelope, then the content: from memory in the same write (`data`
 * says what was written), or copied from the spool.  0, or -1 with errno. */
static int
enqueue_write_content(ImtaEnqueue *enq, int fd, const GString *envelope, struct iovec data[2])
{
	if (enq->spool_fd >= 0)
		return queue_write_all(fd, envelope->str, envelope->len) < 0
			       ? -1
			       : enqueue_copy_content(enq->spool_fd, fd, enq->size);
	data[0] = (struct iovec){ .iov_base = envelope->str, .iov_len = envelope->len };
	data[1] = (struct iovec){ .iov_base = enq->pending->str, .iov_len = enq->pending->len };
	return queue_writev_all(fd, data, 2);
}

static gboolean
enqueue_write_file(ImtaEnqueue *enq, EnqueueFile *file, gboolean unnamed, GError **error)
{
	ImtaQueue *queue = enq->queue;
	g_autoptr(GString) envelope = g_string_sized_new(512);
	g_autofree char *dir = NULL;
	char prefix[3];
	int fd;

	if (enq->first_id[0] != '\0') {
		memcpy(file->id, enq->first_id, sizeof file->id);
		enq->first_id[0] = '\0';
	} else {
		queue_id_new(file->id);
	}
	dir = queue_dir_for(file->channel, file->id);
	imta_queue_attempt_prefix(0, prefix);
	file->final_name = g_strdup_printf("%s/%s%s.%s", dir, prefix, file->id,
					   imta_channel_holds_mail(file->channel) ? "HELD" : "00");
	if (!enqueue_envelope(enq, file, envelope, error) || !queue_ensure_dir(queue, dir, error))
		return FALSE;
	fd = unnamed ? queue_unnamed_take(queue, dir) : -1;
	if (fd >= 0) {
		file->tmp_fd = fd;
	} else {
		fd = enqueue_create_tmp(queue, &file->tmp_name);
		if (fd < 0) {
			queue_set_io_error(error, queue, "create", file->tmp_name, errno);
			g_clear_pointer(&file->tmp_name, g_free);
			return FALSE;
		}
	}
	if (enqueue_write_content(enq, fd, envelope, file->data) < 0) {
		queue_set_io_error(error, queue, "write",
				   file->tmp_name != NULL ? file->tmp_name : file->final_name, errno);
		if (file->tmp_fd < 0)
			close(fd);
		return FALSE;
	}
	/* The unnamed file stays open: it is linked into place by the commit. */
	if (file->tmp_fd < 0 && close(fd) < 0) {
		queue_set_io_error(error, queue, "write", file->tmp_name, errno);
		return FALSE;
	}
	/* The journal takes the bytes from `data` rather than from the file. */
	if (enq->spool_fd < 0)
		file->envelope = g_steal_pointer(&envelope);
	return TRUE;
}

static void
enqueue_close_unnamed(GPtrArray *files)
{
	for (guint i = 0; i < files->len; i++) {
		EnqueueFile *file = files->pdata[i];

		if (file->tmp_fd >= 0)
			close(file->tmp_fd);
		file->tmp_fd = -1;
	}
}

static void
enqueue_discard_tmp(ImtaEnqueue *enq, GPtrArray *files)
{
	for (guint i = 0; i < files->len; i++) {
		EnqueueFile *file = files->pdata[i];

		if (file->tmp_name != NULL && unlinkat(enq->queue->root_fd, file->tmp_name, 0) < 0 &&
		    errno != ENOENT)
			g_warning("cannot remove %s/%s: %s", enq->queue->root, file->tmp_name,
				  g_strerror(errno));
	}
}

static gboolean
enqueue_check_ready(ImtaEnqueue *enq, GError **error)
{
	if (enq->broken) {
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_IO,
			    "an earlier write of this message's content failed");
		return FALSE;
	}
	if (enq->rcpts->len == 0) {
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_LIMIT,
			    "a message needs at least one recipient");
		return FALSE;
	}
	if (enq->queue->pid != getpid()) {
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_IO,
			    "the queue was opened by process %ld: open it again after fork()",
			    (long)enq->queue->pid);
		return FALSE;
	}
	return enqueue_check_field("return path", enq->return_path, error) &&
	       enqueue_check_field("ENVID", enq->envid, error) &&
	       enqueue_check_field("source channel", enq->source, error);
}

gboolean
imta_enqueue_commit(ImtaEnqueue *enq, GError **error)
{
	g_autoptr(GPtrArray) files = NULL;
	g_autofree QueueTmpFile *tmps = NULL;
	g_autofree const char **final_names = NULL;
	gboolean unnamed, ok;

	g_return_val_if_fail(enq != NULL && !enq->committed, FALSE);
	if (!enqueue_check_ready(enq, error))
		return FALSE;
	if (enq->spool_fd >= 0 && !enqueue_flush(enq, error))
		return FALSE;
	files = enqueue_plan(enq);
	unnamed = files->len <= ENQUEUE_MAX_UNNAMED;
	tmps = g_new0(QueueTmpFile, files->len + 1);
	final_names = g_new0(const char *, files->len + 1);
	for (guint i = 0; i < files->len; i++) {
		EnqueueFile *file = files->pdata[i];

		if (!enqueue_write_file(enq, file, unnamed, error)) {
			enqueue_close_unnamed(files);
			enqueue_discard_tmp(enq, files);
			return FALSE;
		}
		tmps[i].fd = file->tmp_fd;
		tmps[i].name = file->tmp_name;
		tmps[i].data = file->envelope != NULL ? file->data : NULL;
		tmps[i].n_data = G_N_ELEMENTS(file->data);
		final_names[i] = file->final_name;
	}
	/* The committer removes every file of a failed commit itself.  A
	 * directory removed behind our back is made again next time. */
	ok = queue_committer_commit(queue_get_committer(enq->queue), tmps, final_names,
				    files->len, error);
	if (!ok) {
		enqueue_close_unnamed(files);
		for (guint i = 0; i < files->len; i++) {
			g_autofree char *dir = g_path_get_dirname(final_names[i]);

			queue_forget_dir(enq->queue, dir);
		}
		return FALSE;
	}
	enq->committed = TRUE;
	g_ptr_array_set_size(enq->files, 0);
	for (guint i = 0; i < files->len; i++) {
		EnqueueFile *file = files->pdata[i];

		g_ptr_array_add(enq->files, g_strdup(file->final_name));
	}
	g_ptr_array_add(enq->files, NULL);
	enq->unreported = g_steal_pointer(&files);
	if (!enq->hold_reports)
		imta_enqueue_report(enq);
	return TRUE;
}

void
imta_enqueue_hold_reports(ImtaEnqueue *enq)
{
	enq->hold_reports = TRUE;
}

/* A server that holds its reports commits again soon: a spare unnamed
 * file for the channel of its first file spares its next commit the
 * wait for a new inode.  Not for a channel with subdirectories, whose
 * next file is unlikely to go into the same one. */
static void
enqueue_restock(ImtaEnqueue *enq, const EnqueueFile *file)
{
	g_autofree char *dir = NULL;

	if (file->channel->subdirs > 0 || file->tmp_fd < 0)
		return;
	dir = queue_dir_for(file->channel, file->id);
	queue_unnamed_restock(enq->queue, dir);
}

/* Freeing the files at the end closes the descriptors of the unnamed
 * ones, which the commit linked into place. */
void
imta_enqueue_report(ImtaEnqueue *enq)
{
	g_autoptr(GPtrArray) files = g_steal_pointer(&enq->unreported);
	g_autofree char *message_id = NULL;

	if (files == NULL)
		return;
	if (imta_mail_log_enabled(enq->source) && imta_mail_log_wants_message_id())
		message_id = enqueue_message_id(enq);
	for (guint i = 0; i < files->len; i++)
		enqueue_mail_log(enq, files->pdata[i], message_id);
	for (guint i = 0; enq->files->pdata[i] != NULL; i++)
		queue_notify(enq->queue, 'E', enq->files->pdata[i]);
	if (enq->hold_reports)
		enqueue_restock(enq, files->pdata[0]);
}

const char *const *
imta_enqueue_files(const ImtaEnqueue *enq)
{
	return (const char *const *)enq->files->pdata;
}

void
imta_enqueue_free(ImtaEnqueue *enq)
{
	if (enq == NULL)
		return;
	imta_enqueue_report(enq);
	if (enq->spool_fd >= 0)
		close(enq->spool_fd);
	enqueue_release(enq);
	g_free(enq->source);
	g_free(enq->return_path);
	g_free(enq->envid);
	g_array_unref(enq->rcpts);
	g_string_free(enq->pending, TRUE);
	g_ptr_array_unref(enq->files);
	g_free(enq);
}
