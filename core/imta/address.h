/*
 * address.h - RFC 5321 / RFC 5322 address parsing.
 *
 * Parses mailbox addresses as they appear in SMTP commands (the inside of
 * MAIL FROM:<...> / RCPT TO:<...>) and as addr-specs in headers:
 *   - dot-atom or quoted-string local parts (quoted-pair escapes kept);
 *   - domains: dot-atom host names, IPv4 literals [1.2.3.4], IPv6 literals
 *     [IPv6:...], and general literals [tag:text];
 *   - RFC 5321 source routes "@a,@b:user@c", kept as a list of hosts;
 *   - the MTA's legacy forms the rewrite engine needs: "user%host" and
 *     "host!user" inside the local part are kept verbatim here (the rewrite
 *     engine extracts host specs from them);
 *   - the null reverse path "<>" (an empty address) when allowed;
 *   - limits of RFC 5321 4.5.3.1: local part 64 octets, domain 255,
 *     path 256 (with angle brackets), label 63.
 * 8-bit bytes in the local part are each replaced by an asterisk, as the
 * MTA does for 7-bit-only fields (the original is kept in `raw`), unless
 * the caller passes IMTA_ADDRESS_UTF8 (SMTPUTF8 sessions).
 */
#ifndef IMTA_ADDRESS_H
#define IMTA_ADDRESS_H

#include <glib.h>
#include <imta/error.h>

G_BEGIN_DECLS

#define IMTA_ADDRESS_MAX_LOCAL  64
#define IMTA_ADDRESS_MAX_DOMAIN 255
#define IMTA_ADDRESS_MAX_PATH   256
#define IMTA_ADDRESS_MAX_LABEL  63

typedef enum {
	IMTA_ADDRESS_ALLOW_EMPTY   = 1 << 0, /* accept "" / "<>" (null reverse path) */
	IMTA_ADDRESS_ANGLE         = 1 << 1, /* input is "<...>" and must be bracketed */
	IMTA_ADDRESS_NO_DOMAIN_OK  = 1 << 2, /* accept a bare local part ("postmaster") */
	IMTA_ADDRESS_UTF8          = 1 << 3, /* keep 8-bit UTF-8 as is (SMTPUTF8) */
	IMTA_ADDRESS_NO_LIMITS     = 1 << 4, /* skip the RFC 5321 length limits */
} ImtaAddressFlags;

typedef enum {
	IMTA_DOMAIN_NONE,      /* no domain (bare local part or empty address) */
	IMTA_DOMAIN_NAME,      /* a host / domain name */
	IMTA_DOMAIN_IPV4,      /* [1.2.3.4] */
	IMTA_DOMAIN_IPV6,      /* [IPv6:...] */
	IMTA_DOMAIN_GENERAL,   /* [tag:text] */
} ImtaDomainKind;

typedef struct {
	char *raw;             /* the input, as given (without angle brackets) */
	char *local;           /* local part; quoted form kept ("\"a b\""), 8-bit as '*' */
	char *domain;          /* domain as written: name, or literal with brackets; NULL if none */
	ImtaDomainKind domain_kind;
	GStrv route;           /* source-route hosts, left to right; empty vector if none */
	gboolean empty;        /* the null path <> */
	gboolean had_8bit;     /* the local part held 8-bit bytes (replaced by '*') */
} ImtaAddress;

/* Parse `text` (length bytes, may contain NUL which is an error).
 * Returns NULL with IMTA_ADDRESS_ERROR_SYNTAX or _TOO_LONG; the message says
 * what was expected at which offset ("expected '>' at offset 12"). */
ImtaAddress *imta_address_parse(const char *text, gssize length, ImtaAddressFlags flags,
				GError **error);

/* "local@domain" (or "local", or "" for the null path); source routes are
 * rendered as "@a,@b:local@domain".  Caller frees. */
char *imta_address_format(const ImtaAddress *address);

/* Compare two domains case-insensitively (literals compared literally). */
gboolean imta_domain_equal(const char *a, const char *b);

/* TRUE when `local` needs quoting to be a valid local part. */
gboolean imta_local_part_needs_quoting(const char *local);

/* Quote/unquote a local part ("a b" <-> "\"a b\""); caller frees. */
char *imta_local_part_quote(const char *local);
char *imta_local_part_unquote(const char *quoted);

void imta_address_free(ImtaAddress *address);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaAddress, imta_address_free)

G_END_DECLS

#endif
