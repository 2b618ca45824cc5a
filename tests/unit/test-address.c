/*
 * test-address.c - RFC 5321/5322 mailbox parsing: valid forms, every error
 * with its message and offset, the length limits at their boundaries, 8-bit
 * local parts, formatting round trips, domain comparison and quoting.
 */
#include "config.h"

#include <string.h>

#include <glib.h>
#include <imta/address.h>

#define ANGLE   IMTA_ADDRESS_ANGLE
#define EMPTY   IMTA_ADDRESS_ALLOW_EMPTY
#define NODOM   IMTA_ADDRESS_NO_DOMAIN_OK
#define UTF8    IMTA_ADDRESS_UTF8
#define NOLIMIT IMTA_ADDRESS_NO_LIMITS

typedef struct {
	const char *input;
	ImtaAddressFlags flags;
	const char *raw;
	const char *local;
	const char *domain;     /* NULL: none */
	ImtaDomainKind kind;
	const char *route;      /* hosts joined with ',' */
	gboolean empty;
	gboolean had_8bit;
	const char *formatted;
} ValidRow;

typedef struct {
	const char *input;
	gssize length;          /* -1: NUL-terminated */
	ImtaAddressFlags flags;
	ImtaAddressErrorCode code;
	const char *message;
} ErrorRow;

#define NAME    IMTA_DOMAIN_NAME
#define IPV4    IMTA_DOMAIN_IPV4
#define IPV6    IMTA_DOMAIN_IPV6
#define GENERAL IMTA_DOMAIN_GENERAL
#define NONE    IMTA_DOMAIN_NONE

