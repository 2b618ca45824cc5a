/*
 * address.c - mailbox parser for SMTP paths (RFC 5321 4.1.2) and header
 * addr-specs (RFC 5322 3.4.1): dot-atom and quoted local parts, host names,
 * address literals, source routes, the null path, and the length limits of
 * RFC 5321 4.5.3.1.  One left-to-right pass over the input, no recursion, so
 * the work is linear in the input length whatever the bytes are.
 */
#include "config.h"

#include <string.h>
#include <arpa/inet.h>

#include <glib.h>

#include <imta/address.h>

typedef struct {
	const char *text;
	gsize len;
	gsize pos;
	ImtaAddressFlags flags;
	GError **error;
} AddressParser;

static gboolean G_GNUC_PRINTF(3, 4)
address_fail(AddressParser *p, ImtaAddressErrorCode code, const char *fmt, ...)
{
	va_list args;
	g_autofree char *message = NULL;

	va_start(args, fmt);
	message = g_strdup_vprintf(fmt, args);
	va_end(args);
	g_set_error_literal(p->error, IMTA_ADDRESS_ERROR, code, message);
	return FALSE;
}

/* A name for the byte the user will recognise in an error message. */
static char *
address_describe_byte(guchar c)
{
	switch (c) {
	case '\0':
		return g_strdup("NUL");
	case '\t':
		return g_strdup("tab");
	case '\n':
		return g_strdup("LF");
	case '\r':
		return g_strdup("CR");
	case ' ':
		return g_strdup("space");
	default:
		break;
	}
	if (c >= 0x80)
		return g_strdup_printf("8-bit byte 0x%02x", c);
	if (c < 0x20 || c == 0x7f)
		return g_strdup_printf("control character 0x%02x", c);
	return g_strdup_printf("'%c'", c);
}

static gboolean
address_fail_unexpected(AddressParser *p, const char *where)
{
	g_autofree char *what = address_describe_byte((guchar) p->text[p->pos]);

	return address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX, "unexpected %s in %s at offset %zu",
			    what, where, p->pos);
}

static gboolean
address_at_end(const AddressParser *p)
{
	return p->pos >= p->len;
}

static guchar
address_peek(const AddressParser *p)
{
	return address_at_end(p) ? '\0' : (guchar) p->text[p->pos];
}

static gboolean
address_is_atext(guchar c)
{
	return g_ascii_isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* RFC 5321 Let-dig / Ldh-str, plus '_' which real host names carry. */
static gboolean
address_is_label_char(guchar c)
{
	return g_ascii_isalnum(c) || c == '-' || c == '_';
}

/* RFC 5321 dcontent: printable ASCII except '[', '\' and ']'. */
static gboolean
address_is_dcontent(guchar c)
{
	return (c >= 33 && c <= 90) || (c >= 94 && c <= 126);
}

/* Length of the well-formed UTF-8 sequence at the current position (whose
 * first byte is >= 0x80), or 0 if it is not one. */
static gsize
address_utf8_length(const AddressParser *p)
{
	guchar c = (guchar) p->text[p->pos];
	gsize n;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (n > p->len - p->pos)
		return 0;
	return g_utf8_validate_len(p->text + p->pos, n, NULL) ? n : 0;
}

/* An 8-bit byte in the local part: kept as UTF-8 in SMTPUTF8 mode, otherwise
 * replaced by '*' as the MTA does for 7-bit-only fields. */
static gboolean
address_take_8bit(AddressParser *p, GString *out, gboolean *had_8bit, const char *where)
{
	gsize n;

	if (!(p->flags & IMTA_ADDRESS_UTF8)) {
		g_string_append_c(out, '*');
		*had_8bit = TRUE;
		p->pos++;
		return TRUE;
	}
	n = address_utf8_length(p);
	if (n == 0)
		return address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX,
				    "invalid UTF-8 in %s at offset %zu", where, p->pos);
	g_string_append_len(out, p->text + p->pos, n);
	p->pos += n;
	return TRUE;
}

/* Where a local part may end: '@', the closing '>' or the end of input. */
static gboolean
address_at_local_end(const AddressParser *p)
{
	return address_at_end(p) || address_peek(p) == '@' || address_peek(p) == '>';
}

