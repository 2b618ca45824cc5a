/*
 * ims_ms.c - the ims-ms channel: delivery into the message store.
 *
 * The master program takes each queued message, resolves every recipient
 * (uid[%domain][+folder]@host) through the directory, applies the quota
 * policy (quota.h), and stores the message once for all recipients that
 * may have it (imta_store_deliver: one file per partition, linked into
 * every mailbox).  Outcomes are reported only after the store returned,
 * so a message is never marked delivered before it is durable, and a
 * delivery record (IMTA_RUN/ims-ms/<queue id>) lets the retry after a
 * killed job find what was stored already instead of storing it twice.
 * A user
 * whose usage crosses the warning threshold gets one warning message,
 * queued to a channel of this plugin marked `exquota` (the guaranteed
 * delivery channel) so that it arrives even in a full mailbox.
 *
 * Binding: the plugin registers "ims-ms"; the channel of that name binds
 * by name, and any other channel (ims-ms-guaranteed) by carrying the
 * keyword.  ims_ms(8) describes recipients, statuses and the policy.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/imta.h>
#include <imta/queue.h>
#include <imta/store.h>
#include <imta/notice.h>
#include <imta/jc_protocol.h>
#include <imta/mail_log.h>
#include "recipient.h"
#include "quota.h"

static const ImtaPluginKeyword ims_ms_keywords[] = {
	{ "ims-ms", 0, 0, "deliver this channel's messages into the message store "
	  "(with exquota: whatever the users' quotas)" },
	{ NULL }
};

/* One job: the store opened once, the queue for warnings opened on need. */
typedef struct {
	ImtaMasterJob *job;
	const ImtaConfig *config;
	const ImtaChannel *channel;
	ImtaStoreConfig *store_config;
	ImtaStore *store;
	char *store_failure;     /* why there is no store: "4.3.0 ..." */
	char *default_domain;
	ImtaQueue *queue;
	/* The message being delivered. */
	guint pending;           /* recipients left to retry */
	char *record;            /* its delivery record (see below), or NULL */
	gint64 record_since;     /* when an earlier attempt made it; 0: none */
	char *record_message_id; /* its Message-ID, when looking for earlier deliveries */
	char *cnf_path;          /* store.cnf */
	GStatBuf cnf_stat;       /* as it was when read; st_ino 0: absent */
} MsJob;

/* One recipient that passed the checks and goes to the store. */
typedef struct {
	guint index;             /* the message's recipient */
	guint target;            /* its slot in the targets array */
	ImsMsUser user;
	char *folder;
	ImsMsQuotaPolicy policy;
} MsDelivery;

static void
ms_delivery_free(gpointer data)
{
	MsDelivery *d = data;

	ims_ms_user_clear(&d->user);
	g_free(d->folder);
	g_free(d);
}

/* ---- the job ------------------------------------------------------------ */

static void
ms_cnf_stat(const MsJob *ms, GStatBuf *st_r)
{
	memset(st_r, 0, sizeof *st_r);
	if (g_stat(ms->cnf_path, st_r) < 0)
		memset(st_r, 0, sizeof *st_r);
}

static void
ms_job_open(MsJob *ms)
{
	g_autoptr(GError) error = NULL;
	const ImtaTailor *tailor = ms->config->tailor;

	if (ms->cnf_path == NULL)
		ms->cnf_path = g_build_filename(ms->config->dir, "store.cnf", NULL);
	ms_cnf_stat(ms, &ms->cnf_stat);
	ms->store_config = imta_store_config_load(ms->cnf_path, tailor->store_dir, &error);
	if (ms->store_config == NULL) {
		ms->store_failure = g_strdup_printf("4.3.5 message store configuration: %s",
						    error->message);
		return;
	}
	ms->store = imta_store_open(ms->store_config, &error);
	if (ms->store == NULL) {
		ms->store_failure = g_strdup_printf("4.3.0 message store unavailable: %s",
						    error->message);
		return;
	}
	if (ms->default_domain == NULL)
		ms->default_domain = ims_ms_default_domain(ms->config->directory,
							   tailor->hostname);
}

