#!/bin/sh
# Installs edgesift on a system without dpkg (or from a source checkout): binary, systemd unit,
# default config (an existing one is kept), bundled models, the `edgesift` system user in the
# video group, and the data directory. Run from the repository root after building.
#
#   sudo scripts/install.sh                               # target/release/edgesift
#   sudo scripts/install.sh --binary target/cross/aarch64-unknown-linux-gnu/release/edgesift
#   sudo scripts/install.sh --enable                      # also enable and start the service
#   scripts/install.sh --destdir /tmp/stage               # stage into a directory (no user, no systemctl)
#   sudo scripts/install.sh --uninstall                   # remove binary and unit (config, data, user stay)
#
# Layout (the same as the .deb): /usr/bin/edgesift, /etc/edgesift/edgesift.toml,
# /usr/share/edgesift/models/, /var/lib/edgesift (data), /etc/systemd/system/edgesift.service.
set -eu
cd "$(dirname "$0")/.."

binary=target/release/edgesift
destdir=""
enable=0
uninstall=0
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="$2"; shift ;;
        --destdir) destdir="$2"; shift ;;
        --enable) enable=1 ;;
        --uninstall) uninstall=1 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

d="$destdir"
systemd_running() { [ -z "$d" ] && [ -d /run/systemd/system ]; }

if [ "$uninstall" -eq 1 ]; then
    if systemd_running; then systemctl disable --now edgesift 2>/dev/null || true; fi
    rm -f "$d/usr/bin/edgesift" "$d/etc/systemd/system/edgesift.service"
    if systemd_running; then systemctl daemon-reload; fi
    echo "install.sh: removed the binary and the unit; kept $d/etc/edgesift, $d/usr/share/edgesift, $d/var/lib/edgesift and the edgesift user"
    exit 0
fi

if [ -z "$d" ] && [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (or stage with --destdir DIR)" >&2
    exit 1
fi
if [ ! -x "$binary" ]; then
    echo "install.sh: $binary not found; build it first (cargo build --release, or scripts/cross-build.sh)" >&2
    exit 1
fi

# The user first, so that the data directory can be given to it.
if [ -z "$d" ]; then
    if ! getent passwd edgesift >/dev/null 2>&1; then
        if command -v useradd >/dev/null 2>&1; then
            useradd --system --user-group --home-dir /var/lib/edgesift --no-create-home \
                --shell /usr/sbin/nologin --comment "edgesift daemon" edgesift
        else
            # busybox
            addgroup -S edgesift
            adduser -S -D -H -h /var/lib/edgesift -s /sbin/nologin -G edgesift edgesift
        fi
    fi
    for g in video render; do
        if getent group "$g" >/dev/null 2>&1 && ! id -nG edgesift | grep -qw "$g"; then
            if command -v usermod >/dev/null 2>&1; then usermod -a -G "$g" edgesift; else addgroup edgesift "$g"; fi
        fi
    done
fi

install -d "$d/usr/bin" "$d/etc/edgesift" "$d/usr/share/edgesift/models" "$d/etc/systemd/system" \
    "$d/usr/share/doc/edgesift/examples"
install -m 0755 "$binary" "$d/usr/bin/edgesift"
if [ -e "$d/etc/edgesift/edgesift.toml" ]; then
    install -m 0644 config/edgesift.toml "$d/etc/edgesift/edgesift.toml.new"
    echo "install.sh: kept the existing /etc/edgesift/edgesift.toml; the shipped one is edgesift.toml.new"
else
    install -m 0644 config/edgesift.toml "$d/etc/edgesift/edgesift.toml"
fi
for m in models/*.safetensors; do
    [ -e "$m" ] && install -m 0644 "$m" "$d/usr/share/edgesift/models/"
done
install -m 0644 config/examples/*.toml "$d/usr/share/doc/edgesift/examples/"
install -m 0644 README.md "$d/usr/share/doc/edgesift/README.md"
install -m 0644 config/edgesift.service "$d/etc/systemd/system/edgesift.service"
if [ -z "$d" ]; then
    install -d -o edgesift -g edgesift -m 0750 /var/lib/edgesift
else
    install -d -m 0750 "$d/var/lib/edgesift"
fi

if systemd_running; then
    systemctl daemon-reload
    if [ "$enable" -eq 1 ]; then
        systemctl enable --now edgesift
    fi
fi
echo "install.sh: installed into ${d:-/}."
echo "  Next: choose the camera in /etc/edgesift/edgesift.toml ('edgesift devices' lists them), then"
echo "  'systemctl enable --now edgesift'; 'journalctl -u edgesift -f' follows it."
