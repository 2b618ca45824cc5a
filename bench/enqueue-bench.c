/*
 * enqueue-bench.c - how fast the queue accepts mail, next to what the
 * disk allows: (a) the naive durable file write (create, write 1 KiB,
 * fsync, rename, fsync the directory) one after another, (b) append and
 * fdatasync, as an outcome record costs, (c) imta_enqueue_commit with 1,
 * 8 and 32 threads enqueueing 1 KiB messages for one recipient each, and
 * (d) the file work of (a) with 32 threads and no sync at all; all in the
 * same directory and the same run.  Not a test: see bench/README.md.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <ftw.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/imta_cnf.h>
#include <imta/queue.h>

#include "queue/group_commit.h"
#include "queue/queue_file.h"

#define MESSAGE_SIZE 1024

static const char bench_cnf[] =
	"\n"
	"l\n"
	"localhost\n"
	"\n"
	"ims-ms subdirs 20\n"
	"ims-ms-daemon\n";

static char message[MESSAGE_SIZE];
static gboolean use_syncfs = TRUE;
static gboolean use_journal = TRUE;

static void G_GNUC_NORETURN G_GNUC_PRINTF(1, 2)
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("enqueue-bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static double
now_seconds(void)
{
	return (double)g_get_monotonic_time() / G_USEC_PER_SEC;
}

static int
remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
remove_tree(const char *dir)
{
	nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- (a) the naive durable write ------------------------------------- */

static void
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);

	if (fd < 0 || fsync(fd) < 0)
		die("cannot sync %s: %s", dir, g_strerror(errno));
	close(fd);
}

static double
bench_raw(const char *base, double seconds)
{
	g_autofree char *dir = g_build_filename(base, "raw", NULL);
	double start, elapsed;
	guint64 n = 0;

	if (g_mkdir(dir, 0700) < 0)
		die("cannot create %s: %s", dir, g_strerror(errno));
	start = now_seconds();
	do {
		g_autofree char *tmp = g_strdup_printf("%s/$%" G_GUINT64_FORMAT ".tmp", dir, n);
		g_autofree char *final = g_strdup_printf("%s/f%" G_GUINT64_FORMAT, dir, n);
		int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);

		if (fd < 0 || write(fd, message, sizeof message) != (ssize_t)sizeof message ||
		    fsync(fd) < 0 || close(fd) < 0)
			die("cannot write %s: %s", tmp, g_strerror(errno));
		if (rename(tmp, final) < 0)
			die("cannot rename %s: %s", tmp, g_strerror(errno));
		fsync_dir(dir);
		n++;
		elapsed = now_seconds() - start;
	} while (elapsed < seconds);
	remove_tree(dir);
	return (double)n / elapsed;
}

/* ---- (d) the same file work without any sync ----------------------- */

typedef struct {
	const char *dir;
	guint index;
	double deadline;
	guint64 files;
} Unsynced;

static gpointer
unsynced_run(gpointer data)
{
	Unsynced *u = data;

	for (guint64 n = 0; now_seconds() < u->deadline; n++) {
		g_autofree char *tmp = g_strdup_printf("%s/$%u-%" G_GUINT64_FORMAT ".tmp", u->dir,
						       u->index, n);
		g_autofree char *final = g_strdup_printf("%s/%02" G_GUINT64_FORMAT "/f%u-%"
							 G_GUINT64_FORMAT, u->dir, n % 20, u->index, n);
		int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);

		if (fd < 0 || write(fd, message, sizeof message) != (ssize_t)sizeof message ||
		    close(fd) < 0 || rename(tmp, final) < 0)
			die("cannot write %s: %s", tmp, g_strerror(errno));
		u->files++;
	}
	return NULL;
}

/* What the file system does with 32 writers doing (a)'s file work (named
 * temporary file, rename) and no durability at all.  The queue itself
 * links unnamed files into place instead, which avoids the rename. */
static double
bench_unsynced(const char *base, double seconds)
{
	g_autofree char *dir = g_build_filename(base, "unsynced", NULL);
	Unsynced workers[32];
	GThread *threads[32];
	double start = now_seconds(), elapsed;
	guint64 total = 0;

	for (guint i = 0; i <= 20; i++) {
		g_autofree char *sub = i < 20 ? g_strdup_printf("%s/%02u", dir, i) : g_strdup(dir);

		if (g_mkdir_with_parents(sub, 0700) < 0)
			die("cannot create %s: %s", sub, g_strerror(errno));
	}
	for (guint i = 0; i < G_N_ELEMENTS(workers); i++) {
		workers[i] = (Unsynced){ dir, i, start + seconds, 0 };
		threads[i] = g_thread_new("unsynced", unsynced_run, &workers[i]);
	}
	for (guint i = 0; i < G_N_ELEMENTS(workers); i++) {
		g_thread_join(threads[i]);
		total += workers[i].files;
	}
	elapsed = now_seconds() - start;
	remove_tree(dir);
	return (double)total / elapsed;
}

