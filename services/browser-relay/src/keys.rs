//! DSN keys: the active ones in memory (every browser request checks one), new ones from the
//! OS's random source.

use std::collections::HashMap;
use std::io::Read;
use std::sync::RwLock;

use crate::db::DsnKey;

/// Active public keys → their project.
#[derive(Debug, Default)]
pub struct ActiveKeys(RwLock<HashMap<String, String>>);

impl ActiveKeys {
    /// The active keys among `keys`.
    pub fn new(keys: &[DsnKey]) -> ActiveKeys {
        let active = ActiveKeys::default();
        for key in keys {
            active.update(key);
        }
        active
    }

    /// The project of an active key.
    pub fn project(&self, public_key: &str) -> Option<String> {
        let map = self.0.read().unwrap_or_else(|p| p.into_inner());
        map.get(public_key).cloned()
    }

    /// Records a key's current state (created or deactivated).
    pub fn update(&self, key: &DsnKey) {
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        if key.active {
            map.insert(key.public_key.clone(), key.project.clone());
        } else {
            map.remove(&key.public_key);
        }
    }
}

/// A new public key: 16 bytes from the OS's CSPRNG (`/dev/urandom`) as 32 hex characters.
pub fn generate() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(public_key: &str, active: bool) -> DsnKey {
        DsnKey {
            id: 1,
            public_key: public_key.to_string(),
            project: "shop".to_string(),
            active,
            created_at: String::new(),
        }
    }

    #[test]
    fn only_active_keys_pass() {
        let keys = ActiveKeys::new(&[key("a", true), key("b", false)]);
        assert_eq!(keys.project("a").as_deref(), Some("shop"));
        assert_eq!(keys.project("b"), None);
        keys.update(&key("a", false));
        assert_eq!(keys.project("a"), None);
    }

    #[test]
    fn generated_keys_are_32_hex_and_differ() {
        let (a, b) = (generate().unwrap(), generate().unwrap());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
