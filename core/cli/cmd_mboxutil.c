/*
 * cmd_mboxutil.c - imsimta mboxutil and imsimta hashdir: the message
 * store's mailboxes as an administrator sees them.
 *
 *   imsimta mboxutil -l [-p PATTERN] [--json]     mailboxes: size, partition
 *   imsimta mboxutil -c USER[/FOLDER] [--partition P]
 *   imsimta mboxutil -d USER/FOLDER | -d USER --yes
 *   imsimta mboxutil -r OLD NEW                   rename a folder
 *   imsimta mboxutil -q [USER...] [--json]        quota usage and limits
 *   imsimta mboxutil -m USER[/FOLDER] [--json]    messages, from the index
 *   imsimta mboxutil -P USER[/FOLDER] UID         one message's content
 *   imsimta mboxutil --deliver USER[/FOLDER] [--date WHEN] < message
 *   imsimta hashdir [--path] USER...
 *
 * Everything works on the store's files through store.h, with or without
 * the MTA running; listings read the indexes, never the message files.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <glib.h>
#include <gio/gio.h>

#include <imta/imta.h>
#include <imta/directory.h>
#include <imta/store.h>
#include "commands.h"

/* Bounds on what one invocation accepts. */
#define MBX_NAME_MAX 1024                      /* user/folder argument */
#define MBX_USER_MAX 255
#define MBX_DELIVER_MAX ((gsize)256 * 1024 * 1024) /* --deliver message */
#define MBX_FROM_WIDTH 30
#define MBX_SUBJECT_WIDTH 60

static const char mbx_help[] =
	"Mailbox names are USER or USER/FOLDER: \"alice\" is alice's INBOX,\n"
	"\"alice/Archive/2026\" a folder below it.\n"
	"\n"
	"  -l [-p PATTERN]           list mailboxes: user, folder, messages, bytes,\n"
	"                            partition (PATTERN: * any text, % any text but /;\n"
	"                            without a / it selects users)\n"
	"  -c USER[/FOLDER]          create a user's INBOX (--partition P) or a folder\n"
	"  -d USER/FOLDER            delete a folder, its messages and sub-folders\n"
	"  -d USER --yes             delete a user's whole mailbox\n"
	"  -r OLD NEW                rename a folder (UIDs and flags are kept)\n"
	"  -q [USER...]              quota usage, limits and quota state\n"
	"  -m USER[/FOLDER]          the folder's messages, from its index\n"
	"  -P USER[/FOLDER] UID      print one message\n"
	"  --deliver USER[/FOLDER]   store the message on standard input (restore);\n"
	"                            --date sets its arrival time\n"
	"\n"
	"Exit status: 0 success, 64 usage or a bad name, 65 an index is damaged\n"
	"(run imsimta reconstruct) or no such message, 67 no such user or folder,\n"
	"73 the mailbox exists, 74 I/O error, 78 configuration error.\n";

/* ---- shared with reconstruct ------------------------------------------ */

ImtaStore *
cli_store_open(const ImtaConfig *config, const char *verb, ImtaStoreConfig **store_config_r,
	       int *exit_r)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = g_build_filename(config->dir, "store.cnf", NULL);
	g_autoptr(ImtaStoreConfig) store_config = NULL;
	ImtaStore *store;

	store_config = imta_store_config_load(path, config->tailor->store_dir, &error);
	if (store_config == NULL) {
		fprintf(stderr, "imsimta %s: %s\n", verb, error->message);
		*exit_r = EXIT_CONFIG;
		return NULL;
	}
	store = imta_store_open(store_config, &error);
	if (store == NULL) {
		fprintf(stderr, "imsimta %s: the message store cannot be opened: %s\n", verb,
			error->message);
		*exit_r = EXIT_IOERR;
		return NULL;
	}
	if (store_config_r != NULL)
		*store_config_r = g_steal_pointer(&store_config);
	return store;
}

int
cli_store_exit(const GError *error)
{
	if (error == NULL || error->domain != IMTA_STORE_ERROR)
		return EXIT_IOERR;
	switch ((ImtaStoreError)error->code) {
	case IMTA_STORE_ERROR_NOT_FOUND:
		return EXIT_NOUSER;
	case IMTA_STORE_ERROR_EXISTS:
		return EXIT_CANTCREAT;
	case IMTA_STORE_ERROR_INVALID:
		return EXIT_USAGE;
	case IMTA_STORE_ERROR_CORRUPT:
		return EXIT_DATAERR;
	case IMTA_STORE_ERROR_IO:
		break;
	}
	return EXIT_IOERR;
}

/* ---- the context of one invocation -------------------------------------- */

typedef struct {
	const CliGlobal *global;
	ImtaConfig *config;
	ImtaStoreConfig *store_config;
	ImtaStore *store;
	gboolean json;
	gboolean yes;
	const char *partition;
	const char *date;
} Mbx;

/* A mailbox argument split: the user and the folder ("INBOX" when none). */
typedef struct {
	char *user;
	char *folder;
} MbxName;

static void
mbx_name_clear(MbxName *name)
{
	g_clear_pointer(&name->user, g_free);
	g_clear_pointer(&name->folder, g_free);
}

static int
mbx_fail(const char *what, const GError *error)
{
	fprintf(stderr, "imsimta mboxutil: %s%s%s\n", what != NULL ? what : "",
		what != NULL ? ": " : "", error->message);
	return cli_store_exit(error);
}

/* ---- names --------------------------------------------------------------- */

/* Why `user` cannot be a store user id, or NULL when it can. */
static const char *
mbx_user_problem(const char *user)
{
	if (*user == '\0')
		return "the user is empty";
	if (strlen(user) > MBX_USER_MAX)
		return "the user is longer than 255 bytes";
	if (!g_utf8_validate(user, -1, NULL))
		return "the user is not UTF-8";
	if (user[0] == '.')
		return "the user starts with \".\"";
	for (const char *p = user; *p != '\0'; p++)
		if ((guchar)*p < 0x20 || *p == 0x7f)
			return "the user contains a control character";
	return NULL;
}

static gboolean
mbx_check_user(const char *user, const char *arg)
{
	const char *why = mbx_user_problem(user);

	if (why == NULL)
		return TRUE;
	fprintf(stderr, "imsimta mboxutil: bad mailbox name \"%s\": %s\n", arg, why);
	return FALSE;
}

/* "alice" -> alice, INBOX; "alice/Archive/2026" -> alice, Archive/2026.
 * The folder's own rules are the store's (it says INVALID). */
