/*
 * downgrade.c - 8-bit to 7-bit conversion of a queued message for a next
 * hop that does not offer 8BITMIME (RFC 6152 section 3).  One walk over the
 * MIME structure (RFC 2045/2046): parts that are 7-bit already are copied
 * byte for byte, 8-bit leaf bodies become quoted-printable or base64, 8-bit
 * text in header fields becomes RFC 2047 encoded-words or RFC 2231
 * parameters.  Nesting and the number of parts are bounded; broken
 * structure degrades to one opaque part, never to a failure.
 */
#include "config.h"

#include <string.h>

#include <glib.h>

#include <imta/mime.h>

#include "mime_private.h"

/* RFC 2045 6.7 (5) and RFC 2047 section 2: encoded lines stay within 76. */
#define MIME_LINE_MAX 76
#define MIME_EW_MAX 75
/* Longer charset names are not trusted into an encoded-word. */
#define MIME_CHARSET_MAX 40
/* RFC 2046 allows 70; leave room for mailers that exceed it. */
#define MIME_BOUNDARY_MAX 200
/* RFC 2231 continuation segments are at least this long. */
#define MIME_PARAM_SEGMENT_MIN 16

typedef enum {
	MIME_KIND_TOP,		/* the message itself */
	MIME_KIND_MESSAGE,	/* the body of a message/rfc822 part */
	MIME_KIND_PART,		/* a body part of a multipart */
} MimeKind;

typedef struct {
	MimeKind kind;
	const char *charset;	/* the part's charset= parameter, or NULL */
	const char *new_cte;	/* replaces or adds Content-Transfer-Encoding */
	const char *new_ct;	/* replaces or adds Content-Type */
	gboolean add_version;	/* adds MIME-Version: 1.0 */
} MimeHeaderPlan;

typedef struct {
	GString *out;
	guint parts;
} MimeWalk;

static gboolean mime_entity(MimeWalk *walk, const char *data, gsize len, guint depth,
			    MimeKind kind, gboolean digest, gboolean opaque);

/* ------------------------------------------------------------------ */
/* Scanning */

static inline gboolean
mime_byte_is_8bit(guchar c)
{
	return c >= 0x80 || c == 0;
}

gboolean
imta_mime_is_8bit(const char *data, gsize len)
{
	const guchar *p = (const guchar *) data;
	const guint64 high = G_GUINT64_CONSTANT(0x8080808080808080);
	const guint64 ones = G_GUINT64_CONSTANT(0x0101010101010101);
	gsize i = 0;

	/* Eight bytes at a time: a high bit set, or a zero byte. */
	for (; i + 8 <= len; i += 8) {
		guint64 w;

		memcpy(&w, p + i, sizeof w);
		if ((w & high) != 0 || ((w - ones) & ~w & high) != 0)
			return TRUE;
	}
	for (; i < len; i++) {
		if (mime_byte_is_8bit(p[i]))
			return TRUE;
	}
	return FALSE;
}

gsize
mime_line_end(const char *data, gsize len, gsize pos)
{
	const char *nl = memchr(data + pos, '\n', len - pos);

	return nl != NULL ? (gsize) (nl - data) + 1 : len;
}

/* Length of a field name (printable ASCII but ':') when the line starts a
 * field, allowing the obsolete white space before the colon; 0 otherwise. */
static gsize
mime_field_name_len(const char *line, gsize len)
{
	gsize n = 0;
	gsize i;

	while (n < len && (guchar) line[n] > 32 && (guchar) line[n] < 127 && line[n] != ':')
		n++;
	if (n == 0)
		return 0;
	for (i = n; i < len && (line[i] == ' ' || line[i] == '\t'); i++)
		;
	return i < len && line[i] == ':' ? n : 0;
}

void
mime_header_parse(const char *data, gsize len, MimeHeader *h)
{
	gsize pos = 0;

	h->fields = g_array_new(FALSE, FALSE, sizeof(MimeField));
	while (pos < len) {
		gsize end = mime_line_end(data, len, pos);
		gsize content = end - pos;
		MimeField field;

		if (content > 0 && data[end - 1] == '\n')
			content--;
		if (content == 0 || (content == 1 && data[pos] == '\r')) {
			h->sep = pos;
			h->sep_len = end - pos;
			h->body = end;
			return;
		}
		if ((data[pos] == ' ' || data[pos] == '\t') && h->fields->len > 0) {
			MimeField *last = &g_array_index(h->fields, MimeField, h->fields->len - 1);

			last->len = end - last->start;
			pos = end;
			continue;
		}
		field.name_len = mime_field_name_len(data + pos, content);
		if (field.name_len == 0)
			break;
		field.start = pos;
		field.len = end - pos;
		g_array_append_val(h->fields, field);
		pos = end;
	}
	h->sep = pos;
	h->sep_len = 0;
	h->body = pos;
}

gsize
imta_mime_header_length(const char *data, gsize len)
{
	MimeHeader h;

	mime_header_parse(data, len, &h);
	g_array_unref(h.fields);
	return h.body;
}

gboolean
mime_field_is(const char *data, const MimeField *f, const char *name)
{
	return strlen(name) == f->name_len &&
	       g_ascii_strncasecmp(data + f->start, name, f->name_len) == 0;
}

const MimeField *
mime_header_find(const char *data, const MimeHeader *h, const char *name)
{
	for (guint i = 0; i < h->fields->len; i++) {
		const MimeField *f = &g_array_index(h->fields, MimeField, i);

		if (mime_field_is(data, f, name))
			return f;
	}
	return NULL;
}

/* The field body after the colon, unfolded: line ends removed, the white
 * space that followed them kept.  Bytes (NUL included) are kept as they are. */
