# Shared by the bench scripts (sourced).

# Waits (at most 60 s) until something accepts on $1:$2.
wait_port() {
  local deadline=$((SECONDS + 60))
  until (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; do
    if ((SECONDS > deadline)); then echo "nothing listens on $1:$2 after 60 s" >&2; exit 1; fi
    sleep 0.2
  done
}

# The process's resident memory, KiB.
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# The settings every bench node runs with: no metrics or web listener, no per-source throttles
# (the load comes from a few loopback addresses), a hash queue that holds a login burst.
bench_node_env() {
  export ROSETTA_METRICS_LISTEN= ROSETTA_WEB_LISTEN= ROSETTA_ACCOUNT__SOURCE_LOGIN_PER_MINUTE=0 \
    ROSETTA_ACCOUNT__SOURCE_REGISTER_PER_MINUTE=0 ROSETTA_ACCOUNT__SOURCE_CODE_PER_MINUTE=0 \
    ROSETTA_ACCOUNT__HASH_QUEUE=1024
}
