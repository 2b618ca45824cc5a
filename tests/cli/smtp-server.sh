#!/bin/bash
# The SMTP server (tcp_smtp's slave program) behind the real dispatcher and
# workers: the greeting, every command and extension (PIPELINING, SIZE,
# 8BITMIME, ENHANCEDSTATUSCODES, DSN, CHUNKING), sequencing errors, the
# envelope and content of the queue files written (DSN fields, Received:,
# the body byte for byte), recipient checks against the rewrite rules,
# ORIG_SEND_ACCESS, FROM_ACCESS and the directory, switchchannel, a greeting
# that does not wait for the client check, the
# built-in relay protection, VRFY/EXPN policy, the job controller hearing
# of new messages, and draining.
. "$abs_top_srcdir/tests/cli/smtp-lib.sh"
smtp_instance
plan 59

# FROM_ACCESS refuses one sender; VRFY details and EXPN are allowed on
# tcp_intranet, the channel of switched (internal) clients.
cat >>"$C/mappings" <<'EOF'

FROM_ACCESS

  *|spammer@bad.example|*  $NSender$ blocked$ by$ policy
EOF
sed -i 's/^tcp_intranet smtp /tcp_intranet smtp expnallow vrfyallow /' "$C/imta.cnf"
# An access refusal that chooses its own code.
sed -i 's/^  tcp_local|\*|tcp_local|\*/  *|*|*|greylisted@example.com  $N451$ 4.7.1$ Greylisted,$ try$ later\n&/' \
	"$C/mappings"
smtp_park_channels
smtp_start_jc
smtp_start_dispatcher
ok $? "the dispatcher starts and listens"

# ---- greeting, EHLO, HELO ------------------------------------------------
dialog "$SMTP_PORT" >"$OUT" <<'EOF'
<
> EHLO client.example.org
<
> HELO client.example.org
<
> HELO
<
> EHLO not..valid
<
> ehlo client.example.org
<
> QUIT
<
eof
EOF
cat >"$T/expected" <<'EOF'
220 mail.example.com ESMTP
250-mail.example.com
250-PIPELINING
250-SIZE 52428800
250-8BITMIME
250-ENHANCEDSTATUSCODES
250-DSN
250 CHUNKING
250 mail.example.com
501 5.5.4 Syntax: HELO hostname
501 5.5.4 Syntax: EHLO hostname
250-mail.example.com
250-PIPELINING
250-SIZE 52428800
250-8BITMIME
250-ENHANCEDSTATUSCODES
250-DSN
250 CHUNKING
221 2.0.0 mail.example.com closing connection
(closed)
EOF
check_same "greeting, EHLO (no STARTTLS or AUTH without a certificate), HELO, bad HELO" \
	"$T/expected" "$OUT"

# ---- sequencing and simple commands --------------------------------------
dialog "$SMTP_PORT" >"$OUT" <<'EOF'
<
> MAIL FROM:<bob@example.org>
<
> EHLO client.example.org
<
> RCPT TO:<alice@example.com>
<
> DATA
<
> BDAT 6 LAST
>> NOOP\r\n
<
> MAIL FROM:<bob@example.org>
<
> MAIL FROM:<bob@example.org>
<
> DATA
<
> RSET
<
> NOOP
<
> NOOP anything
<
> HELP
<
> FROB
<
> EXPN staff@example.com
<
> VRFY alice@example.com
<
> VRFY nobody@example.com
<
> VRFY someone@remote.example.net
<
> MAIL FROM:<bob@example.org> SIZE=52428801
<
> MAIL FROM:<bob@example.org> FOO=bar
<
> MAIL FROM:bob@example.org
<
> QUIT
<
EOF
cat >"$T/expected" <<'EOF'
220 mail.example.com ESMTP
503 5.5.1 Error: send HELO/EHLO first
250-mail.example.com
250-PIPELINING
250-SIZE 52428800
250-8BITMIME
250-ENHANCEDSTATUSCODES
250-DSN
250 CHUNKING
503 5.5.1 Error: need MAIL command
503 5.5.1 Error: need MAIL command
503 5.5.1 Error: need MAIL command
250 2.1.0 Ok
503 5.5.1 Error: nested MAIL command
554 5.5.1 Error: no valid recipients
250 2.0.0 Ok
250 2.0.0 Ok
250 2.0.0 Ok
214-2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY EXPN HELP STARTTLS AUTH
214 2.0.0 See RFC 5321 and tcp_smtp(8)
500 5.5.1 Unknown command "FROB"
502 5.5.1 EXPN command is disabled
250 2.1.5 Alice Smith <alice@example.com>
550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown
252 2.1.5 <someone@remote.example.net>: Cannot verify a remote address; send mail to try delivery
552 5.3.4 Message size exceeds fixed limit of 52428800 bytes
555 5.5.4 Unsupported parameter "FOO"
501 5.1.7 Bad sender address syntax: the address must be in angle brackets (Syntax: MAIL FROM:<address> [parameters])
221 2.0.0 mail.example.com closing connection
EOF
check_same "sequencing errors, RSET, NOOP, HELP, unknown commands, VRFY, EXPN, SIZE" \
	"$T/expected" "$OUT"
