/*
 * stat_untimed.h - stat() for files that are about to change.
 *
 * Since Linux 6.13 a stat() that returns a file's change time marks the
 * file, and its next change is stamped with a fine-grained clock reading
 * instead of the last clock tick.  Every such stamp moves a floor that
 * all later stamps on the system honour, so afterwards a write to any
 * other file moves that file's mtime even within one tick, and the next
 * fdatasync() of it writes its inode as well as its data: one device
 * write more per sync of the commit journal, for every log line or queue
 * file looked at this way (about a fifth of a journal sync, measured).
 *
 * These calls ask the kernel only for type, mode, size, link count,
 * device and inode number, and leave the times out (zero in the result).
 * Use them wherever those are all that is needed; the times themselves
 * still need fstat().
 */
#ifndef IMTA_STAT_UNTIMED_H
#define IMTA_STAT_UNTIMED_H

#include <sys/stat.h>

#include <glib.h>

G_BEGIN_DECLS

/* fstatat(dir_fd, path, st, flags) without the times: 0, or -1 with errno. */
int imta_stat_untimed(int dir_fd, const char *path, int flags, struct stat *st);

/* fstat(fd, st) without the times: 0, or -1 with errno. */
int imta_fstat_untimed(int fd, struct stat *st);

G_END_DECLS

#endif /* IMTA_STAT_UNTIMED_H */