/* ---- (b) append and fdatasync ------------------------------------------ */

static double
bench_append(const char *base, double seconds)
{
	g_autofree char *path = g_build_filename(base, "append", NULL);
	static const char record[] = "R 1795000000 0 Q 4.2.2+20mailbox+20full\n";
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	double start, elapsed;
	guint64 n = 0;

	if (fd < 0)
		die("cannot create %s: %s", path, g_strerror(errno));
	start = now_seconds();
	do {
		if (write(fd, record, sizeof record - 1) != (ssize_t)(sizeof record - 1) ||
		    fdatasync(fd) < 0)
			die("cannot append to %s: %s", path, g_strerror(errno));
		n++;
		elapsed = now_seconds() - start;
	} while (elapsed < seconds);
	close(fd);
	g_unlink(path);
	return (double)n / elapsed;
}

/* ---- (c) enqueue through the queue API ----------------------------------- */

typedef struct {
	ImtaQueue *queue;
	const ImtaChannel *channel;
	double deadline;
	guint64 commits;
} Enqueuer;

static gpointer
enqueuer_run(gpointer data)
{
	Enqueuer *e = data;

	while (now_seconds() < e->deadline) {
		g_autoptr(ImtaEnqueue) enq = imta_enqueue_new(e->queue, "tcp_local",
							      "sender@example.org");
		g_autoptr(GError) error = NULL;

		if (!imta_enqueue_add_recipient(enq, e->channel, "rcpt@example.com", NULL, 0,
						&error) ||
		    !imta_enqueue_write(enq, message, sizeof message, &error) ||
		    !imta_enqueue_commit(enq, &error))
			die("enqueue failed: %s", error->message);
		e->commits++;
	}
	return NULL;
}

static double
bench_enqueue(const char *base, const ImtaCnf *cnf, guint threads, double seconds,
	      double *per_batch_r)
{
	g_autofree char *root = g_build_filename(base, "queue", NULL);
	g_autoptr(GError) error = NULL;
	g_autofree Enqueuer *enqueuers = g_new0(Enqueuer, threads);
	g_autofree GThread **ids = g_new0(GThread *, threads);
	ImtaQueue *queue = imta_queue_open(root, cnf, NULL, &error);
	QueueCommitStats stats;
	double start, elapsed;
	guint64 total = 0;

	if (queue == NULL)
		die("%s", error->message);
	if (!use_syncfs)
		queue_committer_set_use_syncfs(queue_get_committer(queue), FALSE);
	if (!use_journal)
		queue_committer_set_use_journal(queue_get_committer(queue), FALSE);
	start = now_seconds();
	for (guint i = 0; i < threads; i++) {
		enqueuers[i] = (Enqueuer){ queue, imta_cnf_channel_by_name(cnf, "ims-ms"),
					   start + seconds, 0 };
		ids[i] = g_thread_new("enqueuer", enqueuer_run, &enqueuers[i]);
	}
	for (guint i = 0; i < threads; i++) {
		g_thread_join(ids[i]);
		total += enqueuers[i].commits;
	}
	elapsed = now_seconds() - start;
	queue_committer_stats(queue_get_committer(queue), &stats);
	*per_batch_r = stats.batches > 0 ? (double)stats.commits / (double)stats.batches : 0;
	imta_queue_close(queue);
	remove_tree(root);
	return (double)total / elapsed;
}

/* ---- main ----------------------------------------------------------------- */

static const char *
fs_name(const char *dir)
{
	struct statfs st;

	if (statfs(dir, &st) < 0)
		return "unknown";
	switch ((unsigned long)st.f_type) {
	case 0xEF53:
		return "ext4";
	case 0x58465342:
		return "xfs";
	case 0x9123683E:
		return "btrfs";
	case 0x01021994:
		return "tmpfs (memory: not a disk)";
	case 0x794c7630:
		return "overlayfs";
	default:
		return "other";
	}
}

static int
compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

#define MAX_ROUNDS 20
#define N_FIGURES 6

