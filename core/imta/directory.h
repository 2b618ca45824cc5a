/*
 * directory.h - users, groups and domains, looked up by address.
 *
 * One API in front of interchangeable backends: the embedded LDIF backend
 * (the default; reads an LDIF file with the attributes of the messaging
 * LDAP schema, see imta-directory(5)) and the LDAP backend (libldap).  Every
 * lookup answers one of three ways, and callers must treat them
 * differently:
 *   IMTA_DIR_FOUND      an entry (or domain) exists;
 *   IMTA_DIR_NOT_FOUND  the directory is sure there is none (5xx territory);
 *   IMTA_DIR_TEMPFAIL   the directory could not answer (4xx: retry later).
 * Answers are cached (positive and negative; temporary failures never) with
 * a configured size and time to live; imta_directory_flush() empties the
 * cache.
 *
 * Entries are immutable and reference counted; a lookup returns a new
 * reference that the caller releases with imta_dir_entry_unref().  Their
 * GStrv fields are never NULL (an empty vector when the attribute is
 * absent).  NOT_FOUND may come with an error that explains a permanent
 * failure (a malformed URL, a group over its limit); TEMPFAIL always
 * comes with one.
 * An ImtaDirectory is safe to use from several threads at once.
 */
#ifndef IMTA_DIRECTORY_H
#define IMTA_DIRECTORY_H

#include <glib.h>
#include <imta/error.h>

G_BEGIN_DECLS

typedef enum {
	IMTA_DIR_FOUND,
	IMTA_DIR_NOT_FOUND,
	IMTA_DIR_TEMPFAIL,
} ImtaDirStatus;

typedef enum {
	IMTA_DIR_USER,
	IMTA_DIR_GROUP,
} ImtaDirKind;

/* mailUserStatus / inetUserStatus / inetMailGroupStatus, combined: the
 * stricter of the general and the mail status wins. */
typedef enum {
	IMTA_DIR_STATUS_ACTIVE,    /* active or absent */
	IMTA_DIR_STATUS_INACTIVE,  /* temporary failure (also any unknown value) */
	IMTA_DIR_STATUS_DELETED,   /* permanent failure */
	IMTA_DIR_STATUS_HOLD,      /* mail goes to the hold channel */
	IMTA_DIR_STATUS_OVERQUOTA, /* not delivered to the store */
	IMTA_DIR_STATUS_DISABLED,  /* groups: permanent failure */
} ImtaDirUserStatus;

/* Quota values: bytes / messages; these two mean "no limit" and "use the
 * configured default" (mailQuota -1 and -2 / absent). */
#define IMTA_DIR_QUOTA_UNLIMITED (-1)
#define IMTA_DIR_QUOTA_DEFAULT   (-2)

typedef struct {
	gint refcount;
	ImtaDirKind kind;
	char *dn;
	char *uid;                  /* mailbox name ($M); NULL for most groups */
	char *cn;
	char *mail;                 /* primary address */
	GStrv alternate_addresses;  /* mailAlternateAddress ("@domain" = catch-all) */
	GStrv equivalent_addresses; /* mailEquivalentAddress */
	char *mail_host;            /* mailHost */
	GStrv delivery_options;     /* mailDeliveryOption, lower-cased */
	GStrv forwarding_addresses; /* mailForwardingAddress */
	ImtaDirUserStatus status;
	gint64 quota_bytes;         /* mailQuota; IMTA_DIR_QUOTA_* */
	gint64 quota_messages;      /* mailMsgQuota; IMTA_DIR_QUOTA_* */
	char *message_store;        /* mailMessageStore partition; NULL = default */
	char *password;             /* userPassword as stored ({SSHA}..., {CRYPT}..., plain) */
	char *domain;               /* hosted domain the entry was found under */
	/* Groups. */
	GStrv rfc822_members;       /* mgrpRFC822MailMember / rfc822MailMember */
	GStrv member_dns;           /* uniqueMember (and member) */
	GStrv member_urls;          /* memberURL / mgrpDeliverTo */
	char *errors_to;            /* mgrpErrorsTo */
	/* Every attribute as read, lower-cased names -> GStrv values, for
	 * options and templates that name attributes the struct lacks. */
	GHashTable *attributes;
} ImtaDirEntry;

