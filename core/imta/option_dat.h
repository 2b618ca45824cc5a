/*
 * option_dat.h - option.dat: global MTA options.
 *
 * Syntax (option.dat(5)): one "NAME=value" per line, names
 * case-insensitive; a line whose first non-blank character is '!', '#' or
 * ';' is a comment; a trailing '\' continues a value on the next line;
 * integers may be written b%v.  An unknown name is an error; an option set
 * twice keeps the later value (with a warning).
 */
#ifndef IMTA_OPTION_DAT_H
#define IMTA_OPTION_DAT_H

#include <glib.h>
#include <imta/error.h>
#include <imta/options.h>

G_BEGIN_DECLS

#define IMTA_OPTION_DAT_ALIAS_URLS 4

typedef struct {
	char *path;                      /* NULL for the built-in defaults */
	/* Sizes, notices and the message log (queue-and-notices). */
	gint64 block_size;               /* bytes per block */
	gint64 block_limit;              /* message size cap in blocks; 0 = none */
	gint64 line_limit;               /* message size cap in lines; 0 = none */
	gint64 return_units;             /* notices ages: 0 = days, 1 = hours */
	char *return_address;            /* NULL = postmaster@<local host> */
	char *return_personal;           /* display name of notices; NULL = none */
	gint64 content_return_block_limit; /* bounce only headers above; 0 = no limit */
	gint64 log_connection;           /* bit mask of connection log entries */
	gboolean log_filename;
	gboolean log_message_id;
	gint64 log_process;
	gboolean separate_connection_log;
	/* Access tables. */
	gboolean access_errors;
	gboolean access_orcpt;
	/* Directory: aliases, delivery options, domains, reversal. */
	gint64 alias_magic;
	char *alias_url[IMTA_OPTION_DAT_ALIAS_URLS]; /* ALIAS_URL0..ALIAS_URL3; NULL = unset */
	char *delivery_options;
	gint64 domain_uplevel;           /* bit 0: walk up; bit 1: also search local@found */
	char *domain_failure;
	char *domain_match_url;          /* NULL = no vanity domain lookup */
	gboolean route_to_routing_host;
	gint64 use_reverse_database;
	gboolean reverse_envelope;
	char *reverse_url;
	char *ldap_mailhost;
	char *ldap_delivery_option;
	char *ldap_user_object_classes;  /* comma-separated */
	char *ldap_group_object_classes; /* comma-separated */
	char *ldap_group_rfc822;
	char *ldap_group_url1;
	char *ldap_group_url2;
	char *ldap_domain_attr_canonical;
	gint64 directory_cache_size;     /* entries; 0 = no cache */
	gint64 directory_cache_ttl;      /* seconds */
	gint64 directory_negative_ttl;   /* seconds */
	/* Name servers (dns.h). */
	char *dns_servers;               /* "addr[:port],..."; NULL = the system's */
	gint64 dns_timeout;              /* seconds per try */
	/* TLS of the servers (slave.h). */
	char *tls_certificate_file;      /* PEM; relative to the config directory; NULL = no TLS */
	char *tls_key_file;              /* PEM; NULL = in the certificate file */
	char *tls_priority;              /* GnuTLS priority string */
	GPtrArray *warnings;             /* char *, "file:line:column: text" */
	GStringChunk *own_names;         /* file names, when the caller gave no chunk */
	/* The LDAP directory backend (IMTA_DIRECTORY=ldap:), imta-directory(5). */
	char *ldap_uris;                 /* "ldap://host:port ..."; NULL = from LDAP_HOST */
	char *ldap_host;                 /* "host[:port] ..." (with ldap_port) */
	gint64 ldap_port;
	char *ldap_bind_dn;
	char *ldap_bind_password;
	char *ldap_bind_password_file;   /* relative to the configuration directory */
	char *ldap_sasl_mech;
	char *ldap_sasl_authcid;
	char *ldap_sasl_authzid;
	char *ldap_sasl_realm;
	char *ldap_base_dn;
	char *ldap_domain_root;          /* NULL = ldap_base_dn */
	gint64 ldap_timeout;             /* seconds per request */
	gint64 ldap_connect_timeout;     /* seconds per connect */
	gint64 ldap_pool_size;
	gint64 ldap_retry_interval;      /* seconds */
	char *ldap_auth_method;          /* "compare" or "bind" */
	char *ldap_tls_ca_file;          /* PEM; relative to the configuration directory */
	gint64 ldap_starttls;            /* 1: StartTLS on ldap:// servers */
	gint64 ldap_tls_verify;          /* 0: accept any server certificate */
} ImtaOptionDat;

extern const ImtaOptionSpec imta_option_dat_options[];
extern const gsize imta_option_dat_n_options;

ImtaOptionDat *imta_option_dat_load(const char *path, GStringChunk *names, GError **error);
ImtaOptionDat *imta_option_dat_parse_text(const char *name, const char *text, gsize len,
					  GStringChunk *names, GError **error);

/* Every option at its default (what an absent option.dat means). */
ImtaOptionDat *imta_option_dat_new_default(void);

void imta_option_dat_dump(const ImtaOptionDat *options, GString *out);

void imta_option_dat_free(ImtaOptionDat *options);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaOptionDat, imta_option_dat_free)

G_END_DECLS

#endif
