//! support API tests (real panel, both engines).
