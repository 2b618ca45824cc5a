#!/bin/bash
# queue-full-disk.sh - the queue on a real, full file system: enqueue into
# a 512 KiB tmpfs until a commit fails, then check that the failure says
# "No space left on device", that no temporary or partial queue file is
# left, and that every message committed before reads back intact.
#
# The work is the /queue/full-disk case of tests/unit/test-queue, which
# mounts the tmpfs in a mount namespace of its own (so it disappears even
# if the test dies); mounting needs root.

set -u
: "${abs_top_builddir:?run from make check}"

if [ "$(id -u)" -ne 0 ]; then
	echo "1..0 # SKIP needs root to mount a file system"
	exit 0
fi
exec "$abs_top_builddir/tests/unit/test-queue" -p /queue/full-disk --tap
