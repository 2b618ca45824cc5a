/*
 * test-dns.c - the resolver of dns.h: block list query names, the
 * DNS_SERVERS syntax and its error messages, and every lookup against a
 * scripted name server on the loopback (answers, NXDOMAIN, NODATA,
 * SERVFAIL, REFUSED, silence, malformed answers, late answers), with the
 * time bound, the block list verdicts, the _async calls and cancellation.
 */
#include "config.h"

#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <glib.h>
#include <gio/gio.h>

#include <imta/dns.h>
#include <imta/option_dat.h>

/* ---------------------------------------------------------------------- */
/* A scripted name server: one UDP socket on 127.0.0.1, answering from a
 * table of rows, each reply sent after the row's delay. */

enum { T_A = 1, T_PTR = 12, T_MX = 15, T_AAAA = 28, T_CNAME = 5 };
enum { RCODE_OK = 0, RCODE_SERVFAIL = 2, RCODE_NXDOMAIN = 3, RCODE_REFUSED = 5 };

typedef enum {
	FAKE_ANSWER,     /* rcode and records */
	FAKE_SILENT,     /* read the query, never answer */
	FAKE_MALFORMED,  /* claim one answer record, send none */
} FakeKind;

typedef struct {
	const char *name;     /* lower case, no trailing dot */
	int qtype;            /* 0: any type */
	FakeKind kind;
	int rcode;
	const char *records;  /* "A 192.0.2.1; MX 10 mx.test; PTR h.test" */
	guint delay_ms;
} FakeRow;

static const FakeRow fake_rows[] = {
	{ "host.test", T_A, FAKE_ANSWER, RCODE_OK, "A 192.0.2.10; A 192.0.2.11; A 192.0.2.10" },
	{ "host.test", T_AAAA, FAKE_ANSWER, RCODE_OK, "AAAA 2001:db8::10" },
	{ "host.test", 0, FAKE_ANSWER, RCODE_OK, "" },
	{ "v4only.test", T_A, FAKE_ANSWER, RCODE_OK, "A 192.0.2.20" },
	{ "v4only.test", T_AAAA, FAKE_ANSWER, RCODE_OK, "" },
	{ "v6only.test", T_A, FAKE_ANSWER, RCODE_OK, "" },
	{ "v6only.test", T_AAAA, FAKE_ANSWER, RCODE_OK, "AAAA 2001:db8::20" },
	{ "alias.test", T_A, FAKE_ANSWER, RCODE_OK, "CNAME real.test; A 192.0.2.30" },
	{ "alias.test", T_AAAA, FAKE_ANSWER, RCODE_OK, "CNAME real.test" },
	{ "nodata.test", 0, FAKE_ANSWER, RCODE_OK, "" },
	{ "servfail.test", 0, FAKE_ANSWER, RCODE_SERVFAIL, "" },
	{ "refused.test", 0, FAKE_ANSWER, RCODE_REFUSED, "" },
	{ "silent.test", 0, FAKE_SILENT },
	{ "malformed.test", 0, FAKE_MALFORMED },
	{ "halfway.test", T_A, FAKE_ANSWER, RCODE_OK, "A 192.0.2.40" },
	{ "halfway.test", T_AAAA, FAKE_ANSWER, RCODE_SERVFAIL, "" },
	{ "halfnx.test", T_A, FAKE_ANSWER, RCODE_SERVFAIL, "" },
	{ "halfnx.test", T_AAAA, FAKE_ANSWER, RCODE_NXDOMAIN, "" },
	{ "xn--bcher-kva.test", T_A, FAKE_ANSWER, RCODE_OK, "A 192.0.2.50" },
	{ "xn--bcher-kva.test", T_AAAA, FAKE_ANSWER, RCODE_OK, "" },
	{ "mx.test", T_MX, FAKE_ANSWER, RCODE_OK,
	  "MX 20 b.mx.test; MX 10 a.mx.test; MX 20 c.mx.test; MX 10 d.mx.test; MX 5 e.mx.test" },
	{ "nullmx.test", T_MX, FAKE_ANSWER, RCODE_OK, "MX 0 ." },
	{ "10.2.0.192.in-addr.arpa", T_PTR, FAKE_ANSWER, RCODE_OK, "PTR host.test; PTR other.test" },
	{ "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", T_PTR,
	  FAKE_ANSWER, RCODE_OK, "PTR six.test" },
	{ "20.2.0.192.in-addr.arpa", T_PTR, FAKE_ANSWER, RCODE_OK, "PTR bad\\032name.test" },
	{ "30.2.0.192.in-addr.arpa", T_PTR, FAKE_ANSWER, RCODE_SERVFAIL, "" },
	{ "40.2.0.192.in-addr.arpa", T_PTR, FAKE_ANSWER, RCODE_OK, "PTR slow.test", 300 },
	/* Block lists. */
	{ "2.0.0.127.bl.test", T_A, FAKE_ANSWER, RCODE_OK, "A 127.0.0.2" },
	{ "2.0.0.127.bl2.test", T_A, FAKE_ANSWER, RCODE_OK, "A 127.0.0.4" },
	{ "2.0.0.127.slow.test", T_A, FAKE_ANSWER, RCODE_OK, "A 127.0.0.3", 300 },
	{ "2.0.0.127.dead.test", T_A, FAKE_SILENT },
	{ "2.0.0.127.broken.test", T_A, FAKE_ANSWER, RCODE_SERVFAIL, "" },
	{ "2.0.0.127.parked.test", T_A, FAKE_ANSWER, RCODE_OK, "A 192.0.2.80" },
	{ "2.0.0.127.codes.test", T_A, FAKE_ANSWER, RCODE_OK, "A 127.255.255.254" },
	{ "2.0.0.127.mixed.test", T_A, FAKE_ANSWER, RCODE_OK, "A 192.0.2.80; A 127.0.0.9" },
	{ "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test", T_A,
	  FAKE_ANSWER, RCODE_OK, "A 127.0.0.10" },
};

typedef struct {
	gint64 due;
	struct sockaddr_in to;
	GByteArray *reply;
} FakePending;

typedef struct {
	int fd;
	guint16 port;
	char *servers;        /* "127.0.0.1:PORT" */
	GThread *thread;
	gint stop;
	gint queries;         /* how many arrived */
	GPtrArray *pending;   /* FakePending *, the server thread's own */
} FakeServer;

static void
put16(GByteArray *out, guint v)
{
	guint8 b[2] = { (guint8)(v >> 8), (guint8)v };

	g_byte_array_append(out, b, 2);
}

