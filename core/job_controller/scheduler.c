/*
 * scheduler.c - job limits per channel and pool, threaddepth, and the
 * restart throttle after abnormal exits (see scheduler.h).
 */
#include "config.h"

#include <glib.h>

#include <imta/channel.h>
#include "scheduler.h"

typedef struct {
	guint pool;
	guint maxjobs;
	guint threaddepth;
	guint jobs;
	guint crashes;        /* abnormal exits in a row */
	gint64 not_before;
} SchedChannel;

typedef struct {
	guint limit;
	guint jobs;
} SchedPool;

struct _Scheduler {
	SchedChannel *channels;
	guint n_channels;
	SchedPool *pools;
	guint n_pools;
	guint cursor;         /* round robin among equal candidates */
	guint total;
};

Scheduler *
scheduler_new(guint n_channels, guint n_pools)
{
	Scheduler *sched = g_new0(Scheduler, 1);

	sched->n_channels = n_channels;
	sched->channels = g_new0(SchedChannel, MAX(n_channels, 1));
	sched->n_pools = n_pools;
	sched->pools = g_new0(SchedPool, MAX(n_pools, 1));
	for (guint i = 0; i < n_channels; i++) {
		sched->channels[i].pool = n_pools > 0 ? 0 : SCHED_NONE;
		sched->channels[i].maxjobs = 1;
		sched->channels[i].threaddepth = 10;
	}
	return sched;
}

void
scheduler_free(Scheduler *sched)
{
	if (sched == NULL)
		return;
	g_free(sched->channels);
	g_free(sched->pools);
	g_free(sched);
}

void
scheduler_set_pool(Scheduler *sched, guint pool, guint job_limit)
{
	g_return_if_fail(pool < sched->n_pools);
	sched->pools[pool].limit = job_limit;
}

void
scheduler_set_channel(Scheduler *sched, guint channel, guint pool, guint maxjobs,
		      guint threaddepth)
{
	SchedChannel *ch;

	g_return_if_fail(channel < sched->n_channels);
	g_return_if_fail(pool == SCHED_NONE || pool < sched->n_pools);
	g_return_if_fail(sched->channels[channel].jobs == 0);
	ch = &sched->channels[channel];
	ch->pool = pool;
	ch->maxjobs = maxjobs;
	ch->threaddepth = MAX(threaddepth, 1);
}

guint
scheduler_channel_jobs(const Scheduler *sched, guint channel)
{
	g_return_val_if_fail(channel < sched->n_channels, 0);
	return sched->channels[channel].jobs;
}

guint
scheduler_channel_pool(const Scheduler *sched, guint channel)
{
	g_return_val_if_fail(channel < sched->n_channels, SCHED_NONE);
	return sched->channels[channel].pool;
}

guint
scheduler_pool_jobs(const Scheduler *sched, guint pool)
{
	g_return_val_if_fail(pool < sched->n_pools, 0);
	return sched->pools[pool].jobs;
}

guint
scheduler_pool_limit(const Scheduler *sched, guint pool)
{
	g_return_val_if_fail(pool < sched->n_pools, 0);
	return sched->pools[pool].limit;
}

guint
scheduler_total_jobs(const Scheduler *sched)
{
	return sched->total;
}

guint
scheduler_channel_limit(const Scheduler *sched, guint channel)
{
	const SchedChannel *ch;
	const SchedPool *pool;
	guint others, room;

	g_return_val_if_fail(channel < sched->n_channels, 0);
	ch = &sched->channels[channel];
	if (ch->pool == SCHED_NONE)
		return 0;
	pool = &sched->pools[ch->pool];
	others = pool->jobs - ch->jobs;
	room = pool->limit > others ? pool->limit - others : 0;
	return MIN(ch->maxjobs, room);
}

gboolean
scheduler_wants_job(const Scheduler *sched, guint channel, guint due, gint64 now)
{
	const SchedChannel *ch;

	g_return_val_if_fail(channel < sched->n_channels, FALSE);
	ch = &sched->channels[channel];
	if (due == 0 || ch->jobs >= scheduler_channel_limit(sched, channel))
		return FALSE;
	if (ch->not_before > now)
		return FALSE;
	return (guint64)due > (guint64)ch->threaddepth * ch->jobs;
}

/* Is candidate `a` (due da) a better choice than `b` (due db)? */
static gboolean
sched_better(const Scheduler *sched, guint a, guint da, guint b, guint db)
{
	const SchedChannel *ca = &sched->channels[a], *cb = &sched->channels[b];

	if (ca->jobs != cb->jobs)
		return ca->jobs < cb->jobs;
	return da > db;
}

guint
scheduler_pick(Scheduler *sched, const guint *due, gint64 now)
{
	guint best = SCHED_NONE;

	for (guint k = 0; k < sched->n_channels; k++) {
		guint i = (sched->cursor + k) % sched->n_channels;

		if (!scheduler_wants_job(sched, i, due[i], now))
			continue;
		if (best == SCHED_NONE || sched_better(sched, i, due[i], best, due[best]))
			best = i;
	}
	if (best != SCHED_NONE)
		sched->cursor = (best + 1) % sched->n_channels;
	return best;
}

void
scheduler_job_started(Scheduler *sched, guint channel)
{
	SchedChannel *ch;

	g_return_if_fail(channel < sched->n_channels);
	ch = &sched->channels[channel];
	ch->jobs++;
	if (ch->pool != SCHED_NONE)
		sched->pools[ch->pool].jobs++;
	sched->total++;
}

void
scheduler_job_ended(Scheduler *sched, guint channel, gboolean abnormal, gint64 now)
{
	SchedChannel *ch;

	g_return_if_fail(channel < sched->n_channels);
	ch = &sched->channels[channel];
	g_return_if_fail(ch->jobs > 0);
	ch->jobs--;
	if (ch->pool != SCHED_NONE)
		sched->pools[ch->pool].jobs--;
	sched->total--;
	if (!abnormal) {
		ch->crashes = 0;
		ch->not_before = 0;
		return;
	}
	ch->crashes = MIN(ch->crashes + 1, 16);
	ch->not_before = now + MIN((gint64)1 << (ch->crashes - 1), SCHED_MAX_RESTART_DELAY);
}

gint64
scheduler_not_before(const Scheduler *sched, guint channel)
{
	g_return_val_if_fail(channel < sched->n_channels, 0);
	return sched->channels[channel].not_before;
}

gint64
scheduler_retry_time(const ImtaChannel *channel, ImtaPriority priority, guint attempts,
		     gint64 reported, gint64 now)
{
	if (reported > now)
		return reported;
	if (reported > 0)
		return now;
	return now + imta_channel_backoff(channel, priority, MAX(attempts, 1));
}
