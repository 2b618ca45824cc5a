/*
 * test-imta-cnf.c - imta.cnf: rules, channel blocks, keywords, defaults,
 * plugin binding, and the exact position of every error.
 */
#include "config.h"

#include <string.h>
#include <glib.h>
#include <imta/imta_cnf.h>
#include <imta/plugin.h>

/* ---- plugins registered in-process ---------------------------------- */

static ImtaEntryStatus
dummy_entry(ImtaMasterJob *job)
{
	return IMTA_ENTRY_OK;
}

static const ImtaPluginKeyword smtp_keywords[] = {
	{ "smtp", 0, 0, "SMTP" }, { "smtp_crlf", 0, 0, "CRLF" }, { "lmtp_test", 1, 2, "x" }, { NULL }
};
static const ImtaPlugin smtp_plugin = {
	IMTA_PLUGIN_ABI_VERSION, "tcp_smtp", "1.0", "test", smtp_keywords, .master = dummy_entry,
};
static const ImtaPluginKeyword bitbucket_keywords[] = { { "bitbucket", 0, 0, "discard" }, { NULL } };
static const ImtaPlugin bitbucket_plugin = {
	IMTA_PLUGIN_ABI_VERSION, "bitbucket", "1.0", "test", bitbucket_keywords, .master = dummy_entry,
};

static ImtaPluginRegistry *
test_registry(void)
{
	ImtaPluginRegistry *registry = imta_plugin_registry_new();

	g_assert_true(imta_plugin_registry_add_static(registry, &smtp_plugin, "smtp", NULL));
	g_assert_true(imta_plugin_registry_add_static(registry, &bitbucket_plugin, "bb", NULL));
	return registry;
}

static ImtaCnf *
parse_ok(const char *text, const ImtaPluginRegistry *registry)
{
	g_autoptr(GError) error = NULL;
	ImtaCnf *cnf = imta_cnf_parse_text("imta.cnf", text, strlen(text), registry, &error);

	g_assert_no_error(error);
	g_assert_nonnull(cnf);
	if (registry != NULL) {
		g_assert_true(imta_cnf_bind_plugins(cnf, registry, &error));
		g_assert_no_error(error);
	}
	return cnf;
}

/* The seed's channel example, with the documented errata applied: a pool
 * is selected with `pool`, and the tag is the first word of the line after
 * the keyword lines. */
static const char seed_example[] =
	"! rules\n"
	"siroe.com  $U%$D@tcp_siroe-daemon\n"
	"\n"
	"l\n"
	"mail.example.com\n"
	"\n"
	"tcp_intranet smtp mx single_sys subdirs 20 noreverse maxjobs 7 pool SMTP_POOL\n"
	"maytlsserver allowswitchchannel saslswitchchannel tcp_auth\n"
	"tcp_intranet-daemon\n"
	"\n"
	"tcp_auth smtp\n"
	"tcp_auth-daemon\n"
	"\n"
	"tcp_siroe smtp\n"
	"tcp_siroe-daemon\n";

static void
test_seed_example(void)
{
	g_autoptr(ImtaPluginRegistry) registry = test_registry();
	g_autoptr(ImtaCnf) cnf = parse_ok(seed_example, registry);
	const ImtaChannel *ch = imta_cnf_channel_by_name(cnf, "tcp_intranet");
	const ImtaRewriteRule *rule;

	g_assert_cmpuint(cnf->rules->len, ==, 1);
	rule = cnf->rules->pdata[0];
	g_assert_cmpstr(rule->pattern, ==, "siroe.com");
	g_assert_cmpstr(rule->template_, ==, "$U%$D@tcp_siroe-daemon");
	g_assert_cmpuint(rule->pos.line, ==, 2);
	g_assert_cmpuint(rule->template_pos.column, ==, 12);

	g_assert_nonnull(ch);
	g_assert_cmpstr(imta_channel_official_host(ch), ==, "tcp_intranet-daemon");
	g_assert_cmpstr(ch->pool, ==, "SMTP_POOL");
	g_assert_cmpstr(ch->saslswitchchannel, ==, "tcp_auth");
	g_assert_cmpint(ch->mx, ==, IMTA_MX_MX);
	g_assert_cmpint(ch->copies, ==, IMTA_COPIES_SINGLE_SYS);
	g_assert_cmpint(ch->subdirs, ==, 20);
	g_assert_cmpint(ch->maxjobs, ==, 7);
	g_assert_false(ch->reverse);
	g_assert_cmpint(ch->tls_server, ==, IMTA_TLS_MAY);
	g_assert_cmpint(ch->switchchannel, ==, IMTA_SWITCH_ALLOW);
	g_assert_true(ch->plugin == &smtp_plugin);
	g_assert_true(imta_cnf_channel_by_host(cnf, "TCP_INTRANET-DAEMON") == ch);
	g_assert_true(imta_cnf_local_channel(cnf) == imta_cnf_channel_by_name(cnf, "l"));
	g_assert_null(imta_cnf_local_channel(cnf)->plugin);
}

