/*
 * test-scheduler.c - when the job controller starts master jobs: maxjobs
 * and pool limits, threaddepth, the restart throttle, retry times from the
 * channel's backoff, and per-host fairness seen through jobs.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/imta_cnf.h>
#include "job_controller/message_table.h"
#include "job_controller/scheduler.h"

#define NOW 1800000000

/* ---- limits ---------------------------------------------------------- */

static const struct {
	const char *name;
	guint maxjobs;
	guint pool_limit;
	guint own_jobs;     /* jobs the channel runs */
	guint other_jobs;   /* jobs other channels of the pool run */
	guint limit;        /* scheduler_channel_limit */
} limit_rows[] = {
	{ "maxjobs below pool", 2, 10, 0, 0, 2 },
	{ "pool below maxjobs", 7, 3, 0, 0, 3 },
	{ "others take the pool", 7, 10, 0, 8, 2 },
	{ "own jobs count once", 7, 10, 2, 3, 7 },
	{ "pool full by others", 7, 4, 0, 4, 0 },
	{ "pool full with own", 7, 4, 2, 2, 2 },
	{ "maxjobs one", 1, 10, 1, 5, 1 },
	{ "job_limit one", 5, 1, 0, 0, 1 },
	{ "job_limit one, taken", 5, 1, 0, 1, 0 },
};

static void
test_limit(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(limit_rows); i++) {
		g_autoptr(Scheduler) sched = scheduler_new(2, 1);

		g_test_message("row %s", limit_rows[i].name);
		scheduler_set_pool(sched, 0, limit_rows[i].pool_limit);
		scheduler_set_channel(sched, 0, 0, limit_rows[i].maxjobs, 10);
		scheduler_set_channel(sched, 1, 0, 100, 10);
		for (guint k = 0; k < limit_rows[i].own_jobs; k++)
			scheduler_job_started(sched, 0);
		for (guint k = 0; k < limit_rows[i].other_jobs; k++)
			scheduler_job_started(sched, 1);
		g_assert_cmpuint(scheduler_channel_limit(sched, 0), ==, limit_rows[i].limit);
		g_assert_cmpint(scheduler_wants_job(sched, 0, 1000, NOW), ==,
				limit_rows[i].own_jobs < limit_rows[i].limit);
		g_assert_cmpuint(scheduler_pool_jobs(sched, 0), ==,
				 limit_rows[i].own_jobs + limit_rows[i].other_jobs);
	}
}

static void
test_unknown_pool(void)
{
	g_autoptr(Scheduler) sched = scheduler_new(2, 1);
	guint due[2] = { 50, 0 };

	scheduler_set_pool(sched, 0, 10);
	scheduler_set_channel(sched, 0, SCHED_NONE, 5, 10);
	g_assert_cmpuint(scheduler_channel_limit(sched, 0), ==, 0);
	g_assert_false(scheduler_wants_job(sched, 0, 50, NOW));
	g_assert_cmpuint(scheduler_pick(sched, due, NOW), ==, SCHED_NONE);
	g_assert_cmpuint(scheduler_channel_pool(sched, 0), ==, SCHED_NONE);
	/* Channels default to the first pool. */
	g_assert_cmpuint(scheduler_channel_pool(sched, 1), ==, 0);
}

static const struct {
	guint threaddepth;
	guint jobs;
	guint due;
	gboolean wants;
} depth_rows[] = {
	{ 10, 0, 0, FALSE },
	{ 10, 0, 1, TRUE },    /* no job: any due message starts one */
	{ 10, 1, 10, FALSE },  /* one job per 10 due */
	{ 10, 1, 11, TRUE },
	{ 10, 2, 20, FALSE },
	{ 10, 2, 21, TRUE },
	{ 1, 1, 1, FALSE },
	{ 1, 1, 2, TRUE },
	{ 0, 1, 2, TRUE },     /* 0 acts as 1 */
	{ 100, 3, 300, FALSE },
	{ 100, 3, 301, TRUE },
	{ 100, 4, 5000, FALSE }, /* maxjobs 4 reached */
};

static void
test_threaddepth(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(depth_rows); i++) {
		g_autoptr(Scheduler) sched = scheduler_new(1, 1);

		scheduler_set_pool(sched, 0, 100);
		scheduler_set_channel(sched, 0, 0, 4, depth_rows[i].threaddepth);
		for (guint k = 0; k < depth_rows[i].jobs; k++)
			scheduler_job_started(sched, 0);
		g_assert_cmpint(scheduler_wants_job(sched, 0, depth_rows[i].due, NOW), ==,
				depth_rows[i].wants);
	}
}

