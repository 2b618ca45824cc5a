#!/bin/bash
# The defragment channel end to end: message/partial parts are queued with
# `imsimta enqueue` from tcp_local to channel parked, which is marked
# defragment and never delivers (so what reaches it can be read back from
# its queue files); the job controller runs the defragment master.
#   - three parts in the order 3, 1, 2, with the job controller stopped
#     before the last one is queued and started again after it: one
#     reassembled message reaches parked, exactly as RFC 2046 5.2.2.2
#     builds it, and no part is left anywhere;
#   - a set missing its second part (reassemble time limit 4 s): the parts
#     wait, then go on to parked as they are, not before the limit.
#
# Only processes this test starts are signalled: the job controller through
# imsimta stop (its pid file).
. "$abs_top_srcdir/tests/cli/lib.sh"
make_instance
plan 17

export IMTA_LIBEXEC="${IMTA_LIBEXEC:-$abs_top_builddir/core/libexec}"
Q="$T/var/queue"
LOGDIR="$T/var/log"
rm -f "$T/plugins/"*.so
install -m 644 "$abs_top_builddir/plugins/conversion/.libs/conversion.so" "$T/plugins/"

# write_cnf LIMIT: the configuration, with the reassemble time limit LIMIT.
write_cnf() {
	cat >"$C/imta.cnf" <<EOF
dest.example    \$U%\$D@parked-daemon
sender.example  \$U%\$D@senders-daemon

defaults notices 1 2 4 logging

l pool NOPOOL
mail.example.com

tcp_local pool NOPOOL
tcp-daemon

parked defragment pool NOPOOL
parked-daemon

senders pool NOPOOL
senders-daemon

defragment reassemble $1 maxjobs 1 pool DEFRAGPOOL backoff "pt1s"
defragment-daemon
EOF
}
write_cnf '"pt1h"'
cat >"$C/job_controller.cnf" <<'EOF'
MAX_MESSAGES=1000
SYNCH_TIME=1
[POOL=DEFAULT]
JOB_LIMIT=2
[POOL=DEFRAGPOOL]
JOB_LIMIT=1
[CHANNEL=defragment]
IDLE_LINGER=1
EOF

start() {
	"$IMSIMTA" --config "$C" start job_controller >"$OUT" 2>"$ERR"
}

stop() {
	"$IMSIMTA" --config "$C" stop job_controller --timeout 20 >/dev/null 2>&1
}
trap 'stop; rm -rf "$T"' EXIT

count() {
	find "$Q/$1" -type f -name '*.00' 2>/dev/null | wc -l
}

count_is() {
	[ "$(count "$1")" -eq "$2" ]
}

# file_with CHANNEL TEXT: the queue file of CHANNEL holding TEXT.
file_with() {
	grep -l -r -F -e "$2" "$Q/$1" 2>/dev/null | head -n 1
}

# content FILE: the message of a queue file (what follows its envelope).
content() {
	tail -c +$(($(grep -b -m1 -x '' "$1" | cut -d: -f1) + 2)) "$1"
}

# part SET NUMBER TOTAL-PARAM BODY: queue part NUMBER of SET for bob.
part() {
	{
		printf 'From: ann@sender.example\nTo: bob@dest.example\n'
		printf 'Subject: part %s of set %s\nMessage-ID: <%s.%s@sender.example>\n' \
			"$2" "$1" "$1" "$2"
		printf 'MIME-Version: 1.0\n'
		printf 'Content-Type: message/partial; id="%s@sender.example"; number=%s%s\n\n' \
			"$1" "$2" "$3"
		printf '%s' "$4"
	} >"$T/part-$1-$2"
	"$IMSIMTA" --config "$C" enqueue -source_channel=tcp_local -from=ann@sender.example \
		bob@dest.example <"$T/part-$1-$2" >/dev/null 2>>"$T/enqueue.err"
}

# The enclosed message's header and first lines travel in part 1.
first_body() {
	printf 'Subject: %s\nMessage-ID: <%s@sender.example>\nMIME-Version: 1.0\n' "$2" "$1"
	printf 'Content-Type: text/plain; charset=us-ascii\n\nfirst line of %s\n' "$1"
}

# "waits for part(s) 2" in a queue file of defragment (as the queue writes it).
waits_for_two() {
	grep -q -r -F "waits+20for+20part(s)+202" "$Q/defragment" 2>/dev/null ||
		grep -q -r -F "waits for part(s) 2" "$Q/defragment" 2>/dev/null
}

check_run "the job controller starts" 0 start

# ---- shuffled, with a restart between the parts ---------------------------
part setA 3 "; total=3" $'third line of setA\n'
part setA 1 "" "$(first_body setA 'The whole story')"$'\n'
wait_until 100 count_is defragment 2
ok $? "parts 3 and 1 are diverted to the defragment channel"
count_is parked 0
ok $? "nothing reaches parked while a part is missing"
wait_until 150 waits_for_two
ok $? "the parts wait for part 2"
stop
ok $? "the job controller stops"
part setA 2 "" $'second line of setA\n'
check_run "the job controller starts again after part 2 was queued" 0 start
wait_until 200 count_is parked 1 && wait_until 100 count_is defragment 0
r=$?
ok $r "one reassembled message reaches parked and the parts are gone"
[ $r -eq 0 ] || diag_file "$LOGDIR/defragment_master.log"
f=$(file_with parked "Subject: The whole story")
[ -n "$f" ] && content "$f" >"$T/got"
# Part 1's header fields but Subject, Message-ID, MIME-Version and
# Content-*, then those of the enclosed header, then the three bodies.
sed -n '/^From: /,/^To: /p' "$T/part-setA-1" >"$T/want"
first_body setA 'The whole story' | sed '/^$/,$d' >>"$T/want"
printf '\nfirst line of setA\nsecond line of setA\nthird line of setA\n' >>"$T/want"
cmp -s "$T/want" "$T/got"
r=$?
ok $r "it is the message of RFC 2046 5.2.2.2, body in order"
[ $r -eq 0 ] && [ -n "$f" ] || { diag_file "$T/want"; diag_file "$T/got"; }
check_grep "it comes from the defragment channel" "$f" "source defragment"
[ -z "$(file_with parked "message/partial")" ] && [ -z "$(file_with defragment "setA")" ]
ok $? "no part went on by itself"
check_grep "the defragment master logged the reassembly" "$LOGDIR/defragment_master.log" \
	"reassembled from 3 parts (id setA@sender.example); queued to parked"

# ---- a missing part: sent on after the time limit -------------------------
stop
write_cnf 4
check_run "the job controller starts with a 4 s reassemble limit" 0 start
began=$(date +%s)
part setB 1 "" "$(first_body setB 'The incomplete story')"$'\n'
part setB 3 "; total=3" $'third line of setB\n'
wait_until 300 eval '[ -n "$(file_with parked "part 1 of set setB")" ] &&
	[ -n "$(file_with parked "part 3 of set setB")" ]'
ok $? "after the limit both parts go on to parked"
waited=$(($(date +%s) - began))
[ "$waited" -ge 4 ]
ok $? "not before it (${waited} s)"
f=$(file_with parked "part 1 of set setB")
check_grep "unassembled: still message/partial" "$f" \
	'Content-Type: message/partial; id="setB@sender.example"; number=1'
wait_until 100 count_is defragment 0
ok $? "the defragment queue is empty"
check_grep "the master says what was missing" "$LOGDIR/defragment_master.log" \
	"part(s) 2 still missing after the time limit"

stop
finish