static gboolean
address_empty_atom(AddressParser *p, gsize start, gsize atom)
{
	if (atom == start) {
		if (address_peek(p) == '.' && !address_at_end(p))
			return address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX,
					    "local part begins with '.' at offset %zu", p->pos);
		if (address_at_local_end(p))
			return address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX,
					    "expected a local part at offset %zu", p->pos);
		return address_fail_unexpected(p, "local part");
	}
	if (address_peek(p) == '.' && !address_at_end(p))
		return address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX,
				    "consecutive dots in local part at offset %zu", p->pos);
	if (address_at_local_end(p))
		return address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX,
				    "local part ends with '.' at offset %zu", atom - 1);
	return address_fail_unexpected(p, "local part");
}

static gboolean
address_parse_dot_atom(AddressParser *p, GString *local, gboolean *had_8bit)
{
	gsize start = p->pos;

	for (;;) {
		gsize atom = p->pos;

		while (!address_at_end(p)) {
			guchar c = address_peek(p);

			if (c >= 0x80) {
				if (!address_take_8bit(p, local, had_8bit, "local part"))
					return FALSE;
			} else if (address_is_atext(c)) {
				g_string_append_c(local, c);
				p->pos++;
			} else {
				break;
			}
		}
		if (p->pos == atom)
			return address_empty_atom(p, start, atom);
		if (address_at_end(p) || address_peek(p) != '.')
			return TRUE;
		g_string_append_c(local, '.');
		p->pos++;
	}
}

/* A quoted string, kept with its quotes and quoted-pairs.  A quoted-pair may
 * escape any byte but NUL, CR and LF, which could end an SMTP command line. */
static gboolean
address_parse_quoted(AddressParser *p, GString *local, gboolean *had_8bit)
{
	g_string_append_c(local, '"');
	p->pos++;
	while (!address_at_end(p)) {
		guchar c = address_peek(p);

		if (c == '"') {
			g_string_append_c(local, '"');
			p->pos++;
			return TRUE;
		}
		if (c == '\\') {
			g_string_append_c(local, '\\');
			p->pos++;
			if (address_at_end(p))
				return address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX,
						    "expected a character after '\\' at offset %zu",
						    p->pos);
			c = address_peek(p);
			if (c == '\0' || c == '\r' || c == '\n')
				return address_fail_unexpected(p, "quoted string");
		} else if ((c < 0x20 && c != '\t') || c == 0x7f) {
			return address_fail_unexpected(p, "quoted string");
		}
		if (c >= 0x80) {
			if (!address_take_8bit(p, local, had_8bit, "quoted string"))
				return FALSE;
			continue;
		}
		g_string_append_c(local, c);
		p->pos++;
	}
	return address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX,
			    "unterminated quoted string: expected '\"' at offset %zu", p->pos);
}

static gboolean
address_parse_local(AddressParser *p, GString *local, gboolean *had_8bit)
{
	if (address_peek(p) == '"' && !address_at_end(p))
		return address_parse_quoted(p, local, had_8bit);
	return address_parse_dot_atom(p, local, had_8bit);
}

/* Characters that legitimately follow a domain: the end, '>' of a path, and
 * ',' or ':' of a source route. */
static gboolean
address_at_domain_end(const AddressParser *p)
{
	guchar c = address_peek(p);

	return address_at_end(p) || c == '>' || c == ',' || c == ':';
}

/* One label of a host name; the caller has made sure it is not empty. */
static gboolean
address_check_label(AddressParser *p, gsize label)
{
	if (p->text[label] == '-')
		return address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX,
				    "label begins with '-' in domain at offset %zu", label);
	if (p->text[p->pos - 1] == '-')
		return address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX,
				    "label ends with '-' in domain at offset %zu", p->pos - 1);
	if (!(p->flags & IMTA_ADDRESS_NO_LIMITS) && p->pos - label > IMTA_ADDRESS_MAX_LABEL)
		return address_fail(p, IMTA_ADDRESS_ERROR_TOO_LONG,
				    "label longer than %d octets in domain at offset %zu",
				    IMTA_ADDRESS_MAX_LABEL, label);
	return TRUE;
}

