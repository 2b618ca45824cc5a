/*
 * cmd_qm.c - imsimta qm: the queue manager.  It works on the queue files
 * directly, so it also works with the job controller stopped; when the
 * controller runs it is told about released messages.
 *
 *   imsimta qm                                interactive (qm.maint> prompt)
 *   imsimta qm directory [-channel=CH] [-held] numbered listing per channel
 *   imsimta qm held [-channel=CH]             held messages only
 *   imsimta qm summary [-channel=CH]          messages and recipients per channel
 *   imsimta qm read ID [-envelope]            envelope and content
 *   imsimta qm history ID...                  the delivery attempts
 *   imsimta qm delete|hold|release ID...|-all [-channel=CH] [-noconfirm]
 *   imsimta qm reprocess ID...|-all [-channel=CH]   route again (reprocess(8))
 *
 * Deleting a message while a master job delivers it: the attempt in
 * progress runs to its end (what was already handed to the next hop stays
 * delivered); the master then finds the file gone, logs that the outcomes
 * were not recorded, and the job controller forgets the message: it is not
 * retried.  Holding a message during delivery: the attempt's outcomes are
 * recorded in the held file, and after `release` only the recipients still
 * pending are tried.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

#include <imta/imta.h>
#include <imta/queue.h>
#include <imta/xtext.h>
#include <imta/jc_client.h>
#include "commands.h"

/* Bounds on what one invocation reads. */
#define QM_MAX_TRAILER (4 * 1024 * 1024)
#define QM_MAX_INTERACTIVE_LINE 4096
/* Where `qm reprocess` sends messages: the channel of the shipped
 * configuration bound to the reprocess plugin. */
#define QM_REPROCESS_CHANNEL "reprocess"

typedef struct {
	char *channel;
	char *path;                             /* relative to the queue root */
	char id[IMTA_QUEUE_ID_LENGTH + 1];
	guint attempts;
	gboolean held;
} QmFile;

typedef struct {
	const ImtaConfig *config;
	ImtaQueue *queue;
	const char *channel;     /* -channel=, or NULL for all */
	gboolean all, held_only, envelope_only, noconfirm;
	GPtrArray *ids;          /* borrowed argv strings */
} QmContext;

static const char qm_help[] =
	"Usage: imsimta qm [SUBCOMMAND [ARGS...]]\n"
	"\n"
	"The queue manager.  Without a subcommand it reads subcommands from standard\n"
	"input (prompt qm.maint>; exit or quit to leave).  It works on the queue files\n"
	"themselves, with or without the job controller running.\n"
	"\n"
	"  directory [-channel=CH] [-held]  list queued messages per channel: number,\n"
	"                                   file, size in blocks, queued since\n"
	"  held [-channel=CH]               list held messages only\n"
	"  summary [-channel=CH]            messages, pending recipients, held messages\n"
	"                                   and blocks per channel\n"
	"  read ID [-envelope]              show a message's envelope and content\n"
	"  history ID...                    show a message's delivery attempts\n"
	"  delete ID...|-all [-channel=CH] [-noconfirm]\n"
	"                                   remove messages without notifying anyone\n"
	"  hold ID...|-all [-channel=CH]    keep messages from being delivered\n"
	"  release ID...|-all [-channel=CH] make held messages deliverable now\n"
	"  reprocess ID...|-all [-channel=CH]\n"
	"                                   move messages to the reprocess channel, which\n"
	"                                   routes them again by the rewrite rules and the\n"
	"                                   directory as they are now (reprocess(8));\n"
	"                                   -channel=hold releases the held users' mail\n"
	"\n"
	"ID is a 16-character queue id (0SJX2K5A1B3C9FQW) or a queue file name\n"
	"(ZZ0SJX2K5A1B3C9FQW.00, bitbucket/ZZ0SJX2K5A1B3C9FQW.00).  delete -all asks\n"
	"for confirmation on a terminal and needs -noconfirm otherwise.\n"
	"\n"
	"A message deleted while a master job delivers it: the attempt in progress\n"
	"finishes, its outcomes are not recorded and the message is not retried.  A\n"
	"message held during delivery keeps that attempt's outcomes; after release\n"
	"only the recipients still pending are tried.\n"
	"\n"
	"Exit status: 0 success, 64 usage, 65 no such message, 69 queue unavailable,\n"
	"74 a queue file could not be changed, 78 configuration error.\n";

static void
qm_file_free(gpointer p)
{
	QmFile *file = p;

	if (file == NULL)
		return;
	g_free(file->channel);
	g_free(file->path);
	g_free(file);
}

/* ---- formatting ------------------------------------------------------ */

/* "24-Feb-2007 11:52:29", local time, the same in every locale. */
static char *
qm_format_time(gint64 when)
{
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local(when);

	if (dt == NULL)
		return g_strdup("(invalid time)");
	return g_strdup_printf("%02d-%s-%04d %02d:%02d:%02d", g_date_time_get_day_of_month(dt),
			       months[g_date_time_get_month(dt) - 1], g_date_time_get_year(dt),
			       g_date_time_get_hour(dt), g_date_time_get_minute(dt),
			       g_date_time_get_second(dt));
}

