/*
 * convert.c - the conversion channel's master: each message is walked
 * part by part (imta_mime_rewrite_parts); a part that an entry of the
 * conversions file matches is written decoded to a file, the entry's
 * program turns it into another file, and that is put back, re-encoded,
 * in place of the part.  The converted message is queued for the channel
 * the message was going to, and only then are its recipients reported
 * done.  A program that fails, writes nothing or runs out of time leaves
 * the message as it was: retried later or returned to its sender, as the
 * entry says; nothing is ever sent half converted.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "conversion.h"

/* Longest environment value taken from a message (descriptions, names). */
#define CONVERT_MAX_ENV_VALUE 256
/* Labels of the local host name walked up to find its directory domain. */
#define CONVERT_MAX_LABELS 16

typedef struct {
	ConvChannelJob *cj;
	const ImtaConversions *table;
	const char *in_chan;
	const char *out_chan;
	char *workdir;
	guint converted;
	ImtaConversionOnError on_error;   /* of the entry that failed */
} ConvertMessage;

/* A value from the message made safe for an environment variable. */
static char *
convert_env_value(const char *value)
{
	char *v = g_strndup(value != NULL ? value : "", CONVERT_MAX_ENV_VALUE);

	for (char *p = v; *p != '\0'; p++)
		if ((guchar) *p < 32 || (guchar) *p == 127)
			*p = ' ';
	return v;
}

static void
convert_env_add(GPtrArray *env, const char *name, const char *value)
{
	g_autofree char *v = NULL;

	if (value == NULL)
		return;
	v = convert_env_value(value);
	g_ptr_array_add(env, g_strconcat(name, "=", v, NULL));
}

static GStrv
convert_environment(const ConvertMessage *cm, const ImtaMimePart *part,
		    const ImtaConversionEntry *entry, const char *input, const char *output,
		    const char *options)
{
	GPtrArray *env = g_ptr_array_new();
	g_autofree char *number = g_strdup_printf("%u", part->number);

	convert_env_add(env, "PATH", IMTA_CONVERSION_PATH);
	convert_env_add(env, "LANG", "C");
	convert_env_add(env, "INPUT_FILE", input);
	convert_env_add(env, "OUTPUT_FILE", output);
	convert_env_add(env, "OUTPUT_OPTIONS", options);
	convert_env_add(env, "INPUT_TYPE", part->type);
	convert_env_add(env, "INPUT_SUBTYPE", part->subtype);
	convert_env_add(env, "INPUT_CHARSET", part->charset);
	convert_env_add(env, "INPUT_ENCODING", part->encoding);
	convert_env_add(env, "INPUT_DESCRIPTION", part->description);
	convert_env_add(env, "INPUT_DISPOSITION", part->disposition);
	convert_env_add(env, "INPUT_FILENAME", part->filename);
	convert_env_add(env, "OUTPUT_TYPE", entry->out_type != NULL ? entry->out_type : part->type);
	convert_env_add(env, "OUTPUT_SUBTYPE",
			entry->out_subtype != NULL ? entry->out_subtype : part->subtype);
	convert_env_add(env, "PART_NUMBER", number);
	convert_env_add(env, "IN_CHANNEL", cm->in_chan);
	convert_env_add(env, "OUT_CHANNEL", cm->out_chan);
	g_ptr_array_add(env, NULL);
	return (GStrv) g_ptr_array_free(env, FALSE);
}

typedef struct {
	char *type, *subtype, *charset;
} ConvertLabel;

static void
convert_label_clear(ConvertLabel *l)
{
	g_free(l->type);
	g_free(l->subtype);
	g_free(l->charset);
}

static gboolean
convert_is_token(const char *s)
{
	if (s[0] == '\0' || strlen(s) > 127)
		return FALSE;
	for (; *s != '\0'; s++)
		if ((guchar) *s <= 32 || (guchar) *s >= 127 || strchr("()<>@,;:\\\"/[]?=", *s))
			return FALSE;
	return TRUE;
}

/* OUTPUT_TYPE=, OUTPUT_SUBTYPE=, OUTPUT_CHARSET= lines the program may
 * write to the OUTPUT_OPTIONS file; anything else there is ignored. */
