#!/bin/bash
# Outbound SMTP end to end: the job controller runs the tcp_smtp master,
# which delivers to Postfix smtp-sink peers found through a dnsmasq name
# server, and what an administrator would check is asserted: each message
# at the right peer exactly once, its envelope (MAIL and RCPT parameters,
# EHLO name), its content, the queue afterwards and the notices the sender
# gets (at the sink that is the sender domain's MX).
#   1. routing: MX preference, the next MX when the first is down, the A
#      record without MX, nomx, a daemon smart host, a domain literal;
#   2. the envelope: SIZE, BODY=8BITMIME, RET/ENVID and NOTIFY/ORCPT only
#      to a peer offering DSN;
#   3. a 4xx keeps the message queued (qm shows the reply), retried later;
#   4. a 5xx gives a failure notice with the peer's reply;
#   5. a connection cut during the content: retried, delivered once;
#   6. 8-bit content to a peer without 8BITMIME is sent quoted-printable,
#      and so is unlabelled 8-bit text (labelled by charset8) on a sevenbit
#      channel whatever the peer offers;
#   7. 20 messages to one destination share a few connections;
#   8. NOTIFY=SUCCESS: no notice when the next hop takes DSN, "relayed"
#      when it does not;
#   9. an IPv6 next hop;
#  10. null MX (5.1.10), a domain that does not exist (5.1.2), a name
#      server that does not answer (queued, 4.4.3).
. "$abs_top_srcdir/tests/cli/relay-lib.sh"
for tool in smtp-sink dnsmasq; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "1..0 # SKIP $tool is not installed"
		exit 0
	fi
done
HAVE_V6=0
$PY -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null &&
	HAVE_V6=1
v6addr=()
[ "$HAVE_V6" -eq 1 ] && v6addr=(::1)
relay_instance 127.0.0.21 127.0.0.22 127.0.0.23 127.0.0.24 127.0.0.25 127.0.0.26 \
	127.0.0.27 127.0.0.28 127.0.0.29 127.0.0.30 127.0.0.31 127.0.0.32 127.0.0.33 \
	127.0.0.34 127.0.0.35 127.0.0.36 127.0.0.37 127.0.0.38 "${v6addr[@]}"
plan 97

# Routing by channel: nomx, a smart host, a channel with few threads and
# one job for the connection count.
relay_rule nomx.test '$U%$D@tcp_nomx-daemon'
relay_rule relayed.test '$U%$D@tcp_smart-daemon'
relay_rule many.test '$U%$D@tcp_many-daemon'
relay_channel tcp_nomx nomx single_sys
relay_channel tcp_smart daemon smarthost.test single_sys
relay_channel tcp_many mx single_sys maxjobs 1
relay_rule sevenbit.test '$U%$D@tcp_seven-daemon'
relay_channel tcp_seven mx single_sys sevenbit charset8 UTF-8
echo "MAX_CLIENT_THREADS=2" >"$C/tcp_many_option"

