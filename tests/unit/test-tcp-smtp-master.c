/*
 * test-tcp-smtp-master.c - the tcp_smtp master program and the relay
 * machinery it shares with the LMTP client (smtp_relay.h): next hops over
 * a table-driven DNS, what each reply means for a recipient, recipient
 * grouping, the client's option rows, and whole jobs of in-memory
 * messages delivered to Postfix's smtp-sink.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/imta.h>
#include <imta/option_dat.h>
#include <imta/tailor.h>
#include <imta/imta_cnf.h>
#include <imta/mime.h>
#include <imta/smtp_client.h>

#include "../../plugins/tcp_smtp/master.h"
#include "../../plugins/tcp_smtp/options.h"
#include <imta/smtp_relay.h>

/* ---- a DNS made of a table ------------------------------------------ */

typedef struct {
	const char *name;
	const char *type;        /* "MX" or "A" (A and AAAA together) */
	ImtaDnsStatus status;
	const char *records;     /* MX: "10 host,20 host"; A: "addr,addr" */
} FakeRecord;

static const FakeRecord fake_records[] = {
	{ "example.test", "MX", IMTA_DNS_OK, "10 mx1.example.test,20 mx2.example.test" },
	{ "mx1.example.test", "A", IMTA_DNS_OK, "192.0.2.1,2001:db8::1" },
	{ "mx2.example.test", "A", IMTA_DNS_OK, "192.0.2.2" },
	{ "equal.test", "MX", IMTA_DNS_OK, "10 mx2.example.test,10 mx1.example.test" },
	{ "nomx.test", "MX", IMTA_DNS_NOT_FOUND, NULL },
	{ "nomx.test", "A", IMTA_DNS_OK, "192.0.2.3" },
	{ "nxdomain.test", "MX", IMTA_DNS_NOT_FOUND, NULL },
	{ "nxdomain.test", "A", IMTA_DNS_NOT_FOUND, NULL },
	{ "nullmx.test", "MX", IMTA_DNS_OK, "0 ." },
	{ "loop.test", "MX", IMTA_DNS_OK, "10 Mail.Example.COM.,20 mx2.example.test" },
	{ "backup.test", "MX", IMTA_DNS_OK,
	  "10 mx1.example.test,20 mail.example.com,20 mx2.example.test,30 far.test" },
	{ "tempfail.test", "MX", IMTA_DNS_TEMPFAIL, NULL },
	{ "mxtemp.test", "MX", IMTA_DNS_OK, "10 down.test,20 ghost.test" },
	{ "down.test", "A", IMTA_DNS_TEMPFAIL, NULL },
	{ "ghost.test", "A", IMTA_DNS_NOT_FOUND, NULL },
	{ "noaddr.test", "MX", IMTA_DNS_OK, "10 ghost.test" },
	{ "partial.test", "MX", IMTA_DNS_OK, "10 ghost.test,20 mx2.example.test" },
	{ "many.test", "MX", IMTA_DNS_OK, "1 h1.test,2 h2.test,3 h3.test,4 h4.test,5 h5.test,6 h6.test" },
	{ "h1.test", "A", IMTA_DNS_OK, "192.0.2.11,192.0.2.12" },
	{ "h2.test", "A", IMTA_DNS_OK, "192.0.2.21,192.0.2.22,192.0.2.23" },
	{ "h3.test", "A", IMTA_DNS_OK, "192.0.2.31" },
	{ "h4.test", "A", IMTA_DNS_OK, "192.0.2.41,192.0.2.42,192.0.2.43,192.0.2.44" },
	{ "h5.test", "A", IMTA_DNS_OK, "192.0.2.51" },
	{ "h6.test", "A", IMTA_DNS_OK, "192.0.2.61" },
	{ "shared.test", "MX", IMTA_DNS_OK, "10 h1.test,20 alias.test" },
	{ "alias.test", "A", IMTA_DNS_OK, "192.0.2.12,192.0.2.99" },
	{ "smart.example.net", "A", IMTA_DNS_OK, "192.0.2.9" },
	{ "smart.example.net", "MX", IMTA_DNS_OK, "10 relay.example.net" },
	{ "relay.example.net", "A", IMTA_DNS_OK, "192.0.2.10" },
	{ "gateway.example.org", "A", IMTA_DNS_OK, "192.0.2.7" },
	{ "missing.example.net", "A", IMTA_DNS_NOT_FOUND, NULL },
};

static const FakeRecord *
fake_find(const char *name, const char *type)
{
	for (guint i = 0; i < G_N_ELEMENTS(fake_records); i++)
		if (strcmp(fake_records[i].name, name) == 0 &&
		    strcmp(fake_records[i].type, type) == 0)
			return &fake_records[i];
	return NULL;
}

static ImtaDnsStatus
fake_status(const FakeRecord *row, const char *name, const char *type, GError **error)
{
	ImtaDnsStatus status = row != NULL ? row->status : IMTA_DNS_NOT_FOUND;

	if (status == IMTA_DNS_NOT_FOUND)
		g_set_error(error, G_RESOLVER_ERROR, G_RESOLVER_ERROR_NOT_FOUND,
			    "%s lookup of \"%s\": no such domain (NXDOMAIN)", type, name);
	else if (status == IMTA_DNS_TEMPFAIL)
		g_set_error(error, G_RESOLVER_ERROR, G_RESOLVER_ERROR_TEMPORARY_FAILURE,
			    "%s lookup of \"%s\": timed out", type, name);
	return status;
}

static void
fake_mx_free(gpointer data)
{
	ImtaDnsMx *mx = data;

	g_free(mx->host);
	g_free(mx);
}

static ImtaDnsStatus
fake_lookup_mx(gpointer data, const char *domain, GPtrArray **mx_r, GError **error)
{
	const FakeRecord *row = fake_find(domain, "MX");
	g_auto(GStrv) items = NULL;

	*mx_r = NULL;
	if (row == NULL || row->status != IMTA_DNS_OK)
		return fake_status(row, domain, "MX", error);
	*mx_r = g_ptr_array_new_with_free_func(fake_mx_free);
	items = g_strsplit(row->records, ",", -1);
	for (guint i = 0; items[i] != NULL; i++) {
		ImtaDnsMx *mx = g_new0(ImtaDnsMx, 1);
		char *space = strchr(items[i], ' ');

		mx->preference = (guint16)atoi(items[i]);
		mx->host = g_strdup(space + 1);
		g_ptr_array_add(*mx_r, mx);
	}
	return IMTA_DNS_OK;
}

static ImtaDnsStatus
fake_lookup_addresses(gpointer data, const char *name, GPtrArray **addresses_r, GError **error)
{
	const FakeRecord *row = fake_find(name, "A");
	g_auto(GStrv) items = NULL;

	*addresses_r = NULL;
	(*(guint *)data)++;
	if (row == NULL || row->status != IMTA_DNS_OK)
		return fake_status(row, name, "A/AAAA", error);
	*addresses_r = g_ptr_array_new_with_free_func(g_free);
	items = g_strsplit(row->records, ",", -1);
	for (guint i = 0; items[i] != NULL; i++)
		g_ptr_array_add(*addresses_r, g_strdup(items[i]));
	return IMTA_DNS_OK;
}

