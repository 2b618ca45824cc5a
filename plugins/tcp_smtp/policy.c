/*
 * policy.c - the decisions of the SMTP server: source channel switching,
 * TLS and SASL requirements, size limits, the access mapping tables
 * (FROM_ACCESS, ORIG_SEND_ACCESS, ORIG_MAIL_ACCESS, SEND_ACCESS,
 * MAIL_ACCESS), relay protection, and recipient, VRFY and EXPN lookups in
 * the rewrite rules and the directory.
 */
#include "config.h"

#include <stdarg.h>
#include <string.h>
#include <gio/gio.h>

#include <imta/imta.h>
#include <imta/dns.h>

#include "policy.h"

/* Text from tables and the directory that goes into a reply is cut here. */
#define POLICY_TEXT_MAX 200

/* ---- verdicts ------------------------------------------------------- */

void
smtp_verdict_set(SmtpVerdict *verdict, guint code, const char *enhanced, const char *format, ...)
{
	va_list args;

	g_free(verdict->text);
	verdict->code = code;
	g_strlcpy(verdict->enhanced, enhanced != NULL ? enhanced : "", sizeof verdict->enhanced);
	va_start(args, format);
	verdict->text = g_strdup_vprintf(format, args);
	va_end(args);
}

void
smtp_verdict_clear(SmtpVerdict *verdict)
{
	g_clear_pointer(&verdict->text, g_free);
	verdict->code = 0;
	verdict->enhanced[0] = '\0';
}

/* Text from a table or the directory, safe for one reply line: printable
 * ASCII, bounded. */
static char *
policy_safe_text(const char *text)
{
	GString *out = g_string_new(NULL);

	for (const char *c = text; *c != '\0' && out->len < POLICY_TEXT_MAX; c++)
		g_string_append_c(out, (guchar)*c >= 0x20 && (guchar)*c < 0x7f ? *c : '?');
	return g_string_free(out, FALSE);
}

