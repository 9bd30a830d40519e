#!/usr/bin/env bash
# Import rate at scale for accounts alone: an OurChat 2024 database of USERS users (default
# 100000; snowflake ids, ocids, SHA-256 hex passwords, one argon2id verifier each) in MariaDB,
# timed through `rosetta import ourchat` into a fresh SQLite data dir (or DATABASE_URL).
# Needs a release build: cargo build --release -p rosetta.
set -euo pipefail
cd "$(dirname "$0")/../.."

USERS=${USERS:-100000}
DB=${DB:-rosetta_import_scale_ourchat}
MYSQL_URL=${MYSQL_URL:-mysql://root@127.0.0.1:3306}
DATA_DIR=${DATA_DIR:-$(mktemp -d)}
mysql() { mariadb -h 127.0.0.1 -u root "$@"; }

mysql -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB"
# Snowflakes of 2024-01-01 (ms since the Twitter epoch, shifted past the 22 machine/sequence
# bits), registration times in seconds to match them.
mysql "$DB" <<SQL
CREATE TABLE \`user\` (id BIGINT UNSIGNED NOT NULL, ocid CHAR(10) NOT NULL, passwd CHAR(64) NOT NULL,
  name CHAR(15) NOT NULL, email CHAR(120) NOT NULL, \`time\` BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (id), UNIQUE KEY (ocid), UNIQUE KEY (email)) DEFAULT CHARSET=utf8mb4;
INSERT INTO \`user\`
  SELECT ((1704067200000 - 1288834974657) << 22) + seq, CONCAT('oc', LPAD(seq, 8, '0')),
    SHA2(CONCAT('pw', seq), 256), CONCAT('n', seq), CONCAT('u', seq, '@example.com'), 1704067200
  FROM seq_1_to_${USERS};
SQL
echo "legacy rows: $USERS users"

db_args=(--data-dir "$DATA_DIR")
[ -n "${DATABASE_URL:-}" ] && db_args+=(--database-url "$DATABASE_URL")
start=$(date +%s.%N)
target/release/rosetta import ourchat --from "$MYSQL_URL/$DB" "${db_args[@]}"
end=$(date +%s.%N)
python3 -c "s=$end-$start; print(f'import took {s:.1f} s: {$USERS/s:.1f} users/s')"
