#!/bin/bash
# A third-party plugin: install the MTA's plugin development files into a
# staging directory, build docs/plugin-example against the installed
# header and pkg-config file alone, drop it into the plugin directory, see
# it listed, bind a channel, and deliver through it: a message queued for
# the channel is handed to the plugin's master by the job controller,
# lands in the file the channel's hellofile keyword names, and leaves the
# queue.
#
# Only the job controller this test starts is signalled, by its pid.
. "$abs_top_srcdir/tests/cli/smtp-lib.sh"
make_instance
trap 'smtp_stop; rm -rf "$T"' EXIT
QUEUE="$T/var/queue"
LOGDIR="$T/var/log"
plan 17

dest="$T/staging"
# What a plugin builds against: the library, the headers, the pkg-config
# file.  Not a whole "make install": installing the in-tree plugins makes
# libtool relink each one in place, moving the built .so aside for a moment,
# and a test running beside this one may be copying it just then.
${MAKE:-make} -C "$abs_top_builddir" install-libLTLIBRARIES install-imtaincludeHEADERS \
	install-pkgconfigDATA DESTDIR="$dest" MAKEFLAGS= >"$T/install.log" 2>&1
status=$?
[ $status -ne 0 ] && tail -30 "$T/install.log" | sed 's/^/# /'
ok $status "the plugin development files install into a staging directory"

pc=$(find "$dest" -name imta-plugin.pc | head -1)
[ -n "$pc" ]
ok $? "the pkg-config file is installed"
# A staged .pc file names the final prefix; point it at the staged copy.
prefix=$(sed -n 's/^prefix=//p' "$pc")
sed -i "s|^prefix=.*|prefix=$dest$prefix|" "$pc"
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
header="$(pkg-config --variable=includedir imta-plugin)/imta/plugin.h"
[ -f "$header" ]
ok $? "the plugin header is installed where pkg-config says ($header)"

cp -r "$abs_top_srcdir/docs/plugin-example" "$T/example"
chmod -R u+w "$T/example"
# A fresh make, outside the jobserver of the make running this test.
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$T/example" >"$T/example.log" 2>&1
status=$?
[ $status -ne 0 ] && sed 's/^/# /' "$T/example.log"
ok $status "the example plugin builds out of tree with pkg-config alone"
if grep -v '^make' "$T/example.log" | grep -q 'warning:'; then
	sed 's/^/# /' "$T/example.log"
	ok 1 "the example builds without warnings"
else
	ok 0 "the example builds without warnings"
fi

install -m 644 "$T/example/hello.so" "$T/plugins/hello.so"
check_run "plugin-list runs with the new plugin" 0 "$IMSIMTA" --config "$C" plugin-list
check_grep "the new plugin is listed with its keyword" "$OUT" "  keywords:    hello"
check_grep "the new plugin is listed with its path" "$OUT" "  path:        $T/plugins/hello.so"

printf '\nhello hellofile %s\nhello-daemon\n' "$T/var/hello.out" >>"$C/imta.cnf"
"$IMSIMTA" --config "$C" plugin-list --json >"$OUT" 2>"$ERR"
python3 -c '
import json, sys
p = [x for x in json.load(open(sys.argv[1])) if x.get("name") == "hello"][0]
assert p["state"] == "loaded" and p["channels"] == ["hello"], p
' "$OUT"
ok $? "a channel named after the keyword is bound to the new plugin"
check_run "the configuration with the new channel is valid" 0 "$IMSIMTA" --config "$C" check

# Deliver through it.
sed -i '/^\$\*/i hello.example          $U%$D@hello-daemon' "$C/imta.cnf"
check_run "a rule routes hello.example to the new channel" 0 \
	"$IMSIMTA" --config "$C" test -rewrite bob@hello.example
check_grep "test -rewrite names the channel" "$OUT" "hello"
printf 'Subject: through the example\n\nHello.\n' |
	"$IMSIMTA" --config "$C" enqueue -from=ann@example.org bob@hello.example >"$OUT" 2>"$ERR"
ok $? "imsimta enqueue queues a message for bob@hello.example"
[ "$(queue_count hello)" -eq 1 ]
ok $? "it waits in the channel's queue"
smtp_start_jc
ok $? "the job controller starts"
wait_until 300 grep -qs "ann@example.org -> bob@hello.example" "$T/var/hello.out"
r=$?
ok $r "the plugin's master delivered it to the file hellofile names"
[ $r -eq 0 ] && diag_file "$T/var/hello.out"
[ $r -eq 0 ] || { diag_file "$LOGDIR/hello_master.log"; diag_file "$T/jc.err"; }
hello_gone() {
	[ "$(queue_count hello)" -eq 0 ]
}
wait_until 100 hello_gone
ok $? "and the message left the queue"
finish
