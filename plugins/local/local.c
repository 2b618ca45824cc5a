/*
 * local.c - the local channel `l`: addresses of local domains are looked
 * up in the directory and expanded, through the entry's delivery options
 * (option.dat DELIVERY_OPTIONS), into the addresses that really receive
 * the mail: the store (alice@ims-ms-daemon), a group's members, forwarding
 * addresses.  Each message becomes one new message, queued with the same
 * envelope and content for every address its recipients expanded to;
 * only once that is durable are the recipients reported delivered.
 *
 * Expansion nests: a produced address that routes to this channel again
 * (a group member of a local domain, a forward to a local user) is
 * expanded in the same pass, each address once, at most LOCAL_MAX_DEPTH
 * levels deep; deeper nesting is refused as an alias loop.  A nested
 * address whose own expansion fails is queued to this channel by itself,
 * so that it is retried, or returned to the sender, on its own.
 *
 * The directory decides where each entry's mail goes
 * (imta_directory_delivery_addresses): a held user's to the hold channel
 * ("@hold-daemon:address", kept there until `imsimta qm reprocess
 * -channel=hold`), an entry whose mailHost is another system to that
 * system ("@mailhost:address", which the rewrite rules send on by SMTP or
 * LMTP), everything else through the delivery options.
 */
#include "config.h"

#include <string.h>
#include <gio/gio.h>

#include <imta/imta.h>

#define LOCAL_MAX_DEPTH 5
/* Addresses one recipient may expand to. */
#define LOCAL_MAX_TARGETS 10000
/* Longest "expanded to ..." list written in a diagnostic. */
#define LOCAL_MAX_DIAGNOSTIC 400

static const ImtaPluginKeyword local_keywords[] = {
	{ "l", 0, 0, "the local channel: expand local addresses through the directory" },
	{ NULL }
};

typedef struct {
	ImtaMasterJob *job;
	const ImtaConfig *config;
	const ImtaChannel *channel;
	ImtaQueue *queue;             /* opened on first use */
} LocalJob;

typedef struct {
	char *address;
	const ImtaChannel *channel;
} LocalTarget;

/* One recipient's expansion. */
typedef struct {
	GPtrArray *targets;           /* LocalTarget * */
	GHashTable *seen;             /* lower-cased addresses expanded or targeted */
	guint cut;                    /* local addresses met again and not re-expanded */
	ImtaOutcome outcome;          /* DELIVERED while all goes well */
	char *diagnostic;             /* for RETRY / FAILED */
} LocalExpansion;

static void
local_target_free(LocalTarget *target)
{
	g_free(target->address);
	g_free(target);
}

static void
local_expansion_init(LocalExpansion *exp)
{
	exp->targets = g_ptr_array_new_with_free_func((GDestroyNotify)local_target_free);
	exp->seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	exp->cut = 0;
	exp->outcome = IMTA_OUTCOME_DELIVERED;
	exp->diagnostic = NULL;
}

static void
local_expansion_clear(LocalExpansion *exp)
{
	g_clear_pointer(&exp->targets, g_ptr_array_unref);
	g_clear_pointer(&exp->seen, g_hash_table_unref);
	g_clear_pointer(&exp->diagnostic, g_free);
}

