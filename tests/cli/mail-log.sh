#!/bin/bash
# The message log (mail.log_current) end to end, as imta-mail.log(5)
# describes it:
#   - imsimta enqueue to the bitbucket channel: an E line, then the master
#     job's D line with the same queue id, every field as expected;
#   - a channel with nologging writes nothing of its own (E as source, D
#     as destination);
#   - D, Q and R from a test channel whose recipients choose their
#     outcome, K when the sender asked for no notice, W when a delay
#     warning is queued;
#   - J for recipients the SMTP server refuses, E for what it queues;
#   - 20 enqueuers writing 200 entries each while the master job writes
#     its D lines: every line intact, none lost;
#   - rotation by rename, picked up by short- and long-lived writers;
#   - IMTA_MAIL_LOG=syslog writes no file; a wrong value is refused.
#
# Only processes this test starts are signalled, by the pids it got.
. "$abs_top_srcdir/tests/cli/smtp-lib.sh"
smtp_instance
plan 40

ML="$LOGDIR/mail.log_current"
# The shipped option.dat has LOG_MESSAGE_ID=1: the Message-ID follows the queue id.
MID="<m1@example.org>"
RECORD="$T/outcomes"
install -m 644 "$abs_top_builddir/tests/plugins/.libs/testchannel.so" "$T/plugins/"
# quiet.example: a bitbucket channel without logging; test.example: the
# test channel (retries every second, warnings at 1 hour, bounce at 2).
sed -i 's/^bitbucket\.example\.com .*$/&\nquiet.example  $U%$D@quiet-daemon\ntest.example  $U%$D@test-daemon/' \
	"$C/imta.cnf"
cat >>"$C/imta.cnf" <<EOF

quiet bitbucket nologging
quiet-daemon

test testchannel $RECORD backoff "pt1s" notices 1 2
test-daemon
EOF
echo "RETURN_UNITS=1" >>"$C/option.dat"
printf 'From: Ann <ann@example.org>\nMessage-ID: <m1@example.org>\nSubject: mail.log test\n\nBody.\n' \
	>"$T/message"

enqueue() {
	"$IMSIMTA" --config "$C" enqueue "$@" <"$T/message" | cut -d' ' -f1
}

# lines_of ID: the mail.log lines of queue id ID, without the date.
lines_of() {
	grep -F " $1 " "$ML" 2>/dev/null | cut -d' ' -f3-
}

# has_line ID PREFIX: a line of ID starts with PREFIX (after the date).
has_line() {
	lines_of "$1" | grep -qF -- "$2"
}

# check_line DESCRIPTION ID EXPECTED: a line of ID is exactly EXPECTED.
check_line() {
	if lines_of "$2" | grep -qxF -- "$3"; then
		ok 0 "$1"
	else
		echo "# expected the line: $3"
		diag_file "$ML"
		ok 1 "$1"
	fi
}

queued() {
	[ -n "$(find "$QUEUE" -type f -name "*$1.*" 2>/dev/null)" ]
}

not_queued() {
	! queued "$1"
}

# ---- E and D ----------------------------------------------------------------
smtp_start_jc
ok $? "the job controller starts"
id=$(enqueue -from=ann@example.org u1@bitbucket.example.com)
wait_until 200 has_line "$id" "l bitbucket D "
ok $? "the message to the bitbucket is delivered and logged"
check_line "the E line: channels, code, blocks, From, ORCPT, To, queue id, no diagnostic" \
	"$id" "l bitbucket E 1 ann@example.org rfc822;u1@bitbucket.example.com u1@bitbucket.example.com $id $MID -"
D=$(lines_of "$id" | grep ' D ')
case "$D" in
"l bitbucket D 1 ann@example.org rfc822;u1@bitbucket.example.com u1@bitbucket.example.com $id $MID 2.0.0 "?*)
	ok 0 "the D line: the same fields and a diagnostic" ;;
*)
	echo "# got: $D"
	ok 1 "the D line: the same fields and a diagnostic" ;;
esac
[ "$(grep -nF " $id " "$ML" | head -1 | cut -d: -f2- | cut -d' ' -f5)" = E ]
ok $? "E comes first"
grep -qE '^[0-3][0-9]-(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-[0-9]{4} [0-2][0-9]:[0-5][0-9]:[0-6][0-9]\.[0-9]{2} ' "$ML"
ok $? "the date is dd-Mmm-yyyy hh:mm:ss.cc"
[ "$(stat -c %a "$ML")" = 640 ]
ok $? "the file is created mode 0640"