ok "$(queue_count)" "a refused BDAT chunk is read and not executed; nothing is queued"

# ---- a pipelined transaction, the queue file -------------------------------
# Everything up to DATA in one write, the content and QUIT in another: the
# replies come in order.  The content has a dot-stuffed line, a line that
# is only a dot inside, 8-bit bytes, a NUL and a long line.
LONG=$(printf 'x%.0s' $(seq 1 1200))
dialog "$SMTP_PORT" >"$OUT" <<EOF
<
>> EHLO client.example.org\r\nMAIL FROM:<bob@example.org> BODY=8BITMIME\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<nobody@example.com>\r\nRCPT TO:<Postmaster>\r\nRCPT TO:<relay@remote.example.net>\r\nDATA\r\n
<*7
>> Subject: pipelined\r\nFrom: bob@example.org\r\n\r\nline one\r\n..leading dot\r\n...\r\ncaf\xc3\xa9 8-bit\r\nnul:\x00:\r\n$LONG\r\nlast\r\n.\r\nQUIT\r\n
<*2
EOF
sed 's/queued as [0-9A-Z]*/queued as ID/' "$OUT" >"$T/got"
cat >"$T/expected" <<'EOF'
220 mail.example.com ESMTP
250-mail.example.com
250-PIPELINING
250-SIZE 52428800
250-8BITMIME
250-ENHANCEDSTATUSCODES
250-DSN
250 CHUNKING
250 2.1.0 Ok
250 2.1.5 Ok
550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown
250 2.1.5 Ok
550 5.7.1 Relaying not permitted
354 End data with <CR><LF>.<CR><LF>
250 2.0.0 Ok: queued as ID
221 2.0.0 mail.example.com closing connection
EOF
check_same "pipelined commands are answered in order" "$T/expected" "$T/got"
QF=$(queued_file "$OUT")
ok $(( $(queue_count l) != 1 )) "one queue file, on the local channel"
check_grep "envelope: the source channel" "$QF" "source tcp_local"
check_grep "envelope: the return path" "$QF" "from bob@example.org"
check_grep "envelope: alice, with the original address as ORCPT" "$QF" \
	"rcpt - rfc822;alice@example.com alice@example.com"
check_grep "envelope: Postmaster without a domain is this system's" "$QF" \
	"rcpt - rfc822;postmaster@mail.example.com postmaster@mail.example.com"
check_no_grep "envelope: no refused recipient" "$QF" "nobody@"
dialog --body "$QF" >"$T/body"
head -n 3 "$T/body" >"$T/received"
check_grep "the content starts with our Received: header" "$T/received" \
	"Received: from client.example.org (unknown [127.0.0.1])"
QID=$(sed -n 's/^250 2.0.0 Ok: queued as \([0-9A-Z]*\).*/\1/p' "$OUT")
check_grep "Received: names this host, ESMTP and the queue id of the reply" "$T/received" \
	"	by mail.example.com (imta) with ESMTP id $QID"
case $QF in
*"$QID".00) ok 0 "the queue file is named by the id of the reply and Received:" ;;
*) ok 1 "the queue file is named by the id of the reply and Received: ($QF, $QID)" ;;
esac
check_no_grep "no for clause with two recipients" "$T/received" "for <"
{
	printf 'Subject: pipelined\nFrom: bob@example.org\n\nline one\n.leading dot\n..\n'
	printf 'caf\303\251 8-bit\nnul:\000:\n%s\nlast\n' "$LONG"
} >"$T/expected"
tail -n +4 "$T/body" >"$T/got"
check_same "the body is queued byte for byte (dots unstuffed, LF line ends)" \
	"$T/expected" "$T/got"
check_grep "the message is logged with its queue file" "$LOGDIR/smtp_server.log" \
	"from <bob@example.org>: 2 recipients"

# ---- the job controller heard of it ---------------------------------------
"$IMSIMTA" --config "$C" counters >"$T/counters" 2>&1
check_grep "the job controller was notified of the new message" "$T/counters" \
	"l                                 1"

