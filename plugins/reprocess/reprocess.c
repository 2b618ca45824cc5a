/*
 * reprocess.c - the reprocess channel: every message queued to it is
 * routed again, as a fresh enqueue would route it, and queued onward.
 *
 * Each pending recipient's address goes through the rewrite rules (and,
 * through $V / $Z, the directory) once more, with this channel as the
 * source channel, so templates can tell ($1M / $1N, $M / $N) that the
 * message is being reprocessed.  Alias and delivery-option expansion is
 * not done here: it is the work of the channel a recipient lands on (the
 * local channel l for local domains), which then reads the directory as
 * it is now.  The routing is recomputed, never taken from the old queue
 * file, so mail queued before a change of the rewrite rules or of the
 * directory follows the change.
 *
 * One new message is queued with the old envelope (return path, ENVID,
 * RET, priority, and each recipient's ORCPT and NOTIFY) and content; the
 * enqueue writes one queue file per destination channel.  Only once those
 * files are durable are the recipients reported done, so a crash at any
 * point leaves every recipient queued onward, or still queued here, or
 * (a crash between the two) both: a duplicate, never a loss.
 *
 * Outcomes: a recipient that no longer routes fails (and the sender gets
 * a failure notice); a directory that cannot answer, or a rule that sends
 * the address back to this channel, leaves it queued here for a retry.
 * Routed recipients are reported as relayed: their DSN request travels
 * with them, and a success notice is the final channel's to send.
 *
 * The hold channel is bound to this plugin as well: a held message that
 * the administrator releases is routed again from the address without
 * its "@hold-daemon:" route.
 */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

#include <imta/imta.h>

/* Longest list of new queue files written in the log. */
#define REPROCESS_MAX_LOGGED 400

static const ImtaPluginKeyword reprocess_keywords[] = {
	{ "reprocess", 0, 0, "route queued messages again through the rewrite rules and the "
			     "directory, and queue them onward" },
	{ NULL }
};

typedef struct {
	ImtaMasterJob *job;
	const ImtaConfig *config;
	const ImtaChannel *channel;
	ImtaQueue *queue;             /* opened on first use */
} ReprocessJob;

/* Where one recipient goes now. */
typedef struct {
	ImtaOutcome outcome;          /* DELIVERED: routed, queued with the new message */
	ImtaRoute route;
	char *diagnostic;             /* RETRY / FAILED: why */
} ReprocessTarget;

static void
reprocess_target_clear(ReprocessTarget *target)
{
	imta_route_clear(&target->route);
	g_clear_pointer(&target->diagnostic, g_free);
}

/* The keyword that made the channel slave-only, for pointing an error at. */
static const ImtaKeywordUse *
reprocess_slave_keyword(const ImtaChannel *channel)
{
	for (guint i = channel->keywords->len; i > 0; i--) {
		const ImtaKeywordUse *use = g_ptr_array_index(channel->keywords, i - 1);

		if (strcmp(use->name, "slave") == 0)
			return use;
	}
	return NULL;
}

/* The channel only has a master program: a slave-only reprocess channel
 * would collect mail no job ever takes. */
static gboolean
reprocess_validate_channel(const ImtaChannel *channel, GError **error)
{
	const ImtaKeywordUse *use;
	g_autofree char *where = NULL;

	if (channel->direction != IMTA_DIRECTION_SLAVE)
		return TRUE;
	use = reprocess_slave_keyword(channel);
	where = imta_source_pos_format(use != NULL ? &use->pos : &channel->pos);
	g_set_error(error, IMTA_PLUGIN_ERROR, IMTA_PLUGIN_ERROR_INVALID,
		    "%s: channel \"%s\" is marked slave, but the reprocess channel only has a "
		    "master program, so mail queued to it would never leave; remove \"slave\"",
		    where, channel->name);
	return FALSE;
}

static void
reprocess_route(ReprocessJob *rj, const char *queued, ReprocessTarget *target)
{
	g_autoptr(GError) error = NULL;
	ImtaRouteContext ctx = { rj->config, rj->channel->name, NULL };
	/* A route through this channel's own host is how the mail came here
	 * (the hold channel's "@hold-daemon:"); routing starts after it. */
	g_autofree char *address = imta_route_strip_channel(rj->channel, queued);

	if (!imta_route_address(&ctx, address, &target->route, &error)) {
		target->outcome = imta_route_error_is_temporary(error) ? IMTA_OUTCOME_RETRY
								       : IMTA_OUTCOME_FAILED;
		target->diagnostic = imta_route_diagnostic(address, error);
		return;
	}
	if (target->route.channel == rj->channel) {
		/* A rule deferring to this channel again (a directory lookup
		 * that failed, DOMAIN_FAILURE style): wait, do not spin. */
		target->outcome = IMTA_OUTCOME_RETRY;
		target->diagnostic = g_strdup_printf("4.4.3 %s routes to the %s channel again",
						     address, rj->channel->name);
		imta_route_clear(&target->route);
		return;
	}
	target->outcome = IMTA_OUTCOME_DELIVERED;
}

static ImtaQueue *
reprocess_queue(ReprocessJob *rj, GError **error)
{
	if (rj->queue == NULL)
		rj->queue = imta_route_open_queue(rj->config, error);
	return rj->queue;
}