static void
ms_job_close_store(MsJob *ms)
{
	g_clear_pointer(&ms->store, imta_store_close);
	g_clear_pointer(&ms->store_config, imta_store_config_free);
	g_clear_pointer(&ms->store_failure, g_free);
}

static void
ms_job_close(MsJob *ms)
{
	ms_job_close_store(ms);
	g_clear_pointer(&ms->queue, imta_queue_close);
	g_clear_pointer(&ms->default_domain, g_free);
	g_clear_pointer(&ms->cnf_path, g_free);
	g_clear_pointer(&ms->record, g_free);
	g_clear_pointer(&ms->record_message_id, g_free);
}

/* A job lives as long as mail keeps coming: an edited store.cnf (a new
 * grace period, a partition) applies from the next message on. */
static void
ms_job_refresh(MsJob *ms)
{
	GStatBuf st;

	ms_cnf_stat(ms, &st);
	if (st.st_ino == ms->cnf_stat.st_ino && st.st_dev == ms->cnf_stat.st_dev &&
	    st.st_size == ms->cnf_stat.st_size && st.st_mtime == ms->cnf_stat.st_mtime &&
	    st.st_ctime == ms->cnf_stat.st_ctime && ms->store_failure == NULL)
		return;
	imta_log(IMTA_LOG_INFO, "%s: opening the message store again (%s)", ms->channel->name,
		 ms->store_failure != NULL ? "it was unavailable" : "store.cnf changed");
	ms_job_close_store(ms);
	ms_job_open(ms);
	if (ms->store_failure != NULL)
		imta_log(IMTA_LOG_ERROR, "%s: %s", ms->channel->name, ms->store_failure);
}

static const char *
ms_hostname(const MsJob *ms)
{
	const char *host = ms->config->tailor != NULL ? ms->config->tailor->hostname : NULL;

	return host != NULL ? host : g_get_host_name();
}

static void
ms_report(MsJob *ms, ImtaMessage *msg, guint index, ImtaOutcome outcome, const char *diagnostic)
{
	if (outcome != IMTA_OUTCOME_DELIVERED && outcome != IMTA_OUTCOME_FAILED)
		ms->pending++;
	imta_master_job_report(ms->job, msg, index, outcome, diagnostic);
}

/* ---- delivery records ---------------------------------------------------- */

/*
 * The store makes a delivery durable before imta_store_deliver() returns;
 * the queue records the outcome only at finish().  A job killed between
 * the two would store the message again on the retry.  So a record
 * IMTA_RUN/ims-ms/<queue id> is made before the store is called and
 * removed once the outcomes are durable and final; a message that comes
 * with a record left behind is first looked for in each recipient's
 * folder (same Message-ID and size, stored after the record was made), and
 * a recipient found there is reported delivered instead of being stored
 * twice.  The record is not synced: it guards against a killed process,
 * not against a system crash, after which a message may be stored twice
 * (never lost).  A message without a Message-ID is not looked for.
 */
#define MS_RECORD_DIR "ims-ms"
/* Records older than any queued message can be are removed. */
#define MS_RECORD_MAX_AGE ((gint64)60 * 24 * 3600)
/* Slack between the record's time and the store's clock. */
#define MS_RECORD_SLACK 2

static char *
ms_record_path(const MsJob *ms, const ImtaMessage *msg)
{
	const char *id = imta_message_id(msg);

	if (id == NULL || *id == '\0' || strlen(id) > 64)
		return NULL;
	for (const char *p = id; *p != '\0'; p++)
		if (!g_ascii_isalnum(*p))
			return NULL;
	return g_build_filename(ms->config->tailor->run_dir, MS_RECORD_DIR, id, NULL);
}

