#!/usr/bin/env bash
# A self-signed certificate authority and a server certificate it signs, for
# a first test of the TLS proxy only. In production use a real certificate
# (e.g. from Let's Encrypt or the organiser's CA): browsers trust no test CA.
#   deploy/make-test-ca.sh DIR [NAME...]
# Writes DIR/ca.crt (give it to curl --cacert, browsers, `jo-scanner enroll
# --ca-cert`), DIR/ca.key, DIR/server.crt and DIR/server.key (nginx). The
# server certificate is valid for every NAME (default: localhost) and for
# 127.0.0.1 and ::1. Keys are ECDSA P-256, mode 0600; the CA key signs
# nothing else and can be deleted once the certificate is made.
set -euo pipefail

die() {
    echo "make-test-ca: $*" >&2
    exit 1
}

[[ $# -ge 1 ]] || die "usage: $0 DIR [NAME...]"
dir=$1
shift
names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(localhost)
command -v openssl >/dev/null || die "openssl is needed (Debian package openssl)"
for n in "${names[@]}"; do
    [[ "$n" =~ ^[A-Za-z0-9.-]+$ ]] || die "not a host name: $n"
done
mkdir -p "$dir"
umask 077

san="IP:127.0.0.1,IP:::1"
for n in "${names[@]}"; do
    san="DNS:$n,$san"
done

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" -days 30 \
    -subj "/CN=JO E-Tickets test CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$dir/server.key" -out "$dir/server.csr" \
    -subj "/CN=${names[0]}" 2>/dev/null
printf '%s\n' \
    "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" \
    "subjectAltName=$san" >"$dir/server.ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -CAcreateserial -out "$dir/server.crt" -days 30 -extfile "$dir/server.ext" 2>/dev/null
rm -f "$dir/server.csr" "$dir/server.ext" "$dir/ca.srl"
chmod 644 "$dir/ca.crt" "$dir/server.crt"
openssl verify -CAfile "$dir/ca.crt" "$dir/server.crt" >/dev/null
echo "test CA: $dir/ca.crt; server certificate for ${names[*]}, 127.0.0.1, ::1: $dir/server.crt (30 days)"
