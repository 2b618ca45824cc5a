/*
 * test-route.c - routing a recipient (route.h): where addresses go, what
 * each kind of failure means (temporary or not, its status and
 * diagnostic), and adding a routed recipient to an enqueue.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include <imta/imta.h>

static const char test_cnf[] =
	"example.com       $U%$D@l-host\n"
	"again.example     $U%$D@a-daemon$1M\n"
	"again.example     $U%$D@b-daemon\n"
	"byname.example    $U%$D@a-daemon$Mtcp_local\n"
	"byname.example    $U%$D@b-daemon\n"
	"gone.example      $?retired\n"
	"loop.example      $U%loop.example\n"
	".                 $U%$H@tcp-daemon\n"
	"\n"
	"l\n"
	"l-host\n"
	"\n"
	"tcp_local smtp\n"
	"tcp-daemon\n"
	"\n"
	"a\n"
	"a-daemon\n"
	"\n"
	"b\n"
	"b-daemon\n"
	"\n"
	"reprocess\n"
	"reprocess-daemon\n";

typedef struct {
	char *dir;
	ImtaConfig *config;
	ImtaQueue *queue;
} RouteFixture;

static void
fixture_set_up(RouteFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *root = NULL;

	fx->dir = g_dir_make_tmp("test-route-XXXXXX", &error);
	g_assert_no_error(error);
	root = g_build_filename(fx->dir, "queue", NULL);
	fx->config = g_new0(ImtaConfig, 1);
	fx->config->cnf = imta_cnf_parse_text("imta.cnf", test_cnf, strlen(test_cnf), NULL, &error);
	g_assert_no_error(error);
	fx->config->tailor = g_new0(ImtaTailor, 1);
	fx->config->tailor->hostname = g_strdup("l-host");
	fx->queue = imta_queue_open(root, fx->config->cnf, NULL, &error);
	g_assert_no_error(error);
}

static void
fixture_tear_down(RouteFixture *fx, gconstpointer data)
{
	g_autofree char *command = g_strdup_printf("rm -rf '%s'", fx->dir);

	imta_queue_close(fx->queue);
	imta_config_free(fx->config);
	g_assert_cmpint(system(command), ==, 0);
	g_free(fx->dir);
}

/* ---- where addresses go ------------------------------------------------ */

static const struct {
	const char *source;      /* NULL = l */
	const char *address;
	const char *channel;
	const char *rewritten;
} route_rows[] = {
	{ NULL, "alice@example.com", "l", "alice@example.com" },
	{ NULL, "bob@remote.test", "tcp_local", "bob@remote.test" },
	/* $1M: only the reprocessing channels take the first rule. */
	{ "reprocess", "carl@again.example", "a", "carl@again.example" },
	{ "conversion", "carl@again.example", "a", "carl@again.example" },
	{ NULL, "carl@again.example", "b", "carl@again.example" },
	{ "tcp_local", "carl@again.example", "b", "carl@again.example" },
	/* $M: the source channel by name. */
	{ "tcp_local", "dora@byname.example", "a", "dora@byname.example" },
	{ "reprocess", "dora@byname.example", "b", "dora@byname.example" },
};

static void
test_route_channels(RouteFixture *fx, gconstpointer data)
{
	for (guint i = 0; i < G_N_ELEMENTS(route_rows); i++) {
		ImtaRouteContext ctx = { fx->config, route_rows[i].source, NULL };
		g_autoptr(GError) error = NULL;
		ImtaRoute route;

		g_test_message("row %u: %s from %s", i, route_rows[i].address,
			       route_rows[i].source != NULL ? route_rows[i].source : "l");
		g_assert_true(imta_route_address(&ctx, route_rows[i].address, &route, &error));
		g_assert_no_error(error);
		g_assert_nonnull(route.channel);
		g_assert_cmpstr(route.channel->name, ==, route_rows[i].channel);
		g_assert_cmpstr(route.address, ==, route_rows[i].rewritten);
		imta_route_clear(&route);
		g_assert_null(route.address);
		g_assert_null(route.channel);
	}
}

static void
test_route_trace(RouteFixture *fx, gconstpointer data)
{
	g_autoptr(GString) trace = g_string_new(NULL);
	ImtaRouteContext ctx = { fx->config, "reprocess", trace };
	g_autoptr(GError) error = NULL;
	ImtaRoute route;

	g_assert_true(imta_route_address(&ctx, "carl@again.example", &route, &error));
	g_assert_nonnull(strstr(trace->str, "rewriting carl@again.example (source channel "
				"reprocess, envelope, forward)"));
	g_assert_nonnull(strstr(trace->str, "result: carl@again.example on channel a"));
	imta_route_clear(&route);
}

