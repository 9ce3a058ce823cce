# Build: SQLite and libpq are bundled into the binary, so the runtime image needs no -dev package.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock diesel.toml ./
COPY src src
COPY migrations migrations
COPY tests tests
COPY testkit testkit
COPY bench bench
RUN cargo build --release -p proxyvisor --bin proxyvisor

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/target/release/proxyvisor /usr/local/bin/proxyvisor
ENV RUST_LOG=info
EXPOSE 8000
VOLUME ["/app/data"]
ENTRYPOINT ["proxyvisor"]