static gboolean
mbx_parse_name(const char *arg, MbxName *name)
{
	const char *slash;

	if (strlen(arg) > MBX_NAME_MAX || !g_utf8_validate(arg, -1, NULL)) {
		fprintf(stderr, "imsimta mboxutil: bad mailbox name: longer than %d bytes or "
			"not UTF-8\n", MBX_NAME_MAX);
		return FALSE;
	}
	slash = strchr(arg, '/');
	name->user = slash != NULL ? g_strndup(arg, (gsize)(slash - arg)) : g_strdup(arg);
	if (!mbx_check_user(name->user, arg)) {
		mbx_name_clear(name);
		return FALSE;
	}
	if (slash == NULL || g_ascii_strcasecmp(slash + 1, "INBOX") == 0) {
		name->folder = g_strdup("INBOX");
	} else if (slash[1] == '\0') {
		fprintf(stderr, "imsimta mboxutil: bad mailbox name \"%s\": the folder after "
			"\"/\" is empty\n", arg);
		mbx_name_clear(name);
		return FALSE;
	} else if (g_ascii_strncasecmp(slash + 1, "INBOX/", 6) == 0) {
		name->folder = g_strconcat("INBOX", slash + 6, NULL);
	} else {
		name->folder = g_strdup(slash + 1);
	}
	return TRUE;
}

/* Does the user have a mailbox?  Prints why not. */
static int
mbx_require_user(Mbx *mbx, const char *user)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *partition = imta_store_user_partition(mbx->store, user, &error);

	if (partition != NULL)
		return 0;
	if (g_error_matches(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND)) {
		fprintf(stderr, "imsimta mboxutil: no such user \"%s\" in the message store\n",
			user);
		return EXIT_NOUSER;
	}
	return mbx_fail(user, error);
}

/* The user exists and so does the folder; its status in *status_r. */
static int
mbx_require_folder(Mbx *mbx, const MbxName *name, ImtaStoreFolderStatus *status_r)
{
	g_autoptr(GError) error = NULL;
	int status = mbx_require_user(mbx, name->user);

	if (status != 0)
		return status;
	if (imta_store_folder_status(mbx->store, name->user, name->folder, status_r, &error))
		return 0;
	if (g_error_matches(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND)) {
		fprintf(stderr, "imsimta mboxutil: user \"%s\" has no folder \"%s\"\n", name->user,
			name->folder);
		return EXIT_NOUSER;
	}
	if (g_error_matches(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_CORRUPT)) {
		fprintf(stderr, "imsimta mboxutil: %s/%s: %s\n", name->user, name->folder,
			error->message);
		return EXIT_DATAERR;
	}
	return mbx_fail(NULL, error);
}

/* IMAP LIST wildcards: '*' matches any text, '%' any text without '/'.
 * Dynamic programming over (pattern, text): no recursion, O(|p| * |t|). */
static gboolean
mbx_pattern_match(const char *pattern, const char *text)
{
	gsize np = strlen(pattern), nt = strlen(text);
	g_autofree gboolean *row = g_new0(gboolean, nt + 1);
	g_autofree gboolean *next = g_new0(gboolean, nt + 1);

	row[0] = TRUE;
	for (gsize i = 0; i < np; i++) {
		char c = pattern[i];

		next[0] = row[0] && (c == '*' || c == '%');
		for (gsize j = 1; j <= nt; j++) {
			if (c == '*')
				next[j] = row[j] || next[j - 1];
			else if (c == '%')
				next[j] = row[j] || (next[j - 1] && text[j - 1] != '/');
			else
				next[j] = row[j - 1] && c == text[j - 1];
		}
		memcpy(row, next, (nt + 1) * sizeof(*row));
	}
	return row[nt];
}

/* ---- output helpers ------------------------------------------------------ */

static void
json_string(GString *out, const char *text)
{
	g_autofree char *valid = NULL;

	if (text == NULL) {
		g_string_append(out, "null");
		return;
	}
	valid = g_utf8_make_valid(text, -1);
	g_string_append_c(out, '"');
	for (const guchar *p = (const guchar *)valid; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			g_string_append_printf(out, "\\%c", *p);
		else if (*p == '\n')
			g_string_append(out, "\\n");
		else if (*p == '\t')
			g_string_append(out, "\\t");
		else if (*p < 0x20 || *p == 0x7f)
			g_string_append_printf(out, "\\u%04x", *p);
		else
			g_string_append_c(out, (char)*p);
	}
	g_string_append_c(out, '"');
}

static void
json_time(GString *out, gint64 when)
{
	if (when <= 0)
		g_string_append(out, "null");
	else
		g_string_append_printf(out, "%" G_GINT64_FORMAT, when);
}

static void
json_limit(GString *out, gint64 limit)
{
	if (limit < 0)
		g_string_append(out, "null");
	else
		g_string_append_printf(out, "%" G_GINT64_FORMAT, limit);
}

/* "2026-11-23 10:15:02" local time, or "-" for none. */
static char *
mbx_format_time(gint64 when)
{
	g_autoptr(GDateTime) dt = NULL;

	if (when <= 0)
		return g_strdup("-");
	dt = g_date_time_new_from_unix_local(when);
	return dt != NULL ? g_date_time_format(dt, "%Y-%m-%d %H:%M:%S") : g_strdup("?");
}

/* A header value for a terminal: valid UTF-8, control characters (an
 * escape sequence in a Subject) shown as '?', at most `width` characters. */
static char *
mbx_printable(const char *text, guint width)
{
	g_autofree char *valid = g_utf8_make_valid(text != NULL ? text : "", -1);
	GString *out = g_string_new(NULL);
	guint n = 0;

	for (const char *p = valid; *p != '\0' && n < width; p = g_utf8_next_char(p), n++) {
		gunichar c = g_utf8_get_char(p);

		if (n + 1 == width && *g_utf8_next_char(p) != '\0') {
			g_string_append(out, "~");
			break;
		}
		if (g_unichar_iscntrl(c))
			g_string_append_c(out, '?');
		else
			g_string_append_unichar(out, c);
	}
	return g_string_free(out, FALSE);
}

/* Pad a UTF-8 string to `width` characters (printf counts bytes). */
static void
mbx_append_padded(GString *out, const char *text, guint width)
{
	glong len = g_utf8_strlen(text, -1);

	g_string_append(out, text);
	for (glong i = len; i < (glong)width; i++)
		g_string_append_c(out, ' ');
}

static const struct {
	guint32 bit;
	char letter;
	const char *name;
} mbx_flags[] = {
	{ IMTA_STORE_FLAG_RECENT, 'N', "\\Recent" },
	{ IMTA_STORE_FLAG_SEEN, 'S', "\\Seen" },
	{ IMTA_STORE_FLAG_ANSWERED, 'A', "\\Answered" },
	{ IMTA_STORE_FLAG_FLAGGED, 'F', "\\Flagged" },
	{ IMTA_STORE_FLAG_DELETED, 'D', "\\Deleted" },
	{ IMTA_STORE_FLAG_DRAFT, 'T', "\\Draft" },
};

