#!/bin/bash
# The reprocess channel: mail queued to it is routed again by the rewrite
# rules and the directory as they are now, and queued onward with its
# envelope.
#   - a message queued before a directory change (alice now forwards to
#     another domain) goes where the new data says, with From, ENVID, RET,
#     ORCPT and NOTIFY as they were;
#   - `imsimta qm reprocess` moves queued messages to reprocess after a
#     change of the rewrite rules; they land on the new channel;
#   - a recipient whose domain no longer routes fails, and the sender gets
#     a failure notice;
#   - SIGKILL of the reprocess master between the onward enqueue and the
#     recorded outcomes, and at a random moment of a batch, loses nothing.
#
# Senders and remote domains wait on channels that no job serves (parked,
# stuck), and so does ims-ms: tests read the queue files where they land.
# Only processes this test starts are signalled, by the pids the shell got
# (master jobs as children of the job controller's pid).
. "$abs_top_srcdir/tests/cli/smtp-lib.sh"
smtp_instance
plan 29

sed -i -e '/^\$\*/i sender.example         $U%$D@parked-daemon' \
	-e '/^\$\*/i example.net            $U%$D@parked-daemon' \
	-e '/^\$\*/i moved.example          $U%$D@stuck-daemon' \
	-e '/^\$\*/i gone.example           $U%$D@stuck-daemon' "$C/imta.cnf"
printf '\nparked pool NOPOOL\nparked-daemon\n\nstuck pool NOPOOL\nstuck-daemon\n' >>"$C/imta.cnf"
sed -i -e 's/ pool IMS_POOL/ pool NOPOOL/' \
	-e 's/^reprocess reprocess .*/reprocess reprocess maxjobs 1 addrsperfile 1 backoff "pt1s"/' \
	"$C/imta.cnf"
sed -i '1i SYNCH_TIME=2' "$C/job_controller.cnf"
RLOG="$LOGDIR/reprocess_master.log"

enqueue() {
	"$IMSIMTA" --config "$C" enqueue "$@" >"$OUT" 2>"$ERR"
}

# The queue files of channel $1 that contain the text $2.
files_with() {
	local f
	for f in $(queue_files "$1"); do
		grep -qF -- "$2" "$f" && echo "$f"
	done
}

has_file_with() {
	[ -n "$(files_with "$1" "$2")" ]
}

reprocess_empty() {
	[ "$(queue_count reprocess)" -eq 0 ]
}

# The live reprocess master of the running job controller, if any.
reprocess_master() {
	local p
	for p in $(pgrep -P "$JC_PID" 2>/dev/null); do
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "--channel reprocess" &&
			echo "$p"
	done
}

# ---- a directory change --------------------------------------------------
printf 'Subject: for alice\n\nqueued before the change\n' |
	enqueue -channel=reprocess -from=ann@sender.example -envid=ENV-A -ret=hdrs \
		-notify=SUCCESS,FAILURE alice@example.com
ok $? "a message for alice@example.com is queued to reprocess"

# alice's mail now goes to her address at example.net.
$PY - "$C/directory.ldif" <<'PY'
import sys
path = sys.argv[1]
blocks = open(path).read().split("\n\n")
for i, b in enumerate(blocks):
    if "\ndn: uid=alice," in "\n" + b:
        b = b.replace("mailDeliveryOption: mailbox",
                      "mailDeliveryOption: forward\nmailForwardingAddress: alice@example.net")
        blocks[i] = b
open(path, "w").write("\n\n".join(blocks))
PY
grep -q "mailForwardingAddress: alice@example.net" "$C/directory.ldif"
ok $? "the directory now forwards alice to alice@example.net"

smtp_start_jc
wait_until 300 has_file_with parked "alice@example.net"
r=$?
ok $r "the message lands where the new directory data sends it"
[ $r -eq 0 ] || { diag_file "$RLOG"; diag_file "$LOGDIR/l_master.log"; }
F=$(files_with parked "alice@example.net" | head -1)
check_grep "with its envelope From" "${F:-/dev/null}" "from ann@sender.example"
check_grep "its ENVID" "${F:-/dev/null}" "envid ENV-A"
check_grep "its RET" "${F:-/dev/null}" "ret hdrs"
check_grep "and the recipient's NOTIFY and ORCPT" "${F:-/dev/null}" \
	"rcpt SUCCESS,FAILURE rfc822;alice@example.com alice@example.net"
check_grep "the reprocess master routed it to l" "$RLOG" \
	"alice@example.com: 2.0.0 routed again: alice@example.com on channel l"
[ "$(queue_count ims-ms)" -eq 0 ]
ok $? "nothing went to alice's mailbox by the old data"
wait_until 100 reprocess_empty
ok $? "the reprocess queue is empty"

