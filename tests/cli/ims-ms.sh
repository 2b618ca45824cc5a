#!/bin/bash
# The ims-ms channel end to end: SMTP -> dispatcher -> queue -> job
# controller -> imta-master with the ims_ms plugin -> message store.
#   - a message lands in the INBOX byte for byte as it was queued, read
#     back with imsimta mboxutil -P; +folder recipients;
#   - one message to three users is one file (one inode, three links);
#   - an unknown user fails (5.1.1) with a failure notice to the sender;
#   - over quota: the message stays queued (4.2.2, imsimta qm), and is
#     returned with a notice once the grace period has passed (the grace
#     is shortened to 0 in store.cnf, which each job reads afresh);
#   - the quota warning is delivered once at the threshold, through the
#     guaranteed channel, and the guaranteed channel delivers over quota;
#   - imta-master killed (SIGKILL) over and over during a stream of
#     deliveries: every message acknowledged at SMTP ends up in the store
#     exactly once, and imsimta reconstruct --check finds nothing.
#
# Only processes this test starts are signalled, by the pids the shell got
# (the masters are found as children of the job controller started here).
. "$abs_top_srcdir/tests/cli/smtp-lib.sh"
smtp_instance
plan 37


# Senders live at sender.example: their notices wait on channel parked.
sed -i '/^\$\*/i sender.example         $U%$D@parked-daemon' "$C/imta.cnf"
# Retries after one second, so that the test needs no waiting for backoff.
sed -i 's/^\(ims-ms[a-z-]* .*\)backoff "pt5m" "pt10m" "pt30m" "pt1h" "pt2h" "pt4h"/\1backoff "pt1s"/' \
	"$C/imta.cnf"
grep -q '^ims-ms subdirs.*backoff "pt1s"' "$C/imta.cnf" || echo "# ims-ms backoff not shortened"
printf '\nparked pool NOPOOL\nparked-daemon\n' >>"$C/imta.cnf"
sed -i '1i SYNCH_TIME=2' "$C/job_controller.cnf"
# Masters end normally after 5 messages: that resets the controller's
# restart throttle, which the kills below would otherwise drive up.
printf '\n[CHANNEL=ims-ms]\nIDLE_LINGER=1\nMAX_LIFE_CONNS=5\n' >>"$C/job_controller.cnf"
# Users with small quotas: quser for the over-quota cases, wuser for the
# warning.
for u in quser:3000 wuser:20000; do
	printf '\ndn: uid=%s,ou=People,o=example.com,o=example\nobjectClass: top\n' "${u%:*}"
	printf 'objectClass: inetOrgPerson\nobjectClass: inetUser\nobjectClass: inetMailUser\n'
	printf 'objectClass: inetLocalMailRecipient\nuid: %s\ncn: %s\nsn: User\n' "${u%:*}" "${u%:*}"
	printf 'mail: %s@example.com\nmailHost: mail.example.com\n' "${u%:*}"
	printf 'mailDeliveryOption: mailbox\nmailQuota: %s\n' "${u#*:}"
done >>"$C/directory.ldif"
printf 'store.quotawarn = 90\nstore.quotagraceperiod = 1\n' >"$C/store.cnf"

# send.py one PORT FROM TO[,TO...] SIZE SUBJECT: one message by SMTP,
# its body padded to about SIZE bytes.  send.py stream PORT COUNT:
# messages to alice one after the other; the Message-ID of each
# acknowledged one is printed as soon as its 250 came.
cat >"$T/send.py" <<'PYEOF'
import smtplib, sys, time
def message(subject, size, tag=""):
    head = ("From: Ann <ann@sender.example>\r\nTo: someone\r\nSubject: %s\r\n"
            "Message-ID: <%s@sender.example>\r\n\r\n" % (subject, tag or subject.replace(" ", ".")))
    body = "The body line.\r\n"
    while len(head) + len(body) < size:
        body += ("x" * 70) + "\r\n"
    return head + body
def send(port, sender, rcpts, text):
    s = smtplib.SMTP("127.0.0.1", port, timeout=20)
    s.ehlo("client.test")
    s.sendmail(sender, rcpts, text)
    s.quit()
if sys.argv[1] == "one":
    port, sender, rcpts, size, subject = sys.argv[2:7]
    send(int(port), sender, rcpts.split(","), message(subject, int(size)))
else:
    port, count = int(sys.argv[2]), int(sys.argv[3])
    for i in range(count):
        tag = "stream%03d" % i
        try:
            send(port, "ann@sender.example", ["alice@ims-ms-daemon"],
                 message("stream %d" % i, 400, tag))
            print("<%s@sender.example>" % tag, flush=True)
            time.sleep(0.1)
        except Exception as e:
            print("# %s: %s" % (tag, e), file=sys.stderr, flush=True)
