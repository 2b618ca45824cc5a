/*
 * ldap_config.c - the LDAP backend's settings: server lists, bind
 * identities and secrets, limits, checked before anything connects.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <ldap.h>
#include <glib.h>

#include <imta/directory.h>
#include <imta/error.h>

#include "ldap_private.h"

#define LDAP_DEFAULT_TIMEOUT         10
#define LDAP_DEFAULT_CONNECT_TIMEOUT 5
#define LDAP_DEFAULT_POOL_SIZE       8
#define LDAP_DEFAULT_RETRY_INTERVAL  60
/* A password file larger than this is not a password file. */
#define LDAP_MAX_PASSWORD_FILE 4096
/* Longest SASL mechanism name (RFC 4422: 1 to 20 characters). */
#define LDAP_MAX_MECH 20

/* ---------------------------------------------------------------------- */
/* Server lists. */

static gboolean
ldap_host_ok(const char *host)
{
	if (*host == '\0' || strlen(host) > 255)
		return FALSE;
	for (const char *c = host; *c != '\0'; c++)
		if (!g_ascii_isalnum(*c) && *c != '.' && *c != '-' && *c != '_' && *c != ':')
			return FALSE;
	return TRUE;
}

static gboolean G_GNUC_PRINTF(3, 4)
ldap_uri_fail(GError **error, const char *uri, const char *fmt, ...)
{
	g_autofree char *what = NULL;
	va_list args;

	va_start(args, fmt);
	what = g_strdup_vprintf(fmt, args);
	va_end(args);
	g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_SYNTAX,
		    "LDAP URI \"%.200s\": %s", uri, what);
	return FALSE;
}

/* One URI, checked and written the one way the pool uses. */
static char *
ldap_uri_normalize(const char *uri, GError **error)
{
	LDAPURLDesc *desc = NULL;
	g_autofree char *scheme = NULL;
	char *out = NULL;

	if (ldap_url_parse(uri, &desc) != LDAP_URL_SUCCESS) {
		ldap_uri_fail(error, uri, "expected ldap://host[:port], ldaps://host[:port] or "
			      "ldapi://%%2Fsocket%%2Fpath");
		return NULL;
	}
	scheme = g_ascii_strdown(desc->lud_scheme, -1);
	/* '?' starts attributes, scope, filter or extensions, even empty ones. */
	if ((desc->lud_dn != NULL && *desc->lud_dn != '\0') || desc->lud_attrs != NULL ||
	    desc->lud_filter != NULL || desc->lud_exts != NULL || strchr(uri, '?') != NULL) {
		ldap_uri_fail(error, uri, "a server URI names a server only; the base DN is "
			      "LDAP_BASE_DN");
	} else if (strcmp(scheme, "ldapi") == 0) {
		if (desc->lud_host == NULL || *desc->lud_host == '\0') {
			out = g_strdup("ldapi:///");
		} else if (desc->lud_host[0] != '/') {
			ldap_uri_fail(error, uri, "an ldapi:// URI names an absolute socket path, "
				      "with each '/' written %%2F");
		} else {
			g_autofree char *escaped = g_uri_escape_string(desc->lud_host, NULL, FALSE);

			out = g_strconcat("ldapi://", escaped, NULL);
		}
	} else if (strcmp(scheme, "ldap") != 0 && strcmp(scheme, "ldaps") != 0) {
		ldap_uri_fail(error, uri, "unknown scheme \"%s\"", scheme);
	} else if (desc->lud_host == NULL || !ldap_host_ok(desc->lud_host)) {
		ldap_uri_fail(error, uri, "expected a host name or address");
	} else if (desc->lud_port <= 0 || desc->lud_port > 65535) {
		ldap_uri_fail(error, uri, "expected a port between 1 and 65535");
	} else {
		g_autofree char *host = g_ascii_strdown(desc->lud_host, -1);
		gboolean v6 = strchr(host, ':') != NULL;

		out = g_strdup_printf("%s://%s%s%s:%d", scheme, v6 ? "[" : "", host, v6 ? "]" : "",
				      desc->lud_port);
	}
	ldap_free_urldesc(desc);
	return out;
}

static GStrv
ldap_split_list(const char *text)
{
	g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func(g_free);
	const char *p = text;

	while (*p != '\0') {
		const char *start;

		while (*p == ',' || g_ascii_isspace(*p))
			p++;
		start = p;
		while (*p != '\0' && *p != ',' && !g_ascii_isspace(*p))
			p++;
		if (p > start)
			g_ptr_array_add(items, g_strndup(start, (gsize)(p - start)));
	}
	g_ptr_array_add(items, NULL);
	return (GStrv)g_ptr_array_free(g_steal_pointer(&items), FALSE);
}

