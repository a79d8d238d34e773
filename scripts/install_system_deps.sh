#!/usr/bin/env bash
# Installs the Debian packages emsync-bridge needs on a fresh Debian 12 machine.
# What and why:
#   ffmpeg        - video decode/encode for tests and the demo video, muxing preview.mp4
#   fluidsynth, timgm6mb-soundfont - renders preview.wav from score.mid with a 6 MB General MIDI SoundFont (CLI, no sound card)
#   jackd2        - a dummy JACK server so tests can round-trip MIDI through a real virtual port
#   lua5.4        - syntax check of the REAPER Lua scripts (REAPER runs Lua 5.4)
#   xvfb, x11-apps, imagemagick - real-window screenshots of the control panel
#   libgl1 libegl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libxcb-*  - what Qt 6 loads
# Idempotent: skips apt entirely when every package is already installed.
set -euo pipefail
PKGS=(ffmpeg fluidsynth timgm6mb-soundfont jackd2 lua5.4 xvfb x11-apps imagemagick
      libgl1 libegl1 libglx0 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libfreetype6
      libglib2.0-0 libdbus-1-3 libx11-6 libx11-xcb1 libxcb1 libxcb-cursor0 libxcb-icccm4
      libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render0 libxcb-render-util0
      libxcb-shape0 libxcb-shm0 libxcb-sync1 libxcb-util1 libxcb-xfixes0 libxcb-xkb1)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
echo "installing Debian packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "system packages: installed ${#missing[@]}"
