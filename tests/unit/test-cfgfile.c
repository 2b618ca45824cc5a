/*
 * test-cfgfile.c - logical lines, comments, continuations, includes and
 * the positions reported for every byte.
 */
#include "config.h"

#include <string.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <imta/cfgfile.h>

static GPtrArray *
read_all(ImtaCfgFile *cf, GError **error)
{
	GPtrArray *lines = g_ptr_array_new_with_free_func(g_free);
	ImtaCfgLine line;

	while (imta_cfg_file_next(cf, &line, error))
		g_ptr_array_add(lines, g_strdup(line.text));
	return lines;
}

static void
test_comments_and_blanks(void)
{
	const char *text = "! comment\nrule one\n\n  # not a comment here\n!x\nlast";
	g_autoptr(GStringChunk) names = g_string_chunk_new(64);
	g_autoptr(ImtaCfgFile) cf = imta_cfg_file_open_text("t.cnf", text, strlen(text),
							     IMTA_CFG_KEEP_BLANK, "!", names);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) lines = read_all(cf, &error);

	g_assert_no_error(error);
	g_assert_cmpuint(lines->len, ==, 4);
	g_assert_cmpstr(g_ptr_array_index(lines, 0), ==, "rule one");
	g_assert_cmpstr(g_ptr_array_index(lines, 1), ==, "");
	g_assert_cmpstr(g_ptr_array_index(lines, 2), ==, "  # not a comment here");
	g_assert_cmpstr(g_ptr_array_index(lines, 3), ==, "last");
}

static void
test_blank_dropped(void)
{
	const char *text = "a=1\n\n   \r\nb=2\r\n";
	g_autoptr(GStringChunk) names = g_string_chunk_new(64);
	g_autoptr(ImtaCfgFile) cf = imta_cfg_file_open_text("t", text, strlen(text), 0, "!#;", names);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) lines = read_all(cf, &error);

	g_assert_no_error(error);
	g_assert_cmpuint(lines->len, ==, 2);
	g_assert_cmpstr(g_ptr_array_index(lines, 1), ==, "b=2");
}

static void
test_continuation_positions(void)
{
	const char *text = "first\nchan kw1 \\\n  kw2 \\\nkw3\nescaped \\\\\nnext";
	g_autoptr(GStringChunk) names = g_string_chunk_new(64);
	g_autoptr(ImtaCfgFile) cf = imta_cfg_file_open_text("imta.cnf", text, strlen(text),
							     IMTA_CFG_CONTINUATION, "!", names);
	g_autoptr(GError) error = NULL;
	ImtaCfgLine line;
	ImtaSourcePos pos;
	const char *kw3;

	g_assert_true(imta_cfg_file_next(cf, &line, &error));
	g_assert_true(imta_cfg_file_next(cf, &line, &error));
	g_assert_cmpstr(line.text, ==, "chan kw1   kw2 kw3");
	/* "kw2" starts on physical line 3, column 3. */
	imta_cfg_file_pos(cf, (gsize)(strstr(line.text, "kw2") - line.text), &pos);
	g_assert_cmpstr(pos.file, ==, "imta.cnf");
	g_assert_cmpuint(pos.line, ==, 3);
	g_assert_cmpuint(pos.column, ==, 3);
	kw3 = strstr(line.text, "kw3");
	imta_cfg_file_pos(cf, (gsize)(kw3 - line.text), &pos);
	g_assert_cmpuint(pos.line, ==, 4);
	g_assert_cmpuint(pos.column, ==, 1);
	imta_cfg_file_pos(cf, 5, &pos);
	g_assert_cmpuint(pos.line, ==, 2);
	g_assert_cmpuint(pos.column, ==, 6);
	/* An escaped backslash does not continue the line. */
	g_assert_true(imta_cfg_file_next(cf, &line, &error));
	g_assert_cmpstr(line.text, ==, "escaped \\\\");
	g_assert_true(imta_cfg_file_next(cf, &line, &error));
	g_assert_cmpstr(line.text, ==, "next");
	g_assert_false(imta_cfg_file_next(cf, &line, &error));
	g_assert_no_error(error);
}

static char *
write_file(const char *dir, const char *name, const char *text)
{
	char *path = g_build_filename(dir, name, NULL);

	g_assert_true(g_file_set_contents(path, text, -1, NULL));
	return path;
}

