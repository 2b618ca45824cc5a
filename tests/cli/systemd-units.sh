#!/bin/bash
# The systemd units the build writes (systemd/*.service): each names
# its installed program in the foreground and manual pages that exist;
# systemd-analyze finds nothing to say of them; and the commands they give
# systemd run the MTA as systemd would.  The job controller, then the
# dispatcher (the order After= asks), are started from ExecStart's words
# with the configuration in IMTA_CONFIG (what a drop-in sets); mail goes
# through to the store; ExecReload's signal reopens the logs; the stop
# signal, sent to the main process alone as KillMode=mixed does, ends each
# daemon and its children with status 0 within TimeoutStopSec, the
# dispatcher first.  A configuration error ends a daemon with a status
# the unit does not restart on.
#
# Only processes this test started are signalled, by the pids the shell got.
. "$abs_top_srcdir/tests/cli/smtp-lib.sh"
smtp_instance
plan 23

UNITS="$abs_top_builddir/systemd"

# unit_value UNIT KEY: what KEY= says in the built unit.
unit_value() {
	sed -n "s/^$2=//p" "$UNITS/$1.service"
}

# The pages Documentation= names, one "name.section" a line.
unit_man_pages() {
	unit_value "$1" Documentation | tr ' ' '\n' | sed -n 's/^man:\(.*\)(\([0-9]\))$/\1.\2/p'
}

# ---- the files ---------------------------------------------------------

mkdir -p "$T/units"
for unit in imta-job-controller imta-dispatcher; do
	exec_start=$(unit_value $unit ExecStart)
	program=${exec_start%% *}
	[ "$(basename "$program")" = $unit ] && [ "${exec_start#* }" = --foreground ]
	ok $? "$unit.service runs $unit in the foreground ($exec_start)"
	pages=$(unit_man_pages $unit)
	missing=""
	for page in $pages; do
		[ -f "$abs_top_srcdir/docs/man/$page" ] || missing="$missing $page"
	done
	[ -n "$pages" ] && [ -z "$missing" ]
	ok $? "$unit.service names manual pages that exist ($(echo "$pages" | tr '\n' ' '))${missing:+; missing:$missing}"
	# The copy systemd-analyze reads runs the built program.
	sed "s|^ExecStart=$program|ExecStart=$IMTA_LIBEXEC/$unit|" "$UNITS/$unit.service" \
		>"$T/units/$unit.service"
done
systemd-analyze verify --man=no "$T/units/imta-job-controller.service" \
	"$T/units/imta-dispatcher.service" >"$OUT" 2>&1
status=$?
[ $status -eq 0 ] && [ ! -s "$OUT" ]
r=$?
[ $r -eq 0 ] || { echo "# systemd-analyze verify: status $status"; diag_file "$OUT"; }
ok $r "systemd-analyze verify accepts both units without a word"
grep -qx "Wants=imta-job-controller.service" "$UNITS/imta-dispatcher.service" &&
	grep -q "^After=imta-job-controller.service" "$UNITS/imta-dispatcher.service"
ok $? "the dispatcher's unit wants the job controller's and starts after it"

# ---- as systemd runs them ---------------------------------------------

# start_unit UNIT: ExecStart's command, with the build's program; its pid
# in UNIT_PID.
start_unit() {
	local words
	read -r -a words <<<"$(unit_value "$1" ExecStart)"
	IMTA_CONFIG="$C" "$IMTA_LIBEXEC/$1" "${words[@]:1}" >"$T/$1.err" 2>&1 &
	UNIT_PID=$!
}

# stop_unit UNIT PID: the stop signal to the main process only, then wait
# up to the unit's TimeoutStopSec; its exit status in STOP_STATUS (-1:
# still running).  Its children at the moment of the signal in STOP_CHILDREN.
stop_unit() {
	local timeout
	timeout=$(unit_value "$1" TimeoutStopSec)
	STOP_CHILDREN=$(pgrep -P "$2" | tr '\n' ' ')
	kill -TERM "$2"
	STOP_STATUS=-1
	if wait_until $((timeout * 10)) gone "$2"; then
		wait "$2"
		STOP_STATUS=$?
	fi
}

all_gone() {
	local pid
	for pid in "$@"; do
		gone "$pid" || return 1
	done
}

