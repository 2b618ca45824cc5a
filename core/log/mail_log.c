/*
 * mail_log.c - the message log (mail.log): one line per event in a
 * message's life, appended to <IMTA_LOG>/mail.log_current or sent to
 * syslog.  The line layout is documented in imta-mail.log(5); this file
 * and that page must agree.
 *
 * Many processes (every SMTP worker, every master job, imsimta) append to
 * the same file.  Each line is built whole in memory and written with a
 * single write(2) on a descriptor opened with O_APPEND, so lines from
 * different processes never interleave.  Before each write the file name
 * is checked against the open descriptor (device and inode): when the
 * return job or logrotate renamed the file, the next line goes to a new
 * one without any signal.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <gio/gio.h>

#include <imta/job.h>
#include <imta/log.h>
#include <imta/mail_log.h>
#include <imta/stat_untimed.h>

#define MAIL_LOG_FILE "mail.log_current"
#define MAIL_LOG_DEFAULT_BLOCK 1024
/* Caps of the fields other than the diagnostic, which gets what is left
 * of IMTA_MAIL_LOG_MAX_LINE; with every optional field at its cap the
 * diagnostic still has about 600 bytes. */
#define MAIL_LOG_CHANNEL_CAP 128
#define MAIL_LOG_ADDRESS_CAP 600
#define MAIL_LOG_ID_CAP 64
#define MAIL_LOG_CUT "..."
/* Enough of a message to hold any sane header's Message-ID. */
#define MAIL_LOG_HEADER_SCAN (64 * 1024)

typedef struct {
	gint64 block_size;
	gboolean filename, message_id, process;
} MailLogFields;

typedef struct {
	GMutex lock;
	gboolean ready;
	gboolean syslog;
	char *path;                /* NULL: no file (no log directory known) */
	char *dir;
	int fd;
	dev_t dev;
	ino_t ino;
	MailLogFields fields;
	GHashTable *logging;       /* names of the channels that carry `logging` */
	gboolean failing;          /* a failure was reported and not yet followed by a write */
} MailLog;

static MailLog mail_log = {
	.fd = -1,
	.fields = { MAIL_LOG_DEFAULT_BLOCK, FALSE, FALSE, FALSE },
};

static const char *const mail_log_months[] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

/* ---- set-up -------------------------------------------------------------- */

static void
mail_log_reset_locked(void)
{
	if (mail_log.fd >= 0)
		close(mail_log.fd);
	mail_log.fd = -1;
	g_clear_pointer(&mail_log.path, g_free);
	g_clear_pointer(&mail_log.dir, g_free);
	g_clear_pointer(&mail_log.logging, g_hash_table_unref);
	mail_log.fields = (MailLogFields){ MAIL_LOG_DEFAULT_BLOCK, FALSE, FALSE, FALSE };
	mail_log.syslog = FALSE;
	mail_log.failing = FALSE;
	mail_log.ready = FALSE;
}

void
imta_mail_log_init(const ImtaConfig *config)
{
	const ImtaOptionDat *options = config != NULL ? config->options : NULL;
	const ImtaTailor *tailor = config != NULL ? config->tailor : NULL;

	g_mutex_lock(&mail_log.lock);
	mail_log_reset_locked();
	mail_log.logging = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	if (config != NULL && config->cnf != NULL)
		for (guint i = 0; i < config->cnf->channels->len; i++) {
			const ImtaChannel *channel = config->cnf->channels->pdata[i];

			if (channel->logging)
				g_hash_table_add(mail_log.logging, g_strdup(channel->name));
		}
	if (options != NULL) {
		if (options->block_size > 0)
			mail_log.fields.block_size = options->block_size;
		mail_log.fields.filename = options->log_filename;
		mail_log.fields.message_id = options->log_message_id;
		mail_log.fields.process = options->log_process != 0;
	}
	if (tailor != NULL && tailor->mail_log != NULL &&
	    g_ascii_strcasecmp(tailor->mail_log, "syslog") == 0)
		mail_log.syslog = TRUE;
	else if (tailor != NULL && tailor->log_dir != NULL) {
		mail_log.dir = g_strdup(tailor->log_dir);
		mail_log.path = g_build_filename(tailor->log_dir, MAIL_LOG_FILE, NULL);
	}
	mail_log.ready = TRUE;
	g_mutex_unlock(&mail_log.lock);
}

void
imta_mail_log_close(void)
{
	g_mutex_lock(&mail_log.lock);
	mail_log_reset_locked();
	g_mutex_unlock(&mail_log.lock);
}

void
imta_mail_log_reopen(void)
{
	g_mutex_lock(&mail_log.lock);
	if (mail_log.fd >= 0)
		close(mail_log.fd);
	mail_log.fd = -1;
	g_mutex_unlock(&mail_log.lock);
}

