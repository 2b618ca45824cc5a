/*
 * fuzz-conversion.c - libFuzzer harness for what the conversion and
 * defragment channels parse: the part walk (each part relabelled, then
 * replaced, so both output paths run), charset labelling, message/partial
 * parsing and reassembly (the input cut into three parts), and the
 * conversions file.  Every call must return, free what it made, and keep
 * its promises: a walk that changed nothing hands back no copy.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <imta/mime.h>
#include <imta/conversions.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gboolean
fuzz_part(const ImtaMimePart *part, ImtaMimeAction *action_r, ImtaMimeChange *change,
	  gpointer user_data, GError **error)
{
	gsize n = 0;
	const char *b = g_bytes_get_data(part->body, &n);

	if (part->type == NULL || part->subtype == NULL || part->encoding == NULL)
		abort();
	if (part->number % 3 == 1) {
		change->content_type = g_strdup("text/plain; charset=x-fuzz");
		change->body = g_bytes_new(b, n / 2);
		*action_r = IMTA_MIME_REPLACE;
	} else if (part->number % 3 == 2) {
		change->content_type = g_strdup("application/octet-stream");
		*action_r = IMTA_MIME_RELABEL;
	}
	return TRUE;
}

static gboolean
fuzz_keep(const ImtaMimePart *part, ImtaMimeAction *action_r, ImtaMimeChange *change,
	  gpointer user_data, GError **error)
{
	return TRUE;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *) data;
	GBytes *out = NULL;
	GBytes *parts[3];
	GBytes *whole;
	ImtaMimePartial p;
	ImtaConversions *conv;
	gsize third = size / 3;

	if (!imta_mime_rewrite_parts(text, size, fuzz_keep, NULL, &out, NULL) || out != NULL)
		abort();
	if (imta_mime_rewrite_parts(text, size, fuzz_part, NULL, &out, NULL))
		g_clear_pointer(&out, g_bytes_unref);
	out = imta_mime_label_charsets(text, size, "ISO-8859-1", "UTF-8", "ISO-2022-JP");
	g_clear_pointer(&out, g_bytes_unref);
	if (imta_mime_partial_parse(text, size, &p, NULL)) {
		if (p.number < 1 || p.number > IMTA_MIME_MAX_FRAGMENTS || p.id == NULL)
			abort();
		imta_mime_partial_clear(&p);
	}
	parts[0] = g_bytes_new(text, third);
	parts[1] = g_bytes_new(text + third, third);
	parts[2] = g_bytes_new(text + 2 * third, size - 2 * third);
	whole = imta_mime_partial_assemble(parts, 3, NULL);
	if (whole != NULL)
		g_bytes_unref(whole);
	for (int i = 0; i < 3; i++)
		g_bytes_unref(parts[i]);
	conv = imta_conversions_parse_text("fuzz", text, size, NULL);
	imta_conversions_free(conv);
	return 0;
}
