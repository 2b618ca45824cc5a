/*
 * jc_protocol.h - how enqueuers, master jobs and imsimta talk to the job
 * controller.
 *
 * Two UNIX sockets in the run directory (IMTA_RUN):
 *
 *   job_controller.notify  (datagram)  notices from enqueuers, fire and
 *       forget: a lost notice only delays a message until the next queue
 *       scan.  One datagram per queue file:
 *           E <path>          a new file (path relative to the queue root)
 *           R <path>          a file released from hold / to retry now
 *
 *   job_controller.sock    (stream)  one request line, one or more reply
 *       lines; lines end with "\n"; fields are separated by one space and
 *       are xtext when they could hold anything else.  A client starts with
 *           HELLO <role> [<channel>]          role: master | admin
 *       and gets "OK <protocol-version>" or "ERR <xtext reason>".
 *
 *   Master jobs (role master, channel given):
 *     NEXT [NOWAIT]
 *         -> MSG <path> [MORE] deliver this file now; MORE: other messages
 *                              of the channel are due too, so a job with
 *                              idle threads may ask again at once
 *         -> EXIT              no more work for this job: exit
 *         -> NONE              (NOWAIT only) nothing is due right now
 *        The controller holds a NEXT until a message of the channel is due
 *        (long poll), or answers EXIT once the job has been idle for the
 *        channel's IDLE_LINGER, at shutdown, or when the job is over its
 *        MAX_LIFE_AGE / MAX_LIFE_CONNS.  NEXT NOWAIT is answered at once: a
 *        job delivering several messages at a time asks that way while some
 *        are in flight, since a held NEXT would hold back their DONE lines.
 *     DONE <path> <new-path|-> <delivered> <failed> <retry> <next-attempt>
 *         after the queue file was updated durably: new-path "-" when the
 *         file is gone (every recipient final), else its renamed path;
 *         the counts are recipients; next-attempt is a Unix time (0 when
 *         gone).  -> OK.  Replies come in request order, so a master need
 *         not wait for this one: it may read it before the reply to its
 *         next request.
 *     A master job that disconnects while holding messages gives them
 *     back: they are retried at once.
 *
 *   Administration (role admin):
 *     STATE     -> lines "<key> <value>" ... then "."
 *                  (tracked, delayed, in_progress, max_messages,
 *                  pool.<name>.jobs, pool.<name>.limit,
 *                  channel.<name>.queued, channel.<name>.jobs, ...)
 *     COUNTERS  -> lines "<channel> <enqueued> <delivered> <deferred> <failed>"
 *                  (messages enqueued since start; recipients after) then "."
 *     RETRY <id|channel>  make a message (by queue id) or every message of
 *                  a channel due now -> "OK <count>"
 *     REBUILD   rescan the queue directories -> OK
 *     SHUTDOWN  stop: masters are told EXIT, the controller exits once they
 *               are gone -> OK
 */
#ifndef IMTA_JC_PROTOCOL_H
#define IMTA_JC_PROTOCOL_H

#define IMTA_JC_PROTOCOL_VERSION 1
#define IMTA_JC_SOCKET "job_controller.sock"
#define IMTA_JC_NOTIFY_SOCKET "job_controller.notify"
#define IMTA_JC_PID_FILE "job_controller.pid"
#define IMTA_JC_MAX_LINE 4096

#endif
