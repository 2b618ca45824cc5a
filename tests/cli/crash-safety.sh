#!/bin/bash
# Crash safety of the queue, the job controller and master jobs: messages
# are enqueued to the bitbucket channel while the job controller and its
# master jobs are killed with SIGKILL at random moments and restarted.  In
# the end every acknowledged message must have been delivered or still be
# queued: none lost.  A message may be delivered twice only in the one
# documented window: delivered, and the master killed before the outcome
# was durable (the duplicate's first delivery then comes from a master
# that never logged the message as done).
#
# Only processes this test started are signalled: the controller by the
# pid in its pid file, master jobs as that pid's children.
. "$abs_top_srcdir/tests/cli/lib.sh"
make_instance
plan 10

MESSAGES=${CRASH_MESSAGES:-300}
ROUNDS=${CRASH_ROUNDS:-24}
RUN="$T/var/run"
LOG="$T/var/log"
QUEUE="$T/var/queue/bitbucket"
PIDFILE="$RUN/job_controller.pid"
KILLS=0
MASTER_KILLS=0
CONTROLLER_KILLS=0
MASTERS_SEEN=""

jc_pid() {
	[ -s "$PIDFILE" ] && cat "$PIDFILE"
}

# Is process $1 alive?  A zombie is not: nobody may have reaped it yet.
alive() {
	local state
	state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# The live master jobs of controller $1.
masters_of() {
	pgrep -P "$1" 2>/dev/null
}

# Queue files only: .journal holds the commit journal of live processes.
queued_count() {
	find "$QUEUE" -path "$QUEUE/.journal" -prune -o -type f -print 2>/dev/null | wc -l
}

stop_everything() {
	local pid
	pid=$(jc_pid)
	[ -n "$pid" ] && alive "$pid" &&
		"$IMSIMTA" --config "$C" stop job_controller --timeout 5 >/dev/null 2>&1
	for pid in $MASTERS_SEEN; do
		alive "$pid" && kill -9 "$pid" 2>/dev/null
	done
	rm -rf "$T"
}
trap stop_everything EXIT

check_run "imsimta start job_controller starts it" 0 "$IMSIMTA" --config "$C" start job_controller
pid=$(jc_pid)
[ -n "$pid" ] && alive "$pid"
ok $? "the pid file names a running job controller"

# The enqueuer: one message at a time, each id recorded once acknowledged.
(
	for i in $(seq 1 "$MESSAGES"); do
		printf 'Subject: crash test %d\n\nbody %d\n' "$i" "$i" |
			"$IMSIMTA" --config "$C" enqueue -from=test@example.com \
				"sink$i@bitbucket.example.com" >>"$T/acked" 2>>"$T/enqueue.err"
		[ $((i % 10)) -eq 0 ] && sleep 0.0$((RANDOM % 10))
	done
) &
ENQUEUER=$!

# Kill at random moments: the controller with its masters, the controller
# alone (its masters see the connection drop), or only the masters (the
# controller gives their messages back).
for round in $(seq 1 "$ROUNDS"); do
	sleep 0.$((RANDOM % 5 + 1))
	pid=$(jc_pid)
	[ -n "$pid" ] && alive "$pid" || continue
	children=$(masters_of "$pid")
	MASTERS_SEEN="$MASTERS_SEEN $children"
	case $((RANDOM % 3)) in
	0)	victims="$pid $children" ;;
	1)	victims="$pid" ;;
	2)	victims="$children" ;;
	esac
	[ -n "$victims" ] || continue
	kill -9 $victims 2>/dev/null
	KILLS=$((KILLS + 1))
	case " $victims " in *" $pid "*) CONTROLLER_KILLS=$((CONTROLLER_KILLS + 1)) ;; esac
	for victim in $victims; do
		[ "$victim" = "$pid" ] || MASTER_KILLS=$((MASTER_KILLS + 1))
	done
	sleep 0.1
	if ! alive "$pid"; then
		"$IMSIMTA" --config "$C" start job_controller >>"$T/restarts" 2>&1 ||
			echo "# restart failed: $(tail -1 "$T/restarts")"
	fi
done
wait "$ENQUEUER"

