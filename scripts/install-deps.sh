#!/usr/bin/env bash
# Installs the Debian 12 packages monitor needs, if any is missing (apt-get,
# through sudo when not root). Safe to run again: it does nothing when all are there.
set -euo pipefail

# What the daemons, monitorctl, the demo app and the dashboard's web build need:
# all the quick start installs (scripts/install-deps.sh --demo).
packages=(
  g++ cmake ninja-build pkg-config
  libboost1.81-dev libboost-json1.81-dev
  libfmt-dev libspdlog-dev libcxxopts-dev
  libsqlite3-dev libcurl4-openssl-dev libssl-dev openssl python3
)
# What the tests, benches and fuzzers add, with the real servers they start.
if [ "${1:-}" != "--demo" ]; then
  packages+=(
    catch2 libbenchmark-dev prometheus-cpp-dev
    clang libclang-rt-14-dev
    etcd-server etcd-client python3-aiosmtpd
    prometheus victoria-metrics influxdb
    chromium chromium-driver python3-selenium
    python3-statsd golang-go golang-github-datadog-datadog-go-dev
    iproute2 util-linux  # the host metrics tests make veth pairs in namespaces of their own
    nftables  # the fault tests drop packets inside such a namespace
    faketime  # and step a part's clock (libfaketime)
  )
fi
# The dashboard's web build runs npm (dashboard/web/package-lock.json): Debian's,
# unless a Node.js with npm is on the machine already.
command -v npm >/dev/null || packages+=(npm)
[ "${1:-}" = "--demo" ] || command -v node >/dev/null || packages+=(nodejs)  # the Node binding's tests

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${#missing[@]} packages with apt-get: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: apt-get update" >&2
$sudo apt-get update -q >/dev/null
# Its progress shows (one line per package unpacked and set up): the first run takes minutes.
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}" | grep -E "^(Unpacking|Setting up) " >&2 || true
