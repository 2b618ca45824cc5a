/*
 * store_delivery.h - delivering mail into the message store, as the
 * ims-ms channel's master program and the LMTP server both do: the
 * recipient forms, the directory entry behind a recipient, the quota
 * policy, single-copy storing and quota warnings.  One implementation, so
 * that a message gets the same treatment whichever way it reaches the
 * store (ims_ms(8), lmtp(8)).
 *
 * Recipient forms (local part; the host part names the channel and is
 * not looked at):
 *   uid                 a user of the default domain; user id "uid"
 *   uid%domain          a user of hosted domain `domain`; user id "uid@domain"
 *   ...+folder          either of the above with a folder ("alice+Archive",
 *                       "joe%example.org+Lists/glib"); the folder may also
 *                       come before the domain ("joe+Lists%example.org")
 * A uid is 1 to 255 bytes of letters, digits and . _ - = ! $ & ' ^ ` { | } ~;
 * a domain is a host name (letters, digits, '-', '.' between labels), kept
 * in lower case; a folder is 1 to 255 bytes without control characters,
 * '%' or '@', and an empty folder or "INBOX" (any case) means INBOX.
 *
 * Quota policy (imta_store_quota_check), before a delivery: with
 * enforcement off, or on a channel marked `exquota`, the message goes in.
 * Otherwise the user is over quota when the directory status says so
 * (with store.overquotastatus on) or when usage plus this message passes
 * either limit.  Over quota:
 *   - a message larger than the byte limit by itself fails at once (5.2.3);
 *   - `noexquota`: fails at once (5.2.2);
 *   - `holdexquota`: a temporary failure (4.2.2) until the sender gives up;
 *   - otherwise: a temporary failure (4.2.2) while the user has been over
 *     quota for less than the grace period (counted from the first
 *     refused delivery, recorded as over_since), then fails (5.2.2).
 * A user under quota has over_since cleared.  After a delivery
 * (imta_store_quota_after): usage at or above quotawarn percent of either
 * limit, and no warning since usage was last under it: send one and
 * record warned_at; usage back under the threshold clears warned_at.
 *
 * Diagnostics start with the enhanced status code ("5.1.1 unknown user
 * alice"), so a master reports them as they are and a server answers
 * with them.
 */
#ifndef IMTA_STORE_DELIVERY_H
#define IMTA_STORE_DELIVERY_H

#include <glib.h>
#include <imta/channel.h>
#include <imta/config.h>
#include <imta/directory.h>
#include <imta/job.h>
#include <imta/store.h>

G_BEGIN_DECLS

typedef struct _ImtaQueue ImtaQueue;            /* queue.h */

#define IMTA_STORE_DELIVERY_ERROR (imta_store_delivery_error_quark())
GQuark imta_store_delivery_error_quark(void);

typedef enum {
	IMTA_STORE_DELIVERY_ERROR_ADDRESS,   /* a recipient that is none of the forms */
	IMTA_STORE_DELIVERY_ERROR_QUOTA,     /* a quota value that does not parse */
} ImtaStoreDeliveryError;

/* ---- recipients --------------------------------------------------------- */

typedef struct {
	char *uid;
	char *domain;   /* lower case; NULL: the default domain */
	char *folder;   /* NULL: INBOX */
} ImtaStoreAddress;

/* Parse a recipient ("alice+Archive@ims-ms-daemon").  Errors are
 * IMTA_STORE_DELIVERY_ERROR_ADDRESS, saying what was expected. */
gboolean imta_store_address_parse(const char *address, ImtaStoreAddress *addr_r,
				  GError **error);
void imta_store_address_clear(ImtaStoreAddress *addr);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(ImtaStoreAddress, imta_store_address_clear)

/* The store's user id: "uid", or "uid@domain" when the domain is given
 * and is not `default_domain` (compared without case; may be NULL). */
char *imta_store_address_userid(const ImtaStoreAddress *addr, const char *default_domain);

/* The LDAP URL that finds the mail user with this uid under `base_dn`
 * ("" = the whole directory), values escaped for the filter and the URL. */
char *imta_store_user_search_url(const char *base_dn, const char *uid);

