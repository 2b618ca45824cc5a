/*
 * fd_watch.h - a descriptor watched on a main context.
 *
 * imta_fd_watch_add() is g_unix_fd_add() without GLib's guard against a
 * callback being dispatched again from within itself.  The guard takes the
 * descriptor out of the poll set for the length of every callback and
 * wakes the loop up twice to do it; none of our callbacks runs its loop,
 * so the guard protects nothing and doubles the loop's wake-ups.  A
 * callback must therefore never iterate the context it was called from.
 */
#ifndef IMTA_FD_WATCH_H
#define IMTA_FD_WATCH_H

#include <glib.h>
#include <glib-unix.h>

G_BEGIN_DECLS

/* Watch `fd` for `condition` on the default main context; returns
 * the source id, for g_source_remove(). */
guint imta_fd_watch_add(int fd, GIOCondition condition, GUnixFDSourceFunc func,
			gpointer user_data);

/* The same on `context` (NULL: the default one); returns the source,
 * owned by the caller, who ends the watch with g_source_destroy(). */
GSource *imta_fd_watch_attach(GMainContext *context, int fd, GIOCondition condition,
			      GUnixFDSourceFunc func, gpointer user_data);

G_END_DECLS

#endif