# ---- imsimta qm reprocess after a change of the rewrite rules --------------
printf 'Subject: for bob\n\nwaiting\n' |
	enqueue -from=ann@sender.example -envid=ENV-B -notify=NEVER bob@moved.example
printf 'Subject: for carl\n\nwaiting\n' |
	enqueue -from=ann@sender.example carl@gone.example
[ "$(queue_count stuck)" -eq 2 ]
ok $? "two messages wait on channel stuck"
stop_pid "$JC_PID"
sed -i -e 's/^moved.example .*/moved.example          $U%$D@parked-daemon/' \
	-e 's/^gone.example .*/gone.example           $?retired/' "$C/imta.cnf"
check_run "the new rules route moved.example to parked" 0 \
	"$IMSIMTA" --config "$C" test -rewrite bob@moved.example
check_grep "as test -rewrite shows" "$OUT" "parked"

check_run "qm reprocess -all -channel=stuck succeeds" 0 \
	"$IMSIMTA" --config "$C" qm reprocess -all -channel=stuck
check_grep "it says how many it moved" "$OUT" "2 messages moved to reprocess."
[ "$(queue_count stuck)" -eq 0 ] && [ "$(queue_count reprocess)" -eq 2 ]
ok $? "the messages left stuck for reprocess"
check_run "qm reprocess of an unknown id fails" 65 \
	"$IMSIMTA" --config "$C" qm reprocess 0000000000000000
smtp_start_jc
wait_until 300 has_file_with parked "bob@moved.example"
r=$?
ok $r "bob's message follows the new rule to parked"
[ $r -eq 0 ] || diag_file "$RLOG"
F=$(files_with parked "bob@moved.example" | head -1)
check_grep "with ENVID and NOTIFY kept" "${F:-/dev/null}" "envid ENV-B"
check_grep "and its ORCPT" "${F:-/dev/null}" "rcpt NEVER rfc822;bob@moved.example bob@moved.example"
wait_until 300 has_file_with parked "Final-Recipient: rfc822; carl@gone.example"
r=$?
ok $r "carl's domain no longer routes: the sender gets a failure notice"
[ $r -eq 0 ] || diag_file "$RLOG"
N=$(files_with parked "Final-Recipient: rfc822; carl@gone.example" | head -1)
check_grep "the notice says why" "${N:-/dev/null}" "Status: 5.1.2"
check_grep "the master logged the failure" "$RLOG" \
	"carl@gone.example: 5.1.2 carl@gone.example does not route: retired"

# ---- SIGKILL during a batch ------------------------------------------------
# One enqueue, one queue file per recipient (addrsperfile 1), bodies large
# enough that the batch takes a moment.
stop_pid "$JC_PID"
COUNT=150
{
	printf 'Subject: batch\n\n'
	for i in $(seq 1 2000); do printf 'line %s of a body large enough to take a moment\n' "$i"; done
} >"$T/body"
users=""
for i in $(seq 1 $COUNT); do users="$users user$i@example.net"; done
# shellcheck disable=SC2086
enqueue -channel=reprocess -from=ann@sender.example $users <"$T/body"
[ "$(queue_count reprocess)" -eq $COUNT ]
ok $? "$COUNT messages wait on reprocess"

# A SIGKILL from outside, as soon as the master has queued something onward.
base=$(queue_count parked)
smtp_start_jc
KILLED=""
tries=500
while [ $tries -gt 0 ] && [ -z "$KILLED" ]; do
	m=$(reprocess_master | head -1)
	if [ -n "$m" ] && [ "$(queue_count parked)" -gt "$base" ]; then
		kill -KILL "$m" 2>/dev/null && KILLED=$m
	fi
	tries=$((tries - 1))
done
echo "# killed master ${KILLED:-none} with $(queue_count reprocess) messages left on reprocess"
[ -n "$KILLED" ]
ok $? "the reprocess master was killed with SIGKILL"
stop_pid "$JC_PID"

# And one between the onward enqueue and the recorded outcomes.
: >"$T/crash-once"
IMTA_TEST_CRASH_AFTER_ONWARD="$T/crash-once" smtp_start_jc
wait_until 300 test ! -e "$T/crash-once"
ok $? "a master was killed after queueing a message onward, before recording it"
wait_until 600 reprocess_empty
ok $? "the restarted masters work the queue off"
# shellcheck disable=SC2046
grep -h '^rcpt ' $(queue_files parked) | awk '{ print $4 }' | sort -u >"$T/onward"
lost=""
for i in $(seq 1 $COUNT); do
	grep -qx "user$i@example.net" "$T/onward" || lost="$lost user$i"
done
[ -z "$lost" ]
ok $? "every message of the batch was queued onward (lost:${lost:- none})"

check_sanitizers
finish
