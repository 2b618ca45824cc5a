/*
 * test-queue.c - the durable channel queues: names, the file format,
 * splitting into files, outcome records, administration, scans, stale
 * temporary files, group commit (with injected faults and a real full
 * file system), ids across processes, and the job controller notices.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/imta_cnf.h>
#include <imta/imta.h>
#include <imta/jc_protocol.h>
#include <imta/job.h>
#include <imta/mail_log.h>
#include <imta/queue.h>

#include "queue/group_commit.h"
#include "queue/journal.h"
#include "queue/queue_file.h"

static const char test_cnf[] =
	"\n"
	"l\n"
	"mail.example.com\n"
	"\n"
	"ims-ms subdirs 4\n"
	"ims-ms-daemon\n"
	"\n"
	"tcp_local single_sys\n"
	"tcp-daemon\n"
	"\n"
	"tcp_single single\n"
	"tcp_single-daemon\n"
	"\n"
	"tcp_split addrsperfile 2\n"
	"tcp_split-daemon\n";

typedef struct {
	char *dir;
	char *root;
	ImtaCnf *cnf;
	ImtaQueue *queue;
} Fixture;

static ImtaCnf *
test_cnf_parse(void)
{
	g_autoptr(GError) error = NULL;
	ImtaCnf *cnf = imta_cnf_parse_text("imta.cnf", test_cnf, strlen(test_cnf), NULL, &error);

	g_assert_no_error(error);
	return cnf;
}

static const ImtaChannel *
channel(Fixture *f, const char *name)
{
	const ImtaChannel *ch = imta_cnf_channel_by_name(f->cnf, name);

	g_assert_nonnull(ch);
	return ch;
}

static void
fixture_open(Fixture *f, const char *notify)
{
	g_autoptr(GError) error = NULL;

	f->queue = imta_queue_open(f->root, f->cnf, notify, &error);
	g_assert_no_error(error);
	g_assert_nonnull(f->queue);
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	f->dir = g_dir_make_tmp("imta-queue-XXXXXX", &error);
	g_assert_no_error(error);
	f->root = g_build_filename(f->dir, "queue", NULL);
	f->cnf = test_cnf_parse();
	fixture_open(f, NULL);
}

static int
remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
remove_tree(const char *dir)
{
	nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	imta_queue_close(f->queue);
	imta_cnf_free(f->cnf);
	remove_tree(f->dir);
	g_free(f->root);
	g_free(f->dir);
}

/* ---- helpers ----------------------------------------------------------- */

/* Every regular file under `root`, relative, sorted; the commit journal
 * (.journal) is the committer's, not a queue file. */
static void
list_into(GPtrArray *out, const char *root, const char *rel)
{
	g_autofree char *path = rel[0] != '\0' ? g_build_filename(root, rel, NULL) : g_strdup(root);
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	const char *name;

	if (dir == NULL)
		return;
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *child = rel[0] != '\0' ? g_strconcat(rel, "/", name, NULL)
							: g_strdup(name);
		g_autofree char *abs = g_build_filename(root, child, NULL);

		if (name[0] == '.')
			continue;
		if (g_file_test(abs, G_FILE_TEST_IS_DIR))
			list_into(out, root, child);
		else
			g_ptr_array_add(out, g_steal_pointer(&child));
	}
}

static GPtrArray *
list_files(const char *root)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);

	list_into(out, root, "");
	g_ptr_array_sort(out, (GCompareFunc)g_strcmp0);
	return out;
}

static int
compare_strings(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static GPtrArray *
sorted_files(const char *root)
{
	GPtrArray *files = list_files(root);

	g_ptr_array_sort(files, compare_strings);
	return files;
}

/* The committed names of `enq`, sorted. */
static GPtrArray *
committed_files(ImtaEnqueue *enq)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);

	for (const char *const *p = imta_enqueue_files(enq); *p != NULL; p++)
		g_ptr_array_add(out, g_strdup(*p));
	g_ptr_array_sort(out, compare_strings);
	return out;
}

static void
assert_same_files(GPtrArray *a, GPtrArray *b)
{
	g_assert_cmpuint(a->len, ==, b->len);
	for (guint i = 0; i < a->len; i++)
		g_assert_cmpstr(a->pdata[i], ==, b->pdata[i]);
}

static ImtaEnqueue *
enqueue_start(Fixture *f, const char *content)
{
	g_autoptr(GError) error = NULL;
	ImtaEnqueue *enq = imta_enqueue_new(f->queue, "tcp_local", "ann@example.org");

	g_assert_true(imta_enqueue_write(enq, content, strlen(content), &error));
	g_assert_no_error(error);
	return enq;
}

static void
add_rcpt(ImtaEnqueue *enq, const ImtaChannel *ch, const char *address)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(imta_enqueue_add_recipient(enq, ch, address, NULL, 0, &error));
	g_assert_no_error(error);
}

static void
commit_ok(ImtaEnqueue *enq)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(imta_enqueue_commit(enq, &error));
	g_assert_no_error(error);
}

/* Enqueue `content` for one recipient of `ch`; returns the file. */
static char *
enqueue_one(Fixture *f, const char *ch, const char *address, const char *content)
{
	g_autoptr(ImtaEnqueue) enq = enqueue_start(f, content);
	const char *const *files;

	add_rcpt(enq, channel(f, ch), address);
	commit_ok(enq);
	files = imta_enqueue_files(enq);
	g_assert_nonnull(files[0]);
	g_assert_null(files[1]);
	return g_strdup(files[0]);
}

static ImtaQueueEntry *
read_ok(Fixture *f, const char *path)
{
	g_autoptr(GError) error = NULL;
	ImtaQueueEntry *entry = imta_queue_entry_read(f->queue, path, &error);

	g_assert_no_error(error);
	g_assert_nonnull(entry);
	return entry;
}

static GBytes *
message_content(const ImtaMessage *msg)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GInputStream) in = imta_message_open_content(msg, &error);
	GBytes *bytes;

	g_assert_no_error(error);
	if (imta_message_size(msg) == 0)
		return g_bytes_new(NULL, 0);
	bytes = g_input_stream_read_bytes(in, (gsize)imta_message_size(msg), NULL, &error);
	g_assert_no_error(error);
	return bytes;
}

static void
assert_content(const ImtaQueueEntry *entry, const void *data, gsize length)
{
	g_autoptr(GBytes) got = message_content(entry->message);

	g_assert_cmpint(entry->content_size, ==, (goffset)length);
	g_assert_cmpmem(g_bytes_get_data(got, NULL), g_bytes_get_size(got), data, length);
}

static char *
file_text(Fixture *f, const char *rel)
{
	g_autofree char *path = g_build_filename(f->root, rel, NULL);
	g_autoptr(GError) error = NULL;
	char *text = NULL;

	g_assert_true(g_file_get_contents(path, &text, NULL, &error));
	g_assert_no_error(error);
	return text;
}

static struct stat
stat_rel(Fixture *f, const char *rel)
{
	g_autofree char *path = g_build_filename(f->root, rel, NULL);
	struct stat st;

	g_assert_cmpint(stat(path, &st), ==, 0);
	return st;
}

static gboolean
exists_rel(Fixture *f, const char *rel)
{
	g_autofree char *path = g_build_filename(f->root, rel, NULL);

	return g_file_test(path, G_FILE_TEST_EXISTS);
}

/* A master job, only to report outcomes through the public API. */
static const ImtaMasterJobSource no_source = { NULL, NULL, NULL };

static void
report(const ImtaQueueEntry *entry, guint index, ImtaOutcome outcome, const char *diagnostic)
{
	ImtaMasterJob *job = imta_master_job_new(NULL, NULL, &no_source, NULL);

	imta_master_job_report(job, entry->message, index, outcome, diagnostic);
	imta_master_job_free(job);
}

static void
record_ok(Fixture *f, ImtaQueueEntry *entry, gint64 delay, const char *reason)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(imta_queue_entry_record(f->queue, entry, delay, reason, &error));
	g_assert_no_error(error);
}

/* ---- names ---------------------------------------------------------------- */

static void
test_attempt_prefix(void)
{
	static const struct {
		guint attempts;
		const char *prefix;
	} cases[] = {
		{ 0, "ZZ" }, { 1, "ZY" }, { 25, "ZA" }, { 35, "Z0" }, { 36, "YZ" }, { 37, "YY" },
		{ 71, "Y0" }, { 72, "XZ" }, { 1294, "01" }, { 1295, "00" }, { 1296, "00" },
		{ 100000, "00" },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		char prefix[3];

		imta_queue_attempt_prefix(cases[i].attempts, prefix);
		g_assert_cmpstr(prefix, ==, cases[i].prefix);
	}
	/* Every count up to saturation reads back from its name. */
	for (guint n = 0; n <= 1295; n++) {
		char prefix[3], id[IMTA_QUEUE_ID_LENGTH + 1];
		g_autofree char *name = NULL;
		guint attempts = 9999;

		imta_queue_attempt_prefix(n, prefix);
		name = g_strdup_printf("%s0SJX2K5A1B3C9FQW.00", prefix);
		g_assert_true(imta_queue_parse_name(name, &attempts, id, NULL));
		g_assert_cmpuint(attempts, ==, n);
	}
}

static void
test_parse_name(void)
{
	static const struct {
		const char *name;
		gboolean valid;
		guint attempts;
		const char *id;
		gboolean held;
	} cases[] = {
		{ "ZZ0SJX2K5A1B3C9FQW.00", TRUE, 0, "0SJX2K5A1B3C9FQW", FALSE },
		{ "ZY0F7O00I03CJHZD00.00", TRUE, 1, "0F7O00I03CJHZD00", FALSE },
		{ "YZ0F7O00I03CJHZD00.HELD", TRUE, 36, "0F7O00I03CJHZD00", TRUE },
		{ "000000000000000000.00", TRUE, 1295, "0000000000000000", FALSE },
		{ "ZZ0SJX2K5A1B3C9FQ.00", FALSE },       /* 15-character id */
		{ "ZZ0SJX2K5A1B3C9FQWX.00", FALSE },     /* 17-character id */
		{ "zz0SJX2K5A1B3C9FQW.00", FALSE },      /* lower case */
		{ "ZZ0SJX2K5A1B3C9FqW.00", FALSE },
		{ "ZZ0SJX2K5A1B3C9FQW.01", FALSE },      /* unknown type */
		{ "ZZ0SJX2K5A1B3C9FQW.held", FALSE },
		{ "ZZ0SJX2K5A1B3C9FQW_00", FALSE },
		{ "ZZ0SJX2K5A1B3C9FQW.00.tmp", FALSE },
		{ "$1234-5.tmp", FALSE },
		{ "ZZ0SJX2K5A1B3C9FQW", FALSE },
		{ "", FALSE },
		{ "ZZ0SJX2K5A1B3C-FQW.00", FALSE },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		char id[IMTA_QUEUE_ID_LENGTH + 1] = "";
		guint attempts = 9999;
		gboolean held = -1;

		g_assert_cmpint(imta_queue_parse_name(cases[i].name, &attempts, id, &held), ==,
				cases[i].valid);
		if (!cases[i].valid)
			continue;
		g_assert_cmpuint(attempts, ==, cases[i].attempts);
		g_assert_cmpstr(id, ==, cases[i].id);
		g_assert_cmpint(held, ==, cases[i].held);
	}
	g_assert_false(imta_queue_parse_name(NULL, NULL, NULL, NULL));
}

static gboolean
id_well_formed(const char *id)
{
	if (strlen(id) != IMTA_QUEUE_ID_LENGTH)
		return FALSE;
	for (const char *p = id; *p != '\0'; p++)
		if (!g_ascii_isdigit(*p) && !(*p >= 'A' && *p <= 'Z'))
			return FALSE;
	return TRUE;
}

static void
test_ids_in_process(void)
{
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	for (guint i = 0; i < 200000; i++) {
		char id[IMTA_QUEUE_ID_LENGTH + 1];

		queue_id_new(id);
		g_assert_true(id_well_formed(id));
		g_assert_true(g_hash_table_add(seen, g_strdup(id)));
	}
}

/* Many processes enqueueing at once into one queue: every id differs and
 * every file is there. */
#define FORK_CHILDREN 8
#define FORK_MESSAGES 40

static int
child_enqueue(const char *root, int out_fd)
{
	g_autoptr(ImtaCnf) cnf = test_cnf_parse();
	g_autoptr(ImtaQueue) queue = imta_queue_open(root, cnf, NULL, NULL);

	if (queue == NULL)
		return 1;
	for (guint i = 0; i < FORK_MESSAGES; i++) {
		g_autoptr(ImtaEnqueue) enq = imta_enqueue_new(queue, "tcp_local", "a@example.org");
		g_autofree char *line = NULL;

		if (!imta_enqueue_add_recipient(enq, imta_cnf_channel_by_name(cnf, "l"),
						"b@example.com", NULL, 0, NULL) ||
		    !imta_enqueue_write(enq, "x\n", 2, NULL) || !imta_enqueue_commit(enq, NULL))
			return 1;
		line = g_strdup_printf("%s\n", imta_enqueue_files(enq)[0]);
		if (queue_write_all(out_fd, line, strlen(line)) < 0)
			return 1;
	}
	return 0;
}

