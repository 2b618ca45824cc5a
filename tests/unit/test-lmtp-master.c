/*
 * test-lmtp-master.c - the lmtp channel's master program: the store a
 * recipient's source route names, the LMTP_SERVER forms, the channel
 * option file, routes to one named server, and whole jobs against a
 * scripted LMTP server in this process (on a UNIX-domain socket and on
 * TCP) that answers each recipient after the content as its address says.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/imta.h>
#include <imta/imta_cnf.h>
#include <imta/option_dat.h>
#include <imta/smtp_relay.h>
#include <imta/tailor.h>

#include "../../plugins/lmtp/master.h"
#include "../../plugins/lmtp/options.h"

/* ---- the route in the address ----------------------------------------- */

static void
test_route_host(void)
{
	static const struct {
		const char *address;
		const char *host;      /* NULL: no route */
		const char *mailbox;
	} rows[] = {
		{ "@store.example.net.lmtp:joe%example.org@lmtp-daemon", "store.example.net",
		  "joe%example.org@lmtp-daemon" },
		{ "@Store.Example.NET.LMTP:alice@lmtp-daemon", "store.example.net",
		  "alice@lmtp-daemon" },
		{ "@store.example.net:alice@example.com", "store.example.net", "alice@example.com" },
		{ "@a.lmtp,@b.example:joe+Lists@lmtp-daemon", "a", "joe+Lists@lmtp-daemon" },
		{ "@store.test.lmtp.:bob@x", "store.test", "bob@x" },
		{ "@[192.0.2.7].lmtp:bob@x", "[192.0.2.7]", "bob@x" },
		{ "alice@example.com", NULL, "alice@example.com" },
		{ "@.lmtp:alice@x", NULL, "alice@x" },
		{ "@:alice@x", NULL, "alice@x" },
		{ "@nocolon", NULL, "@nocolon" },
		{ "", NULL, "" },
	};

	for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
		const char *mailbox = NULL;
		g_autofree char *host = lmtp_master_route_host(rows[i].address, &mailbox);

		g_assert_cmpstr(host, ==, rows[i].host);
		g_assert_cmpstr(mailbox, ==, rows[i].mailbox);
	}
}

/* ---- LMTP_SERVER ----------------------------------------------------- */

static void
test_options_server(void)
{
	static const struct {
		const char *value;
		gboolean ok;
		const char *host;
		guint16 port;
		const char *socket;
	} rows[] = {
		{ "store.example.net", TRUE, "store.example.net", 0, NULL },
		{ "store.example.net:2424", TRUE, "store.example.net", 2424, NULL },
		{ "192.0.2.1:24", TRUE, "192.0.2.1", 24, NULL },
		{ "[192.0.2.1]", TRUE, "[192.0.2.1]", 0, NULL },
		{ "[IPv6:2001:db8::1]:225", TRUE, "[IPv6:2001:db8::1]", 225, NULL },
		{ "/run/dovecot/lmtp", TRUE, NULL, 0, "/run/dovecot/lmtp" },
		{ "store.example.net:0", FALSE, NULL, 0, NULL },
		{ "store.example.net:65536", FALSE, NULL, 0, NULL },
		{ "store.example.net:x", FALSE, NULL, 0, NULL },
		{ ":24", FALSE, NULL, 0, NULL },
		{ "store example", FALSE, NULL, 0, NULL },
		{ "[192.0.2.1", FALSE, NULL, 0, NULL },
		{ "[]:24", FALSE, NULL, 0, NULL },
		{ "[192.0.2.1]x", FALSE, NULL, 0, NULL },
		{ "run/lmtp", FALSE, NULL, 0, NULL },
	};

	for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *host = NULL;
		g_autofree char *socket = NULL;
		guint16 port = 99;
		gboolean ok = lmtp_options_parse_server(rows[i].value, &host, &port, &socket);

		g_assert_cmpint(ok, ==, rows[i].ok);
		if (!ok)
			continue;
		g_assert_cmpstr(host, ==, rows[i].host);
		g_assert_cmpuint(port, ==, rows[i].port);
		g_assert_cmpstr(socket, ==, rows[i].socket);
	}
}

