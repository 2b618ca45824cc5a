/*
 * store_private.h - what the files of the message store library share:
 * the store handle, paths, the index and cache formats, locking, the
 * mailbox list records.  imta-store(5) documents the on-disk formats.
 */
#ifndef IMTA_STORE_PRIVATE_H
#define IMTA_STORE_PRIVATE_H

#include <glib.h>
#include <imta/store.h>

#define STORE_NAME_MAX 255            /* bytes of a folder name */
#define STORE_USERID_MAX 254          /* bytes of a user id: "=USERID" is a file name */
#define STORE_FOLDER_DEPTH_MAX 32     /* levels of a folder name */
#define STORE_FOLDER_PREFIX '+'       /* sub-folder directories: "+NAME" */
#define STORE_TRASH_PREFIX "#deleted." /* folders being deleted */
#define STORE_MSGS_PER_DIR 1000       /* UIDs per message hash directory */

/* store.idx */
#define STORE_IDX_MAGIC "IMTASIDX"
#define STORE_IDX_VERSION 1
#define STORE_IDX_HEADER_SIZE 64
#define STORE_IDX_RECORD_SIZE 40
#define STORE_IDX_FLAGS_OFFSET 4      /* of the flag word in a record */
#define STORE_IDX_MAX_RECORDS 10000000u

/* store.cache */
#define STORE_CACHE_MAGIC "IMTASCAC"
#define STORE_CACHE_HEADER_SIZE 16
#define STORE_CACHE_FIELDS 6
#define STORE_CACHE_FIELD_MAX 1024    /* bytes kept of each header value */
#define STORE_CACHE_ABSENT 0xffffu

struct _ImtaStore {
	char *root;
	char *mboxlist;                /* ROOT/mboxlist */
	char *snapshots;               /* ROOT/snapshots */
	char *default_partition;
	GHashTable *partitions;        /* name -> path */
	GPtrArray *partition_names;    /* sorted */
	guint tmp_counter;
	GMutex lock;                   /* tmp_counter */
};

/* ---- store.c: errors, names, paths, file helpers --------------------- */

gboolean store_set_io_error(GError **error, const char *what, const char *path, int errnum);
gboolean store_check_userid(const char *userid, GError **error);
/* The canonical folder name ("inbox/x" -> "INBOX/x") or NULL (INVALID). */
char *store_folder_canonical(const char *name, GError **error);
/* A folder's directory below the user's INBOX directory. */
char *store_folder_dir(const char *user_dir, const char *canonical);
/* The name a "+..." directory entry stands for (decoded), or NULL. */
char *store_folder_decode_component(const char *entry);
/* Whether directory entry `entry` is the encoding of component `name`. */
gboolean store_folder_entry_matches(const char *entry, const char *name);
char *store_message_path(const char *folder_dir, guint32 uid);
char *store_message_rel(guint32 uid);
char *store_user_dir_on(ImtaStore *store, const char *userid, const char *partition_path);

gboolean store_mkdir_p(const char *path, GError **error);
gboolean store_rm_rf(const char *path, GError **error);
gboolean store_fsync_path(const char *path, gboolean directory, GError **error);
/* Write, fsync, rename over `path`; fsync the directory when `sync_dir`. */
gboolean store_write_atomic(ImtaStore *store, const char *path, const char *data, gsize len,
			    gboolean sync, GError **error);
/* Write all of `data` to `fd` (the file `path`, named in the error). */
gboolean store_write_fd(int fd, const char *path, const char *data, gsize len, GError **error);
gboolean store_read_all(int fd, const char *path, gsize max, GByteArray **out_r,
			GError **error);
char *store_tmp_name(ImtaStore *store);
gboolean store_syncfs(const char *path, GError **error);
guint32 store_fnv1a(const void *data, gsize len, guint32 seed);

/* ---- index.c: store.idx and store.cache ------------------------------ */

typedef struct {
	guint32 uidvalidity;
	guint32 uidnext;
	guint32 count;
	guint64 bytes;
	guint64 cache_end;
	guint64 modseq;               /* bumped by every change of count or bytes */
	guint32 cache_id;             /* the store.cache this index goes with */
} StoreIdxHeader;

typedef struct {
	guint32 uid;
	guint32 flags;
	guint64 size;
	gint64 internal_date;
	guint64 cache_offset;
	guint32 cache_length;
} StoreIdxRecord;

/* An open, locked folder. */
typedef struct {
	char *dir;
	int idx_fd;
	int cache_fd;
	StoreIdxHeader header;
} StoreFolder;

/* Lock a folder's index (exclusive or shared) and read its header. */
StoreFolder *store_folder_open(const char *dir, gboolean exclusive, GError **error);
void store_folder_close(StoreFolder *folder);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StoreFolder, store_folder_close)

/* Create a folder directory with an empty index (EXISTS if there). */
gboolean store_folder_init(const char *dir, guint32 uidvalidity, gboolean sync, GError **error);
/* The index and cache files of a new folder in `dir` (no locking). */
gboolean store_index_write_empty(const char *dir, guint32 uidvalidity, gboolean sync,
				 GError **error);

