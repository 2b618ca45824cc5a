/*
 * store.h - the message store: users' mailboxes on one or more partitions,
 * one file per message, a per-folder index and header cache, single copy
 * per partition, quota usage, and a system area that can be rebuilt from
 * the mailboxes.
 *
 * Layout (imta-store(5) has the details):
 *
 *   ROOT/mboxlist/            the system area: mailbox list and quota usage
 *   ROOT/snapshots/NAME/      copies of the system area (imta_store_snapshot)
 *   PARTITION/=user/HH/HH/=USERID/   the user's INBOX
 *       store.idx             index: UIDVALIDITY, UIDNEXT, one record per message
 *       store.cache           header cache: the envelope fields of each message
 *       HH/UID.msg            the messages, spread over hash directories
 *       ...                   sub-folders, each a directory of the same shape
 *   PARTITION/tmp/            files being delivered
 *
 * The two HH levels of a user come from a stable hash of the user id
 * (imta_store_hash_dir); a partition is a directory (ideally a file
 * system of its own) named in store.cnf, "primary" by default at
 * ROOT/partition/primary.
 *
 * Folder names are IMAP-like: "INBOX", or a path below it with '/' as the
 * separator ("Archive/2026"); INBOX is case-insensitive, other names are
 * UTF-8, at most 255 bytes, without control characters, "." or ".."
 * components, or empty components.
 *
 * Durability: imta_store_deliver() returns TRUE only once every message
 * file, link and index record it made is on disk.  A process killed at any
 * point leaves every folder consistent: at worst a message file with no
 * index record (a UID at or above the index's UIDNEXT), which is invisible,
 * and removed by the next delivery into that folder or by reconstruct.
 *
 * Concurrency: any number of processes and threads may use one store;
 * writers of one folder serialise on a lock of that folder's index, and
 * the quota record of a user on a lock of its own.  Readers never see a
 * half-written record.
 *
 * Errors are IMTA_STORE_ERROR: NOT_FOUND (no such user or folder), EXISTS,
 * INVALID (a bad name), IO (with the path and the system's reason),
 * CORRUPT (an index that does not parse: run reconstruct).
 */
#ifndef IMTA_STORE_H
#define IMTA_STORE_H

#include <gio/gio.h>

G_BEGIN_DECLS

#define IMTA_STORE_ERROR (imta_store_error_quark())
GQuark imta_store_error_quark(void);
typedef enum {
	IMTA_STORE_ERROR_NOT_FOUND,
	IMTA_STORE_ERROR_EXISTS,
	IMTA_STORE_ERROR_INVALID,
	IMTA_STORE_ERROR_IO,
	IMTA_STORE_ERROR_CORRUPT,
} ImtaStoreError;

/* ---- configuration (store.cnf) ---------------------------------------- */

/* store.cnf in the configuration directory: "name = value" lines with the
 * names of the system we implement (imta-store(5)); a missing file gives
 * the defaults below. */
typedef struct {
	char *root;                     /* store.root; default IMTA_STORE of imta_tailor */
	char *default_partition;        /* store.defaultpartition; "primary" */
	GHashTable *partitions;         /* store.partition.NAME.path: name -> path;
					 * "primary" is ROOT/partition/primary unless given */
	gboolean quota_enforcement;     /* store.quotaenforcement; default on */
	gint64 default_mailbox_quota;   /* store.defaultmailboxquota, bytes; -1 unlimited (default) */
	gint64 default_message_quota;   /* store.defaultmessagequota; -1 unlimited (default) */
	gint quota_warn_percent;        /* store.quotawarn; 90; 0 = no warnings */
	gint64 quota_grace_period;      /* store.quotagraceperiod, given in hours; seconds; 120 h */
	gboolean overquota_status;      /* store.overquotastatus; default off */
	char *path;                     /* the file read, NULL when absent */
} ImtaStoreConfig;

/* Errors are "file:line:column: expected ..." (IMTA_CONFIG_ERROR). */
ImtaStoreConfig *imta_store_config_load(const char *path, const char *default_root,
					GError **error);
