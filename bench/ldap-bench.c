/*
 * ldap-bench.c - recipient lookups per second through the directory API
 * (imta_directory_lookup_local, as the SMTP server's RCPT check makes
 * them), with the directory IMTA_DIRECTORY of a configuration names:
 * bench/run-ldap-bench runs it against slapd on loopback.
 *
 *   ldap-bench CONFIG_DIR THREADS LOOKUPS USERS warm|cold
 *       LOOKUPS lookups of user1@example.com .. userUSERS@example.com,
 *       spread over THREADS threads sharing one directory; "warm" keeps
 *       option.dat's cache (primed with one pass first), "cold" opens the
 *       directory without a cache.  Prints "LOOKUPS SECONDS RATE".
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include <imta/config.h>
#include <imta/directory.h>

#define BENCH_MAX_THREADS 256

typedef struct {
	ImtaDirectory *dir;
	guint first, count, users;
	guint failed;
	char *error;
} BenchWorker;

static void G_GNUC_NORETURN
bench_usage(void)
{
	fprintf(stderr, "usage: ldap-bench CONFIG_DIR THREADS LOOKUPS USERS warm|cold\n");
	exit(64);
}

static guint
bench_number(const char *text, guint min, guint max)
{
	guint64 value;

	if (!g_ascii_string_to_unsigned(text, 10, min, max, &value, NULL))
		bench_usage();
	return (guint)value;
}

static gpointer
bench_worker(gpointer data)
{
	BenchWorker *w = data;

	for (guint i = 0; i < w->count; i++) {
		g_autofree char *address = g_strdup_printf("user%u@example.com",
							   (w->first + i) % w->users + 1);
		g_autoptr(ImtaDirEntry) entry = NULL;
		g_autoptr(GError) error = NULL;

		ImtaDirStatus status = imta_directory_lookup_local(w->dir, address, &entry,
								   &error);

		if (status != IMTA_DIR_FOUND) {
			if (w->failed++ == 0)
				w->error = g_strdup_printf("%s: %s", address,
							   error != NULL ? error->message
							   : "not found");
		}
	}
	return NULL;
}

static gboolean
bench_run(ImtaDirectory *dir, guint threads, guint lookups, guint users, double *seconds_r)
{
	BenchWorker workers[BENCH_MAX_THREADS] = { { 0 } };
	GThread *ids[BENCH_MAX_THREADS];
	gint64 start = g_get_monotonic_time();
	gboolean ok = TRUE;

	for (guint t = 0; t < threads; t++) {
		workers[t].dir = dir;
		workers[t].first = t * (lookups / threads);
		workers[t].count = lookups / threads + (t == threads - 1 ? lookups % threads : 0);
		workers[t].users = users;
		ids[t] = g_thread_new("bench", bench_worker, &workers[t]);
	}
	for (guint t = 0; t < threads; t++) {
		g_thread_join(ids[t]);
		if (workers[t].failed > 0) {
			fprintf(stderr, "ldap-bench: %u lookups failed, first: %s\n",
				workers[t].failed, workers[t].error);
			ok = FALSE;
		}
		g_free(workers[t].error);
	}
	*seconds_r = (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC;
	return ok;
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaConfig) config = NULL;
	g_autoptr(ImtaDirectory) dir = NULL;
	guint threads, lookups, users;
	gboolean warm;
	double seconds;

	if (argc != 6 || (strcmp(argv[5], "warm") != 0 && strcmp(argv[5], "cold") != 0))
		bench_usage();
	threads = bench_number(argv[2], 1, BENCH_MAX_THREADS);
	lookups = bench_number(argv[3], 1, G_MAXINT);
	users = bench_number(argv[4], 1, G_MAXINT);
	warm = strcmp(argv[5], "warm") == 0;
	config = imta_config_load(argv[1], 0, NULL, &error);
	if (config == NULL) {
		fprintf(stderr, "ldap-bench: %s\n", error->message);
		return 78;
	}
	dir = imta_config_open_directory(config, warm, &error);
	if (dir == NULL) {
		fprintf(stderr, "ldap-bench: %s\n", error->message);
		return 78;
	}
	/* Warm: every user once, so that the measured pass hits the cache. */
	if (warm && !bench_run(dir, threads, users, users, &seconds))
		return 1;
	if (!bench_run(dir, threads, lookups, users, &seconds))
		return 1;
	printf("%u %.3f %.0f\n", lookups, seconds, lookups / seconds);
	return 0;
}
