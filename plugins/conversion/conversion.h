/*
 * conversion.h - private to the conversion plugin: the conversion channel
 * (convert.c), the defragment channel (defragment.c), the external
 * program runner (runner.c) and what they share (conversion.c).
 */
#ifndef CONVERSION_H
#define CONVERSION_H

#include <glib.h>
#include <imta/imta.h>
#include <imta/queue.h>
#include <imta/conversions.h>

G_BEGIN_DECLS

/* Largest message either channel reads into memory. */
#define CONVERSION_MAX_MESSAGE (G_GINT64_CONSTANT(256) * 1024 * 1024)
/* Largest output a converter may write for one part. */
#define CONVERSION_MAX_OUTPUT (G_GINT64_CONSTANT(128) * 1024 * 1024)
/* Default time limit of the defragment channel (reassemble keyword). */
#define DEFRAGMENT_DEFAULT_EXPIRY (12 * 60 * 60)

/* ---- conversion.c: shared by both channels ---------------------------- */

typedef struct {
	ImtaMasterJob *job;
	const ImtaConfig *config;
	const ImtaChannel *channel;
	ImtaQueue *queue;             /* opened on first use */
} ConvChannelJob;

/* The whole content of `msg` in memory (at most CONVERSION_MAX_MESSAGE). */
GBytes *conversion_read_content(const ImtaMessage *msg, GError **error);

ImtaQueue *conversion_queue(ConvChannelJob *cj, GError **error);

/* Queue `content` with msg's envelope (return path, ENVID, RET,
 * priority) for the recipients `indices` of msg, each to `channel`
 * under its `addresses` entry (NULL: the recipient's own address).
 * TRUE once the new queue file is durable; *queue_id_r names it. */
gboolean conversion_enqueue(ConvChannelJob *cj, const ImtaMessage *msg, GBytes *content,
			    const ImtaChannel *channel, const GArray *indices,
			    char *const *addresses, char **queue_id_r, GError **error);

/* ---- runner.c: one external program ----------------------------------- */

typedef struct {
	gboolean timed_out;
	gboolean signalled;
	int status;                   /* exit status, or the signal number */
	char *output;                 /* what it wrote on stdout/stderr (first KiB) */
} ConvRun;

/* Run argv[0] (an absolute path, or found in the clean PATH) with only
 * `envp` as its environment, stdin from /dev/null, stdout and stderr to a
 * file in `workdir` (its working directory), in a process group of its
 * own.  After `timeout` seconds the group is killed (TERM, then KILL a
 * second later); the group is also killed when the program exits, so no
 * child outlives it.  FALSE only when the program could not be started. */
gboolean conversion_run(char *const *argv, char *const *envp, const char *workdir,
			guint timeout, ConvRun *run, GError **error);
void conversion_run_clear(ConvRun *run);

/* ---- convert.c / defragment.c: the masters ---------------------------- */

ImtaEntryStatus conversion_master(ConvChannelJob *cj);
ImtaEntryStatus defragment_master(ConvChannelJob *cj);

/* The reassemble keyword's time limit in seconds (validated at load). */
gboolean defragment_expiry(const ImtaChannel *channel, gint64 *seconds_r, GError **error);

G_END_DECLS

#endif