/* A name in wire form; "\\032" is a byte by its decimal value. */
static void
put_name(GByteArray *out, const char *name)
{
	g_auto(GStrv) labels = g_strsplit(name, ".", -1);

	for (guint i = 0; strcmp(name, ".") != 0 && labels[i] != NULL; i++) {
		GString *label = g_string_new(NULL);

		for (const char *p = labels[i]; *p != '\0'; p++) {
			if (p[0] == '\\' && g_ascii_isdigit(p[1])) {
				g_string_append_c(label, (char)atoi(p + 1));
				p += 3;
			} else {
				g_string_append_c(label, *p);
			}
		}
		if (label->len > 0) {
			guint8 len = (guint8)label->len;

			g_byte_array_append(out, &len, 1);
			g_byte_array_append(out, (guint8 *)label->str, label->len);
		}
		g_string_free(label, TRUE);
	}
	g_byte_array_append(out, (const guint8 *)"", 1);
}

/* One record; its owner is the question's name, or `owner` after a CNAME. */
static guint
fake_add_record(GByteArray *out, const char *text, char **owner)
{
	g_autofree char *copy = g_strstrip(g_strdup(text));
	g_auto(GStrv) f = g_strsplit(copy, " ", -1);
	g_autoptr(GByteArray) rdata = g_byte_array_new();
	guint8 addr[16];
	int type;

	if (strcmp(f[0], "A") == 0) {
		type = T_A;
		g_assert_cmpint(inet_pton(AF_INET, f[1], addr), ==, 1);
		g_byte_array_append(rdata, addr, 4);
	} else if (strcmp(f[0], "AAAA") == 0) {
		type = T_AAAA;
		g_assert_cmpint(inet_pton(AF_INET6, f[1], addr), ==, 1);
		g_byte_array_append(rdata, addr, 16);
	} else if (strcmp(f[0], "MX") == 0) {
		type = T_MX;
		put16(rdata, (guint)atoi(f[1]));
		put_name(rdata, f[2]);
	} else if (strcmp(f[0], "PTR") == 0 || strcmp(f[0], "CNAME") == 0) {
		type = f[0][0] == 'P' ? T_PTR : T_CNAME;
		put_name(rdata, f[1]);
	} else {
		g_assert_not_reached();
	}
	if (*owner == NULL)
		put16(out, 0xc00c);  /* the question's name */
	else
		put_name(out, *owner);
	if (type == T_CNAME) {
		g_free(*owner);
		*owner = g_strdup(f[1]);
	}
	put16(out, (guint)type);
	put16(out, 1);
	put16(out, 0);
	put16(out, 300);
	put16(out, rdata->len);
	g_byte_array_append(out, rdata->data, rdata->len);
	return 1;
}

static const FakeRow *
fake_find(const char *name, int qtype)
{
	for (gsize i = 0; i < G_N_ELEMENTS(fake_rows); i++)
		if (strcmp(fake_rows[i].name, name) == 0 &&
		    (fake_rows[i].qtype == 0 || fake_rows[i].qtype == qtype))
			return &fake_rows[i];
	return NULL;
}

/* The reply to `query`, NULL for none; *delay_ms_r when to send it. */
static GByteArray *
fake_reply(const guint8 *query, gssize len, guint *delay_ms_r)
{
	g_autoptr(GString) name = g_string_new(NULL);
	static const FakeRow nxdomain = { "", 0, FAKE_ANSWER, RCODE_NXDOMAIN, "" };
	const FakeRow *row;
	GByteArray *reply;
	gssize pos = 12;
	guint answers = 0;
	int qtype;

	if (len < 12)
		return NULL;
	while (pos < len && query[pos] != 0) {
		guint l = query[pos];

		if (pos + 1 + (gssize)l > len)
			return NULL;
		if (name->len > 0)
			g_string_append_c(name, '.');
		g_string_append_len(name, (const char *)query + pos + 1, l);
		pos += 1 + l;
	}
	if (pos + 5 > len)
		return NULL;
	qtype = query[pos + 1] << 8 | query[pos + 2];
	pos += 5;
	g_string_ascii_down(name);
	row = fake_find(name->str, qtype);
	if (row == NULL)
		row = &nxdomain;
	*delay_ms_r = row->delay_ms;
	if (row->kind == FAKE_SILENT)
		return NULL;
	reply = g_byte_array_new();
	g_byte_array_append(reply, query, 2);
	put16(reply, 0x8080 | (query[2] & 0x01) << 8 | (guint)row->rcode);
	put16(reply, 1);
	put16(reply, 0);
	put16(reply, 0);
	put16(reply, 0);
	g_byte_array_append(reply, query + 12, (guint)(pos - 12));
	if (row->kind == FAKE_MALFORMED) {
		answers = 1;
	} else if (row->records[0] != '\0') {
		g_auto(GStrv) records = g_strsplit(row->records, ";", -1);
		g_autofree char *owner = NULL;

		for (guint i = 0; records[i] != NULL; i++)
			answers += fake_add_record(reply, records[i], &owner);
	}
	reply->data[6] = (guint8)(answers >> 8);
	reply->data[7] = (guint8)answers;
	return reply;
}

static void
fake_pending_free(gpointer data)
{
	FakePending *p = data;

	g_byte_array_unref(p->reply);
	g_free(p);
}

static void
fake_send_due(FakeServer *fake)
{
	gint64 now = g_get_monotonic_time();

	for (guint i = 0; i < fake->pending->len;) {
		FakePending *p = fake->pending->pdata[i];

		if (p->due > now) {
			i++;
			continue;
		}
		(void)sendto(fake->fd, p->reply->data, p->reply->len, 0,
			     (struct sockaddr *)&p->to, sizeof p->to);
		g_ptr_array_remove_index(fake->pending, i);
	}
}

static gpointer
fake_thread(gpointer data)
{
	FakeServer *fake = data;

	while (!g_atomic_int_get(&fake->stop)) {
		struct pollfd pfd = { fake->fd, POLLIN, 0 };
		guint8 buf[1500];
		struct sockaddr_in from;
		socklen_t from_len = sizeof from;
		FakePending *p;
		GByteArray *reply;
		guint delay = 0;
		gssize n;

		fake_send_due(fake);
		if (poll(&pfd, 1, 10) <= 0)
			continue;
		n = recvfrom(fake->fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &from_len);
		if (n <= 0)
			continue;
		g_atomic_int_inc(&fake->queries);
		reply = fake_reply(buf, n, &delay);
		if (reply == NULL)
			continue;
		p = g_new0(FakePending, 1);
		p->due = g_get_monotonic_time() + (gint64)delay * 1000;
		p->to = from;
		p->reply = reply;
		g_ptr_array_add(fake->pending, p);
	}
	return NULL;
}

static FakeServer *
fake_start(void)
{
	FakeServer *fake = g_new0(FakeServer, 1);
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t len = sizeof addr;

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fake->fd = socket(AF_INET, SOCK_DGRAM, 0);
	g_assert_cmpint(fake->fd, >=, 0);
	g_assert_cmpint(bind(fake->fd, (struct sockaddr *)&addr, sizeof addr), ==, 0);
	g_assert_cmpint(getsockname(fake->fd, (struct sockaddr *)&addr, &len), ==, 0);
	fake->port = ntohs(addr.sin_port);
	fake->servers = g_strdup_printf("127.0.0.1:%u", fake->port);
	fake->pending = g_ptr_array_new_with_free_func(fake_pending_free);
	fake->thread = g_thread_new("fake-dns", fake_thread, fake);
	return fake;
}