/* The time of a record an earlier attempt left, else 0. */
static gint64
ms_record_left(const char *path)
{
	GStatBuf st;

	if (path == NULL || g_stat(path, &st) < 0)
		return 0;
	return st.st_mtime > 0 ? (gint64)st.st_mtime : 1;
}

static void
ms_record_make(const MsJob *ms, const char *path)
{
	g_autofree char *dir = g_path_get_dirname(path);
	int fd;

	if (g_mkdir_with_parents(dir, 0750) < 0 ||
	    (fd = g_open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0640)) < 0) {
		imta_log(IMTA_LOG_WARNING, "%s: cannot make %s (a crash now could store the "
			 "message twice): %s", ms->channel->name, path, g_strerror(errno));
		return;
	}
	close(fd);
}

static void
ms_record_clean(const MsJob *ms)
{
	g_autofree char *dir = g_build_filename(ms->config->tailor->run_dir, MS_RECORD_DIR, NULL);
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	const char *name;

	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		g_autofree char *path = g_build_filename(dir, name, NULL);
		gint64 made = ms_record_left(path);

		if (made != 0 && now - made > MS_RECORD_MAX_AGE)
			g_unlink(path);
	}
}

/* Did an earlier attempt store this message for `d`?  The folder asked
 * for and INBOX (where a missing folder's mail goes) are searched from
 * the newest message back to the record's time. */
static gboolean
ms_record_find(MsJob *ms, const char *userid, const char *folder, const char *message_id,
	       gint64 size, gint64 since, guint32 *uid_r)
{
	const char *folders[] = { folder, "INBOX" };

	for (guint f = 0; f < G_N_ELEMENTS(folders); f++) {
		g_autoptr(GPtrArray) messages = NULL;

		if (folders[f] == NULL || (f == 1 && folder != NULL &&
					   g_ascii_strcasecmp(folder, "INBOX") == 0))
			continue;
		messages = imta_store_folder_messages(ms->store, userid, folders[f], NULL);
		for (guint i = messages != NULL ? messages->len : 0; i-- > 0;) {
			const ImtaStoreMessage *m = g_ptr_array_index(messages, i);

			if (m->internal_date < since - MS_RECORD_SLACK)
				break;
			if (m->size == size && g_strcmp0(m->message_id, message_id) == 0) {
				*uid_r = m->uid;
				return TRUE;
			}
		}
	}
	return FALSE;
}

/* ---- the quota warning ------------------------------------------------ */

/* The channel that delivers whatever the quota: one bound to this plugin
 * and marked exquota; this channel when there is none. */
static const ImtaChannel *
ms_guaranteed_channel(const MsJob *ms)
{
	GPtrArray *channels = ms->config->cnf->channels;

	if (ms->channel->exquota == IMTA_EXQUOTA_DELIVER)
		return ms->channel;
	for (guint i = 0; i < channels->len; i++) {
		const ImtaChannel *ch = g_ptr_array_index(channels, i);

		if (ch->plugin == ms->channel->plugin && ch->exquota == IMTA_EXQUOTA_DELIVER)
			return ch;
	}
	return ms->channel;
}

/* "uid@host" or "uid%domain@host" for a user id "uid" / "uid@domain". */
static char *
ms_queue_address(const char *userid, const char *host)
{
	const char *at = strchr(userid, '@');

	if (at == NULL)
		return g_strconcat(userid, "@", host, NULL);
	return g_strdup_printf("%.*s%%%s@%s", (int)(at - userid), userid, at + 1, host);
}

static gboolean
ms_header_safe(const char *text)
{
	for (const char *p = text; *p != '\0'; p++)
		if ((guchar)*p <= 0x20 || (guchar)*p >= 0x7f || *p == '<' || *p == '>')
			return FALSE;
	return TRUE;
}

