/*
 * error.c - error domains and positioned configuration errors.
 */
#include "config.h"

#include <stdarg.h>
#include <glib.h>

#include <imta/error.h>

G_DEFINE_QUARK(imta-config-error-quark, imta_config_error)
G_DEFINE_QUARK(imta-address-error-quark, imta_address_error)
G_DEFINE_QUARK(imta-rewrite-error-quark, imta_rewrite_error)
G_DEFINE_QUARK(imta-plugin-error-quark, imta_plugin_error)
G_DEFINE_QUARK(imta-directory-error-quark, imta_directory_error)

char *
imta_source_pos_format(const ImtaSourcePos *pos)
{
	if (pos == NULL || pos->file == NULL)
		return g_strdup("(unknown)");
	if (pos->line == 0)
		return g_strdup(pos->file);
	if (pos->column == 0)
		return g_strdup_printf("%s:%u", pos->file, pos->line);
	return g_strdup_printf("%s:%u:%u", pos->file, pos->line, pos->column);
}

void
imta_set_error_at(GError **error, ImtaConfigErrorCode code, const ImtaSourcePos *pos,
		  const char *fmt, ...)
{
	va_list args;
	g_autofree char *where = NULL;
	g_autofree char *what = NULL;

	if (error == NULL)
		return;
	va_start(args, fmt);
	what = g_strdup_vprintf(fmt, args);
	va_end(args);
	if (pos == NULL || pos->file == NULL) {
		g_set_error_literal(error, IMTA_CONFIG_ERROR, code, what);
		return;
	}
	where = imta_source_pos_format(pos);
	g_set_error(error, IMTA_CONFIG_ERROR, code, "%s: %s", where, what);
}
