/*
 * test-directory.c - the directory API over the embedded LDIF backend.
 *
 * Most cases run against TEST_LDIF, written to a temporary directory.  The
 * cache is tested against a counting fake backend through the private
 * interface, with an injected clock so expiry needs no sleeping.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <utime.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/directory.h>
#include <imta/error.h>
#include <imta/log.h>

#include "directory/directory_private.h"

static char *tmp_dir;

static char *
write_file(const char *name, const char *text)
{
	char *path = g_build_filename(tmp_dir, name, NULL);
	g_autoptr(GError) error = NULL;

	g_file_set_contents(path, text, -1, &error);
	g_assert_no_error(error);
	return path;
}

static const char TEST_LDIF[] =
	"# Test directory\n"
	"version: 1\n"
	"\n"
	"dn: o=test\n"
	"objectClass: organization\n"
	"o: test\n"
	"\n"
	"dn: o=example.com,o=test\n"
	"objectClass: organization\n"
	"objectClass: sunManagedOrganization\n"
	"sunPreferredDomain: example.com\n"
	"associatedDomain: example.com\n"
	"associatedDomain: alias.example.com\n"
	"mailRoutingHosts: mail.example.com\n"
	"mailRoutingSmartHost: smart.example.com\n"
	"mailDomainDiskQuota: 1G\n"
	"mailDomainMsgQuota: -1\n"
	"\n"
	"dn: ou=People,o=example.com,o=test\n"
	"objectClass: organizationalUnit\n"
	"\n"
	"dn: uid=alice,ou=People,o=example.com,o=test\n"
	"objectClass: inetOrgPerson\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: alice\n"
	"cn: Alice Smith\n"
	"mail: Alice@Example.com\n"
	"mailAlternateAddress: alice.smith@example.com\n"
	"mailAlternateAddress: a.smith@example.com\n"
	"mailEquivalentAddress: asmith@example.com\n"
	"mailHost: mail.example.com\n"
	"mailDeliveryOption: Mailbox\n"
	"mailDeliveryOption: forward\n"
	"mailForwardingAddress: alice@elsewhere.example.net\n"
	"mailQuota: 10M\n"
	"mailMsgQuota: 1000\n"
	"mailMessageStore: primary\n"
	"departmentNumber: 42\n"
	"userPassword: {SSHA}NynVbb0ELgRLvE0yjco5di47ByIaKzxNXm9wgQ==\n"
	"\n"
	"dn: uid=bob, ou=People, o=example.com, o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: bob\n"
	"mail: bob@example.com\n"
	"departmentNumber: 42\n"
	"userPassword: bobpw\n"
	"\n"
	"dn: uid=dup1,ou=People,o=example.com,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: dup1\n"
	"mail: dup@example.com\n"
	"\n"
	"dn: uid=dup2,ou=People,o=example.com,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: dup2\n"
	"mailAlternateAddress: DUP@example.com\n"
	"\n"
	"dn: uid=pick1,ou=People,o=example.com,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: pick1\n"
	"mail: pick@example.com\n"
	"mailUserStatus: deleted\n"
	"\n"
	"dn: uid=pick2,ou=People,o=example.com,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: pick2\n"
	"mailEquivalentAddress: pick@example.com\n"
	"\n"
	"dn: cn=nouid,ou=People,o=example.com,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"mail: nouid@example.com\n"
	"\n"
	"dn: uid=withuid,ou=People,o=example.com,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: withuid\n"
	"mailAlternateAddress: nouid@example.com\n"
	"\n"
	"dn: uid=person,ou=People,o=example.com,o=test\n"
	"objectClass: inetOrgPerson\n"
	"uid: person\n"
	"mail: person@example.com\n"
	"\n"
	"dn: uid=half,ou=People,o=example.com,o=test\n"
	"objectClass: inetMailUser\n"
	"uid: half\n"
	"mail: half@example.com\n"
	"\n"
	"dn: uid=stray,ou=People,o=example.com,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: stray\n"
	"mail: stray@example.org\n"
	"\n"
	"dn: uid=folded,ou=People,o=example.com,o=test\n"
	"objectClass: inetMailUser\n"
	"# a comment inside an entry\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: folded\n"
	"cn:: Wm/DqyBGb2xk\n"
	"mail: fol\n"
	" ded@example.com\n"
	"description: trailing   \n"
	"description:: dHJhaWxpbmcgIA==\n"
	"jpegPhoto:: YmluAGFyeQ==\n"
	"cn;lang-en: Zoe Fold\n"
	"\n"
	"dn: uid=held,ou=People,o=example.com,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: held\n"
	"mail: held@example.com\n"
	"mailUserStatus: hold\n"
	"userPassword: heldpw\n"
	"\n"
	"dn: uid=inactive,ou=People,o=example.com,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: inactive\n"
	"mail: inactive@example.com\n"
	"inetUserStatus: inactive\n"
	"userPassword: inactivepw\n"
	"\n"
	"dn: uid=overquota,ou=People,o=example.com,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: overquota\n"
	"mail: overquota@example.com\n"
	"mailUserStatus: overquota\n"
	"userPassword: overpw\n"
	"\n"
	"dn: uid=deleted,ou=People,o=example.com,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: deleted\n"
	"mail: deleted@example.com\n"
	"inetUserStatus: deleted\n"
	"userPassword: deletedpw\n"
	"\n"
	"dn: uid=sha,ou=People,o=example.com,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: sha\n"
	"mail: sha@example.com\n"
	"userPassword:: e1NIQX01ZW42RzZNZXpScm9UM1hLcWtkUE9tWS9CZlE9\n"
	"\n"
	"dn: uid=sha256,ou=People,o=example.com,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: sha256\n"
	"mail: sha256@example.com\n"
	"userPassword: {SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols=\n"
	"\n"
	"dn: uid=ssha256,ou=People,o=example.com,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: ssha256\n"
	"mail: ssha256@example.com\n"
	"userPassword: {SSHA256}oBmrdHcA6OZEkkCLeXh71YAerbvhXz1qqwjrPsXmEtNzYWx0c2FsdA==\n"
	"\n"
	"dn: uid=ssha512,ou=People,o=example.com,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: ssha512\n"
	"mail: ssha512@example.com\n"
	"userPassword: {ssha512}iRjXxi6rhPYpuxX1j9XfoMia+YOZ6MBLltGn46bREX+b3os6Fh/Dl8WNN5\n"
	" YGrc4n7fSBhWch1IoYiLBEukHNAE5hQ2w=\n"
	"\n"
	"dn: uid=smd5,ou=People,o=example.com,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: smd5\n"
	"mail: smd5@example.com\n"
	"userPassword: {SMD5}F181LfrvtwhsBmo25pvgnHBlcHBlcg==\n"
	"\n"
	"dn: uid=crypt,ou=People,o=example.com,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: crypt\n"
	"mail: crypt@example.com\n"
	"userPassword: {CRYPT}$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S"
	"5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1\n"
	"\n"
	"dn: uid=md5crypt,ou=People,o=example.com,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: md5crypt\n"
	"mail: md5crypt@example.com\n"
	"userPassword: {crypt}$1$abc$iCQ2D3nhptRYi27fDYv2s1\n"
	"\n"
	"dn: uid=clear,ou=People,o=example.com,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: clear\n"
	"mail: clear@example.com\n"
	"userPassword: {CLEARTEXT}clearpw\n"
	"\n"
	"dn: uid=argon,ou=People,o=example.com,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: argon\n"
	"mail: argon@example.com\n"
	"userPassword: {ARGON2}xyz\n"
	"\n"
	"dn: uid=broken,ou=People,o=example.com,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: broken\n"
	"mail: broken@example.com\n"
	"userPassword: {SSHA}!!!!\n"
	"\n"
	"dn: uid=nopw,ou=People,o=example.com,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: nopw\n"
	"mail: nopw@example.com\n"
	"\n"
	"dn: ou=Groups,o=example.com,o=test\n"
	"objectClass: organizationalUnit\n"
	"\n"
	"dn: cn=staff,ou=Groups,o=example.com,o=test\n"
	"objectClass: groupOfUniqueNames\n"
	"objectClass: inetMailGroup\n"
	"objectClass: inetLocalMailRecipient\n"
	"cn: staff\n"
	"mail: staff@example.com\n"
	"mailDeliveryOption: members\n"
	"inetMailGroupStatus: active\n"
	"mgrpErrorsTo: owner@example.com\n"
	"mgrpRFC822MailMember: ext@example.net\n"
	"rfc822MailMember: Carol@Example.ORG\n"
	"uniqueMember: UID=Alice, OU=People,o=example.com,o=test\n"
	"uniqueMember: uid=gone,ou=People,o=example.com,o=test\n"
	"member: uid=bob,ou=People,o=example.com,o=test\n"
	"userPassword: staffpw\n"
	"\n"
	"dn: cn=dynamic,ou=Groups,o=example.com,o=test\n"
	"objectClass: inetMailGroup\n"
	"objectClass: inetLocalMailRecipient\n"
	"cn: dynamic\n"
	"mail: dynamic@example.com\n"
	"memberURL: ldap:///ou=People,o=example.com,o=test??sub?(departmentNumber=42)\n"
	"\n"
	"dn: cn=sub,ou=Groups,o=example.com,o=test\n"
	"objectClass: inetMailGroup\n"
	"objectClass: inetLocalMailRecipient\n"
	"cn: sub\n"
	"mail: sub@example.com\n"
	"mgrpRFC822MailMember: subscriber@example.net\n"
	"\n"
	"dn: cn=team,ou=Groups,o=example.com,o=test\n"
	"objectClass: inetMailGroup\n"
	"objectClass: inetLocalMailRecipient\n"
	"cn: team\n"
	"mail: team@example.com\n"
	"mgrpRFC822MailMember: alice@example.com\n"
	"mgrpRFC822MailMember: sub@example.com\n"
	"uniqueMember: cn=staff,ou=Groups,o=example.com,o=test\n"
	"uniqueMember: cn=dynamic,ou=Groups,o=example.com,o=test\n"
	"\n"
	"dn: cn=loop-a,ou=Groups,o=example.com,o=test\n"
	"objectClass: inetMailGroup\n"
	"objectClass: inetLocalMailRecipient\n"
	"mail: loop-a@example.com\n"
	"mgrpRFC822MailMember: a-member@example.net\n"
	"uniqueMember: cn=loop-b,ou=Groups,o=example.com,o=test\n"
	"\n"
	"dn: cn=loop-b,ou=Groups,o=example.com,o=test\n"
	"objectClass: inetMailGroup\n"
	"objectClass: inetLocalMailRecipient\n"
	"mail: loop-b@example.com\n"
	"mgrpRFC822MailMember: loop-a@example.com\n"
	"mgrpRFC822MailMember: b-member@example.net\n"
	"uniqueMember: cn=loop-a,ou=Groups,o=example.com,o=test\n"
	"\n"
	"dn: cn=self,ou=Groups,o=example.com,o=test\n"
	"objectClass: inetMailGroup\n"
	"objectClass: inetLocalMailRecipient\n"
	"cn: self\n"
	"mail: self@example.com\n"
	"mgrpRFC822MailMember: SELF@example.com\n"
	"mgrpRFC822MailMember: x@example.net\n"
	"uniqueMember: cn=self,ou=Groups,o=example.com,o=test\n"
	"memberURL: ldap:///ou=Groups,o=example.com,o=test??one?(cn=self)\n"
	"\n"
	"dn: cn=closed-list,ou=Groups,o=example.com,o=test\n"
	"objectClass: inetMailGroup\n"
	"objectClass: inetLocalMailRecipient\n"
	"mail: closed-list@example.com\n"
	"inetMailGroupStatus: disabled\n"
	"mgrpRFC822MailMember: hidden@example.net\n"
	"\n"
	"dn: cn=outer,ou=Groups,o=example.com,o=test\n"
	"objectClass: inetMailGroup\n"
	"objectClass: inetLocalMailRecipient\n"
	"mail: outer@example.com\n"
	"uniqueMember: cn=closed-list,ou=Groups,o=example.com,o=test\n"
	"mgrpRFC822MailMember: outer-member@example.net\n"
	"\n"
	"dn: cn=badurl,ou=Groups,o=example.com,o=test\n"
	"objectClass: inetMailGroup\n"
	"objectClass: inetLocalMailRecipient\n"
	"mail: badurl@example.com\n"
	"memberURL: http://example.com/\n"
	"\n"
	"dn: cn=badfilter,ou=Groups,o=example.com,o=test\n"
	"objectClass: inetMailGroup\n"
	"objectClass: inetLocalMailRecipient\n"
	"mail: badfilter@example.com\n"
	"memberURL: ldap:///o=test??sub?(cn=a\n"
	"\n"
	"dn: cn=big,ou=Groups,o=example.com,o=test\n"
	"objectClass: inetMailGroup\n"
	"objectClass: inetLocalMailRecipient\n"
	"mail: big@example.com\n"
	"mgrpRFC822MailMember: m1@example.net\n"
	"mgrpRFC822MailMember: m2@example.net\n"
	"mgrpRFC822MailMember: M2@EXAMPLE.NET\n"
	"mgrpRFC822MailMember: m3@example.net\n"
	"mgrpRFC822MailMember: m4@example.net\n"
	"mgrpRFC822MailMember: m5@example.net\n"
	"\n"
	"dn: cn=orphan,o=test\n"
	"objectClass: inetMailGroup\n"
	"objectClass: inetLocalMailRecipient\n"
	"mail: orphan@example.com\n"
	"mgrpRFC822MailMember: orphan@example.com\n"
	"mgrpRFC822MailMember: z@example.net\n"
	"\n"
	"dn: o=sub.example.com,o=test\n"
	"objectClass: organization\n"
	"sunPreferredDomain: sub.example.com\n"
	"inetDomainBaseDN: ou=Sub,ou=People,o=example.com,o=test\n"
	"\n"
	"dn: uid=subuser,ou=Sub,ou=People,o=example.com,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: subuser\n"
	"mail: subuser@sub.example.com\n"
	"\n"
	"dn: o=example.org,o=test\n"
	"objectClass: organization\n"
	"objectClass: mailDomain\n"
	"associatedDomain: example.org\n"
	"inetDomainBaseDN: ou=People,o=example.org,o=test\n"
	"\n"
	"dn: ou=People,o=example.org,o=test\n"
	"objectClass: organizationalUnit\n"
	"\n"
	"dn: uid=carol,ou=People,o=example.org,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: carol\n"
	"mail: carol@example.org\n"
	"userPassword: carolpw\n"
	"\n"
	"dn: uid=catchall,ou=People,o=example.org,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: catchall\n"
	"mail: postmaster@example.org\n"
	"mailAlternateAddress: @example.org\n"
	"userPassword: catchallpw\n"
	"\n"
	"dn: o=remote.example,o=test\n"
	"objectClass: organization\n"
	"objectClass: mailDomain\n"
	"associatedDomain: remote.example\n"
	"mailRoutingHosts: other.example.net\n"
	"mailRoutingHosts: another.example.net\n"
	"\n"
	"dn: o=internet\n"
	"objectClass: organization\n"
	"\n"
	"dn: dc=example,o=internet\n"
	"objectClass: domain\n"
	"dc: example\n"
	"\n"
	"dn: dc=schema1,dc=example,o=internet\n"
	"objectClass: domain\n"
	"objectClass: inetDomain\n"
	"objectClass: mailDomain\n"
	"dc: schema1\n"
	"inetDomainBaseDN: o=schema1,o=test\n"
	"\n"
	"dn: o=schema1,o=test\n"
	"objectClass: organization\n"
	"\n"
	"dn: uid=dan,o=schema1,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: dan\n"
	"mail: dan@schema1.example\n"
	"\n"
	"dn: o=closed.example,o=test\n"
	"objectClass: organization\n"
	"associatedDomain: closed.example\n"
	"inetDomainStatus: inactive\n"
	"\n"
	"dn: uid=eve,o=closed.example,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: eve\n"
	"mail: eve@closed.example\n"
	"userPassword: evepw\n"
	"\n"
	"dn: uid=vanity,o=test\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: vanity\n"
	"mail: joe@vanity.example\n";

static const ImtaDirectoryOptions test_options = {
	.cache_size = 100,
	.cache_ttl = 600,
	.negative_ttl = 60,
	.local_host = "Mail.Example.COM.",
};

static ImtaDirectory *
open_test_directory(void)
{
	g_autofree char *path = write_file("test.ldif", TEST_LDIF);
	g_autoptr(GError) error = NULL;
	ImtaDirectory *dir = imta_directory_open_ldif(path, &test_options, &error);

	g_assert_no_error(error);
	g_assert_nonnull(dir);
	return dir;
}

static char *
join_addresses(GPtrArray *addresses)
{
	GString *out = g_string_new(NULL);

	for (guint i = 0; i < addresses->len; i++)
		g_string_append_printf(out, "%s%s", i > 0 ? " " : "",
				       (const char *)g_ptr_array_index(addresses, i));
	return g_string_free(out, FALSE);
}

static char *
join_strv(char **values)
{
	return g_strjoinv(" ", values);
}

/* ---------------------------------------------------------------------- */
/* Normalisation. */

