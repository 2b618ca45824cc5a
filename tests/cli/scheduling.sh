#!/bin/bash
# The job controller's scheduling, end to end through imta-master and a
# test channel: every message is delivered when the backlog is many times
# MAX_MESSAGES; retries follow the channel's backoff list; JOB_LIMIT and
# maxjobs are never exceeded, by the controller's count or the processes
# that run.
#
# Only the job controller this test starts is signalled, through imsimta
# stop (which uses its pid file).
. "$abs_top_srcdir/tests/cli/lib.sh"
make_instance
plan 15

export IMTA_LIBEXEC="${IMTA_LIBEXEC:-$abs_top_builddir/core/libexec}"
install -m 644 "$abs_top_builddir/tests/plugins/.libs/testchannel.so" "$T/plugins/"
RECORD="$T/outcomes"
SOCK="$T/var/run/job_controller.sock"
printf 'Subject: scheduling\n\nbody\n' >"$T/message"

# state KEY: one value of the job controller's STATE.
state() {
	python3 - "$SOCK" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
f = s.makefile("rw")
f.write("HELLO admin\n"); f.flush(); f.readline()
f.write("STATE\n"); f.flush()
for line in f:
    line = line.rstrip("\n")
    if line == ".":
        break
    k, _, v = line.partition(" ")
    if k == sys.argv[2]:
        print(v)
PY
}

# configure MAX_MESSAGES JOB_LIMIT CHANNEL-KEYWORDS: the test channel "test"
# in pool TESTPOOL, with an empty queue and a fresh record of outcomes.
configure() {
	rm -rf "$T/var/queue/test"
	cat >"$C/job_controller.cnf" <<EOT
MAX_MESSAGES=$1
SYNCH_TIME=2
[POOL=DEFAULT]
JOB_LIMIT=10
[POOL=TESTPOOL]
JOB_LIMIT=$2
[CHANNEL=test]
IDLE_LINGER=1
EOT
	sed -i '/^test /,/^test-daemon$/d' "$C/imta.cnf"
	printf '\ntest testchannel %s pool TESTPOOL %s\ntest-daemon\n' "$RECORD" "$3" >>"$C/imta.cnf"
	rm -f "$RECORD"
}

enqueue() {
	# enqueue COUNT LOCALPART-PREFIX
	for i in $(seq 1 "$1"); do
		"$IMSIMTA" --config "$C" enqueue -channel=test "$2$i@example.com" <"$T/message" \
			>/dev/null || return 1
	done
}

start() {
	"$IMSIMTA" --config "$C" start job_controller >/dev/null 2>"$ERR"
}

stop() {
	"$IMSIMTA" --config "$C" stop job_controller --timeout 20 >/dev/null 2>&1
}

queued() {
	find "$T/var/queue/test" -name 'Z*' -type f 2>/dev/null | wc -l
}

# ---- a backlog many times MAX_MESSAGES --------------------------------------
configure 100 10 "maxjobs 2"
enqueue 250 user
ok $? "250 messages are enqueued with the job controller stopped"
start
ok $? "the job controller starts with a backlog of 2.5 x MAX_MESSAGES"
max_tracked=0
for _ in $(seq 1 600); do
	t=$(state tracked)
	[ -n "$t" ] && [ "$t" -gt "$max_tracked" ] && max_tracked=$t
	[ "$(queued)" -eq 0 ] && break
	sleep 0.1
done
[ "$(queued)" -eq 0 ]
ok $? "every message is delivered (left: $(queued))"
[ "$(cut -d' ' -f2 "$RECORD" | sort -u | wc -l)" -eq 250 ]
ok $? "250 distinct messages reached the channel"
[ "$(wc -l <"$RECORD")" -eq 250 ]
ok $? "none was delivered twice"
[ "$max_tracked" -le 100 ]
ok $? "at most MAX_MESSAGES were tracked at once (saw $max_tracked)"
stop

# ---- retries follow the backoff list ------------------------------------------
configure 1000 10 'backoff "pt1s" "pt2s" "pt3s"'
enqueue 1 defer
start
sleep 9
stop
times=$(awk '{ print $1 }' "$RECORD")
n=$(echo "$times" | wc -l)
[ "$n" -ge 4 ]
ok $? "a deferred message is tried again and again ($n attempts in 9 s)"
gaps=$(echo "$times" | awk 'NR > 1 { printf "%d ", $1 - prev } { prev = $1 }')
echo "# gaps between attempts (ms): $gaps"
set -- $gaps
# The controller schedules with one-second resolution; a retry must never
# come early, and should come within 1.5 s of its time.
[ "$1" -ge 900 ] && [ "$1" -le 2600 ]
ok $? "the first retry comes after about 1 s ($1 ms)"
[ "$2" -ge 1900 ] && [ "$2" -le 3600 ]
ok $? "the second after about 2 s ($2 ms)"
[ "$3" -ge 2900 ] && [ "$3" -le 4600 ]
ok $? "the third after about 3 s ($3 ms)"
awk '{ print $4 }' "$RECORD" | sort -u | grep -qx Q
ok $? "every attempt was a deferral"

# ---- JOB_LIMIT and maxjobs ----------------------------------------------------
# sample LIMIT: run slow messages and watch both the controller's count of
# jobs in the pool and the master processes actually running.
sample() {
	local pid max_state=0 max_procs=0 s p
	start || return 1
	pid=$(cat "$T/var/run/job_controller.pid")
	for _ in $(seq 1 400); do
		s=$(state pool.TESTPOOL.jobs)
		p=$(pgrep -P "$pid" | wc -l)
		[ -n "$s" ] && [ "$s" -gt "$max_state" ] && max_state=$s
		[ "$p" -gt "$max_procs" ] && max_procs=$p
		[ "$(queued)" -eq 0 ] && break
		sleep 0.1
	done
	stop
	echo "$max_state $max_procs $(queued)"
}

configure 1000 2 "maxjobs 3 threaddepth 1"
enqueue 12 slow
read -r jobs procs left <<<"$(sample)"
[ "$left" -eq 0 ]
ok $? "slow messages are all delivered with JOB_LIMIT=2 (left: $left)"
[ "$jobs" -eq 2 ] && [ "$procs" -le 2 ]
ok $? "JOB_LIMIT=2 caps maxjobs 3: at most 2 jobs (controller $jobs, processes $procs)"

configure 1000 10 "maxjobs 3 threaddepth 1"
enqueue 12 slow
read -r jobs procs left <<<"$(sample)"
[ "$left" -eq 0 ]
ok $? "slow messages are all delivered with maxjobs 3 (left: $left)"
[ "$jobs" -eq 3 ] && [ "$procs" -le 3 ]
ok $? "maxjobs 3 under JOB_LIMIT=10: at most 3 jobs (controller $jobs, processes $procs)"
finish
