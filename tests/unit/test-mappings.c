/*
 * test-mappings.c - the mappings file syntax (with exact error positions),
 * pattern matching, template substitution, control metacharacters, access
 * flags and the documented example tables.
 */
#include "config.h"

#include <string.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <imta/mappings.h>

static ImtaMappings *
parse(const char *text, GStringChunk *names, GError **error)
{
	return imta_mappings_parse_text("mappings", text, strlen(text), names, error);
}

static void
write_file(const char *dir, const char *name, const char *text)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);

	g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

static void
remove_tree(const char *dir, const char *const *files)
{
	for (guint i = 0; files[i] != NULL; i++) {
		g_autofree char *path = g_build_filename(dir, files[i], NULL);

		g_unlink(path);
	}
	g_rmdir(dir);
}

/* ------------------------------------------------------------------ */
/* File syntax */

static void
test_parse_tables(void)
{
	const char *text =
		"! The relay protection tables\n"
		"INTERNAL_IP\n"
		"\n"
		"  $(192.168.10.0/24)  $Y\n"
		"  127.0.0.1           $Y\n"
		"\t*\t\t\t$N\n"
		"\n"
		"\n"
		"Port_Access\n"
		"\n"
		"  *|*|*|*|*  $C$|INTERNAL_IP;$3|$Y$E\n"
		"! a comment inside a table does not end it\n"
		"  *          $YEXTERNAL\n"
		"\n"
		"EMPTY\n"
		"\n"
		"\n"
		"conversions.v2\n"
		"\n"
		"  IN-CHAN=tcp_local;OUT-CHAN=*;CONVERT   Yes\n"
		"\n"
		"LAST-ONE\n";
	g_autoptr(GStringChunk) names = g_string_chunk_new(64);
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaMappings) m = parse(text, names, &error);
	const char *const *list;

	g_assert_no_error(error);
	g_assert_nonnull(m);
	list = imta_mappings_table_names(m);
	g_assert_cmpuint(g_strv_length((char **)list), ==, 5);
	g_assert_cmpstr(list[0], ==, "INTERNAL_IP");
	g_assert_cmpstr(list[1], ==, "Port_Access");
	g_assert_cmpstr(list[2], ==, "EMPTY");
	g_assert_cmpstr(list[3], ==, "conversions.v2");
	g_assert_cmpstr(list[4], ==, "LAST-ONE");
	g_assert_cmpuint(imta_mapping_table_size(imta_mappings_table(m, "internal_ip")), ==, 3);
	g_assert_cmpuint(imta_mapping_table_size(imta_mappings_table(m, "PORT_ACCESS")), ==, 2);
	g_assert_cmpuint(imta_mapping_table_size(imta_mappings_table(m, "empty")), ==, 0);
	g_assert_cmpuint(imta_mapping_table_size(imta_mappings_table(m, "CONVERSIONS.V2")), ==, 1);
	g_assert_cmpuint(imta_mapping_table_size(imta_mappings_table(m, "last-one")), ==, 0);
	g_assert_null(imta_mappings_table(m, "nosuch"));
}

static void
test_parse_empty(void)
{
	static const char *const texts[] = { "", "\n\n", "! only a comment\n", "EMPTY" };
	g_autoptr(GStringChunk) names = g_string_chunk_new(64);

	for (guint i = 0; i < G_N_ELEMENTS(texts); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaMappings) m = parse(texts[i], names, &error);

		g_assert_no_error(error);
		g_assert_nonnull(m);
		g_assert_cmpuint(g_strv_length((char **)imta_mappings_table_names(m)), ==,
				 i == 3 ? 1 : 0);
	}
}

typedef struct {
	const char *text;
	ImtaConfigErrorCode code;
	const char *message;
} ErrorCase;

static const ErrorCase file_errors[] = {
	{ "FOO\n  a  b\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:2:1: expected a blank line after table name FOO" },
	{ "FOO\nBAR\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:2:1: expected a blank line after table name FOO" },
	{ "  a  b\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:1:3: expected a table name in column 1, got an indented entry before "
	  "the first table" },
	{ "! comment\n\n\t*  $Y\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:3:2: expected a table name in column 1, got an indented entry before "
	  "the first table" },
	{ "FOO\n\n  a  b\n\n  c  d\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:5:3: expected a table name in column 1, got an indented entry (a blank "
	  "line ended table FOO)" },
	{ "FOO\n\n  a  b\nBAR\n\n  c  d\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:4:1: expected a blank line before table name BAR (a blank line ends "
	  "table FOO)" },
	{ "FOO\n\n  a  b\n\nBAR\n\n  x  y\n\nfoo\n\n  c  d\n", IMTA_CONFIG_ERROR_DUPLICATE,
	  "mappings:9:1: duplicate table foo (first defined at mappings:1:1)" },
	{ "FOO\n\n  abc\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:3:6: expected a template after the pattern" },
	{ "FOO\n\n  abc   \n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:3:6: expected a template after the pattern" },
	{ "FOO\n\n  a  b  c\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:3:9: expected only a pattern and a template, got a third column \"c\" "
	  "(quote spaces as \"$ \")" },
	{ "FOO\n\n  a  Relaying not allowed\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:3:15: expected only a pattern and a template, got a third column \"not\" "
	  "(quote spaces as \"$ \")" },
	{ "1FOO\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:1:1: expected a table name starting with a letter, got \"1FOO\"" },
	{ "FO/O\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:1:3: expected letters, digits, '_', '-' or '.' in a table name, got '/'" },
	{ "FOO BAR\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:1:5: expected only a table name on this line, got \"BAR\"" },
	/* Pattern syntax. */
	{ "FOO\n\n  $(300.1.1.1/8)  $Y\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:3:5: expected an IPv4 or IPv6 network (address/bits), got \"300.1.1.1/8\"" },
	{ "FOO\n\n  $(1.2.3.4/33)  $Y\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:3:5: expected an IPv4 or IPv6 network (address/bits), got \"1.2.3.4/33\"" },
	{ "FOO\n\n  $(2001:db8::/129)  $Y\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:3:5: expected an IPv4 or IPv6 network (address/bits), got "
	  "\"2001:db8::/129\"" },
	{ "FOO\n\n  $(10.0.0.0/)  $Y\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:3:5: expected an IPv4 or IPv6 network (address/bits), got \"10.0.0.0/\"" },
	{ "FOO\n\n  a$(1.2.3.4  $Y\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:3:4: expected ')' closing \"$(\"" },
	{ "FOO\n\n  *@$1*  $Y\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:3:5: back-reference \"$1*\" refers to no earlier wildcard (1 before it)" },
	{ "FOO\n\n  *$0x  $Y\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:3:4: expected '*' after \"$0\" (a back-reference is written \"$n*\")" },
	{ "FOO\n\n  a$q  $Y\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:3:4: unknown pattern metacharacter \"$q\" (quote special characters as "
	  "\"$*\", \"$%\", \"$ \" or \"$$\")" },
	{ "FOO\n\n  $_%  x\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:3:3: expected '*' after \"$_\" (minimal matching applies to a '*')" },
	/* Template syntax. */
	{ "FOO\n\n  a  b$\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:3:7: expected a character after '$' (write \"$$\" for a literal dollar "
	  "sign)" },
	{ "FOO\n\n  abc  $1\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:3:8: expected no \"$n\" substitution (the pattern has no wildcards), "
	  "got \"$1\"" },
	{ "FOO\n\n  *@*  $0@$2\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:3:11: expected \"$0\" to \"$1\" (the pattern has 2 wildcards), got \"$2\"" },
	{ "FOO\n\n  *  $|FOO;$0\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:3:6: expected '|' closing \"$|FOO;\"" },
	{ "FOO\n\n  *  x$|BAR;$|FOO;$0|\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:3:7: expected '|' closing \"$|BAR;\"" },
	{ "FOO\n\n  *  $|;x|\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:3:6: expected \"$|table;string|\" (a table name and ';' after \"$|\")" },
	{ "FOO\n\n  *  $|FOO|\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:3:6: expected \"$|table;string|\" (a table name and ';' after \"$|\")" },
	{ "FOO\n\n  *  a$[lib,fn,$0\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:3:7: expected ']' closing \"$[\"" },
	{ "FOO\n\n  *  ${db,$0\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:3:6: expected '}' closing \"${\"" },
	{ "FOO\n\n  *  $|FOO;$Y|\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:3:12: expected a string inside \"$|...|\", got the flag \"$Y\" (flags "
	  "belong outside the call)" },
	/* Continuation lines keep the position of each physical line. */
	{ "FOO\n\n  abc \\\n$1\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:4:1: expected no \"$n\" substitution (the pattern has no wildcards), "
	  "got \"$1\"" },
	{ "FOO\n\n  *  \\\n   \\\n  $Y$3\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "mappings:5:5: expected \"$0\" to \"$0\" (the pattern has 1 wildcard), got \"$3\"" },
};