GStrv
imta_directory_ldap_parse_uris(const char *text, GError **error)
{
	g_auto(GStrv) items = ldap_split_list(text);
	g_autoptr(GPtrArray) uris = g_ptr_array_new_with_free_func(g_free);
	guint n = g_strv_length(items);

	if (n == 0) {
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_SYNTAX,
			    "expected at least one LDAP URI");
		return NULL;
	}
	if (n > IMTA_DIR_LDAP_MAX_URIS) {
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_RANGE,
			    "%u LDAP URIs given; at most %d are allowed", n,
			    IMTA_DIR_LDAP_MAX_URIS);
		return NULL;
	}
	for (guint i = 0; i < n; i++) {
		char *uri = ldap_uri_normalize(items[i], error);

		if (uri == NULL)
			return NULL;
		g_ptr_array_add(uris, uri);
	}
	g_ptr_array_add(uris, NULL);
	return (GStrv)g_ptr_array_free(g_steal_pointer(&uris), FALSE);
}

/* "host", "host:port", "[v6]", "[v6]:port" -> host and port. */
static gboolean
ldap_host_item(const char *item, guint default_port, char **host_r, guint *port_r,
	       GError **error)
{
	g_autofree char *host = NULL;
	const char *port_text = NULL;
	guint64 port = default_port;

	if (item[0] == '[') {
		const char *close = strchr(item, ']');

		if (close == NULL || (close[1] != '\0' && close[1] != ':'))
			goto bad;
		host = g_strndup(item + 1, (gsize)(close - item - 1));
		if (close[1] == ':')
			port_text = close + 2;
		if (strchr(host, ':') == NULL)
			goto bad;
	} else {
		const char *colon = strchr(item, ':');

		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			goto bad;      /* IPv6 needs brackets: the port would be ambiguous */
		host = colon != NULL ? g_strndup(item, (gsize)(colon - item)) : g_strdup(item);
		if (colon != NULL)
			port_text = colon + 1;
	}
	if (!ldap_host_ok(host))
		goto bad;
	if (port_text != NULL &&
	    !g_ascii_string_to_unsigned(port_text, 10, 1, 65535, &port, NULL))
		goto bad;
	*host_r = g_steal_pointer(&host);
	*port_r = (guint)port;
	return TRUE;
bad:
	g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_SYNTAX,
		    "LDAP host \"%.200s\": expected host, host:port or [IPv6-address]:port "
		    "(port 1 to 65535)", item);
	return FALSE;
}

char *
imta_directory_ldap_hosts_to_uris(const char *hosts, guint port, GError **error)
{
	g_auto(GStrv) items = ldap_split_list(hosts);
	g_autoptr(GString) out = g_string_new(NULL);
	guint n = g_strv_length(items);

	if (n == 0 || n > IMTA_DIR_LDAP_MAX_URIS) {
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_RANGE,
			    "expected 1 to %d LDAP hosts, got %u", IMTA_DIR_LDAP_MAX_URIS, n);
		return NULL;
	}
	if (port == 0 || port > 65535) {
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_RANGE,
			    "LDAP port %u: expected a port between 1 and 65535", port);
		return NULL;
	}
	for (guint i = 0; i < n; i++) {
		g_autofree char *host = NULL;
		guint item_port;

		if (!ldap_host_item(items[i], port, &host, &item_port, error))
			return NULL;
		g_string_append_printf(out, "%sldap://%s%s%s:%u", i > 0 ? " " : "",
				       strchr(host, ':') != NULL ? "[" : "", host,
				       strchr(host, ':') != NULL ? "]" : "", item_port);
	}
	return g_string_free(g_steal_pointer(&out), FALSE);
}

/* ---------------------------------------------------------------------- */
/* Secrets. */

/* The password in `path`: one line (a final newline is not part of it),
 * in a regular file that neither group nor others may read. */
