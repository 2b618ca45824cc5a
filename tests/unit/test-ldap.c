/*
 * test-ldap.c - the LDAP directory backend without a server: its
 * settings (server lists, binds, secrets, limits) and what it answers
 * when no server is there.  tests/cli/ldap.sh runs it against slapd.
 */
#include "config.h"

#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/directory.h>
#include <imta/error.h>

typedef struct {
	const char *text;
	const char *expected;   /* normalised URIs joined by " ", or the error */
} UriRow;

static void
test_uris(void)
{
	static const UriRow rows[] = {
		{ "ldap://ldap.example.com", "ldap://ldap.example.com:389" },
		{ "LDAP://LDAP.Example.COM:3389/", "ldap://ldap.example.com:3389" },
		{ "ldaps://ldap.example.com", "ldaps://ldap.example.com:636" },
		{ "ldap://[2001:db8::1]:1389", "ldap://[2001:db8::1]:1389" },
		{ "ldapi://%2Frun%2Fslapd%2Fldapi", "ldapi://%2Frun%2Fslapd%2Fldapi" },
		{ "ldapi:///", "ldapi:///" },
		{ " ldap://a, ldap://b:2 ,ldap://c ", "ldap://a:389 ldap://b:2 ldap://c:389" },
		{ "", "expected at least one LDAP URI" },
		{ " , ", "expected at least one LDAP URI" },
		{ "http://ldap.example.com",
		  "LDAP URI \"http://ldap.example.com\": expected ldap://host[:port], "
		  "ldaps://host[:port] or ldapi://%2Fsocket%2Fpath" },
		{ "ldap://a ldap://b/o=example",
		  "LDAP URI \"ldap://b/o=example\": a server URI names a server only; the base DN "
		  "is LDAP_BASE_DN" },
		{ "ldap://a/??sub",
		  "LDAP URI \"ldap://a/??sub\": a server URI names a server only; the base DN is "
		  "LDAP_BASE_DN" },
		{ "ldap://a:99999", "LDAP URI \"ldap://a:99999\": expected a port between 1 and "
		  "65535" },
		{ "ldap:///", "LDAP URI \"ldap:///\": expected a host name or address" },
		{ "ldapi://relative", "LDAP URI \"ldapi://relative\": an ldapi:// URI names an "
		  "absolute socket path, with each '/' written %2F" },
		{ "ldap://a ldap://b ldap://c ldap://d ldap://e ldap://f ldap://g ldap://h ldap://i "
		  "ldap://j ldap://k ldap://l ldap://m ldap://n ldap://o ldap://p ldap://q",
		  "17 LDAP URIs given; at most 16 are allowed" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(GError) error = NULL;
		g_auto(GStrv) uris = imta_directory_ldap_parse_uris(rows[i].text, &error);

		g_test_message("row %zu: %s", i, rows[i].text);
		if (uris != NULL) {
			g_autofree char *joined = g_strjoinv(" ", uris);

			g_assert_no_error(error);
			g_assert_cmpstr(joined, ==, rows[i].expected);
		} else {
			g_assert_nonnull(error);
			g_assert_cmpstr(error->message, ==, rows[i].expected);
		}
	}
}

static void
test_hosts(void)
{
	static const UriRow rows[] = {
		{ "ldap1", "ldap://ldap1:389" },
		{ "ldap1 ldap2:3389", "ldap://ldap1:389 ldap://ldap2:3389" },
		{ "[2001:db8::1] [::1]:10389", "ldap://[2001:db8::1]:389 ldap://[::1]:10389" },
		{ "ldap1,ldap2", "ldap://ldap1:389 ldap://ldap2:389" },
		{ "ldap1:0", "LDAP host \"ldap1:0\": expected host, host:port or "
		  "[IPv6-address]:port (port 1 to 65535)" },
		{ "2001:db8::1", "LDAP host \"2001:db8::1\": expected host, host:port or "
		  "[IPv6-address]:port (port 1 to 65535)" },
		{ "[ldap1]", "LDAP host \"[ldap1]\": expected host, host:port or "
		  "[IPv6-address]:port (port 1 to 65535)" },
		{ "ho/st", "LDAP host \"ho/st\": expected host, host:port or "
		  "[IPv6-address]:port (port 1 to 65535)" },
		{ "", "expected 1 to 16 LDAP hosts, got 0" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *uris = imta_directory_ldap_hosts_to_uris(rows[i].text, 389, &error);

		g_test_message("row %zu: %s", i, rows[i].text);
		if (uris != NULL)
			g_assert_cmpstr(uris, ==, rows[i].expected);
		else
			g_assert_cmpstr(error->message, ==, rows[i].expected);
	}
}

/* A loopback port nothing listens on (bound, then closed). */
static guint
dead_port(void)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
	g_assert_cmpint(getsockname(fd, (struct sockaddr *)&sa, &len), ==, 0);
	close(fd);
	return ntohs(sa.sin_port);
}

typedef struct {
	ImtaDirectoryLdapOptions options;
	const char *password_file_text;   /* written with mode `mode` when set */
	guint mode;
	ImtaConfigErrorCode code;
	const char *message;              /* NULL: the open succeeds */
} SettingsRow;

static void
test_settings(void)
{
	static const SettingsRow rows[] = {
		{ { .uris = "ldap://a", .base_dn = "o=example" }, NULL, 0, 0, NULL },
		{ { .base_dn = "o=example" }, NULL, 0, IMTA_CONFIG_ERROR_MISSING,
		  "the LDAP directory needs LDAP_URIS (or LDAP_HOST): no server is set" },
		{ { .uris = "ldap://a" }, NULL, 0, IMTA_CONFIG_ERROR_MISSING,
		  "the LDAP directory needs LDAP_BASE_DN (the subtree of users and groups)" },
		{ { .uris = "ldap://a", .base_dn = "example" }, NULL, 0, IMTA_CONFIG_ERROR_SYNTAX,
		  "LDAP_BASE_DN \"example\": not a valid DN" },
		{ { .uris = "ldap://a", .base_dn = "o=x", .domain_root = "x" }, NULL, 0,
		  IMTA_CONFIG_ERROR_SYNTAX, "LDAP_DOMAIN_ROOT \"x\": not a valid DN" },
		{ { .uris = "ftp://a", .base_dn = "o=x" }, NULL, 0, IMTA_CONFIG_ERROR_SYNTAX,
		  "LDAP_URIS: LDAP URI \"ftp://a\": expected ldap://host[:port], ldaps://host[:port] "
		  "or ldapi://%2Fsocket%2Fpath" },
		{ { .uris = "ldap://a", .base_dn = "o=x", .bind_dn = "cn=mta,o=x" }, NULL, 0,
		  IMTA_CONFIG_ERROR_MISSING, "LDAP_BIND_DN is set but neither "
		  "LDAP_BIND_PASSWORD_FILE nor LDAP_BIND_PASSWORD" },
		{ { .uris = "ldap://a", .base_dn = "o=x", .bind_password = "pw" }, NULL, 0,
		  IMTA_CONFIG_ERROR_MISSING, "a bind password is set but LDAP_BIND_DN is not" },
		{ { .uris = "ldap://a", .base_dn = "o=x", .bind_dn = "cn=mta,o=x",
		    .bind_password = "pw" }, NULL, 0, 0, NULL },
		{ { .uris = "ldap://a", .base_dn = "o=x", .bind_dn = "cn=mta,o=x" }, "pw\n", 0600, 0,
		  NULL },
		{ { .uris = "ldap://a", .base_dn = "o=x", .bind_dn = "cn=mta,o=x" }, "pw\n", 0640,
		  IMTA_CONFIG_ERROR_RANGE, "LDAP_BIND_PASSWORD_FILE \"%s\": group or others may "
		  "access it (mode 0640); make it readable by the MTA's user only (chmod 600)" },
		{ { .uris = "ldap://a", .base_dn = "o=x", .bind_dn = "cn=mta,o=x" }, "\n", 0600,
		  IMTA_CONFIG_ERROR_SYNTAX, "LDAP_BIND_PASSWORD_FILE \"%s\": expected the password "
		  "on one line" },
		{ { .uris = "ldap://a", .base_dn = "o=x", .bind_dn = "cn=mta,o=x" }, "a\nb\n", 0600,
		  IMTA_CONFIG_ERROR_SYNTAX, "LDAP_BIND_PASSWORD_FILE \"%s\": expected the password "
		  "on one line" },
		{ { .uris = "ldap://a", .base_dn = "o=x", .sasl_mech = "external" }, NULL, 0, 0,
		  NULL },
		{ { .uris = "ldap://a", .base_dn = "o=x", .sasl_mech = "PLAIN" }, NULL, 0,
		  IMTA_CONFIG_ERROR_MISSING, "LDAP_SASL_MECH PLAIN needs LDAP_SASL_AUTHCID and a "
		  "password (LDAP_BIND_PASSWORD_FILE or LDAP_BIND_PASSWORD)" },
		{ { .uris = "ldap://a", .base_dn = "o=x", .sasl_mech = "PLAIN",
		    .sasl_authcid = "mta", .bind_password = "pw" }, NULL, 0, 0, NULL },
		{ { .uris = "ldap://a", .base_dn = "o=x", .sasl_mech = "PLAIN", .bind_dn = "cn=x",
		    .sasl_authcid = "mta", .bind_password = "pw" }, NULL, 0,
		  IMTA_CONFIG_ERROR_SYNTAX, "LDAP_BIND_DN is for simple binds; with "
		  "LDAP_SASL_MECH the identity is LDAP_SASL_AUTHCID" },
		{ { .uris = "ldap://a", .base_dn = "o=x", .sasl_mech = "GSS API" }, NULL, 0,
		  IMTA_CONFIG_ERROR_SYNTAX, "LDAP_SASL_MECH \"GSS API\": expected a SASL mechanism "
		  "name such as EXTERNAL, PLAIN or DIGEST-MD5" },
		{ { .uris = "ldap://a", .base_dn = "o=x", .timeout = 601 }, NULL, 0,
		  IMTA_CONFIG_ERROR_RANGE, "LDAP_TIMEOUT: expected an integer between 1 and 600, "
		  "got 601" },
		{ { .uris = "ldap://a", .base_dn = "o=x", .pool_size = 2000 }, NULL, 0,
		  IMTA_CONFIG_ERROR_RANGE, "LDAP_POOL_SIZE: expected an integer between 1 and "
		  "1024, got 2000" },
	};
	g_autofree char *dir = g_dir_make_tmp("test-ldap-XXXXXX", NULL);
	g_autofree char *file = g_build_filename(dir, "secret", NULL);

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		ImtaDirectoryLdapOptions options = rows[i].options;
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaDirectory) directory = NULL;

		g_test_message("row %zu", i);
		if (rows[i].password_file_text != NULL) {
			g_assert_true(g_file_set_contents(file, rows[i].password_file_text, -1,
							  NULL));
			g_assert_cmpint(g_chmod(file, (int)rows[i].mode), ==, 0);
			options.bind_password_file = file;
		}
		directory = imta_directory_open_ldap(&options, NULL, &error);
		if (rows[i].message == NULL) {
			g_assert_no_error(error);
			g_assert_nonnull(directory);
			g_assert_cmpstr(imta_directory_backend_name(directory), ==, "ldap");
		} else {
			g_auto(GStrv) parts = g_strsplit(rows[i].message, "%s", -1);
			g_autofree char *expected = g_strjoinv(file, parts);

			g_assert_null(directory);
			g_assert_error(error, IMTA_CONFIG_ERROR, (gint)rows[i].code);
			g_assert_cmpstr(error->message, ==, expected);
		}
	}
	g_unlink(file);
	g_rmdir(dir);
}

