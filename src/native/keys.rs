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
    if path.exists() && !force {
        return Err(format!("{} exists (use --force to replace it)", path.display()));
    }
    // Written whole to a new 0600 file beside it, synced, then renamed over: a crash
    // leaves the old key or the new one, never a torn file.
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        writeln!(f, "{}", hex(&secret))?;
        f.sync_all()?;
        if !force && path.exists() {
            return Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "appeared meanwhile"));
        }
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })?;
    Ok(account)
}

/// Reads an account key file written by [`write_new_key`].
pub fn read_key(path: &Path) -> Result<LocalAccount, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read the key file {}: {e}", path.display()))?;
    let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!("the key file {} is readable by others (mode {mode:o}): chmod 600 it", path.display()));
    }
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
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary file is left");
        // A key others can read is refused, not used.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read_key(&p).unwrap_err().contains("chmod 600"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_key(&p).unwrap().did(), b.did());
        std::fs::write(&p, "zz").unwrap();
        assert!(read_key(&p).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
