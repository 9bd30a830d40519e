#!/usr/bin/env bash
# Where PostgreSQL's time goes during scenario 1: runs bench/conversation.sh postgres with every
# statement's duration logged, then sums the log by statement (parse, bind and execute apart;
# multi-row VALUES lists folded) and prints the statements that took the longest in total.
# Time spent waiting for a row lock counts in the statement that waited.
#
#   bench/pg-statements.sh [BIN_DIR] [-- rosetta-bench conversation flags]
#
# The arguments are bench/conversation.sh's after its SETUP, e.g.
#   bench/pg-statements.sh target/release -- --users 20 --messages 20000 --duration 8s --concurrency 256
#
# Needs the local PostgreSQL's server log (LOG, default the Debian cluster's file) and the right
# to ALTER SYSTEM; the setting is reset on exit. TOP (default 16) statements are printed.
set -euo pipefail
LOG=${LOG:-/var/log/postgresql/postgresql-15-main.log}
TOP=${TOP:-16}
pg() { psql -q -h 127.0.0.1 -U postgres -At -c "$1" -c "select pg_reload_conf()" >/dev/null; }
trap 'pg "alter system reset log_min_duration_statement"' EXIT
pg "alter system set log_min_duration_statement = 0"
start=$(($(wc -l <"$LOG") + 1))
"$(dirname "$0")/conversation.sh" postgres "$@" | grep -E "send rate|lost"
tail -n +"$start" "$LOG" | python3 -c '
import collections, re, sys
count, total = collections.Counter(), collections.Counter()
for line in sys.stdin:
    m = re.search(r"duration: ([\d.]+) ms\s+(statement|execute|parse|bind)[^:]*: (.*)", line)
    if not m:
        continue
    sql = re.sub(r"\$\d+(::\w+)?", "$", m.group(3))
    sql = re.sub(r"(\(\$(, \$)*\))(, \1)+", r"\1, …", sql)
    sql = re.sub(r"IN \(\$[^)]*\)", "IN (…)", sql)
    key = ("execute" if m.group(2) == "statement" else m.group(2), sql[:100])
    count[key] += 1
    total[key] += float(m.group(1))
print("  count  total ms phase    statement")
for key in sorted(count, key=lambda k: -total[k])[:int(sys.argv[1])]:
    print(f"{count[key]:7d} {total[key]:9.1f} {key[0]:8} {key[1]}")
' "$TOP"
