/*
 * recipient.h - from a queue recipient of the ims-ms channel to the
 * mailbox it names: the address forms, and the directory entry behind it.
 *
 * Forms (local part, any host: the rewrite rules chose the channel):
 *   uid                 a user of the default domain; user id "uid"
 *   uid%domain          a user of hosted domain `domain`; user id "uid@domain"
 *   ...+folder          either of the above with a folder ("alice+Archive",
 *                       "joe%example.org+Lists/glib"); the folder may also
 *                       come before the domain ("joe+Lists%example.org")
 * A uid is 1 to 255 bytes of letters, digits and . _ - = ! $ & ' ^ ` { | } ~;
 * a domain is a host name (letters, digits, '-', '.' between labels), kept
 * in lower case; a folder is 1 to 255 bytes without control characters,
 * '%' or '@', and an empty folder or "INBOX" (any case) means INBOX.
 */
#ifndef IMS_MS_RECIPIENT_H
#define IMS_MS_RECIPIENT_H

#include <glib.h>
#include <imta/directory.h>

G_BEGIN_DECLS

#define IMS_MS_ERROR (ims_ms_error_quark())
GQuark ims_ms_error_quark(void);

typedef enum {
	IMS_MS_ERROR_ADDRESS,   /* a recipient that is none of the forms */
	IMS_MS_ERROR_QUOTA,     /* a quota value that does not parse */
} ImsMsErrorCode;

typedef struct {
	char *uid;
	char *domain;   /* lower case; NULL: the default domain */
	char *folder;   /* NULL: INBOX */
} ImsMsAddress;

/* Parse a queue recipient ("alice+Archive@ims-ms-daemon").  Errors are
 * IMS_MS_ERROR_ADDRESS, saying what was expected. */
gboolean ims_ms_address_parse(const char *address, ImsMsAddress *addr_r, GError **error);
void ims_ms_address_clear(ImsMsAddress *addr);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(ImsMsAddress, ims_ms_address_clear)

/* The store's user id: "uid", or "uid@domain" when the domain is given
 * and is not `default_domain` (compared without case; may be NULL). */
char *ims_ms_address_userid(const ImsMsAddress *addr, const char *default_domain);

/* The LDAP URL that finds the mail user with this uid under `base_dn`
 * ("" = the whole directory), values escaped for the filter and the URL. */
char *ims_ms_user_search_url(const char *base_dn, const char *uid);

/* What the directory says of a recipient. */
typedef enum {
	IMS_MS_USER_OK,         /* deliver (quota permitting) */
	IMS_MS_USER_UNKNOWN,    /* 5.1.1 */
	IMS_MS_USER_DELETED,    /* 5.1.6 */
	IMS_MS_USER_INACTIVE,   /* 4.2.1 */
	IMS_MS_USER_HOLD,       /* 4.2.1: waits in the queue */
	IMS_MS_USER_TEMPFAIL,   /* 4.4.3: the directory did not answer */
	IMS_MS_USER_BAD_DATA,   /* 4.3.5: the entry's attributes do not parse */
} ImsMsUserState;

typedef struct {
	ImsMsUserState state;
	char *userid;           /* the store's user id */
	char *mail;             /* the entry's mail attribute, or NULL */
	char *partition;        /* mailMessageStore; NULL = the store's choice */
	gint64 quota_bytes;     /* as written: IMTA_DIR_QUOTA_DEFAULT / _UNLIMITED / bytes */
	gint64 quota_messages;
	gboolean status_overquota; /* mailUserStatus / inetUserStatus overquota */
	char *reason;           /* for the states other than OK: the diagnostic text */
} ImsMsUser;

/* Find the user an address names: in the default domain (NULL when it
 * cannot be told: then the uid must be unique in the directory) or the
 * address's hosted domain. */
void ims_ms_user_resolve(ImtaDirectory *dir, const ImsMsAddress *addr,
			 const char *default_domain, ImsMsUser *user_r);
void ims_ms_user_clear(ImsMsUser *user);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(ImsMsUser, ims_ms_user_clear)

/* The default domain: the closest directory domain of `hostname`
 * (mail.example.com -> example.com, or itself), or NULL. */
char *ims_ms_default_domain(ImtaDirectory *dir, const char *hostname);

G_END_DECLS

#endif