PYEOF
send() {
	$PY "$T/send.py" one "$SMTP_PORT" "$@" >"$OUT" 2>"$ERR"
}

queue_empty() {
	[ "$(queue_count "$1")" -eq 0 ]
}


count_messages() {
	MBOX -m "$1" --json 2>/dev/null |
		$PY -c 'import json, sys; print(len(json.load(sys.stdin)["messages"]))' 2>/dev/null
}

# ---- a message, byte for byte --------------------------------------------

smtp_start_dispatcher
# The job controller is not running yet: the queue file stays for copying.
send ann@sender.example alice@ims-ms-daemon 600 "first message"
ok $? "a message for alice@ims-ms-daemon is accepted by SMTP"
QF=$(queue_files ims-ms | head -n 1)
dialog --body "$QF" >"$T/queued"
smtp_start_jc
wait_until 150 queue_empty ims-ms
ok $? "the ims-ms queue is emptied by the channel's master"
UID1=$(uids_with_subject alice "first message")
[ -n "$UID1" ]
ok $? "the message is in alice's INBOX (UID $UID1)"
MBOX -P alice "$UID1" >"$T/stored" 2>"$ERR"
check_same "the stored message is the queued one, byte for byte" "$T/queued" "$T/stored"
check_grep "the master logged the job" "$LOGDIR/ims-ms_master.log" "plugin ims_ms"

MBOX -c alice/Archive >"$OUT" 2>"$ERR"
ok $? "alice gets a folder Archive"
send ann@sender.example alice+Archive@ims-ms-daemon,alice+NoSuchFolder@ims-ms-daemon 300 \
	"folder test"
wait_until 150 queue_empty ims-ms
[ "$(uids_with_subject alice/Archive "folder test" | wc -w)" -eq 1 ]
ok $? "+Archive delivers into the folder Archive"
[ "$(uids_with_subject alice "folder test" | wc -w)" -eq 1 ]
ok $? "+NoSuchFolder delivers into INBOX"

# ---- single copy ---------------------------------------------------------

send ann@sender.example alice@ims-ms-daemon,bob@ims-ms-daemon,carol%example.org@ims-ms-daemon \
	800 "three users"
ok $? "a message for three users is accepted"
wait_until 150 queue_empty ims-ms
ok $? "and delivered"
inodes=""
links=""
for u in alice bob carol@example.org; do
	uid=$(uids_with_subject "$u" "three users")
	dir=$("$IMSIMTA" --config "$C" hashdir --path "$u" 2>/dev/null)
	f=$(find "$dir" -maxdepth 2 -name "$uid.msg" 2>/dev/null | head -n 1)
	if [ -n "$uid" ] && [ -n "$f" ]; then
		inodes="$inodes $(stat -c %i "$f")"
		links=$(stat -c %h "$f")
	fi
done
[ "$(echo $inodes | wc -w)" -eq 3 ] && [ "$(echo $inodes | tr ' ' '\n' | sort -u | wc -l)" -eq 1 ]
ok $? "the three mailboxes hold one file (inodes:$inodes)"
[ "${links:-0}" -ge 3 ]
ok $? "its link count is at least 3 (got ${links:-none})"

# ---- unknown user --------------------------------------------------------

send ann@sender.example nobody@ims-ms-daemon 300 "unknown user"
wait_until 150 queue_empty ims-ms
ok $? "a message for an unknown user leaves the ims-ms queue"
unknown_notice() { grep -l "unknown user nobody" $(queue_files parked) 2>/dev/null | head -n 1; }
wait_until 50 test -n "$(unknown_notice)"
ok $? "a failure notice goes to the sender"
NOTICE=$(unknown_notice)
check_grep "the notice says 5.1.1" "${NOTICE:-/dev/null}" "Status: 5.1.1"
check_grep "the notice names the recipient" "${NOTICE:-/dev/null}" \
	"Final-Recipient: rfc822; nobody@ims-ms-daemon"

# ---- over quota ----------------------------------------------------------

