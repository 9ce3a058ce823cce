//! GeoIP files of both formats, hostile ones included (a MaxMind DB is written here by hand).

use super::csv::MAPPED_V4_START;
use super::*;
use std::io::Write;

fn write(name: &str, content: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(content)
        .unwrap();
    (dir, path)
}

fn open_csv(content: &str) -> GeoIp {
    let (_dir, path) = write("db.csv", content.as_bytes());
    GeoIp::open(&path).unwrap()
}

#[test]
fn is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<GeoIp>();
}

#[test]
fn dotted_v4_ranges_with_inclusive_bounds() {
    let db = open_csv("1.0.0.0,1.0.0.255,AU\n1.0.1.0,1.0.3.255,CN\n8.8.8.0,8.8.8.255,US\n");
    assert_eq!(db.format(), "csv");
    assert_eq!(db.len(), 3);
    assert!(!db.is_empty());
    assert_eq!(db.skipped(), 0);
    assert_eq!(db.lookup("1.0.0.0").as_deref(), Some("AU"));
    assert_eq!(db.lookup("1.0.0.255").as_deref(), Some("AU"));
    assert_eq!(db.lookup("1.0.1.0").as_deref(), Some("CN"));
    assert_eq!(db.lookup("1.0.3.255").as_deref(), Some("CN"));
    assert_eq!(db.lookup("1.0.4.0"), None);
    assert_eq!(db.lookup("0.255.255.255"), None);
    assert_eq!(db.lookup("8.8.8.8").as_deref(), Some("US"));
    assert_eq!(db.lookup(" 8.8.8.8 ").as_deref(), Some("US"));
    assert_eq!(db.lookup("255.255.255.255"), None);
    // IPv4-mapped IPv6 is looked up as IPv4.
    assert_eq!(db.lookup("[::ffff:8.8.8.8]").as_deref(), Some("US"));
}

#[test]
fn ip2location_decimal_quoted_four_columns() {
    let db = open_csv(
        "\"0\",\"16777215\",\"-\",\"-\"\r\n\
         \"16777216\",\"16777471\",\"US\",\"United States of America\"\r\n\
         \"16777472\",\"16778239\",\"CN\",\"China\"\r\n\
         \"16778240\",\"16779263\",\"AU\",\"Australia\"\r\n\
         \"16779264\",\"16779264\",\"BQ\",\"Bonaire, Sint Eustatius and Saba\"\r\n\
         \"4294967040\",\"4294967295\",\"ZZ\",\"-\"\r\n",
    );
    assert_eq!(db.skipped(), 0);
    assert_eq!(db.len(), 4);
    assert_eq!(db.lookup("1.0.0.0").as_deref(), Some("US")); // 16777216
    assert_eq!(db.lookup("1.0.0.255").as_deref(), Some("US")); // 16777471
    assert_eq!(db.lookup("1.0.1.0").as_deref(), Some("CN"));
    assert_eq!(db.lookup("1.0.7.255").as_deref(), Some("AU")); // 16779263
    assert_eq!(db.lookup("1.0.8.0").as_deref(), Some("BQ"));
    assert_eq!(db.lookup("1.0.8.1"), None);
    assert_eq!(db.lookup("0.0.0.1"), None); // "-"
    assert_eq!(db.lookup("255.255.255.1"), None); // "ZZ"
}

#[test]
fn ip2location_ipv6_decimal_maps_v4_and_keeps_v6() {
    // ::ffff:1.0.0.0 – ::ffff:1.0.0.255, then 2001:200:: – 2001:200:ffff:ffff:...
    let v4_start = MAPPED_V4_START + 16_777_216;
    let v4_end = MAPPED_V4_START + 16_777_471;
    let v6_start = u128::from("2001:200::".parse::<std::net::Ipv6Addr>().unwrap());
    let v6_end = v6_start + (1u128 << 96) - 1;
    let db = open_csv(&format!(
        "\"{v4_start}\",\"{v4_end}\",\"JP\",\"Japan\"\n\"{v6_start}\",\"{v6_end}\",\"JP\",\"Japan\"\n"
    ));
    assert_eq!(db.lookup("1.0.0.7").as_deref(), Some("JP"));
    assert_eq!(db.lookup("2001:200::1").as_deref(), Some("JP"));
    assert_eq!(db.lookup("2001:200:ffff:ffff::1").as_deref(), Some("JP"));
    assert_eq!(db.lookup("2001:201::1"), None);
}

