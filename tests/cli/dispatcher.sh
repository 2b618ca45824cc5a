#!/bin/bash
# imta-dispatcher and its imsimta verbs: the detached start, the pid file
# and a second instance, stop; services (PORT=0, two ports, INTERFACE_ADDRESS
# 127.0.0.1 against ::1), the worker command line (IMAGE, PARAMETER, LOGFILE,
# STACKSIZE); process management with imta-worker and the echoslave test
# plugin (MIN_PROCS, MAX_CONNS x MAX_PROCS with a waiting client,
# MAX_LIFE_CONNS recycling, kill -9 of a worker, MAX_IDLE_TIME, a worker
# program that keeps dying, a worker that refuses); PORT_ACCESS,
# DNS_VERIFY_DOMAIN against a dnsmasq on a loopback port, IDENT; the
# statistics; SIGTERM with a session open; configuration and bind errors.
#
# Only processes this test started are signalled: the dispatcher by the pid
# its pid file names (it is this test's), dnsmasq and helper servers by the
# pids the shell got, and one worker (kill -9) by the pid the dispatcher's
# statistics give for it.
. "$abs_top_srcdir/tests/cli/lib.sh"
make_instance
plan 136

PY=${PYTHON3:-python3}
DISP="$abs_top_builddir/core/libexec/imta-dispatcher"
export IMTA_LIBEXEC="${IMTA_LIBEXEC:-$abs_top_builddir/core/libexec}"
RUN="$T/var/run"
LOGDIR="$T/var/log"
LOG="$LOGDIR/dispatcher.log"
PIDFILE="$RUN/dispatcher.pid"
SOCK="$RUN/dispatcher.sock"
DNSMASQ=${DNSMASQ:-/usr/sbin/dnsmasq}
DNS_PID=""
HELPER_PID=""
# Sanitizer reports of the daemons (detached, their stderr is gone) land
# in files this test looks for at the end.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$T/sanitizer"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$T/sanitizer"

disp_pid() {
	cat "$PIDFILE" 2>/dev/null
}

# Stop the dispatcher this test started, whatever state it is in.
kill_disp() {
	local pid
	pid=$(disp_pid)
	if [ -n "$pid" ] && ! gone "$pid"; then
		kill -TERM "$pid" 2>/dev/null
		wait_until 400 gone "$pid"
		kill -KILL "$pid" 2>/dev/null
	fi
}

