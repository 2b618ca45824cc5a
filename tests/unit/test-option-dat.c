/*
 * test-option-dat.c - option.dat (defaults, comment styles, continuation
 * lines, b%v integers, positioned errors) and the option-table engine
 * underneath every NAME=value file.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/options.h>
#include <imta/option_dat.h>

static ImtaOptionDat *
parse(const char *text, GError **error)
{
	return imta_option_dat_parse_text("option.dat", text, strlen(text), NULL, error);
}

static ImtaOptionDat *
parse_ok(const char *text)
{
	g_autoptr(GError) error = NULL;
	ImtaOptionDat *od = parse(text, &error);

	g_assert_no_error(error);
	g_assert_nonnull(od);
	return od;
}

static char *
value_of(const ImtaOptionDat *od, const char *name)
{
	char *text = imta_option_value_text(imta_option_dat_options, imta_option_dat_n_options,
					    od, name);

	g_assert_nonnull(text);
	return text;
}

typedef struct {
	const char *name;
	const char *value;
} NameValue;

static const NameValue default_rows[] = {
	{ "BLOCK_SIZE", "1024" }, { "BLOCK_LIMIT", "0" }, { "LINE_LIMIT", "0" },
	{ "RETURN_UNITS", "0" }, { "RETURN_ADDRESS", "" }, { "RETURN_PERSONAL", "" },
	{ "CONTENT_RETURN_BLOCK_LIMIT", "0" }, { "ALIAS_MAGIC", "8764" },
	{ "ALIAS_URL0", "ldap:///$V?*?sub?$R" }, { "ALIAS_URL1", "" }, { "ALIAS_URL2", "" },
	{ "ALIAS_URL3", "" },
	{ "DELIVERY_OPTIONS",
	  "*mailbox=$M%$\\$2I$_+$2S@ims-ms-daemon, &members=*, *native=$M@native-daemon, "
	  "/hold=@hold-daemon:$A, *unix=$M@native-daemon, &file=+$F@native-daemon, "
	  "&@members_offline=*, program=$M%$P@pipe-daemon, #forward=**, "
	  "*^!autoreply=$M+$D@bitbucket" },
	{ "DOMAIN_UPLEVEL", "0" },
	{ "DOMAIN_FAILURE",
	  "reprocess-daemon$Mtcp_local$1M$1~-error$4000000?Temporary lookup failure" },
	{ "DOMAIN_MATCH_URL", "" }, { "ROUTE_TO_ROUTING_HOST", "0" },
	{ "USE_REVERSE_DATABASE", "4" }, { "REVERSE_ENVELOPE", "1" },
	{ "REVERSE_URL", "ldap:///$V?$N?sub?$R" }, { "ACCESS_ERRORS", "0" },
	{ "ACCESS_ORCPT", "0" }, { "LOG_CONNECTION", "0" }, { "LOG_FILENAME", "0" },
	{ "LOG_MESSAGE_ID", "0" }, { "LOG_PROCESS", "0" }, { "SEPARATE_CONNECTION_LOG", "0" },
	{ "LDAP_MAILHOST", "mailHost" }, { "LDAP_DELIVERY_OPTION", "mailDeliveryOption" },
	{ "LDAP_USER_OBJECT_CLASSES", "inetLocalMailRecipient,inetMailUser" },
	{ "LDAP_GROUP_OBJECT_CLASSES", "inetLocalMailRecipient,inetMailGroup" },
	{ "LDAP_GROUP_RFC822", "mgrpRFC822MailMember" }, { "LDAP_GROUP_URL1", "mgrpDeliverTo" },
	{ "LDAP_GROUP_URL2", "memberURL" },
	{ "LDAP_DOMAIN_ATTR_CANONICAL", "inetCanonicalDomainName" },
	{ "DIRECTORY_CACHE_SIZE", "10000" }, { "DIRECTORY_CACHE_TTL", "600" },
	{ "DIRECTORY_NEGATIVE_TTL", "60" },
	{ "LDAP_URIS", "" }, { "LDAP_HOST", "" }, { "LDAP_PORT", "389" }, { "LDAP_BIND_DN", "" },
	{ "LDAP_BIND_PASSWORD", "" }, { "LDAP_BIND_PASSWORD_FILE", "" }, { "LDAP_SASL_MECH", "" },
	{ "LDAP_SASL_AUTHCID", "" }, { "LDAP_SASL_AUTHZID", "" }, { "LDAP_SASL_REALM", "" },
	{ "LDAP_BASE_DN", "" }, { "LDAP_DOMAIN_ROOT", "" }, { "LDAP_TIMEOUT", "10" },
	{ "LDAP_CONNECT_TIMEOUT", "5" }, { "LDAP_POOL_SIZE", "8" }, { "LDAP_RETRY_INTERVAL", "60" },
	{ "LDAP_AUTH_METHOD", "compare" }, { "LDAP_TLS_CA_FILE", "" }, { "LDAP_STARTTLS", "0" },
	{ "LDAP_TLS_VERIFY", "1" },
	{ "DNS_SERVERS", "" }, { "DNS_TIMEOUT", "5" }, { "TLS_CERTIFICATE_FILE", "" },
	{ "TLS_KEY_FILE", "" }, { "TLS_PRIORITY", "NORMAL:-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1" },
};

static void
check_defaults(const ImtaOptionDat *od)
{
	g_assert_cmpuint(G_N_ELEMENTS(default_rows), ==, imta_option_dat_n_options);
	for (gsize i = 0; i < G_N_ELEMENTS(default_rows); i++) {
		g_autofree char *value = value_of(od, default_rows[i].name);

		g_test_message("%s", default_rows[i].name);
		g_assert_cmpstr(value, ==, default_rows[i].value);
	}
}

static void
test_defaults(void)
{
	g_autoptr(ImtaOptionDat) empty = parse_ok("");
	g_autoptr(ImtaOptionDat) builtin = imta_option_dat_new_default();

	check_defaults(empty);
	check_defaults(builtin);
	g_assert_null(builtin->path);
	g_assert_cmpstr(empty->path, ==, "option.dat");
	g_assert_cmpint(empty->block_size, ==, 1024);
	g_assert_cmpstr(empty->alias_url[0], ==, "ldap:///$V?*?sub?$R");
	g_assert_null(empty->alias_url[1]);
	g_assert_true(empty->reverse_envelope);
	g_assert_cmpint(empty->directory_cache_ttl, ==, 600);
}

typedef struct {
	const char *text;
	const char *name;
	const char *value;
} ValueRow;

static void
test_values(void)
{
	static const ValueRow rows[] = {
		{ "BLOCK_SIZE=512", "BLOCK_SIZE", "512" },
		{ "block_size=16%400", "BLOCK_SIZE", "1024" },
		{ "Block_Size = 8%777", "BLOCK_SIZE", "511" },
		{ "BLOCK_SIZE=1", "BLOCK_SIZE", "1" },
		{ "BLOCK_SIZE=1073741824", "BLOCK_SIZE", "1073741824" },
		{ "BLOCK_LIMIT=51200", "BLOCK_LIMIT", "51200" },
		{ "LINE_LIMIT=0", "LINE_LIMIT", "0" },
		{ "RETURN_UNITS=1", "RETURN_UNITS", "1" },
		{ "RETURN_ADDRESS=postmaster@example.com", "RETURN_ADDRESS",
		  "postmaster@example.com" },
		{ "RETURN_ADDRESS=", "RETURN_ADDRESS", "" },
		{ "RETURN_PERSONAL=Mail Delivery System", "RETURN_PERSONAL", "Mail Delivery System" },
		{ "CONTENT_RETURN_BLOCK_LIMIT=1024", "CONTENT_RETURN_BLOCK_LIMIT", "1024" },
		{ "ALIAS_MAGIC=8764", "ALIAS_MAGIC", "8764" },
		{ "ALIAS_URL1=ldap:///$V?*?sub?(mgrpRFC822MailMember=$A)", "ALIAS_URL1",
		  "ldap:///$V?*?sub?(mgrpRFC822MailMember=$A)" },
		{ "ALIAS_URL3=ldaps://ldap.example.com/o=x?mail?sub?(uid=$L)", "ALIAS_URL3",
		  "ldaps://ldap.example.com/o=x?mail?sub?(uid=$L)" },
		{ "ALIAS_URL0=", "ALIAS_URL0", "" },
		{ "DELIVERY_OPTIONS=*mailbox=@$X.LMTP:$M%$\\$2I$_+$2S@lmtpcs-daemon, &members=*",
		  "DELIVERY_OPTIONS", "*mailbox=@$X.LMTP:$M%$\\$2I$_+$2S@lmtpcs-daemon, &members=*" },
		{ "DOMAIN_UPLEVEL=3", "DOMAIN_UPLEVEL", "3" },
		{ "DOMAIN_FAILURE=$U@hold-daemon", "DOMAIN_FAILURE", "$U@hold-daemon" },
		{ "DOMAIN_MATCH_URL=ldap:///$B?msgVanityDomain?sub?(msgVanityDomain=$D)",
		  "DOMAIN_MATCH_URL", "ldap:///$B?msgVanityDomain?sub?(msgVanityDomain=$D)" },
		{ "ROUTE_TO_ROUTING_HOST=1", "ROUTE_TO_ROUTING_HOST", "1" },
		{ "USE_REVERSE_DATABASE=31", "USE_REVERSE_DATABASE", "31" },
		{ "REVERSE_ENVELOPE=0", "REVERSE_ENVELOPE", "0" },
		{ "REVERSE_URL=ldap:///$V?mail?sub?$R", "REVERSE_URL", "ldap:///$V?mail?sub?$R" },
		{ "ACCESS_ERRORS=1", "ACCESS_ERRORS", "1" },
		{ "ACCESS_ORCPT=1", "ACCESS_ORCPT", "1" },
		{ "LOG_CONNECTION=2%111", "LOG_CONNECTION", "7" },
		{ "LOG_FILENAME=1", "LOG_FILENAME", "1" },
		{ "LOG_MESSAGE_ID=1", "LOG_MESSAGE_ID", "1" },
		{ "LOG_PROCESS=2", "LOG_PROCESS", "2" },
		{ "SEPARATE_CONNECTION_LOG=1", "SEPARATE_CONNECTION_LOG", "1" },
		{ "LDAP_MAILHOST=mailHostName", "LDAP_MAILHOST", "mailHostName" },
		{ "LDAP_DELIVERY_OPTION=x-delivery", "LDAP_DELIVERY_OPTION", "x-delivery" },
		{ "LDAP_USER_OBJECT_CLASSES=inetMailUser, posixAccount", "LDAP_USER_OBJECT_CLASSES",
		  "inetMailUser, posixAccount" },
		{ "LDAP_GROUP_OBJECT_CLASSES=groupOfNames", "LDAP_GROUP_OBJECT_CLASSES",
		  "groupOfNames" },
		{ "LDAP_GROUP_RFC822=rfc822MailMember", "LDAP_GROUP_RFC822", "rfc822MailMember" },
		{ "LDAP_GROUP_URL1=mgrpDeliverTo", "LDAP_GROUP_URL1", "mgrpDeliverTo" },
		{ "LDAP_GROUP_URL2=memberURL", "LDAP_GROUP_URL2", "memberURL" },
		{ "LDAP_DOMAIN_ATTR_CANONICAL=sunPreferredDomain", "LDAP_DOMAIN_ATTR_CANONICAL",
		  "sunPreferredDomain" },
		{ "DIRECTORY_CACHE_SIZE=0", "DIRECTORY_CACHE_SIZE", "0" },
		{ "DIRECTORY_CACHE_SIZE=10000000", "DIRECTORY_CACHE_SIZE", "10000000" },
		{ "DIRECTORY_CACHE_TTL=PT5M", "DIRECTORY_CACHE_TTL", "300" },
		{ "DIRECTORY_CACHE_TTL=86400", "DIRECTORY_CACHE_TTL", "86400" },
		{ "DIRECTORY_NEGATIVE_TTL=0", "DIRECTORY_NEGATIVE_TTL", "0" },
		{ "LDAP_URIS=ldap://ldap1.example.com ldap://ldap2.example.com:3389", "LDAP_URIS",
		  "ldap://ldap1.example.com ldap://ldap2.example.com:3389" },
		{ "LDAP_URIS=ldapi://%2Frun%2Fslapd%2Fldapi,ldaps://[::1]", "LDAP_URIS",
		  "ldapi://%2Frun%2Fslapd%2Fldapi,ldaps://[::1]" },
		{ "LDAP_HOST=ldap1 ldap2:3389 [2001:db8::1]:636", "LDAP_HOST",
		  "ldap1 ldap2:3389 [2001:db8::1]:636" },
		{ "LDAP_PORT=636", "LDAP_PORT", "636" },
		{ "LDAP_BIND_DN=cn=mta, o=example", "LDAP_BIND_DN", "cn=mta, o=example" },
		{ "LDAP_BIND_PASSWORD_FILE=ldap.secret", "LDAP_BIND_PASSWORD_FILE", "ldap.secret" },
		{ "LDAP_SASL_MECH=DIGEST-MD5", "LDAP_SASL_MECH", "DIGEST-MD5" },
		{ "LDAP_SASL_AUTHCID=mta", "LDAP_SASL_AUTHCID", "mta" },
		{ "LDAP_BASE_DN=o=example", "LDAP_BASE_DN", "o=example" },
		{ "LDAP_DOMAIN_ROOT=o=internet", "LDAP_DOMAIN_ROOT", "o=internet" },
		{ "LDAP_TIMEOUT=PT1M", "LDAP_TIMEOUT", "60" },
		{ "LDAP_CONNECT_TIMEOUT=1", "LDAP_CONNECT_TIMEOUT", "1" },
		{ "LDAP_POOL_SIZE=1024", "LDAP_POOL_SIZE", "1024" },
		{ "LDAP_RETRY_INTERVAL=86400", "LDAP_RETRY_INTERVAL", "86400" },
		{ "LDAP_AUTH_METHOD=bind", "LDAP_AUTH_METHOD", "bind" },
		{ "LDAP_AUTH_METHOD=Compare", "LDAP_AUTH_METHOD", "Compare" },
		{ "LDAP_TLS_CA_FILE=ldap-ca.pem", "LDAP_TLS_CA_FILE", "ldap-ca.pem" },
		{ "LDAP_STARTTLS=1", "LDAP_STARTTLS", "1" },
		{ "LDAP_TLS_VERIFY=0", "LDAP_TLS_VERIFY", "0" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(ImtaOptionDat) od = parse_ok(rows[i].text);
		g_autofree char *value = value_of(od, rows[i].name);

		g_test_message("row %zu: %s", i, rows[i].text);
		g_assert_cmpstr(value, ==, rows[i].value);
	}
}

static void
test_comments(void)
{
	g_autoptr(ImtaOptionDat) od = parse_ok(
		"! bang comment\n"
		"# hash comment\n"
		"; semicolon comment\n"
		"   ; indented semicolon\n"
		"\t! indented bang\n"
		"\n"
		"BLOCK_SIZE=2048\n"
		"RETURN_PERSONAL=Postmaster ! of example.com\n"
		"!BLOCK_SIZE=4096\n");

	g_assert_cmpint(od->block_size, ==, 2048);
	g_assert_cmpstr(od->return_personal, ==, "Postmaster ! of example.com");
	g_assert_cmpuint(od->warnings->len, ==, 0);
}

static void
test_continuation(void)
{
	g_autoptr(ImtaOptionDat) od = parse_ok(
		"DELIVERY_OPTIONS=*mailbox=$M@ims-ms-daemon, \\\n"
		"&members=*, \\\n"
		"#forward=**\n"
		"BLOCK_\\\nSIZE=\\\n4096\n"
		"RETURN_PERSONAL=Mail \\\\\n");

	g_assert_cmpstr(od->delivery_options, ==,
			"*mailbox=$M@ims-ms-daemon, &members=*, #forward=**");
	g_assert_cmpint(od->block_size, ==, 4096);
	/* An escaped backslash at the end is text, not a continuation. */
	g_assert_cmpstr(od->return_personal, ==, "Mail \\\\");
}

