/*
 * tailor.h - imta_tailor: where this instance keeps its files.
 *
 * Every path a program uses comes from the configuration directory's
 * imta_tailor file, so several instances run side by side on one machine.
 * Syntax: NAME=value lines, '!' or '#' comments.  Relative paths are taken
 * relative to the configuration directory.  Unknown names are errors.
 *
 *   IMTA_QUEUE        queue root (one directory per channel below it)
 *   IMTA_LOG          log directory
 *   IMTA_STORE        message store root
 *   IMTA_RUN          sockets and pid files
 *   IMTA_PLUGIN_DIR   plugin directory (default: the installed one)
 *   IMTA_USER         unprivileged user the daemons run as after binding
 *   IMTA_HOSTNAME     this system's host name (default: gethostname())
 *   IMTA_DIRECTORY    directory backend: "ldif:<file>" (default
 *                     "ldif:directory.ldif")
 *   IMTA_TABLE        where imta.cnf, mappings, option.dat... live
 *                     (default: the configuration directory itself)
 *   IMTA_MAIL_LOG     where the message log goes: "file"
 *                     (<IMTA_LOG>/mail.log_current, the default) or
 *                     "syslog" (facility mail)
 *   IMTA_CONVERSION_FILE the conversions file of the conversion channel
 *                     (default: "conversions" in IMTA_TABLE)
 */
#ifndef IMTA_TAILOR_H
#define IMTA_TAILOR_H

#include <glib.h>
#include <imta/error.h>
#include <imta/options.h>

G_BEGIN_DECLS

typedef struct {
	char *config_dir;   /* absolute */
	char *queue_dir;
	char *log_dir;
	char *store_dir;
	char *run_dir;
	char *plugin_dir;
	char *table_dir;
	char *user;         /* NULL = do not change user */
	char *hostname;
	char *directory;    /* backend spec, e.g. "ldif:/abs/path/directory.ldif" */
	char *mail_log;     /* "file" or "syslog" (any case) */
	char *conversion_file; /* the conversion channel's conversions file */
} ImtaTailor;

/* Read <config_dir>/imta_tailor.  A missing file is not an error: every
 * value then takes its built-in default, the installation's paths
 * ($localstatedir/imta/queue, .../log, .../store, $runstatedir/imta, the
 * installed plugin directory). */
ImtaTailor *imta_tailor_load(const char *config_dir, GStringChunk *names, GError **error);

/* The configuration directory a program should use: `cli_value` (from
 * --config) if set, else $IMTA_CONFIG, else the installed sysconfdir. */
const char *imta_config_dir_choose(const char *cli_value);

/* The option table (values stored in ImtaTailor), for dumps and man pages. */
extern const ImtaOptionSpec imta_tailor_options[];
extern const gsize imta_tailor_n_options;

/* The resolved values as imta_tailor text, for `imsimta check --dump`. */
void imta_tailor_dump(const ImtaTailor *tailor, GString *out);

void imta_tailor_free(ImtaTailor *tailor);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaTailor, imta_tailor_free)

G_END_DECLS

#endif
