//! What the fake Pterodactyl panel holds: its rows as the panel's database has them
//! (config sections as JSON text, a null for an inherited field), and two ready sets.

use std::collections::BTreeMap;

/// A location (`locations`).
#[derive(Debug, Clone)]
pub struct Location {
    pub id: i64,
    pub short: String,
    pub long: String,
}

/// A node (`nodes`).
#[derive(Debug, Clone)]
pub struct Node {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub location_id: i64,
    pub fqdn: String,
    pub scheme: String,
    pub daemon_listen: u16,
    pub daemon_sftp: u16,
    pub memory: i64,
    pub disk: i64,
}

/// A nest (`nests`).
#[derive(Debug, Clone)]
pub struct Nest {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub author: String,
    pub description: String,
}

/// An egg's images, in the two shapes Pterodactyl has had.
#[derive(Debug, Clone)]
pub enum Images {
    /// 0.7: one `docker_image`, and no `docker_images` in the API's answer.
    Single(String),
    /// 1.x: label → image (the API answers `docker_images` and, deprecated, the first
    /// as `docker_image`).
    Map(Vec<(String, String)>),
}

/// An egg (`eggs`): `None` fields are inherited through `config_from` /
/// `copy_script_from`, as the panel stores them.
#[derive(Debug, Clone)]
pub struct Egg {
    pub id: i64,
    pub uuid: String,
    pub nest_id: i64,
    pub name: String,
    pub author: String,
    pub description: String,
    pub images: Images,
    pub startup: String,
    /// JSON text, as in the `config_files` column.
    pub config_files: Option<String>,
    pub config_startup: Option<String>,
    pub config_logs: Option<String>,
    pub config_stop: Option<String>,
    pub config_from: Option<i64>,
    pub script_install: Option<String>,
    pub script_entry: Option<String>,
    pub script_container: Option<String>,
    pub script_is_privileged: bool,
    pub copy_script_from: Option<i64>,
    pub variables: Vec<Variable>,
}

/// An egg variable (`egg_variables`).
#[derive(Debug, Clone)]
pub struct Variable {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub env_variable: String,
    pub default_value: String,
    pub user_viewable: bool,
    pub user_editable: bool,
    pub rules: String,
}

/// A user (`users`).
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub uuid: String,
    pub username: String,
    pub email: String,
    pub name_first: String,
    pub name_last: String,
    pub root_admin: bool,
    pub use_totp: bool,
}

/// An allocation assigned to a server.
#[derive(Debug, Clone)]
pub struct Allocation {
    pub id: i64,
    pub ip: String,
    pub alias: Option<String>,
    pub port: u16,
}

/// A server (`servers`), its allocations and its variables' values.
#[derive(Debug, Clone)]
pub struct Server {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub description: String,
    pub owner_id: i64,
    pub node_id: i64,
    pub nest_id: i64,
    pub egg_id: i64,
    /// The default allocation's id (one of `allocations`).
    pub allocation_id: i64,
    pub status: Option<String>,
    pub memory: i64,
    pub swap: i64,
    pub disk: i64,
    pub io: i64,
    pub cpu: i64,
    pub threads: Option<String>,
    pub oom_disabled: bool,
    pub startup: String,
    pub image: String,
    pub database_limit: i64,
    pub allocation_limit: i64,
    pub backup_limit: i64,
    pub allocations: Vec<Allocation>,
    /// `server_variables`: env name → value; an egg variable not here has no row (the
    /// API answers `server_value: null`).
    pub values: BTreeMap<String, String>,
}

impl Server {
    /// `uuidShort`: the first 8 characters of the UUID.
    #[must_use]
    pub fn identifier(&self) -> String {
        self.uuid.chars().take(8).collect()
    }
}

/// A subuser (`subusers`).
#[derive(Debug, Clone)]
pub struct Subuser {
    pub id: i64,
    pub user_id: i64,
    pub server_id: i64,
    pub permissions: Vec<String>,
}

/// Everything the fake panel holds, in id order.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub locations: Vec<Location>,
    pub nodes: Vec<Node>,
    pub nests: Vec<Nest>,
    pub eggs: Vec<Egg>,
    pub users: Vec<User>,
    pub servers: Vec<Server>,
    pub subusers: Vec<Subuser>,
}

/// A UUID unique per `kind` and `id`, whose first 8 characters (a server's identifier)
/// are unique per id.
#[must_use]
pub fn uuid(kind: u16, id: i64) -> String {
    format!(
        "{:08x}-{kind:04x}-4000-8000-{:012x}",
        id * 7919 + 0x1000_0000,
        id
    )
}

const PAPER_FILES: &str = r#"{
    "server.properties": {
        "parser": "properties",
        "find": {
            "server-ip": "0.0.0.0",
            "server-port": "{{server.build.default.port}}"
        }
    }
}"#;

