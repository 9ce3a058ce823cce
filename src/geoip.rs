//! Country of an IP address from an optional, user-supplied GeoIP database file.
//!
//! Two formats are read, both fully into memory at [`GeoIp::open`]:
//!
//! * **MaxMind DB** (`.mmdb`): GeoLite2-Country, GeoLite2-City, GeoIP2, DB-IP
//!   mmdb and the like, read with the `maxminddb` crate. The country is
//!   `country.iso_code`, falling back to `registered_country.iso_code`. A file
//!   is taken as MaxMind DB when its name ends in `.mmdb` or when its tail holds
//!   the MaxMind DB metadata marker.
//! * **CSV** (anything else): the DB-IP "ip-to-country-lite" and IP2Location
//!   LITE DB1 layouts, one range per line: `start,end,CC[,more…]`. Fields may be
//!   double-quoted; `start`/`end` are IP literals (v4 or v6) or decimal
//!   integers (IP2Location). Ranges are inclusive at both ends. A country of
//!   `-` or `ZZ` means "unknown" and the line is ignored; blank lines and lines
//!   starting with `#` are skipped; malformed lines (including non-UTF-8 ones)
//!   are counted in [`GeoIp::skipped`]. IPv6 ranges inside `::ffff:0:0/96`
//!   (how IP2Location's IPv6 files carry IPv4) are stored as IPv4 ranges.
//!   Overlapping ranges are resolved at load: the range that starts first
//!   wins (file order breaks ties).
//!
//! Lookups take the host as stored for a proxy (`1.2.3.4`, `2001:db8::1`,
//! `[2001:db8::1]`); hostnames are never resolved and give `None`. Country
//! codes come back as ISO 3166-1 alpha-2 in upper case.

use std::fmt;
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;

use maxminddb::PathElement;

/// Largest file [`GeoIp::open`] will read (GeoLite2-City is about 60 MiB).
pub const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

/// Marker that starts the metadata section of a MaxMind DB file.
const MMDB_METADATA_MARKER: &[u8] = b"\xAB\xCD\xEFMaxMind.com";
/// The metadata section lives within this many bytes of the end of the file.
const MMDB_METADATA_MAX: usize = 128 * 1024;
/// How many malformed CSV lines are quoted in an error message.
const ERROR_EXAMPLES: usize = 3;

/// An opened GeoIP database: immutable, `Send + Sync`, cheap to look up in.
pub struct GeoIp {
    db: Db,
}

enum Db {
    Mmdb(maxminddb::Reader<Vec<u8>>),
    Csv(CsvTable),
}

/// One inclusive address range and its upper-case country code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Range<T> {
    start: T,
    end: T,
    cc: [u8; 2],
}

struct CsvTable {
    /// Sorted by `start`, non-overlapping.
    v4: Vec<Range<u32>>,
    /// Sorted by `start`, non-overlapping.
    v6: Vec<Range<u128>>,
    skipped: usize,
}

impl GeoIp {
    /// Opens the file; the format is chosen by content/extension: MaxMind DB
    /// (`.mmdb`, or a file carrying the MaxMind DB metadata marker) or CSV.
    ///
    /// The error message names the path and says what is wrong. Files larger
    /// than [`MAX_FILE_BYTES`] are refused. A CSV file must yield at least one
    /// usable range.
    pub fn open(path: &Path) -> Result<GeoIp, String> {
        let err = |what: String| format!("GeoIP database {}: {what}", path.display());
        let bytes = read_capped(path).map_err(err)?;
        let by_extension = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("mmdb"));
        let db = if by_extension || has_mmdb_marker(&bytes) {
            maxminddb::Reader::from_source(bytes)
                .map(Db::Mmdb)
                .map_err(|e| err(format!("not a valid MaxMind DB file: {e}")))?
        } else if bytes.starts_with(&[0x1f, 0x8b]) || bytes.starts_with(b"PK\x03\x04") {
            return Err(err(
                "file is compressed (gzip/zip); decompress it first".to_string()
            ));
        } else {
            Db::Csv(CsvTable::parse(&bytes).map_err(err)?)
        };
        Ok(GeoIp { db })
    }

    /// Country (ISO 3166-1 alpha-2, upper case) of `host`, an IP literal as
    /// stored for a proxy (IPv6 possibly in `[brackets]`). `None` when `host`
    /// is not an IP literal or the address is not in the database.
    pub fn lookup(&self, host: &str) -> Option<String> {
        let ip = parse_host(host)?;
        let cc = match &self.db {
            Db::Mmdb(reader) => mmdb_country(reader, ip)?,
            Db::Csv(table) => table.lookup(ip)?,
        };
        Some(String::from_utf8_lossy(&cc).into_owned())
    }

    /// Ranges held (CSV) or search-tree nodes (MaxMind DB).
    pub fn len(&self) -> usize {
        match &self.db {
            Db::Mmdb(reader) => usize::try_from(reader.metadata().node_count).unwrap_or(usize::MAX),
            Db::Csv(table) => table.v4.len() + table.v6.len(),
        }
    }

    /// True when [`len`](Self::len) is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `"mmdb"` or `"csv"`.
    pub fn format(&self) -> &'static str {
        match &self.db {
            Db::Mmdb(_) => "mmdb",
            Db::Csv(_) => "csv",
        }
    }

    /// Malformed CSV lines that were skipped at open (always 0 for MaxMind DB).
    pub fn skipped(&self) -> usize {
        match &self.db {
            Db::Mmdb(_) => 0,
            Db::Csv(table) => table.skipped,
        }
    }
}

