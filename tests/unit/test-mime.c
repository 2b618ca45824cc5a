/*
 * test-mime.c - the 8-bit to 7-bit downgrade: exact output for non-MIME
 * messages, multiparts, nested messages and header fields; the
 * quoted-printable and base64 details; bounds and broken structure.  Every
 * output is checked to have a 7-bit body, and re-encoded parts are decoded
 * back and compared with the original bytes.
 */
#include "config.h"

#include <string.h>
#include <glib.h>
#include <imta/mime.h>

/* ------------------------------------------------------------------ */
/* Helpers */

static void
assert_body_7bit(const char *out, gsize len)
{
	gsize hl = imta_mime_header_length(out, len);

	for (gsize i = hl; i < len; i++) {
		if ((guchar) out[i] >= 0x80 || out[i] == '\0')
			g_error("8-bit byte 0x%02x at offset %" G_GSIZE_FORMAT " of the body in:\n%.*s",
				(guchar) out[i], i - hl, (int) len, out);
	}
}

/* The downgrade of `in` (len -1: a string); never NULL here, body 7-bit. */
static GString *
downgrade(const char *in, gssize len)
{
	gsize n = len < 0 ? strlen(in) : (gsize) len;
	g_autoptr(GBytes) bytes = imta_mime_downgrade_7bit(in, n);
	gsize out_len = 0;
	const char *out;

	g_assert_nonnull(bytes);
	out = g_bytes_get_data(bytes, &out_len);
	assert_body_7bit(out, out_len);
	return g_string_new_len(out, (gssize) out_len);
}

static void
assert_lines_within(const char *s, gsize len, gsize max)
{
	gsize col = 0;

	for (gsize i = 0; i < len; i++) {
		if (s[i] == '\n') {
			col = 0;
			continue;
		}
		col++;
		if (col > max)
			g_error("line longer than %" G_GSIZE_FORMAT " in:\n%.*s", max, (int) len, s);
	}
}

static int
hexval(char c)
{
	return g_ascii_xdigit_value(c);
}

/* Quoted-printable decoding as a receiver does it (RFC 2045 6.7). */
static GString *
qp_decode(const char *s, gsize n)
{
	GString *out = g_string_new(NULL);

	for (gsize i = 0; i < n; i++) {
		if (s[i] == '=' && i + 1 < n && s[i + 1] == '\n') {
			i++;
		} else if (s[i] == '=' && i + 2 < n + 0 && hexval(s[i + 1]) >= 0 &&
			   hexval(s[i + 2]) >= 0) {
			g_string_append_c(out, (char) (hexval(s[i + 1]) * 16 + hexval(s[i + 2])));
			i += 2;
		} else {
			g_assert_true(s[i] != '=');
			g_string_append_c(out, s[i]);
		}
	}
	return out;
}

static GString *
b64_decode(const char *s, gsize n)
{
	g_autofree char *copy = g_strndup(s, n);
	gsize len = 0;
	g_autofree guchar *raw = g_base64_decode(copy, &len);

	return g_string_new_len((const char *) raw, (gssize) len);
}

/* Decodes the encoded-words of an unfolded field value (RFC 2047 6.2):
 * white space between two encoded-words is dropped. */
static GString *
ew_decode(const char *v)
{
	GString *out = g_string_new(NULL);
	gboolean after_ew = FALSE;
	const char *p = v;

	while (*p != '\0') {
		const char *ws = p;
		const char *q1;
		const char *q2;
		const char *end;

		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, "=?", 2) == 0 && (q1 = strchr(p + 2, '?')) != NULL &&
		    q1[1] != '\0' && q1[2] == '?' && (end = strstr(q1 + 3, "?=")) != NULL) {
			char enc = g_ascii_toupper(q1[1]);

			if (!after_ew)
				g_string_append_len(out, ws, p - ws);
			q2 = q1 + 3;
			g_assert_cmpint(end + 2 - p, <=, 75);
			if (enc == 'B') {
				g_autoptr(GString) raw = b64_decode(q2, (gsize) (end - q2));

				g_string_append_len(out, raw->str, (gssize) raw->len);
			} else {
				g_assert_cmpint(enc, ==, 'Q');
				for (const char *c = q2; c < end; c++) {
					if (*c == '_') {
						g_string_append_c(out, ' ');
					} else if (*c == '=') {
						g_string_append_c(out, (char) (hexval(c[1]) * 16 +
									      hexval(c[2])));
						c += 2;
					} else {
						g_string_append_c(out, *c);
					}
				}
			}
			p = end + 2;
			after_ew = TRUE;
		} else {
			g_string_append_len(out, ws, p - ws);
			while (*p != '\0' && *p != ' ' && *p != '\t')
				g_string_append_c(out, *p++);
			after_ew = FALSE;
		}
	}
	return out;
}

/* The value of the first field `name` in out's header, unfolded. */
static char *
field_value(const GString *out, const char *name)
{
	gsize hl = imta_mime_header_length(out->str, out->len);
	g_autofree char *header = g_strndup(out->str, hl);
	g_autofree char *prefix = g_strdup_printf("%s:", name);
	char **lines = g_strsplit(header, "\n", -1);
	GString *value = NULL;

	for (guint i = 0; lines[i] != NULL; i++) {
		if (value != NULL) {
			if (lines[i][0] != ' ' && lines[i][0] != '\t')
				break;
			g_string_append(value, lines[i]);
		} else if (g_ascii_strncasecmp(lines[i], prefix, strlen(prefix)) == 0) {
			value = g_string_new(lines[i] + strlen(prefix));
		}
	}
	g_strfreev(lines);
	g_assert_nonnull(value);
	return g_string_free(value, FALSE);
}

/* The body that follows `marker` (the part's header ends at the next empty
 * line) up to `end` (or the end of out when NULL). */
