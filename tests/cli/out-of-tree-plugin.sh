#!/bin/bash
# A third-party plugin: install the MTA into a staging directory, build
# docs/plugin-example against the installed header and pkg-config file
# alone, drop it into the plugin directory, see it listed, bind a channel.
. "$abs_top_srcdir/tests/cli/lib.sh"
make_instance
plan 10

dest="$T/staging"
${MAKE:-make} -C "$abs_top_builddir" install DESTDIR="$dest" MAKEFLAGS= >"$T/install.log" 2>&1
status=$?
[ $status -ne 0 ] && tail -30 "$T/install.log" | sed 's/^/# /'
ok $status "make install into a staging directory"

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

printf '\nhello\nhello-daemon\n' >>"$C/imta.cnf"
"$IMSIMTA" --config "$C" plugin-list --json >"$OUT" 2>"$ERR"
python3 -c '
import json, sys
p = [x for x in json.load(open(sys.argv[1])) if x.get("name") == "hello"][0]
assert p["state"] == "loaded" and p["channels"] == ["hello"], p
' "$OUT"
ok $? "a channel named after the keyword is bound to the new plugin"
check_run "the configuration with the new channel is valid" 0 "$IMSIMTA" --config "$C" check
finish
