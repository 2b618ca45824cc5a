#!/bin/bash
# imta-worker driven by a fake dispatcher written in python: the handoff
# protocol (READY, CONN/TAKEN, REFUSED, CLOSED, DRAIN, the end of the
# control socket), the slave API through the echoslave test plugin (echo,
# pipelining, line limits, bounded memory, timeouts, blocking work that
# does not block other sessions), STARTTLS (verification, no command
# injection, a garbage handshake), signals, and what an administrator sees
# when the service's channel has no slave program.
#
# Only processes this test started are signalled, by the pids it got.
. "$abs_top_srcdir/tests/cli/lib.sh"
make_instance
plan 78

PY=${PYTHON3:-python3}
WORKER="$abs_top_builddir/core/libexec/imta-worker"
LOGDIR="$T/var/log"
mkdir -p "$LOGDIR" "$T/var/run" "$T/var/tls"

install -m 644 "$abs_top_builddir/tests/plugins/.libs/echoslave.so" "$T/plugins/echoslave.so"
# The SMTP channels of the default imta.cnf need the keyword `smtp` of the
# tcp_smtp plugin; this test does not use them, so a build whose plugin
# does not register it yet still runs it.
if ! "$IMSIMTA" --config "$C" plugin-list 2>/dev/null | grep -q '^  keywords:.* smtp\b'; then
	sed -i 's/^\(tcp_[a-z]*\) smtp /\1 /' "$C/imta.cnf"
fi
cat >>"$C/imta.cnf" <<'EOF'

tcp_echo echoslave
tcp_echo-daemon

tcp_echo_fast echoslave 2
tcp_echo_fast-daemon

unbound
unbound-daemon
EOF

# A CA and a server certificate for localhost and 127.0.0.1, where the
# default option.dat looks for them (../var/tls, relative to the
# configuration directory).
TLS=0
if command -v certtool >/dev/null 2>&1; then
	(
		cd "$T/var/tls" || exit 1
		printf 'cn = "Worker Test CA"\nca\ncert_signing_key\nexpiration_days = 30\n' >ca.tmpl
		printf 'cn = "localhost"\ndns_name = "localhost"\nip_address = "127.0.0.1"\n%s\n' \
			'tls_www_server' >server.tmpl
		printf 'signing_key\nencryption_key\nexpiration_days = 30\n' >>server.tmpl
		certtool --generate-privkey --outfile ca.key &&
		certtool --generate-self-signed --load-privkey ca.key --template ca.tmpl \
			--outfile ca.pem &&
		certtool --generate-privkey --outfile server.key &&
		certtool --generate-certificate --load-privkey server.key --load-ca-certificate ca.pem \
			--load-ca-privkey ca.key --template server.tmpl --outfile server.pem
	) >"$T/certtool.log" 2>&1 && TLS=1
	[ $TLS = 1 ] || diag_file "$T/certtool.log"
fi

# ---- a service whose channel cannot serve connections ---------------------

run_worker() {
	"$WORKER" --config "$C" --service SMTP --log - "$@" 3<&0
}
check_run "a channel that does not exist stops the worker (78)" 78 \
	run_worker --channel nosuch
check_grep "the log names the channel and where to fix it" "$ERR" \
	"service SMTP: no channel nosuch in $C/imta.cnf; name an existing channel in PARAMETER=CHANNEL= of [SERVICE=SMTP] in dispatcher.cnf"
check_run "a channel bound to no plugin stops the worker (78)" 78 run_worker --channel unbound
check_grep "the log says the channel has no slave program and what to do" "$ERR" \
	"service SMTP: channel unbound is bound to no plugin, so nothing can serve its connections"
check_run "a plugin without a slave program stops the worker (78)" 78 \
	run_worker --channel bitbucket
check_grep "the log names the plugin and points at plugin-list" "$ERR" \
	"service SMTP: plugin bitbucket of channel bitbucket has no slave program; name a channel whose plugin serves connections (imsimta plugin-list shows them)"
