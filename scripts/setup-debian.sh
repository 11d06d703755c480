#!/usr/bin/env bash
# Installs the system packages that building and testing JO E-Tickets need on
# Debian/Ubuntu. Idempotent: installs only what is missing. Uses sudo when not root.
set -euo pipefail

packages=(
  build-essential pkg-config   # C parts of bundled SQLite and of -sys crates
  openssl                      # interop tests: OpenSSL verifies our signatures
  zbar-tools                   # interop tests: zbarimg decodes our QR codes
  oathtool                     # 2FA tests: an independent TOTP generator
  poppler-utils                # PDF tests: pdftoppm renders ticket PDFs
  chromium chromium-driver     # browser tests: the shop in a real headless browser
  xvfb                         # scanner GUI screenshots
  libgl1 libegl1 libgl1-mesa-dri          # the scanner GUI's OpenGL (Mesa llvmpipe under Xvfb)
  libx11-6 libx11-xcb1 libxcursor1 libxrandr2 libxi6 libxkbcommon0 libxkbcommon-x11-0  # its X11 windowing
  libclang-dev                 # bindgen for the webcam backend (V4L)
  cmake g++                    # the scanner's QR reader (zxing-cpp's C++ core, built with the crate)
  python3 python3-venv         # SMTP sink and API fuzzer used by tests
  postgresql                   # the PostgreSQL backend's tests (a throwaway cluster each run)
  nginx-light docker-compose   # cluster test: the TLS proxy; the compose file validated
  iproute2                     # scanner mDNS test: gates on a LAN of network namespaces (ip netns, as root)
  curl ca-certificates
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm installs axe-core for the accessibility tests (below); any npm will do.
command -v npm >/dev/null 2>&1 || missing+=(npm)

if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The accessibility tests inject axe-core (npm) into every page; it goes in
# target/node_modules, outside the sources, pinned.
axe_dir="$(dirname "$0")/../target"
[ -f "$axe_dir/node_modules/axe-core/axe.min.js" ] ||
  npm install --prefix "$axe_dir" --no-save --no-audit --no-fund --loglevel=error axe-core@4.14.1

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust (https://rustup.rs), then run this again" >&2
  exit 1
fi
