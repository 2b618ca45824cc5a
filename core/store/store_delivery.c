/*
 * store_delivery.c - delivering into the message store for the ims-ms
 * channel and the LMTP server (store_delivery.h): the store opened from
 * store.cnf, a recipient resolved and checked against its quota, the
 * message stored once per partition for all recipients, and the quota
 * state and warnings afterwards.
 */
#include "config.h"

#include <string.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/imta.h>
#include <imta/jc_protocol.h>
#include <imta/notice.h>
#include <imta/queue.h>
#include <imta/store.h>
#include <imta/store_delivery.h>

struct _ImtaStoreDelivery {
	const ImtaConfig *config;
	const ImtaChannel *channel;
	ImtaStoreConfig *store_config;
	ImtaStore *store;
	char *failure;           /* why there is no store: "4.3.0 ..." */
	char *default_domain;
	gboolean default_domain_known;
	ImtaQueue *queue;        /* for warnings: borrowed or own */
	gboolean own_queue;
	char *cnf_path;          /* store.cnf */
	GStatBuf cnf_stat;       /* as it was when read; st_ino 0: absent */
};

/* ---- the context -------------------------------------------------------- */

static void
delivery_cnf_stat(const ImtaStoreDelivery *d, GStatBuf *st_r)
{
	memset(st_r, 0, sizeof *st_r);
	if (g_stat(d->cnf_path, st_r) < 0)
		memset(st_r, 0, sizeof *st_r);
}

static void
delivery_open(ImtaStoreDelivery *d)
{
	g_autoptr(GError) error = NULL;
	const ImtaTailor *tailor = d->config->tailor;

	delivery_cnf_stat(d, &d->cnf_stat);
	d->store_config = imta_store_config_load(d->cnf_path, tailor != NULL ? tailor->store_dir
									     : NULL, &error);
	if (d->store_config == NULL) {
		d->failure = g_strdup_printf("4.3.5 message store configuration: %s",
					     error->message);
		return;
	}
	d->store = imta_store_open(d->store_config, &error);
	if (d->store == NULL) {
		d->failure = g_strdup_printf("4.3.0 message store unavailable: %s",
					     error->message);
		return;
	}
	if (!d->default_domain_known) {
		d->default_domain = imta_store_default_domain(d->config->directory,
							      tailor != NULL ? tailor->hostname
									     : NULL);
		d->default_domain_known = TRUE;
	}
}

static void
delivery_close_store(ImtaStoreDelivery *d)
{
	g_clear_pointer(&d->store, imta_store_close);
	g_clear_pointer(&d->store_config, imta_store_config_free);
	g_clear_pointer(&d->failure, g_free);
}

ImtaStoreDelivery *
imta_store_delivery_new(const ImtaConfig *config, const ImtaChannel *channel)
{
	ImtaStoreDelivery *d = g_new0(ImtaStoreDelivery, 1);

	d->config = config;
	d->channel = channel;
	d->cnf_path = g_build_filename(config->dir, "store.cnf", NULL);
	delivery_open(d);
	if (d->failure != NULL)
		imta_log(IMTA_LOG_ERROR, "%s: %s", channel->name, d->failure);
	return d;
}

void
imta_store_delivery_free(ImtaStoreDelivery *d)
{
	if (d == NULL)
		return;
	delivery_close_store(d);
	if (d->own_queue)
		imta_queue_close(d->queue);
	g_free(d->default_domain);
	g_free(d->cnf_path);
	g_free(d);
}

void
imta_store_delivery_refresh(ImtaStoreDelivery *d)
{
	GStatBuf st;

	delivery_cnf_stat(d, &st);
	if (st.st_ino == d->cnf_stat.st_ino && st.st_dev == d->cnf_stat.st_dev &&
	    st.st_size == d->cnf_stat.st_size && st.st_mtime == d->cnf_stat.st_mtime &&
	    st.st_ctime == d->cnf_stat.st_ctime && d->failure == NULL)
		return;
	imta_log(IMTA_LOG_INFO, "%s: opening the message store again (%s)", d->channel->name,
		 d->failure != NULL ? "it was unavailable" : "store.cnf changed");
	delivery_close_store(d);
	delivery_open(d);
	if (d->failure != NULL)
		imta_log(IMTA_LOG_ERROR, "%s: %s", d->channel->name, d->failure);
}

const char *
imta_store_delivery_failure(const ImtaStoreDelivery *d)
{
	return d->failure;
}

ImtaStore *
imta_store_delivery_store(const ImtaStoreDelivery *d)
{
	return d->store;
}

