//! git API tests (real panel, both engines).
