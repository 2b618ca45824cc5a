/*
 * test-delivery.c - delivery options: the addresses a local address
 * expands to through DELIVERY_OPTIONS, against the demo directory of the
 * default configuration and a small directory of odd cases; held users
 * and the mail host test that come before the options.
 */
#include "config.h"

#include <string.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/directory.h>
#include <imta/error.h>

/* option.dat's default DELIVERY_OPTIONS. */
#define DEFAULT_OPTIONS \
	"*mailbox=$M%$\\$2I$_+$2S@ims-ms-daemon, &members=*, *native=$M@native-daemon, " \
	"/hold=@hold-daemon:$A, *unix=$M@native-daemon, &file=+$F@native-daemon, " \
	"&@members_offline=*, program=$M%$P@pipe-daemon, #forward=**, " \
	"*^!autoreply=$M+$D@bitbucket"

#define USER(uid, extra) \
	"dn: uid=" uid ",ou=People,o=example.com,o=example\n" \
	"objectClass: inetMailUser\n" \
	"objectClass: inetLocalMailRecipient\n" \
	"uid: " uid "\n" \
	"mail: " uid "@example.com\n" \
	"mailHost: mail.example.com\n" extra "\n"

/* A user of example.com, or a group, with its own mailHost lines. */
#define USER_AT(uid, extra) \
	"dn: uid=" uid ",ou=People,o=example.com,o=example\n" \
	"objectClass: inetMailUser\n" \
	"objectClass: inetLocalMailRecipient\n" \
	"uid: " uid "\n" \
	"mail: " uid "@example.com\n" extra "\n"
#define GROUP_AT(cn, extra) \
	"dn: cn=" cn ",ou=People,o=example.com,o=example\n" \
	"objectClass: inetMailGroup\n" \
	"objectClass: inetLocalMailRecipient\n" \
	"cn: " cn "\n" \
	"mail: " cn "@example.com\n" \
	"mgrpRFC822MailMember: m1@example.net\n" extra "\n"
/* A domain NAME with a user u and the given domain attributes. */
#define DOMAIN(name, extra) \
	"dn: o=" name ",o=example\n" \
	"objectClass: organization\n" \
	"objectClass: mailDomain\n" \
	"o: " name "\n" \
	"sunPreferredDomain: " name "\n" extra "\n" \
	"dn: uid=u,o=" name ",o=example\n" \
	"objectClass: inetMailUser\n" \
	"objectClass: inetLocalMailRecipient\n" \
	"uid: u\n" \
	"mail: u@" name "\n\n"

