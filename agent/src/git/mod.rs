//! Git deploy: clone or fetch a repository and sync its tree into an instance's files.
