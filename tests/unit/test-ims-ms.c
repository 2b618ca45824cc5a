/*
 * test-ims-ms.c - the ims-ms channel's recipient forms, directory
 * resolution and quota policy (core/store/store_user.c, store_quota.c,
 * shared by the ims-ms channel and the LMTP server),
 * without the store or the plugin loader.
 */
#include "config.h"

#include <string.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/directory.h>
#include <imta/channel.h>
#include <imta/store.h>
#include <imta/store_delivery.h>

/* ---- recipient forms ---------------------------------------------------- */

static void
test_address_forms(void)
{
	static const struct {
		const char *input, *uid, *domain, *folder;
	} rows[] = {
		{ "alice@ims-ms-daemon", "alice", NULL, NULL },
		{ "carol%example.org@ims-ms-daemon", "carol", "example.org", NULL },
		{ "carol%Example.ORG@ims-ms-daemon", "carol", "example.org", NULL },
		{ "alice+Archive@ims-ms-daemon", "alice", NULL, "Archive" },
		{ "alice+Archive/2026@ims-ms-daemon", "alice", NULL, "Archive/2026" },
		{ "joe%example.org+Lists@ims-ms-daemon", "joe", "example.org", "Lists" },
		{ "joe+Lists%example.org@ims-ms-daemon", "joe", "example.org", "Lists" },
		{ "alice+@ims-ms-daemon", "alice", NULL, NULL },
		{ "alice+inbox@ims-ms-daemon", "alice", NULL, NULL },
		{ "alice+INBOX@ims-ms-daemon", "alice", NULL, NULL },
		{ "alice+INBOXES@ims-ms-daemon", "alice", NULL, "INBOXES" },
		{ "alice+a+b@ims-ms-daemon", "alice", NULL, "a+b" },
		{ "o'neil.j_x-1@ims-ms-guaranteed-daemon", "o'neil.j_x-1", NULL, NULL },
		{ "Bob@ims-ms-daemon", "Bob", NULL, NULL },
		{ "alice@a@ims-ms-daemon", NULL, NULL, NULL }, /* '@' in the uid: bad */
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_auto(ImtaStoreAddress) addr = { 0 };
		g_autoptr(GError) error = NULL;
		gboolean ok = imta_store_address_parse(rows[i].input, &addr, &error);

		g_test_message("%s", rows[i].input);
		if (rows[i].uid == NULL) {
			g_assert_false(ok);
			g_assert_error(error, IMTA_STORE_DELIVERY_ERROR, IMTA_STORE_DELIVERY_ERROR_ADDRESS);
			continue;
		}
		g_assert_no_error(error);
		g_assert_true(ok);
		g_assert_cmpstr(addr.uid, ==, rows[i].uid);
		g_assert_cmpstr(addr.domain, ==, rows[i].domain);
		g_assert_cmpstr(addr.folder, ==, rows[i].folder);
	}
}

