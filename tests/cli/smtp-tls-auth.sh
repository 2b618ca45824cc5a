#!/bin/bash
# STARTTLS and SMTP AUTH of the SMTP server: a certificate made with
# certtool (option.dat TLS_CERTIFICATE_FILE/TLS_KEY_FILE), the session
# restart of RFC 3207, AUTH PLAIN and LOGIN against the demo users of
# conf/directory.ldif, AUTH refused before TLS, every refusal of the
# exchange, saslswitchchannel opening relaying, tlsswitchchannel,
# musttlsserver and mustsaslserver; python's ssl module (verifying the
# server against the test CA) and swaks as clients.
. "$abs_top_srcdir/tests/cli/smtp-lib.sh"
smtp_instance
plan 37

smtp_make_cert
ok $? "certtool makes a CA and a server certificate"
# A channel that requires TLS and switches to tcp_intranet after it.
MUST_PORT=$(free_port)
cat >>"$C/imta.cnf" <<'EOF'

tcp_must smtp musttlsserver tlsswitchchannel tcp_intranet
tcp_must-daemon
EOF
cat >>"$C/dispatcher.cnf" <<EOF

[SERVICE=SMTP_MUST]
PORT=$MUST_PORT
INTERFACE_ADDRESS=127.0.0.1
PARAMETER=CHANNEL=tcp_must
EOF
smtp_start_dispatcher
ok $? "the dispatcher starts with three services"

b64() {
	printf '%b' "$1" | base64 -w0
}

# ---- before TLS ---------------------------------------------------------------
dialog "$SMTP_PORT" >"$OUT" <<EOF
<
> EHLO client.example.org
<
> AUTH PLAIN $(b64 '\0alice\0alicepw')
<
> MAIL FROM:<alice@example.com>
<
> RCPT TO:<friend@remote.example.net>
<
> QUIT
<
EOF
cat >"$T/expected" <<'EOF'
220 mail.example.com ESMTP
250-mail.example.com
250-PIPELINING
250-SIZE 52428800
250-8BITMIME
250-ENHANCEDSTATUSCODES
250-DSN
250-CHUNKING
250 STARTTLS
538 5.7.11 Encryption required for requested authentication mechanism
250 2.1.0 Ok
550 5.7.1 Relaying not permitted
221 2.0.0 mail.example.com closing connection
EOF
check_same "before TLS: STARTTLS offered, AUTH not, AUTH refused with 538, no relaying" \
	"$T/expected" "$OUT"

# ---- STARTTLS: a new session; pipelined commands are dropped ------------------
dialog "$SMTP_PORT" >"$OUT" <<'EOF'
<
> EHLO client.example.org
<
>> STARTTLS\r\nRSET\r\nMAIL FROM:<injected@example.org>\r\n
<
tls
> MAIL FROM:<alice@example.com>
<
> EHLO client.example.org
<
> STARTTLS
<
> QUIT
<
EOF
cat >"$T/expected" <<'EOF'
220 mail.example.com ESMTP
250-mail.example.com
250-PIPELINING
250-SIZE 52428800
250-8BITMIME
250-ENHANCEDSTATUSCODES
250-DSN
250-CHUNKING
250 STARTTLS
220 2.0.0 Ready to start TLS
(tls TLSv1.3)
503 5.5.1 Error: send HELO/EHLO first
250-mail.example.com
250-PIPELINING
250-SIZE 52428800
250-8BITMIME
250-ENHANCEDSTATUSCODES
250-DSN
250-CHUNKING
250 AUTH PLAIN LOGIN
503 5.5.1 Error: TLS already active
221 2.0.0 mail.example.com closing connection
EOF
check_same "STARTTLS: the certificate verifies, commands sent with STARTTLS are dropped, \
EHLO again, AUTH offered" "$T/expected" "$OUT"