cleanup() {
	local pid
	kill_disp
	for pid in $DNS_PID $HELPER_PID; do
		kill -TERM "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT

cat >"$T/dt.py" <<'EOF'
# The test's clients: each scenario prints what a user would see.
import json, os, signal, socket, subprocess, sys, threading, time

IMSIMTA = os.environ["IMSIMTA"]
CONF = os.environ["C"]


class Client:
    def __init__(self, port, host="127.0.0.1", src=None, timeout=5):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.s = socket.socket(family, socket.SOCK_STREAM)
        if src:
            self.s.bind((src, 0))
        self.s.settimeout(timeout)
        self.s.connect((host, port))
        self.port = self.s.getsockname()[1]
        self.buf = b""

    def line(self, timeout=5):
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                return "TIMEOUT"
            self.s.settimeout(left)
            try:
                data = self.s.recv(4096)
            except socket.timeout:
                return "TIMEOUT"
            except OSError:
                data = b""
            if not data:
                return "EOF" if not self.buf else self.take(len(self.buf))
            self.buf += data
        return self.take(self.buf.index(b"\n") + 1)

    def take(self, n):
        text, self.buf = self.buf[:n], self.buf[n:]
        return text.decode("latin-1").rstrip("\r\n")

    def say(self, text, timeout=5):
        try:
            self.s.sendall(text.encode() + b"\r\n")
        except OSError:
            return "EOF"
        return self.line(timeout)


def stats():
    out = subprocess.run([IMSIMTA, "--config", CONF, "stats", "--json"],
                         capture_output=True, text=True, timeout=20).stdout
    return json.loads(out)


def service(name):
    for svc in stats()["services"]:
        if svc["name"] == name:
            return svc
    return None


def running(name, ready_only=False):
    svc = service(name)
    return [w["pid"] for w in svc["workers"]
            if w["state"] != "exited" and (not ready_only or w["state"] == "ready")]


def worker_of(name, client):
    for c in service(name)["connections"]:
        if c["client_port"] == client.port and c["state"] in ("handing", "taken"):
            return c["worker"]
    return None


def current_of(name, pid):
    for w in service(name)["workers"]:
        if w["pid"] == pid:
            return w["current"]
    return None


def wait_for(cond, seconds=10):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return False


def ports(n):
    socks, out = [], []
    while len(out) < n:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        out.append(s.getsockname()[1])
    print(" ".join(map(str, out)))


def greet(*targets):
    # greet [HOST:]PORT...: the first line of each service
    for t in map(str, targets):
        host, _, port = t.rpartition(":")
        c = Client(int(port), host or "127.0.0.1")
        print("%s %s" % (t, c.line()))
        print("%s %s" % (t, c.say("QUIT")))


def limit(port):
    # MAX_CONNS=2, MAX_PROCS=2: four sessions, the fifth waits
    cs = [Client(port) for _ in range(4)]
    print("greeted %d" % sum(c.line().startswith("220 ") for c in cs))
    fifth = Client(port)
    print("fifth before: %s" % fifth.line(1.5))
    print("first quits: %s" % cs[0].say("QUIT"))
    print("fifth after: %s" % fifth.line(10)[:9])
    print("fifth echo: %s" % fifth.say("ping"))
    for c in cs[1:] + [fifth]:
        c.say("QUIT")


def recycle(port):
    # MAX_PROCS=1, MAX_LIFE_CONNS=2
    a, b = Client(port), Client(port)
    a.line(), b.line()
    wa = worker_of("ECHO", a)
    print("same worker: %s" % (wa == worker_of("ECHO", b)))
    print("A: %s" % a.say("one"))
    c = Client(port)
    print("C greeted: %s" % c.line()[:9])
    print("C on a new worker: %s" % (worker_of("ECHO", c) not in (None, wa)))
    print("B still: %s" % b.say("still"))
    print("A still: %s" % a.say("still"))
    a.say("QUIT"), b.say("QUIT")
    print("old worker exited: %s" % wait_for(lambda: wa not in running("ECHO")))
    print("C after: %s" % c.say("after"))
    c.say("QUIT")


def kill9(port):
    # MIN_PROCS=2, MAX_PROCS=2, MIN_CONNS=1
    print("two ready: %s" % wait_for(lambda: len(running("ECHO", True)) == 2))
    a, b = Client(port), Client(port)
    a.line(), b.line()
    wa, wb = worker_of("ECHO", a), worker_of("ECHO", b)
    print("spread: %s" % (wa is not None and wb is not None and wa != wb))
    os.kill(wa, signal.SIGKILL)
    print("A after kill: %s" % a.line())
    print("B after kill: %s" % b.say("alive"))
    print("replaced: %s" % wait_for(lambda: len(running("ECHO", True)) == 2 and
                                    wa not in running("ECHO")))
    d = Client(port)
    print("D: %s" % d.line()[:9])
    d.say("QUIT"), b.say("QUIT")


def fill(port):
    # MIN_PROCS=2, MAX_PROCS=2, MIN_CONNS=2, MAX_CONNS=4
    print("two ready: %s" % wait_for(lambda: len(running("ECHO", True)) == 2))
    clients, where = [], []
    for _ in range(5):
        c = Client(port)
        c.line()
        clients.append(c)
        where.append(worker_of("ECHO", c))
    print("first two together: %s" % (where[0] is not None and where[0] == where[1]))
    print("next two on the other: %s" %
          (where[2] is not None and where[2] == where[3] and where[2] != where[0]))
    print("fifth on the oldest: %s" % (where[4] == where[0]))
    clients[2].say("QUIT"), clients[3].say("QUIT")
    print("its sessions end: %s" % wait_for(lambda: current_of("ECHO", where[2]) == 0))
    c = Client(port)
    c.line()
    print("sixth on the one below MIN_CONNS: %s" % (worker_of("ECHO", c) == where[2]))
    for c in clients[:2] + clients[4:] + [c]:
        c.say("QUIT")


def idle(port):
    # MIN_PROCS=1, MAX_PROCS=3, MIN_CONNS=1, MAX_IDLE_TIME=1
    print("one ready: %s" % wait_for(lambda: len(running("ECHO", True)) == 1))
    a = Client(port)
    a.line()
    print("a second worker: %s" % wait_for(lambda: len(running("ECHO", True)) == 2))
    a.say("QUIT")
    print("back to MIN_PROCS: %s" % wait_for(lambda: len(running("ECHO")) == 1, 8))
    time.sleep(2.5)
    print("MIN_PROCS kept: %s" % (len(running("ECHO")) == 1))


def first_line(port, src=None):
    c = Client(int(port), src=src)
    print(c.line())
    print(c.line(2))


def sigterm(port):
    a = Client(port)
    print("greeting: %s" % a.line()[:9])
    print("echo: %s" % a.say("before"))
    with open(os.environ["PIDFILE"]) as f:
        os.kill(int(f.read()), signal.SIGTERM)
    time.sleep(0.5)
    print("after SIGTERM: %s" % a.say("after"))


def ident(port):
    # an IDENT server on 127.0.0.1:113 that names every client alice
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 113))
    srv.listen(5)
    asked = []

    def serve():
        s, _ = srv.accept()
        q = s.recv(100).decode().strip()
        asked.append(q)
        s.sendall(("%s : USERID : UNIX : alice\r\n" % q).encode())
        s.close()
    threading.Thread(target=serve, daemon=True).start()
    c = Client(port)
    c.line()
    print("ident user: %s" % wait_for(lambda: any(
        x["ident"] == "alice" for x in service("ECHO")["connections"]), 5))
    print("query: %s" % (asked[0] if asked else None))
    print("query expected: %d , %d" % (c.port, port))
    c.say("QUIT")


