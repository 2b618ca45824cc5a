#!/bin/bash
# The LDAP directory backend against real slapd servers, and the same
# address cases against the embedded LDIF backend:
#   - conf/imta-schema.ldif loads into slapd (slapadd -n0) and the shipped
#     conf/directory.ldif goes in with ldapadd;
#   - one table of addresses (users, alternate and equivalent addresses,
#     subaddresses, statuses, quotas, delivery options, forwarding,
#     catch-alls, hosted domains and their aliases, Schema 1 and 2 domains,
#     static, nested, looping, disabled and dynamic groups) and of domains
#     gives the same answers from both backends;
#   - passwords: compared (LDAP_AUTH_METHOD=compare, both backends) and
#     bound (=bind); binds of the MTA: simple with a password file, SASL
#     EXTERNAL over ldapi://, PLAIN and DIGEST-MD5; setting errors;
#   - the MTA on LDAP: SMTP to users, groups and hosted domains defined only
#     in slapd, delivered into the store; AUTH PLAIN against slapd (good,
#     bad, inactive);
#   - the cache: a changed entry is seen after DIRECTORY_CACHE_TTL, a new
#     one after DIRECTORY_NEGATIVE_TTL, and at once after imsimta cache
#     -flush;
#   - failover to a second slapd; every slapd stopped: RCPT gets 4xx, queued
#     mail stays queued and is delivered once slapd is back; a hung slapd
#     costs LDAP_TIMEOUT.
#
# Only processes this test starts are signalled, by the pids the shell got.
. "$abs_top_srcdir/tests/cli/ldap-lib.sh"
if ! ldap_available; then
	echo "1..0 # SKIP slapd, slapadd or ldap-utils not installed"
	exit 0
fi
smtp_instance
trap 'slapd_stop_all; smtp_stop; rm -rf "$T"' EXIT
plan 44

PORT_A=$(free_port)
PORT_B=$(free_port)
# The LMTP service of the default configuration: a port of its own.
sed -i "s/^PORT=2424\$/PORT=$(free_port)/" "$C/dispatcher.cnf"

slapd_start a "$PORT_A"
ok $? "slapd starts with imta-schema.ldif, and ldapadd loads conf/directory.ldif"
ldap_admin ldapadd "$PORT_A" -f "$abs_top_srcdir/tests/cli/ldap-cases.ldif" >"$OUT" 2>"$ERR"
ok $? "ldapadd loads the test entries" || diag_file "$ERR"
printf '\n' >>"$C/directory.ldif"
cat "$abs_top_srcdir/tests/cli/ldap-cases.ldif" >>"$C/directory.ldif"

# ---- one table, two backends ----------------------------------------------

