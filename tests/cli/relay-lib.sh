# relay-lib.sh - shared by the outbound SMTP tests (smtp-relay*.sh): a
# private instance whose SMTP channels deliver to real peers on loopback
# addresses, all on one port ($RELAY_PORT, the channels' `port`):
#
#   start_dns RECORD...        dnsmasq on 127.0.0.1:$DNS_PORT, the only name
#                              server of the instance (option.dat DNS_SERVERS);
#                              names under .test that it does not know are
#                              NXDOMAIN.  RECORDs are dnsmasq options
#                              (--mx-host=, --host-record=, --dns-rr=).
#   stop_dns                   the name server goes away (queries fail).
#   start_sink NAME ADDR [FLAG...]
#                              Postfix's smtp-sink on ADDR:$RELAY_PORT, each
#                              message dumped to its own file in $SINKS/NAME.
#   stop_sink NAME, restart_sink NAME [FLAG...], sink_files NAME,
#   sink_count NAME, wait_sink_count NAME N SECONDS, sink_grep NAME TEXT
#   start_proxy NAME ADDR TARGET-ADDR K M
#                              a TCP proxy on ADDR:$RELAY_PORT forwarding to
#                              TARGET-ADDR:$RELAY_PORT; for its first M
#                              connections it cuts both directions once the
#                              client sent K bytes of message content (after
#                              DATA).  proxy_connections NAME, proxy_cuts NAME.
#   relay_instance [ADDR...]   smtp_instance, plus the relay configuration.
#   relay_rule, relay_channel  a rewrite rule, an SMTP channel on $RELAY_PORT.
#   relay_send [-OPT...] FROM ADDRESS...
#                              queue $T/message by imsimta enqueue; prints the
#                              queue id.  message_files ID, wait_gone ID SECONDS.
#   relay_peer_instance ADDR   a second instance listening on ADDR:$RELAY_PORT;
#                              relay_swap switches the smtp-lib.sh helpers
#                              between the two.  relay_make_cert NAME DIR.
#
# Every wait is bounded; every process started here is recorded by the pid
# the shell got for it and signalled by that pid only, at exit too.
. "$abs_top_srcdir/tests/cli/smtp-lib.sh"

# smtp-sink and dnsmasq live in sbin, which an ordinary user's PATH may lack.
PATH="$PATH:/usr/sbin:/sbin"
declare -A SINK_PID SINK_ADDR SINK_FLAGS PROXY_PID
DNS_PID=""
DNS_PORT=""
DNS_ARGS=()
SINK_USER=()
# smtp-sink refuses to run as root without a user to switch to.
[ "$(id -u)" -eq 0 ] && SINK_USER=(-u nobody)

relay_stop_all() {
	local name
	for name in "${!SINK_PID[@]}"; do
		stop_pid "${SINK_PID[$name]}"
	done
	for name in "${!PROXY_PID[@]}"; do
		stop_pid "${PROXY_PID[$name]}"
	done
	stop_pid "$DNS_PID"
	DNS_PID=""
}

