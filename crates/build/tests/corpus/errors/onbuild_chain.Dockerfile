# expect: dockerfile parse error on line 3: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed
FROM busybox
ONBUILD ONBUILD RUN x
