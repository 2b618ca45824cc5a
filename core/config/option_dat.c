/*
 * option_dat.c - option.dat: the global MTA options, one table row each.
 */
#include "config.h"

#include <stdarg.h>
#include <string.h>
#include <ldap.h>
#include <glib.h>

#include <imta/cfgfile.h>
#include <imta/directory.h>
#include <imta/options.h>
#include <imta/option_dat.h>

#define OD_COMMENTS "!#;"
#define OD(field) G_STRUCT_OFFSET(ImtaOptionDat, field)
#define OD_SCOPE IMTA_SCOPE_GLOBAL

static gboolean od_check_address(const char *value, const char **expected_r);
static gboolean od_check_ldap_url(const char *value, const char **expected_r);
static gboolean od_check_attribute(const char *value, const char **expected_r);
static gboolean od_check_attributes(const char *value, const char **expected_r);
static gboolean od_check_delivery_options(const char *value, const char **expected_r);
static gboolean od_check_ldap_uris(const char *value, const char **expected_r);
static gboolean od_check_ldap_hosts(const char *value, const char **expected_r);
static gboolean od_check_dn(const char *value, const char **expected_r);
static gboolean od_check_ldap_auth_method(const char *value, const char **expected_r);

#define OD_DELIVERY_OPTIONS_DEFAULT \
	"*mailbox=$M%$\\$2I$_+$2S@ims-ms-daemon, &members=*, *native=$M@native-daemon, " \
	"/hold=@hold-daemon:$A, *unix=$M@native-daemon, &file=+$F@native-daemon, " \
	"&@members_offline=*, program=$M%$P@pipe-daemon, #forward=**, " \
	"*^!autoreply=$M+$D@bitbucket"

