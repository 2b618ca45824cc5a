/*
 * mappings_private.h - the compiled form of mapping entries, shared by the
 * file parser (mappings.c) and the matching engine (mapping_apply.c).
 *
 * Patterns and templates are compiled once at load time, so syntax errors
 * are reported with their position when the file is read and applying a
 * table never has to parse text.
 */
#ifndef IMTA_MAPPINGS_PRIVATE_H
#define IMTA_MAPPINGS_PRIVATE_H

#include <glib.h>
#include <imta/mappings.h>

/* Longest string a table is applied to, or that a template may produce
 * ($R loops such as "*  $0$0$R" would otherwise double a string until
 * memory runs out).  Longer strings never match. */
#define MAPPING_MAX_STRING 16384

/* Work allowed in one imta_mapping_apply() including nested $|...| calls:
 * one unit per entry tried, per matcher state and per 64 characters
 * scanned, about 10 to 30 ns each, so at most some 50 ms.  Beyond it the
 * apply ends with "no match".  A lookup in a table of twenty thousand
 * entries with a 1000-character probe takes a fifth of it; only
 * pathological patterns (back-references under many stars) reach it. */
#define MAPPING_MAX_WORK 2000000u

/* An IP literal in the input is at most this long ("ffff:...:255.255.255.255"). */
#define MAPPING_MAX_IP_TEXT 45

typedef enum {
	MAPPING_PAT_LITERAL,   /* a run of literal characters */
	MAPPING_PAT_STAR,      /* '*' */
	MAPPING_PAT_ONE,       /* '%' */
	MAPPING_PAT_BACKREF,   /* "$n*" */
	MAPPING_PAT_IP,        /* "$(address/bits)" */
} MappingPatKind;

typedef struct {
	MappingPatKind kind;
	gboolean lazy;          /* STAR preceded by "$_" */
	guint capture;          /* STAR, ONE, IP: its number; BACKREF: the one referred to */
	gint memo_row;          /* row of the failure memo for the state after this token, or -1 */
	guint16 deps;           /* bit k: the state after this token depends on capture k
				 * (assigned up to here, used by a later back-reference) */
	gboolean bump;          /* assigns a capture that a later back-reference reads */
	gsize lit_offset;       /* LITERAL: lower-cased text in MappingPattern.literals */
	gsize lit_length;
	gboolean v6;            /* IP: an IPv6 network (a dotted IPv4 address never matches) */
	guint8 net[16];         /* IP: network, IPv4 as ::ffff:a.b.c.d */
	guint bits;             /* IP: prefix length over the 128 bits above */
	gsize min_from;         /* fewest characters tokens from this one on can match */
	gboolean fixed_from;    /* tokens from this one on match a fixed length */
} MappingPatToken;

typedef struct {
	MappingPatToken *tokens;
	guint n_tokens;
	char *literals;
	guint n_captures;
	guint n_memo_rows;
} MappingPattern;

typedef enum {
	MAPPING_TPL_TEXT,      /* literal text */
	MAPPING_TPL_CAPTURE,   /* "$n" */
	MAPPING_TPL_CALL,      /* "$|table;argument|" */
} MappingTplKind;

typedef struct _MappingTplItem MappingTplItem;

typedef struct {
	MappingTplItem *items;
	guint n_items;
} MappingTplSeq;

struct _MappingTplItem {
	MappingTplKind kind;
	guint capture;               /* CAPTURE */
	char *text;                  /* TEXT: the text; CALL: the table name */
	gsize text_length;
	MappingTplSeq argument;      /* CALL */
	const ImtaMappingTable *table; /* CALL: resolved after loading; NULL = no such table */
};

typedef enum {
	MAPPING_CTL_C = 1 << 0,
	MAPPING_CTL_E = 1 << 1,
	MAPPING_CTL_L = 1 << 2,
	MAPPING_CTL_R = 1 << 3,
} MappingControl;

typedef struct {
	MappingTplSeq seq;
	guint flags;             /* ImtaMappingFlags */
	guint controls;          /* MappingControl */
	gboolean unsupported;    /* "$[...]", "$#...#", "$]...[" or "${...}": never matches */
} MappingTemplate;

typedef struct {
	char *pattern_text;
	char *template_text;
	ImtaSourcePos pos;
	MappingPattern pattern;
	MappingTemplate template;
} MappingEntry;

struct _ImtaMappingTable {
	char *name;
	ImtaSourcePos pos;
	GPtrArray *entries;      /* MappingEntry * */
};

struct _ImtaMappings {
	GPtrArray *tables;       /* ImtaMappingTable *, file order */
	GHashTable *by_name;     /* lower-cased name -> ImtaMappingTable * */
	GPtrArray *names;        /* const char *, NULL-terminated */
};

/* A problem found while compiling a pattern or template: the byte offset
 * in its text and what was expected. */
typedef struct {
	gsize offset;
	char *message;
} MappingDiag;

gboolean mapping_pattern_compile(const char *text, gsize length, MappingPattern *pattern_r,
				 MappingDiag *diag_r);
void mapping_pattern_clear(MappingPattern *pattern);

/* Warnings (MappingDiag, unsupported constructs, unknown flags) are
 * appended to `warnings`, which owns their messages. */
gboolean mapping_template_compile(const char *text, gsize length, guint n_captures,
				  MappingTemplate *template_r, GArray *warnings,
				  MappingDiag *diag_r);
void mapping_template_clear(MappingTemplate *template);

void mapping_diag_clear(MappingDiag *diag);

#endif
