/*
 * stat_untimed.c - statx() with a mask that leaves the times out, where
 * the system has it; plain fstatat() elsewhere (no fine-grained stamps
 * to avoid there).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <imta/stat_untimed.h>

int
imta_stat_untimed(int dir_fd, const char *path, int flags, struct stat *st)
{
#ifdef HAVE_STATX
	const unsigned int mask = STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_INO | STATX_SIZE;
	struct statx sx;

	if (statx(dir_fd, path, flags, mask, &sx) == 0) {
		memset(st, 0, sizeof(*st));
		st->st_dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
		st->st_ino = sx.stx_ino;
		st->st_mode = sx.stx_mode;
		st->st_nlink = sx.stx_nlink;
		st->st_size = (off_t)sx.stx_size;
		return 0;
	}
	/* Kernels before 4.11, or a sandbox that refuses the call. */
	if (errno != ENOSYS && errno != EPERM)
		return -1;
#endif
	return fstatat(dir_fd, path, st, flags);
}

int
imta_fstat_untimed(int fd, struct stat *st)
{
#ifdef HAVE_STATX
	return imta_stat_untimed(fd, "", AT_EMPTY_PATH, st);
#else
	return fstat(fd, st);
#endif
}