check_run "a missing --channel is a usage error (64)" 64 "$WORKER" --config "$C" --service SMTP
check_run "a stack size out of range is a usage error (64)" 64 \
	run_worker --channel tcp_echo --stack-size 1000

# A configuration whose certificate is garbage: the worker runs without TLS.
cp -r "$C" "$T/conf-badtls"
echo "not a certificate" >"$T/var/tls/bad.pem"
sed -i 's|^TLS_CERTIFICATE_FILE=.*|TLS_CERTIFICATE_FILE=../var/tls/bad.pem|;/^TLS_KEY_FILE=/d' \
	"$T/conf-badtls/option.dat"

# ---- the fake dispatcher -----------------------------------------------------

cat >"$T/worker_test.py" <<'PYEOF'
import os, re, signal, socket, ssl, subprocess, sys, time

WORKER = os.environ["WORKER"]
CONF = os.environ["CONF"]
CONF_BADTLS = os.environ["CONF_BADTLS"]
LOGDIR = os.environ["LOGDIR"]
TLSDIR = os.environ["TLSDIR"]
HAVE_TLS = os.environ["HAVE_TLS"] == "1"
count = int(os.environ["TAP_START"])
failed = 0


def ok(cond, desc, detail=""):
    global count, failed
    count += 1
    if cond:
        print("ok %d - %s" % (count, desc))
    else:
        failed += 1
        print("not ok %d - %s" % (count, desc))
        for line in str(detail).splitlines():
            print("# " + line)
    sys.stdout.flush()
    return cond


def skip(desc, why):
    global count
    count += 1
    print("ok %d - %s # SKIP %s" % (count, desc, why))


def gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state in ("Z", "X")
    except FileNotFoundError:
        return True


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Worker:
    """A worker process and our end of its control socket."""
    serial = 0

    def __init__(self, channel="tcp_echo", conf=CONF, name=None):
        Worker.serial += 1
        self.name = name or "worker%d" % Worker.serial
        self.log = os.path.join(LOGDIR, self.name + ".log")
        self.ctl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        fd = theirs.fileno()

        # The worker gets its end as descriptor 3, as from the dispatcher
        # (our other descriptors are all close-on-exec).
        def child_setup():
            if fd == 3:
                os.set_inheritable(3, True)
            else:
                os.dup2(fd, 3)
                os.close(fd)
        self.proc = subprocess.Popen(
            [WORKER, "--config", conf, "--service", "SMTP", "--channel", channel,
             "--log", self.log, "--stack-size", "2097152"],
            preexec_fn=child_setup, close_fds=False, stdout=subprocess.DEVNULL,
            stderr=open(self.log + ".err", "w"))
        theirs.close()
        self.pid = self.proc.pid
        self.messages = []
        self.next_id = 100
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(512)
        self.port = self.listener.getsockname()[1]

    def _pump(self, timeout):
        self.ctl.settimeout(timeout)
        try:
            data = self.ctl.recv(1024)
        except socket.timeout:
            return False
        except OSError:
            return False
        if not data:
            return False
        self.messages.append(data.decode())
        return True

    def expect(self, pattern, timeout=10.0):
        """The first message matching pattern (removed), or None."""
        deadline = time.time() + timeout
        while True:
            for i, m in enumerate(self.messages):
                if re.fullmatch(pattern, m):
                    return self.messages.pop(i)
            left = deadline - time.time()
            if left <= 0 or not self._pump(left):
                return None

    def send(self, text, fd=None):
        if fd is None:
            self.ctl.send(text.encode())
        else:
            socket.send_fds(self.ctl, [text.encode()], [fd])

    def connect(self, listener=None, remote=None):
        """A client connection handed over like the dispatcher does; the
        client socket and the connection id, once TAKEN.  `remote`
        overrides the client address the message gives."""
        listener = listener or self.listener
        client = socket.create_connection(listener.getsockname()[:2])
        server, peer = listener.accept()
        local = server.getsockname()
        self.next_id += 1
        cid = self.next_id
        self.send("CONN %d %s %d %s %d" % (cid, local[0], local[1], remote or peer[0], peer[1]),
                  server.fileno())
        server.close()
        taken = self.expect("TAKEN %d" % cid)
        return Client(client), cid, taken is not None

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.ctl.close()
        self.listener.close()

    def log_text(self):
        """The log, with the part rotated away first."""
        text = ""
        for path in (self.log + ".1", self.log):
            try:
                with open(path) as f:
                    text += f.read()
            except FileNotFoundError:
                pass
        return text