/* The same example exactly as the seed prints it: a bare SMTP_POOL is an
 * unknown keyword. */
static void
test_seed_bare_pool(void)
{
	static const char text[] =
		"\nl\nmail.example.com\n\n"
		"tcp_intranet smtp mx single_sys subdirs 20 noreverse maxjobs 7 SMTP_POOL\n"
		"maytlsserver allowswitchchannel saslswitchchannel tcp_auth\n"
		"tcp_intranet-daemon\n";
	g_autoptr(ImtaPluginRegistry) registry = test_registry();
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaCnf) cnf = imta_cnf_parse_text("imta.cnf", text, sizeof text - 1, registry, &error);

	g_assert_null(cnf);
	g_assert_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_UNKNOWN);
	g_assert_cmpstr(error->message, ==,
			"imta.cnf:5:64: unknown channel keyword \"SMTP_POOL\" in channel "
			"\"tcp_intranet\" (not a core keyword, and no loaded plugin registers it)");
}

/* The reference's example table, shaped like the shipped file. */
static const char reference_table[] =
	"$*  $A$E$F$U%$H$V$H@mail.example.com\n"
	".   $U%$H@tcp-daemon\n"
	"\n"
	"defaults notices 1 2 4 7 copywarnpost copysendpost noswitchchannel immnonurgent maxjobs 7\n"
	"\n"
	"l subdirs 20 maxjobs 7 pool LOCAL_POOL charset7 US-ASCII charset8 ISO-8859-1\n"
	"mail.example.com\n"
	"\n"
	"ims-ms defragment subdirs 20 notices 1 7 14 21 28 backoff \"pt5m\" \"pt10m\" \"pt30m\" \"pt1h\" \"pt2h\" \"pt4h\" maxjobs 4 pool IMS_POOL fileinto $U+$S@$D\n"
	"ims-ms-daemon\n"
	"\n"
	"tcp_local smtp mx single_sys switchchannel identnonenumeric subdirs 20 maxjobs 7 pool SMTP_POOL maytlsserver maysaslserver saslswitchchannel tcp_auth\n"
	"tcp-daemon\n"
	"\n"
	"tcp_auth smtp single_sys mx mustsaslserver maytlsserver\n"
	"tcp_auth-daemon\n"
	"\n"
	"bitbucket\n"
	"bitbucket-daemon\n";