/* "4.7.1"-style: class digit, dot, 1-3 digits, dot, 1-3 digits. */
static gboolean
policy_is_enhanced(const char *s, gsize len)
{
	gsize i = 0, dots = 0, digits = 0;

	if (len < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return FALSE;
	for (i = 2, dots = 1; i < len; i++) {
		if (s[i] == '.') {
			if (digits == 0 || ++dots > 2)
				return FALSE;
			digits = 0;
		} else if (g_ascii_isdigit(s[i]) && ++digits <= 3) {
			continue;
		} else {
			return FALSE;
		}
	}
	return dots == 2 && digits > 0;
}

/* A refusal text from an access table.  Text that starts with a 4xx or
 * 5xx code (and optionally an enhanced code) is used as it is. */
static void
policy_refusal_text(SmtpVerdict *verdict, const char *text, guint code, const char *enhanced)
{
	g_autofree char *safe = policy_safe_text(text);
	const char *rest = safe, *space;
	gsize word;
	char buf[16];

	if ((safe[0] == '4' || safe[0] == '5') && g_ascii_isdigit(safe[1]) &&
	    g_ascii_isdigit(safe[2]) && (safe[3] == ' ' || safe[3] == '\0')) {
		code = (guint)(safe[0] - '0') * 100 + (guint)(safe[1] - '0') * 10 +
		       (guint)(safe[2] - '0');
		rest = safe[3] == ' ' ? safe + 4 : safe + 3;
		space = strchr(rest, ' ');
		word = space != NULL ? (gsize)(space - rest) : strlen(rest);
		if (policy_is_enhanced(rest, word) && rest[0] == safe[0]) {
			g_strlcpy(buf, rest, MIN(word + 1, sizeof buf));
			smtp_verdict_set(verdict, code, buf, "%s", space != NULL ? space + 1 : "");
			return;
		}
		enhanced = code >= 500 ? "5.7.1" : "4.7.1";
	}
	smtp_verdict_set(verdict, code, enhanced, "%s", rest);
}

/* ---- channels ---------------------------------------------------------- */

void
smtp_policy_init(SmtpPolicy *policy, const ImtaConfig *config, const ImtaChannel *service)
{
	policy->config = config;
	policy->service = service;
	policy->source = service;
}

/* A channel an SMTP session may take as its source: one of this plugin's
 * channels that allows switching to it. */
static gboolean
policy_switch_target_ok(const ImtaChannel *from, const ImtaChannel *to)
{
	return to != NULL && to != from && to->plugin != NULL && to->plugin == from->plugin &&
	       to->switchchannel != IMTA_SWITCH_NONE;
}

gboolean
smtp_policy_switch_to(SmtpPolicy *policy, const char *name, char **why_r)
{
	const ImtaChannel *to = imta_cnf_channel_by_name(policy->config->cnf, name);

	if (to == NULL) {
		*why_r = g_strdup_printf("there is no channel %s", name);
		return FALSE;
	}
	if (to == policy->source)
		return TRUE;
	if (!policy_switch_target_ok(policy->source, to)) {
		*why_r = g_strdup_printf("channel %s is not an SMTP channel that allows switching",
					 name);
		return FALSE;
	}
	policy->source = to;
	return TRUE;
}

gboolean
smtp_policy_tls_offered(const SmtpPolicy *policy)
{
	return policy->source->tls_server != IMTA_TLS_NONE;
}

gboolean
smtp_policy_tls_required(const SmtpPolicy *policy)
{
	return policy->source->tls_server == IMTA_TLS_MUST;
}

gboolean
smtp_policy_sasl_offered(const SmtpPolicy *policy)
{
	return policy->source->sasl_server != IMTA_SASL_NONE;
}

gboolean
smtp_policy_sasl_required(const SmtpPolicy *policy)
{
	return policy->source->sasl_server == IMTA_SASL_MUST;
}

gboolean
smtp_policy_default_relay_rule(const ImtaConfig *config)
{
	return config->mappings == NULL ||
	       (imta_mappings_table(config->mappings, "ORIG_SEND_ACCESS") == NULL &&
		imta_mappings_table(config->mappings, "SEND_ACCESS") == NULL);
}

static gint64
policy_blocks_to_bytes(const ImtaConfig *config, gint64 blocks)
{
	gint64 size = config->options != NULL ? config->options->block_size : 1024;

	if (blocks <= 0)
		return 0;
	if (blocks > G_MAXINT64 / size)
		return G_MAXINT64;
	return blocks * size;
}

static gint64
policy_min_limit(gint64 a, gint64 b)
{
	if (a == 0)
		return b;
	if (b == 0)
		return a;
	return MIN(a, b);
}

gint64
smtp_policy_message_limit(const SmtpPolicy *policy)
{
	const ImtaConfig *config = policy->config;
	gint64 global = config->options != NULL ? config->options->block_limit : 0;

	return policy_min_limit(policy_blocks_to_bytes(config, global),
				policy_blocks_to_bytes(config, policy->source->sourceblocklimit));
}

gint64
smtp_policy_channel_limit(const ImtaConfig *config, const ImtaChannel *channel)
{
	return policy_blocks_to_bytes(config, channel->blocklimit);
}

/* The keyword of `names` the channel carries, preferring its own over
 * inherited ones, later over earlier; -1 when none. */
static gint
policy_keyword_choice(const ImtaChannel *channel, const char *const *names)
{
	gint choice = -1;
	gboolean own = FALSE;

	for (guint i = 0; i < channel->keywords->len; i++) {
		const ImtaKeywordUse *use = channel->keywords->pdata[i];

		for (gint n = 0; names[n] != NULL; n++) {
			if (g_ascii_strcasecmp(use->name, names[n]) != 0)
				continue;
			if (own && use->inherited)
				continue;
			choice = n;
			own = !use->inherited;
		}
	}
	return choice;
}

SmtpVrfyMode
smtp_policy_vrfy_mode(const ImtaChannel *channel)
{
	static const char *const names[] = { "vrfydefault", "vrfyallow", "vrfyhide", NULL };
	gint choice = policy_keyword_choice(channel, names);

	return choice < 0 ? SMTP_VRFY_DEFAULT : (SmtpVrfyMode)choice;
}

SmtpExpnMode
smtp_policy_expn_mode(const ImtaChannel *channel)
{
	static const char *const names[] = { "expndefault", "expnallow", "expndisable", NULL };
	gint choice = policy_keyword_choice(channel, names);

	return choice < 0 ? SMTP_EXPN_DEFAULT : (SmtpExpnMode)choice;
}

/* ---- the resolver ------------------------------------------------------ */

static GMutex policy_lock;
static ImtaResolver *policy_resolver;
static gboolean policy_resolver_failed;

static ImtaResolver *
policy_get_resolver(const ImtaConfig *config, GPtrArray *log)
{
	ImtaResolver *resolver;

	g_mutex_lock(&policy_lock);
	if (policy_resolver == NULL && !policy_resolver_failed) {
		g_autoptr(GError) error = NULL;
		const ImtaOptionDat *od = config->options;

		policy_resolver = imta_resolver_new(od != NULL ? od->dns_servers : NULL,
						    od != NULL ? (guint)od->dns_timeout * 1000 : 0,
						    0, &error);
		if (policy_resolver == NULL) {
			policy_resolver_failed = TRUE;
			g_ptr_array_add(log, g_strdup_printf("no DNS lookups: %s",
							     error->message));
		}
	}
	resolver = policy_resolver;
	g_mutex_unlock(&policy_lock);
	return resolver;
}

void
smtp_policy_forget(void)
{
	g_mutex_lock(&policy_lock);
	g_clear_pointer(&policy_resolver, imta_resolver_free);
	policy_resolver_failed = FALSE;
	g_mutex_unlock(&policy_lock);
}

/* ---- the client: name and switchchannel ------------------------------ */

static gboolean
policy_same_address(const char *a, const char *b)
{
	g_autoptr(GInetAddress) x = g_inet_address_new_from_string(a);
	g_autoptr(GInetAddress) y = g_inet_address_new_from_string(b);

	return x != NULL && y != NULL && g_inet_address_equal(x, y);
}

/* The client's name, only when it resolves back to the client's address:
 * an unconfirmed PTR record is the client's claim, not a fact. */
static char *
policy_client_name(SmtpClientCheck *check)
{
	ImtaResolver *resolver = policy_get_resolver(check->config, check->log);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) addresses = NULL;
	g_autofree char *name = NULL;

	if (resolver == NULL)
		return NULL;
	if (imta_dns_lookup_ptr(resolver, check->client_ip, &name, &error) != IMTA_DNS_OK) {
		if (error != NULL)
			g_ptr_array_add(check->log, g_strdup_printf("no name for %s: %s",
								    check->client_ip,
								    error->message));
		return NULL;
	}
	if (imta_dns_lookup_addresses(resolver, name, &addresses, &error) != IMTA_DNS_OK) {
		g_ptr_array_add(check->log, g_strdup_printf("name %s of %s does not resolve%s%s",
							    name, check->client_ip,
							    error != NULL ? ": " : "",
							    error != NULL ? error->message : ""));
		return NULL;
	}
	for (guint i = 0; i < addresses->len; i++)
		if (policy_same_address(addresses->pdata[i], check->client_ip))
			return g_steal_pointer(&name);
	g_ptr_array_add(check->log, g_strdup_printf("name %s does not resolve back to %s", name,
						    check->client_ip));
	return NULL;
}