class Client:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def line(self, timeout=10.0):
        deadline = time.time() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, ConnectionError, ssl.SSLError):
                return None
            if not data:
                return None
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("latin-1")

    def read_exactly(self, n, timeout=20.0):
        deadline = time.time() + timeout
        while len(self.buf) < n:
            left = deadline - time.time()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 20)
            except (socket.timeout, ConnectionError):
                break
            if not data:
                break
            self.buf += data
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def closed(self, timeout=10.0):
        """True when the server closes (after any bytes still coming)."""
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionError, ssl.SSLError):
                return True
            if not data:
                return True
            self.buf += data

    def starttls(self, ctx):
        self.sock.settimeout(10)
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")

    def close(self):
        self.sock.close()


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(TLSDIR, "ca.pem"))
    return ctx


# ---- one worker for the sessions ------------------------------------------

w = Worker()
ok(w.expect("READY", 20) is not None, "the worker says READY")

# The bounded shutdown takes 30 seconds: start it now, check it at the end.
ws = Worker(name="sigterm-bound")
ws_ready = ws.expect("READY", 20) is not None
ws_client, ws_id, _ = ws.connect()
ws_greeting = ws_client.line()
os.kill(ws.pid, signal.SIGTERM)
ws_t0 = time.time()

c, cid, taken = w.connect()
ok(taken, "a handed-over connection is TAKEN")
greeting = c.line()
peer = c.sock.getsockname()
ok(greeting == "220 echo SMTP tcp_echo %s %d" % (peer[0], w.port),
   "the greeting names service, channel, client address and local port", greeting)
c.send(b"hello world\r\n")
ok(c.line() == "250 hello world", "a line is echoed")
c.send(b"bare newline\n")
ok(c.line() == "250 bare newline", "a line ending in a bare LF is one line")

lines = [b"line %d" % i for i in range(500)]
c.send(b"".join(l + b"\r\n" for l in lines))
got = [c.line() for _ in lines]
ok(got == ["250 " + l.decode() for l in lines],
   "500 pipelined lines sent at once are all answered, in order",
   [g for g in got if g is not None][:3])

c.send(b"a" * 1000 + b"\r\n")
ok(c.line() == "250 " + "a" * 1000, "a line of exactly 1000 bytes is accepted")
c.send(b"b" * 1001 + b"\r\n")
ok(c.line() == "500 too long", "a line of 1001 bytes is refused as too long")
c.send(b"c" * 3000 + b"\r\nafter\r\n")
ok(c.line() == "500 too long" and c.line() == "250 after",
   "after a long line the next line is read normally")

rss_before = vm_rss_kib(w.pid)
chunk = b"z" * 65536
for _ in range(128):
    c.send(chunk)
time.sleep(0.5)
rss_after = vm_rss_kib(w.pid)
c.send(b"\r\nnext\r\n")
ok(c.line() == "500 too long", "8 MiB without a line end is answered as one long line")
ok(rss_after - rss_before < 2048,
   "8 MiB without a line end grows the worker by less than 2 MiB",
   "VmRSS %d KiB before, %d KiB after" % (rss_before, rss_after))
ok(c.line() == "250 next", "the line after it is echoed")

c.send(b"BIG 3000000\r\n")
big = c.read_exactly(3000002)
ok(big == b"x" * 3000000 + b"\r\n", "3 MB of output arrive whole", len(big))
c.send(b"after big\r\n")
ok(c.line() == "250 after big", "the session goes on after large output")

