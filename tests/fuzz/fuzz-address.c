/*
 * fuzz-address.c - libFuzzer harness for the mailbox parser.  Parses the
 * input under several flag combinations and checks the properties the rest
 * of the MTA relies on: a formatted valid address reparses to the same
 * address, and quoting any local part gives one the parser accepts.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <imta/address.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ImtaAddressFlags fuzz_address_flags[] = {
	0,
	IMTA_ADDRESS_ANGLE | IMTA_ADDRESS_ALLOW_EMPTY,
	IMTA_ADDRESS_NO_DOMAIN_OK,
	IMTA_ADDRESS_UTF8,
	IMTA_ADDRESS_UTF8 | IMTA_ADDRESS_NO_LIMITS | IMTA_ADDRESS_NO_DOMAIN_OK,
	IMTA_ADDRESS_ALLOW_EMPTY | IMTA_ADDRESS_ANGLE | IMTA_ADDRESS_NO_DOMAIN_OK,
};

static gboolean
fuzz_address_same(const ImtaAddress *a, const ImtaAddress *b)
{
	guint n = g_strv_length(a->route);

	if (n != g_strv_length(b->route) || a->empty != b->empty ||
	    a->domain_kind != b->domain_kind || g_strcmp0(a->local, b->local) != 0 ||
	    g_strcmp0(a->domain, b->domain) != 0 || !imta_domain_equal(a->domain, b->domain))
		return FALSE;
	for (guint i = 0; i < n; i++) {
		if (strcmp(a->route[i], b->route[i]) != 0)
			return FALSE;
	}
	return TRUE;
}

static void
fuzz_address_round_trip(const char *text, gsize size, ImtaAddressFlags flags)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaAddress) first = imta_address_parse(text, (gssize) size, flags, &error);
	g_autoptr(ImtaAddress) second = NULL;
	g_autofree char *formatted = NULL;
	g_autofree char *input = NULL;
	g_autofree char *again = NULL;

	if (first == NULL) {
		if (error == NULL || error->domain != IMTA_ADDRESS_ERROR)
			abort();
		return;
	}
	if (error != NULL || first->raw == NULL || first->local == NULL || first->route == NULL)
		abort();
	formatted = imta_address_format(first);
	input = (flags & IMTA_ADDRESS_ANGLE) ? g_strdup_printf("<%s>", formatted)
					     : g_strdup(formatted);
	second = imta_address_parse(input, -1, flags, &error);
	if (second == NULL || !fuzz_address_same(first, second))
		abort();
	again = imta_address_format(second);
	if (strcmp(again, formatted) != 0)
		abort();
}

/* Whatever the bytes, quote() gives a local part that unquotes back and that
 * the parser takes verbatim (CR, LF and NUL aside, which no quoting allows). */
static void
fuzz_address_quoting(const char *text, gsize size)
{
	g_autofree char *local = g_strndup(text, size);
	g_autofree char *quoted = NULL;
	g_autofree char *unquoted = NULL;
	g_autofree char *input = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaAddress) address = NULL;

	if (strlen(local) != size || strpbrk(local, "\r\n") != NULL)
		return;
	quoted = imta_local_part_quote(local);
	unquoted = imta_local_part_unquote(quoted);
	if (strcmp(unquoted, local) != 0)
		abort();
	input = g_strdup_printf("%s@example.com", quoted);
	address = imta_address_parse(input, -1, IMTA_ADDRESS_NO_LIMITS, &error);
	if (address == NULL)
		abort();
	if (strlen(address->local) != strlen(quoted))
		abort();
	if (!address->had_8bit && strcmp(address->local, quoted) != 0)
		abort();
}

/* Domain comparison is reflexive and symmetric. */
static void
fuzz_address_domain_equal(const char *text, gsize size)
{
	g_autofree char *a = g_strndup(text, size / 2);
	g_autofree char *b = g_strndup(text + size / 2, size - size / 2);

	if (!imta_domain_equal(a, a) || imta_domain_equal(a, b) != imta_domain_equal(b, a))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *) data;

	for (gsize i = 0; i < G_N_ELEMENTS(fuzz_address_flags); i++)
		fuzz_address_round_trip(text, size, fuzz_address_flags[i]);
	fuzz_address_quoting(text, size);
	fuzz_address_domain_equal(text, size);
	return 0;
}