impl fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeoIp")
            .field("format", &self.format())
            .field("len", &self.len())
            .field("skipped", &self.skipped())
            .finish()
    }
}

/// Reads the whole file, refusing anything over [`MAX_FILE_BYTES`] (checked
/// both up front and while reading, in case the file grows or is special).
fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size > MAX_FILE_BYTES {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

fn too_large(size: u64) -> String {
    format!("file too large ({size} bytes; the limit is {MAX_FILE_BYTES} bytes)")
}

fn has_mmdb_marker(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(MMDB_METADATA_MAX)..];
    tail.windows(MMDB_METADATA_MARKER.len())
        .any(|w| w == MMDB_METADATA_MARKER)
}

/// `1.2.3.4`, `2001:db8::1`, `[2001:db8::1]`, `fe80::1%eth0` → address.
/// IPv4-mapped IPv6 addresses become IPv4.
fn parse_host(host: &str) -> Option<IpAddr> {
    let host = host.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let host = host.split('%').next().unwrap_or(host);
    match host.parse::<IpAddr>().ok()? {
        IpAddr::V6(v6) => Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)),
        v4 => Some(v4),
    }
}

/// Two ASCII letters → upper case; `ZZ` ("unknown") and anything else → `None`.
fn country_code(s: &str) -> Option<[u8; 2]> {
    match s.as_bytes() {
        &[a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            let cc = [a.to_ascii_uppercase(), b.to_ascii_uppercase()];
            (&cc != b"ZZ").then_some(cc)
        }
        _ => None,
    }
}

fn mmdb_country(reader: &maxminddb::Reader<Vec<u8>>, ip: IpAddr) -> Option<[u8; 2]> {
    let found = reader.lookup(ip).ok()?;
    ["country", "registered_country"]
        .into_iter()
        .find_map(|key| {
            let path = [PathElement::Key(key), PathElement::Key("iso_code")];
            let code: Option<&str> = found.decode_path(&path).ok().flatten();
            code.and_then(country_code)
        })
}

/// A parsed CSV line.
enum Line {
    V4(Range<u32>),
    V6(Range<u128>),
    /// Well-formed, but the country is unknown (`-` / `ZZ`).
    Unknown,
}

/// One end of a CSV range as written.
enum Endpoint {
    V4(u32),
    V6(u128),
    Decimal(u128),
}

const MAPPED_V4_START: u128 = 0xffff_0000_0000;
const MAPPED_V4_END: u128 = 0xffff_ffff_ffff;

impl CsvTable {
    fn parse(bytes: &[u8]) -> Result<CsvTable, String> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        let (mut parsed, mut skipped) = (0usize, 0usize);
        let mut examples = Vec::new();
        for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let result = std::str::from_utf8(raw)
                .map_err(|_| "not UTF-8".to_string())
                .and_then(|line| {
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') {
                        Ok(None)
                    } else {
                        parse_line(line).map(Some).map_err(|why| {
                            let shown: String = line.chars().take(60).collect();
                            format!("{why}: {shown:?}")
                        })
                    }
                });
            match result {
                Ok(None) => {}
                Ok(Some(line)) => {
                    parsed += 1;
                    match line {
                        Line::V4(r) => v4.push(r),
                        Line::V6(r) => v6.push(r),
                        Line::Unknown => {}
                    }
                }
                Err(why) => {
                    skipped += 1;
                    if examples.len() < ERROR_EXAMPLES {
                        examples.push(format!("line {}: {why}", index + 1));
                    }
                }
            }
        }
        if parsed == 0 {
            return Err(if skipped == 0 {
                "no ranges found (empty file?)".to_string()
            } else {
                format!(
                    "not a GeoIP CSV (expected `start_ip,end_ip,CC` lines): \
                     none of {skipped} lines parsed; {}",
                    examples.join("; ")
                )
            });
        }
        let table = CsvTable {
            v4: disjoint(v4),
            v6: disjoint(v6),
            skipped,
        };
        if table.v4.is_empty() && table.v6.is_empty() {
            return Err("no range with a known country".to_string());
        }
        Ok(table)
    }

    fn lookup(&self, ip: IpAddr) -> Option<[u8; 2]> {
        match ip {
            IpAddr::V4(v4) => find(&self.v4, u32::from(v4)),
            IpAddr::V6(v6) => find(&self.v6, u128::from(v6)),
        }
    }
}

