/*
 * smtp.h - the SMTP and LMTP protocol, without I/O: command parsing, ESMTP
 * parameters, replies, the DATA and BDAT content readers, and the trace
 * header.  Shared by every server (tcp_smtp, lmtp) and client.
 *
 * Everything here works on bytes handed in by the caller and keeps no
 * global state; every input is bounded (RFC 5321 4.5.3.1 sizes) and every
 * refusal comes with the reply code, the enhanced status code (RFC 3463)
 * and a text the server can send as it is.
 */
#ifndef IMTA_SMTP_H
#define IMTA_SMTP_H

#include <glib.h>
#include <imta/job.h>

G_BEGIN_DECLS

/* RFC 5321 4.5.3.1 limits (octets, without CRLF unless said). */
#define IMTA_SMTP_COMMAND_MAX    512    /* command line, including CRLF */
#define IMTA_SMTP_COMMAND_LINE_MAX 1000 /* what we accept: room for ESMTP parameters */
#define IMTA_SMTP_TEXT_LINE_MAX  1000   /* a content line, including CRLF */
#define IMTA_SMTP_PATH_MAX       256
#define IMTA_SMTP_DOMAIN_MAX     255

typedef enum {
	IMTA_SMTP_UNKNOWN = 0,
	IMTA_SMTP_HELO, IMTA_SMTP_EHLO, IMTA_SMTP_LHLO,
	IMTA_SMTP_MAIL, IMTA_SMTP_RCPT, IMTA_SMTP_DATA, IMTA_SMTP_BDAT,
	IMTA_SMTP_RSET, IMTA_SMTP_NOOP, IMTA_SMTP_QUIT,
	IMTA_SMTP_VRFY, IMTA_SMTP_EXPN, IMTA_SMTP_HELP,
	IMTA_SMTP_STARTTLS, IMTA_SMTP_AUTH,
} ImtaSmtpVerb;

/* BODY= of MAIL (RFC 6152, RFC 3030). */
typedef enum {
	IMTA_SMTP_BODY_NONE = 0,   /* not given */
	IMTA_SMTP_BODY_7BIT,
	IMTA_SMTP_BODY_8BITMIME,
	IMTA_SMTP_BODY_BINARYMIME,
} ImtaSmtpBody;

/* A refusal: what to send back. */
typedef struct {
	guint code;                 /* 500, 501, 504, 555 ... */
	const char *enhanced;       /* "5.5.2"; static */
	char *text;                 /* without code, e.g. "Syntax error in parameters" */
} ImtaSmtpError;

void imta_smtp_error_clear(ImtaSmtpError *err);

/* One parsed command.  Strings are owned by the command
 * (imta_smtp_command_clear frees them). */
typedef struct {
	ImtaSmtpVerb verb;
	char *arg;                  /* HELO/EHLO/LHLO domain or [literal]; VRFY,
				     * EXPN, HELP argument; AUTH mechanism
				     * (upper case); NULL when none */
	char *arg2;                 /* AUTH initial response ("=" = empty) */
	/* MAIL and RCPT */
	char *path;                 /* the address inside <>, "" for <> */
	/* MAIL parameters */
	gint64 size;                /* SIZE=, -1 when not given */
	ImtaSmtpBody body;
	ImtaRet ret;                /* RET=, IMTA_RET_DEFAULT when not given */
	char *envid;                /* ENVID=, xtext-decoded; NULL when not given */
	char *auth;                 /* AUTH=, xtext-decoded ("<>" kept); NULL */
	gboolean smtputf8;
	/* RCPT parameters */
	guint notify;               /* IMTA_NOTIFY_* bits of job.h; 0 = not given */
	char *orcpt;                /* ORCPT= as "type;xtext-decoded address"; NULL */
	/* BDAT */
	guint64 chunk_size;
	gboolean last;
} ImtaSmtpCommand;

void imta_smtp_command_clear(ImtaSmtpCommand *cmd);

/* What the server offers; the parser refuses parameters of extensions not
 * offered (555 5.5.4) and SIZE above max_size (552 5.3.4). */
typedef struct {
	gboolean esmtp;             /* EHLO/LHLO seen: parameters allowed */
	gboolean dsn;
	gboolean eightbitmime;
	gboolean binarymime;
	gboolean smtputf8;
	gboolean auth;              /* AUTH= accepted on MAIL */
	gint64 max_size;            /* 0 = no limit */
	gboolean smtputf8_transaction; /* the current MAIL had SMTPUTF8: RCPT,
					* VRFY and EXPN may carry UTF-8 */
} ImtaSmtpOffer;

/* Parse one command line (without CRLF; may contain any bytes).
 * Verbs are case-insensitive.  FALSE with *err set on a syntax error:
 * 500 5.5.1 unknown command, 500 5.5.2 NUL, CR or LF in the line or line
 * too long (over IMTA_SMTP_COMMAND_LINE_MAX with its CRLF), 501 5.5.4 bad
 * arguments, 501 5.1.7 bad sender address, 501 5.1.3 bad recipient
 * address, 553 5.6.7 non-ASCII address without SMTPUTF8, 555 5.5.4 unknown
 * or unoffered parameter, 504 5.5.4 BODY value of an unoffered extension,
 * 552 5.3.4 SIZE too big.  Paths are checked with the RFC 5321 grammar
 * (Mailbox / <>) and the length limits; source routes (<@a,@b:u@d>) are
 * accepted and dropped.  A NULL offer is a HELO session: no parameters.
 * *cmd is overwritten (clear it before reusing it); on failure it holds
 * nothing to free.  *err is only written on failure. */
