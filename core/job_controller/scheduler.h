/*
 * scheduler.h - when the job controller starts a master job.
 *
 * A channel may run at most min(maxjobs, JOB_LIMIT of its pool minus the
 * jobs the pool's other channels run) jobs; a channel whose pool does not
 * exist runs none.  A channel with due messages and no job gets one; it
 * gets another each time its due backlog exceeds threaddepth messages per
 * running job.  When several channels of a full pool wait, the one running
 * the fewest jobs goes first (then the larger backlog, then round robin),
 * so a busy channel cannot starve its neighbours.  After a job exits
 * abnormally its channel waits 1, 2, 4 ... up to 60 seconds before the
 * next start, so a broken master program is not restarted in a tight loop.
 *
 * Pure bookkeeping: no processes, no clock (times are passed in).
 */
#ifndef JC_SCHEDULER_H
#define JC_SCHEDULER_H

#include <glib.h>
#include <imta/channel.h>

G_BEGIN_DECLS

#define SCHED_NONE G_MAXUINT
#define SCHED_MAX_RESTART_DELAY 60

typedef struct _Scheduler Scheduler;

Scheduler *scheduler_new(guint n_channels, guint n_pools);
void scheduler_free(Scheduler *sched);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Scheduler, scheduler_free)

void scheduler_set_pool(Scheduler *sched, guint pool, guint job_limit);
/* `pool` SCHED_NONE: the channel names an unknown pool and never runs. */
void scheduler_set_channel(Scheduler *sched, guint channel, guint pool, guint maxjobs,
			   guint threaddepth);

guint scheduler_channel_jobs(const Scheduler *sched, guint channel);
guint scheduler_channel_pool(const Scheduler *sched, guint channel);
guint scheduler_pool_jobs(const Scheduler *sched, guint pool);
guint scheduler_pool_limit(const Scheduler *sched, guint pool);
guint scheduler_total_jobs(const Scheduler *sched);

/* How many jobs the channel may run now, counting its running ones. */
guint scheduler_channel_limit(const Scheduler *sched, guint channel);

/* Does the channel want one more job, with `due` messages due and not
 * handed out? */
gboolean scheduler_wants_job(const Scheduler *sched, guint channel, guint due, gint64 now);

/* The channel to start a job for next (due[]: one entry per channel), or
 * SCHED_NONE.  The caller starts it and calls scheduler_job_started(). */
guint scheduler_pick(Scheduler *sched, const guint *due, gint64 now);

void scheduler_job_started(Scheduler *sched, guint channel);
/* `abnormal`: killed by a signal or a nonzero exit status. */
void scheduler_job_ended(Scheduler *sched, guint channel, gboolean abnormal, gint64 now);
/* No start before this time (0 = none). */
gint64 scheduler_not_before(const Scheduler *sched, guint channel);

/* When a message that failed attempt number `attempts` is due again: the
 * time the master job reported when it gave one (a time in the past means
 * now), else now plus the channel's backoff for the priority. */
gint64 scheduler_retry_time(const ImtaChannel *channel, ImtaPriority priority, guint attempts,
			    gint64 reported, gint64 now);

G_END_DECLS

#endif