static void
test_parse_errors(void)
{
	g_autoptr(GStringChunk) names = g_string_chunk_new(64);

	for (guint i = 0; i < G_N_ELEMENTS(file_errors); i++) {
		const ErrorCase *c = &file_errors[i];
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaMappings) m = parse(c->text, names, &error);

		g_test_message("case %u: %s", i, c->text);
		g_assert_null(m);
		g_assert_error(error, IMTA_CONFIG_ERROR, (gint)c->code);
		g_assert_cmpstr(error->message, ==, c->message);
	}
}

static void
test_parse_limits(void)
{
	g_autoptr(GStringChunk) names = g_string_chunk_new(64);
	g_autofree char *p1024 = g_strnfill(IMTA_MAPPING_MAX_PATTERN, 'a');
	g_autofree char *p1025 = g_strnfill(IMTA_MAPPING_MAX_PATTERN + 1, 'a');
	g_autofree char *t1025 = g_strnfill(IMTA_MAPPING_MAX_TEMPLATE + 1, 'b');
	g_autofree char *ok = g_strdup_printf("T\n\n  %s  %s\n", p1024, p1024);
	g_autofree char *long_pattern = g_strdup_printf("T\n\n  %s  x\n", p1025);
	g_autofree char *long_template = g_strdup_printf("T\n\n  a  %s\n", t1025);
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaMappings) m = parse(ok, names, &error);
	ImtaMappings *bad;

	g_assert_no_error(error);
	g_assert_nonnull(m);

	bad = parse(long_pattern, names, &error);
	g_assert_null(bad);
	g_assert_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_RANGE);
	g_assert_cmpstr(error->message, ==,
			"mappings:3:3: expected a pattern of at most 1024 characters, got 1025");
	g_clear_error(&error);

	bad = parse(long_template, names, &error);
	g_assert_null(bad);
	g_assert_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_RANGE);
	g_assert_cmpstr(error->message, ==,
			"mappings:3:6: expected a template of at most 1024 characters, got 1025");
}

static void
test_parse_nul(void)
{
	static const char text[] = "FOO\n\n  a\0b  c\n";
	g_autoptr(GStringChunk) names = g_string_chunk_new(64);
	g_autoptr(GError) error = NULL;
	ImtaMappings *m = imta_mappings_parse_text("mappings", text, sizeof(text) - 1, names,
						   &error);

	g_assert_null(m);
	g_assert_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_SYNTAX);
	g_assert_true(g_str_has_prefix(error->message, "mappings:3:4: "));
}

static void
test_parse_continuation(void)
{
	const char *text = "FOO\n\n  abc\\\ndef  x$ \\\ny\n";
	g_autoptr(GStringChunk) names = g_string_chunk_new(64);
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaMappings) m = parse(text, names, &error);
	ImtaMappingResult r = { 0 };

	g_assert_no_error(error);
	g_assert_true(imta_mappings_apply_named(m, "FOO", "abcdef", &r));
	g_assert_cmpstr(r.result, ==, "x y");
	imta_mapping_result_clear(&r);
}

static void
test_parse_includes(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *dir = g_dir_make_tmp("mappings-XXXXXX", &error);
	g_autofree char *top = NULL;
	g_autoptr(GStringChunk) names = g_string_chunk_new(64);
	g_autoptr(ImtaMappings) m = NULL;
	ImtaMappingResult r = { 0 };
	static const char *const files[] = { "mappings", "internal.inc", "more.inc", NULL };

	g_assert_no_error(error);
	top = g_build_filename(dir, "mappings", NULL);
	write_file(dir, "mappings",
		   "<internal.inc\n"
		   "\n"
		   "PORT_ACCESS\n"
		   "\n"
		   "  *|*|*|*|*  $C$|INTERNAL_IP;$3|$Y$E\n"
		   "<more.inc\n");
	write_file(dir, "internal.inc",
		   "INTERNAL_IP\n"
		   "\n"
		   "  $(10.0.0.0/8)  $Y\n"
		   "  *  $N\n");
	write_file(dir, "more.inc", "  *  $YEXTERNAL\n");
	m = imta_mappings_load(top, names, &error);
	g_assert_no_error(error);
	g_assert_nonnull(m);
	g_assert_cmpuint(imta_mapping_table_size(imta_mappings_table(m, "PORT_ACCESS")), ==, 2);
	g_assert_true(imta_mappings_apply_named(m, "PORT_ACCESS", "TCP|1.1.1.1|25|10.2.3.4|99",
						&r));
	g_assert_cmpstr(r.result, ==, "");
	g_assert_cmpuint(r.flags, ==, IMTA_MAP_FLAG_Y);
	imta_mapping_result_clear(&r);
	g_assert_true(imta_mappings_apply_named(m, "PORT_ACCESS", "TCP|1.1.1.1|25|11.2.3.4|99",
						&r));
	g_assert_cmpstr(r.result, ==, "EXTERNAL");
	imta_mapping_result_clear(&r);
	g_clear_pointer(&m, imta_mappings_free);

	/* An error inside an included file names that file. */
	write_file(dir, "more.inc", "  *\n");
	m = imta_mappings_load(top, names, &error);
	g_assert_null(m);
	{
		g_autofree char *inc = g_build_filename(dir, "more.inc", NULL);
		g_autofree char *want = g_strdup_printf(
			"%s:1:4: expected a template after the pattern", inc);

		g_assert_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_SYNTAX);
		g_assert_cmpstr(error->message, ==, want);
	}
	g_clear_error(&error);

	/* A missing included file. */
	write_file(dir, "more.inc", "<nosuch.inc\n");
	m = imta_mappings_load(top, names, &error);
	g_assert_null(m);
	{
		g_autofree char *inc = g_build_filename(dir, "more.inc", NULL);
		g_autofree char *want = g_strdup_printf("%s:1:1: cannot include: ", inc);

		g_assert_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_IO);
		g_assert_true(g_str_has_prefix(error->message, want));
	}
	g_clear_error(&error);
	remove_tree(dir, files);
}

