#!/bin/bash
# imsimta check / cnbuild: the default configuration is valid; malformed
# files are reported at file:line:column with what was expected; every
# file's errors are reported in one run.
. "$abs_top_srcdir/tests/cli/lib.sh"
make_instance
plan 36

check_run "the default configuration is valid" 0 "$IMSIMTA" --config "$C" check
check_grep "check summarises what it read" "$OUT" "configuration valid:"
check_run "cnbuild is the same check" 0 "$IMSIMTA" --config "$C" cnbuild
check_run "check --dump prints the effective configuration" 0 "$IMSIMTA" --config "$C" check --dump
check_grep "the dump shows inherited keywords" "$OUT" "*notices 1 2 4 7"
check_grep "the dump shows the bound plugin" "$OUT" "! plugin bitbucket"
check_grep "the dump shows dispatcher services" "$OUT" "[SERVICE=SMTP]"
check_grep "the dump shows job controller pools" "$OUT" "[POOL=SMTP_POOL]"
check_run "check --help describes the verb" 0 "$IMSIMTA" --config "$C" check --help
check_grep "help mentions the exit status" "$OUT" "Exits 0 when the configuration is valid, 78 otherwise"

cp -r "$C" "$T/good"
# A rule with a trailing comment.
sed -i 's/^mail.example.com       \$U%\$D@mail.example.com$/mail.example.com  $U%$D@mail.example.com ! here/' "$C/imta.cnf"
line=$(grep -n '! here$' "$C/imta.cnf" | cut -d: -f1)
check_run "a malformed imta.cnf fails check with exit 78" 78 "$IMSIMTA" --config "$C" check
check_grep "the imta.cnf error names line and column" "$ERR" \
	"imsimta: $C/imta.cnf:$line:42: expected the end of the rewrite rule"
rm -rf "$C" && cp -r "$T/good" "$C"

# A template with an unknown control sequence is caught before any address
# reaches it.
sed -i 's/^bitbucket.example.com  \$U%\$D@bitbucket-daemon$/bitbucket.example.com  $U%$D$K@bitbucket-daemon/' "$C/imta.cnf"
line=$(grep -n '^bitbucket.example.com' "$C/imta.cnf" | cut -d: -f1)
check_run "a malformed rewrite template fails check" 78 "$IMSIMTA" --config "$C" check
check_grep "the template error names its line" "$ERR" "imsimta: $C/imta.cnf:$line:"
rm -rf "$C" && cp -r "$T/good" "$C"

# Errors in several files are all reported in one run.
printf 'MAX_CONNS=5000\n' >>"$C/dispatcher.cnf"
dline=$(wc -l <"$C/dispatcher.cnf")
printf '[POOL=NEWPOOL]\nJOB_LIMIT=zero\n' >>"$C/job_controller.cnf"
jline=$(wc -l <"$C/job_controller.cnf")
printf 'BLOCK_SIZE=\n' >>"$C/option.dat"
oline=$(wc -l <"$C/option.dat")
check_run "errors in three files fail check" 78 "$IMSIMTA" --config "$C" check
check_grep "dispatcher.cnf range error with position" "$ERR" "imsimta: $C/dispatcher.cnf:$dline:11:"
check_grep "job_controller.cnf error with position" "$ERR" "imsimta: $C/job_controller.cnf:$jline:11:"
check_grep "option.dat error with position" "$ERR" "imsimta: $C/option.dat:$oline:"
check_grep "the total is reported" "$ERR" "imsimta: 3 configuration errors in $C"
rm -rf "$C" && cp -r "$T/good" "$C"

# A channel naming a pool that job_controller.cnf does not define.
sed -i 's/pool IMS_POOL/pool NO_SUCH/' "$C/imta.cnf"
check_run "an undefined pool fails check" 78 "$IMSIMTA" --config "$C" check
check_grep "the undefined pool is named with the channel's position" "$ERR" \
	"channel \"ims-ms\" names pool \"NO_SUCH\", which job_controller.cnf does not define"
rm -rf "$C" && cp -r "$T/good" "$C"

# A channel option file is read by its plugin's init hook, as the daemons do.
printf 'ALLOW_RECIPIENTS_PER_TRANSACTION=lots\n' >"$C/tcp_local_option"
check_run "a bad channel option file fails check" 78 "$IMSIMTA" --config "$C" check
check_grep "the option file error has its position" "$ERR" \
	"$C/tcp_local_option:1:34: expected an integer between 1 and 1000000"
rm -rf "$C" && cp -r "$T/good" "$C"

# The conversions file (conversion(8)): none is valid; a malformed one is
# reported at its position; a command that cannot be split is an error,
# a converter that is not installed a warning; IMTA_CONVERSION_FILE moves it.
cat >"$C/conversions" <<'EOF'
! Upper-case text from the Internet; relabel a vendor type.
in-chan=tcp_local; in-type=text; in-subtype=plain;
  command="/bin/cat INPUT_FILE OUTPUT_FILE"; timeout=30

in-type=application; in-subtype=x-wp*; relabel=1; out-subtype=wordperfect
EOF
check_run "a valid conversions file passes check" 0 "$IMSIMTA" --config "$C" check
check_no_grep "without warnings" "$ERR" "conversions"
sed -i 's/timeout=30$/timeout=0/' "$C/conversions"
check_run "a malformed conversions file fails check" 78 "$IMSIMTA" --config "$C" check
check_grep "the conversions error names line and column" "$ERR" \
	"imsimta: $C/conversions:3:54: timeout: expected an integer between 1 and 3600, got \"0\""
check_grep "and counts as one error" "$ERR" "imsimta: 1 configuration error in $C"
cat >"$C/conversions" <<'EOF'
in-type=text; command="/bin/sh -c 'unterminated"

in-type=image;
  command="no-such-converter INPUT_FILE OUTPUT_FILE"
EOF
check_run "a command that cannot be split fails check" 78 "$IMSIMTA" --config "$C" check
check_grep "at the entry's position" "$ERR" "imsimta: $C/conversions:1:1: command: "
check_grep "a converter missing from the converters' PATH is a warning" "$ERR" \
	"imsimta: warning: $C/conversions:3:1: command: \"no-such-converter\" is not in the converters' PATH (/usr/local/bin:/usr/bin:/bin)"
mv "$C/conversions" "$T/conversions.elsewhere"
printf 'IMTA_CONVERSION_FILE=%s\n' "$T/conversions.elsewhere" >>"$C/imta_tailor"
check_run "IMTA_CONVERSION_FILE names the file check reads" 78 "$IMSIMTA" --config "$C" check
check_grep "and its errors carry that name" "$ERR" "imsimta: $T/conversions.elsewhere:1:1: command: "
rm -rf "$C" && cp -r "$T/good" "$C"

# A missing imta.cnf, and a missing configuration directory.
rm "$C/imta.cnf"
check_run "a missing imta.cnf fails check" 78 "$IMSIMTA" --config "$C" check
check_grep "the missing file is named" "$ERR" "imta.cnf"
check_run "an unknown verb is a usage error" 64 "$IMSIMTA" --config "$C" frobnicate
finish
