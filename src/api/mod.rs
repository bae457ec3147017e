//! What every driver shows its application, in one place: the error codes, the events
//! and views as plain values, and [`Front`], a link-mode node with the requests waiting
//! on it. The browser's `Provider` (`src/web`) and the native node's JSON-RPC are thin
//! translations of these.

mod account;
mod error;
mod front;
mod view;
mod view_ts;

pub use account::{session_key, validity};
pub use error::{ApiError, ErrorCode, ERROR_CODE_TS};
pub use front::{data_channel_config, Front, Manual, Settled, Wait, MANUAL_SIGNAL_MAX_AGE};
pub use view::{crypto, event, info, reason_text, record, Value};
pub use view_ts::VIEW_TS;

#[cfg(all(test, not(target_arch = "wasm32")))] // sessions from the simulator
mod tests;