static char *
ldap_read_password_file(const char *path, GError **error)
{
	char buf[LDAP_MAX_PASSWORD_FILE + 1];
	struct stat st;
	ssize_t n;
	gsize len;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		int saved = errno;

		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_IO,
			    "LDAP_BIND_PASSWORD_FILE \"%s\": %s", path, g_strerror(saved));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_IO,
			    "LDAP_BIND_PASSWORD_FILE \"%s\": not a regular file", path);
		return NULL;
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		close(fd);
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_RANGE,
			    "LDAP_BIND_PASSWORD_FILE \"%s\": group or others may access it "
			    "(mode %04o); make it readable by the MTA's user only (chmod 600)",
			    path, (unsigned)(st.st_mode & 07777));
		return NULL;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0 || n > LDAP_MAX_PASSWORD_FILE) {
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_IO,
			    "LDAP_BIND_PASSWORD_FILE \"%s\": %s", path,
			    n < 0 ? g_strerror(errno) : "larger than 4096 bytes");
		return NULL;
	}
	len = (gsize)n;
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (len == 0 || memchr(buf, '\n', len) != NULL || memchr(buf, '\0', len) != NULL) {
		memset(buf, 0, sizeof(buf));
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_SYNTAX,
			    "LDAP_BIND_PASSWORD_FILE \"%s\": expected the password on one line",
			    path);
		return NULL;
	}
	{
		char *password = g_strndup(buf, len);

		memset(buf, 0, sizeof(buf));
		return password;
	}
}

/* ---------------------------------------------------------------------- */
/* Checks. */

gboolean
imta_dir_ldap_sasl_supported(const char *mech)
{
	if (strcmp(mech, "EXTERNAL") == 0 || strcmp(mech, "PLAIN") == 0)
		return TRUE;
#ifdef HAVE_SASL_SASL_H
	return TRUE;
#else
	return FALSE;
#endif
}

static gboolean
ldap_mech_name_ok(const char *mech)
{
	gsize len = strlen(mech);

	if (len == 0 || len > LDAP_MAX_MECH)
		return FALSE;
	for (gsize i = 0; i < len; i++)
		if (!g_ascii_isupper(mech[i]) && !g_ascii_isdigit(mech[i]) && mech[i] != '-' &&
		    mech[i] != '_')
			return FALSE;
	return TRUE;
}

static gboolean
ldap_dn_ok(const char *option, const char *dn, GError **error)
{
	LDAPDN parsed = NULL;
	int rc = ldap_str2dn(dn, &parsed, LDAP_DN_FORMAT_LDAPV3);

	if (parsed != NULL)
		ldap_dnfree(parsed);
	if (rc != LDAP_SUCCESS) {
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_SYNTAX,
			    "%s \"%.200s\": not a valid DN", option, dn);
		return FALSE;
	}
	return TRUE;
}

static gboolean
ldap_range(const char *option, guint value, guint def, guint min, guint max, guint *out,
	   GError **error)
{
	if (value == 0)
		value = def;
	if (value < min || value > max) {
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_RANGE,
			    "%s: expected an integer between %u and %u, got %u", option, min, max,
			    value);
		return FALSE;
	}
	*out = value;
	return TRUE;
}

static const char *
ldap_nonempty(const char *value)
{
	return value != NULL && *value != '\0' ? value : NULL;
}

static gboolean
ldap_settings_bind(LdapSettings *s, const ImtaDirectoryLdapOptions *o, GError **error)
{
	const char *file = ldap_nonempty(o->bind_password_file);

	if (file != NULL) {
		s->password = ldap_read_password_file(file, error);
		if (s->password == NULL)
			return FALSE;
	} else {
		s->password = g_strdup(ldap_nonempty(o->bind_password));
	}
	if (s->sasl_mech == NULL) {
		if (s->bind_dn == NULL && s->password != NULL) {
			g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_MISSING,
				    "a bind password is set but LDAP_BIND_DN is not");
			return FALSE;
		}
		if (s->bind_dn != NULL && s->password == NULL) {
			g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_MISSING,
				    "LDAP_BIND_DN is set but neither LDAP_BIND_PASSWORD_FILE nor "
				    "LDAP_BIND_PASSWORD");
			return FALSE;
		}
		return s->bind_dn == NULL || ldap_dn_ok("LDAP_BIND_DN", s->bind_dn, error);
	}
	if (!ldap_mech_name_ok(s->sasl_mech)) {
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_SYNTAX,
			    "LDAP_SASL_MECH \"%.40s\": expected a SASL mechanism name such as "
			    "EXTERNAL, PLAIN or DIGEST-MD5", s->sasl_mech);
		return FALSE;
	}
	if (!imta_dir_ldap_sasl_supported(s->sasl_mech)) {
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_UNKNOWN,
			    "LDAP_SASL_MECH %s: this build has no SASL library (only EXTERNAL "
			    "and PLAIN are available)", s->sasl_mech);
		return FALSE;
	}
	if (s->bind_dn != NULL) {
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_SYNTAX,
			    "LDAP_BIND_DN is for simple binds; with LDAP_SASL_MECH the identity "
			    "is LDAP_SASL_AUTHCID");
		return FALSE;
	}
	if (strcmp(s->sasl_mech, "EXTERNAL") != 0 &&
	    (s->sasl_authcid == NULL || s->password == NULL)) {
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_MISSING,
			    "LDAP_SASL_MECH %s needs LDAP_SASL_AUTHCID and a password "
			    "(LDAP_BIND_PASSWORD_FILE or LDAP_BIND_PASSWORD)", s->sasl_mech);
		return FALSE;
	}
	return TRUE;
}