c.send(b"SLEEP 100\r\npipelined after sleep\r\n")
ok(c.line() == "250 slept" and c.line() == "250 pipelined after sleep",
   "a line pipelined behind blocking work is answered after it")

# Blocking work of one session does not hold up another.
a, aid, _ = w.connect()
b, bid, _ = w.connect()
a.line()
b.line()
t0 = time.time()
a.send(b"SLEEP 2000\r\n")
time.sleep(0.1)
b.send(b"quick\r\n")
reply = b.line(5)
tb = time.time() - t0
ok(reply == "250 quick" and tb < 1.0,
   "another session is answered while one waits on blocking work", "%r after %.2f s" % (reply, tb))
reply = a.line(10)
ta = time.time() - t0
ok(reply == "250 slept" and ta >= 1.9, "the sleeping session is answered after its work",
   "%r after %.2f s" % (reply, ta))
a.send(b"QUIT\r\n")
ok(a.line() == "221 bye" and a.closed(), "QUIT is answered and the connection closed")
ok(w.expect("CLOSED %d" % aid) is not None, "CLOSED is reported when a session ends")

# Client addresses as the dispatcher gives them.
m, mid, _ = w.connect(remote="::ffff:127.0.0.1")
greeting = m.line()
ok(greeting == "220 echo SMTP tcp_echo 127.0.0.1 %d" % w.port,
   "an IPv4-mapped IPv6 client address is given as IPv4", greeting)
m.close()
try:
    l6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    l6.bind(("::1", 0))
    l6.listen(4)
except OSError:
    l6 = None
if l6 is not None:
    v6, _, _ = w.connect(listener=l6)
    greeting = v6.line()
    ok(greeting == "220 echo SMTP tcp_echo ::1 %d" % l6.getsockname()[1],
       "an IPv6 client address is given as written", greeting)
    v6.close()
    l6.close()
else:
    skip("an IPv6 client address is given as written", "no IPv6 loopback")

# A client that resets in the middle of a line.
r, rid, _ = w.connect()
r.line()
r.send(b"half a li")
time.sleep(0.2)
r.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
r.close()
ok(w.expect("CLOSED %d" % rid) is not None, "a client that resets mid-line ends in CLOSED")

# Control messages the worker must refuse or ignore.
s1, s2 = socket.socketpair()
w.send("CONN 900 127.0.0.1 25 127.0.0.1 nonsense", s1.fileno())
ok(w.expect("REFUSED 900 .+") is not None, "a malformed CONN is REFUSED with a reason")
w.send("CONN 901 127.0.0.1 25 not-an-address 4000", s1.fileno())
ok(w.expect("REFUSED 901 malformed address") is not None,
   "a CONN with a malformed address is REFUSED")
w.send("CONN 902 127.0.0.1 25 127.0.0.1 4000")
ok(w.expect("REFUSED 902 no socket attached") is not None,
   "a CONN without a descriptor is REFUSED")
s1.close()
s2.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
w.send("CONN 903 127.0.0.1 25 127.0.0.1 4000", u.fileno())
u.close()
ok(w.expect("REFUSED 903 the descriptor is not a stream socket") is not None,
   "a descriptor that is not a stream socket is REFUSED")
w.send("HELLO THERE")
c.send(b"still here\r\n")
ok(c.line() == "250 still here" and "ignoring an unknown control message" in w.log_text(),
   "an unknown control message is logged and ignored")

# Two hundred sessions at once.
many = [w.connect() for _ in range(200)]
ok(all(t for _, _, t in many), "200 concurrent connections are all TAKEN")
for cl, i, _ in many:
    cl.line()
for cl, i, _ in many:
    cl.send(b"id %d\r\n" % i)
answers = [cl.line() == "250 id %d" % i for cl, i, _ in many]
ok(all(answers), "200 concurrent sessions are all served", answers.count(False))
for cl, i, _ in many:
    cl.send(b"QUIT\r\n")
