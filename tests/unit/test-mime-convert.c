/*
 * test-mime-convert.c - what the conversion and defragment channels and
 * the content keywords rest on: charset labelling (charset7, charset8,
 * charsetesc), the part walk that relabels and replaces parts, the
 * downgrade of 8-bit parts for sevenbit channels, message/partial
 * reassembly, the conversions file (entries, matching, exact errors) and
 * the CONVERSIONS diversion at enqueue time.
 */
#include "config.h"

#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <imta/mime.h>
#include <imta/conversions.h>
#include <imta/mappings.h>
#include <imta/imta_cnf.h>
#include <imta/queue.h>

/* ------------------------------------------------------------------ */
/* Helpers */

static char *
bytes_str(GBytes *b)
{
	gsize n = 0;
	const char *d = g_bytes_get_data(b, &n);

	return g_strndup(d, n);
}

static void
assert_lines_within(const char *s, gsize max)
{
	gsize col = 0;

	for (; *s != '\0'; s++) {
		col = *s == '\n' ? 0 : col + 1;
		if (col > max)
			g_error("line longer than %" G_GSIZE_FORMAT " near: %.40s", max, s - col + 1);
	}
}

/* ------------------------------------------------------------------ */
/* Charset labelling */

typedef struct {
	const char *name;
	const char *in;
	const char *cs7, *cs8, *csesc;
	const char *out;          /* NULL: unchanged */
} LabelCase;

static const LabelCase label_cases[] = {
	{ "non-MIME 7-bit gets charset7",
	  "Subject: x\n\nhello\n", "ISO-8859-1", "UTF-8", NULL,
	  "Subject: x\nMIME-Version: 1.0\nContent-Type: text/plain; charset=ISO-8859-1\n\nhello\n" },
	{ "non-MIME 8-bit gets charset8 and 8bit",
	  "Subject: x\n\nh\xc3\xa9llo\n", "US-ASCII", "UTF-8", NULL,
	  "Subject: x\nMIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\n"
	  "Content-Transfer-Encoding: 8bit\n\nh\xc3\xa9llo\n" },
	{ "US-ASCII for 7-bit text is what MIME assumes: unchanged",
	  "Subject: x\n\nhello\n", "US-ASCII", "UTF-8", NULL, NULL },
	{ "a label is never replaced",
	  "MIME-Version: 1.0\nContent-Type: text/plain; charset=koi8-r\n\nh\xe9\n",
	  "US-ASCII", "UTF-8", NULL, NULL },
	{ "ESC text gets charsetesc",
	  "MIME-Version: 1.0\nContent-Type: text/plain\n\n\x1b$B$3\x1b(B\n",
	  "US-ASCII", "UTF-8", "ISO-2022-JP",
	  "MIME-Version: 1.0\nContent-Type: text/plain; charset=ISO-2022-JP\n\n\x1b$B$3\x1b(B\n" },
	{ "parameters are kept, charset appended",
	  "MIME-Version: 1.0\nContent-Type: text/plain; format=flowed\n"
	  "Content-Transfer-Encoding: 8bit\n\n\xe9t\xe9\n",
	  NULL, "ISO-8859-1", NULL,
	  "MIME-Version: 1.0\nContent-Type: text/plain; format=flowed; charset=ISO-8859-1\n"
	  "Content-Transfer-Encoding: 8bit\n\n\xe9t\xe9\n" },
	{ "decoded body decides: QP-encoded 8-bit is 8-bit",
	  "MIME-Version: 1.0\nContent-Type: text/plain\nContent-Transfer-Encoding: "
	  "quoted-printable\n\ncaf=E9\n", "US-ASCII", "ISO-8859-1", NULL,
	  "MIME-Version: 1.0\nContent-Type: text/plain; charset=ISO-8859-1\n"
	  "Content-Transfer-Encoding: quoted-printable\n\ncaf=E9\n" },
	{ "only text parts of a multipart; structure kept",
	  "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\npre\n--b\n"
	  "Content-Type: text/plain\n\nh\xc3\xa9\n--b\nContent-Type: image/png\n\n\x89PNG\n"
	  "--b\n\nplain\n--b--\nepi\n", "ISO-8859-1", "UTF-8", NULL,
	  "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\npre\n--b\n"
	  "Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n\n"
	  "h\xc3\xa9\n--b\nContent-Type: image/png\n\n\x89PNG\n--b\n"
	  "Content-Type: text/plain; charset=ISO-8859-1\n\nplain\n--b--\nepi\n" },
	{ "no keywords: unchanged", "Subject: x\n\nh\xe9\n", NULL, NULL, NULL, NULL },
	{ "a charset name that is no token is not written",
	  "Subject: x\n\nhi\n", "bad name", NULL, NULL, NULL },
};