start_dns \
	--mx-host=example.test,mx1.example.test,10 --mx-host=example.test,mx2.example.test,20 \
	--host-record=mx1.example.test,127.0.0.21 --host-record=mx2.example.test,127.0.0.22 \
	--mx-host=down.test,mx1.down.test,10 --mx-host=down.test,mx2.example.test,20 \
	--host-record=mx1.down.test,127.0.0.23 \
	--host-record=amx.test,127.0.0.24 \
	--mx-host=nomx.test,mx1.example.test,10 --host-record=nomx.test,127.0.0.25 \
	--host-record=smarthost.test,127.0.0.26 \
	--mx-host=dsn.test,mx.dsn.test,10 --host-record=mx.dsn.test,127.0.0.28 \
	--mx-host=nodsn.test,mx.nodsn.test,10 --host-record=mx.nodsn.test,127.0.0.29 \
	--mx-host=sender.test,mx.sender.test,10 --host-record=mx.sender.test,127.0.0.30 \
	--mx-host=soft.test,mx.soft.test,10 --host-record=mx.soft.test,127.0.0.31 \
	--mx-host=hard.test,mx.hard.test,10 --host-record=mx.hard.test,127.0.0.32 \
	--mx-host=drop.test,mx.drop.test,10 --host-record=mx.drop.test,127.0.0.33 \
	--mx-host=seven.test,mx.seven.test,10 --host-record=mx.seven.test,127.0.0.35 \
	--mx-host=eight.test,mx.eight.test,10 --host-record=mx.eight.test,127.0.0.36 \
	--mx-host=sevenbit.test,mx.eight.test,10 \
	--mx-host=many.test,mx.many.test,10 --host-record=mx.many.test,127.0.0.37 \
	--mx-host=v6.test,mx.v6.test,10 --host-record=mx.v6.test,::1 \
	--mx-host=dnsdown.test,mx1.example.test,10 \
	--dns-rr=nullmx.test,15,000000
ok $? "dnsmasq answers on 127.0.0.1:$DNS_PORT"
"$IMSIMTA" --config "$C" test -dns example.test -type=mx >"$OUT" 2>&1
check_grep "the instance's resolver sees the MX records through it" "$OUT" \
	"Answer:       20 mx2.example.test"

sinks_ok=0
start_sink mx1 127.0.0.21 || sinks_ok=1
start_sink mx2 127.0.0.22 || sinks_ok=1
start_sink a 127.0.0.24 || sinks_ok=1
start_sink nomx 127.0.0.25 || sinks_ok=1
start_sink smart 127.0.0.26 || sinks_ok=1
start_sink lit 127.0.0.27 || sinks_ok=1
start_sink dsn 127.0.0.28 || sinks_ok=1
start_sink nodsn 127.0.0.29 -N || sinks_ok=1
start_sink senders 127.0.0.30 || sinks_ok=1
start_sink soft 127.0.0.31 -r RCPT || sinks_ok=1
start_sink hard 127.0.0.32 -f RCPT -B "550 5.1.1 <erin@hard.test>: no such user here" ||
	sinks_ok=1
start_sink drop 127.0.0.34 || sinks_ok=1
start_sink seven 127.0.0.35 -8 || sinks_ok=1
start_sink eight 127.0.0.36 || sinks_ok=1
start_sink many 127.0.0.38 || sinks_ok=1
[ "$HAVE_V6" -eq 1 ] && { start_sink v6 ::1 || sinks_ok=1; }
start_proxy drop 127.0.0.33 127.0.0.34 1000 1 || sinks_ok=1
start_proxy many 127.0.0.37 127.0.0.38 0 0 || sinks_ok=1
ok $sinks_ok "the sinks and the proxies listen on port $RELAY_PORT"

smtp_start_jc
ok $? "the job controller starts"
smtp_start_dispatcher
ok $? "the dispatcher starts"

# ---- helpers ------------------------------------------------------------

# message SUBJECT [BODY-LINE]: $T/message, from ann@sender.test.
message() {
	printf 'From: Ann <ann@sender.test>\nTo: whom it may concern\nSubject: %s\n' "$1" \
		>"$T/message"
	printf 'Message-ID: <%s@sender.test>\n\n%s\n' "${1// /.}" "${2:-A plain line.}" \
		>>"$T/message"
}

# The 8-bit message of the 8BITMIME checks.
message8() {
	printf '%s\n' "From: Ann <ann@sender.test>" "Subject: $1" "MIME-Version: 1.0" \
		"Content-Type: text/plain; charset=utf-8" "Content-Transfer-Encoding: 8bit" "" \
		"The caf$(printf '\303\251') on the corner opens at noon; see you there." \
		>"$T/message"
}

# sink_field FILE NAME: the value of smtp-sink's header NAME (X-Mail-Args...).
sink_field() {
	sed -n "s/^$2: //p" "$1"
}

