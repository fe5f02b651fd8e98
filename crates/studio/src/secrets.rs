//! API tokens in the OS keyring (the kernel keyring on Linux, Keychain, Credential Manager):
//! never in a file of ours, never sent to the webview.

use crate::StudioError;

const SERVICE: &str = "mintframe";

/// On Linux the keyring crate keeps secrets in the user's persistent keyring, reached through
/// the session keyring. Outside a login session (a service, CI, `cargo test`) the process has
/// none, and the user-session fallback refuses the link to the persistent keyring; joining a
/// session keyring first makes the store work there too, and a secret still outlives the
/// process (it lives in the persistent keyring).
///
/// Keyrings hang off a thread's credentials, so this runs on every call (one cheap syscall that
/// returns the existing keyring when there is one): the studio reaches the keyring from
/// whichever worker thread runs the command.
fn ensure_session_keyring() {
    #[cfg(target_os = "linux")]
    if let Err(e) =
        linux_keyutils::KeyRing::from_special_id(linux_keyutils::KeyRingIdentifier::Session, true)
    {
        tracing::warn!("no session keyring: {e}");
    }
}

fn entry(account: &str) -> Result<keyring::Entry, StudioError> {
    ensure_session_keyring();
    keyring::Entry::new(SERVICE, account)
        .map_err(|e| StudioError::Secret(format!("keyring entry {account}: {e}")))
}

pub fn set(account: &str, secret: &str) -> Result<(), StudioError> {
    entry(account)?
        .set_password(secret)
        .map_err(|e| StudioError::Secret(format!("cannot store {account} in the OS keyring: {e}")))
}

/// `None` when nothing is stored under `account`.
pub fn get(account: &str) -> Result<Option<String>, StudioError> {
    match entry(account)?.get_password() {
        Ok(s) => Ok(Some(s)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(StudioError::Secret(format!(
            "cannot read {account} from the OS keyring: {e}"
        ))),
    }
}

pub fn delete(account: &str) -> Result<(), StudioError> {
    match entry(account)?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(StudioError::Secret(format!(
            "cannot remove {account} from the OS keyring: {e}"
        ))),
    }
}