/* No server: every question is a temporary failure, never "no such
 * user", and it comes quickly. */
static void
test_no_server(void)
{
	g_autofree char *uris = g_strdup_printf("ldap://127.0.0.1:%u ldap://127.0.0.1:%u",
						dead_port(), dead_port());
	ImtaDirectoryLdapOptions ldap = {
		.uris = uris, .base_dn = "o=example", .timeout = 2, .connect_timeout = 1,
		.auth_method = IMTA_DIR_LDAP_AUTH_BIND,
	};
	ImtaDirectoryOptions options = { .cache_size = 100, .cache_ttl = 60, .negative_ttl = 60 };
	g_autoptr(ImtaDirectory) dir = imta_directory_open_ldap(&ldap, &options, NULL);
	gint64 start = g_get_monotonic_time();

	g_assert_nonnull(dir);
	for (guint round = 0; round < 2; round++) {
		g_autoptr(ImtaDirEntry) entry = NULL;
		g_autoptr(ImtaDirDomain) domain = NULL;
		g_autoptr(GError) e1 = NULL, e2 = NULL, e3 = NULL, e4 = NULL;

		/* The second round: TEMPFAIL was not cached. */
		g_assert_cmpint(imta_directory_lookup_address(dir, "alice@example.com", &entry,
							      &e1), ==, IMTA_DIR_TEMPFAIL);
		g_assert_error(e1, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_TEMPORARY);
		g_assert_nonnull(strstr(e1->message, "no LDAP server answers: ldap://127.0.0.1:"));
		g_assert_cmpint(imta_directory_lookup_domain(dir, "example.com", &domain, &e2), ==,
				IMTA_DIR_TEMPFAIL);
		g_assert_error(e2, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_TEMPORARY);
		g_assert_cmpint(imta_directory_lookup_dn(dir, "uid=alice,o=example", &entry, &e3),
				==, IMTA_DIR_TEMPFAIL);
		g_assert_cmpint(imta_directory_authenticate(dir, "alice", "alicepw", &e4), ==,
				IMTA_DIR_TEMPFAIL);
		g_assert_error(e4, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_TEMPORARY);
	}
	g_assert_cmpint(g_get_monotonic_time() - start, <, 5 * G_USEC_PER_SEC);
}