const ImtaOptionSpec imta_option_dat_options[] = {
	{ .name = "BLOCK_SIZE", .kind = IMTA_OPT_INT, .default_value = "1024", .min = 1,
	  .max = 1073741824, .offset = OD(block_size), .scopes = OD_SCOPE,
	  .doc = "bytes per block, the unit of sizes in logs and limits" },
	{ .name = "BLOCK_LIMIT", .kind = IMTA_OPT_INT, .default_value = "0", .min = 0,
	  .max = G_MAXINT64, .offset = OD(block_limit), .scopes = OD_SCOPE,
	  .doc = "largest message accepted, in blocks (0 = no limit)" },
	{ .name = "LINE_LIMIT", .kind = IMTA_OPT_INT, .default_value = "0", .min = 0,
	  .max = G_MAXINT64, .offset = OD(line_limit), .scopes = OD_SCOPE,
	  .doc = "largest message accepted, in lines (0 = no limit)" },
	{ .name = "RETURN_UNITS", .kind = IMTA_OPT_INT, .default_value = "0", .min = 0, .max = 1,
	  .offset = OD(return_units), .scopes = OD_SCOPE,
	  .doc = "unit of the notices keyword: 0 = days, 1 = hours" },
	{ .name = "RETURN_ADDRESS", .kind = IMTA_OPT_STRING, .offset = OD(return_address),
	  .scopes = OD_SCOPE, .check = od_check_address,
	  .doc = "sender of notices (default postmaster@ the local host)" },
	{ .name = "RETURN_PERSONAL", .kind = IMTA_OPT_STRING, .offset = OD(return_personal),
	  .scopes = OD_SCOPE, .doc = "display name of the sender of notices" },
	{ .name = "CONTENT_RETURN_BLOCK_LIMIT", .kind = IMTA_OPT_INT, .default_value = "0",
	  .min = 0, .max = G_MAXINT64, .offset = OD(content_return_block_limit), .scopes = OD_SCOPE,
	  .doc = "bounces of larger messages carry only the headers (0 = no limit)" },
	{ .name = "ALIAS_MAGIC", .kind = IMTA_OPT_INT, .default_value = "8764", .min = 0,
	  .max = 99999999, .offset = OD(alias_magic), .scopes = OD_SCOPE,
	  .doc = "order of the alias sources (8764: ALIAS_URL0, 1, 2, then the aliases file)" },
	{ .name = "ALIAS_URL0", .kind = IMTA_OPT_STRING, .default_value = "ldap:///$V?*?sub?$R",
	  .offset = OD(alias_url[0]), .scopes = OD_SCOPE, .check = od_check_ldap_url,
	  .doc = "first directory query for a local address" },
	{ .name = "ALIAS_URL1", .kind = IMTA_OPT_STRING, .offset = OD(alias_url[1]),
	  .scopes = OD_SCOPE, .check = od_check_ldap_url,
	  .doc = "second directory query for a local address" },
	{ .name = "ALIAS_URL2", .kind = IMTA_OPT_STRING, .offset = OD(alias_url[2]),
	  .scopes = OD_SCOPE, .check = od_check_ldap_url,
	  .doc = "third directory query for a local address" },
	{ .name = "ALIAS_URL3", .kind = IMTA_OPT_STRING, .offset = OD(alias_url[3]),
	  .scopes = OD_SCOPE, .check = od_check_ldap_url,
	  .doc = "fourth directory query for a local address" },
	{ .name = "DELIVERY_OPTIONS", .kind = IMTA_OPT_STRING,
	  .default_value = OD_DELIVERY_OPTIONS_DEFAULT, .offset = OD(delivery_options),
	  .scopes = OD_SCOPE, .check = od_check_delivery_options,
	  .doc = "address template of each mailDeliveryOption value" },
	{ .name = "DOMAIN_UPLEVEL", .kind = IMTA_OPT_INT, .default_value = "0", .min = 0,
	  .max = 3, .offset = OD(domain_uplevel), .scopes = OD_SCOPE,
	  .doc = "bit 0: look up parent domains; bit 1: also search local@found-domain" },
	{ .name = "DOMAIN_FAILURE", .kind = IMTA_OPT_STRING,
	  .default_value = "reprocess-daemon$Mtcp_local$1M$1~-error$4000000?"
			   "Temporary lookup failure",
	  .offset = OD(domain_failure), .scopes = OD_SCOPE,
	  .doc = "rewrite template used when a domain lookup fails temporarily" },
	{ .name = "DOMAIN_MATCH_URL", .kind = IMTA_OPT_STRING, .offset = OD(domain_match_url),
	  .scopes = OD_SCOPE, .check = od_check_ldap_url,
	  .doc = "directory query for vanity domains (default: none)" },
	{ .name = "ROUTE_TO_ROUTING_HOST", .kind = IMTA_OPT_BOOL, .default_value = "0",
	  .offset = OD(route_to_routing_host), .scopes = OD_SCOPE,
	  .doc = "1 = route non-local hosted domains to their first mailRoutingHosts" },
	{ .name = "USE_REVERSE_DATABASE", .kind = IMTA_OPT_INT, .default_value = "4", .min = 0,
	  .max = 31, .offset = OD(use_reverse_database), .scopes = OD_SCOPE,
	  .doc = "address reversal control bits (4 = reverse through the directory only)" },
	{ .name = "REVERSE_ENVELOPE", .kind = IMTA_OPT_BOOL, .default_value = "1",
	  .offset = OD(reverse_envelope), .scopes = OD_SCOPE,
	  .doc = "1 = also reverse the envelope From address" },
	{ .name = "REVERSE_URL", .kind = IMTA_OPT_STRING, .default_value = "ldap:///$V?$N?sub?$R",
	  .offset = OD(reverse_url), .scopes = OD_SCOPE, .check = od_check_ldap_url,
	  .doc = "directory query that finds the entry of an address to reverse" },
	{ .name = "ACCESS_ERRORS", .kind = IMTA_OPT_BOOL, .default_value = "0",
	  .offset = OD(access_errors), .scopes = OD_SCOPE,
	  .doc = "1 = access refusals without text say \"not allowed\"" },
	{ .name = "ACCESS_ORCPT", .kind = IMTA_OPT_BOOL, .default_value = "0",
	  .offset = OD(access_orcpt), .scopes = OD_SCOPE,
	  .doc = "1 = access mapping probes carry the original recipient" },
	{ .name = "LOG_CONNECTION", .kind = IMTA_OPT_INT, .default_value = "0", .min = 0,
	  .max = 65535, .offset = OD(log_connection), .scopes = OD_SCOPE,
	  .doc = "bit mask of connection events written to the log" },
	{ .name = "LOG_FILENAME", .kind = IMTA_OPT_BOOL, .default_value = "0",
	  .offset = OD(log_filename), .scopes = OD_SCOPE,
	  .doc = "1 = log entries name the queue file" },
	{ .name = "LOG_MESSAGE_ID", .kind = IMTA_OPT_BOOL, .default_value = "0",
	  .offset = OD(log_message_id), .scopes = OD_SCOPE,
	  .doc = "1 = log entries carry the Message-ID" },
	{ .name = "LOG_PROCESS", .kind = IMTA_OPT_INT, .default_value = "0", .min = 0, .max = 2,
	  .offset = OD(log_process), .scopes = OD_SCOPE,
	  .doc = "1 = log entries carry the process id; 2 = also the thread" },
	{ .name = "SEPARATE_CONNECTION_LOG", .kind = IMTA_OPT_BOOL, .default_value = "0",
	  .offset = OD(separate_connection_log), .scopes = OD_SCOPE,
	  .doc = "1 = connection entries go to connection.log_current" },
	{ .name = "LDAP_MAILHOST", .kind = IMTA_OPT_STRING, .default_value = "mailHost",
	  .offset = OD(ldap_mailhost), .scopes = OD_SCOPE, .check = od_check_attribute,
	  .doc = "attribute naming the host of a user's mailbox" },
	{ .name = "LDAP_DELIVERY_OPTION", .kind = IMTA_OPT_STRING,
	  .default_value = "mailDeliveryOption", .offset = OD(ldap_delivery_option),
	  .scopes = OD_SCOPE, .check = od_check_attribute,
	  .doc = "attribute holding the delivery options of an entry" },
	{ .name = "LDAP_USER_OBJECT_CLASSES", .kind = IMTA_OPT_STRING,
	  .default_value = "inetLocalMailRecipient,inetMailUser",
	  .offset = OD(ldap_user_object_classes), .scopes = OD_SCOPE, .check = od_check_attributes,
	  .doc = "object classes a user entry must have (comma-separated)" },
	{ .name = "LDAP_GROUP_OBJECT_CLASSES", .kind = IMTA_OPT_STRING,
	  .default_value = "inetLocalMailRecipient,inetMailGroup",
	  .offset = OD(ldap_group_object_classes), .scopes = OD_SCOPE, .check = od_check_attributes,
	  .doc = "object classes a group entry must have (comma-separated)" },
	{ .name = "LDAP_GROUP_RFC822", .kind = IMTA_OPT_STRING,
	  .default_value = "mgrpRFC822MailMember", .offset = OD(ldap_group_rfc822),
	  .scopes = OD_SCOPE, .check = od_check_attribute,
	  .doc = "attribute listing a group's plain address members" },
	{ .name = "LDAP_GROUP_URL1", .kind = IMTA_OPT_STRING, .default_value = "mgrpDeliverTo",
	  .offset = OD(ldap_group_url1), .scopes = OD_SCOPE, .check = od_check_attribute,
	  .doc = "attribute with LDAP URLs of a dynamic group's members" },
	{ .name = "LDAP_GROUP_URL2", .kind = IMTA_OPT_STRING, .default_value = "memberURL",
	  .offset = OD(ldap_group_url2), .scopes = OD_SCOPE, .check = od_check_attribute,
	  .doc = "second attribute with LDAP URLs of a dynamic group's members" },
	{ .name = "LDAP_DOMAIN_ATTR_CANONICAL", .kind = IMTA_OPT_STRING,
	  .default_value = "inetCanonicalDomainName", .offset = OD(ldap_domain_attr_canonical),
	  .scopes = OD_SCOPE, .check = od_check_attribute,
	  .doc = "attribute holding a domain's canonical name" },
	{ .name = "DIRECTORY_CACHE_SIZE", .kind = IMTA_OPT_INT, .default_value = "10000",
	  .min = 0, .max = 10000000, .offset = OD(directory_cache_size), .scopes = OD_SCOPE,
	  .doc = "directory answers kept in memory (0 = no cache)" },
	{ .name = "DIRECTORY_CACHE_TTL", .kind = IMTA_OPT_DURATION, .default_value = "600",
	  .min = 0, .max = 86400, .offset = OD(directory_cache_ttl), .scopes = OD_SCOPE,
	  .doc = "seconds a positive directory answer is kept" },
	{ .name = "DIRECTORY_NEGATIVE_TTL", .kind = IMTA_OPT_DURATION, .default_value = "60",
	  .min = 0, .max = 86400, .offset = OD(directory_negative_ttl), .scopes = OD_SCOPE,
	  .doc = "seconds a \"no such entry\" answer is kept" },
	{ .name = "LDAP_URIS", .kind = IMTA_OPT_STRING, .offset = OD(ldap_uris),
	  .scopes = OD_SCOPE, .check = od_check_ldap_uris,
	  .doc = "LDAP servers in order of preference: ldap://host[:port], ldaps://..., "
		 "ldapi://%2Fpath (IMTA_DIRECTORY=ldap:)" },
	{ .name = "LDAP_HOST", .kind = IMTA_OPT_STRING, .offset = OD(ldap_host),
	  .scopes = OD_SCOPE, .check = od_check_ldap_hosts,
	  .doc = "LDAP servers as host[:port] names, when LDAP_URIS is not set" },
	{ .name = "LDAP_PORT", .kind = IMTA_OPT_INT, .default_value = "389", .min = 1,
	  .max = 65535, .offset = OD(ldap_port), .scopes = OD_SCOPE,
	  .doc = "port of the LDAP_HOST servers that name none" },
	{ .name = "LDAP_BIND_DN", .kind = IMTA_OPT_STRING, .offset = OD(ldap_bind_dn),
	  .scopes = OD_SCOPE, .check = od_check_dn,
	  .doc = "DN of the MTA's simple bind (unset: anonymous)" },
	{ .name = "LDAP_BIND_PASSWORD", .kind = IMTA_OPT_STRING, .offset = OD(ldap_bind_password),
	  .scopes = OD_SCOPE, .flags = IMTA_OPT_HIDDEN,
	  .doc = "password of the bind (prefer LDAP_BIND_PASSWORD_FILE)" },
	{ .name = "LDAP_BIND_PASSWORD_FILE", .kind = IMTA_OPT_STRING,
	  .offset = OD(ldap_bind_password_file), .scopes = OD_SCOPE,
	  .doc = "file holding the bind password, readable by the MTA's user only" },
	{ .name = "LDAP_SASL_MECH", .kind = IMTA_OPT_STRING, .offset = OD(ldap_sasl_mech),
	  .scopes = OD_SCOPE, .check = imta_option_check_word,
	  .doc = "SASL mechanism of the bind: EXTERNAL, PLAIN, DIGEST-MD5, ... (unset: simple)" },
	{ .name = "LDAP_SASL_AUTHCID", .kind = IMTA_OPT_STRING, .offset = OD(ldap_sasl_authcid),
	  .scopes = OD_SCOPE, .doc = "SASL authentication identity of the bind" },
	{ .name = "LDAP_SASL_AUTHZID", .kind = IMTA_OPT_STRING, .offset = OD(ldap_sasl_authzid),
	  .scopes = OD_SCOPE, .doc = "SASL authorization identity of the bind (unset: none)" },
	{ .name = "LDAP_SASL_REALM", .kind = IMTA_OPT_STRING, .offset = OD(ldap_sasl_realm),
	  .scopes = OD_SCOPE, .doc = "SASL realm of the bind (unset: none)" },
	{ .name = "LDAP_BASE_DN", .kind = IMTA_OPT_STRING, .offset = OD(ldap_base_dn),
	  .scopes = OD_SCOPE, .check = od_check_dn,
	  .doc = "subtree holding the users and groups" },
	{ .name = "LDAP_DOMAIN_ROOT", .kind = IMTA_OPT_STRING, .offset = OD(ldap_domain_root),
	  .scopes = OD_SCOPE, .check = od_check_dn,
	  .doc = "subtree holding the domain entries (unset: LDAP_BASE_DN)" },
	{ .name = "LDAP_TIMEOUT", .kind = IMTA_OPT_DURATION, .default_value = "10", .min = 1,
	  .max = 600, .offset = OD(ldap_timeout), .scopes = OD_SCOPE,
	  .doc = "seconds one LDAP request may take" },
	{ .name = "LDAP_CONNECT_TIMEOUT", .kind = IMTA_OPT_DURATION, .default_value = "5",
	  .min = 1, .max = 600, .offset = OD(ldap_connect_timeout), .scopes = OD_SCOPE,
	  .doc = "seconds one connection attempt to an LDAP server may take" },
	{ .name = "LDAP_POOL_SIZE", .kind = IMTA_OPT_INT, .default_value = "8", .min = 1,
	  .max = 1024, .offset = OD(ldap_pool_size), .scopes = OD_SCOPE,
	  .doc = "LDAP connections per process, shared by its threads" },
	{ .name = "LDAP_RETRY_INTERVAL", .kind = IMTA_OPT_DURATION, .default_value = "60",
	  .min = 1, .max = 86400, .offset = OD(ldap_retry_interval), .scopes = OD_SCOPE,
	  .doc = "seconds a failed LDAP server is avoided, and a fallback server kept" },
	{ .name = "LDAP_AUTH_METHOD", .kind = IMTA_OPT_STRING, .default_value = "compare",
	  .offset = OD(ldap_auth_method), .scopes = OD_SCOPE, .check = od_check_ldap_auth_method,
	  .doc = "SMTP AUTH passwords: compare (with userPassword) or bind (as the user)" },
	{ .name = "LDAP_TLS_CA_FILE", .kind = IMTA_OPT_STRING, .offset = OD(ldap_tls_ca_file),
	  .scopes = OD_SCOPE,
	  .doc = "PEM file of the CAs that sign the LDAP servers' certificates (unset: "
		 "libldap's default)" },
	{ .name = "LDAP_STARTTLS", .kind = IMTA_OPT_INT, .default_value = "0", .min = 0,
	  .max = 1, .offset = OD(ldap_starttls), .scopes = OD_SCOPE,
	  .doc = "1: every ldap:// connection starts TLS before it binds, or fails" },
	{ .name = "LDAP_TLS_VERIFY", .kind = IMTA_OPT_INT, .default_value = "1", .min = 0,
	  .max = 1, .offset = OD(ldap_tls_verify), .scopes = OD_SCOPE,
	  .doc = "1: an LDAP server's certificate must verify and name the server; 0: any "
		 "certificate is accepted (testing only)" },
	{ .name = "DNS_SERVERS", .kind = IMTA_OPT_STRING, .offset = OD(dns_servers),
	  .scopes = OD_SCOPE,
	  .doc = "name servers as addr[:port], comma-separated; IPv6 as [addr]:port "
		 "(unset: /etc/resolv.conf)" },
	{ .name = "DNS_TIMEOUT", .kind = IMTA_OPT_DURATION, .default_value = "5",
	  .min = 1, .max = 120, .offset = OD(dns_timeout), .scopes = OD_SCOPE,
	  .doc = "seconds to wait for one name server answer" },
	{ .name = "TLS_CERTIFICATE_FILE", .kind = IMTA_OPT_STRING,
	  .offset = OD(tls_certificate_file), .scopes = OD_SCOPE,
	  .doc = "PEM certificate chain of the servers (unset: no STARTTLS)" },
	{ .name = "TLS_KEY_FILE", .kind = IMTA_OPT_STRING, .offset = OD(tls_key_file),
	  .scopes = OD_SCOPE, .doc = "PEM private key (unset: in the certificate file)" },
	{ .name = "TLS_PRIORITY", .kind = IMTA_OPT_STRING,
	  .default_value = "NORMAL:-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1",
	  .offset = OD(tls_priority), .scopes = OD_SCOPE,
	  .doc = "GnuTLS priority string: protocol versions and ciphers offered" },
};
const gsize imta_option_dat_n_options = G_N_ELEMENTS(imta_option_dat_options);