/* ---- failures ------------------------------------------------------------ */

static const struct {
	const char *address;
	ImtaRouteErrorCode code;
	gboolean temporary;
	const char *status;
	const char *diagnostic;
} failure_rows[] = {
	{ "carl@gone.example", IMTA_ROUTE_ERROR_UNROUTABLE, FALSE, "5.1.2",
	  "5.1.2 carl@gone.example does not route: retired" },
	{ "x@loop.example", IMTA_ROUTE_ERROR_LOOP, FALSE, "5.4.6", NULL },
	{ "not an address", IMTA_ROUTE_ERROR_SYNTAX, FALSE, "5.1.3", NULL },
	{ "", IMTA_ROUTE_ERROR_SYNTAX, FALSE, "5.1.3",
	  "5.1.3  does not route: an empty address cannot be routed" },
};

static void
test_route_failures(RouteFixture *fx, gconstpointer data)
{
	for (guint i = 0; i < G_N_ELEMENTS(failure_rows); i++) {
		ImtaRouteContext ctx = { fx->config, NULL, NULL };
		g_autoptr(GError) error = NULL;
		g_autofree char *diagnostic = NULL;
		g_autofree char *prefix = NULL;
		ImtaRoute route;

		g_test_message("row %u: %s", i, failure_rows[i].address);
		g_assert_false(imta_route_address(&ctx, failure_rows[i].address, &route, &error));
		g_assert_error(error, IMTA_ROUTE_ERROR, (gint)failure_rows[i].code);
		g_assert_null(route.channel);
		g_assert_null(route.address);
		g_assert_cmpint(imta_route_error_is_temporary(error), ==,
				failure_rows[i].temporary);
		g_assert_cmpstr(imta_route_error_status(error), ==, failure_rows[i].status);
		diagnostic = imta_route_diagnostic(failure_rows[i].address, error);
		if (failure_rows[i].diagnostic != NULL) {
			g_assert_cmpstr(diagnostic, ==, failure_rows[i].diagnostic);
			continue;
		}
		/* The reason is the rewrite engine's own text. */
		prefix = g_strdup_printf("%s %s does not route: ", failure_rows[i].status,
					 failure_rows[i].address);
		g_assert_true(g_str_has_prefix(diagnostic, prefix));
		g_assert_cmpstr(diagnostic + strlen(prefix), ==, error->message);
	}
}

/* Every code, and errors from elsewhere, map to one status each. */
static const struct {
	GQuark (*domain)(void);
	gint code;
	gboolean temporary;
	const char *status;
	const char *diagnostic;
} mapping_rows[] = {
	{ imta_route_error_quark, IMTA_ROUTE_ERROR_TEMPORARY, TRUE, "4.4.3",
	  "4.4.3 a@b.example: why" },
	{ imta_route_error_quark, IMTA_ROUTE_ERROR_CONFIG, TRUE, "4.3.5",
	  "4.3.5 a@b.example: why" },
	{ imta_route_error_quark, IMTA_ROUTE_ERROR_SYNTAX, FALSE, "5.1.3",
	  "5.1.3 a@b.example does not route: why" },
	{ imta_route_error_quark, IMTA_ROUTE_ERROR_LOOP, FALSE, "5.4.6",
	  "5.4.6 a@b.example does not route: why" },
	{ imta_route_error_quark, IMTA_ROUTE_ERROR_UNROUTABLE, FALSE, "5.1.2",
	  "5.1.2 a@b.example does not route: why" },
	{ imta_route_error_quark, IMTA_ROUTE_ERROR_REFUSED, FALSE, "5.3.0",
	  "5.3.0 a@b.example cannot be queued: why" },
	{ imta_queue_error_quark, IMTA_QUEUE_ERROR_IO, TRUE, "4.3.0",
	  "4.3.0 a@b.example: why" },
};

static void
test_route_mapping(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(mapping_rows); i++) {
		g_autoptr(GError) error = g_error_new_literal(mapping_rows[i].domain(),
							      mapping_rows[i].code, "why");
		g_autofree char *diagnostic = imta_route_diagnostic("a@b.example", error);

		g_test_message("row %u", i);
		g_assert_cmpint(imta_route_error_is_temporary(error), ==,
				mapping_rows[i].temporary);
		g_assert_cmpstr(imta_route_error_status(error), ==, mapping_rows[i].status);
		g_assert_cmpstr(diagnostic, ==, mapping_rows[i].diagnostic);
	}
}

