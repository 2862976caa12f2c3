# syntax=docker/dockerfile:1
FROM busybox
ARG NAME=world
RUN <<EOF
echo hello
echo $NAME
EOF
RUN <<EOT
#!/bin/sh
echo script
EOT
COPY <<EOF /etc/greeting
hello ${NAME}
EOF
COPY --chmod=0755 <<run.sh <<cfg.ini /app/
#!/bin/sh
true
run.sh
a=1
cfg.ini
RUN cat <<A <<B
first
A
second
B