typedef struct {
	const char *input;
	const char *expected;
} StringCase;

static const StringCase dn_cases[] = {
	{ "uid=Alice,ou=People,o=Example", "uid=alice,ou=people,o=example" },
	{ "uid=alice, ou=People, o=example", "uid=alice,ou=people,o=example" },
	{ "  uid = alice ,ou=people  ", "uid=alice,ou=people" },
	{ "cn=a+sn=b,o=x", "cn=a+sn=b,o=x" },
	{ "cn=a + sn=b,o=x", "cn=a+sn=b,o=x" },
	{ "cn=Smith\\, John,o=x", "cn=smith\\, john,o=x" },
	{ "cn=trail\\ ,o=x", "cn=trail\\ ,o=x" },
	{ "cn=Jos\xc3\x89,o=x", "cn=jos\xc3\xa9,o=x" },
	{ "", "" },
};

static void
test_normalize_dn(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(dn_cases); i++) {
		g_autofree char *norm = imta_dir_dn_normalize(dn_cases[i].input);

		g_assert_cmpstr(norm, ==, dn_cases[i].expected);
	}
}

static const StringCase address_cases[] = {
	{ "Alice@Example.COM", "alice@example.com" },
	{ "alice@example.com.", "alice@example.com" },
	{ "\"a@b\"@Example.com", "\"a@b\"@example.com" },
	{ "@example.org", "@example.org" },
	{ "alice", NULL },
	{ "alice@", NULL },
	{ "alice@.", NULL },
	{ "", NULL },
};

static void
test_normalize_address(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(address_cases); i++) {
		g_autofree char *norm = imta_dir_address_normalize(address_cases[i].input);

		g_assert_cmpstr(norm, ==, address_cases[i].expected);
	}
}

typedef struct {
	const char *dn;
	const char *base;
	ImtaDirScope scope;
	gboolean in;
} ScopeCase;

static const ScopeCase scope_cases[] = {
	{ "uid=a,ou=p,o=x", "ou=p,o=x", IMTA_DIR_SCOPE_SUBTREE, TRUE },
	{ "uid=a,ou=p,o=x", "o=x", IMTA_DIR_SCOPE_SUBTREE, TRUE },
	{ "uid=a,ou=p,o=x", "uid=a,ou=p,o=x", IMTA_DIR_SCOPE_SUBTREE, TRUE },
	{ "uid=a,ou=p,o=x", "o=y", IMTA_DIR_SCOPE_SUBTREE, FALSE },
	{ "uid=a,ou=p,o=xx", "o=x", IMTA_DIR_SCOPE_SUBTREE, FALSE },
	{ "uid=a,ou=po=x", "o=x", IMTA_DIR_SCOPE_SUBTREE, FALSE },
	{ "cn=a\\,o=x", "o=x", IMTA_DIR_SCOPE_SUBTREE, FALSE },
	{ "cn=a\\\\,o=x", "o=x", IMTA_DIR_SCOPE_SUBTREE, TRUE },
	{ "uid=a,ou=p,o=x", "", IMTA_DIR_SCOPE_SUBTREE, TRUE },
	{ "uid=a,ou=p,o=x", "ou=p,o=x", IMTA_DIR_SCOPE_ONE, TRUE },
	{ "uid=a,ou=p,o=x", "o=x", IMTA_DIR_SCOPE_ONE, FALSE },
	{ "ou=p,o=x", "ou=p,o=x", IMTA_DIR_SCOPE_ONE, FALSE },
	{ "o=x", "", IMTA_DIR_SCOPE_ONE, TRUE },
	{ "ou=p,o=x", "", IMTA_DIR_SCOPE_ONE, FALSE },
	{ "ou=p,o=x", "ou=p,o=x", IMTA_DIR_SCOPE_BASE, TRUE },
	{ "uid=a,ou=p,o=x", "ou=p,o=x", IMTA_DIR_SCOPE_BASE, FALSE },
};

static void
test_dn_scope(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(scope_cases); i++) {
		const ScopeCase *c = &scope_cases[i];

		g_test_message("dn %s base %s scope %d", c->dn, c->base, c->scope);
		g_assert_cmpint(imta_dir_dn_in_scope(c->dn, c->base, c->scope), ==, c->in);
	}
}

/* ---------------------------------------------------------------------- */
/* Address lookups. */

typedef struct {
	const char *address;
	ImtaDirStatus status;
	const char *dn;
} AddressCase;

static const AddressCase address_lookup_cases[] = {
	/* mail, alternate and equivalent, in any case. */
	{ "alice@example.com", IMTA_DIR_FOUND, "uid=alice,ou=People,o=example.com,o=test" },
	{ "ALICE@EXAMPLE.COM", IMTA_DIR_FOUND, "uid=alice,ou=People,o=example.com,o=test" },
	{ "alice@example.com.", IMTA_DIR_FOUND, "uid=alice,ou=People,o=example.com,o=test" },
	{ "Alice.Smith@example.com", IMTA_DIR_FOUND,
	  "uid=alice,ou=People,o=example.com,o=test" },
	{ "a.smith@example.com", IMTA_DIR_FOUND, "uid=alice,ou=People,o=example.com,o=test" },
	{ "asmith@example.com", IMTA_DIR_FOUND, "uid=alice,ou=People,o=example.com,o=test" },
	/* A domain alias finds the user of the canonical domain. */
	{ "alice@alias.example.com", IMTA_DIR_FOUND,
	  "uid=alice,ou=People,o=example.com,o=test" },
	{ "bob@example.com", IMTA_DIR_FOUND, "uid=bob, ou=People, o=example.com, o=test" },
	{ "nobody@example.com", IMTA_DIR_NOT_FOUND, NULL },
	/* Not mail entries. */
	{ "person@example.com", IMTA_DIR_NOT_FOUND, NULL },
	{ "half@example.com", IMTA_DIR_NOT_FOUND, NULL },
	/* Outside the subtree of its domain. */
	{ "stray@example.org", IMTA_DIR_FOUND, "uid=catchall,ou=People,o=example.org,o=test" },
	/* Catch-all only without an exact entry. */
	{ "carol@example.org", IMTA_DIR_FOUND, "uid=carol,ou=People,o=example.org,o=test" },
	{ "anyone@example.org", IMTA_DIR_FOUND, "uid=catchall,ou=People,o=example.org,o=test" },
	{ "postmaster@example.org", IMTA_DIR_FOUND,
	  "uid=catchall,ou=People,o=example.org,o=test" },
	{ "@example.org", IMTA_DIR_NOT_FOUND, NULL },
	/* Continuation lines. */
	{ "folded@example.com", IMTA_DIR_FOUND, "uid=folded,ou=People,o=example.com,o=test" },
	/* Several claimants: the deleted one and the uid-less one drop out. */
	{ "pick@example.com", IMTA_DIR_FOUND, "uid=pick2,ou=People,o=example.com,o=test" },
	{ "nouid@example.com", IMTA_DIR_FOUND, "uid=withuid,ou=People,o=example.com,o=test" },
	/* Groups. */
	{ "staff@example.com", IMTA_DIR_FOUND, "cn=staff,ou=Groups,o=example.com,o=test" },
	/* Schema 1 domain, and a domain without an entry. */
	{ "dan@schema1.example", IMTA_DIR_FOUND, "uid=dan,o=schema1,o=test" },
	{ "joe@vanity.example", IMTA_DIR_FOUND, "uid=vanity,o=test" },
	/* Not addresses at all. */
	{ "alice", IMTA_DIR_NOT_FOUND, NULL },
	{ "alice@", IMTA_DIR_NOT_FOUND, NULL },
	{ "", IMTA_DIR_NOT_FOUND, NULL },
};

static void
test_lookup_address(void)
{
	g_autoptr(ImtaDirectory) dir = open_test_directory();

	for (guint i = 0; i < G_N_ELEMENTS(address_lookup_cases); i++) {
		const AddressCase *c = &address_lookup_cases[i];
		g_autoptr(ImtaDirEntry) entry = NULL;
		g_autoptr(GError) error = NULL;
		ImtaDirStatus status;

		g_test_message("address %s", c->address);
		status = imta_directory_lookup_address(dir, c->address, &entry, &error);
		g_assert_no_error(error);
		g_assert_cmpint(status, ==, c->status);
		if (c->dn == NULL) {
			g_assert_null(entry);
			continue;
		}
		g_assert_nonnull(entry);
		g_assert_cmpstr(entry->dn, ==, c->dn);
	}
}

static void
test_lookup_ambiguous(void)
{
	g_autoptr(ImtaDirectory) dir = open_test_directory();
	g_autoptr(ImtaDirEntry) entry = NULL;
	g_autoptr(GError) error = NULL;
	ImtaDirectoryStats stats;
	ImtaDirStatus status;

	for (guint round = 0; round < 2; round++) {
		status = imta_directory_lookup_address(dir, "Dup@Example.com", &entry, &error);
		g_assert_cmpint(status, ==, IMTA_DIR_TEMPFAIL);
		g_assert_null(entry);
		g_assert_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_AMBIGUOUS);
		g_assert_cmpstr(error->message, ==,
				"ambiguous directory: 2 entries claim \"dup@example.com\": "
				"\"uid=dup1,ou=People,o=example.com,o=test\", "
				"\"uid=dup2,ou=People,o=example.com,o=test\"");
		g_clear_error(&error);
	}
	/* A temporary failure is never cached: only the domain answer is. */
	imta_directory_stats(dir, &stats);
	g_assert_cmpuint(stats.entries, ==, 1);
}

