//! `iisbulk --backend dynamodb`: the admin commands a jurisdiction's DevOps
//! team runs against its stack's table, here against moto (started by the
//! test command; set IISBULK_DYNAMODB_ENDPOINT to run this by hand).
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use registry::smart::Clients;
use registry::AuthorizedUsers;
use store::ItemStore;

/// The moto endpoint, or `None` (with a notice) when the suite runs without
/// one; required when IISBULK_REQUIRE_MOTO is set.
fn endpoint() -> Option<String> {
    match std::env::var(store_dynamodb::ENDPOINT_ENV) {
        Ok(e) if !e.is_empty() => Some(e),
        _ if std::env::var_os("IISBULK_REQUIRE_MOTO").is_some() => {
            panic!("IISBULK_REQUIRE_MOTO is set but IISBULK_DYNAMODB_ENDPOINT is not")
        }
        _ => {
            eprintln!("skipped: no IISBULK_DYNAMODB_ENDPOINT (scripts/moto start)");
            None
        }
    }
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_iisbulk"))
        .args(args)
        // No ambient AWS settings: the flags must be enough.
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove(store_dynamodb::ENDPOINT_ENV)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn ok(args: &[&str], stdin: Option<&str>) -> String {
    let out = run(args, stdin);
    assert!(
        out.status.success(),
        "iisbulk {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn failing(args: &[&str]) -> String {
    let out = run(args, None);
    assert!(!out.status.success(), "iisbulk {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn authorized_users_clients_and_groups_are_administered_in_the_stacks_table() {
    let Some(endpoint) = endpoint() else { return };
    let table = format!("iisbulk-admin-{}", uuid::Uuid::new_v4().simple());
    let client = store_dynamodb::client_for(Some("us-east-1"), Some(&endpoint)).await;
    store_dynamodb::create_table_for_tests(&client, &table)
        .await
        .unwrap();
    let target = [
        "--backend",
        "dynamodb",
        "--table",
        &table,
        "--region",
        "us-east-1",
        "--endpoint",
        &endpoint,
    ];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(target.iter())
            .map(|s| s.to_string())
            .collect()
    };

    let add = with(&[
        "au",
        "add",
        "--id",
        "clinic-x",
        "--kind",
        "clinic",
        "--name",
        "Clinic X",
        "--facility",
        "FACX",
        "--username",
        "clinicx",
        "--password-stdin",
    ]);
    ok(&strs(&add), Some("a long enough password\n"));
    let listed = ok(&strs(&with(&["au", "list", "--json"])), None);
    assert!(listed.contains("\"clinic-x\""), "{listed}");

    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("x.p8");
    std::fs::write(
        &key,
        registry::smart::jose::SigningKey::generate_es384().unwrap(),
    )
    .unwrap();
    let jwks = dir.path().join("x.jwks.json");
    std::fs::write(&jwks, ok(&["jwks", "--key", key.to_str().unwrap()], None)).unwrap();
    let said = ok(
        &strs(&with(&[
            "client",
            "add",
            "--au",
            "clinic-x",
            "--jwks",
            jwks.to_str().unwrap(),
        ])),
        None,
    );
    let client_id = said
        .lines()
        .find_map(|l| l.strip_prefix("client_id "))
        .unwrap()
        .to_owned();
    let clients = ok(&strs(&with(&["client", "list", "--au", "clinic-x"])), None);
    assert!(clients.contains(&client_id), "{clients}");
    let group = ok(&strs(&with(&["group", "show", "--au", "clinic-x"])), None);
    assert!(group.contains("members: 0"), "{group}");

    // What the CLI wrote is what the functions read through DynamoStore.
    let store: std::sync::Arc<dyn ItemStore> =
        std::sync::Arc::new(store_dynamodb::DynamoStore::new(client, &table));
    let au = AuthorizedUsers::new(store.clone())
        .get("clinic-x")
        .await
        .unwrap()
        .expect("the Authorized User is in the table");
    assert_eq!(au.facilities, ["FACX"]);
    assert!(au.group.is_some(), "a clinic gets its Group at onboarding");
    assert!(Clients::new(store).get(&client_id).await.unwrap().is_some());

    // Clear errors instead of a default or an SDK dump.
    let missing = failing(&[
        "au",
        "list",
        "--backend",
        "dynamodb",
        "--table",
        "no-such-table",
        "--region",
        "us-east-1",
        "--endpoint",
        &endpoint,
    ]);
    assert!(
        missing.contains("'no-such-table' does not exist"),
        "{missing}"
    );
    let no_table = failing(&["au", "list", "--backend", "dynamodb"]);
    assert!(no_table.contains("--table"), "{no_table}");
    let stray = failing(&["au", "list", "--table", &table]);
    assert!(stray.contains("need --backend dynamodb"), "{stray}");
}
