# expect: dockerfile parse error on line 3: unterminated heredoc
FROM busybox
RUN <<EOF
echo never closed
