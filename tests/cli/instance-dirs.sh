#!/bin/bash
# Where an installed MTA keeps its files, and a first start on them.
#
# The example configuration `make install` puts in the documentation
# (example/ in the build) names the directories the programs were built
# with, not paths under the source tree's var/; its TLS files are beside
# the configuration.
#
# Started by root with IMTA_USER set on an instance whose directories do
# not exist yet (and one left behind by root), `imsimta start` and the
# daemons create them for IMTA_USER: mail goes through to the store and
# the daemons stop cleanly as that user.
#
# Only processes this test started are signalled, by the pids the shell got.
. "$abs_top_srcdir/tests/cli/smtp-lib.sh"
smtp_instance
plan 12

EXAMPLE="$abs_top_builddir/example"
PATH_KEYS='QUEUE\|LOG\|STORE\|RUN\|PLUGIN_DIR'

# ---- the installed example ---------------------------------------------

grep -n '\.\./' "$EXAMPLE/imta_tailor" "$EXAMPLE/option.dat" >"$OUT"
[ $? -eq 1 ] && grep -q "^IMTA_QUEUE=/" "$EXAMPLE/imta_tailor"
r=$?
[ $r -eq 0 ] || diag_file "$OUT"
ok $r "the example imta_tailor and option.dat name no path under the source tree"

