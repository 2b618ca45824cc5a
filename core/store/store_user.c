/*
 * store_user.c - the recipients of a message store delivery (ims-ms
 * channel, LMTP server): parsing the address forms, and finding the mail
 * user behind one in the directory (status, partition, quotas).
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/directory.h>
#include <imta/store_delivery.h>

#define STORE_USER_MAX_UID 255
#define STORE_USER_MAX_DOMAIN 253
#define STORE_USER_MAX_FOLDER 255
/* Labels of a host name tried for the default domain. */
#define STORE_USER_MAX_LABELS 127

G_DEFINE_QUARK(imta-store-delivery-error-quark, imta_store_delivery_error)

/* ---- address forms ---------------------------------------------------- */

static gboolean
address_uid_char(char c)
{
	return g_ascii_isalnum(c) || (c != '\0' && strchr("._-=!$&'^`{|}~", c) != NULL);
}

static gboolean
address_check_uid(const char *uid, gsize len, GError **error)
{
	if (len == 0) {
		g_set_error(error, IMTA_STORE_DELIVERY_ERROR, IMTA_STORE_DELIVERY_ERROR_ADDRESS,
			    "expected a user id before the '%%', '+' or '@', got nothing");
		return FALSE;
	}
	if (len > STORE_USER_MAX_UID) {
		g_set_error(error, IMTA_STORE_DELIVERY_ERROR, IMTA_STORE_DELIVERY_ERROR_ADDRESS,
			    "expected a user id of at most %d bytes, got %" G_GSIZE_FORMAT,
			    STORE_USER_MAX_UID, len);
		return FALSE;
	}
	for (gsize i = 0; i < len; i++) {
		if (!address_uid_char(uid[i])) {
			g_set_error(error, IMTA_STORE_DELIVERY_ERROR,
				    IMTA_STORE_DELIVERY_ERROR_ADDRESS,
				    "expected letters, digits or . _ - = ! $ & ' ^ ` { | } ~ in "
				    "the user id, got byte 0x%02x at offset %" G_GSIZE_FORMAT,
				    (guchar)uid[i], i);
			return FALSE;
		}
	}
	return TRUE;
}

static gboolean
address_check_domain(const char *domain, gsize len, GError **error)
{
	gsize label = 0;

	if (len == 0 || len > STORE_USER_MAX_DOMAIN) {
		g_set_error(error, IMTA_STORE_DELIVERY_ERROR, IMTA_STORE_DELIVERY_ERROR_ADDRESS,
			    "expected a domain of 1 to %d bytes after the '%%', got %"
			    G_GSIZE_FORMAT, STORE_USER_MAX_DOMAIN, len);
		return FALSE;
	}
	for (gsize i = 0; i < len; i++) {
		char c = domain[i];

		if (c == '.') {
			if (label == 0 || i == len - 1)
				goto empty_label;
			label = 0;
			continue;
		}
		if (!g_ascii_isalnum(c) && c != '-') {
			g_set_error(error, IMTA_STORE_DELIVERY_ERROR,
				    IMTA_STORE_DELIVERY_ERROR_ADDRESS,
				    "expected letters, digits, '-' or '.' in the domain, got byte "
				    "0x%02x at offset %" G_GSIZE_FORMAT, (guchar)c, i);
			return FALSE;
		}
		label++;
	}
	return TRUE;
empty_label:
	g_set_error(error, IMTA_STORE_DELIVERY_ERROR, IMTA_STORE_DELIVERY_ERROR_ADDRESS,
		    "expected a domain without empty labels, got \"%.*s\"", (int)len, domain);
	return FALSE;
}

static gboolean
address_check_folder(const char *folder, gsize len, GError **error)
{
	if (len > STORE_USER_MAX_FOLDER) {
		g_set_error(error, IMTA_STORE_DELIVERY_ERROR, IMTA_STORE_DELIVERY_ERROR_ADDRESS,
			    "expected a folder of at most %d bytes, got %" G_GSIZE_FORMAT,
			    STORE_USER_MAX_FOLDER, len);
		return FALSE;
	}
	for (gsize i = 0; i < len; i++) {
		guchar c = (guchar)folder[i];

		if (c < 0x20 || c == 0x7f) {
			g_set_error(error, IMTA_STORE_DELIVERY_ERROR,
				    IMTA_STORE_DELIVERY_ERROR_ADDRESS,
				    "expected a folder without control characters, got byte "
				    "0x%02x at offset %" G_GSIZE_FORMAT, c, i);
			return FALSE;
		}
	}
	return TRUE;
}

