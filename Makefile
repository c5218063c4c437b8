# flock: build, run and test. `make run` and `make test` are all you need;
# both install missing Debian packages first (apt-get, sudo when not root).
SHELL := /bin/bash

BUILD_DIR ?= build
ASAN_DIR ?= build-asan
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= 2
FLOCKD_ARGS ?=

PACKAGES := cmake g++ make ninja-build pkg-config libboost1.81-dev \
	libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
	librocksdb-dev prometheus-cpp-dev libgtest-dev libgmock-dev libssl-dev \
	libyaml-cpp-dev libraft-dev mosquitto mosquitto-clients python3-paho-mqtt \
	python3-pytest python3-yaml python3-cryptography openssl haproxy iproute2 prometheus
# Only the tests of the image and the chart need these (make test installs them).
DEPLOY_TEST_PACKAGES := yamllint podman runc debootstrap dnsmasq-base

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps test-deps build run test test-asan clean

all: build

# Installs only what is missing; `apt-get update` runs only when something is.
deps:
	@$(MAKE) --no-print-directory install-packages WANTED="$(PACKAGES)"

test-deps:
	@$(MAKE) --no-print-directory install-packages WANTED="$(PACKAGES) $(DEPLOY_TEST_PACKAGES)"

.PHONY: install-packages
install-packages:
	@missing=""; \
	for p in $(WANTED); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing:$$missing"; \
	  $(SUDO) apt-get update && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

build: deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
	cmake --build $(BUILD_DIR) -j$(JOBS)

# Foreground broker with the built-in defaults (MQTT on 127.0.0.1:1883, data
# in ./data). Ctrl-C stops it cleanly. Extra flags: make run FLOCKD_ARGS="--workers 2".
run: build
	./$(BUILD_DIR)/bin/flockd $(FLOCKD_ARGS)

test: test-deps build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(JOBS)
	$(MAKE) test-asan

# Same tests under AddressSanitizer + UBSan, in a separate build directory.
test-asan: deps
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DFLOCK_SANITIZE=ON
	cmake --build $(ASAN_DIR) -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:quarantine_size_mb=32 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 UBSAN_OPTIONS=print_stacktrace=1 FLOCK_SANITIZED=1 FLOCK_WORKERS=4 \
	  ctest --test-dir $(ASAN_DIR) --output-on-failure -j$(JOBS)

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR)

# flockd versus Mosquitto with flock-bench (tools/flock-bench/compare.sh): fresh
# brokers on free loopback ports, the seven cases of issue 5 (QoS 0 fan-in and
# pairs, QoS 1 pairs, fan-out to 1000, QoS 1 at 10k msg/s, persistent QoS 1,
# 19,000 idle subscribers) of ~10 s per broker, a table of flock/mosquitto
# ratios with broker CPU per message (about 4 minutes). Then the 3-node
# cluster's headline cases (tools/flock-bench/cluster.sh; Mosquitto has no
# cluster, so those ratios are cross-node/single-node; about 2 minutes).
# Extra flags: make bench BENCH_ARGS="--duration 5 --only qos1-pairs"
#              BENCH_CLUSTER_ARGS="--duration 5" BENCH_CLUSTER_CASES=qos1-max
.PHONY: bench
BENCH_ARGS ?=
BENCH_CLUSTER_CASES ?= qos0-800k,qos1-max,qos1-max-w64,qos1-10k,converge-1ms,move-100
bench: deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
	cmake --build $(BUILD_DIR) -j$(JOBS) --target flockd flock-bench
	tools/flock-bench/compare.sh --flockd $(BUILD_DIR)/bin/flockd --bench $(BUILD_DIR)/bin/flock-bench $(BENCH_ARGS)
	@echo
	@echo "The 3-node cluster against one node (cross-node/single-node ratios):"
	tools/flock-bench/cluster.sh --flockd $(BUILD_DIR)/bin/flockd --bench $(BUILD_DIR)/bin/flock-bench \
	  --only $(BENCH_CLUSTER_CASES) $(BENCH_CLUSTER_ARGS)

# The cluster on this machine with flock-bench (tools/flock-bench/cluster.sh):
# 3 flockd nodes plus a single node on free loopback ports, forwarding
# throughput and latency, route convergence and session moves, a table of
# cross-node/single-node ratios (about 3 minutes, at most 5).
# Extra flags: make bench-cluster BENCH_CLUSTER_ARGS="--duration 3 --only converge-1ms".
.PHONY: bench-cluster
BENCH_CLUSTER_ARGS ?=
bench-cluster: deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
	cmake --build $(BUILD_DIR) -j$(JOBS) --target flockd flock-bench
	tools/flock-bench/cluster.sh --flockd $(BUILD_DIR)/bin/flockd --bench $(BUILD_DIR)/bin/flock-bench $(BENCH_CLUSTER_ARGS)

# The container image: make image, make image-source (deploy/image.mk).
include deploy/image.mk
