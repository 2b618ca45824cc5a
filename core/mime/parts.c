/*
 * parts.c - a walk over the leaf parts of a message that shows each one
 * decoded and puts back, re-encoded, what the caller changes (the
 * conversion channel), and charset labelling built on it (the charset7,
 * charset8 and charsetesc channel keywords).  Everything not changed is
 * copied byte for byte; the walk is bounded like the downgrade's.
 */
#include "config.h"

#include <string.h>

#include <glib.h>

#include <imta/mime.h>

#include "mime_private.h"

/* RFC 5322 2.1.1: a line may not be longer than this without an encoding. */
#define PARTS_LINE_LIMIT 998

G_DEFINE_QUARK(imta-mime-error-quark, imta_mime_error)

typedef struct {
	ImtaMimePartFunc fn;
	gpointer user_data;
	GString *out;
	guint leaves;
	guint parts;
	gboolean changed;
	GError *error;
} PartsWalk;

static void parts_entity(PartsWalk *walk, const char *data, gsize len, guint depth,
			 gboolean top, gboolean digest);

/* ------------------------------------------------------------------ */
/* Decoding */

static void
parts_qp_decode(GString *out, const char *s, gsize n)
{
	gsize i = 0;

	while (i < n) {
		gsize end = mime_line_end(s, n, i);
		gsize content = end;
		gboolean hard = end > i && s[end - 1] == '\n';

		if (hard)
			content--;
		if (content > i && s[content - 1] == '\r')
			content--;
		/* RFC 2045 6.7 (3): white space at a line end is padding. */
		while (content > i && (s[content - 1] == ' ' || s[content - 1] == '\t'))
			content--;
		for (gsize k = i; k < content; k++) {
			int hi, lo;

			if (s[k] != '=') {
				g_string_append_c(out, s[k]);
				continue;
			}
			if (k + 1 == content) {
				hard = FALSE;	/* soft line break */
				break;
			}
			hi = k + 2 < content ? g_ascii_xdigit_value(s[k + 1]) : -1;
			lo = k + 2 < content ? g_ascii_xdigit_value(s[k + 2]) : -1;
			if (hi < 0 || lo < 0) {
				g_string_append_c(out, '=');	/* as a robust decoder does */
				continue;
			}
			g_string_append_c(out, (char) (hi * 16 + lo));
			k += 2;
		}
		if (hard)
			g_string_append_c(out, '\n');
		i = end;
	}
}

static void
parts_base64_decode(GString *out, const char *s, gsize n)
{
	gsize start = out->len;
	gint state = 0;
	guint save = 0;
	gsize k;

	g_string_set_size(out, start + n / 4 * 3 + 3);
	k = g_base64_decode_step(s, n, (guchar *) out->str + start, &state, &save);
	g_string_set_size(out, start + k);
}

static GBytes *
parts_decode(MimeCte cte, const char *body, gsize blen)
{
	GString *out;

	switch (cte) {
	case MIME_CTE_QP:
		out = g_string_sized_new(blen);
		parts_qp_decode(out, body, blen);
		return g_string_free_to_bytes(out);
	case MIME_CTE_BASE64:
		out = g_string_sized_new(blen / 4 * 3 + 4);
		parts_base64_decode(out, body, blen);
		return g_string_free_to_bytes(out);
	case MIME_CTE_IDENTITY:
	case MIME_CTE_UNKNOWN:
	default:
		return g_bytes_new(body, blen);
	}
}

/* ------------------------------------------------------------------ */
/* Encoding a replaced body */

static gboolean
parts_is_7bit_text(const guchar *s, gsize n)
{
	gsize col = 0;

	for (gsize i = 0; i < n; i++) {
		if (s[i] == '\n') {
			col = 0;
			continue;
		}
		if (s[i] >= 0x80 || s[i] == 0 || s[i] == '\r' || ++col > PARTS_LINE_LIMIT)
			return FALSE;
	}
	return TRUE;
}

static const char *
parts_choose_encoding(const char *content_type, const guchar *s, gsize n)
{
	if (parts_is_7bit_text(s, n))
		return "7bit";
	if (content_type != NULL && g_ascii_strncasecmp(content_type, "text/", 5) == 0 &&
	    !mime_text_wants_base64(s, n))
		return "quoted-printable";
	return "base64";
}

/* ------------------------------------------------------------------ */
/* Header output */

typedef struct {
	const char *content_type;   /* replaces or adds Content-Type; NULL keeps */
	const char *encoding;       /* replaces or adds Content-Transfer-Encoding */
	gboolean add_version;
} PartsHeaderPlan;