static void
test_reference_table(void)
{
	g_autoptr(ImtaPluginRegistry) registry = test_registry();
	g_autoptr(ImtaCnf) cnf = parse_ok(reference_table, registry);
	const ImtaChannel *l = imta_cnf_channel_by_name(cnf, "l");
	const ImtaChannel *ms = imta_cnf_channel_by_name(cnf, "ims-ms");
	const ImtaChannel *tcp = imta_cnf_channel_by_name(cnf, "tcp_local");
	const ImtaChannel *bb = imta_cnf_channel_by_name(cnf, "bitbucket");
	gint ages[IMTA_MAX_NOTICES];

	g_assert_cmpuint(cnf->channels->len, ==, 5);
	/* defaults are inherited, own keywords win */
	g_assert_cmpint(l->maxjobs, ==, 7);
	g_assert_cmpint(l->switchchannel, ==, IMTA_SWITCH_NONE);
	g_assert_true(l->immnonurgent);
	g_assert_cmpint(l->sendpost, ==, IMTA_POST_COPY);
	g_assert_cmpstr(l->charset8, ==, "ISO-8859-1");
	g_assert_cmpuint(imta_channel_notices(l, IMTA_PRIORITY_NORMAL, ages), ==, 4);
	g_assert_cmpint(ages[3], ==, 7);
	g_assert_cmpint(ms->maxjobs, ==, 4);
	g_assert_true(ms->defragment);
	g_assert_cmpstr(ms->fileinto, ==, "$U+$S@$D");
	g_assert_cmpuint(imta_channel_notices(ms, IMTA_PRIORITY_URGENT, ages), ==, 5);
	g_assert_cmpint(ages[4], ==, 28);
	g_assert_cmpint(imta_channel_backoff(ms, IMTA_PRIORITY_NORMAL, 1), ==, 300);
	g_assert_cmpint(imta_channel_backoff(ms, IMTA_PRIORITY_NORMAL, 4), ==, 3600);
	g_assert_cmpint(imta_channel_backoff(ms, IMTA_PRIORITY_NORMAL, 6), ==, 14400);
	g_assert_cmpint(imta_channel_backoff(ms, IMTA_PRIORITY_NORMAL, 60), ==, 14400);
	g_assert_cmpint(tcp->switchchannel, ==, IMTA_SWITCH_SWITCH);
	g_assert_cmpstr(tcp->ident, ==, "identnonenumeric");
	g_assert_cmpint(tcp->sasl_server, ==, IMTA_SASL_MAY);
	g_assert_true(tcp->plugin == &smtp_plugin);
	/* bound by its own name */
	g_assert_true(bb->plugin == &bitbucket_plugin);
	/* keyword accessors see inherited keywords too */
	g_assert_true(imta_channel_has_keyword(tcp, "copywarnpost"));
	g_assert_cmpstr(imta_channel_keyword(ms, "backoff")[5], ==, "\"pt4h\"");
}

static void
test_backoff_defaults(void)
{
	static const struct { ImtaPriority prio; guint attempt; gint64 seconds; } rows[] = {
		{ IMTA_PRIORITY_URGENT, 1, 30 * 60 }, { IMTA_PRIORITY_URGENT, 7, 240 * 60 },
		{ IMTA_PRIORITY_URGENT, 99, 240 * 60 }, { IMTA_PRIORITY_NORMAL, 1, 60 * 60 },
		{ IMTA_PRIORITY_NORMAL, 4, 240 * 60 }, { IMTA_PRIORITY_NORMAL, 8, 480 * 60 },
		{ IMTA_PRIORITY_NONURGENT, 1, 120 * 60 }, { IMTA_PRIORITY_NONURGENT, 7, 960 * 60 },
	};
	static const char text[] = "\nl\nlocalhost\n\nx normalbackoff pt1m backoff \"PT2M\" pt3m\nx-daemon\n";
	g_autoptr(ImtaCnf) cnf = parse_ok(text, NULL);
	const ImtaChannel *l = imta_cnf_local_channel(cnf);
	const ImtaChannel *x = imta_cnf_channel_by_name(cnf, "x");

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++)
		g_assert_cmpint(imta_channel_backoff(l, rows[i].prio, rows[i].attempt), ==, rows[i].seconds);
	/* the priority-specific list wins over the general one, whatever the order */
	g_assert_cmpint(imta_channel_backoff(x, IMTA_PRIORITY_NORMAL, 1), ==, 60);
	g_assert_cmpint(imta_channel_backoff(x, IMTA_PRIORITY_NORMAL, 2), ==, 60);
	g_assert_cmpint(imta_channel_backoff(x, IMTA_PRIORITY_URGENT, 1), ==, 120);
	g_assert_cmpint(imta_channel_backoff(x, IMTA_PRIORITY_URGENT, 5), ==, 180);
}

