#!/bin/bash
# Held users and mailHost routing in the local channel l:
#   - mail for a user whose status is hold goes to the hold channel as a
#     held file: not delivered, no master job, no retry, no notice; `qm
#     held` lists it; released while the user is still held it comes back
#     to the hold channel; once the status is active, `qm reprocess
#     -channel=hold` delivers it to the INBOX;
#   - the delivery option hold holds its copy while mailbox delivers;
#   - a user whose mailHost is another system is queued to the channel the
#     rules give for @mailhost routes, as @mailhost:address; a user without
#     mailHost goes to the domain's mailRoutingSmartHost; with neither the
#     recipient fails with 5.4.4 and the sender gets a failure notice.
#
# SMTP channels (the routes to other hosts) and senders wait on channels
# that no job serves.  Only processes this test starts are signalled, by
# the pids the shell got.
. "$abs_top_srcdir/tests/cli/smtp-lib.sh"
smtp_instance
plan 44

sed -i -e '/^\$\*/i sender.example         $U%$D@parked-daemon' "$C/imta.cnf"
printf '\nparked pool NOPOOL\nparked-daemon\n' >>"$C/imta.cnf"
sed -i -e 's/ pool SMTP_POOL/ pool NOPOOL/' \
	-e 's/^hold reprocess held$/hold reprocess held backoff "pt1s"/' "$C/imta.cnf"
grep -q '^hold reprocess held backoff' "$C/imta.cnf"
ok $? "the configuration has the hold channel"
sed -i '1i SYNCH_TIME=2' "$C/job_controller.cnf"

# user UID [LINES]: a user of example.com (no mailHost unless LINES say).
user() {
	printf '\ndn: uid=%s,ou=People,o=example.com,o=example\nobjectClass: top\n' "$1"
	printf 'objectClass: inetOrgPerson\nobjectClass: inetUser\nobjectClass: inetMailUser\n'
	printf 'objectClass: inetLocalMailRecipient\nuid: %s\ncn: %s\nsn: User\n' "$1" "$1"
	printf 'mail: %s@example.com\n%b' "$1" "${2:-}"
}
{
	user holdopt 'mailHost: mail.example.com\nmailDeliveryOption: mailbox\nmailDeliveryOption: hold\n'
	user away 'mailHost: store2.example.com\nmailDeliveryOption: mailbox\n'
	user lost 'mailDeliveryOption: mailbox\n'
	printf '\ndn: o=smart.example,o=example\nobjectClass: top\nobjectClass: organization\n'
	printf 'objectClass: mailDomain\no: smart.example\nsunPreferredDomain: smart.example\n'
	printf 'mailRoutingSmartHost: hub.example.com\n'
	printf '\ndn: uid=sam,o=smart.example,o=example\nobjectClass: top\n'
	printf 'objectClass: inetMailUser\nobjectClass: inetLocalMailRecipient\nuid: sam\n'
	printf 'mail: sam@smart.example\n'
} >>"$C/directory.ldif"

enqueue() {
	local subject=$1
	shift
	printf 'Subject: %s\n\nThe body of %s.\n' "$subject" "$subject" |
		"$IMSIMTA" --config "$C" enqueue -from=ann@sender.example "$@" >"$OUT" 2>"$ERR"
}
held_files() {
	find "$QUEUE/${1:-hold}" -type f -name '*.HELD' 2>/dev/null | sort
}
held_count() {
	held_files "$@" | wc -l
}
held_is() {
	[ "$(held_count)" -eq "$1" ]
}
# The queue files (any state) of channel $1 that contain the text $2.
files_with() {
	local f
	for f in $(find "$QUEUE/$1" -type f 2>/dev/null | sort); do
		grep -qF -- "$2" "$f" && echo "$f"
	done
}
has_file_with() {
	[ -n "$(files_with "$1" "$2")" ]
}
count_delivered() {
	local uids
	uids=$(uids_with_subject "$1" "$2")
	set -- $uids
	echo $#
}
local_done() {
	[ "$(queue_count l)" -eq 0 ] && [ "$(queue_count ims-ms)" -eq 0 ] &&
		[ "$(queue_count reprocess)" -eq 0 ]
}
# set_attr UID ATTRIBUTE OLD NEW: change one line of a user's entry.
set_attr() {
	$PY - "$C/directory.ldif" "$@" <<'PY'
import sys
path, uid, attr, old, new = sys.argv[1:6]
blocks = open(path).read().split("\n\n")
for i, b in enumerate(blocks):
    if ("\n" + b).find("\ndn: uid=%s," % uid) >= 0:
        lines = b.split("\n")
        lines = [l for l in lines if l != "%s: %s" % (attr, old)]
        if new:
            lines.append("%s: %s" % (attr, new))
        blocks[i] = "\n".join(lines)
open(path, "w").write("\n\n".join(blocks))
PY
	# The directory file is reread when its mtime changes, checked at
	# most once a second.
	sleep 1.1
}

