#!/bin/bash
# imta-job-controller: the pid-file lock, the protocol of jc_protocol.h
# (admin requests, a master's NEXT/DONE, errors), notices, delivery through
# imta-master to the bitbucket channel, the periodic scan finding a file
# whose notice was lost, the queue rebuild at start (untried files first,
# 3/4 of MAX_MESSAGES, held files left alone), SHUTDOWN, SIGTERM and the
# detached start.
#
# Only the controller this test started is signalled, by the pid the shell
# got for it (or read from its pid file for the detached start).
. "$abs_top_srcdir/tests/cli/lib.sh"
make_instance
plan 70

PY=${PYTHON3:-python3}
JC="$abs_top_builddir/core/libexec/imta-job-controller"
export IMTA_LIBEXEC="${IMTA_LIBEXEC:-$abs_top_builddir/core/libexec}"
RUN="$T/var/run"
QUEUE="$T/var/queue"
LOG="$T/var/log/job_controller.log"
SOCK="$RUN/job_controller.sock"
NOTIFY="$RUN/job_controller.notify"
PIDFILE="$RUN/job_controller.pid"
JC_PID=""

stop_jc() {
	if [ -n "$JC_PID" ] && ! gone "$JC_PID"; then
		kill -TERM "$JC_PID" 2>/dev/null
		wait_until 100 gone "$JC_PID"
		kill -KILL "$JC_PID" 2>/dev/null
	fi
	JC_PID=""
}
trap 'stop_jc; rm -rf "$T"' EXIT

start_jc() {
	"$JC" --config "$C" -f 2>"$T/jc.err" &
	JC_PID=$!
	wait_until 100 test -S "$SOCK"
}

# A channel that has no master: its pool does not exist, so its messages
# stay queued for the assertions below.
cat >>"$C/imta.cnf" <<'EOF'

parked pool NOPOOL
parked-daemon

parked2 pool NOPOOL
parked2-daemon
EOF
# Small limits: rescans every 2 s, MAX_MESSAGES at its minimum; parked2's
# jobs serve one message and do not wait for more; tcp_auth's master
# program fails at once.
sed -i '1i SYNCH_TIME=2\nMAX_MESSAGES=100' "$C/job_controller.cnf"
cat >>"$C/job_controller.cnf" <<'EOF'

[CHANNEL=parked2]
MAX_LIFE_CONNS=1
IDLE_LINGER=0

[CHANNEL=tcp_auth]
MASTER_COMMAND=/bin/false
EOF

# The test's client: admin requests, raw lines, notices, a scripted master.
cat >"$T/jc.py" <<'EOF'
import os, socket, sys, time

def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s, s.makefile("rwb")

def read(f):
    line = f.readline().decode()
    if not line:
        return "EOF"
    return line.rstrip("\n")

def request(f, line):
    f.write((line + "\n").encode())
    f.flush()
    if line in ("STATE", "COUNTERS"):
        out = []
        while True:
            r = read(f)
            if r in (".", "EOF"):
                return out
            out.append(r)
    return [read(f)]

def main(mode, path, args):
    try:
        run(mode, path, args)
    except (BrokenPipeError, ConnectionError):
        print("EOF")

