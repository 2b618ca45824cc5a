/*
 * test-rewrite.c - the rewrite engine: host specs, the rule search order,
 * substitutions, conditions, forms, passes, routing, traces.
 */
#include "config.h"

#include <string.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/rewrite.h>
#include <imta/imta_cnf.h>
#include <imta/mappings.h>
#include <imta/directory.h>

/* The channel table every case uses (part 2 of imta.cnf). */
static const char channel_table[] =
	"l\n"
	"mail.example.com\n"
	"\n"
	"tcp_local smtp mx\n"
	"tcp-daemon\n"
	"\n"
	"tcp_intranet smtp mx\n"
	"tcp_intranet-daemon\n"
	"\n"
	"tcp_siroe smtp\n"
	"tcp_siroe-daemon\n"
	"\n"
	"tcp_acme smtp\n"
	"mail.acme.com\n"
	"\n"
	"lmtpcs\n"
	"lmtpcs-daemon\n"
	"\n"
	"verify\n"
	"verify-daemon\n"
	"\n"
	"reprocess\n"
	"reprocess-daemon\n"
	"\n"
	"tcp_gw smtp routelocal\n"
	"gw-daemon\n"
	"gw.example.com\n"
	"\n"
	"uucp bangoverpercent\n"
	"uucp-daemon\n"
	"\n"
	"tcp_nr smtp norules\n"
	"norules-daemon\n";

/* Our example rule set of imta.cnf(5). */
static const char example_rules[] =
	"! l channel official host is mail.example.com\n"
	"$*                    $A$E$F$U%$H$V$H@mail.example.com\n"
	"mail.example.com      $U%$D@mail.example.com\n"
	".corp.example.com     $U%$H$D@tcp_intranet-daemon\n"
	"[]                    $E$R${INTERNAL_IP,$L}$U%[$L]@tcp_intranet-daemon\n"
	".lmtp                 $E$F$U%$H.lmtp@lmtpcs-daemon\n"
	"! everything else: tcp_local, whose official host name is tcp-daemon\n"
	".                     $U%$H@tcp-daemon\n";

#define ENV_TO   (IMTA_REWRITE_ENVELOPE | IMTA_REWRITE_FORWARD)
#define ENV_FROM (IMTA_REWRITE_ENVELOPE)
#define HDR_TO   (IMTA_REWRITE_FORWARD)
#define HDR_FROM 0u

#define RW_OK (-1)

typedef struct {
	const char *rules;        /* part 1 of imta.cnf */
	const char *source;       /* source channel; NULL = l */
	guint flags;
	const char *address;
	const char *want;         /* the rewritten address, or the error message */
	const char *channel;      /* the destination channel (when no error) */
	gint code;                /* RW_OK, or the IMTA_REWRITE_ERROR_* code */
	const char *destination;  /* destination channel for $Q / $C */
} RwRow;

static ImtaCnf *
cnf_with_rules(const char *rules)
{
	gboolean newline = *rules != '\0' && !g_str_has_suffix(rules, "\n");
	g_autofree char *text = g_strconcat(rules, newline ? "\n" : "", "\n", channel_table, NULL);
	g_autoptr(GError) error = NULL;
	ImtaCnf *cnf = imta_cnf_parse_text("imta.cnf", text, strlen(text), NULL, &error);

	g_assert_no_error(error);
	g_assert_nonnull(cnf);
	return cnf;
}

typedef struct {
	const ImtaMappings *mappings;
	ImtaDirectory *directory;
} RwWorld;

static void
check_row(const RwRow *row, const RwWorld *world)
{
	g_autoptr(ImtaCnf) cnf = cnf_with_rules(row->rules);
	g_autoptr(GError) error = NULL;
	g_autoptr(GString) trace = g_string_new(NULL);
	ImtaRewriteContext ctx = {
		.cnf = cnf,
		.mappings = world != NULL ? world->mappings : NULL,
		.directory = world != NULL ? world->directory : NULL,
		.source_channel = row->source,
		.flags = row->flags,
		.trace = trace,
		.destination_channel = row->destination,
	};
	ImtaRewriteResult result;
	gboolean ok = imta_rewrite_address(&ctx, row->address, &result, &error);

	if (g_test_verbose())
		g_printerr("%s", trace->str);
	if (row->code == RW_OK) {
		if (error != NULL)
			g_printerr("%s\n%s\n", row->address, trace->str);
		g_assert_no_error(error);
		g_assert_true(ok);
		g_assert_cmpstr(result.address, ==, row->want);
		g_assert_nonnull(result.channel);
		g_assert_cmpstr(result.channel->name, ==, row->channel);
	} else {
		if (error == NULL)
			g_printerr("%s -> %s on %s\n%s\n", row->address, result.address,
				   result.channel->name, trace->str);
		g_assert_error(error, IMTA_REWRITE_ERROR, row->code);
		g_assert_false(ok);
		g_assert_cmpstr(error->message, ==, row->want);
		g_assert_null(result.address);
		g_assert_null(result.channel);
	}
	imta_rewrite_result_clear(&result);
}

static void
check_rows(const RwRow *rows, gsize n, const RwWorld *world)
{
	for (gsize i = 0; i < n; i++) {
		if (g_test_verbose())
			g_printerr("row %zu: %s\n", i, rows[i].address);
		check_row(&rows[i], world);
	}
}

#define CHECK_ROWS(rows) check_rows(rows, G_N_ELEMENTS(rows), NULL)

/* Rewrite once with a trace; returns the trace, fills *result. */
static char *
rewrite_traced_cnf(const ImtaCnf *cnf, const char *source, guint flags, const char *address,
		   ImtaRewriteResult *result, GError **error)
{
	GString *trace = g_string_new(NULL);
	ImtaRewriteContext ctx = {
		.cnf = cnf, .source_channel = source, .flags = flags, .trace = trace,
	};

	imta_rewrite_address(&ctx, address, result, error);
	return g_string_free(trace, FALSE);
}

static char *
rewrite_traced(const char *rules, const char *source, guint flags, const char *address,
	       ImtaRewriteResult *result, GError **error)
{
	g_autoptr(ImtaCnf) cnf = cnf_with_rules(rules);
	char *trace = rewrite_traced_cnf(cnf, source, flags, address, result, error);

	result->rule = NULL;    /* it belonged to cnf */
	return trace;
}

/* The "try" lines of a trace, joined by spaces. */
static char *
trace_probes(const char *trace)
{
	g_auto(GStrv) lines = g_strsplit(trace, "\n", -1);
	GString *out = g_string_new(NULL);

	for (guint i = 0; lines[i] != NULL; i++) {
		if (!g_str_has_prefix(lines[i], "try "))
			continue;
		if (out->len > 0)
			g_string_append_c(out, ' ');
		g_string_append(out, lines[i] + 4);
	}
	return g_string_free(out, FALSE);
}

/* The first line of a trace that starts with `prefix`. */
static char *
trace_line(const char *trace, const char *prefix)
{
	g_auto(GStrv) lines = g_strsplit(trace, "\n", -1);

	for (guint i = 0; lines[i] != NULL; i++)
		if (g_str_has_prefix(lines[i], prefix))
			return g_strdup(lines[i]);
	return NULL;
}

/* ---- step 1: host specs ------------------------------------------------ */

