/*
 * test-master.c - the master job: its decisions (retry delay, expiry by
 * the notices ages, the DONE line, the reply to NEXT), its job controller
 * client against a scripted controller, and the queue source end to end
 * over a real queue.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/imta.h>
#include <imta/queue.h>
#include <imta/jc_client.h>
#include "master/queue_source.h"

#define DAY 86400
#define HOUR 3600
#define T0 1800000000

/* ---- notices expiry ------------------------------------------------- */

static const struct {
	const char *name;
	gint64 age;          /* seconds since created */
	gint ages[IMTA_MAX_NOTICES];
	guint n_ages;
	gint64 return_units;
	gboolean expired;
} expiry_rows[] = {
	{ "young, days", 2 * DAY, { 1, 2, 4, 7 }, 4, 0, FALSE },
	{ "just under the last age", 7 * DAY - 1, { 1, 2, 4, 7 }, 4, 0, FALSE },
	{ "exactly the last age", 7 * DAY, { 1, 2, 4, 7 }, 4, 0, TRUE },
	{ "older than the last age", 30 * DAY, { 1, 2, 4, 7 }, 4, 0, TRUE },
	{ "past a warning age only", 5 * DAY, { 1, 2, 4, 7 }, 4, 0, FALSE },
	{ "built-in 3 6 9 12", 12 * DAY, { 3, 6, 9, 12 }, 4, 0, TRUE },
	{ "built-in, day 11", 11 * DAY, { 3, 6, 9, 12 }, 4, 0, FALSE },
	{ "hours: 7 hours", 7 * HOUR, { 1, 2, 4, 7 }, 4, 1, TRUE },
	{ "hours: 6 hours 59 min", 7 * HOUR - 60, { 1, 2, 4, 7 }, 4, 1, FALSE },
	{ "days unit ignores hours", 7 * HOUR, { 1, 2, 4, 7 }, 4, 0, FALSE },
	{ "one age is the bounce", DAY, { 1 }, 1, 0, TRUE },
	{ "no ages: never", 1000 * DAY, { 0 }, 0, 0, FALSE },
	{ "clock went back", -DAY, { 1 }, 1, 0, FALSE },
};

static void
test_notices_expired(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(expiry_rows); i++) {
		g_test_message("row %s", expiry_rows[i].name);
		g_assert_cmpint(master_notices_expired(T0, T0 + expiry_rows[i].age,
						       expiry_rows[i].ages, expiry_rows[i].n_ages,
						       expiry_rows[i].return_units),
				==, expiry_rows[i].expired);
	}
}

static void
test_notices_unit(void)
{
	g_assert_cmpint(master_notices_unit(0), ==, DAY);
	g_assert_cmpint(master_notices_unit(1), ==, HOUR);
	/* Anything but 1 is days, as option.dat(5) documents. */
	g_assert_cmpint(master_notices_unit(2), ==, DAY);
}

/* ---- configuration for the rest ---------------------------------------- */

static const char test_cnf[] =
	"! rewrite rules\n"
	"bitbucket.example.com  $U%$D@bitbucket-daemon\n"
	"\n"
	"defaults notices 1 2 4 7\n"
	"\n"
	"l\n"
	"mail.example.com\n"
	"\n"
	"bitbucket\n"
	"bitbucket-daemon\n"
	"\n"
	"fast backoff \"pt10m\" \"pt1h\" normalbackoff \"pt5m\" \"pt15m\" \"p1d\"\n"
	"fast-daemon\n"
	"\n"
	"shortlived notices 2 5\n"
	"shortlived-daemon\n";

static ImtaCnf *
load_test_cnf(void)
{
	g_autoptr(GError) error = NULL;
	ImtaCnf *cnf = imta_cnf_parse_text("imta.cnf", test_cnf, strlen(test_cnf), NULL, &error);

	g_assert_no_error(error);
	g_assert_nonnull(cnf);
	return cnf;
}

/* ---- retry delay -------------------------------------------------------- */

static const struct {
	const char *channel;
	ImtaPriority priority;
	guint attempts;      /* before the attempt now ending */
	gint64 delay;
} delay_rows[] = {
	/* The documented default schedule (minutes 60 120 120 240 240 240 480). */
	{ "bitbucket", IMTA_PRIORITY_NORMAL, 0, 60 * 60 },
	{ "bitbucket", IMTA_PRIORITY_NORMAL, 1, 120 * 60 },
	{ "bitbucket", IMTA_PRIORITY_NORMAL, 3, 240 * 60 },
	{ "bitbucket", IMTA_PRIORITY_NORMAL, 6, 480 * 60 },
	{ "bitbucket", IMTA_PRIORITY_NORMAL, 50, 480 * 60 },
	{ "bitbucket", IMTA_PRIORITY_URGENT, 0, 30 * 60 },
	{ "bitbucket", IMTA_PRIORITY_NONURGENT, 6, 960 * 60 },
	{ "bitbucket", IMTA_PRIORITY_NORMAL, G_MAXUINT, 480 * 60 },
	/* normalbackoff wins for normal; backoff for the others. */
	{ "fast", IMTA_PRIORITY_NORMAL, 0, 5 * 60 },
	{ "fast", IMTA_PRIORITY_NORMAL, 1, 15 * 60 },
	{ "fast", IMTA_PRIORITY_NORMAL, 2, DAY },
	{ "fast", IMTA_PRIORITY_NORMAL, 9, DAY },
	{ "fast", IMTA_PRIORITY_URGENT, 0, 10 * 60 },
	{ "fast", IMTA_PRIORITY_NONURGENT, 1, HOUR },
	{ "fast", IMTA_PRIORITY_NONURGENT, 7, HOUR },
};

static void
test_retry_delay(void)
{
	g_autoptr(ImtaCnf) cnf = load_test_cnf();

	for (guint i = 0; i < G_N_ELEMENTS(delay_rows); i++) {
		const ImtaChannel *channel = imta_cnf_channel_by_name(cnf, delay_rows[i].channel);

		g_test_message("row %u: %s priority %d after %u attempts", i, delay_rows[i].channel,
			       delay_rows[i].priority, delay_rows[i].attempts);
		g_assert_nonnull(channel);
		g_assert_cmpint(master_retry_delay(channel, delay_rows[i].priority,
						   delay_rows[i].attempts),
				==, delay_rows[i].delay);
	}
}

/* ---- outcomes ------------------------------------------------------------ */

static ImtaMessage *
dummy_next(gpointer source, GError **error)
{
	return NULL;
}

static gboolean
dummy_finish(gpointer source, ImtaMessage *msg, GError **error)
{
	return TRUE;
}

static const ImtaMasterJobSource dummy_ops = { dummy_next, dummy_finish, NULL };

/* ---- the loop of imta_master_job_each ---------------------------------- */

/* A source of `messages` messages whose next() fails at call `fail_next`
 * and whose finish() fails at call `fail_finish` (0: never), saying why
 * unless `silent`. */
typedef struct {
	guint messages, fail_next, fail_finish;
	gboolean silent;
	guint nexts, finishes, delivered;
} EachSource;

static ImtaMessage *
each_next(gpointer source, GError **error)
{
	EachSource *src = source;
	g_autofree char *id = NULL;
	ImtaMessage *msg;

	if (++src->nexts == src->fail_next) {
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_IO, "next refused");
		return NULL;
	}
	if (src->nexts > src->messages)
		return NULL;
	id = g_strdup_printf("0SJX2K5A1B3C9F%02u", src->nexts);
	msg = imta_message_new(id, "ann@example.org");
	imta_message_add_recipient(msg, "bob@example.com", NULL, 0);
	return msg;
}

static gboolean
each_finish(gpointer source, ImtaMessage *msg, GError **error)
{
	EachSource *src = source;

	g_assert_cmpint(imta_message_recipient(msg, 0)->outcome, ==, IMTA_OUTCOME_DELIVERED);
	imta_message_free(msg);
	if (++src->finishes != src->fail_finish)
		return TRUE;
	if (!src->silent)
		g_set_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_IO, "finish refused");
	return FALSE;
}

static const ImtaMasterJobSource each_ops = { each_next, each_finish, NULL };

static void
each_deliver(ImtaMasterJob *job, ImtaMessage *msg, gpointer data)
{
	EachSource *src = data;

	src->delivered++;
	imta_master_job_report(job, msg, 0, IMTA_OUTCOME_DELIVERED, "2.0.0 ok");
}

