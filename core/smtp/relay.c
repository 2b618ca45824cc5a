/*
 * relay.c - one message's recipients for one destination over its next
 * hops, for the SMTP and LMTP clients (smtp_relay.h).  Each hop is tried in turn until every recipient has a final
 * answer or a temporary one from a hop that spoke: a hop that cannot be
 * reached or refuses the session passes the still-pending recipients on
 * to the next; a lost connection after the final dot ends the attempt
 * (the message may have arrived: RFC 1047).
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include <imta/imta.h>
#include <imta/mime.h>
#include <imta/smtp_client.h>
#include <imta/smtp_relay.h>

/* ---- the meaning of replies ------------------------------------------ */

ImtaSmtpVerdict
imta_smtp_relay_step_verdict(ImtaSmtpStep step, guint code)
{
	if (code < 500 || code > 599)
		return IMTA_SMTP_VERDICT_NEXT_HOP;
	switch (step) {
	case IMTA_SMTP_STEP_GREETING:
		/* RFC 5321 3.8: this host does not want us; others may. */
		return IMTA_SMTP_VERDICT_NEXT_HOP_FAILED;
	case IMTA_SMTP_STEP_HELLO:
		return IMTA_SMTP_VERDICT_FAILED;
	case IMTA_SMTP_STEP_CONNECT:
	case IMTA_SMTP_STEP_TLS:
	default:
		return IMTA_SMTP_VERDICT_NEXT_HOP;
	}
}

ImtaSmtpVerdict
imta_smtp_relay_verdict(const ImtaSmtpSendResult *result, guint i, gboolean broken,
		       gboolean dsn)
{
	guint mail = result->mail.code;
	guint code = i < result->n_rcpts && result->rcpt != NULL ? result->rcpt[i].code : 0;

	if (mail >= 500 && mail <= 599)
		return IMTA_SMTP_VERDICT_FAILED;
	if (mail < 200 || mail > 299)
		return IMTA_SMTP_VERDICT_NEXT_HOP;
	if (code == 0)
		return broken && result->data_sent ? IMTA_SMTP_VERDICT_UNSURE
						   : IMTA_SMTP_VERDICT_NEXT_HOP;
	if (code >= 200 && code <= 299)
		return dsn ? IMTA_SMTP_VERDICT_RELAYED : IMTA_SMTP_VERDICT_DELIVERED;
	if (code >= 500 && code <= 599)
		return IMTA_SMTP_VERDICT_FAILED;
	return IMTA_SMTP_VERDICT_RETRY;
}

/* Does `text` start with an enhanced status code (RFC 3463 "X.Y.Z")? */
static gboolean
relay_has_enhanced(const char *text)
{
	guint subject = 0, detail = 0, i = 2;

	if ((text[0] != '2' && text[0] != '4' && text[0] != '5') || text[1] != '.')
		return FALSE;
	while (g_ascii_isdigit(text[i]) && subject < 4)
		i++, subject++;
	if (subject == 0 || subject > 3 || text[i++] != '.')
		return FALSE;
	while (g_ascii_isdigit(text[i]) && detail < 4)
		i++, detail++;
	return detail > 0 && detail <= 3 && (text[i] == '\0' || text[i] == ' ');
}

char *
imta_smtp_relay_reply_diagnostic(const char *peer, const ImtaSmtpReply *reply)
{
	const char *text = reply->text != NULL ? reply->text : "";
	g_autofree char *code = g_strdup_printf("%03u", reply->code);
	guint cls = reply->code / 100;

	/* The text may or may not repeat the code. */
	if (g_str_has_prefix(text, code) && (text[3] == ' ' || text[3] == '-' || text[3] == '\0'))
		text += text[3] == '\0' ? 3 : 4;
	if (relay_has_enhanced(text))
		return g_strdup_printf("remote %s said: %s %s", peer, code, text);
	if (reply->enhanced[0] != '\0')
		return g_strdup_printf("remote %s said: %s %s %s", peer, code, reply->enhanced,
				       text);
	return g_strdup_printf("remote %s said: %s %u.0.0 %s", peer, code,
			       cls == 2 || cls == 4 || cls == 5 ? cls : 4, text);
}