static GString *
part_body(const GString *out, const char *marker, const char *end)
{
	const char *m = strstr(out->str, marker);
	const char *b;
	const char *e;

	g_assert_nonnull(m);
	b = strstr(m, "\n\n");
	g_assert_nonnull(b);
	b += 2;
	e = end != NULL ? strstr(b, end) : out->str + out->len;
	g_assert_nonnull(e);
	return g_string_new_len(b, e - b);
}

static guint
count_of(const char *haystack, const char *needle)
{
	guint n = 0;

	for (const char *p = strstr(haystack, needle); p != NULL; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* ------------------------------------------------------------------ */
/* Scanning */

static const struct {
	const char *data;
	gsize len;
	gboolean is_8bit;
} scan_cases[] = {
	{ "", 0, FALSE },
	{ "plain ascii text\n", 17, FALSE },
	{ "0123456789abcdef0123456789abcdef\x7f", 33, FALSE },
	{ "\x80", 1, TRUE },
	{ "0123456789abcdef0123456789abcde\xff", 32, TRUE },
	{ "01234567\xe9", 9, TRUE },
	{ "abc\0def", 7, TRUE },
	{ "0123456789\0", 11, TRUE },
	{ "\x01\x02\x1b\r\n", 5, FALSE },
};

static void
test_is_8bit(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(scan_cases); i++)
		g_assert_cmpint(imta_mime_is_8bit(scan_cases[i].data, scan_cases[i].len), ==,
				scan_cases[i].is_8bit);
}

static const char *const seven_bit_cases[] = {
	"",
	"From: a@example.com\nSubject: hello\n\nbody\n",
	"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b--\n",
	"Subject: =?UTF-8?Q?caf=C3=A9?=\n\nline with trailing space \n",
	"no header at all, a single line without end",
};

static void
test_seven_bit_is_null(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(seven_bit_cases); i++)
		g_assert_null(imta_mime_downgrade_7bit(seven_bit_cases[i],
						       strlen(seven_bit_cases[i])));
}

static const struct {
	const char *data;
	gsize header_len;
} header_cases[] = {
	{ "A: 1\nB: 2\n\nbody\n", 11 },
	{ "A: 1\n folded\n\nbody", 14 },
	{ "A: 1\r\n\r\nbody", 8 },
	{ "\nbody\n", 1 },
	{ "A: 1\nnot a field\n", 5 },
	{ " continuation first\n", 0 },
	{ "A: 1\nB: 2", 9 },
	{ "Name : obsolete space\n\nx", 23 },
	{ "", 0 },
};

static void
test_header_length(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(header_cases); i++)
		g_assert_cmpuint(imta_mime_header_length(header_cases[i].data,
							 strlen(header_cases[i].data)),
				 ==, header_cases[i].header_len);
}

/* ------------------------------------------------------------------ */
/* Whole messages, exact output */

typedef struct {
	const char *in;
	gssize in_len;
	const char *out;
} ExactCase;

static void
run_exact(const ExactCase *cases, gsize n)
{
	for (gsize i = 0; i < n; i++) {
		g_autoptr(GString) out = downgrade(cases[i].in, cases[i].in_len);

		g_assert_cmpstr(out->str, ==, cases[i].out);
	}
}

#define ADDED_QP_UNKNOWN \
	"MIME-Version: 1.0\nContent-Type: text/plain; charset=unknown-8bit\n" \
	"Content-Transfer-Encoding: quoted-printable\n"

static const ExactCase non_mime_cases[] = {
	{ "From: a@example.com\nSubject: hi\n\nH\xe9llo\n", -1,
	  "From: a@example.com\nSubject: hi\n" ADDED_QP_UNKNOWN "\nH=E9llo\n" },
	/* Valid UTF-8 is labelled as such. */
	{ "Subject: x\n\ncaf\xc3\xa9 au lait\n", -1,
	  "Subject: x\nMIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\n"
	  "Content-Transfer-Encoding: quoted-printable\n\ncaf=C3=A9 au lait\n" },
	/* A Content-Type without MIME-Version is kept, MIME-Version added. */
	{ "Content-Type: text/plain; charset=iso-8859-1\n\n\xe9t\xe9 et hiver\n", -1,
	  "Content-Type: text/plain; charset=iso-8859-1\nMIME-Version: 1.0\n"
	  "Content-Transfer-Encoding: quoted-printable\n\n=E9t=E9 et hiver\n" },
	/* Mostly 8-bit text goes to base64: quoted-printable would triple it. */
	{ "Subject: x\n\n\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82\n", -1,
	  "Subject: x\nMIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\n"
	  "Content-Transfer-Encoding: base64\n\n0J/RgNC40LLQtdGCCg==\n" },
	/* No header at all: the first line is body. */
	{ "\xe9\n", -1, ADDED_QP_UNKNOWN "\n=E9\n" },
	/* No empty line after the header: one is added. */
	{ "Subject: x\n\xe9t\xe9\n", -1, "Subject: x\n" ADDED_QP_UNKNOWN "\n=E9t=E9\n" },
	/* An existing Content-Transfer-Encoding is replaced where it stands. */
	{ "MIME-Version: 1.0\nContent-Transfer-Encoding: 8bit\n"
	  "Content-Type: text/plain; charset=utf-8\nSubject: s\n\nna\xc3\xafve\n", -1,
	  "MIME-Version: 1.0\nContent-Transfer-Encoding: quoted-printable\n"
	  "Content-Type: text/plain; charset=utf-8\nSubject: s\n\nna=C3=AFve\n" },
	{ "MIME-Version: 1.0\nContent-Transfer-Encoding: 8bit\nContent-Transfer-Encoding: binary\n"
	  "\n\xe9t\xe9\n", -1,
	  "MIME-Version: 1.0\nContent-Transfer-Encoding: quoted-printable\n"
	  "Content-Type: text/plain; charset=unknown-8bit\n\n=E9t=E9\n" },
	/* Stray CRs are encoded, so they survive but cannot end a line. */
	{ "Subject: a\r\n\r\nl\xe9ger\r\nfin du texte\r\n", -1,
	  "Subject: a\r\n" ADDED_QP_UNKNOWN "\r\nl=E9ger=0D\nfin du texte=0D\n" },
	{ "Subject: a\n\na\rb c\xe9\n", -1, "Subject: a\n" ADDED_QP_UNKNOWN "\na=0Db c=E9\n" },
	/* NUL is not 7-bit either. */
	{ "Subject: a\n\nab\0cd\n", 18, "Subject: a\n" ADDED_QP_UNKNOWN "\nab=00cd\n" },
	/* A body without a final line end keeps none. */
	{ "Subject: a\n\nend \xe9", -1, "Subject: a\n" ADDED_QP_UNKNOWN "\nend =E9" },
	/* 8-bit only in the header: the body is copied, no MIME headers added. */
	{ "Subject: \xe9t\xe9\n\nbody\n", -1, "Subject: =?unknown-8bit?B?6XTp?=\n\nbody\n" },
	/* An 8-bit structured field of the message's own header stays. */
	{ "From: J\xfcrgen <j@example.com>\nSubject: s\n\nbody\n", -1,
	  "From: J\xfcrgen <j@example.com>\nSubject: s\n\nbody\n" },
};