/* What the directory says of a recipient. */
typedef enum {
	IMTA_STORE_USER_OK,         /* deliver (quota permitting) */
	IMTA_STORE_USER_UNKNOWN,    /* 5.1.1 */
	IMTA_STORE_USER_DELETED,    /* 5.1.6 */
	IMTA_STORE_USER_INACTIVE,   /* 4.2.1 */
	IMTA_STORE_USER_HOLD,       /* 4.2.1: waits in the queue */
	IMTA_STORE_USER_TEMPFAIL,   /* 4.4.3: the directory did not answer */
	IMTA_STORE_USER_BAD_DATA,   /* 4.3.5: the entry's attributes do not parse */
} ImtaStoreUserState;

typedef struct {
	ImtaStoreUserState state;
	char *userid;           /* the store's user id */
	char *mail;             /* the entry's mail attribute, or NULL */
	char *partition;        /* mailMessageStore; NULL = the store's choice */
	gint64 quota_bytes;     /* as written: IMTA_DIR_QUOTA_DEFAULT / _UNLIMITED / bytes */
	gint64 quota_messages;
	gboolean status_overquota; /* mailUserStatus / inetUserStatus overquota */
	char *reason;           /* for the states other than OK: the diagnostic text */
} ImtaStoreUser;

/* Find the user an address names: in the default domain (NULL when it
 * cannot be told: then the uid must be unique in the directory) or the
 * address's hosted domain. */
void imta_store_user_resolve(ImtaDirectory *dir, const ImtaStoreAddress *addr,
			     const char *default_domain, ImtaStoreUser *user_r);
void imta_store_user_clear(ImtaStoreUser *user);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(ImtaStoreUser, imta_store_user_clear)

/* The default domain: the closest directory domain of `hostname`
 * (mail.example.com -> example.com, or itself), or NULL. */
char *imta_store_default_domain(ImtaDirectory *dir, const char *hostname);

/* ---- quota policy ------------------------------------------------------- */

/* A mailQuota (`size`: bytes with an optional K, M or G suffix) or
 * mailMsgQuota value: -1 unlimited, -2 the configured default
 * (IMTA_DIR_QUOTA_*), 0 no space at all.  Errors are
 * IMTA_STORE_DELIVERY_ERROR_QUOTA ("expected ..., got \"x\""). */
gboolean imta_store_quota_parse(const char *text, gboolean size, gint64 *value_r,
				GError **error);

/* A directory value with the default applied: -2 gives `store_default`;
 * anything negative is then unlimited (-1). */
gint64 imta_store_quota_effective(gint64 value, gint64 store_default);

typedef struct {
	gboolean enforce;         /* store.quotaenforcement */
	ImtaExquota exquota;      /* the channel's exquota / holdexquota / noexquota */
	gint64 limit_bytes;       /* -1: none */
	gint64 limit_messages;    /* -1: none */
	gint64 grace;             /* seconds */
	gint warn_percent;        /* 0: no warnings */
	gboolean status_overquota; /* directory overquota status, with store.overquotastatus */
} ImtaStoreQuotaPolicy;

typedef enum {
	IMTA_STORE_QUOTA_DELIVER,
	IMTA_STORE_QUOTA_RETRY,
	IMTA_STORE_QUOTA_FAIL,
} ImtaStoreQuotaAction;

typedef struct {
	ImtaStoreQuotaAction action;
	const char *status;       /* "2.0.0", "4.2.2", "5.2.2", "5.2.3" */
	gint64 over_since;        /* the value to record */
	char *diagnostic;         /* "4.2.2 mailbox full: ..." (NULL for DELIVER) */
} ImtaStoreQuotaDecision;

/* Decide for one message of `size` bytes at time `now`. */
void imta_store_quota_check(const ImtaStoreQuotaPolicy *policy, const ImtaStoreUsage *usage,
			    gint64 size, gint64 now, ImtaStoreQuotaDecision *decision_r);
void imta_store_quota_decision_clear(ImtaStoreQuotaDecision *decision);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(ImtaStoreQuotaDecision, imta_store_quota_decision_clear)

/* After a delivery with usage `usage` (including the new message):
 * whether to send a warning now; *warned_at_r and *over_since_r get the
 * state to record. */
gboolean imta_store_quota_after(const ImtaStoreQuotaPolicy *policy, const ImtaStoreUsage *usage,
				gint64 now, gint64 *warned_at_r, gint64 *over_since_r);

/* The highest percentage of a limit used (0 without limits), for the
 * warning's text. */