#[test]
fn v6_ranges_and_brackets() {
    let db = open_csv(
        "2001:db8::,2001:db8::ffff,NL\n\
         2001:db8:1::,2001:db8:1:ffff:ffff:ffff:ffff:ffff,DE\n\
         1.2.3.0,1.2.3.255,FR\n",
    );
    assert_eq!(db.len(), 3);
    assert_eq!(db.lookup("2001:db8::").as_deref(), Some("NL"));
    assert_eq!(db.lookup("2001:db8::ffff").as_deref(), Some("NL"));
    assert_eq!(db.lookup("2001:db8::1:0"), None);
    assert_eq!(db.lookup("[2001:db8::1]").as_deref(), Some("NL"));
    assert_eq!(db.lookup("[2001:db8:1::42]").as_deref(), Some("DE"));
    assert_eq!(db.lookup("2001:db8:1::42%eth0").as_deref(), Some("DE"));
    assert_eq!(db.lookup("2001:db8:2::"), None);
    assert_eq!(db.lookup("1.2.3.4").as_deref(), Some("FR"));
}

#[test]
fn hostnames_and_junk_hosts_give_none() {
    let db = open_csv("0.0.0.0,255.255.255.255,US\n");
    assert_eq!(db.lookup("1.2.3.4").as_deref(), Some("US"));
    for host in [
        "example.com",
        "localhost",
        "",
        "[]",
        "1.2.3",
        "1.2.3.4:8080",
        "[1.2.3.4]x",
        "\u{0}",
    ] {
        assert_eq!(db.lookup(host), None, "{host:?}");
    }
}

#[test]
fn lower_case_country_is_upper_cased() {
    let db = open_csv("\"1.2.3.0\" , \"1.2.3.255\" , \"de\"\n5.0.0.0,5.0.0.9,Fr\n");
    assert_eq!(db.lookup("1.2.3.4").as_deref(), Some("DE"));
    assert_eq!(db.lookup("5.0.0.9").as_deref(), Some("FR"));
}

#[test]
fn garbage_lines_skipped_and_counted() {
    let mut content = b"# comment\n\nip_start,ip_end,country\n1.0.0.0,1.0.0.255,AU\n\
        1.0.1.0,1.0.1.255\n1.0.2.0,1.0.2.255,AUS\n1.0.3.255,1.0.3.0,CN\n\
        1.0.4.0,2001:db8::,CN\nnot,an,ip\n99999999999999999999999999999999999999999,1,US\n"
        .to_vec();
    content.extend_from_slice(b"\xff\xfe1.0.5.0,1.0.5.255,US\n");
    content.extend_from_slice(b"  # indented comment\n1.0.6.0,1.0.6.255,jp");
    let (_dir, path) = write("db.csv", &content);
    let db = GeoIp::open(&path).unwrap();
    assert_eq!(db.skipped(), 8);
    assert_eq!(db.len(), 2);
    assert_eq!(db.lookup("1.0.0.1").as_deref(), Some("AU"));
    assert_eq!(db.lookup("1.0.6.1").as_deref(), Some("JP"));
    assert_eq!(db.lookup("1.0.1.1"), None);
    assert_eq!(db.lookup("1.0.5.1"), None);
}

#[test]
fn overlapping_ranges_first_start_wins() {
    let db = open_csv(
        "10.0.0.0,10.0.0.100,BB\n10.0.0.0,10.0.0.255,AA\n\
         10.0.0.10,10.0.0.20,CC\n10.0.0.0,10.0.0.255,DD\n10.0.0.200,10.0.1.10,EE\n",
    );
    // The ranges starting at 10.0.0.0 win, in file order: BB, then AA.
    assert_eq!(db.lookup("10.0.0.50").as_deref(), Some("BB"));
    assert_eq!(db.lookup("10.0.0.15").as_deref(), Some("BB"));
    assert_eq!(db.lookup("10.0.0.150").as_deref(), Some("AA"));
    assert_eq!(db.lookup("10.0.0.255").as_deref(), Some("AA"));
    assert_eq!(db.lookup("10.0.1.0").as_deref(), Some("EE"));
    assert_eq!(db.lookup("10.0.1.10").as_deref(), Some("EE"));
    assert_eq!(db.lookup("10.0.1.11"), None);
}

#[test]
fn all_garbage_is_an_error_naming_the_path_and_lines() {
    let (_dir, path) = write("bad.csv", b"hello\nworld,1,2\n");
    let err = GeoIp::open(&path).unwrap_err();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("line 1"), "{err}");
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn empty_and_unknown_only_files_are_errors() {
    let (_dir, path) = write("empty.csv", b"# nothing\n\n");
    assert!(GeoIp::open(&path).unwrap_err().contains("no ranges"));
    let (_dir, path) = write("unknown.csv", b"1.0.0.0,1.0.0.255,-\n");
    assert!(GeoIp::open(&path).unwrap_err().contains("known country"));
}

