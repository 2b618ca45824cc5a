#!/bin/bash
# Delivery status notifications end to end: the job controller runs
# imta-master for a test channel whose recipients choose their outcome
# (tests/plugins/testchannel.c), and the notices land in the queue of a
# parked channel (the senders' domain), where they are read back.
#   - a failure notice: envelope <>, the sender as recipient, Status,
#     Remote-MTA and Diagnostic-Code, the original attached, the
#     postmaster copy (copysendpost), the master's log line;
#   - none with NOTIFY=NEVER, none to an empty return path, none for
#     failures when NOTIFY lacks FAILURE; a success notice with
#     NOTIFY=SUCCESS; RET=HDRS and ENVID;
#   - delay warnings once per notices age (RETURN_UNITS=1, the created
#     time moved back while the controller is stopped), remembered in "W"
#     records, then the failure notice at the last age (4.4.7);
#   - crash safety: the master killed (test hook) between queueing a
#     failure notice and recording the failure leaves the original queued,
#     and the retry gives exactly one more notice.
#
# Only processes this test starts are signalled: the job controller through
# imsimta stop (its pid file), the scripted controller and imta-master by
# the pids the shell got for them.
. "$abs_top_srcdir/tests/cli/lib.sh"
make_instance
plan 56

PY=${PYTHON3:-python3}
export IMTA_LIBEXEC="${IMTA_LIBEXEC:-$abs_top_builddir/core/libexec}"
Q="$T/var/queue"
RUN="$T/var/run"
MLOG="$T/var/log/test_master.log"
RECORD="$T/outcomes"
# Only the test channel's plugin: the others are not needed here.
rm -f "$T/plugins/"*.so
install -m 644 "$abs_top_builddir/tests/plugins/.libs/testchannel.so" "$T/plugins/"

cat >"$C/imta.cnf" <<EOF
! Senders live at sender.example: their notices wait on channel parked.
sender.example  \$U%\$D@parked-daemon
test.example    \$U%\$D@test-daemon

defaults notices 1 2 4 copysendpost logging

l pool NOPOOL
mail.example.com

test testchannel $RECORD pool TESTPOOL backoff "pt1s"
test-daemon

parked pool NOPOOL
parked-daemon
EOF
cat >"$C/job_controller.cnf" <<'EOF'
MAX_MESSAGES=1000
SYNCH_TIME=2
[POOL=DEFAULT]
JOB_LIMIT=10
[POOL=TESTPOOL]
JOB_LIMIT=2
[CHANNEL=test]
IDLE_LINGER=1
EOF
# Ages in hours: warnings after 1 and 2 hours, returned after 4.
echo "RETURN_UNITS=1" >>"$C/option.dat"
printf 'From: Ann <ann@sender.example>\nSubject: notice test\n\nThe body line.\n' \
	>"$T/message"

start() {
	"$IMSIMTA" --config "$C" start job_controller >/dev/null 2>"$ERR"
}

stop() {
	"$IMSIMTA" --config "$C" stop job_controller --timeout 20 >/dev/null 2>&1
}
trap 'stop; rm -rf "$T"' EXIT

# enqueue OPTION... ADDRESS...: queue the test message to channel test from
# ann@sender.example (unless an option says otherwise); prints the queue id.
enqueue() {
	"$IMSIMTA" --config "$C" enqueue -channel=test -from=ann@sender.example "$@" \
		<"$T/message" | cut -d' ' -f1
}

# original ID: the queue file of message ID in channel test, if any.
original() {
	find "$Q/test" -type f -name "*$1.*" 2>/dev/null | head -1
}

original_gone() {
	[ -z "$(original "$1")" ]
}

# notices DIR ID: the notice files in queue DIR (parked, l) about message ID.
notices() {
	grep -l -r -F -e "X-IMTA-Queue-ID: $2" "$Q/$1" 2>/dev/null
}

count_notices() {
	notices "$1" "$2" | wc -l
}

attempts() {
	grep -c " $1@test.example " "$RECORD" 2>/dev/null
}

# attempted LOCALPART N: the test channel saw LOCALPART at least N times.
attempted() {
	[ "$(attempts "$1")" -ge "$2" ]
}

# backdate ID SECONDS: the message was queued SECONDS ago (the controller
# is stopped; the width of the number does not change).
backdate() {
	local file created
	file=$(original "$1")
	created=$(( $(date +%s) - $2 ))
	sed -i "s/^created [0-9]*\$/created $created/" "$file"
}

check_run "enqueue refuses NOTIFY=NEVER with anything else" 64 \
	"$IMSIMTA" --config "$C" enqueue -channel=test -notify=NEVER,SUCCESS x@test.example