gboolean
imta_store_address_parse(const char *address, ImtaStoreAddress *addr_r, GError **error)
{
	const char *at, *plus, *percent, *end, *uid_end, *folder = NULL, *domain = NULL;
	gsize folder_len = 0, domain_len = 0;

	memset(addr_r, 0, sizeof *addr_r);
	at = address != NULL ? strrchr(address, '@') : NULL;
	if (at == NULL) {
		g_set_error(error, IMTA_STORE_DELIVERY_ERROR, IMTA_STORE_DELIVERY_ERROR_ADDRESS,
			    "expected uid[%%domain][+folder]@host, got \"%s\"",
			    address != NULL ? address : "");
		return FALSE;
	}
	end = at;
	if (memchr(address, '"', (gsize)(end - address)) != NULL) {
		g_set_error(error, IMTA_STORE_DELIVERY_ERROR, IMTA_STORE_DELIVERY_ERROR_ADDRESS,
			    "expected an unquoted local part, got \"%s\"", address);
		return FALSE;
	}
	plus = memchr(address, '+', (gsize)(end - address));
	percent = memchr(address, '%', (gsize)(end - address));
	if (percent != NULL && memchr(percent + 1, '%', (gsize)(end - percent - 1)) != NULL) {
		g_set_error(error, IMTA_STORE_DELIVERY_ERROR, IMTA_STORE_DELIVERY_ERROR_ADDRESS,
			    "expected at most one '%%' (uid%%domain), got \"%s\"", address);
		return FALSE;
	}
	uid_end = end;
	if (plus != NULL && plus < uid_end)
		uid_end = plus;
	if (percent != NULL && percent < uid_end)
		uid_end = percent;
	if (percent != NULL) {
		domain = percent + 1;
		/* uid%domain+folder, or uid+folder%domain. */
		domain_len = (gsize)((plus != NULL && plus > percent ? plus : end) - domain);
	}
	if (plus != NULL) {
		folder = plus + 1;
		folder_len = (gsize)((percent != NULL && percent > plus ? percent : end) - folder);
	}
	if (!address_check_uid(address, (gsize)(uid_end - address), error))
		return FALSE;
	if (domain != NULL && !address_check_domain(domain, domain_len, error))
		return FALSE;
	if (folder != NULL && !address_check_folder(folder, folder_len, error))
		return FALSE;
	addr_r->uid = g_strndup(address, (gsize)(uid_end - address));
	if (domain != NULL)
		addr_r->domain = g_ascii_strdown(domain, (gssize)domain_len);
	if (folder != NULL && folder_len > 0 &&
	    !(folder_len == 5 && g_ascii_strncasecmp(folder, "INBOX", 5) == 0))
		addr_r->folder = g_strndup(folder, folder_len);
	return TRUE;
}

void
imta_store_address_clear(ImtaStoreAddress *addr)
{
	g_clear_pointer(&addr->uid, g_free);
	g_clear_pointer(&addr->domain, g_free);
	g_clear_pointer(&addr->folder, g_free);
}

char *
imta_store_address_userid(const ImtaStoreAddress *addr, const char *default_domain)
{
	if (addr->domain == NULL ||
	    (default_domain != NULL && g_ascii_strcasecmp(addr->domain, default_domain) == 0))
		return g_strdup(addr->uid);
	return g_strconcat(addr->uid, "@", addr->domain, NULL);
}

/* ---- the directory ------------------------------------------------------ */

/* RFC 4515 assertion value escaping. */
static char *
user_filter_escape(const char *value)
{
	GString *out = g_string_new(NULL);

	for (const char *p = value; *p != '\0'; p++) {
		if (strchr("*()\\", *p) != NULL)
			g_string_append_printf(out, "\\%02x", (guchar)*p);
		else
			g_string_append_c(out, *p);
	}
	return g_string_free(out, FALSE);
}

char *
imta_store_user_search_url(const char *base_dn, const char *uid)
{
	g_autofree char *value = user_filter_escape(uid);
	g_autofree char *base = g_uri_escape_string(base_dn != NULL ? base_dn : "", ",=", FALSE);
	g_autofree char *quoted = g_uri_escape_string(value, NULL, FALSE);

	return g_strdup_printf("ldap:///%s??sub?(&(objectClass=inetMailUser)(uid=%s))", base,
			       quoted);
}