static void
mbx_flag_letters(guint32 flags, char out[G_N_ELEMENTS(mbx_flags) + 1])
{
	for (gsize i = 0; i < G_N_ELEMENTS(mbx_flags); i++)
		out[i] = (flags & mbx_flags[i].bit) ? mbx_flags[i].letter : '-';
	out[G_N_ELEMENTS(mbx_flags)] = '\0';
}

static void
mbx_flag_json(GString *out, guint32 flags)
{
	gboolean first = TRUE;

	g_string_append_c(out, '[');
	for (gsize i = 0; i < G_N_ELEMENTS(mbx_flags); i++) {
		if (!(flags & mbx_flags[i].bit))
			continue;
		if (!first)
			g_string_append_c(out, ',');
		json_string(out, mbx_flags[i].name);
		first = FALSE;
	}
	g_string_append_c(out, ']');
}

static int
mbx_flush(void)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "imsimta mboxutil: standard output: %s\n", g_strerror(errno));
		return EXIT_IOERR;
	}
	return 0;
}

/* ---- -l: list mailboxes ---------------------------------------------------- */

typedef struct {
	char *user, *folder, *partition;
	ImtaStoreFolderStatus status;
	gboolean damaged;
} MbxRow;

static void
mbx_row_free(gpointer p)
{
	MbxRow *row = p;

	g_free(row->user);
	g_free(row->folder);
	g_free(row->partition);
	g_free(row);
}

static gboolean
mbx_selected(const char *pattern, const char *user, const char *folder)
{
	g_autofree char *full = NULL;

	if (pattern == NULL)
		return TRUE;
	if (strchr(pattern, '/') == NULL)
		return mbx_pattern_match(pattern, user);
	full = g_strconcat(user, "/", folder, NULL);
	return mbx_pattern_match(pattern, full);
}

/* The rows of one user's selected folders; FALSE when a user could not be
 * read at all (reported; the listing goes on). */
static gboolean
mbx_collect_user(Mbx *mbx, const char *user, const char *pattern, GPtrArray *rows,
		 guint *damaged)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) folders = imta_store_list_folders(mbx->store, user, &error);
	g_autofree char *partition = imta_store_user_partition(mbx->store, user, NULL);

	if (folders == NULL) {
		fprintf(stderr, "imsimta mboxutil: %s: %s\n", user, error->message);
		return FALSE;
	}
	for (guint f = 0; f < folders->len; f++) {
		const char *folder = folders->pdata[f];
		g_autoptr(GError) local = NULL;
		MbxRow *row;

		if (!mbx_selected(pattern, user, folder))
			continue;
		row = g_new0(MbxRow, 1);
		row->user = g_strdup(user);
		row->folder = g_strdup(folder);
		row->partition = g_strdup(partition != NULL ? partition : "?");
		if (!imta_store_folder_status(mbx->store, user, folder, &row->status, &local)) {
			fprintf(stderr, "imsimta mboxutil: %s/%s: %s\n", user, folder, local->message);
			row->damaged = TRUE;
			(*damaged)++;
		}
		g_ptr_array_add(rows, row);
	}
	return TRUE;
}

static void
mbx_list_text(GPtrArray *rows)
{
	guint wu = 4, wf = 6;
	gint64 messages = 0, bytes = 0;
	g_autoptr(GString) out = g_string_new(NULL);

	if (rows->len == 0) {
		printf("No mailboxes.\n");
		return;
	}
	for (guint i = 0; i < rows->len; i++) {
		const MbxRow *row = rows->pdata[i];

		wu = MAX(wu, (guint)g_utf8_strlen(row->user, -1));
		wf = MAX(wf, (guint)g_utf8_strlen(row->folder, -1));
	}
	mbx_append_padded(out, "User", wu + 2);
	mbx_append_padded(out, "Folder", wf + 2);
	g_string_append_printf(out, "%8s %12s  %s\n", "Messages", "Bytes", "Partition");
	for (guint i = 0; i < rows->len; i++) {
		const MbxRow *row = rows->pdata[i];

		mbx_append_padded(out, row->user, wu + 2);
		mbx_append_padded(out, row->folder, wf + 2);
		if (row->damaged) {
			g_string_append_printf(out, "%8s %12s  %s  (index damaged)\n", "?", "?",
					       row->partition);
			continue;
		}
		g_string_append_printf(out, "%8u %12" G_GINT64_FORMAT "  %s\n",
				       row->status.messages, row->status.bytes, row->partition);
		messages += row->status.messages;
		bytes += row->status.bytes;
	}
	g_string_append_printf(out, "%u mailbox%s, %" G_GINT64_FORMAT " message%s, %"
			       G_GINT64_FORMAT " bytes\n", rows->len, rows->len == 1 ? "" : "es",
			       messages, messages == 1 ? "" : "s", bytes);
	fputs(out->str, stdout);
}

static void
mbx_list_json(GPtrArray *rows)
{
	g_autoptr(GString) out = g_string_new("[");

	for (guint i = 0; i < rows->len; i++) {
		const MbxRow *row = rows->pdata[i];

		g_string_append(out, i > 0 ? ",\n {" : "\n {");
		g_string_append(out, "\"user\": ");
		json_string(out, row->user);
		g_string_append(out, ", \"folder\": ");
		json_string(out, row->folder);
		g_string_append(out, ", \"partition\": ");
		json_string(out, row->partition);
		if (row->damaged) {
			g_string_append(out, ", \"damaged\": true}");
			continue;
		}
		g_string_append_printf(out, ", \"messages\": %u, \"bytes\": %" G_GINT64_FORMAT
				       ", \"uidvalidity\": %u, \"uidnext\": %u}",
				       row->status.messages, row->status.bytes,
				       row->status.uidvalidity, row->status.uidnext);
	}
	g_string_append(out, rows->len > 0 ? "\n]\n" : "]\n");
	fputs(out->str, stdout);
}

static int
mbx_list(Mbx *mbx, const char *pattern)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) users = imta_store_list_users(mbx->store, &error);
	g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func(mbx_row_free);
	guint damaged = 0, unreadable = 0;
	int status;

	if (users == NULL)
		return mbx_fail("the mailbox list", error);
	for (guint u = 0; u < users->len; u++) {
		const char *user = users->pdata[u];

		if (pattern != NULL && strchr(pattern, '/') == NULL &&
		    !mbx_pattern_match(pattern, user))
			continue;
		if (!mbx_collect_user(mbx, user, pattern, rows, &damaged))
			unreadable++;
	}
	if (mbx->json)
		mbx_list_json(rows);
	else
		mbx_list_text(rows);
	status = mbx_flush();
	if (status != 0)
		return status;
	if (unreadable > 0)
		return EXIT_IOERR;
	return damaged > 0 ? EXIT_DATAERR : 0;
}

