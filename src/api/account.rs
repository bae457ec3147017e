//! Checks of what an application hands over to make a session: the session key's seed
//! and the delegation's validity window.

use k256::ecdsa::SigningKey;

use super::{ApiError, ErrorCode};
use crate::time::{Duration, Instant};

/// The session key made from `seed`: exactly 32 random bytes below the curve order
/// (k256 alone would take a shorter slice, padded, which is a weaker key).
pub fn session_key(seed: &[u8]) -> Result<SigningKey, ApiError> {
    let bad = || ApiError::new(ErrorCode::BadArgument, "session seed must be 32 random bytes below the curve order");
    let seed: &[u8; 32] = seed.try_into().map_err(|_| bad())?;
    SigningKey::from_bytes(seed.into()).map_err(|_| bad())
}

/// A delegation's start and lifetime from milliseconds (since the epoch, and long).
pub fn validity(now_ms: f64, ttl_ms: f64) -> Result<(Instant, Duration), ApiError> {
    if !(now_ms.is_finite() && now_ms >= 0.0 && ttl_ms.is_finite() && ttl_ms > 0.0) {
        return Err(ApiError::new(ErrorCode::BadArgument, "time and ttl must be positive milliseconds"));
    }
    Ok((Instant(now_ms as u64), Duration(ttl_ms as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_seeds_and_windows_are_bad_arguments() {
        assert!(session_key(&[7; 32]).is_ok());
        for seed in [&[0u8; 32][..], &[0xff; 32], &[7; 31], &[7; 24], &[7; 33], &[]] {
            assert_eq!(session_key(seed).unwrap_err().code, ErrorCode::BadArgument, "{seed:?}");
        }
        assert_eq!(validity(1_000.0, 60_000.0).unwrap(), (Instant(1_000), Duration(60_000)));
        for (now, ttl) in [(-1.0, 1.0), (f64::NAN, 1.0), (1.0, 0.0), (1.0, f64::INFINITY), (f64::INFINITY, 1.0)] {
            assert_eq!(validity(now, ttl).unwrap_err().code, ErrorCode::BadArgument, "{now} {ttl}");
        }
    }
}
