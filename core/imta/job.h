/*
 * job.h - what a channel's master program works with: a job handing out
 * messages, and the per-recipient outcomes it reports back.
 *
 * A master entry point loops:
 *
 *	while ((msg = imta_master_job_next(job, &error)) != NULL) {
 *		for each recipient i:
 *			... deliver ...
 *			imta_master_job_report(job, msg, i, outcome, "2.0.0 ...");
 *		if (!imta_master_job_finish(job, msg, &error))
 *			return IMTA_ENTRY_TEMPFAIL;
 *	}
 *
 * or, when it delivers one message at a time and has nothing to do
 * between finish() and the next message, lets imta_master_job_each() run
 * that loop around its per-message function.
 *
 * finish() returns only once the outcomes are durable; a recipient without
 * a reported outcome is retried later.  Messages come from whatever runs
 * the job (the job controller's queue, or a test): the job is a thin
 * interface over an ImtaMasterJobSource.
 *
 * A message handed to a plugin carries only the recipients still
 * pending: those delivered or failed in an earlier attempt are left out,
 * so a plugin never delivers twice to a recipient the queue recorded.
 *
 * Messages are owned by the job; a plugin must not keep one after
 * finish().  One job is used by one thread at a time.
 */
#ifndef IMTA_JOB_H
#define IMTA_JOB_H

#include <gio/gio.h>
#include <imta/channel.h>
#include <imta/plugin.h>

G_BEGIN_DECLS

typedef struct _ImtaMessage ImtaMessage;

/* RFC 3461 NOTIFY values; 0 = not given (the default: FAILURE,DELAY). */
typedef enum {
	IMTA_NOTIFY_NEVER   = 1 << 0,
	IMTA_NOTIFY_SUCCESS = 1 << 1,
	IMTA_NOTIFY_FAILURE = 1 << 2,
	IMTA_NOTIFY_DELAY   = 1 << 3,
} ImtaNotify;

/* RFC 3461 RET. */
typedef enum { IMTA_RET_DEFAULT, IMTA_RET_FULL, IMTA_RET_HDRS } ImtaRet;

typedef enum {
	IMTA_OUTCOME_NONE,       /* not reported yet: retried later */
	IMTA_OUTCOME_DELIVERED,  /* done (2xx) */
	IMTA_OUTCOME_RETRY,      /* temporary failure (4xx): try again after backoff */
	IMTA_OUTCOME_FAILED,     /* permanent failure (5xx): return to sender */
} ImtaOutcome;

typedef struct {
	char *address;      /* active envelope recipient (after rewriting) */
	char *orcpt;        /* ORCPT as "type;address", or NULL */
	guint notify;       /* ImtaNotify bits */
	ImtaOutcome outcome;
	char *diagnostic;   /* the reply or reason of the last outcome */
	gboolean dsn_passed; /* delivered to a next hop that took the DSN request */
} ImtaRecipient;

/* ---- messages ------------------------------------------------------- */

ImtaMessage *imta_message_new(const char *id, const char *return_path);
void imta_message_set_envid(ImtaMessage *msg, const char *envid);
void imta_message_set_ret(ImtaMessage *msg, ImtaRet ret);
/* The queue priority (normal unless set), kept when a master queues the
 * message onward. */
void imta_message_set_priority(ImtaMessage *msg, ImtaPriority priority);
void imta_message_add_recipient(ImtaMessage *msg, const char *address, const char *orcpt,
				guint notify);
/* The content (RFC 5322 header and body, LF line ends) from memory or a
 * file region; the message keeps its own reference / path. */
void imta_message_set_content_bytes(ImtaMessage *msg, GBytes *content);
void imta_message_set_content_file(ImtaMessage *msg, const char *path, goffset offset,
				   goffset length);
/* The content of `from`, the same bytes or the same file region. */
void imta_message_share_content(ImtaMessage *msg, const ImtaMessage *from);
/* The content when it is in memory (not a new reference), else NULL. */
GBytes *imta_message_content_bytes(const ImtaMessage *msg);
/* The first `max` bytes of the content (all of it when it is shorter):
 * the message's own bytes when it holds them, else read from its file,
 * fewer when the file ends early.  NULL, with `error` set, when the file
 * cannot be read. */
GBytes *imta_message_read_content(const ImtaMessage *msg, gsize max, GError **error);

const char *imta_message_id(const ImtaMessage *msg);
const char *imta_message_return_path(const ImtaMessage *msg); /* "" = null path */
const char *imta_message_envid(const ImtaMessage *msg);       /* NULL if none */
ImtaRet imta_message_ret(const ImtaMessage *msg);
/* The channel that queued the message ("" when unknown), and, for a
 * message diverted on its way (the conversion and defragment channels,
 * queue.h), the channel it goes on to afterwards (NULL otherwise). */
