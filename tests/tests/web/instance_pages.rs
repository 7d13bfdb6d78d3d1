//! Browser tests of the instance pages: create form, file browser with tus, backups, schedules, settings.