GString *
mime_field_value(const char *data, const MimeField *f)
{
	const char *p = data + f->start;
	const char *colon = memchr(p, ':', f->len);
	GString *value = g_string_new(NULL);
	gsize i = (gsize) (colon - p) + 1;

	for (; i < f->len; i++) {
		if (p[i] == '\n')
			continue;
		if (p[i] == '\r' && i + 1 < f->len && p[i + 1] == '\n')
			continue;
		g_string_append_c(value, p[i]);
	}
	return value;
}

/* ------------------------------------------------------------------ */
/* Structured field bodies: Content-Type, Content-Disposition,
 * Content-Transfer-Encoding (RFC 2045 section 5.1) */

static void
mime_param_free(gpointer data)
{
	MimeParam *param = data;

	g_free(param->name);
	g_string_free(param->value, TRUE);
	g_free(param);
}

void
mime_params_clear(MimeParams *mp)
{
	g_clear_pointer(&mp->head, g_free);
	g_clear_pointer(&mp->params, g_ptr_array_unref);
}

static gboolean
mime_is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Skips white space and (nested) comments. */
static gsize
mime_skip_cfws(const char *v, gsize n, gsize p)
{
	while (p < n) {
		if (mime_is_ws(v[p])) {
			p++;
		} else if (v[p] == '(') {
			guint level = 0;

			for (; p < n; p++) {
				if (v[p] == '\\' && p + 1 < n)
					p++;
				else if (v[p] == '(')
					level++;
				else if (v[p] == ')' && --level == 0) {
					p++;
					break;
				}
			}
		} else {
			break;
		}
	}
	return p;
}

static gsize
mime_quoted(const char *v, gsize n, gsize p, GString *into)
{
	for (p++; p < n && v[p] != '"'; p++) {
		if (v[p] == '\\' && p + 1 < n)
			p++;
		g_string_append_c(into, v[p]);
	}
	return p < n ? p + 1 : p;
}

static gsize
mime_skip_to_semicolon(const char *v, gsize n, gsize p)
{
	while (p < n && v[p] != ';') {
		if (v[p] == '"') {
			g_autoptr(GString) junk = g_string_new(NULL);

			p = mime_quoted(v, n, p, junk);
		} else {
			p++;
		}
	}
	return p;
}

/* "head; name=value; name="value"": lenient about what mailers put in
 * unquoted values (boundaries with '=' or '/' are common), strict only in
 * needing a head. */
gboolean
mime_params_parse(const char *v, gsize n, MimeParams *mp)
{
	GString *head = g_string_new(NULL);
	gsize p = mime_skip_cfws(v, n, 0);

	while (p < n && v[p] != ';') {
		if (v[p] == '(')
			p = mime_skip_cfws(v, n, p);
		else if (mime_is_ws(v[p]))
			p++;
		else
			g_string_append_c(head, v[p++]);
	}
	mp->head = g_string_free(head, FALSE);
	mp->params = g_ptr_array_new_with_free_func(mime_param_free);
	if (mp->head[0] == '\0')
		return FALSE;
	while (p < n) {
		gsize name_start;
		gsize name_end;
		MimeParam *param;

		p = mime_skip_cfws(v, n, p + 1);	/* past ';' */
		name_start = p;
		while (p < n && v[p] != '=' && v[p] != ';' && v[p] != '(' && !mime_is_ws(v[p]))
			p++;
		name_end = p;
		p = mime_skip_cfws(v, n, p);
		if (name_end == name_start || p >= n || v[p] != '=') {
			p = mime_skip_to_semicolon(v, n, p);
			continue;
		}
		p = mime_skip_cfws(v, n, p + 1);
		param = g_new0(MimeParam, 1);
		param->name = g_ascii_strdown(v + name_start, (gssize) (name_end - name_start));
		param->value = g_string_new(NULL);
		if (p < n && v[p] == '"') {
			p = mime_quoted(v, n, p, param->value);
		} else {
			while (p < n && v[p] != ';' && v[p] != '(' && v[p] != '"' && !mime_is_ws(v[p]))
				g_string_append_c(param->value, v[p++]);
		}
		g_ptr_array_add(mp->params, param);
		p = mime_skip_to_semicolon(v, n, mime_skip_cfws(v, n, p));
	}
	return TRUE;
}

const GString *
mime_param(const MimeParams *mp, const char *name)
{
	for (guint i = 0; mp->params != NULL && i < mp->params->len; i++) {
		const MimeParam *param = g_ptr_array_index(mp->params, i);

		if (strcmp(param->name, name) == 0)
			return param->value;
	}
	return NULL;
}

MimeCte
mime_cte_parse(const char *data, const MimeField *f)
{
	g_autoptr(GString) value = NULL;
	g_autofree char *token = NULL;

	if (f == NULL)
		return MIME_CTE_IDENTITY;
	value = mime_field_value(data, f);
	token = g_ascii_strdown(g_strstrip(value->str), -1);
	if (strcmp(token, "7bit") == 0 || strcmp(token, "8bit") == 0 ||
	    strcmp(token, "binary") == 0)
		return MIME_CTE_IDENTITY;
	if (strcmp(token, "quoted-printable") == 0)
		return MIME_CTE_QP;
	if (strcmp(token, "base64") == 0)
		return MIME_CTE_BASE64;
	return MIME_CTE_UNKNOWN;
}

static gboolean
mime_cte_is_8bit(const char *data, const MimeField *f)
{
	g_autoptr(GString) value = NULL;

	if (f == NULL)
		return FALSE;
	value = mime_field_value(data, f);
	g_strstrip(value->str);
	return g_ascii_strcasecmp(value->str, "8bit") == 0 ||
	       g_ascii_strcasecmp(value->str, "binary") == 0;
}