static gboolean
od_check_address(const char *value, const char **expected_r)
{
	const char *at = strrchr(value, '@');

	*expected_r = "an address of the form local@domain";
	if (at == NULL || at == value || at[1] == '\0')
		return FALSE;
	for (const char *c = value; *c != '\0'; c++)
		if (g_ascii_isspace(*c) || *c == '<' || *c == '>' || *c == ',')
			return FALSE;
	return TRUE;
}

static gboolean
od_check_ldap_url(const char *value, const char **expected_r)
{
	*expected_r = "an LDAP URL (ldap:///base?attributes?scope?filter)";
	return g_ascii_strncasecmp(value, "ldap://", 7) == 0 ||
	       g_ascii_strncasecmp(value, "ldaps://", 8) == 0;
}

/* An LDAP attribute or object class name: a letter, then letters, digits
 * and '-' (RFC 4512 descr). */
static gboolean
od_attribute_ok(const char *name, gsize len)
{
	if (len == 0 || !g_ascii_isalpha(name[0]))
		return FALSE;
	for (gsize i = 1; i < len; i++)
		if (!g_ascii_isalnum(name[i]) && name[i] != '-')
			return FALSE;
	return TRUE;
}

static gboolean
od_check_attribute(const char *value, const char **expected_r)
{
	*expected_r = "an LDAP attribute name";
	return od_attribute_ok(value, strlen(value));
}