static void
test_non_mime(void)
{
	run_exact(non_mime_cases, G_N_ELEMENTS(non_mime_cases));
}

#define MIXED_IN \
	"From: a@example.com\nMIME-Version: 1.0\n" \
	"Content-Type: multipart/mixed; boundary=\"=_b 1\"\n\n" \
	"This is a preamble.\n" \
	"--=_b 1\n" \
	"Content-Type: text/plain; charset=iso-8859-1\n" \
	"Content-Transfer-Encoding: 8bit\n\n" \
	"Voil\xe0 le r\xe9sum\xe9.\n\n" \
	"--=_b 1 \n" \
	"Content-Type: text/plain\n\n" \
	"seven bit   \n" \
	"=41 stays as written, line ends kept\n" \
	"--=_b 1\n" \
	"Content-Type: application/octet-stream\n" \
	"Content-Disposition: attachment; filename=data.bin\n\n" \
	"\x01\x02\xff\xfe\x80\n" \
	"--=_b 1--\n" \
	"epilogue\n"

static const ExactCase multipart_cases[] = {
	{ MIXED_IN, -1,
	  "From: a@example.com\nMIME-Version: 1.0\n"
	  "Content-Type: multipart/mixed; boundary=\"=_b 1\"\n\n"
	  "This is a preamble.\n"
	  "--=_b 1\n"
	  "Content-Type: text/plain; charset=iso-8859-1\n"
	  "Content-Transfer-Encoding: quoted-printable\n\n"
	  "Voil=E0 le r=E9sum=E9.\n\n"
	  "--=_b 1 \n"
	  "Content-Type: text/plain\n\n"
	  "seven bit   \n"
	  "=41 stays as written, line ends kept\n"
	  "--=_b 1\n"
	  "Content-Type: application/octet-stream\n"
	  "Content-Disposition: attachment; filename=data.bin\n"
	  "Content-Transfer-Encoding: base64\n\n"
	  "AQL//oA=\n"
	  "--=_b 1--\n"
	  "epilogue\n" },
	/* multipart/alternative inside multipart/mixed; the multipart's own
	 * "8bit" becomes "7bit" once its parts are converted. */
	{ "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=outer\n"
	  "Content-Transfer-Encoding: 8bit\n\n"
	  "--outer\n"
	  "Content-Type: multipart/alternative; boundary=inner\n"
	  "Content-Transfer-Encoding: 8bit\n\n"
	  "--inner\n"
	  "Content-Type: text/plain; charset=utf-8\n\n"
	  "\xc3\xa9t\xc3\xa9 comme en hiver, enfin\n"
	  "--inner\n"
	  "Content-Type: text/html; charset=utf-8\n\n"
	  "<p>ok</p>\n"
	  "--inner--\n"
	  "--outer\n"
	  "Content-Type: image/png\n\n"
	  "\x89PNG\n"
	  "--outer--\n", -1,
	  "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=outer\n"
	  "Content-Transfer-Encoding: 7bit\n\n"
	  "--outer\n"
	  "Content-Type: multipart/alternative; boundary=inner\n"
	  "Content-Transfer-Encoding: 7bit\n\n"
	  "--inner\n"
	  "Content-Type: text/plain; charset=utf-8\n"
	  "Content-Transfer-Encoding: quoted-printable\n\n"
	  "=C3=A9t=C3=A9 comme en hiver, enfin\n"
	  "--inner\n"
	  "Content-Type: text/html; charset=utf-8\n\n"
	  "<p>ok</p>\n"
	  "--inner--\n"
	  "--outer\n"
	  "Content-Type: image/png\n"
	  "Content-Transfer-Encoding: base64\n\n"
	  "iVBORw==\n"
	  "--outer--\n" },
	/* Case-insensitive names, unquoted boundary with a comment, folded
	 * Content-Type, a part without a header, a 7-bit part with a header. */
	{ "mime-version: 1.0\ncontent-type: Multipart/Mixed;\n\tBOUNDARY=xyz (comment)\n\n"
	  "--xyz\n\n\xe9\n--xyz\n\nplain\n--xyz--", -1,
	  "mime-version: 1.0\ncontent-type: Multipart/Mixed;\n\tBOUNDARY=xyz (comment)\n\n"
	  "--xyz\nContent-Type: text/plain; charset=unknown-8bit\n"
	  "Content-Transfer-Encoding: quoted-printable\n\n=E9\n--xyz\n\nplain\n--xyz--" },
	/* multipart/digest: a part without Content-Type is message/rfc822. */
	{ "MIME-Version: 1.0\nContent-Type: multipart/digest; boundary=d\n\n"
	  "--d\n\nSubject: caf\xc3\xa9\n\nbody\n--d--\n", -1,
	  "MIME-Version: 1.0\nContent-Type: multipart/digest; boundary=d\n\n"
	  "--d\n\nSubject: =?UTF-8?B?Y2Fmw6k=?=\n\nbody\n--d--\n" },
	/* 8-bit preamble and epilogue are escaped, never left 8-bit. */
	{ "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
	  "pr\xe9\n--b\n\nx\xe9\n--b--\n\xe9pi\n", -1,
	  "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
	  "pr=E9\n--b\nContent-Type: text/plain; charset=unknown-8bit\n"
	  "Content-Transfer-Encoding: quoted-printable\n\nx=E9\n--b--\n=E9pi\n" },
};