static gint64
qm_blocks(const ImtaConfig *config, goffset size)
{
	gint64 block = config->options != NULL && config->options->block_size > 0
			       ? config->options->block_size
			       : 1024;

	return size <= 0 ? 0 : (size - 1) / block + 1;
}

static const char *
qm_priority_name(ImtaPriority priority)
{
	switch (priority) {
	case IMTA_PRIORITY_URGENT:
		return "urgent";
	case IMTA_PRIORITY_NONURGENT:
		return "non-urgent";
	case IMTA_PRIORITY_NORMAL:
	case IMTA_PRIORITY_COUNT:
		break;
	}
	return "normal";
}

static const char *
qm_outcome_name(ImtaOutcome outcome)
{
	switch (outcome) {
	case IMTA_OUTCOME_DELIVERED:
		return "delivered";
	case IMTA_OUTCOME_FAILED:
		return "failed";
	case IMTA_OUTCOME_RETRY:
		return "deferred";
	case IMTA_OUTCOME_NONE:
		break;
	}
	return "pending";
}

static char *
qm_notify_text(guint notify)
{
	g_autoptr(GString) out = g_string_new(NULL);
	static const struct { guint bit; const char *name; } bits[] = {
		{ IMTA_NOTIFY_NEVER, "NEVER" }, { IMTA_NOTIFY_SUCCESS, "SUCCESS" },
		{ IMTA_NOTIFY_FAILURE, "FAILURE" }, { IMTA_NOTIFY_DELAY, "DELAY" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(bits); i++)
		if (notify & bits[i].bit)
			g_string_append_printf(out, "%s%s", out->len > 0 ? "," : "", bits[i].name);
	return out->len > 0 ? g_string_free(g_steal_pointer(&out), FALSE)
			    : g_strdup("default (FAILURE,DELAY)");
}

/* ---- finding messages ------------------------------------------------- */

typedef struct {
	GPtrArray *files;
	const char *channel;
	gboolean held_only;
} QmScan;

static gboolean
qm_scan_visit(const char *path, guint attempts, gboolean held, gpointer data)
{
	QmScan *scan = data;
	g_autofree char *name = g_path_get_basename(path);
	QmFile *file;
	guint parsed_attempts;
	gboolean parsed_held;

	if (scan->held_only && !held)
		return TRUE;
	file = g_new0(QmFile, 1);
	if (!imta_queue_parse_name(name, &parsed_attempts, file->id, &parsed_held)) {
		qm_file_free(file);
		return TRUE;
	}
	file->channel = g_strdup(scan->channel);
	file->path = g_strdup(path);
	file->attempts = attempts;
	file->held = held;
	g_ptr_array_add(scan->files, file);
	return TRUE;
}

/* Every queue file of the selected channels (all when ctx->channel is
 * NULL), channel by channel in imta.cnf order. */
static GPtrArray *
qm_collect(const QmContext *ctx, gboolean held_only, GError **error)
{
	g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(qm_file_free);
	const GPtrArray *channels = ctx->config->cnf->channels;

	for (guint i = 0; i < channels->len; i++) {
		const ImtaChannel *channel = channels->pdata[i];
		QmScan scan = { files, channel->name, held_only };

		if (ctx->channel != NULL && strcmp(ctx->channel, channel->name) != 0)
			continue;
		if (!imta_queue_scan_channel(ctx->queue, channel->name, FALSE, qm_scan_visit, &scan,
					     error))
			return NULL;
	}
	return g_steal_pointer(&files);
}

/* The queue id in an argument: an id, a file name or a queue path. */
static gboolean
qm_parse_id(const char *arg, char id[IMTA_QUEUE_ID_LENGTH + 1])
{
	g_autofree char *base = g_path_get_basename(arg);
	guint attempts;
	gboolean held;

	if (strlen(base) == IMTA_QUEUE_ID_LENGTH) {
		for (guint i = 0; i < IMTA_QUEUE_ID_LENGTH; i++) {
			if (!g_ascii_isalnum(base[i]))
				return FALSE;
			id[i] = g_ascii_toupper(base[i]);
		}
		id[IMTA_QUEUE_ID_LENGTH] = '\0';
		return TRUE;
	}
	return imta_queue_parse_name(base, &attempts, id, &held);
}

/* The files named by ctx->ids (or every file with -all), in argument
 * order.  Unknown ids are reported; *missing_r counts them. */
static GPtrArray *
qm_select(const QmContext *ctx, const char *verb, guint *missing_r, int *exit_r)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) all = qm_collect(ctx, FALSE, &error);
	g_autoptr(GPtrArray) chosen = g_ptr_array_new();

	*missing_r = 0;
	if (all == NULL) {
		fprintf(stderr, "imsimta qm %s: %s\n", verb, error->message);
		*exit_r = EXIT_UNAVAILABLE;
		return NULL;
	}
	if (ctx->all) {
		for (guint i = 0; i < all->len; i++)
			g_ptr_array_add(chosen, all->pdata[i]);
		g_ptr_array_set_free_func(all, NULL);
		g_ptr_array_set_free_func(chosen, qm_file_free);
		return g_steal_pointer(&chosen);
	}
	g_ptr_array_set_free_func(chosen, qm_file_free);
	for (guint a = 0; a < ctx->ids->len; a++) {
		const char *arg = ctx->ids->pdata[a];
		char id[IMTA_QUEUE_ID_LENGTH + 1];
		gboolean found = FALSE;

		if (!qm_parse_id(arg, id)) {
			fprintf(stderr, "imsimta qm %s: \"%s\" is not a queue id (16 characters "
				"0-9 A-Z) or a queue file name\n", verb, arg);
			*exit_r = EXIT_USAGE;
			return NULL;
		}
		for (guint i = 0; i < all->len; i++) {
			QmFile *file = all->pdata[i];

			if (file != NULL && strcmp(file->id, id) == 0) {
				g_ptr_array_add(chosen, file);
				all->pdata[i] = NULL; /* moved; also makes repeats harmless */
				found = TRUE;
			}
		}
		if (!found) {
			fprintf(stderr, "imsimta qm %s: no queued message %s%s%s\n", verb, id,
				ctx->channel != NULL ? " in channel " : "",
				ctx->channel != NULL ? ctx->channel : "");
			(*missing_r)++;
		}
	}
	return g_steal_pointer(&chosen);
}

