#!/bin/sh
# Run one test so that it speaks TAP: GLib test programs need --tap,
# shell tests speak it already.
case "$1" in
*.sh) exec /bin/bash "$@" ;;
*)    exec "$@" --tap ;;
esac
