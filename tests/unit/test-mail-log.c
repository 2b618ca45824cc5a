/*
 * test-mail-log.c - the message log: the exact line of every entry code,
 * suffixes, the null path, ORCPT, blocks, escapes, cutting, the optional
 * fields, Message-ID extraction, and writing: channel selection, file
 * mode, rotation by rename, syslog mode, concurrent writers, a log that
 * cannot be opened.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/imta.h>
#include <imta/mail_log.h>

/* 18-Nov-2026 11:06:40.11 UTC */
#define NOW (G_GINT64_CONSTANT(1795000000) * G_USEC_PER_SEC + 110000)
#define DATE "18-Nov-2026 11:06:40.11"

static const char test_cnf[] =
	"bitbucket.example.com  $U%$D@bitbucket-daemon\n"
	"\n"
	"defaults logging\n"
	"\n"
	"l\n"
	"mail.example.com\n"
	"\n"
	"tcp_local smtp\n"
	"tcp-daemon\n"
	"\n"
	"bitbucket\n"
	"bitbucket-daemon\n"
	"\n"
	"quiet nologging\n"
	"quiet-daemon\n";

/* A configuration with `log_dir` (NULL: none) and these options. */
static ImtaConfig *
config_new(const char *log_dir, gint64 block_size, gboolean filename, gboolean message_id,
	   gint64 process, const char *mail_log)
{
	g_autoptr(GError) error = NULL;
	ImtaConfig *config = g_new0(ImtaConfig, 1);

	config->options = imta_option_dat_new_default();
	config->options->block_size = block_size;
	config->options->log_filename = filename;
	config->options->log_message_id = message_id;
	config->options->log_process = process;
	config->cnf = imta_cnf_parse_text("imta.cnf", test_cnf, strlen(test_cnf), NULL, &error);
	g_assert_no_error(error);
	config->tailor = g_new0(ImtaTailor, 1);
	config->tailor->log_dir = g_strdup(log_dir);
	config->tailor->mail_log = g_strdup(mail_log);
	return config;
}

static void
init_with(const char *log_dir, gint64 block_size, gboolean filename, gboolean message_id,
	  gint64 process, const char *mail_log)
{
	ImtaConfig *config = config_new(log_dir, block_size, filename, message_id, process,
					mail_log);

	imta_mail_log_init(config);
	/* The log keeps copies: the configuration may go at once. */
	imta_config_free(config);
}

static char *
format(const ImtaMailLogEntry *entry)
{
	return imta_mail_log_format(entry, NOW);
}

/* ---- codes --------------------------------------------------------------- */