# ---- DSN parameters, smtplib ------------------------------------------------
clear_queue
$PY - "$SMTP_PORT" >"$OUT" 2>&1 <<'EOF'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
s.ehlo("client.example.org")
print(s.mail("", ["RET=HDRS", "ENVID=QQ+2Bid-1"]))
print(s.rcpt("alice@example.com", ["NOTIFY=SUCCESS,DELAY", "ORCPT=rfc822;Alice+40Example.COM"]))
print(s.rcpt("bob@example.com", ["NOTIFY=NEVER"]))
print(s.data(b"Subject: dsn\r\n\r\nbody\r\n"))
s.quit()
EOF
QF=$(find "$QUEUE/l" -type f -name '*.00' | head -n 1)
check_grep "smtplib: the null return path is accepted" "$OUT" "(250, b'2.1.0 Ok')"
check_grep "envelope: the null return path" "$QF" "from "
check_grep "envelope: RET=HDRS" "$QF" "ret hdrs"
check_grep "envelope: ENVID, xtext" "$QF" "envid QQ+2Bid-1"
check_grep "envelope: NOTIFY and ORCPT of the client" "$QF" \
	"rcpt SUCCESS,DELAY rfc822;Alice@Example.COM alice@example.com"
check_grep "envelope: NOTIFY=NEVER, ORCPT from the RCPT address" "$QF" \
	"rcpt NEVER rfc822;bob@example.com bob@example.com"

# ---- BDAT --------------------------------------------------------------------
clear_queue
dialog "$SMTP_PORT" >"$OUT" <<'EOF'
<
> EHLO client.example.org
<
> MAIL FROM:<bob@example.org>
<
> RCPT TO:<carol@example.org>
<
>> BDAT 22\r\nSubject: chunked\r\n\r\nab
<
>> BDAT 14 LAST\r\nc\r\n.\r\nDATA\r\nxy
<
> DATA
<
> QUIT
<
EOF
sed 's/queued as [0-9A-Z]*/queued as ID/' "$OUT" >"$T/got"
cat >"$T/expected" <<'EOF'
220 mail.example.com ESMTP
250-mail.example.com
250-PIPELINING
250-SIZE 52428800
250-8BITMIME
250-ENHANCEDSTATUSCODES
250-DSN
250 CHUNKING
250 2.1.0 Ok
250 2.1.5 Ok
250 2.0.0 Ok: 22 octets received
250 2.0.0 Ok: queued as ID
503 5.5.1 Error: need MAIL command
221 2.0.0 mail.example.com closing connection
EOF
check_same "BDAT chunks and LAST; DATA after it needs a new MAIL" "$T/expected" "$T/got"
QF=$(queued_file "$OUT")
dialog --body "$QF" | tail -n +4 >"$T/got"
printf 'Subject: chunked\n\nabc\n.\nDATA\nxy' >"$T/expected"
check_same "a chunked body is queued as sent, CR LF as LF, no dot handling" "$T/expected" "$T/got"
dialog --body "$QF" | head -n 3 >"$T/received"
check_grep "Received: for clause with one recipient" "$T/received" "for <carol@example.org>"

# ---- directory statuses, access texts with a code ----------------------------
dialog "$SMTP_PORT" >"$OUT" <<'EOF'
<
> EHLO client.example.org
<
> MAIL FROM:<bob@example.org>
<
> RCPT TO:<ivan@example.com>
<
> RCPT TO:<hank@example.com>
<
> RCPT TO:<alice.smith@example.com>
<
> RCPT TO:<staff@example.com>
<
> RCPT TO:<greylisted@example.com>
<
> QUIT
<
EOF
tail -n 6 "$OUT" >"$T/got"
cat >"$T/expected" <<'EOF'
450 4.2.1 <ivan@example.com>: Recipient address rejected: Mailbox temporarily disabled
250 2.1.5 Ok
250 2.1.5 Ok
250 2.1.5 Ok
451 4.7.1 Greylisted, try later
221 2.0.0 mail.example.com closing connection
EOF
check_same "inactive users wait (450), held users, alternate addresses and groups are taken, \
an access text chooses its code" "$T/expected" "$T/got"

# ---- FROM_ACCESS, switchchannel --------------------------------------------
clear_queue
dialog "$SMTP_PORT" --source 127.0.0.2 >"$OUT" <<'EOF'
<
> EHLO internal.example.org
<
> MAIL FROM:<spammer@bad.example>
<
> MAIL FROM:<joe@internal.example.org>
<
> RCPT TO:<friend@remote.example.net>
<
> DATA
<
> Subject: relayed
>
> hi
> .
<
> EXPN staff@example.com
<
> QUIT
<
EOF
check_grep "FROM_ACCESS refuses with the table's text" "$OUT" \
	"550 5.7.1 Sender blocked by policy"
