#!/bin/bash
# SMTP crash safety: clients send messages while the test kills workers
# with SIGKILL at random moments, and once the dispatcher itself.  Every
# message the server acknowledged with 250 must be in the queue afterwards,
# complete (its Subject line and body are there), and nothing half-written
# may be left anywhere in the queue.
#
# Only processes this test started are signalled: the dispatcher and job
# controller by the pids the shell got, the workers by the pids the
# dispatcher (our child) reports as its own children.
. "$abs_top_srcdir/tests/cli/smtp-lib.sh"
smtp_instance
plan 8

# Messages stay queued where the server put them.
smtp_park_channels
smtp_start_jc
ok $? "the job controller starts"
smtp_start_dispatcher
ok $? "the dispatcher starts"

# The client: SESSIONS threads, each sending messages one after another
# and writing "<queue id> <subject>" for every 250; connection errors
# (a killed worker) just start a new session.  Stops when the file STOP
# appears, or after SECONDS at the latest.
cat >"$T/senders.py" <<'EOF'
import os, socket, sys, threading, time

port, seconds, sessions, out = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
stop_file = sys.argv[5]
lock = threading.Lock()
acked = open(out, "w")
end = time.monotonic() + seconds

def sending():
    return time.monotonic() < end and not os.path.exists(stop_file)

def reply(f):
    while True:
        line = f.readline()
        if not line:
            raise ConnectionError("closed")
        if line[3:4] != b"-":
            return line.decode("latin-1").rstrip("\r\n")

def session(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = s.makefile("rb")
    try:
        reply(f)
        s.sendall(b"EHLO crash.test\r\n"); reply(f)
        k = 0
        while sending():
            k += 1
            subject = "crash-%d-%d-%f" % (n, k, time.monotonic())
            s.sendall(b"MAIL FROM:<sender@example.org>\r\n"); reply(f)
            s.sendall(b"RCPT TO:<alice@example.com>\r\n")
            r = reply(f)
            if not r.startswith("250"):
                print("# RCPT refused: " + r, flush=True)
                return
            s.sendall(b"DATA\r\n"); reply(f)
            body = ("Subject: %s\r\n\r\n" % subject + "line of text\r\n" * 40 + ".\r\n")
            s.sendall(body.encode())
            r = reply(f)
            if r.startswith("250"):
                with lock:
                    acked.write("%s %s\n" % (r.split()[-1], subject))
                    acked.flush()
    finally:
        s.close()

def run(n):
    while sending():
        try:
            session(n)
        except (OSError, ConnectionError):
            time.sleep(0.05)

threads = [threading.Thread(target=run, args=(i,)) for i in range(sessions)]
for t in threads: t.start()
for t in threads: t.join()
EOF

# The senders go on until every round of kills is over: the dispatcher
# waits longer and longer before it replaces workers that die young.
"$PY" "$T/senders.py" "$SMTP_PORT" 60 6 "$T/acked" "$T/senders.stop" &
SENDERS=$!
has_worker() {
	[ -n "$(smtp_workers)" ]
}

kills=0
for round in 1 2 3 4 5 6 7 8; do
	sleep "0.$((RANDOM % 9 + 1))"
	# Up to 5 s for the dispatcher to replace the worker killed before: on
	# a loaded machine a round can come before it has.
	wait_until 50 has_worker && w=$(smtp_workers | head -n 1) &&
		kill -KILL "$w" 2>/dev/null && kills=$((kills + 1))
	if [ "$round" = 4 ]; then
		kill -KILL "$DISP_PID" 2>/dev/null && kills=$((kills + 1))
		wait "$DISP_PID" 2>/dev/null
		# Its workers drain and exit once their control socket closes.
		smtp_start_dispatcher
	fi
done
: >"$T/senders.stop"
wait "$SENDERS"
smtp_stop
# More files than acknowledgements is allowed: a worker killed between the
# commit and the 250 leaves a message the client will send again.
echo "# $kills kills, $(wc -l <"$T/acked") messages acknowledged"

[ "$(wc -l <"$T/acked")" -gt 20 ] && [ "$kills" -ge 5 ]
ok $? "messages were acknowledged while processes were being killed"

# One pass over the queue, not one find per message: a fast commit path
# acknowledges tens of thousands of messages in these seconds.
cat >"$T/check.py" <<'EOF'
import os, sys

queue, acked = sys.argv[1], sys.argv[2]
files = {}
for top, dirs, names in os.walk(queue):
    dirs[:] = [d for d in dirs if not d.startswith(".")]
    for name in names:
        if name.endswith(".00"):
            files[name[2:-3]] = os.path.join(top, name)
lost = incomplete = 0
for line in open(acked):
    qid, subject = line.split()
    path = files.get(qid)
    if path is None:
        lost += 1
        print("# lost: %s %s" % (qid, subject))
        continue
    lines = open(path, "rb").read().decode("latin-1").splitlines()
    if ("Subject: " + subject) not in lines or lines.count("line of text") != 40:
        incomplete += 1
        print("# incomplete: " + path)
print("%d %d" % (lost, incomplete))
EOF
"$PY" "$T/check.py" "$QUEUE" "$T/acked" >"$T/check.out"
grep '^#' "$T/check.out"
read -r lost incomplete <<<"$(tail -n 1 "$T/check.out")"
[ "$lost" -eq 0 ]
ok $? "no acknowledged message was lost ($lost lost)"
[ "$incomplete" -eq 0 ]
ok $? "every acknowledged message is complete ($incomplete incomplete)"

# Nothing half-written is visible: every file in the queue reads as a
# queue file (imsimta qm), and no temporary file is left after a restart
# of the job controller (it removes those of dead writers).
smtp_start_jc
"$abs_top_builddir/core/cli/imsimta" --config "$C" qm directory >"$OUT" 2>"$ERR"
files=$(queue_count)
listed=$(grep -cE "^ *[0-9]+ [0-9A-Z]{2}[0-9A-Z]{16}\.00 " "$OUT")
[ "$files" -eq "$listed" ] && ! grep -qi "cannot read\|error" "$ERR"
ok $? "every queue file reads ($files files, $listed listed)"
smtp_stop
[ -z "$(find "$QUEUE" -name '$*' -o -name '*.tmp')" ]
ok $? "no temporary file is left in the queue"
# The commit journal segments of the killed workers were recovered and
# removed by the processes that opened the queue after them.
[ -z "$(find "$QUEUE/.journal" -name '*.seg')" ]
ok $? "no commit journal segment is left"
finish