void imta_message_set_source_channel(ImtaMessage *msg, const char *channel);
const char *imta_message_source_channel(const ImtaMessage *msg);
void imta_message_set_onward_channel(ImtaMessage *msg, const char *channel);
const char *imta_message_onward_channel(const ImtaMessage *msg);
ImtaPriority imta_message_priority(const ImtaMessage *msg);
guint imta_message_recipient_count(const ImtaMessage *msg);
const ImtaRecipient *imta_message_recipient(const ImtaMessage *msg, guint index);
goffset imta_message_size(const ImtaMessage *msg);
/* A fresh stream positioned at the start of the content. */
GInputStream *imta_message_open_content(const ImtaMessage *msg, GError **error);

void imta_message_free(ImtaMessage *msg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaMessage, imta_message_free)

/* ---- master jobs ---------------------------------------------------- */

/* Whoever runs a job supplies these.  next() returns a message the source
 * keeps owning until finish(); finish() makes the outcomes recorded in
 * msg's recipients durable and releases the message. */
typedef struct {
	ImtaMessage *(*next)(gpointer source, GError **error);
	gboolean (*finish)(gpointer source, ImtaMessage *msg, GError **error);
	void (*free)(gpointer source);
	/* Optional: next() without waiting; NULL with *idle_r TRUE when no
	 * message is due now. */
	ImtaMessage *(*try_next)(gpointer source, gboolean *idle_r, GError **error);
	/* Optional: after a message was handed out, whether others were due
	 * at that moment too. */
	gboolean (*more_due)(gpointer source);
} ImtaMasterJobSource;

ImtaMasterJob *imta_master_job_new(const ImtaConfig *config, const ImtaChannel *channel,
				   const ImtaMasterJobSource *ops, gpointer source);
void imta_master_job_free(ImtaMasterJob *job);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaMasterJob, imta_master_job_free)

const ImtaChannel *imta_master_job_channel(const ImtaMasterJob *job);
const ImtaConfig *imta_master_job_config(const ImtaMasterJob *job);

/* The next message to deliver, or NULL when there is no more work (with
 * *error set when the source failed). */
ImtaMessage *imta_master_job_next(ImtaMasterJob *job, GError **error);

/* As imta_master_job_next(), without waiting for work: NULL with *idle_r
 * TRUE when no message is due at this moment (the job goes on: ask again
 * later), FALSE at the end of work or on error, as next().  A master that
 * delivers several messages at once asks this way while some are in
 * flight, and waits with next() only when none is: a waiting next() holds
 * the job's link to the job controller, and finish() with it.  With a
 * source that cannot answer at once, this is next(). */
ImtaMessage *imta_master_job_try_next(ImtaMasterJob *job, gboolean *idle_r, GError **error);

/* After next() or try_next() gave a message: were more due at that moment?
 * A master with idle threads puts another to work only then.  TRUE when
 * the source cannot tell. */
gboolean imta_master_job_more_due(ImtaMasterJob *job);

/* Record recipient `index`'s outcome and the reply or reason behind it. */
void imta_master_job_report(ImtaMasterJob *job, ImtaMessage *msg, guint index,
			    ImtaOutcome outcome, const char *diagnostic);

/* Recipient `index` was handed to a next hop that accepted its DSN
 * request (NOTIFY, ORCPT; RFC 3461 section 4.2): DELIVERED, and the
 * success notice it may have asked for is now that hop's to send, so none
 * is sent from here. */
void imta_master_job_report_relayed(ImtaMasterJob *job, ImtaMessage *msg, guint index,
				    const char *diagnostic);

/* Done with `msg`: outcomes become durable before this returns TRUE. */
gboolean imta_master_job_finish(ImtaMasterJob *job, ImtaMessage *msg, GError **error);

/* What imta_master_job_each() does with one message: report the outcome
 * of each recipient it can settle now (one left unreported is retried
 * later).  It must not finish() the message. */
typedef void (*ImtaMasterMessageFn)(ImtaMasterJob *job, ImtaMessage *msg, gpointer data);

/* The master loop: next(), `deliver`, finish(), until the job has no more
 * messages (IMTA_ENTRY_OK).  When next() or a finish() fails, logs the
 * error with the channel's name and returns IMTA_ENTRY_TEMPFAIL at once;
 * a message not finished stays queued as it was. */
ImtaEntryStatus imta_master_job_each(ImtaMasterJob *job, ImtaMasterMessageFn deliver,
				     gpointer data);

G_END_DECLS

#endif