static void
test_lookup_attributes(void)
{
	g_autoptr(ImtaDirectory) dir = open_test_directory();
	g_autoptr(ImtaDirEntry) alice = NULL;
	g_autoptr(ImtaDirEntry) folded = NULL;
	g_autoptr(ImtaDirEntry) staff = NULL;
	g_autofree char *text = NULL;

	g_assert_cmpint(imta_directory_lookup_address(dir, "alice@example.com", &alice, NULL),
			==, IMTA_DIR_FOUND);
	g_assert_cmpint(alice->kind, ==, IMTA_DIR_USER);
	g_assert_cmpstr(alice->uid, ==, "alice");
	g_assert_cmpstr(alice->cn, ==, "Alice Smith");
	g_assert_cmpstr(alice->mail, ==, "Alice@Example.com");
	text = join_strv(alice->alternate_addresses);
	g_assert_cmpstr(text, ==, "alice.smith@example.com a.smith@example.com");
	g_clear_pointer(&text, g_free);
	text = join_strv(alice->equivalent_addresses);
	g_assert_cmpstr(text, ==, "asmith@example.com");
	g_clear_pointer(&text, g_free);
	g_assert_cmpstr(alice->mail_host, ==, "mail.example.com");
	text = join_strv(alice->delivery_options);
	g_assert_cmpstr(text, ==, "mailbox forward");
	g_clear_pointer(&text, g_free);
	text = join_strv(alice->forwarding_addresses);
	g_assert_cmpstr(text, ==, "alice@elsewhere.example.net");
	g_clear_pointer(&text, g_free);
	g_assert_cmpint(alice->status, ==, IMTA_DIR_STATUS_ACTIVE);
	g_assert_cmpint(alice->quota_bytes, ==, 10 * 1024 * 1024);
	g_assert_cmpint(alice->quota_messages, ==, 1000);
	g_assert_cmpstr(alice->message_store, ==, "primary");
	g_assert_cmpstr(alice->password, ==, "{SSHA}NynVbb0ELgRLvE0yjco5di47ByIaKzxNXm9wgQ==");
	g_assert_cmpstr(alice->domain, ==, "example.com");
	g_assert_cmpstr(imta_dir_entry_attr(alice, "departmentnumber"), ==, "42");
	g_assert_null(imta_dir_entry_attr(alice, "nosuchattribute"));
	g_assert_null(alice->rfc822_members[0]);
	g_assert_null(alice->member_dns[0]);
	g_assert_null(alice->member_urls[0]);
	g_assert_null(alice->errors_to);

	/* base64, continuation, trailing spaces, options, binary values. */
	g_assert_cmpint(imta_directory_lookup_address(dir, "folded@example.com", &folded, NULL),
			==, IMTA_DIR_FOUND);
	g_assert_cmpstr(folded->cn, ==, "Zo\xc3\xab Fold");
	g_assert_cmpstr(((char **)g_hash_table_lookup(folded->attributes, "cn"))[1], ==,
			"Zoe Fold");
	g_assert_cmpstr(folded->mail, ==, "folded@example.com");
	text = join_strv(g_hash_table_lookup(folded->attributes, "description"));
	g_assert_cmpstr(text, ==, "trailing trailing  ");
	g_clear_pointer(&text, g_free);
	g_assert_null(g_hash_table_lookup(folded->attributes, "jpegphoto"));
	g_assert_cmpint(folded->quota_bytes, ==, IMTA_DIR_QUOTA_DEFAULT);
	g_assert_cmpint(folded->quota_messages, ==, IMTA_DIR_QUOTA_DEFAULT);
	g_assert_null(folded->mail_host);
	g_assert_null(folded->delivery_options[0]);

	g_assert_cmpint(imta_directory_lookup_address(dir, "staff@example.com", &staff, NULL),
			==, IMTA_DIR_FOUND);
	g_assert_cmpint(staff->kind, ==, IMTA_DIR_GROUP);
	g_assert_null(staff->uid);
	text = join_strv(staff->rfc822_members);
	g_assert_cmpstr(text, ==, "ext@example.net Carol@Example.ORG");
	g_clear_pointer(&text, g_free);
	text = join_strv(staff->member_dns);
	g_assert_cmpstr(text, ==, "UID=Alice, OU=People,o=example.com,o=test "
			"uid=gone,ou=People,o=example.com,o=test "
			"uid=bob,ou=People,o=example.com,o=test");
	g_clear_pointer(&text, g_free);
	g_assert_cmpstr(staff->errors_to, ==, "owner@example.com");
	text = join_strv(staff->delivery_options);
	g_assert_cmpstr(text, ==, "members");
}

typedef struct {
	const char *dn;
	ImtaDirStatus status;
	const char *mail;
} DnCase;

static const DnCase dn_lookup_cases[] = {
	{ "uid=alice,ou=People,o=example.com,o=test", IMTA_DIR_FOUND, "Alice@Example.com" },
	{ "UID=ALICE, OU=PEOPLE, O=EXAMPLE.COM, O=TEST", IMTA_DIR_FOUND, "Alice@Example.com" },
	{ "uid=bob,ou=people,o=example.com,o=test", IMTA_DIR_FOUND, "bob@example.com" },
	{ "cn=staff,ou=Groups,o=example.com,o=test", IMTA_DIR_FOUND, "staff@example.com" },
	{ "uid=person,ou=People,o=example.com,o=test", IMTA_DIR_NOT_FOUND, NULL },
	{ "o=example.com,o=test", IMTA_DIR_NOT_FOUND, NULL },
	{ "uid=gone,ou=People,o=example.com,o=test", IMTA_DIR_NOT_FOUND, NULL },
	{ "", IMTA_DIR_NOT_FOUND, NULL },
};

static void
test_lookup_dn(void)
{
	g_autoptr(ImtaDirectory) dir = open_test_directory();

	for (guint i = 0; i < G_N_ELEMENTS(dn_lookup_cases); i++) {
		const DnCase *c = &dn_lookup_cases[i];
		g_autoptr(ImtaDirEntry) entry = NULL;
		g_autoptr(GError) error = NULL;

		g_test_message("dn %s", c->dn);
		g_assert_cmpint(imta_directory_lookup_dn(dir, c->dn, &entry, &error), ==,
				c->status);
		g_assert_no_error(error);
		g_assert_cmpstr(entry != NULL ? entry->mail : NULL, ==, c->mail);
	}
}

/* ---------------------------------------------------------------------- */
/* Statuses and quotas, straight from attributes. */

static GHashTable *
make_attributes(const char *const *pairs)
{
	GHashTable *attrs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
						  (GDestroyNotify)g_strfreev);

	for (guint i = 0; pairs[i] != NULL; i += 2) {
		char **old = g_hash_table_lookup(attrs, pairs[i]);
		guint n = old != NULL ? g_strv_length(old) : 0;
		char **values = g_new0(char *, n + 2);

		for (guint j = 0; j < n; j++)
			values[j] = g_strdup(old[j]);
		values[n] = g_strdup(pairs[i + 1]);
		g_hash_table_insert(attrs, g_strdup(pairs[i]), values);
	}
	return attrs;
}

typedef struct {
	ImtaDirKind kind;
	const char *general;     /* inetUserStatus */
	const char *mail;        /* mailUserStatus / inetMailGroupStatus */
	ImtaDirUserStatus expected;
} StatusCase;

static const StatusCase status_cases[] = {
	{ IMTA_DIR_USER, NULL, NULL, IMTA_DIR_STATUS_ACTIVE },
	{ IMTA_DIR_USER, "active", "active", IMTA_DIR_STATUS_ACTIVE },
	{ IMTA_DIR_USER, " Active ", NULL, IMTA_DIR_STATUS_ACTIVE },
	{ IMTA_DIR_USER, NULL, "inactive", IMTA_DIR_STATUS_INACTIVE },
	{ IMTA_DIR_USER, NULL, "deleted", IMTA_DIR_STATUS_DELETED },
	{ IMTA_DIR_USER, NULL, "hold", IMTA_DIR_STATUS_HOLD },
	{ IMTA_DIR_USER, NULL, "OverQuota", IMTA_DIR_STATUS_OVERQUOTA },
	{ IMTA_DIR_USER, NULL, "bogus", IMTA_DIR_STATUS_INACTIVE },
	{ IMTA_DIR_USER, NULL, "disabled", IMTA_DIR_STATUS_INACTIVE },
	{ IMTA_DIR_USER, NULL, "", IMTA_DIR_STATUS_INACTIVE },
	{ IMTA_DIR_USER, "inactive", NULL, IMTA_DIR_STATUS_INACTIVE },
	{ IMTA_DIR_USER, "deleted", NULL, IMTA_DIR_STATUS_DELETED },
	/* The stricter of the two wins. */
	{ IMTA_DIR_USER, "inactive", "hold", IMTA_DIR_STATUS_INACTIVE },
	{ IMTA_DIR_USER, "active", "hold", IMTA_DIR_STATUS_HOLD },
	{ IMTA_DIR_USER, "deleted", "active", IMTA_DIR_STATUS_DELETED },
	{ IMTA_DIR_USER, "active", "overquota", IMTA_DIR_STATUS_OVERQUOTA },
	{ IMTA_DIR_USER, "inactive", "deleted", IMTA_DIR_STATUS_DELETED },
	{ IMTA_DIR_USER, "hold", "overquota", IMTA_DIR_STATUS_HOLD },
	/* Groups: inetMailGroupStatus, with "disabled". */
	{ IMTA_DIR_GROUP, NULL, NULL, IMTA_DIR_STATUS_ACTIVE },
	{ IMTA_DIR_GROUP, NULL, "active", IMTA_DIR_STATUS_ACTIVE },
	{ IMTA_DIR_GROUP, NULL, "disabled", IMTA_DIR_STATUS_DISABLED },
	{ IMTA_DIR_GROUP, NULL, "inactive", IMTA_DIR_STATUS_INACTIVE },
	{ IMTA_DIR_GROUP, NULL, "deleted", IMTA_DIR_STATUS_DELETED },
	{ IMTA_DIR_GROUP, NULL, "hold", IMTA_DIR_STATUS_INACTIVE },
	{ IMTA_DIR_GROUP, "inactive", "disabled", IMTA_DIR_STATUS_DISABLED },
	{ IMTA_DIR_GROUP, "deleted", "disabled", IMTA_DIR_STATUS_DELETED },
};

static void
test_status_values(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(status_cases); i++) {
		const StatusCase *c = &status_cases[i];
		const char *pairs[8] = { NULL };
		guint n = 0;
		g_autoptr(GHashTable) attrs = NULL;
		g_autoptr(ImtaDirEntry) entry = NULL;
		g_autoptr(GError) error = NULL;

		if (c->general != NULL) {
			pairs[n++] = "inetuserstatus";
			pairs[n++] = c->general;
		}
		if (c->mail != NULL) {
			pairs[n++] = c->kind == IMTA_DIR_GROUP ? "inetmailgroupstatus"
							       : "mailuserstatus";
			pairs[n++] = c->mail;
		}
		attrs = make_attributes(pairs);
		entry = imta_dir_entry_build("uid=x,o=y", c->kind, attrs, NULL, &error);
		g_assert_no_error(error);
		g_test_message("case %u", i);
		g_assert_cmpint(entry->status, ==, c->expected);
	}
}

typedef struct {
	const char *bytes;
	const char *messages;
	gint64 expected_bytes;
	gint64 expected_messages;
	const char *error;
} QuotaCase;

static const QuotaCase quota_cases[] = {
	{ NULL, NULL, IMTA_DIR_QUOTA_DEFAULT, IMTA_DIR_QUOTA_DEFAULT, NULL },
	{ "10M", "1000", 10485760, 1000, NULL },
	{ "10m", NULL, 10485760, IMTA_DIR_QUOTA_DEFAULT, NULL },
	{ "1K", NULL, 1024, IMTA_DIR_QUOTA_DEFAULT, NULL },
	{ "2G", NULL, G_GINT64_CONSTANT(2147483648), IMTA_DIR_QUOTA_DEFAULT, NULL },
	{ "4096G", NULL, G_GINT64_CONSTANT(4398046511104), IMTA_DIR_QUOTA_DEFAULT, NULL },
	{ "123", "0", 123, 0, NULL },
	{ "0", NULL, 0, IMTA_DIR_QUOTA_DEFAULT, NULL },
	{ "-1", "-1", IMTA_DIR_QUOTA_UNLIMITED, IMTA_DIR_QUOTA_UNLIMITED, NULL },
	{ "-2", "-2", IMTA_DIR_QUOTA_DEFAULT, IMTA_DIR_QUOTA_DEFAULT, NULL },
	{ "lots", NULL, 0, 0, "mailQuota: expected a size in bytes with an optional K, M or G "
	  "suffix, -1 (unlimited) or -2 (default), got \"lots\"" },
	{ "-3", NULL, 0, 0, "mailQuota: expected a size in bytes with an optional K, M or G "
	  "suffix, -1 (unlimited) or -2 (default), got \"-3\"" },
	{ "1T", NULL, 0, 0, "mailQuota: expected a size in bytes with an optional K, M or G "
	  "suffix, -1 (unlimited) or -2 (default), got \"1T\"" },
	{ "4097G", NULL, 0, 0, "mailQuota: \"4097G\" is more than the maximum of 4096G" },
	{ NULL, "many", 0, 0, "mailMsgQuota: expected a number of messages, -1 (unlimited) or "
	  "-2 (default), got \"many\"" },
	{ NULL, "1K", 0, 0, "mailMsgQuota: expected a number of messages, -1 (unlimited) or "
	  "-2 (default), got \"1K\"" },
};