/* Rewrite postmaster@HOST as a backward-pointing envelope address from
 * the service's channel, the way switchchannel asks the rules where a
 * client belongs. */
static const ImtaChannel *
policy_channel_of_host(SmtpClientCheck *check, const char *host)
{
	const ImtaConfig *config = check->config;
	g_autofree char *address = g_strdup_printf("postmaster@%s", host);
	g_autoptr(GError) error = NULL;
	ImtaRewriteResult result = { 0 };
	const ImtaChannel *channel;
	ImtaRewriteContext ctx = {
		.cnf = config->cnf,
		.mappings = config->mappings,
		.directory = config->directory,
		.source_channel = check->service->name,
		.flags = IMTA_REWRITE_ENVELOPE,
	};

	if (!imta_rewrite_address(&ctx, address, &result, &error)) {
		g_ptr_array_add(check->log, g_strdup_printf("switchchannel: %s: %s", host,
							    error->message));
		return NULL;
	}
	channel = result.channel;
	imta_rewrite_result_clear(&result);
	return channel;
}

void
smtp_client_check_work(gpointer data)
{
	SmtpClientCheck *check = data;
	const ImtaChannel *to;
	g_autofree char *literal = NULL;

	if (check->want_name)
		check->client_name = policy_client_name(check);
	if (check->service->switchchannel != IMTA_SWITCH_SWITCH)
		return;
	literal = strchr(check->client_ip, ':') != NULL
			  ? g_strdup_printf("[IPv6:%s]", check->client_ip)
			  : g_strdup_printf("[%s]", check->client_ip);
	to = policy_channel_of_host(check, literal);
	if (!policy_switch_target_ok(check->service, to) && check->client_name != NULL &&
	    check->name_switches)
		to = policy_channel_of_host(check, check->client_name);
	if (policy_switch_target_ok(check->service, to))
		check->switch_to = to;
}