check_grep "a client of INTERNAL_IP may relay (switchchannel to tcp_intranet)" "$OUT" \
	"250 2.1.5 Ok"
QF=$(queued_file "$OUT")
check_grep "the relayed message's source channel is tcp_intranet" "$QF" "source tcp_intranet"
check_grep "the relayed message is queued to tcp_local" "$QF" "channel tcp_local"
check_grep "expnallow on tcp_intranet: EXPN lists the group" "$OUT" "250-2.1.5 <alice@example.com>"
check_grep "the switch is logged" "$LOGDIR/smtp_server.log" \
	"[127.0.0.2]: switchchannel: source channel tcp_intranet"

# ---- the greeting does not wait for the client check ---------------------------
# A name server that takes queries and never answers: the client's reverse
# lookup lasts DNS_TIMEOUT.  The greeting goes out before it; the first
# command waits for it.
$PY -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
time.sleep(60)' >"$T/silent.port" &
SILENT_PID=$!
wait_until 50 test -s "$T/silent.port"
cp "$C/option.dat" "$T/option.dat.good"
cp "$C/imta.cnf" "$T/imta.cnf.good"
sed -i '/^DNS_SERVERS=/d; /^DNS_TIMEOUT=/d' "$C/option.dat"
printf 'DNS_SERVERS=127.0.0.1:%s\nDNS_TIMEOUT=3\n' "$(cat "$T/silent.port")" >>"$C/option.dat"
sed -i '/^tcp_local smtp /s/ identnonenumeric / identnone /' "$C/imta.cnf"
smtp_restart_dispatcher
: >"$LOGDIR/smtp_server.log"
dialog "$SMTP_PORT" --timeout 20 >"$OUT" 2>&1 <<EOF &
<
mark $T/greeted
pause $T/looked
> EHLO client.example
<
> QUIT
<
EOF
DIALOG_PID=$!
wait_until 100 test -e "$T/greeted"
if grep -q "no name for 127.0.0.1" "$LOGDIR/smtp_server.log"; then
	diag_file "$LOGDIR/smtp_server.log"
	ok 1 "the greeting comes before the client's reverse lookup has ended"
else
	ok 0 "the greeting comes before the client's reverse lookup has ended"
fi
touch "$T/looked"
wait "$DIALOG_PID"
check_grep "EHLO is answered once the lookup gave up" "$OUT" "250-mail.example.com"
check_grep "the failed lookup is logged" "$LOGDIR/smtp_server.log" \
	"[127.0.0.1]: no name for 127.0.0.1"
stop_pid "$SILENT_PID"
cp "$T/option.dat.good" "$C/option.dat"
cp "$T/imta.cnf.good" "$C/imta.cnf"

# ---- the built-in relay protection --------------------------------------------
# Without ORIG_SEND_ACCESS and SEND_ACCESS nothing may be relayed, except
# by switched or authenticated sessions.
sed -i '/^ORIG_SEND_ACCESS/,$d' "$C/mappings"
smtp_restart_dispatcher
ok $? "the dispatcher restarts without ORIG_SEND_ACCESS"
for src in 127.0.0.1 127.0.0.2; do
	dialog "$SMTP_PORT" --source "$src" >"$T/relay-$src" <<'EOF'
<
> EHLO client.example.org
<
> MAIL FROM:<bob@example.org>
<
> RCPT TO:<x@remote.example.net>
<
> RCPT TO:<carol@example.org>
<
> RCPT TO:<x@bitbucket.example.com>
<
> QUIT
<
EOF
done
check_grep "no access tables: relaying is denied" "$T/relay-127.0.0.1" \
	"550 5.7.1 <x@remote.example.net>: Relaying denied"
check_grep "no access tables: hosted domains are accepted" "$T/relay-127.0.0.1" "250 2.1.5 Ok"
check_grep "no access tables: another channel than local is relaying too" "$T/relay-127.0.0.1" \
	"550 5.7.1 <x@bitbucket.example.com>: Relaying denied"
check_no_grep "no access tables: a switched client may relay" "$T/relay-127.0.0.2" "Relaying denied"