static void
test_parse_include_depth(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *dir = g_dir_make_tmp("mappings-XXXXXX", &error);
	g_autofree char *top = NULL;
	g_autofree char *deepest = NULL;
	g_autofree char *want = NULL;
	g_autoptr(GStringChunk) names = g_string_chunk_new(64);
	g_autoptr(ImtaMappings) m = NULL;
	static const char *const files[] = { "mappings", "1.inc", "2.inc", "3.inc", "4.inc",
					     NULL };

	g_assert_no_error(error);
	top = g_build_filename(dir, "mappings", NULL);
	write_file(dir, "mappings", "<1.inc\n");
	write_file(dir, "1.inc", "<2.inc\n");
	write_file(dir, "2.inc", "<3.inc\n");
	write_file(dir, "3.inc", "T\n\n  a  b\n");
	/* Three levels of nesting are allowed. */
	m = imta_mappings_load(top, names, &error);
	g_assert_no_error(error);
	g_assert_nonnull(imta_mappings_table(m, "T"));
	g_clear_pointer(&m, imta_mappings_free);

	write_file(dir, "3.inc", "T\n\n  a  b\n<4.inc\n");
	write_file(dir, "4.inc", "U\n\n  c  d\n");
	m = imta_mappings_load(top, names, &error);
	g_assert_null(m);
	deepest = g_build_filename(dir, "3.inc", NULL);
	want = g_strdup_printf("%s:4:1: includes nested deeper than 3 levels", deepest);
	g_assert_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_SYNTAX);
	g_assert_cmpstr(error->message, ==, want);
	remove_tree(dir, files);
}

static void
test_parse_missing_file(void)
{
	g_autoptr(GStringChunk) names = g_string_chunk_new(64);
	g_autoptr(GError) error = NULL;
	ImtaMappings *m = imta_mappings_load("/nonexistent/dir/mappings", names, &error);

	g_assert_null(m);
	g_assert_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_IO);
	g_assert_nonnull(strstr(error->message, "/nonexistent/dir/mappings"));
}

/* ------------------------------------------------------------------ */
/* Pattern matching */

typedef struct {
	const char *pattern;
	const char *input;
	gboolean matches;
	const char *captures[5];
} MatchCase;

static const MatchCase literal_cases[] = {
	{ "abc", "abc", TRUE, { NULL } },
	{ "abc", "ABC", TRUE, { NULL } },
	{ "ABC", "abc", TRUE, { NULL } },
	{ "Joe@Sesta.COM", "jOE@sESTA.com", TRUE, { NULL } },
	{ "abc", "abd", FALSE, { NULL } },
	{ "abc", "abcd", FALSE, { NULL } },
	{ "abc", "ab", FALSE, { NULL } },
	{ "", "", TRUE, { NULL } },
	{ "", "a", FALSE, { NULL } },
	{ "a|b", "A|B", TRUE, { NULL } },
	{ "IN-CHAN=tcp_local;OUT-CHAN=*;CONVERT", "in-chan=TCP_LOCAL;out-chan=ims-ms;convert",
	  TRUE, { "ims-ms" } },
};

static const MatchCase wildcard_cases[] = {
	{ "*", "", TRUE, { "" } },
	{ "*", "anything at all", TRUE, { "anything at all" } },
	{ "*.*", "a.b.c", TRUE, { "a.b", "c" } },
	{ "*|*", "a|b|c", TRUE, { "a|b", "c" } },
	{ "$_*.*", "a.b.c", TRUE, { "a", "b.c" } },
	{ "*@*", "Joe@Example.COM", TRUE, { "Joe", "Example.COM" } },
	{ "*@*", "no-at-sign", FALSE, { NULL } },
	{ "**", "ab", TRUE, { "ab", "" } },
	{ "a%c", "abc", TRUE, { "b" } },
	{ "a%c", "ac", FALSE, { NULL } },
	{ "a%c", "abbc", FALSE, { NULL } },
	{ "%%", "xy", TRUE, { "x", "y" } },
	{ "%", "", FALSE, { NULL } },
	{ "*%", "abc", TRUE, { "ab", "c" } },
	{ "%*", "abc", TRUE, { "a", "bc" } },
	{ "*.%%", "host.example.de", TRUE, { "host.example", "d", "e" } },
	{ "TCP|*|25|*|*", "TCP|10.0.0.1|25|192.0.2.7|4321", TRUE,
	  { "10.0.0.1", "192.0.2.7", "4321" } },
	{ "TCP|*|25|*|*", "TCP|10.0.0.1|587|192.0.2.7|4321", FALSE, { NULL } },
	{ "tcp_local|*|tcp_local|*", "tcp_local|a@b.c|tcp_local|d@e.f", TRUE,
	  { "a@b.c", "d@e.f" } },
};

static const MatchCase quote_cases[] = {
	{ "a$*b", "a*b", TRUE, { NULL } },
	{ "a$*b", "axb", FALSE, { NULL } },
	{ "100$%", "100%", TRUE, { NULL } },
	{ "100$%", "1000", FALSE, { NULL } },
	{ "a$ b", "a b", TRUE, { NULL } },
	{ "a$\tb", "a\tb", TRUE, { NULL } },
	{ "$$x", "$x", TRUE, { NULL } },
	{ "$$x", "x", FALSE, { NULL } },
	{ "a$|b", "a|b", TRUE, { NULL } },
	{ "*$**", "a*b", TRUE, { "a", "b" } },
};