static gboolean
od_check_attributes(const char *value, const char **expected_r)
{
	g_auto(GStrv) names = g_strsplit(value, ",", -1);

	*expected_r = "object class names separated by commas";
	for (guint i = 0; names[i] != NULL; i++) {
		const char *name = g_strstrip(names[i]);

		if (!od_attribute_ok(name, strlen(name)))
			return FALSE;
	}
	return TRUE;
}

static gboolean
od_check_delivery_options(const char *value, const char **expected_r)
{
	g_auto(GStrv) entries = g_strsplit(value, ",", -1);

	*expected_r = "entries of the form [flags]name=template separated by commas";
	for (guint i = 0; entries[i] != NULL; i++) {
		const char *entry = g_strstrip(entries[i]);
		const char *eq = strchr(entry, '=');

		if (eq == NULL || eq == entry || eq[1] == '\0')
			return FALSE;
	}
	return TRUE;
}

static gboolean
od_check_ldap_uris(const char *value, const char **expected_r)
{
	g_auto(GStrv) uris = imta_directory_ldap_parse_uris(value, NULL);

	*expected_r = "1 to 16 LDAP URIs (ldap://host[:port], ldaps://host[:port], "
		      "ldapi://%2Fsocket%2Fpath) separated by spaces or commas";
	return uris != NULL;
}

