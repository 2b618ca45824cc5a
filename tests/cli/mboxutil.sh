#!/bin/bash
# imsimta mboxutil and hashdir against a store filled with --deliver:
# create (users, folders, partitions), list (patterns, JSON), messages (text
# and JSON, hostile headers), print, quota (directory limits, store
# defaults, JSON), rename, delete (with and without --yes), and the exit
# statuses of every error: usage, bad names, unknown users and folders,
# existing mailboxes, configuration and I/O errors.
. "$abs_top_srcdir/tests/cli/lib.sh"
make_instance
plan 112

export TZ=UTC
MB() { "$IMSIMTA" --config "$C" mboxutil "$@"; }

# check_output DESCRIPTION: $OUT is exactly the text on standard input.
check_output() {
	if diff -u - "$OUT" >"$T/diff"; then
		ok 0 "$1"
	else
		diag_file "$T/diff"
		ok 1 "$1"
	fi
}

# check_json DESCRIPTION PYTHON-EXPRESSION: $OUT parses as JSON (bound to
# `j`) and the expression is true.
check_json() {
	if python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)' "$OUT" "$2" 2>"$T/json.err"; then
		ok 0 "$1"
	else
		echo "# expected: $2"
		diag_file "$OUT"
		diag_file "$T/json.err"
		ok 1 "$1"
	fi
}

cat >"$C/store.cnf" <<EOF
# Two partitions: primary in its default place, "second" elsewhere.
store.partition.second.path = $T/var/second
EOF

printf 'From: Alice Sender <sender@example.net>\nTo: alice@example.com\nSubject: First message\nDate: Fri, 02 Jan 2026 03:04:05 +0000\nMessage-ID: <1@example.net>\n\nHello.\n' >"$T/m1"
# CRLF line ends (stored with LF), an 8-bit From and a long Subject.
printf 'From: "Robert \303\205berg" <rob@example.org>\r\nTo: alice@example.com\r\nSubject: A very long subject line that goes on and on well past sixty characters\r\n\r\nBody line\r\n' >"$T/m2"
# An escape sequence in the Subject must not reach the terminal.
printf 'From: x@example.com\nSubject: escape \033[2J here\n\nbody\n' >"$T/m3"

# ---- usage -------------------------------------------------------------------
check_run "mboxutil without an action is a usage error" 64 MB
check_grep "and says which actions there are" "$ERR" "give exactly one of -l, -c, -d, -r, -q, -m, -P, --deliver"
check_run "two actions are a usage error" 64 MB -l -q
check_run "--json goes with -l, -q and -m only" 64 MB -c alice --json
check_run "-r needs two names" 64 MB -r alice/A
check_run "-P needs a UID" 64 MB -P alice
check_run "an unknown option" 64 MB -l --nonsense
check_run "mboxutil --help" 0 MB --help
check_grep "describes the mailbox names" "$OUT" '"alice/Archive/2026" a folder below it'

# ---- hashdir -------------------------------------------------------------------
check_run "hashdir prints a user's hash directory" 0 "$IMSIMTA" --config "$C" hashdir alice
check_output "alice hashes to e7/13" <<EOF
e7/13
EOF
check_run "hashdir takes several users" 0 "$IMSIMTA" --config "$C" hashdir bob carol@example.org
check_output "one line each, in order" <<EOF
d4/a0
e8/4f
EOF
check_run "hashdir refuses a name with a slash" 64 "$IMSIMTA" --config "$C" hashdir a/b
check_run "hashdir needs a user" 64 "$IMSIMTA" --config "$C" hashdir

# ---- create --------------------------------------------------------------------
check_run "an empty store lists no mailboxes" 0 MB -l
check_output "and says so" <<EOF
No mailboxes.
EOF
check_run "-c USER creates the INBOX" 0 MB -c alice
check_output "on the default partition" <<EOF
created alice/INBOX on partition primary
EOF
check_run "creating it again" 73 MB -c alice
check_run "-c USER --partition" 0 MB -c bob --partition second
check_output "puts the user on that partition" <<EOF
created bob/INBOX on partition second
EOF
check_run "hashdir --path shows where" 0 "$IMSIMTA" --config "$C" hashdir --path bob alice
check_output "below the partition's =user directory" <<EOF
$T/var/second/=user/d4/a0/=bob
$T/var/store/partition/primary/=user/e7/13/=alice
EOF
check_run "an unknown partition" 64 MB -c carol --partition nosuch
check_grep "is named" "$ERR" 'no partition "nosuch"'
check_run "--partition with a folder" 64 MB -c alice/X --partition second
check_run "-c USER/FOLDER creates a folder" 0 MB -c alice/Archive
check_output "and says which" <<EOF
created alice/Archive
EOF
check_run "a folder below it" 0 MB -c alice/Archive/2026
check_run "a folder of an unknown user" 67 MB -c nobody/Archive
check_grep "names the user" "$ERR" 'no such user "nobody" in the message store'
check_run "a folder with a .. component" 64 MB -c 'alice/../x'
check_run "a name with an empty folder" 64 MB -c 'alice/'
check_run "a name with an empty user" 64 MB -c '/Archive'
check_run "a folder with an empty component" 64 MB -c 'alice/a//b'