closed = [w.expect("CLOSED %d" % i) is not None for _, i, _ in many]
ok(all(closed), "200 sessions end with CLOSED each", closed.count(False))
for cl, _, _ in many:
    cl.close()

# SIGHUP reopens the log (moved away by log rotation).
os.rename(w.log, w.log + ".1")
os.kill(w.pid, signal.SIGHUP)
deadline = time.time() + 5
while time.time() < deadline and "log reopened" not in w.log_text():
    time.sleep(0.1)
ok("log reopened" in w.log_text(), "SIGHUP reopens the log file")

# ---- TLS ----------------------------------------------------------------------

if HAVE_TLS:
    t, tid, _ = w.connect()
    t.line()
    t.send(b"TLS\r\n")
    ok(t.line() == "250 none", "no TLS before STARTTLS")
    t.send(b"STARTTLS\r\n")
    ok(t.line() == "220 go", "STARTTLS is accepted")
    try:
        t.starttls(tls_context())
        verified = True
        err = ""
    except (ssl.SSLError, OSError) as e:
        verified = False
        err = str(e)
    ok(verified, "the handshake succeeds and the certificate verifies against the CA", err)
    if verified:
        t.send(b"TLS\r\n")
        desc = t.line()
        ok(desc is not None and re.fullmatch(r"250 TLS1\.[23] with cipher \S+", desc) is not None,
           "the session describes its TLS version and cipher", desc)
        t.send(b"secret\r\n")
        ok(t.line() == "250 secret", "lines are echoed inside TLS")
        t.send(b"STARTTLS\r\n")
        ok(t.line() == "454 TLS not available", "a second STARTTLS is refused")
    else:
        for d in ("the session describes its TLS version and cipher",
                  "lines are echoed inside TLS", "a second STARTTLS is refused"):
            ok(False, d, "no TLS session")
    t.close()

    # Commands pipelined behind STARTTLS in clear are discarded.
    j, jid, _ = w.connect()
    j.line()
    j.send(b"STARTTLS\r\nINJECTED\r\n")
    ok(j.line() == "220 go", "STARTTLS pipelined with another command is accepted")
    try:
        j.starttls(tls_context())
        j.send(b"TLS\r\n")
        first = j.line()
    except (ssl.SSLError, OSError) as e:
        first = "handshake failed: %s" % e
    ok(first is not None and first.startswith("250 TLS1."),
       "the command sent in clear after STARTTLS is never answered", first)
    j.close()

    # A garbage handshake closes that connection only.
    g, gid, _ = w.connect()
    o, oid, _ = w.connect()
    g.line()
    o.line()
    g.send(b"STARTTLS\r\n")
    g.line()
    g.send(b"GET / HTTP/1.0\r\n\r\n" + b"\x00" * 100)
    ok(g.closed(10), "a garbage handshake closes the connection")
    ok(w.expect("CLOSED %d" % gid) is not None and "TLS handshake failed" in w.log_text(),
       "the failed handshake is logged and the session reported CLOSED")
    o.send(b"unaffected\r\n")
    ok(o.line() == "250 unaffected", "other sessions go on")
    o.close()

    # A client that never completes the handshake.
    h, hid, _ = w.connect()
    h.line()
    h.send(b"STARTTLS\r\n")
    h.line()
    ok(w.expect("CLOSED %d" % hid, 1) is None, "a silent handshake is waited for")
    h.close()
else:
    for d in ("no TLS before STARTTLS", "STARTTLS is accepted",
              "the handshake succeeds and the certificate verifies against the CA",
              "the session describes its TLS version and cipher",
              "lines are echoed inside TLS", "a second STARTTLS is refused",
              "STARTTLS pipelined with another command is accepted",
              "the command sent in clear after STARTTLS is never answered",
              "a garbage handshake closes the connection",
              "the failed handshake is logged and the session reported CLOSED",
              "other sessions go on", "a silent handshake is waited for"):
        skip(d, "certtool (gnutls-bin) is not installed")