# The helper program: DNS queries, a free port, the fault-injecting proxy.
relay_write_py() {
	cat >"$T/relay.py" <<'EOF'
import os, random, socket, struct, sys, threading

def dns_query(port, name, qtype):
    """Print the rcode and the number of answers, or 'no answer'."""
    types = {"a": 1, "mx": 15, "aaaa": 28}
    qid = random.randrange(65536)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p)
    pkt = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\0"
    pkt += struct.pack(">HH", types[qtype], 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    try:
        s.sendto(pkt, ("127.0.0.1", port))
        data = s.recv(4096)
    except OSError:
        print("no answer")
        return 1
    flags, _, ancount = struct.unpack(">HHH", data[2:8])
    print("rcode %d answers %d" % (flags & 15, ancount))
    return 0

def common_port(addrs):
    """A port free on every address (IPv4 and IPv6 literals)."""
    for _ in range(50):
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        held = []
        try:
            for a in addrs:
                fam = socket.AF_INET6 if ":" in a else socket.AF_INET
                s = socket.socket(fam)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((a, port))
                held.append(s)
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
        print(port)
        return 0
    return 1

class Proxy:
    def __init__(self, directory, cut_after, cut_times):
        self.dir = directory
        self.cut_after = cut_after
        self.cut_left = cut_times
        self.lock = threading.Lock()
        self.connections = 0
        self.cuts = 0

    def record(self, name, value):
        tmp = os.path.join(self.dir, name + ".tmp")
        with open(tmp, "w") as f:
            f.write("%d\n" % value)
        os.rename(tmp, os.path.join(self.dir, name))

    def serve(self, client, target):
        with self.lock:
            self.connections += 1
            self.record("connections", self.connections)
            cut = self.cut_left > 0
            if cut:
                self.cut_left -= 1
        try:
            server = socket.create_connection(target, timeout=10)
        except OSError:
            client.close()
            return
        server.settimeout(None)
        client.settimeout(None)
        done = threading.Event()
        back = threading.Thread(target=self.pump_back, args=(server, client, done), daemon=True)
        back.start()
        self.pump_forward(client, server, cut)
        done.set()
        for s in (client, server):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        back.join(5)
        client.close()
        server.close()

    def pump_back(self, server, client, done):
        while not done.is_set():
            try:
                data = server.recv(65536)
                if not data:
                    break
                client.sendall(data)
            except OSError:
                break
        try:
            client.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def pump_forward(self, client, server, cut):
        """Client to server; when cutting, count the content after DATA."""
        line = b""
        content = None
        while True:
            try:
                data = client.recv(65536)
            except OSError:
                return
            if not data:
                try:
                    server.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            try:
                if cut and content is None:
                    found = -1
                    for i in range(len(data)):
                        line = (line + data[i:i + 1])[-1000:]
                        if data[i] == 10:
                            if line.strip().upper() == b"DATA":
                                found = i + 1
                                break
                            line = b""
                    if found < 0:
                        server.sendall(data)
                        continue
                    server.sendall(data[:found])
                    data = data[found:]
                    content = 0
                if cut and content + len(data) >= self.cut_after:
                    server.sendall(data[:self.cut_after - content])
                    with self.lock:
                        self.cuts += 1
                        self.record("cuts", self.cuts)
                    return
                if content is not None:
                    content += len(data)
                server.sendall(data)
            except OSError:
                return

    def run(self, listen, target):
        fam = socket.AF_INET6 if ":" in listen[0] else socket.AF_INET
        ls = socket.socket(fam)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(listen)
        ls.listen(64)
        self.record("connections", 0)
        self.record("cuts", 0)
        open(os.path.join(self.dir, "ready"), "w").close()
        while True:
            client, _ = ls.accept()
            threading.Thread(target=self.serve, args=(client, target), daemon=True).start()

def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "dns":
        return dns_query(int(args[0]), args[1], args[2])
    if cmd == "port":
        return common_port(args)
    if cmd == "proxy":
        # proxy DIR LISTEN-ADDR TARGET-ADDR PORT K M
        d, listen, target, port, k, m = args
        Proxy(d, int(k), int(m)).run((listen, int(port)), (target, int(port)))
    return 0

sys.exit(main())
EOF
}

relay_py() {
	$PY "$T/relay.py" "$@"
}

# ---- the name server ---------------------------------------------------

dns_answers() {
	relay_py dns "$DNS_PORT" dns-probe.test a 2>/dev/null | grep -q '^rcode 0 answers 1$'
}

