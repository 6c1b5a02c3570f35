#!/usr/bin/env bash
# Installs the Debian packages that raftq's tests and benchmarks drive for real:
# kcat (librdkafka), etcd-server (discovery tests), nats-server (benchmark peer)
# and Debian's Python Kafka clients, run with /usr/bin/python3: python3-kafka
# (kafka-python, pure Python) and python3-confluent-kafka (on librdkafka);
# chromium loads the admin dashboard in tests/dashboard_test.ts; redis-server is
# the latency peer of `deno task bench` (one fsynced XADD in flight); Go and
# Debian's sarama build the Go client of tests/sarama_test.ts offline
# (GOPATH=/usr/share/gocode).
set -euo pipefail
need=()
command -v kcat >/dev/null 2>&1 || need+=(kcat)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v go >/dev/null 2>&1 || need+=(golang-go)
# cgo: sarama's zstd codec is C.
command -v gcc >/dev/null 2>&1 || need+=(gcc)
[ -d /usr/share/gocode/src/github.com/Shopify/sarama ] ||
  need+=(golang-github-shopify-sarama-dev)
/usr/bin/python3 -c "import kafka" >/dev/null 2>&1 || need+=(python3-kafka)
/usr/bin/python3 -c "import confluent_kafka" >/dev/null 2>&1 ||
  need+=(python3-confluent-kafka)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
kcat -V | head -n 1