static void
fake_stop(FakeServer *fake)
{
	g_atomic_int_set(&fake->stop, 1);
	g_thread_join(fake->thread);
	close(fake->fd);
	g_ptr_array_unref(fake->pending);
	g_free(fake->servers);
	g_free(fake);
}

static FakeServer *fake;

/* A resolver asking the fake server: 200 ms per try, 2 tries. */
static ImtaResolver *
fake_resolver(void)
{
	g_autoptr(GError) error = NULL;
	ImtaResolver *resolver = imta_resolver_new(fake->servers, 200, 2, &error);

	g_assert_no_error(error);
	g_assert_nonnull(resolver);
	return resolver;
}

/* `expected` with every "@" replaced by the fake server's address. */
static char *
with_server(const char *expected)
{
	g_autoptr(GString) out = g_string_new(expected);

	g_string_replace(out, "@", fake->servers, 0);
	return g_string_free(g_steal_pointer(&out), FALSE);
}

static const char *
status_name(ImtaDnsStatus status)
{
	switch (status) {
	case IMTA_DNS_OK:
		return "OK";
	case IMTA_DNS_NOT_FOUND:
		return "NOT_FOUND";
	case IMTA_DNS_TEMPFAIL:
		return "TEMPFAIL";
	}
	return "?";
}

/* Check a lookup's outcome: OK with `answer`, or a failure with exactly
 * the error `message` (after with_server). */
static void
check_outcome(const char *what, ImtaDnsStatus status, ImtaDnsStatus expected_status,
	      const char *answer, const char *expected_answer, const GError *error,
	      const char *expected_message)
{
	g_autofree char *escaped = g_strescape(what, NULL);

	g_test_message("%s", escaped);
	g_assert_cmpstr(status_name(status), ==, status_name(expected_status));
	if (expected_status == IMTA_DNS_OK) {
		g_assert_no_error(error);
		g_assert_cmpstr(answer, ==, expected_answer);
		return;
	}
	g_assert_nonnull(error);
	if (expected_status == IMTA_DNS_TEMPFAIL)
		g_assert_true(g_error_matches(error, G_RESOLVER_ERROR,
					      G_RESOLVER_ERROR_TEMPORARY_FAILURE));
	else
		g_assert_true(g_error_matches(error, G_RESOLVER_ERROR, G_RESOLVER_ERROR_NOT_FOUND) ||
			      g_error_matches(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT));
	{
		g_autofree char *message = with_server(expected_message);

		g_assert_cmpstr(error->message, ==, message);
	}
}

/* ---------------------------------------------------------------------- */
/* Block list query names. */

typedef struct {
	const char *ip;
	const char *zone;
	const char *expected;  /* NULL: no query name */
} QueryNameRow;

static const QueryNameRow query_name_rows[] = {
	{ "127.0.0.2", "zen.example.org", "2.0.0.127.zen.example.org" },
	{ "192.0.2.99", "bl.example.", "99.2.0.192.bl.example" },
	{ "0.0.0.0", "bl.test", "0.0.0.0.bl.test" },
	{ "255.255.255.255", "bl.test", "255.255.255.255.bl.test" },
	{ "2001:db8::1", "bl.test",
	  "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test" },
	{ "2001:DB8:ABCD:12::FE", "v6.bl.test",
	  "e.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.1.0.0.d.c.b.a.8.b.d.0.1.0.0.2.v6.bl.test" },
	{ "::1", "bl.test",
	  "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.bl.test" },
	{ "::", "bl.test",
	  "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.bl.test" },
	/* IPv4-mapped IPv6: the IPv4 address's name. */
	{ "::ffff:127.0.0.2", "bl.test", "2.0.0.127.bl.test" },
	{ "::FFFF:7f00:2", "bl.test", "2.0.0.127.bl.test" },
	{ "::ffff:192.0.2.1", "bl.test.", "1.2.0.192.bl.test" },
	/* IPv4-compatible (deprecated) addresses stay IPv6. */
	{ "::192.0.2.1", "bl.test",
	  "1.0.2.0.0.0.0.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.bl.test" },
	/* Garbage. */
	{ "", "bl.test", NULL },
	{ NULL, "bl.test", NULL },
	{ "127.0.0", "bl.test", NULL },
	{ "127.0.0.256", "bl.test", NULL },
	{ "127.0.0.1.5", "bl.test", NULL },
	{ "01.2.3.4", "bl.test", NULL },
	{ " 1.2.3.4", "bl.test", NULL },
	{ "1.2.3.4 ", "bl.test", NULL },
	{ "[192.0.2.1]", "bl.test", NULL },
	{ "192.0.2.1/32", "bl.test", NULL },
	{ "fe80::1%eth0", "bl.test", NULL },
	{ "2001:db8::1::2", "bl.test", NULL },
	{ "2001:db8:::1", "bl.test", NULL },
	{ "12345::1", "bl.test", NULL },
	{ "host.example", "bl.test", NULL },
	{ "0x7f.0.0.1", "bl.test", NULL },
	{ "127.0.0.2", "", NULL },
	{ "127.0.0.2", ".", NULL },
	{ "127.0.0.2", NULL, NULL },
};

static void
test_query_names(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(query_name_rows); i++) {
		const QueryNameRow *row = &query_name_rows[i];
		g_autofree char *name = imta_dnsbl_query_name(row->ip, row->zone);

		g_test_message("%s in %s", row->ip, row->zone);
		g_assert_cmpstr(name, ==, row->expected);
	}
}

/* ---------------------------------------------------------------------- */
/* The server list. */

typedef struct {
	const char *servers;
	const char *expected;  /* the servers as text, or the error message */
} ServersRow;

static const ServersRow servers_good_rows[] = {
	{ "127.0.0.1", "127.0.0.1:53" },
	{ "127.0.0.1:5353", "127.0.0.1:5353" },
	{ "[::1]", "[::1]:53" },
	{ "[::1]:5353", "[::1]:5353" },
	{ "127.0.0.1:5353, [::1]:53, 192.0.2.53", "127.0.0.1:5353, [::1]:53, 192.0.2.53:53" },
	{ " 10.0.0.1 ,10.0.0.2:65535 ", "10.0.0.1:53, 10.0.0.2:65535" },
	{ "[2001:DB8::1]:1", "[2001:db8::1]:1" },
	{ "192.0.2.1:053", "192.0.2.1:53" },
	{ "1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4,5.5.5.5,6.6.6.6,7.7.7.7,8.8.8.8",
	  "1.1.1.1:53, 2.2.2.2:53, 3.3.3.3:53, 4.4.4.4:53, 5.5.5.5:53, 6.6.6.6:53, "
	  "7.7.7.7:53, 8.8.8.8:53" },
};

/* c-ares 1.18 tells SERVFAIL, REFUSED and ICMP port unreachable apart
 * only when there is nothing to retry. */