void
imta_store_delivery_set_queue(ImtaStoreDelivery *d, ImtaQueue *queue)
{
	if (d->own_queue)
		imta_queue_close(d->queue);
	d->queue = queue;
	d->own_queue = FALSE;
}

static const char *
delivery_hostname(const ImtaStoreDelivery *d)
{
	const char *host = d->config->tailor != NULL ? d->config->tailor->hostname : NULL;

	return host != NULL ? host : g_get_host_name();
}

/* ---- recipients --------------------------------------------------------- */

void
imta_store_recipient_clear(ImtaStoreRecipient *rcpt)
{
	imta_store_user_clear(&rcpt->user);
	g_clear_pointer(&rcpt->folder, g_free);
	g_clear_pointer(&rcpt->diagnostic, g_free);
}

static gboolean
recipient_set(ImtaStoreRecipient *rcpt, ImtaOutcome outcome, const char *fmt, ...)
	G_GNUC_PRINTF(3, 4);

/* Settle a recipient; FALSE, for the callers' convenience. */
static gboolean
recipient_set(ImtaStoreRecipient *rcpt, ImtaOutcome outcome, const char *fmt, ...)
{
	va_list args;

	rcpt->outcome = outcome;
	g_free(rcpt->diagnostic);
	va_start(args, fmt);
	rcpt->diagnostic = g_strdup_vprintf(fmt, args);
	va_end(args);
	return FALSE;
}

gboolean
imta_store_delivery_resolve(ImtaStoreDelivery *d, const char *address, ImtaStoreRecipient *rcpt_r)
{
	g_auto(ImtaStoreAddress) addr = { 0 };
	g_autoptr(GError) error = NULL;
	gboolean permanent;

	memset(rcpt_r, 0, sizeof *rcpt_r);
	if (!imta_store_address_parse(address, &addr, &error))
		return recipient_set(rcpt_r, IMTA_OUTCOME_FAILED,
				     "5.1.3 bad message store recipient <%s>: %s",
				     address != NULL ? address : "", error->message);
	if (d->store == NULL)
		return recipient_set(rcpt_r, IMTA_OUTCOME_RETRY, "%s", d->failure);
	rcpt_r->folder = g_strdup(addr.folder);
	imta_store_user_resolve(d->config->directory, &addr, d->default_domain, &rcpt_r->user);
	if (rcpt_r->user.state == IMTA_STORE_USER_OK)
		return TRUE;
	permanent = rcpt_r->user.state == IMTA_STORE_USER_UNKNOWN ||
		    rcpt_r->user.state == IMTA_STORE_USER_DELETED;
	return recipient_set(rcpt_r, permanent ? IMTA_OUTCOME_FAILED : IMTA_OUTCOME_RETRY, "%s",
			     rcpt_r->user.reason);
}

static void
delivery_policy(const ImtaStoreDelivery *d, const ImtaStoreUser *user,
		ImtaStoreQuotaPolicy *policy_r)
{
	const ImtaStoreConfig *sc = d->store_config;

	policy_r->enforce = sc->quota_enforcement;
	policy_r->exquota = d->channel->exquota;
	policy_r->limit_bytes = imta_store_quota_effective(user->quota_bytes,
							   sc->default_mailbox_quota);
	policy_r->limit_messages = imta_store_quota_effective(user->quota_messages,
							      sc->default_message_quota);
	policy_r->grace = sc->quota_grace_period;
	policy_r->warn_percent = sc->quota_warn_percent;
	policy_r->status_overquota = user->status_overquota && sc->overquota_status;
}

/* Keep when the user went over quota.  A user with no mailbox yet (a
 * zero quota) gets an empty one, or the grace period would never start. */
static void
delivery_record_over_since(ImtaStoreDelivery *d, const ImtaStoreUser *user, gint64 warned_at,
			   gint64 over_since)
{
	g_autoptr(GError) error = NULL;

	if (imta_store_set_quota_state(d->store, user->userid, warned_at, over_since, &error))
		return;
	if (g_error_matches(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND) &&
	    over_since != 0) {
		g_clear_error(&error);
		if (!imta_store_create_user(d->store, user->userid, user->partition, &error) &&
		    !g_error_matches(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_EXISTS))
			goto failed;
		g_clear_error(&error);
		if (imta_store_set_quota_state(d->store, user->userid, warned_at, over_since,
					       &error))
			return;
	}
failed:
	if (!g_error_matches(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND))
		imta_log(IMTA_LOG_WARNING, "%s: quota state of %s: %s", d->channel->name,
			 user->userid, error->message);
}