static void
test_multipart(void)
{
	run_exact(multipart_cases, G_N_ELEMENTS(multipart_cases));
}

/* The 7-bit sibling is the same bytes, and each re-encoded part decodes
 * back to what it was. */
static void
test_multipart_decodes(void)
{
	g_autoptr(GString) out = downgrade(MIXED_IN, -1);
	g_autoptr(GString) text = part_body(out, "quoted-printable", "\n--=_b 1 \n");
	g_autoptr(GString) bin = part_body(out, "Content-Transfer-Encoding: base64", "\n--=_b 1--");
	g_autoptr(GString) text_raw = qp_decode(text->str, text->len);
	g_autoptr(GString) bin_raw = b64_decode(bin->str, bin->len);
	const char *sibling = "\n--=_b 1 \nContent-Type: text/plain\n\nseven bit   \n"
			      "=41 stays as written, line ends kept\n--=_b 1\n";

	g_assert_cmpstr(text_raw->str, ==, "Voil\xe0 le r\xe9sum\xe9.\n");
	g_assert_cmpmem(bin_raw->str, bin_raw->len, "\x01\x02\xff\xfe\x80", 5);
	g_assert_nonnull(strstr(MIXED_IN, sibling));
	g_assert_nonnull(strstr(out->str, sibling));
}

static const ExactCase message_cases[] = {
	/* The enclosed message's header and body are converted too; the
	 * message/rfc822 part's "8bit" becomes "7bit". */
	{ "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
	  "--b\n\nsee attached\n"
	  "--b\nContent-Type: message/rfc822\nContent-Transfer-Encoding: 8bit\n\n"
	  "From: x@example.org\nSubject: r\xe9union\n\nOrdre du jour: caf\xe9\n"
	  "--b--\n", -1,
	  "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
	  "--b\n\nsee attached\n"
	  "--b\nContent-Type: message/rfc822\nContent-Transfer-Encoding: 7bit\n\n"
	  "From: x@example.org\nSubject: =?unknown-8bit?Q?r=E9union?=\n"
	  "MIME-Version: 1.0\nContent-Type: text/plain; charset=unknown-8bit\n"
	  "Content-Transfer-Encoding: quoted-printable\n\nOrdre du jour: caf=E9\n"
	  "--b--\n" },
	/* A structured field of the enclosed header with 8-bit bytes cannot be
	 * encoded without changing it: the message goes as an opaque part. */
	{ "MIME-Version: 1.0\nContent-Type: message/rfc822\n\n"
	  "From: J\xfcrgen <j@example.com>\n\nhi\n", -1,
	  "MIME-Version: 1.0\nContent-Type: application/octet-stream\n"
	  "Content-Transfer-Encoding: base64\n\n"
	  "RnJvbTogSvxyZ2VuIDxqQGV4YW1wbGUuY29tPgoKaGkK\n" },
	/* message/global may be base64-encoded (RFC 6532 3.5): a leaf. */
	{ "MIME-Version: 1.0\nContent-Type: message/global\n\nFrom: \xc3\xa9@x\n\n", -1,
	  "MIME-Version: 1.0\nContent-Type: message/global\n"
	  "Content-Transfer-Encoding: base64\n\nRnJvbTogw6lAeAoK\n" },
};

static void
test_message_rfc822(void)
{
	run_exact(message_cases, G_N_ELEMENTS(message_cases));
}

/* ------------------------------------------------------------------ */
/* Quoted-printable */

#define QP_HEAD "MIME-Version: 1.0\nContent-Type: text/plain; charset=iso-8859-1\n\n"
#define QP_OUT_HEAD "MIME-Version: 1.0\nContent-Type: text/plain; charset=iso-8859-1\n" \
		    "Content-Transfer-Encoding: quoted-printable\n\n"
/* Mostly 7-bit context, so each row stays quoted-printable. */
#define QP_CONTEXT "Une ligne ordinaire, en fran\xe7" "ais, pour le contexte.\n"
#define QP_CONTEXT_OUT "Une ligne ordinaire, en fran=E7ais, pour le contexte.\n"
#define A10 "aaaaaaaaaa"
#define A70 A10 A10 A10 A10 A10 A10 A10

