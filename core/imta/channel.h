/*
 * channel.h - a channel of the channel host table (imta.cnf, part 2).
 *
 * A channel is a name, its keywords, and its host names; the first host
 * name is the official host name, also called the channel tag, which
 * rewrite templates use to route to the channel.  Core keywords are parsed
 * into the typed fields below by the declarative table in
 * core/config/channel_keywords.c; keywords registered by plugins are kept
 * verbatim in `keywords` and read with imta_channel_keyword().
 *
 * A channel is owned by the ImtaCnf that parsed it and is read-only
 * afterwards (shared by threads without locking).  Changing this struct
 * changes the plugin ABI: bump IMTA_PLUGIN_ABI_VERSION.
 */
#ifndef IMTA_CHANNEL_H
#define IMTA_CHANNEL_H

#include <glib.h>
#include <imta/error.h>

G_BEGIN_DECLS

typedef struct _ImtaPlugin ImtaPlugin; /* plugin.h */

/* One keyword as written (after `defaults` inheritance), lower-cased. */
typedef struct {
	char *name;
	GStrv args;          /* NULL-terminated, never NULL */
	ImtaSourcePos pos;
	ImtaSourcePos *arg_pos; /* one per argument */
	gboolean inherited;  /* came from a `defaults` block */
} ImtaKeywordUse;

/* One host-name line of a channel block. */
typedef struct {
	char *name;          /* the host name (a tag like "tcp-daemon") */
	char *extra;         /* second word: local alias (official line) or proper name */
	ImtaSourcePos pos;
} ImtaChannelHost;

typedef enum { IMTA_MX_DEFAULT, IMTA_MX_MX, IMTA_MX_NOMX, IMTA_MX_RANDOM, IMTA_MX_NONRANDOM } ImtaMxMode;
typedef enum { IMTA_COPIES_MULTIPLE, IMTA_COPIES_SINGLE, IMTA_COPIES_SINGLE_SYS } ImtaCopies;
typedef enum { IMTA_SWITCH_ALLOW, IMTA_SWITCH_NONE, IMTA_SWITCH_SWITCH } ImtaSwitchMode;
typedef enum { IMTA_SASL_NONE, IMTA_SASL_MAY, IMTA_SASL_MUST } ImtaSaslMode;
typedef enum { IMTA_TLS_NONE, IMTA_TLS_MAY, IMTA_TLS_MUST } ImtaTlsMode;
typedef enum { IMTA_DIRECTION_BIDIRECTIONAL, IMTA_DIRECTION_MASTER, IMTA_DIRECTION_SLAVE } ImtaDirection;
typedef enum { IMTA_EIGHT_NEGOTIATE, IMTA_EIGHT_SEVENBIT, IMTA_EIGHT_EIGHTBIT, IMTA_EIGHT_STRICT } ImtaEightBit;
typedef enum { IMTA_EXQUOTA_DEFAULT, IMTA_EXQUOTA_DELIVER, IMTA_EXQUOTA_HOLD, IMTA_EXQUOTA_BOUNCE } ImtaExquota;
/* sendpost / warnpost families: copies of notices to the postmaster. */
typedef enum { IMTA_POST_DEFAULT, IMTA_POST_ALWAYS, IMTA_POST_COPY, IMTA_POST_ERR, IMTA_POST_NEVER } ImtaPostCopy;

/* Message priorities; index into the backoff and notices arrays. */
typedef enum { IMTA_PRIORITY_URGENT, IMTA_PRIORITY_NORMAL, IMTA_PRIORITY_NONURGENT, IMTA_PRIORITY_COUNT } ImtaPriority;

#define IMTA_MAX_NOTICES 5

