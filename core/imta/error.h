/*
 * error.h - error domains of the MTA core.
 *
 * Runtime failures travel as GError, one domain per subsystem.  Programming
 * errors are g_assert()ed instead.  Configuration errors always carry the
 * position "file:line:column: " at the start of their message, produced by
 * imta_set_error_at(), so every front end prints them the same way.
 */
#ifndef IMTA_ERROR_H
#define IMTA_ERROR_H

#include <glib.h>

G_BEGIN_DECLS

#define IMTA_CONFIG_ERROR    (imta_config_error_quark())
#define IMTA_ADDRESS_ERROR   (imta_address_error_quark())
#define IMTA_REWRITE_ERROR   (imta_rewrite_error_quark())
#define IMTA_PLUGIN_ERROR    (imta_plugin_error_quark())
#define IMTA_DIRECTORY_ERROR (imta_directory_error_quark())

typedef enum {
	IMTA_CONFIG_ERROR_IO,        /* a file could not be read */
	IMTA_CONFIG_ERROR_SYNTAX,    /* the text does not have the expected shape */
	IMTA_CONFIG_ERROR_UNKNOWN,   /* unknown keyword, option, section or table */
	IMTA_CONFIG_ERROR_RANGE,     /* a value outside its documented range */
	IMTA_CONFIG_ERROR_DUPLICATE, /* a name defined twice where it must be unique */
	IMTA_CONFIG_ERROR_MISSING,   /* something required is absent */
	IMTA_CONFIG_ERROR_PLUGIN,    /* a channel refers to no loaded plugin */
} ImtaConfigErrorCode;

typedef enum {
	IMTA_ADDRESS_ERROR_SYNTAX,   /* not an RFC 5321/5322 address */
	IMTA_ADDRESS_ERROR_TOO_LONG, /* a length limit of RFC 5321 4.5.3.1 exceeded */
} ImtaAddressErrorCode;

typedef enum {
	IMTA_REWRITE_ERROR_UNROUTABLE, /* no channel owns the routing host */
	IMTA_REWRITE_ERROR_LOOP,       /* rewriting did not converge */
	IMTA_REWRITE_ERROR_TEMPORARY,  /* a lookup failed temporarily (retry later) */
	IMTA_REWRITE_ERROR_TEMPLATE,   /* a malformed template */
} ImtaRewriteErrorCode;

typedef enum {
	IMTA_PLUGIN_ERROR_OPEN,       /* dlopen() failed */
	IMTA_PLUGIN_ERROR_SYMBOL,     /* the descriptor symbol is missing */
	IMTA_PLUGIN_ERROR_ABI,        /* the descriptor has another ABI version */
	IMTA_PLUGIN_ERROR_PERMISSION, /* unsafe owner or mode */
	IMTA_PLUGIN_ERROR_KEYWORD,    /* a keyword is already registered */
	IMTA_PLUGIN_ERROR_INVALID,    /* the descriptor is malformed */
	IMTA_PLUGIN_ERROR_INIT,       /* the plugin's init hook failed */
} ImtaPluginErrorCode;

typedef enum {
	IMTA_DIRECTORY_ERROR_TEMPORARY, /* backend down or timed out: retry later */
	IMTA_DIRECTORY_ERROR_DATA,      /* the directory data is malformed */
	IMTA_DIRECTORY_ERROR_AMBIGUOUS, /* several entries claim one address */
	IMTA_DIRECTORY_ERROR_NO_HOST,   /* no mailHost and no mailRoutingSmartHost */
} ImtaDirectoryErrorCode;

GQuark imta_config_error_quark(void);
GQuark imta_address_error_quark(void);
GQuark imta_rewrite_error_quark(void);
GQuark imta_plugin_error_quark(void);
GQuark imta_directory_error_quark(void);

/* A place in a configuration file.  `file` is borrowed from whoever owns the
 * parsed configuration; line and column count from 1 (0 = unknown). */
typedef struct {
	const char *file;
	guint line;
	guint column;
} ImtaSourcePos;

/* Set a configuration error whose message starts with "file:line:column: ".
 * A NULL pos, or one with line 0, omits the parts it does not know. */
void imta_set_error_at(GError **error, ImtaConfigErrorCode code,
		       const ImtaSourcePos *pos, const char *fmt, ...)
	G_GNUC_PRINTF(4, 5);

/* Format "file:line:column" (or as much of it as is known); caller frees. */
char *imta_source_pos_format(const ImtaSourcePos *pos);

G_END_DECLS

#endif