globals()[sys.argv[1]](*[int(a) if a.isdigit() else a for a in sys.argv[2:]])
EOF
export IMSIMTA C PIDFILE

dt() {
	"$PY" "$T/dt.py" "$@"
}

# The python worker, a program speaking core/dispatcher/handoff.h for IMAGE=.
printf '#!%s\n' "$(command -v "$PY")" >"$T/pyworker"
cat >>"$T/pyworker" <<'EOF'
# A worker for IMAGE=: a line echo server on the protocol of handoff.h.
#   greeting 220 pyworker <service> <channel> <remote-ip> <local-port> <pid>
#   QUIT: 221 bye; other lines: 250 <line>; after DRAIN: 421 draining
# DW_MODE=crash exits at once, DW_MODE=refuse refuses every connection;
# DW_ARGS=FILE records the command line.
import os, selectors, signal, socket, sys

argv = sys.argv[1:]
opts = dict(zip(argv[0::2], argv[1::2]))
if os.environ.get("DW_ARGS"):
    with open(os.environ["DW_ARGS"], "a") as f:
        f.write(" ".join(argv) + "\n")
mode = os.environ.get("DW_MODE", "")
if mode == "crash":
    sys.exit(3)
ctl = socket.socket(fileno=int(opts["--control-fd"]))
sel = selectors.DefaultSelector()
sessions = {}
draining = False


def finish(s):
    sel.unregister(s)
    s.close()
    ctl.send(b"CLOSED %d" % sessions.pop(s)[0])


def drain(*_):
    global draining
    draining = True
    if not sessions:
        sys.exit(0)


signal.signal(signal.SIGTERM, drain)
sel.register(ctl, selectors.EVENT_READ)
ctl.send(b"READY")
while True:
    for key, _ in sel.select():
        if key.fileobj is ctl:
            msg, fds, _, _ = socket.recv_fds(ctl, 512, 4)
            if not msg:
                sel.unregister(ctl)
                drain()
                continue
            words = msg.decode().split(" ")
            if words[0] == "DRAIN":
                drain()
            elif words[0] == "CONN" and mode == "refuse":
                os.close(fds[0])
                ctl.send(b"REFUSED %s not today" % words[1].encode())
            elif words[0] == "CONN":
                s = socket.socket(fileno=fds[0])
                sessions[s] = [int(words[1]), b""]
                sel.register(s, selectors.EVENT_READ)
                ctl.send(b"TAKEN " + words[1].encode())
                s.sendall(("220 pyworker %s %s %s %s %d\r\n" % (
                    opts["--service"], opts["--channel"], words[4], words[3],
                    os.getpid())).encode())
            continue
        s = key.fileobj
        data = s.recv(4096)
        if not data:
            finish(s)
        else:
            sessions[s][1] += data
        while s in sessions and b"\n" in sessions[s][1]:
            line, sessions[s][1] = sessions[s][1].split(b"\n", 1)
            line = line.rstrip(b"\r")
            if draining:
                s.sendall(b"421 draining\r\n")
                finish(s)
            elif line.upper() == b"QUIT":
                s.sendall(b"221 bye\r\n")
                finish(s)
            else:
                s.sendall(b"250 " + line + b"\r\n")
        if draining and not sessions:
            sys.exit(0)
EOF
chmod 755 "$T/pyworker"

# The echoslave test plugin and a channel that uses it (5 s input timeout).
install -m 644 "$abs_top_builddir/tests/plugins/.libs/echoslave.so" "$T/plugins/"
cat >>"$C/imta.cnf" <<'EOF'

tcp_echo echoslave 5
tcp_echo-daemon
EOF

read -r P1 P2 P3 P4 P5 <<<"$(dt ports 5)"

# write_cnf TEXT: dispatcher.cnf for the next start.
write_cnf() {
	printf '%s\n' "$1" >"$C/dispatcher.cnf"
}

start_disp() {
	"$IMSIMTA" --config "$C" start dispatcher >"$OUT" 2>"$ERR"
}

stop_disp() {
	"$IMSIMTA" --config "$C" stop dispatcher >"$OUT" 2>"$ERR"
}

# restart_with DESCRIPTION CNF: a fresh dispatcher for a scenario.
restart_with() {
	kill_disp
	write_cnf "$2"
	: >"$LOG"
	start_disp
	ok $? "$1"
}

# ---- start, pid file, second instance, stop -------------------------------