static const char test_ldif[] =
	"version: 1\n"
	"\n"
	"dn: o=example.com,o=example\n"
	"objectClass: organization\n"
	"objectClass: mailDomain\n"
	"o: example.com\n"
	"sunPreferredDomain: example.com\n"
	"\n"
	"dn: o=Example.NET,o=example\n"
	"objectClass: organization\n"
	"objectClass: mailDomain\n"
	"o: example.net\n"
	"sunPreferredDomain: Example.NET\n"
	"inetDomainBaseDN: ou=People,o=example.net,o=example\n"
	"\n"
	USER("fwd", "mailDeliveryOption: forward\n"
	     "mailForwardingAddress: one@example.net\n"
	     "mailForwardingAddress: two@example.net\n"
	     "mailForwardingAddress: ONE@example.net\n")
	USER("plain", "")
	USER("held", "mailDeliveryOption: hold\n")
	USER("prog", "mailDeliveryOption: program\n"
	     "mailDeliveryOption: unknownoption\n"
	     "mailProgramDeliveryInfo: procmail\n")
	USER("both", "mailDeliveryOption: mailbox\n"
	     "mailDeliveryOption: native\n"
	     "mailDeliveryOption: autoreply\n")
	"dn: uid=Max,ou=People,o=example.net,o=example\n"
	"objectClass: inetMailUser\n"
	"objectClass: inetLocalMailRecipient\n"
	"uid: Max\n"
	"mail: max@example.net\n"
	"mailHost: mail.example.com\n"
	"mailDeliveryOption: mailbox\n"
	"\n"
	USER("heldmb", "mailDeliveryOption: mailbox\n"
	     "mailDeliveryOption: hold\n")
	USER_AT("status", "mailHost: store2.example.com\n"
		"mailUserStatus: hold\n"
		"mailDeliveryOption: mailbox\n"
		"mailDeliveryOption: forward\n"
		"mailForwardingAddress: elsewhere@example.net\n")
	USER_AT("away", "mailHost: store2.example.com\n"
		"mailDeliveryOption: mailbox\n"
		"mailDeliveryOption: hold\n")
	USER_AT("awayfwd", "mailHost: Store2.Example.COM\n"
		"mailDeliveryOption: forward\n"
		"mailForwardingAddress: fwd@example.net\n")
	USER_AT("alias", "mailHost: MX.example.com.\n")
	USER_AT("literal", "mailHost: [192.0.2.7]\n")
	USER_AT("bad", "mailHost: store2:x@y\n")
	USER_AT("nohost", "mailDeliveryOption: mailbox\n")
	USER_AT("nohostfwd", "mailDeliveryOption: forward\n"
		"mailForwardingAddress: fwd@example.net\n")
	GROUP_AT("remote", "mailHost: store2.example.com\n")
	GROUP_AT("local", "")
	DOMAIN("smart.example", "mailRoutingSmartHost: hub.example.com\n")
	DOMAIN("self.example", "mailRoutingSmartHost: MX.Example.COM.\n")
	DOMAIN("routed.example", "mailRoutingHosts: other.example.com\n"
	       "mailRoutingHosts: mx.example.com\n")
	DOMAIN("elsewhere.example", "mailRoutingHosts: other.example.com\n");

static const char *const local_aliases[] = { "mx.example.com", NULL };

static char *tmp_dir;

static const ImtaDirectoryOptions options = {
	.cache_size = 10,
	.cache_ttl = 60,
	.negative_ttl = 60,
	.local_host = "mail.example.com",
	.local_host_aliases = local_aliases,
};

static ImtaDirectory *
open_demo(void)
{
	g_autofree char *path = g_test_build_filename(G_TEST_DIST, "..", "conf",
						      "directory.ldif", NULL);
	g_autoptr(GError) error = NULL;
	ImtaDirectory *dir = imta_directory_open_ldif(path, &options, &error);

	g_assert_no_error(error);
	g_assert_nonnull(dir);
	return dir;
}

static ImtaDirectory *
open_test(void)
{
	g_autofree char *path = g_build_filename(tmp_dir, "delivery.ldif", NULL);
	g_autoptr(GError) error = NULL;
	ImtaDirectory *dir;

	g_file_set_contents(path, test_ldif, -1, &error);
	g_assert_no_error(error);
	dir = imta_directory_open_ldif(path, &options, &error);
	g_assert_no_error(error);
	g_assert_nonnull(dir);
	return dir;
}

/* Expand `address` with `delivery_options`: the addresses joined by
 * spaces, or "error: <message>" / "tempfail: <message>". */