smtp_start_jc

# ---- a held user --------------------------------------------------------------
enqueue "held one" hank@example.com
ok $? "a message for hank@example.com (mailUserStatus: hold) is queued"
wait_until 200 held_is 1
ok $? "it lands on the hold channel as a held file"
wait_until 100 local_done
HF=$(held_files | head -n 1)
check_grep "for the address @hold-daemon:hank@example.com" "${HF:-/dev/null}" \
	"rfc822;hank@example.com @hold-daemon:hank@example.com"
check_grep "the l master logged where it went" "$LOGDIR/l_master.log" \
	"hank@example.com: 2.0.0 expanded to @hold-daemon:hank@example.com"
case "$(basename "${HF:-x}")" in ZZ*.HELD) r=0 ;; *) r=1 ;; esac
ok $r "the file was never tried (ZZ...HELD)"
ID=$(basename "${HF:-x}" .HELD)
ID=${ID#??}
"$IMSIMTA" --config "$C" qm held -channel=hold >"$OUT" 2>"$ERR"
check_grep "imsimta qm held lists it" "$OUT" "$ID"
sleep 3
[ "$(held_count)" -eq 1 ] && [ "$(basename "$HF")" = "$(basename "$(held_files | head -n 1)")" ]
ok $? "3 s later (backoff pt1s) it is still the same untried held file"
[ ! -e "$LOGDIR/hold_master.log" ]
ok $? "no master job ran for the hold channel"
[ -z "$(uids_with_subject hank "held one")" ]
ok $? "hank's INBOX does not have it"
[ "$(queue_count parked)" -eq 0 ]
ok $? "the sender got no notice"

# Released while hank is still held: routed again, and held again.
check_run "qm release of the held message" 0 "$IMSIMTA" --config "$C" qm release "$ID"
wait_until 200 held_is 1
ok $? "released while the user is still held, it comes back to the hold channel"
wait_until 100 local_done
HF2=$(held_files | head -n 1)
[ -n "$HF2" ] && [ "$(basename "$HF2")" != "$(basename "$HF")" ]
ok $? "as a new held file"
grep -qF "The body of held one." "${HF2:-/dev/null}"
ok $? "with its content"
[ -z "$(uids_with_subject hank "held one")" ]
ok $? "still not in hank's INBOX"

# ---- the delivery option hold --------------------------------------------------
enqueue "option hold" holdopt@example.com
wait_until 200 in_mailbox holdopt "option hold"
ok $? "holdopt (mailbox and hold) gets the mailbox copy"
wait_until 200 has_file_with hold "@hold-daemon:holdopt@example.com"
ok $? "and the hold option's copy waits on the hold channel"
[ "$(held_count)" -eq 2 ]
ok $? "held, like hank's"

# ---- release after the directory changed ----------------------------------------
set_attr hank mailUserStatus hold active
set_attr holdopt mailDeliveryOption hold ""
grep -q "^mailUserStatus: active" <(sed -n '/^dn: uid=hank,/,/^$/p' "$C/directory.ldif")
ok $? "hank's status is now active, holdopt's option hold is gone"
check_run "qm reprocess -channel=hold -all" 0 \
	"$IMSIMTA" --config "$C" qm reprocess -channel=hold -all
check_grep "it moved both held messages" "$OUT" "2 messages moved to reprocess."
wait_until 300 in_mailbox hank "held one"
r=$?
ok $r "hank's held message is delivered to his INBOX"
[ $r -eq 0 ] || { diag_file "$LOGDIR/reprocess_master.log"; diag_file "$LOGDIR/l_master.log"; }
holdopt_twice() {
	[ "$(count_delivered holdopt "option hold")" -eq 2 ]
}
wait_until 300 holdopt_twice
ok $? "holdopt's held copy is delivered too (the first copy was the mailbox's)"
wait_until 100 local_done
[ "$(held_count)" -eq 0 ] && [ "$(queue_count hold)" -eq 0 ]
ok $? "the hold channel is empty"
[ "$(count_delivered hank "held one")" -eq 1 ]
ok $? "hank has it once: nothing lost, nothing doubled"

# ---- held after the mail reached the store channel --------------------------------
# dave is active when his mail is queued to ims-ms, and held before the
# store channel runs: the mail moves to the hold channel, never retried
# there, and reaches the INBOX once he is active again.
stop_pid "$JC_PID"
enqueue "late hold" dave@ims-ms-daemon
[ "$(queue_count ims-ms)" -eq 1 ]
ok $? "with no job controller, a message for dave@ims-ms-daemon waits on ims-ms"
set_attr dave mailUserStatus active hold
smtp_start_jc
wait_until 200 has_file_with hold "@hold-daemon:dave@ims-ms-daemon"
r=$?
ok $r "dave is now held: the ims-ms master moves it to the hold channel"
[ $r -eq 0 ] || diag_file "$LOGDIR/ims-ms_master.log"
wait_until 100 local_done
ok $? "and it leaves the ims-ms queue"
check_grep "the store channel says so" "$LOGDIR/mail.log_current" \
	"mailbox dave is on hold: moved to the hold channel"
[ "$(held_count)" -eq 1 ] && [ -z "$(uids_with_subject dave "late hold")" ]
ok $? "held, and not in dave's INBOX"
set_attr dave mailUserStatus hold active
"$IMSIMTA" --config "$C" qm reprocess -channel=hold -all >"$OUT" 2>"$ERR"
wait_until 300 in_mailbox dave "late hold"
ok $? "active again and released: it is delivered to dave's INBOX"
wait_until 100 local_done
[ "$(count_delivered dave "late hold")" -eq 1 ] && [ "$(queue_count hold)" -eq 0 ]
ok $? "once, and the hold channel is empty"

# ---- mailHost ---------------------------------------------------------------------
check_run "test -rewrite of an @mailhost route" 0 \
	"$IMSIMTA" --config "$C" test -rewrite @store2.example.com:away@example.com
check_grep "the rules send @store2.example.com routes to tcp_local" "$OUT" \
	"tcp_local @store2.example.com:away@example.com"
enqueue "far away" away@example.com
wait_until 200 has_file_with tcp_local "@store2.example.com:away@example.com"
r=$?
ok $r "away@example.com (mailHost store2.example.com) is queued to tcp_local for its mail host"
[ $r -eq 0 ] || diag_file "$LOGDIR/l_master.log"
F=$(files_with tcp_local "@store2.example.com:away@example.com" | head -n 1)
check_grep "with the address as @mailhost:user@domain and its ORCPT" "${F:-/dev/null}" \
	"rfc822;away@example.com @store2.example.com:away@example.com"
[ "$(queue_count ims-ms)" -eq 0 ] && [ -z "$(uids_with_subject away "far away")" ]
ok $? "nothing is delivered to a mailbox here"

enqueue "smart" sam@smart.example
wait_until 200 has_file_with tcp_local "@hub.example.com:sam@smart.example"
ok $? "sam@smart.example (no mailHost) goes to its domain's mailRoutingSmartHost"

enqueue "nowhere" lost@example.com
wait_until 200 local_done
wait_until 50 grep -q "lost@example.com: 5.4.4" "$LOGDIR/l_master.log"
ok $? "lost@example.com (no mailHost, no smart host) fails with 5.4.4"
check_grep "the diagnostic says why" "$LOGDIR/l_master.log" \
	"5.4.4 lost@example.com cannot be routed: uid=lost,ou=People,o=example.com,o=example has no mailHost and its domain example.com has no mailRoutingSmartHost"
wait_until 100 has_file_with parked "lost@example.com"
ok $? "and the sender gets a failure notice"
F=$(files_with parked "lost@example.com" | head -n 1)
check_grep "the notice quotes the reason" "${F:-/dev/null}" "mailRoutingSmartHost"

check_sanitizers
finish