#define FAILED_ALL "every name server failed or refused (SERVFAIL, REFUSED or port unreachable): @"

#define EXPECTED "expected \"addr\", \"addr:port\", \"[v6]\" or \"[v6]:port\""

static const ServersRow servers_bad_rows[] = {
	{ "localhost", "name server \"localhost\": not an IP address; " EXPECTED },
	{ "ns1.example.com:53", "name server \"ns1.example.com:53\": not an IP address; " EXPECTED },
	{ "256.1.1.1", "name server \"256.1.1.1\": not an IP address; " EXPECTED },
	{ "1.2.3", "name server \"1.2.3\": not an IP address; " EXPECTED },
	{ "1.2.3.4:0", "name server \"1.2.3.4:0\": expected a port from 1 to 65535, got \"0\"" },
	{ "1.2.3.4:65536",
	  "name server \"1.2.3.4:65536\": expected a port from 1 to 65535, got \"65536\"" },
	{ "1.2.3.4:", "name server \"1.2.3.4:\": expected a port from 1 to 65535, got \"\"" },
	{ "1.2.3.4:53x",
	  "name server \"1.2.3.4:53x\": expected a port from 1 to 65535, got \"53x\"" },
	{ "1.2.3.4:+53",
	  "name server \"1.2.3.4:+53\": expected a port from 1 to 65535, got \"+53\"" },
	{ "1.2.3.4:-1", "name server \"1.2.3.4:-1\": expected a port from 1 to 65535, got \"-1\"" },
	{ "1.2.3.4:999999",
	  "name server \"1.2.3.4:999999\": expected a port from 1 to 65535, got \"999999\"" },
	{ "1.2.3.4:53:53",
	  "name server \"1.2.3.4:53:53\": expected a port from 1 to 65535, got \"53:53\"" },
	{ "::1", "name server \"::1\": an IPv6 address must be written in brackets; " EXPECTED },
	{ "2001:db8::53",
	  "name server \"2001:db8::53\": an IPv6 address must be written in brackets; " EXPECTED },
	{ "[::1", "name server \"[::1\": no \"]\" after the IPv6 address; " EXPECTED },
	{ "[192.0.2.1]", "name server \"[192.0.2.1]\": not an IPv6 address inside \"[...]\"; "
	  EXPECTED },
	{ "[]:53", "name server \"[]:53\": not an IPv6 address inside \"[...]\"; " EXPECTED },
	{ "[fe80::1%eth0]", "name server \"[fe80::1%eth0]\": not an IPv6 address inside \"[...]\"; "
	  EXPECTED },
	{ "[::1]53", "name server \"[::1]53\": unexpected text after \"]\"; " EXPECTED },
	{ "[::1]:0", "name server \"[::1]:0\": expected a port from 1 to 65535, got \"0\"" },
	{ "1.2.3.4,,5.6.7.8",
	  "name server list \"1.2.3.4,,5.6.7.8\": entry 2 is empty; " EXPECTED },
	{ "1.2.3.4,", "name server list \"1.2.3.4,\": entry 2 is empty; " EXPECTED },
	{ ",1.2.3.4", "name server list \",1.2.3.4\": entry 1 is empty; " EXPECTED },
	{ "1.2.3.4 5.6.7.8", "name server \"1.2.3.4 5.6.7.8\": not an IP address; " EXPECTED },
	{ "1.2.3.4;5.6.7.8", "name server \"1.2.3.4;5.6.7.8\": not an IP address; " EXPECTED },
	{ "1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4,5.5.5.5,6.6.6.6,7.7.7.7,8.8.8.8,9.9.9.9",
	  "name server list \"1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4,5.5.5.5,6.6.6.6,7.7.7.7,8.8...\": "
	  "more than 8 servers" },
	{ "1.2.3.4\n5.6.7.8", "name server \"1.2.3.4\\x0a5.6.7.8\": not an IP address; " EXPECTED },
};

static void
test_servers_good(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(servers_good_rows); i++) {
		const ServersRow *row = &servers_good_rows[i];
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaResolver) resolver = imta_resolver_new(row->servers, 0, 0, &error);
		g_autofree char *text = NULL;
		const char *expected_check = NULL;

		g_test_message("%s", row->servers);
		g_assert_no_error(error);
		g_assert_nonnull(resolver);
		text = imta_resolver_servers_text(resolver);
		g_assert_cmpstr(text, ==, row->expected);
		g_assert_true(imta_dns_check_servers(row->servers, &expected_check));
		g_assert_null(expected_check);
	}
}

static void
test_servers_bad(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(servers_bad_rows); i++) {
		const ServersRow *row = &servers_bad_rows[i];
		g_autoptr(GError) error = NULL;
		ImtaResolver *resolver = imta_resolver_new(row->servers, 0, 0, &error);
		const char *expected_check = NULL;

		g_test_message("%s", row->servers);
		g_assert_null(resolver);
		g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
		g_assert_cmpstr(error->message, ==, row->expected);
		g_assert_false(imta_dns_check_servers(row->servers, &expected_check));
		g_assert_cmpstr(expected_check, ==,
				"a comma-separated list of \"addr\", \"addr:port\", \"[v6]\" or "
				"\"[v6]:port\" (ports 1 to 65535)");
	}
}

/* NULL, "" and blanks mean /etc/resolv.conf's servers, whatever they are. */
static void
test_servers_system(void)
{
	static const char *const inputs[] = { NULL, "", "  \t " };

	for (gsize i = 0; i < G_N_ELEMENTS(inputs); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaResolver) resolver = imta_resolver_new(inputs[i], 0, 0, &error);
		g_autofree char *text = NULL;

		g_assert_no_error(error);
		g_assert_nonnull(resolver);
		text = imta_resolver_servers_text(resolver);
		g_assert_cmpuint(strlen(text), >, 0);
	}
}

typedef struct {
	guint timeout_ms, tries;
	const char *message;  /* NULL: accepted */
} LimitRow;

static const LimitRow limit_rows[] = {
	{ 0, 0, NULL },
	{ 1, 1, NULL },
	{ 600000, 10, NULL },
	{ 600001, 2, "expected a DNS timeout from 1 to 600000 ms, got 600001" },
	{ 1000, 11, "expected 1 to 10 DNS tries, got 11" },
};

static void
test_servers_limits(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(limit_rows); i++) {
		const LimitRow *row = &limit_rows[i];
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaResolver) resolver =
			imta_resolver_new("127.0.0.1", row->timeout_ms, row->tries, &error);

		if (row->message == NULL) {
			g_assert_no_error(error);
			g_assert_nonnull(resolver);
			continue;
		}
		g_assert_null(resolver);
		g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
		g_assert_cmpstr(error->message, ==, row->message);
	}
}

typedef struct {
	const char *text;      /* option.dat */
	const char *expected;  /* servers text or error message */
} OptionsRow;

