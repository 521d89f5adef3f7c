//! Integration tests of the `edge` binary, one module per command.
