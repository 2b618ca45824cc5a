/*
 * test-message-table.c - the job controller's tracked-message table:
 * sizing, tracking, the MAX_MESSAGES capacity rules, host fairness,
 * priorities and the delayed heap.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include "job_controller/message_table.h"

#define NOW 1800000000

static void
make_id(guint n, char id[MT_ID_LENGTH + 1])
{
	g_snprintf(id, MT_ID_LENGTH + 1, "ID%014u", n);
}

static MtAddResult
add_full(MessageTable *table, guint n, guint channel, const char *host, ImtaPriority prio,
	 guint attempts, gint64 next, MtOrigin origin, MtIndex *index_r)
{
	char id[MT_ID_LENGTH + 1];
	MtMessageInfo info = {
		.id = id, .channel = channel, .subdir = MT_NO_SUBDIR, .host = host,
		.priority = prio, .attempts = attempts, .next_attempt = next,
	};

	make_id(n, id);
	return message_table_add(table, &info, origin, NOW, index_r);
}

static MtIndex
add(MessageTable *table, guint n, guint channel, const char *host, ImtaPriority prio)
{
	MtIndex index;

	g_assert_cmpint(add_full(table, n, channel, host, prio, 0, 0, MT_FROM_NOTICE, &index), ==,
			MT_ADD_NEW);
	return index;
}

static MtIndex
lookup(MessageTable *table, guint n)
{
	char id[MT_ID_LENGTH + 1];

	make_id(n, id);
	return message_table_lookup(table, id);
}

/* The number in the id of the message a job of `channel` gets next. */
static int
take_n(MessageTable *table, guint channel)
{
	MtIndex index = message_table_take(table, channel);
	MtView view;

	if (index == MT_NONE)
		return -1;
	message_table_view(table, index, &view);
	return (int)g_ascii_strtoull(view.id + 2, NULL, 10);
}

static void
assert_counts(MessageTable *table, guint ready, guint delayed, guint in_progress)
{
	MtCounts counts;

	message_table_counts(table, &counts);
	g_assert_cmpuint(counts.ready, ==, ready);
	g_assert_cmpuint(counts.delayed, ==, delayed);
	g_assert_cmpuint(counts.in_progress, ==, in_progress);
	g_assert_cmpuint(message_table_tracked(table), ==, ready + delayed + in_progress);
}

/* ---- sizing ---------------------------------------------------------- */

static const struct {
	guint max;
	guint buckets;
} sizing_rows[] = {
	{ 1, 2 },
	{ 2, 4 },
	{ 3, 4 },
	{ 4, 8 },
	{ 100, 128 },
	{ 127, 128 },
	{ 128, 256 },
	{ 1000, 1024 },
	{ 100000, 131072 },
	{ 131071, 131072 },
	{ 131072, 262144 },
};

static void
test_hash_sizing(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(sizing_rows); i++) {
		g_autoptr(MessageTable) table = message_table_new(sizing_rows[i].max, 1);

		g_assert_cmpuint(message_table_hash_size(table), ==, sizing_rows[i].buckets);
		g_assert_cmpuint(message_table_max(table), ==, sizing_rows[i].max);
		g_assert_cmpuint(message_table_tracked(table), ==, 0);
	}
}

static void
test_hash_never_resized(void)
{
	g_autoptr(MessageTable) table = message_table_new(100, 2);

	for (guint n = 0; n < 100; n++)
		add(table, n, n % 2, n % 3 ? "a.example" : "b.example", IMTA_PRIORITY_NORMAL);
	g_assert_cmpuint(message_table_hash_size(table), ==, 128);
	for (guint n = 0; n < 100; n++)
		g_assert_cmpuint(lookup(table, n), !=, MT_NONE);
}

static const struct {
	guint max;
	double expected;
} bytes_rows[] = {
	/* 44-byte record + 4-byte heap slot + the bucket array's share. */
	{ 100, 44 + 4 + 128 * 4 / 100.0 },
	{ 128, 44 + 4 + 256 * 4 / 128.0 },
	{ 100000, 44 + 4 + 131072 * 4 / 100000.0 },
	{ 131072, 44 + 4 + 8 },
	{ 10000000, 44 + 4 + 16777216 * 4 / 10000000.0 },
};

static void
test_bytes_per_message(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(bytes_rows); i++) {
		double bytes = message_table_bytes_per_message_for(bytes_rows[i].max);

		g_assert_cmpfloat_with_epsilon(bytes, bytes_rows[i].expected, 1e-9);
		g_assert_cmpfloat(bytes, <=, 100.0);
	}
}

