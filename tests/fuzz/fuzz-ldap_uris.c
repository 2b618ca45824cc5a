/*
 * fuzz-ldap_uris.c - the LDAP server lists of option.dat (LDAP_URIS,
 * LDAP_HOST) and the settings check of the LDAP backend on arbitrary
 * bytes.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>
#include <glib.h>

#include <imta/directory.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autofree char *text = g_strndup((const char *)data, size);
	g_auto(GStrv) uris = NULL;
	g_autofree char *hosts = NULL;
	GError *error = NULL;

	uris = imta_directory_ldap_parse_uris(text, &error);
	g_clear_error(&error);
	hosts = imta_directory_ldap_hosts_to_uris(text, 389, &error);
	g_clear_error(&error);
	/* What LDAP_HOST produced must be a valid LDAP_URIS. */
	if (hosts != NULL) {
		g_auto(GStrv) again = imta_directory_ldap_parse_uris(hosts, &error);

		if (again == NULL)
			__builtin_trap();
	}
	/* The whole settings check, the text as server list and as DN. */
	{
		ImtaDirectoryLdapOptions options = { .uris = text, .base_dn = text,
						     .domain_root = text };
		ImtaDirectory *dir = imta_directory_open_ldap(&options, NULL, &error);

		g_clear_error(&error);
		if (dir != NULL)
			imta_directory_free(dir);
	}
	return 0;
}