static char *
write_temp(const char *dir, const char *name, const char *text)
{
	char *path = g_build_filename(dir, name, NULL);

	g_assert_true(g_file_set_contents(path, text, -1, NULL));
	return path;
}

static void
test_options_load(void)
{
	static const struct {
		const char *text;
		const char *server;
		gint64 threads, recipients, delivery;
		const char *error;    /* after the file name */
	} rows[] = {
		{ "", NULL, 10, 100, 600, NULL },
		{ "LMTP_SERVER=/run/lmtp.sock\nMAX_CLIENT_THREADS=4\n", "/run/lmtp.sock", 4, 100,
		  600, NULL },
		{ "lmtp_server = store.example.net:24\nDELIVERY_TIMEOUT=PT2M\n"
		  "ALLOW_RECIPIENTS_PER_TRANSACTION=7\n", "store.example.net:24", 10, 7, 120, NULL },
		{ "LMTP_SERVER=store:99999\n", NULL, 0, 0, 0,
		  ":1:13: expected host, host:port, [address]:port or the absolute path of a "
		  "socket for LMTP_SERVER, got \"store:99999\"" },
		{ "MAX_CLIENT_THREADS=0\n", NULL, 0, 0, 0,
		  ":1:20: expected an integer between 1 and 1000 for MAX_CLIENT_THREADS, got \"0\"" },
		{ "LMTP_SERVR=x\n", NULL, 0, 0, 0,
		  ":1:1: unknown LMTP channel option \"LMTP_SERVR\" (did you mean LMTP_SERVER?)" },
		{ "\n[SECTION=x]\n", NULL, 0, 0, 0,
		  ":2:1: a channel option file has no sections; expected NAME=value" },
	};
	g_autofree char *dir = g_dir_make_tmp("test-lmtp-opt-XXXXXX", NULL);

	for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *path = write_temp(dir, "lmtp_option", rows[i].text);
		g_autoptr(GError) error = NULL;
		g_autoptr(LmtpOptions) options = lmtp_options_load(path, &error);

		if (rows[i].error != NULL) {
			g_autofree char *expected = g_strconcat(path, rows[i].error, NULL);

			g_assert_null(options);
			g_assert_nonnull(error);
			g_assert_cmpstr(error->message, ==, expected);
		} else {
			g_assert_no_error(error);
			g_assert_cmpstr(options->server, ==, rows[i].server);
			g_assert_cmpint(options->max_client_threads, ==, rows[i].threads);
			g_assert_cmpint(options->recipients_per_transaction, ==,
					rows[i].recipients);
			g_assert_cmpint(options->delivery_timeout, ==, rows[i].delivery);
			g_assert_cmpstr(options->path, ==, path);
		}
		g_unlink(path);
	}
	{
		g_autofree char *missing = g_build_filename(dir, "none_option", NULL);
		g_autoptr(GError) error = NULL;
		g_autoptr(LmtpOptions) options = lmtp_options_load(missing, &error);

		g_assert_no_error(error);
		g_assert_null(options->path);
		g_assert_cmpint(options->connect_timeout, ==, 30);
	}
	g_rmdir(dir);
}

/* ---- routes to a named server ----------------------------------------- */

static ImtaDnsStatus
table_addresses(gpointer data, const char *name, GPtrArray **addresses_r, GError **error)
{
	*addresses_r = g_ptr_array_new_with_free_func(g_free);
	if (strcmp(name, "store.test") == 0) {
		g_ptr_array_add(*addresses_r, g_strdup("192.0.2.10"));
		g_ptr_array_add(*addresses_r, g_strdup("2001:db8::10"));
		return IMTA_DNS_OK;
	}
	g_clear_pointer(addresses_r, g_ptr_array_unref);
	if (strcmp(name, "slow.test") == 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "lookup of slow.test timed out");
		return IMTA_DNS_TEMPFAIL;
	}
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "%s does not exist", name);
	return IMTA_DNS_NOT_FOUND;
}