char *
imta_smtp_relay_peer_text(const ImtaSmtpHop *hop)
{
	g_autofree char *where = hop->socket_path != NULL
					 ? g_strconcat("unix:", hop->socket_path, NULL)
					 : g_strdup(hop->address);

	if (hop->host == NULL)
		return g_strdup_printf("[%s]", where);
	return g_strdup_printf("%s [%s]", hop->host, where);
}

static guint16
relay_hop_port(const ImtaSmtpRelayConfig *config, const ImtaSmtpHop *hop)
{
	return hop->port != 0 ? hop->port : config->port;
}

/* ---- sessions -------------------------------------------------------- */

/* Why a hop could not be used, and what that means. */
typedef struct {
	ImtaSmtpVerdict verdict;
	char *reason;
	gboolean tls_fallback;   /* maytls: the handshake failed, try in clear */
} RelayFailure;

static void
relay_failure_set(RelayFailure *fail, ImtaSmtpVerdict verdict, char *reason)
{
	g_free(fail->reason);
	fail->verdict = verdict;
	fail->reason = reason;
}

/* RFC 1870 SIZE: the content as sent, every LF a CR LF. */
static gint64
relay_wire_size(GBytes *content)
{
	gsize len;
	const char *p = g_bytes_get_data(content, &len);
	const char *end = p + len;
	gint64 lines = 0;

	while (p < end && (p = memchr(p, '\n', end - p)) != NULL) {
		lines++;
		p++;
	}
	return (gint64)len + lines;
}

void
imta_smtp_relay_close(ImtaSmtpClient *c, const char *channel)
{
	guint n = imta_smtp_client_transactions(c);

	imta_log(IMTA_LOG_INFO, "%s: closing connection to %s after %u transaction%s", channel,
		 imta_smtp_client_peer_text(c), n, n == 1 ? "" : "s");
	imta_smtp_client_quit(c);
}

static void
relay_drop(ImtaSmtpClient *c, const char *channel, const char *why)
{
	imta_log(IMTA_LOG_INFO, "%s: connection to %s closed: %s", channel,
		 imta_smtp_client_peer_text(c), why);
	imta_smtp_client_free(c);
}

static char *
relay_cache_key(const ImtaSmtpRelayConfig *config, const ImtaSmtpHop *hop)
{
	if (hop->socket_path != NULL)
		return g_strdup_printf("unix:%s|%s|%d", hop->socket_path,
				       hop->host != NULL ? hop->host : "", (int)config->tls);
	return g_strdup_printf("%s|%u|%s|%d", hop->address, relay_hop_port(config, hop),
			       hop->host != NULL ? hop->host : "", (int)config->tls);
}

/* "4.4.2 PEER: what happened", naming the peer once. */
static char *
relay_error_reason(const char *status, const char *peer, const GError *error)
{
	const char *message = error != NULL ? error->message : "the session failed";

	if (strstr(message, peer) != NULL)
		return g_strdup_printf("%s %s", status, message);
	return g_strdup_printf("%s %s: %s", status, peer, message);
}

/* The reason for a refused or broken step: the reply when there is one. */
static char *
relay_step_reason(ImtaSmtpClient *c, const char *peer, const ImtaSmtpReply *reply,
		  const GError *error, const char *status)
{
	if (reply->code != 0)
		return c != NULL ? imta_smtp_client_diagnostic(c, reply)
				 : imta_smtp_relay_reply_diagnostic(peer, reply);
	return relay_error_reason(status, peer, error);
}

