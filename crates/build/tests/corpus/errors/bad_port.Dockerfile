# expect: dockerfile parse error on line 3: invalid containerPort: http
FROM busybox
EXPOSE http
