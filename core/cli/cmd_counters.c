/*
 * cmd_counters.c - the imsimta verbs that ask the running job controller:
 *
 *   imsimta counters [-show]            per-channel counts since it started
 *   imsimta cache -view [CHANNEL]       its state: jobs per pool, messages
 *   imsimta state                       the same as cache -view
 *   imsimta cache -sync                 rescan the queue directories
 *   imsimta cache -flush                empty the workers' directory caches
 *   imsimta submit CHANNEL...           deliver a channel's queue now
 *
 * Each fails with exit 69 and says so when no job controller runs.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <glib.h>

#include <imta/imta.h>
#include <imta/xtext.h>
#include <imta/jc_client.h>
#include "commands.h"

/* Bounds on a reply: one line per channel or pool key. */
#define COUNTERS_MAX_LINES 100000

ImtaJcClient *
cli_jc_connect(const ImtaConfig *config, const char *verb, int *exit_r)
{
	g_autoptr(GError) error = NULL;
	ImtaJcClient *jc = imta_jc_client_connect(config->tailor->run_dir, "admin", NULL,
						  IMTA_JC_DEFAULT_TIMEOUT_MS, &error);

	if (jc != NULL)
		return jc;
	if (g_error_matches(error, IMTA_JC_ERROR, IMTA_JC_ERROR_NOT_RUNNING))
		fprintf(stderr, "imsimta %s: the job controller is not running (no answer on "
			"%s/%s); start it with: imsimta start job_controller\n", verb,
			config->tailor->run_dir, IMTA_JC_SOCKET);
	else
		fprintf(stderr, "imsimta %s: %s\n", verb, error->message);
	*exit_r = EXIT_UNAVAILABLE;
	return NULL;
}

/* Send a request whose reply is a list; prints the problem on failure. */
static GPtrArray *
jc_list(const ImtaConfig *config, const char *verb, const char *request, int *exit_r)
{
	g_autoptr(ImtaJcClient) jc = cli_jc_connect(config, verb, exit_r);
	g_autoptr(GError) error = NULL;
	GPtrArray *lines;

	if (jc == NULL)
		return NULL;
	lines = imta_jc_client_request_list(jc, request, COUNTERS_MAX_LINES, &error);
	if (lines == NULL) {
		fprintf(stderr, "imsimta %s: %s: %s\n", verb, request, error->message);
		*exit_r = EXIT_UNAVAILABLE;
	}
	return lines;
}

static char *
jc_field(const char *xtext)
{
	char *text = imta_xtext_decode(xtext, -1, NULL, NULL);

	return text != NULL ? text : g_strdup(xtext);
}

/* ---- counters --------------------------------------------------------- */

static const char counters_help[] =
	"Usage: imsimta counters [-show]\n"
	"\n"
	"Show, per channel, what the running job controller counted since it started:\n"
	"messages enqueued, and recipients delivered, deferred (a temporary failure,\n"
	"retried later) and failed (returned to the sender).  The counters live in\n"
	"the job controller and start from zero when it starts; -create, -clear and\n"
	"-delete of other implementations have nothing to do here.\n"
	"Exit status: 0, 64 usage, 69 no job controller running, 78 configuration error.\n";