LdapSettings *
imta_dir_ldap_settings_new(const ImtaDirectoryLdapOptions *o, GError **error)
{
	g_autoptr(LdapSettings) s = g_new0(LdapSettings, 1);
	const char *mech = ldap_nonempty(o->sasl_mech);

	if (ldap_nonempty(o->uris) == NULL) {
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_MISSING,
			    "the LDAP directory needs LDAP_URIS (or LDAP_HOST): no server is set");
		return NULL;
	}
	s->uris = imta_directory_ldap_parse_uris(o->uris, error);
	if (s->uris == NULL) {
		g_prefix_error(error, "LDAP_URIS: ");
		return NULL;
	}
	if (ldap_nonempty(o->base_dn) == NULL) {
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_MISSING,
			    "the LDAP directory needs LDAP_BASE_DN (the subtree of users and "
			    "groups)");
		return NULL;
	}
	if (!ldap_dn_ok("LDAP_BASE_DN", o->base_dn, error))
		return NULL;
	s->base_dn = g_strdup(o->base_dn);
	s->domain_root = g_strdup(ldap_nonempty(o->domain_root) != NULL ? o->domain_root
					 : o->base_dn);
	if (!ldap_dn_ok("LDAP_DOMAIN_ROOT", s->domain_root, error))
		return NULL;
	s->bind_dn = g_strdup(ldap_nonempty(o->bind_dn));
	s->sasl_mech = mech != NULL ? g_ascii_strup(mech, -1) : NULL;
	s->sasl_authcid = g_strdup(ldap_nonempty(o->sasl_authcid));
	s->sasl_authzid = g_strdup(ldap_nonempty(o->sasl_authzid));
	s->sasl_realm = g_strdup(ldap_nonempty(o->sasl_realm));
	if (!ldap_settings_bind(s, o, error))
		return NULL;
	if (!ldap_range("LDAP_TIMEOUT", o->timeout, LDAP_DEFAULT_TIMEOUT, 1, 600, &s->timeout,
			error) ||
	    !ldap_range("LDAP_CONNECT_TIMEOUT", o->connect_timeout, LDAP_DEFAULT_CONNECT_TIMEOUT,
			1, 600, &s->connect_timeout, error) ||
	    !ldap_range("LDAP_POOL_SIZE", o->pool_size, LDAP_DEFAULT_POOL_SIZE, 1, 1024,
			&s->pool_size, error) ||
	    !ldap_range("LDAP_RETRY_INTERVAL", o->retry_interval, LDAP_DEFAULT_RETRY_INTERVAL, 1,
			86400, &s->retry_interval, error))
		return NULL;
	s->auth_method = o->auth_method;
	if (ldap_nonempty(o->tls_ca_file) != NULL &&
	    !g_file_test(o->tls_ca_file, G_FILE_TEST_IS_REGULAR)) {
		g_set_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_IO,
			    "LDAP_TLS_CA_FILE: %s is not a file", o->tls_ca_file);
		return NULL;
	}
	s->tls_ca_file = g_strdup(ldap_nonempty(o->tls_ca_file));
	s->starttls = o->starttls;
	s->tls_no_verify = o->tls_no_verify;
	return g_steal_pointer(&s);
}

void
imta_dir_ldap_settings_free(LdapSettings *s)
{
	if (s == NULL)
		return;
	g_strfreev(s->uris);
	g_free(s->bind_dn);
	if (s->password != NULL) {
		memset(s->password, 0, strlen(s->password));
		g_free(s->password);
	}
	g_free(s->sasl_mech);
	g_free(s->sasl_authcid);
	g_free(s->sasl_authzid);
	g_free(s->sasl_realm);
	g_free(s->base_dn);
	g_free(s->domain_root);
	g_free(s->tls_ca_file);
	g_free(s);
}
