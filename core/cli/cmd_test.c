/*
 * cmd_test.c - imsimta test: try routing decisions offline, and the DNS
 * lookups of the SMTP server and client as they would be made.
 *
 *   imsimta test -rewrite [-source_channel=CH] [-header] [-backward] [ADDRESS...]
 *   imsimta test -mapping -table=NAME [STRING...]
 *   imsimta test -match PATTERN STRING
 *   imsimta test -dns NAME [-type=a|mx|ptr]
 *   imsimta test -dnsbl IP ZONE [ZONE...]
 *
 * Options keep the single-dash spelling administrators know from the
 * original product, so they are parsed here rather than by GOption.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include <imta/imta.h>
#include <imta/dns.h>
#include "commands.h"

typedef enum { TEST_NONE, TEST_REWRITE, TEST_MAPPING, TEST_MATCH, TEST_DNS, TEST_DNSBL } TestMode;

typedef struct {
	TestMode mode;
	const char *source_channel;
	const char *table;
	const char *type;    /* -dns: a, mx or ptr */
	gboolean header, backward;
	GPtrArray *inputs;   /* borrowed argv strings */
} TestOptions;

static const char test_help[] =
	"Usage: imsimta test -rewrite [-source_channel=CH] [-header] [-backward] [ADDRESS...]\n"
	"       imsimta test -mapping -table=NAME [STRING...]\n"
	"       imsimta test -match PATTERN STRING\n"
	"       imsimta test -dns NAME [-type=a|mx|ptr]\n"
	"       imsimta test -dnsbl IP ZONE [ZONE...]\n"
	"\n"
	"-rewrite   run each address through the rewrite rules: every probe and rule\n"
	"           tried, the rewritten address, and the destination channel.\n"
	"           -source_channel=CH  the channel doing the rewriting (default l)\n"
	"           -header             a header address ($B) instead of an envelope one ($E)\n"
	"           -backward           a From-like address ($R) instead of a To-like one ($F)\n"
	"-mapping   map each string through mapping table NAME and show the result\n"
	"           and the flags it set.\n"
	"-match     show what each wildcard of PATTERN matched in STRING.\n"
	"-dns       look NAME up through the name servers of option.dat DNS_SERVERS\n"
	"           (else /etc/resolv.conf) with its DNS_TIMEOUT, and print the answers.\n"
	"           -type=a    addresses, A then AAAA (the default for a name)\n"
	"           -type=mx   mail exchangers, by preference\n"
	"           -type=ptr  the name of an IP address (the default for an address)\n"
	"-dnsbl     check IP against each block list ZONE, and give the verdict the\n"
	"           SMTP server would: listed in the first listing zone, in the order given.\n"
	"-dns and -dnsbl exit 0 when found or listed, 1 when not, 75 on a temporary\n"
	"failure (timeout, SERVFAIL, a malformed answer).\n"
	"Without ADDRESS or STRING arguments, lines are read from standard input.\n";

static gboolean
test_parse(int argc, char **argv, TestOptions *opts)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (strcmp(arg, "-rewrite") == 0)
			opts->mode = TEST_REWRITE;
		else if (strcmp(arg, "-mapping") == 0)
			opts->mode = TEST_MAPPING;
		else if (strcmp(arg, "-match") == 0)
			opts->mode = TEST_MATCH;
		else if (strcmp(arg, "-dns") == 0)
			opts->mode = TEST_DNS;
		else if (strcmp(arg, "-dnsbl") == 0)
			opts->mode = TEST_DNSBL;
		else if (g_str_has_prefix(arg, "-type="))
			opts->type = arg + strlen("-type=");
		else if (g_str_has_prefix(arg, "-source_channel="))
			opts->source_channel = arg + strlen("-source_channel=");
		else if (g_str_has_prefix(arg, "-table="))
			opts->table = arg + strlen("-table=");
		else if (strcmp(arg, "-header") == 0)
			opts->header = TRUE;
		else if (strcmp(arg, "-backward") == 0)
			opts->backward = TRUE;
		else if (strcmp(arg, "-debug") == 0)
			; /* the trace is always shown */
		else if (arg[0] == '-' && arg[1] != '\0') {
			fprintf(stderr, "imsimta test: unknown option %s\n", arg);
			return FALSE;
		} else
			g_ptr_array_add(opts->inputs, (gpointer)arg);
	}
	return TRUE;
}