static gboolean
relay_starttls(const ImtaSmtpRelayConfig *config, ImtaSmtpClient *c, const char *peer,
	       RelayFailure *fail)
{
	ImtaSmtpReply reply = { 0 };
	g_autoptr(GError) error = NULL;
	gboolean ok;

	if (!imta_smtp_client_has(c, IMTA_SMTP_EXT_STARTTLS)) {
		if (config->tls != IMTA_TLS_MUST)
			return TRUE;
		relay_failure_set(fail, IMTA_SMTP_VERDICT_NEXT_HOP,
				  g_strdup_printf("4.7.4 TLS is required, but %s does not offer "
						  "STARTTLS", peer));
		return FALSE;
	}
	ok = imta_smtp_client_starttls(c, &config->tls_options, &reply, &error);
	imta_smtp_reply_clear(&reply);
	if (ok) {
		imta_log(IMTA_LOG_INFO, "%s: TLS established with %s", config->channel, peer);
		return TRUE;
	}
	relay_failure_set(fail, IMTA_SMTP_VERDICT_NEXT_HOP,
			  g_strdup_printf("4.7.5 TLS with %s failed: %s", peer,
					  error != NULL ? error->message : "STARTTLS refused"));
	fail->tls_fallback = config->tls == IMTA_TLS_MAY;
	return FALSE;
}

/* A new session with `hop`, EHLO done, TLS as the channel asks. */
static ImtaSmtpClient *
relay_connect(const ImtaSmtpRelayConfig *config, const ImtaSmtpHop *hop, gboolean try_tls,
	      RelayFailure *fail)
{
	g_autofree char *peer = imta_smtp_relay_peer_text(hop);
	ImtaSmtpClientPeer spec = {
		.host = hop->host, .address = hop->address, .port = relay_hop_port(config, hop),
		.bind_address = hop->socket_path == NULL ? config->bind_address : NULL,
		.helo_name = config->helo_name, .lmtp = config->lmtp,
		.timeouts = config->timeouts, .socket_path = hop->socket_path,
	};
	ImtaSmtpReply reply = { 0 };
	g_autoptr(GError) error = NULL;
	ImtaSmtpClient *c;
	gboolean ok;

	c = imta_smtp_client_connect(&spec, &reply, &error);
	if (c == NULL) {
		gboolean connected = error == NULL ||
				     !g_str_has_prefix(error->message, "cannot connect");

		relay_failure_set(fail, imta_smtp_relay_step_verdict(reply.code != 0
				  ? IMTA_SMTP_STEP_GREETING : IMTA_SMTP_STEP_CONNECT, reply.code),
				  relay_step_reason(NULL, peer, &reply, error,
						    connected ? "4.4.2" : "4.4.1"));
		imta_smtp_reply_clear(&reply);
		imta_log(IMTA_LOG_INFO, "%s: %s", config->channel, fail->reason);
		return NULL;
	}
	imta_smtp_reply_clear(&reply);
	if (hop->socket_path != NULL)
		imta_log(IMTA_LOG_INFO, "%s: connected to %s", config->channel, peer);
	else
		imta_log(IMTA_LOG_INFO, "%s: connected to %s:%u", config->channel, peer,
			 spec.port);
	ok = imta_smtp_client_hello(c, &reply, &error);
	if (!ok)
		relay_failure_set(fail, imta_smtp_relay_step_verdict(IMTA_SMTP_STEP_HELLO, reply.code),
				  relay_step_reason(c, peer, &reply, error, "4.4.2"));
	imta_smtp_reply_clear(&reply);
	if (!ok) {
		relay_drop(c, config->channel, fail->reason);
		return NULL;
	}
	if (try_tls && !relay_starttls(config, c, peer, fail)) {
		relay_drop(c, config->channel, fail->reason);
		return NULL;
	}
	return c;
}

/* A session for `hop`: an idle cached one, else a new one; with maytls
 * a failed handshake is followed by a session in clear (RFC 3207 leaves
 * nothing else after a failed handshake on the same connection). */