static const ValidRow valid_rows[] = {
	/* plain addresses, bare and bracketed */
	{ "user@example.com", 0, "user@example.com", "user", "example.com", NAME, "",
	  FALSE, FALSE, "user@example.com" },
	{ "<user@example.com>", 0, "user@example.com", "user", "example.com", NAME, "",
	  FALSE, FALSE, "user@example.com" },
	{ "<user@example.com>", ANGLE, "user@example.com", "user", "example.com", NAME, "",
	  FALSE, FALSE, "user@example.com" },
	{ "First.Last@Example.COM", 0, "First.Last@Example.COM", "First.Last", "Example.COM",
	  NAME, "", FALSE, FALSE, "First.Last@Example.COM" },
	{ "a!#$%&'*+-/=?^_`{|}~z@x.example", 0, "a!#$%&'*+-/=?^_`{|}~z@x.example",
	  "a!#$%&'*+-/=?^_`{|}~z", "x.example", NAME, "", FALSE, FALSE,
	  "a!#$%&'*+-/=?^_`{|}~z@x.example" },
	{ "user+tag@example.com", 0, "user+tag@example.com", "user+tag", "example.com", NAME,
	  "", FALSE, FALSE, "user+tag@example.com" },
	/* quoted local parts, kept quoted */
	{ "\"john doe\"@example.com", 0, "\"john doe\"@example.com", "\"john doe\"",
	  "example.com", NAME, "", FALSE, FALSE, "\"john doe\"@example.com" },
	{ "\"a\\\"b\\\\c\"@example.com", 0, "\"a\\\"b\\\\c\"@example.com", "\"a\\\"b\\\\c\"",
	  "example.com", NAME, "", FALSE, FALSE, "\"a\\\"b\\\\c\"@example.com" },
	{ "\"\"@example.com", 0, "\"\"@example.com", "\"\"", "example.com", NAME, "",
	  FALSE, FALSE, "\"\"@example.com" },
	{ "\"a@b\"@example.com", 0, "\"a@b\"@example.com", "\"a@b\"", "example.com", NAME,
	  "", FALSE, FALSE, "\"a@b\"@example.com" },
	{ "\"tab\there\"@x.example", 0, "\"tab\there\"@x.example", "\"tab\there\"",
	  "x.example", NAME, "", FALSE, FALSE, "\"tab\there\"@x.example" },
	{ "<\"a>b\"@x.example>", ANGLE, "\"a>b\"@x.example", "\"a>b\"", "x.example", NAME, "",
	  FALSE, FALSE, "\"a>b\"@x.example" },
	{ "\"a\\\x01z\"@x.example", 0, "\"a\\\x01z\"@x.example", "\"a\\\x01z\"", "x.example",
	  NAME, "", FALSE, FALSE, "\"a\\\x01z\"@x.example" },
	/* legacy % and ! forms are kept verbatim in the local part */
	{ "user%host.siroe.com@gateway.siroe.com", 0, "user%host.siroe.com@gateway.siroe.com",
	  "user%host.siroe.com", "gateway.siroe.com", NAME, "", FALSE, FALSE,
	  "user%host.siroe.com@gateway.siroe.com" },
	{ "host!user@gateway.siroe.com", 0, "host!user@gateway.siroe.com", "host!user",
	  "gateway.siroe.com", NAME, "", FALSE, FALSE, "host!user@gateway.siroe.com" },
	{ "a!u%b", NODOM, "a!u%b", "a!u%b", NULL, NONE, "", FALSE, FALSE, "a!u%b" },
	/* bare local parts */
	{ "postmaster", NODOM, "postmaster", "postmaster", NULL, NONE, "", FALSE, FALSE,
	  "postmaster" },
	{ "<Postmaster>", NODOM | ANGLE, "Postmaster", "Postmaster", NULL, NONE, "",
	  FALSE, FALSE, "Postmaster" },
	{ "\"a b\"", NODOM, "\"a b\"", "\"a b\"", NULL, NONE, "", FALSE, FALSE, "\"a b\"" },
	{ "user@example.com", NODOM, "user@example.com", "user", "example.com", NAME, "",
	  FALSE, FALSE, "user@example.com" },
	/* source routes */
	{ "<@relay.example:user@example.com>", 0, "@relay.example:user@example.com", "user",
	  "example.com", NAME, "relay.example", FALSE, FALSE,
	  "@relay.example:user@example.com" },
	{ "@a.example,@b.example,@c.example:user@d.example", 0,
	  "@a.example,@b.example,@c.example:user@d.example", "user", "d.example", NAME,
	  "a.example,b.example,c.example", FALSE, FALSE,
	  "@a.example,@b.example,@c.example:user@d.example" },
	{ "<@[192.0.2.1],@B.example:\"x y\"@c.example>", ANGLE,
	  "@[192.0.2.1],@B.example:\"x y\"@c.example", "\"x y\"", "c.example", NAME,
	  "[192.0.2.1],B.example", FALSE, FALSE, "@[192.0.2.1],@B.example:\"x y\"@c.example" },
	{ "<@a.example.:u@b.example.>", 0, "@a.example.:u@b.example.", "u", "b.example", NAME,
	  "a.example", FALSE, FALSE, "@a.example:u@b.example" },
	/* address literals */
	{ "user@[192.0.2.1]", 0, "user@[192.0.2.1]", "user", "[192.0.2.1]", IPV4, "",
	  FALSE, FALSE, "user@[192.0.2.1]" },
	{ "user@[0.0.0.0]", 0, "user@[0.0.0.0]", "user", "[0.0.0.0]", IPV4, "", FALSE, FALSE,
	  "user@[0.0.0.0]" },
	{ "user@[255.255.255.255]", 0, "user@[255.255.255.255]", "user", "[255.255.255.255]",
	  IPV4, "", FALSE, FALSE, "user@[255.255.255.255]" },
	{ "user@[IPv6:2001:db8::1]", 0, "user@[IPv6:2001:db8::1]", "user", "[IPv6:2001:db8::1]",
	  IPV6, "", FALSE, FALSE, "user@[IPv6:2001:db8::1]" },
	{ "user@[ipv6:::1]", 0, "user@[ipv6:::1]", "user", "[ipv6:::1]", IPV6, "", FALSE, FALSE,
	  "user@[ipv6:::1]" },
	{ "user@[IPv6:::ffff:192.0.2.1]", 0, "user@[IPv6:::ffff:192.0.2.1]", "user",
	  "[IPv6:::ffff:192.0.2.1]", IPV6, "", FALSE, FALSE, "user@[IPv6:::ffff:192.0.2.1]" },
	{ "user@[IPv6:2001:db8:0:0:0:0:0:1]", 0, "user@[IPv6:2001:db8:0:0:0:0:0:1]", "user",
	  "[IPv6:2001:db8:0:0:0:0:0:1]", IPV6, "", FALSE, FALSE,
	  "user@[IPv6:2001:db8:0:0:0:0:0:1]" },
	{ "user@[x-tag:some!text>]", 0, "user@[x-tag:some!text>]", "user", "[x-tag:some!text>]",
	  GENERAL, "", FALSE, FALSE, "user@[x-tag:some!text>]" },
	/* host names */
	{ "user@example.com.", 0, "user@example.com.", "user", "example.com", NAME, "",
	  FALSE, FALSE, "user@example.com" },
	{ "user@_dmarc.example.com", 0, "user@_dmarc.example.com", "user",
	  "_dmarc.example.com", NAME, "", FALSE, FALSE, "user@_dmarc.example.com" },
	{ "user@mail-1.ex--ample.com", 0, "user@mail-1.ex--ample.com", "user",
	  "mail-1.ex--ample.com", NAME, "", FALSE, FALSE, "user@mail-1.ex--ample.com" },
	{ "user@localhost", 0, "user@localhost", "user", "localhost", NAME, "", FALSE, FALSE,
	  "user@localhost" },
	{ "user@123.example", 0, "user@123.example", "user", "123.example", NAME, "",
	  FALSE, FALSE, "user@123.example" },
	/* the null path */
	{ "<>", EMPTY, "", "", NULL, NONE, "", TRUE, FALSE, "" },
	{ "", EMPTY, "", "", NULL, NONE, "", TRUE, FALSE, "" },
	{ "<>", EMPTY | ANGLE, "", "", NULL, NONE, "", TRUE, FALSE, "" },
	/* 8-bit local parts */
	{ "j\xc3\xb6rg@example.com", 0, "j\xc3\xb6rg@example.com", "j**rg", "example.com", NAME,
	  "", FALSE, TRUE, "j**rg@example.com" },
	{ "j\xc3\xb6rg@example.com", UTF8, "j\xc3\xb6rg@example.com", "j\xc3\xb6rg",
	  "example.com", NAME, "", FALSE, FALSE, "j\xc3\xb6rg@example.com" },
	{ "\xff\xfe@example.com", 0, "\xff\xfe@example.com", "**", "example.com", NAME, "",
	  FALSE, TRUE, "**@example.com" },
	{ "\"j\xc3\xb6 rg\"@x.example", 0, "\"j\xc3\xb6 rg\"@x.example", "\"j** rg\"",
	  "x.example", NAME, "", FALSE, TRUE, "\"j** rg\"@x.example" },
	{ "\"a\\\xc3\xa9\"@x.example", 0, "\"a\\\xc3\xa9\"@x.example", "\"a\\**\"", "x.example",
	  NAME, "", FALSE, TRUE, "\"a\\**\"@x.example" },
	{ "\"a\\\xc3\xa9\"@x.example", UTF8, "\"a\\\xc3\xa9\"@x.example", "\"a\\\xc3\xa9\"",
	  "x.example", NAME, "", FALSE, FALSE, "\"a\\\xc3\xa9\"@x.example" },
	{ "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.example", UTF8,
	  "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.example", "\xe7\x94\xa8\xe6\x88\xb7",
	  "\xe4\xbe\x8b\xe5\xad\x90.example", NAME, "", FALSE, FALSE,
	  "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.example" },
	{ "u@b\xc3\xbc" "cher.example", UTF8, "u@b\xc3\xbc" "cher.example", "u",
	  "b\xc3\xbc" "cher.example", NAME, "", FALSE, FALSE, "u@b\xc3\xbc" "cher.example" },
};

