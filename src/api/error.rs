//! The error codes every driver shows its application: the browser's `RingsError.code`,
//! the native node's JSON-RPC errors. One list; the TypeScript type is generated from it.

use core::fmt;

use crate::store::{PutError, StoreError};
use crate::wire::SendError;

macro_rules! codes {
    ($($(#[doc = $doc:literal])* $name:ident = $text:literal,)*) => {
        /// A stable error code (its text never changes between versions).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $name,)*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name,)*];

            /// The code's text, e.g. `"BAD_ARGUMENT"`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$name => $text,)*
                }
            }
        }

        /// `export type ErrorCode = "BAD_ARGUMENT" | …;` for the generated `.d.ts`.
        pub const ERROR_CODE_TS: &str = concat!("export type ErrorCode =", $(" | \"", $text, "\"",)* ";\n");
    };
}

codes! {
    /// An argument of the wrong type, range or length.
    BadArgument = "BAD_ARGUMENT",
    /// Text that is not a DID (`0x` + 40 hex digits, EIP-55 checked if mixed case).
    BadDid = "BAD_DID",
    /// A manual offer that does not parse, is not signed for this network, or is stale.
    BadOffer = "BAD_OFFER",
    /// A manual answer that does not parse or answers no offer of ours.
    BadAnswer = "BAD_ANSWER",
    /// A signature or delegation that does not verify.
    BadSignature = "BAD_SIGNATURE",
    /// A connection that could not be opened or was closed before it opened.
    ConnectFailed = "CONNECT_FAILED",
    /// A message or record over the limit.
    TooLarge = "TOO_LARGE",
    /// A bound was reached (connections, queued messages, stored records, waiters).
    Busy = "BUSY",
    /// The node (or the connection) is closed.
    Closed = "CLOSED",
    /// No answer in time.
    Timeout = "TIMEOUT",
    /// The ring could not deliver it.
    Undelivered = "UNDELIVERED",
    /// The platform's WebRTC failed.
    Webrtc = "WEBRTC",
    /// The wallet refused or failed (TypeScript only).
    Wallet = "WALLET",
    /// A record older than the one stored.
    Stale = "STALE",
    /// A value record written by another account.
    NotOwner = "NOT_OWNER",
    /// The wasm module could not be loaded (TypeScript only).
    Wasm = "WASM",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A code and a message for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl fmt::Display) -> ApiError {
        ApiError { code, message: message.to_string() }
    }
    pub(crate) fn closed() -> ApiError {
        ApiError::new(ErrorCode::Closed, "node closed")
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<SendError> for ApiError {
    fn from(e: SendError) -> ApiError {
        match e {
            SendError::TooLarge { max, .. } => ApiError::new(ErrorCode::TooLarge, format!("message over {max} bytes")),
            SendError::QueueFull => ApiError::new(ErrorCode::Busy, "too many messages waiting for this peer's session"),
            SendError::NoSession => ApiError::new(ErrorCode::Closed, "no session"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        let code = match e {
            StoreError::BadSignature | StoreError::BadDelegation => ErrorCode::BadSignature,
            StoreError::Stale => ErrorCode::Stale,
            StoreError::NotOwner => ErrorCode::NotOwner,
            StoreError::TooLarge => ErrorCode::TooLarge,
            StoreError::Full => ErrorCode::Busy,
            StoreError::NoSession => ErrorCode::Closed,
            StoreError::Unreplicated => ErrorCode::Timeout,
            StoreError::NotReplica => ErrorCode::Undelivered,
            _ => ErrorCode::BadArgument,
        };
        ApiError::new(code, e)
    }
}

impl From<PutError> for ApiError {
    fn from(e: PutError) -> ApiError {
        match e {
            PutError::Refused(e) => e.into(),
            PutError::TimedOut => ApiError::timed_out(),
            PutError::NoRoute => ApiError::no_route(),
        }
    }
}

impl ApiError {
    pub(crate) fn timed_out() -> ApiError {
        ApiError::new(ErrorCode::Timeout, "the key's owner did not answer in time")
    }
    pub(crate) fn no_route() -> ApiError {
        ApiError::new(ErrorCode::Undelivered, "the key's owner could not be found")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_distinct_and_in_the_typescript_type() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "{c} twice");
            assert!(c.as_str().chars().all(|ch| ch.is_ascii_uppercase() || ch == '_'), "{c}");
            assert!(ERROR_CODE_TS.contains(&format!("\"{c}\"")), "{c} in {ERROR_CODE_TS}");
        }
        assert_eq!(ERROR_CODE_TS.matches('"').count(), 2 * ErrorCode::ALL.len());
        assert!(ERROR_CODE_TS.starts_with("export type ErrorCode = | \"BAD_ARGUMENT\" | "), "{ERROR_CODE_TS}");
    }

    #[test]
    fn store_refusals_map_to_their_codes() {
        assert_eq!(ApiError::from(StoreError::Stale).code, ErrorCode::Stale);
        assert_eq!(ApiError::from(PutError::TimedOut).code, ErrorCode::Timeout);
        assert_eq!(ApiError::from(SendError::QueueFull).code, ErrorCode::Busy);
    }
}