/* ---- -c, -d, -r ---------------------------------------------------------- */

static int
mbx_create(Mbx *mbx, const char *arg)
{
	g_autoptr(GError) error = NULL;
	MbxName name = { 0 };
	int status = 0;

	if (!mbx_parse_name(arg, &name))
		return EXIT_USAGE;
	if (strcmp(name.folder, "INBOX") == 0) {
		if (mbx->partition != NULL &&
		    imta_store_partition_path(mbx->store, mbx->partition) == NULL) {
			fprintf(stderr, "imsimta mboxutil: no partition \"%s\" (store.cnf "
				"defines them: store.partition.NAME.path)\n", mbx->partition);
			status = EXIT_USAGE;
		} else if (!imta_store_create_user(mbx->store, name.user, mbx->partition,
						   &error)) {
			status = mbx_fail(name.user, error);
		} else {
			g_autofree char *partition =
				imta_store_user_partition(mbx->store, name.user, NULL);

			printf("created %s/INBOX on partition %s\n", name.user,
			       partition != NULL ? partition : "?");
		}
	} else if (mbx->partition != NULL) {
		fprintf(stderr, "imsimta mboxutil: --partition applies to a new user (-c USER); "
			"a folder is on its user's partition\n");
		status = EXIT_USAGE;
	} else if ((status = mbx_require_user(mbx, name.user)) == 0) {
		if (!imta_store_create_folder(mbx->store, name.user, name.folder, &error))
			status = mbx_fail(arg, error);
		else
			printf("created %s/%s\n", name.user, name.folder);
	}
	mbx_name_clear(&name);
	return status != 0 ? status : mbx_flush();
}

static int
mbx_delete(Mbx *mbx, const char *arg)
{
	g_autoptr(GError) error = NULL;
	MbxName name = { 0 };
	gboolean whole_user;
	int status;

	if (!mbx_parse_name(arg, &name))
		return EXIT_USAGE;
	whole_user = strchr(arg, '/') == NULL;
	status = mbx_require_user(mbx, name.user);
	if (status != 0) {
		/* nothing to do */
	} else if (whole_user && !mbx->yes) {
		fprintf(stderr, "imsimta mboxutil: -d %s deletes every folder and message of "
			"user %s: add --yes to do it (-d %s/INBOX is refused: INBOX is deleted "
			"with its user)\n", name.user, name.user, name.user);
		status = EXIT_USAGE;
	} else if (whole_user) {
		if (!imta_store_delete_user(mbx->store, name.user, &error))
			status = mbx_fail(name.user, error);
		else
			printf("deleted user %s\n", name.user);
	} else if (strcmp(name.folder, "INBOX") == 0) {
		fprintf(stderr, "imsimta mboxutil: INBOX cannot be deleted on its own; "
			"-d %s --yes deletes the user\n", name.user);
		status = EXIT_USAGE;
	} else if (!imta_store_delete_folder(mbx->store, name.user, name.folder, &error)) {
		if (g_error_matches(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND))
			fprintf(stderr, "imsimta mboxutil: user \"%s\" has no folder \"%s\"\n",
				name.user, name.folder);
		else
			fprintf(stderr, "imsimta mboxutil: %s: %s\n", arg, error->message);
		status = cli_store_exit(error);
	} else {
		printf("deleted %s/%s\n", name.user, name.folder);
	}
	mbx_name_clear(&name);
	return status != 0 ? status : mbx_flush();
}

static int
mbx_rename(Mbx *mbx, const char *from_arg, const char *to_arg)
{
	g_autoptr(GError) error = NULL;
	MbxName from = { 0 }, to = { 0 };
	int status = EXIT_USAGE;

	if (!mbx_parse_name(from_arg, &from) || !mbx_parse_name(to_arg, &to))
		goto out;
	if (strcmp(from.user, to.user) != 0) {
		fprintf(stderr, "imsimta mboxutil: -r renames a folder within one user's mailbox "
			"(%s and %s are different users)\n", from.user, to.user);
		goto out;
	}
	if (strcmp(from.folder, "INBOX") == 0 || strcmp(to.folder, "INBOX") == 0) {
		fprintf(stderr, "imsimta mboxutil: INBOX cannot be renamed, nor a folder renamed "
			"to INBOX\n");
		goto out;
	}
	status = mbx_require_user(mbx, from.user);
	if (status != 0)
		goto out;
	if (!imta_store_rename_folder(mbx->store, from.user, from.folder, to.folder, &error)) {
		if (g_error_matches(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND))
			fprintf(stderr, "imsimta mboxutil: user \"%s\" has no folder \"%s\"\n",
				from.user, from.folder);
		else
			fprintf(stderr, "imsimta mboxutil: %s -> %s: %s\n", from_arg, to_arg,
				error->message);
		status = cli_store_exit(error);
		goto out;
	}
	printf("renamed %s/%s to %s/%s\n", from.user, from.folder, to.user, to.folder);
	status = mbx_flush();
out:
	mbx_name_clear(&from);
	mbx_name_clear(&to);
	return status;
}

/* ---- -q: quota ------------------------------------------------------------ */

typedef struct {
	gint64 bytes, messages;      /* -1: unlimited */
	const char *source;          /* "directory", "default", ... */
} MbxLimits;

/* The LDAP URL escape of a filter or DN: everything but a safe set as %XX. */
static void
mbx_url_escape(GString *out, const char *text)
{
	for (const guchar *p = (const guchar *)text; *p != '\0'; p++) {
		if (g_ascii_isalnum(*p) || strchr("-._~=(),&|!@:", *p) != NULL)
			g_string_append_c(out, (char)*p);
		else
			g_string_append_printf(out, "%%%02X", *p);
	}
}

/* The filter value escape of RFC 4515. */
static void
mbx_filter_escape(GString *out, const char *text)
{
	for (const guchar *p = (const guchar *)text; *p != '\0'; p++) {
		if (*p == '*' || *p == '(' || *p == ')' || *p == '\\')
			g_string_append_printf(out, "\\%02x", *p);
		else
			g_string_append_c(out, (char)*p);
	}
}

/* The directory entry of a store user id: "uid" anywhere, "uid@domain"
 * under the domain's base DN.  NOT_FOUND with *why_r when there is none
 * or more than one. */
