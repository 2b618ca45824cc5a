/*
 * test-ldap-filter.c - RFC 4515 filter parsing, printing and evaluation.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/error.h>

#include "directory/ldap_filter.h"

typedef struct {
	const char *input;
	const char *canonical;
} CanonicalCase;

/* The RFC 4515 section 4 examples, plus the liberties we allow. */
static const CanonicalCase canonical_cases[] = {
	{ "(cn=Babs Jensen)", "(cn=Babs Jensen)" },
	{ "(!(cn=Tim Howes))", "(!(cn=Tim Howes))" },
	{ "(&(objectClass=Person)(|(sn=Jensen)(cn=Babs J*)))",
	  "(&(objectclass=Person)(|(sn=Jensen)(cn=Babs J*)))" },
	{ "(o=univ*of*mich*)", "(o=univ*of*mich*)" },
	{ "(seeAlso=)", "(seealso=)" },
	{ "(o=Parens R Us \\28for all your parenthetical needs\\29)",
	  "(o=Parens R Us \\28for all your parenthetical needs\\29)" },
	{ "(cn=*\\2A*)", "(cn=*\\2a*)" },
	{ "(filename=C:\\5cMyFile)", "(filename=C:\\5cMyFile)" },
	{ "(bin=\\00\\00\\00\\04)", "(bin=\\00\\00\\00\\04)" },
	{ "(sn=Lu\\c4\\8di\\c4\\87)", "(sn=Lu\xc4\x8di\xc4\x87)" },
	{ "(1.3.6.1.4.1.1466.0=\\04\\02\\48\\69)", "(1.3.6.1.4.1.1466.0=\\04\\02Hi)" },
	{ "(cn=*)", "(cn=*)" },
	{ "(cn=*x*)", "(cn=*x*)" },
	{ "(cn=x*)", "(cn=x*)" },
	{ "(cn=*x)", "(cn=*x)" },
	{ "(cn=a**b)", "(cn=a*b)" },
	{ "(cn=**)", "(cn=*)" },
	{ "(uidNumber>=100)", "(uidnumber>=100)" },
	{ "(uidNumber<=100)", "(uidnumber<=100)" },
	{ "(cn~=jensen)", "(cn~=jensen)" },
	{ "(&)", "(&)" },
	{ "(|)", "(|)" },
	{ "mail=a@example.com", "(mail=a@example.com)" },
	{ "  ( & (a=b) (c=d) )  ", "(&(a=b)(c=d))" },
	{ "(cn;lang-en=x)", "(cn=x)" },
	{ "(CN;binary;x-y=v)", "(cn=v)" },
	{ "(mail=a b )", "(mail=a b )" },
};

static void
test_parse_canonical(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(canonical_cases); i++) {
		const CanonicalCase *c = &canonical_cases[i];
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaLdapFilter) filter = imta_ldap_filter_parse(c->input, &error);
		g_autofree char *text = NULL;

		g_test_message("filter %s", c->input);
		g_assert_no_error(error);
		g_assert_nonnull(filter);
		text = imta_ldap_filter_to_string(filter);
		g_assert_cmpstr(text, ==, c->canonical);
	}
}

typedef struct {
	const char *input;
	ImtaLdapFilterKind kind;
} KindCase;

static const KindCase kind_cases[] = {
	{ "(&(a=b))", IMTA_LDAP_FILTER_AND },
	{ "(|(a=b))", IMTA_LDAP_FILTER_OR },
	{ "(!(a=b))", IMTA_LDAP_FILTER_NOT },
	{ "(a=b)", IMTA_LDAP_FILTER_EQUAL },
	{ "(a=*)", IMTA_LDAP_FILTER_PRESENT },
	{ "(a=b*)", IMTA_LDAP_FILTER_SUBSTRINGS },
	{ "(a=*b)", IMTA_LDAP_FILTER_SUBSTRINGS },
	{ "(a>=b)", IMTA_LDAP_FILTER_GREATER_OR_EQUAL },
	{ "(a<=b)", IMTA_LDAP_FILTER_LESS_OR_EQUAL },
	{ "(a~=b)", IMTA_LDAP_FILTER_APPROX },
	{ "(a=\\2a)", IMTA_LDAP_FILTER_EQUAL },
};

