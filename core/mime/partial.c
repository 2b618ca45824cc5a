/*
 * partial.c - message/partial (RFC 2046 5.2.2): reading a fragment's id,
 * number and total, and reassembling the message the fragments were cut
 * from, for the defragment channel.  Reassembly is all or nothing: a
 * missing fragment or fragments that disagree assemble nothing.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include <imta/mime.h>

#include "mime_private.h"

static gboolean
partial_content_type(const char *data, gsize len, MimeHeader *h, MimeParams *mp)
{
	const MimeField *f;
	g_autoptr(GString) v = NULL;

	mime_header_parse(data, len, h);
	f = mime_header_find(data, h, "content-type");
	if (f == NULL)
		return FALSE;
	v = mime_field_value(data, f);
	return mime_params_parse(v->str, v->len, mp) &&
	       g_ascii_strcasecmp(mp->head, "message/partial") == 0;
}

gboolean
imta_mime_is_partial(const char *data, gsize len)
{
	MimeHeader h;
	MimeParams mp = { 0 };
	gboolean is;

	is = partial_content_type(data, len, &h, &mp);
	mime_params_clear(&mp);
	g_array_unref(h.fields);
	return is;
}

/* A decimal from 1 to IMTA_MIME_MAX_FRAGMENTS. */
static gboolean
partial_number(const GString *s, guint *value_r)
{
	guint64 v = 0;

	if (s->len == 0 || s->len > 5)
		return FALSE;
	for (gsize i = 0; i < s->len; i++) {
		if (!g_ascii_isdigit(s->str[i]))
			return FALSE;
		v = v * 10 + (guint64) (s->str[i] - '0');
	}
	if (v < 1 || v > IMTA_MIME_MAX_FRAGMENTS)
		return FALSE;
	*value_r = (guint) v;
	return TRUE;
}