ADDRESSES="alice@example.com alice.smith@example.com asmith@example.com ALICE@Example.COM
alice+folder@example.com bob@example.com dave@example.com hank@example.com ivan@example.com
root@example.com staff@example.com everyone@example.com carol@example.org nobody@example.com
erin@example.net e@example.net erin@alias.example.net random@example.net gone@example.net
full@example.net fwd@example.net odd@example.net outer@example.net inner@example.net
off@example.net dyn@example.net ned@example.edu frank@example.info someone@example.invalid"
DOMAINS="example.com example.org example.net alias.example.net example.edu example.info
nowhere.example"
P=",ou=People"
cat >"$T/expected" <<EOF
alice@example.com: user uid=alice$P,o=example.com,o=example status=active domain=example.com host=mail.example.com quota=default/default deliver=alice@ims-ms-daemon
alice.smith@example.com: user uid=alice$P,o=example.com,o=example status=active domain=example.com host=mail.example.com quota=default/default deliver=alice@ims-ms-daemon
asmith@example.com: user uid=alice$P,o=example.com,o=example status=active domain=example.com host=mail.example.com quota=default/default deliver=alice@ims-ms-daemon
ALICE@Example.COM: user uid=alice$P,o=example.com,o=example status=active domain=example.com host=mail.example.com quota=default/default deliver=alice@ims-ms-daemon
alice+folder@example.com: user uid=alice$P,o=example.com,o=example status=active domain=example.com host=mail.example.com quota=default/default deliver=alice+folder@ims-ms-daemon
bob@example.com: user uid=bob$P,o=example.com,o=example status=active domain=example.com host=mail.example.com quota=10485760/5000 deliver=bob@ims-ms-daemon
dave@example.com: user uid=dave$P,o=example.com,o=example status=active domain=example.com host=mail.example.com quota=default/default deliver=dave@ims-ms-daemon,dave.brown@example.net
hank@example.com: user uid=hank$P,o=example.com,o=example status=hold domain=example.com host=mail.example.com quota=default/default deliver=@hold-daemon:hank@example.com
ivan@example.com: user uid=ivan$P,o=example.com,o=example status=inactive domain=example.com host=mail.example.com quota=default/default deliver=ivan@ims-ms-daemon
root@example.com: user uid=postmaster$P,o=example.com,o=example status=active domain=example.com host=mail.example.com quota=default/default deliver=postmaster@ims-ms-daemon
staff@example.com: group cn=staff,ou=Groups,o=example.com,o=example status=active domain=example.com host=mail.example.com deliver=carol@example.org,partner@example.net,alice@example.com,bob@example.com
everyone@example.com: group cn=everyone,ou=Groups,o=example.com,o=example status=active domain=example.com host=mail.example.com deliver=alice@example.com,bob@example.com,dave@example.com,hank@example.com,postmaster@example.com
carol@example.org: user uid=carol$P,o=example.org,o=example status=active domain=example.org host=mail.example.com quota=default/default deliver=carol%example.org@ims-ms-daemon
nobody@example.com: not found
erin@example.net: user uid=erin$P,o=example.net,o=example status=active domain=example.net host=store2.example.com quota=unlimited/0 store=secondary deliver=@store2.example.com:erin@example.net
e@example.net: user uid=erin$P,o=example.net,o=example status=active domain=example.net host=store2.example.com quota=unlimited/0 store=secondary deliver=@store2.example.com:e@example.net
erin@alias.example.net: user uid=erin$P,o=example.net,o=example status=active domain=example.net host=store2.example.com quota=unlimited/0 store=secondary deliver=@store2.example.com:erin@alias.example.net
random@example.net: user uid=catch$P,o=example.net,o=example status=active domain=example.net quota=default/default deliver=catch%example.net@ims-ms-daemon
gone@example.net: user uid=gone$P,o=example.net,o=example status=deleted domain=example.net quota=default/default deliver=gone%example.net@ims-ms-daemon
full@example.net: user uid=full$P,o=example.net,o=example status=overquota domain=example.net quota=2147483648/default deliver=full%example.net@ims-ms-daemon
fwd@example.net: user uid=fwd$P,o=example.net,o=example status=active domain=example.net quota=default/default deliver=a@remote.example,b@remote.example
odd@example.net: user uid=odd$P,o=example.net,o=example status=inactive domain=example.net quota=default/default deliver=odd%example.net@ims-ms-daemon
outer@example.net: group cn=outer,ou=Groups,o=example.net,o=example status=active domain=example.net deliver=x@remote.example,y@remote.example,erin@example.net
inner@example.net: group cn=inner,ou=Groups,o=example.net,o=example status=active domain=example.net deliver=x@remote.example,y@remote.example,erin@example.net
off@example.net: group cn=off,ou=Groups,o=example.net,o=example status=disabled domain=example.net deliver=erin@example.net
dyn@example.net: group cn=dyn,ou=Groups,o=example.net,o=example status=active domain=example.net deliver=full@example.net
ned@example.edu: user uid=ned,o=example.edu,o=example status=inactive domain=example.edu quota=default/default deliver=@hub.example.edu:ned@example.edu
frank@example.info: user uid=frank$P,o=example.info,o=example status=active domain=example.info quota=default/default delivery-error="uid=frank$P,o=example.info,o=example has no mailHost and its domain example.info has no mailRoutingSmartHost"
someone@example.invalid: not found
example.com: domain canonical=example.com base=o=example.com,o=example status=active local
example.org: domain canonical=example.org base=ou=People,o=example.org,o=example status=active local
example.net: domain canonical=example.net base=o=example.net,o=example status=active local
alias.example.net: domain canonical=example.net base=o=example.net,o=example status=active local
example.edu: domain canonical=example.edu base=o=example.edu,o=example status=inactive local
example.info: domain canonical=example.info base=ou=People,o=example.info,o=example status=active not-local
nowhere.example: not found
EOF
# Passwords: user, password, answer.
cat >"$T/auth-cases" <<'EOF'
alice alicepw accepted
alice@example.com alicepw accepted
alice wrong refused
asmith@example.com alicepw accepted
ivan ivanpw refused
carol@example.org carolpw accepted
erin@example.net erinpw accepted
nobody nobodypw refused
EOF