# A certificate that cannot be loaded: logged, no STARTTLS.
wb = Worker(conf=CONF_BADTLS, name="badtls")
ok(wb.expect("READY", 20) is not None, "a worker with an unusable certificate still starts")
bt, _, _ = wb.connect()
bt.line()
bt.send(b"STARTTLS\r\n")
ok(bt.line() == "454 TLS not available", "it does not offer TLS")
ok("error: TLS disabled, STARTTLS is not offered: option.dat TLS_CERTIFICATE_FILE"
   in wb.log_text(), "the unusable certificate is logged as an error", wb.log_text())
bt.close()
wb.send("DRAIN")
ok(wb.wait(10) == 0, "a drained worker with no session exits 0")
wb.stop()

# ---- input timeout ----------------------------------------------------------------

wt = Worker(channel="tcp_echo_fast", name="timeout")
wt.expect("READY", 20)
tc, tcid, _ = wt.connect()
tc.line()
tc.send(b"ping\r\n")
tc.line()
t0 = time.time()
reply = tc.line(10)
elapsed = time.time() - t0
ok(reply == "421 timeout" and 1.5 < elapsed < 6, "an idle client gets 421 after the timeout",
   "%r after %.1f s" % (reply, elapsed))
ok(tc.closed(5) and wt.expect("CLOSED %d" % tcid) is not None,
   "the timed-out connection is closed and reported")
# A client that never reads: its output stalls and it is closed after the
# input timeout, the worker going on meanwhile.
nr, nrid, _ = wt.connect()
nr.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
nr.line()
nr.send(b"BIG 20000000\r\n")
ok(wt.expect("CLOSED %d" % nrid, 15) is not None and "output timeout" in wt.log_text(),
   "a client that reads nothing is closed by the output timeout")
nr.close()
wt.stop()

# ---- blocking work of a session alone on its event loop ----------------------------
# It may run on the loop's own thread; the worker must then send new
# sessions to another loop, and keep the order of pipelined lines.

wi = Worker(name="alone")
wi.expect("READY", 20)
ia, iaid, _ = wi.connect()
ok(ia.line() is not None, "a first session is greeted")
ia.send(b"SLEEP 100\r\nafter\r\n")
ok(ia.line() == "250 slept" and ia.line() == "250 after",
   "a lone session: a line pipelined behind blocking work is answered after it")
ib, ibid, _ = wi.connect()
ok(ib.line() is not None, "a second session is greeted")
t0 = time.time()
ia.send(b"SLEEP 2000\r\n")
time.sleep(0.2)
ic, icid, _ = wi.connect()
greeting = ic.line(5)
tc = time.time() - t0
ok(greeting is not None and tc < 1.0,
   "a session arriving while every loop holds one session, one of them in blocking "
   "work, is greeted at once", "%r after %.2f s" % (greeting, tc))
ic.send(b"quick\r\n")
reply = ic.line(5)
tc = time.time() - t0
ok(reply == "250 quick" and tc < 1.5, "and answered at once", "%r after %.2f s" % (reply, tc))
reply = ia.line(10)
ta = time.time() - t0
ok(reply == "250 slept" and ta >= 1.9, "the working session is answered after its work",
   "%r after %.2f s" % (reply, ta))
for s in (ia, ib, ic):
    s.send(b"QUIT\r\n")
ok(all(s.line() == "221 bye" and s.closed() for s in (ia, ib, ic)),
   "the three sessions end normally")
wi.ctl.close()
ok(wi.wait(10) == 0, "the worker exits 0 once its sessions are over")
wi.stop()

# ---- retiring ------------------------------------------------------------------------

