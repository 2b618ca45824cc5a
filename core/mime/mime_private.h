/*
 * mime_private.h - private to core/mime: the header and Content-Type
 * scanner and the body encoders that the downgrade (downgrade.c), the
 * part walk (parts.c), charset labelling and reassembly share.
 *
 * Everything works on byte ranges of a message with LF line ends; no
 * function here allocates more than a bounded copy of one field.
 */
#ifndef IMTA_MIME_PRIVATE_H
#define IMTA_MIME_PRIVATE_H

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
	MIME_CTE_IDENTITY,	/* absent, 7bit, 8bit or binary */
	MIME_CTE_QP,
	MIME_CTE_BASE64,
	MIME_CTE_UNKNOWN,
} MimeCte;

typedef struct {
	gsize start;		/* offset of the field name */
	gsize len;		/* up to and including the final LF */
	gsize name_len;
} MimeField;

typedef struct {
	GArray *fields;		/* MimeField */
	gsize sep;		/* offset of the empty line */
	gsize sep_len;		/* 0 when the header has none */
	gsize body;		/* offset of the body */
} MimeHeader;

typedef struct {
	char *name;		/* lower case */
	GString *value;		/* unquoted */
} MimeParam;

typedef struct {
	char *head;		/* "text/plain", "attachment" as written */
	GPtrArray *params;	/* MimeParam */
} MimeParams;

typedef struct {
	gsize start;		/* offset of the "--" */
	gsize end;		/* just after the line's LF */
	gboolean close;
} MimeDelim;

typedef struct {
	char *type;		/* lower case; NULL when absent or unparseable */
	char *subtype;
	char *boundary;
	char *charset;
} MimeContentType;

/* Offset just past the LF of the line starting at pos (or len). */
gsize mime_line_end(const char *data, gsize len, gsize pos);
/* Fields and the end of the header; free h->fields with g_array_unref. */
void mime_header_parse(const char *data, gsize len, MimeHeader *h);
gboolean mime_field_is(const char *data, const MimeField *f, const char *name);
const MimeField *mime_header_find(const char *data, const MimeHeader *h, const char *name);
/* The field body after the colon, unfolded. */
GString *mime_field_value(const char *data, const MimeField *f);
/* Appends the line, with an LF when it lacks one. */
void mime_append_line(GString *out, const char *s, gsize n);

/* "head; name=value ..." (Content-Type, Content-Disposition). */
gboolean mime_params_parse(const char *v, gsize n, MimeParams *mp);
void mime_params_clear(MimeParams *mp);
const GString *mime_param(const MimeParams *mp, const char *name);
MimeCte mime_cte_parse(const char *data, const MimeField *f);
/* Fills ct from the Content-Type field f (NULL: leaves ct empty). */
void mime_content_type_parse(const char *data, const MimeField *f, MimeContentType *ct);
void mime_content_type_clear(MimeContentType *ct);
gboolean mime_charset_usable(const char *cs);

/* The next delimiter line of boundary b at or after `from`. */
gboolean mime_delim_find(const char *d, gsize len, gsize from, const char *b, gsize bl,
			 MimeDelim *out);

/* Body encoders: lines within 76 characters, the final line end kept
 * exactly when the input had one. */
gboolean mime_qp_literal(guchar c);
void mime_qp_encode(GString *out, const guchar *s, gsize n);
void mime_base64_encode(GString *out, const guchar *s, gsize n);
/* Would quoted-printable be longer than base64 for these bytes? */
gboolean mime_text_wants_base64(const guchar *s, gsize n);

G_END_DECLS

#endif