static const char *const local_names[] = { "mail.example.com", "localhost.example.com", NULL };

/* ---- relay_route.c: pure parts--------------------------------------- */

static void
test_route_domain(void)
{
	static const struct {
		const char *address, *domain;
	} rows[] = {
		{ "user@example.test", "example.test" },
		{ "User@EXAMPLE.Test", "example.test" },
		{ "user@example.test.", "example.test" },
		{ "\"a@b\"@example.org", "example.org" },
		{ "user@[192.0.2.1]", "[192.0.2.1]" },
		{ "user@[IPv6:2001:DB8::1]", "[ipv6:2001:db8::1]" },
		{ "user", NULL },
		{ "user@", NULL },
		{ "", NULL },
	};

	for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *domain = imta_smtp_route_domain(rows[i].address);

		g_assert_cmpstr(domain, ==, rows[i].domain);
	}
	g_assert_null(imta_smtp_route_domain(NULL));
}

static void
test_route_literal(void)
{
	static const struct {
		const char *domain;
		gboolean literal;
		const char *address;
	} rows[] = {
		{ "[192.0.2.1]", TRUE, "192.0.2.1" },
		{ "[ipv6:2001:db8::1]", TRUE, "2001:db8::1" },
		{ "[IPv6:2001:DB8:0:0:0:0:0:1]", TRUE, "2001:db8::1" },
		{ "[IPv6:::ffff:192.0.2.1]", TRUE, "::ffff:192.0.2.1" },
		{ "[192.0.2.256]", TRUE, NULL },
		{ "[192.0.2]", TRUE, NULL },
		{ "[2001:db8::1]", TRUE, NULL },     /* RFC 5321 4.1.3: the tag is required */
		{ "[IPv6:192.0.2.1]", TRUE, NULL },
		{ "[example.test]", TRUE, NULL },
		{ "[]", TRUE, NULL },
		{ "example.test", FALSE, NULL },
		{ "[192.0.2.1", FALSE, NULL },
		{ "", FALSE, NULL },
	};

	for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *address = NULL;

		g_assert_cmpint(imta_smtp_route_literal(rows[i].domain, &address), ==,
				rows[i].literal);
		g_assert_cmpstr(address, ==, rows[i].address);
	}
}

static char *
join_hosts(const GPtrArray *hosts)
{
	GString *out = g_string_new(NULL);

	for (guint i = 0; hosts != NULL && i < hosts->len; i++)
		g_string_append_printf(out, "%s%s", i > 0 ? "," : "", (char *)hosts->pdata[i]);
	return g_string_free(out, FALSE);
}

static void
test_route_mx_hosts(void)
{
	static const struct {
		const char *domain;
		const char *hosts;
		ImtaOutcome outcome;
		const char *diagnostic;
	} rows[] = {
		{ "example.test", "mx1.example.test,mx2.example.test", IMTA_OUTCOME_NONE, NULL },
		{ "equal.test", "mx2.example.test,mx1.example.test", IMTA_OUTCOME_NONE, NULL },
		{ "nullmx.test", NULL, IMTA_OUTCOME_FAILED,
		  "5.1.10 domain nullmx.test does not accept mail (null MX, RFC 7505)" },
		/* the best MX is this system, under another spelling */
		{ "loop.test", NULL, IMTA_OUTCOME_FAILED,
		  "5.4.6 mail for loop.test loops back to myself" },
		/* a backup MX: only the better ones are tried */
		{ "backup.test", "mx1.example.test", IMTA_OUTCOME_NONE, NULL },
		{ "many.test", "h1.test,h2.test,h3.test,h4.test,h5.test,h6.test",
		  IMTA_OUTCOME_NONE, NULL },
	};

	for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(GPtrArray) mx = NULL;
		g_autoptr(GPtrArray) hosts = NULL;
		g_autofree char *diagnostic = NULL;
		g_autofree char *joined = NULL;
		ImtaOutcome outcome;

		g_assert_cmpint(fake_lookup_mx(NULL, rows[i].domain, &mx, NULL), ==, IMTA_DNS_OK);
		hosts = imta_smtp_route_mx_hosts(mx, rows[i].domain, local_names, FALSE, &outcome,
						&diagnostic);
		joined = hosts != NULL ? join_hosts(hosts) : NULL;
		g_assert_cmpstr(joined, ==, rows[i].hosts);
		g_assert_cmpint(outcome, ==, rows[i].outcome);
		g_assert_cmpstr(diagnostic, ==, rows[i].diagnostic);
	}
}

/* randommx: the same hosts, equal preferences in both orders over many
 * tries, and never a worse preference before a better one. */
static void
test_route_mx_shuffle(void)
{
	static const char records[] = "10 a.test,10 b.test,10 c.test,20 d.test";
	g_autoptr(GPtrArray) mx = g_ptr_array_new_with_free_func(fake_mx_free);
	g_auto(GStrv) items = g_strsplit(records, ",", -1);
	gboolean seen_a_first = FALSE, seen_b_first = FALSE;

	for (guint i = 0; items[i] != NULL; i++) {
		ImtaDnsMx *r = g_new0(ImtaDnsMx, 1);

		r->preference = (guint16)atoi(items[i]);
		r->host = g_strdup(strchr(items[i], ' ') + 1);
		g_ptr_array_add(mx, r);
	}
	for (guint round = 0; round < 200; round++) {
		g_autoptr(GPtrArray) hosts = NULL;
		g_autofree char *diagnostic = NULL;
		ImtaOutcome outcome;

		hosts = imta_smtp_route_mx_hosts(mx, "x.test", NULL, TRUE, &outcome, &diagnostic);
		g_assert_nonnull(hosts);
		g_assert_cmpuint(hosts->len, ==, 4);
		g_assert_cmpstr(hosts->pdata[3], ==, "d.test");
		seen_a_first |= strcmp(hosts->pdata[0], "a.test") == 0;
		seen_b_first |= strcmp(hosts->pdata[0], "b.test") == 0;
	}
	g_assert_true(seen_a_first);
	g_assert_true(seen_b_first);
}

/* ---- relay_route.c: resolving---------------------------------------- */

static char *
join_hops(const ImtaSmtpRoute *route)
{
	GString *out = g_string_new(NULL);

	for (guint i = 0; i < route->hops->len; i++) {
		const ImtaSmtpHop *hop = route->hops->pdata[i];

		g_string_append_printf(out, "%s%s=%s", i > 0 ? " " : "",
				       hop->host != NULL ? hop->host : "-", hop->address);
	}
	return g_string_free(out, FALSE);
}