write_cnf "! two services, one disabled
MAX_PROCS=2
MAX_CONNS=2
MIN_CONNS=1
[SERVICE=PY]
PORT=$P1,$P2
INTERFACE_ADDRESS=127.0.0.1
IMAGE=$T/pyworker
STACKSIZE=1048576
[SERVICE=OFF]
PORT=0
IMAGE=$T/pyworker
[SERVICE=LOGGED]
PORT=$P3
INTERFACE_ADDRESS=127.0.0.1
IMAGE=$T/pyworker
PARAMETER=CHANNEL=tcp_intranet
LOGFILE=logged_%s.log"
export DW_ARGS="$T/args"
check_run "imsimta start dispatcher starts it detached" 0 "$IMSIMTA" --config "$C" start dispatcher
pid=$(disp_pid)
check_grep "start names the daemon's pid" "$OUT" "dispatcher started (pid $pid)"
[ -n "$pid" ] && ! gone "$pid" && grep -q imta-dispatcher "/proc/$pid/cmdline"
ok $? "the pid file names the running dispatcher"
[ -S "$SOCK" ] && [ "$(stat -c %a "$SOCK")" = 660 ]
ok $? "the control socket exists with mode 0660"
check_run "a second instance is refused" 75 "$DISP" --config "$C"
check_grep "it says who holds the pid file" "$ERR" \
	"another instance is running (pid $pid holds $PIDFILE)"
check_run "imsimta start refuses a running dispatcher" 1 "$IMSIMTA" --config "$C" start dispatcher
check_grep "and says so" "$ERR" "the dispatcher is already running (pid $pid)"
check_grep "PORT=0 disables a service" "$LOG" "service OFF is disabled (PORT=0)"

dt greet "$P1" "$P2" "$P3" >"$OUT" 2>&1
check_grep "the first port of a service serves" "$OUT" "$P1 220 pyworker PY tcp_local 127.0.0.1 $P1"
check_grep "so does its second port" "$OUT" "$P2 220 pyworker PY tcp_local 127.0.0.1 $P2"
check_grep "PARAMETER=CHANNEL= names the workers' channel" "$OUT" \
	"$P3 220 pyworker LOGGED tcp_intranet 127.0.0.1 $P3"
check_grep "QUIT ends a session" "$OUT" "$P1 221 bye"
check_grep "the worker gets the command line of handoff.h" "$T/args" \
	"--config $C --service PY --channel tcp_local --control-fd 3 --log $LOGDIR/py_server.log --stack-size 1048576"
check_grep "LOGFILE has %s replaced by the host name" "$T/args" \
	"--log $LOGDIR/logged_mail.example.com.log"
[ -f "$LOGDIR/logged_mail.example.com.log" ]
ok $? "the workers' output goes to that file"

"$IMSIMTA" --config "$C" stats >"$OUT" 2>"$ERR"
ok $? "imsimta stats answers"
check_grep "stats shows the service, its ports and address" "$OUT" \
	"Service PY: ports $P1,$P2 on 127.0.0.1, accepting"
check_no_grep "a disabled service is not listed" "$OUT" "Service OFF"
check_grep "stats counts the connections" "$OUT" \
	"connections: 0 current, 2 total, 0 refused, 0 waiting for a worker"
grep -E "^    [0-9]+ +ready +[0-9-]+ [0-9:]+ +0 +[12] " "$OUT" >/dev/null
ok $? "stats lists the workers with state and connections"
grep -E "^    [0-9]+ +127\.0\.0\.1:[0-9]+ +- +[0-9]+ +closed .* closed$" "$OUT" >/dev/null
ok $? "stats lists the recent connections"
"$IMSIMTA" --config "$C" stats --json >"$OUT" 2>"$ERR"
"$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
svc = {s["name"]: s for s in d["services"]}
py = svc["PY"]
assert d["pid"] == int(sys.argv[2]), d
assert py["ports"] == [int(sys.argv[3]), int(sys.argv[4])], py
assert py["address"] == "127.0.0.1" and py["total"] == 2 and py["refused"] == 0
assert all(c["client"] == "127.0.0.1" and c["end"] is not None for c in py["connections"])
assert {c["server_port"] for c in py["connections"]} == {int(sys.argv[3]), int(sys.argv[4])}
assert all(w["state"] == "ready" for w in py["workers"])
assert "OFF" not in svc
' "$OUT" "$pid" "$P1" "$P2"
ok $? "stats --json gives the same as JSON"

check_run "imsimta stop dispatcher stops it" 0 "$IMSIMTA" --config "$C" stop dispatcher
check_grep "and says so" "$OUT" "dispatcher stopped"
gone "$pid" && [ ! -e "$PIDFILE" ] && [ ! -e "$SOCK" ]
ok $? "the process, its pid file and its socket are gone"
check_grep "its workers were drained" "$LOG" "exited (drained)"
check_run "stats without a dispatcher says it is not running" 69 "$IMSIMTA" --config "$C" stats
check_grep "with the socket it tried" "$ERR" "the dispatcher is not running (no answer on $SOCK"
check_run "stopping what does not run succeeds" 0 "$IMSIMTA" --config "$C" stop dispatcher
check_grep "and says so" "$OUT" "dispatcher not running"
unset DW_ARGS