static ImtaSmtpClient *
relay_open(const ImtaSmtpRelayConfig *config, const ImtaSmtpHop *hop, const char *key,
	   RelayFailure *fail)
{
	ImtaSmtpClient *c = NULL;
	gboolean try_tls;

	if (config->cache != NULL && (c = imta_smtp_cache_take(config->cache, key)) != NULL) {
		imta_log(IMTA_LOG_INFO, "%s: reusing connection to %s (transaction %u)",
			 config->channel, imta_smtp_client_peer_text(c),
			 imta_smtp_client_transactions(c) + 1);
		return c;
	}
	try_tls = config->tls == IMTA_TLS_MUST ||
		  (config->tls == IMTA_TLS_MAY &&
		   (config->cache == NULL || !imta_smtp_cache_tls_failed(config->cache, key)));
	c = relay_connect(config, hop, try_tls, fail);
	if (c != NULL || !fail->tls_fallback)
		return c;
	if (config->cache != NULL)
		imta_smtp_cache_note_tls_failed(config->cache, key);
	imta_log(IMTA_LOG_WARNING, "%s: %s; trying again without TLS", config->channel,
		 fail->reason);
	fail->tls_fallback = FALSE;
	return relay_connect(config, hop, FALSE, fail);
}

static void
relay_keep(const ImtaSmtpRelayConfig *config, const char *key, ImtaSmtpClient *c)
{
	if (config->cache != NULL && imta_smtp_client_reusable(c, config->max_transactions))
		imta_smtp_cache_give(config->cache, key, c);
	else
		imta_smtp_relay_close(c, config->channel);
}

/* ---- one hop --------------------------------------------------------- */

static void
relay_decide(ImtaSmtpRcptResult *result, ImtaOutcome outcome, gboolean relayed, char *diagnostic)
{
	result->outcome = outcome;
	result->relayed = relayed;
	g_free(result->diagnostic);
	result->diagnostic = diagnostic;
}

/* The content this hop gets, or NULL with the reason it gets none. */
static GBytes *
relay_choose_content(const ImtaSmtpRelayConfig *config, ImtaSmtpRelayMessage *message,
		     ImtaSmtpClient *c, gboolean *eight_bit_r, char **reason_r)
{
	gboolean offered = imta_smtp_client_has(c, IMTA_SMTP_EXT_8BITMIME);
	gsize len;
	const char *data;

	*eight_bit_r = FALSE;
	*reason_r = NULL;
	if (!message->eight_bit)
		return g_bytes_ref(message->content);
	if (offered && config->eightbit != IMTA_EIGHT_SEVENBIT) {
		*eight_bit_r = TRUE;
		return g_bytes_ref(message->content);
	}
	if (config->eightbit == IMTA_EIGHT_STRICT) {
		*reason_r = g_strdup_printf("5.6.3 %s does not offer 8BITMIME, and the channel "
					    "(eightstrict) does not convert 8-bit content",
					    imta_smtp_client_peer_text(c));
		return NULL;
	}
	if (message->seven_bit == NULL) {
		data = g_bytes_get_data(message->content, &len);
		message->seven_bit = imta_mime_downgrade_7bit(data != NULL ? data : "", len);
		if (message->seven_bit == NULL)
			message->seven_bit = g_bytes_ref(message->content);
	}
	return g_bytes_ref(message->seven_bit);
}

static void
relay_log_transaction(const ImtaSmtpRelayConfig *config, const ImtaSmtpRelayMessage *message,
		      ImtaSmtpClient *c, const ImtaSmtpRcptResult *results, const GArray *sent,
		      gboolean eight_bit, gsize size)
{
	guint counts[4] = { 0 };

	for (guint k = 0; k < sent->len; k++)
		counts[results[g_array_index(sent, guint, k)].outcome]++;
	imta_log(IMTA_LOG_INFO, "%s: message %s to %s%s: %u sent, %u delivered, %u failed, "
		 "%u deferred, %u left for another host, %" G_GSIZE_FORMAT " bytes%s",
		 config->channel, imta_message_id(message->msg), imta_smtp_client_peer_text(c),
		 imta_smtp_client_is_tls(c) ? " (TLS)" : "", sent->len,
		 counts[IMTA_OUTCOME_DELIVERED], counts[IMTA_OUTCOME_FAILED],
		 counts[IMTA_OUTCOME_RETRY], counts[IMTA_OUTCOME_NONE], size,
		 eight_bit ? ", 8BITMIME" : "");
}