gint imta_store_quota_percent(const ImtaStoreQuotaPolicy *policy, const ImtaStoreUsage *usage);

/* The warning's body text: usage, limits, percent. */
char *imta_store_quota_warning_text(const ImtaStoreQuotaPolicy *policy,
				    const ImtaStoreUsage *usage, const char *userid);

/* ---- delivering --------------------------------------------------------- */

/* What a delivery needs: store.cnf of the configuration directory and
 * the store it names, the directory of the configuration, the default
 * domain, and the channel whose exquota keywords apply.  Not for
 * concurrent use: one per master job or server session. */
typedef struct _ImtaStoreDelivery ImtaStoreDelivery;

/* Open store.cnf and the store now.  Never NULL: when the store cannot
 * be opened, imta_store_delivery_failure() says why ("4.3.0 ...", logged
 * once) and every recipient gets that temporary failure until
 * imta_store_delivery_refresh() opens it. */
ImtaStoreDelivery *imta_store_delivery_new(const ImtaConfig *config, const ImtaChannel *channel);
void imta_store_delivery_free(ImtaStoreDelivery *delivery);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaStoreDelivery, imta_store_delivery_free)

/* Open store.cnf and the store again when the file changed since it was
 * read (a new grace period, a new partition) or the store was
 * unavailable; cheap otherwise (one stat). */
void imta_store_delivery_refresh(ImtaStoreDelivery *delivery);
/* Why there is no store ("4.3.x ..."), or NULL. */
const char *imta_store_delivery_failure(const ImtaStoreDelivery *delivery);
/* The store, or NULL when it is unavailable. */
ImtaStore *imta_store_delivery_store(const ImtaStoreDelivery *delivery);
/* Quota warnings are queued through `queue` (not owned, must outlive the
 * context); without one the context opens its own on the first warning. */
void imta_store_delivery_set_queue(ImtaStoreDelivery *delivery, ImtaQueue *queue);

/* One recipient of a delivery. */
typedef struct {
	ImtaStoreUser user;
	char *folder;                /* NULL: INBOX */
	ImtaStoreQuotaPolicy policy; /* set by imta_store_delivery_check */
	ImtaOutcome outcome;         /* NONE while it may still be stored */
	char *diagnostic;            /* with outcome: "5.1.1 unknown user alice" */
	guint32 uid;                 /* DELIVERED: the message's UID in the folder */
	guint target;                /* private */
} ImtaStoreRecipient;

void imta_store_recipient_clear(ImtaStoreRecipient *rcpt);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(ImtaStoreRecipient, imta_store_recipient_clear)

/* Parse `address` and find its user.  TRUE: found (outcome NONE).
 * FALSE: outcome FAILED (5.1.3 not a recipient form, 5.1.1 unknown,
 * 5.1.6 deleted) or RETRY (4.2.1 inactive or on hold, 4.4.3 directory
 * unavailable, 4.3.5 unusable entry, 4.3.x no store), with diagnostic.
 * Blocks on the directory. */
gboolean imta_store_delivery_resolve(ImtaStoreDelivery *delivery, const char *address,
				     ImtaStoreRecipient *rcpt_r);

/* The checks before storing `size` bytes for a resolved recipient: its
 * partition exists, its usage can be read, the quota policy lets the
 * message in (recording when the user went over quota).  TRUE: it may be
 * stored; FALSE with outcome and diagnostic (4.2.2, 5.2.2, 5.2.3, 4.3.x).
 * May be called again with the final size. */
gboolean imta_store_delivery_check(ImtaStoreDelivery *delivery, ImtaStoreRecipient *rcpt,
				   gint64 size);

/* Store `content` (`length` bytes, LF line ends) for every recipient
 * whose outcome is NONE: once per partition (a mailbox and folder named
 * twice gets one copy), then set each one's outcome: DELIVERED ("2.0.0
 * delivered to the message store: USER FOLDER, UID n"), RETRY or FAILED
 * with the store's reason.  Durable when it returns.  Then records the
 * delivered users' quota state and queues a warning to each that reached
 * the threshold. */
void imta_store_delivery_deliver(ImtaStoreDelivery *delivery, const char *content,
				 gsize length, ImtaStoreRecipient *const *rcpts, guint n);

G_END_DECLS

#endif /* IMTA_STORE_DELIVERY_H */