static const MatchCase backref_cases[] = {
	{ "*|*|$0*", "x|y|X", TRUE, { "x", "y" } },
	{ "*|*|$0*", "x|y|z", FALSE, { NULL } },
	{ "*-$0*", "ab-AB", TRUE, { "ab" } },
	{ "*-$0*", "ab-abc", FALSE, { NULL } },
	{ "*$0*", "abab", TRUE, { "ab" } },
	{ "*$0*", "aba", FALSE, { NULL } },
	{ "*$0*", "", TRUE, { "" } },
	{ "*@*|$1*", "joe@sesta.com|SESTA.com", TRUE, { "joe", "sesta.com" } },
	{ "%$0*$0*", "zzz", TRUE, { "z" } },
};

static const MatchCase ip_cases[] = {
	{ "$(192.168.10.0/24)", "192.168.10.5", TRUE, { "192.168.10.5" } },
	{ "$(192.168.10.0/24)", "192.168.10.255", TRUE, { "192.168.10.255" } },
	{ "$(192.168.10.0/24)", "192.168.11.5", FALSE, { NULL } },
	{ "$(192.168.10.0/24)", "192.168.10.256", FALSE, { NULL } },
	{ "$(192.168.10.0/24)", "192.168.10.5x", FALSE, { NULL } },
	{ "$(192.168.10.0/24)", "host.example", FALSE, { NULL } },
	{ "$(192.168.10.0/24)", "", FALSE, { NULL } },
	{ "$(192.168.10.77/24)", "192.168.10.1", TRUE, { "192.168.10.1" } },
	{ "$(0.0.0.0/0)", "8.8.8.8", TRUE, { "8.8.8.8" } },
	{ "$(192.168.10.1/32)", "192.168.10.1", TRUE, { "192.168.10.1" } },
	{ "$(192.168.10.1/32)", "192.168.10.2", FALSE, { NULL } },
	{ "$(192.168.10.1)", "192.168.10.1", TRUE, { "192.168.10.1" } },
	{ "$(172.16.0.0/12)", "172.31.255.1", TRUE, { "172.31.255.1" } },
	{ "$(172.16.0.0/12)", "172.32.0.1", FALSE, { NULL } },
	{ "$(10.0.0.0/8)|*", "10.200.3.4|x", TRUE, { "10.200.3.4", "x" } },
	{ "*|$(10.0.0.0/8)|*", "a|10.1.2.3|25", TRUE, { "a", "10.1.2.3", "25" } },
	{ "TCP|*|25|$(10.0.0.0/8)|*", "TCP|1.2.3.4|25|10.9.8.7|25", TRUE,
	  { "1.2.3.4", "10.9.8.7", "25" } },
	{ "$(10.0.0.0/8).in-addr", "10.1.2.3.in-addr", TRUE, { "10.1.2.3" } },
	{ "$(2001:db8:1:2::/64)", "2001:db8:1:2::42", TRUE, { "2001:db8:1:2::42" } },
	{ "$(2001:db8:1:2::/64)", "2001:DB8:1:2:ffff::1", TRUE, { "2001:DB8:1:2:ffff::1" } },
	{ "$(2001:db8:1:2::/64)", "2001:db8:1:3::1", FALSE, { NULL } },
	{ "$(::1/128)", "::1", TRUE, { "::1" } },
	{ "$(192.168.10.0/24)", "::ffff:192.168.10.9", TRUE, { "::ffff:192.168.10.9" } },
	{ "$(2001:db8::/32)", "192.168.10.9", FALSE, { NULL } },
	{ "$(::/0)", "1.2.3.4", FALSE, { NULL } },
};

static void
run_match_cases(const MatchCase *cases, guint n)
{
	for (guint i = 0; i < n; i++) {
		const MatchCase *c = &cases[i];
		g_auto(GStrv) got = imta_mapping_match_pattern(c->pattern, c->input);

		g_test_message("case %u: \"%s\" against \"%s\"", i, c->pattern, c->input);
		if (!c->matches) {
			g_assert_null(got);
			continue;
		}
		g_assert_nonnull(got);
		g_assert_cmpstrv(got, c->captures);
	}
}

static void
test_match_literal(void)
{
	run_match_cases(literal_cases, G_N_ELEMENTS(literal_cases));
}

static void
test_match_wildcards(void)
{
	run_match_cases(wildcard_cases, G_N_ELEMENTS(wildcard_cases));
}

static void
test_match_quotes(void)
{
	run_match_cases(quote_cases, G_N_ELEMENTS(quote_cases));
}

static void
test_match_backrefs(void)
{
	run_match_cases(backref_cases, G_N_ELEMENTS(backref_cases));
}

static void
test_match_ip(void)
{
	run_match_cases(ip_cases, G_N_ELEMENTS(ip_cases));
}

static void
test_match_invalid_pattern(void)
{
	static const char *const bad[] = { "$q", "a$", "$(1.2.3/8)", "$0*", "$_x" };

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++)
		g_assert_null(imta_mapping_match_pattern(bad[i], "anything"));
}

/* A plain backtracking matcher for a subset of the pattern language
 * ('a', 'b', '*', '$_*', '%', "$n*"), to check the memoized one against. */
typedef struct {
	char kind;      /* 'c' literal, '*', '%', 'r' back-reference */
	char c;
	gboolean lazy;
	guint capture;  /* '*', '%': own number; 'r': the one read */
} NaiveToken;

static gboolean
naive_match(const NaiveToken *t, guint nt, guint ti, const char *s, gsize n, gsize si,
	    gsize (*caps)[2])
{
	if (ti == nt)
		return si == n;
	switch (t[ti].kind) {
	case 'c':
		return si < n && g_ascii_tolower(s[si]) == t[ti].c &&
		       naive_match(t, nt, ti + 1, s, n, si + 1, caps);
	case '%':
		if (si >= n)
			return FALSE;
		caps[t[ti].capture][0] = si;
		caps[t[ti].capture][1] = 1;
		return naive_match(t, nt, ti + 1, s, n, si + 1, caps);
	case 'r': {
		gsize start = caps[t[ti].capture][0], len = caps[t[ti].capture][1];

		if (n - si < len || g_ascii_strncasecmp(s + si, s + start, len) != 0)
			return FALSE;
		return naive_match(t, nt, ti + 1, s, n, si + len, caps);
	}
	default:
		for (gsize k = 0; k <= n - si; k++) {
			gsize e = t[ti].lazy ? si + k : n - k;

			caps[t[ti].capture][0] = si;
			caps[t[ti].capture][1] = e - si;
			if (naive_match(t, nt, ti + 1, s, n, e, caps))
				return TRUE;
		}
		return FALSE;
	}
}