void
smtp_client_check_free(SmtpClientCheck *check)
{
	if (check == NULL)
		return;
	g_free(check->client_ip);
	g_free(check->client_name);
	g_ptr_array_unref(check->log);
	g_free(check);
}

/* ---- access mapping tables ------------------------------------------- */

/* Apply one access table; FALSE when it refused (verdict set).  The
 * $< and $> texts are added to `log`. */
static gboolean
policy_access(const ImtaConfig *config, const char *table, const char *probe,
	      SmtpVerdict *verdict, guint *flags_r, char **new_from_r, GPtrArray *log)
{
	ImtaMappingResult result = { 0 };
	gboolean refused;

	if (config->mappings == NULL)
		return TRUE;
	if (!imta_mappings_apply_named(config->mappings, table, probe, &result)) {
		imta_mapping_result_clear(&result);
		return TRUE;
	}
	refused = (result.flags & IMTA_MAP_FLAG_N) != 0;
	if ((result.flags & IMTA_MAP_FLAG_LOG_MATCH) && result.log_text != NULL)
		g_ptr_array_add(log, g_strdup_printf("%s: %s", table, result.log_text));
	if (refused && (result.flags & IMTA_MAP_FLAG_LOG_DENY)) {
		const char *text = result.log_deny_text != NULL ? result.log_deny_text
								: result.log_text;

		g_ptr_array_add(log, g_strdup_printf("%s denied %s%s%s", table, probe,
						     text != NULL ? ": " : "",
						     text != NULL ? text : ""));
	}
	if (flags_r != NULL)
		*flags_r |= result.flags;
	if (new_from_r != NULL && (result.flags & IMTA_MAP_FLAG_J) && result.from != NULL) {
		g_free(*new_from_r);
		*new_from_r = g_strdup(result.from);
	}
	if (refused) {
		gboolean specific = config->options != NULL && config->options->access_errors;

		if (result.result != NULL && result.result[0] != '\0')
			policy_refusal_text(verdict, result.result, 550, "5.7.1");
		else if (specific)
			smtp_verdict_set(verdict, 550, "5.7.1", "Not allowed");
		else
			smtp_verdict_set(verdict, 550, "5.1.1", "Invalid address");
	}
	imta_mapping_result_clear(&result);
	return !refused;
}