static const struct {
	const char *body;
	gssize len;
	const char *encoded;
} qp_cases[] = {
	{ "\xe9=\n", -1, "=E9=3D\n" },
	{ "\xe9 trailing \n", -1, "=E9 trailing=20\n" },
	{ "\xe9 tab\t\n", -1, "=E9 tab=09\n" },
	{ "\xe9 two  \n", -1, "=E9 two =20\n" },
	{ "\xe9 end ", -1, "=E9 end=20" },
	/* Exactly 76 characters: no soft break. */
	{ "\xe9" A70 "aaa\n", -1, "=E9" A70 "aaa\n" },
	{ "\xe9" A70 "aaa", -1, "=E9" A70 "aaa" },
	/* 77: a soft break after 75 characters, the '=' making 76. */
	{ "\xe9" A70 "aaaa\n", -1, "=E9" A70 "aa=\naa\n" },
	/* An escape is never split by a soft break. */
	{ "\xe9" A70 "a\xe9\xe9" "bbbb\n", -1, "=E9" A70 "a=\n=E9=E9bbbb\n" },
	/* Trailing white space at the break point stays before the '='. */
	{ "\xe9" A70 "aa bbb\n", -1, "=E9" A70 "aa=\n bbb\n" },
	{ "\xe9\nFrom me\n", -1, "=E9\n=46rom me\n" },
	{ "\xe9\n.\n", -1, "=E9\n.\n" },
	{ "a\0\xe9\n", 4, "a=00=E9\n" },
	{ "\xe9\n\n\n", -1, "=E9\n\n\n" },
};

static void
test_qp(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(qp_cases); i++) {
		gsize blen = qp_cases[i].len < 0 ? strlen(qp_cases[i].body) : (gsize) qp_cases[i].len;
		g_autoptr(GString) in = g_string_new(QP_HEAD QP_CONTEXT);
		g_autoptr(GString) expected = g_string_new(QP_OUT_HEAD QP_CONTEXT_OUT);
		g_autoptr(GString) raw = g_string_new(QP_CONTEXT);
		g_autoptr(GString) out = NULL;
		g_autoptr(GString) body = NULL;
		g_autoptr(GString) decoded = NULL;

		g_string_append_len(in, qp_cases[i].body, (gssize) blen);
		g_string_append_len(raw, qp_cases[i].body, (gssize) blen);
		g_string_append(expected, qp_cases[i].encoded);
		out = downgrade(in->str, (gssize) in->len);
		g_assert_cmpstr(out->str, ==, expected->str);
		body = part_body(out, "quoted-printable", NULL);
		assert_lines_within(body->str, body->len, 76);
		decoded = qp_decode(body->str, body->len);
		g_assert_cmpmem(decoded->str, decoded->len, raw->str, raw->len);
	}
}

/* A long line with many 8-bit bytes: 76-column lines, decodes back. */
static void
test_qp_long_line(void)
{
	g_autoptr(GString) in = g_string_new(QP_HEAD);
	g_autoptr(GString) raw = g_string_new(NULL);
	g_autoptr(GString) out = NULL;
	g_autoptr(GString) body = NULL;
	g_autoptr(GString) decoded = NULL;

	for (guint i = 0; i < 40; i++)
		g_string_append(raw, "d\xe9j\xe0 vu, encore une fois ");
	g_string_append_c(raw, '\n');
	g_string_append_len(in, raw->str, (gssize) raw->len);
	out = downgrade(in->str, (gssize) in->len);
	body = part_body(out, "quoted-printable", NULL);
	assert_lines_within(body->str, body->len, 76);
	g_assert_cmpuint(body->len, >, raw->len);
	decoded = qp_decode(body->str, body->len);
	g_assert_cmpmem(decoded->str, decoded->len, raw->str, raw->len);
}

/* A line of nothing but 8-bit bytes is smaller in base64, still text. */
static void
test_qp_all_8bit_line(void)
{
	g_autoptr(GString) in = g_string_new(QP_HEAD);
	g_autoptr(GString) raw = g_string_new(NULL);
	g_autoptr(GString) out = NULL;
	g_autoptr(GString) body = NULL;
	g_autoptr(GString) decoded = NULL;

	for (guint i = 0; i < 300; i++)
		g_string_append_c(raw, (char) (0x80 + i % 128));
	g_string_append_c(raw, '\n');
	g_string_append_len(in, raw->str, (gssize) raw->len);
	out = downgrade(in->str, (gssize) in->len);
	g_assert_nonnull(strstr(out->str, "charset=iso-8859-1\nContent-Transfer-Encoding: base64\n\n"));
	body = part_body(out, "base64", NULL);
	assert_lines_within(body->str, body->len, 76);
	decoded = b64_decode(body->str, body->len);
	g_assert_cmpmem(decoded->str, decoded->len, raw->str, raw->len);
}

/* ------------------------------------------------------------------ */
/* Base64 */

static void
test_base64_round_trip(void)
{
	static const gsize sizes[] = { 1, 2, 3, 56, 57, 58, 114, 256, 1000 };

	for (guint s = 0; s < G_N_ELEMENTS(sizes); s++) {
		g_autoptr(GString) in = g_string_new("MIME-Version: 1.0\n"
						     "Content-Type: application/octet-stream\n\n");
		g_autoptr(GString) raw = g_string_new(NULL);
		g_autoptr(GString) out = NULL;
		g_autoptr(GString) body = NULL;
		g_autoptr(GString) decoded = NULL;

		for (gsize i = 0; i < sizes[s]; i++)
			g_string_append_c(raw, (char) (255 - i % 256));
		g_string_append_len(in, raw->str, (gssize) raw->len);
		out = downgrade(in->str, (gssize) in->len);
		body = part_body(out, "Content-Transfer-Encoding: base64", NULL);
		assert_lines_within(body->str, body->len, 76);
		/* Full lines are exactly 76 characters. */
		if (sizes[s] > 57)
			g_assert_cmpint(strchr(body->str, '\n') - body->str, ==, 76);
		/* No line end was added after the last line: there was none. */
		g_assert_cmpint(body->str[body->len - 1], !=, '\n');
		decoded = b64_decode(body->str, body->len);
		g_assert_cmpmem(decoded->str, decoded->len, raw->str, raw->len);
	}
}

/* ------------------------------------------------------------------ */
/* Header fields */