static const OptionsRow options_rows[] = {
	{ "DNS_SERVERS=127.0.0.1:5353\nDNS_TIMEOUT=1\n", "127.0.0.1:5353" },
	{ "DNS_SERVERS=[::1]:53,192.0.2.1\n", "[::1]:53, 192.0.2.1:53" },
	{ "DNS_SERVERS=dns.example\n",
	  "option.dat: DNS_SERVERS: name server \"dns.example\": not an IP address; " EXPECTED },
	{ "DNS_SERVERS=127.0.0.1:70000\n",
	  "option.dat: DNS_SERVERS: name server \"127.0.0.1:70000\": expected a port from 1 to "
	  "65535, got \"70000\"" },
};

static void
test_servers_options(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(options_rows); i++) {
		const OptionsRow *row = &options_rows[i];
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaOptionDat) od = imta_option_dat_parse_text("option.dat", row->text,
									 strlen(row->text), NULL,
									 &error);
		g_autoptr(ImtaResolver) resolver = NULL;
		g_autofree char *text = NULL;

		g_assert_no_error(error);
		resolver = imta_resolver_new_from_options(od, &error);
		if (resolver == NULL) {
			g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
			g_assert_cmpstr(error->message, ==, row->expected);
			continue;
		}
		g_assert_no_error(error);
		text = imta_resolver_servers_text(resolver);
		g_assert_cmpstr(text, ==, row->expected);
	}
}

/* ---------------------------------------------------------------------- */
/* Lookups against the fake server. */

typedef struct {
	const char *name;
	ImtaDnsStatus status;
	const char *expected;  /* answers joined by " ", or the error message */
} LookupRow;

static const LookupRow address_rows[] = {
	/* A then AAAA, each address once. */
	{ "host.test", IMTA_DNS_OK, "192.0.2.10 192.0.2.11 2001:db8::10" },
	{ "HOST.test.", IMTA_DNS_OK, "192.0.2.10 192.0.2.11 2001:db8::10" },
	{ "v4only.test", IMTA_DNS_OK, "192.0.2.20" },
	{ "v6only.test", IMTA_DNS_OK, "2001:db8::20" },
	{ "alias.test", IMTA_DNS_OK, "192.0.2.30" },
	{ "bücher.test", IMTA_DNS_OK, "192.0.2.50" },
	/* One family is enough, even when the other failed. */
	{ "halfway.test", IMTA_DNS_OK, "192.0.2.40" },
	{ "nx.test", IMTA_DNS_NOT_FOUND, "A/AAAA lookup of \"nx.test\": no such domain (NXDOMAIN)" },
	{ "nodata.test", IMTA_DNS_NOT_FOUND, "A/AAAA lookup of \"nodata.test\": no A/AAAA record" },
	{ "servfail.test", IMTA_DNS_TEMPFAIL,
	  "A lookup of \"servfail.test\": " FAILED_ALL },
	{ "refused.test", IMTA_DNS_TEMPFAIL,
	  "A lookup of \"refused.test\": " FAILED_ALL },
	{ "halfnx.test", IMTA_DNS_TEMPFAIL,
	  "A lookup of \"halfnx.test\": " FAILED_ALL },
	{ "malformed.test", IMTA_DNS_TEMPFAIL, "A lookup of \"malformed.test\": malformed answer" },
	{ "silent.test", IMTA_DNS_TEMPFAIL,
	  "A lookup of \"silent.test\": timed out: no answer from @ (200 ms per try, 2 tries)" },
	/* Names that cannot be asked. */
	{ "", IMTA_DNS_NOT_FOUND,
	  "A/AAAA lookup of \"\": not a domain name (expected a domain name)" },
	{ ".", IMTA_DNS_NOT_FOUND, "A/AAAA lookup of \".\": not a domain name (an empty label)" },
	{ "a..test", IMTA_DNS_NOT_FOUND,
	  "A/AAAA lookup of \"a..test\": not a domain name (an empty label)" },
	{ ".test", IMTA_DNS_NOT_FOUND,
	  "A/AAAA lookup of \".test\": not a domain name (an empty label)" },
	{ "test..", IMTA_DNS_NOT_FOUND,
	  "A/AAAA lookup of \"test..\": not a domain name (an empty label)" },
	{ "a b.test", IMTA_DNS_NOT_FOUND,
	  "A/AAAA lookup of \"a b.test\": not a domain name (a character that is not a letter, "
	  "digit, '-' or '_')" },
	{ "[192.0.2.1]", IMTA_DNS_NOT_FOUND,
	  "A/AAAA lookup of \"[192.0.2.1]\": not a domain name (a character that is not a letter, "
	  "digit, '-' or '_')" },
	{ "a\nb.test", IMTA_DNS_NOT_FOUND,
	  "A/AAAA lookup of \"a\\x0ab.test\": not a domain name (a character that is not a letter, "
	  "digit, '-' or '_')" },
	{ "\xff.test", IMTA_DNS_NOT_FOUND,
	  "A/AAAA lookup of \"\\xff.test\": not a domain name (a character that is not a letter, "
	  "digit, '-' or '_')" },
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test", IMTA_DNS_NOT_FOUND,
	  "A/AAAA lookup of \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\": "
	  "not a domain name (a label longer than 63 characters)" },
};

static char *
join_addresses(GPtrArray *addresses)
{
	g_autoptr(GString) out = g_string_new(NULL);

	for (guint i = 0; addresses != NULL && i < addresses->len; i++)
		g_string_append_printf(out, "%s%s", i > 0 ? " " : "",
				       (const char *)addresses->pdata[i]);
	return g_string_free(g_steal_pointer(&out), FALSE);
}

static void
test_lookup_addresses(void)
{
	g_autoptr(ImtaResolver) resolver = fake_resolver();
	g_autofree char *label63 = g_strnfill(63, 'a');
	g_autofree char *label62 = g_strnfill(62, 'b');
	/* 254 characters in labels of at most 63: one too many. */
	g_autofree char *long_name = g_strdup_printf("%s.%s.%s.%s", label63, label63, label63,
						     label62);

	for (gsize i = 0; i < G_N_ELEMENTS(address_rows); i++) {
		const LookupRow *row = &address_rows[i];
		g_autoptr(GPtrArray) addresses = NULL;
		g_autoptr(GError) error = NULL;
		ImtaDnsStatus status = imta_dns_lookup_addresses(resolver, row->name, &addresses,
								 &error);
		g_autofree char *answer = join_addresses(addresses);

		check_outcome(row->name, status, row->status, answer, row->expected, error,
			      row->expected);
		if (status != IMTA_DNS_OK)
			g_assert_null(addresses);
	}
	g_assert_cmpuint(strlen(long_name), ==, 254);
	{
		g_autoptr(GPtrArray) addresses = NULL;
		g_autoptr(GError) error = NULL;

		g_assert_cmpint(imta_dns_lookup_addresses(resolver, long_name, &addresses, &error),
				==, IMTA_DNS_NOT_FOUND);
		g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
		g_assert_true(g_str_has_suffix(error->message,
					       "not a domain name (longer than 253 characters)"));
	}
}