static void
test_address_bad(void)
{
	g_autofree char *long_uid = g_strnfill(256, 'a');
	g_autofree char *long_uid_addr = g_strconcat(long_uid, "@h", NULL);
	g_autofree char *long_folder = g_strnfill(256, 'f');
	g_autofree char *long_folder_addr = g_strconcat("a+", long_folder, "@h", NULL);
	const struct {
		const char *input, *message;
	} rows[] = {
		{ "alice", "expected uid[%domain][+folder]@host, got \"alice\"" },
		{ "", "expected uid[%domain][+folder]@host, got \"\"" },
		{ "@ims-ms-daemon", "expected a user id before the '%', '+' or '@', got nothing" },
		{ "+Archive@h", "expected a user id before the '%', '+' or '@', got nothing" },
		{ "%example.org@h", "expected a user id before the '%', '+' or '@', got nothing" },
		{ "alice%@h", "expected a domain of 1 to 253 bytes after the '%', got 0" },
		{ "a%b%c@h", "expected at most one '%' (uid%domain), got \"a%b%c@h\"" },
		{ "a%exa_mple.org@h", "expected letters, digits, '-' or '.' in the domain, got "
		  "byte 0x5f at offset 3" },
		{ "a%example..org@h",
		  "expected a domain without empty labels, got \"example..org\"" },
		{ "a%.org@h", "expected a domain without empty labels, got \".org\"" },
		{ "a%org.@h", "expected a domain without empty labels, got \"org.\"" },
		{ "al ice@h", "expected letters, digits or . _ - = ! $ & ' ^ ` { | } ~ in the user "
		  "id, got byte 0x20 at offset 2" },
		{ "al(ice@h", "expected letters, digits or . _ - = ! $ & ' ^ ` { | } ~ in the user "
		  "id, got byte 0x28 at offset 2" },
		{ "al*ce@h", "expected letters, digits or . _ - = ! $ & ' ^ ` { | } ~ in the user "
		  "id, got byte 0x2a at offset 2" },
		{ "\"alice\"@h", "expected an unquoted local part, got \"\"alice\"@h\"" },
		{ "a+b\tc@h", "expected a folder without control characters, got byte 0x09 at "
		  "offset 1" },
		{ long_uid_addr, "expected a user id of at most 255 bytes, got 256" },
		{ long_folder_addr, "expected a folder of at most 255 bytes, got 256" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_auto(ImtaStoreAddress) addr = { 0 };
		g_autoptr(GError) error = NULL;

		g_test_message("%s", rows[i].input);
		g_assert_false(imta_store_address_parse(rows[i].input, &addr, &error));
		g_assert_error(error, IMTA_STORE_DELIVERY_ERROR, IMTA_STORE_DELIVERY_ERROR_ADDRESS);
		g_assert_cmpstr(error->message, ==, rows[i].message);
		g_assert_null(addr.uid);
	}
}

static void
test_address_userid(void)
{
	static const struct {
		const char *input, *default_domain, *userid;
	} rows[] = {
		{ "alice@h", "example.com", "alice" },
		{ "alice@h", NULL, "alice" },
		{ "alice%example.com@h", "example.com", "alice" },
		{ "alice%EXAMPLE.com@h", "Example.COM", "alice" },
		{ "carol%example.org@h", "example.com", "carol@example.org" },
		{ "carol%example.org+x@h", NULL, "carol@example.org" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_auto(ImtaStoreAddress) addr = { 0 };
		g_autofree char *userid = NULL;

		g_assert_true(imta_store_address_parse(rows[i].input, &addr, NULL));
		userid = imta_store_address_userid(&addr, rows[i].default_domain);
		g_assert_cmpstr(userid, ==, rows[i].userid);
	}
}

static void
test_search_url(void)
{
	static const struct {
		const char *base, *uid, *url;
	} rows[] = {
		{ "ou=People,o=example.com,o=example", "alice",
		  "ldap:///ou=People,o=example.com,o=example??sub?"
		  "(&(objectClass=inetMailUser)(uid=alice))" },
		{ "", "alice", "ldap:///??sub?(&(objectClass=inetMailUser)(uid=alice))" },
		{ "o=a b?c", "x*(y)\\", "ldap:///o=a%20b%3Fc??sub?"
		  "(&(objectClass=inetMailUser)(uid=x%5C2a%5C28y%5C29%5C5c))" },
		{ "o=x", "o'n&b", "ldap:///o=x??sub?(&(objectClass=inetMailUser)(uid=o%27n%26b))" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *url = imta_store_user_search_url(rows[i].base, rows[i].uid);

		g_assert_cmpstr(url, ==, rows[i].url);
	}
}

/* ---- resolution through an LDIF directory -------------------------------- */

static const char TEST_LDIF[] =
	"version: 1\n"
	"\n"
	"dn: o=test\n"
	"objectClass: organization\n"
	"o: test\n"
	"\n"
	"dn: o=example.com,o=test\n"
	"objectClass: organization\n"
	"objectClass: sunManagedOrganization\n"
	"objectClass: mailDomain\n"
	"sunPreferredDomain: example.com\n"
	"associatedDomain: example.com\n"
	"mailRoutingHosts: mail.example.com\n"
	"\n"
	"dn: ou=People,o=example.com,o=test\n"
	"objectClass: organizationalUnit\n"
	"\n"
	"dn: o=example.org,o=test\n"
	"objectClass: organization\n"
	"objectClass: sunManagedOrganization\n"
	"objectClass: mailDomain\n"
	"sunPreferredDomain: example.org\n"
	"associatedDomain: example.org\n"
	"associatedDomain: alias.example.org\n"
	"inetDomainBaseDN: ou=People,o=example.org,o=test\n"
	"\n"
	"dn: o=closed.example,o=test\n"
	"objectClass: organization\n"
	"objectClass: mailDomain\n"
	"sunPreferredDomain: closed.example\n"
	"inetDomainStatus: inactive\n"
	"\n"
	"dn: ou=People,o=example.org,o=test\n"
	"objectClass: organizationalUnit\n"
#define USER(uid, base, extra) \
	"\n" \
	"dn: uid=" uid "," base "\n" \
	"objectClass: inetOrgPerson\n" \
	"objectClass: inetMailUser\n" \
	"objectClass: inetLocalMailRecipient\n" \
	"uid: " uid "\n" \
	"mailDeliveryOption: mailbox\n" \
	extra
	USER("alice", "ou=People,o=example.com,o=test", "mail: alice@example.com\n")
	USER("bob", "ou=People,o=example.com,o=test",
	     "mail: bob@example.com\nmailQuota: 10M\nmailMsgQuota: 5000\n"
	     "mailMessageStore: secondary\n")
	USER("ivan", "ou=People,o=example.com,o=test",
	     "mail: ivan@example.com\ninetUserStatus: inactive\n")
	USER("hank", "ou=People,o=example.com,o=test",
	     "mail: hank@example.com\nmailUserStatus: hold\n")
	USER("gone", "ou=People,o=example.com,o=test",
	     "mail: gone@example.com\nmailUserStatus: deleted\n")
	USER("full", "ou=People,o=example.com,o=test",
	     "mail: full@example.com\nmailUserStatus: overquota\nmailQuota: 0\n")
	USER("carol", "ou=People,o=example.org,o=test",
	     "mail: carol@example.org\nmailQuota: -1\n")
	USER("alice", "ou=People,o=example.org,o=test", "mail: alice@example.org\n");

static void
test_resolve(void)
{
	static const struct {
		const char *address;
		const char *default_domain;
		ImtaStoreUserState state;
		const char *userid, *partition, *reason;
		gint64 quota_bytes, quota_messages;
		gboolean overquota;
	} rows[] = {
		{ "alice@h", "example.com", IMTA_STORE_USER_OK, "alice", NULL, NULL, -2, -2, FALSE },
		{ "alice%example.com@h", "example.com", IMTA_STORE_USER_OK, "alice", NULL, NULL,
		  -2, -2, FALSE },
		{ "bob@h", "example.com", IMTA_STORE_USER_OK, "bob", "secondary", NULL,
		  10 * 1024 * 1024, 5000, FALSE },
		{ "carol%example.org@h", "example.com", IMTA_STORE_USER_OK, "carol@example.org", NULL,
		  NULL, -1, -2, FALSE },
		{ "carol%alias.example.org@h", "example.com", IMTA_STORE_USER_OK, "carol@example.org",
		  NULL, NULL, -1, -2, FALSE },
		{ "alice%example.org@h", "example.com", IMTA_STORE_USER_OK, "alice@example.org", NULL,
		  NULL, -2, -2, FALSE },
		{ "full@h", "example.com", IMTA_STORE_USER_OK, "full", NULL, NULL, 0, -2, TRUE },
		{ "nobody@h", "example.com", IMTA_STORE_USER_UNKNOWN, "nobody", NULL,
		  "5.1.1 unknown user nobody", -2, -2, FALSE },
		{ "carol@h", "example.com", IMTA_STORE_USER_UNKNOWN, "carol", NULL,
		  "5.1.1 unknown user carol", -2, -2, FALSE },
		{ "x%nowhere.example@h", "example.com", IMTA_STORE_USER_UNKNOWN, NULL, NULL,
		  "5.1.1 no hosted domain nowhere.example in the directory", -2, -2, FALSE },
		{ "x%closed.example@h", "example.com", IMTA_STORE_USER_INACTIVE, NULL, NULL,
		  "4.2.1 domain closed.example is inactive; try again later", -2, -2, FALSE },
		{ "ivan@h", "example.com", IMTA_STORE_USER_INACTIVE, "ivan", NULL,
		  "4.2.1 mailbox ivan is inactive; try again later", -2, -2, FALSE },
		{ "hank@h", "example.com", IMTA_STORE_USER_HOLD, "hank", NULL,
		  "4.2.1 mailbox hank is on hold; mail waits in the queue", -2, -2, FALSE },
		{ "gone@h", "example.com", IMTA_STORE_USER_DELETED, "gone", NULL,
		  "5.1.6 mailbox gone is deleted", -2, -2, FALSE },
		/* Without a default domain the uid must be unique. */
		{ "bob@h", NULL, IMTA_STORE_USER_OK, "bob", "secondary", NULL,
		  10 * 1024 * 1024, 5000, FALSE },
		{ "alice@h", NULL, IMTA_STORE_USER_TEMPFAIL, "alice", NULL,
		  "4.4.3 directory: 2 entries have uid alice; the user id must be unique",
		  -2, -2, FALSE },
	};
	g_autofree char *dir_path = g_dir_make_tmp("test-ims-ms-XXXXXX", NULL);
	g_autofree char *ldif = g_build_filename(dir_path, "directory.ldif", NULL);
	ImtaDirectoryOptions options = { .local_host = "mail.example.com" };
	g_autoptr(ImtaDirectory) dir = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *default_domain = NULL;

	g_assert_true(g_file_set_contents(ldif, TEST_LDIF, -1, &error));
	dir = imta_directory_open_ldif(ldif, &options, &error);
	g_assert_no_error(error);
	default_domain = imta_store_default_domain(dir, "mail.example.com");
	g_assert_cmpstr(default_domain, ==, "example.com");
	g_clear_pointer(&default_domain, g_free);
	default_domain = imta_store_default_domain(dir, "example.org");
	g_assert_cmpstr(default_domain, ==, "example.org");
	g_assert_null(imta_store_default_domain(dir, "mail.elsewhere.test"));

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_auto(ImtaStoreAddress) addr = { 0 };
		g_auto(ImtaStoreUser) user = { 0 };

		g_test_message("%s", rows[i].address);
		g_assert_true(imta_store_address_parse(rows[i].address, &addr, NULL));
		imta_store_user_resolve(dir, &addr, rows[i].default_domain, &user);
		g_assert_cmpint(user.state, ==, rows[i].state);
		g_assert_cmpstr(user.reason, ==, rows[i].reason);
		if (rows[i].userid != NULL)
			g_assert_cmpstr(user.userid, ==, rows[i].userid);
		if (rows[i].state != IMTA_STORE_USER_OK)
			continue;
		g_assert_cmpstr(user.partition, ==, rows[i].partition);
		g_assert_cmpint(user.quota_bytes, ==, rows[i].quota_bytes);
		g_assert_cmpint(user.quota_messages, ==, rows[i].quota_messages);
		g_assert_cmpint(user.status_overquota, ==, rows[i].overquota);
	}
	{
		g_auto(ImtaStoreAddress) addr = { 0 };
		g_auto(ImtaStoreUser) user = { 0 };

		g_assert_true(imta_store_address_parse("alice@h", &addr, NULL));
		imta_store_user_resolve(NULL, &addr, "example.com", &user);
		g_assert_cmpint(user.state, ==, IMTA_STORE_USER_TEMPFAIL);
		g_assert_cmpstr(user.reason, ==, "4.4.3 directory unavailable: the directory "
				"could not be opened");
	}
	g_unlink(ldif);
	g_rmdir(dir_path);
}

/* ---- quota values -------------------------------------------------------- */

static void
test_quota_parse(void)
{
	static const struct {
		const char *text;
		gboolean size, ok;
		gint64 value;
		const char *message;
	} rows[] = {
		{ "0", TRUE, TRUE, 0, NULL },
		{ "1000", TRUE, TRUE, 1000, NULL },
		{ "10K", TRUE, TRUE, 10240, NULL },
		{ "10k", TRUE, TRUE, 10240, NULL },
		{ "10M", TRUE, TRUE, 10485760, NULL },
		{ "2G", TRUE, TRUE, 2147483648LL, NULL },
		{ "4096G", TRUE, TRUE, 4398046511104LL, NULL },
		{ " 5M ", TRUE, TRUE, 5242880, NULL },
		{ "-1", TRUE, TRUE, -1, NULL },
		{ "-2", TRUE, TRUE, -2, NULL },
		{ "-1", FALSE, TRUE, -1, NULL },
		{ "-2", FALSE, TRUE, -2, NULL },
		{ "5000", FALSE, TRUE, 5000, NULL },
		{ "0", FALSE, TRUE, 0, NULL },
		{ "4097G", TRUE, FALSE, 0, "expected at most 4096G, got \"4097G\"" },
		{ "-3", TRUE, FALSE, 0, "expected a size in bytes with an optional K, M or G "
		  "suffix, -1 (unlimited) or -2 (default), got \"-3\"" },
		{ "-1K", TRUE, FALSE, 0, "expected a size in bytes with an optional K, M or G "
		  "suffix, -1 (unlimited) or -2 (default), got \"-1K\"" },
		{ "", TRUE, FALSE, 0, "expected a size in bytes with an optional K, M or G "
		  "suffix, -1 (unlimited) or -2 (default), got \"\"" },
		{ "10X", TRUE, FALSE, 0, "expected a size in bytes with an optional K, M or G "
		  "suffix, -1 (unlimited) or -2 (default), got \"10X\"" },
		{ "ten", TRUE, FALSE, 0, "expected a size in bytes with an optional K, M or G "
		  "suffix, -1 (unlimited) or -2 (default), got \"ten\"" },
		{ "10M", FALSE, FALSE, 0, "expected a number of messages, -1 (unlimited) or -2 "
		  "(default), got \"10M\"" },
		{ "99999999999999999999", FALSE, FALSE, 0, "expected a number of messages, -1 "
		  "(unlimited) or -2 (default), got \"99999999999999999999\"" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(GError) error = NULL;
		gint64 value = 12345;
		gboolean ok = imta_store_quota_parse(rows[i].text, rows[i].size, &value, &error);

		g_test_message("\"%s\"", rows[i].text);
		g_assert_cmpint(ok, ==, rows[i].ok);
		if (ok) {
			g_assert_no_error(error);
			g_assert_cmpint(value, ==, rows[i].value);
		} else {
			g_assert_error(error, IMTA_STORE_DELIVERY_ERROR, IMTA_STORE_DELIVERY_ERROR_QUOTA);
			g_assert_cmpstr(error->message, ==, rows[i].message);
			g_assert_cmpint(value, ==, 12345);
		}
	}
}

static void
test_quota_effective(void)
{
	static const struct {
		gint64 value, store_default, expected;
	} rows[] = {
		{ -2, -1, -1 }, { -2, 1000, 1000 }, { -2, 0, 0 }, { -1, 1000, -1 },
		{ 0, 1000, 0 }, { 500, 1000, 500 }, { -2, -2, -1 },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++)
		g_assert_cmpint(imta_store_quota_effective(rows[i].value, rows[i].store_default), ==,
				rows[i].expected);
}

/* ---- quota decisions ----------------------------------------------------- */

#define NOW 1800000000
#define HOUR 3600

static void
test_quota_check(void)
{
	static const struct {
		const char *name;
		gboolean enforce;
		ImtaExquota exquota;
		gint64 limit_bytes, limit_messages;
		gboolean status_overquota;
		gint64 bytes, messages, over_since, size;
		ImtaStoreQuotaAction action;
		const char *status;
		gint64 new_over_since;
		const char *diagnostic;
	} rows[] = {
		{ "no limits", TRUE, IMTA_EXQUOTA_DEFAULT, -1, -1, FALSE, 5000, 10, 0, 100,
		  IMTA_STORE_QUOTA_DELIVER, "2.0.0", 0, NULL },
		{ "fits", TRUE, IMTA_EXQUOTA_DEFAULT, 1000, 10, FALSE, 800, 5, 0, 200,
		  IMTA_STORE_QUOTA_DELIVER, "2.0.0", 0, NULL },
		{ "fits, clears over_since", TRUE, IMTA_EXQUOTA_DEFAULT, 1000, 10, FALSE, 100, 5,
		  NOW - HOUR, 200, IMTA_STORE_QUOTA_DELIVER, "2.0.0", 0, NULL },
		{ "bytes over: first time", TRUE, IMTA_EXQUOTA_DEFAULT, 1000, -1, FALSE, 900, 5, 0,
		  200, IMTA_STORE_QUOTA_RETRY, "4.2.2", NOW,
		  "4.2.2 mailbox full (900 of 1000 bytes used); over quota for 0 of 7200 seconds "
		  "of grace" },
		{ "bytes over: within grace", TRUE, IMTA_EXQUOTA_DEFAULT, 1000, -1, FALSE, 900, 5,
		  NOW - HOUR, 200, IMTA_STORE_QUOTA_RETRY, "4.2.2", NOW - HOUR,
		  "4.2.2 mailbox full (900 of 1000 bytes used); over quota for 3600 of 7200 "
		  "seconds of grace" },
		{ "bytes over: grace over", TRUE, IMTA_EXQUOTA_DEFAULT, 1000, -1, FALSE, 900, 5,
		  NOW - 2 * HOUR, 200, IMTA_STORE_QUOTA_FAIL, "5.2.2", NOW - 2 * HOUR,
		  "5.2.2 mailbox full (900 of 1000 bytes used); over quota longer than the grace "
		  "period of 7200 seconds" },
		{ "exactly at the limit fits", TRUE, IMTA_EXQUOTA_DEFAULT, 1000, 10, FALSE, 800, 9,
		  0, 200, IMTA_STORE_QUOTA_DELIVER, "2.0.0", 0, NULL },
		{ "messages over", TRUE, IMTA_EXQUOTA_DEFAULT, -1, 10, FALSE, 800, 10, 0, 1,
		  IMTA_STORE_QUOTA_RETRY, "4.2.2", NOW,
		  "4.2.2 mailbox full (10 of 10 messages); over quota for 0 of 7200 seconds of "
		  "grace" },
		{ "both described", TRUE, IMTA_EXQUOTA_DEFAULT, 1000, 10, FALSE, 1000, 10, 0, 1,
		  IMTA_STORE_QUOTA_RETRY, "4.2.2", NOW,
		  "4.2.2 mailbox full (1000 of 1000 bytes used, 10 of 10 messages); over quota "
		  "for 0 of 7200 seconds of grace" },
		{ "enforcement off", FALSE, IMTA_EXQUOTA_DEFAULT, 1000, 10, TRUE, 5000, 50, 0, 1,
		  IMTA_STORE_QUOTA_DELIVER, "2.0.0", 0, NULL },
		{ "exquota delivers", TRUE, IMTA_EXQUOTA_DELIVER, 1000, 10, TRUE, 5000, 50,
		  NOW - 9 * HOUR, 1, IMTA_STORE_QUOTA_DELIVER, "2.0.0", NOW - 9 * HOUR, NULL },
		{ "noexquota fails at once", TRUE, IMTA_EXQUOTA_BOUNCE, 1000, -1, FALSE, 1000, 1,
		  0, 1, IMTA_STORE_QUOTA_FAIL, "5.2.2", NOW,
		  "5.2.2 mailbox full (1000 of 1000 bytes used)" },
		{ "holdexquota holds past grace", TRUE, IMTA_EXQUOTA_HOLD, 1000, -1, FALSE, 1000,
		  1, NOW - 100 * HOUR, 1, IMTA_STORE_QUOTA_RETRY, "4.2.2", NOW - 100 * HOUR,
		  "4.2.2 mailbox full (1000 of 1000 bytes used); held until there is room" },
		{ "directory overquota status", TRUE, IMTA_EXQUOTA_DEFAULT, -1, -1, TRUE, 0, 0, 0,
		  1, IMTA_STORE_QUOTA_RETRY, "4.2.2", NOW,
		  "4.2.2 mailbox full (the directory marks the user over quota); over quota for "
		  "0 of 7200 seconds of grace" },
		{ "larger than the quota itself", TRUE, IMTA_EXQUOTA_DEFAULT, 1000, -1, FALSE, 0,
		  0, 0, 1001, IMTA_STORE_QUOTA_FAIL, "5.2.3", 0,
		  "5.2.3 message of 1001 bytes is larger than the mailbox quota of 1000 bytes" },
		{ "no space at all", TRUE, IMTA_EXQUOTA_DEFAULT, 0, -1, FALSE, 0, 0, 0, 10,
		  IMTA_STORE_QUOTA_RETRY, "4.2.2", NOW,
		  "4.2.2 mailbox full (0 of 0 bytes used); over quota for 0 of 7200 seconds of "
		  "grace" },
		{ "zero messages", TRUE, IMTA_EXQUOTA_DEFAULT, -1, 0, FALSE, 0, 0, 0, 10,
		  IMTA_STORE_QUOTA_RETRY, "4.2.2", NOW,
		  "4.2.2 mailbox full (0 of 0 messages); over quota for 0 of 7200 seconds of "
		  "grace" },
		{ "huge usage does not overflow", TRUE, IMTA_EXQUOTA_DEFAULT, 1000, -1, FALSE,
		  G_MAXINT64, 0, NOW - 3 * HOUR, G_MAXINT64, IMTA_STORE_QUOTA_FAIL, "5.2.3",
		  NOW - 3 * HOUR,
		  "5.2.3 message of 9223372036854775807 bytes is larger than the mailbox quota of "
		  "1000 bytes" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		ImtaStoreQuotaPolicy policy = {
			.enforce = rows[i].enforce,
			.exquota = rows[i].exquota,
			.limit_bytes = rows[i].limit_bytes,
			.limit_messages = rows[i].limit_messages,
			.grace = 2 * HOUR,
			.warn_percent = 90,
			.status_overquota = rows[i].status_overquota,
		};
		ImtaStoreUsage usage = { rows[i].bytes, rows[i].messages, 0, rows[i].over_since };
		g_auto(ImtaStoreQuotaDecision) decision = { 0 };

		g_test_message("%s", rows[i].name);
		imta_store_quota_check(&policy, &usage, rows[i].size, NOW, &decision);
		g_assert_cmpint(decision.action, ==, rows[i].action);
		g_assert_cmpstr(decision.status, ==, rows[i].status);
		g_assert_cmpint(decision.over_since, ==, rows[i].new_over_since);
		g_assert_cmpstr(decision.diagnostic, ==, rows[i].diagnostic);
	}
}

static void
test_quota_grace_zero(void)
{
	ImtaStoreQuotaPolicy policy = { .enforce = TRUE, .limit_bytes = 10, .limit_messages = -1 };
	ImtaStoreUsage usage = { 10, 1, 0, 0 };
	g_auto(ImtaStoreQuotaDecision) decision = { 0 };

	imta_store_quota_check(&policy, &usage, 1, NOW, &decision);
	g_assert_cmpint(decision.action, ==, IMTA_STORE_QUOTA_FAIL);
	g_assert_cmpstr(decision.status, ==, "5.2.2");
	g_assert_cmpint(decision.over_since, ==, NOW);
}

static void
test_quota_warn(void)
{
	static const struct {
		const char *name;
		gint64 limit_bytes, limit_messages;
		gint warn_percent;
		gint64 bytes, messages, warned_at, over_since;
		gboolean warn;
		gint64 new_warned_at, new_over_since;
		gint percent;
	} rows[] = {
		{ "under the threshold", 1000, -1, 90, 899, 1, 0, 0, FALSE, 0, 0, 89 },
		{ "crosses by bytes", 1000, -1, 90, 900, 1, 0, 0, TRUE, NOW, 0, 90 },
		{ "crosses by messages", -1, 10, 90, 100000, 9, 0, 0, TRUE, NOW, 0, 90 },
		{ "already warned", 1000, -1, 90, 950, 1, NOW - HOUR, 0, FALSE, NOW - HOUR, 0, 95 },
		{ "back under: warning reset", 1000, -1, 90, 500, 1, NOW - HOUR, 0, FALSE, 0, 0,
		  50 },
		{ "warnings off", 1000, -1, 0, 999, 1, 0, 0, FALSE, 0, 0, 99 },
		{ "no limits", -1, -1, 90, 1 << 30, 100000, 0, 0, FALSE, 0, 0, 0 },
		{ "over: over_since kept", 1000, -1, 90, 1200, 1, NOW - HOUR, NOW - HOUR, FALSE,
		  NOW - HOUR, NOW - HOUR, 120 },
		{ "under: over_since cleared", 1000, -1, 90, 1000, 1, NOW - HOUR, NOW - HOUR, FALSE,
		  NOW - HOUR, 0, 100 },
		{ "zero limit, some use", 0, -1, 90, 10, 1, 0, 0, TRUE, NOW, 0, 100 },
		{ "empty mailbox", 1000, 10, 90, 0, 0, 0, 0, FALSE, 0, 0, 0 },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		ImtaStoreQuotaPolicy policy = {
			.enforce = TRUE,
			.limit_bytes = rows[i].limit_bytes,
			.limit_messages = rows[i].limit_messages,
			.warn_percent = rows[i].warn_percent,
		};
		ImtaStoreUsage usage = { rows[i].bytes, rows[i].messages, rows[i].warned_at,
					 rows[i].over_since };
		gint64 warned_at = -5, over_since = -5;

		g_test_message("%s", rows[i].name);
		g_assert_cmpint(imta_store_quota_after(&policy, &usage, NOW, &warned_at, &over_since),
				==, rows[i].warn);
		g_assert_cmpint(warned_at, ==, rows[i].new_warned_at);
		g_assert_cmpint(over_since, ==, rows[i].new_over_since);
		g_assert_cmpint(imta_store_quota_percent(&policy, &usage), ==, rows[i].percent);
	}
}

static void
test_quota_warning_text(void)
{
	ImtaStoreQuotaPolicy policy = { .enforce = TRUE, .limit_bytes = 10485760,
				    .limit_messages = 5000, .warn_percent = 90 };
	ImtaStoreUsage usage = { 9500000, 120, 0, 0 };
	g_autofree char *text = imta_store_quota_warning_text(&policy, &usage, "bob");

	g_assert_cmpstr(text, ==,
		"Your mailbox (bob) is 90% full.\n"
		"\n"
		"  Size:     9500000 bytes used of 10485760 (90%)\n"
		"  Messages: 120 of 5000 (2%)\n"
		"\n"
		"This warning is sent when 90% of a limit is reached.  When the mailbox is "
		"full, new\n"
		"mail waits in the queue and is returned to its senders after a while.\n"
		"Please delete messages you no longer need.\n");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/ims-ms/address/forms", test_address_forms);
	g_test_add_func("/ims-ms/address/bad", test_address_bad);
	g_test_add_func("/ims-ms/address/userid", test_address_userid);
	g_test_add_func("/ims-ms/directory/search-url", test_search_url);
	g_test_add_func("/ims-ms/directory/resolve", test_resolve);
	g_test_add_func("/ims-ms/quota/parse", test_quota_parse);
	g_test_add_func("/ims-ms/quota/effective", test_quota_effective);
	g_test_add_func("/ims-ms/quota/check", test_quota_check);
	g_test_add_func("/ims-ms/quota/grace-zero", test_quota_grace_zero);
	g_test_add_func("/ims-ms/quota/warn", test_quota_warn);
	g_test_add_func("/ims-ms/quota/warning-text", test_quota_warning_text);
	return g_test_run();
}