# sink_message FILE: the message as the peer got it, without smtp-sink's
# own header lines and the empty line it adds at the end.
sink_message() {
	$PY - "$1" <<'EOF'
import sys
data = open(sys.argv[1], "rb").read()
start = data.index(b"\nReceived: ") + 1
end = data.index(b"\n", start)
while data[end + 1:end + 2] in (b"\t", b" "):
	end = data.index(b"\n", end + 1)
rest = data[end + 1:]
sys.stdout.buffer.write(rest[:-1] if rest.endswith(b"\n\n") else rest)
EOF
}

# The body of a message (what follows the first empty line).
body_of() {
	sed '1,/^$/d'
}

# A file's lines joined, blanks squeezed: text that may have been wrapped.
unfolded() {
	tr '\n\t' '  ' <"$1" | tr -s ' '
}

# sink_holds_one SINK: one message, and still one a moment later (smtp-sink
# creates its file at DATA and removes it when the transaction is cut).
sink_holds_one() {
	sink_count_is "$1" 1 && sleep 0.5 && sink_count_is "$1" 1
}

# check_once DESCRIPTION SINK: exactly one message at SINK (within 30 s).
check_once() {
	wait_until 300 sink_holds_one "$2"
	if [ "$(sink_count "$2")" -eq 1 ]; then
		ok 0 "$1"
	else
		echo "# sink $2 holds $(sink_count "$2") messages"
		ok 1 "$1"
	fi
}

# check_field DESCRIPTION FILE FIELD VALUE: smtp-sink's FIELD is exactly VALUE.
check_field() {
	local got
	got=$(sink_field "$2" "$3")
	if [ "$got" = "$4" ]; then
		ok 0 "$1"
	else
		echo "# expected $3: $4"
		echo "# got      $3: $got"
		ok 1 "$1"
	fi
}

# The notices at the senders' sink about the message with SUBJECT.
notices_about() {
	sink_grep senders "Subject: $1"
}

notice_count() {
	notices_about "$1" | wc -l
}

notice_count_is() {
	[ "$(notice_count "$1")" -eq "$2" ]
}

# wait_notice SUBJECT: one notice about it arrives within 30 s; its file.
wait_notice() {
	wait_until 300 notice_count_is "$1" 1 && notices_about "$1" | head -n 1
}

# qm_shows ID TEXT: imsimta qm read -envelope of ID shows TEXT.
qm_shows() {
	"$IMSIMTA" --config "$C" qm read "$1" -envelope 2>&1 | grep -qF -- "$2"
}

# ---- 1. routing ---------------------------------------------------------

message "relay test mx"
id1=$(relay_send ann@sender.test bob@example.test)
check_once "MX 10 before MX 20: the message is at mx1" mx1
f=$(sink_files mx1 | head -n 1)
check_field "RCPT TO is the recipient, with its ORCPT (the peer offers DSN)" "$f" X-Rcpt-Args \
	"<bob@example.test> ORCPT=rfc822;bob@example.test"
check_grep "MAIL FROM is the envelope sender" "$f" "X-Mail-Args: <ann@sender.test>"
check_field "EHLO names the local channel's official host" "$f" X-Helo-Args mail.example.com
[ "$(sink_count mx2)" -eq 0 ]
ok $? "nothing went to mx2"
wait_gone "$id1" 30
ok $? "the delivered message leaves the queue"
wait_until 50 grep -qF " tcp_local D 1 ann@sender.test rfc822;bob@example.test bob@example.test " \
	"$MAILLOG"
ok $? "mail.log has the D entry of the delivery"
check_grep "naming the MX host and its reply" "$MAILLOG" \
	"remote mx1.example.test [127.0.0.21] said: 250 2.0.0 Ok"

message "relay test mx down"
id=$(relay_send ann@sender.test bob@down.test)
check_once "the first MX host does not listen: the message is at the second" mx2
check_field "the second MX host got the recipient" "$(sink_files mx2 | head -n 1)" \
	X-Rcpt-Args "<bob@down.test> ORCPT=rfc822;bob@down.test"
