/*
 * test-plugin-loader.c - loading the built plugins, the loader's refusals,
 * and the bitbucket master run over an in-memory job source.
 */
#include "config.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <imta/imta.h>

static char *
built_module(const char *dir, const char *name)
{
	const char *top = g_getenv("abs_top_builddir");

	if (top == NULL)
		top = ".";
	return g_strdup_printf("%s/%s/.libs/%s.so", top, dir, name);
}

/* Copy a built module into `dir` under `name`, with `mode`. */
static char *
install_module(const char *dir, const char *src, const char *name, mode_t mode)
{
	g_autofree char *data = NULL;
	gsize len;
	char *dst = g_build_filename(dir, name, NULL);

	g_assert_true(g_file_get_contents(src, &data, &len, NULL));
	g_assert_true(g_file_set_contents(dst, data, (gssize)len, NULL));
	g_assert_cmpint(g_chmod(dst, mode), ==, 0);
	return dst;
}

static char *
make_plugin_dir(void)
{
	char *dir = g_dir_make_tmp("plugins-XXXXXX", NULL);

	g_assert_nonnull(dir);
	g_assert_cmpint(g_chmod(dir, 0755), ==, 0);
	return dir;
}

static void
remove_dir(const char *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;

	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		g_autofree char *path = g_build_filename(dir, name, NULL);

		g_unlink(path);
	}
	g_rmdir(dir);
}

static void
test_load_bitbucket(void)
{
	g_autofree char *path = built_module("plugins/bitbucket", "bitbucket");
	g_autoptr(ImtaPluginRegistry) registry = imta_plugin_registry_new();
	g_autoptr(GError) error = NULL;
	const ImtaPlugin *plugin;

	g_assert_true(imta_plugin_registry_load_file(registry, path, IMTA_PLUGIN_LOAD_TRUST_FILES,
						     (guint)-1, &error));
	g_assert_no_error(error);
	plugin = imta_plugin_registry_by_keyword(registry, "BITBUCKET");
	g_assert_nonnull(plugin);
	g_assert_cmpstr(plugin->name, ==, "bitbucket");
	g_assert_cmpstr(plugin->version, ==, PACKAGE_VERSION);
	g_assert_nonnull(plugin->master);
	g_assert_null(plugin->slave);
	g_assert_true(imta_plugin_registry_init(registry, NULL, &error));
}

/* ---- an in-memory job source ------------------------------------------ */

