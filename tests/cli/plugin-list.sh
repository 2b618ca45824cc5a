#!/bin/bash
# imsimta plugin-list: the in-tree plugins, their channels, JSON output,
# refused plugins with their reasons, and a broken imta.cnf not hiding them.
. "$abs_top_srcdir/tests/cli/lib.sh"
make_instance
plan 26

check_run "plugin-list succeeds on the default configuration" 0 "$IMSIMTA" --config "$C" plugin-list
check_grep "lists bitbucket with its version" "$OUT" "bitbucket 0.1.0"
check_grep "shows the ABI version" "$OUT" "  abi:         4"
check_grep "shows the master program" "$OUT" "  programs:    master"
check_grep "shows the keyword" "$OUT" "  keywords:    bitbucket"
check_grep "shows the bound channel" "$OUT" "  channels:    bitbucket"
check_grep "shows the path" "$OUT" "  path:        $T/plugins/bitbucket.so"

check_run "IMTA_CONFIG selects the instance like --config" 0 env IMTA_CONFIG="$C" "$IMSIMTA" plugin-list
check_grep "IMTA_CONFIG output lists bitbucket" "$OUT" "bitbucket 0.1.0"

check_run "plugin-list --json succeeds" 0 "$IMSIMTA" --config "$C" plugin-list --json
python3 - "$OUT" "$T" <<'PY'
import json, sys
plugins = json.load(open(sys.argv[1]))
bb = [p for p in plugins if p.get("name") == "bitbucket"][0]
assert bb["state"] == "loaded", bb
assert bb["version"] == "0.1.0" and bb["abi"] == 4, bb
assert bb["master"] is True and bb["slave"] is False, bb
assert bb["keywords"] == ["bitbucket"] and bb["channels"] == ["bitbucket"], bb
assert bb["path"] == sys.argv[2] + "/plugins/bitbucket.so", bb
PY
ok $? "JSON carries name, version, ABI, programs, keywords, channels and path"

# A plugin for another ABI and a world-writable one are listed as refused.
install -m 644 "$abs_top_builddir/tests/plugins/.libs/badabi.so" "$T/plugins/"
install -m 666 "$abs_top_builddir/plugins/bitbucket/.libs/bitbucket.so" "$T/plugins/zz-writable.so"
chmod 666 "$T/plugins/zz-writable.so"
check_run "plugin-list still succeeds with refused plugins" 0 "$IMSIMTA" --config "$C" plugin-list
check_grep "the bad ABI is refused with its reason" "$OUT" \
	"reason:      $T/plugins/badabi.so: plugin ABI version 999, but this MTA uses ABI version 4"
check_grep "the writable file is refused with the fix" "$OUT" \
	"refusing a plugin file writable by group or others (mode 0666); fix with: chmod go-w $T/plugins/zz-writable.so"
"$IMSIMTA" --config "$C" plugin-list --json >"$OUT" 2>"$ERR"
python3 -c '
import json, sys
p = {x["path"].rsplit("/", 1)[1]: x for x in json.load(open(sys.argv[1]))}
assert p["badabi.so"]["state"] == "refused" and "ABI version 999" in p["badabi.so"]["error"], p
assert p["bitbucket.so"]["state"] == "loaded", p
' "$OUT"
ok $? "JSON marks refused plugins with their error"
rm -f "$T/plugins/badabi.so" "$T/plugins/zz-writable.so"

# Every other refusal, each with its reason in the text and JSON listings:
# no descriptor, a keyword taken, a file dlopen cannot load (cut short,
# or not an object at all), and a file owned by someone else (root only).
install -m 644 "$abs_top_builddir/tests/plugins/.libs/nosymbol.so" "$T/plugins/nosymbol.so"
install -m 644 "$abs_top_builddir/tests/plugins/.libs/dupkeyword.so" "$T/plugins/zz-dup.so"
head -c 2000 "$abs_top_builddir/plugins/bitbucket/.libs/bitbucket.so" >"$T/plugins/cut.so"
printf 'not an object\n' >"$T/plugins/text.so"
chmod 644 "$T/plugins/cut.so" "$T/plugins/text.so"
check_run "plugin-list lists every refused file and succeeds" 0 "$IMSIMTA" --config "$C" plugin-list
check_grep "a file without a descriptor is refused" "$OUT" \
	"REFUSED $T/plugins/nosymbol.so"
check_grep "with the missing symbol and the fix" "$OUT" \
	"reason:      $T/plugins/nosymbol.so: not a channel plugin: no symbol imta_plugin_descriptor (declare the plugin with IMTA_PLUGIN_DEFINE)"
check_grep "a keyword registered twice is refused, naming the first owner" "$OUT" \
	"reason:      $T/plugins/zz-dup.so: plugin dupkeyword registers keyword \"bitbucket\", already registered by plugin bitbucket; remove one of the two from the plugin directory"
check_grep "a shared object cut short is refused before dlopen could crash on it" "$OUT" \
	"reason:      $T/plugins/cut.so: cannot load: the file is cut short (2000 bytes end before a segment it loads); install the plugin again"
check_grep "a file that is no object at all is refused with dlopen's reason" "$OUT" \
	"reason:      $T/plugins/text.so: cannot load: $T/plugins/text.so: "
"$IMSIMTA" --config "$C" plugin-list --json >"$OUT" 2>"$ERR"
python3 - "$OUT" <<'PY'
import json, sys
p = {x["path"].rsplit("/", 1)[1]: x for x in json.load(open(sys.argv[1]))}
for name, text in (("nosymbol.so", "no symbol imta_plugin_descriptor"),
                   ("zz-dup.so", "already registered by plugin bitbucket"),
                   ("cut.so", "cannot load"), ("text.so", "cannot load")):
    assert p[name]["state"] == "refused" and text in p[name]["error"], (name, p[name])
assert p["bitbucket.so"]["state"] == "loaded", p
PY
ok $? "JSON gives each refused file its reason"
rm -f "$T/plugins/nosymbol.so" "$T/plugins/zz-dup.so" "$T/plugins/cut.so" "$T/plugins/text.so"
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
	install -m 644 "$abs_top_builddir/plugins/bitbucket/.libs/bitbucket.so" "$T/plugins/zz-owner.so"
	chown nobody "$T/plugins/zz-owner.so"
	uid=$(id -u nobody)
	"$IMSIMTA" --config "$C" plugin-list >"$OUT" 2>"$ERR"
	check_grep "a file owned by another user is refused with the fix" "$OUT" \
		"reason:      $T/plugins/zz-owner.so: refusing a plugin file owned by uid $uid, not by root or the MTA user; fix with: chown root $T/plugins/zz-owner.so"
	rm -f "$T/plugins/zz-owner.so"
else
	echo "ok $((TAP_COUNT + 1)) # skip changing a file's owner needs root"
	TAP_COUNT=$((TAP_COUNT + 1))
fi

# A channel keyword no plugin registers: plugins are still listed, the
# error names file, line, column and keyword, and the exit status says so.
printf '\nfrob uucp\nfrob-daemon\n' >>"$C/imta.cnf"
line=$(grep -n '^frob uucp' "$C/imta.cnf" | cut -d: -f1)
check_run "a bad imta.cnf makes plugin-list exit 78" 78 "$IMSIMTA" --config "$C" plugin-list
check_grep "the plugins are still listed" "$OUT" "bitbucket 0.1.0"
check_grep "the error names the keyword and its position" "$ERR" \
	"imsimta: $C/imta.cnf:$line:6: unknown channel keyword \"uucp\" in channel \"frob\" (not a core keyword, and no loaded plugin registers it)"
finish
