# expect: failed to reach build target nope in Dockerfile
# target: nope
FROM busybox AS one
