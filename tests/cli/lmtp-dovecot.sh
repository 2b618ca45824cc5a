#!/bin/bash
# The lmtp channel's master (our LMTP client) delivering into Dovecot's
# LMTP server, a private `dovecot -c $T/dovecot/dovecot.conf` on a loopback
# port and a UNIX-domain socket, with a passwd-file of known users and
# maildirs under $T.  What an administrator would check:
#   1. a message reaches the maildir of each recipient, headers and body
#      as sent, Dovecot's own trace lines above them;
#   2. one transaction, three recipients: Dovecot refuses the unknown one
#      with 550 5.1.1 (that recipient fails with Dovecot's reply, the
#      sender gets a notice) while the two others are delivered;
#   3. Dovecot stopped: the message stays queued with a 4.4.1 reason, and
#      is delivered once Dovecot is back;
#   4. the channel's server as a UNIX-domain socket (LMTP_SERVER=/path);
#   5. a recipient whose source route names the store
#      (@store.test.lmtp:user@domain, the form DELIVERY_OPTIONS with $X
#      writes) goes to that host, the route removed from RCPT TO;
#   6. several messages in a row share one connection;
#   7. STARTTLS (musttls, the certificate checked against the server's
#      name and a private CA) with Dovecot's TLS.
. "$abs_top_srcdir/tests/cli/relay-lib.sh"
DOVECOT=$(command -v dovecot || echo /usr/sbin/dovecot)
if [ ! -x "$DOVECOT" ] || [ ! -x /usr/lib/dovecot/lmtp ]; then
	echo "1..0 # SKIP Dovecot's LMTP server (dovecot-lmtpd) is not installed"
	exit 0
fi
for tool in smtp-sink dnsmasq; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "1..0 # SKIP $tool is not installed"
		exit 0
	fi
done
# The sender's domain has an smtp-sink as its MX: the notices arrive there.
relay_instance 127.0.0.30
plan 48

DV="$T/dovecot"
DV_PID=""
trap 'stop_pid "$DV_PID"; relay_stop_all; smtp_stop; rm -rf "$T"' EXIT
DV_PORT=$(free_port)
DV_SOCKET="$DV/lmtp.sock"

# ---- Dovecot ------------------------------------------------------------

# Mail is stored as a user other than root (Dovecot refuses uid 0); an
# ordinary user runs everything as itself.
if [ "$(id -u)" -eq 0 ]; then
	DV_USER=nobody
	DV_GROUP=$(id -gn nobody)
else
	DV_USER=$(id -un)
	DV_GROUP=$(id -gn)
fi
mkdir -p "$DV/run" "$DV/state" "$DV/mail"
# Dovecot offers STARTTLS with a certificate for store.test, its own CA.
relay_make_cert store.test "$DV/tls"
chmod 755 "$DV" "$DV/run" "$DV/state"
chmod 1777 "$DV/mail"
printf '%s\n' 'alice@dovecot.test:{PLAIN}unused::::::' 'bob@dovecot.test:{PLAIN}unused::::::' \
	'carol@dovecot.test:{PLAIN}unused::::::' 'dave@dovecot.test:{PLAIN}unused::::::' \
	'erin@dovecot.test:{PLAIN}unused::::::' 'frank@dovecot.test:{PLAIN}unused::::::' \
	>"$DV/users"
chmod 644 "$DV/users"
cat >"$DV/dovecot.conf" <<EOF
base_dir = $DV/run
state_dir = $DV/state
log_path = $DV/dovecot.log
protocols = lmtp
listen = 127.0.0.1
ssl = yes
ssl_cert = <$DV/tls/server.pem
ssl_key = <$DV/tls/server.key
default_internal_user = $DV_USER
default_internal_group = $DV_GROUP
default_login_user = $DV_USER
mail_location = maildir:$DV/mail/%n/Maildir
passdb {
  driver = passwd-file
  args = $DV/users
}
userdb {
  driver = static
  args = uid=$DV_USER gid=$DV_GROUP home=$DV/mail/%n allow_all_users=no
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $DV_PORT
  }
  unix_listener $DV_SOCKET {
    mode = 0666
  }
}
EOF