static gboolean
local_fail(LocalExpansion *exp, ImtaOutcome outcome, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* Record the recipient's failure; returns FALSE to stop the expansion. */
static gboolean
local_fail(LocalExpansion *exp, ImtaOutcome outcome, const char *fmt, ...)
{
	va_list ap;

	exp->outcome = outcome;
	g_free(exp->diagnostic);
	va_start(ap, fmt);
	exp->diagnostic = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	return FALSE;
}

/* TRUE the first time `address` is met in this expansion. */
static gboolean
local_first_seen(LocalExpansion *exp, const char *address)
{
	char *key = g_ascii_strdown(address, -1);

	if (g_hash_table_contains(exp->seen, key)) {
		g_free(key);
		return FALSE;
	}
	g_hash_table_add(exp->seen, key);
	return TRUE;
}

static gboolean
local_add_target(LocalExpansion *exp, const char *address, const ImtaChannel *channel)
{
	LocalTarget *target;

	if (exp->targets->len >= LOCAL_MAX_TARGETS)
		return local_fail(exp, IMTA_OUTCOME_FAILED,
				  "5.2.3 expands to more than %d addresses", LOCAL_MAX_TARGETS);
	target = g_new0(LocalTarget, 1);
	target->address = g_strdup(address);
	target->channel = channel;
	g_ptr_array_add(exp->targets, target);
	return TRUE;
}

static gboolean local_expand(LocalJob *lj, LocalExpansion *exp, const char *address,
			     guint depth);

/* Route one produced address: queue it, or expand it further when it
 * comes back to this channel.  `held`: the address holds a held user's
 * mail, which must never be returned because the hold channel is
 * missing from the configuration; it waits here instead. */
static gboolean
local_route(LocalJob *lj, LocalExpansion *exp, const char *produced, guint depth, gboolean held)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *diagnostic = NULL;
	ImtaRouteContext ctx = { lj->config, lj->channel->name, NULL };
	ImtaRoute route;
	gboolean ok;

	if (!imta_route_address(&ctx, produced, &route, &error)) {
		diagnostic = imta_route_diagnostic(produced, error);
		if (held)
			return local_fail(exp, IMTA_OUTCOME_RETRY,
					  "4.3.5 mail on hold cannot reach the hold channel "
					  "(imta.cnf needs one, imta-directory(5)): %s",
					  diagnostic);
		return local_fail(exp,
				  imta_route_error_is_temporary(error) ? IMTA_OUTCOME_RETRY
								       : IMTA_OUTCOME_FAILED,
				  "%s", diagnostic);
	}
	if (strcmp(route.channel->name, lj->channel->name) != 0) {
		ok = !local_first_seen(exp, route.address) ||
		     local_add_target(exp, route.address, route.channel);
	} else if (depth >= LOCAL_MAX_DEPTH) {
		ok = local_fail(exp, IMTA_OUTCOME_FAILED,
				"5.4.6 alias loop: %s nests more than %d levels deep", produced,
				LOCAL_MAX_DEPTH);
	} else if (!local_first_seen(exp, route.address)) {
		exp->cut++;
		ok = TRUE;
	} else {
		ok = local_expand(lj, exp, route.address, depth + 1);
	}
	imta_route_clear(&route);
	return ok;
}

/* Why mail for an entry with this status cannot be expanded; NULL when
 * it can. */
static const char *
local_status_refusal(ImtaDirUserStatus status, ImtaOutcome *outcome_r)
{
	switch (status) {
	case IMTA_DIR_STATUS_ACTIVE:
	case IMTA_DIR_STATUS_OVERQUOTA: /* the store decides */
	case IMTA_DIR_STATUS_HOLD:      /* the delivery options route it to the hold channel */
		return NULL;
	case IMTA_DIR_STATUS_INACTIVE:
		*outcome_r = IMTA_OUTCOME_RETRY;
		return "4.2.1 mailbox temporarily inactive";
	case IMTA_DIR_STATUS_DELETED:
		*outcome_r = IMTA_OUTCOME_FAILED;
		return "5.1.6 mailbox deleted";
	case IMTA_DIR_STATUS_DISABLED:
		*outcome_r = IMTA_OUTCOME_FAILED;
		return "5.2.1 group disabled";
	}
	*outcome_r = IMTA_OUTCOME_RETRY;
	return "4.2.1 unknown mailbox status";
}

