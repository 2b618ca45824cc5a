/*
 * testchannel.c - a channel whose outcome the recipient chooses, for the
 * scheduling tests: local parts starting with "defer" are retried, with
 * "fail" fail permanently, with "reject" fail permanently as if a remote
 * server had refused them (the diagnostic names it and gives its SMTP
 * reply), with "slow" take half a second, and everything else is
 * delivered.  Each outcome is appended as a line "<milliseconds>
 * <id> <address> <D|Q|F>" to the file named by the keyword's argument, so
 * a test can time attempts and count duplicates.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <imta/imta.h>

static const ImtaPluginKeyword testchannel_keywords[] = {
	{ "testchannel", 1, 1, "record outcomes chosen by the recipient in this file" },
	{ NULL }
};

static ImtaOutcome
testchannel_outcome(const char *address, const char **diagnostic_r)
{
	if (g_str_has_prefix(address, "reject")) {
		*diagnostic_r = "remote mx.test.example [192.0.2.25] said: 550 5.1.1 no such "
				"mailbox here";
		return IMTA_OUTCOME_FAILED;
	}
	if (g_str_has_prefix(address, "defer")) {
		*diagnostic_r = "4.2.0 deferred by the test channel";
		return IMTA_OUTCOME_RETRY;
	}
	if (g_str_has_prefix(address, "fail")) {
		*diagnostic_r = "5.1.1 refused by the test channel";
		return IMTA_OUTCOME_FAILED;
	}
	if (g_str_has_prefix(address, "slow"))
		g_usleep(G_USEC_PER_SEC / 2);
	*diagnostic_r = "2.0.0 accepted by the test channel";
	return IMTA_OUTCOME_DELIVERED;
}

static gboolean
testchannel_record(const char *path, const char *line)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	gboolean ok;

	if (fd < 0)
		return FALSE;
	ok = write(fd, line, strlen(line)) == (ssize_t)strlen(line) && fsync(fd) == 0;
	close(fd);
	return ok;
}

static void
testchannel_deliver(ImtaMasterJob *job, ImtaMessage *msg, gpointer data)
{
	const char *path = data;

	for (guint i = 0; i < imta_message_recipient_count(msg); i++) {
		const char *address = imta_message_recipient(msg, i)->address;
		const char *diagnostic;
		ImtaOutcome outcome = testchannel_outcome(address, &diagnostic);
		g_autofree char *line = g_strdup_printf("%" G_GINT64_FORMAT " %s %s %c\n",
						       g_get_real_time() / 1000, imta_message_id(msg),
						       address,
						       outcome == IMTA_OUTCOME_DELIVERED ? 'D' :
						       outcome == IMTA_OUTCOME_FAILED ? 'F' : 'Q');

		if (!testchannel_record(path, line)) {
			outcome = IMTA_OUTCOME_RETRY;
			diagnostic = "4.3.0 cannot record the outcome";
		}
		imta_master_job_report(job, msg, i, outcome, diagnostic);
	}
}

static ImtaEntryStatus
testchannel_master(ImtaMasterJob *job)
{
	const char *const *path = imta_channel_keyword(imta_master_job_channel(job), "testchannel");

	return imta_master_job_each(job, testchannel_deliver, (gpointer)path[0]);
}

IMTA_PLUGIN_DEFINE(
	.name = "testchannel",
	.version = "1",
	.description = "outcomes chosen by the recipient, for tests",
	.keywords = testchannel_keywords,
	.master = testchannel_master,
);
