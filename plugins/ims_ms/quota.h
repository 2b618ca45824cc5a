/*
 * quota.h - the ims-ms channel's quota policy: whether a message may go
 * into a mailbox, what to tell the queue when it may not, and when the
 * user gets a warning.  Pure decisions over numbers, so that every case
 * can be tried in a table (tests/unit/test-ims-ms.c).
 *
 * Before a delivery (ims_ms_quota_check): with enforcement off, or on a
 * channel marked `exquota`, the message goes in.  Otherwise the user is
 * over quota when the directory status says so (with
 * store.overquotastatus on) or when usage plus this message passes either
 * limit.  Over quota:
 *   - a message larger than the byte limit by itself fails at once (5.2.3);
 *   - `noexquota`: fails at once (5.2.2);
 *   - `holdexquota`: stays queued (4.2.2) until the channel's notices
 *     return it;
 *   - otherwise: stays queued (4.2.2) while the user has been over quota
 *     for less than the grace period (counted from the first refused
 *     delivery, recorded as over_since), then fails (5.2.2).
 * A user under quota has over_since cleared.
 *
 * After a delivery (ims_ms_quota_after): usage at or above quotawarn
 * percent of either limit, and no warning since usage was last under it:
 * send one and record warned_at; usage back under the threshold clears
 * warned_at.
 */
#ifndef IMS_MS_QUOTA_H
#define IMS_MS_QUOTA_H

#include <glib.h>
#include <imta/channel.h>
#include <imta/store.h>

G_BEGIN_DECLS

/* A mailQuota (`size`: bytes with an optional K, M or G suffix) or
 * mailMsgQuota value: -1 unlimited, -2 the configured default
 * (IMTA_DIR_QUOTA_*), 0 no space at all.  Errors are IMS_MS_ERROR_QUOTA
 * ("expected ..., got \"x\""). */
gboolean ims_ms_quota_parse(const char *text, gboolean size, gint64 *value_r, GError **error);

/* A directory value with the default applied: -2 gives `store_default`;
 * anything negative is then unlimited (-1). */
gint64 ims_ms_quota_effective(gint64 value, gint64 store_default);

typedef struct {
	gboolean enforce;         /* store.quotaenforcement */
	ImtaExquota exquota;      /* the channel's exquota / holdexquota / noexquota */
	gint64 limit_bytes;       /* -1: none */
	gint64 limit_messages;    /* -1: none */
	gint64 grace;             /* seconds */
	gint warn_percent;        /* 0: no warnings */
	gboolean status_overquota; /* directory overquota status, with store.overquotastatus */
} ImsMsQuotaPolicy;

typedef enum {
	IMS_MS_QUOTA_DELIVER,
	IMS_MS_QUOTA_RETRY,
	IMS_MS_QUOTA_FAIL,
} ImsMsQuotaAction;

typedef struct {
	ImsMsQuotaAction action;
	const char *status;       /* "2.0.0", "4.2.2", "5.2.2", "5.2.3" */
	gint64 over_since;        /* the value to record */
	char *diagnostic;         /* "4.2.2 mailbox full: ..." (NULL for DELIVER) */
} ImsMsQuotaDecision;

/* Decide for one message of `size` bytes at time `now`. */
void ims_ms_quota_check(const ImsMsQuotaPolicy *policy, const ImtaStoreUsage *usage,
			gint64 size, gint64 now, ImsMsQuotaDecision *decision_r);
void ims_ms_quota_decision_clear(ImsMsQuotaDecision *decision);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(ImsMsQuotaDecision, ims_ms_quota_decision_clear)

/* After a delivery with usage `usage` (including the new message):
 * whether to send a warning now; *warned_at_r and *over_since_r get the
 * state to record. */
gboolean ims_ms_quota_after(const ImsMsQuotaPolicy *policy, const ImtaStoreUsage *usage,
			    gint64 now, gint64 *warned_at_r, gint64 *over_since_r);

/* The highest percentage of a limit used (0 without limits), for the
 * warning's text. */
gint ims_ms_quota_percent(const ImsMsQuotaPolicy *policy, const ImtaStoreUsage *usage);

/* The warning's body text: usage, limits, percent. */
char *ims_ms_quota_warning_text(const ImsMsQuotaPolicy *policy, const ImtaStoreUsage *usage,
				const char *userid);

G_END_DECLS

#endif