#[test]
fn missing_file_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.mmdb");
    let err = GeoIp::open(&path).unwrap_err();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("cannot open"), "{err}");
    // A directory is not a database either.
    assert!(GeoIp::open(dir.path()).is_err());
}

fn junk(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn binary_junk_is_an_error_not_a_panic() {
    let bytes = junk(64 * 1024);
    for name in ["junk.bin", "junk.csv", "junk.mmdb"] {
        let (_dir, path) = write(name, &bytes);
        let err = GeoIp::open(&path).unwrap_err();
        assert!(err.contains(name), "{err}");
    }
    // Junk that ends in a MaxMind marker is treated as (broken) mmdb.
    let mut marked = bytes.clone();
    marked.extend_from_slice(MMDB_METADATA_MARKER);
    marked.extend_from_slice(&bytes[..200]);
    let (_dir, path) = write("junk.dat", &marked);
    assert!(GeoIp::open(&path)
        .unwrap_err()
        .contains("not a valid MaxMind DB"));
    let (_dir, path) = write("db.csv.gz", b"\x1f\x8b\x08\x00rest");
    assert!(GeoIp::open(&path).unwrap_err().contains("compressed"));
}

#[test]
fn oversized_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.csv");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(MAX_FILE_BYTES + 1).unwrap(); // sparse: costs no disk
    let err = GeoIp::open(&path).unwrap_err();
    assert!(err.contains("too large"), "{err}");
}

/// A minimal MaxMind DB writer following the spec
/// (<https://maxmind.github.io/MaxMind-DB/>): 24-bit records, one map
/// per network.
mod mmdb {
    pub enum V {
        Str(&'static str),
        U16(u16),
        U32(u32),
        U64(u64),
        Map(Vec<(&'static str, V)>),
        Array(Vec<V>),
    }

    fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
        assert!(size < 29);
        if kind <= 7 {
            out.push(kind << 5 | size as u8);
        } else {
            out.push(size as u8);
            out.push(kind - 7);
        }
    }

    pub fn encode(v: &V, out: &mut Vec<u8>) {
        match v {
            V::Str(s) => {
                control(out, 2, s.len());
                out.extend_from_slice(s.as_bytes());
            }
            V::U16(n) => {
                control(out, 5, 2);
                out.extend_from_slice(&n.to_be_bytes());
            }
            V::U32(n) => {
                control(out, 6, 4);
                out.extend_from_slice(&n.to_be_bytes());
            }
            V::U64(n) => {
                control(out, 9, 8);
                out.extend_from_slice(&n.to_be_bytes());
            }
            V::Map(entries) => {
                control(out, 7, entries.len());
                for (k, v) in entries {
                    encode(&V::Str(k), out);
                    encode(v, out);
                }
            }
            V::Array(items) => {
                control(out, 11, items.len());
                for v in items {
                    encode(v, out);
                }
            }
        }
    }

    #[derive(Clone, Copy)]
    enum Rec {
        Empty,
        Node(usize),
        Data(usize),
    }

    /// `networks`: (address bits left-aligned in a u128, prefix length, record).
    pub fn build(ip_version: u16, networks: Vec<(u128, u32, V)>) -> Vec<u8> {
        let mut nodes = vec![[Rec::Empty; 2]];
        let mut data = Vec::new();
        for (bits, prefix, value) in networks {
            let offset = data.len();
            encode(&value, &mut data);
            let mut node = 0;
            for i in 0..prefix {
                let bit = ((bits >> (127 - i)) & 1) as usize;
                if i + 1 == prefix {
                    nodes[node][bit] = Rec::Data(offset);
                } else {
                    node = match nodes[node][bit] {
                        Rec::Node(next) => next,
                        _ => {
                            nodes.push([Rec::Empty; 2]);
                            let next = nodes.len() - 1;
                            nodes[node][bit] = Rec::Node(next);
                            next
                        }
                    };
                }
            }
        }
        let count = nodes.len();
        let mut out = Vec::new();
        for node in &nodes {
            for rec in node {
                let value = match *rec {
                    Rec::Empty => count,
                    Rec::Node(n) => n,
                    Rec::Data(off) => count + 16 + off,
                } as u32;
                out.extend_from_slice(&value.to_be_bytes()[1..]);
            }
        }
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&data);
        out.extend_from_slice(super::MMDB_METADATA_MARKER);
        let meta = V::Map(vec![
            ("binary_format_major_version", V::U16(2)),
            ("binary_format_minor_version", V::U16(0)),
            ("build_epoch", V::U64(1_700_000_000)),
            ("database_type", V::Str("Test-Country")),
            ("description", V::Map(vec![("en", V::Str("test"))])),
            ("ip_version", V::U16(ip_version)),
            ("languages", V::Array(vec![V::Str("en")])),
            ("node_count", V::U32(count as u32)),
            ("record_size", V::U16(24)),
        ]);
        encode(&meta, &mut out);
        out
    }

