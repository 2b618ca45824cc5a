# smtp-lib.sh - shared by the SMTP server tests (smtp-*.sh): a private
# instance whose dispatcher listens on free loopback ports, the job
# controller, a test certificate authority, and `dialog`, a scripted SMTP
# client that prints exactly what the server answers.
#
# Only processes started here are signalled, by the pids the shell got.
. "$abs_top_srcdir/tests/cli/lib.sh"

PY=${PYTHON3:-python3}
export IMTA_LIBEXEC="${IMTA_LIBEXEC:-$abs_top_builddir/core/libexec}"
DISP_PID=""
JC_PID=""

free_port() {
	$PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A port nothing listens on: DNS queries sent there fail at once, so the
# servers' reverse lookups never wait on the machine's resolver.
dead_port() {
	free_port
}

stop_pid() {
	if [ -n "$1" ] && ! gone "$1"; then
		kill -TERM "$1" 2>/dev/null
		wait_until 150 gone "$1" || kill -KILL "$1" 2>/dev/null
	fi
}

smtp_stop() {
	stop_pid "$DISP_PID"
	DISP_PID=""
	stop_pid "$JC_PID"
	JC_PID=""
}

# smtp_instance: make_instance, then the services SMTP (tcp_local),
# SMTP_SUBMIT (tcp_submit) and LMTP (tcp_lmtpss) on free ports $SMTP_PORT,
# $SUBMIT_PORT and $LMTP_PORT (with the PORT_ACCESS lines of the LMTP port).
smtp_instance() {
	make_instance
	trap 'smtp_stop; rm -rf "$T"' EXIT
	SMTP_PORT=$(free_port)
	SUBMIT_PORT=$(free_port)
	LMTP_PORT=$(free_port)
	sed -i -e "s/^PORT=2525\$/PORT=$SMTP_PORT/" -e "s/^PORT=2587\$/PORT=$SUBMIT_PORT/" \
		-e "s/^PORT=2424\$/PORT=$LMTP_PORT/" "$C/dispatcher.cnf"
	sed -i "s/^  TCP|\*|2424|/  TCP|*|$LMTP_PORT|/" "$C/mappings"
	printf 'DNS_SERVERS=127.0.0.1:%s\nDNS_TIMEOUT=1\n' "$(dead_port)" >>"$C/option.dat"
	# 127.0.0.1 plays an Internet client, 127.0.0.2 a trusted one.
	sed -i 's|^  \$(127\.0\.0\.0/8)  *\$Y$|  $(127.0.0.2/32)  $Y|' "$C/mappings"
	grep -q '^  $(127.0.0.2/32)  $Y$' "$C/mappings" || echo "# INTERNAL_IP not narrowed"
	QUEUE="$T/var/queue"
	LOGDIR="$T/var/log"
	mkdir -p "$T/var/tls"
	smtp_write_dialog
}

# smtp_park_channels: the local, store and SMTP channels name a pool that
# job_controller.cnf does not define, so the job controller tracks their
# messages but starts no job for them: tests that read the queue files the
# server wrote find them where it put them.
smtp_park_channels() {
	sed -i -e 's/ pool SMTP_POOL/ pool PARKED_POOL/' -e 's/ pool LOCAL_POOL/ pool PARKED_POOL/' \
		-e 's/ pool IMS_POOL/ pool PARKED_POOL/' "$C/imta.cnf"
}

# MBOX ARGS...: imsimta mboxutil of this instance.
MBOX() { "$IMSIMTA" --config "$C" mboxutil "$@"; }

# uids_with_subject FOLDER TEXT: the UIDs of the messages of a store
# folder ("user" or "user/folder") whose Subject contains TEXT.
uids_with_subject() {
	MBOX -m "$1" --json 2>/dev/null | $PY -c '
import json, sys
try:
    d = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
print(" ".join(str(m["uid"]) for m in d["messages"] if sys.argv[1] in (m.get("subject") or "")))' "$2"
}

# in_mailbox FOLDER TEXT: does FOLDER hold a message whose Subject
# contains TEXT?
in_mailbox() {
	[ -n "$(uids_with_subject "$1" "$2")" ]
}

# wait_delivered FOLDER TEXT: wait up to 15 s for such a message; when
# none comes, show the delivery path's logs and what is still queued.
wait_delivered() {
	local f
	wait_until 150 in_mailbox "$1" "$2" && return 0
	for f in "$LOGDIR"/mail.log_current "$LOGDIR"/*master.log "$LOGDIR"/job_controller.log; do
		[ -f "$f" ] && diag_file "$f"
	done
	queue_files | sed 's/^/# queued: /'
	return 1
}

# smtp_make_cert: a CA and a certificate for mail.example.com in
# $T/var/tls, where conf/option.dat points TLS_CERTIFICATE_FILE.
smtp_make_cert() {
	local d="$T/var/tls"
	printf 'cn = "Test CA"\nca\ncert_signing_key\nexpiration_days = 30\n' >"$d/ca.tmpl"
	printf '%s\n' 'cn = "mail.example.com"' 'dns_name = "mail.example.com"' \
		'ip_address = "127.0.0.1"' tls_www_server encryption_key signing_key \
		'expiration_days = 30' >"$d/server.tmpl"
	certtool --generate-privkey --key-type=ecdsa --outfile "$d/ca.key" 2>/dev/null &&
		certtool --generate-self-signed --load-privkey "$d/ca.key" \
			--template "$d/ca.tmpl" --outfile "$d/ca.pem" 2>/dev/null &&
		certtool --generate-privkey --key-type=ecdsa --outfile "$d/server.key" 2>/dev/null &&
		certtool --generate-certificate --load-privkey "$d/server.key" \
			--load-ca-certificate "$d/ca.pem" --load-ca-privkey "$d/ca.key" \
			--template "$d/server.tmpl" --outfile "$d/server.pem" 2>/dev/null
	SMTP_CA="$d/ca.pem"
	export SMTP_CA
}

dispatcher_ready() {
	grep -q "notice: ready" "$LOGDIR/dispatcher.log" 2>/dev/null
}

smtp_start_dispatcher() {
	mkdir -p "$LOGDIR"
	: >"$LOGDIR/dispatcher.log"
	"$IMTA_LIBEXEC/imta-dispatcher" --config "$C" -f >"$T/dispatcher.err" 2>&1 &
	DISP_PID=$!
	if ! wait_until 100 dispatcher_ready; then
		echo "# the dispatcher did not start"
		diag_file "$T/dispatcher.err"
		return 1
	fi
}

smtp_start_jc() {
	"$IMTA_LIBEXEC/imta-job-controller" --config "$C" -f >"$T/jc.err" 2>&1 &
	JC_PID=$!
	wait_until 100 test -S "$T/var/run/job_controller.sock"
}

smtp_restart_dispatcher() {
	stop_pid "$DISP_PID"
	smtp_start_dispatcher
}

# After the servers stopped: no sanitizer (ASan, UBSan, LSan) wrote a
# report into the logs of the dispatcher, the workers or the controller.
check_sanitizers() {
	smtp_stop
	if grep -l -E "Sanitizer|runtime error:" "$LOGDIR"/*.log "$T"/*.err >"$T/san" 2>/dev/null; then
		for f in $(cat "$T/san"); do diag_file "$f"; done
		ok 1 "no sanitizer report in the logs"
	else
		ok 0 "no sanitizer report in the logs"
	fi
}

# The pids of the dispatcher's workers.
smtp_workers() {
	pgrep -P "$DISP_PID"
}

# Queue files of a channel (all channels without an argument).
queue_files() {
	find "$QUEUE/${1:-}" -type f -name '*.00' 2>/dev/null | sort
}

queue_count() {
	queue_files "$@" | wc -l
}

clear_queue() {
	find "$QUEUE" -type f -name '*.00' -delete 2>/dev/null
}

# The queue file whose id the "queued as" reply in file $1 names.
queued_file() {
	local id
	id=$(sed -n 's/^250 2\.0\.0 Ok: queued as \([0-9A-Z]*\).*/\1/p' "$1" | tail -n 1)
	[ -n "$id" ] && find "$QUEUE" -type f -name "??$id.00" | head -n 1
}

# check_same DESCRIPTION EXPECTED-FILE ACTUAL-FILE: byte for byte.
check_same() {
	if cmp -s "$2" "$3"; then
		ok 0 "$1"
	else
		echo "# expected:"
		diag_file "$2"
		echo "# got:"
		diag_file "$3"
		ok 1 "$1"
	fi
}

# dialog PORT [--source IP] [--timeout S] < SCRIPT: run a scripted SMTP
# session; every reply line the server sends is printed as it came.
# Script lines (text escapes like \r \n \x00 are decoded):
#   > TEXT        send TEXT and CR LF
#   >> TEXT       send TEXT as it is
#   >*N TEXT      send TEXT CR LF N times in one write
#   >>*N TEXT     send TEXT N times, in writes of 64 KiB
#   slow TEXT     send TEXT CR LF one byte at a time
#   <             read one reply (all its lines)
#   <*N           read N replies
#   tls           TLS handshake, the server verified with $SMTP_CA
#   eof           read until the server closes, then print "(closed)"
#   shut          close our sending side
#   sleep S       wait S seconds
#   pause FILE    wait (at most 30 s) until FILE exists
#   mark FILE     create FILE
# A reply that does not come within the timeout prints "(timeout)".
# The body of a queue file: `dialog --body FILE`.
smtp_write_dialog() {
	cat >"$T/dialog.py" <<'EOF'
import codecs, os, socket, ssl, sys, time

def decode(text):
    return codecs.escape_decode(text.encode("utf-8"))[0]

def body(path):
    data = open(path, "rb").read()
    head, _, rest = data.partition(b"\n\n")
    size = [int(l.split()[1]) for l in head.split(b"\n") if l.startswith(b"size ")][0]
    sys.stdout.buffer.write(rest[:size])

class Session:
    def __init__(self, port, source, timeout):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.buf = b""
        self.closed = False

    def line(self):
        while b"\n" not in self.buf:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            except (ConnectionResetError, ssl.SSLError):
                data = b""
            if not data:
                self.closed = True
                return None
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r")

    def reply(self):
        while True:
            line = self.line()
            if line is None:
                out("(closed)" if self.closed else "(timeout)")
                return
            out(line.decode("latin-1"))
            if len(line) < 4 or line[3:4] != b"-":
                return

    def line_or_eof(self):
        line = self.line()
        if line is None:
            out("(closed)" if self.closed else "(timeout)")
            return False
        out(line.decode("latin-1"))
        return True

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            out("(send failed: %s)" % e.strerror)

def out(text):
    print(text, flush=True)

def run(session, script):
    for raw in script:
        cmd, _, arg = raw.rstrip("\n").partition(" ")
        if cmd == ">":
            session.send(decode(arg) + b"\r\n")
        elif cmd == ">>":
            session.send(decode(arg))
        elif cmd.startswith(">*"):
            session.send((decode(arg) + b"\r\n") * int(cmd[2:]))
        elif cmd.startswith(">>*"):
            chunk, left = decode(arg), int(cmd[3:])
            per = max(1, 65536 // max(1, len(chunk)))
            while left > 0:
                n = min(per, left)
                session.send(chunk * n)
                left -= n
        elif cmd == "slow":
            for b in decode(arg) + b"\r\n":
                session.send(bytes([b]))
                time.sleep(0.002)
        elif cmd == "<":
            session.reply()
        elif cmd.startswith("<*"):
            for _ in range(int(cmd[2:])):
                session.reply()
        elif cmd == "tls":
            ctx = ssl.create_default_context(cafile=os.environ["SMTP_CA"])
            session.sock = ctx.wrap_socket(session.sock, server_hostname="mail.example.com")
            out("(tls %s)" % session.sock.version())
        elif cmd == "eof":
            while session.line_or_eof():
                pass
        elif cmd == "shut":
            session.sock.shutdown(socket.SHUT_WR)
        elif cmd == "sleep":
            time.sleep(float(arg))
        elif cmd == "pause":
            for _ in range(300):
                if os.path.exists(arg):
                    break
                time.sleep(0.1)
        elif cmd == "mark":
            open(arg, "w").close()
        elif cmd and not cmd.startswith("#"):
            sys.exit("dialog: unknown script line: " + raw)

def main():
    args = sys.argv[1:]
    if args[0] == "--body":
        body(args[1])
        return
    port, source, timeout = int(args[0]), None, 10.0
    i = 1
    while i < len(args):
        if args[i] == "--source":
            source = args[i + 1]
        elif args[i] == "--timeout":
            timeout = float(args[i + 1])
        i += 2
    run(Session(port, source, timeout), sys.stdin)

main()
EOF
}

dialog() {
	$PY "$T/dialog.py" "$@"
}
