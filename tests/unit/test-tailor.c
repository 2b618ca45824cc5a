/*
 * test-tailor.c - imta_tailor: built-in defaults, relative paths resolved
 * against the configuration directory, errors, and the choice of the
 * configuration directory (--config, $IMTA_CONFIG, the installed one).
 */
#include "config.h"

#include <string.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/tailor.h>

/* A scratch configuration directory "<tmp>/etc" holding `text` as
 * imta_tailor (no file when text is NULL). */
typedef struct {
	char *root;
	char *etc;
} Scratch;

static void
scratch_init(Scratch *s, const char *text)
{
	s->root = g_dir_make_tmp("test-tailor-XXXXXX", NULL);
	g_assert_nonnull(s->root);
	s->etc = g_build_filename(s->root, "etc", NULL);
	g_assert_cmpint(g_mkdir(s->etc, 0700), ==, 0);
	if (text != NULL) {
		g_autofree char *path = g_build_filename(s->etc, "imta_tailor", NULL);

		g_assert_true(g_file_set_contents(path, text, -1, NULL));
	}
}

static void
scratch_clear(Scratch *s)
{
	g_autofree char *path = g_build_filename(s->etc, "imta_tailor", NULL);

	if (g_file_test(path, G_FILE_TEST_IS_DIR))
		g_rmdir(path);
	else
		g_unlink(path);
	g_rmdir(s->etc);
	g_rmdir(s->root);
	g_free(s->etc);
	g_free(s->root);
}

static char *
under(const Scratch *s, const char *relative)
{
	return g_build_filename(s->root, relative, NULL);
}

static void
test_missing_file(void)
{
	Scratch s;
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaTailor) t = NULL;
	g_autofree char *directory = NULL;

	scratch_init(&s, NULL);
	t = imta_tailor_load(s.etc, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(t->config_dir, ==, s.etc);
	g_assert_cmpstr(t->queue_dir, ==, IMTA_LOCALSTATEDIR "/queue");
	g_assert_cmpstr(t->log_dir, ==, IMTA_LOCALSTATEDIR "/log");
	g_assert_cmpstr(t->store_dir, ==, IMTA_LOCALSTATEDIR "/store");
	g_assert_cmpstr(t->run_dir, ==, IMTA_RUNSTATEDIR);
	g_assert_cmpstr(t->plugin_dir, ==, IMTA_PLUGINSDIR);
	g_assert_cmpstr(t->table_dir, ==, s.etc);
	g_assert_null(t->user);
	g_assert_cmpstr(t->hostname, ==, g_get_host_name());
	directory = g_strconcat("ldif:", s.etc, "/directory.ldif", NULL);
	g_assert_cmpstr(t->directory, ==, directory);
	scratch_clear(&s);
}

typedef struct {
	const char *line;
	const char *expected;  /* "@/x" = <scratch root>/x; "=x" = literal */
} PathRow;