static gboolean
od_check_ldap_hosts(const char *value, const char **expected_r)
{
	g_autofree char *uris = imta_directory_ldap_hosts_to_uris(value, 389, NULL);

	*expected_r = "1 to 16 host names or addresses, each with an optional :port, "
		      "separated by spaces or commas";
	return uris != NULL;
}

static gboolean
od_check_dn(const char *value, const char **expected_r)
{
	LDAPDN dn = NULL;
	int rc = ldap_str2dn(value, &dn, LDAP_DN_FORMAT_LDAPV3);

	*expected_r = "a distinguished name such as o=example.com or dc=example,dc=com";
	if (dn != NULL)
		ldap_dnfree(dn);
	return rc == LDAP_SUCCESS;
}

static gboolean
od_check_ldap_auth_method(const char *value, const char **expected_r)
{
	*expected_r = "compare or bind";
	return g_ascii_strcasecmp(value, "compare") == 0 || g_ascii_strcasecmp(value, "bind") == 0;
}

static ImtaOptionDat *
od_new(const char *path)
{
	ImtaOptionDat *od = g_new0(ImtaOptionDat, 1);

	od->path = g_strdup(path);
	od->warnings = g_ptr_array_new_with_free_func(g_free);
	imta_option_table_defaults(imta_option_dat_options, imta_option_dat_n_options, od,
				   OD_SCOPE);
	return od;
}

