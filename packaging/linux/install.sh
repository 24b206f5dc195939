#!/usr/bin/env bash
# Install the Llama Desk bundle for the current user (no root): program, icons, menu entry, command.
#
#   install.sh [BUNDLE_DIR]
#
# BUNDLE_DIR is the built "Llama Desk" folder; by default the folder this script sits in (the
# bundle carries a copy), else dist/"Llama Desk" of the source tree. Where things go:
#   PREFIX         the program          (default ~/.local/opt/llama-desk)
#   XDG_DATA_HOME  icons and menu entry (default ~/.local/share)
#   BIN_DIR        a `llama-desk` link  (default ~/.local/bin; BIN_DIR= (empty) to skip)
# Your conversations and settings are not part of the program and are never touched.
set -euo pipefail

APP_ID=llama-desk
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { echo "install.sh: error: $*" >&2; exit 1; }

if [ $# -gt 1 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
fi
if [ $# -eq 1 ]; then
    src="$1"
elif [ -x "$here/$APP_ID" ] && [ -d "$here/_internal" ]; then
    src="$here"
else
    src="$here/../../dist/Llama Desk"
fi
[ -x "$src/$APP_ID" ] && [ -d "$src/_internal" ] \
    || die "no Llama Desk bundle in '$src' (build it with 'make bundle', or pass the bundle folder)"
src="$(cd "$src" && pwd)"
res="$src/_internal/resources"
[ -f "$res/$APP_ID.desktop" ] && [ -f "$res/icons/$APP_ID.svg" ] \
    || die "the bundle in '$src' has no resources/ (icons, menu entry): rebuild it"

prefix="${PREFIX:-$HOME/.local/opt/$APP_ID}"
data_home="${XDG_DATA_HOME:-$HOME/.local/share}"
bin_dir="${BIN_DIR-$HOME/.local/bin}"
case "$prefix" in /*) ;; *) die "PREFIX must be an absolute path, not '$prefix'" ;; esac
case "$prefix" in *'"'*|*'`'*|*'$'*|*'\'*)
    die "PREFIX may not contain \", \`, \$ or \\ (the menu entry could not start it)" ;; esac
marker="$prefix/.$APP_ID-install"
if [ -e "$prefix" ] && [ ! -e "$marker" ] && [ -n "$(ls -A "$prefix" 2>/dev/null)" ]; then
    die "'$prefix' exists and was not made by this script; choose another PREFIX or empty it"
fi
[ "$src" != "$prefix" ] || die "the bundle is already installed at '$prefix'"

# The program: copied next to the old one, then swapped in.
mkdir -p "$(dirname "$prefix")"
staging="$prefix.new.$$"
rm -rf "$staging"
cp -a "$src/." "$staging/"
printf 'installed from %s on %s\n' "$src" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$staging/.$APP_ID-install"
rm -rf "$prefix"
mv "$staging" "$prefix"
echo "program:    $prefix/$APP_ID"

# Icons, in the hicolor theme sizes plus the scalable SVG.
icons="$data_home/icons/hicolor"
for png in "$res"/icons/"$APP_ID"-*.png; do
    size="${png##*-}"; size="${size%.png}"
    install -D -m 644 "$png" "$icons/${size}x${size}/apps/$APP_ID.png"
done
install -D -m 644 "$res/icons/$APP_ID.svg" "$icons/scalable/apps/$APP_ID.svg"
echo "icons:      $icons/*/apps/$APP_ID.{png,svg}"

# The menu entry, pointing at the installed program.
apps="$data_home/applications"
mkdir -p "$apps"
sed -e "s|^Exec=.*|Exec=\"$prefix/$APP_ID\"|" -e "s|^TryExec=.*|TryExec=$prefix/$APP_ID|" \
    "$res/$APP_ID.desktop" > "$apps/$APP_ID.desktop.tmp"
chmod 644 "$apps/$APP_ID.desktop.tmp"
mv "$apps/$APP_ID.desktop.tmp" "$apps/$APP_ID.desktop"
echo "menu entry: $apps/$APP_ID.desktop"

# The command-line twin: `llama-desk chat ...` from a terminal.
if [ -n "$bin_dir" ]; then
    mkdir -p "$bin_dir"
    if [ -e "$bin_dir/$APP_ID" ] && [ ! -L "$bin_dir/$APP_ID" ]; then
        echo "command:    skipped, $bin_dir/$APP_ID exists and is not a link"
    else
        ln -sfn "$prefix/$APP_ID" "$bin_dir/$APP_ID"
        echo "command:    $bin_dir/$APP_ID"
    fi
fi

if command -v update-desktop-database >/dev/null 2>&1; then
    update-desktop-database -q "$apps" || true
fi
if command -v gtk-update-icon-cache >/dev/null 2>&1 && [ -f "$icons/index.theme" ]; then
    gtk-update-icon-cache -q -t -f "$icons" || true
fi
echo "Llama Desk is installed: find it in your applications menu. Remove it with $prefix/uninstall.sh"