/* ---- directory, held, summary ------------------------------------------ */

static int
qm_directory(const QmContext *ctx, gboolean held_only)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) files = qm_collect(ctx, held_only, &error);
	const char *current = NULL;
	gint64 channel_total = 0, grand_total = 0;
	guint number = 0;

	if (files == NULL) {
		fprintf(stderr, "imsimta qm directory: %s\n", error->message);
		return EXIT_UNAVAILABLE;
	}
	for (guint i = 0; i < files->len; i++) {
		const QmFile *file = files->pdata[i];
		g_autoptr(ImtaQueueEntry) entry = NULL;
		g_autoptr(GError) local = NULL;
		g_autofree char *base = g_path_get_basename(file->path);
		g_autofree char *since = NULL;
		gint64 blocks;

		if (current == NULL || strcmp(current, file->channel) != 0) {
			g_autofree char *title = g_strdup_printf("Channel: %s", file->channel);

			if (current != NULL)
				printf("%-28s %5" G_GINT64_FORMAT "\n\n", "Total size:", channel_total);
			current = file->channel;
			channel_total = 0;
			printf("%-28s %5s  %s\n", title, "Size", "Queued since");
		}
		entry = imta_queue_entry_read(ctx->queue, file->path, &local);
		number++;
		if (entry == NULL) {
			printf("%3u %-24s    ?  (unreadable: %s)\n", number, base, local->message);
			continue;
		}
		blocks = qm_blocks(ctx->config, entry->content_size);
		since = qm_format_time(entry->created);
		printf("%3u %-24s %5" G_GINT64_FORMAT "  %s\n", number, base, blocks, since);
		channel_total += blocks;
		grand_total += blocks;
	}
	if (current != NULL)
		printf("%-28s %5" G_GINT64_FORMAT "\n\n", "Total size:", channel_total);
	if (number == 0)
		printf("%s\n", held_only ? "No held messages." : "The queue is empty.");
	printf("%-28s %5" G_GINT64_FORMAT "\n", "Grand total size:", grand_total);
	return 0;
}

typedef struct {
	guint messages, recipients, held, unreadable;
	gint64 blocks, oldest;
} QmCounts;

static void
qm_count_file(const QmContext *ctx, const QmFile *file, QmCounts *counts)
{
	g_autoptr(ImtaQueueEntry) entry = imta_queue_entry_read(ctx->queue, file->path, NULL);
	guint n;

	counts->messages++;
	counts->held += file->held ? 1 : 0;
	if (entry == NULL) {
		counts->unreadable++;
		return;
	}
	n = imta_message_recipient_count(entry->message);
	for (guint i = 0; i < n; i++) {
		ImtaOutcome outcome = imta_message_recipient(entry->message, i)->outcome;

		if (outcome != IMTA_OUTCOME_DELIVERED && outcome != IMTA_OUTCOME_FAILED)
			counts->recipients++;
	}
	counts->blocks += qm_blocks(ctx->config, entry->content_size);
	if (counts->oldest == 0 || entry->created < counts->oldest)
		counts->oldest = entry->created;
}

static void
qm_print_counts(const char *name, const QmCounts *counts)
{
	g_autofree char *oldest = counts->oldest > 0 ? qm_format_time(counts->oldest) : g_strdup("-");

	printf("%-20s %8u %10u %5u %8" G_GINT64_FORMAT "  %s%s\n", name, counts->messages,
	       counts->recipients, counts->held, counts->blocks, oldest,
	       counts->unreadable > 0 ? "  (some files unreadable)" : "");
}

