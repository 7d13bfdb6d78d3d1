//! admin API tests (real panel, both engines).