static void
test_ids_across_processes(Fixture *f, gconstpointer data)
{
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GPtrArray) files = NULL;
	g_autofree char *output = NULL;
	g_auto(GStrv) lines = NULL;
	pid_t pids[FORK_CHILDREN];
	int fds[2];
	GString *buf = g_string_new(NULL);
	char chunk[4096];
	ssize_t n;

	g_assert_cmpint(pipe(fds), ==, 0);
	for (guint i = 0; i < FORK_CHILDREN; i++) {
		pids[i] = fork();
		g_assert_cmpint(pids[i], >=, 0);
		if (pids[i] == 0) {
			close(fds[0]);
			_exit(child_enqueue(f->root, fds[1]));
		}
	}
	close(fds[1]);
	while ((n = read(fds[0], chunk, sizeof chunk)) > 0)
		g_string_append_len(buf, chunk, n);
	close(fds[0]);
	for (guint i = 0; i < FORK_CHILDREN; i++) {
		int status;

		g_assert_cmpint(waitpid(pids[i], &status, 0), ==, pids[i]);
		g_assert_true(WIFEXITED(status));
		g_assert_cmpint(WEXITSTATUS(status), ==, 0);
	}
	output = g_string_free(buf, FALSE);
	lines = g_strsplit(output, "\n", -1);
	g_assert_cmpuint(g_strv_length(lines), ==, FORK_CHILDREN * FORK_MESSAGES + 1);
	for (guint i = 0; lines[i][0] != '\0'; i++) {
		g_autoptr(ImtaQueueEntry) entry = read_ok(f, lines[i]);

		g_assert_true(id_well_formed(entry->id));
		g_assert_true(g_hash_table_add(seen, g_strdup(entry->id)));
	}
	files = list_files(f->root);
	g_assert_cmpuint(files->len, ==, FORK_CHILDREN * FORK_MESSAGES);
}

/* ---- enqueue and read back -------------------------------------------- */

/* The exact bytes of a queue file. */
static void
test_file_format(Fixture *f, gconstpointer data)
{
	g_autoptr(ImtaEnqueue) enq = enqueue_start(f, "Subject: hi\n\nbody\n");
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaQueueEntry) entry = NULL;
	g_autofree char *text = NULL;
	g_autofree char *want = NULL;
	g_autofree char *want_path = NULL;
	const char *path;

	imta_enqueue_set_envid(enq, "QQ314159");
	imta_enqueue_set_ret(enq, IMTA_RET_HDRS);
	imta_enqueue_set_priority(enq, IMTA_PRIORITY_URGENT);
	g_assert_true(imta_enqueue_add_recipient(enq, channel(f, "l"), "bob@Example.COM",
						 "rfc822;bob+x@example.com",
						 IMTA_NOTIFY_SUCCESS | IMTA_NOTIFY_FAILURE, &error));
	g_assert_true(imta_enqueue_add_recipient(enq, channel(f, "l"), "carol@example.net", NULL,
						 IMTA_NOTIFY_NEVER, &error));
	g_assert_no_error(error);
	commit_ok(enq);
	path = imta_enqueue_files(enq)[0];
	entry = read_ok(f, path);
	want_path = g_strdup_printf("l/ZZ%s.00", entry->id);
	g_assert_cmpstr(path, ==, want_path);
	g_assert_cmpstr(entry->path, ==, want_path);
	text = file_text(f, path);
	want = g_strdup_printf("IMTAQ1\n"
			       "id %s\n"
			       "created %" G_GINT64_FORMAT "\n"
			       "source tcp_local\n"
			       "channel l\n"
			       "host example.com\n"
			       "priority urgent\n"
			       "from ann@example.org\n"
			       "envid QQ314159\n"
			       "ret hdrs\n"
			       "rcpt SUCCESS,FAILURE rfc822;bob+2Bx@example.com bob@Example.COM\n"
			       "rcpt NEVER - carol@example.net\n"
			       "size 18\n"
			       "\n"
			       "Subject: hi\n\nbody\n",
			       entry->id, entry->created);
	g_assert_cmpstr(text, ==, want);
}

/* Every envelope field survives hostile values byte for byte, and none
 * can add a line to the envelope. */
static void
test_roundtrip_hostile(Fixture *f, gconstpointer data)
{
	static const char from[] = "odd sender\n+x\xe9@example.org";
	static const char envid[] = "env id\nX-Injected: yes";
	static const struct {
		const char *address;
		const char *orcpt;
		guint notify;
	} rcpts[] = {
		{ "bob smith@example.com", "rfc822;bob smith+\r\n@example.com",
		  IMTA_NOTIFY_DELAY | IMTA_NOTIFY_FAILURE },
		{ "line\nbreak@example.com", "-", 0 },
		{ "plus+tag@example.com", NULL, IMTA_NOTIFY_NEVER },
		{ "caf\xc3\xa9@example.com", "utf-8;caf\xc3\xa9@example.com", IMTA_NOTIFY_SUCCESS },
		{ "rcpt - x@example.com", "rcpt", 0 },
	};
	char content[1024];
	g_autoptr(ImtaEnqueue) enq = imta_enqueue_new(f->queue, "tcp_local", from);
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaQueueEntry) entry = NULL;
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;

	for (guint i = 0; i < sizeof content; i++)
		content[i] = (char)(i * 7 + 3);
	imta_enqueue_set_envid(enq, envid);
	imta_enqueue_set_ret(enq, IMTA_RET_FULL);
	for (guint i = 0; i < G_N_ELEMENTS(rcpts); i++)
		g_assert_true(imta_enqueue_add_recipient(enq, channel(f, "l"), rcpts[i].address,
							 rcpts[i].orcpt, rcpts[i].notify, &error));
	/* Odd-sized pieces. */
	g_assert_true(imta_enqueue_write(enq, content, 1, &error));
	g_assert_true(imta_enqueue_write(enq, content + 1, 700, &error));
	g_assert_true(imta_enqueue_write(enq, content + 701, sizeof content - 701, &error));
	g_assert_no_error(error);
	commit_ok(enq);
	entry = read_ok(f, imta_enqueue_files(enq)[0]);

	g_assert_cmpstr(imta_message_return_path(entry->message), ==, from);
	g_assert_cmpstr(imta_message_envid(entry->message), ==, envid);
	g_assert_cmpint(imta_message_ret(entry->message), ==, IMTA_RET_FULL);
	g_assert_cmpstr(imta_message_id(entry->message), ==, entry->id);
	g_assert_cmpstr(entry->channel, ==, "l");
	g_assert_cmpstr(entry->source, ==, "tcp_local");
	g_assert_cmpstr(entry->host, ==, "example.com");
	g_assert_cmpint(entry->priority, ==, IMTA_PRIORITY_NORMAL);
	g_assert_cmpuint(entry->attempts, ==, 0);
	g_assert_cmpint(entry->next_attempt, ==, 0);
	g_assert_null(entry->last_error);
	g_assert_false(entry->held);
	g_assert_cmpint(entry->created, <=, g_get_real_time() / G_USEC_PER_SEC);
	g_assert_cmpint(entry->created, >, g_get_real_time() / G_USEC_PER_SEC - 60);
	g_assert_cmpuint(imta_message_recipient_count(entry->message), ==, G_N_ELEMENTS(rcpts));
	for (guint i = 0; i < G_N_ELEMENTS(rcpts); i++) {
		const ImtaRecipient *r = imta_message_recipient(entry->message, i);

		g_assert_cmpstr(r->address, ==, rcpts[i].address);
		g_assert_cmpstr(r->orcpt, ==, rcpts[i].orcpt);
		g_assert_cmpuint(r->notify, ==, rcpts[i].notify);
		g_assert_cmpint(r->outcome, ==, IMTA_OUTCOME_NONE);
		g_assert_null(r->diagnostic);
	}
	assert_content(entry, content, sizeof content);

	/* IMTAQ1, id, created, source, channel, host, priority, from, envid,
	 * ret, five rcpt, size: 16 lines, then the blank line. */
	text = file_text(f, entry->path);
	lines = g_strsplit(text, "\n", 18);
	g_assert_cmpstr(lines[16], ==, "");
	g_assert_true(g_str_has_prefix(lines[15], "size 1024"));
	for (guint i = 0; i < 16; i++) {
		g_assert_false(g_str_has_prefix(lines[i], "X-Injected"));
		for (const char *p = lines[i]; *p != '\0'; p++)
			g_assert_true(*p >= 0x20 && *p < 0x7f);
	}
	g_assert_cmpstr(lines[7], ==, "from odd+20sender+0A+2Bx+E9@example.org");
	g_assert_cmpstr(lines[10], ==, "rcpt FAILURE,DELAY rfc822;bob+20smith+2B+0D+0A@example.com "
				       "bob+20smith@example.com");
	g_assert_cmpstr(lines[11], ==, "rcpt - +2D line+0Abreak@example.com");
	g_assert_cmpstr(lines[14], ==, "rcpt - rcpt rcpt+20-+20x@example.com");
}

/* Large content is spooled, not kept in memory, and copied intact. */
static void
test_large_content(Fixture *f, gconstpointer data)
{
	const gsize size = 5 * 1024 * 1024 + 123;
	g_autofree char *content = g_malloc(size);
	g_autoptr(ImtaEnqueue) enq = imta_enqueue_new(f->queue, "tcp_local", "");
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaQueueEntry) entry = NULL;
	g_autofree char *empty = NULL;
	gsize pos = 0, piece = 1;

	for (gsize i = 0; i < size; i++)
		content[i] = (char)(i % 251);
	while (pos < size) {
		gsize n = MIN(piece, size - pos);

		g_assert_true(imta_enqueue_write(enq, content + pos, n, &error));
		g_assert_no_error(error);
		pos += n;
		piece = piece * 3 + 1;
	}
	add_rcpt(enq, channel(f, "l"), "a@example.com");
	add_rcpt(enq, channel(f, "ims-ms"), "b@example.com");
	commit_ok(enq);
	for (const char *const *p = imta_enqueue_files(enq); *p != NULL; p++) {
		g_autoptr(ImtaQueueEntry) e = read_ok(f, *p);

		g_assert_cmpstr(imta_message_return_path(e->message), ==, "");
		assert_content(e, content, size);
	}
	/* An empty message is a message too. */
	empty = enqueue_one(f, "l", "c@example.com", "");
	entry = read_ok(f, empty);
	assert_content(entry, "", 0);
}

/* Write `size` bytes of a pattern to a new enqueue, in pieces. */
static ImtaEnqueue *
enqueue_sized(Fixture *f, const char *content, gsize size)
{
	ImtaEnqueue *enq = imta_enqueue_new(f->queue, "tcp_local", "ann@example.org");
	g_autoptr(GError) error = NULL;

	for (gsize pos = 0; pos < size; pos += 4000) {
		g_assert_true(imta_enqueue_write(enq, content + pos, MIN(4000, size - pos), &error));
		g_assert_no_error(error);
	}
	return enq;
}

/* A file about to be delivered comes with its content in memory up to
 * IMTA_QUEUE_LOAD_CONTENT_MAX, whether or not the envelope's read reached
 * all of it, and never with the outcome records that follow; larger
 * content, and any content of a plain read, stays in the file.
 * imta_message_read_content() gives the same bytes from either. */
static void
test_load_content(Fixture *f, gconstpointer data)
{
	const gsize sizes[] = { 0, 100, 200 * 1024, IMTA_QUEUE_LOAD_CONTENT_MAX,
				IMTA_QUEUE_LOAD_CONTENT_MAX + 1 };
	g_autofree char *content = g_malloc(IMTA_QUEUE_LOAD_CONTENT_MAX + 1);

	for (gsize i = 0; i < IMTA_QUEUE_LOAD_CONTENT_MAX + 1; i++)
		content[i] = (char)('a' + i % 23);
	for (guint k = 0; k < G_N_ELEMENTS(sizes); k++) {
		g_autoptr(ImtaEnqueue) enq = enqueue_sized(f, content, sizes[k]);
		g_autoptr(ImtaQueueEntry) read = NULL;
		g_autoptr(ImtaQueueEntry) loaded = NULL;
		g_autoptr(ImtaQueueEntry) again = NULL;
		g_autoptr(GError) error = NULL;
		gboolean in_memory = sizes[k] <= IMTA_QUEUE_LOAD_CONTENT_MAX;

		add_rcpt(enq, channel(f, "l"), "a@example.com");
		add_rcpt(enq, channel(f, "l"), "b@example.com");
		commit_ok(enq);
		read = read_ok(f, imta_enqueue_files(enq)[0]);
		g_assert_null(imta_message_content_bytes(read->message));
		assert_content(read, content, sizes[k]);

		loaded = imta_queue_entry_load(f->queue, read->path, &error);
		g_assert_no_error(error);
		g_assert_true((imta_message_content_bytes(loaded->message) != NULL) == in_memory);
		assert_content(loaded, content, sizes[k]);
		/* The first bytes, or all, the same from the file and from memory. */
		for (guint m = 0; m < 2; m++) {
			const ImtaMessage *msg = m == 0 ? read->message : loaded->message;
			g_autoptr(GBytes) head = imta_message_read_content(msg, 150, &error);
			g_autoptr(GBytes) all = imta_message_read_content(msg, G_MAXSIZE, &error);

			g_assert_no_error(error);
			g_assert_cmpmem(g_bytes_get_data(head, NULL), g_bytes_get_size(head), content,
					MIN(sizes[k], 150));
			g_assert_cmpmem(g_bytes_get_data(all, NULL), g_bytes_get_size(all), content,
					sizes[k]);
		}

		report(loaded, 0, IMTA_OUTCOME_DELIVERED, "ok");
		report(loaded, 1, IMTA_OUTCOME_RETRY, "try later");
		record_ok(f, loaded, 60, "later");
		again = imta_queue_entry_load(f->queue, loaded->path, &error);
		g_assert_no_error(error);
		g_assert_true((imta_message_content_bytes(again->message) != NULL) == in_memory);
		assert_content(again, content, sizes[k]);
		g_assert_cmpint(imta_message_recipient(again->message, 0)->outcome, ==,
				IMTA_OUTCOME_DELIVERED);
	}
}

/* Content is kept in memory up to QUEUE_CONTENT_MEMORY_MAX while the
 * process's budget lasts, spooled beyond either, intact both ways, and
 * every byte of the budget comes back. */