static void
test_route_named(void)
{
	static const struct {
		const char *name;
		const char *hops;        /* "address:port ..." */
		ImtaOutcome outcome;
		const char *diagnostic;
	} rows[] = {
		{ "store.test", "192.0.2.10:24 2001:db8::10:24", IMTA_OUTCOME_NONE, NULL },
		{ "STORE.test", "192.0.2.10:24 2001:db8::10:24", IMTA_OUTCOME_NONE, NULL },
		{ "[192.0.2.5]", "192.0.2.5:24", IMTA_OUTCOME_NONE, NULL },
		{ "192.0.2.6", "192.0.2.6:24", IMTA_OUTCOME_NONE, NULL },
		{ "[IPv6:2001:db8::7]", "2001:db8::7:24", IMTA_OUTCOME_NONE, NULL },
		{ "[300.1.1.1]", "", IMTA_OUTCOME_RETRY,
		  "4.4.4 LMTP server [300.1.1.1] is not a valid address literal" },
		{ "gone.test", "", IMTA_OUTCOME_RETRY,
		  "4.1.2 LMTP server gone.test: Host or domain name not found: gone.test does "
		  "not exist" },
		{ "slow.test", "", IMTA_OUTCOME_RETRY,
		  "4.4.3 LMTP server slow.test: lookup of slow.test timed out" },
	};
	ImtaSmtpRouteDns dns = { NULL, table_addresses, NULL };

	for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(ImtaSmtpRoute) route = imta_smtp_route_host(&dns, rows[i].name, 24,
								      "LMTP server");
		g_autoptr(GString) hops = g_string_new(NULL);

		for (guint h = 0; h < route->hops->len; h++) {
			const ImtaSmtpHop *hop = route->hops->pdata[h];

			g_string_append_printf(hops, "%s%s:%u", h > 0 ? " " : "", hop->address,
					       hop->port);
		}
		g_assert_cmpstr(hops->str, ==, rows[i].hops);
		g_assert_cmpint(route->outcome, ==, rows[i].outcome);
		g_assert_cmpstr(route->diagnostic, ==, rows[i].diagnostic);
	}
}

/* ---- the client on UNIX-domain sockets -------------------------------- */

static void
test_client_socket_errors(void)
{
	g_autofree char *long_path = g_strnfill(120, 'x');
	static const struct {
		const char *path;      /* NULL: the long one */
		const char *error;
	} rows[] = {
		{ "/nonexistent/lmtp.sock", "cannot connect to store [unix:/nonexistent/lmtp.sock]: "
					    "No such file or directory" },
		{ "", "cannot connect to store [unix:]: the socket path is empty" },
		{ NULL, "the socket path is too long" },
	};

	for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
		ImtaSmtpClientPeer peer = {
			.host = "store", .socket_path = rows[i].path != NULL ? rows[i].path : long_path,
			.helo_name = "relay.test", .lmtp = TRUE,
		};
		ImtaSmtpReply greeting = { 0 };
		g_autoptr(GError) error = NULL;
		ImtaSmtpClient *c = imta_smtp_client_connect(&peer, &greeting, &error);

		g_assert_null(c);
		g_assert_nonnull(error);
		if (rows[i].path != NULL)
			g_assert_cmpstr(error->message, ==, rows[i].error);
		else
			g_assert_true(g_str_has_suffix(error->message, rows[i].error));
		g_assert_cmpuint(greeting.code, ==, 0);
	}
}

/* ---- a scripted LMTP server --------------------------------------------- */

/* Replies by the recipient's local part:
 *   at RCPT       "bad..." 550 5.1.1, "later..." 450 4.2.1, else 250;
 *   after DATA    "full..." 452 4.2.2, "over..." 552 5.2.2, "cut..." the
 *                 connection is closed instead of that reply, else 250.
 * Every command line received is kept in `seen`. */
typedef struct {
	int listener;
	GThread *thread;
	GMutex lock;
	GString *seen;
	guint sessions;
	gboolean stop;
} FakeServer;

static void
fake_send(int fd, const char *text)
{
	gsize len = strlen(text);

	while (len > 0) {
		ssize_t n = send(fd, text, len, MSG_NOSIGNAL);

		if (n <= 0)
			return;
		text += n;
		len -= (gsize)n;
	}
}

static const char *
fake_local(const char *line)
{
	const char *lt = strchr(line, '<');

	return lt != NULL ? lt + 1 : line;
}

static void
fake_note(FakeServer *fs, const char *line)
{
	g_mutex_lock(&fs->lock);
	g_string_append_printf(fs->seen, "%s\n", line);
	g_mutex_unlock(&fs->lock);
}

