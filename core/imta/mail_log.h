/*
 * mail_log.h - the message log (mail.log): one line for each event in a
 * message's life, for the administrator who follows a message through the
 * MTA: enqueued (E), delivered (D), deferred (Q), failed or returned (R),
 * refused by a slave (J), delay warning sent (W), notice due but not
 * wanted (K).  The format is in imta-mail.log(5).
 *
 * Channels write entries when they carry `logging` (the source channel
 * for E and J, the destination channel for the others).  Lines go to
 * <IMTA_LOG>/mail.log_current, appended with one write(2) each so that
 * the many processes writing it never interleave within a line, or to
 * syslog (facility mail) when the tailor's IMTA_MAIL_LOG is "syslog".
 * A line is at most IMTA_MAIL_LOG_MAX_LINE bytes: longer fields are cut
 * and marked with "...".  Logging never fails the operation it records:
 * a log that cannot be written is reported once on the process log.
 *
 * Threads: imta_mail_log_entry() may be called from any thread.
 */
#ifndef IMTA_MAIL_LOG_H
#define IMTA_MAIL_LOG_H

#include <glib.h>
#include <imta/config.h>
#include <imta/job.h>

G_BEGIN_DECLS

#define IMTA_MAIL_LOG_MAX_LINE 4000

typedef enum {
	IMTA_MAIL_LOG_ENQUEUED = 'E',
	IMTA_MAIL_LOG_DELIVERED = 'D',
	IMTA_MAIL_LOG_DEFERRED = 'Q',
	IMTA_MAIL_LOG_FAILED = 'R',
	IMTA_MAIL_LOG_REFUSED = 'J',
	IMTA_MAIL_LOG_WARNED = 'W',
	IMTA_MAIL_LOG_NOT_NOTIFIED = 'K',
} ImtaMailLogCode;

/* Suffixes of the code: the session used SASL and/or TLS. */
typedef enum {
	IMTA_MAIL_LOG_SASL = 1 << 0,
	IMTA_MAIL_LOG_TLS  = 1 << 1,
} ImtaMailLogFlags;

typedef struct {
	ImtaMailLogCode code;
	guint flags;              /* ImtaMailLogFlags */
	const char *source;       /* source channel, or NULL */
	const char *destination;  /* destination channel, or NULL */
	const char *queue_id;     /* or NULL (a refusal has none) */
	gint64 size;              /* bytes of the message; blocks are computed;
				   * -1 = no content yet (a refusal): 0 blocks */
	const char *from;         /* envelope From; "" = null path (shown "<>"),
				   * NULL = not known yet */
	const char *orcpt;        /* "rfc822;addr", or NULL: then rfc822;<to> */
	const char *to;           /* active envelope To, or NULL */
	const char *diagnostic;   /* reply, next hop, reason; or NULL */
	const char *message_id;   /* for LOG_MESSAGE_ID=1, or NULL */
	const char *filename;     /* queue file, for LOG_FILENAME=1, or NULL */
} ImtaMailLogEntry;

/* Set up for `config` (the log directory, option.dat's BLOCK_SIZE,
 * LOG_FILENAME, LOG_MESSAGE_ID, LOG_PROCESS, the tailor's IMTA_MAIL_LOG).
 * Called once by each program after loading its configuration; until
 * then, and after imta_mail_log_close(), entries are dropped. */
void imta_mail_log_init(const ImtaConfig *config);

/* Does channel `name` of the configuration carry `logging`? */
gboolean imta_mail_log_enabled(const char *channel);

/* Write one entry if its channel (destination for D Q R W K, else
 * source) carries `logging`. */
void imta_mail_log_entry(const ImtaMailLogEntry *entry);

/* The line of `entry` as written, without the final newline (for tests
 * and `imsimta` tools); `now` in microseconds since the epoch. */
char *imta_mail_log_format(const ImtaMailLogEntry *entry, gint64 now);

/* Is LOG_MESSAGE_ID on?  Callers look a Message-ID up only then. */
gboolean imta_mail_log_wants_message_id(void);

/* The Message-ID in the header at the start of `text` ("<...>", or the
 * field's first word when it has no angle brackets), or NULL.  Reads at
 * most `len` bytes and stops at the header's end.  Caller frees. */
char *imta_mail_log_find_message_id(const char *text, gsize len);

/* The same, read from the first 64 KiB of a message's content. */
char *imta_mail_log_message_id_of(const ImtaMessage *msg);

/* Reopen the file (after the return job renamed it, or on SIGHUP). */
void imta_mail_log_reopen(void);
void imta_mail_log_close(void);

G_END_DECLS

#endif