static void
reprocess_log_files(ReprocessJob *rj, ImtaMessage *msg, const ImtaForward *fwd)
{
	const char *const *files = imta_forward_files(fwd);
	g_autoptr(GString) list = g_string_new(NULL);

	for (guint i = 0; files != NULL && files[i] != NULL; i++) {
		if (list->len > REPROCESS_MAX_LOGGED) {
			g_string_append(list, " ...");
			break;
		}
		g_string_append_printf(list, "%s%s", i > 0 ? " " : "", files[i]);
	}
	imta_log(IMTA_LOG_INFO, "%s: message %s queued onward as %s", rj->channel->name,
		 imta_message_id(msg), list->str);
}

/* Queue the new message for every routed recipient.  TRUE when there was
 * nothing to queue, or it is durably queued. */
static gboolean
reprocess_enqueue(ReprocessJob *rj, ImtaMessage *msg, ReprocessTarget *targets, guint n,
		  GError **error)
{
	ImtaQueue *queue = reprocess_queue(rj, error);
	g_autoptr(ImtaForward) fwd = NULL;

	if (queue == NULL)
		return FALSE;
	fwd = imta_forward_new(queue, rj->channel->name, msg);
	for (guint i = 0; i < n; i++) {
		g_autoptr(GError) refused = NULL;

		if (targets[i].outcome != IMTA_OUTCOME_DELIVERED)
			continue;
		if (!imta_forward_add(fwd, i, targets[i].route.channel, targets[i].route.address,
				      &refused)) {
			/* A field over the queue's limits: this recipient only. */
			targets[i].outcome = IMTA_OUTCOME_FAILED;
			targets[i].diagnostic = g_strdup_printf(
				"5.3.0 %s cannot be queued: %s",
				imta_message_recipient(msg, i)->address, refused->message);
		}
	}
	if (imta_forward_count(fwd) == 0)
		return TRUE;
	if (!imta_forward_commit(fwd, error))
		return FALSE;
	reprocess_log_files(rj, msg, fwd);
	return TRUE;
}

static void
reprocess_report(ReprocessJob *rj, ImtaMessage *msg, guint i, const ReprocessTarget *target,
		 const GError *queue_error)
{
	g_autofree char *text = NULL;

	if (target->outcome != IMTA_OUTCOME_DELIVERED) {
		imta_master_job_report(rj->job, msg, i, target->outcome, target->diagnostic);
	} else if (queue_error != NULL) {
		text = g_strdup_printf("4.3.0 cannot queue the message onward: %s",
				       queue_error->message);
		imta_master_job_report(rj->job, msg, i, IMTA_OUTCOME_RETRY, text);
	} else {
		text = g_strdup_printf("2.0.0 routed again: %s on channel %s",
				       target->route.address, target->route.channel->name);
		imta_master_job_report_relayed(rj->job, msg, i, text);
	}
	imta_log(IMTA_LOG_INFO, "%s: message %s: %s: %s", rj->channel->name, imta_message_id(msg),
		 imta_message_recipient(msg, i)->address,
		 imta_message_recipient(msg, i)->diagnostic);
}

/* Test hook: with IMTA_TEST_CRASH_AFTER_ONWARD naming an existing file,
 * the job removes that file and kills itself with SIGKILL once a message
 * is durably queued onward and before its recipients are reported: the
 * one window where a crash makes a duplicate (once per file).  Documented
 * in reprocess(8) as a test hook. */
static void
reprocess_test_crash_point(void)
{
	const char *flag = g_getenv("IMTA_TEST_CRASH_AFTER_ONWARD");

	if (flag != NULL && flag[0] != '\0' && g_unlink(flag) == 0)
		kill(getpid(), SIGKILL);
}

static void
reprocess_message(ImtaMasterJob *job, ImtaMessage *msg, gpointer data)
{
	ReprocessJob *rj = data;
	guint n = imta_message_recipient_count(msg);
	ReprocessTarget *targets = g_new0(ReprocessTarget, n);
	g_autoptr(GError) error = NULL;
	gboolean queued;

	for (guint i = 0; i < n; i++)
		reprocess_route(rj, imta_message_recipient(msg, i)->address, &targets[i]);
	queued = reprocess_enqueue(rj, msg, targets, n, &error);
	if (!queued)
		imta_log(IMTA_LOG_ERROR, "%s: message %s: %s", rj->channel->name,
			 imta_message_id(msg), error->message);
	else
		reprocess_test_crash_point();
	for (guint i = 0; i < n; i++) {
		reprocess_report(rj, msg, i, &targets[i], queued ? NULL : error);
		reprocess_target_clear(&targets[i]);
	}
	g_free(targets);
}

static ImtaEntryStatus
reprocess_master(ImtaMasterJob *job)
{
	ReprocessJob rj = {
		.job = job,
		.config = imta_master_job_config(job),
		.channel = imta_master_job_channel(job),
	};
	ImtaEntryStatus status;

	if (rj.config == NULL || rj.channel == NULL) {
		imta_log(IMTA_LOG_ERROR, "reprocess: the job has no configuration or channel");
		return IMTA_ENTRY_SOFTWARE;
	}
	/* Mail is reprocessed because routing data changed: answers cached
	 * before the change must not decide. */
	if (rj.config->directory != NULL)
		imta_directory_flush(rj.config->directory);
	status = imta_master_job_each(job, reprocess_message, &rj);
	g_clear_pointer(&rj.queue, imta_queue_close);
	return status;
}

IMTA_PLUGIN_DEFINE(
	.name = "reprocess",
	.version = PACKAGE_VERSION,
	.description = "routes queued messages again and queues them onward",
	.keywords = reprocess_keywords,
	.validate_channel = reprocess_validate_channel,
	.master = reprocess_master,
);
