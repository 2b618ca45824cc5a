#!/bin/bash
# What an administrator sees when the plugin directory holds something the
# loader refuses: a duplicate keyword, a file that is not a plugin, a
# directory others can write to.
. "$abs_top_srcdir/tests/cli/lib.sh"
make_instance
plan 12

install -m 644 "$abs_top_builddir/tests/plugins/.libs/dupkeyword.so" "$T/plugins/zdup.so"
install -m 644 "$abs_top_builddir/tests/plugins/.libs/nosymbol.so" "$T/plugins/notaplugin.so"
check_run "plugin-list lists refused files and succeeds" 0 "$IMSIMTA" --config "$C" plugin-list
check_grep "a duplicate keyword is refused, naming the owner" "$OUT" \
	"$T/plugins/zdup.so: plugin dupkeyword registers keyword \"bitbucket\", already registered by plugin bitbucket"
check_grep "a shared object without a descriptor is refused" "$OUT" \
	"$T/plugins/notaplugin.so: not a channel plugin: no symbol imta_plugin_descriptor"
check_grep "the first plugin keeps its keyword and channel" "$OUT" "  channels:    bitbucket"

check_run "check passes but warns about refused plugins" 0 "$IMSIMTA" --config "$C" check
check_grep "check prints the refusal as a warning" "$ERR" "imsimta: warning: $T/plugins/zdup.so"
rm -f "$T/plugins/zdup.so" "$T/plugins/notaplugin.so"

# A daemon whose channel lost its plugin says which file was refused and why.
chmod 666 "$T/plugins/bitbucket.so"
check_run "imta-master refuses a channel whose plugin file was refused" 78 \
	"$abs_top_builddir/core/libexec/imta-master" --config "$C" --channel bitbucket
check_grep "it names the refused file and the reason" "$ERR" \
	"plugin file refused: $T/plugins/bitbucket.so: refusing a plugin file writable by group or others"
check_grep "then the channel left without a plugin" "$ERR" "channel bitbucket is bound to no plugin"
chmod 644 "$T/plugins/bitbucket.so"

chmod 777 "$T/plugins"
check_run "a plugin directory writable by others stops plugin-list" 78 "$IMSIMTA" --config "$C" plugin-list
check_grep "the error says why and how to fix it" "$ERR" \
	"refusing a plugin directory writable by group or others (mode 0777); fix with: chmod go-w $T/plugins"
chmod 755 "$T/plugins"
check_run "fixing the mode fixes the listing" 0 "$IMSIMTA" --config "$C" plugin-list
finish
