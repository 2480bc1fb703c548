#!/usr/bin/env bash
# Pack a built bundle (PyInstaller one-folder) as a .tar.gz and a .deb (Linux x86_64).
#   installer/package.sh EDITION BUNDLE_DIR OUT_DIR
# EDITION is reader or full; BUNDLE_DIR holds skelex-desktop and _internal/.
# The .deb installs under /opt/skelex-desktop, links /usr/bin/skelex-desktop, adds the menu entry
# (with its icon and the application/dicom association), and never touches user data (the data
# dir and database in each user's home): removal and upgrade replace program files only.
set -euo pipefail

EDITION=${1:?edition (reader or full)}
BUNDLE=${2:?bundle folder}
OUT=${3:?output folder}
HERE="$(cd "$(dirname "$0")" && pwd)"
VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$HERE/../skelex_desktop/__init__.py")
case "$EDITION" in
    reader) PACKAGE=skelex-desktop; OTHER=skelex-desktop-full
            SUMMARY="review, analysis, calibration and export (no training)" ;;
    full)   PACKAGE=skelex-desktop-full; OTHER=skelex-desktop
            SUMMARY="review, analysis, export, training, fine-tuning and pretraining (torch)" ;;
    *) echo "package.sh: edition must be reader or full, not '$EDITION'" >&2; exit 2 ;;
esac
[ -x "$BUNDLE/skelex-desktop" ] || { echo "package.sh: no bundle at $BUNDLE (run make bundle)" >&2; exit 2; }
mkdir -p "$OUT"
NAME="skelex-desktop-$EDITION-$VERSION-linux-x86_64"

# .tar.gz: the bundle folder, the menu entry and the icon, runnable where it is unpacked
STAGE=$(mktemp -d "$OUT/.stage.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
cp -a "$BUNDLE" "$STAGE/$NAME"
cp "$HERE/skelex-desktop.desktop" "$HERE/skelex-desktop.png" "$STAGE/$NAME/"
tar -C "$STAGE" -czf "$OUT/$NAME.tar.gz.part" "$NAME"
mv "$OUT/$NAME.tar.gz.part" "$OUT/$NAME.tar.gz"
rm -rf "${STAGE:?}/$NAME"

# .deb
ROOT="$STAGE/deb"
mkdir -p "$ROOT/DEBIAN" "$ROOT/opt" "$ROOT/usr/bin" "$ROOT/usr/share/applications"
cp -a "$BUNDLE" "$ROOT/opt/skelex-desktop"
ln -s /opt/skelex-desktop/skelex-desktop "$ROOT/usr/bin/skelex-desktop"
install -m 644 "$HERE/skelex-desktop.desktop" "$ROOT/usr/share/applications/skelex-desktop.desktop"
for size in 48 128 256; do
    icon="$HERE/skelex-desktop-$size.png"; [ "$size" = 256 ] && icon="$HERE/skelex-desktop.png"
    install -D -m 644 "$icon" "$ROOT/usr/share/icons/hicolor/${size}x${size}/apps/skelex-desktop.png"
done
SIZE_KB=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
cat > "$ROOT/DEBIAN/control" <<CONTROL
Package: $PACKAGE
Version: $VERSION
Section: science
Priority: optional
Architecture: amd64
Installed-Size: $SIZE_KB
Depends: libc6 (>= 2.36), libgl1, libegl1, libdrm2, libxcb1
Recommends: libwayland-client0, libwayland-cursor0, libwayland-egl1
Conflicts: $OTHER
Replaces: $OTHER
Provides: skelex-desktop-program
Maintainer: SKELEX Desktop team <skelex-desktop@localhost>
Description: SKELEX Desktop, $EDITION edition: offline review of MSK radiographs
 Review musculoskeletal radiographs with the SKELEX foundation model, offline:
 $SUMMARY.
 Self-contained (its own Python and libraries under /opt/skelex-desktop);
 check an installation with "skelex-desktop --self-test".
 User data (the data dir and its database) is never removed or changed by the
 package; a new version upgrades the database on its next start, after a backup.
CONTROL
for script in postinst postrm; do
    install -m 755 "$HERE/debian/$script" "$ROOT/DEBIAN/$script"
done
DEB="$OUT/${PACKAGE}_${VERSION}_amd64.deb"
dpkg-deb --root-owner-group -Zgzip -z6 --build "$ROOT" "$DEB.part" >/dev/null
mv "$DEB.part" "$DEB"
echo "$OUT/$NAME.tar.gz"
echo "$DEB"