/* The transaction for the recipients of `pending` (positions into rcpts
 * and results); those decided leave `pending`.  Returns FALSE when the
 * attempt must stop here (the rest were decided together). */
static gboolean
relay_transaction(const ImtaSmtpRelayConfig *config, ImtaSmtpRelayMessage *message,
		  ImtaSmtpClient *c, const guint *rcpts, GArray *pending,
		  ImtaSmtpRcptResult *results, RelayFailure *fail, gboolean *keep_r)
{
	g_autoptr(GArray) indices = g_array_sized_new(FALSE, FALSE, sizeof(guint), pending->len);
	g_autoptr(GArray) sent = g_array_copy(pending);
	g_autoptr(GInputStream) stream = NULL;
	g_autoptr(GBytes) content = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *reason = NULL;
	ImtaSmtpSendResult result = { 0 };
	gboolean eight_bit, ok, dsn = imta_smtp_client_has(c, IMTA_SMTP_EXT_DSN);
	guint64 limit = imta_smtp_client_max_size(c);
	gsize size;

	*keep_r = TRUE;
	content = relay_choose_content(config, message, c, &eight_bit, &reason);
	if (content == NULL) {
		relay_failure_set(fail, IMTA_SMTP_VERDICT_FAILED, g_steal_pointer(&reason));
		return FALSE;
	}
	size = g_bytes_get_size(content);
	/* RFC 1870: a message the hop has said it will not take. */
	if (limit > 0 && size > limit) {
		relay_failure_set(fail, IMTA_SMTP_VERDICT_FAILED,
				  g_strdup_printf("5.3.4 message size %" G_GSIZE_FORMAT " exceeds "
						  "the limit of %" G_GUINT64_FORMAT " bytes of %s",
						  size, limit, imta_smtp_client_peer_text(c)));
		return FALSE;
	}
	for (guint k = 0; k < pending->len; k++)
		g_array_append_val(indices, rcpts[g_array_index(pending, guint, k)]);
	stream = g_memory_input_stream_new_from_bytes(content);
	ok = imta_smtp_client_send_sized(c, message->msg, (const guint *)(gpointer)indices->data,
					 indices->len, stream, relay_wire_size(content), eight_bit,
					 &result, &error);
	g_array_set_size(pending, 0);
	for (guint k = 0; k < sent->len; k++) {
		guint pos = g_array_index(sent, guint, k);
		ImtaSmtpVerdict verdict = imta_smtp_relay_verdict(&result, k, !ok, dsn);
		const ImtaSmtpReply *reply = &result.mail;

		if (result.mail.code >= 200 && result.mail.code <= 299 && result.rcpt != NULL &&
		    k < result.n_rcpts)
			reply = &result.rcpt[k];

		switch (verdict) {
		case IMTA_SMTP_VERDICT_DELIVERED:
		case IMTA_SMTP_VERDICT_RELAYED:
			relay_decide(&results[pos], IMTA_OUTCOME_DELIVERED,
				     verdict == IMTA_SMTP_VERDICT_RELAYED,
				     imta_smtp_client_diagnostic(c, reply));
			break;
		case IMTA_SMTP_VERDICT_FAILED:
			relay_decide(&results[pos], IMTA_OUTCOME_FAILED, FALSE,
				     imta_smtp_client_diagnostic(c, reply));
			break;
		case IMTA_SMTP_VERDICT_UNSURE:
			relay_decide(&results[pos], IMTA_OUTCOME_RETRY, FALSE,
				     g_strdup_printf("4.4.2 %s: no reply after the end of the "
						     "message was sent (%s); it may have arrived, "
						     "and sending it again later can duplicate it "
						     "(RFC 1047)", imta_smtp_client_peer_text(c),
						     error != NULL ? error->message
								   : "connection lost"));
			break;
		case IMTA_SMTP_VERDICT_RETRY:
			relay_decide(&results[pos], IMTA_OUTCOME_RETRY, FALSE,
				     imta_smtp_client_diagnostic(c, reply));
			break;
		default:
			g_array_append_val(pending, pos);
			break;
		}
	}
	if (pending->len > 0)
		relay_failure_set(fail, IMTA_SMTP_VERDICT_NEXT_HOP,
				  result.mail.code != 0
				  ? imta_smtp_client_diagnostic(c, &result.mail)
				  : relay_error_reason("4.4.2", imta_smtp_client_peer_text(c), error));
	relay_log_transaction(config, message, c, results, sent, eight_bit, size);
	imta_smtp_send_result_clear(&result);
	if (!ok)
		*keep_r = FALSE;
	return TRUE;
}

