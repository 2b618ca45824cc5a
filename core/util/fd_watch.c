/*
 * fd_watch.c - descriptor watches that do not leave the poll set while
 * their callback runs.
 */
#include "config.h"

#include <imta/fd_watch.h>

guint
imta_fd_watch_add(int fd, GIOCondition condition, GUnixFDSourceFunc func, gpointer user_data)
{
	g_autoptr(GSource) source = g_unix_fd_source_new(fd, condition);

	g_source_set_can_recurse(source, TRUE);
	g_source_set_callback(source, G_SOURCE_FUNC(func), user_data, NULL);
	return g_source_attach(source, NULL);
}
