#!/bin/bash
# Log rotation with the logrotate configuration the build writes
# (logrotate/imta), run by the real logrotate on a running instance: every
# log is renamed, `imsimta reload` has the dispatcher and the job
# controller reopen theirs and pass the signal on, and the worker and the
# master job that served the first message (still running: a job lingers
# for more work) write the second message's lines into the new files.
#
# Only processes this test started are signalled, by the pids the shell got.
. "$abs_top_srcdir/tests/cli/smtp-lib.sh"
smtp_instance
plan 11

ROTATE="$abs_top_builddir/logrotate/imta"
LOG_FILES="dispatcher.log job_controller.log smtp_server.log l_master.log ims-ms_master.log
mail.log_current"

# ---- the file ----------------------------------------------------------

logdir=$(sed -n 's/^IMTA_LOG=//p' "$abs_top_builddir/example/imta_tailor")
[ -n "$logdir" ] && grep -qx "$logdir/\*\.log $logdir/mail\.log_current {" "$ROTATE" &&
	grep -q "^[[:space:]]*/.*/imsimta reload >/dev/null$" "$ROTATE" && ! grep -q "@" "$ROTATE"
r=$?
[ $r -eq 0 ] || diag_file "$ROTATE"
ok $r "logrotate/imta rotates the process logs and mail.log_current of $logdir, then runs imsimta reload"

# ---- a rotation --------------------------------------------------------

IMTA_CONFIG="$C" "$IMSIMTA" start >"$OUT" 2>"$ERR"
r=$?
JC_PID=$(cat "$T/var/run/job_controller.pid" 2>/dev/null)
DISP_PID=$(cat "$T/var/run/dispatcher.pid" 2>/dev/null)
[ $r -eq 0 ] || { diag_file "$OUT"; diag_file "$ERR"; }
ok $r "imsimta start starts the job controller and the dispatcher"

# send SUBJECT: one message to alice through the dispatcher, delivered.
send() {
	swaks --server "127.0.0.1:$SMTP_PORT" --from someone@remote.test --to alice@example.com \
		--header "Subject: $1" --body "hello" >"$OUT" 2>&1 &&
		grep -q "<- *250 2.0.0 Ok: queued as" "$OUT" && wait_delivered alice "$1"
}

# pids FILE PROGRAM: the pids of PROGRAM's lines in FILE.
pids() {
	sed -n "s/^[^ ]* $2\[\([0-9]*\)\]: .*/\1/p" "$1" 2>/dev/null | sort -u | tr '\n' ' '
}

# missing_logs SUFFIX: which of LOG_FILES, with SUFFIX, are missing or empty.
missing_logs() {
	local f
	for f in $LOG_FILES; do
		[ -s "$LOGDIR/$f$1" ] || printf '%s ' "$f$1"
	done
}

send "before rotation"
r=$?
missing=$(missing_logs "")
[ $r -eq 0 ] && [ -z "$missing" ]
ok $? "a first message is delivered and every log is written${missing:+ (missing: $missing)}"
job=$(pids "$LOGDIR/ims-ms_master.log" imta-master)
worker=$(pids "$LOGDIR/smtp_server.log" imta-worker)

sed -e "s|^[^#]*\*\.log [^ ]*mail\.log_current {|$LOGDIR/*.log $LOGDIR/mail.log_current {|" \
	-e "s|^\([[:space:]]*\)/.*/imsimta reload|\1IMTA_CONFIG=$C $IMSIMTA reload|" \
	"$ROTATE" >"$T/logrotate.conf"
logrotate -f -s "$T/logrotate.state" "$T/logrotate.conf" >"$OUT" 2>&1
r=$?
missing=$(missing_logs .1)
[ $r -eq 0 ] && [ -z "$missing" ]
r=$?
[ $r -eq 0 ] || { diag_file "$OUT"; find "$LOGDIR" | sed 's/^/# /'; }
ok $r "logrotate renames every log${missing:+ (missing: $missing)}"

wait_until 100 grep -q "log reopened" "$LOGDIR/dispatcher.log"
ok $? "imsimta reload, run by logrotate, has the dispatcher write a new dispatcher.log"
wait_until 100 grep -q "log reopened" "$LOGDIR/job_controller.log"
ok $? "and the job controller a new job_controller.log"

send "after rotation"
ok $? "a second message is delivered"

new_job=$(pids "$LOGDIR/ims-ms_master.log" imta-master)
delivery="ims-ms: attempt 1: 1 delivered"
[ -n "$job" ] && [ "$new_job" = "$job" ] && grep -q "$delivery" "$LOGDIR/ims-ms_master.log"
r=$?
[ $r -eq 0 ] || { echo "# job before: $job, in the new log: $new_job"; diag_file "$LOGDIR/ims-ms_master.log"; }
ok $r "the store's master job that lived through the rotation logs its delivery in the new ims-ms_master.log (pid $job)"
[ "$(grep -c "$delivery" "$LOGDIR/ims-ms_master.log.1")" -eq 1 ]
ok $? "the rotated ims-ms_master.log holds the first delivery only"

new_worker=$(pids "$LOGDIR/smtp_server.log" imta-worker)
[ -n "$worker" ] && [ "$new_worker" = "$worker" ]
r=$?
[ $r -eq 0 ] || { echo "# worker before: $worker, in the new log: $new_worker"; diag_file "$LOGDIR/smtp_server.log"; }
ok $r "the worker that served the first session logs the second in the new smtp_server.log (pid $worker)"

IMTA_CONFIG="$C" "$IMSIMTA" stop >"$OUT" 2>&1 && wait_until 100 gone "$DISP_PID" &&
	wait_until 100 gone "$JC_PID" && DISP_PID="" && JC_PID="" &&
	IMTA_CONFIG="$C" "$IMSIMTA" reload >"$OUT" 2>&1
r=$?
[ $r -eq 0 ] || diag_file "$OUT"
ok $r "imsimta reload with nothing running exits 0, as logrotate needs"

finish