static void
test_notices_fallback(void)
{
	static const char text[] =
		"\nl notices 2 4\nlocalhost\n\na\na-daemon\n\nb urgentnotices 1,2,3 notices 5\nb-daemon\n";
	g_autoptr(ImtaCnf) cnf = parse_ok(text, NULL);
	g_autoptr(ImtaCnf) bare = parse_ok("\nl\nlocalhost\n", NULL);
	gint ages[IMTA_MAX_NOTICES];

	g_assert_cmpuint(imta_cnf_notices(cnf, imta_cnf_channel_by_name(cnf, "a"),
					  IMTA_PRIORITY_NORMAL, ages), ==, 2);
	g_assert_cmpint(ages[1], ==, 4);
	g_assert_cmpuint(imta_cnf_notices(cnf, imta_cnf_channel_by_name(cnf, "b"),
					  IMTA_PRIORITY_URGENT, ages), ==, 3);
	g_assert_cmpint(ages[2], ==, 3);
	g_assert_cmpuint(imta_cnf_notices(cnf, imta_cnf_channel_by_name(cnf, "b"),
					  IMTA_PRIORITY_NORMAL, ages), ==, 1);
	g_assert_cmpint(ages[0], ==, 5);
	g_assert_cmpuint(imta_cnf_notices(bare, imta_cnf_local_channel(bare),
					  IMTA_PRIORITY_NORMAL, ages), ==, 4);
	g_assert_cmpint(ages[0], ==, 3);
	g_assert_cmpint(ages[3], ==, 12);
}

static void
test_layout_variants(void)
{
	static const char text[] =
		"! comment before rules\n"
		"a.com   $U@a-daemon\n"
		"! comment between rules\n"
		"b.com\t$U@b-daemon\n"
		"\n"
		"\n"
		"nodefaults\n"
		"\n"
		"l maxjobs 3 \\\n"
		"   subdirs 5\n"
		"! comment inside a block\n"
		"host.example.com  alias.example.com\n"
		"synonym.example.com\n"
		"\n"
		"\n"
		"a\n"
		"a-daemon\n"
		"\n"
		"b\n"
		"b-daemon\n";
	g_autoptr(ImtaCnf) cnf = parse_ok(text, NULL);
	const ImtaChannel *l = imta_cnf_local_channel(cnf);
	const ImtaChannelHost *host = l->hosts->pdata[0];

	g_assert_cmpuint(cnf->rules->len, ==, 2);
	g_assert_cmpuint(cnf->channels->len, ==, 3);
	g_assert_cmpint(l->maxjobs, ==, 3);
	g_assert_cmpint(l->subdirs, ==, 5);
	g_assert_cmpstr(host->name, ==, "host.example.com");
	g_assert_cmpstr(host->extra, ==, "alias.example.com");
	g_assert_true(imta_cnf_channel_by_host(cnf, "synonym.example.com") == l);
	g_assert_null(imta_cnf_channel_by_host(cnf, "alias.example.com"));
}

static void
test_defaults_blocks(void)
{
	static const char text[] =
		"\n"
		"defaults maxjobs 9 logging\nignored line\n\n"
		"l\nlocalhost\n\n"
		"defaults subdirs 4\n\n"
		"a maxjobs 2\na-daemon\n\n"
		"nodefaults\n\n"
		"b\nb-daemon\n";
	g_autoptr(ImtaCnf) cnf = parse_ok(text, NULL);
	const ImtaChannel *l = imta_cnf_channel_by_name(cnf, "l");
	const ImtaChannel *a = imta_cnf_channel_by_name(cnf, "a");
	const ImtaChannel *b = imta_cnf_channel_by_name(cnf, "b");

	g_assert_cmpint(l->maxjobs, ==, 9);
	g_assert_true(l->logging);
	g_assert_cmpint(l->subdirs, ==, 0);
	g_assert_cmpint(a->maxjobs, ==, 2);
	g_assert_true(a->logging);
	g_assert_cmpint(a->subdirs, ==, 4);
	g_assert_cmpint(b->maxjobs, ==, 1);
	g_assert_false(b->logging);
	g_assert_null(imta_cnf_channel_by_host(cnf, "ignored"));
}

