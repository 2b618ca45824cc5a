/*
 * delivery.c - delivery options: turning a directory entry found for a
 * local address into the addresses mail for it really goes to: the hold
 * channel for a held user, the entry's mail host when that is another
 * system, else the templates of option.dat's DELIVERY_OPTIONS selected by
 * the entry's mailDeliveryOption values (imta-directory(5), ims_ms(8)).
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/directory.h>
#include "directory_private.h"

/* Bounds on what one expansion may produce. */
#define DELIVERY_MAX_ROWS 64
#define DELIVERY_MAX_ADDRESS 1024
#define DELIVERY_MAX_MEMBERS 10000
#define DELIVERY_MAX_LABELS 127
#define DELIVERY_MAX_HOST 255

/* Where mail of a held user goes when no row carries the '/' flag: the
 * hold channel, with the address as received after the route. */
#define DELIVERY_HOLD_TEMPLATE IMTA_DIR_HOLD_ROUTE "$A"

/* Row flags of DELIVERY_OPTIONS. */
enum {
	DELIVERY_USER_ONLY  = 1 << 0, /* '*' */
	DELIVERY_GROUP_ONLY = 1 << 1, /* '&' */
	DELIVERY_REPROCESS  = 1 << 2, /* '@' */
	DELIVERY_DEFER      = 1 << 3, /* '$' */
	DELIVERY_VACATION   = 1 << 4, /* '^' */
	DELIVERY_ANY_HOST   = 1 << 5, /* '#' */
	DELIVERY_HOLD       = 1 << 6, /* '/' */
	DELIVERY_BANG       = 1 << 7, /* '!' */
};

typedef struct {
	guint flags;
	char *name;       /* lower case */
	char *template;
} DeliveryRow;

typedef enum { CASE_ASIS, CASE_LOWER, CASE_UPPER } DeliveryCase;

/* What a template may refer to. */
typedef struct {
	const ImtaDirEntry *entry;
	const char *address;
	const char *hosted;      /* hosted domain, NULL in the default domain */
	char *local;             /* local part of address */
	const char *domain;      /* domain of address */
	const char *subaddress;  /* after the first '+' of the local part, or NULL */
} DeliveryContext;

static guint
delivery_flag(char c)
{
	switch (c) {
	case '*': return DELIVERY_USER_ONLY;
	case '&': return DELIVERY_GROUP_ONLY;
	case '@': return DELIVERY_REPROCESS;
	case '$': return DELIVERY_DEFER;
	case '^': return DELIVERY_VACATION;
	case '#': return DELIVERY_ANY_HOST;
	case '/': return DELIVERY_HOLD;
	case '!': return DELIVERY_BANG;
	default: return 0;
	}
}

static void
delivery_rows_free(GArray *rows)
{
	for (guint i = 0; i < rows->len; i++) {
		DeliveryRow *row = &g_array_index(rows, DeliveryRow, i);

		g_free(row->name);
		g_free(row->template);
	}
	g_array_free(rows, TRUE);
}

/* Check a template's substitutions, so that a bad row is refused whether
 * or not the entry at hand uses it. */
static gboolean
delivery_check_template(const char *name, const char *template, GError **error)
{
	if (strcmp(template, "*") == 0 || strcmp(template, "**") == 0)
		return TRUE;
	for (const char *p = template; *p != '\0'; p++) {
		const char *start = p;
		int n = -1;

		if (*p != '$')
			continue;
		p++;
		if (g_ascii_isdigit(*p))
			n = *p++ - '0';
		if (*p == '\0' || strchr("MISADLPFXO\\^_$", *p) == NULL ||
		    (n >= 0 && strchr("MISXO", *p) == NULL)) {
			g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA,
				    "DELIVERY_OPTIONS template of %s: unknown substitution "
				    "\"%.*s\" at offset %d of \"%s\"", name,
				    (int)(p - start) + (*p != '\0'), start,
				    (int)(start - template), template);
			return FALSE;
		}
	}
	return TRUE;
}

