//! The delegation text a wallet shows and signs: readable, domain-separated, one line
//! per field, reproducible byte for byte by any verifier.

use super::PublicKeyBytes;
use crate::Did;

/// The exact text an account signs to delegate to `session`.
pub fn delegation_text(account: Did, session: &PublicKeyBytes, network: u32, issued_at: u64, expires_at: u64) -> String {
    let mut key = String::with_capacity(68);
    for b in session.to_bytes() {
        key.push_str(&format!("{b:02x}"));
    }
    format!(
        "Rings Network: authorize a session key\n\
         \n\
         This lets the session key below send and receive for your account on network {network} until it expires. It cannot move funds.\n\
         \n\
         Account: {}\n\
         Session key: 0x{key}\n\
         Network: {network}\n\
         Issued: {}\n\
         Expires: {}",
        account.to_checksum(),
        iso8601(issued_at),
        iso8601(expires_at),
    )
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DDThh:mm:ssZ` (plus `.mmm` when the
/// milliseconds are not zero), UTC, proleptic Gregorian.
fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, mi, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let frac = if ms % 1000 == 0 { String::new() } else { format!(".{:03}", ms % 1000) };
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}Z")
}

#[cfg(test)]
mod tests {
    use super::iso8601;

    #[test]
    fn dates_render_as_utc() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(iso8601(4_102_444_799_000), "2099-12-31T23:59:59Z");
    }
}