typedef struct {
	const char *text;
	const char *message;
	gint code;
	gboolean bind;  /* the error comes from binding plugins */
} ErrorRow;

static void
test_errors(void)
{
	static const ErrorRow rows[] = {
		{ "a.com\n\nl\nlocalhost\n",
		  "imta.cnf:1:6: expected a template after the rewrite pattern \"a.com\" "
		  "(rewrite rules end at the first blank line)", IMTA_CONFIG_ERROR_SYNTAX },
		{ "a.com  $U@x ! comment\n\nl\nlocalhost\n",
		  "imta.cnf:1:13: expected the end of the rewrite rule: a rule is \"pattern "
		  "template\" and neither may contain blanks or a trailing comment",
		  IMTA_CONFIG_ERROR_SYNTAX },
		{ "a.com $U@x\n", "imta.cnf: no channel host table: expected a blank line after "
		  "the rewrite rules, then the local channel \"l\"", IMTA_CONFIG_ERROR_MISSING },
		{ "\ntcp_local\ntcp-daemon\n", "imta.cnf:2:1: expected the local channel \"l\" "
		  "as the first channel (only defaults and nodefaults blocks may precede it), got "
		  "\"tcp_local\"", IMTA_CONFIG_ERROR_SYNTAX },
		{ "\nl\nlocalhost\n\nx maxjobs 7\n", "imta.cnf:5:1: no official host name for "
		  "channel \"x\": expected the channel tag on the line after its keywords",
		  IMTA_CONFIG_ERROR_MISSING },
		{ "\nl\nlocalhost\n\nx\nx-daemon\n\nx\ny-daemon\n", NULL, IMTA_CONFIG_ERROR_DUPLICATE },
		{ "\nl\nlocalhost\n\nx\nLocalHost\n", "imta.cnf:6:1: host name \"LocalHost\" "
		  "already belongs to channel \"l\"", IMTA_CONFIG_ERROR_DUPLICATE },
		{ "\nl\nlocalhost\n\nx maxjobs\nx-daemon\n", "imta.cnf:5:10: expected an argument "
		  "after keyword \"maxjobs\"", IMTA_CONFIG_ERROR_SYNTAX },
		{ "\nl\nlocalhost\n\nx maxjobs 0\nx-daemon\n", "imta.cnf:5:11: maxjobs: expected an "
		  "integer between 1 and 10000, got \"0\"", IMTA_CONFIG_ERROR_RANGE },
		{ "\nl\nlocalhost\n\nx subdirs lots\nx-daemon\n", "imta.cnf:5:11: subdirs: expected "
		  "an integer between 0 and 1000, got \"lots\"", IMTA_CONFIG_ERROR_RANGE },
		{ "\nl\nlocalhost\n\nx backoff pt5m \"pt1y\"\nx-daemon\n", "imta.cnf:5:16: backoff: "
		  "expected a positive ISO 8601 duration such as \"pt30m\", got \"\"pt1y\"\"",
		  IMTA_CONFIG_ERROR_SYNTAX },
		{ "\nl\nlocalhost\n\nx notices 1 3 2\nx-daemon\n", "imta.cnf:5:15: notices: expected "
		  "ascending positive ages, got \"2\"", IMTA_CONFIG_ERROR_RANGE },
		{ "\nl\nlocalhost\n\nx notices 1,2,3,4,5,6\nx-daemon\n", "imta.cnf:5:11: notices: "
		  "expected at most 5 ages", IMTA_CONFIG_ERROR_RANGE },
		{ "\nl\nlocalhost\n\nx pool A_VERY_LONG_POOL\nx-daemon\n", "imta.cnf:5:8: pool: expected "
		  "a pool name of at most 12 bytes, got \"A_VERY_LONG_POOL\"", IMTA_CONFIG_ERROR_RANGE },
		{ "\nl\nlocalhost\n\nbad/name\nx-daemon\n", "imta.cnf:5:1: expected a channel name of "
		  "1 to 32 letters, digits, '_', '-' or '.', got \"bad/name\"", IMTA_CONFIG_ERROR_SYNTAX },
		{ "\nl\nlocalhost\n\nx smtp\nx-daemon a b\n", "imta.cnf:6:12: expected at most two "
		  "words on a host name line of channel \"x\"", IMTA_CONFIG_ERROR_SYNTAX },
		{ "\nnodefaults maxjobs 3\n\nl\nlocalhost\n", "imta.cnf:2:12: expected no keywords "
		  "after nodefaults", IMTA_CONFIG_ERROR_SYNTAX },
		{ "\nl\nlocalhost\n\nx  lmtp_test\nx-daemon\n", "imta.cnf:5:13: expected an argument "
		  "after keyword \"lmtp_test\"", IMTA_CONFIG_ERROR_SYNTAX },
		{ "\nl\nlocalhost\n\nx smtp bitbucket\nx-daemon\n", "imta.cnf:5:8: keyword \"bitbucket\" "
		  "binds channel \"x\" to plugin bitbucket, but \"smtp\" at imta.cnf:5:3 already bound "
		  "it to plugin tcp_smtp", IMTA_CONFIG_ERROR_PLUGIN, TRUE },
		{ "\nl\nlocalhost\n\nx lmtp\nx-daemon\n", "imta.cnf:5:3: unknown channel keyword "
		  "\"lmtp\" in channel \"x\" (not a core keyword, and no loaded plugin registers it)",
		  IMTA_CONFIG_ERROR_PLUGIN, TRUE },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(ImtaPluginRegistry) registry = test_registry();
		g_autoptr(GError) error = NULL;
		g_autoptr(ImtaCnf) cnf = NULL;
		g_autofree char *shown = g_strescape(rows[i].text, NULL);

		g_test_message("row %zu: %s", i, shown);
		cnf = imta_cnf_parse_text("imta.cnf", rows[i].text, strlen(rows[i].text),
					  rows[i].bind ? NULL : registry, &error);
		if (rows[i].bind) {
			g_assert_no_error(error);
			g_assert_false(imta_cnf_bind_plugins(cnf, registry, &error));
		} else {
			g_assert_null(cnf);
		}
		g_assert_error(error, IMTA_CONFIG_ERROR, rows[i].code);
		if (rows[i].message != NULL)
			g_assert_cmpstr(error->message, ==, rows[i].message);
	}
}