static const struct {
	const char *in;		/* header fields before "\n\nbody\n" */
	const char *out;
} field_cases[] = {
	{ "Subject: Re: r\xe9union demain", "Subject: Re: =?unknown-8bit?Q?r=E9union?= demain" },
	{ "Subject: caf\xc3\xa9", "Subject: =?UTF-8?B?Y2Fmw6k=?=" },
	/* Adjacent 8-bit words share one encoded-word with the space inside;
	 * Q or B, whichever is shorter. */
	{ "Subject: l'\xe9t\xe9 \xe0 Paris", "Subject: =?unknown-8bit?B?bCfpdOkg4A==?= Paris" },
	/* A 7-bit word that looks like an encoded-word is encoded with its
	 * neighbour rather than decoded by the reader. */
	{ "Subject: \xe9 =?x?Q?y?=", "Subject: =?unknown-8bit?B?6SA9P3g/UT95Pz0=?=" },
	{ "X-Note: na\xefve", "X-Note: =?unknown-8bit?Q?na=EFve?=" },
	{ "Comments: \xe9", "Comments: =?unknown-8bit?Q?=E9?=" },
	/* The part's charset labels text that is not UTF-8. */
	{ "Content-Type: text/plain; charset=iso-8859-1\nSubject: \xe9t\xe9",
	  "Content-Type: text/plain; charset=iso-8859-1\nSubject: =?iso-8859-1?B?6XTp?=" },
	/* ...but not when it says us-ascii. */
	{ "Content-Type: text/plain; charset=us-ascii\nSubject: \xe9t\xe9",
	  "Content-Type: text/plain; charset=us-ascii\nSubject: =?unknown-8bit?B?6XTp?=" },
	/* Folded input: the fold becomes a plain space in the value. */
	{ "Subject: un\n\tdeux \xe9", "Subject: un\tdeux =?unknown-8bit?Q?=E9?=" },
	/* Structured fields are left as they are. */
	{ "To: \"Andr\xe9\" <a@example.com>", "To: \"Andr\xe9\" <a@example.com>" },
	/* 8-bit parameter values become RFC 2231 values. */
	{ "Content-Type: application/pdf; name=\"r\xc3\xa9sum\xc3\xa9.pdf\"",
	  "Content-Type: application/pdf; name*=UTF-8''r%C3%A9sum%C3%A9.pdf" },
	{ "Content-Disposition: attachment; filename=\xe9t\xe9.txt; size=10",
	  "Content-Disposition: attachment; filename*=unknown-8bit''%E9t%E9.txt;\n\tsize=10" },
};

static void
test_header_fields(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(field_cases); i++) {
		g_autofree char *in = g_strdup_printf("%s\n\nbody\n", field_cases[i].in);
		g_autofree char *expected = g_strdup_printf("%s\n\nbody\n", field_cases[i].out);
		g_autoptr(GString) out = downgrade(in, -1);

		g_assert_cmpstr(out->str, ==, expected);
	}
}

/* Long subjects: several encoded-words, none over 75 characters, no line
 * over 76, whole UTF-8 characters in each, and they decode back. */
static void
test_header_long_subject(void)
{
	static const char *const subjects[] = {
		"\xc3\xa9t\xc3\xa9 \xc3\xa0 la plage avec les enfants, puis d\xc3\xa9jeuner au "
		"caf\xc3\xa9 du port et retour \xc3\xa0 la maison en fin d'apr\xc3\xa8s-midi",
		"\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xd0\xbc\xd0\xb8\xd1\x80 "
		"\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xd0\xbc\xd0\xb8\xd1\x80 "
		"\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xd0\xbc\xd0\xb8\xd1\x80 "
		"\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xd0\xbc\xd0\xb8\xd1\x80",
		"\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9"
		"\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9"
		"\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9",
		"plain words first, and a-very-long-7-bit-word-that-does-not-fit-anywhere-at-all-"
		"really then \xe9",
	};

	for (guint i = 0; i < G_N_ELEMENTS(subjects); i++) {
		g_autofree char *in = g_strdup_printf("Subject: %s\n\nbody\n", subjects[i]);
		g_autoptr(GString) out = downgrade(in, -1);
		gsize hl = imta_mime_header_length(out->str, out->len);
		g_autofree char *value = field_value(out, "Subject");
		g_autoptr(GString) decoded = ew_decode(value);

		g_assert_false(imta_mime_is_8bit(out->str, hl));
		if (i != 3)
			assert_lines_within(out->str, hl, 76);
		g_assert_cmpstr(decoded->str + strspn(decoded->str, " "), ==, subjects[i]);
		g_assert_true(g_str_has_suffix(out->str, "\n\nbody\n"));
		if (i == 1) {
			/* Each encoded-word holds whole UTF-8 characters. */
			for (const char *w = strstr(value, "=?UTF-8?"); w != NULL;
			     w = strstr(w + 1, "=?UTF-8?")) {
				g_autofree char *one = g_strndup(w, strstr(w, "?=") + 2 - w);
				g_autoptr(GString) text = ew_decode(one);

				g_assert_true(g_utf8_validate_len(text->str, text->len, NULL));
			}
		}
	}
}

