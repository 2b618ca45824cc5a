/*
 * forward.h - queueing a copy of a message a master holds, onward to new
 * recipients: what a channel does when it hands mail on instead of
 * delivering it (alias expansion, routing again, holding).
 *
 * The copy keeps the message's return path, ENVID, RET, priority and
 * content byte for byte; each recipient added keeps the ORCPT (or gets
 * "rfc822;" and the address the message was queued for, so notices name
 * the address the sender used) and the NOTIFY of the recipient it comes
 * from.  The same channel and address added twice is queued once.
 *
 * The caller reports its recipients only after imta_forward_commit()
 * returned TRUE: then the copy is durable.  A crash between the two
 * leaves both the original and the copy queued (a duplicate, never a
 * loss).  Not thread-safe; one forward per message and thread.
 */
#ifndef IMTA_FORWARD_H
#define IMTA_FORWARD_H

#include <glib.h>
#include <imta/channel.h>
#include <imta/job.h>
#include <imta/queue.h>

G_BEGIN_DECLS

typedef struct _ImtaForward ImtaForward;

/* A copy of `msg` to be queued in `queue` as coming from `source_channel`
 * (the forwarding channel's name).  Both must outlive the forward. */
ImtaForward *imta_forward_new(ImtaQueue *queue, const char *source_channel, ImtaMessage *msg);

/* Add `address` on `channel` for the message's recipient `index`.  TRUE
 * when added (or already there); FALSE when the queue refuses the
 * recipient (a field over its limits), with nothing added. */
gboolean imta_forward_add(ImtaForward *fwd, guint index, const ImtaChannel *channel,
			  const char *address, GError **error);

/* How many distinct recipients were added. */
guint imta_forward_count(const ImtaForward *fwd);

/* Copy the content and queue the copy durably.  TRUE when it is queued,
 * or when no recipient was added (nothing to queue). */
gboolean imta_forward_commit(ImtaForward *fwd, GError **error);

/* After a commit: the new queue files (relative to the queue root),
 * NULL-terminated; NULL before. */
const char *const *imta_forward_files(const ImtaForward *fwd);

void imta_forward_free(ImtaForward *fwd);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaForward, imta_forward_free)

G_END_DECLS

#endif
