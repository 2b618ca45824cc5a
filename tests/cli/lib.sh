# lib.sh - shared by the command-line tests: TAP output and a private MTA
# instance (configuration, var directories, plugins) per test.
#
# A test sources this file, calls `plan N`, then `ok`/`check_*` N times.
# Every check prints one TAP line; a failing one also prints what it saw.

set -u

: "${abs_top_srcdir:?run from make check}"
: "${abs_top_builddir:?run from make check}"
IMSIMTA="$abs_top_builddir/core/cli/imsimta"
TAP_COUNT=0
TAP_FAILED=0

plan() {
	echo "1..$1"
}

ok() {
	# ok CONDITION-EXIT-STATUS DESCRIPTION
	TAP_COUNT=$((TAP_COUNT + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $TAP_COUNT - $2"
	else
		echo "not ok $TAP_COUNT - $2"
		TAP_FAILED=$((TAP_FAILED + 1))
	fi
}

# Show a file's lines as TAP comments (for diagnosis of a failure).
diag_file() {
	sed 's/^/# /' "$1"
}

# check_run DESCRIPTION EXPECTED-STATUS COMMAND...: run COMMAND with output
# in $OUT and $ERR (files), and check its exit status.
check_run() {
	local desc=$1 expected=$2 status
	shift 2
	"$@" >"$OUT" 2>"$ERR"
	status=$?
	if [ "$status" -ne "$expected" ]; then
		echo "# expected exit $expected, got $status from: $*"
		diag_file "$OUT"
		diag_file "$ERR"
	fi
	ok $(( status != expected )) "$desc"
}

# check_grep DESCRIPTION FILE FIXED-STRING: FILE contains the line part.
check_grep() {
	if grep -qF -- "$3" "$2"; then
		ok 0 "$1"
	else
		echo "# expected to find: $3"
		diag_file "$2"
		ok 1 "$1"
	fi
}

check_no_grep() {
	if grep -qF -- "$3" "$2"; then
		echo "# expected not to find: $3"
		diag_file "$2"
		ok 1 "$1"
	else
		ok 0 "$1"
	fi
}

# wait_until TENTHS COMMAND...: poll COMMAND every 0.1 s, at most TENTHS times.
wait_until() {
	local tries=$1
	shift
	while [ "$tries" -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		tries=$((tries - 1))
	done
	return 1
}

# Is process $1 gone?  A zombie is: it only waits to be reaped.
gone() {
	local state
	state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
	[ -z "$state" ] || [ "$state" = Z ] || [ "$state" = X ]
}

# Every plugin module the build made, for a test's plugin directory.
built_plugins() {
	find "$abs_top_builddir/plugins" -path '*/.libs/*.so' -type f
}

# make_instance: a fresh instance in $T (a temporary directory removed at
# exit): $T/conf is a copy of the default configuration whose paths point
# into $T, with the built plugins in $T/plugins, owned by the running user.
make_instance() {
	T=$(mktemp -d "${TMPDIR:-/tmp}/imta-test.XXXXXX")
	trap 'rm -rf "$T"' EXIT
	OUT="$T/stdout"
	ERR="$T/stderr"
	mkdir -p "$T/conf" "$T/plugins" "$T/var"
	chmod 755 "$T" "$T/plugins"
	cp "$abs_top_srcdir"/conf/* "$T/conf/"
	chmod -R u+w "$T/conf"
	cat >"$T/conf/imta_tailor" <<EOT
IMTA_QUEUE=$T/var/queue
IMTA_LOG=$T/var/log
IMTA_STORE=$T/var/store
IMTA_RUN=$T/var/run
IMTA_PLUGIN_DIR=$T/plugins
IMTA_USER=$(id -un)
IMTA_HOSTNAME=mail.example.com
IMTA_DIRECTORY=ldif:directory.ldif
EOT
	for so in $(built_plugins); do
		install -m 644 "$so" "$T/plugins/"
	done
	C="$T/conf"
}

finish() {
	[ "$TAP_FAILED" -eq 0 ]
}