DIR() { "$IMSIMTA" --config "$C" directory "$@"; }

# run_cases: the table's answers from the configured backend, in $OUT.
run_cases() {
	{
		DIR $ADDRESSES
		DIR -domain $DOMAINS
	} >"$OUT" 2>"$ERR"
}

# run_auth: each password case, "user: answer" lines in $OUT.
run_auth() {
	local user pw answer
	while read -r user pw answer; do
		printf '%s\n' "$pw" | DIR -auth "$user" 2>&1 | sed 's/: refused: .*/: refused/'
	done <"$T/auth-cases" >"$OUT"
	awk '{ print $1 ": " $3 }' "$T/auth-cases" >"$T/auth-expected"
}

use_ldif() {
	sed -i 's|^IMTA_DIRECTORY=.*|IMTA_DIRECTORY=ldif:directory.ldif|' "$C/imta_tailor"
}

run_cases
check_same "embedded LDIF backend: the address and domain table" "$T/expected" "$OUT"
run_auth
check_same "embedded LDIF backend: passwords (compare)" "$T/auth-expected" "$OUT"

ldap_instance_config "$PORT_A"
run_cases
check_same "LDAP backend (slapd): the same table, the same answers" "$T/expected" "$OUT"
run_auth
check_same "LDAP backend: passwords compared with userPassword read as cn=mta" \
	"$T/auth-expected" "$OUT"
echo "LDAP_AUTH_METHOD=bind" >>"$C/option.dat"
run_auth
check_same "LDAP backend: passwords checked by binding as the user" "$T/auth-expected" "$OUT"
sed -i '/^LDAP_AUTH_METHOD=/d' "$C/option.dat"

# ---- binds of the MTA and setting errors ----------------------------------

ldap_bind_case() {
	# ldap_bind_case DESCRIPTION OPTION-LINES...: alice found with those binds.
	local desc=$1
	shift
	cp "$C/option.dat" "$T/option.saved"
	sed -i '/^LDAP_\(URIS\|BIND_DN\|BIND_PASSWORD_FILE\)=/d' "$C/option.dat"
	printf '%s\n' "$@" >>"$C/option.dat"
	DIR alice@example.com >"$OUT" 2>"$ERR"
	check_grep "$desc" "$OUT" "alice@example.com: user uid=alice,ou=People"
	cp "$T/option.saved" "$C/option.dat"
}
ldap_bind_case "SASL EXTERNAL over ldapi:// (the peer's uid mapped to cn=mta)" \
	"LDAP_URIS=ldapi://$(ldapi_path a)" "LDAP_SASL_MECH=EXTERNAL"
ldap_bind_case "SASL PLAIN as mta (cn=mta by olcAuthzRegexp)" \
	"LDAP_URIS=ldap://127.0.0.1:$PORT_A" "LDAP_SASL_MECH=PLAIN" "LDAP_SASL_AUTHCID=mta" \
	"LDAP_BIND_PASSWORD_FILE=ldap.secret"