static void
test_quota_values(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(quota_cases); i++) {
		const QuotaCase *c = &quota_cases[i];
		const char *pairs[6] = { NULL };
		guint n = 0;
		g_autoptr(GHashTable) attrs = NULL;
		g_autoptr(ImtaDirEntry) entry = NULL;
		g_autoptr(GError) error = NULL;

		if (c->bytes != NULL) {
			pairs[n++] = "mailquota";
			pairs[n++] = c->bytes;
		}
		if (c->messages != NULL) {
			pairs[n++] = "mailmsgquota";
			pairs[n++] = c->messages;
		}
		attrs = make_attributes(pairs);
		entry = imta_dir_entry_build("uid=x,o=y", IMTA_DIR_USER, attrs, NULL, &error);
		g_test_message("case %u", i);
		if (c->error != NULL) {
			g_assert_null(entry);
			g_assert_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA);
			g_assert_cmpstr(error->message, ==, c->error);
			continue;
		}
		g_assert_no_error(error);
		g_assert_cmpint(entry->quota_bytes, ==, c->expected_bytes);
		g_assert_cmpint(entry->quota_messages, ==, c->expected_messages);
	}
}

typedef struct {
	const char *address;
	ImtaDirUserStatus status;
	const char *domain;
} EntryStatusCase;

static const EntryStatusCase entry_status_cases[] = {
	{ "alice@example.com", IMTA_DIR_STATUS_ACTIVE, "example.com" },
	{ "held@example.com", IMTA_DIR_STATUS_HOLD, "example.com" },
	{ "inactive@example.com", IMTA_DIR_STATUS_INACTIVE, "example.com" },
	{ "overquota@example.com", IMTA_DIR_STATUS_OVERQUOTA, "example.com" },
	{ "deleted@example.com", IMTA_DIR_STATUS_DELETED, "example.com" },
	{ "carol@example.org", IMTA_DIR_STATUS_ACTIVE, "example.org" },
	/* The closest enclosing domain subtree wins. */
	{ "subuser@sub.example.com", IMTA_DIR_STATUS_ACTIVE, "sub.example.com" },
	{ "dan@schema1.example", IMTA_DIR_STATUS_ACTIVE, "schema1.example" },
	/* The domain's status applies to its users. */
	{ "eve@closed.example", IMTA_DIR_STATUS_INACTIVE, "closed.example" },
	{ "joe@vanity.example", IMTA_DIR_STATUS_ACTIVE, NULL },
};

static void
test_status_entries(void)
{
	g_autoptr(ImtaDirectory) dir = open_test_directory();

	for (guint i = 0; i < G_N_ELEMENTS(entry_status_cases); i++) {
		const EntryStatusCase *c = &entry_status_cases[i];
		g_autoptr(ImtaDirEntry) entry = NULL;

		g_test_message("address %s", c->address);
		g_assert_cmpint(imta_directory_lookup_address(dir, c->address, &entry, NULL), ==,
				IMTA_DIR_FOUND);
		g_assert_cmpint(entry->status, ==, c->status);
		g_assert_cmpstr(entry->domain, ==, c->domain);
	}
}

/* ---------------------------------------------------------------------- */
/* Domains. */

typedef struct {
	const char *domain;
	ImtaDirStatus status;
	const char *name;
	const char *canonical;
	const char *base_dn;
} DomainCase;

static const DomainCase domain_cases[] = {
	{ "example.com", IMTA_DIR_FOUND, "example.com", "example.com", "o=example.com,o=test" },
	{ "EXAMPLE.COM.", IMTA_DIR_FOUND, "example.com", "example.com", "o=example.com,o=test" },
	{ "alias.example.com", IMTA_DIR_FOUND, "alias.example.com", "example.com",
	  "o=example.com,o=test" },
	{ "example.org", IMTA_DIR_FOUND, "example.org", "example.org",
	  "ou=People,o=example.org,o=test" },
	{ "schema1.example", IMTA_DIR_FOUND, "schema1.example", "schema1.example",
	  "o=schema1,o=test" },
	{ "example", IMTA_DIR_NOT_FOUND, NULL, NULL, NULL },
	{ "vanity.example", IMTA_DIR_NOT_FOUND, NULL, NULL, NULL },
	{ "", IMTA_DIR_NOT_FOUND, NULL, NULL, NULL },
};

static void
test_domain_lookup(void)
{
	g_autoptr(ImtaDirectory) dir = open_test_directory();
	g_autoptr(ImtaDirDomain) com = NULL;
	g_autoptr(ImtaDirDomain) closed = NULL;
	g_autofree char *hosts = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(domain_cases); i++) {
		const DomainCase *c = &domain_cases[i];
		g_autoptr(ImtaDirDomain) domain = NULL;
		g_autoptr(GError) error = NULL;

		g_test_message("domain %s", c->domain);
		g_assert_cmpint(imta_directory_lookup_domain(dir, c->domain, &domain, &error), ==,
				c->status);
		g_assert_no_error(error);
		if (c->name == NULL) {
			g_assert_null(domain);
			continue;
		}
		g_assert_cmpstr(domain->name, ==, c->name);
		g_assert_cmpstr(domain->canonical, ==, c->canonical);
		g_assert_cmpstr(domain->base_dn, ==, c->base_dn);
	}
	g_assert_cmpint(imta_directory_lookup_domain(dir, "example.com", &com, NULL), ==,
			IMTA_DIR_FOUND);
	hosts = join_strv(com->routing_hosts);
	g_assert_cmpstr(hosts, ==, "mail.example.com");
	g_assert_cmpstr(com->smart_host, ==, "smart.example.com");
	g_assert_cmpint(com->disk_quota, ==, G_GINT64_CONSTANT(1073741824));
	g_assert_cmpint(com->msg_quota, ==, IMTA_DIR_QUOTA_UNLIMITED);
	g_assert_cmpint(com->status, ==, IMTA_DIR_STATUS_ACTIVE);
	g_assert_true(g_strv_contains(g_hash_table_lookup(com->attributes, "associateddomain"),
				      "alias.example.com"));
	g_assert_cmpint(imta_directory_lookup_domain(dir, "closed.example", &closed, NULL), ==,
			IMTA_DIR_FOUND);
	g_assert_cmpint(closed->status, ==, IMTA_DIR_STATUS_INACTIVE);
	g_assert_cmpint(closed->disk_quota, ==, IMTA_DIR_QUOTA_UNLIMITED);
}

/* DOMAIN_UPLEVEL: a query is a domain, or an address when it has an '@';
 * `found` is the domain's name or the entry's uid. */
typedef struct {
	guint uplevel;
	const char *query;
	ImtaDirStatus status;
	const char *found;
} UplevelCase;

static const UplevelCase uplevel_cases[] = {
	/* Off: a subdomain without an entry is nobody's. */
	{ 0, "host1.example.com", IMTA_DIR_NOT_FOUND, NULL },
	{ 0, "bob@host1.example.com", IMTA_DIR_NOT_FOUND, NULL },
	/* Walk: the nearest parent with an entry answers, never a TLD. */
	{ 1, "host1.example.com", IMTA_DIR_FOUND, "example.com" },
	{ 1, "a.b.example.org", IMTA_DIR_FOUND, "example.org" },
	{ 1, "x.sub.example.com", IMTA_DIR_FOUND, "sub.example.com" },
	{ 1, "host1.alias.example.com", IMTA_DIR_FOUND, "alias.example.com" },
	{ 1, "example.com", IMTA_DIR_FOUND, "example.com" },
	{ 1, "host1.nowhere.example", IMTA_DIR_NOT_FOUND, NULL },
	{ 1, "example", IMTA_DIR_NOT_FOUND, NULL },
	/* Walk alone: the subdomain's addresses are still its own. */
	{ 1, "bob@host1.example.com", IMTA_DIR_NOT_FOUND, NULL },
	{ 1, "anyone@host1.example.org", IMTA_DIR_NOT_FOUND, NULL },
	/* Local part too: the parent's address, its catch-all, its canonical name. */
	{ 3, "bob@host1.example.com", IMTA_DIR_FOUND, "bob" },
	{ 3, "asmith@a.b.example.com", IMTA_DIR_FOUND, "alice" },
	{ 3, "subuser@x.sub.example.com", IMTA_DIR_FOUND, "subuser" },
	{ 3, "bob@host1.alias.example.com", IMTA_DIR_FOUND, "bob" },
	{ 3, "anyone@host1.example.org", IMTA_DIR_FOUND, "catchall" },
	{ 3, "nobody@host1.example.com", IMTA_DIR_NOT_FOUND, NULL },
	{ 3, "bob@example.com", IMTA_DIR_FOUND, "bob" },
	/* Bit 1 means nothing without the walk. */
	{ 2, "bob@host1.example.com", IMTA_DIR_NOT_FOUND, NULL },
	{ 2, "host1.example.com", IMTA_DIR_NOT_FOUND, NULL },
};

static ImtaDirectory *
open_uplevel_directory(guint uplevel)
{
	g_autofree char *path = write_file("uplevel.ldif", TEST_LDIF);
	g_autoptr(GError) error = NULL;
	ImtaDirectoryOptions options = test_options;
	ImtaDirectory *dir;

	options.domain_uplevel = uplevel;
	dir = imta_directory_open_ldif(path, &options, &error);
	g_assert_no_error(error);
	g_assert_nonnull(dir);
	return dir;
}

static void
test_domain_uplevel(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(uplevel_cases); i++) {
		const UplevelCase *c = &uplevel_cases[i];
		g_autoptr(ImtaDirectory) dir = open_uplevel_directory(c->uplevel);
		g_autoptr(GError) error = NULL;
		g_autofree char *found = NULL;
		ImtaDirStatus status;

		g_test_message("DOMAIN_UPLEVEL=%u %s", c->uplevel, c->query);
		if (strchr(c->query, '@') != NULL) {
			g_autoptr(ImtaDirEntry) entry = NULL;

			status = imta_directory_lookup_address(dir, c->query, &entry, &error);
			found = entry != NULL ? g_strdup(entry->uid) : NULL;
		} else {
			g_autoptr(ImtaDirDomain) domain = NULL;

			status = imta_directory_lookup_domain(dir, c->query, &domain, &error);
			found = domain != NULL ? g_strdup(domain->name) : NULL;
		}
		g_assert_no_error(error);
		g_assert_cmpint(status, ==, c->status);
		g_assert_cmpstr(found, ==, c->found);
	}
}

/* A subdomain is local when the parent that answers for it is. */
static void
test_domain_uplevel_local(void)
{
	g_autoptr(ImtaDirectory) walk = open_uplevel_directory(1);
	g_autoptr(ImtaDirectory) off = open_uplevel_directory(0);

	g_assert_cmpint(imta_directory_domain_is_local(walk, "host1.example.com", NULL), ==,
			IMTA_DIR_FOUND);
	g_assert_cmpint(imta_directory_domain_is_local(walk, "host1.remote.example", NULL), ==,
			IMTA_DIR_NOT_FOUND);
	g_assert_cmpint(imta_directory_domain_is_local(off, "host1.example.com", NULL), ==,
			IMTA_DIR_NOT_FOUND);
}

typedef struct {
	const char *local_host;
	const char *domain;
	ImtaDirStatus status;
} LocalCase;

static const LocalCase local_cases[] = {
	/* mailRoutingHosts names this host. */
	{ "Mail.Example.COM.", "example.com", IMTA_DIR_FOUND },
	{ "mail.example.com", "alias.example.com", IMTA_DIR_FOUND },
	{ "other.example.net", "example.com", IMTA_DIR_NOT_FOUND },
	/* mailRoutingHosts absent. */
	{ "mail.example.com", "example.org", IMTA_DIR_FOUND },
	{ "anything.example", "example.org", IMTA_DIR_FOUND },
	/* Routed elsewhere, unless this is that host. */
	{ "mail.example.com", "remote.example", IMTA_DIR_NOT_FOUND },
	{ "another.example.net", "remote.example", IMTA_DIR_FOUND },
	/* No domain entry. */
	{ "mail.example.com", "vanity.example", IMTA_DIR_NOT_FOUND },
	{ "mail.example.com", "nowhere.example", IMTA_DIR_NOT_FOUND },
};

static void
test_domain_is_local(void)
{
	g_autofree char *path = write_file("test.ldif", TEST_LDIF);

	for (guint i = 0; i < G_N_ELEMENTS(local_cases); i++) {
		const LocalCase *c = &local_cases[i];
		ImtaDirectoryOptions options = test_options;
		g_autoptr(ImtaDirectory) dir = NULL;
		g_autoptr(GError) error = NULL;

		options.local_host = c->local_host;
		dir = imta_directory_open_ldif(path, &options, &error);
		g_assert_no_error(error);
		g_test_message("host %s domain %s", c->local_host, c->domain);
		g_assert_cmpint(imta_directory_domain_is_local(dir, c->domain, &error), ==,
				c->status);
		g_assert_no_error(error);
	}
}