def run(mode, path, args):
    if mode == "admin":
        s, f = connect(path)
        for line in ["HELLO admin"] + args:
            print("\n".join(request(f, line)))
    elif mode == "raw":
        # Send each argument as it is (no newline added), print every reply.
        s, f = connect(path)
        s.settimeout(1)
        for chunk in args:
            s.sendall(chunk.encode().decode("unicode_escape").encode("latin-1"))
        try:
            while True:
                r = read(f)
                print(r)
                if r == "EOF":
                    break
        except socket.timeout:
            print("TIMEOUT")
    elif mode == "notify":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        for text in args:
            s.sendto(text.encode(), path)
    elif mode == "master":
        # Lines to send; "!rename OLD NEW SECONDS" renames a queue file and sets
        # its mtime SECONDS from now; "!close" ends the connection at once;
        # "!drain N" delivers N messages: NEXT, remove the file, DONE.
        s, f = connect(path)
        queue = os.environ["QUEUE"]
        for line in args:
            if line.startswith("!drain "):
                for _ in range(int(line.split()[1])):
                    msg = request(f, "NEXT")[0]
                    if not msg.startswith("MSG "):
                        print(msg)
                        break
                    rel = msg.split()[1]
                    os.unlink(os.path.join(queue, rel))
                    print("\n".join(request(f, "DONE %s - 1 0 0 0" % rel)))
                continue
            if line.startswith("!rename "):
                _, old, new, secs = line.split()
                os.rename(os.path.join(queue, old), os.path.join(queue, new))
                t = time.time() + int(secs)
                os.utime(os.path.join(queue, new), (t, t))
                continue
            if line == "!close":
                s.close()
                break
            line = line.replace("@NOW+3600", str(int(time.time()) + 3600))
            print("\n".join(request(f, line)))
    elif mode == "queue-range":
        # queue-range QUEUE CHANNEL FROM TO: untried files with ids 0ZZ<number>
        for n in range(int(args[1]), int(args[2]) + 1):
            queue_file(path, args[0], "0ZZ%013d" % n, 0, 0, False)
    elif mode == "queue-file":
        # queue-file QUEUE CHANNEL ID ATTEMPTS [mtime-offset] [held]
        print(queue_file(path, args[0], args[1], int(args[2]),
                         int(args[3]) if len(args) > 3 else 0, len(args) > 4))