/* A long 8-bit file name is split into RFC 2231 continuations. */
static void
test_header_param_continuations(void)
{
	g_autoptr(GString) name = g_string_new(NULL);
	g_autoptr(GString) in = g_string_new("MIME-Version: 1.0\n"
					     "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
					     "Content-Type: text/plain\n"
					     "Content-Disposition: attachment; filename=\"");
	g_autoptr(GString) out = NULL;
	g_autoptr(GString) joined = g_string_new(NULL);
	g_autofree char *unescaped = NULL;
	const char *p;

	for (guint i = 0; i < 12; i++)
		g_string_append(name, "r\xc3\xa9sum\xc3\xa9-");
	g_string_append(in, name->str);
	g_string_append(in, "\"\n\nx\n--b--\n");
	out = downgrade(in->str, (gssize) in->len);
	assert_lines_within(out->str, out->len, 76);
	g_assert_nonnull(strstr(out->str, "filename*0*=UTF-8''r%C3%A9sum%C3%A9-"));
	/* Join the segments in order and undo the %-escapes. */
	for (guint i = 0;; i++) {
		g_autofree char *key = g_strdup_printf("filename*%u*=", i);
		const char *end;

		p = strstr(out->str, key);
		if (p == NULL)
			break;
		p += strlen(key);
		if (i == 0)
			p += strlen("UTF-8''");
		end = p + strcspn(p, ";\n");
		g_string_append_len(joined, p, end - p);
	}
	g_assert_cmpuint(joined->len, >, 60);
	unescaped = g_uri_unescape_string(joined->str, NULL);
	g_assert_cmpstr(unescaped, ==, name->str);
}

/* A parameter name too long for useful continuations keeps its value in
 * one piece, so the output stays proportional to the input. */
static void
test_header_param_long_name(void)
{
	const char *name = "x-parameter-name-longer-than-thirty-two";
	g_autoptr(GString) in = g_string_new(NULL);
	g_autoptr(GString) expected = g_string_new(NULL);
	g_autoptr(GString) out = NULL;

	g_string_append_printf(in, "Content-Type: text/plain; %s=", name);
	g_string_append_printf(expected, "Content-Type: text/plain;\n\t%s*=unknown-8bit''", name);
	for (guint i = 0; i < 30; i++) {
		g_string_append_c(in, '\xe9');
		g_string_append(expected, "%E9");
	}
	g_string_append(in, "\n\nbody\n");
	g_string_append(expected, "\n\nbody\n");
	out = downgrade(in->str, (gssize) in->len);
	g_assert_cmpstr(out->str, ==, expected->str);
}

/* ------------------------------------------------------------------ */
/* Encoded bodies that were already declared encoded, and unknown ones */

static const ExactCase declared_cases[] = {
	/* Declared quoted-printable with raw 8-bit bytes: only those are
	 * escaped, existing escapes and the header are left alone. */
	{ "MIME-Version: 1.0\nContent-Transfer-Encoding: quoted-printable\n\n"
	  "caf=C3=A9 et th\xe9=\nsuite\n", -1,
	  "MIME-Version: 1.0\nContent-Transfer-Encoding: quoted-printable\n\n"
	  "caf=C3=A9 et th=E9=\nsuite\n" },
	/* Declared base64 with stray 8-bit bytes: decoders skip them anyway. */
	{ "MIME-Version: 1.0\nContent-Type: image/gif\nContent-Transfer-Encoding: Base64\n\n"
	  "R0lG\xff\x80ODlh\n", -1,
	  "MIME-Version: 1.0\nContent-Type: image/gif\nContent-Transfer-Encoding: Base64\n\n"
	  "R0lGODlh\n" },
	/* An encoding we cannot undo: opaque octets (RFC 2045 6.4). */
	{ "MIME-Version: 1.0\nContent-Type: text/plain\nContent-Transfer-Encoding: x-uue\n\n"
	  "\xe9\n", -1,
	  "MIME-Version: 1.0\nContent-Type: application/octet-stream\n"
	  "Content-Transfer-Encoding: base64\n\n6Qo=\n" },
};

static void
test_declared_encodings(void)
{
	run_exact(declared_cases, G_N_ELEMENTS(declared_cases));
}

/* A declared quoted-printable line of 8-bit bytes gets soft breaks. */
static void
test_declared_qp_long_line(void)
{
	g_autoptr(GString) in = g_string_new("MIME-Version: 1.0\n"
					     "Content-Transfer-Encoding: quoted-printable\n\n");
	g_autoptr(GString) raw = g_string_new(NULL);
	g_autoptr(GString) out = NULL;
	g_autoptr(GString) body = NULL;
	g_autoptr(GString) decoded = NULL;

	for (guint i = 0; i < 100; i++)
		g_string_append(raw, i % 10 == 0 ? "=3D" : "\xe9");
	g_string_append_len(in, raw->str, (gssize) raw->len);
	out = downgrade(in->str, (gssize) in->len);
	body = part_body(out, "quoted-printable", NULL);
	assert_lines_within(body->str, body->len, 76);
	decoded = qp_decode(body->str, body->len);
	g_assert_cmpuint(decoded->len, ==, 100);
	for (guint i = 0; i < 100; i++)
		g_assert_cmpint((guchar) decoded->str[i], ==, i % 10 == 0 ? '=' : 0xe9);
}

/* ------------------------------------------------------------------ */
/* Bounds and broken structure */

static const ExactCase broken_cases[] = {
	/* The closing delimiter never comes: the last part is one leaf. */
	{ "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
	  "--b\n\nfine\n--b\nContent-Type: multipart/alternative; boundary=c\n\n"
	  "--c\n\xe9\n--b-- not a close\n", -1,
	  "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
	  "--b\n\nfine\n--b\nContent-Type: application/octet-stream\n"
	  "Content-Transfer-Encoding: base64\n\n"
	  "LS1jCukKLS1iLS0gbm90IGEgY2xvc2UK\n" },
	{ "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
	  "--b\nContent-Type: text/plain\n\nd\xe9" "but sans fin\n", -1,
	  "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
	  "--b\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n"
	  "d=E9but sans fin\n" },
	/* No boundary parameter: the body is opaque. */
	{ "MIME-Version: 1.0\nContent-Type: multipart/mixed\n\n--b\n\n\xe9\n--b--\n", -1,
	  "MIME-Version: 1.0\nContent-Type: application/octet-stream\n"
	  "Content-Transfer-Encoding: base64\n\nLS1iCgrpCi0tYi0tCg==\n" },
	/* A boundary that never appears. */
	{ "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=zz\n\n\xe9\n", -1,
	  "MIME-Version: 1.0\nContent-Type: application/octet-stream\n"
	  "Content-Transfer-Encoding: base64\n\n6Qo=\n" },
	/* An unparseable Content-Type is text/plain (RFC 2045 5.2). */
	{ "MIME-Version: 1.0\nContent-Type: ;;;\n\n\xe9\n", -1,
	  "MIME-Version: 1.0\nContent-Type: ;;;\nContent-Transfer-Encoding: quoted-printable\n\n"
	  "=E9\n" },
	/* A boundary with 8-bit bytes cannot delimit a 7-bit body. */
	{ "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\xe9\n\n--\xe9\n\nx\n", -1,
	  "MIME-Version: 1.0\nContent-Type: application/octet-stream\n"
	  "Content-Transfer-Encoding: base64\n\nLS3pCgp4Cg==\n" },
};