static const ErrorRow error_rows[] = {
	/* angle brackets and the null path */
	{ "user@example.com", -1, ANGLE, IMTA_ADDRESS_ERROR_SYNTAX, "expected '<' at offset 0" },
	{ "", -1, ANGLE | EMPTY, IMTA_ADDRESS_ERROR_SYNTAX, "expected '<' at offset 0" },
	{ "<user@example.com", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "expected '>' at offset 17" },
	{ "<user@example.com>x", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "unexpected text after '>' at offset 18" },
	{ "<user@x.example>>", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "unexpected text after '>' at offset 16" },
	{ "<> ", -1, EMPTY, IMTA_ADDRESS_ERROR_SYNTAX, "unexpected text after '>' at offset 2" },
	{ "<>", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "expected an address at offset 1 (the null path is not allowed here)" },
	{ "", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "expected an address at offset 0 (the null path is not allowed here)" },
	{ "<", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "expected a local part at offset 1" },
	{ "user@example.com>", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "unexpected '>' in domain at offset 16" },
	{ "user>@x", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "unexpected '>' in local part at offset 4" },
	/* missing parts */
	{ "user", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "expected '@' at offset 4" },
	{ "<user>", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "expected '@' at offset 5" },
	{ "\"a b\"", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "expected '@' at offset 5" },
	{ "user@", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "expected a domain at offset 5" },
	{ "<user@>", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "expected a domain at offset 6" },
	{ "@x.example", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "expected ',' or ':' at offset 10" },
	{ "<@x.example>", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "expected ',' or ':' at offset 11" },
	{ "<@x.example:>", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "expected a local part at offset 12" },
	/* local part */
	{ "us er@x", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "unexpected space in local part at offset 2" },
	{ " user@x", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "unexpected space in local part at offset 0" },
	{ "< user@x>", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "unexpected space in local part at offset 1" },
	{ ".user@x", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "local part begins with '.' at offset 0" },
	{ "us..er@x", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "consecutive dots in local part at offset 3" },
	{ "user.@x", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "local part ends with '.' at offset 4" },
	{ "user.", -1, NODOM, IMTA_ADDRESS_ERROR_SYNTAX, "local part ends with '.' at offset 4" },
	{ "us(er)@x", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "unexpected '(' in local part at offset 2" },
	{ "a.(b@x", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "unexpected '(' in local part at offset 2" },
	{ "us\x01" "er@x", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "unexpected control character 0x01 in local part at offset 2" },
	{ "user\r\n@x", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "unexpected CR in local part at offset 4" },
	{ "us\0er@x", 7, 0, IMTA_ADDRESS_ERROR_SYNTAX, "unexpected NUL in local part at offset 2" },
	{ "a\"b\"@x", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "unexpected '\"' in local part at offset 1" },
	{ "\"abc@x", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "unterminated quoted string: expected '\"' at offset 6" },
	{ "<\"abc@x>", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "unterminated quoted string: expected '\"' at offset 8" },
	{ "\"a\rb\"@x", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "unexpected CR in quoted string at offset 2" },
	{ "\"a\x7f\"@x", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "unexpected control character 0x7f in quoted string at offset 2" },
	{ "\"a\\\nb\"@x", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "unexpected LF in quoted string at offset 3" },
	{ "\"a\\\0\"@x", 7, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "unexpected NUL in quoted string at offset 3" },
	{ "\"a\\", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "expected a character after '\\' at offset 3" },
	{ "\"ab\"c@x", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "expected '@' at offset 4" },
	{ "\"ab\".c@x", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "expected '@' at offset 4" },
	/* host names */
	{ "user@.example.com", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "empty label in domain at offset 5" },
	{ "user@example..com", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "empty label in domain at offset 13" },
	{ "user@example.com..", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "empty label in domain at offset 17" },
	{ "user@.", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "empty label in domain at offset 5" },
	{ "user@-example.com", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "label begins with '-' in domain at offset 5" },
	{ "user@example-.com", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "label ends with '-' in domain at offset 12" },
	{ "user@exa$mple.com", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "unexpected '$' in domain at offset 8" },
	{ "user@@x", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "unexpected '@' in domain at offset 5" },
	{ "user@x@y", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "unexpected '@' in domain at offset 6" },
	{ "user@x ", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "unexpected space in domain at offset 6" },
	{ "user@ex ample.com", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "unexpected space in domain at offset 7" },
	{ "<a@b\x7f>", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "unexpected control character 0x7f in domain at offset 4" },
	{ "user@x\0y", 8, 0, IMTA_ADDRESS_ERROR_SYNTAX, "unexpected NUL in domain at offset 6" },
	{ "user@x.example\n", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "unexpected LF in domain at offset 14" },
	/* 8-bit and UTF-8 */
	{ "user@b\xc3\xbc" "cher.example", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "unexpected 8-bit byte 0xc3 in domain at offset 6" },
	{ "user@b\xc3" "cher", -1, UTF8, IMTA_ADDRESS_ERROR_SYNTAX,
	  "invalid UTF-8 in domain at offset 6" },
	{ "j\xc3rg@x", -1, UTF8, IMTA_ADDRESS_ERROR_SYNTAX,
	  "invalid UTF-8 in local part at offset 1" },
	{ "j\xc0\xafrg@x", -1, UTF8, IMTA_ADDRESS_ERROR_SYNTAX,
	  "invalid UTF-8 in local part at offset 1" },
	{ "j\xed\xa0\x80@x", -1, UTF8, IMTA_ADDRESS_ERROR_SYNTAX,
	  "invalid UTF-8 in local part at offset 1" },
	{ "j\xc3", -1, UTF8 | NODOM, IMTA_ADDRESS_ERROR_SYNTAX,
	  "invalid UTF-8 in local part at offset 1" },
	{ "\"j\xffrg\"@x", -1, UTF8, IMTA_ADDRESS_ERROR_SYNTAX,
	  "invalid UTF-8 in quoted string at offset 2" },
	{ "user@[\xc3\xa9]", -1, UTF8, IMTA_ADDRESS_ERROR_SYNTAX,
	  "unexpected 8-bit byte 0xc3 in address literal at offset 6" },
	/* address literals */
	{ "user@[1.2.3]", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "invalid IPv4 address in address literal at offset 6" },
	{ "user@[256.1.1.1]", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "invalid IPv4 address in address literal at offset 6" },
	{ "user@[1.2.3.4.5]", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "invalid IPv4 address in address literal at offset 6" },
	{ "user@[1.2.3.1234]", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "invalid IPv4 address in address literal at offset 6" },
	{ "user@[1.2.3.4", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "expected ']' at offset 13" },
	{ "user@[1.2.3.4]x", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "unexpected 'x' in domain at offset 14" },
	{ "user@[1.2.3.4].", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "unexpected '.' in domain at offset 14" },
	{ "user@[]", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "expected an IPv4 address or a tag followed by ':' in address literal at offset 6" },
	{ "user@[foo]", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "expected an IPv4 address or a tag followed by ':' in address literal at offset 6" },
	{ "user@[IPv6:2001:db8::g]", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "invalid IPv6 address in address literal at offset 11" },
	{ "user@[IPv6:1.2.3.4]", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "invalid IPv6 address in address literal at offset 11" },
	{ "user@[IPv6:]", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "invalid IPv6 address in address literal at offset 11" },
	{ "user@[x-:abc]", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "invalid tag in address literal at offset 6" },
	{ "user@[:abc]", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "invalid tag in address literal at offset 6" },
	{ "user@[tag:]", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "expected text after ':' in address literal at offset 10" },
	{ "user@[tag:a b]", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "unexpected space in address literal at offset 11" },
	{ "user@[tag:a[b]", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX,
	  "unexpected '[' in address literal at offset 11" },
	/* source routes */
	{ "<@a,b:u@c>", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "expected '@' at offset 4" },
	{ "<@a;u@c>", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "unexpected ';' in domain at offset 3" },
	{ "<@:u@c>", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "expected a domain at offset 2" },
	{ "<@a,@b>", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "expected ',' or ':' at offset 6" },
	{ "<@a..b:u@c>", -1, 0, IMTA_ADDRESS_ERROR_SYNTAX, "empty label in domain at offset 4" },
	{ "<@a:u>", -1, NODOM, IMTA_ADDRESS_ERROR_SYNTAX, "expected '@' at offset 5" },
};