/* ---------------------------------------------------------------------- */
/* Groups. */

typedef struct {
	const char *group;
	guint limit;
	ImtaDirStatus status;
	const char *addresses;     /* space-separated, or the error message */
} GroupCase;

static const GroupCase group_cases[] = {
	/* rfc822 members as written, member DNs by their mail, a dangling
	 * DN skipped, duplicates (any case) dropped. */
	{ "staff@example.com", 0, IMTA_DIR_FOUND,
	  "ext@example.net Carol@Example.ORG Alice@Example.com bob@example.com" },
	/* memberURL over the directory. */
	{ "dynamic@example.com", 0, IMTA_DIR_FOUND, "Alice@Example.com bob@example.com" },
	/* Nested by address and by DN. */
	{ "team@example.com", 0, IMTA_DIR_FOUND,
	  "alice@example.com subscriber@example.net ext@example.net Carol@Example.ORG "
	  "bob@example.com" },
	/* Loops end quietly. */
	{ "loop-a@example.com", 0, IMTA_DIR_FOUND, "a-member@example.net b-member@example.net" },
	{ "loop-b@example.com", 0, IMTA_DIR_FOUND, "a-member@example.net b-member@example.net" },
	{ "self@example.com", 0, IMTA_DIR_FOUND, "x@example.net" },
	/* Found by DN only (outside its domain's subtree), naming itself. */
	{ "cn=orphan,o=test", 0, IMTA_DIR_FOUND, "z@example.net" },
	/* A disabled nested group stays an address for delivery to refuse. */
	{ "outer@example.com", 0, IMTA_DIR_FOUND,
	  "outer-member@example.net closed-list@example.com" },
	/* Limits. */
	{ "big@example.com", 0, IMTA_DIR_FOUND,
	  "m1@example.net m2@example.net m3@example.net m4@example.net m5@example.net" },
	{ "big@example.com", 5, IMTA_DIR_FOUND,
	  "m1@example.net m2@example.net m3@example.net m4@example.net m5@example.net" },
	{ "big@example.com", 4, IMTA_DIR_NOT_FOUND,
	  "group \"big@example.com\" expands to more than 4 addresses" },
	{ "team@example.com", 2, IMTA_DIR_NOT_FOUND,
	  "group \"team@example.com\" expands to more than 2 addresses" },
	{ "dynamic@example.com", 1, IMTA_DIR_NOT_FOUND,
	  "group \"dynamic@example.com\" expands to more than 1 addresses" },
	/* Broken memberURLs. */
	{ "badurl@example.com", 0, IMTA_DIR_NOT_FOUND,
	  "group \"badurl@example.com\": invalid LDAP URL \"http://example.com/\": "
	  "it does not start with ldap://" },
	{ "badfilter@example.com", 0, IMTA_DIR_NOT_FOUND,
	  "group \"badfilter@example.com\": LDAP URL \"ldap:///o=test??sub?(cn=a\": "
	  "invalid LDAP filter at column 6: expected \")\" to close the \"(\" at column 1" },
};

static void
test_group_expand(void)
{
	g_autoptr(ImtaDirectory) dir = open_test_directory();

	for (guint i = 0; i < G_N_ELEMENTS(group_cases); i++) {
		const GroupCase *c = &group_cases[i];
		g_autoptr(ImtaDirEntry) group = NULL;
		g_autoptr(GPtrArray) addresses = NULL;
		g_autoptr(GError) error = NULL;
		g_autofree char *text = NULL;

		g_test_message("group %s limit %u", c->group, c->limit);
		if (strchr(c->group, '@') != NULL)
			g_assert_cmpint(imta_directory_lookup_address(dir, c->group, &group, NULL),
					==, IMTA_DIR_FOUND);
		else
			g_assert_cmpint(imta_directory_lookup_dn(dir, c->group, &group, NULL), ==,
					IMTA_DIR_FOUND);
		g_assert_cmpint(imta_directory_expand_group(dir, group, c->limit, &addresses,
							    &error), ==, c->status);
		if (c->status != IMTA_DIR_FOUND) {
			g_assert_null(addresses);
			g_assert_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA);
			g_assert_cmpstr(error->message, ==, c->addresses);
			continue;
		}
		g_assert_no_error(error);
		text = join_addresses(addresses);
		g_assert_cmpstr(text, ==, c->addresses);
	}
}

static void
test_group_deep(void)
{
	g_autoptr(GString) ldif = g_string_new("dn: o=deep\nobjectClass: organization\n");
	g_autofree char *path = NULL;
	g_autoptr(ImtaDirectory) dir = NULL;
	g_autoptr(GError) error = NULL;
	const guint levels[] = { 32, 33 };

	/* g0 -> g1 -> ... -> g40, each with one address of its own. */
	for (guint i = 0; i <= 40; i++) {
		g_string_append_printf(ldif, "\ndn: cn=g%u,o=deep\n"
				       "objectClass: inetMailGroup\n"
				       "objectClass: inetLocalMailRecipient\n"
				       "mail: g%u@deep.example\n"
				       "mgrpRFC822MailMember: m%u@example.net\n", i, i, i);
		if (i < 40)
			g_string_append_printf(ldif, "uniqueMember: cn=g%u,o=deep\n", i + 1);
	}
	path = write_file("deep.ldif", ldif->str);
	dir = imta_directory_open_ldif(path, &test_options, &error);
	g_assert_no_error(error);
	for (guint i = 0; i < G_N_ELEMENTS(levels); i++) {
		/* Starting at g(41 - n) leaves a chain of n groups. */
		g_autofree char *address = g_strdup_printf("g%u@deep.example", 41 - levels[i]);
		g_autoptr(ImtaDirEntry) group = NULL;
		g_autoptr(GPtrArray) addresses = NULL;
		ImtaDirStatus status;

		g_assert_cmpint(imta_directory_lookup_address(dir, address, &group, NULL), ==,
				IMTA_DIR_FOUND);
		status = imta_directory_expand_group(dir, group, 0, &addresses, &error);
		if (levels[i] <= 32) {
			g_assert_no_error(error);
			g_assert_cmpint(status, ==, IMTA_DIR_FOUND);
			g_assert_cmpuint(addresses->len, ==, levels[i]);
			continue;
		}
		g_assert_cmpint(status, ==, IMTA_DIR_NOT_FOUND);
		g_assert_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA);
		g_assert_cmpstr(error->message, ==, "group \"g8@deep.example\": groups nested "
				"more than 32 levels deep");
		g_clear_error(&error);
	}
}

typedef struct {
	const char *url;
	ImtaDirStatus status;
	const char *result;     /* uids, or the error message */
} UrlCase;

static const UrlCase url_cases[] = {
	{ "ldap:///ou=People,o=example.com,o=test??sub?(departmentNumber=42)", IMTA_DIR_FOUND,
	  "alice bob" },
	{ "ldap:///o=test??sub?(uid=c*)", IMTA_DIR_FOUND, "crypt clear carol catchall" },
	{ "ldap:///o=test??sub?(&(objectClass=inetMailUser)(|(uid=dan)(uid=eve)))",
	  IMTA_DIR_FOUND, "dan eve" },
	{ "ldap:///o=test??one?(objectClass=inetMailUser)", IMTA_DIR_FOUND, "vanity" },
	{ "ldap:///uid=dan,o=schema1,o=test??base?(objectClass=*)", IMTA_DIR_FOUND, "dan" },
	{ "ldap:///uid=dan,o=schema1,o=test", IMTA_DIR_FOUND, "dan" },
	{ "ldap://ldap.example.com/o=schema1,o=test??sub", IMTA_DIR_FOUND, "dan" },
	{ "ldap:///o=Schema1,%20o=Test??sub?(mail=DAN@schema1.example)", IMTA_DIR_FOUND, "dan" },
	{ "ldap:///o=test??sub?(uid=nobody)", IMTA_DIR_NOT_FOUND, NULL },
	{ "ldap:///o=elsewhere??sub?(uid=*)", IMTA_DIR_NOT_FOUND, NULL },
	{ "ldap:///o=test??sub?(uid=person)", IMTA_DIR_NOT_FOUND, NULL },
	{ "http://x/", IMTA_DIR_NOT_FOUND,
	  "invalid LDAP URL \"http://x/\": it does not start with ldap://" },
	{ "ldap:///o=test??bogus?(uid=a)", IMTA_DIR_NOT_FOUND,
	  "invalid LDAP URL \"ldap:///o=test??bogus?(uid=a)\": the scope is not base, one or "
	  "sub" },
	{ "ldap:///o=test??children?(uid=a)", IMTA_DIR_NOT_FOUND,
	  "invalid LDAP URL \"ldap:///o=test??children?(uid=a)\": the scope is not base, one "
	  "or sub" },
	/* Split so that no trigraph forms. */
	{ "ldap:///o=test??base?" "?!x-crit=1", IMTA_DIR_NOT_FOUND,
	  "invalid LDAP URL \"ldap:///o=test??base?" "?!x-crit=1\": critical extensions are "
	  "not supported" },
	{ "ldap:///o=test??sub?(uid=a)(uid=b)", IMTA_DIR_NOT_FOUND,
	  "LDAP URL \"ldap:///o=test??sub?(uid=a)(uid=b)\": invalid LDAP filter at column 8: "
	  "unexpected text after the filter" },
};

static void
test_search_url(void)
{
	g_autoptr(ImtaDirectory) dir = open_test_directory();

	for (guint i = 0; i < G_N_ELEMENTS(url_cases); i++) {
		const UrlCase *c = &url_cases[i];
		g_autoptr(GPtrArray) entries = NULL;
		g_autoptr(GError) error = NULL;
		g_autoptr(GString) uids = g_string_new(NULL);

		g_test_message("url %s", c->url);
		g_assert_cmpint(imta_directory_search_url(dir, c->url, &entries, &error), ==,
				c->status);
		if (c->status != IMTA_DIR_FOUND) {
			g_assert_null(entries);
			if (c->result == NULL) {
				g_assert_no_error(error);
				continue;
			}
			g_assert_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA);
			g_assert_cmpstr(error->message, ==, c->result);
			continue;
		}
		g_assert_no_error(error);
		for (guint e = 0; e < entries->len; e++) {
			ImtaDirEntry *entry = g_ptr_array_index(entries, e);

			g_string_append_printf(uids, "%s%s", e > 0 ? " " : "", entry->uid);
		}
		g_assert_cmpstr(uids->str, ==, c->result);
	}
}

/* ---------------------------------------------------------------------- */
/* Authentication. */

typedef struct {
	const char *user;
	const char *password;
	ImtaDirStatus status;
	const char *error;
} AuthCase;

static const AuthCase auth_cases[] = {
	/* {SSHA}, by address, alternate address and uid. */
	{ "alice@example.com", "alicepw", IMTA_DIR_FOUND, NULL },
	{ "ALICE.SMITH@example.com", "alicepw", IMTA_DIR_FOUND, NULL },
	{ "alice", "alicepw", IMTA_DIR_FOUND, NULL },
	{ "alice", "alicepw ", IMTA_DIR_NOT_FOUND, NULL },
	{ "alice", "Alicepw", IMTA_DIR_NOT_FOUND, NULL },
	{ "alice", "", IMTA_DIR_NOT_FOUND, NULL },
	{ "alice", NULL, IMTA_DIR_NOT_FOUND, NULL },
	/* Plain text. */
	{ "bob", "bobpw", IMTA_DIR_FOUND, NULL },
	{ "bob", "bobpw2", IMTA_DIR_NOT_FOUND, NULL },
	{ "bob", "bob", IMTA_DIR_NOT_FOUND, NULL },
	/* Each scheme. */
	{ "sha", "secret", IMTA_DIR_FOUND, NULL },
	{ "sha", "Secret", IMTA_DIR_NOT_FOUND, NULL },
	{ "sha256", "secret", IMTA_DIR_FOUND, NULL },
	{ "sha256", "secret2", IMTA_DIR_NOT_FOUND, NULL },
	{ "ssha256@example.com", "secret", IMTA_DIR_FOUND, NULL },
	{ "ssha256@example.com", "secrets", IMTA_DIR_NOT_FOUND, NULL },
	{ "ssha512", "secret", IMTA_DIR_FOUND, NULL },
	{ "ssha512", "", IMTA_DIR_NOT_FOUND, NULL },
	{ "ssha512", "x", IMTA_DIR_NOT_FOUND, NULL },
	{ "smd5", "secret", IMTA_DIR_FOUND, NULL },
	{ "smd5", "pepper", IMTA_DIR_NOT_FOUND, NULL },
	{ "clear", "clearpw", IMTA_DIR_FOUND, NULL },
	{ "clear", "{CLEARTEXT}clearpw", IMTA_DIR_NOT_FOUND, NULL },
#ifdef HAVE_CRYPT_R
	{ "crypt", "secret", IMTA_DIR_FOUND, NULL },
	{ "crypt", "secreT", IMTA_DIR_NOT_FOUND, NULL },
	{ "md5crypt", "secret", IMTA_DIR_FOUND, NULL },
	{ "md5crypt", "wrong", IMTA_DIR_NOT_FOUND, NULL },
#else
	{ "crypt", "secret", IMTA_DIR_NOT_FOUND,
	  "\"uid=crypt,ou=People,o=example.com,o=test\": {CRYPT} passwords are not supported "
	  "by this build" },
#endif
	/* Unusable stored passwords. */
	{ "argon", "xyz", IMTA_DIR_NOT_FOUND,
	  "\"uid=argon,ou=People,o=example.com,o=test\": unsupported password scheme {ARGON2}" },
	{ "broken", "!!!!", IMTA_DIR_NOT_FOUND,
	  "\"uid=broken,ou=People,o=example.com,o=test\": malformed {SSHA} userPassword" },
	{ "nopw", "", IMTA_DIR_NOT_FOUND, NULL },
	{ "nopw", "x", IMTA_DIR_NOT_FOUND, NULL },
	/* Unknown users; no catch-all for logins. */
	{ "nobody", "x", IMTA_DIR_NOT_FOUND, NULL },
	{ "nobody@example.com", "x", IMTA_DIR_NOT_FOUND, NULL },
	{ "anyone@example.org", "catchallpw", IMTA_DIR_NOT_FOUND, NULL },
	{ "catchall", "catchallpw", IMTA_DIR_FOUND, NULL },
	{ "", "x", IMTA_DIR_NOT_FOUND, NULL },
	{ "carol@example.org", "carolpw", IMTA_DIR_FOUND, NULL },
	/* Status: only active and over-quota users log in. */
	{ "held", "heldpw", IMTA_DIR_NOT_FOUND, NULL },
	{ "inactive", "inactivepw", IMTA_DIR_NOT_FOUND, NULL },
	{ "deleted@example.com", "deletedpw", IMTA_DIR_NOT_FOUND, NULL },
	{ "overquota", "overpw", IMTA_DIR_FOUND, NULL },
	{ "eve@closed.example", "evepw", IMTA_DIR_NOT_FOUND, NULL },
	/* Groups never log in. */
	{ "staff@example.com", "staffpw", IMTA_DIR_NOT_FOUND, NULL },
	/* Several entries claim the address. */
	{ "dup@example.com", "x", IMTA_DIR_TEMPFAIL,
	  "ambiguous directory: 2 entries claim \"dup@example.com\": "
	  "\"uid=dup1,ou=People,o=example.com,o=test\", "
	  "\"uid=dup2,ou=People,o=example.com,o=test\"" },
};

