#!/bin/bash
# A two-tier deployment on one machine (docs/multi-tier.md): two instances
# of the MTA with their own configuration, queue, store and ports.
#   relay  takes mail by SMTP; its directory puts the users' mailboxes on
#          host store.test (mailHost), so DELIVERY_OPTIONS turns a mailbox
#          into "@store.test.LMTP:uid@tcp_lmtpcs-daemon"; groups and
#          forwarding are expanded here; the lmtp channel tcp_lmtpcs hands
#          the mail to the store over LMTP;
#   store  the LMTP service of its dispatcher (the lmtp plugin's server)
#          delivers straight into its message store.
# Checked: the rewrite and expansion on the relay, each mailbox holding the
# message once (a user reached directly, through a group and through a
# forward gets one copy), the body as sent, one LMTP transaction for all
# recipients of one store, external members and forwards leaving by SMTP,
# and a store that is down: mail waits on the relay and arrives when the
# store is back.
. "$abs_top_srcdir/tests/cli/relay-lib.sh"
for tool in smtp-sink dnsmasq; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "1..0 # SKIP $tool is not installed"
		exit 0
	fi
done
# 127.0.0.31: the MX of example.net (an smtp-sink), for what leaves the site.
relay_instance 127.0.0.31
plan 31

# ---- the shared directory: every user's mailbox is on store.test --------------

sed -i 's/^mailHost: mail\.example\.com$/mailHost: store.test/' "$C/directory.ldif"
# erin only forwards, to a user of each local domain.
cat >>"$C/directory.ldif" <<'EOF'

dn: uid=erin,ou=People,o=example.com,o=example
objectClass: top
objectClass: inetOrgPerson
objectClass: inetUser
objectClass: inetMailUser
objectClass: inetLocalMailRecipient
uid: erin
cn: Erin Forward
sn: Forward
mail: erin@example.com
mailHost: store.test
mailDeliveryOption: forward
mailForwardingAddress: bob@example.com
mailForwardingAddress: carol@example.org
EOF
cp "$C/directory.ldif" "$T/directory.ldif"

# ---- the relay ------------------------------------------------------------------

# Mailboxes become source routes through their store; the default rule
# ".lmtp" routes them to the default LMTP channel tcp_lmtpcs, which
# connects to the store on its LMTP port (set once the store's port is
# known).  Groups, whose mailHost is also the store, are expanded here:
# '#' on members.
printf '%s\n' 'DELIVERY_OPTIONS=*mailbox=@$X.LMTP:$M%$\$2I$_+$2S@tcp_lmtpcs-daemon, #&members=*, #forward=**' \
	>>"$C/option.dat"
grep -q '^\.lmtp  *\$E\$F\$U%\$H\.lmtp@tcp_lmtpcs-daemon$' "$C/imta.cnf" ||
	echo "# the default .lmtp rule is missing"

# ---- the store --------------------------------------------------------------------

# Its LMTP service is on the free port smtp_instance chose ($LMTP_PORT),
# which its PORT_ACCESS lines name.
relay_peer_instance 127.0.0.1
relay_swap
STORE_LMTP_PORT=$LMTP_PORT
cp "$OTHER_T/directory.ldif" "$C/directory.ldif"
grep -q "^PORT=$STORE_LMTP_PORT\$" "$C/dispatcher.cnf" || echo "# the LMTP port is not $STORE_LMTP_PORT"
grep -q "^  TCP|\*|$STORE_LMTP_PORT|" "$C/mappings" || echo "# PORT_ACCESS not adapted"
# The store takes no SMTP here: its SMTP services listen on loopback ports
# nobody uses.
sed -i "s/^PORT=$RELAY_PORT\$/PORT=$(free_port)/" "$C/dispatcher.cnf"
STORE_LOG="$LOGDIR"
smtp_start_dispatcher
ok $? "the store's dispatcher starts, LMTP on port $STORE_LMTP_PORT"
relay_swap

sed -i "s/^\(tcp_lmtpcs lmtp .*\) port 2424 /\1 port $STORE_LMTP_PORT backoff \"pt2s\" /" "$C/imta.cnf"
grep -q "^tcp_lmtpcs lmtp .* port $STORE_LMTP_PORT backoff" "$C/imta.cnf" ||
	echo "# tcp_lmtpcs was not given the store's port"
"$IMSIMTA" --config "$C" check >"$OUT" 2>&1
r=$?
[ $r -eq 0 ] || diag_file "$OUT"
ok $r "imsimta check: the relay's configuration is clean"
"$IMSIMTA" --config "$C" test -rewrite '@store.test.LMTP:alice@tcp_lmtpcs-daemon' >"$OUT" 2>&1
check_grep "the relay routes a mailbox on store.test to tcp_lmtpcs" "$OUT" \
	"Channel:        tcp_lmtpcs"

start_dns --host-record=store.test,127.0.0.1 \
	--mx-host=example.net,mx.example.net,10 --host-record=mx.example.net,127.0.0.31
ok $? "dnsmasq answers for store.test and example.net"
start_sink net 127.0.0.31
ok $? "example.net's MX (smtp-sink) listens"
smtp_start_jc
ok $? "the relay's job controller starts"
smtp_start_dispatcher
ok $? "the relay's dispatcher starts, SMTP on port $SMTP_PORT"

# ---- helpers ----------------------------------------------------------------------