gboolean store_header_parse(const guint8 *data, gsize len, StoreIdxHeader *h, GError **error);
void store_header_encode(const StoreIdxHeader *h, guint8 *out);
gboolean store_header_write(StoreFolder *folder, GError **error);
void store_record_encode(const StoreIdxRecord *r, guint8 *out);
/* Parse record `i` of an index; FALSE (CORRUPT) on a bad checksum. */
gboolean store_record_parse(const guint8 *data, StoreIdxRecord *r);

/* Read the records (array of StoreIdxRecord) and the cache of a locked
 * folder; validates everything. */
gboolean store_folder_read(StoreFolder *folder, GArray **records_r, GByteArray **cache_r,
			   GError **error);
/* The message of record `r` with the cache fields filled in. */
ImtaStoreMessage *store_message_from(const StoreIdxRecord *r, const GByteArray *cache,
				     GError **error);
/* Check that a record's cache entry is in bounds and belongs to it. */
gboolean store_cache_entry_ok(const StoreIdxRecord *r, const GByteArray *cache, guint64 end);

/* Encode the envelope fields of a message as one cache entry. */
GByteArray *store_cache_entry(guint32 uid, const char *content, gsize length);
/* Append a message (file already linked) to a locked folder. */
gboolean store_folder_append(StoreFolder *folder, guint32 uid, guint32 flags, guint64 size,
			     gint64 internal_date, const GByteArray *entry, GError **error);
/* Replace index and cache of a locked folder by the given records (the
 * cache entries are rebuilt from `cache` or, when absent/bad, from the
 * message files).  Used by expunge and reconstruct. */
/* Parse what can be kept of a damaged index: records with a good
 * checksum in UID order (array of StoreIdxRecord); the header when it
 * parses. */
GArray *store_index_salvage(const guint8 *data, gsize len, StoreIdxHeader *h_r,
			    gboolean *header_ok_r);
gboolean store_folder_rewrite(StoreFolder *folder, GArray *records, const GByteArray *cache,
			      GError **error);

/* ---- mboxlist.c: the system area ------------------------------------- */

typedef struct {
	char *name;
	guint32 uidvalidity;
	guint64 modseq;
	guint32 messages;
	guint64 bytes;
} StoreListFolder;

typedef struct {
	char *partition;
	gint64 warned_at;
	gint64 over_since;
	GPtrArray *folders;           /* StoreListFolder *, sorted by name */
} StoreListRecord;

StoreListRecord *store_list_record_new(const char *partition);
void store_list_record_sort(StoreListRecord *rec);
void store_list_record_free(StoreListRecord *rec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StoreListRecord, store_list_record_free)
StoreListRecord *store_list_record_parse(const char *text, gsize len, GError **error);
char *store_list_record_format(const StoreListRecord *rec);
StoreListFolder *store_list_record_folder(StoreListRecord *rec, const char *name);
void store_list_record_set_folder(StoreListRecord *rec, const char *name, guint32 uidvalidity,
				  const StoreIdxHeader *h);
void store_list_record_remove_folder(StoreListRecord *rec, const char *name);

char *store_list_path(ImtaStore *store, const char *userid);
/* Take / release the per-user lock of the system area (fd). */
int store_list_lock(ImtaStore *store, const char *userid, GError **error);
void store_list_unlock(int fd);
/* Read a user's record: NULL with NOT_FOUND when absent, CORRUPT when it
 * does not parse. */
StoreListRecord *store_list_read(ImtaStore *store, const char *userid, GError **error);
gboolean store_list_write(ImtaStore *store, const char *userid, const StoreListRecord *rec,
			  gboolean sync, GError **error);
gboolean store_list_remove(ImtaStore *store, const char *userid, GError **error);
/* A record built from the user area (folders and their headers); quota
 * state copied from `old` when given. */
StoreListRecord *store_list_rebuild(ImtaStore *store, const char *userid,
				    const StoreListRecord *old, GError **error);
/* Record under the user lock held by the caller: read it, rebuilding it
 * when missing or damaged, and bring stale folder totals up to date. */
StoreListRecord *store_list_load_locked(ImtaStore *store, const char *userid,
					GError **error);
/* The users that have a record (a set of user ids). */
GHashTable *store_list_recorded_users(ImtaStore *store, GError **error);
guint32 store_list_next_uidvalidity(const StoreListRecord *rec);

/* ---- folder.c ------------------------------------------------------- */

/* Canonical names of a user's folders, INBOX first ("user dir" given). */
GPtrArray *store_walk_folders(const char *user_dir, GError **error);
/* Where a user is: the partition name and its INBOX directory, or NULL
 * (NOT_FOUND). */
char *store_find_user(ImtaStore *store, const char *userid, char **partition_r,
		      GError **error);
/* Create a user's INBOX (the caller holds the user's list lock). */
gboolean store_create_user_locked(ImtaStore *store, const char *userid,
				  const char *partition, gboolean sync,
				  StoreListRecord **rec_r, GError **error);
/* The directory of an existing folder of a user (NOT_FOUND otherwise). */
char *store_folder_path(ImtaStore *store, const char *userid, const char *folder,
			char **canonical_r, GError **error);

#endif
