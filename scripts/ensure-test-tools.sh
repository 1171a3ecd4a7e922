#!/usr/bin/env bash
# Installs what the test suite needs from Debian, only when it is missing:
#   openssl            the independent CMS peer (interop matrix)
#   a JDK (javac)      to compile the Bouncy Castle helper
#   libbcpkix-java     Bouncy Castle, the independent CompressedData peer
#   tinyproxy         a real HTTP proxy (CONNECT and forward) for the transport tests
#   dante-server       a real SOCKS4/SOCKS5 proxy (danted) for the transport tests
#   postgresql        a real PostgreSQL for the shared-store (cluster) tests; started per test file
#                      by test/helpers/postgres.ts as the system user as2kit-pg (it refuses root)
#   haproxy           a real load balancer in front of two or three `as2 receive` nodes
#   time, curl         /usr/bin/time -v for peak RSS and curl for the openssl baseline, with the argument "bench"
# Runs as root (CI, the dev machines) or through sudo.
set -euo pipefail

need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v javac >/dev/null 2>&1 || need+=(default-jdk-headless)
[ -f /usr/share/java/bcpkix.jar ] && [ -f /usr/share/java/bcprov.jar ] || need+=(libbcpkix-java libbcprov-java)
command -v tinyproxy >/dev/null 2>&1 || need+=(tinyproxy)
[ -x /usr/sbin/danted ] || need+=(dante-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
if [ "${1:-}" = "bench" ]; then [ -x /usr/bin/time ] || need+=(time); command -v curl >/dev/null 2>&1 || need+=(curl); fi

# dante checks SOCKS5 usernames against the system's password file: the proxy tests log in as
# this account (no home, no shell; only danted on 127.0.0.1 ever asks for it).
SOCKS_USER=as2kit-socks
ensure_socks_user() {
  if id "$SOCKS_USER" >/dev/null 2>&1 || [ "$(id -u)" -ne 0 ]; then return 0; fi
  useradd --system --no-create-home --shell /usr/sbin/nologin "$SOCKS_USER"
  echo "$SOCKS_USER:as2kit-socks-test" | chpasswd
}

# PostgreSQL will not run as root: the tests start their throwaway clusters as this account.
PG_USER=as2kit-pg
ensure_pg_user() {
  if id "$PG_USER" >/dev/null 2>&1 || [ "$(id -u)" -ne 0 ]; then return 0; fi
  useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER"
}

if [ ${#need[@]} -eq 0 ]; then
  ensure_socks_user
  ensure_pg_user
  exit 0
fi

echo "ensure-test-tools: installing ${need[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "ensure-test-tools: ${need[*]} missing and not root (no sudo): install them with apt-get" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
ensure_socks_user
ensure_pg_user
