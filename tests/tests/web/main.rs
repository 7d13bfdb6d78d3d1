//! The web panel: pages in a real headless Chromium (Debian's `chromium`, driven through
//! `chromedriver` over WebDriver) against a real panel and a real agent, and its security
//! properties checked over plain HTTP (CSRF, cookie flags, headers, error pages).

mod access_pages;
mod account_pages;
mod alert_bell;
mod alerts_page;
mod billing_pages;
mod browser;
mod credentials_page;
mod deploy_pages;
mod dns_pages;
mod flows;
mod instance_pages;
mod integrations_page;
mod monitoring_page;
mod node_cloud_page;
mod node_shell;
mod planner_advice;
mod provision_pages;
mod pterodactyl_pages;
mod rules_page;
mod security;
mod system_backup_page;
mod typed_pages;