static void
test_codes(void)
{
	static const struct {
		ImtaMailLogEntry entry;
		const char *line;
	} rows[] = {
		{ { IMTA_MAIL_LOG_ENQUEUED, 0, "tcp_local", "ims-ms", "0SJX2K5A1B3C9FQW", 3000,
		    "ann@example.org", "rfc822;bob@example.com", "bob@ims-ms-daemon", NULL },
		  DATE " tcp_local ims-ms E 3 ann@example.org rfc822;bob@example.com "
		  "bob@ims-ms-daemon 0SJX2K5A1B3C9FQW -" },
		{ { IMTA_MAIL_LOG_DELIVERED, 0, "tcp_local", "ims-ms", "0SJX2K5A1B3C9FQW", 3000,
		    "ann@example.org", "rfc822;bob@example.com", "bob@ims-ms-daemon",
		    "delivered to the store" },
		  DATE " tcp_local ims-ms D 3 ann@example.org rfc822;bob@example.com "
		  "bob@ims-ms-daemon 0SJX2K5A1B3C9FQW delivered to the store" },
		{ { IMTA_MAIL_LOG_DEFERRED, 0, "l", "tcp_local", "ABCDEFGHIJKLMNOP", 100,
		    "ann@example.com", NULL, "bob@example.net",
		    "remote mx.example.net said: 451 4.7.1 Greylisted" },
		  DATE " l tcp_local Q 1 ann@example.com rfc822;bob@example.net bob@example.net "
		  "ABCDEFGHIJKLMNOP remote mx.example.net said: 451 4.7.1 Greylisted" },
		{ { IMTA_MAIL_LOG_FAILED, 0, "l", "tcp_local", "ABCDEFGHIJKLMNOP", 2048,
		    "ann@example.com", NULL, "nobody@example.net", "550 5.1.1 unknown user" },
		  DATE " l tcp_local R 2 ann@example.com rfc822;nobody@example.net "
		  "nobody@example.net ABCDEFGHIJKLMNOP 550 5.1.1 unknown user" },
		{ { IMTA_MAIL_LOG_REFUSED, 0, "tcp_local", NULL, NULL, -1, "spam@bad.example",
		    NULL, "victim@example.com", "550 5.7.1 Relaying denied" },
		  DATE " tcp_local - J 0 spam@bad.example rfc822;victim@example.com "
		  "victim@example.com - 550 5.7.1 Relaying denied" },
		{ { IMTA_MAIL_LOG_REFUSED, 0, "tcp_local", NULL, NULL, -1,
		    "spammer@bad.example", NULL, NULL, "550 5.7.1 Sender blocked by policy" },
		  DATE " tcp_local - J 0 spammer@bad.example - - - "
		  "550 5.7.1 Sender blocked by policy" },
		{ { IMTA_MAIL_LOG_WARNED, 0, "l", "tcp_local", "ABCDEFGHIJKLMNOP", 10,
		    "ann@example.com", "rfc822;Bob@Example.NET", "bob@example.net",
		    "delay warning queued as 0000000000000001 to ann@example.com" },
		  DATE " l tcp_local W 1 ann@example.com rfc822;Bob@Example.NET bob@example.net "
		  "ABCDEFGHIJKLMNOP delay warning queued as 0000000000000001 to ann@example.com" },
		{ { IMTA_MAIL_LOG_NOT_NOTIFIED, 0, "l", "tcp_local", "ABCDEFGHIJKLMNOP", 10,
		    "ann@example.com", NULL, "bob@example.net",
		    "no failure notice: NOTIFY=NEVER" },
		  DATE " l tcp_local K 1 ann@example.com rfc822;bob@example.net bob@example.net "
		  "ABCDEFGHIJKLMNOP no failure notice: NOTIFY=NEVER" },
		{ { (ImtaMailLogCode)'x', 0, "l", "l", "ABCDEFGHIJKLMNOP", 10, "a@b", NULL, "c@d",
		    NULL },
		  DATE " l l ? 1 a@b rfc822;c@d c@d ABCDEFGHIJKLMNOP -" },
	};

	imta_mail_log_close();
	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *line = format(&rows[i].entry);

		g_test_message("row %zu", i);
		g_assert_cmpstr(line, ==, rows[i].line);
	}
}

static void
test_suffixes(void)
{
	static const struct {
		ImtaMailLogCode code;
		guint flags;
		const char *expected;
	} rows[] = {
		{ IMTA_MAIL_LOG_ENQUEUED, 0, " E " },
		{ IMTA_MAIL_LOG_ENQUEUED, IMTA_MAIL_LOG_TLS, " ES " },
		{ IMTA_MAIL_LOG_ENQUEUED, IMTA_MAIL_LOG_SASL, " EA " },
		{ IMTA_MAIL_LOG_ENQUEUED, IMTA_MAIL_LOG_TLS | IMTA_MAIL_LOG_SASL, " ESA " },
		{ IMTA_MAIL_LOG_DELIVERED, IMTA_MAIL_LOG_TLS, " DS " },
		{ IMTA_MAIL_LOG_REFUSED, IMTA_MAIL_LOG_TLS | IMTA_MAIL_LOG_SASL, " JSA " },
		{ IMTA_MAIL_LOG_REFUSED, 1 << 7, " J " },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		ImtaMailLogEntry entry = { rows[i].code, rows[i].flags, "tcp_auth", "l", "ID",
					   10, "a@b", NULL, "c@d", NULL };
		g_autofree char *line = format(&entry);
		g_autofree char *expected = g_strconcat(DATE " tcp_auth l", rows[i].expected,
							"1 a@b rfc822;c@d c@d ID -", NULL);

		g_test_message("row %zu", i);
		g_assert_cmpstr(line, ==, expected);
	}
}

