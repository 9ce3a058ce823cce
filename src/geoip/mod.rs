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

mod csv;
#[cfg(test)]
mod tests;

use csv::CsvTable;

/// Largest file [`GeoIp::open`] will read (GeoLite2-City is about 60 MiB).
pub const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

/// Marker that starts the metadata section of a MaxMind DB file.
const MMDB_METADATA_MARKER: &[u8] = b"\xAB\xCD\xEFMaxMind.com";
/// The metadata section lives within this many bytes of the end of the file.
const MMDB_METADATA_MAX: usize = 128 * 1024;

/// An opened GeoIP database: immutable, `Send + Sync`, cheap to look up in.
pub struct GeoIp {
    db: Db,
}

enum Db {
    Mmdb(maxminddb::Reader<Vec<u8>>),
    Csv(CsvTable),
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
            Db::Csv(table) => table.v4.iter().count() + table.v6.iter().count(),
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