gboolean imta_smtp_parse_command(const char *line, gsize len, const ImtaSmtpOffer *offer,
				 ImtaSmtpCommand *cmd, ImtaSmtpError *err);

/* The verb as it is written in the protocol ("MAIL"); "unknown" for
 * IMTA_SMTP_UNKNOWN.  For logs. */
const char *imta_smtp_verb_name(ImtaSmtpVerb verb);

/* Is `domain` a syntactically valid EHLO argument (a domain, or an
 * address literal [1.2.3.4] / [IPv6:...])?  An IP address without its
 * brackets is not: no top-level domain is all digits (RFC 1123 2.1). */
gboolean imta_smtp_valid_helo(const char *domain);

/* ---- replies --------------------------------------------------------- */

/* Append a reply: "code enhanced text\r\n"; a text with '\n' in it
 * becomes a multi-line reply (code-enhanced on every line but the last).
 * enhanced may be NULL (no enhanced code: greeting, HELO).  Control
 * characters and 8-bit bytes of the text become '?', and a line longer
 * than 512 octets goes on in the next one (RFC 5321 4.5.3.1.5). */
void imta_smtp_reply(GString *out, guint code, const char *enhanced, const char *format, ...)
	G_GNUC_PRINTF(4, 5);

/* Parse a reply line (without CRLF) as a client: "250-text", "250 text"
 * or "250".  *last is TRUE for the final line; *text points into `line`
 * after the separator and runs to its end (len - 4 octets; "" when the
 * line is the bare code).  FALSE if the line is not a reply. */
gboolean imta_smtp_parse_reply_line(const char *line, gsize len, guint *code_r,
				    gboolean *last_r, const char **text_r);

/* ---- message content ------------------------------------------------- */

/* DATA: undo dot-stuffing and find the end.  Only CR LF "." CR LF ends the
 * content; a bare LF or a bare CR never does (no SMTP smuggling: "\n.\n",
 * "\r.\n" and "\n.\r\n" are content).  Output uses LF line ends: a CR LF
 * pair becomes LF, a bare LF stays LF, a bare CR stays CR.  A "." first
 * on a line (after CR LF or a bare LF) is removed unless a CR or LF follows
 * it: such a lone dot that does not end the content is kept.  Lines longer
 * than IMTA_SMTP_TEXT_LINE_MAX are passed on, and counted.  At most ".\r"
 * of input is held between calls, so any split of the input gives the same
 * output. */
typedef struct {
	guint state;                /* private */
	guint64 bytes;              /* content bytes produced so far */
	guint long_lines;           /* lines over IMTA_SMTP_TEXT_LINE_MAX */
	guint bare_lf;              /* bare LF line ends seen */
	guint nul;                  /* NUL bytes seen */
	gsize line_len;             /* private */
	gboolean eight_bit;         /* a byte >= 0x80 was seen */
} ImtaSmtpDataReader;

void imta_smtp_data_reader_init(ImtaSmtpDataReader *r);

/* Read from `in` (len bytes); content goes to out (appended).  Returns
 * the number of input bytes consumed; *done is set once the terminating
 * CR LF . CR LF has been consumed (the bytes after it are not consumed:
 * they are the next pipelined command). */
gsize imta_smtp_data_reader_feed(ImtaSmtpDataReader *r, const char *in, gsize len,
				 GString *out, gboolean *done);

/* BDAT (RFC 3030): chunks are content as they are, without dot-stuffing
 * or terminator; only a CR LF pair becomes LF (a CR ending one chunk is
 * held until the next).  Uses the same reader structure and counters. */
void imta_smtp_bdat_reader_init(ImtaSmtpDataReader *r);
void imta_smtp_bdat_reader_feed(ImtaSmtpDataReader *r, const char *in, gsize len,
				GString *out);
/* After the LAST chunk: emit a CR still held. */
void imta_smtp_bdat_reader_finish(ImtaSmtpDataReader *r, GString *out);

/* Dot-stuff LF-terminated content for sending as DATA (client side):
 * appends to out with CR LF line ends and a leading '.' doubled.  Call
 * with final=TRUE at the end to add a missing line end and ".\r\n".
 * `state` starts at 0 and carries the line position between calls. */
void imta_smtp_data_encode(guint *state, const char *in, gsize len, gboolean final,
			   GString *out);

/* ---- trace ----------------------------------------------------------- */

typedef struct {
	const char *helo;           /* as the client said; NULL if none */
	const char *client_name;    /* reverse DNS name; NULL if unknown */
	const char *client_ip;
	const char *by_host;        /* this host */
	const char *protocol;       /* "SMTP", "ESMTP", "ESMTPS", "ESMTPSA", "LMTP"... */
	const char *tls;            /* imta_conn_tls_description(); NULL */
	const char *queue_id;       /* id of the new message */
	const char *for_address;    /* the recipient when there is exactly one */
	gint64 time;                /* seconds since the epoch */
} ImtaSmtpTrace;

/* A Received: header (RFC 5321 4.4), folded, LF line ends. */
char *imta_smtp_received_header(const ImtaSmtpTrace *trace);

/* RFC 5321 protocol name for the WITH clause (RFC 3848). */
const char *imta_smtp_protocol_name(gboolean esmtp, gboolean tls, gboolean auth,
				    gboolean lmtp);

/* Count the Received: headers of a message head (LF line ends), for
 * hop-count loop detection; stops at the blank line or at `max`+1. */
guint imta_smtp_count_received(const char *head, gsize len, guint max);

G_END_DECLS

#endif /* IMTA_SMTP_H */