typedef struct {
	gint refcount;
	char *name;                 /* the domain looked up (lower case) */
	char *canonical;            /* canonical name (sunPreferredDomain / inetCanonicalDomainName) */
	char *base_dn;              /* where its users and groups live (inetDomainBaseDN) */
	ImtaDirUserStatus status;   /* inetDomainStatus / mailDomainStatus */
	GStrv routing_hosts;        /* mailRoutingHosts */
	char *smart_host;           /* mailRoutingSmartHost */
	gint64 disk_quota, msg_quota; /* mailDomainDiskQuota / mailDomainMsgQuota */
	GHashTable *attributes;
} ImtaDirDomain;

typedef struct _ImtaDirectory ImtaDirectory;

typedef struct {
	guint cache_size;      /* entries; 0 disables caching */
	guint cache_ttl;       /* seconds for positive answers */
	guint negative_ttl;    /* seconds for NOT_FOUND answers */
	const char *local_host; /* this system's host name: mailHost / mailRoutingHosts test */
	/* Other names of this system (NULL-terminated; NULL = none), which
	 * mailHost and mailRoutingHosts may use as well; copied at open. */
	const char *const *local_host_aliases;
	/* DOMAIN_UPLEVEL: IMTA_DIR_UPLEVEL_* bits; 0 = a domain is only itself. */
	guint domain_uplevel;
} ImtaDirectoryOptions;

/* The source route that sends a held user's mail to the hold channel: the
 * hold row of DELIVERY_OPTIONS is "@hold-daemon:$A" by default, and a
 * channel that finds a recipient held puts this before its address. */
#define IMTA_DIR_HOLD_ROUTE "@hold-daemon:"

/* DOMAIN_UPLEVEL bits.  WALK: a domain with no entry of its own belongs to
 * the nearest parent that has one ("host1.siroe.com" -> "siroe.com"; the
 * walk stops at two labels).  LOCAL_PART: an address in such a domain is
 * also looked up as the same local part in the domain found. */
#define IMTA_DIR_UPLEVEL_WALK       1u
#define IMTA_DIR_UPLEVEL_LOCAL_PART 2u

/* Open the embedded backend on an LDIF file.  Syntax errors give the
 * file:line of the entry.  The file is reread when its mtime changes
 * (checked at most once per second), so edits need no restart. */
ImtaDirectory *imta_directory_open_ldif(const char *path, const ImtaDirectoryOptions *options,
					GError **error);

/* The LDAP backend (libldap), imta-directory(5) "LDAP BACKEND".  Strings
 * are borrowed for the call.  Servers are tried in the order given; a
 * server that fails is avoided for retry_interval seconds, and
 * connections to a later server are replaced after that long, so the
 * first one is used again once it is back.  Nothing is contacted at open:
 * an unreachable server makes lookups TEMPFAIL, never the open fail. */
typedef enum {
	IMTA_DIR_LDAP_AUTH_COMPARE, /* read userPassword and check it here */
	IMTA_DIR_LDAP_AUTH_BIND,    /* bind to the server as the user */
} ImtaDirLdapAuthMethod;

typedef struct {
	const char *uris;               /* LDAP_URIS: ldap://, ldaps://, ldapi:// (required) */
	const char *bind_dn;            /* simple bind DN; NULL = anonymous */
	const char *bind_password;      /* inline password; NULL = none */
	const char *bind_password_file; /* absolute path, mode 0600/0400; wins if set */
	const char *sasl_mech;          /* NULL = simple bind; EXTERNAL, PLAIN, DIGEST-MD5, ... */
	const char *sasl_authcid;       /* SASL authentication identity */
	const char *sasl_authzid;       /* SASL authorization identity; NULL = none */
	const char *sasl_realm;         /* SASL realm; NULL = none */
	const char *base_dn;            /* users and groups outside hosted domains (required) */
	const char *domain_root;        /* where domain entries are searched; NULL = base_dn */
	guint timeout;                  /* seconds per operation (1..600) */
	guint connect_timeout;          /* seconds per TCP connect (1..600) */
	guint pool_size;                /* connections per process (1..1024) */
	guint retry_interval;           /* seconds a failed server is avoided (1..86400) */
	ImtaDirLdapAuthMethod auth_method;
	/* TLS (ldaps://, or StartTLS on ldap:// with `starttls`): the server's
	 * certificate must verify against `tls_ca_file` (NULL: libldap's
	 * default CAs) and name the host of the URI, unless `tls_no_verify`. */
	const char *tls_ca_file;        /* absolute path of a PEM file */
	gboolean starttls;
	gboolean tls_no_verify;
} ImtaDirectoryLdapOptions;