void
smtp_policy_check_sender(const SmtpPolicy *policy, const SmtpSenderProbe *probe,
			 SmtpVerdict *verdict, char **new_from_r, char **log_r)
{
	g_autoptr(GPtrArray) log = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *text = g_strdup_printf("%s|%s|MAIL|%s|%s|%s", probe->port_probe,
						probe->app_info, policy->source->name,
						probe->from, probe->auth_from);

	policy_access(policy->config, "FROM_ACCESS", text, verdict, NULL, new_from_r, log);
	if (log->len > 0) {
		g_ptr_array_add(log, NULL);
		*log_r = g_strjoinv("; ", (char **)log->pdata);
	}
}

static gboolean
policy_rcpt_access(SmtpRcptCheck *check)
{
	const ImtaConfig *config = check->config;
	gboolean orcpt = config->options != NULL && config->options->access_orcpt;
	g_autofree char *send = g_strdup_printf("%s|%s|%s|%s%s%s", check->source->name,
						check->from, check->channel->name,
						check->address, orcpt ? "|" : "",
						orcpt ? (check->orcpt != NULL ? check->orcpt
									      : check->rcpt)
						      : "");
	g_autofree char *mail = g_strdup_printf("%s|%s|MAIL|%s", check->port_probe,
						check->app_info, send);
	guint flags = 0;
	gboolean ok;

	ok = policy_access(config, "ORIG_SEND_ACCESS", send, &check->verdict, &flags, NULL,
			   check->log) &&
	     policy_access(config, "ORIG_MAIL_ACCESS", mail, &check->verdict, &flags, NULL,
			   check->log) &&
	     policy_access(config, "SEND_ACCESS", send, &check->verdict, &flags, NULL,
			   check->log) &&
	     policy_access(config, "MAIL_ACCESS", mail, &check->verdict, &flags, NULL, check->log);
	if (ok && (flags & IMTA_MAP_FLAG_V))
		check->discard_message = TRUE;
	if (ok && (flags & IMTA_MAP_FLAG_B))
		check->discard_recipient = TRUE;
	if (ok && (flags & IMTA_MAP_FLAG_H))
		g_ptr_array_add(check->log, g_strdup_printf("hold ($H) is not supported: %s is "
							    "queued normally", check->address));
	return ok;
}

/* ---- recipients -------------------------------------------------------- */

static void
policy_rewrite_failed(SmtpRcptCheck *check, const GError *error)
{
	g_autofree char *text = policy_safe_text(error->message);

	if (error->domain == IMTA_REWRITE_ERROR) {
		switch ((ImtaRewriteErrorCode)error->code) {
		case IMTA_REWRITE_ERROR_TEMPORARY:
			smtp_verdict_set(&check->verdict, 451, "4.4.3",
					 "<%s>: Temporary lookup failure; try again later",
					 check->rcpt);
			return;
		case IMTA_REWRITE_ERROR_LOOP:
			smtp_verdict_set(&check->verdict, 550, "5.4.6",
					 "<%s>: Recipient address rejected: routing loop",
					 check->rcpt);
			return;
		case IMTA_REWRITE_ERROR_TEMPLATE:
			smtp_verdict_set(&check->verdict, 451, "4.3.5",
					 "<%s>: Server configuration error; try again later",
					 check->rcpt);
			g_ptr_array_add(check->log, g_strdup(error->message));
			return;
		case IMTA_REWRITE_ERROR_UNROUTABLE:
			smtp_verdict_set(&check->verdict, 550, "5.1.2",
					 "<%s>: Recipient address rejected: %s", check->rcpt,
					 text);
			return;
		}
	}
	smtp_verdict_set(&check->verdict, 501, "5.1.3", "<%s>: Bad recipient address syntax",
			 check->rcpt);
}