/* Parse "[flags]name=template, ..." into rows. */
static GArray *
delivery_parse_options(const char *options, GError **error)
{
	g_auto(GStrv) items = g_strsplit(options, ",", -1);
	GArray *rows = g_array_new(FALSE, TRUE, sizeof(DeliveryRow));

	for (guint i = 0; items[i] != NULL; i++) {
		char *item = g_strstrip(items[i]);
		const char *p = item;
		const char *eq;
		DeliveryRow row = { 0 };

		if (i >= DELIVERY_MAX_ROWS) {
			g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA,
				    "DELIVERY_OPTIONS: expected at most %d entries",
				    DELIVERY_MAX_ROWS);
			delivery_rows_free(rows);
			return NULL;
		}
		while (delivery_flag(*p) != 0)
			row.flags |= delivery_flag(*p++);
		eq = strchr(p, '=');
		if (eq != NULL) {
			row.name = g_strstrip(g_ascii_strdown(p, eq - p));
			row.template = g_strstrip(g_strdup(eq + 1));
		}
		if (eq == NULL || row.name[0] == '\0' || row.template[0] == '\0') {
			g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA,
				    "DELIVERY_OPTIONS entry %u: expected [flags]name=template, "
				    "got \"%s\"", i + 1, item);
			g_free(row.name);
			g_free(row.template);
			delivery_rows_free(rows);
			return NULL;
		}
		g_array_append_val(rows, row);
		if (!delivery_check_template(row.name, row.template, error)) {
			delivery_rows_free(rows);
			return NULL;
		}
	}
	return rows;
}

static const DeliveryRow *
delivery_find_row(GArray *rows, const char *name)
{
	for (guint i = 0; i < rows->len; i++) {
		const DeliveryRow *row = &g_array_index(rows, DeliveryRow, i);

		if (g_ascii_strcasecmp(row->name, name) == 0)
			return row;
	}
	return NULL;
}

static void
delivery_append(GString *out, const char *text, gssize len, DeliveryCase mode)
{
	gsize start = out->len;

	g_string_append_len(out, text, len);
	for (gsize i = start; i < out->len; i++) {
		if (mode == CASE_LOWER)
			out->str[i] = g_ascii_tolower(out->str[i]);
		else if (mode == CASE_UPPER)
			out->str[i] = g_ascii_toupper(out->str[i]);
	}
}

/* The value of a substitution letter, or NULL when it has none. */
static const char *
delivery_value(const DeliveryContext *ctx, char letter)
{
	switch (letter) {
	case 'M': return ctx->entry->uid;
	case 'I': return ctx->hosted;
	case 'S': return ctx->subaddress;
	case 'A': return ctx->address;
	case 'D': return ctx->domain;
	case 'L': return ctx->local;
	case 'P': return imta_dir_entry_attr(ctx->entry, "mailprogramdeliveryinfo");
	case 'F': return imta_dir_entry_attr(ctx->entry, "maildeliveryfileurl");
	case 'X': return ctx->entry->mail_host;
	case 'O': return NULL; /* no source route reaches the local channel */
	default: return NULL;
	}
}

/* Expand one template for `name`; NULL with an error when it cannot be. */
static char *
delivery_expand_template(const DeliveryContext *ctx, const char *name, const char *template,
			 GError **error)
{
	g_autoptr(GString) out = g_string_new(NULL);
	DeliveryCase mode = CASE_ASIS;
	const char *p = template;

	while (*p != '\0') {
		int n = -1;
		char letter;
		const char *value;

		if (*p != '$') {
			delivery_append(out, p++, 1, mode);
			continue;
		}
		p++;
		if (g_ascii_isdigit(*p))
			n = *p++ - '0';
		/* delivery_check_template() accepted the template. */
		letter = *p;
		p++;
		switch (letter) {
		case '\\': mode = CASE_LOWER; continue;
		case '^': mode = CASE_UPPER; continue;
		case '_': mode = CASE_ASIS; continue;
		case '$': delivery_append(out, "$", 1, mode); continue;
		default: break;
		}
		value = delivery_value(ctx, letter);
		if (value != NULL && value[0] == '\0')
			value = NULL;
		if (letter == 'M' && n > 0) {
			/* $nM: the n-th character of the uid (1-based). */
			if (value != NULL && strlen(value) >= (gsize)n)
				delivery_append(out, value + n - 1, 1, mode);
			continue;
		}
		if (value != NULL) {
			delivery_append(out, value, -1, mode);
			continue;
		}
		/* No value: n says what happens (0 or none: the option fails). */
		if (n == 1)
			continue;
		if (n == 2) {
			if (out->len > 0)
				g_string_truncate(out, out->len - 1);
			continue;
		}
		if (n == 3) {
			if (*p != '\0')
				p++;
			continue;
		}
		g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA,
			    "delivery option %s of %s: \"$%c\" has no value for %s", name,
			    ctx->entry->dn, letter, ctx->address);
		return NULL;
	}
	if (out->len == 0 || out->len > DELIVERY_MAX_ADDRESS) {
		g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA,
			    "delivery option %s of %s: expected an address of 1 to %d bytes, "
			    "got %" G_GSIZE_FORMAT, name, ctx->entry->dn, DELIVERY_MAX_ADDRESS,
			    out->len);
		return NULL;
	}
	return g_string_free(g_steal_pointer(&out), FALSE);
}

