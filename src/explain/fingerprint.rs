//! Why a unit is new: comparing its fingerprint with the other builds of the same target in
//! the target dir.
//!
//! Cargo folds features, profile, RUSTFLAGS, toolchain and dependencies into each unit's hash
//! (the `-0123456789abcdef` in its file names). Change one and cargo looks for a fingerprint
//! under a new hash, finds none, and logs only that it could not read it: a "fresh build",
//! with no reason. Yet the old build usually sits beside it, under the old hash, with its
//! fingerprint JSON (`{"rustc":..,"features":"[..]","profile":..,"rustflags":[..],"deps":..}`).
//! Once the new unit is built its JSON exists too, and the fields that differ are the reason.
//!
//! Both build-dir layouts: classic `.fingerprint/<pkg>-<hash>/<file>` and v2
//! `build/<pkg>/<hash>/fingerprint/<file>`. The hash-bearing directory is found from the path
//! cargo logged; its siblings with the same prefix are the other builds.

use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The fields of cargo's fingerprint JSON, in the order cargo compares them.
const FIELDS: &[&str] = &[
    "rustc",
    "features",
    "declared_features",
    "target",
    "path",
    "profile",
    "rustflags",
    "config",
    "compile_kind",
    "local",
    "deps",
];

/// The earlier build most like the new unit, and what differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NearestBuild {
    /// Its fingerprint JSON.
    pub fingerprint: PathBuf,
    /// In cargo's order of comparison (so the first is what cargo would have named).
    pub differences: Vec<Difference>,
}

/// One field of the fingerprint JSON that differs; `old` is the earlier build's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub field: String,
    pub old: Value,
    pub new: Value,
}

impl Difference {
    /// `rustflags [] -> ["--cfg", "foo"]`.
    pub fn describe(&self) -> String {
        let show = |v: &Value| match v {
            // `features` is a string holding a list: show the list.
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match self.field.as_str() {
            "deps" => format!(
                "dependencies built differently: {}",
                names(&self.new)
                    .into_iter()
                    .chain(names(&self.old))
                    .fold(Vec::<String>::new(), |mut all, n| {
                        if !all.contains(&n) {
                            all.push(n);
                        }
                        all
                    })
                    .join(", ")
            ),
            "profile" => format!(
                "profile settings (cargo keeps a hash: {} -> {})",
                show(&self.old),
                show(&self.new)
            ),
            "rustc" => "toolchain (rustc version)".into(),
            "path" => "path of the source files".into(),
            field => format!("{field} {} -> {}", show(&self.old), show(&self.new)),
        }
    }
}

/// The names in a list of `deps` entries (`[pkg hash, name, public, fingerprint hash]`).
fn names(entries: &Value) -> Vec<String> {
    entries
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.get(1)?.as_str().map(str::to_owned))
        .collect()
}

/// For a unit cargo found no fingerprint for (`hash_file`, the path it logged), the most
/// similar earlier build of the same target: one of the same source path if any (two versions
/// of a crate share a name, not a path), then the fewest differing fields, then the newest.
/// Units in `this_run` (the other new units of the same build) are no earlier build. `None`
/// when the new unit's JSON does not exist (the build failed before it) or there is no other
/// build.
pub fn nearest_build(hash_file: &Path, this_run: &HashSet<PathBuf>) -> Option<NearestBuild> {
    let place = HashPlace::find(hash_file)?;
    let new = read_json(&hash_file.with_extension("json"), &place.hash)?;
    let mut best: Option<(Rank, NearestBuild)> = None;
    for entry in std::fs::read_dir(&place.dir).ok()?.flatten() {
        let name = entry.file_name();
        let Some(hash) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&*place.prefix))
            .filter(|h| is_unit_hash(h) && **h != *place.hash)
        else {
            continue;
        };
        let file = entry.path().join(&place.below);
        if this_run.contains(&file) {
            continue;
        }
        let json = file.with_extension("json");
        let Some(old) = read_json(&json, hash) else {
            continue;
        };
        let modified = std::fs::metadata(&json)
            .and_then(|m| m.modified())
            .unwrap_or(std::time::UNIX_EPOCH);
        let differences = differences(&old, &new);
        let rank = (
            old.get("path") != new.get("path"),
            differences.len(),
            std::cmp::Reverse(modified),
        );
        let nearer = match &best {
            None => true,
            Some((r, _)) => rank < *r,
        };
        if nearer {
            let nearest = NearestBuild {
                fingerprint: json,
                differences,
            };
            best = Some((rank, nearest));
        }
    }
    best.map(|(_, nearest)| nearest)
}

