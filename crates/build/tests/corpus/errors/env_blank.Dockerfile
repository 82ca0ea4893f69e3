# expect: dockerfile parse error on line 3: ENV names can not be blank
FROM busybox
ENV =value