static void
check_error(const ErrorRow *row)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaAddress) address = NULL;

	g_autofree char *shown = g_strescape(row->input, NULL);

	g_test_message("error row \"%s\" flags %d", shown, row->flags);
	address = imta_address_parse(row->input, row->length, row->flags, &error);
	g_assert_null(address);
	g_assert_error(error, IMTA_ADDRESS_ERROR, (gint) row->code);
	g_assert_cmpstr(error->message, ==, row->message);
}

static char *
join_route(const ImtaAddress *address)
{
	g_assert_nonnull(address->route);
	return g_strjoinv(",", address->route);
}

static void
check_valid(const ValidRow *row)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaAddress) address = NULL;
	g_autofree char *route = NULL;
	g_autofree char *formatted = NULL;

	g_autofree char *shown = g_strescape(row->input, NULL);

	g_test_message("valid row \"%s\" flags %d", shown, row->flags);
	address = imta_address_parse(row->input, -1, row->flags, &error);
	g_assert_no_error(error);
	g_assert_nonnull(address);
	g_assert_cmpstr(address->raw, ==, row->raw);
	g_assert_cmpstr(address->local, ==, row->local);
	g_assert_cmpstr(address->domain, ==, row->domain);
	g_assert_cmpint(address->domain_kind, ==, row->kind);
	route = join_route(address);
	g_assert_cmpstr(route, ==, row->route);
	g_assert_cmpint(address->empty, ==, row->empty);
	g_assert_cmpint(address->had_8bit, ==, row->had_8bit);
	formatted = imta_address_format(address);
	g_assert_cmpstr(formatted, ==, row->formatted);
}

