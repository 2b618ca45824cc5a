/*
 * test-log.c - the process log's lines: their stamp, program, pid and
 * level, short and long texts whole on one line each, a header too long
 * for the line buffer, the level filter, and lines from many threads
 * never mixed.
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <imta/log.h>

typedef struct {
	char *dir;
	char *path;
} Fixture;

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	f->dir = g_dir_make_tmp("test-log-XXXXXX", &error);
	g_assert_no_error(error);
	f->path = g_build_filename(f->dir, "process.log", NULL);
	g_assert_true(imta_log_open("test-log", f->path, &error));
	g_assert_no_error(error);
	imta_log_set_level(IMTA_LOG_INFO);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
	imta_log_close();
	g_unlink(f->path);
	g_rmdir(f->dir);
	g_free(f->path);
	g_free(f->dir);
}

static char **
log_lines(Fixture *f)
{
	g_autofree char *text = NULL;
	g_autoptr(GError) error = NULL;
	gsize len;

	g_assert_true(g_file_get_contents(f->path, &text, &len, &error));
	g_assert_no_error(error);
	g_assert_true(len > 0 && text[len - 1] == '\n');
	text[len - 1] = '\0';
	return g_strsplit(text, "\n", -1);
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ test-log[pid]: level: " and the stamp within
 * a few seconds of `around`. */
static const char *
check_prefix(const char *line, const char *level, gint64 around)
{
	g_autofree char *who = g_strdup_printf(" test-log[%ld]: %s: ", (long)getpid(), level);
	g_autofree char *stamp = g_strndup(line, 23);
	g_autoptr(GDateTime) when = NULL;
	g_autofree char *iso = NULL;

	g_assert_cmpuint(strlen(line), >, 24);
	g_assert_cmpint(line[23], ==, 'Z');
	g_assert_cmpint(line[19], ==, '.');
	g_assert_true(g_ascii_isdigit(line[20]) && g_ascii_isdigit(line[21]) &&
		      g_ascii_isdigit(line[22]));
	iso = g_strconcat(stamp, "Z", NULL);
	when = g_date_time_new_from_iso8601(iso, NULL);
	g_assert_nonnull(when);
	g_assert_cmpint(ABS(g_date_time_to_unix(when) - around), <=, 5);
	g_assert_true(g_str_has_prefix(line + 24, who));
	return line + 24 + strlen(who);
}

static void
test_lines(Fixture *f, gconstpointer data)
{
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	g_autofree char *big = g_strnfill(5000, 'x');
	g_auto(GStrv) lines = NULL;

	imta_log(IMTA_LOG_NOTICE, "queued %s for %d recipients", "ABC", 3);
	imta_log(IMTA_LOG_DEBUG, "not at this level");
	imta_log(IMTA_LOG_ERROR, "long: %s.", big);
	imta_log(IMTA_LOG_INFO, "%s", "");
	imta_log_set_level(IMTA_LOG_DEBUG);
	imta_log(IMTA_LOG_DEBUG, "now at this level");
	lines = log_lines(f);
	g_assert_cmpuint(g_strv_length(lines), ==, 4);
	g_assert_cmpstr(check_prefix(lines[0], "notice", now), ==, "queued ABC for 3 recipients");
	g_assert_true(g_str_has_prefix(check_prefix(lines[1], "error", now), "long: xxx"));
	g_assert_cmpuint(strlen(check_prefix(lines[1], "error", now)), ==, 5000 + 7);
	g_assert_cmpstr(check_prefix(lines[2], "info", now), ==, "");
	g_assert_cmpstr(check_prefix(lines[3], "debug", now), ==, "now at this level");
}

/* A header longer than the line buffer (a very long program name) is cut
 * there, and the text still follows it on the same line. */
static void
test_long_header(Fixture *f, gconstpointer data)
{
	g_autofree char *program = g_strnfill(1500, 'p');
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) lines = NULL;
	gsize len;

	g_assert_true(imta_log_open(program, f->path, &error));
	g_assert_no_error(error);
	imta_log(IMTA_LOG_NOTICE, "after a long name");
	lines = log_lines(f);
	g_assert_cmpuint(g_strv_length(lines), ==, 1);
	len = strlen(lines[0]);
	g_assert_cmpuint(len, ==, 1023 + strlen("after a long name"));
	g_assert_cmpint(lines[0][23], ==, 'Z');
	g_assert_true(g_str_has_prefix(lines[0] + 24, " ppppp"));
	g_assert_true(g_str_has_suffix(lines[0], "pppafter a long name"));
}

#define THREADS 4
#define LINES_PER_THREAD 2000

static gpointer
log_thread(gpointer data)
{
	guint id = GPOINTER_TO_UINT(data);
	/* Past the short line's buffer every tenth line. */
	g_autofree char *pad = g_strnfill(1500, (char)('a' + id));

	for (guint i = 0; i < LINES_PER_THREAD; i++)
		imta_log(IMTA_LOG_INFO, "thread %u line %u %s", id, i, i % 10 == 0 ? pad : "-");
	return NULL;
}

static void
test_threads(Fixture *f, gconstpointer data)
{
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	GThread *threads[THREADS];
	guint next[THREADS] = { 0 };
	g_auto(GStrv) lines = NULL;

	for (guint t = 0; t < THREADS; t++)
		threads[t] = g_thread_new("log", log_thread, GUINT_TO_POINTER(t));
	for (guint t = 0; t < THREADS; t++)
		g_thread_join(threads[t]);
	lines = log_lines(f);
	g_assert_cmpuint(g_strv_length(lines), ==, THREADS * LINES_PER_THREAD);
	for (guint k = 0; lines[k] != NULL; k++) {
		const char *text = check_prefix(lines[k], "info", now);
		guint id, i;
		int used = 0;

		g_assert_cmpint(sscanf(text, "thread %u line %u %n", &id, &i, &used), ==, 2);
		g_assert_cmpuint(id, <, THREADS);
		/* Each thread's lines in its own order, each whole. */
		g_assert_cmpuint(i, ==, next[id]);
		next[id]++;
		if (i % 10 == 0) {
			g_autofree char *pad = g_strnfill(1500, (char)('a' + id));

			g_assert_cmpstr(text + used, ==, pad);
		} else
			g_assert_cmpstr(text + used, ==, "-");
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/log/lines", Fixture, NULL, fixture_set_up, test_lines, fixture_tear_down);
	g_test_add("/log/threads", Fixture, NULL, fixture_set_up, test_threads,
		   fixture_tear_down);
	g_test_add("/log/long-header", Fixture, NULL, fixture_set_up, test_long_header,
		   fixture_tear_down);
	return g_test_run();
}
