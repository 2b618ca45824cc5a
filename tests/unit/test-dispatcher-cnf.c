/*
 * test-dispatcher-cnf.c - dispatcher.cnf: defaults, values, inheritance of
 * global options, computed BACKLOG, limits and positioned errors.
 */
#include "config.h"

#include <string.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/dispatcher_cnf.h>

static ImtaDispatcherCnf *
parse(const char *text, GError **error)
{
	return imta_dispatcher_cnf_parse_text("dispatcher.cnf", text, strlen(text), NULL, error);
}

static ImtaDispatcherCnf *
parse_ok(const char *text)
{
	g_autoptr(GError) error = NULL;
	ImtaDispatcherCnf *cnf = parse(text, &error);

	g_assert_no_error(error);
	g_assert_nonnull(cnf);
	return cnf;
}

/* The value of option `name` of `svc`, as it would be written. */
static char *
value_of(const ImtaDispatcherService *svc, const char *name)
{
	char *text = imta_option_value_text(imta_dispatcher_options, imta_dispatcher_n_options,
					    svc, name);

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
		{ "PORT", "25" }, { "INTERFACE_ADDRESS", "" }, { "IMAGE", "" },
		{ "LOGFILE", "" }, { "PARAMETER", "" }, { "STACKSIZE", "2097152" },
		{ "MIN_PROCS", "0" }, { "MAX_PROCS", "5" }, { "MIN_CONNS", "5" },
		{ "MAX_CONNS", "10" }, { "MAX_LIFE_TIME", "86400" }, { "MAX_LIFE_CONNS", "100" },
		{ "MAX_IDLE_TIME", "300" }, { "MAX_SHUTDOWN", "2" }, { "MAX_HANDOFFS", "5" },
		{ "BACKLOG", "50" }, { "IDENT", "0" }, { "DNS_VERIFY_DOMAIN", "" },
		{ "ENABLE_RBL", "0" }, { "HISTORICAL_TIME", "120" }, { "DEBUG", "0" },
	};
	g_autoptr(ImtaDispatcherCnf) cnf = parse_ok("[SERVICE=SMTP]\nPORT=25\n");
	const ImtaDispatcherService *svc = g_ptr_array_index(cnf->services, 0);

	/* Every row of the table has its default checked here. */
	g_assert_cmpuint(G_N_ELEMENTS(rows), ==, imta_dispatcher_n_options);
	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *value = value_of(svc, rows[i].name);

		g_assert_cmpstr(value, ==, rows[i].value);
	}
	g_assert_null(cnf->user);
	g_assert_null(svc->channel);
	g_assert_null(svc->dns_verify_domains);
	g_assert_cmpstr(svc->name, ==, "SMTP");
	g_assert_cmpuint(svc->pos.line, ==, 1);
	g_assert_cmpuint(svc->pos.column, ==, 1);
	g_assert_cmpuint(cnf->warnings->len, ==, 0);
}

typedef struct {
	const char *line;   /* appended to "[SERVICE=S]\nPORT=25\n" */
	const char *name;
	const char *value;
} ValueRow;

static void
test_values(void)
{
	static const ValueRow rows[] = {
		{ "DEBUG=16%1000000", "DEBUG", "16%1000000" },
		{ "DEBUG=-1", "DEBUG", "16%FFFFFFFF" },
		{ "DEBUG=16%FFFFFFFF", "DEBUG", "16%FFFFFFFF" },
		{ "DEBUG=5", "DEBUG", "16%5" },
		{ "debug=0", "DEBUG", "0" },
		{ "MAX_CONNS=8%777", "MAX_CONNS", "511" },
		{ "MIN_CONNS=1\nMAX_CONNS=1", "MAX_CONNS", "1" },
		{ "MAX_CONNS=1000", "MAX_CONNS", "1000" },
		{ "max_conns = 2%1010", "MAX_CONNS", "10" },
		{ "MAX_PROCS=1000", "MAX_PROCS", "1000" },
		{ "MIN_CONNS=1", "MIN_CONNS", "1" },
		{ "MAX_LIFE_TIME=PT1H", "MAX_LIFE_TIME", "3600" },
		{ "MAX_LIFE_TIME=1", "MAX_LIFE_TIME", "1" },
		{ "MAX_LIFE_TIME=31536000", "MAX_LIFE_TIME", "31536000" },
		{ "MAX_LIFE_CONNS=2147483647", "MAX_LIFE_CONNS", "2147483647" },
		{ "MAX_IDLE_TIME=0", "MAX_IDLE_TIME", "0" },
		{ "MAX_IDLE_TIME=p1d", "MAX_IDLE_TIME", "86400" },
		{ "MAX_SHUTDOWN=1", "MAX_SHUTDOWN", "1" },
		{ "MAX_HANDOFFS=1000", "MAX_HANDOFFS", "1000" },
		{ "HISTORICAL_TIME=0", "HISTORICAL_TIME", "0" },
		{ "HISTORICAL_TIME=604800", "HISTORICAL_TIME", "604800" },
		{ "STACKSIZE=65536", "STACKSIZE", "65536" },
		{ "STACKSIZE=2048000", "STACKSIZE", "2048000" },
		{ "STACKSIZE=1073741824", "STACKSIZE", "1073741824" },
		{ "BACKLOG=5", "BACKLOG", "5" },
		{ "BACKLOG=65535", "BACKLOG", "65535" },
		{ "IDENT=1", "IDENT", "1" },
		{ "IDENT=0", "IDENT", "0" },
		{ "ENABLE_RBL=1", "ENABLE_RBL", "1" },
		{ "PORT=25,587", "PORT", "25,587" },
		{ "PORT=25 587", "PORT", "25,587" },
		{ "PORT= 25 , 587 ,465", "PORT", "25,587,465" },
		{ "PORT=1", "PORT", "1" },
		{ "PORT=65535", "PORT", "65535" },
		{ "PORT=16%19", "PORT", "25" },
		{ "PORT=0", "PORT", "0" },
		{ "INTERFACE_ADDRESS=127.0.0.1", "INTERFACE_ADDRESS", "127.0.0.1" },
		{ "INTERFACE_ADDRESS=::1", "INTERFACE_ADDRESS", "::1" },
		{ "INTERFACE_ADDRESS=2001:db8::25", "INTERFACE_ADDRESS", "2001:db8::25" },
		{ "INTERFACE_ADDRESS=", "INTERFACE_ADDRESS", "" },
		{ "IMAGE=/opt/imta/lib/tcp_smtp_server", "IMAGE", "/opt/imta/lib/tcp_smtp_server" },
		{ "LOGFILE=tcp_smtp_server_%s.log", "LOGFILE", "tcp_smtp_server_%s.log" },
		{ "PARAMETER=CHANNEL=tcp_submit", "PARAMETER", "CHANNEL=tcp_submit" },
		{ "PARAMETER=anything at all", "PARAMETER", "anything at all" },
		{ "DNS_VERIFY_DOMAIN=bl.example.org", "DNS_VERIFY_DOMAIN", "bl.example.org" },
		{ "DNS_VERIFY_DOMAIN=zen.spamhaus.org.", "DNS_VERIFY_DOMAIN", "zen.spamhaus.org." },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *text = g_strdup_printf("[SERVICE=S]\nPORT=25\n%s\n", rows[i].line);
		g_autoptr(ImtaDispatcherCnf) cnf = parse_ok(text);
		g_autofree char *value = value_of(g_ptr_array_index(cnf->services, 0), rows[i].name);

		g_test_message("row %zu: %s", i, rows[i].line);
		g_assert_cmpstr(value, ==, rows[i].value);
	}
}

