/*
 * queue_file.c - the queue file format: writing the envelope and the
 * outcome records, and reading a whole file back as an ImtaQueueEntry.
 *
 * Reading is strict about the envelope (a queue file is only ever written
 * by enqueue.c, so anything unexpected means damage) and checks that the
 * content is complete.  The trailer is read leniently: a line without its
 * newline is an append torn by a crash and is ignored, and so is any other
 * line that does not parse, because the next append after a torn one
 * starts on a fresh line and leaves the torn fragment behind as a line of
 * its own.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <glib.h>

#include <imta/queue.h>
#include <imta/stat_untimed.h>
#include <imta/xtext.h>

#include "queue_file.h"

/* ---- writing ------------------------------------------------------------ */

static const char *const priority_names[IMTA_PRIORITY_COUNT] = {
	[IMTA_PRIORITY_URGENT] = "urgent",
	[IMTA_PRIORITY_NORMAL] = "normal",
	[IMTA_PRIORITY_NONURGENT] = "nonurgent",
};

static const struct {
	guint bit;
	const char *name;
} notify_names[] = {
	{ IMTA_NOTIFY_NEVER, "NEVER" },
	{ IMTA_NOTIFY_SUCCESS, "SUCCESS" },
	{ IMTA_NOTIFY_FAILURE, "FAILURE" },
	{ IMTA_NOTIFY_DELAY, "DELAY" },
};

const char *
queue_priority_name(ImtaPriority priority)
{
	return priority < IMTA_PRIORITY_COUNT ? priority_names[priority] : "normal";
}

static void
format_notify(GString *out, guint notify)
{
	gboolean first = TRUE;

	for (guint i = 0; i < G_N_ELEMENTS(notify_names); i++) {
		if (!(notify & notify_names[i].bit))
			continue;
		if (!first)
			g_string_append_c(out, ',');
		g_string_append(out, notify_names[i].name);
		first = FALSE;
	}
	if (first)
		g_string_append_c(out, '-');
}

/* An optional field where "-" means absent: a value that is literally
 * "-" is written as its xtext escape so the two never meet. */
static void
format_optional(GString *out, const char *value)
{
	if (value == NULL)
		g_string_append_c(out, '-');
	else if (strcmp(value, "-") == 0)
		g_string_append(out, "+2D");
	else
		imta_xtext_append(out, value, -1);
}

static void
format_field(GString *out, const char *key, const char *value)
{
	g_string_append(out, key);
	g_string_append_c(out, ' ');
	imta_xtext_append(out, value != NULL ? value : "", -1);
	g_string_append_c(out, '\n');
}

void
queue_file_format_envelope(GString *out, const QueueFileEnvelope *env)
{
	g_string_append(out, QUEUE_FILE_MAGIC "\n");
	g_string_append_printf(out, "id %s\n", env->id);
	g_string_append_printf(out, "created %" G_GINT64_FORMAT "\n", env->created);
	format_field(out, "source", env->source);
	format_field(out, "channel", env->channel);
	format_field(out, "host", env->host);
	if (env->then != NULL)
		format_field(out, "then", env->then);
	g_string_append_printf(out, "priority %s\n", queue_priority_name(env->priority));
	format_field(out, "from", env->from);
	if (env->envid != NULL)
		format_field(out, "envid", env->envid);
	if (env->ret == IMTA_RET_FULL)
		g_string_append(out, "ret full\n");
	else if (env->ret == IMTA_RET_HDRS)
		g_string_append(out, "ret hdrs\n");
	for (guint i = 0; i < env->n_rcpts; i++) {
		const QueueFileRecipient *rcpt = &env->rcpts[i];

		g_string_append(out, "rcpt ");
		format_notify(out, rcpt->notify);
		g_string_append_c(out, ' ');
		format_optional(out, rcpt->orcpt);
		g_string_append_c(out, ' ');
		imta_xtext_append(out, rcpt->address, -1);
		g_string_append_c(out, '\n');
	}
	g_string_append_printf(out, "size %" G_GINT64_FORMAT "\n\n", (gint64)env->size);
}