static void
test_bytes_measured(void)
{
	g_autoptr(MessageTable) table = message_table_new(1000, 4);
	gsize empty = message_table_bytes(table);

	/* The per-message structures are allocated up front. */
	g_assert_cmpuint(empty, >=, 1000 * (44 + 4) + 1024 * 4);
	g_assert_cmpfloat(message_table_bytes_per_message(table), <=, 100.0);
	for (guint n = 0; n < 1000; n++) {
		char host[32];

		g_snprintf(host, sizeof(host), "h%u.example", n % 50);
		add(table, n, n % 4, host, IMTA_PRIORITY_NORMAL);
	}
	g_assert_cmpuint(message_table_host_count(table), ==, 50 * 4 / 2);
	/* Full, with 100 hosts: still under 100 bytes a message all told. */
	g_assert_cmpfloat((double)message_table_bytes(table) / 1000, <=, 100.0);
}

/* ---- tracking -------------------------------------------------------- */

static void
test_insert_lookup(void)
{
	g_autoptr(MessageTable) table = message_table_new(10, 3);
	char id[MT_ID_LENGTH + 1];
	MtMessageInfo info = {
		.id = "0SJX2K5A1B3C9FQW", .channel = 2, .subdir = 7, .host = "Example.COM",
		.priority = IMTA_PRIORITY_URGENT, .attempts = 3, .next_attempt = NOW + 60,
	};
	MtIndex index, found;
	MtView view;

	g_assert_cmpint(message_table_add(table, &info, MT_FROM_NOTICE, NOW, &index), ==,
			MT_ADD_NEW);
	found = message_table_lookup(table, "0SJX2K5A1B3C9FQW");
	g_assert_cmpuint(found, ==, index);
	g_assert_true(message_table_contains(table, "0SJX2K5A1B3C9FQW"));
	g_assert_false(message_table_contains(table, "0SJX2K5A1B3C9FQX"));
	g_assert_cmpuint(message_table_lookup(table, "short"), ==, MT_NONE);
	g_assert_cmpuint(message_table_lookup(table, "0SJX2K5A1B3C9FQWX"), ==, MT_NONE);
	message_table_view(table, index, &view);
	g_assert_cmpstr(view.id, ==, "0SJX2K5A1B3C9FQW");
	g_assert_cmpuint(view.channel, ==, 2);
	g_assert_cmpuint(view.subdir, ==, 7);
	g_assert_cmpstr(view.host, ==, "example.com");
	g_assert_cmpint(view.priority, ==, IMTA_PRIORITY_URGENT);
	g_assert_cmpuint(view.attempts, ==, 3);
	g_assert_cmpint(view.state, ==, MT_DELAYED);
	g_assert_cmpint(view.next_attempt, ==, NOW + 60);
	g_assert_false(view.returned);
	assert_counts(table, 0, 1, 0);

	make_id(5, id);
	info.id = id;
	info.next_attempt = 0;
	info.host = NULL;
	g_assert_cmpint(message_table_add(table, &info, MT_FROM_NOTICE, NOW, &index), ==,
			MT_ADD_NEW);
	message_table_view(table, index, &view);
	g_assert_cmpstr(view.host, ==, "");
	g_assert_cmpint(view.state, ==, MT_READY);
	g_assert_cmpint(view.next_attempt, ==, 0);
	assert_counts(table, 1, 1, 0);
}

static void
test_remove(void)
{
	g_autoptr(MessageTable) table = message_table_new(4, 1);
	MtIndex a = add(table, 1, 0, "a.example", IMTA_PRIORITY_NORMAL);
	MtIndex b = add(table, 2, 0, "a.example", IMTA_PRIORITY_NORMAL);

	add_full(table, 3, 0, "b.example", IMTA_PRIORITY_NORMAL, 1, NOW + 10, MT_FROM_NOTICE,
		 NULL);
	g_assert_cmpuint(message_table_host_count(table), ==, 2);
	message_table_forget(table, a);
	g_assert_cmpuint(lookup(table, 1), ==, MT_NONE);
	g_assert_cmpuint(lookup(table, 2), ==, b);
	g_assert_cmpuint(message_table_host_count(table), ==, 2);
	message_table_forget(table, b);
	g_assert_cmpuint(message_table_host_count(table), ==, 1);
	message_table_forget(table, lookup(table, 3));
	g_assert_cmpuint(message_table_host_count(table), ==, 0);
	assert_counts(table, 0, 0, 0);
	g_assert_cmpint(message_table_next_due(table), ==, 0);
	/* Slots are reused: the table takes max messages again. */
	for (guint n = 10; n < 14; n++)
		add(table, n, 0, "c.example", IMTA_PRIORITY_NORMAL);
	g_assert_cmpint(add_full(table, 20, 0, "c.example", IMTA_PRIORITY_NORMAL, 0, 0,
				 MT_FROM_NOTICE, NULL), ==, MT_ADD_FULL);
	/* Forgetting an in-progress message releases its host's count. */
	g_assert_cmpint(take_n(table, 0), ==, 10);
	message_table_forget(table, lookup(table, 10));
	assert_counts(table, 3, 0, 0);
}