# libsasl2's DIGEST-MD5 module leaves OpenSSL's allocations behind at exit,
# which LeakSanitizer would report against the command.
echo "leak:libcrypto.so" >"$T/lsan.supp"
LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$T/lsan.supp" \
	ldap_bind_case "SASL DIGEST-MD5 through libsasl2" \
	"LDAP_URIS=ldap://127.0.0.1:$PORT_A" "LDAP_SASL_MECH=DIGEST-MD5" \
	"LDAP_SASL_AUTHCID=mta" "LDAP_BIND_PASSWORD_FILE=ldap.secret"

chmod 644 "$C/ldap.secret"
check_run "a password file others may read is refused (exit 78)" 78 DIR alice@example.com
check_grep "... saying so with the file's name and mode" "$ERR" \
	"ldap.secret\": group or others may access it (mode 0644); make it readable by the MTA's user only (chmod 600)"
chmod 600 "$C/ldap.secret"
echo wrongpw >"$C/ldap.secret"
check_run "a refused bind of the MTA is a temporary failure (exit 75), not 'not found'" 75 \
	DIR alice@example.com
check_grep "... naming the server and the refusal" "$OUT" \
	"alice@example.com: temporary failure: LDAP bind refused by ldap://127.0.0.1:$PORT_A: Invalid credentials"
echo "$LDAP_MTA_PW" >"$C/ldap.secret"

# ---- the MTA on LDAP --------------------------------------------------------

# A second server with the same data, for failover.
slapd_start b "$PORT_B" &&
	ldap_admin ldapadd "$PORT_B" -f "$abs_top_srcdir/tests/cli/ldap-cases.ldif" >"$OUT" 2>&1
ok $? "a second slapd with the same data starts"
ldap_instance_config "$PORT_A" "$PORT_B"
# The directory file is not used any more: everything below is in slapd.
rm -f "$C/directory.ldif"
cat >>"$C/option.dat" <<EOF
DIRECTORY_CACHE_TTL=3
DIRECTORY_NEGATIVE_TTL=3
EOF
# One worker, so that one cache answers every connection.
sed -i 's/^\(PARAMETER=CHANNEL=tcp_local\)$/\1\nMAX_PROCS=1\nMAX_LIFE_CONNS=10000/' \
	"$C/dispatcher.cnf"
sed -i -e 's/^\(ims-ms .*\)backoff "pt5m" "pt10m" "pt30m" "pt1h" "pt2h" "pt4h"/\1backoff "pt1s"/' \
	-e 's/^\(l subdirs 20\)/\1 backoff "pt1s"/' "$C/imta.cnf"
sed -i '1i SYNCH_TIME=1' "$C/job_controller.cnf"
smtp_make_cert >/dev/null 2>&1
smtp_start_dispatcher
ok $? "the dispatcher starts with IMTA_DIRECTORY=ldap: and no directory file"
smtp_start_jc

cat >"$T/send.py" <<'PYEOF'
import smtplib, sys
port, rcpts, subject = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3]
text = ("From: Ann <ann@sender.example>\r\nTo: list\r\nSubject: %s\r\n\r\nbody\r\n" % subject)
s = smtplib.SMTP("127.0.0.1", port, timeout=20)
s.ehlo("client.test")
refused = s.sendmail("ann@sender.example", rcpts, text)
s.quit()
print(refused)
PYEOF
send() {
	$PY "$T/send.py" "$SMTP_PORT" "$@" >"$OUT" 2>"$ERR"
}

send alice@example.com,staff@example.com,carol@example.org,random@alias.example.net "ldap e2e"
ok $? "SMTP accepts mail for a user, a group, a hosted user and a domain alias's catch-all"
wait_until 150 in_mailbox alice "ldap e2e"
ok $? "alice has it in her store"
for box in bob carol@example.org catch@example.net; do
	wait_until 100 in_mailbox "$box" "ldap e2e"
	ok $? "$box has it too (group member, hosted domain, catch-all of an alias)"
done