static const LookupRow mx_rows[] = {
	/* By preference; equal preferences in answer order. */
	{ "mx.test", IMTA_DNS_OK, "5 e.mx.test, 10 a.mx.test, 10 d.mx.test, 20 b.mx.test, "
				  "20 c.mx.test" },
	{ "mx.test.", IMTA_DNS_OK, "5 e.mx.test, 10 a.mx.test, 10 d.mx.test, 20 b.mx.test, "
				   "20 c.mx.test" },
	{ "nullmx.test", IMTA_DNS_OK, "0 ." },
	{ "host.test", IMTA_DNS_NOT_FOUND, "MX lookup of \"host.test\": no MX record" },
	{ "nx.test", IMTA_DNS_NOT_FOUND, "MX lookup of \"nx.test\": no such domain (NXDOMAIN)" },
	{ "servfail.test", IMTA_DNS_TEMPFAIL,
	  "MX lookup of \"servfail.test\": " FAILED_ALL },
	{ "malformed.test", IMTA_DNS_TEMPFAIL, "MX lookup of \"malformed.test\": malformed answer" },
	{ "silent.test", IMTA_DNS_TEMPFAIL,
	  "MX lookup of \"silent.test\": timed out: no answer from @ (200 ms per try, 2 tries)" },
	{ "a..b", IMTA_DNS_NOT_FOUND, "MX lookup of \"a..b\": not a domain name (an empty label)" },
};

static void
test_lookup_mx(void)
{
	g_autoptr(ImtaResolver) resolver = fake_resolver();

	for (gsize i = 0; i < G_N_ELEMENTS(mx_rows); i++) {
		const LookupRow *row = &mx_rows[i];
		g_autoptr(GPtrArray) records = NULL;
		g_autoptr(GError) error = NULL;
		g_autoptr(GString) answer = g_string_new(NULL);
		ImtaDnsStatus status;

		status = imta_dns_lookup_mx(resolver, row->name, &records, &error);
		for (guint r = 0; records != NULL && r < records->len; r++) {
			const ImtaDnsMx *mx = records->pdata[r];

			g_string_append_printf(answer, "%s%u %s", r > 0 ? ", " : "", mx->preference,
					       mx->host);
		}
		check_outcome(row->name, status, row->status, answer->str, row->expected, error,
			      row->expected);
	}
}

static const LookupRow ptr_rows[] = {
	{ "192.0.2.10", IMTA_DNS_OK, "host.test" },
	{ "::ffff:192.0.2.10", IMTA_DNS_OK, "host.test" },
	{ "2001:db8::1", IMTA_DNS_OK, "six.test" },
	{ "192.0.2.11", IMTA_DNS_NOT_FOUND,
	  "PTR lookup of \"11.2.0.192.in-addr.arpa\": no such domain (NXDOMAIN)" },
	/* A name that could not go into a Received: header as it is. */
	{ "192.0.2.20", IMTA_DNS_TEMPFAIL,
	  "PTR lookup of \"20.2.0.192.in-addr.arpa\": malformed answer" },
	{ "192.0.2.30", IMTA_DNS_TEMPFAIL,
	  "PTR lookup of \"30.2.0.192.in-addr.arpa\": " FAILED_ALL },
	{ "host.test", IMTA_DNS_NOT_FOUND, "PTR lookup of \"host.test\": not an IP address" },
	{ "192.0.2.1 ", IMTA_DNS_NOT_FOUND, "PTR lookup of \"192.0.2.1 \": not an IP address" },
	{ "", IMTA_DNS_NOT_FOUND, "PTR lookup of \"\": not an IP address" },
};

static void
test_lookup_ptr(void)
{
	g_autoptr(ImtaResolver) resolver = fake_resolver();

	for (gsize i = 0; i < G_N_ELEMENTS(ptr_rows); i++) {
		const LookupRow *row = &ptr_rows[i];
		g_autoptr(GError) error = NULL;
		g_autofree char *name = NULL;
		ImtaDnsStatus status = imta_dns_lookup_ptr(resolver, row->name, &name, &error);

		check_outcome(row->name, status, row->status, name, row->expected, error,
			      row->expected);
		if (status != IMTA_DNS_OK)
			g_assert_null(name);
	}
}

/* A server that never answers costs timeout x tries x servers, no more. */
static void
test_lookup_time_bound(void)
{
	static const struct {
		guint timeout_ms, tries, servers;
	} rows[] = { { 200, 1, 1 }, { 200, 2, 1 }, { 150, 2, 2 } };

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *list = rows[i].servers == 1 ? g_strdup(fake->servers) :
			g_strdup_printf("%s,%s", fake->servers, fake->servers);
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaResolver) resolver =
			imta_resolver_new(list, rows[i].timeout_ms, rows[i].tries, &error);
		g_autoptr(GPtrArray) records = NULL;
		gint64 bound_ms = (gint64)rows[i].timeout_ms * rows[i].tries * rows[i].servers;
		gint64 start, elapsed_ms;

		g_assert_no_error(error);
		start = g_get_monotonic_time();
		g_assert_cmpint(imta_dns_lookup_mx(resolver, "silent.test", &records, &error), ==,
				IMTA_DNS_TEMPFAIL);
		elapsed_ms = (g_get_monotonic_time() - start) / 1000;
		g_test_message("%u ms x %u tries x %u servers: %" G_GINT64_FORMAT " ms",
			       rows[i].timeout_ms, rows[i].tries, rows[i].servers, elapsed_ms);
		g_assert_cmpint(elapsed_ms, >=, bound_ms - 20);
		g_assert_cmpint(elapsed_ms, <, bound_ms + 500);
		g_assert_error(error, G_RESOLVER_ERROR, G_RESOLVER_ERROR_TEMPORARY_FAILURE);
	}
}

/* ---------------------------------------------------------------------- */
/* Block lists. */

typedef struct {
	const char *ip;
	const char *zone;
	ImtaDnsStatus status;
	const char *expected;  /* the listing address, or the error message */
} DnsblRow;