static gboolean
address_scan_label(AddressParser *p, GString *name)
{
	while (!address_at_end(p)) {
		guchar c = address_peek(p);
		gsize n;

		if (address_is_label_char(c)) {
			g_string_append_c(name, c);
			p->pos++;
			continue;
		}
		if (c < 0x80)
			return TRUE;
		if (!(p->flags & IMTA_ADDRESS_UTF8))
			return address_fail_unexpected(p, "domain");
		n = address_utf8_length(p);
		if (n == 0)
			return address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX,
					    "invalid UTF-8 in domain at offset %zu", p->pos);
		g_string_append_len(name, p->text + p->pos, n);
		p->pos += n;
	}
	return TRUE;
}

static gboolean
address_parse_name(AddressParser *p, GString *name)
{
	gsize start = p->pos;

	for (;;) {
		gsize label = p->pos;

		if (!address_scan_label(p, name))
			return FALSE;
		if (p->pos == label) {
			if (!address_at_end(p) && address_peek(p) == '.')
				return address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX,
						    "empty label in domain at offset %zu", p->pos);
			if (label != start) {
				/* one trailing dot: the root, dropped */
				g_string_truncate(name, name->len - 1);
				return TRUE;
			}
			if (address_at_domain_end(p))
				return address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX,
						    "expected a domain at offset %zu", p->pos);
			return address_fail_unexpected(p, "domain");
		}
		if (!address_check_label(p, label))
			return FALSE;
		if (address_at_end(p) || address_peek(p) != '.')
			return TRUE;
		g_string_append_c(name, '.');
		p->pos++;
	}
}

/* RFC 5321 IPv4-address-literal: four Snum (1-3 digits, 0..255). */
static gboolean
address_valid_ipv4(const char *s, gsize n)
{
	gsize i = 0;

	for (guint part = 0; part < 4; part++) {
		guint value = 0, digits = 0;

		if (part > 0) {
			if (i >= n || s[i] != '.')
				return FALSE;
			i++;
		}
		while (i < n && g_ascii_isdigit(s[i]) && digits < 3) {
			value = value * 10 + (guint) (s[i] - '0');
			i++;
			digits++;
		}
		if (digits == 0 || value > 255)
			return FALSE;
	}
	return i == n;
}

/* RFC 5321 Standardized-tag (Ldh-str): letters, digits, hyphens, and not
 * ending with a hyphen. */
static gboolean
address_valid_tag(const char *s, gsize n)
{
	if (n == 0 || s[n - 1] == '-')
		return FALSE;
	for (gsize i = 0; i < n; i++) {
		if (!g_ascii_isalnum(s[i]) && s[i] != '-')
			return FALSE;
	}
	return TRUE;
}

static gboolean
address_classify_literal(AddressParser *p, gsize body, gsize n, ImtaDomainKind *kind)
{
	const char *s = p->text + body;
	const char *colon = memchr(s, ':', n);
	gsize tag_len, rest;

	if (colon == NULL) {
		gboolean numeric = n > 0;

		for (gsize i = 0; i < n && numeric; i++)
			numeric = g_ascii_isdigit(s[i]) || s[i] == '.';

		if (numeric && address_valid_ipv4(s, n)) {
			*kind = IMTA_DOMAIN_IPV4;
			return TRUE;
		}
		if (numeric)
			return address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX,
					    "invalid IPv4 address in address literal at offset %zu",
					    body);
		return address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX,
				    "expected an IPv4 address or a tag followed by ':' "
				    "in address literal at offset %zu", body);
	}
	tag_len = (gsize) (colon - s);
	rest = n - tag_len - 1;
	if (tag_len == 4 && g_ascii_strncasecmp(s, "IPv6", 4) == 0) {
		g_autofree char *addr = g_strndup(colon + 1, rest);
		struct in6_addr in6;

		if (inet_pton(AF_INET6, addr, &in6) != 1)
			return address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX,
					    "invalid IPv6 address in address literal at offset %zu",
					    body + tag_len + 1);
		*kind = IMTA_DOMAIN_IPV6;
		return TRUE;
	}
	if (!address_valid_tag(s, tag_len))
		return address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX,
				    "invalid tag in address literal at offset %zu", body);
	if (rest == 0)
		return address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX,
				    "expected text after ':' in address literal at offset %zu",
				    body + tag_len + 1);
	*kind = IMTA_DOMAIN_GENERAL;
	return TRUE;
}