static const struct {
	EachSource source;
	ImtaEntryStatus status;
	guint nexts, finishes;
} each_rows[] = {
	{ { 3, 0, 0, FALSE }, IMTA_ENTRY_OK, 4, 3 },
	{ { 0, 0, 0, FALSE }, IMTA_ENTRY_OK, 1, 0 },
	{ { 3, 2, 0, FALSE }, IMTA_ENTRY_TEMPFAIL, 2, 1 },
	{ { 3, 0, 2, FALSE }, IMTA_ENTRY_TEMPFAIL, 2, 2 },
	{ { 3, 0, 1, TRUE }, IMTA_ENTRY_TEMPFAIL, 1, 1 },
};

/* Each message is delivered and finished before the next is asked for;
 * the first failure of the source ends the job as a temporary one. */
static void
test_job_each(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(each_rows); i++) {
		EachSource src = each_rows[i].source;
		g_autoptr(ImtaMasterJob) job = imta_master_job_new(NULL, NULL, &each_ops, &src);

		g_test_message("row %u", i);
		g_assert_cmpint(imta_master_job_each(job, each_deliver, &src), ==,
				each_rows[i].status);
		g_assert_cmpuint(src.nexts, ==, each_rows[i].nexts);
		g_assert_cmpuint(src.finishes, ==, each_rows[i].finishes);
		g_assert_cmpuint(src.delivered, ==, each_rows[i].finishes);
	}
}

static const struct {
	ImtaOutcome before;
	const char *diagnostic;
	ImtaOutcome after;
	const char *after_diagnostic;
} expire_rows[] = {
	{ IMTA_OUTCOME_DELIVERED, "2.0.0 ok", IMTA_OUTCOME_DELIVERED, "2.0.0 ok" },
	{ IMTA_OUTCOME_FAILED, "5.1.1 no such user", IMTA_OUTCOME_FAILED, "5.1.1 no such user" },
	{ IMTA_OUTCOME_RETRY, "4.2.2 mailbox full", IMTA_OUTCOME_FAILED,
	  "4.4.7 message expired; last error: 4.2.2 mailbox full" },
	{ IMTA_OUTCOME_NONE, NULL, IMTA_OUTCOME_FAILED, "4.4.7 message expired" },
	{ IMTA_OUTCOME_RETRY, "", IMTA_OUTCOME_FAILED, "4.4.7 message expired" },
};

static void
test_expire_pending(void)
{
	g_autoptr(ImtaMasterJob) job = imta_master_job_new(NULL, NULL, &dummy_ops, NULL);
	g_autoptr(ImtaMessage) msg = imta_message_new("0SJX2K5A1B3C9FQW", "ann@example.org");
	guint delivered, failed, retry;

	for (guint i = 0; i < G_N_ELEMENTS(expire_rows); i++) {
		g_autofree char *address = g_strdup_printf("r%u@example.com", i);

		imta_message_add_recipient(msg, address, NULL, 0);
		if (expire_rows[i].before != IMTA_OUTCOME_NONE)
			imta_master_job_report(job, msg, i, expire_rows[i].before,
					       expire_rows[i].diagnostic);
	}
	master_count_outcomes(msg, &delivered, &failed, &retry);
	g_assert_cmpuint(delivered, ==, 1);
	g_assert_cmpuint(failed, ==, 1);
	g_assert_cmpuint(retry, ==, 3);
	g_assert_cmpuint(master_expire_pending(job, msg), ==, 3);
	for (guint i = 0; i < G_N_ELEMENTS(expire_rows); i++) {
		const ImtaRecipient *rcpt = imta_message_recipient(msg, i);

		g_assert_cmpint(rcpt->outcome, ==, expire_rows[i].after);
		g_assert_cmpstr(rcpt->diagnostic, ==, expire_rows[i].after_diagnostic);
	}
	master_count_outcomes(msg, &delivered, &failed, &retry);
	g_assert_cmpuint(delivered, ==, 1);
	g_assert_cmpuint(failed, ==, 4);
	g_assert_cmpuint(retry, ==, 0);
	/* Nothing is left to expire. */
	g_assert_cmpuint(master_expire_pending(job, msg), ==, 0);
}

static void
test_outcome_codes(void)
{
	g_assert_cmpint(master_outcome_code(IMTA_OUTCOME_DELIVERED), ==, 'D');
	g_assert_cmpint(master_outcome_code(IMTA_OUTCOME_FAILED), ==, 'R');
	g_assert_cmpint(master_outcome_code(IMTA_OUTCOME_RETRY), ==, 'Q');
	g_assert_cmpint(master_outcome_code(IMTA_OUTCOME_NONE), ==, 'Q');
}

static const struct {
	goffset size;
	gint64 block_size;
	gint64 blocks;
} block_rows[] = {
	{ 0, 1024, 0 }, { 1, 1024, 1 }, { 1024, 1024, 1 }, { 1025, 1024, 2 },
	{ 3 * 1024 * 1024, 1024, 3072 }, { 100, 0, 1 }, { 4096, 512, 8 },
};

static void
test_blocks(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(block_rows); i++)
		g_assert_cmpint(master_blocks(block_rows[i].size, block_rows[i].block_size), ==,
				block_rows[i].blocks);
}

/* ---- protocol lines -------------------------------------------------------- */

static void
test_done_line(void)
{
	static const struct {
		const char *path, *new_path;
		guint d, f, r;
		gint64 next;
		const char *line;
	} rows[] = {
		{ "bitbucket/ZZ0SJX2K5A1B3C9FQW.00", "bitbucket/ZY0SJX2K5A1B3C9FQW.00", 1, 0, 2,
		  1800003600,
		  "DONE bitbucket/ZZ0SJX2K5A1B3C9FQW.00 bitbucket/ZY0SJX2K5A1B3C9FQW.00 1 0 2 "
		  "1800003600" },
		{ "ims-ms/003/ZY0SJX2K5A1B3C9FQW.00", NULL, 3, 1, 0, 1800003600,
		  "DONE ims-ms/003/ZY0SJX2K5A1B3C9FQW.00 - 3 1 0 0" },
		{ "odd channel/ZZ0SJX2K5A1B3C9FQW.00", "odd+chan/ZY0SJX2K5A1B3C9FQW.00", 0, 0, 1, 5,
		  "DONE odd+20channel/ZZ0SJX2K5A1B3C9FQW.00 odd+2Bchan/ZY0SJX2K5A1B3C9FQW.00 0 0 1 5" },
	};

	for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *line = master_done_line(rows[i].path, rows[i].new_path, rows[i].d,
							 rows[i].f, rows[i].r, rows[i].next);

		g_assert_cmpstr(line, ==, rows[i].line);
	}
}

static const struct {
	const char *line;
	gboolean ok;
	MasterReply reply;
	const char *path;
	gboolean more;
} next_rows[] = {
	{ "EXIT", TRUE, MASTER_REPLY_EXIT, NULL, FALSE },
	{ "NONE", TRUE, MASTER_REPLY_NONE, NULL, FALSE },
	{ "MSG bitbucket/ZZ0SJX2K5A1B3C9FQW.00", TRUE, MASTER_REPLY_MSG,
	  "bitbucket/ZZ0SJX2K5A1B3C9FQW.00", FALSE },
	{ "MSG bitbucket/ZZ0SJX2K5A1B3C9FQW.00 MORE", TRUE, MASTER_REPLY_MSG,
	  "bitbucket/ZZ0SJX2K5A1B3C9FQW.00", TRUE },
	{ "MSG tcp_local/017/ZY0SJX2K5A1B3C9FQW.00", TRUE, MASTER_REPLY_MSG,
	  "tcp_local/017/ZY0SJX2K5A1B3C9FQW.00", FALSE },
	{ "MSG odd+20channel/ZZ0SJX2K5A1B3C9FQW.00 MORE", TRUE, MASTER_REPLY_MSG,
	  "odd channel/ZZ0SJX2K5A1B3C9FQW.00", TRUE },
	{ "MSG bitbucket/ZZ0SJX2K5A1B3C9FQW.00 MORE ", FALSE, 0, NULL, FALSE },
	{ "MSG bitbucket/ZZ0SJX2K5A1B3C9FQW.00 more", FALSE, 0, NULL, FALSE },
	{ "MSG bitbucket/ZZ0SJX2K5A1B3C9FQW.00  MORE", FALSE, 0, NULL, FALSE },
	{ "MSG MORE", FALSE, 0, NULL, FALSE },
	{ "MSG  MORE", FALSE, 0, NULL, FALSE },
	{ "MSG ../etc/ZZ0SJX2K5A1B3C9FQW.00", FALSE, 0, NULL },
	{ "MSG bitbucket/../ZZ0SJX2K5A1B3C9FQW.00", FALSE, 0, NULL },
	{ "MSG /var/queue/bitbucket/ZZ0SJX2K5A1B3C9FQW.00", FALSE, 0, NULL },
	{ "MSG bitbucket//ZZ0SJX2K5A1B3C9FQW.00", FALSE, 0, NULL },
	{ "MSG ZZ0SJX2K5A1B3C9FQW.00", FALSE, 0, NULL },
	{ "MSG bitbucket/passwd", FALSE, 0, NULL },
	{ "MSG bitbucket/$tmp123", FALSE, 0, NULL },
	{ "MSG bitbucket/ZZ0SJX2K5A1B3C9FQW.00 extra", FALSE, 0, NULL },
	{ "MSG bitbucket/ZZ0SJX2K5A1B3C9FQW.00+2", FALSE, 0, NULL },
	{ "MSG bitbucket+2FZZ0SJX2K5A1B3C9FQW.00+00", FALSE, 0, NULL },
	{ "MSG ", FALSE, 0, NULL },
	{ "MSG", FALSE, 0, NULL },
	{ "EXIT now", FALSE, 0, NULL },
	{ "OK 1", FALSE, 0, NULL },
	{ "", FALSE, 0, NULL },
};

