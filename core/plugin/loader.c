/*
 * loader.c - dlopen channel plugins, refusing unsafe or incompatible ones.
 *
 * Loading code into a process that later runs as root-started daemons is
 * only safe when nobody but root or the MTA user could have written it, so
 * the file and its directory are checked before dlopen, and the descriptor
 * is checked before anything in it is called.
 */
#include "config.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>

#include <imta/imta_cnf.h>
#include <imta/plugin.h>

#define PLUGIN_MAX_KEYWORDS 64
/* Program headers read to check an object's extent. */
#define PLUGIN_MAX_PHDRS 256

static gboolean
loader_check_owner_mode(const char *path, const char *what, guint mta_uid, GError **error)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		g_set_error(error, IMTA_PLUGIN_ERROR, IMTA_PLUGIN_ERROR_OPEN,
			    "%s: cannot stat %s: %s", path, what, g_strerror(errno));
		return FALSE;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		g_set_error(error, IMTA_PLUGIN_ERROR, IMTA_PLUGIN_ERROR_PERMISSION,
			    "%s: refusing %s writable by group or others (mode %04o); "
			    "fix with: chmod go-w %s", path, what, (unsigned)(st.st_mode & 07777), path);
		return FALSE;
	}
	if (st.st_uid != 0 && st.st_uid != (uid_t)mta_uid) {
		g_set_error(error, IMTA_PLUGIN_ERROR, IMTA_PLUGIN_ERROR_PERMISSION,
			    "%s: refusing %s owned by uid %u, not by root or the MTA user; "
			    "fix with: chown root %s", path, what, (unsigned)st.st_uid, path);
		return FALSE;
	}
	return TRUE;
}

static gboolean
loader_check_descriptor(const char *path, const ImtaPlugin *plugin, GError **error)
{
	guint n = 0;

	if (plugin->abi_version != IMTA_PLUGIN_ABI_VERSION) {
		g_set_error(error, IMTA_PLUGIN_ERROR, IMTA_PLUGIN_ERROR_ABI,
			    "%s: plugin ABI version %u, but this MTA uses ABI version %u; "
			    "rebuild the plugin against this version's <imta/plugin.h>",
			    path, plugin->abi_version, IMTA_PLUGIN_ABI_VERSION);
		return FALSE;
	}
	if (plugin->name == NULL || *plugin->name == '\0' || plugin->version == NULL ||
	    plugin->keywords == NULL) {
		g_set_error(error, IMTA_PLUGIN_ERROR, IMTA_PLUGIN_ERROR_INVALID,
			    "%s: descriptor lacks a name, a version or a keyword list", path);
		return FALSE;
	}
	if (plugin->master == NULL && plugin->slave == NULL) {
		g_set_error(error, IMTA_PLUGIN_ERROR, IMTA_PLUGIN_ERROR_INVALID,
			    "%s: plugin %s has neither a master nor a slave entry point",
			    path, plugin->name);
		return FALSE;
	}
	for (const ImtaPluginKeyword *kw = plugin->keywords; kw->name != NULL; kw++) {
		if (++n > PLUGIN_MAX_KEYWORDS || kw->min_args > kw->max_args) {
			g_set_error(error, IMTA_PLUGIN_ERROR, IMTA_PLUGIN_ERROR_INVALID,
				    "%s: plugin %s has a malformed keyword list", path, plugin->name);
			return FALSE;
		}
	}
	if (n == 0) {
		g_set_error(error, IMTA_PLUGIN_ERROR, IMTA_PLUGIN_ERROR_INVALID,
			    "%s: plugin %s registers no channel keyword", path, plugin->name);
		return FALSE;
	}
	return TRUE;
}

