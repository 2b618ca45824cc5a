/*
 * mime.h - MIME content conversions a channel needs to hand a message on:
 * the downgrade of 8-bit content to 7 bits (RFC 6152 section 3) for a
 * next hop that does not offer 8BITMIME or a `sevenbit` channel, a walk
 * that shows each body part decoded and can relabel or replace it (the
 * conversion channel), charset labelling (charset7, charset8,
 * charsetesc), and the reassembly of message/partial (defragment).
 *
 * Input and output are whole messages (RFC 5322 header, empty line, body)
 * with LF line ends, as the queue stores them.  The walk is bounded: at
 * most IMTA_MIME_MAX_DEPTH nested multiparts or message/rfc822 parts and
 * IMTA_MIME_MAX_PARTS parts in all; beyond that, or when the structure is
 * broken (a boundary that never closes), the remaining content is encoded
 * as one opaque part would be, so the output's bodies are always 7-bit
 * and never larger than about 4/3 of the input plus the added headers
 * (text whose bytes are mostly 8-bit goes to base64 for that reason,
 * even when quoted-printable would be the rule).
 */
#ifndef IMTA_MIME_H
#define IMTA_MIME_H

#include <glib.h>
#include <imta/error.h>

G_BEGIN_DECLS

#define IMTA_MIME_MAX_DEPTH 20
#define IMTA_MIME_MAX_PARTS 1000

/* Does the content hold a byte above 127 (or a NUL) anywhere? */
gboolean imta_mime_is_8bit(const char *data, gsize len);

/* A 7-bit copy of `data`: each leaf part (or the whole body of a non-MIME
 * message) with 8-bit bytes is re-encoded, quoted-printable for text
 * types and for a message without MIME headers, base64 for every other;
 * its Content-Transfer-Encoding becomes that encoding (and MIME-Version
 * is added where missing).  Parts that are already 7-bit are copied as
 * they are.  8-bit bytes in header fields are encoded as RFC 2047
 * encoded-words (charset "UTF-8" for valid UTF-8, else the part's
 * charset, else "unknown-8bit") in unstructured fields (Subject,
 * Comments, Content-Description, X-*...), as RFC 2231 values in
 * Content-Type and Content-Disposition parameters, and otherwise left as
 * they are in the message's own header: a structured field cannot be
 * changed without changing its meaning.  Below the top, where the bytes
 * are body: a body part's other fields are encoded as words, and an
 * enclosed message/rfc822 whose header would stay 8-bit is sent as
 * application/octet-stream in base64.  Returns NULL when the content was
 * 7-bit already (no copy). */
GBytes *imta_mime_downgrade_7bit(const char *data, gsize len);

/* Length of the header of a message or body part: the header fields and
 * the empty line that ends them (when there is one).  The header ends at
 * the first empty line, or at the first line that is neither a field nor
 * a continuation of one, which then starts the body. */
gsize imta_mime_header_length(const char *data, gsize len);

/* ---- walking the leaf parts (parts.c) ------------------------------ */

#define IMTA_MIME_ERROR (imta_mime_error_quark())
GQuark imta_mime_error_quark(void);

typedef enum {
	IMTA_MIME_ERROR_SYNTAX,     /* not what was asked for, or malformed */
	IMTA_MIME_ERROR_INCOMPLETE, /* message/partial: a part is missing */
	IMTA_MIME_ERROR_CONFLICT,   /* message/partial: parts that disagree */
	IMTA_MIME_ERROR_LIMIT,      /* beyond a size or count limit */
} ImtaMimeErrorCode;

/* A leaf part (a body part that is neither multipart nor message/rfc822,
 * or the whole message when it is neither) as imta_mime_rewrite_parts()
 * shows it.  Strings are lower case where MIME says they are
 * case-insensitive.  A part without Content-Type is text/plain (in a
 * multipart/digest, message/rfc822); without Content-Transfer-Encoding,
 * 7bit.  The strings and the body belong to the walk and are valid
 * during the call only. */
typedef struct {
	guint number;               /* 1, 2, ... leaf parts in document order */
	guint depth;                /* 0: the message itself */
	const char *type;           /* "text" */
	const char *subtype;        /* "plain" */
	const char *content_type;   /* the Content-Type field's value, unfolded, or NULL */
	const char *charset;        /* charset= parameter, or NULL */
	const char *encoding;       /* "7bit", "quoted-printable", "base64"... */
	const char *description;    /* Content-Description, unfolded, or NULL */
	const char *disposition;    /* Content-Disposition's type ("attachment"), or NULL */
	const char *filename;       /* its filename= (else Content-Type name=), or NULL */
	gboolean mime;              /* the part is labelled: a body part, or a message
				     * with MIME-Version or Content-Type */
	GBytes *body;               /* decoded: quoted-printable and base64 undone */
	gboolean body_8bit;         /* the decoded body has a byte above 127 or a NUL */
} ImtaMimePart;