static gboolean
address_parse_literal(AddressParser *p, GString *literal, ImtaDomainKind *kind)
{
	gsize start = p->pos;
	gsize body = ++p->pos;

	while (!address_at_end(p) && address_is_dcontent(address_peek(p)))
		p->pos++;
	if (address_at_end(p))
		return address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX, "expected ']' at offset %zu",
				    p->pos);
	if (address_peek(p) != ']')
		return address_fail_unexpected(p, "address literal");
	if (!address_classify_literal(p, body, p->pos - body, kind))
		return FALSE;
	p->pos++;
	g_string_append_len(literal, p->text + start, p->pos - start);
	return TRUE;
}

/* A host name or address literal; `domain` receives it as written, without a
 * trailing dot. */
static gboolean
address_parse_domain(AddressParser *p, char **domain, ImtaDomainKind *kind)
{
	gsize start = p->pos;
	g_autoptr(GString) out = g_string_new(NULL);

	if (!address_at_end(p) && address_peek(p) == '[') {
		if (!address_parse_literal(p, out, kind))
			return FALSE;
	} else {
		if (!address_parse_name(p, out))
			return FALSE;
		*kind = IMTA_DOMAIN_NAME;
	}
	if (!(p->flags & IMTA_ADDRESS_NO_LIMITS) && out->len > IMTA_ADDRESS_MAX_DOMAIN)
		return address_fail(p, IMTA_ADDRESS_ERROR_TOO_LONG,
				    "domain longer than %d octets at offset %zu",
				    IMTA_ADDRESS_MAX_DOMAIN, start);
	*domain = g_string_free(g_steal_pointer(&out), FALSE);
	return TRUE;
}

/* RFC 5321 A-d-l: "@a,@b:" before the mailbox; the caller is at the '@'. */
static gboolean
address_parse_route(AddressParser *p, GPtrArray *route)
{
	for (;;) {
		char *host = NULL;
		ImtaDomainKind kind;

		if (address_at_end(p) || address_peek(p) != '@')
			return address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX,
					    "expected '@' at offset %zu", p->pos);
		p->pos++;
		if (!address_parse_domain(p, &host, &kind))
			return FALSE;
		g_ptr_array_add(route, host);
		if (!address_at_end(p) && address_peek(p) == ',') {
			p->pos++;
			continue;
		}
		if (!address_at_end(p) && address_peek(p) == ':') {
			p->pos++;
			return TRUE;
		}
		if (address_at_end(p) || address_peek(p) == '>')
			return address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX,
					    "expected ',' or ':' at offset %zu", p->pos);
		return address_fail_unexpected(p, "domain");
	}
}

static ImtaAddress *
address_new_empty(void)
{
	ImtaAddress *address = g_new0(ImtaAddress, 1);

	address->raw = g_strdup("");
	address->local = g_strdup("");
	address->domain_kind = IMTA_DOMAIN_NONE;
	address->route = g_new0(char *, 1);
	address->empty = TRUE;
	return address;
}

/* The null path: "" bare or "<>".  Returns TRUE when the input is one, with
 * *result set (NULL on error). */
static gboolean
address_parse_null(AddressParser *p, gboolean bracketed, ImtaAddress **result)
{
	*result = NULL;
	if (bracketed ? p->len < 2 || p->text[1] != '>' : p->len != 0)
		return FALSE;
	if (bracketed && p->len > 2) {
		p->pos = 2;
		address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX,
			     "unexpected text after '>' at offset %zu", p->pos);
		return TRUE;
	}
	if (!(p->flags & IMTA_ADDRESS_ALLOW_EMPTY)) {
		address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX,
			     "expected an address at offset %zu (the null path is not allowed here)",
			     p->pos);
		return TRUE;
	}
	*result = address_new_empty();
	return TRUE;
}

/* After the local part: '@' and a domain, or nothing when a bare local part
 * is acceptable. */