fn parse_line(line: &str) -> Result<Line, &'static str> {
    let mut fields = line.split(',').map(unquote);
    let (Some(start), Some(end), Some(cc)) = (fields.next(), fields.next(), fields.next()) else {
        return Err("fewer than 3 fields");
    };
    let (start, end) = (endpoint(start)?, endpoint(end)?);
    let cc = match cc {
        "-" => return Ok(Line::Unknown),
        _ if cc.eq_ignore_ascii_case("ZZ") => return Ok(Line::Unknown),
        _ => country_code(cc).ok_or("country is not a 2-letter code")?,
    };
    let line = match (start, end) {
        (Endpoint::V4(start), Endpoint::V4(end)) => Line::V4(Range { start, end, cc }),
        (Endpoint::Decimal(start), Endpoint::Decimal(end)) => {
            match (u32::try_from(start), u32::try_from(end)) {
                (Ok(start), Ok(end)) => Line::V4(Range { start, end, cc }),
                _ => v6_line(start, end, cc),
            }
        }
        (Endpoint::V6(start), Endpoint::V6(end)) => v6_line(start, end, cc),
        _ => return Err("start and end are of different address families"),
    };
    let ordered = match &line {
        Line::V4(r) => r.start <= r.end,
        Line::V6(r) => r.start <= r.end,
        Line::Unknown => true,
    };
    if ordered {
        Ok(line)
    } else {
        Err("start is after end")
    }
}

/// An IPv6 range, or an IPv4 one when it lies wholly in `::ffff:0:0/96`.
fn v6_line(start: u128, end: u128, cc: [u8; 2]) -> Line {
    let mapped = MAPPED_V4_START..=MAPPED_V4_END;
    if mapped.contains(&start) && mapped.contains(&end) {
        // Both fit in 32 bits after removing the ::ffff:0:0 prefix.
        let low = |x: u128| (x - MAPPED_V4_START) as u32;
        Line::V4(Range {
            start: low(start),
            end: low(end),
            cc,
        })
    } else {
        Line::V6(Range { start, end, cc })
    }
}

fn unquote(field: &str) -> &str {
    let field = field.trim();
    field
        .strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))
        .map_or(field, str::trim)
}

fn endpoint(s: &str) -> Result<Endpoint, &'static str> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u128>()
            .map(Endpoint::Decimal)
            .map_err(|_| "decimal address out of range");
    }
    match s.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => Ok(Endpoint::V4(u32::from(v4))),
        Ok(IpAddr::V6(v6)) => Ok(Endpoint::V6(u128::from(v6))),
        Err(_) => Err("address is neither an IP literal nor a decimal integer"),
    }
}

/// Address types the range table is keyed by.
trait Addr: Copy + Ord {
    fn succ(self) -> Self;
}

impl Addr for u32 {
    fn succ(self) -> Self {
        self.saturating_add(1)
    }
}

impl Addr for u128 {
    fn succ(self) -> Self {
        self.saturating_add(1)
    }
}

/// Sorts by start (stable: file order breaks ties) and trims overlaps so the
/// range that starts first keeps the shared addresses.
fn disjoint<T: Addr>(mut ranges: Vec<Range<T>>) -> Vec<Range<T>> {
    ranges.sort_by_key(|r| r.start);
    let mut out: Vec<Range<T>> = Vec::with_capacity(ranges.len());
    for mut r in ranges {
        if let Some(last) = out.last() {
            if r.end <= last.end {
                continue;
            }
            if r.start <= last.end {
                // last.end < r.end, so succ() cannot saturate here.
                r.start = last.end.succ();
            }
        }
        out.push(r);
    }
    out.shrink_to_fit();
    out
}

/// Binary search in a sorted, disjoint table.
fn find<T: Addr>(ranges: &[Range<T>], ip: T) -> Option<[u8; 2]> {
    let after = ranges.partition_point(|r| r.start <= ip);
    let r = ranges.get(after.checked_sub(1)?)?;
    (ip <= r.end).then_some(r.cc)
}

#[cfg(test)]
mod tests {
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
}