static void
test_parse_kinds(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(kind_cases); i++) {
		g_autoptr(ImtaLdapFilter) filter = imta_ldap_filter_parse(kind_cases[i].input, NULL);

		g_test_message("filter %s", kind_cases[i].input);
		g_assert_nonnull(filter);
		g_assert_cmpint(imta_ldap_filter_kind(filter), ==, kind_cases[i].kind);
	}
}

typedef struct {
	const char *input;
	const char *message;
} ErrorCase;

static const ErrorCase error_cases[] = {
	{ "", "invalid LDAP filter at column 1: empty filter" },
	{ "   ", "invalid LDAP filter at column 4: empty filter" },
	{ "(cn=a", "invalid LDAP filter at column 6: expected \")\" to close the \"(\" at "
	  "column 1" },
	{ "(&(cn=a)", "invalid LDAP filter at column 9: expected \")\" to close the \"(\" at "
	  "column 1" },
	{ "(cn=a))", "invalid LDAP filter at column 7: unexpected text after the filter" },
	{ "(cn=a)(cn=b)", "invalid LDAP filter at column 7: unexpected text after the filter" },
	{ "(=a)", "invalid LDAP filter at column 2: expected an attribute name" },
	{ "()", "invalid LDAP filter at column 2: expected an attribute name" },
	{ "(-cn=a)", "invalid LDAP filter at column 2: expected an attribute name" },
	{ "(cn a)", "invalid LDAP filter at column 4: expected \"=\", \"~=\", \">=\" or "
	  "\"<=\" after the attribute name" },
	{ "(cn)", "invalid LDAP filter at column 4: expected \"=\", \"~=\", \">=\" or "
	  "\"<=\" after the attribute name" },
	{ "(cn~a)", "invalid LDAP filter at column 5: expected \"=\" after \"~\"" },
	{ "(cn>a)", "invalid LDAP filter at column 5: expected \"=\" after \">\"" },
	{ "(cn<a)", "invalid LDAP filter at column 5: expected \"=\" after \"<\"" },
	{ "(cn:dn:=a)", "invalid LDAP filter at column 4: extensible match filters (\":=\") "
	  "are not supported" },
	{ "(cn;=a)", "invalid LDAP filter at column 5: expected an attribute option after "
	  "\";\"" },
	{ "(cn=a\\4)", "invalid LDAP filter at column 6: expected two hexadecimal digits "
	  "after \"\\\"" },
	{ "(cn=a\\zz)", "invalid LDAP filter at column 6: expected two hexadecimal digits "
	  "after \"\\\"" },
	{ "(cn=a\\", "invalid LDAP filter at column 6: expected two hexadecimal digits "
	  "after \"\\\"" },
	{ "(cn=a(b)", "invalid LDAP filter at column 6: unescaped \"(\" in a value "
	  "(write it as \\28)" },
	{ "(cn>=a*)", "invalid LDAP filter at column 7: unescaped \"*\" in a value "
	  "(write it as \\2a)" },
	{ "(cn~=*)", "invalid LDAP filter at column 6: unescaped \"*\" in a value "
	  "(write it as \\2a)" },
	{ "(!(a=b)(c=d))", "invalid LDAP filter at column 8: expected \")\", got \"(\"" },
	{ "(!)", "invalid LDAP filter at column 3: expected \"(\" after \"!\"" },
	{ "(!a=b)", "invalid LDAP filter at column 3: expected \"(\" after \"!\"" },
	{ "(&(a=b)x)", "invalid LDAP filter at column 8: expected \")\", got \"x\"" },
	{ "(&a=b)", "invalid LDAP filter at column 3: expected \")\", got \"a\"" },
	{ "a=b)", "invalid LDAP filter at column 4: unexpected \")\"" },
	{ "a=b(", "invalid LDAP filter at column 4: unescaped \"(\" in a value "
	  "(write it as \\28)" },
};

static void
test_parse_errors(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(error_cases); i++) {
		const ErrorCase *c = &error_cases[i];
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaLdapFilter) filter = imta_ldap_filter_parse(c->input, &error);

		g_test_message("filter %s", c->input);
		g_assert_null(filter);
		g_assert_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA);
		g_assert_cmpstr(error->message, ==, c->message);
	}
}