start_unit imta-job-controller
JC_PID=$UNIT_PID
wait_until 100 test -S "$T/var/run/job_controller.sock"
ok $? "the job controller's ExecStart runs it (its socket is there)"
mkdir -p "$LOGDIR"
start_unit imta-dispatcher
DISP_PID=$UNIT_PID
wait_until 100 dispatcher_ready
r=$?
[ $r -eq 0 ] || diag_file "$T/imta-dispatcher.err"
ok $r "the dispatcher's ExecStart runs it (ready)"
[ "$(cat "$T/var/run/dispatcher.pid" 2>/dev/null)" = "$DISP_PID" ] &&
	[ "$(cat "$T/var/run/job_controller.pid" 2>/dev/null)" = "$JC_PID" ]
ok $? "each main process is the daemon itself (its pid file names the pid systemd would watch)"

swaks --server "127.0.0.1:$SMTP_PORT" --from someone@remote.test --to alice@example.com \
	--header "Subject: under systemd" --body "hello" >"$OUT" 2>&1
r=$?
grep -q "<- *250 2.0.0 Ok: queued as" "$OUT" || r=1
[ $r -eq 0 ] || diag_file "$OUT"
ok $r "swaks sends a message through the dispatcher"
wait_delivered alice "under systemd"
ok $? "the job controller's delivery job puts it into alice's INBOX"

# Reload: rotated logs are reopened by name.
mv "$LOGDIR/dispatcher.log" "$LOGDIR/dispatcher.log.1"
mv "$LOGDIR/job_controller.log" "$LOGDIR/job_controller.log.1"
reload=$(unit_value imta-dispatcher ExecReload)
# shellcheck disable=SC2016 # systemd expands $MAINPID, not the shell
[ "$reload" = '/bin/kill -HUP $MAINPID' ] &&
	[ "$(unit_value imta-job-controller ExecReload)" = "$reload" ]
ok $? "both units reload with SIGHUP to the main process"
kill -HUP "$DISP_PID" "$JC_PID"
wait_until 100 grep -q "log reopened" "$LOGDIR/dispatcher.log"
ok $? "after the reload signal the dispatcher writes a new dispatcher.log"
wait_until 100 grep -q "log reopened" "$LOGDIR/job_controller.log"
ok $? "after the reload signal the job controller writes a new job_controller.log"
! gone "$DISP_PID" && ! gone "$JC_PID"
ok $? "both daemons run on after the reload"

# Stop, the dispatcher first: systemd stops in the reverse order of After=.
stop_unit imta-dispatcher "$DISP_PID"
[ "$STOP_STATUS" -eq 0 ]
ok $? "the dispatcher stops with status 0 within TimeoutStopSec (status $STOP_STATUS)"
[ -n "$STOP_CHILDREN" ] && all_gone $STOP_CHILDREN
ok $? "its workers ($STOP_CHILDREN) are gone with it"
# One that did not stop is left to the exit trap, which kills it.
[ "$STOP_STATUS" -eq -1 ] || DISP_PID=""
stop_unit imta-job-controller "$JC_PID"
[ "$STOP_STATUS" -eq 0 ]
ok $? "the job controller stops with status 0 within TimeoutStopSec (status $STOP_STATUS)"
all_gone $STOP_CHILDREN
ok $? "its jobs (${STOP_CHILDREN:-none}) are gone with it"
[ "$STOP_STATUS" -eq -1 ] || JC_PID=""
[ ! -e "$T/var/run/job_controller.sock" ] && [ ! -e "$T/var/run/job_controller.pid" ]
ok $? "the job controller removed its socket and pid file"

# A configuration error is not retried: the daemon exits with a status
# the unit lists in RestartPreventExitStatus, and says where the error is.
for unit in imta-job-controller imta-dispatcher; do
	cnf=$([ $unit = imta-dispatcher ] && echo dispatcher.cnf || echo job_controller.cnf)
	cp "$C/$cnf" "$T/$cnf.good"
	echo "NO_SUCH_OPTION=1" >>"$C/$cnf"
	start_unit $unit
	wait_until 100 gone "$UNIT_PID" || kill -TERM "$UNIT_PID"
	wait "$UNIT_PID"
	status=$?
	case " $(unit_value $unit RestartPreventExitStatus) " in
	*" $status "*) r=0 ;;
	*) r=1 ;;
	esac
	grep -q "$cnf:[0-9]*:[0-9]*:" "$T/$unit.err" || r=1
	[ $r -eq 0 ] || { echo "# exit status $status"; diag_file "$T/$unit.err"; }
	ok $r "a configuration error stops $unit for good (status $status, not restarted)"
	mv "$T/$cnf.good" "$C/$cnf"
done

# The daemons' standard error (the workers' and jobs' too) is in $T/*.err.
check_sanitizers
finish
