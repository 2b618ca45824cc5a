/*
 * imta.h - everything a channel plugin may use, in one include.
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

#endif