/* A server that accepts the connection and never answers costs the
 * operation timeout, not forever. */
static void
test_hung_server(void)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	g_autofree char *uri = NULL;
	g_autoptr(ImtaDirectory) dir = NULL;
	g_autoptr(ImtaDirEntry) entry = NULL;
	g_autoptr(GError) error = NULL;
	ImtaDirectoryLdapOptions ldap = { .base_dn = "o=example", .timeout = 1,
					  .connect_timeout = 1 };
	gint64 start, took;

	g_assert_cmpint(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
	g_assert_cmpint(listen(fd, 8), ==, 0);
	g_assert_cmpint(getsockname(fd, (struct sockaddr *)&sa, &len), ==, 0);
	uri = g_strdup_printf("ldap://127.0.0.1:%u", ntohs(sa.sin_port));
	ldap.uris = uri;
	dir = imta_directory_open_ldap(&ldap, NULL, NULL);
	start = g_get_monotonic_time();
	g_assert_cmpint(imta_directory_lookup_address(dir, "alice@example.com", &entry, &error),
			==, IMTA_DIR_TEMPFAIL);
	took = g_get_monotonic_time() - start;
	g_assert_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_TEMPORARY);
	g_assert_cmpint(took, >=, G_USEC_PER_SEC / 2);
	g_assert_cmpint(took, <, 4 * G_USEC_PER_SEC);
	close(fd);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/ldap/config/uris", test_uris);
	g_test_add_func("/ldap/config/hosts", test_hosts);
	g_test_add_func("/ldap/config/settings", test_settings);
	g_test_add_func("/ldap/unavailable/no-server", test_no_server);
	g_test_add_func("/ldap/unavailable/hung-server", test_hung_server);
	return g_test_run();
}