static void
user_set(ImtaStoreUser *user, ImtaStoreUserState state, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static void
user_set(ImtaStoreUser *user, ImtaStoreUserState state, const char *fmt, ...)
{
	va_list args;

	user->state = state;
	g_free(user->reason);
	va_start(args, fmt);
	user->reason = g_strdup_vprintf(fmt, args);
	va_end(args);
}

/* One entry out of several: leave out deleted ones, as address lookups do. */
static ImtaDirEntry *
user_pick(GPtrArray *entries, guint *live_r)
{
	ImtaDirEntry *found = NULL;

	*live_r = 0;
	for (guint i = 0; i < entries->len; i++) {
		ImtaDirEntry *entry = g_ptr_array_index(entries, i);

		if (entry->kind != IMTA_DIR_USER || entry->status == IMTA_DIR_STATUS_DELETED)
			continue;
		(*live_r)++;
		found = entry;
	}
	if (*live_r == 0 && entries->len > 0)
		return g_ptr_array_index(entries, 0);
	return *live_r == 1 ? found : NULL;
}

/* The domain part: its base DN, its status, its canonical name. */
static gboolean
user_domain(ImtaDirectory *dir, const char *name, gboolean required, ImtaStoreUser *user,
	    char **base_r, char **canonical_r)
{
	g_autoptr(ImtaDirDomain) domain = NULL;
	g_autoptr(GError) error = NULL;

	switch (imta_directory_lookup_domain(dir, name, &domain, &error)) {
	case IMTA_DIR_FOUND:
		break;
	case IMTA_DIR_TEMPFAIL:
		user_set(user, IMTA_STORE_USER_TEMPFAIL, "4.4.3 directory unavailable: %s",
			 error != NULL ? error->message : "no answer");
		return FALSE;
	case IMTA_DIR_NOT_FOUND:
	default:
		if (!required) {
			*base_r = g_strdup("");
			return TRUE;
		}
		user_set(user, IMTA_STORE_USER_UNKNOWN,
			 "5.1.1 no hosted domain %s in the directory", name);
		return FALSE;
	}
	switch (domain->status) {
	case IMTA_DIR_STATUS_DELETED:
	case IMTA_DIR_STATUS_DISABLED:
		user_set(user, IMTA_STORE_USER_DELETED, "5.1.6 domain %s is deleted", name);
		return FALSE;
	case IMTA_DIR_STATUS_INACTIVE:
		user_set(user, IMTA_STORE_USER_INACTIVE,
			 "4.2.1 domain %s is inactive; try again later", name);
		return FALSE;
	case IMTA_DIR_STATUS_HOLD:
		user_set(user, IMTA_STORE_USER_HOLD, "4.2.1 domain %s is on hold", name);
		return FALSE;
	default:
		break;
	}
	*base_r = g_strdup(domain->base_dn != NULL ? domain->base_dn : "");
	if (canonical_r != NULL)
		*canonical_r = g_strdup(domain->canonical != NULL ? domain->canonical : name);
	return TRUE;
}

static gboolean
user_quotas(const ImtaDirEntry *entry, ImtaStoreUser *user)
{
	const char *bytes = imta_dir_entry_attr(entry, "mailquota");
	const char *messages = imta_dir_entry_attr(entry, "mailmsgquota");
	g_autoptr(GError) error = NULL;

	user->quota_bytes = IMTA_DIR_QUOTA_DEFAULT;
	user->quota_messages = IMTA_DIR_QUOTA_DEFAULT;
	if (bytes != NULL && !imta_store_quota_parse(bytes, TRUE, &user->quota_bytes, &error)) {
		user_set(user, IMTA_STORE_USER_BAD_DATA, "4.3.5 mailQuota of %s: %s", entry->dn,
			 error->message);
		return FALSE;
	}
	if (messages != NULL &&
	    !imta_store_quota_parse(messages, FALSE, &user->quota_messages, &error)) {
		user_set(user, IMTA_STORE_USER_BAD_DATA, "4.3.5 mailMsgQuota of %s: %s", entry->dn,
			 error->message);
		return FALSE;
	}
	return TRUE;
}

static void
user_from_entry(const ImtaDirEntry *entry, ImtaStoreUser *user)
{
	switch (entry->status) {
	case IMTA_DIR_STATUS_INACTIVE:
		user_set(user, IMTA_STORE_USER_INACTIVE,
			 "4.2.1 mailbox %s is inactive; try again later", user->userid);
		return;
	case IMTA_DIR_STATUS_DELETED:
	case IMTA_DIR_STATUS_DISABLED:
		user_set(user, IMTA_STORE_USER_DELETED, "5.1.6 mailbox %s is deleted",
			 user->userid);
		return;
	case IMTA_DIR_STATUS_HOLD:
		user_set(user, IMTA_STORE_USER_HOLD,
			 "4.2.1 mailbox %s is on hold; mail waits in the queue", user->userid);
		return;
	case IMTA_DIR_STATUS_OVERQUOTA:
		user->status_overquota = TRUE;
		break;
	default:
		break;
	}
	if (!user_quotas(entry, user))
		return;
	user->mail = g_strdup(entry->mail);
	user->partition = g_strdup(entry->message_store);
	user->state = IMTA_STORE_USER_OK;
}

void
imta_store_user_resolve(ImtaDirectory *dir, const ImtaStoreAddress *addr,
			const char *default_domain, ImtaStoreUser *user_r)
{
	g_autofree char *base = NULL;
	g_autofree char *canonical = NULL;
	g_autofree char *url = NULL;
	g_autoptr(GPtrArray) entries = NULL;
	g_autoptr(GError) error = NULL;
	gboolean hosted = addr->domain != NULL &&
		(default_domain == NULL || g_ascii_strcasecmp(addr->domain, default_domain) != 0);
	ImtaDirEntry *entry;
	guint live;

	memset(user_r, 0, sizeof *user_r);
	user_r->quota_bytes = user_r->quota_messages = IMTA_DIR_QUOTA_DEFAULT;
	if (dir == NULL) {
		user_set(user_r, IMTA_STORE_USER_TEMPFAIL,
			 "4.4.3 directory unavailable: the directory could not be opened");
		return;
	}
	if (hosted) {
		if (!user_domain(dir, addr->domain, TRUE, user_r, &base, &canonical))
			return;
		user_r->userid = g_strconcat(addr->uid, "@", canonical, NULL);
	} else {
		if (default_domain != NULL &&
		    !user_domain(dir, default_domain, FALSE, user_r, &base, NULL))
			return;
		user_r->userid = g_strdup(addr->uid);
	}
	url = imta_store_user_search_url(base != NULL ? base : "", addr->uid);
	switch (imta_directory_search_url(dir, url, &entries, &error)) {
	case IMTA_DIR_FOUND:
		break;
	case IMTA_DIR_TEMPFAIL:
		user_set(user_r, IMTA_STORE_USER_TEMPFAIL, "4.4.3 directory unavailable: %s",
			 error != NULL ? error->message : "no answer");
		return;
	case IMTA_DIR_NOT_FOUND:
	default:
		user_set(user_r, IMTA_STORE_USER_UNKNOWN, "5.1.1 unknown user %s%s%s",
			 user_r->userid, error != NULL ? ": " : "",
			 error != NULL ? error->message : "");
		return;
	}
	entry = user_pick(entries, &live);
	if (entry == NULL) {
		/* As for addresses: the mail waits until the data is fixed. */
		user_set(user_r, IMTA_STORE_USER_TEMPFAIL,
			 "4.4.3 directory: %u entries have uid %s; the user id must be unique",
			 live, addr->uid);
		return;
	}
	user_from_entry(entry, user_r);
}

void
imta_store_user_clear(ImtaStoreUser *user)
{
	g_clear_pointer(&user->userid, g_free);
	g_clear_pointer(&user->mail, g_free);
	g_clear_pointer(&user->partition, g_free);
	g_clear_pointer(&user->reason, g_free);
}

char *
imta_store_default_domain(ImtaDirectory *dir, const char *hostname)
{
	const char *p = hostname;

	if (dir == NULL || hostname == NULL)
		return NULL;
	for (guint i = 0; p != NULL && *p != '\0' && i < STORE_USER_MAX_LABELS; i++) {
		g_autoptr(ImtaDirDomain) domain = NULL;
		g_autoptr(GError) error = NULL;

		if (imta_directory_lookup_domain(dir, p, &domain, &error) == IMTA_DIR_FOUND)
			return g_ascii_strdown(domain->canonical != NULL ? domain->canonical
							     : domain->name, -1);
		p = strchr(p, '.');
		if (p != NULL)
			p++;
	}
	return NULL;
}