static char *
expand(ImtaDirectory *dir, const char *delivery_options, const char *address)
{
	g_autoptr(ImtaDirEntry) entry = NULL;
	g_autoptr(GPtrArray) addresses = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GString) out = g_string_new(NULL);
	ImtaDirStatus status;

	status = imta_directory_lookup_local(dir, address, &entry, &error);
	g_assert_cmpint(status, ==, IMTA_DIR_FOUND);
	g_assert_no_error(error);
	status = imta_directory_delivery_addresses(dir, delivery_options, entry, address,
						   &addresses, &error);
	if (status == IMTA_DIR_NOT_FOUND &&
	    g_error_matches(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_NO_HOST)) {
		g_assert_null(addresses);
		return g_strdup_printf("no host: %s", error->message);
	}
	if (status == IMTA_DIR_NOT_FOUND) {
		g_assert_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA);
		g_assert_null(addresses);
		return g_strdup_printf("error: %s", error->message);
	}
	if (status == IMTA_DIR_TEMPFAIL) {
		g_assert_nonnull(error);
		return g_strdup_printf("tempfail: %s", error->message);
	}
	g_assert_no_error(error);
	for (guint i = 0; i < addresses->len; i++)
		g_string_append_printf(out, "%s%s", i > 0 ? " " : "",
				       (const char *)g_ptr_array_index(addresses, i));
	return g_string_free(g_steal_pointer(&out), FALSE);
}

typedef struct {
	const char *options;  /* NULL: the default */
	const char *address;
	const char *expected;
} ExpandCase;

static void
run_cases(ImtaDirectory *dir, const ExpandCase *cases, gsize n)
{
	for (gsize i = 0; i < n; i++) {
		g_autofree char *got = expand(dir, cases[i].options != NULL ? cases[i].options
									   : DEFAULT_OPTIONS,
					      cases[i].address);

		g_test_message("%s with %s", cases[i].address,
			       cases[i].options != NULL ? cases[i].options : "the default");
		g_assert_cmpstr(got, ==, cases[i].expected);
	}
}

static void
test_demo_users(void)
{
	static const ExpandCase cases[] = {
		{ NULL, "alice@example.com", "alice@ims-ms-daemon" },
		{ NULL, "alice+Archive@example.com", "alice+Archive@ims-ms-daemon" },
		{ NULL, "alice.smith@example.com", "alice@ims-ms-daemon" },
		{ NULL, "asmith+x@example.com", "alice+x@ims-ms-daemon" },
		{ NULL, "alice+@example.com", "alice@ims-ms-daemon" },
		{ NULL, "root@example.com", "postmaster@ims-ms-daemon" },
		{ NULL, "carol@example.org", "carol%example.org@ims-ms-daemon" },
		{ NULL, "carol+Work@example.org", "carol%example.org+Work@ims-ms-daemon" },
		{ NULL, "dave@example.com", "dave@ims-ms-daemon dave.brown@example.net" },
	};
	g_autoptr(ImtaDirectory) dir = open_demo();

	run_cases(dir, cases, G_N_ELEMENTS(cases));
}

static void
test_demo_groups(void)
{
	static const ExpandCase cases[] = {
		{ NULL, "staff@example.com",
		  "carol@example.org partner@example.net alice@example.com bob@example.com" },
		/* A group with only user rows delivers nowhere. */
		{ "*mailbox=$M@ims-ms-daemon", "staff@example.com",
		  "error: no delivery option of cn=staff,ou=Groups,o=example.com,o=example "
		  "applies (mailDeliveryOption: members)" },
		/* Members are expanded once, whatever the rows. */
		{ "&members=*, members_offline=*", "staff@example.com",
		  "carol@example.org partner@example.net alice@example.com bob@example.com" },
	};
	g_autoptr(ImtaDirectory) dir = open_demo();

	run_cases(dir, cases, G_N_ELEMENTS(cases));
}

