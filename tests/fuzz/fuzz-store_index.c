/*
 * fuzz-store_index.c - arbitrary bytes as a folder's store.idx (and, from
 * a split point, its store.cache) in a scratch store: listing, status,
 * a flag change, then check and repair must never crash, leak or hang.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include <imta/store.h>

static char *fuzz_root;
static ImtaStore *fuzz_store;

static void
fuzz_setup(void)
{
	g_autoptr(ImtaStoreConfig) config = NULL;

	fuzz_root = g_dir_make_tmp("fuzz-store-XXXXXX", NULL);
	config = imta_store_config_load(NULL, fuzz_root, NULL);
	fuzz_store = imta_store_open(config, NULL);
	if (fuzz_store == NULL)
		abort();
}

static void
fuzz_write(const char *dir, const char *name, const uint8_t *data, size_t size)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);

	if (!g_file_set_contents(path, (const char *)data, (gssize)size, NULL))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char msg[] = "Subject: s\nFrom: f\n\nbody\n";
	g_autofree char *dir = NULL;
	size_t split = size;
	ImtaStoreTarget t = { "fuzz", NULL, NULL, 0, NULL };
	GError *error = NULL;
	GPtrArray *list;
	ImtaStoreFolderStatus st;

	if (fuzz_store == NULL)
		fuzz_setup();
	imta_store_delete_user(fuzz_store, "fuzz", NULL);
	/* Two real messages, so records can point at files. */
	imta_store_deliver(fuzz_store, msg, sizeof msg - 1, 1, &t, 1, NULL);
	g_clear_error(&t.error);
	imta_store_deliver(fuzz_store, msg, sizeof msg - 1, 1, &t, 1, NULL);
	g_clear_error(&t.error);
	dir = imta_store_user_path(fuzz_store, "fuzz", NULL);
	/* A first byte >= 0x80 splits the input: the rest after the index
	 * part becomes the cache. */
	if (size > 2 && data[0] >= 0x80) {
		split = 1 + (size - 1) * (data[1] & 0x7f) / 128;
		fuzz_write(dir, "store.cache", data + split, size - split);
		data++;
		split--;
	}
	fuzz_write(dir, "store.idx", data, split);
	list = imta_store_folder_messages(fuzz_store, "fuzz", NULL, &error);
	if (list != NULL)
		g_ptr_array_unref(list);
	g_clear_error(&error);
	imta_store_folder_status(fuzz_store, "fuzz", NULL, &st, NULL);
	imta_store_set_flags(fuzz_store, "fuzz", NULL, 1, IMTA_STORE_FLAG_SEEN, 0, NULL);
	imta_store_reconstruct(fuzz_store, "fuzz", TRUE, NULL, NULL);
	if (imta_store_reconstruct(fuzz_store, "fuzz", FALSE, NULL, NULL) >= 0 &&
	    imta_store_reconstruct(fuzz_store, "fuzz", TRUE, NULL, NULL) != 0)
		abort();	/* a repaired folder must check clean */
	list = imta_store_folder_messages(fuzz_store, "fuzz", NULL, &error);
	if (list == NULL)
		abort();
	g_ptr_array_unref(list);
	return 0;
}
