/*
 * test-store.c - the message store library: store.cnf, names and paths,
 * folders, delivery with single copy, flags, expunge, usage, snapshots,
 * reconstruct, crash safety under SIGKILL, damaged indexes, and timings.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/store.h>
#include <imta/error.h>

/* ---- fixtures ----------------------------------------------------------- */

typedef struct {
	char *dir;
	ImtaStoreConfig *config;
	ImtaStore *store;
} Fixture;

static void
rm_tree(const char *path)
{
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", path);

	g_assert_cmpint(system(cmd), ==, 0);
}

static char *
write_cnf(const char *dir, const char *text)
{
	char *path = g_build_filename(dir, "store.cnf", NULL);

	g_assert_true(g_file_set_contents(path, text, -1, NULL));
	return path;
}

static void
fixture_open(Fixture *fx)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *second = NULL;
	g_autofree char *cnf = NULL;
	g_autofree char *text = NULL;

	fx->dir = g_dir_make_tmp("test-store-XXXXXX", &error);
	g_assert_no_error(error);
	second = g_build_filename(fx->dir, "second", NULL);
	text = g_strdup_printf("store.partition.second.path = %s\n", second);
	cnf = write_cnf(fx->dir, text);
	{
		g_autofree char *root = g_build_filename(fx->dir, "store", NULL);

		fx->config = imta_store_config_load(cnf, root, &error);
	}
	g_assert_no_error(error);
	fx->store = imta_store_open(fx->config, &error);
	g_assert_no_error(error);
}

static void
fixture_close(Fixture *fx)
{
	imta_store_close(fx->store);
	imta_store_config_free(fx->config);
	rm_tree(fx->dir);
	g_free(fx->dir);
}

static const char msg1[] =
	"Date: Mon, 23 Nov 2026 10:15:02 +0000\n"
	"From: Alice Example <alice@example.com>\n"
	"To: bob@example.com,\n"
	"\tcarol@example.com\n"
	"Subject: Quarterly\n"
	"  report\n"
	"Message-ID: <q1@example.com>\n"
	"X-Other: ignored\n"
	"\n"
	"Body text.\n"
	"Subject: not a header\n";

static guint32
deliver_one(Fixture *fx, const char *user, const char *folder, const char *content)
{
	g_autoptr(GError) error = NULL;
	ImtaStoreTarget t = { user, NULL, folder, 0, NULL };

	g_assert_true(imta_store_deliver(fx->store, content, strlen(content), 1795428902, &t, 1,
					 &error));
	g_assert_no_error(error);
	g_assert_no_error(t.error);
	return t.uid;
}

static gint
reconstruct(Fixture *fx, gboolean check_only, GPtrArray **findings_r)
{
	g_autoptr(GError) error = NULL;
	GPtrArray *findings = g_ptr_array_new_with_free_func(g_free);
	gint n = imta_store_reconstruct(fx->store, NULL, check_only, findings, &error);

	g_assert_no_error(error);
	for (guint i = 0; i < findings->len; i++)
		g_test_message("finding: %s", (char *)findings->pdata[i]);
	if (findings_r != NULL)
		*findings_r = findings;
	else
		g_ptr_array_unref(findings);
	return n;
}

static gboolean
findings_have(GPtrArray *findings, const char *text)
{
	for (guint i = 0; i < findings->len; i++)
		if (strcmp(findings->pdata[i], text) == 0)
			return TRUE;
	return FALSE;
}

/* ---- store.cnf ---------------------------------------------------------- */

static void
test_config_defaults(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaStoreConfig) c = imta_store_config_load("/nonexistent/store.cnf",
							       "/var/store", &error);

	g_assert_no_error(error);
	g_assert_cmpstr(c->root, ==, "/var/store");
	g_assert_cmpstr(c->default_partition, ==, "primary");
	g_assert_cmpstr(g_hash_table_lookup(c->partitions, "primary"), ==,
			"/var/store/partition/primary");
	g_assert_cmpuint(g_hash_table_size(c->partitions), ==, 1);
	g_assert_true(c->quota_enforcement);
	g_assert_cmpint(c->default_mailbox_quota, ==, -1);
	g_assert_cmpint(c->default_message_quota, ==, -1);
	g_assert_cmpint(c->quota_warn_percent, ==, 90);
	g_assert_cmpint(c->quota_grace_period, ==, 120 * 3600);
	g_assert_false(c->overquota_status);
	g_assert_null(c->path);
}

static void
test_config_options(void)
{
	g_autofree char *dir = g_dir_make_tmp("test-store-cnf-XXXXXX", NULL);
	g_autofree char *path = write_cnf(dir,
		"# the store\n"
		"store.root = /srv/store\n"
		"STORE.DefaultPartition = fast\n"
		"store.partition.fast.path = /srv/fast\n"
		"store.partition.primary.path = /srv/p1\n"
		"store.quotaenforcement = 0\n"
		"store.defaultmailboxquota = 1048576\n"
		"store.defaultmessagequota = 5000\n"
		"store.quotawarn = 75\n"
		"store.quotagraceperiod = 48\n"
		"store.overquotastatus = 1\n");
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaStoreConfig) c = imta_store_config_load(path, "/ignored", &error);

	g_assert_no_error(error);
	g_assert_cmpstr(c->root, ==, "/srv/store");
	g_assert_cmpstr(c->default_partition, ==, "fast");
	g_assert_cmpstr(g_hash_table_lookup(c->partitions, "fast"), ==, "/srv/fast");
	g_assert_cmpstr(g_hash_table_lookup(c->partitions, "primary"), ==, "/srv/p1");
	g_assert_false(c->quota_enforcement);
	g_assert_cmpint(c->default_mailbox_quota, ==, 1048576);
	g_assert_cmpint(c->default_message_quota, ==, 5000);
	g_assert_cmpint(c->quota_warn_percent, ==, 75);
	g_assert_cmpint(c->quota_grace_period, ==, 48 * 3600);
	g_assert_true(c->overquota_status);
	g_assert_cmpstr(c->path, ==, path);
	rm_tree(dir);
}

