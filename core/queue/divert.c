/*
 * divert.c - recipients that go through another channel first: message/
 * partial for a `defragment` channel goes to the defragment channel, and
 * what the CONVERSIONS mapping names goes to the conversion channel; both
 * then queue the result for the channel the recipient was meant for.
 *
 * Every enqueue commits through enqueue.c, which asks here once per
 * destination channel.  The mappings come from the configuration that
 * owns the queue's ImtaCnf, bound once at load, so no program has to pass
 * them; a configuration without a CONVERSIONS table costs one NULL test.
 */
#include "config.h"

#include <string.h>

#include <glib.h>

#include <imta/log.h>
#include <imta/queue.h>

#include "queue_file.h"

#define DIVERT_CONVERSION_CHANNEL "conversion"
#define DIVERT_DEFRAGMENT_CHANNEL "defragment"
#define DIVERT_TABLE "CONVERSIONS"

static GMutex divert_lock;
static GHashTable *divert_bound;    /* const ImtaCnf * -> const ImtaMappings * */

void
imta_queue_bind_mappings(const ImtaCnf *cnf, const ImtaMappings *mappings)
{
	g_mutex_lock(&divert_lock);
	if (divert_bound == NULL)
		divert_bound = g_hash_table_new(g_direct_hash, g_direct_equal);
	if (mappings != NULL)
		g_hash_table_replace(divert_bound, (gpointer) cnf, (gpointer) mappings);
	else
		g_hash_table_remove(divert_bound, cnf);
	g_mutex_unlock(&divert_lock);
}

const ImtaMappings *
queue_bound_mappings(const ImtaCnf *cnf)
{
	const ImtaMappings *mappings = NULL;

	g_mutex_lock(&divert_lock);
	if (divert_bound != NULL)
		mappings = g_hash_table_lookup(divert_bound, cnf);
	g_mutex_unlock(&divert_lock);
	return mappings;
}

void
imta_queue_set_mappings(ImtaQueue *queue, const ImtaMappings *mappings)
{
	queue->mappings = mappings;
	queue->conversions = mappings != NULL ? imta_mappings_table(mappings, DIVERT_TABLE)
					      : NULL;
}

static gboolean
divert_says_yes(const char *result)
{
	g_autofree char *word = g_strstrip(g_strdup(result != NULL ? result : ""));

	return g_ascii_strcasecmp(word, "yes") == 0;
}

static gboolean
divert_probe(const ImtaMappings *mappings, const ImtaMappingTable *table, const char *source,
	     const char *destination)
{
	g_autofree char *probe = g_strdup_printf("IN-CHAN=%s;OUT-CHAN=%s;CONVERT", source,
						 destination);
	ImtaMappingResult result = { 0 };
	gboolean yes;

	yes = imta_mapping_apply(mappings, table, probe, 0, &result) &&
	      divert_says_yes(result.result);
	imta_mapping_result_clear(&result);
	return yes;
}

gboolean
imta_queue_conversion_wanted(const ImtaMappings *mappings, const char *source,
			     const char *destination)
{
	const ImtaMappingTable *table;

	if (mappings == NULL || (table = imta_mappings_table(mappings, DIVERT_TABLE)) == NULL)
		return FALSE;
	if (strcmp(source, DIVERT_CONVERSION_CHANNEL) == 0 ||
	    strcmp(destination, DIVERT_CONVERSION_CHANNEL) == 0)
		return FALSE;
	return divert_probe(mappings, table, source, destination);
}

/* The channel named `name`, or NULL with a warning (once per queue). */
static const ImtaChannel *
divert_channel(ImtaQueue *queue, const char *name, const char *why)
{
	const ImtaChannel *ch = imta_cnf_channel_by_name(queue->cnf, name);

	if (ch == NULL && !queue->divert_warned) {
		queue->divert_warned = TRUE;
		imta_log(IMTA_LOG_WARNING, "%s, but imta.cnf has no %s channel: queued as it is",
			 why, name);
	}
	return ch;
}

const ImtaChannel *
queue_divert(ImtaQueue *queue, const char *source, const ImtaChannel *channel, gboolean partial,
	     const char **onward_r)
{
	const ImtaChannel *via = NULL;

	*onward_r = NULL;
	if (partial && channel->defragment && strcmp(source, DIVERT_DEFRAGMENT_CHANNEL) != 0 &&
	    strcmp(channel->name, DIVERT_DEFRAGMENT_CHANNEL) != 0)
		via = divert_channel(queue, DIVERT_DEFRAGMENT_CHANNEL,
				     "message/partial for a defragment channel");
	if (via == NULL && queue->conversions != NULL &&
	    strcmp(source, DIVERT_CONVERSION_CHANNEL) != 0 &&
	    strcmp(channel->name, DIVERT_CONVERSION_CHANNEL) != 0 &&
	    divert_probe(queue->mappings, queue->conversions, source, channel->name))
		via = divert_channel(queue, DIVERT_CONVERSION_CHANNEL, "CONVERSIONS says Yes");
	if (via == NULL)
		return channel;
	*onward_r = channel->name;
	return via;
}