check_grep "and says what it expected" "$ERR" \
	'expected NEVER or a list of SUCCESS, FAILURE, DELAY after -notify=, got "NEVER,SUCCESS"'

start
ok $? "the job controller starts"

# ---- a failure notice ---------------------------------------------------------
id=$(enqueue fail1@test.example reject1@test.example ok1@test.example)
wait_until 200 original_gone "$id"
ok $? "the message with two failing recipients is finished"
[ "$(count_notices parked "$id")" -eq 1 ]
ok $? "one failure notice is queued to the sender's channel"
N=$(notices parked "$id" | head -1)
grep -qx 'from ' "$N"
ok $? "the envelope From line is the null path"
grep -qx 'rcpt - rfc822;ann@sender.example ann@sender.example' "$N"
ok $? "its recipient is the original sender, routed to channel parked"
check_grep "it is a multipart/report" "$N" \
	"Content-Type: multipart/report; report-type=delivery-status;"
check_grep "To: is the return path" "$N" "To: <ann@sender.example>"
check_grep "it is signed by RETURN_PERSONAL and RETURN_ADDRESS" "$N" \
	"From: Mail Delivery System <postmaster@mail.example.com>"
check_grep "Auto-Submitted" "$N" "Auto-Submitted: auto-replied"
check_grep "the local failure's Status" "$N" "Status: 5.1.1"
check_grep "the local failure's Diagnostic-Code" "$N" \
	"Diagnostic-Code: X-IMTA; 5.1.1 refused by the test channel"
check_grep "the remote refusal's Remote-MTA" "$N" "Remote-MTA: dns; mx.test.example"
check_grep "the remote refusal's Diagnostic-Code" "$N" \
	"Diagnostic-Code: smtp; 550 5.1.1 no such mailbox here"
[ "$(grep -c '^Final-Recipient: ' "$N")" -eq 2 ]
ok $? "the report covers the two failed recipients, not the delivered one"
check_no_grep "the delivered recipient is not reported" "$N" "ok1@test.example"
check_grep "the original is attached whole" "$N" "Content-Type: message/rfc822"
check_grep "with its body" "$N" "The body line."
P=$(notices l "$id")
[ -n "$P" ] && grep -qx 'rcpt - rfc822;postmaster@mail.example.com postmaster@mail.example.com' "$P"
ok $? "copysendpost: the postmaster gets a copy (queued to channel l)"
nid=$(sed -n 's/^id //p' "$N")
check_grep "the master's log names the notice and the original" "$MLOG" \
	"$id test: failure notice $nid"

# ---- no notice ----------------------------------------------------------------
id=$(enqueue -notify=NEVER fail2@test.example)
wait_until 200 original_gone "$id"
ok $? "a failing message with NOTIFY=NEVER is finished"
[ "$(count_notices parked "$id")" -eq 0 ] && [ "$(count_notices l "$id")" -eq 0 ]
ok $? "NOTIFY=NEVER: no notice, no postmaster copy"
check_grep "the log says the sender asked for none (K)" "$MLOG" \
	"$id test: K no failure notice about 1 recipient"

id=$(enqueue -from= fail3@test.example)
wait_until 200 original_gone "$id"
ok $? "a failing message with an empty return path is finished"
[ "$(count_notices parked "$id")" -eq 0 ] && [ "$(count_notices l "$id")" -eq 0 ]
ok $? "empty return path: no notice is sent about a notice"
check_grep "the log says why" "$MLOG" "$id test: no failure notice sent: the return path is empty"

# ---- RET=HDRS and ENVID -----------------------------------------------------------
id=$(enqueue -ret=hdrs -envid=ENV42 fail4@test.example)
wait_until 200 original_gone "$id"
N=$(notices parked "$id" | head -1)
[ -n "$N" ]
ok $? "RET=HDRS: a failure notice is sent"
check_grep "RET=HDRS: only the header is returned" "$N" "Content-Type: text/rfc822-headers"
check_grep "the header is there" "$N" "Subject: notice test"
check_no_grep "the body is not" "$N" "The body line."
check_grep "ENVID is repeated" "$N" "Original-Envelope-Id: ENV42"

# ---- success notices, and NOTIFY without FAILURE ----------------------------------
id=$(enqueue -notify=SUCCESS ok5@test.example fail5@test.example)
wait_until 200 original_gone "$id"
[ "$(count_notices parked "$id")" -eq 1 ]
ok $? "NOTIFY=SUCCESS: one notice, for the delivered recipient only"
N=$(notices parked "$id" | head -1)
check_grep "it is a success notice" "$N" "Action: delivered"
check_grep "for ok5" "$N" "Final-Recipient: rfc822; ok5@test.example"
check_no_grep "NOTIFY without FAILURE: the failure is not reported" "$N" \
	"Final-Recipient: rfc822; fail5@test.example"