typedef struct {
	const char *text;
	const char *message; /* after "DIR/store.cnf:" */
} CnfError;

static const CnfError cnf_errors[] = {
	{ "store.quotawarn = 101\n",
	  "1:19: expected an integer between 0 and 100 for STORE.QUOTAWARN, got \"101\"" },
	{ "\nstore.quotaenforcement = yes\n",
	  "2:26: expected 0 or 1 for STORE.QUOTAENFORCEMENT, got \"yes\"" },
	{ "store.quotawarm = 10\n",
	  "1:1: unknown store.cnf option \"store.quotawarm\" (did you mean store.quotawarn?)" },
	{ "store.nothing = 1\n", "1:1: unknown store.cnf option \"store.nothing\"" },
	{ "store.partition.b@d.path = /x\n",
	  "1:17: expected a partition name (letters, digits, '_' and '-'), got \"b@d\"" },
	{ "store.partition.p2.path = relative\n",
	  "1:27: expected an absolute path for store.partition.p2.path, got \"relative\"" },
	{ "store.root = /a\nstore.root = /b\n", "2:1: store.root is set twice" },
	{ "store.defaultmailboxquota = -2\n",
	  "1:29: expected an integer of at least -1 for STORE.DEFAULTMAILBOXQUOTA, got \"-2\"" },
	{ "store.quotagraceperiod = x\n",
	  "1:26: expected an integer between 0 and 876000 for STORE.QUOTAGRACEPERIOD,"
	  " got \"x\"" },
	{ "[SERVICE=x]\n", "1:1: store.cnf has no sections; expected store.NAME = value" },
	{ "just words\n", NULL },
};

static void
test_config_errors(void)
{
	g_autofree char *dir = g_dir_make_tmp("test-store-cnf-XXXXXX", NULL);

	for (guint i = 0; i < G_N_ELEMENTS(cnf_errors); i++) {
		g_autofree char *path = write_cnf(dir, cnf_errors[i].text);
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaStoreConfig) c = imta_store_config_load(path, "/r", &error);
		g_autofree char *expected = NULL;

		g_assert_null(c);
		g_assert_nonnull(error);
		g_assert_true(error->domain == IMTA_CONFIG_ERROR);
		if (cnf_errors[i].message == NULL) {
			g_assert_true(g_str_has_prefix(error->message, path));
			continue;
		}
		expected = g_strdup_printf("%s:%s", path, cnf_errors[i].message);
		g_assert_cmpstr(error->message, ==, expected);
	}
	{
		g_autofree char *path = write_cnf(dir, "store.defaultpartition = other\n");
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaStoreConfig) c = imta_store_config_load(path, "/r", &error);
		g_autofree char *expected = g_strdup_printf(
			"%s: the default partition other has no store.partition.other.path", path);

		g_assert_null(c);
		g_assert_cmpstr(error->message, ==, expected);
	}
	rm_tree(dir);
}

/* ---- names and paths ---------------------------------------------------- */

static const struct {
	const char *userid, *hash;
} hashes[] = {
	{ "alice", "e7/13" },
	{ "bob", "d4/a0" },
	{ "mack1", "58/60" },
	{ "fredb", "1e/59" },
	{ "user@example.com", "fb/05" },
	{ "a", "2c/29" },
};

static void
test_hash(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(hashes); i++) {
		g_autofree char *h = imta_store_hash_dir(hashes[i].userid);

		g_assert_cmpstr(h, ==, hashes[i].hash);
	}
}

static void
test_userid_validation(void)
{
	static const struct {
		const char *userid;
		gboolean ok;
	} rows[] = {
		{ "alice", TRUE }, { "user@example.com", TRUE }, { "o'brien", TRUE },
		{ "", FALSE }, { "a/b", FALSE }, { ".hidden", FALSE }, { "tab\there", FALSE },
		{ "nl\n", FALSE }, { "del\x7f", FALSE }, { "x.y", TRUE },
	};
	Fixture fx;
	g_autofree char *long_id = g_strnfill(255, 'u');
	g_autofree char *max_id = g_strnfill(254, 'u');

	fixture_open(&fx);
	for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(GError) error = NULL;
		gboolean ok = imta_store_create_user(fx.store, rows[i].userid, NULL, &error);

		g_assert_cmpint(ok, ==, rows[i].ok);
		if (!rows[i].ok)
			g_assert_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_INVALID);
	}
	{
		g_autoptr(GError) error = NULL;

		g_assert_false(imta_store_create_user(fx.store, long_id, NULL, &error));
		g_assert_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_INVALID);
		g_clear_error(&error);
		g_assert_true(imta_store_create_user(fx.store, max_id, NULL, &error));
		g_assert_no_error(error);
	}
	fixture_close(&fx);
}

static void
test_folder_validation(void)
{
	static const struct {
		const char *name, *canonical; /* NULL: INVALID */
	} rows[] = {
		{ "Archive", "Archive" }, { "Archive/2026", "Archive/2026" },
		{ "inbox/Sub", "INBOX/Sub" }, { "Entwürfe", "Entwürfe" },
		{ "100%", "100%" }, { ".dot", ".dot" }, { "a b", "a b" },
		{ "", NULL }, { "/lead", NULL }, { "trail/", NULL }, { "a//b", NULL },
		{ "a/./b", NULL }, { "..", NULL }, { "ctl\x01", NULL }, { "bad\xff", NULL },
	};
	Fixture fx;

	fixture_open(&fx);
	g_assert_true(imta_store_create_user(fx.store, "alice", NULL, NULL));
	for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(GError) error = NULL;
		gboolean ok = imta_store_create_folder(fx.store, "alice", rows[i].name, &error);

		if (rows[i].canonical == NULL) {
			g_assert_false(ok);
			g_assert_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_INVALID);
			continue;
		}
		g_assert_no_error(error);
		{
			g_autoptr(GPtrArray) list = imta_store_list_folders(fx.store, "alice", NULL);
			gboolean found = FALSE;

			for (guint j = 0; j < list->len; j++)
				found = found || strcmp(list->pdata[j], rows[i].canonical) == 0;
			g_assert_true(found);
		}
	}
	{
		g_autofree char *long_name = g_strnfill(256, 'f');
		g_autoptr(GError) error = NULL;

		g_assert_false(imta_store_create_folder(fx.store, "alice", long_name, &error));
		g_assert_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_INVALID);
	}
	fixture_close(&fx);
}

