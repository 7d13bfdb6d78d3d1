//! settings API tests (real panel, both engines).