typedef struct {
	const char *domain;
	ImtaMxMode mx;
	const char *daemon;
	const char *hops;
	ImtaOutcome outcome;
	const char *diagnostic;
} RouteRow;

static void
run_route_rows(const RouteRow *rows, guint n)
{
	for (guint i = 0; i < n; i++) {
		guint lookups = 0;
		ImtaSmtpRouteDns dns = { fake_lookup_mx, fake_lookup_addresses, &lookups };
		ImtaSmtpRoutePolicy policy = { rows[i].mx, rows[i].daemon, "tcp_test.example.org",
					      local_names };
		g_autoptr(ImtaSmtpRoute) route = imta_smtp_route_resolve(&dns, &policy,
								       rows[i].domain);
		g_autofree char *hops = join_hops(route);

		g_test_message("row %u: %s", i, rows[i].domain);
		g_assert_cmpstr(hops, ==, rows[i].hops);
		g_assert_cmpint(route->outcome, ==, rows[i].outcome);
		g_assert_cmpstr(route->diagnostic, ==, rows[i].diagnostic);
		g_assert_cmpuint(lookups, <=, IMTA_SMTP_ROUTE_MAX_HOSTS);
	}
}

static void
test_route_resolve_mx(void)
{
	static const RouteRow rows[] = {
		{ "example.test", IMTA_MX_DEFAULT, NULL,
		  "mx1.example.test=192.0.2.1 mx1.example.test=2001:db8::1 "
		  "mx2.example.test=192.0.2.2", IMTA_OUTCOME_NONE, NULL },
		{ "example.test", IMTA_MX_MX, NULL,
		  "mx1.example.test=192.0.2.1 mx1.example.test=2001:db8::1 "
		  "mx2.example.test=192.0.2.2", IMTA_OUTCOME_NONE, NULL },
		{ "equal.test", IMTA_MX_NONRANDOM, NULL,
		  "mx2.example.test=192.0.2.2 mx1.example.test=192.0.2.1 "
		  "mx1.example.test=2001:db8::1", IMTA_OUTCOME_NONE, NULL },
		/* no MX: the domain's own address (RFC 5321 5.1) */
		{ "nomx.test", IMTA_MX_DEFAULT, NULL, "nomx.test=192.0.2.3", IMTA_OUTCOME_NONE,
		  NULL },
		{ "nxdomain.test", IMTA_MX_DEFAULT, NULL, "", IMTA_OUTCOME_FAILED,
		  "5.1.2 Host or domain name not found: A/AAAA lookup of \"nxdomain.test\": "
		  "no such domain (NXDOMAIN)" },
		{ "nullmx.test", IMTA_MX_DEFAULT, NULL, "", IMTA_OUTCOME_FAILED,
		  "5.1.10 domain nullmx.test does not accept mail (null MX, RFC 7505)" },
		{ "loop.test", IMTA_MX_DEFAULT, NULL, "", IMTA_OUTCOME_FAILED,
		  "5.4.6 mail for loop.test loops back to myself" },
		{ "backup.test", IMTA_MX_DEFAULT, NULL,
		  "mx1.example.test=192.0.2.1 mx1.example.test=2001:db8::1", IMTA_OUTCOME_NONE,
		  NULL },
		{ "tempfail.test", IMTA_MX_DEFAULT, NULL, "", IMTA_OUTCOME_RETRY,
		  "4.4.3 MX lookup of \"tempfail.test\": timed out" },
		/* one MX host cannot be looked up now: retry, not bounce */
		{ "mxtemp.test", IMTA_MX_DEFAULT, NULL, "", IMTA_OUTCOME_RETRY,
		  "4.4.3 A/AAAA lookup of \"down.test\": timed out" },
		{ "noaddr.test", IMTA_MX_DEFAULT, NULL, "", IMTA_OUTCOME_FAILED,
		  "5.4.4 no MX host of noaddr.test has an address: A/AAAA lookup of "
		  "\"ghost.test\": no such domain (NXDOMAIN)" },
		{ "partial.test", IMTA_MX_DEFAULT, NULL, "mx2.example.test=192.0.2.2",
		  IMTA_OUTCOME_NONE, NULL },
		/* bounded: 5 hosts, 10 addresses */
		{ "many.test", IMTA_MX_DEFAULT, NULL,
		  "h1.test=192.0.2.11 h1.test=192.0.2.12 h2.test=192.0.2.21 h2.test=192.0.2.22 "
		  "h2.test=192.0.2.23 h3.test=192.0.2.31 h4.test=192.0.2.41 h4.test=192.0.2.42 "
		  "h4.test=192.0.2.43 h4.test=192.0.2.44", IMTA_OUTCOME_NONE, NULL },
		/* an address shared by two MX hosts is tried once */
		{ "shared.test", IMTA_MX_DEFAULT, NULL,
		  "h1.test=192.0.2.11 h1.test=192.0.2.12 alias.test=192.0.2.99",
		  IMTA_OUTCOME_NONE, NULL },
	};

	run_route_rows(rows, G_N_ELEMENTS(rows));
}

static void
test_route_resolve_other(void)
{
	static const RouteRow rows[] = {
		/* nomx: A/AAAA of the domain only */
		{ "example.test", IMTA_MX_NOMX, NULL, "", IMTA_OUTCOME_FAILED,
		  "5.1.2 Host or domain name not found: A/AAAA lookup of \"example.test\": "
		  "no such domain (NXDOMAIN)" },
		{ "mx1.example.test", IMTA_MX_NOMX, NULL,
		  "mx1.example.test=192.0.2.1 mx1.example.test=2001:db8::1", IMTA_OUTCOME_NONE,
		  NULL },
		/* domain literals, whatever the channel says */
		{ "[192.0.2.77]", IMTA_MX_DEFAULT, NULL, "-=192.0.2.77", IMTA_OUTCOME_NONE, NULL },
		{ "[ipv6:2001:db8::77]", IMTA_MX_DEFAULT, "smart.example.net", "-=2001:db8::77",
		  IMTA_OUTCOME_NONE, NULL },
		{ "[192.0.2.300]", IMTA_MX_DEFAULT, NULL, "", IMTA_OUTCOME_FAILED,
		  "5.1.2 bad domain literal [192.0.2.300]" },
		/* daemon: by address unless the channel says mx */
		{ "example.test", IMTA_MX_DEFAULT, "smart.example.net", "smart.example.net=192.0.2.9",
		  IMTA_OUTCOME_NONE, NULL },
		{ "example.test", IMTA_MX_MX, "Smart.Example.NET", "relay.example.net=192.0.2.10",
		  IMTA_OUTCOME_NONE, NULL },
		{ "example.test", IMTA_MX_DEFAULT, "[192.0.2.5]", "-=192.0.2.5", IMTA_OUTCOME_NONE,
		  NULL },
		{ "example.test", IMTA_MX_DEFAULT, "[IPv6:::1]", "-=::1", IMTA_OUTCOME_NONE, NULL },
		/* an unqualified daemon name: the channel's official host name */
		{ "example.test", IMTA_MX_DEFAULT, "gateway", "", IMTA_OUTCOME_RETRY,
		  "4.1.2 smart host tcp_test.example.org: Host or domain name not found: "
		  "A/AAAA lookup of \"tcp_test.example.org\": no such domain (NXDOMAIN)" },
		/* the smart host's trouble is ours: mail waits */
		{ "example.test", IMTA_MX_DEFAULT, "missing.example.net", "", IMTA_OUTCOME_RETRY,
		  "4.1.2 smart host missing.example.net: Host or domain name not found: "
		  "A/AAAA lookup of \"missing.example.net\": no such domain (NXDOMAIN)" },
		{ "example.test", IMTA_MX_DEFAULT, "[not.an.address]", "", IMTA_OUTCOME_RETRY,
		  "4.4.4 daemon [not.an.address] is not a valid address literal" },
	};

	run_route_rows(rows, G_N_ELEMENTS(rows));
}