static void
test_layout(void)
{
	Fixture fx;
	g_autofree char *inbox = NULL;
	g_autofree char *expected = NULL;
	g_autofree char *idx = NULL;
	g_autofree char *sub = NULL;
	g_autofree char *msg = NULL;

	fixture_open(&fx);
	expected = g_strdup_printf("%s/store/partition/primary/=user/e7/13/=alice", fx.dir);
	inbox = imta_store_user_path(fx.store, "alice", NULL);
	g_assert_cmpstr(inbox, ==, expected);
	g_assert_true(imta_store_create_user(fx.store, "alice", NULL, NULL));
	idx = g_build_filename(inbox, "store.idx", NULL);
	g_assert_true(g_file_test(idx, G_FILE_TEST_IS_REGULAR));
	g_assert_cmpstr(imta_store_partition_path(fx.store, "nope"), ==, NULL);
	{
		g_autofree char *mbl = g_strdup_printf("%s/store/mboxlist/e7/13/=alice", fx.dir);
		g_autofree char *tmp = g_strdup_printf("%s/store/partition/primary/tmp", fx.dir);

		g_assert_true(g_file_test(mbl, G_FILE_TEST_IS_REGULAR));
		g_assert_true(g_file_test(tmp, G_FILE_TEST_IS_DIR));
	}
	g_assert_true(imta_store_create_folder(fx.store, "alice", "Archive/.x%", NULL));
	sub = g_strdup_printf("%s/+Archive/+%%2Ex%%25/store.idx", inbox);
	g_assert_true(g_file_test(sub, G_FILE_TEST_IS_REGULAR));
	g_assert_cmpuint(deliver_one(&fx, "alice", NULL, msg1), ==, 1);
	msg = g_strdup_printf("%s/00/1.msg", inbox);
	g_assert_true(g_file_test(msg, G_FILE_TEST_IS_REGULAR));
	g_assert_cmpstr(imta_store_root(fx.store), ==, fx.config->root);
	fixture_close(&fx);
}

/* ---- folders ------------------------------------------------------------ */

static char *
join_list(GPtrArray *list)
{
	g_ptr_array_add(list, NULL);
	return g_strjoinv(",", (char **)list->pdata);
}

static void
test_folders(void)
{
	Fixture fx;
	g_autoptr(GError) error = NULL;

	fixture_open(&fx);
	g_assert_true(imta_store_create_user(fx.store, "alice", NULL, &error));
	g_assert_false(imta_store_create_user(fx.store, "alice", NULL, &error));
	g_assert_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_EXISTS);
	g_clear_error(&error);
	g_assert_true(imta_store_create_folder(fx.store, "alice", "Archive/2026", &error));
	g_assert_true(imta_store_create_folder(fx.store, "alice", "Sent", &error));
	g_assert_false(imta_store_create_folder(fx.store, "alice", "Sent", &error));
	g_assert_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_EXISTS);
	g_clear_error(&error);
	{
		g_autoptr(GPtrArray) l = imta_store_list_folders(fx.store, "alice", &error);
		g_autofree char *s = join_list(l);

		g_assert_cmpstr(s, ==, "INBOX,Archive,Archive/2026,Sent");
	}
	g_assert_cmpuint(deliver_one(&fx, "alice", "Archive/2026", msg1), ==, 1);
	g_assert_true(imta_store_rename_folder(fx.store, "alice", "Archive", "Old/Archive",
					       &error));
	g_assert_no_error(error);
	{
		g_autoptr(GPtrArray) l = imta_store_list_folders(fx.store, "alice", &error);
		g_autofree char *s = join_list(l);
		g_autoptr(GPtrArray) m = imta_store_folder_messages(fx.store, "alice",
								    "Old/Archive/2026", &error);

		g_assert_cmpstr(s, ==, "INBOX,Old,Old/Archive,Old/Archive/2026,Sent");
		g_assert_no_error(error);
		g_assert_cmpuint(m->len, ==, 1);
	}
	g_assert_false(imta_store_rename_folder(fx.store, "alice", "Sent", "Old", &error));
	g_assert_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_EXISTS);
	g_clear_error(&error);
	g_assert_false(imta_store_rename_folder(fx.store, "alice", "INBOX", "X", &error));
	g_assert_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_false(imta_store_delete_folder(fx.store, "alice", "inbox", &error));
	g_assert_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_true(imta_store_delete_folder(fx.store, "alice", "Old", &error));
	g_assert_no_error(error);
	g_assert_false(imta_store_delete_folder(fx.store, "alice", "Old", &error));
	g_assert_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND);
	g_clear_error(&error);
	{
		g_autoptr(GPtrArray) l = imta_store_list_folders(fx.store, "alice", &error);
		g_autofree char *s = join_list(l);

		g_assert_cmpstr(s, ==, "INBOX,Sent");
	}
	g_assert_null(imta_store_list_folders(fx.store, "nobody", &error));
	g_assert_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_cmpint(reconstruct(&fx, TRUE, NULL), ==, 0);
	g_assert_true(imta_store_delete_user(fx.store, "alice", &error));
	g_assert_null(imta_store_user_partition(fx.store, "alice", &error));
	g_assert_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND);
	fixture_close(&fx);
}

