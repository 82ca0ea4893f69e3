# expect: dockerfile parse error on line 2: no build stage in current context
RUN true
FROM busybox