gboolean
imta_store_delivery_check(ImtaStoreDelivery *d, ImtaStoreRecipient *rcpt, gint64 size)
{
	g_autoptr(GError) error = NULL;
	g_auto(ImtaStoreQuotaDecision) decision = { 0 };
	ImtaStoreUsage usage = { 0 };
	const ImtaStoreUser *user = &rcpt->user;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;

	if (d->store == NULL)
		return recipient_set(rcpt, IMTA_OUTCOME_RETRY, "%s", d->failure);
	if (user->partition != NULL && imta_store_partition_path(d->store, user->partition) == NULL)
		return recipient_set(rcpt, IMTA_OUTCOME_RETRY,
				     "4.3.5 mailbox %s is on partition \"%s\" (mailMessageStore), "
				     "which store.cnf does not define (store.partition.%s.path)",
				     user->userid, user->partition, user->partition);
	if (!imta_store_get_usage(d->store, user->userid, &usage, &error)) {
		if (!g_error_matches(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND))
			return recipient_set(rcpt, IMTA_OUTCOME_RETRY,
					     "4.3.0 quota usage of %s: %s", user->userid,
					     error->message);
		memset(&usage, 0, sizeof usage);
	}
	delivery_policy(d, user, &rcpt->policy);
	imta_store_quota_check(&rcpt->policy, &usage, MAX(size, 0), now, &decision);
	if (decision.over_since != usage.over_since)
		delivery_record_over_since(d, user, usage.warned_at, decision.over_since);
	if (decision.action == IMTA_STORE_QUOTA_DELIVER)
		return TRUE;
	imta_log(IMTA_LOG_INFO, "%s: %s: %s", d->channel->name, user->userid,
		 decision.diagnostic);
	return recipient_set(rcpt, decision.action == IMTA_STORE_QUOTA_FAIL ? IMTA_OUTCOME_FAILED
									     : IMTA_OUTCOME_RETRY,
			     "%s", decision.diagnostic);
}

/* ---- the quota warning -------------------------------------------------- */

/* The channel that delivers whatever the quota: one bound to the same
 * plugin as the store channel and marked exquota; else an ims-ms
 * channel so marked; else the store channel itself. */
static const ImtaChannel *
delivery_guaranteed_channel(const ImtaStoreDelivery *d)
{
	GPtrArray *channels = d->config->cnf->channels;
	const ImtaChannel *ims_ms = NULL;

	if (d->channel->exquota == IMTA_EXQUOTA_DELIVER)
		return d->channel;
	for (guint i = 0; i < channels->len; i++) {
		const ImtaChannel *ch = g_ptr_array_index(channels, i);

		if (ch->exquota != IMTA_EXQUOTA_DELIVER || ch->plugin == NULL)
			continue;
		if (ch->plugin == d->channel->plugin)
			return ch;
		if (ims_ms == NULL && g_strcmp0(ch->plugin->name, "ims_ms") == 0)
			ims_ms = ch;
	}
	return ims_ms != NULL ? ims_ms : d->channel;
}

/* "uid@host" or "uid%domain@host" for a user id "uid" / "uid@domain". */
static char *
delivery_queue_address(const char *userid, const char *host)
{
	const char *at = strchr(userid, '@');

	if (at == NULL)
		return g_strconcat(userid, "@", host, NULL);
	return g_strdup_printf("%.*s%%%s@%s", (int)(at - userid), userid, at + 1, host);
}

static gboolean
delivery_header_safe(const char *text)
{
	for (const char *p = text; *p != '\0'; p++)
		if ((guchar)*p <= 0x20 || (guchar)*p >= 0x7f || *p == '<' || *p == '>')
			return FALSE;
	return TRUE;
}

static char *
delivery_warning_message(const ImtaStoreDelivery *d, const ImtaStoreRecipient *rcpt,
			 const ImtaStoreUsage *usage, gint64 now)
{
	const ImtaOptionDat *options = d->config->options;
	g_autofree char *from = options != NULL && options->return_address != NULL
		? g_strdup(options->return_address)
		: g_strconcat("postmaster@", delivery_hostname(d), NULL);
	g_autofree char *date = imta_notice_format_date(now);
	g_autofree char *body = imta_store_quota_warning_text(&rcpt->policy, usage,
							      rcpt->user.userid);
	/* The directory's value goes into a header: only a plain address. */
	const char *to = rcpt->user.mail != NULL && delivery_header_safe(rcpt->user.mail)
		? rcpt->user.mail : rcpt->user.userid;
	GString *out = g_string_new(NULL);

	g_string_append_printf(out, "Date: %s\n", date);
	g_string_append_printf(out, "From: Postmaster <%s>\n", from);
	g_string_append_printf(out, "To: <%s>\n", to);
	g_string_append_printf(out, "Subject: Warning: your mailbox is %d%% full\n",
			       imta_store_quota_percent(&rcpt->policy, usage));
	g_string_append_printf(out, "Message-ID: <quota.%" G_GINT64_FORMAT ".%08x@%s>\n", now,
			       g_random_int(), delivery_hostname(d));
	g_string_append(out, "Auto-Submitted: auto-generated\n"
			"MIME-Version: 1.0\n"
			"Content-Type: text/plain; charset=us-ascii\n"
			"Content-Transfer-Encoding: 7bit\n\n");
	g_string_append(out, body);
	return g_string_free(out, FALSE);
}

