#!/bin/bash
# imsimta enqueue, qm (directory, held, summary, read, history, hold,
# release, delete) with the job controller stopped, then counters, state,
# submit and the start/stop verbs with it running.
. "$abs_top_srcdir/tests/cli/lib.sh"
make_instance
plan 64

Q="$T/var/queue/bitbucket"
trap '"$IMSIMTA" --config "$C" stop job_controller --timeout 5 >/dev/null 2>&1; rm -rf "$T"' EXIT

# ---- enqueue ---------------------------------------------------------------
printf 'Subject: one\r\n\r\nfirst body\r\n' >"$T/one"
check_run "enqueue queues a message from standard input" 0 \
	"$IMSIMTA" --config "$C" enqueue -from=ann@example.org a@bitbucket.example.com \
	b@bitbucket.example.com <"$T/one"
grep -Eq '^[0-9A-Z]{16} bitbucket/ZZ[0-9A-Z]{16}\.00$' "$OUT"
ok $? "enqueue prints the queue id and the file"
ID1=$(cut -d' ' -f1 "$OUT")
printf 'Subject: two\n\nsecond\n' >"$T/two"
check_run "enqueue -from= queues with the null path" 0 \
	"$IMSIMTA" --config "$C" enqueue -from= c@bitbucket.example.com <"$T/two"
ID2=$(cut -d' ' -f1 "$OUT")
check_run "enqueue -channel= names a channel that does not exist" 64 \
	"$IMSIMTA" --config "$C" enqueue -channel=nosuch x@example.com </dev/null
check_grep "and says so" "$ERR" "imsimta enqueue: no channel nosuch in"
check_run "enqueue refuses a malformed address" 65 \
	"$IMSIMTA" --config "$C" enqueue "a b@@example.com" <"$T/one"
check_run "enqueue without recipients is a usage error" 64 "$IMSIMTA" --config "$C" enqueue
check_run "enqueue --help" 0 "$IMSIMTA" --config "$C" enqueue --help
check_grep "enqueue's help gives the exit statuses" "$OUT" "Exit status: 0 queued, 64 usage"

# ---- listings --------------------------------------------------------------
check_run "qm directory lists the queue" 0 "$IMSIMTA" --config "$C" qm directory
check_grep "with a header per channel" "$OUT" "Channel: bitbucket"
check_grep "a numbered line per message" "$OUT" "ZZ$ID1.00"
check_grep "and the grand total" "$OUT" "Grand total size:                2"
check_run "qm summary counts per channel" 0 "$IMSIMTA" --config "$C" qm summary
grep -Eq '^bitbucket +2 +3 +0 +2 ' "$OUT"
ok $? "two messages, three recipients, none held, two blocks"
check_run "qm directory -channel= of an empty channel" 0 \
	"$IMSIMTA" --config "$C" qm directory -channel=tcp_local
check_grep "says the queue is empty" "$OUT" "The queue is empty."
check_run "qm directory of an unknown channel" 64 \
	"$IMSIMTA" --config "$C" qm directory -channel=nosuch

# ---- read and history --------------------------------------------------------
check_run "qm read shows a message" 0 "$IMSIMTA" --config "$C" qm read "$ID1"
check_grep "its queue id" "$OUT" "Queue id:      $ID1"
check_grep "its envelope From" "$OUT" "From:          <ann@example.org>"
check_grep "its recipients" "$OUT" "2. <b@bitbucket.example.com>  pending"
check_grep "and its content, with LF line ends" "$OUT" "first body"
check_no_grep "no CR is left" "$OUT" $'\r'
check_run "qm read -envelope" 0 "$IMSIMTA" --config "$C" qm read "$ID2" -envelope
check_grep "shows the null path" "$OUT" "From:          <>"
check_no_grep "without the content" "$OUT" "second"
check_run "qm read takes a file name too" 0 "$IMSIMTA" --config "$C" qm read "ZZ$ID2.00"
check_run "qm read of an unknown id" 65 "$IMSIMTA" --config "$C" qm read 0000000000000000
check_grep "says there is no such message" "$ERR" "no queued message 0000000000000000"
check_run "qm read of something that is not an id" 64 "$IMSIMTA" --config "$C" qm read nonsense
check_run "qm history before any attempt" 0 "$IMSIMTA" --config "$C" qm history "$ID1"
check_grep "says so" "$OUT" "No delivery attempts yet."
# One attempt recorded as the queue store writes it (imta-queue(5)).
printf 'R 1800000000 1 Q 4.2.1+20mailbox+20busy\nA 1800000000 1 1800003600 4.2.1+20mailbox+20busy\n' \
	>>"$Q/ZZ$ID1.00"