static void
test_content_memory(Fixture *f, gconstpointer data)
{
	const gsize max = QUEUE_CONTENT_MEMORY_MAX;
	const gsize sizes[] = { QUEUE_CONTENT_BUFFER, QUEUE_CONTENT_BUFFER + 1, 100 * 1024, max,
				max + 1 };
	g_autofree char *content = g_malloc(max + 1);
	g_autoptr(GPtrArray) held = g_ptr_array_new_with_free_func((GDestroyNotify)imta_enqueue_free);
	guint in_memory = 0;
	ImtaEnqueue *enq;

	for (gsize i = 0; i <= max; i++)
		content[i] = (char)('a' + i % 23);
	content[0] = '\n';
	for (guint i = 0; i < G_N_ELEMENTS(sizes); i++) {
		g_autoptr(ImtaEnqueue) one = enqueue_sized(f, content, sizes[i]);
		g_autoptr(ImtaQueueEntry) entry = NULL;

		g_assert_cmpint(queue_enqueue_spooled(one), ==, sizes[i] > max);
		g_assert_cmpuint(queue_content_memory_reserved(), <=, max - QUEUE_CONTENT_BUFFER);
		add_rcpt(one, channel(f, "l"), "a@example.com");
		commit_ok(one);
		entry = read_ok(f, imta_enqueue_files(one)[0]);
		assert_content(entry, content, sizes[i]);
	}
	g_assert_cmpuint(queue_content_memory_reserved(), ==, 0);

	/* Many large messages at once: the budget holds, the rest spool. */
	for (guint i = 0; i < 2 * QUEUE_CONTENT_MEMORY_BUDGET / max; i++) {
		enq = enqueue_sized(f, content, max);
		in_memory += !queue_enqueue_spooled(enq);
		g_ptr_array_add(held, enq);
		g_assert_cmpuint(queue_content_memory_reserved(), <=, QUEUE_CONTENT_MEMORY_BUDGET);
	}
	g_assert_cmpuint(in_memory, >=, QUEUE_CONTENT_MEMORY_BUDGET / max);
	g_assert_cmpuint(in_memory, <, held->len);
	enq = held->pdata[held->len - 1];
	g_assert_true(queue_enqueue_spooled(enq));
	add_rcpt(enq, channel(f, "l"), "b@example.com");
	commit_ok(enq);
	{
		g_autoptr(ImtaQueueEntry) entry = read_ok(f, imta_enqueue_files(enq)[0]);

		assert_content(entry, content, max);
	}
	g_ptr_array_set_size(held, 0);
	g_assert_cmpuint(queue_content_memory_reserved(), ==, 0);
	/* Freed, the budget serves again. */
	enq = enqueue_sized(f, content, max);
	g_assert_false(queue_enqueue_spooled(enq));
	imta_enqueue_free(enq);
}

/* ---- splitting into files ----------------------------------------------- */

typedef struct {
	const char *channel;
	const char *host;
	const char *rcpts; /* space-separated */
} WantFile;

/* The files of `enq` as "channel host rcpt rcpt ..." lines, sorted. */
static GPtrArray *
describe_files(Fixture *f, ImtaEnqueue *enq)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);

	for (const char *const *p = imta_enqueue_files(enq); *p != NULL; p++) {
		g_autoptr(ImtaQueueEntry) entry = read_ok(f, *p);
		GString *line = g_string_new(NULL);

		g_assert_true(g_str_has_prefix(*p, entry->channel));
		g_string_printf(line, "%s %s", entry->channel, entry->host);
		for (guint i = 0; i < imta_message_recipient_count(entry->message); i++)
			g_string_append_printf(line, " %s",
					       imta_message_recipient(entry->message, i)->address);
		assert_content(entry, "split\n", 6);
		g_ptr_array_add(out, g_string_free(line, FALSE));
	}
	g_ptr_array_sort(out, compare_strings);
	return out;
}

static const struct {
	const char *name;
	const char *rcpts[8];    /* "channel address" */
	const char *files[8];    /* as describe_files, sorted */
} split_cases[] = {
	{ "per channel",
	  { "l a@example.com", "ims-ms b@example.org", "l c@example.net", "ims-ms d@example.org" },
	  { "ims-ms example.org b@example.org d@example.org",
	    "l example.com a@example.com c@example.net" } },
	{ "multiple: host of the first recipient",
	  { "l x@B.example", "l y@a.example" },
	  { "l b.example x@B.example y@a.example" } },
	{ "single_sys: per destination host, case-insensitive",
	  { "tcp_local a@x.example", "tcp_local b@Y.example", "tcp_local c@X.EXAMPLE",
	    "tcp_local d@y.example" },
	  { "tcp_local x.example a@x.example c@X.EXAMPLE",
	    "tcp_local y.example b@Y.example d@y.example" } },
	{ "single: per recipient",
	  { "tcp_single a@x.example", "tcp_single b@x.example", "tcp_single c@x.example" },
	  { "tcp_single x.example a@x.example", "tcp_single x.example b@x.example",
	    "tcp_single x.example c@x.example" } },
	{ "addrsperfile 2",
	  { "tcp_split a@x.example", "tcp_split b@y.example", "tcp_split c@x.example",
	    "tcp_split d@z.example", "tcp_split e@x.example" },
	  { "tcp_split x.example a@x.example b@y.example",
	    "tcp_split x.example c@x.example d@z.example",
	    "tcp_split x.example e@x.example" } },
	{ "a local part without a domain",
	  { "l postmaster" },
	  { "l  postmaster" } },
};

static void
test_split(Fixture *f, gconstpointer data)
{
	for (guint c = 0; c < G_N_ELEMENTS(split_cases); c++) {
		g_autoptr(ImtaEnqueue) enq = enqueue_start(f, "split\n");
		g_autoptr(GPtrArray) got = NULL;
		guint n = 0;

		g_test_message("case: %s", split_cases[c].name);
		for (guint i = 0; split_cases[c].rcpts[i] != NULL; i++) {
			g_auto(GStrv) w = g_strsplit(split_cases[c].rcpts[i], " ", 2);

			add_rcpt(enq, channel(f, w[0]), w[1]);
		}
		commit_ok(enq);
		got = describe_files(f, enq);
		while (split_cases[c].files[n] != NULL)
			n++;
		g_assert_cmpuint(got->len, ==, n);
		for (guint i = 0; i < n; i++)
			g_assert_cmpstr(got->pdata[i], ==, split_cases[c].files[i]);
	}
}

/* With subdirs 4 the files land in 000 ... 003, each a real directory. */
static void
test_subdirs(Fixture *f, gconstpointer data)
{
	gboolean used[4] = { FALSE };
	g_autoptr(GPtrArray) all = NULL;

	for (guint i = 0; i < 64; i++) {
		g_autofree char *path = enqueue_one(f, "ims-ms", "a@example.com", "x\n");
		g_autofree char *dir = NULL, *name = NULL;
		guint sub;

		g_assert_true(queue_path_split(path, &dir, &name));
		g_assert_true(g_str_has_prefix(dir, "ims-ms/00"));
		g_assert_cmpuint(strlen(dir), ==, strlen("ims-ms/000"));
		sub = (guint)(dir[9] - '0');
		g_assert_cmpuint(sub, <, 4);
		used[sub] = TRUE;
		g_assert_true(imta_queue_parse_name(name, NULL, NULL, NULL));
	}
	for (guint i = 0; i < 4; i++)
		g_assert_true(used[i]);
	/* A channel without subdirs keeps its files in its own directory. */
	g_free(enqueue_one(f, "l", "a@example.com", "x\n"));
	all = list_files(f->root);
	g_assert_cmpuint(all->len, ==, 65);
	for (guint i = 0; i < all->len; i++) {
		const char *p = all->pdata[i];

		g_assert_true(g_str_has_prefix(p, "ims-ms/00") || g_str_has_prefix(p, "l/ZZ"));
	}
}

/* An enqueue that is never committed leaves no file at all, whatever it
 * spooled. */
static void
test_uncommitted(Fixture *f, gconstpointer data)
{
	g_autofree char *big = g_malloc0(200 * 1024);
	g_autoptr(GPtrArray) files = NULL;
	ImtaEnqueue *enq = enqueue_start(f, "never committed\n");

	g_assert_true(imta_enqueue_write(enq, big, 200 * 1024, NULL));
	add_rcpt(enq, channel(f, "l"), "a@example.com");
	imta_enqueue_free(enq);
	files = list_files(f->root);
	g_assert_cmpuint(files->len, ==, 0);
}

static void
test_enqueue_errors(Fixture *f, gconstpointer data)
{
	g_autofree char *long_address = g_strnfill(QUEUE_MAX_FIELD + 1, 'a');
	g_autoptr(ImtaEnqueue) enq = enqueue_start(f, "x\n");
	g_autoptr(GError) error = NULL;

	g_assert_false(imta_enqueue_commit(enq, &error));
	g_assert_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_LIMIT);
	g_assert_cmpstr(error->message, ==, "a message needs at least one recipient");
	g_clear_error(&error);
	g_assert_false(imta_enqueue_add_recipient(enq, channel(f, "l"), "", NULL, 0, &error));
	g_assert_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_FORMAT);
	g_assert_cmpstr(error->message, ==, "an empty recipient address cannot be queued");
	g_clear_error(&error);
	g_assert_false(imta_enqueue_add_recipient(enq, channel(f, "l"), long_address, NULL, 0,
						  &error));
	g_assert_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_LIMIT);
	g_assert_cmpstr(error->message, ==, "recipient address longer than 16384 bytes");
	g_clear_error(&error);
	g_assert_false(imta_enqueue_add_recipient(enq, channel(f, "l"), "a@b", NULL, 1 << 7,
						  &error));
	g_assert_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_FORMAT);
	g_assert_cmpstr(error->message, ==, "NOTIFY value 0x80 has unknown bits");
	g_clear_error(&error);
	/* After the refusals the enqueue still works. */
	add_rcpt(enq, channel(f, "l"), "a@example.com");
	commit_ok(enq);
}

/* ---- outcome records --------------------------------------------------- */

static const char *
trailer_of(const char *text)
{
	const char *blank = strstr(text, "\n\n");

	g_assert_nonnull(blank);
	return blank + 2;
}

static void
test_record_partial(Fixture *f, gconstpointer data)
{
	g_autoptr(ImtaEnqueue) enq = enqueue_start(f, "body\n");
	g_autoptr(ImtaQueueEntry) entry = NULL;
	g_autoptr(ImtaQueueEntry) again = NULL;
	g_autoptr(ImtaQueueEntry) third = NULL;
	g_autofree char *text = NULL;
	g_autofree char *old_path = NULL;
	g_autofree char *want = NULL;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	struct stat st;

	add_rcpt(enq, channel(f, "l"), "a@example.com");
	add_rcpt(enq, channel(f, "l"), "b@example.com");
	add_rcpt(enq, channel(f, "l"), "c@example.com");
	commit_ok(enq);
	entry = read_ok(f, imta_enqueue_files(enq)[0]);
	old_path = g_strdup(entry->path);

	report(entry, 0, IMTA_OUTCOME_DELIVERED, "2.0.0 ok");
	report(entry, 1, IMTA_OUTCOME_RETRY, "4.2.2 mailbox full");
	record_ok(f, entry, 600, "4.4.1 no answer from host");

	/* Renamed to one attempt, dated to the next attempt. */
	g_assert_false(exists_rel(f, old_path));
	want = g_strdup_printf("l/ZY%s.00", entry->id);
	g_assert_cmpstr(entry->path, ==, want);
	g_assert_cmpstr(entry->path + 4, ==, old_path + 4);
	g_clear_pointer(&want, g_free);
	g_assert_cmpuint(entry->attempts, ==, 1);
	g_assert_cmpint(entry->next_attempt, >=, now + 600);
	g_assert_cmpint(entry->next_attempt, <=, now + 602);
	st = stat_rel(f, entry->path);
	g_assert_cmpint((gint64)st.st_mtime, ==, entry->next_attempt);

	/* The trailer, exactly. */
	text = file_text(f, entry->path);
	{
		const char *t = trailer_of(text) + 5; /* past "body\n" */
		g_auto(GStrv) lines = g_strsplit(t, "\n", -1);
		g_auto(GStrv) r0 = NULL, r1 = NULL, a = NULL;

		g_assert_cmpuint(g_strv_length(lines), ==, 4);
		g_assert_cmpstr(lines[3], ==, "");
		r0 = g_strsplit(lines[0], " ", -1);
		r1 = g_strsplit(lines[1], " ", -1);
		a = g_strsplit(lines[2], " ", -1);
		g_assert_cmpstr(r0[0], ==, "R");
		g_assert_cmpstr(r0[2], ==, "0");
		g_assert_cmpstr(r0[3], ==, "D");
		g_assert_cmpstr(r0[4], ==, "2.0.0+20ok");
		g_assert_cmpstr(r1[2], ==, "1");
		g_assert_cmpstr(r1[3], ==, "Q");
		g_assert_cmpstr(r1[4], ==, "4.2.2+20mailbox+20full");
		g_assert_cmpstr(a[0], ==, "A");
		g_assert_cmpstr(a[2], ==, "1");
		want = g_strdup_printf("%" G_GINT64_FORMAT, entry->next_attempt);
		g_assert_cmpstr(a[3], ==, want);
		g_assert_cmpstr(a[4], ==, "4.4.1+20no+20answer+20from+20host");
	}

	/* Read back: the recorded outcomes come with the recipients. */
	again = read_ok(f, entry->path);
	g_assert_cmpuint(again->attempts, ==, 1);
	g_assert_cmpint(again->next_attempt, ==, entry->next_attempt);
	g_assert_cmpstr(again->last_error, ==, "4.4.1 no answer from host");
	g_assert_cmpint(imta_message_recipient(again->message, 0)->outcome, ==,
			IMTA_OUTCOME_DELIVERED);
	g_assert_cmpstr(imta_message_recipient(again->message, 0)->diagnostic, ==, "2.0.0 ok");
	g_assert_cmpint(imta_message_recipient(again->message, 1)->outcome, ==, IMTA_OUTCOME_RETRY);
	g_assert_cmpstr(imta_message_recipient(again->message, 1)->diagnostic, ==,
			"4.2.2 mailbox full");
	g_assert_cmpint(imta_message_recipient(again->message, 2)->outcome, ==, IMTA_OUTCOME_NONE);
	g_assert_null(imta_message_recipient(again->message, 2)->diagnostic);
	assert_content(again, "body\n", 5);

	/* Second attempt: only what changed is recorded; the last record per
	 * recipient wins. */
	report(again, 1, IMTA_OUTCOME_FAILED, "5.2.2 over quota for good");
	report(again, 2, IMTA_OUTCOME_RETRY, "4.4.1 later");
	record_ok(f, again, 3600, NULL);
	g_assert_true(g_str_has_prefix(again->path, "l/ZX"));
	g_free(text);
	text = file_text(f, again->path);
	{
		g_auto(GStrv) lines = g_strsplit(trailer_of(text) + 5, "\n", -1);

		g_assert_cmpuint(g_strv_length(lines), ==, 7);
		g_assert_true(g_str_has_prefix(lines[3], "R "));
		g_assert_true(g_str_has_suffix(lines[3], " 1 F 5.2.2+20over+20quota+20for+20good"));
		g_assert_true(g_str_has_suffix(lines[4], " 2 Q 4.4.1+20later"));
		g_assert_true(g_str_has_prefix(lines[5], "A "));
		g_assert_true(g_str_has_suffix(lines[5], " "));
	}
	third = read_ok(f, again->path);
	g_assert_cmpuint(third->attempts, ==, 2);
	g_assert_null(third->last_error);
	g_assert_cmpint(imta_message_recipient(third->message, 0)->outcome, ==,
			IMTA_OUTCOME_DELIVERED);
	g_assert_cmpint(imta_message_recipient(third->message, 1)->outcome, ==, IMTA_OUTCOME_FAILED);
	g_assert_cmpint(imta_message_recipient(third->message, 2)->outcome, ==, IMTA_OUTCOME_RETRY);
	g_assert_cmpstr(imta_message_recipient(third->message, 2)->diagnostic, ==, "4.4.1 later");
}

