/*
 * fuzz-mime.c - libFuzzer harness for the 8-bit to 7-bit downgrade.  On any
 * bytes: 7-bit input gives no copy; otherwise the output's body (all but
 * the message's own header) is 7-bit and its size stays within a fixed
 * multiple of the input's.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include <glib.h>
#include <imta/mime.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *) data;
	GBytes *out = imta_mime_downgrade_7bit(text, size);
	const char *o;
	gsize olen = 0;
	gsize hl;

	if (!imta_mime_is_8bit(text, size)) {
		if (out != NULL)
			abort();
		return 0;
	}
	if (out == NULL)
		abort();
	o = g_bytes_get_data(out, &olen);
	hl = imta_mime_header_length(o, olen);
	if (imta_mime_is_8bit(o + hl, olen - hl))
		abort();
	/* Encoded-words on one-byte words are the worst case. */
	if (olen > 16 * size + 1024)
		abort();
	/* A second pass has nothing left to do in the body. */
	if (!imta_mime_is_8bit(o, hl)) {
		GBytes *again = imta_mime_downgrade_7bit(o, olen);

		if (again != NULL)
			abort();
	}
	g_bytes_unref(out);
	return 0;
}