static void
test_duplicate_channel_names_both(void)
{
	static const char text[] = "\nl\nlocalhost\n\nx\nx-daemon\n\nx\ny-daemon\n";
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaCnf) cnf = imta_cnf_parse_text("imta.cnf", text, sizeof text - 1, NULL, &error);

	g_assert_null(cnf);
	g_assert_cmpstr(error->message, ==,
			"imta.cnf:8:1: channel \"x\" is already defined at imta.cnf:5:1");
}

static void
test_unknown_keyword_without_registry(void)
{
	/* Without plugins loaded the parse records non-core words; binding
	 * then judges them. */
	static const char text[] = "\nl\nlocalhost\n\nx frobnicate\nx-daemon\n";
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaCnf) cnf = imta_cnf_parse_text("imta.cnf", text, sizeof text - 1, NULL, &error);
	g_autoptr(ImtaPluginRegistry) empty = imta_plugin_registry_new();

	g_assert_no_error(error);
	g_assert_true(imta_channel_has_keyword(imta_cnf_channel_by_name(cnf, "x"), "FROBNICATE"));
	g_assert_false(imta_cnf_bind_plugins(cnf, empty, &error));
	g_assert_cmpstr(error->message, ==, "imta.cnf:5:3: unknown channel keyword \"frobnicate\" "
			"in channel \"x\" (not a core keyword, and no loaded plugin registers it)");
}