/* One session; FALSE when the connection was cut on purpose. */
static void
fake_session(FakeServer *fs, int fd)
{
	FILE *in = fdopen(dup(fd), "r");
	g_autoptr(GPtrArray) accepted = g_ptr_array_new_with_free_func(g_free);
	char line[1024];

	fake_send(fd, "220 fake.test LMTP ready\r\n");
	while (in != NULL && fgets(line, sizeof line, in) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		fake_note(fs, line);
		if (g_ascii_strncasecmp(line, "LHLO", 4) == 0) {
			fake_send(fd, "250-fake.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n"
				  "250 8BITMIME\r\n");
		} else if (g_ascii_strncasecmp(line, "MAIL", 4) == 0) {
			g_ptr_array_set_size(accepted, 0);
			fake_send(fd, "250 2.1.0 ok\r\n");
		} else if (g_ascii_strncasecmp(line, "RCPT", 4) == 0) {
			const char *local = fake_local(line);

			if (g_str_has_prefix(local, "bad"))
				fake_send(fd, "550 5.1.1 no such user\r\n");
			else if (g_str_has_prefix(local, "later"))
				fake_send(fd, "450 4.2.1 mailbox inactive\r\n");
			else {
				g_ptr_array_add(accepted, g_strdup(local));
				fake_send(fd, "250 2.1.5 ok\r\n");
			}
		} else if (g_ascii_strcasecmp(line, "DATA") == 0) {
			fake_send(fd, "354 go ahead\r\n");
			while (fgets(line, sizeof line, in) != NULL && strcmp(line, ".\r\n") != 0)
				;
			for (guint i = 0; i < accepted->len; i++) {
				const char *local = accepted->pdata[i];

				if (g_str_has_prefix(local, "cut"))
					goto out;
				if (g_str_has_prefix(local, "full"))
					fake_send(fd, "452 4.2.2 mailbox full\r\n");
				else if (g_str_has_prefix(local, "over"))
					fake_send(fd, "552 5.2.2 mailbox full for good\r\n");
				else
					fake_send(fd, "250 2.0.0 delivered\r\n");
			}
		} else if (g_ascii_strcasecmp(line, "QUIT") == 0) {
			fake_send(fd, "221 2.0.0 bye\r\n");
			break;
		} else {
			fake_send(fd, "250 2.0.0 ok\r\n");
		}
	}
out:
	if (in != NULL)
		fclose(in);
}

static gpointer
fake_thread(gpointer data)
{
	FakeServer *fs = data;

	for (;;) {
		int fd = accept(fs->listener, NULL, NULL);

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		g_mutex_lock(&fs->lock);
		fs->sessions++;
		g_mutex_unlock(&fs->lock);
		if (fs->stop) {
			close(fd);
			break;
		}
		fake_session(fs, fd);
		close(fd);
	}
	return NULL;
}

/* A server on `socket_path`, or on a free loopback TCP port (*port_r). */
static FakeServer *
fake_start(const char *socket_path, guint16 *port_r)
{
	FakeServer *fs = g_new0(FakeServer, 1);

	g_mutex_init(&fs->lock);
	fs->seen = g_string_new(NULL);
	if (socket_path != NULL) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };

		g_strlcpy(sun.sun_path, socket_path, sizeof sun.sun_path);
		fs->listener = socket(AF_UNIX, SOCK_STREAM, 0);
		g_assert_cmpint(bind(fs->listener, (struct sockaddr *)&sun, sizeof sun), ==, 0);
	} else {
		struct sockaddr_in sin = { .sin_family = AF_INET,
					   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t len = sizeof sin;

		fs->listener = socket(AF_INET, SOCK_STREAM, 0);
		g_assert_cmpint(bind(fs->listener, (struct sockaddr *)&sin, sizeof sin), ==, 0);
		g_assert_cmpint(getsockname(fs->listener, (struct sockaddr *)&sin, &len), ==, 0);
		*port_r = ntohs(sin.sin_port);
	}
	g_assert_cmpint(listen(fs->listener, 8), ==, 0);
	fs->thread = g_thread_new("fake-lmtp", fake_thread, fs);
	return fs;
}