# rcpt ADDRESS: the server's reply to RCPT TO:<ADDRESS>.
rcpt() {
	dialog "$SMTP_PORT" <<EOF | tail -n 2 | head -n 1
<
> EHLO client.test
<
> MAIL FROM:<ann@sender.example>
<
> RCPT TO:<$1>
<
> QUIT
<
EOF
}
rcpt nobody@example.com >"$OUT"
check_grep "an unknown user of an LDAP domain is refused at RCPT" "$OUT" "550 5.1.1"
rcpt ivan@example.com >"$OUT"
check_grep "an inactive user gets 450 4.2.1 at RCPT" "$OUT" "450 4.2.1"

# ---- AUTH PLAIN against slapd -----------------------------------------------

b64() {
	printf '%b' "$1" | base64 -w0
}
auth() {
	dialog "$SUBMIT_PORT" <<EOF | tail -n 2 | head -n 1
<
> EHLO client.test
<
> STARTTLS
<
tls
> EHLO client.test
<
> AUTH PLAIN $(b64 "\\0$1\\0$2")
<
> QUIT
<
EOF
}
auth alice alicepw >"$OUT"
check_grep "AUTH PLAIN alice/alicepw succeeds against slapd" "$OUT" "235 2.7.0"
auth alice nottheone >"$OUT"
check_grep "AUTH PLAIN with a wrong password fails" "$OUT" "535 5.7.8"
auth ivan ivanpw >"$OUT"
check_grep "AUTH PLAIN of an inactive user fails" "$OUT" "535 5.7.8"

# ---- the cache -------------------------------------------------------------

now() { date +%s.%N; }
elapsed_between() { awk -v a="$1" -v b="$2" -v lo="$3" -v hi="$4" 'BEGIN { d = b - a; exit !(d >= lo && d <= hi) }'; }
modify_status() {
	printf 'dn: uid=%s,ou=People,o=example.com,o=example\nchangetype: modify\nreplace: mailUserStatus\nmailUserStatus: %s\n' \
		"$1" "$2" >"$T/mod.ldif"
	ldap_admin ldapmodify "$PORT_A" -f "$T/mod.ldif" >/dev/null 2>&1 &&
		ldap_admin ldapmodify "$PORT_B" -f "$T/mod.ldif" >/dev/null 2>&1
}
rcpt_is() { rcpt "$1" | grep -q "^$2"; }

"$IMSIMTA" --config "$C" cache -flush >/dev/null 2>&1
t0=$(now)
rcpt bob@example.com >"$OUT"
modify_status bob inactive
rcpt bob@example.com >>"$OUT"
[ "$(grep -c '^250 ' "$OUT")" -eq 2 ]
ok $? "bob made inactive in slapd: RCPT still gets 250 from the cache" || diag_file "$OUT"
wait_until 100 rcpt_is bob@example.com "450 4.2.1"
t1=$(now)
elapsed_between "$t0" "$t1" 3 9
ok $? "... and 450 4.2.1 once DIRECTORY_CACHE_TTL (3 s) has passed (after $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s)"
modify_status bob active
"$IMSIMTA" --config "$C" cache -flush >"$OUT" 2>&1
check_grep "imsimta cache -flush signals the running dispatcher" "$OUT" \
	"The dispatcher's workers are flushing their directory caches."
wait_until 20 rcpt_is bob@example.com "250 "
ok $? "... after which bob's RCPT gets 250 at once"

t0=$(now)
rcpt newbie@example.com >"$OUT"
sed -e 's/uid=hank/uid=newbie/' -e 's/^uid: hank/uid: newbie/' -e 's/hank@/newbie@/' \
	-e 's/^mailUserStatus: hold/mailUserStatus: active/' \
	-e '/^userPassword/d' <<'EOF' >"$T/newbie.ldif"
dn: uid=hank,ou=People,o=example.com,o=example
objectClass: top
objectClass: inetOrgPerson
objectClass: inetUser
objectClass: inetMailUser
objectClass: inetLocalMailRecipient
uid: hank
cn: New
sn: User
mail: hank@example.com
mailDeliveryOption: mailbox
mailUserStatus: hold
EOF
ldap_admin ldapadd "$PORT_A" -f "$T/newbie.ldif" >/dev/null 2>&1 &&
	ldap_admin ldapadd "$PORT_B" -f "$T/newbie.ldif" >/dev/null 2>&1