static void
test_next_reply(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(next_rows); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *path = NULL;
		MasterReply reply = 99;
		gboolean more = 99;
		gboolean ok = master_parse_next_reply(next_rows[i].line, &reply, &path, &more, &error);

		g_test_message("row \"%s\"", next_rows[i].line);
		g_assert_cmpint(ok, ==, next_rows[i].ok);
		if (!ok) {
			g_assert_error(error, IMTA_JC_ERROR, IMTA_JC_ERROR_PROTOCOL);
			g_assert_null(path);
			continue;
		}
		g_assert_no_error(error);
		g_assert_cmpint(reply, ==, next_rows[i].reply);
		g_assert_cmpstr(path, ==, next_rows[i].path);
		g_assert_cmpint(more, ==, next_rows[i].more);
	}
}

static void
test_next_reply_messages(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = NULL;
	MasterReply reply;
	gboolean more;

	g_assert_false(master_parse_next_reply("WAIT", &reply, &path, &more, &error));
	g_assert_cmpstr(error->message, ==,
			"expected \"MSG <path>\" or \"EXIT\" from the job controller, got \"WAIT\"");
	g_clear_error(&error);
	g_assert_false(master_parse_next_reply("MSG ../x/ZZ0SJX2K5A1B3C9FQW.00", &reply, &path,
					       &more, &error));
	g_assert_cmpstr(error->message, ==, "the job controller handed out an invalid queue path "
			"\"../x/ZZ0SJX2K5A1B3C9FQW.00\"");
}

/* ---- a scripted job controller ------------------------------------------- */

#define FAKE_CLOSE "\001close"    /* close the connection instead of replying */
#define FAKE_SILENT "\001silent"  /* never reply; wait for the client to go */

typedef struct {
	const char *expect;   /* a line to read first ('*' at the end: a prefix), or NULL */
	const char *reply;    /* text to send (lines with "\n"), FAKE_*, or NULL */
} FakeStep;

typedef struct {
	char *dir;
	int listen_fd;
	GThread *thread;
	const FakeStep *steps;
	guint n_steps;
	GPtrArray *received;  /* every line read */
	char *mismatch;       /* the first unexpected line, described */
} FakeJc;

static gboolean
fake_read_line(int fd, GString *line)
{
	char c;

	g_string_truncate(line, 0);
	for (;;) {
		ssize_t n = read(fd, &c, 1);

		if (n <= 0)
			return FALSE;
		if (c == '\n')
			return TRUE;
		g_string_append_c(line, c);
	}
}

static gboolean
fake_matches(const char *expect, const char *line)
{
	gsize len = strlen(expect);

	if (len > 0 && expect[len - 1] == '*')
		return strncmp(expect, line, len - 1) == 0;
	return strcmp(expect, line) == 0;
}

static gpointer
fake_thread(gpointer data)
{
	FakeJc *fake = data;
	g_autoptr(GString) line = g_string_new(NULL);
	int fd = accept(fake->listen_fd, NULL, NULL);

	if (fd < 0)
		return NULL;
	for (guint i = 0; i < fake->n_steps; i++) {
		const FakeStep *step = &fake->steps[i];

		if (step->expect != NULL) {
			if (!fake_read_line(fd, line)) {
				if (fake->mismatch == NULL)
					fake->mismatch = g_strdup_printf(
						"step %u: connection closed, expected %s", i,
						step->expect);
				break;
			}
			g_ptr_array_add(fake->received, g_strdup(line->str));
			if (!fake_matches(step->expect, line->str) && fake->mismatch == NULL)
				fake->mismatch = g_strdup_printf(
					"step %u: got \"%s\", expected \"%s\"", i, line->str,
					step->expect);
		}
		if (step->reply == NULL)
			continue;
		if (strcmp(step->reply, FAKE_CLOSE) == 0)
			break;
		if (strcmp(step->reply, FAKE_SILENT) == 0) {
			while (fake_read_line(fd, line))
				g_ptr_array_add(fake->received, g_strdup(line->str));
			break;
		}
		g_assert_cmpint(write(fd, step->reply, strlen(step->reply)), ==,
				(gssize)strlen(step->reply));
	}
	close(fd);
	return NULL;
}

static FakeJc *
fake_start(const FakeStep *steps, guint n_steps)
{
	FakeJc *fake = g_new0(FakeJc, 1);
	g_autoptr(GError) error = NULL;
	g_autofree char *path = NULL;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	fake->dir = g_dir_make_tmp("test-master-XXXXXX", &error);
	g_assert_no_error(error);
	path = g_build_filename(fake->dir, IMTA_JC_SOCKET, NULL);
	g_assert_cmpuint(strlen(path), <, sizeof addr.sun_path);
	strcpy(addr.sun_path, path);
	fake->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	g_assert_cmpint(fake->listen_fd, >=, 0);
	g_assert_cmpint(bind(fake->listen_fd, (struct sockaddr *)&addr, sizeof addr), ==, 0);
	g_assert_cmpint(listen(fake->listen_fd, 4), ==, 0);
	fake->steps = steps;
	fake->n_steps = n_steps;
	fake->received = g_ptr_array_new_with_free_func(g_free);
	fake->thread = g_thread_new("fake-jc", fake_thread, fake);
	return fake;
}

/* Join the thread (the client must have closed), check the script ran. */
static void
fake_finish(FakeJc *fake)
{
	g_autofree char *path = g_build_filename(fake->dir, IMTA_JC_SOCKET, NULL);

	g_thread_join(fake->thread);
	close(fake->listen_fd);
	g_unlink(path);
	g_rmdir(fake->dir);
	if (fake->mismatch != NULL)
		g_error("scripted job controller: %s", fake->mismatch);
	g_ptr_array_unref(fake->received);
	g_free(fake->dir);
	g_free(fake);
}

/* ---- the client ------------------------------------------------------------ */

