/*
 * fuzz-mappings.c - the mappings file parser and the matching engine on
 * arbitrary bytes.
 *
 * The input is a mappings text, a NUL byte, then a probe string.  Without
 * a NUL the whole input is the text and its last line is the probe.  When
 * the text parses, every table is applied to the probe; the probe is also
 * matched against the text's first line as a pattern.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>
#include <glib.h>

#include <imta/log.h>
#include <imta/mappings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *nul = memchr(text, '\0', size);
	gsize text_length = nul != NULL ? (gsize)(nul - text) : size;
	g_autofree char *probe = NULL;
	g_autofree char *first_line = NULL;
	g_autoptr(GStringChunk) names = g_string_chunk_new(64);
	g_autoptr(ImtaMappings) m = NULL;
	g_auto(GStrv) captures = NULL;
	const char *nl;

	imta_log_set_level(IMTA_LOG_ERROR);
	if (nul != NULL) {
		probe = g_strndup(nul + 1, size - text_length - 1);
	} else {
		const char *last = g_strrstr_len(text, (gssize)size, "\n");

		probe = last != NULL ? g_strndup(last + 1, (gsize)(text + size - last - 1))
				     : g_strndup(text, size);
	}
	nl = memchr(text, '\n', text_length);
	first_line = g_strndup(text, nl != NULL ? (gsize)(nl - text) : text_length);
	captures = imta_mapping_match_pattern(first_line, probe);

	m = imta_mappings_parse_text("fuzz", text, text_length, names, NULL);
	if (m == NULL)
		return 0;
	for (const char *const *name = imta_mappings_table_names(m); *name != NULL; name++) {
		ImtaMappingResult result = { 0 };

		imta_mappings_apply_named(m, *name, probe, &result);
		imta_mapping_result_clear(&result);
	}
	return 0;
}