static char
outcome_letter(ImtaOutcome outcome)
{
	switch (outcome) {
	case IMTA_OUTCOME_DELIVERED:
		return 'D';
	case IMTA_OUTCOME_FAILED:
		return 'F';
	default:
		return 'Q';
	}
}

void
queue_file_format_outcome(GString *out, gint64 now, guint index, ImtaOutcome outcome,
			  const char *diagnostic)
{
	g_string_append_printf(out, "R %" G_GINT64_FORMAT " %u %c ", now, index,
			       outcome_letter(outcome));
	imta_xtext_append(out, diagnostic != NULL ? diagnostic : "", -1);
	g_string_append_c(out, '\n');
}

void
queue_file_format_attempt(GString *out, gint64 now, guint attempt, gint64 next,
			  const char *reason)
{
	g_string_append_printf(out, "A %" G_GINT64_FORMAT " %u %" G_GINT64_FORMAT " ", now,
			       attempt, next);
	imta_xtext_append(out, reason != NULL ? reason : "", -1);
	g_string_append_c(out, '\n');
}

void
queue_file_format_warning(GString *out, gint64 now, const QueueWarning *warning)
{
	g_string_append_printf(out, "W %" G_GINT64_FORMAT " %" G_GINT64_FORMAT " ", now,
			       warning->age);
	if (warning->notice_id != NULL)
		imta_xtext_append(out, warning->notice_id, -1);
	else
		g_string_append_c(out, '-');
	g_string_append_c(out, ' ');
	imta_xtext_append(out, warning->note != NULL ? warning->note : "", -1);
	g_string_append_c(out, '\n');
}

/* ---- reading ------------------------------------------------------------ */

typedef struct {
	ImtaQueue *queue;
	const char *rel;
	int fd;
	guint line;             /* envelope line being parsed, from 1 */
	GByteArray *buf;        /* the envelope */
	goffset file_size;
} Reader;

static void G_GNUC_PRINTF(3, 4)
read_error(Reader *r, GError **error, const char *fmt, ...)
{
	g_autofree char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	if (r->line > 0)
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_FORMAT, "%s/%s: line %u: %s",
			    r->queue->root, r->rel, r->line, msg);
	else
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_FORMAT, "%s/%s: %s",
			    r->queue->root, r->rel, msg);
}

static gssize
read_at(int fd, void *buf, gsize length, goffset offset)
{
	for (;;) {
		ssize_t n = pread(fd, buf, length, (off_t)offset);

		if (n >= 0 || errno != EINTR)
			return n;
	}
}

/* Read up to the blank line that ends the envelope; returns its length
 * including the blank line, or -1. */
static gssize
read_envelope(Reader *r, GError **error)
{
	const gsize chunk = 64 * 1024;
	gsize searched = 0;

	for (;;) {
		gsize old = r->buf->len;
		gssize n;

		for (gsize i = searched > 0 ? searched - 1 : 0; i + 1 < r->buf->len; i++)
			if (r->buf->data[i] == '\n' && r->buf->data[i + 1] == '\n')
				return (gssize)(i + 2);
		searched = r->buf->len;
		if (r->buf->len >= QUEUE_MAX_ENVELOPE) {
			read_error(r, error, "the envelope is longer than %d bytes",
				   QUEUE_MAX_ENVELOPE);
			return -1;
		}
		g_byte_array_set_size(r->buf, (guint)(old + chunk));
		n = read_at(r->fd, r->buf->data + old, chunk, (goffset)old);
		if (n < 0) {
			queue_set_io_error(error, r->queue, "read", r->rel, errno);
			return -1;
		}
		g_byte_array_set_size(r->buf, (guint)(old + (gsize)n));
		if (n == 0) {
			read_error(r, error, "truncated: the envelope has no end (no blank line)");
			return -1;
		}
	}
}