static void
convert_read_options(const char *path, ConvertLabel *label)
{
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;

	if (!g_file_get_contents(path, &text, NULL, NULL) || strlen(text) > 4096)
		return;
	lines = g_strsplit(text, "\n", 0);
	for (guint i = 0; lines[i] != NULL; i++) {
		char *eq = strchr(lines[i], '=');
		char **slot = NULL;

		if (eq == NULL)
			continue;
		*eq = '\0';
		g_strstrip(lines[i]);
		g_strstrip(eq + 1);
		if (g_ascii_strcasecmp(lines[i], "OUTPUT_TYPE") == 0)
			slot = &label->type;
		else if (g_ascii_strcasecmp(lines[i], "OUTPUT_SUBTYPE") == 0)
			slot = &label->subtype;
		else if (g_ascii_strcasecmp(lines[i], "OUTPUT_CHARSET") == 0)
			slot = &label->charset;
		if (slot != NULL && convert_is_token(eq + 1)) {
			g_free(*slot);
			*slot = g_strdup(eq + 1);
		}
	}
}

static char *
convert_content_type(const ImtaMimePart *part, const ImtaConversionEntry *entry,
		     const ConvertLabel *options)
{
	const char *type = options->type != NULL ? options->type
			   : entry->out_type != NULL ? entry->out_type : part->type;
	const char *subtype = options->subtype != NULL ? options->subtype
			      : entry->out_subtype != NULL ? entry->out_subtype : part->subtype;
	const char *charset = options->charset != NULL ? options->charset : entry->out_charset;

	/* Text stays in its charset unless told otherwise. */
	if (charset == NULL && g_ascii_strcasecmp(type, "text") == 0 &&
	    strcmp(part->type, "text") == 0)
		charset = part->charset;
	if (charset != NULL && g_ascii_strcasecmp(type, "text") == 0)
		return g_strdup_printf("%s/%s; charset=%s", type, subtype, charset);
	return g_strdup_printf("%s/%s", type, subtype);
}

static gboolean
convert_fail(ConvertMessage *cm, const ImtaConversionEntry *entry, const ImtaMimePart *part,
	     GError **error, const char *fmt, ...) G_GNUC_PRINTF(5, 6);

static gboolean
convert_fail(ConvertMessage *cm, const ImtaConversionEntry *entry, const ImtaMimePart *part,
	     GError **error, const char *fmt, ...)
{
	g_autofree char *where = imta_source_pos_format(&entry->pos);
	g_autofree char *why = NULL;
	va_list ap;

	va_start(ap, fmt);
	why = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	cm->on_error = entry->on_error;
	g_set_error(error, IMTA_MIME_ERROR, IMTA_MIME_ERROR_SYNTAX,
		    "part %u (%s/%s), conversions entry %s: %s", part->number, part->type,
		    part->subtype, where, why);
	return FALSE;
}

static gboolean
convert_relabel(const ImtaMimePart *part, const ImtaConversionEntry *entry,
		ImtaMimeAction *action_r, ImtaMimeChange *change)
{
	ConvertLabel none = { NULL, NULL, NULL };

	change->content_type = convert_content_type(part, entry, &none);
	*action_r = IMTA_MIME_RELABEL;
	return TRUE;
}

