//! Applies an egg's `config.files` to the server files before each start.