static gboolean
parse_int(const char *text, gint64 min, gint64 max, gint64 *value_r)
{
	guint64 value;

	if (!g_ascii_isdigit(text[0]))
		return FALSE;
	if (!g_ascii_string_to_unsigned(text, 10, 0, (guint64)max, &value, NULL))
		return FALSE;
	if ((gint64)value < min)
		return FALSE;
	*value_r = (gint64)value;
	return TRUE;
}

static char *
parse_xtext(Reader *r, const char *key, const char *text, GError **error)
{
	g_autoptr(GError) local = NULL;
	char *value = imta_xtext_decode(text, -1, NULL, &local);

	if (value == NULL)
		read_error(r, error, "%s: %s", key, local->message);
	return value;
}

static gboolean
parse_notify(const char *text, guint *notify_r)
{
	g_auto(GStrv) words = NULL;
	guint notify = 0;

	if (strcmp(text, "-") == 0) {
		*notify_r = 0;
		return TRUE;
	}
	words = g_strsplit(text, ",", -1);
	for (guint i = 0; words[i] != NULL; i++) {
		guint j;

		for (j = 0; j < G_N_ELEMENTS(notify_names); j++)
			if (strcmp(words[i], notify_names[j].name) == 0)
				break;
		if (j == G_N_ELEMENTS(notify_names) || (notify & notify_names[j].bit))
			return FALSE;
		notify |= notify_names[j].bit;
	}
	*notify_r = notify;
	return notify != 0;
}

/* What the envelope said, before it becomes an ImtaMessage. */
typedef struct {
	char *id, *source, *channel, *host, *from, *envid;
	char *then;             /* optional: the channel to go on to */
	gint64 created, size;
	int priority;           /* -1: not given */
	ImtaRet ret;
	gboolean have_created, have_size, have_ret;
	GPtrArray *rcpts;       /* char *[3]: address, orcpt or NULL, notify as text */
	GArray *notify;         /* guint */
} Envelope;

static void
envelope_clear(Envelope *env)
{
	g_free(env->id);
	g_free(env->source);
	g_free(env->channel);
	g_free(env->host);
	g_free(env->then);
	g_free(env->from);
	g_free(env->envid);
	if (env->rcpts != NULL)
		g_ptr_array_unref(env->rcpts);
	if (env->notify != NULL)
		g_array_unref(env->notify);
}

static void
rcpt_free(gpointer p)
{
	char **pair = p;

	g_free(pair[0]);
	g_free(pair[1]);
	g_free(pair);
}

static gboolean
parse_rcpt(Reader *r, Envelope *env, const char *value, GError **error)
{
	g_auto(GStrv) fields = g_strsplit(value, " ", 4);
	char **pair;
	guint notify;

	if (g_strv_length(fields) != 3) {
		read_error(r, error, "rcpt: expected \"notify orcpt address\"");
		return FALSE;
	}
	if (!parse_notify(fields[0], &notify)) {
		read_error(r, error, "rcpt: bad notify \"%s\"", fields[0]);
		return FALSE;
	}
	pair = g_new0(char *, 2);
	g_ptr_array_add(env->rcpts, pair);
	if (strcmp(fields[1], "-") != 0 &&
	    (pair[1] = parse_xtext(r, "rcpt orcpt", fields[1], error)) == NULL)
		return FALSE;
	if ((pair[0] = parse_xtext(r, "rcpt address", fields[2], error)) == NULL)
		return FALSE;
	if (pair[0][0] == '\0') {
		read_error(r, error, "rcpt: empty address");
		return FALSE;
	}
	g_array_append_val(env->notify, notify);
	return TRUE;
}

static gboolean
set_once(Reader *r, char **slot, const char *key, const char *value, GError **error)
{
	if (*slot != NULL) {
		read_error(r, error, "\"%s\" given twice", key);
		return FALSE;
	}
	*slot = parse_xtext(r, key, value, error);
	return *slot != NULL;
}