/* ---- the attempt ----------------------------------------------------- */

static void
relay_decide_pending(GArray *pending, ImtaSmtpRcptResult *results, ImtaOutcome outcome,
		     const char *diagnostic)
{
	for (guint k = 0; k < pending->len; k++)
		relay_decide(&results[g_array_index(pending, guint, k)], outcome, FALSE,
			     g_strdup(diagnostic));
	g_array_set_size(pending, 0);
}

/* Try one hop; FALSE when the attempt is over for the recipients left. */
static gboolean
relay_hop(const ImtaSmtpRelayConfig *config, ImtaSmtpRelayMessage *message, const ImtaSmtpHop *hop,
	  const guint *rcpts, GArray *pending, ImtaSmtpRcptResult *results, RelayFailure *fail)
{
	g_autofree char *key = relay_cache_key(config, hop);
	ImtaSmtpClient *c = relay_open(config, hop, key, fail);
	gboolean keep, go_on;

	if (c == NULL)
		return fail->verdict != IMTA_SMTP_VERDICT_FAILED;
	go_on = relay_transaction(config, message, c, rcpts, pending, results, fail, &keep);
	if (keep)
		relay_keep(config, key, c);
	else
		relay_drop(c, config->channel, fail->reason != NULL ? fail->reason : "broken");
	return go_on;
}

void
imta_smtp_relay_deliver(const ImtaSmtpRelayConfig *config, ImtaSmtpRelayMessage *message,
		       const guint *rcpts, guint n, const ImtaSmtpRoute *route,
		       ImtaSmtpRcptResult *results)
{
	g_autoptr(GArray) pending = g_array_sized_new(FALSE, FALSE, sizeof(guint), n);
	RelayFailure fail = { IMTA_SMTP_VERDICT_NEXT_HOP, NULL, FALSE };

	for (guint k = 0; k < n; k++)
		g_array_append_val(pending, k);
	if (route->hops->len == 0) {
		relay_decide_pending(pending, results, route->outcome != IMTA_OUTCOME_NONE
				     ? route->outcome : IMTA_OUTCOME_RETRY,
				     route->diagnostic != NULL ? route->diagnostic
							       : "4.4.4 no next hop");
		return;
	}
	for (guint h = 0; h < route->hops->len && pending->len > 0; h++) {
		g_clear_pointer(&fail.reason, g_free);
		fail.verdict = IMTA_SMTP_VERDICT_NEXT_HOP;
		if (!relay_hop(config, message, route->hops->pdata[h], rcpts, pending, results,
			       &fail))
			break;
	}
	if (pending->len > 0)
		relay_decide_pending(pending, results,
				     fail.verdict == IMTA_SMTP_VERDICT_FAILED ||
				     fail.verdict == IMTA_SMTP_VERDICT_NEXT_HOP_FAILED
				     ? IMTA_OUTCOME_FAILED : IMTA_OUTCOME_RETRY,
				     fail.reason != NULL ? fail.reason : "4.4.1 no next hop answered");
	g_free(fail.reason);
}

