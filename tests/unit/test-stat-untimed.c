/*
 * test-stat-untimed.c - the untimed stat calls report what fstatat()
 * reports for type, mode, size, links, device and inode, for files,
 * directories and symbolic links, and fail as it does.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <imta/stat_untimed.h>

static void
assert_same_identity(const struct stat *got, const struct stat *want)
{
	g_assert_cmpuint(got->st_dev, ==, want->st_dev);
	g_assert_cmpuint(got->st_ino, ==, want->st_ino);
	g_assert_cmpuint(got->st_mode, ==, want->st_mode);
	g_assert_cmpuint(got->st_nlink, ==, want->st_nlink);
	g_assert_cmpint(got->st_size, ==, want->st_size);
}

static void
test_kinds(void)
{
	g_autofree char *dir = g_dir_make_tmp("stat-untimed-XXXXXX", NULL);
	g_autofree char *file = g_build_filename(dir, "file", NULL);
	g_autofree char *symlink_path = g_build_filename(dir, "link", NULL);
	g_autofree char *second = g_build_filename(dir, "second-name", NULL);
	struct stat got, want;
	int fd;

	g_assert_nonnull(dir);
	g_assert_true(g_file_set_contents(file, "twelve bytes", 12, NULL));
	g_assert_cmpint(g_chmod(file, 0640), ==, 0);
	g_assert_cmpint(link(file, second), ==, 0);
	g_assert_cmpint(symlink("file", symlink_path), ==, 0);

	g_assert_cmpint(fstatat(AT_FDCWD, file, &want, 0), ==, 0);
	g_assert_cmpint(imta_stat_untimed(AT_FDCWD, file, 0, &got), ==, 0);
	assert_same_identity(&got, &want);
	g_assert_cmpint(got.st_nlink, ==, 2);
	g_assert_cmpint(got.st_size, ==, 12);

	fd = open(file, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(imta_fstat_untimed(fd, &got), ==, 0);
	assert_same_identity(&got, &want);
	close(fd);

	g_assert_cmpint(fstatat(AT_FDCWD, symlink_path, &want, AT_SYMLINK_NOFOLLOW), ==, 0);
	g_assert_cmpint(imta_stat_untimed(AT_FDCWD, symlink_path, AT_SYMLINK_NOFOLLOW, &got), ==, 0);
	g_assert_true(S_ISLNK(got.st_mode));
	assert_same_identity(&got, &want);

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(fstatat(fd, "link", &want, 0), ==, 0);
	g_assert_cmpint(imta_stat_untimed(fd, "link", 0, &got), ==, 0);
	g_assert_true(S_ISREG(got.st_mode));
	assert_same_identity(&got, &want);
	g_assert_cmpint(imta_fstat_untimed(fd, &got), ==, 0);
	g_assert_true(S_ISDIR(got.st_mode));
	close(fd);

	g_unlink(symlink_path);
	g_unlink(second);
	g_unlink(file);
	g_rmdir(dir);
}

static void
test_failures(void)
{
	struct stat st;

	errno = 0;
	g_assert_cmpint(imta_stat_untimed(AT_FDCWD, "/nonexistent/stat-untimed", 0, &st), ==, -1);
	g_assert_cmpint(errno, ==, ENOENT);
	errno = 0;
	g_assert_cmpint(imta_fstat_untimed(-1, &st), ==, -1);
	g_assert_cmpint(errno, ==, EBADF);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/stat-untimed/kinds", test_kinds);
	g_test_add_func("/stat-untimed/failures", test_failures);
	return g_test_run();
}