/* Feed each argument, or each line of stdin, to `fn`; returns how many failed. */
static guint
test_each_input(const TestOptions *opts, const char *prompt,
		gboolean (*fn)(const ImtaConfig *, const TestOptions *, const char *),
		const ImtaConfig *config)
{
	char line[4096];
	guint failed = 0;
	gboolean tty = isatty(STDIN_FILENO);

	if (opts->inputs->len > 0) {
		for (guint i = 0; i < opts->inputs->len; i++)
			failed += fn(config, opts, opts->inputs->pdata[i]) ? 0 : 1;
		return failed;
	}
	for (;;) {
		if (tty) {
			printf("%s: ", prompt);
			fflush(stdout);
		}
		if (fgets(line, sizeof line, stdin) == NULL)
			break;
		g_strchomp(line);
		if (line[0] == '\0')
			continue;
		failed += fn(config, opts, line) ? 0 : 1;
	}
	return failed;
}

static void
print_indented(const char *text)
{
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

	for (guint i = 0; lines[i] != NULL; i++)
		if (lines[i][0] != '\0')
			printf("    %s\n", lines[i]);
}

static void
print_channel(const ImtaChannel *channel)
{
	g_autoptr(GString) kw = g_string_new(NULL);

	for (guint i = 0; i < channel->keywords->len; i++) {
		const ImtaKeywordUse *use = channel->keywords->pdata[i];

		g_string_append_printf(kw, "%s%s", kw->len > 0 ? " " : "", use->name);
		for (guint a = 0; use->args[a] != NULL; a++)
			g_string_append_printf(kw, " %s", use->args[a]);
	}
	printf("  Channel:        %s\n", channel->name);
	printf("  Official host:  %s\n", imta_channel_official_host(channel));
	printf("  Plugin:         %s\n", channel->plugin != NULL ? channel->plugin->name : "(none)");
	printf("  Keywords:       %s\n", kw->len > 0 ? kw->str : "(none)");
}

static gboolean
test_rewrite_one(const ImtaConfig *config, const TestOptions *opts, const char *address)
{
	g_autoptr(GString) trace = g_string_new(NULL);
	ImtaRewriteContext ctx = {
		.cnf = config->cnf,
		.mappings = config->mappings,
		.directory = config->directory,
		.source_channel = opts->source_channel,
		.flags = (opts->header ? 0 : IMTA_REWRITE_ENVELOPE) |
			 (opts->backward ? 0 : IMTA_REWRITE_FORWARD),
		.trace = trace,
	};
	ImtaRewriteResult result = { 0 };
	g_autoptr(GError) error = NULL;
	gboolean ok = imta_rewrite_address(&ctx, address, &result, &error);

	printf("Address:          %s\n", address);
	printf("  Rules tried:\n");
	print_indented(trace->str);
	if (!ok) {
		printf("  Error:          %s\n\n", error->message);
		return FALSE;
	}
	printf("  Rewritten:      %s\n", result.address);
	printf("  Routing host:   %s\n", result.routing_host);
	print_channel(result.channel);
	printf("  Submitted:      %s %s\n\n", result.channel->name, result.address);
	imta_rewrite_result_clear(&result);
	return TRUE;
}

static gboolean
test_mapping_one(const ImtaConfig *config, const TestOptions *opts, const char *input)
{
	static const struct { guint flag; const char *name; } flags[] = {
		{ IMTA_MAP_FLAG_Y, "$Y" }, { IMTA_MAP_FLAG_N, "$N" }, { IMTA_MAP_FLAG_B, "$B" },
		{ IMTA_MAP_FLAG_H, "$H" }, { IMTA_MAP_FLAG_V, "$V" }, { IMTA_MAP_FLAG_D, "$D" },
		{ IMTA_MAP_FLAG_J, "$J" }, { IMTA_MAP_FLAG_K, "$K" }, { IMTA_MAP_FLAG_LOG_MATCH, "$<" },
		{ IMTA_MAP_FLAG_LOG_DENY, "$>" }, { IMTA_MAP_FLAG_NO_VACATION, "$!" },
	};
	ImtaMappingResult result = { 0 };
	gboolean matched = imta_mappings_apply_named(config->mappings, opts->table, input, &result);

	printf("Input string:  %s\n", input);
	if (!matched) {
		printf("  No match in table %s\n\n", opts->table);
		imta_mapping_result_clear(&result);
		return FALSE;
	}
	printf("  Output string: %s\n  Flags set:    ", result.result);
	for (gsize i = 0; i < G_N_ELEMENTS(flags); i++)
		if (result.flags & flags[i].flag)
			printf(" %s", flags[i].name);
	printf("\n\n");
	imta_mapping_result_clear(&result);
	return TRUE;
}

