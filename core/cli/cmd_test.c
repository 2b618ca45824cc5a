/*
 * cmd_test.c - imsimta test: try routing decisions offline.
 *
 *   imsimta test -rewrite [-source_channel=CH] [-header] [-backward] [ADDRESS...]
 *   imsimta test -mapping -table=NAME [STRING...]
 *   imsimta test -match PATTERN STRING
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
#include "commands.h"

typedef enum { TEST_NONE, TEST_REWRITE, TEST_MAPPING, TEST_MATCH } TestMode;

typedef struct {
	TestMode mode;
	const char *source_channel;
	const char *table;
	gboolean header, backward;
	GPtrArray *inputs;   /* borrowed argv strings */
} TestOptions;

static const char test_help[] =
	"Usage: imsimta test -rewrite [-source_channel=CH] [-header] [-backward] [ADDRESS...]\n"
	"       imsimta test -mapping -table=NAME [STRING...]\n"
	"       imsimta test -match PATTERN STRING\n"
	"\n"
	"-rewrite   run each address through the rewrite rules: every probe and rule\n"
	"           tried, the rewritten address, and the destination channel.\n"
	"           -source_channel=CH  the channel doing the rewriting (default l)\n"
	"           -header             a header address ($B) instead of an envelope one ($E)\n"
	"           -backward           a From-like address ($R) instead of a To-like one ($F)\n"
	"-mapping   map each string through mapping table NAME and show the result\n"
	"           and the flags it set.\n"
	"-match     show what each wildcard of PATTERN matched in STRING.\n"
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
			fprintf(stderr, "imsimta test: expected -rewrite, -mapping or -match\n");
		fputs(test_help, stderr);
		return EXIT_USAGE;
	}
	if (opts.mode == TEST_MATCH)
		return test_match(&opts);
	if (opts.mode == TEST_MAPPING && opts.table == NULL) {
		fprintf(stderr, "imsimta test -mapping: expected -table=NAME\n");
		return EXIT_USAGE;
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