static void
test_authenticate(void)
{
	g_autoptr(ImtaDirectory) dir = open_test_directory();
	ImtaDirectoryStats stats;

	for (guint i = 0; i < G_N_ELEMENTS(auth_cases); i++) {
		const AuthCase *c = &auth_cases[i];
		g_autoptr(GError) error = NULL;

		g_test_message("user %s", c->user);
		g_assert_cmpint(imta_directory_authenticate(dir, c->user, c->password, &error),
				==, c->status);
		if (c->error == NULL) {
			g_assert_no_error(error);
			continue;
		}
		g_assert_nonnull(error);
		g_assert_cmpstr(error->message, ==, c->error);
		/* The password never appears in an error. */
		g_assert_null(strstr(error->message, "secret"));
	}
	/* Logins bypass the address cache: only the three domains are cached. */
	imta_directory_stats(dir, &stats);
	g_assert_cmpuint(stats.entries, ==, 3);
}

/* ---------------------------------------------------------------------- */
/* The cache, over a counting fake backend. */

typedef struct {
	ImtaDirBackend base;
	guint address_calls, dn_calls, domain_calls, search_calls;
	gboolean changed;
	ImtaDirEntry *entry;
	ImtaDirEntry *group;
} FakeBackend;

static ImtaDirStatus
fake_tempfail(GError **error)
{
	g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_TEMPORARY,
		    "directory server unavailable");
	return IMTA_DIR_TEMPFAIL;
}

static gboolean
fake_refresh(ImtaDirBackend *backend, gint64 now)
{
	FakeBackend *fake = (FakeBackend *)backend;
	gboolean changed = fake->changed;

	fake->changed = FALSE;
	return changed;
}

static ImtaDirStatus
fake_lookup_address(ImtaDirBackend *backend, const char *address, const char *base_dn,
		    GPtrArray **entries_r, GError **error)
{
	FakeBackend *fake = (FakeBackend *)backend;

	fake->address_calls++;
	*entries_r = NULL;
	if (g_str_has_prefix(address, "temp@"))
		return fake_tempfail(error);
	if (!g_str_has_prefix(address, "found"))
		return IMTA_DIR_NOT_FOUND;
	*entries_r = g_ptr_array_new_with_free_func((GDestroyNotify)imta_dir_entry_unref);
	g_ptr_array_add(*entries_r, imta_dir_entry_ref(fake->entry));
	return IMTA_DIR_FOUND;
}

static ImtaDirStatus
fake_lookup_dn(ImtaDirBackend *backend, const char *dn, ImtaDirEntry **entry_r,
	       GError **error)
{
	FakeBackend *fake = (FakeBackend *)backend;

	fake->dn_calls++;
	*entry_r = NULL;
	if (g_str_has_prefix(dn, "uid=temp"))
		return fake_tempfail(error);
	if (!g_str_has_prefix(dn, "uid=found"))
		return IMTA_DIR_NOT_FOUND;
	*entry_r = imta_dir_entry_ref(fake->entry);
	return IMTA_DIR_FOUND;
}

static ImtaDirStatus
fake_lookup_domain(ImtaDirBackend *backend, const char *domain, ImtaDirDomain **domain_r,
		   GError **error)
{
	FakeBackend *fake = (FakeBackend *)backend;

	fake->domain_calls++;
	*domain_r = NULL;
	if (strcmp(domain, "down.test") == 0)
		return fake_tempfail(error);
	return IMTA_DIR_NOT_FOUND;
}

static ImtaDirStatus
fake_search(ImtaDirBackend *backend, const char *base_dn, ImtaDirScope scope,
	    const ImtaLdapFilter *filter, guint size_limit, GPtrArray **entries_r,
	    GError **error)
{
	FakeBackend *fake = (FakeBackend *)backend;

	fake->search_calls++;
	*entries_r = NULL;
	return fake_tempfail(error);
}

static void
fake_free(ImtaDirBackend *backend)
{
	FakeBackend *fake = (FakeBackend *)backend;

	imta_dir_entry_unref(fake->entry);
	imta_dir_entry_unref(fake->group);
}

static const ImtaDirBackendOps fake_ops = {
	.name = "fake",
	.refresh = fake_refresh,
	.lookup_address = fake_lookup_address,
	.lookup_dn = fake_lookup_dn,
	.lookup_domain = fake_lookup_domain,
	.search = fake_search,
	.free = fake_free,
};

typedef struct {
	FakeBackend fake;
	ImtaDirectory *dir;
	gint64 now;
} CacheFixture;

static gint64
fixture_clock(gpointer data)
{
	return *(gint64 *)data;
}

static void
cache_setup(CacheFixture *fx, gconstpointer data)
{
	const ImtaDirectoryOptions *options = data;
	const char *user[] = { "objectclass", "inetMailUser", "mail", "found@x.test", NULL };
	const char *group[] = { "mail", "list@x.test", "uniquemember", "uid=found,o=x",
				"uniquemember", "uid=temp,o=x", NULL };
	g_autoptr(GHashTable) user_attrs = make_attributes(user);
	g_autoptr(GHashTable) group_attrs = make_attributes(group);

	fx->fake.base.ops = &fake_ops;
	fx->fake.entry = imta_dir_entry_build("uid=found,o=x", IMTA_DIR_USER, user_attrs, NULL,
					      NULL);
	fx->fake.group = imta_dir_entry_build("cn=list,o=x", IMTA_DIR_GROUP, group_attrs, NULL,
					      NULL);
	fx->dir = imta_directory_new(&fx->fake.base, options);
	fx->now = (gint64)1000 * G_USEC_PER_SEC;
	imta_directory_set_clock(fx->dir, fixture_clock, &fx->now);
}

static void
cache_teardown(CacheFixture *fx, gconstpointer data)
{
	imta_directory_free(fx->dir);
}

static const ImtaDirectoryOptions cache_options = {
	.cache_size = 3, .cache_ttl = 10, .negative_ttl = 5, .local_host = "mx.test",
};

static const ImtaDirectoryOptions no_cache_options = {
	.cache_size = 0, .cache_ttl = 10, .negative_ttl = 5, .local_host = "mx.test",
};

static void
assert_stats(ImtaDirectory *dir, guint64 hits, guint64 misses, guint64 entries)
{
	ImtaDirectoryStats stats;

	imta_directory_stats(dir, &stats);
	g_assert_cmpuint(stats.hits, ==, hits);
	g_assert_cmpuint(stats.misses, ==, misses);
	g_assert_cmpuint(stats.entries, ==, entries);
}

static ImtaDirStatus
lookup_dn_status(ImtaDirectory *dir, const char *dn)
{
	g_autoptr(ImtaDirEntry) entry = NULL;
	g_autoptr(GError) error = NULL;

	return imta_directory_lookup_dn(dir, dn, &entry, &error);
}

static void
test_cache_hit_miss(CacheFixture *fx, gconstpointer data)
{
	g_autoptr(ImtaDirEntry) first = NULL;
	g_autoptr(ImtaDirEntry) second = NULL;

	g_assert_cmpint(imta_directory_lookup_address(fx->dir, "found@x.test", &first, NULL), ==,
			IMTA_DIR_FOUND);
	/* Address miss and domain miss. */
	assert_stats(fx->dir, 0, 2, 2);
	g_assert_cmpint(imta_directory_lookup_address(fx->dir, "FOUND@X.TEST.", &second, NULL),
			==, IMTA_DIR_FOUND);
	g_assert_true(first == second);
	g_assert_cmpuint(fx->fake.address_calls, ==, 1);
	g_assert_cmpuint(fx->fake.domain_calls, ==, 1);
	assert_stats(fx->dir, 1, 2, 2);
}

static void
test_cache_expiry(CacheFixture *fx, gconstpointer data)
{
	/* Positive answers live 10 s. */
	g_assert_cmpint(lookup_dn_status(fx->dir, "uid=found,o=x"), ==, IMTA_DIR_FOUND);
	fx->now += 9 * G_USEC_PER_SEC + G_USEC_PER_SEC / 2;
	g_assert_cmpint(lookup_dn_status(fx->dir, "uid=found,o=x"), ==, IMTA_DIR_FOUND);
	g_assert_cmpuint(fx->fake.dn_calls, ==, 1);
	fx->now += G_USEC_PER_SEC / 2;
	g_assert_cmpint(lookup_dn_status(fx->dir, "uid=found,o=x"), ==, IMTA_DIR_FOUND);
	g_assert_cmpuint(fx->fake.dn_calls, ==, 2);
	assert_stats(fx->dir, 1, 2, 1);
}

static void
test_cache_negative(CacheFixture *fx, gconstpointer data)
{
	/* NOT_FOUND lives 5 s. */
	g_assert_cmpint(lookup_dn_status(fx->dir, "uid=none,o=x"), ==, IMTA_DIR_NOT_FOUND);
	fx->now += 4 * G_USEC_PER_SEC;
	g_assert_cmpint(lookup_dn_status(fx->dir, "UID=None, O=X"), ==, IMTA_DIR_NOT_FOUND);
	g_assert_cmpuint(fx->fake.dn_calls, ==, 1);
	fx->now += G_USEC_PER_SEC;
	g_assert_cmpint(lookup_dn_status(fx->dir, "uid=none,o=x"), ==, IMTA_DIR_NOT_FOUND);
	g_assert_cmpuint(fx->fake.dn_calls, ==, 2);
}

static void
test_cache_tempfail(CacheFixture *fx, gconstpointer data)
{
	g_autoptr(ImtaDirEntry) entry = NULL;
	g_autoptr(ImtaDirDomain) domain = NULL;
	g_autoptr(GError) error = NULL;

	for (guint i = 0; i < 3; i++) {
		g_assert_cmpint(imta_directory_lookup_dn(fx->dir, "uid=temp,o=x", &entry, &error),
				==, IMTA_DIR_TEMPFAIL);
		g_assert_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_TEMPORARY);
		g_clear_error(&error);
	}
	g_assert_cmpuint(fx->fake.dn_calls, ==, 3);
	/* A failed domain lookup fails the address lookup, uncached. */
	for (guint i = 0; i < 2; i++) {
		g_assert_cmpint(imta_directory_lookup_address(fx->dir, "a@down.test", &entry,
							      &error), ==, IMTA_DIR_TEMPFAIL);
		g_assert_cmpstr(error->message, ==, "directory server unavailable");
		g_clear_error(&error);
	}
	g_assert_cmpuint(fx->fake.domain_calls, ==, 2);
	g_assert_cmpuint(fx->fake.address_calls, ==, 0);
	g_assert_cmpint(imta_directory_domain_is_local(fx->dir, "down.test", &error), ==,
			IMTA_DIR_TEMPFAIL);
	g_clear_error(&error);
	g_assert_cmpint(imta_directory_lookup_address(fx->dir, "temp@x.test", &entry, &error),
			==, IMTA_DIR_TEMPFAIL);
	g_clear_error(&error);
	g_assert_cmpint(imta_directory_lookup_address(fx->dir, "temp@x.test", &entry, &error),
			==, IMTA_DIR_TEMPFAIL);
	g_clear_error(&error);
	g_assert_cmpuint(fx->fake.address_calls, ==, 2);
	g_assert_cmpint(imta_directory_authenticate(fx->dir, "temp@x.test", "pw", &error), ==,
			IMTA_DIR_TEMPFAIL);
	g_clear_error(&error);
	/* Only the x.test domain answer is cached. */
	assert_stats(fx->dir, 2, 11, 1);
}