# The program itself, detached: it returns once it listens.
"$DISP" --config "$C" >"$OUT" 2>"$ERR"
ok $? "imta-dispatcher detaches and exits 0 once ready"
"$PY" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 2)' "$P1"
ok $? "it listens when the start returns"
kill_disp

# ---- addresses -------------------------------------------------------------

if "$PY" -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null
then
	restart_with "services on 127.0.0.1 and ::1 share a port number" "[SERVICE=V4]
PORT=$P4
INTERFACE_ADDRESS=127.0.0.1
IMAGE=$T/pyworker
[SERVICE=V6]
PORT=$P4
INTERFACE_ADDRESS=::1
IMAGE=$T/pyworker"
	dt greet "127.0.0.1:$P4" "::1:$P4" >"$OUT" 2>&1
	check_grep "127.0.0.1 reaches the IPv4 service" "$OUT" "127.0.0.1:$P4 220 pyworker V4 "
	check_grep "::1 reaches the IPv6 service" "$OUT" "::1:$P4 220 pyworker V6 tcp_local ::1 $P4"
	restart_with "a service without INTERFACE_ADDRESS starts" "[SERVICE=ALL]
PORT=$P4
IMAGE=$T/pyworker"
	dt greet "127.0.0.1:$P4" "::1:$P4" >"$OUT" 2>&1
	check_grep "it takes IPv4 clients (as IPv4, not mapped)" "$OUT" \
		"127.0.0.1:$P4 220 pyworker ALL tcp_local 127.0.0.1 $P4"
	check_grep "and IPv6 clients on the same socket" "$OUT" "::1:$P4 220 pyworker ALL tcp_local ::1"
else
	for i in 1 2 3 4 5 6; do
		echo "ok $((TAP_COUNT + 1)) # SKIP no IPv6 loopback"
		TAP_COUNT=$((TAP_COUNT + 1))
	done
fi

# ---- process management with imta-worker and echoslave --------------------

echo_cnf() {
	printf '%s\n' "[SERVICE=ECHO]
PORT=$P5
INTERFACE_ADDRESS=127.0.0.1
PARAMETER=CHANNEL=tcp_echo
$1"
}

restart_with "a service of imta-worker starts" "$(echo_cnf "MIN_PROCS=3
MAX_PROCS=4")"
ready_count_is() {
	[ "$(grep -c "is ready" "$LOG")" = "$1" ]
}
wait_until 100 ready_count_is 3
ok $? "MIN_PROCS workers are started at once, before any client"
[ "$(pgrep -c -P "$(disp_pid)")" = 3 ]
ok $? "they are the dispatcher's children"
dt greet "$P5" >"$OUT" 2>&1
check_grep "imta-worker serves a client with the echoslave plugin" "$OUT" \
	"$P5 220 echo ECHO tcp_echo 127.0.0.1 $P5"

restart_with "a service of at most 2 x 2 connections starts" "$(echo_cnf "MAX_PROCS=2
MAX_CONNS=2
MIN_CONNS=1")"
dt limit "$P5" >"$OUT" 2>&1
check_grep "MAX_CONNS x MAX_PROCS clients are served" "$OUT" "greeted 4"
check_grep "the next client waits for its greeting" "$OUT" "fifth before: TIMEOUT"
check_grep "until a session ends" "$OUT" "first quits: 221 bye"
check_grep "then it is served" "$OUT" "fifth after: 220 echo "
check_grep "normally" "$OUT" "fifth echo: 250 ping"
grep -c "started worker" "$LOG" | grep -qx 2
ok $? "no more than MAX_PROCS workers were started"

restart_with "a service with MAX_LIFE_CONNS=2 starts" "$(echo_cnf "MAX_PROCS=1
MAX_CONNS=5
MAX_LIFE_CONNS=2")"
dt recycle "$P5" >"$OUT" 2>&1
check_grep "the first two clients share the worker" "$OUT" "same worker: True"
check_grep "they are served" "$OUT" "A: 250 one"
check_grep "the third client is served at once" "$OUT" "C greeted: 220 echo "
check_grep "by a new worker" "$OUT" "C on a new worker: True"
check_grep "the retiring worker's sessions go on" "$OUT" "B still: 250 still"
check_grep "all of them" "$OUT" "A still: 250 still"
check_grep "the old worker exits once they ended" "$OUT" "old worker exited: True"
check_grep "the new worker goes on serving" "$OUT" "C after: 250 after"
check_grep "the retirement is logged with its reason" "$LOG" \
	"retires (served MAX_LIFE_CONNS connections) with 2 sessions"

restart_with "a service with two workers starts" "$(echo_cnf "MIN_PROCS=2
MAX_PROCS=2
MIN_CONNS=1
MAX_CONNS=3")"
dt kill9 "$P5" >"$OUT" 2>&1
check_grep "both workers become ready" "$OUT" "two ready: True"
check_grep "two clients are spread over the two workers" "$OUT" "spread: True"
check_grep "kill -9 of a worker ends its session" "$OUT" "A after kill: EOF"
check_grep "the session on the other worker goes on" "$OUT" "B after kill: 250 alive"
check_grep "the dead worker is replaced" "$OUT" "replaced: True"
check_grep "new clients are served" "$OUT" "D: 220 echo "
check_grep "the death is logged with its status" "$LOG" \
	"died unexpectedly (signal 9 (Killed)) after"