/* Channels of one pool: the one with fewer jobs gets the next slot. */
static void
test_pick_fair_between_channels(void)
{
	g_autoptr(Scheduler) sched = scheduler_new(3, 2);
	guint due[3] = { 1000, 1000, 5 };
	static const guint expected[] = { 0, 1, 2, 0, 1, 0, SCHED_NONE };

	scheduler_set_pool(sched, 0, 5);
	scheduler_set_pool(sched, 1, 1);
	scheduler_set_channel(sched, 0, 0, 10, 1);
	scheduler_set_channel(sched, 1, 0, 10, 1);
	scheduler_set_channel(sched, 2, 1, 10, 1);
	for (guint i = 0; i < G_N_ELEMENTS(expected); i++) {
		guint ch = scheduler_pick(sched, due, NOW);

		g_assert_cmpuint(ch, ==, expected[i]);
		if (ch != SCHED_NONE)
			scheduler_job_started(sched, ch);
	}
	g_assert_cmpuint(scheduler_pool_jobs(sched, 0), ==, 5);
	g_assert_cmpuint(scheduler_pool_jobs(sched, 1), ==, 1);
	g_assert_cmpuint(scheduler_total_jobs(sched), ==, 6);
	/* A job of channel 1 ends: the slot goes back to the fewest-jobs channel. */
	scheduler_job_ended(sched, 1, FALSE, NOW);
	g_assert_cmpuint(scheduler_pick(sched, due, NOW), ==, 1);
}

/* Random starts and exits: no limit is ever exceeded. */
static void
test_limits_never_exceeded(void)
{
	static const guint maxjobs[] = { 1, 3, 7, 2, 10, 4 };
	static const guint pool_of[] = { 0, 0, 1, 1, 1, SCHED_NONE };
	static const guint pool_limit[] = { 3, 8 };
	g_autoptr(Scheduler) sched = scheduler_new(6, 2);
	g_autoptr(GRand) rand = g_rand_new_with_seed(7);
	guint due[6];
	gint64 now = NOW;

	for (guint p = 0; p < 2; p++)
		scheduler_set_pool(sched, p, pool_limit[p]);
	for (guint c = 0; c < 6; c++)
		scheduler_set_channel(sched, c, pool_of[c], maxjobs[c], 2);
	for (guint step = 0; step < 5000; step++) {
		guint ch;

		for (guint c = 0; c < 6; c++)
			due[c] = g_rand_int_range(rand, 0, 30);
		while ((ch = scheduler_pick(sched, due, now)) != SCHED_NONE)
			scheduler_job_started(sched, ch);
		for (guint c = 0; c < 6; c++) {
			g_assert_cmpuint(scheduler_channel_jobs(sched, c), <=, maxjobs[c]);
			if (pool_of[c] == SCHED_NONE)
				g_assert_cmpuint(scheduler_channel_jobs(sched, c), ==, 0);
		}
		for (guint p = 0; p < 2; p++)
			g_assert_cmpuint(scheduler_pool_jobs(sched, p), <=, pool_limit[p]);
		for (guint c = 0; c < 6; c++) {
			if (scheduler_channel_jobs(sched, c) == 0 ||
			    g_rand_int_range(rand, 0, 3) != 0)
				continue;
			scheduler_job_ended(sched, c, g_rand_int_range(rand, 0, 10) == 0, now);
		}
		now += g_rand_int_range(rand, 0, 3);
	}
}

/* Abnormal exits delay the channel's next start: 1, 2, 4 ... 60 s. */
static void
test_restart_throttle(void)
{
	g_autoptr(Scheduler) sched = scheduler_new(1, 1);
	static const gint64 delays[] = { 1, 2, 4, 8, 16, 32, 60, 60, 60 };

	scheduler_set_pool(sched, 0, 10);
	scheduler_set_channel(sched, 0, 0, 1, 10);
	for (guint i = 0; i < G_N_ELEMENTS(delays); i++) {
		scheduler_job_started(sched, 0);
		scheduler_job_ended(sched, 0, TRUE, NOW);
		g_assert_cmpint(scheduler_not_before(sched, 0), ==, NOW + delays[i]);
		g_assert_false(scheduler_wants_job(sched, 0, 5, NOW + delays[i] - 1));
		g_assert_true(scheduler_wants_job(sched, 0, 5, NOW + delays[i]));
	}
	scheduler_job_started(sched, 0);
	scheduler_job_ended(sched, 0, FALSE, NOW);
	g_assert_cmpint(scheduler_not_before(sched, 0), ==, 0);
	g_assert_true(scheduler_wants_job(sched, 0, 5, NOW));
	scheduler_job_started(sched, 0);
	scheduler_job_ended(sched, 0, TRUE, NOW);
	g_assert_cmpint(scheduler_not_before(sched, 0), ==, NOW + 1);
}