static void
test_cache_group_tempfail(CacheFixture *fx, gconstpointer data)
{
	g_autoptr(GPtrArray) addresses = NULL;
	g_autoptr(GError) error = NULL;

	/* One member DN cannot be read: the whole expansion waits. */
	g_assert_cmpint(imta_directory_expand_group(fx->dir, fx->fake.group, 0, &addresses,
						    &error), ==, IMTA_DIR_TEMPFAIL);
	g_assert_null(addresses);
	g_assert_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_TEMPORARY);
	g_clear_error(&error);
	g_assert_cmpint(imta_directory_search_url(fx->dir, "ldap:///o=x??sub?(uid=*)",
						  &addresses, &error), ==, IMTA_DIR_TEMPFAIL);
	g_assert_null(addresses);
	g_assert_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_TEMPORARY);
	g_assert_cmpuint(fx->fake.search_calls, ==, 1);
}

static void
test_cache_flush(CacheFixture *fx, gconstpointer data)
{
	g_assert_cmpint(lookup_dn_status(fx->dir, "uid=found,o=x"), ==, IMTA_DIR_FOUND);
	g_assert_cmpint(lookup_dn_status(fx->dir, "uid=none,o=x"), ==, IMTA_DIR_NOT_FOUND);
	assert_stats(fx->dir, 0, 2, 2);
	imta_directory_flush(fx->dir);
	assert_stats(fx->dir, 0, 2, 0);
	g_assert_cmpint(lookup_dn_status(fx->dir, "uid=found,o=x"), ==, IMTA_DIR_FOUND);
	g_assert_cmpuint(fx->fake.dn_calls, ==, 3);
	/* A backend that reports new data flushes the cache too. */
	fx->fake.changed = TRUE;
	g_assert_cmpint(lookup_dn_status(fx->dir, "uid=found,o=x"), ==, IMTA_DIR_FOUND);
	g_assert_cmpuint(fx->fake.dn_calls, ==, 4);
}

static void
test_cache_size(CacheFixture *fx, gconstpointer data)
{
	/* Three slots: the least recently used answer goes first. */
	lookup_dn_status(fx->dir, "uid=found1,o=x");
	lookup_dn_status(fx->dir, "uid=found2,o=x");
	lookup_dn_status(fx->dir, "uid=found3,o=x");
	lookup_dn_status(fx->dir, "uid=found1,o=x");     /* hit; 2 is now oldest */
	lookup_dn_status(fx->dir, "uid=found4,o=x");     /* evicts 2 */
	g_assert_cmpuint(fx->fake.dn_calls, ==, 4);
	assert_stats(fx->dir, 1, 4, 3);
	lookup_dn_status(fx->dir, "uid=found1,o=x");
	lookup_dn_status(fx->dir, "uid=found3,o=x");
	lookup_dn_status(fx->dir, "uid=found4,o=x");
	g_assert_cmpuint(fx->fake.dn_calls, ==, 4);
	lookup_dn_status(fx->dir, "uid=found2,o=x");
	g_assert_cmpuint(fx->fake.dn_calls, ==, 5);
	assert_stats(fx->dir, 4, 5, 3);
}

static void
test_cache_disabled(CacheFixture *fx, gconstpointer data)
{
	for (guint i = 0; i < 3; i++)
		g_assert_cmpint(lookup_dn_status(fx->dir, "uid=found,o=x"), ==, IMTA_DIR_FOUND);
	g_assert_cmpuint(fx->fake.dn_calls, ==, 3);
	assert_stats(fx->dir, 0, 0, 0);
}

/* ---------------------------------------------------------------------- */
/* The LDIF file. */

typedef struct {
	const char *text;
	ImtaConfigErrorCode code;
	const char *message;       /* after "path:" */
} LdifErrorCase;

static const LdifErrorCase ldif_error_cases[] = {
	{ "dn: o=x\nfoo\n", IMTA_CONFIG_ERROR_SYNTAX, "2: expected \"name: value\", got \"foo\"" },
	{ "cn: x\n", IMTA_CONFIG_ERROR_SYNTAX, "1: expected \"dn:\" to start an entry, got "
	  "\"cn:\"" },
	{ " x\n", IMTA_CONFIG_ERROR_SYNTAX, "1: a continuation line (one starting with a "
	  "space) must follow the line it continues" },
	{ "dn: o=x\n\n continued\n", IMTA_CONFIG_ERROR_SYNTAX, "3: a continuation line (one "
	  "starting with a space) must follow the line it continues" },
	{ "dn: o=x\njpegPhoto:< file:///tmp/x.jpg\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "2: attribute \"jpegphoto\": values by URL (\":<\") are not supported; write the "
	  "value itself" },
	{ "dn: o=x\ncn:: !!!!\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "2: attribute \"cn\": invalid base64 value" },
	{ "dn: o=x\ncn:: YWJ\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "2: attribute \"cn\": invalid base64 value" },
	{ "version: 2\n", IMTA_CONFIG_ERROR_SYNTAX, "1: unsupported LDIF version \"2\" "
	  "(expected 1)" },
	{ "dn: o=x\n\nversion: 1\n", IMTA_CONFIG_ERROR_SYNTAX, "3: expected \"dn:\" to start "
	  "an entry, got \"version:\"" },
	{ "dn: o=x\ndn: o=y\n", IMTA_CONFIG_ERROR_SYNTAX, "2: a second \"dn:\" in one entry "
	  "(entries are separated by an empty line)" },
	{ "dn: o=x\nchangetype: add\n", IMTA_CONFIG_ERROR_SYNTAX, "2: change records "
	  "(\"changetype:\") are not supported: the directory file holds entries only" },
	{ "dn: o=x\n\ndn: O=X \n", IMTA_CONFIG_ERROR_DUPLICATE, "3: duplicate entry \"O=X\" "
	  "(first defined at line 1)" },
	{ "dn:\n", IMTA_CONFIG_ERROR_SYNTAX, "1: empty DN" },
	{ "dn: o=x\n1cn: y\n", IMTA_CONFIG_ERROR_SYNTAX, "2: invalid attribute name \"1cn\"" },
	{ "dn: o=x\ncn;: y\n", IMTA_CONFIG_ERROR_SYNTAX, "2: invalid attribute name \"cn;\"" },
	{ "dn: o=x\n: y\n", IMTA_CONFIG_ERROR_SYNTAX, "2: invalid attribute name \"\"" },
	{ "# comment\n continued comment\n\ndn: o=x\ncn: a\n b\nbad\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "7: expected \"name: value\", got \"bad\"" },
	{ "dn: o=x\r\ncn: a\r\n\r\ndn: o=y\r\nbad\r\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "5: expected \"name: value\", got \"bad\"" },
	{ "dn: o=x\ncn: a\0b\n", IMTA_CONFIG_ERROR_SYNTAX, "2: NUL byte in the file" },
	{ "dn: uid=q,o=x\nobjectClass: inetMailUser\nobjectClass: inetLocalMailRecipient\n"
	  "mailQuota: lots\n", IMTA_CONFIG_ERROR_SYNTAX, "1: entry \"uid=q,o=x\": mailQuota: "
	  "expected a size in bytes with an optional K, M or G suffix, -1 (unlimited) or -2 "
	  "(default), got \"lots\"" },
	{ "dn: o=x\n\ndn: uid=q,o=x\nobjectClass: inetMailUser\nobjectClass: "
	  "inetLocalMailRecipient\nmailQuota: 5000G\n", IMTA_CONFIG_ERROR_SYNTAX,
	  "3: entry \"uid=q,o=x\": mailQuota: \"5000G\" is more than the maximum of 4096G" },
	{ "dn: o=a\nassociatedDomain: x.test\n\ndn: o=b\nsunPreferredDomain: X.Test\n",
	  IMTA_CONFIG_ERROR_DUPLICATE, "4: domain \"x.test\" is already defined at line 1" },
	{ "dn: o=a\nassociatedDomain: x.test\nmailDomainDiskQuota: huge\n",
	  IMTA_CONFIG_ERROR_SYNTAX, "1: entry \"o=a\": mailDomainDiskQuota: expected a size in "
	  "bytes with an optional K, M or G suffix, -1 (unlimited) or -2 (default), got \"huge\"" },
};

static void
test_ldif_errors(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(ldif_error_cases); i++) {
		const LdifErrorCase *c = &ldif_error_cases[i];
		g_autofree char *path = g_build_filename(tmp_dir, "bad.ldif", NULL);
		g_autofree char *expected = g_strdup_printf("%s:%s", path, c->message);
		g_autoptr(ImtaDirectory) dir = NULL;
		g_autoptr(GError) error = NULL;
		/* Sized by hand: one case holds a NUL byte. */
		gsize len = strlen(c->text);

		if (strstr(c->message, "NUL byte") != NULL)
			len += 1 + strlen(c->text + len + 1);
		g_file_set_contents(path, c->text, (gssize)len, &error);
		g_assert_no_error(error);
		g_test_message("case %u", i);
		dir = imta_directory_open_ldif(path, &test_options, &error);
		g_assert_null(dir);
		g_assert_error(error, IMTA_CONFIG_ERROR, (gint)c->code);
		g_assert_cmpstr(error->message, ==, expected);
	}
}

static void
test_ldif_missing(void)
{
	g_autofree char *path = g_build_filename(tmp_dir, "absent.ldif", NULL);
	g_autofree char *expected = g_strdup_printf("cannot read directory file \"%s\": "
						    "No such file or directory", path);
	g_autoptr(GError) error = NULL;

	g_assert_null(imta_directory_open_ldif(path, &test_options, &error));
	g_assert_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_IO);
	g_assert_cmpstr(error->message, ==, expected);
}

static void
test_ldif_empty(void)
{
	const char *texts[] = { "", "\n\n", "# only a comment\n", "version: 1\n" };

	for (guint i = 0; i < G_N_ELEMENTS(texts); i++) {
		g_autofree char *path = write_file("empty.ldif", texts[i]);
		g_autoptr(ImtaDirectory) dir = NULL;
		g_autoptr(ImtaDirEntry) entry = NULL;
		g_autoptr(GError) error = NULL;

		dir = imta_directory_open_ldif(path, NULL, &error);
		g_assert_no_error(error);
		g_assert_cmpint(imta_directory_lookup_address(dir, "a@b.c", &entry, &error), ==,
				IMTA_DIR_NOT_FOUND);
	}
}

static const char RELOAD_V1[] =
	"dn: uid=old,o=r\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: old\n"
	"mail: old@r.test\n";

static const char RELOAD_V2[] =
	"dn: uid=new,o=r\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: new\n"
	"mail: new@r.test\n";

static const char RELOAD_BROKEN[] =
	"dn: uid=newer,o=r\n"
	"this line is wrong\n";

static const char RELOAD_V3[] =
	"dn: uid=newer,o=r\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: newer\n"
	"mail: newer@r.test\n";

static ImtaDirStatus
lookup_status(ImtaDirectory *dir, const char *address)
{
	g_autoptr(ImtaDirEntry) entry = NULL;

	return imta_directory_lookup_address(dir, address, &entry, NULL);
}

static void
rewrite_file(const char *path, const char *text, gint64 mtime)
{
	g_autoptr(GError) error = NULL;
	struct utimbuf times = { .actime = mtime, .modtime = mtime };

	g_file_set_contents(path, text, -1, &error);
	g_assert_no_error(error);
	/* A distinct mtime even when the rewrite lands in the same tick. */
	g_assert_cmpint(g_utime(path, &times), ==, 0);
}

/* How many lines of the log end with "warning: <text>". */
static guint
log_count(const char *log_path, const char *text)
{
	g_autofree char *contents = NULL;
	g_autofree char *suffix = g_strdup_printf(": warning: %s", text);
	g_auto(GStrv) lines = NULL;
	guint n = 0;

	if (!g_file_get_contents(log_path, &contents, NULL, NULL))
		return 0;
	lines = g_strsplit(contents, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++)
		n += g_str_has_suffix(lines[i], suffix);
	return n;
}

