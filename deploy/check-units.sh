#!/usr/bin/env bash
# Verifies deploy/systemd/*.service and *.timer with systemd-analyze, the binaries of the
# build tree standing in for /usr/local/bin. Skips (exit 0, saying so) where
# systemd-analyze is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
build="$(cd "${1:-build}" && pwd)"
command -v systemd-analyze >/dev/null || { echo "check-units: no systemd-analyze here; not checked"; exit 0; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for unit in deploy/systemd/*.service; do
  sed -e "s|/usr/local/bin/monitor-agent|$build/agent/monitor-agent|" \
      -e "s|/usr/local/bin/monitor-proxy|$build/proxy/monitor-proxy|" \
      -e "s|/usr/local/bin/monitor-judger|$build/judger/monitor-judger|" \
      -e "s|/usr/local/bin/monitor-dashboard|$build/dashboard/monitor-dashboard|" \
      -e "s|/usr/local/bin/monitorctl|$build/console/monitorctl|" "$unit" > "$dir/$(basename "$unit")"
done
cp deploy/systemd/*.timer "$dir/"
status=0
for unit in "$dir"/*.service "$dir"/*.timer; do
  name=$(basename "$unit")
  [[ "$name" == *@.service ]] && { cp "$unit" "$dir/${name/@./@check.}"; unit="$dir/${name/@./@check.}"; }
  # Complaints about the user not existing here are the host's, not the unit's.
  out=$(systemd-analyze verify "$unit" 2>&1 | grep -v -E "User=|Group=|No such process|Failed to connect" || true)
  if [ -n "$out" ]; then
    echo "check-units: $name: $out" >&2
    status=1
  else
    echo "check-units: $name verified"
  fi
done
exit $status