static int
qm_summary(const QmContext *ctx)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) files = qm_collect(ctx, FALSE, &error);
	QmCounts channel = { 0 }, total = { 0 };
	const char *current = NULL;

	if (files == NULL) {
		fprintf(stderr, "imsimta qm summary: %s\n", error->message);
		return EXIT_UNAVAILABLE;
	}
	printf("%-20s %8s %10s %5s %8s  %s\n", "Channel", "Messages", "Recipients", "Held",
	       "Blocks", "Oldest");
	for (guint i = 0; i < files->len; i++) {
		const QmFile *file = files->pdata[i];

		if (current != NULL && strcmp(current, file->channel) != 0) {
			qm_print_counts(current, &channel);
			memset(&channel, 0, sizeof channel);
		}
		current = file->channel;
		qm_count_file(ctx, file, &channel);
		qm_count_file(ctx, file, &total);
	}
	if (current != NULL)
		qm_print_counts(current, &channel);
	qm_print_counts("Total", &total);
	return 0;
}

/* ---- read, history ------------------------------------------------------ */

static gboolean
qm_copy_content(const ImtaMessage *msg, GError **error)
{
	g_autoptr(GInputStream) in = imta_message_open_content(msg, error);
	goffset left = imta_message_size(msg);
	char buf[16384];

	if (in == NULL)
		return FALSE;
	while (left > 0) {
		gssize n = g_input_stream_read(in, buf, (gsize)MIN(left, (goffset)sizeof buf), NULL,
					       error);

		if (n < 0)
			return FALSE;
		if (n == 0) {
			g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_FORMAT,
				    "the content ends %" G_GOFFSET_FORMAT " bytes early", left);
			return FALSE;
		}
		if (fwrite(buf, 1, (gsize)n, stdout) != (gsize)n) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "writing: %s",
				    g_strerror(errno));
			return FALSE;
		}
		left -= n;
	}
	return TRUE;
}

static void
qm_print_envelope(const QmContext *ctx, const ImtaQueueEntry *entry)
{
	const ImtaMessage *msg = entry->message;
	g_autofree char *created = qm_format_time(entry->created);
	g_autofree char *next = entry->next_attempt > 0
					? qm_format_time(entry->next_attempt)
					: g_strdup("when the job controller next looks");
	guint n = imta_message_recipient_count(msg);
	gint64 blocks;

	printf("Queue id:      %s\n", entry->id);
	printf("File:          %s%s\n", entry->path, entry->held ? " (held)" : "");
	printf("Channel:       %s (enqueued by %s)\n", entry->channel,
	       entry->source != NULL ? entry->source : "an unknown channel");
	if (entry->host != NULL)
		printf("Destination:   %s\n", entry->host);
	printf("Queued since:  %s\n", created);
	printf("Priority:      %s\n", qm_priority_name(entry->priority));
	printf("Attempts:      %u\n", entry->attempts);
	if (!entry->held)
		printf("Next attempt:  %s\n", next);
	if (entry->last_error != NULL)
		printf("Last error:    %s\n", entry->last_error);
	printf("From:          <%s>\n", imta_message_return_path(msg));
	if (imta_message_envid(msg) != NULL)
		printf("ENVID:         %s\n", imta_message_envid(msg));
	if (imta_message_ret(msg) != IMTA_RET_DEFAULT)
		printf("RET:           %s\n",
		       imta_message_ret(msg) == IMTA_RET_FULL ? "FULL" : "HDRS");
	blocks = qm_blocks(ctx->config, imta_message_size(msg));
	printf("Size:          %" G_GOFFSET_FORMAT " bytes (%" G_GINT64_FORMAT " block%s)\n",
	       imta_message_size(msg), blocks, blocks == 1 ? "" : "s");
	printf("Recipients:    %u\n", n);
	for (guint i = 0; i < n; i++) {
		const ImtaRecipient *rcpt = imta_message_recipient(msg, i);
		g_autofree char *notify = qm_notify_text(rcpt->notify);

		printf("  %u. <%s>  %s%s%s\n", i + 1, rcpt->address, qm_outcome_name(rcpt->outcome),
		       rcpt->diagnostic != NULL ? ": " : "",
		       rcpt->diagnostic != NULL ? rcpt->diagnostic : "");
		printf("       ORCPT %s, NOTIFY %s\n", rcpt->orcpt != NULL ? rcpt->orcpt : "none",
		       notify);
	}
}

static int
qm_read(const QmContext *ctx)
{
	guint missing = 0;
	int status = 0;
	g_autoptr(GPtrArray) files = NULL;

	if (ctx->ids->len != 1 || ctx->all) {
		fprintf(stderr, "imsimta qm read: expected one queue id\n");
		return EXIT_USAGE;
	}
	files = qm_select(ctx, "read", &missing, &status);
	if (files == NULL)
		return status;
	if (missing > 0)
		return EXIT_DATAERR;
	for (guint i = 0; i < files->len; i++) {
		const QmFile *file = files->pdata[i];
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaQueueEntry) entry = imta_queue_entry_read(ctx->queue, file->path,
									&error);

		if (entry == NULL) {
			fprintf(stderr, "imsimta qm read: %s: %s\n", file->path, error->message);
			return EXIT_IOERR;
		}
		qm_print_envelope(ctx, entry);
		if (ctx->envelope_only)
			continue;
		printf("\n");
		fflush(stdout);
		if (!qm_copy_content(entry->message, &error)) {
			fprintf(stderr, "imsimta qm read: %s: %s\n", file->path, error->message);
			return EXIT_IOERR;
		}
	}
	return 0;
}