typedef struct {
	GQueue pending;     /* ImtaMessage * */
	GPtrArray *done;    /* ImtaMessage *, finished */
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

static void
test_bitbucket_master(void)
{
	g_autofree char *path = built_module("plugins/bitbucket", "bitbucket");
	g_autoptr(ImtaPluginRegistry) registry = imta_plugin_registry_new();
	g_autoptr(GBytes) body = g_bytes_new_static("Subject: x\n\nbody\n", 17);
	MemorySource source = { G_QUEUE_INIT, g_ptr_array_new_with_free_func((GDestroyNotify)imta_message_free) };
	g_autoptr(ImtaMasterJob) job = NULL;
	const ImtaPlugin *plugin;
	guint delivered = 0;

	g_assert_true(imta_plugin_registry_load_file(registry, path, IMTA_PLUGIN_LOAD_TRUST_FILES,
						     (guint)-1, NULL));
	plugin = imta_plugin_registry_by_keyword(registry, "bitbucket");
	for (guint m = 0; m < 3; m++) {
		g_autofree char *id = g_strdup_printf("ZZ%04u", m);
		ImtaMessage *msg = imta_message_new(id, m == 0 ? "" : "ann@example.org");

		imta_message_set_content_bytes(msg, body);
		for (guint r = 0; r <= m; r++) {
			g_autofree char *rcpt = g_strdup_printf("user%u@example.com", r);

			imta_message_add_recipient(msg, rcpt, NULL, 0);
		}
		g_queue_push_tail(&source.pending, msg);
	}
	job = imta_master_job_new(NULL, NULL, &memory_ops, &source);
	g_assert_cmpint(plugin->master(job), ==, IMTA_ENTRY_OK);
	g_assert_cmpuint(source.done->len, ==, 3);
	for (guint m = 0; m < source.done->len; m++) {
		const ImtaMessage *msg = source.done->pdata[m];

		g_assert_cmpuint(imta_message_recipient_count(msg), ==, m + 1);
		for (guint r = 0; r < imta_message_recipient_count(msg); r++) {
			const ImtaRecipient *rcpt = imta_message_recipient(msg, r);

			g_assert_cmpint(rcpt->outcome, ==, IMTA_OUTCOME_DELIVERED);
			g_assert_cmpstr(rcpt->diagnostic, ==, "2.0.0 discarded by the bitbucket channel");
			delivered++;
		}
	}
	g_assert_cmpuint(delivered, ==, 6);
	g_ptr_array_unref(source.done);
}

typedef struct {
	const char *module_dir;
	const char *module;
	mode_t mode;
	gint code;
	const char *fragment;   /* must appear in the refusal */
} RefusalRow;

static void
test_refusals(void)
{
	static const RefusalRow rows[] = {
		{ "tests/plugins", "badabi", 0644, IMTA_PLUGIN_ERROR_ABI,
		  "plugin ABI version 999, but this MTA uses ABI version 4; rebuild the plugin" },
		{ "tests/plugins", "nosymbol", 0644, IMTA_PLUGIN_ERROR_SYMBOL,
		  "not a channel plugin: no symbol imta_plugin_descriptor" },
		{ "tests/plugins", "dupkeyword", 0644, IMTA_PLUGIN_ERROR_KEYWORD,
		  "registers keyword \"bitbucket\", already registered by plugin bitbucket" },
		{ "plugins/bitbucket", "bitbucket", 0666, IMTA_PLUGIN_ERROR_PERMISSION,
		  "refusing a plugin file writable by group or others (mode 0666); fix with: chmod go-w" },
		{ "plugins/bitbucket", "bitbucket", 0664, IMTA_PLUGIN_ERROR_PERMISSION,
		  "writable by group or others (mode 0664)" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *dir = make_plugin_dir();
		g_autofree char *good = built_module("plugins/bitbucket", "bitbucket");
		g_autofree char *src = built_module(rows[i].module_dir, rows[i].module);
		g_autofree char *name = g_strdup_printf("z%s.so", rows[i].module);
		g_autofree char *path = install_module(dir, src, name, rows[i].mode);
		g_autoptr(ImtaPluginRegistry) registry = imta_plugin_registry_new();
		g_autoptr(GError) error = NULL;
		const ImtaPluginModule *module;
		guint flags = rows[i].code == IMTA_PLUGIN_ERROR_PERMISSION ? 0 : IMTA_PLUGIN_LOAD_TRUST_FILES;

		g_test_message("refusal %s mode %o", rows[i].module, rows[i].mode);
		g_assert_true(imta_plugin_registry_load_file(registry, good, IMTA_PLUGIN_LOAD_TRUST_FILES,
							     (guint)-1, NULL));
		/* The permission rows load a second copy of bitbucket: make the
		 * mode the first reason to refuse it. */
		g_assert_false(imta_plugin_registry_load_file(registry, path, flags, (guint)getuid(), &error));
		g_assert_error(error, IMTA_PLUGIN_ERROR, rows[i].code);
		g_assert_nonnull(strstr(error->message, rows[i].fragment));
		g_assert_true(g_str_has_prefix(error->message, path));
		module = registry->modules->pdata[1];
		g_assert_cmpint(module->state, ==, IMTA_PLUGIN_REFUSED);
		g_assert_cmpstr(module->error, ==, error->message);
		/* a refused plugin registers nothing */
		g_assert_cmpstr(imta_plugin_registry_by_keyword(registry, "bitbucket")->name, ==, "bitbucket");
		g_assert_null(imta_plugin_registry_by_keyword(registry, "badabi"));
		remove_dir(dir);
	}
}

static void
test_refuse_foreign_owner(void)
{
	g_autofree char *dir = make_plugin_dir();
	g_autofree char *src = built_module("plugins/bitbucket", "bitbucket");
	g_autofree char *path = install_module(dir, src, "bitbucket.so", 0644);
	g_autoptr(ImtaPluginRegistry) registry = imta_plugin_registry_new();
	g_autoptr(GError) error = NULL;
	uid_t foreign = getuid() == 0 ? 65534 : getuid();

	if (getuid() == 0)
		g_assert_cmpint(chown(path, foreign, (gid_t)-1), ==, 0);
	/* Neither root nor the MTA user (none given) owns the file. */
	g_assert_false(imta_plugin_registry_load_file(registry, path, 0, (guint)-1, &error));
	g_assert_error(error, IMTA_PLUGIN_ERROR, IMTA_PLUGIN_ERROR_PERMISSION);
	g_assert_nonnull(strstr(error->message, "not by root or the MTA user; fix with: chown root"));
	g_clear_error(&error);
	/* The same file is accepted when its owner is the MTA user. */
	g_assert_true(imta_plugin_registry_load_file(registry, path, 0, (guint)foreign, &error));
	g_assert_no_error(error);
	remove_dir(dir);
}

static void
test_core_keyword_collision(void)
{
	static const ImtaPluginKeyword keywords[] = { { "maxjobs", 0, 0, "" }, { NULL } };
	static const ImtaPlugin plugin = {
		IMTA_PLUGIN_ABI_VERSION, "greedy", "1", "", keywords,
		.master = (ImtaEntryStatus (*)(ImtaMasterJob *))1,
	};
	static const ImtaPlugin no_entry = {
		IMTA_PLUGIN_ABI_VERSION, "idle", "1", "", keywords + 1,
	};
	g_autoptr(ImtaPluginRegistry) registry = imta_plugin_registry_new();
	g_autoptr(GError) error = NULL;

	g_assert_false(imta_plugin_registry_add_static(registry, &plugin, "greedy", &error));
	g_assert_cmpstr(error->message, ==, "greedy: plugin greedy registers keyword \"maxjobs\", "
			"which is a core channel keyword");
	g_clear_error(&error);
	g_assert_false(imta_plugin_registry_add_static(registry, &no_entry, "idle", &error));
	g_assert_cmpstr(error->message, ==,
			"idle: plugin idle has neither a master nor a slave entry point");
}

static void
test_load_dir(void)
{
	g_autofree char *dir = make_plugin_dir();
	g_autofree char *bb = built_module("plugins/bitbucket", "bitbucket");
	g_autofree char *dup = built_module("tests/plugins", "dupkeyword");
	g_autofree char *bad = built_module("tests/plugins", "badabi");
	g_autofree char *p1 = install_module(dir, bb, "a-bitbucket.so", 0644);
	g_autofree char *p2 = install_module(dir, dup, "b-dupkeyword.so", 0644);
	g_autofree char *p3 = install_module(dir, bad, "c-badabi.so", 0644);
	g_autofree char *notes = g_build_filename(dir, "README", NULL);
	g_autoptr(ImtaPluginRegistry) registry = imta_plugin_registry_new();
	g_autoptr(GError) error = NULL;

	g_assert_true(g_file_set_contents(notes, "not a plugin", -1, NULL));
	g_assert_true(imta_plugin_registry_load_dir(registry, dir, IMTA_PLUGIN_LOAD_TRUST_FILES,
						    (guint)-1, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(registry->modules->len, ==, 3);
	g_assert_cmpint(((ImtaPluginModule *)registry->modules->pdata[0])->state, ==, IMTA_PLUGIN_LOADED);
	g_assert_cmpint(((ImtaPluginModule *)registry->modules->pdata[1])->state, ==, IMTA_PLUGIN_REFUSED);
	g_assert_cmpint(((ImtaPluginModule *)registry->modules->pdata[2])->state, ==, IMTA_PLUGIN_REFUSED);
	g_assert_cmpstr(((ImtaPluginModule *)registry->modules->pdata[0])->path, ==, p1);
	remove_dir(dir);
}

static void
test_unsafe_dir(void)
{
	g_autofree char *dir = make_plugin_dir();
	g_autoptr(ImtaPluginRegistry) registry = imta_plugin_registry_new();
	g_autoptr(GError) error = NULL;

	g_assert_cmpint(g_chmod(dir, 0777), ==, 0);
	g_assert_false(imta_plugin_registry_load_dir(registry, dir, 0, (guint)getuid(), &error));
	g_assert_error(error, IMTA_PLUGIN_ERROR, IMTA_PLUGIN_ERROR_PERMISSION);
	g_assert_nonnull(strstr(error->message, "refusing a plugin directory writable by group or others"));
	remove_dir(dir);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/plugin/load/bitbucket", test_load_bitbucket);
	g_test_add_func("/plugin/bitbucket/master", test_bitbucket_master);
	g_test_add_func("/plugin/load/refusals", test_refusals);
	g_test_add_func("/plugin/load/foreign-owner", test_refuse_foreign_owner);
	g_test_add_func("/plugin/load/core-keyword", test_core_keyword_collision);
	g_test_add_func("/plugin/load/directory", test_load_dir);
	g_test_add_func("/plugin/load/unsafe-directory", test_unsafe_dir);
	return g_test_run();
}
