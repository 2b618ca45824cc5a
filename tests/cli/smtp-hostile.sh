#!/bin/bash
# The SMTP server against clients that misbehave: over-long commands, NUL
# bytes, HTTP requests, SMTP smuggling sequences inside DATA, commands
# pipelined after STARTTLS, the RFC 5321 timeouts (shortened by the channel
# option file), the recipient, transaction, error, size and hop limits, a
# client that leaves in the middle of DATA, one that sends byte by byte,
# 10 MB without a line end, and many clients at once.
. "$abs_top_srcdir/tests/cli/smtp-lib.sh"
smtp_instance
plan 43

smtp_make_cert
cat >"$C/tcp_local_option" <<'EOF'
! Small limits so that each can be reached quickly.
ALLOW_RECIPIENTS_PER_TRANSACTION=5
ALLOW_TRANSACTIONS_PER_SESSION=2
ALLOW_REJECTIONS_PER_SESSION=5
MAX_RECEIVED_LINES=5
COMMAND_TIMEOUT=2
DATA_TIMEOUT=PT2S
EOF
# Messages from tcp_local: at most 10 blocks of 1024 bytes.
sed -i 's/^tcp_local smtp /tcp_local smtp sourceblocklimit 10 /' "$C/imta.cnf"
smtp_start_dispatcher
ok $? "the dispatcher starts with the tcp_local option file"

# ---- command lines ---------------------------------------------------------------
# 1000 octets with CR LF are taken; 1001 are not.
X993=$(printf 'x%.0s' $(seq 1 993))
dialog "$SMTP_PORT" >"$OUT" <<EOF
<
> NOOP $X993
<
> NOOP ${X993}y
<
> NOOP\x00hidden
<
> NOOP
<
> QUIT
<
EOF
cat >"$T/expected" <<'EOF'
220 mail.example.com ESMTP
250 2.0.0 Ok
500 5.5.2 Line too long
500 5.5.2 NUL byte in command
250 2.0.0 Ok
221 2.0.0 mail.example.com closing connection
EOF
check_same "a 1000-octet command is taken, 1001 octets and NUL bytes are refused" \
	"$T/expected" "$OUT"

dialog "$SMTP_PORT" >"$OUT" <<'EOF'
<
> GET / HTTP/1.1
<
eof
EOF
check_grep "an HTTP request ends the session" "$OUT" "421 4.7.0 mail.example.com Error: non-SMTP command"
check_grep "the connection is closed after it" "$OUT" "(closed)"

# ---- the error limit --------------------------------------------------------------
dialog "$SMTP_PORT" >"$OUT" <<'EOF'
<
>*5 FROB
<*5
> NOOP
<
eof
EOF
ok $(( $(grep -c '^500 5.5.1 Unknown command "FROB"' "$OUT") != 5 )) "five errors are answered"
check_grep "the sixth command gets 421 4.7.0" "$OUT" "421 4.7.0 mail.example.com Error: too many errors"
check_grep "and the connection is closed" "$OUT" "(closed)"
check_grep "the error limit is logged" "$LOGDIR/smtp_server.log" "closing after 5 errors"

# ---- recipient and transaction limits -----------------------------------------------
dialog "$SMTP_PORT" >"$OUT" <<'EOF'
<
> EHLO client.example.org
<
> MAIL FROM:<bob@example.org>
<
>*6 RCPT TO:<alice@example.com>
<*6
> DATA
<
> Subject: one
> .
<
> MAIL FROM:<bob@example.org>
<
> RCPT TO:<alice@example.com>
<
> DATA
<
> Subject: two
> .
<
> MAIL FROM:<bob@example.org>
<
eof
EOF
ok $(( $(grep -c '^250 2.1.5 Ok' "$OUT") != 6 )) "five recipients are accepted (and one more later)"
check_grep "the sixth recipient gets 452 4.5.3" "$OUT" "452 4.5.3 Error: too many recipients"
ok $(( $(grep -c '^250 2.0.0 Ok: queued as' "$OUT") != 2 )) "two messages are accepted"
check_grep "the third MAIL gets 421 4.7.0" "$OUT" \
	"421 4.7.0 mail.example.com Error: too many messages in this session"