check_grep "with the sessions it took" "$LOG" "with 1 sessions, which are lost"

restart_with "a service of two workers with MIN_CONNS=2 starts" "$(echo_cnf "MIN_PROCS=2
MAX_PROCS=2
MIN_CONNS=2
MAX_CONNS=4")"
dt fill "$P5" >"$OUT" 2>&1
check_grep "both workers become ready" "$OUT" "two ready: True"
check_grep "one worker takes connections up to MIN_CONNS" "$OUT" "first two together: True"
check_grep "then the next worker does" "$OUT" "next two on the other: True"
check_grep "above MIN_CONNS, the least busy (the oldest on a tie)" "$OUT" \
	"fifth on the oldest: True"
check_grep "the sessions of the second worker end" "$OUT" "its sessions end: True"
check_grep "a worker below MIN_CONNS comes first" "$OUT" \
	"sixth on the one below MIN_CONNS: True"

restart_with "a service with MAX_IDLE_TIME=1 starts" "$(echo_cnf "MIN_PROCS=1
MAX_PROCS=3
MIN_CONNS=1
MAX_CONNS=3
MAX_IDLE_TIME=1")"
dt idle "$P5" >"$OUT" 2>&1
check_grep "MIN_PROCS worker is ready" "$OUT" "one ready: True"
check_grep "a busy worker brings a second one (MIN_CONNS)" "$OUT" "a second worker: True"
check_grep "idle workers above MIN_PROCS are retired" "$OUT" "back to MIN_PROCS: True"
check_grep "MIN_PROCS workers stay" "$OUT" "MIN_PROCS kept: True"
check_grep "the retirement is logged" "$LOG" "retires (idle for MAX_IDLE_TIME) with 0 sessions"

if [ "$(id -u)" = 0 ] && "$PY" -c 'import socket; s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 113))' 2>/dev/null
then
	restart_with "a service with IDENT=1 starts" "$(echo_cnf "IDENT=1")"
	dt ident "$P5" >"$OUT" 2>&1
	check_grep "the IDENT user shows in the statistics" "$OUT" "ident user: True"
	q=$(sed -n 's/^query expected: //p' "$OUT")
	check_grep "the query names the client's and the service's ports" "$OUT" "query: $q"
else
	for i in 1 2 3; do
		echo "ok $((TAP_COUNT + 1)) # SKIP IDENT needs root and a free port 113"
		TAP_COUNT=$((TAP_COUNT + 1))
	done
fi

# SIGTERM with a session open: the worker drains, the dispatcher exits.
restart_with "a dispatcher for SIGTERM starts" "$(echo_cnf "")"
pid=$(disp_pid)
dt sigterm "$P5" >"$OUT" 2>&1
check_grep "the session is served before" "$OUT" "echo: 250 before"
check_grep "after SIGTERM its next command ends it at a safe point" "$OUT" \
	"after SIGTERM: 421 draining"
wait_until 100 gone "$pid"
ok $? "the dispatcher exits once its workers are gone"
check_grep "it drained the workers" "$LOG" "stopping (stop signal): no more connections"

# ---- workers that fail ----------------------------------------------------

DW_MODE=crash restart_with "a service whose worker keeps dying starts" "[SERVICE=CRASH]
PORT=$P4
INTERFACE_ADDRESS=127.0.0.1
MIN_PROCS=1
IMAGE=$T/pyworker"
sleep 4
starts=$(grep -c "started worker" "$LOG")
[ "$starts" -ge 2 ] && [ "$starts" -le 5 ]
ok $? "it is restarted with a backoff, not in a loop ($starts starts in 4 s)"
check_grep "each death is logged with its status" "$LOG" "died unexpectedly (exit status 3)"
check_grep "the backoff is logged" "$LOG" "workers in a row exited within 10 s of their start; next start in"

DW_MODE=refuse restart_with "a service whose worker refuses starts" "[SERVICE=REFUSE]
PORT=$P4
INTERFACE_ADDRESS=127.0.0.1
IMAGE=$T/pyworker"
dt first_line "$P4" >"$OUT" 2>&1
check_grep "a connection every worker refuses gets 421" "$OUT" \
	"421 4.3.2 Service not available, try again later"
check_grep "the refusal is logged with its reason" "$LOG" "refused connection 1 from 127.0.0.1: not today"

# ---- PORT_ACCESS ------------------------------------------------------------

"$PY" - "$C/mappings" "$P1" "$P2" "$P3" <<'EOF'
import sys
path, p1, p2, p3 = sys.argv[1:]
text = open(path).read()
rows = ("  TCP|*|%s|*|*  $NNot$ welcome$ here\n"
        "  TCP|*|%s|*|*  $N421$ 4.3.2$ Too$ busy\n"
        "  TCP|*|%s|*|*  $N\n" % (p1, p2, p3))