int
cli_counters(const CliGlobal *global, int argc, char **argv)
{
	g_autoptr(ImtaConfig) config = NULL;
	g_autoptr(GPtrArray) lines = NULL;
	int status = 0;
	guint64 totals[4] = { 0 };

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-help") == 0) {
			fputs(counters_help, stdout);
			return 0;
		}
		if (strcmp(argv[i], "-show") == 0)
			continue;
		if (strcmp(argv[i], "-create") == 0 || strcmp(argv[i], "-clear") == 0 ||
		    strcmp(argv[i], "-delete") == 0)
			fprintf(stderr, "imsimta counters: %s is not needed: the counters live in "
				"the job controller and restart from zero with it\n", argv[i]);
		else
			fprintf(stderr, "imsimta counters: unknown argument %s\n", argv[i]);
		return EXIT_USAGE;
	}
	config = cli_load_config(global, 0);
	if (config == NULL)
		return EXIT_CONFIG;
	lines = jc_list(config, "counters", "COUNTERS", &status);
	if (lines == NULL)
		return status;
	printf("%-24s %10s %10s %10s %10s\n", "Channel", "Enqueued", "Delivered", "Deferred",
	       "Failed");
	printf("%-24s %10s %10s %10s %10s\n", "", "messages", "rcpts", "rcpts", "rcpts");
	for (guint i = 0; i < lines->len; i++) {
		g_auto(GStrv) f = g_strsplit(lines->pdata[i], " ", -1);
		g_autofree char *channel = NULL;
		guint64 values[4];
		gboolean ok = g_strv_length(f) == 5;

		for (guint k = 0; ok && k < 4; k++)
			ok = g_ascii_string_to_unsigned(f[k + 1], 10, 0, G_MAXUINT64, &values[k],
							NULL);
		if (!ok) {
			fprintf(stderr, "imsimta counters: unexpected line from the job controller: "
				"\"%s\"\n", (char *)lines->pdata[i]);
			status = EXIT_SOFTWARE;
			continue;
		}
		channel = jc_field(f[0]);
		printf("%-24s %10" G_GUINT64_FORMAT " %10" G_GUINT64_FORMAT " %10" G_GUINT64_FORMAT
		       " %10" G_GUINT64_FORMAT "\n", channel, values[0], values[1], values[2],
		       values[3]);
		for (guint k = 0; k < 4; k++)
			totals[k] += values[k];
	}
	printf("%-24s %10" G_GUINT64_FORMAT " %10" G_GUINT64_FORMAT " %10" G_GUINT64_FORMAT
	       " %10" G_GUINT64_FORMAT "\n", "Total", totals[0], totals[1], totals[2], totals[3]);
	return status;
}

/* ---- state / cache ------------------------------------------------------ */

/* "pool.NAME.ATTR" -> NAME and ATTR for prefix "pool."; the attribute is
 * after the last dot, so names may hold dots. */
static gboolean
state_split_key(const char *key, const char *prefix, char **name_r, char **attr_r)
{
	const char *rest, *dot;

	if (!g_str_has_prefix(key, prefix))
		return FALSE;
	rest = key + strlen(prefix);
	dot = strrchr(rest, '.');
	if (dot == NULL || dot == rest || dot[1] == '\0')
		return FALSE;
	*name_r = g_strndup(rest, (gsize)(dot - rest));
	*attr_r = g_strdup(dot + 1);
	return TRUE;
}

/* Rows NAME -> (attr -> value) in first-seen order, printed as a table. */
typedef struct {
	GPtrArray *names;      /* char *, owned */
	GPtrArray *attrs;      /* char *, owned */
	GHashTable *cells;     /* "name\nattr" -> value, owned */
} StateTable;

static void
state_table_init(StateTable *table)
{
	table->names = g_ptr_array_new_with_free_func(g_free);
	table->attrs = g_ptr_array_new_with_free_func(g_free);
	table->cells = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
}

static void
state_table_clear(StateTable *table)
{
	g_ptr_array_unref(table->names);
	g_ptr_array_unref(table->attrs);
	g_hash_table_unref(table->cells);
}

static gboolean
strv_array_has(GPtrArray *array, const char *text)
{
	for (guint i = 0; i < array->len; i++)
		if (strcmp(array->pdata[i], text) == 0)
			return TRUE;
	return FALSE;
}

static void
state_table_add(StateTable *table, char *name, char *attr, const char *value)
{
	g_hash_table_replace(table->cells, g_strdup_printf("%s\n%s", name, attr), jc_field(value));
	if (!strv_array_has(table->names, name))
		g_ptr_array_add(table->names, name);
	else
		g_free(name);
	if (!strv_array_has(table->attrs, attr))
		g_ptr_array_add(table->attrs, attr);
	else
		g_free(attr);
}