/* A charset label safe to put into an encoded-word or RFC 2231 value. */
gboolean
mime_charset_usable(const char *cs)
{
	gsize n = strlen(cs);

	if (n == 0 || n > MIME_CHARSET_MAX || g_ascii_strcasecmp(cs, "us-ascii") == 0)
		return FALSE;
	for (gsize i = 0; i < n; i++) {
		if (!g_ascii_isalnum(cs[i]) && strchr("!#$%&+-^_`{}~", cs[i]) == NULL)
			return FALSE;
	}
	return TRUE;
}

/* Valid UTF-8 is labelled so; anything else takes the part's charset when
 * it names one that is not contradicted, else unknown-8bit (RFC 1428). */
static const char *
mime_charset_for(const char *text, gsize len, const char *part_charset)
{
	if (g_utf8_validate_len(text, len, NULL))
		return "UTF-8";
	if (part_charset != NULL && mime_charset_usable(part_charset) &&
	    g_ascii_strcasecmp(part_charset, "utf-8") != 0)
		return part_charset;
	return "unknown-8bit";
}

/* ------------------------------------------------------------------ */
/* Header output */

static gboolean
mime_field_is_unstructured(const char *data, const MimeField *f)
{
	static const char *const names[] = {
		"subject", "comments", "content-description", "organization", "thread-topic",
	};

	if (f->name_len > 2 && g_ascii_strncasecmp(data + f->start, "x-", 2) == 0)
		return TRUE;
	for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
		if (mime_field_is(data, f, names[i]))
			return TRUE;
	}
	return FALSE;
}

static gboolean
mime_ew_safe(guchar c)
{
	/* RFC 2047 5 (3): what a Q encoded-word may hold anywhere. */
	return g_ascii_isalnum(c) || c == '!' || c == '*' || c == '+' || c == '-' || c == '/';
}

static gsize
mime_q_len(guchar c)
{
	return mime_ew_safe(c) || c == ' ' ? 1 : 3;
}

static void
mime_q_append(GString *out, const guchar *s, gsize n)
{
	for (gsize i = 0; i < n; i++) {
		if (s[i] == ' ')
			g_string_append_c(out, '_');
		else if (mime_ew_safe(s[i]))
			g_string_append_c(out, (char) s[i]);
		else
			g_string_append_printf(out, "=%02X", s[i]);
	}
}

static void
mime_b_append(GString *out, const guchar *s, gsize n)
{
	g_autofree char *b = g_base64_encode(s, n);

	g_string_append(out, b);
}

/* Length of the character at s (whole UTF-8 sequences when utf8). */
static gsize
mime_char_len(const guchar *s, gsize n, gboolean utf8)
{
	gsize k;

	if (!utf8)
		return 1;
	k = (gsize) g_utf8_skip[*s];
	return k <= n ? k : n;
}

/* Bytes of s that fit in `room` encoded characters, whole characters only. */
static gsize
mime_ew_take(const guchar *s, gsize n, gsize room, gboolean q, gboolean utf8)
{
	gsize taken = 0;
	gsize used = 0;

	while (taken < n) {
		gsize k = mime_char_len(s + taken, n - taken, utf8);
		gsize cost = 0;

		if (q) {
			for (gsize i = 0; i < k; i++)
				cost += mime_q_len(s[taken + i]);
			if (used + cost > room)
				break;
			used += cost;
		} else if ((taken + k + 2) / 3 * 4 > room) {
			break;
		}
		taken += k;
	}
	return taken;
}

/* Encoded characters an encoded-word may hold when it starts at `col`. */
static gsize
mime_ew_room(gsize col, gsize overhead)
{
	gsize room = MIME_LINE_MAX > col + overhead ? MIME_LINE_MAX - col - overhead : 0;

	return MIN(room, MIME_EW_MAX - overhead);
}

typedef struct {
	GString *out;
	gsize col;		/* columns used on the current output line */
	gsize floor;		/* col after "Name:"; no folding before a word */
} MimeFold;

/* Appends one word with the white space before it, folding when the line
 * would exceed the limit.  A fold keeps the original white space, so the
 * unfolded value stays what it was. */
static void
mime_fold_word(MimeFold *fold, const char *ws, gsize ws_len, const char *word, gsize word_len)
{
	if (fold->col > fold->floor && fold->col + ws_len + word_len > MIME_LINE_MAX) {
		g_string_append_c(fold->out, '\n');
		if (ws_len == 0) {
			ws = " ";
			ws_len = 1;
		}
		fold->col = 0;
	}
	g_string_append_len(fold->out, ws, (gssize) ws_len);
	g_string_append_len(fold->out, word, (gssize) word_len);
	fold->col += ws_len + word_len;
}

/* A run of words holding 8-bit bytes (and the spaces between them) as one
 * or more encoded-words, each within 75 characters and the line limit. */
