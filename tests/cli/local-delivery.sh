#!/bin/bash
# Local delivery end to end: SMTP -> channel l (the local plugin expands
# the address through the directory's delivery options) -> ims-ms ->
# message store.
#   - alice@example.com lands in alice's INBOX, the body intact;
#   - alice+Archive@example.com lands in her folder Archive;
#   - the group staff@example.com reaches each local member's INBOX, and
#     its remote member is queued for its own channel;
#   - one message to alice and bob reaches both;
#   - a forward to a local user is expanded at once; a forwarding loop
#     fails with 5.4.6;
#   - an unknown local user (queued by imsimta enqueue: the SMTP server
#     refuses it) fails with 5.1.1 and a notice to the sender;
#   - l's charset8 labels an unlabelled 8-bit message UTF-8 on its way to
#     the store, and leaves unlabelled 7-bit text alone;
#   - alice@conversion and bob@conversion.mail.example.com go through the
#     conversion channel (its converter upper-cases the text) into the
#     INBOXes.
#
# Only processes this test starts are signalled, by the pids the shell got.
. "$abs_top_srcdir/tests/cli/smtp-lib.sh"
smtp_instance
plan 32


# Senders and remote members wait on channel parked: nothing leaves.
sed -i -e '/^\$\*/i sender.example         $U%$D@parked-daemon' \
	-e '/^\$\*/i example.net            $U%$D@parked-daemon' "$C/imta.cnf"
printf '\nparked pool NOPOOL\nparked-daemon\n' >>"$C/imta.cnf"
sed -i '1i SYNCH_TIME=2' "$C/job_controller.cnf"

# fwdloc forwards to bob; loopa and loopb forward to each other.
for u in fwdloc:bob loopa:loopb loopb:loopa; do
	printf '\ndn: uid=%s,ou=People,o=example.com,o=example\nobjectClass: top\n' "${u%:*}"
	printf 'objectClass: inetOrgPerson\nobjectClass: inetUser\nobjectClass: inetMailUser\n'
	printf 'objectClass: inetLocalMailRecipient\nuid: %s\ncn: %s\nsn: User\n' "${u%:*}" "${u%:*}"
	printf 'mail: %s@example.com\nmailHost: mail.example.com\n' "${u%:*}"
	printf 'mailDeliveryOption: forward\nmailForwardingAddress: %s@example.com\n' "${u#*:}"
done >>"$C/directory.ldif"

# user@conversion goes through the conversion channel, which upper-cases
# plain text on its way from tcp_local to l.
cat >"$T/upper.sh" <<'EOF'
#!/bin/sh
tr 'a-z' 'A-Z' <"$1" >"$2"
EOF
chmod 755 "$T/upper.sh"
cat >"$C/conversions" <<EOF
in-chan=tcp_local; out-chan=l; in-type=text; in-subtype=plain;
  command="$T/upper.sh INPUT_FILE OUTPUT_FILE"
EOF

cat >"$T/send.py" <<'PYEOF'
import smtplib, sys
port, sender, rcpts, subject = sys.argv[1:5]
text = ("From: Ann <ann@sender.example>\r\nTo: someone\r\nSubject: %s\r\n"
        "Message-ID: <%s@sender.example>\r\n\r\nThe body of %s.\r\n"
        % (subject, subject.replace(" ", "."), subject))
s = smtplib.SMTP("127.0.0.1", int(port), timeout=20)
s.ehlo("client.test")
s.sendmail(sender, rcpts.split(","), text)
s.quit()
PYEOF
cat >"$T/send8.py" <<'PYEOF'
import smtplib, sys
port, sender, rcpt, subject = sys.argv[1:5]
text = ("From: Ann <ann@sender.example>\r\nSubject: %s\r\n\r\n"
        "The caf\u00e9 opens at noon.\r\n" % subject).encode("utf-8")
s = smtplib.SMTP("127.0.0.1", int(port), timeout=20)
s.ehlo("client.test")
s.sendmail(sender, [rcpt], text, mail_options=["BODY=8BITMIME"])
s.quit()
PYEOF
send() {
	$PY "$T/send.py" "$SMTP_PORT" "$@" >"$OUT" 2>"$ERR"
}



local_done() {
	[ "$(queue_count l)" -eq 0 ] && [ "$(queue_count ims-ms)" -eq 0 ]
}

smtp_start_dispatcher
smtp_start_jc

send ann@sender.example alice@example.com "to alice"
ok $? "a message for alice@example.com is accepted by SMTP"
wait_until 200 in_mailbox alice "to alice"
ok $? "it is in alice's INBOX"
UID1=$(uids_with_subject alice "to alice")
MBOX -P alice "$UID1" >"$OUT" 2>"$ERR"
check_grep "the stored message has its body" "$OUT" "The body of to alice."
check_grep "the l master logged the expansion" "$LOGDIR/l_master.log" \
	"alice@example.com: 2.0.0 expanded to alice@ims-ms-daemon"

# ---- content keywords: l labels unlabelled text (charset7/charset8) -------
MBOX -P alice "$UID1" >"$OUT" 2>"$ERR"
check_no_grep "unlabelled 7-bit text stays unlabelled (US-ASCII is the default)" "$OUT" \
	"charset="
