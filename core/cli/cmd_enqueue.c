/*
 * cmd_enqueue.c - imsimta enqueue: queue a message read from standard
 * input for the given recipients, routed by the rewrite rules like any
 * other enqueue, and print the queue ids.  An administrator's tool (test
 * messages, re-injecting saved mail); the job controller, when running,
 * is notified and delivers at once.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include <imta/imta.h>
#include "commands.h"

static const char enqueue_help[] =
	"Usage: imsimta enqueue [-from=ADDRESS] [-channel=CH] [-source_channel=CH]\n"
	"                       [-priority=urgent|normal|nonurgent] [-notify=LIST]\n"
	"                       [-ret=full|hdrs] [-envid=ID] ADDRESS... < MESSAGE\n"
	"\n"
	"Queue the message on standard input (RFC 5322 header and body; CRLF line ends\n"
	"become LF) for each ADDRESS.  Each address is rewritten by the rewrite rules\n"
	"of imta.cnf as an envelope recipient, which selects its destination channel;\n"
	"with -channel=CH the addresses are queued to channel CH as given, without\n"
	"rewriting.  The message is on disk when the command succeeds.  One line is\n"
	"printed per queue file written: the queue id, then the file.\n"
	"\n"
	"  -from=ADDRESS         envelope From (default: the invoking user at IMTA_HOSTNAME;\n"
	"                        -from= gives the null path <>)\n"
	"  -source_channel=CH    the channel the message enters by (default l)\n"
	"  -priority=P           urgent, normal (default) or nonurgent\n"
	"  -notify=LIST          DSN NOTIFY of every recipient: NEVER, or a comma-separated\n"
	"                        list of SUCCESS, FAILURE, DELAY (default: not given, which\n"
	"                        means failures and delays)\n"
	"  -ret=full|hdrs        DSN RET: return the whole message or its header in notices\n"
	"  -envid=ID             DSN envelope id, repeated in notices\n"
	"\n"
	"Exit status: 0 queued, 64 usage, 65 an address does not route, 75 the queue\n"
	"could not take the message (nothing was queued), 78 configuration error.\n";

typedef struct {
	const char *from, *channel, *source_channel;
	ImtaPriority priority;
	GPtrArray *addresses;   /* borrowed argv strings */
	guint notify;           /* ImtaNotify bits; 0 = not given */
	ImtaRet ret;
	const char *envid;
} EnqueueOptions;

/* "NEVER" or a list of SUCCESS, FAILURE, DELAY (RFC 3461), any case. */
static gboolean
enqueue_parse_notify(const char *text, guint *notify_r)
{
	static const struct {
		const char *name;
		guint bit;
	} names[] = {
		{ "NEVER", IMTA_NOTIFY_NEVER },
		{ "SUCCESS", IMTA_NOTIFY_SUCCESS },
		{ "FAILURE", IMTA_NOTIFY_FAILURE },
		{ "DELAY", IMTA_NOTIFY_DELAY },
	};
	g_auto(GStrv) words = g_strsplit(text, ",", -1);
	guint notify = 0, i;

	for (guint w = 0; words[w] != NULL; w++) {
		for (i = 0; i < G_N_ELEMENTS(names); i++)
			if (g_ascii_strcasecmp(words[w], names[i].name) == 0)
				break;
		if (i == G_N_ELEMENTS(names) || (notify & names[i].bit))
			return FALSE;
		notify |= names[i].bit;
	}
	if (notify == 0 || ((notify & IMTA_NOTIFY_NEVER) && notify != IMTA_NOTIFY_NEVER))
		return FALSE;
	*notify_r = notify;
	return TRUE;
}

static gboolean
enqueue_parse(int argc, char **argv, EnqueueOptions *opts)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (g_str_has_prefix(arg, "-from="))
			opts->from = arg + strlen("-from=");
		else if (g_str_has_prefix(arg, "-channel="))
			opts->channel = arg + strlen("-channel=");
		else if (g_str_has_prefix(arg, "-source_channel="))
			opts->source_channel = arg + strlen("-source_channel=");
		else if (strcmp(arg, "-priority=urgent") == 0)
			opts->priority = IMTA_PRIORITY_URGENT;
		else if (strcmp(arg, "-priority=normal") == 0)
			opts->priority = IMTA_PRIORITY_NORMAL;
		else if (strcmp(arg, "-priority=nonurgent") == 0)
			opts->priority = IMTA_PRIORITY_NONURGENT;
		else if (g_ascii_strcasecmp(arg, "-ret=full") == 0)
			opts->ret = IMTA_RET_FULL;
		else if (g_ascii_strcasecmp(arg, "-ret=hdrs") == 0)
			opts->ret = IMTA_RET_HDRS;
		else if (g_str_has_prefix(arg, "-envid="))
			opts->envid = arg + strlen("-envid=");
		else if (g_str_has_prefix(arg, "-notify=")) {
			if (!enqueue_parse_notify(arg + strlen("-notify="), &opts->notify)) {
				fprintf(stderr, "imsimta enqueue: expected NEVER or a list of "
					"SUCCESS, FAILURE, DELAY after -notify=, got \"%s\"\n",
					arg + strlen("-notify="));
				return FALSE;
			}
		} else if (arg[0] == '-') {
			fprintf(stderr, "imsimta enqueue: unknown option %s\n", arg);
			return FALSE;
		} else
			g_ptr_array_add(opts->addresses, (gpointer)arg);
	}
	if (opts->addresses->len == 0) {
		fprintf(stderr, "imsimta enqueue: expected at least one recipient address\n");
		return FALSE;
	}
	return TRUE;
}

