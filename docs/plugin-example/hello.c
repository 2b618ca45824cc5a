/*
 * hello.c - the "hello" channel: a complete channel plugin built outside
 * the MTA's source tree, against the installed headers only.
 *
 * Every message queued to a channel bound to this plugin is delivered by
 * appending one line per recipient to a file: the one the channel's
 * `hellofile` keyword names, else hello.log in the instance's log
 * directory (IMTA_LOG in imta_tailor):
 *
 *   2026-11-22T10:01:02Z ZZ0F7O00I03CJHZD alice@example.org -> bob@example.com
 *
 * that is: the time, the message id, the envelope return path ("<>" for
 * the null path), and the recipient.  A channel is bound to the plugin by
 * the keyword `hello` or `hellofile`, or by being named `hello`:
 *
 *   hello hellofile /var/spool/hello/delivered.log
 *   hello-daemon
 *
 * and mail reaches it through a rewrite rule naming its host:
 *
 *   hello.example.com  $U%$D@hello-daemon
 *
 * Build and install with the Makefile beside this file; imta-plugin(3)
 * walks through the code.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <imta/imta.h>

#define HELLO_VERSION "1.0"
#define HELLO_LOG_NAME "hello.log"

static const ImtaPluginKeyword hello_keywords[] = {
	{ "hello", 0, 0, "append one line per recipient to a file instead of delivering" },
	{ "hellofile", 1, 1, "the file the hello channel appends to (default: hello.log in "
			     "the log directory)" },
	{ NULL, 0, 0, NULL }
};

/* The keyword that set the channel's direction (master, slave or
 * bidirectional), for pointing an error at it; NULL when none did. */
static const ImtaKeywordUse *
hello_direction_keyword(const ImtaChannel *channel)
{
	static const char *const names[] = { "master", "slave", "bidirectional", NULL };

	for (guint i = channel->keywords->len; i > 0; i--) {
		const ImtaKeywordUse *use = g_ptr_array_index(channel->keywords, i - 1);

		if (g_strv_contains(names, use->name))
			return use;
	}
	return NULL;
}

/* The keyword use of `name`, for pointing an error at its argument. */
static const ImtaKeywordUse *
hello_keyword_use(const ImtaChannel *channel, const char *name)
{
	for (guint i = channel->keywords->len; i > 0; i--) {
		const ImtaKeywordUse *use = g_ptr_array_index(channel->keywords, i - 1);

		if (strcmp(use->name, name) == 0)
			return use;
	}
	return NULL;
}

/* `hellofile` must name an absolute path: master jobs do not run in the
 * directory the administrator edits imta.cnf from. */
static gboolean
hello_check_file(const ImtaChannel *channel, GError **error)
{
	const ImtaKeywordUse *use = hello_keyword_use(channel, "hellofile");
	g_autofree char *where = NULL;

	if (use == NULL || g_path_is_absolute(use->args[0]))
		return TRUE;
	where = imta_source_pos_format(&use->arg_pos[0]);
	g_set_error(error, IMTA_PLUGIN_ERROR, IMTA_PLUGIN_ERROR_INVALID,
		    "%s: expected an absolute path after hellofile in channel \"%s\", got \"%s\"",
		    where, channel->name, use->args[0]);
	return FALSE;
}

/* The plugin has only a master program.  A channel restricted to its slave
 * program (keyword `slave`) would let mail be queued to it that no master
 * job ever takes: refuse it when the configuration is loaded rather than
 * let its queue grow unnoticed. */
static gboolean
hello_validate_channel(const ImtaChannel *channel, GError **error)
{
	const ImtaKeywordUse *use;
	g_autofree char *where = NULL;

	if (!hello_check_file(channel, error))
		return FALSE;
	if (channel->direction != IMTA_DIRECTION_SLAVE)
		return TRUE;
	use = hello_direction_keyword(channel);
	where = imta_source_pos_format(use != NULL ? &use->pos : &channel->pos);
	g_set_error(error, IMTA_PLUGIN_ERROR, IMTA_PLUGIN_ERROR_INVALID,
		    "%s: channel \"%s\" is marked slave, but the hello plugin has only a "
		    "master program, so mail queued to it would never leave; remove \"slave\"",
		    where, channel->name);
	return FALSE;
}