    pub fn country(key: &'static str, iso: &'static str) -> V {
        V::Map(vec![(
            key,
            V::Map(vec![("geoname_id", V::U32(1)), ("iso_code", V::Str(iso))]),
        )])
    }

    pub fn v4(a: [u8; 4]) -> u128 {
        u128::from(u32::from_be_bytes(a)) << 96
    }
}

#[test]
fn mmdb_ipv4_database() {
    use mmdb::V;
    let bytes = mmdb::build(
        4,
        vec![
            (mmdb::v4([1, 2, 3, 0]), 24, mmdb::country("country", "de")),
            (
                mmdb::v4([5, 6, 0, 0]),
                16,
                mmdb::country("registered_country", "SE"),
            ),
            (
                mmdb::v4([9, 0, 0, 0]),
                8,
                V::Map(vec![
                    ("country", V::Map(vec![("iso_code", V::Str("FR"))])),
                    (
                        "registered_country",
                        V::Map(vec![("iso_code", V::Str("IT"))]),
                    ),
                ]),
            ),
            (mmdb::v4([10, 0, 0, 0]), 8, V::Map(vec![])),
        ],
    );
    // The hand-built file passes the crate's full validation.
    maxminddb::Reader::from_source(bytes.clone())
        .unwrap()
        .verify()
        .unwrap();
    let (_dir, path) = write("GeoLite2-Country.mmdb", &bytes);
    let db = GeoIp::open(&path).unwrap();
    assert_eq!(db.format(), "mmdb");
    assert!(!db.is_empty());
    assert_eq!(db.skipped(), 0);
    assert_eq!(db.lookup("1.2.3.0").as_deref(), Some("DE"));
    assert_eq!(db.lookup("1.2.3.255").as_deref(), Some("DE"));
    assert_eq!(db.lookup("1.2.4.0"), None);
    assert_eq!(db.lookup("5.6.200.1").as_deref(), Some("SE")); // fallback
    assert_eq!(db.lookup("9.9.9.9").as_deref(), Some("FR")); // country first
    assert_eq!(db.lookup("10.1.1.1"), None); // record without a country
    assert_eq!(db.lookup("[::ffff:1.2.3.4]").as_deref(), Some("DE"));
    assert_eq!(db.lookup("2001:db8::1"), None); // v6 in a v4 database
    assert_eq!(db.lookup("example.com"), None);
    // The format is recognised by content too, whatever the name.
    let (_dir, path) = write("country.dat", &bytes);
    assert_eq!(GeoIp::open(&path).unwrap().format(), "mmdb");
    // A truncated database is an error, not a panic.
    for cut in [1, 20, bytes.len() / 2, bytes.len() - 10] {
        let (_dir, path) = write("cut.mmdb", &bytes[..cut]);
        assert!(GeoIp::open(&path).is_err(), "cut at {cut}");
    }
}

#[test]
fn mmdb_ipv6_database_serves_v4_and_v6() {
    let v6 = u128::from("2001:db8::".parse::<std::net::Ipv6Addr>().unwrap());
    let bytes = mmdb::build(
        6,
        vec![
            // IPv4 lives at ::/96 in an IPv6 database.
            (
                mmdb::v4([1, 2, 3, 0]) >> 96,
                120,
                mmdb::country("country", "NO"),
            ),
            (v6, 32, mmdb::country("country", "GB")),
        ],
    );
    maxminddb::Reader::from_source(bytes.clone())
        .unwrap()
        .verify()
        .unwrap();
    let (_dir, path) = write("db.mmdb", &bytes);
    let db = GeoIp::open(&path).unwrap();
    assert_eq!(db.lookup("1.2.3.4").as_deref(), Some("NO"));
    assert_eq!(db.lookup("[2001:db8:ffff::1]").as_deref(), Some("GB"));
    assert_eq!(db.lookup("2001:db9::1"), None);
}