static void
test_plugin_keyword_arguments(void)
{
	static const char text[] = "\nl\nlocalhost\n\nx lmtp_test a b maxjobs 2\nx-daemon\n\n"
				   "y lmtp_test a mx\ny-daemon\n";
	g_autoptr(ImtaPluginRegistry) registry = test_registry();
	g_autoptr(ImtaCnf) cnf = parse_ok(text, registry);
	const ImtaChannel *x = imta_cnf_channel_by_name(cnf, "x");
	const ImtaChannel *y = imta_cnf_channel_by_name(cnf, "y");
	const char *const *args = imta_channel_keyword(x, "lmtp_test");

	g_assert_cmpstr(args[0], ==, "a");
	g_assert_cmpstr(args[1], ==, "b");
	g_assert_null(args[2]);
	g_assert_cmpint(x->maxjobs, ==, 2);
	g_assert_cmpuint(g_strv_length((GStrv)imta_channel_keyword(y, "lmtp_test")), ==, 1);
	g_assert_cmpint(y->mx, ==, IMTA_MX_MX);
	g_assert_true(x->plugin == &smtp_plugin);
}

static void
test_tls_directions(void)
{
	static const struct { const char *keywords; ImtaTlsMode server, client; } rows[] = {
		{ "", IMTA_TLS_NONE, IMTA_TLS_NONE },
		{ "maytls", IMTA_TLS_MAY, IMTA_TLS_MAY },
		{ "musttls", IMTA_TLS_MUST, IMTA_TLS_MUST },
		{ "musttls notls", IMTA_TLS_NONE, IMTA_TLS_NONE },
		{ "maytlsserver", IMTA_TLS_MAY, IMTA_TLS_NONE },
		{ "musttlsclient maytlsserver", IMTA_TLS_MAY, IMTA_TLS_MUST },
		{ "maytls musttlsserver notlsclient", IMTA_TLS_MUST, IMTA_TLS_NONE },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *text = g_strdup_printf("\nl\nlocalhost\n\nx %s\nx-daemon\n",
							rows[i].keywords);
		g_autoptr(ImtaCnf) cnf = parse_ok(text, NULL);
		const ImtaChannel *x = imta_cnf_channel_by_name(cnf, "x");

		g_test_message("tls keywords \"%s\"", rows[i].keywords);
		g_assert_cmpint(x->tls_server, ==, rows[i].server);
		g_assert_cmpint(x->tls_client, ==, rows[i].client);
	}
}

static void
test_core_keywords_listed(void)
{
	const char *const *names = imta_cnf_core_keywords();
	guint n = g_strv_length((GStrv)names);

	g_assert_cmpuint(n, >=, 45);
	g_assert_true(g_strv_contains(names, "saslswitchchannel"));
	g_assert_true(imta_cnf_is_core_keyword("MAXJOBS"));
	g_assert_false(imta_cnf_is_core_keyword("smtp"));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/imta-cnf/seed-example", test_seed_example);
	g_test_add_func("/imta-cnf/seed-bare-pool", test_seed_bare_pool);
	g_test_add_func("/imta-cnf/reference-table", test_reference_table);
	g_test_add_func("/imta-cnf/backoff-defaults", test_backoff_defaults);
	g_test_add_func("/imta-cnf/notices-fallback", test_notices_fallback);
	g_test_add_func("/imta-cnf/layout-variants", test_layout_variants);
	g_test_add_func("/imta-cnf/defaults-blocks", test_defaults_blocks);
	g_test_add_func("/imta-cnf/errors", test_errors);
	g_test_add_func("/imta-cnf/duplicate-channel", test_duplicate_channel_names_both);
	g_test_add_func("/imta-cnf/unknown-keyword-without-registry", test_unknown_keyword_without_registry);
	g_test_add_func("/imta-cnf/plugin-keyword-arguments", test_plugin_keyword_arguments);
	g_test_add_func("/imta-cnf/tls-directions", test_tls_directions);
	g_test_add_func("/imta-cnf/core-keywords", test_core_keywords_listed);
	return g_test_run();
}