static void
test_client_hello(void)
{
	static const FakeStep steps[] = {
		{ "HELLO master bitbucket", "OK 1\n" },
		{ "COUNTERS", "bitbucket 3 2 1 0\nl 0 0 0 0\n.\n" },
		{ "RETRY bitbucket", "OK 3\n" },
	};
	FakeJc *fake = fake_start(steps, G_N_ELEMENTS(steps));
	g_autoptr(GError) error = NULL;
	ImtaJcClient *jc = imta_jc_client_connect(fake->dir, "master", "bitbucket", 2000, &error);
	g_autoptr(GPtrArray) lines = NULL;
	g_autofree char *reply = NULL;

	g_assert_no_error(error);
	g_assert_cmpuint(imta_jc_client_protocol(jc), ==, 1);
	lines = imta_jc_client_request_list(jc, "COUNTERS", 10, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(lines->len, ==, 2);
	g_assert_cmpstr(lines->pdata[0], ==, "bitbucket 3 2 1 0");
	g_assert_cmpstr(lines->pdata[1], ==, "l 0 0 0 0");
	reply = imta_jc_client_request(jc, "RETRY bitbucket", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(reply, ==, "OK 3");
	imta_jc_client_close(jc);
	fake_finish(fake);
}

static const struct {
	const char *name;
	FakeStep steps[2];
	int timeout_ms;
	ImtaJcErrorCode code;
	const char *message;   /* NULL: not checked */
} refusal_rows[] = {
	{ "ERR with an xtext reason", { { "HELLO admin", "ERR unknown+20role\n" } }, 2000,
	  IMTA_JC_ERROR_REFUSED, "the job controller refused: unknown role" },
	{ "bare ERR", { { "HELLO admin", "ERR\n" } }, 2000, IMTA_JC_ERROR_REFUSED,
	  "the job controller refused: no reason given" },
	{ "another protocol", { { "HELLO admin", "OK two\n" } }, 2000, IMTA_JC_ERROR_PROTOCOL,
	  "unexpected greeting from the job controller: \"OK two\"" },
	{ "garbage greeting", { { "HELLO admin", "220 smtp.example.com ESMTP\n" } }, 2000,
	  IMTA_JC_ERROR_PROTOCOL, NULL },
	{ "closed at once", { { "HELLO admin", FAKE_CLOSE } }, 2000, IMTA_JC_ERROR_CLOSED,
	  "the job controller closed the connection" },
	{ "closed mid-line", { { "HELLO admin", "OK" }, { NULL, FAKE_CLOSE } }, 2000,
	  IMTA_JC_ERROR_CLOSED,
	  "the job controller closed the connection in the middle of a line" },
	{ "silent", { { "HELLO admin", FAKE_SILENT } }, 200, IMTA_JC_ERROR_TIMEOUT,
	  "the job controller did not answer within 200 ms" },
	{ "CR in a line", { { "HELLO admin", "OK 1\r\n" } }, 2000, IMTA_JC_ERROR_PROTOCOL,
	  "a reply line holds a NUL or CR byte" },
};

static void
test_client_refusals(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(refusal_rows); i++) {
		guint n = refusal_rows[i].steps[1].reply != NULL ? 2 : 1;
		FakeJc *fake = fake_start(refusal_rows[i].steps, n);
		g_autoptr(GError) error = NULL;
		ImtaJcClient *jc;

		g_test_message("row %s", refusal_rows[i].name);
		jc = imta_jc_client_connect(fake->dir, "admin", NULL, refusal_rows[i].timeout_ms,
					    &error);
		g_assert_null(jc);
		g_assert_error(error, IMTA_JC_ERROR, (gint)refusal_rows[i].code);
		if (refusal_rows[i].message != NULL)
			g_assert_cmpstr(error->message, ==, refusal_rows[i].message);
		fake_finish(fake);
	}
}

static void
test_client_long_line(void)
{
	static char reply[IMTA_JC_MAX_LINE + 16];
	static FakeStep steps[] = { { "HELLO admin", "OK 1\n" }, { "STATE", reply } };
	FakeJc *fake;
	g_autoptr(GError) error = NULL;
	ImtaJcClient *jc;
	GPtrArray *lines;

	memset(reply, 'a', sizeof reply - 2);
	reply[sizeof reply - 2] = '\n';
	reply[sizeof reply - 1] = '\0';
	fake = fake_start(steps, G_N_ELEMENTS(steps));
	jc = imta_jc_client_connect(fake->dir, "admin", NULL, 2000, &error);
	g_assert_no_error(error);
	lines = imta_jc_client_request_list(jc, "STATE", 10, &error);
	g_assert_null(lines);
	g_assert_error(error, IMTA_JC_ERROR, IMTA_JC_ERROR_PROTOCOL);
	g_assert_cmpstr(error->message, ==, "a reply line is longer than 4096 bytes");
	imta_jc_client_close(jc);
	fake_finish(fake);
}

static void
test_client_too_many_lines(void)
{
	static const FakeStep steps[] = {
		{ "HELLO admin", "OK 1\n" }, { "STATE", "a 1\nb 2\nc 3\n.\n" },
	};
	FakeJc *fake = fake_start(steps, G_N_ELEMENTS(steps));
	g_autoptr(GError) error = NULL;
	ImtaJcClient *jc = imta_jc_client_connect(fake->dir, "admin", NULL, 2000, &error);
	GPtrArray *lines;

	g_assert_no_error(error);
	lines = imta_jc_client_request_list(jc, "STATE", 2, &error);
	g_assert_null(lines);
	g_assert_error(error, IMTA_JC_ERROR, IMTA_JC_ERROR_PROTOCOL);
	g_assert_cmpstr(error->message, ==, "the reply to STATE has more than 2 lines");
	imta_jc_client_close(jc);
	fake_finish(fake);
}

static void
test_client_not_running(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *dir = g_dir_make_tmp("test-master-XXXXXX", &error);
	g_autofree char *path = g_build_filename(dir, IMTA_JC_SOCKET, NULL);
	g_autofree char *expected = NULL;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	g_assert_no_error(error);
	g_assert_null(imta_jc_client_connect(dir, "admin", NULL, 500, &error));
	g_assert_error(error, IMTA_JC_ERROR, IMTA_JC_ERROR_NOT_RUNNING);
	expected = g_strdup_printf("the job controller is not running (%s: %s)", path,
				   g_strerror(ENOENT));
	g_assert_cmpstr(error->message, ==, expected);
	g_clear_error(&error);
	/* A socket left behind by a controller that died: refused. */
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	g_assert_cmpint(bind(fd, (struct sockaddr *)&addr, sizeof addr), ==, 0);
	close(fd);
	g_assert_null(imta_jc_client_connect(dir, "admin", NULL, 500, &error));
	g_assert_error(error, IMTA_JC_ERROR, IMTA_JC_ERROR_NOT_RUNNING);
	g_unlink(path);
	g_rmdir(dir);
}

/* ---- the queue source end to end -------------------------------------------- */

typedef struct {
	char *dir;
	ImtaConfig *config;
	ImtaQueue *queue;
} QueueFixture;

/* The sender's domain routes to channel parked, where notices stay. */
static const char notices_cnf[] =
	"bitbucket.example.com  $U%$D@bitbucket-daemon\n"
	"example.org            $U%$D@parked-daemon\n"
	"\n"
	"defaults notices 1 2 4 7\n"
	"\n"
	"l\n"
	"mail.example.com\n"
	"\n"
	"bitbucket\n"
	"bitbucket-daemon\n"
	"\n"
	"parked\n"
	"parked-daemon\n";

/* `data`: NULL for test_cnf, or the text of another imta.cnf (whose
 * local host is mail.example.com). */
static void
queue_fixture_set_up(QueueFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *root = NULL;

	fx->dir = g_dir_make_tmp("test-master-q-XXXXXX", &error);
	g_assert_no_error(error);
	root = g_build_filename(fx->dir, "queue", NULL);
	fx->config = g_new0(ImtaConfig, 1);
	if (data != NULL) {
		fx->config->cnf = imta_cnf_parse_text("imta.cnf", data, strlen(data), NULL,
						      &error);
		g_assert_no_error(error);
		fx->config->tailor = g_new0(ImtaTailor, 1);
		fx->config->tailor->hostname = g_strdup("mail.example.com");
	} else {
		fx->config->cnf = load_test_cnf();
	}
	fx->config->options = imta_option_dat_new_default();
	fx->queue = imta_queue_open(root, fx->config->cnf, NULL, &error);
	g_assert_no_error(error);
}

static void
queue_fixture_tear_down(QueueFixture *fx, gconstpointer data)
{
	g_autofree char *command = g_strdup_printf("rm -rf '%s'", fx->dir);

	imta_queue_close(fx->queue);
	imta_config_free(fx->config);
	g_assert_cmpint(system(command), ==, 0);
	g_free(fx->dir);
}

/* Queue one message for `n` recipients r0@, r1@ ... of `channel`, each
 * with NOTIFY `notify` (0: not given); returns its path. */
static char *
enqueue_notify(QueueFixture *fx, const char *channel_name, guint n, guint notify)
{
	const ImtaChannel *channel = imta_cnf_channel_by_name(fx->config->cnf, channel_name);
	g_autoptr(ImtaEnqueue) enq = imta_enqueue_new(fx->queue, "l", "ann@example.org");
	g_autoptr(GError) error = NULL;
	static const char content[] = "Subject: test\n\nhello\n";

	for (guint i = 0; i < n; i++) {
		g_autofree char *address = g_strdup_printf("r%u@%s.example.com", i, channel_name);

		g_assert_true(imta_enqueue_add_recipient(enq, channel, address, NULL, notify,
							 &error));
	}
	g_assert_true(imta_enqueue_write(enq, content, strlen(content), &error));
	g_assert_true(imta_enqueue_commit(enq, &error));
	g_assert_no_error(error);
	return g_strdup(imta_enqueue_files(enq)[0]);
}

static char *
enqueue_one(QueueFixture *fx, const char *channel_name, guint n)
{
	return enqueue_notify(fx, channel_name, n, 0);
}

/* What the test plugin does with recipient i of a message, by address. */
typedef struct {
	ImtaOutcome outcome;
	const char *diagnostic;
	gboolean relayed;       /* reported with imta_master_job_report_relayed */
} PluginAnswer;

typedef struct {
	const PluginAnswer *answers;   /* indexed by the rN in the address */
	GPtrArray *seen;               /* "id address" per recipient handed out */
	guint messages;
} PluginScript;

static PluginScript *plugin_script;

static ImtaEntryStatus
test_plugin_master(ImtaMasterJob *job)
{
	g_autoptr(GError) error = NULL;
	ImtaMessage *msg;

	while ((msg = imta_master_job_next(job, &error)) != NULL) {
		g_autoptr(GInputStream) in = imta_message_open_content(msg, &error);
		static const char expected[] = "Subject: test\n\nhello\n";
		char buf[64] = "";

		g_assert_no_error(error);
		g_assert_cmpint(imta_message_size(msg), ==, strlen(expected));
		g_assert_cmpint(g_input_stream_read(in, buf, strlen(expected), NULL, NULL), ==,
				(gssize)strlen(expected));
		g_assert_cmpstr(buf, ==, expected);
		plugin_script->messages++;
		for (guint i = 0; i < imta_message_recipient_count(msg); i++) {
			const char *address = imta_message_recipient(msg, i)->address;
			guint which = (guint)g_ascii_strtoull(address + 1, NULL, 10);
			const PluginAnswer *answer = &plugin_script->answers[which];

			g_ptr_array_add(plugin_script->seen, g_strdup(address));
			if (answer->relayed)
				imta_master_job_report_relayed(job, msg, i, answer->diagnostic);
			else if (answer->outcome != IMTA_OUTCOME_NONE)
				imta_master_job_report(job, msg, i, answer->outcome,
						       answer->diagnostic);
		}
		if (!imta_master_job_finish(job, msg, &error))
			return IMTA_ENTRY_TEMPFAIL;
	}
	return error != NULL ? IMTA_ENTRY_TEMPFAIL : IMTA_ENTRY_OK;
}

/* Run a master job of `channel_name` against the scripted controller. */
static ImtaEntryStatus
run_master(QueueFixture *fx, const char *channel_name, FakeJc *fake, PluginScript *script,
	   gboolean *disconnected_r)
{
	const ImtaChannel *channel = imta_cnf_channel_by_name(fx->config->cnf, channel_name);
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaJcClient) jc = imta_jc_client_connect(fake->dir, "master", channel_name,
							    2000, &error);
	MasterSource *source;
	ImtaMasterJob *job;
	ImtaEntryStatus status;

	g_assert_no_error(error);
	source = master_source_new(fx->config, channel, fx->queue, jc, NULL, NULL);
	job = imta_master_job_new(fx->config, channel, &master_source_ops, source);
	master_source_set_job(source, job);
	plugin_script = script;
	status = test_plugin_master(job);
	if (disconnected_r != NULL)
		*disconnected_r = master_source_disconnected(source);
	imta_master_job_free(job);
	return status;
}

