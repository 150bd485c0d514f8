//! Image manifests as registries read them: which kind a document is, what
//! it references, and its digest. Pure.
//!
//! Kinds: Docker's image manifest (schema 2) and manifest list, OCI's image
//! manifest and image index. A manifest references blobs (its config and
//! layers); an index or list references other manifests. Either may name a
//! `subject` (OCI 1.1 referrers).

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The media types a registry serves manifests as, for `Accept` matching.
pub const MANIFEST_MEDIA_TYPES: &[&str] = &[
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_MANIFEST,
    OCI_INDEX,
];

/// The manifest media types ECR accepts.
pub fn is_manifest_media_type(media_type: &str) -> bool {
    MANIFEST_MEDIA_TYPES.contains(&media_type)
}

pub fn is_index_media_type(media_type: &str) -> bool {
    media_type == DOCKER_MANIFEST_LIST || media_type == OCI_INDEX
}

/// A content descriptor (`mediaType`, `digest`, `size`, …).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: Option<String>,
    pub digest: String,
    pub size: i64,
    #[serde(default)]
    pub artifact_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    schema_version: Option<i64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    subject: Option<Descriptor>,
}

/// What a manifest is and what it references.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub media_type: String,
    /// The config's media type, or the manifest's `artifactType`.
    pub artifact_media_type: Option<String>,
    /// `artifactType` as the referrers API reports it (OCI 1.1: the
    /// manifest's own, else its config's media type).
    pub artifact_type: Option<String>,
    /// Config first, then the layers.
    pub blobs: Vec<Descriptor>,
    pub layers_size_bytes: i64,
    pub manifests: Vec<Descriptor>,
    pub subject: Option<String>,
}