gboolean
imta_mail_log_enabled(const char *channel)
{
	gboolean enabled;

	if (channel == NULL)
		return FALSE;
	g_mutex_lock(&mail_log.lock);
	enabled = mail_log.ready && (mail_log.syslog || mail_log.path != NULL) &&
		  g_hash_table_contains(mail_log.logging, channel);
	g_mutex_unlock(&mail_log.lock);
	return enabled;
}

gboolean
imta_mail_log_wants_message_id(void)
{
	gboolean wanted;

	g_mutex_lock(&mail_log.lock);
	wanted = mail_log.ready && mail_log.fields.message_id;
	g_mutex_unlock(&mail_log.lock);
	return wanted;
}

/* ---- the line ------------------------------------------------------------ */

/* How byte `c` is written: itself, or an escape.  Blanks separate the
 * fields, so only the diagnostic (the rest of the line) keeps them. */
static gsize
mail_log_escape(guchar c, gboolean token, char out[5])
{
	if (c == '\\') {
		memcpy(out, "\\\\", 2);
		return 2;
	}
	if (c < 0x20 || c == 0x7f || (token && c == ' ')) {
		g_snprintf(out, 5, "\\x%02x", c);
		return 4;
	}
	out[0] = (char)c;
	return 1;
}

static gsize
mail_log_escaped_length(const char *value, gboolean token)
{
	char unit[5];
	gsize n = 0;

	for (const char *p = value; *p != '\0'; p++)
		n += mail_log_escape((guchar)*p, token, unit);
	return n;
}

/* Append `value` escaped, in at most `cap` bytes: a longer value is cut
 * where a character starts (never inside an escape or a UTF-8 sequence)
 * and ends with "...".  A missing or empty value is "-"; a value that is
 * "-" itself is escaped so that it cannot be taken for a missing one. */
static void
mail_log_append(GString *line, const char *value, gsize cap, gboolean token)
{
	gsize budget, used = 0;
	char unit[5];

	if (value == NULL || value[0] == '\0') {
		g_string_append_c(line, '-');
		return;
	}
	if (strcmp(value, "-") == 0) {
		g_string_append(line, "\\x2d");
		return;
	}
	if (mail_log_escaped_length(value, token) <= cap) {
		for (const char *p = value; *p != '\0'; p++)
			g_string_append_len(line, unit,
					    (gssize)mail_log_escape((guchar)*p, token, unit));
		return;
	}
	budget = cap > strlen(MAIL_LOG_CUT) ? cap - strlen(MAIL_LOG_CUT) : 0;
	for (const char *p = value; *p != '\0'; p++) {
		gsize n = mail_log_escape((guchar)*p, token, unit);
		gsize run = n;

		/* A multi-byte character goes in whole or not at all. */
		if (((guchar)*p & 0xc0) == 0xc0)
			for (const char *q = p + 1; ((guchar)*q & 0xc0) == 0x80; q++)
				run++;
		if (used + run > budget)
			break;
		g_string_append_len(line, unit, (gssize)n);
		used += n;
	}
	g_string_append(line, MAIL_LOG_CUT);
}

static void
mail_log_append_token(GString *line, const char *value, gsize cap)
{
	g_string_append_c(line, ' ');
	mail_log_append(line, value, cap, TRUE);
}

static gint64
mail_log_blocks(gint64 size, gint64 block_size)
{
	if (size < 0)
		return 0;
	if (size == 0)
		return 1;
	return (size - 1) / block_size + 1;
}

static gboolean
mail_log_code_valid(ImtaMailLogCode code)
{
	switch (code) {
	case IMTA_MAIL_LOG_ENQUEUED:
	case IMTA_MAIL_LOG_DELIVERED:
	case IMTA_MAIL_LOG_DEFERRED:
	case IMTA_MAIL_LOG_FAILED:
	case IMTA_MAIL_LOG_REFUSED:
	case IMTA_MAIL_LOG_WARNED:
	case IMTA_MAIL_LOG_NOT_NOTIFIED:
		return TRUE;
	}
	return FALSE;
}

/* "23-Nov-2026 10:01:02.11", local time, English month names. */
static void
mail_log_append_date(GString *line, gint64 now)
{
	time_t seconds = (time_t)(now / G_USEC_PER_SEC);
	gint64 hundredths = (now % G_USEC_PER_SEC) / 10000;
	struct tm tm;

	if (hundredths < 0) {
		seconds--;
		hundredths += 100;
	}
	if (localtime_r(&seconds, &tm) == NULL)
		memset(&tm, 0, sizeof tm);
	g_string_append_printf(line, "%02d-%s-%04d %02d:%02d:%02d.%02d", tm.tm_mday,
			       mail_log_months[CLAMP(tm.tm_mon, 0, 11)], tm.tm_year + 1900,
			       tm.tm_hour, tm.tm_min, tm.tm_sec, (int)hundredths);
}