/* ---- retry times ----------------------------------------------------- */

static const char backoff_cnf[] =
	"! rules\n"
	"a.example $U@x-daemon\n"
	"\n"
	"l\n"
	"mail.example.com\n"
	"\n"
	"ims-ms backoff \"pt5m\" \"pt10m\" \"pt30m\" \"pt1h\" \"pt2h\" \"pt4h\"\n"
	"ims-ms-daemon\n"
	"\n"
	"x normalbackoff \"pt30m\" \"pt1h\" \"pt8h\" \"p1d\" \"p2d\" \"p1w\" urgentbackoff pt1m\n"
	"x-daemon\n";

static const struct {
	const char *channel;
	ImtaPriority prio;
	guint attempts;
	gint64 reported;
	gint64 expected;   /* relative to NOW */
} retry_rows[] = {
	/* The documented defaults (minutes): normal 60 120 120 240 ..., urgent
	 * 30 60 ..., non-urgent 120 240 ...; the last repeats. */
	{ "l", IMTA_PRIORITY_NORMAL, 1, 0, 3600 },
	{ "l", IMTA_PRIORITY_NORMAL, 2, 0, 7200 },
	{ "l", IMTA_PRIORITY_NORMAL, 4, 0, 14400 },
	{ "l", IMTA_PRIORITY_NORMAL, 7, 0, 28800 },
	{ "l", IMTA_PRIORITY_NORMAL, 40, 0, 28800 },
	{ "l", IMTA_PRIORITY_URGENT, 1, 0, 1800 },
	{ "l", IMTA_PRIORITY_NONURGENT, 1, 0, 7200 },
	{ "l", IMTA_PRIORITY_NONURGENT, 7, 0, 57600 },
	{ "l", IMTA_PRIORITY_NORMAL, 0, 0, 3600 },  /* attempts 0 counts as the first */
	/* A backoff list for every priority. */
	{ "ims-ms", IMTA_PRIORITY_NORMAL, 1, 0, 300 },
	{ "ims-ms", IMTA_PRIORITY_URGENT, 3, 0, 1800 },
	{ "ims-ms", IMTA_PRIORITY_NONURGENT, 6, 0, 14400 },
	{ "ims-ms", IMTA_PRIORITY_NORMAL, 9, 0, 14400 },
	/* Per-priority lists win; other priorities keep the defaults. */
	{ "x", IMTA_PRIORITY_NORMAL, 1, 0, 1800 },
	{ "x", IMTA_PRIORITY_NORMAL, 5, 0, 172800 },
	{ "x", IMTA_PRIORITY_NORMAL, 8, 0, 604800 },
	{ "x", IMTA_PRIORITY_URGENT, 3, 0, 60 },
	{ "x", IMTA_PRIORITY_NONURGENT, 2, 0, 14400 },
	/* A time the master reported wins; one in the past means now. */
	{ "x", IMTA_PRIORITY_NORMAL, 1, NOW + 42, 42 },
	{ "x", IMTA_PRIORITY_NORMAL, 1, NOW - 42, 0 },
	{ "l", IMTA_PRIORITY_NORMAL, 3, NOW, 0 },
};

static void
test_retry_time(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaCnf) cnf = imta_cnf_parse_text("imta.cnf", backoff_cnf, strlen(backoff_cnf),
						     NULL, &error);

	g_assert_no_error(error);
	for (guint i = 0; i < G_N_ELEMENTS(retry_rows); i++) {
		const ImtaChannel *channel = imta_cnf_channel_by_name(cnf, retry_rows[i].channel);
		gint64 at;

		g_assert_nonnull(channel);
		at = scheduler_retry_time(channel, retry_rows[i].prio, retry_rows[i].attempts,
					  retry_rows[i].reported, NOW);
		g_assert_cmpint(at - NOW, ==, retry_rows[i].expected);
	}
}

/* A failed attempt, the retry time from backoff, then due again. */
static void
test_retry_cycle(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaCnf) cnf = imta_cnf_parse_text("imta.cnf", backoff_cnf, strlen(backoff_cnf),
						     NULL, &error);
	g_autoptr(MessageTable) table = message_table_new(10, 1);
	const ImtaChannel *ms = imta_cnf_channel_by_name(cnf, "ims-ms");
	MtMessageInfo info = { .id = "0000000000000001", .channel = 0, .subdir = 3,
			       .host = "ims-ms-daemon", .priority = IMTA_PRIORITY_NORMAL };
	MtIndex index;
	gint64 now = NOW;
	static const gint64 waits[] = { 300, 600, 1800, 3600, 7200, 14400, 14400 };

	g_assert_no_error(error);
	g_assert_cmpint(message_table_add(table, &info, MT_FROM_NOTICE, now, &index), ==,
			MT_ADD_NEW);
	for (guint attempt = 1; attempt <= G_N_ELEMENTS(waits); attempt++) {
		gint64 at = scheduler_retry_time(ms, IMTA_PRIORITY_NORMAL, attempt, 0, now);

		g_assert_cmpuint(message_table_take(table, 0), ==, index);
		message_table_defer(table, index, attempt, 3, at, now);
		g_assert_cmpint(at - now, ==, waits[attempt - 1]);
		g_assert_cmpuint(message_table_release_due(table, at - 1, NULL), ==, 0);
		g_assert_cmpuint(message_table_take(table, 0), ==, MT_NONE);
		g_assert_cmpuint(message_table_release_due(table, at, NULL), ==, 1);
		now = at;
	}
}