/* ---- into an enqueue ------------------------------------------------------ */

static char *
read_queue_file(RouteFixture *fx, const char *relative)
{
	g_autofree char *path = g_build_filename(fx->dir, "queue", relative, NULL);
	g_autoptr(GError) error = NULL;
	char *text = NULL;

	g_assert_true(g_file_get_contents(path, &text, NULL, &error));
	g_assert_no_error(error);
	return text;
}

static void
test_route_enqueue(RouteFixture *fx, gconstpointer data)
{
	ImtaRouteContext ctx = { fx->config, "reprocess", NULL };
	g_autoptr(ImtaEnqueue) enq = imta_enqueue_new(fx->queue, "reprocess", "ann@sender.test");
	g_autoptr(GError) error = NULL;
	g_autofree char *long_orcpt = NULL;
	g_autofree char *text_a = NULL;
	g_autofree char *text_b = NULL;
	const char *const *files;
	guint notify = IMTA_NOTIFY_SUCCESS | IMTA_NOTIFY_FAILURE;
	ImtaRoute route;

	imta_enqueue_set_envid(enq, "ENV1");
	g_assert_true(imta_route_enqueue_recipient(&ctx, enq, "carl@again.example",
						   "rfc822;carl@again.example", notify, &route,
						   &error));
	g_assert_no_error(error);
	g_assert_cmpstr(route.channel->name, ==, "a");
	g_assert_cmpstr(route.address, ==, "carl@again.example");
	imta_route_clear(&route);
	g_assert_true(imta_route_enqueue_recipient(&ctx, enq, "dora@byname.example", NULL, 0,
						   NULL, &error));
	g_assert_no_error(error);

	/* Refused by the queue: nothing is added, the route is empty. */
	long_orcpt = g_strnfill(20000, 'x');
	g_assert_false(imta_route_enqueue_recipient(&ctx, enq, "eve@again.example", long_orcpt,
						    0, &route, &error));
	g_assert_error(error, IMTA_ROUTE_ERROR, IMTA_ROUTE_ERROR_REFUSED);
	g_assert_false(imta_route_error_is_temporary(error));
	g_assert_null(route.address);
	g_clear_error(&error);
	/* Not routed: nothing is added. */
	g_assert_false(imta_route_enqueue_recipient(&ctx, enq, "fay@gone.example", NULL, 0,
						    NULL, &error));
	g_assert_error(error, IMTA_ROUTE_ERROR, IMTA_ROUTE_ERROR_UNROUTABLE);
	g_assert_cmpstr(error->message, ==, "retired");
	g_clear_error(&error);

	g_assert_true(imta_enqueue_write(enq, "Subject: s\n\nbody\n", 17, &error));
	g_assert_true(imta_enqueue_commit(enq, &error));
	g_assert_no_error(error);
	files = imta_enqueue_files(enq);
	g_assert_cmpuint(g_strv_length((char **)files), ==, 2);
	g_assert_true(g_str_has_prefix(files[0], "a/") || g_str_has_prefix(files[1], "a/"));
	text_a = read_queue_file(fx, g_str_has_prefix(files[0], "a/") ? files[0] : files[1]);
	text_b = read_queue_file(fx, g_str_has_prefix(files[0], "a/") ? files[1] : files[0]);
	g_assert_nonnull(strstr(text_a, "\nsource reprocess\nchannel a\n"));
	g_assert_nonnull(strstr(text_a, "\nfrom ann@sender.test\nenvid ENV1\n"
				"rcpt SUCCESS,FAILURE rfc822;carl@again.example "
				"carl@again.example\nsize 17\n"));
	g_assert_null(strstr(text_a, "eve@"));
	g_assert_nonnull(strstr(text_b, "\nchannel b\n"));
	g_assert_nonnull(strstr(text_b, "\nrcpt - - dora@byname.example\nsize 17\n"));
	g_assert_null(strstr(text_b, "fay@"));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/route/address/channels", RouteFixture, NULL, fixture_set_up,
		   test_route_channels, fixture_tear_down);
	g_test_add("/route/address/trace", RouteFixture, NULL, fixture_set_up, test_route_trace,
		   fixture_tear_down);
	g_test_add("/route/address/failures", RouteFixture, NULL, fixture_set_up,
		   test_route_failures, fixture_tear_down);
	g_test_add_func("/route/error/mapping", test_route_mapping);
	g_test_add("/route/enqueue/recipients", RouteFixture, NULL, fixture_set_up,
		   test_route_enqueue, fixture_tear_down);
	return g_test_run();
}