id=$(enqueue -from= u2@bitbucket.example.com)
wait_until 200 has_line "$id" "l bitbucket D "
check_line "the null path shows as <>" "$id" \
	"l bitbucket E 1 <> rfc822;u2@bitbucket.example.com u2@bitbucket.example.com $id $MID -"

# ---- nologging ----------------------------------------------------------------
id=$(enqueue -source_channel=quiet -channel=quiet q1@quiet.example)
wait_until 200 not_queued "$id"
ok $? "a message from and to channel quiet is delivered"
[ -z "$(lines_of "$id")" ]
ok $? "nologging: no line at all for it"
id=$(enqueue -from=ann@example.org q2@quiet.example)
wait_until 200 not_queued "$id"
check_line "from l (logging) to quiet: the E line" "$id" \
	"l quiet E 1 ann@example.org rfc822;q2@quiet.example q2@quiet.example $id $MID -"
! has_line "$id" "l quiet D "
ok $? "but no D line from quiet (nologging)"

# ---- D, Q, R, K, W --------------------------------------------------------------
id=$(enqueue -from=ann@example.org fail1@test.example ok1@test.example defer1@test.example)
wait_until 200 has_line "$id" "l test Q "
wait_until 100 has_line "$id" "l test R "
check_line "R: a permanent failure, with its diagnostic" "$id" \
	"l test R 1 ann@example.org rfc822;fail1@test.example fail1@test.example $id $MID 5.1.1 refused by the test channel"
has_line "$id" "l test D 1 ann@example.org rfc822;ok1@test.example ok1@test.example $id $MID "
ok $? "D: the delivered recipient"
check_line "Q: the deferred one, with its diagnostic" "$id" \
	"l test Q 1 ann@example.org rfc822;defer1@test.example defer1@test.example $id $MID 4.2.0 deferred by the test channel"
[ "$(lines_of "$id" | grep -c ' R ')" -eq 1 ]
ok $? "one R line: the failure notice has no line of its own"
grep -q " <> rfc822;ann@example.org " "$ML"
ok $? "the failure notice is enqueued with the null path (E line)"
deferred=$id

id=$(enqueue -from=ann@example.org -notify=NEVER fail2@test.example)
wait_until 200 has_line "$id" "l test K "
check_line "K: a failure notice was due, NOTIFY=NEVER" "$id" \
	"l test K 1 ann@example.org rfc822;fail2@test.example fail2@test.example $id $MID no failure notice: NOTIFY=NEVER"
id=$(enqueue -from= fail3@test.example)
wait_until 200 has_line "$id" "l test K "
check_line "K: a failure notice was due, the return path is empty" "$id" \
	"l test K 1 <> rfc822;fail3@test.example fail3@test.example $id $MID no failure notice: the return path is empty"

# The deferred message was queued more than an hour ago: a warning.
stop_pid "$JC_PID"
F=$(find "$QUEUE/test" -type f -name "*$deferred.*" | head -1)
sed -i "s/^created [0-9]*\$/created $(( $(date +%s) - 3700 ))/" "$F"
smtp_start_jc
wait_until 200 has_line "$deferred" "l test W "
W=$(lines_of "$deferred" | grep ' W ')
case "$W" in
"l test W 1 ann@example.org rfc822;defer1@test.example defer1@test.example $deferred $MID delay warning queued as "*" to ann@"*)
	ok 0 "W: the delay warning, with the notice's queue id" ;;
*)
	echo "# got: $W"
	diag_file "$ML"
	ok 1 "W: the delay warning, with the notice's queue id" ;;
esac

# ---- SMTP: J and E -----------------------------------------------------------
smtp_start_dispatcher
ok $? "the dispatcher starts"
dialog "$SMTP_PORT" >"$OUT" <<'EOF'
<
> EHLO client.example.org
<
> MAIL FROM:<bob@example.org>
<
> RCPT TO:<relay@remote.example.net>
<
> RCPT TO:<s1@bitbucket.example.com>
<
> DATA
<
> Subject: by SMTP
>
> Hello.
> .
<
> QUIT
<
EOF
check_grep "the relay attempt is refused" "$OUT" "550 5.7.1 Relaying not permitted"
grep -q ' tcp_local [^ ]* J 0 bob@example.org rfc822;relay@remote.example.net [^ ]* - - 550 5.7.1 Relaying not permitted$' "$ML"
ok $? "J: source channel, From, ORCPT, no queue id, the reply sent"
sid=$(sed -n 's/^250 2\.0\.0 Ok: queued as \([0-9A-Z]*\).*/\1/p' "$OUT")
check_line "E from the SMTP server: source tcp_local, no TLS or SASL suffix" "$sid" \
	"tcp_local bitbucket E 1 bob@example.org rfc822;s1@bitbucket.example.com s1@bitbucket.example.com $sid - -"