/* ---- fairness through jobs ------------------------------------------- */

/* One channel, maxjobs 4.  A slow host (each delivery takes 20 ticks) has
 * 500 messages, four fast hosts (1 tick) 10 each.  Jobs ask for work
 * whenever they are free.  The fast mail must not wait behind the slow
 * host: it is all delivered well before the slow host could take every
 * job, and while fast mail is waiting the slow host holds at most two. */
static void
test_jobs_slow_host(void)
{
	g_autoptr(MessageTable) table = message_table_new(1000, 1);
	g_autoptr(Scheduler) sched = scheduler_new(1, 1);
	MtIndex busy[4];
	guint left[4] = { 0, 0, 0, 0 };
	guint fast_done = 0, fast_taken = 0, slow_busy = 0, tick;
	guint due[1];

	scheduler_set_pool(sched, 0, 10);
	scheduler_set_channel(sched, 0, 0, 4, 1);
	for (guint n = 0; n < 540; n++) {
		char id[MT_ID_LENGTH + 1], host[32];
		MtMessageInfo info = { .id = id, .subdir = MT_NO_SUBDIR, .host = host,
				       .priority = IMTA_PRIORITY_NORMAL };

		g_snprintf(id, sizeof(id), "%016u", n);
		if (n < 500)
			g_strlcpy(host, "slow.example", sizeof(host));
		else
			g_snprintf(host, sizeof(host), "fast%u.example", n % 4);
		g_assert_cmpint(message_table_add(table, &info, MT_FROM_NOTICE, NOW, NULL), ==,
				MT_ADD_NEW);
	}
	for (guint j = 0; j < 4; j++)
		busy[j] = MT_NONE;
	for (tick = 0; tick < 200 && fast_done < 40; tick++) {
		MtCounts counts;

		message_table_counts(table, &counts);
		due[0] = counts.ready;
		while (scheduler_pick(sched, due, NOW) != SCHED_NONE)
			scheduler_job_started(sched, 0);
		g_assert_cmpuint(scheduler_channel_jobs(sched, 0), <=, 4);
		for (guint j = 0; j < scheduler_channel_jobs(sched, 0); j++) {
			MtView view;

			if (busy[j] != MT_NONE && --left[j] == 0) {
				message_table_view(table, busy[j], &view);
				if (g_str_has_prefix(view.host, "fast"))
					fast_done++;
				else
					slow_busy--;
				message_table_forget(table, busy[j]);
				busy[j] = MT_NONE;
			}
			if (busy[j] == MT_NONE) {
				busy[j] = message_table_take(table, 0);
				if (busy[j] == MT_NONE)
					continue;
				message_table_view(table, busy[j], &view);
				if (g_str_has_prefix(view.host, "slow")) {
					left[j] = 20;
					/* A third slow job only once no fast mail waits. */
					if (++slow_busy > 2)
						g_assert_cmpuint(fast_taken, ==, 40);
				} else {
					left[j] = 1;
					fast_taken++;
				}
			}
		}
	}
	g_assert_cmpuint(fast_done, ==, 40);
	/* Two jobs stay on the fast hosts: 40 messages in about 20 ticks. */
	g_assert_cmpuint(tick, <=, 25);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/scheduler/limit/table", test_limit);
	g_test_add_func("/scheduler/limit/unknown-pool", test_unknown_pool);
	g_test_add_func("/scheduler/limit/never-exceeded", test_limits_never_exceeded);
	g_test_add_func("/scheduler/threaddepth", test_threaddepth);
	g_test_add_func("/scheduler/pick/fair-between-channels", test_pick_fair_between_channels);
	g_test_add_func("/scheduler/restart-throttle", test_restart_throttle);
	g_test_add_func("/scheduler/backoff/retry-time", test_retry_time);
	g_test_add_func("/scheduler/backoff/cycle", test_retry_cycle);
	g_test_add_func("/scheduler/fairness/slow-host", test_jobs_slow_host);
	return g_test_run();
}
