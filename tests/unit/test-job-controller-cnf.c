/*
 * test-job-controller-cnf.c - job_controller.cnf: global options, pools,
 * channel sections and their '*' patterns, defaults and positioned errors.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/job_controller_cnf.h>

static ImtaJobControllerCnf *
parse(const char *text, GError **error)
{
	return imta_job_controller_cnf_parse_text("job_controller.cnf", text, strlen(text), NULL,
						  error);
}

static ImtaJobControllerCnf *
parse_ok(const char *text)
{
	g_autoptr(GError) error = NULL;
	ImtaJobControllerCnf *cnf = parse(text, &error);

	g_assert_no_error(error);
	g_assert_nonnull(cnf);
	return cnf;
}

/* Option `name` as it would be written, from whichever table has it. */
static char *
value_of(const ImtaJobControllerCnf *cnf, const void *pool, const void *channel,
	 const char *name)
{
	char *text = imta_option_value_text(imta_job_controller_options,
					    imta_job_controller_n_options, cnf, name);

	if (text == NULL)
		text = imta_option_value_text(imta_job_controller_pool_options,
					      imta_job_controller_n_pool_options, pool, name);
	if (text == NULL)
		text = imta_option_value_text(imta_job_controller_channel_options,
					      imta_job_controller_n_channel_options, channel, name);
	g_assert_nonnull(text);
	return text;
}

typedef struct {
	const char *name;
	const char *value;
} NameValue;

static void
test_defaults(void)
{
	static const NameValue rows[] = {
		{ "TCP_PORT", "0" }, { "SECRET", "" }, { "INTERFACE_ADDRESS", "ANY" },
		{ "DEBUG", "0" }, { "MAX_MESSAGES", "100000" },
		{ "REBUILD_PARALLEL_CHANNEL", "12" }, { "SYNCH_TIME", "3600" },
		{ "SOCKET", "job_controller.sock" }, { "JOB_LIMIT", "10" },
		{ "MASTER_COMMAND", "NULL" }, { "SLAVE_COMMAND", "NULL" },
		{ "MAX_LIFE_AGE", "3600" }, { "MAX_LIFE_CONNS", "1000" }, { "IDLE_LINGER", "60" },
	};
	g_autoptr(ImtaJobControllerCnf) cnf = parse_ok("! nothing but a comment\n");
	const ImtaJcPool *pool = imta_job_controller_cnf_default_pool(cnf);
	const ImtaJcChannelSection *section = imta_job_controller_cnf_channel(cnf, "tcp_local");

	g_assert_cmpuint(G_N_ELEMENTS(rows), ==,
			 imta_job_controller_n_options + imta_job_controller_n_pool_options +
			 imta_job_controller_n_channel_options);
	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *value = value_of(cnf, pool, section, rows[i].name);

		g_test_message("%s", rows[i].name);
		g_assert_cmpstr(value, ==, rows[i].value);
	}
	/* Without pools, an implicit DEFAULT pool. */
	g_assert_cmpuint(cnf->pools->len, ==, 1);
	g_assert_cmpstr(pool->name, ==, "DEFAULT");
	g_assert_cmpint(pool->job_limit, ==, 10);
	g_assert_true(section == &cnf->channel_defaults);
	g_assert_null(section->pattern);
	g_assert_null(section->slave_command);
	g_assert_cmpuint(cnf->warnings->len, ==, 1);
	g_assert_cmpstr(g_ptr_array_index(cnf->warnings, 0), ==,
			"job_controller.cnf: no [POOL=...] section: using pool DEFAULT with"
			" JOB_LIMIT=10");
}

typedef struct {
	const char *text;   /* a whole file: the values are read from pool P and channel C */
	const char *name;
	const char *value;
} ValueRow;

