/*
 * store_quota.c - the quota policy of message store deliveries
 * (store_delivery.h): quota values, the decision before a delivery, and
 * the warning after one.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/number.h>
#include <imta/directory.h>
#include <imta/store_delivery.h>

/* The directory's own ceiling for mailQuota; message counts get the same. */
#define QUOTA_MAX ((gint64)4096 * 1024 * 1024 * 1024)

gboolean
imta_store_quota_parse(const char *text, gboolean size, gint64 *value_r, GError **error)
{
	const char *what = size ? "a size in bytes with an optional K, M or G suffix"
				: "a number of messages";
	g_autofree char *copy = g_strstrip(g_strdup(text != NULL ? text : ""));
	gint64 value;
	gboolean ok;

	ok = size ? imta_parse_size(copy, &value, NULL) : imta_parse_int(copy, &value, NULL);
	/* -1 and -2 are codes, not sizes: "-1K" is no quota. */
	if (ok && value < 0 && strcmp(copy, "-1") != 0 && strcmp(copy, "-2") != 0)
		ok = FALSE;
	if (!ok) {
		g_set_error(error, IMTA_STORE_DELIVERY_ERROR, IMTA_STORE_DELIVERY_ERROR_QUOTA,
			    "expected %s, -1 (unlimited) or -2 (default), got \"%s\"", what,
			    text != NULL ? text : "");
		return FALSE;
	}
	if (value > QUOTA_MAX) {
		g_set_error(error, IMTA_STORE_DELIVERY_ERROR, IMTA_STORE_DELIVERY_ERROR_QUOTA,
			    "expected at most %s, got \"%s\"",
			    size ? "4096G" : "4398046511104", text);
		return FALSE;
	}
	*value_r = value;
	return TRUE;
}

gint64
imta_store_quota_effective(gint64 value, gint64 store_default)
{
	if (value == IMTA_DIR_QUOTA_DEFAULT)
		value = store_default;
	return value < 0 ? IMTA_DIR_QUOTA_UNLIMITED : value;
}

static gboolean
quota_exceeds(gint64 used, gint64 adding, gint64 limit)
{
	if (limit < 0)
		return FALSE;
	if (used > G_MAXINT64 - adding)
		return TRUE;
	return used + adding > limit;
}

/* Is `used` at or above `percent` of `limit`?  A zero limit is reached by
 * any use at all. */
static gboolean
quota_reaches(gint64 used, gint64 limit, gint percent)
{
	if (limit < 0 || percent <= 0 || used <= 0)
		return FALSE;
	if (used > G_MAXINT64 / 100)
		return TRUE;
	return used * 100 >= limit * (gint64)percent;
}

static void
quota_set(ImtaStoreQuotaDecision *decision, ImtaStoreQuotaAction action, const char *status,
	  const char *fmt, ...) G_GNUC_PRINTF(4, 5);

static void
quota_set(ImtaStoreQuotaDecision *decision, ImtaStoreQuotaAction action, const char *status,
	  const char *fmt, ...)
{
	va_list args;
	g_autofree char *text = NULL;

	decision->action = action;
	decision->status = status;
	va_start(args, fmt);
	text = g_strdup_vprintf(fmt, args);
	va_end(args);
	g_free(decision->diagnostic);
	decision->diagnostic = g_strconcat(status, " ", text, NULL);
}

static char *
quota_describe(const ImtaStoreQuotaPolicy *policy, const ImtaStoreUsage *usage)
{
	GString *out = g_string_new(NULL);

	if (policy->status_overquota)
		g_string_append(out, "the directory marks the user over quota");
	if (policy->limit_bytes >= 0) {
		g_string_append_printf(out, "%s%" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
				       " bytes used", out->len > 0 ? ", " : "", usage->bytes,
				       policy->limit_bytes);
	}
	if (policy->limit_messages >= 0) {
		g_string_append_printf(out, "%s%" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
				       " messages", out->len > 0 ? ", " : "", usage->messages,
				       policy->limit_messages);
	}
	return g_string_free(out, FALSE);
}

