#!/usr/bin/env bash
# Import rate at scale: builds a QtQQ database of USERS users (default 100000) in MariaDB,
# each befriended with the next FRIENDS users (both directions, as QtQQ stores them) and
# MESSAGES stored private messages per user, then times `rosetta import qtqq` into a fresh
# SQLite data dir (or DATABASE_URL). Needs a release build: cargo build --release -p rosetta.
set -euo pipefail
cd "$(dirname "$0")/../.."

USERS=${USERS:-100000}
FRIENDS=${FRIENDS:-5}
MESSAGES=${MESSAGES:-2}
DB=${DB:-rosetta_import_scale}
MYSQL_URL=${MYSQL_URL:-mysql://root@127.0.0.1:3306}
DATA_DIR=${DATA_DIR:-$(mktemp -d)}
mysql() { mariadb -h 127.0.0.1 -u root "$@"; }

mysql -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB"
mysql "$DB" <<SQL
CREATE TABLE \`user\` (
  userid int(5) unsigned zerofill NOT NULL AUTO_INCREMENT,
  user_name varchar(45) NOT NULL, password varchar(45) NOT NULL,
  nickname varchar(45) DEFAULT NULL, signature varchar(60) DEFAULT NULL,
  online_status tinyint(1) DEFAULT 0, head_portrait_id varchar(64) DEFAULT NULL,
  VIP tinyint(1) NOT NULL DEFAULT 0, token varchar(32) DEFAULT NULL,
  password_protect_id int(1) unsigned NOT NULL, answer varchar(32) NOT NULL,
  PRIMARY KEY (userid), UNIQUE KEY (user_name)) DEFAULT CHARSET=latin1;
CREATE TABLE friend_info (friend_id int(5) NOT NULL, userid int(5) NOT NULL) DEFAULT CHARSET=latin1;
CREATE TABLE friend_apply (object_id int(5) NOT NULL, applicant_id int(5) NOT NULL,
  friend_apply_message varchar(200) DEFAULT NULL, PRIMARY KEY (object_id)) DEFAULT CHARSET=latin1;
CREATE TABLE single_chat_info (single_chat_info_id int(11) zerofill NOT NULL AUTO_INCREMENT,
  member_id1 int(5) NOT NULL, member_id2 int(5) NOT NULL, PRIMARY KEY (single_chat_info_id))
  DEFAULT CHARSET=latin1;
CREATE TABLE single_chat_history (chat_info_id int(11) NOT NULL, \`time\` varchar(64) NOT NULL,
  photo tinyint(1) NOT NULL, \`read\` tinyint(1) DEFAULT 0, poster_id int(5) zerofill NOT NULL,
  content varchar(200) NOT NULL) DEFAULT CHARSET=latin1;
CREATE TABLE group_chat_info (group_chat_info_id int(11) NOT NULL, member_id int(5) NOT NULL,
  group_chat_name varchar(45) DEFAULT NULL, group_chat_admin tinyint(1) NOT NULL DEFAULT 0)
  DEFAULT CHARSET=latin1;
CREATE TABLE group_chat_management (applicant_id int(5) NOT NULL,
  group_chat_id varchar(45) NOT NULL, group_chat_management_message varchar(200) DEFAULT '""',
  PRIMARY KEY (group_chat_id)) DEFAULT CHARSET=latin1;
CREATE TABLE group_chat_history (group_chat_info_id int(11) NOT NULL, \`time\` varchar(64) NOT NULL,
  \`read\` varchar(45) DEFAULT '0', poster_id int(5) NOT NULL, content varchar(200) NOT NULL)
  DEFAULT CHARSET=latin1;
CREATE TABLE temperary_message (poster_id int(5) NOT NULL, recv_id int(5) NOT NULL,
  \`time\` varchar(64) NOT NULL, content varchar(200) NOT NULL,
  group_chat_info_id int(11) zerofill NOT NULL DEFAULT 0) DEFAULT CHARSET=latin1;

INSERT INTO \`user\` (userid, user_name, password, nickname, signature, head_portrait_id, VIP,
  password_protect_id, answer)
  SELECT seq + 100, CONCAT('u', seq), MD5(CONCAT('pw', seq)), CONCAT('n', seq), 'sig', '1', 0,
    1, 'answer' FROM seq_1_to_${USERS};
INSERT INTO friend_info (userid, friend_id)
  SELECT u.seq + 100, (u.seq + f.seq) % ${USERS} + 101 FROM seq_1_to_${USERS} u, seq_1_to_${FRIENDS} f
  UNION ALL
  SELECT (u.seq + f.seq) % ${USERS} + 101, u.seq + 100 FROM seq_1_to_${USERS} u, seq_1_to_${FRIENDS} f;
INSERT INTO single_chat_info (single_chat_info_id, member_id1, member_id2)
  SELECT seq, seq + 100, seq % ${USERS} + 101 FROM seq_1_to_${USERS};
INSERT INTO single_chat_history (chat_info_id, \`time\`, photo, \`read\`, poster_id, content)
  SELECT u.seq, '20190904100000', 0, 1, u.seq + 100, CONCAT('m', u.seq, '.', m.seq)
  FROM seq_1_to_${USERS} u, seq_1_to_${MESSAGES} m;
SQL
rows=$(mysql -N "$DB" -e "SELECT (SELECT COUNT(*) FROM \`user\`) + (SELECT COUNT(*) FROM friend_info) + (SELECT COUNT(*) FROM single_chat_history)")
echo "legacy rows: $rows (users $USERS, friend rows $((2 * USERS * FRIENDS)), messages $((USERS * MESSAGES)))"

db_args=(--data-dir "$DATA_DIR")
[ -n "${DATABASE_URL:-}" ] && db_args+=(--database-url "$DATABASE_URL")
start=$(date +%s.%N)
target/release/rosetta import qtqq --from "$MYSQL_URL/$DB" "${db_args[@]}"
end=$(date +%s.%N)
python3 -c "s=$end-$start; print(f'import took {s:.1f} s: {$rows/s:.0f} legacy rows/s, {$USERS/s:.1f} users/s')"