static void
delivery_add(GPtrArray *addresses, GHashTable *seen, const char *address)
{
	char *key = g_ascii_strdown(address, -1);

	if (g_hash_table_contains(seen, key)) {
		g_free(key);
		return;
	}
	g_hash_table_add(seen, key);
	g_ptr_array_add(addresses, g_strdup(address));
}

/* The default domain: the first domain the directory knows among the
 * local host name and its parents (mail.example.com -> example.com).  Its
 * users' mailboxes carry no domain; every other domain is hosted. */
static ImtaDirStatus
delivery_default_domain(ImtaDirectory *dir, char **domain_r, GError **error)
{
	const char *p = imta_directory_local_host(dir);

	*domain_r = NULL;
	for (guint i = 0; p != NULL && *p != '\0' && i < DELIVERY_MAX_LABELS; i++) {
		g_autoptr(ImtaDirDomain) domain = NULL;
		ImtaDirStatus status = imta_directory_lookup_domain(dir, p, &domain, error);

		if (status == IMTA_DIR_TEMPFAIL)
			return status;
		g_clear_error(error);
		if (status == IMTA_DIR_FOUND) {
			*domain_r = g_ascii_strdown(domain->canonical != NULL ? domain->canonical
									  : domain->name, -1);
			return IMTA_DIR_FOUND;
		}
		p = strchr(p, '.');
		if (p != NULL)
			p++;
	}
	return IMTA_DIR_NOT_FOUND;
}

/* Expand one row for the entry, adding to `addresses`. */
static ImtaDirStatus
delivery_apply_row(ImtaDirectory *dir, const DeliveryContext *ctx, const DeliveryRow *row,
		   GPtrArray *addresses, GHashTable *seen, GError **error)
{
	g_autofree char *address = NULL;

	if (strcmp(row->template, "*") == 0) {
		g_autoptr(GPtrArray) members = NULL;
		ImtaDirStatus status;

		if (ctx->entry->kind != IMTA_DIR_GROUP)
			return IMTA_DIR_FOUND;
		status = imta_directory_expand_group(dir, ctx->entry, DELIVERY_MAX_MEMBERS,
						     &members, error);
		if (status != IMTA_DIR_FOUND)
			return status;
		for (guint i = 0; i < members->len; i++)
			delivery_add(addresses, seen, g_ptr_array_index(members, i));
		return IMTA_DIR_FOUND;
	}
	if (strcmp(row->template, "**") == 0) {
		for (guint i = 0; ctx->entry->forwarding_addresses[i] != NULL; i++)
			delivery_add(addresses, seen, ctx->entry->forwarding_addresses[i]);
		return IMTA_DIR_FOUND;
	}
	address = delivery_expand_template(ctx, row->name, row->template, error);
	if (address == NULL)
		return IMTA_DIR_NOT_FOUND;
	delivery_add(addresses, seen, address);
	return IMTA_DIR_FOUND;
}

/* Does this row apply to this entry?  Rows for the vacation window ('^')
 * and '!' need state the local channel does not keep (the vacation
 * dates), so they are not applied here; '/' marks the hold row, whose
 * template also serves held users; '@' (reprocess), '$' (defer) and '#'
 * (any host) change where the expansion happens, not what it produces,
 * and are accepted as plain rows. */
static gboolean
delivery_row_applies(const DeliveryRow *row, const ImtaDirEntry *entry)
{
	if ((row->flags & DELIVERY_USER_ONLY) && entry->kind == IMTA_DIR_GROUP)
		return FALSE;
	if ((row->flags & DELIVERY_GROUP_ONLY) && entry->kind == IMTA_DIR_USER)
		return FALSE;
	return (row->flags & (DELIVERY_VACATION | DELIVERY_BANG)) == 0;
}

/* Can this row be expanded on a system other than the entry's mail
 * host?  '#' says so; a template naming the mail host ($X, $nX) routes
 * to it by itself (the LMTP relay's "@$X.LMTP:..." mailbox). */
static gboolean
delivery_row_any_host(const DeliveryRow *row)
{
	if (row->flags & DELIVERY_ANY_HOST)
		return TRUE;
	for (const char *p = row->template; *p != '\0'; p++) {
		if (*p != '$')
			continue;
		p++;
		if (g_ascii_isdigit(*p))
			p++;
		if (*p == 'X')
			return TRUE;
		if (*p == '\0')
			break;
	}
	return FALSE;
}

/* A mailHost or smart host value fit to write into a source route: a
 * domain name or an address literal, nothing that would change the
 * address's meaning (':', '@', ',', blanks). */