static void
test_record_all_final(Fixture *f, gconstpointer data)
{
	g_autoptr(ImtaEnqueue) enq = enqueue_start(f, "body\n");
	g_autoptr(ImtaQueueEntry) entry = NULL;
	g_autoptr(GPtrArray) files = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *path = NULL;

	add_rcpt(enq, channel(f, "l"), "a@example.com");
	add_rcpt(enq, channel(f, "l"), "b@example.com");
	commit_ok(enq);
	path = g_strdup(imta_enqueue_files(enq)[0]);
	entry = read_ok(f, path);
	report(entry, 0, IMTA_OUTCOME_DELIVERED, "2.0.0 ok");
	report(entry, 1, IMTA_OUTCOME_FAILED, "5.1.1 no such user");
	record_ok(f, entry, 600, NULL);
	g_assert_null(entry->path);
	g_assert_false(exists_rel(f, path));
	files = list_files(f->root);
	g_assert_cmpuint(files->len, ==, 0);
	g_assert_null(imta_queue_entry_read(f->queue, path, &error));
	g_assert_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_NOT_FOUND);
}

/* The attempt counter runs down the names and saturates at 00. */
static void
test_record_saturates(Fixture *f, gconstpointer data)
{
	g_autofree char *path = enqueue_one(f, "l", "a@example.com", "x\n");
	g_autoptr(ImtaQueueEntry) entry = read_ok(f, path);
	g_autofree char *old = NULL;
	g_autofree char *new_path = NULL;

	/* Pretend it was tried 1294 times. */
	old = g_strdup(entry->path);
	new_path = g_strdup_printf("l/01%s.00", entry->id);
	g_assert_cmpint(queue_rename_noreplace(f->queue->root_fd, old, new_path), ==, 0);
	imta_queue_entry_free(g_steal_pointer(&entry));
	entry = read_ok(f, new_path);
	g_assert_cmpuint(entry->attempts, ==, 1294);
	record_ok(f, entry, 1, "again");
	g_assert_true(g_str_has_prefix(entry->path, "l/00"));
	record_ok(f, entry, 1, "and again");
	g_assert_true(g_str_has_prefix(entry->path, "l/00"));
	g_assert_true(exists_rel(f, entry->path));
}

/* ---- administration --------------------------------------------------- */

static int
bind_notify_socket(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpuint(strlen(path), <, sizeof addr.sun_path);
	strcpy(addr.sun_path, path);
	g_assert_cmpint(bind(fd, (struct sockaddr *)&addr, sizeof addr), ==, 0);
	return fd;
}

static char *
receive_notice(int fd)
{
	char buf[IMTA_JC_MAX_LINE];
	ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);

	if (n < 0)
		return NULL;
	return g_strndup(buf, (gsize)n);
}

static void
test_hold_release_delete(Fixture *f, gconstpointer data)
{
	g_autofree char *sock = g_build_filename(f->dir, "notify", NULL);
	int sfd = bind_notify_socket(sock);
	g_autofree char *path = NULL;
	g_autofree char *notice = NULL;
	g_autofree char *gone = NULL;
	g_autofree char *want = NULL;
	g_autoptr(ImtaQueueEntry) entry = NULL;
	g_autoptr(ImtaQueueEntry) reread = NULL;
	g_autoptr(ImtaQueueEntry) released = NULL;
	g_autoptr(GError) error = NULL;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	struct stat st;

	imta_queue_close(f->queue);
	fixture_open(f, sock);
	path = enqueue_one(f, "ims-ms", "a@example.com", "x\n");
	g_free(receive_notice(sfd));
	entry = read_ok(f, path);
	report(entry, 0, IMTA_OUTCOME_RETRY, "4.0.0 later");
	record_ok(f, entry, 7200, "later");

	/* Hold: ZY...00 becomes ZY...HELD. */
	g_assert_true(imta_queue_entry_hold(f->queue, entry, &error));
	g_assert_no_error(error);
	g_assert_true(entry->held);
	want = g_strdup_printf("%.*sZY%s.HELD", (int)(strrchr(path, '/') - path + 1), path,
			       entry->id);
	g_assert_cmpstr(entry->path, ==, want);
	g_assert_true(exists_rel(f, entry->path));
	reread = read_ok(f, entry->path);
	g_assert_true(reread->held);
	g_assert_cmpuint(reread->attempts, ==, 1);
	assert_content(reread, "x\n", 2);
	/* Holding twice is harmless. */
	g_assert_true(imta_queue_entry_hold(f->queue, entry, &error));
	g_assert_cmpstr(entry->path, ==, want);

	/* Release: back to .00, due now, and the job controller hears "R". */
	g_assert_true(imta_queue_entry_release(f->queue, reread, &error));
	g_assert_no_error(error);
	g_assert_false(reread->held);
	g_assert_true(g_str_has_suffix(reread->path, ".00"));
	g_assert_cmpint(reread->next_attempt, ==, 0);
	st = stat_rel(f, reread->path);
	g_assert_cmpint((gint64)st.st_mtime, >=, now);
	g_assert_cmpint((gint64)st.st_mtime, <=, now + 2);
	notice = receive_notice(sfd);
	g_assert_nonnull(notice);
	g_assert_true(g_str_has_prefix(notice, "R "));
	g_assert_cmpstr(notice + 2, ==, reread->path);
	/* Released means due now, though the A record said two hours. */
	released = read_ok(f, reread->path);
	g_assert_cmpint(released->next_attempt, <=, now + 2);
	g_assert_cmpstr(released->last_error, ==, "later");

	/* `entry` still says HELD: it finds the file under .00 and holds it. */
	g_assert_true(imta_queue_entry_hold(f->queue, entry, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(entry->path, ==, want);
	g_assert_true(exists_rel(f, want));

	/* Delete through the entry that thinks it is not held. */
	gone = g_strdup(entry->path);
	g_assert_true(imta_queue_entry_delete(f->queue, released, &error));
	g_assert_no_error(error);
	g_assert_null(released->path);
	g_assert_false(exists_rel(f, gone));
	g_assert_false(imta_queue_entry_delete(f->queue, entry, &error));
	g_assert_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_NOT_FOUND);
	g_free(want);
	want = g_strdup_printf("no queue file %s/%s", f->root, gone);
	g_assert_cmpstr(error->message, ==, want);
	close(sfd);
}

/* ---- damaged files ----------------------------------------------------- */

static void
truncate_rel(Fixture *f, const char *rel, goffset size)
{
	g_autofree char *path = g_build_filename(f->root, rel, NULL);

	g_assert_cmpint(truncate(path, size), ==, 0);
}

static void
append_rel(Fixture *f, const char *rel, const char *text)
{
	g_autofree char *path = g_build_filename(f->root, rel, NULL);
	FILE *fp = fopen(path, "a");

	g_assert_nonnull(fp);
	fputs(text, fp);
	g_assert_cmpint(fclose(fp), ==, 0);
}

/* A crash in the middle of an append leaves a torn last line: ignored on
 * read, and set apart by the next append. */
static void
test_torn_trailer(Fixture *f, gconstpointer data)
{
	g_autoptr(ImtaEnqueue) enq = enqueue_start(f, "body\n");
	g_autoptr(ImtaQueueEntry) entry = NULL;
	g_autoptr(ImtaQueueEntry) torn = NULL;
	g_autoptr(ImtaQueueEntry) after = NULL;
	g_autofree char *text = NULL;
	struct stat st;
	const char *last_r;

	add_rcpt(enq, channel(f, "l"), "a@example.com");
	add_rcpt(enq, channel(f, "l"), "b@example.com");
	add_rcpt(enq, channel(f, "l"), "c@example.com");
	commit_ok(enq);
	entry = read_ok(f, imta_enqueue_files(enq)[0]);
	report(entry, 0, IMTA_OUTCOME_DELIVERED, "ok");
	report(entry, 1, IMTA_OUTCOME_RETRY, "try later");
	record_ok(f, entry, 60, "first");
	report(entry, 1, IMTA_OUTCOME_FAILED, "unknown");
	report(entry, 2, IMTA_OUTCOME_RETRY, "busy");
	record_ok(f, entry, 60, "second");

	/* Cut the file in the middle of the second attempt's "R ... 2 Q" line. */
	text = file_text(f, entry->path);
	last_r = strstr(text, " 2 Q busy");
	g_assert_nonnull(last_r);
	truncate_rel(f, entry->path, (goffset)(last_r - text) + 4);
	torn = read_ok(f, entry->path);
	g_assert_cmpint(imta_message_recipient(torn->message, 0)->outcome, ==,
			IMTA_OUTCOME_DELIVERED);
	g_assert_cmpint(imta_message_recipient(torn->message, 1)->outcome, ==, IMTA_OUTCOME_FAILED);
	g_assert_cmpstr(imta_message_recipient(torn->message, 1)->diagnostic, ==, "unknown");
	g_assert_cmpint(imta_message_recipient(torn->message, 2)->outcome, ==, IMTA_OUTCOME_NONE);
	g_assert_cmpstr(torn->last_error, ==, "first");
	assert_content(torn, "body\n", 5);

	/* The next attempt's records start on a line of their own. */
	report(torn, 2, IMTA_OUTCOME_RETRY, "again");
	record_ok(f, torn, 60, "third");
	after = read_ok(f, torn->path);
	g_assert_cmpint(imta_message_recipient(after->message, 2)->outcome, ==, IMTA_OUTCOME_RETRY);
	g_assert_cmpstr(imta_message_recipient(after->message, 2)->diagnostic, ==, "again");
	g_assert_cmpstr(after->last_error, ==, "third");
	g_free(text);
	text = file_text(f, torn->path);
	g_assert_nonnull(strstr(text, " 2 Q\nR "));

	/* Garbage after the records without a newline is ignored too. */
	append_rel(f, torn->path, "A 1 99 0 torn");
	imta_queue_entry_free(g_steal_pointer(&after));
	after = read_ok(f, torn->path);
	g_assert_cmpstr(after->last_error, ==, "third");
	st = stat_rel(f, torn->path);
	g_assert_cmpint(st.st_size, >, 0);
}

static void
test_truncated_content(Fixture *f, gconstpointer data)
{
	g_autofree char *path = enqueue_one(f, "l", "a@example.com", "0123456789\n");
	g_autoptr(ImtaQueueEntry) entry = read_ok(f, path);
	g_autoptr(GError) error = NULL;
	g_autofree char *want = NULL;

	truncate_rel(f, path, entry->content_offset + entry->content_size - 1);
	g_assert_null(imta_queue_entry_read(f->queue, path, &error));
	g_assert_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_FORMAT);
	want = g_strdup_printf("%s/%s: truncated: the envelope says size 11 but only 10 bytes of "
			       "content follow", f->root, path);
	g_assert_cmpstr(error->message, ==, want);
	/* Cut inside the envelope. */
	g_clear_error(&error);
	truncate_rel(f, path, 20);
	g_assert_null(imta_queue_entry_read(f->queue, path, &error));
	g_assert_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_FORMAT);
	g_free(want);
	want = g_strdup_printf("%s/%s: truncated: the envelope has no end (no blank line)", f->root,
			       path);
	g_assert_cmpstr(error->message, ==, want);
}

#define GOOD_HEAD                                                                        \
	"IMTAQ1\nid 0000000000000001\ncreated 1795000000\nsource tcp_local\nchannel l\n" \
	"host example.com\npriority normal\nfrom a@example.org\n"