static gboolean
partial_fail(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static gboolean
partial_fail(GError **error, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error_literal(error, IMTA_MIME_ERROR, IMTA_MIME_ERROR_SYNTAX, msg);
	g_free(msg);
	return FALSE;
}

static gboolean
partial_params(const MimeParams *mp, ImtaMimePartial *p, GError **error)
{
	const GString *id = mime_param(mp, "id");
	const GString *number = mime_param(mp, "number");
	const GString *total = mime_param(mp, "total");

	if (id == NULL || id->len == 0)
		return partial_fail(error, "message/partial without an id parameter");
	if (id->len > IMTA_MIME_MAX_PARTIAL_ID || memchr(id->str, '\0', id->len) != NULL)
		return partial_fail(error, "message/partial id longer than %d bytes or with a NUL",
				    IMTA_MIME_MAX_PARTIAL_ID);
	if (number == NULL || !partial_number(number, &p->number))
		return partial_fail(error, "message/partial number: expected an integer from 1 "
				    "to %d", IMTA_MIME_MAX_FRAGMENTS);
	if (total != NULL && !partial_number(total, &p->total))
		return partial_fail(error, "message/partial total: expected an integer from 1 "
				    "to %d", IMTA_MIME_MAX_FRAGMENTS);
	if (p->total > 0 && p->number > p->total)
		return partial_fail(error, "message/partial number %u is above the total %u",
				    p->number, p->total);
	p->id = g_strndup(id->str, id->len);
	return TRUE;
}

gboolean
imta_mime_partial_parse(const char *data, gsize len, ImtaMimePartial *partial_r,
			GError **error)
{
	MimeHeader h;
	MimeParams mp = { 0 };
	gboolean ok;

	memset(partial_r, 0, sizeof *partial_r);
	if (!partial_content_type(data, len, &h, &mp))
		ok = partial_fail(error, "not a message/partial message");
	else
		ok = partial_params(&mp, partial_r, error);
	mime_params_clear(&mp);
	g_array_unref(h.fields);
	if (!ok)
		imta_mime_partial_clear(partial_r);
	return ok;
}

void
imta_mime_partial_clear(ImtaMimePartial *partial)
{
	g_clear_pointer(&partial->id, g_free);
	partial->number = 0;
	partial->total = 0;
}

/* ------------------------------------------------------------------ */
/* Reassembly */

/* RFC 2046 5.2.2.2: the fields that come from the enclosed header. */
static gboolean
partial_enclosed_field(const char *data, const MimeField *f)
{
	return (f->name_len >= 8 && g_ascii_strncasecmp(data + f->start, "content-", 8) == 0) ||
	       mime_field_is(data, f, "subject") || mime_field_is(data, f, "message-id") ||
	       mime_field_is(data, f, "encrypted") || mime_field_is(data, f, "mime-version");
}

static void
partial_copy_fields(GString *out, const char *data, const MimeHeader *h, gboolean enclosed)
{
	for (guint i = 0; i < h->fields->len; i++) {
		const MimeField *f = &g_array_index(h->fields, MimeField, i);

		if (partial_enclosed_field(data, f) == enclosed)
			mime_append_line(out, data + f->start, f->len);
	}
}

static gboolean
partial_conflict(GError **error, ImtaMimeErrorCode code, const char *fmt, ...)
	G_GNUC_PRINTF(3, 4);

static gboolean
partial_conflict(GError **error, ImtaMimeErrorCode code, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error_literal(error, IMTA_MIME_ERROR, code, msg);
	g_free(msg);
	return FALSE;
}

/* Orders the parts by number into by_number[1..total]. */
static gboolean
partial_check(GBytes *const *parts, guint n, const ImtaMimePartial *info, guint *total_r,
	      guint *by_number, GError **error)
{
	guint total = 0;

	for (guint i = 0; i < n; i++) {
		if (strcmp(info[i].id, info[0].id) != 0)
			return partial_conflict(error, IMTA_MIME_ERROR_CONFLICT,
						"part %u has the id \"%s\", not \"%s\"",
						info[i].number, info[i].id, info[0].id);
		if (info[i].total == 0)
			continue;
		if (total != 0 && info[i].total != total)
			return partial_conflict(error, IMTA_MIME_ERROR_CONFLICT,
						"the parts disagree on the total: %u and %u",
						total, info[i].total);
		total = info[i].total;
	}
	if (total == 0)
		return partial_conflict(error, IMTA_MIME_ERROR_INCOMPLETE,
					"no part gives the total (the last part is missing)");
	for (guint i = 0; i < n; i++) {
		if (info[i].number > total)
			return partial_conflict(error, IMTA_MIME_ERROR_CONFLICT,
						"part %u is above the total %u", info[i].number,
						total);
		if (by_number[info[i].number] != G_MAXUINT)
			return partial_conflict(error, IMTA_MIME_ERROR_CONFLICT,
						"part %u is given twice", info[i].number);
		by_number[info[i].number] = i;
	}
	for (guint k = 1; k <= total; k++)
		if (by_number[k] == G_MAXUINT)
			return partial_conflict(error, IMTA_MIME_ERROR_INCOMPLETE,
						"part %u of %u is missing", k, total);
	(void) parts;
	*total_r = total;
	return TRUE;
}

static GBytes *
partial_build(GBytes *const *parts, const guint *by_number, guint total)
{
	gsize len0 = 0;
	const char *d0 = g_bytes_get_data(parts[by_number[1]], &len0);
	g_autoptr(GString) enclosed = g_string_new(NULL);
	GString *out;
	MimeHeader outer;
	MimeHeader inner;

	for (guint k = 1; k <= total; k++) {
		gsize len = 0;
		const char *d = g_bytes_get_data(parts[by_number[k]], &len);
		gsize hl = imta_mime_header_length(d, len);

		g_string_append_len(enclosed, d + hl, (gssize) (len - hl));
	}
	mime_header_parse(d0, len0, &outer);
	mime_header_parse(enclosed->str, enclosed->len, &inner);
	out = g_string_sized_new(enclosed->len + outer.body + 64);
	partial_copy_fields(out, d0, &outer, FALSE);
	partial_copy_fields(out, enclosed->str, &inner, TRUE);
	g_string_append_c(out, '\n');
	g_string_append_len(out, enclosed->str + inner.body, (gssize) (enclosed->len - inner.body));
	g_array_unref(outer.fields);
	g_array_unref(inner.fields);
	return g_string_free_to_bytes(out);
}

GBytes *
imta_mime_partial_assemble(GBytes *const *parts, guint n, GError **error)
{
	g_autofree ImtaMimePartial *info = NULL;
	g_autofree guint *by_number = NULL;
	GBytes *result = NULL;
	guint total = 0;
	guint parsed = 0;

	if (n == 0) {
		partial_conflict(error, IMTA_MIME_ERROR_INCOMPLETE, "no parts");
		return NULL;
	}
	if (n > IMTA_MIME_MAX_FRAGMENTS) {
		partial_conflict(error, IMTA_MIME_ERROR_LIMIT, "more than %d parts",
				 IMTA_MIME_MAX_FRAGMENTS);
		return NULL;
	}
	info = g_new0(ImtaMimePartial, n);
	for (; parsed < n; parsed++) {
		gsize len = 0;
		const char *d = g_bytes_get_data(parts[parsed], &len);
		g_autoptr(GError) local = NULL;

		if (!imta_mime_partial_parse(d, len, &info[parsed], &local)) {
			partial_conflict(error, IMTA_MIME_ERROR_SYNTAX, "message %u of %u: %s",
					 parsed + 1, n, local->message);
			goto out;
		}
	}
	by_number = g_new(guint, IMTA_MIME_MAX_FRAGMENTS + 1);
	for (guint k = 0; k <= IMTA_MIME_MAX_FRAGMENTS; k++)
		by_number[k] = G_MAXUINT;
	if (partial_check(parts, n, info, &total, by_number, error))
		result = partial_build(parts, by_number, total);
out:
	for (guint i = 0; i < parsed; i++)
		imta_mime_partial_clear(&info[i]);
	return result;
}