/// Why a manifest was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("the manifest is not valid JSON: {0}")]
    Syntax(String),
    #[error("schemaVersion must be 2")]
    SchemaVersion,
    #[error("Docker schema 1 manifests are not supported; push with a current Docker or convert the image to schema 2 or OCI")]
    Schema1,
    #[error("unsupported manifest media type '{0}'")]
    UnsupportedMediaType(String),
    #[error("the manifest's mediaType '{declared}' does not match the media type '{given}' it was pushed as")]
    MediaTypeMismatch { declared: String, given: String },
    #[error("the manifest has no mediaType and none was given")]
    NoMediaType,
    #[error("an image manifest needs a config and layers")]
    NotAManifest,
    #[error("an image index needs manifests")]
    NotAnIndex,
    #[error("invalid digest '{0}'")]
    Digest(String),
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The digest of `bytes` with the algorithm `like` names (`sha512:…`
/// or, otherwise, sha256).
pub fn digest_like(like: &str, bytes: &[u8]) -> String {
    if like.starts_with("sha512:") {
        format!("sha512:{}", hex::encode(sha2::Sha512::digest(bytes)))
    } else {
        sha256_digest(bytes)
    }
}

/// Whether `digest` is a well-formed digest Berth can verify.
pub fn valid_digest(digest: &str) -> bool {
    digest.parse::<blob_store::Digest>().is_ok()
}

/// Parses `bytes`, pushed as `given_media_type` (the `Content-Type` of a
/// registry PUT, PutImage's `imageManifestMediaType`) if any.
pub fn parse(bytes: &[u8], given_media_type: Option<&str>) -> Result<Parsed, ManifestError> {
    let given = given_media_type
        .map(|media_type| media_type.split(';').next().unwrap_or("").trim())
        .filter(|media_type| !media_type.is_empty());
    if matches!(given, Some(DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED)) {
        return Err(ManifestError::Schema1);
    }
    let document: Document =
        serde_json::from_slice(bytes).map_err(|err| ManifestError::Syntax(err.to_string()))?;
    if document.schema_version == Some(1) {
        return Err(ManifestError::Schema1);
    }
    if document.schema_version != Some(2) {
        return Err(ManifestError::SchemaVersion);
    }
    let media_type = match (document.media_type.as_deref(), given) {
        (Some(declared), Some(given)) if declared != given => {
            return Err(ManifestError::MediaTypeMismatch {
                declared: declared.to_string(),
                given: given.to_string(),
            })
        }
        (Some(declared), _) => declared.to_string(),
        (None, Some(given)) => given.to_string(),
        // OCI lets the field be absent; the shape then tells.
        (None, None) if document.manifests.is_some() => OCI_INDEX.to_string(),
        (None, None) if document.config.is_some() => OCI_MANIFEST.to_string(),
        (None, None) => return Err(ManifestError::NoMediaType),
    };
    if !is_manifest_media_type(&media_type) {
        return Err(ManifestError::UnsupportedMediaType(media_type));
    }
    let check = |descriptor: &Descriptor| {
        if valid_digest(&descriptor.digest) {
            Ok(())
        } else {
            Err(ManifestError::Digest(descriptor.digest.clone()))
        }
    };
    let subject = match &document.subject {
        Some(subject) => {
            check(subject)?;
            Some(subject.digest.clone())
        }
        None => None,
    };
    if is_index_media_type(&media_type) {
        let manifests = document.manifests.ok_or(ManifestError::NotAnIndex)?;
        manifests.iter().try_for_each(check)?;
        return Ok(Parsed {
            media_type,
            artifact_media_type: document.artifact_type.clone(),
            artifact_type: document.artifact_type,
            blobs: Vec::new(),
            layers_size_bytes: 0,
            manifests,
            subject,
        });
    }
    let (Some(config), Some(layers)) = (document.config, document.layers) else {
        return Err(ManifestError::NotAManifest);
    };
    check(&config)?;
    layers.iter().try_for_each(check)?;
    let layers_size_bytes = layers.iter().map(|layer| layer.size.max(0)).sum();
    let config_media_type = config.media_type.clone();
    let artifact_type = document
        .artifact_type
        .clone()
        .or_else(|| config_media_type.clone());
    let mut blobs = Vec::with_capacity(layers.len() + 1);
    blobs.push(config);
    blobs.extend(layers);
    Ok(Parsed {
        media_type,
        artifact_media_type: document.artifact_type.or(config_media_type),
        artifact_type,
        blobs,
        layers_size_bytes,
        manifests: Vec::new(),
        subject,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn docker_manifest() -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
            "config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":10,"digest":"{A}"}},
            "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":100,"digest":"{B}"}}]}}"#
        )
    }

    #[test]
    fn image_manifests_reference_their_config_and_layers() {
        let parsed = parse(docker_manifest().as_bytes(), None).unwrap();
        assert_eq!(parsed.media_type, DOCKER_MANIFEST);
        assert_eq!(
            parsed.artifact_media_type.as_deref(),
            Some("application/vnd.docker.container.image.v1+json")
        );
        let blobs: Vec<&str> = parsed.blobs.iter().map(|b| b.digest.as_str()).collect();
        assert_eq!(blobs, [A, B]);
        assert_eq!(parsed.layers_size_bytes, 100);
        assert!(parsed.manifests.is_empty());
    }

    #[test]
    fn indexes_reference_manifests_and_oci_documents_may_omit_their_media_type() {
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","size":5,"digest":"{A}","platform":{{"os":"linux","architecture":"amd64"}}}}],
            "subject":{{"mediaType":"{OCI_MANIFEST}","size":5,"digest":"{B}"}}}}"#
        );
        let parsed = parse(index.as_bytes(), Some(OCI_INDEX)).unwrap();
        assert_eq!(parsed.media_type, OCI_INDEX);
        assert_eq!(parsed.manifests[0].digest, A);
        assert_eq!(parsed.subject.as_deref(), Some(B));
        assert_eq!(parse(index.as_bytes(), None).unwrap().media_type, OCI_INDEX);
    }

    #[test]
    fn bad_manifests_say_what_is_wrong() {
        let cases: Vec<(String, Option<&str>, ManifestError)> = vec![
            (
                "{".into(),
                None,
                ManifestError::Syntax("EOF while parsing an object at line 1 column 1".into()),
            ),
            (
                r#"{"schemaVersion":1}"#.into(),
                None,
                ManifestError::Schema1,
            ),
            (
                r#"{"schemaVersion":3}"#.into(),
                None,
                ManifestError::SchemaVersion,
            ),
            (
                docker_manifest(),
                Some(OCI_MANIFEST),
                ManifestError::MediaTypeMismatch {
                    declared: DOCKER_MANIFEST.into(),
                    given: OCI_MANIFEST.into(),
                },
            ),
            (
                r#"{"schemaVersion":2,"mediaType":"text/plain"}"#.into(),
                None,
                ManifestError::UnsupportedMediaType("text/plain".into()),
            ),
            (
                format!(
                    r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"size":1,"digest":"sha256:xyz"}},"layers":[]}}"#
                ),
                None,
                ManifestError::Digest("sha256:xyz".into()),
            ),
            (
                format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}"}}"#),
                None,
                ManifestError::NotAManifest,
            ),
        ];
        for (document, given, expected) in cases {
            assert_eq!(
                parse(document.as_bytes(), given),
                Err(expected),
                "{document}"
            );
        }
    }

    #[test]
    fn digests_are_over_the_exact_bytes() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