static void
mime_fold_encoded(MimeFold *fold, const char *ws, gsize ws_len, const guchar *s, gsize n,
		  const char *part_charset)
{
	const char *cs = mime_charset_for((const char *) s, n, part_charset);
	gboolean utf8 = strcmp(cs, "UTF-8") == 0;
	gsize overhead = strlen(cs) + 7;	/* =?cs?Q?...?= */
	gsize qlen = 0;
	gboolean q;
	gsize pos = 0;

	for (gsize i = 0; i < n; i++)
		qlen += mime_q_len(s[i]);
	q = qlen <= (n + 2) / 3 * 4;
	while (pos < n) {
		/* The first word keeps the white space it had; the others of the
		 * run are separated by a space, which decoders drop. */
		const char *sp = pos == 0 ? ws : " ";
		gsize sl = pos == 0 ? ws_len : 1;
		gsize room = mime_ew_room(fold->col + sl, overhead);
		gsize take = mime_ew_take(s + pos, n - pos, room, q, utf8);
		gsize before;

		if (fold->col > fold->floor && (take == 0 || (take < n - pos && room < 16))) {
			g_string_append_c(fold->out, '\n');
			fold->col = 0;
			if (sl == 0) {
				sp = " ";
				sl = 1;
			}
			room = mime_ew_room(sl, overhead);
			take = mime_ew_take(s + pos, n - pos, room, q, utf8);
		}
		if (take == 0)
			take = mime_char_len(s + pos, n - pos, utf8);
		before = fold->out->len;
		g_string_append_len(fold->out, sp, (gssize) sl);
		g_string_append_printf(fold->out, "=?%s?%c?", cs, q ? 'Q' : 'B');
		if (q)
			mime_q_append(fold->out, s + pos, take);
		else
			mime_b_append(fold->out, s + pos, take);
		g_string_append(fold->out, "?=");
		fold->col += fold->out->len - before;
		pos += take;
	}
}

static gboolean
mime_word_needs_encoding(const char *w, gsize n)
{
	/* A 7-bit word that looks like an encoded-word would be decoded. */
	return imta_mime_is_8bit(w, n) || g_strstr_len(w, (gssize) n, "=?") != NULL ||
	       memchr(w, '\r', n) != NULL;
}

static gsize
mime_span_ws(const char *v, gsize n, gsize p)
{
	while (p < n && (v[p] == ' ' || v[p] == '\t'))
		p++;
	return p;
}

static gsize
mime_span_word(const char *v, gsize n, gsize p)
{
	while (p < n && v[p] != ' ' && v[p] != '\t')
		p++;
	return p;
}

/* An unstructured field with its 8-bit words as RFC 2047 encoded-words. */
static void
mime_field_encode_words(GString *out, const char *data, const MimeField *f,
			const char *part_charset)
{
	g_autoptr(GString) value = mime_field_value(data, f);
	const char *v = value->str;
	gsize n = value->len;
	MimeFold fold = { out, f->name_len + 1, f->name_len + 1 };
	gsize p = 0;

	g_string_append_len(out, data + f->start, (gssize) f->name_len);
	g_string_append_c(out, ':');
	while (p < n) {
		gsize ws = p;
		gsize word;
		gsize end;

		p = mime_span_ws(v, n, p);
		if (p == n) {
			g_string_append_len(out, v + ws, (gssize) (n - ws));
			break;
		}
		word = p;
		end = mime_span_word(v, n, p);
		if (!mime_word_needs_encoding(v + word, end - word)) {
			mime_fold_word(&fold, v + ws, word - ws, v + word, end - word);
			p = end;
			continue;
		}
		/* Extend over the following words that need encoding too: the white
		 * space between adjacent encoded-words is not displayed. */
		for (;;) {
			gsize next = mime_span_ws(v, n, end);
			gsize next_end = mime_span_word(v, n, next);

			if (next == n || !mime_word_needs_encoding(v + next, next_end - next))
				break;
			end = next_end;
		}
		mime_fold_encoded(&fold, v + ws, word - ws, (const guchar *) v + word, end - word,
				  part_charset);
		p = end;
	}
	g_string_append_c(out, '\n');
}

static gboolean
mime_is_token(const GString *s)
{
	if (s->len == 0)
		return FALSE;
	for (gsize i = 0; i < s->len; i++) {
		guchar c = (guchar) s->str[i];

		if (c <= 32 || c >= 127 || strchr("()<>@,;:\\\"/[]?=", c) != NULL)
			return FALSE;
	}
	return TRUE;
}

static gboolean
mime_attribute_char(guchar c)
{
	return g_ascii_isalnum(c) || (c != 0 && strchr("!#$&+-.^_`|~", c) != NULL);
}

/* The pieces "name=value" or RFC 2231 "name*0*=cs''%XX..." for one param. */
static void
mime_param_pieces(const MimeParam *param, const char *part_charset, GPtrArray *pieces)
{
	const GString *v = param->value;
	gboolean extended = g_str_has_suffix(param->name, "*");
	g_autoptr(GString) enc = NULL;
	GPtrArray *segments;
	const char *cs;
	gsize pos = 0;

	if (!imta_mime_is_8bit(v->str, v->len)) {
		GString *piece = g_string_new(param->name);

		g_string_append_c(piece, '=');
		if (mime_is_token(v)) {
			g_string_append_len(piece, v->str, (gssize) v->len);
		} else {
			g_string_append_c(piece, '"');
			for (gsize i = 0; i < v->len; i++) {
				if (v->str[i] == '"' || v->str[i] == '\\')
					g_string_append_c(piece, '\\');
				g_string_append_c(piece, v->str[i]);
			}
			g_string_append_c(piece, '"');
		}
		g_ptr_array_add(pieces, g_string_free(piece, FALSE));
		return;
	}
	enc = g_string_new(NULL);
	for (gsize i = 0; i < v->len; i++) {
		guchar c = (guchar) v->str[i];

		/* An already extended value keeps its charset'language' prefix. */
		if (mime_attribute_char(c) || (extended && c > 32 && c < 127 && c != '"'))
			g_string_append_c(enc, (char) c);
		else
			g_string_append_printf(enc, "%%%02X", c);
	}
	if (extended) {
		g_ptr_array_add(pieces, g_strdup_printf("%s=%s", param->name, enc->str));
		return;
	}
	cs = mime_charset_for(v->str, v->len, part_charset);
	segments = g_ptr_array_new_with_free_func(g_free);
	while (pos < enc->len) {
		/* Each piece gets a line of its own: tab, "name*N*=", the
		 * charset prefix on the first, the ';' after it. */
		gsize fixed = 8 + strlen(param->name) + 6 + 1 +
			      (segments->len == 0 ? strlen(cs) + 2 : 0);
		gsize take = enc->len - pos;

		/* The name is repeated on every segment: a name too long to
		 * leave room for a useful segment gets the value in one piece,
		 * which keeps the output proportional to the input. */
		if (fixed + MIME_PARAM_SEGMENT_MIN <= MIME_LINE_MAX)
			take = MIN(MIME_LINE_MAX - fixed, take);

		/* Never split a %XX escape. */
		if (pos + take < enc->len) {
			if (enc->str[pos + take - 1] == '%')
				take -= 1;
			else if (take >= 2 && enc->str[pos + take - 2] == '%')
				take -= 2;
		}
		g_ptr_array_add(segments, g_strndup(enc->str + pos, take));
		pos += take;
	}
	if (segments->len == 1) {
		g_ptr_array_add(pieces, g_strdup_printf("%s*=%s''%s", param->name, cs,
							(char *) segments->pdata[0]));
	} else {
		for (guint i = 0; i < segments->len; i++)
			g_ptr_array_add(pieces, g_strdup_printf("%s*%u*=%s%s%s", param->name, i,
								i == 0 ? cs : "",
								i == 0 ? "''" : "",
								(char *) segments->pdata[i]));
	}
	g_ptr_array_unref(segments);
}