static gboolean
parse_number_once(Reader *r, gboolean *have, gint64 *slot, const char *key, const char *value,
		  GError **error)
{
	if (*have) {
		read_error(r, error, "\"%s\" given twice", key);
		return FALSE;
	}
	if (!parse_int(value, 0, G_MAXINT64, slot)) {
		read_error(r, error, "%s: expected a number, got \"%s\"", key, value);
		return FALSE;
	}
	*have = TRUE;
	return TRUE;
}

static gboolean
parse_envelope_line(Reader *r, Envelope *env, const char *line, GError **error)
{
	const char *space = strchr(line, ' ');
	g_autofree char *key = g_strndup(line, space != NULL ? (gsize)(space - line) : strlen(line));
	const char *value = space != NULL ? space + 1 : "";

	if (strcmp(key, "id") == 0)
		return set_once(r, &env->id, key, value, error);
	if (strcmp(key, "created") == 0)
		return parse_number_once(r, &env->have_created, &env->created, key, value, error);
	if (strcmp(key, "size") == 0)
		return parse_number_once(r, &env->have_size, &env->size, key, value, error);
	if (strcmp(key, "source") == 0)
		return set_once(r, &env->source, key, value, error);
	if (strcmp(key, "channel") == 0)
		return set_once(r, &env->channel, key, value, error);
	if (strcmp(key, "host") == 0)
		return set_once(r, &env->host, key, value, error);
	if (strcmp(key, "then") == 0)
		return set_once(r, &env->then, key, value, error);
	if (strcmp(key, "from") == 0)
		return set_once(r, &env->from, key, value, error);
	if (strcmp(key, "envid") == 0)
		return set_once(r, &env->envid, key, value, error);
	if (strcmp(key, "rcpt") == 0)
		return parse_rcpt(r, env, value, error);
	if (strcmp(key, "priority") == 0) {
		for (int p = 0; p < IMTA_PRIORITY_COUNT && env->priority < 0; p++)
			if (strcmp(value, priority_names[p]) == 0)
				env->priority = p;
		if (env->priority < 0) {
			read_error(r, error, "priority: expected urgent, normal or nonurgent, "
					     "got \"%s\"", value);
			return FALSE;
		}
		return TRUE;
	}
	if (strcmp(key, "ret") == 0) {
		if (env->have_ret || (strcmp(value, "full") != 0 && strcmp(value, "hdrs") != 0)) {
			read_error(r, error, "ret: expected one \"full\" or \"hdrs\"");
			return FALSE;
		}
		env->ret = strcmp(value, "full") == 0 ? IMTA_RET_FULL : IMTA_RET_HDRS;
		env->have_ret = TRUE;
		return TRUE;
	}
	read_error(r, error, "unknown field \"%s\"", key);
	return FALSE;
}

static gboolean
parse_envelope(Reader *r, Envelope *env, gsize length, GError **error)
{
	const char *data = (const char *)r->buf->data;
	gsize pos = 0;

	r->line = 1;
	/* `length` ends with the blank line: every line has its newline. */
	while (pos + 1 < length) {
		const char *nl = memchr(data + pos, '\n', length - pos);
		gsize len = (gsize)(nl - (data + pos));
		g_autofree char *line = NULL;

		if (len > QUEUE_MAX_LINE) {
			read_error(r, error, "line longer than %d bytes", QUEUE_MAX_LINE);
			return FALSE;
		}
		if (memchr(data + pos, '\0', len) != NULL) {
			read_error(r, error, "NUL byte in the envelope");
			return FALSE;
		}
		line = g_strndup(data + pos, len);
		if (r->line == 1) {
			if (strcmp(line, QUEUE_FILE_MAGIC) != 0) {
				read_error(r, error, "not a queue file (expected \"%s\")",
					   QUEUE_FILE_MAGIC);
				return FALSE;
			}
		} else if (!parse_envelope_line(r, env, line, error)) {
			return FALSE;
		}
		pos += len + 1;
		r->line++;
	}
	return TRUE;
}