/* ---- relay.c: what replies mean-------------------------------- */

static void
test_relay_verdict(void)
{
	static const struct {
		guint mail, rcpt;
		gboolean broken, data_sent, dsn;
		ImtaSmtpVerdict verdict;
	} rows[] = {
		{ 250, 250, FALSE, TRUE, FALSE, IMTA_SMTP_VERDICT_DELIVERED },
		{ 250, 250, FALSE, TRUE, TRUE, IMTA_SMTP_VERDICT_RELAYED },
		{ 250, 251, FALSE, TRUE, FALSE, IMTA_SMTP_VERDICT_DELIVERED },
		{ 250, 550, FALSE, FALSE, FALSE, IMTA_SMTP_VERDICT_FAILED },
		{ 250, 552, FALSE, TRUE, TRUE, IMTA_SMTP_VERDICT_FAILED },
		{ 250, 450, FALSE, FALSE, FALSE, IMTA_SMTP_VERDICT_RETRY },
		{ 250, 421, TRUE, FALSE, FALSE, IMTA_SMTP_VERDICT_RETRY },
		/* the hop refuses the sender */
		{ 550, 0, FALSE, FALSE, FALSE, IMTA_SMTP_VERDICT_FAILED },
		{ 553, 0, FALSE, FALSE, TRUE, IMTA_SMTP_VERDICT_FAILED },
		/* a 4xx to MAIL or a session lost before any answer: another hop */
		{ 451, 0, FALSE, FALSE, FALSE, IMTA_SMTP_VERDICT_NEXT_HOP },
		{ 0, 0, TRUE, FALSE, FALSE, IMTA_SMTP_VERDICT_NEXT_HOP },
		{ 250, 0, TRUE, FALSE, FALSE, IMTA_SMTP_VERDICT_NEXT_HOP },
		/* lost after the final dot: maybe delivered (RFC 1047) */
		{ 250, 0, TRUE, TRUE, FALSE, IMTA_SMTP_VERDICT_UNSURE },
		/* a recipient refused before the loss still counts */
		{ 250, 550, TRUE, TRUE, FALSE, IMTA_SMTP_VERDICT_FAILED },
		/* nonsense codes are temporary */
		{ 250, 354, FALSE, TRUE, FALSE, IMTA_SMTP_VERDICT_RETRY },
		{ 250, 199, FALSE, TRUE, FALSE, IMTA_SMTP_VERDICT_RETRY },
		{ 354, 0, FALSE, FALSE, FALSE, IMTA_SMTP_VERDICT_NEXT_HOP },
	};

	for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
		ImtaSmtpReply rcpt = { .code = rows[i].rcpt };
		ImtaSmtpSendResult result = { .mail = { .code = rows[i].mail }, .n_rcpts = 1,
					      .rcpt = &rcpt, .data_sent = rows[i].data_sent };

		g_test_message("row %u", i);
		g_assert_cmpint(imta_smtp_relay_verdict(&result, 0, rows[i].broken, rows[i].dsn), ==,
				rows[i].verdict);
	}
}

static void
test_relay_step_verdict(void)
{
	static const struct {
		ImtaSmtpStep step;
		guint code;
		ImtaSmtpVerdict verdict;
	} rows[] = {
		{ IMTA_SMTP_STEP_CONNECT, 0, IMTA_SMTP_VERDICT_NEXT_HOP },
		{ IMTA_SMTP_STEP_GREETING, 0, IMTA_SMTP_VERDICT_NEXT_HOP },
		{ IMTA_SMTP_STEP_GREETING, 421, IMTA_SMTP_VERDICT_NEXT_HOP },
		{ IMTA_SMTP_STEP_GREETING, 554, IMTA_SMTP_VERDICT_NEXT_HOP_FAILED },
		{ IMTA_SMTP_STEP_HELLO, 0, IMTA_SMTP_VERDICT_NEXT_HOP },
		{ IMTA_SMTP_STEP_HELLO, 421, IMTA_SMTP_VERDICT_NEXT_HOP },
		{ IMTA_SMTP_STEP_HELLO, 550, IMTA_SMTP_VERDICT_FAILED },
		{ IMTA_SMTP_STEP_TLS, 454, IMTA_SMTP_VERDICT_NEXT_HOP },
		{ IMTA_SMTP_STEP_TLS, 0, IMTA_SMTP_VERDICT_NEXT_HOP },
	};

	for (guint i = 0; i < G_N_ELEMENTS(rows); i++)
		g_assert_cmpint(imta_smtp_relay_step_verdict(rows[i].step, rows[i].code), ==,
				rows[i].verdict);
}

static void
test_relay_reply_diagnostic(void)
{
	static const struct {
		const char *peer;
		guint code;
		const char *enhanced, *text, *expected;
	} rows[] = {
		{ "mx1.example.test [127.0.0.21]", 554, "5.7.1", "5.7.1 go away",
		  "remote mx1.example.test [127.0.0.21] said: 554 5.7.1 go away" },
		{ "mx1.example.test [127.0.0.21]", 554, "", "go away",
		  "remote mx1.example.test [127.0.0.21] said: 554 5.0.0 go away" },
		{ "[192.0.2.1]", 421, "", "554 no",
		  "remote [192.0.2.1] said: 421 4.0.0 554 no" },
		{ "[192.0.2.1]", 421, "", "421 4.3.2 shutting down",
		  "remote [192.0.2.1] said: 421 4.3.2 shutting down" },
		{ "[192.0.2.1]", 554, "", NULL, "remote [192.0.2.1] said: 554 5.0.0 " },
		{ "[192.0.2.1]", 601, "", "odd", "remote [192.0.2.1] said: 601 4.0.0 odd" },
	};

	for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
		ImtaSmtpReply reply = { .code = rows[i].code, .text = (char *)rows[i].text };
		g_autofree char *got = NULL;

		g_strlcpy(reply.enhanced, rows[i].enhanced, sizeof reply.enhanced);
		got = imta_smtp_relay_reply_diagnostic(rows[i].peer, &reply);
		g_assert_cmpstr(got, ==, rows[i].expected);
	}
}