static char *
ms_warning_message(const MsJob *ms, const MsDelivery *d, const ImtaStoreUsage *usage,
		   gint64 now)
{
	const ImtaOptionDat *options = ms->config->options;
	g_autofree char *from = options != NULL && options->return_address != NULL
		? g_strdup(options->return_address)
		: g_strconcat("postmaster@", ms_hostname(ms), NULL);
	g_autofree char *date = imta_notice_format_date(now);
	g_autofree char *body = ims_ms_quota_warning_text(&d->policy, usage, d->user.userid);
	/* The directory's value goes into a header: only a plain address. */
	const char *to = d->user.mail != NULL && ms_header_safe(d->user.mail) ? d->user.mail
									      : d->user.userid;
	GString *out = g_string_new(NULL);

	g_string_append_printf(out, "Date: %s\n", date);
	g_string_append_printf(out, "From: Postmaster <%s>\n", from);
	g_string_append_printf(out, "To: <%s>\n", to);
	g_string_append_printf(out, "Subject: Warning: your mailbox is %d%% full\n",
			       ims_ms_quota_percent(&d->policy, usage));
	g_string_append_printf(out, "Message-ID: <quota.%" G_GINT64_FORMAT ".%08x@%s>\n", now,
			       g_random_int(), ms_hostname(ms));
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
ms_send_warning(MsJob *ms, const MsDelivery *d, const ImtaStoreUsage *usage, gint64 now,
		GError **error)
{
	const ImtaChannel *target = ms_guaranteed_channel(ms);
	const ImtaChannel *local = imta_cnf_local_channel(ms->config->cnf);
	g_autofree char *address = ms_queue_address(d->user.userid,
						    imta_channel_official_host(target));
	g_autofree char *orcpt = g_strconcat("rfc822;", d->user.mail != NULL ? d->user.mail
								 : address, NULL);
	g_autofree char *text = ms_warning_message(ms, d, usage, now);
	g_autoptr(ImtaEnqueue) enq = NULL;

	if (ms->queue == NULL) {
		g_autofree char *notify = g_build_filename(ms->config->tailor->run_dir,
							   IMTA_JC_NOTIFY_SOCKET, NULL);

		ms->queue = imta_queue_open(ms->config->tailor->queue_dir, ms->config->cnf,
					    notify, error);
		if (ms->queue == NULL)
			return FALSE;
	}
	enq = imta_enqueue_new(ms->queue, local != NULL ? local->name : "l", "");
	if (!imta_enqueue_add_recipient(enq, target, address, orcpt, IMTA_NOTIFY_NEVER, error) ||
	    !imta_enqueue_write(enq, text, strlen(text), error) ||
	    !imta_enqueue_commit(enq, error))
		return FALSE;
	imta_log(IMTA_LOG_INFO, "%s: quota warning for %s (%d%% full) queued to %s as %s",
		 ms->channel->name, d->user.userid, ims_ms_quota_percent(&d->policy, usage),
		 target->name, imta_enqueue_files(enq)[0]);
	return TRUE;
}

/* After a delivery: record the quota state, warn once at the threshold.
 * warned_at is recorded before the warning is queued, so that the
 * warning's own delivery does not send another. */
static void
ms_after_delivery(MsJob *ms, const MsDelivery *d)
{
	g_autoptr(GError) error = NULL;
	ImtaStoreUsage usage = { 0 };
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	gint64 warned_at, over_since;
	gboolean warn;

	if (!imta_store_get_usage(ms->store, d->user.userid, &usage, &error)) {
		imta_log(IMTA_LOG_WARNING, "%s: usage of %s: %s", ms->channel->name,
			 d->user.userid, error->message);
		return;
	}
	warn = ims_ms_quota_after(&d->policy, &usage, now, &warned_at, &over_since);
	if (warned_at == usage.warned_at && over_since == usage.over_since)
		return;
	if (!imta_store_set_quota_state(ms->store, d->user.userid, warned_at, over_since,
					&error)) {
		imta_log(IMTA_LOG_WARNING, "%s: quota state of %s: %s", ms->channel->name,
			 d->user.userid, error->message);
		return;
	}
	if (!warn || ms_send_warning(ms, d, &usage, now, &error))
		return;
	imta_log(IMTA_LOG_WARNING, "%s: quota warning for %s not queued (next delivery "
		 "tries again): %s", ms->channel->name, d->user.userid, error->message);
	g_clear_error(&error);
	if (!imta_store_set_quota_state(ms->store, d->user.userid, 0, over_since, &error))
		imta_log(IMTA_LOG_WARNING, "%s: quota state of %s: %s", ms->channel->name,
			 d->user.userid, error->message);
}

/* ---- one recipient ------------------------------------------------------ */

static void
ms_policy(const MsJob *ms, const ImsMsUser *user, ImsMsQuotaPolicy *policy_r)
{
	const ImtaStoreConfig *sc = ms->store_config;

	policy_r->enforce = sc->quota_enforcement;
	policy_r->exquota = ms->channel->exquota;
	policy_r->limit_bytes = ims_ms_quota_effective(user->quota_bytes,
						       sc->default_mailbox_quota);
	policy_r->limit_messages = ims_ms_quota_effective(user->quota_messages,
							  sc->default_message_quota);
	policy_r->grace = sc->quota_grace_period;
	policy_r->warn_percent = sc->quota_warn_percent;
	policy_r->status_overquota = user->status_overquota && sc->overquota_status;
}

/* Keep when the user went over quota.  A user with no mailbox yet (a
 * zero quota) gets an empty one, or the grace period would never start. */
static void
ms_record_over_since(MsJob *ms, const ImsMsUser *user, gint64 warned_at, gint64 over_since)
{
	g_autoptr(GError) error = NULL;

	if (imta_store_set_quota_state(ms->store, user->userid, warned_at, over_since, &error))
		return;
	if (g_error_matches(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND) &&
	    over_since != 0) {
		g_clear_error(&error);
		if (!imta_store_create_user(ms->store, user->userid, user->partition, &error) &&
		    !g_error_matches(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_EXISTS))
			goto failed;
		g_clear_error(&error);
		if (imta_store_set_quota_state(ms->store, user->userid, warned_at, over_since,
					       &error))
			return;
	}
failed:
	if (!g_error_matches(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND))
		imta_log(IMTA_LOG_WARNING, "%s: quota state of %s: %s", ms->channel->name,
			 user->userid, error->message);
}

/* Check recipient `index`; a MsDelivery when it goes to the store, NULL
 * after reporting its outcome. */
static MsDelivery *
ms_check_recipient(MsJob *ms, ImtaMessage *msg, guint index)
{
	const ImtaRecipient *rcpt = imta_message_recipient(msg, index);
	g_auto(ImsMsAddress) addr = { 0 };
	g_autoptr(GError) error = NULL;
	g_autofree char *diagnostic = NULL;
	g_auto(ImsMsQuotaDecision) decision = { 0 };
	ImtaStoreUsage usage = { 0 };
	MsDelivery *d;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	guint32 uid = 0;

	if (!ims_ms_address_parse(rcpt->address, &addr, &error)) {
		diagnostic = g_strdup_printf("5.1.3 bad message store recipient <%s>: %s",
					     rcpt->address, error->message);
		ms_report(ms, msg, index, IMTA_OUTCOME_FAILED, diagnostic);
		return NULL;
	}
	d = g_new0(MsDelivery, 1);
	d->index = index;
	d->folder = g_strdup(addr.folder);
	ims_ms_user_resolve(ms->config->directory, &addr, ms->default_domain, &d->user);
	if (d->user.state != IMS_MS_USER_OK) {
		gboolean permanent = d->user.state == IMS_MS_USER_UNKNOWN ||
				     d->user.state == IMS_MS_USER_DELETED;

		ms_report(ms, msg, index, permanent ? IMTA_OUTCOME_FAILED : IMTA_OUTCOME_RETRY,
			  d->user.reason);
		ms_delivery_free(d);
		return NULL;
	}
	if (ms->record_message_id != NULL &&
	    ms_record_find(ms, d->user.userid, d->folder, ms->record_message_id,
			   imta_message_size(msg), ms->record_since, &uid)) {
		diagnostic = g_strdup_printf("2.0.0 delivered to the message store: %s %s, UID %u "
					     "(by an earlier attempt)", d->user.userid,
					     d->folder != NULL ? d->folder : "INBOX", uid);
		ms_report(ms, msg, index, IMTA_OUTCOME_DELIVERED, diagnostic);
		imta_log(IMTA_LOG_INFO, "%s: %s: %s", ms->channel->name, imta_message_id(msg),
			 diagnostic);
		ms_delivery_free(d);
		return NULL;
	}
	if (d->user.partition != NULL &&
	    imta_store_partition_path(ms->store, d->user.partition) == NULL) {
		diagnostic = g_strdup_printf("4.3.5 mailbox %s is on partition \"%s\" "
					     "(mailMessageStore), which store.cnf does not define "
					     "(store.partition.%s.path)", d->user.userid,
					     d->user.partition, d->user.partition);
		ms_report(ms, msg, index, IMTA_OUTCOME_RETRY, diagnostic);
		ms_delivery_free(d);
		return NULL;
	}
	if (!imta_store_get_usage(ms->store, d->user.userid, &usage, &error)) {
		if (!g_error_matches(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND)) {
			diagnostic = g_strdup_printf("4.3.0 quota usage of %s: %s",
						     d->user.userid, error->message);
			ms_report(ms, msg, index, IMTA_OUTCOME_RETRY, diagnostic);
			ms_delivery_free(d);
			return NULL;
		}
		memset(&usage, 0, sizeof usage);
	}
	ms_policy(ms, &d->user, &d->policy);
	ims_ms_quota_check(&d->policy, &usage, imta_message_size(msg), now, &decision);
	if (decision.over_since != usage.over_since)
		ms_record_over_since(ms, &d->user, usage.warned_at, decision.over_since);
	if (decision.action == IMS_MS_QUOTA_DELIVER)
		return d;
	ms_report(ms, msg, index,
			       decision.action == IMS_MS_QUOTA_FAIL ? IMTA_OUTCOME_FAILED
								    : IMTA_OUTCOME_RETRY,
			       decision.diagnostic);
	imta_log(IMTA_LOG_INFO, "%s: %s: %s", ms->channel->name, imta_message_id(msg),
		 decision.diagnostic);
	ms_delivery_free(d);
	return NULL;
}

/* ---- one message -------------------------------------------------------- */

static char *
ms_read_content(ImtaMessage *msg, gsize *length_r, GError **error)
{
	g_autoptr(GInputStream) in = imta_message_open_content(msg, error);
	goffset size = imta_message_size(msg);
	g_autofree char *buf = NULL;
	gsize got = 0;

	if (in == NULL)
		return NULL;
	if (size < 0 || (guint64)size >= G_MAXSIZE) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "bad message size %" G_GINT64_FORMAT, (gint64)size);
		return NULL;
	}
	buf = g_malloc((gsize)size + 1);
	if (!g_input_stream_read_all(in, buf, (gsize)size, &got, NULL, error))
		return NULL;
	if (got != (gsize)size) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
			    "message content is %" G_GSIZE_FORMAT " bytes, expected %"
			    G_GINT64_FORMAT, got, (gint64)size);
		return NULL;
	}
	buf[got] = '\0';
	*length_r = got;
	return g_steal_pointer(&buf);
}