static void
test_label_table(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(label_cases); i++) {
		const LabelCase *c = &label_cases[i];
		g_autoptr(GBytes) out = imta_mime_label_charsets(c->in, strlen(c->in), c->cs7,
								 c->cs8, c->csesc);
		g_autofree char *got = out != NULL ? bytes_str(out) : NULL;

		g_test_message("case: %s", c->name);
		g_assert_cmpstr(got, ==, c->out);
	}
}

/* ------------------------------------------------------------------ */
/* The part walk */

typedef struct {
	const char *match_subtype;
	const char *new_type;
	const char *new_body;      /* NULL: relabel only */
	GString *seen;             /* "n:type/subtype:encoding:charset|" per part */
} WalkPlan;

static gboolean
walk_cb(const ImtaMimePart *part, ImtaMimeAction *action_r, ImtaMimeChange *change,
	gpointer user_data, GError **error)
{
	WalkPlan *plan = user_data;

	g_string_append_printf(plan->seen, "%u:%s/%s:%s:%s:%s|", part->number, part->type,
			       part->subtype, part->encoding,
			       part->charset != NULL ? part->charset : "-",
			       part->filename != NULL ? part->filename : "-");
	if (plan->match_subtype == NULL || strcmp(part->subtype, plan->match_subtype) != 0)
		return TRUE;
	if (strcmp(plan->match_subtype, "fail") == 0) {
		g_set_error(error, IMTA_MIME_ERROR, IMTA_MIME_ERROR_SYNTAX, "refused %u",
			    part->number);
		return FALSE;
	}
	change->content_type = g_strdup(plan->new_type);
	if (plan->new_body != NULL) {
		change->body = g_bytes_new(plan->new_body, strlen(plan->new_body));
		*action_r = IMTA_MIME_REPLACE;
	} else {
		*action_r = IMTA_MIME_RELABEL;
	}
	return TRUE;
}

static const char walk_multipart[] =
	"From: a@example.org\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"xx\"\n"
	"\nThis is a MIME message.\n--xx\nContent-Type: text/plain; charset=us-ascii\n"
	"\nhello world\n--xx\nContent-Type: application/x-thing; name=\"t.bin\"\n"
	"Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"t.bin\"\n"
	"\nAAEC\n--xx\nContent-Type: message/rfc822\n\nSubject: inner\n\ninner text\n--xx--\n";

static void
test_walk_sees_parts(void)
{
	WalkPlan plan = { NULL, NULL, NULL, g_string_new(NULL) };
	GBytes *out = NULL;

	g_assert_true(imta_mime_rewrite_parts(walk_multipart, strlen(walk_multipart), walk_cb,
					      &plan, &out, NULL));
	g_assert_null(out);
	g_assert_cmpstr(plan.seen->str, ==,
			"1:text/plain:7bit:us-ascii:-|2:application/x-thing:base64:-:t.bin|"
			"3:text/plain:7bit:-:-|");
	g_string_free(plan.seen, TRUE);
}

static void
test_walk_replace_text(void)
{
	WalkPlan plan = { "plain", "text/plain; charset=us-ascii", "HELLO WORLD\n",
			  g_string_new(NULL) };
	g_autoptr(GBytes) out = NULL;
	g_autofree char *got = NULL;

	g_assert_true(imta_mime_rewrite_parts(walk_multipart, strlen(walk_multipart), walk_cb,
					      &plan, &out, NULL));
	got = bytes_str(out);
	g_assert_cmpstr(got, ==,
			"From: a@example.org\nMIME-Version: 1.0\nContent-Type: multipart/mixed; "
			"boundary=\"xx\"\n\nThis is a MIME message.\n--xx\nContent-Type: text/plain; "
			"charset=us-ascii\nContent-Transfer-Encoding: 7bit\n\nHELLO WORLD\n\n--xx\n"
			"Content-Type: application/x-thing; name=\"t.bin\"\n"
			"Content-Transfer-Encoding: base64\nContent-Disposition: attachment; "
			"filename=\"t.bin\"\n\nAAEC\n--xx\nContent-Type: message/rfc822\n\n"
			"Subject: inner\nContent-Type: text/plain; charset=us-ascii\n"
			"Content-Transfer-Encoding: 7bit\n\nHELLO WORLD\n\n--xx--\n");
	g_string_free(plan.seen, TRUE);
}

typedef struct {
	const char *name;
	const char *new_type;
	const char *body;
	const char *encoding_line;
} EncodeCase;