void imta_store_config_free(ImtaStoreConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaStoreConfig, imta_store_config_free)

/* ---- the store -------------------------------------------------------- */

typedef struct _ImtaStore ImtaStore;

/* Open (creating ROOT, the partitions and the system area when missing).
 * The store keeps its own copy of what it needs from `config`. */
ImtaStore *imta_store_open(const ImtaStoreConfig *config, GError **error);
void imta_store_close(ImtaStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaStore, imta_store_close)

const char *imta_store_root(const ImtaStore *store);
/* The path of a partition, or NULL when the store has no such partition. */
const char *imta_store_partition_path(const ImtaStore *store, const char *partition);

/* The two hash levels of a user id, "53/53" (caller frees). */
char *imta_store_hash_dir(const char *userid);

/* The directory of a user's INBOX on its partition (NULL partition: the
 * one the user is on, else the default), whether it exists or not. */
char *imta_store_user_path(ImtaStore *store, const char *userid, const char *partition);

/* ---- users and folders ------------------------------------------------ */

/* Users with a mailbox, sorted; partition of each via imta_store_user_partition. */
GPtrArray *imta_store_list_users(ImtaStore *store, GError **error);
/* The partition a user's mailbox is on; NULL (NOT_FOUND) when none. */
char *imta_store_user_partition(ImtaStore *store, const char *userid, GError **error);

/* Create the user's INBOX on `partition` (NULL: the default); EXISTS when
 * it exists. */
gboolean imta_store_create_user(ImtaStore *store, const char *userid, const char *partition,
				GError **error);
/* Remove a user's mailbox tree and records. */
gboolean imta_store_delete_user(ImtaStore *store, const char *userid, GError **error);

/* The user's folders, "INBOX" first, then in name order. */
GPtrArray *imta_store_list_folders(ImtaStore *store, const char *userid, GError **error);
gboolean imta_store_create_folder(ImtaStore *store, const char *userid, const char *name,
				  GError **error);
/* Deleting a folder deletes its messages and sub-folders; INBOX cannot be
 * deleted (INVALID). */
gboolean imta_store_delete_folder(ImtaStore *store, const char *userid, const char *name,
				  GError **error);
/* Renaming keeps UIDs and flags; its sub-folders move with it. */
gboolean imta_store_rename_folder(ImtaStore *store, const char *userid, const char *from,
				  const char *to, GError **error);

/* ---- messages of a folder --------------------------------------------- */

typedef enum {
	IMTA_STORE_FLAG_SEEN     = 1 << 0,
	IMTA_STORE_FLAG_ANSWERED = 1 << 1,
	IMTA_STORE_FLAG_FLAGGED  = 1 << 2,
	IMTA_STORE_FLAG_DELETED  = 1 << 3,
	IMTA_STORE_FLAG_DRAFT    = 1 << 4,
	IMTA_STORE_FLAG_RECENT   = 1 << 5,
} ImtaStoreFlag;

/* One message as the index and the header cache know it: listing or
 * searching a folder reads these, never the message files. */
typedef struct {
	guint32 uid;
	guint32 flags;          /* ImtaStoreFlag bits */
	gint64 size;            /* bytes of the message file */
	gint64 internal_date;   /* Unix time of delivery */
	char *date, *from, *to, *cc, *subject, *message_id; /* header values, unfolded; NULL if absent */
} ImtaStoreMessage;

void imta_store_message_free(ImtaStoreMessage *message);

typedef struct {
	guint32 uidvalidity;
	guint32 uidnext;
	guint32 messages;
	gint64 bytes;
} ImtaStoreFolderStatus;

gboolean imta_store_folder_status(ImtaStore *store, const char *userid, const char *folder,
				  ImtaStoreFolderStatus *status_r, GError **error);

/* The folder's messages in UID order: a GPtrArray of ImtaStoreMessage *
 * that frees them. */
