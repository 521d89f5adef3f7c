//! Integration tests of the `host` binary, one module per command.