/* The outcome records after the content: "R" (and "W", delay warning)
 * lines of an attempt, closed by its "A" line.  A torn last line (no
 * "\n") is a crash mid-append and is skipped, as the queue store does. */
static char *
qm_read_trailer(const QmContext *ctx, const ImtaQueueEntry *entry, GError **error)
{
	g_autofree char *path = g_build_filename(imta_queue_root(ctx->queue), entry->path, NULL);
	g_autoptr(GFile) gfile = g_file_new_for_path(path);
	g_autoptr(GFileInputStream) in = g_file_read(gfile, NULL, error);
	g_autoptr(GString) text = g_string_new(NULL);
	char buf[8192];

	if (in == NULL)
		return NULL;
	if (!g_seekable_seek(G_SEEKABLE(in), entry->content_offset + entry->content_size,
			     G_SEEK_SET, NULL, error))
		return NULL;
	for (;;) {
		gssize n = g_input_stream_read(G_INPUT_STREAM(in), buf, sizeof buf, NULL, error);

		if (n < 0)
			return NULL;
		if (n == 0)
			break;
		if (text->len + (gsize)n > QM_MAX_TRAILER) {
			g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_LIMIT,
				    "more than %d bytes of attempt records", QM_MAX_TRAILER);
			return NULL;
		}
		g_string_append_len(text, buf, n);
	}
	return g_string_free(g_steal_pointer(&text), FALSE);
}

static char *
qm_field(const char *xtext)
{
	char *text = imta_xtext_decode(xtext, -1, NULL, NULL);

	return text != NULL ? text : g_strdup(xtext);
}

/* A notices age: "2 days", "1 hour", or seconds. */
static char *
qm_format_age(gint64 age)
{
	if (age > 0 && age % 86400 == 0)
		return g_strdup_printf("%" G_GINT64_FORMAT " day%s", age / 86400,
				       age == 86400 ? "" : "s");
	if (age > 0 && age % 3600 == 0)
		return g_strdup_printf("%" G_GINT64_FORMAT " hour%s", age / 3600,
				       age == 3600 ? "" : "s");
	return g_strdup_printf("%" G_GINT64_FORMAT " s", age);
}

static void
qm_print_attempt_records(const ImtaQueueEntry *entry, char **lines)
{
	g_autoptr(GPtrArray) pending = g_ptr_array_new_with_free_func(g_free);
	guint attempts = 0;
	guint n_rcpt = imta_message_recipient_count(entry->message);

	for (guint i = 0; lines[i] != NULL && lines[i + 1] != NULL; i++) {
		g_auto(GStrv) f = g_strsplit(lines[i], " ", 6);
		guint count = g_strv_length(f);
		gint64 when;

		if (count < 5 || !g_ascii_string_to_signed(f[1], 10, 0, G_MAXINT64, &when, NULL))
			continue;
		if (strcmp(f[0], "R") == 0 && count == 5) {
			guint64 index;
			g_autofree char *diag = qm_field(f[4]);
			const char *what = strcmp(f[3], "D") == 0 ? "delivered"
					   : strcmp(f[3], "F") == 0 ? "failed"
								    : "deferred";
			const char *address = "?";

			if (g_ascii_string_to_unsigned(f[2], 10, 0, G_MAXUINT, &index, NULL) &&
			    index < n_rcpt)
				address = imta_message_recipient(entry->message, (guint)index)->address;
			g_ptr_array_add(pending, g_strdup_printf("    <%s> %s: %s", address, what,
								 diag));
		} else if (strcmp(f[0], "W") == 0 && count == 5) {
			g_autofree char *note = qm_field(f[4]);
			g_autofree char *age_text = NULL;
			gint64 age = 0;

			g_ascii_string_to_signed(f[2], 10, 0, G_MAXINT64, &age, NULL);
			age_text = qm_format_age(age);
			g_ptr_array_add(pending, g_strdup_printf(
				"    delay warning at the notices age of %s%s%s: %s", age_text,
				strcmp(f[3], "-") != 0 ? ", message " : "",
				strcmp(f[3], "-") != 0 ? f[3] : "", note));
		} else if (strcmp(f[0], "A") == 0 && count == 5) {
			g_autofree char *at = qm_format_time(when);
			g_autofree char *reason = qm_field(f[4]);
			gint64 next = 0;
			g_autofree char *next_text = NULL;

			g_ascii_string_to_signed(f[3], 10, 0, G_MAXINT64, &next, NULL);
			next_text = next > 0 ? qm_format_time(next) : g_strdup("-");
			printf("Attempt %s at %s, next attempt %s: %s\n", f[2], at, next_text, reason);
			for (guint p = 0; p < pending->len; p++)
				printf("%s\n", (char *)pending->pdata[p]);
			g_ptr_array_set_size(pending, 0);
			attempts++;
		}
	}
	if (pending->len > 0) {
		printf("Unfinished attempt (interrupted before its end was recorded):\n");
		for (guint p = 0; p < pending->len; p++)
			printf("%s\n", (char *)pending->pdata[p]);
	}
	if (attempts == 0 && pending->len == 0)
		printf("No delivery attempts yet.\n");
}