# ---- the AUTH exchange: refusals ------------------------------------------------
dialog "$SMTP_PORT" >"$OUT" <<EOF
<
> EHLO client.example.org
<
> STARTTLS
<
tls
> HELO client.example.org
<
> AUTH PLAIN
<
> EHLO client.example.org
<
> AUTH CRAM-MD5
<
> AUTH PLAIN $(b64 '\0alice\0wrong')
<
> AUTH PLAIN
<
> *
<
> AUTH PLAIN
<
> not-base64!
<
> AUTH LOGIN
<
> *
<
> AUTH PLAIN $(b64 'bob\0alice\0alicepw')
<
> AUTH PLAIN =
<
> AUTH PLAIN $(b64 '\0nosuchuser\0x')
<
> QUIT
<
EOF
cat >"$T/expected" <<'EOF'
220 mail.example.com ESMTP
250-mail.example.com
250-PIPELINING
250-SIZE 52428800
250-8BITMIME
250-ENHANCEDSTATUSCODES
250-DSN
250-CHUNKING
250 STARTTLS
220 2.0.0 Ready to start TLS
(tls TLSv1.3)
250 mail.example.com
503 5.5.1 Error: send EHLO first
250-mail.example.com
250-PIPELINING
250-SIZE 52428800
250-8BITMIME
250-ENHANCEDSTATUSCODES
250-DSN
250-CHUNKING
250 AUTH PLAIN LOGIN
504 5.5.4 Unrecognized authentication type
535 5.7.8 Authentication credentials invalid
334 
501 5.7.0 Authentication cancelled
334 
501 5.5.2 Cannot decode response
334 VXNlcm5hbWU6
501 5.7.0 Authentication cancelled
535 5.7.8 Authentication credentials invalid
501 5.5.2 Invalid PLAIN response
535 5.7.8 Authentication credentials invalid
221 2.0.0 mail.example.com closing connection
EOF
check_same "AUTH refusals: before EHLO, unknown mechanism, bad password, '*', bad base64, \
another identity, empty response, unknown user" "$T/expected" "$OUT"
check_grep "a failed login is logged without the password" "$LOGDIR/smtp_server.log" \
	"authentication failed for alice"
check_no_grep "passwords are never logged" "$LOGDIR/smtp_server.log" "wrong"

# ---- AUTH LOGIN, saslswitchchannel, relaying ---------------------------------------
clear_queue
dialog "$SMTP_PORT" >"$OUT" <<EOF
<
> EHLO client.example.org
<
> STARTTLS
<
tls
> EHLO client.example.org
<
> AUTH LOGIN
<
> $(b64 alice)
<
> $(b64 alicepw)
<
> AUTH PLAIN $(b64 '\0alice\0alicepw')
<
> MAIL FROM:<alice@example.com>
<
> RCPT TO:<friend@remote.example.net>
<
> DATA
<
> Subject: authenticated
>
> hello
> .
<
> QUIT
<
EOF
check_grep "AUTH LOGIN asks for the user name" "$OUT" "334 VXNlcm5hbWU6"
check_grep "AUTH LOGIN asks for the password" "$OUT" "334 UGFzc3dvcmQ6"
check_grep "AUTH LOGIN with alice/alicepw succeeds" "$OUT" "235 2.7.0 Authentication successful"
check_grep "a second AUTH is refused" "$OUT" "503 5.5.1 Error: already authenticated"
check_grep "authenticated: relaying is allowed" "$OUT" "250 2.1.5 Ok"
check_grep "authenticated: the message is accepted" "$OUT" "250 2.0.0 Ok: queued as"
QF=$(queued_file "$OUT")
check_grep "saslswitchchannel: the source channel is tcp_auth" "$QF" "source tcp_auth"
check_grep "the relayed message goes to tcp_local" "$QF" "channel tcp_local"
dialog --body "$QF" | head -n 4 >"$T/received"
check_grep "Received: says ESMTPSA" "$T/received" "with ESMTPSA id"
check_grep "Received: names the TLS version" "$T/received" "TLS1.3"
check_grep "the login and the switch are logged" "$LOGDIR/smtp_server.log" \
	"authenticated as alice; source channel tcp_auth"

# ---- AUTH PLAIN with an initial response; AUTH inside a transaction -----------------
dialog "$SMTP_PORT" >"$OUT" <<EOF
<
> EHLO client.example.org
<
> STARTTLS
<
tls
> EHLO client.example.org
<
> MAIL FROM:<alice@example.com>
<
> AUTH PLAIN $(b64 '\0alice\0alicepw')
<
> RSET
<
> AUTH PLAIN $(b64 'carol@example.org\0carol@example.org\0carolpw')
<
> QUIT
<
EOF
check_grep "AUTH during a transaction is refused" "$OUT" \
	"503 5.5.1 Error: MAIL transaction in progress"