/* No hop at all: the route's reason for every recipient. */
static void
test_relay_no_hop(void)
{
	ImtaSmtpRoute route = { g_ptr_array_new(), IMTA_OUTCOME_FAILED,
			       (char *)"5.1.10 domain x does not accept mail" };
	g_autoptr(ImtaMessage) msg = imta_message_new("M1", "a@example.org");
	ImtaSmtpRelayConfig config = { .channel = "tcp_test" };
	ImtaSmtpRelayMessage message = { msg, NULL, FALSE, NULL };
	ImtaSmtpRcptResult results[2] = { 0 };
	const guint rcpts[2] = { 0, 1 };

	imta_message_add_recipient(msg, "b@x", NULL, 0);
	imta_message_add_recipient(msg, "c@x", NULL, 0);
	imta_smtp_relay_deliver(&config, &message, rcpts, 2, &route, results);
	for (guint i = 0; i < 2; i++) {
		g_assert_cmpint(results[i].outcome, ==, IMTA_OUTCOME_FAILED);
		g_assert_cmpstr(results[i].diagnostic, ==, "5.1.10 domain x does not accept mail");
		g_free(results[i].diagnostic);
	}
	g_ptr_array_unref(route.hops);
}

/* ---- master.c: grouping --------------------------------------------- */

static char *
join_groups(const GPtrArray *groups)
{
	GString *out = g_string_new(NULL);

	for (guint g = 0; g < groups->len; g++) {
		const ImtaSmtpGroup *group = groups->pdata[g];

		g_string_append_printf(out, "%s%s:", g > 0 ? " " : "",
				       group->key != NULL ? group->key : "-");
		for (guint k = 0; k < group->rcpts->len; k++)
			g_string_append_printf(out, "%s%u", k > 0 ? "," : "",
					       g_array_index(group->rcpts, guint, k));
	}
	return g_string_free(out, FALSE);
}

static void
test_master_group(void)
{
	static const struct {
		const char *addresses;
		guint cap;
		const char *groups;
	} rows[] = {
		{ "a@x.test b@y.test c@X.TEST d@x.test.", 100, "x.test:0,2,3 y.test:1" },
		{ "a@x.test b@x.test c@x.test d@x.test e@x.test", 2, "x.test:0,1 x.test:2,3 x.test:4" },
		{ "a@x.test nodomain b@[192.0.2.1] c@[192.0.2.1]", 100,
		  "x.test:0 -:1 [192.0.2.1]:2,3" },
		{ "a@x.test b@y.test c@x.test", 1, "x.test:0 y.test:1 x.test:2" },
		{ "", 100, "" },
	};

	for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(ImtaMessage) msg = imta_message_new("G", "s@example.org");
		g_auto(GStrv) addresses = g_strsplit(rows[i].addresses, " ", -1);
		g_autoptr(GPtrArray) groups = NULL;
		g_autofree char *joined = NULL;

		for (guint a = 0; addresses[a] != NULL; a++)
			if (addresses[a][0] != '\0')
				imta_message_add_recipient(msg, addresses[a], NULL, 0);
		groups = tcp_smtp_master_group(msg, rows[i].cap);
		joined = join_groups(groups);
		g_assert_cmpstr(joined, ==, rows[i].groups);
	}
}

/* ---- options.c: the client's rows ----------------------------------- */

static char *
write_temp(const char *dir, const char *name, const char *text)
{
	char *path = g_build_filename(dir, name, NULL);

	g_assert_true(g_file_set_contents(path, text, -1, NULL));
	return path;
}

static void
test_options_client(void)
{
	static const struct {
		const char *text;
		const char *verify, *ca_file;
		gboolean given;
		gint64 recipients, threads;
		const char *error;    /* after the file name */
	} rows[] = {
		{ "", NULL, NULL, FALSE, 1000, 20, NULL },
		{ "TLS_CLIENT_VERIFY=chain\nTLS_CA_FILE=/etc/ssl/ca.pem\n", "chain",
		  "/etc/ssl/ca.pem", FALSE, 1000, 20, NULL },
		{ "tls_client_verify=NAME\nALLOW_RECIPIENTS_PER_TRANSACTION=7\n"
		  "MAX_CLIENT_THREADS=3\n", "NAME", NULL, TRUE, 7, 3, NULL },
		{ "TLS_CLIENT_VERIFY=full\n", NULL, NULL, FALSE, 0, 0,
		  ":1:19: expected none, chain or name for TLS_CLIENT_VERIFY, got \"full\"" },
		{ "TLS_CLIENT_VERIFI=none\n", NULL, NULL, FALSE, 0, 0,
		  ":1:1: unknown SMTP channel option \"TLS_CLIENT_VERIFI\" "
		  "(did you mean TLS_CLIENT_VERIFY?)" },
	};
	g_autofree char *dir = g_dir_make_tmp("test-tcp-smtp-opt-XXXXXX", NULL);

	for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *path = write_temp(dir, "tcp_test_option", rows[i].text);
		g_autoptr(GError) error = NULL;
		g_autoptr(TcpSmtpOptions) options = tcp_smtp_options_load(path, &error);

		if (rows[i].error != NULL) {
			g_autofree char *expected = g_strconcat(path, rows[i].error, NULL);

			g_assert_null(options);
			g_assert_nonnull(error);
			g_assert_cmpstr(error->message, ==, expected);
		} else {
			g_assert_no_error(error);
			g_assert_cmpstr(options->tls_client_verify, ==, rows[i].verify);
			g_assert_cmpstr(options->tls_ca_file, ==, rows[i].ca_file);
			g_assert_cmpint(options->recipients_per_transaction_given, ==,
					rows[i].given);
			g_assert_cmpint(options->recipients_per_transaction, ==,
					rows[i].recipients);
			g_assert_cmpint(options->max_client_threads, ==, rows[i].threads);
		}
		g_unlink(path);
	}
	g_rmdir(dir);
}

/* ---- whole jobs against smtp-sink ----------------------------------- */

typedef struct {
	GQueue pending;
	GPtrArray *done;
	GMutex lock;        /* the master serialises calls; checked here */
	gint busy;
} MemorySource;

static ImtaMessage *
memory_next(gpointer p, GError **error)
{
	MemorySource *source = p;
	ImtaMessage *msg;

	g_assert_cmpint(g_atomic_int_add(&source->busy, 1), ==, 0);
	msg = g_queue_pop_head(&source->pending);
	g_atomic_int_add(&source->busy, -1);
	return msg;
}

static gboolean
memory_finish(gpointer p, ImtaMessage *msg, GError **error)
{
	MemorySource *source = p;

	g_assert_cmpint(g_atomic_int_add(&source->busy, 1), ==, 0);
	g_ptr_array_add(source->done, msg);
	g_atomic_int_add(&source->busy, -1);
	return TRUE;
}