static const char *
policy_domain_of(const char *address)
{
	const char *at = strrchr(address, '@');

	return at != NULL ? at + 1 : "";
}

static gboolean
policy_is_postmaster(const char *address)
{
	const char *at = strrchr(address, '@');
	gsize len = at != NULL ? (gsize)(at - address) : strlen(address);

	return len == 10 && g_ascii_strncasecmp(address, "postmaster", 10) == 0;
}

/* Is the destination this system's: the local channel, or a domain the
 * directory hosts?  FALSE with a 451 verdict when the directory failed. */
static gboolean
policy_destination_local(SmtpRcptCheck *check, gboolean *local_r)
{
	const ImtaConfig *config = check->config;
	g_autoptr(ImtaDirDomain) domain = NULL;
	g_autoptr(GError) error = NULL;
	ImtaDirStatus status;

	*local_r = check->channel == imta_cnf_local_channel(config->cnf);
	if (*local_r || config->directory == NULL)
		return TRUE;
	status = imta_directory_lookup_domain(config->directory, policy_domain_of(check->address),
					      &domain, &error);
	if (status == IMTA_DIR_TEMPFAIL) {
		smtp_verdict_set(&check->verdict, 451, "4.4.3",
				 "<%s>: Temporary directory failure; try again later", check->rcpt);
		g_ptr_array_add(check->log, g_strdup_printf("directory: %s", error->message));
		return FALSE;
	}
	*local_r = status == IMTA_DIR_FOUND;
	return TRUE;
}

static void
policy_check_relay(SmtpRcptCheck *check)
{
	gboolean local;

	if (check->relay_allowed || !smtp_policy_default_relay_rule(check->config))
		return;
	if (!policy_destination_local(check, &local) || local)
		return;
	smtp_verdict_set(&check->verdict, 550, "5.7.1", "<%s>: Relaying denied", check->rcpt);
}

/* A recipient of the local channel must be a user or group of the
 * directory, active or at least not gone. */
static void
policy_check_local_user(SmtpRcptCheck *check)
{
	const ImtaConfig *config = check->config;
	g_autoptr(ImtaDirEntry) entry = NULL;
	g_autoptr(GError) error = NULL;
	ImtaDirStatus status;

	if (check->channel != imta_cnf_local_channel(config->cnf) ||
	    policy_is_postmaster(check->address))
		return;
	if (config->directory == NULL) {
		smtp_verdict_set(&check->verdict, 451, "4.4.3",
				 "<%s>: Directory unavailable; try again later", check->rcpt);
		return;
	}
	status = imta_directory_lookup_local(config->directory, check->address, &entry, &error);
	if (status == IMTA_DIR_TEMPFAIL) {
		smtp_verdict_set(&check->verdict, 451, "4.4.3",
				 "<%s>: Temporary directory failure; try again later", check->rcpt);
		g_ptr_array_add(check->log, g_strdup_printf("directory: %s", error->message));
		return;
	}
	if (status == IMTA_DIR_NOT_FOUND || entry->status == IMTA_DIR_STATUS_DELETED ||
	    entry->status == IMTA_DIR_STATUS_DISABLED) {
		smtp_verdict_set(&check->verdict, 550, "5.1.1",
				 "<%s>: Recipient address rejected: User unknown", check->rcpt);
		return;
	}
	if (entry->status == IMTA_DIR_STATUS_INACTIVE)
		smtp_verdict_set(&check->verdict, 450, "4.2.1",
				 "<%s>: Recipient address rejected: Mailbox temporarily disabled",
				 check->rcpt);
}

static void
policy_check_size(SmtpRcptCheck *check)
{
	gint64 limit = smtp_policy_channel_limit(check->config, check->channel);

	if (limit > 0 && check->declared_size > limit)
		smtp_verdict_set(&check->verdict, 552, "5.3.4",
				 "<%s>: Message size exceeds fixed limit of %" G_GINT64_FORMAT
				 " bytes for this recipient", check->rcpt, limit);
}

