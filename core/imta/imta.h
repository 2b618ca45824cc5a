/*
 * imta.h - everything a channel plugin may use, in one include.
 *
 * The plugin ABI (plugin.h, slave.h, job.h) and the core services a plugin
 * may call: configuration, rewriting and routing, the directory, the
 * queue (enqueue, and route.h to rewrite-then-enqueue), delivery status
 * notices, the message store, the SMTP client, the mail log and logging.
 * imta-plugin(3) says which of them are safe from which threads.
 */
#ifndef IMTA_IMTA_H
#define IMTA_IMTA_H

#include <imta/error.h>
#include <imta/number.h>
#include <imta/log.h>
#include <imta/address.h>
#include <imta/channel.h>
#include <imta/config.h>
#include <imta/rewrite.h>
#include <imta/directory.h>
#include <imta/plugin.h>
#include <imta/job.h>
#include <imta/queue.h>
#include <imta/route.h>
#include <imta/forward.h>
#include <imta/notice.h>
#include <imta/mail_log.h>
#include <imta/store.h>
#include <imta/smtp_client.h>

#endif