/* Route and add one recipient; returns an exit status (0 = added). */
static int
enqueue_add(const ImtaConfig *config, const EnqueueOptions *opts, ImtaEnqueue *enq,
	    const char *address)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *orcpt = g_strdup_printf("rfc822;%s", address);
	ImtaRouteContext ctx = { config, opts->source_channel, NULL };

	if (opts->channel != NULL) {
		const ImtaChannel *channel = imta_cnf_channel_by_name(config->cnf, opts->channel);

		if (!imta_enqueue_add_recipient(enq, channel, address, orcpt, opts->notify,
						&error)) {
			fprintf(stderr, "imsimta enqueue: %s: %s\n", address, error->message);
			return EXIT_DATAERR;
		}
		return 0;
	}
	if (!imta_route_enqueue_recipient(&ctx, enq, address, orcpt, opts->notify, NULL,
					  &error)) {
		fprintf(stderr, "imsimta enqueue: %s: %s\n", address, error->message);
		return imta_route_error_is_temporary(error) ? EXIT_TEMPFAIL : EXIT_DATAERR;
	}
	return 0;
}

/* Copy standard input into the enqueue, CRLF -> LF (a CR split from its
 * LF by a read boundary is carried over). */
static gboolean
enqueue_copy_stdin(ImtaEnqueue *enq, GError **error)
{
	char in[65536], out[65536];
	gboolean pending_cr = FALSE;
	size_t n;

	while ((n = fread(in, 1, sizeof in, stdin)) > 0) {
		gsize o = 0;

		for (size_t i = 0; i < n; i++) {
			if (pending_cr && in[i] != '\n')
				out[o++] = '\r';
			pending_cr = in[i] == '\r';
			if (!pending_cr)
				out[o++] = in[i];
			if (o >= sizeof out - 1) {
				if (!imta_enqueue_write(enq, out, o, error))
					return FALSE;
				o = 0;
			}
		}
		if (o > 0 && !imta_enqueue_write(enq, out, o, error))
			return FALSE;
	}
	if (ferror(stdin)) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
			    "reading standard input: %s", g_strerror(errno));
		return FALSE;
	}
	return !pending_cr || imta_enqueue_write(enq, "\r", 1, error);
}

static char *
enqueue_default_from(const CliGlobal *global, const ImtaConfig *config)
{
	const char *host = config->tailor->hostname != NULL ? config->tailor->hostname
							    : g_get_host_name();

	return g_strdup_printf("%s@%s", global->user, host);
}

int
cli_enqueue(const CliGlobal *global, int argc, char **argv)
{
	g_autoptr(GPtrArray) addresses = g_ptr_array_new();
	EnqueueOptions opts = { NULL, NULL, "l", IMTA_PRIORITY_NORMAL, addresses, 0,
				IMTA_RET_DEFAULT, NULL };
	g_autoptr(ImtaConfig) config = NULL;
	g_autoptr(ImtaQueue) queue = NULL;
	g_autoptr(ImtaEnqueue) enq = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *from = NULL;
	const char *const *files;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-help") == 0) {
			fputs(enqueue_help, stdout);
			return 0;
		}
	if (!enqueue_parse(argc, argv, &opts))
		return EXIT_USAGE;
	config = cli_load_config(global, IMTA_CONFIG_LOAD_PLUGINS | IMTA_CONFIG_OPEN_DIRECTORY);
	if (config == NULL)
		return EXIT_CONFIG;
	if (opts.channel != NULL && imta_cnf_channel_by_name(config->cnf, opts.channel) == NULL) {
		fprintf(stderr, "imsimta enqueue: no channel %s in %s\n", opts.channel,
			config->cnf->path);
		return EXIT_USAGE;
	}
	if (imta_cnf_channel_by_name(config->cnf, opts.source_channel) == NULL) {
		fprintf(stderr, "imsimta enqueue: no channel %s in %s\n", opts.source_channel,
			config->cnf->path);
		return EXIT_USAGE;
	}
	queue = imta_route_open_queue(config, &error);
	if (queue == NULL) {
		fprintf(stderr, "imsimta enqueue: %s\n", error->message);
		return EXIT_TEMPFAIL;
	}
	from = opts.from != NULL ? g_strdup(opts.from) : enqueue_default_from(global, config);
	enq = imta_enqueue_new(queue, opts.source_channel, from);
	imta_enqueue_set_priority(enq, opts.priority);
	imta_enqueue_set_ret(enq, opts.ret);
	if (opts.envid != NULL && opts.envid[0] != '\0')
		imta_enqueue_set_envid(enq, opts.envid);
	for (guint i = 0; i < addresses->len; i++) {
		int status = enqueue_add(config, &opts, enq, addresses->pdata[i]);

		if (status != 0)
			return status;
	}
	if (!enqueue_copy_stdin(enq, &error) || !imta_enqueue_commit(enq, &error)) {
		fprintf(stderr, "imsimta enqueue: nothing queued: %s\n", error->message);
		return EXIT_TEMPFAIL;
	}
	files = imta_enqueue_files(enq);
	for (guint i = 0; files != NULL && files[i] != NULL; i++) {
		g_autofree char *base = g_path_get_basename(files[i]);
		char id[IMTA_QUEUE_ID_LENGTH + 1];
		guint attempts;
		gboolean held;

		if (!imta_queue_parse_name(base, &attempts, id, &held))
			g_strlcpy(id, "?", sizeof id);
		printf("%s %s\n", id, files[i]);
	}
	return 0;
}