char *
imta_mail_log_format(const ImtaMailLogEntry *entry, gint64 now)
{
	GString *line = g_string_sized_new(256);
	g_autofree char *orcpt = NULL;
	const char *from = entry->from;
	MailLogFields fields;
	gsize left;

	g_mutex_lock(&mail_log.lock);
	fields = mail_log.fields;
	g_mutex_unlock(&mail_log.lock);

	mail_log_append_date(line, now);
	mail_log_append_token(line, entry->source, MAIL_LOG_CHANNEL_CAP);
	mail_log_append_token(line, entry->destination, MAIL_LOG_CHANNEL_CAP);
	g_string_append_c(line, ' ');
	g_string_append_c(line, mail_log_code_valid(entry->code) ? (char)entry->code : '?');
	if (entry->flags & IMTA_MAIL_LOG_TLS)
		g_string_append_c(line, 'S');
	if (entry->flags & IMTA_MAIL_LOG_SASL)
		g_string_append_c(line, 'A');
	g_string_append_printf(line, " %" G_GINT64_FORMAT,
			       mail_log_blocks(entry->size, fields.block_size));
	/* The null path must be visible: an empty field would shift the rest. */
	mail_log_append_token(line, from != NULL && from[0] == '\0' ? "<>" : from,
			      MAIL_LOG_ADDRESS_CAP);
	if (entry->orcpt == NULL && entry->to != NULL && entry->to[0] != '\0')
		orcpt = g_strconcat("rfc822;", entry->to, NULL);
	mail_log_append_token(line, entry->orcpt != NULL ? entry->orcpt : orcpt,
			      MAIL_LOG_ADDRESS_CAP);
	mail_log_append_token(line, entry->to, MAIL_LOG_ADDRESS_CAP);
	mail_log_append_token(line, entry->queue_id, MAIL_LOG_ID_CAP);
	if (fields.filename)
		mail_log_append_token(line, entry->filename, MAIL_LOG_ADDRESS_CAP);
	if (fields.message_id)
		mail_log_append_token(line, entry->message_id, MAIL_LOG_ADDRESS_CAP);
	if (fields.process)
		g_string_append_printf(line, " %ld", (long)getpid());
	/* The diagnostic takes the rest, leaving room for the newline. */
	g_string_append_c(line, ' ');
	left = line->len + 1 < IMTA_MAIL_LOG_MAX_LINE ? IMTA_MAIL_LOG_MAX_LINE - 1 - line->len : 0;
	mail_log_append(line, entry->diagnostic, left, FALSE);
	return g_string_free(line, FALSE);
}

/* ---- writing ------------------------------------------------------------- */

/* Report a failure on the process log, once until a write succeeds. */
static void
mail_log_failed(const char *what, int err)
{
	if (mail_log.failing)
		return;
	mail_log.failing = TRUE;
	imta_log(IMTA_LOG_ERROR, "mail.log: cannot %s %s: %s; message log entries are lost "
		 "until it can", what, mail_log.path, g_strerror(err));
}

/* The descriptor still names the file at `path`?  A rename or removal
 * (rotation) means the next line starts a new file. */
static void
mail_log_check_rotated_locked(void)
{
	struct stat st;

	if (mail_log.fd < 0)
		return;
	if (imta_stat_untimed(AT_FDCWD, mail_log.path, 0, &st) == 0 && st.st_dev == mail_log.dev &&
	    st.st_ino == mail_log.ino)
		return;
	close(mail_log.fd);
	mail_log.fd = -1;
}

static gboolean
mail_log_open_locked(void)
{
	struct stat st;
	int fd;

	if (mail_log.fd >= 0)
		return TRUE;
	fd = open(mail_log.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (fd < 0 && errno == ENOENT && g_mkdir_with_parents(mail_log.dir, 0750) == 0)
		fd = open(mail_log.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
			  0640);
	if (fd < 0) {
		mail_log_failed("open", errno);
		return FALSE;
	}
	if (imta_fstat_untimed(fd, &st) < 0) {
		mail_log_failed("examine", errno);
		close(fd);
		return FALSE;
	}
	mail_log.fd = fd;
	mail_log.dev = st.st_dev;
	mail_log.ino = st.st_ino;
	return TRUE;
}

static void
mail_log_write_locked(const char *line, gsize len)
{
	ssize_t n;

	mail_log_check_rotated_locked();
	if (!mail_log_open_locked())
		return;
	do
		n = write(mail_log.fd, line, len);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		mail_log_failed("write to", errno);
		return;
	}
	if ((gsize)n != len) {
		/* Out of space mid-line: the torn line ends here, so the next
		 * one still starts a line of its own. */
		if (write(mail_log.fd, "\n", 1) < 0) {
			/* Nothing more can be done; reported below. */
		}
		mail_log_failed("write to", ENOSPC);
		return;
	}
	if (mail_log.failing)
		imta_log(IMTA_LOG_NOTICE, "mail.log: writing %s again", mail_log.path);
	mail_log.failing = FALSE;
}