/* Open the LDAP backend.  Fails (IMTA_CONFIG_ERROR_*) only on unusable
 * settings: a malformed URI list, a missing base DN, a password file that
 * cannot be read or that group or others may read, a SASL mechanism this
 * build cannot use. */
ImtaDirectory *imta_directory_open_ldap(const ImtaDirectoryLdapOptions *ldap,
					const ImtaDirectoryOptions *options, GError **error);

/* Split an LDAP_URIS value (URIs separated by spaces or commas, at most
 * 16) into normalised URIs ("ldap://host:port", "ldapi://%2Fpath").  A
 * URI may name a server only (no DN, attributes or filter).  NULL with
 * an IMTA_CONFIG_ERROR_SYNTAX error saying which URI is wrong. */
GStrv imta_directory_ldap_parse_uris(const char *text, GError **error);

/* Turn LDAP_HOST ("host[:port]" items separated by spaces or commas,
 * IPv6 addresses in brackets) and LDAP_PORT into an LDAP_URIS value;
 * NULL with an error as above. */
char *imta_directory_ldap_hosts_to_uris(const char *hosts, guint port, GError **error);

/* The entry (user or group) whose mail, mailAlternateAddress or
 * mailEquivalentAddress equals `address` (case-insensitive), searched under
 * the address's domain; a "@domain" alternate address catches every local
 * part of that domain when no exact entry exists.  A domain alias also
 * tries the same local part in the canonical domain.  When several entries
 * claim the address and setting aside deleted and uid-less ones does not
 * leave exactly one, the answer is TEMPFAIL with
 * IMTA_DIRECTORY_ERROR_AMBIGUOUS (mail waits until the data is fixed). */
ImtaDirStatus imta_directory_lookup_address(ImtaDirectory *dir, const char *address,
					    ImtaDirEntry **entry_r, GError **error);

/* The mail user or group with this DN (case and spaces after commas do
 * not matter). */
ImtaDirStatus imta_directory_lookup_dn(ImtaDirectory *dir, const char *dn,
				       ImtaDirEntry **entry_r, GError **error);

/* The hosted or local domain `domain` (case-insensitive). */
ImtaDirStatus imta_directory_lookup_domain(ImtaDirectory *dir, const char *domain,
					   ImtaDirDomain **domain_r, GError **error);

/* Is `domain` local?  FOUND when it has a domain entry whose
 * mailRoutingHosts is absent or names local_host or one of its aliases;
 * NOT_FOUND otherwise. */
ImtaDirStatus imta_directory_domain_is_local(ImtaDirectory *dir, const char *domain,
					     GError **error);

/* Entries matching an LDAP URL ("ldap:///base?attrs?scope?filter"), as a
 * dynamic group's memberURL does; *entries_r gets a GPtrArray of new
 * references (free with g_ptr_array_unref), only on FOUND.  Only mail users
 * and groups are returned.  A malformed URL or filter is NOT_FOUND with an
 * IMTA_DIRECTORY_ERROR_DATA error. */
ImtaDirStatus imta_directory_search_url(ImtaDirectory *dir, const char *url,
					GPtrArray **entries_r, GError **error);

/* Expand a group into member addresses: rfc822 members, member DNs
 * (their `mail`), and memberURL results; nested groups expand recursively
 * with loop protection; at most `limit` addresses (0: no limit).  FOUND
 * with the addresses (possibly none), each once, in that order; NOT_FOUND
 * with an IMTA_DIRECTORY_ERROR_DATA error when the limit is exceeded, a
 * memberURL is malformed or groups nest more than 32 deep; TEMPFAIL when
 * any part could not be read.  The results of one memberURL are taken in
 * the order of their DNs (case-folded), whatever order the backend
 * returns them in. */
ImtaDirStatus imta_directory_expand_group(ImtaDirectory *dir, const ImtaDirEntry *group,
					  guint limit, GPtrArray **addresses_r, GError **error);

/* Check a password for the user with this address or uid.  FOUND = good,
 * NOT_FOUND = bad password or no such user.  Only users whose status is
 * active or overquota log in; an empty password never does.  The cache is
 * bypassed.  An unusable stored password (unknown scheme) is NOT_FOUND
 * with an error that never contains the password. */
ImtaDirStatus imta_directory_authenticate(ImtaDirectory *dir, const char *user,
					  const char *password, GError **error);