typedef struct {
	char *name;
	GPtrArray *hosts;      /* ImtaChannelHost *; [0] is the official host name */
	GPtrArray *keywords;   /* ImtaKeywordUse *, in file order, defaults first */
	ImtaSourcePos pos;     /* the channel name */
	const ImtaPlugin *plugin; /* bound plugin, or NULL (routing-only channel) */

	/* Protocol, addressing, routing. */
	ImtaMxMode mx;
	char *daemon;          /* smart host; NULL = none */
	gint port;             /* outgoing TCP port, default 25 */
	char *interface_address;
	ImtaCopies copies;
	gint addrsperfile;     /* 0 = no limit */
	gboolean reverse, rules, routelocal, bangoverpercent;

	/* Switching and security. */
	ImtaSwitchMode switchchannel;
	char *saslswitchchannel, *tlsswitchchannel;
	ImtaSaslMode sasl_server;
	ImtaTlsMode tls_server, tls_client;
	char *ident;           /* identnone, identtcp, ... as written; NULL = default */

	/* Queueing, jobs, scheduling. */
	gint subdirs;          /* 0 = no subdirectories */
	gint maxjobs;          /* default 1 */
	char *pool;            /* NULL = first pool of job_controller.cnf */
	gint threaddepth;      /* default 10 */
	gint filesperjob, addrsperjob;
	gboolean immnonurgent, deferred;
	ImtaDirection direction;
	/* Retry intervals in seconds (gint64): per priority from urgentbackoff,
	 * normalbackoff, nonurgentbackoff; for all priorities from backoff.
	 * The specific list wins; NULL = not set. */
	GArray *backoff[IMTA_PRIORITY_COUNT];
	GArray *backoff_any;
	/* Notice ages (days, or hours with RETURN_UNITS=1), same scheme;
	 * a count of 0 means not set. */
	gint notices[IMTA_PRIORITY_COUNT][IMTA_MAX_NOTICES];
	guint n_notices[IMTA_PRIORITY_COUNT];
	gint notices_any[IMTA_MAX_NOTICES];
	guint n_notices_any;

	/* Content and size. */
	gboolean defragment;
	char *charset7, *charset8, *charsetesc;
	ImtaEightBit eightbit;
	gint64 maxblocks, maxlines, blocklimit, linelimit, sourceblocklimit; /* 0 = none */

	/* Delivery, filters, diagnostics, postmaster. */
	ImtaExquota exquota;
	char *fileinto, *filter, *sourcefilter, *destinationfilter;
	gboolean master_debug, slave_debug, logging;
	ImtaPostCopy sendpost, warnpost;
	char *returnaddress;
	gboolean aliaspostmaster;
} ImtaChannel;

/* The official host name (channel tag). */
const char *imta_channel_official_host(const ImtaChannel *channel);

/* The arguments of keyword `name` (case-insensitive) as last given, or NULL
 * when the channel does not carry it.  Works for core and plugin keywords. */
const char *const *imta_channel_keyword(const ImtaChannel *channel, const char *name);
gboolean imta_channel_has_keyword(const ImtaChannel *channel, const char *name);

/* The core keyword `held`: messages queued to the channel are written as
 * held files (*.HELD, imta-queue(5)), which the job controller never
 * schedules, so they see no delivery attempt, retry or notice until
 * `imsimta qm release` or `imsimta qm reprocess` (the hold channel). */
#define IMTA_CHANNEL_KEYWORD_HELD "held"
gboolean imta_channel_holds_mail(const ImtaChannel *channel);

/* Retry interval in seconds after failed attempt number `attempt` (1 = the
 * first failure) for `priority`: the channel's priority-specific backoff
 * list, else its backoff list, else the documented default schedule; the
 * last interval repeats. */
gint64 imta_channel_backoff(const ImtaChannel *channel, ImtaPriority priority, guint attempt);

/* The channel's own notice ages for `priority` (specific, else general);
 * returns how many were copied into ages[IMTA_MAX_NOTICES], 0 = not set.
 * imta_cnf_notices() adds the fallback to the l channel and the built-in
 * list. */
guint imta_channel_notices(const ImtaChannel *channel, ImtaPriority priority,
			   gint ages[IMTA_MAX_NOTICES]);

G_END_DECLS

#endif