static void
fake_stop(FakeServer *fs)
{
	fs->stop = TRUE;
	/* wake accept() */
	shutdown(fs->listener, SHUT_RDWR);
	g_thread_join(fs->thread);
	close(fs->listener);
	g_string_free(fs->seen, TRUE);
	g_mutex_clear(&fs->lock);
	g_free(fs);
}

/* ---- whole jobs ----------------------------------------------------------- */

typedef struct {
	GQueue pending;
	GPtrArray *done;
} MemorySource;

static ImtaMessage *
memory_next(gpointer p, GError **error)
{
	MemorySource *source = p;

	return g_queue_pop_head(&source->pending);
}

static gboolean
memory_finish(gpointer p, ImtaMessage *msg, GError **error)
{
	MemorySource *source = p;

	g_ptr_array_add(source->done, msg);
	return TRUE;
}

static const ImtaMasterJobSource memory_ops = { memory_next, memory_finish, NULL };

typedef struct {
	char *dir;
	char *socket_path;
	ImtaConfig *config;
} JobFixture;

static void
job_set_up(JobFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *log = NULL;

	fx->dir = g_dir_make_tmp("test-lmtp-job-XXXXXX", &error);
	g_assert_no_error(error);
	fx->socket_path = g_build_filename(fx->dir, "lmtp.sock", NULL);
	log = g_build_filename(fx->dir, "master.log", NULL);
	g_assert_true(imta_log_open("test-lmtp-master", log, &error));
}

static void
job_tear_down(JobFixture *fx, gconstpointer data)
{
	g_autofree char *command = g_strdup_printf("rm -rf '%s'", fx->dir);

	imta_log_close();
	lmtp_options_forget();
	if (fx->config != NULL)
		imta_config_free(fx->config);
	g_assert_cmpint(system(command), ==, 0);
	g_free(fx->dir);
	g_free(fx->socket_path);
}

/* A configuration with channel lmtp_test (`keywords`) and its option file. */
static const ImtaChannel *
job_config(JobFixture *fx, const char *keywords, const char *option)
{
	g_autofree char *cnf = g_strdup_printf("\nl\nmail.example.com\n\n"
					       "lmtp_test lmtp %s\nlmtp-test-daemon\n", keywords);
	g_autoptr(GError) error = NULL;

	fx->config = g_new0(ImtaConfig, 1);
	fx->config->cnf = imta_cnf_parse_text("imta.cnf", cnf, strlen(cnf), NULL, &error);
	g_assert_no_error(error);
	fx->config->tailor = g_new0(ImtaTailor, 1);
	fx->config->tailor->hostname = g_strdup("mail.example.com");
	fx->config->tailor->table_dir = g_strdup(fx->dir);
	fx->config->dir = g_strdup(fx->dir);
	fx->config->options = imta_option_dat_new_default();
	g_free(fx->config->options->dns_servers);
	fx->config->options->dns_servers = g_strdup("127.0.0.1:9");
	if (option != NULL)
		g_free(write_temp(fx->dir, "lmtp_test_option", option));
	return imta_cnf_channel_by_name(fx->config->cnf, "lmtp_test");
}

/* Run lmtp_master over one message to `rcpts` (space-separated); the
 * finished message. */
static ImtaMessage *
job_run(JobFixture *fx, const ImtaChannel *channel, const char *rcpts)
{
	static const char content[] = "Subject: test\n\nbody\n.dot line\n";
	g_autoptr(GBytes) body = g_bytes_new_static(content, strlen(content));
	g_auto(GStrv) list = g_strsplit(rcpts, " ", -1);
	MemorySource source = { G_QUEUE_INIT, g_ptr_array_new() };
	g_autoptr(ImtaMasterJob) job = NULL;
	ImtaMessage *msg = imta_message_new("MSG0001", "sender@example.org");

	imta_message_set_content_bytes(msg, body);
	for (guint i = 0; list[i] != NULL; i++)
		imta_message_add_recipient(msg, list[i], NULL, 0);
	g_queue_push_tail(&source.pending, msg);
	job = imta_master_job_new(fx->config, channel, &memory_ops, &source);
	g_assert_cmpint(lmtp_master(job), ==, IMTA_ENTRY_OK);
	g_assert_cmpuint(source.done->len, ==, 1);
	g_ptr_array_unref(source.done);
	return msg;
}