void
imta_smtp_relay_report(ImtaMasterJob *job, ImtaMessage *msg, const guint *rcpts, guint n,
		       ImtaSmtpRcptResult *results)
{
	for (guint k = 0; k < n; k++) {
		if (results[k].relayed)
			imta_master_job_report_relayed(job, msg, rcpts[k], results[k].diagnostic);
		else
			imta_master_job_report(job, msg, rcpts[k], results[k].outcome,
					       results[k].diagnostic);
		g_clear_pointer(&results[k].diagnostic, g_free);
	}
}

/* ---- what the masters share of their setup --------------------------- */

ImtaSmtpTlsVerify
imta_smtp_relay_tls_verify(ImtaTlsMode mode, const char *value)
{
	if (value == NULL || value[0] == '\0')
		return mode == IMTA_TLS_MUST ? IMTA_SMTP_TLS_VERIFY_NAME : IMTA_SMTP_TLS_VERIFY_NONE;
	if (g_ascii_strcasecmp(value, "name") == 0)
		return IMTA_SMTP_TLS_VERIFY_NAME;
	if (g_ascii_strcasecmp(value, "chain") == 0)
		return IMTA_SMTP_TLS_VERIFY_CHAIN;
	return IMTA_SMTP_TLS_VERIFY_NONE;
}

char *
imta_smtp_relay_ca_file(const ImtaConfig *config, const char *value)
{
	if (value == NULL || value[0] == '\0')
		return NULL;
	if (g_path_is_absolute(value) || config->dir == NULL)
		return g_strdup(value);
	return g_build_filename(config->dir, value, NULL);
}

const char *
imta_smtp_relay_helo_name(const ImtaConfig *config)
{
	const ImtaChannel *local = config->cnf != NULL ? imta_cnf_local_channel(config->cnf) : NULL;
	const char *name = local != NULL ? imta_channel_official_host(local) : NULL;

	if (name != NULL)
		return name;
	if (config->tailor != NULL && config->tailor->hostname != NULL)
		return config->tailor->hostname;
	return g_get_host_name();
}

void
imta_smtp_relay_config_init(ImtaSmtpRelayConfig *relay, const ImtaConfig *config,
			    const ImtaChannel *channel, const char *tls_client_verify,
			    const char *ca_file)
{
	memset(relay, 0, sizeof *relay);
	relay->channel = channel->name;
	relay->helo_name = imta_smtp_relay_helo_name(config);
	relay->bind_address = channel->interface_address;
	relay->tls = channel->tls_client;
	relay->tls_options.verify = imta_smtp_relay_tls_verify(channel->tls_client,
							       tls_client_verify);
	relay->tls_options.ca_file = ca_file;
	relay->eightbit = channel->eightbit;
}

ImtaResolver *
imta_smtp_relay_resolver(const ImtaConfig *config, const ImtaChannel *channel)
{
	g_autoptr(GError) error = NULL;
	ImtaResolver *resolver = imta_resolver_new_from_options(config->options, &error);

	if (resolver == NULL)
		imta_log(IMTA_LOG_ERROR, "%s: %s", channel->name, error->message);
	return resolver;
}

const char *
imta_smtp_relay_tls_text(ImtaTlsMode mode)
{
	return mode == IMTA_TLS_MUST ? "required" : mode == IMTA_TLS_MAY ? "when offered" : "off";
}

void
imta_smtp_relay_log_done(const ImtaSmtpRelayConfig *relay, guint messages)
{
	guint reuses = relay->cache != NULL ? imta_smtp_cache_reuses(relay->cache) : 0;

	imta_log(IMTA_LOG_INFO, "%s: %s client done: %u message%s, %u connection reuse%s",
		 relay->channel, relay->lmtp ? "LMTP" : "SMTP", messages, messages == 1 ? "" : "s",
		 reuses, reuses == 1 ? "" : "s");
}