static void
state_table_print(const StateTable *table, const char *title)
{
	if (table->names->len == 0)
		return;
	printf("\n%-24s", title);
	for (guint a = 0; a < table->attrs->len; a++)
		printf(" %12s", (char *)table->attrs->pdata[a]);
	printf("\n");
	for (guint n = 0; n < table->names->len; n++) {
		printf("%-24s", (char *)table->names->pdata[n]);
		for (guint a = 0; a < table->attrs->len; a++) {
			g_autofree char *key = g_strdup_printf("%s\n%s", (char *)table->names->pdata[n],
							       (char *)table->attrs->pdata[a]);
			const char *value = g_hash_table_lookup(table->cells, key);

			printf(" %12s", value != NULL ? value : "-");
		}
		printf("\n");
	}
}

static int
state_view(const ImtaConfig *config, const char *verb, const char *channel)
{
	g_autoptr(GPtrArray) lines = NULL;
	StateTable pools, channels;
	int status = 0;

	lines = jc_list(config, verb, "STATE", &status);
	if (lines == NULL)
		return status;
	state_table_init(&pools);
	state_table_init(&channels);
	printf("Job controller state\n");
	for (guint i = 0; i < lines->len; i++) {
		const char *line = lines->pdata[i];
		const char *space = strchr(line, ' ');
		g_autofree char *key = space != NULL ? g_strndup(line, (gsize)(space - line))
						     : g_strdup(line);
		const char *value = space != NULL ? space + 1 : "";
		char *name, *attr;

		if (state_split_key(key, "pool.", &name, &attr)) {
			state_table_add(&pools, name, attr, value);
		} else if (state_split_key(key, "channel.", &name, &attr)) {
			if (channel != NULL && strcmp(channel, name) != 0) {
				g_free(name);
				g_free(attr);
				continue;
			}
			state_table_add(&channels, name, attr, value);
		} else {
			g_autofree char *text = jc_field(value);

			printf("  %-22s %s\n", key, text);
		}
	}
	state_table_print(&pools, "Pool");
	state_table_print(&channels, "Channel");
	if (channel != NULL && channels.names->len == 0)
		printf("\nChannel %s: nothing queued or running\n", channel);
	state_table_clear(&pools);
	state_table_clear(&channels);
	return 0;
}

static const char state_help[] =
	"Usage: imsimta state [CHANNEL]\n"
	"       imsimta cache -view [CHANNEL]\n"
	"       imsimta cache -sync\n"
	"       imsimta cache -flush\n"
	"\n"
	"-view (and state) show the running job controller's state: messages it\n"
	"tracks, delayed and in delivery, its message limit, the jobs of each pool\n"
	"against the pool's limit, and per channel the messages queued and jobs\n"
	"running.  With CHANNEL, only that channel's row.\n"
	"-sync makes it rescan the queue directories (files it does not track yet,\n"
	"for instance copied in by hand, are picked up).\n"
	"-flush empties the directory caches of the running dispatcher's workers\n"
	"(it sends the dispatcher SIGHUP, which also reopens the logs).  imsimta\n"
	"commands and master jobs read the directory afresh each time they run.\n"
	"Exit status: 0, 64 usage, 69 no job controller running, 78 configuration error.\n";

/* The workers hold the only long-lived directory caches; the dispatcher
 * passes SIGHUP on to them. */
static int
state_flush(const ImtaConfig *config)
{
	pid_t pid = cli_dispatcher_pid(config);

	if (pid == 0) {
		printf("No dispatcher is running: no directory cache to flush.\n");
		return 0;
	}
	if (kill(pid, SIGHUP) < 0) {
		fprintf(stderr, "imsimta cache: cannot signal the dispatcher (pid %d): %s\n",
			(int)pid, g_strerror(errno));
		return EXIT_UNAVAILABLE;
	}
	printf("The dispatcher's workers are flushing their directory caches.\n");
	return 0;
}