static void
test_relative_paths(void)
{
	static const PathRow rows[] = {
		{ "IMTA_QUEUE=../var/queue", "@/var/queue" },
		{ "IMTA_QUEUE=queue", "@/etc/queue" },
		{ "IMTA_QUEUE=./q/", "@/etc/q" },
		{ "IMTA_QUEUE=/srv/imta/queue", "=/srv/imta/queue" },
		{ "IMTA_QUEUE=/srv//imta/./queue/", "=/srv/imta/queue" },
		{ "IMTA_LOG=../var/log", "@/var/log" },
		{ "IMTA_STORE=../var/store", "@/var/store" },
		{ "IMTA_RUN=../var/run", "@/var/run" },
		{ "IMTA_PLUGIN_DIR=../var/plugins", "@/var/plugins" },
		{ "IMTA_TABLE=tables", "@/etc/tables" },
		{ "IMTA_TABLE=..", "@" },
		{ "IMTA_DIRECTORY=ldif:directory.ldif", "=ldif:@/etc/directory.ldif" },
		{ "IMTA_DIRECTORY=ldif:../data/users.ldif", "=ldif:@/data/users.ldif" },
		{ "IMTA_DIRECTORY=LDIF:/srv/users.ldif", "=ldif:/srv/users.ldif" },
		{ "IMTA_DIRECTORY=ldap://ldap.example.com/", "=ldap://ldap.example.com/" },
		{ "IMTA_DIRECTORY=ldap:", "=ldap:" },
		{ "IMTA_DIRECTORY=ldapi://%2Frun%2Fslapd%2Fldapi/o=example",
		  "=ldapi://%2Frun%2Fslapd%2Fldapi/o=example" },
		{ "IMTA_HOSTNAME=mail.example.com", "=mail.example.com" },
		{ "imta_hostname = MX1.Example.COM", "=MX1.Example.COM" },
		{ "IMTA_USER=mailsrv", "=mailsrv" },
		{ "IMTA_MAIL_LOG=syslog", "=syslog" },
		{ "IMTA_MAIL_LOG=File", "=File" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		Scratch s;
		g_autofree char *text = g_strdup_printf("! test\n%s\n", rows[i].line);
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaTailor) t = NULL;
		g_autoptr(GString) expected = g_string_new(NULL);
		g_autofree char *name = g_ascii_strup(rows[i].line, strcspn(rows[i].line, " ="));
		const char *actual = NULL;
		const char *spec = rows[i].expected;

		scratch_init(&s, text);
		t = imta_tailor_load(s.etc, NULL, &error);
		g_assert_no_error(error);
		if (*spec == '@') {
			g_string_append(expected, s.root);
			g_string_append(expected, spec + 1);
		} else {
			const char *at = strchr(spec + 1, '@');

			if (at != NULL) {
				g_string_append_len(expected, spec + 1, at - spec - 1);
				g_string_append(expected, s.root);
				g_string_append(expected, at + 1);
			} else {
				g_string_append(expected, spec + 1);
			}
		}
		if (strcmp(name, "IMTA_QUEUE") == 0)
			actual = t->queue_dir;
		else if (strcmp(name, "IMTA_LOG") == 0)
			actual = t->log_dir;
		else if (strcmp(name, "IMTA_STORE") == 0)
			actual = t->store_dir;
		else if (strcmp(name, "IMTA_RUN") == 0)
			actual = t->run_dir;
		else if (strcmp(name, "IMTA_PLUGIN_DIR") == 0)
			actual = t->plugin_dir;
		else if (strcmp(name, "IMTA_TABLE") == 0)
			actual = t->table_dir;
		else if (strcmp(name, "IMTA_DIRECTORY") == 0)
			actual = t->directory;
		else if (strcmp(name, "IMTA_HOSTNAME") == 0)
			actual = t->hostname;
		else if (strcmp(name, "IMTA_USER") == 0)
			actual = t->user;
		else if (strcmp(name, "IMTA_MAIL_LOG") == 0)
			actual = t->mail_log;
		g_test_message("row %zu: %s", i, rows[i].line);
		g_assert_cmpstr(actual, ==, expected->str);
		scratch_clear(&s);
	}
}

static void
test_relative_config_dir(void)
{
	Scratch s;
	g_autofree char *cwd = g_get_current_dir();
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaTailor) t = NULL;
	g_autofree char *queue = NULL;

	scratch_init(&s, "IMTA_QUEUE=../var/queue\n");
	g_assert_cmpint(g_chdir(s.root), ==, 0);
	t = imta_tailor_load("etc", NULL, &error);
	g_assert_cmpint(g_chdir(cwd), ==, 0);
	g_assert_no_error(error);
	/* The relative directory is made absolute against the working directory
	 * of the moment, so a later chdir() changes nothing. */
	g_assert_cmpstr(t->config_dir, ==, s.etc);
	queue = under(&s, "var/queue");
	g_assert_cmpstr(t->queue_dir, ==, queue);
	scratch_clear(&s);
}

typedef struct {
	const char *text;
	ImtaConfigErrorCode code;
	const char *message;  /* after "<config dir>/imta_tailor" */
} ErrorRow;