# ---- deliver ---------------------------------------------------------------------
check_run "--deliver stores a message" 0 MB --deliver alice --date 2026-01-02T03:04:05Z <"$T/m1"
check_output "with the next UID" <<EOF
delivered to alice/INBOX as UID 1
EOF
check_run "--deliver with Unix seconds" 0 MB --deliver alice/INBOX --date 1767398400 <"$T/m2"
check_output "UID 2" <<EOF
delivered to alice/INBOX as UID 2
EOF
check_run "--deliver into a folder" 0 MB --deliver alice/Archive/2026 --date 2026-01-05T00:00:00Z <"$T/m3"
check_output "starts its own UIDs" <<EOF
delivered to alice/Archive/2026 as UID 1
EOF
MB --deliver bob --date 2026-01-06T12:00:00Z <"$T/m1" >/dev/null
check_run "--deliver into a missing folder" 67 MB --deliver alice/Nope <"$T/m1"
check_grep "says the folder is missing" "$ERR" 'user "alice" has no folder "Nope"'
check_run "--deliver to an unknown user" 67 MB --deliver nobody <"$T/m1"
check_run "--deliver of an empty message" 65 MB --deliver alice </dev/null
check_run "--date that is not a time" 64 MB --deliver alice --date yesterday <"$T/m1"
check_run "--date without --deliver" 64 MB -l --date 1

# ---- list ------------------------------------------------------------------------
check_run "-l lists every mailbox" 0 MB -l
check_output "user, folder, messages, bytes, partition and a total" <<EOF
User   Folder        Messages        Bytes  Partition
alice  INBOX                2          313  primary
alice  Archive              0            0  primary
alice  Archive/2026         1           52  primary
bob    INBOX                1          159  second
4 mailboxes, 4 messages, 524 bytes
EOF
check_run "-l -p with *" 0 MB -l -p 'alice/Arch*'
check_output "matches across /" <<EOF
User   Folder        Messages        Bytes  Partition
alice  Archive              0            0  primary
alice  Archive/2026         1           52  primary
2 mailboxes, 1 message, 52 bytes
EOF
check_run "-l -p with %" 0 MB -l -p 'alice/%'
check_output "matches one level only" <<EOF
User   Folder   Messages        Bytes  Partition
alice  INBOX           2          313  primary
alice  Archive         0            0  primary
2 mailboxes, 2 messages, 313 bytes
EOF
check_run "-l -p without / selects users" 0 MB -l -p 'b*'
check_output "all of their folders" <<EOF
User  Folder  Messages        Bytes  Partition
bob   INBOX          1          159  second
1 mailbox, 1 message, 159 bytes
EOF
check_run "-l --json" 0 MB -l --json
check_json "is a list of mailboxes with their figures" \
	'len(j) == 4 and j[0] == {"user": "alice", "folder": "INBOX", "partition": "primary", "messages": 2, "bytes": 313, "uidvalidity": j[0]["uidvalidity"], "uidnext": 3} and j[3]["partition"] == "second"'

# ---- messages and print ----------------------------------------------------------
check_run "-m lists a folder's messages" 0 MB -m alice
check_output "uid, flags, size, arrival, From and Subject, cut to their width" <<EOF
UID  Flags   Size  Received             From                            Subject
  1  N-----   159  2026-01-02 03:04:05  Alice Sender <sender@example.~  First message
  2  N-----   154  2026-01-03 00:00:00  "Robert Åberg" <rob@example.o~  A very long subject line that goes on and on well past sixt~
alice/INBOX: 2 messages, 313 bytes
EOF
check_run "-m of a folder with a hostile Subject" 0 MB -m alice/Archive/2026
check_no_grep "prints no escape character" "$OUT" $'\033'
check_grep "but a ? in its place" "$OUT" "escape ?[2J here"
check_run "-m --json" 0 MB -m alice --json
check_json "has every cached header and the flags by name" \
	'j["user"] == "alice" and j["folder"] == "INBOX" and j["uidnext"] == 3 and len(j["messages"]) == 2 and j["messages"][0] == {"uid": 1, "flags": ["\\Recent"], "size": 159, "internal_date": 1767323045, "date": "Fri, 02 Jan 2026 03:04:05 +0000", "from": "Alice Sender <sender@example.net>", "to": "alice@example.com", "cc": None, "subject": "First message", "message_id": "<1@example.net>"}'
check_run "-m of an unknown folder" 67 MB -m alice/Nope
check_run "-m of an unknown user" 67 MB -m nobody
check_run "-m of a bad name" 64 MB -m 'alice/x/../y'
check_run "-P prints a message" 0 MB -P alice 1
cmp -s "$OUT" "$T/m1"
ok $? "exactly as delivered"
check_run "-P of the CRLF message" 0 MB -P alice/INBOX 2
tr -d '\r' <"$T/m2" | cmp -s - "$OUT"
ok $? "has LF line ends"
check_run "-P of a UID that does not exist" 65 MB -P alice 99
check_grep "says so" "$ERR" "no message with UID 99 in alice/INBOX"
check_run "-P of something that is not a UID" 64 MB -P alice 0x1

