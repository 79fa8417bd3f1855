# One image for the three Parley programs (parley-gateway, parley-worker,
# parley-llm-sim); compose.yaml picks the program with `command`.
#
#   docker build -t parley .                       (compose.yaml does this for you)
#   docker run --rm parley parley-worker migrate   (any program, any arguments)
#
# Stage 1 builds a release with the Swift runtime linked in statically; stage 2 is a
# slim Debian with only the shared libraries the binaries still load, run as an
# unprivileged user.

ARG SWIFT_VERSION=6.3

# ---------------------------------------------------------------- build
FROM swift:${SWIFT_VERSION}-bookworm AS build

# The same system libraries scripts/lib/deps.sh installs for a local build:
# rabbitmq-c (the CRabbitMQ system library), PostgreSQL and curl headers.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        librabbitmq-dev libpq-dev libcurl4-openssl-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# Dependencies first, so that a change of the sources does not fetch them again.
# Package.resolved is not committed; it is used when the build context has one.
COPY Package.swift Package.resolve[d] ./
RUN swift package resolve

# SwiftPM checks every target's directory, the test targets' too; Plugins/ holds
# the build plugin that embeds the gateway's OpenAPI document and docs page.
COPY Sources ./Sources
COPY Plugins ./Plugins
COPY Tests ./Tests

# Every executable product (parley-gateway, parley-worker, parley-llm-sim, and the
# load tool parley-load, to load a deployment from inside it); test targets are not built. Symbols stay, for readable crash backtraces.
RUN swift build -c release --static-swift-stdlib \
    && bin="$(swift build -c release --static-swift-stdlib --show-bin-path)" \
    && mkdir -p /out \
    && cp "$bin/parley-gateway" "$bin/parley-worker" "$bin/parley-llm-sim" "$bin/parley-load" /out/

# ---------------------------------------------------------------- runtime
FROM debian:bookworm-slim

# librabbitmq4   rabbitmq-c, linked dynamically (brings libssl3)
# libstdc++6     the C++ runtime the Swift runtime needs, even linked statically
# tzdata         time zones for Foundation
# ca-certificates TLS to the LLM providers and the learning platform
# curl           the health checks of compose.yaml
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        librabbitmq4 libstdc++6 tzdata ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --user-group --uid 10001 --home-dir /app --shell /usr/sbin/nologin parley

COPY --from=build /out/ /usr/local/bin/
# A library missing from the list above fails the build here, not the first start.
RUN for binary in /usr/local/bin/parley-*; do \
        if ldd "$binary" | grep 'not found'; then echo "$binary: missing shared libraries" >&2; exit 1; fi; \
    done

WORKDIR /app
# The example topic catalog: compose.yaml sets TOPICS_FILE=/app/config/topics.example.json.
COPY config/ /app/config/

# Listen on every interface of the container (the programs default to 127.0.0.1).
ENV GATEWAY_HOST=0.0.0.0 \
    WORKER_HOST=0.0.0.0 \
    LLM_SIM_HOST=0.0.0.0

USER parley:parley
# gateway /ws, /health, /metrics; worker /health, /metrics; simulator
EXPOSE 8080 9100 8090
CMD ["parley-gateway"]