static const ImtaMasterJobSource memory_ops = { memory_next, memory_finish, NULL };

typedef struct {
	char *dir;
	guint16 port;
	GPid sink;
	ImtaConfig *config;
	char *log;
} SinkFixture;

static guint16
free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	g_assert_cmpint(bind(fd, (struct sockaddr *)&sin, sizeof sin), ==, 0);
	g_assert_cmpint(getsockname(fd, (struct sockaddr *)&sin, &len), ==, 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static gboolean
port_open(guint16 port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	gboolean ok;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0;
	close(fd);
	return ok;
}

static const char *
sink_program(void)
{
	static const char *const paths[] = { "/usr/sbin/smtp-sink", "/usr/bin/smtp-sink",
					     "/usr/lib/postfix/smtp-sink" };

	for (guint i = 0; i < G_N_ELEMENTS(paths); i++)
		if (g_file_test(paths[i], G_FILE_TEST_IS_EXECUTABLE))
			return paths[i];
	return NULL;
}

/* A failed assertion aborts the test: the sink must not outlive it. */
static void
sink_child_setup(gpointer data)
{
	prctl(PR_SET_PDEATHSIG, SIGTERM);
}

/* Start smtp-sink with `flags` (space-separated, may be ""), dumping
 * messages into dir/mail/.  FALSE (test skipped) without smtp-sink. */
static gboolean
sink_start(SinkFixture *fx, const char *flags)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_auto(GStrv) words = g_strsplit(flags, " ", -1);
	g_autoptr(GError) error = NULL;
	const char *program = sink_program();

	if (program == NULL) {
		g_test_skip("smtp-sink (Postfix) is not installed");
		return FALSE;
	}
	fx->port = free_port();
	g_ptr_array_add(argv, g_strdup(program));
	/* smtp-sink refuses to run as root without a user to become. */
	if (geteuid() == 0) {
		g_autofree char *mail = g_build_filename(fx->dir, "mail", NULL);

		g_assert_cmpint(g_mkdir(mail, 0755), ==, 0);
		g_assert_cmpint(g_chmod(mail, 01777), ==, 0);
		g_assert_cmpint(g_chmod(fx->dir, 0755), ==, 0);
		g_ptr_array_add(argv, g_strdup("-u"));
		g_ptr_array_add(argv, g_strdup("nobody"));
	}
	for (guint i = 0; words[i] != NULL; i++)
		if (words[i][0] != '\0')
			g_ptr_array_add(argv, g_strdup(words[i]));
	g_ptr_array_add(argv, g_strdup("-d"));
	g_ptr_array_add(argv, g_strdup_printf("%s/mail/%%M.", fx->dir));
	g_ptr_array_add(argv, g_strdup_printf("127.0.0.1:%u", fx->port));
	g_ptr_array_add(argv, g_strdup("10"));
	g_ptr_array_add(argv, NULL);
	g_assert_true(g_spawn_async(NULL, (char **)argv->pdata, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
				    sink_child_setup, NULL, &fx->sink, &error));
	g_assert_no_error(error);
	for (guint i = 0; i < 100 && !port_open(fx->port); i++)
		g_usleep(50 * 1000);
	g_assert_true(port_open(fx->port));
	return TRUE;
}

static void
sink_stop(SinkFixture *fx)
{
	if (fx->sink == 0)
		return;
	kill(fx->sink, SIGTERM);
	waitpid(fx->sink, NULL, 0);
	g_spawn_close_pid(fx->sink);
	fx->sink = 0;
}

/* The messages smtp-sink dumped, each file's text. */
static GPtrArray *
sink_messages(SinkFixture *fx)
{
	g_autofree char *mail = g_build_filename(fx->dir, "mail", NULL);
	GPtrArray *texts = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GDir) dir = g_dir_open(mail, 0, NULL);
	const char *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *path = g_build_filename(mail, name, NULL);
		char *text = NULL;

		g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
		g_ptr_array_add(texts, text);
	}
	return texts;
}

/* A configuration whose channel tcp_test has `keywords`, with the
 * option file text `option` (NULL: none). */
static const ImtaChannel *
sink_config(SinkFixture *fx, const char *keywords, const char *option)
{
	g_autofree char *cnf = g_strdup_printf("example.test  $U%%$D@tcp-test-daemon\n"
					       "\n"
					       "l\n"
					       "mail.example.com\n"
					       "\n"
					       "tcp_test smtp %s\n"
					       "tcp-test-daemon\n", keywords);
	g_autoptr(GError) error = NULL;

	fx->config = g_new0(ImtaConfig, 1);
	fx->config->cnf = imta_cnf_parse_text("imta.cnf", cnf, strlen(cnf), NULL, &error);
	g_assert_no_error(error);
	fx->config->tailor = g_new0(ImtaTailor, 1);
	fx->config->tailor->hostname = g_strdup("mail.example.com");
	fx->config->tailor->table_dir = g_strdup(fx->dir);
	fx->config->dir = g_strdup(fx->dir);
	fx->config->options = imta_option_dat_new_default();
	/* Nothing here asks the DNS; a server that does not answer shows it. */
	g_free(fx->config->options->dns_servers);
	fx->config->options->dns_servers = g_strdup("127.0.0.1:9");
	if (option != NULL)
		g_free(write_temp(fx->dir, "tcp_test_option", option));
	return imta_cnf_channel_by_name(fx->config->cnf, "tcp_test");
}

static void
sink_fixture_set_up(SinkFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	fx->dir = g_dir_make_tmp("test-tcp-smtp-sink-XXXXXX", &error);
	g_assert_no_error(error);
	fx->log = g_build_filename(fx->dir, "master.log", NULL);
	g_assert_true(imta_log_open("test-tcp-smtp-master", fx->log, &error));
}

static void
sink_fixture_tear_down(SinkFixture *fx, gconstpointer data)
{
	g_autofree char *command = g_strdup_printf("rm -rf '%s'", fx->dir);

	sink_stop(fx);
	imta_log_close();
	tcp_smtp_options_forget();
	if (fx->config != NULL)
		imta_config_free(fx->config);
	g_assert_cmpint(system(command), ==, 0);
	g_free(fx->dir);
	g_free(fx->log);
}

/* Run tcp_smtp_master over `n` messages; each has recipients r0@..rK@
 * of `domains` (space-separated) and content `content`. */