static char *
nested_filter(guint depth)
{
	GString *text = g_string_new(NULL);

	for (guint i = 1; i < depth; i++)
		g_string_append(text, "(&");
	g_string_append(text, "(a=b)");
	for (guint i = 1; i < depth; i++)
		g_string_append_c(text, ')');
	return g_string_free(text, FALSE);
}

static void
test_parse_depth(void)
{
	g_autofree char *deepest = nested_filter(IMTA_LDAP_FILTER_MAX_DEPTH);
	g_autofree char *too_deep = nested_filter(IMTA_LDAP_FILTER_MAX_DEPTH + 1);
	g_autofree char *huge = nested_filter(100000 / 3);
	g_autoptr(ImtaLdapFilter) ok = NULL;
	g_autoptr(ImtaLdapFilter) bad = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *expected = NULL;

	ok = imta_ldap_filter_parse(deepest, &error);
	g_assert_no_error(error);
	g_assert_nonnull(ok);

	bad = imta_ldap_filter_parse(too_deep, &error);
	g_assert_null(bad);
	expected = g_strdup_printf("invalid LDAP filter at column %d: nested more than %d "
				   "levels deep", 2 * IMTA_LDAP_FILTER_MAX_DEPTH + 1,
				   IMTA_LDAP_FILTER_MAX_DEPTH);
	g_assert_error(error, IMTA_DIRECTORY_ERROR, IMTA_DIRECTORY_ERROR_DATA);
	g_assert_cmpstr(error->message, ==, expected);
	g_clear_error(&error);

	/* Long input is refused before any recursion. */
	g_assert_null(imta_ldap_filter_parse(huge, &error));
	g_assert_cmpstr(error->message, ==, "invalid LDAP filter: longer than 4096 bytes");
}

static GHashTable *
make_attributes(const char *const *pairs)
{
	GHashTable *attrs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
						  (GDestroyNotify)g_strfreev);

	for (guint i = 0; pairs[i] != NULL; i += 2) {
		char **old = g_hash_table_lookup(attrs, pairs[i]);
		guint n = old != NULL ? g_strv_length(old) : 0;
		char **values = g_new0(char *, n + 2);

		for (guint j = 0; j < n; j++)
			values[j] = g_strdup(old[j]);
		values[n] = g_strdup(pairs[i + 1]);
		g_hash_table_insert(attrs, g_strdup(pairs[i]), values);
	}
	return attrs;
}

static const char *const babs[] = {
	"objectclass", "top",
	"objectclass", "person",
	"objectclass", "inetMailUser",
	"cn", "Babs Jensen",
	"cn", "Barbara Jensen",
	"sn", "Jensen",
	"mail", "babs@Example.COM",
	"uidnumber", "100",
	"description", "Lu\xc4\x8di\xc4\x87",
	"raw", "\xff\xfe",
	NULL,
};

typedef struct {
	const char *filter;
	gboolean match;
} MatchCase;

