/*
 * mime.h - MIME content conversions a channel needs to hand a message on:
 * today the downgrade of 8-bit content to 7 bits (RFC 6152 section 3)
 * for a next hop that does not offer 8BITMIME.
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

G_END_DECLS

#endif