static const DnsblRow dnsbl_rows[] = {
	/* RFC 5782's test entry. */
	{ "127.0.0.2", "bl.test", IMTA_DNS_OK, "127.0.0.2" },
	{ "127.0.0.2", "bl.test.", IMTA_DNS_OK, "127.0.0.2" },
	{ "::ffff:127.0.0.2", "bl.test", IMTA_DNS_OK, "127.0.0.2" },
	{ "2001:db8::1", "bl.test", IMTA_DNS_OK, "127.0.0.10" },
	{ "127.0.0.2", "mixed.test", IMTA_DNS_OK, "127.0.0.9" },
	{ "127.0.0.3", "bl.test", IMTA_DNS_NOT_FOUND,
	  "A lookup of \"3.0.0.127.bl.test\": no such domain (NXDOMAIN)" },
	{ "127.0.0.2", "broken.test", IMTA_DNS_TEMPFAIL,
	  "A lookup of \"2.0.0.127.broken.test\": " FAILED_ALL },
	{ "127.0.0.2", "dead.test", IMTA_DNS_TEMPFAIL,
	  "A lookup of \"2.0.0.127.dead.test\": timed out: no answer from @ (200 ms per try, "
	  "2 tries)" },
	{ "127.0.0.2", "parked.test", IMTA_DNS_TEMPFAIL,
	  "A lookup of \"2.0.0.127.parked.test\": parked.test answered 192.0.2.80, outside "
	  "127.0.0.0/8: not a block list answer" },
	{ "127.0.0.2", "codes.test", IMTA_DNS_TEMPFAIL,
	  "A lookup of \"2.0.0.127.codes.test\": codes.test answered 127.255.255.254, an error "
	  "code of the list (127.255.255.0/24), not a listing" },
	{ "localhost", "bl.test", IMTA_DNS_NOT_FOUND,
	  "block list check of \"localhost\": not an IP address" },
	{ "127.0.0.2", "", IMTA_DNS_NOT_FOUND, "block list check of 127.0.0.2: no zone given" },
	{ "127.0.0.2", "bad zone", IMTA_DNS_NOT_FOUND,
	  "block list check of \"2.0.0.127.bad zone\": not a domain name (a character that is "
	  "not a letter, digit, '-' or '_')" },
};

static void
test_dnsbl_check(void)
{
	g_autoptr(ImtaResolver) resolver = fake_resolver();

	for (gsize i = 0; i < G_N_ELEMENTS(dnsbl_rows); i++) {
		const DnsblRow *row = &dnsbl_rows[i];
		g_autoptr(GError) error = NULL;
		g_autofree char *answer = NULL;
		g_autofree char *what = g_strdup_printf("%s in %s", row->ip, row->zone);
		ImtaDnsStatus status = imta_dnsbl_check(resolver, row->ip, row->zone, &answer,
							&error);

		check_outcome(what, status, row->status, answer, row->expected, error,
			      row->expected);
		if (status != IMTA_DNS_OK)
			g_assert_null(answer);
	}
}

typedef struct {
	const char *ip;
	const char *zones;     /* space-separated */
	ImtaDnsStatus status;
	const char *expected;  /* the zone, or the error message */
} ZonesRow;

static const ZonesRow zones_rows[] = {
	/* The first listing zone in list order, even when a later one answers first. */
	{ "127.0.0.2", "slow.test bl.test", IMTA_DNS_OK, "slow.test" },
	{ "127.0.0.2", "bl.test bl2.test", IMTA_DNS_OK, "bl.test" },
	{ "127.0.0.2", "bl2.test bl.test", IMTA_DNS_OK, "bl2.test" },
	{ "127.0.0.2", "nx.test bl2.test", IMTA_DNS_OK, "bl2.test" },
	/* A listing outweighs failures. */
	{ "127.0.0.2", "dead.test broken.test parked.test bl2.test", IMTA_DNS_OK, "bl2.test" },
	{ "127.0.0.2", "bl.test dead.test", IMTA_DNS_OK, "bl.test" },
	{ "127.0.0.3", "bl.test bl2.test", IMTA_DNS_NOT_FOUND,
	  "127.0.0.3 is not listed in bl.test, bl2.test" },
	/* TEMPFAIL only when none lists it; the first failure is told. */
	{ "127.0.0.3", "bl.test", IMTA_DNS_NOT_FOUND, "127.0.0.3 is not listed in bl.test" },
	{ "127.0.0.2", "nx.test broken.test", IMTA_DNS_TEMPFAIL,
	  "A lookup of \"2.0.0.127.broken.test\": " FAILED_ALL },
	{ "127.0.0.2", "codes.test dead.test", IMTA_DNS_TEMPFAIL,
	  "A lookup of \"2.0.0.127.codes.test\": codes.test answered 127.255.255.254, an error "
	  "code of the list (127.255.255.0/24), not a listing" },
	{ "127.0.0.2", "", IMTA_DNS_NOT_FOUND, "block list check: expected 1 to 32 zones, got 0" },
	{ "garbage", "bl.test", IMTA_DNS_NOT_FOUND,
	  "block list check of \"garbage\": not an IP address" },
};

static void
test_dnsbl_zones(void)
{
	g_autoptr(ImtaResolver) resolver = fake_resolver();

	for (gsize i = 0; i < G_N_ELEMENTS(zones_rows); i++) {
		const ZonesRow *row = &zones_rows[i];
		g_auto(GStrv) zones = g_strsplit(row->zones, " ", -1);
		g_autoptr(GError) error = NULL;
		g_autofree char *what = g_strdup_printf("%s in %s", row->ip, row->zones);
		const char *zone = NULL;
		ImtaDnsStatus status;

		if (row->zones[0] == '\0')
			g_clear_pointer(&zones[0], g_free);
		status = imta_dnsbl_check_zones(resolver, row->ip, (const char *const *)zones, &zone,
						&error);
		check_outcome(what, status, row->status, zone, row->expected, error, row->expected);
	}
}

/* ---------------------------------------------------------------------- */
/* The _async calls. */

typedef struct {
	GMainContext *context;  /* where the callback must run */
	GThread *thread;
	guint calls;
	ImtaDnsStatus status;
	char *value;
} AsyncResult;

static void
async_check_thread(AsyncResult *result)
{
	g_assert_true(g_thread_self() == result->thread);
	g_assert_true(g_main_context_is_owner(result->context));
	result->calls++;
}

static void
async_dnsbl_done(ImtaDnsStatus status, const char *zone, gpointer data)
{
	AsyncResult *result = data;

	async_check_thread(result);
	result->status = status;
	result->value = g_strdup(zone);
}

static void
async_ptr_done(ImtaDnsStatus status, const char *name, gpointer data)
{
	AsyncResult *result = data;

	async_check_thread(result);
	result->status = status;
	result->value = g_strdup(name);
}

/* Iterate `context` until `result` was called back or `ms` passed. */
static void
async_wait(AsyncResult *result, guint ms)
{
	gint64 until = g_get_monotonic_time() + (gint64)ms * 1000;

	while (result->calls == 0 && g_get_monotonic_time() < until) {
		g_main_context_iteration(result->context, FALSE);
		g_usleep(1000);
	}
}

typedef struct {
	const char *zones;
	ImtaDnsStatus status;
	const char *zone;
} AsyncDnsblRow;

static const AsyncDnsblRow async_dnsbl_rows[] = {
	{ "slow.test bl.test", IMTA_DNS_OK, "slow.test" },
	{ "nx.test bl2.test", IMTA_DNS_OK, "bl2.test" },
	{ "nx.test bl.test.", IMTA_DNS_OK, "bl.test." },
	{ "nx.test other.test", IMTA_DNS_NOT_FOUND, NULL },
	{ "dead.test nx.test", IMTA_DNS_TEMPFAIL, NULL },
};