static void
test_hosts_case_and_channel(void)
{
	g_autoptr(MessageTable) table = message_table_new(10, 2);
	MtView view;

	add(table, 1, 0, "Mail.Example.ORG", IMTA_PRIORITY_NORMAL);
	add(table, 2, 0, "mail.example.org", IMTA_PRIORITY_NORMAL);
	g_assert_cmpuint(message_table_host_count(table), ==, 1);
	add(table, 3, 1, "mail.example.org", IMTA_PRIORITY_NORMAL);
	g_assert_cmpuint(message_table_host_count(table), ==, 2);
	message_table_view(table, lookup(table, 1), &view);
	g_assert_cmpstr(view.host, ==, "mail.example.org");
}

/* A known message meets a notice, an "R" or a scan. */
static const struct {
	const char *name;
	MtState state;          /* the known message's state */
	MtOrigin origin;
	MtAddResult result;
	MtState after;
	guint attempts_after;   /* the new notice says attempts 4 */
} known_rows[] = {
	{ "ready+notice", MT_READY, MT_FROM_NOTICE, MT_ADD_KNOWN, MT_READY, 4 },
	{ "ready+retry", MT_READY, MT_FROM_RETRY, MT_ADD_KNOWN, MT_READY, 4 },
	{ "ready+scan", MT_READY, MT_FROM_SCAN, MT_ADD_KNOWN, MT_READY, 2 },
	{ "delayed+notice", MT_DELAYED, MT_FROM_NOTICE, MT_ADD_KNOWN, MT_DELAYED, 4 },
	{ "delayed+retry", MT_DELAYED, MT_FROM_RETRY, MT_ADD_KNOWN, MT_READY, 4 },
	{ "delayed+scan", MT_DELAYED, MT_FROM_SCAN, MT_ADD_KNOWN, MT_DELAYED, 2 },
	{ "busy+notice", MT_IN_PROGRESS, MT_FROM_NOTICE, MT_ADD_BUSY, MT_IN_PROGRESS, 2 },
	{ "busy+retry", MT_IN_PROGRESS, MT_FROM_RETRY, MT_ADD_BUSY, MT_IN_PROGRESS, 2 },
	{ "busy+scan", MT_IN_PROGRESS, MT_FROM_SCAN, MT_ADD_BUSY, MT_IN_PROGRESS, 2 },
};

static void
test_add_known(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(known_rows); i++) {
		g_autoptr(MessageTable) table = message_table_new(10, 2);
		gint64 next = known_rows[i].state == MT_DELAYED ? NOW + 100 : 0;
		MtIndex index, again;
		MtView view;

		g_test_message("row %s", known_rows[i].name);
		add_full(table, 1, 0, "h", IMTA_PRIORITY_NORMAL, 2, next, MT_FROM_NOTICE, &index);
		if (known_rows[i].state == MT_IN_PROGRESS)
			g_assert_cmpuint(message_table_take(table, 0), ==, index);
		g_assert_cmpint(add_full(table, 1, 0, "h", IMTA_PRIORITY_NORMAL, 4, 0,
					 known_rows[i].origin, &again), ==, known_rows[i].result);
		g_assert_cmpuint(again, ==, index);
		message_table_view(table, index, &view);
		g_assert_cmpint(view.state, ==, known_rows[i].after);
		g_assert_cmpuint(view.attempts, ==, known_rows[i].attempts_after);
		g_assert_cmpuint(message_table_tracked(table), ==, 1);
		/* The same id for another channel is refused. */
		g_assert_cmpint(add_full(table, 1, 1, "h", IMTA_PRIORITY_NORMAL, 0, 0,
					 known_rows[i].origin, NULL), ==, MT_ADD_CONFLICT);
	}
}

/* ---- capacity rules -------------------------------------------------- */

static void
test_overflow(void)
{
	g_autoptr(MessageTable) table = message_table_new(8, 1);

	for (guint n = 0; n < 8; n++)
		add(table, n, 0, "h", IMTA_PRIORITY_NORMAL);
	g_assert_false(message_table_overflowed(table));
	g_assert_cmpint(add_full(table, 8, 0, "h", IMTA_PRIORITY_NORMAL, 0, 0, MT_FROM_NOTICE,
				 NULL), ==, MT_ADD_FULL);
	g_assert_true(message_table_overflowed(table));
	g_assert_cmpuint(lookup(table, 8), ==, MT_NONE);
	g_assert_cmpuint(message_table_tracked(table), ==, 8);
	/* A known message is still refreshed when the table is full. */
	g_assert_cmpint(add_full(table, 3, 0, "h", IMTA_PRIORITY_NORMAL, 0, 0, MT_FROM_RETRY,
				 NULL), ==, MT_ADD_KNOWN);
	message_table_clear_overflow(table);
	g_assert_false(message_table_overflowed(table));
	message_table_note_overflow(table);
	g_assert_true(message_table_overflowed(table));
}