static void
test_match_differential(void)
{
	GRand *rand = g_rand_new_with_seed(20260101);

	for (guint round = 0; round < 30000; round++) {
		NaiveToken t[8];
		guint nt = (guint)g_rand_int_range(rand, 1, 8), ncap = 0;
		g_autoptr(GString) pattern = g_string_new(NULL);
		char input[12];
		gsize n = (gsize)g_rand_int_range(rand, 0, 11);
		gsize caps[8][2];
		gboolean want;
		g_auto(GStrv) got = NULL;

		for (guint i = 0; i < nt; i++) {
			gint32 pick = g_rand_int_range(rand, 0, ncap > 0 ? 7 : 6);

			memset(&t[i], 0, sizeof(t[i]));
			if (pick <= 1) {
				t[i].kind = 'c';
				t[i].c = pick == 0 ? 'a' : 'b';
				g_string_append_c(pattern, pick == 0 ? 'a' : 'B');
			} else if (pick <= 3) {
				t[i].kind = '*';
				t[i].capture = ncap++;
				g_string_append(pattern, "*");
			} else if (pick == 4) {
				t[i].kind = '*';
				t[i].lazy = TRUE;
				t[i].capture = ncap++;
				g_string_append(pattern, "$_*");
			} else if (pick == 5) {
				t[i].kind = '%';
				t[i].capture = ncap++;
				g_string_append(pattern, "%");
			} else {
				t[i].kind = 'r';
				t[i].capture = (guint)g_rand_int_range(rand, 0, (gint32)ncap);
				g_string_append_printf(pattern, "$%u*", t[i].capture);
			}
		}
		for (gsize i = 0; i < n; i++)
			input[i] = "abA"[g_rand_int_range(rand, 0, 3)];
		input[n] = '\0';
		want = naive_match(t, nt, 0, input, n, 0, caps);
		got = imta_mapping_match_pattern(pattern->str, input);
		if (!want) {
			if (got != NULL)
				g_error("\"%s\" against \"%s\": matched, expected no match",
					pattern->str, input);
			continue;
		}
		if (got == NULL)
			g_error("\"%s\" against \"%s\": no match, expected one", pattern->str,
				input);
		g_assert_cmpuint(g_strv_length(got), ==, ncap);
		for (guint k = 0; k < ncap; k++) {
			g_autofree char *cap = g_strndup(input + caps[k][0], caps[k][1]);

			if (g_strcmp0(got[k], cap) != 0)
				g_error("\"%s\" against \"%s\": capture %u is \"%s\", expected "
					"\"%s\"", pattern->str, input, k, got[k], cap);
		}
	}
	g_rand_free(rand);
}

/* Many stars against a long string that almost matches: exponential for a
 * naive backtracker, bounded here. */
static void
test_match_pathological(void)
{
	g_autofree char *as = g_strnfill(5000, 'a');
	g_autoptr(GString) stars = g_string_new(NULL);
	g_auto(GStrv) got = NULL;
	g_autofree char *matching = NULL;
	gint64 start = g_get_monotonic_time();

	for (guint i = 0; i < 40; i++)
		g_string_append(stars, "*a");
	g_string_append(stars, "*b");
	g_assert_null(imta_mapping_match_pattern(stars->str, as));

	matching = g_strconcat(as, "b", NULL);
	got = imta_mapping_match_pattern(stars->str, matching);
	g_assert_nonnull(got);
	g_assert_cmpuint(g_strv_length(got), ==, 41);
	/* Greedy: the first star takes all but the last 40 a's. */
	g_assert_cmpuint(strlen(got[0]), ==, 5000 - 40);
	g_assert_cmpstr(got[40], ==, "");
	g_clear_pointer(&got, g_strfreev);

	/* Back-references defeat the memo; the work budget still ends it. */
	g_assert_null(imta_mapping_match_pattern("*$0**$0**$0**$0**$0**$0**$0*b", as));
	g_assert_cmpint(g_get_monotonic_time() - start, <, 20 * G_USEC_PER_SEC);
}

/* ------------------------------------------------------------------ */
/* Applying tables */

typedef struct {
	const char *table;
	const char *input;
	gboolean matched;
	const char *result;
	guint flags;
	gint delay;
	const char *from;
	const char *sender;
	const char *log_text;
	const char *log_deny_text;
} ApplyCase;

static void
run_apply_cases(const char *text, const ApplyCase *cases, guint n)
{
	g_autoptr(GStringChunk) names = g_string_chunk_new(64);
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaMappings) m = parse(text, names, &error);

	g_assert_no_error(error);
	g_assert_nonnull(m);
	for (guint i = 0; i < n; i++) {
		const ApplyCase *c = &cases[i];
		ImtaMappingResult r = { 0 };
		gboolean matched = imta_mappings_apply_named(m, c->table, c->input, &r);

		g_test_message("case %u: %s \"%s\"", i, c->table, c->input);
		g_assert_cmpint(matched, ==, c->matched);
		g_assert_cmpint(r.matched, ==, c->matched);
		if (!c->matched) {
			g_assert_null(r.result);
			g_assert_cmpuint(r.flags, ==, 0);
			continue;
		}
		g_assert_cmpstr(r.result, ==, c->result);
		g_assert_cmphex(r.flags, ==, c->flags);
		g_assert_cmpint(r.delay, ==, c->delay);
		g_assert_cmpstr(r.from, ==, c->from);
		g_assert_cmpstr(r.sender, ==, c->sender);
		g_assert_cmpstr(r.log_text, ==, c->log_text);
		g_assert_cmpstr(r.log_deny_text, ==, c->log_deny_text);
		imta_mapping_result_clear(&r);
		g_assert_null(r.result);
	}
}

static void
test_apply_substitution(void)
{
	const char *text =
		"SUBST\n"
		"\n"
		"  *@*.*       $1.$2|$0\n"
		"  x%y         [$0]\n"
		"  dollar      $$5$ and$ $%$*\n"
		"  first       one\n"
		"  FIRST       two\n"
		"  *           other:$0\n";
	static const ApplyCase cases[] = {
		{ "SUBST", "joe@sesta.com", TRUE, "sesta.com|joe" },
		{ "subst", "Joe@Mail.Sesta.COM", TRUE, "Mail.Sesta.COM|Joe" },
		{ "SUBST", "xzy", TRUE, "[z]" },
		{ "SUBST", "dollar", TRUE, "$5 and %*" },
		{ "SUBST", "First", TRUE, "one" },
		{ "SUBST", "plain", TRUE, "other:plain" },
		{ "NOSUCH", "plain", FALSE },
	};

	run_apply_cases(text, cases, G_N_ELEMENTS(cases));
}

static void
test_apply_no_match(void)
{
	const char *text = "T\n\n  a*  x\n  b   y\n";
	static const ApplyCase cases[] = {
		{ "T", "c", FALSE },
		{ "T", "", FALSE },
		{ "T", "ba", FALSE },
		{ "T", "b", TRUE, "y" },
	};

	run_apply_cases(text, cases, G_N_ELEMENTS(cases));
}