# example_set DIR TAILOR: the default configuration in DIR with TAILOR as
# its imta_tailor, plugins from the test's directory.
example_set() {
	mkdir -p "$1"
	cp "$abs_top_srcdir"/conf/* "$1/"
	cp "$EXAMPLE/option.dat" "$1/"
	grep -v "^IMTA_PLUGIN_DIR=" "$2" >"$1/imta_tailor"
	echo "IMTA_PLUGIN_DIR=$T/plugins" >>"$1/imta_tailor"
}
example_set "$T/example" "$EXAMPLE/imta_tailor"
grep -v "^IMTA_\($PATH_KEYS\)=" "$EXAMPLE/imta_tailor" >"$T/defaults.tailor"
example_set "$T/defaults" "$T/defaults.tailor"
"$IMSIMTA" --config "$T/example" check --dump 2>"$ERR" | sed -n '2,5p' >"$T/example.dirs"
"$IMSIMTA" --config "$T/defaults" check --dump 2>>"$ERR" | sed -n '2,5p' >"$T/defaults.dirs"
[ "$(wc -l <"$T/example.dirs")" -eq 4 ] && cmp -s "$T/example.dirs" "$T/defaults.dirs"
r=$?
[ $r -eq 0 ] || { diag_file "$T/example.dirs"; diag_file "$T/defaults.dirs"; diag_file "$ERR"; }
ok $r "its queue, log, store and run directories are the built-in ones ($(tr '\n' ' ' <"$T/example.dirs"))"

# Without IMTA_PLUGIN_DIR, plugin-list names the built-in directory (and
# finds it missing, since nothing is installed there).
grep -v "^IMTA_PLUGIN_DIR=" "$T/defaults.tailor" >"$T/defaults/imta_tailor"
builtin=$("$IMSIMTA" --config "$T/defaults" plugin-list 2>/dev/null | sed -n 's/^Plugin directory: //p')
example=$(sed -n 's/^IMTA_PLUGIN_DIR=//p' "$EXAMPLE/imta_tailor")
[ -n "$builtin" ] && [ "$builtin" = "$example" ]
ok $? "its plugin directory is the one make install fills ($example; built in: $builtin)"

grep -qx "TLS_CERTIFICATE_FILE=tls/server.pem" "$EXAMPLE/option.dat" &&
	grep -qx "TLS_KEY_FILE=tls/server.key" "$EXAMPLE/option.dat"
ok $? "its option.dat takes the TLS certificate and key from tls/ beside the configuration"

# ---- a first start by root ---------------------------------------------

SKIPS=8
if [ "$(id -u)" != 0 ] || ! id nobody >/dev/null 2>&1; then
	for _ in $(seq $SKIPS); do
		ok 0 "# SKIP a first start by root needs root and the user nobody"
	done
	finish
	exit
fi

# The queue, the store and IMTA_RUN one level below a parent that does
# not exist either; the log directory as an earlier start by root left it.
NEW="$T/var/new"
sed -i -e "s|^IMTA_QUEUE=.*|IMTA_QUEUE=$NEW/queue|" -e "s|^IMTA_LOG=.*|IMTA_LOG=$T/var/oldlog|" \
	-e "s|^IMTA_STORE=.*|IMTA_STORE=$NEW/store|" -e "s|^IMTA_RUN=.*|IMTA_RUN=$NEW/run|" \
	-e "s|^IMTA_USER=.*|IMTA_USER=nobody|" "$C/imta_tailor"
rm -rf "$T/var/queue" "$T/var/log" "$T/var/store" "$T/var/run"
mkdir -m 750 "$T/var/oldlog"
QUEUE="$NEW/queue"
LOGDIR="$T/var/oldlog"

IMTA_CONFIG="$C" "$IMSIMTA" start job_controller >"$OUT" 2>"$ERR" &&
	IMTA_CONFIG="$C" "$IMSIMTA" start dispatcher >>"$OUT" 2>>"$ERR"
r=$?
JC_PID=$(cat "$NEW/run/job_controller.pid" 2>/dev/null)
DISP_PID=$(cat "$NEW/run/dispatcher.pid" 2>/dev/null)
[ $r -eq 0 ] || { diag_file "$OUT"; diag_file "$ERR"; }
ok $r "imsimta start starts both daemons on directories that do not exist yet"

owners=$(stat -c '%n %U %a' "$NEW" "$NEW/queue" "$LOGDIR" "$NEW/store" "$NEW/run" |
	sed "s|^$T/||")
expected="var/new root 755
var/new/queue nobody 750
var/oldlog nobody 750
var/new/store nobody 750
var/new/run nobody 755"
[ "$owners" = "$expected" ]
r=$?
[ $r -eq 0 ] || echo "$owners" | sed 's/^/# /'
ok $r "they belong to IMTA_USER, the log directory root had made too; their parent is open to it"

uid_of() {
	awk '/^Uid:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}
[ -n "$JC_PID" ] && [ -n "$DISP_PID" ] && [ "$(uid_of "$JC_PID")" = "$(id -u nobody)" ] &&
	[ "$(uid_of "$DISP_PID")" = "$(id -u nobody)" ]
ok $? "both daemons run as IMTA_USER"

swaks --server "127.0.0.1:$SMTP_PORT" --from someone@remote.test --to alice@example.com \
	--header "Subject: first start" --body "hello" >"$OUT" 2>&1
grep -q "<- *250 2.0.0 Ok: queued as" "$OUT"
r=$?
[ $r -eq 0 ] || diag_file "$OUT"
ok $r "swaks sends a message through the dispatcher"

wait_delivered alice "first start"
ok $? "a delivery job running as IMTA_USER puts it into alice's INBOX"

# Root's imsimta writes as IMTA_USER: a delivery job reads its queue file,
# and the store the first mboxutil above may have opened stays writable.
printf 'Subject: enqueued by root\n\nhello\n' |
	IMTA_CONFIG="$C" "$IMSIMTA" enqueue alice@example.com >"$OUT" 2>"$ERR"
r=$?
[ $r -eq 0 ] || { diag_file "$OUT"; diag_file "$ERR"; }
[ $r -eq 0 ] && wait_delivered alice "enqueued by root"
r=$?
[ $r -eq 0 ] && grep -q " root@mail.example.com rfc822;alice@example.com " "$LOGDIR/mail.log_current"
ok $? "imsimta enqueue run by root queues a message IMTA_USER's delivery job delivers, from root"

# The pid files stay root's, as root wrote them before the switch.
owned=$(find "$NEW" "$LOGDIR" ! -user nobody ! -name '*.pid' | sed "s|^$T/||" |
	grep -vx "var/new" | tr '\n' ' ')
[ -z "$owned" ]
ok $? "every other file the daemons and root's imsimta made belongs to IMTA_USER${owned:+ (not: $owned)}"

IMTA_CONFIG="$C" "$IMSIMTA" stop dispatcher >"$OUT" 2>"$ERR" &&
	IMTA_CONFIG="$C" "$IMSIMTA" stop job_controller >>"$OUT" 2>>"$ERR" &&
	wait_until 100 gone "$DISP_PID" && wait_until 100 gone "$JC_PID"
r=$?
left=$(find "$NEW/run" -mindepth 1 ! -type d | sed "s|^$T/||" | tr '\n' ' ')
[ $r -eq 0 ] && [ -z "$left" ]
r=$?
[ $r -eq 0 ] || { diag_file "$OUT"; diag_file "$ERR"; echo "# left in run: $left"; }
ok $r "imsimta stop stops both, and they remove their sockets and pid files"
[ $r -eq 0 ] && { DISP_PID=""; JC_PID=""; }

finish