static void
test_options_rows(void)
{
	static const ExpandCase cases[] = {
		/* forward only: the forwarding addresses, each once. */
		{ NULL, "fwd@example.com", "one@example.net two@example.net" },
		/* No mailDeliveryOption: mailbox. */
		{ NULL, "plain@example.com", "plain@ims-ms-daemon" },
		/* hold is a '/' row: the copy goes to the hold channel. */
		{ NULL, "held@example.com", "@hold-daemon:held@example.com" },
		/* Unknown options are skipped; $P from mailProgramDeliveryInfo. */
		{ NULL, "prog@example.com", "prog%procmail@pipe-daemon" },
		/* '^' (autoreply) is not applied; mailbox and native are. */
		{ NULL, "both+x@example.com", "both+x@ims-ms-daemon both@native-daemon" },
		/* Hosted domain: canonical name, lower-cased by $\. */
		{ NULL, "Max@example.net", "Max%example.net@ims-ms-daemon" },
		{ "*mailbox=$M%$^$2I$_+$2S@ims-ms-daemon", "max+a@example.net",
		  "Max%EXAMPLE.NET+a@ims-ms-daemon" },
		{ "mailbox=$\\$M@$D", "max@example.net", "max@example.net" },
		{ "mailbox=$^$L$_.$A", "max+Sub@example.net", "MAX+SUB.max+Sub@example.net" },
		/* $1I / $3I: nothing, or skip the next character. */
		{ "mailbox=$M$1I@x", "plain@example.com", "plain@x" },
		{ "mailbox=$M-$3I+@x", "plain@example.com", "plain-@x" },
		{ "mailbox=$M-$3I+@x", "max@example.net", "Max-example.net+@x" },
		{ "mailbox=$1M$2M$$@x", "plain@example.com", "pl$@x" },
		/* $0I / $I fail in the default domain. */
		{ "mailbox=$M$0I@x", "plain@example.com",
		  "error: delivery option mailbox of uid=plain,ou=People,o=example.com,o=example: "
		  "\"$I\" has no value for plain@example.com" },
		{ "mailbox=$M+$S@x", "plain@example.com",
		  "error: delivery option mailbox of uid=plain,ou=People,o=example.com,o=example: "
		  "\"$S\" has no value for plain@example.com" },
		{ "mailbox=$M+$S@x", "plain+s@example.com", "plain+s@x" },
		/* The missing file URL fails the file row (groups only here). */
		{ "mailbox=+$F@native-daemon", "plain@example.com",
		  "error: delivery option mailbox of uid=plain,ou=People,o=example.com,o=example: "
		  "\"$F\" has no value for plain@example.com" },
	};
	g_autoptr(ImtaDirectory) dir = open_test();

	run_cases(dir, cases, G_N_ELEMENTS(cases));
}

static void
test_options_errors(void)
{
	static const ExpandCase cases[] = {
		{ "mailbox", "plain@example.com",
		  "error: DELIVERY_OPTIONS entry 1: expected [flags]name=template, "
		  "got \"mailbox\"" },
		{ "*mailbox=$M@x, *=y", "plain@example.com",
		  "error: DELIVERY_OPTIONS entry 2: expected [flags]name=template, got \"*=y\"" },
		{ "mailbox=  ", "plain@example.com",
		  "error: DELIVERY_OPTIONS entry 1: expected [flags]name=template, "
		  "got \"mailbox=\"" },
		{ "mailbox=$M@x,,", "plain@example.com",
		  "error: DELIVERY_OPTIONS entry 2: expected [flags]name=template, got \"\"" },
		{ "mailbox=$M@$Q", "plain@example.com",
		  "error: DELIVERY_OPTIONS template of mailbox: unknown substitution \"$Q\" "
		  "at offset 3 of \"$M@$Q\"" },
		{ "mailbox=$2A", "plain@example.com",
		  "error: DELIVERY_OPTIONS template of mailbox: unknown substitution \"$2A\" "
		  "at offset 0 of \"$2A\"" },
		{ "mailbox=x$", "plain@example.com",
		  "error: DELIVERY_OPTIONS template of mailbox: unknown substitution \"$\" "
		  "at offset 1 of \"x$\"" },
		{ "mailbox=$\\$_", "plain@example.com",
		  "error: delivery option mailbox of uid=plain,ou=People,o=example.com,o=example: "
		  "expected an address of 1 to 1024 bytes, got 0" },
		/* A bad row fails even when another row would be used. */
		{ "mailbox=$M@x, native=$7", "plain@example.com",
		  "error: DELIVERY_OPTIONS template of native: unknown substitution \"$7\" "
		  "at offset 0 of \"$7\"" },
	};
	g_autoptr(ImtaDirectory) dir = open_test();

	run_cases(dir, cases, G_N_ELEMENTS(cases));
}

