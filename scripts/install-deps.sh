#!/usr/bin/env bash
# Installs the Debian 12 packages monitor needs, if any is missing (apt-get,
# through sudo when not root). Safe to run again: it does nothing when all are there.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config
  libboost1.81-dev libboost-json1.81-dev
  libfmt-dev libspdlog-dev libcxxopts-dev
  catch2 libbenchmark-dev prometheus-cpp-dev libsqlite3-dev
  clang libclang-rt-14-dev python3
  etcd-server etcd-client
  libcurl4-openssl-dev python3-aiosmtpd
  prometheus victoria-metrics influxdb
  chromium chromium-driver python3-selenium
  python3-statsd golang-go golang-github-datadog-datadog-go-dev
  iproute2 util-linux  # the host metrics tests make veth pairs in namespaces of their own
)
# The dashboard's web build runs npm (dashboard/web/package-lock.json): Debian's,
# unless a Node.js with npm is on the machine already.
command -v npm >/dev/null || packages+=(npm)
command -v node >/dev/null || packages+=(nodejs)  # the Node binding's tests

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >/dev/null
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
