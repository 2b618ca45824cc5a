/*
 * queue_source.h - the master job source over queue files: the job
 * controller hands out paths (NEXT -> MSG), the queue store reads and
 * records them, and the decisions in between (retry delay, expiry by the
 * notices ages, the DONE line) are small pure functions tested on their own.
 */
#ifndef IMTA_MASTER_QUEUE_SOURCE_H
#define IMTA_MASTER_QUEUE_SOURCE_H

#include <signal.h>
#include <glib.h>
#include <imta/config.h>
#include <imta/job.h>
#include <imta/queue.h>
#include <imta/jc_client.h>

G_BEGIN_DECLS

/* The diagnostic given to recipients still pending when a message outlives
 * its last notices age. */
#define MASTER_EXPIRED_DIAGNOSTIC "4.4.7 message expired"

/* Consecutive unusable files one NEXT loop skips before giving up. */
#define MASTER_MAX_BAD_FILES 1000

/* ---- decisions ------------------------------------------------------ */

/* Seconds in one notices unit: a day, or an hour with RETURN_UNITS=1. */
gint64 master_notices_unit(gint64 return_units);

/* Is a message created at `created` past the last of its notices ages at
 * `now`?  ages[0..n_ages) ascending, in notices units; none = never. */
gboolean master_notices_expired(gint64 created, gint64 now, const gint *ages, guint n_ages,
				gint64 return_units);

/* Seconds until the next attempt after the attempt now ending, for a
 * message that had `attempts` before it. */
gint64 master_retry_delay(const ImtaChannel *channel, ImtaPriority priority, guint attempts);

/* Turn every recipient without a final outcome into a failure with
 * MASTER_EXPIRED_DIAGNOSTIC (the last temporary diagnostic appended);
 * returns how many were changed. */
guint master_expire_pending(ImtaMasterJob *job, ImtaMessage *msg);

/* Recipients delivered, failed, and still to retry (RETRY or NONE). */
void master_count_outcomes(const ImtaMessage *msg, guint *delivered_r, guint *failed_r,
			   guint *retry_r);

/* The DONE request: new_path NULL = the file is gone (next_attempt then 0). */
char *master_done_line(const char *path, const char *new_path, guint delivered, guint failed,
		       guint retry, gint64 next_attempt);

typedef enum {
	MASTER_REPLY_MSG,   /* *path_r holds the decoded path */
	MASTER_REPLY_EXIT,
	MASTER_REPLY_NONE,  /* to NEXT NOWAIT: nothing due now */
} MasterReply;

/* Parse the reply to NEXT; a path must be relative, without "..", and
 * name a queue file; *more_r tells whether MSG said MORE.  Anything else
 * is an IMTA_JC_ERROR_PROTOCOL error. */
gboolean master_parse_next_reply(const char *line, MasterReply *reply_r, char **path_r,
				 gboolean *more_r, GError **error);

/* The log code of an outcome, in the mail.log spirit: D delivered,
 * R failed (returned), Q queued for retry. */
char master_outcome_code(ImtaOutcome outcome);

/* Size in blocks (rounded up, at least 1 for a non-empty message). */
gint64 master_blocks(goffset size, gint64 block_size);

/* ---- the source ----------------------------------------------------- */

typedef struct _MasterSource MasterSource;

/* `queue` and `jc` stay owned by the caller and must outlive the source.
 * Flags raised by signal handlers (either may be NULL): `stop` = ask for
 * no new message; `reopen` = reopen the log file before the next one. */
MasterSource *master_source_new(const ImtaConfig *config, const ImtaChannel *channel,
				ImtaQueue *queue, ImtaJcClient *jc, volatile sig_atomic_t *stop,
				volatile sig_atomic_t *reopen);
/* The job the source feeds (for reporting expiry outcomes). */
void master_source_set_job(MasterSource *source, ImtaMasterJob *job);
/* TRUE once the job controller connection was lost. */
gboolean master_source_disconnected(const MasterSource *source);
/* Messages finished so far. */
guint master_source_finished(const MasterSource *source);

extern const ImtaMasterJobSource master_source_ops;

G_END_DECLS

#endif
