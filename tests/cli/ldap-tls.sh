#!/bin/bash
# The directory over TLS, against a real slapd with a certificate made
# here: ldaps:// verifies the server against LDAP_TLS_CA_FILE and the
# host name of the URI; LDAP_STARTTLS=1 starts TLS on ldap:// before the
# bind; a certificate that does not verify is a temporary failure that
# names the server, never a silent fallback to clear text; LDAP_TLS_VERIFY=0
# is the explicit way out; the options' errors name the option.
#
# Only processes this test starts are signalled, by the pids the shell got.
. "$abs_top_srcdir/tests/cli/ldap-lib.sh"
if ! ldap_available || ! command -v certtool >/dev/null; then
	echo "1..0 # SKIP slapd, slapadd, ldap-utils or certtool not installed"
	exit 0
fi
make_instance
trap 'slapd_stop_all; rm -rf "$T"' EXIT
plan 18

# ---- a CA and a server certificate for 127.0.0.1 --------------------------

tls="$T/tls"
mkdir -p "$tls"
printf 'cn = "Directory Test CA"\nca\ncert_signing_key\nexpiration_days = 30\n' >"$tls/ca.tmpl"
printf '%s\n' 'cn = "ldap.example.test"' 'dns_name = "ldap.example.test"' \
	'ip_address = "127.0.0.1"' tls_www_server encryption_key signing_key \
	'expiration_days = 30' >"$tls/server.tmpl"
certtool --generate-privkey --key-type=ecdsa --outfile "$tls/ca.key" 2>/dev/null &&
	certtool --generate-self-signed --load-privkey "$tls/ca.key" --template "$tls/ca.tmpl" \
		--outfile "$tls/ca.pem" 2>/dev/null &&
	certtool --generate-privkey --key-type=ecdsa --outfile "$tls/server.key" 2>/dev/null &&
	certtool --generate-certificate --load-privkey "$tls/server.key" \
		--load-ca-certificate "$tls/ca.pem" --load-ca-privkey "$tls/ca.key" \
		--template "$tls/server.tmpl" --outfile "$tls/server.pem" 2>/dev/null
ok $? "certtool makes a CA and a certificate for ldap.example.test and 127.0.0.1"

PORT=$(free_port)
PORT_TLS=$(free_port)
SLAPD_TLS_CONFIG="olcTLSCACertificateFile: $tls/ca.pem
olcTLSCertificateFile: $tls/server.pem
olcTLSCertificateKeyFile: $tls/server.key
"
SLAPD_EXTRA_URLS="ldaps://127.0.0.1:$PORT_TLS/"
slapd_start tls "$PORT"
ok $? "slapd starts with the certificate, on ldap:// and ldaps://"

ldap_instance_config "$PORT"
ALICE="alice@example.com: user uid=alice,ou=People,o=example.com,o=example"

# lookup: imsimta directory alice@example.com, output in $OUT and $ERR.
lookup() {
	"$IMSIMTA" --config "$C" directory alice@example.com >"$OUT" 2>"$ERR"
}

# check_tempfail DESCRIPTION: the lookup fails temporarily (exit 75).
check_tempfail() {
	local status
	lookup
	status=$?
	[ $status -eq 75 ]
	ok $? "$1 (exit $status)"
}

# set_tls URIS [OPTION=VALUE...]: the servers and the TLS options, replacing
# the earlier ones.
set_tls() {
	local uris=$1
	shift
	sed -i '/^LDAP_\(URIS\|TLS_CA_FILE\|STARTTLS\|TLS_VERIFY\)=/d' "$C/option.dat"
	printf 'LDAP_URIS=%s\n' "$uris" >>"$C/option.dat"
	[ $# -gt 0 ] && printf '%s\n' "$@" >>"$C/option.dat"
	return 0
}

# ---- ldaps:// ---------------------------------------------------------------

set_tls "ldaps://127.0.0.1:$PORT_TLS" "LDAP_TLS_CA_FILE=$tls/ca.pem"
lookup
ok $? "ldaps:// with LDAP_TLS_CA_FILE: the lookup succeeds"
check_grep "... and finds alice" "$OUT" "$ALICE"

# A relative LDAP_TLS_CA_FILE is under the configuration directory.
cp "$tls/ca.pem" "$C/ldap-ca.pem"
set_tls "ldaps://127.0.0.1:$PORT_TLS" "LDAP_TLS_CA_FILE=ldap-ca.pem"
lookup
check_grep "a relative LDAP_TLS_CA_FILE is read from the configuration directory" "$OUT" "$ALICE"

set_tls "ldaps://127.0.0.1:$PORT_TLS"
check_tempfail "ldaps:// without our CA: a temporary failure"
check_grep "... naming the server" "$OUT" \
	"alice@example.com: temporary failure: no LDAP server answers: ldaps://127.0.0.1:$PORT_TLS"

set_tls "ldaps://localhost:$PORT_TLS" "LDAP_TLS_CA_FILE=$tls/ca.pem"
check_tempfail "a certificate that does not name the host of the URI (localhost) is refused"
check_grep "... and the error says what to check" "$OUT" \
	"(TLS failed: no TLS connection, or the server's certificate is not signed by a CA in $tls/ca.pem or does not name localhost)"

set_tls "ldaps://localhost:$PORT_TLS" "LDAP_TLS_VERIFY=0"
lookup
check_grep "LDAP_TLS_VERIFY=0 accepts any certificate" "$OUT" "$ALICE"

# ---- StartTLS -------------------------------------------------------------

set_tls "ldap://127.0.0.1:$PORT" "LDAP_STARTTLS=1" "LDAP_TLS_CA_FILE=$tls/ca.pem"
lookup
check_grep "ldap:// with LDAP_STARTTLS=1 and the CA: the lookup succeeds" "$OUT" "$ALICE"

set_tls "ldap://127.0.0.1:$PORT" "LDAP_STARTTLS=1"
check_tempfail "StartTLS to a certificate that does not verify fails, no clear-text fallback"
check_grep "... and the error says StartTLS and what to check" "$OUT" \
	"(StartTLS failed: no TLS connection, or the server's certificate is not signed by a CA the system trusts or does not name 127.0.0.1)"

set_tls "ldap://127.0.0.1:$PORT"
lookup
check_grep "without LDAP_STARTTLS the same server is used in clear" "$OUT" "$ALICE"

# ---- configuration errors ---------------------------------------------------

set_tls "ldaps://127.0.0.1:$PORT_TLS" "LDAP_TLS_CA_FILE=$T/nowhere.pem"
lookup
ok $(( $? == 0 )) "a missing LDAP_TLS_CA_FILE stops the command"
check_grep "... with the option and the path" "$ERR" "LDAP_TLS_CA_FILE: $T/nowhere.pem is not a file"

set_tls "ldap://127.0.0.1:$PORT" "LDAP_STARTTLS=yes"
"$IMSIMTA" --config "$C" check >"$OUT" 2>"$ERR"
ok $(( $? == 0 )) "imsimta check refuses LDAP_STARTTLS=yes"
check_grep "... at its place in option.dat" "$ERR" "$C/option.dat:"

finish