static ImtaDirStatus
mbx_directory_user(ImtaDirectory *dir, const char *userid, ImtaDirEntry **entry_r,
		   const char **why_r, GError **error)
{
	g_autofree char *uid = g_strdup(userid);
	char *at = strrchr(uid, '@');
	g_autoptr(ImtaDirDomain) domain = NULL;
	g_autoptr(GString) url = g_string_new("ldap:///");
	g_autoptr(GString) filter = g_string_new("(uid=");
	g_autoptr(GPtrArray) entries = NULL;
	ImtaDirStatus status;

	*entry_r = NULL;
	*why_r = "not in the directory";
	if (at != NULL) {
		*at = '\0';
		status = imta_directory_lookup_domain(dir, at + 1, &domain, error);
		if (status != IMTA_DIR_FOUND)
			return status;
		if (domain->base_dn != NULL)
			mbx_url_escape(url, domain->base_dn);
	}
	mbx_filter_escape(filter, uid);
	g_string_append_c(filter, ')');
	g_string_append(url, "??sub?");
	mbx_url_escape(url, filter->str);
	status = imta_directory_search_url(dir, url->str, &entries, error);
	if (status != IMTA_DIR_FOUND)
		return status;
	if (entries->len != 1) {
		*why_r = "several directory entries have this uid";
		return IMTA_DIR_NOT_FOUND;
	}
	*entry_r = imta_dir_entry_ref(entries->pdata[0]);
	return IMTA_DIR_FOUND;
}

static gint64
mbx_limit(gint64 value, gint64 fallback)
{
	if (value == IMTA_DIR_QUOTA_DEFAULT)
		return fallback;
	return value < 0 ? -1 : value;
}

static void
mbx_user_limits(Mbx *mbx, ImtaDirectory *dir, const char *user, MbxLimits *limits)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaDirEntry) entry = NULL;
	const char *why = NULL;
	ImtaDirStatus status;

	limits->bytes = mbx->store_config->default_mailbox_quota;
	limits->messages = mbx->store_config->default_message_quota;
	if (dir == NULL) {
		limits->source = "default (directory unavailable)";
		return;
	}
	status = mbx_directory_user(dir, user, &entry, &why, &error);
	if (status == IMTA_DIR_TEMPFAIL) {
		fprintf(stderr, "imsimta mboxutil: %s: the directory did not answer: %s\n", user,
			error != NULL ? error->message : "temporary failure");
		limits->source = "default (directory unavailable)";
		return;
	}
	if (status != IMTA_DIR_FOUND) {
		limits->source = g_str_equal(why, "not in the directory")
					 ? "default (not in the directory)"
					 : "default (several directory entries)";
		return;
	}
	limits->bytes = mbx_limit(entry->quota_bytes, limits->bytes);
	limits->messages = mbx_limit(entry->quota_messages, limits->messages);
	limits->source = entry->quota_bytes == IMTA_DIR_QUOTA_DEFAULT &&
				 entry->quota_messages == IMTA_DIR_QUOTA_DEFAULT
			 ? "default"
			 : "directory";
}

/* Percent used, one decimal; "-" when there is no limit. */
static char *
mbx_percent(gint64 used, gint64 limit)
{
	if (limit < 0)
		return g_strdup("-");
	if (limit == 0)
		return g_strdup(used > 0 ? "over" : "-");
	return g_strdup_printf("%.1f%%", (double)used * 100.0 / (double)limit);
}

static char *
mbx_limit_text(gint64 limit)
{
	return limit < 0 ? g_strdup("unlimited") : g_strdup_printf("%" G_GINT64_FORMAT, limit);
}

/* The directory, if the instance has one that opens; NULL (said once on
 * standard error) otherwise: the limits are then the store's defaults. */
static ImtaDirectory *
mbx_open_directory(Mbx *mbx)
{
	g_autoptr(GError) error = NULL;
	/* Uncached: the limits shown are those in the directory now. */
	ImtaDirectory *dir = imta_config_open_directory(mbx->config, FALSE, &error);

	if (dir == NULL)
		fprintf(stderr, "imsimta mboxutil: the directory cannot be read (%s): limits are "
			"the store's defaults\n", error->message);
	return dir;
}

static void
mbx_quota_text_row(GString *out, guint wu, const char *user, const ImtaStoreUsage *usage,
		   const MbxLimits *limits)
{
	g_autofree char *bl = mbx_limit_text(limits->bytes);
	g_autofree char *ml = mbx_limit_text(limits->messages);
	g_autofree char *bp = mbx_percent(usage->bytes, limits->bytes);
	g_autofree char *mp = mbx_percent(usage->messages, limits->messages);
	g_autofree char *warned = mbx_format_time(usage->warned_at);
	g_autofree char *over = mbx_format_time(usage->over_since);

	mbx_append_padded(out, user, wu + 2);
	g_string_append_printf(out, "%12" G_GINT64_FORMAT " %12s %6s %9" G_GINT64_FORMAT
			       " %9s %6s  %-19s  %-19s  %s\n", usage->bytes, bl, bp,
			       usage->messages, ml, mp, warned, over, limits->source);
}

static void
mbx_quota_json_row(GString *out, const char *user, const ImtaStoreUsage *usage,
		   const MbxLimits *limits)
{
	g_string_append(out, "{\"user\": ");
	json_string(out, user);
	g_string_append_printf(out, ", \"bytes\": %" G_GINT64_FORMAT ", \"bytes_limit\": ",
			       usage->bytes);
	json_limit(out, limits->bytes);
	g_string_append_printf(out, ", \"messages\": %" G_GINT64_FORMAT ", \"messages_limit\": ",
			       usage->messages);
	json_limit(out, limits->messages);
	g_string_append(out, ", \"limit_source\": ");
	json_string(out, limits->source);
	g_string_append(out, ", \"warned_at\": ");
	json_time(out, usage->warned_at);
	g_string_append(out, ", \"over_quota_since\": ");
	json_time(out, usage->over_since);
	g_string_append_c(out, '}');
}

