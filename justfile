# Short names for the xtask commands; xtask is the one front door.
demo:
    cargo xtask demo
ci:
    cargo xtask ci
e2e *args:
    cargo xtask e2e {{args}}