static void
test_values(void)
{
	static const ValueRow rows[] = {
		{ "TCP_PORT=27442\nSECRET=s3cret\n", "TCP_PORT", "27442" },
		{ "tcp_port=65535\nsecret=x\n", "TCP_PORT", "65535" },
		{ "SECRET=s3cret\n", "SECRET", "s3cret" },
		{ "INTERFACE_ADDRESS=localhost\n", "INTERFACE_ADDRESS", "LOCALHOST" },
		{ "INTERFACE_ADDRESS=All\n", "INTERFACE_ADDRESS", "ALL" },
		{ "INTERFACE_ADDRESS=192.0.2.7\n", "INTERFACE_ADDRESS", "192.0.2.7" },
		{ "INTERFACE_ADDRESS=::1\n", "INTERFACE_ADDRESS", "::1" },
		{ "DEBUG=-1\n", "DEBUG", "16%FFFFFFFF" },
		{ "DEBUG=8%777\n", "DEBUG", "16%1FF" },
		{ "MAX_MESSAGES=100\n", "MAX_MESSAGES", "100" },
		{ "MAX_MESSAGES=10000000\n", "MAX_MESSAGES", "10000000" },
		{ "MAX_MESSAGES=16%100000\n", "MAX_MESSAGES", "1048576" },
		{ "REBUILD_PARALLEL_CHANNEL=1\n", "REBUILD_PARALLEL_CHANNEL", "1" },
		{ "Rebuild_Parallel_Channel=100\n", "REBUILD_PARALLEL_CHANNEL", "100" },
		{ "SYNCH_TIME=PT30M\n", "SYNCH_TIME", "1800" },
		{ "SYNCH_TIME=0\n", "SYNCH_TIME", "0" },
		{ "SOCKET=/var/run/imta/jc.sock\n", "SOCKET", "/var/run/imta/jc.sock" },
		{ "[POOL=P]\nJOB_LIMIT=1\n", "JOB_LIMIT", "1" },
		{ "[POOL=P]\nJOB_LIMIT=100000\n", "JOB_LIMIT", "100000" },
		{ "JOB_LIMIT=3\n[POOL=P]\n", "JOB_LIMIT", "3" },
		{ "JOB_LIMIT=3\n[POOL=P]\nJOB_LIMIT=4\n", "JOB_LIMIT", "4" },
		{ "[CHANNEL=C]\nMASTER_COMMAND=/opt/imta/lib/l_master\n", "MASTER_COMMAND",
		  "/opt/imta/lib/l_master" },
		{ "[CHANNEL=C]\nMASTER_COMMAND=null\n", "MASTER_COMMAND", "NULL" },
		{ "[CHANNEL=C]\nSLAVE_COMMAND=/opt/imta/lib/poll\n", "SLAVE_COMMAND",
		  "/opt/imta/lib/poll" },
		{ "SLAVE_COMMAND=/x\n[CHANNEL=C]\nSLAVE_COMMAND=NULL\n", "SLAVE_COMMAND", "NULL" },
		{ "[CHANNEL=C]\nMAX_LIFE_AGE=0\n", "MAX_LIFE_AGE", "0" },
		{ "MAX_LIFE_AGE=P1D\n[CHANNEL=C]\n", "MAX_LIFE_AGE", "86400" },
		{ "[CHANNEL=C]\nMAX_LIFE_CONNS=1\n", "MAX_LIFE_CONNS", "1" },
		{ "[CHANNEL=C]\nIDLE_LINGER=3600\n", "IDLE_LINGER", "3600" },
		{ "IDLE_LINGER=0\n[CHANNEL=C]\n", "IDLE_LINGER", "0" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *text = g_strdup_printf("%s[POOL=ZZ]\n[CHANNEL=ZZ]\n", rows[i].text);
		g_autoptr(ImtaJobControllerCnf) cnf = parse_ok(text);
		const ImtaJcPool *pool = imta_job_controller_cnf_pool(cnf, "P");
		const ImtaJcChannelSection *section = imta_job_controller_cnf_channel(cnf, "C");
		g_autofree char *value = NULL;

		if (pool == NULL)
			pool = imta_job_controller_cnf_pool(cnf, "ZZ");
		if (section == &cnf->channel_defaults)
			section = imta_job_controller_cnf_channel(cnf, "ZZ");
		value = value_of(cnf, pool, section, rows[i].name);
		g_test_message("row %zu", i);
		g_assert_cmpstr(value, ==, rows[i].value);
	}
}

typedef struct {
	const char *text;
	ImtaConfigErrorCode code;
	const char *message;
} ErrorRow;

static void
test_errors(void)
{
	static const ErrorRow rows[] = {
		{ "MAX_MESSAGES=99\n", IMTA_CONFIG_ERROR_RANGE,
		  "job_controller.cnf:1:14: expected an integer between 100 and 10000000 for"
		  " MAX_MESSAGES, got \"99\"" },
		{ "MAX_MESSAGES=10000001\n", IMTA_CONFIG_ERROR_RANGE,
		  "job_controller.cnf:1:14: expected an integer between 100 and 10000000 for"
		  " MAX_MESSAGES, got \"10000001\"" },
		{ "REBUILD_PARALLEL_CHANNEL=0\n", IMTA_CONFIG_ERROR_RANGE,
		  "job_controller.cnf:1:26: expected an integer between 1 and 100 for"
		  " REBUILD_PARALLEL_CHANNEL, got \"0\"" },
		{ "REBUILD_PARALLEL_CHANNEL=101\n", IMTA_CONFIG_ERROR_RANGE,
		  "job_controller.cnf:1:26: expected an integer between 1 and 100 for"
		  " REBUILD_PARALLEL_CHANNEL, got \"101\"" },
		{ "TCP_PORT=65536\n", IMTA_CONFIG_ERROR_RANGE,
		  "job_controller.cnf:1:10: expected an integer between 0 and 65535 for TCP_PORT,"
		  " got \"65536\"" },
		{ "[POOL=A]\nJOB_LIMIT=0\n", IMTA_CONFIG_ERROR_RANGE,
		  "job_controller.cnf:2:11: expected an integer between 1 and 100000 for"
		  " JOB_LIMIT, got \"0\"" },
		{ "[CHANNEL=tcp_*]\nIDLE_LINGER=3601\n", IMTA_CONFIG_ERROR_RANGE,
		  "job_controller.cnf:2:13: expected a number of seconds or an ISO 8601 duration"
		  " (such as PT30M) between 0 and 3600 for IDLE_LINGER, got \"3601\"" },
		{ "INTERFACE_ADDRESS=somewhere\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "job_controller.cnf:1:19: expected ANY, ALL, LOCALHOST or an IP address for"
		  " INTERFACE_ADDRESS, got \"somewhere\"" },
		{ "[POOL=ABCDEFGHIJKLM]\n", IMTA_CONFIG_ERROR_RANGE,
		  "job_controller.cnf:1:7: pool name \"ABCDEFGHIJKLM\" is longer than 12 bytes" },
		{ "[POOL=SMTP POOL]\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "job_controller.cnf:1:7: expected a pool name (letters, digits, '_', '-' and"
		  " '.'), got \"SMTP POOL\"" },
		{ "[CHANNEL=tcp_?]\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "job_controller.cnf:1:10: expected a channel name or pattern (letters, digits,"
		  " '_', '-', '.' and '*', at most 64), got \"tcp_?\"" },
		{ "MAX_MESSAGE=5\n", IMTA_CONFIG_ERROR_UNKNOWN,
		  "job_controller.cnf:1:1: unknown job_controller.cnf option \"MAX_MESSAGE\""
		  " (did you mean MAX_MESSAGES?)" },
		{ "[POOL=A]\n  JOB_LIMT=5\n", IMTA_CONFIG_ERROR_UNKNOWN,
		  "job_controller.cnf:2:3: unknown job_controller.cnf option \"JOB_LIMT\""
		  " (did you mean JOB_LIMIT?)" },
		{ "PERIODIC=1\n", IMTA_CONFIG_ERROR_UNKNOWN,
		  "job_controller.cnf:1:1: unknown job_controller.cnf option \"PERIODIC\"" },
		{ "[QUEUE=A]\n", IMTA_CONFIG_ERROR_UNKNOWN,
		  "job_controller.cnf:1:2: unknown section type \"QUEUE\" (expected [POOL=name] or"
		  " [CHANNEL=name])" },
		{ "[CHANNEL=l]\nJOB_LIMIT=1\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "job_controller.cnf:2:1: JOB_LIMIT is not allowed in a [CHANNEL=...] section"
		  " (it belongs in a [POOL=...] section or before the first section)" },
		{ "[POOL=A]\nMASTER_COMMAND=/bin/true\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "job_controller.cnf:2:1: MASTER_COMMAND is not allowed in a [POOL=...] section"
		  " (it belongs in a [CHANNEL=...] section or before the first section)" },
		{ "[POOL=A]\nTCP_PORT=27442\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "job_controller.cnf:2:1: TCP_PORT is not allowed in a [POOL=...] section"
		  " (it belongs before the first section)" },
		{ "[POOL=A]\n[POOL=B]\n[pool=a]\n", IMTA_CONFIG_ERROR_DUPLICATE,
		  "job_controller.cnf:3:1: pool a is defined twice (first at"
		  " job_controller.cnf:1:1)" },
		{ "[CHANNEL=tcp_*]\n\n  [CHANNEL=TCP_*]\n", IMTA_CONFIG_ERROR_DUPLICATE,
		  "job_controller.cnf:3:3: channel section TCP_* is defined twice (first at"
		  " job_controller.cnf:1:1)" },
		{ "DEBUG=1\nTCP_PORT=27442\n[POOL=A]\n", IMTA_CONFIG_ERROR_MISSING,
		  "job_controller.cnf:2:1: TCP_PORT is set but SECRET is not: the TCP listener"
		  " needs a shared secret" },
		{ "[POOL=]\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "job_controller.cnf:1:7: expected a name after '=' in section [POOL=...]" },
		{ "JOB_LIMIT\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "job_controller.cnf:1:1: expected NAME=value, got \"JOB_LIMIT\"" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaJobControllerCnf) cnf = parse(rows[i].text, &error);
		g_autofree char *shown = g_strescape(rows[i].text, NULL);

		g_test_message("row %zu: %s", i, shown);
		g_assert_null(cnf);
		g_assert_error(error, IMTA_CONFIG_ERROR, (gint)rows[i].code);
		g_assert_cmpstr(error->message, ==, rows[i].message);
	}
}

static void
test_pool_names(void)
{
	g_autoptr(ImtaJobControllerCnf) cnf = parse_ok(
		"JOB_LIMIT=7\n"
		"[POOL=SMTP_POOL]\n"
		"JOB_LIMIT=1\n"
		"[POOL=ABCDEFGHIJKL]\n"
		"[POOL=DEFAULT]\n"
		"job_limit=10\n");
	const ImtaJcPool *first = imta_job_controller_cnf_default_pool(cnf);

	/* The first pool of the file is the default, whatever its name. */
	g_assert_cmpstr(first->name, ==, "SMTP_POOL");
	g_assert_cmpint(first->job_limit, ==, 1);
	g_assert_cmpuint(first->pos.line, ==, 2);
	g_assert_true(imta_job_controller_cnf_pool(cnf, "smtp_pool") == first);
	g_assert_cmpint(imta_job_controller_cnf_pool(cnf, "ABCDEFGHIJKL")->job_limit, ==, 7);
	g_assert_cmpint(imta_job_controller_cnf_pool(cnf, "default")->job_limit, ==, 10);
	g_assert_null(imta_job_controller_cnf_pool(cnf, "IMS_POOL"));
	g_assert_cmpuint(cnf->warnings->len, ==, 0);
}

typedef struct {
	const char *pattern;
	const char *channel;
	gboolean match;
} PatternRow;

static void
test_pattern_match(void)
{
	static const PatternRow rows[] = {
		{ "tcp_*", "tcp_local", TRUE }, { "tcp_*", "tcp_", TRUE },
		{ "tcp_*", "tcp", FALSE }, { "tcp_*", "TCP_LOCAL", TRUE },
		{ "TCP_*", "tcp_local", TRUE }, { "*", "", TRUE }, { "*", "l", TRUE },
		{ "*_out", "tcp_out", TRUE }, { "*_out", "tcp_outx", FALSE },
		{ "tcp_*_out", "tcp_a_out", TRUE }, { "tcp_*_out", "tcp__out", TRUE },
		{ "tcp_*_out", "tcp_out", FALSE }, { "a*b*c", "aXbYc", TRUE },
		{ "a*b*c", "abcabc", TRUE }, { "a*b*c", "acb", FALSE },
		{ "**", "x", TRUE }, { "l", "l", TRUE }, { "l", "ll", FALSE },
		{ "ims-ms", "ims-ms", TRUE }, { "ims-ms", "ims-mx", FALSE },
		{ "*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", FALSE },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_test_message("%s ~ %s", rows[i].pattern, rows[i].channel);
		g_assert_cmpint(imta_job_controller_pattern_match(rows[i].pattern, rows[i].channel),
				==, rows[i].match);
	}
}

typedef struct {
	const char *channel;
	const char *section;  /* NULL = the global defaults */
} LookupRow;

static void
test_channel_lookup(void)
{
	static const LookupRow rows[] = {
		{ "tcp_local", "tcp_*" }, { "tcp_intranet", "tcp_intranet" },
		{ "TCP_INTRANET", "tcp_intranet" }, { "tcp_internal", "tcp_int*" },
		{ "tcp_intranetx", "tcp_int*" }, { "tcp_a_out", "tcp_*_out" },
		{ "l", "l" }, { "ims-ms", "ims-ms" }, { "ims-msx", "*" },
		{ "bitbucket", "*" }, { "tcp", "*" }, { "x_out", "*_out" },
	};
	g_autoptr(ImtaJobControllerCnf) cnf = parse_ok(
		"[CHANNEL=*]\n"
		"[CHANNEL=tcp_*]\n"
		"[CHANNEL=tcp_int*]\n"
		"[CHANNEL=*_out]\n"
		"[CHANNEL=tcp_*_out]\n"
		"[CHANNEL=tcp_intranet]\n"
		"[CHANNEL=l]\n"
		"[CHANNEL=ims-ms]\n");
	g_autoptr(ImtaJobControllerCnf) none = parse_ok("[CHANNEL=tcp_*]\n[CHANNEL=l]\n");

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		const ImtaJcChannelSection *s = imta_job_controller_cnf_channel(cnf, rows[i].channel);

		g_test_message("%s", rows[i].channel);
		g_assert_cmpstr(s->pattern, ==, rows[i].section);
	}
	/* Without a catch-all, unmatched channels get the global defaults. */
	g_assert_true(imta_job_controller_cnf_channel(none, "bitbucket") == &none->channel_defaults);
	g_assert_cmpstr(imta_job_controller_cnf_channel(none, "tcp_x")->pattern, ==, "tcp_*");
}

static void
test_channel_tie(void)
{
	/* Equally specific patterns: the first in the file wins. */
	g_autoptr(ImtaJobControllerCnf) cnf = parse_ok(
		"[CHANNEL=tcp_*]\nMAX_LIFE_CONNS=1\n"
		"[CHANNEL=*ocal]\nMAX_LIFE_CONNS=2\n");

	g_assert_cmpstr(imta_job_controller_cnf_channel(cnf, "tcp_local")->pattern, ==, "tcp_*");
	g_assert_cmpint(imta_job_controller_cnf_channel(cnf, "x_local")->max_life_conns, ==, 2);
}

static void
test_documented_example(void)
{
	g_autoptr(ImtaJobControllerCnf) cnf = parse_ok(
		"tcp_port=27442\n"
		"secret=verysecret\n"
		"slave_command=NULL\n"
		"max_life_age=3600\n"
		"[POOL=DEFAULT]\n"
		"job_limit=10\n"
		"[POOL=SMTP_POOL]\n"
		"job_limit=1\n"
		"[POOL=LOCAL_POOL]\n"
		"job_limit=10\n"
		"[POOL=IMS_POOL]\n"
		"job_limit=1\n"
		"[CHANNEL=l]\n"
		"master_command=/opt/imta/lib/l_master\n"
		"[CHANNEL=ims-ms]\n"
		"master_command=/opt/imta/lib/ims_master\n"
		"[CHANNEL=tcp_*]\n"
		"master_command=/opt/imta/lib/tcp_smtp_client\n");
	const ImtaJcChannelSection *tcp = imta_job_controller_cnf_channel(cnf, "tcp_intranet");

	g_assert_cmpint(cnf->tcp_port, ==, 27442);
	g_assert_cmpstr(cnf->secret, ==, "verysecret");
	g_assert_cmpuint(cnf->pools->len, ==, 4);
	g_assert_cmpstr(imta_job_controller_cnf_default_pool(cnf)->name, ==, "DEFAULT");
	g_assert_cmpint(imta_job_controller_cnf_pool(cnf, "SMTP_POOL")->job_limit, ==, 1);
	g_assert_cmpint(imta_job_controller_cnf_pool(cnf, "IMS_POOL")->job_limit, ==, 1);
	g_assert_cmpstr(imta_job_controller_cnf_channel(cnf, "l")->master_command, ==,
			"/opt/imta/lib/l_master");
	g_assert_cmpstr(imta_job_controller_cnf_channel(cnf, "ims-ms")->master_command, ==,
			"/opt/imta/lib/ims_master");
	g_assert_cmpstr(tcp->master_command, ==, "/opt/imta/lib/tcp_smtp_client");
	g_assert_null(tcp->slave_command);
	g_assert_cmpint(tcp->max_life_age, ==, 3600);
	g_assert_cmpuint(cnf->warnings->len, ==, 0);
}

static void
test_inheritance(void)
{
	g_autoptr(ImtaJobControllerCnf) cnf = parse_ok(
		"MAX_LIFE_AGE=100\n"
		"MASTER_COMMAND=/bin/default_master\n"
		"JOB_LIMIT=4\n"
		"[POOL=A]\n"
		"[POOL=B]\n"
		"JOB_LIMIT=2\n"
		"[CHANNEL=l]\n"
		"[CHANNEL=tcp_*]\n"
		"MAX_LIFE_AGE=200\n"
		"MASTER_COMMAND=NULL\n");
	const ImtaJcChannelSection *l = imta_job_controller_cnf_channel(cnf, "l");
	const ImtaJcChannelSection *tcp = imta_job_controller_cnf_channel(cnf, "tcp_local");
	const ImtaJcChannelSection *other = imta_job_controller_cnf_channel(cnf, "bitbucket");

	g_assert_cmpint(imta_job_controller_cnf_pool(cnf, "A")->job_limit, ==, 4);
	g_assert_cmpint(imta_job_controller_cnf_pool(cnf, "B")->job_limit, ==, 2);
	g_assert_cmpint(l->max_life_age, ==, 100);
	g_assert_cmpstr(l->master_command, ==, "/bin/default_master");
	g_assert_cmpint(tcp->max_life_age, ==, 200);
	g_assert_null(tcp->master_command);
	g_assert_cmpint(other->max_life_age, ==, 100);
	g_assert_cmpint(cnf->pool_defaults.job_limit, ==, 4);
}

static void
test_periodic_job(void)
{
	g_autoptr(ImtaJobControllerCnf) cnf = parse_ok(
		"[POOL=DEFAULT]\n"
		"[PERIODIC_JOB=return_job]\n"
		"COMMAND=/opt/imta/lib/return.sh\n"
		"TIME=00:30\n"
		"[CHANNEL=l]\n"
		"MAX_LIFE_CONNS=5\n");

	g_assert_cmpuint(cnf->pools->len, ==, 1);
	g_assert_cmpuint(cnf->channels->len, ==, 1);
	g_assert_cmpint(imta_job_controller_cnf_channel(cnf, "l")->max_life_conns, ==, 5);
	g_assert_cmpuint(cnf->warnings->len, ==, 1);
	g_assert_cmpstr(g_ptr_array_index(cnf->warnings, 0), ==,
			"job_controller.cnf:2:1: [PERIODIC_JOB=...] sections are deprecated and"
			" ignored");
}

static void
test_warnings(void)
{
	g_autoptr(ImtaJobControllerCnf) cnf = parse_ok(
		"MAX_MESSAGES=1000\n"
		"max_messages=2000\n"
		"[POOL=A]\n"
		"JOB_LIMIT=1\n"
		"[POOL=B]\n"
		"JOB_LIMIT=1\n"
		"JOB_LIMIT=3\n");

	g_assert_cmpint(cnf->max_messages, ==, 2000);
	g_assert_cmpint(imta_job_controller_cnf_pool(cnf, "B")->job_limit, ==, 3);
	g_assert_cmpuint(cnf->warnings->len, ==, 2);
	g_assert_cmpstr(g_ptr_array_index(cnf->warnings, 0), ==,
			"job_controller.cnf:2:1: MAX_MESSAGES is set again in this section; the"
			" later value wins");
	g_assert_cmpstr(g_ptr_array_index(cnf->warnings, 1), ==,
			"job_controller.cnf:7:1: JOB_LIMIT is set again in this section; the later"
			" value wins");
}

static void
test_builtin(void)
{
	g_autoptr(ImtaJobControllerCnf) cnf = imta_job_controller_cnf_new_default();

	g_assert_null(cnf->path);
	g_assert_cmpuint(cnf->pools->len, ==, 1);
	g_assert_cmpstr(imta_job_controller_cnf_default_pool(cnf)->name, ==, "DEFAULT");
	g_assert_cmpint(imta_job_controller_cnf_default_pool(cnf)->job_limit, ==, 10);
	g_assert_cmpuint(cnf->channels->len, ==, 0);
	g_assert_cmpuint(cnf->warnings->len, ==, 0);
	g_assert_cmpstr(cnf->socket, ==, "job_controller.sock");
}

static void
test_dump(void)
{
	g_autoptr(ImtaJobControllerCnf) cnf = parse_ok(
		"TCP_PORT=27442\nSECRET=hush\nMAX_LIFE_AGE=120\n"
		"[POOL=DEFAULT]\nJOB_LIMIT=3\n[CHANNEL=tcp_*]\nMASTER_COMMAND=/bin/m\n");
	g_autoptr(GString) out = g_string_new(NULL);

	imta_job_controller_cnf_dump(cnf, out);
	g_assert_cmpstr(out->str, ==,
			"! job_controller.cnf: job_controller.cnf\n"
			"TCP_PORT=27442\n"
			"! SECRET is set (not shown)\n"
			"INTERFACE_ADDRESS=ANY\n"
			"DEBUG=0\n"
			"MAX_MESSAGES=100000\n"
			"REBUILD_PARALLEL_CHANNEL=12\n"
			"SYNCH_TIME=3600\n"
			"SOCKET=job_controller.sock\n"
			"JOB_LIMIT=10\n"
			"MASTER_COMMAND=NULL\n"
			"SLAVE_COMMAND=NULL\n"
			"MAX_LIFE_AGE=120\n"
			"MAX_LIFE_CONNS=1000\n"
			"IDLE_LINGER=60\n"
			"\n[POOL=DEFAULT]\n"
			"JOB_LIMIT=3\n"
			"\n[CHANNEL=tcp_*]\n"
			"MASTER_COMMAND=/bin/m\n"
			"SLAVE_COMMAND=NULL\n"
			"MAX_LIFE_AGE=120\n"
			"MAX_LIFE_CONNS=1000\n"
			"IDLE_LINGER=60\n");
	g_assert_null(strstr(out->str, "hush"));
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
	g_autofree char *path = source_file("conf/job_controller.cnf");
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaJobControllerCnf) cnf = NULL;

	if (path == NULL || !g_file_test(path, G_FILE_TEST_EXISTS)) {
		g_test_skip("G_TEST_SRCDIR not set");
		return;
	}
	cnf = imta_job_controller_cnf_load(path, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(cnf->warnings->len, ==, 0);
	g_assert_cmpuint(cnf->pools->len, ==, 4);
	g_assert_cmpstr(imta_job_controller_cnf_default_pool(cnf)->name, ==, "DEFAULT");
	g_assert_cmpint(imta_job_controller_cnf_pool(cnf, "DEFAULT")->job_limit, ==, 10);
	g_assert_cmpint(imta_job_controller_cnf_pool(cnf, "LOCAL_POOL")->job_limit, ==, 10);
	g_assert_cmpint(imta_job_controller_cnf_pool(cnf, "IMS_POOL")->job_limit, ==, 2);
	g_assert_cmpint(imta_job_controller_cnf_pool(cnf, "SMTP_POOL")->job_limit, ==, 10);
}

static void
test_man_page(void)
{
	static const struct {
		const ImtaOptionSpec *rows;
		const gsize *n;
	} tables[] = {
		{ imta_job_controller_options, &imta_job_controller_n_options },
		{ imta_job_controller_pool_options, &imta_job_controller_n_pool_options },
		{ imta_job_controller_channel_options, &imta_job_controller_n_channel_options },
	};
	g_autofree char *path = source_file("docs/man/job_controller.cnf.5");
	g_autofree char *text = NULL;

	if (path == NULL || !g_file_test(path, G_FILE_TEST_EXISTS)) {
		g_test_skip("G_TEST_SRCDIR not set");
		return;
	}
	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	for (gsize t = 0; t < G_N_ELEMENTS(tables); t++) {
		for (gsize i = 0; i < *tables[t].n; i++) {
			g_autofree char *entry = g_strdup_printf("\n.B %s\n", tables[t].rows[i].name);

			g_test_message("%s", tables[t].rows[i].name);
			g_assert_nonnull(strstr(text, entry));
		}
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/job-controller-cnf/defaults", test_defaults);
	g_test_add_func("/job-controller-cnf/values", test_values);
	g_test_add_func("/job-controller-cnf/errors", test_errors);
	g_test_add_func("/job-controller-cnf/pools/first-is-default", test_pool_names);
	g_test_add_func("/job-controller-cnf/channels/pattern-match", test_pattern_match);
	g_test_add_func("/job-controller-cnf/channels/lookup", test_channel_lookup);
	g_test_add_func("/job-controller-cnf/channels/tie", test_channel_tie);
	g_test_add_func("/job-controller-cnf/documented-example", test_documented_example);
	g_test_add_func("/job-controller-cnf/inheritance", test_inheritance);
	g_test_add_func("/job-controller-cnf/periodic-job", test_periodic_job);
	g_test_add_func("/job-controller-cnf/warnings", test_warnings);
	g_test_add_func("/job-controller-cnf/builtin", test_builtin);
	g_test_add_func("/job-controller-cnf/dump", test_dump);
	g_test_add_func("/job-controller-cnf/shipped", test_shipped);
	g_test_add_func("/job-controller-cnf/man-page", test_man_page);
	return g_test_run();
}