/* Scans stop at 3/4 of max; notices go up to max. */
static const struct {
	guint max;
	guint tracked;
	guint room;
	MtAddResult scan;
	MtAddResult notice;
} scan_rows[] = {
	{ 8, 0, 6, MT_ADD_NEW, MT_ADD_NEW },
	{ 8, 5, 1, MT_ADD_NEW, MT_ADD_NEW },
	{ 8, 6, 0, MT_ADD_FULL, MT_ADD_NEW },
	{ 8, 7, 0, MT_ADD_FULL, MT_ADD_NEW },
	{ 8, 8, 0, MT_ADD_FULL, MT_ADD_FULL },
	{ 100, 74, 1, MT_ADD_NEW, MT_ADD_NEW },
	{ 100, 75, 0, MT_ADD_FULL, MT_ADD_NEW },
	{ 101, 74, 1, MT_ADD_NEW, MT_ADD_NEW },
	{ 101, 75, 0, MT_ADD_FULL, MT_ADD_NEW },
	{ 4, 2, 1, MT_ADD_NEW, MT_ADD_NEW },
	{ 4, 3, 0, MT_ADD_FULL, MT_ADD_NEW },
};

static void
test_three_quarters(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(scan_rows); i++) {
		g_autoptr(MessageTable) table = message_table_new(scan_rows[i].max, 1);

		for (guint n = 0; n < scan_rows[i].tracked; n++)
			add(table, n, 0, "h", IMTA_PRIORITY_NORMAL);
		g_assert_cmpuint(message_table_scan_room(table), ==, scan_rows[i].room);
		g_assert_cmpint(add_full(table, 1000, 0, "h", IMTA_PRIORITY_NORMAL, 0, 0,
					 MT_FROM_SCAN, NULL), ==, scan_rows[i].scan);
		g_assert_cmpint(message_table_overflowed(table), ==,
				scan_rows[i].scan == MT_ADD_FULL);
		g_assert_cmpint(add_full(table, 1001, 0, "h", IMTA_PRIORITY_NORMAL, 0, 0,
					 MT_FROM_NOTICE, NULL), ==, scan_rows[i].notice);
	}
}

static const struct {
	guint max;
	guint tracked;
	gboolean overflow;
	gboolean synch_due;
	gboolean wanted;
} half_rows[] = {
	{ 16, 7, TRUE, FALSE, TRUE },
	{ 16, 8, TRUE, FALSE, FALSE },     /* exactly half: not below */
	{ 16, 0, TRUE, FALSE, TRUE },
	{ 16, 7, FALSE, FALSE, FALSE },    /* nothing left on disk */
	{ 16, 7, FALSE, TRUE, TRUE },      /* periodic resync due */
	{ 16, 12, FALSE, TRUE, FALSE },    /* resync waits until below half */
	{ 16, 15, TRUE, TRUE, FALSE },
	{ 15, 7, TRUE, FALSE, TRUE },
	{ 15, 8, TRUE, FALSE, FALSE },
};

static void
test_half(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(half_rows); i++) {
		g_autoptr(MessageTable) table = message_table_new(half_rows[i].max, 1);

		for (guint n = 0; n < half_rows[i].tracked; n++)
			add(table, n, 0, "h", IMTA_PRIORITY_NORMAL);
		if (half_rows[i].overflow)
			message_table_note_overflow(table);
		g_assert_cmpint(message_table_rescan_wanted(table, half_rows[i].synch_due), ==,
				half_rows[i].wanted);
	}
}

/* Forget a failed message when tracked > 5/8 max and delayed > 3/8 max. */
static const struct {
	guint max;
	guint ready;
	guint delayed;
	gboolean forget;
} forget_rows[] = {
	{ 16, 4, 7, TRUE },    /* 11 > 10, 7 > 6 */
	{ 16, 3, 7, FALSE },   /* 10 is not > 10 */
	{ 16, 5, 6, FALSE },   /* 6 is not > 6 */
	{ 16, 0, 11, TRUE },
	{ 16, 9, 0, FALSE },
	{ 16, 16, 0, FALSE },
	{ 16, 0, 16, TRUE },
	{ 8, 3, 4, TRUE },     /* 7 > 5, 4 > 3 */
	{ 8, 2, 3, FALSE },
	{ 100, 30, 38, TRUE }, /* 68 > 62.5, 38 > 37.5 */
	{ 100, 30, 37, FALSE }, /* 37 is not > 37.5 */
	{ 100, 24, 38, FALSE }, /* 62 is not > 62.5 */
};

static void
test_five_eighths(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(forget_rows); i++) {
		g_autoptr(MessageTable) table = message_table_new(forget_rows[i].max, 1);
		guint n = 0;

		for (guint k = 0; k < forget_rows[i].ready; k++)
			add(table, n++, 0, "h", IMTA_PRIORITY_NORMAL);
		for (guint k = 0; k < forget_rows[i].delayed; k++)
			add_full(table, n++, 0, "h", IMTA_PRIORITY_NORMAL, 1, NOW + 60,
				 MT_FROM_NOTICE, NULL);
		assert_counts(table, forget_rows[i].ready, forget_rows[i].delayed, 0);
		g_assert_cmpint(message_table_should_forget_failed(table), ==,
				forget_rows[i].forget);
	}
}

