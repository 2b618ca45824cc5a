#!/bin/bash
# Postfix's LMTP client against our LMTP server: a private Postfix
# instance (its own configuration and queue under $T, SMTP on a free
# loopback port) whose lmtp transport delivers everything into our LMTP
# service (dispatcher, tcp_lmtpss, the message store):
#   - mail injected into Postfix arrives in our store, and Postfix logs
#     status=sent with our 250 reply;
#   - one transaction with a known and an unknown recipient: the known
#     one is delivered, the unknown one is bounced by Postfix with our
#     550 5.1.1.
# Postfix's master starts only as root: the test is skipped otherwise.
#
# Only processes this test starts are stopped (Postfix with `postfix -c
# DIR stop` on its own configuration, our servers by their pids).
. "$abs_top_srcdir/tests/cli/smtp-lib.sh"

if [ "$(id -u)" -ne 0 ]; then
	echo "1..0 # SKIP Postfix's master must start as root"
	exit 0
fi
for prog in postfix postconf; do
	if ! command -v "$prog" >/dev/null 2>&1; then
		echo "1..0 # SKIP $prog is not installed"
		exit 0
	fi
done

smtp_instance
PF="$T/postfix"
PFC="$PF/conf"
PF_UP=""
postfix_stop() {
	local master
	[ -n "$PF_UP" ] || return 0
	master=$(tr -d ' \n' <"$PF/queue/pid/master.pid" 2>/dev/null)
	postfix -c "$PFC" stop >/dev/null 2>&1
	# `postfix stop` returns at once; the master exits after its children.
	[ -n "$master" ] && wait_until 100 gone "$master"
	PF_UP=""
}
trap 'postfix_stop; smtp_stop; rm -rf "$T"' EXIT
plan 10

PF_PORT=$(free_port)

mkdir -p "$PFC" "$PF/queue" "$PF/data"
: >"$PFC/main.cf"
cat >"$PFC/master.cf" <<EOF
127.0.0.1:$PF_PORT inet n - n - 10 smtpd
pickup    unix  n - n 60   1 pickup
cleanup   unix  n - n -    0 cleanup
qmgr      unix  n - n 300  1 qmgr
rewrite   unix  - - n -    - trivial-rewrite
bounce    unix  - - n -    0 bounce
defer     unix  - - n -    0 bounce
trace     unix  - - n -    0 bounce
verify    unix  - - n -    1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -    - proxymap
lmtp      unix  - - n -    - lmtp
showq     unix  n - n -    - showq
error     unix  - - n -    - error
retry     unix  - - n -    - error
discard   unix  - - n -    - discard
anvil     unix  - - n -    1 anvil
scache    unix  - - n -    1 scache
postlog   unix-dgram n - n - 1 postlogd
EOF
# example.com is relayed to our LMTP server; the senders' domain is
# discarded, so that the bounce Postfix sends goes nowhere.
postconf -c "$PFC" -e \
	"compatibility_level=3.6" \
	"queue_directory=$PF/queue" \
	"data_directory=$PF/data" \
	"myhostname=postfix.relay.test" \
	"mydomain=relay.test" \
	"mydestination=" \
	"local_recipient_maps=" \
	"local_transport=error:5.1.1 local delivery is disabled" \
	"alias_maps=" \
	"alias_database=" \
	"inet_interfaces=loopback-only" \
	"inet_protocols=ipv4" \
	"mynetworks=127.0.0.0/8" \
	"relay_domains=example.com" \
	"relay_transport=lmtp:inet:127.0.0.1:$LMTP_PORT" \
	"default_transport=discard:no mail leaves the test" \
	"lmtp_host_lookup=native" \
	"smtp_dns_support_level=disabled" \
	"maillog_file=$PF/maillog" \
	"maillog_file_prefixes=$PF" \
	"syslog_name=postfix-lmtp-test" \
	"biff=no"
chown "$(postconf -c "$PFC" -h mail_owner)" "$PF/data"

smtp_start_dispatcher
ok $? "our dispatcher starts with the LMTP service"
if postfix -c "$PFC" check >"$PF/start.out" 2>&1 && postfix -c "$PFC" start >>"$PF/start.out" 2>&1
then
	PF_UP=1
fi
pf_listens() {
	$PY -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' \
		"$PF_PORT" 2>/dev/null
}
[ -n "$PF_UP" ] && wait_until 200 pf_listens
ok $? "the private Postfix starts and listens on 127.0.0.1:$PF_PORT"
[ -n "$PF_UP" ] || diag_file "$PF/start.out"

# One message by SMTP into Postfix.
pf_send() {
	$PY - "$PF_PORT" "$@" >"$OUT" 2>"$ERR" <<'PYEOF'
import smtplib, sys
port, rcpts, subject = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3]
text = ("From: Ann <ann@sender.example>\r\nTo: someone\r\nSubject: %s\r\n"
        "Message-ID: <%s@sender.example>\r\n\r\nSent through Postfix.\r\n"
        % (subject, subject.replace(" ", ".")))
s = smtplib.SMTP("127.0.0.1", port, timeout=20)
s.ehlo("client.test")
refused = s.sendmail("ann@sender.example", rcpts, text)
print("refused by Postfix: %r" % refused)
s.quit()
PYEOF
}
logged() {
	grep -q -- "$1" "$PF/maillog" 2>/dev/null
}

pf_send alice@example.com "through postfix"
check_grep "Postfix accepts the message" "$OUT" "refused by Postfix: {}"
wait_until 200 logged "to=<alice@example.com>.*status=sent"
ok $? "Postfix logs status=sent for alice"
grep "to=<alice@example.com>.*status=sent" "$PF/maillog" | head -n 1 >"$T/sent"
check_grep "with our reply: delivered to the message store" "$T/sent" \
	"status=sent (250 2.0.0 <alice@example.com> delivered to the message store: alice INBOX"
[ "$(uids_with_subject alice "through postfix" | wc -w)" -eq 1 ]
ok $? "the message is in alice's mailbox, once"

pf_send bob@example.com,nobody@example.com "mixed through postfix"
wait_until 200 logged "to=<nobody@example.com>.*status=bounced"
ok $? "Postfix bounces the unknown recipient"
grep "to=<nobody@example.com>.*status=bounced" "$PF/maillog" | head -n 1 >"$T/bounced"
check_grep "with our 550 5.1.1" "$T/bounced" \
	"said: 550 5.1.1 <nobody@example.com> unknown user nobody (in reply to RCPT TO command)"
wait_until 100 logged "to=<bob@example.com>.*status=sent"
[ "$(uids_with_subject bob "mixed through postfix" | wc -w)" -eq 1 ]
ok $? "bob, in the same transaction, gets the message"

postfix_stop
check_sanitizers
finish
