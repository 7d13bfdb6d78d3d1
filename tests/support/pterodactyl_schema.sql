-- The part of a Pterodactyl 1.x panel's MariaDB/MySQL schema that Shardlyn's
-- database-mode import reads, written for our tests from the columns Pterodactyl
-- documents (names and types as in 1.11; no foreign keys, no other tables). Loaded into
-- a private MariaDB by tests/src/mariadb.rs.

CREATE TABLE locations (
  id int unsigned NOT NULL AUTO_INCREMENT,
  short varchar(191) NOT NULL,
  `long` text,
  created_at timestamp NULL DEFAULT NULL,
  updated_at timestamp NULL DEFAULT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY locations_short_unique (short)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE users (
  id int unsigned NOT NULL AUTO_INCREMENT,
  external_id varchar(191) DEFAULT NULL,
  uuid char(36) NOT NULL,
  username varchar(191) NOT NULL,
  email varchar(191) NOT NULL,
  name_first varchar(191) DEFAULT NULL,
  name_last varchar(191) DEFAULT NULL,
  password text NOT NULL,
  remember_token varchar(191) DEFAULT NULL,
  language char(5) NOT NULL DEFAULT 'en',
  root_admin tinyint unsigned NOT NULL DEFAULT 0,
  use_totp tinyint unsigned NOT NULL,
  totp_secret text,
  totp_authenticated_at timestamp NULL DEFAULT NULL,
  gravatar tinyint(1) NOT NULL DEFAULT 1,
  created_at timestamp NULL DEFAULT NULL,
  updated_at timestamp NULL DEFAULT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY users_uuid_unique (uuid),
  UNIQUE KEY users_email_unique (email),
  UNIQUE KEY users_username_unique (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE nodes (
  id int unsigned NOT NULL AUTO_INCREMENT,
  uuid char(36) NOT NULL,
  public smallint unsigned NOT NULL,
  name varchar(191) NOT NULL,
  description text,
  location_id int unsigned NOT NULL,
  fqdn varchar(191) NOT NULL,
  scheme varchar(191) NOT NULL DEFAULT 'https',
  behind_proxy tinyint(1) NOT NULL DEFAULT 0,
  maintenance_mode tinyint(1) NOT NULL DEFAULT 0,
  memory int unsigned NOT NULL,
  memory_overallocate int NOT NULL DEFAULT 0,
  disk int unsigned NOT NULL,
  disk_overallocate int NOT NULL DEFAULT 0,
  upload_size int unsigned NOT NULL DEFAULT 100,
  daemon_token_id char(16) NOT NULL,
  daemon_token text NOT NULL,
  daemonListen smallint unsigned NOT NULL DEFAULT 8080,
  daemonSFTP smallint unsigned NOT NULL DEFAULT 2022,
  daemonBase varchar(191) NOT NULL DEFAULT '/var/lib/pterodactyl/volumes',
  created_at timestamp NULL DEFAULT NULL,
  updated_at timestamp NULL DEFAULT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY nodes_uuid_unique (uuid),
  UNIQUE KEY nodes_daemon_token_id_unique (daemon_token_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE nests (
  id int unsigned NOT NULL AUTO_INCREMENT,
  uuid char(36) NOT NULL,
  author char(191) NOT NULL,
  name varchar(191) NOT NULL,
  description text,
  created_at timestamp NULL DEFAULT NULL,
  updated_at timestamp NULL DEFAULT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY services_uuid_unique (uuid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE eggs (
  id int unsigned NOT NULL AUTO_INCREMENT,
  uuid char(36) NOT NULL,
  nest_id int unsigned NOT NULL,
  author char(191) NOT NULL,
  name varchar(191) NOT NULL,
  description text,
  features json DEFAULT NULL,
  docker_images json DEFAULT NULL,
  file_denylist json DEFAULT NULL,
  update_url text,
  config_files text,
  config_startup text,
  config_logs text,
  config_stop varchar(191) DEFAULT NULL,
  config_from int unsigned DEFAULT NULL,
  startup text,
  script_container varchar(191) NOT NULL DEFAULT 'alpine:3.4',
  copy_script_from int unsigned DEFAULT NULL,
  script_entry varchar(191) NOT NULL DEFAULT 'ash',
  script_is_privileged tinyint(1) NOT NULL DEFAULT 1,
  script_install text,
  force_outgoing_ip tinyint(1) NOT NULL DEFAULT 0,
  created_at timestamp NULL DEFAULT NULL,
  updated_at timestamp NULL DEFAULT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY service_options_uuid_unique (uuid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE egg_variables (
  id int unsigned NOT NULL AUTO_INCREMENT,
  egg_id int unsigned NOT NULL,
  name varchar(191) NOT NULL,
  description text NOT NULL,
  env_variable varchar(191) NOT NULL,
  default_value text NOT NULL,
  user_viewable tinyint unsigned NOT NULL,
  user_editable tinyint unsigned NOT NULL,
  rules text NOT NULL,
  created_at timestamp NULL DEFAULT NULL,
  updated_at timestamp NULL DEFAULT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE servers (
  id int unsigned NOT NULL AUTO_INCREMENT,
  external_id varchar(191) DEFAULT NULL,
  uuid char(36) NOT NULL,
  uuidShort char(8) NOT NULL,
  node_id int unsigned NOT NULL,
  name varchar(191) NOT NULL,
  description text NOT NULL,
  status varchar(191) DEFAULT NULL,
  skip_scripts tinyint(1) NOT NULL DEFAULT 0,
  owner_id int unsigned NOT NULL,
  memory int unsigned NOT NULL,
  swap int NOT NULL,
  disk int unsigned NOT NULL,
  io int unsigned NOT NULL,
  cpu int unsigned NOT NULL,
  threads varchar(191) DEFAULT NULL,
  oom_disabled tinyint unsigned NOT NULL DEFAULT 0,
  allocation_id int unsigned NOT NULL,
  nest_id int unsigned NOT NULL,
  egg_id int unsigned NOT NULL,
  startup text NOT NULL,
  image varchar(191) NOT NULL,
  allocation_limit int unsigned DEFAULT NULL,
  database_limit int unsigned DEFAULT 0,
  backup_limit int unsigned NOT NULL DEFAULT 0,
  created_at timestamp NULL DEFAULT NULL,
  updated_at timestamp NULL DEFAULT NULL,
  installed_at timestamp NULL DEFAULT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY servers_uuid_unique (uuid),
  UNIQUE KEY servers_uuidshort_unique (uuidShort),
  UNIQUE KEY servers_allocation_id_unique (allocation_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE server_variables (
  id int unsigned NOT NULL AUTO_INCREMENT,
  server_id int unsigned DEFAULT NULL,
  variable_id int unsigned NOT NULL,
  variable_value text NOT NULL,
  created_at timestamp NULL DEFAULT NULL,
  updated_at timestamp NULL DEFAULT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE allocations (
  id int unsigned NOT NULL AUTO_INCREMENT,
  node_id int unsigned NOT NULL,
  ip varchar(191) NOT NULL,
  ip_alias text,
  port mediumint unsigned NOT NULL,
  server_id int unsigned DEFAULT NULL,
  notes varchar(191) DEFAULT NULL,
  created_at timestamp NULL DEFAULT NULL,
  updated_at timestamp NULL DEFAULT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY allocations_node_id_ip_port_unique (node_id, ip, port)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE subusers (
  id int unsigned NOT NULL AUTO_INCREMENT,
  user_id int unsigned NOT NULL,
  server_id int unsigned NOT NULL,
  permissions json DEFAULT NULL,
  created_at timestamp NULL DEFAULT NULL,
  updated_at timestamp NULL DEFAULT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE schedules (
  id int unsigned NOT NULL AUTO_INCREMENT,
  server_id int unsigned NOT NULL,
  name varchar(191) NOT NULL,
  cron_day_of_week varchar(191) NOT NULL,
  cron_month varchar(191) NOT NULL,
  cron_day_of_month varchar(191) NOT NULL,
  cron_hour varchar(191) NOT NULL,
  cron_minute varchar(191) NOT NULL,
  is_active tinyint(1) NOT NULL,
  is_processing tinyint(1) NOT NULL,
  only_when_online tinyint unsigned NOT NULL DEFAULT 0,
  last_run_at timestamp NULL DEFAULT NULL,
  next_run_at timestamp NULL DEFAULT NULL,
  created_at timestamp NULL DEFAULT NULL,
  updated_at timestamp NULL DEFAULT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE tasks (
  id int unsigned NOT NULL AUTO_INCREMENT,
  schedule_id int unsigned NOT NULL,
  sequence_id int unsigned NOT NULL,
  action varchar(191) NOT NULL,
  payload text NOT NULL,
  time_offset int unsigned NOT NULL,
  is_queued tinyint(1) NOT NULL,
  continue_on_failure tinyint unsigned NOT NULL DEFAULT 0,
  created_at timestamp NULL DEFAULT NULL,
  updated_at timestamp NULL DEFAULT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