dovecot_listens() {
	$PY - "$DV_PORT" <<'EOF' 2>/dev/null
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
sys.exit(0 if s.recv(100).startswith(b"220") else 1)
EOF
}

start_dovecot() {
	"$DOVECOT" -c "$DV/dovecot.conf" -F >>"$DV/dovecot.out" 2>&1 &
	DV_PID=$!
	if ! wait_until 100 dovecot_listens; then
		echo "# Dovecot does not listen on 127.0.0.1:$DV_PORT"
		diag_file "$DV/dovecot.out"
		[ -f "$DV/dovecot.log" ] && diag_file "$DV/dovecot.log"
		return 1
	fi
}

stop_dovecot() {
	stop_pid "$DV_PID"
	DV_PID=""
	rm -f "$DV_SOCKET"
}

# ---- the instance ---------------------------------------------------------

# dovecot.test goes to channel lmtp (TCP), sock.test to lmtpsock (the
# socket, as dovecot.test users), and a source route ending in .lmtp to
# the store it names.
relay_rule dovecot.test '$U%$D@lmtp-daemon'
relay_rule sock.test '$U%dovecot.test@lmtpsock-daemon'
relay_rule .lmtp '$E$F$U%$H.lmtp@lmtp-daemon'
relay_rule tls.test '$U%dovecot.test@lmtptls-daemon'
printf '\nlmtptls lmtp single_sys musttls backoff "pt2s" pool SMTP_POOL\nlmtptls-daemon\n' \
	>>"$C/imta.cnf"
printf '\nlmtp lmtp single_sys backoff "pt2s" pool SMTP_POOL\nlmtp-daemon\n' >>"$C/imta.cnf"
printf '\nlmtpsock lmtp single_sys backoff "pt2s" pool SMTP_POOL\nlmtpsock-daemon\n' \
	>>"$C/imta.cnf"
printf 'LMTP_SERVER=127.0.0.1:%s\nMAX_CLIENT_THREADS=2\n' "$DV_PORT" >"$C/lmtp_option"
printf 'LMTP_SERVER=%s\n' "$DV_SOCKET" >"$C/lmtpsock_option"
printf 'LMTP_SERVER=store.test:%s\nTLS_CLIENT_VERIFY=name\nTLS_CA_FILE=%s\n' "$DV_PORT" \
	"$DV/tls/server.pem" >"$C/lmtptls_option"
# store.test: the message store host of section 5, on the channel's port.
sed -i "s/^\(lmtp lmtp .*\)\$/\1 port $DV_PORT/" "$C/imta.cnf"

"$IMSIMTA" --config "$C" check >"$OUT" 2>&1
r=$?
[ $r -eq 0 ] || diag_file "$OUT"
ok $r "imsimta check accepts the lmtp channels and their option files"
"$IMSIMTA" --config "$C" test -rewrite alice@dovecot.test >"$OUT" 2>&1
check_grep "dovecot.test routes to the lmtp channel" "$OUT" "Channel:        lmtp"
"$IMSIMTA" --config "$C" plugin-list >"$OUT" 2>&1
check_grep "the lmtp plugin registers the lmtp keyword" "$OUT" "keywords:    lmtp"

start_dns --host-record=store.test,127.0.0.1 \
	--mx-host=sender.test,mx.sender.test,10 --host-record=mx.sender.test,127.0.0.30
ok $? "dnsmasq answers for store.test and sender.test"
start_sink senders 127.0.0.30
ok $? "the sender domain's MX (smtp-sink) listens"
start_dovecot
ok $? "Dovecot's LMTP server listens on 127.0.0.1:$DV_PORT and $DV_SOCKET"
smtp_start_jc
ok $? "the job controller starts"

# ---- helpers ----------------------------------------------------------------

# message SUBJECT: $T/message, complete headers (nothing is added).
message() {
	printf '%s\n' "From: Ann <ann@sender.test>" "To: the team <team@dovecot.test>" \
		"Subject: $1" "Date: Mon, 23 Nov 2026 08:00:00 +0000" \
		"Message-ID: <${1// /.}@sender.test>" "MIME-Version: 1.0" \
		"Content-Type: text/plain; charset=us-ascii" "" "Hello $1," "" \
		".a line starting with a dot" "  indented line" "" "-- " "Ann" >"$T/message"
}