# ---- draining: a transaction in DATA is finished, then 421 ---------------------
clear_queue
dialog "$SMTP_PORT" >"$OUT" <<EOF &
<
> EHLO client.example.org
<
> MAIL FROM:<bob@example.org>
<
> RCPT TO:<alice@example.com>
<
> DATA
<
> Subject: drained
mark $T/in-data
pause $T/drained
> body
> .
<
> NOOP
<
eof
EOF
DIALOG=$!
wait_until 100 test -f "$T/in-data"
WORKERS=$(smtp_workers)
kill -TERM "$DISP_PID"
sleep 1
touch "$T/drained"
wait "$DIALOG"
check_grep "draining: the message in DATA is still accepted" "$OUT" "250 2.0.0 Ok: queued as"
check_grep "draining: the next command is answered 421 4.3.2" "$OUT" \
	"421 4.3.2 mail.example.com Service shutting down, closing transmission channel"
ok $(( $(queue_count l) != 1 )) "draining: the message was queued"
for w in $WORKERS; do wait_until 100 gone "$w"; done
wait_until 100 gone "$DISP_PID"
ok $? "the dispatcher and its workers exit once the session ended"
DISP_PID=""

# ---- configuration errors ---------------------------------------------------------
run_worker() {
	"$IMTA_LIBEXEC/imta-worker" --config "$C" --service SMTP --channel tcp_local \
		--control-fd 3 3</dev/null
}
printf 'ALLOW_RECIPIENTS_PER_TRANSACTION=10\nCOMMAND_TIMEOUT=0\n' >"$C/tcp_local_option"
check_run "a value out of range in the option file stops the worker (78)" 78 run_worker
check_grep "the error says where and what was expected" "$ERR" \
	"tcp_local_option:2:17: expected a number of seconds or an ISO 8601 duration (such as PT30M) between 1 and 86400 for COMMAND_TIMEOUT, got \"0\""
printf '! comment\nCOMANDTIMEOUT=5\n' >"$C/tcp_local_option"
check_run "an unknown option stops the worker (78)" 78 run_worker
check_grep "the error suggests the right name" "$ERR" \
	"tcp_local_option:2:1: unknown SMTP channel option \"COMANDTIMEOUT\" (did you mean COMMAND_TIMEOUT?)"
rm -f "$C/tcp_local_option"
cp "$C/imta.cnf" "$T/imta.cnf.good"
LINE=$(grep -n '^tcp_local smtp ' "$C/imta.cnf" | cut -d: -f1)
sed -i 's/saslswitchchannel tcp_auth$/saslswitchchannel tcp_nowhere/' "$C/imta.cnf"
COL=$(sed -n "${LINE}p" "$C/imta.cnf" | awk '{ print index($0, "tcp_nowhere") }')
check_run "saslswitchchannel naming no channel stops the worker (78)" 78 run_worker
check_grep "the error is at the channel name" "$ERR" \
	"imta.cnf:$LINE:$COL: channel tcp_local: saslswitchchannel names channel tcp_nowhere, which imta.cnf does not define"
cp "$T/imta.cnf.good" "$C/imta.cnf"
sed -i 's/^tcp_local smtp /tcp_local smtp_crorlf /' "$C/imta.cnf"
check_run "imsimta check refuses smtp_crorlf" 78 "$IMSIMTA" --config "$C" check
check_grep "the error is at the keyword and says why" "$ERR" \
	"imta.cnf:$LINE:11: channel tcp_local: smtp_crorlf is not supported: only CR LF ends SMTP lines here, since bare CR or LF line ends make SMTP smuggling possible; use smtp"
cp "$T/imta.cnf.good" "$C/imta.cnf"
sed -i 's/^tcp_local smtp /tcp_local smtp vrfyallow vrfyhide /' "$C/imta.cnf"
COL=$(sed -n "${LINE}p" "$C/imta.cnf" | awk '{ print index($0, "vrfyhide") }')
check_run "imsimta check refuses vrfyallow with vrfyhide" 78 "$IMSIMTA" --config "$C" check
check_grep "the error names both keywords" "$ERR" \
	"imta.cnf:$LINE:$COL: channel tcp_local: vrfyhide contradicts vrfyallow; keep one of them"
cp "$T/imta.cnf.good" "$C/imta.cnf"
LINE=$(grep -n '^tcp_auth smtp ' "$C/imta.cnf" | cut -d: -f1)
sed -i '/^tcp_auth smtp /s/ maytlsserver//' "$C/imta.cnf"
COL=$(sed -n "${LINE}p" "$C/imta.cnf" | awk '{ print index($0, "mustsaslserver") }')
check_run "imsimta check refuses mustsaslserver without TLS" 78 "$IMSIMTA" --config "$C" check
check_grep "the error says AUTH needs TLS" "$ERR" \
	"imta.cnf:$LINE:$COL: channel tcp_auth: mustsaslserver needs maytlsserver or musttlsserver: SMTP AUTH is offered only after STARTTLS"
cp "$T/imta.cnf.good" "$C/imta.cnf"

check_sanitizers
finish
