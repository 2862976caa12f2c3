FROM busybox
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/files/tool.tar.gz /opt/
ADD https://example.com/ /web/
ADD app.tar.gz /srv/
ADD --keep-git-dir=true https://github.com/moby/buildkit.git#v0.34.2:docs /src/buildkit
COPY --chown=app:staff --chmod=u+rwx,go-w --exclude=*.md --parents ./src/./pkg/*.go /dst/
COPY --chown=1000 a b c /multi/
COPY --link --chown=10:20 x /x
