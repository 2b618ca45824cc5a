#!/bin/bash
# STARTTLS on outbound SMTP: a second instance of this MTA is the next hop
# (maytlsserver, a self-signed certificate for mx.tls.test, its mail routed
# to bitbucket) and smtp-sink a peer without STARTTLS.
#   - maytls: TLS is used (the next hop's Received: says ESMTPS) although
#     the certificate is not trusted;
#   - musttls with the default TLS_CLIENT_VERIFY (name) and the system's
#     trust anchors: deferred with 4.7.5, nothing delivered;
#   - musttls with TLS_CA_FILE naming the certificate: delivered over TLS
#     when the MX host is the certificate's name, deferred (4.7.5) when
#     the MX host has another name;
#   - musttls and a peer without STARTTLS: deferred with 4.7.4.
. "$abs_top_srcdir/tests/cli/relay-lib.sh"
for tool in smtp-sink dnsmasq certtool; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "1..0 # SKIP $tool is not installed"
		exit 0
	fi
done
relay_instance 127.0.0.41 127.0.0.42
relay_peer_instance 127.0.0.41
PEER_T=$OTHER_T
plan 30

# The sending instance: one channel per TLS policy.
relay_rule may.tls.test '$U%$D@tcp_may-daemon'
relay_rule must.tls.test '$U%$D@tcp_must-daemon'
relay_rule ca.tls.test '$U%$D@tcp_mustca-daemon'
relay_rule other.tls.test '$U%$D@tcp_mustca-daemon'
relay_rule plain.test '$U%$D@tcp_must-daemon'
relay_channel tcp_may maytls single_sys
relay_channel tcp_must musttls single_sys
relay_channel tcp_mustca musttls single_sys
PEER_TLS="$PEER_T/var/tls"
echo "TLS_CA_FILE=$PEER_TLS/server.pem" >"$C/tcp_mustca_option"

# The next hop keeps what it receives on its bitbucket channel (its job
# controller starts at the end, to show the chain goes on).
relay_swap
for d in may.tls.test must.tls.test ca.tls.test other.tls.test; do
	relay_rule "$d" '$U%$D@bitbucket-daemon'
done
# Its server logs every command (slave_debug, DEBUG=1): the MAIL parameters.
sed -i 's/^\(tcp_local smtp .*\)$/\1 slave_debug/' "$C/imta.cnf"
echo "DEBUG=1" >"$C/tcp_local_option"
relay_make_cert mx.tls.test "$T/var/tls"
ok $? "certtool makes a self-signed certificate for mx.tls.test"
smtp_start_dispatcher
ok $? "the next hop's dispatcher starts on 127.0.0.41:$RELAY_PORT"
relay_swap

start_dns \
	--mx-host=may.tls.test,mx.tls.test,10 --mx-host=must.tls.test,mx.tls.test,10 \
	--mx-host=ca.tls.test,mx.tls.test,10 --host-record=mx.tls.test,127.0.0.41 \
	--mx-host=other.tls.test,other-name.tls.test,10 \
	--host-record=other-name.tls.test,127.0.0.41 \
	--mx-host=plain.test,mx.plain.test,10 --host-record=mx.plain.test,127.0.0.42
ok $? "dnsmasq answers on 127.0.0.1:$DNS_PORT"
start_sink plain 127.0.0.42
ok $? "smtp-sink (no STARTTLS) listens on 127.0.0.42:$RELAY_PORT"

# The next hop offers STARTTLS with that certificate, valid for mx.tls.test.
$PY - 127.0.0.41 "$RELAY_PORT" "$PEER_TLS/server.pem" >"$OUT" 2>&1 <<'PYEOF'
import socket, ssl, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
f = s.makefile("rb")
def reply():
    while True:
        line = f.readline()
        print(line.decode().rstrip())
        if len(line) < 4 or line[3:4] != b"-":
            return
reply()
s.sendall(b"EHLO client.example.org\r\n")
reply()
s.sendall(b"STARTTLS\r\n")
reply()
ctx = ssl.create_default_context(cafile=sys.argv[3])
t = ctx.wrap_socket(s, server_hostname="mx.tls.test")
print("(tls verified)")
t.sendall(b"QUIT\r\n")
PYEOF
check_grep "the next hop offers STARTTLS" "$OUT" "250 STARTTLS"
check_grep "its certificate verifies for mx.tls.test" "$OUT" "(tls verified)"

smtp_start_jc
ok $? "the sending instance's job controller starts"

message() {
	printf 'From: Ann <ann@sender.test>\nSubject: %s\n\nA plain line.\n' "$1" >"$T/message"
}

# The next hop's queue files of channel bitbucket.
peer_files() {
	find "$PEER_T/var/queue/bitbucket" -type f -name '*.00' 2>/dev/null
}

peer_count() {
	peer_files | wc -l
}

peer_count_is() {
	[ "$(peer_count)" -eq "$1" ]
}

