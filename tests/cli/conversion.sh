#!/bin/bash
# The conversion channel end to end: messages are queued with `imsimta
# enqueue` from source channel tcp_local to a parked destination channel
# (never delivered, so the converted message can be read back from its
# queue file); the CONVERSIONS mapping diverts them through the
# conversion channel, whose master the job controller runs.
#   - a converter that upper-cases text/plain: the destination gets the
#     converted part, the attachment untouched, and the converter saw only
#     the documented environment;
#   - CONVERSIONS says No (source l): queued as it is, no converter run;
#   - a failing converter: the message stays queued for retry, original
#     intact, with the exit status and the converter's words; with
#     on-error=return it goes back to the sender (original attached);
#   - a converter that hangs (and its child): both killed at the time
#     limit, the message deferred;
#   - kill -9 of the conversion master during a batch: every message
#     still arrives.
#
# Only processes this test starts are signalled: the job controller through
# imsimta stop (its pid file) and its master jobs by the pids pgrep -P gives.
. "$abs_top_srcdir/tests/cli/lib.sh"
make_instance
plan 26

export IMTA_LIBEXEC="${IMTA_LIBEXEC:-$abs_top_builddir/core/libexec}"
Q="$T/var/queue"
RUN="$T/var/run"
rm -f "$T/plugins/"*.so
install -m 644 "$abs_top_builddir/plugins/conversion/.libs/conversion.so" "$T/plugins/"

cat >"$C/imta.cnf" <<EOF
dest.example    \$U%\$D@parked-daemon
sender.example  \$U%\$D@senders-daemon

defaults notices 1 2 4 logging

l pool NOPOOL
mail.example.com

tcp_local pool NOPOOL
tcp-daemon

parked pool NOPOOL
parked-daemon

senders pool NOPOOL
senders-daemon

conversion conversion pool CONVPOOL backoff "pt1s"
conversion-daemon
EOF
cat >"$C/job_controller.cnf" <<'EOF'
MAX_MESSAGES=1000
SYNCH_TIME=1
[POOL=DEFAULT]
JOB_LIMIT=2
[POOL=CONVPOOL]
JOB_LIMIT=1
[CHANNEL=conversion]
IDLE_LINGER=1
EOF
cat >"$C/mappings" <<'EOF'
CONVERSIONS

  IN-CHAN=tcp_local;OUT-CHAN=parked;CONVERT   Yes
  IN-CHAN=l;OUT-CHAN=*;CONVERT                No
EOF
cat >"$C/conversions" <<EOF
! Upper-case plain text; the other entries fail in their own ways.
in-chan=tcp_local; out-chan=parked; in-type=text; in-subtype=plain;
  command="$T/upper.sh INPUT_FILE OUTPUT_FILE"; timeout=10

in-chan=tcp_*; in-type=text; in-subtype=x-fail; command="$T/fail.sh"
in-subtype=x-bounce; command="$T/fail.sh"; on-error=return
in-subtype=x-hang; command="$T/hang.sh"; timeout=2
in-subtype=x-slow; command="$T/slow.sh \$INPUT_FILE \${OUTPUT_FILE}"; out-subtype=plain
EOF
cat >"$T/upper.sh" <<EOF
#!/bin/sh
env | sort >"$T/env.last"
echo "\$PART_NUMBER \$INPUT_TYPE/\$INPUT_SUBTYPE" >>"$T/ran"
tr 'a-z' 'A-Z' <"\$1" >"\$2"
EOF
cat >"$T/fail.sh" <<'EOF'
#!/bin/sh
echo "cannot convert this" >&2
exit 3
EOF
cat >"$T/hang.sh" <<EOF
#!/bin/sh
sleep 60 &
echo \$! >"$T/hang.child"
echo \$\$ >"$T/hang.pid"
sleep 60
EOF
cat >"$T/slow.sh" <<'EOF'
#!/bin/sh
sleep 0.4
tr 'a-z' 'A-Z' <"$1" >"$2"
EOF
chmod 755 "$T/upper.sh" "$T/fail.sh" "$T/hang.sh" "$T/slow.sh"

stop() {
	"$IMSIMTA" --config "$C" stop job_controller --timeout 20 >/dev/null 2>&1
}
trap 'stop; rm -rf "$T"' EXIT