static gboolean
queue_has(QueueFixture *fx, const char *path)
{
	g_autofree char *abs = g_build_filename(imta_queue_root(fx->queue), path, NULL);

	return g_file_test(abs, G_FILE_TEST_EXISTS);
}

/* "bitbucket/ZZ<id>.00" -> "bitbucket/<prefix><id>.00" */
static char *
with_prefix(const char *path, const char *prefix)
{
	g_autofree char *dir = g_path_get_dirname(path);
	g_autofree char *base = g_path_get_basename(path);

	return g_strdup_printf("%s/%s%s", dir, prefix, base + 2);
}

static void
test_source_two_attempts(QueueFixture *fx, gconstpointer data)
{
	static const PluginAnswer first[] = {
		{ IMTA_OUTCOME_DELIVERED, "2.0.0 ok" },
		{ IMTA_OUTCOME_RETRY, "4.2.1 try later" },
		{ IMTA_OUTCOME_FAILED, "5.1.1 no such user" },
		{ IMTA_OUTCOME_NONE, NULL },
	};
	static const PluginAnswer second[] = {
		{ IMTA_OUTCOME_DELIVERED, "2.0.0 again?" },
		{ IMTA_OUTCOME_DELIVERED, "2.0.0 ok now" },
		{ IMTA_OUTCOME_DELIVERED, "2.0.0 again?" },
		{ IMTA_OUTCOME_DELIVERED, "2.0.0 ok now" },
	};
	g_autofree char *path = enqueue_one(fx, "bitbucket", 4);
	g_autofree char *path1 = with_prefix(path, "ZY");
	g_autofree char *msg0 = g_strdup_printf("MSG %s\n", path);
	g_autofree char *msg1 = g_strdup_printf("MSG %s\n", path1);
	g_autofree char *done0 = g_strdup_printf("DONE %s %s 1 1 2 *", path, path1);
	g_autofree char *done1 = g_strdup_printf("DONE %s - 2 0 0 0", path1);
	const FakeStep steps0[] = {
		{ "HELLO master bitbucket", "OK 1\n" },
		{ "NEXT", msg0 },
		{ done0, "OK\n" },
		{ "NEXT", "EXIT\n" },
	};
	const FakeStep steps1[] = {
		{ "HELLO master bitbucket", "OK 1\n" },
		{ "NEXT", msg1 },
		{ done1, "OK\n" },
		{ "NEXT", "EXIT\n" },
	};
	PluginScript script = { first, g_ptr_array_new_with_free_func(g_free), 0 };
	g_autoptr(ImtaQueueEntry) entry = NULL;
	g_autoptr(GError) error = NULL;
	FakeJc *fake = fake_start(steps0, G_N_ELEMENTS(steps0));
	gint64 before = g_get_real_time() / G_USEC_PER_SEC, next;
	gboolean disconnected = TRUE;
	g_auto(GStrv) f = NULL;

	/* First attempt: one delivered, one deferred, one failed, one with no
	 * outcome reported (deferred too). */
	g_assert_cmpint(run_master(fx, "bitbucket", fake, &script, &disconnected), ==,
			IMTA_ENTRY_OK);
	g_assert_false(disconnected);
	g_assert_cmpuint(script.messages, ==, 1);
	g_assert_cmpuint(script.seen->len, ==, 4);
	g_assert_cmpuint(fake->received->len, ==, 4);
	f = g_strsplit(fake->received->pdata[2], " ", -1);
	g_assert_cmpuint(g_strv_length(f), ==, 7);
	next = g_ascii_strtoll(f[6], NULL, 10);
	g_assert_cmpint(next, >=, before + HOUR);
	g_assert_cmpint(next, <=, before + HOUR + 5);
	fake_finish(fake);
	g_assert_false(queue_has(fx, path));
	g_assert_true(queue_has(fx, path1));
	entry = imta_queue_entry_read(fx->queue, path1, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(entry->attempts, ==, 1);
	g_assert_cmpstr(entry->last_error, ==, "4.2.1 try later");
	g_assert_cmpint(imta_message_recipient(entry->message, 0)->outcome, ==,
			IMTA_OUTCOME_DELIVERED);
	g_assert_cmpint(imta_message_recipient(entry->message, 1)->outcome, ==, IMTA_OUTCOME_RETRY);
	g_assert_cmpint(imta_message_recipient(entry->message, 2)->outcome, ==, IMTA_OUTCOME_FAILED);
	g_assert_cmpstr(imta_message_recipient(entry->message, 2)->diagnostic, ==,
			"5.1.1 no such user");
	g_assert_cmpint(imta_message_recipient(entry->message, 3)->outcome, ==, IMTA_OUTCOME_NONE);

	/* Second attempt: only the two pending recipients are handed out. */
	g_ptr_array_set_size(script.seen, 0);
	script.answers = second;
	script.messages = 0;
	fake = fake_start(steps1, G_N_ELEMENTS(steps1));
	g_assert_cmpint(run_master(fx, "bitbucket", fake, &script, NULL), ==, IMTA_ENTRY_OK);
	fake_finish(fake);
	g_assert_cmpuint(script.seen->len, ==, 2);
	g_assert_cmpstr(script.seen->pdata[0], ==, "r1@bitbucket.example.com");
	g_assert_cmpstr(script.seen->pdata[1], ==, "r3@bitbucket.example.com");
	g_assert_false(queue_has(fx, path1));
	g_ptr_array_unref(script.seen);
}

/* Rewrite a queue file's "created" line to `created` (same width). */
static void
backdate(QueueFixture *fx, const char *path, gint64 created)
{
	g_autofree char *abs = g_build_filename(imta_queue_root(fx->queue), path, NULL);
	g_autofree char *text = NULL;
	g_autofree char *line = g_strdup_printf("\ncreated %" G_GINT64_FORMAT "\n", created);
	g_autoptr(GError) error = NULL;
	gsize length;
	char *at;

	g_assert_true(g_file_get_contents(abs, &text, &length, &error));
	at = strstr(text, "\ncreated ");
	g_assert_nonnull(at);
	g_assert_cmpint(strchr(at + 1, '\n') - at + 1, ==, (gssize)strlen(line));
	memcpy(at, line, strlen(line));
	g_assert_true(g_file_set_contents(abs, text, (gssize)length, &error));
}

static void
test_source_expiry(QueueFixture *fx, gconstpointer data)
{
	static const PluginAnswer answers[] = {
		{ IMTA_OUTCOME_RETRY, "4.4.1 no answer" },
		{ IMTA_OUTCOME_DELIVERED, "2.0.0 ok" },
		{ IMTA_OUTCOME_NONE, NULL },
	};
	g_autofree char *path = enqueue_one(fx, "shortlived", 3);
	g_autofree char *msg = g_strdup_printf("MSG %s\n", path);
	g_autofree char *done = g_strdup_printf("DONE %s - 1 2 0 0", path);
	const FakeStep steps[] = {
		{ "HELLO master shortlived", "OK 1\n" },
		{ "NEXT", msg },
		{ done, "OK\n" },
		{ "NEXT", "EXIT\n" },
	};
	PluginScript script = { answers, g_ptr_array_new_with_free_func(g_free), 0 };
	FakeJc *fake;

	/* notices 2 5 on the channel: five days is the last age. */
	backdate(fx, path, g_get_real_time() / G_USEC_PER_SEC - 5 * DAY - 60);
	fake = fake_start(steps, G_N_ELEMENTS(steps));
	g_assert_cmpint(run_master(fx, "shortlived", fake, &script, NULL), ==, IMTA_ENTRY_OK);
	fake_finish(fake);
	g_assert_cmpuint(script.seen->len, ==, 3);
	g_assert_false(queue_has(fx, path));
	g_ptr_array_unref(script.seen);
}

static void
test_source_not_expired(QueueFixture *fx, gconstpointer data)
{
	static const PluginAnswer answers[] = { { IMTA_OUTCOME_RETRY, "4.4.1 no answer" } };
	g_autofree char *path = enqueue_one(fx, "shortlived", 1);
	g_autofree char *path1 = with_prefix(path, "ZY");
	g_autofree char *msg = g_strdup_printf("MSG %s\n", path);
	g_autofree char *done = g_strdup_printf("DONE %s %s 0 0 1 *", path, path1);
	const FakeStep steps[] = {
		{ "HELLO master shortlived", "OK 1\n" },
		{ "NEXT", msg },
		{ done, "OK\n" },
		{ "NEXT", "EXIT\n" },
	};
	PluginScript script = { answers, g_ptr_array_new_with_free_func(g_free), 0 };
	FakeJc *fake;

	backdate(fx, path, g_get_real_time() / G_USEC_PER_SEC - 5 * DAY + 60);
	fake = fake_start(steps, G_N_ELEMENTS(steps));
	g_assert_cmpint(run_master(fx, "shortlived", fake, &script, NULL), ==, IMTA_ENTRY_OK);
	fake_finish(fake);
	g_assert_true(queue_has(fx, path1));
	g_ptr_array_unref(script.seen);
}

static void
test_source_unusable_files(QueueFixture *fx, gconstpointer data)
{
	static const PluginAnswer answers[] = { { IMTA_OUTCOME_DELIVERED, "2.0.0 ok" } };
	g_autofree char *good = enqueue_one(fx, "bitbucket", 1);
	g_autofree char *bad_abs = g_build_filename(imta_queue_root(fx->queue), "bitbucket",
						    "ZZ0000000000000BAD.00", NULL);
	g_autofree char *msg_good = g_strdup_printf("MSG %s\n", good);
	g_autofree char *done_good = g_strdup_printf("DONE %s - 1 0 0 0", good);
	const FakeStep steps[] = {
		{ "HELLO master bitbucket", "OK 1\n" },
		{ "NEXT", "MSG bitbucket/ZZ000000000000GONE.00\n" },
		{ "DONE bitbucket/ZZ000000000000GONE.00 - 0 0 0 0", "OK\n" },
		{ "NEXT", "MSG bitbucket/ZZ0000000000000BAD.00\n" },
		{ "DONE bitbucket/ZZ0000000000000BAD.00 bitbucket/ZZ0000000000000BAD.00 0 0 0 *",
		  "OK\n" },
		{ "NEXT", msg_good },
		{ done_good, "OK\n" },
		{ "NEXT", "EXIT\n" },
	};
	PluginScript script = { answers, g_ptr_array_new_with_free_func(g_free), 0 };
	g_autoptr(GError) error = NULL;
	FakeJc *fake;

	g_assert_true(g_file_set_contents(bad_abs, "not a queue file\n", -1, &error));
	fake = fake_start(steps, G_N_ELEMENTS(steps));
	g_assert_cmpint(run_master(fx, "bitbucket", fake, &script, NULL), ==, IMTA_ENTRY_OK);
	fake_finish(fake);
	/* Only the good one reached the plugin; the bad one is kept. */
	g_assert_cmpuint(script.messages, ==, 1);
	g_assert_true(g_file_test(bad_abs, G_FILE_TEST_EXISTS));
	g_assert_false(queue_has(fx, good));
	g_ptr_array_unref(script.seen);
}

/* Replies to DONE are read when the job next asks for work, in order: a
 * refused DONE is only a warning, and the reply to the NEXT sent after it
 * is still taken for what it is. */
static void
test_source_done_refused(QueueFixture *fx, gconstpointer data)
{
	static const PluginAnswer answers[] = { { IMTA_OUTCOME_DELIVERED, "2.0.0 ok" } };
	g_autofree char *first = enqueue_one(fx, "bitbucket", 1);
	g_autofree char *second = enqueue_one(fx, "bitbucket", 1);
	g_autofree char *msg_first = g_strdup_printf("MSG %s\n", first);
	g_autofree char *msg_second = g_strdup_printf("MSG %s\n", second);
	g_autofree char *done_first = g_strdup_printf("DONE %s - 1 0 0 0", first);
	g_autofree char *done_second = g_strdup_printf("DONE %s - 1 0 0 0", second);
	const FakeStep steps[] = {
		{ "HELLO master bitbucket", "OK 1\n" },
		{ "NEXT", msg_first },
		{ done_first, "ERR not+20now\n" },
		{ "NEXT", msg_second },
		{ done_second, "OK\n" },
		{ "NEXT", "EXIT\n" },
	};
	PluginScript script = { answers, g_ptr_array_new_with_free_func(g_free), 0 };
	gboolean disconnected = TRUE;
	FakeJc *fake;

	fake = fake_start(steps, G_N_ELEMENTS(steps));
	g_assert_cmpint(run_master(fx, "bitbucket", fake, &script, &disconnected), ==,
			IMTA_ENTRY_OK);
	fake_finish(fake);
	g_assert_false(disconnected);
	g_assert_cmpuint(script.messages, ==, 2);
	g_assert_false(queue_has(fx, first));
	g_assert_false(queue_has(fx, second));
	g_ptr_array_unref(script.seen);
}

/* The controller goes away after handing out a message: the message is
 * still finished durably, then the job ends. */
static void
test_source_controller_gone(QueueFixture *fx, gconstpointer data)
{
	static const PluginAnswer answers[] = {
		{ IMTA_OUTCOME_DELIVERED, "2.0.0 ok" }, { IMTA_OUTCOME_RETRY, "4.0.0 later" },
	};
	g_autofree char *path = enqueue_one(fx, "bitbucket", 2);
	g_autofree char *path1 = with_prefix(path, "ZY");
	g_autofree char *msg = g_strdup_printf("MSG %s\n", path);
	const FakeStep steps[] = {
		{ "HELLO master bitbucket", "OK 1\n" },
		{ "NEXT", msg },
		{ NULL, FAKE_CLOSE },
	};
	PluginScript script = { answers, g_ptr_array_new_with_free_func(g_free), 0 };
	g_autoptr(ImtaQueueEntry) entry = NULL;
	g_autoptr(GError) error = NULL;
	gboolean disconnected = FALSE;
	FakeJc *fake = fake_start(steps, G_N_ELEMENTS(steps));

	g_assert_cmpint(run_master(fx, "bitbucket", fake, &script, &disconnected), ==,
			IMTA_ENTRY_OK);
	fake_finish(fake);
	g_assert_true(disconnected);
	g_assert_cmpuint(script.messages, ==, 1);
	entry = imta_queue_entry_read(fx->queue, path1, &error);
	g_assert_no_error(error);
	g_assert_cmpint(imta_message_recipient(entry->message, 0)->outcome, ==,
			IMTA_OUTCOME_DELIVERED);
	g_ptr_array_unref(script.seen);
}

/* Deleted by the administrator while the plugin delivers it. */
static PluginScript *delete_script;
static QueueFixture *delete_fx;
static char *delete_path;

static ImtaEntryStatus
deleting_master(ImtaMasterJob *job)
{
	g_autoptr(GError) error = NULL;
	ImtaMessage *msg;

	while ((msg = imta_master_job_next(job, &error)) != NULL) {
		g_autoptr(ImtaQueueEntry) entry = imta_queue_entry_read(delete_fx->queue,
									delete_path, &error);

		g_assert_no_error(error);
		g_assert_true(imta_queue_entry_delete(delete_fx->queue, entry, &error));
		imta_master_job_report(job, msg, 0, IMTA_OUTCOME_RETRY, "4.0.0 later");
		delete_script->messages++;
		g_assert_true(imta_master_job_finish(job, msg, &error));
	}
	return IMTA_ENTRY_OK;
}

static void
test_source_deleted_meanwhile(QueueFixture *fx, gconstpointer data)
{
	g_autofree char *path = enqueue_one(fx, "bitbucket", 1);
	g_autofree char *msg = g_strdup_printf("MSG %s\n", path);
	g_autofree char *done = g_strdup_printf("DONE %s - 0 0 0 0", path);
	const FakeStep steps[] = {
		{ "HELLO master bitbucket", "OK 1\n" },
		{ "NEXT", msg },
		{ done, "OK\n" },
		{ "NEXT", "EXIT\n" },
	};
	PluginScript script = { NULL, NULL, 0 };
	const ImtaChannel *channel = imta_cnf_channel_by_name(fx->config->cnf, "bitbucket");
	FakeJc *fake = fake_start(steps, G_N_ELEMENTS(steps));
	g_autoptr(GError) error = NULL;
	ImtaJcClient *jc = imta_jc_client_connect(fake->dir, "master", "bitbucket", 2000, &error);
	MasterSource *source = master_source_new(fx->config, channel, fx->queue, jc, NULL, NULL);
	ImtaMasterJob *job = imta_master_job_new(fx->config, channel, &master_source_ops, source);

	master_source_set_job(source, job);
	delete_script = &script;
	delete_fx = fx;
	delete_path = path;
	g_assert_cmpint(deleting_master(job), ==, IMTA_ENTRY_OK);
	imta_master_job_free(job);
	imta_jc_client_close(jc);
	fake_finish(fake);
	g_assert_cmpuint(script.messages, ==, 1);
	g_assert_false(queue_has(fx, path));
}

/* ---- notices ------------------------------------------------------------- */

static guint
queue_count(QueueFixture *fx, const char *channel, const char *containing)
{
	g_autofree char *dir = g_build_filename(imta_queue_root(fx->queue), channel, NULL);
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;
	guint n = 0;

	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		g_autofree char *path = g_build_filename(dir, name, NULL);
		g_autofree char *text = NULL;

		g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
		if (strstr(text, containing) != NULL)
			n++;
	}
	return n;
}