static void
test_walk_replace_encodings(void)
{
	static const EncodeCase cases[] = {
		{ "7-bit text stays 7bit", "text/plain", "plain text\n",
		  "Content-Transfer-Encoding: 7bit\n" },
		{ "mostly-text 8-bit is quoted-printable", "text/plain; charset=ISO-8859-1",
		  "caf\xe9 au lait, cr\xe8me br\xfbl\xe9""e and other things\n",
		  "Content-Transfer-Encoding: quoted-printable\n" },
		{ "mostly 8-bit text is base64", "text/plain; charset=KOI8-R",
		  "\xf0\xd2\xc9\xd7\xc5\xd4 \xcd\xc9\xd2\n", "Content-Transfer-Encoding: base64\n" },
		{ "binary types are base64", "application/pdf", "%PDF-1.4 \x01\x02\xff",
		  "Content-Transfer-Encoding: base64\n" },
		{ "long lines are not 7bit", "text/plain", NULL,
		  "Content-Transfer-Encoding: quoted-printable\n" },
	};
	const char *msg = "Subject: s\n\nbody\n";

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *longline = g_strnfill(1200, 'a');
		WalkPlan plan = { "plain", cases[i].new_type,
				  cases[i].body != NULL ? cases[i].body : longline,
				  g_string_new(NULL) };
		g_autoptr(GBytes) out = NULL;
		g_autofree char *got = NULL;

		g_test_message("case: %s", cases[i].name);
		g_assert_true(imta_mime_rewrite_parts(msg, strlen(msg), walk_cb, &plan, &out, NULL));
		got = bytes_str(out);
		g_assert_nonnull(strstr(got, cases[i].encoding_line));
		g_assert_true(g_str_has_prefix(got, "Subject: s\nMIME-Version: 1.0\n"));
		assert_lines_within(strstr(got, "\n\n") + 2, 76);
		g_string_free(plan.seen, TRUE);
	}
}

static void
test_walk_relabel_and_refusal(void)
{
	WalkPlan relabel = { "x-thing", "application/octet-stream", NULL, g_string_new(NULL) };
	WalkPlan refuse = { "fail", NULL, NULL, g_string_new(NULL) };
	const char *failing = "MIME-Version: 1.0\nContent-Type: text/fail\n\nx\n";
	g_autoptr(GBytes) out = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *got = NULL;
	GBytes *none = NULL;

	g_assert_true(imta_mime_rewrite_parts(walk_multipart, strlen(walk_multipart), walk_cb,
					      &relabel, &out, NULL));
	got = bytes_str(out);
	g_assert_nonnull(strstr(got, "--xx\nContent-Type: application/octet-stream\n"
				     "Content-Transfer-Encoding: base64\nContent-Disposition: "
				     "attachment; filename=\"t.bin\"\n\nAAEC\n--xx\n"));
	g_assert_false(imta_mime_rewrite_parts(failing, strlen(failing), walk_cb, &refuse, &none,
					       &error));
	g_assert_null(none);
	g_assert_error(error, IMTA_MIME_ERROR, IMTA_MIME_ERROR_SYNTAX);
	g_assert_cmpstr(error->message, ==, "refused 1");
	g_string_free(relabel.seen, TRUE);
	g_string_free(refuse.seen, TRUE);
}

static gboolean
keep_body_cb(const ImtaMimePart *part, ImtaMimeAction *action_r, ImtaMimeChange *change,
	     gpointer user_data, GError **error)
{
	gsize n = 0;
	const char *d = g_bytes_get_data(part->body, &n);

	g_string_append_len(user_data, d, (gssize) n);
	return TRUE;
}

