//! Country of an IP address from an optional GeoIP database file (placeholder; being written).