check_grep "AUTH PLAIN with an initial response and authzid = authcid succeeds" "$OUT" \
	"235 2.7.0 Authentication successful"

# ---- musttlsserver, tlsswitchchannel ----------------------------------------------
clear_queue
dialog "$MUST_PORT" >"$OUT" <<'EOF'
<
> EHLO client.example.org
<
> MAIL FROM:<bob@example.org>
<
> VRFY alice@example.com
<
> NOOP
<
> STARTTLS
<
tls
> EHLO client.example.org
<
> MAIL FROM:<bob@example.org>
<
> RCPT TO:<friend@remote.example.net>
<
> DATA
<
> Subject: must
>
> .
<
> QUIT
<
EOF
check_grep "musttlsserver: MAIL before STARTTLS is refused" "$OUT" \
	"530 5.7.0 Must issue a STARTTLS command first"
ok $(( $(grep -c "^530 5.7.0 Must issue a STARTTLS command first" "$OUT") != 2 )) \
	"musttlsserver: VRFY before STARTTLS is refused too"
check_grep "musttlsserver: NOOP is allowed" "$OUT" "250 2.0.0 Ok"
check_grep "musttlsserver: mail is taken after STARTTLS" "$OUT" "250 2.0.0 Ok: queued as"
QF=$(queued_file "$OUT")
check_grep "tlsswitchchannel: the source channel is tcp_intranet" "$QF" "source tcp_intranet"

# ---- mustsaslserver (the submission service) ---------------------------------------
dialog "$SUBMIT_PORT" >"$OUT" <<EOF
<
> EHLO client.example.org
<
> MAIL FROM:<alice@example.com>
<
> STARTTLS
<
tls
> EHLO client.example.org
<
> MAIL FROM:<alice@example.com>
<
> AUTH PLAIN $(b64 '\0alice\0alicepw')
<
> MAIL FROM:<alice@example.com>
<
> QUIT
<
EOF
ok $(( $(grep -c "^530 5.7.0 Authentication required" "$OUT") != 2 )) \
	"mustsaslserver: MAIL without AUTH is refused, before and after TLS"
check_grep "mustsaslserver: MAIL after AUTH is accepted" "$OUT" "250 2.1.0 Ok"

# ---- swaks ------------------------------------------------------------------------
clear_queue
swaks --server "127.0.0.1:$SUBMIT_PORT" --tls --auth LOGIN --auth-user bob \
	--auth-password bobpw --from bob@example.com --to friend@remote.example.net \
	--helo client.example.org --timeout 10 >"$OUT" 2>&1
ok $? "swaks: STARTTLS, AUTH LOGIN and a relayed message on the submission port"
check_grep "swaks: the message is queued" "$OUT" "<~  250 2.0.0 Ok: queued as"
swaks --server "127.0.0.1:$SUBMIT_PORT" --tls --auth PLAIN --auth-user carol@example.org \
	--auth-password carolpw --from carol@example.org --to alice@example.com \
	--helo client.example.org --timeout 10 >"$OUT" 2>&1
ok $? "swaks: AUTH PLAIN as carol@example.org"
swaks --server "127.0.0.1:$SUBMIT_PORT" --tls --auth PLAIN --auth-user carol@example.org \
	--auth-password nope --from carol@example.org --to alice@example.com \
	--helo client.example.org --timeout 10 >"$OUT" 2>&1
ok $(( $? == 0 )) "swaks: a wrong password fails"
check_grep "swaks: 535 5.7.8 for a wrong password" "$OUT" \
	"<~* 535 5.7.8 Authentication credentials invalid"
ok $(( $(queue_count tcp_local) + $(queue_count l) != 2 )) "two messages were queued by swaks"

# ---- no certificate: no STARTTLS, no AUTH --------------------------------------------
mv "$T/var/tls/server.pem" "$T/var/tls/server.pem.off"
smtp_restart_dispatcher
dialog "$SMTP_PORT" >"$OUT" <<'EOF'
<
> EHLO client.example.org
<
> STARTTLS
<
> QUIT
<
EOF
check_no_grep "without a certificate STARTTLS is not offered" "$OUT" "250 STARTTLS"
check_grep "without a certificate STARTTLS is answered 454" "$OUT" \
	"454 4.7.0 TLS not available due to temporary reason"
check_grep "the worker logs why TLS is off" "$LOGDIR/smtp_server.log" "TLS disabled"

check_sanitizers
finish
