//! `floor-server catalogue import` and `list` through the real binary on its embedded SQLite
//! database: articles added, changed, audited as the command line, bad files refused whole.

use std::process::Command;

use club_tests::*;

fn run(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(workspace_binary("floor-server")).args(args).current_dir(dir).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn the_catalogue_is_imported_from_csv_and_toml_audited_and_bad_files_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "sku,name,category,points_price,showcase,member_free,already_discounted,active\n\
               ESPRESSO,Espresso,coffee,,false,false,false,true\n\
               DINNER-MENU,Three-course dinner,food,450,false,false,false,true\n\
               WATCH,Casino wristwatch,showcase,15000,true,false,false,true\n";
    std::fs::write(dir.path().join("bar.csv"), csv).unwrap();
    let (ok, out, err) = run(dir.path(), &["catalogue", "import", "bar.csv"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "3 articles read, 3 added or changed");
    let (ok, out, _) = run(dir.path(), &["catalogue", "import", "bar.csv"]);
    assert!(ok && out.trim() == "3 articles read, 0 added or changed", "{out}");
    // TOML: a new point price for the dinner, the watch withdrawn.
    let toml = "[[article]]\nsku = \"DINNER-MENU\"\nname = \"Three-course dinner\"\ncategory = \"food\"\npoints_price = 500\n\n\
                [[article]]\nsku = \"WATCH\"\nname = \"Casino wristwatch\"\ncategory = \"showcase\"\npoints_price = 15000\n\
                showcase = true\nactive = false\n";
    std::fs::write(dir.path().join("change.toml"), toml).unwrap();
    let (ok, out, err) = run(dir.path(), &["catalogue", "import", "change.toml"]);
    assert!(ok && out.trim() == "2 articles read, 2 added or changed", "{out}{err}");
    // A bad line refuses the whole file, naming the article.
    let bad = "sku,name,category,points_price,showcase\nBEER,Beer,beer,45,false\nGIFT,Gift,showcase,,true\n";
    std::fs::write(dir.path().join("bad.csv"), bad).unwrap();
    let (ok, _, err) = run(dir.path(), &["catalogue", "import", "bad.csv"]);
    assert!(!ok && err.contains("GIFT"), "{err}");
    let (ok, list, _) = run(dir.path(), &["catalogue", "list"]);
    assert!(ok);
    let rows: Vec<Vec<&str>> = list.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 3, "BEER was not imported:\n{list}");
    assert!(list.lines().any(|l| l.starts_with("DINNER-MENU") && l.contains(" 500")), "{list}");
    assert!(list.lines().any(|l| l.starts_with("WATCH") && l.contains("showcase,inactive")), "{list}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let audited: i64 = rt.block_on(async {
        let store = floor_server::store::Store::connect(&format!("sqlite://{}", dir.path().join("floor.db").display())).await.unwrap();
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'catalogue.upsert' AND actor = 'system:cli'")
            .fetch_one(store.read())
            .await
            .unwrap()
    });
    assert_eq!(audited, 5);
}
