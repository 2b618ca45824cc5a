/*
 * jc_client.h - a small blocking client of the job controller's stream
 * socket (the protocol is in jc_protocol.h; notices to its datagram socket
 * are sent by the queue store, see imta_queue_open).
 *
 * One ImtaJcClient is one stream connection, greeted with HELLO.  Requests
 * are single lines; replies are read a line at a time, each at most
 * IMTA_JC_MAX_LINE bytes including the "\n" (a longer line is a protocol
 * error, never a bigger buffer).  Every wait is bounded by the client's
 * timeout, except the long poll of a master's NEXT, which waits as long as
 * the controller needs (imta_jc_client_read_line with timeout -1) and ends
 * when the connection drops or the interrupt flag is raised by a signal.
 *
 * A client is used by one thread at a time.  Writes never raise SIGPIPE.
 */
#ifndef IMTA_JC_CLIENT_H
#define IMTA_JC_CLIENT_H

#include <signal.h>
#include <glib.h>
#include <imta/jc_protocol.h>

G_BEGIN_DECLS

#define IMTA_JC_ERROR (imta_jc_error_quark())
GQuark imta_jc_error_quark(void);

typedef enum {
	IMTA_JC_ERROR_NOT_RUNNING, /* no socket, or nobody listening on it */
	IMTA_JC_ERROR_IO,          /* a socket call failed */
	IMTA_JC_ERROR_TIMEOUT,     /* no answer within the timeout */
	IMTA_JC_ERROR_CLOSED,      /* the controller closed the connection */
	IMTA_JC_ERROR_PROTOCOL,    /* a reply of the wrong shape or length */
	IMTA_JC_ERROR_REFUSED,     /* the controller answered ERR <reason> */
	IMTA_JC_ERROR_INTERRUPTED, /* the interrupt flag was raised while waiting */
} ImtaJcErrorCode;

/* The default bound on connecting and on each reply, in milliseconds. */
#define IMTA_JC_DEFAULT_TIMEOUT_MS 10000

typedef struct _ImtaJcClient ImtaJcClient;

/* Connect to <run_dir>/job_controller.sock and greet it as
 * "HELLO <role> [<channel>]" (channel may be NULL).  Fails with
 * IMTA_JC_ERROR_NOT_RUNNING when no controller listens. */
ImtaJcClient *imta_jc_client_connect(const char *run_dir, const char *role, const char *channel,
				     int timeout_ms, GError **error);

/* The protocol version the controller announced in its OK. */
guint imta_jc_client_protocol(const ImtaJcClient *client);

/* Waits of this client that see EINTR end with IMTA_JC_ERROR_INTERRUPTED
 * when *flag is nonzero (set from a signal handler); NULL = always resume. */
void imta_jc_client_set_interrupt(ImtaJcClient *client, volatile sig_atomic_t *flag);

/* Send one request line; `line` must not contain "\n" (it is added). */
gboolean imta_jc_client_send(ImtaJcClient *client, const char *line, GError **error);

/* Read one reply line without its "\n".  timeout_ms < 0: no bound (the
 * long poll); 0: the client's own timeout. */
char *imta_jc_client_read_line(ImtaJcClient *client, int timeout_ms, GError **error);

/* Read a single-line reply within the client's timeout.  "ERR <xtext>"
 * becomes IMTA_JC_ERROR_REFUSED with the decoded reason; anything else is
 * returned as is ("OK 3", "MSG ...").  Replies come in the order of the
 * requests, so a client may send several requests before it reads. */
char *imta_jc_client_read_reply(ImtaJcClient *client, GError **error);

/* Send `line` and read its single-line reply (imta_jc_client_read_reply). */
char *imta_jc_client_request(ImtaJcClient *client, const char *line, GError **error);

/* Send `line` and read reply lines up to the terminating "."; at most
 * `max_lines` lines (a longer reply is a protocol error).  Returns the
 * lines (char *) without the ".". */
GPtrArray *imta_jc_client_request_list(ImtaJcClient *client, const char *line, guint max_lines,
				       GError **error);

void imta_jc_client_close(ImtaJcClient *client);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImtaJcClient, imta_jc_client_close)

/* Split a reply line at single spaces (fields are xtext and hold none). */
GStrv imta_jc_split_fields(const char *line);

G_END_DECLS

#endif