/* The outcome of a target the store could not take. */
static void
ms_report_store_error(MsJob *ms, ImtaMessage *msg, const MsDelivery *d, const GError *error)
{
	g_autofree char *diagnostic = NULL;
	ImtaOutcome outcome = IMTA_OUTCOME_RETRY;

	if (error->domain != IMTA_STORE_ERROR)
		diagnostic = g_strdup_printf("4.3.0 %s: %s", d->user.userid, error->message);
	else if (error->code == IMTA_STORE_ERROR_IO)
		diagnostic = g_strdup_printf("4.3.1 cannot store for %s: %s", d->user.userid,
					     error->message);
	else if (error->code == IMTA_STORE_ERROR_NOT_FOUND)
		diagnostic = g_strdup_printf("4.3.5 mailbox of %s not available (partition "
					     "\"%s\"): %s", d->user.userid,
					     d->user.partition != NULL ? d->user.partition
								       : "default",
					     error->message);
	else if (error->code == IMTA_STORE_ERROR_CORRUPT)
		diagnostic = g_strdup_printf("4.3.0 mailbox of %s is damaged (imsimta "
					     "reconstruct repairs it): %s", d->user.userid,
					     error->message);
	else if (error->code == IMTA_STORE_ERROR_INVALID) {
		outcome = IMTA_OUTCOME_FAILED;
		diagnostic = g_strdup_printf("5.1.3 invalid mailbox for %s: %s", d->user.userid,
					     error->message);
	} else
		diagnostic = g_strdup_printf("4.3.0 %s: %s", d->user.userid, error->message);
	ms_report(ms, msg, d->index, outcome, diagnostic);
	imta_log(IMTA_LOG_WARNING, "%s: %s: %s", ms->channel->name, imta_message_id(msg),
		 diagnostic);
}