# start_dns RECORD...: (re)start dnsmasq with these records; with no
# arguments, the records of the previous start.
start_dns() {
	[ $# -gt 0 ] && DNS_ARGS=("$@")
	stop_pid "$DNS_PID"
	dnsmasq --no-daemon --no-resolv --no-hosts --bind-interfaces \
		--listen-address=127.0.0.1 --port="$DNS_PORT" --local=/test/ \
		--host-record=dns-probe.test,127.0.0.99 "${DNS_ARGS[@]}" \
		>>"$T/dnsmasq.log" 2>&1 &
	DNS_PID=$!
	if ! wait_until 100 dns_answers; then
		echo "# dnsmasq does not answer on 127.0.0.1:$DNS_PORT"
		diag_file "$T/dnsmasq.log"
		return 1
	fi
}

stop_dns() {
	stop_pid "$DNS_PID"
	DNS_PID=""
}

# ---- the sinks ---------------------------------------------------------

sink_listens() {
	$PY - "$1" "$RELAY_PORT" <<'EOF' 2>/dev/null
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
sys.exit(0 if s.recv(100).startswith(b"220") else 1)
EOF
}

# start_sink NAME ADDR [FLAG...]: smtp-sink flags such as -8 (no 8BITMIME),
# -N (no DSN), -r RCPT (4xx to RCPT), -f RCPT (5xx), -q . (drop after the dot).
start_sink() {
	local name=$1 addr=$2 listen
	shift 2
	SINK_ADDR[$name]=$addr
	SINK_FLAGS[$name]="$*"
	mkdir -p "$SINKS/$name"
	chmod 1777 "$SINKS/$name"
	listen=$addr
	case $addr in *:*) listen="[$addr]" ;; esac
	smtp-sink "${SINK_USER[@]}" -h "$name.sink.test" "$@" -d "$SINKS/$name/m." \
		"$listen:$RELAY_PORT" 64 >>"$T/sink-$name.log" 2>&1 &
	SINK_PID[$name]=$!
	if ! wait_until 100 sink_listens "$addr"; then
		echo "# smtp-sink $name does not listen on $listen:$RELAY_PORT"
		diag_file "$T/sink-$name.log"
		return 1
	fi
}

stop_sink() {
	stop_pid "${SINK_PID[$1]:-}"
	unset "SINK_PID[$1]"
}

# restart_sink NAME [FLAG...]: the same address and dump directory.
restart_sink() {
	local name=$1
	shift
	stop_sink "$name"
	start_sink "$name" "${SINK_ADDR[$name]}" "$@"
}

# The messages a sink holds, oldest first.
sink_files() {
	ls -tr "$SINKS/$1"/m.* 2>/dev/null
}

sink_count() {
	sink_files "$1" | wc -l
}

sink_count_is() {
	[ "$(sink_count "$1")" -eq "$2" ]
}

# wait_sink_count NAME N SECONDS: the sink holds N messages within SECONDS.
wait_sink_count() {
	wait_until $(($3 * 10)) sink_count_is "$1" "$2"
}

# ---- the proxy ---------------------------------------------------------

start_proxy() {
	local name=$1 addr=$2 target=$3 k=$4 m=$5 dir="$T/proxy-$1"
	mkdir -p "$dir"
	$PY "$T/relay.py" proxy "$dir" "$addr" "$target" "$RELAY_PORT" "$k" "$m" \
		>>"$T/proxy-$name.log" 2>&1 &
	PROXY_PID[$name]=$!
	if ! wait_until 100 test -e "$dir/ready"; then
		echo "# the proxy $name does not listen"
		diag_file "$T/proxy-$name.log"
		return 1
	fi
}

proxy_connections() {
	cat "$T/proxy-$1/connections" 2>/dev/null || echo 0
}

proxy_cuts() {
	cat "$T/proxy-$1/cuts" 2>/dev/null || echo 0
}

# ---- the instance ------------------------------------------------------

# relay_instance [ADDRESS...]: smtp_instance whose channel tcp_local sends
# to port $RELAY_PORT (free on 127.0.0.1 and each ADDRESS given), with
# retries 2 s apart, and whose name server is the dnsmasq of start_dns.
relay_instance() {
	smtp_instance
	trap 'relay_stop_all; smtp_stop; rm -rf "$T"' EXIT
	relay_write_py
	SINKS="$T/sinks"
	mkdir -p "$SINKS"
	chmod 755 "$SINKS"
	RELAY_PORT=$(relay_py port 127.0.0.1 "$@")
	DNS_PORT=$(free_port)
	sed -i "s/^DNS_SERVERS=.*/DNS_SERVERS=127.0.0.1:$DNS_PORT/" "$C/option.dat"
	sed -i "s/^\(tcp_local smtp .*\)\$/\1 port $RELAY_PORT backoff \"pt2s\"/" "$C/imta.cnf"
	grep -q "^tcp_local smtp .* port $RELAY_PORT backoff" "$C/imta.cnf" ||
		echo "# tcp_local was not given the port"
	MAILLOG="$LOGDIR/mail.log_current"
}