/* The whole cycle with MAX_MESSAGES 8: overflow, drain below half,
 * rescan up to 3/4. */
static void
test_capacity_cycle(void)
{
	g_autoptr(MessageTable) table = message_table_new(8, 1);
	guint added = 0;

	for (guint n = 0; n < 12; n++)
		if (add_full(table, n, 0, "h", IMTA_PRIORITY_NORMAL, 0, 0, MT_FROM_NOTICE, NULL) ==
		    MT_ADD_NEW)
			added++;
	g_assert_cmpuint(added, ==, 8);
	g_assert_true(message_table_overflowed(table));
	g_assert_false(message_table_rescan_wanted(table, FALSE));
	for (guint k = 0; k < 5; k++) {
		int n = take_n(table, 0);

		g_assert_cmpint(n, >=, 0);
		message_table_forget(table, lookup(table, n));
	}
	g_assert_cmpuint(message_table_tracked(table), ==, 3);
	g_assert_true(message_table_rescan_wanted(table, FALSE));
	/* The rescan finds the four left on disk (and the three known). */
	added = 0;
	for (guint n = 0; n < 12; n++)
		if (add_full(table, n, 0, "h", IMTA_PRIORITY_NORMAL, 0, 0, MT_FROM_SCAN, NULL) ==
		    MT_ADD_NEW)
			added++;
	g_assert_cmpuint(added, ==, 3);
	g_assert_cmpuint(message_table_tracked(table), ==, 6);
	g_assert_false(message_table_rescan_wanted(table, TRUE));
}

/* ---- order ----------------------------------------------------------- */

static void
test_priority_order(void)
{
	g_autoptr(MessageTable) table = message_table_new(20, 1);
	static const struct {
		guint n;
		ImtaPriority prio;
	} rows[] = {
		{ 1, IMTA_PRIORITY_NONURGENT }, { 2, IMTA_PRIORITY_NORMAL },
		{ 3, IMTA_PRIORITY_URGENT },    { 4, IMTA_PRIORITY_NORMAL },
		{ 5, IMTA_PRIORITY_URGENT },    { 6, IMTA_PRIORITY_NONURGENT },
	};
	static const int expected[] = { 3, 5, 2, 4, 1, 6, -1 };

	for (guint i = 0; i < G_N_ELEMENTS(rows); i++)
		add(table, rows[i].n, 0, "one.example", rows[i].prio);
	for (guint i = 0; i < G_N_ELEMENTS(expected); i++) {
		int n = take_n(table, 0);

		g_assert_cmpint(n, ==, expected[i]);
		/* Finish each before the next, so the host stays at rank 0. */
		if (n >= 0)
			message_table_forget(table, lookup(table, n));
	}
}

/* Several hosts of one channel: rows are (host, count) enqueued in order;
 * the expected sequence of takes with nothing finishing. */
static void
test_fairness_round_robin(void)
{
	g_autoptr(MessageTable) table = message_table_new(100, 1);
	static const int expected[] = { 1, 11, 21, 2, 12, 22, 3, 13, 4, 5 };
	guint n;

	/* Host a: 1..5, host b: 11..13, host c: 21..22. */
	for (n = 1; n <= 5; n++)
		add(table, n, 0, "a.example", IMTA_PRIORITY_NORMAL);
	for (n = 11; n <= 13; n++)
		add(table, n, 0, "b.example", IMTA_PRIORITY_NORMAL);
	for (n = 21; n <= 22; n++)
		add(table, n, 0, "c.example", IMTA_PRIORITY_NORMAL);
	for (guint i = 0; i < G_N_ELEMENTS(expected); i++)
		g_assert_cmpint(take_n(table, 0), ==, expected[i]);
	g_assert_cmpint(take_n(table, 0), ==, -1);
	assert_counts(table, 0, 0, 10);
}

/* A slow host with a thousand messages and four fast hosts: with 8 jobs,
 * the slow host never holds more than its share while others wait. */
static void
test_fairness_slow_host(void)
{
	g_autoptr(MessageTable) table = message_table_new(2000, 1);
	guint slow_busy = 0, taken = 0;

	for (guint n = 0; n < 1000; n++)
		add(table, n, 0, "slow.example", IMTA_PRIORITY_NORMAL);
	for (guint n = 1000; n < 1040; n++) {
		char host[32];

		g_snprintf(host, sizeof(host), "fast%u.example", n % 4);
		add(table, n, 0, host, IMTA_PRIORITY_NORMAL);
	}
	/* Eight jobs take one each; fast deliveries finish at once, slow ones
	 * never do during the test. */
	for (guint round = 0; round < 200; round++) {
		int n = take_n(table, 0);

		g_assert_cmpint(n, >=, 0);
		taken++;
		if (n < 1000)
			slow_busy++;
		else
			message_table_forget(table, lookup(table, n));
		if (slow_busy == 8)
			break;
	}
	/* Every fast message went before the slow host got its 8th slot. */
	g_assert_cmpuint(slow_busy, ==, 8);
	g_assert_cmpuint(taken, ==, 48);
	g_assert_cmpuint(message_table_host_count(table), ==, 1);
}