static void
test_ldif_reload(void)
{
	g_autofree char *path = write_file("reload.ldif", RELOAD_V1);
	g_autofree char *log_path = g_build_filename(tmp_dir, "reload.log", NULL);
	g_autofree char *broken = NULL;
	g_autofree char *missing = NULL;
	g_autoptr(ImtaDirectory) dir = NULL;
	g_autoptr(GError) error = NULL;
	gint64 now = (gint64)5000 * G_USEC_PER_SEC;

	g_assert_true(imta_log_open("test-directory", log_path, &error));
	dir = imta_directory_open_ldif(path, &test_options, &error);
	g_assert_no_error(error);
	imta_directory_set_clock(dir, fixture_clock, &now);
	g_assert_cmpint(lookup_status(dir, "old@r.test"), ==, IMTA_DIR_FOUND);
	g_assert_cmpint(lookup_status(dir, "new@r.test"), ==, IMTA_DIR_NOT_FOUND);

	/* Changes are seen at most once a second. */
	rewrite_file(path, RELOAD_V2, 1000000);
	now += G_USEC_PER_SEC / 2;
	g_assert_cmpint(lookup_status(dir, "new@r.test"), ==, IMTA_DIR_NOT_FOUND);
	now += G_USEC_PER_SEC / 2;
	g_assert_cmpint(lookup_status(dir, "new@r.test"), ==, IMTA_DIR_FOUND);
	/* The cached answer for old@ went with the old data. */
	g_assert_cmpint(lookup_status(dir, "old@r.test"), ==, IMTA_DIR_NOT_FOUND);

	/* A broken file is reported once and the loaded data stays. */
	rewrite_file(path, RELOAD_BROKEN, 2000000);
	broken = g_strdup_printf("directory reload failed: %s:2: expected \"name: value\", "
				 "got \"this line is wrong\"; keeping the previous data", path);
	g_assert_cmpuint(log_count(log_path, broken), ==, 0);
	now += G_USEC_PER_SEC;
	g_assert_cmpint(lookup_status(dir, "new@r.test"), ==, IMTA_DIR_FOUND);
	g_assert_cmpuint(log_count(log_path, broken), ==, 1);
	now += 5 * G_USEC_PER_SEC;
	g_assert_cmpint(lookup_status(dir, "new@r.test"), ==, IMTA_DIR_FOUND);
	g_assert_cmpint(lookup_status(dir, "newer@r.test"), ==, IMTA_DIR_NOT_FOUND);
	g_assert_cmpuint(log_count(log_path, broken), ==, 1);

	/* Fixed: loaded. */
	rewrite_file(path, RELOAD_V3, 3000000);
	now += G_USEC_PER_SEC;
	g_assert_cmpint(lookup_status(dir, "newer@r.test"), ==, IMTA_DIR_FOUND);
	g_assert_cmpint(lookup_status(dir, "new@r.test"), ==, IMTA_DIR_NOT_FOUND);

	/* Removed: reported once, data kept. */
	g_assert_cmpint(g_unlink(path), ==, 0);
	missing = g_strdup_printf("cannot read directory file \"%s\": No such file or "
				  "directory; keeping the directory data already loaded", path);
	now += G_USEC_PER_SEC;
	g_assert_cmpint(lookup_status(dir, "newer@r.test"), ==, IMTA_DIR_FOUND);
	now += 2 * G_USEC_PER_SEC;
	g_assert_cmpint(lookup_status(dir, "newer@r.test"), ==, IMTA_DIR_FOUND);
	g_assert_cmpuint(log_count(log_path, missing), ==, 1);
	imta_log_close();
}

/* Concurrent lookups while the file keeps changing. */

static gint thread_ticks;

static gint64
ticking_clock(gpointer data)
{
	/* Every call is a second later: every lookup checks the file. */
	return (gint64)g_atomic_int_add(&thread_ticks, 1) * G_USEC_PER_SEC;
}

static gpointer
thread_lookups(gpointer data)
{
	ImtaDirectory *dir = data;

	for (guint i = 0; i < 500; i++) {
		g_autoptr(ImtaDirEntry) entry = NULL;
		g_autoptr(ImtaDirEntry) by_dn = NULL;
		g_autoptr(GError) error = NULL;

		g_assert_cmpint(imta_directory_lookup_address(dir, "old@r.test", &entry, &error),
				==, IMTA_DIR_FOUND);
		g_assert_cmpstr(entry->uid, ==, "old");
		g_assert_cmpint(imta_directory_lookup_dn(dir, "uid=old,o=r", &by_dn, &error), ==,
				IMTA_DIR_FOUND);
		if (i % 50 == 0)
			imta_directory_flush(dir);
	}
	return NULL;
}

static void
test_threads(void)
{
	g_autofree char *path = write_file("threads.ldif", RELOAD_V1);
	g_autofree char *both = g_strconcat(RELOAD_V1, "\n", RELOAD_V2, NULL);
	g_autoptr(ImtaDirectory) dir = NULL;
	g_autoptr(GError) error = NULL;
	GThread *threads[4];

	dir = imta_directory_open_ldif(path, &test_options, &error);
	g_assert_no_error(error);
	imta_directory_set_clock(dir, ticking_clock, NULL);
	for (guint i = 0; i < G_N_ELEMENTS(threads); i++)
		threads[i] = g_thread_new("lookups", thread_lookups, dir);
	for (guint i = 0; i < 40; i++) {
		g_autoptr(GError) write_error = NULL;

		g_file_set_contents(path, i % 2 == 0 ? both : RELOAD_V1, -1, &write_error);
		g_assert_no_error(write_error);
		g_usleep(1000);
	}
	for (guint i = 0; i < G_N_ELEMENTS(threads); i++)
		g_thread_join(threads[i]);
}

/* ---------------------------------------------------------------------- */
/* The demo directory of the default configuration. */

static void
test_demo_directory(void)
{
	g_autofree char *path = g_test_build_filename(G_TEST_DIST, "..", "conf",
						      "directory.ldif", NULL);
	ImtaDirectoryOptions options = test_options;
	g_autoptr(ImtaDirectory) dir = NULL;
	g_autoptr(GError) error = NULL;
	const char *const logins[][3] = {
		{ "alice", "alicepw", "y" }, { "bob@example.com", "bobpw", "y" },
		{ "carol@example.org", "carolpw", "y" }, { "dave", "davepw", "y" },
		{ "hank", "hankpw", "n" }, { "ivan", "ivanpw", "n" },
		{ "postmaster", "postmasterpw", "y" }, { "alice", "bobpw", "n" },
	};
	const char *const groups[][2] = {
		{ "staff@example.com",
		  "carol@example.org partner@example.net alice@example.com bob@example.com" },
		{ "everyone@example.com", "alice@example.com bob@example.com dave@example.com "
		  "hank@example.com postmaster@example.com" },
	};
	g_autoptr(ImtaDirEntry) alice = NULL;
	g_autoptr(ImtaDirEntry) bob = NULL;
	g_autoptr(ImtaDirEntry) carol = NULL;
	g_autoptr(ImtaDirEntry) dave = NULL;
	g_autoptr(ImtaDirEntry) hank = NULL;
	g_autoptr(ImtaDirEntry) ivan = NULL;
	g_autoptr(ImtaDirEntry) root = NULL;

	options.local_host = "mail.example.com";
	dir = imta_directory_open_ldif(path, &options, &error);
	g_assert_no_error(error);

	g_assert_cmpint(imta_directory_domain_is_local(dir, "example.com", NULL), ==,
			IMTA_DIR_FOUND);
	g_assert_cmpint(imta_directory_domain_is_local(dir, "example.org", NULL), ==,
			IMTA_DIR_FOUND);
	g_assert_cmpint(imta_directory_domain_is_local(dir, "example.net", NULL), ==,
			IMTA_DIR_NOT_FOUND);

	g_assert_cmpint(imta_directory_lookup_address(dir, "alice.smith@example.com", &alice,
						      NULL), ==, IMTA_DIR_FOUND);
	g_assert_cmpstr(alice->mail, ==, "alice@example.com");
	g_assert_cmpstr(alice->equivalent_addresses[0], ==, "asmith@example.com");
	g_assert_cmpint(imta_directory_lookup_address(dir, "bob@example.com", &bob, NULL), ==,
			IMTA_DIR_FOUND);
	g_assert_cmpint(bob->quota_bytes, ==, 10 * 1024 * 1024);
	g_assert_cmpstr(bob->mail_host, ==, "mail.example.com");
	g_assert_cmpint(imta_directory_lookup_address(dir, "carol@example.org", &carol, NULL),
			==, IMTA_DIR_FOUND);
	g_assert_cmpstr(carol->domain, ==, "example.org");
	g_assert_cmpint(imta_directory_lookup_address(dir, "dave@example.com", &dave, NULL), ==,
			IMTA_DIR_FOUND);
	g_assert_cmpstr(dave->delivery_options[1], ==, "forward");
	g_assert_cmpstr(dave->forwarding_addresses[0], ==, "dave.brown@example.net");
	g_assert_cmpint(imta_directory_lookup_address(dir, "hank@example.com", &hank, NULL), ==,
			IMTA_DIR_FOUND);
	g_assert_cmpint(hank->status, ==, IMTA_DIR_STATUS_HOLD);
	g_assert_cmpint(imta_directory_lookup_address(dir, "ivan@example.com", &ivan, NULL), ==,
			IMTA_DIR_FOUND);
	g_assert_cmpint(ivan->status, ==, IMTA_DIR_STATUS_INACTIVE);
	g_assert_cmpint(imta_directory_lookup_address(dir, "root@example.com", &root, NULL), ==,
			IMTA_DIR_FOUND);
	g_assert_cmpstr(root->uid, ==, "postmaster");

	for (guint i = 0; i < G_N_ELEMENTS(logins); i++) {
		g_test_message("login %s", logins[i][0]);
		g_assert_cmpint(imta_directory_authenticate(dir, logins[i][0], logins[i][1], NULL),
				==, logins[i][2][0] == 'y' ? IMTA_DIR_FOUND : IMTA_DIR_NOT_FOUND);
	}
	for (guint i = 0; i < G_N_ELEMENTS(groups); i++) {
		g_autoptr(ImtaDirEntry) group = NULL;
		g_autoptr(GPtrArray) addresses = NULL;
		g_autofree char *text = NULL;

		g_assert_cmpint(imta_directory_lookup_address(dir, groups[i][0], &group, NULL), ==,
				IMTA_DIR_FOUND);
		g_assert_cmpint(imta_directory_expand_group(dir, group, 100, &addresses, &error),
				==, IMTA_DIR_FOUND);
		g_assert_no_error(error);
		text = join_addresses(addresses);
		g_assert_cmpstr(text, ==, groups[i][1]);
	}
}

/* ---------------------------------------------------------------------- */

static void
remove_tmp_dir(void)
{
	g_autoptr(GDir) handle = g_dir_open(tmp_dir, 0, NULL);
	const char *name;

	while (handle != NULL && (name = g_dir_read_name(handle)) != NULL) {
		g_autofree char *path = g_build_filename(tmp_dir, name, NULL);

		g_unlink(path);
	}
	g_rmdir(tmp_dir);
}

#define ADD_CACHE_TEST(path, func, options) \
	g_test_add(path, CacheFixture, options, cache_setup, func, cache_teardown)

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	int rc;

	g_test_init(&argc, &argv, NULL);
	tmp_dir = g_dir_make_tmp("test-directory-XXXXXX", &error);
	g_assert_no_error(error);

	g_test_add_func("/directory/normalize/dn", test_normalize_dn);
	g_test_add_func("/directory/normalize/address", test_normalize_address);
	g_test_add_func("/directory/normalize/scope", test_dn_scope);
	g_test_add_func("/directory/lookup/address", test_lookup_address);
	g_test_add_func("/directory/lookup/ambiguous", test_lookup_ambiguous);
	g_test_add_func("/directory/lookup/attributes", test_lookup_attributes);
	g_test_add_func("/directory/lookup/dn", test_lookup_dn);
	g_test_add_func("/directory/status/values", test_status_values);
	g_test_add_func("/directory/status/entries", test_status_entries);
	g_test_add_func("/directory/quota/values", test_quota_values);
	g_test_add_func("/directory/domain/lookup", test_domain_lookup);
	g_test_add_func("/directory/domain/is-local", test_domain_is_local);
	g_test_add_func("/directory/domain/uplevel", test_domain_uplevel);
	g_test_add_func("/directory/domain/uplevel-local", test_domain_uplevel_local);
	g_test_add_func("/directory/group/expand", test_group_expand);
	g_test_add_func("/directory/group/deep", test_group_deep);
	g_test_add_func("/directory/search/url", test_search_url);
	g_test_add_func("/directory/auth/schemes", test_authenticate);
	ADD_CACHE_TEST("/directory/cache/hit-miss", test_cache_hit_miss, &cache_options);
	ADD_CACHE_TEST("/directory/cache/expiry", test_cache_expiry, &cache_options);
	ADD_CACHE_TEST("/directory/cache/negative", test_cache_negative, &cache_options);
	ADD_CACHE_TEST("/directory/cache/tempfail", test_cache_tempfail, &cache_options);
	ADD_CACHE_TEST("/directory/cache/group-tempfail", test_cache_group_tempfail,
		       &cache_options);
	ADD_CACHE_TEST("/directory/cache/flush", test_cache_flush, &cache_options);
	ADD_CACHE_TEST("/directory/cache/size", test_cache_size, &cache_options);
	ADD_CACHE_TEST("/directory/cache/disabled", test_cache_disabled, &no_cache_options);
	g_test_add_func("/directory/ldif/errors", test_ldif_errors);
	g_test_add_func("/directory/ldif/missing", test_ldif_missing);
	g_test_add_func("/directory/ldif/empty", test_ldif_empty);
	g_test_add_func("/directory/ldif/reload", test_ldif_reload);
	g_test_add_func("/directory/ldif/threads", test_threads);
	g_test_add_func("/directory/demo", test_demo_directory);
	rc = g_test_run();
	remove_tmp_dir();
	g_free(tmp_dir);
	return rc;
}