assert "PORT_ACCESS\n\n" in text
open(path, "w").write(text.replace("PORT_ACCESS\n\n", "PORT_ACCESS\n\n" + rows, 1))
EOF
restart_with "a service checked by PORT_ACCESS starts" "[SERVICE=GUARDED]
PORT=$P1,$P2,$P3,$P4
INTERFACE_ADDRESS=127.0.0.1
IMAGE=$T/pyworker
DEBUG=16%1000000"
for p in $P1 $P2 $P3 $P4; do dt first_line "$p"; done >"$OUT" 2>&1
check_grep "a refusal text without a code gets 554 5.7.1" "$OUT" "554 5.7.1 Not welcome here"
check_grep "a text with its own code is sent as it is" "$OUT" "421 4.3.2 Too busy"
check_grep "an empty text gets the default refusal" "$OUT" "554 5.7.1 Connection refused"
check_grep "the refused client is then disconnected" "$OUT" "EOF"
check_grep "a port PORT_ACCESS allows is served" "$OUT" "220 pyworker GUARDED tcp_local 127.0.0.1 $P4"
grep -E "access_control: PORT_ACCESS denied TCP\|127\.0\.0\.1\|$P1\|127\.0\.0\.1\|[0-9]+: 554 5\.7\.1 Not welcome here$" "$LOG" >/dev/null
ok $? "DEBUG 16%1000000 logs the denial: the probe and the reply"
grep -E "access_control: PORT_ACCESS denied TCP\|127\.0\.0\.1\|$P2\|127\.0\.0\.1\|[0-9]+: 421 4\.3\.2 Too busy$" "$LOG" >/dev/null
ok $? "each denial is logged"
"$IMSIMTA" --config "$C" stats --json >"$OUT"
"$PY" -c 'import json, sys; s = json.load(open(sys.argv[1]))["services"][0]
assert s["refused"] == 3 and s["total"] == 4, s' "$OUT"
ok $? "the statistics count the refusals"

restart_with "without DEBUG" "[SERVICE=GUARDED]
PORT=$P1
INTERFACE_ADDRESS=127.0.0.1
IMAGE=$T/pyworker"
dt first_line "$P1" >"$OUT" 2>&1
check_grep "the client is still refused" "$OUT" "554 5.7.1 Not welcome here"
check_no_grep "but the denial is not logged" "$LOG" "access_control:"
kill_disp
: >"$LOG"
IMTA_DISPATCHER_DEBUG=1000000 start_disp
dt first_line "$P1" >"$OUT" 2>&1
check_grep "IMTA_DISPATCHER_DEBUG=1000000 logs it too" "$LOG" "access_control: PORT_ACCESS denied"

# ---- DNS_VERIFY_DOMAIN ------------------------------------------------------

