# train-reservation: the commands a developer and CI use.
#   make run       build and run the service (private redis-server under ./data/redis)
#   make test      compose-check, unit + integration tests against real redis-servers, a Locust
#                  smoke run, then the operations checks (tests/ops: metrics, schemathesis,
#                  /docs and the seat map in Chromium)
#   make compose-check  docker-compose.yml checked by docker-compose itself, for every profile
#   make loadtest  a longer Locust swarm against a fresh service
#   make bench     throughput and latency figures (see README "Performance")
#   make screenshots  refresh docs/swagger-ui*.png and docs/seat-map.png from the browser checks
# redis-server, docker-compose and chromium are installed with apt-get when
# missing and running as root; otherwise the target stops and says how to
# install them.

VENV          ?= .venv
LOCUST        := $(VENV)/bin/locust
LOCUST_SPEC   ?= locust==2.47.0
OPS_REQUIREMENTS := tests/ops/requirements.txt
OPS_INSTALLED := $(VENV)/.ops-requirements
CARGO         ?= cargo

.PHONY: run test loadtest bench redis chromium venv compose-check screenshots clean

redis:
	@scripts/ensure-redis.sh

chromium:
	@scripts/ensure-chromium.sh

# Parses docker-compose.yml (no Docker engine needed) with secrets unset and
# with .env.example; tests/deploy.rs checks the Dockerfile.
compose-check:
	@scripts/check-compose.sh

# Locust, schemathesis and the other Python test tools live in a git-ignored
# virtualenv under the project.
$(LOCUST):
	@echo "installing Locust into $(VENV) (pip, about a minute)..."
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check "$(LOCUST_SPEC)"

$(OPS_INSTALLED): $(OPS_REQUIREMENTS) | $(LOCUST)
	@echo "installing the operations checks' tools into $(VENV) (pip)..."
	$(VENV)/bin/pip install -q --disable-pip-version-check -r $(OPS_REQUIREMENTS)
	@touch $@

venv: $(LOCUST) $(OPS_INSTALLED)

run: redis
	$(CARGO) run --release --locked

test: redis venv compose-check chromium
	$(CARGO) test --locked
	scripts/locust-smoke.sh target/debug/train-reservation $(VENV)
	TRAIN_RESERVATION_BIN=target/debug/train-reservation $(VENV)/bin/pytest -q tests/ops

# The browser checks save their screenshots under target/ops; the README shows these.
screenshots: redis venv chromium
	$(CARGO) build --locked
	TRAIN_RESERVATION_BIN=target/debug/train-reservation $(VENV)/bin/pytest -q tests/ops/test_docs_browser.py tests/ops/test_map_browser.py
	mkdir -p docs && cp target/ops/swagger-ui.png target/ops/swagger-ui-try-it-out.png target/ops/seat-map.png docs/

loadtest: redis venv
	$(CARGO) build --release --locked
	LOCUST_USERS=$${LOCUST_USERS:-1000} LOCUST_RUN_TIME=$${LOCUST_RUN_TIME:-60s} \
	  LOCUST_SEATS=$${LOCUST_SEATS:-100} \
	  scripts/locust-smoke.sh target/release/train-reservation $(VENV)

# Needs wrk, redis-benchmark and nginx (the fixed-answer ceiling) (Debian:
# wrk, redis-tools, nginx-light); installs wrk and nginx-light as root.
bench: redis
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && echo "installing wrk (apt-get)..." && \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk; } || \
	  { echo "wrk is missing: sudo apt-get install -y wrk" >&2; exit 1; }
	@command -v nginx >/dev/null || PATH="$$PATH:/usr/sbin" command -v nginx >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && echo "installing nginx-light (apt-get)..." && \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light; } || \
	  { echo "nginx is missing: sudo apt-get install -y nginx-light" >&2; exit 1; }
	$(CARGO) build --release --locked
	python3 bench/bench.py
	python3 bench/peer.py

clean:
	$(CARGO) clean
	rm -rf data