static void
ms_store_message(MsJob *ms, ImtaMessage *msg, GPtrArray *deliveries)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GArray) targets = g_array_new(FALSE, TRUE, sizeof(ImtaStoreTarget));
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autofree char *content = NULL;
	gsize length = 0;

	/* One target per mailbox and folder: a recipient listed twice gets
	 * the message once, and both get its outcome. */
	for (guint i = 0; i < deliveries->len; i++) {
		MsDelivery *d = g_ptr_array_index(deliveries, i);
		char *key = g_strconcat(d->user.userid, "\n",
					d->folder != NULL ? d->folder : "INBOX", NULL);
		gpointer slot;

		if (g_hash_table_lookup_extended(seen, key, NULL, &slot)) {
			d->target = GPOINTER_TO_UINT(slot);
			g_free(key);
			continue;
		}
		d->target = targets->len;
		g_hash_table_insert(seen, key, GUINT_TO_POINTER(d->target));
		g_array_append_val(targets, ((ImtaStoreTarget){
			.userid = d->user.userid,
			.partition = d->user.partition,
			.folder = d->folder,
		}));
	}
	content = ms_read_content(msg, &length, &error);
	if (content != NULL && ms->record != NULL && ms->record_since == 0)
		ms_record_make(ms, ms->record);
	if (content == NULL || !imta_store_deliver(ms->store, content, length, 0,
						   (ImtaStoreTarget *)(void *)targets->data,
						   targets->len, &error)) {
		g_autofree char *diagnostic = g_strdup_printf("4.3.1 message not stored: %s",
							      error != NULL ? error->message
									    : "no reason given");

		for (guint i = 0; i < deliveries->len; i++) {
			MsDelivery *d = g_ptr_array_index(deliveries, i);

			ms_report(ms, msg, d->index, IMTA_OUTCOME_RETRY, diagnostic);
		}
		imta_log(IMTA_LOG_WARNING, "%s: %s: %s", ms->channel->name, imta_message_id(msg),
			 diagnostic);
		goto out;
	}
	for (guint i = 0; i < deliveries->len; i++) {
		MsDelivery *d = g_ptr_array_index(deliveries, i);
		ImtaStoreTarget *t = &g_array_index(targets, ImtaStoreTarget, d->target);
		g_autofree char *diagnostic = NULL;

		if (t->error != NULL) {
			ms_report_store_error(ms, msg, d, t->error);
			continue;
		}
		diagnostic = g_strdup_printf("2.0.0 delivered to the message store: %s %s, UID %u",
					     d->user.userid,
					     d->folder != NULL ? d->folder : "INBOX",
					     t->uid);
		ms_report(ms, msg, d->index, IMTA_OUTCOME_DELIVERED, diagnostic);
	}
	/* Warnings and quota state once per mailbox. */
	for (guint i = 0; i < deliveries->len; i++) {
		MsDelivery *d = g_ptr_array_index(deliveries, i);
		gboolean first = TRUE;

		for (guint j = 0; j < i && first; j++) {
			MsDelivery *e = g_ptr_array_index(deliveries, j);

			first = strcmp(e->user.userid, d->user.userid) != 0;
		}
		if (first && g_array_index(targets, ImtaStoreTarget, d->target).error == NULL)
			ms_after_delivery(ms, d);
	}