static int
mbx_quota(Mbx *mbx, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) users = NULL;
	g_autoptr(ImtaDirectory) dir = NULL;
	g_autoptr(GString) out = g_string_new(NULL);
	guint wu = 4, shown = 0;
	int status = 0;

	if (argc > 1) {
		users = g_ptr_array_new_with_free_func(g_free);
		for (int i = 1; i < argc; i++) {
			if (!mbx_check_user(argv[i], argv[i]))
				return EXIT_USAGE;
			g_ptr_array_add(users, g_strdup(argv[i]));
		}
	} else if ((users = imta_store_list_users(mbx->store, &error)) == NULL) {
		return mbx_fail("the mailbox list", error);
	}
	dir = mbx_open_directory(mbx);
	for (guint i = 0; i < users->len; i++)
		wu = MAX(wu, (guint)g_utf8_strlen(users->pdata[i], -1));
	if (mbx->json) {
		g_string_append_c(out, '[');
	} else {
		mbx_append_padded(out, "User", wu + 2);
		g_string_append_printf(out, "%12s %12s %6s %9s %9s %6s  %-19s  %-19s  %s\n",
				       "Bytes", "Quota", "Used", "Messages", "Quota", "Used",
				       "Warned", "Over quota since", "Limits from");
	}
	for (guint i = 0; i < users->len; i++) {
		const char *user = users->pdata[i];
		g_autoptr(GError) local = NULL;
		ImtaStoreUsage usage = { 0 };
		MbxLimits limits;

		if (!imta_store_get_usage(mbx->store, user, &usage, &local)) {
			if (g_error_matches(local, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND))
				fprintf(stderr, "imsimta mboxutil: no such user \"%s\" in the "
					"message store\n", user);
			else
				fprintf(stderr, "imsimta mboxutil: %s: %s\n", user, local->message);
			status = cli_store_exit(local);
			continue;
		}
		mbx_user_limits(mbx, dir, user, &limits);
		if (mbx->json) {
			g_string_append(out, shown > 0 ? ",\n " : "\n ");
			mbx_quota_json_row(out, user, &usage, &limits);
		} else {
			mbx_quota_text_row(out, wu, user, &usage, &limits);
		}
		shown++;
	}
	if (mbx->json)
		g_string_append(out, shown > 0 ? "\n]\n" : "]\n");
	fputs(out->str, stdout);
	return status != 0 ? status : mbx_flush();
}

/* ---- -m: messages ---------------------------------------------------------- */

static void
mbx_messages_text(GString *out, const MbxName *name, GPtrArray *messages)
{
	guint wuid = 3, wsize = 4;
	gint64 bytes = 0;

	for (guint i = 0; i < messages->len; i++) {
		const ImtaStoreMessage *m = messages->pdata[i];
		g_autofree char *uid = g_strdup_printf("%u", m->uid);
		g_autofree char *size = g_strdup_printf("%" G_GINT64_FORMAT, m->size);

		wuid = MAX(wuid, (guint)strlen(uid));
		wsize = MAX(wsize, (guint)strlen(size));
	}
	g_string_append_printf(out, "%*s  %-6s  %*s  %-19s  ", wuid, "UID", "Flags", wsize,
			       "Size", "Received");
	mbx_append_padded(out, "From", MBX_FROM_WIDTH + 2);
	g_string_append(out, "Subject\n");
	for (guint i = 0; i < messages->len; i++) {
		const ImtaStoreMessage *m = messages->pdata[i];
		char flags[G_N_ELEMENTS(mbx_flags) + 1];
		g_autofree char *when = mbx_format_time(m->internal_date);
		g_autofree char *from = mbx_printable(m->from, MBX_FROM_WIDTH);
		g_autofree char *subject = mbx_printable(m->subject, MBX_SUBJECT_WIDTH);

		mbx_flag_letters(m->flags, flags);
		g_string_append_printf(out, "%*u  %-6s  %*" G_GINT64_FORMAT "  %-19s  ", wuid,
				       m->uid, flags, wsize, m->size, when);
		mbx_append_padded(out, from, MBX_FROM_WIDTH + 2);
		g_string_append_printf(out, "%s\n", subject);
		bytes += m->size;
	}
	g_string_append_printf(out, "%s/%s: %u message%s, %" G_GINT64_FORMAT " bytes\n",
			       name->user, name->folder, messages->len,
			       messages->len == 1 ? "" : "s", bytes);
}

static void
mbx_messages_json(GString *out, const MbxName *name, const ImtaStoreFolderStatus *status,
		  GPtrArray *messages)
{
	g_string_append(out, "{\"user\": ");
	json_string(out, name->user);
	g_string_append(out, ", \"folder\": ");
	json_string(out, name->folder);
	g_string_append_printf(out, ", \"uidvalidity\": %u, \"uidnext\": %u, \"messages\": [",
			       status->uidvalidity, status->uidnext);
	for (guint i = 0; i < messages->len; i++) {
		const ImtaStoreMessage *m = messages->pdata[i];

		g_string_append_printf(out, "%s\n  {\"uid\": %u, \"flags\": ", i > 0 ? "," : "",
				       m->uid);
		mbx_flag_json(out, m->flags);
		g_string_append_printf(out, ", \"size\": %" G_GINT64_FORMAT ", \"internal_date\": ",
				       m->size);
		json_time(out, m->internal_date);
		g_string_append(out, ", \"date\": ");
		json_string(out, m->date);
		g_string_append(out, ", \"from\": ");
		json_string(out, m->from);
		g_string_append(out, ", \"to\": ");
		json_string(out, m->to);
		g_string_append(out, ", \"cc\": ");
		json_string(out, m->cc);
		g_string_append(out, ", \"subject\": ");
		json_string(out, m->subject);
		g_string_append(out, ", \"message_id\": ");
		json_string(out, m->message_id);
		g_string_append_c(out, '}');
	}
	g_string_append(out, messages->len > 0 ? "\n]}\n" : "]}\n");
}

static int
mbx_messages(Mbx *mbx, const char *arg)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) messages = NULL;
	g_autoptr(GString) out = g_string_new(NULL);
	ImtaStoreFolderStatus status;
	MbxName name = { 0 };
	int rc;

	if (!mbx_parse_name(arg, &name))
		return EXIT_USAGE;
	rc = mbx_require_folder(mbx, &name, &status);
	if (rc == 0) {
		messages = imta_store_folder_messages(mbx->store, name.user, name.folder, &error);
		if (messages == NULL) {
			fprintf(stderr, "imsimta mboxutil: %s/%s: %s\n", name.user, name.folder,
				error->message);
			rc = cli_store_exit(error);
		}
	}
	if (rc == 0) {
		if (mbx->json)
			mbx_messages_json(out, &name, &status, messages);
		else
			mbx_messages_text(out, &name, messages);
		fputs(out->str, stdout);
		rc = mbx_flush();
	}
	mbx_name_clear(&name);
	return rc;
}

/* ---- -P: print a message ---------------------------------------------------- */

static gboolean
mbx_parse_uid(const char *text, guint32 *uid_r)
{
	guint64 value;

	if (!g_ascii_string_to_unsigned(text, 10, 1, G_MAXUINT32, &value, NULL))
		return FALSE;
	*uid_r = (guint32)value;
	return TRUE;
}

