//! Access keys: created on first start, stored in the store, looked up by
//! SigV4 verification.
//!
//! Each key lives at `/iam/access-keys/<accessKeyId>` as JSON
//! `{accessKeyId, secretAccessKey, accountId, createdAt, status}`
//! (`createdAt` in milliseconds since the Unix epoch, `status` `Active` or
//! `Inactive`, as IAM spells it). [`AccessKeys`] holds every key in memory so
//! the per-request lookup ([`AccessKeys::secret_for`]) never touches the store.

use std::collections::HashMap;
use std::fmt;
use std::sync::RwLock;

use base64::Engine as _;
use rand::Rng;
use serde::{Deserialize, Serialize};
use store::{Compare, Op, RangeRequest, Store, Txn};

use crate::ApiError;

/// Store key prefix of every access key record.
pub const ACCESS_KEY_PREFIX: &str = "/iam/access-keys/";

/// Length of an access key id: `AKIA` followed by 16 characters.
pub const ACCESS_KEY_ID_LEN: usize = 20;
/// Length of a secret access key.
pub const SECRET_ACCESS_KEY_LEN: usize = 40;

const ACCESS_KEY_ID_PREFIX: &str = "AKIA";
const ACCESS_KEY_ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// 30 random bytes encode to exactly 40 base64 characters.
const SECRET_RANDOM_BYTES: usize = SECRET_ACCESS_KEY_LEN / 4 * 3;
/// How many fresh ids to try if a generated one is already taken.
const CREATE_ATTEMPTS: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessKeyStatus {
    Active,
    Inactive,
}

/// One stored access key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub account_id: String,
    /// Milliseconds since the Unix epoch.
    #[serde(rename = "createdAt")]
    pub created_at_ms: i64,
    pub status: AccessKeyStatus,
}

/// Never prints the secret.
impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("account_id", &self.account_id)
            .field("created_at_ms", &self.created_at_ms)
            .field("status", &self.status)
            .finish()
    }
}

impl AccessKey {
    /// A new active key shaped like AWS's: id `AKIA` + 16 uppercase
    /// alphanumerics, secret 40 base64 characters.
    pub fn generate<R: Rng + ?Sized>(account_id: &str, now_ms: i64, rng: &mut R) -> AccessKey {
        let mut access_key_id = String::with_capacity(ACCESS_KEY_ID_LEN);
        access_key_id.push_str(ACCESS_KEY_ID_PREFIX);
        while access_key_id.len() < ACCESS_KEY_ID_LEN {
            let index = rng.gen_range(0..ACCESS_KEY_ID_ALPHABET.len());
            access_key_id.push(char::from(ACCESS_KEY_ID_ALPHABET[index]));
        }
        let mut secret_bytes = [0u8; SECRET_RANDOM_BYTES];
        rng.fill(&mut secret_bytes[..]);
        let secret_access_key = base64::engine::general_purpose::STANDARD.encode(secret_bytes);
        AccessKey {
            access_key_id,
            secret_access_key,
            account_id: account_id.to_string(),
            created_at_ms: now_ms,
            status: AccessKeyStatus::Active,
        }
    }

    /// Where this key is stored.
    pub fn store_key(&self) -> String {
        store_key(&self.access_key_id)
    }

    fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an AccessKey always serializes")
    }

    fn from_json(store_key: &str, value: &[u8]) -> Result<AccessKey, ApiError> {
        serde_json::from_slice(value).map_err(|err| {
            ApiError::server(format!(
                "access key record {store_key} is not valid ({err}); delete or repair it in the store"
            ))
        })
    }
}

/// The store key of access key `access_key_id`.
pub fn store_key(access_key_id: &str) -> String {
    format!("{ACCESS_KEY_PREFIX}{access_key_id}")
}

/// Every access key, cached in memory for fast per-request lookups.
#[derive(Default)]
pub struct AccessKeys {
    by_id: RwLock<HashMap<String, AccessKey>>,
}

impl fmt::Debug for AccessKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.read().len();
        f.debug_struct("AccessKeys").field("count", &count).finish()
    }
}

impl AccessKeys {
    /// Reads every stored access key.
    pub async fn load(store: &dyn Store) -> Result<AccessKeys, ApiError> {
        let response = store.range(RangeRequest::prefix(ACCESS_KEY_PREFIX)).await?;
        let mut by_id = HashMap::with_capacity(response.kvs.len());
        for kv in response.kvs {
            let key = AccessKey::from_json(&kv.key, &kv.value)?;
            by_id.insert(key.access_key_id.clone(), key);
        }
        Ok(AccessKeys {
            by_id: RwLock::new(by_id),
        })
    }

    /// The account's active access key: the oldest one already known, or a
    /// new one generated with `rng` and stored.
    pub async fn ensure_account_key<R: Rng + Send + ?Sized>(
        &self,
        store: &dyn Store,
        account_id: &str,
        now_ms: i64,
        rng: &mut R,
    ) -> Result<AccessKey, ApiError> {
        if let Some(existing) = self.oldest_active_key(account_id) {
            return Ok(existing);
        }
        for _ in 0..CREATE_ATTEMPTS {
            let candidate = AccessKey::generate(account_id, now_ms, rng);
            let key = candidate.store_key();
            let txn = Txn::new()
                .when(Compare::absent(key.clone()))
                .then(Op::put(key, candidate.to_json()));
            if store.txn(txn).await?.succeeded {
                self.write()
                    .insert(candidate.access_key_id.clone(), candidate.clone());
                return Ok(candidate);
            }
        }
        Err(ApiError::server(format!(
            "could not create an access key for account {account_id}: \
             {CREATE_ATTEMPTS} generated ids were already taken; check the random source"
        )))
    }