static void
parts_header_write(GString *out, const char *data, gsize len, const MimeHeader *h,
		   const PartsHeaderPlan *plan)
{
	gboolean ct_done = FALSE;
	gboolean cte_done = FALSE;

	for (guint i = 0; i < h->fields->len; i++) {
		const MimeField *f = &g_array_index(h->fields, MimeField, i);

		if (plan->content_type != NULL && mime_field_is(data, f, "content-type")) {
			if (!ct_done)
				g_string_append_printf(out, "Content-Type: %s\n",
						       plan->content_type);
			ct_done = TRUE;
		} else if (plan->encoding != NULL &&
			   mime_field_is(data, f, "content-transfer-encoding")) {
			if (!cte_done)
				g_string_append_printf(out, "Content-Transfer-Encoding: %s\n",
						       plan->encoding);
			cte_done = TRUE;
		} else {
			mime_append_line(out, data + f->start, f->len);
		}
	}
	if (plan->add_version)
		g_string_append(out, "MIME-Version: 1.0\n");
	if (plan->content_type != NULL && !ct_done)
		g_string_append_printf(out, "Content-Type: %s\n", plan->content_type);
	if (plan->encoding != NULL && !cte_done)
		g_string_append_printf(out, "Content-Transfer-Encoding: %s\n", plan->encoding);
	if (h->sep_len > 0)
		g_string_append_len(out, data + h->sep, (gssize) h->sep_len);
	else
		g_string_append_c(out, '\n');
	(void) len;
}

/* A Content-Type value safe to write as one header line. */
static gboolean
parts_content_type_ok(const char *ct)
{
	const char *slash;

	if (ct == NULL)
		return TRUE;
	if (strlen(ct) > PARTS_LINE_LIMIT - 16 || strpbrk(ct, "\r\n") != NULL ||
	    imta_mime_is_8bit(ct, strlen(ct)))
		return FALSE;
	slash = strchr(ct, '/');
	return slash != NULL && slash != ct && slash[1] != '\0' && slash[1] != ';';
}

/* ------------------------------------------------------------------ */
/* The leaf callback */

static char *
parts_field_text(const char *data, const MimeHeader *h, const char *name)
{
	const MimeField *f = mime_header_find(data, h, name);
	GString *v;

	if (f == NULL)
		return NULL;
	v = mime_field_value(data, f);
	g_strstrip(v->str);
	return g_string_free(v, FALSE);
}

typedef struct {
	char *disposition;
	char *filename;
} PartsDisposition;

static void
parts_disposition(const char *data, const MimeHeader *h, const MimeParams *ctp,
		  PartsDisposition *d)
{
	const MimeField *f = mime_header_find(data, h, "content-disposition");
	const GString *p = NULL;
	MimeParams mp = { 0 };

	if (f != NULL) {
		g_autoptr(GString) v = mime_field_value(data, f);

		if (mime_params_parse(v->str, v->len, &mp)) {
			d->disposition = g_ascii_strdown(mp.head, -1);
			p = mime_param(&mp, "filename");
		}
	}
	if (p == NULL && ctp != NULL)
		p = mime_param(ctp, "name");
	if (p != NULL)
		d->filename = g_strndup(p->str, p->len);
	mime_params_clear(&mp);
}