wait_gone "$id" 30
ok $? "and it leaves the queue"

message "relay test primary down"
stop_sink mx1
id=$(relay_send ann@sender.test bob2@example.test)
wait_sink_count mx2 2 30
ok $? "the primary MX host stops listening: the next message goes to the secondary"
wait_gone "$id" 30
ok $? "and leaves the queue"
restart_sink mx1
ok $? "the primary MX host is back"

message "relay test a"
id=$(relay_send ann@sender.test bob@amx.test)
check_once "no MX record: the message is at the domain's A address" a
message "relay test nomx"
id=$(relay_send ann@sender.test bob@nomx.test)
check_once "nomx: the A address is used although the domain has an MX" nomx
[ "$(sink_count mx1)" -eq 1 ]
ok $? "nomx: the MX host got nothing"
message "relay test smart host"
id=$(relay_send ann@sender.test bob@relayed.test)
check_once "daemon: the smart host gets mail for a domain that has no DNS" smart
check_field "the smart host got the recipient as addressed" "$(sink_files smart | head -n 1)" \
	X-Rcpt-Args "<bob@relayed.test> ORCPT=rfc822;bob@relayed.test"
message "relay test literal"
id=$(relay_send ann@sender.test "bob@[127.0.0.27]")
check_once "a domain literal goes to that address" lit
check_field "RCPT TO keeps the literal" "$(sink_files lit | head -n 1)" X-Rcpt-Args \
	"<bob@[127.0.0.27]> ORCPT=rfc822;bob@[127.0.0.27]"

# ---- 2. the envelope ----------------------------------------------------

message8 "relay test envelope dsn"
relay_send -ret=hdrs -envid=ENV-2 -notify=FAILURE,DELAY ann@sender.test carol@dsn.test >/dev/null
relay_send -ret=hdrs -envid=ENV-2 -notify=FAILURE,DELAY ann@sender.test carol@nodsn.test \
	>/dev/null
check_once "the message is at the peer that offers DSN" dsn
f=$(sink_files dsn | head -n 1)
margs=" $(sink_field "$f" X-Mail-Args) "
case $margs in " <ann@sender.test> "*) r=0 ;; *) r=1 ;; esac
ok $r "MAIL FROM is the envelope sender: $margs"
case $margs in *" SIZE="*) r=1 ;; *) r=0 ;; esac
ok $r "no SIZE= to a peer that does not offer SIZE (smtp-sink does not)"
case $margs in *" BODY=8BITMIME "*) r=0 ;; *) r=1 ;; esac
ok $r "8-bit content is announced with BODY=8BITMIME"
case $margs in *" RET=HDRS "*) r=0 ;; *) r=1 ;; esac
ok $r "RET is passed to a peer offering DSN"
case $margs in *" ENVID=ENV-2 "*) r=0 ;; *) r=1 ;; esac
ok $r "ENVID is passed to a peer offering DSN"
check_field "NOTIFY and ORCPT are passed to a peer offering DSN" "$f" X-Rcpt-Args \
	"<carol@dsn.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;carol@dsn.test"
check_once "the message is at the peer without DSN" nodsn
f=$(sink_files nodsn | head -n 1)
margs=" $(sink_field "$f" X-Mail-Args) "
case $margs in *RET=* | *ENVID=*) r=1 ;; *) r=0 ;; esac
ok $r "no RET or ENVID without DSN: $margs"
check_field "no NOTIFY or ORCPT without DSN" "$f" X-Rcpt-Args "<carol@nodsn.test>"

# ---- 3. 4xx, then 2xx ---------------------------------------------------

