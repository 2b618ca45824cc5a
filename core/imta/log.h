/*
 * log.h - process logging.
 *
 * One line per event: "2026-11-22T10:01:02.113Z program[pid]: level: text".
 * Programs log to stderr until imta_log_open() points them at a file (by
 * append, reopened on SIGHUP via imta_log_reopen) or at syslog.  Safe from
 * any thread.
 */
#ifndef IMTA_LOG_H
#define IMTA_LOG_H

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
	IMTA_LOG_ERROR,
	IMTA_LOG_WARNING,
	IMTA_LOG_NOTICE,
	IMTA_LOG_INFO,
	IMTA_LOG_DEBUG,
} ImtaLogLevel;

/* `path`: a file to append to; NULL = stderr; "syslog" = syslog(3). */
gboolean imta_log_open(const char *program, const char *path, GError **error);
void imta_log_set_level(ImtaLogLevel max_level);
void imta_log_reopen(void);
void imta_log(ImtaLogLevel level, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
void imta_logv(ImtaLogLevel level, const char *fmt, va_list args) G_GNUC_PRINTF(2, 0);
void imta_log_close(void);

G_END_DECLS

#endif