static gboolean
check_envelope(Reader *r, Envelope *env, const char *name_id, GError **error)
{
	const char *missing = NULL;
	g_autofree char *dir_channel = g_strndup(r->rel, strcspn(r->rel, "/"));

	if (env->id == NULL)
		missing = "id";
	else if (!env->have_created)
		missing = "created";
	else if (env->source == NULL)
		missing = "source";
	else if (env->channel == NULL)
		missing = "channel";
	else if (env->host == NULL)
		missing = "host";
	else if (env->priority < 0)
		missing = "priority";
	else if (env->from == NULL)
		missing = "from";
	else if (env->rcpts->len == 0)
		missing = "rcpt";
	else if (!env->have_size)
		missing = "size";
	if (missing != NULL) {
		read_error(r, error, "the envelope has no \"%s\"", missing);
		return FALSE;
	}
	if (strcmp(env->id, name_id) != 0) {
		read_error(r, error, "the envelope's id %s is not the name's %s", env->id, name_id);
		return FALSE;
	}
	if (strcmp(env->channel, dir_channel) != 0) {
		read_error(r, error, "the envelope's channel %s is not the directory's %s",
			   env->channel, dir_channel);
		return FALSE;
	}
	return TRUE;
}

static ImtaOutcome
outcome_from_letter(const char *letter)
{
	if (strcmp(letter, "D") == 0)
		return IMTA_OUTCOME_DELIVERED;
	if (strcmp(letter, "F") == 0)
		return IMTA_OUTCOME_FAILED;
	if (strcmp(letter, "Q") == 0)
		return IMTA_OUTCOME_RETRY;
	return IMTA_OUTCOME_NONE;
}

/* One complete trailer line; anything that does not parse is the rest of
 * a torn append and ignored. */
static void
parse_record(QueueEntryPrivate *priv, const char *line, gint64 *last_next, gboolean *have_a)
{
	g_auto(GStrv) f = g_strsplit(line, " ", 6);
	gint64 time_, index, attempt, next;

	if (g_strv_length(f) != 5 || !parse_int(f[1], 0, G_MAXINT64, &time_))
		return;
	if (strcmp(f[0], "R") == 0) {
		ImtaOutcome outcome = outcome_from_letter(f[3]);
		QueueRecorded *rec;
		char *diag;

		if (outcome == IMTA_OUTCOME_NONE || !parse_int(f[2], 0, G_MAXUINT32, &index) ||
		    (guint64)index >= priv->recorded->len)
			return;
		diag = imta_xtext_decode(f[4], -1, NULL, NULL);
		if (diag == NULL)
			return;
		rec = &g_array_index(priv->recorded, QueueRecorded, index);
		rec->outcome = outcome;
		g_free(rec->diagnostic);
		rec->diagnostic = diag;
		if (diag[0] == '\0')
			g_clear_pointer(&rec->diagnostic, g_free);
	} else if (strcmp(f[0], "A") == 0) {
		char *reason;

		if (!parse_int(f[2], 0, G_MAXUINT32, &attempt) ||
		    !parse_int(f[3], 0, G_MAXINT64, &next))
			return;
		reason = imta_xtext_decode(f[4], -1, NULL, NULL);
		if (reason == NULL)
			return;
		g_free(priv->pub.last_error);
		priv->pub.last_error = reason;
		if (reason[0] == '\0')
			g_clear_pointer(&priv->pub.last_error, g_free);
		*last_next = next;
		*have_a = TRUE;
	} else if (strcmp(f[0], "W") == 0) {
		gint64 age;

		if (!parse_int(f[2], 0, G_MAXINT64, &age) || !imta_xtext_valid(f[3], -1) ||
		    !imta_xtext_valid(f[4], -1))
			return;
		/* A handful of ages are ever configured; a file with more is
		 * damaged, and the extra records are ignored. */
		if (priv->warned->len >= QUEUE_MAX_WARNINGS)
			return;
		for (guint i = 0; i < priv->warned->len; i++)
			if (g_array_index(priv->warned, gint64, i) == age)
				return;
		g_array_append_val(priv->warned, age);
	}
}