/* Content-Type / Content-Disposition with 8-bit parameter values rewritten
 * as RFC 2231 values, which keeps their meaning.  FALSE when the field is
 * not of that shape (8-bit in the type itself). */
static gboolean
mime_field_encode_params(GString *out, const char *data, const MimeField *f,
			 const char *part_charset)
{
	g_autoptr(GString) value = mime_field_value(data, f);
	g_autoptr(GPtrArray) pieces = g_ptr_array_new_with_free_func(g_free);
	MimeParams mp = { 0 };
	gsize col;

	if (!mime_params_parse(value->str, value->len, &mp) ||
	    imta_mime_is_8bit(mp.head, strlen(mp.head))) {
		mime_params_clear(&mp);
		return FALSE;
	}
	for (guint i = 0; i < mp.params->len; i++) {
		const MimeParam *param = g_ptr_array_index(mp.params, i);

		if (imta_mime_is_8bit(param->name, strlen(param->name))) {
			mime_params_clear(&mp);
			return FALSE;
		}
		mime_param_pieces(param, part_charset, pieces);
	}
	g_string_append_len(out, data + f->start, (gssize) f->name_len);
	g_string_append_printf(out, ": %s", mp.head);
	col = f->name_len + 2 + strlen(mp.head);
	for (guint i = 0; i < pieces->len; i++) {
		const char *piece = pieces->pdata[i];
		gsize n = strlen(piece);

		if (col + 2 + n > MIME_LINE_MAX) {
			g_string_append_printf(out, ";\n\t%s", piece);
			col = 8 + n;
		} else {
			g_string_append_printf(out, "; %s", piece);
			col += 2 + n;
		}
	}
	g_string_append_c(out, '\n');
	mime_params_clear(&mp);
	return TRUE;
}

void
mime_append_line(GString *out, const char *s, gsize n)
{
	g_string_append_len(out, s, (gssize) n);
	if (n == 0 || s[n - 1] != '\n')
		g_string_append_c(out, '\n');
}

/* A header field holding 8-bit bytes.  FALSE when it has to stay 8-bit in
 * a header where that is not allowed (a message/rfc822 part's header). */
static gboolean
mime_field_write_8bit(GString *out, const char *data, const MimeField *f,
		      const MimeHeaderPlan *plan)
{
	if (mime_field_is_unstructured(data, f)) {
		mime_field_encode_words(out, data, f, plan->charset);
		return TRUE;
	}
	if ((mime_field_is(data, f, "content-type") ||
	     mime_field_is(data, f, "content-disposition")) &&
	    mime_field_encode_params(out, data, f, plan->charset))
		return TRUE;
	switch (plan->kind) {
	case MIME_KIND_PART:
		/* Only Content-* fields mean anything in a body part header
		 * (RFC 2046 5.1): readable words matter more than syntax here. */
		mime_field_encode_words(out, data, f, plan->charset);
		return TRUE;
	case MIME_KIND_MESSAGE:
		mime_append_line(out, data + f->start, f->len);
		return FALSE;
	case MIME_KIND_TOP:
	default:
		/* A structured field of the message's own header cannot be
		 * changed without changing its meaning. */
		mime_append_line(out, data + f->start, f->len);
		return TRUE;
	}
}

static gboolean
mime_header_write(GString *out, const char *data, gsize len, const MimeHeader *h,
		  const MimeHeaderPlan *plan)
{
	gboolean ok = TRUE;
	gboolean cte_done = FALSE;
	gboolean ct_done = FALSE;

	for (guint i = 0; i < h->fields->len; i++) {
		const MimeField *f = &g_array_index(h->fields, MimeField, i);

		if (plan->new_cte != NULL && mime_field_is(data, f, "content-transfer-encoding")) {
			if (!cte_done)
				g_string_append_printf(out, "Content-Transfer-Encoding: %s\n",
						       plan->new_cte);
			cte_done = TRUE;
		} else if (plan->new_ct != NULL && mime_field_is(data, f, "content-type")) {
			if (!ct_done)
				g_string_append_printf(out, "Content-Type: %s\n", plan->new_ct);
			ct_done = TRUE;
		} else if (imta_mime_is_8bit(data + f->start, f->len)) {
			ok = mime_field_write_8bit(out, data, f, plan) && ok;
		} else {
			mime_append_line(out, data + f->start, f->len);
		}
	}
	if (plan->add_version)
		g_string_append(out, "MIME-Version: 1.0\n");
	if (plan->new_ct != NULL && !ct_done)
		g_string_append_printf(out, "Content-Type: %s\n", plan->new_ct);
	if (plan->new_cte != NULL && !cte_done)
		g_string_append_printf(out, "Content-Transfer-Encoding: %s\n", plan->new_cte);
	if (h->sep_len > 0)
		g_string_append_len(out, data + h->sep, (gssize) h->sep_len);
	else if (h->body < len)
		g_string_append_c(out, '\n');
	return ok;
}