/* On a thread with its own thread-default context, as a worker has. */
static gpointer
async_dnsbl_thread(gpointer data)
{
	ImtaResolver *resolver = data;
	g_autoptr(GMainContext) context = g_main_context_new();

	g_main_context_push_thread_default(context);
	for (gsize i = 0; i < G_N_ELEMENTS(async_dnsbl_rows); i++) {
		const AsyncDnsblRow *row = &async_dnsbl_rows[i];
		g_auto(GStrv) zones = g_strsplit(row->zones, " ", -1);
		AsyncResult result = { context, g_thread_self() };

		g_test_message("async %s", row->zones);
		imta_dnsbl_check_async(resolver, "127.0.0.2", (const char *const *)zones, NULL,
				       async_dnsbl_done, &result);
		/* Never called back from inside the call. */
		g_assert_cmpuint(result.calls, ==, 0);
		async_wait(&result, 5000);
		g_assert_cmpuint(result.calls, ==, 1);
		g_assert_cmpstr(status_name(result.status), ==, status_name(row->status));
		g_assert_cmpstr(result.value, ==, row->zone);
		g_free(result.value);
	}
	g_main_context_pop_thread_default(context);
	return NULL;
}

static void
test_async_dnsbl(void)
{
	g_autoptr(ImtaResolver) resolver = fake_resolver();
	GThread *thread = g_thread_new("async-dnsbl", async_dnsbl_thread, resolver);

	g_thread_join(thread);
}

static void
test_async_ptr(void)
{
	static const struct {
		const char *ip;
		ImtaDnsStatus status;
		const char *name;
	} rows[] = {
		{ "192.0.2.10", IMTA_DNS_OK, "host.test" },
		{ "2001:db8::1", IMTA_DNS_OK, "six.test" },
		{ "192.0.2.11", IMTA_DNS_NOT_FOUND, NULL },
		{ "192.0.2.30", IMTA_DNS_TEMPFAIL, NULL },
		{ "no address", IMTA_DNS_NOT_FOUND, NULL },
	};
	g_autoptr(ImtaResolver) resolver = fake_resolver();

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		AsyncResult result = { g_main_context_default(), g_thread_self() };

		imta_dns_lookup_ptr_async(resolver, rows[i].ip, NULL, async_ptr_done, &result);
		async_wait(&result, 5000);
		g_assert_cmpuint(result.calls, ==, 1);
		g_assert_cmpstr(status_name(result.status), ==, status_name(rows[i].status));
		g_assert_cmpstr(result.value, ==, rows[i].name);
		g_free(result.value);
	}
}

/* Cancelled before or during the lookup: never called back.  The wait is
 * longer than the lookups would take. */
static void
test_async_cancel(void)
{
	g_autoptr(ImtaResolver) resolver = fake_resolver();
	const char *const zones[] = { "dead.test", "slow.test", NULL };

	for (int when = 0; when < 2; when++) {
		g_autoptr(GCancellable) cancellable = g_cancellable_new();
		AsyncResult ptr = { g_main_context_default(), g_thread_self() };
		AsyncResult bl = { g_main_context_default(), g_thread_self() };

		if (when == 0)
			g_cancellable_cancel(cancellable);
		imta_dns_lookup_ptr_async(resolver, "192.0.2.40", cancellable, async_ptr_done, &ptr);
		imta_dnsbl_check_async(resolver, "127.0.0.2", zones, cancellable, async_dnsbl_done,
				       &bl);
		if (when == 1) {
			async_wait(&bl, 50);
			g_cancellable_cancel(cancellable);
		}
		async_wait(&bl, 1200);
		async_wait(&ptr, 100);
		g_assert_cmpuint(ptr.calls, ==, 0);
		g_assert_cmpuint(bl.calls, ==, 0);
	}
}

/* The caller may free the resolver while its lookups run. */
static void
test_async_free(void)
{
	ImtaResolver *resolver = fake_resolver();
	AsyncResult result = { g_main_context_default(), g_thread_self() };

	imta_dns_lookup_ptr_async(resolver, "192.0.2.10", NULL, async_ptr_done, &result);
	imta_resolver_free(resolver);
	async_wait(&result, 5000);
	g_assert_cmpuint(result.calls, ==, 1);
	g_assert_cmpstr(result.value, ==, "host.test");
	g_free(result.value);
}

/* ---------------------------------------------------------------------- */
/* Many threads on one resolver: each gets its own channel. */

#define THREADS 8
#define LOOKUPS_PER_THREAD 40

static gpointer
threads_worker(gpointer data)
{
	ImtaResolver *resolver = data;
	guint ok = 0;

	for (guint i = 0; i < LOOKUPS_PER_THREAD; i++) {
		g_autoptr(GPtrArray) records = NULL;
		g_autoptr(GPtrArray) addresses = NULL;
		g_autoptr(GError) error = NULL;

		if (i % 2 == 0 && imta_dns_lookup_mx(resolver, "mx.test", &records, &error) ==
		    IMTA_DNS_OK && records->len == 5)
			ok++;
		if (i % 2 == 1 && imta_dns_lookup_addresses(resolver, "host.test", &addresses,
							    &error) == IMTA_DNS_OK &&
		    addresses->len == 3)
			ok++;
	}
	return GUINT_TO_POINTER(ok);
}

static void
test_threads(void)
{
	g_autoptr(ImtaResolver) resolver = fake_resolver();
	GThread *threads[THREADS];

	for (guint i = 0; i < THREADS; i++)
		threads[i] = g_thread_new("lookups", threads_worker, resolver);
	for (guint i = 0; i < THREADS; i++)
		g_assert_cmpuint(GPOINTER_TO_UINT(g_thread_join(threads[i])), ==,
				 LOOKUPS_PER_THREAD);
}

int
main(int argc, char **argv)
{
	int status;

	g_test_init(&argc, &argv, NULL);
	fake = fake_start();
	g_test_add_func("/dns/dnsbl/query-names", test_query_names);
	g_test_add_func("/dns/servers/good", test_servers_good);
	g_test_add_func("/dns/servers/bad", test_servers_bad);
	g_test_add_func("/dns/servers/system", test_servers_system);
	g_test_add_func("/dns/servers/limits", test_servers_limits);
	g_test_add_func("/dns/servers/option-dat", test_servers_options);
	g_test_add_func("/dns/lookup/addresses", test_lookup_addresses);
	g_test_add_func("/dns/lookup/mx", test_lookup_mx);
	g_test_add_func("/dns/lookup/ptr", test_lookup_ptr);
	g_test_add_func("/dns/lookup/time-bound", test_lookup_time_bound);
	g_test_add_func("/dns/dnsbl/check", test_dnsbl_check);
	g_test_add_func("/dns/dnsbl/zones", test_dnsbl_zones);
	g_test_add_func("/dns/async/dnsbl", test_async_dnsbl);
	g_test_add_func("/dns/async/ptr", test_async_ptr);
	g_test_add_func("/dns/async/cancel", test_async_cancel);
	g_test_add_func("/dns/async/free-while-running", test_async_free);
	g_test_add_func("/dns/threads", test_threads);
	status = g_test_run();
	fake_stop(fake);
	return status;
}