/// Other source path, number of differences, newer first: smaller is nearer.
type Rank = (bool, usize, std::cmp::Reverse<std::time::SystemTime>);

/// Where the unit hash sits in a fingerprint path.
struct HashPlace {
    /// The directory holding the hash-bearing directory and its siblings.
    dir: PathBuf,
    /// What comes before the hash in that directory's name (`applib-`, or empty in v2).
    prefix: String,
    hash: String,
    /// The path below the hash-bearing directory (`lib-applib`, `fingerprint/lib-applib`).
    below: PathBuf,
}

impl HashPlace {
    fn find(file: &Path) -> Option<HashPlace> {
        let mut below = PathBuf::from(file.file_name()?);
        let mut dir = file.parent()?;
        // Classic: the parent (`applib-<hash>`); v2: the grandparent (`<hash>/fingerprint`).
        for _ in 0..3 {
            let name = dir.file_name()?.to_str()?;
            let (prefix, hash) = match name.rsplit_once('-') {
                Some((p, h)) if is_unit_hash(h) => (format!("{p}-"), h),
                _ if is_unit_hash(name) => (String::new(), name),
                _ => {
                    below = Path::new(name).join(below);
                    dir = dir.parent()?;
                    continue;
                }
            };
            return Some(HashPlace {
                dir: dir.parent()?.to_path_buf(),
                prefix,
                hash: hash.to_owned(),
                below,
            });
        }
        None
    }
}

/// Cargo's unit hashes: 16 lowercase hex digits.
fn is_unit_hash(s: &str) -> bool {
    s.len() == 16
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A fingerprint JSON with the unit's own hash replaced (its `local` entries name its own
/// directory, which differs between any two builds and says nothing).
fn read_json(path: &Path, own_hash: &str) -> Option<Map<String, Value>> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text.replace(own_hash, "{unit}")).ok()
}

fn differences(old: &Map<String, Value>, new: &Map<String, Value>) -> Vec<Difference> {
    let mut fields: Vec<&str> = FIELDS.to_vec();
    // Fields a newer cargo may add, after the known ones.
    let mut extra: Vec<&str> = old
        .keys()
        .chain(new.keys())
        .map(String::as_str)
        .filter(|k| !FIELDS.contains(k))
        .collect();
    extra.sort_unstable();
    extra.dedup();
    fields.extend(extra);
    fields
        .into_iter()
        .filter_map(|field| {
            let (o, n) = (old.get(field)?, new.get(field)?);
            if o == n {
                return None;
            }
            let (o, n) = if field == "deps" {
                only_in_each(o, n)
            } else {
                (o.clone(), n.clone())
            };
            Some(Difference {
                field: field.to_owned(),
                old: o,
                new: n,
            })
        })
        .collect()
}