static void
test_fairness_levels(void)
{
	g_autoptr(MessageTable) table = message_table_new(100, 1);

	/* Host a has 2 in progress, b has 1: b (rank 1) goes before a (rank 2)
	 * even though a's message is older and urgent. */
	add(table, 1, 0, "a", IMTA_PRIORITY_NORMAL);
	add(table, 2, 0, "a", IMTA_PRIORITY_NORMAL);
	add(table, 11, 0, "b", IMTA_PRIORITY_NORMAL);
	g_assert_cmpint(take_n(table, 0), ==, 1);
	g_assert_cmpint(take_n(table, 0), ==, 11);
	g_assert_cmpint(take_n(table, 0), ==, 2);
	add(table, 3, 0, "a", IMTA_PRIORITY_URGENT);
	add(table, 12, 0, "b", IMTA_PRIORITY_NONURGENT);
	g_assert_cmpint(take_n(table, 0), ==, 12);
	/* Now both at rank 2: priority decides. */
	add(table, 13, 0, "b", IMTA_PRIORITY_NORMAL);
	g_assert_cmpint(take_n(table, 0), ==, 3);
	g_assert_cmpint(take_n(table, 0), ==, 13);
}

static void
test_channels_separate(void)
{
	g_autoptr(MessageTable) table = message_table_new(10, 3);
	MtCounts counts;

	add(table, 1, 0, "h", IMTA_PRIORITY_NORMAL);
	add(table, 2, 2, "h", IMTA_PRIORITY_NORMAL);
	add_full(table, 3, 2, "h", IMTA_PRIORITY_NORMAL, 1, NOW + 5, MT_FROM_NOTICE, NULL);
	g_assert_cmpint(take_n(table, 1), ==, -1);
	g_assert_cmpint(take_n(table, 2), ==, 2);
	g_assert_cmpint(take_n(table, 2), ==, -1);
	message_table_channel_counts(table, 2, &counts);
	g_assert_cmpuint(counts.ready, ==, 0);
	g_assert_cmpuint(counts.delayed, ==, 1);
	g_assert_cmpuint(counts.in_progress, ==, 1);
	message_table_channel_counts(table, 0, &counts);
	g_assert_cmpuint(counts.ready, ==, 1);
}

/* ---- delays ---------------------------------------------------------- */

static void
test_delayed_release(void)
{
	g_autoptr(MessageTable) table = message_table_new(20, 2);
	static const struct {
		guint n;
		gint64 at;
	} rows[] = { { 1, NOW + 50 }, { 2, NOW + 10 }, { 3, NOW + 30 }, { 4, NOW + 10 },
		     { 5, NOW + 70 } };
	guint per_channel[2] = { 0, 0 };

	for (guint i = 0; i < G_N_ELEMENTS(rows); i++)
		add_full(table, rows[i].n, rows[i].n % 2, "h", IMTA_PRIORITY_NORMAL, 1, rows[i].at,
			 MT_FROM_NOTICE, NULL);
	g_assert_cmpint(message_table_next_due(table), ==, NOW + 10);
	g_assert_cmpuint(message_table_release_due(table, NOW + 9, NULL), ==, 0);
	g_assert_cmpuint(message_table_release_due(table, NOW + 30, per_channel), ==, 3);
	g_assert_cmpuint(per_channel[0], ==, 2);
	g_assert_cmpuint(per_channel[1], ==, 1);
	g_assert_cmpint(message_table_next_due(table), ==, NOW + 50);
	/* Released in time order: 2 and 4 (channel 0), then 3 (channel 1). */
	g_assert_cmpint(take_n(table, 0), ==, 2);
	g_assert_cmpint(take_n(table, 0), ==, 4);
	g_assert_cmpint(take_n(table, 1), ==, 3);
	g_assert_cmpuint(message_table_release_due(table, NOW + 1000, NULL), ==, 2);
	g_assert_cmpint(message_table_next_due(table), ==, 0);
}