/* Every keyword must be new: not a core keyword, not another plugin's. */
static gboolean
loader_check_keywords(const ImtaPluginRegistry *registry, const char *path,
		      const ImtaPlugin *plugin, GError **error)
{
	for (const ImtaPluginKeyword *kw = plugin->keywords; kw->name != NULL; kw++) {
		const ImtaPlugin *owner = imta_plugin_registry_by_keyword(registry, kw->name);

		if (imta_cnf_is_core_keyword(kw->name)) {
			g_set_error(error, IMTA_PLUGIN_ERROR, IMTA_PLUGIN_ERROR_KEYWORD,
				    "%s: plugin %s registers keyword \"%s\", which is a core "
				    "channel keyword", path, plugin->name, kw->name);
			return FALSE;
		}
		if (owner != NULL) {
			g_set_error(error, IMTA_PLUGIN_ERROR, IMTA_PLUGIN_ERROR_KEYWORD,
				    "%s: plugin %s registers keyword \"%s\", already registered "
				    "by plugin %s; remove one of the two from the plugin directory",
				    path, plugin->name, kw->name, owner->name);
			return FALSE;
		}
		for (const ImtaPluginKeyword *k2 = plugin->keywords; k2 != kw; k2++) {
			if (g_ascii_strcasecmp(k2->name, kw->name) == 0) {
				g_set_error(error, IMTA_PLUGIN_ERROR, IMTA_PLUGIN_ERROR_KEYWORD,
					    "%s: plugin %s registers keyword \"%s\" twice",
					    path, plugin->name, kw->name);
				return FALSE;
			}
		}
	}
	return TRUE;
}

static gboolean
loader_check_name(const ImtaPluginRegistry *registry, const char *path, const ImtaPlugin *plugin,
		  GError **error)
{
	for (guint i = 0; i < registry->modules->len; i++) {
		const ImtaPluginModule *other = registry->modules->pdata[i];

		if (other->state == IMTA_PLUGIN_LOADED && strcmp(other->plugin->name, plugin->name) == 0) {
			g_set_error(error, IMTA_PLUGIN_ERROR, IMTA_PLUGIN_ERROR_KEYWORD,
				    "%s: a plugin named %s is already loaded from %s",
				    path, plugin->name, other->path);
			return FALSE;
		}
	}
	return TRUE;
}

static gboolean
loader_admit(const ImtaPluginRegistry *registry, const char *path, const ImtaPlugin *plugin,
	     GError **error)
{
	return loader_check_descriptor(path, plugin, error) &&
	       loader_check_name(registry, path, plugin, error) &&
	       loader_check_keywords(registry, path, plugin, error);
}

static void
loader_register(ImtaPluginRegistry *registry, ImtaPluginModule *module, const ImtaPlugin *plugin)
{
	module->plugin = plugin;
	module->state = IMTA_PLUGIN_LOADED;
	for (const ImtaPluginKeyword *kw = plugin->keywords; kw->name != NULL; kw++)
		g_hash_table_insert(registry->by_keyword, g_ascii_strdown(kw->name, -1), module);
}

static gboolean
loader_read_at(int fd, void *buf, gsize length, goffset offset)
{
	ssize_t n = pread(fd, buf, length, offset);

	return n >= 0 && (gsize)n == length;
}

/* Does every part of the object that dlopen() maps lie inside the file?
 * The loader maps segments without checking, and touching a page past
 * the end of a file cut short (a copy interrupted, a full disk) kills
 * the process with SIGBUS.  Anything that is not a native ELF object is
 * left to dlopen(), which refuses it cleanly. */
static gboolean
loader_check_extent(const char *path, GError **error)
{
	ElfW(Ehdr) eh;
	ElfW(Phdr) ph;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	const char *problem = NULL;

	if (fd < 0 || fstat(fd, &st) != 0) {
		g_set_error(error, IMTA_PLUGIN_ERROR, IMTA_PLUGIN_ERROR_OPEN, "%s: cannot read: %s",
			    path, g_strerror(errno));
		if (fd >= 0)
			close(fd);
		return FALSE;
	}
	if (!loader_read_at(fd, &eh, sizeof eh, 0) || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh.e_ident[EI_CLASS] != (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32)) {
		close(fd);
		return TRUE;
	}
	if (eh.e_phentsize != sizeof ph || eh.e_phnum > PLUGIN_MAX_PHDRS ||
	    (goffset)eh.e_phoff + (goffset)eh.e_phnum * (goffset)sizeof ph > st.st_size)
		problem = "its program headers";
	for (guint i = 0; problem == NULL && i < eh.e_phnum; i++) {
		goffset at = (goffset)eh.e_phoff + (goffset)i * (goffset)sizeof ph;

		if (!loader_read_at(fd, &ph, sizeof ph, at))
			problem = "its program headers";
		else if (ph.p_type == PT_LOAD && ph.p_filesz > 0 &&
			 (ph.p_offset > (guint64)st.st_size ||
			  ph.p_filesz > (guint64)st.st_size - ph.p_offset))
			problem = "a segment it loads";
	}
	close(fd);
	if (problem == NULL)
		return TRUE;
	g_set_error(error, IMTA_PLUGIN_ERROR, IMTA_PLUGIN_ERROR_OPEN,
		    "%s: cannot load: the file is cut short (%" G_GOFFSET_FORMAT
		    " bytes end before %s); install the plugin again", path, (goffset)st.st_size,
		    problem);
	return FALSE;
}