/* ---- delivery ----------------------------------------------------------- */

static void
test_deliver_fields(void)
{
	Fixture fx;
	g_autoptr(GError) error = NULL;
	ImtaStoreTarget t[3] = {
		{ "alice", NULL, NULL, 0, NULL },
		{ "bob", NULL, "NoSuchFolder", 0, NULL },
		{ "carol", NULL, NULL, 0, NULL },
	};
	ImtaStoreFolderStatus st;

	fixture_open(&fx);
	g_assert_cmpuint(deliver_one(&fx, "alice", NULL, msg1), ==, 1);
	g_assert_true(imta_store_deliver(fx.store, msg1, strlen(msg1), 1795428902, t, 3, &error));
	for (guint i = 0; i < 3; i++)
		g_assert_no_error(t[i].error);
	g_assert_cmpuint(t[0].uid, ==, 2);
	g_assert_cmpuint(t[1].uid, ==, 1);
	g_assert_cmpuint(t[2].uid, ==, 1);
	{
		g_autoptr(GPtrArray) m = imta_store_folder_messages(fx.store, "alice", "INBOX",
								    &error);
		ImtaStoreMessage *x;

		g_assert_no_error(error);
		g_assert_cmpuint(m->len, ==, 2);
		x = m->pdata[1];
		g_assert_cmpuint(x->uid, ==, 2);
		g_assert_cmpuint(x->flags, ==, IMTA_STORE_FLAG_RECENT);
		g_assert_cmpint(x->size, ==, (gint64)strlen(msg1));
		g_assert_cmpint(x->internal_date, ==, 1795428902);
		g_assert_cmpstr(x->date, ==, "Mon, 23 Nov 2026 10:15:02 +0000");
		g_assert_cmpstr(x->from, ==, "Alice Example <alice@example.com>");
		g_assert_cmpstr(x->to, ==, "bob@example.com, carol@example.com");
		g_assert_cmpstr(x->cc, ==, NULL);
		g_assert_cmpstr(x->subject, ==, "Quarterly  report");
		g_assert_cmpstr(x->message_id, ==, "<q1@example.com>");
	}
	g_assert_true(imta_store_folder_status(fx.store, "alice", NULL, &st, &error));
	g_assert_cmpuint(st.uidnext, ==, 3);
	g_assert_cmpuint(st.messages, ==, 2);
	g_assert_cmpint(st.bytes, ==, 2 * (gint64)strlen(msg1));
	g_assert_cmpuint(st.uidvalidity, >, 0);
	{
		g_autoptr(GInputStream) in = imta_store_open_message(fx.store, "bob", NULL, 1,
								     &error);
		char buf[512];
		gsize got = 0;

		g_assert_no_error(error);
		g_assert_true(g_input_stream_read_all(in, buf, sizeof buf, &got, NULL, NULL));
		g_assert_cmpmem(buf, got, msg1, strlen(msg1));
		g_assert_null(imta_store_open_message(fx.store, "bob", NULL, 2, &error));
		g_assert_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND);
		g_clear_error(&error);
	}
	{
		g_autoptr(GPtrArray) users = imta_store_list_users(fx.store, &error);
		g_autofree char *s = join_list(users);

		g_assert_cmpstr(s, ==, "alice,bob,carol");
	}
	/* Bad targets fail alone. */
	{
		ImtaStoreTarget bad[2] = {
			{ "../x", NULL, NULL, 0, NULL },
			{ "alice", "nopart", NULL, 0, NULL },
		};

		g_assert_true(imta_store_deliver(fx.store, "x\n", 2, 0, bad, 2, &error));
		g_assert_error(bad[0].error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_INVALID);
		g_assert_error(bad[1].error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND);
		g_clear_error(&bad[0].error);
		g_clear_error(&bad[1].error);
	}
	fixture_close(&fx);
}

static void
test_single_copy(void)
{
	Fixture fx;
	g_autoptr(GError) error = NULL;
	ImtaStoreTarget t[4] = {
		{ "u1", NULL, NULL, 0, NULL },
		{ "u2", NULL, NULL, 0, NULL },
		{ "u3", NULL, NULL, 0, NULL },
		{ "u4", "second", NULL, 0, NULL },
	};
	struct stat st[4];

	fixture_open(&fx);
	g_assert_true(imta_store_deliver(fx.store, msg1, strlen(msg1), 0, t, 4, &error));
	for (guint i = 0; i < 4; i++) {
		g_autofree char *dir = imta_store_user_path(fx.store, t[i].userid, NULL);
		g_autofree char *path = g_strdup_printf("%s/00/1.msg", dir);

		g_assert_no_error(t[i].error);
		g_assert_cmpint(stat(path, &st[i]), ==, 0);
	}
	g_assert_cmpuint(st[0].st_ino, ==, st[1].st_ino);
	g_assert_cmpuint(st[0].st_ino, ==, st[2].st_ino);
	g_assert_cmpuint(st[0].st_nlink, ==, 3);
	g_assert_cmpuint(st[3].st_nlink, ==, 1);
	g_assert_true(st[3].st_ino != st[0].st_ino || st[3].st_dev != st[0].st_dev);
	{
		g_autofree char *p = imta_store_user_partition(fx.store, "u4", &error);

		g_assert_cmpstr(p, ==, "second");
	}
	/* The delivery's temporary files are gone. */
	{
		g_autofree char *tmp = g_strdup_printf("%s/store/partition/primary/tmp", fx.dir);
		g_autoptr(GDir) d = g_dir_open(tmp, 0, NULL);

		g_assert_null(g_dir_read_name(d));
	}
	fixture_close(&fx);
}