/* "OUTCOME diagnostic" of recipient i. */
static char *
job_outcome(const ImtaMessage *msg, guint i)
{
	static const char *names[] = { "none", "delivered", "retry", "failed" };
	const ImtaRecipient *r = imta_message_recipient(msg, i);

	return g_strdup_printf("%s %s", names[r->outcome], r->diagnostic != NULL ? r->diagnostic : "");
}

static void
test_job_outcomes(JobFixture *fx, gconstpointer data)
{
	static const char *const expected[] = {
		"delivered remote [unix:SOCKET] said: 250 2.0.0 delivered",
		"failed remote [unix:SOCKET] said: 550 5.1.1 no such user",
		"retry remote [unix:SOCKET] said: 452 4.2.2 mailbox full",
		"retry remote [unix:SOCKET] said: 450 4.2.1 mailbox inactive",
		"failed remote [unix:SOCKET] said: 552 5.2.2 mailbox full for good",
	};
	g_autofree char *option = NULL;
	const ImtaChannel *channel;
	FakeServer *fs = fake_start(fx->socket_path, NULL);
	ImtaMessage *msg;

	option = g_strdup_printf("LMTP_SERVER=%s\nMAX_CLIENT_THREADS=1\n", fx->socket_path);
	channel = job_config(fx, "", option);
	msg = job_run(fx, channel, "ann@example.com badbob@example.com fullcarol@example.com "
			      "laterdave@example.com overerin@example.com");
	for (guint i = 0; i < G_N_ELEMENTS(expected); i++) {
		g_autoptr(GString) want = g_string_new(expected[i]);
		g_autofree char *got = job_outcome(msg, i);

		g_string_replace(want, "SOCKET", fx->socket_path, 1);

		g_assert_cmpstr(got, ==, want->str);
	}
	/* One transaction: one MAIL, five RCPTs, one DATA. */
	g_assert_nonnull(strstr(fs->seen->str, "LHLO mail.example.com\nMAIL FROM:<sender@example.org>"));
	g_assert_nonnull(strstr(fs->seen->str, "RCPT TO:<overerin@example.com>\nDATA\n"));
	g_assert_null(strstr(strstr(fs->seen->str, "DATA\n") + 1, "MAIL FROM"));
	imta_message_free(msg);
	fake_stop(fs);
}

static void
test_job_cut_after_dot(JobFixture *fx, gconstpointer data)
{
	g_autofree char *option = g_strdup_printf("LMTP_SERVER=%s\n", fx->socket_path);
	const ImtaChannel *channel = job_config(fx, "", option);
	FakeServer *fs = fake_start(fx->socket_path, NULL);
	ImtaMessage *msg = job_run(fx, channel, "ann@example.com cutbob@example.com "
					       "carol@example.com");
	g_autofree char *first = job_outcome(msg, 0);
	g_autofree char *want = g_strdup_printf("delivered remote [unix:%s] said: 250 2.0.0 "
						"delivered", fx->socket_path);
	const ImtaRecipient *second = imta_message_recipient(msg, 1);
	const ImtaRecipient *third = imta_message_recipient(msg, 2);

	/* ann's reply came before the connection was lost: she is done. */
	g_assert_cmpstr(first, ==, want);
	/* The others may or may not have been delivered: retried. */
	g_assert_cmpint(second->outcome, ==, IMTA_OUTCOME_RETRY);
	g_assert_true(g_str_has_prefix(second->diagnostic, "4.4.2 "));
	g_assert_nonnull(strstr(second->diagnostic, "(RFC 1047)"));
	g_assert_cmpint(third->outcome, ==, IMTA_OUTCOME_RETRY);
	imta_message_free(msg);
	fake_stop(fs);
}