message "relay test soft"
id3=$(relay_send ann@sender.test dave@soft.test)
wait_until 300 qm_shows "$id3" "said: 450 4.3.0 Error: command failed"
ok $? "4xx to RCPT: the message stays queued"
"$IMSIMTA" --config "$C" qm read "$id3" -envelope >"$OUT" 2>&1
check_grep "qm read shows the peer's reply as the last error" "$OUT" \
	"remote mx.soft.test [127.0.0.31] said: 450 4.3.0 Error: command failed"
check_grep "the recipient is deferred with that reply" "$OUT" \
	"1. <dave@soft.test>  deferred: remote mx.soft.test [127.0.0.31] said: 450 4.3.0"
"$IMSIMTA" --config "$C" qm history "$id3" >"$OUT" 2>&1
grep -F "<dave@soft.test> deferred: " "$OUT" >"$T/deferred"
check_grep "qm history shows the deferral with the reply" "$T/deferred" \
	"remote mx.soft.test [127.0.0.31] said: 450 4.3.0 Error: command failed"
[ "$(sink_count soft)" -eq 0 ]
ok $? "nothing was delivered while the peer refused"
restart_sink soft
check_once "the peer accepts again: the retry delivers the message once" soft
wait_gone "$id3" 30
ok $? "it leaves the queue"

# ---- 4. 5xx -------------------------------------------------------------

message "relay test hard"
id4=$(relay_send ann@sender.test erin@hard.test)
wait_gone "$id4" 30
ok $? "5xx to RCPT: the message leaves the queue"
N=$(wait_notice "relay test hard")
[ -n "$N" ]
ok $? "one failure notice reaches the sender's MX"
[ -n "$N" ] || N=/dev/null
check_field "the notice's envelope sender is empty" "$N" X-Mail-Args "<>"
check_field "the notice goes to the sender" "$N" X-Rcpt-Args \
	"<ann@sender.test> ORCPT=rfc822;ann@sender.test"
check_grep "it is a delivery status report" "$N" \
	"Content-Type: multipart/report; report-type=delivery-status;"
check_grep "Status is the peer's enhanced code" "$N" "Status: 5.1.1"
check_grep "Remote-MTA names the MX host" "$N" "Remote-MTA: dns; mx.hard.test"
check_grep "Diagnostic-Code quotes the peer's reply" "$N" \
	"Diagnostic-Code: smtp; 550 5.1.1 <erin@hard.test>: no such user here"
unfolded "$N" >"$T/unfolded"
check_grep "the text says who said what" "$T/unfolded" \
	"remote mx.hard.test [127.0.0.32] said: 550 5.1.1"
[ "$(sink_count hard)" -eq 0 ]
ok $? "the refusing peer holds nothing"

# ---- 5. the connection cut during the content --------------------------

message "relay test drop" "$(head -c 20000 /dev/zero | tr '\0' x | fold -w 76)"
id5=$(relay_send ann@sender.test frank@drop.test)
wait_gone "$id5" 30
ok $? "a connection cut during DATA: the message is retried and leaves the queue"
check_once "the peer holds one copy" drop
[ "$(proxy_cuts drop)" -eq 1 ] && [ "$(proxy_connections drop)" -ge 2 ]
ok $? "the proxy cut the first connection; a new one followed ($(proxy_connections drop))"
sink_message "$(sink_files drop | head -n 1)" | body_of >"$T/got"
body_of <"$T/message" >"$T/want"
check_same "the body arrived whole" "$T/want" "$T/got"

# ---- 6. 8BITMIME --------------------------------------------------------

message8 "relay test eight"
relay_send ann@sender.test gina@seven.test >/dev/null
relay_send ann@sender.test gina@eight.test >/dev/null
check_once "the message is at the peer without 8BITMIME" seven
f=$(sink_files seven | head -n 1)
sink_message "$f" >"$T/got"
check_grep "it was converted to quoted-printable" "$T/got" \
	"Content-Transfer-Encoding: quoted-printable"