# The maildir files of USER (new/ and cur/).
mail_files() {
	find "$DV/mail/$1/Maildir/new" "$DV/mail/$1/Maildir/cur" -type f 2>/dev/null | sort
}

mail_count() {
	mail_files "$1" | wc -l
}

mail_count_is() {
	[ "$(mail_count "$1")" -eq "$2" ]
}

# The file of USER's message with SUBJECT.
mail_with() {
	local f
	for f in $(mail_files "$1"); do
		grep -qF -- "Subject: $2" "$f" && echo "$f"
	done
}

# What Dovecot stored, from our first header on (Dovecot puts Return-Path,
# Delivered-To and its Received: above it).
stored_message() {
	sed -n '/^From: Ann <ann@sender.test>$/,$p' "$1"
}

qm_shows() {
	"$IMSIMTA" --config "$C" qm read "$1" -envelope 2>&1 | grep -qF -- "$2"
}

LMTP_LOG="$LOGDIR/lmtp_master.log"
MAILLOG="$LOGDIR/mail.log_current"

# ---- 1 and 2: delivery, per-recipient outcomes ------------------------------

message "lmtp dovecot one"
id=$(relay_send ann@sender.test alice@dovecot.test nosuch@dovecot.test bob@dovecot.test)
wait_until 300 mail_count_is alice 1
ok $? "the message is in alice's maildir"
wait_until 100 mail_count_is bob 1
ok $? "and in bob's"
f=$(mail_with alice "lmtp dovecot one")
[ -n "$f" ] || f=/dev/null
stored_message "$f" >"$T/got"
check_same "alice's copy: headers and body as sent" "$T/message" "$T/got"
stored_message "$(mail_with bob "lmtp dovecot one" | head -n 1)" >"$T/got"
check_same "bob's copy too" "$T/message" "$T/got"
check_grep "Dovecot's trace names us and LMTP" "$f" "from mail.example.com ([127.0.0.1])"
check_grep "and the envelope sender" "$f" "Return-Path: <ann@sender.test>"
wait_gone "$id" 30
ok $? "the message leaves the lmtp queue (nothing deferred)"
wait_until 50 grep -qF "nosuch@dovecot.test" "$MAILLOG"
check_grep "the unknown recipient failed with Dovecot's reply" "$MAILLOG" \
	"said: 550 5.1.1 <nosuch@dovecot.test> User doesn't exist: nosuch@dovecot.test"
check_grep "alice was delivered with Dovecot's reply" "$MAILLOG" \
	"rfc822;alice@dovecot.test alice@dovecot.test"
check_grep "in one transaction: three sent, two delivered, one failed" "$LMTP_LOG" \
	"lmtp: message $id to [127.0.0.1]: 3 sent, 2 delivered, 1 failed, 0 deferred"
notice_file() {
	sink_grep senders "Final-Recipient: rfc822; nosuch@dovecot.test" | head -n 1
}
notice_arrived() {
	[ -n "$(notice_file)" ]
}
wait_until 300 notice_arrived
ok $? "the sender gets a failure notice"
N=$(notice_file)
[ -n "$N" ] || N=/dev/null
check_grep "for the unknown recipient only, Status 5.1.1" "$N" "Status: 5.1.1"
tr '\n\t' '  ' <"$N" | tr -s ' ' >"$T/unfolded"
check_grep "quoting Dovecot's reply" "$T/unfolded" \
	"550 5.1.1 <nosuch@dovecot.test> User doesn't exist: nosuch@dovecot.test"
check_no_grep "alice is not in it" "$N" "Final-Recipient: rfc822; alice@dovecot.test"
[ "$(mail_count carol)" -eq 0 ] && [ "$(find "$DV/mail" -maxdepth 1 -name 'nosuch*' | wc -l)" -eq 0 ]
ok $? "nothing was stored for anyone else"

# ---- 3. Dovecot down, then back ----------------------------------------------