static void
test_apply_controls(void)
{
	const char *text =
		"CHAIN\n"
		"\n"
		"  a*     b$0$C\n"
		"  b*     c$0$C\n"
		"  x*     never\n"
		"  c*     d$0\n"
		"  d*     not-reached\n"
		"\n"
		"END\n"
		"\n"
		"  a*     X$0$E\n"
		"  *      Y$0\n"
		"\n"
		"CONT_NOMATCH\n"
		"\n"
		"  a*     b$0$C\n"
		"  zzz    never\n"
		"\n"
		"LPASS\n"
		"\n"
		"  b*     c$0$C\n"
		"  a*     b$0$L\n"
		"\n"
		"CPASS\n"
		"\n"
		"  b*     c$0$C\n"
		"  a*     b$0$C\n"
		"\n"
		"LLOOP\n"
		"\n"
		"  *      $0$L\n"
		"\n"
		"RSTRIP\n"
		"\n"
		"  a*     $0$R\n"
		"  *      done-$0\n"
		"\n"
		"RLOOP\n"
		"\n"
		"  *      $0$R\n"
		"\n"
		"RGROW\n"
		"\n"
		"  *      x$0$R\n"
		"\n"
		"RONLY\n"
		"\n"
		"  a*     $0$R\n"
		"\n"
		"FLAGCHAIN\n"
		"\n"
		"  a*     $Nb$0$C\n"
		"  b*     $Yc$0\n";
	static const ApplyCase cases[] = {
		{ "CHAIN", "a1", TRUE, "d1" },
		{ "CHAIN", "b1", TRUE, "d1" },
		{ "CHAIN", "c1", TRUE, "d1" },
		{ "CHAIN", "x1", TRUE, "never" },
		{ "END", "a1", TRUE, "X1" },
		{ "END", "q", TRUE, "Yq" },
		{ "CONT_NOMATCH", "a1", TRUE, "b1" },
		{ "LPASS", "aZ", TRUE, "cZ" },
		{ "CPASS", "aZ", TRUE, "bZ" },
		{ "LLOOP", "x", TRUE, "x" },
		{ "RSTRIP", "aaab", TRUE, "done-b" },
		{ "RSTRIP", "AAb", TRUE, "done-b" },
		{ "RSTRIP", "aaa", TRUE, "done-" },
		{ "RLOOP", "x", FALSE },
		{ "RGROW", "x", FALSE },
		/* After a restart nothing matches: the last output is the result. */
		{ "RONLY", "aab", TRUE, "b" },
		{ "RONLY", "b", FALSE },
		/* The last matching entry's flags are the result's. */
		{ "FLAGCHAIN", "a1", TRUE, "c1", IMTA_MAP_FLAG_Y },
	};

	run_apply_cases(text, cases, G_N_ELEMENTS(cases));
}

static void
test_apply_nested(void)
{
	const char *text =
		"DOMAINS\n"
		"\n"
		"  sesta.com    internal\n"
		"  blocked.com  $N\n"
		"\n"
		"ROUTE\n"
		"\n"
		"  *@*  $|DOMAINS;$1|:$0\n"
		"  *    other\n"
		"\n"
		"DEEP\n"
		"\n"
		"  *    $|DEEP;$0|\n"
		"\n"
		"TWO\n"
		"\n"
		"  *  <$|ONE;$0|>\n"
		"\n"
		"ONE\n"
		"\n"
		"  *  [$|DOMAINS;$0|]\n"
		"  *  none\n"
		"\n"
		"MISSING\n"
		"\n"
		"  *  $|NOSUCH;$0|\n"
		"  *  fallback\n"
		"\n"
		"INNER\n"
		"\n"
		"  *  $|DOMAINS;$|STRIP;$0||!\n"
		"\n"
		"STRIP\n"
		"\n"
		"  mail.*  $0\n"
		"  *       $0\n";
	static const ApplyCase cases[] = {
		{ "ROUTE", "joe@sesta.com", TRUE, "internal:joe" },
		{ "ROUTE", "joe@SESTA.COM", TRUE, "internal:joe" },
		{ "ROUTE", "joe@else.org", TRUE, "other" },
		{ "ROUTE", "joe@blocked.com", TRUE, "other" },
		{ "DEEP", "x", FALSE },
		{ "TWO", "sesta.com", TRUE, "<[internal]>" },
		{ "TWO", "foo", TRUE, "<none>" },
		{ "MISSING", "x", TRUE, "fallback" },
		{ "INNER", "mail.sesta.com", TRUE, "internal!" },
		{ "INNER", "sesta.com", TRUE, "internal!" },
		{ "INNER", "mail.else.org", FALSE },
	};

	run_apply_cases(text, cases, G_N_ELEMENTS(cases));
}

static void
test_apply_flags(void)
{
	const char *text =
		"FLAGS\n"
		"\n"
		"  a  $N$D30|Relaying$ not$ allowed\n"
		"  b  30|Relaying$ not$ allowed$D$N\n"
		"  c  $K$J$D-50|new@x.org|snd@y.org|rest\n"
		"  d  $<$N$>matched|denied|Go$ away\n"
		"  e  $>bad$ guy$N\n"
		"  f  $Y\n"
		"  g  $n\n"
		"  h  $f\n"
		"  i  $FNo\n"
		"  j  $B$H\n"
		"  k  $V\n"
		"  l  $Z$!\n"
		"  m  a$Qb\n"
		"  n  $D\n"
		"  o  $Dsoon|x\n"
		"  p  $J$Ynew@x.org\n"
		"  q  $D16%64|x\n"
		"  r  $<seen$Y\n";
	static const ApplyCase cases[] = {
		{ "FLAGS", "a", TRUE, "Relaying not allowed", IMTA_MAP_FLAG_N | IMTA_MAP_FLAG_D,
		  30 },
		{ "FLAGS", "b", TRUE, "Relaying not allowed", IMTA_MAP_FLAG_N | IMTA_MAP_FLAG_D,
		  30 },
		{ "FLAGS", "c", TRUE, "rest", IMTA_MAP_FLAG_D | IMTA_MAP_FLAG_J | IMTA_MAP_FLAG_K,
		  -50, "new@x.org", "snd@y.org" },
		{ "FLAGS", "d", TRUE, "Go away",
		  IMTA_MAP_FLAG_N | IMTA_MAP_FLAG_LOG_MATCH | IMTA_MAP_FLAG_LOG_DENY, 0, NULL,
		  NULL, "matched", "denied" },
		{ "FLAGS", "e", TRUE, "", IMTA_MAP_FLAG_N | IMTA_MAP_FLAG_LOG_DENY, 0, NULL, NULL,
		  "bad guy", "bad guy" },
		{ "FLAGS", "f", TRUE, "", IMTA_MAP_FLAG_Y },
		{ "FLAGS", "g", TRUE, "", IMTA_MAP_FLAG_N },
		{ "FLAGS", "h", TRUE, "", IMTA_MAP_FLAG_N },
		{ "FLAGS", "i", TRUE, "No", IMTA_MAP_FLAG_N },
		{ "FLAGS", "j", TRUE, "", IMTA_MAP_FLAG_B | IMTA_MAP_FLAG_H },
		{ "FLAGS", "k", TRUE, "", IMTA_MAP_FLAG_V },
		{ "FLAGS", "l", TRUE, "", IMTA_MAP_FLAG_V | IMTA_MAP_FLAG_NO_VACATION },
		{ "FLAGS", "m", TRUE, "ab", 0 },
		{ "FLAGS", "n", TRUE, "", IMTA_MAP_FLAG_D, 0 },
		{ "FLAGS", "o", TRUE, "x", IMTA_MAP_FLAG_D, 0 },
		{ "FLAGS", "p", TRUE, "", IMTA_MAP_FLAG_J | IMTA_MAP_FLAG_Y, 0, "new@x.org" },
		{ "FLAGS", "q", TRUE, "x", IMTA_MAP_FLAG_D, 100 },
		{ "FLAGS", "r", TRUE, "", IMTA_MAP_FLAG_Y | IMTA_MAP_FLAG_LOG_MATCH, 0, NULL, NULL,
		  "seen" },
	};

	run_apply_cases(text, cases, G_N_ELEMENTS(cases));
}