static gboolean
delivery_host_valid(const char *host)
{
	gsize len = strlen(host);
	const char *extra = "-._";

	if (len == 0 || len > DELIVERY_MAX_HOST || host[0] == '.' || host[0] == '-')
		return FALSE;
	if (host[0] == '[') {
		/* [192.0.2.1], [IPv6:2001:db8::1] */
		if (len < 3 || host[len - 1] != ']')
			return FALSE;
		host++;
		len -= 2;
		extra = ".:";
	}
	for (gsize i = 0; i < len; i++)
		if (!g_ascii_isalnum(host[i]) && strchr(extra, host[i]) == NULL)
			return FALSE;
	return TRUE;
}

/* Where the entry's mail is expanded: *route_host_r NULL for here, else
 * the system the address is routed to.  FOUND, NOT_FOUND (no host at
 * all, or a malformed one) or TEMPFAIL. */
static ImtaDirStatus
delivery_mail_host(ImtaDirectory *dir, const DeliveryContext *ctx, const char **route_host_r,
		   ImtaDirDomain **domain_r, GError **error)
{
	const ImtaDirEntry *entry = ctx->entry;
	const char *domain_name = entry->domain != NULL ? entry->domain : ctx->domain;
	const char *host = entry->mail_host;
	ImtaDirStatus status;

	*route_host_r = NULL;
	*domain_r = NULL;
	if (host == NULL && entry->kind == IMTA_DIR_GROUP)
		return IMTA_DIR_FOUND;
	if (host == NULL) {
		status = imta_directory_lookup_domain(dir, domain_name, domain_r, error);
		if (status == IMTA_DIR_TEMPFAIL)
			return status;
		g_clear_error(error);
		if (*domain_r != NULL)
			host = (*domain_r)->smart_host;
		if (host == NULL || host[0] == '\0') {
			g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_NO_HOST,
				    "%s has no mailHost and its domain %s has no "
				    "mailRoutingSmartHost", entry->dn, domain_name);
			return IMTA_DIR_NOT_FOUND;
		}
	}
	if (!delivery_host_valid(host)) {
		g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA,
			    "%s of %s: expected a host name, got \"%s\"",
			    entry->mail_host != NULL ? "mailHost" : "mailRoutingSmartHost",
			    entry->mail_host != NULL ? entry->dn : domain_name, host);
		return IMTA_DIR_NOT_FOUND;
	}
	if (!imta_directory_is_local_host(dir, host))
		*route_host_r = host;
	return IMTA_DIR_FOUND;
}

static ImtaDirStatus
delivery_context_init(ImtaDirectory *dir, const ImtaDirEntry *entry, const char *address,
		      DeliveryContext *ctx, char **default_domain_r, GError **error)
{
	const char *at = strrchr(address, '@');
	const char *plus;

	memset(ctx, 0, sizeof(*ctx));
	ctx->entry = entry;
	ctx->address = address;
	if (at == NULL || at == address || at[1] == '\0') {
		g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA,
			    "expected an address of the form local@domain, got \"%s\"", address);
		return IMTA_DIR_NOT_FOUND;
	}
	ctx->local = g_strndup(address, at - address);
	ctx->domain = at + 1;
	plus = strchr(ctx->local, '+');
	if (plus != NULL && plus[1] != '\0')
		ctx->subaddress = plus + 1;
	*default_domain_r = NULL;
	if (entry->domain != NULL) {
		ImtaDirStatus status = delivery_default_domain(dir, default_domain_r, error);

		if (status == IMTA_DIR_TEMPFAIL)
			return status;
		if (*default_domain_r == NULL ||
		    g_ascii_strcasecmp(entry->domain, *default_domain_r) != 0)
			ctx->hosted = entry->domain;
	}
	return IMTA_DIR_FOUND;
}

ImtaDirStatus
imta_directory_lookup_local(ImtaDirectory *dir, const char *address, ImtaDirEntry **entry_r,
			    GError **error)
{
	ImtaDirStatus status = imta_directory_lookup_address(dir, address, entry_r, error);
	const char *plus = strchr(address, '+');
	const char *at = strrchr(address, '@');
	g_autofree char *base = NULL;

	if (status != IMTA_DIR_NOT_FOUND || plus == NULL || at == NULL || plus > at ||
	    plus == address)
		return status;
	g_clear_error(error);
	base = g_strdup_printf("%.*s%s", (int)(plus - address), address, at);
	return imta_directory_lookup_address(dir, base, entry_r, error);
}