static gboolean
convert_part(const ImtaMimePart *part, ImtaMimeAction *action_r, ImtaMimeChange *change,
	     gpointer user_data, GError **error)
{
	ConvertMessage *cm = user_data;
	const ImtaConversionEntry *entry = imta_conversions_match(cm->table, cm->in_chan,
								  cm->out_chan, part);
	g_autofree char *input = NULL;
	g_autofree char *output = NULL;
	g_autofree char *options = NULL;
	g_auto(GStrv) argv = NULL;
	g_auto(GStrv) envp = NULL;
	g_autoptr(GError) local = NULL;
	g_autofree char *result = NULL;
	ConvertLabel label = { NULL, NULL, NULL };
	ConvRun run;
	gsize rlen = 0;
	gsize blen = 0;
	const char *body = g_bytes_get_data(part->body, &blen);
	GStatBuf st;

	if (entry == NULL)
		return TRUE;
	if (entry->relabel)
		return convert_relabel(part, entry, action_r, change);
	input = g_strdup_printf("%s/part%u.in", cm->workdir, part->number);
	output = g_strdup_printf("%s/part%u.out", cm->workdir, part->number);
	options = g_strdup_printf("%s/part%u.options", cm->workdir, part->number);
	if (!g_file_set_contents_full(input, body != NULL ? body : "", (gssize) blen,
				      G_FILE_SET_CONTENTS_NONE, 0600, &local))
		return convert_fail(cm, entry, part, error, "%s", local->message);
	argv = imta_conversion_argv(entry, input, output, &local);
	if (argv == NULL || argv[0] == NULL)
		return convert_fail(cm, entry, part, error, "%s",
				    local != NULL ? local->message : "the command is empty");
	envp = convert_environment(cm, part, entry, input, output, options);
	if (!conversion_run(argv, envp, cm->workdir, entry->timeout, &run, &local))
		return convert_fail(cm, entry, part, error, "%s", local->message);
	if (run.timed_out) {
		convert_fail(cm, entry, part, error, "%s killed after the time limit of %u s",
			     argv[0], entry->timeout);
	} else if (run.signalled) {
		convert_fail(cm, entry, part, error, "%s killed by signal %d%s%s", argv[0],
			     run.status, run.output[0] != '\0' ? ": " : "", run.output);
	} else if (run.status != 0) {
		convert_fail(cm, entry, part, error, "%s exited with status %d%s%s", argv[0],
			     run.status, run.output[0] != '\0' ? ": " : "", run.output);
	} else if (g_stat(output, &st) < 0 || st.st_size == 0) {
		convert_fail(cm, entry, part, error, "%s wrote no output", argv[0]);
	} else if (st.st_size > CONVERSION_MAX_OUTPUT) {
		convert_fail(cm, entry, part, error, "%s wrote more than %" G_GINT64_FORMAT
			     " bytes", argv[0], (gint64) CONVERSION_MAX_OUTPUT);
	} else if (!g_file_get_contents(output, &result, &rlen, &local)) {
		convert_fail(cm, entry, part, error, "%s", local->message);
	}
	conversion_run_clear(&run);
	g_unlink(input);
	g_unlink(output);
	if (result == NULL) {
		g_unlink(options);
		return FALSE;
	}
	convert_read_options(options, &label);
	g_unlink(options);
	change->content_type = convert_content_type(part, entry, &label);
	change->body = g_bytes_new_take(g_steal_pointer(&result), rlen);
	convert_label_clear(&label);
	*action_r = IMTA_MIME_REPLACE;
	cm->converted++;
	return TRUE;
}

/* Where each recipient goes after conversion. */
typedef struct {
	const ImtaChannel *channel;
	GArray *indices;              /* guint, recipients of msg */
	GPtrArray *addresses;         /* char *, one per index */
} ConvertGroup;

static void
convert_group_free(gpointer p)
{
	ConvertGroup *g = p;

	g_array_unref(g->indices);
	g_ptr_array_unref(g->addresses);
	g_free(g);
}

/* The domain this host's users are addressed in: the directory domain
 * closest to the local host name (mail.example.com -> example.com), the
 * one the message store names its users by; the host name itself when the
 * directory has none.  NULL when the directory could not answer. */
static char *
convert_local_domain(ConvChannelJob *cj, const char *host, GError **error)
{
	const char *p = host;

	for (guint i = 0; cj->config->directory != NULL && p != NULL && *p != '\0' &&
			  i < CONVERT_MAX_LABELS; i++) {
		g_autoptr(ImtaDirDomain) domain = NULL;
		g_autoptr(GError) local = NULL;

		switch (imta_directory_lookup_domain(cj->config->directory, p, &domain, &local)) {
		case IMTA_DIR_FOUND:
			return g_ascii_strdown(domain->canonical != NULL ? domain->canonical
								     : domain->name, -1);
		case IMTA_DIR_TEMPFAIL:
			g_propagate_error(error, g_steal_pointer(&local));
			return NULL;
		default:
			break;
		}
		p = strchr(p, '.');
		if (p != NULL)
			p++;
	}
	return g_strdup(host);
}

/* A recipient addressed to the conversion channel itself (user@conversion,
 * no onward channel recorded) is routed again as that user of this host. */