/* Rows whose input shares a concern, selected by a substring of it or by
 * a flag, so each concern has its own test path. */
static void
test_valid_plain(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(valid_rows); i++) {
		const ValidRow *row = &valid_rows[i];

		if (strchr(row->input, '[') == NULL && row->route[0] == '\0' && !row->empty &&
		    !row->had_8bit && !(row->flags & UTF8))
			check_valid(row);
	}
}

static void
test_valid_routes(void)
{
	guint n = 0;

	for (gsize i = 0; i < G_N_ELEMENTS(valid_rows); i++) {
		if (valid_rows[i].route[0] != '\0') {
			check_valid(&valid_rows[i]);
			n++;
		}
	}
	g_assert_cmpuint(n, ==, 4);
}

static void
test_valid_literals(void)
{
	guint n = 0;

	for (gsize i = 0; i < G_N_ELEMENTS(valid_rows); i++) {
		if (valid_rows[i].kind == IPV4 || valid_rows[i].kind == IPV6 ||
		    valid_rows[i].kind == GENERAL) {
			check_valid(&valid_rows[i]);
			n++;
		}
	}
	g_assert_cmpuint(n, ==, 8);
}

static void
test_valid_null_path(void)
{
	guint n = 0;

	for (gsize i = 0; i < G_N_ELEMENTS(valid_rows); i++) {
		if (valid_rows[i].empty) {
			check_valid(&valid_rows[i]);
			n++;
		}
	}
	g_assert_cmpuint(n, ==, 3);
}

static void
test_valid_8bit(void)
{
	guint n = 0;

	for (gsize i = 0; i < G_N_ELEMENTS(valid_rows); i++) {
		if (valid_rows[i].had_8bit || (valid_rows[i].flags & UTF8)) {
			check_valid(&valid_rows[i]);
			n++;
		}
	}
	g_assert_cmpuint(n, ==, 8);
}

static void
test_errors(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(error_rows); i++)
		check_error(&error_rows[i]);
}

/* An explicit length stops the parse there, even before a NUL. */
static void
test_explicit_length(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaAddress) address = imta_address_parse("user@example.comXYZ", 16, 0, &error);
	g_autoptr(ImtaAddress) empty = imta_address_parse(NULL, 0, EMPTY, &error);

	g_assert_no_error(error);
	g_assert_cmpstr(address->domain, ==, "example.com");
	g_assert_cmpstr(address->raw, ==, "user@example.com");
	g_assert_true(empty->empty);
}

/* Every concern's rows must round-trip: format(parse(x)) reparses (with the
 * same flags) to the same fields and formats identically. */