static int
qm_history(const QmContext *ctx)
{
	guint missing = 0;
	int status = 0;
	g_autoptr(GPtrArray) files = NULL;

	if (ctx->ids->len == 0 && !ctx->all) {
		fprintf(stderr, "imsimta qm history: expected queue ids or -all\n");
		return EXIT_USAGE;
	}
	files = qm_select(ctx, "history", &missing, &status);
	if (files == NULL)
		return status;
	for (guint i = 0; i < files->len; i++) {
		const QmFile *file = files->pdata[i];
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaQueueEntry) entry = imta_queue_entry_read(ctx->queue, file->path,
									&error);
		g_autofree char *trailer = NULL;
		g_autofree char *created = NULL;
		g_auto(GStrv) lines = NULL;

		if (entry != NULL)
			trailer = qm_read_trailer(ctx, entry, &error);
		if (trailer == NULL) {
			fprintf(stderr, "imsimta qm history: %s: %s\n", file->path, error->message);
			status = EXIT_IOERR;
			continue;
		}
		created = qm_format_time(entry->created);
		printf("%sMessage %s (%s), queued since %s, %u attempt%s\n", i > 0 ? "\n" : "",
		       entry->id, entry->path, created, entry->attempts,
		       entry->attempts == 1 ? "" : "s");
		lines = g_strsplit(trailer, "\n", -1);
		qm_print_attempt_records(entry, lines);
	}
	return status != 0 ? status : missing > 0 ? EXIT_DATAERR : 0;
}

/* ---- delete, hold, release ------------------------------------------------ */

typedef enum { QM_DELETE, QM_HOLD, QM_RELEASE } QmAction;

static gboolean
qm_confirm(const char *question)
{
	char answer[64];

	printf("%s [no] ", question);
	fflush(stdout);
	if (fgets(answer, sizeof answer, stdin) == NULL)
		return FALSE;
	g_strstrip(answer);
	return g_ascii_strcasecmp(answer, "y") == 0 || g_ascii_strcasecmp(answer, "yes") == 0;
}

/* Make a released message due now in a running job controller.  The
 * queue store has already sent it the "R" notice; RETRY covers a notice
 * lost or overtaken.  Without a controller, its queue scan at start finds
 * the file. */
static void
qm_tell_controller(const QmContext *ctx, const ImtaQueueEntry *entry)
{
	g_autoptr(ImtaJcClient) jc = NULL;
	g_autofree char *line = NULL;
	g_autofree char *reply = NULL;

	jc = imta_jc_client_connect(ctx->config->tailor->run_dir, "admin", NULL, 2000, NULL);
	if (jc == NULL)
		return;
	line = g_strdup_printf("RETRY %s", entry->id);
	reply = imta_jc_client_request(jc, line, NULL);
}

