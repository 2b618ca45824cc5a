#!/bin/bash
# imsimta test -rewrite: the default configuration routes local, remote,
# literal and discard addresses; the reference rule set routes its
# examples; the rules tried are shown; unroutable addresses fail.
. "$abs_top_srcdir/tests/cli/lib.sh"
make_instance
plan 40

# rewrite ADDRESS [OPTIONS...]: run test -rewrite, output in $OUT.
rewrite() {
	local address=$1
	shift
	"$IMSIMTA" --config "$C" test -rewrite "$@" "$address" >"$OUT" 2>"$ERR"
}

# routes ADDRESS CHANNEL REWRITTEN [OPTIONS...]
routes() {
	local address=$1 channel=$2 rewritten=$3
	shift 3
	rewrite "$address" "$@"
	local status=$?
	if [ $status -ne 0 ]; then
		echo "# exit status $status"
		diag_file "$OUT"
		diag_file "$ERR"
	fi
	ok $status "$address is routable"
	check_grep "$address goes to channel $channel" "$OUT" "  Channel:        $channel"
	check_grep "$address is rewritten to $rewritten" "$OUT" "  Rewritten:      $rewritten"
}

# Local users of the directory's domains go to the local channel.
routes alice@example.com l alice@example.com
routes carol@example.org l carol@example.org
routes postmaster@mail.example.com l postmaster@mail.example.com
# Remote domains leave by SMTP; so do literals other than loopback.
routes someone@remote.test tcp_local someone@remote.test
routes someone@[192.0.2.7] tcp_local "someone@[192.0.2.7]"
# The discard domain.
routes anything@bitbucket.example.com bitbucket anything@bitbucket.example.com
check_grep "the bitbucket channel shows its plugin" "$OUT" "  Plugin:         bitbucket"
check_grep "the rules tried are listed" "$OUT" "  Rules tried:"

# A subdomain of a hosted domain is remote, until DOMAIN_UPLEVEL lets it
# borrow its parent's entry.
routes alice@host1.example.com tcp_local alice@host1.example.com
echo "DOMAIN_UPLEVEL=1" >>"$C/option.dat"
routes alice@host1.example.com l alice@host1.example.com
sed -i '/^DOMAIN_UPLEVEL=/d' "$C/option.dat"

# Several addresses on standard input, one per line.
printf 'alice@example.com\nsomeone@remote.test\n' |
	"$IMSIMTA" --config "$C" test -rewrite >"$OUT" 2>"$ERR"
ok $? "addresses can be read from standard input"
[ "$(grep -c '^Address:' "$OUT")" -eq 2 ]
ok $? "both addresses from standard input were rewritten"

# The reference's rule set (imta.cnf(5) example, rewrite-rules §7).
cat >"$C/imta.cnf" <<'EOT'
$*                    $A$E$F$U%$H$V$H@mail.example.com
mail.example.com      $U%$D@mail.example.com
.corp.example.com     $U%$H$D@tcp_intranet-daemon
[]                    $E$R${INTERNAL_IP,$L}$U%[$L]@tcp_intranet-daemon
.                     $U%$H@tcp-daemon

l
mail.example.com

tcp_local
tcp-daemon

tcp_intranet
tcp_intranet-daemon

bitbucket
bitbucket-daemon
EOT
routes bob@pc7.corp.example.com tcp_intranet bob@pc7.corp.example.com
check_grep "the trace shows the matching rule's pattern" "$OUT" ".corp.example.com"
routes bob@elsewhere.test tcp_local bob@elsewhere.test

# Nothing routes when no rule and no channel owns the host.
cat >"$C/imta.cnf" <<'EOT'
known.test   $U%$D@known-daemon

l
mail.example.com

known
known-daemon
EOT
rewrite nobody@unknown.test
status=$?
[ $status -eq 65 ]
ok $? "an unroutable address exits 65 (got $status)"
check_grep "the error is shown" "$OUT" "  Error:"
routes somebody@known.test known somebody@known.test
finish