static int
test_match(const TestOptions *opts)
{
	g_auto(GStrv) captures = NULL;

	if (opts->inputs->len != 2) {
		fprintf(stderr, "imsimta test -match: expected PATTERN and STRING\n");
		return EXIT_USAGE;
	}
	captures = imta_mapping_match_pattern(opts->inputs->pdata[0], opts->inputs->pdata[1]);
	if (captures == NULL) {
		printf("No match\n");
		return EXIT_DATAERR;
	}
	printf("Match\n");
	for (guint i = 0; captures[i] != NULL; i++)
		printf("  $%u = \"%s\"\n", i, captures[i]);
	return 0;
}

/* Exit statuses of -dns and -dnsbl. */
#define TEST_DNS_FOUND 0
#define TEST_DNS_NOT_FOUND 1

static int
test_dns_failure(ImtaDnsStatus status, const GError *error, const char *not_found)
{
	if (status == IMTA_DNS_NOT_FOUND) {
		printf("  %-14s%s\n", not_found, error->message);
		return TEST_DNS_NOT_FOUND;
	}
	printf("  %-14s%s\n", "Failed:", error->message);
	return EXIT_TEMPFAIL;
}

static ImtaResolver *
test_resolver(const ImtaConfig *config)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *servers = NULL;
	ImtaResolver *resolver = imta_resolver_new_from_options(config->options, &error);

	if (resolver == NULL) {
		fprintf(stderr, "imsimta test: %s\n", error->message);
		return NULL;
	}
	servers = imta_resolver_servers_text(resolver);
	printf("  %-14s%s\n", "Name servers:", servers);
	return resolver;
}

static int
test_dns_addresses(ImtaResolver *resolver, const char *name)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) addresses = NULL;
	ImtaDnsStatus status = imta_dns_lookup_addresses(resolver, name, &addresses, &error);

	if (status != IMTA_DNS_OK)
		return test_dns_failure(status, error, "Not found:");
	for (guint i = 0; i < addresses->len; i++)
		printf("  %-14s%s\n", "Answer:", (const char *)addresses->pdata[i]);
	return TEST_DNS_FOUND;
}

static int
test_dns_mx(ImtaResolver *resolver, const char *name)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) records = NULL;
	ImtaDnsStatus status = imta_dns_lookup_mx(resolver, name, &records, &error);

	if (status != IMTA_DNS_OK)
		return test_dns_failure(status, error, "Not found:");
	for (guint i = 0; i < records->len; i++) {
		const ImtaDnsMx *mx = records->pdata[i];

		printf("  %-14s%u %s\n", "Answer:", mx->preference, mx->host);
	}
	return TEST_DNS_FOUND;
}

static int
test_dns_ptr(ImtaResolver *resolver, const char *ip)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *name = NULL;
	ImtaDnsStatus status = imta_dns_lookup_ptr(resolver, ip, &name, &error);

	if (status != IMTA_DNS_OK)
		return test_dns_failure(status, error, "Not found:");
	printf("  %-14s%s\n", "Answer:", name);
	return TEST_DNS_FOUND;
}

static int
test_dns(const ImtaConfig *config, const TestOptions *opts)
{
	g_autoptr(ImtaResolver) resolver = NULL;
	const char *name = opts->inputs->pdata[0];
	const char *type = opts->type;
	g_autofree char *shown = NULL;

	if (type == NULL)
		type = g_hostname_is_ip_address(name) ? "ptr" : "a";
	shown = g_ascii_strcasecmp(type, "a") == 0 ? g_strdup("A/AAAA") : g_ascii_strup(type, -1);
	printf("Query:          %s %s\n", name, shown);
	resolver = test_resolver(config);
	if (resolver == NULL)
		return EXIT_CONFIG;
	if (g_ascii_strcasecmp(type, "mx") == 0)
		return test_dns_mx(resolver, name);
	if (g_ascii_strcasecmp(type, "ptr") == 0)
		return test_dns_ptr(resolver, name);
	return test_dns_addresses(resolver, name);
}

/* One zone's answer; the verdict follows imta_dnsbl_check_zones: the
 * first listing zone wins, a failure counts only when none lists. */