void
imta_store_quota_check(const ImtaStoreQuotaPolicy *policy, const ImtaStoreUsage *usage, gint64 size,
		   gint64 now, ImtaStoreQuotaDecision *decision_r)
{
	g_autofree char *why = NULL;
	gboolean over;

	memset(decision_r, 0, sizeof *decision_r);
	decision_r->action = IMTA_STORE_QUOTA_DELIVER;
	decision_r->status = "2.0.0";
	decision_r->over_since = usage->over_since;
	if (!policy->enforce || policy->exquota == IMTA_EXQUOTA_DELIVER)
		return;
	over = policy->status_overquota ||
	       quota_exceeds(usage->bytes, size, policy->limit_bytes) ||
	       quota_exceeds(usage->messages, 1, policy->limit_messages);
	if (!over) {
		decision_r->over_since = 0;
		return;
	}
	why = quota_describe(policy, usage);
	if (policy->limit_bytes > 0 && size > policy->limit_bytes) {
		quota_set(decision_r, IMTA_STORE_QUOTA_FAIL, "5.2.3",
			  "message of %" G_GINT64_FORMAT " bytes is larger than the mailbox quota "
			  "of %" G_GINT64_FORMAT " bytes", size, policy->limit_bytes);
		return;
	}
	if (decision_r->over_since == 0)
		decision_r->over_since = now;
	switch (policy->exquota) {
	case IMTA_EXQUOTA_BOUNCE:
		quota_set(decision_r, IMTA_STORE_QUOTA_FAIL, "5.2.2", "mailbox full (%s)", why);
		return;
	case IMTA_EXQUOTA_HOLD:
		quota_set(decision_r, IMTA_STORE_QUOTA_RETRY, "4.2.2",
			  "mailbox full (%s); held until there is room", why);
		return;
	default:
		break;
	}
	if (now - decision_r->over_since < policy->grace) {
		quota_set(decision_r, IMTA_STORE_QUOTA_RETRY, "4.2.2",
			  "mailbox full (%s); over quota for %" G_GINT64_FORMAT " of %"
			  G_GINT64_FORMAT " seconds of grace", why, now - decision_r->over_since,
			  policy->grace);
		return;
	}
	quota_set(decision_r, IMTA_STORE_QUOTA_FAIL, "5.2.2",
		  "mailbox full (%s); over quota longer than the grace period of %"
		  G_GINT64_FORMAT " seconds", why, policy->grace);
}

void
imta_store_quota_decision_clear(ImtaStoreQuotaDecision *decision)
{
	g_clear_pointer(&decision->diagnostic, g_free);
}

gboolean
imta_store_quota_after(const ImtaStoreQuotaPolicy *policy, const ImtaStoreUsage *usage, gint64 now,
		   gint64 *warned_at_r, gint64 *over_since_r)
{
	gboolean reached = quota_reaches(usage->bytes, policy->limit_bytes, policy->warn_percent) ||
			   quota_reaches(usage->messages, policy->limit_messages,
					 policy->warn_percent);
	gboolean over = quota_exceeds(usage->bytes, 0, policy->limit_bytes) ||
			quota_exceeds(usage->messages, 0, policy->limit_messages);

	*over_since_r = over ? usage->over_since : 0;
	if (!reached) {
		*warned_at_r = 0;
		return FALSE;
	}
	*warned_at_r = usage->warned_at;
	if (usage->warned_at != 0)
		return FALSE;
	*warned_at_r = now;
	return TRUE;
}

static gint
quota_percent_of(gint64 used, gint64 limit)
{
	if (limit < 0 || used <= 0)
		return 0;
	if (limit == 0)
		return 100;
	if (used > G_MAXINT64 / 100)
		return G_MAXINT;
	return (gint)MIN((used * 100) / limit, (gint64)G_MAXINT);
}

gint
imta_store_quota_percent(const ImtaStoreQuotaPolicy *policy, const ImtaStoreUsage *usage)
{
	return MAX(quota_percent_of(usage->bytes, policy->limit_bytes),
		   quota_percent_of(usage->messages, policy->limit_messages));
}

char *
imta_store_quota_warning_text(const ImtaStoreQuotaPolicy *policy, const ImtaStoreUsage *usage,
			  const char *userid)
{
	GString *out = g_string_new(NULL);

	g_string_append_printf(out, "Your mailbox (%s) is %d%% full.\n\n", userid,
			       imta_store_quota_percent(policy, usage));
	if (policy->limit_bytes >= 0)
		g_string_append_printf(out, "  Size:     %" G_GINT64_FORMAT " bytes used of %"
				       G_GINT64_FORMAT " (%d%%)\n", usage->bytes,
				       policy->limit_bytes,
				       quota_percent_of(usage->bytes, policy->limit_bytes));
	if (policy->limit_messages >= 0)
		g_string_append_printf(out, "  Messages: %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
				       " (%d%%)\n", usage->messages, policy->limit_messages,
				       quota_percent_of(usage->messages, policy->limit_messages));
	g_string_append_printf(out, "\nThis warning is sent when %d%% of a limit is reached.  "
			       "When the mailbox is full, new\nmail waits in the queue and is "
			       "returned to its senders after a while.\nPlease delete messages "
			       "you no longer need.\n", policy->warn_percent);
	return g_string_free(out, FALSE);
}
