//! sftp API tests (real panel, both engines).
