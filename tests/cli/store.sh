#!/bin/bash
# imsimta reconstruct and the store seen through imsimta: the system area
# deleted (--check finds it, exit 1; a repair restores usage and the folder
# list; --check is then clean), a folder's index deleted (UIDs and listing
# come back), leftovers of an interrupted delivery (removed, not counted),
# snapshots (--snapshot, --list-snapshots, --restore with and without
# --yes), the hash directories imta-store(5) documents, and the errors:
# unknown users and snapshots, bad names, an unreadable store.
. "$abs_top_srcdir/tests/cli/lib.sh"
make_instance
plan 61

export TZ=UTC
MB() { "$IMSIMTA" --config "$C" mboxutil "$@"; }
RC() { "$IMSIMTA" --config "$C" reconstruct "$@"; }
STORE="$T/var/store"
ALICE="$STORE/partition/primary/=user/e7/13/=alice"

# check_output DESCRIPTION: $OUT is exactly the text on standard input.
check_output() {
	if diff -u - "$OUT" >"$T/diff"; then
		ok 0 "$1"
	else
		diag_file "$T/diff"
		ok 1 "$1"
	fi
}

# check_same DESCRIPTION FILE: $OUT is exactly FILE (a listing taken before).
check_same() {
	if diff -u "$2" "$OUT" >"$T/diff"; then
		ok 0 "$1"
	else
		diag_file "$T/diff"
		ok 1 "$1"
	fi
}

# A store with two users, a sub-folder and five messages.
deliver() {
	printf 'From: %s\nSubject: %s\nMessage-ID: <%s@example.net>\n\nbody of %s\n' \
		"$3" "$4" "$4" "$4" | MB --deliver "$1" --date "$2" >/dev/null
}
MB -c alice >/dev/null
MB -c alice/Archive >/dev/null
MB -c bob >/dev/null
deliver alice 2026-02-01T10:00:00Z ann@example.org one
deliver alice 2026-02-01T11:00:00Z ann@example.org two
deliver alice 2026-02-01T12:00:00Z bea@example.org three
deliver alice/Archive 2026-01-01T00:00:00Z cy@example.org old
deliver bob 2026-02-02T00:00:00Z ann@example.org hello
MB -l >"$T/list.before"
MB -q >"$T/quota.before"
MB -m alice >"$T/inbox.before"

# ---- hashdir ------------------------------------------------------------------
check_run "hashdir of the documented user ids" 0 \
	"$IMSIMTA" --config "$C" hashdir alice bob mack1 fredb carol@example.org
check_output "gives the documented directories" <<EOF
e7/13
d4/a0
58/60
1e/59
e8/4f
EOF
test -f "$ALICE/store.idx"
ok $? "alice's INBOX is in the directory hashdir names"

# ---- a healthy store ------------------------------------------------------------
check_run "reconstruct --check of a consistent store" 0 RC --check
check_output "finds nothing" <<EOF
no problems found
EOF

# ---- the system area deleted ------------------------------------------------------
rm -rf "$STORE/mboxlist"
check_run "reconstruct --check without the system area finds problems" 1 RC --check
check_grep "and says how many" "$OUT" "found (imsimta reconstruct repairs"
lines=$(grep -vc 'found (imsimta reconstruct repairs' "$OUT")
summary=$(sed -n 's/^\([0-9]*\) problems\{0,1\} found.*/\1/p' "$OUT")
[ "$lines" -ge 1 ] && [ "$lines" = "$summary" ]
ok $? "one line per finding ($lines), as many as the summary counts"
check_run "--check changed nothing" 1 RC --check
check_run "reconstruct repairs" 0 RC
check_grep "and says so" "$OUT" "found and repaired"
check_run "reconstruct --check is then clean" 0 RC --check
check_output "and says so" <<EOF
no problems found
EOF
check_run "the folder list is back" 0 MB -l
check_same "exactly as before" "$T/list.before"
check_run "usage is counted again" 0 MB -q
check_same "exactly as before" "$T/quota.before"