static gboolean
loader_open(ImtaPluginRegistry *registry, ImtaPluginModule *module, guint flags, guint mta_uid,
	    const ImtaPlugin **plugin_r, GError **error)
{
	const ImtaPlugin *plugin;

	if (!(flags & IMTA_PLUGIN_LOAD_TRUST_FILES) &&
	    !loader_check_owner_mode(module->path, "a plugin file", mta_uid, error))
		return FALSE;
	if (!loader_check_extent(module->path, error))
		return FALSE;
	module->handle = dlopen(module->path, RTLD_NOW | RTLD_LOCAL);
	if (module->handle == NULL) {
		g_set_error(error, IMTA_PLUGIN_ERROR, IMTA_PLUGIN_ERROR_OPEN,
			    "%s: cannot load: %s", module->path, dlerror());
		return FALSE;
	}
	plugin = dlsym(module->handle, IMTA_PLUGIN_DESCRIPTOR_SYMBOL);
	if (plugin == NULL) {
		g_set_error(error, IMTA_PLUGIN_ERROR, IMTA_PLUGIN_ERROR_SYMBOL,
			    "%s: not a channel plugin: no symbol %s (declare the plugin "
			    "with IMTA_PLUGIN_DEFINE)", module->path, IMTA_PLUGIN_DESCRIPTOR_SYMBOL);
		return FALSE;
	}
	if (!loader_admit(registry, module->path, plugin, error))
		return FALSE;
	*plugin_r = plugin;
	return TRUE;
}

gboolean
imta_plugin_registry_load_file(ImtaPluginRegistry *registry, const char *path, guint flags,
			       guint mta_uid, GError **error)
{
	ImtaPluginModule *module = g_new0(ImtaPluginModule, 1);
	g_autoptr(GError) local = NULL;
	const ImtaPlugin *plugin = NULL;

	module->path = g_strdup(path);
	g_ptr_array_add(registry->modules, module);
	if (!loader_open(registry, module, flags, mta_uid, &plugin, &local)) {
		module->state = IMTA_PLUGIN_REFUSED;
		module->error = g_strdup(local->message);
		if (module->handle != NULL) {
			dlclose(module->handle);
			module->handle = NULL;
		}
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	loader_register(registry, module, plugin);
	return TRUE;
}

gboolean
imta_plugin_registry_add_static(ImtaPluginRegistry *registry, const ImtaPlugin *plugin,
				const char *origin, GError **error)
{
	ImtaPluginModule *module;

	if (!loader_admit(registry, origin, plugin, error))
		return FALSE;
	module = g_new0(ImtaPluginModule, 1);
	module->path = g_strdup(origin);
	g_ptr_array_add(registry->modules, module);
	loader_register(registry, module, plugin);
	return TRUE;
}

static gint
compare_names(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

gboolean
imta_plugin_registry_load_dir(ImtaPluginRegistry *registry, const char *dir, guint flags,
			      guint mta_uid, GError **error)
{
	g_autoptr(GDir) handle = NULL;
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GError) local = NULL;
	const char *name;

	if (!(flags & IMTA_PLUGIN_LOAD_TRUST_FILES) &&
	    !loader_check_owner_mode(dir, "a plugin directory", mta_uid, error))
		return FALSE;
	handle = g_dir_open(dir, 0, &local);
	if (handle == NULL) {
		g_set_error(error, IMTA_PLUGIN_ERROR, IMTA_PLUGIN_ERROR_OPEN,
			    "cannot read the plugin directory: %s", local->message);
		return FALSE;
	}
	g_free(registry->dir);
	registry->dir = g_strdup(dir);
	while ((name = g_dir_read_name(handle)) != NULL)
		if (g_str_has_suffix(name, ".so"))
			g_ptr_array_add(names, g_strdup(name));
	g_ptr_array_sort(names, compare_names);
	for (guint i = 0; i < names->len; i++) {
		g_autofree char *path = g_build_filename(dir, names->pdata[i], NULL);

		/* A refusal is recorded in the registry; keep loading the rest. */
		imta_plugin_registry_load_file(registry, path, flags, mta_uid, NULL);
	}
	return TRUE;
}