static void
test_errors(void)
{
	static const ErrorRow rows[] = {
		{ "IMTA_QUEU=/q\n", IMTA_CONFIG_ERROR_UNKNOWN,
		  ":1:1: unknown imta_tailor option \"IMTA_QUEU\" (did you mean IMTA_QUEUE?)" },
		{ "# fine\n  IMTA_RETURN_SPLIT_PERIOD=24\n", IMTA_CONFIG_ERROR_UNKNOWN,
		  ":2:3: unknown imta_tailor option \"IMTA_RETURN_SPLIT_PERIOD\"" },
		{ "[IMTA=1]\n", IMTA_CONFIG_ERROR_SYNTAX,
		  ":1:1: imta_tailor has no sections; expected NAME=value" },
		{ "IMTA_QUEUE\n", IMTA_CONFIG_ERROR_SYNTAX,
		  ":1:1: expected NAME=value, got \"IMTA_QUEUE\"" },
		{ "IMTA_HOSTNAME=mail example\n", IMTA_CONFIG_ERROR_SYNTAX,
		  ":1:15: expected a host name (letters, digits, '-', '_' and dots) for"
		  " IMTA_HOSTNAME, got \"mail example\"" },
		{ "IMTA_USER=root:root\n", IMTA_CONFIG_ERROR_SYNTAX,
		  ":1:11: expected an account name (letters, digits, '_', '-' and '.', at most 32)"
		  " for IMTA_USER, got \"root:root\"" },
		{ "IMTA_DIRECTORY=file:/x\n", IMTA_CONFIG_ERROR_SYNTAX,
		  ":1:16: expected ldif:FILE, ldap: or an ldap://host[:port]/BASE-DN URL for"
		  " IMTA_DIRECTORY, got \"file:/x\"" },
		{ "IMTA_DIRECTORY=ldif:\n", IMTA_CONFIG_ERROR_SYNTAX,
		  ":1:16: expected ldif:FILE, ldap: or an ldap://host[:port]/BASE-DN URL for"
		  " IMTA_DIRECTORY, got \"ldif:\"" },
		{ "IMTA_DIRECTORY=ldapx:\n", IMTA_CONFIG_ERROR_SYNTAX,
		  ":1:16: expected ldif:FILE, ldap: or an ldap://host[:port]/BASE-DN URL for"
		  " IMTA_DIRECTORY, got \"ldapx:\"" },
		{ "IMTA_MAIL_LOG=/var/log/mail.log\n", IMTA_CONFIG_ERROR_SYNTAX,
		  ":1:15: expected file or syslog for IMTA_MAIL_LOG, got \"/var/log/mail.log\"" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		Scratch s;
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaTailor) t = NULL;
		g_autofree char *expected = NULL;

		scratch_init(&s, rows[i].text);
		t = imta_tailor_load(s.etc, NULL, &error);
		expected = g_strconcat(s.etc, "/imta_tailor", rows[i].message, NULL);
		g_test_message("row %zu", i);
		g_assert_null(t);
		g_assert_error(error, IMTA_CONFIG_ERROR, (gint)rows[i].code);
		g_assert_cmpstr(error->message, ==, expected);
		scratch_clear(&s);
	}
}

static void
test_unreadable(void)
{
	Scratch s;
	g_autofree char *path = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaTailor) t = NULL;

	scratch_init(&s, NULL);
	path = g_build_filename(s.etc, "imta_tailor", NULL);
	g_assert_cmpint(g_mkdir(path, 0700), ==, 0);
	t = imta_tailor_load(s.etc, NULL, &error);
	g_assert_null(t);
	g_assert_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_IO);
	scratch_clear(&s);
}

static void
test_comments_and_names(void)
{
	Scratch s;
	g_autoptr(GStringChunk) names = g_string_chunk_new(64);
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaTailor) t = NULL;

	scratch_init(&s, "! bang\n# hash\n   ! indented\n\nimta_user=mail\nIMTA_USER = mta \n");
	t = imta_tailor_load(s.etc, names, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(t->user, ==, "mta");
	scratch_clear(&s);
}

typedef struct {
	const char *cli;
	const char *env;      /* NULL = unset */
	const char *chosen;
} ChooseRow;

static void
test_config_dir_choose(void)
{
	static const ChooseRow rows[] = {
		{ "/cli", "/env", "/cli" },
		{ "/cli", NULL, "/cli" },
		{ NULL, "/env", "/env" },
		{ "", "/env", "/env" },
		{ NULL, "", IMTA_SYSCONFDIR },
		{ NULL, NULL, IMTA_SYSCONFDIR },
		{ "relative/dir", "/env", "relative/dir" },
	};
	g_autofree char *saved = g_strdup(g_getenv("IMTA_CONFIG"));

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		if (rows[i].env != NULL)
			g_setenv("IMTA_CONFIG", rows[i].env, TRUE);
		else
			g_unsetenv("IMTA_CONFIG");
		g_test_message("row %zu", i);
		g_assert_cmpstr(imta_config_dir_choose(rows[i].cli), ==, rows[i].chosen);
	}
	if (saved != NULL)
		g_setenv("IMTA_CONFIG", saved, TRUE);
	else
		g_unsetenv("IMTA_CONFIG");
}