/* The example of option.dat(5), with all three comment styles and a
 * continued DELIVERY_OPTIONS. */
static void
test_documented_example(void)
{
	g_autoptr(ImtaOptionDat) od = parse_ok(
		"! Notices\n"
		"RETURN_ADDRESS=postmaster@mail.example.com\n"
		"RETURN_PERSONAL=Mail Delivery System\n"
		"; about 50 MB\n"
		"BLOCK_LIMIT=51200\n"
		"# log the Message-ID of every message\n"
		"LOG_MESSAGE_ID=1\n"
		"! LMTP to the back-end stores\n"
		"DELIVERY_OPTIONS=*mailbox=@$X.LMTP:$M%$\\$2I$_+$2S@lmtpcs-daemon, \\\n"
		"    &members=*, #forward=**\n");

	g_assert_cmpstr(od->return_address, ==, "postmaster@mail.example.com");
	g_assert_cmpstr(od->return_personal, ==, "Mail Delivery System");
	g_assert_cmpint(od->block_limit, ==, 51200);
	g_assert_true(od->log_message_id);
	g_assert_cmpstr(od->delivery_options, ==,
			"*mailbox=@$X.LMTP:$M%$\\$2I$_+$2S@lmtpcs-daemon,     &members=*,"
			" #forward=**");
	g_assert_cmpuint(od->warnings->len, ==, 0);
}