send ann@sender.example quser@ims-ms-daemon 2500 "fills the quota"
wait_until 150 queue_empty ims-ms
[ "$(count_messages quser)" = 1 ]
ok $? "quser's first message (2500 of 3000 bytes) is delivered"
send ann@sender.example quser@ims-ms-daemon 1000 "over quota"
qm_shows_422() {
	local f
	f=$(queue_files ims-ms | head -n 1)
	[ -n "$f" ] || return 1
	QID=$(basename "$f" .00 | cut -c3-)
	"$IMSIMTA" --config "$C" qm history "$QID" >"$T/qm" 2>&1
	grep -q "4\.2\.2 mailbox full" "$T/qm"
}
wait_until 150 qm_shows_422
ok $? "the over-quota message stays queued; imsimta qm history shows 4.2.2 mailbox full"
[ "$(count_messages quser)" = 1 ]
ok $? "and it is not in the store"
sleep 3
[ "$(queue_count ims-ms)" -eq 1 ]
ok $? "retries within the grace period keep it queued"
"$IMSIMTA" --config "$C" qm directory -channel=ims-ms >"$T/qm" 2>&1
check_grep "imsimta qm directory lists it" "$T/qm" "$QID"

# The grace period ends: store.cnf is read by every job.
sed -i 's/^store.quotagraceperiod = 1$/store.quotagraceperiod = 0/' "$C/store.cnf"
wait_until 200 queue_empty ims-ms
ok $? "after the grace period the message leaves the queue"
over_notice() { grep -l "Status: 5.2.2" $(queue_files parked) 2>/dev/null | head -n 1; }
wait_until 50 test -n "$(over_notice)"
ok $? "the sender gets a failure notice with Status 5.2.2"
NOTICE=$(over_notice)
check_grep "the notice names quser" "${NOTICE:-/dev/null}" \
	"Final-Recipient: rfc822; quser@ims-ms-daemon"
sed -i 's/^store.quotagraceperiod = 0$/store.quotagraceperiod = 1/' "$C/store.cnf"

send ann@sender.example quser@ims-ms-guaranteed-daemon 1000 "guaranteed"
wait_until 150 queue_empty ims-ms-guaranteed
ok $? "the guaranteed channel's queue empties"
[ -n "$(uids_with_subject quser guaranteed)" ]
ok $? "the guaranteed channel delivers to quser over quota"

# ---- the warning ----------------------------------------------------------

send ann@sender.example wuser@ims-ms-daemon 18500 "big one"
wait_until 150 queue_empty ims-ms
ok $? "wuser's big message is delivered"
warned() { [ -n "$(uids_with_subject wuser "Warning: your mailbox is")" ]; }
wait_until 150 warned
ok $? "wuser gets a warning message (over 90% of 20000 bytes)"
W=$(uids_with_subject wuser "Warning: your mailbox is" | cut -d' ' -f1)
MBOX -P wuser "${W:-1}" >"$T/warning" 2>&1
check_grep "the warning says how full" "$T/warning" "bytes used of 20000"
check_grep "the warning is from the postmaster" "$T/warning" "From: Postmaster <postmaster@"
grep -q "quota warning for wuser .* queued to ims-ms-guaranteed" "$LOGDIR/ims-ms_master.log"
ok $? "the warning went through the guaranteed channel"
send ann@sender.example wuser@ims-ms-daemon 200 "small one"
wait_until 150 queue_empty ims-ms
wait_until 30 queue_empty ims-ms-guaranteed
[ "$(uids_with_subject wuser "Warning: your mailbox is" | wc -w)" -eq 1 ]
ok $? "a later delivery above the threshold sends no second warning"

# ---- kill -9 during a stream ------------------------------------------------

$PY "$T/send.py" stream "$SMTP_PORT" 150 >"$T/acked" 2>"$T/stream.err" &
STREAM_PID=$!
kills=0
while ! gone "$STREAM_PID"; do
	for p in $(pgrep -P "$JC_PID" 2>/dev/null); do
		if tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -q -- "--channel ims-ms "; then
			kill -KILL "$p" 2>/dev/null && kills=$((kills + 1))
		fi
	done
	sleep 0.7
done
wait "$STREAM_PID"
[ "$kills" -ge 10 ]
ok $? "imta-master was killed $kills times during the stream"
wait_until 600 queue_empty ims-ms
ok $? "every message is delivered in the end"
MBOX -m alice --json >"$T/alice.json" 2>&1
$PY - "$T/acked" "$T/alice.json" >"$T/exact" <<'PYEOF'
import json, sys
acked = [l.strip() for l in open(sys.argv[1]) if l.startswith("<")]
ids = [m.get("message_id") for m in json.load(open(sys.argv[2]))["messages"]]
bad = ["%s x%d" % (a, ids.count(a)) for a in acked if ids.count(a) != 1]
print("%d acknowledged, wrong count for %s" % (len(acked), bad or "none"))
sys.exit(1 if bad or len(acked) < 100 else 0)
PYEOF
ok $? "each acknowledged message is in the store exactly once ($(cat "$T/exact"))"
check_run "imsimta reconstruct --check finds nothing" 0 "$IMSIMTA" --config "$C" reconstruct --check

check_sanitizers
finish