static void
test_retry(void)
{
	g_autoptr(MessageTable) table = message_table_new(20, 2);

	for (guint n = 1; n <= 6; n++)
		add_full(table, n, n <= 4 ? 0 : 1, "h", IMTA_PRIORITY_NORMAL, 2, NOW + 100 * n,
			 MT_FROM_NOTICE, NULL);
	add(table, 7, 0, "h", IMTA_PRIORITY_NORMAL);
	g_assert_cmpuint(message_table_retry(table, lookup(table, 3), NOW), ==, 1);
	g_assert_cmpuint(message_table_retry(table, lookup(table, 3), NOW), ==, 0);
	g_assert_cmpuint(message_table_retry(table, lookup(table, 7), NOW), ==, 0);
	g_assert_cmpint(take_n(table, 0), ==, 7);
	g_assert_cmpint(take_n(table, 0), ==, 3);
	g_assert_cmpint(take_n(table, 0), ==, -1);
	g_assert_cmpuint(message_table_retry_channel(table, 0, NOW), ==, 3);
	g_assert_cmpuint(message_table_retry_channel(table, 0, NOW), ==, 0);
	/* Oldest schedule first. */
	g_assert_cmpint(take_n(table, 0), ==, 1);
	g_assert_cmpint(take_n(table, 0), ==, 2);
	g_assert_cmpint(take_n(table, 0), ==, 4);
	/* Channel 1 keeps its heap order. */
	g_assert_cmpint(message_table_next_due(table), ==, NOW + 500);
	g_assert_cmpuint(message_table_release_due(table, NOW + 550, NULL), ==, 1);
	g_assert_cmpint(take_n(table, 1), ==, 5);
	g_assert_cmpint(message_table_next_due(table), ==, NOW + 600);
}

static void
test_defer(void)
{
	g_autoptr(MessageTable) table = message_table_new(20, 1);
	MtIndex index = add(table, 1, 0, "h", IMTA_PRIORITY_NORMAL);
	MtView view;

	add(table, 2, 0, "h", IMTA_PRIORITY_NORMAL);
	g_assert_cmpuint(message_table_take(table, 0), ==, index);
	message_table_defer(table, index, 1, 4, NOW + 3600, NOW);
	message_table_view(table, index, &view);
	g_assert_cmpint(view.state, ==, MT_DELAYED);
	g_assert_cmpuint(view.attempts, ==, 1);
	g_assert_cmpuint(view.subdir, ==, 4);
	g_assert_cmpint(view.next_attempt, ==, NOW + 3600);
	assert_counts(table, 1, 1, 0);
	/* A retry time in the past: ready at once, behind older messages. */
	g_assert_cmpint(take_n(table, 0), ==, 2);
	message_table_defer(table, lookup(table, 2), 1, MT_NO_SUBDIR, NOW - 5, NOW);
	assert_counts(table, 1, 1, 0);
	g_assert_cmpint(take_n(table, 0), ==, 2);
}

static void
test_give_back(void)
{
	g_autoptr(MessageTable) table = message_table_new(20, 1);
	MtIndex index = add(table, 1, 0, "h", IMTA_PRIORITY_NORMAL);
	MtView view;

	add(table, 2, 0, "h", IMTA_PRIORITY_NORMAL);
	g_assert_cmpuint(message_table_take(table, 0), ==, index);
	/* The first time: due at once, ahead of the others. */
	message_table_give_back(table, index, NOW + 1800, NOW);
	message_table_view(table, index, &view);
	g_assert_cmpint(view.state, ==, MT_READY);
	g_assert_true(view.returned);
	g_assert_cmpuint(message_table_take(table, 0), ==, index);
	/* The second time: at the given time. */
	message_table_give_back(table, index, NOW + 1800, NOW);
	message_table_view(table, index, &view);
	g_assert_cmpint(view.state, ==, MT_DELAYED);
	g_assert_cmpint(view.next_attempt, ==, NOW + 1800);
	/* A completed attempt clears the mark. */
	g_assert_cmpuint(message_table_retry(table, index, NOW), ==, 1);
	g_assert_cmpint(take_n(table, 0), ==, 2);
	g_assert_cmpint(take_n(table, 0), ==, 1);
	message_table_defer(table, index, 1, MT_NO_SUBDIR, 0, NOW);
	message_table_view(table, index, &view);
	g_assert_false(view.returned);
}

/* Random operations against simple counters: the heap, lists and rings
 * stay consistent. */