typedef enum {
	IMTA_MIME_KEEP,     /* copy the part byte for byte */
	IMTA_MIME_RELABEL,  /* new Content-Type; the body stays as it is */
	IMTA_MIME_REPLACE,  /* new Content-Type and body, encoded afresh */
} ImtaMimeAction;

/* What a callback asks for with RELABEL or REPLACE; the walk frees it. */
typedef struct {
	char *content_type;         /* "type/subtype; params"; NULL keeps the old one */
	GBytes *body;               /* REPLACE: the new body, not encoded */
} ImtaMimeChange;

/* Called once per leaf part; FALSE with *error set stops the walk. */
typedef gboolean (*ImtaMimePartFunc)(const ImtaMimePart *part, ImtaMimeAction *action_r,
				     ImtaMimeChange *change, gpointer user_data,
				     GError **error);

/* Walk the structure of `data` (bounded as the downgrade is: deeper or
 * more parts are copied as they are, unseen) and call `fn` for every leaf
 * part, enclosed messages included.  Parts kept are copied byte for
 * byte, so are the headers, preambles, epilogues and delimiters around
 * them.  A relabelled part gets the new Content-Type field in place of
 * the old one (added after the others when it had none), plus
 * "Content-Transfer-Encoding: 8bit" when its body is 8-bit and says
 * nothing.  A replaced part also gets a new Content-Transfer-Encoding:
 * 7bit when the body is 7-bit text in lines of at most 998 bytes,
 * quoted-printable for a text type unless that would be longer than
 * base64, base64 otherwise, lines of at most 76 characters.  The message
 * gets MIME-Version: 1.0 when a change at the top needs it.  Other
 * fields (Content-Description, Content-Disposition...) stay.
 * *out_r is the new message, or NULL when every part was kept. */
gboolean imta_mime_rewrite_parts(const char *data, gsize len, ImtaMimePartFunc fn,
				 gpointer user_data, GBytes **out_r, GError **error);

/* The channel keywords charset7, charset8 and charsetesc: each text part
 * without a charset parameter (and a message without MIME headers, which
 * is text/plain) is labelled with `charset8` when its decoded body has
 * 8-bit bytes, else `charsetesc` when it holds an ESC, else `charset7`;
 * a NULL charset leaves such parts alone, and so does US-ASCII for a
 * 7-bit part (the label MIME assumes already).  A label already there is
 * never changed.  Returns the relabelled message, or NULL when nothing
 * changed. */
GBytes *imta_mime_label_charsets(const char *data, gsize len, const char *charset7,
				 const char *charset8, const char *charsetesc);

/* ---- message/partial (RFC 2046 5.2.2) ------------------------------ */

#define IMTA_MIME_MAX_FRAGMENTS 1000
#define IMTA_MIME_MAX_PARTIAL_ID 512

typedef struct {
	char *id;                   /* the id= parameter */
	guint number;               /* 1 ... */
	guint total;                /* 0: not given (only the last part must give it) */
} ImtaMimePartial;

/* Is the message's own Content-Type message/partial?  Reads the header only. */
gboolean imta_mime_is_partial(const char *data, gsize len);

/* The id, number and total of a message/partial message.  Errors
 * (IMTA_MIME_ERROR_SYNTAX) say what is wrong: not message/partial, no
 * id, a number or total that is not an integer from 1 to
 * IMTA_MIME_MAX_FRAGMENTS, a number above the total. */
gboolean imta_mime_partial_parse(const char *data, gsize len, ImtaMimePartial *partial_r,
				 GError **error);
void imta_mime_partial_clear(ImtaMimePartial *partial);

/* Reassemble the message the `n` parts (whole messages, any order) were
 * cut from: the header fields of part 1's own header except Content-*,
 * Subject, Message-ID, Encrypted and MIME-Version, then those fields of
 * the enclosed header, then the enclosed body: the parts' bodies
 * concatenated in number order (RFC 2046 5.2.2.2).  Nothing is assembled
 * when a part is missing (IMTA_MIME_ERROR_INCOMPLETE: the numbers from 1
 * to the total must all be there, and some part must give the total) or
 * the parts disagree (IMTA_MIME_ERROR_CONFLICT: another id, two totals,
 * one number twice). */
GBytes *imta_mime_partial_assemble(GBytes *const *parts, guint n, GError **error);

G_END_DECLS

#endif