static GPtrArray *
run_job(SinkFixture *fx, const ImtaChannel *channel, guint n, const char *domains,
	const char *content)
{
	g_autoptr(GBytes) body = g_bytes_new(content, strlen(content));
	g_auto(GStrv) list = g_strsplit(domains, " ", -1);
	MemorySource source = { G_QUEUE_INIT,
				g_ptr_array_new_with_free_func((GDestroyNotify)imta_message_free) };
	g_autoptr(ImtaMasterJob) job = NULL;

	for (guint m = 0; m < n; m++) {
		g_autofree char *id = g_strdup_printf("MSG%04u", m);
		ImtaMessage *msg = imta_message_new(id, "sender@example.org");

		imta_message_set_content_bytes(msg, body);
		for (guint d = 0; list[d] != NULL; d++) {
			g_autofree char *rcpt = g_strdup_printf("r%u@%s", d, list[d]);

			imta_message_add_recipient(msg, rcpt, d == 0 ? "rfc822;orig@example.test"
								      : NULL,
						   d == 0 ? IMTA_NOTIFY_SUCCESS | IMTA_NOTIFY_FAILURE
							  : 0);
		}
		g_queue_push_tail(&source.pending, msg);
	}
	job = imta_master_job_new(fx->config, channel, &memory_ops, &source);
	g_assert_cmpint(tcp_smtp_master(job), ==, IMTA_ENTRY_OK);
	g_assert_cmpuint(source.done->len, ==, n);
	return source.done;
}

static void
assert_all(GPtrArray *done, ImtaOutcome outcome, gboolean dsn_passed, const char *prefix)
{
	for (guint m = 0; m < done->len; m++) {
		const ImtaMessage *msg = done->pdata[m];

		for (guint r = 0; r < imta_message_recipient_count(msg); r++) {
			const ImtaRecipient *rcpt = imta_message_recipient(msg, r);

			g_assert_cmpint(rcpt->outcome, ==, outcome);
			g_assert_cmpint(rcpt->dsn_passed, ==, dsn_passed);
			if (!g_str_has_prefix(rcpt->diagnostic, prefix))
				g_error("diagnostic \"%s\" does not start with \"%s\"",
					rcpt->diagnostic, prefix);
		}
	}
}