static const struct {
	const char *text;
	const char *message; /* after "<root>/l/ZZ0000000000000001.00: " */
} malformed_cases[] = {
	{ GOOD_HEAD "rcpt - - b@example.com\nsize 2\n\nx\n", NULL },
	{ "IMTAQ2\n" GOOD_HEAD "size 0\n\n", "line 1: not a queue file (expected \"IMTAQ1\")" },
	{ GOOD_HEAD "rcpt - - b@example.com\nsize 2\n", "truncated: the envelope has no end "
							 "(no blank line)" },
	{ GOOD_HEAD "colour blue\nsize 0\n\n", "line 9: unknown field \"colour\"" },
	{ GOOD_HEAD "id 0000000000000001\n\n", "line 9: \"id\" given twice" },
	{ GOOD_HEAD "rcpt - - b@example.com\nsize 12x\n\n",
	  "line 10: size: expected a number, got \"12x\"" },
	{ GOOD_HEAD "rcpt SOMETIMES - b@example.com\nsize 0\n\n",
	  "line 9: rcpt: bad notify \"SOMETIMES\"" },
	{ GOOD_HEAD "rcpt SUCCESS,SUCCESS - b@example.com\nsize 0\n\n",
	  "line 9: rcpt: bad notify \"SUCCESS,SUCCESS\"" },
	{ GOOD_HEAD "rcpt - b@example.com\nsize 0\n\n",
	  "line 9: rcpt: expected \"notify orcpt address\"" },
	{ GOOD_HEAD "rcpt - - b@example.com extra\nsize 0\n\n",
	  "line 9: rcpt: expected \"notify orcpt address\"" },
	{ GOOD_HEAD "rcpt - - b+2x@example.com\nsize 0\n\n",
	  "line 9: rcpt address: malformed xtext at offset 1: \"+2x\" (expected '+' and two "
	  "upper-case hex digits)" },
	{ GOOD_HEAD "rcpt - - b+00@example.com\nsize 0\n\n",
	  "line 9: rcpt address: malformed xtext at offset 1: \"+00\" (a NUL byte) is not "
	  "allowed here" },
	{ GOOD_HEAD "rcpt - - \nsize 0\n\n", "line 9: rcpt: empty address" },
	{ GOOD_HEAD "size 0\n\n", "the envelope has no \"rcpt\"" },
	{ GOOD_HEAD "rcpt - - b@example.com\n\n", "the envelope has no \"size\"" },
	{ GOOD_HEAD "rcpt - - b@example.com\nsize 5\n\nabc",
	  "truncated: the envelope says size 5 but only 3 bytes of content follow" },
	{ GOOD_HEAD "rcpt - - b@example.com\nsize 99999999999999999999\n\n",
	  "line 10: size: expected a number, got \"99999999999999999999\"" },
	{ GOOD_HEAD "rcpt - - b@example.com\nsize -1\n\n",
	  "line 10: size: expected a number, got \"-1\"" },
	{ GOOD_HEAD "ret some\nrcpt - - b@example.com\nsize 0\n\n",
	  "line 9: ret: expected one \"full\" or \"hdrs\"" },
	{ "IMTAQ1\nid 0000000000000002\ncreated 1\nsource s\nchannel l\nhost h\n"
	  "priority normal\nfrom \nrcpt - - b\nsize 0\n\n",
	  "the envelope's id 0000000000000002 is not the name's 0000000000000001" },
	{ "IMTAQ1\nid 0000000000000001\ncreated 1\nsource s\nchannel ims-ms\nhost h\n"
	  "priority normal\nfrom \nrcpt - - b\nsize 0\n\n",
	  "the envelope's channel ims-ms is not the directory's l" },
	{ "IMTAQ1\nid 0000000000000001\ncreated 1\nsource s\nchannel l\nhost h\n"
	  "priority soon\nfrom \nrcpt - - b\nsize 0\n\n",
	  "line 7: priority: expected urgent, normal or nonurgent, got \"soon\"" },
	{ "IMTAQ1\nid 0000000000000001\ncreated 1\nsource s\nchannel l\nhost h\n"
	  "priority normal\nrcpt - - b\nsize 0\n\n",
	  "the envelope has no \"from\"" },
	{ "\n\n", "line 1: not a queue file (expected \"IMTAQ1\")" },
	{ "", "truncated: the envelope has no end (no blank line)" },
};

static void
test_malformed_files(Fixture *f, gconstpointer data)
{
	const char *rel = "l/ZZ0000000000000001.00";
	g_autofree char *dir = g_build_filename(f->root, "l", NULL);
	g_autofree char *path = g_build_filename(f->root, rel, NULL);

	g_assert_cmpint(g_mkdir_with_parents(dir, 0750), ==, 0);
	for (guint i = 0; i < G_N_ELEMENTS(malformed_cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaQueueEntry) entry = NULL;
		g_autofree char *want = NULL;

		g_assert_true(g_file_set_contents(path, malformed_cases[i].text, -1, NULL));
		entry = imta_queue_entry_read(f->queue, rel, &error);
		if (malformed_cases[i].message == NULL) {
			g_assert_no_error(error);
			assert_content(entry, "x\n", 2);
			continue;
		}
		g_assert_null(entry);
		g_assert_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_FORMAT);
		want = g_strdup_printf("%s/%s: %s", f->root, rel, malformed_cases[i].message);
		g_assert_cmpstr(error->message, ==, want);
	}
}

static void
test_read_bad_paths(Fixture *f, gconstpointer data)
{
	static const char *const bad[] = {
		"/etc/passwd", "../ZZ0000000000000001.00", "l/../ZZ0000000000000001.00",
		"ZZ0000000000000001.00", "l/ZZ0000000000000001.tmp", "l/1/ZZ0000000000000001.00",
		"l/000/x/ZZ0000000000000001.00", "$1-1.tmp", "",
	};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *want = g_strdup_printf("\"%s\" is not the path of a queue file",
							bad[i]);

		g_assert_null(imta_queue_entry_read(f->queue, bad[i], &error));
		g_assert_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_NOT_FOUND);
		g_assert_cmpstr(error->message, ==, want);
	}
	{
		g_autoptr(GError) error = NULL;
		g_autofree char *want = g_strdup_printf("no queue file %s/l/ZZ0000000000000001.00",
							f->root);

		g_assert_null(imta_queue_entry_read(f->queue, "l/ZZ0000000000000001.00", &error));
		g_assert_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_NOT_FOUND);
		g_assert_cmpstr(error->message, ==, want);
	}
}

/* ---- scanning --------------------------------------------------------------- */

typedef struct {
	GPtrArray *visits; /* "path attempts held" */
	guint stop_after;  /* 0: never */
} ScanLog;

static gboolean
scan_visit(const char *path, guint attempts, gboolean held, gpointer data)
{
	ScanLog *log = data;

	g_ptr_array_add(log->visits, g_strdup_printf("%s %u %d", path, attempts, held));
	return log->stop_after == 0 || log->visits->len < log->stop_after;
}

static void
test_scan(Fixture *f, gconstpointer data)
{
	ScanLog log = { g_ptr_array_new_with_free_func(g_free), 0 };
	g_autoptr(GError) error = NULL;
	g_autofree char *tried = NULL;
	g_autofree char *held_path = NULL;
	g_autofree char *stray = g_build_filename(f->root, "ims-ms", "README", NULL);
	g_autofree char *stray2 = g_build_filename(f->root, "ims-ms", "ZZshort.00", NULL);
	g_autofree char *stray3 = g_build_filename(f->root, "ims-ms", "123", NULL);
	guint untried = 0;

	/* Two tried files (one held) written first, then untried ones. */
	for (guint i = 0; i < 2; i++) {
		g_autofree char *path = enqueue_one(f, "ims-ms", "a@example.com", "x\n");
		g_autoptr(ImtaQueueEntry) entry = read_ok(f, path);

		report(entry, 0, IMTA_OUTCOME_RETRY, "later");
		record_ok(f, entry, 60, NULL);
		if (i == 1) {
			g_assert_true(imta_queue_entry_hold(f->queue, entry, &error));
			held_path = g_strdup(entry->path);
		} else {
			tried = g_strdup(entry->path);
		}
	}
	for (guint i = 0; i < 5; i++)
		g_free(enqueue_one(f, "ims-ms", "a@example.com", "x\n"));
	g_assert_true(g_file_set_contents(stray, "not mail", -1, NULL));
	g_assert_true(g_file_set_contents(stray2, "not mail", -1, NULL));
	g_assert_true(g_file_set_contents(stray3, "not a subdirectory", -1, NULL));

	g_assert_true(imta_queue_scan_channel(f->queue, "ims-ms", TRUE, scan_visit, &log, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(log.visits->len, ==, 7);
	for (guint i = 0; i < log.visits->len; i++) {
		const char *v = log.visits->pdata[i];

		if (i < 5) {
			g_assert_true(g_str_has_suffix(v, " 0 0"));
			g_assert_nonnull(strstr(v, "/ZZ"));
			untried++;
		} else {
			g_assert_true(g_str_has_suffix(v, " 1 0") || g_str_has_suffix(v, " 1 1"));
		}
	}
	g_assert_cmpuint(untried, ==, 5);
	{
		g_autofree char *want_tried = g_strdup_printf("%s 1 0", tried);
		g_autofree char *want_held = g_strdup_printf("%s 1 1", held_path);
		gboolean saw_tried = FALSE, saw_held = FALSE;

		for (guint i = 5; i < 7; i++) {
			saw_tried = saw_tried || strcmp(log.visits->pdata[i], want_tried) == 0;
			saw_held = saw_held || strcmp(log.visits->pdata[i], want_held) == 0;
		}
		g_assert_true(saw_tried && saw_held);
	}

	/* Without the ordering every file is still visited once. */
	g_ptr_array_set_size(log.visits, 0);
	g_assert_true(imta_queue_scan_channel(f->queue, "ims-ms", FALSE, scan_visit, &log, &error));
	g_assert_cmpuint(log.visits->len, ==, 7);

	/* The visitor stops the scan. */
	g_ptr_array_set_size(log.visits, 0);
	log.stop_after = 2;
	g_assert_true(imta_queue_scan_channel(f->queue, "ims-ms", TRUE, scan_visit, &log, &error));
	g_assert_cmpuint(log.visits->len, ==, 2);

	/* A channel with no directory yet is empty. */
	g_ptr_array_set_size(log.visits, 0);
	g_assert_true(imta_queue_scan_channel(f->queue, "tcp_local", TRUE, scan_visit, &log,
					      &error));
	g_assert_no_error(error);
	g_assert_cmpuint(log.visits->len, ==, 0);

	/* A name that could escape the queue is refused. */
	g_assert_false(imta_queue_scan_channel(f->queue, "../etc", TRUE, scan_visit, &log, &error));
	g_assert_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_NOT_FOUND);
	g_assert_cmpstr(error->message, ==, "\"../etc\" is not a channel name");
	g_ptr_array_unref(log.visits);
}

/* ---- stale temporary files -------------------------------------------- */

static pid_t
dead_pid(void)
{
	pid_t pid = fork();
	int status;

	g_assert_cmpint(pid, >=, 0);
	if (pid == 0)
		_exit(0);
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	return pid;
}

static void
touch_rel(Fixture *f, const char *name, gint64 age)
{
	g_autofree char *path = g_build_filename(f->root, name, NULL);
	struct timespec times[2];

	g_assert_true(g_file_set_contents(path, "partial", -1, NULL));
	times[0].tv_sec = times[1].tv_sec = (time_t)(g_get_real_time() / G_USEC_PER_SEC - age);
	times[0].tv_nsec = times[1].tv_nsec = 0;
	g_assert_cmpint(utimensat(AT_FDCWD, path, times, 0), ==, 0);
}

static void
test_clean_stale(Fixture *f, gconstpointer data)
{
	g_autofree char *dead = g_strdup_printf("$%ld-1.tmp", (long)dead_pid());
	g_autofree char *live = g_strdup_printf("$%ld-99.tmp", (long)getpid());
	g_autofree char *old_live = g_strdup_printf("$%ld-98.tmp", (long)getpid());
	g_autofree char *kept = enqueue_one(f, "l", "a@example.com", "x\n");
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) files = NULL;

	touch_rel(f, dead, 0);
	touch_rel(f, live, 0);
	touch_rel(f, old_live, 2 * 24 * 3600);
	touch_rel(f, "$odd-name", 0);
	touch_rel(f, "$odd-old", 2 * 24 * 3600);
	g_assert_cmpuint(imta_queue_clean_stale(f->queue, &error), ==, 3);
	g_assert_no_error(error);
	files = sorted_files(f->root);
	g_assert_cmpuint(files->len, ==, 3);
	g_assert_cmpstr(files->pdata[0], ==, live);
	g_assert_cmpstr(files->pdata[1], ==, "$odd-name");
	g_assert_cmpstr(files->pdata[2], ==, kept);
	g_assert_cmpuint(imta_queue_clean_stale(f->queue, &error), ==, 0);
}

/* ---- group commit ---------------------------------------------------- */

#define COMMIT_THREADS 16
#define COMMITS_PER_THREAD 20

typedef struct {
	Fixture *f;
	guint index;
	GPtrArray *files;
} CommitWorker;

static gpointer
commit_worker(gpointer data)
{
	CommitWorker *w = data;

	for (guint i = 0; i < COMMITS_PER_THREAD; i++) {
		g_autofree char *content = g_strdup_printf("thread %u message %u\n", w->index, i);
		g_autoptr(ImtaEnqueue) enq = imta_enqueue_new(w->f->queue, "tcp_local", "a@b.c");
		g_autoptr(GError) error = NULL;

		if (!imta_enqueue_add_recipient(enq, channel(w->f, "ims-ms"), "x@example.com",
						NULL, 0, &error) ||
		    !imta_enqueue_write(enq, content, strlen(content), &error) ||
		    !imta_enqueue_commit(enq, &error))
			g_error("commit failed: %s", error->message);
		g_ptr_array_add(w->files, g_strdup(imta_enqueue_files(enq)[0]));
	}
	return NULL;
}

/* How step 2 of a batch is done. */
typedef enum {
	COMMIT_MODE_FSYNC,      /* fsync of each file and directory */
	COMMIT_MODE_SYNCFS,     /* one syncfs */
	COMMIT_MODE_JOURNAL,    /* one fdatasync of the journal */
} CommitMode;