static void
test_job_route(JobFixture *fx, gconstpointer data)
{
	guint16 port = 0;
	FakeServer *fs = fake_start(NULL, &port);
	g_autofree char *keywords = g_strdup_printf("port %u", port);
	const ImtaChannel *channel = job_config(fx, keywords, NULL);
	ImtaMessage *msg = job_run(fx, channel, "@[127.0.0.1].lmtp:joe%example.org@lmtp-test-daemon "
					       "plain@example.com");
	g_autofree char *routed = job_outcome(msg, 0);
	g_autofree char *plain = job_outcome(msg, 1);

	g_assert_cmpstr(routed, ==, "delivered remote [127.0.0.1] said: 250 2.0.0 delivered");
	/* The store gets the mailbox without the route. */
	g_assert_nonnull(strstr(fs->seen->str, "RCPT TO:<joe%example.org@lmtp-test-daemon>\n"));
	/* No route, no LMTP_SERVER, no daemon: the recipient waits. */
	g_assert_cmpstr(plain, ==, "retry 4.3.5 no LMTP server for this address: it names no "
				   "message store (@host:) and channel lmtp_test sets neither "
				   "LMTP_SERVER nor daemon");
	imta_message_free(msg);
	fake_stop(fs);
}

static void
test_job_server_down(JobFixture *fx, gconstpointer data)
{
	g_autofree char *option = g_strdup_printf("LMTP_SERVER=%s\n", fx->socket_path);
	const ImtaChannel *channel = job_config(fx, "", option);
	ImtaMessage *msg = job_run(fx, channel, "ann@example.com bob@example.com");
	g_autofree char *want = g_strdup_printf("retry 4.4.1 cannot connect to [unix:%s]: No such "
						"file or directory", fx->socket_path);

	for (guint i = 0; i < 2; i++) {
		g_autofree char *got = job_outcome(msg, i);

		g_assert_cmpstr(got, ==, want);
	}
	imta_message_free(msg);
}

static void
test_job_reuse(JobFixture *fx, gconstpointer data)
{
	g_autofree char *option = g_strdup_printf("LMTP_SERVER=%s\nMAX_CLIENT_THREADS=1\n",
						  fx->socket_path);
	const ImtaChannel *channel = job_config(fx, "", option);
	FakeServer *fs = fake_start(fx->socket_path, NULL);
	MemorySource source = { G_QUEUE_INIT, g_ptr_array_new_with_free_func(
							(GDestroyNotify)imta_message_free) };
	g_autoptr(GBytes) body = g_bytes_new_static("Subject: x\n\ny\n", 14);
	g_autoptr(ImtaMasterJob) job = NULL;

	for (guint m = 0; m < 5; m++) {
		g_autofree char *id = g_strdup_printf("MSG%u", m);
		ImtaMessage *msg = imta_message_new(id, "");

		imta_message_set_content_bytes(msg, body);
		imta_message_add_recipient(msg, "ann@example.com", NULL, 0);
		g_queue_push_tail(&source.pending, msg);
	}
	job = imta_master_job_new(fx->config, channel, &memory_ops, &source);
	g_assert_cmpint(lmtp_master(job), ==, IMTA_ENTRY_OK);
	g_assert_cmpuint(source.done->len, ==, 5);
	for (guint m = 0; m < 5; m++)
		g_assert_cmpint(imta_message_recipient(source.done->pdata[m], 0)->outcome, ==,
				IMTA_OUTCOME_DELIVERED);
	/* Five messages, one connection, one LHLO. */
	g_assert_cmpuint(fs->sessions, ==, 1);
	g_assert_nonnull(strstr(fs->seen->str, "MAIL FROM:<>"));
	g_ptr_array_unref(source.done);
	fake_stop(fs);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/lmtp/master/route-host", test_route_host);
	g_test_add_func("/lmtp/options/server", test_options_server);
	g_test_add_func("/lmtp/options/load", test_options_load);
	g_test_add_func("/lmtp/route/named-server", test_route_named);
	g_test_add_func("/lmtp/client/socket-errors", test_client_socket_errors);
#define JOB_TEST(path, func) \
	g_test_add(path, JobFixture, NULL, job_set_up, func, job_tear_down)
	JOB_TEST("/lmtp/job/per-recipient-outcomes", test_job_outcomes);
	JOB_TEST("/lmtp/job/cut-after-dot", test_job_cut_after_dot);
	JOB_TEST("/lmtp/job/source-route", test_job_route);
	JOB_TEST("/lmtp/job/server-down", test_job_server_down);
	JOB_TEST("/lmtp/job/connection-reuse", test_job_reuse);
	return g_test_run();
}
