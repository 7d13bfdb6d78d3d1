//! The declarations are consistent: parameters match templates, no route is declared
//! twice, paths render and encode.

use super::*;

#[test]
fn every_template_has_as_many_parameters_as_its_params_type() {
    for r in ROUTES {
        let braces = r.path.matches('{').count();
        assert_eq!(braces, r.params, "{}: {}", r.name, r.path);
        assert_eq!(r.path.matches('}').count(), braces, "{}", r.name);
        assert!(r.path.starts_with("/v1/"), "{}", r.name);
    }
}

#[test]
fn no_route_is_declared_twice() {
    let mut routes = std::collections::HashSet::new();
    let mut names = std::collections::HashSet::new();
    for r in ROUTES {
        assert!(
            routes.insert((r.method, r.path)),
            "{} duplicates a route",
            r.name
        );
        assert!(names.insert(r.name), "{} is declared twice", r.name);
    }
}

#[test]
fn paths_render_with_encoded_parameters() {
    assert_eq!(
        InstancePower::path(&"abc-123"),
        "/v1/instances/abc-123/power"
    );
    assert_eq!(
        BackupRestore::path(&("i", "b/../x y")),
        "/v1/instances/i/backups/b%2F..%2Fx%20y/restore"
    );
    assert_eq!(Events::path(&()), "/v1/events");
}

#[test]
fn queries_render_as_forms_and_none_is_left_out() {
    assert_eq!(Events::uri(&(), &()).unwrap(), "/v1/events");
    assert_eq!(
        InstanceLogs::uri(&"i", &LinesQuery { lines: Some(5) }).unwrap(),
        "/v1/instances/i/logs?lines=5"
    );
    assert_eq!(
        InstanceLogs::uri(&"i", &LinesQuery::default()).unwrap(),
        "/v1/instances/i/logs"
    );
    let q = ContainerPowerQuery {
        timeout: Some(10),
        signal: Some("SIG&X".into()),
        all: true,
    };
    assert_eq!(
        ContainerPower::uri(&("c", "kill"), &q).unwrap(),
        "/v1/containers/c/kill?timeout=10&signal=SIG%26X&all=true"
    );
    let q = crate::files::ListQuery {
        path: "/".into(),
        page: Some(2),
        ..Default::default()
    };
    assert_eq!(
        FilesList::uri(&"i", &q).unwrap(),
        "/v1/instances/i/files?path=%2F&page=2&sort=name&desc=false"
    );
}