ok $(( $(queue_count l) != 2 )) "two queue files"
clear_queue

# ---- SMTP smuggling ----------------------------------------------------------------
dialog "$SMTP_PORT" >"$OUT" <<'EOF'
<
> EHLO client.example.org
<
> MAIL FROM:<bob@example.org>
<
> RCPT TO:<alice@example.com>
<
> DATA
<
>> Subject: s\r\n\r\nbefore\n.\nMAIL FROM:<evil@example.net>\r\nRCPT TO:<carol@example.org>\r\nDATA\r\none\r.\ntwo\n.\r\nthree\r\n.\r\n
<
> QUIT
<
EOF
ok $(( $(grep -c '^250 2.0.0 Ok: queued as' "$OUT") != 1 )) "smuggling: one message, one 250"
ok $(( $(queue_count) != 1 )) "smuggling: the smuggled second message does not exist"
QF=$(queued_file "$OUT")
dialog --body "$QF" | tail -n +4 >"$T/got"
printf 'Subject: s\n\nbefore\n.\nMAIL FROM:<evil@example.net>\nRCPT TO:<carol@example.org>\nDATA\none\r.\ntwo\n.\nthree\n' \
	>"$T/expected"
check_same "smuggling: \\n.\\n, \\r.\\n and \\n.\\r\\n are content" "$T/expected" "$T/got"
check_no_grep "smuggling: carol is not a recipient" "$QF" "rcpt - rfc822;carol"
clear_queue

# ---- commands pipelined with STARTTLS ---------------------------------------------------
dialog "$SMTP_PORT" >"$OUT" <<'EOF'
<
> EHLO client.example.org
<
>> STARTTLS\r\nNOOP\r\nMAIL FROM:<injected@example.net>\r\n
<
tls
> HELP
<
> QUIT
<
EOF
cat >"$T/expected" <<'EOF'
220 mail.example.com ESMTP
250-mail.example.com
250-PIPELINING
250-SIZE 10240
250-8BITMIME
250-ENHANCEDSTATUSCODES
250-DSN
250-CHUNKING
250 STARTTLS
220 2.0.0 Ready to start TLS
(tls TLSv1.3)
214-2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY EXPN HELP STARTTLS AUTH
214 2.0.0 See RFC 5321 and tcp_smtp(8)
221 2.0.0 mail.example.com closing connection
EOF
check_same "commands sent in clear after STARTTLS are never answered" "$T/expected" "$OUT"

# ---- timeouts --------------------------------------------------------------------------
dialog "$SMTP_PORT" >"$OUT" <<'EOF'
<
sleep 3
<
eof
EOF
check_grep "an idle client gets 421 4.4.2 after COMMAND_TIMEOUT" "$OUT" \
	"421 4.4.2 mail.example.com Error: timeout exceeded"
check_grep "and is disconnected" "$OUT" "(closed)"
dialog "$SMTP_PORT" >"$OUT" <<'EOF'
<
> EHLO client.example.org
<
> MAIL FROM:<bob@example.org>
<
> RCPT TO:<alice@example.com>
<
> DATA
<
> Subject: stalled
sleep 3
<
eof
EOF
check_grep "a client stalled in DATA gets 421 4.4.2 after DATA_TIMEOUT" "$OUT" \
	"421 4.4.2 mail.example.com Error: timeout exceeded"
ok $(( $(queue_count) != 0 )) "nothing is queued for a timed-out message"