static void
test_group_commit(Fixture *f, gconstpointer data)
{
	CommitMode mode = GPOINTER_TO_INT(data);
	CommitWorker workers[COMMIT_THREADS];
	GThread *threads[COMMIT_THREADS];
	QueueCommitStats stats;
	g_autoptr(GPtrArray) on_disk = NULL;

	queue_committer_set_use_syncfs(queue_get_committer(f->queue), mode != COMMIT_MODE_FSYNC);
	queue_committer_set_use_journal(queue_get_committer(f->queue), mode == COMMIT_MODE_JOURNAL);

	for (guint t = 0; t < COMMIT_THREADS; t++) {
		workers[t] = (CommitWorker){ f, t, g_ptr_array_new_with_free_func(g_free) };
		threads[t] = g_thread_new("enqueue", commit_worker, &workers[t]);
	}
	for (guint t = 0; t < COMMIT_THREADS; t++)
		g_thread_join(threads[t]);
	for (guint t = 0; t < COMMIT_THREADS; t++) {
		g_assert_cmpuint(workers[t].files->len, ==, COMMITS_PER_THREAD);
		for (guint i = 0; i < COMMITS_PER_THREAD; i++) {
			g_autoptr(ImtaQueueEntry) entry = read_ok(f, workers[t].files->pdata[i]);
			g_autofree char *want = g_strdup_printf("thread %u message %u\n", t, i);

			assert_content(entry, want, strlen(want));
		}
		g_ptr_array_unref(workers[t].files);
	}
	on_disk = list_files(f->root);
	g_assert_cmpuint(on_disk->len, ==, COMMIT_THREADS * COMMITS_PER_THREAD);

	queue_committer_stats(queue_get_committer(f->queue), &stats);
	g_test_message("%" G_GUINT64_FORMAT " commits in %" G_GUINT64_FORMAT " batches, %"
		       G_GUINT64_FORMAT " syncfs calls, %" G_GUINT64_FORMAT " journal syncs",
		       stats.commits, stats.batches, stats.syncs, stats.journal_syncs);
	g_assert_cmpuint(stats.commits, ==, COMMIT_THREADS * COMMITS_PER_THREAD);
	g_assert_cmpuint(stats.batches, <, stats.commits);
	switch (mode) {
	case COMMIT_MODE_FSYNC:
		g_assert_cmpuint(stats.syncs, ==, 0);
		g_assert_cmpuint(stats.journal_syncs, ==, 0);
		break;
	case COMMIT_MODE_SYNCFS:
		/* One sync per batch, data and names at once. */
		g_assert_cmpuint(stats.syncs, ==, stats.batches);
		g_assert_cmpuint(stats.journal_syncs, ==, 0);
		break;
	case COMMIT_MODE_JOURNAL:
		/* One journal sync per batch, and no file system sync. */
		g_assert_cmpuint(stats.journal_syncs, ==, stats.batches);
		g_assert_cmpuint(stats.syncs, ==, 0);
		break;
	}
}

/* A commit of two files (two channels) whose step `fault` fails. */
static void
assert_commit_fails(Fixture *f, QueueCommitFault fault, guint skip, const char *want_prefix)
{
	g_autoptr(ImtaEnqueue) enq = enqueue_start(f, "doomed\n");
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) files = NULL;

	add_rcpt(enq, channel(f, "l"), "a@example.com");
	add_rcpt(enq, channel(f, "ims-ms"), "b@example.com");
	queue_committer_inject_fault(queue_get_committer(f->queue), fault, EIO, skip);
	g_assert_false(imta_enqueue_commit(enq, &error));
	g_assert_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_IO);
	g_assert_true(g_str_has_prefix(error->message, want_prefix));
	g_assert_true(g_str_has_suffix(error->message, ": Input/output error"));
	g_assert_null(imta_enqueue_files(enq)[0]);
	files = list_files(f->root);
	g_assert_cmpuint(files->len, ==, 0);
}

static void
test_commit_faults(Fixture *f, gconstpointer data)
{
	g_autofree char *sync_fs = g_strdup_printf("cannot sync the file system of %s:", f->root);
	g_autofree char *rename = g_strdup_printf("cannot put in place %s/", f->root);
	g_autofree char *sync_file = g_strdup_printf("cannot sync %s/", f->root);
	g_autofree char *sync_dir = g_strdup_printf("cannot sync the directory %s/", f->root);
	g_autofree char *journal_write = g_strdup_printf("cannot write the journal of %s:", f->root);
	g_autofree char *journal_sync = g_strdup_printf("cannot sync the journal of %s:", f->root);
	g_autoptr(ImtaQueueEntry) entry = NULL;
	g_autofree char *path = NULL;
	QueueCommitStats before, after;

	/* The journal's write or sync fails after both files were linked:
	 * both are taken back. */
	assert_commit_fails(f, QUEUE_COMMIT_FAULT_JOURNAL_WRITE, 0, journal_write);
	assert_commit_fails(f, QUEUE_COMMIT_FAULT_JOURNAL_SYNC, 0, journal_sync);

	/* Without the journal: the same for the file system's sync. */
	queue_committer_set_use_journal(queue_get_committer(f->queue), FALSE);
	assert_commit_fails(f, QUEUE_COMMIT_FAULT_SYNC, 0, sync_fs);
	assert_commit_fails(f, QUEUE_COMMIT_FAULT_RENAME, 0, rename);
	/* The second file's link fails: the first is taken back. */
	assert_commit_fails(f, QUEUE_COMMIT_FAULT_RENAME, 1, rename);

	/* Without syncfs: each file and directory is synced instead. */
	queue_committer_set_use_syncfs(queue_get_committer(f->queue), FALSE);
	assert_commit_fails(f, QUEUE_COMMIT_FAULT_SYNC, 1, sync_file);
	assert_commit_fails(f, QUEUE_COMMIT_FAULT_SYNC_DIR, 1, sync_dir);
	queue_committer_stats(queue_get_committer(f->queue), &before);
	path = enqueue_one(f, "ims-ms", "a@example.com", "fallback\n");
	queue_committer_stats(queue_get_committer(f->queue), &after);
	g_assert_cmpuint(after.syncs, ==, before.syncs);
	g_assert_cmpuint(after.commits, ==, before.commits + 1);
	entry = read_ok(f, path);
	assert_content(entry, "fallback\n", 9);
}

/* ---- the commit journal --------------------------------------------------- */

/* The one segment in <root>/.journal, or NULL if there is none. */
static char *
journal_segment(Fixture *f)
{
	g_autofree char *dir = g_build_filename(f->root, ".journal", NULL);
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;
	char *found = NULL;

	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		if (!g_str_has_suffix(name, ".seg"))
			continue;
		g_assert_null(found);
		found = g_build_filename(dir, name, NULL);
	}
	return found;
}

/* Commit `n` messages of `size` bytes each (distinct contents), then copy
 * the segment as a dead process would leave it: the live one is retired
 * when the queue closes.  Returns the committed files (of two channels),
 * and their bytes in `contents_r`. */
static GPtrArray *
journal_commit_and_crash(Fixture *f, guint n, gsize size, GPtrArray **contents_r,
			 char **crashed_r)
{
	GPtrArray *files = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *live = NULL;
	g_autofree char *seg = NULL;
	gsize seg_len;
	g_autoptr(GError) error = NULL;

	*contents_r = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	queue_committer_set_idle_checkpoints(queue_get_committer(f->queue), FALSE);
	for (guint i = 0; i < n; i++) {
		g_autofree char *body = g_strdup_printf("%0*u\n", (int)size - 1, i);
		g_autoptr(ImtaEnqueue) enq = enqueue_start(f, body);
		const char *const *names;

		add_rcpt(enq, channel(f, "l"), "a@example.com");
		add_rcpt(enq, channel(f, "ims-ms"), "b@example.com");
		commit_ok(enq);
		for (names = imta_enqueue_files(enq); *names != NULL; names++) {
			g_autofree char *path = g_build_filename(f->root, *names, NULL);
			char *bytes;
			gsize len;

			g_assert_true(g_file_get_contents(path, &bytes, &len, NULL));
			g_ptr_array_add(*contents_r, g_bytes_new_take(bytes, len));
			g_ptr_array_add(files, g_strdup(*names));
		}
	}
	live = journal_segment(f);
	g_assert_nonnull(live);
	g_assert_true(g_file_get_contents(live, &seg, &seg_len, &error));
	imta_queue_close(f->queue);
	f->queue = NULL;
	g_assert_null(journal_segment(f));
	*crashed_r = g_build_filename(f->root, ".journal", "4242-crashed.seg", NULL);
	g_assert_true(g_file_set_contents(*crashed_r, seg, (gssize)seg_len, &error));
	return files;
}

static void
assert_file_bytes(Fixture *f, const char *rel, GBytes *want)
{
	g_autofree char *path = g_build_filename(f->root, rel, NULL);
	g_autofree char *got = NULL;
	gsize len;

	g_assert_true(g_file_get_contents(path, &got, &len, NULL));
	g_assert_cmpmem(got, len, g_bytes_get_data(want, NULL), g_bytes_get_size(want));
}

static void
assert_file_missing(Fixture *f, const char *rel)
{
	g_autofree char *path = g_build_filename(f->root, rel, NULL);

	g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
}

/* Lose what a system crash may lose: one file entirely, one truncated. */
static void
journal_lose_page_cache(Fixture *f, GPtrArray *files)
{
	g_autofree char *gone = g_build_filename(f->root, files->pdata[0], NULL);
	g_autofree char *cut = g_build_filename(f->root, files->pdata[files->len - 1], NULL);

	g_assert_cmpint(g_unlink(gone), ==, 0);
	g_assert_cmpint(truncate(cut, 10), ==, 0);
}

/* A system crash (another boot id): every file is rebuilt byte for byte
 * from the journal, and the segment is gone. */
static void
test_journal_reboot(Fixture *f, gconstpointer data)
{
	g_autoptr(GPtrArray) contents = NULL;
	g_autofree char *crashed = NULL;
	g_autoptr(GPtrArray) files = journal_commit_and_crash(f, 5, 3000, &contents, &crashed);
	g_autoptr(GPtrArray) on_disk = NULL;

	g_autofree char *appended = g_build_filename(f->root, files->pdata[1], NULL);
	g_autoptr(GBytes) longer = NULL;
	gsize len;
	char *bytes;

	journal_lose_page_cache(f, files);
	/* An attempt appended its outcome records to this one (and synced
	 * them): it is kept as it is. */
	g_assert_true(g_file_get_contents(appended, &bytes, &len, NULL));
	bytes = g_realloc(bytes, len + 4);
	memcpy(bytes + len, "D 1\n", 4);
	g_assert_true(g_file_set_contents(appended, bytes, (gssize)len + 4, NULL));
	longer = g_bytes_new_take(bytes, len + 4);
	g_setenv("IMTA_TEST_BOOT_ID", "another-boot", TRUE);
	fixture_open(f, NULL);
	g_unsetenv("IMTA_TEST_BOOT_ID");
	for (guint i = 0; i < files->len; i++)
		assert_file_bytes(f, files->pdata[i], i == 1 ? longer : contents->pdata[i]);
	g_assert_null(journal_segment(f));
	on_disk = list_files(f->root);
	g_assert_cmpuint(on_disk->len, ==, files->len);
}

/* Content spooled to a file (over QUEUE_CONTENT_MEMORY_MAX) reaches the
 * journal read back from the queue file, content held in memory from the
 * enqueue's own buffers: a reboot restores both alike. */
static void
test_journal_reboot_spooled(Fixture *f, gconstpointer data)
{
	g_autoptr(GPtrArray) contents = NULL;
	g_autofree char *crashed = NULL;
	g_autoptr(GPtrArray) files = journal_commit_and_crash(f, 2, QUEUE_CONTENT_MEMORY_MAX + 4096,
							      &contents, &crashed);

	journal_lose_page_cache(f, files);
	g_setenv("IMTA_TEST_BOOT_ID", "another-boot", TRUE);
	fixture_open(f, NULL);
	g_unsetenv("IMTA_TEST_BOOT_ID");
	for (guint i = 0; i < files->len; i++)
		assert_file_bytes(f, files->pdata[i], contents->pdata[i]);
	g_assert_null(journal_segment(f));
}

/* Only processes died (same boot id): the page cache kept every file, so
 * nothing is rebuilt (a file removed since stays removed). */
static void
test_journal_same_boot(Fixture *f, gconstpointer data)
{
	g_autoptr(GPtrArray) contents = NULL;
	g_autofree char *crashed = NULL;
	g_autoptr(GPtrArray) files = journal_commit_and_crash(f, 3, 500, &contents, &crashed);
	g_autofree char *gone = g_build_filename(f->root, files->pdata[0], NULL);

	g_assert_cmpint(g_unlink(gone), ==, 0);
	fixture_open(f, NULL);
	assert_file_missing(f, files->pdata[0]);
	for (guint i = 1; i < files->len; i++)
		assert_file_bytes(f, files->pdata[i], contents->pdata[i]);
	g_assert_null(journal_segment(f));
}

/* Where the last file's content ends in the segment: the end of the last
 * record, whose last bytes are that content. */
static gsize
journal_end_of(const char *seg, gsize seg_len, GBytes *last)
{
	const char *p = memmem(seg, seg_len, g_bytes_get_data(last, NULL), g_bytes_get_size(last));

	g_assert_nonnull(p);
	return (gsize)(p - seg) + g_bytes_get_size(last);
}

/* A torn tail: garbage after the last record, then a last record whose
 * CRC fails.  Every record before it is replayed, the torn one is not. */
