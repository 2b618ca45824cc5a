/*
 * ldap_filter.h - RFC 4515 search filters, parsed and evaluated locally.
 *
 * The embedded directory evaluates dynamic group URLs (memberURL) and its
 * own searches with these filters; an LDAP backend can send the canonical
 * text of a parsed filter (imta_ldap_filter_to_string) to its server.
 *
 * Supported: & | ! (RFC 4526 empty "(&)" is true, "(|)" false), equality,
 * presence (attr=*), substrings (initial*any*final), >=, <= and ~=.
 * Values are compared without regard to case (caseIgnoreMatch); ~= is the
 * same as equality; >= and <= compare numerically when both sides are
 * integers and as case-folded strings otherwise.  A missing attribute
 * makes every assertion on it false.  Extensible matches (":=") are
 * refused.  Attribute options (";lang-en") are dropped, so an assertion
 * on "cn;lang-en" tests "cn".  The outer parentheses may be omitted
 * around a single item ("mail=a@b"), as ldapsearch allows, and spaces
 * between components are ignored.
 */
#ifndef IMTA_LDAP_FILTER_H
#define IMTA_LDAP_FILTER_H

#include <glib.h>
#include <imta/error.h>

G_BEGIN_DECLS

/* Nesting beyond this depth is refused ("(a=b)" has depth 1). */
#define IMTA_LDAP_FILTER_MAX_DEPTH 32
/* Filters longer than this many bytes are refused. */
#define IMTA_LDAP_FILTER_MAX_LENGTH 4096

typedef enum {
	IMTA_LDAP_FILTER_AND,
	IMTA_LDAP_FILTER_OR,
	IMTA_LDAP_FILTER_NOT,
	IMTA_LDAP_FILTER_EQUAL,
	IMTA_LDAP_FILTER_PRESENT,
	IMTA_LDAP_FILTER_SUBSTRINGS,
	IMTA_LDAP_FILTER_GREATER_OR_EQUAL,
	IMTA_LDAP_FILTER_LESS_OR_EQUAL,
	IMTA_LDAP_FILTER_APPROX,
} ImtaLdapFilterKind;

typedef struct _ImtaLdapFilter ImtaLdapFilter;

/* Parse `text`.  Errors are IMTA_DIRECTORY_ERROR_DATA, worded
 * "invalid LDAP filter at column N: what was expected". */
ImtaLdapFilter *imta_ldap_filter_parse(const char *text, GError **error);

/* Does the entry whose attributes are `attributes` (lower-case name ->
 * NULL-terminated vector of values) match? */
gboolean imta_ldap_filter_match(const ImtaLdapFilter *filter, GHashTable *attributes);

ImtaLdapFilterKind imta_ldap_filter_kind(const ImtaLdapFilter *filter);

/* The canonical text: always parenthesised, lower-case attribute names,
 * "\XX" escapes for the characters that need them.  Caller frees. */
char *imta_ldap_filter_to_string(const ImtaLdapFilter *filter);

/* Escape a value for inclusion in a filter (RFC 4515 section 3). */
char *imta_ldap_filter_escape(const char *value);

void imta_ldap_filter_free(ImtaLdapFilter *filter);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaLdapFilter, imta_ldap_filter_free)

G_END_DECLS

#endif