# ---- concurrent writers -------------------------------------------------------------
pids=""
for p in $(seq 1 20); do
	enqueue -from="burst$p@example.org" $(seq -f "b%g@bitbucket.example.com" 1 200) \
		>/dev/null &
	pids="$pids $!"
done
wait $pids
burst_e() { grep -c ' l bitbucket E 1 burst[0-9]*@example\.org ' "$ML"; }
burst_d() { grep -c ' l bitbucket D 1 burst[0-9]*@example\.org ' "$ML"; }
[ "$(burst_e)" -eq 4000 ]
ok $? "20 enqueuers x 200 recipients: 4000 E lines"
burst_done() { [ "$(burst_d)" -ge 4000 ]; }
wait_until 600 burst_done
ok $? "and the master job's 4000 D lines"
# Every line whole: a date, eight blank-free fields, a queue id, a diagnostic.
bad=$(grep -cvE '^[0-9]{2}-[A-Z][a-z]{2}-[0-9]{4} [0-9:.]{11}( [^ ]+){8} [^ ]+ .+$' "$ML")
[ "$bad" -eq 0 ]
ok $? "no line is torn or interleaved ($bad bad)"
[ "$(sort "$ML" | uniq -d | wc -l)" -eq 0 ] && [ "$(burst_d)" -eq 4000 ]
ok $? "no line is written twice"
for p in 1 20; do
	[ "$(grep -c " burst$p@example.org rfc822;b[0-9]*@bitbucket.example.com " "$ML")" -eq 400 ] ||
		break
done
ok $? "each enqueuer's 200 recipients have their E and D lines"

# ---- rotation --------------------------------------------------------------------
mv "$ML" "$ML.1"
id=$(enqueue -from=ann@example.org r1@bitbucket.example.com)
wait_until 200 has_line "$id" "l bitbucket D "
ok $? "after a rename, the new file gets the E and D lines"
! grep -qF " $id " "$ML.1"
ok $? "and the renamed one none of them"
dialog "$SMTP_PORT" >"$OUT" <<'EOF'
<
> HELO client.example.org
<
> MAIL FROM:<bob@example.org>
<
> RCPT TO:<s2@bitbucket.example.com>
<
> DATA
<
> Subject: after the rename
>
> .
<
> QUIT
<
EOF
sid=$(sed -n 's/^250 2\.0\.0 Ok: queued as \([0-9A-Z]*\).*/\1/p' "$OUT")
[ -n "$sid" ] && has_line "$sid" "tcp_local bitbucket E "
ok $? "the long-lived SMTP worker follows the rename too"
grep -q ' J ' "$ML.1" && ! grep -q ' J ' "$ML"
ok $? "the old lines stay in the renamed file"

# ---- process log untouched -----------------------------------------------------------
grep -q "$deferred test: delay warning" "$LOGDIR/test_master.log"
ok $? "the master's process log keeps its own lines"

check_sanitizers

# ---- syslog ------------------------------------------------------------------------
mv "$ML" "$ML.2"
echo "IMTA_MAIL_LOG=syslog" >>"$C/imta_tailor"
check_run "IMTA_MAIL_LOG=syslog is accepted" 0 "$IMSIMTA" --config "$C" check
id=$(enqueue -from=ann@example.org y1@bitbucket.example.com)
[ -n "$id" ] && [ ! -e "$ML" ]
ok $? "with syslog, no mail.log_current is written"
sed -i 's/^IMTA_MAIL_LOG=syslog$/IMTA_MAIL_LOG=journal/' "$C/imta_tailor"
check_run "another value is refused" 78 "$IMSIMTA" --config "$C" check
check_grep "saying what was expected" "$ERR" \
	'imta_tailor:9:15: expected file or syslog for IMTA_MAIL_LOG, got "journal"'
sed -i '/^IMTA_MAIL_LOG=/d' "$C/imta_tailor"
id=$(enqueue -from=ann@example.org y2@bitbucket.example.com)
has_line "$id" "l bitbucket E "
ok $? "without it, the file again"
finish