static void
test_journal_torn_tail(Fixture *f, gconstpointer data)
{
	g_autoptr(GPtrArray) contents = NULL;
	g_autofree char *crashed = NULL;
	g_autoptr(GPtrArray) files = journal_commit_and_crash(f, 3, 700, &contents, &crashed);
	g_autofree char *seg = NULL;
	g_autofree char *cut = NULL;
	gsize seg_len, end;
	guint last = files->len - 1;
	struct stat st;

	g_assert_true(g_file_get_contents(crashed, &seg, &seg_len, NULL));
	/* The last commit's two files end its record, in either order. */
	end = MAX(journal_end_of(seg, seg_len, contents->pdata[last - 1]),
		  journal_end_of(seg, seg_len, contents->pdata[last]));
	memcpy(seg + end, "JRECgarbage that is no record", 29);
	g_assert_true(g_file_set_contents(crashed, seg, (gssize)seg_len, NULL));
	journal_lose_page_cache(f, files);
	g_setenv("IMTA_TEST_BOOT_ID", "another-boot", TRUE);
	fixture_open(f, NULL);
	for (guint i = 0; i < files->len; i++)
		assert_file_bytes(f, files->pdata[i], contents->pdata[i]);
	g_assert_null(journal_segment(f));

	/* The same crash again, now with the last record's content damaged:
	 * the truncated file of the last commit is not rebuilt, the file of
	 * the first commit is. */
	seg[end - 2] ^= 0x01;
	g_assert_true(g_file_set_contents(crashed, seg, (gssize)seg_len, NULL));
	imta_queue_close(f->queue);
	f->queue = NULL;
	journal_lose_page_cache(f, files);
	fixture_open(f, NULL);
	g_unsetenv("IMTA_TEST_BOOT_ID");
	for (guint i = 0; i < last; i++)
		assert_file_bytes(f, files->pdata[i], contents->pdata[i]);
	cut = g_build_filename(f->root, files->pdata[last], NULL);
	g_assert_cmpint(stat(cut, &st), ==, 0);
	g_assert_cmpint(st.st_size, ==, 10);
	g_assert_null(journal_segment(f));
}

/* Commits of 100 KiB through a 1 MiB segment: it fills up again and again
 * and is checkpointed, and no commit is lost. */
static void
test_journal_fills_up(Fixture *f, gconstpointer data)
{
	enum { N = 40, SIZE = 100 * 1024 };
	g_autofree char *body = g_malloc(SIZE + 1);
	char *paths[N];
	QueueCommitStats stats;

	g_setenv("IMTA_TEST_JOURNAL_SIZE", "1048576", TRUE);
	queue_committer_stats(queue_get_committer(f->queue), &stats);
	g_unsetenv("IMTA_TEST_JOURNAL_SIZE");
	for (guint i = 0; i < N; i++) {
		memset(body, 'a' + (int)(i % 26), SIZE);
		body[SIZE] = '\0';
		paths[i] = enqueue_one(f, "ims-ms", "a@example.com", body);
	}
	queue_committer_stats(queue_get_committer(f->queue), &stats);
	g_test_message("%" G_GUINT64_FORMAT " journal syncs, %" G_GUINT64_FORMAT
		       " checkpoints, %" G_GUINT64_FORMAT " syncfs", stats.journal_syncs,
		       stats.checkpoints, stats.syncs);
	g_assert_cmpuint(stats.checkpoints, >=, N * SIZE / (1024 * 1024));
	g_assert_cmpuint(stats.journal_syncs + stats.syncs, ==, N);
	for (guint i = 0; i < N; i++) {
		g_autoptr(ImtaQueueEntry) entry = read_ok(f, paths[i]);

		memset(body, 'a' + (int)(i % 26), SIZE);
		assert_content(entry, body, SIZE);
		g_free(paths[i]);
	}
}

/* Checkpoints taken so far, once more than `than` or after 5 s. */
static guint64
wait_checkpoints(Fixture *f, guint64 than)
{
	QueueCommitStats stats;

	for (guint i = 0; i < 500; i++) {
		queue_committer_stats(queue_get_committer(f->queue), &stats);
		if (stats.checkpoints > than)
			break;
		g_usleep(10 * 1000);
	}
	return stats.checkpoints;
}

/* Once commits stop, the checkpoint thread retires the records about
 * QUEUE_JOURNAL_CHECKPOINT_MS later: after the first record of an empty
 * segment, and after records that moved its deadline while it slept. */
static void
test_journal_idle(Fixture *f, gconstpointer data)
{
	QueueCommitStats before;
	guint64 first, second;
	g_autofree char *a = NULL;
	g_autofree char *b = NULL;
	g_autofree char *c = NULL;

	queue_committer_stats(queue_get_committer(f->queue), &before);
	a = enqueue_one(f, "ims-ms", "a@example.com", "first\n");
	first = wait_checkpoints(f, before.checkpoints);
	g_assert_cmpuint(first, ==, before.checkpoints + 1);
	b = enqueue_one(f, "ims-ms", "a@example.com", "second\n");
	g_usleep(QUEUE_JOURNAL_CHECKPOINT_MS / 2 * 1000);
	c = enqueue_one(f, "ims-ms", "a@example.com", "third\n");
	second = wait_checkpoints(f, first);
	g_assert_cmpuint(second, ==, first + 1);
}

/* Under steady load the committer is never idle for the checkpoint
 * thread, yet a record is retired within about QUEUE_JOURNAL_MAX_AGE_MS:
 * small commits every 20 ms for 1.5 s take at least one checkpoint,
 * though the segment stays far from full. */
static void
test_journal_max_age(Fixture *f, gconstpointer data)
{
	gint64 end = g_get_monotonic_time() + 1500 * G_TIME_SPAN_MILLISECOND;
	QueueCommitStats before, after;
	guint n = 0;

	queue_committer_stats(queue_get_committer(f->queue), &before);
	while (g_get_monotonic_time() < end) {
		g_autofree char *path = enqueue_one(f, "ims-ms", "a@example.com", "steady\n");

		n++;
		g_usleep(20 * 1000);
	}
	queue_committer_stats(queue_get_committer(f->queue), &after);
	g_test_message("%u commits, %" G_GUINT64_FORMAT " checkpoints", n,
		       after.checkpoints - before.checkpoints);
	g_assert_cmpuint(after.checkpoints, >, before.checkpoints);
	g_assert_cmpuint(after.syncs, ==, before.syncs);
}

/* A message bigger than the whole segment is committed with a syncfs,
 * which also retires the segment's records. */
static void
test_journal_too_big(Fixture *f, gconstpointer data)
{
	enum { SIZE = 3 * 1024 * 1024 / 2 };
	g_autofree char *body = g_malloc(SIZE + 1);
	g_autofree char *small = NULL;
	g_autofree char *big = NULL;
	QueueCommitStats before, after;

	g_setenv("IMTA_TEST_JOURNAL_SIZE", "1048576", TRUE);
	queue_committer_stats(queue_get_committer(f->queue), &before);
	g_unsetenv("IMTA_TEST_JOURNAL_SIZE");
	queue_committer_set_idle_checkpoints(queue_get_committer(f->queue), FALSE);
	small = enqueue_one(f, "ims-ms", "a@example.com", "small\n");
	memset(body, 'x', SIZE);
	body[SIZE] = '\0';
	big = enqueue_one(f, "ims-ms", "a@example.com", body);
	queue_committer_stats(queue_get_committer(f->queue), &after);
	g_assert_cmpuint(after.journal_syncs, ==, before.journal_syncs + 1);
	g_assert_cmpuint(after.syncs, ==, before.syncs + 1);
	g_assert_cmpuint(after.checkpoints, ==, before.checkpoints + 1);
	{
		g_autoptr(ImtaQueueEntry) entry = read_ok(f, big);

		assert_content(entry, body, SIZE);
	}
}

/* The id chosen before the commit names the first file; the others get
 * their own; something that is not an id is refused. */
static void
test_given_id(Fixture *f, gconstpointer data)
{
	g_autoptr(ImtaEnqueue) enq = enqueue_start(f, "given id\n");
	char id[IMTA_QUEUE_ID_LENGTH + 1];
	const char *const *files;
	static const char *const bad[] = { "", "SHORT", "0123456789abcdef", "0123456789ABCDEF0",
					   "0123456789ABCDE/" };

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++)
		g_assert_false(imta_enqueue_set_id(enq, bad[i]));
	imta_queue_new_id(id);
	g_assert_cmpuint(strlen(id), ==, IMTA_QUEUE_ID_LENGTH);
	g_assert_true(imta_enqueue_set_id(enq, id));
	add_rcpt(enq, channel(f, "l"), "a@example.com");
	add_rcpt(enq, channel(f, "ims-ms"), "b@example.com");
	commit_ok(enq);
	files = imta_enqueue_files(enq);
	g_assert_nonnull(files[0]);
	g_assert_nonnull(files[1]);
	g_assert_null(files[2]);
	g_assert_nonnull(strstr(files[0], id));
	g_assert_null(strstr(files[1], id));
}

/* A channel directory removed while the queue is open: the commit that
 * finds it gone fails cleanly, and the next one makes it again. */
static void
test_lost_directory(Fixture *f, gconstpointer data)
{
	g_autofree char *first = enqueue_one(f, "l", "a@example.com", "x\n");
	g_autofree char *dir = g_build_filename(f->root, "l", NULL);
	g_autoptr(ImtaEnqueue) enq = enqueue_start(f, "y\n");
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) files = NULL;
	g_autofree char *again = NULL;
	g_autoptr(ImtaQueueEntry) entry = NULL;

	remove_tree(dir);
	add_rcpt(enq, channel(f, "l"), "b@example.com");
	g_assert_false(imta_enqueue_commit(enq, &error));
	g_assert_error(error, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_IO);
	g_assert_true(g_str_has_suffix(error->message, ": No such file or directory"));
	files = list_files(f->root);
	g_assert_cmpuint(files->len, ==, 0);
	again = enqueue_one(f, "l", "c@example.com", "z\n");
	entry = read_ok(f, again);
	assert_content(entry, "z\n", 2);
}

/* ---- notices ------------------------------------------------------------ */

static void
test_notices(Fixture *f, gconstpointer data)
{
	g_autofree char *sock = g_build_filename(f->dir, "job_controller.notify", NULL);
	int sfd = bind_notify_socket(sock);
	g_autoptr(ImtaEnqueue) enq = NULL;
	g_autoptr(GPtrArray) want = NULL;
	g_autoptr(GPtrArray) got = g_ptr_array_new_with_free_func(g_free);
	char *notice;

	imta_queue_close(f->queue);
	fixture_open(f, sock);
	enq = enqueue_start(f, "hello\n");
	add_rcpt(enq, channel(f, "l"), "a@example.com");
	add_rcpt(enq, channel(f, "ims-ms"), "b@example.com");
	add_rcpt(enq, channel(f, "tcp_single"), "c@example.com");
	add_rcpt(enq, channel(f, "tcp_single"), "d@example.com");
	commit_ok(enq);
	while ((notice = receive_notice(sfd)) != NULL) {
		g_assert_true(g_str_has_prefix(notice, "E "));
		g_ptr_array_add(got, g_strdup(notice + 2));
		g_free(notice);
	}
	g_ptr_array_sort(got, compare_strings);
	want = committed_files(enq);
	g_assert_cmpuint(want->len, ==, 4);
	assert_same_files(got, want);
	close(sfd);

	/* Nobody listening: the commit does not care. */
	g_assert_cmpint(g_unlink(sock), ==, 0);
	g_free(enqueue_one(f, "l", "a@example.com", "x\n"));
}

/* The message log of `dir`, with `logging` on the source channel of
 * enqueue_start(). */
static char *
mail_log_start(const char *dir)
{
	static const char cnf[] = "\nl\nmail.example.com\n\ntcp_local logging\ntcp-daemon\n";
	g_autoptr(GError) error = NULL;
	ImtaConfig *config = g_new0(ImtaConfig, 1);

	config->cnf = imta_cnf_parse_text("imta.cnf", cnf, strlen(cnf), NULL, &error);
	g_assert_no_error(error);
	config->tailor = g_new0(ImtaTailor, 1);
	config->tailor->log_dir = g_strdup(dir);
	imta_mail_log_init(config);
	imta_config_free(config);
	return g_build_filename(dir, "mail.log_current", NULL);
}

/* How many E entries the message log at `path` holds. */
static guint
mail_log_enqueued(const char *path)
{
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;
	guint n = 0;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return 0;
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++)
		if (strstr(lines[i], " tcp_local l E ") != NULL)
			n++;
	return n;
}

/* Held reports (the E entries and the notices) wait for
 * imta_enqueue_report(), are made once, and are not lost when the
 * enqueue is freed first. */
static void
test_reports_held(Fixture *f, gconstpointer data)
{
	g_autofree char *sock = g_build_filename(f->dir, "job_controller.notify", NULL);
	int sfd = bind_notify_socket(sock);
	g_autofree char *log = mail_log_start(f->dir);
	ImtaEnqueue *enq;
	const char *const *files;
	g_autofree char *want = NULL;
	g_autofree char *notice = NULL;
	g_autofree char *again = NULL;

	imta_queue_close(f->queue);
	fixture_open(f, sock);
	enq = enqueue_start(f, "held\n");
	add_rcpt(enq, channel(f, "l"), "a@example.com");
	imta_enqueue_hold_reports(enq);
	commit_ok(enq);
	g_assert_null(receive_notice(sfd));
	g_assert_cmpuint(mail_log_enqueued(log), ==, 0);
	files = imta_enqueue_files(enq);
	want = g_strconcat("E ", files[0], NULL);
	imta_enqueue_report(enq);
	notice = receive_notice(sfd);
	g_assert_cmpstr(notice, ==, want);
	g_assert_cmpuint(mail_log_enqueued(log), ==, 1);
	imta_enqueue_report(enq);
	imta_enqueue_free(enq);
	g_assert_null(receive_notice(sfd));
	g_assert_cmpuint(mail_log_enqueued(log), ==, 1);

	enq = enqueue_start(f, "held, then freed\n");
	add_rcpt(enq, channel(f, "l"), "b@example.com");
	imta_enqueue_hold_reports(enq);
	commit_ok(enq);
	g_clear_pointer(&want, g_free);
	want = g_strconcat("E ", imta_enqueue_files(enq)[0], NULL);
	imta_enqueue_free(enq);
	again = receive_notice(sfd);
	g_assert_cmpstr(again, ==, want);
	g_assert_cmpuint(mail_log_enqueued(log), ==, 2);
	imta_mail_log_close();
	close(sfd);
}