static void
test_flags(void)
{
	Fixture fx;
	g_autoptr(GError) error = NULL;
	ImtaStoreTarget t[3] = {
		{ "u1", NULL, NULL, 0, NULL },
		{ "u2", NULL, NULL, 0, NULL },
		{ "u3", NULL, NULL, 0, NULL },
	};

	fixture_open(&fx);
	g_assert_true(imta_store_deliver(fx.store, msg1, strlen(msg1), 0, t, 3, &error));
	g_assert_true(imta_store_set_flags(fx.store, "u2", NULL, 1, IMTA_STORE_FLAG_SEEN,
					   IMTA_STORE_FLAG_RECENT, &error));
	g_assert_no_error(error);
	for (guint i = 0; i < 3; i++) {
		g_autoptr(GPtrArray) m = imta_store_folder_messages(fx.store, t[i].userid, NULL,
								    &error);
		ImtaStoreMessage *x = m->pdata[0];

		g_assert_cmpuint(x->flags, ==, i == 1 ? IMTA_STORE_FLAG_SEEN :
				 IMTA_STORE_FLAG_RECENT);
	}
	g_assert_false(imta_store_set_flags(fx.store, "u2", NULL, 9, IMTA_STORE_FLAG_SEEN, 0,
					    &error));
	g_assert_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_cmpint(reconstruct(&fx, TRUE, NULL), ==, 0);
	fixture_close(&fx);
}

static void
test_expunge_usage(void)
{
	Fixture fx;
	g_autoptr(GError) error = NULL;
	ImtaStoreUsage u;
	gint64 len = (gint64)strlen(msg1);

	fixture_open(&fx);
	g_assert_false(imta_store_get_usage(fx.store, "alice", &u, &error));
	g_assert_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND);
	g_assert_cmpint(u.bytes, ==, 0);
	g_clear_error(&error);
	for (guint i = 0; i < 5; i++)
		deliver_one(&fx, "alice", NULL, msg1);
	g_assert_true(imta_store_create_folder(fx.store, "alice", "Keep", &error));
	deliver_one(&fx, "alice", "Keep", "Subject: short\n\nx\n");
	g_assert_true(imta_store_get_usage(fx.store, "alice", &u, &error));
	g_assert_cmpint(u.bytes, ==, 5 * len + 18);
	g_assert_cmpint(u.messages, ==, 6);
	g_assert_true(imta_store_set_flags(fx.store, "alice", NULL, 2, IMTA_STORE_FLAG_DELETED, 0,
					   &error));
	g_assert_true(imta_store_set_flags(fx.store, "alice", NULL, 4, IMTA_STORE_FLAG_DELETED, 0,
					   &error));
	g_assert_cmpint(imta_store_expunge(fx.store, "alice", NULL, &error), ==, 2);
	g_assert_no_error(error);
	g_assert_cmpint(imta_store_expunge(fx.store, "alice", NULL, &error), ==, 0);
	{
		g_autoptr(GPtrArray) m = imta_store_folder_messages(fx.store, "alice", NULL, &error);
		g_autofree char *gone = NULL;
		g_autofree char *dir = imta_store_user_path(fx.store, "alice", NULL);

		g_assert_cmpuint(m->len, ==, 3);
		g_assert_cmpuint(((ImtaStoreMessage *)m->pdata[0])->uid, ==, 1);
		g_assert_cmpuint(((ImtaStoreMessage *)m->pdata[1])->uid, ==, 3);
		g_assert_cmpuint(((ImtaStoreMessage *)m->pdata[2])->uid, ==, 5);
		g_assert_cmpstr(((ImtaStoreMessage *)m->pdata[2])->subject, ==,
				"Quarterly  report");
		gone = g_strdup_printf("%s/00/2.msg", dir);
		g_assert_false(g_file_test(gone, G_FILE_TEST_EXISTS));
	}
	g_assert_cmpuint(deliver_one(&fx, "alice", NULL, msg1), ==, 6);
	g_assert_true(imta_store_get_usage(fx.store, "alice", &u, &error));
	g_assert_cmpint(u.bytes, ==, 4 * len + 18);
	g_assert_cmpint(u.messages, ==, 5);
	g_assert_true(imta_store_delete_folder(fx.store, "alice", "Keep", &error));
	g_assert_true(imta_store_get_usage(fx.store, "alice", &u, &error));
	g_assert_cmpint(u.bytes, ==, 4 * len);
	g_assert_cmpint(u.messages, ==, 4);
	/* Quota state. */
	g_assert_cmpint(u.warned_at, ==, 0);
	g_assert_true(imta_store_set_quota_state(fx.store, "alice", 1700000000, 1700000100,
						 &error));
	g_assert_true(imta_store_get_usage(fx.store, "alice", &u, &error));
	g_assert_cmpint(u.warned_at, ==, 1700000000);
	g_assert_cmpint(u.over_since, ==, 1700000100);
	g_assert_cmpint(u.messages, ==, 4);
	g_assert_false(imta_store_set_quota_state(fx.store, "nobody", 1, 1, &error));
	g_assert_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_cmpint(reconstruct(&fx, TRUE, NULL), ==, 0);
	fixture_close(&fx);
}

