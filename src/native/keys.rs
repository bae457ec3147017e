//! The node's account key file and the session keys it delegates to.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::identity::{AccountKind, LocalAccount, Session};
use crate::time::{Duration, Instant};

/// 32 bytes from the operating system.
pub fn entropy() -> Result<[u8; 32], String> {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).map_err(|e| format!("no randomness from the operating system: {e}"))?;
    Ok(b)
}

/// A generator seeded from the operating system.
pub fn os_rng() -> Result<ChaCha20Rng, String> {
    entropy().map(ChaCha20Rng::from_seed)
}

/// Writes a new account key (hex, one line) to `path` with mode 0600; refuses to replace
/// an existing file unless `force`.
pub fn write_new_key(path: &Path, force: bool) -> Result<LocalAccount, String> {
    let mut rng = os_rng()?;
    let mut secret = [0u8; 32];
    let account = loop {
        rand_chacha::rand_core::RngCore::fill_bytes(&mut rng, &mut secret);
        if let Ok(a) = LocalAccount::from_bytes(&secret) {
            break a;
        }
    };
    let mut o = std::fs::OpenOptions::new();
    o.write(true).mode(0o600);
    if force {
        o.create(true).truncate(true);
    } else {
        o.create_new(true);
    }
    let mut f = o.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => format!("{} exists (use --force to replace it)", path.display()),
        _ => format!("cannot write {}: {e}", path.display()),
    })?;
    // An existing file replaced with --force keeps its mode: set it.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).map_err(|e| e.to_string())?;
    writeln!(f, "{}", hex(&secret)).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    f.sync_all().map_err(|e| e.to_string())?;
    Ok(account)
}

/// Reads an account key file written by [`write_new_key`].
pub fn read_key(path: &Path) -> Result<LocalAccount, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read the key file {}: {e}", path.display()))?;
    let t = text.trim();
    let t = t.strip_prefix("0x").unwrap_or(t);
    let bytes = unhex(t).filter(|b| b.len() == 32).ok_or_else(|| format!("{}: not 64 hex digits", path.display()))?;
    let mut secret = [0u8; 32];
    secret.copy_from_slice(&bytes);
    LocalAccount::from_bytes(&secret).map_err(|e| format!("{}: {e:?}", path.display()))
}

/// A fresh session key delegated by `account` for `ttl`, from `now` (wall clock).
pub fn new_session(account: &LocalAccount, network: u32, now: Instant, ttl: Duration) -> Result<Session, String> {
    let mut rng = os_rng()?;
    Ok(Session::with_local_account(&mut rng, account, AccountKind::Eip191, network, now, ttl))
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_key_file_is_private_and_not_overwritten() {
        let dir = std::env::temp_dir().join(format!("rings-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("account.key");
        let a = write_new_key(&p, false).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(read_key(&p).unwrap().did(), a.did());
        assert!(write_new_key(&p, false).unwrap_err().contains("--force"));
        let b = write_new_key(&p, true).unwrap();
        assert_ne!(a.did(), b.did());
        std::fs::write(&p, "zz").unwrap();
        assert!(read_key(&p).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