def queue_file(path, channel, qid, attempts, offset, held):
    alpha = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    name = alpha[35 - attempts // 36] + alpha[35 - attempts % 36] + qid
    name += ".HELD" if held else ".00"
    body = b"Subject: test\n\nhello\n"
    env = ("IMTAQ1\nid %s\ncreated %d\nsource tcp_local\nchannel %s\n"
           "host %s.example.com\npriority normal\nfrom ann@example.org\n"
           "rcpt - - bob@%s.example.com\nsize %d\n\n"
           % (qid, int(time.time()), channel, channel, channel, len(body)))
    os.makedirs(os.path.join(path, channel), exist_ok=True)
    tmp = os.path.join(path, "$test.tmp")
    with open(tmp, "wb") as out:
        out.write(env.encode() + body)
    if offset:
        t = time.time() + offset
        os.utime(tmp, (t, t))
    os.rename(tmp, os.path.join(path, channel, name))
    return channel + "/" + name

main(sys.argv[1], sys.argv[2], sys.argv[3:])
EOF
export QUEUE

jcpy() {
	"$PY" "$T/jc.py" "$@"
}

# state KEY: the value the controller reports for KEY.
state() {
	jcpy admin "$SOCK" STATE | sed -n "s/^$1 //p"
}

state_is() {
	[ "$(state "$1")" = "$2" ]
}

check_state() {
	# check_state DESCRIPTION KEY VALUE
	local got
	if wait_until 50 state_is "$2" "$3"; then
		ok 0 "$1"
	else
		got=$(state "$2")
		echo "# expected $2 $3, got \"$got\""
		ok 1 "$1"
	fi
}

# check_line DESCRIPTION FILE N TEXT: line N of FILE is exactly TEXT.
check_line() {
	local got
	got=$(sed -n "${3}p" "$2")
	if [ "$got" = "$4" ]; then
		ok 0 "$1"
	else
		echo "# expected line $3 to be \"$4\", got \"$got\""
		diag_file "$2"
		ok 1 "$1"
	fi
}

queue_file() {
	jcpy queue-file "$QUEUE" "$@"
}

# ---- start, pid file, second instance -------------------------------------

# A temporary file left by an enqueuer that died: its pid no longer runs.
true &
dead=$!
wait "$dead"
mkdir -p "$QUEUE"
printf 'half a message' >"$QUEUE/\$$dead-1.tmp"
start_jc
ok $? "the controller starts in the foreground and listens"
# The clean-up runs with the first scan, which may finish after the
# sockets are up.
wait_until 100 test ! -e "$QUEUE/\$$dead-1.tmp"
ok $? "a stale temporary file of a dead enqueuer is removed at start"
wait_until 100 grep -q "removed 1 stale temporary file" "$LOG"
check_grep "the removal is logged" "$LOG" "removed 1 stale temporary file from the queue"
check_grep "the pid file names the controller" "$PIDFILE" "$JC_PID"
check_run "a second instance refuses to start" 75 "$JC" --config "$C" -f
check_grep "it says who holds the pid file" "$ERR" \
	"another instance is running (pid $JC_PID holds $PIDFILE)"
kill -0 "$JC_PID" 2>/dev/null
ok $? "the first instance still runs"
check_state "STATE reports MAX_MESSAGES" max_messages 100
check_state "the hash table has the next power of two above it" hash_size 128
check_state "STATE reports pool limits" pool.IMS_POOL.limit 2
check_state "a channel's limit is min(maxjobs, JOB_LIMIT)" channel.ims-ms.limit 2

# ---- protocol errors ------------------------------------------------------

jcpy raw "$SOCK" 'STATE\n' >"$OUT"
check_grep "a request before HELLO is refused" "$OUT" "ERR expected+20HELLO+20first"
jcpy raw "$SOCK" 'HELLO bogus\n' 'HELLO  admin\n' 'HELLO master nosuch\n' >"$OUT"
check_grep "an unknown role is refused" "$OUT" \
	"ERR expected+20HELLO+20master+20<channel>+20or+20HELLO+20admin"
check_grep "an empty field is malformed" "$OUT" "ERR malformed+20request"
check_grep "an unknown channel is refused" "$OUT" "ERR no+20such+20channel"
jcpy raw "$SOCK" 'HELLO admin\nFROB\nRETRY\nRETRY ../x\n' >"$OUT"
check_grep "an unknown request is refused" "$OUT" "ERR unknown+20request"
check_grep "RETRY needs an argument" "$OUT" "ERR expected+20RETRY+20<queue-id|channel>"
check_grep "RETRY refuses what is neither an id nor a channel" "$OUT" \
	"ERR expected+20a+20queue+20id+20or+20a+20channel+20name"
long=$(head -c 5000 /dev/zero | tr '\0' x)
jcpy raw "$SOCK" "HELLO admin\\n$long\\nSTATE\\n" >"$OUT"
check_grep "a line longer than IMTA_JC_MAX_LINE is refused" "$OUT" "ERR line+20too+20long"
check_grep "and the connection is closed" "$OUT" "EOF"
check_no_grep "nothing after the long line is served" "$OUT" "tracked"

# ---- notices --------------------------------------------------------------

jcpy notify "$NOTIFY" "E ../etc/passwd" "E bitbucket/../../x/ZZ0000000000000001.00" \
	"E nosuch/ZZ0000000000000001.00" "X bitbucket/ZZ0000000000000001.00" "E bitbucket/junk"
check_state "malformed notices are ignored and counted" notices_ignored 5
check_state "nothing was tracked from them" tracked 0
check_grep "an ignored notice is logged" "$LOG" "ignored notice \"E ../etc/passwd\""

rel=$(queue_file parked 0PARKED000000001 0)
jcpy notify "$NOTIFY" "E $rel"
check_state "a notice makes a message tracked" channel.parked.queued 1
check_state "it is ready" channel.parked.ready 1
check_grep "a channel naming an unknown pool is reported once" "$LOG" \
	"channel parked names pool NOPOOL, which $C/job_controller.cnf does not define"
check_state "and gets no job" channel.parked.jobs 0

# ---- a master's requests ----------------------------------------------------

id=0PARKED000000001
jcpy master "$SOCK" "HELLO master parked" "NEXT" "DONE parked/ZZ0000000000000009.00 - 1 0 0 0" \
	"DONE parked/ZZ$id.00 parked/ZY$id.00 1 0" \
	"!rename parked/ZZ$id.00 parked/ZY$id.00 3600" \
	"DONE parked/ZZ$id.00 parked/ZY$id.00 0 0 1 @NOW+3600" >"$OUT"
check_grep "NEXT hands out the ready message" "$OUT" "MSG parked/ZZ$id.00"
check_line "and says no MORE when it was the only one due" "$OUT" 2 "MSG parked/ZZ$id.00"
check_grep "DONE for a message the job does not hold is refused" "$OUT" \
	"ERR not+20a+20message+20this+20job+20is+20delivering"
check_grep "DONE with missing fields is refused" "$OUT" "ERR expected+20DONE+20<path>"
check_line "a complete DONE is accepted" "$OUT" 5 "OK"
check_state "the deferred message is delayed" channel.parked.delayed 1
check_state "and no longer in progress" in_progress 0

jcpy admin "$SOCK" "RETRY $id" "RETRY parked" >"$OUT"
check_line "RETRY by queue id makes it due" "$OUT" 2 "OK 1"
check_line "RETRY of a channel with nothing delayed makes none due" "$OUT" 3 "OK 0"
check_state "it is ready again" channel.parked.ready 1
jcpy master "$SOCK" "HELLO master parked" "NEXT" "!close" >"$OUT"
check_grep "the retried message comes with its new name" "$OUT" "MSG parked/ZY$id.00"
check_state "a job that goes away gives its message back" channel.parked.ready 1
check_grep "that is logged" "$LOG" "went away delivering $id: due again at once"

rel=$(queue_file parked2 0PARKED200000001 0)
jcpy notify "$NOTIFY" "E $rel"
check_state "a message of the second channel is tracked" channel.parked2.ready 1
jcpy master "$SOCK" "HELLO master parked2" "!drain 1" "NEXT" >"$OUT"
check_line "after MAX_LIFE_CONNS messages a job is told EXIT" "$OUT" 3 "EXIT"
jcpy master "$SOCK" "HELLO master parked2" "NEXT" >"$OUT"
check_line "with IDLE_LINGER=0 a job without work is told EXIT" "$OUT" 2 "EXIT"
jcpy master "$SOCK" "HELLO master parked2" "NEXT NOWAIT" "NEXT LATER" >"$OUT"
check_line "NEXT NOWAIT without work is answered NONE at once" "$OUT" 2 "NONE"
check_line "NEXT takes only NOWAIT" "$OUT" 3 "ERR expected+20NEXT+20or+20NEXT+20NOWAIT"

rel=$(queue_file tcp_auth 0TCPAUTH00000001 0)
jcpy notify "$NOTIFY" "E $rel"
wait_until 100 grep -q "of channel tcp_auth exited: exit status 1" "$LOG"
ok $? "a master job that fails is logged with its exit status"
check_state "its message stays queued" channel.tcp_auth.queued 1

# ---- delivery by imta-master ------------------------------------------------

rel=$(queue_file bitbucket 0BITBUCKET000001 0)
jcpy notify "$NOTIFY" "E $rel"
# Generous waits: under the sanitizers on a loaded machine a master job
# takes a while to start.
wait_until 300 test ! -e "$QUEUE/$rel"
delivered=$?
[ $delivered -ne 0 ] && { diag_file "$LOG"; diag_file "$T/jc.err"; ls -l "$T/plugins" | sed 's/^/# /'; }
ok $delivered "a message to the bitbucket channel is delivered"
counters_show() {
	jcpy admin "$SOCK" COUNTERS | grep -xF "$1" >/dev/null
}
wait_until 100 counters_show "bitbucket 1 1 0 0"
ok $? "COUNTERS show it enqueued and delivered"
rel=$(queue_file bitbucket 0BITBUCKET000002 0)
wait_until 300 test ! -e "$QUEUE/$rel"
ok $? "a file whose notice was lost is found by the periodic scan"

jcpy admin "$SOCK" SHUTDOWN >"$OUT"
check_grep "SHUTDOWN is acknowledged" "$OUT" "OK"
wait_until 100 gone "$JC_PID"
ok $? "the controller exits after SHUTDOWN"
wait "$JC_PID"
ok $? "with status 0"
JC_PID=""
! test -e "$PIDFILE" && ! test -e "$SOCK" && ! test -e "$NOTIFY"
ok $? "the pid file and the sockets are removed"

# ---- the rebuild at start ------------------------------------------------------

jcpy queue-range "$QUEUE" parked 100 219
queue_file parked 0HELD00000000001 0 0 held >/dev/null
start_jc
check_state "the first scan reclaims 3/4 of MAX_MESSAGES" tracked 75
check_state "untried files come first" delayed 0
check_state "the rest is left on disk and remembered" overflow 1
jcpy master "$SOCK" "HELLO master parked" "!drain 30" >"$OUT"
check_line "a master drains 30 of them" "$OUT" 31 "OK"
check_state "below half of MAX_MESSAGES a rescan reclaims up to 3/4 again" tracked 75
jcpy master "$SOCK" "HELLO master parked" "NEXT" "!close" >"$OUT"
sed -n 2p "$OUT" | grep -qx 'MSG parked/Z[A-Z]0*[0-9A-Z]*\.00 MORE'
ok $? "NEXT says MORE when other messages of the channel are due"
kill -TERM "$JC_PID"
wait_until 100 gone "$JC_PID"
wait "$JC_PID"
ok $? "SIGTERM stops the controller with status 0"
JC_PID=""

rm -f "$QUEUE"/parked/ZZ*.00
jcpy queue-range "$QUEUE" parked 300 319
"$JC" --config "$C" >"$OUT" 2>"$ERR"
ok $? "a detached start returns 0 once the controller is ready"
JC_PID=$(cat "$PIDFILE" 2>/dev/null)
check_state "held files are not tracked; tried ones are, by their mtime" channel.parked.queued 21
check_state "the tried file is delayed" channel.parked.delayed 1
jcpy admin "$SOCK" SHUTDOWN >/dev/null
wait_until 100 gone "$JC_PID"
ok $? "the detached controller stops on SHUTDOWN"
JC_PID=""

# Started by root, the controller runs as IMTA_USER and takes connections
# from that user: the master jobs it starts and the enqueuers run as it.
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
	sed -i "s/^IMTA_USER=.*/IMTA_USER=nobody/" "$C/imta_tailor"
	chown -R nobody "$T/var"
	"$JC" --config "$C" -f >"$OUT" 2>"$ERR" &
	JC_PID=$!
	wait_until 100 test -S "$SOCK"
	# A Python that user can run (a per-user installation may not be).
	user_py=/usr/bin/python3
	runuser -u nobody -- "$PY" -c pass 2>/dev/null && user_py=$PY
	runuser -u nobody -- "$user_py" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"HELLO admin\n")
print(s.recv(100).decode().strip())' "$SOCK" >"$T/as-user" 2>&1
	check_line "after dropping root it serves IMTA_USER's connections" "$T/as-user" 1 "OK 1"
	awk '/^Uid:/ { print $2 }' "/proc/$JC_PID/status" >"$T/uid"
	check_line "it runs as IMTA_USER" "$T/uid" 1 "$(id -u nobody)"
	stop_jc
else
	ok 0 "# SKIP dropping root needs root and the user nobody"
	ok 0 "# SKIP dropping root needs root and the user nobody"
fi

sed -i "s/^IMTA_USER=.*/IMTA_USER=nosuchuser$$/" "$C/imta_tailor"
check_run "a missing IMTA_USER is refused" 1 "$JC" --config "$C" -f
check_grep "naming the user" "$ERR" "IMTA_USER \"nosuchuser$$\" does not exist"

finish