static const ImtaChannel *
convert_reroute(ConvChannelJob *cj, const char *address, char **rerouted_r,
		ImtaOutcome *outcome_r, char **why_r)
{
	const ImtaChannel *local = imta_cnf_local_channel(cj->config->cnf);
	const char *at = strrchr(address, '@');
	g_autofree char *user = g_strndup(address, at != NULL ? (gsize) (at - address)
							       : strlen(address));
	g_autofree char *target = NULL;
	g_autofree char *domain = NULL;
	g_autoptr(GError) error = NULL;
	ImtaRewriteResult result = { 0 };
	ImtaRewriteContext ctx = {
		.cnf = cj->config->cnf,
		.mappings = cj->config->mappings,
		.directory = cj->config->directory,
		.source_channel = cj->channel->name,
		.flags = IMTA_REWRITE_ENVELOPE | IMTA_REWRITE_FORWARD,
	};
	const ImtaChannel *channel = NULL;

	domain = convert_local_domain(cj, imta_channel_official_host(local), &error);
	if (domain == NULL) {
		*outcome_r = IMTA_OUTCOME_RETRY;
		*why_r = g_strdup_printf("4.4.3 the directory did not answer: %s", error->message);
		return NULL;
	}
	target = g_strdup_printf("%s@%s", user, domain);
	if (!imta_rewrite_address(&ctx, target, &result, &error)) {
		*outcome_r = g_error_matches(error, IMTA_REWRITE_ERROR, IMTA_REWRITE_ERROR_TEMPORARY)
				     ? IMTA_OUTCOME_RETRY : IMTA_OUTCOME_FAILED;
		*why_r = g_strdup_printf("%s %s does not route: %s",
					 *outcome_r == IMTA_OUTCOME_RETRY ? "4.4.3" : "5.1.2",
					 target, error->message);
	} else if (result.channel == NULL || result.channel == cj->channel) {
		*outcome_r = IMTA_OUTCOME_FAILED;
		*why_r = g_strdup_printf("5.1.2 %s does not route past this channel", target);
	} else {
		channel = result.channel;
		*rerouted_r = g_strdup(result.address);
	}
	imta_rewrite_result_clear(&result);
	return channel;
}

static GPtrArray *
convert_groups(ConvChannelJob *cj, ImtaMessage *msg)
{
	GPtrArray *groups = g_ptr_array_new_with_free_func(convert_group_free);
	const char *onward = imta_message_onward_channel(msg);
	const ImtaChannel *fixed = onward != NULL ? imta_cnf_channel_by_name(cj->config->cnf, onward)
					   : NULL;
	guint n = imta_message_recipient_count(msg);

	for (guint i = 0; i < n; i++) {
		const ImtaRecipient *rcpt = imta_message_recipient(msg, i);
		const ImtaChannel *channel = fixed;
		g_autofree char *address = NULL;
		g_autofree char *why = NULL;
		ImtaOutcome outcome = IMTA_OUTCOME_RETRY;
		ConvertGroup *group = NULL;

		if (onward != NULL && fixed == NULL) {
			why = g_strdup_printf("4.3.5 channel %s is not in imta.cnf", onward);
		} else if (onward == NULL) {
			channel = convert_reroute(cj, rcpt->address, &address, &outcome, &why);
		}
		if (channel == NULL) {
			imta_master_job_report(cj->job, msg, i, outcome, why);
			continue;
		}
		for (guint g = 0; g < groups->len && group == NULL; g++) {
			ConvertGroup *cand = g_ptr_array_index(groups, g);

			if (cand->channel == channel)
				group = cand;
		}
		if (group == NULL) {
			group = g_new0(ConvertGroup, 1);
			group->channel = channel;
			group->indices = g_array_new(FALSE, FALSE, sizeof(guint));
			group->addresses = g_ptr_array_new_with_free_func(g_free);
			g_ptr_array_add(groups, group);
		}
		g_array_append_val(group->indices, i);
		g_ptr_array_add(group->addresses, g_steal_pointer(&address));
	}
	return groups;
}

/* Whatever a converter left behind goes with the directory. */
static void
convert_remove_workdir(const char *dir)
{
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *name;

	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		g_autofree char *path = g_build_filename(dir, name, NULL);

		if (g_unlink(path) < 0 && errno != ENOENT)
			imta_log(IMTA_LOG_WARNING, "conversion: cannot remove %s: %s", path,
				 g_strerror(errno));
	}
	if (d != NULL)
		g_dir_close(d);
	if (g_rmdir(dir) < 0)
		imta_log(IMTA_LOG_WARNING, "conversion: cannot remove %s: %s", dir,
			 g_strerror(errno));
}

static void
convert_report_all(ConvChannelJob *cj, ImtaMessage *msg, const ConvertGroup *group,
		   ImtaOutcome outcome, const char *text)
{
	for (guint i = 0; i < group->indices->len; i++)
		imta_master_job_report(cj->job, msg, g_array_index(group->indices, guint, i),
				       outcome, text);
}

