# expect: Dockerfile cannot be empty

# nothing here