/* imta_directory_lookup_address() for an address of a local domain as
 * mail arrives for it: when `address` itself has no entry and its local
 * part has a "+subaddress", the entry of the address without it
 * ("alice+Archive@example.com" -> "alice@example.com"). */
ImtaDirStatus imta_directory_lookup_local(ImtaDirectory *dir, const char *address,
					  ImtaDirEntry **entry_r, GError **error);

/* Delivery options: the addresses mail for `entry`, found by looking up
 * the local `address` (as received, "+subaddress" included), is delivered
 * to, in the order of imta-directory(5) "PROCESSING AN ENTRY":
 *   1. Status hold (entry->status IMTA_DIR_STATUS_HOLD) overrides every
 *      delivery option: the one address is the first '/'-flagged row's
 *      template, "@hold-daemon:$A" when no row has that flag.
 *   2. Mail host: unless every option that applies is independent of it
 *      (flag '#', or a template that names the mail host with $X), the
 *      entry's mailHost must be the local host name or one of its
 *      aliases; another mailHost gives the one address "@mailhost:ADDRESS"
 *      (rewritten again by the caller).  A user without mailHost uses
 *      the mailRoutingSmartHost of its domain the same way (a smart host
 *      that is this system expands here); with neither the answer is
 *      NOT_FOUND with IMTA_DIRECTORY_ERROR_NO_HOST.  A group without
 *      mailHost is expanded here.
 *   3. Options: `delivery_options` is option.dat's DELIVERY_OPTIONS,
 *      comma-separated "[flags]name=template" rows; each of the entry's
 *      mailDeliveryOption values (a user without any: "mailbox"; a
 *      group: "members") picks the row of that name.  Flag '*' limits a
 *      row to users, '&' to groups; rows flagged '^' or '!' are not
 *      applied; '/' (hold) rows apply like any other; an option no row
 *      defines is skipped.
 * Template "*" gives the group's members, "**" the entry's
 * mailForwardingAddress values; others substitute $M (uid, $nM its n-th
 * character), $nI (hosted domain: the entry's domain unless it is the
 * default domain, the one the directory finds for the local host name or
 * its parents), $nS (subaddress), $A, $D, $L (address, its domain, its
 * local part), $P, $F, $X (mailProgramDeliveryInfo, mailDeliveryFileURL,
 * mailHost), $$; $\ $^ $_ switch the output to lower, upper or unchanged
 * case.  For $I, $S: n=1 inserts nothing without a value, 2 also deletes
 * the preceding character, 3 skips the following one; otherwise a missing
 * value fails the option.  FOUND with a GPtrArray of new strings (each
 * address once, in order; free with g_ptr_array_unref); NOT_FOUND with an
 * IMTA_DIRECTORY_ERROR_DATA error for a malformed row or template, an
 * option that cannot be expanded, a mailHost that is not a host name, or
 * no applicable option; TEMPFAIL when the directory could not answer.
 * Other statuses (inactive, deleted...) are the caller's to act on. */
ImtaDirStatus imta_directory_delivery_addresses(ImtaDirectory *dir, const char *delivery_options,
						const ImtaDirEntry *entry, const char *address,
						GPtrArray **addresses_r, GError **error);

/* Empty the cache (and whatever the backend keeps, such as the LDAP
 * backend's hosted-domain table). */
void imta_directory_flush(ImtaDirectory *dir);

/* The backend's name: "ldif" or "ldap". */
const char *imta_directory_backend_name(const ImtaDirectory *dir);

/* Cache counters, for `imsimta` and tests. */
typedef struct {
	guint64 hits, misses, entries;
} ImtaDirectoryStats;
void imta_directory_stats(ImtaDirectory *dir, ImtaDirectoryStats *stats_r);

ImtaDirEntry *imta_dir_entry_ref(ImtaDirEntry *entry);
void imta_dir_entry_unref(ImtaDirEntry *entry);
ImtaDirDomain *imta_dir_domain_ref(ImtaDirDomain *domain);
void imta_dir_domain_unref(ImtaDirDomain *domain);
/* First value of an attribute (lower-case name), or NULL. */
const char *imta_dir_entry_attr(const ImtaDirEntry *entry, const char *name);

void imta_directory_free(ImtaDirectory *dir);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaDirEntry, imta_dir_entry_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaDirDomain, imta_dir_domain_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaDirectory, imta_directory_free)

G_END_DECLS

#endif