stop_dovecot
message "lmtp dovecot down"
id3=$(relay_send ann@sender.test carol@dovecot.test)
wait_until 300 qm_shows "$id3" "4.4.1"
ok $? "Dovecot stopped: the message stays queued, deferred 4.4.1"
"$IMSIMTA" --config "$C" qm read "$id3" -envelope >"$OUT" 2>&1
check_grep "qm read says the connection was refused" "$OUT" "Connection refused"
[ "$(mail_count carol)" -eq 0 ]
ok $? "and nothing is stored meanwhile"
start_dovecot
ok $? "Dovecot is back"
wait_until 300 mail_count_is carol 1
ok $? "the retry delivers the message"
wait_gone "$id3" 30
ok $? "it leaves the queue"
stored_message "$(mail_with carol "lmtp dovecot down" | head -n 1)" >"$T/got"
check_same "carol's copy is whole" "$T/message" "$T/got"

# ---- 4. the UNIX-domain socket --------------------------------------------------

message "lmtp dovecot socket"
id4=$(relay_send ann@sender.test dave@sock.test)
wait_until 300 mail_count_is dave 1
ok $? "LMTP_SERVER as a socket: the message is in dave's maildir"
wait_gone "$id4" 30
ok $? "it leaves the lmtpsock queue"
check_grep "the socket was the peer" "$LOGDIR/lmtpsock_master.log" \
	"connected to [unix:$DV_SOCKET]"
stored_message "$(mail_with dave "lmtp dovecot socket" | head -n 1)" >"$T/got"
check_same "dave's copy is whole" "$T/message" "$T/got"

# ---- 5. the store named by a source route ----------------------------------------

"$IMSIMTA" --config "$C" test -rewrite '@store.test.lmtp:erin@dovecot.test' >"$OUT" 2>&1
check_grep "a route through store.test.lmtp goes to the lmtp channel" "$OUT" \
	"Rewritten:      @store.test.lmtp:erin@dovecot.test"
message "lmtp dovecot route"
id5=$(relay_send ann@sender.test '@store.test.lmtp:erin@dovecot.test')
wait_until 300 mail_count_is erin 1
ok $? "a recipient routed through store.test.lmtp reaches erin's maildir"
f=$(mail_with erin "lmtp dovecot route")
check_grep "RCPT TO was the address without the route" "${f:-/dev/null}" \
	"Delivered-To: erin@dovecot.test"
check_grep "the client connected to store.test on the channel's port" "$LMTP_LOG" \
	"connected to store.test [127.0.0.1]:$DV_PORT"
wait_gone "$id5" 30
ok $? "it leaves the queue"

# ---- 6. connection reuse ---------------------------------------------------------

before=$(grep -c "connected to \[127.0.0.1\]:$DV_PORT" "$LMTP_LOG")
for i in 1 2 3 4 5 6; do
	message "lmtp dovecot many $i"
	relay_send ann@sender.test alice@dovecot.test >/dev/null
done
wait_until 300 mail_count_is alice 7
ok $? "six more messages reach alice"
after=$(grep -c "connected to \[127.0.0.1\]:$DV_PORT" "$LMTP_LOG")
[ $((after - before)) -le 2 ]
ok $? "over at most 2 new connections (MAX_CLIENT_THREADS=2): $((after - before))"
check_grep "sessions were reused" "$LMTP_LOG" "lmtp: reusing connection to [127.0.0.1]"

# ---- 7. STARTTLS -----------------------------------------------------------------

check_no_grep "the plain channels did not use TLS (no maytls)" "$LMTP_LOG" "TLS established"
message "lmtp dovecot tls"
id7=$(relay_send ann@sender.test frank@tls.test)
wait_until 300 mail_count_is frank 1
ok $? "musttls: the message is in frank's maildir"
wait_gone "$id7" 30
ok $? "it leaves the lmtptls queue"
check_grep "TLS was established, the certificate checked for store.test" \
	"$LOGDIR/lmtptls_master.log" "lmtptls: TLS established with store.test [127.0.0.1]"
check_grep "the transaction went over TLS" "$LOGDIR/lmtptls_master.log" \
	"to store.test [127.0.0.1] (TLS): 1 sent, 1 delivered"

wait_until 100 test "$(queue_count lmtp)" -eq 0
ok $? "the lmtp queue is empty at the end"
stop_dovecot
check_sanitizers
finish