static void
test_round_trip(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(valid_rows); i++) {
		const ValidRow *row = &valid_rows[i];
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaAddress) first = imta_address_parse(row->input, -1, row->flags,
								  &error);
		g_autofree char *text = NULL;
		g_autofree char *input = NULL;
		g_autoptr(ImtaAddress) second = NULL;
		g_autofree char *again = NULL;
		g_autofree char *shown = g_strescape(row->input, NULL);
		g_autofree char *route1 = NULL;
		g_autofree char *route2 = NULL;

		g_test_message("round trip \"%s\"", shown);
		g_assert_no_error(error);
		text = imta_address_format(first);
		input = (row->flags & ANGLE) ? g_strdup_printf("<%s>", text) : g_strdup(text);
		second = imta_address_parse(input, -1, row->flags, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(second->local, ==, first->local);
		g_assert_cmpstr(second->domain, ==, first->domain);
		g_assert_cmpint(second->domain_kind, ==, first->domain_kind);
		g_assert_cmpint(second->empty, ==, first->empty);
		route1 = join_route(first);
		route2 = join_route(second);
		g_assert_cmpstr(route1, ==, route2);
		again = imta_address_format(second);
		g_assert_cmpstr(again, ==, text);
	}
}

typedef struct {
	const char *what;
	char local_char;        /* 0: quoted local part of 'q' */
	guint local_len;        /* octets of the local part as written */
	guint label_len;        /* >0: domain is that long a label + ".example" */
	guint domain_len;       /* otherwise a domain of that many octets */
	gboolean bracketed;
	ImtaAddressFlags flags;
	gboolean ok;
	ImtaAddressErrorCode code;
	const char *message;
} LimitRow;

static const LimitRow limit_rows[] = {
	{ "local 64", 'l', 64, 0, 11, FALSE, 0, TRUE, 0, NULL },
	{ "local 65", 'l', 65, 0, 11, FALSE, 0, FALSE, IMTA_ADDRESS_ERROR_TOO_LONG,
	  "local part longer than 64 octets at offset 0" },
	{ "<local 65>", 'l', 65, 0, 11, TRUE, 0, FALSE, IMTA_ADDRESS_ERROR_TOO_LONG,
	  "local part longer than 64 octets at offset 1" },
	{ "local 65, no limits", 'l', 65, 0, 11, FALSE, NOLIMIT, TRUE, 0, NULL },
	{ "quoted local 64", 0, 64, 0, 11, FALSE, 0, TRUE, 0, NULL },
	{ "quoted local 65", 0, 65, 0, 11, FALSE, 0, FALSE, IMTA_ADDRESS_ERROR_TOO_LONG,
	  "local part longer than 64 octets at offset 0" },
	{ "8-bit local 64", '\xe9', 64, 0, 11, FALSE, 0, TRUE, 0, NULL },
	{ "8-bit local 65", '\xe9', 65, 0, 11, FALSE, 0, FALSE, IMTA_ADDRESS_ERROR_TOO_LONG,
	  "local part longer than 64 octets at offset 0" },
	{ "label 63", 'l', 1, 63, 0, FALSE, 0, TRUE, 0, NULL },
	{ "label 64", 'l', 1, 64, 0, FALSE, 0, FALSE, IMTA_ADDRESS_ERROR_TOO_LONG,
	  "label longer than 63 octets in domain at offset 2" },
	{ "<label 64>", 'l', 1, 64, 0, TRUE, 0, FALSE, IMTA_ADDRESS_ERROR_TOO_LONG,
	  "label longer than 63 octets in domain at offset 3" },
	{ "label 64, no limits", 'l', 1, 64, 0, FALSE, NOLIMIT, TRUE, 0, NULL },
	/* a 255-octet domain passes its own limit but not the path limit */
	{ "domain 255", 'l', 1, 0, 255, FALSE, 0, FALSE, IMTA_ADDRESS_ERROR_TOO_LONG,
	  "path longer than 256 octets" },
	{ "domain 256", 'l', 1, 0, 256, FALSE, 0, FALSE, IMTA_ADDRESS_ERROR_TOO_LONG,
	  "domain longer than 255 octets at offset 2" },
	{ "domain 300, no limits", 'l', 1, 0, 300, FALSE, NOLIMIT, TRUE, 0, NULL },
	/* 64 + 1 + 189 = 254 octets, 256 with the brackets */
	{ "path 256", 'l', 64, 0, 189, FALSE, 0, TRUE, 0, NULL },
	{ "<path 256>", 'l', 64, 0, 189, TRUE, 0, TRUE, 0, NULL },
	{ "path 257", 'l', 64, 0, 190, FALSE, 0, FALSE, IMTA_ADDRESS_ERROR_TOO_LONG,
	  "path longer than 256 octets" },
	{ "<path 257>", 'l', 64, 0, 190, TRUE, 0, FALSE, IMTA_ADDRESS_ERROR_TOO_LONG,
	  "path longer than 256 octets" },
	{ "path 257, no limits", 'l', 64, 0, 190, FALSE, NOLIMIT, TRUE, 0, NULL },
};