static void
test_hold(void)
{
	static const ExpandCase cases[] = {
		/* The demo's hank: status hold, option mailbox. */
		{ NULL, "hank@example.com", "@hold-daemon:hank@example.com" },
		{ NULL, "hank+Work@example.com", "@hold-daemon:hank+Work@example.com" },
		/* The option hold holds its copy; the others still apply. */
		{ NULL, "heldmb@example.com",
		  "heldmb@ims-ms-daemon @hold-daemon:heldmb@example.com" },
		{ NULL, "heldmb+x@example.com",
		  "heldmb+x@ims-ms-daemon @hold-daemon:heldmb+x@example.com" },
		/* Status hold overrides every option and the mail host. */
		{ NULL, "status@example.com", "@hold-daemon:status@example.com" },
		/* The '/' row's template serves held users... */
		{ "*mailbox=$M@ims-ms-daemon, /hold=$M@hold-daemon", "status+x@example.com",
		  "status@hold-daemon" },
		/* ...and without one, the hold channel's route. */
		{ "*mailbox=$M@ims-ms-daemon", "status+x@example.com",
		  "@hold-daemon:status+x@example.com" },
		/* A '/' row that gives no address. */
		{ "*mailbox=$M@ims-ms-daemon, /hold=*", "status@example.com",
		  "error: the hold row of DELIVERY_OPTIONS gives no address for "
		  "uid=status,ou=People,o=example.com,o=example" },
		/* A '/' row needs what its template names. */
		{ "/hold=$M+$S@hold-daemon", "status@example.com",
		  "error: delivery option hold of uid=status,ou=People,o=example.com,o=example: "
		  "\"$S\" has no value for status@example.com" },
	};
	g_autoptr(ImtaDirectory) dir = open_test();
	g_autoptr(ImtaDirectory) demo = open_demo();

	run_cases(demo, cases, 2);
	run_cases(dir, cases + 2, G_N_ELEMENTS(cases) - 2);
}

static void
test_mail_host(void)
{
	static const ExpandCase cases[] = {
		/* Another mail host: the address as received, routed there. */
		{ NULL, "away@example.com", "@store2.example.com:away@example.com" },
		{ NULL, "away+Sub@example.com", "@store2.example.com:away+Sub@example.com" },
		/* Only '#' options: expanded here whatever the mail host. */
		{ NULL, "awayfwd@example.com", "fwd@example.net" },
		{ "forward=**", "awayfwd@example.com", "@Store2.Example.COM:awayfwd@example.com" },
		/* A template naming the mail host routes there by itself. */
		{ "*mailbox=@$X.LMTP:$M%$\\$2I$_+$2S@tcp_lmtpcs-daemon, #forward=**",
		  "away+S@example.com", "@store2.example.com.LMTP:away+S@tcp_lmtpcs-daemon" },
		/* An alias of the local host, any case, a trailing dot. */
		{ NULL, "alias@example.com", "alias@ims-ms-daemon" },
		{ NULL, "literal@example.com", "@[192.0.2.7]:literal@example.com" },
		{ NULL, "bad@example.com",
		  "error: mailHost of uid=bad,ou=People,o=example.com,o=example: expected a host "
		  "name, got \"store2:x@y\"" },
		/* No mailHost: the domain's smart host, which may be here. */
		{ NULL, "u@smart.example", "@hub.example.com:u@smart.example" },
		{ NULL, "u+x@smart.example", "@hub.example.com:u+x@smart.example" },
		{ NULL, "u@self.example", "u%self.example@ims-ms-daemon" },
		/* Neither: a permanent failure. */
		{ NULL, "nohost@example.com",
		  "no host: uid=nohost,ou=People,o=example.com,o=example has no mailHost and its "
		  "domain example.com has no mailRoutingSmartHost" },
		{ NULL, "u@routed.example",
		  "no host: uid=u,o=routed.example,o=example has no mailHost and its domain "
		  "routed.example has no mailRoutingSmartHost" },
		/* ...unless nothing needs a mail host. */
		{ NULL, "nohostfwd@example.com", "fwd@example.net" },
		/* Groups: a remote mailHost routes, none expands here. */
		{ NULL, "remote@example.com", "@store2.example.com:remote@example.com" },
		{ NULL, "local@example.com", "m1@example.net" },
	};
	g_autoptr(ImtaDirectory) dir = open_test();

	run_cases(dir, cases, G_N_ELEMENTS(cases));
}