static guint
count_log(SinkFixture *fx, const char *needle)
{
	g_autofree char *text = NULL;
	guint n = 0;

	g_assert_true(g_file_get_contents(fx->log, &text, NULL, NULL));
	for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static const char plain_content[] = "From: sender@example.org\nSubject: hello\n\nbody\n.line\n";
static const char eight_content[] = "From: sender@example.org\nSubject: caf\xc3\xa9\n"
				    "Content-Type: text/plain; charset=utf-8\n\ncaf\xc3\xa9\n";

/* Many messages, two domains each: one transaction per domain and
 * message, DSN taken by the hop, sessions reused. */
static void
test_sink_delivery(SinkFixture *fx, gconstpointer data)
{
	g_autofree char *keywords = NULL;
	g_autoptr(GPtrArray) done = NULL;
	g_autoptr(GPtrArray) dumps = NULL;
	const ImtaChannel *channel;
	guint with_notify = 0;

	if (!sink_start(fx, ""))
		return;
	keywords = g_strdup_printf("daemon [127.0.0.1] port %u", fx->port);
	channel = sink_config(fx, keywords, "MAX_CLIENT_THREADS=3\n");
	done = run_job(fx, channel, 12, "example.test other.test", plain_content);
	assert_all(done, IMTA_OUTCOME_DELIVERED, TRUE, "remote [127.0.0.1] said: 250 2.0.0 ");
	dumps = sink_messages(fx);
	g_assert_cmpuint(dumps->len, ==, 24);
	for (guint i = 0; i < dumps->len; i++) {
		const char *text = dumps->pdata[i];

		g_assert_nonnull(strstr(text, "X-Helo-Args: mail.example.com"));
		g_assert_nonnull(strstr(text, "X-Mail-Args: <sender@example.org>\n"));
		g_assert_null(strstr(text, "BODY=8BITMIME"));
		/* dot-stuffing undone by the sink: the content arrived whole */
		g_assert_nonnull(strstr(text, "\nbody\n.line\n"));
		if (strstr(text, "X-Rcpt-Args: <r0@example.test> NOTIFY=SUCCESS,FAILURE "
				 "ORCPT=rfc822;orig@example.test\n") != NULL)
			with_notify++;
	}
	g_assert_cmpuint(with_notify, ==, 12);
	/* 3 threads, 24 transactions: sessions were reused */
	g_assert_cmpuint(count_log(fx, "connected to [127.0.0.1]"), <=, 6);
	g_assert_cmpuint(count_log(fx, "reusing connection to [127.0.0.1]"), >=, 18);
	g_assert_cmpuint(count_log(fx, "closing connection to [127.0.0.1]"), ==,
			 count_log(fx, "connected to [127.0.0.1]"));
}

/* The option file's per-transaction cap splits one domain's recipients. */
static void
test_sink_recipient_cap(SinkFixture *fx, gconstpointer data)
{
	g_autofree char *keywords = NULL;
	g_autoptr(GPtrArray) done = NULL;
	g_autoptr(GPtrArray) dumps = NULL;
	const ImtaChannel *channel;

	if (!sink_start(fx, "-N"))
		return;
	keywords = g_strdup_printf("daemon [127.0.0.1] port %u", fx->port);
	channel = sink_config(fx, keywords,
			      "MAX_CLIENT_THREADS=1\nALLOW_RECIPIENTS_PER_TRANSACTION=2\n");
	done = run_job(fx, channel, 1, "a.test a.test a.test a.test a.test", plain_content);
	/* -N: no DSN offered, so no NOTIFY passed on either */
	assert_all(done, IMTA_OUTCOME_DELIVERED, FALSE, "remote [127.0.0.1] said: 250 2.0.0 ");
	dumps = sink_messages(fx);
	g_assert_cmpuint(dumps->len, ==, 3);
	for (guint i = 0; i < dumps->len; i++)
		g_assert_null(strstr(dumps->pdata[i], "NOTIFY="));
}

static void
test_sink_rcpt_refused(SinkFixture *fx, gconstpointer data)
{
	g_autofree char *keywords = NULL;
	g_autoptr(GPtrArray) done = NULL;
	g_autoptr(GPtrArray) dumps = NULL;
	const ImtaChannel *channel;

	if (!sink_start(fx, "-f RCPT"))
		return;
	keywords = g_strdup_printf("daemon [127.0.0.1] port %u", fx->port);
	channel = sink_config(fx, keywords, NULL);
	done = run_job(fx, channel, 2, "example.test", plain_content);
	assert_all(done, IMTA_OUTCOME_FAILED, FALSE, "remote [127.0.0.1] said: 5");
	dumps = sink_messages(fx);
	g_assert_cmpuint(dumps->len, ==, 0);
}

static void
test_sink_rcpt_deferred(SinkFixture *fx, gconstpointer data)
{
	g_autofree char *keywords = NULL;
	g_autoptr(GPtrArray) done = NULL;
	const ImtaChannel *channel;

	if (!sink_start(fx, "-r RCPT"))
		return;
	keywords = g_strdup_printf("daemon [127.0.0.1] port %u", fx->port);
	channel = sink_config(fx, keywords, NULL);
	done = run_job(fx, channel, 1, "example.test", plain_content);
	assert_all(done, IMTA_OUTCOME_RETRY, FALSE, "remote [127.0.0.1] said: 4");
}

/* Lost after the final dot: retried, with the duplicate risk said. */
static void
test_sink_lost_after_dot(SinkFixture *fx, gconstpointer data)
{
	g_autofree char *keywords = NULL;
	g_autoptr(GPtrArray) done = NULL;
	const ImtaChannel *channel;

	if (!sink_start(fx, "-q ."))
		return;
	keywords = g_strdup_printf("daemon [127.0.0.1] port %u", fx->port);
	channel = sink_config(fx, keywords, NULL);
	done = run_job(fx, channel, 1, "example.test", plain_content);
	assert_all(done, IMTA_OUTCOME_RETRY, FALSE, "4.4.2 [127.0.0.1]: no reply after the end "
		   "of the message was sent");
	g_assert_nonnull(strstr(imta_message_recipient(done->pdata[0], 0)->diagnostic,
				"(RFC 1047)"));
}

/* 8-bit content: BODY=8BITMIME where offered, else quoted-printable;
 * eightstrict refuses to convert. */
static void
test_sink_eight_bit(SinkFixture *fx, gconstpointer data)
{
	const char *mode = data;
	g_autofree char *keywords = NULL;
	g_autoptr(GPtrArray) done = NULL;
	g_autoptr(GPtrArray) dumps = NULL;
	const ImtaChannel *channel;
	gboolean offered = strcmp(mode, "offered") == 0;
	gboolean strict = strcmp(mode, "strict") == 0;

	if (!sink_start(fx, offered ? "" : "-8"))
		return;
	keywords = g_strdup_printf("daemon [127.0.0.1] port %u%s", fx->port,
				   strict ? " eightstrict" : "");
	channel = sink_config(fx, keywords, NULL);
	done = run_job(fx, channel, 1, "example.test", eight_content);
	dumps = sink_messages(fx);
	if (strict) {
		assert_all(done, IMTA_OUTCOME_FAILED, FALSE,
			   "5.6.3 [127.0.0.1] does not offer 8BITMIME");
		g_assert_cmpuint(dumps->len, ==, 0);
		return;
	}
	assert_all(done, IMTA_OUTCOME_DELIVERED, TRUE, "remote [127.0.0.1] said: 250 ");
	g_assert_cmpuint(dumps->len, ==, 1);
	if (offered) {
		g_assert_nonnull(strstr(dumps->pdata[0], "BODY=8BITMIME"));
		g_assert_nonnull(strstr(dumps->pdata[0], "\ncaf\xc3\xa9\n"));
	} else {
		g_assert_null(strstr(dumps->pdata[0], "BODY=8BITMIME"));
		const char *text = dumps->pdata[0];

		/* The encoding chosen is mime.c's business; 7 bits is ours. */
		g_assert_nonnull(strstr(text, "\nContent-Transfer-Encoding: "));
		g_assert_false(imta_mime_is_8bit(text, strlen(text)));
	}
}

/* Nothing listens: every recipient waits, with the reason. */
static void
test_sink_refused(SinkFixture *fx, gconstpointer data)
{
	g_autofree char *keywords = NULL;
	g_autofree char *expected = NULL;
	g_autoptr(GPtrArray) done = NULL;
	const ImtaChannel *channel;
	guint16 port = free_port();

	keywords = g_strdup_printf("daemon [127.0.0.1] port %u", port);
	channel = sink_config(fx, keywords, NULL);
	done = run_job(fx, channel, 2, "example.test other.test", plain_content);
	expected = g_strdup_printf("4.4.1 cannot connect to [127.0.0.1] port %u: "
				   "Connection refused", port);
	assert_all(done, IMTA_OUTCOME_RETRY, FALSE, expected);
}

/* Without MX, NXDOMAIN... all need the DNS: a server that does not
 * answer makes every destination wait (4.4.3). */
static void
test_sink_dns_down(SinkFixture *fx, gconstpointer data)
{
	g_autoptr(GPtrArray) done = NULL;
	const ImtaChannel *channel;

	channel = sink_config(fx, "mx", NULL);
	g_free(fx->config->options->dns_servers);
	fx->config->options->dns_servers = g_strdup("127.0.0.1:9");
	fx->config->options->dns_timeout = 1;
	done = run_job(fx, channel, 1, "example.test", plain_content);
	assert_all(done, IMTA_OUTCOME_RETRY, FALSE, "4.4.3 MX lookup of \"example.test\": ");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/tcp-smtp/route/domain", test_route_domain);
	g_test_add_func("/tcp-smtp/route/literal", test_route_literal);
	g_test_add_func("/tcp-smtp/route/mx-hosts", test_route_mx_hosts);
	g_test_add_func("/tcp-smtp/route/mx-shuffle", test_route_mx_shuffle);
	g_test_add_func("/tcp-smtp/route/resolve-mx", test_route_resolve_mx);
	g_test_add_func("/tcp-smtp/route/resolve-other", test_route_resolve_other);
	g_test_add_func("/tcp-smtp/relay/verdict", test_relay_verdict);
	g_test_add_func("/tcp-smtp/relay/step-verdict", test_relay_step_verdict);
	g_test_add_func("/tcp-smtp/relay/reply-diagnostic", test_relay_reply_diagnostic);
	g_test_add_func("/tcp-smtp/relay/no-hop", test_relay_no_hop);
	g_test_add_func("/tcp-smtp/master/group", test_master_group);
	g_test_add_func("/tcp-smtp/options/client", test_options_client);
#define SINK_TEST(path, func, data) \
	g_test_add(path, SinkFixture, data, sink_fixture_set_up, func, sink_fixture_tear_down)
	SINK_TEST("/tcp-smtp/sink/delivery", test_sink_delivery, NULL);
	SINK_TEST("/tcp-smtp/sink/recipient-cap", test_sink_recipient_cap, NULL);
	SINK_TEST("/tcp-smtp/sink/rcpt-refused", test_sink_rcpt_refused, NULL);
	SINK_TEST("/tcp-smtp/sink/rcpt-deferred", test_sink_rcpt_deferred, NULL);
	SINK_TEST("/tcp-smtp/sink/lost-after-dot", test_sink_lost_after_dot, NULL);
	SINK_TEST("/tcp-smtp/sink/eight-bit/offered", test_sink_eight_bit, "offered");
	SINK_TEST("/tcp-smtp/sink/eight-bit/downgraded", test_sink_eight_bit, "downgraded");
	SINK_TEST("/tcp-smtp/sink/eight-bit/strict", test_sink_eight_bit, "strict");
	SINK_TEST("/tcp-smtp/sink/connection-refused", test_sink_refused, NULL);
	SINK_TEST("/tcp-smtp/sink/dns-down", test_sink_dns_down, NULL);
	return g_test_run();
}