void
imta_option_dat_free(ImtaOptionDat *od)
{
	if (od == NULL)
		return;
	imta_option_table_clear(imta_option_dat_options, imta_option_dat_n_options, od);
	g_ptr_array_unref(od->warnings);
	g_free(od->path);
	if (od->own_names != NULL)
		g_string_chunk_free(od->own_names);
	g_free(od);
}

static gboolean
od_set(ImtaOptionDat *od, GHashTable *seen, const ImtaOptionLine *line, GError **error)
{
	const ImtaOptionSpec *row = imta_option_lookup(imta_option_dat_options,
						       imta_option_dat_n_options, line->name);

	if (line->kind == IMTA_OPTION_LINE_SECTION) {
		imta_set_error_at(error, IMTA_CONFIG_ERROR_SYNTAX, &line->pos,
				  "option.dat has no sections; expected NAME=value");
		return FALSE;
	}
	if (row == NULL)
		return imta_option_unknown(error, &line->name_pos, "option.dat", line->name,
					   imta_option_suggest(imta_option_dat_options,
							       imta_option_dat_n_options,
							       line->name, NULL));
	if (g_hash_table_contains(seen, row)) {
		g_autofree char *where = imta_source_pos_format(&line->name_pos);
		g_autofree char *first = imta_source_pos_format(g_hash_table_lookup(seen, row));

		g_ptr_array_add(od->warnings,
				g_strdup_printf("%s: %s is set again (first at %s); the later"
						" value wins", where, row->name, first));
	}
	g_hash_table_insert(seen, (gpointer)row, g_memdup2(&line->name_pos, sizeof(ImtaSourcePos)));
	return imta_option_set_row(row, od, line->value, &line->value_pos, error);
}

