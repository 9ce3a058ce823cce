//! The CSV formats (DB-IP "ip-to-country-lite", IP2Location LITE DB1): one inclusive range a
//! line, read with the `csv` crate (quoted fields, CRLF) into range tables of the `rangemap`
//! crate.

use super::country_code;
use rangemap::RangeInclusiveMap;
use std::net::IpAddr;

/// How many malformed CSV lines are quoted in an error message.
const ERROR_EXAMPLES: usize = 3;

/// One inclusive address range and its upper-case country code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Range<T> {
    start: T,
    end: T,
    cc: [u8; 2],
}

pub(super) struct CsvTable {
    pub(super) v4: RangeInclusiveMap<u32, [u8; 2]>,
    pub(super) v6: RangeInclusiveMap<u128, [u8; 2]>,
    pub(super) skipped: usize,
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

pub(super) const MAPPED_V4_START: u128 = 0xffff_0000_0000;
const MAPPED_V4_END: u128 = 0xffff_ffff_ffff;

impl CsvTable {
    pub(super) fn parse(bytes: &[u8]) -> Result<CsvTable, String> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        let (mut parsed, mut skipped) = (0usize, 0usize);
        let mut examples = Vec::new();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .from_reader(bytes);
        for record in reader.byte_records() {
            let (line_no, result) = match record {
                Err(e) => (
                    e.position().map_or(0, |p| p.line()),
                    Err("not a CSV line".to_string()),
                ),
                Ok(r) => (r.position().map_or(0, |p| p.line()), line_of(&r)),
            };
            let index = line_no.saturating_sub(1) as usize;
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
            v4: table(v4),
            v6: table(v6),
            skipped,
        };
        if table.v4.is_empty() && table.v6.is_empty() {
            return Err("no range with a known country".to_string());
        }
        Ok(table)
    }

    pub(super) fn lookup(&self, ip: IpAddr) -> Option<[u8; 2]> {
        match ip {
            IpAddr::V4(v4) => self.v4.get(&u32::from(v4)).copied(),
            IpAddr::V6(v6) => self.v6.get(&u128::from(v6)).copied(),
        }
    }
}

/// A record as a line: `None` for a comment (`#`, indented or not), an error that names the
/// problem and shows the start of the line.
fn line_of(r: &csv::ByteRecord) -> Result<Option<Line>, String> {
    let fields: Vec<&str> = r
        .iter()
        .map(|f| std::str::from_utf8(f).map(unquote))
        .collect::<Result<_, _>>()
        .map_err(|_| "not UTF-8".to_string())?;
    if fields.first().is_some_and(|f| f.starts_with('#')) {
        return Ok(None);
    }
    parse_fields(&fields).map(Some).map_err(|why| {
        let shown: String = fields.join(",").chars().take(60).collect();
        format!("{why}: {shown:?}")
    })
}

fn parse_fields(fields: &[&str]) -> Result<Line, &'static str> {
    let &[start, end, cc, ..] = fields else {
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

/// A field quoted after blanks (`, "de"`), which CSV readers take as written.
fn unquote(field: &str) -> &str {
    let field = field.trim();
    field
        .strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))
        .map_or(field, str::trim)
}

/// The range table: where ranges overlap, the one that starts first keeps the shared
/// addresses (file order breaks ties). `rangemap` lets a later insert win, so the ranges go in
/// from the last of that order to the first.
fn table<T>(mut ranges: Vec<Range<T>>) -> RangeInclusiveMap<T, [u8; 2]>
where
    T: Ord + Clone + rangemap::StepLite,
{
    ranges.sort_by(|a, b| a.start.cmp(&b.start));
    let mut map = RangeInclusiveMap::new();
    for r in ranges.into_iter().rev() {
        map.insert(r.start..=r.end, r.cc);
    }
    map
}
