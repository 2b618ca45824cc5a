#!/bin/bash
# imsimta test -dns and -dnsbl against a real name server: a dnsmasq on
# 127.0.0.1 and a free port, authoritative for .test and two reverse
# zones, named by option.dat DNS_SERVERS.  A and AAAA, MX order, PTR
# (IPv4, IPv6), NXDOMAIN and NODATA, block list listings (IPv4, IPv6,
# IPv4-mapped), an unlisted address, a zone whose answers are no listings,
# and the time bound against a UDP port where nothing answers.
#
# dnsmasq and the silent server are stopped by the pids this shell got;
# without dnsmasq the whole test is a skip.
. "$abs_top_srcdir/tests/cli/lib.sh"

DNSMASQ=${DNSMASQ:-/usr/sbin/dnsmasq}
if ! [ -x "$DNSMASQ" ]; then
	echo "1..0 # SKIP dnsmasq not installed ($DNSMASQ)"
	exit 0
fi

make_instance
plan 50

PY=${PYTHON3:-python3}
DNS_PID=""
SILENT_PID=""

stop_servers() {
	local pid
	for pid in $DNS_PID $SILENT_PID; do
		kill -TERM "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	DNS_PID=""
	SILENT_PID=""
}
trap 'stop_servers; rm -rf "$T"' EXIT