# ---- size limits ------------------------------------------------------------------------
BIG=$(printf 'y%.0s' $(seq 1 999))
dialog "$SMTP_PORT" >"$OUT" <<EOF
<
> EHLO client.example.org
<
> MAIL FROM:<bob@example.org> SIZE=10241
<
> MAIL FROM:<bob@example.org> SIZE=10240
<
> RCPT TO:<alice@example.com>
<
> DATA
<
>*12 $BIG
> .
<
> NOOP
<
> MAIL FROM:<bob@example.org>
<
> RCPT TO:<alice@example.com>
<
> DATA
<
>*9 $BIG
> .
<
> QUIT
<
EOF
check_grep "EHLO announces the sourceblocklimit as SIZE" "$OUT" "250-SIZE 10240"
check_grep "SIZE above the limit is refused at MAIL" "$OUT" \
	"552 5.3.4 Message size exceeds fixed limit of 10240 bytes"
ok $(( $(grep -c '^552 5.3.4 Message size exceeds fixed limit of 10240 bytes' "$OUT") != 2 )) \
	"a message over the limit is read to its end and refused with 552 5.3.4"
check_grep "the session goes on after it" "$OUT" "250 2.0.0 Ok"
ok $(( $(grep -c '^250 2.0.0 Ok: queued as' "$OUT") != 1 )) "a message under the limit is accepted"
ok $(( $(queue_count) != 1 )) "only the smaller message is queued"
clear_queue

# ---- hop count ------------------------------------------------------------------------
hops() {
	local n=$1
	printf '<\n> EHLO client.example.org\n<\n> MAIL FROM:<bob@example.org>\n<\n'
	printf '> RCPT TO:<alice@example.com>\n<\n> DATA\n<\n'
	for i in $(seq 1 "$n"); do
		printf '> Received: from hop%s.example.net by hop%s.example.net; Mon, 1 Jan 2024 00:00:00 +0000\n' \
			"$i" "$((i + 1))"
	done
	printf '> Subject: hops\n>\n> body\n> .\n<\n> QUIT\n<\n'
}
hops 6 | dialog "$SMTP_PORT" >"$OUT"
check_grep "six Received: lines with MAX_RECEIVED_LINES=5: 554 5.4.6" "$OUT" \
	"554 5.4.6 Too many hops: the message has more than 5 Received: header lines (a mail loop?)"
hops 5 | dialog "$SMTP_PORT" >"$OUT"
check_grep "five Received: lines are accepted" "$OUT" "250 2.0.0 Ok: queued as"
ok $(( $(queue_count) != 1 )) "only the message within the hop limit is queued"
clear_queue

# ---- a client that leaves during DATA ----------------------------------------------
dialog "$SMTP_PORT" >"$OUT" <<'EOF'
<
> EHLO client.example.org
<
> MAIL FROM:<bob@example.org>
<
> RCPT TO:<alice@example.com>
<
> DATA
<
>> Subject: cut\r\n\r\nhalf a mess
EOF
sleep 0.5
ok $(( $(queue_count) != 0 )) "a client that vanishes mid-DATA leaves no queue file"
check_grep "the server says why nothing was queued" "$LOGDIR/smtp_server.log" \
	"the client left during the content; nothing was queued"

# ---- a slow client ----------------------------------------------------------------
dialog "$SMTP_PORT" >"$OUT" <<'EOF'
<
slow EHLO client.example.org
<
slow MAIL FROM:<bob@example.org>
<
slow RCPT TO:<alice@example.com>
<
slow DATA
<
slow Subject: slow
slow
slow one byte at a time
slow .
<
slow QUIT
<
EOF
check_grep "a client sending byte by byte is served" "$OUT" "250 2.0.0 Ok: queued as"
QF=$(queued_file "$OUT")
dialog --body "$QF" | tail -n +4 >"$T/got"
printf 'Subject: slow\n\none byte at a time\n' >"$T/expected"
check_same "the slow client's message is intact" "$T/expected" "$T/got"
clear_queue