static gboolean
address_parse_after_local(AddressParser *p, gboolean bracketed, gboolean quoted,
			  gboolean routed, char **domain, ImtaDomainKind *kind)
{
	gboolean at_close = !address_at_end(p) && bracketed && address_peek(p) == '>';

	*domain = NULL;
	*kind = IMTA_DOMAIN_NONE;
	if (!address_at_end(p) && address_peek(p) == '@') {
		p->pos++;
		return address_parse_domain(p, domain, kind);
	}
	if (!address_at_end(p) && !at_close) {
		if (quoted)
			return address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX,
					    "expected '@' at offset %zu", p->pos);
		return address_fail_unexpected(p, "local part");
	}
	if (!(p->flags & IMTA_ADDRESS_NO_DOMAIN_OK) || routed)
		return address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX, "expected '@' at offset %zu",
				    p->pos);
	return TRUE;
}

static gboolean
address_parse_close(AddressParser *p, gboolean bracketed, gboolean has_domain)
{
	const char *where = has_domain ? "domain" : "local part";

	if (!bracketed) {
		if (!address_at_end(p))
			return address_fail_unexpected(p, where);
		return TRUE;
	}
	if (address_at_end(p))
		return address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX, "expected '>' at offset %zu",
				    p->pos);
	if (address_peek(p) != '>')
		return address_fail_unexpected(p, where);
	p->pos++;
	if (!address_at_end(p))
		return address_fail(p, IMTA_ADDRESS_ERROR_SYNTAX,
				    "unexpected text after '>' at offset %zu", p->pos);
	return TRUE;
}

ImtaAddress *
imta_address_parse(const char *text, gssize length, ImtaAddressFlags flags, GError **error)
{
	AddressParser p = { text, 0, 0, flags, error };
	g_autoptr(GPtrArray) route = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GString) local = g_string_new(NULL);
	g_autofree char *domain = NULL;
	ImtaDomainKind kind = IMTA_DOMAIN_NONE;
	ImtaAddress *address = NULL;
	gboolean bracketed, quoted, had_8bit = FALSE;
	gsize content, content_len, local_start;

	g_return_val_if_fail(text != NULL || length == 0, NULL);
	if (text == NULL)
		text = p.text = "";
	p.len = length < 0 ? strlen(text) : (gsize) length;

	bracketed = p.len > 0 && text[0] == '<';
	if (!bracketed && (flags & IMTA_ADDRESS_ANGLE)) {
		address_fail(&p, IMTA_ADDRESS_ERROR_SYNTAX, "expected '<' at offset 0");
		return NULL;
	}
	content = p.pos = bracketed ? 1 : 0;
	if (address_parse_null(&p, bracketed, &address))
		return address;

	if (!address_at_end(&p) && address_peek(&p) == '@' && !address_parse_route(&p, route))
		return NULL;
	local_start = p.pos;
	quoted = !address_at_end(&p) && address_peek(&p) == '"';
	if (!address_parse_local(&p, local, &had_8bit))
		return NULL;
	if (!(flags & IMTA_ADDRESS_NO_LIMITS) && local->len > IMTA_ADDRESS_MAX_LOCAL) {
		address_fail(&p, IMTA_ADDRESS_ERROR_TOO_LONG,
			     "local part longer than %d octets at offset %zu",
			     IMTA_ADDRESS_MAX_LOCAL, local_start);
		return NULL;
	}
	if (!address_parse_after_local(&p, bracketed, quoted, route->len > 0, &domain, &kind))
		return NULL;
	content_len = p.pos - content;
	if (!address_parse_close(&p, bracketed, domain != NULL))
		return NULL;
	/* RFC 5321 counts the path with its angle brackets, given or not */
	if (!(flags & IMTA_ADDRESS_NO_LIMITS) && content_len + 2 > IMTA_ADDRESS_MAX_PATH) {
		address_fail(&p, IMTA_ADDRESS_ERROR_TOO_LONG, "path longer than %d octets",
			     IMTA_ADDRESS_MAX_PATH);
		return NULL;
	}

	g_ptr_array_add(route, NULL);
	address = g_new0(ImtaAddress, 1);
	address->raw = g_strndup(text + content, content_len);
	address->local = g_string_free(g_steal_pointer(&local), FALSE);
	address->domain = g_steal_pointer(&domain);
	address->domain_kind = kind;
	address->route = (GStrv) g_ptr_array_free(g_steal_pointer(&route), FALSE);
	address->empty = FALSE;
	address->had_8bit = had_8bit;
	return address;
}