/* A failed recipient: the failure notice is in the queue before the
 * failure is recorded, the postmaster has a copy, the delivered and the
 * deferred recipients are not in it. */
static void
test_source_failure_notice(QueueFixture *fx, gconstpointer data)
{
	static const PluginAnswer answers[] = {
		{ IMTA_OUTCOME_FAILED, "5.1.1 no such user" },
		{ IMTA_OUTCOME_RETRY, "4.2.1 try later" },
		{ IMTA_OUTCOME_DELIVERED, "2.0.0 ok" },
	};
	g_autofree char *path = enqueue_one(fx, "bitbucket", 3);
	g_autofree char *path1 = with_prefix(path, "ZY");
	g_autofree char *msg = g_strdup_printf("MSG %s\n", path);
	g_autofree char *done = g_strdup_printf("DONE %s %s 1 1 1 *", path, path1);
	const FakeStep steps[] = {
		{ "HELLO master bitbucket", "OK 1\n" },
		{ "NEXT", msg },
		{ done, "OK\n" },
		{ "NEXT", "EXIT\n" },
	};
	PluginScript script = { answers, g_ptr_array_new_with_free_func(g_free), 0 };
	g_autoptr(ImtaQueueEntry) entry = NULL;
	g_autoptr(GError) error = NULL;
	FakeJc *fake = fake_start(steps, G_N_ELEMENTS(steps));

	g_assert_cmpint(run_master(fx, "bitbucket", fake, &script, NULL), ==, IMTA_ENTRY_OK);
	fake_finish(fake);
	g_assert_cmpuint(queue_count(fx, "parked", "Final-Recipient: rfc822; r0@bitbucket"), ==,
			 1);
	g_assert_cmpuint(queue_count(fx, "parked", "Status: 5.1.1\n"), ==, 1);
	g_assert_cmpuint(queue_count(fx, "parked", "r1@bitbucket"), ==, 0);
	g_assert_cmpuint(queue_count(fx, "parked", "r2@bitbucket"), ==, 0);
	g_assert_cmpuint(queue_count(fx, "l", "\nrcpt - rfc822;postmaster@mail.example.com "), ==,
			 1);
	entry = imta_queue_entry_read(fx->queue, path1, &error);
	g_assert_no_error(error);
	g_assert_cmpint(imta_message_recipient(entry->message, 0)->outcome, ==,
			IMTA_OUTCOME_FAILED);
	g_ptr_array_unref(script.seen);
}