/* Queue the warning: from the null path (a warning never bounces), to
 * the user on the guaranteed channel, asking for no notices. */
static gboolean
delivery_send_warning(ImtaStoreDelivery *d, const ImtaStoreRecipient *rcpt,
		      const ImtaStoreUsage *usage, gint64 now, GError **error)
{
	const ImtaChannel *target = delivery_guaranteed_channel(d);
	const ImtaChannel *local = imta_cnf_local_channel(d->config->cnf);
	g_autofree char *address = delivery_queue_address(rcpt->user.userid,
							  imta_channel_official_host(target));
	g_autofree char *orcpt = g_strconcat("rfc822;", rcpt->user.mail != NULL ? rcpt->user.mail
										 : address, NULL);
	g_autofree char *text = delivery_warning_message(d, rcpt, usage, now);
	g_autoptr(ImtaEnqueue) enq = NULL;

	if (d->queue == NULL) {
		g_autofree char *notify = g_build_filename(d->config->tailor->run_dir,
							   IMTA_JC_NOTIFY_SOCKET, NULL);

		d->queue = imta_queue_open(d->config->tailor->queue_dir, d->config->cnf, notify,
					   error);
		if (d->queue == NULL)
			return FALSE;
		d->own_queue = TRUE;
	}
	enq = imta_enqueue_new(d->queue, local != NULL ? local->name : "l", "");
	if (!imta_enqueue_add_recipient(enq, target, address, orcpt, IMTA_NOTIFY_NEVER, error) ||
	    !imta_enqueue_write(enq, text, strlen(text), error) ||
	    !imta_enqueue_commit(enq, error))
		return FALSE;
	imta_log(IMTA_LOG_INFO, "%s: quota warning for %s (%d%% full) queued to %s as %s",
		 d->channel->name, rcpt->user.userid,
		 imta_store_quota_percent(&rcpt->policy, usage), target->name,
		 imta_enqueue_files(enq)[0]);
	return TRUE;
}

/* After a delivery: record the quota state, warn once at the threshold.
 * warned_at is recorded before the warning is queued, so that the
 * warning's own delivery does not send another. */
static void
delivery_after(ImtaStoreDelivery *d, const ImtaStoreRecipient *rcpt)
{
	g_autoptr(GError) error = NULL;
	ImtaStoreUsage usage = { 0 };
	const char *userid = rcpt->user.userid;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	gint64 warned_at, over_since;
	gboolean warn;

	if (!imta_store_get_usage(d->store, userid, &usage, &error)) {
		imta_log(IMTA_LOG_WARNING, "%s: usage of %s: %s", d->channel->name, userid,
			 error->message);
		return;
	}
	warn = imta_store_quota_after(&rcpt->policy, &usage, now, &warned_at, &over_since);
	if (warned_at == usage.warned_at && over_since == usage.over_since)
		return;
	if (!imta_store_set_quota_state(d->store, userid, warned_at, over_since, &error)) {
		imta_log(IMTA_LOG_WARNING, "%s: quota state of %s: %s", d->channel->name, userid,
			 error->message);
		return;
	}
	if (!warn || delivery_send_warning(d, rcpt, &usage, now, &error))
		return;
	imta_log(IMTA_LOG_WARNING, "%s: quota warning for %s not queued (next delivery "
		 "tries again): %s", d->channel->name, userid, error->message);
	g_clear_error(&error);
	if (!imta_store_set_quota_state(d->store, userid, 0, over_since, &error))
		imta_log(IMTA_LOG_WARNING, "%s: quota state of %s: %s", d->channel->name, userid,
			 error->message);
}

/* ---- storing ------------------------------------------------------------ */

