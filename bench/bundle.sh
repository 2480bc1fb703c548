#!/usr/bin/env bash
# Installer bench (issue #18): each edition's size unpacked and packed (.tar.gz, .deb), and the
# start of the reader edition to its window under Xvfb (cold: page cache dropped when we may;
# then warm), printed as ratios to the targets: reader <= 300 MB unpacked, start <= 3 s.
#   bench/bundle.sh [EXECUTABLE]   (default: the reader bundle from `make bundle-reader`;
#                                   give /usr/bin/skelex-desktop to time the installed .deb)
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_MB=300
TARGET_START_S=3
RUNS=3

if [ "${1:-}" = "--time-window" ]; then  # inside xvfb-run: seconds from exec to a viewable window
    exe=$2
    data=$(mktemp -d)
    start=$(date +%s.%N)
    env -i DISPLAY="$DISPLAY" XAUTHORITY="${XAUTHORITY:-}" HOME="$data" \
        SKELEX_DATA_DIR="$data/data" "$exe" >/dev/null 2>&1 &
    pid=$!
    shown=""
    for _ in $(seq 1 3000); do  # up to 60 s
        id=$(xwininfo -root -tree 2>/dev/null | sed -n 's/^ *\(0x[0-9a-f]*\) "SKELEX Desktop .*/\1/p' | head -1)
        if [ -n "$id" ] && xwininfo -id "$id" 2>/dev/null | grep -q "IsViewable"; then
            shown=$(date +%s.%N)
            break
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.02
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$data"
    [ -n "$shown" ] || { echo "the window did not show" >&2; exit 1; }
    awk -v a="$shown" -v b="$start" 'BEGIN { printf "%.3f\n", a - b }' 
    exit 0
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
mb() { echo $(( ($1 + 500000) / 1000000 )); }  # MB = 10^6 bytes
for edition in reader full; do
    dir=build/bundle/$edition/dist/skelex-desktop
    if [ ! -d "$dir" ]; then
        echo "$edition edition: not built (make bundle-$edition)"
        continue
    fi
    unpacked=$(du -sb "$dir" | cut -f1)
    line="$edition edition: unpacked $(mb "$unpacked") MB"
    [ "$edition" = reader ] && line="$line ($(ratio "$(mb "$unpacked")" $TARGET_MB) x the $TARGET_MB MB target)"
    for packed in dist/skelex-desktop-"$edition"-*-linux-x86_64.tar.gz \
                  dist/skelex-desktop"$([ "$edition" = full ] && echo -full)"_*_amd64.deb; do
        [ -f "$packed" ] && line="$line; $(basename "$packed") $(mb "$(stat -c %s "$packed")") MB"
    done
    echo "$line"
done

exe=${1:-build/bundle/reader/dist/skelex-desktop/skelex-desktop}
[ -x "$exe" ] || { echo "start: $exe is not built"; exit 1; }
times=()
for run in $(seq 1 $RUNS); do
    cache="warm"
    if [ "$run" = 1 ]; then
        if sync && (echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null; then
            cache="cold (page cache dropped)"
        else
            cache="first run (page cache could not be dropped: not root)"
        fi
    fi
    t=$(xvfb-run -a -s "-screen 0 1920x1080x24" "$0" --time-window "$exe")
    times+=("$t")
    printf 'start to window, run %d, %s: %.2f s (%s x the %d s target)\n' \
        "$run" "$cache" "$t" "$(ratio "$t" $TARGET_START_S)" $TARGET_START_S
done