static double
median(double *values, guint n)
{
	qsort(values, n, sizeof *values, compare_doubles);
	return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

int
main(int argc, char **argv)
{
	static const char *const labels[N_FIGURES] = {
		"(a) create+write+fsync+rename+fsync dir",
		"(b) append+fdatasync",
		"(c) enqueue, 1 thread",
		"(c) enqueue, 8 threads",
		"(c) enqueue, 32 threads",
		"(d) create+write+rename, no sync, 32 thr.",
	};
	static const guint thread_counts[] = { 1, 8, 32 };
	g_autofree char *dir = NULL;
	g_autofree char *base = NULL;
	double seconds = 5;
	gint rounds = 3;
	gboolean no_syncfs = FALSE;
	gboolean no_journal = FALSE;
	GOptionEntry entries[] = {
		{ "dir", 'd', 0, G_OPTION_ARG_FILENAME, &dir,
		  "directory to measure in (default: a new one under /var/tmp)", "DIR" },
		{ "seconds", 's', 0, G_OPTION_ARG_DOUBLE, &seconds, "seconds per figure (5)", "S" },
		{ "rounds", 'r', 0, G_OPTION_ARG_INT, &rounds,
		  "measure every figure this many times, report the median (3)", "N" },
		{ "no-syncfs", 0, 0, G_OPTION_ARG_NONE, &no_syncfs,
		  "commit with fdatasync per file, as where syncfs() is missing", NULL },
		{ "no-journal", 0, 0, G_OPTION_ARG_NONE, &no_journal,
		  "commit with one syncfs per batch, without the commit journal", NULL },
		{ NULL }
	};
	g_autoptr(GOptionContext) context = g_option_context_new("- queue enqueue benchmark");
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaCnf) cnf = NULL;
	double values[N_FIGURES][MAX_ROUNDS], per_batch[MAX_ROUNDS], med[N_FIGURES];

	g_option_context_add_main_entries(context, entries, NULL);
	if (!g_option_context_parse(context, &argc, &argv, &error))
		die("%s", error->message);
	if (seconds <= 0 || seconds > 3600)
		die("--seconds: expected a number of seconds between 0 and 3600");
	if (rounds < 1 || rounds > MAX_ROUNDS)
		die("--rounds: expected a number between 1 and %d", MAX_ROUNDS);
	use_syncfs = !no_syncfs;
	use_journal = !no_journal;
	base = g_build_filename(dir != NULL ? dir : "/var/tmp", "imta-bench-XXXXXX", NULL);
	if (g_mkdtemp(base) == NULL)
		die("cannot create a directory in %s: %s", dir != NULL ? dir : "/var/tmp",
		    g_strerror(errno));
	cnf = imta_cnf_parse_text("bench.cnf", bench_cnf, strlen(bench_cnf), NULL, &error);
	if (cnf == NULL)
		die("%s", error->message);
	for (guint i = 0; i < sizeof message; i++)
		message[i] = i % 64 == 63 ? '\n' : (char)('a' + i % 26);

	printf("directory %s (%s)\n%d round%s of %.1f s per figure, %d-byte messages, "
	       "commits synced with %s\n", base, fs_name(base), rounds, rounds == 1 ? "" : "s",
	       seconds, MESSAGE_SIZE,
	       !use_syncfs ? "fdatasync per file" : use_journal ? "the journal" : "syncfs");
	fflush(stdout);
	/* Rounds interleave the figures, so a change in the machine's load
	 * during the run touches all of them alike. */
	for (gint r = 0; r < rounds; r++) {
		values[0][r] = bench_raw(base, seconds);
		values[1][r] = bench_append(base, seconds);
		for (guint i = 0; i < G_N_ELEMENTS(thread_counts); i++)
			values[2 + i][r] = bench_enqueue(base, cnf, thread_counts[i], seconds,
							 &per_batch[r]);
		values[5][r] = bench_unsynced(base, seconds);
	}
	for (guint f = 0; f < N_FIGURES; f++) {
		double lo, hi;

		med[f] = median(values[f], (guint)rounds);
		lo = values[f][0];
		hi = values[f][rounds - 1];
		printf("%-42s %9.1f /s  (%.1f .. %.1f)\n", labels[f], med[f], lo, hi);
	}
	printf("%-42s %9.1f    (32 threads, last round)\n", "commits per batch",
	       per_batch[rounds - 1]);
	printf("%-42s %9.2f x\n", "ratio (c, 32 threads) / (a)", med[0] > 0 ? med[4] / med[0] : 0);
	printf("%-42s %9.2f\n", "ratio (c, 32 threads) / (d)",
	       med[5] > 0 ? med[4] / med[5] : 0);
	remove_tree(base);
	return 0;
}