/* mailRoutingHosts naming an alias of the local host makes the domain
 * local, as the local host name itself does. */
static void
test_routing_hosts_alias(void)
{
	static const struct {
		const char *domain;
		ImtaDirStatus expected;
	} cases[] = {
		{ "routed.example", IMTA_DIR_FOUND },
		{ "elsewhere.example", IMTA_DIR_NOT_FOUND },
		{ "smart.example", IMTA_DIR_FOUND },
	};
	g_autoptr(ImtaDirectory) dir = open_test();

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;

		g_test_message("%s", cases[i].domain);
		g_assert_cmpint(imta_directory_domain_is_local(dir, cases[i].domain, &error), ==,
				cases[i].expected);
		g_assert_no_error(error);
	}
}

static void
test_lookup_local(void)
{
	static const struct {
		const char *address;
		const char *uid;   /* NULL: not found */
	} cases[] = {
		{ "alice+Archive@example.com", "alice" },
		{ "Alice+a+b@Example.COM", "alice" },
		{ "alice+@example.com", "alice" },
		{ "alice.smith+x@example.com", "alice" },
		{ "carol+Work@example.org", "carol" },
		{ "nosuch+x@example.com", NULL },
		{ "+alice@example.com", NULL },
		{ "alice+x", NULL },
	};
	g_autoptr(ImtaDirectory) dir = open_demo();

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(ImtaDirEntry) entry = NULL;
		g_autoptr(GError) error = NULL;
		ImtaDirStatus status = imta_directory_lookup_local(dir, cases[i].address, &entry,
								   &error);

		g_test_message("%s", cases[i].address);
		if (cases[i].uid == NULL) {
			g_assert_cmpint(status, ==, IMTA_DIR_NOT_FOUND);
			g_assert_null(entry);
			continue;
		}
		g_assert_no_error(error);
		g_assert_cmpint(status, ==, IMTA_DIR_FOUND);
		g_assert_cmpstr(entry->uid, ==, cases[i].uid);
	}
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	int rc;

	g_test_init(&argc, &argv, NULL);
	tmp_dir = g_dir_make_tmp("test-delivery-XXXXXX", &error);
	g_assert_no_error(error);

	g_test_add_func("/delivery/lookup/local", test_lookup_local);
	g_test_add_func("/delivery/demo/users", test_demo_users);
	g_test_add_func("/delivery/demo/groups", test_demo_groups);
	g_test_add_func("/delivery/options/rows", test_options_rows);
	g_test_add_func("/delivery/options/errors", test_options_errors);
	g_test_add_func("/delivery/hold", test_hold);
	g_test_add_func("/delivery/mail-host", test_mail_host);
	g_test_add_func("/delivery/mail-host/routing-hosts-alias", test_routing_hosts_alias);
	rc = g_test_run();

	{
		g_autofree char *path = g_build_filename(tmp_dir, "delivery.ldif", NULL);

		g_unlink(path);
		g_rmdir(tmp_dir);
		g_free(tmp_dir);
	}
	return rc;
}