static const MatchCase match_cases[] = {
	/* Equality ignores case, on every value. */
	{ "(cn=babs jensen)", TRUE },
	{ "(cn=BARBARA JENSEN)", TRUE },
	{ "(cn=Babs)", FALSE },
	{ "(mail=BABS@example.com)", TRUE },
	{ "(objectClass=inetmailuser)", TRUE },
	{ "(objectClass=inetMailGroup)", FALSE },
	{ "(seeAlso=x)", FALSE },
	{ "(cn;lang-en=babs jensen)", TRUE },
	/* Presence. */
	{ "(cn=*)", TRUE },
	{ "(seeAlso=*)", FALSE },
	/* Substrings. */
	{ "(cn=Babs*)", TRUE },
	{ "(cn=*jensen)", TRUE },
	{ "(cn=*arb*)", TRUE },
	{ "(cn=B*a*J*n)", TRUE },
	{ "(cn=Babs*Babs)", FALSE },
	{ "(cn=*x*)", FALSE },
	{ "(sn=Jen*sen)", TRUE },
	{ "(sn=Jensen*sen)", FALSE },
	{ "(sn=*en*en*)", TRUE },
	{ "(sn=*en*en*en*)", FALSE },
	{ "(sn=J*s*n)", TRUE },
	{ "(sn=*nse*)", TRUE },
	{ "(seeAlso=*x*)", FALSE },
	/* Ordering: numeric when both sides are integers. */
	{ "(uidNumber>=99)", TRUE },
	{ "(uidNumber>=100)", TRUE },
	{ "(uidNumber>=101)", FALSE },
	{ "(uidNumber>=20)", TRUE },
	{ "(uidNumber<=20)", FALSE },
	{ "(uidNumber<=100)", TRUE },
	{ "(uidNumber>=-5)", TRUE },
	{ "(sn>=jensen)", TRUE },
	{ "(sn<=JENSEN)", TRUE },
	{ "(sn>=k)", FALSE },
	{ "(sn<=k)", TRUE },
	{ "(seeAlso>=a)", FALSE },
	/* Approximate is equality without case. */
	{ "(sn~=JENSEN)", TRUE },
	{ "(sn~=Jenson)", FALSE },
	/* Boolean operators. */
	{ "(&(objectClass=person)(sn=jensen))", TRUE },
	{ "(&(objectClass=person)(sn=x))", FALSE },
	{ "(|(sn=x)(cn=barbara jensen))", TRUE },
	{ "(|(sn=x)(cn=y))", FALSE },
	{ "(!(sn=jensen))", FALSE },
	{ "(!(seeAlso=x))", TRUE },
	{ "(&)", TRUE },
	{ "(|)", FALSE },
	{ "(&(|(sn=x)(sn=jensen))(!(cn=nobody)))", TRUE },
	/* Escapes and non-ASCII values. */
	{ "(description=LU\\c4\\8cI\\c4\\86)", TRUE },
	{ "(description=lu\xc4\x8d*)", TRUE },
	{ "(bin=\\00)", FALSE },
	{ "(cn=babs\\00 jensen)", FALSE },
	{ "(raw=\\ff\\fe)", TRUE },
	{ "mail=babs@example.com", TRUE },
};

static void
test_match(void)
{
	g_autoptr(GHashTable) attrs = make_attributes(babs);

	for (guint i = 0; i < G_N_ELEMENTS(match_cases); i++) {
		const MatchCase *c = &match_cases[i];
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaLdapFilter) filter = imta_ldap_filter_parse(c->filter, &error);

		g_test_message("filter %s", c->filter);
		g_assert_no_error(error);
		g_assert_cmpint(imta_ldap_filter_match(filter, attrs), ==, c->match);
	}
}

static void
test_match_no_attributes(void)
{
	g_autoptr(ImtaLdapFilter) not = imta_ldap_filter_parse("(!(cn=x))", NULL);
	g_autoptr(ImtaLdapFilter) present = imta_ldap_filter_parse("(cn=*)", NULL);

	g_assert_true(imta_ldap_filter_match(not, NULL));
	g_assert_false(imta_ldap_filter_match(present, NULL));
}

typedef struct {
	const char *value;
	const char *escaped;
} EscapeCase;

static const EscapeCase escape_cases[] = {
	{ "plain", "plain" },
	{ "a*(b)\\", "a\\2a\\28b\\29\\5c" },
	{ "tab\there", "tab\\09here" },
	{ "", "" },
};

static void
test_escape(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(escape_cases); i++) {
		g_autofree char *escaped = imta_ldap_filter_escape(escape_cases[i].value);
		g_autofree char *text = g_strdup_printf("(uid=%s)", escaped);
		g_autoptr(ImtaLdapFilter) filter = NULL;
		g_autoptr(GHashTable) attrs = NULL;
		const char *pairs[] = { "uid", escape_cases[i].value, NULL };

		g_assert_cmpstr(escaped, ==, escape_cases[i].escaped);
		/* An escaped value round-trips to an exact match. */
		filter = imta_ldap_filter_parse(text, NULL);
		g_assert_nonnull(filter);
		attrs = make_attributes(pairs);
		g_assert_true(imta_ldap_filter_match(filter, attrs));
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/ldap-filter/parse/canonical", test_parse_canonical);
	g_test_add_func("/ldap-filter/parse/kinds", test_parse_kinds);
	g_test_add_func("/ldap-filter/parse/errors", test_parse_errors);
	g_test_add_func("/ldap-filter/parse/depth", test_parse_depth);
	g_test_add_func("/ldap-filter/match/operators", test_match);
	g_test_add_func("/ldap-filter/match/no-attributes", test_match_no_attributes);
	g_test_add_func("/ldap-filter/escape", test_escape);
	return g_test_run();
}