/* A domain of exactly n octets made of labels of at most 63. */
static char *
make_domain(guint n)
{
	GString *out = g_string_new(NULL);
	guint left = n;

	while (left > 0) {
		guint chunk = MIN(63, left);

		if (left > chunk && left - chunk < 2)
			chunk = left - 2;
		for (guint i = 0; i < chunk; i++)
			g_string_append_c(out, 'd');
		left -= chunk;
		if (left > 0) {
			g_string_append_c(out, '.');
			left--;
		}
	}
	g_assert_cmpuint(out->len, ==, n);
	return g_string_free(out, FALSE);
}

static char *
make_limit_input(const LimitRow *row)
{
	GString *out = g_string_new(row->bracketed ? "<" : "");
	g_autofree char *domain = NULL;

	if (row->local_char == 0) {
		g_string_append_c(out, '"');
		for (guint i = 0; i + 2 < row->local_len; i++)
			g_string_append_c(out, 'q');
		g_string_append_c(out, '"');
	} else {
		for (guint i = 0; i < row->local_len; i++)
			g_string_append_c(out, row->local_char);
	}
	g_string_append_c(out, '@');
	if (row->label_len > 0) {
		for (guint i = 0; i < row->label_len; i++)
			g_string_append_c(out, 'b');
		g_string_append(out, ".example");
	} else {
		domain = make_domain(row->domain_len);
		g_string_append(out, domain);
	}
	if (row->bracketed)
		g_string_append_c(out, '>');
	return g_string_free(out, FALSE);
}

static void
test_limits(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(limit_rows); i++) {
		const LimitRow *row = &limit_rows[i];
		g_autofree char *input = make_limit_input(row);
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaAddress) address = NULL;

		g_test_message("limit row %s", row->what);
		address = imta_address_parse(input, -1, row->flags, &error);
		if (row->ok) {
			g_assert_no_error(error);
			g_assert_cmpuint(strlen(address->local), ==, row->local_len);
			g_assert_cmpint(address->had_8bit, ==, row->local_char == '\xe9');
		} else {
			g_assert_null(address);
			g_assert_error(error, IMTA_ADDRESS_ERROR, (gint) row->code);
			g_assert_cmpstr(error->message, ==, row->message);
		}
	}
}

/* Route hosts obey the label and domain limits too. */
static void
test_limits_route(void)
{
	g_autofree char *label = g_strnfill(64, 'r');
	g_autofree char *domain = make_domain(256);
	g_autofree char *long_label = g_strdup_printf("<@%s:u@x.example>", label);
	g_autofree char *long_domain = g_strdup_printf("<@%s:u@x.example>", domain);
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaAddress) address = NULL;

	address = imta_address_parse(long_label, -1, 0, &error);
	g_assert_null(address);
	g_assert_error(error, IMTA_ADDRESS_ERROR, IMTA_ADDRESS_ERROR_TOO_LONG);
	g_assert_cmpstr(error->message, ==, "label longer than 63 octets in domain at offset 2");
	g_clear_error(&error);

	address = imta_address_parse(long_domain, -1, 0, &error);
	g_assert_null(address);
	g_assert_error(error, IMTA_ADDRESS_ERROR, IMTA_ADDRESS_ERROR_TOO_LONG);
	g_assert_cmpstr(error->message, ==, "domain longer than 255 octets at offset 2");
	g_clear_error(&error);

	address = imta_address_parse(long_domain, -1, NOLIMIT, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(address->route[0], ==, domain);
	g_assert_null(address->route[1]);
}

typedef struct {
	const char *a;
	const char *b;
	gboolean equal;
} DomainRow;

static void
test_domain_equal(void)
{
	static const DomainRow rows[] = {
		{ "Example.COM", "example.com", TRUE },
		{ "example.com.", "EXAMPLE.com", TRUE },
		{ "example.com.", "example.com.", TRUE },
		{ "example.com..", "example.com", FALSE },
		{ "example.com", "example.co", FALSE },
		{ "a.example", "b.example", FALSE },
		{ "b\xc3\xbc.example", "B\xc3\xbc.EXAMPLE", TRUE },
		{ "[192.0.2.1]", "[192.0.2.1]", TRUE },
		{ "[192.0.2.1]", "192.0.2.1", FALSE },
		{ "[192.0.2.1].", "[192.0.2.1]", FALSE },
		{ "[192.0.2.1]", "[192.0.2.10]", FALSE },
		{ "[IPv6:2001:db8::1]", "[ipv6:2001:db8::1]", TRUE },
		{ "[IPV6:::1]", "[IPv6:::1]", TRUE },
		{ "[IPv6:::a]", "[IPv6:::A]", FALSE },
		{ "[tag:A]", "[tag:a]", FALSE },
		{ "[tag:a]", "[tag:a]", TRUE },
		{ NULL, NULL, TRUE },
		{ NULL, "example.com", FALSE },
		{ "example.com", NULL, FALSE },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_test_message("domain_equal \"%s\" \"%s\"", rows[i].a, rows[i].b);
		g_assert_cmpint(imta_domain_equal(rows[i].a, rows[i].b), ==, rows[i].equal);
		g_assert_cmpint(imta_domain_equal(rows[i].b, rows[i].a), ==, rows[i].equal);
	}
}