/// The entries of two lists that the other lacks.
fn only_in_each(old: &Value, new: &Value) -> (Value, Value) {
    let (Some(o), Some(n)) = (old.as_array(), new.as_array()) else {
        return (old.clone(), new.clone());
    };
    let diff = |a: &[Value], b: &[Value]| -> Value {
        a.iter().filter(|e| !b.contains(e)).cloned().collect()
    };
    (diff(o, n), diff(n, o))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = r#"{"rustc":7458672600737419911,"features":"[]","declared_features":"[\"extra\"]","target":14803742785992296576,"profile":15657897354478470176,"path":9921118875860060840,"deps":[[2704476965023867491,"nc_beta",false,12091524140181634248],[9173213857993589811,"nc_macro",false,9231412238073682190]],"local":[{"CheckDepInfo":{"dep_info":"debug/.fingerprint/applib-01d67ce5cf22b7d3/dep-lib-applib","checksum":false}}],"rustflags":[],"config":8247474407144887393,"compile_kind":0}"#;
    const RUSTFLAGS: &str = r#"{"rustc":7458672600737419911,"features":"[]","declared_features":"[\"extra\"]","target":14803742785992296576,"profile":15657897354478470176,"path":9921118875860060840,"deps":[[2704476965023867491,"nc_beta",false,1117672374270527823],[9173213857993589811,"nc_macro",false,18096662948317751607]],"local":[{"CheckDepInfo":{"dep_info":"debug/.fingerprint/applib-ef1079f596685baa/dep-lib-applib","checksum":false}}],"rustflags":["--cfg","foo"],"config":8247474407144887393,"compile_kind":0}"#;
    const FEATURES: &str = r#"{"rustc":7458672600737419911,"features":"[\"extra\"]","declared_features":"[\"extra\"]","target":14803742785992296576,"profile":15657897354478470176,"path":9921118875860060840,"deps":[[2704476965023867491,"nc_beta",false,12091524140181634248],[9173213857993589811,"nc_macro",false,9231412238073682190]],"local":[{"CheckDepInfo":{"dep_info":"debug/.fingerprint/applib-a8dbda921f5f672c/dep-lib-applib","checksum":false}}],"rustflags":[],"config":8247474407144887393,"compile_kind":0}"#;

    fn write(dir: &Path, rel: &str, json: &str) -> PathBuf {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path.with_extension("json"), json).unwrap();
        path
    }

    #[test]
    fn names_the_differing_fields_in_the_classic_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let fp = tmp.path().join("debug/.fingerprint");
        write(&fp, "applib-01d67ce5cf22b7d3/lib-applib", OLD);
        write(&fp, "applib-a8dbda921f5f672c/lib-applib", FEATURES);
        // Another package whose name extends this one's is not a sibling.
        write(&fp, "applib-extra-0123456789abcdef/lib-applib", OLD);
        let new = write(&fp, "applib-ef1079f596685baa/lib-applib", RUSTFLAGS);
        let nearest = nearest_build(&new, &HashSet::new()).unwrap();
        let fields: Vec<&str> = nearest.differences.iter().map(|d| &*d.field).collect();
        // From OLD: rustflags and deps; from FEATURES: features, rustflags and deps.
        assert_eq!(fields, ["rustflags", "deps"]);
        assert_eq!(
            nearest.fingerprint,
            fp.join("applib-01d67ce5cf22b7d3/lib-applib.json")
        );
        assert_eq!(
            nearest.differences[0].describe(),
            r#"rustflags [] -> ["--cfg","foo"]"#
        );
        assert_eq!(
            nearest.differences[1].describe(),
            "dependencies built differently: nc_beta, nc_macro"
        );
    }

    #[test]
    fn skips_units_of_the_same_run_and_prefers_the_same_source() {
        let tmp = tempfile::tempdir().unwrap();
        let fp = tmp.path().join(".fingerprint");
        write(&fp, "applib-01d67ce5cf22b7d3/lib-applib", OLD);
        // Identical to the new unit but built in the same run: no earlier build.
        let twin = write(&fp, "applib-1111111111111111/lib-applib", RUSTFLAGS);
        // Another version of the crate (another source path) with the same flags: fewer
        // differences, but not the same crate.
        let other = RUSTFLAGS.replace("9921118875860060840", "1");
        write(&fp, "applib-2222222222222222/lib-applib", &other);
        let new = write(&fp, "applib-ef1079f596685baa/lib-applib", RUSTFLAGS);
        let nearest = nearest_build(&new, &HashSet::from([twin])).unwrap();
        assert_eq!(
            nearest.fingerprint,
            fp.join("applib-01d67ce5cf22b7d3/lib-applib.json")
        );
        assert_eq!(nearest.differences[0].field, "rustflags");
    }

    #[test]
    fn finds_siblings_in_layout_v2() {
        let tmp = tempfile::tempdir().unwrap();
        let b = tmp.path().join("debug/build/applib");
        let v2 = |j: &str, h: &str| {
            j.replace(&format!("applib-{h}"), &format!("applib/{h}/fingerprint"))
        };
        write(
            &b,
            "01d67ce5cf22b7d3/fingerprint/lib-applib",
            &v2(OLD, "01d67ce5cf22b7d3"),
        );
        let new = write(
            &b,
            "a8dbda921f5f672c/fingerprint/lib-applib",
            &v2(FEATURES, "a8dbda921f5f672c"),
        );
        let nearest = nearest_build(&new, &HashSet::new()).unwrap();
        assert_eq!(nearest.differences.len(), 1, "{nearest:?}");
        assert_eq!(
            nearest.differences[0].describe(),
            r#"features [] -> ["extra"]"#
        );
    }

    #[test]
    fn nothing_to_compare_with() {
        let tmp = tempfile::tempdir().unwrap();
        let fp = tmp.path().join(".fingerprint");
        let new = write(&fp, "applib-ef1079f596685baa/lib-applib", RUSTFLAGS);
        assert_eq!(nearest_build(&new, &HashSet::new()), None);
        // The new unit's JSON is missing (its build failed): nothing to compare.
        write(&fp, "applib-01d67ce5cf22b7d3/lib-applib", OLD);
        assert_eq!(
            nearest_build(
                &fp.join("applib-a8dbda921f5f672c/lib-applib"),
                &HashSet::new()
            ),
            None
        );
        assert_eq!(
            nearest_build(Path::new("/no/hash/here"), &HashSet::new()),
            None
        );
    }
}