/* ------------------------------------------------------------------ */
/* Body encodings */

static gsize
mime_hex_escape(char tok[3], guchar c)
{
	static const char hex[] = "0123456789ABCDEF";

	tok[0] = '=';
	tok[1] = hex[c >> 4];
	tok[2] = hex[c & 0x0f];
	return 3;
}

gboolean
mime_qp_literal(guchar c)
{
	return c >= 33 && c <= 126 && c != '=';
}

/* Appends a token of tl characters, breaking the line first (soft break)
 * when it would not fit; the last token of a line may use column 76. */
static void
mime_qp_put(GString *out, gsize *col, const char *tok, gsize tl, gboolean at_eol)
{
	if (*col + tl > (at_eol ? MIME_LINE_MAX : MIME_LINE_MAX - 1)) {
		g_string_append(out, "=\n");
		*col = 0;
	}
	/* One byte at a time: g_string_append_c is inlined, this is the hot loop. */
	for (gsize i = 0; i < tl; i++)
		g_string_append_c(out, tok[i]);
	*col += tl;
}

/* RFC 2045 6.7: LF is a hard line break and stays; a space or tab before
 * one (or at the end) is encoded; "From " at a line start is encoded so
 * no mbox writer along the way mangles it. */
void
mime_qp_encode(GString *out, const guchar *s, gsize n)
{
	gsize col = 0;

	for (gsize i = 0; i < n; i++) {
		guchar c = s[i];
		gboolean at_eol = i + 1 == n || s[i + 1] == '\n';
		char tok[4];
		gsize tl = 1;

		if (c == '\n') {
			g_string_append_c(out, '\n');
			col = 0;
			continue;
		}
		if (c == 'F' && col == 0 && n - i >= 5 && memcmp(s + i, "From ", 5) == 0) {
			tl = mime_hex_escape(tok, c);
		} else if ((c == ' ' || c == '\t') && !at_eol) {
			tok[0] = (char) c;
		} else if (mime_qp_literal(c)) {
			tok[0] = (char) c;
		} else {
			tl = mime_hex_escape(tok, c);
		}
		mime_qp_put(out, &col, tok, tl, at_eol);
	}
}

/* A body declared quoted-printable that still holds 8-bit bytes: those
 * bytes are escaped, escapes already there are kept whole, so a decoder
 * that passed the raw bytes through gets the same result. */
static void
mime_qp_repair(GString *out, const guchar *s, gsize n)
{
	gsize col = 0;

	for (gsize i = 0; i < n; i++) {
		guchar c = s[i];
		gboolean at_eol;
		char tok[4];
		gsize tl = 1;

		if (c == '\n') {
			g_string_append_c(out, '\n');
			col = 0;
			continue;
		}
		if (c == '=' && i + 2 < n && g_ascii_isxdigit(s[i + 1]) && g_ascii_isxdigit(s[i + 2])) {
			memcpy(tok, s + i, 3);
			tl = 3;
			i += 2;
		} else if (mime_byte_is_8bit(c)) {
			tl = mime_hex_escape(tok, c);
		} else {
			tok[0] = (char) c;
		}
		at_eol = i + 1 == n || s[i + 1] == '\n';
		mime_qp_put(out, &col, tok, tl, at_eol);
	}
}

/* 76-character lines; the result ends with a line end exactly when the
 * input did, so what follows the body (a delimiter line) is unchanged. */
void
mime_base64_encode(GString *out, const guchar *s, gsize n)
{
	for (gsize i = 0; i < n; i += 57) {
		gsize chunk = MIN(57, n - i);
		char buf[96];
		gint state = 0;
		gint save = 0;
		gsize k = g_base64_encode_step(s + i, chunk, FALSE, buf, &state, &save);

		k += g_base64_encode_close(FALSE, buf + k, &state, &save);
		if (i > 0)
			g_string_append_c(out, '\n');
		g_string_append_len(out, buf, (gssize) k);
	}
	if (n > 0 && s[n - 1] == '\n')
		g_string_append_c(out, '\n');
}

/* RFC 2045 6.8: decoders ignore bytes outside the base64 alphabet, so
 * dropping the 8-bit ones changes nothing a decoder sees. */
static void
mime_base64_repair(GString *out, const guchar *s, gsize n)
{
	for (gsize i = 0; i < n; i++) {
		if (!mime_byte_is_8bit(s[i]))
			g_string_append_c(out, (char) s[i]);
	}
}

/* Preamble and epilogue are not content, but must not carry 8-bit bytes. */
static void
mime_append_escaped(GString *out, const guchar *s, gsize n)
{
	for (gsize i = 0; i < n; i++) {
		if (mime_byte_is_8bit(s[i]))
			g_string_append_printf(out, "=%02X", s[i]);
		else
			g_string_append_c(out, (char) s[i]);
	}
}