stop

# ---- delay warnings, once per age, then the return --------------------------------
id=$(enqueue defer6@test.example)
backdate "$id" 5400
start
wait_until 200 attempted defer6 3
ok $? "the deferred message is tried again and again"
stop
[ "$(count_notices parked "$id")" -eq 1 ]
ok $? "past the first age (1 hour): exactly one delay warning"
N=$(notices parked "$id" | head -1)
check_grep "it is a delay warning" "$N" "Action: delayed"
check_grep "with the last error" "$N" "Diagnostic-Code: X-IMTA; 4.2.0 deferred by the test channel"
check_grep "and when the message will be returned" "$N" "Will-Retry-Until: "
nid=$(sed -n 's/^id //p' "$N")
grep -q "^W [0-9]* 3600 $nid sent+20to+20ann@sender.example\$" "$(original "$id")"
ok $? "the queue file remembers the warning (W record naming the notice)"
check_grep "the log names the warning" "$MLOG" "$id test: delay warning (notices age 1 hour) $nid"
"$IMSIMTA" --config "$C" qm history "$id" >"$OUT" 2>&1
check_grep "qm history shows the warning" "$OUT" \
	"    delay warning at the notices age of 1 hour, message $nid: sent to ann@sender.example"

backdate "$id" 9000
before=$(attempts defer6)
start
wait_until 200 attempted defer6 $((before + 3))
ok $? "more attempts after the second age"
stop
[ "$(count_notices parked "$id")" -eq 2 ]
ok $? "past the second age (2 hours): a second warning, and only one"
grep -q "^W [0-9]* 7200 " "$(original "$id")"
ok $? "the second warning is remembered too"

backdate "$id" 15000
start
wait_until 200 original_gone "$id"
ok $? "past the last age (4 hours) the message is returned"
[ "$(count_notices parked "$id")" -eq 3 ]
ok $? "one failure notice follows the two warnings"
N=$(grep -l -F "Action: failed" $(notices parked "$id") | head -1)
check_grep "its Status is 4.4.7" "$N" "Status: 4.4.7"
check_grep "its diagnostic says it expired" "$N" \
	"Diagnostic-Code: X-IMTA; 4.4.7 message expired; last error: 4.2.0 deferred by"
stop

# ---- crash between the notice and the record ----------------------------------------
# A scripted controller hands the message to imta-master once; the test
# hook kills the master after the notice is queued, before the record.
id=$(enqueue fail7@test.example)
path=$(original "$id")
rel=${path#"$Q/"}
cat >"$T/fakejc.py" <<'EOF'
import os, socket, sys
sock, rel = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sock)
s.listen(1)
s.settimeout(30)
print("ready", flush=True)
c, _ = s.accept()
c.settimeout(30)
f = c.makefile("rwb")
f.readline()
f.write(b"OK 1\n"); f.flush()
f.readline()
f.write(("MSG %s\n" % rel).encode()); f.flush()
line = f.readline()
print("EOF" if not line else line.decode().strip(), flush=True)
os.unlink(sock)
EOF
mkdir -p "$RUN"
"$PY" "$T/fakejc.py" "$RUN/job_controller.sock" "$rel" >"$T/fakejc.out" &
FAKE=$!
wait_until 100 test -S "$RUN/job_controller.sock"
touch "$T/crash-flag"
# (The braces send the shell's own "Killed" to /dev/null too.)
{
	IMTA_TEST_CRASH_AFTER_NOTICE="$T/crash-flag" "$IMTA_LIBEXEC/imta-master" \
		--config "$C" --channel test --log "$T/crash.log"
	status=$?
} >/dev/null 2>&1
wait "$FAKE"
[ "$status" -eq 137 ] && [ ! -e "$T/crash-flag" ] && grep -qx EOF "$T/fakejc.out"
ok $? "the test hook killed the master after the notice (status $status)"
[ "$(count_notices parked "$id")" -eq 1 ]
ok $? "the failure notice was queued before the crash"
[ -f "$path" ] && ! grep -q '^R ' "$path"
ok $? "the original is still queued, its failure unrecorded"
start
wait_until 200 original_gone "$id"
ok $? "the retry finishes the message"
[ "$(count_notices parked "$id")" -eq 2 ]
ok $? "the retry gives one more notice, not more"
stop
finish
