#!/usr/bin/env bash
# A deployment's certificates for TLS on the batch links and HTTPS (docs/security.md):
#
#   scripts/pki.sh init DIR                 a CA: DIR/ca.pem, DIR/ca.key (keep ca.key offline)
#   scripts/pki.sh issue DIR ROLE NAME [--ip A]... [--dns H]...
#                                           DIR/ROLE-NAME.pem and .key, common name ROLE:ID-or-NAME
#
# ROLE is agent, clyde, bonnie, judger, etcd (a member's server
# certificate: give the addresses clients reach it by with --ip and --dns),
# https (an HTTP server's certificate, a judger's query API or the dashboard:
# NAME is its host, --ip and --dns every address and name clients use, which
# browsers and monitorctl check), or
# registry: a part's (or monitorctl's) client certificate toward etcd, with no
# common name (once etcd's authentication is on, its HTTP gateway refuses a
# client certificate that has one: the etcd user and password say who the
# client is; the certificate, that it is of this deployment). A proxy's or a judger's NAME is its
# configured `name`. An agent's certificate names its sender id: NAME is a
# host (the id is derived from it, printed, and the agent takes it from the
# certificate) or the id itself in decimal. Options (before the command):
# --days N (leaf validity, 397), --ca-days N (3650). Needs the openssl command.
set -euo pipefail

days=397
ca_days=3650
while [ $# -gt 0 ]; do
  case "$1" in
    --days) days="$2"; shift 2 ;;
    --ca-days) ca_days="$2"; shift 2 ;;
    *) break ;;
  esac
done
usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 2 ] || usage
command=$1 dir=$2
umask 077  # keys are readable by their owner only

case "$command" in
  init)
    mkdir -p "$dir"
    if [ -e "$dir/ca.key" ]; then echo "pki: $dir/ca.key exists; not replacing a deployment's CA" >&2; exit 1; fi
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days "$ca_days" \
      -subj "/O=monitor/CN=monitor deployment CA" \
      -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
    chmod 644 "$dir/ca.pem"
    echo "pki: CA $dir/ca.pem (key $dir/ca.key: keep it off the parts' hosts)"
    ;;
  issue)
    [ $# -ge 4 ] || usage
    role=$3 name=$4
    shift 4
    san=()
    while [ $# -gt 0 ]; do
      case "$1" in
        --ip) san+=("IP:$2"); shift 2 ;;
        --dns) san+=("DNS:$2"); shift 2 ;;
        *) usage ;;
      esac
    done
    case "$role" in agent|clyde|bonnie|judger|etcd|registry|https) ;;
      *) echo "pki: role must be agent, clyde, bonnie, judger, etcd, registry or https" >&2; exit 2 ;; esac
    [[ "$name" =~ ^[A-Za-z0-9._-]{1,128}$ ]] || { echo "pki: name must be 1-128 bytes of [A-Za-z0-9._-]" >&2; exit 2; }
    [ -e "$dir/ca.key" ] || { echo "pki: no CA in $dir (scripts/pki.sh init $dir)" >&2; exit 1; }
    identity=$name
    if [ "$role" = agent ] && ! [[ "$name" =~ ^[1-9][0-9]{0,18}$ ]]; then
      # 60 bits of SHA-256 of the host: positive as an int64, like derived sender ids.
      identity=$((16#$(printf 'agent|%s' "$name" | openssl dgst -sha256 -r | cut -c1-15)))
    fi
    out="$dir/$role-$name"
    subject="/O=monitor/CN=$role:$identity"
    [ "$role" != registry ] || subject="/O=monitor/OU=registry:$identity"
    [ "$role" != https ] || subject="/O=monitor/CN=$name"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
      -subj "$subject" -keyout "$out.key" -out "$out.csr" 2>/dev/null
    openssl x509 -req -in "$out.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
      -days "$days" -sha256 \
      -extfile <(printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n'
                 [ ${#san[@]} -eq 0 ] || printf 'subjectAltName=%s\n' "$(IFS=,; echo "${san[*]}")") \
      -out "$out.pem" 2>/dev/null
    rm -f "$out.csr"
    chmod 644 "$out.pem"
    echo "pki: $role:$identity in $out.pem (key $out.key)"
    ;;
  *) usage ;;
esac