/* The documented throttle idiom: the site routine is not supported, so the
 * entry fails and scanning goes on with the next entry. */
static void
test_apply_throttle_idiom(void)
{
	const char *text =
		"PORT_ACCESS\n"
		"\n"
		"  TCP|*|25|*|*  $C$[<msg-svr-base>/lib/conn_throttle.so,throttle,$1,10]"
		"$N421$ Connection$ not$ accepted$ at$ this$ time$E\n"
		"  TCP|*|*|$(192.0.2.0/24)|*  $NGo$ away\n"
		"  *  $Y\n";
	static const ApplyCase cases[] = {
		{ "PORT_ACCESS", "TCP|10.0.0.1|25|198.51.100.7|4321", TRUE, "", IMTA_MAP_FLAG_Y },
		{ "PORT_ACCESS", "TCP|10.0.0.1|25|192.0.2.7|4321", TRUE, "Go away",
		  IMTA_MAP_FLAG_N },
	};
	g_auto(GStrv) caps = imta_mapping_match_pattern("TCP|*|25|*|*",
							"TCP|10.0.0.1|25|198.51.100.7|4321");
	static const char *const want[] = { "10.0.0.1", "198.51.100.7", "4321", NULL };

	/* $1 of this pattern is the client address (wildcards count from 0). */
	g_assert_cmpstrv(caps, want);
	run_apply_cases(text, cases, G_N_ELEMENTS(cases));
}

static void
test_apply_relay_protection(void)
{
	const char *text =
		"INTERNAL_IP\n"
		"\n"
		"  $(192.168.10.0/24)  $Y\n"
		"  127.0.0.1           $Y\n"
		"  *                   $N\n"
		"\n"
		"PORT_ACCESS\n"
		"\n"
		"  *|*|*|*|*  $C$|INTERNAL_IP;$3|$Y$E\n"
		"  *          $YEXTERNAL\n"
		"\n"
		"ORIG_SEND_ACCESS\n"
		"\n"
		"  *|ok@sesta.com|*|*         $Y\n"
		"  *|*@sesta.com|*|*          $NMail$ Blocked\n"
		"  tcp_local|*|tcp_local|*    $NRelaying$ not$ permitted\n";
	static const ApplyCase cases[] = {
		{ "PORT_ACCESS", "TCP|192.168.10.1|25|192.168.10.77|5555", TRUE, "",
		  IMTA_MAP_FLAG_Y },
		{ "PORT_ACCESS", "TCP|192.168.10.1|25|127.0.0.1|5555", TRUE, "", IMTA_MAP_FLAG_Y },
		{ "PORT_ACCESS", "TCP|192.168.10.1|25|203.0.113.9|5555", TRUE, "EXTERNAL",
		  IMTA_MAP_FLAG_Y },
		{ "PORT_ACCESS", "TCP|192.168.10.1|25|192.168.100.1|5555", TRUE, "EXTERNAL",
		  IMTA_MAP_FLAG_Y },
		{ "INTERNAL_IP", "192.168.10.200", TRUE, "", IMTA_MAP_FLAG_Y },
		{ "INTERNAL_IP", "10.1.1.1", TRUE, "", IMTA_MAP_FLAG_N },
		{ "ORIG_SEND_ACCESS", "tcp_local|a@ext.com|tcp_local|b@else.org", TRUE,
		  "Relaying not permitted", IMTA_MAP_FLAG_N },
		{ "ORIG_SEND_ACCESS", "TCP_LOCAL|a@ext.com|tcp_local|b@else.org", TRUE,
		  "Relaying not permitted", IMTA_MAP_FLAG_N },
		{ "ORIG_SEND_ACCESS", "tcp_intranet|a@sesta.org|tcp_local|b@else.org", FALSE },
		{ "ORIG_SEND_ACCESS", "tcp_local|a@ext.com|ims-ms|joe@sesta.org", FALSE },
		{ "ORIG_SEND_ACCESS", "tcp_local|ok@sesta.com|tcp_local|b@else.org", TRUE, "",
		  IMTA_MAP_FLAG_Y },
		{ "ORIG_SEND_ACCESS", "tcp_local|bad@sesta.com|ims-ms|b@x", TRUE, "Mail Blocked",
		  IMTA_MAP_FLAG_N },
	};

	run_apply_cases(text, cases, G_N_ELEMENTS(cases));
}

static void
test_apply_conversions(void)
{
	const char *text =
		"CONVERSIONS\n"
		"\n"
		"  IN-CHAN=tcp_local;OUT-CHAN=*;CONVERT   Yes\n"
		"  IN-CHAN=*;OUT-CHAN=tcp_local;CONVERT   Yes\n"
		"  IN-CHAN=bitbucket;OUT-CHAN=*;CONVERT   No\n";
	static const ApplyCase cases[] = {
		{ "CONVERSIONS", "IN-CHAN=tcp_local;OUT-CHAN=ims-ms;CONVERT", TRUE, "Yes" },
		{ "CONVERSIONS", "IN-CHAN=l;OUT-CHAN=tcp_local;CONVERT", TRUE, "Yes" },
		{ "CONVERSIONS", "IN-CHAN=bitbucket;OUT-CHAN=ims-ms;CONVERT", TRUE, "No" },
		{ "CONVERSIONS", "IN-CHAN=l;OUT-CHAN=ims-ms;CONVERT", FALSE },
	};

	run_apply_cases(text, cases, G_N_ELEMENTS(cases));
}

