//! SigV4 signing keys and the cache that makes verification one HMAC per request.
//!
//! The signing key is `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
//! "aws4_request")`: four HMACs that only change once a day per access key, region and
//! service. The cache keeps the HMAC state already keyed with it, so a verification costs
//! the canonical-request hash plus a single HMAC of the string to sign.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub(crate) type HmacSha256 = Hmac<Sha256>;

pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = keyed_hmac(key);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// An HMAC-SHA256 state keyed with `key` (HMAC accepts keys of any length).
pub(crate) fn keyed_hmac(key: &[u8]) -> HmacSha256 {
    match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

/// The SigV4 signing key for one day (`date_stamp` is `YYYYMMDD`), region and service.
pub fn derive_signing_key(
    secret_access_key: &str,
    date_stamp: &str,
    region: &str,
    service: &str,
) -> [u8; 32] {
    let mut secret = Vec::with_capacity(4 + secret_access_key.len());
    secret.extend_from_slice(b"AWS4");
    secret.extend_from_slice(secret_access_key.as_bytes());
    let date_key = hmac_sha256(&secret, date_stamp.as_bytes());
    let region_key = hmac_sha256(&date_key, region.as_bytes());
    let service_key = hmac_sha256(&region_key, service.as_bytes());
    hmac_sha256(&service_key, b"aws4_request")
}

struct CachedSigningKey {
    access_key_id: Box<str>,
    date_stamp: Box<str>,
    region: Box<str>,
    service: Box<str>,
    /// The secret the key was derived from: a rotated secret must not reuse the old key.
    secret_access_key: Box<str>,
    keyed_mac: HmacSha256,
}

impl CachedSigningKey {
    fn matches(&self, scope: &KeyScope<'_>, secret_access_key: &str) -> bool {
        *self.access_key_id == *scope.access_key_id
            && *self.date_stamp == *scope.date_stamp
            && *self.region == *scope.region
            && *self.service == *scope.service
            && *self.secret_access_key == *secret_access_key
    }
}

/// What a signing key is derived for.
pub(crate) struct KeyScope<'a> {
    pub access_key_id: &'a str,
    pub date_stamp: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

impl KeyScope<'_> {
    fn fingerprint(&self) -> u64 {
        // A fixed-key hasher: entries are compared in full on lookup, so a collision only
        // costs a re-derivation, never a wrong key.
        let mut hasher = DefaultHasher::new();
        self.access_key_id.hash(&mut hasher);
        self.date_stamp.hash(&mut hasher);
        self.region.hash(&mut hasher);
        self.service.hash(&mut hasher);
        hasher.finish()
    }

    fn derive_keyed_mac(&self, secret_access_key: &str) -> HmacSha256 {
        keyed_hmac(&derive_signing_key(
            secret_access_key,
            self.date_stamp,
            self.region,
            self.service,
        ))
    }
}

/// A bounded, thread-safe cache of derived signing keys keyed by
/// (access key, date, region, service).
///
/// When full, entries for other days are dropped first; if that frees nothing the cache
/// starts over. Share one per process (e.g. in an `Arc`) and pass it to
/// [`verify_with_cache`](super::verify_with_cache).
pub struct SigningKeyCache {
    entries: Mutex<HashMap<u64, CachedSigningKey>>,
    capacity: usize,
}

impl SigningKeyCache {
    /// Entries kept by [`SigningKeyCache::default`]: plenty for one key per agent and user.
    pub const DEFAULT_CAPACITY: usize = 4_096;

    /// A cache holding at most `capacity` keys (at least one).
    pub fn new(capacity: usize) -> SigningKeyCache {
        SigningKeyCache {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// Number of keys currently cached.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no key is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, CachedSigningKey>> {
        // A panic while holding the lock cannot leave an entry half-written (inserts are
        // single calls), so a poisoned map is still consistent.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The HMAC state keyed with the signing key for `scope`, derived on a miss.
    pub(crate) fn keyed_mac(&self, scope: &KeyScope<'_>, secret_access_key: &str) -> HmacSha256 {
        let fingerprint = scope.fingerprint();
        if let Some(entry) = self.lock().get(&fingerprint) {
            if entry.matches(scope, secret_access_key) {
                return entry.keyed_mac.clone();
            }
        }
        let keyed_mac = scope.derive_keyed_mac(secret_access_key);
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&fingerprint) {
            entries.retain(|_, entry| *entry.date_stamp == *scope.date_stamp);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(
            fingerprint,
            CachedSigningKey {
                access_key_id: scope.access_key_id.into(),
                date_stamp: scope.date_stamp.into(),
                region: scope.region.into(),
                service: scope.service.into(),
                secret_access_key: secret_access_key.into(),
                keyed_mac: keyed_mac.clone(),
            },
        );
        keyed_mac
    }
}

impl Default for SigningKeyCache {
    fn default() -> SigningKeyCache {
        SigningKeyCache::new(SigningKeyCache::DEFAULT_CAPACITY)
    }
}

impl std::fmt::Debug for SigningKeyCache {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SigningKeyCache")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope<'a>(access_key_id: &'a str, date_stamp: &'a str) -> KeyScope<'a> {
        KeyScope {
            access_key_id,
            date_stamp,
            region: "us-east-1",
            service: "iam",
        }
    }

    fn signature_with(mac: HmacSha256) -> String {
        let mut mac = mac;
        mac.update(b"string to sign");
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn derives_the_documented_example_key() {
        // AWS's published example: secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY,
        // 20150830/us-east-1/iam.
        let key = derive_signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20150830",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex::encode(key),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }

    #[test]
    fn cache_returns_the_same_key_as_derivation() {
        let cache = SigningKeyCache::new(8);
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let expected = signature_with(keyed_hmac(&derive_signing_key(
            secret,
            "20150830",
            "us-east-1",
            "iam",
        )));
        let first = signature_with(cache.keyed_mac(&scope("AKID", "20150830"), secret));
        let second = signature_with(cache.keyed_mac(&scope("AKID", "20150830"), secret));
        assert_eq!(first, expected);
        assert_eq!(second, expected);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn cache_rederives_after_secret_rotation() {
        let cache = SigningKeyCache::new(8);
        let old = signature_with(cache.keyed_mac(&scope("AKID", "20150830"), "old-secret"));
        let new = signature_with(cache.keyed_mac(&scope("AKID", "20150830"), "new-secret"));
        assert_ne!(old, new);
        let expected = signature_with(keyed_hmac(&derive_signing_key(
            "new-secret",
            "20150830",
            "us-east-1",
            "iam",
        )));
        assert_eq!(new, expected);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn cache_stays_within_capacity_and_drops_other_days_first() {
        let cache = SigningKeyCache::new(3);
        cache.keyed_mac(&scope("A", "20150829"), "s");
        cache.keyed_mac(&scope("B", "20150829"), "s");
        cache.keyed_mac(&scope("C", "20150830"), "s");
        assert_eq!(cache.len(), 3);
        cache.keyed_mac(&scope("D", "20150830"), "s");
        assert_eq!(cache.len(), 2, "yesterday's keys make room for today's");
        cache.keyed_mac(&scope("E", "20150830"), "s");
        assert_eq!(cache.len(), 3);
        cache.keyed_mac(&scope("F", "20150830"), "s");
        assert_eq!(cache.len(), 1, "a full cache of today's keys starts over");
        assert!(!cache.is_empty());
    }
}
