# expect: dockerfile parse error on line 3: when using JSON array syntax, arrays must be comprised of strings only
FROM busybox
CMD ["a", 1]
