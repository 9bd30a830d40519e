#!/usr/bin/env sh
# Writes the Ed25519 token key pair docker-compose.yml hands to the services as secrets
# (deploy/secrets/jwt.pem for the account service, jwt.pub.pem for every role), and the
# bridge key (bridge.key: 32 random bytes as hex, for the account service and every bridge).
# Keeps existing files: replacing the pair invalidates every issued token.
set -eu
dir="$(dirname "$0")/secrets"
mkdir -p "$dir"
if [ ! -s "$dir/jwt.pem" ]; then
  (umask 077 && openssl genpkey -algorithm ed25519 -out "$dir/jwt.pem")
fi
openssl pkey -in "$dir/jwt.pem" -pubout -out "$dir/jwt.pub.pem"
if [ ! -s "$dir/bridge.key" ]; then
  (umask 077 && openssl rand -hex 32 > "$dir/bridge.key")
fi
# The containers run as uid 10001: compose file secrets keep the file's mode.
chmod 0644 "$dir/jwt.pem" "$dir/jwt.pub.pem" "$dir/bridge.key"
echo "token keys and bridge key in $dir"