static gboolean
local_expand_entry(LocalJob *lj, LocalExpansion *exp, const char *address, guint depth)
{
	ImtaDirectory *dir = lj->config->directory;
	const char *options = lj->config->options != NULL ? lj->config->options->delivery_options
							  : NULL;
	g_autoptr(ImtaDirEntry) entry = NULL;
	g_autoptr(GPtrArray) produced = NULL;
	g_autoptr(GError) error = NULL;
	ImtaOutcome outcome;
	const char *refusal;

	switch (imta_directory_lookup_local(dir, address, &entry, &error)) {
	case IMTA_DIR_TEMPFAIL:
		return local_fail(exp, IMTA_OUTCOME_RETRY, "4.4.3 directory lookup of %s: %s",
				  address, error != NULL ? error->message : "failed");
	case IMTA_DIR_NOT_FOUND:
		return local_fail(exp, IMTA_OUTCOME_FAILED, "5.1.1 unknown user %s", address);
	case IMTA_DIR_FOUND:
		break;
	}
	refusal = local_status_refusal(entry->status, &outcome);
	if (refusal != NULL)
		return local_fail(exp, outcome, "%s", refusal);
	if (options == NULL || options[0] == '\0')
		return local_fail(exp, IMTA_OUTCOME_RETRY, "4.3.5 DELIVERY_OPTIONS is empty");
	switch (imta_directory_delivery_addresses(dir, options, entry, address, &produced,
						  &error)) {
	case IMTA_DIR_TEMPFAIL:
		return local_fail(exp, IMTA_OUTCOME_RETRY, "4.4.3 expanding %s: %s", address,
				  error != NULL ? error->message : "failed");
	case IMTA_DIR_NOT_FOUND:
		if (g_error_matches(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_NO_HOST))
			return local_fail(exp, IMTA_OUTCOME_FAILED,
					  "5.4.4 %s cannot be routed: %s", address, error->message);
		return local_fail(exp, IMTA_OUTCOME_FAILED, "5.3.5 expanding %s: %s", address,
				  error != NULL ? error->message : "failed");
	case IMTA_DIR_FOUND:
		break;
	}
	for (guint i = 0; i < produced->len; i++)
		if (!local_route(lj, exp, g_ptr_array_index(produced, i), depth,
				 entry->status == IMTA_DIR_STATUS_HOLD))
			return FALSE;
	return TRUE;
}

/* Expand `address` into exp->targets.  A nested address that cannot be
 * expanded is queued back to this channel as it is, to succeed or fail
 * there on its own; only the recipient's own address fails the
 * recipient. */
static gboolean
local_expand(LocalJob *lj, LocalExpansion *exp, const char *address, guint depth)
{
	LocalExpansion nested;
	gboolean ok;

	if (depth == 0)
		return local_expand_entry(lj, exp, address, depth);
	/* Expand into a scratch expansion sharing `seen`, so a failure can
	 * be set aside without losing what the siblings produced. */
	nested.targets = g_ptr_array_new_with_free_func((GDestroyNotify)local_target_free);
	nested.seen = exp->seen;
	nested.cut = 0;
	nested.outcome = IMTA_OUTCOME_DELIVERED;
	nested.diagnostic = NULL;
	ok = local_expand_entry(lj, &nested, address, depth);
	exp->cut += nested.cut;
	if (ok) {
		for (guint i = 0; ok && i < nested.targets->len; i++) {
			LocalTarget *t = g_ptr_array_index(nested.targets, i);

			ok = local_add_target(exp, t->address, t->channel);
		}
	} else if (g_str_has_prefix(nested.diagnostic, "5.4.6") ||
		   g_str_has_prefix(nested.diagnostic, "5.2.3")) {
		/* Loops and runaway expansions fail the recipient itself. */
		ok = local_fail(exp, nested.outcome, "%s", nested.diagnostic);
	} else {
		imta_log(IMTA_LOG_INFO, "%s: %s queued on its own: %s", lj->channel->name,
			 address, nested.diagnostic);
		ok = local_add_target(exp, address, lj->channel);
	}
	g_ptr_array_unref(nested.targets);
	g_free(nested.diagnostic);
	return ok;
}

static ImtaQueue *
local_queue(LocalJob *lj, GError **error)
{
	if (lj->queue == NULL)
		lj->queue = imta_route_open_queue(lj->config, error);
	return lj->queue;
}

/* Queue one message for every target of every expanded recipient. */
static gboolean
local_enqueue(LocalJob *lj, ImtaMessage *msg, LocalExpansion *exps, guint n, GError **error)
{
	ImtaQueue *queue = local_queue(lj, error);
	g_autoptr(ImtaForward) fwd = NULL;

	if (queue == NULL)
		return FALSE;
	fwd = imta_forward_new(queue, lj->channel->name, msg);
	for (guint i = 0; i < n; i++) {
		if (exps[i].outcome != IMTA_OUTCOME_DELIVERED)
			continue;
		for (guint j = 0; j < exps[i].targets->len; j++) {
			LocalTarget *t = g_ptr_array_index(exps[i].targets, j);

			if (!imta_forward_add(fwd, i, t->channel, t->address, error))
				return FALSE;
		}
	}
	return imta_forward_commit(fwd, error);
}