static void
test_dump(void)
{
	Scratch s;
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaTailor) t = NULL;
	g_autoptr(GString) out = g_string_new(NULL);
	g_autoptr(GString) expected = g_string_new(NULL);

	scratch_init(&s, "IMTA_QUEUE=../q\nIMTA_HOSTNAME=mx.example.org\nIMTA_USER=mail\n");
	t = imta_tailor_load(s.etc, NULL, &error);
	g_assert_no_error(error);
	imta_tailor_dump(t, out);
	g_string_printf(expected,
			"! imta_tailor: %s/etc/imta_tailor\n"
			"IMTA_QUEUE=%s/q\n"
			"IMTA_LOG=" IMTA_LOCALSTATEDIR "/log\n"
			"IMTA_STORE=" IMTA_LOCALSTATEDIR "/store\n"
			"IMTA_RUN=" IMTA_RUNSTATEDIR "\n"
			"IMTA_PLUGIN_DIR=" IMTA_PLUGINSDIR "\n"
			"IMTA_TABLE=%s/etc\n"
			"IMTA_USER=mail\n"
			"IMTA_HOSTNAME=mx.example.org\n"
			"IMTA_DIRECTORY=ldif:%s/etc/directory.ldif\n"
			"IMTA_MAIL_LOG=file\n"
			"IMTA_CONVERSION_FILE=%s/etc/conversions\n",
			s.root, s.root, s.root, s.root, s.root);
	g_assert_cmpstr(out->str, ==, expected->str);
	scratch_clear(&s);
}

static char *
source_file(const char *relative)
{
	const char *srcdir = g_getenv("G_TEST_SRCDIR");

	if (srcdir == NULL)
		return NULL;
	return g_build_filename(srcdir, "..", relative, NULL);
}

static void
test_shipped(void)
{
	g_autofree char *conf = source_file("conf");
	g_autofree char *top = source_file(".");
	g_autofree char *canonical_top = NULL;
	g_autofree char *queue = NULL;
	g_autofree char *plugins = NULL;
	g_autofree char *directory = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaTailor) t = NULL;

	if (conf == NULL || !g_file_test(conf, G_FILE_TEST_IS_DIR)) {
		g_test_skip("G_TEST_SRCDIR not set");
		return;
	}
	canonical_top = g_canonicalize_filename(top, NULL);
	t = imta_tailor_load(conf, NULL, &error);
	g_assert_no_error(error);
	queue = g_build_filename(canonical_top, "var", "queue", NULL);
	plugins = g_build_filename(canonical_top, "var", "install", "lib", "imta", "plugins", NULL);
	directory = g_strconcat("ldif:", canonical_top, "/conf/directory.ldif", NULL);
	g_assert_cmpstr(t->queue_dir, ==, queue);
	g_assert_cmpstr(t->plugin_dir, ==, plugins);
	g_assert_cmpstr(t->directory, ==, directory);
	g_assert_cmpstr(t->hostname, ==, "mail.example.com");
	g_assert_cmpstr(t->user, ==, "mail");
}

static void
test_man_page(void)
{
	g_autofree char *path = source_file("docs/man/imta_tailor.5");
	g_autofree char *text = NULL;

	if (path == NULL || !g_file_test(path, G_FILE_TEST_EXISTS)) {
		g_test_skip("G_TEST_SRCDIR not set");
		return;
	}
	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	for (gsize i = 0; i < imta_tailor_n_options; i++) {
		g_autofree char *entry = g_strdup_printf("\n.B %s\n", imta_tailor_options[i].name);

		g_test_message("%s", imta_tailor_options[i].name);
		g_assert_nonnull(strstr(text, entry));
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/tailor/missing-file", test_missing_file);
	g_test_add_func("/tailor/relative-paths", test_relative_paths);
	g_test_add_func("/tailor/relative-config-dir", test_relative_config_dir);
	g_test_add_func("/tailor/errors", test_errors);
	g_test_add_func("/tailor/unreadable", test_unreadable);
	g_test_add_func("/tailor/comments", test_comments_and_names);
	g_test_add_func("/tailor/config-dir-choose", test_config_dir_choose);
	g_test_add_func("/tailor/dump", test_dump);
	g_test_add_func("/tailor/shipped", test_shipped);
	g_test_add_func("/tailor/man-page", test_man_page);
	return g_test_run();
}
