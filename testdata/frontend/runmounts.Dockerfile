FROM busybox AS assets
RUN mkdir /assets

FROM busybox
WORKDIR /work
RUN --mount=type=secret,id=npmrc,target=/root/.npmrc \
    --mount=type=secret,id=token,env=TOKEN \
    --mount=type=ssh \
    --mount=type=tmpfs,target=/tmp,size=64m \
    --mount=type=bind,from=assets,source=/assets,target=assets,rw \
    --mount=type=cache,target=/var/cache/apk,uid=100,gid=101,mode=0700 \
    --network=none --security=insecure \
    true
RUN --mount=type=bind,from=alpine,target=/alp ls /alp