static void
test_snapshot(void)
{
	Fixture fx;
	g_autoptr(GError) error = NULL;
	g_autofree char *name = NULL;
	ImtaStoreUsage u;

	fixture_open(&fx);
	deliver_one(&fx, "alice", NULL, msg1);
	g_assert_true(imta_store_set_quota_state(fx.store, "alice", 100, 0, &error));
	g_assert_true(imta_store_snapshot(fx.store, &name, &error));
	g_assert_no_error(error);
	g_assert_true(g_regex_match_simple("^[0-9]{8}T[0-9]{6}Z(-[0-9]+)?$", name, 0, 0));
	g_assert_true(imta_store_set_quota_state(fx.store, "alice", 200, 300, &error));
	deliver_one(&fx, "alice", NULL, msg1);
	deliver_one(&fx, "bob", NULL, msg1);
	{
		g_autoptr(GPtrArray) l = imta_store_list_snapshots(fx.store, &error);

		g_assert_cmpuint(l->len, ==, 1);
		g_assert_cmpstr(l->pdata[0], ==, name);
	}
	{
		g_autofree char *snap = g_strdup_printf("%s/store/snapshots/%s/e7/13/=alice",
							fx.dir, name);
		g_autofree char *text = NULL;

		g_assert_true(g_file_get_contents(snap, &text, NULL, NULL));
		g_assert_nonnull(strstr(text, "quota 100 0\n"));
	}
	g_assert_true(imta_store_restore_snapshot(fx.store, name, &error));
	g_assert_no_error(error);
	g_assert_true(imta_store_get_usage(fx.store, "alice", &u, &error));
	g_assert_cmpint(u.warned_at, ==, 100);
	g_assert_cmpint(u.over_since, ==, 0);
	g_assert_cmpint(u.messages, ==, 2);
	g_assert_true(imta_store_get_usage(fx.store, "bob", &u, &error));
	g_assert_cmpint(u.messages, ==, 1);
	g_assert_false(imta_store_restore_snapshot(fx.store, "nope", &error));
	g_assert_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_false(imta_store_restore_snapshot(fx.store, "../x", &error));
	g_assert_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_cmpint(reconstruct(&fx, TRUE, NULL), ==, 0);
	fixture_close(&fx);
}

/* ---- reconstruct -------------------------------------------------------- */

static void
test_reconstruct_system_area(void)
{
	Fixture fx;
	g_autoptr(GPtrArray) findings = NULL;
	g_autofree char *mbl = NULL;
	ImtaStoreUsage u;

	fixture_open(&fx);
	deliver_one(&fx, "alice", NULL, msg1);
	deliver_one(&fx, "bob", NULL, msg1);
	g_assert_true(imta_store_create_folder(fx.store, "alice", "Sub", NULL));
	g_assert_cmpint(reconstruct(&fx, TRUE, NULL), ==, 0);
	mbl = g_build_filename(fx.dir, "store", "mboxlist", NULL);
	rm_tree(mbl);
	g_assert_cmpint(reconstruct(&fx, TRUE, &findings), ==, 2);
	g_assert_true(findings_have(findings, "alice: the mailbox list has no record"));
	g_assert_true(findings_have(findings, "bob: the mailbox list has no record"));
	g_assert_cmpint(reconstruct(&fx, FALSE, NULL), ==, 2);
	g_assert_cmpint(reconstruct(&fx, TRUE, NULL), ==, 0);
	g_assert_true(imta_store_get_usage(fx.store, "alice", &u, NULL));
	g_assert_cmpint(u.messages, ==, 1);
	fixture_close(&fx);
}

static void
test_reconstruct_index(void)
{
	Fixture fx;
	g_autoptr(GPtrArray) f1 = NULL;
	g_autoptr(GPtrArray) f2 = NULL;
	g_autoptr(GPtrArray) f3 = NULL;
	g_autofree char *dir = NULL;
	g_autofree char *idx = NULL;
	g_autofree char *file = NULL;
	g_autofree char *leftover = NULL;
	ImtaStoreFolderStatus before, after;

	fixture_open(&fx);
	for (guint i = 0; i < 4; i++)
		deliver_one(&fx, "alice", NULL, msg1);
	g_assert_true(imta_store_set_flags(fx.store, "alice", NULL, 3, IMTA_STORE_FLAG_SEEN, 0,
					   NULL));
	g_assert_true(imta_store_folder_status(fx.store, "alice", NULL, &before, NULL));
	dir = imta_store_user_path(fx.store, "alice", NULL);
	/* A lost index: rebuilt from the files, UIDs kept. */
	idx = g_build_filename(dir, "store.idx", NULL);
	g_assert_cmpint(g_unlink(idx), ==, 0);
	g_assert_cmpint(reconstruct(&fx, TRUE, &f1), ==, 1);
	g_assert_true(findings_have(f1, "alice INBOX: the index is missing"));
	g_assert_cmpint(reconstruct(&fx, FALSE, NULL), >=, 1);
	g_assert_cmpint(reconstruct(&fx, TRUE, NULL), ==, 0);
	{
		g_autoptr(GPtrArray) m = imta_store_folder_messages(fx.store, "alice", NULL, NULL);

		g_assert_cmpuint(m->len, ==, 4);
		g_assert_cmpuint(((ImtaStoreMessage *)m->pdata[3])->uid, ==, 4);
		g_assert_cmpstr(((ImtaStoreMessage *)m->pdata[3])->message_id, ==,
				"<q1@example.com>");
	}
	g_assert_true(imta_store_folder_status(fx.store, "alice", NULL, &after, NULL));
	g_assert_cmpuint(after.uidvalidity, ==, before.uidvalidity);
	g_assert_cmpuint(after.uidnext, ==, 5);
	/* A message file removed behind the store's back. */
	file = g_strdup_printf("%s/00/2.msg", dir);
	g_assert_cmpint(g_unlink(file), ==, 0);
	g_assert_cmpint(reconstruct(&fx, TRUE, &f2), ==, 1);
	g_assert_true(findings_have(f2, "alice INBOX: message 2 has no file"));
	g_assert_cmpint(reconstruct(&fx, FALSE, NULL), ==, 1);
	g_assert_cmpint(reconstruct(&fx, TRUE, NULL), ==, 0);
	/* A leftover at UIDNEXT: no problem, removed. */
	leftover = g_strdup_printf("%s/00/5.msg", dir);
	g_assert_true(g_file_set_contents(leftover, "x\n", -1, NULL));
	g_assert_cmpint(reconstruct(&fx, TRUE, &f3), ==, 0);
	g_assert_cmpint(reconstruct(&fx, FALSE, NULL), ==, 0);
	g_assert_false(g_file_test(leftover, G_FILE_TEST_EXISTS));
	{
		g_autoptr(GPtrArray) m = imta_store_folder_messages(fx.store, "alice", NULL, NULL);

		g_assert_cmpuint(m->len, ==, 3);
	}
	/* A file without a record below UIDNEXT. */
	{
		g_autofree char *extra = g_strdup_printf("%s/00/2.msg", dir);
		g_autoptr(GPtrArray) f4 = NULL;

		g_assert_true(g_file_set_contents(extra, msg1, -1, NULL));
		g_assert_cmpint(reconstruct(&fx, TRUE, &f4), ==, 1);
		g_assert_true(findings_have(f4, "alice INBOX: message 2 has no index record"));
		g_assert_cmpint(reconstruct(&fx, FALSE, NULL), ==, 1);
		g_assert_cmpint(reconstruct(&fx, TRUE, NULL), ==, 0);
	}
	fixture_close(&fx);
}