/* The outcome of a target the store could not take. */
static void
delivery_store_error(ImtaStoreDelivery *d, ImtaStoreRecipient *rcpt, const GError *error)
{
	const char *userid = rcpt->user.userid;

	if (error->domain != IMTA_STORE_ERROR)
		recipient_set(rcpt, IMTA_OUTCOME_RETRY, "4.3.0 %s: %s", userid, error->message);
	else if (error->code == IMTA_STORE_ERROR_IO)
		recipient_set(rcpt, IMTA_OUTCOME_RETRY, "4.3.1 cannot store for %s: %s", userid,
			      error->message);
	else if (error->code == IMTA_STORE_ERROR_NOT_FOUND)
		recipient_set(rcpt, IMTA_OUTCOME_RETRY,
			      "4.3.5 mailbox of %s not available (partition \"%s\"): %s", userid,
			      rcpt->user.partition != NULL ? rcpt->user.partition : "default",
			      error->message);
	else if (error->code == IMTA_STORE_ERROR_CORRUPT)
		recipient_set(rcpt, IMTA_OUTCOME_RETRY, "4.3.0 mailbox of %s is damaged (imsimta "
			      "reconstruct repairs it): %s", userid, error->message);
	else if (error->code == IMTA_STORE_ERROR_INVALID)
		recipient_set(rcpt, IMTA_OUTCOME_FAILED, "5.1.3 invalid mailbox for %s: %s",
			      userid, error->message);
	else
		recipient_set(rcpt, IMTA_OUTCOME_RETRY, "4.3.0 %s: %s", userid, error->message);
	imta_log(IMTA_LOG_WARNING, "%s: %s", d->channel->name, rcpt->diagnostic);
}

void
imta_store_delivery_deliver(ImtaStoreDelivery *d, const char *content, gsize length,
			    ImtaStoreRecipient *const *rcpts, guint n)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GArray) targets = g_array_new(FALSE, TRUE, sizeof(ImtaStoreTarget));
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GHashTable) users = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GPtrArray) delivered = g_ptr_array_new();

	/* One target per mailbox and folder: a recipient listed twice gets
	 * the message once, and both get its outcome. */
	for (guint i = 0; i < n; i++) {
		ImtaStoreRecipient *r = rcpts[i];
		char *key;
		gpointer slot;

		if (r->outcome != IMTA_OUTCOME_NONE)
			continue;
		if (d->store == NULL) {
			recipient_set(r, IMTA_OUTCOME_RETRY, "%s", d->failure);
			continue;
		}
		key = g_strconcat(r->user.userid, "\n", r->folder != NULL ? r->folder : "INBOX",
				  NULL);
		if (g_hash_table_lookup_extended(seen, key, NULL, &slot)) {
			r->target = GPOINTER_TO_UINT(slot);
			g_free(key);
			continue;
		}
		r->target = targets->len;
		g_hash_table_insert(seen, key, GUINT_TO_POINTER(r->target));
		g_array_append_val(targets, ((ImtaStoreTarget){
			.userid = r->user.userid,
			.partition = r->user.partition,
			.folder = r->folder,
		}));
	}
	if (targets->len == 0)
		return;
	if (!imta_store_deliver(d->store, content, length, 0,
				(ImtaStoreTarget *)(void *)targets->data, targets->len, &error)) {
		for (guint i = 0; i < n; i++)
			if (rcpts[i]->outcome == IMTA_OUTCOME_NONE)
				recipient_set(rcpts[i], IMTA_OUTCOME_RETRY,
					      "4.3.1 message not stored: %s", error->message);
		imta_log(IMTA_LOG_WARNING, "%s: message not stored: %s", d->channel->name,
			 error->message);
		return;
	}
	for (guint i = 0; i < n; i++) {
		ImtaStoreRecipient *r = rcpts[i];
		const ImtaStoreTarget *t;

		if (r->outcome != IMTA_OUTCOME_NONE)
			continue;
		t = &g_array_index(targets, ImtaStoreTarget, r->target);
		if (t->error != NULL) {
			delivery_store_error(d, r, t->error);
			continue;
		}
		r->uid = t->uid;
		recipient_set(r, IMTA_OUTCOME_DELIVERED,
			      "2.0.0 delivered to the message store: %s %s, UID %u",
			      r->user.userid, r->folder != NULL ? r->folder : "INBOX", t->uid);
		g_ptr_array_add(delivered, r);
	}
	/* Warnings and quota state once per mailbox. */
	for (guint i = 0; i < delivered->len; i++) {
		ImtaStoreRecipient *r = g_ptr_array_index(delivered, i);

		if (g_hash_table_contains(users, r->user.userid))
			continue;
		g_hash_table_add(users, r->user.userid);
		delivery_after(d, r);
	}
	for (guint i = 0; i < targets->len; i++)
		g_clear_error(&g_array_index(targets, ImtaStoreTarget, i).error);
}