static void
test_null_path(void)
{
	static const struct {
		const char *from;
		const char *expected;
	} rows[] = {
		{ "", " <> " },
		{ NULL, " - " },
		{ "ann@example.org", " ann@example.org " },
		{ "<>", " <> " },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		ImtaMailLogEntry entry = { IMTA_MAIL_LOG_ENQUEUED, 0, "l", "bitbucket", "ID", 1,
					   rows[i].from, NULL, "c@d", NULL };
		g_autofree char *line = format(&entry);
		g_autofree char *expected = g_strconcat(DATE " l bitbucket E 1", rows[i].expected,
							"rfc822;c@d c@d ID -", NULL);

		g_test_message("row %zu", i);
		g_assert_cmpstr(line, ==, expected);
	}
}

static void
test_orcpt(void)
{
	static const struct {
		const char *orcpt, *to;
		const char *expected;
	} rows[] = {
		{ "rfc822;Bob@Example.COM", "bob@ims-ms-daemon",
		  "rfc822;Bob@Example.COM bob@ims-ms-daemon" },
		{ NULL, "bob@ims-ms-daemon", "rfc822;bob@ims-ms-daemon bob@ims-ms-daemon" },
		{ "x400;/C=FR/", "bob@example.com", "x400;/C=FR/ bob@example.com" },
		{ NULL, NULL, "- -" },
		{ NULL, "", "- -" },
		{ "rfc822;a@b", NULL, "rfc822;a@b -" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		ImtaMailLogEntry entry = { IMTA_MAIL_LOG_DELIVERED, 0, "l", "ims-ms", "ID", 1,
					   "a@b", rows[i].orcpt, rows[i].to, "ok" };
		g_autofree char *line = format(&entry);
		g_autofree char *expected = g_strconcat(DATE " l ims-ms D 1 a@b ", rows[i].expected,
							" ID ok", NULL);

		g_test_message("row %zu", i);
		g_assert_cmpstr(line, ==, expected);
	}
}

static void
test_blocks(void)
{
	static const struct {
		gint64 size, block_size;
		const char *blocks;
	} rows[] = {
		{ 0, 1024, "1" },
		{ 1, 1024, "1" },
		{ 1024, 1024, "1" },
		{ 1025, 1024, "2" },
		{ 10 * 1024 * 1024, 1024, "10240" },
		{ -1, 1024, "0" },
		{ 5000, 512, "10" },
		{ 5120, 512, "10" },
		{ 5121, 512, "11" },
		{ 3, 1, "3" },
		{ 1, 1000000, "1" },
		{ 1500, 0, "2" },      /* BLOCK_SIZE unset: 1024 */
		{ G_MAXINT64, 1024, "9007199254740992" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		ImtaMailLogEntry entry = { IMTA_MAIL_LOG_ENQUEUED, 0, "l", "l", "ID",
					   rows[i].size, "a@b", NULL, "c@d", NULL };
		g_autofree char *line = NULL;
		g_autofree char *expected = g_strconcat(DATE " l l E ", rows[i].blocks,
							" a@b rfc822;c@d c@d ID -", NULL);

		init_with(NULL, rows[i].block_size, FALSE, FALSE, 0, NULL);
		line = format(&entry);
		g_test_message("row %zu", i);
		g_assert_cmpstr(line, ==, expected);
	}
	imta_mail_log_close();
}

/* ---- escapes and cutting --------------------------------------------------- */

static void
test_escapes(void)
{
	static const struct {
		const char *to, *diagnostic;
		const char *expected;   /* from the To field on */
	} rows[] = {
		{ "bob@example.com", "line one\nline two",
		  "bob@example.com ID line one\\x0aline two" },
		{ "\"bob smith\"@example.com", "a  b\tc",
		  "\"bob\\x20smith\"@example.com ID a  b\\x09c" },
		{ "bob@example.com\r\n", "\x1b[31mred\x7f",
		  "bob@example.com\\x0d\\x0a ID \\x1b[31mred\\x7f" },
		{ "back\\slash@example.com", "C:\\path",
		  "back\\\\slash@example.com ID C:\\\\path" },
		{ "-", "-", "\\x2d ID \\x2d" },
		{ "", "", "- ID -" },
		{ "j\xc3\xbcrgen@b\xc3\xbc" "cher.example", "r\xc3\xa9ponse",
		  "j\xc3\xbcrgen@b\xc3\xbc" "cher.example ID r\xc3\xa9ponse" },
		{ "x@y", " leading and trailing ", "x@y ID  leading and trailing " },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		ImtaMailLogEntry entry = { IMTA_MAIL_LOG_DELIVERED, 0, "l", "l", "ID", 1, "a@b",
					   "rfc822;x", rows[i].to, rows[i].diagnostic };
		g_autofree char *line = format(&entry);
		g_autofree char *expected = g_strconcat(DATE " l l D 1 a@b rfc822;x ",
							rows[i].expected, NULL);

		g_test_message("row %zu", i);
		g_assert_cmpstr(line, ==, expected);
		g_assert_null(strchr(line, '\n'));
	}
}

static void
test_escapes_channels(void)
{
	ImtaMailLogEntry entry = { IMTA_MAIL_LOG_ENQUEUED, 0, "a b", "c\nd", "I D", 1,
				   "x y@z", "rfc822;x y@z", "p\tq@r", NULL };
	g_autofree char *line = format(&entry);

	g_assert_cmpstr(line, ==, DATE " a\\x20b c\\x0ad E 1 x\\x20y@z rfc822;x\\x20y@z "
			"p\\x09q@r I\\x20D -");
}

/* Every line splits into the same fields on blanks. */
static guint
count_fields(const char *line, guint n_fixed)
{
	g_auto(GStrv) words = g_strsplit(line, " ", (gint)n_fixed + 1);

	return g_strv_length(words);
}

static void
test_cut(void)
{
	g_autoptr(GString) long_to = g_string_new(NULL);
	g_autoptr(GString) long_diag = g_string_new(NULL);
	g_autoptr(GString) controls = g_string_new(NULL);
	g_autoptr(GString) utf8 = g_string_new(NULL);
	g_autofree char *line = NULL;
	g_autofree char *expected_to = NULL;
	ImtaMailLogEntry entry = { IMTA_MAIL_LOG_DELIVERED, 0, "l", "l", "ID", 1, "a@b", "rfc822;x",
				   NULL, NULL };
	char **words;

	for (guint i = 0; i < 1000; i++)
		g_string_append_c(long_to, (char)('a' + i % 26));
	for (guint i = 0; i < 10000; i++)
		g_string_append_c(long_diag, i % 10 == 9 ? ' ' : (char)('0' + i % 10));
	for (guint i = 0; i < 300; i++)
		g_string_append_c(controls, '\001');
	for (guint i = 0; i < 400; i++)
		g_string_append(utf8, "\xc3\xa9"); /* é: two bytes */
	g_string_prepend_c(utf8, 'x');            /* so a character straddles the cut */

	/* An address field stops at 600 bytes, "..." included. */
	entry.to = long_to->str;
	entry.diagnostic = "ok";
	line = format(&entry);
	expected_to = g_strdup_printf(DATE " l l D 1 a@b rfc822;x %.597s... ID ok", long_to->str);
	g_assert_cmpstr(line, ==, expected_to);
	g_clear_pointer(&line, g_free);

	/* Escapes are never split: 149 of "\x01" (596 bytes), then "...". */
	entry.to = controls->str;
	line = format(&entry);
	words = g_strsplit(line, " ", -1);
	g_assert_cmpuint(strlen(words[8]), ==, 596 + 3);
	g_assert_true(g_str_has_suffix(words[8], "\\x01..."));
	g_assert_true(g_str_has_prefix(words[8], "\\x01\\x01"));
	g_strfreev(words);
	g_clear_pointer(&line, g_free);

	/* Neither is a UTF-8 character: 'x' + 298 of é = 597 bytes. */
	entry.to = utf8->str;
	line = format(&entry);
	words = g_strsplit(line, " ", -1);
	g_assert_cmpuint(strlen(words[8]), ==, 597 + 3);
	g_assert_true(g_utf8_validate(words[8], -1, NULL));
	g_assert_true(g_str_has_suffix(words[8], "\xc3\xa9..."));
	g_strfreev(words);
	g_clear_pointer(&line, g_free);

	/* The diagnostic takes what is left of the line. */
	entry.to = "c@d";
	entry.diagnostic = long_diag->str;
	line = format(&entry);
	g_assert_cmpuint(strlen(line), ==, IMTA_MAIL_LOG_MAX_LINE - 1);
	g_assert_true(g_str_has_suffix(line, "..."));
	g_assert_true(g_str_has_prefix(line, DATE " l l D 1 a@b rfc822;x c@d ID 012345678 "));
	g_clear_pointer(&line, g_free);

	/* Everything at once, with every optional field: still one line
	 * within the limit, with the same number of fields. */
	init_with(NULL, 1024, TRUE, TRUE, 1, NULL);
	entry.source = entry.destination = long_to->str;
	entry.from = entry.orcpt = entry.to = long_to->str;
	entry.queue_id = entry.filename = entry.message_id = long_to->str;
	entry.diagnostic = controls->str;
	line = format(&entry);
	g_assert_cmpuint(strlen(line), <=, IMTA_MAIL_LOG_MAX_LINE - 1);
	g_assert_cmpuint(count_fields(line, 13), ==, 14);
	g_assert_true(g_str_has_suffix(line, "\\x01..."));
	imta_mail_log_close();
}

/* ---- optional fields ------------------------------------------------------ */

static void
test_optional(void)
{
	g_autofree char *pid = g_strdup_printf("%ld", (long)getpid());
	const struct {
		gboolean filename, message_id;
		gint64 process;
		const char *expected; /* between the queue id and the diagnostic */
	} rows[] = {
		{ FALSE, FALSE, 0, " " },
		{ TRUE, FALSE, 0, " /q/ims-ms/003/ZZID.00 " },
		{ FALSE, TRUE, 0, " <1@example.org> " },
		{ FALSE, FALSE, 1, NULL },
		{ TRUE, TRUE, 0, " /q/ims-ms/003/ZZID.00 <1@example.org> " },
		{ TRUE, TRUE, 1, NULL },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		ImtaMailLogEntry entry = { IMTA_MAIL_LOG_DELIVERED, 0, "l", "ims-ms", "ID", 1,
					   "a@b", NULL, "c@d", "delivered", "<1@example.org>",
					   "/q/ims-ms/003/ZZID.00" };
		g_autofree char *line = NULL;
		g_autofree char *middle = NULL;
		g_autofree char *expected = NULL;

		init_with(NULL, 1024, rows[i].filename, rows[i].message_id, rows[i].process,
			  NULL);
		if (rows[i].expected != NULL)
			middle = g_strdup(rows[i].expected);
		else if (rows[i].filename)
			middle = g_strdup_printf(" /q/ims-ms/003/ZZID.00 <1@example.org> %s ", pid);
		else
			middle = g_strdup_printf(" %s ", pid);
		expected = g_strconcat(DATE " l ims-ms D 1 a@b rfc822;c@d c@d ID", middle,
				       "delivered", NULL);
		line = format(&entry);
		g_test_message("row %zu", i);
		g_assert_cmpstr(line, ==, expected);
	}
	/* Options on, values unknown: the fields stay, as "-". */
	{
		ImtaMailLogEntry entry = { IMTA_MAIL_LOG_REFUSED, 0, "tcp_local", NULL, NULL, -1,
					   "a@b", NULL, "c@d", "550 5.1.1 no" };
		g_autofree char *line = NULL;
		g_autofree char *expected = g_strdup_printf(DATE " tcp_local - J 0 a@b rfc822;c@d "
							    "c@d - - - %s 550 5.1.1 no", pid);

		init_with(NULL, 1024, TRUE, TRUE, 1, NULL);
		line = format(&entry);
		g_assert_cmpstr(line, ==, expected);
	}
	imta_mail_log_close();
}

/* ---- Message-ID ------------------------------------------------------------ */

static void
test_message_id(void)
{
	static const struct {
		const char *text;
		const char *expected;
	} rows[] = {
		{ "From: a@b\nMessage-ID: <1@example.org>\nSubject: x\n\nbody\n", "<1@example.org>" },
		{ "message-id:<2@example.org>\n\n", "<2@example.org>" },
		{ "MESSAGE-ID :  <3@example.org>  \n\n", "<3@example.org>" },
		{ "Message-ID:\n <4@example.org>\nX: y\n\n", "<4@example.org>" },
		{ "Message-ID: (comment)\n\t<5@example.org> (more)\n\n", "<5@example.org>" },
		{ "Message-ID: 6@example.org\r\n\r\n", "6@example.org" },
		{ "Subject: x\r\nMessage-ID: <7@example.org>\r\n\r\n", "<7@example.org>" },
		{ "Subject: x\n\nMessage-ID: <body@example.org>\n", NULL },
		{ "Message-IDs: <8@example.org>\n\n", NULL },
		{ "X-Message-ID: <9@example.org>\n\n", NULL },
		{ "Message-ID:\n\n", NULL },
		{ "Message-ID: <unterminated\n\n", "<unterminated" },
		{ "", NULL },
		{ "Message-ID: <10@example.org>", "<10@example.org>" },
		{ "\nMessage-ID: <11@example.org>\n", NULL },
		{ "Subject: x\nMessage-ID", NULL },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *id = imta_mail_log_find_message_id(rows[i].text,
								    strlen(rows[i].text));

		g_test_message("row %zu", i);
		g_assert_cmpstr(id, ==, rows[i].expected);
	}
}

static void
test_message_id_bounded(void)
{
	static const char text[] = "Message-ID: <12@example.org>\n\n";
	g_autofree char *id = NULL;

	/* Only `len` bytes are read: a cut field gives what was there. */
	id = imta_mail_log_find_message_id(text, 20);
	g_assert_cmpstr(id, ==, "<12@exam");
	g_clear_pointer(&id, g_free);
	id = imta_mail_log_find_message_id(text, 0);
	g_assert_null(id);
}

/* ---- writing ---------------------------------------------------------------- */

typedef struct {
	char *dir;
	char *path;
} Scratch;

static void
scratch_init(Scratch *s)
{
	g_autoptr(GError) error = NULL;

	s->dir = g_dir_make_tmp("test-mail-log-XXXXXX", &error);
	g_assert_no_error(error);
	s->path = g_build_filename(s->dir, "log", "mail.log_current", NULL);
}

static void
scratch_clear(Scratch *s)
{
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", s->dir);

	imta_mail_log_close();
	g_assert_cmpint(system(cmd), ==, 0);
	g_free(s->dir);
	g_free(s->path);
}

static char *
log_dir(const Scratch *s)
{
	return g_build_filename(s->dir, "log", NULL);
}

static char *
read_file(const char *path)
{
	char *text = NULL;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return NULL;
	return text;
}

static guint
count_lines(const char *text)
{
	guint n = 0;

	for (const char *p = text; p != NULL && *p != '\0'; p++)
		n += *p == '\n';
	return n;
}

static void
entry_to(ImtaMailLogCode code, const char *source, const char *destination, const char *to)
{
	ImtaMailLogEntry entry = { code, 0, source, destination, "0SJX2K5A1B3C9FQW", 100,
				   "a@example.org", NULL, to, NULL };

	imta_mail_log_entry(&entry);
}

static void
test_write_channels(void)
{
	Scratch s;
	g_autofree char *dir = NULL;
	g_autofree char *text = NULL;
	struct stat st;

	scratch_init(&s);
	dir = log_dir(&s);
	umask(022);
	/* Before init, entries are dropped. */
	imta_mail_log_close();
	entry_to(IMTA_MAIL_LOG_ENQUEUED, "l", "bitbucket", "dropped@example.com");
	init_with(dir, 1024, FALSE, FALSE, 0, "file");
	g_assert_true(imta_mail_log_enabled("l"));
	g_assert_true(imta_mail_log_enabled("bitbucket"));
	g_assert_false(imta_mail_log_enabled("quiet"));
	g_assert_false(imta_mail_log_enabled("nosuch"));
	g_assert_false(imta_mail_log_enabled(NULL));
	g_assert_false(imta_mail_log_wants_message_id());
	/* E and J follow the source channel, the others the destination. */
	entry_to(IMTA_MAIL_LOG_ENQUEUED, "l", "quiet", "e1@example.com");
	entry_to(IMTA_MAIL_LOG_ENQUEUED, "quiet", "l", "e2@example.com");
	entry_to(IMTA_MAIL_LOG_REFUSED, "quiet", NULL, "j1@example.com");
	entry_to(IMTA_MAIL_LOG_DELIVERED, "quiet", "bitbucket", "d1@example.com");
	entry_to(IMTA_MAIL_LOG_DELIVERED, "bitbucket", "quiet", "d2@example.com");
	entry_to(IMTA_MAIL_LOG_DEFERRED, "l", "quiet", "q1@example.com");
	entry_to(IMTA_MAIL_LOG_FAILED, "l", "quiet", "r1@example.com");
	entry_to(IMTA_MAIL_LOG_WARNED, "l", "quiet", "w1@example.com");
	entry_to(IMTA_MAIL_LOG_NOT_NOTIFIED, "l", "quiet", "k1@example.com");
	entry_to(IMTA_MAIL_LOG_NOT_NOTIFIED, "quiet", "l", "k2@example.com");
	text = read_file(s.path);
	g_assert_nonnull(text);
	g_assert_cmpuint(count_lines(text), ==, 3);
	g_assert_nonnull(strstr(text, " l quiet E 1 a@example.org rfc822;e1@example.com "
				"e1@example.com 0SJX2K5A1B3C9FQW -\n"));
	g_assert_nonnull(strstr(text, " quiet bitbucket D 1 "));
	g_assert_nonnull(strstr(text, " quiet l K 1 "));
	g_assert_null(strstr(text, "dropped"));
	/* Created 0640 (under umask 022), in a log directory made on demand. */
	g_assert_cmpint(g_stat(s.path, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 07777, ==, 0640);
	scratch_clear(&s);
}

static void
test_write_rotation(void)
{
	Scratch s;
	g_autofree char *dir = NULL;
	g_autofree char *old = NULL;
	g_autofree char *text = NULL;

	scratch_init(&s);
	dir = log_dir(&s);
	init_with(dir, 1024, FALSE, FALSE, 0, NULL);
	old = g_strconcat(s.path, ".old", NULL);
	entry_to(IMTA_MAIL_LOG_ENQUEUED, "l", "bitbucket", "first@example.com");
	/* Renamed as the return job or logrotate do: no signal needed. */
	g_assert_cmpint(g_rename(s.path, old), ==, 0);
	entry_to(IMTA_MAIL_LOG_ENQUEUED, "l", "bitbucket", "second@example.com");
	text = read_file(s.path);
	g_assert_nonnull(strstr(text, "second@"));
	g_assert_null(strstr(text, "first@"));
	g_clear_pointer(&text, g_free);
	text = read_file(old);
	g_assert_cmpuint(count_lines(text), ==, 1);
	g_assert_nonnull(strstr(text, "first@"));
	g_clear_pointer(&text, g_free);
	/* Removed, then an explicit reopen (SIGHUP). */
	g_assert_cmpint(g_unlink(s.path), ==, 0);
	imta_mail_log_reopen();
	entry_to(IMTA_MAIL_LOG_ENQUEUED, "l", "bitbucket", "third@example.com");
	imta_mail_log_reopen();
	entry_to(IMTA_MAIL_LOG_ENQUEUED, "l", "bitbucket", "fourth@example.com");
	text = read_file(s.path);
	g_assert_cmpuint(count_lines(text), ==, 2);
	g_assert_nonnull(strstr(text, "third@"));
	g_assert_nonnull(strstr(text, "fourth@"));
	scratch_clear(&s);
}

static void
test_write_syslog(void)
{
	Scratch s;
	g_autofree char *dir = NULL;

	scratch_init(&s);
	dir = log_dir(&s);
	init_with(dir, 1024, FALSE, FALSE, 0, "SysLog");
	g_assert_true(imta_mail_log_enabled("l"));
	entry_to(IMTA_MAIL_LOG_ENQUEUED, "l", "bitbucket", "to-syslog@example.com");
	g_assert_false(g_file_test(s.path, G_FILE_TEST_EXISTS));
	scratch_clear(&s);
}

#define WRITERS 8
#define PER_WRITER 500

static gpointer
writer_run(gpointer data)
{
	guint n = GPOINTER_TO_UINT(data);

	for (guint i = 0; i < PER_WRITER; i++) {
		g_autofree char *to = g_strdup_printf("w%u-%u@example.com", n, i);
		g_autofree char *diag = g_strnfill(100 + (i * 37) % 900, 'x');
		ImtaMailLogEntry entry = { IMTA_MAIL_LOG_DELIVERED, 0, "l", "bitbucket", "ID", i,
					   "a@b", NULL, to, diag };

		imta_mail_log_entry(&entry);
	}
	return NULL;
}

static void
test_write_threads(void)
{
	Scratch s;
	GThread *threads[WRITERS];
	g_autofree char *dir = NULL;
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	scratch_init(&s);
	dir = log_dir(&s);
	init_with(dir, 1024, FALSE, FALSE, 0, NULL);
	for (guint i = 0; i < WRITERS; i++)
		threads[i] = g_thread_new("writer", writer_run, GUINT_TO_POINTER(i));
	for (guint i = 0; i < WRITERS; i++)
		g_thread_join(threads[i]);
	text = read_file(s.path);
	lines = g_strsplit(text, "\n", -1);
	g_assert_cmpuint(g_strv_length(lines), ==, WRITERS * PER_WRITER + 1);
	for (guint i = 0; i < WRITERS * PER_WRITER; i++) {
		g_auto(GStrv) f = g_strsplit(lines[i], " ", 11);

		g_assert_cmpuint(g_strv_length(f), ==, 11);
		g_assert_cmpstr(f[2], ==, "l");
		g_assert_cmpstr(f[4], ==, "D");
		g_assert_true(g_str_has_prefix(f[8], "w"));
		g_assert_cmpstr(f[9], ==, "ID");
		g_assert_cmpuint(strspn(f[10], "x"), ==, strlen(f[10]));
		g_hash_table_add(seen, g_strdup(f[8]));
	}
	g_assert_cmpuint(g_hash_table_size(seen), ==, WRITERS * PER_WRITER);
	scratch_clear(&s);
}


/* How many times `needle` occurs in `text`. */
static guint
count_occurrences(const char *text, const char *needle)
{
	guint n = 0;
	gsize len = strlen(needle);

	for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + len, needle))
		n++;
	return n;
}
static void
test_write_unwritable(void)
{
	Scratch s;
	g_autofree char *dir = NULL;
	g_autofree char *process_log = NULL;
	g_autofree char *text = NULL;
	const char *hit;

	scratch_init(&s);
	/* The log "directory" is a file: nothing can be opened below it. */
	dir = log_dir(&s);
	g_assert_true(g_file_set_contents(dir, "", 0, NULL));
	process_log = g_build_filename(s.dir, "process.log", NULL);
	g_assert_true(imta_log_open("test-mail-log", process_log, NULL));
	init_with(dir, 1024, FALSE, FALSE, 0, NULL);
	for (guint i = 0; i < 5; i++)
		entry_to(IMTA_MAIL_LOG_ENQUEUED, "l", "bitbucket", "lost@example.com");
	imta_log_close();
	text = read_file(process_log);
	g_assert_nonnull(text);
	/* Reported once, not once per entry. */
	hit = strstr(text, "mail.log: cannot open ");
	g_assert_nonnull(hit);
	g_assert_cmpuint(count_occurrences(text, "mail.log: cannot open "), ==, 1);
	g_assert_nonnull(strstr(text, "/log/mail.log_current: Not a directory"));
	scratch_clear(&s);
}

int
main(int argc, char **argv)
{
	/* Dates are local time: pin the zone. */
	g_setenv("TZ", "UTC", TRUE);
	tzset();
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mail-log/format/codes", test_codes);
	g_test_add_func("/mail-log/format/suffixes", test_suffixes);
	g_test_add_func("/mail-log/format/null-path", test_null_path);
	g_test_add_func("/mail-log/format/orcpt", test_orcpt);
	g_test_add_func("/mail-log/format/blocks", test_blocks);
	g_test_add_func("/mail-log/format/escapes", test_escapes);
	g_test_add_func("/mail-log/format/escapes-every-field", test_escapes_channels);
	g_test_add_func("/mail-log/format/cut", test_cut);
	g_test_add_func("/mail-log/format/optional", test_optional);
	g_test_add_func("/mail-log/message-id/find", test_message_id);
	g_test_add_func("/mail-log/message-id/bounded", test_message_id_bounded);
	g_test_add_func("/mail-log/write/channels", test_write_channels);
	g_test_add_func("/mail-log/write/rotation", test_write_rotation);
	g_test_add_func("/mail-log/write/syslog", test_write_syslog);
	g_test_add_func("/mail-log/write/threads", test_write_threads);
	g_test_add_func("/mail-log/write/unwritable", test_write_unwritable);
	return g_test_run();
}