# ---- quota -----------------------------------------------------------------------
check_run "-q shows usage and limits" 0 MB -q
check_output "limits from the directory (bob: 10M, 5000) or the defaults" <<EOF
User          Bytes        Quota   Used  Messages     Quota   Used  Warned               Over quota since     Limits from
alice           365    unlimited      -         3 unlimited      -  -                    -                    default
bob             159     10485760   0.0%         1      5000   0.0%  -                    -                    directory
EOF
cat >>"$C/store.cnf" <<EOF
store.defaultmailboxquota = 1000
store.defaultmessagequota = 4
EOF
check_run "-q USER with store defaults" 0 MB -q alice
check_output "takes store.cnf's defaults and gives percents" <<EOF
User          Bytes        Quota   Used  Messages     Quota   Used  Warned               Over quota since     Limits from
alice           365         1000  36.5%         3         4  75.0%  -                    -                    default
EOF
check_run "-q --json" 0 MB -q --json bob alice
check_json "gives limits, their source and the quota state" \
	'j == [{"user": "bob", "bytes": 159, "bytes_limit": 10485760, "messages": 1, "messages_limit": 5000, "limit_source": "directory", "warned_at": None, "over_quota_since": None}, {"user": "alice", "bytes": 365, "bytes_limit": 1000, "messages": 3, "messages_limit": 4, "limit_source": "default", "warned_at": None, "over_quota_since": None}]'
check_run "-q of an unknown user" 67 MB -q nobody
check_grep "names the user" "$ERR" 'no such user "nobody" in the message store'
mv "$C/directory.ldif" "$C/directory.ldif.off"
check_run "-q without a readable directory" 0 MB -q bob
check_grep "uses the defaults" "$OUT" "default (directory unavailable)"
check_grep "and says why" "$ERR" "the directory cannot be read"
mv "$C/directory.ldif.off" "$C/directory.ldif"

# ---- rename and delete -----------------------------------------------------------
check_run "-r renames a folder" 0 MB -r alice/Archive alice/Old
check_output "and says so" <<EOF
renamed alice/Archive to alice/Old
EOF
check_run "its sub-folders move with it" 0 MB -m alice/Old/2026
check_grep "keeping their UIDs" "$OUT" "  1  N-----    52"
check_run "-r across users" 64 MB -r alice/Old bob/Old
check_run "-r of INBOX" 64 MB -r alice alice/Inbox2
check_run "-r of a folder that does not exist" 67 MB -r alice/Nope alice/Nope2
check_run "-r onto an existing folder" 73 MB -r alice/Old/2026 alice/Old
check_run "-d USER/FOLDER deletes a folder" 0 MB -d alice/Old
check_output "and says so" <<EOF
deleted alice/Old
EOF
check_run "with its sub-folders" 67 MB -m alice/Old/2026
check_run "-d USER/INBOX is refused" 64 MB -d alice/INBOX
check_run "-d USER without --yes is refused" 64 MB -d alice
check_grep "and says what --yes would do" "$ERR" "deletes every folder and message of user alice: add --yes"
check_run "-d USER --yes deletes the user" 0 MB -d alice --yes
check_output "and says so" <<EOF
deleted user alice
EOF
check_run "the user is gone" 0 MB -l
check_no_grep "from the listing" "$OUT" "alice"
check_run "-d of an unknown user" 67 MB -d alice --yes

# ---- configuration and I/O errors ----------------------------------------------------
cp "$C/store.cnf" "$T/store.cnf.good"
echo "store.quotawarn = lots" >>"$C/store.cnf"
check_run "a bad store.cnf is a configuration error" 78 MB -l
check_grep "with its position" "$ERR" "store.cnf:5:"
cp "$T/store.cnf.good" "$C/store.cnf"
# Files that cannot be read, even by root: directories in their place.
BOB="$T/var/second/=user/d4/a0/=bob"
mv "$BOB/store.idx" "$T/bob.idx"
mkdir "$BOB/store.idx"
check_run "an index that cannot be read is a damaged index" 65 MB -m bob
check_grep "that names the file and the remedy" "$ERR" "=bob/store.idx: the header cannot be read (run reconstruct)"
rmdir "$BOB/store.idx"
mv "$T/bob.idx" "$BOB/store.idx"
check_run "and reading it again works" 0 MB -m bob
mv "$BOB/00/1.msg" "$T/bob.msg"
mkdir "$BOB/00/1.msg"
check_run "a message file that cannot be read is an I/O error" 74 MB -P bob 1
check_grep "naming the message" "$ERR" "imsimta mboxutil: bob/INBOX UID 1: "
rmdir "$BOB/00/1.msg"
mv "$T/bob.msg" "$BOB/00/1.msg"