# Make sure a controller runs, then let it drain the queue (bounded).
pid=$(jc_pid)
if [ -z "$pid" ] || ! alive "$pid"; then
	"$IMSIMTA" --config "$C" start job_controller >>"$T/restarts" 2>&1
fi
for _ in $(seq 1 200); do
	[ "$(queued_count)" -eq 0 ] && break
	sleep 0.1
done
pid=$(jc_pid)
MASTERS_SEEN="$MASTERS_SEEN $(masters_of "$pid")"
ACKED=$(wc -l <"$T/acked")
STILL_QUEUED=$(queued_count)

# Every discard the bitbucket plugin logged ("discarded message ID"), with
# the pid of the master that did it, and every message a master logged as
# done once its outcome was durable ("ID bitbucket: attempt N: ...").
MASTER_LOG="$LOG/bitbucket_master.log"
touch "$MASTER_LOG"
sed -n 's/^.*imta-master\[\([0-9]*\)\]: info: bitbucket: discarded message \([0-9A-Z]*\) .*$/\1 \2/p' \
	"$MASTER_LOG" >"$T/discards"
sed -n 's/^.*imta-master\[\([0-9]*\)\]: notice: \([0-9A-Z]*\) bitbucket: attempt .*$/\1 \2/p' \
	"$MASTER_LOG" >"$T/recorded"
cut -d' ' -f1 "$T/acked" | sort -u >"$T/acked-ids"
cut -d' ' -f2 "$T/discards" | sort >"$T/delivered-all"
sort -u "$T/delivered-all" >"$T/delivered-ids"
find "$QUEUE" -path "$QUEUE/.journal" -prune -o -type f -printf '%f\n' 2>/dev/null |
	cut -c3-18 | sort -u >"$T/queued-ids"
sort -u "$T/delivered-ids" "$T/queued-ids" >"$T/accounted"
LOST=$(comm -23 "$T/acked-ids" "$T/accounted" | wc -l)
DELIVERED=$(comm -12 "$T/acked-ids" "$T/delivered-ids" | wc -l)
DUPLICATES=$(uniq -d "$T/delivered-all" | wc -l)
# A duplicate outside the window: every delivery of it but one was by a
# master that also recorded it, i.e. it was delivered again after its
# outcome was durable.
OUTSIDE=0
for id in $(uniq -d "$T/delivered-all"); do
	unrecorded=0
	while read -r mpid mid; do
		[ "$mid" = "$id" ] || continue
		grep -qx "$mpid $id" "$T/recorded" || unrecorded=$((unrecorded + 1))
	done <"$T/discards"
	deliveries=$(grep -c " $id\$" "$T/discards")
	[ "$unrecorded" -ge $((deliveries - 1)) ] || OUTSIDE=$((OUTSIDE + 1))
done

echo "# messages $MESSAGES, acknowledged $ACKED, delivered $DELIVERED, still queued $STILL_QUEUED,"
echo "# duplicates $DUPLICATES (outside the window: $OUTSIDE), lost $LOST"
echo "# kills $KILLS: the job controller $CONTROLLER_KILLS times, master jobs $MASTER_KILLS times"

[ "$ACKED" -eq "$MESSAGES" ]
ok $? "every enqueue was acknowledged ($ACKED of $MESSAGES)"
[ -s "$T/enqueue.err" ] && diag_file "$T/enqueue.err"
[ "$LOST" -eq 0 ]
ok $? "no acknowledged message was lost ($LOST lost)"
[ "$STILL_QUEUED" -eq 0 ]
ok $? "the restarted job controller delivered everything ($STILL_QUEUED still queued)"
[ "$OUTSIDE" -eq 0 ]
ok $? "duplicates ($DUPLICATES) only where a master died before its record was durable"
[ "$DUPLICATES" -le "$KILLS" ]
ok $? "at most one duplicate per kill ($DUPLICATES duplicates, $KILLS kills)"

check_run "imsimta stop job_controller stops it" 0 "$IMSIMTA" --config "$C" stop job_controller
! alive "$pid"
ok $? "the job controller process is gone"
running=""
for mpid in $MASTERS_SEEN; do
	alive "$mpid" && running="$running $mpid"
done
[ -z "$running" ]
ok $? "no master job outlives its job controller${running:+ (still running:$running)}"
finish
