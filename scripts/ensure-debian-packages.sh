#!/usr/bin/env bash
# Installs the Debian packages the tests need when their commands are missing, so that
# `npm test` passes on a fresh Debian machine. A package that is missing and cannot be
# installed fails the run with its name: tests never skip silently.
set -euo pipefail

# command the tests run  ->  Debian package that provides it
declare -A PACKAGE_OF=(
  [openssl]=openssl
  [chromium]=chromium
  [prometheus]=prometheus
  [promtool]=prometheus
  [prometheus-node-exporter]=prometheus-node-exporter
  [nginx]=nginx-light
  [systemd-analyze]=systemd
  [nft]=nftables
  [ip]=iproute2
)
# nginx, nft and ip live in /usr/sbin, which a non-root PATH may leave out.
PATH="$PATH:/usr/sbin"

missing=()
for command in "${!PACKAGE_OF[@]}"; do
  command -v "$command" >/dev/null 2>&1 || missing+=("${PACKAGE_OF[$command]}")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

echo "natprox tests: installing missing Debian packages: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
  else
    echo "natprox tests: need ${missing[*]} but am not root and sudo is missing; install them: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"; }; then
  echo "natprox tests: could not install ${missing[*]}; install them with apt-get and run again" >&2
  exit 1
fi
# The tests start their own nginx, Prometheus and node_exporter on free loopback ports; the
# services the packages start on install are not needed.
for package in nginx-light prometheus prometheus-node-exporter; do
  [[ " ${missing[*]} " == *" $package "* ]] || continue
  service="${package%-light}"
  $sudo service "$service" stop >/dev/null 2>&1 || true
done
