//! Measurement kernels shared by the native benchmark (`examples/wire_bench.rs`) and the
//! browser one: the caller supplies the clock, so the core stays clock-free.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::identity::pair::TAG_LEN;
use crate::identity::{AccountKind, LocalAccount, Session};
use crate::time::{Duration, Instant};

/// Operations per second of the wire's cryptography.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CryptoOps {
    /// ECDSA over a 32-byte digest with the session key (hellos and error reports).
    pub sign: f64,
    /// ECDSA verification (hellos and error reports, at the destination).
    pub verify: f64,
    /// Account signature recovery and delegation check (once per session and peer).
    pub delegation: f64,
    /// Pair key derivation: ECDH + HKDF (once per session and peer).
    pub pair: f64,
    /// Sealing / opening a 100-byte data message under a pair key (every message).
    pub seal: f64,
    pub open: f64,
    /// Sealing 16 KiB, in MB/s of payload.
    pub seal_16k_mb_s: f64,
}

/// Runs each operation for at least `min_ms` by `clock` (milliseconds, any origin).
pub fn crypto_ops(clock: &mut dyn FnMut() -> f64, min_ms: f64) -> CryptoOps {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let account = LocalAccount::generate(&mut rng);
    let session = Session::with_local_account(&mut rng, &account, AccountKind::Eip191, 1, Instant(0), Duration::from_secs(3600));
    let digest = [7u8; 32];
    let sig = session.sign(&digest);
    let key = *session.public_key();
    let peer = Session::with_local_account(&mut rng, &account, AccountKind::Eip191, 1, Instant(0), Duration::from_secs(3600));
    let keys = session.pair_keys(peer.public_key(), peer.fingerprint());
    let back = peer.pair_keys(session.public_key(), session.fingerprint());
    let small = vec![5u8; 100];
    let mut sealed = small.clone();
    keys.seal(&[1; 24], b"aad", &mut sealed);
    let head = keys.head_tag(&[1; 24], b"aad");
    let mut big = vec![9u8; 16 << 10];
    let mut rate = |f: &mut dyn FnMut() -> bool| -> f64 {
        let start = clock();
        let mut n = 0u64;
        loop {
            assert!(f(), "benchmark operation failed");
            n += 1;
            let t = clock() - start;
            if t >= min_ms {
                return n as f64 * 1000.0 / t;
            }
        }
    };
    let sign = rate(&mut || session.sign(&digest) == sig);
    let verify = rate(&mut || sig.verify(&key, &digest));
    let delegation = rate(&mut || session.delegation().verify_signature().is_ok());
    let pair = rate(&mut || session.pair_keys(peer.public_key(), peer.fingerprint()).open(&[1; 24], b"aad", sealed.clone()).is_err());
    let seal = rate(&mut || {
        let mut b = small.clone();
        let head = keys.head_tag(&[2; 24], b"aad");
        keys.seal(&[2; 24], b"aad", &mut b);
        b.len() == small.len() + TAG_LEN && head != [0; TAG_LEN]
    });
    let open = rate(&mut || back.check_head(&[1; 24], b"aad", &head) && back.open(&[1; 24], b"aad", sealed.clone()).is_ok());
    let len = big.len();
    let seal_16k = rate(&mut || {
        keys.seal(&[3; 24], b"aad", &mut big);
        big.truncate(len); // seal in place again: the cost is the cipher's, not allocation
        true
    });
    CryptoOps { sign, verify, delegation, pair, seal, open, seal_16k_mb_s: seal_16k * len as f64 / 1e6 }
}