/* Quoted-printable stays readable, but once it would be longer than
 * base64 (about one escaped byte in six) base64 is used. */
gboolean
mime_text_wants_base64(const guchar *s, gsize n)
{
	gsize escaped = 0;

	for (gsize i = 0; i < n; i++) {
		if (!mime_qp_literal(s[i]) && s[i] != ' ' && s[i] != '\t' && s[i] != '\n')
			escaped++;
	}
	return n + 2 * escaped > (n + 2) / 3 * 4 + n / 57;
}

/* ------------------------------------------------------------------ */
/* The walk */

/* The next delimiter line at or after `from` (a line start), RFC 2046 5.1.1:
 * "--" boundary, "--" when it closes, then only white space. */
gboolean
mime_delim_find(const char *d, gsize len, gsize from, const char *b, gsize bl, MimeDelim *out)
{
	gsize pos = from;

	while (pos < len) {
		gsize end = mime_line_end(d, len, pos);

		if (end - pos >= bl + 2 && d[pos] == '-' && d[pos + 1] == '-' &&
		    memcmp(d + pos + 2, b, bl) == 0) {
			gsize q = pos + 2 + bl;
			gboolean close = FALSE;

			if (q + 1 < end && d[q] == '-' && d[q + 1] == '-') {
				close = TRUE;
				q += 2;
			}
			while (q < end && (d[q] == ' ' || d[q] == '\t' || d[q] == '\r'))
				q++;
			if (q == end || (q + 1 == end && d[q] == '\n')) {
				out->start = pos;
				out->end = end;
				out->close = close;
				return TRUE;
			}
		}
		pos = end;
	}
	return FALSE;
}

/* Walks a multipart body whose first delimiter is `first`.  Parts are the
 * bytes between delimiter lines, the line end before a delimiter belonging
 * to the delimiter.  An unclosed last part, or what follows the part limit,
 * is one opaque part. */
static void
mime_multipart(MimeWalk *walk, const char *d, gsize len, const char *b, gsize bl,
	       const MimeDelim *first, guint depth, gboolean digest)
{
	MimeDelim cur = *first;

	mime_append_escaped(walk->out, (const guchar *) d, cur.start);
	for (;;) {
		MimeDelim next;
		gsize ps = cur.end;
		gsize pe;

		g_string_append_len(walk->out, d + cur.start, (gssize) (cur.end - cur.start));
		if (cur.close) {
			mime_append_escaped(walk->out, (const guchar *) d + cur.end, len - cur.end);
			return;
		}
		if (walk->parts >= IMTA_MIME_MAX_PARTS || !mime_delim_find(d, len, ps, b, bl, &next)) {
			mime_entity(walk, d + ps, len - ps, depth + 1, MIME_KIND_PART, digest, TRUE);
			return;
		}
		pe = next.start > ps ? next.start - 1 : ps;
		mime_entity(walk, d + ps, pe - ps, depth + 1, MIME_KIND_PART, digest, FALSE);
		g_string_append_len(walk->out, d + pe, (gssize) (next.start - pe));
		cur = next;
	}
}

typedef enum {
	MIME_ACT_QP,
	MIME_ACT_BASE64,
	MIME_ACT_REPAIR_QP,
	MIME_ACT_REPAIR_BASE64,
	MIME_ACT_MULTIPART,
	MIME_ACT_MESSAGE,
	MIME_ACT_OPAQUE,
} MimeAction;

void
mime_content_type_parse(const char *data, const MimeField *f, MimeContentType *ct)
{
	g_autoptr(GString) value = NULL;
	MimeParams mp = { 0 };
	const GString *p;
	char *slash;

	if (f == NULL)
		return;
	value = mime_field_value(data, f);
	if (mime_params_parse(value->str, value->len, &mp) &&
	    (slash = strchr(mp.head, '/')) != NULL && slash != mp.head && slash[1] != '\0') {
		ct->type = g_ascii_strdown(mp.head, slash - mp.head);
		ct->subtype = g_ascii_strdown(slash + 1, -1);
	}
	p = mime_param(&mp, "boundary");
	if (p != NULL && p->len > 0 && p->len <= MIME_BOUNDARY_MAX &&
	    !imta_mime_is_8bit(p->str, p->len))
		ct->boundary = g_strndup(p->str, p->len);
	p = mime_param(&mp, "charset");
	if (p != NULL && !imta_mime_is_8bit(p->str, p->len))
		ct->charset = g_strndup(p->str, p->len);
	mime_params_clear(&mp);
}

void
mime_content_type_clear(MimeContentType *ct)
{
	g_free(ct->type);
	g_free(ct->subtype);
	g_free(ct->boundary);
	g_free(ct->charset);
}

static MimeAction
mime_choose(const MimeContentType *ct, const char *type, MimeCte cte, gboolean is_mime,
	    guint depth, gboolean opaque, const char *body, gsize blen)
{
	gboolean composite = strcmp(type, "multipart") == 0 ||
			     (strcmp(type, "message") == 0 && ct->subtype != NULL &&
			      strcmp(ct->subtype, "rfc822") == 0);

	if (cte == MIME_CTE_QP)
		return MIME_ACT_REPAIR_QP;
	if (cte == MIME_CTE_BASE64)
		return MIME_ACT_REPAIR_BASE64;
	if (cte == MIME_CTE_UNKNOWN)
		return MIME_ACT_OPAQUE;	/* undecodable: RFC 2045 6.4 says octet-stream */
	if (composite) {
		if (opaque || depth >= IMTA_MIME_MAX_DEPTH)
			return MIME_ACT_OPAQUE;
		if (strcmp(type, "message") == 0)
			return MIME_ACT_MESSAGE;
		return ct->boundary != NULL ? MIME_ACT_MULTIPART : MIME_ACT_OPAQUE;
	}
	if (!is_mime || strcmp(type, "text") == 0)
		return mime_text_wants_base64((const guchar *) body, blen) ? MIME_ACT_BASE64
									    : MIME_ACT_QP;
	return MIME_ACT_BASE64;
}

