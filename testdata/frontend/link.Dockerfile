FROM busybox AS build
RUN echo built > /out
FROM busybox
WORKDIR /app
COPY --link a.txt .
COPY --link --from=build --chown=1000:1000 /out /opt/out
ADD --link app.tar.gz /srv/
COPY --link --chmod=0600 b.txt /etc/
COPY --link <<EOF /etc/motd
hi
EOF