check_run "qm history shows recorded attempts" 0 "$IMSIMTA" --config "$C" qm history "$ID1"
check_grep "the attempt and its reason" "$OUT" ": 4.2.1 mailbox busy"
check_grep "the recipient's outcome" "$OUT" "<b@bitbucket.example.com> deferred: 4.2.1 mailbox busy"

# ---- hold, release, delete ------------------------------------------------------
check_run "qm hold" 0 "$IMSIMTA" --config "$C" qm hold "$ID2"
check_grep "names the held file" "$OUT" "Held $ID2 (bitbucket/ZZ$ID2.HELD)"
check_run "qm held lists it" 0 "$IMSIMTA" --config "$C" qm held
check_grep "by its held name" "$OUT" "ZZ$ID2.HELD"
check_no_grep "and nothing else" "$OUT" "ZZ$ID1"
check_run "qm hold of a held message" 0 "$IMSIMTA" --config "$C" qm hold "$ID2"
check_grep "says it is held already" "$OUT" "is already held"
check_run "qm release" 0 "$IMSIMTA" --config "$C" qm release "$ID2"
[ -f "$Q/ZZ$ID2.00" ] && [ ! -e "$Q/ZZ$ID2.HELD" ]
ok $? "the released file has its normal name again"
check_run "qm delete" 0 "$IMSIMTA" --config "$C" qm delete "$ID2"
[ ! -e "$Q/ZZ$ID2.00" ]
ok $? "the deleted file is gone"
check_run "qm delete of a deleted message" 65 "$IMSIMTA" --config "$C" qm delete "$ID2"
check_run "qm delete -all needs -noconfirm without a terminal" 64 \
	"$IMSIMTA" --config "$C" qm delete -all </dev/null
check_run "qm delete -all -noconfirm" 0 "$IMSIMTA" --config "$C" qm delete -all -noconfirm
check_grep "counts what it deleted" "$OUT" "1 message deleted."
printf 'directory\nbogus\nexit\n' | "$IMSIMTA" --config "$C" qm >"$OUT" 2>"$ERR"
grep -qF "The queue is empty." "$OUT" && grep -qF 'unknown subcommand "bogus"' "$ERR"
ok $? "qm reads subcommands from standard input"

# ---- without a job controller ------------------------------------------------------
check_run "counters needs the job controller" 69 "$IMSIMTA" --config "$C" counters
check_grep "and says it is not running" "$ERR" "the job controller is not running"
check_run "state needs the job controller" 69 "$IMSIMTA" --config "$C" state
check_run "stop when nothing runs" 0 "$IMSIMTA" --config "$C" stop job_controller
check_run "stopping a dispatcher that does not run succeeds" 0 "$IMSIMTA" --config "$C" stop dispatcher

# ---- with a job controller ----------------------------------------------------------
check_run "start job_controller" 0 "$IMSIMTA" --config "$C" start job_controller
check_run "a second start is refused" 1 "$IMSIMTA" --config "$C" start job_controller
printf 'Subject: three\n\nthird\n' | "$IMSIMTA" --config "$C" enqueue x@bitbucket.example.com >/dev/null
for _ in $(seq 1 50); do
	[ -z "$(ls "$Q")" ] && break
	sleep 0.1
done
check_run "counters" 0 "$IMSIMTA" --config "$C" counters
grep -Eq '^bitbucket +1 +1 +0 +0$' "$OUT"
ok $? "counts the message enqueued and delivered"
check_run "state" 0 "$IMSIMTA" --config "$C" state
check_run "submit makes a channel due now" 0 "$IMSIMTA" --config "$C" submit bitbucket
check_run "stop job_controller" 0 "$IMSIMTA" --config "$C" stop job_controller
finish