static void
test_broken(void)
{
	run_exact(broken_cases, G_N_ELEMENTS(broken_cases));
}

/* 25 nested multiparts: the walk stops at IMTA_MIME_MAX_DEPTH and sends
 * the rest as one opaque part, still 7-bit. */
static void
test_depth_limit(void)
{
	g_autoptr(GString) in = g_string_new("MIME-Version: 1.0\n");
	g_autoptr(GString) out = NULL;
	const char *opaque;
	guint levels = 0;

	for (guint i = 0; i < 25; i++)
		g_string_append_printf(in, "Content-Type: multipart/mixed; boundary=b%u\n\n--b%u\n",
				       i, i);
	g_string_append(in, "Content-Type: text/plain\n\n\xe9t\xe9\n");
	for (guint i = 25; i-- > 0;)
		g_string_append_printf(in, "--b%u--\n", i);
	out = downgrade(in->str, (gssize) in->len);
	opaque = strstr(out->str, "Content-Type: application/octet-stream\n"
				  "Content-Transfer-Encoding: base64\n\n");
	g_assert_nonnull(opaque);
	g_assert_cmpuint(count_of(out->str, "application/octet-stream"), ==, 1);
	for (const char *p = out->str; p < opaque; p++)
		if (strncmp(p, "Content-Type: multipart/mixed", 29) == 0)
			levels++;
	g_assert_cmpuint(levels, ==, IMTA_MIME_MAX_DEPTH);
}

/* Nested message/rfc822 parts are bounded the same way. */
static void
test_depth_limit_messages(void)
{
	g_autoptr(GString) in = g_string_new(NULL);
	g_autoptr(GString) out = NULL;

	for (guint i = 0; i < 40; i++)
		g_string_append(in, "MIME-Version: 1.0\nContent-Type: message/rfc822\n\n");
	g_string_append(in, "Subject: x\n\n\xe9\n");
	out = downgrade(in->str, (gssize) in->len);
	g_assert_nonnull(strstr(out->str, "application/octet-stream"));
}

/* More than IMTA_MIME_MAX_PARTS parts: the rest is one opaque part. */
static void
test_parts_limit(void)
{
	g_autoptr(GString) in = g_string_new("MIME-Version: 1.0\n"
					     "Content-Type: multipart/mixed; boundary=b\n\n");
	g_autoptr(GString) out = NULL;
	guint qp = 0;

	for (guint i = 0; i < IMTA_MIME_MAX_PARTS + 100; i++)
		g_string_append(in, "--b\nContent-Type: text/plain\n\n\xe9\n");
	g_string_append(in, "--b--\n");
	out = downgrade(in->str, (gssize) in->len);
	qp = count_of(out->str, "quoted-printable");
	/* The top entity counts as one part. */
	g_assert_cmpuint(qp, ==, IMTA_MIME_MAX_PARTS);
	/* Past the limit, the delimiters are text of the one opaque part. */
	g_assert_true(g_str_has_suffix(out->str, "=E9\n--b\nContent-Type: text/plain\n\n"
						 "=E9\n--b--\n"));
	g_assert_nonnull(strstr(out->str, "--b\nContent-Type: text/plain\n"
					  "Content-Transfer-Encoding: quoted-printable\n\n"
					  "=E9\n--b\nContent-Type: text/plain\n\n"
					  "=E9\n--b\n"));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mime/scan/is-8bit", test_is_8bit);
	g_test_add_func("/mime/scan/seven-bit-is-null", test_seven_bit_is_null);
	g_test_add_func("/mime/scan/header-length", test_header_length);
	g_test_add_func("/mime/downgrade/non-mime", test_non_mime);
	g_test_add_func("/mime/downgrade/multipart", test_multipart);
	g_test_add_func("/mime/downgrade/multipart-decodes", test_multipart_decodes);
	g_test_add_func("/mime/downgrade/message-rfc822", test_message_rfc822);
	g_test_add_func("/mime/qp/details", test_qp);
	g_test_add_func("/mime/qp/long-line", test_qp_long_line);
	g_test_add_func("/mime/qp/all-8bit-line", test_qp_all_8bit_line);
	g_test_add_func("/mime/base64/round-trip", test_base64_round_trip);
	g_test_add_func("/mime/header/fields", test_header_fields);
	g_test_add_func("/mime/header/long-subject", test_header_long_subject);
	g_test_add_func("/mime/header/param-continuations", test_header_param_continuations);
	g_test_add_func("/mime/header/param-long-name", test_header_param_long_name);
	g_test_add_func("/mime/declared/exact", test_declared_encodings);
	g_test_add_func("/mime/declared/qp-long-line", test_declared_qp_long_line);
	g_test_add_func("/mime/broken/exact", test_broken);
	g_test_add_func("/mime/bounds/depth", test_depth_limit);
	g_test_add_func("/mime/bounds/depth-messages", test_depth_limit_messages);
	g_test_add_func("/mime/bounds/parts", test_parts_limit);
	return g_test_run();
}