void
smtp_rcpt_check_work(gpointer data)
{
	SmtpRcptCheck *check = data;
	const ImtaConfig *config = check->config;
	g_autoptr(GError) error = NULL;
	ImtaRewriteResult result = { 0 };
	ImtaRewriteContext ctx = {
		.cnf = config->cnf,
		.mappings = config->mappings,
		.directory = config->directory,
		.source_channel = check->source->name,
		.flags = IMTA_REWRITE_ENVELOPE | IMTA_REWRITE_FORWARD,
	};

	if (!imta_rewrite_address(&ctx, check->rcpt, &result, &error)) {
		policy_rewrite_failed(check, error);
		return;
	}
	check->channel = result.channel;
	check->address = g_steal_pointer(&result.address);
	imta_rewrite_result_clear(&result);
	if (check->channel == NULL) {
		smtp_verdict_set(&check->verdict, 550, "5.1.2",
				 "<%s>: Recipient address rejected: unroutable address",
				 check->rcpt);
		return;
	}
	if (!policy_rcpt_access(check))
		return;
	policy_check_relay(check);
	if (check->verdict.code == 0)
		policy_check_local_user(check);
	if (check->verdict.code == 0)
		policy_check_size(check);
}

void
smtp_rcpt_check_free(SmtpRcptCheck *check)
{
	if (check == NULL)
		return;
	g_free(check->port_probe);
	g_free(check->app_info);
	g_free(check->from);
	g_free(check->rcpt);
	g_free(check->orcpt);
	g_free(check->address);
	smtp_verdict_clear(&check->verdict);
	g_ptr_array_unref(check->log);
	g_free(check);
}

/* ---- VRFY and EXPN ------------------------------------------------------- */

/* "Name <address>" for a reply, the name left out unless plain ASCII. */
static char *
policy_entry_line(const ImtaDirEntry *entry, const char *fallback)
{
	const char *mail = entry->mail != NULL ? entry->mail : fallback;
	gboolean plain = entry->cn != NULL && entry->cn[0] != '\0' && strlen(entry->cn) < 100;

	for (const char *c = plain ? entry->cn : ""; *c != '\0'; c++)
		if ((guchar)*c < 0x20 || (guchar)*c > 0x7e || *c == '<' || *c == '>')
			plain = FALSE;
	return plain ? g_strdup_printf("%s <%s>", entry->cn, mail) : g_strdup_printf("<%s>", mail);
}

static void
policy_expand(SmtpLookup *lookup, const ImtaDirEntry *group, const char *address)
{
	g_autoptr(GPtrArray) members = NULL;
	g_autoptr(GError) error = NULL;
	ImtaDirStatus status;
	GString *text;

	status = imta_directory_expand_group(lookup->config->directory, group, lookup->limit,
					     &members, &error);
	if (status == IMTA_DIR_TEMPFAIL) {
		smtp_verdict_set(&lookup->verdict, 451, "4.4.3",
				 "<%s>: Temporary directory failure; try again later", address);
		return;
	}
	if (status != IMTA_DIR_FOUND) {
		smtp_verdict_set(&lookup->verdict, 550, "5.7.1",
				 "<%s>: List cannot be expanded (more than %u members, or broken)",
				 address, lookup->limit);
		return;
	}
	if (members->len == 0) {
		smtp_verdict_set(&lookup->verdict, 550, "5.1.1", "<%s>: List has no members",
				 address);
		return;
	}
	text = g_string_new(NULL);
	for (guint i = 0; i < members->len; i++) {
		g_autofree char *safe = policy_safe_text(members->pdata[i]);

		g_string_append_printf(text, "%s<%s>", i > 0 ? "\n" : "", safe);
	}
	smtp_verdict_set(&lookup->verdict, 250, "2.1.5", "%s", text->str);
	g_string_free(text, TRUE);
}