static ImtaOptionDat *
od_parse(ImtaCfgFile *cf, const char *path, GError **error)
{
	g_autoptr(ImtaOptionDat) od = od_new(path);
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
							   g_free);
	g_autoptr(GError) local = NULL;
	ImtaOptionLine line = { 0 };

	while (imta_option_next_line(cf, OD_COMMENTS, &line, &local))
		if (!od_set(od, seen, &line, &local))
			break;
	imta_option_line_clear(&line);
	if (local != NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return NULL;
	}
	return g_steal_pointer(&od);
}

ImtaOptionDat *
imta_option_dat_load(const char *path, GStringChunk *names, GError **error)
{
	g_autoptr(GStringChunk) own = NULL;
	g_autoptr(ImtaCfgFile) cf = NULL;
	ImtaOptionDat *od;

	if (names == NULL)
		own = g_string_chunk_new(256);
	cf = imta_cfg_file_open(path, IMTA_CFG_CONTINUATION, OD_COMMENTS,
				names != NULL ? names : own, error);
	if (cf == NULL)
		return NULL;
	od = od_parse(cf, path, error);
	if (od != NULL && own != NULL)
		od->own_names = g_steal_pointer(&own);
	return od;
}

ImtaOptionDat *
imta_option_dat_parse_text(const char *name, const char *text, gsize len,
			   GStringChunk *names, GError **error)
{
	g_autoptr(GStringChunk) own = NULL;
	g_autoptr(ImtaCfgFile) cf = NULL;
	ImtaOptionDat *od;

	if (names == NULL)
		own = g_string_chunk_new(256);
	cf = imta_cfg_file_open_text(name, text, len, IMTA_CFG_CONTINUATION, OD_COMMENTS,
				     names != NULL ? names : own);
	od = od_parse(cf, name, error);
	if (od != NULL && own != NULL)
		od->own_names = g_steal_pointer(&own);
	return od;
}

ImtaOptionDat *
imta_option_dat_new_default(void)
{
	return od_new(NULL);
}

void
imta_option_dat_dump(const ImtaOptionDat *od, GString *out)
{
	g_string_append_printf(out, "! option.dat: %s\n",
			       od->path != NULL ? od->path : "(built-in)");
	imta_option_table_dump(imta_option_dat_options, imta_option_dat_n_options, od, OD_SCOPE,
			       out);
}
