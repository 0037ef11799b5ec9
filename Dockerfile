# Build the server and every plugin, then copy only what runs into a small image that runs as
# a non-root user (CGI scripts then never run as root; no `user` setting is needed).
#   docker build -t cases .
#   docker run --rm -p 8080:8080 cases
# Reload inside the container: docker kill --signal=HUP <container>

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --workspace --lib --bins \
 && mkdir -p /out/plugins \
 && cp target/release/server /out/ \
 && cp target/release/lib*.so /out/plugins/ \
 && rm -f /out/plugins/libpanicky.so

FROM debian:bookworm-slim
# python3 runs the demo site's .py scripts through cgi_file; leave it out if you have none.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --no-create-home --shell /usr/sbin/nologin cases
WORKDIR /opt/cases
COPY --from=build /out/server /opt/cases/server
COPY --from=build /out/plugins/ /opt/cases/plugins/
COPY config/ /opt/cases/config/
COPY www/ /opt/cases/www/
COPY docs/server.1 /usr/share/man/man1/server.1
# The shipped config listens on 127.0.0.1; in a container, listen on every address.
RUN sed -i 's/^listen = .*/listen = "0.0.0.0:8080"/' config/server.toml \
 && chown -R cases:cases /opt/cases/config
USER cases
EXPOSE 8080
STOPSIGNAL SIGTERM
CMD ["/opt/cases/server", "--config", "/opt/cases/config/server.toml"]