static void
policy_lookup_entry(SmtpLookup *lookup, const char *original, const char *address)
{
	g_autoptr(ImtaDirEntry) entry = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *line = NULL;
	ImtaDirStatus status;

	if (lookup->config->directory == NULL) {
		smtp_verdict_set(&lookup->verdict, 451, "4.4.3",
				 "<%s>: Directory unavailable; try again later", original);
		return;
	}
	status = imta_directory_lookup_address(lookup->config->directory, address, &entry, &error);
	if (status == IMTA_DIR_TEMPFAIL) {
		smtp_verdict_set(&lookup->verdict, 451, "4.4.3",
				 "<%s>: Temporary directory failure; try again later", original);
		return;
	}
	if (status == IMTA_DIR_NOT_FOUND || entry->status == IMTA_DIR_STATUS_DELETED ||
	    entry->status == IMTA_DIR_STATUS_DISABLED) {
		smtp_verdict_set(&lookup->verdict, 550, "5.1.1",
				 "<%s>: Recipient address rejected: User unknown", original);
		return;
	}
	if (lookup->expand && entry->kind == IMTA_DIR_GROUP) {
		policy_expand(lookup, entry, original);
		return;
	}
	line = policy_entry_line(entry, address);
	smtp_verdict_set(&lookup->verdict, 250, "2.1.5", "%s", line);
}

void
smtp_lookup_work(gpointer data)
{
	SmtpLookup *lookup = data;
	const ImtaConfig *config = lookup->config;
	g_autofree char *bare = NULL;
	g_autoptr(ImtaAddress) parsed = NULL;
	g_autoptr(GError) error = NULL;
	ImtaRewriteResult result = { 0 };
	ImtaRewriteContext ctx = {
		.cnf = config->cnf,
		.mappings = config->mappings,
		.directory = config->directory,
		.source_channel = lookup->source->name,
		.flags = IMTA_REWRITE_ENVELOPE | IMTA_REWRITE_FORWARD,
	};
	gsize len;

	bare = g_strstrip(g_strdup(lookup->argument));
	len = strlen(bare);
	if (len >= 2 && bare[0] == '<' && bare[len - 1] == '>') {
		memmove(bare, bare + 1, len - 2);
		bare[len - 2] = '\0';
	}
	parsed = imta_address_parse(bare, -1, 0, &error);
	if (parsed == NULL) {
		smtp_verdict_set(&lookup->verdict, 501, "5.1.3", "Bad address syntax");
		return;
	}
	if (parsed->domain == NULL) {
		smtp_verdict_set(&lookup->verdict, 252, "2.5.2",
				 "Cannot VRFY a name; give a full address");
		return;
	}
	if (!imta_rewrite_address(&ctx, bare, &result, &error)) {
		if (g_error_matches(error, IMTA_REWRITE_ERROR, IMTA_REWRITE_ERROR_TEMPORARY))
			smtp_verdict_set(&lookup->verdict, 451, "4.4.3",
					 "<%s>: Temporary lookup failure; try again later", bare);
		else
			smtp_verdict_set(&lookup->verdict, 550, "5.1.2",
					 "<%s>: Recipient address rejected: unroutable address",
					 bare);
		return;
	}
	if (result.channel != imta_cnf_local_channel(config->cnf))
		smtp_verdict_set(&lookup->verdict, 252, "2.1.5",
				 "<%s>: Cannot verify a remote address; send mail to try delivery",
				 bare);
	else
		policy_lookup_entry(lookup, bare, result.address);
	imta_rewrite_result_clear(&result);
}

void
smtp_lookup_free(SmtpLookup *lookup)
{
	if (lookup == NULL)
		return;
	g_free(lookup->argument);
	smtp_verdict_clear(&lookup->verdict);
	g_free(lookup);
}