# ---- 10 MB without a line end ------------------------------------------------------------
rss() {
	local total=0 kb
	for w in $(smtp_workers); do
		kb=$(awk '/^VmRSS/ { print $2 }' "/proc/$w/status" 2>/dev/null)
		total=$((total + ${kb:-0}))
	done
	echo "$total"
}
BEFORE=$(rss)
dialog "$SMTP_PORT" --timeout 30 >"$OUT" <<'EOF'
<
>>*10485760 A
> 
<
> NOOP
<
> QUIT
<
EOF
AFTER=$(rss)
cat >"$T/expected" <<'EOF'
220 mail.example.com ESMTP
500 5.5.2 Line too long
250 2.0.0 Ok
221 2.0.0 mail.example.com closing connection
EOF
check_same "10 MB without a line end: 500 5.5.2 once its line ends, then the session goes on" \
	"$T/expected" "$OUT"
ok $(( AFTER - BEFORE > 4096 )) "the worker's memory stays bounded (RSS $BEFORE kB -> $AFTER kB)"

# ---- many clients at once ---------------------------------------------------------------
$PY - "$SMTP_PORT" >"$OUT" 2>&1 <<'EOF'
import smtplib, sys, threading
port = int(sys.argv[1])
results = []
def client(i):
    try:
        s = smtplib.SMTP("127.0.0.1", port, timeout=20)
        s.ehlo("client%d.example.org" % i)
        s.sendmail("bob@example.org", ["alice@example.com"], b"Subject: %d\r\n\r\nbody %d\r\n" % (i, i))
        s.quit()
        results.append(True)
    except Exception as e:
        print("client %d: %r" % (i, e))
threads = [threading.Thread(target=client, args=(i,)) for i in range(60)]
for t in threads: t.start()
for t in threads: t.join()
print("served %d" % len(results))
EOF
check_grep "60 clients at once are all served" "$OUT" "served 60"
ok $(( $(queue_count) != 60 )) "60 messages are queued"

# ---- a full disk -------------------------------------------------------------------
# The queue on a full 16 KiB tmpfs, in a mount namespace of its own (it
# vanishes with the test); the dispatcher and its workers run inside it.
if [ "$(id -u)" -ne 0 ] || ! command -v unshare >/dev/null; then
	for i in 1 2 3; do
		echo "ok $((TAP_COUNT + 1)) # SKIP a full disk needs root to mount a file system"
		TAP_COUNT=$((TAP_COUNT + 1))
	done
else
	smtp_stop
	cat >"$T/full.sh" <<EOF
. "\$abs_top_srcdir/tests/cli/smtp-lib.sh"
T="$T" C="$C" QUEUE="$QUEUE" LOGDIR="$LOGDIR" SMTP_PORT="$SMTP_PORT"
trap smtp_stop EXIT
mount -t tmpfs -o size=16k tmpfs "\$QUEUE" || exit 1
dd if=/dev/zero of="\$QUEUE/filler" bs=1k count=64 2>/dev/null
smtp_start_dispatcher || exit 1
printf '%s\n' '<' '> EHLO client.example.org' '<' '> MAIL FROM:<bob@example.org>' '<' \\
	'> RCPT TO:<alice@example.com>' '<' '> DATA' '<' '> Subject: full' '>' \\
	'> body' '> .' '<' '> QUIT' '<' >"\$T/full.script"
dialog "\$SMTP_PORT" <"\$T/full.script" >"\$T/full1"
find "\$QUEUE" -type f -name '*.00' | wc -l >"\$T/full-count"
rm -f "\$QUEUE/filler"
dialog "\$SMTP_PORT" <"\$T/full.script" >"\$T/full2"
EOF
	unshare --mount --propagation private bash "$T/full.sh" >"$OUT" 2>&1
	check_grep "a full disk: the message is refused with 452 4.3.1" "$T/full1" \
		"452 4.3.1 Insufficient system storage"
	check_grep "a full disk: nothing is left in the queue" "$T/full-count" "0"
	check_grep "space again: the next message is accepted" "$T/full2" \
		"250 2.0.0 Ok: queued as"
fi

check_sanitizers
finish
