/*
 * store-bench.c - how fast the message store takes and lists mail, through
 * store.h alone (no channel, no queue): bench/run-store-bench runs it
 * beside Postfix's delivery agents and prints the comparison.
 *
 *   store-bench deliver ROOT THREADS MESSAGES SIZE USERS
 *       MESSAGES deliveries of SIZE bytes, one recipient each, spread over
 *       USERS users, by THREADS threads; prints "MESSAGES SECONDS RATE"
 *   store-bench fanout ROOT USERS SIZE
 *       one message to USERS users in one call; prints "USERS SECONDS"
 *   store-bench fill ROOT USER MESSAGES SIZE THREADS
 *       MESSAGES messages into one INBOX; prints "MESSAGES SECONDS"
 *   store-bench list ROOT USER
 *       imta_store_folder_messages of that INBOX; prints "COUNT SECONDS"
 *
 * ROOT is the store root (created); each delivery is durable on return.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include <imta/store.h>

#define BENCH_MAX_THREADS 256
#define BENCH_MAX_SIZE (64 * 1024 * 1024)

typedef struct {
	ImtaStore *store;
	const char *content;
	gsize length;
	guint first, count, users;
	const char *user;       /* fill: everything to this user */
	guint failed;
	char *error;
} BenchWorker;

static void G_GNUC_NORETURN
bench_die(const char *what, const GError *error)
{
	fprintf(stderr, "store-bench: %s%s%s\n", what, error != NULL ? ": " : "",
		error != NULL ? error->message : "");
	exit(1);
}

static guint
bench_number(const char *text, guint min, guint max, const char *what)
{
	guint64 value;

	if (!g_ascii_string_to_unsigned(text, 10, min, max, &value, NULL)) {
		fprintf(stderr, "store-bench: %s: expected a number between %u and %u, got \"%s\"\n",
			what, min, max, text);
		exit(64);
	}
	return (guint)value;
}

static ImtaStore *
bench_open(const char *root)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = g_build_filename(root, "store.cnf", NULL);
	g_autoptr(ImtaStoreConfig) config = imta_store_config_load(path, root, &error);
	ImtaStore *store;

	if (config == NULL)
		bench_die("store.cnf", error);
	store = imta_store_open(config, &error);
	if (store == NULL)
		bench_die("opening the store", error);
	return store;
}

