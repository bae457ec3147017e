//! Measurement kernels shared by the native benchmark (`examples/wire_bench.rs`) and the
//! browser one: the caller supplies the clock, so the core stays clock-free.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::identity::{ecies, AccountKind, LocalAccount, Session};
use crate::time::{Duration, Instant};

/// Operations per second of the wire's cryptography.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CryptoOps {
    /// ECDSA over a 32-byte digest with the session key (every message, at the origin).
    pub sign: f64,
    /// ECDSA verification (every message, at the destination).
    pub verify: f64,
    /// Account signature recovery and delegation check (once per session and peer).
    pub delegation: f64,
    /// ECIES seal / open of a 100-byte payload (every message).
    pub seal: f64,
    pub open: f64,
    /// ECIES seal of 16 KiB, in MB/s of payload.
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
    let small = [5u8; 100];
    let sealed = ecies::seal(&mut rng, &key, b"aad", &small);
    let big = vec![9u8; 16 << 10];
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
    let seal = rate(&mut || ecies::seal(&mut rng, &key, b"aad", &small).len() == small.len() + ecies::OVERHEAD);
    let open = rate(&mut || ecies::open(session.signing_key(), b"aad", &sealed).is_ok());
    let seal_16k = rate(&mut || !ecies::seal(&mut rng, &key, b"aad", &big).is_empty());
    CryptoOps { sign, verify, delegation, seal, open, seal_16k_mb_s: seal_16k * big.len() as f64 / 1e6 }
}