static void
parts_leaf(PartsWalk *walk, const char *data, gsize len, const MimeHeader *h,
	   const MimeContentType *ct, const char *type, const char *subtype, guint depth,
	   gboolean top, gboolean is_mime)
{
	const MimeField *cte_field = mime_header_find(data, h, "content-transfer-encoding");
	MimeCte cte = mime_cte_parse(data, cte_field);
	g_autofree char *ct_value = parts_field_text(data, h, "content-type");
	g_autofree char *cte_value = parts_field_text(data, h, "content-transfer-encoding");
	g_autofree char *encoding = g_ascii_strdown(cte_value != NULL ? cte_value : "7bit", -1);
	g_autofree char *description = parts_field_text(data, h, "content-description");
	g_autoptr(GBytes) body = parts_decode(cte, data + h->body, len - h->body);
	ImtaMimeChange change = { NULL, NULL };
	ImtaMimeAction action = IMTA_MIME_KEEP;
	PartsDisposition disp = { NULL, NULL };
	MimeParams ctp = { 0 };
	ImtaMimePart part;
	gsize blen = 0;
	const char *b = g_bytes_get_data(body, &blen);

	if (ct_value != NULL)
		mime_params_parse(ct_value, strlen(ct_value), &ctp);
	parts_disposition(data, h, ct_value != NULL ? &ctp : NULL, &disp);
	part = (ImtaMimePart) {
		.number = ++walk->leaves,
		.depth = depth,
		.type = type,
		.subtype = subtype,
		.content_type = ct_value,
		.charset = ct->charset,
		.encoding = encoding,
		.description = description,
		.disposition = disp.disposition,
		.filename = disp.filename,
		.mime = is_mime,
		.body = body,
		.body_8bit = imta_mime_is_8bit(b, blen),
	};
	if (!walk->fn(&part, &action, &change, walk->user_data, &walk->error)) {
		if (walk->error == NULL)
			g_set_error(&walk->error, IMTA_MIME_ERROR, IMTA_MIME_ERROR_SYNTAX,
				    "part %u: refused", part.number);
		action = IMTA_MIME_KEEP;
	}
	if (action != IMTA_MIME_KEEP && !parts_content_type_ok(change.content_type) &&
	    walk->error == NULL) {
		g_set_error(&walk->error, IMTA_MIME_ERROR, IMTA_MIME_ERROR_SYNTAX,
			    "part %u: the new content type is not \"type/subtype\" in one "
			    "line of ASCII", part.number);
		action = IMTA_MIME_KEEP;
	}
	if (action == IMTA_MIME_REPLACE && change.body == NULL)
		action = IMTA_MIME_KEEP;
	if (action == IMTA_MIME_RELABEL && change.content_type == NULL)
		action = IMTA_MIME_KEEP;

	if (action == IMTA_MIME_KEEP || walk->error != NULL) {
		g_string_append_len(walk->out, data, (gssize) len);
	} else {
		PartsHeaderPlan plan = { change.content_type, NULL, FALSE };
		const char *new_ct = change.content_type;

		if (new_ct == NULL)
			new_ct = ct_value != NULL ? ct_value : "text/plain";
		walk->changed = TRUE;
		plan.add_version = top && mime_header_find(data, h, "mime-version") == NULL;
		if (action == IMTA_MIME_REPLACE) {
			gsize nlen = 0;
			const guchar *nb = g_bytes_get_data(change.body, &nlen);

			plan.encoding = parts_choose_encoding(new_ct, nb, nlen);
			parts_header_write(walk->out, data, len, h, &plan);
			if (strcmp(plan.encoding, "quoted-printable") == 0)
				mime_qp_encode(walk->out, nb, nlen);
			else if (strcmp(plan.encoding, "base64") == 0)
				mime_base64_encode(walk->out, nb, nlen);
			else
				g_string_append_len(walk->out, (const char *) nb, (gssize) nlen);
		} else {
			if (cte_field == NULL &&
			    imta_mime_is_8bit(data + h->body, len - h->body))
				plan.encoding = "8bit";
			parts_header_write(walk->out, data, len, h, &plan);
			g_string_append_len(walk->out, data + h->body, (gssize) (len - h->body));
		}
	}
	g_free(change.content_type);
	g_clear_pointer(&change.body, g_bytes_unref);
	g_free(disp.disposition);
	g_free(disp.filename);
	mime_params_clear(&ctp);
}

/* ------------------------------------------------------------------ */
/* The walk */

static void
parts_multipart(PartsWalk *walk, const char *d, gsize len, const char *b, gsize bl,
		const MimeDelim *first, guint depth, gboolean digest)
{
	MimeDelim cur = *first;

	g_string_append_len(walk->out, d, (gssize) cur.start);
	for (;;) {
		MimeDelim next;
		gsize ps = cur.end;
		gsize pe;

		g_string_append_len(walk->out, d + cur.start, (gssize) (cur.end - cur.start));
		if (cur.close) {
			g_string_append_len(walk->out, d + cur.end, (gssize) (len - cur.end));
			return;
		}
		/* An unclosed last part, or what is past the limits, stays as it is. */
		if (walk->parts >= IMTA_MIME_MAX_PARTS || walk->error != NULL ||
		    !mime_delim_find(d, len, ps, b, bl, &next)) {
			g_string_append_len(walk->out, d + ps, (gssize) (len - ps));
			return;
		}
		pe = next.start > ps ? next.start - 1 : ps;
		parts_entity(walk, d + ps, pe - ps, depth + 1, FALSE, digest);
		g_string_append_len(walk->out, d + pe, (gssize) (next.start - pe));
		cur = next;
	}
}