# relay_rule PATTERN TEMPLATE: a rewrite rule, ahead of the default ones.
relay_rule() {
	sed -i "1i $1  $2" "$C/imta.cnf"
}

# relay_channel NAME KEYWORD...: an SMTP channel (official host name
# NAME-daemon) on $RELAY_PORT with quick retries.
relay_channel() {
	local name=$1
	shift
	printf '\n%s smtp %s port %s backoff "pt2s" pool SMTP_POOL\n%s-daemon\n' \
		"$name" "$*" "$RELAY_PORT" "$name" >>"$C/imta.cnf"
}

# relay_send [-OPTION...] FROM ADDRESS...: imsimta enqueue of $T/message.
relay_send() {
	local opts=()
	while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do
		opts+=("$1")
		shift
	done
	local from=$1
	shift
	"$IMSIMTA" --config "$C" enqueue "${opts[@]}" -from="$from" "$@" <"$T/message" |
		cut -d' ' -f1 | head -n 1
}

# The queue files of message ID, in any channel.
message_files() {
	find "$QUEUE" -type f -name "??$1.*" 2>/dev/null
}

message_gone() {
	[ -z "$(message_files "$1")" ]
}

# wait_gone ID SECONDS: message ID leaves the queue within SECONDS.
wait_gone() {
	wait_until $(($2 * 10)) message_gone "$1"
}

# The sink files (of sink NAME) that mention FIXED-STRING.
sink_grep() {
	local f
	for f in $(sink_files "$1"); do
		grep -qF -- "$2" "$f" && echo "$f"
	done
}

# ---- a second instance as the next hop -----------------------------------

RELAY_VARS=(T C OUT ERR QUEUE LOGDIR DISP_PID JC_PID SMTP_PORT SUBMIT_PORT)

# relay_swap: the helpers of smtp-lib.sh work on the instance whose
# variables are current; this exchanges them with the other instance's.
relay_swap() {
	local v other tmp
	for v in "${RELAY_VARS[@]}"; do
		other="OTHER_$v"
		tmp=${!v:-}
		printf -v "$v" '%s' "${!other:-}"
		printf -v "$other" '%s' "$tmp"
	done
}

# relay_peer_instance ADDR: after relay_instance, a second instance (the
# "other" one, see relay_swap) whose SMTP service listens on
# ADDR:$RELAY_PORT and takes mail from every loopback client as internal
# (relaying allowed).  Its dispatcher is not started yet.
relay_peer_instance() {
	local addr=$1
	relay_swap
	smtp_instance
	sed -i -e "s/^PORT=$SMTP_PORT\$/PORT=$RELAY_PORT/" \
		-e "/^\[SERVICE=SMTP\]\$/,/^\$/s/^INTERFACE_ADDRESS=.*/INTERFACE_ADDRESS=$addr/" \
		"$C/dispatcher.cnf"
	SMTP_PORT=$RELAY_PORT
	sed -i 's|^  \$(127\.0\.0\.2/32)  \$Y$|  $(127.0.0.0/8)  $Y|' "$C/mappings"
	relay_swap
	trap 'relay_stop_all; smtp_stop; relay_swap; smtp_stop; rm -rf "$T" "$OTHER_T"' EXIT
}

# relay_make_cert NAME DIR: a self-signed certificate for host NAME (its own
# trust anchor) in DIR/server.pem, its key in DIR/server.key.
relay_make_cert() {
	local name=$1 d=$2
	mkdir -p "$d"
	printf '%s\n' "cn = \"$name\"" "dns_name = \"$name\"" ca cert_signing_key tls_www_server \
		encryption_key signing_key 'expiration_days = 30' >"$d/server.tmpl"
	certtool --generate-privkey --key-type=ecdsa --outfile "$d/server.key" 2>/dev/null &&
		certtool --generate-self-signed --load-privkey "$d/server.key" \
			--template "$d/server.tmpl" --outfile "$d/server.pem" 2>/dev/null
}