if [ -x "$DNSMASQ" ]; then
	for attempt in 1 2 3 4 5; do
		DNS_PORT=$("$PY" -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
		rm -f "$T/dnsmasq.pid"
		"$DNSMASQ" --conf-file=/dev/null --keep-in-foreground --no-resolv --no-hosts \
			--port="$DNS_PORT" --listen-address=127.0.0.1 --bind-interfaces \
			--user="$(id -un)" --group="$(id -gn)" --pid-file="$T/dnsmasq.pid" \
			--local=/bl.test/ --host-record=2.0.0.127.bl.test,127.0.0.2 \
			2>"$T/dnsmasq.err" &
		DNS_PID=$!
		wait_until 50 test -s "$T/dnsmasq.pid" && kill -0 "$DNS_PID" 2>/dev/null && break
		kill -TERM "$DNS_PID" 2>/dev/null
		wait "$DNS_PID" 2>/dev/null
		DNS_PID=""
	done
	printf 'DNS_SERVERS=127.0.0.1:%s\nDNS_TIMEOUT=1\n' "$DNS_PORT" >>"$C/option.dat"
	restart_with "a service with DNS_VERIFY_DOMAIN starts" "[SERVICE=LISTED]
PORT=$P4
INTERFACE_ADDRESS=127.0.0.1
IMAGE=$T/pyworker
DNS_VERIFY_DOMAIN=bl.test
DEBUG=16%1000000"
	dt first_line "$P4" 127.0.0.2 >"$OUT" 2>&1
	check_grep "a listed client gets the documented refusal" "$OUT" \
		"500 5.7.1 access_control: host found on DNS list and rejected"
	check_grep "and is disconnected" "$OUT" "EOF"
	check_grep "the refusal is logged" "$LOG" \
		"access_control: host 127.0.0.2 found on DNS list and rejected"
	dt first_line "$P4" 127.0.0.1 >"$OUT" 2>&1
	check_grep "a client not listed is served" "$OUT" "220 pyworker LISTED tcp_local 127.0.0.1 $P4"
	kill -TERM "$DNS_PID" 2>/dev/null
	wait "$DNS_PID" 2>/dev/null
	DNS_PID=""
	# The name server is gone: nothing answers on its port.
	dt first_line "$P4" 127.0.0.2 >"$OUT" 2>&1
	check_grep "when the DNS fails, the client is let in" "$OUT" "220 pyworker LISTED "
	check_grep "and that is logged" "$LOG" \
		"DNS_VERIFY_DOMAIN: temporary DNS failure checking 127.0.0.2; accepted it"
else
	for i in 1 2 3 4 5 6 7; do
		echo "ok $((TAP_COUNT + 1)) # SKIP dnsmasq not installed ($DNSMASQ)"
		TAP_COUNT=$((TAP_COUNT + 1))
	done
fi
kill_disp

# ---- configuration and bind errors -------------------------------------------

write_cnf "[SERVICE=SMTP]
PORT=$P1
MAX_CONNS=0"
check_run "a bad dispatcher.cnf stops the program with status 78" 78 "$DISP" --config "$C" -f
check_grep "the error has file, line and column" "$ERR" \
	"$C/dispatcher.cnf:3:11: expected an integer between 1 and 1000 for MAX_CONNS, got \"0\""
check_run "imsimta start reports it with status 78" 78 "$IMSIMTA" --config "$C" start dispatcher
check_grep "showing the error" "$ERR" "$C/dispatcher.cnf:3:11: expected an integer"

"$PY" -c 'import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1)
print("bound", flush=True)
time.sleep(60)' "$P2" >"$T/holder.out" &
HELPER_PID=$!
wait_until 50 grep -q bound "$T/holder.out"
write_cnf "[SERVICE=BUSY]
PORT=$P2
INTERFACE_ADDRESS=127.0.0.1
IMAGE=$T/pyworker"
check_run "a port that cannot be bound stops the start" 1 "$DISP" --config "$C"
check_grep "naming the service, the address and the port" "$ERR" \
	"imta-dispatcher: service BUSY: cannot listen on 127.0.0.1 port $P2: Address already in use"
kill -TERM "$HELPER_PID" 2>/dev/null
wait "$HELPER_PID" 2>/dev/null
HELPER_PID=""
kill_disp

write_cnf "[SERVICE=NOPROG]
PORT=$P2
IMAGE=/nonexistent/worker"
check_run "a missing worker program stops the start" 1 "$DISP" --config "$C" -f
check_grep "naming the service and the program" "$ERR" \
	"service NOPROG: the worker program /nonexistent/worker is not an executable file (IMAGE)"

# ---- HISTORICAL_TIME ------------------------------------------------------------

restart_with "a dispatcher with HISTORICAL_TIME=1 starts" "HISTORICAL_TIME=1
[SERVICE=PY]
PORT=$P1
INTERFACE_ADDRESS=127.0.0.1
IMAGE=$T/pyworker"
dt greet "$P1" "$P1" "$P1" >"$OUT" 2>&1
"$IMSIMTA" --config "$C" stats >"$OUT" 2>"$ERR"
grep -cE "^    [0-9]+ +127\.0\.0\.1:[0-9]+ +[^ ]+ +[^ ]+ +closed " "$OUT" | grep -qx 3
listed=$?
[ $listed -ne 0 ] && diag_file "$OUT"
ok $listed "closed connections are listed"
sleep 3
# Closed connections are dropped from the history when their time is up.
dt greet "$P1" >/dev/null 2>&1
"$IMSIMTA" --config "$C" stats >"$OUT" 2>"$ERR"
grep -cE "^    [0-9]+ +127\.0\.0\.1:[0-9]+ +[^ ]+ +[^ ]+ +closed " "$OUT" | grep -qx 1
ok $? "after HISTORICAL_TIME only the newest closed connection is listed"
check_grep "the totals still count them all" "$OUT" "connections: 0 current, 4 total"
stop_disp
ok $? "the dispatcher stops cleanly after pruning its history"

# ---- imsimta start and stop of the whole MTA ----------------------------------

write_cnf "[SERVICE=PY]
PORT=$P1
INTERFACE_ADDRESS=127.0.0.1
IMAGE=$T/pyworker"
check_run "start-msg without a component starts the MTA" 0 "$IMSIMTA" --config "$C" start-msg
check_grep "the job controller" "$OUT" "job controller started"
check_grep "and the dispatcher" "$OUT" "dispatcher started"
check_run "stop-msg without a component stops both" 0 "$IMSIMTA" --config "$C" stop-msg
[ "$(grep -n stopped "$OUT" | tr '\n' ' ')" = "1:dispatcher stopped 2:job controller stopped " ]
ok $? "the dispatcher first, then the job controller"

# ---- sanitizers ------------------------------------------------------------------

if ls "$T"/sanitizer.* >/dev/null 2>&1; then
	for f in "$T"/sanitizer.*; do diag_file "$f"; done
	ok 1 "no sanitizer reports from the daemons"
else
	ok 0 "no sanitizer reports from the daemons"
fi
finish