typedef struct {
	const char *text;
	ImtaConfigErrorCode code;
	const char *message;
} ErrorRow;

static void
test_errors(void)
{
	static const ErrorRow rows[] = {
		{ "BLOCK_SIZE=0\n", IMTA_CONFIG_ERROR_RANGE,
		  "option.dat:1:12: expected an integer between 1 and 1073741824 for BLOCK_SIZE,"
		  " got \"0\"" },
		{ "BLOCK_LIMIT=-1\n", IMTA_CONFIG_ERROR_RANGE,
		  "option.dat:1:13: expected an integer of at least 0 for BLOCK_LIMIT, got \"-1\"" },
		{ "RETURN_UNITS=2\n", IMTA_CONFIG_ERROR_RANGE,
		  "option.dat:1:14: expected an integer between 0 and 1 for RETURN_UNITS,"
		  " got \"2\"" },
		{ "DOMAIN_UPLEVEL=4\n", IMTA_CONFIG_ERROR_RANGE,
		  "option.dat:1:16: expected an integer between 0 and 3 for DOMAIN_UPLEVEL,"
		  " got \"4\"" },
		{ "LOG_FILENAME=2\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "option.dat:1:14: expected 0 or 1 for LOG_FILENAME, got \"2\"" },
		{ "DIRECTORY_CACHE_TTL=P2D\n", IMTA_CONFIG_ERROR_RANGE,
		  "option.dat:1:21: expected a number of seconds or an ISO 8601 duration (such as"
		  " PT30M) between 0 and 86400 for DIRECTORY_CACHE_TTL, got \"P2D\"" },
		{ "RETURN_ADDRESS=postmaster\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "option.dat:1:16: expected an address of the form local@domain for"
		  " RETURN_ADDRESS, got \"postmaster\"" },
		{ "RETURN_ADDRESS=Postmaster <postmaster@example.com>\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "option.dat:1:16: expected an address of the form local@domain for"
		  " RETURN_ADDRESS, got \"Postmaster <postmaster@example.com>\"" },
		{ "ALIAS_URL0=http://example.com/\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "option.dat:1:12: expected an LDAP URL (ldap:///base?attributes?scope?filter) for"
		  " ALIAS_URL0, got \"http://example.com/\"" },
		{ "LDAP_MAILHOST=mail host\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "option.dat:1:15: expected an LDAP attribute name for LDAP_MAILHOST,"
		  " got \"mail host\"" },
		{ "LDAP_USER_OBJECT_CLASSES=inetMailUser,,x\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "option.dat:1:26: expected object class names separated by commas for"
		  " LDAP_USER_OBJECT_CLASSES, got \"inetMailUser,,x\"" },
		{ "DELIVERY_OPTIONS=*mailbox=$M@ims-ms-daemon, forward\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "option.dat:1:18: expected entries of the form [flags]name=template separated by"
		  " commas for DELIVERY_OPTIONS, got \"*mailbox=$M@ims-ms-daemon, forward\"" },
		{ "LDAP_URIS=http://ldap.example.com\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "option.dat:1:11: expected 1 to 16 LDAP URIs (ldap://host[:port],"
		  " ldaps://host[:port], ldapi://%2Fsocket%2Fpath) separated by spaces or commas"
		  " for LDAP_URIS, got \"http://ldap.example.com\"" },
		{ "LDAP_URIS=ldap://a ldap://b/o=example\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "option.dat:1:11: expected 1 to 16 LDAP URIs (ldap://host[:port],"
		  " ldaps://host[:port], ldapi://%2Fsocket%2Fpath) separated by spaces or commas"
		  " for LDAP_URIS, got \"ldap://a ldap://b/o=example\"" },
		{ "LDAP_HOST=ldap1:0\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "option.dat:1:11: expected 1 to 16 host names or addresses, each with an optional"
		  " :port, separated by spaces or commas for LDAP_HOST, got \"ldap1:0\"" },
		{ "LDAP_HOST=2001:db8::1\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "option.dat:1:11: expected 1 to 16 host names or addresses, each with an optional"
		  " :port, separated by spaces or commas for LDAP_HOST, got \"2001:db8::1\"" },
		{ "LDAP_PORT=65536\n", IMTA_CONFIG_ERROR_RANGE,
		  "option.dat:1:11: expected an integer between 1 and 65535 for LDAP_PORT,"
		  " got \"65536\"" },
		{ "  LDAP_BASE_DN = example.com\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "option.dat:1:18: expected a distinguished name such as o=example.com or"
		  " dc=example,dc=com for LDAP_BASE_DN, got \"example.com\"" },
		{ "LDAP_SASL_MECH=DIGEST MD5\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "option.dat:1:16: expected a single word without blanks for LDAP_SASL_MECH,"
		  " got \"DIGEST MD5\"" },
		{ "LDAP_TIMEOUT=0\n", IMTA_CONFIG_ERROR_RANGE,
		  "option.dat:1:14: expected a number of seconds or an ISO 8601 duration (such as"
		  " PT30M) between 1 and 600 for LDAP_TIMEOUT, got \"0\"" },
		{ "LDAP_POOL_SIZE=0\n", IMTA_CONFIG_ERROR_RANGE,
		  "option.dat:1:16: expected an integer between 1 and 1024 for LDAP_POOL_SIZE,"
		  " got \"0\"" },
		{ "LDAP_STARTTLS=2\n", IMTA_CONFIG_ERROR_RANGE,
		  "option.dat:1:15: expected an integer between 0 and 1 for LDAP_STARTTLS,"
		  " got \"2\"" },
		{ "LDAP_AUTH_METHOD=plain\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "option.dat:1:18: expected compare or bind for LDAP_AUTH_METHOD, got \"plain\"" },
		{ "BLOCK_SIZE=\\\n  abc\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "option.dat:2:3: expected an integer between 1 and 1073741824 for BLOCK_SIZE,"
		  " got \"abc\"" },
		{ "! fine\nMAX_HEADER_BLOCK_USE=1\n", IMTA_CONFIG_ERROR_UNKNOWN,
		  "option.dat:2:1: unknown option.dat option \"MAX_HEADER_BLOCK_USE\"" },
		{ "  BLOK_SIZE=1\n", IMTA_CONFIG_ERROR_UNKNOWN,
		  "option.dat:1:3: unknown option.dat option \"BLOK_SIZE\" (did you mean"
		  " BLOCK_SIZE?)" },
		{ "ALIAS_URL4=ldap:///x\n", IMTA_CONFIG_ERROR_UNKNOWN,
		  "option.dat:1:1: unknown option.dat option \"ALIAS_URL4\" (did you mean"
		  " ALIAS_URL0?)" },
		{ "[SECTION=X]\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "option.dat:1:1: option.dat has no sections; expected NAME=value" },
		{ "BLOCK_SIZE 1024\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "option.dat:1:1: expected NAME=value, got \"BLOCK_SIZE 1024\"" },
		{ "BLOCK_SIZE=1\nX\tY\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "option.dat:2:1: expected NAME=value, got \"X\\tY\"" },
		{ "A\0B=1\n", IMTA_CONFIG_ERROR_SYNTAX,
		  "option.dat:1:2: NUL byte in configuration text" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(GError) error = NULL;
		gsize len = strlen(rows[i].text);
		g_autoptr(ImtaOptionDat) od = NULL;
		g_autofree char *shown = g_strescape(rows[i].text, NULL);

		/* The NUL row: measure past the embedded NUL. */
		if (strcmp(rows[i].text, "A") == 0)
			len = 6;
		od = imta_option_dat_parse_text("option.dat", rows[i].text, len, NULL, &error);
		g_test_message("row %zu: %s", i, shown);
		g_assert_null(od);
		g_assert_error(error, IMTA_CONFIG_ERROR, (gint)rows[i].code);
		g_assert_cmpstr(error->message, ==, rows[i].message);
	}
}

static void
test_duplicates(void)
{
	g_autoptr(ImtaOptionDat) od = parse_ok("BLOCK_SIZE=512\n!\nblock_size=2048\n");

	g_assert_cmpint(od->block_size, ==, 2048);
	g_assert_cmpuint(od->warnings->len, ==, 1);
	g_assert_cmpstr(g_ptr_array_index(od->warnings, 0), ==,
			"option.dat:3:1: BLOCK_SIZE is set again (first at option.dat:1:1);"
			" the later value wins");
}

static void
test_dump(void)
{
	g_autoptr(ImtaOptionDat) od = parse_ok("RETURN_ADDRESS=postmaster@example.com\n"
					       "DIRECTORY_CACHE_TTL=PT1M\n");
	g_autoptr(ImtaOptionDat) again = NULL;
	g_autoptr(GString) out = g_string_new(NULL);
	g_autoptr(GString) out2 = g_string_new(NULL);
	g_autoptr(GError) error = NULL;
	const char *body;

	imta_option_dat_dump(od, out);
	g_assert_true(g_str_has_prefix(out->str, "! option.dat: option.dat\nBLOCK_SIZE=1024\n"));
	g_assert_nonnull(strstr(out->str, "\nRETURN_ADDRESS=postmaster@example.com\n"));
	g_assert_nonnull(strstr(out->str, "\nRETURN_PERSONAL=\n"));
	g_assert_nonnull(strstr(out->str, "\nDIRECTORY_CACHE_TTL=60\n"));
	body = strchr(out->str, '\n') + 1;
	again = imta_option_dat_parse_text("again", body, strlen(body), NULL, &error);
	g_assert_no_error(error);
	imta_option_dat_dump(again, out2);
	g_assert_cmpstr(strchr(out2->str, '\n'), ==, strchr(out->str, '\n'));
}

static char *
source_file(const char *relative)
{
	const char *srcdir = g_getenv("G_TEST_SRCDIR");

	if (srcdir == NULL)
		return NULL;
	return g_build_filename(srcdir, "..", relative, NULL);
}

static void
test_shipped(void)
{
	g_autofree char *path = source_file("conf/option.dat");
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaOptionDat) od = NULL;

	if (path == NULL || !g_file_test(path, G_FILE_TEST_EXISTS)) {
		g_test_skip("G_TEST_SRCDIR not set");
		return;
	}
	od = imta_option_dat_load(path, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(od->warnings->len, ==, 0);
	g_assert_cmpstr(od->return_address, ==, "postmaster@mail.example.com");
	g_assert_cmpint(od->block_size, ==, 1024);
}

static void
test_man_page(void)
{
	g_autofree char *path = source_file("docs/man/option.dat.5");
	g_autofree char *text = NULL;

	if (path == NULL || !g_file_test(path, G_FILE_TEST_EXISTS)) {
		g_test_skip("G_TEST_SRCDIR not set");
		return;
	}
	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	for (gsize i = 0; i < imta_option_dat_n_options; i++) {
		g_autofree char *entry = g_strdup_printf("\n.B %s\n",
							 imta_option_dat_options[i].name);

		g_test_message("%s", imta_option_dat_options[i].name);
		g_assert_nonnull(strstr(text, entry));
	}
}

/* ---- the engine ---------------------------------------------------- */

typedef struct {
	const char *text;
	gboolean ok;
	const char *name, *value;
	gsize name_offset, value_offset;
} SplitRow;

static void
test_engine_split(void)
{
	static const SplitRow rows[] = {
		{ "A=b", TRUE, "A", "b", 0, 2 },
		{ "  A = b  ", TRUE, "A", "b", 2, 6 },
		{ "\tNAME=\t", TRUE, "NAME", "", 1, 7 },
		{ "A=b=c", TRUE, "A", "b=c", 0, 2 },
		{ "PARAMETER=CHANNEL=x", TRUE, "PARAMETER", "CHANNEL=x", 0, 10 },
		{ "A=b\r", TRUE, "A", "b", 0, 2 },
		{ "=b", FALSE, NULL, NULL, 0, 0 },
		{ "   =b", FALSE, NULL, NULL, 0, 0 },
		{ "AB", FALSE, NULL, NULL, 0, 0 },
		{ "", FALSE, NULL, NULL, 0, 0 },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *name = NULL;
		g_autofree char *value = NULL;
		gsize name_offset = 99, value_offset = 99;
		gboolean ok = imta_option_split_line(rows[i].text, &name, &value, &name_offset,
						     &value_offset);

		g_test_message("row %zu", i);
		g_assert_cmpint(ok, ==, rows[i].ok);
		if (!ok)
			continue;
		g_assert_cmpstr(name, ==, rows[i].name);
		g_assert_cmpstr(value, ==, rows[i].value);
		g_assert_cmpuint(name_offset, ==, rows[i].name_offset);
		g_assert_cmpuint(value_offset, ==, rows[i].value_offset);
	}
}

static void
test_engine_quote(void)
{
	static const struct {
		const char *in, *out;
	} rows[] = {
		{ "abc", "\"abc\"" },
		{ "", "\"\"" },
		{ "a\"b\\c", "\"a\\\"b\\\\c\"" },
		{ "tab\there", "\"tab\\there\"" },
		{ "\x01\x7f", "\"\\x01\\x7f\"" },
		{ "caf\xc3\xa9", "\"caf\xc3\xa9\"" },
		{ "bad\xff", "\"bad\\xff\"" },
		{ "0123456789012345678901234567890123456789012345678901234567890123456789",
		  "\"01234567890123456789012345678901234567890123456789012345678...\"" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *quoted = imta_option_quote(rows[i].in);

		g_assert_cmpstr(quoted, ==, rows[i].out);
		g_assert_true(g_utf8_validate(quoted, -1, NULL));
	}
}

static void
test_engine_suggest(void)
{
	static const struct {
		const char *name, *hint;
	} rows[] = {
		{ "BLOCK_SIZ", "BLOCK_SIZE" }, { "block_sise", "BLOCK_SIZE" },
		{ "BLOCKSIZE", "BLOCK_SIZE" }, { "LOG_PROCES", "LOG_PROCESS" },
		{ "BLOCK", NULL }, { "X", NULL }, { "", NULL }, { "COMPLETELY_DIFFERENT", NULL },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++)
		g_assert_cmpstr(imta_option_suggest(imta_option_dat_options,
						    imta_option_dat_n_options, rows[i].name, NULL),
				==, rows[i].hint);
}

typedef struct {
	gint64 number;
	gboolean flag;
	char *text;
	GArray *ports;
	GPtrArray *list;
	guint32 mask;
} EngineTarget;

static const ImtaOptionSpec engine_table[] = {
	{ .name = "NUMBER", .kind = IMTA_OPT_INT, .default_value = "7", .min = 1, .max = 0,
	  .offset = G_STRUCT_OFFSET(EngineTarget, number), .scopes = IMTA_SCOPE_GLOBAL },
	{ .name = "FLAG", .kind = IMTA_OPT_BOOL, .default_value = "1",
	  .offset = G_STRUCT_OFFSET(EngineTarget, flag), .scopes = IMTA_SCOPE_SERVICE },
	{ .name = "TEXT", .kind = IMTA_OPT_STRING, .default_value = "hello",
	  .offset = G_STRUCT_OFFSET(EngineTarget, text), .scopes = IMTA_SCOPE_GLOBAL,
	  .check = imta_option_check_word },
	{ .name = "PORTS", .kind = IMTA_OPT_PORTS, .default_value = "25", .max_count = 2,
	  .offset = G_STRUCT_OFFSET(EngineTarget, ports), .scopes = IMTA_SCOPE_GLOBAL },
	{ .name = "LIST", .kind = IMTA_OPT_STRINGS, .default_value = "first",
	  .offset = G_STRUCT_OFFSET(EngineTarget, list), .scopes = IMTA_SCOPE_GLOBAL },
	{ .name = "MASK", .kind = IMTA_OPT_MASK, .default_value = "-1",
	  .offset = G_STRUCT_OFFSET(EngineTarget, mask), .scopes = IMTA_SCOPE_GLOBAL },
};

static void
test_engine_table(void)
{
	EngineTarget t = { 0 };
	ImtaSourcePos pos = { "f", 3, 5 };
	g_autoptr(GError) error = NULL;
	g_autoptr(GString) out = g_string_new(NULL);

	imta_option_table_defaults(engine_table, G_N_ELEMENTS(engine_table), &t,
				   IMTA_SCOPE_GLOBAL);
	g_assert_cmpint(t.number, ==, 7);
	g_assert_false(t.flag);          /* not in this scope: untouched */
	g_assert_cmpstr(t.text, ==, "hello");
	g_assert_cmpuint(t.ports->len, ==, 1);
	g_assert_cmpuint(t.list->len, ==, 1);
	g_assert_cmphex(t.mask, ==, 0xffffffffu);

	/* Unbounded integers, scopes, unknown names, checks, limits. */
	g_assert_true(imta_option_set(engine_table, G_N_ELEMENTS(engine_table), &t,
				      IMTA_SCOPE_GLOBAL, "number", "-9223372036854775808", &pos,
				      &pos, &error));
	g_assert_cmpint(t.number, ==, G_MININT64);
	g_assert_false(imta_option_set(engine_table, G_N_ELEMENTS(engine_table), &t,
				       IMTA_SCOPE_GLOBAL, "FLAG", "1", &pos, &pos, &error));
	g_assert_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_SYNTAX);
	g_assert_cmpstr(error->message, ==, "f:3:5: option FLAG is not allowed here");
	g_clear_error(&error);
	g_assert_false(imta_option_set(engine_table, G_N_ELEMENTS(engine_table), &t,
				       IMTA_SCOPE_GLOBAL, "NUMBERS", "1", &pos, &pos, &error));
	g_assert_cmpstr(error->message, ==,
			"f:3:5: unknown option \"NUMBERS\" (did you mean NUMBER?)");
	g_clear_error(&error);
	g_assert_false(imta_option_set(engine_table, G_N_ELEMENTS(engine_table), &t,
				       IMTA_SCOPE_GLOBAL, "NUMBER", "x", &pos, &pos, &error));
	g_assert_cmpstr(error->message, ==, "f:3:5: expected an integer for NUMBER, got \"x\"");
	g_clear_error(&error);
	g_assert_false(imta_option_set(engine_table, G_N_ELEMENTS(engine_table), &t,
				       IMTA_SCOPE_GLOBAL, "TEXT", "two words", &pos, &pos, &error));
	g_assert_cmpstr(error->message, ==,
			"f:3:5: expected a single word without blanks for TEXT, got \"two words\"");
	g_assert_cmpstr(t.text, ==, "hello");
	g_clear_error(&error);
	g_assert_false(imta_option_set(engine_table, G_N_ELEMENTS(engine_table), &t,
				       IMTA_SCOPE_GLOBAL, "PORTS", "1 2 3", &pos, &pos, &error));
	g_assert_cmpstr(error->message, ==, "f:3:9: too many ports in PORTS: at most 2 are allowed");
	g_assert_cmpuint(t.ports->len, ==, 1);
	g_clear_error(&error);
	g_assert_true(imta_option_set(engine_table, G_N_ELEMENTS(engine_table), &t,
				      IMTA_SCOPE_GLOBAL, "LIST", "second", &pos, &pos, &error));
	g_assert_cmpuint(t.list->len, ==, 2);
	/* Reset goes back to the default. */
	imta_option_reset_row(&engine_table[4], &t);
	g_assert_cmpuint(t.list->len, ==, 1);
	g_assert_cmpstr(g_ptr_array_index(t.list, 0), ==, "first");

	imta_option_table_dump(engine_table, G_N_ELEMENTS(engine_table), &t,
			       IMTA_SCOPE_GLOBAL | IMTA_SCOPE_SERVICE, out);
	g_assert_cmpstr(out->str, ==,
			"NUMBER=-9223372036854775808\nFLAG=0\nTEXT=hello\nPORTS=25\nLIST=first\n"
			"MASK=16%FFFFFFFF\n");
	imta_option_table_clear(engine_table, G_N_ELEMENTS(engine_table), &t);
	g_assert_null(t.text);
	g_assert_null(t.ports);
	g_assert_null(t.list);
}

static void
test_engine_describe(void)
{
	static const ImtaOptionSpec rows[] = {
		{ .name = "A", .kind = IMTA_OPT_INT, .min = 1, .max = 10 },
		{ .name = "B", .kind = IMTA_OPT_INT, .min = 0, .max = G_MAXINT64 },
		{ .name = "C", .kind = IMTA_OPT_INT, .min = G_MININT64, .max = 5 },
		{ .name = "D", .kind = IMTA_OPT_INT, .min = 1, .max = 0 },
		{ .name = "E", .kind = IMTA_OPT_BOOL },
		{ .name = "F", .kind = IMTA_OPT_DURATION, .min = 0, .max = 60 },
	};
	static const char *const expected[] = {
		"an integer between 1 and 10", "an integer of at least 0",
		"an integer of at most 5", "an integer", "0 or 1",
		"a number of seconds or an ISO 8601 duration (such as PT30M) between 0 and 60",
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *text = imta_option_describe(&rows[i]);

		g_assert_cmpstr(text, ==, expected[i]);
	}
}

static void
test_engine_checks(void)
{
	static const struct {
		ImtaOptionCheck check;
		const char *value;
		gboolean ok;
	} rows[] = {
		{ imta_option_check_ip, "127.0.0.1", TRUE }, { imta_option_check_ip, "::", TRUE },
		{ imta_option_check_ip, "fe80::1", TRUE }, { imta_option_check_ip, "1.2.3", FALSE },
		{ imta_option_check_ip, "256.1.1.1", FALSE }, { imta_option_check_ip, "", FALSE },
		{ imta_option_check_hostname, "mail.example.com", TRUE },
		{ imta_option_check_hostname, "example.com.", TRUE },
		{ imta_option_check_hostname, "_dmarc.example", TRUE },
		{ imta_option_check_hostname, "a..b", FALSE },
		{ imta_option_check_hostname, ".a", FALSE },
		{ imta_option_check_hostname, ".", FALSE },
		{ imta_option_check_hostname, "a b", FALSE },
		{ imta_option_check_hostname,
		  "a234567890123456789012345678901234567890123456789012345678901234.com", FALSE },
		{ imta_option_check_user, "mail", TRUE },
		{ imta_option_check_user, "imta-1.x", TRUE },
		{ imta_option_check_user, "-mail", FALSE }, { imta_option_check_user, "a:b", FALSE },
		{ imta_option_check_user, "abcdefghijabcdefghijabcdefghijabc", FALSE },
		{ imta_option_check_word, "word", TRUE }, { imta_option_check_word, "a\tb", FALSE },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		const char *expected = NULL;

		g_test_message("%s", rows[i].value);
		g_assert_cmpint(rows[i].check(rows[i].value, &expected), ==, rows[i].ok);
		if (!rows[i].ok)
			g_assert_nonnull(expected);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/option-dat/defaults", test_defaults);
	g_test_add_func("/option-dat/values", test_values);
	g_test_add_func("/option-dat/comments", test_comments);
	g_test_add_func("/option-dat/continuation", test_continuation);
	g_test_add_func("/option-dat/documented-example", test_documented_example);
	g_test_add_func("/option-dat/errors", test_errors);
	g_test_add_func("/option-dat/duplicates", test_duplicates);
	g_test_add_func("/option-dat/dump", test_dump);
	g_test_add_func("/option-dat/shipped", test_shipped);
	g_test_add_func("/option-dat/man-page", test_man_page);
	g_test_add_func("/options/split-line", test_engine_split);
	g_test_add_func("/options/quote", test_engine_quote);
	g_test_add_func("/options/suggest", test_engine_suggest);
	g_test_add_func("/options/table", test_engine_table);
	g_test_add_func("/options/describe", test_engine_describe);
	g_test_add_func("/options/checks", test_engine_checks);
	return g_test_run();
}