static char *
local_delivered_text(const LocalExpansion *exp)
{
	GString *text = g_string_new("2.0.0 expanded to ");

	if (exp->targets->len == 0)
		g_string_append(text, "no address");
	for (guint i = 0; i < exp->targets->len; i++) {
		const LocalTarget *t = g_ptr_array_index(exp->targets, i);

		if (text->len + strlen(t->address) > LOCAL_MAX_DIAGNOSTIC) {
			g_string_append_printf(text, " and %u more", exp->targets->len - i);
			break;
		}
		g_string_append_printf(text, "%s%s", i > 0 ? ", " : "", t->address);
	}
	return g_string_free(text, FALSE);
}

static void
local_message(ImtaMasterJob *job, ImtaMessage *msg, gpointer data)
{
	LocalJob *lj = data;
	guint n = imta_message_recipient_count(msg);
	LocalExpansion *exps = g_new0(LocalExpansion, n);
	g_autoptr(GError) error = NULL;
	gboolean queued;

	for (guint i = 0; i < n; i++) {
		const char *address = imta_message_recipient(msg, i)->address;

		local_expansion_init(&exps[i]);
		if (lj->config->directory == NULL)
			local_fail(&exps[i], IMTA_OUTCOME_RETRY, "4.3.5 no directory is configured");
		else if (local_first_seen(&exps[i], address) &&
			 local_expand(lj, &exps[i], address, 0) &&
			 exps[i].targets->len == 0 && exps[i].cut > 0)
			/* Forwards that lead only back to addresses already
			 * expanded would otherwise lose the mail silently. */
			local_fail(&exps[i], IMTA_OUTCOME_FAILED,
				   "5.4.6 alias loop: %s leads only back to itself", address);
	}
	queued = local_enqueue(lj, msg, exps, n, &error);
	if (!queued)
		imta_log(IMTA_LOG_ERROR, "%s: message %s: %s", lj->channel->name,
			 imta_message_id(msg), error->message);
	for (guint i = 0; i < n; i++) {
		g_autofree char *text = NULL;

		if (exps[i].outcome == IMTA_OUTCOME_DELIVERED && !queued) {
			text = g_strdup_printf("4.3.0 cannot queue the expansion: %s",
					       error->message);
			imta_master_job_report(lj->job, msg, i, IMTA_OUTCOME_RETRY, text);
		} else if (exps[i].outcome == IMTA_OUTCOME_DELIVERED && exps[i].targets->len > 0) {
			/* The expanded addresses carry the DSN request on: a
			 * success notice is theirs to send, not this channel's. */
			text = local_delivered_text(&exps[i]);
			imta_master_job_report_relayed(lj->job, msg, i, text);
		} else if (exps[i].outcome == IMTA_OUTCOME_DELIVERED) {
			text = local_delivered_text(&exps[i]);
			imta_master_job_report(lj->job, msg, i, IMTA_OUTCOME_DELIVERED, text);
		} else {
			imta_master_job_report(lj->job, msg, i, exps[i].outcome,
					       exps[i].diagnostic);
		}
		imta_log(IMTA_LOG_INFO, "%s: message %s: %s: %s", lj->channel->name,
			 imta_message_id(msg), imta_message_recipient(msg, i)->address,
			 imta_message_recipient(msg, i)->diagnostic);
		local_expansion_clear(&exps[i]);
	}
	g_free(exps);
}

static ImtaEntryStatus
local_master(ImtaMasterJob *job)
{
	LocalJob lj = {
		.job = job,
		.config = imta_master_job_config(job),
		.channel = imta_master_job_channel(job),
	};
	ImtaEntryStatus status;

	if (lj.config == NULL || lj.channel == NULL) {
		imta_log(IMTA_LOG_ERROR, "local: the job has no configuration or channel");
		return IMTA_ENTRY_SOFTWARE;
	}
	status = imta_master_job_each(job, local_message, &lj);
	g_clear_pointer(&lj.queue, imta_queue_close);
	return status;
}

IMTA_PLUGIN_DEFINE(
	.name = "local",
	.version = PACKAGE_VERSION,
	.description = "expands local addresses through the directory's delivery options",
	.keywords = local_keywords,
	.master = local_master,
);