/* The rows the entry's options select, in the order of its options. */
static GPtrArray *
delivery_choose_rows(GArray *rows, const ImtaDirEntry *entry, const char *const *options)
{
	GPtrArray *chosen = g_ptr_array_new();

	for (guint i = 0; options[i] != NULL; i++) {
		const DeliveryRow *row = delivery_find_row(rows, options[i]);

		/* An option DELIVERY_OPTIONS does not define delivers nowhere,
		 * as one that does not apply to this kind of entry. */
		if (row != NULL && delivery_row_applies(row, entry))
			g_ptr_array_add(chosen, (gpointer)row);
	}
	return chosen;
}

/* The row that holds a user's mail: the first flagged '/'. */
static const DeliveryRow *
delivery_hold_row(GArray *rows)
{
	for (guint i = 0; i < rows->len; i++) {
		const DeliveryRow *row = &g_array_index(rows, DeliveryRow, i);

		if (row->flags & DELIVERY_HOLD)
			return row;
	}
	return NULL;
}

/* Stages 2 and 3 for an entry that is not held: the mail host, then the
 * options. */
static ImtaDirStatus
delivery_expand(ImtaDirectory *dir, const DeliveryContext *ctx, GArray *rows,
		const char *const *options, GPtrArray *addresses, GHashTable *seen,
		GError **error)
{
	g_autoptr(GPtrArray) chosen = delivery_choose_rows(rows, ctx->entry, options);
	g_autoptr(ImtaDirDomain) domain = NULL;
	const char *route_host = NULL;
	gboolean here = TRUE;
	ImtaDirStatus status = IMTA_DIR_FOUND;

	if (chosen->len == 0) {
		g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA,
			    "no delivery option of %s applies (mailDeliveryOption: %s)",
			    ctx->entry->dn, options[0]);
		return IMTA_DIR_NOT_FOUND;
	}
	for (guint i = 0; here && i < chosen->len; i++)
		here = delivery_row_any_host(g_ptr_array_index(chosen, i));
	if (!here) {
		status = delivery_mail_host(dir, ctx, &route_host, &domain, error);
		if (status != IMTA_DIR_FOUND)
			return status;
	}
	if (route_host != NULL) {
		g_autofree char *routed = g_strdup_printf("@%s:%s", route_host, ctx->address);

		delivery_add(addresses, seen, routed);
		return IMTA_DIR_FOUND;
	}
	for (guint i = 0; status == IMTA_DIR_FOUND && i < chosen->len; i++)
		status = delivery_apply_row(dir, ctx, g_ptr_array_index(chosen, i), addresses,
					    seen, error);
	return status;
}

ImtaDirStatus
imta_directory_delivery_addresses(ImtaDirectory *dir, const char *delivery_options,
				  const ImtaDirEntry *entry, const char *address,
				  GPtrArray **addresses_r, GError **error)
{
	static const char *const user_default[] = { "mailbox", NULL };
	static const char *const group_default[] = { "members", NULL };
	static const DeliveryRow hold_default = {
		DELIVERY_HOLD, (char *)"hold", (char *)DELIVERY_HOLD_TEMPLATE,
	};
	GArray *rows;
	g_autoptr(GPtrArray) addresses = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autofree char *default_domain = NULL;
	DeliveryContext ctx;
	const char *const *options = (const char *const *)entry->delivery_options;
	ImtaDirStatus status;

	*addresses_r = NULL;
	rows = delivery_parse_options(delivery_options, error);
	if (rows == NULL)
		return IMTA_DIR_NOT_FOUND;
	status = delivery_context_init(dir, entry, address, &ctx, &default_domain, error);
	if (options[0] == NULL)
		options = entry->kind == IMTA_DIR_GROUP ? group_default : user_default;
	if (status == IMTA_DIR_FOUND && entry->status == IMTA_DIR_STATUS_HOLD) {
		/* A held user's status overrides every delivery option. */
		const DeliveryRow *row = delivery_hold_row(rows);

		status = delivery_apply_row(dir, &ctx, row != NULL ? row : &hold_default,
					    addresses, seen, error);
	} else if (status == IMTA_DIR_FOUND) {
		status = delivery_expand(dir, &ctx, rows, options, addresses, seen, error);
	}
	g_free(ctx.local);
	delivery_rows_free(rows);
	if (status != IMTA_DIR_FOUND)
		return status;
	if (addresses->len == 0 && entry->status == IMTA_DIR_STATUS_HOLD) {
		g_set_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA,
			    "the hold row of DELIVERY_OPTIONS gives no address for %s", entry->dn);
		return IMTA_DIR_NOT_FOUND;
	}
	*addresses_r = g_steal_pointer(&addresses);
	return IMTA_DIR_FOUND;
}
