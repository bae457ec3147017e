//! The node's account key file and the session keys it delegates to.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::identity::{AccountKind, LocalAccount, PublicKeyBytes, Session};
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
    write_private(path, &format!("{}\n", hex(&secret)), force)?;
    Ok(account)
}

/// Writes `text` to `path` (mode 0600): whole to a new file beside it, synced, then
/// renamed over, so a crash leaves the old file or the new one, never a torn one;
/// refuses to replace an existing file unless `force`.
fn write_private(path: &Path, text: &str, force: bool) -> Result<(), String> {
    if path.exists() && !force {
        return Err(format!("{} exists (use --force to replace it)", path.display()));
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        if force {
            std::fs::rename(&tmp, path)?;
        } else {
            // A file that appeared meanwhile is not replaced: a hard link fails on it.
            std::fs::hard_link(&tmp, path)?;
            std::fs::remove_file(&tmp)?;
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

/// Refuses a secret file others can read.
fn check_private(path: &Path, what: &str) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))?;
    let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!("the {what} {} is readable by others (mode {mode:o}): chmod 600 it", path.display()));
    }
    Ok(())
}

/// `rings new-session`: a session key delegated by `account` for `ttl` from `now`,
/// written to `path` (0600: the session secret and the signed delegation, hex, one per
/// line). A node given it (`session_file`) runs without the account key.
pub fn write_session(path: &Path, account: &LocalAccount, network: u32, now: Instant, ttl: Duration, force: bool) -> Result<Session, String> {
    let mut rng = os_rng()?;
    let key = Session::generate_key(&mut rng);
    let delegation = account.delegate(AccountKind::Eip191, &PublicKeyBytes::of(key.verifying_key()), network, now, ttl);
    let encoded = postcard::to_allocvec(&delegation).map_err(|e| e.to_string())?;
    write_private(path, &format!("{}\n{}\n", hex(&key.to_bytes()), hex(&encoded)), force)?;
    Session::new(key, delegation).map_err(|e| format!("{e:?}"))
}

/// Reads a session file written by [`write_session`]: its delegation must hold, be for
/// `network` and be valid at `now` (wall clock).
pub fn read_session(path: &Path, network: u32, now: Instant) -> Result<Session, String> {
    check_private(path, "session file")?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read the session file {}: {e}", path.display()))?;
    let bad = |why: &str| format!("session file {}: {why}", path.display());
    let mut lines = text.lines().map(str::trim);
    let secret = lines.next().and_then(unhex).filter(|b| b.len() == 32).ok_or_else(|| bad("the first line is not a 64-digit hex key"))?;
    let delegation = lines.next().and_then(unhex).ok_or_else(|| bad("the second line is not hex"))?;
    let delegation: crate::identity::Delegation = postcard::from_bytes(&delegation).map_err(|_| bad("not a delegation"))?;
    let key = k256::ecdsa::SigningKey::from_slice(&secret).map_err(|_| bad("not a secp256k1 key"))?;
    delegation.verify(network, now, Duration::from_secs(60)).map_err(|e| bad(&format!("{e:?} (network {network}, make a new one: rings new-session)")))?;
    Session::new(key, delegation).map_err(|e| bad(&format!("{e:?}")))
}

/// Reads an account key file written by [`write_new_key`].
pub fn read_key(path: &Path) -> Result<LocalAccount, String> {
    check_private(path, "key file")?;
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

    #[test]
    fn a_session_file_is_read_back_only_for_its_network_and_time() {
        let dir = std::env::temp_dir().join(format!("rings-session-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let account = write_new_key(&dir.join("account.key"), false).unwrap();
        let p = dir.join("session.key");
        let now = Instant(1_800_000_000_000);
        let day = Duration::from_secs(86_400);
        let s = write_session(&p, &account, 7, now, day, false).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(write_session(&p, &account, 7, now, day, false).unwrap_err().contains("--force"));
        let back = read_session(&p, 7, now).unwrap();
        assert_eq!((back.did(), back.delegation()), (account.did(), s.delegation()));
        assert!(read_session(&p, 8, now).is_err(), "another network");
        assert!(read_session(&p, 7, Instant(now.0 + 2 * 86_400_000)).is_err(), "expired");
        // A tampered delegation or a key that is not the delegated one is refused.
        let text = std::fs::read_to_string(&p).unwrap();
        let (key, deleg) = text.split_once('\n').unwrap();
        let other = write_session(&dir.join("other.key"), &account, 7, now, day, false).unwrap();
        assert_ne!(other.delegation(), s.delegation());
        let other_key = std::fs::read_to_string(dir.join("other.key")).unwrap();
        std::fs::write(&p, format!("{}\n{deleg}", other_key.lines().next().unwrap())).unwrap();
        assert!(read_session(&p, 7, now).is_err(), "a key the delegation does not name");
        std::fs::write(&p, format!("{key}\n00{deleg}")).unwrap();
        assert!(read_session(&p, 7, now).is_err(), "a garbled delegation");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