wd = Worker(name="drain")
wd.expect("READY", 20)
dc, did, _ = wd.connect()
dc.line()
dc.send(b"before\r\n")
dc.line()
wd.send("DRAIN")
time.sleep(0.5)
x1, x2 = socket.socketpair()
wd.send("CONN 950 127.0.0.1 25 127.0.0.1 4000", x1.fileno())
x1.close()
x2.close()
ok(wd.expect("REFUSED 950 worker is retiring") is not None,
   "a draining worker refuses new connections")
ok(wd.proc.poll() is None, "a draining worker keeps its session")
dc.send(b"QUIT\r\n")
ok(dc.line() == "421 draining" and dc.closed(), "the session ends at its next command")
ok(wd.expect("CLOSED %d" % did) is not None, "its end is reported")
ok(wd.wait(10) == 0, "then the worker exits 0")
wd.stop()

# SIGTERM: the same, for the session's next command.
wg = Worker(name="sigterm")
wg.expect("READY", 20)
gc, gcid, _ = wg.connect()
gc.line()
os.kill(wg.pid, signal.SIGTERM)
time.sleep(0.5)
ok(wg.proc.poll() is None, "after SIGTERM the worker waits for its session")
gc.send(b"more\r\n")
ok(gc.line() == "421 draining" and wg.wait(10) == 0,
   "the session ends at its next command and the worker exits 0")
wg.stop()

# The dispatcher killed: the control socket ends, the worker drains.
wk = Worker(name="orphan")
wk.expect("READY", 20)
kc, kcid, _ = wk.connect()
kc.line()
holder = os.fork()
if holder == 0:
    signal.pause()
    os._exit(0)
wk.ctl.close()
os.kill(holder, signal.SIGKILL)
os.waitpid(holder, 0)
time.sleep(0.5)
ok(wk.proc.poll() is None, "without its dispatcher the worker finishes its session")
kc.send(b"more\r\n")
ok(kc.line() == "421 draining" and wk.wait(10) == 0, "then it exits 0")
wk.listener.close()

# The 30-second bound after SIGTERM, started at the beginning.
code = ws.wait(max(1, 40 - (time.time() - ws_t0)))
elapsed = time.time() - ws_t0
ok(ws_ready and ws_greeting is not None and code == 0 and 28 < elapsed < 38 and
   ws_client.closed(1), "after SIGTERM an idle session is closed within 30 s and the worker exits 0",
   "exit %r after %.1f s" % (code, elapsed))
ws.stop()

# The first worker: its log is clean, and the end of its control socket
# with no session left makes it exit.
c.close()
w.expect("CLOSED %d" % cid, 5)
expected = ("unknown control message", "refusing connection")
if not HAVE_TLS:
    expected += ("TLS disabled",)
bad = [l for l in w.log_text().splitlines()
       if (": error: " in l or ": warning: " in l) and not any(e in l for e in expected)]
ok(not bad, "no unexpected errors or warnings in the worker's log", "\n".join(bad))
w.ctl.close()
ok(w.wait(10) == 0, "the end of the control socket with no session left: exit 0")
w.stop()

print("# TAP_END %d %d" % (count, failed))
sys.exit(1 if failed else 0)
PYEOF

WORKER="$WORKER" CONF="$C" CONF_BADTLS="$T/conf-badtls" LOGDIR="$LOGDIR" TLSDIR="$T/var/tls" \
	HAVE_TLS=$TLS TAP_START=$TAP_COUNT "$PY" "$T/worker_test.py" >"$T/py.out" 2>&1
cat "$T/py.out" | grep -v '^# TAP_END'
end=$(sed -n 's/^# TAP_END //p' "$T/py.out")
if [ -z "$end" ]; then
	echo "# the python test did not finish"
	for f in "$LOGDIR"/*.log "$LOGDIR"/*.err; do
		[ -s "$f" ] && { echo "# --- $f"; tail -20 "$f" | sed 's/^/# /'; }
	done
	TAP_FAILED=$((TAP_FAILED + 1))
else
	TAP_COUNT=${end% *}
	TAP_FAILED=$((TAP_FAILED + ${end#* }))
fi
finish