alive() {
	local state
	state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

count() {
	find "$Q/$1" -type f -name '*.00' 2>/dev/null | wc -l
}

# has CHANNEL N: at least N queue files in CHANNEL's queue.
has() {
	[ "$(count "$1")" -ge "$2" ]
}

empty() {
	[ "$(count "$1")" -eq 0 ]
}

# file_with CHANNEL TEXT: the queue file of CHANNEL holding TEXT.
file_with() {
	grep -l -r -F -e "$2" "$Q/$1" 2>/dev/null | head -n 1
}

# enqueue SOURCE SUBJECT SUBTYPE: a two-part message from SOURCE.
enqueue() {
	printf 'From: ann@sender.example\nSubject: %s\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=BB\n\n--BB\nContent-Type: text/%s\n\nhello world, %s\n--BB\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAAECAwQ=\n--BB--\n' \
		"$2" "$3" "$2" >"$T/msg-$2"
	"$IMSIMTA" --config "$C" enqueue -source_channel="$1" -from=ann@sender.example \
		"bob@dest.example" <"$T/msg-$2" >/dev/null 2>>"$T/enqueue.err"
}

check_run "the job controller starts" 0 "$IMSIMTA" --config "$C" start job_controller

# ---- converted on the way -------------------------------------------------
enqueue tcp_local upper plain
wait_until 150 has parked 1 && wait_until 50 empty conversion
ok $? "CONVERSIONS diverts the message and the converted one reaches parked"
f=$(file_with parked "Subject: upper")
check_grep "the text part is converted" "$f" "HELLO WORLD, UPPER"
check_grep "and labelled as the converter's output" "$f" "Content-Transfer-Encoding: 7bit"
check_grep "the attachment is untouched" "$f" \
	"Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

AAECAwQ="
check_grep "the converted message comes from the conversion channel" "$f" "source conversion"
check_grep "the converter got the part's type" "$T/env.last" "INPUT_TYPE=text"
check_no_grep "and a clean environment" "$T/env.last" "IMTA_CONFIG"
[ "$(grep -c . "$T/env.last")" -le 17 ]
ok $? "only the documented variables ($(grep -c . "$T/env.last"))"
check_grep "mail.log shows the diversion" "$T/var/log/mail.log_current" " tcp_local conversion E "

# ---- CONVERSIONS says No ----------------------------------------------------
runs=$(wc -l <"$T/ran")
enqueue l plain plain
wait_until 50 has parked 2
ok $? "a message from l is queued to parked directly"
f=$(file_with parked "Subject: plain")
check_grep "unconverted" "$f" "hello world, plain"
[ "$(wc -l <"$T/ran")" -eq "$runs" ] && empty conversion
ok $? "and no converter ran"

# ---- a failing converter ----------------------------------------------------
enqueue tcp_local failing x-fail
wait_until 100 grep -q -r "exited+20with+20status+203" "$Q/conversion"
ok $? "a failing converter defers the message"
f=$(file_with conversion "Subject: failing")
check_grep "the diagnostic names the program and its words" "$f" "cannot+20convert+20this"
cmp -s <(tail -c +$(($(grep -b -m1 -x '' "$f" | cut -d: -f1) + 2)) "$f" | head -c "$(stat -c %s "$T/msg-failing")") "$T/msg-failing"
ok $? "the queued original is intact"
empty parked || [ "$(count parked)" -eq 2 ]
ok $? "nothing half converted went on"

enqueue tcp_local bounced x-bounce
wait_until 100 has senders 1
ok $? "on-error=return sends a failure notice to the sender"
f=$(file_with senders "Subject: bounced")
check_grep "saying why" "$f" "5.6.5 conversion failed"
check_grep "with the original attached" "$f" "hello world, bounced"
wait_until 50 eval '[ -z "$(file_with conversion "Subject: bounced")" ]'
ok $? "and the message leaves the conversion queue"

# ---- a converter that hangs -------------------------------------------------
enqueue tcp_local hanging x-hang
wait_until 100 grep -q -r "time+20limit+20of+202+20s" "$Q/conversion"
ok $? "a hanging converter is killed at the time limit and the message deferred"
child=$(cat "$T/hang.child" 2>/dev/null)
parent=$(cat "$T/hang.pid" 2>/dev/null)
[ -n "$child" ] && [ -n "$parent" ] && wait_until 30 eval "! alive $child && ! alive $parent"
ok $? "the converter and its child are gone"

# ---- kill -9 of the conversion master during a batch -----------------------
before=$(count parked)
for i in 1 2 3 4 5; do
	enqueue tcp_local "batch$i" x-slow
done
wait_until 150 has parked $((before + 1))
jc=$(cat "$RUN/job_controller.pid" 2>/dev/null)
masters=$(pgrep -P "$jc" 2>/dev/null)
[ -n "$masters" ] && kill -9 $masters
ok $? "the conversion master is killed mid-batch"
wait_until 300 has parked $((before + 5))
ok $? "every message of the batch still arrives"
missing=0
for i in 1 2 3 4 5; do
	[ -n "$(file_with parked "Subject: batch$i")" ] || missing=$((missing + 1))
done
[ "$missing" -eq 0 ] && grep -q "HELLO WORLD, BATCH" "$(file_with parked "Subject: batch1")"
ok $? "converted, none lost"

stop
finish