$PY "$T/send8.py" "$SMTP_PORT" ann@sender.example alice@example.com "eight bit" >"$OUT" 2>"$ERR"
ok $? "an unlabelled 8-bit message for alice is accepted"
wait_until 200 in_mailbox alice "eight bit"
ok $? "it is in alice's INBOX"
MBOX -P alice "$(uids_with_subject alice "eight bit")" >"$T/stored8" 2>"$ERR"
check_grep "l's charset8 labelled it UTF-8" "$T/stored8" "Content-Type: text/plain; charset=UTF-8"
check_grep "with a MIME-Version" "$T/stored8" "MIME-Version: 1.0"
check_grep "and the 8-bit body untouched" "$T/stored8" "The caf$(printf '\303\251') opens at noon."

# ---- user@conversion and user@conversion.<local host> ---------------------
"$IMSIMTA" --config "$C" test -rewrite alice@conversion bob@conversion.mail.example.com \
	>"$OUT" 2>"$ERR"
[ "$(grep -c '^  Channel: *conversion$' "$OUT")" -eq 2 ]
r=$?
ok $r "imta.cnf routes user@conversion and user@conversion.mail.example.com to conversion"
[ $r -eq 0 ] || diag_file "$OUT"
send ann@sender.example alice@conversion "short form"
ok $? "SMTP accepts alice@conversion"
wait_until 300 in_mailbox alice "short form"
r=$?
ok $r "it reaches alice's INBOX through the conversion channel"
[ $r -eq 0 ] || diag_file "$LOGDIR/conversion_master.log"
MBOX -P alice "$(uids_with_subject alice "short form")" >"$OUT" 2>"$ERR"
check_grep "converted on the way" "$OUT" "THE BODY OF SHORT FORM."
send ann@sender.example bob@conversion.mail.example.com "long form"
wait_until 300 in_mailbox bob "long form"
ok $? "bob@conversion.mail.example.com reaches bob's INBOX"
MBOX -P bob "$(uids_with_subject bob "long form")" >"$OUT" 2>"$ERR"
check_grep "converted too" "$OUT" "THE BODY OF LONG FORM."
check_grep "the conversion master routed it on to l" "$LOGDIR/conversion_master.log" \
	"1 part converted; queued to l as"

MBOX -c alice/Archive >"$OUT" 2>"$ERR"
ok $? "alice gets a folder Archive"
send ann@sender.example alice+Archive@example.com "archived"
wait_until 200 in_mailbox alice/Archive "archived"
r=$?
ok $r "alice+Archive@example.com lands in the folder Archive"
[ $r -eq 0 ] || diag_file "$LOGDIR/l_master.log"

send ann@sender.example staff@example.com "to the staff"
ok $? "a message for the group staff@example.com is accepted"
wait_until 200 in_mailbox bob "to the staff"
ok $? "the member bob has it"
wait_until 200 in_mailbox alice "to the staff"
ok $? "the member alice has it"
wait_until 200 in_mailbox carol@example.org "to the staff"
ok $? "the member carol of the hosted domain example.org has it"
wait_until 100 test "$(queue_count parked)" -ge 1
grep -l "partner@example.net" $(queue_files parked) >/dev/null 2>&1
ok $? "the remote member partner@example.net is queued to its own channel"

send ann@sender.example alice@example.com,bob@example.com "two users"
wait_until 200 in_mailbox alice "two users" && wait_until 200 in_mailbox bob "two users"
ok $? "one message to alice and bob reaches both"

send ann@sender.example fwdloc@example.com "forwarded"
wait_until 200 in_mailbox bob "forwarded"
ok $? "a forward to a local user is expanded in the same pass: bob has it"
check_grep "the expansion names the final address" "$LOGDIR/l_master.log" \
	"fwdloc@example.com: 2.0.0 expanded to bob@ims-ms-daemon"

send ann@sender.example loopa@example.com "loop"
wait_until 200 local_done
wait_until 50 grep -q "loopa@example.com: 5.4.6 alias loop" "$LOGDIR/l_master.log"
r=$?
ok $r "forwards that lead back to the recipient fail with 5.4.6"
[ $r -eq 0 ] || diag_file "$LOGDIR/l_master.log"

# The SMTP server refuses unknown local users at RCPT time; mail queued
# by other ways meets the same check in the local channel.
printf 'Subject: nobody\n\nTo nobody.\n' |
	"$IMSIMTA" --config "$C" enqueue -from=ann@sender.example nosuchuser@example.com \
		>"$OUT" 2>"$ERR"
ok $? "imsimta enqueue queues a message for nosuchuser@example.com to l"
wait_until 200 local_done
grep -q "nosuchuser@example.com: 5.1.1 unknown user" "$LOGDIR/l_master.log"
r=$?
ok $r "an unknown local user fails with 5.1.1"
[ $r -eq 0 ] || diag_file "$LOGDIR/l_master.log"
wait_until 100 grep -rqs "nosuchuser@example.com" "$QUEUE/parked"
ok $? "and the sender gets a failure notice"

check_sanitizers
finish