/* The lines of one message, all with the same time stamp. */
static GString *
hello_format_message(const ImtaMessage *msg)
{
	g_autoptr(GDateTime) now = g_date_time_new_now_utc();
	g_autofree char *stamp = g_date_time_format(now, "%Y-%m-%dT%H:%M:%SZ");
	const char *return_path = imta_message_return_path(msg);
	GString *text = g_string_new(NULL);

	for (guint i = 0; i < imta_message_recipient_count(msg); i++) {
		const ImtaRecipient *rcpt = imta_message_recipient(msg, i);

		g_string_append_printf(text, "%s %s %s -> %s\n", stamp, imta_message_id(msg),
				       *return_path != '\0' ? return_path : "<>", rcpt->address);
	}
	return text;
}

/* Append `text` to `path` and make it durable before anything is reported
 * delivered.  One write() per message: with O_APPEND the lines of jobs
 * running at the same time on other threads or processes do not mix. */
static gboolean
hello_append(const char *path, const GString *text, GError **error)
{
	gsize done = 0;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	int saved;

	if (fd < 0)
		goto fail;
	while (done < text->len) {
		ssize_t n = write(fd, text->str + done, text->len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		done += (gsize)n;
	}
	if (fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	return TRUE;
fail:
	saved = errno;
	g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved), "%s: %s", path,
		    g_strerror(saved));
	if (fd >= 0)
		close(fd);
	return FALSE;
}

static void
hello_report_all(ImtaMasterJob *job, ImtaMessage *msg, ImtaOutcome outcome,
		 const char *diagnostic)
{
	for (guint i = 0; i < imta_message_recipient_count(msg); i++)
		imta_master_job_report(job, msg, i, outcome, diagnostic);
}

/* Log one message; every recipient is delivered, or every recipient is
 * retried later when the file cannot be written. */
static void
hello_deliver(ImtaMasterJob *job, ImtaMessage *msg, gpointer data)
{
	const char *path = data;
	g_autoptr(GString) text = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *diagnostic = NULL;

	if (path == NULL) {
		hello_report_all(job, msg, IMTA_OUTCOME_RETRY,
				 "4.3.5 the hello channel has no log directory");
		return;
	}
	text = hello_format_message(msg);
	if (!hello_append(path, text, &error)) {
		diagnostic = g_strdup_printf("4.3.0 cannot write %s", error->message);
		imta_log(IMTA_LOG_WARNING, "hello: message %s: %s", imta_message_id(msg),
			 diagnostic);
		hello_report_all(job, msg, IMTA_OUTCOME_RETRY, diagnostic);
		return;
	}
	hello_report_all(job, msg, IMTA_OUTCOME_DELIVERED,
			 "2.0.0 logged by the hello channel");
}

static ImtaEntryStatus
hello_master(ImtaMasterJob *job)
{
	const ImtaConfig *config = imta_master_job_config(job);
	const char *const *file = imta_channel_keyword(imta_master_job_channel(job), "hellofile");
	g_autofree char *path = NULL;

	if (file != NULL)
		path = g_strdup(file[0]);
	else if (config != NULL && config->tailor != NULL && config->tailor->log_dir != NULL)
		path = g_build_filename(config->tailor->log_dir, HELLO_LOG_NAME, NULL);
	/* The outcomes of each message are durable before the next is asked
	 * for; a failing queue ends the job as a temporary failure. */
	return imta_master_job_each(job, hello_deliver, path);
}

IMTA_PLUGIN_DEFINE(
	.name = "hello",
	.version = HELLO_VERSION,
	.description = "appends one line per recipient to a file (example plugin)",
	.keywords = hello_keywords,
	.validate_channel = hello_validate_channel,
	.master = hello_master,
);
