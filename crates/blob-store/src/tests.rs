use crate::{BlobStoreError, Digest, DigestAlgorithm, UploadId};

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Parses `value`; `Ok` with its display, or the error's reason.
fn check_digest(value: &str, expected: Result<&str, &str>) {
    let parsed = value.parse::<Digest>();
    match (parsed, expected) {
        (Ok(digest), Ok(display)) => assert_eq!(digest.to_string(), display, "{value}"),
        (Err(BlobStoreError::InvalidDigest { value: got, reason }), Err(why)) => {
            assert_eq!(got, value);
            assert!(
                reason.contains(why),
                "{value}: {reason:?} should say {why:?}"
            );
        }
        (got, expected) => panic!("{value}: got {got:?}, expected {expected:?}"),
    }
}

#[test]
fn digests_parse_and_say_what_is_wrong() {
    let sha256 = format!("sha256:{EMPTY_SHA256}");
    check_digest(&sha256, Ok(&sha256));
    let sha512 = format!("sha512:{}", "ab".repeat(64));
    check_digest(&sha512, Ok(&sha512));
    check_digest(EMPTY_SHA256, Err("there is no ':'"));
    check_digest("", Err("there is no ':'"));
    check_digest(&format!("SHA256:{EMPTY_SHA256}"), Err("is not valid"));
    check_digest(&format!("sha256+:{EMPTY_SHA256}"), Err("is not valid"));
    check_digest(&format!(":{EMPTY_SHA256}"), Err("is not valid"));
    check_digest("md5:d41d8cd98f00b204e9800998ecf8427e", Err("not supported"));
    check_digest(&format!("sha256+b64u:{EMPTY_SHA256}"), Err("not supported"));
    check_digest("sha256:abc", Err("has 64 hex characters, this one has 3"));
    check_digest(&format!("sha256:{EMPTY_SHA256}0"), Err("this one has 65"));
    check_digest(
        &format!("sha256:{}", EMPTY_SHA256.to_uppercase()),
        Err("lowercase hex"),
    );
    check_digest(
        &format!("sha256:../{}", &EMPTY_SHA256[3..]),
        Err("lowercase hex"),
    );
    check_digest(&format!("sha256:{EMPTY_SHA256}:x"), Err("has 64"));
}

#[test]
fn digests_compute_and_order_like_their_strings() {
    assert_eq!(
        Digest::sha256(b"").to_string(),
        format!("sha256:{EMPTY_SHA256}")
    );
    let sha512 = Digest::compute(DigestAlgorithm::Sha512, b"abc");
    assert!(sha512.to_string().starts_with("sha512:ddaf35a193617aba"));
    let mut digests = [sha512.clone(), Digest::sha256(b"b"), Digest::sha256(b"a")];
    digests.sort();
    let strings: Vec<String> = digests.iter().map(Digest::to_string).collect();
    let mut sorted = strings.clone();
    sorted.sort();
    assert_eq!(strings, sorted);
}

#[test]
fn upload_ids_accept_only_what_is_issued() {
    let id = UploadId::generate();
    assert_eq!(id.as_str().parse::<UploadId>().expect("own id"), id);
    assert_ne!(UploadId::generate(), id);
    let upper = id.as_str().to_uppercase();
    let simple = id.as_str().replace('-', "");
    let v1ish = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";
    for bad in [
        "",
        "..",
        "../../etc/passwd",
        "a/b",
        upper.as_str(),
        simple.as_str(),
        v1ish,
        &format!("{id}/x"),
        &format!("{{{id}}}"),
        &format!("urn:uuid:{id}"),
    ] {
        assert!(
            matches!(bad.parse::<UploadId>(), Err(BlobStoreError::InvalidUploadId(got)) if got == bad),
            "{bad:?} must be rejected"
        );
    }
}
