# Multi-stage build: a release build of the three executables, then a slim runtime
# image that runs as an unprivileged user.
FROM swift:6.1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends librabbitmq-dev libpq-dev libcurl4-openssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
RUN swift package resolve
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --static-swift-stdlib \
    --product parley-gateway --product parley-worker --product parley-llm-sim \
    && mkdir /out && cp "$(swift build -c release --show-bin-path)"/parley-* /out/

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends librabbitmq4 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home parley
COPY --from=build /out/ /usr/local/bin/
USER parley
EXPOSE 8080 9100 8090
CMD ["parley-gateway"]