/* ---- damaged indexes ---------------------------------------------------- */

static void
test_damaged_index(void)
{
	Fixture fx;
	g_autofree char *dir = NULL;
	g_autofree char *idx = NULL;
	g_autofree char *orig = NULL;
	gsize len = 0;

	fixture_open(&fx);
	for (guint i = 0; i < 5; i++)
		deliver_one(&fx, "alice", NULL, msg1);
	dir = imta_store_user_path(fx.store, "alice", NULL);
	idx = g_build_filename(dir, "store.idx", NULL);
	g_assert_true(g_file_get_contents(idx, &orig, &len, NULL));
	g_test_rand_int();
	for (guint round = 0; round < 300; round++) {
		g_autofree char *bad = g_memdup2(orig, len);
		gsize badlen = len;
		g_autoptr(GError) error = NULL;
		g_autoptr(GPtrArray) m = NULL;
		guint n = (guint)g_test_rand_int_range(1, 4);

		for (guint k = 0; k < n; k++)
			bad[g_test_rand_int_range(0, (gint32)len)] ^= (char)g_test_rand_int_range(1, 256);
		if (round % 7 == 0)
			badlen = (gsize)g_test_rand_int_range(0, (gint32)len);
		g_assert_true(g_file_set_contents(idx, bad, (gssize)badlen, NULL));
		m = imta_store_folder_messages(fx.store, "alice", NULL, &error);
		if (m == NULL)
			g_assert_error(error, IMTA_STORE_ERROR, IMTA_STORE_ERROR_CORRUPT);
		g_clear_error(&error);
		g_assert_cmpint(imta_store_reconstruct(fx.store, "alice", FALSE, NULL, &error),
				>=, 0);
		g_assert_no_error(error);
		g_assert_cmpint(imta_store_reconstruct(fx.store, "alice", TRUE, NULL, &error), ==,
				0);
		g_clear_pointer(&m, g_ptr_array_unref);
		m = imta_store_folder_messages(fx.store, "alice", NULL, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(m->len, ==, 5);
		g_assert_true(g_file_set_contents(idx, orig, (gssize)len, NULL));
	}
	fixture_close(&fx);
}

/* ---- crash safety ------------------------------------------------------- */

static const char *const crash_users[] = { "k1", "k2", "k3", "k4" };

static void G_GNUC_NORETURN
crash_child(Fixture *fx, int out)
{
	for (guint n = 0; ; n++) {
		ImtaStoreTarget t[G_N_ELEMENTS(crash_users)];
		char line[256];
		int len;

		for (guint i = 0; i < G_N_ELEMENTS(crash_users); i++)
			t[i] = (ImtaStoreTarget){ crash_users[i], i == 3 ? "second" : NULL,
						  NULL, 0, NULL };
		if (!imta_store_deliver(fx->store, msg1, strlen(msg1), 0, t,
					G_N_ELEMENTS(crash_users), NULL))
			_exit(2);
		len = g_snprintf(line, sizeof line, "%u %u %u %u\n", t[0].uid, t[1].uid,
				 t[2].uid, t[3].uid);
		if (write(out, line, (size_t)len) != len)
			_exit(3);
	}
}

static void
test_crash(void)
{
	Fixture fx;
	g_autoptr(GString) reported = g_string_new(NULL);
	guint kills = 0;

	fixture_open(&fx);
	for (guint i = 0; i < G_N_ELEMENTS(crash_users); i++)
		g_assert_true(imta_store_create_user(fx.store, crash_users[i],
						     i == 3 ? "second" : NULL, NULL));
	for (guint round = 0; round < 25; round++) {
		int fds[2];
		pid_t pid;
		char buf[4096];
		ssize_t n;
		int status;

		g_assert_cmpint(pipe(fds), ==, 0);
		pid = fork();
		g_assert_cmpint(pid, >=, 0);
		if (pid == 0) {
			close(fds[0]);
			crash_child(&fx, fds[1]);
		}
		close(fds[1]);
		g_usleep((gulong)g_test_rand_int_range(1000, 40000));
		g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
		g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
		g_assert_true(WIFSIGNALED(status));
		kills++;
		while ((n = read(fds[0], buf, sizeof buf)) > 0)
			g_string_append_len(reported, buf, n);
		close(fds[0]);
		g_assert_cmpint(reconstruct(&fx, TRUE, NULL), ==, 0);
	}
	/* Every delivery reported done is listed. */
	{
		g_auto(GStrv) lines = g_strsplit(reported->str, "\n", -1);
		GHashTable *seen[G_N_ELEMENTS(crash_users)];
		guint done = 0;

		for (guint i = 0; i < G_N_ELEMENTS(crash_users); i++) {
			g_autoptr(GPtrArray) m = imta_store_folder_messages(fx.store, crash_users[i],
									    NULL, NULL);

			seen[i] = g_hash_table_new(g_direct_hash, g_direct_equal);
			for (guint j = 0; j < m->len; j++)
				g_hash_table_add(seen[i], GUINT_TO_POINTER(
						 ((ImtaStoreMessage *)m->pdata[j])->uid));
		}
		for (guint l = 0; lines[l] != NULL; l++) {
			guint u[4];

			if (sscanf(lines[l], "%u %u %u %u", &u[0], &u[1], &u[2], &u[3]) != 4)
				continue;
			done++;
			for (guint i = 0; i < G_N_ELEMENTS(crash_users); i++)
				g_assert_true(g_hash_table_contains(seen[i], GUINT_TO_POINTER(u[i])));
		}
		for (guint i = 0; i < G_N_ELEMENTS(crash_users); i++)
			g_hash_table_unref(seen[i]);
		g_test_message("%u kills, %u deliveries reported", kills, done);
		g_assert_cmpuint(done, >, 0);
	}
	g_assert_cmpint(reconstruct(&fx, FALSE, NULL), ==, 0);
	fixture_close(&fx);
}

/* ---- timings ------------------------------------------------------------ */

static void
test_timing_deliver(void)
{
	Fixture fx;
	ImtaStoreTarget *t = g_new0(ImtaStoreTarget, 1000);
	char **names = g_new0(char *, 1001);
	gint64 start;
	g_autoptr(GError) error = NULL;

	fixture_open(&fx);
	for (guint i = 0; i < 1000; i++) {
		names[i] = g_strdup_printf("user%u", i);
		t[i].userid = names[i];
	}
	start = g_get_monotonic_time();
	g_assert_true(imta_store_deliver(fx.store, msg1, strlen(msg1), 0, t, 1000, &error));
	g_test_message("first delivery to 1000 new users: %.3f s",
		       (double)(g_get_monotonic_time() - start) / 1e6);
	start = g_get_monotonic_time();
	g_assert_true(imta_store_deliver(fx.store, msg1, strlen(msg1), 0, t, 1000, &error));
	g_test_message("delivery to 1000 existing users: %.3f s",
		       (double)(g_get_monotonic_time() - start) / 1e6);
	for (guint i = 0; i < 1000; i++) {
		g_assert_no_error(t[i].error);
		g_assert_cmpuint(t[i].uid, ==, 2);
	}
	g_strfreev(names);
	g_free(t);
	fixture_close(&fx);
}

static void
test_timing_list(void)
{
	Fixture fx;
	/* 100,000 with -m slow; bench/run-store-bench times that size. */
	const guint n = g_test_slow() ? 100000 : 12000;
	gint64 start;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) m = NULL;
	ImtaStoreTarget t = { "big", NULL, NULL, 0, NULL };

	fixture_open(&fx);
	g_assert_true(imta_store_deliver(fx.store, msg1, strlen(msg1), 0, &t, 1, &error));
	/* Fill the folder quickly: many targets of one call are the same
	 * folder, one sync in all. */
	{
		ImtaStoreTarget *many = g_new0(ImtaStoreTarget, 10000);

		for (guint i = 0; i < 10000; i++)
			many[i].userid = "big";
		start = g_get_monotonic_time();
		for (guint done = 1; done < n; done += 10000) {
			guint k = MIN(10000, n - done);

			g_assert_true(imta_store_deliver(fx.store, msg1, strlen(msg1), 0, many, k,
							 &error));
		}
		g_test_message("delivered %u messages to one folder in %.2f s", n,
			       (double)(g_get_monotonic_time() - start) / 1e6);
		g_free(many);
	}
	start = g_get_monotonic_time();
	m = imta_store_folder_messages(fx.store, "big", NULL, &error);
	g_test_message("listing %u messages: %.3f s", m->len,
		       (double)(g_get_monotonic_time() - start) / 1e6);
	g_assert_cmpuint(m->len, ==, n);
	g_assert_cmpstr(((ImtaStoreMessage *)m->pdata[n - 1])->subject, ==, "Quarterly  report");
	{
		g_autofree char *dir = imta_store_user_path(fx.store, "big", NULL);
		g_autofree char *last = g_strdup_printf("%s/%02x/%u.msg", dir, (n / 1000) % 256, n);

		g_assert_true(g_file_test(last, G_FILE_TEST_EXISTS));
	}
	fixture_close(&fx);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/store/config/defaults", test_config_defaults);
	g_test_add_func("/store/config/options", test_config_options);
	g_test_add_func("/store/config/errors", test_config_errors);
	g_test_add_func("/store/names/hash", test_hash);
	g_test_add_func("/store/names/userid", test_userid_validation);
	g_test_add_func("/store/names/folder", test_folder_validation);
	g_test_add_func("/store/layout/paths", test_layout);
	g_test_add_func("/store/folders/create-rename-delete", test_folders);
	g_test_add_func("/store/deliver/fields", test_deliver_fields);
	g_test_add_func("/store/deliver/single-copy", test_single_copy);
	g_test_add_func("/store/flags/per-user", test_flags);
	g_test_add_func("/store/usage/expunge-delete-quota", test_expunge_usage);
	g_test_add_func("/store/mboxlist/snapshot-restore", test_snapshot);
	g_test_add_func("/store/reconstruct/system-area", test_reconstruct_system_area);
	g_test_add_func("/store/reconstruct/index-and-files", test_reconstruct_index);
	g_test_add_func("/store/reconstruct/damaged-index", test_damaged_index);
	g_test_add_func("/store/crash/sigkill", test_crash);
	g_test_add_func("/store/timing/deliver-1000", test_timing_deliver);
	g_test_add_func("/store/timing/list-many", test_timing_list);
	return g_test_run();
}
