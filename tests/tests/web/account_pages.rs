//! Browser tests of workloads import, organizations and members, account (MFA, tokens) and admin pages.
