/*
 * log.c - one line per event, to stderr, a file, or syslog.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <glib.h>

#include <imta/error.h>
#include <imta/log.h>

static GMutex log_lock;
static FILE *log_file;           /* NULL = stderr */
static gboolean log_syslog;
static char *log_program;
static char *log_path;
static ImtaLogLevel log_max = IMTA_LOG_INFO;

static const char *const level_names[] = {
	[IMTA_LOG_ERROR] = "error", [IMTA_LOG_WARNING] = "warning", [IMTA_LOG_NOTICE] = "notice",
	[IMTA_LOG_INFO] = "info", [IMTA_LOG_DEBUG] = "debug",
};

static const int syslog_levels[] = {
	[IMTA_LOG_ERROR] = LOG_ERR, [IMTA_LOG_WARNING] = LOG_WARNING, [IMTA_LOG_NOTICE] = LOG_NOTICE,
	[IMTA_LOG_INFO] = LOG_INFO, [IMTA_LOG_DEBUG] = LOG_DEBUG,
};

static FILE *
log_open_file(const char *path, GError **error)
{
	FILE *fp = fopen(path, "ae");

	if (fp == NULL) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
			    "cannot open log file %s: %s", path, g_strerror(errno));
		return NULL;
	}
	setvbuf(fp, NULL, _IOLBF, 0);
	return fp;
}

gboolean
imta_log_open(const char *program, const char *path, GError **error)
{
	FILE *fp = NULL;

	if (path != NULL && strcmp(path, "syslog") != 0) {
		fp = log_open_file(path, error);
		if (fp == NULL)
			return FALSE;
	}
	g_mutex_lock(&log_lock);
	if (log_file != NULL)
		fclose(log_file);
	log_file = fp;
	g_free(log_program);
	log_program = g_strdup(program);
	g_free(log_path);
	log_path = g_strdup(path);
	log_syslog = path != NULL && strcmp(path, "syslog") == 0;
	if (log_syslog)
		openlog(log_program, LOG_PID, LOG_MAIL);
	g_mutex_unlock(&log_lock);
	return TRUE;
}

void
imta_log_set_level(ImtaLogLevel max_level)
{
	log_max = max_level;
}

void
imta_log_reopen(void)
{
	FILE *fp;

	g_mutex_lock(&log_lock);
	if (log_file != NULL && log_path != NULL) {
		fp = log_open_file(log_path, NULL);
		if (fp != NULL) {
			fclose(log_file);
			log_file = fp;
		}
	}
	g_mutex_unlock(&log_lock);
}

/* The stamp's seconds change once a second, and formatting them for
 * every line cost more than the rest of the line.  Under log_lock. */
static const char *
log_stamp(time_t seconds)
{
	static time_t cached = (time_t)-1;
	static char text[32];
	struct tm tm;

	if (seconds != cached && gmtime_r(&seconds, &tm) != NULL &&
	    strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm) > 0)
		cached = seconds;
	return text;
}

void
imta_logv(ImtaLogLevel level, const char *fmt, va_list args)
{
	struct timespec now;
	char line[1024];
	const char *program;
	va_list copy;
	int head, n;
	FILE *fp;

	if (level > log_max)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	g_mutex_lock(&log_lock);
	if (log_syslog) {
		g_autofree char *text = g_strdup_vprintf(fmt, args);

		syslog(syslog_levels[level], "%s", text);
		g_mutex_unlock(&log_lock);
		return;
	}
	/* One call per line: stderr has no buffer, and a line written in
	 * pieces could interleave with another process's. */
	fp = log_file != NULL ? log_file : stderr;
	program = log_program;
	if (program == NULL)
		program = g_get_prgname() != NULL ? g_get_prgname() : "imta";
	head = snprintf(line, sizeof line, "%s.%03dZ %s[%ld]: %s: ", log_stamp(now.tv_sec),
			(int)(now.tv_nsec / 1000000), program, (long)getpid(), level_names[level]);
	/* A header too long for the buffer goes out cut, never dropped. */
	if (head < 0)
		head = 0;
	else if ((gsize)head >= sizeof line)
		head = (int)sizeof line - 1;
	va_copy(copy, args);
	n = vsnprintf(line + head, sizeof line - (gsize)head, fmt, copy);
	va_end(copy);
	if (n >= 0 && (gsize)head + (gsize)n + 1 < sizeof line) {
		line[head + n] = '\n';
		fwrite(line, 1, (gsize)head + (gsize)n + 1, fp);
	} else {
		g_autofree char *text = g_strdup_vprintf(fmt, args);

		fprintf(fp, "%.*s%s\n", head, line, text);
	}
	g_mutex_unlock(&log_lock);
}

void
imta_log(ImtaLogLevel level, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	imta_logv(level, fmt, args);
	va_end(args);
}

void
imta_log_close(void)
{
	g_mutex_lock(&log_lock);
	if (log_file != NULL)
		fclose(log_file);
	log_file = NULL;
	if (log_syslog)
		closelog();
	log_syslog = FALSE;
	g_clear_pointer(&log_program, g_free);
	g_clear_pointer(&log_path, g_free);
	g_mutex_unlock(&log_lock);
}
