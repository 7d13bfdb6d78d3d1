//! schedules API tests (real panel, both engines).
