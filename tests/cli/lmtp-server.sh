#!/bin/bash
# The LMTP server (lmtp(8), the lmtp plugin's slave) under the dispatcher,
# delivering straight into the message store:
#   - LHLO and its extensions; EHLO and HELO refused; pipelined commands;
#   - one reply per accepted recipient after the content, in RCPT order,
#     with mixed outcomes in one transaction (delivered, unknown at RCPT,
#     over quota after DATA) and the mail in the right mailbox only;
#   - 452 4.2.2 within the grace period, 552 5.2.2 after it (store.cnf);
#   - the size limit (channel blocklimit), BDAT, the Received: header,
#     mail.log entries, success notices for NOTIFY=SUCCESS;
#   - command and data timeouts; a client the PORT_ACCESS mapping does
#     not trust is refused;
#   - workers killed with SIGKILL while messages flow: every recipient
#     that got a 250 has the message in its mailbox exactly once.
#
# Only processes this test starts are signalled, by the pids the shell got
# (workers as the children of the dispatcher started here).
. "$abs_top_srcdir/tests/cli/smtp-lib.sh"
smtp_instance
plan 35

# Only 127.0.0.1 is a trusted relay here; 127.0.0.2 plays a stranger.
sed -i "s/^  TCP|\*|$LMTP_PORT|127\.\*|\*/  TCP|*|$LMTP_PORT|127.0.0.1|*/" "$C/mappings"
grep -q "^  TCP|\*|$LMTP_PORT|127.0.0.1|\*" "$C/mappings" || echo "# PORT_ACCESS not adapted"
# 8 blocks of 1024 bytes at most; short timeouts.
sed -i 's/^tcp_lmtpss lmtp slave/tcp_lmtpss lmtp slave blocklimit 8/' "$C/imta.cnf"
printf 'COMMAND_TIMEOUT=2\nDATA_TIMEOUT=2\n' >"$C/tcp_lmtpss_option"
# quser: a mailbox of 1000 bytes; iuser: inactive.
{
	printf '\ndn: uid=quser,ou=People,o=example.com,o=example\nobjectClass: top\n'
	printf 'objectClass: inetOrgPerson\nobjectClass: inetUser\nobjectClass: inetMailUser\n'
	printf 'objectClass: inetLocalMailRecipient\nuid: quser\ncn: quser\nsn: User\n'
	printf 'mail: quser@example.com\nmailHost: mail.example.com\n'
	printf 'mailDeliveryOption: mailbox\nmailQuota: 1000\n'
	printf '\ndn: uid=iuser,ou=People,o=example.com,o=example\nobjectClass: top\n'
	printf 'objectClass: inetOrgPerson\nobjectClass: inetUser\nobjectClass: inetMailUser\n'
	printf 'objectClass: inetLocalMailRecipient\nuid: iuser\ncn: iuser\nsn: User\n'
	printf 'mail: iuser@example.com\nmailHost: mail.example.com\nmailUserStatus: inactive\n'
} >>"$C/directory.ldif"
printf 'store.quotagraceperiod = 1\n' >"$C/store.cnf"

# lmtp.py: LMTP sessions with smtplib.LMTP.  Every reply is printed as
# "CODE TEXT" (a multi-line one joined with "|").
#   lmtp.py send PORT FROM TO[,TO...] SUBJECT SIZE [--size]: one message;
#       each RCPT's reply, then one reply per accepted recipient.
#   lmtp.py stream PORT SECONDS OUT: messages to alice and bob one after
#       the other; "SUBJECT RECIPIENT" in OUT for every 250 after DATA.
cat >"$T/lmtp.py" <<'PYEOF'
import re, smtplib, sys, time

def show(what, code, text):
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    print("%s %d %s" % (what, code, text.replace("\n", "|")), flush=True)

def message(subject, size):
    head = ("From: Ann <ann@sender.example>\r\nTo: someone\r\nSubject: %s\r\n"
            "Message-ID: <%s@sender.example>\r\n\r\n" % (subject, subject.replace(" ", ".")))
    body = "The body line.\r\n"
    while len(head) + len(body) < size:
        body += ("x" * 70) + "\r\n"
    return head + body

def transaction(s, sender, rcpts, text, declare, log):
    opts = ["SIZE=%d" % len(text)] if declare else []
    code, msg = s.mail(sender, opts)
    log("MAIL", code, msg)
    if code != 250:
        s.rset()
        return []
    accepted = []
    for r in rcpts:
        code, msg = s.rcpt(r)
        log("RCPT " + r, code, msg)
        if code == 250:
            accepted.append(r)
    if not accepted:
        s.rset()
        return []
    code, msg = s.docmd("DATA")
    log("DATA", code, msg)
    if code != 354:
        return []
    data = re.sub(r"(?m)^\.", "..", text)
    if not data.endswith("\r\n"):
        data += "\r\n"
    s.send((data + ".\r\n").encode("latin-1"))
    out = []
    for r in accepted:
        code, msg = s.getreply()
        log(r, code, msg)
        out.append((r, code))
    return out