check_no_grep "no 8bit label is left" "$T/got" "Content-Transfer-Encoding: 8bit"
printf 'The caf=C3=A9 on the corner opens at noon; see you there.\n' >"$T/want"
body_of <"$T/got" >"$T/got-body"
check_same "the body is the quoted-printable form" "$T/want" "$T/got-body"
check_no_grep "no BODY=8BITMIME to a peer that does not offer it" "$f" "BODY=8BITMIME"
check_once "the message is at the peer with 8BITMIME" eight
f=$(sink_files eight | head -n 1)
sink_message "$f" | body_of >"$T/got"
body_of <"$T/message" >"$T/want"
check_same "with 8BITMIME the body arrives 8-bit, unchanged" "$T/want" "$T/got"
check_grep "and labelled BODY=8BITMIME" "$f" "BODY=8BITMIME"

# A sevenbit channel encodes 8-bit content even for a peer that offers
# 8BITMIME, once its charset8 has labelled the unlabelled text.
printf '%s\n' "From: Ann <ann@sender.test>" "Subject: relay test sevenbit" "" \
	"The caf$(printf '\303\251') on the corner opens at noon; see you there." >"$T/message"
relay_send ann@sender.test hana@sevenbit.test >/dev/null
# smtp-sink creates its file before the content has all arrived: wait for
# the subject, then as long as check_once lets a message settle.
sink_subject_settled() {
	[ -n "$(sink_grep "$1" "$2")" ] && sleep 0.5
}
wait_sink_count eight 2 30 && wait_until 300 sink_subject_settled eight "Subject: relay test sevenbit"
ok $? "the sevenbit channel's message is at the peer with 8BITMIME"
f=$(sink_grep eight "Subject: relay test sevenbit" | head -n 1)
sink_message "$f" >"$T/got"
check_grep "charset8 labelled the unlabelled text" "$T/got" \
	"Content-Type: text/plain; charset=UTF-8"
check_grep "sevenbit made it quoted-printable" "$T/got" \
	"Content-Transfer-Encoding: quoted-printable"
printf 'The caf=C3=A9 on the corner opens at noon; see you there.\n' >"$T/want"
body_of <"$T/got" >"$T/got-body"
check_same "the body is the quoted-printable form" "$T/want" "$T/got-body"
check_no_grep "no BODY=8BITMIME although the peer offers it" "$f" "BODY=8BITMIME"

# ---- 7. connection reuse --------------------------------------------------

for i in $(seq 1 20); do
	message "relay test many $i"
	relay_send ann@sender.test "user$i@many.test" >/dev/null
done
wait_sink_count many 20 60
ok $? "20 messages to one destination are delivered"
wait_until 100 test "$(queue_count tcp_many)" -eq 0
sleep 0.5
[ "$(sink_count many)" -eq 20 ]
ok $? "each once"
conns=$(proxy_connections many)
[ "$conns" -ge 1 ] && [ "$conns" -le 2 ]
ok $? "over at most 2 connections (MAX_CLIENT_THREADS=2, one job): $conns"

# ---- 8. NOTIFY=SUCCESS --------------------------------------------------

dialog "$SMTP_PORT" --source 127.0.0.2 >"$OUT" <<'EOF'
<
> EHLO client.example.org
<
> MAIL FROM:<ann@sender.test> RET=HDRS ENVID=E8a
> RCPT TO:<hank@dsn.test> NOTIFY=SUCCESS ORCPT=rfc822;hank@dsn.test
> DATA
<*3
> Subject: relay test dsn8a
>
> Tell me when it arrives.
> .
<
> MAIL FROM:<ann@sender.test> ENVID=E8b
> RCPT TO:<ivy@nodsn.test> NOTIFY=SUCCESS ORCPT=rfc822;ivy@nodsn.test
> DATA
<*3
> Subject: relay test dsn8b
>
> Tell me when it arrives.
> .
<
> QUIT
<
EOF
[ "$(grep -c '^250 2.0.0 Ok: queued as' "$OUT")" -eq 2 ]
r=$?
[ $r -eq 0 ] || diag_file "$OUT"
ok $r "two messages with NOTIFY=SUCCESS are accepted by SMTP"
dsn8a_arrived() {
	[ -n "$(sink_grep dsn "Subject: relay test dsn8a")" ]
}
wait_until 300 dsn8a_arrived
ok $? "the first is at the peer that offers DSN"
f=$(sink_grep dsn "Subject: relay test dsn8a" | head -n 1)
[ -n "$f" ] || f=/dev/null
check_field "NOTIFY=SUCCESS and ORCPT are passed on" "$f" X-Rcpt-Args \
	"<hank@dsn.test> NOTIFY=SUCCESS ORCPT=rfc822;hank@dsn.test"