static void
test_fields(void)
{
	g_autoptr(ImtaDispatcherCnf) cnf = parse_ok(
		"[SERVICE=SMTP]\n"
		"PORT=25 587\n"
		"DEBUG=16%1000000\n"
		"PARAMETER=CHANNEL= tcp_local\n"
		"IDENT=1\n"
		"MAX_LIFE_TIME=PT2H\n"
		"[SERVICE=LMTPSS]\n"
		"PORT=225\n"
		"PARAMETER=CHANNEL=tcp_lmtpss\n"
		"STACKSIZE=2048000\n"
		"[SERVICE=OFF]\n"
		"PORT=0\n");
	const ImtaDispatcherService *smtp = imta_dispatcher_cnf_service(cnf, "smtp");
	const ImtaDispatcherService *lmtp = imta_dispatcher_cnf_service(cnf, "LmtpSS");
	const ImtaDispatcherService *off = imta_dispatcher_cnf_service(cnf, "OFF");

	g_assert_nonnull(smtp);
	g_assert_nonnull(lmtp);
	g_assert_nonnull(off);
	g_assert_null(imta_dispatcher_cnf_service(cnf, "SMTP_SUBMIT"));
	g_assert_cmpuint(smtp->ports->len, ==, 2);
	g_assert_cmpuint(g_array_index(smtp->ports, guint16, 0), ==, 25);
	g_assert_cmpuint(g_array_index(smtp->ports, guint16, 1), ==, 587);
	g_assert_cmphex(smtp->debug, ==, 0x1000000u);
	g_assert_cmpstr(smtp->channel, ==, "tcp_local");
	g_assert_true(smtp->ident);
	g_assert_cmpint(smtp->max_life_time, ==, 7200);
	g_assert_cmpstr(lmtp->channel, ==, "tcp_lmtpss");
	g_assert_cmpint(lmtp->stacksize, ==, 2048000);
	g_assert_true(imta_dispatcher_service_enabled(smtp));
	g_assert_false(imta_dispatcher_service_enabled(off));
	g_assert_cmpuint(off->ports->len, ==, 0);
	g_assert_cmpuint(off->pos.line, ==, 11);
}

typedef struct {
	const char *text;
	ImtaConfigErrorCode code;
	const char *message;
} ErrorRow;

static void
check_errors(const ErrorRow *rows, gsize n)
{
	for (gsize i = 0; i < n; i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaDispatcherCnf) cnf = parse(rows[i].text, &error);
		g_autofree char *shown = g_strescape(rows[i].text, NULL);

		g_test_message("row %zu: %s", i, shown);
		g_assert_null(cnf);
		g_assert_error(error, IMTA_CONFIG_ERROR, (gint)rows[i].code);
		g_assert_cmpstr(error->message, ==, rows[i].message);
	}
}