/* The decoded body is what a converter gets in INPUT_FILE. */
static void
test_walk_decodes(void)
{
	static const struct {
		const char *in;
		const char *decoded;
	} cases[] = {
		{ "Content-Transfer-Encoding: quoted-printable\n\nA=3DB=\nC  \nD=E9\n", "A=BC\nD\xe9\n" },
		{ "Content-Transfer-Encoding: base64\n\naGVs\nbG8=\n", "hello" },
		{ "Content-Transfer-Encoding: QUOTED-PRINTABLE\n\n=ZZ=4\n", "=ZZ=4\n" },
		{ "Content-Transfer-Encoding: base64\n\n!!aG*Vs\n", "hel" },
		{ "\nraw\n", "raw\n" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *msg = g_strconcat("MIME-Version: 1.0\n", cases[i].in, NULL);
		g_autoptr(GString) body = g_string_new(NULL);
		GBytes *out = NULL;

		g_assert_true(imta_mime_rewrite_parts(msg, strlen(msg), keep_body_cb, body, &out,
						      NULL));
		g_assert_null(out);
		g_assert_cmpstr(body->str, ==, cases[i].decoded);
	}
}

static void
test_walk_malformed(void)
{
	static const char *const inputs[] = {
		"",
		"\n",
		"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nunclosed",
		"MIME-Version: 1.0\nContent-Type: multipart/mixed\n\nno boundary\n",
		"Content-Type: ;;;\n\nx",
		"Content-Type: message/rfc822\n\n",
		"no header at all",
	};

	for (gsize i = 0; i < G_N_ELEMENTS(inputs); i++) {
		WalkPlan plan = { "plain", "text/plain", "X\n", g_string_new(NULL) };
		GBytes *out = NULL;

		g_assert_true(imta_mime_rewrite_parts(inputs[i], strlen(inputs[i]), walk_cb, &plan,
						      &out, NULL));
		g_clear_pointer(&out, g_bytes_unref);
		g_string_free(plan.seen, TRUE);
	}
}

static void
test_walk_depth_bounded(void)
{
	GString *msg = g_string_new("MIME-Version: 1.0\n");
	WalkPlan plan = { NULL, NULL, NULL, g_string_new(NULL) };
	GBytes *out = NULL;

	for (int i = 0; i < 200; i++)
		g_string_append(msg, "Content-Type: message/rfc822\n\n");
	g_string_append(msg, "Subject: deep\n\nx\n");
	g_assert_true(imta_mime_rewrite_parts(msg->str, msg->len, walk_cb, &plan, &out, NULL));
	g_assert_null(out);
	/* The walk stops at IMTA_MIME_MAX_DEPTH and shows the rest as one part. */
	g_assert_cmpstr(plan.seen->str, ==, "1:message/rfc822:7bit:-:-|");
	g_string_free(plan.seen, TRUE);
	g_string_free(msg, TRUE);
}

/* ------------------------------------------------------------------ */
/* The downgrade, as sevenbit channels use it */

static void
test_downgrade_sevenbit(void)
{
	const char *in = "Subject: t\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=q\n"
			 "\n--q\nContent-Type: text/plain; charset=iso-8859-1\n"
			 "Content-Transfer-Encoding: 8bit\n\ncaf\xe9 cr\xe8me\n--q\n"
			 "Content-Type: application/octet-stream\n\n\x01\xff\xfe\n--q--\n";
	g_autoptr(GBytes) out = imta_mime_downgrade_7bit(in, strlen(in));
	g_autofree char *got = bytes_str(out);

	g_assert_cmpstr(got, ==,
			"Subject: t\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=q\n"
			"\n--q\nContent-Type: text/plain; charset=iso-8859-1\n"
			"Content-Transfer-Encoding: quoted-printable\n\ncaf=E9 cr=E8me\n--q\n"
			"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n"
			"\nAf/+\n--q--\n");
	assert_lines_within(got, 76);
}

/* ------------------------------------------------------------------ */
/* message/partial */

static GBytes *
partial_str(const char *outer_extra, const char *params, const char *body)
{
	g_autofree char *s = g_strdup_printf("From: a@example.org\nTo: b@example.com\n%s"
					     "Message-ID: <p@x>\nMIME-Version: 1.0\n"
					     "Content-Type: message/partial; %s\n\n%s",
					     outer_extra, params, body);

	return g_bytes_new(s, strlen(s));
}

static const char *const part_bodies[3] = {
	"X-Inner: dropped\nSubject: Audio mail\nMessage-ID: <whole@x>\nMIME-Version: 1.0\n"
	"Content-Type: text/plain\n\nfirst line\n",
	"second line\n",
	"third line\n",
};

static const char assembled[] =
	"From: a@example.org\nTo: b@example.com\nX-Outer: kept\nSubject: Audio mail\n"
	"Message-ID: <whole@x>\nMIME-Version: 1.0\nContent-Type: text/plain\n\n"
	"first line\nsecond line\nthird line\n";

static GBytes *
make_part(guint n, const char *total)
{
	g_autofree char *params = g_strdup_printf("id=\"abc@x\"; number=%u%s", n, total);

	return partial_str(n == 1 ? "X-Outer: kept\n" : "X-Other: gone\n", params,
			   part_bodies[n - 1]);
}

static void
test_partial_any_order(void)
{
	static const guint orders[][3] = {
		{ 1, 2, 3 }, { 3, 2, 1 }, { 2, 3, 1 }, { 2, 1, 3 },
	};

	for (gsize o = 0; o < G_N_ELEMENTS(orders); o++) {
		GBytes *parts[3];
		g_autoptr(GBytes) whole = NULL;
		g_autoptr(GError) error = NULL;
		g_autofree char *got = NULL;

		for (int i = 0; i < 3; i++)
			parts[i] = make_part(orders[o][i], orders[o][i] == 3 ? "; total=3" : "");
		whole = imta_mime_partial_assemble(parts, 3, &error);
		g_assert_no_error(error);
		got = bytes_str(whole);
		g_assert_cmpstr(got, ==, assembled);
		for (int i = 0; i < 3; i++)
			g_bytes_unref(parts[i]);
	}
}

typedef struct {
	const char *name;
	guint numbers[4];
	const char *totals[4];
	guint n;
	gint code;
	const char *message;
} PartialBad;

static void
test_partial_refusals(void)
{
	static const PartialBad cases[] = {
		{ "a part missing", { 1, 3 }, { "", "; total=3" }, 2, IMTA_MIME_ERROR_INCOMPLETE,
		  "part 2 of 3 is missing" },
		{ "no total anywhere", { 1, 2 }, { "", "" }, 2, IMTA_MIME_ERROR_INCOMPLETE,
		  "no part gives the total (the last part is missing)" },
		{ "a duplicate part", { 1, 2, 2, 3 }, { "", "", "", "; total=3" }, 4,
		  IMTA_MIME_ERROR_CONFLICT, "part 2 is given twice" },
		{ "conflicting totals", { 1, 2, 3 }, { "; total=3", "", "; total=4" }, 3,
		  IMTA_MIME_ERROR_CONFLICT, "the parts disagree on the total: 3 and 4" },
	};

	for (gsize c = 0; c < G_N_ELEMENTS(cases); c++) {
		GBytes *parts[4];
		g_autoptr(GError) error = NULL;
		GBytes *whole;

		g_test_message("case: %s", cases[c].name);
		for (guint i = 0; i < cases[c].n; i++)
			parts[i] = make_part(cases[c].numbers[i], cases[c].totals[i]);
		whole = imta_mime_partial_assemble(parts, cases[c].n, &error);
		g_assert_null(whole);
		g_assert_error(error, IMTA_MIME_ERROR, cases[c].code);
		g_assert_cmpstr(error->message, ==, cases[c].message);
		for (guint i = 0; i < cases[c].n; i++)
			g_bytes_unref(parts[i]);
	}
}

static void
test_partial_other_id(void)
{
	GBytes *parts[2] = { make_part(1, ""), partial_str("", "id=other; number=2; total=2", "x\n") };
	g_autoptr(GError) error = NULL;

	g_assert_null(imta_mime_partial_assemble(parts, 2, &error));
	g_assert_error(error, IMTA_MIME_ERROR, IMTA_MIME_ERROR_CONFLICT);
	g_assert_cmpstr(error->message, ==, "part 2 has the id \"other\", not \"abc@x\"");
	g_bytes_unref(parts[0]);
	g_bytes_unref(parts[1]);
}

typedef struct {
	const char *content;
	const char *error;        /* NULL: parses */
	const char *id;
	guint number, total;
} PartialParseCase;

static void
test_partial_parse(void)
{
	static const PartialParseCase cases[] = {
		{ "Content-Type: message/partial; id=\"a b\"; number=2; total=5\n\nx", NULL, "a b", 2, 5 },
		{ "Content-type: Message/Partial;\n number=1;\n id=q\n\nx", NULL, "q", 1, 0 },
		{ "Content-Type: text/plain\n\nx", "not a message/partial message", NULL, 0, 0 },
		{ "Subject: none\n\nx", "not a message/partial message", NULL, 0, 0 },
		{ "Content-Type: message/partial; number=1\n\n", "message/partial without an id "
		  "parameter", NULL, 0, 0 },
		{ "Content-Type: message/partial; id=a; number=0\n\n", "message/partial number: "
		  "expected an integer from 1 to 1000", NULL, 0, 0 },
		{ "Content-Type: message/partial; id=a; number=x\n\n", "message/partial number: "
		  "expected an integer from 1 to 1000", NULL, 0, 0 },
		{ "Content-Type: message/partial; id=a; number=1; total=99999\n\n",
		  "message/partial total: expected an integer from 1 to 1000", NULL, 0, 0 },
		{ "Content-Type: message/partial; id=a; number=4; total=3\n\n",
		  "message/partial number 4 is above the total 3", NULL, 0, 0 },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		ImtaMimePartial p = { 0 };
		g_autoptr(GError) error = NULL;
		gboolean ok = imta_mime_partial_parse(cases[i].content, strlen(cases[i].content), &p,
						      &error);

		g_autofree char *low = g_ascii_strdown(cases[i].content, -1);

		g_assert_cmpint(imta_mime_is_partial(cases[i].content, strlen(cases[i].content)), ==,
				strstr(low, "content-type: message/partial") != NULL);
		if (cases[i].error != NULL) {
			g_assert_false(ok);
			g_assert_cmpstr(error->message, ==, cases[i].error);
			continue;
		}
		g_assert_no_error(error);
		g_assert_cmpstr(p.id, ==, cases[i].id);
		g_assert_cmpuint(p.number, ==, cases[i].number);
		g_assert_cmpuint(p.total, ==, cases[i].total);
		imta_mime_partial_clear(&p);
	}
}

/* ------------------------------------------------------------------ */
/* The conversions file */

static const char conversions_text[] =
	"! upper-case text from outside\n"
	"in-chan=tcp_*; out-chan=*;\n"
	"  in-type=text; in-subtype=plain;\n"
	"  command=\"/usr/bin/upper INPUT_FILE ${OUTPUT_FILE} 'a b'\"; timeout=5\n"
	"\n"
	"# relabel a vendor type for the store\n"
	"IN-CHAN=*; OUT-CHAN=ims-ms; IN-TYPE=application; IN-SUBTYPE=x-wp%;\n"
	"  relabel=1; out-type=application; out-subtype=wordperfect; on-error=return\n"
	"in-filename=*.exe; command=/bin/false\n";

static ImtaMimePart
part_of(const char *type, const char *subtype, const char *filename)
{
	ImtaMimePart p = { 0 };

	p.type = type;
	p.subtype = subtype;
	p.filename = filename;
	return p;
}

static void
test_conversions_parse_and_match(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(ImtaConversions) conv = imta_conversions_parse_text("conversions",
		conversions_text, strlen(conversions_text), &error);
	const ImtaConversionEntry *e;
	ImtaMimePart text = part_of("text", "plain", NULL);
	ImtaMimePart wp = part_of("application", "x-wp6", NULL);
	ImtaMimePart exe = part_of("application", "octet-stream", "setup.EXE");
	g_auto(GStrv) argv = NULL;

	g_assert_no_error(error);
	g_assert_cmpuint(conv->entries->len, ==, 3);
	e = g_ptr_array_index(conv->entries, 0);
	g_assert_cmpuint(e->timeout, ==, 5);
	g_assert_cmpint(e->on_error, ==, IMTA_CONVERSION_DEFER);
	g_assert_cmpuint(e->pos.line, ==, 2);
	g_assert_true(imta_conversions_match(conv, "tcp_local", "ims-ms", &text) == e);
	g_assert_null(imta_conversions_match(conv, "l", "ims-ms", &text));
	e = g_ptr_array_index(conv->entries, 1);
	g_assert_true(e->relabel);
	g_assert_cmpint(e->on_error, ==, IMTA_CONVERSION_RETURN);
	g_assert_cmpuint(e->timeout, ==, IMTA_CONVERSION_DEFAULT_TIMEOUT);
	g_assert_true(imta_conversions_match(conv, "l", "ims-ms", &wp) == e);
	g_assert_null(imta_conversions_match(conv, "l", "tcp_local", &wp));
	g_assert_true(imta_conversions_match(conv, "l", "x", &exe) ==
		      g_ptr_array_index(conv->entries, 2));
	argv = imta_conversion_argv(g_ptr_array_index(conv->entries, 0), "/w/in", "/w/out", NULL);
	g_assert_cmpuint(g_strv_length(argv), ==, 4);
	g_assert_cmpstr(argv[0], ==, "/usr/bin/upper");
	g_assert_cmpstr(argv[1], ==, "/w/in");
	g_assert_cmpstr(argv[2], ==, "/w/out");
	g_assert_cmpstr(argv[3], ==, "a b");
}

typedef struct {
	const char *text;
	const char *error;
} ConvBad;

static void
test_conversions_errors(void)
{
	static const ConvBad cases[] = {
		{ "in-chan=x; colour=red\n",
		  "conv:1:12: unknown clause \"colour\" (expected in-chan, out-chan, in-type, "
		  "in-subtype, in-description, in-disposition, in-filename, command, relabel, "
		  "out-type, out-subtype, out-charset, timeout or on-error)" },
		{ "\n  in-chan=x\n", "conv:2:3: the entry has neither a command nor relabel=1" },
		{ "command=/bin/true; timeout=0\n",
		  "conv:1:28: timeout: expected an integer between 1 and 3600, got \"0\"" },
		{ "command=/bin/true; timeout=9999\n",
		  "conv:1:28: timeout: expected an integer between 1 and 3600, got \"9999\"" },
		{ "command=\"/bin/true\n", "conv:1:9: expected a closing '\"' before the end of the line" },
		{ "command /bin/true\n", "conv:1:9: expected '=' after \"command\"" },
		{ "command=/bin/true x\n",
		  "conv:1:19: expected ';' or the end of the line after the value of command" },
		{ "command=/bin/true; on-error=bounce\n",
		  "conv:1:29: on-error: expected defer or return, got \"bounce\"" },
		{ "command=/bin/true;\n  command=/bin/false\n", "conv:2:3: command given twice in one entry" },
		{ "relabel=1\n", "conv:1:1: relabel=1 needs out-type or out-subtype" },
		{ "relabel=yes; out-type=text\n", "conv:1:9: relabel: expected 0 or 1, got \"yes\"" },
		{ "command=/bin/true; relabel=1; out-type=a\n",
		  "conv:1:1: the entry has both a command and relabel=1; give one" },
		{ "command=/bin/true; out-type=te/xt\n",
		  "conv:1:29: out-type: expected a MIME token, got \"te/xt\"" },
		{ "; command=x\n", "conv:1:1: expected a clause name, got \"; command=x\"" },
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		ImtaConversions *conv = imta_conversions_parse_text("conv", cases[i].text,
								     strlen(cases[i].text), &error);

		g_assert_null(conv);
		g_assert_nonnull(error);
		g_assert_cmpstr(error->message, ==, cases[i].error);
	}
}

static void
test_conversions_load_missing(void)
{
	g_autoptr(GError) error = NULL;

	g_assert_null(imta_conversions_load("/nonexistent/conversions", &error));
	g_assert_error(error, IMTA_CONFIG_ERROR, IMTA_CONFIG_ERROR_IO);
	g_assert_true(g_str_has_prefix(error->message, "cannot read /nonexistent/conversions: "));
}

/* ------------------------------------------------------------------ */
/* CONVERSIONS at enqueue time */

static const char divert_cnf[] =
	"$*  $E$U%$H@tcp-daemon\n"
	"\n"
	"l\nlocalhost\n\n"
	"ims-ms defragment\nims-ms-daemon\n\n"
	"tcp_local\ntcp-daemon\n\n"
	"conversion\nconversion-daemon\n\n"
	"defragment\ndefragment-daemon\n";

static const char divert_mappings[] =
	"CONVERSIONS\n\n"
	"  IN-CHAN=tcp_local;OUT-CHAN=ims-ms;CONVERT   Yes\n"
	"  IN-CHAN=l;OUT-CHAN=*;CONVERT                No\n"
	"  IN-CHAN=*;OUT-CHAN=tcp_local;CONVERT        yes\n";

typedef struct {
	const char *source, *destination;
	gboolean wanted;
} DivertCase;

static void
test_divert_probe(void)
{
	static const DivertCase cases[] = {
		{ "tcp_local", "ims-ms", TRUE },
		{ "l", "tcp_local", FALSE },
		{ "ims-ms", "tcp_local", TRUE },
		{ "tcp_local", "l", FALSE },
		{ "conversion", "tcp_local", FALSE },	/* never twice */
	};
	g_autoptr(GError) error = NULL;
	GStringChunk *names = g_string_chunk_new(64);
	g_autoptr(ImtaMappings) m = imta_mappings_parse_text("mappings", divert_mappings,
							     strlen(divert_mappings), names, &error);

	g_assert_no_error(error);
	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
		g_assert_cmpint(imta_queue_conversion_wanted(m, cases[i].source, cases[i].destination),
				==, cases[i].wanted);
	g_assert_false(imta_queue_conversion_wanted(NULL, "tcp_local", "ims-ms"));
	g_clear_pointer(&m, imta_mappings_free);
	g_string_chunk_free(names);
}

static char *
queue_file_text(const char *root, const char *rel)
{
	g_autofree char *path = g_build_filename(root, rel, NULL);
	char *text = NULL;

	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	return text;
}

static void
remove_tree(const char *path)
{
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", path);

	g_assert_cmpint(system(cmd), ==, 0);
}

static void
test_divert_enqueue(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *root = g_dir_make_tmp("test-divert-XXXXXX", &error);
	g_autoptr(ImtaCnf) cnf = imta_cnf_parse_text("imta.cnf", divert_cnf, strlen(divert_cnf),
						     NULL, &error);
	GStringChunk *names = g_string_chunk_new(64);
	g_autoptr(ImtaMappings) m = imta_mappings_parse_text("mappings", divert_mappings,
							     strlen(divert_mappings), names, &error);
	g_autoptr(ImtaQueue) queue = NULL;
	const char *partial_msg = "Content-Type: message/partial; id=q; number=1\n\nx\n";
	const char *plain = "Subject: hi\n\nbody\n";
	const char *const *files;
	g_autofree char *text = NULL;

	g_assert_no_error(error);
	imta_queue_bind_mappings(cnf, m);
	queue = imta_queue_open(root, cnf, NULL, &error);
	g_assert_no_error(error);
	imta_queue_bind_mappings(cnf, NULL);

	/* tcp_local -> ims-ms: diverted to conversion, ims-ms recorded. */
	{
		g_autoptr(ImtaEnqueue) enq = imta_enqueue_new(queue, "tcp_local", "a@example.org");

		g_assert_true(imta_enqueue_add_recipient(enq, imta_cnf_channel_by_name(cnf, "ims-ms"),
							 "bob@ims-ms-daemon", NULL, 0, &error));
		g_assert_true(imta_enqueue_add_recipient(enq, imta_cnf_channel_by_name(cnf,
							 "tcp_local"), "c@example.net", NULL, 0,
							 &error));
		g_assert_true(imta_enqueue_write(enq, plain, strlen(plain), &error));
		g_assert_true(imta_enqueue_commit(enq, &error));
		files = imta_enqueue_files(enq);
		g_assert_true(g_str_has_prefix(files[0], "conversion/ZZ"));
		g_assert_true(g_str_has_prefix(files[1], "conversion/ZZ"));
		g_assert_null(files[2]);
		g_free(text);
		text = queue_file_text(root, files[0]);
		g_assert_nonnull(strstr(text, "\nsource tcp_local\nchannel conversion\n"));
		g_assert_nonnull(strstr(text, "\nthen ims-ms\n"));
		g_free(text);
		text = queue_file_text(root, files[1]);
		g_assert_nonnull(strstr(text, "\nthen tcp_local\n"));
		{
			g_autoptr(ImtaQueueEntry) entry = imta_queue_entry_read(queue, files[0], &error);

			g_assert_no_error(error);
			g_assert_cmpstr(imta_message_onward_channel(entry->message), ==, "ims-ms");
			g_assert_cmpstr(imta_message_source_channel(entry->message), ==, "tcp_local");
		}
	}
	/* CONVERSIONS says No: queued as it is, with no "then". */
	{
		g_autoptr(ImtaEnqueue) enq = imta_enqueue_new(queue, "l", "a@example.org");

		g_assert_true(imta_enqueue_add_recipient(enq, imta_cnf_channel_by_name(cnf,
							 "tcp_local"), "c@example.net", NULL, 0,
							 &error));
		g_assert_true(imta_enqueue_write(enq, plain, strlen(plain), &error));
		g_assert_true(imta_enqueue_commit(enq, &error));
		files = imta_enqueue_files(enq);
		g_assert_true(g_str_has_prefix(files[0], "tcp_local/ZZ"));
		g_free(text);
		text = queue_file_text(root, files[0]);
		g_assert_null(strstr(text, "\nthen "));
	}
	/* message/partial for a defragment channel goes to defragment first. */
	{
		g_autoptr(ImtaEnqueue) enq = imta_enqueue_new(queue, "l", "a@example.org");

		g_assert_true(imta_enqueue_add_recipient(enq, imta_cnf_channel_by_name(cnf, "ims-ms"),
							 "bob@ims-ms-daemon", NULL, 0, &error));
		g_assert_true(imta_enqueue_write(enq, partial_msg, strlen(partial_msg), &error));
		g_assert_true(imta_enqueue_commit(enq, &error));
		files = imta_enqueue_files(enq);
		g_assert_true(g_str_has_prefix(files[0], "defragment/ZZ"));
		g_free(text);
		text = queue_file_text(root, files[0]);
		g_assert_nonnull(strstr(text, "\nthen ims-ms\n"));
	}
	/* The defragment channel's own output is not diverted again. */
	{
		g_autoptr(ImtaEnqueue) enq = imta_enqueue_new(queue, "defragment", "a@example.org");

		g_assert_true(imta_enqueue_add_recipient(enq, imta_cnf_channel_by_name(cnf, "ims-ms"),
							 "bob@ims-ms-daemon", NULL, 0, &error));
		g_assert_true(imta_enqueue_write(enq, partial_msg, strlen(partial_msg), &error));
		g_assert_true(imta_enqueue_commit(enq, &error));
		g_assert_true(g_str_has_prefix(imta_enqueue_files(enq)[0], "ims-ms/ZZ"));
	}
	g_clear_pointer(&queue, imta_queue_close);
	g_clear_pointer(&m, imta_mappings_free);
	g_string_chunk_free(names);
	remove_tree(root);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mime/charset/label", test_label_table);
	g_test_add_func("/mime/parts/see", test_walk_sees_parts);
	g_test_add_func("/mime/parts/replace-text", test_walk_replace_text);
	g_test_add_func("/mime/parts/replace-encodings", test_walk_replace_encodings);
	g_test_add_func("/mime/parts/relabel-refusal", test_walk_relabel_and_refusal);
	g_test_add_func("/mime/parts/decode", test_walk_decodes);
	g_test_add_func("/mime/parts/malformed", test_walk_malformed);
	g_test_add_func("/mime/parts/depth", test_walk_depth_bounded);
	g_test_add_func("/mime/downgrade/sevenbit", test_downgrade_sevenbit);
	g_test_add_func("/mime/partial/any-order", test_partial_any_order);
	g_test_add_func("/mime/partial/refusals", test_partial_refusals);
	g_test_add_func("/mime/partial/other-id", test_partial_other_id);
	g_test_add_func("/mime/partial/parse", test_partial_parse);
	g_test_add_func("/conversions/parse-match", test_conversions_parse_and_match);
	g_test_add_func("/conversions/errors", test_conversions_errors);
	g_test_add_func("/conversions/load-missing", test_conversions_load_missing);
	g_test_add_func("/conversions/divert/probe", test_divert_probe);
	g_test_add_func("/conversions/divert/enqueue", test_divert_enqueue);
	return g_test_run();
}