GPtrArray *imta_store_folder_messages(ImtaStore *store, const char *userid, const char *folder,
				      GError **error);

/* Add and remove flags of one message (this user's, this folder's only). */
gboolean imta_store_set_flags(ImtaStore *store, const char *userid, const char *folder,
			      guint32 uid, guint32 add, guint32 remove, GError **error);

/* Remove the messages flagged DELETED; returns how many (-1 on error). */
gint imta_store_expunge(ImtaStore *store, const char *userid, const char *folder,
			GError **error);

/* A stream over one message's content (LF line ends, as delivered). */
GInputStream *imta_store_open_message(ImtaStore *store, const char *userid, const char *folder,
				      guint32 uid, GError **error);

/* ---- delivery --------------------------------------------------------- */

/* One recipient of a delivery.  In: userid, partition (NULL: where the
 * user is, else the default; a new user's INBOX is created there), folder
 * (NULL: INBOX; a folder that does not exist falls back to INBOX).  Out:
 * uid, and error (NULL when delivered). */
typedef struct {
	const char *userid;
	const char *partition;
	const char *folder;
	guint32 uid;
	GError *error;
} ImtaStoreTarget;

/* Store `content` (`length` bytes, LF line ends) once per partition and
 * link it into every target's folder (single copy: one inode per
 * partition, shared by all targets there), with a new UID and the RECENT
 * flag, internal date `internal_date` (0: now).  Each target succeeds or
 * fails on its own; returns TRUE when at least the attempt was made (the
 * per-target errors say what failed), FALSE with `error` when nothing
 * could be done (the content could not be written).  Durable on return. */
gboolean imta_store_deliver(ImtaStore *store, const char *content, gsize length,
			    gint64 internal_date, ImtaStoreTarget *targets, guint n_targets,
			    GError **error);

/* ---- quota usage ------------------------------------------------------ */

/* What a user uses over all folders, and the quota state the MTA keeps:
 * when a warning was sent (0: none since usage was last under the
 * threshold) and since when the user has been over quota (0: not). */
typedef struct {
	gint64 bytes;
	gint64 messages;
	gint64 warned_at;
	gint64 over_since;
} ImtaStoreUsage;

/* NOT_FOUND when the user has no mailbox (usage is then all zero). */
gboolean imta_store_get_usage(ImtaStore *store, const char *userid, ImtaStoreUsage *usage_r,
			      GError **error);
/* Record warned_at and over_since (usage itself is kept by the store). */
gboolean imta_store_set_quota_state(ImtaStore *store, const char *userid, gint64 warned_at,
				    gint64 over_since, GError **error);

/* ---- the system area -------------------------------------------------- */

/* A copy of the system area under ROOT/snapshots/NAME (NAME: the UTC time,
 * "20261123T101502Z"); *name_r (optional) gets the name. */
gboolean imta_store_snapshot(ImtaStore *store, char **name_r, GError **error);
/* The snapshots, oldest first. */
GPtrArray *imta_store_list_snapshots(ImtaStore *store, GError **error);
/* Put a snapshot back as the system area (the store must not be in use by
 * other processes); usage recorded since is then rebuilt from the
 * mailboxes of the users whose records differ. */
gboolean imta_store_restore_snapshot(ImtaStore *store, const char *name, GError **error);

/* Compare the system area and every folder index with the files of the
 * user area (all users when `userid` is NULL) and, unless `check_only`,
 * repair: rebuild a missing or damaged system area, index or cache from
 * the message files, remove invisible leftovers of interrupted
 * deliveries, recount usage.  Each problem found is one line appended to
 * `findings` ("alice INBOX: message 17 has no index record"); returns the
 * number of problems (-1 with error when the store could not be read).
 * Invisible leftovers of interrupted deliveries are not problems: a store
 * is consistent with them, and they are removed without being counted. */
gint imta_store_reconstruct(ImtaStore *store, const char *userid, gboolean check_only,
			    GPtrArray *findings, GError **error);

G_END_DECLS

#endif
