#!/usr/bin/env bash
# Remove what install.sh put in place (same PREFIX, XDG_DATA_HOME and BIN_DIR settings).
# Conversations, settings and downloaded models are kept; their folders are listed at the end.
set -euo pipefail

APP_ID=llama-desk
die() { echo "uninstall.sh: error: $*" >&2; exit 1; }
if [ $# -gt 0 ]; then
    sed -n '2,3p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    [ "$1" = "-h" ] || [ "$1" = "--help" ] || exit 2
    exit 0
fi

prefix="${PREFIX:-$HOME/.local/opt/$APP_ID}"
data_home="${XDG_DATA_HOME:-$HOME/.local/share}"
bin_dir="${BIN_DIR-$HOME/.local/bin}"

if [ -d "$prefix" ]; then
    [ -e "$prefix/.$APP_ID-install" ] || die "'$prefix' was not made by install.sh; not removing it"
    # Running from inside the installed copy is fine: bash has read this script already.
    rm -rf "$prefix"
    echo "removed $prefix"
fi
if [ -n "$bin_dir" ] && [ -L "$bin_dir/$APP_ID" ]; then
    case "$(readlink "$bin_dir/$APP_ID")" in
        "$prefix"/*) rm -f "$bin_dir/$APP_ID"; echo "removed $bin_dir/$APP_ID" ;;
    esac
fi
rm -f "$data_home/applications/$APP_ID.desktop"
icons="$data_home/icons/hicolor"
for icon in "$icons"/*/apps/"$APP_ID".png "$icons"/scalable/apps/"$APP_ID".svg; do
    [ -e "$icon" ] && rm -f "$icon"
done
echo "removed the menu entry and icons from $data_home"
if command -v update-desktop-database >/dev/null 2>&1 && [ -d "$data_home/applications" ]; then
    update-desktop-database -q "$data_home/applications" || true
fi
if command -v gtk-update-icon-cache >/dev/null 2>&1 && [ -f "$icons/index.theme" ]; then
    gtk-update-icon-cache -q -t -f "$icons" || true
fi

state_home="${XDG_STATE_HOME:-$HOME/.local/state}"
echo "Your conversations, settings and models are kept. To delete them too, remove:"
echo "  ${data_home}/$APP_ID  ${XDG_CONFIG_HOME:-$HOME/.config}/$APP_ID"
echo "  ${XDG_CACHE_HOME:-$HOME/.cache}/$APP_ID  ${state_home}/$APP_ID"