typedef struct {
	const char *local;
	gboolean needs;
	const char *quoted;
} QuoteRow;

static const QuoteRow quote_rows[] = {
	{ "user", FALSE, "user" },
	{ "first.last", FALSE, "first.last" },
	{ "user%host", FALSE, "user%host" },
	{ "host!user", FALSE, "host!user" },
	{ "a+b=c", FALSE, "a+b=c" },
	{ "j\xc3\xb6rg", FALSE, "j\xc3\xb6rg" },
	{ "a b", TRUE, "\"a b\"" },
	{ "", TRUE, "\"\"" },
	{ ".a", TRUE, "\".a\"" },
	{ "a.", TRUE, "\"a.\"" },
	{ "a..b", TRUE, "\"a..b\"" },
	{ ".", TRUE, "\".\"" },
	{ "a\"b", TRUE, "\"a\\\"b\"" },
	{ "a\\b", TRUE, "\"a\\\\b\"" },
	{ "a@b", TRUE, "\"a@b\"" },
	{ "(comment)", TRUE, "\"(comment)\"" },
	{ "a\tb", TRUE, "\"a\tb\"" },
	{ "a\x01z", TRUE, "\"a\\\x01z\"" },
	{ "\"already\"", TRUE, "\"\\\"already\\\"\"" },
};

static void
test_quoting(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(quote_rows); i++) {
		const QuoteRow *row = &quote_rows[i];
		g_autofree char *quoted = imta_local_part_quote(row->local);
		g_autofree char *unquoted = imta_local_part_unquote(quoted);
		g_autofree char *input = g_strdup_printf("%s@example.com", quoted);
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaAddress) address = NULL;

		g_test_message("quote \"%s\"", row->local);
		g_assert_cmpint(imta_local_part_needs_quoting(row->local), ==, row->needs);
		g_assert_cmpstr(quoted, ==, row->quoted);
		g_assert_cmpstr(unquoted, ==, row->local);
		/* what quote() produces is a local part the parser accepts as is */
		address = imta_address_parse(input, -1, UTF8, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(address->local, ==, row->quoted);
	}
}

static void
test_unquote(void)
{
	static const struct {
		const char *in;
		const char *out;
	} rows[] = {
		{ "\"a b\"", "a b" },
		{ "\"\"", "" },
		{ "\"a\\\\\"", "a\\" },
		{ "\"\\a\\b\"", "ab" },
		{ "plain", "plain" },
		{ "\"abc", "\"abc" },
		{ "\"a\\\"", "\"a\\\"" },
		{ "\"a\"b\"", "\"a\"b\"" },
		{ "\"a\".\"b\"", "\"a\".\"b\"" },
		{ "\"", "\"" },
		{ "", "" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *out = imta_local_part_unquote(rows[i].in);

		g_test_message("unquote \"%s\"", rows[i].in);
		g_assert_cmpstr(out, ==, rows[i].out);
	}
}

/* The local parts the parser produced unquote to what a user would type. */
static void
test_unquote_parsed(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaAddress) address =
		imta_address_parse("<\"john \\\"jd\\\" doe\"@example.com>", -1, ANGLE, &error);
	g_autofree char *user = NULL;
	g_autofree char *requoted = NULL;

	g_assert_no_error(error);
	user = imta_local_part_unquote(address->local);
	g_assert_cmpstr(user, ==, "john \"jd\" doe");
	requoted = imta_local_part_quote(user);
	g_assert_cmpstr(requoted, ==, address->local);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/address/parse/plain", test_valid_plain);
	g_test_add_func("/address/parse/routes", test_valid_routes);
	g_test_add_func("/address/parse/literals", test_valid_literals);
	g_test_add_func("/address/parse/null-path", test_valid_null_path);
	g_test_add_func("/address/parse/8bit", test_valid_8bit);
	g_test_add_func("/address/parse/explicit-length", test_explicit_length);
	g_test_add_func("/address/parse/errors", test_errors);
	g_test_add_func("/address/limits/boundaries", test_limits);
	g_test_add_func("/address/limits/route", test_limits_route);
	g_test_add_func("/address/format/round-trip", test_round_trip);
	g_test_add_func("/address/domain/equal", test_domain_equal);
	g_test_add_func("/address/local-part/quote", test_quoting);
	g_test_add_func("/address/local-part/unquote", test_unquote);
	g_test_add_func("/address/local-part/unquote-parsed", test_unquote_parsed);
	return g_test_run();
}