static void
test_random(void)
{
	g_autoptr(MessageTable) table = message_table_new(64, 3);
	g_autoptr(GRand) rand = g_rand_new_with_seed(42);
	gint64 now = NOW;

	for (guint step = 0; step < 20000; step++) {
		guint n = g_rand_int_range(rand, 0, 100);
		guint op = g_rand_int_range(rand, 0, 8);
		MtIndex index = lookup(table, n);
		MtCounts counts;
		MtView view;

		switch (op) {
		case 0:
		case 1: {
			char host[8];

			g_snprintf(host, sizeof(host), "h%d", g_rand_int_range(rand, 0, 5));
			add_full(table, n, n % 3, host, g_rand_int_range(rand, 0, 3), 0,
				 g_rand_boolean(rand) ? 0 : now + g_rand_int_range(rand, 1, 50),
				 g_rand_int_range(rand, 0, 3), NULL);
			break;
		}
		case 2:
			if (index != MT_NONE)
				message_table_forget(table, index);
			break;
		case 3: {
			MtIndex taken = message_table_take(table, n % 3);

			if (taken != MT_NONE) {
				message_table_view(table, taken, &view);
				g_assert_cmpint(view.state, ==, MT_IN_PROGRESS);
				g_assert_cmpuint(view.channel, ==, n % 3);
			}
			break;
		}
		case 4:
			if (index != MT_NONE) {
				message_table_view(table, index, &view);
				if (view.state == MT_IN_PROGRESS)
					message_table_defer(table, index, 1, MT_NO_SUBDIR,
							    now + g_rand_int_range(rand, -5, 40),
							    now);
			}
			break;
		case 5:
			if (index != MT_NONE) {
				message_table_view(table, index, &view);
				if (view.state == MT_IN_PROGRESS)
					message_table_give_back(table, index, now + 20, now);
				else
					message_table_retry(table, index, now);
			}
			break;
		case 6:
			now += g_rand_int_range(rand, 0, 5);
			message_table_release_due(table, now, NULL);
			g_assert_true(message_table_next_due(table) == 0 ||
				      message_table_next_due(table) > now);
			break;
		case 7:
			if (g_rand_int_range(rand, 0, 20) == 0)
				message_table_retry_channel(table, n % 3, now);
			break;
		}
		message_table_counts(table, &counts);
		g_assert_cmpuint(counts.ready + counts.delayed + counts.in_progress, ==,
				 message_table_tracked(table));
		g_assert_cmpuint(message_table_tracked(table), <=, 64);
	}
	/* Drain: everything can still be taken and forgotten. */
	message_table_release_due(table, now + 1000, NULL);
	for (guint ch = 0; ch < 3; ch++) {
		MtIndex index;

		while ((index = message_table_take(table, ch)) != MT_NONE)
			message_table_forget(table, index);
	}
	for (guint n = 0; n < 100; n++) {
		MtIndex index = lookup(table, n);

		if (index != MT_NONE)
			message_table_forget(table, index);
	}
	assert_counts(table, 0, 0, 0);
	g_assert_cmpuint(message_table_host_count(table), ==, 0);
}

typedef struct {
	MessageTable *table;
	gint stop;
	guint found;
} ContainsThread;

static gpointer
contains_thread(gpointer data)
{
	ContainsThread *ct = data;

	while (!g_atomic_int_get(&ct->stop)) {
		for (guint n = 0; n < 200; n++) {
			char id[MT_ID_LENGTH + 1];

			make_id(n, id);
			if (message_table_contains(ct->table, id))
				ct->found++;
		}
	}
	return NULL;
}

/* Scan threads look ids up while the owner adds and forgets. */
static void
test_contains_threaded(void)
{
	g_autoptr(MessageTable) table = message_table_new(100, 1);
	ContainsThread ct = { table, 0, 0 };
	GThread *thread = g_thread_new("contains", contains_thread, &ct);

	for (guint round = 0; round < 300; round++) {
		for (guint n = 0; n < 100; n++) {
			char host[16];

			g_snprintf(host, sizeof(host), "h%u", (n + round) % 37);
			add(table, n + (round % 2) * 100, 0, host, IMTA_PRIORITY_NORMAL);
		}
		for (guint n = 0; n < 100; n++)
			message_table_forget(table, lookup(table, n + (round % 2) * 100));
	}
	g_atomic_int_set(&ct.stop, 1);
	g_thread_join(thread);
	assert_counts(table, 0, 0, 0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/message-table/hash/sizing", test_hash_sizing);
	g_test_add_func("/message-table/hash/never-resized", test_hash_never_resized);
	g_test_add_func("/message-table/bytes/per-message", test_bytes_per_message);
	g_test_add_func("/message-table/bytes/measured", test_bytes_measured);
	g_test_add_func("/message-table/track/insert-lookup", test_insert_lookup);
	g_test_add_func("/message-table/track/remove", test_remove);
	g_test_add_func("/message-table/track/hosts", test_hosts_case_and_channel);
	g_test_add_func("/message-table/track/known", test_add_known);
	g_test_add_func("/message-table/rules/overflow", test_overflow);
	g_test_add_func("/message-table/rules/three-quarters", test_three_quarters);
	g_test_add_func("/message-table/rules/half", test_half);
	g_test_add_func("/message-table/rules/five-eighths", test_five_eighths);
	g_test_add_func("/message-table/rules/cycle", test_capacity_cycle);
	g_test_add_func("/message-table/order/priority", test_priority_order);
	g_test_add_func("/message-table/order/round-robin", test_fairness_round_robin);
	g_test_add_func("/message-table/order/slow-host", test_fairness_slow_host);
	g_test_add_func("/message-table/order/levels", test_fairness_levels);
	g_test_add_func("/message-table/order/channels", test_channels_separate);
	g_test_add_func("/message-table/delay/release", test_delayed_release);
	g_test_add_func("/message-table/delay/retry", test_retry);
	g_test_add_func("/message-table/delay/defer", test_defer);
	g_test_add_func("/message-table/delay/give-back", test_give_back);
	g_test_add_func("/message-table/random", test_random);
	g_test_add_func("/message-table/contains/threaded", test_contains_threaded);
	return g_test_run();
}