static void
convert_group(ConvChannelJob *cj, ImtaMessage *msg, GBytes *content,
	      const ImtaConversions *table, const ConvertGroup *group)
{
	ConvertMessage cm = {
		.cj = cj,
		.table = table,
		.in_chan = imta_message_source_channel(msg),
		.out_chan = group->channel->name,
		.on_error = IMTA_CONVERSION_DEFER,
	};
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) converted = NULL;
	g_autofree char *queued_id = NULL;
	g_autofree char *text = NULL;
	gsize len = 0;
	const char *data = g_bytes_get_data(content, &len);
	gboolean ok;

	cm.workdir = g_dir_make_tmp("imta-conversion-XXXXXX", &error);
	if (cm.workdir == NULL) {
		text = g_strdup_printf("4.3.0 no work directory: %s", error->message);
		convert_report_all(cj, msg, group, IMTA_OUTCOME_RETRY, text);
		return;
	}
	ok = imta_mime_rewrite_parts(data, len, convert_part, &cm, &converted, &error);
	convert_remove_workdir(cm.workdir);
	if (!ok) {
		gboolean back = cm.on_error == IMTA_CONVERSION_RETURN;

		text = g_strdup_printf("%s conversion failed: %s", back ? "5.6.5" : "4.6.5",
				       error->message);
		imta_log(IMTA_LOG_WARNING, "%s: message %s: %s", cj->channel->name,
			 imta_message_id(msg), text);
		convert_report_all(cj, msg, group, back ? IMTA_OUTCOME_FAILED : IMTA_OUTCOME_RETRY,
				   text);
		g_free(cm.workdir);
		return;
	}
	g_free(cm.workdir);
	if (!conversion_enqueue(cj, msg, converted != NULL ? converted : content, group->channel,
				group->indices, (char *const *) group->addresses->pdata,
				&queued_id, &error)) {
		text = g_strdup_printf("4.3.0 cannot queue the converted message for %s: %s",
				       group->channel->name, error->message);
		imta_log(IMTA_LOG_ERROR, "%s: message %s: %s", cj->channel->name,
			 imta_message_id(msg), text);
		convert_report_all(cj, msg, group, IMTA_OUTCOME_RETRY, text);
		return;
	}
	text = g_strdup_printf("2.6.0 %u part%s converted; queued to %s as %s", cm.converted,
			       cm.converted == 1 ? "" : "s", group->channel->name, queued_id);
	imta_log(IMTA_LOG_INFO, "%s: message %s: %s", cj->channel->name, imta_message_id(msg),
		 text);
	convert_report_all(cj, msg, group, IMTA_OUTCOME_DELIVERED, text);
}

/* One job's conversion table, or why it has none although it should. */
typedef struct {
	ConvChannelJob *cj;
	const ImtaConversions *table;
	const char *table_error;
} ConvertRun;

static void
convert_message(ImtaMasterJob *job, ImtaMessage *msg, gpointer data)
{
	const ConvertRun *run = data;
	ConvChannelJob *cj = run->cj;
	const ImtaConversions *table = run->table;
	const char *table_error = run->table_error;
	g_autoptr(GPtrArray) groups = NULL;
	g_autoptr(GBytes) content = NULL;
	g_autoptr(GError) error = NULL;

	groups = convert_groups(cj, msg);
	if (groups->len == 0)
		return;
	if (table_error != NULL) {
		g_autofree char *text = g_strdup_printf("4.3.5 %s", table_error);

		for (guint g = 0; g < groups->len; g++)
			convert_report_all(cj, msg, g_ptr_array_index(groups, g),
					   IMTA_OUTCOME_RETRY, text);
		return;
	}
	content = conversion_read_content(msg, &error);
	if (content == NULL) {
		g_autofree char *text = g_strdup_printf("4.3.0 cannot read the message: %s",
							error->message);

		for (guint g = 0; g < groups->len; g++)
			convert_report_all(cj, msg, g_ptr_array_index(groups, g),
					   IMTA_OUTCOME_RETRY, text);
		return;
	}
	for (guint g = 0; g < groups->len; g++)
		convert_group(cj, msg, content, table, g_ptr_array_index(groups, g));
}

ImtaEntryStatus
conversion_master(ConvChannelJob *cj)
{
	const char *path = cj->config->tailor->conversion_file;
	g_autoptr(ImtaConversions) table = NULL;
	g_autoptr(GError) load_error = NULL;
	ConvertRun run;

	/* No file: nothing to convert, everything passes through. */
	if (path != NULL && g_file_test(path, G_FILE_TEST_EXISTS)) {
		table = imta_conversions_load(path, &load_error);
		if (table == NULL)
			imta_log(IMTA_LOG_ERROR, "%s: %s; messages wait until it is fixed",
				 cj->channel->name, load_error->message);
	}
	run = (ConvertRun){ cj, table, load_error != NULL ? load_error->message : NULL };
	return imta_master_job_each(cj->job, convert_message, &run);
}