# The next hop's queue file holding the message with SUBJECT.
peer_file() {
	local f
	for f in $(peer_files); do
		grep -qF "Subject: $1" "$f" && echo "$f"
	done
}

qm_shows() {
	"$IMSIMTA" --config "$C" qm read "$1" -envelope 2>&1 | grep -qF -- "$2"
}

# check_deferred DESCRIPTION ID TEXT: message ID is still queued and qm
# shows TEXT (the status code of the deferral) within 30 s.
check_deferred() {
	if wait_until 300 qm_shows "$2" "$3"; then
		ok 0 "$1"
	else
		"$IMSIMTA" --config "$C" qm read "$2" -envelope >"$T/qm" 2>&1
		echo "# expected qm read $2 to show: $3"
		diag_file "$T/qm"
		ok 1 "$1"
	fi
}

# ---- maytls -------------------------------------------------------------------

message "tls test may"
id=$(relay_send ann@sender.test una@may.tls.test)
wait_until 300 peer_count_is 1
ok $? "maytls: the next hop receives the message"
wait_gone "$id" 30
ok $? "it leaves the sending queue"
f=$(peer_file "tls test may")
grep -q "^Received: .*with ESMTPS id\|^[[:space:]].*with ESMTPS id" "${f:-/dev/null}"
ok $? "the next hop's Received: says ESMTPS (an untrusted certificate is fine for maytls)"
[ -n "$f" ] || diag_file "$PEER_T/dispatcher.err"
mail=$(grep -h -o "< MAIL FROM:<ann@sender.test>.*" "$PEER_T/var/log/smtp_server.log" | head -n 1)
size=$(echo "$mail" | sed -n 's/.* SIZE=\([0-9]*\).*/\1/p')
[ -n "$size" ] && [ "$size" -ge "$(wc -c <"$T/message")" ]
ok $? "MAIL FROM has SIZE= (the next hop offers SIZE), at least the stored size: $mail"
case "$mail " in *" BODY="*) r=1 ;; *) r=0 ;; esac
ok $r "no BODY= parameter for 7-bit content"

# ---- musttls, the system's trust anchors -------------------------------------------

message "tls test must"
id_must=$(relay_send ann@sender.test una@must.tls.test)
check_deferred "musttls, certificate not trusted: deferred with 4.7.5" "$id_must" "4.7.5"
[ -n "$(message_files "$id_must")" ]
ok $? "the message stays queued"
[ "$(peer_count)" -eq 1 ] && [ -z "$(peer_file "tls test must")" ]
ok $? "nothing reaches the next hop"

# ---- musttls, TLS_CA_FILE -------------------------------------------------------------

message "tls test ca"
id=$(relay_send ann@sender.test una@ca.tls.test)
wait_until 300 peer_count_is 2
ok $? "musttls with TLS_CA_FILE, the MX host named in the certificate: delivered"
wait_gone "$id" 30
ok $? "it leaves the sending queue"
f=$(peer_file "tls test ca")
grep -q "with ESMTPS id" "${f:-/dev/null}"
ok $? "over TLS (Received: says ESMTPS)"

message "tls test other name"
id_other=$(relay_send ann@sender.test una@other.tls.test)
check_deferred "musttls, the MX host is not the certificate's name: deferred with 4.7.5" \
	"$id_other" "4.7.5"
[ -n "$(message_files "$id_other")" ] && [ -z "$(peer_file "tls test other name")" ]
ok $? "it stays queued and nothing reaches the next hop"

# ---- musttls, no STARTTLS -----------------------------------------------------------------

message "tls test plain"
id_plain=$(relay_send ann@sender.test una@plain.test)
check_deferred "musttls to a peer without STARTTLS: deferred with 4.7.4" "$id_plain" "4.7.4"
[ -n "$(message_files "$id_plain")" ]
ok $? "the message stays queued"
[ "$(sink_count plain)" -eq 0 ]
ok $? "the peer without STARTTLS got nothing"
"$IMSIMTA" --config "$C" qm history "$id_plain" >"$OUT" 2>&1
check_grep "qm history shows the deferral" "$OUT" "<una@plain.test> deferred: "

# The musttls messages are retried (backoff 2 s), never sent in clear.
sleep 4
[ "$(sink_count plain)" -eq 0 ] && [ "$(peer_count)" -eq 2 ]
ok $? "retries do not deliver them either"
"$IMSIMTA" --config "$C" qm history "$id_plain" >"$OUT" 2>&1
[ "$(grep -c '^Attempt ' "$OUT")" -ge 2 ]
ok $? "they were retried"

# ---- the next hop delivers to bitbucket ----------------------------------------------------

relay_swap
smtp_start_jc
ok $? "the next hop's job controller starts"
wait_until 300 peer_count_is 0
ok $? "its bitbucket channel takes the two messages"
check_sanitizers
relay_swap
check_sanitizers
finish