/* NOTIFY=SUCCESS: a success notice for the recipient delivered here, none
 * for the one handed to a next hop that took the DSN request; both are
 * delivered. */
static void
test_source_success_notice_relayed(QueueFixture *fx, gconstpointer data)
{
	static const PluginAnswer answers[] = {
		{ IMTA_OUTCOME_DELIVERED, "2.0.0 remote mx.example.net [192.0.2.1] said: 250 ok",
		  TRUE },
		{ IMTA_OUTCOME_DELIVERED, "2.0.0 delivered" },
	};
	g_autofree char *path = enqueue_notify(fx, "bitbucket", 2, IMTA_NOTIFY_SUCCESS);
	g_autofree char *msg = g_strdup_printf("MSG %s\n", path);
	g_autofree char *done = g_strdup_printf("DONE %s - 2 0 0 0", path);
	const FakeStep steps[] = {
		{ "HELLO master bitbucket", "OK 1\n" },
		{ "NEXT", msg },
		{ done, "OK\n" },
		{ "NEXT", "EXIT\n" },
	};
	PluginScript script = { answers, g_ptr_array_new_with_free_func(g_free), 0 };
	FakeJc *fake = fake_start(steps, G_N_ELEMENTS(steps));

	g_assert_cmpint(run_master(fx, "bitbucket", fake, &script, NULL), ==, IMTA_ENTRY_OK);
	fake_finish(fake);
	g_assert_cmpuint(queue_count(fx, "parked", "Final-Recipient: rfc822; r1@bitbucket"), ==,
			 1);
	g_assert_cmpuint(queue_count(fx, "parked", "r0@bitbucket"), ==, 0);
	g_assert_false(queue_has(fx, path));
	g_ptr_array_unref(script.seen);
}