/* Converts one entity (header and body) into walk->out.  Returns FALSE only
 * for a message/rfc822 body whose own header has to keep 8-bit bytes; the
 * caller then discards what was written and sends the part opaque. */
static gboolean
mime_entity(MimeWalk *walk, const char *data, gsize len, guint depth, MimeKind kind,
	    gboolean digest, gboolean opaque)
{
	MimeHeader h;
	MimeContentType ct = { 0 };
	MimeHeaderPlan plan = { kind, NULL, NULL, NULL, FALSE };
	g_autofree char *text_ct = NULL;
	const MimeField *ct_field;
	const MimeField *cte_field;
	gboolean has_version;
	gboolean is_mime;
	const char *type;
	const char *body;
	gsize blen;
	gsize saved;
	MimeAction action;
	MimeDelim first = { 0 };
	gboolean ok = TRUE;

	walk->parts++;
	if (!imta_mime_is_8bit(data, len)) {
		g_string_append_len(walk->out, data, (gssize) len);
		return TRUE;
	}
	mime_header_parse(data, len, &h);
	body = data + h.body;
	blen = len - h.body;
	ct_field = mime_header_find(data, &h, "content-type");
	cte_field = mime_header_find(data, &h, "content-transfer-encoding");
	has_version = mime_header_find(data, &h, "mime-version") != NULL;
	is_mime = kind == MIME_KIND_PART || has_version || ct_field != NULL;
	mime_content_type_parse(data, ct_field, &ct);
	plan.charset = ct.charset;
	type = ct.type != NULL ? ct.type : digest ? "message" : "text";
	if (ct.type == NULL && digest)
		ct.subtype = g_strdup("rfc822");

	if (!imta_mime_is_8bit(body, blen)) {
		ok = mime_header_write(walk->out, data, len, &h, &plan);
		g_string_append_len(walk->out, body, (gssize) blen);
		goto done;
	}
	action = mime_choose(&ct, type, mime_cte_parse(data, cte_field), is_mime, depth, opaque,
			     body, blen);
	if (action == MIME_ACT_MULTIPART &&
	    !mime_delim_find(body, blen, 0, ct.boundary, strlen(ct.boundary), &first))
		action = MIME_ACT_OPAQUE;
	saved = walk->out->len;
	switch (action) {
	case MIME_ACT_QP:
	case MIME_ACT_BASE64:
		plan.new_cte = action == MIME_ACT_QP ? "quoted-printable" : "base64";
		if (ct_field == NULL && strcmp(type, "text") == 0) {
			text_ct = g_strdup_printf("text/plain; charset=%s",
						  mime_charset_for(body, blen, NULL));
			plan.new_ct = text_ct;
		}
		break;
	case MIME_ACT_MULTIPART:
	case MIME_ACT_MESSAGE:
		if (mime_cte_is_8bit(data, cte_field))
			plan.new_cte = "7bit";
		break;
	case MIME_ACT_OPAQUE:
		plan.new_ct = "application/octet-stream";
		plan.new_cte = "base64";
		break;
	case MIME_ACT_REPAIR_QP:
	case MIME_ACT_REPAIR_BASE64:
	default:
		break;
	}
	plan.add_version = kind != MIME_KIND_PART && !has_version &&
			   (plan.new_cte != NULL || plan.new_ct != NULL);
	ok = mime_header_write(walk->out, data, len, &h, &plan);
	if (!ok)
		goto done;

	switch (action) {
	case MIME_ACT_QP:
		mime_qp_encode(walk->out, (const guchar *) body, blen);
		break;
	case MIME_ACT_REPAIR_QP:
		mime_qp_repair(walk->out, (const guchar *) body, blen);
		break;
	case MIME_ACT_REPAIR_BASE64:
		mime_base64_repair(walk->out, (const guchar *) body, blen);
		break;
	case MIME_ACT_MULTIPART:
		mime_multipart(walk, body, blen, ct.boundary, strlen(ct.boundary), &first,
			       depth, strcmp(ct.subtype, "digest") == 0);
		break;
	case MIME_ACT_MESSAGE:
		if (mime_entity(walk, body, blen, depth + 1, MIME_KIND_MESSAGE, FALSE, FALSE))
			break;
		/* The enclosed header keeps 8-bit bytes in a structured field:
		 * send the whole message as an opaque, base64-encoded part. */
		g_string_truncate(walk->out, saved);
		plan.new_ct = "application/octet-stream";
		plan.new_cte = "base64";
		plan.add_version = kind != MIME_KIND_PART && !has_version;
		ok = mime_header_write(walk->out, data, len, &h, &plan);
		if (!ok)
			break;
		/* fall through */
	case MIME_ACT_BASE64:
	case MIME_ACT_OPAQUE:
	default:
		mime_base64_encode(walk->out, (const guchar *) body, blen);
		break;
	}
done:
	mime_content_type_clear(&ct);
	g_array_unref(h.fields);
	return ok;
}

GBytes *
imta_mime_downgrade_7bit(const char *data, gsize len)
{
	MimeWalk walk;

	if (!imta_mime_is_8bit(data, len))
		return NULL;
	walk.out = g_string_sized_new(len + len / 3 + 256);
	walk.parts = 0;
	mime_entity(&walk, data, len, 0, MIME_KIND_TOP, FALSE, FALSE);
	return g_string_free_to_bytes(walk.out);
}