static gboolean
mail_log_destination_channel(ImtaMailLogCode code)
{
	return code == IMTA_MAIL_LOG_DELIVERED || code == IMTA_MAIL_LOG_DEFERRED ||
	       code == IMTA_MAIL_LOG_FAILED || code == IMTA_MAIL_LOG_WARNED ||
	       code == IMTA_MAIL_LOG_NOT_NOTIFIED;
}

void
imta_mail_log_entry(const ImtaMailLogEntry *entry)
{
	const char *channel = mail_log_destination_channel(entry->code) ? entry->destination
									 : entry->source;
	g_autofree char *text = NULL;
	gsize len;

	if (!imta_mail_log_enabled(channel))
		return;
	text = imta_mail_log_format(entry, g_get_real_time());
	len = strlen(text);
	g_mutex_lock(&mail_log.lock);
	if (!mail_log.ready) {
		/* Closed meanwhile. */
	} else if (mail_log.syslog) {
		syslog(LOG_MAIL | LOG_INFO, "%s", text);
	} else if (mail_log.path != NULL) {
		text = g_realloc(text, len + 2);
		text[len] = '\n';
		text[len + 1] = '\0';
		mail_log_write_locked(text, len + 1);
	}
	g_mutex_unlock(&mail_log.lock);
}

/* ---- Message-ID ------------------------------------------------------- */

/* Length of the line at `p` (up to end), without its LF or CR LF. */
static gsize
mail_log_line_length(const char *p, const char *end, const char **next_r)
{
	const char *lf = memchr(p, '\n', (gsize)(end - p));
	const char *stop = lf != NULL ? lf : end;

	*next_r = lf != NULL ? lf + 1 : end;
	if (stop > p && stop[-1] == '\r')
		stop--;
	return (gsize)(stop - p);
}

/* The msg-id of an unfolded field body: "<...>" when there is one,
 * else its first word. */
static char *
mail_log_pick_id(const char *body)
{
	const char *lt = strchr(body, '<');
	const char *gt = lt != NULL ? strchr(lt, '>') : NULL;
	const char *start = body, *stop;

	if (lt != NULL && gt != NULL)
		return g_strndup(lt, (gsize)(gt - lt + 1));
	while (*start == ' ' || *start == '\t')
		start++;
	for (stop = start; *stop != '\0' && *stop != ' ' && *stop != '\t'; stop++)
		;
	return stop > start ? g_strndup(start, (gsize)(stop - start)) : NULL;
}

char *
imta_mail_log_find_message_id(const char *text, gsize len)
{
	static const char name[] = "message-id";
	const char *p = text, *end = text + len, *next;
	g_autoptr(GString) body = NULL;

	while (p < end) {
		gsize n = mail_log_line_length(p, end, &next);
		const char *colon;

		if (n == 0)
			break; /* the end of the header */
		if (body != NULL) {
			if (p[0] != ' ' && p[0] != '\t')
				break;
			g_string_append_c(body, ' ');
			g_string_append_len(body, p, (gssize)n);
		} else if (n > strlen(name) && g_ascii_strncasecmp(p, name, strlen(name)) == 0) {
			colon = p + strlen(name);
			while (colon < p + n && (*colon == ' ' || *colon == '\t'))
				colon++;
			if (colon < p + n && *colon == ':')
				body = g_string_new_len(colon + 1, (gssize)(p + n - colon - 1));
		}
		p = next;
	}
	if (body == NULL)
		return NULL;
	/* A NUL in the field would end the string early; that is harmless. */
	return mail_log_pick_id(body->str);
}

char *
imta_mail_log_message_id_of(const ImtaMessage *msg)
{
	g_autoptr(GBytes) head = NULL;

	if (msg == NULL)
		return NULL;
	head = imta_message_read_content(msg, MAIL_LOG_HEADER_SCAN, NULL);
	if (head == NULL)
		return NULL;
	return imta_mail_log_find_message_id(g_bytes_get_data(head, NULL), g_bytes_get_size(head));
}