static gboolean
read_trailer(Reader *r, QueueEntryPrivate *priv, goffset start, GError **error)
{
	goffset length = r->file_size - start;
	g_autofree char *data = NULL;
	gint64 last_next = 0;
	gboolean have_a = FALSE;
	gsize pos = 0;
	gssize n;

	if (length <= 0)
		return TRUE;
	if (length > QUEUE_MAX_TRAILER) {
		read_error(r, error, "more than %d bytes of outcome records", QUEUE_MAX_TRAILER);
		return FALSE;
	}
	data = g_malloc((gsize)length + 1);
	n = read_at(r->fd, data, (gsize)length, start);
	if (n < 0) {
		queue_set_io_error(error, r->queue, "read", r->rel, errno);
		return FALSE;
	}
	data[n] = '\0';
	for (;;) {
		char *nl = memchr(data + pos, '\n', (gsize)n - pos);

		if (nl == NULL)
			break; /* a torn last line, or nothing */
		*nl = '\0';
		if (strlen(data + pos) == (gsize)(nl - (data + pos)))
			parse_record(priv, data + pos, &last_next, &have_a);
		pos = (gsize)(nl - data) + 1;
	}
	if (have_a)
		priv->pub.next_attempt = last_next;
	return TRUE;
}

static void
entry_private_free(QueueEntryPrivate *priv)
{
	imta_queue_entry_free(&priv->pub);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QueueEntryPrivate, entry_private_free)

static QueueEntryPrivate *
entry_from_envelope(Reader *r, Envelope *env, goffset content_offset)
{
	QueueEntryPrivate *priv = g_new0(QueueEntryPrivate, 1);
	ImtaQueueEntry *entry = &priv->pub;
	g_autofree char *abs = g_build_filename(r->queue->root, r->rel, NULL);

	entry->path = g_strdup(r->rel);
	entry->id = g_strdup(env->id);
	entry->channel = g_strdup(env->channel);
	entry->source = g_strdup(env->source);
	entry->host = g_strdup(env->host);
	entry->priority = (ImtaPriority)env->priority;
	entry->created = env->created;
	entry->content_offset = content_offset;
	entry->content_size = env->size;
	entry->message = imta_message_new(env->id, env->from);
	if (env->envid != NULL)
		imta_message_set_envid(entry->message, env->envid);
	imta_message_set_ret(entry->message, env->ret);
	imta_message_set_source_channel(entry->message, env->source);
	imta_message_set_onward_channel(entry->message, env->then);
	imta_message_set_priority(entry->message, entry->priority);
	priv->warned = g_array_new(FALSE, FALSE, sizeof(gint64));
	priv->recorded = g_array_sized_new(FALSE, TRUE, sizeof(QueueRecorded), env->rcpts->len);
	g_array_set_size(priv->recorded, env->rcpts->len);
	for (guint i = 0; i < env->rcpts->len; i++) {
		char **pair = env->rcpts->pdata[i];

		imta_message_add_recipient(entry->message, pair[0], pair[1],
					   g_array_index(env->notify, guint, i));
	}
	imta_message_set_content_file(entry->message, abs, content_offset, env->size);
	return priv;
}

/* Give the message's recipients the outcomes the trailer recorded. */
static void
entry_apply_recorded(QueueEntryPrivate *priv)
{
	for (guint i = 0; i < priv->recorded->len; i++) {
		QueueRecorded *rec = &g_array_index(priv->recorded, QueueRecorded, i);
		/* The recipients belong to the message, which is ours. */
		ImtaRecipient *rcpt = (ImtaRecipient *)imta_message_recipient(priv->pub.message, i);

		rcpt->outcome = rec->outcome;
		g_free(rcpt->diagnostic);
		rcpt->diagnostic = g_strdup(rec->diagnostic);
	}
}

/* Give the message the content that follows the envelope in r->buf,
 * reading what the envelope's read did not reach. */