static int
mbx_copy_to_stdout(GInputStream *in, const char *what)
{
	g_autoptr(GError) error = NULL;
	char buffer[65536];

	for (;;) {
		gssize n = g_input_stream_read(in, buffer, sizeof(buffer), NULL, &error);

		if (n < 0) {
			fprintf(stderr, "imsimta mboxutil: %s: %s\n", what, error->message);
			return EXIT_IOERR;
		}
		if (n == 0)
			break;
		if (fwrite(buffer, 1, (gsize)n, stdout) != (gsize)n)
			break;
	}
	return mbx_flush();
}

static int
mbx_print(Mbx *mbx, const char *arg, const char *uid_text)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GInputStream) in = NULL;
	g_autofree char *what = NULL;
	ImtaStoreFolderStatus status;
	MbxName name = { 0 };
	guint32 uid;
	int rc;

	if (!mbx_parse_uid(uid_text, &uid)) {
		fprintf(stderr, "imsimta mboxutil: -P: expected a UID between 1 and 4294967295, "
			"got \"%s\"\n", uid_text);
		return EXIT_USAGE;
	}
	if (!mbx_parse_name(arg, &name))
		return EXIT_USAGE;
	what = g_strdup_printf("%s/%s UID %u", name.user, name.folder, uid);
	rc = mbx_require_folder(mbx, &name, &status);
	if (rc == 0) {
		in = imta_store_open_message(mbx->store, name.user, name.folder, uid, &error);
		if (in == NULL && g_error_matches(error, IMTA_STORE_ERROR,
						  IMTA_STORE_ERROR_NOT_FOUND)) {
			fprintf(stderr, "imsimta mboxutil: no message with UID %u in %s/%s\n", uid,
				name.user, name.folder);
			rc = EXIT_DATAERR;
		} else if (in == NULL) {
			fprintf(stderr, "imsimta mboxutil: %s: %s\n", what, error->message);
			rc = cli_store_exit(error);
		} else {
			rc = mbx_copy_to_stdout(in, what);
		}
	}
	mbx_name_clear(&name);
	return rc;
}

/* ---- --deliver: restore a message ------------------------------------------ */

/* Standard input, CRLF turned into LF, at most MBX_DELIVER_MAX bytes. */
static GByteArray *
mbx_read_stdin(int *exit_r)
{
	g_autoptr(GByteArray) data = g_byte_array_new();
	guint8 buffer[65536];
	gboolean cr = FALSE;
	size_t n;

	while ((n = fread(buffer, 1, sizeof(buffer), stdin)) > 0) {
		for (size_t i = 0; i < n; i++) {
			if (cr && buffer[i] != '\n')
				g_byte_array_append(data, (const guint8 *)"\r", 1);
			cr = buffer[i] == '\r';
			if (!cr)
				g_byte_array_append(data, &buffer[i], 1);
		}
		if (data->len > MBX_DELIVER_MAX) {
			fprintf(stderr, "imsimta mboxutil: --deliver: the message is larger than "
				"%zu bytes\n", MBX_DELIVER_MAX);
			*exit_r = EXIT_DATAERR;
			return NULL;
		}
	}
	if (ferror(stdin)) {
		fprintf(stderr, "imsimta mboxutil: --deliver: standard input: %s\n",
			g_strerror(errno));
		*exit_r = EXIT_IOERR;
		return NULL;
	}
	if (cr)
		g_byte_array_append(data, (const guint8 *)"\r", 1);
	if (data->len == 0) {
		fprintf(stderr, "imsimta mboxutil: --deliver: the message on standard input is "
			"empty\n");
		*exit_r = EXIT_DATAERR;
		return NULL;
	}
	return g_steal_pointer(&data);
}

/* --date: Unix seconds or ISO 8601 with a zone ("2026-11-23T10:15:02Z"). */
static gboolean
mbx_parse_date(const char *text, gint64 *when_r)
{
	guint64 seconds;
	g_autoptr(GDateTime) dt = NULL;

	if (g_ascii_string_to_unsigned(text, 10, 1, G_MAXINT64, &seconds, NULL)) {
		*when_r = (gint64)seconds;
		return TRUE;
	}
	dt = g_date_time_new_from_iso8601(text, NULL);
	if (dt == NULL || g_date_time_to_unix(dt) <= 0)
		return FALSE;
	*when_r = g_date_time_to_unix(dt);
	return TRUE;
}

static int
mbx_deliver(Mbx *mbx, const char *arg)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GByteArray) data = NULL;
	ImtaStoreFolderStatus status;
	ImtaStoreTarget target = { 0 };
	MbxName name = { 0 };
	gint64 when = 0;
	int rc;

	if (mbx->date != NULL && !mbx_parse_date(mbx->date, &when)) {
		fprintf(stderr, "imsimta mboxutil: --date: expected Unix seconds or an ISO 8601 "
			"time with a zone (2026-11-23T10:15:02Z), got \"%s\"\n", mbx->date);
		return EXIT_USAGE;
	}
	if (!mbx_parse_name(arg, &name))
		return EXIT_USAGE;
	/* Unlike the delivery channel, a restore into a missing folder is a
	 * mistake to report, not a reason to fall back to INBOX. */
	rc = mbx_require_folder(mbx, &name, &status);
	if (rc == 0 && (data = mbx_read_stdin(&rc)) != NULL) {
		target.userid = name.user;
		target.folder = name.folder;
		if (!imta_store_deliver(mbx->store, (const char *)data->data, data->len, when,
					&target, 1, &error)) {
			rc = mbx_fail("--deliver", error);
		} else if (target.error != NULL) {
			rc = mbx_fail(arg, target.error);
			g_clear_error(&target.error);
		} else {
			printf("delivered to %s/%s as UID %u\n", name.user, name.folder, target.uid);
			rc = mbx_flush();
		}
	}
	mbx_name_clear(&name);
	return rc;
}

/* ---- the verb --------------------------------------------------------------- */