N=$(wait_notice "relay test dsn8b")
[ -n "$N" ]
ok $? "the peer without DSN: the sender gets a notice"
[ -n "$N" ] || N=/dev/null
check_grep "it says relayed" "$N" "Action: relayed"
check_grep "for that recipient" "$N" "Final-Recipient: rfc822; ivy@nodsn.test"
check_grep "with the envelope id" "$N" "Original-Envelope-Id: E8b"
# The notice of the second message has arrived; one about the first
# would have been sent at least as early.
sleep 1
[ "$(notice_count "relay test dsn8a")" -eq 0 ]
ok $? "the peer offering DSN: no success notice from this system"

# ---- 9. IPv6 ------------------------------------------------------------

if [ "$HAVE_V6" -eq 1 ]; then
	message "relay test v6"
	id=$(relay_send ann@sender.test jill@v6.test)
	check_once "an MX host with only an AAAA record gets the message over IPv6" v6
	check_field "the peer saw an IPv6 client" "$(sink_files v6 | head -n 1)" \
		X-Client-Addr "ipv6:::1"
else
	ok 0 "# SKIP no IPv6 loopback"
	ok 0 "# SKIP no IPv6 loopback"
fi

# ---- 10. DNS failures -------------------------------------------------------

message "relay test nullmx"
id=$(relay_send ann@sender.test jack@nullmx.test)
wait_gone "$id" 30
ok $? "null MX: the message leaves the queue"
N=$(wait_notice "relay test nullmx")
[ -n "$N" ]
ok $? "a failure notice is sent"
check_grep "with Status 5.1.10" "${N:-/dev/null}" "Status: 5.1.10"
message "relay test nxdomain"
id=$(relay_send ann@sender.test jack@nosuch.test)
wait_gone "$id" 30
ok $? "a domain that does not exist: the message leaves the queue"
N=$(wait_notice "relay test nxdomain")
[ -n "$N" ]
ok $? "a failure notice is sent"
check_grep "with Status 5.1.2" "${N:-/dev/null}" "Status: 5.1.2"

before=$(sink_count mx1)
stop_dns
message "relay test dns down"
id10=$(relay_send ann@sender.test kim@dnsdown.test)
wait_until 300 qm_shows "$id10" "4.4.3"
ok $? "the name server does not answer: the message stays queued with 4.4.3"
[ "$(sink_count mx1)" -eq "$before" ]
ok $? "and is not delivered"
start_dns
ok $? "the name server is back"
wait_sink_count mx1 $((before + 1)) 30
ok $? "the retry delivers it"
wait_gone "$id10" 30
ok $? "and it leaves the queue"

# ---- the end --------------------------------------------------------------

sleep 1
"$IMSIMTA" --config "$C" qm directory -channel=tcp_local >"$OUT" 2>&1
check_no_grep "imsimta qm lists nothing left on tcp_local" "$OUT" ".00 "
[ "$(queue_count tcp_local)" -eq 0 ] && [ "$(queue_count tcp_nomx)" -eq 0 ] &&
	[ "$(queue_count tcp_smart)" -eq 0 ]
ok $? "the SMTP channels' queues are empty"
check_sanitizers
finish