static gboolean
entry_take_content(Reader *r, QueueEntryPrivate *priv, gsize env_len, GError **error)
{
	gsize have = r->buf->len, end = env_len + (gsize)priv->pub.content_size;
	g_autoptr(GBytes) whole = NULL;
	g_autoptr(GBytes) content = NULL;

	if (have < end) {
		gssize n;

		g_byte_array_set_size(r->buf, (guint)end);
		n = read_at(r->fd, r->buf->data + have, end - have, (goffset)have);
		if (n < 0) {
			queue_set_io_error(error, r->queue, "read", r->rel, errno);
			return FALSE;
		}
		if ((gsize)n != end - have) {
			read_error(r, error, "truncated: the content ends early");
			return FALSE;
		}
	}
	g_byte_array_set_size(r->buf, (guint)end);
	whole = g_byte_array_free_to_bytes(g_byte_array_ref(r->buf));
	content = g_bytes_new_from_bytes(whole, env_len, (gsize)priv->pub.content_size);
	imta_message_set_content_bytes(priv->pub.message, content);
	return TRUE;
}

QueueEntryPrivate *
queue_file_read(ImtaQueue *queue, int fd, const char *rel, gsize content_max, GError **error)
{
	g_autoptr(GByteArray) buf = g_byte_array_new();
	g_autoptr(QueueEntryPrivate) priv = NULL;
	Reader r = { queue, rel, fd, 0, buf, 0 };
	Envelope env = { .priority = -1 };
	char name_id[IMTA_QUEUE_ID_LENGTH + 1];
	guint attempts;
	gboolean held;
	const char *name = strrchr(rel, '/') != NULL ? strrchr(rel, '/') + 1 : rel;
	struct stat st;
	gssize env_len;
	goffset content_end;

	if (imta_fstat_untimed(fd, &st) < 0) {
		queue_set_io_error(error, queue, "examine", rel, errno);
		return NULL;
	}
	r.file_size = st.st_size;
	if (!imta_queue_parse_name(name, &attempts, name_id, &held)) {
		read_error(&r, error, "not a queue file name");
		return NULL;
	}
	env_len = read_envelope(&r, error);
	if (env_len < 0)
		return NULL;
	env.rcpts = g_ptr_array_new_with_free_func(rcpt_free);
	env.notify = g_array_new(FALSE, FALSE, sizeof(guint));
	if (!parse_envelope(&r, &env, (gsize)env_len, error)) {
		envelope_clear(&env);
		return NULL;
	}
	r.line = 0;
	if (!check_envelope(&r, &env, name_id, error)) {
		envelope_clear(&env);
		return NULL;
	}
	if (env.size > r.file_size - env_len) {
		read_error(&r, error,
			   "truncated: the envelope says size %" G_GINT64_FORMAT " but only %"
			   G_GINT64_FORMAT " bytes of content follow",
			   env.size, (gint64)(r.file_size - env_len));
		envelope_clear(&env);
		return NULL;
	}
	content_end = env_len + env.size;
	priv = entry_from_envelope(&r, &env, env_len);
	priv->pub.attempts = attempts;
	priv->pub.held = held;
	envelope_clear(&env);
	if (!read_trailer(&r, priv, content_end, error))
		return NULL;
	/* A release makes a message due at once by moving its mtime back:
	 * the earlier of the two wins.  The times are asked for only when
	 * there is a retry time to weigh them against (stat_untimed.h). */
	if (priv->pub.next_attempt > 0) {
		if (fstat(fd, &st) < 0) {
			queue_set_io_error(error, queue, "examine", rel, errno);
			return NULL;
		}
		if (priv->pub.next_attempt > (gint64)st.st_mtime)
			priv->pub.next_attempt = (gint64)st.st_mtime;
	}
	entry_apply_recorded(priv);
	if (content_max > 0 && (guint64)priv->pub.content_size <= content_max &&
	    !entry_take_content(&r, priv, (gsize)env_len, error))
		return NULL;
	return g_steal_pointer(&priv);
}