static int
qm_act(const QmContext *ctx, QmAction action)
{
	static const char *const verbs[] = { "delete", "hold", "release" };
	static const char *const done[] = { "Deleted", "Held", "Released" };
	const char *verb = verbs[action];
	guint missing = 0, changed = 0;
	int status = 0;
	g_autoptr(GPtrArray) files = NULL;

	if (ctx->ids->len == 0 && !ctx->all) {
		fprintf(stderr, "imsimta qm %s: expected queue ids or -all\n", verb);
		return EXIT_USAGE;
	}
	if (ctx->ids->len > 0 && ctx->all) {
		fprintf(stderr, "imsimta qm %s: give queue ids or -all, not both\n", verb);
		return EXIT_USAGE;
	}
	files = qm_select(ctx, verb, &missing, &status);
	if (files == NULL)
		return status;
	if (action == QM_DELETE && ctx->all && files->len > 0 && !ctx->noconfirm) {
		g_autofree char *question = g_strdup_printf(
			"Delete all %u queued message%s%s%s?", files->len,
			files->len == 1 ? "" : "s", ctx->channel != NULL ? " of channel " : "",
			ctx->channel != NULL ? ctx->channel : "");

		if (!isatty(STDIN_FILENO)) {
			fprintf(stderr, "imsimta qm delete: -all needs -noconfirm when standard "
				"input is not a terminal\n");
			return EXIT_USAGE;
		}
		if (!qm_confirm(question)) {
			printf("Nothing deleted.\n");
			return 0;
		}
	}
	for (guint i = 0; i < files->len; i++) {
		const QmFile *file = files->pdata[i];
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaQueueEntry) entry = NULL;
		gboolean ok;

		if ((action == QM_HOLD && file->held) || (action == QM_RELEASE && !file->held)) {
			if (!ctx->all)
				printf("%s (%s) is %s held\n", file->id, file->path,
				       file->held ? "already" : "not");
			continue;
		}
		entry = imta_queue_entry_read(ctx->queue, file->path, &error);
		if (entry == NULL && action != QM_DELETE) {
			fprintf(stderr, "imsimta qm %s: %s: %s\n", verb, file->path, error->message);
			status = g_error_matches(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_NOT_FOUND)
					 ? EXIT_DATAERR : EXIT_IOERR;
			continue;
		}
		if (entry == NULL) {
			/* A malformed file can still be deleted: that is often why
			 * the administrator is here. */
			g_autofree char *path = g_build_filename(imta_queue_root(ctx->queue),
								 file->path, NULL);

			g_clear_error(&error);
			ok = g_unlink(path) == 0;
			if (!ok)
				g_set_error(&error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_IO,
					    "cannot remove %s: %s", path, g_strerror(errno));
		} else if (action == QM_DELETE)
			ok = imta_queue_entry_delete(ctx->queue, entry, &error);
		else if (action == QM_HOLD)
			ok = imta_queue_entry_hold(ctx->queue, entry, &error);
		else
			ok = imta_queue_entry_release(ctx->queue, entry, &error);
		if (!ok) {
			fprintf(stderr, "imsimta qm %s: %s: %s\n", verb, file->path, error->message);
			status = EXIT_IOERR;
			continue;
		}
		printf("%s %s (%s)\n", done[action], file->id,
		       entry != NULL && action != QM_DELETE ? entry->path : file->path);
		if (action == QM_RELEASE)
			qm_tell_controller(ctx, entry);
		changed++;
	}
	if (ctx->all)
		printf("%u message%s %s.\n", changed, changed == 1 ? "" : "s",
		       action == QM_DELETE ? "deleted" : action == QM_HOLD ? "held" : "released");
	return status != 0 ? status : missing > 0 ? EXIT_DATAERR : 0;
}

/* Move messages to the reprocess channel (qm_reprocess.c), which routes
 * them again when its master job runs. */
static int
qm_reprocess(const QmContext *ctx)
{
	const ImtaChannel *target = imta_cnf_channel_by_name(ctx->config->cnf,
							     QM_REPROCESS_CHANNEL);
	guint missing = 0, moved = 0;
	int status = 0;
	g_autoptr(GPtrArray) files = NULL;

	if (ctx->ids->len == 0 && !ctx->all) {
		fprintf(stderr, "imsimta qm reprocess: expected queue ids or -all\n");
		return EXIT_USAGE;
	}
	if (ctx->ids->len > 0 && ctx->all) {
		fprintf(stderr, "imsimta qm reprocess: give queue ids or -all, not both\n");
		return EXIT_USAGE;
	}
	if (target == NULL) {
		fprintf(stderr, "imsimta qm reprocess: no channel %s in %s; add one "
			"(reprocess(8))\n", QM_REPROCESS_CHANNEL, ctx->config->cnf->path);
		return EXIT_CONFIG;
	}
	files = qm_select(ctx, "reprocess", &missing, &status);
	if (files == NULL)
		return status;
	for (guint i = 0; i < files->len; i++) {
		const QmFile *file = files->pdata[i];
		const ImtaChannel *from = imta_cnf_channel_by_name(ctx->config->cnf, file->channel);
		g_autoptr(GError) error = NULL;
		g_autofree char *new_id = NULL;

		if (strcmp(file->channel, target->name) == 0) {
			if (!ctx->all)
				printf("%s (%s) is already queued to %s\n", file->id, file->path,
				       target->name);
			continue;
		}
		/* -all leaves what the administrator held alone; the hold
		 * channel's messages are held by design and move. */
		if (ctx->all && file->held && !imta_channel_holds_mail(from))
			continue;
		if (!cli_qm_move(ctx->queue, file->path, from, target, &new_id, &error)) {
			fprintf(stderr, "imsimta qm reprocess: %s: %s\n", file->path,
				error->message);
			status = g_error_matches(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_LIMIT)
					 ? EXIT_DATAERR : EXIT_IOERR;
			continue;
		}
		if (new_id != NULL)
			printf("Reprocessing %s (%s) as %s\n", file->id, file->path, new_id);
		else
			printf("Removed %s (%s): no recipient was pending\n", file->id, file->path);
		moved++;
	}
	if (ctx->all)
		printf("%u message%s moved to %s.\n", moved, moved == 1 ? "" : "s", target->name);
	return status != 0 ? status : missing > 0 ? EXIT_DATAERR : 0;
}

/* ---- the command line ----------------------------------------------------- */

