#!/bin/sh
# Generates the keys and self-signed certificates of the two loopback stations, MYCO and ACME
# (RSA-2048, valid for DAYS days, default 365), next to this script. Trading partners exchange
# the .crt files only; each keeps its .key to itself.
set -eu
cd "$(dirname "$0")"
DAYS=${DAYS:-365}
for station in myco acme; do
  name=$(echo "$station" | tr a-z A-Z)
  openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days "$DAYS" \
    -subj "/O=as2kit example/CN=$name" \
    -addext "keyUsage=digitalSignature,keyEncipherment" \
    -keyout "$station.key" -out "$station.crt" 2>/dev/null
  chmod 600 "$station.key"
  echo "$station.key, $station.crt: $(openssl x509 -in "$station.crt" -noout -subject -enddate | tr '\n' ' ')"
done