char *
imta_address_format(const ImtaAddress *address)
{
	GString *out;

	g_return_val_if_fail(address != NULL, NULL);
	if (address->empty)
		return g_strdup("");
	out = g_string_new(NULL);
	for (gsize i = 0; address->route != NULL && address->route[i] != NULL; i++)
		g_string_append_printf(out, "%s@%s", i > 0 ? "," : "", address->route[i]);
	if (out->len > 0)
		g_string_append_c(out, ':');
	g_string_append(out, address->local);
	if (address->domain != NULL)
		g_string_append_printf(out, "@%s", address->domain);
	return g_string_free(out, FALSE);
}

/* Literals compare byte for byte, except that the "IPv6:" tag is
 * case-insensitive (RFC 5321 4.1.3 spells it either way in practice). */
static gboolean
address_literal_equal(const char *a, const char *b)
{
	static const char tag[] = "[IPv6:";
	gsize n = sizeof(tag) - 1;

	if (g_ascii_strncasecmp(a, tag, n) == 0 && g_ascii_strncasecmp(b, tag, n) == 0)
		return strcmp(a + n, b + n) == 0;
	return strcmp(a, b) == 0;
}

gboolean
imta_domain_equal(const char *a, const char *b)
{
	gsize la, lb;

	if (a == NULL || b == NULL)
		return a == b;
	if (a[0] == '[' || b[0] == '[')
		return address_literal_equal(a, b);
	la = strlen(a);
	lb = strlen(b);
	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && g_ascii_strncasecmp(a, b, la) == 0;
}

/* 8-bit bytes count as atext: quoting would not make them any more 7-bit,
 * and RFC 6532 admits UTF-8 in atoms. */
gboolean
imta_local_part_needs_quoting(const char *local)
{
	gboolean atom_empty = TRUE;

	g_return_val_if_fail(local != NULL, FALSE);
	for (const char *s = local; *s != '\0'; s++) {
		guchar c = (guchar) *s;

		if (c == '.') {
			if (atom_empty)
				return TRUE;
			atom_empty = TRUE;
		} else if (c < 0x80 && !address_is_atext(c)) {
			return TRUE;
		} else {
			atom_empty = FALSE;
		}
	}
	return atom_empty;
}

/* Quotes only when needed, so a plain local part stays as it is.  '"', '\'
 * and control characters other than tab are escaped. */
char *
imta_local_part_quote(const char *local)
{
	GString *out;

	g_return_val_if_fail(local != NULL, NULL);
	if (!imta_local_part_needs_quoting(local))
		return g_strdup(local);
	out = g_string_sized_new(strlen(local) + 2);
	g_string_append_c(out, '"');
	for (const char *s = local; *s != '\0'; s++) {
		guchar c = (guchar) *s;

		if (c == '"' || c == '\\' || (c < 0x20 && c != '\t') || c == 0x7f)
			g_string_append_c(out, '\\');
		g_string_append_c(out, c);
	}
	g_string_append_c(out, '"');
	return g_string_free(out, FALSE);
}

/* TRUE when `s` (n bytes) is exactly one quoted string. */
static gboolean
address_is_quoted_string(const char *s, gsize n)
{
	if (n < 2 || s[0] != '"')
		return FALSE;
	for (gsize i = 1; i < n; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '"')
			return i == n - 1;
	}
	return FALSE;
}

/* Anything that is not one well-formed quoted string is returned as is. */
char *
imta_local_part_unquote(const char *quoted)
{
	gsize n;
	GString *out;

	g_return_val_if_fail(quoted != NULL, NULL);
	n = strlen(quoted);
	if (!address_is_quoted_string(quoted, n))
		return g_strdup(quoted);
	out = g_string_sized_new(n);
	for (gsize i = 1; i < n - 1; i++) {
		if (quoted[i] == '\\')
			i++;
		g_string_append_c(out, quoted[i]);
	}
	return g_string_free(out, FALSE);
}

void
imta_address_free(ImtaAddress *address)
{
	if (address == NULL)
		return;
	g_free(address->raw);
	g_free(address->local);
	g_free(address->domain);
	g_strfreev(address->route);
	g_free(address);
}