out:
	for (guint i = 0; i < targets->len; i++)
		g_clear_error(&g_array_index(targets, ImtaStoreTarget, i).error);
}

static void
ms_deliver_message(MsJob *ms, ImtaMessage *msg)
{
	guint n = imta_message_recipient_count(msg);
	g_autoptr(GPtrArray) deliveries = g_ptr_array_new_with_free_func(ms_delivery_free);

	ms->pending = 0;
	g_clear_pointer(&ms->record, g_free);
	g_clear_pointer(&ms->record_message_id, g_free);
	ms->record = ms_record_path(ms, msg);
	ms->record_since = ms_record_left(ms->record);
	if (ms->record_since != 0)
		ms->record_message_id = imta_mail_log_message_id_of(msg);
	if (ms->store == NULL) {
		for (guint i = 0; i < n; i++)
			ms_report(ms, msg, i, IMTA_OUTCOME_RETRY, ms->store_failure);
		return;
	}
	for (guint i = 0; i < n; i++) {
		MsDelivery *d = ms_check_recipient(ms, msg, i);

		if (d != NULL)
			g_ptr_array_add(deliveries, d);
	}
	if (deliveries->len > 0)
		ms_store_message(ms, msg, deliveries);
}

static ImtaEntryStatus
ims_ms_master(ImtaMasterJob *job)
{
	MsJob ms = {
		.job = job,
		.config = imta_master_job_config(job),
		.channel = imta_master_job_channel(job),
	};
	g_autoptr(GError) error = NULL;
	ImtaEntryStatus status = IMTA_ENTRY_OK;
	ImtaMessage *msg;

	ms_job_open(&ms);
	ms_record_clean(&ms);
	if (ms.store_failure != NULL)
		imta_log(IMTA_LOG_ERROR, "%s: %s", ms.channel->name, ms.store_failure);
	while ((msg = imta_master_job_next(job, &error)) != NULL) {
		ms_job_refresh(&ms);
		ms_deliver_message(&ms, msg);
		if (!imta_master_job_finish(job, msg, &error)) {
			imta_log(IMTA_LOG_ERROR, "%s: %s", ms.channel->name, error->message);
			status = IMTA_ENTRY_TEMPFAIL;
			break;
		}
		/* Kept while recipients remain: their next attempt looks again. */
		if (ms.record != NULL && ms.pending == 0)
			g_unlink(ms.record);
	}
	if (status == IMTA_ENTRY_OK && error != NULL) {
		imta_log(IMTA_LOG_ERROR, "%s: %s", ms.channel->name, error->message);
		status = IMTA_ENTRY_TEMPFAIL;
	}
	ms_job_close(&ms);
	return status;
}

IMTA_PLUGIN_DEFINE(
	.name = "ims_ms",
	.version = PACKAGE_VERSION,
	.description = "delivers into the message store, with quotas",
	.keywords = ims_ms_keywords,
	.master = ims_ms_master,
);