def send(port, sender, rcpts, subject, size, declare):
    s = smtplib.LMTP(timeout=20)
    code, msg = s.connect("127.0.0.1", port)
    show("GREETING", code, msg)
    code, msg = s.ehlo("relay.test")
    show("LHLO", code, msg)
    transaction(s, sender, rcpts, message(subject, size), declare, show)
    s.quit()

def stream(port, seconds, out):
    acked = open(out, "w")
    end = time.monotonic() + seconds
    k = 0
    while time.monotonic() < end:
        try:
            s = smtplib.LMTP(timeout=10)
            s.connect("127.0.0.1", port)
            s.ehlo("relay.test")
            while time.monotonic() < end:
                k += 1
                subject = "stream-%d-%f" % (k, time.monotonic())
                done = transaction(s, "ann@sender.example",
                                   ["alice@example.com", "bob@example.com"],
                                   message(subject, 600), False, lambda *a: None)
                for r, code in done:
                    if code == 250:
                        acked.write("%s %s\n" % (subject, r.split("@")[0]))
                acked.flush()
                if not done:
                    break
        except (OSError, smtplib.SMTPException):
            time.sleep(0.05)

if sys.argv[1] == "send":
    port, sender, rcpts, subject, size = sys.argv[2:7]
    send(int(port), sender, rcpts.split(","), subject, int(size), "--size" in sys.argv[7:])
