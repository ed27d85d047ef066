#!/usr/bin/env bash
# dev-pki.sh DIR: a development PKI for paygate, made with the openssl CLI only.
#   ca.crt/ca.key               local CA, EC P-256, 10 years
#   server.crt/server.key       CN=localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1, EKU serverAuth
#   <principal>.crt/.key        one client certificate per principal of config/examples/local.yaml,
#                               CN=<principal>, EKU clientAuth
# Idempotent: a file set that exists, matches its key, verifies against ca.crt for its purpose and is valid
# for another week is kept; anything else is (re)issued. Keys are 0600, certificates 0644.
# For development and tests only: the CA key sits next to the certificates.
set -euo pipefail

dir=${1:?usage: dev-pki.sh DIR}
principals=(sales-platform claims-system finance risk-team approver operator)
leaf_days=825
week_s=$((7 * 86400))

command -v openssl >/dev/null || {
  echo "dev-pki.sh: openssl not found (package openssl)" >&2
  exit 1
}

mkdir -p "$dir" # before the umask below, so parent dirs stay searchable (e.g. by the postgres account)
chmod 0755 "$dir" # certificates are public; the keys inside stay 0600
# Private keys must never exist with wider permissions, not even for a moment.
umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

log() { printf '[dev-pki] %s\n' "$*" >&2; }

new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# Random 128-bit serials: reissued certificates never collide with earlier ones.
serial() { printf '0x%s' "$(openssl rand -hex 16)"; }

# key_matches KEY CRT: the certificate carries the key's public half.
key_matches() {
  [[ $(openssl pkey -in "$1" -pubout 2>/dev/null) == "$(openssl x509 -in "$2" -noout -pubkey 2>/dev/null)" ]]
}

# cert_ok NAME PURPOSE: NAME.crt/NAME.key exist, match, chain to ca.crt for PURPOSE and stay valid a week.
cert_ok() {
  local name=$1 purpose=$2
  [[ -s $dir/$name.key && -s $dir/$name.crt ]] || return 1
  key_matches "$dir/$name.key" "$dir/$name.crt" || return 1
  openssl x509 -in "$dir/$name.crt" -noout -checkend "$week_s" >/dev/null 2>&1 || return 1
  openssl verify -CAfile "$dir/ca.crt" -purpose "$purpose" "$dir/$name.crt" >/dev/null 2>&1
}

# Files are written in the scratch dir and moved in, so an interrupted run never leaves a key without its
# certificate (or a truncated file) behind. Key first: a cert without its key is never "present".
install_pair() {
  local name=$1
  chmod 0600 "$tmp/$name.key"
  chmod 0644 "$tmp/$name.crt"
  mv -f "$tmp/$name.key" "$dir/$name.key"
  mv -f "$tmp/$name.crt" "$dir/$name.crt"
}

ca_ok() {
  [[ -s $dir/ca.key && -s $dir/ca.crt ]] || return 1
  key_matches "$dir/ca.key" "$dir/ca.crt" || return 1
  openssl x509 -in "$dir/ca.crt" -noout -checkend "$week_s" >/dev/null 2>&1
}

if ! ca_ok; then
  log "creating CA in $dir"
  cat >"$tmp/ca.cnf" <<'EOF'
[req]
prompt = no
distinguished_name = dn
x509_extensions = v3_ca
[dn]
O = paygate development
CN = paygate dev CA
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
  new_key "$tmp/ca.key"
  openssl req -x509 -new -config "$tmp/ca.cnf" -key "$tmp/ca.key" -sha256 -days 3650 \
    -set_serial "$(serial)" -out "$tmp/ca.crt"
  install_pair ca
  # A new CA invalidates every leaf; cert_ok below notices (they no longer verify) and reissues them.
fi

# issue NAME CN EKU [SAN]: a leaf certificate signed by the CA.
issue() {
  local name=$1 cn=$2 eku=$3 san=${4:-}
  {
    printf '%s\n' '[req]' 'prompt = no' 'distinguished_name = dn' '[dn]' "CN = $cn"
  } >"$tmp/$name.req.cnf"
  {
    printf '%s\n' '[v3]' 'basicConstraints = critical, CA:FALSE' 'keyUsage = critical, digitalSignature' \
      "extendedKeyUsage = $eku" 'subjectKeyIdentifier = hash' 'authorityKeyIdentifier = keyid:always'
    [[ -n $san ]] && printf 'subjectAltName = %s\n' "$san"
  } >"$tmp/$name.ext.cnf"
  new_key "$tmp/$name.key"
  openssl req -new -config "$tmp/$name.req.cnf" -key "$tmp/$name.key" -out "$tmp/$name.csr"
  openssl x509 -req -in "$tmp/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -set_serial "$(serial)" \
    -days "$leaf_days" -sha256 -extfile "$tmp/$name.ext.cnf" -extensions v3 -out "$tmp/$name.crt" 2>/dev/null
  install_pair "$name"
}

if ! cert_ok server sslserver; then
  log "issuing server certificate (CN=localhost)"
  issue server localhost serverAuth 'DNS:localhost, IP:127.0.0.1, IP:::1'
fi

for p in "${principals[@]}"; do
  if ! cert_ok "$p" sslclient; then
    log "issuing client certificate CN=$p"
    issue "$p" "$p" clientAuth
  fi
done

# Re-assert modes every run: an earlier copy or editor may have widened them, and paygated refuses
# key files readable by group or others.
chmod 0600 "$dir"/*.key
chmod 0644 "$dir"/*.crt
log "dev PKI ready in $dir"