static int
mbx_run(Mbx *mbx, int argc, char **argv, gboolean list, const char *pattern,
	const char *create, const char *delete, const char *rename, gboolean quota,
	const char *messages, const char *print, const char *deliver)
{
	int actions = list + quota + (create != NULL) + (delete != NULL) + (rename != NULL) +
		      (messages != NULL) + (print != NULL) + (deliver != NULL);
	int want_args = rename != NULL || print != NULL ? 2 : 1;
	int status;

	if (actions != 1) {
		fprintf(stderr, "imsimta mboxutil: give exactly one of -l, -c, -d, -r, -q, -m, -P, "
			"--deliver (imsimta mboxutil --help)\n");
		return EXIT_USAGE;
	}
	if (!quota && argc != want_args) {
		fprintf(stderr, "imsimta mboxutil: %s\n",
			rename != NULL ? "-r takes two names: -r OLD NEW"
			: print != NULL ? "-P takes a mailbox and a UID: -P USER/FOLDER UID"
					: "unexpected arguments");
		return EXIT_USAGE;
	}
	if ((pattern != NULL && !list) || (mbx->json && !list && !quota && messages == NULL) ||
	    (mbx->date != NULL && deliver == NULL) || (mbx->yes && delete == NULL) ||
	    (mbx->partition != NULL && create == NULL)) {
		fprintf(stderr, "imsimta mboxutil: -p goes with -l, --json with -l, -q or -m, "
			"--date with --deliver, --yes with -d, --partition with -c\n");
		return EXIT_USAGE;
	}
	mbx->config = cli_load_config(mbx->global, 0);
	if (mbx->config == NULL)
		return EXIT_CONFIG;
	mbx->store = cli_store_open(mbx->config, "mboxutil", &mbx->store_config, &status);
	if (mbx->store == NULL)
		return status;
	if (list)
		return mbx_list(mbx, pattern);
	if (create != NULL)
		return mbx_create(mbx, create);
	if (delete != NULL)
		return mbx_delete(mbx, delete);
	if (rename != NULL)
		return mbx_rename(mbx, rename, argv[1]);
	if (quota)
		return mbx_quota(mbx, argc, argv);
	if (messages != NULL)
		return mbx_messages(mbx, messages);
	if (print != NULL)
		return mbx_print(mbx, print, argv[1]);
	return mbx_deliver(mbx, deliver);
}

int
cli_mboxutil(const CliGlobal *global, int argc, char **argv)
{
	gboolean list = FALSE, quota = FALSE, json = FALSE, yes = FALSE;
	g_autofree char *pattern = NULL, *create = NULL, *delete = NULL, *rename = NULL;
	g_autofree char *messages = NULL, *print = NULL, *deliver = NULL;
	g_autofree char *partition = NULL, *date = NULL;
	const GOptionEntry entries[] = {
		{ "list", 'l', 0, G_OPTION_ARG_NONE, &list, "List mailboxes", NULL },
		{ "pattern", 'p', 0, G_OPTION_ARG_STRING, &pattern,
		  "With -l: only mailboxes matching PATTERN", "PATTERN" },
		{ "create", 'c', 0, G_OPTION_ARG_STRING, &create, "Create a mailbox", "USER[/FOLDER]" },
		{ "delete", 'd', 0, G_OPTION_ARG_STRING, &delete, "Delete a folder or (--yes) a user",
		  "USER[/FOLDER]" },
		{ "rename", 'r', 0, G_OPTION_ARG_STRING, &rename, "Rename folder OLD to NEW", "OLD" },
		{ "quota", 'q', 0, G_OPTION_ARG_NONE, &quota, "Quota usage of USER... (default all)",
		  NULL },
		{ "messages", 'm', 0, G_OPTION_ARG_STRING, &messages, "List a folder's messages",
		  "USER[/FOLDER]" },
		{ "print", 'P', 0, G_OPTION_ARG_STRING, &print, "Print message UID of a folder",
		  "USER[/FOLDER]" },
		{ "deliver", 0, 0, G_OPTION_ARG_STRING, &deliver,
		  "Store the message on standard input", "USER[/FOLDER]" },
		{ "date", 0, 0, G_OPTION_ARG_STRING, &date,
		  "With --deliver: the arrival time (Unix seconds or ISO 8601)", "WHEN" },
		{ "partition", 0, 0, G_OPTION_ARG_STRING, &partition,
		  "With -c USER: the partition (default: store.defaultpartition)", "NAME" },
		{ "yes", 0, 0, G_OPTION_ARG_NONE, &yes, "With -d USER: really delete the user", NULL },
		{ "json", 0, 0, G_OPTION_ARG_NONE, &json, "With -l, -q, -m: print JSON", NULL },
		{ NULL }
	};
	g_autoptr(ImtaConfig) config = NULL;
	g_autoptr(ImtaStoreConfig) store_config = NULL;
	g_autoptr(ImtaStore) store = NULL;
	Mbx mbx = { .global = global };
	int status;

	if (!cli_parse_options(&argc, &argv, "mboxutil", "[-l|-c|-d|-r|-q|-m|-P] [ARGS...]",
			       mbx_help, entries, &status))
		return status;
	mbx.json = json;
	mbx.yes = yes;
	mbx.partition = partition;
	mbx.date = date;
	status = mbx_run(&mbx, argc, argv, list, pattern, create, delete, rename, quota, messages,
			 print, deliver);
	/* Owned here so that every path of mbx_run releases them. */
	config = mbx.config;
	store_config = mbx.store_config;
	store = mbx.store;
	return status;
}

/* ---- hashdir ------------------------------------------------------------------ */

int
cli_hashdir(const CliGlobal *global, int argc, char **argv)
{
	gboolean path = FALSE;
	const GOptionEntry entries[] = {
		{ "path", 0, 0, G_OPTION_ARG_NONE, &path,
		  "Print the whole directory of each user's INBOX", NULL },
		{ NULL }
	};
	g_autoptr(ImtaConfig) config = NULL;
	g_autoptr(ImtaStore) store = NULL;
	int status;

	if (!cli_parse_options(&argc, &argv, "hashdir", "[--path] USER...",
			       "The two hash levels of each user's mailbox directory below "
			       "PARTITION/=user/\n(\"53/53\"), one line per user; with --path, "
			       "the whole directory of the INBOX.", entries, &status))
		return status;
	if (argc < 2) {
		fprintf(stderr, "imsimta hashdir: name at least one user\n");
		return EXIT_USAGE;
	}
	for (int i = 1; i < argc; i++) {
		const char *why = strchr(argv[i], '/') != NULL ? "it contains \"/\""
							       : mbx_user_problem(argv[i]);

		if (why != NULL) {
			fprintf(stderr, "imsimta hashdir: \"%s\" is not a user id: %s\n", argv[i],
				why);
			return EXIT_USAGE;
		}
	}
	if (path) {
		config = cli_load_config(global, 0);
		if (config == NULL)
			return EXIT_CONFIG;
		store = cli_store_open(config, "hashdir", NULL, &status);
		if (store == NULL)
			return status;
	}
	for (int i = 1; i < argc; i++) {
		g_autofree char *dir = path ? imta_store_user_path(store, argv[i], NULL)
					    : imta_store_hash_dir(argv[i]);

		if (dir == NULL) {
			fprintf(stderr, "imsimta hashdir: %s: the default partition is not "
				"defined (store.defaultpartition in store.cnf)\n", argv[i]);
			return EXIT_CONFIG;
		}
		printf("%s\n", dir);
	}
	return mbx_flush();
}
