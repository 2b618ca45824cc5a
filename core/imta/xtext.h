/*
 * xtext.h - RFC 3461 xtext, the encoding of ESMTP ORCPT and ENVID values,
 * also used for every field of a queue file and of the job controller
 * protocol that could hold arbitrary bytes.
 *
 * Encoding writes every byte outside 0x21..0x7e, and '+' and '=', as "+XX"
 * (two upper-case hex digits); the result never holds a space, a control
 * character, a newline or an 8-bit byte.
 *
 * Decoding refuses malformed input instead of guessing: a '+' not followed
 * by two upper-case hex digits, and any byte outside 0x21..0x7e.  A bare
 * '=' is accepted (some clients do not encode it; it is harmless).  A "+00"
 * decodes to a NUL byte, which only the length-returning form accepts.
 */
#ifndef IMTA_XTEXT_H
#define IMTA_XTEXT_H

#include <glib.h>

G_BEGIN_DECLS

#define IMTA_XTEXT_ERROR (imta_xtext_error_quark())
GQuark imta_xtext_error_quark(void);

typedef enum {
	IMTA_XTEXT_ERROR_SYNTAX, /* malformed xtext; the message gives the offset */
} ImtaXtextErrorCode;

/* Append the xtext form of `length` bytes of `data` (-1: NUL-terminated). */
void imta_xtext_append(GString *out, const char *data, gssize length);

/* The xtext form of `data`, newly allocated. */
char *imta_xtext_encode(const char *data, gssize length);

/* TRUE when `text` is well-formed xtext (the rules of imta_xtext_decode). */
gboolean imta_xtext_valid(const char *text, gssize length);

/* Decode `length` bytes of xtext (-1: NUL-terminated).  With length_r the
 * result may contain NUL bytes and its length is stored there; without it,
 * a decoded NUL is refused, so the result is safe as a C string.  The
 * result is always NUL-terminated.  NULL and an IMTA_XTEXT_ERROR_SYNTAX
 * error naming the offset of the first bad byte when malformed. */
char *imta_xtext_decode(const char *text, gssize length, gsize *length_r, GError **error);

G_END_DECLS

#endif