/* A failure notice that cannot be queued now (here: a file where the
 * notice's channel directory should be) leaves the recipient deferred. */
static void
test_source_failure_notice_deferred(QueueFixture *fx, gconstpointer data)
{
	static const PluginAnswer answers[] = { { IMTA_OUTCOME_FAILED, "5.1.1 no such user" } };
	g_autofree char *path = enqueue_one(fx, "bitbucket", 1);
	g_autofree char *path1 = with_prefix(path, "ZY");
	g_autofree char *msg = g_strdup_printf("MSG %s\n", path);
	g_autofree char *done = g_strdup_printf("DONE %s %s 0 0 1 *", path, path1);
	g_autofree char *blocker = g_build_filename(imta_queue_root(fx->queue), "parked", NULL);
	const FakeStep steps[] = {
		{ "HELLO master bitbucket", "OK 1\n" },
		{ "NEXT", msg },
		{ done, "OK\n" },
		{ "NEXT", "EXIT\n" },
	};
	PluginScript script = { answers, g_ptr_array_new_with_free_func(g_free), 0 };
	g_autoptr(ImtaQueueEntry) entry = NULL;
	g_autoptr(GError) error = NULL;
	FakeJc *fake;

	g_assert_true(g_file_set_contents(blocker, "not a directory", -1, NULL));
	fake = fake_start(steps, G_N_ELEMENTS(steps));
	g_assert_cmpint(run_master(fx, "bitbucket", fake, &script, NULL), ==, IMTA_ENTRY_OK);
	fake_finish(fake);
	entry = imta_queue_entry_read(fx->queue, path1, &error);
	g_assert_no_error(error);
	g_assert_cmpint(imta_message_recipient(entry->message, 0)->outcome, ==,
			IMTA_OUTCOME_RETRY);
	g_assert_cmpstr(imta_message_recipient(entry->message, 0)->diagnostic, ==,
			"5.1.1 no such user");
	g_assert_cmpuint(queue_count(fx, "l", "X-IMTA-Queue-ID"), ==, 0);
	g_ptr_array_unref(script.seen);
}

/* A delay warning at the first attempt after the first notices age, and
 * not again at the next attempt. */
static void
test_source_delay_warning(QueueFixture *fx, gconstpointer data)
{
	static const PluginAnswer answers[] = { { IMTA_OUTCOME_RETRY, "4.2.1 try later" } };
	g_autofree char *path = enqueue_one(fx, "bitbucket", 1);
	g_autofree char *path1 = with_prefix(path, "ZY");
	g_autofree char *path2 = with_prefix(path, "ZX");
	g_autofree char *msg0 = g_strdup_printf("MSG %s\n", path);
	g_autofree char *msg1 = g_strdup_printf("MSG %s\n", path1);
	g_autofree char *done0 = g_strdup_printf("DONE %s %s 0 0 1 *", path, path1);
	g_autofree char *done1 = g_strdup_printf("DONE %s %s 0 0 1 *", path1, path2);
	const FakeStep steps0[] = {
		{ "HELLO master bitbucket", "OK 1\n" },
		{ "NEXT", msg0 },
		{ done0, "OK\n" },
		{ "NEXT", "EXIT\n" },
	};
	const FakeStep steps1[] = {
		{ "HELLO master bitbucket", "OK 1\n" },
		{ "NEXT", msg1 },
		{ done1, "OK\n" },
		{ "NEXT", "EXIT\n" },
	};
	PluginScript script = { answers, g_ptr_array_new_with_free_func(g_free), 0 };
	g_autoptr(ImtaQueueEntry) entry = NULL;
	g_autoptr(GError) error = NULL;
	FakeJc *fake;

	/* notices 1 2 4 7: a day and a minute old, past the first age. */
	backdate(fx, path, g_get_real_time() / G_USEC_PER_SEC - DAY - 60);
	fake = fake_start(steps0, G_N_ELEMENTS(steps0));
	g_assert_cmpint(run_master(fx, "bitbucket", fake, &script, NULL), ==, IMTA_ENTRY_OK);
	fake_finish(fake);
	g_assert_cmpuint(queue_count(fx, "parked", "Action: delayed\n"), ==, 1);
	g_assert_cmpuint(queue_count(fx, "parked", "Diagnostic-Code: X-IMTA; 4.2.1 try later\n"),
			 ==, 1);
	/* No postmaster copy of warnings by default. */
	g_assert_cmpuint(queue_count(fx, "l", "X-IMTA-Queue-ID"), ==, 0);
	entry = imta_queue_entry_read(fx->queue, path1, &error);
	g_assert_no_error(error);
	g_assert_true(imta_queue_entry_warned(entry, DAY));
	g_assert_false(imta_queue_entry_warned(entry, 2 * DAY));

	fake = fake_start(steps1, G_N_ELEMENTS(steps1));
	g_assert_cmpint(run_master(fx, "bitbucket", fake, &script, NULL), ==, IMTA_ENTRY_OK);
	fake_finish(fake);
	g_assert_cmpuint(queue_count(fx, "parked", "Action: delayed\n"), ==, 1);
	g_ptr_array_unref(script.seen);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	/* The master's log lines show what a test did; only with --verbose. */
	if (!g_test_verbose())
		imta_log_set_level(IMTA_LOG_ERROR);
	g_test_add_func("/master/notices/expired", test_notices_expired);
	g_test_add_func("/master/notices/unit", test_notices_unit);
	g_test_add_func("/master/delay/backoff", test_retry_delay);
	g_test_add_func("/master/job/each", test_job_each);
	g_test_add_func("/master/outcomes/expire-pending", test_expire_pending);
	g_test_add_func("/master/outcomes/codes", test_outcome_codes);
	g_test_add_func("/master/outcomes/blocks", test_blocks);
	g_test_add_func("/master/protocol/done-line", test_done_line);
	g_test_add_func("/master/protocol/next-reply", test_next_reply);
	g_test_add_func("/master/protocol/next-reply-messages", test_next_reply_messages);
	g_test_add_func("/master/client/hello-and-requests", test_client_hello);
	g_test_add_func("/master/client/refusals", test_client_refusals);
	g_test_add_func("/master/client/long-line", test_client_long_line);
	g_test_add_func("/master/client/too-many-lines", test_client_too_many_lines);
	g_test_add_func("/master/client/not-running", test_client_not_running);
	g_test_add("/master/source/two-attempts", QueueFixture, NULL, queue_fixture_set_up,
		   test_source_two_attempts, queue_fixture_tear_down);
	g_test_add("/master/source/expiry", QueueFixture, NULL, queue_fixture_set_up,
		   test_source_expiry, queue_fixture_tear_down);
	g_test_add("/master/source/not-expired", QueueFixture, NULL, queue_fixture_set_up,
		   test_source_not_expired, queue_fixture_tear_down);
	g_test_add("/master/source/unusable-files", QueueFixture, NULL, queue_fixture_set_up,
		   test_source_unusable_files, queue_fixture_tear_down);
	g_test_add("/master/source/done-refused", QueueFixture, NULL, queue_fixture_set_up,
		   test_source_done_refused, queue_fixture_tear_down);
	g_test_add("/master/source/controller-gone", QueueFixture, NULL, queue_fixture_set_up,
		   test_source_controller_gone, queue_fixture_tear_down);
	g_test_add("/master/source/success-notice-relayed", QueueFixture, notices_cnf,
		   queue_fixture_set_up, test_source_success_notice_relayed,
		   queue_fixture_tear_down);
	g_test_add("/master/source/failure-notice", QueueFixture, notices_cnf,
		   queue_fixture_set_up, test_source_failure_notice, queue_fixture_tear_down);
	g_test_add("/master/source/failure-notice-deferred", QueueFixture, notices_cnf,
		   queue_fixture_set_up, test_source_failure_notice_deferred,
		   queue_fixture_tear_down);
	g_test_add("/master/source/delay-warning", QueueFixture, notices_cnf,
		   queue_fixture_set_up, test_source_delay_warning, queue_fixture_tear_down);
	g_test_add("/master/source/deleted-meanwhile", QueueFixture, NULL, queue_fixture_set_up,
		   test_source_deleted_meanwhile, queue_fixture_tear_down);
	return g_test_run();
}