static void
test_range_errors(void)
{
	static const ErrorRow rows[] = {
		{ "MAX_CONNS=0\n", IMTA_CONFIG_ERROR_RANGE,
		  "dispatcher.cnf:1:11: expected an integer between 1 and 1000 for MAX_CONNS,"
		  " got \"0\"" },
		{ "MAX_CONNS=1001\n", IMTA_CONFIG_ERROR_RANGE,
		  "dispatcher.cnf:1:11: expected an integer between 1 and 1000 for MAX_CONNS,"
		  " got \"1001\"" },
		{ "[SERVICE=SMTP]\nPORT=25\nMAX_CONNS = abc\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "dispatcher.cnf:3:13: expected an integer between 1 and 1000 for MAX_CONNS,"
		  " got \"abc\"" },
		{ "MAX_PROCS=0\n", IMTA_CONFIG_ERROR_RANGE,
		  "dispatcher.cnf:1:11: expected an integer between 1 and 1000 for MAX_PROCS,"
		  " got \"0\"" },
		{ "MIN_PROCS=-1\n", IMTA_CONFIG_ERROR_RANGE,
		  "dispatcher.cnf:1:11: expected an integer between 0 and 1000 for MIN_PROCS,"
		  " got \"-1\"" },
		{ "MIN_PROCS=1001\n", IMTA_CONFIG_ERROR_RANGE,
		  "dispatcher.cnf:1:11: expected an integer between 0 and 1000 for MIN_PROCS,"
		  " got \"1001\"" },
		{ "BACKLOG=4\n", IMTA_CONFIG_ERROR_RANGE,
		  "dispatcher.cnf:1:9: expected an integer between 5 and 65535 for BACKLOG,"
		  " got \"4\"" },
		{ "BACKLOG=65536\n", IMTA_CONFIG_ERROR_RANGE,
		  "dispatcher.cnf:1:9: expected an integer between 5 and 65535 for BACKLOG,"
		  " got \"65536\"" },
		{ "STACKSIZE=65535\n", IMTA_CONFIG_ERROR_RANGE,
		  "dispatcher.cnf:1:11: expected an integer between 65536 and 1073741824 for"
		  " STACKSIZE, got \"65535\"" },
		{ "MAX_LIFE_TIME=0\n", IMTA_CONFIG_ERROR_RANGE,
		  "dispatcher.cnf:1:15: expected a number of seconds or an ISO 8601 duration"
		  " (such as PT30M) between 1 and 31536000 for MAX_LIFE_TIME, got \"0\"" },
		{ "MAX_LIFE_TIME=P1Y\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "dispatcher.cnf:1:15: expected a number of seconds or an ISO 8601 duration"
		  " (such as PT30M) between 1 and 31536000 for MAX_LIFE_TIME, got \"P1Y\"" },
		{ "MAX_HANDOFFS=1001\n", IMTA_CONFIG_ERROR_RANGE,
		  "dispatcher.cnf:1:14: expected an integer between 1 and 1000 for MAX_HANDOFFS,"
		  " got \"1001\"" },
		{ "IDENT=2\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "dispatcher.cnf:1:7: expected 0 or 1 for IDENT, got \"2\"" },
		{ "IDENT=yes\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "dispatcher.cnf:1:7: expected 0 or 1 for IDENT, got \"yes\"" },
		{ "DEBUG=16%100000000\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "dispatcher.cnf:1:7: expected a 32-bit mask (such as 16%1000000, or -1 for all"
		  " bits) for DEBUG, got \"16%100000000\"" },
		{ "DEBUG=12x\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "dispatcher.cnf:1:7: expected a 32-bit mask (such as 16%1000000, or -1 for all"
		  " bits) for DEBUG, got \"12x\"" },
		{ "MAX_CONNS=8%9\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "dispatcher.cnf:1:11: expected an integer between 1 and 1000 for MAX_CONNS,"
		  " got \"8%9\"" },
		{ "INTERFACE_ADDRESS=999.1.1.1\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "dispatcher.cnf:1:19: expected an IPv4 or IPv6 address for INTERFACE_ADDRESS,"
		  " got \"999.1.1.1\"" },
		{ "INTERFACE_ADDRESS=mail.example.com\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "dispatcher.cnf:1:19: expected an IPv4 or IPv6 address for INTERFACE_ADDRESS,"
		  " got \"mail.example.com\"" },
		{ "DNS_VERIFY_DOMAIN=bad domain\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "dispatcher.cnf:1:19: expected a host name (letters, digits, '-', '_' and dots)"
		  " for DNS_VERIFY_DOMAIN, got \"bad domain\"" },
		{ "DNS_VERIFY_DOMAIN=\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "dispatcher.cnf:1:19: expected a non-empty value for DNS_VERIFY_DOMAIN,"
		  " got \"\"" },
		{ "USER=-x\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "dispatcher.cnf:1:6: expected an account name (letters, digits, '_', '-' and"
		  " '.', at most 32) for USER, got \"-x\"" },
	};

	check_errors(rows, G_N_ELEMENTS(rows));
}

static void
test_port_errors(void)
{
	static const ErrorRow rows[] = {
		{ "[SERVICE=A]\nPORT=65536\n", IMTA_CONFIG_ERROR_RANGE,
		  "dispatcher.cnf:2:6: expected a port number between 1 and 65535 for PORT,"
		  " got \"65536\"" },
		{ "[SERVICE=A]\nPORT=25,x\n", IMTA_CONFIG_ERROR_RANGE,
		  "dispatcher.cnf:2:9: expected a port number between 1 and 65535 for PORT,"
		  " got \"x\"" },
		{ "[SERVICE=A]\nPORT=-25\n", IMTA_CONFIG_ERROR_RANGE,
		  "dispatcher.cnf:2:6: expected a port number between 1 and 65535 for PORT,"
		  " got \"-25\"" },
		{ "[SERVICE=A]\nPORT=25,,587\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "dispatcher.cnf:2:9: expected a port number before ',' in PORT" },
		{ "[SERVICE=A]\nPORT=,25\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "dispatcher.cnf:2:6: expected a port number before ',' in PORT" },
		{ "[SERVICE=A]\nPORT=25,\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "dispatcher.cnf:2:9: expected a port number after ',' in PORT" },
		{ "[SERVICE=A]\nPORT=\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "dispatcher.cnf:2:6: expected port numbers from 1 to 65535 separated by commas"
		  " or blanks, or 0 alone for none for PORT, got \"\"" },
		{ "[SERVICE=A]\nPORT=0,25\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "dispatcher.cnf:2:6: PORT=0 means none and cannot be combined with other ports" },
		{ "[SERVICE=A]\nPORT=25 587 25\n", IMTA_CONFIG_ERROR_DUPLICATE,
		  "dispatcher.cnf:2:13: port 25 is listed twice in PORT" },
		{ "[SERVICE=A]\nINTERFACE_ADDRESS=127.0.0.1\n", IMTA_CONFIG_ERROR_MISSING,
		  "dispatcher.cnf:1:1: service A has no PORT (set PORT=0 to disable it)" },
		{ "[SERVICE=A]\nPORT=25\n[SERVICE=B]\nPORT=587,25\n", IMTA_CONFIG_ERROR_DUPLICATE,
		  "dispatcher.cnf:3:1: service B: port 25 is already used by service A"
		  " (dispatcher.cnf:1:1)" },
		{ "[SERVICE=A]\nPORT=25\nINTERFACE_ADDRESS=127.0.0.1\n[SERVICE=B]\nPORT=25\n",
		  IMTA_CONFIG_ERROR_DUPLICATE,
		  "dispatcher.cnf:4:1: service B: port 25 is already used by service A"
		  " (dispatcher.cnf:1:1)" },
		{ "[SERVICE=A]\nPORT=25\nINTERFACE_ADDRESS=::1\n"
		  "[SERVICE=B]\nPORT=25\nINTERFACE_ADDRESS=0:0::1\n",
		  IMTA_CONFIG_ERROR_DUPLICATE,
		  "dispatcher.cnf:4:1: service B: port 25 is already used by service A"
		  " (dispatcher.cnf:1:1)" },
	};

	check_errors(rows, G_N_ELEMENTS(rows));
}

static void
test_no_port_clash(void)
{
	static const char *const texts[] = {
		/* Different addresses of one family. */
		"[SERVICE=A]\nPORT=25\nINTERFACE_ADDRESS=127.0.0.1\n"
		"[SERVICE=B]\nPORT=25\nINTERFACE_ADDRESS=127.0.0.2\n",
		/* Different families. */
		"[SERVICE=A]\nPORT=25\nINTERFACE_ADDRESS=127.0.0.1\n"
		"[SERVICE=B]\nPORT=25\nINTERFACE_ADDRESS=::1\n",
		/* A disabled service holds no port. */
		"[SERVICE=A]\nPORT=0\n[SERVICE=B]\nPORT=25\n",
		"[SERVICE=A]\nPORT=25\n[SERVICE=B]\nPORT=587\n",
	};

	for (gsize i = 0; i < G_N_ELEMENTS(texts); i++) {
		g_autoptr(ImtaDispatcherCnf) cnf = parse_ok(texts[i]);

		g_assert_cmpuint(cnf->services->len, ==, 2);
	}
}

static void
test_syntax_errors(void)
{
	static const ErrorRow rows[] = {
		{ "FOO=1\n", IMTA_CONFIG_ERROR_UNKNOWN,
		  "dispatcher.cnf:1:1: unknown dispatcher.cnf option \"FOO\"" },
		{ "[SERVICE=SMTP]\nPORT=25\n  MAX_CONN=5\n", IMTA_CONFIG_ERROR_UNKNOWN,
		  "dispatcher.cnf:3:3: unknown dispatcher.cnf option \"MAX_CONN\""
		  " (did you mean MAX_CONNS?)" },
		{ "USR=mail\n", IMTA_CONFIG_ERROR_UNKNOWN,
		  "dispatcher.cnf:1:1: unknown dispatcher.cnf option \"USR\" (did you mean USER?)" },
		{ "! comment\n  MAX_CONNS\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "dispatcher.cnf:2:3: expected NAME=value, got \"MAX_CONNS\"" },
		{ "=5\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "dispatcher.cnf:1:1: expected NAME=value, got \"=5\"" },
		{ "[SERVER=SMTP]\n", IMTA_CONFIG_ERROR_UNKNOWN,
		  "dispatcher.cnf:1:2: unknown section type \"SERVER\" (expected [SERVICE=name])" },
		{ "\n\n [SERVICE=SMTP\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "dispatcher.cnf:3:15: expected ']' at the end of the section line" },
		{ "[SERVICE]\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "dispatcher.cnf:1:2: expected a section line of the form [TYPE=name]" },
		{ "[SERVICE= ]\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "dispatcher.cnf:1:11: expected a name after '=' in section [SERVICE=...]" },
		{ "[SERVICE=a b]\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "dispatcher.cnf:1:10: expected a service name (letters, digits, '_', '-' and"
		  " '.', at most 64), got \"a b\"" },
		{ "[SERVICE=SMTP]\nPORT=25\n[service=smtp]\nPORT=26\n", IMTA_CONFIG_ERROR_DUPLICATE,
		  "dispatcher.cnf:3:1: service smtp is defined twice (first at dispatcher.cnf:1:1)" },
		{ "[SERVICE=SMTP]\nPORT=25\nUSER=mail\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "dispatcher.cnf:3:1: USER is a global option: set it before the first"
		  " [SERVICE=...] section" },
		{ "[SERVICE=SMTP]\nPORT=25\nPARAMETER=CHANNEL=\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "dispatcher.cnf:3:11: expected a channel name after CHANNEL= in PARAMETER,"
		  " got \"\"" },
		{ "[SERVICE=SMTP]\nPORT=25\nPARAMETER=channel=tcp local\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "dispatcher.cnf:3:11: expected a channel name after CHANNEL= in PARAMETER,"
		  " got \"tcp local\"" },
		{ "MAX_CONNS=5\nFOO\xff=1\n", IMTA_CONFIG_ERROR_UNKNOWN,
		  "dispatcher.cnf:2:1: unknown dispatcher.cnf option \"FOO\\xff\"" },
	};

	check_errors(rows, G_N_ELEMENTS(rows));
}

static void
test_cross_checks(void)
{
	static const ErrorRow rows[] = {
		{ "[SERVICE=SMTP]\nPORT=25\nMIN_PROCS=6\nMAX_PROCS=5\n", IMTA_CONFIG_ERROR_RANGE,
		  "dispatcher.cnf:1:1: service SMTP: MIN_PROCS (6) is greater than MAX_PROCS (5)" },
		{ "MIN_PROCS=6\n! the global value reaches every service\n[SERVICE=SMTP]\nPORT=25\n",
		  IMTA_CONFIG_ERROR_RANGE,
		  "dispatcher.cnf:3:1: service SMTP: MIN_PROCS (6) is greater than MAX_PROCS (5)" },
		{ "[SERVICE=A]\nPORT=25\n\n  [SERVICE=B]\nPORT=26\nMIN_CONNS=11\n",
		  IMTA_CONFIG_ERROR_RANGE,
		  "dispatcher.cnf:4:3: service B: MIN_CONNS (11) is greater than MAX_CONNS (10)" },
	};

	check_errors(rows, G_N_ELEMENTS(rows));
	{
		/* Equal is fine at both ends. */
		g_autoptr(ImtaDispatcherCnf) cnf = parse_ok(
			"[SERVICE=A]\nPORT=25\nMIN_PROCS=5\nMAX_PROCS=5\nMIN_CONNS=10\n");

		g_assert_nonnull(cnf);
	}
}

static void
test_inheritance(void)
{
	g_autoptr(ImtaDispatcherCnf) cnf = parse_ok(
		"USER=mailsrv\n"
		"MAX_CONNS=20\n"
		"MAX_PROCS=3\n"
		"DEBUG=16%1000000\n"
		"DNS_VERIFY_DOMAIN=one.example\n"
		"DNS_VERIFY_DOMAIN=two.example\n"
		"PARAMETER=CHANNEL=tcp_local\n"
		"[SERVICE=A]\n"
		"PORT=25\n"
		"[SERVICE=B]\n"
		"MAX_CONNS=7\n"
		"DNS_VERIFY_DOMAIN=three.example\n"
		"PARAMETER=CHANNEL=tcp_submit\n"
		"PORT=587\n");
	const ImtaDispatcherService *a = imta_dispatcher_cnf_service(cnf, "A");
	const ImtaDispatcherService *b = imta_dispatcher_cnf_service(cnf, "B");

	g_assert_cmpstr(cnf->user, ==, "mailsrv");
	g_assert_cmpint(a->max_conns, ==, 20);
	g_assert_cmpint(a->max_procs, ==, 3);
	g_assert_cmphex(a->debug, ==, 0x1000000u);
	g_assert_cmpstr(a->channel, ==, "tcp_local");
	g_assert_cmpuint(a->dns_verify_domains->len, ==, 2);
	g_assert_cmpstr(g_ptr_array_index(a->dns_verify_domains, 1), ==, "two.example");
	g_assert_cmpint(a->backlog, ==, 60);
	g_assert_cmpint(b->max_conns, ==, 7);
	g_assert_cmpint(b->max_procs, ==, 3);
	g_assert_cmpstr(b->channel, ==, "tcp_submit");
	g_assert_cmpuint(b->dns_verify_domains->len, ==, 1);
	g_assert_cmpstr(g_ptr_array_index(b->dns_verify_domains, 0), ==, "three.example");
	g_assert_cmpint(b->backlog, ==, 21);
	/* The global section itself. */
	g_assert_cmpint(cnf->defaults.max_conns, ==, 20);
	g_assert_cmpstr(cnf->defaults.channel, ==, "tcp_local");
	g_assert_cmpint(cnf->defaults.backlog, ==, 0);
}

typedef struct {
	const char *settings;
	gint64 backlog;
} BacklogRow;

static void
test_backlog(void)
{
	static const BacklogRow rows[] = {
		{ "", 50 },
		{ "MAX_CONNS=1\nMAX_PROCS=1\nMIN_CONNS=1\n", 5 },
		{ "MAX_CONNS=2\nMAX_PROCS=2\nMIN_CONNS=1\n", 5 },
		{ "MAX_CONNS=5\nMAX_PROCS=1\n", 5 },
		{ "MAX_CONNS=3\nMAX_PROCS=2\nMIN_CONNS=1\n", 6 },
		{ "MAX_CONNS=20\nMAX_PROCS=5\n", 100 },
		{ "MAX_CONNS=1000\nMAX_PROCS=1000\n", 65535 },
		{ "BACKLOG=7\n", 7 },
		{ "BACKLOG=5\nMAX_CONNS=1000\n", 5 },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *text = g_strdup_printf("[SERVICE=S]\nPORT=25\n%s", rows[i].settings);
		g_autoptr(ImtaDispatcherCnf) cnf = parse_ok(text);
		const ImtaDispatcherService *svc = g_ptr_array_index(cnf->services, 0);

		g_test_message("row %zu", i);
		g_assert_cmpint(svc->backlog, ==, rows[i].backlog);
	}
}

static void
test_dns_verify_limit(void)
{
	static const ErrorRow rows[] = {
		{ "[SERVICE=SMTP]\nPORT=25\n"
		  "DNS_VERIFY_DOMAIN=a.example\nDNS_VERIFY_DOMAIN=b.example\n"
		  "DNS_VERIFY_DOMAIN=c.example\nDNS_VERIFY_DOMAIN=d.example\n"
		  "DNS_VERIFY_DOMAIN=e.example\nDNS_VERIFY_DOMAIN=f.example\n",
		  IMTA_CONFIG_ERROR_RANGE,
		  "dispatcher.cnf:8:19: too many DNS_VERIFY_DOMAIN values: at most 5 are allowed" },
		{ "DNS_VERIFY_DOMAIN=a.example\nDNS_VERIFY_DOMAIN=b.example\n"
		  "DNS_VERIFY_DOMAIN=c.example\nDNS_VERIFY_DOMAIN=d.example\n"
		  "DNS_VERIFY_DOMAIN=e.example\nDNS_VERIFY_DOMAIN=f.example\n",
		  IMTA_CONFIG_ERROR_RANGE,
		  "dispatcher.cnf:6:19: too many DNS_VERIFY_DOMAIN values: at most 5 are allowed" },
	};
	g_autoptr(ImtaDispatcherCnf) five = NULL;
	g_autoptr(ImtaDispatcherCnf) replaced = NULL;
	const ImtaDispatcherService *svc;

	check_errors(rows, G_N_ELEMENTS(rows));
	five = parse_ok("[SERVICE=SMTP]\nPORT=25\n"
			"DNS_VERIFY_DOMAIN=a.example\nDNS_VERIFY_DOMAIN=b.example\n"
			"DNS_VERIFY_DOMAIN=c.example\nDNS_VERIFY_DOMAIN=d.example\n"
			"DNS_VERIFY_DOMAIN=e.example\n");
	svc = g_ptr_array_index(five->services, 0);
	g_assert_cmpuint(svc->dns_verify_domains->len, ==, 5);
	g_assert_cmpstr(g_ptr_array_index(svc->dns_verify_domains, 4), ==, "e.example");
	/* Three inherited plus five of its own: the service's list replaces the
	 * global one, so this is five, not eight. */
	replaced = parse_ok("DNS_VERIFY_DOMAIN=x.example\nDNS_VERIFY_DOMAIN=y.example\n"
			    "DNS_VERIFY_DOMAIN=z.example\n"
			    "[SERVICE=SMTP]\nPORT=25\n"
			    "DNS_VERIFY_DOMAIN=a.example\nDNS_VERIFY_DOMAIN=b.example\n"
			    "DNS_VERIFY_DOMAIN=c.example\nDNS_VERIFY_DOMAIN=d.example\n"
			    "DNS_VERIFY_DOMAIN=e.example\n");
	svc = g_ptr_array_index(replaced->services, 0);
	g_assert_cmpuint(svc->dns_verify_domains->len, ==, 5);
	g_assert_cmpstr(g_ptr_array_index(svc->dns_verify_domains, 0), ==, "a.example");
}

static void
test_comments(void)
{
	g_autoptr(ImtaDispatcherCnf) cnf = parse_ok(
		"! Sun style comment\n"
		"# shell style comment\n"
		"   ! indented comment\n"
		"\t# indented comment\n"
		"\n"
		"   \n"
		"MAX_CONNS=12\r\n"
		"[SERVICE=SMTP]   \n"
		"  PORT = 25  \n"
		"LOGFILE=smtp.log ! not a comment\n");
	const ImtaDispatcherService *svc = g_ptr_array_index(cnf->services, 0);

	g_assert_cmpint(svc->max_conns, ==, 12);
	g_assert_cmpuint(svc->pos.line, ==, 8);
	g_assert_cmpstr(svc->logfile, ==, "smtp.log ! not a comment");
	g_assert_cmpuint(g_array_index(svc->ports, guint16, 0), ==, 25);
}

static void
test_warnings(void)
{
	g_autoptr(ImtaDispatcherCnf) cnf = parse_ok(
		"MAX_CONNS=12\n"
		"MAX_CONNS=13\n"
		"[SERVICE=SMTP]\n"
		"PORT=25\n"
		"ENABLE_RBL=1\n"
		"PORT=26\n");
	const ImtaDispatcherService *svc = g_ptr_array_index(cnf->services, 0);

	g_assert_cmpint(svc->max_conns, ==, 13);
	g_assert_true(svc->enable_rbl);
	g_assert_cmpuint(g_array_index(svc->ports, guint16, 0), ==, 26);
	g_assert_cmpuint(cnf->warnings->len, ==, 3);
	g_assert_cmpstr(g_ptr_array_index(cnf->warnings, 0), ==,
			"dispatcher.cnf:2:1: MAX_CONNS is set again in this section; the later"
			" value wins");
	g_assert_cmpstr(g_ptr_array_index(cnf->warnings, 1), ==,
			"dispatcher.cnf:5:1: ENABLE_RBL is deprecated: use DNS_VERIFY_DOMAIN or the"
			" dns_verify callout of the PORT_ACCESS mapping");
	g_assert_cmpstr(g_ptr_array_index(cnf->warnings, 2), ==,
			"dispatcher.cnf:6:1: PORT is set again in this section; the later value"
			" wins");
}

/* The documented shipped default, the LMTP back-end form and submission,
 * as one file; and the production example of dispatcher.cnf(5). */
static void
test_documented_examples(void)
{
	g_autoptr(ImtaDispatcherCnf) cnf = parse_ok(
		"MIN_PROCS=0\nMAX_PROCS=5\nMIN_CONNS=5\nMAX_CONNS=20\nMAX_LIFE_TIME=86400\n"
		"MAX_LIFE_CONNS=100\nMAX_SHUTDOWN=2\n"
		"[SERVICE=SMTP]\n"
		"PORT=25\n"
		"IMAGE=/opt/sun/comms/messaging/lib/tcp_smtp_server\n"
		"LOGFILE=/opt/sun/comms/messaging/log/tcp_smtp_server.log\n"
		"[SERVICE=LMTPSS]\n"
		"PORT=225\n"
		"IMAGE=/opt/sun/comms/messaging/lib/tcp_lmtp_server\n"
		"PARAMETER=CHANNEL=tcp_lmtpss\n"
		"STACKSIZE=2048000\n"
		"[SERVICE=SMTP_SUBMIT]\n"
		"PORT=587\n"
		"PARAMETER=CHANNEL=tcp_submit\n");
	g_autoptr(ImtaDispatcherCnf) production = parse_ok(
		"USER=mailsrv\nMAX_CONNS=50\nMAX_PROCS=10\n\n"
		"[SERVICE=SMTP]\nPORT=25\nPARAMETER=CHANNEL=tcp_local\n"
		"DNS_VERIFY_DOMAIN=bl.example.net\nDEBUG=16%1000000\n\n"
		"[SERVICE=SMTP_SUBMIT]\nPORT=587\nPARAMETER=CHANNEL=tcp_submit\n\n"
		"[SERVICE=LMTPSS]\nPORT=225\nINTERFACE_ADDRESS=10.0.0.5\n"
		"PARAMETER=CHANNEL=tcp_lmtpss\nSTACKSIZE=2048000\n");
	const ImtaDispatcherService *smtp = imta_dispatcher_cnf_service(cnf, "SMTP");
	const ImtaDispatcherService *lmtp = imta_dispatcher_cnf_service(cnf, "LMTPSS");
	const ImtaDispatcherService *submit = imta_dispatcher_cnf_service(cnf, "SMTP_SUBMIT");

	g_assert_cmpstr(smtp->image, ==, "/opt/sun/comms/messaging/lib/tcp_smtp_server");
	g_assert_cmpstr(smtp->logfile, ==, "/opt/sun/comms/messaging/log/tcp_smtp_server.log");
	g_assert_null(smtp->channel);
	g_assert_cmpint(smtp->backlog, ==, 100);
	g_assert_cmpstr(lmtp->channel, ==, "tcp_lmtpss");
	g_assert_cmpuint(g_array_index(lmtp->ports, guint16, 0), ==, 225);
	g_assert_cmpstr(submit->channel, ==, "tcp_submit");
	g_assert_cmpuint(g_array_index(submit->ports, guint16, 0), ==, 587);
	g_assert_cmpuint(production->services->len, ==, 3);
	g_assert_cmpint(imta_dispatcher_cnf_service(production, "SMTP")->backlog, ==, 500);
	g_assert_cmphex(imta_dispatcher_cnf_service(production, "SMTP")->debug, ==, 0x1000000u);
	g_assert_cmpstr(imta_dispatcher_cnf_service(production, "LMTPSS")->interface_address, ==,
			"10.0.0.5");
	g_assert_cmpuint(production->warnings->len, ==, 0);
}

static void
test_builtin(void)
{
	g_autoptr(ImtaDispatcherCnf) cnf = imta_dispatcher_cnf_new_default();
	const ImtaDispatcherService *svc;

	g_assert_null(cnf->path);
	g_assert_cmpuint(cnf->services->len, ==, 1);
	svc = imta_dispatcher_cnf_service(cnf, "SMTP");
	g_assert_nonnull(svc);
	g_assert_cmpuint(svc->ports->len, ==, 1);
	g_assert_cmpuint(g_array_index(svc->ports, guint16, 0), ==, 25);
	g_assert_null(svc->interface_address);
	g_assert_cmpstr(svc->channel, ==, "tcp_local");
	g_assert_cmpint(svc->backlog, ==, 50);
	g_assert_cmpstr(svc->pos.file, ==, "(built-in dispatcher.cnf)");
}

static void
test_dump(void)
{
	g_autoptr(ImtaDispatcherCnf) cnf = parse_ok(
		"USER=mail\nMAX_CONNS=20\nDNS_VERIFY_DOMAIN=bl.example\n"
		"[SERVICE=SMTP]\nPORT=25,587\nDEBUG=-1\nPARAMETER=CHANNEL=tcp_local\n"
		"[SERVICE=OFF]\nPORT=0\n");
	g_autoptr(ImtaDispatcherCnf) again = NULL;
	g_autoptr(GString) out = g_string_new(NULL);
	g_autoptr(GString) out2 = g_string_new(NULL);
	g_autoptr(GError) error = NULL;
	const char *body;

	imta_dispatcher_cnf_dump(cnf, out);
	g_assert_true(g_str_has_prefix(out->str, "! dispatcher.cnf: dispatcher.cnf\nUSER=mail\n"
				       "! PORT is not set\nINTERFACE_ADDRESS=\n"));
	g_assert_nonnull(strstr(out->str, "\n! BACKLOG is computed per service\n"));
	g_assert_nonnull(strstr(out->str, "\n[SERVICE=SMTP]\nPORT=25,587\nINTERFACE_ADDRESS=\n"));
	g_assert_nonnull(strstr(out->str, "\nBACKLOG=100\nIDENT=0\nDNS_VERIFY_DOMAIN=bl.example\n"));
	g_assert_nonnull(strstr(out->str, "\nDEBUG=16%FFFFFFFF\n"));
	g_assert_nonnull(strstr(out->str, "\n[SERVICE=OFF]\nPORT=0\n"));
	/* The dump is itself a valid dispatcher.cnf with the same meaning. */
	body = strchr(out->str, '\n') + 1;
	again = imta_dispatcher_cnf_parse_text("dump", body, strlen(body), NULL, &error);
	g_assert_no_error(error);
	imta_dispatcher_cnf_dump(again, out2);
	g_assert_cmpstr(strchr(out2->str, '\n'), ==, strchr(out->str, '\n'));
}

/* A file of the source tree (make check sets G_TEST_SRCDIR to tests/). */
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
	g_autofree char *path = source_file("conf/dispatcher.cnf");
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaDispatcherCnf) cnf = NULL;
	const ImtaDispatcherService *smtp, *submit;

	if (path == NULL || !g_file_test(path, G_FILE_TEST_EXISTS)) {
		g_test_skip("G_TEST_SRCDIR not set");
		return;
	}
	cnf = imta_dispatcher_cnf_load(path, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(cnf->warnings->len, ==, 0);
	smtp = imta_dispatcher_cnf_service(cnf, "SMTP");
	submit = imta_dispatcher_cnf_service(cnf, "SMTP_SUBMIT");
	g_assert_nonnull(smtp);
	g_assert_nonnull(submit);
	g_assert_cmpuint(g_array_index(smtp->ports, guint16, 0), ==, 2525);
	g_assert_cmpstr(smtp->interface_address, ==, "127.0.0.1");
	g_assert_cmpstr(smtp->channel, ==, "tcp_local");
	g_assert_cmpint(smtp->min_procs, ==, 0);
	g_assert_cmpint(smtp->max_procs, ==, 5);
	g_assert_cmpint(smtp->min_conns, ==, 5);
	g_assert_cmpint(smtp->max_conns, ==, 20);
	g_assert_cmpint(smtp->max_life_time, ==, 86400);
	g_assert_cmpint(smtp->max_life_conns, ==, 100);
	g_assert_cmpint(smtp->max_shutdown, ==, 2);
	g_assert_cmpuint(g_array_index(submit->ports, guint16, 0), ==, 2587);
	g_assert_cmpstr(submit->channel, ==, "tcp_submit");
	g_assert_cmpstr(submit->interface_address, ==, "127.0.0.1");
}

static void
test_man_page(void)
{
	g_autofree char *path = source_file("docs/man/dispatcher.cnf.5");
	g_autofree char *text = NULL;

	if (path == NULL || !g_file_test(path, G_FILE_TEST_EXISTS)) {
		g_test_skip("G_TEST_SRCDIR not set");
		return;
	}
	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	for (gsize i = 0; i < imta_dispatcher_n_options; i++) {
		g_autofree char *entry = g_strdup_printf("\n.B %s\n",
							 imta_dispatcher_options[i].name);

		g_test_message("%s", imta_dispatcher_options[i].name);
		g_assert_nonnull(strstr(text, entry));
	}
	for (gsize i = 0; i < imta_dispatcher_n_global_options; i++) {
		g_autofree char *entry = g_strdup_printf("\n.B %s\n",
							 imta_dispatcher_global_options[i].name);

		g_assert_nonnull(strstr(text, entry));
	}
}

static void
test_load_errors(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaDispatcherCnf) cnf = imta_dispatcher_cnf_load("/nonexistent/dispatcher.cnf",
								    NULL, &error);
	g_autofree char *dir = g_dir_make_tmp("test-dispatcher-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "dispatcher.cnf", NULL);
	g_autoptr(GStringChunk) names = g_string_chunk_new(64);
	g_autofree char *expected = NULL;

	g_assert_null(cnf);
	g_assert_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_IO);
	g_clear_error(&error);

	g_assert_true(g_file_set_contents(path, "[SERVICE=SMTP]\nPORT=25\nMAX_CONNS=0\n", -1,
					  NULL));
	cnf = imta_dispatcher_cnf_load(path, names, &error);
	g_assert_null(cnf);
	expected = g_strdup_printf("%s:3:11: expected an integer between 1 and 1000 for MAX_CONNS,"
				   " got \"0\"", path);
	g_assert_cmpstr(error->message, ==, expected);
	g_clear_error(&error);
	g_assert_true(g_file_set_contents(path, "[SERVICE=SMTP]\nPORT=25\n", -1, NULL));
	cnf = imta_dispatcher_cnf_load(path, names, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(cnf->path, ==, path);
	/* Positions point into the caller's chunk. */
	g_assert_cmpstr(((ImtaDispatcherService *)g_ptr_array_index(cnf->services, 0))->pos.file,
			==, path);
	g_assert_null(cnf->own_names);
	g_unlink(path);
	g_rmdir(dir);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/dispatcher-cnf/defaults", test_defaults);
	g_test_add_func("/dispatcher-cnf/values", test_values);
	g_test_add_func("/dispatcher-cnf/fields", test_fields);
	g_test_add_func("/dispatcher-cnf/errors/range", test_range_errors);
	g_test_add_func("/dispatcher-cnf/errors/port", test_port_errors);
	g_test_add_func("/dispatcher-cnf/errors/syntax", test_syntax_errors);
	g_test_add_func("/dispatcher-cnf/errors/cross-checks", test_cross_checks);
	g_test_add_func("/dispatcher-cnf/ports/no-clash", test_no_port_clash);
	g_test_add_func("/dispatcher-cnf/inheritance", test_inheritance);
	g_test_add_func("/dispatcher-cnf/backlog", test_backlog);
	g_test_add_func("/dispatcher-cnf/dns-verify-limit", test_dns_verify_limit);
	g_test_add_func("/dispatcher-cnf/comments", test_comments);
	g_test_add_func("/dispatcher-cnf/warnings", test_warnings);
	g_test_add_func("/dispatcher-cnf/documented-examples", test_documented_examples);
	g_test_add_func("/dispatcher-cnf/builtin", test_builtin);
	g_test_add_func("/dispatcher-cnf/dump", test_dump);
	g_test_add_func("/dispatcher-cnf/shipped", test_shipped);
	g_test_add_func("/dispatcher-cnf/man-page", test_man_page);
	g_test_add_func("/dispatcher-cnf/load", test_load_errors);
	return g_test_run();
}