/* Commit one message for `address` of `ch` with its reports held, as a
 * server does, then report; returns the file. */
static char *
enqueue_held(Fixture *f, const char *ch, const char *address, const char *content)
{
	g_autoptr(ImtaEnqueue) enq = enqueue_start(f, content);

	add_rcpt(enq, channel(f, ch), address);
	imta_enqueue_hold_reports(enq);
	commit_ok(enq);
	imta_enqueue_report(enq);
	return g_strdup(imta_enqueue_files(enq)[0]);
}

/* After held reports a spare unnamed file waits in the channel's
 * directory; the next commit there takes it and the message is whole.
 * A commit elsewhere leaves it; a channel with subdirectories gets none. */
static void
test_unnamed_spare(Fixture *f, gconstpointer data)
{
	g_autofree char *first = NULL;
	g_autofree char *second = NULL;
	g_autofree char *other = NULL;
	g_autofree char *sub = NULL;
	g_autoptr(ImtaEnqueue) enq = NULL;
	g_autoptr(ImtaQueueEntry) entry = NULL;

	g_assert_cmpint(f->queue->spare_fd, <, 0);
	first = enqueue_held(f, "l", "a@example.com", "first\n");
	g_assert_cmpint(f->queue->spare_fd, >=, 0);
	g_assert_cmpstr(f->queue->spare_dir, ==, "l");

	/* Not the spare's directory: the spare stays. */
	other = enqueue_one(f, "tcp_local", "b@example.net", "other\n");
	g_assert_cmpint(f->queue->spare_fd, >=, 0);

	/* Taken by the commit, made again by the reports. */
	enq = enqueue_start(f, "second\n");
	add_rcpt(enq, channel(f, "l"), "c@example.com");
	imta_enqueue_hold_reports(enq);
	commit_ok(enq);
	g_assert_cmpint(f->queue->spare_fd, <, 0);
	imta_enqueue_report(enq);
	g_assert_cmpint(f->queue->spare_fd, >=, 0);
	second = g_strdup(imta_enqueue_files(enq)[0]);
	g_assert_true(g_str_has_prefix(second, "l/"));
	entry = read_ok(f, second);
	assert_content(entry, "second\n", 7);

	sub = enqueue_held(f, "ims-ms", "d@example.com", "sub\n");
	g_assert_cmpstr(f->queue->spare_dir, ==, "l");
}

/* The next notice on `fd` says that `path` is new. */
static void
assert_new_file_notice(int fd, const char *path)
{
	g_autofree char *notice = receive_notice(fd);
	g_autofree char *want = g_strconcat("E ", path, NULL);

	g_assert_cmpstr(notice, ==, want);
}

/* A controller that restarts binds a new socket at the same path; the
 * notices that follow must reach the new one, not the closed one the
 * queue was connected to. */
static void
test_notices_restarted_controller(Fixture *f, gconstpointer data)
{
	g_autofree char *sock = g_build_filename(f->dir, "job_controller.notify", NULL);
	int sfd = bind_notify_socket(sock);
	g_autofree char *first = NULL;
	g_autofree char *second = NULL;

	imta_queue_close(f->queue);
	fixture_open(f, sock);
	first = enqueue_one(f, "l", "a@example.com", "x\n");
	assert_new_file_notice(sfd, first);
	close(sfd);
	g_assert_cmpint(g_unlink(sock), ==, 0);
	sfd = bind_notify_socket(sock);

	second = enqueue_one(f, "l", "b@example.com", "y\n");
	assert_new_file_notice(sfd, second);
	close(sfd);
}

typedef struct {
	int fd;
	guint drained;
} NoticeDrain;

/* Read every notice after a pause, as a busy controller would. */
static gpointer
drain_notices_later(gpointer data)
{
	NoticeDrain *drain = data;
	char *notice;

	g_usleep(100 * 1000);
	while ((notice = receive_notice(drain->fd)) != NULL) {
		drain->drained++;
		g_free(notice);
	}
	return NULL;
}

/* A controller too busy to read: its queue of notices fills, and a commit
 * waits for room (up to half a second) rather than drop its notice; it
 * goes on as soon as the controller reads. */
static void
test_notices_full_queue(Fixture *f, gconstpointer data)
{
	g_autofree char *sock = g_build_filename(f->dir, "job_controller.notify", NULL);
	NoticeDrain drain = { .fd = bind_notify_socket(sock) };
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int filler = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	g_autofree char *path = NULL;
	GThread *reader;
	guint queued = 0;
	gint64 start, waited;

	imta_queue_close(f->queue);
	fixture_open(f, sock);
	g_assert_cmpint(filler, >=, 0);
	strcpy(addr.sun_path, sock);
	while (sendto(filler, "F x", 3, MSG_DONTWAIT, (struct sockaddr *)&addr, sizeof addr) == 3)
		queued++;
	g_assert_cmpint(errno, ==, EAGAIN);
	g_assert_cmpuint(queued, >, 0);

	reader = g_thread_new("drain", drain_notices_later, &drain);
	start = g_get_monotonic_time();
	path = enqueue_one(f, "l", "a@example.com", "x\n");
	waited = g_get_monotonic_time() - start;
	g_thread_join(reader);
	/* It waited for the reader (whose pause is well inside the half
	 * second a notice may wait). */
	g_assert_cmpint(waited, >=, 80 * 1000);
	/* The reader emptied the queue; the commit's notice came after. */
	if (drain.drained == queued)
		assert_new_file_notice(drain.fd, path);
	else
		g_assert_cmpuint(drain.drained, ==, queued + 1);
	close(filler);
	close(drain.fd);
}

/* ---- a real full file system ----------------------------------------- */

static void
full_disk_body(const char *dir)
{
	g_autofree char *mnt = g_build_filename(dir, "mnt", NULL);
	g_autofree char *root = g_build_filename(mnt, "queue", NULL);
	g_autofree char *content = g_malloc(16 * 1024);
	g_autoptr(ImtaCnf) cnf = test_cnf_parse();
	g_autoptr(GPtrArray) committed = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) on_disk = NULL;
	g_autoptr(GError) failure = NULL;
	ImtaQueue *queue;
	Fixture f = { 0 };
	guint commits = 0;

	for (guint i = 0; i < 16 * 1024; i++)
		content[i] = (char)('a' + i % 26);
	g_assert_cmpint(g_mkdir(mnt, 0700), ==, 0);
	g_assert_cmpint(mount("tmpfs", mnt, "tmpfs", 0, "size=512k,mode=0700"), ==, 0);
	queue = imta_queue_open(root, cnf, NULL, &failure);
	g_assert_no_error(failure);
	f.root = root;
	f.cnf = cnf;
	f.queue = queue;
	/* 512 KiB holds some 15 messages of two 16 KiB files each. */
	for (guint i = 0; i < 200 && failure == NULL; i++) {
		g_autoptr(ImtaEnqueue) enq = imta_enqueue_new(queue, "tcp_local", "a@example.org");
		g_autofree char *piece = g_strdup_printf("message %u\n", i);

		add_rcpt(enq, channel(&f, "l"), "a@example.com");
		add_rcpt(enq, channel(&f, "ims-ms"), "b@example.com");
		if (!imta_enqueue_write(enq, piece, strlen(piece), &failure) ||
		    !imta_enqueue_write(enq, content, 16 * 1024, &failure) ||
		    !imta_enqueue_commit(enq, &failure))
			break;
		commits++;
		for (const char *const *p = imta_enqueue_files(enq); *p != NULL; p++)
			g_ptr_array_add(committed, g_strdup(*p));
	}
	g_assert_nonnull(failure);
	g_test_message("full after %u commits: %s", commits, failure->message);
	g_assert_error(failure, IMTA_QUEUE_ERROR, IMTA_QUEUE_ERROR_IO);
	g_assert_nonnull(strstr(failure->message, "No space left on device"));
	g_assert_nonnull(strstr(failure->message, root));
	g_assert_cmpuint(commits, >, 0);

	/* Nothing of the failed message, every earlier one intact. */
	on_disk = list_files(root);
	g_ptr_array_sort(committed, compare_strings);
	g_ptr_array_sort(on_disk, compare_strings);
	assert_same_files(on_disk, committed);
	for (guint i = 0; i < committed->len; i++) {
		g_autoptr(ImtaQueueEntry) entry = read_ok(&f, committed->pdata[i]);
		g_autoptr(GBytes) got = message_content(entry->message);
		const char *data = g_bytes_get_data(got, NULL);
		const char *nl = memchr(data, '\n', g_bytes_get_size(got));

		g_assert_nonnull(nl);
		g_assert_cmpuint(g_bytes_get_size(got), ==, (gsize)(nl - data) + 1 + 16 * 1024);
		g_assert_cmpmem(nl + 1, 16 * 1024, content, 16 * 1024);
	}
	imta_queue_close(queue);
	g_assert_cmpint(umount(mnt), ==, 0);
}

/* Where the parent and its subprocess meet. */
static char *
full_disk_dir(pid_t parent)
{
	g_autofree char *name = g_strdup_printf("imta-full-disk-%ld", (long)parent);

	return g_build_filename(g_get_tmp_dir(), name, NULL);
}

static void
test_full_disk(void)
{
	g_autofree char *dir = NULL;
	g_autofree char *skip = NULL;

	if (g_test_subprocess()) {
		dir = full_disk_dir(getppid());
		/* A mount namespace of our own: the tmpfs goes away with us
		 * even if an assertion fails. */
		if (unshare(CLONE_NEWNS) < 0 ||
		    mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
			skip = g_build_filename(dir, "skip", NULL);
			g_file_set_contents(skip, g_strerror(errno), -1, NULL);
			return;
		}
		full_disk_body(dir);
		return;
	}
	if (geteuid() != 0) {
		g_test_skip("needs root to mount a file system");
		return;
	}
	dir = full_disk_dir(getpid());
	remove_tree(dir);
	g_assert_cmpint(g_mkdir(dir, 0700), ==, 0);
	g_test_trap_subprocess(NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
	skip = g_build_filename(dir, "skip", NULL);
	if (g_file_test(skip, G_FILE_TEST_EXISTS)) {
		g_autofree char *why = NULL;
		g_autofree char *msg = NULL;

		g_file_get_contents(skip, &why, NULL, NULL);
		remove_tree(dir);
		msg = g_strdup_printf("cannot make a private mount namespace: %s", why);
		g_test_skip(msg);
		return;
	}
	remove_tree(dir);
	g_test_trap_assert_passed();
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
	g_test_add_func("/queue/names/attempt-prefix", test_attempt_prefix);
	g_test_add_func("/queue/names/parse", test_parse_name);
	g_test_add_func("/queue/names/ids-in-process", test_ids_in_process);
	ADD("/queue/names/ids-across-processes", test_ids_across_processes);
	ADD("/queue/enqueue/file-format", test_file_format);
	ADD("/queue/enqueue/roundtrip-hostile", test_roundtrip_hostile);
	ADD("/queue/enqueue/large-content", test_large_content);
	ADD("/queue/enqueue/content-memory", test_content_memory);
	ADD("/queue/enqueue/split", test_split);
	ADD("/queue/enqueue/subdirs", test_subdirs);
	ADD("/queue/enqueue/uncommitted", test_uncommitted);
	ADD("/queue/enqueue/errors", test_enqueue_errors);
	ADD("/queue/record/partial", test_record_partial);
	ADD("/queue/record/all-final", test_record_all_final);
	ADD("/queue/record/saturates", test_record_saturates);
	ADD("/queue/admin/hold-release-delete", test_hold_release_delete);
	ADD("/queue/read/torn-trailer", test_torn_trailer);
	ADD("/queue/read/load-content", test_load_content);
	ADD("/queue/read/truncated-content", test_truncated_content);
	ADD("/queue/read/malformed", test_malformed_files);
	ADD("/queue/read/bad-paths", test_read_bad_paths);
	ADD("/queue/scan/order", test_scan);
	ADD("/queue/clean-stale", test_clean_stale);
	g_test_add("/queue/commit/concurrent", Fixture, GINT_TO_POINTER(COMMIT_MODE_SYNCFS),
		   fixture_setup, test_group_commit, fixture_teardown);
	g_test_add("/queue/commit/concurrent-fdatasync", Fixture, GINT_TO_POINTER(COMMIT_MODE_FSYNC),
		   fixture_setup, test_group_commit, fixture_teardown);
	g_test_add("/queue/commit/concurrent-journal", Fixture,
		   GINT_TO_POINTER(COMMIT_MODE_JOURNAL), fixture_setup, test_group_commit,
		   fixture_teardown);
	ADD("/queue/journal/reboot", test_journal_reboot);
	ADD("/queue/journal/reboot-spooled", test_journal_reboot_spooled);
	ADD("/queue/journal/same-boot", test_journal_same_boot);
	ADD("/queue/journal/torn-tail", test_journal_torn_tail);
	ADD("/queue/journal/fills-up", test_journal_fills_up);
	ADD("/queue/journal/too-big", test_journal_too_big);
	ADD("/queue/journal/max-age", test_journal_max_age);
	ADD("/queue/journal/idle", test_journal_idle);
	ADD("/queue/commit/lost-directory", test_lost_directory);
	ADD("/queue/commit/given-id", test_given_id);
	ADD("/queue/commit/faults", test_commit_faults);
	ADD("/queue/notices", test_notices);
	ADD("/queue/notices/restarted-controller", test_notices_restarted_controller);
	ADD("/queue/reports/held", test_reports_held);
	ADD("/queue/reports/unnamed-spare", test_unnamed_spare);
	ADD("/queue/notices/full-queue", test_notices_full_queue);
	g_test_add_func("/queue/full-disk", test_full_disk);
#undef ADD
	return g_test_run();
}
