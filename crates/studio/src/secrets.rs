//! API tokens in a store that outlives a reboot: the Secret Service on Linux (GNOME Keyring,
//! KWallet), Keychain on macOS, Credential Manager on Windows. Never in a file of ours, never
//! sent to the webview.
//!
//! Where a Linux session has no Secret Service (a server, a bare window manager, CI) there is
//! nowhere persistent to keep a token, and storing one fails with [`StudioError::NoKeyring`],
//! which names the other ways in: a token file only the user can read, or an environment
//! variable. Earlier versions kept tokens in the kernel keyring, which lives in memory; such a
//! token is still read (and moved to the Secret Service when one is there).

use crate::StudioError;

const SERVICE: &str = "mintframe";

#[cfg(target_os = "linux")]
fn entry(account: &str) -> Result<keyring::Entry, keyring::Error> {
    let cred = keyring::secret_service::SsCredential::new_with_target(None, SERVICE, account)?;
    Ok(keyring::Entry::new_with_credential(Box::new(cred)))
}

#[cfg(not(target_os = "linux"))]
fn entry(account: &str) -> Result<keyring::Entry, keyring::Error> {
    keyring::Entry::new(SERVICE, account)
}

/// Whether the error means "there is no store here" rather than "the store said no".
fn no_store(e: &keyring::Error) -> bool {
    matches!(
        e,
        keyring::Error::NoStorageAccess(_) | keyring::Error::PlatformFailure(_)
    )
}

/// Stores `secret`; fails with [`StudioError::NoKeyring`] where nothing would keep it.
pub fn set(account: &str, secret: &str) -> Result<(), StudioError> {
    match entry(account).and_then(|e| e.set_password(secret)) {
        Ok(()) => {
            legacy::delete(account);
            Ok(())
        }
        Err(e) if no_store(&e) => Err(StudioError::NoKeyring(e.to_string())),
        Err(e) => Err(StudioError::Secret(format!(
            "cannot store {account} in the OS keyring: {e}"
        ))),
    }
}

/// `None` when no store holds `account` (or there is no store at all).
pub fn get(account: &str) -> Result<Option<String>, StudioError> {
    match entry(account).and_then(|e| e.get_password()) {
        Ok(s) => Ok(Some(s)),
        Err(keyring::Error::NoEntry) => Ok(legacy::take(account)),
        Err(e) if no_store(&e) => {
            tracing::debug!("no persistent keyring: {e}");
            Ok(legacy::get(account))
        }
        Err(e) => Err(StudioError::Secret(format!(
            "cannot read {account} from the OS keyring: {e}"
        ))),
    }
}

pub fn delete(account: &str) -> Result<(), StudioError> {
    legacy::delete(account);
    match entry(account).and_then(|e| e.delete_credential()) {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) if no_store(&e) => Ok(()),
        Err(e) => Err(StudioError::Secret(format!(
            "cannot remove {account} from the OS keyring: {e}"
        ))),
    }
}

/// Whether a persistent store answers in this session, and if not, why.
pub fn persistent_store() -> Result<(), String> {
    match entry("probe").and_then(|e| e.get_password()) {
        Ok(_) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Tokens earlier versions left in the kernel's persistent keyring (memory only: gone after a
/// reboot). Read so an upgrade loses nothing; moved to the Secret Service when it answers.
#[cfg(target_os = "linux")]
mod legacy {
    fn entry(account: &str) -> Option<keyring::Entry> {
        // Outside a login session there is no session keyring; joining one lets the persistent
        // keyring be reached (keyrings hang off a thread's credentials, so this runs per call).
        let _ = linux_keyutils::KeyRing::from_special_id(
            linux_keyutils::KeyRingIdentifier::Session,
            true,
        );
        let cred =
            keyring::keyutils::KeyutilsCredential::new_with_target(None, super::SERVICE, account)
                .ok()?;
        Some(keyring::Entry::new_with_credential(Box::new(cred)))
    }

    pub(super) fn get(account: &str) -> Option<String> {
        entry(account)?.get_password().ok()
    }

    /// Reads a legacy token and moves it to the Secret Service.
    pub(super) fn take(account: &str) -> Option<String> {
        let token = get(account)?;
        if super::entry(account)
            .and_then(|e| e.set_password(&token))
            .is_ok()
        {
            delete(account);
            tracing::info!(
                account,
                "token moved from the kernel keyring to the Secret Service"
            );
        }
        Some(token)
    }

    pub(super) fn delete(account: &str) {
        if let Some(e) = entry(account) {
            let _ = e.delete_credential();
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod legacy {
    pub(super) fn get(_: &str) -> Option<String> {
        None
    }
    pub(super) fn take(_: &str) -> Option<String> {
        None
    }
    pub(super) fn delete(_: &str) {}
}