static void
test_includes(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *dir = g_dir_make_tmp("cfgfile-XXXXXX", &error);
	g_autofree char *main_path = NULL, *inc = NULL;
	g_autoptr(GStringChunk) names = g_string_chunk_new(64);
	g_autoptr(ImtaCfgFile) cf = NULL;
	ImtaCfgLine line;
	ImtaSourcePos pos;

	g_assert_no_error(error);
	main_path = write_file(dir, "main.cnf", "one\n<inc.rules\nthree\n");
	inc = write_file(dir, "inc.rules", "! c\ntwo\n");
	cf = imta_cfg_file_open(main_path, IMTA_CFG_INCLUDES, "!", names, &error);
	g_assert_no_error(error);
	g_assert_true(imta_cfg_file_next(cf, &line, &error));
	g_assert_cmpstr(line.text, ==, "one");
	g_assert_true(imta_cfg_file_next(cf, &line, &error));
	g_assert_cmpstr(line.text, ==, "two");
	imta_cfg_file_pos(cf, 0, &pos);
	g_assert_cmpstr(pos.file, ==, inc);
	g_assert_cmpuint(pos.line, ==, 2);
	g_assert_true(imta_cfg_file_next(cf, &line, &error));
	g_assert_cmpstr(line.text, ==, "three");
	imta_cfg_file_pos(cf, 0, &pos);
	g_assert_cmpstr(pos.file, ==, main_path);
	g_assert_cmpuint(pos.line, ==, 3);
	g_unlink(main_path);
	g_unlink(inc);
	g_rmdir(dir);
}

static void
test_include_errors(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *dir = g_dir_make_tmp("cfgfile-XXXXXX", &error);
	g_autofree char *a = NULL, *b = NULL, *expected = NULL;
	g_autoptr(GStringChunk) names = g_string_chunk_new(64);
	ImtaCfgLine line;

	/* A file including itself stops at the depth limit. */
	a = write_file(dir, "loop.cnf", "x\n<loop.cnf\n");
	{
		g_autoptr(ImtaCfgFile) cf = imta_cfg_file_open(a, IMTA_CFG_INCLUDES, "!", names, &error);

		while (imta_cfg_file_next(cf, &line, &error))
			;
		g_assert_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_SYNTAX);
		g_assert_true(g_str_has_suffix(error->message,
					       ":2:1: includes nested deeper than 3 levels"));
		g_clear_error(&error);
	}
	b = write_file(dir, "missing.cnf", "<nowhere.rules\n");
	{
		g_autoptr(ImtaCfgFile) cf = imta_cfg_file_open(b, IMTA_CFG_INCLUDES, "!", names, &error);

		g_assert_false(imta_cfg_file_next(cf, &line, &error));
		g_assert_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_IO);
		expected = g_strdup_printf("%s:1:1: cannot include: ", b);
		g_assert_true(g_str_has_prefix(error->message, expected));
	}
	g_unlink(a);
	g_unlink(b);
	g_rmdir(dir);
}

static void
test_nul_byte(void)
{
	const char text[] = "ok\nba\0d\n";
	g_autoptr(GStringChunk) names = g_string_chunk_new(64);
	g_autoptr(ImtaCfgFile) cf = imta_cfg_file_open_text("n.cnf", text, sizeof text - 1, 0, "!", names);
	g_autoptr(GError) error = NULL;
	ImtaCfgLine line;

	g_assert_true(imta_cfg_file_next(cf, &line, &error));
	g_assert_false(imta_cfg_file_next(cf, &line, &error));
	g_assert_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_SYNTAX);
	g_assert_cmpstr(error->message, ==, "n.cnf:2:3: NUL byte in configuration text");
}

static void
test_missing_file(void)
{
	g_autoptr(GStringChunk) names = g_string_chunk_new(64);
	g_autoptr(GError) error = NULL;
	ImtaCfgFile *cf = imta_cfg_file_open("/nonexistent/imta.cnf", 0, "!", names, &error);

	g_assert_null(cf);
	g_assert_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_IO);
}

static void
test_words(void)
{
	const char *text = "  a\tbb  ccc ";
	g_autoptr(GStringChunk) names = g_string_chunk_new(64);
	g_autoptr(ImtaCfgFile) cf = imta_cfg_file_open_text("w", text, strlen(text), 0, "", names);
	ImtaCfgLine line;
	gsize off = 0, start, len;
	static const gsize starts[] = { 2, 4, 8 }, lens[] = { 1, 2, 3 };

	g_assert_true(imta_cfg_file_next(cf, &line, NULL));
	g_assert_true(line.indented);
	for (guint i = 0; i < 3; i++) {
		g_assert_true(imta_cfg_next_word(&line, &off, &start, &len));
		g_assert_cmpuint(start, ==, starts[i]);
		g_assert_cmpuint(len, ==, lens[i]);
	}
	g_assert_false(imta_cfg_next_word(&line, &off, &start, &len));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/cfgfile/comments-and-blanks", test_comments_and_blanks);
	g_test_add_func("/cfgfile/blank-dropped", test_blank_dropped);
	g_test_add_func("/cfgfile/continuation-positions", test_continuation_positions);
	g_test_add_func("/cfgfile/includes", test_includes);
	g_test_add_func("/cfgfile/include-errors", test_include_errors);
	g_test_add_func("/cfgfile/nul-byte", test_nul_byte);
	g_test_add_func("/cfgfile/missing-file", test_missing_file);
	g_test_add_func("/cfgfile/words", test_words);
	return g_test_run();
}