    /// The secret of an active key, for SigV4 verification.
    pub fn secret_for(&self, access_key_id: &str) -> Option<String> {
        self.read()
            .get(access_key_id)
            .filter(|key| key.status == AccessKeyStatus::Active)
            .map(|key| key.secret_access_key.clone())
    }

    fn oldest_active_key(&self, account_id: &str) -> Option<AccessKey> {
        self.read()
            .values()
            .filter(|key| key.account_id == account_id && key.status == AccessKeyStatus::Active)
            .min_by(|a, b| {
                (a.created_at_ms, &a.access_key_id).cmp(&(b.created_at_ms, &b.access_key_id))
            })
            .cloned()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, AccessKey>> {
        // The map is never left half-updated, so a poisoned lock is still usable.
        self.by_id
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, AccessKey>> {
        self.by_id
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use store::MemoryStore;

    use super::*;

    const ACCOUNT: &str = "000000000000";

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    #[test]
    fn generated_keys_are_shaped_like_aws_keys() {
        let mut rng = rng();
        for _ in 0..100 {
            let key = AccessKey::generate(ACCOUNT, 1_000, &mut rng);
            assert_eq!(key.access_key_id.len(), ACCESS_KEY_ID_LEN);
            assert!(key.access_key_id.starts_with("AKIA"));
            assert!(key
                .access_key_id
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
            assert_eq!(key.secret_access_key.len(), SECRET_ACCESS_KEY_LEN);
            assert!(key
                .secret_access_key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'));
            assert_eq!(key.status, AccessKeyStatus::Active);
        }
    }

    #[test]
    fn record_uses_the_documented_json_layout() {
        let key = AccessKey {
            access_key_id: "AKIAAAAAAAAAAAAAAAAA".into(),
            secret_access_key: "s".repeat(40),
            account_id: ACCOUNT.into(),
            created_at_ms: 1_700_000_000_000,
            status: AccessKeyStatus::Active,
        };
        let json: serde_json::Value = serde_json::from_slice(&key.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "accessKeyId": "AKIAAAAAAAAAAAAAAAAA",
                "secretAccessKey": "s".repeat(40),
                "accountId": ACCOUNT,
                "createdAt": 1_700_000_000_000_i64,
                "status": "Active",
            })
        );
        assert_eq!(key.store_key(), "/iam/access-keys/AKIAAAAAAAAAAAAAAAAA");
        assert!(!format!("{key:?}").contains(&key.secret_access_key));
    }

    #[tokio::test]
    async fn first_start_creates_a_key_and_later_starts_reuse_it() {
        let store = MemoryStore::new();
        let keys = AccessKeys::load(&store).await.unwrap();
        let created = keys
            .ensure_account_key(&store, ACCOUNT, 5, &mut rng())
            .await
            .unwrap();
        assert_eq!(
            keys.secret_for(&created.access_key_id),
            Some(created.secret_access_key.clone())
        );

        let again = keys
            .ensure_account_key(&store, ACCOUNT, 6, &mut StdRng::seed_from_u64(8))
            .await
            .unwrap();
        assert_eq!(again, created);

        let reloaded = AccessKeys::load(&store).await.unwrap();
        assert_eq!(
            reloaded.secret_for(&created.access_key_id),
            Some(created.secret_access_key.clone())
        );
        let after_restart = reloaded
            .ensure_account_key(&store, ACCOUNT, 7, &mut StdRng::seed_from_u64(9))
            .await
            .unwrap();
        assert_eq!(after_restart, created);
    }

    #[tokio::test]
    async fn unknown_and_inactive_keys_have_no_secret() {
        let store = MemoryStore::new();
        let mut inactive = AccessKey::generate(ACCOUNT, 1, &mut rng());
        inactive.status = AccessKeyStatus::Inactive;
        store
            .txn(Txn::new().then(Op::put(inactive.store_key(), inactive.to_json())))
            .await
            .unwrap();

        let keys = AccessKeys::load(&store).await.unwrap();
        assert_eq!(keys.secret_for(&inactive.access_key_id), None);
        assert_eq!(keys.secret_for("AKIANOTAKEYATALL0000"), None);

        let active = keys
            .ensure_account_key(&store, ACCOUNT, 2, &mut StdRng::seed_from_u64(99))
            .await
            .unwrap();
        assert_ne!(active.access_key_id, inactive.access_key_id);
        assert_eq!(active.status, AccessKeyStatus::Active);
    }

    #[tokio::test]
    async fn a_corrupt_record_is_reported_with_its_key() {
        let store = MemoryStore::new();
        store
            .txn(Txn::new().then(Op::put("/iam/access-keys/AKIABROKEN", b"{".to_vec())))
            .await
            .unwrap();
        let err = AccessKeys::load(&store).await.unwrap_err();
        assert_eq!(err.code, "ServerException");
        assert!(err.message.contains("/iam/access-keys/AKIABROKEN"));
    }
}
