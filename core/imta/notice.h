/*
 * notice.h - delivery status notifications (RFC 3464): failure notices
 * ("bounces"), delay warnings and success notices about queued messages.
 *
 * A notice is an ordinary message: it is written with an empty envelope
 * From (<>), its recipient (the original's return path) is routed by the
 * rewrite rules like any envelope recipient, and it is queued through
 * ImtaEnqueue, durable when imta_notice_send() returns TRUE.
 *
 * The report is multipart/report; report-type=delivery-status:
 *   1. text/plain: what happened, per recipient, in plain words;
 *   2. message/delivery-status: Reporting-MTA, Original-Envelope-Id
 *      (when ENVID was given), Arrival-Date, then per recipient
 *      Original-Recipient (when ORCPT was given), Final-Recipient, Action,
 *      Status, Remote-MTA and Diagnostic-Code when known,
 *      Last-Attempt-Date, and Will-Retry-Until for delays;
 *   3. the original: message/rfc822, or text/rfc822-headers (its header
 *      only) when RET=HDRS was asked, when it is larger than
 *      CONTENT_RETURN_BLOCK_LIMIT blocks, when it has a line longer than
 *      998 octets or a NUL byte, and for delay and success notices unless
 *      RET=FULL was asked.
 * Lines end with LF (the queue's convention) and are at most 998 octets.
 *
 * Who gets what (RFC 3461 NOTIFY, per recipient): no NOTIFY = failures
 * and delays; NEVER = nothing; otherwise the events listed.  A message
 * with an empty return path (a notice itself) never gets a notice.  One
 * notice covers every recipient of one event of one queue file.
 *
 * Postmaster copies: the channel's sendpost family for failures, warnpost
 * for delays (IMTA_POST_DEFAULT: a copy of failures, none of delays).
 * ALWAYS and COPY add the postmaster as a second envelope recipient of
 * the same notice; ERR (a copy only when the notice itself cannot be
 * delivered) is not implemented and sends no copy; NEVER sends none.
 * Success notices have no copies.
 *
 * Diagnostics.  A recipient's diagnostic (job.h) is read as follows:
 *   "remote NAME[ [ADDR]] said: REPLY"  the next hop NAME answered REPLY
 *                                       (Remote-MTA: dns; NAME);
 *   "NNN[ -]x.y.z text" or "NNN text"   an SMTP reply (Diagnostic-Code:
 *                                       smtp; ...), Status from its
 *                                       enhanced code, else N.0.0;
 *   "x.y.z text"                        a local reason (Diagnostic-Code:
 *                                       X-IMTA; ...), Status x.y.z;
 *   "REASON; last error: DIAGNOSTIC"    a final REASON (its status wins)
 *                                       over the last temporary error,
 *                                       which gives Remote-MTA and an
 *                                       smtp Diagnostic-Code;
 *   anything else                       X-IMTA text, Status 5.0.0 for
 *                                       failures, 4.0.0 for delays,
 *                                       2.0.0 for successes.
 * Control characters become spaces and 8-bit bytes '?' in the report.
 */
#ifndef IMTA_NOTICE_H
#define IMTA_NOTICE_H

#include <glib.h>
#include <imta/config.h>
#include <imta/job.h>
#include <imta/queue.h>

G_BEGIN_DECLS

#define IMTA_NOTICE_ERROR (imta_notice_error_quark())
GQuark imta_notice_error_quark(void);

typedef enum {
	IMTA_NOTICE_ERROR_TEMPORARY, /* try again later: the queue, the directory */
	IMTA_NOTICE_ERROR_PERMANENT, /* can never be sent: the return path does not route */
} ImtaNoticeErrorCode;

typedef enum {
	IMTA_NOTICE_FAILURE,   /* recipients failed for good */
	IMTA_NOTICE_DELAY,     /* recipients still undelivered at a notices age */
	IMTA_NOTICE_SUCCESS,   /* recipients delivered (NOTIFY=SUCCESS) */
} ImtaNoticeKind;

/* RFC 3464 Action values. */
typedef enum {
	IMTA_NOTICE_ACTION_FAILED,
	IMTA_NOTICE_ACTION_DELAYED,
	IMTA_NOTICE_ACTION_DELIVERED,
	IMTA_NOTICE_ACTION_RELAYED,
} ImtaNoticeAction;

/* "failure notice", "delay warning", "success notice". */
const char *imta_notice_kind_name(ImtaNoticeKind kind);

/* ---- decisions --------------------------------------------------------- */

/* Does a recipient with NOTIFY bits `notify` (0 = not given) want a
 * notice of `kind`? */
gboolean imta_notice_wanted(ImtaNoticeKind kind, guint notify);

/* Does the postmaster get a copy of a notice of `kind` under `mode` (the
 * channel's sendpost for failures, warnpost for delays)?  Never for an
 * empty return path (then no notice is sent at all). */
gboolean imta_notice_postmaster_copy(ImtaNoticeKind kind, ImtaPostCopy mode,
				     const char *return_path);

/* The Action of a successful recipient of `channel`: relayed when the
 * channel hands mail to another host (it carries mx, nomx, defaultmx,
 * randommx, nonrandommx or daemon), which may not report further;
 * delivered otherwise. */
ImtaNoticeAction imta_notice_success_action(const ImtaChannel *channel);