# send SUBJECT RCPT...: one message by SMTP into the relay.
send() {
	local subject=$1
	shift
	printf '%s\n' "From: Ann <ann@example.com>" "To: the staff <staff@example.com>" \
		"Subject: $subject" "Message-ID: <${subject// /.}@example.com>" "" \
		"Hello $subject," ".a line with a dot" "" "Ann" >"$T/message"
	$PY - "$SMTP_PORT" "$T/message" "$@" <<'EOF'
import smtplib, sys
port, path, rcpts = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
    data = open(path, "rb").read().replace(b"\n", b"\r\n")
    refused = s.sendmail("ann@example.com", rcpts, data)
    sys.exit(1 if refused else 0)
EOF
}

# In the store instance: store_uids FOLDER SUBJECT.
store_uids() {
	relay_swap
	uids_with_subject "$1" "$2"
	relay_swap
}

store_count() {
	local uids
	uids=$(store_uids "$1" "$2")
	set -- $uids
	echo $#
}

store_count_is() {
	[ "$(store_count "$1" "$2")" -eq "$3" ]
}

# store_message FOLDER UID: the message as the store holds it.
store_message() {
	relay_swap
	MBOX -P "$1" "$2" 2>/dev/null
	relay_swap
}

LMTP_LOG="$LOGDIR/tcp_lmtpcs_master.log"
MAILLOG="$LOGDIR/mail.log_current"

# ---- one message, a direct user, a group, a forward ---------------------------------

send "multi tier one" alice@example.com staff@example.com erin@example.com dave@example.com
ok $? "the relay takes a message for alice, staff, erin and dave by SMTP"
wait_until 300 store_count_is alice "multi tier one" 1
ok $? "alice's mailbox on the store has it"
wait_until 100 store_count_is bob "multi tier one" 1
ok $? "bob has it (group staff, forward of erin), once"
wait_until 100 store_count_is carol@example.org "multi tier one" 1
ok $? "carol of example.org has it (group staff, forward of erin), once"
wait_until 100 store_count_is dave "multi tier one" 1
ok $? "dave has it in his mailbox"
sleep 1
[ "$(store_count alice "multi tier one")" -eq 1 ] && [ "$(store_count bob "multi tier one")" -eq 1 ]
ok $? "still one copy each a moment later"
uid=$(store_uids alice "multi tier one")
store_message alice "${uid%% *}" >"$T/stored"
sed '1,/^$/d' "$T/stored" >"$T/got"
sed '1,/^$/d' "$T/message" >"$T/want"
check_same "the body arrived as sent" "$T/want" "$T/got"
check_grep "with the original header" "$T/stored" "Message-ID: <multi.tier.one@example.com>"
check_grep "and the store's LMTP Received: line" "$T/stored" "with LMTP"
wait_until 100 grep -qF "to store.test [127.0.0.1]" "$LMTP_LOG"
check_grep "one LMTP transaction for the four mailboxes" "$LMTP_LOG" \
	"to store.test [127.0.0.1]: 4 sent, 4 delivered, 0 failed, 0 deferred"
grep -i "tcp_lmtpcs D .*@store.test.lmtp:alice@tcp_lmtpcs-daemon" "$MAILLOG" >"$T/alice.log"
check_grep "the relay logged alice's delivery with the store's reply" "$T/alice.log" \
	"remote store.test [127.0.0.1] said: 250 2.0.0"

check_once_net() {
	[ -n "$(sink_grep net "Subject: multi tier one")" ]
}
wait_until 300 check_once_net
ok $? "the group's external member and dave's forward leave by SMTP"
f=$(sink_grep net "Subject: multi tier one" | head -n 1)
check_grep "addressed to both, in one transaction" "${f:-/dev/null}" \
	"X-Rcpt-Args: <partner@example.net>"
wait_until 100 test "$(queue_count tcp_lmtpcs)" -eq 0
ok $? "nothing is left on the relay's LMTP channel"

# ---- the store is down ----------------------------------------------------------------

relay_swap
stop_pid "$DISP_PID"
DISP_PID=""
relay_swap
send "multi tier two" alice@example.com
ok $? "the store is down: the relay still takes mail for alice"
lmtp_deferred() {
	grep -qF "tcp_lmtpcs Q 1 ann@example.com" "$MAILLOG"
}
wait_until 300 lmtp_deferred
ok $? "the LMTP delivery is deferred"
check_grep "with the reason" "$MAILLOG" "4.4.1 cannot connect to store.test [127.0.0.1] port"
[ "$(queue_count tcp_lmtpcs)" -ge 1 ]
ok $? "the message waits in the relay's queue"
relay_swap
smtp_start_dispatcher
r=$?
relay_swap
ok $r "the store is back"
wait_until 300 store_count_is alice "multi tier two" 1
ok $? "the retry delivers the message into alice's mailbox"
wait_until 100 test "$(queue_count tcp_lmtpcs)" -eq 0
ok $? "and it leaves the relay's queue"

# ---- the end --------------------------------------------------------------------------

unknown_rcpt=$(send "multi tier three" nosuchuser@example.com 2>&1; echo $?)
[ "${unknown_rcpt##*$'\n'}" != 0 ]
ok $? "an address the directory does not know is refused by the relay at RCPT"
check_no_grep "no sanitizer report in the store's logs" <(cat "$STORE_LOG"/*.log 2>/dev/null) \
	"Sanitizer"
relay_swap
smtp_stop
relay_swap
check_sanitizers
finish