# ---- a folder's index deleted -----------------------------------------------------
rm -f "$ALICE/store.idx"
check_run "reconstruct --check alice without her INBOX index" 1 RC --check alice
check_grep "names the folder" "$OUT" "alice INBOX"
check_run "reconstruct alice" 0 RC alice
check_run "her INBOX lists again" 0 MB -m alice
# Flags live in the index only: a rebuilt index cannot know them.
cut -c1-3,13-17,39- "$T/inbox.before" >"$T/inbox.before.cut"
cut -c1-3,13-17,39- "$OUT" >"$T/inbox.after.cut"
cmp -s "$T/inbox.before.cut" "$T/inbox.after.cut"
ok $? "with the same UIDs, sizes and headers"
cut -c19-37 "$T/inbox.before" >"$T/dates.before"
cut -c19-37 "$OUT" | cmp -s "$T/dates.before" -
ok $? "and arrival times (kept in the message files' times)"
check_run "the mailbox list" 0 MB -l
check_same "is as before" "$T/list.before"
check_run "new mail gets the next UID" 0 MB --deliver alice <"$T/inbox.before"
check_output "after the highest kept" <<EOF
delivered to alice/INBOX as UID 4
EOF
check_run "reconstruct of the sub-folder's index" 0 sh -c \
	"rm -f '$ALICE/+Archive/store.idx' && '$IMSIMTA' --config '$C' reconstruct alice"
check_run "keeps its message" 0 MB -m alice/Archive
check_grep "with its UID" "$OUT" "  1  "

# ---- leftovers of an interrupted delivery -------------------------------------------
mkdir -p "$ALICE/00"
printf 'Subject: half\n\nwritten\n' >"$ALICE/00/77.msg"
check_run "a message file above UIDNEXT is not a problem" 0 RC --check alice
check_run "reconstruct alice" 0 RC alice
test ! -e "$ALICE/00/77.msg"
ok $? "removes it"

# ---- snapshots ------------------------------------------------------------------
check_run "--list-snapshots without any" 0 RC --list-snapshots
check_output "says so" <<EOF
No snapshots.
EOF
check_run "--snapshot" 0 RC --snapshot
grep -Eq '^snapshot [0-9]{8}T[0-9]{6}Z$' "$OUT"
ok $? "prints the snapshot's name, a UTC time"
SNAP=$(sed -n 's/^snapshot //p' "$OUT")
test -d "$STORE/snapshots/$SNAP"
ok $? "under ROOT/snapshots"
check_run "--list-snapshots" 0 RC --list-snapshots
check_output "lists it" <<EOF
$SNAP
EOF
MB -q alice >"$T/quota.snap"
deliver alice 2026-03-01T00:00:00Z dan@example.org later
MB -q alice >"$T/quota.after"
check_run "--restore without --yes is refused" 64 RC --restore "$SNAP"
check_grep "and says what to do" "$ERR" "stop everything that uses the store, then add --yes"
check_run "--restore of an unknown snapshot" 67 RC --restore 20000101T000000Z --yes
check_grep "names it" "$ERR" 'no snapshot "20000101T000000Z"'
check_run "--restore of a path" 64 RC --restore ../mboxlist --yes
check_run "--restore --yes" 0 RC --restore "$SNAP" --yes
check_output "says what it restored" <<EOF
restored the system area from snapshot $SNAP
EOF
check_run "usage after the restore" 0 MB -q alice
check_same "counts the mail delivered since the snapshot" "$T/quota.after"
check_run "reconstruct --check after the restore" 0 RC --check

# ---- errors ---------------------------------------------------------------------
check_run "reconstruct of an unknown user" 67 RC nobody
check_grep "names the user" "$ERR" 'no such user "nobody" in the message store'
check_run "reconstruct of a name with a slash" 64 RC alice/INBOX
check_run "--snapshot with users" 64 RC --snapshot alice
check_run "--yes without --restore" 64 RC --yes
check_run "mboxutil -m of a folder name with a control character" 64 MB -m $'alice/a\tb'
# A system area that cannot be made, even by root: a file in its place.
mv "$STORE/mboxlist" "$T/mboxlist.away"
: >"$STORE/mboxlist"
check_run "reconstruct with an unusable system area" 74 RC --check
check_grep "says why" "$ERR" "the message store cannot be opened: "
rm -f "$STORE/mboxlist"
mv "$T/mboxlist.away" "$STORE/mboxlist"
check_run "and works again once it is back" 0 RC --check
echo "store.defaultpartition = no/slash" >"$C/store.cnf"
check_run "a bad store.cnf" 78 RC --check
check_grep "gives the position" "$ERR" "store.cnf:1:"