static void
test_extract(void)
{
	static const struct {
		const char *address, *source, *pass1;
	} rows[] = {
		{ "@a,@b:u@c.d", NULL, "pass 1: @a,@b:u@c.d, host spec a (source route)" },
		{ "u%A@B", NULL, "pass 1: u%A@B, host spec B (right of @)" },
		{ "u%A", NULL, "pass 1: u%A, host spec A (right of %)" },
		{ "A!u@B", NULL, "pass 1: A!u@B, host spec B (right of @)" },
		{ "A!u%B", NULL, "pass 1: A!u%B, host spec B (right of %)" },
		{ "A!u%B", "uucp", "pass 1: A!u%B, host spec A (left of !)" },
		{ "A!u", NULL, "pass 1: A!u, host spec A (left of !)" },
		{ "u%A%B", NULL, "pass 1: u%A%B, host spec B (right of %)" },
		{ "A!B!u", NULL, "pass 1: A!B!u, host spec A (left of !)" },
		{ "a%%b%C", NULL, "pass 1: a%%b%C, host spec C (right of %)" },
		{ "\"a%b\"@c.org", NULL, "pass 1: \"a%b\"@c.org, host spec c.org (right of @)" },
		{ "a%%b", NULL, "pass 1: a%%b@mail.example.com, host spec mail.example.com "
			"(right of @)" },
		{ "postmaster", NULL, "pass 1: postmaster@mail.example.com, host spec "
			"mail.example.com (right of @)" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		ImtaRewriteResult result;
		g_autoptr(GError) error = NULL;
		g_autofree char *trace = rewrite_traced(". $U%$H@tcp-daemon", rows[i].source,
							 ENV_TO, rows[i].address, &result, &error);
		g_autofree char *line = trace_line(trace, "pass 1:");

		g_assert_no_error(error);
		g_assert_cmpstr(line, ==, rows[i].pass1);
		imta_rewrite_result_clear(&result);
	}
}

/* ---- step 2: probe orders ---------------------------------------------- */

static void
test_walk_probes(void)
{
	static const struct {
		const char *rules, *address, *probes;
	} rows[] = {
		/* imta.cnf(5): the documented order for sc.cs.siroe.edu. */
		{ "", "u@sc.cs.siroe.edu", "$* sc.cs.siroe.edu *.cs.siroe.edu .cs.siroe.edu "
			"*.*.siroe.edu .siroe.edu *.*.*.edu .edu *.*.*.* ." },
		{ "", "dan@[128.6.3.40]", "$* [128.6.3.40] [128.6.3.] [128.6.] [128.] [] "
			"[*.*.*.*] ." },
		{ "", "u@localhost", "$* localhost * ." },
		{ "", "u%b.c", "$* b.c *.c .c *.* $% ." },
		{ "", "b.c!u", "$* b.c *.c .c *.* $! ." },
		{ "", "u@[IPv6:2001:db8::1]", "$* [IPv6:2001:db8::1] [IPv6:2001:db8::] "
			"[IPv6:2001:db8:] [IPv6:2001:] [IPv6:] [] [*:*:*::*] ." },
		/* A match ends the walk. */
		{ ".siroe.edu $U%$H$D@tcp-daemon", "u@sc.cs.siroe.edu",
			"$* sc.cs.siroe.edu *.cs.siroe.edu .cs.siroe.edu *.*.siroe.edu "
			".siroe.edu" },
		/* A channel host name stops the search before the walk. */
		{ "", "u@tcp-daemon", "$* tcp-daemon" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		ImtaRewriteResult result;
		g_autoptr(GError) error = NULL;
		g_autofree char *trace = rewrite_traced(rows[i].rules, NULL, ENV_TO,
							 rows[i].address, &result, &error);
		g_autofree char *probes = trace_probes(trace);

		g_assert_cmpstr(probes, ==, rows[i].probes);
		imta_rewrite_result_clear(&result);
	}
}

/* The whole trace of the example in imta.cnf(5) section 7. */
static void
test_example_trace(void)
{
	static const char want[] =
		"rewriting bob@pc7.corp.example.com (source channel tcp_local, envelope, "
		"forward)\n"
		"pass 1: bob@pc7.corp.example.com, host spec pc7.corp.example.com "
		"(right of @)\n"
		"try $*\n"
		"  rule 1 at imta.cnf:2: $* -> $A$E$F$U%$H$V$H@mail.example.com\n"
		"  skipped: $V condition: pc7.corp.example.com is not a local domain\n"
		"try pc7.corp.example.com\n"
		"channel table: pc7.corp.example.com not found\n"
		"try *.corp.example.com\n"
		"try .corp.example.com\n"
		"  rule 3 at imta.cnf:4: .corp.example.com -> $U%$H$D@tcp_intranet-daemon\n"
		"  output: bob%pc7.corp.example.com@tcp_intranet-daemon\n"
		"routing host tcp_intranet-daemon: channel tcp_intranet\n"
		"result: bob@pc7.corp.example.com on channel tcp_intranet\n";
	g_autoptr(ImtaCnf) cnf = cnf_with_rules(example_rules);
	ImtaRewriteResult result;
	g_autoptr(GError) error = NULL;
	g_autofree char *trace = rewrite_traced_cnf(cnf, "tcp_local", ENV_TO,
						     "bob@pc7.corp.example.com", &result, &error);

	g_assert_no_error(error);
	g_assert_cmpstr(trace, ==, want);
	g_assert_cmpstr(result.routing_host, ==, "tcp_intranet-daemon");
	g_assert_nonnull(result.rule);
	g_assert_cmpstr(result.rule->pattern, ==, ".corp.example.com");
	g_assert_null(result.tag);
	imta_rewrite_result_clear(&result);
}

/* Skipped rules and route stripping in the trace. */
static void
test_trace_lines(void)
{
	static const struct {
		const char *rules, *source, *address, *prefix, *line;
	} rows[] = {
		{ "acme.com $U@mail.acme.com$Nverify\nacme.com $U%acme.com@verify-daemon",
		  "verify", "u@acme.com", "  skipped:",
		  "  skipped: $N condition: the source channel is verify" },
		{ "acme.com $U@mail.acme.com$Nverify", NULL, "u@acme.com", "  rule",
		  "  rule 1 at imta.cnf:1: acme.com -> $U@mail.acme.com$Nverify" },
		{ "", NULL, "@mail.example.com:u@tcp-daemon", "routing host",
		  "routing host mail.example.com is channel l: removing mail.example.com, "
		  "continuing with u@tcp-daemon" },
		{ "", NULL, "u@nowhere.org", "no rule",
		  "no rule: nowhere.org is used as domain and routing host" },
		{ "", NULL, "u@nowhere.org", "unroutable",
		  "unroutable: illegal host/domain: nowhere.org" },
		{ "a.com $E$F$U%$D@tcp-daemon", NULL, "u@a.com", "  skipped",
		  "  skipped: $E condition: the address is from a header" },
		{ "a.com $U%$D@tcp-daemon$=x", NULL, "u@a.com", "  skipped",
		  "  skipped: $= (LDAP filter quoting) is not supported" },
		{ "a.com $U%$D@tcp-daemon$Sx", NULL, "u@a.com", "  skipped",
		  "  skipped: $S/$A/$P/$X condition: the host came from elsewhere" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		ImtaRewriteResult result;
		g_autoptr(GError) error = NULL;
		g_autofree char *trace = rewrite_traced(rows[i].rules, rows[i].source, HDR_TO,
							 rows[i].address, &result, &error);
		g_autofree char *line = trace_line(trace, rows[i].prefix);

		g_assert_cmpstr(line, ==, rows[i].line);
		imta_rewrite_result_clear(&result);
	}
}

/* ---- reference examples ------------------------------------------------ */

static const RwRow example_rows[] = {
	/* imta.cnf(5) step 3. */
	{ "host.siroe.com  $U%$1D@TCP-DAEMON", NULL, ENV_TO, "jdoe@host.siroe.com",
	  "jdoe@siroe.com", "tcp_local", RW_OK },
	/* The documented rule of seed 001. */
	{ "siroe.com  $U%$D@tcp_siroe-daemon", NULL, ENV_TO, "fred@siroe.com",
	  "fred@siroe.com", "tcp_siroe", RW_OK },
	{ "siroe.com  $U%$D@tcp_siroe-daemon", NULL, ENV_TO, "Fred@SIROE.Com",
	  "Fred@SIROE.Com", "tcp_siroe", RW_OK },
	{ "siroe.com  $U%$D@tcp_siroe-daemon", NULL, ENV_TO, "fred@a.siroe.com",
	  "illegal host/domain: a.siroe.com", NULL, IMTA_REWRITE_ERROR_UNROUTABLE },
	/* Section 7, without a directory ($V fails) or mappings. */
	{ example_rules, NULL, ENV_TO, "bob@pc7.corp.example.com",
	  "bob@pc7.corp.example.com", "tcp_intranet", RW_OK },
	{ example_rules, NULL, ENV_TO, "alice@mail.example.com",
	  "alice@mail.example.com", "l", RW_OK },
	{ example_rules, NULL, ENV_TO, "u@host.lmtp", "u@host.lmtp", "lmtpcs", RW_OK },
	{ example_rules, NULL, HDR_TO, "u@host.lmtp", "u@host.lmtp", "tcp_local", RW_OK },
	{ example_rules, NULL, ENV_TO, "u@remote.org", "u@remote.org", "tcp_local", RW_OK },
	{ example_rules, NULL, ENV_FROM, "x@[10.1.2.3]", "x@[10.1.2.3]", "tcp_local", RW_OK },
	{ example_rules, NULL, ENV_TO, "@mail.example.com:u@remote.org", "u@remote.org",
	  "tcp_local", RW_OK },
	{ example_rules, NULL, ENV_TO, "u%remote.org@mail.example.com", "u@remote.org",
	  "tcp_local", RW_OK },
	{ example_rules, NULL, ENV_TO, "postmaster", "postmaster@mail.example.com", "l",
	  RW_OK },
};

static void
test_examples(void)
{
	CHECK_ROWS(example_rows);
}

/* ---- step 2: which rule --------------------------------------------- */

static const RwRow order_rows[] = {
	/* "$*" is tried first, wherever it stands. */
	{ "example.org $U%$D@tcp_intranet-daemon\n$* $U%$H@tcp_siroe-daemon", NULL, ENV_TO,
	  "u@example.org", "u@example.org", "tcp_siroe", RW_OK },
	{ "example.org $U%$D@tcp_intranet-daemon\n$* $U%$H@tcp_siroe-daemon$Nl", NULL,
	  ENV_TO, "u@example.org", "u@example.org", "tcp_intranet", RW_OK },
	/* An exact rule beats the channel table... */
	{ "tcp-daemon $U%elsewhere.org@tcp_intranet-daemon", NULL, ENV_TO, "u@tcp-daemon",
	  "u@elsewhere.org", "tcp_intranet", RW_OK },
	/* ...which beats the walk and ".". */
	{ ".example.com $U%$H$D@tcp_siroe-daemon", NULL, ENV_TO, "u@gw.example.com",
	  "u@gw.example.com", "tcp_gw", RW_OK },
	{ ".example.com $U%$H$D@tcp_siroe-daemon", NULL, ENV_TO, "u@other.example.com",
	  "u@other.example.com", "tcp_siroe", RW_OK },
	{ ". $U%$H@tcp-daemon", NULL, ENV_TO, "u@TCP_Intranet-Daemon",
	  "u@TCP_Intranet-Daemon", "tcp_intranet", RW_OK },
	/* Identical patterns: the first in the file. */
	{ "a.com $U%$D@tcp_intranet-daemon\nA.COM $U%$D@tcp_siroe-daemon", NULL, ENV_TO,
	  "u@a.com", "u@a.com", "tcp_intranet", RW_OK },
	/* The walk order decides between patterns. */
	{ ".b.com $U%$H$D@tcp_intranet-daemon\n*.b.com $U%$D@tcp_siroe-daemon", NULL,
	  ENV_TO, "u@a.b.com", "u@a.b.com", "tcp_siroe", RW_OK },
	{ ".b.com $U%$H$D@tcp_intranet-daemon\n. $U%$H@tcp-daemon", NULL, ENV_TO,
	  "u@b.com", "u@b.com", "tcp_local", RW_OK },
	{ "*.*.com $U%$D@tcp_siroe-daemon\n. $U%$H@tcp-daemon", NULL, ENV_TO,
	  "u@a.b.com", "u@a.b.com", "tcp_siroe", RW_OK },
	{ "*.*.com $U%$D@tcp_siroe-daemon\n. $U%$H@tcp-daemon", NULL, ENV_TO,
	  "u@b.com", "u@b.com", "tcp_local", RW_OK },
	/* Case-insensitive patterns, case kept in the output. */
	{ ".Corp.Example.COM $U%$H$D@tcp_intranet-daemon", NULL, ENV_TO,
	  "Bob@PC7.corp.EXAMPLE.com",
	  "Bob@PC7.corp.EXAMPLE.com", "tcp_intranet", RW_OK },
	/* No rule at all: the spec routes itself. */
	{ "", NULL, ENV_TO, "u@tcp_siroe-daemon", "u@tcp_siroe-daemon", "tcp_siroe", RW_OK },
	{ "", NULL, ENV_TO, "u@nowhere.org", "illegal host/domain: nowhere.org", NULL,
	  IMTA_REWRITE_ERROR_UNROUTABLE },
	/* The "$%" and "$!" fallbacks, only for their forms, before ".". */
	{ "$% $U%$H@tcp_intranet-daemon\n. $U%$H@tcp-daemon", NULL, ENV_TO, "u%remote.org",
	  "u@remote.org", "tcp_intranet", RW_OK },
	{ "$% $U%$H@tcp_intranet-daemon\n. $U%$H@tcp-daemon", NULL, ENV_TO, "u@remote.org",
	  "u@remote.org", "tcp_local", RW_OK },
	{ "$! $U%$H@uucp-daemon\n. $U%$H@tcp-daemon", NULL, ENV_TO, "remote!u",
	  "u@remote", "uucp", RW_OK },
	{ "[10.] $U%[$L]@tcp_intranet-daemon\n[] $U%$D@tcp-daemon", NULL, ENV_TO,
	  "u@[10.1.2.3]", "u@[1.2.3]", "tcp_intranet", RW_OK },
	{ "[10.] $U%[$L]@tcp_intranet-daemon\n[] $U%[$L]@tcp-daemon", NULL, ENV_TO,
	  "u@[192.0.2.1]", "u@[192.0.2.1]", "tcp_local", RW_OK },
};

static void
test_order(void)
{
	CHECK_ROWS(order_rows);
}

/* ---- step 3: substitutions ----------------------------------------------- */

static const RwRow subst_rows[] = {
	{ "host.siroe.com $U%$2D@tcp-daemon", NULL, ENV_TO, "u@host.siroe.com", "u@com",
	  "tcp_local", RW_OK },
	{ ".example.com $U%$1H$D@tcp-daemon", NULL, ENV_TO, "u@a.b.example.com",
	  "u@b.example.com", "tcp_local", RW_OK },
	{ ".example.com $U%$1D@tcp-daemon", NULL, ENV_TO, "u@a.b.example.com",
	  "u@com", "tcp_local", RW_OK },
	{ ".example.com $U+$&0+$!0%x.org@tcp-daemon", NULL, ENV_TO, "u@a.b.c.example.com",
	  "u+a+c@x.org", "tcp_local", RW_OK },
	{ ".example.com $U+$&7%x.org@tcp-daemon", NULL, ENV_TO, "u@a.b.example.com",
	  "u+@x.org", "tcp_local", RW_OK },
	{ "*.*.example.com $U%$!0-$&0.example.com@tcp-daemon", NULL, ENV_TO,
	  "u@a.b.example.com", "u@b-a.example.com", "tcp_local", RW_OK },
	{ ".corp.example.com $U%$*0.$#0@tcp-daemon", NULL, ENV_TO, "u@pc.corp.example.com",
	  "u@corp.com", "tcp_local", RW_OK },
	{ ". $0U%$H@tcp-daemon", NULL, ENV_TO, "bob+folder@x.org", "bob@x.org", "tcp_local",
	  RW_OK },
	{ ". $1U-$0U%$H@tcp-daemon", NULL, ENV_TO, "bob+folder@x.org", "folder-bob@x.org",
	  "tcp_local", RW_OK },
	{ ". $1U$0U%$H@tcp-daemon", NULL, ENV_TO, "bob@x.org", "bob@x.org", "tcp_local",
	  RW_OK },
	{ "[10.] $U%$D@tcp-daemon", NULL, ENV_TO, "u@[10.1.2.3]", "u@[10.]", "tcp_local",
	  RW_OK },
	{ "[] $U%[$L]@tcp_intranet-daemon", NULL, ENV_TO, "u@[10.1.2.3]", "u@[10.1.2.3]",
	  "tcp_intranet", RW_OK },
	{ "[*.*.*.*] $U%$!0.$&0@tcp-daemon", NULL, ENV_TO, "u@[10.1.2.3]", "u@3.10",
	  "tcp_local", RW_OK },
	{ ". $U$$x$%y$@z%$H@tcp-daemon", NULL, ENV_TO, "u@x.org", "u$x%y@z@x.org",
	  "tcp_local", RW_OK },
	{ ". $\\$U%$^$H@tcp-daemon", NULL, ENV_TO, "Bob@Example.Org", "bob@EXAMPLE.ORG",
	  "tcp_local", RW_OK },
	{ ". $^$U$_%$H@tcp-daemon", NULL, ENV_TO, "Bob@Example.Org", "BOB@Example.Org",
	  "tcp_local", RW_OK },
	{ ". $U%$^mx.$\\$H.NET$_@tcp-daemon", NULL, ENV_TO, "u@Example.Org",
	  "u@MX.example.org.net", "tcp_local", RW_OK },
	/* "." : $H is the whole host, $D is ".". */
	{ ". $U%$H$Dfoo@tcp-daemon", NULL, ENV_TO, "u@x.org", "u@x.org.foo", "tcp_local",
	  RW_OK },
	{ "$* $U%$H@tcp_siroe-daemon", NULL, ENV_TO, "u@x.org", "u@x.org", "tcp_siroe",
	  RW_OK },
	{ "$* $U%$D@tcp_siroe-daemon", NULL, ENV_TO, "u%a@x.org", "u%a@x.org", "tcp_siroe",
	  RW_OK },
	/* $U of a bang or percent form is what remains of the local part. */
	{ "$! $U%$H@uucp-daemon", "uucp", ENV_TO, "host!a%b", "a%b@host", "uucp", RW_OK },
};

static void
test_substitutions(void)
{
	CHECK_ROWS(subst_rows);
}

static void
test_random_unique(void)
{
	g_autoptr(ImtaCnf) cnf = cnf_with_rules(". $U-$W%$H@tcp-daemon");
	ImtaRewriteContext ctx = { .cnf = cnf, .flags = ENV_TO };
	ImtaRewriteResult a, b;
	g_autoptr(GError) error = NULL;

	g_assert_true(imta_rewrite_address(&ctx, "u@x.org", &a, &error));
	g_assert_no_error(error);
	g_assert_true(imta_rewrite_address(&ctx, "u@x.org", &b, &error));
	g_assert_no_error(error);
	g_assert_true(g_str_has_prefix(a.address, "u-"));
	g_assert_true(g_str_has_suffix(a.address, "@x.org"));
	g_assert_cmpuint(strlen(a.address), >=, strlen("u-@x.org") + 16);
	g_assert_cmpstr(a.address, !=, b.address);
	imta_rewrite_result_clear(&a);
	imta_rewrite_result_clear(&b);
}

/* ---- conditions ------------------------------------------------------- */

#define FALLBACK "\n. $U%$H@tcp-daemon"

static const RwRow condition_rows[] = {
	{ "a.com $U%$D@tcp_intranet-daemon$E" FALLBACK, NULL, ENV_TO, "u@a.com", "u@a.com",
	  "tcp_intranet", RW_OK },
	{ "a.com $U%$D@tcp_intranet-daemon$E" FALLBACK, NULL, HDR_TO, "u@a.com", "u@a.com",
	  "tcp_local", RW_OK },
	{ "a.com $U%$D@tcp_intranet-daemon$B" FALLBACK, NULL, HDR_FROM, "u@a.com", "u@a.com",
	  "tcp_intranet", RW_OK },
	{ "a.com $U%$D@tcp_intranet-daemon$B" FALLBACK, NULL, ENV_FROM, "u@a.com", "u@a.com",
	  "tcp_local", RW_OK },
	{ "a.com $U%$D@tcp_intranet-daemon$F" FALLBACK, NULL, HDR_TO, "u@a.com", "u@a.com",
	  "tcp_intranet", RW_OK },
	{ "a.com $U%$D@tcp_intranet-daemon$F" FALLBACK, NULL, ENV_FROM, "u@a.com", "u@a.com",
	  "tcp_local", RW_OK },
	{ "a.com $U%$D@tcp_intranet-daemon$R" FALLBACK, NULL, ENV_FROM, "u@a.com", "u@a.com",
	  "tcp_intranet", RW_OK },
	{ "a.com $U%$D@tcp_intranet-daemon$R" FALLBACK, NULL, ENV_TO, "u@a.com", "u@a.com",
	  "tcp_local", RW_OK },
	/* imta.cnf(5): "siroe.com $U@mail.siroe.com$E$F" - envelope To only. */
	{ "acme.com $U@mail.acme.com$E$F" FALLBACK, NULL, ENV_TO, "u@acme.com",
	  "u@mail.acme.com", "tcp_acme", RW_OK },
	{ "acme.com $U@mail.acme.com$E$F" FALLBACK, NULL, HDR_TO, "u@acme.com",
	  "u@acme.com", "tcp_local", RW_OK },
	/* Where the host came from. */
	{ "a.com $U%$D@tcp_intranet-daemon$S" FALLBACK, NULL, ENV_TO, "@a.com:u@b.org",
	  "@a.com:u@b.org", "tcp_intranet", RW_OK },
	{ "a.com $U%$D@tcp_intranet-daemon$S" FALLBACK, NULL, ENV_TO, "u@a.com",
	  "u@a.com", "tcp_local", RW_OK },
	{ "a.com $U%$D@tcp_intranet-daemon$P" FALLBACK, NULL, ENV_TO, "u%a.com",
	  "u@a.com", "tcp_intranet", RW_OK },
	{ "a.com $U%$D@tcp_intranet-daemon$P" FALLBACK, NULL, ENV_TO, "u@a.com",
	  "u@a.com", "tcp_local", RW_OK },
	{ "a.com $U%$D@tcp_intranet-daemon$X" FALLBACK, NULL, ENV_TO, "a.com!u",
	  "u@a.com", "tcp_intranet", RW_OK },
	{ "a.com $A$P$U%$D@tcp_intranet-daemon" FALLBACK, NULL, ENV_TO, "u%a.com",
	  "u@a.com", "tcp_intranet", RW_OK },
	{ "a.com $A$P$U%$D@tcp_intranet-daemon" FALLBACK, NULL, ENV_TO, "a.com!u",
	  "u@a.com", "tcp_local", RW_OK },
	/* Source channel. */
	{ "a.com $U%$D@tcp_intranet-daemon$Mtcp_local" FALLBACK, "tcp_local", ENV_TO,
	  "u@a.com", "u@a.com", "tcp_intranet", RW_OK },
	{ "a.com $U%$D@tcp_intranet-daemon$Mtcp_local" FALLBACK, NULL, ENV_TO,
	  "u@a.com", "u@a.com", "tcp_local", RW_OK },
	{ "a.com $U%$D@tcp_intranet-daemon$Mtcp_local$Mtcp_siroe" FALLBACK, "tcp_siroe",
	  ENV_TO, "u@a.com", "u@a.com", "tcp_intranet", RW_OK },
	{ "a.com $U%$D@tcp_intranet-daemon$Ntcp_local$Ntcp_siroe" FALLBACK, "tcp_siroe",
	  ENV_TO, "u@a.com", "u@a.com", "tcp_local", RW_OK },
	{ "a.com $U%$D@tcp_intranet-daemon$Ntcp_local$Ntcp_siroe" FALLBACK, "l",
	  ENV_TO, "u@a.com", "u@a.com", "tcp_intranet", RW_OK },
	/* The loop-avoidance idiom. */
	{ "acme.com $U@mail.acme.com$Nverify\nacme.com $U%acme.com@verify-daemon", NULL,
	  ENV_TO, "u@acme.com", "u@mail.acme.com", "tcp_acme", RW_OK },
	{ "acme.com $U@mail.acme.com$Nverify\nacme.com $U%acme.com@verify-daemon", "verify",
	  ENV_TO, "u@acme.com", "u@acme.com", "verify", RW_OK },
	/* A norules source channel ignores $M and $N. */
	{ "a.com $U%$D@tcp_intranet-daemon$Ntcp_nr" FALLBACK, "tcp_nr", ENV_TO,
	  "u@a.com", "u@a.com", "tcp_intranet", RW_OK },
	{ "a.com $U%$D@tcp_intranet-daemon$Mtcp_local" FALLBACK, "tcp_nr", ENV_TO,
	  "u@a.com", "u@a.com", "tcp_intranet", RW_OK },
	/* Destination channel: checked only when known. */
	{ "a.com $U%$D@tcp_intranet-daemon$Qtcp_local" FALLBACK, NULL, HDR_TO,
	  "u@a.com", "u@a.com", "tcp_intranet", RW_OK, "tcp_local" },
	{ "a.com $U%$D@tcp_intranet-daemon$Qtcp_local" FALLBACK, NULL, HDR_TO,
	  "u@a.com", "u@a.com", "tcp_local", RW_OK, "tcp_siroe" },
	{ "a.com $U%$D@tcp_intranet-daemon$Qtcp_local" FALLBACK, NULL, ENV_TO,
	  "u@a.com", "u@a.com", "tcp_intranet", RW_OK, NULL },
	{ "a.com $U%$D@tcp_intranet-daemon$Ctcp_local" FALLBACK, NULL, HDR_TO,
	  "u@a.com", "u@a.com", "tcp_local", RW_OK, "tcp_local" },
	{ "a.com $U%$D@tcp_intranet-daemon$Ctcp_local" FALLBACK, NULL, HDR_TO,
	  "u@a.com", "u@a.com", "tcp_intranet", RW_OK, "tcp_siroe" },
	{ "a.com $U%$D@tcp_intranet-daemon$Ctcp_nr" FALLBACK, NULL, HDR_TO,
	  "u@a.com", "u@a.com", "tcp_intranet", RW_OK, "tcp_nr" },
	/* Internal reprocessing channels. */
	{ "a.com $U%$D@tcp_intranet-daemon$1M" FALLBACK, "reprocess", ENV_TO,
	  "u@a.com", "u@a.com", "tcp_intranet", RW_OK },
	{ "a.com $U%$D@tcp_intranet-daemon$1M" FALLBACK, "tcp_local", ENV_TO,
	  "u@a.com", "u@a.com", "tcp_local", RW_OK },
	{ "a.com $U%$D@tcp_intranet-daemon$1N" FALLBACK, "reprocess", ENV_TO,
	  "u@a.com", "u@a.com", "tcp_local", RW_OK },
	{ "a.com $U%$D@tcp_intranet-daemon$1N" FALLBACK, "tcp_local", ENV_TO,
	  "u@a.com", "u@a.com", "tcp_intranet", RW_OK },
	/* $1~: failing checks end the template there, successfully. */
	{ "a.com $U%$D@reprocess-daemon$Mtcp_local$1M$1~-error$?temporary-failure",
	  NULL, ENV_TO, "u@a.com", "u@a.com", "reprocess", RW_OK },
	{ "a.com $U%$D@reprocess-daemon$Mtcp_local$1M$1~-error$?temporary-failure",
	  "tcp_local", ENV_TO, "u@a.com", "temporary-failure", NULL,
	  IMTA_REWRITE_ERROR_UNROUTABLE },
	{ "a.com $U%$D@reprocess-daemon$Mtcp_local$1M$1~-error$?temporary-failure",
	  "reprocess", ENV_TO, "u@a.com", "temporary-failure", NULL,
	  IMTA_REWRITE_ERROR_UNROUTABLE },
	/* No directory: $V fails, $Z holds. */
	{ "a.com $U%$D@tcp_intranet-daemon$V$D" FALLBACK, NULL, ENV_TO, "u@a.com",
	  "u@a.com", "tcp_local", RW_OK },
	{ "a.com $U%$D@tcp_intranet-daemon$Z$D" FALLBACK, NULL, ENV_TO, "u@a.com",
	  "u@a.com", "tcp_intranet", RW_OK },
	/* Unsupported sequences skip the rule. */
	{ "a.com $U%$D@tcp_intranet-daemon$=x" FALLBACK, NULL, ENV_TO, "u@a.com",
	  "u@a.com", "tcp_local", RW_OK },
	{ "a.com $U%$(x)@tcp_intranet-daemon" FALLBACK, NULL, ENV_TO, "u@a.com",
	  "u@a.com", "tcp_local", RW_OK },
	{ "a.com $U%$[img,rtn,x]@tcp_intranet-daemon" FALLBACK, NULL, ENV_TO, "u@a.com",
	  "u@a.com", "tcp_local", RW_OK },
	{ "a.com $U%$]ldap:///o=x[@tcp_intranet-daemon" FALLBACK, NULL, ENV_TO, "u@a.com",
	  "u@a.com", "tcp_local", RW_OK },
	/* No mappings: a lookup fails. */
	{ "a.com $U%$D@tcp_intranet-daemon${T,$D}" FALLBACK, NULL, ENV_TO, "u@a.com",
	  "u@a.com", "tcp_local", RW_OK },
};

static void
test_conditions(void)
{
	CHECK_ROWS(condition_rows);
}

/* ---- forms, passes, routing ------------------------------------------- */

static const RwRow form_rows[] = {
	{ "a.com $U@tcp_intranet-daemon", NULL, ENV_TO, "u@a.com", "u@tcp_intranet-daemon",
	  "tcp_intranet", RW_OK },
	{ "a.com $U@$D@relay.a.com@tcp_intranet-daemon", NULL, ENV_TO, "u@a.com",
	  "@relay.a.com:u@a.com", "tcp_intranet", RW_OK },
	{ "a.com $U@$D@tcp_intranet-daemon", NULL, ENV_TO, "u@a.com",
	  "@tcp_intranet-daemon:u@a.com", "tcp_intranet", RW_OK },
	/* Meta rules rewrite again. */
	{ ".removable $U%$H" FALLBACK, NULL, ENV_TO, "u@x.org.removable", "u@x.org",
	  "tcp_local", RW_OK },
	{ ".removable $U%$H" FALLBACK, NULL, ENV_TO, "u@x.org.removable.removable",
	  "u@x.org", "tcp_local", RW_OK },
	{ "a.com $U%b.com\nb.com $U%$D@tcp_siroe-daemon", NULL, ENV_TO, "u@a.com",
	  "u@b.com", "tcp_siroe", RW_OK },
	{ "a.com $U%b.com\nb.com $U%a.com", NULL, ENV_TO, "u@a.com",
	  "rewriting u@a.com did not converge after 32 passes", NULL,
	  IMTA_REWRITE_ERROR_LOOP },
	{ ". $U%$H", NULL, ENV_TO, "u@x.org",
	  "rewriting u@x.org did not converge after 32 passes", NULL,
	  IMTA_REWRITE_ERROR_LOOP },
	{ ". $U%$H.x", NULL, ENV_TO, "u@x.org",
	  "rewriting u@x.org did not converge after 32 passes", NULL,
	  IMTA_REWRITE_ERROR_LOOP },
	/* Malformed forms. */
	{ "a.com $U%$D%x", NULL, ENV_TO, "u@a.com",
	  "imta.cnf:1:7: the template produced \"u%a.com%x\", which is none of the "
	  "forms A%B@C, A@C, A%B, A@B@C@D, A@B@C", NULL, IMTA_REWRITE_ERROR_TEMPLATE },
	{ "a.com tcp-daemon", NULL, ENV_TO, "u@a.com",
	  "imta.cnf:1:7: the template produced \"tcp-daemon\", which is none of the "
	  "forms A%B@C, A@C, A%B, A@B@C@D, A@B@C", NULL, IMTA_REWRITE_ERROR_TEMPLATE },
	{ "a.com $U%$K@x", NULL, ENV_TO, "u@a.com",
	  "imta.cnf:1:10: unknown template sequence \"$K\"", NULL,
	  IMTA_REWRITE_ERROR_TEMPLATE },
	{ "a.com $U%${T,$D@x", NULL, ENV_TO, "u@a.com",
	  "imta.cnf:1:10: expected '}' to end \"${\"", NULL, IMTA_REWRITE_ERROR_TEMPLATE },
	/* A malformed template is reported even when a condition skips it. */
	{ "a.com $E$U%$2U@x" FALLBACK, NULL, HDR_TO, "u@a.com",
	  "imta.cnf:1:12: expected $U, $0U or $1U, got \"$2U\"", NULL,
	  IMTA_REWRITE_ERROR_TEMPLATE },
	/* $?: the text of a failing channel lookup, sticky over passes. */
	{ "a.com $?No-such-domain", NULL, ENV_TO, "u@a.com", "No-such-domain", NULL,
	  IMTA_REWRITE_ERROR_UNROUTABLE },
	{ "a.com $U%$D@nowhere$?Unknown-domain", NULL, ENV_TO, "u@a.com", "Unknown-domain",
	  NULL, IMTA_REWRITE_ERROR_UNROUTABLE },
	{ "a.com $U%b.com$?Bad-b\nb.com $U%$D@nowhere", NULL, ENV_TO, "u@a.com", "Bad-b",
	  NULL, IMTA_REWRITE_ERROR_UNROUTABLE },
	{ "a.com $E", NULL, ENV_TO, "u@a.com", "illegal host/domain: a.com", NULL,
	  IMTA_REWRITE_ERROR_UNROUTABLE },
	{ "a.com $U%$D@", NULL, ENV_TO, "u@a.com", "illegal host/domain: ", NULL,
	  IMTA_REWRITE_ERROR_UNROUTABLE },
	/* Tags. */
	{ "a.com $U%b.com$Tstage2\nstage2|b.com $U%$D@tcp_intranet-daemon\n"
	  "b.com $U%$D@tcp_siroe-daemon", NULL, ENV_TO, "u@a.com", "u@b.com",
	  "tcp_intranet", RW_OK },
	{ "a.com $U%b.com$Tstage2|\nstage2|b.com $U%$D@tcp_intranet-daemon\n"
	  "b.com $U%$D@tcp_siroe-daemon", NULL, ENV_TO, "u@b.com", "u@b.com",
	  "tcp_siroe", RW_OK },
	{ "a.com $U%b.com$Tstage2\nSTAGE2|b.com $U%$D@tcp_intranet-daemon", NULL, ENV_TO,
	  "u@a.com", "u@b.com", "tcp_intranet", RW_OK },
	{ "a.com $U%b.com$Tx\nx|b.com $U%c.com$T\nc.com $U%$D@tcp_siroe-daemon", NULL,
	  ENV_TO, "u@a.com", "u@c.com", "tcp_siroe", RW_OK },
	/* A tagged walk still reaches the channel table. */
	{ "a.com $U%tcp-daemon$Tx", NULL, ENV_TO, "u@a.com", "u@tcp-daemon", "tcp_local",
	  RW_OK },
	/* The tag of a skipped rule does not stick. */
	{ "a.com $U%b.com$Tx$E\na.com $U%b.com\nx|b.com $U%$D@tcp_intranet-daemon\n"
	  "b.com $U%$D@tcp_siroe-daemon", NULL, HDR_TO, "u@a.com", "u@b.com", "tcp_siroe",
	  RW_OK },
};

static void
test_forms(void)
{
	CHECK_ROWS(form_rows);
}

static const RwRow route_rows[] = {
	{ "", NULL, ENV_TO, "u@mail.example.com", "u@mail.example.com", "l", RW_OK },
	{ "", NULL, ENV_TO, "U@MAIL.Example.COM", "U@MAIL.Example.COM", "l", RW_OK },
	{ FALLBACK + 1, NULL, ENV_TO, "@mail.example.com:u@remote.org", "u@remote.org",
	  "tcp_local", RW_OK },
	{ FALLBACK + 1, NULL, ENV_TO, "@mail.example.com,@relay.org:u@remote.org",
	  "@relay.org:u@remote.org", "tcp_local", RW_OK },
	{ FALLBACK + 1, NULL, ENV_TO, "u%remote.org@mail.example.com", "u@remote.org",
	  "tcp_local", RW_OK },
	{ FALLBACK + 1, NULL, ENV_TO, "remote.org!u@mail.example.com", "u@remote.org",
	  "tcp_local", RW_OK },
	{ FALLBACK + 1, NULL, ENV_TO, "u%a%remote.org@mail.example.com", "u%a@remote.org",
	  "tcp_local", RW_OK },
	/* A routelocal channel strips its routes too. */
	{ FALLBACK + 1, NULL, ENV_TO, "@gw.example.com:u@remote.org", "u@remote.org",
	  "tcp_local", RW_OK },
	/* A route through another system stays. */
	{ FALLBACK + 1, NULL, ENV_TO, "@relay.org:u@remote.org", "@relay.org:u@remote.org",
	  "tcp_local", RW_OK },
	{ "relay.org $U%$D@tcp_intranet-daemon" FALLBACK, NULL, ENV_TO,
	  "@relay.org:u@remote.org", "@relay.org:u@remote.org", "tcp_intranet", RW_OK },
	{ "relay.org $U%gw.relay.org@tcp_intranet-daemon", NULL, ENV_TO,
	  "@relay.org:u@remote.org", "@gw.relay.org:u@remote.org", "tcp_intranet", RW_OK },
	/* Stripping down to an unknown host. */
	{ "", NULL, ENV_TO, "u%x@mail.example.com", "illegal host/domain: x", NULL,
	  IMTA_REWRITE_ERROR_UNROUTABLE },
	/* "localhost" as a routing host is the l channel. */
	{ "hosted.org $U%$D@localhost", NULL, ENV_TO, "u@hosted.org", "u@hosted.org", "l",
	  RW_OK },
	{ "hosted.org $U%$D@LocalHost", NULL, ENV_TO, "u%x.org@hosted.org",
	  "illegal host/domain: x.org", NULL, IMTA_REWRITE_ERROR_UNROUTABLE },
	{ "", NULL, ENV_TO, "u@localhost", "u@localhost", "l", RW_OK },
	{ ". $U%$H@tcp-daemon", NULL, ENV_TO, "u@localhost", "u@localhost", "tcp_local", RW_OK },
	/* A bare local part is local. */
	{ "", NULL, ENV_TO, "postmaster", "postmaster@mail.example.com", "l", RW_OK },
	{ "", "uucp", ENV_TO, "a!u%b", "illegal host/domain: a", NULL,
	  IMTA_REWRITE_ERROR_UNROUTABLE },
	{ "", NULL, ENV_TO, "a!u%uucp-daemon", "a!u@uucp-daemon", "uucp", RW_OK },
};

static void
test_routes(void)
{
	CHECK_ROWS(route_rows);
}

/* Result fields besides the address and channel. */
static void
test_result_fields(void)
{
	g_autoptr(ImtaCnf) cnf = cnf_with_rules(
		"a.com $U%b.com$Tx$?note\nx|b.com $U%$D@localhost\n"
		"c.com $U%$D@tcp-daemon$?unused");
	ImtaRewriteContext ctx = { .cnf = cnf, .flags = ENV_TO };
	ImtaRewriteResult r;
	g_autoptr(GError) error = NULL;

	g_assert_true(imta_rewrite_address(&ctx, "u@a.com", &r, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(r.address, ==, "u@b.com");
	g_assert_cmpstr(r.channel->name, ==, "l");
	g_assert_cmpstr(r.routing_host, ==, "mail.example.com");
	g_assert_cmpstr(r.tag, ==, "x|");
	g_assert_cmpstr(r.error_text, ==, "note");
	g_assert_cmpstr(r.rule->pattern, ==, "x|b.com");
	imta_rewrite_result_clear(&r);

	g_assert_true(imta_rewrite_address(&ctx, "u@c.com", &r, &error));
	g_assert_cmpstr(r.routing_host, ==, "tcp-daemon");
	g_assert_cmpstr(r.error_text, ==, "unused");
	g_assert_null(r.tag);
	imta_rewrite_result_clear(&r);

	/* The implicit rule reports no rule. */
	g_assert_true(imta_rewrite_address(&ctx, "u@tcp-daemon", &r, &error));
	g_assert_null(r.rule);
	g_assert_cmpstr(r.routing_host, ==, "tcp-daemon");
	imta_rewrite_result_clear(&r);
	imta_rewrite_result_clear(&r);   /* clearing twice is harmless */
}

/* Callers may ignore the error: every failure path copes with NULL. */
static void
test_null_error(void)
{
	static const char *const addresses[] = {
		"u@nowhere.org", "u@loop.org", "u@bad.org", "u@@x", "u@text.org", "u@empty.org",
	};
	g_autoptr(ImtaCnf) cnf = cnf_with_rules("loop.org $U%loop.org\nbad.org $U%$K\n"
						 "text.org $U%$D@x$?no\nempty.org $E");
	g_autoptr(GString) trace = g_string_new(NULL);
	ImtaRewriteContext ctx = { .cnf = cnf, .flags = ENV_TO, .trace = trace };

	for (gsize i = 0; i < G_N_ELEMENTS(addresses); i++) {
		ImtaRewriteResult r;

		g_assert_false(imta_rewrite_address(&ctx, addresses[i], &r, NULL));
		g_assert_null(r.address);
	}
	g_assert_nonnull(strstr(trace->str, "\nloop: rewriting u@loop.org did not converge"));
	g_assert_nonnull(strstr(trace->str, "\nunroutable: no\n"));
	g_assert_nonnull(strstr(trace->str, "\naddress error: "));
}

static void
test_bad_addresses(void)
{
	static const char *const bad[] = { "", "u@", "@x", "u@@x.org", "u@x..org",
					   "a b@x.org" };
	g_autoptr(ImtaCnf) cnf = cnf_with_rules(". $U%$H@tcp-daemon");
	ImtaRewriteContext ctx = { .cnf = cnf, .flags = ENV_TO };

	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		ImtaRewriteResult r;
		g_autoptr(GError) error = NULL;

		g_assert_false(imta_rewrite_address(&ctx, bad[i], &r, &error));
		g_assert_nonnull(error);
		g_assert_true(error->domain == IMTA_ADDRESS_ERROR);
		g_assert_null(r.address);
	}
}

/* ---- imta_rewrite_check_rules ------------------------------------------ */

static void
test_check_rules(void)
{
	static const struct {
		const char *rules, *error;
	} rows[] = {
		{ example_rules, NULL },
		{ "a.com $U%$D@x$Mtcp_local$1M$1~-e$4000000?Temporary-failure", NULL },
		{ "a.com $U%$D@x${A,${B,$U}}$=y$(z)", NULL },
		{ "a.com $U%$K@x", "imta.cnf:1:10: unknown template sequence \"$K\"" },
		{ "a.com  $U%$u@x", "imta.cnf:1:11: unknown template sequence \"$u\"" },
		{ "! c\na.com $U%$D@x$", "imta.cnf:2:14: expected a sequence letter after '$' "
		  "at the end of the template" },
		{ "a.com $U%$&x@y", "imta.cnf:1:10: expected a digit after \"$&\"" },
		{ "a.com $U%$3L@y", "imta.cnf:1:10: the sequence \"$L\" takes no number" },
		{ "a.com $U%$2~@y", "imta.cnf:1:10: expected \"$1~\"" },
		{ "a.com $U%$2M@y", "imta.cnf:1:10: the sequence \"$M\" takes no number" },
		{ "a.com $U%${TABLE}@y", "imta.cnf:1:10: expected \"${table,string}\": no ',' "
		  "after the table name" },
		{ "a.com $U%${,x}@y",
		  "imta.cnf:1:10: expected a mapping table name after \"${\"" },
		{ "a.com $U%${T,$E}@y", "imta.cnf:1:14: a condition cannot appear inside "
		  "\"${...}\"" },
		{ "a.com $U%${A,${B,${C,${D,${E,x}}}}}@y", "imta.cnf:1:26: \"${\" nested more "
		  "than 4 deep" },
		{ "x| $U@y", "imta.cnf:1:3: expected a pattern after the tag \"x|\"" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(ImtaCnf) cnf = cnf_with_rules(rows[i].rules);
		g_autoptr(GError) error = NULL;
		gboolean ok = imta_rewrite_check_rules(cnf, &error);

		if (rows[i].error == NULL) {
			g_assert_no_error(error);
			g_assert_true(ok);
		} else {
			g_assert_false(ok);
			g_assert_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_SYNTAX);
			g_assert_cmpstr(error->message, ==, rows[i].error);
		}
	}
}

/* ---- mappings and the directory ---------------------------------------- */

static void
test_mappings(void)
{
	static const RwRow rows[] = {
		/* The switchchannel use of the "[]" rule. */
		{ example_rules, "tcp_local", ENV_FROM, "x@[10.1.2.3]", "x@[10.1.2.3]",
		  "tcp_intranet", RW_OK },
		{ example_rules, "tcp_local", ENV_FROM, "x@[127.0.0.1]", "x@[127.0.0.1]",
		  "tcp_intranet", RW_OK },
		{ example_rules, "tcp_local", ENV_FROM, "x@[192.0.2.7]", "x@[192.0.2.7]",
		  "tcp_local", RW_OK },
		{ example_rules, "tcp_local", ENV_TO, "x@[10.1.2.3]", "x@[10.1.2.3]",
		  "tcp_local", RW_OK },
		/* The entry's text is substituted. */
		{ ". $U%${DOMAINS,$H}@tcp-daemon", NULL, ENV_TO, "u@Old.Example",
		  "u@new.example", "tcp_local", RW_OK },
		{ ". $U%${DOMAINS,$H}@tcp-daemon\n$% $U%$H@tcp-daemon", NULL, ENV_TO,
		  "u%other.org",
		  "u@other.org", "tcp_local", RW_OK },
		{ ". $U%${DOMAINS,${DOMAINS,$H}}@tcp-daemon", NULL, ENV_TO, "u@very.old.example",
		  "u@new.example", "tcp_local", RW_OK },
		{ ". $U%${NOSUCH,$H}@tcp-daemon", NULL, ENV_TO, "u@old.example",
		  "illegal host/domain: old.example", NULL, IMTA_REWRITE_ERROR_UNROUTABLE },
	};
	static const char text[] =
		"INTERNAL_IP\n"
		"\n"
		"  $(10.0.0.0/8)  $Y\n"
		"  127.0.0.1  $Y\n"
		"  *  $N\n"
		"\n"
		"DOMAINS\n"
		"\n"
		"  old.example  new.example\n"
		"  very.old.example  old.example\n";
	GStringChunk *names = g_string_chunk_new(256);
	g_autoptr(GError) error = NULL;
	ImtaMappings *mappings = imta_mappings_parse_text("mappings", text, strlen(text), names,
							  &error);
	RwWorld world = { .mappings = mappings };

	g_assert_no_error(error);
	check_rows(rows, G_N_ELEMENTS(rows), &world);
	imta_mappings_free(mappings);
	g_string_chunk_free(names);
}

static const char directory_ldif[] =
	"dn: o=hosted.org,o=isp\n"
	"objectClass: organization\n"
	"objectClass: sunManagedOrganization\n"
	"objectClass: sunDelegatedOrganization\n"
	"o: hosted.org\n"
	"sunPreferredDomain: hosted.org\n"
	"\n"
	"dn: o=elsewhere.org,o=isp\n"
	"objectClass: organization\n"
	"objectClass: sunManagedOrganization\n"
	"objectClass: sunDelegatedOrganization\n"
	"o: elsewhere.org\n"
	"sunPreferredDomain: elsewhere.org\n"
	"mailRoutingHosts: other.example.net\n";

static void
test_directory(void)
{
	static const RwRow rows[] = {
		/* The hosted-domain rule of imta.cnf(5) section 6. */
		{ example_rules, "tcp_local", ENV_TO, "u@hosted.org", "u@hosted.org", "l", RW_OK },
		{ example_rules, "tcp_local", ENV_TO, "u@Hosted.ORG", "u@Hosted.ORG", "l", RW_OK },
		{ example_rules, "tcp_local", HDR_TO, "u@hosted.org", "u@hosted.org", "tcp_local",
		  RW_OK },
		{ example_rules, "tcp_local", ENV_TO, "u%hosted.org", "u@hosted.org", "tcp_local",
		  RW_OK },
		{ example_rules, "tcp_local", ENV_TO, "u@elsewhere.org", "u@elsewhere.org",
		  "tcp_local", RW_OK },
		{ example_rules, "tcp_local", ENV_TO, "bob@pc7.corp.example.com",
		  "bob@pc7.corp.example.com", "tcp_intranet", RW_OK },
		/* As shipped: "localhost" is the l channel. */
		{ "$*  $A$E$F$U%$H$V$H@localhost" FALLBACK, NULL, ENV_TO, "u@hosted.org",
		  "u@hosted.org", "l", RW_OK },
		{ "$*  $A$E$F$U%$H$V$H@localhost" FALLBACK, NULL, ENV_TO, "u@other.org",
		  "u@other.org", "tcp_local", RW_OK },
		{ "a.com $U%$D@tcp_intranet-daemon$Zhosted.org" FALLBACK, NULL, ENV_TO, "u@a.com",
		  "u@a.com", "tcp_local", RW_OK },
		{ "a.com $U%$D@tcp_intranet-daemon$Zother.org" FALLBACK, NULL, ENV_TO, "u@a.com",
		  "u@a.com", "tcp_intranet", RW_OK },
		{ "a.com $U%$D@tcp_intranet-daemon$Vhosted.org" FALLBACK, NULL, ENV_TO, "u@a.com",
		  "u@a.com", "tcp_intranet", RW_OK },
	};
	g_autofree char *dir = g_dir_make_tmp("test-rewrite-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "directory.ldif", NULL);
	ImtaDirectoryOptions options = { .local_host = "mail.example.com" };
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaDirectory) directory = NULL;
	RwWorld world = { 0 };

	g_assert_nonnull(dir);
	g_assert_true(g_file_set_contents(path, directory_ldif, -1, &error));
	directory = imta_directory_open_ldif(path, &options, &error);
	g_assert_no_error(error);
	world.directory = directory;
	check_rows(rows, G_N_ELEMENTS(rows), &world);
	g_unlink(path);
	g_rmdir(dir);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/rewrite/extract/host-spec", test_extract);
	g_test_add_func("/rewrite/search/probe-order", test_walk_probes);
	g_test_add_func("/rewrite/search/order", test_order);
	g_test_add_func("/rewrite/trace/example", test_example_trace);
	g_test_add_func("/rewrite/trace/lines", test_trace_lines);
	g_test_add_func("/rewrite/examples/reference", test_examples);
	g_test_add_func("/rewrite/template/substitutions", test_substitutions);
	g_test_add_func("/rewrite/template/random-unique", test_random_unique);
	g_test_add_func("/rewrite/template/conditions", test_conditions);
	g_test_add_func("/rewrite/template/forms", test_forms);
	g_test_add_func("/rewrite/passes/routes", test_routes);
	g_test_add_func("/rewrite/result/fields", test_result_fields);
	g_test_add_func("/rewrite/address/malformed", test_bad_addresses);
	g_test_add_func("/rewrite/errors/ignored", test_null_error);
	g_test_add_func("/rewrite/check/templates", test_check_rules);
	g_test_add_func("/rewrite/lookup/mappings", test_mappings);
	g_test_add_func("/rewrite/lookup/directory", test_directory);
	return g_test_run();
}