free_udp_port() {
	"$PY" -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

alive() {
	kill -0 "$1" 2>/dev/null
}

# The 32 reversed nibbles of 2001:db8::99 under bl.test.
V6_LISTED=9.9.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test

# 40 MX records with long names: over 512 bytes, so the UDP answer comes
# truncated and the resolver must ask again over TCP.
BIG_MX=()
for i in $(seq 10 49); do
	BIG_MX+=("--mx-host=big.test,exchanger-number-$i-with-a-long-name.test,$i")
done

# Start dnsmasq on a free port; another process may take the port between
# the probe and the bind, so try a few.
start_dnsmasq() {
	local attempt
	for attempt in 1 2 3 4 5; do
		PORT=$(free_udp_port)
		rm -f "$T/dnsmasq.pid"
		"$DNSMASQ" --conf-file=/dev/null --keep-in-foreground --no-resolv --no-hosts \
			--port="$PORT" --listen-address=127.0.0.1 --bind-interfaces \
			--user="$(id -un)" --group="$(id -gn)" --pid-file="$T/dnsmasq.pid" \
			--log-queries --log-facility="$T/dnsmasq.log" \
			--local=/test/ --local=/2.0.192.in-addr.arpa/ \
			--local=/0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa/ \
			--host-record=host.test,192.0.2.10,2001:db8::10 \
			--host-record=v4.test,192.0.2.20 \
			--mx-host=mx.test,mx20.test,20 --mx-host=mx.test,mx10.test,10 \
			--mx-host=mx.test,mx30.test,30 \
			--ptr-record=30.2.0.192.in-addr.arpa,named.test \
			--host-record=2.0.0.127.bl.test,127.0.0.2 \
			--txt-record=2.0.0.127.bl.test,"listed for testing" \
			--host-record="$V6_LISTED",127.0.0.3 \
			--address=/parked.test/192.0.2.80 "${BIG_MX[@]}" \
			2>"$T/dnsmasq.err" &
		DNS_PID=$!
		if wait_until 50 test -s "$T/dnsmasq.pid" && alive "$DNS_PID"; then
			return 0
		fi
		kill -TERM "$DNS_PID" 2>/dev/null
		wait "$DNS_PID" 2>/dev/null
		DNS_PID=""
	done
	return 1
}

# A UDP port that reads queries and never answers.
start_silent() {
	"$PY" -c 'import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
end = time.time() + 120
while time.time() < end:
    s.settimeout(1)
    try:
        s.recvfrom(2048)
    except socket.timeout:
        pass' >"$T/silent.port" &
	SILENT_PID=$!
	wait_until 50 test -s "$T/silent.port"
	SILENT_PORT=$(head -1 "$T/silent.port")
}

# use_servers LIST [TIMEOUT]: point option.dat's DNS_SERVERS at LIST.
use_servers() {
	sed -i '/^DNS_SERVERS=/d; /^DNS_TIMEOUT=/d' "$C/option.dat"
	echo "DNS_SERVERS=$1" >>"$C/option.dat"
	if [ -n "${2:-}" ]; then
		echo "DNS_TIMEOUT=$2" >>"$C/option.dat"
	fi
}

# check_output DESCRIPTION: $OUT is exactly the text on standard input.
check_output() {
	if diff -u - "$OUT" >"$T/diff"; then
		ok 0 "$1"
	else
		diag_file "$T/diff"
		ok 1 "$1"
	fi
}

im() {
	"$IMSIMTA" --config "$C" "$@"
}

start_dnsmasq
ok $? "dnsmasq runs on 127.0.0.1:$PORT"
if [ -z "$DNS_PID" ]; then
	diag_file "$T/dnsmasq.err"
fi
ok $(( $(cat "$T/dnsmasq.pid" 2>/dev/null || echo 0) != ${DNS_PID:-1} )) \
	"its pid file names the process this test started"
use_servers "127.0.0.1:$PORT" 2
NS="127.0.0.1:$PORT"

# Addresses: A first, then AAAA.
check_run "-dns NAME finds A and AAAA records" 0 im test -dns host.test
check_output "the A record comes before the AAAA record" <<EOF
Query:          host.test A/AAAA
  Name servers: $NS
  Answer:       192.0.2.10
  Answer:       2001:db8::10
EOF
check_run "a name ending in a dot is the same name" 0 im test -dns host.test. -type=a
check_grep "the absolute name's answers" "$OUT" "Answer:       2001:db8::10"
check_run "a name with only an A record" 0 im test -dns v4.test
check_output "only the IPv4 address" <<EOF
Query:          v4.test A/AAAA
  Name servers: $NS
  Answer:       192.0.2.20
EOF
check_run "NXDOMAIN exits 1" 1 im test -dns nosuch.test
check_output "NXDOMAIN is said as such" <<EOF
Query:          nosuch.test A/AAAA
  Name servers: $NS
  Not found:    A/AAAA lookup of "nosuch.test": no such domain (NXDOMAIN)
EOF

# MX: by preference, whatever the order the server answers in.
check_run "-type=mx finds the MX records" 0 im test -dns mx.test -type=mx
check_output "MX records come by preference" <<EOF
Query:          mx.test MX
  Name servers: $NS
  Answer:       10 mx10.test
  Answer:       20 mx20.test
  Answer:       30 mx30.test
EOF
check_run "an answer too large for UDP comes over TCP" 0 im test -dns big.test -type=mx
[ "$(grep -c 'Answer: ' "$OUT")" -eq 40 ]
ok $? "all 40 MX records of the large answer"
check_grep "the last one by preference" "$OUT" "Answer:       49 exchanger-number-49-with-a-long-name.test"
check_run "a name without MX records exits 1" 1 im test -dns host.test -type=mx
check_grep "NODATA is said as such" "$OUT" 'Not found:    MX lookup of "host.test": no MX record'

# PTR.
check_run "an address is looked up as PTR by default" 0 im test -dns 192.0.2.30
check_output "the PTR name of an IPv4 address" <<EOF
Query:          192.0.2.30 PTR
  Name servers: $NS
  Answer:       named.test
EOF
check_run "the PTR of an IPv6 address" 0 im test -dns 2001:db8::10 -type=ptr
check_grep "the PTR name of the IPv6 address" "$OUT" "Answer:       host.test"
check_run "an address without PTR exits 1" 1 im test -dns 192.0.2.99
check_grep "its reverse name is in the message" "$OUT" \
	'Not found:    PTR lookup of "99.2.0.192.in-addr.arpa": no such domain (NXDOMAIN)'

# Block lists.
check_run "127.0.0.2 is listed (RFC 5782 test entry)" 0 im test -dnsbl 127.0.0.2 bl.test
check_output "the listing, its query name and the verdict" <<EOF
Address:        127.0.0.2
  Name servers: $NS
  Zone:         bl.test
  Query:        2.0.0.127.bl.test
  Listed:       127.0.0.2
  Verdict:      listed in bl.test
EOF
check_run "127.0.0.3 is not listed" 1 im test -dnsbl 127.0.0.3 bl.test
check_grep "not listed, with the reason" "$OUT" \
	'Not listed:   A lookup of "3.0.0.127.bl.test": no such domain (NXDOMAIN)'
check_grep "the verdict: not listed" "$OUT" "Verdict:      not listed"
check_run "an IPv6 address is listed by its nibbles" 0 im test -dnsbl 2001:db8::99 bl.test
check_grep "the IPv6 query name" "$OUT" "Query:        $V6_LISTED"
check_grep "the IPv6 listing" "$OUT" "Listed:       127.0.0.3"
check_run "an IPv4-mapped address is checked as IPv4" 0 im test -dnsbl ::ffff:127.0.0.2 bl.test
check_grep "the IPv4 query name" "$OUT" "Query:        2.0.0.127.bl.test"
check_run "the first listing zone decides" 0 im test -dnsbl 127.0.0.2 nosuch.test bl.test
check_grep "listed in the second zone" "$OUT" "Verdict:      listed in bl.test"
check_run "an answer outside 127.0.0.0/8 is a temporary failure" 75 \
	im test -dnsbl 127.0.0.2 parked.test
check_grep "which answer, and why it is no listing" "$OUT" \
	'Failed:       A lookup of "2.0.0.127.parked.test": parked.test answered 192.0.2.80, outside 127.0.0.0/8: not a block list answer'

grep -q "query\[MX\] mx.test from 127.0.0.1" "$T/dnsmasq.log"
ok $? "the queries went to this dnsmasq"

# A name server that never answers: TEMPFAIL within timeout x tries.
start_silent
use_servers "127.0.0.1:$SILENT_PORT" 1
start_ms=$(date +%s%3N)
check_run "a silent name server is a temporary failure (75)" 75 im test -dns host.test -type=mx
elapsed=$(( $(date +%s%3N) - start_ms ))
[ "$elapsed" -lt 5000 ]
ok $? "it gave up within the bound (${elapsed} ms; 1 s x 2 tries)"
check_grep "the message names the name, the type and the server" "$OUT" \
	"Failed:       MX lookup of \"host.test\": timed out: no answer from 127.0.0.1:$SILENT_PORT (1000 ms per try, 2 tries)"
check_run "a block list that does not answer is a temporary failure" 75 \
	im test -dnsbl 127.0.0.2 bl.test
check_grep "the verdict: temporary failure" "$OUT" "Verdict:      temporary failure"

# Configuration and usage errors.
use_servers "dns.example.com"
check_run "a DNS_SERVERS that does not parse is a configuration error (78)" 78 \
	im test -dns host.test
check_grep "the file, the option and the bad entry are named" "$ERR" \
	"option.dat: DNS_SERVERS: name server \"dns.example.com\": not an IP address; expected \"addr\", \"addr:port\", \"[v6]\" or \"[v6]:port\""
check_run "-dns without a name is a usage error" 64 im test -dns
check_run "an unknown -type is a usage error" 64 im test -dns host.test -type=txt
check_run "-dnsbl with no IP address is a usage error" 64 im test -dnsbl host.test bl.test
check_run "--help describes -dns and -dnsbl" 0 im test --help
check_grep "the -dnsbl usage line" "$OUT" "imsimta test -dnsbl IP ZONE [ZONE...]"

stop_servers
finish