static void
parts_entity(PartsWalk *walk, const char *data, gsize len, guint depth, gboolean top,
	     gboolean digest)
{
	MimeHeader h;
	MimeContentType ct = { 0 };
	const MimeField *ct_field;
	MimeCte cte;
	const char *type;
	const char *subtype;
	gboolean is_mime;
	MimeDelim first = { 0 };

	walk->parts++;
	mime_header_parse(data, len, &h);
	ct_field = mime_header_find(data, &h, "content-type");
	cte = mime_cte_parse(data, mime_header_find(data, &h, "content-transfer-encoding"));
	is_mime = !top || ct_field != NULL || mime_header_find(data, &h, "mime-version") != NULL;
	mime_content_type_parse(data, ct_field, &ct);
	type = ct.type != NULL ? ct.type : digest ? "message" : "text";
	subtype = ct.subtype != NULL ? ct.subtype : digest ? "rfc822" : "plain";

	if (cte == MIME_CTE_IDENTITY && depth < IMTA_MIME_MAX_DEPTH) {
		if (strcmp(type, "multipart") == 0 && ct.boundary != NULL &&
		    mime_delim_find(data + h.body, len - h.body, 0, ct.boundary,
				    strlen(ct.boundary), &first)) {
			g_string_append_len(walk->out, data, (gssize) h.body);
			parts_multipart(walk, data + h.body, len - h.body, ct.boundary,
					strlen(ct.boundary), &first, depth,
					strcmp(subtype, "digest") == 0);
			goto done;
		}
		if (strcmp(type, "message") == 0 && strcmp(subtype, "rfc822") == 0) {
			g_string_append_len(walk->out, data, (gssize) h.body);
			parts_entity(walk, data + h.body, len - h.body, depth + 1, FALSE, FALSE);
			goto done;
		}
	}
	parts_leaf(walk, data, len, &h, &ct, type, subtype, depth, top, is_mime);
done:
	mime_content_type_clear(&ct);
	g_array_unref(h.fields);
}

gboolean
imta_mime_rewrite_parts(const char *data, gsize len, ImtaMimePartFunc fn, gpointer user_data,
			GBytes **out_r, GError **error)
{
	PartsWalk walk = { fn, user_data, NULL, 0, 0, FALSE, NULL };

	g_return_val_if_fail(fn != NULL && out_r != NULL, FALSE);
	*out_r = NULL;
	walk.out = g_string_sized_new(len + 1024);
	parts_entity(&walk, data, len, 0, TRUE, FALSE);
	if (walk.error != NULL) {
		g_propagate_error(error, walk.error);
		g_string_free(walk.out, TRUE);
		return FALSE;
	}
	if (walk.changed)
		*out_r = g_string_free_to_bytes(walk.out);
	else
		g_string_free(walk.out, TRUE);
	return TRUE;
}

/* ------------------------------------------------------------------ */
/* Charset labelling */

typedef struct {
	const char *charset7;
	const char *charset8;
	const char *charsetesc;
} LabelPlan;

static gboolean
label_part(const ImtaMimePart *part, ImtaMimeAction *action_r, ImtaMimeChange *change,
	   gpointer user_data, GError **error)
{
	const LabelPlan *plan = user_data;
	gsize n = 0;
	const char *b = g_bytes_get_data(part->body, &n);
	const char *cs;

	if (strcmp(part->type, "text") != 0 || part->charset != NULL)
		return TRUE;
	if (part->content_type != NULL && strstr(part->content_type, "charset") != NULL) {
		/* A charset parameter the scanner could not read (8-bit, broken
		 * quoting): still a label, and labels are never replaced. */
		return TRUE;
	}
	if (part->body_8bit)
		cs = plan->charset8;
	else if (n > 0 && memchr(b, 0x1b, n) != NULL)
		cs = plan->charsetesc != NULL ? plan->charsetesc : plan->charset7;
	else
		cs = plan->charset7;
	if (cs == NULL || !mime_charset_usable(cs))
		return TRUE;	/* us-ascii, absent, or not a charset name */
	if (part->content_type != NULL) {
		g_autofree char *trimmed = g_strdup(part->content_type);

		g_strchomp(trimmed);
		while (trimmed[0] != '\0' && trimmed[strlen(trimmed) - 1] == ';')
			trimmed[strlen(trimmed) - 1] = '\0';
		change->content_type = g_strdup_printf("%s; charset=%s", trimmed, cs);
	} else {
		change->content_type = g_strdup_printf("text/plain; charset=%s", cs);
	}
	*action_r = IMTA_MIME_RELABEL;
	(void) error;
	return TRUE;
}

GBytes *
imta_mime_label_charsets(const char *data, gsize len, const char *charset7,
			 const char *charset8, const char *charsetesc)
{
	LabelPlan plan = { charset7, charset8, charsetesc };
	GBytes *out = NULL;

	if (charset7 == NULL && charset8 == NULL && charsetesc == NULL)
		return NULL;
	if (!imta_mime_rewrite_parts(data, len, label_part, &plan, &out, NULL))
		return NULL;
	return out;
}