else:
    stream(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
PYEOF
lmtp_send() {
	$PY "$T/lmtp.py" send "$LMTP_PORT" "$@" >"$OUT" 2>"$ERR"
}

count_subject() {
	uids_with_subject "$1" "$2" | wc -w
}

smtp_start_dispatcher
ok $? "the dispatcher starts with the LMTP service"

# ---- LHLO and refusals ----------------------------------------------------

dialog "$LMTP_PORT" >"$OUT" <<'EOF'
<
> EHLO relay.test
<
> HELO relay.test
<
> MAIL FROM:<ann@sender.example>
<
> LHLO relay.test
<
> QUIT
<
EOF
check_grep "the greeting says LMTP" "$OUT" "220 mail.example.com LMTP service ready"
check_grep "EHLO is refused" "$OUT" "500 5.5.1 Error: this is an LMTP server; use LHLO"
[ "$(grep -c '^500 5.5.1 Error: this is an LMTP server; use LHLO$' "$OUT")" -eq 2 ]
ok $? "HELO is refused the same way"
check_grep "MAIL before LHLO is refused" "$OUT" "503 5.5.1 Error: send LHLO first"
grep -q '^250-PIPELINING$' "$OUT" && grep -q '^250-ENHANCEDSTATUSCODES$' "$OUT" &&
	grep -q '^250-8BITMIME$' "$OUT" && grep -q '^250-SIZE 8192$' "$OUT" &&
	grep -q '^250-DSN$' "$OUT" && grep -q '^250 CHUNKING$' "$OUT"
ok $? "LHLO offers PIPELINING, ENHANCEDSTATUSCODES, 8BITMIME, SIZE 8192, DSN, CHUNKING"

dialog "$LMTP_PORT" --source 127.0.0.2 >"$OUT" <<'EOF'
<
eof
EOF
check_grep "a client PORT_ACCESS does not trust is refused" "$OUT" \
	"550 5.7.1 LMTP is for trusted relays only"

# ---- one transaction, mixed outcomes -------------------------------------

# quser's mailbox gets 700 of its 1000 bytes.
lmtp_send ann@sender.example quser@example.com "quota filler" 600
check_grep "quser's first message is delivered" "$OUT" \
	"quser@example.com 250 2.0.0 <quser@example.com> delivered to the message store: quser INBOX, UID 1"
lmtp_send ann@sender.example alice@example.com,nobody@example.com,quser@example.com \
	"mixed outcomes" 500
cp "$OUT" "$T/mixed"
check_grep "alice is accepted at RCPT" "$T/mixed" "RCPT alice@example.com 250 2.1.5 Ok"
check_grep "the unknown user is refused at RCPT with 550 5.1.1" "$T/mixed" \
	"RCPT nobody@example.com 550 5.1.1 <nobody@example.com> unknown user nobody"
check_grep "quser is accepted at RCPT (no size declared)" "$T/mixed" \
	"RCPT quser@example.com 250 2.1.5 Ok"
sed -n '/^DATA 354/,$p' "$T/mixed" | sed 's/ (.*//' >"$T/replies"
printf '%s\n' "DATA 354 End data with <CR><LF>.<CR><LF>" \
	"alice@example.com 250 2.0.0 <alice@example.com> delivered to the message store: alice INBOX, UID 1" \
	"quser@example.com 452 4.2.2 <quser@example.com> mailbox full" >"$T/expected"
check_same "after DATA: one reply per accepted recipient, in RCPT order" "$T/expected" \
	"$T/replies"
[ "$(count_subject alice "mixed outcomes")" -eq 1 ] &&
	[ "$(count_subject quser "mixed outcomes")" -eq 0 ]
ok $? "the message is in alice's mailbox only"
MBOX -P alice "$(uids_with_subject alice "mixed outcomes")" >"$T/stored" 2>"$ERR"
head -n 3 "$T/stored" | grep -q "^Received: from relay.test" &&
	grep -q "with LMTP id" "$T/stored"
ok $? "the stored message starts with our Received: header (with LMTP)"

# After the grace period (0 hours): 552 5.2.2.
printf 'store.quotagraceperiod = 0\n' >"$C/store.cnf"
lmtp_send ann@sender.example quser@example.com "after grace" 500
check_grep "over quota after the grace period: 552 5.2.2" "$OUT" \
	"quser@example.com 552 5.2.2 <quser@example.com> mailbox full"
lmtp_send ann@sender.example quser@example.com "declared" 500 --size
check_grep "with SIZE declared the quota refuses at RCPT" "$OUT" \
	"RCPT quser@example.com 552 5.2.2 <quser@example.com> mailbox full"
lmtp_send ann@sender.example iuser@example.com "inactive" 500
check_grep "an inactive user is a temporary refusal at RCPT: 450 4.2.1" "$OUT" \
	"RCPT iuser@example.com 450 4.2.1 <iuser@example.com> mailbox iuser is inactive; try again later"

# ---- RCPT order, pipelining, BDAT -----------------------------------------

MBOX -c alice/Archive >/dev/null 2>&1
dialog "$LMTP_PORT" >"$OUT" <<'EOF'
<
>> LHLO relay.test\r\nMAIL FROM:<ann@sender.example>\r\nRCPT TO:<bob@example.com>\r\nRCPT TO:<alice+Archive@example.com>\r\nDATA\r\n
<*5
>> Subject: pipelined\r\n\r\nbody\r\n.\r\nQUIT\r\n
<*3
EOF
grep -v '^250-' "$OUT" | sed 's/, UID [0-9]*$//' >"$T/replies"
printf '%s\n' "220 mail.example.com LMTP service ready" "250 CHUNKING" "250 2.1.0 Ok" \
	"250 2.1.5 Ok" "250 2.1.5 Ok" "354 End data with <CR><LF>.<CR><LF>" \
	"250 2.0.0 <bob@example.com> delivered to the message store: bob INBOX" \
	"250 2.0.0 <alice+Archive@example.com> delivered to the message store: alice Archive" \
	"221 2.0.0 mail.example.com closing connection" >"$T/expected"
check_same "pipelined commands are answered in order, recipients in RCPT order" \
	"$T/expected" "$T/replies"

dialog "$LMTP_PORT" >"$OUT" <<'EOF'
<
> LHLO relay.test
<
> MAIL FROM:<ann@sender.example> BODY=8BITMIME
<
> RCPT TO:<alice@example.com> NOTIFY=FAILURE ORCPT=rfc822;alice@example.com
<
> RCPT TO:<bob@example.com>
<
>> BDAT 22\r\nSubject: chunked\r\n\r\nhe
<
>> BDAT 4 LAST\r\nllo\n
<*2
> RSET
<
> NOOP
<
> QUIT
<
EOF
check_grep "a BDAT chunk is acknowledged" "$OUT" "250 2.0.0 Ok: 22 octets received"
grep -q '^250 2.0.0 <alice@example.com> delivered' "$OUT" &&
	grep -q '^250 2.0.0 <bob@example.com> delivered' "$OUT"
ok $? "BDAT LAST is answered once per recipient"
[ "$(count_subject bob chunked)" -eq 1 ]
ok $? "the chunked message is in bob's mailbox"
check_grep "RSET and NOOP" "$OUT" "250 2.0.0 Ok"

# The final hop offers DSN: NOTIFY=SUCCESS gets a success notice here.
dialog "$LMTP_PORT" >"$OUT" <<'EOF'
<
> LHLO relay.test
<
> MAIL FROM:<ann@sender.example> ENVID=env42
<
> RCPT TO:<bob@example.com> NOTIFY=SUCCESS ORCPT=rfc822;bob@example.com
<
> DATA
<
>> Subject: notify me\r\n\r\nbody\r\n.\r\n
<
> QUIT
<
EOF
NOTICE=$(grep -l "Action: delivered" $(queue_files) /dev/null 2>/dev/null | head -n 1)
[ -n "$NOTICE" ] && grep -q "^Original-Envelope-Id: env42" "$NOTICE" &&
	grep -q -E "^Final-Recipient: rfc822; ?bob@example.com" "$NOTICE" &&
	grep -q "^Status: 2.0.0" "$NOTICE"
ok $? "NOTIFY=SUCCESS: a success notice (Action: delivered) is queued to the sender"

# ---- size limit -----------------------------------------------------------

lmtp_send ann@sender.example alice@example.com,bob@example.com "too big" 10000
[ "$(grep -c '552 5.3.4 <[a-z]*@example.com> Message size exceeds fixed limit of 8192 bytes' \
	"$OUT")" -eq 2 ]
ok $? "a message over blocklimit gets 552 5.3.4 for each recipient"
lmtp_send ann@sender.example alice@example.com "too big declared" 10000 --size
check_grep "a declared SIZE over the limit is refused at MAIL" "$OUT" "MAIL 552 5.3.4"
[ "$(count_subject alice "too big")" -eq 0 ]
ok $? "nothing of the big messages is stored"

# ---- timeouts ---------------------------------------------------------------

dialog "$LMTP_PORT" >"$OUT" <<'EOF'
<
> LHLO relay.test
<
sleep 3
eof
EOF
check_grep "an idle session ends with 421 4.4.2" "$OUT" \
	"421 4.4.2 mail.example.com Error: timeout exceeded"
dialog "$LMTP_PORT" >"$OUT" <<'EOF'
<
> LHLO relay.test
<
> MAIL FROM:<ann@sender.example>
<
> RCPT TO:<alice@example.com>
<
> DATA
<
>> Subject: stalled\r\n\r\nhalf a message
sleep 3
eof
EOF
check_grep "a stalled content ends with 421 4.4.2" "$OUT" \
	"421 4.4.2 mail.example.com Error: timeout exceeded"
[ "$(count_subject alice stalled)" -eq 0 ]
ok $? "the stalled message is not delivered"

# ---- mail.log ---------------------------------------------------------------

check_grep "mail.log has the delivery (D) with the store's reply" \
	"$LOGDIR/mail.log_current" "tcp_lmtpss tcp_lmtpss D"
check_grep "mail.log has the refusal (J) of the unknown user" "$LOGDIR/mail.log_current" \
	"550 5.1.1 unknown user nobody"

# ---- workers killed during DATA and delivery --------------------------------

$PY "$T/lmtp.py" stream "$LMTP_PORT" 6 "$T/acked" 2>"$T/stream.err" &
STREAM=$!
kills=0
# Kill whatever worker serves the stream, for as long as the stream runs
# (a loaded machine restarts workers slowly: count rounds, not time).
round=0
while kill -0 "$STREAM" 2>/dev/null && [ $round -lt 100 ]; do
	round=$((round + 1))
	sleep "0.$((RANDOM % 5 + 1))"
	for w in $(smtp_workers); do
		kill -KILL "$w" 2>/dev/null && kills=$((kills + 1))
	done
done
wait "$STREAM"
echo "# $kills kills, $(wc -l <"$T/acked") recipients acknowledged"
[ "$kills" -ge 3 ] && [ "$(wc -l <"$T/acked")" -gt 10 ]
ok $? "messages were acknowledged while workers were being killed"
for u in alice bob; do
	MBOX -m "$u" --json >"$T/$u.json" 2>/dev/null
done
$PY - "$T/acked" "$T/alice.json" "$T/bob.json" >"$OUT" <<'PYEOF'
import json, sys
counts = {}
for user, path in (("alice", sys.argv[2]), ("bob", sys.argv[3])):
    for m in json.load(open(path))["messages"]:
        key = (m.get("subject") or "", user)
        counts[key] = counts.get(key, 0) + 1
bad = [l.split() for l in open(sys.argv[1]) if counts.get(tuple(l.split()), 0) != 1]
print("wrong: %d" % len(bad))
for b in bad[:5]:
    print("# %s %s: %d" % (b[0], b[1], counts.get(tuple(b), 0)))
PYEOF
check_grep "every recipient that got 250 has the message exactly once" "$OUT" "wrong: 0"
"$IMSIMTA" --config "$C" reconstruct --check >"$OUT" 2>&1
ok $? "imsimta reconstruct --check finds nothing after the kills"

check_sanitizers
finish
