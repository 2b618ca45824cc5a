/*
 * fd_watch.c - descriptor watches that do not leave the poll set while
 * their callback runs.
 */
#include "config.h"

#include <imta/fd_watch.h>

GSource *
imta_fd_watch_attach(GMainContext *context, int fd, GIOCondition condition,
		     GUnixFDSourceFunc func, gpointer user_data)
{
	GSource *source = g_unix_fd_source_new(fd, condition);

	g_source_set_can_recurse(source, TRUE);
	g_source_set_callback(source, G_SOURCE_FUNC(func), user_data, NULL);
	g_source_attach(source, context);
	return source;
}

guint
imta_fd_watch_add(int fd, GIOCondition condition, GUnixFDSourceFunc func, gpointer user_data)
{
	g_autoptr(GSource) source = imta_fd_watch_attach(NULL, fd, condition, func, user_data);

	return g_source_get_id(source);
}
