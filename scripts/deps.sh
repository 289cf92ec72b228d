#!/usr/bin/env bash
# Installs the Debian packages Endcap needs, and only those that are missing.
# Idempotent: when everything is present it prints one line and changes nothing.
# Runs apt-get directly as root, through sudo otherwise.
set -euo pipefail

pkgs=(
  # cgo toolchain and the X11/GL headers Fyne needs
  gcc pkg-config libgl1-mesa-dev libx11-dev libxcursor-dev libxrandr-dev
  libxinerama-dev libxi-dev libxxf86vm-dev
  # a real MQTT broker for the conformance tests
  mosquitto mosquitto-clients
  # serial simulation and headless displays
  socat xvfb xauth
  # reading printed barcodes back in the device tests
  zbar-tools
  # /usr/bin/time for the benchmark figures (make bench)
  time
)

missing=()
for p in "${pkgs[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "deps: all ${#pkgs[@]} Debian packages present"
  exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "deps: missing ${missing[*]}, and not root and no sudo to install them" >&2
  exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "deps: done"