static int
test_dnsbl(const ImtaConfig *config, const TestOptions *opts)
{
	g_autoptr(ImtaResolver) resolver = NULL;
	const char *ip = opts->inputs->pdata[0];
	const char *listed_in = NULL;
	gboolean failed = FALSE;

	printf("Address:        %s\n", ip);
	resolver = test_resolver(config);
	if (resolver == NULL)
		return EXIT_CONFIG;
	for (guint i = 1; i < opts->inputs->len; i++) {
		const char *zone = opts->inputs->pdata[i];
		g_autofree char *query = imta_dnsbl_query_name(ip, zone);
		g_autofree char *answer = NULL;
		g_autoptr(GError) error = NULL;
		ImtaDnsStatus status;

		printf("  %-14s%s\n", "Zone:", zone);
		printf("  %-14s%s\n", "Query:", query != NULL ? query : "(none)");
		status = imta_dnsbl_check(resolver, ip, zone, &answer, &error);
		if (status == IMTA_DNS_OK) {
			printf("  %-14s%s\n", "Listed:", answer);
			if (listed_in == NULL)
				listed_in = zone;
		} else if (test_dns_failure(status, error, "Not listed:") == EXIT_TEMPFAIL) {
			failed = TRUE;
		}
	}
	if (listed_in != NULL) {
		printf("  %-14slisted in %s\n", "Verdict:", listed_in);
		return TEST_DNS_FOUND;
	}
	if (failed) {
		printf("  %-14stemporary failure\n", "Verdict:");
		return EXIT_TEMPFAIL;
	}
	printf("  %-14snot listed\n", "Verdict:");
	return TEST_DNS_NOT_FOUND;
}

/* Check the arguments of -dns and -dnsbl before loading anything. */
static gboolean
test_dns_usage(const TestOptions *opts)
{
	g_autofree char *query = NULL;

	if (opts->mode == TEST_DNS) {
		if (opts->inputs->len != 1) {
			fprintf(stderr, "imsimta test -dns: expected one NAME\n");
			return FALSE;
		}
		if (opts->type != NULL && g_ascii_strcasecmp(opts->type, "a") != 0 &&
		    g_ascii_strcasecmp(opts->type, "mx") != 0 &&
		    g_ascii_strcasecmp(opts->type, "ptr") != 0) {
			fprintf(stderr, "imsimta test -dns: expected -type=a, -type=mx or "
				"-type=ptr, got -type=%s\n", opts->type);
			return FALSE;
		}
		return TRUE;
	}
	if (opts->inputs->len < 2) {
		fprintf(stderr, "imsimta test -dnsbl: expected IP and at least one ZONE\n");
		return FALSE;
	}
	query = imta_dnsbl_query_name(opts->inputs->pdata[0], "zone");
	if (query == NULL) {
		fprintf(stderr, "imsimta test -dnsbl: expected an IP address, got \"%s\"\n",
			(const char *)opts->inputs->pdata[0]);
		return FALSE;
	}
	return TRUE;
}

int
cli_test(const CliGlobal *global, int argc, char **argv)
{
	g_autoptr(GPtrArray) inputs = g_ptr_array_new();
	TestOptions opts = { .inputs = inputs };
	g_autoptr(ImtaConfig) config = NULL;
	guint failed;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(test_help, stdout);
			return 0;
		}
	}
	if (!test_parse(argc, argv, &opts) || opts.mode == TEST_NONE) {
		if (opts.mode == TEST_NONE)
			fprintf(stderr, "imsimta test: expected -rewrite, -mapping, -match, -dns "
				"or -dnsbl\n");
		fputs(test_help, stderr);
		return EXIT_USAGE;
	}
	if (opts.mode == TEST_MATCH)
		return test_match(&opts);
	if ((opts.mode == TEST_DNS || opts.mode == TEST_DNSBL) && !test_dns_usage(&opts))
		return EXIT_USAGE;
	if (opts.mode == TEST_MAPPING && opts.table == NULL) {
		fprintf(stderr, "imsimta test -mapping: expected -table=NAME\n");
		return EXIT_USAGE;
	}
	if (opts.mode == TEST_DNS || opts.mode == TEST_DNSBL) {
		/* Only option.dat matters; plugins and the directory stay closed. */
		config = cli_load_config(global, 0);
		if (config == NULL)
			return EXIT_CONFIG;
		return opts.mode == TEST_DNS ? test_dns(config, &opts) : test_dnsbl(config, &opts);
	}
	config = cli_load_config(global, IMTA_CONFIG_LOAD_PLUGINS | IMTA_CONFIG_OPEN_DIRECTORY);
	if (config == NULL)
		return EXIT_CONFIG;
	if (opts.source_channel != NULL && imta_cnf_channel_by_name(config->cnf, opts.source_channel) == NULL) {
		fprintf(stderr, "imsimta test: no channel named \"%s\"\n", opts.source_channel);
		return EXIT_USAGE;
	}
	if (opts.mode == TEST_REWRITE)
		failed = test_each_input(&opts, "Address", test_rewrite_one, config);
	else
		failed = test_each_input(&opts, "Input string", test_mapping_one, config);
	return failed > 0 ? EXIT_DATAERR : 0;
}