fn var(id: i64, name: &str, env: &str, default: &str, rules: &str) -> Variable {
    Variable {
        id,
        name: name.into(),
        description: format!("{name}."),
        env_variable: env.into(),
        default_value: default.into(),
        user_viewable: true,
        user_editable: env != "SERVER_JARFILE",
        rules: rules.into(),
    }
}

fn eggs() -> Vec<Egg> {
    let vanilla = Egg {
        id: 1,
        uuid: uuid(0xe, 1),
        nest_id: 1,
        name: "Vanilla Minecraft".into(),
        author: "support@pterodactyl.io".into(),
        description: "Minecraft as Mojang ships it (a 0.7-era egg: one docker_image).".into(),
        images: Images::Single("quay.io/pterodactyl/core:java".into()),
        startup: "java -Xms128M -Xmx{{SERVER_MEMORY}}M -jar {{SERVER_JARFILE}}".into(),
        config_files: Some(PAPER_FILES.into()),
        config_startup: Some(r#"{"done": ")! For help, type ", "userInteraction": []}"#.into()),
        config_logs: Some("{}".into()),
        config_stop: Some("stop".into()),
        config_from: None,
        script_install: Some("#!/bin/ash\ncd /mnt/server\necho vanilla > server.jar\n".into()),
        script_entry: Some("ash".into()),
        script_container: Some("alpine:3.4".into()),
        script_is_privileged: true,
        copy_script_from: None,
        variables: vec![
            var(
                1,
                "Server Jar File",
                "SERVER_JARFILE",
                "server.jar",
                "required|string|max:20",
            ),
            var(
                2,
                "Server Version",
                "VANILLA_VERSION",
                "latest",
                "required|string|between:3,15",
            ),
        ],
    };
    let paper = Egg {
        id: 2,
        uuid: uuid(0xe, 2),
        name: "Paper".into(),
        description: "High performance Spigot fork.".into(),
        images: Images::Map(vec![
            ("Java 21".into(), "ghcr.io/pterodactyl/yolks:java_21".into()),
            ("Java 17".into(), "ghcr.io/pterodactyl/yolks:java_17".into()),
        ]),
        startup: "java -Xms128M -XX:MaxRAMPercentage=95.0 -jar {{SERVER_JARFILE}}".into(),
        config_startup: Some(r#"{"done": ")! For help, type "}"#.into()),
        script_install: Some("#!/bin/ash\ncd /mnt/server\necho paper > server.jar\n".into()),
        script_container: Some("ghcr.io/pterodactyl/installers:alpine".into()),
        variables: vec![
            var(
                3,
                "Server Jar File",
                "SERVER_JARFILE",
                "server.jar",
                "required|string|max:20",
            ),
            var(
                4,
                "Minecraft Version",
                "MINECRAFT_VERSION",
                "latest",
                "nullable|string|max:20",
            ),
            var(
                5,
                "Build Number",
                "BUILD_NUMBER",
                "latest",
                "required|string|max:20",
            ),
        ],
        ..vanilla.clone()
    };
    // Inherits its whole configuration from Paper and its install script from Vanilla,
    // as Pterodactyl stores such an egg: the inherited columns are null.
    let purpur = Egg {
        id: 3,
        uuid: uuid(0xe, 3),
        name: "Purpur".into(),
        description: "A Paper fork; its configuration comes from Paper.".into(),
        images: Images::Map(vec![(
            "Java 21".into(),
            "ghcr.io/pterodactyl/yolks:java_21".into(),
        )]),
        config_files: None,
        config_startup: None,
        config_logs: None,
        config_stop: None,
        config_from: Some(2),
        script_install: None,
        script_entry: None,
        script_container: None,
        copy_script_from: Some(1),
        variables: vec![
            var(
                6,
                "Server Jar File",
                "SERVER_JARFILE",
                "server.jar",
                "required|string|max:20",
            ),
            var(
                7,
                "Minecraft Version",
                "MINECRAFT_VERSION",
                "latest",
                "required|string|max:20",
            ),
        ],
        ..paper.clone()
    };
    vec![vanilla, paper, purpur]
}

fn base() -> Dataset {
    Dataset {
        locations: vec![
            Location {
                id: 1,
                short: "de-fra".into(),
                long: "Frankfurt".into(),
            },
            Location {
                id: 2,
                short: "us-nyc".into(),
                long: "New York".into(),
            },
        ],
        nodes: (1..=2)
            .map(|id| Node {
                id,
                uuid: uuid(0xd, id),
                name: format!("node-{id}"),
                location_id: id,
                fqdn: format!("wings{id}.example.com"),
                scheme: "https".into(),
                daemon_listen: 8080,
                daemon_sftp: 2022,
                memory: 32_768,
                disk: 500_000,
            })
            .collect(),
        nests: vec![Nest {
            id: 1,
            uuid: uuid(0xa, 1),
            name: "Minecraft".into(),
            author: "support@pterodactyl.io".into(),
            description: "Minecraft - the classic game from Mojang.".into(),
        }],
        eggs: eggs(),
        ..Dataset::default()
    }
}

fn user(id: i64, username: &str, root_admin: bool, use_totp: bool) -> User {
    User {
        id,
        uuid: uuid(0xb, id),
        username: username.into(),
        email: format!("{username}@example.com"),
        name_first: username[..1].to_uppercase() + &username[1..],
        name_last: "Example".into(),
        root_admin,
        use_totp,
    }
}

fn server(id: i64, owner_id: i64, node_id: i64, egg: &Egg, name: &str) -> Server {
    let port = u16::try_from(25_564 + id).unwrap_or(25_565);
    let alloc = id * 10;
    let image = match &egg.images {
        Images::Single(image) => image.clone(),
        Images::Map(map) => map.first().map(|(_, i)| i.clone()).unwrap_or_default(),
    };
    Server {
        id,
        uuid: uuid(0xc, id),
        name: name.into(),
        description: format!("{name} server"),
        owner_id,
        node_id,
        nest_id: egg.nest_id,
        egg_id: egg.id,
        allocation_id: alloc,
        status: None,
        memory: 2048,
        swap: 0,
        disk: 10_240,
        io: 500,
        cpu: 200,
        threads: None,
        oom_disabled: true,
        startup: egg.startup.clone(),
        image,
        database_limit: 0,
        allocation_limit: 2,
        backup_limit: 3,
        allocations: vec![Allocation {
            id: alloc,
            ip: format!("203.0.113.{node_id}"),
            alias: None,
            port,
        }],
        values: BTreeMap::new(),
    }
}

impl Dataset {
    /// Two locations, two nodes, a nest with three eggs (0.7 `docker_image`, a
    /// `docker_images` map, one inheriting its configuration from another and its script
    /// from a third), three users (a root admin, an owner, a helper with 2FA), four
    /// servers (one suspended, one with two allocations and set variables) and one
    /// subuser.
    #[must_use]
    pub fn sample() -> Self {
        let mut set = base();
        set.users = vec![
            user(1, "admin", true, false),
            user(2, "alice", false, false),
            user(3, "bob", false, true),
        ];
        let eggs = set.eggs.clone();
        let mut lobby = server(1, 1, 1, &eggs[0], "Lobby");
        lobby
            .values
            .insert("VANILLA_VERSION".into(), "1.20.4".into());
        let mut survival = server(2, 2, 1, &eggs[1], "Survival");
        survival
            .values
            .insert("SERVER_JARFILE".into(), "paper.jar".into());
        survival
            .values
            .insert("MINECRAFT_VERSION".into(), "1.21.1".into());
        survival.allocations.push(Allocation {
            id: 21,
            ip: "203.0.113.1".into(),
            alias: Some("mc.example.com".into()),
            port: 25_575,
        });
        survival.threads = Some("0-1".into());
        let creative = server(3, 2, 2, &eggs[2], "Creative");
        let mut modded = server(4, 2, 2, &eggs[1], "Modded");
        modded.status = Some("suspended".into());
        set.servers = vec![lobby, survival, creative, modded];
        set.subusers = vec![Subuser {
            id: 1,
            user_id: 3,
            server_id: 2,
            permissions: vec![
                "control.console".into(),
                "control.start".into(),
                "file.read".into(),
            ],
        }];
        set
    }

    /// The sample's locations, nodes and eggs with `servers` servers spread over them,
    /// one user per five servers (at least one) and a subuser on every tenth server.
    #[must_use]
    pub fn many(servers: usize) -> Self {
        let mut set = base();
        let count = i64::try_from(servers).unwrap_or(i64::MAX);
        let users = count / 5 + 1;
        set.users = (1..=users)
            .map(|id| user(id, &format!("user{id}"), id == 1, false))
            .collect();
        let eggs = set.eggs.clone();
        for id in 1..=count {
            let egg = &eggs[usize::try_from(id).unwrap_or(0) % eggs.len()];
            let mut s = server(
                id,
                (id - 1) % users + 1,
                (id - 1) % 2 + 1,
                egg,
                &format!("server-{id}"),
            );
            s.values
                .insert("SERVER_JARFILE".into(), format!("server-{id}.jar"));
            set.servers.push(s);
            if id % 10 == 0 && users > 1 {
                set.subusers.push(Subuser {
                    id: id / 10,
                    user_id: id % users + 1,
                    server_id: id,
                    permissions: vec!["control.console".into()],
                });
            }
        }
        set
    }
}
