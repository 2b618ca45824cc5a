/*
 * log.c - one line per event, to stderr, a file, or syslog.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
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

void
imta_logv(ImtaLogLevel level, const char *fmt, va_list args)
{
	g_autofree char *text = NULL;
	g_autoptr(GDateTime) now = NULL;
	g_autofree char *stamp = NULL;

	if (level > log_max)
		return;
	text = g_strdup_vprintf(fmt, args);
	g_mutex_lock(&log_lock);
	if (log_syslog) {
		syslog(syslog_levels[level], "%s", text);
		g_mutex_unlock(&log_lock);
		return;
	}
	now = g_date_time_new_now_utc();
	stamp = g_date_time_format(now, "%Y-%m-%dT%H:%M:%S");
	fprintf(log_file != NULL ? log_file : stderr, "%s.%03dZ %s[%ld]: %s: %s\n", stamp,
		g_date_time_get_microsecond(now) / 1000,
		log_program != NULL ? log_program : g_get_prgname() != NULL ? g_get_prgname() : "imta",
		(long)getpid(), level_names[level], text);
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