/* A message of `size` bytes: a header, then 76-character lines. */
static char *
bench_message(guint size, gsize *length_r)
{
	GString *out = g_string_new("From: Bench Sender <bench@source.bench.test>\n"
				    "To: user@store.bench.test\n"
				    "Subject: store benchmark\n"
				    "Date: Mon, 23 Nov 2026 10:15:02 +0000\n"
				    "Message-ID: <bench@source.bench.test>\n\n");

	while (out->len + 77 <= size)
		g_string_append(out, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n");
	while (out->len + 1 < size)
		g_string_append_c(out, 'y');
	g_string_append_c(out, '\n');
	*length_r = out->len;
	return g_string_free(out, FALSE);
}

static char *
bench_user(guint n)
{
	return g_strdup_printf("user%u", n);
}

static void
bench_create_users(ImtaStore *store, guint users)
{
	for (guint u = 0; u < users; u++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *user = bench_user(u);

		if (!imta_store_create_user(store, user, NULL, &error) &&
		    !g_error_matches(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_EXISTS))
			bench_die(user, error);
	}
}

static gpointer
bench_worker(gpointer data)
{
	BenchWorker *w = data;

	for (guint i = 0; i < w->count; i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *user = w->user != NULL ? g_strdup(w->user)
							: bench_user((w->first + i) % w->users);
		ImtaStoreTarget target = { .userid = user };

		if (!imta_store_deliver(w->store, w->content, w->length, 0, &target, 1, &error) ||
		    target.error != NULL) {
			if (w->error == NULL)
				w->error = g_strdup(error != NULL ? error->message
							    : target.error->message);
			g_clear_error(&target.error);
			w->failed++;
		}
	}
	return NULL;
}

/* MESSAGES deliveries by THREADS threads; returns the seconds taken. */
static double
bench_run_threads(ImtaStore *store, guint threads, guint messages, guint size, guint users,
		  const char *user)
{
	g_autofree char *content = NULL;
	g_autofree BenchWorker *workers = g_new0(BenchWorker, threads);
	g_autofree GThread **ids = g_new0(GThread *, threads);
	gsize length;
	gint64 t0, t1;
	guint failed = 0;

	content = bench_message(size, &length);
	t0 = g_get_monotonic_time();
	for (guint t = 0; t < threads; t++) {
		workers[t] = (BenchWorker){
			.store = store, .content = content, .length = length, .users = users,
			.first = t * (messages / threads),
			.count = messages / threads + (t < messages % threads ? 1 : 0),
			.user = user,
		};
		ids[t] = g_thread_new("deliver", bench_worker, &workers[t]);
	}
	for (guint t = 0; t < threads; t++) {
		g_thread_join(ids[t]);
		failed += workers[t].failed;
		if (workers[t].error != NULL)
			fprintf(stderr, "store-bench: a delivery failed: %s\n", workers[t].error);
		g_free(workers[t].error);
	}
	t1 = g_get_monotonic_time();
	if (failed > 0) {
		fprintf(stderr, "store-bench: %u of %u deliveries failed\n", failed, messages);
		exit(1);
	}
	return (double)(t1 - t0) / 1e6;
}

static int
bench_deliver(char **argv)
{
	g_autoptr(ImtaStore) store = bench_open(argv[0]);
	guint threads = bench_number(argv[1], 1, BENCH_MAX_THREADS, "THREADS");
	guint messages = bench_number(argv[2], 1, 100000000, "MESSAGES");
	guint size = bench_number(argv[3], 64, BENCH_MAX_SIZE, "SIZE");
	guint users = bench_number(argv[4], 1, 1000000, "USERS");
	double seconds;

	bench_create_users(store, users);
	seconds = bench_run_threads(store, threads, messages, size, users, NULL);
	printf("%u %.6f %.1f\n", messages, seconds, messages / seconds);
	return 0;
}

static int
bench_fanout(char **argv)
{
	g_autoptr(ImtaStore) store = bench_open(argv[0]);
	guint users = bench_number(argv[1], 1, 1000000, "USERS");
	guint size = bench_number(argv[2], 64, BENCH_MAX_SIZE, "SIZE");
	g_autofree ImtaStoreTarget *targets = g_new0(ImtaStoreTarget, users);
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GError) error = NULL;
	g_autofree char *content = NULL;
	gsize length;
	gint64 t0, t1;
	guint failed = 0;

	bench_create_users(store, users);
	content = bench_message(size, &length);
	for (guint u = 0; u < users; u++) {
		g_ptr_array_add(names, bench_user(u));
		targets[u].userid = names->pdata[u];
	}
	t0 = g_get_monotonic_time();
	if (!imta_store_deliver(store, content, length, 0, targets, users, &error))
		bench_die("fan-out delivery", error);
	t1 = g_get_monotonic_time();
	for (guint u = 0; u < users; u++) {
		if (targets[u].error != NULL) {
			if (failed++ == 0)
				fprintf(stderr, "store-bench: %s: %s\n", targets[u].userid,
					targets[u].error->message);
			g_clear_error(&targets[u].error);
		}
	}
	if (failed > 0) {
		fprintf(stderr, "store-bench: %u of %u targets failed\n", failed, users);
		return 1;
	}
	printf("%u %.6f\n", users, (double)(t1 - t0) / 1e6);
	return 0;
}

static int
bench_fill(char **argv)
{
	g_autoptr(ImtaStore) store = bench_open(argv[0]);
	g_autoptr(GError) error = NULL;
	const char *user = argv[1];
	guint messages = bench_number(argv[2], 1, 100000000, "MESSAGES");
	guint size = bench_number(argv[3], 64, BENCH_MAX_SIZE, "SIZE");
	guint threads = bench_number(argv[4], 1, BENCH_MAX_THREADS, "THREADS");
	double seconds;

	if (!imta_store_create_user(store, user, NULL, &error) &&
	    !g_error_matches(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_EXISTS))
		bench_die(user, error);
	seconds = bench_run_threads(store, threads, messages, size, 1, user);
	printf("%u %.6f\n", messages, seconds);
	return 0;
}

static int
bench_list(char **argv)
{
	g_autoptr(ImtaStore) store = bench_open(argv[0]);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) messages = NULL;
	gint64 t0 = g_get_monotonic_time(), t1;

	messages = imta_store_folder_messages(store, argv[1], "INBOX", &error);
	t1 = g_get_monotonic_time();
	if (messages == NULL)
		bench_die(argv[1], error);
	printf("%u %.6f\n", messages->len, (double)(t1 - t0) / 1e6);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int args;
		int (*run)(char **argv);
	} modes[] = {
		{ "deliver", 5, bench_deliver },
		{ "fanout", 3, bench_fanout },
		{ "fill", 5, bench_fill },
		{ "list", 2, bench_list },
	};

	for (gsize i = 0; argc >= 2 && i < G_N_ELEMENTS(modes); i++)
		if (strcmp(argv[1], modes[i].name) == 0 && argc - 2 == modes[i].args)
			return modes[i].run(argv + 2);
	fprintf(stderr, "usage: store-bench deliver ROOT THREADS MESSAGES SIZE USERS\n"
			"       store-bench fanout ROOT USERS SIZE\n"
			"       store-bench fill ROOT USER MESSAGES SIZE THREADS\n"
			"       store-bench list ROOT USER\n");
	return 64;
}