static void
test_apply_unsupported(void)
{
	const char *text =
		"T\n"
		"\n"
		"  a*  $[lib.so,fn,$0]\n"
		"  a*  $#seq#$0\n"
		"  a*  $]ldap:///o=x[\n"
		"  a*  ${db,${x}}\n"
		"  a*  $|T;$[lib,f,x]|\n"
		"  a*  plain$0\n";
	static const ApplyCase cases[] = {
		{ "T", "abc", TRUE, "plainbc" },
	};

	run_apply_cases(text, cases, G_N_ELEMENTS(cases));
}

static void
test_apply_limits(void)
{
	const char *text = "T\n\n  *  <$0>\n\nDOUBLE\n\n  *  $0$0$0$0\n\n"
			   "RDOUBLE\n\n  *  $0$0$R\n";
	g_autoptr(GStringChunk) names = g_string_chunk_new(64);
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaMappings) m = parse(text, names, &error);
	g_autofree char *big = g_strnfill(16384, 'x');
	g_autofree char *huge = g_strnfill(16385, 'x');
	g_autofree char *quarter = g_strnfill(4096, 'x');
	g_autofree char *over = g_strnfill(4097, 'x');
	ImtaMappingResult r = { 0 };

	g_assert_no_error(error);
	g_assert_false(imta_mappings_apply_named(m, "T", huge, &r));
	g_assert_false(imta_mappings_apply_named(m, "T", big, &r));  /* output too long */
	g_assert_true(imta_mappings_apply_named(m, "DOUBLE", quarter, &r));
	g_assert_cmpuint(strlen(r.result), ==, 16384);
	imta_mapping_result_clear(&r);
	g_assert_false(imta_mappings_apply_named(m, "DOUBLE", over, &r));
	/* Doubling under $R stops where the output would grow too long; the
	 * last output that fitted is the result. */
	g_assert_true(imta_mappings_apply_named(m, "RDOUBLE", "x", &r));
	g_assert_cmpuint(strlen(r.result), ==, 16384);
	imta_mapping_result_clear(&r);
	g_assert_false(imta_mapping_apply(m, NULL, "x", 0, &r));
	g_assert_false(r.matched);
}

/* Long tables are scanned to the end: only matching entries count against
 * IMTA_MAPPING_MAX_STEPS. */
static void
test_apply_long_table(void)
{
	g_autoptr(GString) text = g_string_new("ORIG_SEND_ACCESS\n\n");
	g_autoptr(GStringChunk) names = g_string_chunk_new(64);
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaMappings) m = NULL;
	g_autofree char *padding = g_strnfill(900, 'p');
	g_autofree char *late = g_strdup_printf("tcp_local|%s@spam19999.example|l|x", padding);
	g_autofree char *clean = g_strdup_printf("tcp_local|%s@ok.example|l|x", padding);
	ImtaMappingResult r = { 0 };

	for (guint i = 0; i < 20000; i++)
		g_string_append_printf(text, "  *|*@spam%05u.example|*|*  $NBlocked$ %u\n", i, i);
	g_string_append(text, "  *|*|*|*  $Y\n");
	m = imta_mappings_parse_text("mappings", text->str, text->len, names, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(imta_mapping_table_size(imta_mappings_table(m, "ORIG_SEND_ACCESS")), ==,
			 20001);

	g_assert_true(imta_mappings_apply_named(m, "ORIG_SEND_ACCESS", late, &r));
	g_assert_cmpuint(r.flags, ==, IMTA_MAP_FLAG_N);
	g_assert_cmpstr(r.result, ==, "Blocked 19999");
	imta_mapping_result_clear(&r);
	g_assert_true(imta_mappings_apply_named(m, "ORIG_SEND_ACCESS", clean, &r));
	g_assert_cmpuint(r.flags, ==, IMTA_MAP_FLAG_Y);
	imta_mapping_result_clear(&r);
}

/* A table whose every entry recurses into itself must end (steps budget). */
static void
test_apply_recursion_bounded(void)
{
	const char *text =
		"A\n"
		"\n"
		"  *  $|A;$0|$|A;$0|\n"
		"  *  $|A;x$0|\n"
		"  *  $0$R\n";
	static const ApplyCase cases[] = {
		{ "A", "x", FALSE },
	};

	run_apply_cases(text, cases, G_N_ELEMENTS(cases));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mappings/parse/tables", test_parse_tables);
	g_test_add_func("/mappings/parse/empty", test_parse_empty);
	g_test_add_func("/mappings/parse/errors", test_parse_errors);
	g_test_add_func("/mappings/parse/limits", test_parse_limits);
	g_test_add_func("/mappings/parse/nul", test_parse_nul);
	g_test_add_func("/mappings/parse/continuation", test_parse_continuation);
	g_test_add_func("/mappings/parse/includes", test_parse_includes);
	g_test_add_func("/mappings/parse/include-depth", test_parse_include_depth);
	g_test_add_func("/mappings/parse/missing-file", test_parse_missing_file);
	g_test_add_func("/mappings/match/literal", test_match_literal);
	g_test_add_func("/mappings/match/wildcards", test_match_wildcards);
	g_test_add_func("/mappings/match/quotes", test_match_quotes);
	g_test_add_func("/mappings/match/backrefs", test_match_backrefs);
	g_test_add_func("/mappings/match/ip", test_match_ip);
	g_test_add_func("/mappings/match/invalid", test_match_invalid_pattern);
	g_test_add_func("/mappings/match/differential", test_match_differential);
	g_test_add_func("/mappings/match/pathological", test_match_pathological);
	g_test_add_func("/mappings/apply/substitution", test_apply_substitution);
	g_test_add_func("/mappings/apply/no-match", test_apply_no_match);
	g_test_add_func("/mappings/apply/controls", test_apply_controls);
	g_test_add_func("/mappings/apply/nested", test_apply_nested);
	g_test_add_func("/mappings/apply/flags", test_apply_flags);
	g_test_add_func("/mappings/apply/throttle-idiom", test_apply_throttle_idiom);
	g_test_add_func("/mappings/apply/relay-protection", test_apply_relay_protection);
	g_test_add_func("/mappings/apply/conversions", test_apply_conversions);
	g_test_add_func("/mappings/apply/unsupported", test_apply_unsupported);
	g_test_add_func("/mappings/apply/limits", test_apply_limits);
	g_test_add_func("/mappings/apply/long-table", test_apply_long_table);
	g_test_add_func("/mappings/apply/recursion", test_apply_recursion_bounded);
	return g_test_run();
}