/* ---- diagnostics --------------------------------------------------------- */

typedef struct {
	char status[16];        /* "5.1.1" */
	char *remote_mta;       /* NAME of "remote NAME said:", or NULL */
	char *type;             /* "smtp" or "X-IMTA"; NULL: no diagnostic given */
	char *text;             /* the Diagnostic-Code text, sanitised */
	char *human;            /* the whole diagnostic, sanitised, for the text part */
} ImtaNoticeDiagnostic;

/* Read `diagnostic` (may be NULL) as the header comment describes. */
void imta_notice_parse_diagnostic(const char *diagnostic, ImtaNoticeAction action,
				  ImtaNoticeDiagnostic *diag_r);
void imta_notice_diagnostic_clear(ImtaNoticeDiagnostic *diag);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(ImtaNoticeDiagnostic, imta_notice_diagnostic_clear)

/* ---- the report ---------------------------------------------------------- */

typedef struct {
	const char *address;     /* Final-Recipient (the active address) */
	const char *orcpt;       /* ORCPT "type;address", or NULL */
	ImtaNoticeAction action;
	const char *diagnostic;  /* as reported, or NULL */
	gint64 last_attempt;     /* Unix time; 0 = none */
} ImtaNoticeRecipient;

typedef struct {
	ImtaNoticeKind kind;
	const char *reporting_mta;  /* this host's name */
	const char *from_address;   /* RETURN_ADDRESS (or the channel's returnaddress) */
	const char *from_personal;  /* RETURN_PERSONAL, or NULL */
	const char *to;             /* the original's return path */
	const char *queue_id;       /* the original's queue id */
	const char *envid;          /* ENVID, or NULL */
	ImtaRet ret;
	gint64 arrival;             /* when the original was queued */
	gint64 date;                /* now: the notice's Date */
	gint64 retry_until;         /* delays: when it will be returned; 0 = unknown */
	const char *message_id;     /* "<...>" */
	const char *boundary;       /* MIME boundary; must not occur in the original */
	goffset content_limit;      /* bytes: larger originals return headers only; 0 = none */
	const ImtaNoticeRecipient *rcpts;
	guint n_rcpts;
} ImtaNoticeReport;

/* Where the report goes, piece by piece (imta_enqueue_write, a GString). */
typedef gboolean (*ImtaNoticeSink)(gpointer data, const void *bytes, gsize length,
				   GError **error);

/* Write the whole notice (header and body) for `report` about `original`
 * (its content is read, never more than imta_message_size() bytes).
 * Memory stays bounded whatever the size of the original. */
gboolean imta_notice_report_write(const ImtaNoticeReport *report, const ImtaMessage *original,
				  ImtaNoticeSink sink, gpointer data, GError **error);

/* RFC 5322 date-time in the local time zone, e.g.
 * "Tue, 14 Nov 2023 22:13:20 +0000" (English names whatever the locale). */
char *imta_notice_format_date(gint64 when);

/* ---- sending ------------------------------------------------------------- */

typedef struct {
	const ImtaConfig *config;   /* cnf, options, tailor, mappings, directory */
	ImtaQueue *queue;
	const ImtaChannel *channel; /* where the event happened: sendpost,
				     * warnpost, returnaddress, success Action */
	/* Test hooks: fixed values instead of fresh ones (0 / NULL = fresh). */
	gint64 now;
	const char *message_id;
	const char *boundary;
} ImtaNoticeContext;

typedef struct {
	ImtaNoticeKind kind;
	const ImtaQueueEntry *entry;   /* the original queue file, outcomes applied */
	const guint *indices;          /* recipients of entry->message this event covers */
	guint n_indices;
	gint64 retry_until;            /* delays: when the message will be returned */
} ImtaNoticeEvent;

typedef enum {
	IMTA_NOTICE_SENT,             /* queued: see files */
	IMTA_NOTICE_NOT_REQUESTED,    /* no recipient of the event asked for it (NOTIFY) */
	IMTA_NOTICE_NULL_RETURN_PATH, /* the original's return path is empty */
	IMTA_NOTICE_NOTHING,          /* the event has no recipients */
} ImtaNoticeResult;

typedef struct {
	ImtaNoticeResult result;
	GStrv ids;              /* SENT: queue ids of the notice's files (one per channel) */
	GStrv files;            /* SENT: their paths, relative to the queue root */
	char *recipient;        /* SENT: the rewritten return path */
	char *postmaster;       /* SENT: the postmaster copy's address, or NULL */
	guint reported;         /* recipients in the report */
	guint declined;         /* recipients of the event that asked for no notice */
} ImtaNoticeOutcome;

/* Queue the notice for `event` when one is due.  TRUE with *outcome_r
 * saying what happened (a notice sent, or why none was); FALSE with an
 * IMTA_NOTICE_ERROR when it could not be queued now (TEMPORARY) or ever
 * (PERMANENT).  A TRUE return with IMTA_NOTICE_SENT means the notice is
 * durably queued. */
gboolean imta_notice_send(const ImtaNoticeContext *ctx, const ImtaNoticeEvent *event,
			  ImtaNoticeOutcome *outcome_r, GError **error);
void imta_notice_outcome_clear(ImtaNoticeOutcome *outcome);

G_END_DECLS

#endif