static gboolean
qm_parse(int argc, char **argv, QmContext *ctx, const char *sub)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (g_str_has_prefix(arg, "-channel="))
			ctx->channel = arg + strlen("-channel=");
		else if (strcmp(arg, "-all") == 0)
			ctx->all = TRUE;
		else if (strcmp(arg, "-held") == 0)
			ctx->held_only = TRUE;
		else if (strcmp(arg, "-envelope") == 0)
			ctx->envelope_only = TRUE;
		else if (strcmp(arg, "-noconfirm") == 0)
			ctx->noconfirm = TRUE;
		else if (strcmp(arg, "-confirm") == 0)
			ctx->noconfirm = FALSE;
		else if (arg[0] == '-') {
			fprintf(stderr, "imsimta qm %s: unknown option %s\n", sub, arg);
			return FALSE;
		} else
			g_ptr_array_add(ctx->ids, (gpointer)arg);
	}
	if (ctx->channel != NULL &&
	    imta_cnf_channel_by_name(ctx->config->cnf, ctx->channel) == NULL) {
		fprintf(stderr, "imsimta qm %s: no channel %s in %s\n", sub, ctx->channel,
			ctx->config->cnf->path);
		return FALSE;
	}
	return TRUE;
}

/* One subcommand; argv[0] is its name. */
static int
qm_run(const ImtaConfig *config, ImtaQueue *queue, int argc, char **argv)
{
	g_autoptr(GPtrArray) ids = g_ptr_array_new();
	QmContext ctx = { config, queue, NULL, FALSE, FALSE, FALSE, FALSE, ids };
	const char *sub = argv[0];
	gboolean takes_ids;

	if (!qm_parse(argc, argv, &ctx, sub))
		return EXIT_USAGE;
	takes_ids = strcmp(sub, "read") == 0 || strcmp(sub, "history") == 0 ||
		    strcmp(sub, "delete") == 0 || strcmp(sub, "hold") == 0 ||
		    strcmp(sub, "release") == 0 || strcmp(sub, "reprocess") == 0;
	if (!takes_ids && (ids->len > 0 || ctx.all)) {
		fprintf(stderr, "imsimta qm %s: takes no queue ids\n", sub);
		return EXIT_USAGE;
	}
	if (strcmp(sub, "directory") == 0 || strcmp(sub, "dir") == 0)
		return qm_directory(&ctx, ctx.held_only);
	if (strcmp(sub, "held") == 0)
		return qm_directory(&ctx, TRUE);
	if (strcmp(sub, "summary") == 0)
		return qm_summary(&ctx);
	if (strcmp(sub, "read") == 0)
		return qm_read(&ctx);
	if (strcmp(sub, "history") == 0)
		return qm_history(&ctx);
	if (strcmp(sub, "delete") == 0)
		return qm_act(&ctx, QM_DELETE);
	if (strcmp(sub, "hold") == 0)
		return qm_act(&ctx, QM_HOLD);
	if (strcmp(sub, "release") == 0)
		return qm_act(&ctx, QM_RELEASE);
	if (strcmp(sub, "reprocess") == 0)
		return qm_reprocess(&ctx);
	fprintf(stderr, "imsimta qm: unknown subcommand \"%s\" (imsimta qm --help lists them)\n",
		sub);
	return EXIT_USAGE;
}

static int
qm_interactive(const ImtaConfig *config, ImtaQueue *queue)
{
	char line[QM_MAX_INTERACTIVE_LINE];
	gboolean tty = isatty(STDIN_FILENO);
	int status = 0;

	for (;;) {
		g_auto(GStrv) words = NULL;
		g_autoptr(GError) error = NULL;
		int n;

		if (tty) {
			printf("qm.maint> ");
			fflush(stdout);
		}
		if (fgets(line, sizeof line, stdin) == NULL)
			break;
		g_strstrip(line);
		if (line[0] == '\0' || line[0] == '!')
			continue;
		if (strcmp(line, "exit") == 0 || strcmp(line, "quit") == 0)
			break;
		if (strcmp(line, "help") == 0 || strcmp(line, "?") == 0) {
			fputs(qm_help, stdout);
			continue;
		}
		if (!g_shell_parse_argv(line, &n, &words, &error)) {
			fprintf(stderr, "imsimta qm: %s\n", error->message);
			status = EXIT_USAGE;
			continue;
		}
		status = qm_run(config, queue, n, words);
		fflush(stdout);
	}
	if (tty)
		printf("\n");
	return status;
}

int
cli_qm(const CliGlobal *global, int argc, char **argv)
{
	g_autoptr(ImtaConfig) config = NULL;
	g_autoptr(ImtaQueue) queue = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *notify = NULL;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "-help") == 0) {
			fputs(qm_help, stdout);
			return 0;
		}
	/* Plugins are not loaded: the queue manager must work even when a
	 * plugin is refused. */
	config = cli_load_config(global, 0);
	if (config == NULL)
		return EXIT_CONFIG;
	notify = g_build_filename(config->tailor->run_dir, IMTA_JC_NOTIFY_SOCKET, NULL);
	queue = imta_queue_open(config->tailor->queue_dir, config->cnf, notify, &error);
	if (queue == NULL) {
		fprintf(stderr, "imsimta qm: %s\n", error->message);
		return EXIT_UNAVAILABLE;
	}
	if (argc < 2)
		return qm_interactive(config, queue);
	return qm_run(config, queue, argc - 1, argv + 1);
}