int
cli_state(const CliGlobal *global, int argc, char **argv)
{
	g_autoptr(ImtaConfig) config = NULL;
	gboolean is_cache = strcmp(argv[0], "cache") == 0;
	gboolean view = !is_cache, sync = FALSE, flush = FALSE;
	const char *channel = NULL;
	int status = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-help") == 0) {
			fputs(state_help, stdout);
			return 0;
		}
		if (is_cache && strcmp(argv[i], "-view") == 0)
			view = TRUE;
		else if (is_cache && strcmp(argv[i], "-sync") == 0)
			sync = TRUE;
		else if (is_cache && strcmp(argv[i], "-flush") == 0)
			flush = TRUE;
		else if (is_cache && g_str_has_prefix(argv[i], "-change")) {
			fprintf(stderr, "imsimta cache: -change is not supported: edit "
				"job_controller.cnf or imta.cnf and run imsimta restart "
				"job_controller\n");
			return EXIT_USAGE;
		} else if (argv[i][0] != '-' && channel == NULL)
			channel = argv[i];
		else {
			fprintf(stderr, "imsimta %s: unexpected argument %s\n", argv[0], argv[i]);
			return EXIT_USAGE;
		}
	}
	if ((int)view + (int)sync + (int)flush != 1) {
		fprintf(stderr, "imsimta cache: expected -view [CHANNEL], -sync or -flush\n");
		return EXIT_USAGE;
	}
	config = cli_load_config(global, 0);
	if (config == NULL)
		return EXIT_CONFIG;
	if (flush)
		return state_flush(config);
	if (channel != NULL && imta_cnf_channel_by_name(config->cnf, channel) == NULL) {
		fprintf(stderr, "imsimta %s: no channel %s in %s\n", argv[0], channel,
			config->cnf->path);
		return EXIT_USAGE;
	}
	if (sync) {
		g_autoptr(ImtaJcClient) jc = cli_jc_connect(config, argv[0], &status);
		g_autoptr(GError) error = NULL;
		g_autofree char *reply = NULL;

		if (jc == NULL)
			return status;
		reply = imta_jc_client_request(jc, "REBUILD", &error);
		if (reply == NULL) {
			fprintf(stderr, "imsimta cache: REBUILD: %s\n", error->message);
			return EXIT_UNAVAILABLE;
		}
		printf("The job controller is rescanning the queue.\n");
		return 0;
	}
	return state_view(config, argv[0], channel);
}

/* ---- submit --------------------------------------------------------------- */

static const char submit_help[] =
	"Usage: imsimta submit CHANNEL...\n"
	"\n"
	"Ask the running job controller to deliver the queue of each CHANNEL now:\n"
	"every message of the channel becomes due, whatever its retry time, and a\n"
	"master job is started if none runs.  Prints how many messages were made due.\n"
	"Exit status: 0, 64 usage, 69 no job controller running, 78 configuration error.\n";

int
cli_submit(const CliGlobal *global, int argc, char **argv)
{
	g_autoptr(ImtaConfig) config = NULL;
	g_autoptr(ImtaJcClient) jc = NULL;
	int status = 0;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-help") == 0) {
			fputs(submit_help, stdout);
			return 0;
		}
	if (argc < 2) {
		fprintf(stderr, "imsimta submit: expected channel names\n");
		return EXIT_USAGE;
	}
	config = cli_load_config(global, 0);
	if (config == NULL)
		return EXIT_CONFIG;
	for (int i = 1; i < argc; i++)
		if (imta_cnf_channel_by_name(config->cnf, argv[i]) == NULL) {
			fprintf(stderr, "imsimta submit: no channel %s in %s\n", argv[i],
				config->cnf->path);
			return EXIT_USAGE;
		}
	jc = cli_jc_connect(config, "submit", &status);
	if (jc == NULL)
		return status;
	for (int i = 1; i < argc; i++) {
		g_autofree char *name = imta_xtext_encode(argv[i], -1);
		g_autofree char *line = g_strdup_printf("RETRY %s", name);
		g_autoptr(GError) error = NULL;
		g_autofree char *reply = imta_jc_client_request(jc, line, &error);

		if (reply == NULL) {
			fprintf(stderr, "imsimta submit: %s: %s\n", argv[i], error->message);
			status = EXIT_UNAVAILABLE;
			continue;
		}
		if (!g_str_has_prefix(reply, "OK ")) {
			fprintf(stderr, "imsimta submit: %s: unexpected reply \"%s\"\n", argv[i],
				reply);
			status = EXIT_SOFTWARE;
			continue;
		}
		printf("%s: %s message%s due now\n", argv[i], reply + 3,
		       strcmp(reply + 3, "1") == 0 ? "" : "s");
	}
	return status;
}