rcpt newbie@example.com >>"$OUT"
[ "$(grep -c '^550 5.1.1' "$OUT")" -eq 2 ]
ok $? "a user added to slapd is still unknown while the negative answer is cached" ||
	diag_file "$OUT"
wait_until 100 rcpt_is newbie@example.com "250 "
t1=$(now)
elapsed_between "$t0" "$t1" 3 9
ok $? "... and accepted once DIRECTORY_NEGATIVE_TTL (3 s) has passed"

# ---- failover and outages ---------------------------------------------------

slapd_stop a
"$IMSIMTA" --config "$C" cache -flush >/dev/null 2>&1
DIR alice@example.com >"$OUT" 2>"$ERR"
check_grep "the first slapd stopped: imsimta directory gets its answer from the second" "$OUT" \
	"alice@example.com: user uid=alice,ou=People,o=example.com,o=example"
wait_until 20 rcpt_is alice@example.com "250 "
ok $? "... and so does the SMTP server (RCPT alice: 250)"

# Mail accepted while slapd runs, held back from delivery until every
# slapd is gone: the local channel cannot expand it and keeps it.
stop_pid "$JC_PID"
JC_PID=""
send carol@example.org,bob@example.com "during outage"
ok $? "mail for carol and bob is accepted while the second slapd still runs"
slapd_stop b
"$IMSIMTA" --config "$C" cache -flush >/dev/null 2>&1
rcpt alice@example.com >"$OUT"
check_grep "no slapd at all: RCPT gets 451 4.4.3 (try again later), never 5xx" "$OUT" "451 4.4.3"
# A directory failure is this system's trouble, not the client's: more
# recipients than ALLOW_REJECTIONS_PER_SESSION (20) keep their session.
{
	printf '<\n> EHLO client.test\n<\n> MAIL FROM:<ann@sender.example>\n<\n'
	for i in $(seq 1 25); do printf '> RCPT TO:<alice@example.com>\n<\n'; done
	printf '> QUIT\n<\n'
} | dialog "$SMTP_PORT" >"$OUT"
[ "$(grep -c '^451 4.4.3 ' "$OUT")" -eq 25 ] && grep -q '^221 ' "$OUT" && ! grep -q '^421 ' "$OUT"
ok $? "... 25 such RCPTs in one session: 25 times 451 4.4.3, then 221, no 421" || diag_file "$OUT"
smtp_start_jc
sleep 3
[ "$(queue_count)" -ge 1 ] && ! in_mailbox bob "during outage" && ! in_mailbox carol@example.org "during outage"
ok $? "queued mail for local users stays queued while the directory is down" ||
	{ queue_files; tail -5 "$LOGDIR"/*master*.log; }
slapd_start a "$PORT_A"
ok $? "the first slapd comes back"
wait_until 200 in_mailbox bob "during outage" && wait_until 100 in_mailbox carol@example.org "during outage"
ok $? "... and the held mail is delivered to bob and carol"
wait_until 100 test "$(queue_count)" -eq 0
ok $? "... nothing is left in the queue" || queue_files

# A server that accepts connections and never answers.
kill -STOP "$SLAPD_PID_a"
sed -i "s|^LDAP_URIS=.*|LDAP_URIS=ldap://127.0.0.1:$PORT_A|" "$C/option.dat"
t0=$(now)
DIR alice@example.com >"$OUT" 2>"$ERR"
st=$?
t1=$(now)
kill -CONT "$SLAPD_PID_a"
[ "$st" -eq 75 ] && grep -q "alice@example.com: temporary failure: .*ldap://127.0.0.1:$PORT_A: Timed out" "$OUT"
ok $? "a hung slapd: a temporary failure (exit 75, timed out)" || diag_file "$OUT"
elapsed_between "$t0" "$t1" 1.5 6
ok $? "... after LDAP_TIMEOUT (2 s), not forever"

check_sanitizers
finish
